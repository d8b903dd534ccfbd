/*
 * test_srtp_evp.c - the OpenSSL EVP backend of the SRTP engine against
 * the RFCs and against the libsrtp2 backend (srtp.h, srtp_int.h):
 * RFC 3711 Appendix B.2 (AES-CM keystream) and B.3 (key derivation),
 * RFC 7714 §16 (SRTP AEAD_AES_128_GCM and _256) and §17 (SRTCP), then
 * for every profile random packets protected by one backend and
 * unprotected by the other both ways (seeded; the seed is printed and
 * DCMF_TEST_SEED repeats it), SRTCP, a sequence number wrap with
 * reordering around it, replay, re-key keeping ROC and index, forget,
 * and malformed input getting the same error and counters from both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "srtp.h"
#include "srtp_int.h"

#define BUF_LEN 2048

struct pkt {
  _Alignas(4) uint8_t b[BUF_LEN];
  size_t len;
};

static const enum dcmf_srtp_profile all_profiles[] = {
    DCMF_SRTP_AES128_CM_SHA1_80, DCMF_SRTP_AES128_CM_SHA1_32,
    DCMF_SRTP_AEAD_AES_128_GCM, DCMF_SRTP_AEAD_AES_256_GCM};
#define N_ALL (sizeof(all_profiles) / sizeof(all_profiles[0]))

static uint64_t rng_state;

static uint32_t rnd(void) {
  /* xorshift64*: reproducible from the printed seed */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static int group_setup(void **state) {
  (void)state;
  const char *s = getenv("DCMF_TEST_SEED");
  rng_state = s != NULL ? strtoull(s, NULL, 0) : 0x5eed5eedULL;
  if (rng_state == 0) {
    rng_state = 1;
  }
  printf("# test_srtp_evp seed %llu (DCMF_TEST_SEED repeats it)\n",
         (unsigned long long)rng_state);
  return dcmf_srtp_lib_init();
}

static size_t hex(uint8_t *out, const char *h) {
  size_t n = 0;
  for (; *h != '\0'; h++) {
    if (*h == ' ') {
      continue;
    }
    unsigned v;
    assert_int_equal(sscanf(h, "%2x", &v), 1);
    out[n++] = (uint8_t)v;
    h++;
  }
  return n;
}

static void assert_hex(const uint8_t *got, size_t n, const char *want) {
  uint8_t w[256];
  assert_int_equal(hex(w, want), n);
  assert_memory_equal(got, w, n);
}

/* ---- RFC vectors ---- */

static void rfc3711_b2_keystream(void **state) {
  (void)state;
  uint8_t key[16], iv[16], ks[48];
  hex(key, "2B7E151628AED2A6ABF7158809CF4F3C");
  hex(iv, "F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000");
  assert_int_equal(dcmf_srtp_evp_keystream(key, 16, iv, ks, sizeof(ks)), 0);
  assert_hex(ks, 48,
             "E03EAD0935C95E80E166B16DD92B4EB4"
             "D23513162B02D0F72A43A2FE4A5F97AB"
             "41E95B3BB0A2E8DD477901E4FCA894C0");
}

static void rfc3711_b3_key_derivation(void **state) {
  (void)state;
  uint8_t mk[16], ms[14], out[94];
  hex(mk, "E1F97A0D3E018BE0D64FA32C06DE4139");
  hex(ms, "0EC675AD498AFEEBB6960B3AABE6");
  assert_int_equal(dcmf_srtp_evp_prf(mk, 16, ms, 14, 0x00, out, 16), 0);
  assert_hex(out, 16, "C61E7A93744F39EE10734AFE3FF7A087");
  assert_int_equal(dcmf_srtp_evp_prf(mk, 16, ms, 14, 0x02, out, 14), 0);
  assert_hex(out, 14, "30CBBC08863D8C85D49DB34A9AE1");
  assert_int_equal(dcmf_srtp_evp_prf(mk, 16, ms, 14, 0x01, out, 94), 0);
  assert_hex(out, 94,
             "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE"
             "E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25"
             "6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2");
}

#define RFC7714_RTP                                                            \
  "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973"             \
  "20646976 69736120 696e2070 61727465 73207472 6573"
#define RFC7714_RTCP                                                           \
  "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930"             \
  "4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef"
#define RFC7714_SALT "517569642070726f2071756f"

