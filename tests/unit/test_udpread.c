/*
 * The batch reader (udpread.c) on a real loopback UDP socket and a real
 * libuv loop: K+3 queued datagrams arrive over two readiness events in
 * order with their source, an event with nothing queued delivers
 * nothing, a datagram longer than a slot comes truncated, and a callback
 * that closes the reader drops the rest of the batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "udpread.h"

#define N_SENT (DCMF_UDPREAD_BATCH + 3)

struct got {
  int n;
  int seq[64];
  size_t len[64];
  int truncated[64];
  uint16_t port[64];
  struct dcmf_udpread *close_after_first; /* close the reader then */
};

static void on_dgram(void *user, uint8_t *data, size_t len,
                     const struct sockaddr *from, int truncated) {
  struct got *g = user;
  assert_true(g->n < 64);
  g->seq[g->n] = data[0];
  g->len[g->n] = len;
  g->truncated[g->n] = truncated;
  g->port[g->n] = ntohs(((const struct sockaddr_in *)from)->sin_port);
  g->n++;
  if (g->close_after_first != NULL) {
    dcmf_udpread_close(g->close_after_first, NULL);
    g->close_after_first = NULL;
  }
}

static int bound_socket(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(fd >= 0);
  memset(addr, 0, sizeof(*addr));
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
  socklen_t alen = sizeof(*addr);
  assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &alen), 0);
  return fd;
}

static void send_seq(int from_fd, const struct sockaddr_in *to, int seq,
                     size_t len) {
  uint8_t buf[4096];
  assert_true(len <= sizeof(buf));
  memset(buf, seq, len);
  assert_int_equal(
      sendto(from_fd, buf, len, 0, (const struct sockaddr *)to, sizeof(*to)),
      (ssize_t)len);
}

/* A reader's test bed: a loop of its own, the reader's socket |rfd| on
 * loopback, a sender |sfd| (or -1) and what was delivered. */
struct bed {
  uv_loop_t loop;
  struct sockaddr_in raddr, saddr;
  int rfd, sfd;
  struct got g;
  struct dcmf_udpread rd;
};

/* The loop and the reader's socket; with |sender|, a sender socket. */
static void bed_open(struct bed *b, int sender) {
  memset(b, 0, sizeof(*b));
  uv_loop_init(&b->loop);
  b->rfd = bound_socket(&b->raddr);
  b->sfd = sender ? bound_socket(&b->saddr) : -1;
}

/* Starts the reader on |rfd| with |scratch| (|len| bytes). */
static void bed_read(struct bed *b, uint8_t *scratch, size_t len) {
  assert_int_equal(dcmf_udpread_start(&b->rd, &b->loop, b->rfd, scratch, len,
                                      on_dgram, &b->g),
                   0);
}

/* Closes the reader (unless the test did), runs the loop until it lets
 * go, which it must then do entirely, and closes the sockets. */
static void bed_close(struct bed *b, int close_reader) {
  if (close_reader) {
    dcmf_udpread_close(&b->rd, NULL);
  }
  uv_run(&b->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&b->loop), 0);
  close(b->rfd);
  if (b->sfd >= 0) {
    close(b->sfd);
  }
}

/* Runs the loop until |g| holds |want| datagrams, at most 200 turns
 * (each blocks in poll until a socket is ready; all are queued). */
static void run_until(uv_loop_t *loop, struct got *g, int want, int *turns) {
  *turns = 0;
  while (g->n < want && *turns < 200) {
    uv_run(loop, UV_RUN_ONCE);
    (*turns)++;
  }
}

