#include "shimloop.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>

#include "errors.h"
#include "heartbeat.h"
#include "queue.h"

/* Larger than any UDP payload, so no datagram is ever truncated. */
#define RX_BUFFER 65536

enum msg_kind { MSG_ADD, MSG_UPDATE, MSG_REMOVE, MSG_STOP };

struct msg {
  enum msg_kind kind;
  struct dcmf_shimloop_relay *relay;
  struct dcmf_relay_config cfg; /* UPDATE */
  int on_heap;                  /* UPDATE messages are allocated */
  struct dcmf_queue_node node;
};

struct dcmf_shimloop_relay {
  struct dcmf_shimloop *sl;
  uint16_t ports[DCMF_RELAY_SIDES];
  int fds[DCMF_RELAY_SIDES]; /* until the relay thread takes them */
  struct dcmf_relay_config initial;
  /* Relay thread only. */
  struct dcmf_relay engine;
  uv_udp_t udp[DCMF_RELAY_SIDES];
  int v6[DCMF_RELAY_SIDES]; /* the socket is AF_INET6 */
  int handles_open;
  int closing;
  struct dcmf_shimloop_relay *live_next, **live_prev;
  /* Embedded, so adding and removing never fail for want of memory. */
  struct msg add_msg, remove_msg;
  /* Shared with the control thread. */
  struct dcmf_shimloop_stats pub;
  uv_mutex_t mu; /* guards |latched| and |peer| */
  int latched;
  struct sockaddr_storage peer;
  struct dcmf_queue_node done; /* on the outbox, once closed */
};

struct dcmf_shimloop {
  struct dcmf_shimloop_settings settings;
  uv_thread_t thread;
  uv_loop_t loop; /* the relay thread's own */
  /* Control → relay thread: ADD, REMOVE and STOP are embedded in their
   * relay (or here), so their count is bounded by the relays; UPDATEs
   * are as many as PATCH requests the control loop is answering. */
  struct dcmf_queue inbox;
  struct dcmf_queue outbox; /* closed relays, drained on the control loop */
  struct msg stop_msg;
  struct dcmf_shimloop_relay *live; /* relay thread only */
  struct dcmf_shimloop_stats totals;
  struct dcmf_heartbeat heartbeat; /* the control thread watches it */
  uint8_t rx[RX_BUFFER];
};

#define RELAXED memory_order_relaxed

/* ---- relay thread → control --------------------------------------------- */

static void on_outbox(void *user, struct dcmf_queue_node *list) {
  struct dcmf_shimloop *sl = user;
  while (list != NULL) {
    struct dcmf_shimloop_relay *r =
        dcmf_queue_entry(list, struct dcmf_shimloop_relay, done);
    list = list->next;
    for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
      sl->settings.on_released(sl->settings.user, r->ports[s]);
    }
    uv_mutex_destroy(&r->mu);
    free(r);
  }
}

/* ---- the packet path (relay thread) ------------------------------------ */

static void count(struct dcmf_shimloop_relay *r, enum dcmf_relay_side side,
                  int forwarded, enum dcmf_relay_drop reason, size_t len) {
  struct dcmf_shimloop_stats *st[2] = {&r->pub, &r->sl->totals};
  for (int i = 0; i < 2; i++) {
    if (forwarded) {
      atomic_fetch_add_explicit(&st[i]->packets[side], 1, RELAXED);
      atomic_fetch_add_explicit(&st[i]->bytes[side], len, RELAXED);
    } else {
      atomic_fetch_add_explicit(&st[i]->dropped[side][reason], 1, RELAXED);
    }
  }
}

