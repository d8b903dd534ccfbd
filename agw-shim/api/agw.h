/*
 * agw.h - the IMS-AGW shim: transparent UDP relays between an access-side
 * port (toward the phone) and a core-side port (toward the DCMF, e2DCe,
 * or toward the other phone's shim leg, e2e), controlled by the JSON API
 * under /agw/v1/contexts. Everything above UDP passes byte-exact; the
 * shim holds no keys.
 */
#ifndef DCMF_AGW_H
#define DCMF_AGW_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "api.h"
#include "buf.h"
#include "log.h"

struct dcmf_agw_settings {
  uv_loop_t *control_loop;    /* where the API calls arrive */
  const char *bind_addr;      /* numeric address relay ports bind to */
  const char *advertise_addr; /* address reported for them */
  const struct dcmf_log *log;
  /* Port pool of dcmfd (called on the control thread only): reserve a
   * port and get a descriptor the shim owns, or release it. */
  int (*port_alloc)(void *user, uint16_t *port, int *fd);
  void (*port_release)(void *user, uint16_t port);
  void *port_user;
};

struct dcmf_agw;

/* Starts the shim (its relays run on a thread of their own). Returns 0
 * or a negative DCMF_ERR_*. */
int dcmf_agw_new(struct dcmf_agw **agw,
                 const struct dcmf_agw_settings *settings);

/* Stops the relays, releases every port and frees the shim. */
void dcmf_agw_del(struct dcmf_agw *agw);

/* Answers a control request whose path starts with /agw/v1/. */
void dcmf_agw_handle(struct dcmf_agw *agw, const struct dcmf_api_request *req,
                     struct dcmf_api_response *resp);

struct dcmf_heartbeat;

/* The relay thread's heartbeat (heartbeat.h), readable from any thread
 * until dcmf_agw_del(). */
const struct dcmf_heartbeat *dcmf_agw_heartbeat(const struct dcmf_agw *agw);

/* Appends the shim's metrics (Prometheus text) to |out|. */
void dcmf_agw_metrics(struct dcmf_agw *agw, struct dcmf_buf *out);

#endif
