/*
 * Unit tests for the MSRP-over-DC service (agw-shim/e2ae/msrp_dc_svc.c)
 * with a fake session host (the channel is a list of messages, the clock
 * a variable) and a real loopback TCP peer on a libuv loop: one chunk per
 * message toward the channel within the WIC's max-message-size, bytes to
 * TCP unchanged (agnostic), back-pressure from a full SCTP buffer, the
 * backlog bound toward a core that reads nothing, and release both ways.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "msrp_dc_svc.h"

#define SID 3
#define MMS 8192

struct fx {
  uv_loop_t loop;
  struct dcmf_svc_host host;
  struct dcmf_media_desc desc;
  struct dcmf_media_msrpleg leg;
  void *media;
  int core; /* the test's TCP end */
  int sctp_full;
  size_t n_msgs, max_msg, bytes_msgs;
  int bad_msgs;  /* messages that are not exactly one chunk */
  int closed;    /* host->close(SID) */
  char events[16][512];
  int n_events;
  uint64_t now;
};

static struct fx *F;

/* One MSRP chunk: "MSRP " ... "-------<tid>[$+#]\r\n" and nothing after. */
static int one_chunk(const uint8_t *p, size_t n) {
  if (n < 20 || memcmp(p, "MSRP ", 5) != 0) {
    return 0;
  }
  const uint8_t *sp = memchr(p + 5, ' ', n - 5);
  if (sp == NULL) {
    return 0;
  }
  size_t tl = (size_t)(sp - (p + 5));
  size_t tail = 7 + tl + 3;
  if (n < tail || p[n - 2] != '\r' || p[n - 1] != '\n' ||
      memcmp(p + n - tail, "-------", 7) != 0 ||
      memcmp(p + n - tail + 7, p + 5, tl) != 0) {
    return 0;
  }
  /* The end-line occurs once: at the end. */
  for (size_t i = 0; i + tail < n; i++) {
    if (memcmp(p + i, "\r\n-------", 9) == 0 && i + 2 + tail != n &&
        memcmp(p + i + 9, p + 5, tl) == 0) {
      return 0;
    }
  }
  return 1;
}

static int h_send(struct dcmf_svc_host *h, uint32_t id, int binary,
                  const uint8_t *data, size_t len) {
  (void)h;
  (void)binary;
  assert_int_equal(id, SID);
  if (F->sctp_full) {
    return DCMF_ERR_EXHAUSTED;
  }
  F->n_msgs++;
  F->bytes_msgs += len;
  F->max_msg = len > F->max_msg ? len : F->max_msg;
  F->bad_msgs += !one_chunk(data, len);
  return 0;
}

static void h_close(struct dcmf_svc_host *h, uint32_t id) {
  (void)h;
  assert_int_equal(id, SID);
  if (!F->closed) {
    F->closed = 1;
    struct dcmf_svc_flow fl = {DCMF_ASSOC_SCTP, SID, 1, "", "msrp"};
    dcmf_msrp_dc_service.closed(F->media, NULL, &fl);
  }
}

static void h_emit(struct dcmf_svc_host *h, const char *event,
                   const char *detail) {
  (void)h;
  if (F->n_events < 16) {
    snprintf(F->events[F->n_events++], 512, "%s %s", event, detail);
  }
}

static uint64_t h_now(struct dcmf_svc_host *h) {
  (void)h;
  return F->now;
}

static void h_nothing(struct dcmf_svc_host *h) { (void)h; }