/* An EVP engine of |prof| keyed as RFC 7714's examples are. */
static struct dcmf_srtp *rfc7714_engine(enum dcmf_srtp_profile prof) {
  uint8_t m[DCMF_SRTP_EXPORT_MAX] = {0}, key[32], salt[12];
  const struct dcmf_srtp_profile_info *p =
      dcmf_srtp_profile_find((uint16_t)prof);
  struct dcmf_srtp *s;
  assert_int_equal(dcmf_srtp_new_with(&s, DCMF_SRTP_BACKEND_OPENSSL, prof, m,
                                      p->export_len, DCMF_SRTP_CLIENT),
                   0);
  for (size_t i = 0; i < 32; i++) {
    key[i] = (uint8_t)i;
  }
  hex(salt, RFC7714_SALT);
  assert_int_equal(dcmf_srtp_evp_set_session_keys(s, key, p->key_len, salt, 12),
                   0);
  return s;
}

static void rfc7714_srtp(enum dcmf_srtp_profile prof, const char *want) {
  struct dcmf_srtp *s = rfc7714_engine(prof);
  struct pkt p, w;
  p.len = hex(p.b, RFC7714_RTP);
  w.len = hex(w.b, want);
  size_t n;
  assert_int_equal(dcmf_srtp_protect_rtp(s, p.b, p.len, BUF_LEN, &n), 0);
  assert_int_equal(n, w.len);
  assert_memory_equal(p.b, w.b, n);
  assert_int_equal(dcmf_srtp_unprotect_rtp(s, w.b, w.len, &n), 0);
  p.len = hex(p.b, RFC7714_RTP);
  assert_int_equal(n, p.len);
  assert_memory_equal(w.b, p.b, n);
  dcmf_srtp_del(s);
}

static void rfc7714_16_srtp_gcm(void **state) {
  (void)state;
  rfc7714_srtp(DCMF_SRTP_AEAD_AES_128_GCM,
               "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c"
               "9d7e4bca be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf"
               "8833899d 7f27beb1 6a9152cf 765ee439 0cce");
  rfc7714_srtp(DCMF_SRTP_AEAD_AES_256_GCM,
               "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa"
               "332e33aa b1801238 9a58e2f3 b50b2a02 76ffae0f 1ba63799"
               "b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13");
}

static void rfc7714_srtcp(enum dcmf_srtp_profile prof, const char *want,
                          int encrypted) {
  struct dcmf_srtp *s = rfc7714_engine(prof);
  struct pkt p, w;
  size_t n;
  p.len = hex(p.b, RFC7714_RTCP);
  w.len = hex(w.b, want);
  if (encrypted) { /* we send only encrypted SRTCP */
    assert_int_equal(dcmf_srtp_evp_set_rtcp_index(s, 0x4d617273, 0x5d4), 0);
    assert_int_equal(dcmf_srtp_protect_rtcp(s, p.b, p.len, BUF_LEN, &n), 0);
    assert_int_equal(n, w.len);
    assert_memory_equal(p.b, w.b, n);
  }
  assert_int_equal(dcmf_srtp_unprotect_rtcp(s, w.b, w.len, &n), 0);
  p.len = hex(p.b, RFC7714_RTCP);
  assert_int_equal(n, p.len);
  assert_memory_equal(w.b, p.b, n);
  /* the same index again is a replay */
  w.len = hex(w.b, want);
  assert_int_equal(dcmf_srtp_unprotect_rtcp(s, w.b, w.len, &n),
                   DCMF_ERR_REPLAY);
  dcmf_srtp_del(s);
}

static void rfc7714_17_srtcp_gcm(void **state) {
  (void)state;
  rfc7714_srtcp(DCMF_SRTP_AEAD_AES_128_GCM,
                "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99"
                "7ff5c0f7 6c06f32d c676a5f1 730d6fda 4ce09b46 86303ded"
                "0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4",
                1);
  rfc7714_srtcp(DCMF_SRTP_AEAD_AES_256_GCM,
                "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28"
                "2c3ece5d bffe0a50 a2eaa5c1 110555be 8415f658 c61de047"
                "6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be 800005d4",
                1);
  /* §17.3/§17.4: E clear, the whole packet authenticated only */
  rfc7714_srtcp(DCMF_SRTP_AEAD_AES_128_GCM,
                RFC7714_RTCP " 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4",
                0);
  rfc7714_srtcp(DCMF_SRTP_AEAD_AES_256_GCM,
                RFC7714_RTCP " 91db4afb feee5a97 8fab4393 ed2615fe 000005d4",
                0);
}

/* ---- the two backends side by side ---- */

/* Engines for one association: evp and lib on our side (same role and
 * keys, one per backend), evp_peer and lib_peer on the other side. */
