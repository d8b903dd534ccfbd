/*
 * The RTCP endpoint engine (dcmf/proto/rtcp_ep.h) with a fake clock and
 * chosen random draws: the RFC 3550 §6.2/6.3 interval (half before the
 * first, [0.5, 1.5] * 5 s after), SR while RTP was sent else RR, the
 * SDES CNAME, the report block, BYE, and hostile compounds from the
 * peer. The expected bytes are read here by offsets of RFC 3550 §6.4.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "rtcp.h"
#include "rtcp_ep.h"

#define OURS 0xa1b2c3d4u
#define PEER 0x01020304u

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static struct dcmf_rtcp_ep_state state(uint32_t sent) {
  struct dcmf_rtcp_ep_state s = {0};
  s.ssrc = OURS;
  s.ntp = 0x0102030405060708ull;
  s.rtp_ts = 777;
  s.packets_sent = sent;
  s.octets_sent = sent * 3;
  return s;
}

static void test_interval(void **st) {
  (void)st;
  struct dcmf_rtcp_ep ep;
  uint8_t out[DCMF_RTCP_EP_MAX_PACKET];
  struct dcmf_rtcp_ep_state s = state(0);
  /* first: 2500 ms * [0.5, 1.5]: draw 0 -> 1250, draw max -> ~3750 */
  dcmf_rtcp_ep_init(&ep, "cn", 0, 1000, 0);
  assert_int_equal(dcmf_rtcp_ep_next(&ep), 1000 + 1250);
  dcmf_rtcp_ep_init(&ep, "cn", 0, 1000, UINT32_MAX);
  assert_true(dcmf_rtcp_ep_next(&ep) >= 1000 + 3749 &&
              dcmf_rtcp_ep_next(&ep) <= 1000 + 3750);
  dcmf_rtcp_ep_init(&ep, "cn", 0, 1000, 1u << 31);
  assert_int_equal(dcmf_rtcp_ep_next(&ep), 1000 + 2500);
  /* not due before its time */
  assert_int_equal(dcmf_rtcp_ep_write(&ep, &s, 3499, 0, out, sizeof(out)), 0);
  int n = dcmf_rtcp_ep_write(&ep, &s, 3500, 1u << 31, out, sizeof(out));
  assert_true(n > 0);
  /* then 5000 * [0.5, 1.5] from the send */
  assert_int_equal(dcmf_rtcp_ep_next(&ep), 3500 + 5000);
  assert_int_equal(dcmf_rtcp_ep_write(&ep, &s, 8499, 0, out, sizeof(out)), 0);
  assert_true(dcmf_rtcp_ep_write(&ep, &s, 8500, 0, out, sizeof(out)) > 0);
  assert_int_equal(dcmf_rtcp_ep_next(&ep), 8500 + 2500);
  /* a short buffer leaves it due */
  assert_int_equal(dcmf_rtcp_ep_write(&ep, &s, 11000, 0, out, 10),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_rtcp_ep_next(&ep), 8500 + 2500);
}

/* Walks |out| and checks it is a valid RFC 3550 compound whose first
 * packet is |first|, with SDES CNAME |cname| for OURS; returns the
 * number of packets. */
static int check_compound(const uint8_t *out, int n, uint8_t first,
                          const char *cname) {
  assert_true(n > 0 && n % 4 == 0);
  assert_int_equal(dcmf_rtcp_validate(out, (size_t)n, 0), 0);
  assert_int_equal(out[1], first);
  assert_int_equal(get32(out + 4), OURS);
  struct dcmf_rtcp_iter it;
  struct dcmf_rtcp_packet p;
  dcmf_rtcp_iter_init(&it, out, (size_t)n);
  int k = 0, sdes = 0;
  while (dcmf_rtcp_next(&it, &p) == 1) {
    if (p.type == DCMF_RTCP_SDES) {
      assert_int_equal(p.count, 1);
      assert_int_equal(get32(p.data + 4), OURS);
      assert_int_equal(p.data[8], 1); /* CNAME */
      assert_int_equal(p.data[9], strlen(cname));
      assert_memory_equal(p.data + 10, cname, strlen(cname));
      assert_int_equal(p.data[10 + strlen(cname)], 0); /* END */
      sdes = 1;
    }
    k++;
  }
  assert_true(sdes);
  return k;
}

