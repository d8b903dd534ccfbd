/*
 * test_srtp.c - unit tests for the SRTP engine (dcmf/proto/srtp.h): the
 * profile table against OpenSSL's, two engines of opposite DTLS roles
 * from the same material for every profile, a plain libsrtp2 session
 * built here from the RFC 5764 §4.2 key split as an independent peer,
 * replay and tamper refusals with their counters, a new SSRC mid-stream,
 * re-key across a sequence number wrap, and garbage input.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ssl.h>
#include <srtp2/srtp.h>

#include "errors.h"
#include "srtp.h"
#include "srtp_backend.h"
#include "srtp_plain.h"

#define BUF_LEN 1600
#define SSRC_A 0x11223344u
#define SSRC_B 0xcafe0001u

static const enum dcmf_srtp_profile all_profiles[] = {
    DCMF_SRTP_AEAD_AES_256_GCM, DCMF_SRTP_AEAD_AES_128_GCM,
    DCMF_SRTP_AES128_CM_SHA1_80, DCMF_SRTP_AES128_CM_SHA1_32};
#define N_ALL (sizeof(all_profiles) / sizeof(all_profiles[0]))

/* A packet buffer aligned as the engine requires. */
struct pkt {
  _Alignas(4) uint8_t b[BUF_LEN];
  size_t len;
};

static int group_setup(void **state) {
  (void)state;
  return dcmf_srtp_lib_init();
}