struct quad {
  struct dcmf_srtp *evp, *lib, *evp_peer, *lib_peer;
};

static void quad_new(struct quad *q, enum dcmf_srtp_profile prof,
                     uint8_t seed) {
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  size_t len = dcmf_srtp_profile_find((uint16_t)prof)->export_len;
  for (size_t i = 0; i < len; i++) {
    m[i] = (uint8_t)(seed * 13u + i * 5u + (rnd() & 0xff));
  }
  const enum dcmf_srtp_backend O = DCMF_SRTP_BACKEND_OPENSSL,
                               L = DCMF_SRTP_BACKEND_LIBSRTP2;
  assert_int_equal(
      dcmf_srtp_new_with(&q->evp, O, prof, m, len, DCMF_SRTP_CLIENT), 0);
  assert_int_equal(
      dcmf_srtp_new_with(&q->lib, L, prof, m, len, DCMF_SRTP_CLIENT), 0);
  assert_int_equal(
      dcmf_srtp_new_with(&q->evp_peer, O, prof, m, len, DCMF_SRTP_SERVER), 0);
  assert_int_equal(
      dcmf_srtp_new_with(&q->lib_peer, L, prof, m, len, DCMF_SRTP_SERVER), 0);
  explicit_bzero(m, sizeof(m));
}

static void quad_rekey(struct quad *q, enum dcmf_srtp_profile prof,
                       uint8_t seed) {
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  size_t len = dcmf_srtp_profile_find((uint16_t)prof)->export_len;
  for (size_t i = 0; i < len; i++) {
    m[i] = (uint8_t)(seed * 29u + i);
  }
  assert_int_equal(dcmf_srtp_rekey(q->evp, prof, m, len, DCMF_SRTP_CLIENT), 0);
  assert_int_equal(dcmf_srtp_rekey(q->lib, prof, m, len, DCMF_SRTP_CLIENT), 0);
  assert_int_equal(dcmf_srtp_rekey(q->evp_peer, prof, m, len, DCMF_SRTP_SERVER),
                   0);
  assert_int_equal(dcmf_srtp_rekey(q->lib_peer, prof, m, len, DCMF_SRTP_SERVER),
                   0);
}

static void quad_del(struct quad *q) {
  dcmf_srtp_del(q->evp);
  dcmf_srtp_del(q->lib);
  dcmf_srtp_del(q->evp_peer);
  dcmf_srtp_del(q->lib_peer);
}

static void assert_stats_equal(const struct dcmf_srtp *a,
                               const struct dcmf_srtp *b) {
  for (int d = 0; d < 2; d++) {
    const struct dcmf_srtp_stats *x = dcmf_srtp_stats(a, d),
                                 *y = dcmf_srtp_stats(b, d);
    assert_int_equal(x->rtp, y->rtp);
    assert_int_equal(x->rtcp, y->rtcp);
    assert_int_equal(x->auth, y->auth);
    assert_int_equal(x->replay, y->replay);
    assert_int_equal(x->malformed, y->malformed);
    assert_int_equal(x->failed, y->failed);
    assert_int_equal(x->previous, y->previous);
  }
}

/* A random RTP packet: CSRCs and an extension sometimes, |n| payload. */
static void make_rtp(struct pkt *p, uint32_t ssrc, uint16_t seq, size_t n) {
  memset(p->b, 0, sizeof(p->b));
  size_t cc = rnd() % 4 == 0 ? rnd() % 3 : 0;
  int x = rnd() % 4 == 0;
  p->b[0] = (uint8_t)(0x80 | (x ? 0x10 : 0) | cc);
  p->b[1] = (uint8_t)(rnd() & 0xff);
  p->b[2] = (uint8_t)(seq >> 8);
  p->b[3] = (uint8_t)seq;
  uint32_t ts = rnd();
  memcpy(p->b + 4, &ts, 4);
  p->b[8] = (uint8_t)(ssrc >> 24);
  p->b[9] = (uint8_t)(ssrc >> 16);
  p->b[10] = (uint8_t)(ssrc >> 8);
  p->b[11] = (uint8_t)ssrc;
  size_t h = 12;
  for (size_t i = 0; i < cc * 4; i++) {
    p->b[h++] = (uint8_t)rnd();
  }
  if (x) {
    size_t words = rnd() % 3;
    p->b[h] = 0xbe;
    p->b[h + 1] = 0xde;
    p->b[h + 3] = (uint8_t)words;
    h += 4;
    for (size_t i = 0; i < words * 4; i++) {
      p->b[h++] = (uint8_t)rnd();
    }
  }
  for (size_t i = 0; i < n; i++) {
    p->b[h++] = (uint8_t)rnd();
  }
  p->len = h;
}

