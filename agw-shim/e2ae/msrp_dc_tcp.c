/* The core TCP connection of an MSRP-over-DC media (msrp_dc_tcp.h):
 * established by tcpleg.h, read and written here, closed by tcpconn.h. */
#include "msrp_dc_tcp.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "tcpconn.h"
#include "tcpleg.h"

struct dcmf_msrp_dc_tcp {
  uv_loop_t *loop;
  struct dcmf_tcpleg *est; /* establishing; NULL before and after */
  /* The connection once up (from tcpleg), until its |gone|; it owns its
   * end (tcpconn.h). */
  struct dcmf_tcpconn *conn;
  uv_write_t write_req;
  int handles;     /* the leg until its |gone|, and |conn| until its own */
  int fd;          /* a deferred active leg's socket; -1 once started */
  struct dcmf_tcpleg_config cfg;
  int up;          /* the connection is established */
  int closed;      /* the owner let go: no callbacks */
  int writing;     /* a write is in flight */
  size_t write_len;
  uint8_t *wbuf; /* the copy being written, owned */
  int reading;
  int want_read;
  struct dcmf_msrp_dc_tcp_cbs cbs;
  void *user;
  /* Where a graceful close waits (NULL: nowhere), and whether it is
   * there now, with its neighbours. */
  struct dcmf_msrp_dc_tcp_closing *set;
  int in_set;
  struct dcmf_msrp_dc_tcp *set_next, *set_prev;
  uint8_t rx[DCMF_MSRP_DC_TCP_READ];
};

static void set_unlink(struct dcmf_msrp_dc_tcp *t) {
  if (!t->in_set) {
    return;
  }
  if (t->set_prev != NULL) {
    t->set_prev->set_next = t->set_next;
  } else {
    t->set->first = t->set_next;
  }
  if (t->set_next != NULL) {
    t->set_next->set_prev = t->set_prev;
  }
  t->in_set = 0;
  t->set_next = t->set_prev = NULL;
}

static void destroy(struct dcmf_msrp_dc_tcp *t) {
  set_unlink(t);
  free(t->wbuf); /* a write cancelled by the close */
  free(t);
}

static void release(struct dcmf_msrp_dc_tcp *t) {
  if (--t->handles == 0 && t->closed) {
    destroy(t);
  }
}

static void conn_gone(void *user, enum dcmf_tcpconn_end end) {
  (void)end;
  struct dcmf_msrp_dc_tcp *t = user;
  t->conn = NULL;
  set_unlink(t); /* nothing lingers any more */
  release(t);
}

/* Closes everything: the connection gracefully (tcpconn.h: the write in
 * flight, our FIN, the core's input dropped until its FIN, within
 * DCMF_TCPCONN_LINGER_MS) or with a reset. The object frees itself once
 * nothing of it is left open. */
static void teardown(struct dcmf_msrp_dc_tcp *t, int reset) {
  t->closed = 1;
  if (t->est != NULL) {
    dcmf_tcpleg_close(t->est);
    t->est = NULL;
  }
  if (t->fd >= 0) {
    close(t->fd);
    t->fd = -1;
  }
  if (t->conn != NULL) {
    dcmf_tcpconn_close(t->conn,
                       reset ? DCMF_TCPCONN_ABORT : DCMF_TCPCONN_GRACEFUL);
    if (!reset && t->set != NULL) {
      /* It lingers: where the owner's end can find it (conn_gone and
       * destroy take it off). */
      t->set_prev = NULL;
      t->set_next = t->set->first;
      if (t->set->first != NULL) {
        t->set->first->set_prev = t;
      }
      t->set->first = t;
      t->in_set = 1;
    }
  }
  if (t->handles == 0) {
    destroy(t);
  }
}

/* The connection ended on its own: tell the owner once, then close. */
static void went_down(struct dcmf_msrp_dc_tcp *t, const char *reason,
                      int reset) {
  if (t->closed) {
    return;
  }
  int establishing = !t->up;
  void (*down)(void *, const char *, int) = t->cbs.down;
  void *user = t->user;
  teardown(t, reset);
  down(user, reason, establishing);
}

static void alloc_rx(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  struct dcmf_msrp_dc_tcp *t = h->data;
  *buf = uv_buf_init((char *)t->rx, sizeof(t->rx));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  struct dcmf_msrp_dc_tcp *t = s->data;
  if (t->closed) {
    return;
  }
  if (n > 0) {
    t->cbs.data(t->user, t->rx, (size_t)n);
  } else if (n == UV_EOF) {
    went_down(t, "fin", 0);
  } else if (n < 0) {
    went_down(t, n == UV_ECONNRESET ? "reset" : "error", 1);
  }
}

static void sync_reading(struct dcmf_msrp_dc_tcp *t) {
  if (!t->up || t->closed || t->reading == t->want_read) {
    return;
  }
  uv_stream_t *st = (uv_stream_t *)dcmf_tcpconn_tcp(t->conn);
  if (t->want_read) {
    t->reading = uv_read_start(st, alloc_rx, on_read) == 0;
  } else {
    uv_read_stop(st);
    t->reading = 0;
  }
}

/* ---- establishment (tcpleg.h) -------------------------------------------- */

static void est_up(void *user, struct dcmf_tcpconn *conn) {
  struct dcmf_msrp_dc_tcp *t = user;
  uv_tcp_t *tcp = dcmf_tcpconn_tcp(conn);
  t->est = NULL;
  tcp->data = t; /* on_read's */
  t->conn = conn;
  dcmf_tcpconn_set_gone(conn, conn_gone, t);
  t->handles++; /* until conn_gone */
  t->up = 1;
  /* The kernel's share of a stalled core is bounded too (autotuning
   * would let it hold megabytes). */
  int sndbuf = DCMF_MSRP_DC_TCP_SNDBUF;
  uv_send_buffer_size((uv_handle_t *)tcp, &sndbuf);
  t->cbs.up(t->user);
  sync_reading(t);
}