/* Exporter output stand-in: distinct bytes, different per |seed|. */
static void material(uint8_t *m, size_t len, uint8_t seed) {
  for (size_t i = 0; i < len; i++) {
    m[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
  }
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* An RTP packet (PT 111) with |n| payload bytes derived from |seq|. */
static void make_rtp(struct pkt *p, uint32_t ssrc, uint16_t seq, size_t n) {
  memset(p->b, 0, sizeof(p->b));
  p->b[0] = 0x80;
  p->b[1] = 111;
  p->b[2] = (uint8_t)(seq >> 8);
  p->b[3] = (uint8_t)seq;
  put32(p->b + 4, (uint32_t)seq * 960u);
  put32(p->b + 8, ssrc);
  for (size_t i = 0; i < n; i++) {
    p->b[12 + i] = (uint8_t)(seq + i);
  }
  p->len = 12 + n;
}

/* An RTCP sender report (28 bytes) from |ssrc|. */
static void make_rtcp(struct pkt *p, uint32_t ssrc, uint32_t mark) {
  memset(p->b, 0, sizeof(p->b));
  p->b[0] = 0x80;
  p->b[1] = 200;
  p->b[3] = 6;
  put32(p->b + 4, ssrc);
  put32(p->b + 8, mark);
  put32(p->b + 16, mark * 3u);
  p->len = 28;
}

static void pair(enum dcmf_srtp_profile prof, uint8_t seed,
                 struct dcmf_srtp **client, struct dcmf_srtp **server) {
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  size_t len = dcmf_srtp_profile_find((uint16_t)prof)->export_len;
  material(m, len, seed);
  assert_int_equal(test_srtp_new(client, prof, m, len, DCMF_SRTP_CLIENT), 0);
  assert_int_equal(test_srtp_new(server, prof, m, len, DCMF_SRTP_SERVER), 0);
}

/* Protects |p| on |from| and unprotects it on |to|; checks that the
 * wire form differs and that the plain packet comes back. */
static void rtp_through(struct dcmf_srtp *from, struct dcmf_srtp *to,
                        uint32_t ssrc, uint16_t seq) {
  struct pkt p, orig;
  size_t n = 0;
  const struct dcmf_srtp_profile_info *info =
      dcmf_srtp_profile_find((uint16_t)dcmf_srtp_profile(from));
  make_rtp(&p, ssrc, seq, 160);
  orig = p;
  assert_int_equal(dcmf_srtp_protect_rtp(from, p.b, p.len, BUF_LEN, &n), 0);
  assert_int_equal(n, orig.len + info->rtp_tag_len);
  assert_memory_equal(p.b, orig.b, 12); /* the header stays clear */
  assert_memory_not_equal(p.b + 12, orig.b + 12, 160);
  assert_int_equal(dcmf_srtp_unprotect_rtp(to, p.b, n, &n), 0);
  assert_int_equal(n, orig.len);
  assert_memory_equal(p.b, orig.b, orig.len);
}

/* As rtp_through for an SR; returns the SRTCP index word sent. */
static uint32_t rtcp_through(struct dcmf_srtp *from, struct dcmf_srtp *to,
                             uint32_t ssrc, uint32_t mark) {
  struct pkt p, orig;
  size_t n = 0;
  const struct dcmf_srtp_profile_info *info =
      dcmf_srtp_profile_find((uint16_t)dcmf_srtp_profile(from));
  make_rtcp(&p, ssrc, mark);
  orig = p;
  assert_int_equal(dcmf_srtp_protect_rtcp(from, p.b, p.len, BUF_LEN, &n), 0);
  assert_int_equal(n, orig.len + 4 + info->rtcp_tag_len);
  assert_memory_not_equal(p.b + 8, orig.b + 8, 20); /* encrypted: E set */
  /* The E flag and index follow the tag with AEAD (RFC 7714 §9.1) and
   * precede it otherwise (RFC 3711 §3.4). */
  uint32_t word = get32(p.b + (info->rtp_tag_len == 16 ? n - 4 : orig.len));
  assert_true(word & 0x80000000u);
  assert_int_equal(dcmf_srtp_unprotect_rtcp(to, p.b, n, &n), 0);
  assert_int_equal(n, orig.len);
  assert_memory_equal(p.b, orig.b, orig.len);
  return word & 0x7fffffffu;
}

static void test_profile_table(void **state) {
  (void)state;
  assert_string_equal(dcmf_srtp_profile_list(),
                      "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:"
                      "SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32");
  for (size_t i = 0; i < N_ALL; i++) {
    const struct dcmf_srtp_profile_info *p =
        dcmf_srtp_profile_find((uint16_t)all_profiles[i]);
    assert_non_null(p);
    assert_ptr_equal(dcmf_srtp_profile_by_name(p->name), p);
    assert_int_equal(p->export_len, 2 * (p->key_len + p->salt_len));
    assert_true(p->export_len <= DCMF_SRTP_EXPORT_MAX);
    /* libsrtp2's own idea of the lengths agrees with ours. */
    srtp_profile_t lp = (srtp_profile_t)p->profile;
    assert_int_equal(srtp_profile_get_master_key_length(lp), p->key_len);
    assert_int_equal(srtp_profile_get_master_salt_length(lp), p->salt_len);
  }
  assert_null(dcmf_srtp_profile_find(0x0003));
  assert_null(dcmf_srtp_profile_find(0x0005)); /* NULL cipher: refused */
  assert_null(dcmf_srtp_profile_by_name("srtp_aes128_cm_sha1_80"));
  assert_null(dcmf_srtp_profile_by_name(NULL));

  /* OpenSSL takes the list, and its ids for the names are ours. */
  SSL_CTX *ctx = SSL_CTX_new(DTLS_method());
  assert_non_null(ctx);
  assert_int_equal(SSL_CTX_set_tlsext_use_srtp(ctx, dcmf_srtp_profile_list()),
                   0);
  SSL *ssl = SSL_new(ctx);
  assert_non_null(ssl);
  STACK_OF(SRTP_PROTECTION_PROFILE) *sk = SSL_get_srtp_profiles(ssl);
  assert_int_equal(sk_SRTP_PROTECTION_PROFILE_num(sk), N_ALL);
  for (int i = 0; i < sk_SRTP_PROTECTION_PROFILE_num(sk); i++) {
    const SRTP_PROTECTION_PROFILE *sp = sk_SRTP_PROTECTION_PROFILE_value(sk, i);
    const struct dcmf_srtp_profile_info *p =
        dcmf_srtp_profile_by_name(sp->name);
    assert_non_null(p);
    assert_int_equal(p->profile, sp->id);
    assert_int_equal(p->profile, all_profiles[i]); /* order kept */
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
}

/* Both roles, both packet kinds, every profile; the SRTCP index is ours,
 * per SSRC, and counts up by one from 1. */
static void test_pair_every_profile(void **state) {
  (void)state;
  for (size_t i = 0; i < N_ALL; i++) {
    struct dcmf_srtp *c, *s;
    pair(all_profiles[i], 1, &c, &s);
    for (uint16_t seq = 1000; seq < 1005; seq++) {
      rtp_through(c, s, SSRC_A, seq);
      rtp_through(s, c, SSRC_B, (uint16_t)(seq + 7));
    }
    for (uint32_t k = 1; k <= 3; k++) { /* libsrtp2 starts at 1 */
      assert_int_equal(rtcp_through(c, s, SSRC_A, k), k);
      assert_int_equal(rtcp_through(s, c, SSRC_B, k), k);
    }
    const struct dcmf_srtp_stats *out = dcmf_srtp_stats(c, DCMF_SRTP_OUT);
    const struct dcmf_srtp_stats *in = dcmf_srtp_stats(s, DCMF_SRTP_IN);
    assert_int_equal(out->rtp, 5);
    assert_int_equal(out->rtcp, 3);
    assert_int_equal(in->rtp, 5);
    assert_int_equal(in->rtcp, 3);
    assert_int_equal(in->auth + in->replay + in->malformed + in->failed, 0);
    dcmf_srtp_del(c);
    dcmf_srtp_del(s);
  }
}

/* A plain libsrtp2 session keyed from |m| with RFC 5764 §4.2's layout
 * (srtp_plain.h), as a peer independent of the engine's split. */
static srtp_t plain_session(enum dcmf_srtp_profile prof, const uint8_t *m,
                            int client_side, srtp_ssrc_type_t type,
                            uint32_t ssrc) {
  return test_plain_srtp((uint16_t)prof, m, client_side, type, ssrc);
}

static void test_plain_libsrtp_peer(void **state) {
  (void)state;
  for (size_t i = 0; i < N_ALL; i++) {
    enum dcmf_srtp_profile prof = all_profiles[i];
    uint8_t m[DCMF_SRTP_EXPORT_MAX];
    size_t len = dcmf_srtp_profile_find((uint16_t)prof)->export_len;
    material(m, len, 9);
    struct dcmf_srtp *e;
    assert_int_equal(test_srtp_new(&e, prof, m, len, DCMF_SRTP_SERVER), 0);
    /* The engine is the server: it protects with the server's key. */
    srtp_t rx = plain_session(prof, m, 0, ssrc_any_inbound, 0);
    srtp_t tx = plain_session(prof, m, 1, ssrc_any_outbound, 0);
    struct pkt p, orig;
    size_t n;
    int ln;
    make_rtp(&p, SSRC_A, 77, 100);
    orig = p;
    assert_int_equal(dcmf_srtp_protect_rtp(e, p.b, p.len, BUF_LEN, &n), 0);
    ln = (int)n;
    assert_int_equal(srtp_unprotect(rx, p.b, &ln), srtp_err_status_ok);
    assert_int_equal(ln, orig.len);
    assert_memory_equal(p.b, orig.b, orig.len);
    make_rtcp(&p, SSRC_A, 5);
    orig = p;
    assert_int_equal(dcmf_srtp_protect_rtcp(e, p.b, p.len, BUF_LEN, &n), 0);
    ln = (int)n;
    assert_int_equal(srtp_unprotect_rtcp(rx, p.b, &ln), srtp_err_status_ok);
    assert_memory_equal(p.b, orig.b, orig.len);
    /* And the other way: the client's key, which the engine must pick
     * for unprotect. */
    make_rtp(&p, SSRC_B, 4000, 60);
    orig = p;
    ln = (int)p.len;
    assert_int_equal(srtp_protect(tx, p.b, &ln), srtp_err_status_ok);
    assert_int_equal(dcmf_srtp_unprotect_rtp(e, p.b, (size_t)ln, &n), 0);
    assert_int_equal(n, orig.len);
    assert_memory_equal(p.b, orig.b, orig.len);
    make_rtcp(&p, SSRC_B, 6);
    orig = p;
    ln = (int)p.len;
    assert_int_equal(srtp_protect_rtcp(tx, p.b, &ln), srtp_err_status_ok);
    assert_int_equal(dcmf_srtp_unprotect_rtcp(e, p.b, (size_t)ln, &n), 0);
    assert_memory_equal(p.b, orig.b, orig.len);
    srtp_dealloc(rx);
    srtp_dealloc(tx);
    dcmf_srtp_del(e);
  }
}

static void test_replay_refused(void **state) {
  (void)state;
  struct dcmf_srtp *c, *s;
  pair(DCMF_SRTP_AES128_CM_SHA1_80, 2, &c, &s);
  struct pkt p, copy;
  size_t n;
  size_t wire;
  make_rtp(&p, SSRC_A, 10, 50);
  assert_int_equal(dcmf_srtp_protect_rtp(c, p.b, p.len, BUF_LEN, &wire), 0);
  copy = p;
  assert_int_equal(dcmf_srtp_unprotect_rtp(s, p.b, wire, &n), 0);
  assert_int_equal(dcmf_srtp_unprotect_rtp(s, copy.b, wire, &n),
                   DCMF_ERR_REPLAY);
  make_rtcp(&p, SSRC_A, 1);
  assert_int_equal(dcmf_srtp_protect_rtcp(c, p.b, p.len, BUF_LEN, &wire), 0);
  copy = p;
  assert_int_equal(dcmf_srtp_unprotect_rtcp(s, p.b, wire, &n), 0);
  assert_int_equal(dcmf_srtp_unprotect_rtcp(s, copy.b, wire, &n),
                   DCMF_ERR_REPLAY);
  assert_int_equal(dcmf_srtp_stats(s, DCMF_SRTP_IN)->replay, 2);
  /* Outbound: a sequence number is protected once only. */
  make_rtp(&p, SSRC_A, 10, 50);
  assert_int_equal(dcmf_srtp_protect_rtp(c, p.b, p.len, BUF_LEN, &n),
                   DCMF_ERR_REPLAY);
  assert_int_equal(dcmf_srtp_stats(c, DCMF_SRTP_OUT)->replay, 1);
  /* Older than the window (1024 packets) is refused too. */
  for (uint16_t seq = 11; seq < 11 + 1100; seq++) {
    rtp_through(c, s, SSRC_A, seq);
  }
  make_rtp(&p, SSRC_A, 20, 50);
  assert_int_equal(dcmf_srtp_protect_rtp(c, p.b, p.len, BUF_LEN, &n),
                   DCMF_ERR_REPLAY);
  dcmf_srtp_del(c);
  dcmf_srtp_del(s);
}

/* A flipped bit in the tag or in the payload fails authentication, for
 * every profile (AEAD failures included). */
static void test_tamper_refused(void **state) {
  (void)state;
  for (size_t i = 0; i < N_ALL; i++) {
    struct dcmf_srtp *c, *s;
    pair(all_profiles[i], 3, &c, &s);
    struct pkt p;
    size_t n, wire;
    for (int where = 0; where < 2; where++) {
      make_rtp(&p, SSRC_A, (uint16_t)(100 + where), 80);
      assert_int_equal(dcmf_srtp_protect_rtp(c, p.b, p.len, BUF_LEN, &wire), 0);
      p.b[where == 0 ? wire - 1 : 20] ^= 0x01;
      assert_int_equal(dcmf_srtp_unprotect_rtp(s, p.b, wire, &n),
                       DCMF_ERR_AUTH);
      make_rtcp(&p, SSRC_A, 9);
      assert_int_equal(dcmf_srtp_protect_rtcp(c, p.b, p.len, BUF_LEN, &wire),
                       0);
      p.b[where == 0 ? wire - 1 : 12] ^= 0x80;
      assert_int_equal(dcmf_srtp_unprotect_rtcp(s, p.b, wire, &n),
                       DCMF_ERR_AUTH);
    }
    const struct dcmf_srtp_stats *in = dcmf_srtp_stats(s, DCMF_SRTP_IN);
    assert_int_equal(in->auth, 4);
    assert_int_equal(in->rtp + in->rtcp, 0);
    /* The stream was never made; the next good packet still passes. */
    uint32_t roc;
    assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_A, &roc),
                     DCMF_ERR_NOT_FOUND);
    rtp_through(c, s, SSRC_A, 200);
    assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_A, &roc), 0);
    dcmf_srtp_del(c);
    dcmf_srtp_del(s);
  }
}