static void test_batches_in_order(void **state) {
  (void)state;
  struct bed b;
  bed_open(&b, 1);
  static uint8_t scratch[DCMF_UDPREAD_BATCH * 2048];
  bed_read(&b, scratch, sizeof(scratch));
  struct dcmf_udpread *rd = &b.rd;
  struct got *g = &b.g;
  /* Nothing queued: a read delivers nothing. */
  assert_int_equal(dcmf_udpread_once(rd), 0);
  assert_int_equal(g->n, 0);
  for (int i = 0; i < N_SENT; i++) {
    send_seq(b.sfd, &b.raddr, i + 1, 100 + (size_t)i);
  }
  /* Loopback delivery is synchronous: all are queued now. The first
   * event reads one full batch, the second the 3 left. */
  uv_run(&b.loop, UV_RUN_ONCE);
  assert_int_equal(g->n, DCMF_UDPREAD_BATCH);
  int turns;
  run_until(&b.loop, g, N_SENT, &turns);
  assert_int_equal(turns, 1);
  assert_int_equal(g->n, N_SENT);
  for (int i = 0; i < N_SENT; i++) {
    assert_int_equal(g->seq[i], i + 1);
    assert_int_equal(g->len[i], 100 + (size_t)i);
    assert_false(g->truncated[i]);
    assert_int_equal(g->port[i], ntohs(b.saddr.sin_port));
  }
  assert_int_equal(rd->reads, 2);
  assert_int_equal(rd->datagrams, N_SENT);
  /* Drained: an explicit read finds nothing and delivers nothing. */
  assert_int_equal(dcmf_udpread_once(rd), 0);
  assert_int_equal(g->n, N_SENT);

  /* Longer than a slot (2048 bytes): delivered truncated, then the next
   * datagram whole. */
  send_seq(b.sfd, &b.raddr, 0x55, 3000);
  send_seq(b.sfd, &b.raddr, 0x56, 10);
  run_until(&b.loop, g, N_SENT + 2, &turns);
  assert_int_equal(g->n, N_SENT + 2);
  assert_true(g->truncated[N_SENT]);
  assert_int_equal(g->len[N_SENT], 2048);
  assert_false(g->truncated[N_SENT + 1]);
  assert_int_equal(g->seq[N_SENT + 1], 0x56);

  bed_close(&b, 1);
}

static void test_close_from_callback_drops_the_rest(void **state) {
  (void)state;
  struct bed b;
  bed_open(&b, 1);
  static uint8_t scratch[DCMF_UDPREAD_BATCH * 256];
  bed_read(&b, scratch, sizeof(scratch));
  b.g.close_after_first = &b.rd;
  for (int i = 0; i < 4; i++) {
    send_seq(b.sfd, &b.raddr, i + 1, 20);
  }
  /* The loop ends once the reader is closed (the callback did). */
  bed_close(&b, 0);
  assert_int_equal(b.g.n, 1);
  assert_int_equal(b.g.seq[0], 1);
}

/* A socket with an error pending (a connected socket that got ICMP port
 * unreachable): the poll reports an error, after which the reader must
 * still read what comes later. */
static void test_error_then_datagram(void **state) {
  (void)state;
  struct bed b;
  bed_open(&b, 0);
  struct sockaddr_in paddr;
  int pfd = bound_socket(&paddr); /* a port, then nobody on it */
  close(pfd);
  assert_int_equal(
      connect(b.rfd, (const struct sockaddr *)&paddr, sizeof(paddr)), 0);
  static uint8_t scratch[DCMF_UDPREAD_BATCH * 256];
  bed_read(&b, scratch, sizeof(scratch));
  /* ICMP port unreachable comes back at once on loopback: ECONNREFUSED
   * is pending on the socket. */
  assert_int_equal(send(b.rfd, "x", 1, 0), 1);
  for (int i = 0; i < 5; i++) {
    uv_run(&b.loop, UV_RUN_NOWAIT);
  }
  int err = 0;
  socklen_t elen = sizeof(err);
  assert_int_equal(getsockopt(b.rfd, SOL_SOCKET, SO_ERROR, &err, &elen), 0);
  assert_int_equal(err, 0); /* the reader took it off the socket */
  /* Now someone answers from that port: delivered. */
  b.sfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(b.sfd >= 0);
  assert_int_equal(bind(b.sfd, (const struct sockaddr *)&paddr, sizeof(paddr)),
                   0);
  send_seq(b.sfd, &b.raddr, 7, 30);
  int turns;
  run_until(&b.loop, &b.g, 1, &turns);
  assert_int_equal(b.g.n, 1);
  assert_int_equal(b.g.seq[0], 7);
  bed_close(&b, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batches_in_order),
      cmocka_unit_test(test_close_from_callback_drops_the_rest),
      cmocka_unit_test(test_error_then_datagram),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