static void make_rtcp(struct pkt *p, uint32_t ssrc, size_t words) {
  memset(p->b, 0, sizeof(p->b));
  p->b[0] = 0x80;
  p->b[1] = 200;
  p->b[3] = (uint8_t)(words + 1);
  p->b[4] = (uint8_t)(ssrc >> 24);
  p->b[5] = (uint8_t)(ssrc >> 16);
  p->b[6] = (uint8_t)(ssrc >> 8);
  p->b[7] = (uint8_t)ssrc;
  for (size_t i = 0; i < words * 4; i++) {
    p->b[8 + i] = (uint8_t)rnd();
  }
  p->len = 8 + words * 4;
}

/* Protects |plain| on both our engines: the same verdict, and when it
 * passed the same bytes; then unprotects those bytes on both peers
 * crosswise (evp's on lib_peer, lib's on evp_peer): the same verdict
 * as |want_in|, and the plain packet back. Returns the protect result. */
static int both_ways(struct quad *q, int rtcp, const struct pkt *plain,
                     int want_in) {
  struct pkt a = *plain, b = *plain;
  size_t na = 0, nb = 0;
  int ra = rtcp ? dcmf_srtp_protect_rtcp(q->evp, a.b, a.len, BUF_LEN, &na)
                : dcmf_srtp_protect_rtp(q->evp, a.b, a.len, BUF_LEN, &na);
  int rb = rtcp ? dcmf_srtp_protect_rtcp(q->lib, b.b, b.len, BUF_LEN, &nb)
                : dcmf_srtp_protect_rtp(q->lib, b.b, b.len, BUF_LEN, &nb);
  assert_int_equal(ra, rb);
  if (ra != 0) {
    return ra;
  }
  assert_int_equal(na, nb);
  assert_memory_equal(a.b, b.b, na);
  size_t ma = 0, mb = 0;
  int ua = rtcp ? dcmf_srtp_unprotect_rtcp(q->lib_peer, a.b, na, &ma)
                : dcmf_srtp_unprotect_rtp(q->lib_peer, a.b, na, &ma);
  int ub = rtcp ? dcmf_srtp_unprotect_rtcp(q->evp_peer, b.b, nb, &mb)
                : dcmf_srtp_unprotect_rtp(q->evp_peer, b.b, nb, &mb);
  assert_int_equal(ua, want_in);
  assert_int_equal(ub, want_in);
  if (ua == 0) {
    assert_int_equal(ma, plain->len);
    assert_int_equal(mb, plain->len);
    assert_memory_equal(a.b, plain->b, ma);
    assert_memory_equal(b.b, plain->b, mb);
  }
  return 0;
}

/* The ROC of |ssrc| as all four see it (|want|, or not found for -1). */
static void assert_roc(struct quad *q, uint32_t ssrc, int64_t want) {
  struct dcmf_srtp *e[4] = {q->evp, q->lib, q->evp_peer, q->lib_peer};
  for (int i = 0; i < 4; i++) {
    uint32_t roc = 0;
    int rc =
        dcmf_srtp_roc(e[i], i < 2 ? DCMF_SRTP_OUT : DCMF_SRTP_IN, ssrc, &roc);
    if (want < 0) {
      assert_int_equal(rc, DCMF_ERR_NOT_FOUND);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(roc, (uint32_t)want);
    }
  }
}

static void cross_random(void **state) {
  (void)state;
  for (size_t pi = 0; pi < N_ALL; pi++) {
    struct quad q;
    quad_new(&q, all_profiles[pi], (uint8_t)pi);
    uint32_t ssrcs[3] = {rnd(), rnd(), rnd()};
    uint16_t seq[3] = {(uint16_t)rnd(), (uint16_t)rnd(), (uint16_t)rnd()};
    for (int i = 0; i < 300; i++) {
      int k = (int)(rnd() % 3);
      struct pkt p;
      static const size_t sizes[] = {0, 1, 160, 1200};
      if (rnd() % 4 == 0) {
        make_rtcp(&p, ssrcs[k], rnd() % 20);
        assert_int_equal(both_ways(&q, 1, &p, 0), 0);
      } else {
        size_t n = rnd() % 2 ? sizes[rnd() % 4] : rnd() % 1400;
        make_rtp(&p, ssrcs[k], seq[k]++, n);
        assert_int_equal(both_ways(&q, 0, &p, 0), 0);
      }
    }
    assert_stats_equal(q.evp, q.lib);
    assert_stats_equal(q.evp_peer, q.lib_peer);
    quad_del(&q);
  }
}