static void test_new_ssrc_mid_stream(void **state) {
  (void)state;
  struct dcmf_srtp *c, *s;
  uint32_t roc;
  pair(DCMF_SRTP_AEAD_AES_128_GCM, 4, &c, &s);
  assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_A, &roc),
                   DCMF_ERR_NOT_FOUND);
  for (uint16_t seq = 0; seq < 20; seq++) {
    rtp_through(c, s, SSRC_A, seq);
    if (seq == 10) { /* a second source appears */
      assert_int_equal(dcmf_srtp_roc(c, DCMF_SRTP_OUT, SSRC_B, &roc),
                       DCMF_ERR_NOT_FOUND);
    }
    if (seq >= 10) {
      rtp_through(c, s, SSRC_B, (uint16_t)(30000 + seq));
    }
  }
  assert_int_equal(rtcp_through(c, s, SSRC_A, 1), 1);
  assert_int_equal(rtcp_through(c, s, SSRC_A, 2), 2);
  assert_int_equal(rtcp_through(c, s, SSRC_B, 1), 1); /* B's own index */
  assert_int_equal(dcmf_srtp_roc(c, DCMF_SRTP_OUT, SSRC_B, &roc), 0);
  assert_int_equal(roc, 0);
  assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_B, &roc), 0);
  assert_int_equal(roc, 0);
  assert_int_equal(dcmf_srtp_stats(s, DCMF_SRTP_IN)->rtp, 30);
  dcmf_srtp_del(c);
  dcmf_srtp_del(s);
}

