#include "worker.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "dtls.h"
#include "errors.h"
#include "hashmap.h"
#include "heartbeat.h"
#include "memtrim.h"
#include "pace.h"
#include "queue.h"
#include "ratelimit.h"
#include "relayhost.h"
#include "tcprelay.h"
#include "sctp.h"
#include "session.h"
#include "srtp.h"
#include "tickq.h"
#include "udpread.h"

/* usrsctp has no "next timeout" call, so its timers are ticked at this
 * period while any session exists. After each tick only the sessions in
 * the worker's tick queue (those with work pending) are visited. */
#define SCTP_TICK_MS 10
/* Events waiting for the control loop, which empties the outbox on every
 * turn; only a control loop that stopped turning fills it. Past this,
 * events are refused and counted (with the dropped notifications). */
#define OUTBOX_LIMIT 4096

/* Relay counters are pushed only while the outbox holds fewer events
 * than this, so a control loop that falls behind keeps room for media
 * events (the relays push again a period later, nothing is lost). */
#define OUTBOX_RELAY_ROOM(w) ((w)->outbox_limit / 2)

/* What an inbox message carries (media.h): the controller's message
 * about a DC media, the AGW shim's about a relay, the RSA identity that
 * came late, or the stop. */
enum msg_kind { MSG_MEDIA, MSG_RELAY, MSG_RSA_IDENTITY, MSG_STOP };

/* One message of the inbox. */
struct msg {
  enum msg_kind kind;
  enum dcmf_media_op op;
  struct dcmf_media_desc desc; /* REMOVE: only the key */
  enum dcmf_relay_op relay_op;
  struct dcmf_relay_desc relay; /* REMOVE: only the id */
  X509 *rsa_cert;               /* MSG_RSA_IDENTITY; borrowed */
  EVP_PKEY *rsa_pkey;
  struct dcmf_queue_node node;
};

/* One message of the outbox: a media event or a relay event. */
struct event_msg {
  int is_relay;
  union {
    struct dcmf_media_event media;
    struct dcmf_relay_event relay;
  } ev;
  struct dcmf_queue_node node;
};

/* A session as the worker files it: in the table by media key (the
 * controller's messages find it there) and in a list (the walk over all
 * at shutdown). The SCTP tick visits only the tick queue, and the DC
 * relay service keeps its own links between twins. */
struct node {
  struct dcmf_hashmap_entry entry; /* keyed by dcmf_session_key() */
  struct dcmf_session *session;
  struct node *next, *prev;
};

struct dcmf_worker {
  struct dcmf_worker_settings settings;
  struct dcmf_media_stats stats;
  uv_thread_t thread;
  uv_loop_t loop; /* the worker's own loop */
  struct dcmf_queue inbox;  /* control → worker, drained on |loop| */
  struct dcmf_queue outbox; /* events, drained on the control loop */
  size_t outbox_limit;      /* OUTBOX_LIMIT unless the settings say */
  uv_timer_t sctp_timer;
  uint64_t last_tick_ms;
  struct dcmf_tickq ticks; /* sessions with work for the next tick */
  /* Sessions whose stack held a message (SCTP bundling) or gathered DTLS
   * records (coalescing) this loop turn; flushed
   * before the loop polls again (prepare: what timers and deferred
   * callbacks produced) and after it polled (check: what the sockets
   * brought). Both handles are unref'd: they never keep the loop alive,
   * and an idle loop sleeps in poll without running them. */
  struct dcmf_tickq flushes;
  uv_prepare_t flush_prepare;
  uv_check_t flush_check;
  /* Loop pacing (pace.h; settings.pace_us): the check callback tells
   * the engine how many datagrams the turn read and pauses as long as
   * the engine says. */
  struct dcmf_pace pace;
  /* Datagrams the sessions' and services' readers read (udpread.h);
   * what a turn read tells the pacing whether its pause paid off. */
  struct dcmf_udpread_tally rx_datagrams, rx_datagrams_seen;
  struct dcmf_heartbeat heartbeat; /* the control thread watches it */
  struct dcmf_memtrim trim;        /* after a burst of releases */
  struct dcmf_ratelimit *stun_limit, *hello_limit;
  struct dcmf_dtls_ctx dtls_ctx;
  struct dcmf_dtls_ctx dtls_rsa_ctx; /* zeroed when there is none */
  struct dcmf_session_env env;
  /* The services with their per-worker state (service.h). */
  struct dcmf_session_service services[DCMF_SVC_MAX];
  size_t n_services;          /* initialised so far */
  struct dcmf_hashmap by_key; /* struct node, by media key */
  struct node *sessions;      /* the same nodes, newest first */
  struct dcmf_relayhost relays; /* the AGW shim's relays on this worker */
  /* Its e2ae TCP relays (tcprelay.h). */
  struct dcmf_tcprelay_host tcprelays;
  /* A batch of datagrams read at once (udpread.h), 64 KiB each: no
   * datagram is truncated. The relays use it as one buffer. */
  uint8_t rx_scratch[DCMF_UDPREAD_BATCH * 65536];
  uint8_t tx_scratch[65536];
};