/* A sequence number wrap with packets reordered around it, replays and
 * packets older than the window: same verdicts, same ROC. */
static void cross_rollover_replay(void **state) {
  (void)state;
  for (size_t pi = 0; pi < N_ALL; pi++) {
    struct quad q;
    quad_new(&q, all_profiles[pi], (uint8_t)(pi + 7));
    const uint32_t ssrc = 0x0badcafe;
    struct pkt p;
    assert_roc(&q, ssrc, -1);
    /* forward to just before the wrap */
    static const uint16_t fwd[] = {100, 40000, 65500, 65530};
    for (size_t i = 0; i < 4; i++) {
      make_rtp(&p, ssrc, fwd[i], 50);
      assert_int_equal(both_ways(&q, 0, &p, 0), 0);
    }
    assert_roc(&q, ssrc, 0);
    /* across it, out of order: 2 (ROC 1), 65533 (ROC 0, late), 0, 65535 */
    static const uint16_t wrap[] = {2, 65533, 0, 65535, 5, 1};
    for (size_t i = 0; i < 6; i++) {
      make_rtp(&p, ssrc, wrap[i], 30);
      assert_int_equal(both_ways(&q, 0, &p, 0), 0);
    }
    assert_roc(&q, ssrc, 1);
    /* outbound refuses a sequence number sent already, both backends */
    make_rtp(&p, ssrc, 0, 30);
    assert_int_equal(both_ways(&q, 0, &p, 0), DCMF_ERR_REPLAY);
    /* older than the window */
    make_rtp(&p, ssrc, (uint16_t)(5 - DCMF_SRTP_REPLAY_WINDOW), 30);
    assert_int_equal(both_ways(&q, 0, &p, 0), DCMF_ERR_REPLAY);
    /* at the window's far edge and just inside it */
    make_rtp(&p, ssrc, 1000, 30);
    assert_int_equal(both_ways(&q, 0, &p, 0), 0);
    make_rtp(&p, ssrc, (uint16_t)(1000 - DCMF_SRTP_REPLAY_WINDOW), 30);
    assert_int_equal(both_ways(&q, 0, &p, 0), DCMF_ERR_REPLAY);
    make_rtp(&p, ssrc, (uint16_t)(1001 - DCMF_SRTP_REPLAY_WINDOW), 30);
    assert_int_equal(both_ways(&q, 0, &p, 0), 0);
    /* inbound replay: the same protected bytes twice on each peer */
    struct pkt a;
    make_rtp(&a, ssrc, 1002, 30);
    size_t n, m;
    assert_int_equal(dcmf_srtp_protect_rtp(q.evp, a.b, a.len, BUF_LEN, &n), 0);
    struct pkt c = a;
    assert_int_equal(dcmf_srtp_unprotect_rtp(q.lib_peer, c.b, n, &m), 0);
    c = a;
    assert_int_equal(dcmf_srtp_unprotect_rtp(q.evp_peer, c.b, n, &m), 0);
    c = a;
    assert_int_equal(dcmf_srtp_unprotect_rtp(q.lib_peer, c.b, n, &m),
                     DCMF_ERR_REPLAY);
    c = a;
    assert_int_equal(dcmf_srtp_unprotect_rtp(q.evp_peer, c.b, n, &m),
                     DCMF_ERR_REPLAY);
    /* keep lib's outbound in step with evp's */
    make_rtp(&a, ssrc, 1002, 30);
    assert_int_equal(dcmf_srtp_protect_rtp(q.lib, a.b, a.len, BUF_LEN, &n), 0);
    /* SRTCP: the first index is 1 on both, and a replay is refused */
    make_rtcp(&p, ssrc, 6);
    struct pkt r = p;
    assert_int_equal(dcmf_srtp_protect_rtcp(q.evp, r.b, r.len, BUF_LEN, &n), 0);
    const uint8_t *trailer =
        pi >= 2 ? r.b + n - 4
                : r.b + n - 4 -
                      dcmf_srtp_profile_find((uint16_t)all_profiles[pi])
                          ->rtcp_tag_len;
    static const uint8_t first[4] = {0x80, 0, 0, 1};
    assert_memory_equal(trailer, first, 4);
    c = r;
    assert_int_equal(dcmf_srtp_unprotect_rtcp(q.lib_peer, c.b, n, &m), 0);
    c = r;
    assert_int_equal(dcmf_srtp_unprotect_rtcp(q.lib_peer, c.b, n, &m),
                     DCMF_ERR_REPLAY);
    c = r;
    assert_int_equal(dcmf_srtp_unprotect_rtcp(q.evp_peer, c.b, n, &m), 0);
    c = r;
    assert_int_equal(dcmf_srtp_unprotect_rtcp(q.evp_peer, c.b, n, &m),
                     DCMF_ERR_REPLAY);
    r = p;
    assert_int_equal(dcmf_srtp_protect_rtcp(q.lib, r.b, r.len, BUF_LEN, &n), 0);
    for (int i = 0; i < 200; i++) { /* slide the 128 SRTCP window */
      make_rtcp(&p, ssrc, 2);
      assert_int_equal(both_ways(&q, 1, &p, 0), 0);
    }
    assert_stats_equal(q.evp, q.lib);
    assert_stats_equal(q.evp_peer, q.lib_peer);
    /* forget: gone on both, and the SSRC starts again at ROC 0 */
    assert_int_equal(dcmf_srtp_forget(q.evp, DCMF_SRTP_OUT, ssrc), 0);
    assert_int_equal(dcmf_srtp_forget(q.lib, DCMF_SRTP_OUT, ssrc), 0);
    assert_int_equal(dcmf_srtp_forget(q.evp, DCMF_SRTP_OUT, ssrc),
                     DCMF_ERR_NOT_FOUND);
    assert_int_equal(dcmf_srtp_forget(q.lib, DCMF_SRTP_OUT, ssrc),
                     DCMF_ERR_NOT_FOUND);
    quad_del(&q);
  }
}

