#include "udpproxy.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"

struct queued {
  uint8_t *data;
  size_t len;
};

struct leg {
  struct dcmf_udpproxy *up;
  uv_udp_t udp;
  uint16_t sid;
  uint16_t port;
  int text;
  int closing;
  struct queued queue[DCMF_UDPPROXY_QUEUE];
  size_t n_queued;
  struct leg *next;
};

struct dcmf_udpproxy {
  uv_loop_t *loop;
  struct sockaddr_storage server;
  struct dcmf_udpproxy_callbacks cbs;
  void *user;
  struct leg *legs;
  int open_handles;
  int closing;
  struct dcmf_udpproxy_counters counters;
  uint8_t *rx; /* the worker's receive scratch (borrowed) */
  size_t rx_len;
};

static int same_addr(const struct sockaddr_storage *a,
                     const struct sockaddr *b) {
  if (a->ss_family != b->sa_family) {
    return 0;
  }
  if (b->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a;
    const struct sockaddr_in *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
  const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
  return x->sin6_port == y->sin6_port &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

static void leg_free_queue(struct leg *l) {
  for (size_t i = 0; i < l->n_queued; i++) {
    free(l->queue[i].data);
  }
  l->n_queued = 0;
}

static void on_leg_closed(uv_handle_t *h) {
  struct leg *l = h->data;
  struct dcmf_udpproxy *up = l->up;
  leg_free_queue(l);
  free(l);
  if (--up->open_handles == 0 && up->closing) {
    free(up);
  }
}

static void leg_close(struct leg *l) {
  if (!l->closing) {
    l->closing = 1;
    uv_close((uv_handle_t *)&l->udp, on_leg_closed);
  }
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)s;
  struct leg *l = h->data;
  *b = uv_buf_init((char *)l->up->rx, (unsigned int)l->up->rx_len);
}

/* Every path below changes a counter, or may. */
static void counted(struct dcmf_udpproxy *up) {
  if (up->cbs.counted != NULL) {
    up->cbs.counted(up->user);
  }
}

static void leg_receive(struct leg *l, const struct sockaddr *from,
                        const uint8_t *data, size_t len) {
  struct dcmf_udpproxy *up = l->up;
  counted(up);
  if (!same_addr(&up->server, from)) {
    up->counters.dropped_source++; /* only the DC AS may speak here */
    return;
  }
  if (l->n_queued == 0) {
    int rv = up->cbs.deliver(up->user, l->sid, l->text, data, len);
    if (rv == 0) {
      up->counters.datagrams_in++;
      up->counters.bytes_in += len;
      return;
    }
    if (rv != DCMF_ERR_NOT_FOUND) {
      /* The channel is open but SCTP has no room: UDP semantics, drop. */
      up->counters.dropped_send++;
      return;
    }
  }
  /* The channel is not open yet (A2P: the server spoke first), or older
   * datagrams still wait: keep order. */
  if (l->n_queued == DCMF_UDPPROXY_QUEUE) {
    up->counters.dropped_queue_full++;
    return;
  }
  uint8_t *copy = malloc(len ? len : 1);
  if (copy == NULL) {
    up->counters.dropped_queue_full++;
    return;
  }
  memcpy(copy, data, len);
  l->queue[l->n_queued++] = (struct queued){copy, len};
}

static void on_datagram(uv_udp_t *u, ssize_t n, const uv_buf_t *b,
                        const struct sockaddr *from, unsigned flags) {
  (void)flags;
  if (n < 0 || from == NULL) {
    return;
  }
  leg_receive(u->data, from, (const uint8_t *)b->base, (size_t)n);
}

static struct leg *leg_find(const struct dcmf_udpproxy *up, uint16_t sid) {
  for (struct leg *l = up->legs; l; l = l->next) {
    if (l->sid == sid && !l->closing) {
      return l;
    }
  }
  return NULL;
}

int dcmf_udpproxy_new(struct dcmf_udpproxy **out, uv_loop_t *loop,
                      const struct sockaddr_storage *server, uint8_t *rx,
                      size_t rx_len, const struct dcmf_udpproxy_callbacks *cbs,
                      void *user) {
  if (rx_len < DCMF_UDPPROXY_SLOT || rx_len > UINT32_MAX) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_udpproxy *up = calloc(1, sizeof(*up));
  if (up == NULL) {
    return DCMF_ERR_NOMEM;
  }
  up->loop = loop;
  up->server = *server;
  up->cbs = *cbs;
  up->user = user;
  up->rx = rx;
  up->rx_len = rx_len;
  *out = up;
  return 0;
}

static void leg_open(struct dcmf_udpproxy *up, struct dcmf_media_mdc2 *e) {
  struct leg *l = calloc(1, sizeof(*l));
  if (l == NULL) {
    return;
  }
  l->up = up;
  l->sid = e->sid;
  l->port = e->port;
  l->text = e->text;
  /* A DC application server answering many phones fills the socket
   * faster than one datagram per system call reads it: with room for a
   * batch, libuv reads up to rx_len / DCMF_UDPPROXY_SLOT at once. */
  uv_udp_init_ex(up->loop, &l->udp,
                 up->rx_len >= 2 * DCMF_UDPPROXY_SLOT
                     ? AF_UNSPEC | UV_UDP_RECVMMSG
                     : AF_UNSPEC);
  l->udp.data = l;
  up->open_handles++;
  if (uv_udp_open(&l->udp, e->fd) != 0) {
    close(e->fd);
    e->fd = -1;
    leg_close(l); /* never listed: freed when libuv lets go */
    return;
  }
  e->fd = -1; /* the leg owns it now */
  l->next = up->legs;
  up->legs = l;
  uv_udp_recv_start(&l->udp, on_alloc, on_datagram);
}

void dcmf_udpproxy_sync(struct dcmf_udpproxy *up,
                        struct dcmf_media_mdc2 *list, size_t n,
                        const struct sockaddr_storage *server) {
  up->server = *server;
  /* Close legs whose stream went away (or moved to another port). */
  for (struct leg **pp = &up->legs; *pp;) {
    struct leg *l = *pp;
    int keep = 0;
    for (size_t i = 0; i < n; i++) {
      if (list[i].sid == l->sid && list[i].port == l->port) {
        keep = 1;
        l->text = list[i].text;
      }
    }
    if (!keep || l->closing) {
      *pp = l->next;
      leg_close(l);
      continue;
    }
    pp = &l->next;
  }
  for (size_t i = 0; i < n; i++) {
    if (leg_find(up, list[i].sid) != NULL) {
      if (list[i].fd >= 0) {
        close(list[i].fd); /* we hold this port already */
        list[i].fd = -1;
      }
    } else if (list[i].fd >= 0) {
      leg_open(up, &list[i]);
    }
  }
}

int dcmf_udpproxy_has(const struct dcmf_udpproxy *up, uint16_t sid) {
  return leg_find(up, sid) != NULL;
}

void dcmf_udpproxy_message(struct dcmf_udpproxy *up, uint16_t sid,
                           const uint8_t *data, size_t len) {
  struct leg *l = leg_find(up, sid);
  if (l == NULL) {
    return;
  }
  counted(up);
  if (len > DCMF_UDPPROXY_MAX_DATAGRAM) {
    up->counters.dropped_oversize++;
    return;
  }
  uv_buf_t b = uv_buf_init((char *)data, (unsigned int)len);
  if (uv_udp_try_send(&l->udp, &b, 1, (const struct sockaddr *)&up->server) <
      0) {
    up->counters.dropped_send++;
    return;
  }
  up->counters.datagrams_out++;
  up->counters.bytes_out += len;
}

void dcmf_udpproxy_channel_open(struct dcmf_udpproxy *up, uint16_t sid) {
  struct leg *l = leg_find(up, sid);
  if (l == NULL) {
    return;
  }
  counted(up);
  size_t done = 0;
  while (done < l->n_queued &&
         up->cbs.deliver(up->user, sid, l->text, l->queue[done].data,
                         l->queue[done].len) == 0) {
    up->counters.datagrams_in++;
    up->counters.bytes_in += l->queue[done].len;
    free(l->queue[done].data);
    done++;
  }
  memmove(l->queue, l->queue + done, (l->n_queued - done) * sizeof(l->queue[0]));
  l->n_queued -= done;
}

const struct dcmf_udpproxy_counters *
dcmf_udpproxy_counters(const struct dcmf_udpproxy *up) {
  return &up->counters;
}

void dcmf_udpproxy_close(struct dcmf_udpproxy *up) {
  up->closing = 1;
  while (up->legs != NULL) {
    struct leg *l = up->legs;
    up->legs = l->next;
    leg_close(l);
  }
  if (up->open_handles == 0) {
    free(up);
  }
}

int dcmf_udpproxy_receive(struct dcmf_udpproxy *up, uint16_t sid,
                          const struct sockaddr *from, const uint8_t *data,
                          size_t len) {
  struct leg *l = leg_find(up, sid);
  if (l == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  leg_receive(l, from, data, len);
  return 0;
}