static void publish_latch(struct dcmf_shimloop_relay *r) {
  const struct sockaddr *peer = dcmf_relay_peer(&r->engine);
  uv_mutex_lock(&r->mu);
  r->latched = peer != NULL;
  if (peer != NULL) {
    memcpy(&r->peer, peer, sizeof(r->peer));
  }
  uv_mutex_unlock(&r->mu);
  if (peer != NULL) {
    atomic_fetch_add_explicit(&r->pub.latches, 1, RELAXED);
    atomic_fetch_add_explicit(&r->sl->totals.latches, 1, RELAXED);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct dcmf_shimloop_relay *r = h->data;
  *buf = uv_buf_init((char *)r->sl->rx, sizeof(r->sl->rx));
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags) {
  struct dcmf_shimloop_relay *r = h->data;
  /* nread 0 with an address is an empty datagram, relayed like any. */
  if (nread < 0 || from == NULL || (flags & UV_UDP_PARTIAL) || r->closing) {
    return;
  }
  enum dcmf_relay_side side =
      h == &r->udp[DCMF_RELAY_CORE] ? DCMF_RELAY_CORE : DCMF_RELAY_ACCESS;
  struct dcmf_relay_verdict v;
  int rv = dcmf_relay_recv(&r->engine, side, from, (const uint8_t *)buf->base,
                           (size_t)nread, &v);
  if (rv < 0) {
    return;
  }
  if (v.latched_now) {
    publish_latch(r);
  }
  if (rv == 0) {
    count(r, side, 0, v.reason, v.len);
    return;
  }
  const struct sockaddr *to = v.to;
  struct sockaddr_in6 mapped;
  if (r->v6[v.out] && to->sa_family == AF_INET) {
    /* A dual-stack socket reaches IPv4 through IPv4-mapped IPv6. */
    const struct sockaddr_in *in = (const struct sockaddr_in *)to;
    memset(&mapped, 0, sizeof(mapped));
    mapped.sin6_family = AF_INET6;
    mapped.sin6_port = in->sin_port;
    mapped.sin6_addr.s6_addr[10] = 0xff;
    mapped.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&mapped.sin6_addr.s6_addr[12], &in->sin_addr, 4);
    to = (const struct sockaddr *)&mapped;
  }
  uv_buf_t out = uv_buf_init((char *)(uintptr_t)v.data, (unsigned)v.len);
  int sent = uv_udp_try_send(&r->udp[v.out], &out, 1, to);
  if (sent < 0) {
    dcmf_relay_send_failed(&r->engine, side, v.len);
    count(r, side, 0, DCMF_RELAY_DROP_SEND_FAILED, v.len);
    DCMF_LOGD(r->sl->settings.log, "agw", "relay port %u: send failed: %s",
              r->ports[v.out], uv_strerror(sent));
    return;
  }
  count(r, side, 1, DCMF_RELAY_DROP_UNKNOWN_SOURCE, v.len);
}

/* ---- relay life cycle (relay thread) ------------------------------------ */

static void on_handle_closed(uv_handle_t *h) {
  struct dcmf_shimloop_relay *r = h->data;
  if (--r->handles_open > 0) {
    return;
  }
  dcmf_queue_push_always(&r->sl->outbox, &r->done);
}

static void relay_close(struct dcmf_shimloop_relay *r) {
  if (r->closing) {
    return;
  }
  r->closing = 1;
  *r->live_prev = r->live_next;
  if (r->live_next != NULL) {
    r->live_next->live_prev = r->live_prev;
  }
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    uv_close((uv_handle_t *)&r->udp[s], on_handle_closed);
  }
}

static int socket_is_v6(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
         ss.ss_family == AF_INET6;
}