/* Re-key across profiles keeps ROC and SRTCP index; the SRTP replay list
 * starts empty, the SRTCP one does not. */
static void cross_rekey(void **state) {
  (void)state;
  for (size_t pi = 0; pi < N_ALL; pi++) {
    struct quad q;
    enum dcmf_srtp_profile prof = all_profiles[pi];
    enum dcmf_srtp_profile next = all_profiles[(pi + 1) % N_ALL];
    quad_new(&q, prof, (uint8_t)(pi + 20));
    const uint32_t ssrc = 0x12345678;
    struct pkt p;
    static const uint16_t seqs[] = {65000, 65535, 3, 4};
    for (size_t i = 0; i < 4; i++) {
      make_rtp(&p, ssrc, seqs[i], 80);
      assert_int_equal(both_ways(&q, 0, &p, 0), 0);
      make_rtcp(&p, ssrc, 3);
      assert_int_equal(both_ways(&q, 1, &p, 0), 0);
    }
    assert_roc(&q, ssrc, 1);
    quad_rekey(&q, next, (uint8_t)pi);
    assert_roc(&q, ssrc, 1);
    /* a sequence number sent before the re-key: both take it again */
    make_rtp(&p, ssrc, 4, 80);
    assert_int_equal(both_ways(&q, 0, &p, 0), 0);
    make_rtp(&p, ssrc, 10, 80);
    assert_int_equal(both_ways(&q, 0, &p, 0), 0);
    make_rtcp(&p, ssrc, 3);
    assert_int_equal(both_ways(&q, 1, &p, 0), 0);
    assert_roc(&q, ssrc, 1);
    assert_stats_equal(q.evp, q.lib);
    assert_stats_equal(q.evp_peer, q.lib_peer);
    quad_del(&q);
  }
}

/* The fallback of a re-key under the same profile (srtp.h): the peer's
 * old-key packets, some protected before the re-key and delivered after
 * it, mixed with new-key ones, replays and altered copies, across a
 * wrap: both backends give the same verdicts, bytes, ROC and counters,
 * also after drop_previous. */
