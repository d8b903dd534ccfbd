/*
 * The AGW shim's relays as a media worker runs them (relayhost.h), on a
 * libuv loop of the test's own thread, with real UDP sockets on
 * 127.0.0.1 for the relay and plain sockets playing the phone and the
 * core. Checks the messages in (add, update, remove) and the reports
 * out: byte-exact forwarding from the receive buffer, the latch
 * reported at once, counters pushed within a period and not while idle,
 * a refused push tried again, RELEASED only once the sockets are closed
 * (the port can be bound again), and the odd messages (no socket, an
 * invalid configuration, unknown and duplicate ids).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include "errors.h"
#include "relayhost.h"

#define MAX_EVENTS 64

struct fixture {
  uv_loop_t loop;
  struct dcmf_relayhost host;
  uint8_t rx[65536];
  struct dcmf_relay_event events[MAX_EVENTS];
  int musts[MAX_EVENTS];
  size_t n_events;
  int refuse; /* counter pushes still to refuse */
  int refused;
};

static int emit(void *user, const struct dcmf_relay_event *ev, int must) {
  struct fixture *f = user;
  if (!must && f->refuse > 0) {
    f->refuse--;
    f->refused++;
    return DCMF_ERR_EXHAUSTED;
  }
  assert_true(f->n_events < MAX_EVENTS);
  f->musts[f->n_events] = must;
  f->events[f->n_events++] = *ev;
  return 0;
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  struct dcmf_relayhost_settings s = {.loop = &f->loop,
                                      .rx = f->rx,
                                      .rx_len = sizeof(f->rx),
                                      .emit = emit,
                                      .user = f};
  assert_int_equal(dcmf_relayhost_init(&f->host, &s), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  dcmf_relayhost_close(&f->host);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* A UDP socket on 127.0.0.1 (port chosen by the kernel), non-blocking:
 * the relay runs on this thread, so nothing may block. */
static int udp_socket(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(fd >= 0);
  struct sockaddr_in in = {.sin_family = AF_INET};
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
  socklen_t len = sizeof(in);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
  *port = ntohs(in.sin_port);
  return fd;
}

static struct sockaddr_storage loopback(uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ss;
}

static void send_to(int fd, uint16_t port, const void *data, size_t len) {
  struct sockaddr_storage to = loopback(port);
  assert_int_equal(sendto(fd, data, len, 0, (struct sockaddr *)&to,
                          sizeof(struct sockaddr_in)),
                   (ssize_t)len);
}

static void on_tick(uv_timer_t *t) {
  (void)t;
}

/* One turn of the loop, waiting at most 5 ms for something to happen. */
static void turn(struct fixture *f) {
  uv_timer_t tick;
  uv_timer_init(&f->loop, &tick);
  uv_timer_start(&tick, on_tick, 5, 0);
  uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Turns the loop until a datagram is waiting on |fd| and returns it
 * (length, source port); fails after 400 turns (about 2 s). */
static ssize_t recv_relayed(struct fixture *f, int fd, void *buf, size_t cap,
                            uint16_t *src) {
  for (int i = 0; i < 400; i++) {
    struct sockaddr_in from;
    socklen_t len = sizeof(from);
    ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&from, &len);
    if (n >= 0) {
      if (src != NULL) {
        *src = ntohs(from.sin_port);
      }
      return n;
    }
    turn(f);
  }
  fail_msg("nothing relayed");
  return -1;
}

/* Turns the loop until |n| events have been reported; bounded as above. */
static void wait_events(struct fixture *f, size_t n) {
  for (int i = 0; i < 400 && f->n_events < n; i++) {
    turn(f);
  }
  assert_int_equal(f->n_events, n);
}

/* Turns the loop for at least |ms| of loop time. */
static void idle_for(struct fixture *f, uint64_t ms) {
  uv_update_time(&f->loop);
  uint64_t until = uv_now(&f->loop) + ms;
  for (int i = 0; i < 1000 && uv_now(&f->loop) < until; i++) {
    turn(f);
  }
}

/* Adds relay |id| on two fresh sockets; fills their ports. */
static void add_relay(struct fixture *f, uint64_t id,
                      const struct dcmf_relay_config *cfg,
                      uint16_t ports[DCMF_RELAY_SIDES]) {
  struct dcmf_relay_desc d = {.id = id, .config = *cfg};
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    d.fds[s] = udp_socket(&ports[s]);
    d.ports[s] = ports[s];
  }
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_ADD, &d);
  assert_int_equal(d.fds[0], -1); /* taken */
  assert_int_equal(d.fds[1], -1);
}

