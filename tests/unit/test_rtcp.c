/*
 * The RTCP compound engine (dcmf/proto/rtcp.h) on compounds the test
 * builds field by field from RFC 3550 §6.4-6.6 (SR, RR, SDES, BYE), RFC
 * 4585 §6.2-6.3 (Generic NACK, PLI) and the REMB message
 * (draft-alvestrand-rmcat-remb, a PSFB with FMT 15): validity, the walk,
 * the sender SSRC, and the feedback filter toward an RTP/AVP leg.
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

#define SENDER 0x11223344u
#define MEDIA 0x55667788u

struct cpd {
  uint8_t b[512];
  size_t len;
};

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Starts a packet: V=2, P=0, |count|, |type|; the length is set by
 * end_packet. Returns its offset. */
static size_t begin(struct cpd *c, uint8_t count, uint8_t type) {
  size_t at = c->len;
  c->b[at] = (uint8_t)(0x80 | count);
  c->b[at + 1] = type;
  c->len += 4;
  return at;
}

static void word(struct cpd *c, uint32_t v) {
  put32(c->b + c->len, v);
  c->len += 4;
}

static void end_packet(struct cpd *c, size_t at) {
  assert_int_equal((c->len - at) % 4, 0);
  put16(c->b + at + 2, (uint16_t)((c->len - at) / 4 - 1));
}

/* RFC 3550 §6.4.1: SR with |rc| report blocks about MEDIA. */
static void add_sr(struct cpd *c, uint8_t rc) {
  size_t at = begin(c, rc, 200);
  word(c, SENDER);
  word(c, 0xe1b2c3d4u); /* NTP timestamp, most significant word */
  word(c, 0x80000000u); /* NTP timestamp, least significant word */
  word(c, 48000u);      /* RTP timestamp */
  word(c, 100);         /* sender's packet count */
  word(c, 16000);       /* sender's octet count */
  for (uint8_t i = 0; i < rc; i++) {
    word(c, MEDIA + i);   /* SSRC_n */
    word(c, 0x01000002u); /* fraction lost 1, cumulative lost 2 */
    word(c, 0x00010203u); /* extended highest sequence number */
    word(c, 7);           /* jitter */
    word(c, 0x11112222u); /* LSR */
    word(c, 65536);       /* DLSR: 1 s */
  }
  end_packet(c, at);
}

/* RFC 3550 §6.4.2: RR with |rc| report blocks. */
static void add_rr(struct cpd *c, uint8_t rc) {
  size_t at = begin(c, rc, 201);
  word(c, SENDER);
  for (uint8_t i = 0; i < rc; i++) {
    for (int w = 0; w < 6; w++) {
      word(c, MEDIA + (uint32_t)w);
    }
  }
  end_packet(c, at);
}

/* RFC 3550 §6.5: SDES with one chunk holding CNAME "dcmf@test". */
static void add_sdes(struct cpd *c) {
  size_t at = begin(c, 1, 202);
  word(c, SENDER);
  static const char cname[] = "dcmf@test";
  c->b[c->len++] = 1; /* CNAME */
  c->b[c->len++] = (uint8_t)(sizeof(cname) - 1);
  memcpy(c->b + c->len, cname, sizeof(cname) - 1);
  c->len += sizeof(cname) - 1;
  do { /* the null item ends the chunk, then pad to a word */
    c->b[c->len++] = 0;
  } while (c->len % 4 != 0);
  end_packet(c, at);
}

/* RFC 3550 §6.6: BYE from SENDER. */
static void add_bye(struct cpd *c) {
  size_t at = begin(c, 1, 203);
  word(c, SENDER);
  end_packet(c, at);
}

/* RFC 4585 §6.3.1: PLI (PSFB, FMT 1), no FCI. */
static void add_pli(struct cpd *c) {
  size_t at = begin(c, 1, 206);
  word(c, SENDER);
  word(c, MEDIA);
  end_packet(c, at);
}

/* RFC 4585 §6.2.1: Generic NACK (RTPFB, FMT 1) for seq 1000 and 1002. */
static void add_nack(struct cpd *c) {
  size_t at = begin(c, 1, 205);
  word(c, SENDER);
  word(c, MEDIA);
  word(c, 1000u << 16 | 0x0002u); /* PID 1000, BLP: 1002 lost too */
  end_packet(c, at);
}