/* A stream wraps its sequence number (ROC 1), then both sides re-key to
 * new material and another profile: the stream keeps ROC 1 (its packets
 * would not authenticate otherwise, the ROC being part of the index) and
 * its SRTCP index goes on; a new SSRC starts at ROC 0 and a fresh SRTCP
 * count (index 1 first, as libsrtp2 numbers). */
static void test_rekey_keeps_roc(void **state) {
  (void)state;
  struct dcmf_srtp *c, *s;
  uint32_t roc;
  pair(DCMF_SRTP_AES128_CM_SHA1_80, 5, &c, &s);
  uint16_t seq = 65500;
  for (int i = 0; i < 100; i++) {
    rtp_through(c, s, SSRC_A, seq++);
  }
  assert_int_equal(seq, 64); /* wrapped */
  assert_int_equal(rtcp_through(c, s, SSRC_A, 1), 1);
  assert_int_equal(rtcp_through(c, s, SSRC_A, 2), 2);
  assert_int_equal(dcmf_srtp_roc(c, DCMF_SRTP_OUT, SSRC_A, &roc), 0);
  assert_int_equal(roc, 1);
  assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_A, &roc), 0);
  assert_int_equal(roc, 1);

  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  enum dcmf_srtp_profile next = DCMF_SRTP_AEAD_AES_128_GCM;
  size_t len = dcmf_srtp_profile_find((uint16_t)next)->export_len;
  material(m, len, 6);
  assert_int_equal(dcmf_srtp_rekey(c, next, m, len, DCMF_SRTP_CLIENT), 0);
  assert_int_equal(dcmf_srtp_rekey(s, next, m, len, DCMF_SRTP_SERVER), 0);
  assert_int_equal(dcmf_srtp_profile(c), next);
  assert_int_equal(dcmf_srtp_roc(c, DCMF_SRTP_OUT, SSRC_A, &roc), 0);
  assert_int_equal(roc, 1);
  assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_A, &roc), 0);
  assert_int_equal(roc, 1);
  /* On the wire: a plain libsrtp2 receiver with the new keys opens the
   * next packet only when told ROC 1, not 0. */
  struct pkt p, copy;
  size_t n;
  int ln;
  make_rtp(&p, SSRC_A, seq++, 40);
  assert_int_equal(dcmf_srtp_protect_rtp(c, p.b, p.len, BUF_LEN, &n), 0);
  copy = p;
  for (uint32_t r = 0; r < 2; r++) {
    srtp_t rx = plain_session(next, m, 1, ssrc_specific, SSRC_A);
    assert_int_equal(srtp_set_stream_roc(rx, SSRC_A, r), srtp_err_status_ok);
    p = copy;
    ln = (int)n;
    assert_int_equal(srtp_unprotect(rx, p.b, &ln) == srtp_err_status_ok, r);
    srtp_dealloc(rx);
  }
  for (int i = 0; i < 10; i++) {
    rtp_through(c, s, SSRC_A, seq++);
  }
  assert_int_equal(rtcp_through(c, s, SSRC_A, 3), 3); /* not reset */
  rtp_through(c, s, SSRC_B, 65000);
  assert_int_equal(rtcp_through(c, s, SSRC_B, 1), 1); /* a fresh count */
  assert_int_equal(dcmf_srtp_roc(c, DCMF_SRTP_OUT, SSRC_B, &roc), 0);
  assert_int_equal(roc, 0);
  assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_B, &roc), 0);
  assert_int_equal(roc, 0);
  /* The stream is still at ROC 1 in the reverse direction's view too:
   * a receiver that had reset it would fail here. */
  assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_A, &roc), 0);
  assert_int_equal(roc, 1);

  /* Bad re-key arguments leave the engine as it was. */
  assert_int_equal(dcmf_srtp_rekey(c, next, m, len - 1, DCMF_SRTP_CLIENT),
                   DCMF_ERR_INVALID);
  assert_int_equal(
      dcmf_srtp_rekey(c, (enum dcmf_srtp_profile)3, m, len, DCMF_SRTP_CLIENT),
      DCMF_ERR_INVALID);
  rtp_through(c, s, SSRC_A, seq++);
  dcmf_srtp_del(c);
  dcmf_srtp_del(s);
}