static void outbox_closed(void *user, struct dcmf_queue_node *list);

/* ---- worker → control ----------------------------------------------------- */

/* |must| 1 (RELEASED): never refused, since the AGW shim gives the
 * media's ports and record back only on it; at most one per REMOVE, so
 * the removals bound them. */
static void emit_event(struct dcmf_worker *w, const struct dcmf_media_key *key,
                       const char *event, const char *detail, int must) {
  struct event_msg *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    if (must) {
      abort(); /* a lost release would leave the ports bound forever */
    }
    return;
  }
  struct dcmf_media_event *ev = &m->ev.media;
  ev->key = *key;
  snprintf(ev->event, sizeof(ev->event), "%s", event);
  snprintf(ev->detail, sizeof(ev->detail), "%s", detail ? detail : "{}");
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ev->time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (must) {
    dcmf_queue_push_always(&w->outbox, &m->node);
  } else if (dcmf_queue_push(&w->outbox, &m->node) != 0) {
    free(m); /* counted by the queue */
  }
}

static void emit_tcprelay(void *user, const struct dcmf_media_key *key,
                          const char *event, const char *detail, int must) {
  emit_event(user, key, event, detail, must);
}

static void emit(void *user, const struct dcmf_media_key *key,
                 const char *event, const char *detail) {
  emit_event(user, key, event, detail, 0);
}

/* The relays' reports (relayhost.h). One that must arrive (a release,
 * a latch change) is never refused: there is at most one per relay
 * removal or latch, so the relays bound them. */
static int emit_relay(void *user, const struct dcmf_relay_event *ev, int must) {
  struct dcmf_worker *w = user;
  if (!must && dcmf_queue_count(&w->outbox) >= OUTBOX_RELAY_ROOM(w)) {
    return DCMF_ERR_EXHAUSTED;
  }
  struct event_msg *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    if (must) {
      abort(); /* a lost release would leave two ports bound forever */
    }
    return DCMF_ERR_NOMEM;
  }
  m->is_relay = 1;
  m->ev.relay = *ev;
  dcmf_queue_push_always(&w->outbox, &m->node);
  return 0;
}

static void on_outbox(void *user, struct dcmf_queue_node *list) {
  struct dcmf_worker *w = user;
  while (list != NULL) {
    struct event_msg *m = dcmf_queue_entry(list, struct event_msg, node);
    list = list->next;
    if (!m->is_relay) {
      w->settings.on_event(w->settings.user, &m->ev.media);
    } else if (w->settings.on_relay_event != NULL) {
      w->settings.on_relay_event(w->settings.relay_user, &m->ev.relay);
    }
    free(m);
  }
}