static int port_is_free(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_storage ss = loopback(port);
  int ok = bind(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)) == 0;
  close(fd);
  return ok;
}

static void test_relays_and_reports(void **state) {
  struct fixture *f = *state;
  uint16_t phone_port, core_port, ports[2];
  int phone = udp_socket(&phone_port), core = udp_socket(&core_port);
  struct dcmf_relay_config cfg = {.latching = DCMF_RELAY_LATCH_FIRST_PACKET,
                                  .has_core_remote = 1,
                                  .core_remote = loopback(core_port)};
  add_relay(f, 7, &cfg, ports);
  assert_int_equal(dcmf_relayhost_count(&f->host), 1);

  uint8_t out[1400], in[2000];
  for (size_t i = 0; i < sizeof(out); i++) {
    out[i] = (uint8_t)(i * 13 + 1);
  }
  uint16_t src;
  send_to(phone, ports[DCMF_RELAY_ACCESS], out, sizeof(out));
  assert_int_equal(recv_relayed(f, core, in, sizeof(in), &src), sizeof(out));
  assert_memory_equal(in, out, sizeof(out));
  assert_int_equal(src, ports[DCMF_RELAY_CORE]);
  /* The latch is reported at once (must arrive), with its address. */
  assert_true(f->n_events >= 1);
  struct dcmf_relay_event *ev = &f->events[0];
  assert_int_equal(ev->id, 7);
  assert_int_equal(ev->kind, DCMF_RELAY_EV_STATE);
  assert_int_equal(f->musts[0], 1);
  assert_int_equal(ev->latched, 1);
  assert_int_equal(ntohs(((struct sockaddr_in *)&ev->peer)->sin_port),
                   phone_port);
  assert_int_equal(ev->counters.latches, 1);
  assert_int_equal(ev->ports[DCMF_RELAY_ACCESS], ports[DCMF_RELAY_ACCESS]);

  send_to(core, ports[DCMF_RELAY_CORE], out, 99);
  assert_int_equal(recv_relayed(f, phone, in, sizeof(in), &src), 99);
  assert_memory_equal(in, out, 99);
  assert_int_equal(src, ports[DCMF_RELAY_ACCESS]);
  send_to(phone, ports[DCMF_RELAY_CORE], "?", 1); /* not the core remote */

  /* The counters follow within a push period, in one snapshot. */
  for (int i = 0; i < 400; i++) {
    if (f->n_events >= 2 &&
        f->events[f->n_events - 1]
                .counters.dropped[DCMF_RELAY_CORE]
                                 [DCMF_RELAY_DROP_UNKNOWN_SOURCE] == 1) {
      break;
    }
    turn(f);
  }
  ev = &f->events[f->n_events - 1];
  assert_int_equal(ev->kind, DCMF_RELAY_EV_STATE);
  assert_int_equal(f->musts[f->n_events - 1], 0);
  assert_int_equal(ev->counters.packets[DCMF_RELAY_ACCESS], 1);
  assert_int_equal(ev->counters.bytes[DCMF_RELAY_ACCESS], sizeof(out));
  assert_int_equal(ev->counters.packets[DCMF_RELAY_CORE], 1);
  assert_int_equal(ev->counters.bytes[DCMF_RELAY_CORE], 99);
  assert_int_equal(
      ev->counters.dropped[DCMF_RELAY_CORE][DCMF_RELAY_DROP_UNKNOWN_SOURCE], 1);
  assert_int_equal(ev->latched, 1);

  /* Idle relays push nothing. */
  size_t seen = f->n_events;
  idle_for(f, 3 * DCMF_RELAY_PUSH_MS);
  assert_int_equal(f->n_events, seen);

  /* REMOVE: RELEASED only once the sockets are closed, and then the
   * ports can be bound again. */
  struct dcmf_relay_desc rm = {.id = 7, .fds = {-1, -1}};
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_REMOVE, &rm);
  assert_int_equal(dcmf_relayhost_count(&f->host), 0);
  assert_int_equal(f->n_events, seen);
  wait_events(f, seen + 1);
  ev = &f->events[seen];
  assert_int_equal(ev->kind, DCMF_RELAY_EV_RELEASED);
  assert_int_equal(f->musts[seen], 1);
  assert_int_equal(ev->id, 7);
  assert_int_equal(ev->ports[DCMF_RELAY_ACCESS], ports[DCMF_RELAY_ACCESS]);
  assert_int_equal(ev->ports[DCMF_RELAY_CORE], ports[DCMF_RELAY_CORE]);
  assert_int_equal(ev->counters.packets[DCMF_RELAY_ACCESS], 1);
  assert_true(port_is_free(ports[DCMF_RELAY_ACCESS]));
  assert_true(port_is_free(ports[DCMF_RELAY_CORE]));
  /* A second REMOVE of the id is ignored. */
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_REMOVE, &rm);
  idle_for(f, 20);
  assert_int_equal(f->n_events, seen + 1);
  close(phone);
  close(core);
}

