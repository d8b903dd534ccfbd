/* The core TCP connection of an MSRP-over-DC media (msrp_dc_tcp.h). */
#include "msrp_dc_tcp.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>

#include "errors.h"

struct dcmf_msrp_dc_tcp {
  uv_tcp_t listener; /* passive only */
  uv_tcp_t conn;
  uv_timer_t timer; /* the establishment bound */
  uv_connect_t connect_req;
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  int handles;     /* initialised handles not closed yet */
  int listening;   /* |listener| is in use */
  int conn_init;   /* |conn| is initialised */
  int up;          /* the connection is established */
  int closed;      /* the owner let go: no callbacks */
  int writing;     /* a write is in flight */
  size_t write_len;
  uint8_t *wbuf; /* the copy being written, owned */
  int finishing;   /* a FIN follows the write in flight */
  int reading;
  int want_read;
  int deferred;    /* active connect waiting for msrp_dc_tcp_connect */
  struct sockaddr_storage remote;
  uint32_t timeout_ms;
  struct dcmf_msrp_dc_tcp_cbs cbs;
  void *user;
  uint8_t rx[DCMF_MSRP_DC_TCP_READ];
};

static void on_handle_closed(uv_handle_t *h) {
  struct dcmf_msrp_dc_tcp *t = h->data;
  if (--t->handles == 0) {
    free(t->wbuf); /* a write cancelled by the close */
    free(t);
  }
}

static void close_handle(struct dcmf_msrp_dc_tcp *t, uv_handle_t *h) {
  if (!uv_is_closing(h)) {
    uv_close(h, on_handle_closed);
  }
  (void)t;
}

/* Closes everything; the FIN or reset of the connection as asked. */
static void teardown(struct dcmf_msrp_dc_tcp *t, int reset) {
  t->closed = 1;
  uv_timer_stop(&t->timer);
  close_handle(t, (uv_handle_t *)&t->timer);
  if (t->listening) {
    close_handle(t, (uv_handle_t *)&t->listener);
  }
  if (t->conn_init && !uv_is_closing((uv_handle_t *)&t->conn)) {
    if (reset && t->up &&
        uv_tcp_close_reset(&t->conn, on_handle_closed) == 0) {
      return;
    }
    close_handle(t, (uv_handle_t *)&t->conn);
  }
}

/* The connection ended on its own: tell the owner once, then close. */
static void went_down(struct dcmf_msrp_dc_tcp *t, const char *reason,
                      int reset) {
  if (t->closed) {
    return;
  }
  int establishing = !t->up;
  teardown(t, reset);
  t->cbs.down(t->user, reason, establishing);
}

static void on_timeout(uv_timer_t *timer) {
  struct dcmf_msrp_dc_tcp *t = timer->data;
  if (!t->up) {
    went_down(t, "timeout", 0);
  }
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
    t->reading =
        uv_read_start((uv_stream_t *)&t->conn, alloc_rx, on_read) == 0;
  } else {
    uv_read_stop((uv_stream_t *)&t->conn);
    t->reading = 0;
  }
}

static void became_up(struct dcmf_msrp_dc_tcp *t) {
  t->up = 1;
  /* The kernel's share of a stalled core is bounded too (autotuning
   * would let it hold megabytes). */
  int sndbuf = DCMF_MSRP_DC_TCP_SNDBUF;
  uv_send_buffer_size((uv_handle_t *)&t->conn, &sndbuf);
  uv_timer_stop(&t->timer);
  t->cbs.up(t->user);
  sync_reading(t);
}

static void on_connect(uv_connect_t *req, int status) {
  struct dcmf_msrp_dc_tcp *t = req->data;
  if (t->closed) {
    return;
  }
  if (status != 0) {
    went_down(t, status == UV_ETIMEDOUT ? "timeout" : "refused", 0);
    return;
  }
  became_up(t);
}

static int same_host(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) {
    return 0;
  }
  if (a->ss_family == AF_INET) {
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  }
  return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                &((const struct sockaddr_in6 *)b)->sin6_addr,
                sizeof(struct in6_addr)) == 0;
}

