/* The establishment of one e2ae TCP leg (tcpleg.h). */
#include "tcpleg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>

#include "errors.h"
#include "relay.h"

/* Connections the kernel may hold for a leg that waits for its remote. */
#define BACKLOG 4

struct dcmf_tcpleg {
  uv_loop_t *loop;
  struct dcmf_tcpleg_cbs cbs;
  void *user;
  struct dcmf_tcpleg_config cfg;
  struct sockaddr_storage local; /* the leg's own address and port */
  uv_timer_t timer;     /* the bound, MERGE retries, a deferred failure */
  uv_tcp_t *listener;   /* PASSIVE and MERGE */
  uv_tcp_t *out;        /* the connect in flight (ACTIVE and MERGE) */
  uv_connect_t connect_req;
  int accepting;        /* uv_listen done: the remote is known */
  int handles;          /* handles of the leg not closed yet */
  int done;             /* up, failed or closed: no callback but gone */
  uint64_t deadline;    /* loop ms */
  uint64_t retry_at;    /* MERGE: the next connect; 0: none due */
  int pending;          /* a failure found inside a call, reported next */
  enum dcmf_tcpleg_failure pending_kind;
  char pending_why[160];
};

/* ---- handles ------------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  struct dcmf_tcpleg *l = h->data;
  if (h != (uv_handle_t *)&l->timer) {
    free(h);
  }
  if (--l->handles == 0) {
    if (l->cbs.gone != NULL) {
      l->cbs.gone(l->user);
    }
    free(l);
  }
}

static void close_tcp(uv_tcp_t **t, int reset) {
  uv_tcp_t *h = *t;
  *t = NULL;
  if (h == NULL || uv_is_closing((uv_handle_t *)h)) {
    return;
  }
  if (!reset || uv_tcp_close_reset(h, on_closed) != 0) {
    uv_close((uv_handle_t *)h, on_closed);
  }
}

static uv_tcp_t *tcp_new(struct dcmf_tcpleg *l) {
  uv_tcp_t *t = malloc(sizeof(*t));
  if (t == NULL || uv_tcp_init(l->loop, t) != 0) {
    free(t);
    return NULL;
  }
  t->data = l;
  l->handles++;
  return t;
}

/* Ends establishing: every handle of the leg closes. */
static void finish(struct dcmf_tcpleg *l) {
  l->done = 1;
  close_tcp(&l->listener, 0);
  close_tcp(&l->out, 0); /* a connect in flight is cancelled */
  if (!uv_is_closing((uv_handle_t *)&l->timer)) {
    uv_close((uv_handle_t *)&l->timer, on_closed);
  }
}

static void fail(struct dcmf_tcpleg *l, enum dcmf_tcpleg_failure kind,
                 const char *why) {
  finish(l);
  l->cbs.failed(l->user, kind, why);
}

static void on_timer(uv_timer_t *t);

/* Arms the timer for what is due first. */
static void arm(struct dcmf_tcpleg *l) {
  uint64_t now = uv_now(l->loop);
  uint64_t at = l->pending ? now : l->deadline;
  if (l->retry_at != 0 && l->retry_at < at) {
    at = l->retry_at;
  }
  uv_timer_start(&l->timer, on_timer, at > now ? at - now : 0, 0);
}

/* A failure found inside a call of the owner's is reported from the
 * loop (callbacks never run inside the owner's own calls). */
static void fail_later(struct dcmf_tcpleg *l, enum dcmf_tcpleg_failure kind,
                       const char *why) {
  if (l->pending) {
    return;
  }
  l->pending = 1;
  l->pending_kind = kind;
  snprintf(l->pending_why, sizeof(l->pending_why), "%s", why);
  arm(l);
}

/* The connection |c| (counted among the leg's handles) is the owner's,
 * as a tcpconn that owns its end. */
static void hand_over(struct dcmf_tcpleg *l, uv_tcp_t *c) {
  struct dcmf_tcpconn *conn;
  if (dcmf_tcpconn_new(&conn, c, l->cfg.linger_ms) != 0) {
    close_tcp(&c, 1);
    fail(l, DCMF_TCPLEG_SOCKET, "out of memory");
    return;
  }
  l->handles--;
  uv_tcp_nodelay(c, 1);
  finish(l);
  l->cbs.up(l->user, conn);
}

/* ---- addresses ----------------------------------------------------------- */

/* |in| as an address a socket of |family| can connect to: IPv4 as
 * IPv4-mapped IPv6 for a (dual-stack) IPv6 socket, IPv4-mapped IPv6 as
 * IPv4 for an IPv4 one; others unchanged. */