static uint32_t lcg(uint32_t *x);

/* Re-keys |c| and |s| to material |seed| under their profile. */
static void rekey_pair(struct dcmf_srtp *c, struct dcmf_srtp *s, uint8_t seed) {
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  enum dcmf_srtp_profile prof = dcmf_srtp_profile(c);
  size_t len = dcmf_srtp_profile_find((uint16_t)prof)->export_len;
  material(m, len, seed);
  assert_int_equal(dcmf_srtp_rekey(c, prof, m, len, DCMF_SRTP_CLIENT), 0);
  assert_int_equal(dcmf_srtp_rekey(s, prof, m, len, DCMF_SRTP_SERVER), 0);
}

/* Packets protected now and delivered later (the fallback test). */
#define HELD 40
static struct pkt held[HELD];
static size_t held_len[HELD];

static void hold(struct dcmf_srtp *c, int i, uint32_t ssrc, uint16_t seq) {
  make_rtp(&held[i], ssrc, seq, 60);
  assert_int_equal(
      dcmf_srtp_protect_rtp(c, held[i].b, held[i].len, BUF_LEN, &held_len[i]),
      0);
}

/* Unprotects held packet |i| on |s|; returns the result. */
static int deliver(struct dcmf_srtp *s, int i) {
  struct pkt p = held[i];
  size_t n = 0;
  int rc = dcmf_srtp_unprotect_rtp(s, p.b, held_len[i], &n);
  if (rc == 0) {
    struct pkt want;
    make_rtp(&want, get32(p.b + 8), (uint16_t)(p.b[2] << 8 | p.b[3]), 60);
    assert_int_equal(n, want.len);
    assert_memory_equal(p.b, want.b, n);
  }
  return rc;
}

/* The fallback of a re-key (srtp.h): the sender's packets protected with
 * the old keys, still in flight when the receiver switched, pass under
 * the previous keys and are counted, interleaved with new-key packets
 * across a sequence number wrap (the ROC moves to 1 through old-key
 * packets and new-key ones go on from it); replays of either are
 * refused; a stranger's bytes change nothing; after drop_previous an
 * old-key packet is refused; SRTCP is not tried under the previous keys;
 * a re-key to another profile keeps no fallback. */