/* An update that changes the access side clears the latch, reported at
 * once; one that keeps it does not. */
static void test_update_clears_latch(void **state) {
  struct fixture *f = *state;
  uint16_t phone_port, core_port, ports[2];
  int phone = udp_socket(&phone_port), core = udp_socket(&core_port);
  struct dcmf_relay_config cfg = {.latching = DCMF_RELAY_LATCH_FIRST_PACKET,
                                  .has_core_remote = 1,
                                  .core_remote = loopback(core_port)};
  add_relay(f, 1, &cfg, ports);
  uint8_t in[16];
  send_to(phone, ports[DCMF_RELAY_ACCESS], "hello", 5);
  assert_int_equal(recv_relayed(f, core, in, sizeof(in), NULL), 5);
  assert_int_equal(f->events[0].latched, 1);
  size_t seen = f->n_events;

  /* Only the core remote changes: the latch stays, nothing is reported
   * at once. */
  struct dcmf_relay_desc up = {.id = 1, .config = cfg, .fds = {-1, -1}};
  up.config.core_remote = loopback((uint16_t)(core_port + 1));
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_UPDATE, &up);
  assert_int_equal(f->n_events, seen);

  /* Signalled-only with another phone: the latch goes, reported. */
  up.config.latching = DCMF_RELAY_LATCH_SIGNALLED_ONLY;
  up.config.has_access_remote = 1;
  up.config.access_remote = loopback((uint16_t)(phone_port + 1));
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_UPDATE, &up);
  assert_int_equal(f->n_events, seen + 1);
  assert_int_equal(f->events[seen].latched, 0);
  assert_int_equal(f->musts[seen], 1);
  assert_int_equal(f->events[seen].counters.latches, 1);
  /* Unknown ids are ignored. */
  up.id = 99;
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_UPDATE, &up);
  assert_int_equal(f->n_events, seen + 1);
  close(phone);
  close(core);
}

/* A refused counter push is tried again a period later. */
static void test_refused_push_retried(void **state) {
  struct fixture *f = *state;
  uint16_t stranger_port, ports[2];
  int stranger = udp_socket(&stranger_port);
  struct dcmf_relay_config cfg = {.latching = DCMF_RELAY_LATCH_FIRST_PACKET};
  add_relay(f, 3, &cfg, ports);
  f->refuse = 2;
  /* Toward the core port from a stranger: dropped, counted, no latch. */
  send_to(stranger, ports[DCMF_RELAY_CORE], "z", 1);
  wait_events(f, 1);
  assert_int_equal(f->refused, 2);
  assert_int_equal(f->musts[0], 0);
  assert_int_equal(
      f->events[0]
          .counters.dropped[DCMF_RELAY_CORE][DCMF_RELAY_DROP_UNKNOWN_SOURCE],
      1);
  close(stranger);
}

