/*
 * Unit tests for a worker's stop cutting short the e2ae TCP legs that
 * still close gracefully (tcpconn.h: an abort cuts a graceful close
 * short), on a real libuv loop over loopback, with peers that never send
 * their FIN (so each close would linger DCMF_TCPCONN_LINGER_MS):
 * - the TCP relay host (dcmf/media/tcprelay.c): a relay removed earlier
 *   is reset by dcmf_tcprelay_host_close, the loop ends at once, and no
 *   event (no RELEASED) comes after the close;
 * - the MSRP-over-DC core leg (agw-shim/e2ae/msrp_dc_tcp.c): a
 *   connection let go gracefully is reset by its owner's closing set,
 *   and a reset after a graceful close cuts it short.
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
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msrp_dc_tcp.h"
#include "tcpconn.h"
#include "tcprelay.h"
#include "testpki.h"

static uv_loop_t loop;

/* Well under the linger bound: what "at once" means here. */
#define PROMPT_MS 1000

static uint64_t ms_since(uint64_t t0_ns) {
  return (uv_hrtime() - t0_ns) / 1000000u;
}

/* Runs the loop until |*flag| or about 3 s (less than the linger). */
static int run_until(const int *flag) {
  for (int i = 0; i < 3000 && !*flag; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  return *flag;
}

/* Runs the loop until nothing of it is left open, or about 3 s; returns
 * 1 if it ended. */
static int run_until_loop_ends(void) {
  for (int i = 0; i < 3000; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    if (!uv_loop_alive(&loop)) {
      return 1;
    }
    usleep(1000);
  }
  return 0;
}

static struct sockaddr_storage v4(uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *a = (struct sockaddr_in *)&ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ss;
}

/* A listening TCP socket on 127.0.0.1 (any port), as the control side
 * hands the worker one. */
static int listening(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_storage at = v4(0);
  assert_int_equal(bind(fd, (struct sockaddr *)&at, sizeof(struct sockaddr_in)),
                   0);
  assert_int_equal(listen(fd, 4), 0);
  return fd;
}

static uint16_t port_of(int fd) {
  struct sockaddr_in a;
  socklen_t l = sizeof(a);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
  return ntohs(a.sin_port);
}

/* A blocking client to 127.0.0.1:|port| (the kernel completes the
 * handshake from the listen queue). */
static int client(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_storage to = v4(port);
  assert_int_equal(
      connect(fd, (struct sockaddr *)&to, sizeof(struct sockaddr_in)), 0);
  return fd;
}

/* What the peer on |fd| sees next while the loop runs: 0 our FIN came, 1
 * a reset, -1 neither within about 3 s. Data is read and dropped. */
static int peer_end(int fd) {
  char b[4096];
  for (int i = 0; i < 3000; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
    if (n == 0) {
      return 0;
    }
    if (n < 0 && errno == ECONNRESET) {
      return 1;
    }
    if (n < 0) {
      usleep(1000);
    }
  }
  return -1;
}

/* 1 once our side of |fd| was reset (TCP_CLOSE after our FIN had come:
 * a socket that got the FIN only stays in CLOSE_WAIT), within about
 * 3 s of the loop running. */
static int peer_was_reset(int fd) {
  for (int i = 0; i < 3000; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    struct tcp_info ti;
    socklen_t l = sizeof(ti);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l), 0);
    if (ti.tcpi_state == TCP_CLOSE) {
      return 1;
    }
    usleep(1000);
  }
  return 0;
}

/* Reads |len| bytes from |fd| while the loop runs (about 3 s at most). */
static int peer_read(int fd, char *out, size_t len) {
  size_t got = 0;
  for (int i = 0; i < 3000 && got < len; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    ssize_t n = recv(fd, out + got, len - got, MSG_DONTWAIT);
    if (n > 0) {
      got += (size_t)n;
    } else {
      usleep(1000);
    }
  }
  return got == len;
}

static int setup(void **state) {
  (void)state;
  return uv_loop_init(&loop);
}

static int teardown(void **state) {
  (void)state;
  return uv_loop_close(&loop) == 0 ? 0 : -1;
}

/* ---- the TCP relay host ---- */

struct events {
  int all, released, closed;
  int after_close; /* events raised once the host was closed */
  int host_closed;
};

static void on_emit(void *user, const struct dcmf_media_key *key,
                    const char *event, const char *detail, int must) {
  (void)key;
  (void)detail;
  (void)must;
  struct events *e = user;
  e->all++;
  e->released += strcmp(event, "RELEASED") == 0;
  e->closed += strcmp(event, "TCP_CLOSED") == 0;
  e->after_close += e->host_closed;
}

