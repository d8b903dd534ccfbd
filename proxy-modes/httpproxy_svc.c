/* HTTP-proxy mode as a session service (httpproxy_svc.h). */
#include "httpproxy_svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/rand.h>

#include "cache.h"
#include "errors.h"
#include "httpproxy.h"
#include "httpsvc.h"
#include "worker.h"

struct proxy_worker {
  struct dcmf_media_stats *stats;
  struct dcmf_upstream_pool *pool;
  struct dcmf_cache *cache;
  struct dcmf_httpproxy_env env;
  struct dcmf_httpproxy_counters counters;
  uint8_t *tx_scratch;
  size_t tx_scratch_len;
};

/* Cache freshness is wall-clock time (RFC 9111 Date/Expires). */
static uint64_t wall_ms(void *user) {
  (void)user;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int proxy_init(void **worker, const struct dcmf_svc_worker_env *env,
                      const void *config, char *err, size_t errlen) {
  const struct dcmf_httpproxy_svc_config *cfg = config;
  struct proxy_worker *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    return DCMF_ERR_NOMEM;
  }
  w->stats = env->stats;
  w->tx_scratch = env->tx_scratch;
  w->tx_scratch_len = env->tx_scratch_len;
  /* The pool's handles live on the worker loop; creating them before the
   * worker thread starts is safe because nothing runs that loop yet. */
  int rv = dcmf_upstream_pool_new(&w->pool, env->loop, &cfg->upstream,
                                  env->log, err, errlen);
  if (rv != 0) {
    free(w);
    return rv;
  }
  if (cfg->cache_size > 0) {
    struct dcmf_cache_settings cs;
    dcmf_cache_settings_default(&cs);
    cs.max_bytes = cfg->cache_size;
    if (cs.max_entry_bytes > cs.max_bytes) {
      cs.max_entry_bytes = cs.max_bytes;
    }
    /* The index is keyed so phones cannot pick colliding URLs. */
    RAND_bytes(cs.hash_key, sizeof(cs.hash_key));
    if (dcmf_cache_new(&w->cache, &cs, NULL) != 0) {
      w->cache = NULL;
    }
  }
  w->env = (struct dcmf_httpproxy_env){
      .pool = w->pool,
      .cache = w->cache,
      .repo = cfg->fallback,
      .log = env->log,
      .now_ms = wall_ms,
  };
  *worker = w;
  return 0;
}

/* The proxy keeps plain counters on the worker thread; publish them. */
static void proxy_worker_tick(void *worker) {
  struct proxy_worker *w = worker;
  struct dcmf_media_stats *st = w->stats;
  const struct dcmf_httpproxy_counters *c = &w->counters;
  const struct dcmf_upstream_counters *u = dcmf_upstream_counters(w->pool);
  atomic_store_explicit(&st->proxy_requests, c->requests,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_upstream_errors, c->upstream_errors,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_upstream_timeouts, c->upstream_timeouts,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_cache_hits, c->cache_hits,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_cache_misses, c->cache_misses,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_upstream_responses, u->responses,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_upstream_opened, u->connections_opened,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_upstream_reused, u->connections_reused,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_upstream_closed, u->connections_closed,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_upstream_retries, u->retries,
                        memory_order_relaxed);
  atomic_store_explicit(&st->proxy_upstream_latency_ms, u->latency_ms_total,
                        memory_order_relaxed);
  if (w->cache != NULL) {
    struct dcmf_cache_stats cs;
    dcmf_cache_get_stats(w->cache, &cs);
    atomic_store_explicit(&st->proxy_cache_bytes, cs.bytes,
                          memory_order_relaxed);
    atomic_store_explicit(&st->proxy_cache_revalidated,
                          cs.revalidated_not_modified, memory_order_relaxed);
  }
}

static void proxy_free(void *worker) {
  struct proxy_worker *w = worker;
  proxy_worker_tick(w); /* the last figures */
  dcmf_upstream_pool_del(w->pool); /* its handles close on the loop */
  dcmf_cache_del(w->cache);
  free(w);
}

static int proxy_make(void *user, struct dcmf_svc_host *host,
                      const struct dcmf_svc_flow *flow,
                      struct dcmf_httpdc_settings *hs,
                      struct dcmf_httpdc_backend *be, void (*wake)(void *),
                      void *wake_user, void **state) {
  struct proxy_worker *w = user;
  const struct dcmf_media_desc *d = host->desc;
  /* POST and PUT bodies go upstream: collect them (up to 1 MiB). */
  hs->max_request_body = 1 << 20;
  uint16_t sid = (uint16_t)flow->id; /* an SCTP stream (proxy_match) */
  struct dcmf_httpproxy_route route = {.stream_id = sid};
  const char *base = dcmf_media_route_for(d, sid);
  snprintf(route.base_url, sizeof(route.base_url), "%s", base ? base : "");
  snprintf(route.context_id, sizeof(route.context_id), "%s",
           d->key.context_id);
  snprintf(route.termination_id, sizeof(route.termination_id), "%s",
           d->key.termination_id);
  snprintf(route.media_id, sizeof(route.media_id), "%s", d->key.media_id);
  return dcmf_httpproxy_new((struct dcmf_httpproxy **)state, &w->env, &route,
                            &w->counters, wake, wake_user, be);
}

static void proxy_drop(void *state) { dcmf_httpproxy_del(state); }

static int proxy_attach(void **media, void *worker,
                        struct dcmf_svc_host *host) {
  struct proxy_worker *w = worker;
  struct dcmf_httpsvc_backend_ops ops = {.make = proxy_make,
                                         .drop = proxy_drop,
                                         .user = w,
                                         .tx_scratch = w->tx_scratch,
                                         .tx_scratch_len = w->tx_scratch_len};
  return dcmf_httpsvc_attach((struct dcmf_httpsvc **)media, host, &ops);
}

static int proxy_match(void *media, const struct dcmf_svc_flow *flow) {
  const struct dcmf_svc_host *h = dcmf_httpsvc_host(media);
  return h->desc->http_proxy && dcmf_httpsvc_wants(flow, 1);
}

const struct dcmf_service dcmf_httpproxy_service = {
    .name = "http-proxy",
    .init = proxy_init,
    .free = proxy_free,
    .worker_tick = proxy_worker_tick,
    .attach = proxy_attach,
    .detach = dcmf_httpsvc_detach,
    .match = proxy_match,
    .open = dcmf_httpsvc_open,
    .message = dcmf_httpsvc_message,
    .writable = dcmf_httpsvc_writable,
    .closed = dcmf_httpsvc_closed,
};