static int has_event(const char *prefix) {
  for (int i = 0; i < F->n_events; i++) {
    if (strncmp(F->events[i], prefix, strlen(prefix)) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Runs the loop until |cond| or 2000 turns (each waits at most 5 ms). */
static int until(int (*cond)(void)) {
  for (int i = 0; i < 2000; i++) {
    if (cond()) {
      return 1;
    }
    uv_run(&F->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  return cond();
}

static struct fx *fx_new(void) {
  struct fx *f = calloc(1, sizeof(*f));
  F = f;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(l, 4), 0);
  getsockname(l, (struct sockaddr *)&a, &al);
  f->leg.fd = l;
  f->leg.sid = SID;
  f->leg.setup = DCMF_TCP_PASSIVE; /* the core connects */
  /* ... from the signalled host only (any port): without it nothing
   * would be accepted (tcpleg.h). */
  struct sockaddr_in *core = (struct sockaddr_in *)&f->leg.remote;
  core->sin_family = AF_INET;
  core->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  core->sin_port = htons(9);
  f->leg.timeout_ms = 5000;
  f->leg.peer_max_message_size = MMS;
  f->desc.msrpleg = &f->leg;
  f->host = (struct dcmf_svc_host){.desc = &f->desc,
                                   .loop = &f->loop,
                                   .name = "test",
                                   .send = h_send,
                                   .close = h_close,
                                   .emit = h_emit,
                                   .now = h_now,
                                   .wake = h_nothing,
                                   .want_tick = h_nothing};
  assert_int_equal(dcmf_msrp_dc_service.attach(&f->media, NULL, &f->host), 0);
  assert_int_equal(f->leg.fd, -1); /* taken */
  f->core = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(f->core, (struct sockaddr *)&a, sizeof(a)), 0);
  struct dcmf_svc_flow fl = {DCMF_ASSOC_SCTP, SID, 1, "", "msrp"};
  assert_int_equal(dcmf_msrp_dc_service.match(f->media, &fl), 1);
  struct dcmf_svc_flow other = {DCMF_ASSOC_SCTP, SID + 2, 1, "", "msrp"};
  assert_int_equal(dcmf_msrp_dc_service.match(f->media, &other), 0);
  void *chan;
  assert_int_equal(dcmf_msrp_dc_service.open(f->media, &fl, &chan), 0);
  return f;
}

static void fx_free(struct fx *f) {
  dcmf_msrp_dc_service.detach(f->media);
  if (f->core >= 0) {
    close(f->core);
  }
  for (int i = 0; i < 50; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
}

/* A SEND chunk of |n| body bytes ('$'). */
static size_t send_chunk(uint8_t *out, size_t cap, const char *tid, size_t n) {
  int h = snprintf((char *)out, cap,
                   "MSRP %s SEND\r\nTo-Path: msrp://a.example:1/x;tcp\r\n"
                   "From-Path: msrp://b.example:1/y;tcp\r\nMessage-ID: m%s\r\n"
                   "Byte-Range: 1-%zu/%zu\r\nContent-Type: text/plain\r\n\r\n",
                   tid, tid, n, n);
  memset(out + h, 'x', n);
  return (size_t)h + n +
         (size_t)snprintf((char *)out + h + n, cap - (size_t)h - n,
                          "\r\n-------%s$\r\n", tid);
}

static size_t want_bytes;
static int core_has(void) {
  static uint8_t buf[65536];
  ssize_t r;
  while ((r = recv(F->core, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
    want_bytes = want_bytes > (size_t)r ? want_bytes - (size_t)r : 0;
  }
  return want_bytes == 0;
}
static size_t want_msgs;
static int msgs_in(void) { return F->n_msgs >= want_msgs; }

static void test_both_ways_rechunked(void **state) {
  (void)state;
  struct fx *f = fx_new();
  uint8_t *b = malloc(200000);
  /* Channel -> core: the chunk's bytes, unchanged. */
  size_t n = send_chunk(b, 200000, "t0000001", 3000);
  dcmf_msrp_dc_service.message(f->media, NULL, NULL, 1, b, n);
  want_bytes = n;
  assert_true(until(core_has));
  /* Core -> channel: one 100000-byte chunk becomes pieces within MMS. */
  n = send_chunk(b, 200000, "t0000002", 100000);
  assert_int_equal(send(f->core, b, n, 0), (ssize_t)n);
  want_msgs = 100000 / MMS + 1;
  assert_true(until(msgs_in));
  assert_true(f->max_msg <= MMS);
  assert_int_equal(f->bad_msgs, 0);
  free(b);
  fx_free(f);
}

static void test_sctp_full_stops_reading(void **state) {
  (void)state;
  struct fx *f = fx_new();
  f->sctp_full = 1;
  uint8_t *b = malloc(70000);
  size_t n = send_chunk(b, 70000, "t0000003", 60000);
  /* The core writes far more than the relay may hold: the kernel's
   * buffers fill, the service stops reading, send() stops taking. */
  int fl = fcntl(f->core, F_GETFL);
  fcntl(f->core, F_SETFL, fl | O_NONBLOCK);
  size_t sent = 0;
  int refused = 0; /* sends in a row the kernel took nothing of */
  for (int turn = 0; turn < 5000 && refused < 50; turn++) {
    ssize_t w = send(f->core, b, n, MSG_DONTWAIT);
    if (w > 0) {
      sent += (size_t)w; /* partial chunks are fine: a stream */
      refused = 0;
    } else {
      refused++;
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(refused, 50); /* everything stopped taking */
  assert_int_equal(f->n_msgs, 0);
  /* What the relay held stayed near its 256 KiB queue bound (the rest
   * waits in the kernel, which stopped taking: |sent| levelled off). */
  f->now += 5000;
  dcmf_msrp_dc_service.tick(f->media); /* pushes the counters */
  const char *ev = f->events[f->n_events - 1];
  const char *pm = strstr(ev, "\"peakMem\":");
  assert_non_null(pm);
  long peak = strtol(pm + 10, NULL, 10);
  assert_true(peak > 0 && peak < 256 * 1024 + 2 * 70000);
  size_t before = sent;
  for (int turn = 0; turn < 100; turn++) {
    ssize_t w = send(f->core, b, n, MSG_DONTWAIT);
    sent += w > 0 ? (size_t)w : 0;
    uv_run(&F->loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(sent, before);
  /* Room again: the held messages go, one chunk each. */
  f->sctp_full = 0;
  dcmf_msrp_dc_service.writable(f->media);
  want_msgs = 1;
  assert_true(until(msgs_in));
  assert_int_equal(f->bad_msgs, 0);
  free(b);
  fx_free(f);
}

static int overflowed(void) { return has_event("TCP_CLOSED {\"reason\":\"overflow\"}"); }

static void test_backlog_bound(void **state) {
  (void)state;
  struct fx *f = fx_new();
  int small = 4096;
  setsockopt(f->core, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  uint8_t *b = malloc(70000);
  /* The core reads nothing: 8 MiB offered, the media ends past the
   * bound instead of holding it. */
  for (int i = 0; i < 128 && !overflowed(); i++) {
    char tid[16];
    snprintf(tid, sizeof(tid), "u%07d", i);
    size_t n = send_chunk(b, 70000, tid, 65000);
    dcmf_msrp_dc_service.message(f->media, NULL, NULL, 1, b, n);
    for (int k = 0; k < 5; k++) {
      uv_run(&f->loop, UV_RUN_NOWAIT);
    }
  }
  assert_true(until(overflowed));
  assert_true(f->closed); /* the channel was closed */
  free(b);
  fx_free(f);
}

static int fin_seen(void) { return has_event("TCP_CLOSED {\"reason\":\"fin\"}"); }

static void test_core_fin_closes_channel(void **state) {
  (void)state;
  struct fx *f = fx_new();
  shutdown(f->core, SHUT_WR);
  assert_true(until(fin_seen));
  assert_true(f->closed);
  fx_free(f);
}

static int core_eof(void) {
  char c;
  return recv(F->core, &c, 1, MSG_DONTWAIT) == 0;
}

static void test_channel_close_sends_fin(void **state) {
  (void)state;
  struct fx *f = fx_new();
  struct dcmf_svc_flow fl = {DCMF_ASSOC_SCTP, SID, 1, "", "msrp"};
  dcmf_msrp_dc_service.closed(f->media, NULL, &fl);
  assert_true(until(core_eof));
  assert_true(has_event("TCP_CLOSED {\"reason\":\"channelClosed\"}"));
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_both_ways_rechunked),
      cmocka_unit_test(test_sctp_full_stops_reading),
      cmocka_unit_test(test_backlog_bound),
      cmocka_unit_test(test_core_fin_closes_channel),
      cmocka_unit_test(test_channel_close_sends_fin),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