/* REMB (PSFB, FMT 15, "REMB", 1 SSRC, 1.5 Mbit/s). */
static void add_remb(struct cpd *c) {
  size_t at = begin(c, 15, 206);
  word(c, SENDER);
  word(c, 0);           /* media source: 0 */
  word(c, 0x52454d42u); /* "REMB" */
  /* num SSRC 1, exponent 4, mantissa 93750: 93750 << 4 = 1.5 M */
  word(c, 1u << 24 | 4u << 18 | 93750u);
  word(c, MEDIA);
  end_packet(c, at);
}

static int valid(const struct cpd *c) {
  return dcmf_rtcp_validate(c->b, c->len, 0) == 0;
}

static int valid_rsize(const struct cpd *c) {
  return dcmf_rtcp_validate(c->b, c->len, DCMF_RTCP_REDUCED_SIZE) == 0;
}

/* The types of the compound's packets, in order, as "200,202". */
static void types(const uint8_t *b, size_t len, char *out, size_t cap) {
  struct dcmf_rtcp_iter it;
  struct dcmf_rtcp_packet p;
  dcmf_rtcp_iter_init(&it, b, len);
  out[0] = '\0';
  int rv;
  while ((rv = dcmf_rtcp_next(&it, &p)) == 1) {
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s%u", n ? "," : "", p.type);
  }
  assert_int_equal(rv, 0);
}

static void test_sr_sdes(void **state) {
  (void)state;
  struct cpd c = {0};
  add_sr(&c, 1);
  add_sdes(&c);
  assert_int_equal(c.len, 52 + 20);
  assert_true(valid(&c));
  assert_true(valid_rsize(&c));
  char t[64];
  types(c.b, c.len, t, sizeof(t));
  assert_string_equal(t, "200,202");
  uint32_t ssrc = 0;
  assert_int_equal(dcmf_rtcp_sender_ssrc(c.b, c.len, &ssrc), 0);
  assert_int_equal(ssrc, SENDER);
  /* nothing to strip: unchanged */
  struct cpd before = c;
  size_t removed = 9;
  assert_int_equal(dcmf_rtcp_strip_feedback(c.b, c.len, &removed), c.len);
  assert_int_equal(removed, 0);
  assert_memory_equal(c.b, before.b, c.len);
  /* SR, SDES and BYE: a sender leaving */
  add_bye(&c);
  assert_true(valid(&c));
  types(c.b, c.len, t, sizeof(t));
  assert_string_equal(t, "200,202,203");
}

static void test_rr_pli(void **state) {
  (void)state;
  struct cpd c = {0};
  add_rr(&c, 0); /* a receiver with nothing to report yet (libwebrtc) */
  add_sdes(&c);
  add_pli(&c);
  assert_true(valid(&c));
  struct cpd sdes_only = {0};
  add_sdes(&sdes_only);
  size_t removed = 0;
  size_t n = dcmf_rtcp_strip_feedback(c.b, c.len, &removed);
  assert_int_equal(removed, 1);
  assert_int_equal(n, 8 + sdes_only.len);
  char t[64];
  types(c.b, n, t, sizeof(t));
  assert_string_equal(t, "201,202");
  assert_int_equal(dcmf_rtcp_validate(c.b, n, 0), 0);
  /* the SDES came forward whole */
  assert_memory_equal(c.b + 8, sdes_only.b, sdes_only.len);
}

static void test_sr_nack_remb(void **state) {
  (void)state;
  struct cpd c = {0};
  add_sr(&c, 2);
  add_nack(&c);
  add_sdes(&c);
  add_remb(&c);
  assert_true(valid(&c));
  char t[64];
  types(c.b, c.len, t, sizeof(t));
  assert_string_equal(t, "200,205,202,206");
  struct cpd want = {0};
  add_sr(&want, 2);
  add_sdes(&want);
  size_t removed = 0;
  size_t n = dcmf_rtcp_strip_feedback(c.b, c.len, &removed);
  assert_int_equal(removed, 2);
  assert_int_equal(n, want.len);
  assert_memory_equal(c.b, want.b, want.len);
  /* idempotent */
  assert_int_equal(dcmf_rtcp_strip_feedback(c.b, n, &removed), n);
  assert_int_equal(removed, 0);
  assert_memory_equal(c.b, want.b, want.len);
}

