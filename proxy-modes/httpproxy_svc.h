/*
 * httpproxy_svc.h - HTTP-proxy mode as a session service (service.h;
 * layer: services). It serves HTTP (bootstrap/httpsvc.h) on the
 * channels of medias in HTTP-proxy mode: the bootstrap streams, in-band
 * "http" channels, and application streams (>= 1000) with subprotocol
 * "http", each through an httpproxy backend (httpproxy.h) toward the
 * stream's upstream.
 *
 * Per worker it owns the upstream pool and the response cache, and
 * publishes their counters into the worker's stats every tick. Its
 * registration config is a struct dcmf_httpproxy_svc_config, borrowed
 * for the worker's life.
 */
#ifndef DCMF_HTTPPROXY_SVC_H
#define DCMF_HTTPPROXY_SVC_H

#include <stddef.h>

#include "repo.h"
#include "service.h"
#include "upstream.h"

struct dcmf_httpproxy_svc_config {
  struct dcmf_upstream_settings upstream;
  size_t cache_size;             /* 0: no cache */
  const struct dcmf_repo *fallback; /* streams without a URL; NULL: none */
};

/* init returns DCMF_ERR_INVALID with |err| naming an unusable upstream
 * certificate file, or DCMF_ERR_NOMEM. A cache that cannot be made is
 * left out (the proxy works without one). */
extern const struct dcmf_service dcmf_httpproxy_service;

#endif