static struct sockaddr_storage for_family(const struct sockaddr_storage *in,
                                          int family) {
  struct sockaddr_storage o;
  memset(&o, 0, sizeof(o));
  if (family == AF_INET6 && in->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)in;
    struct sockaddr_in6 *b = (struct sockaddr_in6 *)&o;
    b->sin6_family = AF_INET6;
    b->sin6_port = a->sin_port;
    b->sin6_addr.s6_addr[10] = b->sin6_addr.s6_addr[11] = 0xff;
    memcpy(b->sin6_addr.s6_addr + 12, &a->sin_addr, 4);
    return o;
  }
  const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)in;
  if (family == AF_INET && in->ss_family == AF_INET6 &&
      IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
    struct sockaddr_in *b = (struct sockaddr_in *)&o;
    b->sin_family = AF_INET;
    b->sin_port = a6->sin6_port;
    memcpy(&b->sin_addr, a6->sin6_addr.s6_addr + 12, 4);
    return o;
  }
  return *in;
}

/* ---- connecting ---------------------------------------------------------- */

/* A connect failed with |status|: MERGE tries again (the peer may not
 * listen yet, or connects itself); ACTIVE fails, from the loop when
 * |later| (the failure was found inside a call of the owner's). */
static void connect_failed(struct dcmf_tcpleg *l, int status, int later) {
  close_tcp(&l->out, 0);
  if (l->cfg.setup == DCMF_TCP_MERGE) {
    l->retry_at = uv_now(l->loop) + DCMF_TCPLEG_RETRY_MS;
    arm(l);
    return;
  }
  char why[160];
  snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(status));
  if (later) {
    fail_later(l, DCMF_TCPLEG_CONNECT, why);
  } else {
    fail(l, DCMF_TCPLEG_CONNECT, why);
  }
}

static void on_connected(uv_connect_t *req, int status) {
  struct dcmf_tcpleg *l = req->data;
  if (status == UV_ECANCELED || l->done || l->out == NULL) {
    return; /* the handle is closing already */
  }
  if (status == 0) {
    uv_tcp_t *c = l->out;
    l->out = NULL;
    hand_over(l, c);
    return;
  }
  connect_failed(l, status, 0);
}