/* ---- control → worker ----------------------------------------------------- */

/* Never refused: a lost control message would leave a port bound. The
 * inbox is bounded by the port pool (one ADD per reserved port). */
static void post(struct dcmf_worker *w, struct msg *m) {
  dcmf_queue_push_always(&w->inbox, &m->node);
}

static struct msg *msg_new(void) {
  struct msg *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    abort(); /* a lost control message would leave a port bound forever */
  }
  m->desc.fd = -1;
  m->relay.fds[0] = m->relay.fds[1] = -1;
  return m;
}

void dcmf_worker_post(struct dcmf_worker *w, enum dcmf_media_op op,
                      struct dcmf_media_desc *desc) {
  struct msg *m = msg_new();
  m->kind = MSG_MEDIA;
  m->op = op;
  m->desc = *desc;
  post(w, m);
}

void dcmf_worker_post_relay(struct dcmf_worker *w, enum dcmf_relay_op op,
                            struct dcmf_relay_desc *desc) {
  struct msg *m = msg_new();
  m->kind = MSG_RELAY;
  m->relay_op = op;
  m->relay = *desc;
  post(w, m);
}

void dcmf_worker_set_rsa_identity(struct dcmf_worker *w, X509 *cert,
                                  EVP_PKEY *pkey) {
  struct msg *m = msg_new();
  m->kind = MSG_RSA_IDENTITY;
  m->rsa_cert = cert;
  m->rsa_pkey = pkey;
  post(w, m);
}

/* ---- inside the worker thread -------------------------------------------- */

static int node_key_equal(const struct dcmf_hashmap_entry *e,
                          const void *key) {
  const struct node *n = DCMF_HASHMAP_ITEM(e, const struct node, entry);
  return dcmf_media_key_equal(dcmf_session_key(n->session), key);
}

/* The node of media |key|, or NULL: one hash lookup, whatever the
 * number of sessions. */
static struct node *find(struct dcmf_worker *w,
                         const struct dcmf_media_key *key) {
  return DCMF_HASHMAP_ITEM(
      dcmf_hashmap_find(&w->by_key, dcmf_media_key_hash(key), key), struct node,
      entry);
}

static void node_link(struct dcmf_worker *w, struct node *n) {
  dcmf_hashmap_insert(&w->by_key, &n->entry,
                      dcmf_media_key_hash(dcmf_session_key(n->session)));
  n->prev = NULL;
  n->next = w->sessions;
  if (w->sessions != NULL) {
    w->sessions->prev = n;
  }
  w->sessions = n;
}

static void node_unlink(struct dcmf_worker *w, struct node *n) {
  dcmf_hashmap_remove(&w->by_key, &n->entry);
  if (n->prev != NULL) {
    n->prev->next = n->next;
  } else {
    w->sessions = n->next;
  }
  if (n->next != NULL) {
    n->next->prev = n->prev;
  }
}

/* Services publish what they count on this thread (the HTTP proxy's
 * upstream pool and cache). */
static void services_worker_tick(struct dcmf_worker *w) {
  for (size_t i = 0; i < w->n_services; i++) {
    if (w->services[i].svc->worker_tick != NULL) {
      w->services[i].svc->worker_tick(w->services[i].worker);
    }
  }
}

/* Frees the services' per-worker state, last first. */
static void services_free(struct dcmf_worker *w) {
  while (w->n_services > 0) {
    struct dcmf_session_service *sv = &w->services[--w->n_services];
    if (sv->svc->free != NULL) {
      sv->svc->free(sv->worker);
    }
  }
}

static void on_sctp_tick(uv_timer_t *t) {
  struct dcmf_worker *w = t->data;
  uint64_t now = uv_now(&w->loop);
  services_worker_tick(w);
  dcmf_sctp_stack_tick((uint32_t)(now - w->last_tick_ms));
  w->last_tick_ms = now;
  dcmf_tickq_run(&w->ticks);
}

