#include "relayhost.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>

#include "errors.h"

struct dcmf_relayhost_relay {
  struct dcmf_hashmap_entry entry; /* by id, until closing */
  struct dcmf_relayhost *h;
  uint64_t id;
  uint16_t ports[DCMF_RELAY_SIDES];
  struct dcmf_relay engine; /* counts everything we report */
  uv_udp_t udp[DCMF_RELAY_SIDES];
  int v6[DCMF_RELAY_SIDES]; /* the socket is AF_INET6 */
  int handles_open;
  int closing;
  /* On the dirty list (counted since the last push) when |dirty|. */
  int dirty;
  struct dcmf_relayhost_relay *dirty_next, **dirty_prev;
  /* Every relay not closing, for dcmf_relayhost_close(). */
  struct dcmf_relayhost_relay *live_next, **live_prev;
};

/* ---- reports ------------------------------------------------------------ */

static void snapshot(struct dcmf_relayhost_relay *r,
                     enum dcmf_relay_event_kind kind,
                     struct dcmf_relay_event *ev) {
  memset(ev, 0, sizeof(*ev));
  ev->id = r->id;
  ev->kind = kind;
  ev->counters = r->engine.counters;
  const struct sockaddr *peer = dcmf_relay_peer(&r->engine);
  if (peer != NULL) {
    ev->latched = 1;
    memcpy(&ev->peer, peer, sizeof(ev->peer));
  }
  memcpy(ev->ports, r->ports, sizeof(ev->ports));
}

static void dirty_unlink(struct dcmf_relayhost_relay *r) {
  if (!r->dirty) {
    return;
  }
  r->dirty = 0;
  *r->dirty_prev = r->dirty_next;
  if (r->dirty_next != NULL) {
    r->dirty_next->dirty_prev = r->dirty_prev;
  }
}

/* Pushes |r|'s state now; it must arrive (a latch change). */
static void push_now(struct dcmf_relayhost_relay *r) {
  struct dcmf_relay_event ev;
  snapshot(r, DCMF_RELAY_EV_STATE, &ev);
  r->h->settings.emit(r->h->settings.user, &ev, 1);
  dirty_unlink(r); /* everything counted so far went with it */
}

static void on_push_timer(uv_timer_t *t) {
  struct dcmf_relayhost *h = t->data;
  struct dcmf_relayhost_relay *kept = NULL, **kept_tail = &kept;
  while (h->dirty != NULL) {
    struct dcmf_relayhost_relay *r = h->dirty;
    dirty_unlink(r);
    struct dcmf_relay_event ev;
    snapshot(r, DCMF_RELAY_EV_STATE, &ev);
    if (h->settings.emit(h->settings.user, &ev, 0) != 0) {
      /* Refused (the control side is behind): try again next period. */
      r->dirty = 1;
      r->dirty_next = NULL;
      r->dirty_prev = kept_tail;
      *kept_tail = r;
      kept_tail = &r->dirty_next;
    }
  }
  h->dirty = kept;
  if (kept != NULL) {
    kept->dirty_prev = &h->dirty;
  } else {
    uv_timer_stop(&h->push_timer); /* idle relays cost nothing */
  }
}

/* Per datagram: a flag test, and the list and timer only for the first
 * datagram of a period. */
static inline void mark_dirty(struct dcmf_relayhost_relay *r) {
  if (r->dirty) {
    return;
  }
  struct dcmf_relayhost *h = r->h;
  r->dirty = 1;
  r->dirty_next = h->dirty;
  r->dirty_prev = &h->dirty;
  if (h->dirty != NULL) {
    h->dirty->dirty_prev = &r->dirty_next;
  }
  h->dirty = r;
  if (!uv_is_active((uv_handle_t *)&h->push_timer)) {
    uv_timer_start(&h->push_timer, on_push_timer, DCMF_RELAY_PUSH_MS,
                   DCMF_RELAY_PUSH_MS);
  }
}

