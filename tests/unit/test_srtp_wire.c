/*
 * test_srtp_wire.c - the SRTP engine's packets, byte for byte, against
 * an independent reading of the RFCs written here on OpenSSL EVP: the
 * RFC 5764 §4.2 key split, the RFC 3711 §4.3 key derivation (AES-CM
 * PRF, key derivation rate 0), the AES-CM/HMAC-SHA1 transform (RFC 3711
 * §4.1.1, §4.2, §3.4) and the AEAD AES-GCM transform (RFC 7714 §8 and
 * §9). Each check protects with the engine and recomputes the packet
 * here, across a sequence number wrap (ROC 1) and for SRTCP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "errors.h"
#include "srtp.h"
#include "srtp_backend.h"

#define BUF_LEN 1600
#define SSRC 0x5a5b5c5du

struct pkt {
  _Alignas(4) uint8_t b[BUF_LEN];
  size_t len;
};

static int group_setup(void **state) {
  (void)state;
  return dcmf_srtp_lib_init();
}

static const EVP_CIPHER *ctr(size_t key_len) {
  return key_len == 32 ? EVP_aes_256_ctr() : EVP_aes_128_ctr();
}

/* AES in counter mode: |out| = |in| XOR keystream(|key|, |iv|). */
static void aes_ctr(const uint8_t *key, size_t key_len, const uint8_t *iv,
                    const uint8_t *in, uint8_t *out, size_t len) {
  EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
  int n = 0;
  assert_non_null(x);
  assert_int_equal(EVP_EncryptInit_ex(x, ctr(key_len), NULL, key, iv), 1);
  assert_int_equal(EVP_EncryptUpdate(x, out, &n, in, (int)len), 1);
  assert_int_equal(n, len);
  EVP_CIPHER_CTX_free(x);
}

/* RFC 3711 §4.3.1 and §4.3.3 with kdr 0: x = (label << 48) XOR salt
 * (the salt as 112 bits; RFC 7714 §11: a 96-bit salt is padded with zero
 * bits on the right), output = AES-CM(master key, IV = x * 2^16). */
static void kdf(const uint8_t *mkey, size_t klen, const uint8_t *msalt,
                size_t slen, uint8_t label, uint8_t *out, size_t len) {
  uint8_t iv[16] = {0}, zero[32] = {0};
  memcpy(iv, msalt, slen);
  iv[7] ^= label;
  aes_ctr(mkey, klen, iv, zero, out, len);
}

struct ref {
  const struct dcmf_srtp_profile_info *p;
  uint8_t k_e[32], k_a[20], k_s[14];    /* SRTP session keys */
  uint8_t ck_e[32], ck_a[20], ck_s[14]; /* SRTCP session keys */
};

/* The client's write keys from |m| (client key is first, RFC 5764). */
static void ref_init(struct ref *r, const struct dcmf_srtp_profile_info *p,
                     const uint8_t *m) {
  const uint8_t *mkey = m, *msalt = m + 2 * p->key_len;
  size_t kl = p->key_len, sl = p->salt_len;
  r->p = p;
  kdf(mkey, kl, msalt, sl, 0x00, r->k_e, kl);
  kdf(mkey, kl, msalt, sl, 0x01, r->k_a, 20);
  kdf(mkey, kl, msalt, sl, 0x02, r->k_s, sl);
  kdf(mkey, kl, msalt, sl, 0x03, r->ck_e, kl);
  kdf(mkey, kl, msalt, sl, 0x04, r->ck_a, 20);
  kdf(mkey, kl, msalt, sl, 0x05, r->ck_s, sl);
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static size_t gcm(const uint8_t *key, size_t klen, const uint8_t *iv,
                  const uint8_t *aad, size_t aad_len, const uint8_t *in,
                  size_t len, uint8_t *out) {
  EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
  int n = 0, f = 0;
  assert_non_null(x);
  assert_int_equal(
      EVP_EncryptInit_ex(x, klen == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm(),
                         NULL, key, iv),
      1);
  assert_int_equal(EVP_EncryptUpdate(x, NULL, &n, aad, (int)aad_len), 1);
  assert_int_equal(EVP_EncryptUpdate(x, out, &n, in, (int)len), 1);
  assert_int_equal(EVP_EncryptFinal_ex(x, out + n, &f), 1);
  assert_int_equal(
      EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, out + n + f), 1);
  EVP_CIPHER_CTX_free(x);
  return (size_t)(n + f) + 16;
}