static void test_only_feedback(void **state) {
  (void)state;
  /* RFC 5506 reduced-size: a lone PLI, a NACK with a REMB */
  struct cpd c = {0};
  add_pli(&c);
  assert_false(valid(&c)); /* RFC 3550 A.2: must start with SR or RR */
  assert_true(valid_rsize(&c));
  uint32_t ssrc = 0;
  assert_int_equal(dcmf_rtcp_sender_ssrc(c.b, c.len, &ssrc), 0);
  assert_int_equal(ssrc, SENDER);
  size_t removed = 0;
  assert_int_equal(dcmf_rtcp_strip_feedback(c.b, c.len, &removed), 0);
  assert_int_equal(removed, 1);
  struct cpd d = {0};
  add_nack(&d);
  add_remb(&d);
  assert_true(valid_rsize(&d));
  assert_int_equal(dcmf_rtcp_strip_feedback(d.b, d.len, &removed), 0);
  assert_int_equal(removed, 2);
  /* a reduced-size rest without a report goes nowhere toward AVP */
  struct cpd e = {0};
  add_pli(&e);
  add_sdes(&e);
  assert_true(valid_rsize(&e));
  assert_int_equal(dcmf_rtcp_strip_feedback(e.b, e.len, &removed), 0);
  assert_int_equal(removed, 1);
}

static void test_bad_lengths(void **state) {
  (void)state;
  struct cpd c = {0};
  add_sr(&c, 1);
  add_sdes(&c);
  /* one word more than the packets say */
  struct cpd x = c;
  x.len += 4;
  assert_false(valid_rsize(&x));
  /* the SDES length one word too long, then too short */
  x = c;
  x.b[52 + 3]++;
  assert_false(valid_rsize(&x));
  x = c;
  x.b[52 + 3]--;
  assert_false(valid_rsize(&x));
  /* not a whole number of words */
  x = c;
  x.len -= 1;
  assert_false(valid_rsize(&x));
  /* an SR whose RC says two blocks but holds one */
  x = c;
  x.b[0] = (uint8_t)(0x80 | 2);
  assert_false(valid_rsize(&x));
  /* an RR with RC 1 and no block */
  struct cpd r = {0};
  add_rr(&r, 0);
  r.b[0] |= 1;
  assert_false(valid_rsize(&r));
  /* a PLI without its media source */
  struct cpd f = {0};
  add_rr(&f, 0);
  size_t at = begin(&f, 1, 206);
  word(&f, SENDER);
  end_packet(&f, at);
  assert_false(valid(&f));
  /* a BYE naming two sources and holding one */
  struct cpd b = {0};
  add_rr(&b, 0);
  at = begin(&b, 2, 203);
  word(&b, SENDER);
  end_packet(&b, at);
  assert_false(valid(&b));
  /* empty */
  assert_int_equal(dcmf_rtcp_validate(c.b, 0, 0), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_rtcp_validate(NULL, 8, 0), DCMF_ERR_MALFORMED);
}

static void test_padding(void **state) {
  (void)state;
  /* RR, then SDES padded by 4 bytes at the end: valid */
  struct cpd c = {0};
  add_rr(&c, 0);
  size_t at = begin(&c, 1, 202);
  word(&c, SENDER);
  word(&c, 0);           /* an empty chunk end, padded */
  word(&c, 0x00000004u); /* padding, count 4 */
  end_packet(&c, at);
  c.b[at] |= 0x20;
  assert_true(valid(&c));
  /* padding in the middle: the padded RR first */
  struct cpd m = {0};
  add_rr(&m, 0);
  word(&m, 0x00000004u);
  end_packet(&m, 0);
  m.b[0] |= 0x20;
  assert_true(valid(&m)); /* alone it is the last packet */
  add_sdes(&m);
  assert_false(valid(&m));
  assert_false(valid_rsize(&m));
  /* a padding count of 0, or past the header */
  struct cpd z = c;
  z.b[z.len - 1] = 0;
  assert_false(valid(&z));
  z = c;
  z.b[z.len - 1] = 13; /* the SDES body is 12 bytes */
  assert_false(valid(&z));
  /* a padded SR whose padding eats into its sender info */
  struct cpd s = {0};
  add_sr(&s, 0);
  s.b[s.len - 1] = 8;
  s.b[0] |= 0x20;
  assert_false(valid(&s));
  /* a padded PLI last is removed whole; the rest keeps no padding */
  struct cpd p = {0};
  add_rr(&p, 0);
  at = begin(&p, 1, 206);
  word(&p, SENDER);
  word(&p, MEDIA);
  word(&p, 0x00000004u);
  end_packet(&p, at);
  p.b[at] |= 0x20;
  assert_true(valid(&p));
  size_t removed = 0;
  size_t n = dcmf_rtcp_strip_feedback(p.b, p.len, &removed);
  assert_int_equal(n, 8);
  assert_int_equal(removed, 1);
  assert_int_equal(p.b[0] & 0x20, 0);
  assert_int_equal(dcmf_rtcp_validate(p.b, n, 0), 0);
  /* a padded SDES after a removed NACK stays last with its padding */
  struct cpd q = {0};
  add_rr(&q, 0);
  add_nack(&q);
  at = begin(&q, 1, 202);
  word(&q, SENDER);
  word(&q, 0);
  word(&q, 0x00000004u);
  end_packet(&q, at);
  q.b[at] |= 0x20;
  assert_true(valid(&q));
  n = dcmf_rtcp_strip_feedback(q.b, q.len, &removed);
  assert_int_equal(n, 8 + 16);
  assert_int_equal(q.b[8] & 0x20, 0x20);
  assert_int_equal(dcmf_rtcp_validate(q.b, n, 0), 0);
}

