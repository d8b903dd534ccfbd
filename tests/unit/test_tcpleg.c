/*
 * Unit tests for the e2ae TCP leg's establishment (dcmf/media/tcpleg.c)
 * on a real libuv loop over loopback: the peer check (IPv4-mapped IPv6
 * equal to IPv4), a passive leg refusing an unsignalled source and
 * holding connections until its remote is signalled, a merge leg
 * connecting from its own port, the bound, a refused active connect, a
 * dual-stack socket reaching an IPv4 peer; the established connection's
 * close (tcpconn.c: graceful with unread peer input delivers all and
 * ends with FINs, the linger bound resets a peer that sends no FIN or
 * reads nothing, abortive, an abort cutting a graceful close short, a
 * graceful close after the peer's FIN); and the TCP relay host's ADD
 * under failing allocations (each one fails the ADD cleanly: an event,
 * no leak, RELEASED after the REMOVE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "relay.h"
#include "tcpleg.h"
#include "tcprelay.h"
#include "testpki.h"

/* ---- failing allocations (linked with --wrap) ---- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
static volatile long fail_in = -1; /* the allocation that fails; -1 none */
static long allocations;
static int alloc_fails(void) {
  if (fail_in < 0) {
    return 0;
  }
  return allocations++ == fail_in;
}
void *__wrap_malloc(size_t size) {
  return alloc_fails() ? NULL : __real_malloc(size);
}
void *__wrap_calloc(size_t n, size_t size) {
  return alloc_fails() ? NULL : __real_calloc(n, size);
}

/* ---- fixture ---- */

struct result {
  int up, failed, refused, gone;
  enum dcmf_tcpleg_failure kind;
  struct dcmf_tcpconn *conn;
};

static uv_loop_t loop;

static void r_up(void *u, struct dcmf_tcpconn *c) {
  struct result *r = u;
  r->up++;
  r->conn = c;
}
static void r_failed(void *u, enum dcmf_tcpleg_failure k, const char *why) {
  struct result *r = u;
  assert_non_null(why);
  r->failed++;
  r->kind = k;
}
static void r_refused(void *u) { ((struct result *)u)->refused++; }
static void r_gone(void *u) { ((struct result *)u)->gone++; }
static const struct dcmf_tcpleg_cbs cbs = {r_up, r_failed, r_refused, r_gone};

