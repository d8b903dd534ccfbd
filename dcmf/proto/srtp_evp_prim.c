/*
 * srtp_evp_prim.c - the EVP backend's primitives (srtp_evp_prim.h): the
 * AES-CM PRF and keystream, AES-CM on a keyed ECB context, HMAC-SHA1 on
 * kept SHA-1 states.
 *
 * AES-CM as counter blocks encrypted with ECB, not EVP's CTR mode:
 * setting a new IV on a keyed CTR context (EVP_EncryptInit_ex) cost
 * more than encrypting a 160-byte payload (docs/benchmarks.md, "SRTP
 * backends"); the counter is the same 128-bit big-endian one CTR runs.
 *
 * HMAC on OpenSSL 3's low-level SHA1_* functions, not EVP_MAC: at the
 * e2ae call mix (docs/benchmarks.md) EVP_MAC_init's re-keying
 * (EVP_MD_CTX_copy_ex, HMAC_Init_ex, the provider dispatch) cost about
 * as much as the SHA-1 blocks of a 172-byte packet. The functions are
 * deprecated in 3.0 but still part of its API; the bytes are the same
 * (the unit tests and the differential fuzz target compare them with
 * libsrtp2's).
 */
/* SHA1_Init, SHA1_Update, SHA1_Final (above): declared deprecated. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "srtp_evp_prim.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>

#include "errors.h"
#include "srtp.h"
#include "srtp_int.h"

static const EVP_CIPHER *ctr_cipher(size_t key_len) {
  return key_len == 32 ? EVP_aes_256_ctr() : EVP_aes_128_ctr();
}

int dcmf_srtp_evp_keystream(const uint8_t *key, size_t key_len,
                            const uint8_t iv[16], uint8_t *out, size_t n) {
  if ((key_len != 16 && key_len != 32) || n > INT_MAX) {
    return DCMF_ERR_INVALID;
  }
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int outl, ok = c != NULL &&
                 EVP_EncryptInit_ex(c, ctr_cipher(key_len), NULL, key, iv);
  memset(out, 0, n);
  ok = ok && (n == 0 || EVP_EncryptUpdate(c, out, &outl, out, (int)n));
  EVP_CIPHER_CTX_free(c);
  return ok ? 0 : DCMF_ERR_SYSTEM;
}

int dcmf_srtp_evp_prf(const uint8_t *key, size_t key_len, const uint8_t *salt,
                      size_t salt_len, uint8_t label, uint8_t *out, size_t n) {
  /* x = key_id XOR master salt, key_id = label || r with r = 0 (KDR 0),
   * the 56 bits right-aligned in the 112-bit salt: the label lands on
   * byte 7. The counter block is x * 2^16. A shorter (GCM) salt is
   * zero-padded on the right to 112 bits. */
  uint8_t iv[16] = {0};
  if (salt_len > DCMF_SRTP_SALT_MAX) {
    return DCMF_ERR_INVALID;
  }
  memcpy(iv, salt, salt_len);
  iv[7] ^= label;
  return dcmf_srtp_evp_keystream(key, key_len, iv, out, n);
}

int dcmf_srtp_evp_cm_xor(EVP_CIPHER_CTX *c, const uint8_t iv[16], uint8_t *p,
                         size_t n) {
  enum { CHUNK = 32 * 16 }; /* 512 bytes of keystream per ECB call */
  uint8_t ctr[16], blocks[CHUNK], ks[CHUNK];
  memcpy(ctr, iv, 16);
  int rc = 0;
  while (n > 0 && rc == 0) {
    size_t m = n < CHUNK ? n : CHUNK;
    size_t nb = (m + 15) / 16;
    for (size_t b = 0; b < nb; b++) {
      memcpy(blocks + 16 * b, ctr, 16);
      for (int k = 15; k >= 0 && ++ctr[k] == 0; k--) {
      }
    }
    int outl;
    if (!EVP_EncryptUpdate(c, ks, &outl, blocks, (int)(nb * 16)) ||
        (size_t)outl != nb * 16) {
      rc = DCMF_ERR_SYSTEM;
      break;
    }
    for (size_t k = 0; k < m; k++) {
      p[k] ^= ks[k];
    }
    p += m;
    n -= m;
  }
  OPENSSL_cleanse(ks, sizeof(ks));
  return rc;
}

int dcmf_srtp_evp_hmac(const struct dcmf_srtp_evp_hmac_key *m, const uint8_t *a,
                       size_t an, const uint8_t *b, size_t bn,
                       uint8_t out[DCMF_SRTP_EVP_SHA1_LEN]) {
  SHA_CTX c = m->inner;
  uint8_t inner[DCMF_SRTP_EVP_SHA1_LEN];
  int ok = SHA1_Update(&c, a, an) && (bn == 0 || SHA1_Update(&c, b, bn)) &&
           SHA1_Final(inner, &c);
  c = m->outer;
  ok = ok && SHA1_Update(&c, inner, sizeof(inner)) && SHA1_Final(out, &c);
  /* The states are as good as the key for forging tags. */
  OPENSSL_cleanse(&c, sizeof(c));
  return ok ? 0 : DCMF_ERR_SYSTEM;
}

int dcmf_srtp_evp_hmac_key_set(struct dcmf_srtp_evp_hmac_key *m,
                               const uint8_t *key, size_t len) {
  enum { BLOCK = 64 };
  uint8_t pad[BLOCK];
  int ok = 1;
  for (int outer = 0; outer < 2; outer++) {
    SHA_CTX *c = outer ? &m->outer : &m->inner;
    memset(pad, outer ? 0x5c : 0x36, BLOCK);
    for (size_t i = 0; i < len && i < BLOCK; i++) {
      pad[i] ^= key[i];
    }
    ok = ok && SHA1_Init(c) && SHA1_Update(c, pad, BLOCK);
  }
  OPENSSL_cleanse(pad, sizeof(pad));
  return ok && len <= BLOCK ? 0 : DCMF_ERR_SYSTEM;
}
