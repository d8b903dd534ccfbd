/*
 * srtp_evp_prim.h - the EVP backend's primitives that run per packet
 * (srtp_evp.c's): AES-CM and HMAC-SHA1 on keys made once per key set.
 * The PRF and the plain keystream, for the RFC vectors, are srtp_int.h's.
 */
#ifndef DCMF_SRTP_EVP_PRIM_H
#define DCMF_SRTP_EVP_PRIM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define DCMF_SRTP_EVP_SHA1_LEN 20

/* An HMAC-SHA1 key as the two SHA-1 states after its padded key block
 * (RFC 2104: SHA-1 of K ^ ipad and of K ^ opad). As good as the key:
 * cleanse it with OPENSSL_cleanse. */
struct dcmf_srtp_evp_hmac_key {
  SHA_CTX inner, outer;
};

/* |m| keyed with the |len|-byte |key| (at most a 64-byte block, RFC 2104
 * §2). Returns 0 or DCMF_ERR_SYSTEM. */
int dcmf_srtp_evp_hmac_key_set(struct dcmf_srtp_evp_hmac_key *m,
                               const uint8_t *key, size_t len);

/* HMAC-SHA1 of |a| || |b| (|bn| may be 0) under |m|. Returns 0 or
 * DCMF_ERR_SYSTEM. */
int dcmf_srtp_evp_hmac(const struct dcmf_srtp_evp_hmac_key *m, const uint8_t *a,
                       size_t an, const uint8_t *b, size_t bn,
                       uint8_t out[DCMF_SRTP_EVP_SHA1_LEN]);

/* AES-CM (RFC 3711 §4.1.1): XORs the |n| bytes at |p| with the keystream
 * from counter block |iv|, E(iv), E(iv + 1) ..., the whole 128 bits
 * counting big endian as OpenSSL's CTR mode does. |c| is a keyed AES-ECB
 * encryption context without padding. Returns 0 or DCMF_ERR_SYSTEM. */
int dcmf_srtp_evp_cm_xor(EVP_CIPHER_CTX *c, const uint8_t iv[16], uint8_t *p,
                         size_t n);

#endif
