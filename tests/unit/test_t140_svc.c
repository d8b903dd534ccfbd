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
  char last_event[1024];
};

static struct fx *F;

static int h_send(struct dcmf_svc_host *h, uint32_t id, int binary,
                  const uint8_t *data, size_t len) {
  (void)h;
  assert_int_equal(id, SID);
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
    uv_run(&F->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  return -1;
}

/* Runs the loop until the channel got |want| bytes (or 3 s). */
static int dc_until(size_t want) {
  for (int i = 0; i < 3000 && F->dc_len < want; i++) {
    uv_run(&F->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  return F->dc_len >= want;
}

static struct fx *fx_new(int t140_on) {
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
  /* Closed already: what fx_free would do, without the detach. */
  close(f->core);
  for (int i = 0; i < 50; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(uv_loop_close(&f->loop), 0);
  dcmf_t140_service.free(f->worker);
  free(f);
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