/* ---- the packet path ---------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct dcmf_relayhost_relay *r = handle->data;
  *buf =
      uv_buf_init((char *)r->h->settings.rx, (unsigned)r->h->settings.rx_len);
}

static void on_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags) {
  struct dcmf_relayhost_relay *r = handle->data;
  /* nread 0 with an address is an empty datagram, relayed like any. */
  if (nread < 0 || from == NULL || (flags & UV_UDP_PARTIAL) || r->closing) {
    return;
  }
  enum dcmf_relay_side side =
      handle == &r->udp[DCMF_RELAY_CORE] ? DCMF_RELAY_CORE : DCMF_RELAY_ACCESS;
  struct dcmf_relay_verdict v;
  int rv = dcmf_relay_recv(&r->engine, side, from, (const uint8_t *)buf->base,
                           (size_t)nread, &v);
  if (rv < 0) {
    return;
  }
  /* A latch goes out at once, before the datagram that made it: the
   * control side never shows an older latch than the peers have seen. */
  if (v.latched_now) {
    push_now(r);
  }
  int counted_since = !v.latched_now;
  if (rv == 1) {
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
      counted_since = 1;
      DCMF_LOGD(r->h->settings.log, "agw", "relay port %u: send failed: %s",
                r->ports[v.out], uv_strerror(sent));
    }
  }
  if (counted_since) {
    mark_dirty(r);
  }
}

/* ---- relay life cycle ---------------------------------------------------- */

static int id_equal(const struct dcmf_hashmap_entry *e, const void *key) {
  const struct dcmf_relayhost_relay *r =
      DCMF_HASHMAP_ITEM(e, const struct dcmf_relayhost_relay, entry);
  return r->id == *(const uint64_t *)key;
}

static uint64_t id_hash(uint64_t id) {
  return dcmf_hash_bytes(0, &id, sizeof(id));
}

static struct dcmf_relayhost_relay *find(struct dcmf_relayhost *h,
                                         uint64_t id) {
  return DCMF_HASHMAP_ITEM(dcmf_hashmap_find(&h->by_id, id_hash(id), &id),
                           struct dcmf_relayhost_relay, entry);
}

/* RELEASED of a relay that never was (its ADD could not be met). */
static void emit_released_unborn(struct dcmf_relayhost *h,
                                 const struct dcmf_relay_desc *d) {
  struct dcmf_relay_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.id = d->id;
  ev.kind = DCMF_RELAY_EV_RELEASED;
  memcpy(ev.ports, d->ports, sizeof(ev.ports));
  h->settings.emit(h->settings.user, &ev, 1);
}

static void on_handle_closed(uv_handle_t *handle) {
  struct dcmf_relayhost_relay *r = handle->data;
  if (--r->handles_open > 0) {
    return;
  }
  /* Both sockets are closed: only now may the ports be bound again. */
  struct dcmf_relay_event ev;
  snapshot(r, DCMF_RELAY_EV_RELEASED, &ev);
  r->h->settings.emit(r->h->settings.user, &ev, 1);
  free(r);
}