/* The end of a loop turn: every session that held output back sends it,
 * in as few packets and datagrams as it fits in. */
static void on_flush_prepare(uv_prepare_t *h) {
  struct dcmf_worker *w = h->data;
  dcmf_tickq_run(&w->flushes);
}

/* The turn's I/O is what the sockets' readers (udpread.h) counted. */
static void pace_turn(struct dcmf_worker *w) {
  uint64_t read = w->rx_datagrams.datagrams - w->rx_datagrams_seen.datagrams;
  int more = w->rx_datagrams.full != w->rx_datagrams_seen.full;
  w->rx_datagrams_seen = w->rx_datagrams;
  uint64_t pause = dcmf_pace_turn(&w->pace, uv_hrtime(), read, more);
  if (pause == 0) {
    return;
  }
  struct timespec ts = {.tv_sec = (time_t)(pause / 1000000000u),
                        .tv_nsec = (long)(pause % 1000000000u)};
  /* A signal cutting the pause short only makes it shorter. */
  (void)clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static void on_flush_check(uv_check_t *h) {
  struct dcmf_worker *w = h->data;
  /* What the sockets brought leaves before the pause. */
  dcmf_tickq_run(&w->flushes);
  if (w->pace.pace_ns != 0) {
    pace_turn(w);
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
  struct node *old = find(w, &m->desc.key);
  if (old != NULL) { /* a duplicate add replaces the session */
    node_unlink(w, old);
    dcmf_session_close(old->session);
    free(old);
    atomic_fetch_sub_explicit(&w->stats.sessions, 1, memory_order_relaxed);
    dcmf_memtrim_note(&w->trim);
  }
  struct node *n = calloc(1, sizeof(*n));
  if (n == NULL) {
    if (m->desc.fd >= 0) {
      close(m->desc.fd); /* the session would have owned both */
    }
    dcmf_media_desc_free(&m->desc);
  }
  if (n == NULL || dcmf_session_new(&n->session, &w->env, &m->desc) != 0) {
    DCMF_LOGE(w->settings.log, "worker", "cannot start media %s/%s/%s",
              m->desc.key.context_id, m->desc.key.termination_id,
              m->desc.key.media_id);
    free(n);
    return;
  }
  node_link(w, n);
  atomic_fetch_add_explicit(&w->stats.sessions, 1, memory_order_relaxed);
}

static void handle_remove(struct dcmf_worker *w,
                          const struct dcmf_media_key *key) {
  struct node *n = find(w, key);
  if (n == NULL) {
    return;
  }
  node_unlink(w, n);
  dcmf_session_close(n->session);
  free(n);
  atomic_fetch_sub_explicit(&w->stats.sessions, 1, memory_order_relaxed);
  dcmf_memtrim_note(&w->trim);
}

/* Nothing follows the stop, but a message is never leaked. */
static void inbox_closed(void *user, struct dcmf_queue_node *list) {
  (void)user;
  while (list != NULL) {
    struct msg *m = dcmf_queue_entry(list, struct msg, node);
    list = list->next;
    if (m->kind == MSG_MEDIA && m->op == DCMF_MEDIA_OP_ADD && m->desc.fd >= 0) {
      close(m->desc.fd); /* the session would have owned it */
    }
    if (m->kind == MSG_MEDIA) {
      dcmf_media_desc_free(&m->desc); /* a REMOVE's holds at most a leg */
    }
    for (int s = 0; m->kind == MSG_RELAY && s < DCMF_RELAY_SIDES; s++) {
      if (m->relay.fds[s] >= 0) {
        close(m->relay.fds[s]); /* the relay would have owned them */
      }
    }
    free(m);
  }
}

static void close_all(struct dcmf_worker *w) {
  while (w->sessions != NULL) {
    handle_remove(w, dcmf_session_key(w->sessions->session));
  }
  dcmf_relayhost_close(&w->relays); /* their handles close as the loop ends */
  dcmf_tcprelay_host_close(&w->tcprelays);
  services_free(w); /* their handles close while the loop still runs */
  uv_close((uv_handle_t *)&w->sctp_timer, NULL);
  uv_close((uv_handle_t *)&w->flush_prepare, NULL);
  uv_close((uv_handle_t *)&w->flush_check, NULL);
  dcmf_queue_close(&w->inbox, inbox_closed);
  dcmf_heartbeat_close(&w->heartbeat);
  dcmf_memtrim_close(&w->trim);
}

static void handle_msg(struct dcmf_worker *w, struct msg *m) {
  if (m->desc.tcpleg != NULL) {
    /* An e2ae TCP media is a relay, not a session. */
    dcmf_tcprelay_host_handle(&w->tcprelays, m->op, &m->desc);
    return;
  }
  switch (m->op) {
  case DCMF_MEDIA_OP_ADD:
    handle_add(w, m);
    break;
  case DCMF_MEDIA_OP_UPDATE: {
    struct node *n = find(w, &m->desc.key);
    if (n != NULL) {
      dcmf_session_update(n->session, &m->desc);
    } else {
      dcmf_media_desc_free(&m->desc);
    }
    break;
  }
  case DCMF_MEDIA_OP_REMOVE:
    handle_remove(w, &m->desc.key);
    /* An e2ae media's owner (the AGW shim) reuses its ports only once
     * the session let go of them: a REMOVE carrying a leg asks for this
     * report, whether or not the session had started. */
    if (m->desc.rtpleg != NULL || m->desc.msrpleg != NULL) {
      emit_event(w, &m->desc.key, "RELEASED", "{}", 1);
    }
    dcmf_media_desc_free(&m->desc);
    break;
  }
}

/* Sessions started from now on that ask for the RSA identity get it
 * (the env is copied into each session at its start). */
static void handle_rsa_identity(struct dcmf_worker *w, struct msg *m) {
  if (w->env.dtls_rsa_ctx != NULL) {
    return; /* it has one: the first stays */
  }
  if (dcmf_dtls_ctx_init(&w->dtls_rsa_ctx, m->rsa_cert, m->rsa_pkey, 1200) !=
      0) {
    DCMF_LOGE(w->settings.log, "worker",
              "the RSA identity cannot be used; T.38 media will not start");
    return;
  }
  w->env.dtls_rsa_ctx = &w->dtls_rsa_ctx;
}

static void on_inbox(void *user, struct dcmf_queue_node *list) {
  struct dcmf_worker *w = user;
  int stop = 0;
  while (list != NULL) {
    struct msg *m = dcmf_queue_entry(list, struct msg, node);
    list = list->next;
    if (m->kind == MSG_STOP) {
      stop = 1;
    } else if (m->kind == MSG_RELAY) {
      dcmf_relayhost_handle(&w->relays, m->relay_op, &m->relay);
    } else if (m->kind == MSG_RSA_IDENTITY) {
      handle_rsa_identity(w, m);
    } else {
      handle_msg(w, m);
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
  pthread_setname_np(pthread_self(), w->settings.thread_name != NULL
                                         ? w->settings.thread_name
                                         : "dcmf-media");
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
  w->outbox_limit =
      settings->outbox_limit != 0 ? settings->outbox_limit : OUTBOX_LIMIT;
  /* libsrtp2's crypto kernel is one per process (srtp.h): started here,
   * on the thread that starts the worker, before the worker's thread
   * runs any session of the SRTP kind. A worker process starts one
   * worker; a second start in the same process (tests) finds the kernel
   * up and only re-runs its self-test. */
  if (dcmf_srtp_lib_init() != 0 ||
      dcmf_dtls_ctx_init(&w->dtls_ctx, settings->cert, settings->pkey,
                         1200) != 0 ||
      (settings->rsa_cert != NULL &&
       dcmf_dtls_ctx_init(&w->dtls_rsa_ctx, settings->rsa_cert,
                          settings->rsa_pkey, 1200) != 0)) {
    dcmf_dtls_ctx_free(&w->dtls_ctx);
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
  if (dcmf_hashmap_init(&w->by_key, 64, node_key_equal) != 0 ||
      dcmf_ratelimit_new(&w->stun_limit, &stun_rl) != 0 ||
      dcmf_ratelimit_new(&w->hello_limit, &hello_rl) != 0) {
    dcmf_hashmap_free(&w->by_key);
    dcmf_ratelimit_del(w->stun_limit);
    dcmf_dtls_ctx_free(&w->dtls_ctx);
    dcmf_dtls_ctx_free(&w->dtls_rsa_ctx);
    free(w);
    return DCMF_ERR_NOMEM;
  }
  uv_loop_init(&w->loop);
  struct dcmf_svc_worker_env senv = {.loop = &w->loop,
                                     .log = settings->log,
                                     .stats = &w->stats,
                                     .tx_scratch = w->tx_scratch,
                                     .tx_scratch_len = sizeof(w->tx_scratch),
                                     .rx_datagrams = &w->rx_datagrams};
  int rv = settings->n_services > DCMF_SVC_MAX
               ? dcmf_invalid(err, errlen, "more than %d services",
                              DCMF_SVC_MAX)
               : 0;
  /* Services create their handles on the worker loop before the thread
   * starts, which is safe because nothing runs that loop yet. */
  for (size_t i = 0; rv == 0 && i < settings->n_services; i++) {
    const struct dcmf_svc_reg *r = &settings->services[i];
    w->services[i].svc = r->svc;
    if (r->svc->init != NULL) {
      rv = r->svc->init(&w->services[i].worker, &senv, r->config, err,
                        errlen);
    }
    if (rv == 0) {
      w->n_services = i + 1;
    }
  }
  struct dcmf_relayhost_settings rs = {.loop = &w->loop,
                                       .log = settings->log,
                                       .rx = w->rx_scratch,
                                       .rx_len = sizeof(w->rx_scratch),
                                       .emit = emit_relay,
                                       .user = w};
  /* Last: on failure it holds nothing, so the unwinding below fits. */
  struct dcmf_tcprelay_settings ts = {.loop = &w->loop,
                                      .log = settings->log,
                                      .cert = settings->cert,
                                      .pkey = settings->pkey,
                                      .emit = emit_tcprelay,
                                      .user = w};
  if (rv == 0) {
    rv = dcmf_tcprelay_host_init(&w->tcprelays, &ts);
  }
  if (rv == 0) {
    rv = dcmf_relayhost_init(&w->relays, &rs);
    if (rv != 0) {
      dcmf_tcprelay_host_close(&w->tcprelays);
    }
  }
  if (rv != 0) {
    services_free(w);
    uv_run(&w->loop, UV_RUN_DEFAULT); /* lets what they opened close */
    uv_loop_close(&w->loop);
    dcmf_hashmap_free(&w->by_key);
    dcmf_ratelimit_del(w->stun_limit);
    dcmf_ratelimit_del(w->hello_limit);
    dcmf_dtls_ctx_free(&w->dtls_ctx);
    dcmf_dtls_ctx_free(&w->dtls_rsa_ctx);
    free(w);
    return rv;
  }
  struct dcmf_queue_settings inbox = {.drain = on_inbox, .user = w};
  /* Events must not keep the control loop running at shutdown. */
  struct dcmf_queue_settings outbox = {
      .limit = w->outbox_limit, .unref = 1, .drain = on_outbox, .user = w};
  if (dcmf_queue_init(&w->inbox, &w->loop, &inbox) != 0 ||
      dcmf_queue_init(&w->outbox, control_loop, &outbox) != 0) {
    abort(); /* only a mutex or an eventfd the system refuses */
  }
  uv_timer_init(&w->loop, &w->sctp_timer);
  dcmf_tickq_init(&w->ticks);
  w->sctp_timer.data = w;
  dcmf_tickq_init(&w->flushes);
  uv_prepare_init(&w->loop, &w->flush_prepare);
  uv_check_init(&w->loop, &w->flush_check);
  w->flush_prepare.data = w->flush_check.data = w;
  dcmf_pace_init(&w->pace, settings->pace_us);
  int flush_per_turn = settings->dtls_coalesce || settings->sctp_bundle ||
                       settings->pace_us != 0;
  if (flush_per_turn) {
    uv_prepare_start(&w->flush_prepare, on_flush_prepare);
    uv_check_start(&w->flush_check, on_flush_check);
  }
  uv_unref((uv_handle_t *)&w->flush_prepare);
  uv_unref((uv_handle_t *)&w->flush_check);
  w->env = (struct dcmf_session_env){.loop = &w->loop,
                                     .dtls_ctx = &w->dtls_ctx,
                                     .dtls_rsa_ctx =
                                         settings->rsa_cert != NULL
                                             ? &w->dtls_rsa_ctx
                                             : NULL,
                                     .log = settings->log,
                                     .stats = &w->stats,
                                     .max_streams = settings->max_streams,
                                     .min_streams = settings->min_streams,
                                     .srtp_backend = settings->srtp_backend,
                                     .rx_scratch = w->rx_scratch,
                                     .rx_scratch_len = sizeof(w->rx_scratch),
                                     .rx_datagrams = &w->rx_datagrams,
                                     .services = w->services,
                                     .n_services = w->n_services,
                                     .emit = emit,
                                     .emit_user = w,
                                     .stun_limit = w->stun_limit,
                                     .hello_limit = w->hello_limit,
                                     .ticks = &w->ticks,
                                     .flushes = flush_per_turn ? &w->flushes
                                                               : NULL,
                                     .bundle_messages = settings->sctp_bundle,
                                     .coalesce_records =
                                         settings->dtls_coalesce};
  dcmf_heartbeat_start(&w->heartbeat, &w->loop);
  dcmf_memtrim_init(&w->trim, &w->loop, settings->trim_ms,
                    settings->trim_ms * 10u, settings->log);
  if (uv_thread_create(&w->thread, worker_main, w) != 0) {
    /* No thread runs the worker loop: close its handles here. |w| holds
     * the outbox handle of the control loop, so it is freed by that
     * handle's close callback, not now. */
    close_all(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    dcmf_ratelimit_del(w->stun_limit);
    dcmf_ratelimit_del(w->hello_limit);
    dcmf_dtls_ctx_free(&w->dtls_ctx);
    dcmf_dtls_ctx_free(&w->dtls_rsa_ctx);
    dcmf_queue_close(&w->outbox, outbox_closed);
    return DCMF_ERR_SYSTEM;
  }
  *out = w;
  return 0;
}

static void outbox_closed(void *user, struct dcmf_queue_node *list) {
  struct dcmf_worker *w = user;
  while (list != NULL) {
    struct event_msg *m = dcmf_queue_entry(list, struct event_msg, node);
    list = list->next;
    free(m);
  }
  dcmf_hashmap_free(&w->by_key);
  free(w);
}

void dcmf_worker_stop(struct dcmf_worker *w) {
  struct msg *m = msg_new();
  m->kind = MSG_STOP;
  post(w, m);
  uv_thread_join(&w->thread);
  uv_loop_close(&w->loop);
  dcmf_ratelimit_del(w->stun_limit);
  dcmf_ratelimit_del(w->hello_limit);
  dcmf_dtls_ctx_free(&w->dtls_ctx);
  dcmf_dtls_ctx_free(&w->dtls_rsa_ctx);
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