static void cross_fallback(void **state) {
  (void)state;
  enum { N = 48 };
  static struct pkt wire[N];
  static size_t wire_len[N];
  for (size_t pi = 0; pi < N_ALL; pi++) {
    struct quad q;
    enum dcmf_srtp_profile prof = all_profiles[pi];
    quad_new(&q, prof, (uint8_t)(pi + 70));
    const uint32_t ssrc = 0x0badcafe;
    struct pkt p;
    uint16_t seq = 65530;
    for (int i = 0; i < 4; i++) {
      make_rtp(&p, ssrc, seq++, 50);
      assert_int_equal(both_ways(&q, 0, &p, 0), 0);
    }
    /* The peer's packets, half under the old keys and half the new. */
    for (int i = 0; i < N; i++) {
      if (i == N / 2) {
        quad_rekey(&q, prof, (uint8_t)(pi + 80));
      }
      make_rtp(&wire[i], ssrc, seq++, 1 + rnd() % 60);
      struct pkt y = wire[i];
      size_t ny = 0;
      assert_int_equal(dcmf_srtp_protect_rtp(q.evp_peer, wire[i].b, wire[i].len,
                                             BUF_LEN, &wire_len[i]),
                       0);
      assert_int_equal(
          dcmf_srtp_protect_rtp(q.lib_peer, y.b, y.len, BUF_LEN, &ny), 0);
      assert_memory_equal(wire[i].b, y.b, ny);
    }
    /* Delivered in a random order, with replays and altered copies. */
    for (int k = 0; k < 3 * N; k++) {
      int i = (int)(rnd() % N);
      struct pkt a = wire[i], b = wire[i];
      size_t len = wire_len[i];
      if (rnd() % 5 == 0) {
        size_t at = rnd() % len;
        a.b[at] ^= 1;
        b.b[at] ^= 1;
      }
      if (k == 2 * N) {
        assert_int_equal(dcmf_srtp_drop_previous(q.evp), 0);
        assert_int_equal(dcmf_srtp_drop_previous(q.lib), 0);
      }
      size_t na = 0, nb = 0;
      int ra = dcmf_srtp_unprotect_rtp(q.evp, a.b, len, &na);
      int rb = dcmf_srtp_unprotect_rtp(q.lib, b.b, len, &nb);
      assert_int_equal(ra, rb);
      if (ra == 0) {
        assert_int_equal(na, nb);
        assert_memory_equal(a.b, b.b, na);
      }
    }
    assert_true(dcmf_srtp_stats(q.evp, DCMF_SRTP_IN)->previous > 0);
    uint32_t ra = 0, rb = 0;
    assert_int_equal(dcmf_srtp_roc(q.evp, DCMF_SRTP_IN, ssrc, &ra), 0);
    assert_int_equal(dcmf_srtp_roc(q.lib, DCMF_SRTP_IN, ssrc, &rb), 0);
    assert_int_equal(ra, 1);
    assert_int_equal(rb, 1);
    assert_stats_equal(q.evp, q.lib);
    quad_del(&q);
  }
}

