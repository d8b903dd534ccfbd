/* UDP-proxy legs on real loopback sockets: datagrams from the DC
 * application server reach the phone whole and in order whether a leg
 * reads one per system call or a batch (recvmmsg), strangers are dropped,
 * and the phone's messages leave as one datagram each. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "errors.h"
#include "udpproxy.h"

#define N_DGRAMS 40 /* five batches of eight */

struct phone {
  int n;
  uint16_t sid[N_DGRAMS + 4];
  size_t len[N_DGRAMS + 4];
  uint8_t first[N_DGRAMS + 4]; /* each datagram's first byte */
};

static int deliver(void *user, uint16_t sid, int text, const uint8_t *data,
                   size_t len) {
  (void)text;
  struct phone *p = user;
  if (p->n < N_DGRAMS + 4) {
    p->sid[p->n] = sid;
    p->len[p->n] = len;
    p->first[p->n] = len > 0 ? data[0] : 0;
    p->n++;
  }
  return 0;
}

static const struct dcmf_udpproxy_callbacks cbs = {deliver, NULL};

/* A UDP socket bound to 127.0.0.1 on a port the kernel picks. */
static int bound_socket(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  memset(addr, 0, sizeof(*addr));
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
  socklen_t alen = sizeof(*addr);
  assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &alen), 0);
  return fd;
}

struct fx {
  uv_loop_t loop;
  struct dcmf_udpproxy *up;
  struct phone phone;
  int server_fd; /* the DC AS */
  struct sockaddr_in server, leg;
  uint8_t *rx;
};

/* A proxy whose one leg (stream 1000) has |slots| receive slots. */
static void fx_start(struct fx *f, size_t slots) {
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->server_fd = bound_socket(&f->server);
  f->rx = malloc(slots * DCMF_UDPPROXY_SLOT);
  struct sockaddr_storage server;
  memset(&server, 0, sizeof(server));
  memcpy(&server, &f->server, sizeof(f->server));
  assert_int_equal(dcmf_udpproxy_new(&f->up, &f->loop, &server, f->rx,
                                     slots * DCMF_UDPPROXY_SLOT, &cbs,
                                     &f->phone),
                   0);
  int leg_fd = bound_socket(&f->leg);
  struct dcmf_media_mdc2 leg = {.sid = 1000,
                                .port = ntohs(f->leg.sin_port),
                                .fd = leg_fd};
  dcmf_udpproxy_sync(f->up, &leg, 1, &server);
  assert_int_equal(leg.fd, -1); /* the leg owns it */
  assert_true(dcmf_udpproxy_has(f->up, 1000));
}

static void fx_stop(struct fx *f) {
  dcmf_udpproxy_close(f->up);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* the leg's handle closes */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  close(f->server_fd);
  free(f->rx);
}

static void on_turn_timer(uv_timer_t *t) { (void)t; }

static void on_timer_closed(uv_handle_t *h) { (void)h; }

/* Runs the loop until the phone has |n| datagrams: at most 500 turns,
 * each waiting at most 10 ms for a socket (a repeating timer bounds the
 * wait). */
static void until_delivered(struct fx *f, int n) {
  uv_timer_t turn;
  uv_timer_init(&f->loop, &turn);
  uv_timer_start(&turn, on_turn_timer, 10, 10);
  for (int i = 0; i < 500 && f->phone.n < n; i++) {
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&turn, on_timer_closed);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* The server sends N_DGRAMS datagrams (byte 0 numbers them, sizes
 * vary) and a stranger one: the phone gets the server's, in order. */
static void server_datagrams_arrive_in_order(size_t slots) {
  struct fx f;
  fx_start(&f, slots);
  struct sockaddr_in stranger;
  int stranger_fd = bound_socket(&stranger);
  uint8_t d[1500];
  for (int i = 0; i < N_DGRAMS; i++) {
    memset(d, 'a' + i % 26, sizeof(d));
    d[0] = (uint8_t)i;
    size_t len = 1 + (size_t)i * 37 % 1400;
    assert_int_equal(sendto(f.server_fd, d, len, 0,
                            (struct sockaddr *)&f.leg, sizeof(f.leg)),
                     (ssize_t)len);
    if (i == N_DGRAMS / 2) {
      assert_int_equal(sendto(stranger_fd, d, 10, 0,
                              (struct sockaddr *)&f.leg, sizeof(f.leg)),
                       10);
    }
  }
  until_delivered(&f, N_DGRAMS);
  assert_int_equal(f.phone.n, N_DGRAMS);
  for (int i = 0; i < N_DGRAMS; i++) {
    assert_int_equal(f.phone.sid[i], 1000);
    assert_int_equal(f.phone.first[i], i);
    assert_int_equal(f.phone.len[i], 1 + (size_t)i * 37 % 1400);
  }
  const struct dcmf_udpproxy_counters *c = dcmf_udpproxy_counters(f.up);
  assert_int_equal(c->datagrams_in, N_DGRAMS);
  assert_int_equal(c->dropped_source, 1);
  close(stranger_fd);
  fx_stop(&f);
}

static void test_batched_reads(void **state) {
  (void)state;
  server_datagrams_arrive_in_order(DCMF_UDPPROXY_BATCH);
}

static void test_one_datagram_per_read(void **state) {
  (void)state;
  server_datagrams_arrive_in_order(1);
}

/* The phone's messages leave as one datagram each, to the server. */
static void test_messages_leave_as_datagrams(void **state) {
  (void)state;
  struct fx f;
  fx_start(&f, DCMF_UDPPROXY_BATCH);
  dcmf_udpproxy_message(f.up, 1000, (const uint8_t *)"one", 3);
  dcmf_udpproxy_message(f.up, 1000, (const uint8_t *)"two!", 4);
  uint8_t buf[16];
  struct sockaddr_in from;
  socklen_t flen = sizeof(from);
  assert_int_equal(recvfrom(f.server_fd, buf, sizeof(buf), 0,
                            (struct sockaddr *)&from, &flen),
                   3);
  assert_memory_equal(buf, "one", 3);
  assert_int_equal(from.sin_port, f.leg.sin_port); /* from the leg's port */
  assert_int_equal(recv(f.server_fd, buf, sizeof(buf), 0), 4);
  assert_memory_equal(buf, "two!", 4);
  assert_int_equal(dcmf_udpproxy_counters(f.up)->datagrams_out, 2);
  fx_stop(&f);
}

static void test_scratch_too_small_is_refused(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct sockaddr_storage server = {0};
  server.ss_family = AF_INET;
  uint8_t small[1024];
  struct dcmf_udpproxy *up = NULL;
  assert_int_equal(dcmf_udpproxy_new(&up, &loop, &server, small, sizeof(small),
                                     &cbs, NULL),
                   DCMF_ERR_INVALID);
  assert_null(up);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batched_reads),
      cmocka_unit_test(test_one_datagram_per_read),
      cmocka_unit_test(test_messages_leave_as_datagrams),
      cmocka_unit_test(test_scratch_too_small_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