static void relay_start(struct dcmf_shimloop *sl,
                        struct dcmf_shimloop_relay *r) {
  r->live_next = sl->live;
  r->live_prev = &sl->live;
  if (sl->live != NULL) {
    sl->live->live_prev = &r->live_next;
  }
  sl->live = r;
  dcmf_relay_init(&r->engine, &r->initial); /* checked when added */
  int failed = 0;
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    uv_udp_init(&sl->loop, &r->udp[s]);
    r->udp[s].data = r;
    r->handles_open++;
    r->v6[s] = socket_is_v6(r->fds[s]);
    int rv = uv_udp_open(&r->udp[s], r->fds[s]);
    if (rv != 0) {
      close(r->fds[s]);
    } else {
      rv = uv_udp_recv_start(&r->udp[s], on_alloc, on_recv);
    }
    r->fds[s] = -1;
    if (rv != 0) {
      DCMF_LOGE(sl->settings.log, "agw", "relay port %u: %s",
                r->ports[s], uv_strerror(rv));
      failed = 1;
    }
  }
  if (failed) { /* keep the handles (and ports) until removed */
    for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
      uv_udp_recv_stop(&r->udp[s]);
    }
  }
}

/* Nothing follows STOP, but an UPDATE is never leaked. */
static void inbox_closed(void *user, struct dcmf_queue_node *list) {
  (void)user;
  while (list != NULL) {
    struct msg *m = dcmf_queue_entry(list, struct msg, node);
    list = list->next;
    if (m->on_heap) {
      free(m);
    }
  }
}

static void on_inbox(void *user, struct dcmf_queue_node *list) {
  struct dcmf_shimloop *sl = user;
  while (list != NULL) {
    struct msg *m = dcmf_queue_entry(list, struct msg, node);
    list = list->next;
    struct dcmf_shimloop_relay *r = m->relay;
    switch (m->kind) {
    case MSG_ADD:
      relay_start(sl, r);
      break;
    case MSG_UPDATE:
      if (dcmf_relay_set_config(&r->engine, &m->cfg) == 0 &&
          dcmf_relay_peer(&r->engine) == NULL) {
        publish_latch(r); /* the access side changed: latch cleared */
      }
      break;
    case MSG_REMOVE:
      relay_close(r);
      break;
    case MSG_STOP:
      while (sl->live != NULL) {
        relay_close(sl->live);
      }
      dcmf_queue_close(&sl->inbox, inbox_closed);
      dcmf_heartbeat_close(&sl->heartbeat);
      break;
    }
    if (m->on_heap) {
      free(m);
    }
  }
}

static void thread_main(void *arg) {
  struct dcmf_shimloop *sl = arg;
  /* Named for operators (top -H, /proc/PID/task/TID/comm). */
  pthread_setname_np(pthread_self(), "dcmf-agw");
  uv_run(&sl->loop, UV_RUN_DEFAULT);
}

/* ---- control thread ------------------------------------------------------ */

static void post(struct dcmf_shimloop *sl, struct msg *m) {
  dcmf_queue_push_always(&sl->inbox, &m->node);
}

int dcmf_shimloop_add(struct dcmf_shimloop *sl,
                      const struct dcmf_relay_config *cfg,
                      const uint16_t ports[DCMF_RELAY_SIDES],
                      const int fds[DCMF_RELAY_SIDES],
                      struct dcmf_shimloop_relay **out) {
  if (dcmf_relay_config_check(cfg) != 0) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_shimloop_relay *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    return DCMF_ERR_NOMEM;
  }
  if (uv_mutex_init(&r->mu) != 0) {
    free(r);
    return DCMF_ERR_NOMEM;
  }
  r->sl = sl;
  r->initial = *cfg;
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    r->ports[s] = ports[s];
    r->fds[s] = fds[s];
  }
  r->add_msg = (struct msg){.kind = MSG_ADD, .relay = r};
  post(sl, &r->add_msg);
  *out = r;
  return 0;
}

int dcmf_shimloop_update(struct dcmf_shimloop *sl,
                         struct dcmf_shimloop_relay *relay,
                         const struct dcmf_relay_config *cfg) {
  struct msg *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return DCMF_ERR_NOMEM;
  }
  *m = (struct msg){.kind = MSG_UPDATE, .relay = relay, .cfg = *cfg,
                    .on_heap = 1};
  post(sl, m);
  return 0;
}