/* Runs the loop until |*flag| or about 3 s. */
static int run_until(const int *flag) {
  for (int i = 0; i < 3000 && !*flag; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  return *flag;
}

/* Runs the loop |turns| times, 1 ms apart (a negative check). */
static void run_for(int turns) {
  for (int i = 0; i < turns; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

static struct sockaddr_storage v4(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *a = (struct sockaddr_in *)&ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
  return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
  return ss;
}

static socklen_t len_of(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
}

static uint16_t port_of(int fd, int peer) {
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  assert_int_equal(peer ? getpeername(fd, (struct sockaddr *)&ss, &l)
                        : getsockname(fd, (struct sockaddr *)&ss, &l),
                   0);
  return ntohs(ss.ss_family == AF_INET6
                   ? ((struct sockaddr_in6 *)&ss)->sin6_port
                   : ((struct sockaddr_in *)&ss)->sin_port);
}

/* A TCP socket bound to |at| (port 0: any), listening when |listening|;
 * with SO_REUSEADDR as the control side makes them (agw_tcp.c). */
static int bound(struct sockaddr_storage at, int listening) {
  int fd = socket(at.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  assert_true(fd >= 0);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  assert_int_equal(bind(fd, (struct sockaddr *)&at, len_of(&at)), 0);
  if (listening) {
    assert_int_equal(listen(fd, 4), 0);
  }
  return fd;
}

/* A blocking client from |from| (port 0) to 127.0.0.1:|port|. */
static int client(const char *from, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_storage f = v4(from, 0), to = v4("127.0.0.1", port);
  assert_int_equal(bind(fd, (struct sockaddr *)&f, len_of(&f)), 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&to, len_of(&to)), 0);
  return fd;
}

/* 1 once the peer reset (or closed) |fd|. */
static int reset_seen(int fd) {
  char b;
  for (int i = 0; i < 3000; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      return 1;
    }
    usleep(1000);
  }
  return 0;
}

static void finish(struct result *r) {
  if (r->conn != NULL) {
    dcmf_tcpconn_close(r->conn, DCMF_TCPCONN_ABORT); /* frees itself */
    r->conn = NULL;
  }
  assert_true(run_until(&r->gone));
  assert_int_equal(r->gone, 1);
  run_for(5);
}

static int setup(void **state) {
  (void)state;
  return uv_loop_init(&loop);
}

static int teardown(void **state) {
  (void)state;
  run_for(5);
  return uv_loop_close(&loop) == 0 ? 0 : -1;
}

/* ---- cases ---- */

static void test_host_equal_v4_mapped(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.7", 1000),
                          m = v6("::ffff:192.0.2.7", 2000),
                          o = v6("::ffff:192.0.2.8", 1000),
                          b = v6("2001:db8::7", 1), c = v6("2001:db8::7", 2),
                          none;
  memset(&none, 0, sizeof(none));
  assert_true(dcmf_relay_host_equal((struct sockaddr *)&a,
                                    (struct sockaddr *)&m));
  assert_true(dcmf_relay_host_equal((struct sockaddr *)&m,
                                    (struct sockaddr *)&a));
  assert_false(dcmf_relay_host_equal((struct sockaddr *)&a,
                                     (struct sockaddr *)&o));
  assert_true(dcmf_relay_host_equal((struct sockaddr *)&b,
                                    (struct sockaddr *)&c));
  assert_false(dcmf_relay_host_equal((struct sockaddr *)&a,
                                     (struct sockaddr *)&b));
  assert_false(dcmf_relay_host_equal((struct sockaddr *)&a,
                                     (struct sockaddr *)&none));
}

static void test_passive_refuses_unsignalled_source(void **state) {
  (void)state;
  struct result r = {0};
  struct dcmf_tcpleg *l;
  int fd = bound(v4("127.0.0.1", 0), 1);
  uint16_t port = port_of(fd, 0);
  struct dcmf_tcpleg_config cfg = {DCMF_TCP_PASSIVE, v4("127.0.0.1", 9),
                                   3000, 0};
  assert_int_equal(dcmf_tcpleg_start(&l, &loop, fd, &cfg, &cbs, &r), 0);
  int bad = client("127.0.0.2", port);
  assert_true(reset_seen(bad));
  assert_int_equal(r.refused, 1);
  assert_int_equal(r.up, 0);
  close(bad);
  int good = client("127.0.0.1", port);
  assert_true(run_until(&r.up));
  assert_int_equal(r.refused, 1);
  assert_int_equal(r.failed, 0);
  close(good);
  finish(&r);
}

static void test_passive_holds_until_remote(void **state) {
  (void)state;
  struct result r = {0};
  struct dcmf_tcpleg *l;
  int fd = bound(v4("127.0.0.1", 0), 1);
  uint16_t port = port_of(fd, 0);
  struct dcmf_tcpleg_config cfg = {.setup = DCMF_TCP_PASSIVE,
                                   .timeout_ms = 3000};
  assert_int_equal(dcmf_tcpleg_start(&l, &loop, fd, &cfg, &cbs, &r), 0);
  int early = client("127.0.0.1", port); /* queued by the kernel */
  run_for(100);                          /* a negative check */
  assert_int_equal(r.up + r.refused + r.failed, 0);
  struct sockaddr_storage rem = v4("127.0.0.1", 9);
  dcmf_tcpleg_set_remote(l, &rem);
  assert_true(run_until(&r.up));
  assert_int_equal(r.refused, 0);
  close(early);
  finish(&r);
}

static void test_merge_connects_from_own_port(void **state) {
  (void)state;
  struct result r = {0};
  struct dcmf_tcpleg *l;
  int peer = bound(v4("127.0.0.1", 0), 1);
  int fd = bound(v4("127.0.0.1", 0), 1);
  uint16_t port = port_of(fd, 0);
  struct dcmf_tcpleg_config cfg = {DCMF_TCP_MERGE,
                                   v4("127.0.0.1", port_of(peer, 0)), 3000, 0};
  assert_int_equal(dcmf_tcpleg_start(&l, &loop, fd, &cfg, &cbs, &r), 0);
  assert_true(run_until(&r.up));
  int c = -1;
  for (int i = 0; i < 3000 && c < 0; i++) {
    c = accept(peer, NULL, NULL);
    usleep(1000);
  }
  assert_true(c >= 0);
  assert_int_equal(port_of(c, 1), port); /* the peer sees our port */
  close(c);
  close(peer);
  finish(&r);
}

static void test_passive_bound(void **state) {
  (void)state;
  struct result r = {0};
  struct dcmf_tcpleg *l;
  int fd = bound(v4("127.0.0.1", 0), 1);
  struct dcmf_tcpleg_config cfg = {DCMF_TCP_PASSIVE, v4("127.0.0.1", 9), 150, 0};
  uint64_t t0 = uv_hrtime();
  assert_int_equal(dcmf_tcpleg_start(&l, &loop, fd, &cfg, &cbs, &r), 0);
  /* A new remote does not restart the bound. */
  run_for(80);
  struct sockaddr_storage rem = v4("127.0.0.3", 9);
  dcmf_tcpleg_set_remote(l, &rem);
  assert_true(run_until(&r.failed));
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_int_equal(r.kind, DCMF_TCPLEG_TIMEOUT);
  assert_true(ms >= 140 && ms < 1000);
  finish(&r);
}

static void test_active_refused(void **state) {
  (void)state;
  struct result r = {0};
  struct dcmf_tcpleg *l;
  int dead = bound(v4("127.0.0.1", 0), 0); /* bound, not listening */
  int fd = bound(v4("127.0.0.1", 0), 0);
  struct dcmf_tcpleg_config cfg = {DCMF_TCP_ACTIVE,
                                   v4("127.0.0.1", port_of(dead, 0)), 3000, 0};
  assert_int_equal(dcmf_tcpleg_start(&l, &loop, fd, &cfg, &cbs, &r), 0);
  assert_true(run_until(&r.failed));
  assert_int_equal(r.kind, DCMF_TCPLEG_CONNECT);
  close(dead);
  finish(&r);
}

static void test_active_without_remote_fails_later(void **state) {
  (void)state;
  struct result r = {0};
  struct dcmf_tcpleg *l;
  int fd = bound(v4("127.0.0.1", 0), 0);
  struct dcmf_tcpleg_config cfg = {.setup = DCMF_TCP_ACTIVE,
                                   .timeout_ms = 3000};
  assert_int_equal(dcmf_tcpleg_start(&l, &loop, fd, &cfg, &cbs, &r), 0);
  assert_int_equal(r.failed, 0); /* never inside the call */
  assert_true(run_until(&r.failed));
  assert_int_equal(r.kind, DCMF_TCPLEG_NO_REMOTE);
  finish(&r);
}

/* A dual-stack socket ([::]): an IPv4 peer arrives IPv4-mapped and
 * matches its IPv4 remote; an active leg reaches an IPv4 remote. */
static void test_dual_stack(void **state) {
  (void)state;
  struct result r = {0}, a = {0};
  struct dcmf_tcpleg *l, *la;
  int fd = bound(v6("::", 0), 1);
  uint16_t port = port_of(fd, 0);
  struct dcmf_tcpleg_config cfg = {DCMF_TCP_PASSIVE, v4("127.0.0.1", 9),
                                   3000, 0};
  assert_int_equal(dcmf_tcpleg_start(&l, &loop, fd, &cfg, &cbs, &r), 0);
  int c = client("127.0.0.1", port);
  assert_true(run_until(&r.up));
  assert_int_equal(r.refused, 0);
  close(c);
  finish(&r);
  int peer = bound(v4("127.0.0.1", 0), 1);
  int afd = bound(v6("::", 0), 0);
  struct dcmf_tcpleg_config acfg = {DCMF_TCP_ACTIVE,
                                    v4("127.0.0.1", port_of(peer, 0)), 3000, 0};
  assert_int_equal(dcmf_tcpleg_start(&la, &loop, afd, &acfg, &cbs, &a), 0);
  assert_true(run_until(&a.up));
  assert_int_equal(a.failed, 0);
  close(peer);
  finish(&a);
}

/* ---- the connection's close (tcpconn.h) ---- */

struct ending {
  int gone;
  enum dcmf_tcpconn_end end;
  uint64_t at; /* uv_hrtime of |gone| */
};

static void e_gone(void *u, enum dcmf_tcpconn_end end) {
  struct ending *e = u;
  e->gone++;
  e->end = end;
  e->at = uv_hrtime();
}

/* What the owner wrote: byte |i| of the stream. */
static uint8_t pattern(size_t i) { return (uint8_t)(i % 251); }

static int written_ok;
static void on_owner_write(uv_write_t *req, int status) {
  written_ok = status == 0 ? 1 : -1;
  free(req);
}

/* The owner queues |n| bytes of pattern() on |c| (one uv_write). */
static void owner_write(struct dcmf_tcpconn *c, uint8_t *buf, size_t n) {
  for (size_t i = 0; i < n; i++) {
    buf[i] = pattern(i);
  }
  uv_write_t *req = malloc(sizeof(*req));
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
  written_ok = 0;
  assert_int_equal(
      uv_write(req, (uv_stream_t *)dcmf_tcpconn_tcp(c), &b, 1, on_owner_write),
      0);
}

/* A leg (PASSIVE) up with a blocking client, the peer: returns the
 * connection (its close bounded by |linger_ms|), the peer in *|peer|. */
static struct dcmf_tcpconn *connected(uint32_t linger_ms, int *peer,
                                      struct ending *e) {
  struct result r = {0};
  struct dcmf_tcpleg *l;
  int fd = bound(v4("127.0.0.1", 0), 1);
  struct dcmf_tcpleg_config cfg = {DCMF_TCP_PASSIVE, v4("127.0.0.1", 9), 3000,
                                   linger_ms};
  assert_int_equal(dcmf_tcpleg_start(&l, &loop, fd, &cfg, &cbs, &r), 0);
  *peer = client("127.0.0.1", port_of(fd, 0));
  assert_true(run_until(&r.up));
  assert_true(run_until(&r.gone)); /* the listener is closed */
  dcmf_tcpconn_set_gone(r.conn, e_gone, e);
  return r.conn;
}

/* The peer sends |n| bytes the owner never reads (it does not read). */
static void peer_send(int peer, size_t n) {
  uint8_t b[16384];
  memset(b, 'p', sizeof(b));
  while (n > 0) {
    size_t k = n < sizeof(b) ? n : sizeof(b);
    assert_int_equal(send(peer, b, k, MSG_DONTWAIT), (ssize_t)k);
    n -= k;
  }
}

/* The peer reads to the end of the stream, checking each byte against
 * pattern() and running the loop meanwhile; once |more_at| bytes are in
 * it sends |more| bytes more (input that reaches a closing socket).
 * Returns 0 on a FIN, the errno of a failed read (a reset), or -1 if
 * neither came within about 10 s. */
static int peer_read_to_end(int peer, size_t *got, size_t more_at,
                            size_t more) {
  uint8_t b[65536];
  *got = 0;
  for (int idle = 0; idle < 10000;) {
    uv_run(&loop, UV_RUN_NOWAIT);
    ssize_t n = recv(peer, b, sizeof(b), MSG_DONTWAIT);
    if (n == 0) {
      return 0;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      idle++;
      usleep(1000);
      continue;
    }
    if (n < 0) {
      return errno;
    }
    for (ssize_t i = 0; i < n; i++) {
      assert_int_equal(b[i], pattern(*got + (size_t)i));
    }
    size_t before = *got;
    *got += (size_t)n;
    if (more > 0 && before < more_at && *got >= more_at) {
      peer_send(peer, more);
    }
  }
  return -1;
}

static uint64_t ms_since(uint64_t t0) {
  return (uv_hrtime() - t0) / 1000000;
}

/* The case this close exists for: the owner closes gracefully with
 * input it never read (and more arriving meanwhile) and 4 MiB still
 * queued. A plain close after the FIN would answer with a reset and
 * drop what was unsent; here the peer gets every byte, then our FIN,
 * and once it sends its own the socket closes cleanly. */
static void test_graceful_close_delivers_all(void **state) {
  (void)state;
  struct ending e = {0};
  int peer;
  struct dcmf_tcpconn *c = connected(3000, &peer, &e);
  size_t total = 4u << 20;
  uint8_t *buf = malloc(total);
  owner_write(c, buf, total);
  peer_send(peer, 32768); /* unread by the owner */
  run_for(5);
  dcmf_tcpconn_close(c, DCMF_TCPCONN_GRACEFUL);
  size_t got;
  int how = peer_read_to_end(peer, &got, total / 2, 16384);
  assert_int_equal(how, 0); /* a FIN, not a reset */
  assert_int_equal(got, total);
  assert_int_equal(written_ok, 1);
  assert_int_equal(e.gone, 0); /* waits for the peer's FIN */
  close(peer);
  assert_true(run_until(&e.gone));
  assert_int_equal(e.end, DCMF_TCPCONN_ENDED_FIN);
  free(buf);
}

/* A peer that reads our FIN but never sends its own is reset when the
 * linger bound runs out, not before. */
static void test_graceful_close_bound_without_peer_fin(void **state) {
  (void)state;
  struct ending e = {0};
  int peer;
  struct dcmf_tcpconn *c = connected(300, &peer, &e);
  uint8_t buf[1000];
  owner_write(c, buf, sizeof(buf));
  uint64_t t0 = uv_hrtime();
  dcmf_tcpconn_close(c, DCMF_TCPCONN_GRACEFUL);
  size_t got;
  assert_int_equal(peer_read_to_end(peer, &got, 0, 0), 0);
  assert_int_equal(got, sizeof(buf));
  assert_int_equal(e.gone, 0);
  assert_true(run_until(&e.gone));
  assert_int_equal(e.end, DCMF_TCPCONN_ENDED_LINGER);
  uint64_t ms = (e.at - t0) / 1000000;
  assert_true(ms >= 290 && ms < 2000);
  /* The reset reached the peer: its socket is dead. */
  int dead = 0;
  for (int i = 0; i < 1000 && !dead; i++) {
    dead = send(peer, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
           (errno == EPIPE || errno == ECONNRESET);
    usleep(1000);
  }
  assert_true(dead);
  close(peer);
}

/* A peer that reads nothing: our queue cannot drain, so the FIN never
 * goes; the bound resets the connection and the peer sees the reset. */
static void test_graceful_close_bound_stalled_reader(void **state) {
  (void)state;
  struct ending e = {0};
  int peer;
  struct dcmf_tcpconn *c = connected(300, &peer, &e);
  size_t total = 8u << 20;
  uint8_t *buf = malloc(total);
  owner_write(c, buf, total);
  run_for(1); /* the loop's time (the bound's start) catches up */
  uint64_t t0 = uv_hrtime();
  dcmf_tcpconn_close(c, DCMF_TCPCONN_GRACEFUL);
  assert_true(run_until(&e.gone));
  assert_int_equal(e.end, DCMF_TCPCONN_ENDED_LINGER);
  uint64_t ms = (e.at - t0) / 1000000;
  assert_true(ms >= 290 && ms < 2000);
  assert_int_equal(written_ok, -1); /* the rest was dropped */
  size_t got;
  assert_int_equal(peer_read_to_end(peer, &got, 0, 0), ECONNRESET);
  assert_true(got < total);
  close(peer);
  free(buf);
}

/* An abortive close resets at once, whatever is queued or unread. */
static void test_abort_resets(void **state) {
  (void)state;
  struct ending e = {0};
  int peer;
  struct dcmf_tcpconn *c = connected(0, &peer, &e);
  uint8_t buf[1000];
  owner_write(c, buf, sizeof(buf));
  peer_send(peer, 1000);
  run_for(5);
  dcmf_tcpconn_close(c, DCMF_TCPCONN_ABORT);
  assert_int_equal(e.gone, 0); /* never inside the call */
  assert_true(run_until(&e.gone));
  assert_int_equal(e.end, DCMF_TCPCONN_ENDED_RESET);
  size_t got;
  assert_int_equal(peer_read_to_end(peer, &got, 0, 0), ECONNRESET);
  close(peer);
}

/* An abort cuts a graceful close short (a worker shutting down does not
 * wait out the bound, the default 5 s here). */
static void test_abort_cuts_graceful_short(void **state) {
  (void)state;
  struct ending e = {0};
  int peer;
  struct dcmf_tcpconn *c = connected(0, &peer, &e);
  uint64_t t0 = uv_hrtime();
  dcmf_tcpconn_close(c, DCMF_TCPCONN_GRACEFUL);
  run_for(20);
  assert_int_equal(e.gone, 0); /* the peer sent no FIN */
  dcmf_tcpconn_close(c, DCMF_TCPCONN_ABORT);
  assert_true(run_until(&e.gone));
  assert_int_equal(e.end, DCMF_TCPCONN_ENDED_RESET);
  assert_true(ms_since(t0) < 1000);
  close(peer);
}

static int owner_eof;
static void on_alloc_owner(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h;
  (void)n;
  static char space[256]; /* only the EOF is read into it */
  *b = uv_buf_init(space, sizeof(space));
}
static void on_read_owner(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n == UV_EOF) {
    owner_eof = 1;
    uv_read_stop(st);
  }
}

/* The peer's FIN came first (the owner read it): the graceful close
 * sends ours and ends cleanly at once, without waiting for the bound. */
static void test_graceful_close_after_peer_fin(void **state) {
  (void)state;
  struct ending e = {0};
  int peer;
  struct dcmf_tcpconn *c = connected(0, &peer, &e);
  owner_eof = 0;
  assert_int_equal(uv_read_start((uv_stream_t *)dcmf_tcpconn_tcp(c),
                                 on_alloc_owner, on_read_owner),
                   0);
  shutdown(peer, SHUT_WR);
  assert_true(run_until(&owner_eof));
  uint64_t t0 = uv_hrtime();
  dcmf_tcpconn_close(c, DCMF_TCPCONN_GRACEFUL);
  assert_true(run_until(&e.gone));
  assert_int_equal(e.end, DCMF_TCPCONN_ENDED_FIN);
  assert_true(ms_since(t0) < 1000);
  size_t got;
  assert_int_equal(peer_read_to_end(peer, &got, 0, 0), 0);
  close(peer);
}

/* ---- the relay host's ADD under failing allocations ---- */

struct host_events {
  int failures, released;
};

static void h_emit(void *user, const struct dcmf_media_key *key,
                   const char *event, const char *detail, int must) {
  (void)key;
  (void)detail;
  (void)must;
  struct host_events *e = user;
  e->failures += strcmp(event, "TCP_FAILURE") == 0;
  e->released += strcmp(event, "RELEASED") == 0;
}

/* The process's open sockets (libraries may open other fds lazily). */
static int open_sockets(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    char path[300], to[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
    ssize_t k = readlink(path, to, sizeof(to) - 1);
    n += k > 7 && strncmp(to, "socket:", 7) == 0;
  }
  if (d != NULL) {
    closedir(d);
  }
  return n;
}

static struct dcmf_media_desc relay_desc(int fd_core) {
  struct dcmf_media_desc d;
  memset(&d, 0, sizeof(d));
  snprintf(d.key.context_id, sizeof(d.key.context_id), "c");
  snprintf(d.key.termination_id, sizeof(d.key.termination_id), "access");
  snprintf(d.key.media_id, sizeof(d.key.media_id), "tcp");
  d.fd = -1;
  struct dcmf_media_tcpleg *leg = __real_calloc(1, sizeof(*leg));
  leg->fd[0] = bound(v4("127.0.0.1", 0), 1);
  leg->fd[1] = fd_core;
  leg->setup[0] = DCMF_TCP_PASSIVE;
  leg->setup[1] = DCMF_TCP_PASSIVE;
  leg->remote[0] = v4("127.0.0.1", 9);
  leg->remote[1] = v4("127.0.0.1", 9);
  leg->handling = DCMF_TCP_STATE_AWARE_CHANGE;
  leg->tls = 1;
  leg->timeout_ms = 2000;
  d.tcpleg = leg;
  return d;
}

static void test_relay_add_failing_alloc(void **state) {
  (void)state;
  struct testpki pki;
  testpki_init(&pki);
  struct host_events ev = {0};
  struct dcmf_tcprelay_settings st = {.loop = &loop,
                                      .cert = pki.srv,
                                      .pkey = pki.srv_key,
                                      .emit = h_emit,
                                      .user = &ev};
  struct dcmf_tcprelay_host h;
  assert_int_equal(dcmf_tcprelay_host_init(&h, &st), 0);
  int sockets0 = open_sockets();
  int failed_adds = 0, done = 0;
  for (long k = 0; k < 64 && !done; k++) {
    memset(&ev, 0, sizeof(ev));
    struct dcmf_media_desc add = relay_desc(bound(v4("127.0.0.1", 0), 1));
    allocations = 0;
    fail_in = k;
    dcmf_tcprelay_host_handle(&h, DCMF_MEDIA_OP_ADD, &add);
    fail_in = -1;
    int reached = allocations <= k; /* no allocation failed: done */
    run_for(3);
    failed_adds += ev.failures > 0;
    struct dcmf_media_desc rm;
    memset(&rm, 0, sizeof(rm));
    rm.key = add.key;
    rm.fd = -1;
    dcmf_tcprelay_host_handle(&h, DCMF_MEDIA_OP_REMOVE, &rm);
    assert_true(run_until(&ev.released));
    run_for(3);
    assert_int_equal(open_sockets(), sockets0); /* every socket closed */
    if (reached) {
      assert_int_equal(ev.failures, 0);
      done = 1;
      continue;
    }
    /* Every allocation of this ADD is needed (the relay, its timer, each
     * leg and its listener): a failed one fails the ADD, with one event,
     * rather than leaving a relay without its bound. */
    assert_int_equal(ev.failures, 1);
  }
  assert_true(done);
  assert_true(failed_adds >= 4);
  dcmf_tcprelay_host_close(&h);
  run_for(5);
  testpki_free(&pki);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host_equal_v4_mapped),
      cmocka_unit_test_setup_teardown(test_passive_refuses_unsignalled_source,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_passive_holds_until_remote, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_merge_connects_from_own_port, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_passive_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_active_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_active_without_remote_fails_later,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_dual_stack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_graceful_close_delivers_all, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_graceful_close_bound_without_peer_fin,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_graceful_close_bound_stalled_reader,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_abort_resets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_abort_cuts_graceful_short, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_graceful_close_after_peer_fin, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_relay_add_failing_alloc, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