static void test_fallback(void **state) {
  (void)state;
  for (size_t pi = 0; pi < N_ALL; pi++) {
    struct dcmf_srtp *c, *s;
    uint32_t roc;
    pair(all_profiles[pi], (uint8_t)(30 + pi), &c, &s);
    assert_false(dcmf_srtp_has_previous(s));
    assert_int_equal(dcmf_srtp_drop_previous(s), DCMF_ERR_NOT_FOUND);
    uint16_t seq = 65500;
    for (int i = 0; i < 20; i++) {
      rtp_through(c, s, SSRC_A, seq++);
    }
    /* In flight under the old keys: 65520..65535, 0..15 (held 0..31). */
    for (int i = 0; i < 32; i++) {
      hold(c, i, SSRC_A, seq++);
    }
    struct pkt rtcp;
    size_t rtcp_len;
    make_rtcp(&rtcp, SSRC_A, 9);
    assert_int_equal(
        dcmf_srtp_protect_rtcp(c, rtcp.b, rtcp.len, BUF_LEN, &rtcp_len), 0);
    rekey_pair(c, s, (uint8_t)(50 + pi));
    assert_true(dcmf_srtp_has_previous(s));
    assert_true(dcmf_srtp_has_previous(c)); /* its inbound side */
    /* New keys: 16..23 (held 32..39). */
    for (int i = 32; i < HELD; i++) {
      hold(c, i, SSRC_A, seq++);
    }
    /* Delivered out of order: old 0..9, new 32, old 10..16 (the wrap),
     * new 33..35, old 18..31, old 17 late, new 36..38. */
    static const int order[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,
                                32, 10, 11, 12, 13, 14, 15, 16, 33, 34,
                                35, 18, 19, 20, 21, 22, 23, 24, 25, 26,
                                27, 28, 29, 30, 31, 17, 36, 37, 38};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
      assert_int_equal(deliver(s, order[i]), 0);
    }
    const struct dcmf_srtp_stats *st = dcmf_srtp_stats(s, DCMF_SRTP_IN);
    assert_int_equal(st->previous, 32);
    assert_int_equal(st->rtp, 20 + 32 + 7);
    assert_int_equal(st->auth, 0);
    assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_A, &roc), 0);
    assert_int_equal(roc, 1);
    /* Replays, under either keys. */
    assert_int_equal(deliver(s, 5), DCMF_ERR_REPLAY);
    assert_int_equal(deliver(s, 20), DCMF_ERR_REPLAY);
    assert_int_equal(deliver(s, 33), DCMF_ERR_REPLAY);
    assert_int_equal(st->replay, 3);
    assert_int_equal(st->previous, 32);
    /* A stranger: random bytes after a header of the known SSRC (a new
     * sequence number ahead) and of a new one. Nothing moves. */
    uint32_t x = 7;
    for (int i = 0; i < 200; i++) {
      struct pkt g;
      make_rtp(&g, i % 2 ? SSRC_A : SSRC_B, (uint16_t)(seq + 100 + i), 60);
      for (size_t k = 12; k < g.len + 16; k++) {
        g.b[k] = (uint8_t)lcg(&x);
      }
      size_t n;
      assert_int_equal(dcmf_srtp_unprotect_rtp(s, g.b, g.len + 16, &n),
                       DCMF_ERR_AUTH);
    }
    assert_int_equal(st->auth, 200);
    assert_int_equal(st->previous, 32);
    assert_int_equal(dcmf_srtp_roc(s, DCMF_SRTP_IN, SSRC_B, &roc),
                     DCMF_ERR_NOT_FOUND);
    /* SRTCP is not tried under the previous keys. */
    size_t n;
    assert_int_equal(dcmf_srtp_unprotect_rtcp(s, rtcp.b, rtcp_len, &n),
                     DCMF_ERR_AUTH);
    /* The last new-key packet still passes: the state was not moved. */
    assert_int_equal(deliver(s, 39), 0);
    /* The owner ends it (test_fallback_ends: what is refused then). */
    assert_int_equal(dcmf_srtp_drop_previous(s), 0);
    assert_false(dcmf_srtp_has_previous(s));
    assert_int_equal(dcmf_srtp_drop_previous(s), DCMF_ERR_NOT_FOUND);
    rtp_through(c, s, SSRC_A, seq++);
    dcmf_srtp_del(c);
    dcmf_srtp_del(s);
  }
}

/* After drop_previous, and after a second re-key, old-key packets are
 * refused; a second re-key's fallback holds the keys it replaced (not
 * the first ones); a re-key to another profile keeps none. */
