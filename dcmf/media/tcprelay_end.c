/*
 * tcprelay_end.c - how a TCP relay ends (tcprelay.h): both legs released
 * together, a graceful close (the FIN after what is queued, the peer's
 * remaining input read and dropped until its own FIN) bounded by
 * DCMF_TCPRELAY_LINGER_MS, then a reset. Worker thread, like the rest
 * of the relay.
 */
#include "tcprelay_int.h"

#include <stdlib.h>

#include <sys/socket.h>

#include "tcprelay_msrp.h"

/* ---- relay end ----------------------------------------------------------- */

/* The linger bound is over: legs still waiting to write what was queued
 * before their FIN (a peer that stopped reading) are reset, so the
 * relay's sockets close and RELEASED can follow. */
static void on_linger(uv_timer_t *t) {
  struct dcmf_tcprelay *r = t->data;
  for (int i = 0; i < 2; i++) {
    uv_os_fd_t fd;
    if (r->leg[i].s != NULL &&
        uv_fileno((uv_handle_t *)r->leg[i].s, &fd) == 0) {
      /* libuv refuses uv_tcp_close_reset while a shutdown is pending;
       * without a zero linger the kernel would keep the unsent bytes
       * (and the connection) after the close. */
      struct linger now = {.l_onoff = 1, .l_linger = 0};
      (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
    }
    tcprelay_handle_close(&r->leg[i].s, 1);
  }
  uv_close((uv_handle_t *)r->timer, tcprelay_on_handle_closed);
  r->timer = NULL;
}

/* A leg's graceful close is over (its FIN sent, the peer's read): the
 * socket closes; the last one also ends the linger bound. */
static void leg_closed(struct leg *l, int reset) {
  struct dcmf_tcprelay *r = l->r;
  tcprelay_handle_close(&l->s, reset);
  if (r->ended && r->leg[0].s == NULL && r->leg[1].s == NULL &&
      r->timer != NULL) {
    uv_close((uv_handle_t *)r->timer, tcprelay_on_handle_closed);
    r->timer = NULL; /* nothing left to linger for */
  }
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  struct leg *l = req->data;
  l->fin_sent = 1;
  if (!l->draining) {
    leg_closed(l, 0);
  }
}

static void on_alloc_sink(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct dcmf_tcprelay *r = hd->data;
  *buf = uv_buf_init((char *)r->sink, sizeof(r->sink));
}

/* What a closing leg's peer still sends is dropped; its FIN (or an
 * error) ends the wait. */
static void on_read_sink(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  struct dcmf_tcprelay *r = st->data;
  struct leg *l =
      (uv_tcp_t *)st == r->leg[ACCESS].s ? &r->leg[ACCESS] : &r->leg[CORE];
  if (n >= 0) {
    return;
  }
  uv_read_stop(st);
  l->draining = 0;
  if (l->fin_sent || n != UV_EOF) {
    leg_closed(l, n != UV_EOF);
  }
}

/* Bounds a graceful end: a leg whose FIN waits behind queued bytes gets
 * DCMF_TCPRELAY_LINGER_MS to send them, then a reset. The relay's timer
 * (the establishment one, or a new one) becomes the linger timer. */
static void linger_start(struct dcmf_tcprelay *r) {
  if (r->leg[0].s == NULL && r->leg[1].s == NULL) {
    if (r->timer != NULL) {
      uv_close((uv_handle_t *)r->timer, tcprelay_on_handle_closed);
      r->timer = NULL;
    }
    return;
  }
  if (r->timer == NULL) {
    r->timer = malloc(sizeof(*r->timer));
    if (r->timer == NULL) {
      for (int i = 0; i < 2; i++) {
        tcprelay_handle_close(&r->leg[i].s, 1); /* no bound: no linger */
      }
      return;
    }
    uv_timer_init(r->h->settings.loop, r->timer);
    r->timer->data = r;
    r->handles++;
  }
  uv_timer_stop(r->timer);
  uv_timer_start(r->timer, on_linger, DCMF_TCPRELAY_LINGER_MS, 0);
}

void tcprelay_leg_close(struct leg *l, int reset) {
  tcprelay_leg_stop_setup(l);
  if (l->s == NULL || l->closing) {
    return;
  }
  l->closing = 1;
  if (!reset) {
    /* FIN once what is queued is written (uv_shutdown waits for it). */
    uv_read_stop((uv_stream_t *)l->s);
    l->reading = 0;
    l->shutdown_req.data = l;
    if (uv_shutdown(&l->shutdown_req, (uv_stream_t *)l->s, on_shutdown) == 0) {
      /* Until the peer's FIN, what it still sends (an MSRP core's 200s)
       * is read and dropped: closing with unread input would answer
       * with a reset, which can destroy relayed bytes the peer has not
       * read yet. The linger bound (linger_start) caps the wait. */
      l->draining = uv_read_start((uv_stream_t *)l->s, on_alloc_sink,
                                  on_read_sink) == 0;
      return;
    }
  }
  tcprelay_handle_close(&l->s, reset);
}

void tcprelay_relay_end(struct dcmf_tcprelay *r, const char *reason,
                        int reset) {
  if (r->ended) {
    return;
  }
  if (!reset) {
    tcprelay_msrp_flush(r);
    if (r->ended) {
      return; /* the flush failed and ended it */
    }
  }
  r->ended = 1;
  if (r->tls_started && dcmf_tlspump_get_state(&r->tls) == DCMF_TLSPUMP_OPEN &&
      !reset) {
    dcmf_tlspump_shutdown(&r->tls); /* close_notify to the UE */
  }
  if (r->tls_started) {
    tcprelay_tls_flush(r); /* a close_notify or the alert of a failure */
  }
  for (int i = 0; i < 2; i++) {
    if (r->leg[i].s != NULL && r->leg[i].reading) {
      uv_read_stop((uv_stream_t *)r->leg[i].s);
      r->leg[i].reading = 0;
    }
    tcprelay_leg_close(&r->leg[i], reset);
  }
  linger_start(r);
  tcprelay_msrp_end(r);
  tcprelay_emitf(r, "TCP_CLOSED", "{\"reason\":\"%s\"}", NULL, reason);
  tcprelay_push_counters(r, 1);
}

