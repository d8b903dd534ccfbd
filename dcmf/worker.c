#include "worker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtls.h"
#include "errors.h"
#include "cache.h"
#include "heartbeat.h"
#include "httpproxy.h"
#include "queue.h"

#include <openssl/rand.h>
#include "ratelimit.h"
#include "sctp.h"
#include "session.h"

/* usrsctp has no "next timeout" call, so its timers are ticked at this
 * period while any session exists. */
#define SCTP_TICK_MS 10
/* Events waiting for the control loop, which empties the outbox on every
 * turn; only a control loop that stopped turning fills it. Past this,
 * events are refused and counted (with the dropped notifications). */
#define OUTBOX_LIMIT 4096

enum msg_kind { MSG_ADD, MSG_UPDATE, MSG_REMOVE, MSG_STOP };

struct msg {
  enum msg_kind kind;
  struct dcmf_media_desc desc; /* ADD, UPDATE */
  struct dcmf_media_key key;   /* REMOVE */
  struct dcmf_queue_node node;
};

struct event_msg {
  struct dcmf_media_event ev;
  struct dcmf_queue_node node;
};

struct node {
  struct dcmf_session *session;
  struct node *next;
};

struct dcmf_worker {
  struct dcmf_worker_settings settings;
  struct dcmf_media_stats stats;
  uv_thread_t thread;
  uv_loop_t loop; /* the worker's own loop */
  struct dcmf_queue inbox;  /* control → worker, drained on |loop| */
  struct dcmf_queue outbox; /* events, drained on the control loop */
  uv_timer_t sctp_timer;
  uint64_t last_tick_ms;
  struct dcmf_heartbeat heartbeat; /* the control thread watches it */
  struct dcmf_ratelimit *stun_limit, *hello_limit;
  struct dcmf_dtls_ctx dtls_ctx;
  struct dcmf_session_env env;
  struct dcmf_upstream_pool *pool;
  struct dcmf_cache *cache;
  struct dcmf_httpproxy_env proxy_env;
  struct dcmf_httpproxy_counters proxy_counters;
  struct node *sessions;
  uint8_t rx_scratch[65536];
  uint8_t tx_scratch[65536];
};

static void outbox_closed(void *user, struct dcmf_queue_node *list);

/* ---- worker → control ----------------------------------------------------- */

static void emit(void *user, const struct dcmf_media_key *key,
                 const char *event, const char *detail) {
  struct dcmf_worker *w = user;
  struct event_msg *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return;
  }
  m->ev.key = *key;
  snprintf(m->ev.event, sizeof(m->ev.event), "%s", event);
  snprintf(m->ev.detail, sizeof(m->ev.detail), "%s", detail ? detail : "{}");
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  m->ev.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (dcmf_queue_push(&w->outbox, &m->node) != 0) {
    free(m); /* counted by the queue */
  }
}

static void on_outbox(void *user, struct dcmf_queue_node *list) {
  struct dcmf_worker *w = user;
  while (list != NULL) {
    struct event_msg *m = dcmf_queue_entry(list, struct event_msg, node);
    list = list->next;
    w->settings.on_event(w->settings.user, &m->ev);
    free(m);
  }
}

/* ---- control → worker ----------------------------------------------------- */

/* Never refused: a lost control message would leave a port bound. The
 * inbox is bounded by the port pool (one ADD per reserved port). */
static void post(struct dcmf_worker *w, struct msg *m) {
  dcmf_queue_push_always(&w->inbox, &m->node);
}

static struct msg *msg_new(enum msg_kind kind) {
  struct msg *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    abort(); /* a lost control message would leave a port bound forever */
  }
  m->kind = kind;
  m->desc.fd = -1;
  return m;
}

void dcmf_worker_add(struct dcmf_worker *w, struct dcmf_media_desc *desc) {
  struct msg *m = msg_new(MSG_ADD);
  m->desc = *desc;
  post(w, m);
}