static void test_fallback_ends(void **state) {
  (void)state;
  struct dcmf_srtp *c, *s;
  pair(DCMF_SRTP_AES128_CM_SHA1_80, 60, &c, &s);
  rtp_through(c, s, SSRC_A, 1);
  hold(c, 0, SSRC_A, 2); /* keys 1 */
  hold(c, 1, SSRC_A, 3); /* keys 1 */
  rekey_pair(c, s, 61);
  hold(c, 2, SSRC_A, 4); /* keys 2 */
  hold(c, 3, SSRC_A, 5); /* keys 2 */
  rekey_pair(c, s, 62);
  hold(c, 4, SSRC_A, 6);                          /* keys 3 */
  assert_int_equal(deliver(s, 0), DCMF_ERR_AUTH); /* two keys back */
  assert_int_equal(deliver(s, 2), 0);             /* the previous */
  assert_int_equal(deliver(s, 4), 0);             /* the current */
  assert_int_equal(dcmf_srtp_drop_previous(s), 0);
  assert_int_equal(deliver(s, 3), DCMF_ERR_AUTH);
  const struct dcmf_srtp_stats *st = dcmf_srtp_stats(s, DCMF_SRTP_IN);
  assert_int_equal(st->previous, 1);
  assert_int_equal(st->auth, 2);
  /* Another profile: no fallback. */
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  enum dcmf_srtp_profile next = DCMF_SRTP_AEAD_AES_128_GCM;
  size_t len = dcmf_srtp_profile_find((uint16_t)next)->export_len;
  material(m, len, 63);
  assert_int_equal(dcmf_srtp_rekey(s, next, m, len, DCMF_SRTP_SERVER), 0);
  assert_false(dcmf_srtp_has_previous(s));
  assert_int_equal(dcmf_srtp_rekey(c, next, m, len, DCMF_SRTP_CLIENT), 0);
  rtp_through(c, s, SSRC_A, 10);
  dcmf_srtp_del(c);
  dcmf_srtp_del(s);
}

/* A tiny deterministic generator for the garbage test. */
static uint32_t lcg(uint32_t *x) {
  *x = *x * 1664525u + 1013904223u;
  return *x >> 8;
}

/* The crypto backend stays loaded between engines (srtp.c). Debian's
 * libsrtp2 runs on NSS, which loads its soft token for the first cipher
 * and unloads it when the last one is freed: without the session that
 * dcmf_srtp_lib_init() keeps, freeing the only engine unloads it and the
 * next engine loads it again. With another backend the token is never
 * loaded and there is nothing to check. */
static void test_backend_stays_loaded(void **state) {
  (void)state;
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  material(m, sizeof(m), 9);
  struct dcmf_srtp *e;
  assert_int_equal(
      test_srtp_new(&e, DCMF_SRTP_AES128_CM_SHA1_80, m, 60, DCMF_SRTP_CLIENT),
      0);
  /* RTLD_NOLOAD only looks; its handle is a reference, given back at
   * once so that it does not hold the library itself. */
  void *during = dlopen("libsoftokn3.so", RTLD_NOW | RTLD_NOLOAD);
  if (during != NULL) {
    dlclose(during);
  }
  dcmf_srtp_del(e);
  if (during == NULL) {
    skip();
  }
  void *after = dlopen("libsoftokn3.so", RTLD_NOW | RTLD_NOLOAD);
  assert_non_null(after);
  dlclose(after);
}

static void test_garbage_refused(void **state) {
  (void)state;
  struct dcmf_srtp *c, *s;
  pair(DCMF_SRTP_AES128_CM_SHA1_32, 7, &c, &s);
  struct pkt p;
  size_t n;
  memset(p.b, 0, sizeof(p.b));
  for (size_t len = 0; len < 15; len++) { /* shorter than header + tag */
    p.b[0] = 0x80;
    assert_int_equal(dcmf_srtp_unprotect_rtp(s, p.b, len, &n),
                     DCMF_ERR_MALFORMED);
  }
  for (size_t len = 0; len < 22; len++) { /* header + index + 10-byte tag */
    assert_int_equal(dcmf_srtp_unprotect_rtcp(s, p.b, len, &n),
                     DCMF_ERR_MALFORMED);
  }
  p.b[0] = 0x40; /* version 1 */
  assert_int_equal(dcmf_srtp_unprotect_rtp(s, p.b, 100, &n),
                   DCMF_ERR_MALFORMED);
  p.b[0] = 0x8f; /* 15 CSRCs: 72 bytes of header */
  assert_int_equal(dcmf_srtp_unprotect_rtp(s, p.b, 60, &n), DCMF_ERR_MALFORMED);
  p.b[0] = 0x90; /* an extension of 0xffff words */
  p.b[14] = 0xff;
  p.b[15] = 0xff;
  assert_int_equal(dcmf_srtp_unprotect_rtp(s, p.b, 100, &n),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_srtp_protect_rtp(c, p.b, 100, BUF_LEN, &n),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_srtp_unprotect_rtp(s, p.b, 70000, &n),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_srtp_stats(s, DCMF_SRTP_IN)->malformed, 15 + 22 + 4);
  /* Caller errors: no room for the trailer, an unaligned buffer. */
  make_rtp(&p, SSRC_A, 1, 20);
  assert_int_equal(dcmf_srtp_protect_rtp(
                       c, p.b, p.len, p.len + DCMF_SRTP_TRAILER_ROOM - 1, &n),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_srtp_protect_rtp(c, p.b + 1, p.len, BUF_LEN - 1, &n),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_srtp_unprotect_rtp(s, p.b + 2, 40, &n),
                   DCMF_ERR_INVALID);

  /* Random bytes, with a valid first byte half the time: never accepted,
   * each counted once. */
  uint32_t x = 12345;
  for (int i = 0; i < 2000; i++) {
    size_t len = lcg(&x) % 300;
    for (size_t j = 0; j < len; j++) {
      p.b[j] = (uint8_t)lcg(&x);
    }
    if (i & 1) {
      p.b[0] = (uint8_t)(0x80 | (p.b[0] & 0x3f));
    }
    int rc = (i & 2) ? dcmf_srtp_unprotect_rtcp(s, p.b, len, &n)
                     : dcmf_srtp_unprotect_rtp(s, p.b, len, &n);
    if (rc != DCMF_ERR_MALFORMED && rc != DCMF_ERR_AUTH &&
        rc != DCMF_ERR_REPLAY) {
      fail_msg("input %d (%zu bytes): %s", i, len, dcmf_strerror(rc));
    }
  }
  const struct dcmf_srtp_stats *in = dcmf_srtp_stats(s, DCMF_SRTP_IN);
  assert_int_equal(in->auth + in->replay + in->malformed, 2000 + 15 + 22 + 4);
  assert_int_equal(in->rtp + in->rtcp + in->failed, 0);
  rtp_through(c, s, SSRC_A, 1); /* and the engine still works */
  dcmf_srtp_del(c);
  dcmf_srtp_del(s);
}

