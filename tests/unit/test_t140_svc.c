/*
 * Unit tests for the T.140 service (agw-shim/e2ae/t140_svc.c) with a
 * fake session host (the channel is a buffer of what was sent) and a
 * real loopback UDP peer on a libuv loop: the WIC's text leaves as red
 * RTP with the M bit, the core's text reaches the channel as string
 * messages, packets from another source and floods are dropped and
 * counted, a closed channel is marked toward the core, and a media that
 * is not T.140 is left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "t140_svc.h"

#define SID 5

struct fx {
  uv_loop_t loop;
  struct dcmf_svc_host host;
  struct dcmf_media_desc desc;
  struct dcmf_media_rtpleg leg;
  void *worker, *media;
  int core;               /* the test's UDP end (the core peer) */
  struct sockaddr_in agw; /* the service's core socket */
  char dc[256];           /* text sent on the channel */
  size_t dc_len;
  int binary_msgs;
  char last_event[2048]; /* a T140_COUNTERS detail whole */
  int exhausted;       /* h_send reports SCTP without room */
  int refuse;          /* h_send fails */
  unsigned now_calls;  /* host->now calls within one loop run */
};

static struct fx *F;

static int h_send(struct dcmf_svc_host *h, uint32_t id, int binary,
                  const uint8_t *data, size_t len) {
  (void)h;
  assert_int_equal(id, SID);
  if (F->exhausted) {
    return DCMF_ERR_EXHAUSTED;
  }
  if (F->refuse) {
    return DCMF_ERR_INVALID;
  }
  F->binary_msgs += binary;
  if (F->dc_len + len < sizeof(F->dc)) {
    memcpy(F->dc + F->dc_len, data, len);
    F->dc_len += len;
  }
  return 0;
}

static void h_emit(struct dcmf_svc_host *h, const char *event,
                   const char *detail) {
  (void)h;
  snprintf(F->last_event, sizeof(F->last_event), "%s %s", event, detail);
}

static uint64_t h_now(struct dcmf_svc_host *h) {
  (void)h;
  /* Every pump asks the time: a loop run that asks this often spins. */
  if (++F->now_calls > 10000) {
    fail_msg("the worker loop spins without polling");
  }
  uv_update_time(&F->loop);
  return uv_now(&F->loop);
}

static void h_nothing(struct dcmf_svc_host *h) {
  (void)h;
}

static int udp_socket(struct sockaddr_in *a) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a->sin_port = 0;
  socklen_t al = sizeof(*a);
  assert_int_equal(bind(s, (struct sockaddr *)a, sizeof(*a)), 0);
  getsockname(s, (struct sockaddr *)a, &al);
  return s;
}