static void test_host_close_cuts_closing_relay_short(void **state) {
  (void)state;
  struct testpki pki;
  testpki_init(&pki);
  struct events ev = {0};
  struct dcmf_tcprelay_settings st = {.loop = &loop,
                                      .cert = pki.srv,
                                      .pkey = pki.srv_key,
                                      .emit = on_emit,
                                      .user = &ev};
  struct dcmf_tcprelay_host h;
  assert_int_equal(dcmf_tcprelay_host_init(&h, &st), 0);

  /* Plain TCP on both legs, each passive, the peers on 127.0.0.1. */
  int lfd[2] = {listening(), listening()};
  struct dcmf_media_desc add;
  memset(&add, 0, sizeof(add));
  snprintf(add.key.context_id, sizeof(add.key.context_id), "c");
  snprintf(add.key.termination_id, sizeof(add.key.termination_id), "t");
  snprintf(add.key.media_id, sizeof(add.key.media_id), "tcp");
  add.fd = -1;
  struct dcmf_media_tcpleg *leg = calloc(1, sizeof(*leg));
  assert_non_null(leg);
  for (int i = 0; i < 2; i++) {
    leg->fd[i] = lfd[i];
    leg->setup[i] = DCMF_TCP_PASSIVE;
    leg->remote[i] = v4(9); /* the address counts, not the port */
  }
  leg->handling = DCMF_TCP_STATE_AWARE_CHANGE;
  leg->timeout_ms = 2000;
  add.tcpleg = leg;
  uint16_t port[2] = {port_of(lfd[0]), port_of(lfd[1])};
  dcmf_tcprelay_host_handle(&h, DCMF_MEDIA_OP_ADD, &add);
  int access = client(port[0]), core = client(port[1]);

  /* The relay is up: bytes cross it. */
  assert_int_equal(send(access, "hello", 5, 0), 5);
  char got[5];
  assert_true(peer_read(core, got, sizeof(got)));
  assert_memory_equal(got, "hello", 5);

  /* Removed: each peer gets our FIN, and as neither sends its own, both
   * connections linger (RELEASED waits for them). */
  struct dcmf_media_desc rm;
  memset(&rm, 0, sizeof(rm));
  rm.key = add.key;
  rm.fd = -1;
  dcmf_tcprelay_host_handle(&h, DCMF_MEDIA_OP_REMOVE, &rm);
  assert_int_equal(peer_end(access), 0);
  assert_int_equal(peer_end(core), 0);
  assert_int_equal(ev.closed, 1);
  assert_int_equal(ev.released, 0);

  /* The worker stops: both are reset at once, the loop ends well before
   * the linger, and nothing more is raised (the host may go now). */
  uint64_t t0 = uv_hrtime();
  dcmf_tcprelay_host_close(&h);
  ev.host_closed = 1;
  memset(&h, 0xA5, sizeof(h)); /* a relay touching it now would show */
  assert_true(run_until_loop_ends());
  assert_true(ms_since(t0) < PROMPT_MS);
  assert_true(peer_was_reset(access));
  assert_true(peer_was_reset(core));
  assert_int_equal(ev.after_close, 0);
  assert_int_equal(ev.released, 0);
  close(access);
  close(core);
  testpki_free(&pki);
}

/* ---- the MSRP-over-DC core leg ---- */

struct leg_events {
  int up, down;
};

static void l_up(void *u) { ((struct leg_events *)u)->up++; }
static void l_data(void *u, const uint8_t *p, size_t n) {
  (void)u;
  (void)p;
  (void)n;
}
static void l_wrote(void *u, size_t n) {
  (void)u;
  (void)n;
}
static void l_down(void *u, const char *reason, int establishing) {
  (void)reason;
  (void)establishing;
  ((struct leg_events *)u)->down++;
}
static const struct dcmf_msrp_dc_tcp_cbs leg_cbs = {l_up, l_data, l_wrote,
                                                    l_down};

/* A passive core leg with its peer connected; |*peer| the peer's fd. */
static struct dcmf_msrp_dc_tcp *
leg_up(struct dcmf_msrp_dc_tcp_closing *set, struct leg_events *ev,
       int *peer) {
  int fd = listening();
  uint16_t port = port_of(fd);
  struct sockaddr_storage remote = v4(9);
  struct dcmf_msrp_dc_tcp *t = NULL;
  assert_int_equal(dcmf_msrp_dc_tcp_start(&t, &loop, fd, DCMF_TCP_PASSIVE,
                                          &remote, 0, 2000, set, &leg_cbs, ev),
                   0);
  *peer = client(port);
  assert_true(run_until(&ev->up));
  dcmf_msrp_dc_tcp_read(t, 1);
  return t;
}

static void test_closing_set_cuts_graceful_close_short(void **state) {
  (void)state;
  struct dcmf_msrp_dc_tcp_closing set = {0};
  struct leg_events ev[2] = {{0}, {0}};
  int peer[2];
  struct dcmf_msrp_dc_tcp *t0 = leg_up(&set, &ev[0], &peer[0]);
  struct dcmf_msrp_dc_tcp *t1 = leg_up(&set, &ev[1], &peer[1]);
  /* Let go gracefully: FINs out, the peers send none, both linger. */
  dcmf_msrp_dc_tcp_close(t0, 0);
  dcmf_msrp_dc_tcp_close(t1, 0);
  assert_int_equal(peer_end(peer[0]), 0);
  assert_int_equal(peer_end(peer[1]), 0);
  assert_non_null(set.first);

  uint64_t t_start = uv_hrtime();
  dcmf_msrp_dc_tcp_abort_closing(&set);
  assert_null(set.first);
  assert_true(run_until_loop_ends());
  assert_true(ms_since(t_start) < PROMPT_MS);
  for (int i = 0; i < 2; i++) {
    assert_true(peer_was_reset(peer[i]));
    assert_int_equal(ev[i].down, 0); /* no callback after the close */
    close(peer[i]);
  }
}

static void test_reset_after_graceful_close(void **state) {
  (void)state;
  struct leg_events ev = {0};
  int peer;
  struct dcmf_msrp_dc_tcp *t = leg_up(NULL, &ev, &peer);
  dcmf_msrp_dc_tcp_close(t, 0);
  assert_int_equal(peer_end(peer), 0);
  /* Still lingering (the peer sent no FIN), so |t| is still there. */
  uint64_t t_start = uv_hrtime();
  dcmf_msrp_dc_tcp_close(t, 1);
  assert_true(run_until_loop_ends());
  assert_true(ms_since(t_start) < PROMPT_MS);
  assert_true(peer_was_reset(peer));
  assert_int_equal(ev.down, 0);
  close(peer);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_host_close_cuts_closing_relay_short,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_closing_set_cuts_graceful_close_short, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reset_after_graceful_close, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