/* HMAC-SHA1 of |a| then |b| under |key|, cut to |tag_len| bytes. */
static void hmac_tag(const uint8_t *key, const uint8_t *a, size_t alen,
                     const uint8_t *b, size_t blen, uint8_t *out,
                     size_t tag_len) {
  uint8_t msg[BUF_LEN + 4], mac[EVP_MAX_MD_SIZE];
  unsigned int ml = 0;
  memcpy(msg, a, alen);
  if (blen > 0) {
    memcpy(msg + alen, b, blen);
  }
  assert_non_null(HMAC(EVP_sha1(), key, 20, msg, alen + blen, mac, &ml));
  assert_int_equal(ml, 20);
  memcpy(out, mac, tag_len);
}

/* The SRTP packet for RTP packet |in| (12-byte header) at |roc|. */
static size_t ref_rtp(const struct ref *r, const uint8_t *in, size_t len,
                      uint32_t roc, uint8_t *out) {
  uint16_t seq = (uint16_t)(in[2] << 8 | in[3]);
  uint32_t ssrc = (uint32_t)in[8] << 24 | (uint32_t)in[9] << 16 |
                  (uint32_t)in[10] << 8 | in[11];
  uint8_t iv[16] = {0};
  memcpy(out, in, 12);
  if (r->p->rtp_tag_len == 16) { /* RFC 7714 §8.1 */
    put32(iv + 2, ssrc);
    put32(iv + 6, roc);
    iv[10] = (uint8_t)(seq >> 8);
    iv[11] = (uint8_t)seq;
    for (int i = 0; i < 12; i++) {
      iv[i] ^= r->k_s[i];
    }
    return 12 +
           gcm(r->k_e, r->p->key_len, iv, in, 12, in + 12, len - 12, out + 12);
  }
  /* RFC 3711 §4.1.1: IV = salt*2^16 XOR SSRC*2^64 XOR index*2^16. */
  memcpy(iv, r->k_s, 14);
  for (int i = 0; i < 4; i++) {
    iv[4 + i] ^= (uint8_t)(ssrc >> (24 - 8 * i));
    iv[8 + i] ^= (uint8_t)(roc >> (24 - 8 * i));
  }
  iv[12] ^= (uint8_t)(seq >> 8);
  iv[13] ^= (uint8_t)seq;
  aes_ctr(r->k_e, r->p->key_len, iv, in + 12, out + 12, len - 12);
  uint8_t rocb[4];
  put32(rocb, roc); /* §4.2: the tag covers the packet and the ROC */
  hmac_tag(r->k_a, out, len, rocb, 4, out + len, r->p->rtp_tag_len);
  return len + r->p->rtp_tag_len;
}