void dcmf_worker_update(struct dcmf_worker *w, struct dcmf_media_desc *desc) {
  struct msg *m = msg_new(MSG_UPDATE);
  m->desc = *desc;
  post(w, m);
}

void dcmf_worker_remove(struct dcmf_worker *w,
                        const struct dcmf_media_key *key) {
  struct msg *m = msg_new(MSG_REMOVE);
  m->key = *key;
  post(w, m);
}

/* ---- inside the worker thread -------------------------------------------- */

static struct node **find(struct dcmf_worker *w,
                          const struct dcmf_media_key *key) {
  struct node **pp = &w->sessions;
  while (*pp && !dcmf_media_key_equal(dcmf_session_key((*pp)->session), key)) {
    pp = &(*pp)->next;
  }
  return pp;
}

/* DC relays: a session finds its twin among the worker's sessions. */
static struct dcmf_session *find_session(void *user,
                                         const struct dcmf_media_key *key) {
  struct node **pp = find(user, key);
  return *pp != NULL ? (*pp)->session : NULL;
}

/* The proxy keeps plain counters on the worker thread; publish them. */
static void publish_proxy_stats(struct dcmf_worker *w) {
  struct dcmf_media_stats *st = &w->stats;
  const struct dcmf_httpproxy_counters *c = &w->proxy_counters;
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

static uint64_t wall_ms(void *user) {
  (void)user;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_sctp_tick(uv_timer_t *t) {
  struct dcmf_worker *w = t->data;
  uint64_t now = uv_now(&w->loop);
  publish_proxy_stats(w);
  dcmf_sctp_stack_tick((uint32_t)(now - w->last_tick_ms));
  w->last_tick_ms = now;
  for (struct node *n = w->sessions; n; n = n->next) {
    dcmf_session_after_sctp_tick(n->session);
  }
}

static void sctp_timer_update(struct dcmf_worker *w) {
  if (w->sessions != NULL && !uv_is_active((uv_handle_t *)&w->sctp_timer)) {
    w->last_tick_ms = uv_now(&w->loop);
    uv_timer_start(&w->sctp_timer, on_sctp_tick, SCTP_TICK_MS, SCTP_TICK_MS);
  } else if (w->sessions == NULL) {
    uv_timer_stop(&w->sctp_timer);
  }
}

static void handle_add(struct dcmf_worker *w, struct msg *m) {
  struct node **pp = find(w, &m->desc.key);
  if (*pp != NULL) { /* a duplicate add replaces the session */
    struct node *old = *pp;
    *pp = old->next;
    dcmf_session_close(old->session);
    free(old);
  }
  struct node *n = calloc(1, sizeof(*n));
  if (n == NULL || dcmf_session_new(&n->session, &w->env, &m->desc) != 0) {
    DCMF_LOGE(w->settings.log, "worker", "cannot start media %s/%s/%s",
              m->desc.key.context_id, m->desc.key.termination_id,
              m->desc.key.media_id);
    free(n);
    return;
  }
  n->next = w->sessions;
  w->sessions = n;
  atomic_fetch_add_explicit(&w->stats.sessions, 1, memory_order_relaxed);
}

static void handle_remove(struct dcmf_worker *w,
                          const struct dcmf_media_key *key) {
  struct node **pp = find(w, key);
  if (*pp == NULL) {
    return;
  }
  struct node *n = *pp;
  *pp = n->next;
  dcmf_session_close(n->session);
  free(n);
  atomic_fetch_sub_explicit(&w->stats.sessions, 1, memory_order_relaxed);
}

/* Nothing follows MSG_STOP, but a message is never leaked. */
static void inbox_closed(void *user, struct dcmf_queue_node *list) {
  (void)user;
  while (list != NULL) {
    struct msg *m = dcmf_queue_entry(list, struct msg, node);
    list = list->next;
    if (m->kind == MSG_ADD || m->kind == MSG_UPDATE) {
      dcmf_media_desc_free(&m->desc);
    }
    free(m);
  }
}

static void close_all(struct dcmf_worker *w) {
  while (w->sessions != NULL) {
    handle_remove(w, dcmf_session_key(w->sessions->session));
  }
  publish_proxy_stats(w);
  dcmf_upstream_pool_del(w->pool);
  w->pool = NULL;
  uv_close((uv_handle_t *)&w->sctp_timer, NULL);
  dcmf_queue_close(&w->inbox, inbox_closed);
  dcmf_heartbeat_close(&w->heartbeat);
}

static void on_inbox(void *user, struct dcmf_queue_node *list) {
  struct dcmf_worker *w = user;
  int stop = 0;
  while (list != NULL) {
    struct msg *m = dcmf_queue_entry(list, struct msg, node);
    list = list->next;
    switch (m->kind) {
    case MSG_ADD:
      handle_add(w, m);
      break;
    case MSG_UPDATE: {
      struct node *n = *find(w, &m->desc.key);
      if (n != NULL) {
        dcmf_session_update(n->session, &m->desc);
      } else {
        dcmf_media_desc_free(&m->desc);
      }
      break;
    }
    case MSG_REMOVE:
      handle_remove(w, &m->key);
      break;
    case MSG_STOP:
      stop = 1;
      break;
    }
    free(m);
  }
  if (stop) {
    close_all(w);
  } else {
    sctp_timer_update(w);
  }
}

static void worker_main(void *arg) {
  struct dcmf_worker *w = arg;
  /* Named for operators (top -H, /proc/PID/task/TID/comm). */
  pthread_setname_np(pthread_self(), "dcmf-media");
  /* usrsctp's single stack belongs to this thread from here on. */
  dcmf_sctp_stack_init();
  uv_run(&w->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 100 && dcmf_sctp_stack_finish() != 0; i++) {
    dcmf_sctp_stack_tick(100);
  }
}

int dcmf_worker_start(struct dcmf_worker **out, uv_loop_t *control_loop,
                      const struct dcmf_worker_settings *settings, char *err,
                      size_t errlen) {
  struct dcmf_worker *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    return DCMF_ERR_NOMEM;
  }
  w->settings = *settings;
  if (dcmf_dtls_ctx_init(&w->dtls_ctx, settings->cert, settings->pkey,
                         1200) != 0) {
    free(w);
    return DCMF_ERR_SYSTEM;
  }
  /* If the generator fails the seeds stay 0: that costs only evenness. */
  uint64_t seed[2] = {0, 0};
  RAND_bytes((uint8_t *)seed, sizeof(seed));
  struct dcmf_ratelimit_settings stun_rl = {.rate = settings->stun_rate,
                                            .burst = settings->stun_rate,
                                            .seed = seed[0]};
  struct dcmf_ratelimit_settings hello_rl = {.rate = settings->hello_rate,
                                             .burst = settings->hello_rate,
                                             .seed = seed[1]};
  if (dcmf_ratelimit_new(&w->stun_limit, &stun_rl) != 0 ||
      dcmf_ratelimit_new(&w->hello_limit, &hello_rl) != 0) {
    dcmf_ratelimit_del(w->stun_limit);
    dcmf_dtls_ctx_free(&w->dtls_ctx);
    free(w);
    return DCMF_ERR_NOMEM;
  }
  uv_loop_init(&w->loop);
  /* The pool's handles live on the worker loop; creating them before the
   * thread starts is safe because nothing runs that loop yet. */
  int rv = dcmf_upstream_pool_new(&w->pool, &w->loop, &settings->upstream,
                                  settings->log, err, errlen);
  if (rv != 0) {
    uv_loop_close(&w->loop);
    dcmf_ratelimit_del(w->stun_limit);
    dcmf_ratelimit_del(w->hello_limit);
    dcmf_dtls_ctx_free(&w->dtls_ctx);
    free(w);
    return rv;
  }
  if (settings->cache_size > 0) {
    struct dcmf_cache_settings cs;
    dcmf_cache_settings_default(&cs);
    cs.max_bytes = settings->cache_size;
    if (cs.max_entry_bytes > cs.max_bytes) {
      cs.max_entry_bytes = cs.max_bytes;
    }
    /* The index is keyed so phones cannot pick colliding URLs. */
    RAND_bytes(cs.hash_key, sizeof(cs.hash_key));
    if (dcmf_cache_new(&w->cache, &cs, NULL) != 0) {
      w->cache = NULL;
    }
  }
  w->proxy_env = (struct dcmf_httpproxy_env){
      .pool = w->pool,
      .cache = w->cache,
      .repo = settings->proxy_fallback ? settings->repo : NULL,
      .log = settings->log,
      .now_ms = wall_ms,
  };
  struct dcmf_queue_settings inbox = {.drain = on_inbox, .user = w};
  /* Events must not keep the control loop running at shutdown. */
  struct dcmf_queue_settings outbox = {
      .limit = OUTBOX_LIMIT, .unref = 1, .drain = on_outbox, .user = w};
  if (dcmf_queue_init(&w->inbox, &w->loop, &inbox) != 0 ||
      dcmf_queue_init(&w->outbox, control_loop, &outbox) != 0) {
    abort(); /* only a mutex or an eventfd the system refuses */
  }
  uv_timer_init(&w->loop, &w->sctp_timer);
  w->sctp_timer.data = w;
  w->env = (struct dcmf_session_env){.loop = &w->loop,
                                     .dtls_ctx = &w->dtls_ctx,
                                     .log = settings->log,
                                     .repo = settings->repo,
                                     .stats = &w->stats,
                                     .max_streams = settings->max_streams,
                                     .rx_scratch = w->rx_scratch,
                                     .rx_scratch_len = sizeof(w->rx_scratch),
                                     .tx_scratch = w->tx_scratch,
                                     .tx_scratch_len = sizeof(w->tx_scratch),
                                     .proxy = &w->proxy_env,
                                     .proxy_counters = &w->proxy_counters,
                                     .emit = emit,
                                     .emit_user = w,
                                     .find_session = find_session,
                                     .find_user = w,
                                     .stun_limit = w->stun_limit,
                                     .hello_limit = w->hello_limit};
  dcmf_heartbeat_start(&w->heartbeat, &w->loop);
  if (uv_thread_create(&w->thread, worker_main, w) != 0) {
    /* No thread runs the worker loop: close its handles here. |w| holds
     * the outbox handle of the control loop, so it is freed by that
     * handle's close callback, not now. */
    close_all(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    dcmf_cache_del(w->cache);
    dcmf_ratelimit_del(w->stun_limit);
    dcmf_ratelimit_del(w->hello_limit);
    dcmf_dtls_ctx_free(&w->dtls_ctx);
    dcmf_queue_close(&w->outbox, outbox_closed);
    return DCMF_ERR_SYSTEM;
  }
  *out = w;
  return 0;
}

static void outbox_closed(void *user, struct dcmf_queue_node *list) {
  while (list != NULL) {
    struct event_msg *m = dcmf_queue_entry(list, struct event_msg, node);
    list = list->next;
    free(m);
  }
  free(user); /* the worker */
}

void dcmf_worker_stop(struct dcmf_worker *w) {
  post(w, msg_new(MSG_STOP));
  uv_thread_join(&w->thread);
  uv_loop_close(&w->loop);
  dcmf_cache_del(w->cache);
  dcmf_ratelimit_del(w->stun_limit);
  dcmf_ratelimit_del(w->hello_limit);
  dcmf_dtls_ctx_free(&w->dtls_ctx);
  dcmf_queue_close(&w->outbox, outbox_closed);
}

const struct dcmf_heartbeat *
dcmf_worker_heartbeat(const struct dcmf_worker *w) {
  return &w->heartbeat;
}

const struct dcmf_media_stats *dcmf_worker_stats(const struct dcmf_worker *w) {
  return &w->stats;
}

uint64_t dcmf_worker_events_refused(struct dcmf_worker *w) {
  return dcmf_queue_refused(&w->outbox);
}
