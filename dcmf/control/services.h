/*
 * services.h - the media paths every DC session offers its channels to,
 * built from the configuration (layer "control"): the bootstrap
 * repository, the HTTP proxy, UDP-proxy legs and the DC relay, in match
 * order. Each media worker process builds its own set at start.
 */
#ifndef DCMF_SERVICES_H
#define DCMF_SERVICES_H

#include <stddef.h>

#include "config.h"
#include "e2ae_svc.h"
#include "httpproxy_svc.h"
#include "repo.h"
#include "service.h"

#define DCMF_SERVICES_N 7

struct dcmf_services {
  struct dcmf_repo *repo;
  struct dcmf_httpproxy_svc_config proxy;
  struct dcmf_e2ae_config e2ae;
  /* The registrations for struct dcmf_worker_settings; they point into
   * this struct, which must not move while a worker uses them. */
  struct dcmf_svc_reg regs[DCMF_SERVICES_N];
  size_t n;
};

/*
 * Opens the repository and fills |s| from |cfg| (borrowed: its strings
 * must outlive |s|) for one of |n_workers| workers: each gets an equal
 * share of --cache-size, so the cache memory of all of them together is
 * what the operator set. Returns 0, or DCMF_ERR_INVALID with |err|
 * naming the problem ("bootstrap-dir ...: ...").
 */
int dcmf_services_open(struct dcmf_services *s, const struct dcmf_config *cfg,
                       size_t n_workers, char *err, size_t errlen);

/* Frees what |s| owns (after the workers using it stopped). */
void dcmf_services_close(struct dcmf_services *s);

#endif
