/*
 * tcprelay_setup.c - the establishment of a TCP relay's legs (tcprelay.h):
 * connect, listen and accept per setup, TCP merge retries, stateless
 * forwarding of establishment, and the bound on each step.
 */
#include "tcprelay.h"
#include "tcprelay_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

/* ---- establishment ------------------------------------------------------- */

static int all_up(const struct dcmf_tcprelay *r) {
  return r->leg[ACCESS].up && r->leg[CORE].up &&
         (!r->cfg.tls || tcprelay_tls_open(r));
}

static void leg_up(struct leg *l, uv_tcp_t *s) {
  struct dcmf_tcprelay *r = l->r;
  l->s = s;
  l->up = 1;
  uv_tcp_nodelay(s, 1);
  /* The kernel's share of the bound: without it a stalled peer lets the
   * send buffer autotune to tcp_wmem's maximum (MiBs per socket). */
  int sndbuf = DCMF_TCPRELAY_SNDBUF;
  uv_send_buffer_size((uv_handle_t *)s, &sndbuf);
  tcprelay_handle_close(&l->listener, 0); /* one connection per leg */
  tcprelay_handle_close(&l->out, 0);
  r->deadline = uv_now(r->h->settings.loop) + r->cfg.timeout_ms;
  struct leg *o = &r->leg[1 - l->side];
  if (!o->started) {
    tcprelay_leg_start(o); /* stateless: the establishment is forwarded */
  }
  if (l->side == ACCESS) {
    tcprelay_tls_start(r);
  }
  if (r->ended) {
    return;
  }
  if (l->side == CORE && tcprelay_tls_open(r) && tcprelay_tls_deliver(r)) {
    return;
  }
  tcprelay_update_reading(r);
}

static void on_connected(uv_connect_t *req, int status) {
  struct leg *l = req->data;
  struct dcmf_tcprelay *r = l->r;
  if (status == UV_ECANCELED || r->ended || l->up) {
    return; /* the handle is closing already */
  }
  if (status == 0) {
    uv_tcp_t *s = l->out;
    l->out = NULL;
    leg_up(l, s);
    return;
  }
  tcprelay_handle_close(&l->out, 0);
  if (r->cfg.setup[l->side] == DCMF_TCP_MERGE) {
    /* The peer may not listen yet, or connects itself: try again. */
    l->retry_at = uv_now(r->h->settings.loop) + DCMF_TCPRELAY_RETRY_MS;
    return;
  }
  r->c.connect++;
  char why[160];
  snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(status));
  tcprelay_tcp_failure(r, l->side, why);
  tcprelay_relay_end(r, "TCP connection establishment failure", 1);
}

static void leg_connect(struct leg *l, int fd) {
  struct dcmf_tcprelay *r = l->r;
  l->retry_at = 0;
  l->out = tcprelay_tcp_new(r);
  if (l->out == NULL || (fd >= 0 && uv_tcp_open(l->out, fd) != 0)) {
    if (fd >= 0) {
      close(fd);
    }
    tcprelay_handle_close(&l->out, 0);
    tcprelay_tcp_failure(r, l->side, "cannot open the socket");
    tcprelay_relay_end(r, "TCP connection establishment failure", 1);
    return;
  }
  l->connect_req.data = l;
  int rv = uv_tcp_connect(&l->connect_req, l->out,
                          (const struct sockaddr *)&r->cfg.remote[l->side],
                          on_connected);
  if (rv != 0) {
    l->connect_req.data = l;
    tcprelay_handle_close(&l->out, 0);
    r->c.connect++;
    char why[160];
    snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(rv));
    tcprelay_tcp_failure(r, l->side, why);
    tcprelay_relay_end(r, "TCP connection establishment failure", 1);
  }
}

