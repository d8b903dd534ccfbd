/* The core TCP connection of an MSRP-over-DC media (msrp_dc_tcp.h):
 * established by tcpleg.h, then read and written here. */
#include "msrp_dc_tcp.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "errors.h"
#include "tcpleg.h"

struct dcmf_msrp_dc_tcp {
  uv_loop_t *loop;
  struct dcmf_tcpleg *est; /* establishing; NULL before and after */
  uv_tcp_t *conn;          /* the connection once up (from tcpleg) */
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  uv_timer_t linger; /* bounds a graceful close (when |lingering|) */
  int lingering;
  int handles;     /* the leg until its |gone|, and |conn| until closed */
  int fd;          /* a deferred active leg's socket; -1 once started */
  struct dcmf_tcpleg_config cfg;
  int up;          /* the connection is established */
  int closed;      /* the owner let go: no callbacks */
  int writing;     /* a write is in flight */
  size_t write_len;
  uint8_t *wbuf; /* the copy being written, owned */
  int finishing;   /* a FIN follows the write in flight */
  int reading;
  int want_read;
  struct dcmf_msrp_dc_tcp_cbs cbs;
  void *user;
  uint8_t rx[DCMF_MSRP_DC_TCP_READ];
};

static void release(struct dcmf_msrp_dc_tcp *t) {
  if (--t->handles == 0 && t->closed) {
    free(t->wbuf); /* a write cancelled by the close */
    free(t);
  }
}

static void on_linger_closed(uv_handle_t *h) {
  release(h->data);
}

static void on_conn_closed(uv_handle_t *h) {
  struct dcmf_msrp_dc_tcp *t = h->data;
  if ((uv_tcp_t *)h == t->conn) {
    t->conn = NULL;
  }
  free(h);
  if (t->lingering) {
    t->lingering = 0;
    uv_close((uv_handle_t *)&t->linger, on_linger_closed);
  }
  release(t);
}

/* The graceful close took too long (the core does not read): a reset,
 * with a zero linger since libuv refuses uv_tcp_close_reset while a
 * shutdown is pending and the kernel would keep the unsent bytes. */
static void on_linger(uv_timer_t *tm) {
  struct dcmf_msrp_dc_tcp *t = tm->data;
  uv_os_fd_t fd;
  if (t->conn == NULL || uv_is_closing((uv_handle_t *)t->conn)) {
    return;
  }
  if (uv_fileno((uv_handle_t *)t->conn, &fd) == 0) {
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
  }
  uv_close((uv_handle_t *)t->conn, on_conn_closed);
}

static void close_conn(struct dcmf_msrp_dc_tcp *t, int reset) {
  uv_tcp_t *c = t->conn;
  if (c == NULL || uv_is_closing((uv_handle_t *)c)) {
    return;
  }
  if (!reset || uv_tcp_close_reset(c, on_conn_closed) != 0) {
    uv_close((uv_handle_t *)c, on_conn_closed);
  }
}

/* Closes everything; the FIN or reset of the connection as asked. The
 * object frees itself once nothing of it is left open. */
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
  close_conn(t, reset && t->up);
  if (t->handles == 0) {
    free(t->wbuf);
    free(t);
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
  if (t->want_read) {
    t->reading = uv_read_start((uv_stream_t *)t->conn, alloc_rx, on_read) == 0;
  } else {
    uv_read_stop((uv_stream_t *)t->conn);
    t->reading = 0;
  }
}

/* ---- establishment (tcpleg.h) -------------------------------------------- */

static void est_up(void *user, uv_tcp_t *conn) {
  struct dcmf_msrp_dc_tcp *t = user;
  t->est = NULL;
  conn->data = t;
  t->conn = conn;
  t->handles++;
  t->up = 1;
  /* The kernel's share of a stalled core is bounded too (autotuning
   * would let it hold megabytes). */
  int sndbuf = DCMF_MSRP_DC_TCP_SNDBUF;
  uv_send_buffer_size((uv_handle_t *)conn, &sndbuf);
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

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  struct dcmf_msrp_dc_tcp *t = req->data;
  close_conn(t, 0);
}

/* FIN: shut the sending side down, then close. */
static void finish(struct dcmf_msrp_dc_tcp *t) {
  t->shutdown_req.data = t;
  if (uv_shutdown(&t->shutdown_req, (uv_stream_t *)t->conn, on_shutdown) !=
      0) {
    close_conn(t, 0);
  }
}

static void on_write(uv_write_t *req, int status) {
  struct dcmf_msrp_dc_tcp *t = req->data;
  free(t->wbuf);
  t->wbuf = NULL;
  t->writing = 0;
  if (t->finishing) {
    finish(t);
    return;
  }
  if (t->closed) {
    return;
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
  if (uv_write(&t->write_req, (uv_stream_t *)t->conn, &b, 1, on_write) != 0) {
    free(t->wbuf);
    t->wbuf = NULL;
    return DCMF_ERR_SYSTEM;
  }
  t->writing = 1;
  t->write_len = n;
  return (int)n;
}

void dcmf_msrp_dc_tcp_close(struct dcmf_msrp_dc_tcp *t, int reset) {
  if (t->closed) {
    return;
  }
  if (reset || !t->up) {
    teardown(t, reset);
    return;
  }
  /* A graceful end: the write in flight goes first, then the FIN,
   * within DCMF_MSRP_DC_TCP_LINGER_MS. */
  t->closed = 1;
  if (uv_timer_init(t->loop, &t->linger) == 0) {
    t->linger.data = t;
    t->lingering = 1;
    t->handles++;
    uv_timer_start(&t->linger, on_linger, DCMF_MSRP_DC_TCP_LINGER_MS, 0);
  }
  if (t->reading) {
    uv_read_stop((uv_stream_t *)t->conn);
  }
  if (t->writing) {
    t->finishing = 1;
  } else {
    finish(t);
  }
}