/* The SRTCP packet for RTCP packet |in| with SRTCP index |index|. */
static size_t ref_rtcp(const struct ref *r, const uint8_t *in, size_t len,
                       uint32_t index, uint8_t *out) {
  uint8_t iv[16] = {0}, word[4];
  put32(word, 0x80000000u | index); /* E set: encrypted */
  memcpy(out, in, 8);
  if (r->p->rtcp_tag_len == 16) { /* RFC 7714 §9.1: trailer after tag */
    memcpy(iv + 2, in + 4, 4);
    put32(iv + 8, index);
    for (int i = 0; i < 12; i++) {
      iv[i] ^= r->ck_s[i];
    }
    uint8_t aad[12];
    memcpy(aad, in, 8);
    memcpy(aad + 8, word, 4);
    size_t n =
        gcm(r->ck_e, r->p->key_len, iv, aad, 12, in + 8, len - 8, out + 8);
    memcpy(out + 8 + n, word, 4);
    return 8 + n + 4;
  }
  memcpy(iv, r->ck_s, 14); /* RFC 3711 §4.1.1 with the SRTCP index */
  for (int i = 0; i < 4; i++) {
    iv[4 + i] ^= in[4 + i];
    iv[10 + i] ^= word[i] & (i == 0 ? 0x7f : 0xff);
  }
  aes_ctr(r->ck_e, r->p->key_len, iv, in + 8, out + 8, len - 8);
  memcpy(out + len, word, 4); /* §3.4: E+index, then the tag over both */
  hmac_tag(r->ck_a, out, len + 4, NULL, 0, out + len + 4, r->p->rtcp_tag_len);
  return len + 4 + r->p->rtcp_tag_len;
}

static void check_profile(enum dcmf_srtp_profile prof) {
  const struct dcmf_srtp_profile_info *p =
      dcmf_srtp_profile_find((uint16_t)prof);
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  for (size_t i = 0; i < p->export_len; i++) {
    m[i] = (uint8_t)(0xc3 ^ (i * 11));
  }
  struct dcmf_srtp *e;
  struct ref r;
  assert_int_equal(test_srtp_new(&e, prof, m, p->export_len, DCMF_SRTP_CLIENT),
                   0);
  ref_init(&r, p, m);
  const uint16_t seqs[] = {65534, 65535, 0, 1}; /* ROC 0, 0, 1, 1 */
  for (size_t k = 0; k < 4; k++) {
    struct pkt in, out;
    uint8_t want[BUF_LEN];
    size_t n;
    memset(in.b, 0, 12);
    in.b[0] = 0x80;
    in.b[1] = 0x6f;
    in.b[2] = (uint8_t)(seqs[k] >> 8);
    in.b[3] = (uint8_t)seqs[k];
    put32(in.b + 4, 0x01000000u + seqs[k]);
    put32(in.b + 8, SSRC);
    for (size_t i = 12; i < 172; i++) {
      in.b[i] = (uint8_t)(i * 5 + k);
    }
    in.len = 172;
    out = in;
    assert_int_equal(dcmf_srtp_protect_rtp(e, out.b, in.len, BUF_LEN, &n), 0);
    size_t wn = ref_rtp(&r, in.b, in.len, k < 2 ? 0 : 1, want);
    assert_int_equal(n, wn);
    assert_memory_equal(out.b, want, wn);

    /* SRTCP: an SR from the same SSRC; libsrtp2's first index is 1. */
    memset(in.b, 0, 28);
    in.b[0] = 0x80;
    in.b[1] = 200;
    in.b[3] = 6;
    put32(in.b + 4, SSRC);
    for (size_t i = 8; i < 28; i++) {
      in.b[i] = (uint8_t)(i + 3 * k);
    }
    out = in;
    assert_int_equal(dcmf_srtp_protect_rtcp(e, out.b, 28, BUF_LEN, &n), 0);
    wn = ref_rtcp(&r, in.b, 28, (uint32_t)k + 1, want);
    assert_int_equal(n, wn);
    assert_memory_equal(out.b, want, wn);
  }
  dcmf_srtp_del(e);
}

static void test_gcm256(void **state) {
  (void)state;
  check_profile(DCMF_SRTP_AEAD_AES_256_GCM);
}

static void test_gcm128(void **state) {
  (void)state;
  check_profile(DCMF_SRTP_AEAD_AES_128_GCM);
}

static void test_cm80(void **state) {
  (void)state;
  check_profile(DCMF_SRTP_AES128_CM_SHA1_80);
}

static void test_cm32(void **state) {
  (void)state;
  check_profile(DCMF_SRTP_AES128_CM_SHA1_32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gcm256),
      cmocka_unit_test(test_gcm128),
      cmocka_unit_test(test_cm80),
      cmocka_unit_test(test_cm32),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