static int same_ip(const struct sockaddr_storage *a,
                   const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) {
    return 0;
  }
  if (a->ss_family == AF_INET) {
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  }
  return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static void on_connection(uv_stream_t *server, int status) {
  struct dcmf_tcprelay *r = server->data;
  struct leg *l = (uv_tcp_t *)server == r->leg[ACCESS].listener
                      ? &r->leg[ACCESS]
                      : &r->leg[CORE];
  if (status != 0 || r->ended) {
    return;
  }
  uv_tcp_t *c = tcprelay_tcp_new(r);
  if (c == NULL) {
    return;
  }
  struct sockaddr_storage peer;
  int len = sizeof(peer);
  if (uv_accept(server, (uv_stream_t *)c) != 0 ||
      uv_tcp_getpeername(c, (struct sockaddr *)&peer, &len) != 0) {
    tcprelay_handle_close(&c, 1);
    return;
  }
  if (l->up || (r->cfg.remote[l->side].ss_family != 0 &&
                !same_ip(&peer, &r->cfg.remote[l->side]))) {
    r->c.refused_source++;
    r->dirty = 1;
    tcprelay_handle_close(&c, 1);
    return;
  }
  leg_up(l, c);
}

static void leg_listen(struct leg *l, int fd) {
  struct dcmf_tcprelay *r = l->r;
  l->listener = tcprelay_tcp_new(r);
  if (l->listener == NULL || fd < 0 || uv_tcp_open(l->listener, fd) != 0) {
    if (fd >= 0) {
      close(fd); /* a handle that failed to open it does not own it */
    }
    tcprelay_handle_close(&l->listener, 0);
    tcprelay_tcp_failure(r, l->side, "cannot listen on the local port");
    tcprelay_relay_end(r, "TCP connection establishment failure", 1);
    return;
  }
  int rv = uv_listen((uv_stream_t *)l->listener, 4, on_connection);
  if (rv != 0) {
    char why[160];
    snprintf(why, sizeof(why), "cannot listen: %s", uv_strerror(rv));
    tcprelay_tcp_failure(r, l->side, why);
    tcprelay_relay_end(r, "TCP connection establishment failure", 1);
  }
}

/* Starts leg |l| per its setup; a stateless active leg waits for the
 * other leg's connection. */
void tcprelay_leg_start(struct leg *l) {
  struct dcmf_tcprelay *r = l->r;
  enum dcmf_tcp_setup setup = r->cfg.setup[l->side];
  if (l->started || r->ended) {
    return;
  }
  if (setup == DCMF_TCP_ACTIVE && r->cfg.handling == DCMF_TCP_STATELESS &&
      !r->leg[1 - l->side].up) {
    return;
  }
  l->started = 1;
  int fd = r->cfg.fd[l->side];
  r->cfg.fd[l->side] = -1;
  int has_remote = r->cfg.remote[l->side].ss_family != 0;
  if (setup == DCMF_TCP_ACTIVE) {
    if (!has_remote) {
      close(fd);
      tcprelay_tcp_failure(r, l->side, "no remote address to connect to");
      tcprelay_relay_end(r, "TCP connection establishment failure", 1);
      return;
    }
    leg_connect(l, fd);
    return;
  }
  leg_listen(l, fd);
  if (setup == DCMF_TCP_MERGE && has_remote && !r->ended) {
    leg_connect(l, -1);
  }
}

void tcprelay_on_tick(uv_timer_t *t) {
  struct dcmf_tcprelay *r = t->data;
  uint64_t now = uv_now(r->h->settings.loop);
  if (r->ended) {
    return;
  }
  if (all_up(r)) {
    uv_close((uv_handle_t *)r->timer, tcprelay_on_handle_closed);
    r->timer = NULL;
    return;
  }
  if (now >= r->deadline) {
    r->c.timeout++;
    char why[160];
    for (int side = 0; side < 2; side++) {
      if (!r->leg[side].up) {
        snprintf(why, sizeof(why), "no connection within %u ms",
                 (unsigned)r->cfg.timeout_ms);
        tcprelay_tcp_failure(r, side, why);
        tcprelay_relay_end(r, "TCP connection establishment failure", 1);
        return;
      }
    }
    snprintf(why, sizeof(why), "%s within %u ms",
             r->tls_started ? "TLS handshake not done"
                            : "no remote fingerprint to start TLS",
             (unsigned)r->cfg.timeout_ms);
    r->c.tls++;
    tcprelay_emitf(r, "TLS_FAILURE", "{\"reason\":\"%s\"}", NULL, why);
    tcprelay_relay_end(r, "TLS failure", 1);
    return;
  }
  for (int side = 0; side < 2; side++) {
    struct leg *l = &r->leg[side];
    if (l->retry_at != 0 && now >= l->retry_at && !l->up && l->out == NULL) {
      leg_connect(l, -1);
    }
  }
}