static void test_sr_rr(void **st) {
  (void)st;
  struct dcmf_rtcp_ep ep;
  uint8_t out[DCMF_RTCP_EP_MAX_PACKET];
  dcmf_rtcp_ep_init(&ep, "abc@example", 0, 0, 0);
  /* nothing sent yet: RR without blocks, then SDES */
  struct dcmf_rtcp_ep_state s = state(0);
  int n = dcmf_rtcp_ep_write(&ep, &s, 10000, 0, out, sizeof(out));
  assert_int_equal(check_compound(out, n, DCMF_RTCP_RR, "abc@example"), 2);
  assert_int_equal(out[0] & 0x1f, 0);
  /* text went out: SR with NTP, RTP time, counts */
  s = state(4);
  n = dcmf_rtcp_ep_write(&ep, &s, 20000, 0, out, sizeof(out));
  assert_int_equal(check_compound(out, n, DCMF_RTCP_SR, "abc@example"), 2);
  assert_int_equal(get32(out + 8), 0x01020304u);
  assert_int_equal(get32(out + 12), 0x05060708u);
  assert_int_equal(get32(out + 16), 777);
  assert_int_equal(get32(out + 20), 4);
  assert_int_equal(get32(out + 24), 12);
  /* nothing more sent in the next interval: RR again */
  n = dcmf_rtcp_ep_write(&ep, &s, 30000, 0, out, sizeof(out));
  assert_int_equal(check_compound(out, n, DCMF_RTCP_RR, "abc@example"), 2);
  assert_int_equal(dcmf_rtcp_ep_get_stats(&ep)->sent_sr, 1);
  assert_int_equal(dcmf_rtcp_ep_get_stats(&ep)->sent_rr, 2);
}

static void test_report_block(void **st) {
  (void)st;
  struct dcmf_rtcp_ep ep;
  uint8_t out[DCMF_RTCP_EP_MAX_PACKET];
  dcmf_rtcp_ep_init(&ep, "x", 0, 0, 0);
  /* the peer's SR at 5000 ms: NTP 0x11112222_33334444 */
  uint8_t sr[28] = {0x80, 200, 0, 6, 0x01, 0x02, 0x03, 0x04,
                    0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44};
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, sr, sizeof(sr), OURS, 5000), 0);
  struct dcmf_rtcp_ep_state s = state(0);
  s.have_source = 1;
  s.source_ssrc = PEER;
  s.source_max_seq = 65530;
  int n = dcmf_rtcp_ep_write(&ep, &s, 6000, 0, out, sizeof(out));
  assert_int_equal(check_compound(out, n, DCMF_RTCP_RR, "x"), 2);
  assert_int_equal(out[0] & 0x1f, 1);
  const uint8_t *b = out + 8;
  assert_int_equal(get32(b), PEER);
  assert_int_equal(get32(b + 8), 65530);
  assert_int_equal(get32(b + 16), 0x22223333u); /* LSR */
  assert_int_equal(get32(b + 20), 65536u);      /* DLSR: 1 s */
  /* the sequence wraps: 10 more expected, 5 lost -> fraction 128 */
  s.source_max_seq = 4;
  s.source_lost = 5;
  n = dcmf_rtcp_ep_write(&ep, &s, 20000, 0, out, sizeof(out));
  assert_true(n > 0);
  assert_int_equal(get32(b + 8), 65540);
  assert_int_equal(b[4], 128);
  assert_int_equal(get32(b + 4) & 0xffffff, 5);
}

static void test_bye(void **st) {
  (void)st;
  struct dcmf_rtcp_ep ep;
  uint8_t out[DCMF_RTCP_EP_MAX_PACKET];
  dcmf_rtcp_ep_init(&ep, "a-cname-of-sixty-four-bytes-0123456789012345678901234567890123",
                    0, 0, 0);
  struct dcmf_rtcp_ep_state s = state(2);
  s.have_source = 1;
  s.source_ssrc = PEER;
  int n = dcmf_rtcp_ep_bye(&ep, &s, 100, out, sizeof(out));
  assert_true(n > 0 && n <= DCMF_RTCP_EP_MAX_PACKET);
  assert_int_equal(check_compound(out, n, DCMF_RTCP_SR, ep.cname), 3);
  const uint8_t *bye = out + n - 8;
  assert_int_equal(bye[0], 0x81);
  assert_int_equal(bye[1], DCMF_RTCP_BYE);
  assert_int_equal(get32(bye + 4), OURS);
  assert_int_equal(dcmf_rtcp_ep_next(&ep), DCMF_RTCP_EP_NEVER);
  assert_int_equal(dcmf_rtcp_ep_write(&ep, &s, UINT64_MAX - 1, 0, out,
                                      sizeof(out)),
                   0);
  assert_int_equal(dcmf_rtcp_ep_bye(&ep, &s, 100, out, 20), DCMF_ERR_TOO_LARGE);
}