/* A descriptor libuv cannot take still makes a relay (dropping
 * everything) whose REMOVE releases its ports; a duplicate ADD closes
 * its descriptors and reports nothing; close ends every relay. */
static void test_odd_adds_and_close(void **state) {
  struct fixture *f = *state;
  struct dcmf_relay_config cfg = {.latching = DCMF_RELAY_LATCH_FIRST_PACKET};
  struct dcmf_relay_desc bad = {
      .id = 5, .config = cfg, .ports = {1, 2}, .fds = {-1, -1}};
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_ADD, &bad);
  assert_int_equal(dcmf_relayhost_count(&f->host), 1);

  uint16_t ports[2], dup_ports[2];
  add_relay(f, 6, &cfg, ports);
  struct dcmf_relay_desc dup = {.id = 6, .config = cfg};
  int dup_fds[2];
  for (int s = 0; s < 2; s++) {
    dup_fds[s] = dup.fds[s] = udp_socket(&dup_ports[s]);
  }
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_ADD, &dup);
  assert_int_equal(dcmf_relayhost_count(&f->host), 2);
  for (int s = 0; s < 2; s++) {
    assert_int_equal(fcntl(dup_fds[s], F_GETFD), -1); /* closed */
    assert_true(port_is_free(dup_ports[s]));
  }

  /* An invalid configuration (signalled-only without the phone's
   * address): filed, its sockets closed at once. */
  struct dcmf_relay_config invalid = {.latching =
                                          DCMF_RELAY_LATCH_SIGNALLED_ONLY};
  uint16_t inv_ports[2];
  add_relay(f, 8, &invalid, inv_ports);
  assert_int_equal(dcmf_relayhost_count(&f->host), 3);
  assert_true(port_is_free(inv_ports[0]));
  assert_true(port_is_free(inv_ports[1]));
  struct dcmf_relay_desc rm8 = {.id = 8, .fds = {-1, -1}};
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_REMOVE, &rm8);
  wait_events(f, 1);
  assert_int_equal(f->events[0].kind, DCMF_RELAY_EV_RELEASED);
  assert_int_equal(f->events[0].id, 8);
  f->n_events = 0;

  struct dcmf_relay_desc rm = {.id = 5, .fds = {-1, -1}};
  dcmf_relayhost_handle(&f->host, DCMF_RELAY_OP_REMOVE, &rm);
  wait_events(f, 1);
  assert_int_equal(f->events[0].kind, DCMF_RELAY_EV_RELEASED);
  assert_int_equal(f->events[0].id, 5);
  assert_int_equal(f->events[0].ports[0], 1);
  assert_int_equal(f->events[0].ports[1], 2);

  /* Close (the worker stopping): relay 6 is released too. */
  dcmf_relayhost_close(&f->host);
  assert_int_equal(dcmf_relayhost_count(&f->host), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f->n_events, 2);
  assert_int_equal(f->events[1].kind, DCMF_RELAY_EV_RELEASED);
  assert_int_equal(f->events[1].id, 6);
  assert_true(port_is_free(ports[0]));
  assert_true(port_is_free(ports[1]));
  /* Teardown closes again: set up a fresh host for it. */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  struct dcmf_relayhost_settings s = {.loop = &f->loop,
                                      .rx = f->rx,
                                      .rx_len = sizeof(f->rx),
                                      .emit = emit,
                                      .user = f};
  assert_int_equal(dcmf_relayhost_init(&f->host, &s), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_relays_and_reports, setup, teardown),
      cmocka_unit_test_setup_teardown(test_update_clears_latch, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_refused_push_retried, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_odd_adds_and_close, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