/* A MERGE connect leaves from the listener's own address and port. */
static int merge_socket(const struct dcmf_tcpleg *l) {
  int fd = socket(l->local.ss_family,
                  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0) {
    return -1;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
      bind(fd, (const struct sockaddr *)&l->local,
           l->local.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                          : sizeof(struct sockaddr_in)) !=
          0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Connects from |fd| (the leg's own socket) or, with -1, from a new
 * MERGE socket on the same port. A failure of an ACTIVE leg is
 * reported later; a MERGE leg tries again. */
static void connect_from(struct dcmf_tcpleg *l, int fd) {
  l->retry_at = 0;
  int rv = UV_EBADF;
  if (fd < 0) {
    fd = merge_socket(l);
    rv = fd < 0 ? uv_translate_sys_error(errno) : 0;
  } else {
    rv = 0;
  }
  if (rv == 0) {
    l->out = tcp_new(l);
    rv = l->out == NULL ? UV_ENOMEM : uv_tcp_open(l->out, fd);
    if (rv != 0) {
      close(fd); /* a handle that failed to open it does not own it */
    }
  }
  if (rv == 0) {
    struct sockaddr_storage to = for_family(&l->cfg.remote, l->local.ss_family);
    l->connect_req.data = l;
    rv = uv_tcp_connect(&l->connect_req, l->out, (const struct sockaddr *)&to,
                        on_connected);
  }
  if (rv == 0) {
    return;
  }
  connect_failed(l, rv, 1);
}

/* ---- accepting ----------------------------------------------------------- */

static void on_connection(uv_stream_t *server, int status) {
  struct dcmf_tcpleg *l = server->data;
  if (status != 0 || l->done) {
    return;
  }
  uv_tcp_t *c = tcp_new(l);
  if (c == NULL) {
    /* libuv watches the listener again only after an accept: without
     * one this leg would hear of no later connection. */
    fail_later(l, DCMF_TCPLEG_SOCKET, "out of memory");
    return;
  }
  struct sockaddr_storage peer;
  int len = sizeof(peer);
  if (uv_accept(server, (uv_stream_t *)c) != 0 ||
      uv_tcp_getpeername(c, (struct sockaddr *)&peer, &len) != 0) {
    close_tcp(&c, 1);
    return;
  }
  if (!dcmf_relay_host_equal((const struct sockaddr *)&peer,
                             (const struct sockaddr *)&l->cfg.remote)) {
    close_tcp(&c, 1); /* a reset: not the signalled peer */
    if (l->cbs.refused != NULL) {
      l->cbs.refused(l->user);
    }
    return;
  }
  hand_over(l, c);
}

/* The remote is known: accept (and MERGE: connect). */
static void begin(struct dcmf_tcpleg *l) {
  if (l->accepting || l->cfg.remote.ss_family == 0) {
    return;
  }
  l->accepting = 1;
  int rv = uv_listen((uv_stream_t *)l->listener, BACKLOG, on_connection);
  if (rv != 0) {
    char why[160];
    snprintf(why, sizeof(why), "cannot listen: %s", uv_strerror(rv));
    fail_later(l, DCMF_TCPLEG_SOCKET, why);
    return;
  }
  if (l->cfg.setup == DCMF_TCP_MERGE) {
    connect_from(l, -1);
  }
}

/* ---- the timer ----------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  struct dcmf_tcpleg *l = t->data;
  if (l->done) {
    return;
  }
  if (l->pending) {
    fail(l, l->pending_kind, l->pending_why);
    return;
  }
  uint64_t now = uv_now(l->loop);
  if (now >= l->deadline) {
    char why[160];
    snprintf(why, sizeof(why), "no connection within %u ms",
             (unsigned)l->cfg.timeout_ms);
    fail(l, DCMF_TCPLEG_TIMEOUT, why);
    return;
  }
  if (l->retry_at != 0 && now >= l->retry_at && l->out == NULL) {
    connect_from(l, -1);
  }
  if (!l->done) {
    arm(l);
  }
}

/* ---- the API ------------------------------------------------------------- */

int dcmf_tcpleg_start(struct dcmf_tcpleg **out, uv_loop_t *loop, int fd,
                      const struct dcmf_tcpleg_config *cfg,
                      const struct dcmf_tcpleg_cbs *cbs, void *user) {
  if (fd < 0 || cfg->timeout_ms == 0) {
    if (fd >= 0) {
      close(fd);
    }
    return DCMF_ERR_INVALID;
  }
  struct dcmf_tcpleg *l = calloc(1, sizeof(*l));
  if (l == NULL) {
    close(fd);
    return DCMF_ERR_NOMEM;
  }
  l->loop = loop;
  l->cbs = *cbs;
  l->user = user;
  l->cfg = *cfg;
  socklen_t len = sizeof(l->local);
  if (getsockname(fd, (struct sockaddr *)&l->local, &len) != 0) {
    l->local.ss_family = AF_UNSPEC;
  }
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  l->handles = 1;
  l->deadline = uv_now(loop) + cfg->timeout_ms;
  *out = l;
  if (cfg->setup == DCMF_TCP_ACTIVE) {
    if (cfg->remote.ss_family == 0) {
      close(fd);
      fail_later(l, DCMF_TCPLEG_NO_REMOTE, "no remote address to connect to");
      return 0;
    }
    connect_from(l, fd);
    arm(l);
    return 0;
  }
  l->listener = tcp_new(l);
  if (l->listener == NULL || uv_tcp_open(l->listener, fd) != 0) {
    close(fd); /* a handle that failed to open it does not own it */
    close_tcp(&l->listener, 0);
    fail_later(l, DCMF_TCPLEG_SOCKET, "cannot listen on the local port");
    return 0;
  }
  if (cfg->setup == DCMF_TCP_MERGE) {
    /* The MERGE connect binds beside this listener (tcpleg.h). */
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  }
  /* Listening already (the owner's socket); this makes sure the kernel
   * queues what comes before the remote is known. */
  if (listen(fd, BACKLOG) != 0) {
    fail_later(l, DCMF_TCPLEG_SOCKET, "cannot listen on the local port");
    return 0;
  }
  begin(l);
  arm(l);
  return 0;
}

void dcmf_tcpleg_set_remote(struct dcmf_tcpleg *l,
                            const struct sockaddr_storage *remote) {
  if (l->done) {
    return;
  }
  l->cfg.remote = *remote;
  if (l->cfg.setup != DCMF_TCP_ACTIVE && l->listener != NULL) {
    begin(l);
  }
}

void dcmf_tcpleg_close(struct dcmf_tcpleg *l) {
  if (!l->done) {
    finish(l);
  }
}