static void test_recv(void **st) {
  (void)st;
  struct dcmf_rtcp_ep ep;
  dcmf_rtcp_ep_init(&ep, "x", 0, 0, 0);
  /* RR from PEER with one block about us (fraction 64, lost 7, jitter
   * 33), then a BYE */
  uint8_t rr[40] = {0x81, 201, 0, 7, 0x01, 0x02, 0x03, 0x04,
                    0xa1, 0xb2, 0xc3, 0xd4, 64, 0, 0, 7,
                    0, 0, 0, 9, 0, 0, 0, 33};
  rr[32] = 0x81;
  rr[33] = 203;
  rr[35] = 1;
  rr[36] = 0x01;
  rr[37] = 0x02;
  rr[38] = 0x03;
  rr[39] = 0x04;
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, rr, sizeof(rr), OURS, 0), 0);
  const struct dcmf_rtcp_ep_stats *c = dcmf_rtcp_ep_get_stats(&ep);
  assert_int_equal(c->received, 1);
  assert_int_equal(c->report_blocks, 1);
  assert_int_equal(c->peer_fraction_lost, 64);
  assert_int_equal(c->peer_lost, 7);
  assert_int_equal(c->peer_jitter, 33);
  assert_int_equal(c->byes, 1);
  /* a block about another SSRC is not ours */
  rr[8] = 0;
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, rr, 32, OURS, 0), 0);
  assert_int_equal(c->report_blocks, 1);
}

static void test_hostile(void **st) {
  (void)st;
  struct dcmf_rtcp_ep ep;
  dcmf_rtcp_ep_init(&ep, "x", 0, 0, 0);
  uint8_t rr[32] = {0x81, 201, 0, 7, 1, 2, 3, 4, 0xa1, 0xb2, 0xc3, 0xd4, 0xff};
  /* version 1 */
  rr[0] = 0x41;
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, rr, sizeof(rr), OURS, 0),
                   DCMF_ERR_MALFORMED);
  rr[0] = 0x81;
  /* length past the end, count past the packet, cut short, empty */
  rr[3] = 8;
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, rr, sizeof(rr), OURS, 0),
                   DCMF_ERR_MALFORMED);
  rr[3] = 7;
  rr[0] = 0x82;
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, rr, sizeof(rr), OURS, 0),
                   DCMF_ERR_MALFORMED);
  rr[0] = 0x81;
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, rr, 30, OURS, 0),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, rr, 0, OURS, 0), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, NULL, 0, OURS, 0),
                   DCMF_ERR_MALFORMED);
  /* a compound starting with SDES (reduced-size) is not RFC 3550 */
  uint8_t sdes[12] = {0x81, 202, 0, 2, 1, 2, 3, 4, 1, 1, 'a', 0};
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, sdes, sizeof(sdes), OURS, 0),
                   DCMF_ERR_MALFORMED);
  /* an RTP packet (PT 98) on the RTCP port */
  uint8_t rtp[16] = {0x80, 98, 0, 1};
  assert_int_equal(dcmf_rtcp_ep_recv(&ep, rtp, sizeof(rtp), OURS, 0),
                   DCMF_ERR_MALFORMED);
  const struct dcmf_rtcp_ep_stats *c = dcmf_rtcp_ep_get_stats(&ep);
  assert_int_equal(c->malformed, 8);
  assert_int_equal(c->received, 0);
  assert_int_equal(c->report_blocks, 0);
  /* the endpoint still reports as before */
  uint8_t out[DCMF_RTCP_EP_MAX_PACKET];
  struct dcmf_rtcp_ep_state s = state(0);
  assert_true(dcmf_rtcp_ep_write(&ep, &s, 10000, 0, out, sizeof(out)) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interval),     cmocka_unit_test(test_sr_rr),
      cmocka_unit_test(test_report_block), cmocka_unit_test(test_bye),
      cmocka_unit_test(test_recv),         cmocka_unit_test(test_hostile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