static void relay_close(struct dcmf_relayhost_relay *r) {
  struct dcmf_relayhost *h = r->h;
  r->closing = 1;
  dcmf_hashmap_remove(&h->by_id, &r->entry);
  h->live--;
  *r->live_prev = r->live_next;
  if (r->live_next != NULL) {
    r->live_next->live_prev = r->live_prev;
  }
  dirty_unlink(r); /* RELEASED carries the final counters */
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

static void relay_add(struct dcmf_relayhost *h, struct dcmf_relay_desc *d) {
  int duplicate = find(h, d->id) != NULL;
  struct dcmf_relayhost_relay *r = duplicate ? NULL : calloc(1, sizeof(*r));
  if (r == NULL) {
    DCMF_LOGE(h->settings.log, "agw", "relay %llu (ports %u, %u) refused: %s",
              (unsigned long long)d->id, d->ports[0], d->ports[1],
              duplicate ? "duplicate id" : "out of memory");
    for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
      if (d->fds[s] >= 0) {
        close(d->fds[s]);
        d->fds[s] = -1;
      }
    }
    /* Nothing holds the sockets now: say so, so that the shim gives the
     * ports back rather than keeping them forever. (The live relay of a
     * duplicate id reports its own ports when it ends.) */
    if (!duplicate) {
      emit_released_unborn(h, d);
    }
    return;
  }
  r->h = h;
  r->id = d->id;
  memcpy(r->ports, d->ports, sizeof(r->ports));
  /* The sender checks the configuration; an invalid one makes a relay
   * that receives nothing until it is removed. */
  int failed = dcmf_relay_init(&r->engine, &d->config) != 0;
  if (failed) {
    DCMF_LOGE(h->settings.log, "agw", "relay %llu: invalid configuration",
              (unsigned long long)d->id);
  }
  struct dcmf_relayhost_relay **head = &h->live_list;
  r->live_next = *head;
  r->live_prev = head;
  if (*head != NULL) {
    (*head)->live_prev = &r->live_next;
  }
  *head = r;
  h->live++;
  dcmf_hashmap_insert(&h->by_id, &r->entry, id_hash(r->id));
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    uv_udp_init(h->settings.loop, &r->udp[s]);
    r->udp[s].data = r;
    r->handles_open++;
    int fd = d->fds[s];
    d->fds[s] = -1; /* ours from here on, whatever happens */
    int rv = DCMF_ERR_INVALID;
    if (fd >= 0 && failed) {
      close(fd);
      continue;
    }
    if (fd >= 0) {
      r->v6[s] = socket_is_v6(fd);
      rv = uv_udp_open(&r->udp[s], fd);
      if (rv != 0) {
        close(fd);
      } else {
        rv = uv_udp_recv_start(&r->udp[s], on_alloc, on_recv);
      }
    }
    if (rv != 0) {
      DCMF_LOGE(h->settings.log, "agw", "relay port %u: %s", r->ports[s],
                rv == DCMF_ERR_INVALID ? "no socket" : uv_strerror(rv));
      failed = 1;
    }
  }
  if (failed) { /* keep the handles (and ports) until removed */
    for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
      uv_udp_recv_stop(&r->udp[s]);
    }
  }
}

static void relay_update(struct dcmf_relayhost *h,
                         const struct dcmf_relay_desc *d) {
  struct dcmf_relayhost_relay *r = find(h, d->id);
  if (r == NULL) {
    return;
  }
  int was_latched = dcmf_relay_peer(&r->engine) != NULL;
  if (dcmf_relay_set_config(&r->engine, &d->config) == 0 && was_latched &&
      dcmf_relay_peer(&r->engine) == NULL) {
    push_now(r); /* the access side changed: the latch is gone */
  }
}

/* ---- the interface ------------------------------------------------------- */

int dcmf_relayhost_init(struct dcmf_relayhost *h,
                        const struct dcmf_relayhost_settings *settings) {
  memset(h, 0, sizeof(*h));
  h->settings = *settings;
  if (dcmf_hashmap_init(&h->by_id, 16, id_equal) != 0) {
    return DCMF_ERR_NOMEM;
  }
  uv_timer_init(settings->loop, &h->push_timer);
  h->push_timer.data = h;
  return 0;
}

void dcmf_relayhost_handle(struct dcmf_relayhost *h, enum dcmf_relay_op op,
                           struct dcmf_relay_desc *desc) {
  switch (op) {
  case DCMF_RELAY_OP_ADD:
    relay_add(h, desc);
    break;
  case DCMF_RELAY_OP_UPDATE:
    relay_update(h, desc);
    break;
  case DCMF_RELAY_OP_REMOVE: {
    struct dcmf_relayhost_relay *r = find(h, desc->id);
    if (r != NULL) {
      relay_close(r);
    }
    break;
  }
  }
}

size_t dcmf_relayhost_count(const struct dcmf_relayhost *h) {
  return h->live;
}

void dcmf_relayhost_close(struct dcmf_relayhost *h) {
  while (h->live_list != NULL) {
    relay_close(h->live_list);
  }
  uv_close((uv_handle_t *)&h->push_timer, NULL);
  dcmf_hashmap_free(&h->by_id); /* empty: closing relays are not filed */
}