static void on_refused_closed(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *server, int status) {
  struct dcmf_msrp_dc_tcp *t = server->data;
  if (t->closed || t->up || status != 0) {
    return;
  }
  uv_tcp_t *c = malloc(sizeof(*c));
  if (c == NULL || uv_tcp_init(server->loop, c) != 0) {
    free(c);
    return;
  }
  if (uv_accept(server, (uv_stream_t *)c) != 0) {
    uv_close((uv_handle_t *)c, on_refused_closed);
    return;
  }
  struct sockaddr_storage peer;
  int len = sizeof(peer);
  if (t->remote.ss_family != 0 &&
      (uv_tcp_getpeername(c, (struct sockaddr *)&peer, &len) != 0 ||
       !same_host(&peer, &t->remote))) {
    /* Only the signalled core host may connect (any port: RFC 4145 §4). */
    if (uv_tcp_close_reset(c, on_refused_closed) != 0) {
      uv_close((uv_handle_t *)c, on_refused_closed);
    }
    return;
  }
  /* The accepted socket becomes |conn|: its fd moves over. */
  uv_os_fd_t fd;
  int dupfd = -1;
  if (uv_fileno((uv_handle_t *)c, &fd) == 0) {
    dupfd = dup(fd);
  }
  uv_close((uv_handle_t *)c, on_refused_closed);
  if (dupfd < 0 || uv_tcp_init(server->loop, &t->conn) != 0) {
    if (dupfd >= 0) {
      close(dupfd);
    }
    went_down(t, "error", 0);
    return;
  }
  t->conn.data = t;
  t->conn_init = 1;
  t->handles++;
  if (uv_tcp_open(&t->conn, dupfd) != 0) {
    close(dupfd);
    went_down(t, "error", 0);
    return;
  }
  uv_tcp_nodelay(&t->conn, 1);
  t->listening = 0;
  close_handle(t, (uv_handle_t *)&t->listener); /* one connection only */
  became_up(t);
}

void dcmf_msrp_dc_tcp_connect(struct dcmf_msrp_dc_tcp *t) {
  if (t->closed || !t->deferred) {
    return;
  }
  t->deferred = 0;
  uv_timer_start(&t->timer, on_timeout, t->timeout_ms, 0);
  t->connect_req.data = t;
  if (uv_tcp_connect(&t->connect_req, &t->conn,
                     (const struct sockaddr *)&t->remote, on_connect) != 0) {
    went_down(t, "refused", 0);
  }
}

int dcmf_msrp_dc_tcp_start(struct dcmf_msrp_dc_tcp **out, uv_loop_t *loop,
                           int fd, int passive,
                           const struct sockaddr_storage *remote, int defer,
                           uint32_t timeout_ms,
                           const struct dcmf_msrp_dc_tcp_cbs *cbs, void *user) {
  if (!passive && remote->ss_family == 0) {
    close(fd);
    return DCMF_ERR_INVALID;
  }
  struct dcmf_msrp_dc_tcp *t = calloc(1, sizeof(*t));
  if (t == NULL) {
    close(fd);
    return DCMF_ERR_NOMEM;
  }
  t->remote = *remote;
  t->timeout_ms = timeout_ms;
  t->cbs = *cbs;
  t->user = user;
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
  t->handles = 1;
  uv_tcp_t *h = passive ? &t->listener : &t->conn;
  if (uv_tcp_init(loop, h) != 0) {
    close(fd);
    teardown(t, 0);
    return DCMF_ERR_SYSTEM;
  }
  h->data = t;
  t->handles++;
  if (passive) {
    t->listening = 1;
  } else {
    t->conn_init = 1;
  }
  if (uv_tcp_open(h, fd) != 0) {
    close(fd);
    teardown(t, 0);
    return DCMF_ERR_SYSTEM;
  }
  if (passive) {
    if (uv_listen((uv_stream_t *)h, 4, on_connection) != 0) {
      teardown(t, 0);
      return DCMF_ERR_SYSTEM;
    }
    uv_timer_start(&t->timer, on_timeout, timeout_ms, 0);
  } else {
    uv_tcp_nodelay(h, 1);
    t->deferred = 1;
    *out = t;
    if (!defer) {
      dcmf_msrp_dc_tcp_connect(t);
    }
    return 0;
  }
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
  close_handle(t, (uv_handle_t *)&t->conn);
}

/* FIN: shut the sending side down, then close. */
static void finish(struct dcmf_msrp_dc_tcp *t) {
  t->shutdown_req.data = t;
  if (uv_shutdown(&t->shutdown_req, (uv_stream_t *)&t->conn, on_shutdown) !=
      0) {
    close_handle(t, (uv_handle_t *)&t->conn);
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
  if (uv_write(&t->write_req, (uv_stream_t *)&t->conn, &b, 1, on_write) != 0) {
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
  /* A graceful end: the write in flight goes first, then the FIN. */
  t->closed = 1;
  uv_timer_stop(&t->timer);
  close_handle(t, (uv_handle_t *)&t->timer);
  if (t->reading) {
    uv_read_stop((uv_stream_t *)&t->conn);
  }
  if (t->writing) {
    t->finishing = 1;
  } else {
    finish(t);
  }
}
