/*
 * tcprelay_setup.c - the establishment of a TCP relay's legs (tcprelay.h):
 * each leg through tcpleg.h (connect, listen and accept per setup, TCP
 * merge, the peer check, the leg's bound), the stateless forwarding of
 * establishment, and the bound on the TLS step.
 */
#include "tcprelay.h"
#include "tcprelay_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- establishment ------------------------------------------------------- */

static int all_up(const struct dcmf_tcprelay *r) {
  return r->leg[ACCESS].up && r->leg[CORE].up &&
         (!r->cfg.tls || tcprelay_tls_open(r));
}

static void leg_up(struct leg *l) {
  struct dcmf_tcprelay *r = l->r;
  uv_tcp_t *s = dcmf_tcpconn_tcp(l->conn);
  s->data = r; /* on_read's */
  l->s = s;
  l->up = 1;
  /* The kernel's share of the bound: without it a stalled peer lets the
   * send buffer autotune to tcp_wmem's maximum (MiBs per socket). */
  int sndbuf = DCMF_TCPRELAY_SNDBUF;
  uv_send_buffer_size((uv_handle_t *)s, &sndbuf);
  if (l->side == ACCESS) {
    /* The TLS step starts: the fingerprints, then the handshake, are
     * waited for from now (tcprelay_tls_start restarts it). */
    r->deadline = uv_now(r->h->settings.loop) + r->cfg.timeout_ms;
  }
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

static void conn_gone(void *user, enum dcmf_tcpconn_end end) {
  (void)end;
  struct leg *l = user;
  l->conn = NULL;
  tcprelay_handle_gone(l->r);
}

static void est_up(void *user, struct dcmf_tcpconn *conn) {
  struct leg *l = user;
  struct dcmf_tcprelay *r = l->r;
  l->est = NULL;
  l->conn = conn;
  dcmf_tcpconn_set_gone(conn, conn_gone, l);
  r->handles++; /* until conn_gone */
  if (r->ended) {
    tcprelay_leg_close(l, 1);
    return;
  }
  leg_up(l);
}

static void est_failed(void *user, enum dcmf_tcpleg_failure kind,
                       const char *why) {
  struct leg *l = user;
  struct dcmf_tcprelay *r = l->r;
  l->est = NULL;
  if (kind == DCMF_TCPLEG_TIMEOUT) {
    r->c.timeout++;
  } else if (kind == DCMF_TCPLEG_CONNECT) {
    r->c.connect++;
  }
  tcprelay_tcp_failure(r, l->side, why);
  tcprelay_relay_end(r, "TCP connection establishment failure", 1);
}

static void est_refused(void *user) {
  struct leg *l = user;
  l->r->c.refused_source++;
  l->r->dirty = 1;
}

static void est_gone(void *user) {
  struct leg *l = user;
  tcprelay_handle_gone(l->r);
}

static const struct dcmf_tcpleg_cbs est_cbs = {est_up, est_failed,
                                               est_refused, est_gone};

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
  struct dcmf_tcpleg_config c = {.setup = setup,
                                 .remote = r->cfg.remote[l->side],
                                 .timeout_ms = r->cfg.timeout_ms};
  if (dcmf_tcpleg_start(&l->est, r->h->settings.loop, fd, &c, &est_cbs, l) !=
      0) {
    l->est = NULL;
    tcprelay_tcp_failure(r, l->side, "cannot start: out of memory");
    tcprelay_relay_end(r, "TCP connection establishment failure", 1);
    return;
  }
  r->handles++; /* until est_gone */
}

void tcprelay_leg_stop_setup(struct leg *l) {
  if (l->est != NULL) {
    dcmf_tcpleg_close(l->est);
    l->est = NULL;
  }
}

void tcprelay_leg_set_remote(struct leg *l,
                             const struct sockaddr_storage *remote) {
  if (l->up) {
    return; /* TCP cannot move */
  }
  l->r->cfg.remote[l->side] = *remote; /* for a leg not started yet */
  if (l->est != NULL) {
    dcmf_tcpleg_set_remote(l->est, remote);
  }
}

/* The TLS step's bound; each leg's TCP bound is its tcpleg's. */
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
  if (!r->cfg.tls || !r->leg[ACCESS].up || tcprelay_tls_open(r) ||
      now < r->deadline) {
    return;
  }
  char why[160];
  snprintf(why, sizeof(why), "%s within %u ms",
           r->tls_started ? "TLS handshake not done"
                          : "no remote fingerprint to start TLS",
           (unsigned)r->cfg.timeout_ms);
  r->c.timeout++;
  r->c.tls++;
  tcprelay_emitf(r, "TLS_FAILURE", "{\"reason\":\"%s\"}", NULL, why);
  tcprelay_relay_end(r, "TLS failure", 1);
}