void dcmf_shimloop_remove(struct dcmf_shimloop *sl,
                          struct dcmf_shimloop_relay *relay) {
  relay->remove_msg = (struct msg){.kind = MSG_REMOVE, .relay = relay};
  post(sl, &relay->remove_msg);
}

void dcmf_shimloop_read(struct dcmf_shimloop_relay *r,
                        struct dcmf_relay_counters *c,
                        struct sockaddr_storage *peer, int *latched) {
  memset(c, 0, sizeof(*c));
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    c->packets[s] = atomic_load_explicit(&r->pub.packets[s], RELAXED);
    c->bytes[s] = atomic_load_explicit(&r->pub.bytes[s], RELAXED);
    for (int k = 0; k < DCMF_RELAY_DROP_REASONS; k++) {
      c->dropped[s][k] = atomic_load_explicit(&r->pub.dropped[s][k], RELAXED);
    }
  }
  c->latches = atomic_load_explicit(&r->pub.latches, RELAXED);
  uv_mutex_lock(&r->mu);
  *latched = r->latched;
  if (r->latched) {
    memcpy(peer, &r->peer, sizeof(*peer));
  }
  uv_mutex_unlock(&r->mu);
}

const struct dcmf_shimloop_stats *dcmf_shimloop_stats(
    const struct dcmf_shimloop *sl) {
  return &sl->totals;
}

const struct dcmf_heartbeat *
dcmf_shimloop_heartbeat(const struct dcmf_shimloop *sl) {
  return &sl->heartbeat;
}

static void outbox_closed(void *user, struct dcmf_queue_node *list) {
  on_outbox(user, list); /* give back what the async did not yet */
  free(user);
}

int dcmf_shimloop_start(struct dcmf_shimloop **out, uv_loop_t *control_loop,
                        const struct dcmf_shimloop_settings *settings) {
  struct dcmf_shimloop *sl = calloc(1, sizeof(*sl));
  if (sl == NULL) {
    return DCMF_ERR_NOMEM;
  }
  sl->settings = *settings;
  if (uv_loop_init(&sl->loop) != 0) {
    free(sl);
    return DCMF_ERR_SYSTEM;
  }
  struct dcmf_queue_settings inbox = {.drain = on_inbox, .user = sl};
  /* Releases must not keep the control loop running at shutdown. */
  struct dcmf_queue_settings outbox = {
      .unref = 1, .drain = on_outbox, .user = sl};
  if (dcmf_queue_init(&sl->inbox, &sl->loop, &inbox) != 0) {
    uv_loop_close(&sl->loop);
    free(sl);
    return DCMF_ERR_SYSTEM;
  }
  if (dcmf_queue_init(&sl->outbox, control_loop, &outbox) != 0) {
    dcmf_queue_close(&sl->inbox, inbox_closed);
    uv_run(&sl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&sl->loop);
    free(sl);
    return DCMF_ERR_SYSTEM;
  }
  dcmf_heartbeat_start(&sl->heartbeat, &sl->loop);
  if (uv_thread_create(&sl->thread, thread_main, sl) != 0) {
    dcmf_queue_close(&sl->inbox, inbox_closed);
    dcmf_heartbeat_close(&sl->heartbeat);
    uv_run(&sl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&sl->loop);
    /* |sl| is freed once the control loop has closed this handle. */
    dcmf_queue_close(&sl->outbox, outbox_closed);
    return DCMF_ERR_SYSTEM;
  }
  *out = sl;
  return 0;
}

void dcmf_shimloop_stop(struct dcmf_shimloop *sl) {
  sl->stop_msg = (struct msg){.kind = MSG_STOP};
  post(sl, &sl->stop_msg);
  uv_thread_join(&sl->thread);
  uv_loop_close(&sl->loop);
  /* Every relay is closed now; give back what the async did not yet. */
  dcmf_queue_drain(&sl->outbox);
  dcmf_queue_close(&sl->outbox, outbox_closed);
}