static void est_failed(void *user, enum dcmf_tcpleg_failure kind,
                       const char *why) {
  (void)why;
  struct dcmf_msrp_dc_tcp *t = user;
  t->est = NULL;
  went_down(t,
            kind == DCMF_TCPLEG_TIMEOUT   ? "timeout"
            : kind == DCMF_TCPLEG_CONNECT ? "refused"
                                          : "error",
            0);
}

static void est_gone(void *user) { release(user); }

static const struct dcmf_tcpleg_cbs est_cbs = {est_up, est_failed, NULL,
                                               est_gone};

void dcmf_msrp_dc_tcp_connect(struct dcmf_msrp_dc_tcp *t) {
  if (t->closed || t->fd < 0) {
    return;
  }
  int fd = t->fd;
  t->fd = -1;
  if (dcmf_tcpleg_start(&t->est, t->loop, fd, &t->cfg, &est_cbs, t) != 0) {
    t->est = NULL;
    went_down(t, "error", 0);
    return;
  }
  t->handles++; /* until est_gone */
}

void dcmf_msrp_dc_tcp_set_remote(struct dcmf_msrp_dc_tcp *t,
                                 const struct sockaddr_storage *remote) {
  if (t->closed || t->up) {
    return; /* TCP cannot move */
  }
  t->cfg.remote = *remote;
  if (t->est != NULL) {
    dcmf_tcpleg_set_remote(t->est, remote);
  }
}

int dcmf_msrp_dc_tcp_start(struct dcmf_msrp_dc_tcp **out, uv_loop_t *loop,
                           int fd, enum dcmf_tcp_setup setup,
                           const struct sockaddr_storage *remote, int defer,
                           uint32_t timeout_ms,
                           struct dcmf_msrp_dc_tcp_closing *closing,
                           const struct dcmf_msrp_dc_tcp_cbs *cbs, void *user) {
  struct dcmf_msrp_dc_tcp *t = calloc(1, sizeof(*t));
  if (t == NULL) {
    close(fd);
    return DCMF_ERR_NOMEM;
  }
  t->loop = loop;
  t->fd = fd;
  t->cfg = (struct dcmf_tcpleg_config){
      .setup = setup, .remote = *remote, .timeout_ms = timeout_ms};
  t->cbs = *cbs;
  t->user = user;
  t->set = closing;
  if (setup == DCMF_TCP_ACTIVE && defer) {
    *out = t;
    return 0; /* dcmf_msrp_dc_tcp_connect starts it */
  }
  t->fd = -1;
  int rv = dcmf_tcpleg_start(&t->est, loop, fd, &t->cfg, &est_cbs, t);
  if (rv != 0) {
    free(t);
    return rv;
  }
  t->handles = 1;
  *out = t;
  return 0;
}

void dcmf_msrp_dc_tcp_read(struct dcmf_msrp_dc_tcp *t, int on) {
  t->want_read = on;
  sync_reading(t);
}

int dcmf_msrp_dc_tcp_can_write(const struct dcmf_msrp_dc_tcp *t) {
  return t->up && !t->closed && !t->writing;
}

static void on_write(uv_write_t *req, int status) {
  struct dcmf_msrp_dc_tcp *t = req->data;
  free(t->wbuf);
  t->wbuf = NULL;
  t->writing = 0;
  if (t->closed) {
    return; /* written before the FIN, or cancelled by a reset */
  }
  if (status != 0) {
    went_down(t, status == UV_ECONNRESET ? "reset" : "error", 1);
    return;
  }
  t->cbs.wrote(t->user, t->write_len);
}

int dcmf_msrp_dc_tcp_write(struct dcmf_msrp_dc_tcp *t, const uint8_t *p,
                           size_t n) {
  if (!dcmf_msrp_dc_tcp_can_write(t)) {
    return DCMF_ERR_EXHAUSTED;
  }
  if (n > DCMF_MSRP_DC_TCP_WRITE) {
    n = DCMF_MSRP_DC_TCP_WRITE;
  }
  t->wbuf = malloc(n);
  if (t->wbuf == NULL) {
    return DCMF_ERR_NOMEM;
  }
  memcpy(t->wbuf, p, n);
  uv_buf_t b = uv_buf_init((char *)t->wbuf, (unsigned)n);
  t->write_req.data = t;
  if (uv_write(&t->write_req, (uv_stream_t *)dcmf_tcpconn_tcp(t->conn), &b, 1,
               on_write) != 0) {
    free(t->wbuf);
    t->wbuf = NULL;
    return DCMF_ERR_SYSTEM;
  }
  t->writing = 1;
  t->write_len = n;
  return (int)n;
}

void dcmf_msrp_dc_tcp_close(struct dcmf_msrp_dc_tcp *t, int reset) {
  if (!t->closed) {
    teardown(t, reset);
  } else if (reset) {
    set_unlink(t);
    if (t->conn != NULL) {
      /* Still closing gracefully: an abort cuts it short (tcpconn.h). */
      dcmf_tcpconn_close(t->conn, DCMF_TCPCONN_ABORT);
    }
  }
}

void dcmf_msrp_dc_tcp_abort_closing(struct dcmf_msrp_dc_tcp_closing *set) {
  while (set->first != NULL) {
    dcmf_msrp_dc_tcp_close(set->first, 1); /* takes it off |set| */
  }
}
