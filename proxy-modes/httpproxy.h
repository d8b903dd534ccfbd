/*
 * httpproxy.h - HTTP-proxy mode (TS 23.228 AC.7.1): an httpdc backend
 * that forwards the phone's requests on one data channel to the
 * upstream named by the channel's replacement URL (MDC1 toward the DCSF,
 * or MDC2 toward a DC application server), and streams the answers back.
 *
 * One proxy per data channel. It resolves each request target under the
 * base URL (urlmap.h), rewrites the headers (hop-by-hop out, Host set,
 * X-DCMF-* identifiers in), sends it through the worker's upstream pool,
 * and pipes the response into the httpdc engine with backpressure: when
 * the engine has buffered enough, the upstream response is paused.
 * Upstream failures become small 502 / 504 answers; the channel stays
 * usable. Glue on the worker loop (it drives the upstream pool).
 */
#ifndef DCMF_HTTPPROXY_H
#define DCMF_HTTPPROXY_H

#include <stddef.h>
#include <stdint.h>

#include "httpdc.h"
#include "log.h"
#include "repo.h"
#include "upstream.h"

struct dcmf_cache;

/* What every proxy of a worker shares. */
struct dcmf_httpproxy_env {
  struct dcmf_upstream_pool *pool;
  struct dcmf_cache *cache;     /* NULL: no caching */
  const struct dcmf_repo *repo; /* fallback for channels without a base
                                   URL; NULL when that is not allowed */
  const struct dcmf_log *log;
  /* Wall-clock milliseconds, for cache freshness. */
  uint64_t (*now_ms)(void *user);
  void *now_user;
};

/* Asks the channel's owner to pull and send what the engine now has
 * (called after upstream events, never from inside the engine). */
typedef void (*dcmf_httpproxy_wake_fn)(void *user);

/* Where one channel's requests go and how they are labelled. */
struct dcmf_httpproxy_route {
  char base_url[2048]; /* "" : no upstream for this channel */
  char context_id[40];
  char termination_id[96];
  char media_id[96];
  uint16_t stream_id;
};

struct dcmf_httpproxy_counters {
  uint64_t requests, upstream_errors, upstream_timeouts, cache_hits,
      cache_misses, cache_revalidated;
};

struct dcmf_httpproxy;

/*
 * Creates the proxy for one channel and fills |backend| for
 * dcmf_httpdc_new(). |env| is borrowed (it outlives the proxy); |route|
 * is copied; |counters| (may be NULL) is borrowed and incremented;
 * |wake| runs with |wake_user| whenever upstream data was handed to the
 * engine.
 * Returns 0, DCMF_ERR_INVALID (a base URL that is not an absolute
 * http(s) URL) or DCMF_ERR_NOMEM.
 */
int dcmf_httpproxy_new(struct dcmf_httpproxy **proxy,
                       const struct dcmf_httpproxy_env *env,
                       const struct dcmf_httpproxy_route *route,
                       struct dcmf_httpproxy_counters *counters,
                       dcmf_httpproxy_wake_fn wake, void *wake_user,
                       struct dcmf_httpdc_backend *backend);

/* Frees the proxy. Delete the httpdc engine first: its cancel callbacks
 * end the upstream requests still running. */
void dcmf_httpproxy_del(struct dcmf_httpproxy *proxy);

#endif