static void test_version_and_type(void **state) {
  (void)state;
  struct cpd c = {0};
  add_sr(&c, 0);
  add_sdes(&c);
  struct cpd v = c;
  v.b[0] = (uint8_t)((v.b[0] & 0x3f) | 0x40); /* version 1 */
  assert_false(valid_rsize(&v));
  v = c;
  v.b[28] = (uint8_t)((v.b[28] & 0x3f) | 0x40); /* the SDES at version 1 */
  assert_false(valid_rsize(&v));
  v = c;
  v.b[0] &= 0x3f; /* version 0 */
  assert_false(valid_rsize(&v));
  /* RTP on a muxed port is not RTCP: PT 111 where the type goes */
  v = c;
  v.b[29] = 111;
  assert_false(valid_rsize(&v));
  /* a type of the RTCP range we do not know is taken as its length says */
  v = c;
  v.b[29] = 210;
  assert_true(valid(&v));
  /* a compound starting with SDES: only reduced-size */
  struct cpd s = {0};
  add_sdes(&s);
  assert_false(valid(&s));
  assert_true(valid_rsize(&s));
}

static void test_truncated(void **state) {
  (void)state;
  struct cpd c = {0};
  add_sr(&c, 1);
  add_sdes(&c);
  add_remb(&c);
  assert_true(valid(&c));
  /* every shorter length fails (a cut never lands on a whole compound
   * here: the lengths say otherwise), and the walk stops on the cut */
  for (size_t n = 0; n < c.len; n++) {
    if (n == 52 || n == 72) {
      assert_true(dcmf_rtcp_validate(c.b, n, 0) == 0); /* whole packets */
      continue;
    }
    assert_int_equal(dcmf_rtcp_validate(c.b, n, DCMF_RTCP_REDUCED_SIZE),
                     DCMF_ERR_MALFORMED);
  }
  struct dcmf_rtcp_iter it;
  struct dcmf_rtcp_packet p;
  dcmf_rtcp_iter_init(&it, c.b, 60);
  assert_int_equal(dcmf_rtcp_next(&it, &p), 1);
  assert_int_equal(p.len, 52);
  assert_int_equal(dcmf_rtcp_next(&it, &p), DCMF_ERR_MALFORMED);
  dcmf_rtcp_iter_init(&it, c.b, 2);
  assert_int_equal(dcmf_rtcp_next(&it, &p), DCMF_ERR_MALFORMED);
  /* sender SSRC needs 8 bytes of a first packet that names one */
  uint32_t ssrc;
  assert_int_equal(dcmf_rtcp_sender_ssrc(c.b, 4, &ssrc), DCMF_ERR_MALFORMED);
  struct cpd e = {0};
  size_t at = begin(&e, 0, 203); /* BYE with SC 0 */
  end_packet(&e, at);
  add_sdes(&e);
  assert_true(valid_rsize(&e));
  assert_int_equal(dcmf_rtcp_sender_ssrc(e.b, e.len, &ssrc),
                   DCMF_ERR_MALFORMED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sr_sdes),
      cmocka_unit_test(test_rr_pli),
      cmocka_unit_test(test_sr_nack_remb),
      cmocka_unit_test(test_only_feedback),
      cmocka_unit_test(test_bad_lengths),
      cmocka_unit_test(test_padding),
      cmocka_unit_test(test_version_and_type),
      cmocka_unit_test(test_truncated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
