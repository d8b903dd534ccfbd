/* One established e2ae TCP connection and its end (tcpconn.h). */
#include "tcpconn.h"

#include <stdlib.h>

#include <sys/socket.h>

#include "errors.h"

enum conn_state {
  CONN_OPEN,     /* the owner's */
  CONN_DRAINING, /* a graceful close: our FIN, the peer's input dropped */
  CONN_CLOSED,   /* the socket is closing */
};

struct dcmf_tcpconn {
  uv_tcp_t *tcp; /* owned; NULL once closed */
  uv_shutdown_t shutdown_req;
  uv_timer_t linger; /* the bound of a graceful close */
  uint32_t linger_ms;
  dcmf_tcpconn_gone_cb gone;
  void *user;
  enum conn_state state;
  enum dcmf_tcpconn_end end;
  int handles;        /* the socket, and the linger timer once started */
  int timing;         /* the linger timer runs (not closing) */
  int fin_sent;       /* our FIN is out (or cannot be sent) */
  int peer_fin;       /* the peer's FIN came (or its input cannot be read) */
  uint8_t sink[4096]; /* where the peer's last input is dropped */
};

static void on_closed(uv_handle_t *h) {
  struct dcmf_tcpconn *c = h->data;
  if (h == (uv_handle_t *)c->tcp) {
    free(c->tcp);
    c->tcp = NULL;
  }
  if (--c->handles > 0) {
    return;
  }
  if (c->gone != NULL) {
    c->gone(c->user, c->end);
  }
  free(c);
}

/* Closes the socket (and the bound): with |end| FIN as it is, else with
 * a reset. */
static void close_socket(struct dcmf_tcpconn *c, enum dcmf_tcpconn_end end) {
  if (c->state == CONN_CLOSED) {
    return;
  }
  c->state = CONN_CLOSED;
  c->end = end;
  c->tcp->data = c;
  if (c->timing) {
    c->timing = 0;
    uv_close((uv_handle_t *)&c->linger, on_closed);
  }
  uv_os_fd_t fd;
  if (end != DCMF_TCPCONN_ENDED_FIN &&
      uv_fileno((uv_handle_t *)c->tcp, &fd) == 0) {
    /* A zero linger makes the close a reset that drops what is unsent.
     * (uv_tcp_close_reset does the same but refuses while a shutdown is
     * pending, which is when a graceful close runs out of time.) */
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
  }
  uv_close((uv_handle_t *)c->tcp, on_closed);
}

/* Both FINs: the socket closes with nothing unread, so without a reset. */
static void maybe_done(struct dcmf_tcpconn *c) {
  if (c->fin_sent && c->peer_fin) {
    close_socket(c, DCMF_TCPCONN_ENDED_FIN);
  }
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct dcmf_tcpconn *c = req->data;
  if (c->state != CONN_DRAINING) {
    return; /* cancelled by the close */
  }
  if (status < 0) {
    close_socket(c, DCMF_TCPCONN_ENDED_RESET); /* a write failed */
    return;
  }
  c->fin_sent = 1;
  maybe_done(c);
}

static void on_alloc_sink(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct dcmf_tcpconn *c = h->data;
  *buf = uv_buf_init((char *)c->sink, sizeof(c->sink));
}

/* What the peer still sends is dropped; its FIN ends the wait. */
static void on_read_sink(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  struct dcmf_tcpconn *c = st->data;
  if (n >= 0 || c->state != CONN_DRAINING) {
    return;
  }
  uv_read_stop(st);
  if (n != UV_EOF) {
    close_socket(c, DCMF_TCPCONN_ENDED_RESET);
    return;
  }
  c->peer_fin = 1;
  maybe_done(c);
}

/* The bound ran out: a peer that does not read our queue or does not
 * send its FIN is reset. */
static void on_linger(uv_timer_t *t) {
  close_socket(t->data, DCMF_TCPCONN_ENDED_LINGER);
}

static void start_graceful(struct dcmf_tcpconn *c) {
  uv_stream_t *st = (uv_stream_t *)c->tcp;
  c->state = CONN_DRAINING;
  c->tcp->data = c;
  uv_read_stop(st); /* the owner's reading */
  uv_timer_init(c->tcp->loop, &c->linger);
  c->linger.data = c;
  c->handles++;
  c->timing = 1;
  uv_timer_start(&c->linger, on_linger, c->linger_ms, 0);
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, st, on_shutdown) != 0) {
    c->fin_sent = 1; /* shut already, or broken: nothing to wait for */
  }
  /* Reading again after the peer's FIN (the owner saw it) gives the EOF
   * again; a stream that cannot be read has nothing to drain. */
  if (uv_read_start(st, on_alloc_sink, on_read_sink) != 0) {
    c->peer_fin = 1;
  }
  maybe_done(c);
}

int dcmf_tcpconn_new(struct dcmf_tcpconn **out, uv_tcp_t *tcp,
                     uint32_t linger_ms) {
  struct dcmf_tcpconn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return DCMF_ERR_NOMEM;
  }
  c->tcp = tcp;
  c->linger_ms = linger_ms != 0 ? linger_ms : DCMF_TCPCONN_LINGER_MS;
  c->handles = 1;
  *out = c;
  return 0;
}

uv_tcp_t *dcmf_tcpconn_tcp(const struct dcmf_tcpconn *c) {
  return c->tcp;
}

void dcmf_tcpconn_set_gone(struct dcmf_tcpconn *c, dcmf_tcpconn_gone_cb gone,
                           void *user) {
  c->gone = gone;
  c->user = user;
}

void dcmf_tcpconn_close(struct dcmf_tcpconn *c, enum dcmf_tcpconn_how how) {
  if (how == DCMF_TCPCONN_ABORT) {
    close_socket(c, DCMF_TCPCONN_ENDED_RESET);
  } else if (c->state == CONN_OPEN) {
    start_graceful(c);
  }
}