/* Two engines that both think they are the client use each other's
 * wrong keys: nothing authenticates. Bad arguments to new are refused. */
static void test_wrong_role_and_args(void **state) {
  (void)state;
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  struct dcmf_srtp *a, *b;
  struct pkt p;
  size_t n;
  material(m, 60, 8);
  assert_int_equal(
      test_srtp_new(&a, DCMF_SRTP_AES128_CM_SHA1_80, m, 60, DCMF_SRTP_CLIENT),
      0);
  assert_int_equal(
      test_srtp_new(&b, DCMF_SRTP_AES128_CM_SHA1_80, m, 60, DCMF_SRTP_CLIENT),
      0);
  make_rtp(&p, SSRC_A, 1, 40);
  assert_int_equal(dcmf_srtp_protect_rtp(a, p.b, p.len, BUF_LEN, &n), 0);
  assert_int_equal(dcmf_srtp_unprotect_rtp(b, p.b, n, &n), DCMF_ERR_AUTH);
  make_rtcp(&p, SSRC_A, 1);
  assert_int_equal(dcmf_srtp_protect_rtcp(a, p.b, p.len, BUF_LEN, &n), 0);
  assert_int_equal(dcmf_srtp_unprotect_rtcp(b, p.b, n, &n), DCMF_ERR_AUTH);
  assert_int_equal(dcmf_srtp_stats(b, DCMF_SRTP_IN)->auth, 2);
  dcmf_srtp_del(a);
  dcmf_srtp_del(b);

  struct dcmf_srtp *untouched = (struct dcmf_srtp *)&n;
  a = untouched;
  assert_int_equal(
      test_srtp_new(&a, DCMF_SRTP_AES128_CM_SHA1_80, m, 59, DCMF_SRTP_CLIENT),
      DCMF_ERR_INVALID);
  assert_int_equal(
      test_srtp_new(&a, DCMF_SRTP_AEAD_AES_256_GCM, m, 60, DCMF_SRTP_SERVER),
      DCMF_ERR_INVALID);
  assert_int_equal(
      test_srtp_new(&a, (enum dcmf_srtp_profile)5, m, 60, DCMF_SRTP_SERVER),
      DCMF_ERR_INVALID);
  assert_int_equal(test_srtp_new(&a, DCMF_SRTP_AES128_CM_SHA1_80, m, 60,
                                 (enum dcmf_srtp_role)7),
                   DCMF_ERR_INVALID);
  assert_ptr_equal(a, untouched);
  dcmf_srtp_del(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_profile_table),
      cmocka_unit_test(test_pair_every_profile),
      cmocka_unit_test(test_plain_libsrtp_peer),
      cmocka_unit_test(test_replay_refused),
      cmocka_unit_test(test_tamper_refused),
      cmocka_unit_test(test_new_ssrc_mid_stream),
      cmocka_unit_test(test_rekey_keeps_roc),
      cmocka_unit_test(test_fallback),
      cmocka_unit_test(test_fallback_ends),
      cmocka_unit_test(test_backend_stays_loaded),
      cmocka_unit_test(test_garbage_refused),
      cmocka_unit_test(test_wrong_role_and_args),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