/* Runs the loop until a datagram reaches the core peer (or 2 s). */
static ssize_t core_recv(uint8_t *buf, size_t cap) {
  for (int i = 0; i < 2000; i++) {
    ssize_t n = recv(F->core, buf, cap, 0);
    if (n > 0) {
      return n;
    }
    F->now_calls = 0;
    uv_run(&F->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  return -1;
}

/* Runs the loop until the channel got |want| bytes (or 3 s). */
static int dc_until(size_t want) {
  for (int i = 0; i < 3000 && F->dc_len < want; i++) {
    F->now_calls = 0;
    uv_run(&F->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  return F->dc_len >= want;
}

/* Runs the loop for about |ms| milliseconds. */
static void run_for(int ms) {
  for (int i = 0; i < ms; i++) {
    F->now_calls = 0;
    uv_run(&F->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

/* |t|: the leg's T.140 settings, NULL for the usual red ones. */
static struct fx *fx_new_with(int t140_on, const struct dcmf_media_t140 *t) {
  struct fx *f = calloc(1, sizeof(*f));
  F = f;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  struct sockaddr_in peer;
  f->core = udp_socket(&peer);
  f->leg.rtp_fd = udp_socket(&f->agw);
  f->leg.rtcp_fd = -1;
  f->leg.rtcp_mux = 1;
  memcpy(&f->leg.remote_rtp, &peer, sizeof(peer));
  f->leg.t140 = (struct dcmf_media_t140){.on = t140_on,
                                         .sid = SID,
                                         .pt_t140 = 98,
                                         .pt_red = 100,
                                         .use_red = 1,
                                         .generations = 2,
                                         .cps_to_dc = 30};
  if (t != NULL) {
    f->leg.t140 = *t;
  }
  f->desc.assoc = DCMF_ASSOC_SCTP;
  f->desc.rtpleg = &f->leg;
  f->host = (struct dcmf_svc_host){.desc = &f->desc,
                                   .loop = &f->loop,
                                   .name = "test",
                                   .send = h_send,
                                   .emit = h_emit,
                                   .now = h_now,
                                   .wake = h_nothing,
                                   .want_tick = h_nothing};
  struct dcmf_svc_worker_env env = {.loop = &f->loop};
  char err[64];
  assert_int_equal(
      dcmf_t140_service.init(&f->worker, &env, NULL, err, sizeof(err)), 0);
  assert_int_equal(dcmf_t140_service.attach(&f->media, f->worker, &f->host), 0);
  return f;
}

static struct fx *fx_new(int t140_on) {
  return fx_new_with(t140_on, NULL);
}

/* Detaches (unless the test did: media NULL) and frees the fixture. */
static void fx_free(struct fx *f) {
  if (f->media != NULL) { /* NULL: the test detached it */
    dcmf_t140_service.detach(f->media);
  }
  if (f->leg.rtp_fd >= 0) {
    close(f->leg.rtp_fd);
  }
  close(f->core);
  for (int i = 0; i < 50; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(uv_loop_close(&f->loop), 0);
  dcmf_t140_service.free(f->worker);
  free(f);
}

static void open_channel(struct fx *f) {
  struct dcmf_svc_flow fl = {DCMF_ASSOC_SCTP, SID, 1, "", "t140"};
  assert_int_equal(dcmf_t140_service.match(f->media, &fl), 1);
  struct dcmf_svc_flow other = {DCMF_ASSOC_SCTP, SID, 1, "", "msrp"};
  assert_int_equal(dcmf_t140_service.match(f->media, &other), 0);
  void *chan;
  assert_int_equal(dcmf_t140_service.open(f->media, &fl, &chan), 0);
  dcmf_t140_service.writable(f->media);
}

/* A plain text/t140 packet (no red) of |text|. */
static size_t t140_packet(uint8_t *out, uint16_t seq, const char *text) {
  size_t n = strlen(text);
  uint8_t h[12] = {
      0x80, 98, (uint8_t)(seq >> 8), (uint8_t)seq, 0, 0, 0x10, 0, 1, 2, 3, 4};
  memcpy(out, h, 12);
  memcpy(out + 12, text, n);
  return 12 + n;
}

static void test_dc_to_rtp(void **state) {
  (void)state;
  struct fx *f = fx_new(1);
  assert_int_equal(f->leg.rtp_fd, -1); /* taken */
  open_channel(f);
  dcmf_t140_service.message(f->media, NULL, NULL, 0, (const uint8_t *)"hi", 2);
  uint8_t pkt[1500];
  ssize_t n = core_recv(pkt, sizeof(pkt));
  assert_true(n > 12 + 4 * 2 + 1);
  assert_int_equal(pkt[0] >> 6, 2);
  assert_int_equal(pkt[1], 0x80 | 100); /* M bit, red */
  /* Two empty generations (F=1, PT 98, length 0), then the primary. */
  assert_int_equal(pkt[12] & 0x7f, 98);
  assert_int_equal(pkt[20], 98);
  assert_memory_equal(pkt + 21, "hi", 2);
  assert_int_equal(n, 23);
  fx_free(f);
}

static void test_rtp_to_dc_and_drops(void **state) {
  (void)state;
  struct fx *f = fx_new(1);
  open_channel(f);
  uint8_t pkt[64];
  size_t n = t140_packet(pkt, 7, "hey");
  /* From another socket: not the signalled core. */
  struct sockaddr_in other_addr;
  int other = udp_socket(&other_addr);
  assert_int_equal(
      sendto(other, pkt, n, 0, (struct sockaddr *)&f->agw, sizeof(f->agw)),
      (ssize_t)n);
  close(other);
  assert_int_equal(
      sendto(f->core, pkt, n, 0, (struct sockaddr *)&f->agw, sizeof(f->agw)),
      (ssize_t)n);
  assert_true(dc_until(3));
  assert_memory_equal(f->dc, "hey", 3);
  assert_int_equal(f->binary_msgs, 0); /* string messages */
  /* A flood from the core: most of it never reaches the engine. */
  uint8_t junk[20] = {0};
  /* In rounds that the loop reads in between, so the socket's buffer
   * drops none: 400 within well under a second. */
  for (int round = 0; round < 8; round++) {
    for (int i = 0; i < 50; i++) {
      (void)sendto(f->core, junk, sizeof(junk), 0, (struct sockaddr *)&f->agw,
                   sizeof(f->agw));
    }
    for (int i = 0; i < 20; i++) {
      uv_run(&f->loop, UV_RUN_NOWAIT);
    }
  }
  dcmf_t140_service.detach(f->media);
  f->media = NULL;
  assert_non_null(strstr(f->last_event, "T140_COUNTERS"));
  assert_non_null(strstr(f->last_event, "\"final\":true"));
  assert_non_null(strstr(f->last_event, "\"unknownSource\":1"));
  assert_null(strstr(f->last_event, "\"rate\":0,"));
  assert_null(strstr(f->last_event, "\"version\":0,"));
  fx_free(f);
}

static void test_closed_channel_marks_loss(void **state) {
  (void)state;
  struct fx *f = fx_new(1);
  open_channel(f);
  struct dcmf_svc_flow fl = {DCMF_ASSOC_SCTP, SID, 1, "", "t140"};
  dcmf_t140_service.closed(f->media, NULL, &fl);
  uint8_t pkt[1500];
  ssize_t n = core_recv(pkt, sizeof(pkt));
  assert_true(n >= 3);
  assert_memory_equal(pkt + n - 3, "\xef\xbf\xbd", 3); /* U+FFFD */
  fx_free(f);
}

static void core_send(struct fx *f, const uint8_t *pkt, size_t n) {
  assert_int_equal(
      sendto(f->core, pkt, n, 0, (struct sockaddr *)&f->agw, sizeof(f->agw)),
      (ssize_t)n);
}

/* A call whose channel got the first 30 of 40 characters from the core
 * (what cps 30 lets through at once); the last 10 wait in the engine. */
static struct fx *fx_with_text_waiting(void) {
  struct fx *f = fx_new(1);
  open_channel(f);
  uint8_t pkt[128];
  core_send(f, pkt,
            t140_packet(pkt, 1, "0123456789012345678901234567890123456789"));
  assert_true(dc_until(30));
  return f;
}

/* Core text before the WIC opened the channel waits (the worker goes on
 * polling) and arrives once it opens; so does a marker for bad UTF-8. */
static void test_core_text_before_channel(void **state) {
  (void)state;
  struct fx *f = fx_new(1);
  uint8_t pkt[64];
  core_send(f, pkt, t140_packet(pkt, 7, "hey"));
  run_for(50);
  size_t n = t140_packet(pkt, 8, "x");
  pkt[12] = 0xff; /* not UTF-8: U+FFFD in its place */
  core_send(f, pkt, n);
  run_for(50);
  assert_int_equal(f->dc_len, 0);
  open_channel(f);
  assert_true(dc_until(6));
  assert_memory_equal(f->dc, "hey\xef\xbf\xbd", 6);
  fx_free(f);
}

/* A packet held for a missing one while the channel is closed: the
 * worker waits for the channel, then the gap is marked. */
static void test_held_packet_while_closed(void **state) {
  (void)state;
  struct fx *f = fx_new(1);
  uint8_t pkt[64];
  core_send(f, pkt, t140_packet(pkt, 10, "a"));
  core_send(f, pkt, t140_packet(pkt, 12, "c")); /* 11 is missing */
  run_for(1200); /* past the 1 s reorder wait */
  open_channel(f);
  assert_true(dc_until(5));
  assert_memory_equal(f->dc, "a\xef\xbf\xbd" "c", 5);
  fx_free(f);
}

/* Text closing the channel leaves queued (cps 30) waits for it again. */
static void test_channel_closed_with_text_queued(void **state) {
  (void)state;
  struct fx *f = fx_with_text_waiting();
  struct dcmf_svc_flow fl = {DCMF_ASSOC_SCTP, SID, 1, "", "t140"};
  dcmf_t140_service.closed(f->media, NULL, &fl);
  run_for(200);
  open_channel(f);
  assert_true(dc_until(40));
  assert_memory_equal(f->dc + 30, "0123456789", 10);
  fx_free(f);
}

/* SCTP without room: the message waits for |writable| and the worker
 * polls meanwhile, however much core text arrives; a channel closing
 * then keeps it for the next one, first. */
static void test_backpressure_waits_for_writable(void **state) {
  (void)state;
  struct fx *f = fx_new(1);
  open_channel(f);
  f->exhausted = 1;
  uint8_t pkt[64];
  core_send(f, pkt, t140_packet(pkt, 1, "ab"));
  run_for(50);
  core_send(f, pkt, t140_packet(pkt, 2, "cd"));
  run_for(50);
  assert_int_equal(f->dc_len, 0);
  struct dcmf_svc_flow fl = {DCMF_ASSOC_SCTP, SID, 1, "", "t140"};
  dcmf_t140_service.closed(f->media, NULL, &fl);
  core_send(f, pkt, t140_packet(pkt, 3, "ef"));
  run_for(50);
  f->exhausted = 0;
  open_channel(f); /* |writable| too */
  assert_true(dc_until(6));
  assert_memory_equal(f->dc, "abcdef", 6);
  fx_free(f);
}

/* The core answered t140 without red, on PT 100 (red's default number):
 * the media runs and text flows both ways as plain t140. */
static void test_no_red_on_pt_100(void **state) {
  (void)state;
  struct dcmf_media_t140 t = {.on = 1, .sid = SID, .pt_t140 = 100,
                              .pt_red = 100, .use_red = 0, .cps_to_dc = 30};
  struct fx *f = fx_new_with(1, &t);
  assert_int_equal(f->leg.rtp_fd, -1); /* taken: the media runs */
  open_channel(f);
  dcmf_t140_service.message(f->media, NULL, NULL, 0, (const uint8_t *)"hi", 2);
  uint8_t pkt[1500];
  ssize_t n = core_recv(pkt, sizeof(pkt));
  assert_int_equal(n, 14);
  assert_int_equal(pkt[1], 0x80 | 100); /* M bit, t140 on 100 */
  assert_memory_equal(pkt + 12, "hi", 2);
  n = (ssize_t)t140_packet(pkt, 3, "yo");
  pkt[1] = 100;
  core_send(f, pkt, (size_t)n);
  assert_true(dc_until(2));
  assert_memory_equal(f->dc, "yo", 2);
  fx_free(f);
}

/* Settings the engine refuses: a T140_FAILURE says so, not a silence. */
static void test_start_failure_reported(void **state) {
  (void)state;
  struct dcmf_media_t140 t = {.on = 1, .sid = SID, .pt_t140 = 98,
                              .pt_red = 100, .use_red = 1, .generations = 9};
  struct fx *f = fx_new_with(1, &t);
  assert_non_null(strstr(f->last_event, "T140_FAILURE"));
  assert_non_null(strstr(f->last_event, "generations"));
  fx_free(f);
}

/* The core answer's PATCH brings a cps while text waits for the WIC:
 * the waiting text still arrives, unmarked. New payload types restart
 * the engine and mark the possible loss toward the WIC. */
static void test_patch_keeps_queued_text(void **state) {
  (void)state;
  struct fx *f = fx_with_text_waiting();
  f->leg.t140.cps_to_dc = 60;
  f->leg.t140.cps_to_rtp = 20;
  dcmf_t140_service.update(f->media);
  assert_true(dc_until(40));
  assert_int_equal(f->dc_len, 40);
  assert_memory_equal(f->dc + 30, "0123456789", 10);
  f->leg.t140.pt_t140 = 99;
  dcmf_t140_service.update(f->media);
  assert_true(dc_until(43));
  assert_memory_equal(f->dc + 40, "\xef\xbf\xbd", 3);
  fx_free(f);
}

/* Only what was sent is counted as sent; failed sends count apart. */
static void test_counts_only_sent(void **state) {
  (void)state;
  struct fx *f = fx_new(1);
  memset(&f->leg.remote_rtp, 0, sizeof(f->leg.remote_rtp));
  dcmf_t140_service.update(f->media); /* no core address: latch, none yet */
  open_channel(f);
  f->refuse = 1;
  dcmf_t140_service.message(f->media, NULL, NULL, 0, (const uint8_t *)"hi", 2);
  run_for(20);
  uint8_t pkt[64];
  core_send(f, pkt, t140_packet(pkt, 1, "abc")); /* latched, refused on DC */
  run_for(50);
  dcmf_t140_service.detach(f->media);
  f->media = NULL;
  /* What reached the core (the first packet had nowhere to go). */
  int reached = 0;
  ssize_t got;
  while ((got = recv(f->core, pkt, sizeof(pkt), MSG_DONTWAIT)) > 0) {
    /* RTCP muxed on the port (the BYE at detach) is not text RTP. */
    reached += !(got >= 2 && pkt[1] >= 192 && pkt[1] <= 223);
  }
  char want[64];
  snprintf(want, sizeof(want), "\"toCore\":{\"packets\":%d,", reached);
  assert_non_null(strstr(f->last_event, want));
  assert_non_null(
      strstr(f->last_event, "\"toAccess\":{\"messages\":0,\"chars\":0}"));
  /* The text's sendFailed (in drops, before the rtcp member): at least
   * the core's and the DC's. */
  const char *drops = strstr(f->last_event, "\"drops\":");
  assert_non_null(drops);
  const char *failed = strstr(drops, "\"sendFailed\":");
  assert_non_null(failed);
  assert_true(atoi(failed + strlen("\"sendFailed\":")) >= 2);
  fx_free(f);
}

/* Latching with a signalled address (as the e2ae RTP leg): the core's
 * packets come from elsewhere; the first well-formed one latches its
 * source, which then gets the WIC's text, and no other source is taken. */
static void test_latching_with_signalled_address(void **state) {
  (void)state;
  struct fx *f = fx_new(1);
  struct sockaddr_in elsewhere;
  int other = udp_socket(&elsewhere); /* signalled, silent */
  memcpy(&f->leg.remote_rtp, &elsewhere, sizeof(elsewhere));
  f->leg.latching = 1;
  dcmf_t140_service.update(f->media);
  open_channel(f);
  uint8_t junk[4] = {0}, pkt[1500];
  core_send(f, junk, sizeof(junk)); /* malformed: latches nothing */
  run_for(20);
  core_send(f, pkt, t140_packet(pkt, 1, "in"));
  assert_true(dc_until(2));
  assert_memory_equal(f->dc, "in", 2);
  dcmf_t140_service.message(f->media, NULL, NULL, 0, (const uint8_t *)"out", 3);
  ssize_t n = core_recv(pkt, sizeof(pkt));
  assert_true(n > 3);
  assert_memory_equal(pkt + n - 3, "out", 3);
  /* The signalled address heard nothing; it is not taken as a source. */
  assert_int_equal(recv(other, pkt, sizeof(pkt), MSG_DONTWAIT), -1);
  size_t m = t140_packet(pkt, 2, "no");
  assert_int_equal(
      sendto(other, pkt, m, 0, (struct sockaddr *)&f->agw, sizeof(f->agw)),
      (ssize_t)m);
  run_for(50);
  assert_int_equal(f->dc_len, 2);
  close(other);
  fx_free(f);
}

static void test_not_t140(void **state) {
  (void)state;
  struct fx *f = fx_new(0);
  assert_true(f->leg.rtp_fd >= 0); /* left for its owner */
  struct dcmf_svc_flow fl = {DCMF_ASSOC_SCTP, SID, 1, "", "t140"};
  assert_int_equal(dcmf_t140_service.match(f->media, &fl), 0);
  fx_free(f);
}

/* RTCP muxed on the core's RTP port (RFC 5761): the core's RR is taken
 * as RTCP, not as text; the detach sends a compound ending in a BYE for
 * the text stream's SSRC. */
static void test_rtcp_muxed_bye(void **state) {
  (void)state;
  struct fx *f = fx_new(1);
  open_channel(f);
  dcmf_t140_service.message(f->media, NULL, NULL, 0, (const uint8_t *)"hi", 2);
  uint8_t pkt[1500];
  ssize_t n = core_recv(pkt, sizeof(pkt));
  assert_true(n > 12 && (pkt[1] < 192 || pkt[1] > 223)); /* RTP */
  uint8_t ssrc[4];
  memcpy(ssrc, pkt + 8, 4);
  /* an RR from the core with no blocks (RFC 3550 6.4.2) */
  uint8_t rr[8] = {0x80, 201, 0, 1, 9, 9, 9, 9};
  assert_int_equal(sendto(f->core, rr, sizeof(rr), 0,
                          (struct sockaddr *)&f->agw, sizeof(f->agw)),
                   (ssize_t)sizeof(rr));
  for (int i = 0; i < 200; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  dcmf_t140_service.detach(f->media);
  f->media = NULL;
  assert_non_null(strstr(f->last_event, "\"received\":1,"));
  assert_non_null(strstr(f->last_event, "\"payloadType\":0,"));
  assert_non_null(strstr(f->last_event, "\"byeSent\":1,"));
  /* the compounds on the socket: the last one ends in the BYE */
  int bye = 0;
  while ((n = recv(f->core, pkt, sizeof(pkt), 0)) > 0) {
    if (pkt[1] == 200 || pkt[1] == 201) {
      bye = n >= 8 && pkt[n - 7] == 203 && memcmp(pkt + n - 4, ssrc, 4) == 0 &&
            memcmp(pkt + 4, ssrc, 4) == 0;
    }
  }
  assert_true(bye);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dc_to_rtp),
      cmocka_unit_test(test_rtp_to_dc_and_drops),
      cmocka_unit_test(test_closed_channel_marks_loss),
      cmocka_unit_test(test_not_t140),
      cmocka_unit_test(test_rtcp_muxed_bye),
      cmocka_unit_test(test_core_text_before_channel),
      cmocka_unit_test(test_held_packet_while_closed),
      cmocka_unit_test(test_channel_closed_with_text_queued),
      cmocka_unit_test(test_backpressure_waits_for_writable),
      cmocka_unit_test(test_no_red_on_pt_100),
      cmocka_unit_test(test_start_failure_reported),
      cmocka_unit_test(test_patch_keeps_queued_text),
      cmocka_unit_test(test_counts_only_sent),
      cmocka_unit_test(test_latching_with_signalled_address),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