/* Malformed, tampered and foreign input: the same error from both. */
static void cross_malformed(void **state) {
  (void)state;
  for (size_t pi = 0; pi < N_ALL; pi++) {
    struct quad q;
    quad_new(&q, all_profiles[pi], (uint8_t)(pi + 40));
    for (int i = 0; i < 2000; i++) {
      struct pkt p, a, b;
      int rtcp = rnd() % 2;
      if (rtcp) {
        make_rtcp(&p, rnd() % 4, rnd() % 10);
      } else {
        make_rtp(&p, rnd() % 4, (uint16_t)(rnd() % 8), rnd() % 40);
      }
      size_t n = p.len;
      /* protect it first sometimes, so that the tag can verify */
      if (rnd() % 2) {
        struct pkt x = p;
        int rx =
            rtcp ? dcmf_srtp_protect_rtcp(q.evp_peer, x.b, x.len, BUF_LEN, &n)
                 : dcmf_srtp_protect_rtp(q.evp_peer, x.b, x.len, BUF_LEN, &n);
        struct pkt y = p;
        size_t ny = 0;
        int ry =
            rtcp ? dcmf_srtp_protect_rtcp(q.lib_peer, y.b, y.len, BUF_LEN, &ny)
                 : dcmf_srtp_protect_rtp(q.lib_peer, y.b, y.len, BUF_LEN, &ny);
        assert_int_equal(rx, ry);
        if (rx == 0) {
          assert_int_equal(n, ny);
          assert_memory_equal(x.b, y.b, n);
          p = x;
        } else {
          n = p.len;
        }
      }
      /* then damage it */
      switch (rnd() % 5) {
      case 0:
        n = rnd() % (n + 1);
        break;
      case 1:
        p.b[rnd() % (n + 1)] ^= (uint8_t)(1u << (rnd() % 8));
        break;
      case 2:
        p.b[0] = (uint8_t)rnd();
        break;
      case 3:
        p.b[rnd() % 4] = (uint8_t)rnd();
        break;
      default:
        break;
      }
      a = p;
      b = p;
      size_t ma = 0, mb = 0;
      int ra = rtcp ? dcmf_srtp_unprotect_rtcp(q.evp, a.b, n, &ma)
                    : dcmf_srtp_unprotect_rtp(q.evp, a.b, n, &ma);
      int rb = rtcp ? dcmf_srtp_unprotect_rtcp(q.lib, b.b, n, &mb)
                    : dcmf_srtp_unprotect_rtp(q.lib, b.b, n, &mb);
      assert_int_equal(ra, rb);
      if (ra == 0) {
        assert_int_equal(ma, mb);
        assert_memory_equal(a.b, b.b, ma);
      }
    }
    assert_stats_equal(q.evp, q.lib);
    /* the same SSRCs got a state (only authenticated packets make one) */
    for (uint32_t ssrc = 0; ssrc < 4; ssrc++) {
      uint32_t ra = 7, rb = 9;
      assert_int_equal(dcmf_srtp_roc(q.evp, DCMF_SRTP_IN, ssrc, &ra),
                       dcmf_srtp_roc(q.lib, DCMF_SRTP_IN, ssrc, &rb));
      assert_int_equal(dcmf_srtp_forget(q.evp, DCMF_SRTP_IN, ssrc),
                       dcmf_srtp_forget(q.lib, DCMF_SRTP_IN, ssrc));
    }
    /* a stranger's packet (wrong keys) makes none */
    struct pkt x;
    make_rtp(&x, 0x77777777, 9, 20);
    size_t nx;
    assert_int_equal(dcmf_srtp_protect_rtp(q.evp, x.b, x.len, BUF_LEN, &nx), 0);
    struct pkt y = x;
    assert_int_equal(dcmf_srtp_unprotect_rtp(q.evp, x.b, nx, &nx),
                     DCMF_ERR_AUTH);
    assert_int_equal(dcmf_srtp_unprotect_rtp(q.lib, y.b, nx, &nx),
                     DCMF_ERR_AUTH);
    uint32_t roc;
    assert_int_equal(dcmf_srtp_roc(q.evp, DCMF_SRTP_IN, 0x77777777, &roc),
                     DCMF_ERR_NOT_FOUND);
    assert_int_equal(dcmf_srtp_roc(q.lib, DCMF_SRTP_IN, 0x77777777, &roc),
                     DCMF_ERR_NOT_FOUND);
    /* arguments */
    struct pkt p;
    make_rtp(&p, 1, 1, 10);
    size_t n;
    assert_int_equal(dcmf_srtp_protect_rtp(q.evp, p.b + 1, 20, BUF_LEN, &n),
                     DCMF_ERR_INVALID);
    assert_int_equal(dcmf_srtp_protect_rtp(q.evp, p.b, 30, 40, &n),
                     DCMF_ERR_TOO_LARGE);
    quad_del(&q);
  }
  struct dcmf_srtp *s;
  uint8_t m[60] = {0};
  assert_int_equal(dcmf_srtp_new_with(&s, (enum dcmf_srtp_backend)7,
                                      DCMF_SRTP_AES128_CM_SHA1_80, m, 60,
                                      DCMF_SRTP_CLIENT),
                   DCMF_ERR_INVALID);
}

static void backend_names(void **state) {
  (void)state;
  enum dcmf_srtp_backend b = DCMF_SRTP_BACKEND_LIBSRTP2;
  assert_int_equal(dcmf_srtp_backend_by_name("openssl", &b), 0);
  assert_int_equal(b, DCMF_SRTP_BACKEND_OPENSSL);
  assert_int_equal(dcmf_srtp_backend_by_name("libsrtp2", &b), 0);
  assert_int_equal(b, DCMF_SRTP_BACKEND_LIBSRTP2);
  assert_int_equal(dcmf_srtp_backend_by_name("nss", &b), DCMF_ERR_INVALID);
  assert_int_equal(dcmf_srtp_backend_by_name(NULL, &b), DCMF_ERR_INVALID);
  assert_string_equal(dcmf_srtp_backend_name(DCMF_SRTP_BACKEND_OPENSSL),
                      "openssl");
  assert_string_equal(dcmf_srtp_backend_name(DCMF_SRTP_BACKEND_LIBSRTP2),
                      "libsrtp2");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rfc3711_b2_keystream),
      cmocka_unit_test(rfc3711_b3_key_derivation),
      cmocka_unit_test(rfc7714_16_srtp_gcm),
      cmocka_unit_test(rfc7714_17_srtcp_gcm),
      cmocka_unit_test(backend_names),
      cmocka_unit_test(cross_random),
      cmocka_unit_test(cross_rollover_replay),
      cmocka_unit_test(cross_rekey),
      cmocka_unit_test(cross_fallback),
      cmocka_unit_test(cross_malformed),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
