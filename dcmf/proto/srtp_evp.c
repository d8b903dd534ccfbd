/*
 * srtp_evp.c - the OpenSSL EVP backend of the SRTP engine (srtp_int.h).
 *
 * The transforms are RFC 3711's and RFC 7714's, done on OpenSSL 3's EVP
 * ciphers and MACs; the bookkeeping around them (ROC estimate, replay
 * lists, SRTCP index, when a state is made, what a re-key keeps, the
 * order of the checks and so which error a bad packet gets) follows
 * libsrtp2 2.5 step for step, because the engine promises the same
 * bytes and verdicts on either backend (the unit tests and the
 * differential fuzz target compare them).
 *
 * Speed: the session keys are derived once per key set (RFC 3711 §4.3,
 * key derivation rate 0) into keyed EVP_CIPHER_CTX objects, one per
 * direction and packet kind (AES-ECB for AES-CM's keystream, AES-GCM
 * for AEAD), and HMAC-SHA1 states with the key already hashed in (RFC
 * 2104: SHA-1 of K ^ ipad and of K ^ opad, one block each); a packet
 * only writes its counter blocks (or sets a GCM IV) and copies the two
 * states, so nothing is allocated per packet except a new SSRC's state.
 *
 * The primitives (the PRF, AES-CM, HMAC-SHA1) are srtp_evp_prim.c's.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "errors.h"
#include "srtp.h"
#include "srtp_evp_prim.h"
#include "srtp_int.h"

#define AUTH_KEY_LEN 20 /* HMAC-SHA1 key, RFC 3711 §4.3.3 (n_a = 160) */
#define SHA1_LEN DCMF_SRTP_EVP_SHA1_LEN
#define GCM_TAG_LEN 16
#define GCM_IV_LEN 12
#define SEQ_MEDIAN 32768 /* 2^15: libsrtp2's seq_num_median */
#define SEQ_MAX 65536
#define RTCP_INDEX_MAX 0x7fffffffu
#define SRTCP_E_BIT 0x80000000u
#define WINDOW_WORDS (DCMF_SRTP_REPLAY_WINDOW / 64)
#define RTCP_WORDS (DCMF_SRTP_RTCP_WINDOW / 64)

_Static_assert(DCMF_SRTP_REPLAY_WINDOW % 64 == 0, "window in whole words");

/* RFC 3711 §4.3.1 key derivation labels. */
enum {
  LABEL_RTP_KEY = 0,
  LABEL_RTP_AUTH = 1,
  LABEL_RTP_SALT = 2,
  LABEL_RTCP_KEY = 3,
  LABEL_RTCP_AUTH = 4,
  LABEL_RTCP_SALT = 5,
};

/* The keys of one direction, for SRTP and SRTCP. |mac| is unused (zero)
 * for GCM. */
struct keyset {
  EVP_CIPHER_CTX *cipher[2]; /* [0] SRTP, [1] SRTCP */
  struct dcmf_srtp_evp_hmac_key mac[2];
  uint8_t salt[2][DCMF_SRTP_SALT_MAX];
};

/* One SSRC's state in one direction: libsrtp2's stream. |index| and
 * |bits| are its srtp_rdbx_t (the highest extended sequence number and a
 * list of the DCMF_SRTP_REPLAY_WINDOW before it: bit k says index - k was
 * seen); |rtcp_start| and |rtcp_bits| its srtp_rdb_t (outbound: the last
 * SRTCP index sent; inbound: the window's first index, bit k says
 * rtcp_start + k was seen). */
struct stream {
  uint32_t ssrc;
  uint32_t rtcp_start;
  uint64_t index;
  uint64_t bits[WINDOW_WORDS];
  uint64_t rtcp_bits[RTCP_WORDS];
};

struct side {
  struct keyset keys;
  /* Inbound only: the previous keys while the fallback is held (srtp.h);
   * |cipher[0]| is NULL otherwise. */
  struct keyset prev;
  struct stream *streams;
  size_t n, cap;
};

struct evp {
  int gcm;
  struct side side[2]; /* by enum dcmf_srtp_dir */
};

/* ---- primitives ---- */

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

/* XORs 4 bytes of |v| into |p|. */
static void xor32(uint8_t *p, uint32_t v) {
  p[0] ^= (uint8_t)(v >> 24);
  p[1] ^= (uint8_t)(v >> 16);
  p[2] ^= (uint8_t)(v >> 8);
  p[3] ^= (uint8_t)v;
}

/* AES-CM counter block of RFC 3711 §4.1.1: (k_s * 2^16) XOR (SSRC *
 * 2^64) XOR (i * 2^16), i the 48-bit packet (or SRTCP) index. */
static void cm_iv(uint8_t iv[16], const uint8_t *salt, uint32_t ssrc,
                  uint64_t i) {
  memcpy(iv, salt, 14);
  iv[14] = iv[15] = 0;
  xor32(iv + 4, ssrc);
  xor32(iv + 8, (uint32_t)(i >> 16));
  iv[12] ^= (uint8_t)(i >> 8);
  iv[13] ^= (uint8_t)i;
}

/* GCM: AAD |a1| || |a2|, |p| (|n| bytes) in place, |tag| out (seal) or in
 * (open). Open returns DCMF_ERR_AUTH when the tag does not verify. */
static int gcm_run(EVP_CIPHER_CTX *c, int seal, const uint8_t iv[GCM_IV_LEN],
                   const uint8_t *a1, size_t a1n, const uint8_t *a2, size_t a2n,
                   uint8_t *p, size_t n, uint8_t *tag) {
  int outl;
  if (!EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, seal) ||
      !EVP_CipherUpdate(c, NULL, &outl, a1, (int)a1n) ||
      (a2n > 0 && !EVP_CipherUpdate(c, NULL, &outl, a2, (int)a2n)) ||
      (n > 0 && !EVP_CipherUpdate(c, p, &outl, p, (int)n))) {
    return DCMF_ERR_SYSTEM;
  }
  if (seal) {
    if (!EVP_CipherFinal_ex(c, p + n, &outl) ||
        !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, tag)) {
      return DCMF_ERR_SYSTEM;
    }
    return 0;
  }
  if (!EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, tag)) {
    return DCMF_ERR_SYSTEM;
  }
  return EVP_CipherFinal_ex(c, p + n, &outl) > 0 ? 0 : DCMF_ERR_AUTH;
}

/* ---- keys ---- */

static void keyset_free(struct keyset *k) {
  for (int i = 0; i < 2; i++) {
    EVP_CIPHER_CTX_free(k->cipher[i]);
  }
  OPENSSL_cleanse(k->mac, sizeof(k->mac));
  OPENSSL_cleanse(k->salt, sizeof(k->salt));
  memset(k, 0, sizeof(*k));
}

static const EVP_CIPHER *session_cipher(int gcm, size_t key_len) {
  if (gcm) {
    return key_len == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm();
  }
  return key_len == 32 ? EVP_aes_256_ecb() : EVP_aes_128_ecb(); /* cm_xor */
}

/* Keys |k->cipher[i]| (and |k->mac[i]| when |auth|) for packet kind |i|
 * from session key |key| and auth key |auth|. */
static int keyset_key(struct keyset *k, int i, int gcm, int seal,
                      const uint8_t *key, size_t key_len, const uint8_t *auth) {
  k->cipher[i] = EVP_CIPHER_CTX_new();
  if (k->cipher[i] == NULL) {
    return DCMF_ERR_NOMEM;
  }
  /* AES-CM is its own inverse: both directions encrypt counter blocks. */
  if (!EVP_CipherInit_ex(k->cipher[i], session_cipher(gcm, key_len), NULL, key,
                         NULL, gcm ? seal : 1) ||
      (!gcm && !EVP_CIPHER_CTX_set_padding(k->cipher[i], 0))) {
    return DCMF_ERR_SYSTEM;
  }
  if (auth == NULL) {
    return 0;
  }
  return dcmf_srtp_evp_hmac_key_set(&k->mac[i], auth, AUTH_KEY_LEN);
}

/* Derives the session keys of one direction from master key || salt
 * |ks| (RFC 3711 §4.3, RFC 7714 §11 for GCM's 96-bit salt). */
static int keyset_make(struct keyset *k, const struct dcmf_srtp_profile_info *p,
                       int gcm, int seal, const uint8_t *ks) {
  const uint8_t *mkey = ks, *msalt = ks + p->key_len;
  uint8_t key[DCMF_SRTP_KEY_MAX], auth[AUTH_KEY_LEN];
  int rc = 0;
  memset(k, 0, sizeof(*k));
  for (int i = 0; i < 2 && rc == 0; i++) {
    uint8_t base = i == 0 ? LABEL_RTP_KEY : LABEL_RTCP_KEY;
    rc = dcmf_srtp_evp_prf(mkey, p->key_len, msalt, p->salt_len, base, key,
                           p->key_len);
    if (rc == 0) {
      rc = dcmf_srtp_evp_prf(mkey, p->key_len, msalt, p->salt_len,
                             (uint8_t)(base + 2), k->salt[i], p->salt_len);
    }
    if (rc == 0 && !gcm) {
      rc = dcmf_srtp_evp_prf(mkey, p->key_len, msalt, p->salt_len,
                             (uint8_t)(base + 1), auth, AUTH_KEY_LEN);
    }
    if (rc == 0) {
      rc = keyset_key(k, i, gcm, seal, key, p->key_len, gcm ? NULL : auth);
    }
  }
  OPENSSL_cleanse(key, sizeof(key));
  OPENSSL_cleanse(auth, sizeof(auth));
  if (rc != 0) {
    keyset_free(k);
  }
  return rc;
}

static int is_gcm(const struct dcmf_srtp_profile_info *p) {
  return p->profile == DCMF_SRTP_AEAD_AES_128_GCM ||
         p->profile == DCMF_SRTP_AEAD_AES_256_GCM;
}

/* Both directions' new keys into |nk|. */
static int keys_both(const struct dcmf_srtp_profile_info *p,
                     const struct dcmf_srtp_keys *k, struct keyset nk[2]) {
  int gcm = is_gcm(p);
  int rc = keyset_make(&nk[DCMF_SRTP_OUT], p, gcm, 1, k->ours);
  if (rc == 0) {
    rc = keyset_make(&nk[DCMF_SRTP_IN], p, gcm, 0, k->peers);
    if (rc != 0) {
      keyset_free(&nk[DCMF_SRTP_OUT]);
    }
  }
  return rc;
}

static void evp_free(struct dcmf_srtp *s) {
  struct evp *e = s->impl;
  for (int d = 0; d < 2; d++) {
    keyset_free(&e->side[d].keys);
    keyset_free(&e->side[d].prev);
    free(e->side[d].streams);
  }
  free(e);
}

static int evp_make(struct dcmf_srtp *s, const struct dcmf_srtp_keys *k) {
  struct evp *e = calloc(1, sizeof(*e));
  if (e == NULL) {
    return DCMF_ERR_NOMEM;
  }
  struct keyset nk[2];
  int rc = keys_both(s->info, k, nk);
  if (rc != 0) {
    free(e);
    return rc;
  }
  e->gcm = is_gcm(s->info);
  e->side[DCMF_SRTP_OUT].keys = nk[DCMF_SRTP_OUT];
  e->side[DCMF_SRTP_IN].keys = nk[DCMF_SRTP_IN];
  s->impl = e;
  return 0;
}

static int evp_rekey(struct dcmf_srtp *s, const struct dcmf_srtp_keys *k,
                     int keep) {
  struct evp *e = s->impl;
  struct keyset nk[2];
  int rc = keys_both(s->info, k, nk);
  if (rc != 0) {
    return rc;
  }
  e->gcm = is_gcm(s->info);
  for (int d = 0; d < 2; d++) {
    struct side *sd = &e->side[d];
    keyset_free(&sd->prev);
    if (keep && d == DCMF_SRTP_IN) {
      sd->prev = sd->keys; /* the fallback (srtp.h) */
    } else {
      keyset_free(&sd->keys);
    }
    sd->keys = nk[d];
    /* libsrtp2's srtp_update clones each stream anew from the new
     * template and restores only its extended sequence number and its
     * whole SRTCP replay state: the SRTP replay list starts empty. */
    for (size_t i = 0; i < sd->n; i++) {
      memset(sd->streams[i].bits, 0, sizeof(sd->streams[i].bits));
    }
  }
  return 0;
}

/* ---- per-SSRC state ---- */

static struct stream *stream_find(struct side *sd, uint32_t ssrc) {
  for (size_t i = 0; i < sd->n; i++) {
    if (sd->streams[i].ssrc == ssrc) {
      return &sd->streams[i];
    }
  }
  return NULL;
}

/* A new state for |ssrc| at ROC 0, index 0, empty lists, or NULL. */
static struct stream *stream_add(struct side *sd, uint32_t ssrc) {
  if (sd->n == sd->cap) {
    size_t cap = sd->cap == 0 ? 4 : sd->cap * 2;
    struct stream *n = realloc(sd->streams, cap * sizeof(*n));
    if (n == NULL) {
      return NULL;
    }
    sd->streams = n;
    sd->cap = cap;
  }
  struct stream *st = &sd->streams[sd->n++];
  memset(st, 0, sizeof(*st));
  st->ssrc = ssrc;
  return st;
}

/* The packet index a sequence number |seq| stands for, from the highest
 * index |index| (RFC 3711 §3.3.1 and Appendix A; libsrtp2's
 * srtp_rdbx_estimate_index and srtp_index_guess, to the same guesses,
 * including that an index not past 2^15 is taken as ROC 0). Returns the
 * distance from |index|. */
static int32_t estimate(uint64_t index, uint16_t seq, uint64_t *guess) {
  if (index <= SEQ_MEDIAN) {
    *guess = seq;
    return (int32_t)seq - (int32_t)(uint16_t)index;
  }
  uint32_t roc = (uint32_t)(index >> 16);
  int32_t local = (int32_t)(uint16_t)index, s = seq, d;
  if (local < SEQ_MEDIAN) {
    if (s - local > SEQ_MEDIAN) {
      roc--;
      d = s - local - SEQ_MAX;
    } else {
      d = s - local;
    }
  } else if (local - SEQ_MEDIAN > s) {
    roc++;
    d = s - local + SEQ_MAX;
  } else {
    d = s - local;
  }
  *guess = (uint64_t)roc << 16 | (uint64_t)seq;
  return d;
}

static int bit_get(const uint64_t *w, uint32_t k) {
  return (int)(w[k / 64] >> (k % 64) & 1);
}

static void bit_set(uint64_t *w, uint32_t k) {
  w[k / 64] |= (uint64_t)1 << (k % 64);
}

/* Bit k becomes bit k + |d| (the SRTP list ages by |d| packets). */
static void bits_up(uint64_t *w, size_t n, uint32_t d) {
  if (d >= n * 64) {
    memset(w, 0, n * sizeof(*w));
    return;
  }
  size_t ws = d / 64, bs = d % 64;
  for (size_t i = n; i-- > 0;) {
    uint64_t v = 0;
    if (i >= ws) {
      v = w[i - ws] << bs;
      if (bs != 0 && i > ws) {
        v |= w[i - ws - 1] >> (64 - bs);
      }
    }
    w[i] = v;
  }
}

/* Bit k becomes bit k - |d| (the SRTCP window slides by |d|). */
static void bits_down(uint64_t *w, size_t n, uint32_t d) {
  if (d >= n * 64) {
    memset(w, 0, n * sizeof(*w));
    return;
  }
  size_t ws = d / 64, bs = d % 64;
  for (size_t i = 0; i < n; i++) {
    uint64_t v = 0;
    if (i + ws < n) {
      v = w[i + ws] >> bs;
      if (bs != 0 && i + ws + 1 < n) {
        v |= w[i + ws + 1] << (64 - bs);
      }
    }
    w[i] = v;
  }
}

/* libsrtp2's srtp_rdbx_check: 0 or DCMF_ERR_REPLAY. */
static int rtp_check(const struct stream *st, int32_t delta) {
  if (delta > 0) {
    return 0;
  }
  if (delta < -(DCMF_SRTP_REPLAY_WINDOW - 1) ||
      bit_get(st->bits, (uint32_t)-delta)) {
    return DCMF_ERR_REPLAY;
  }
  return 0;
}

/* libsrtp2's srtp_rdbx_add_index. */
static void rtp_add(struct stream *st, int32_t delta) {
  if (delta > 0) {
    st->index += (uint64_t)delta;
    bits_up(st->bits, WINDOW_WORDS, (uint32_t)delta);
    bit_set(st->bits, 0);
  } else {
    bit_set(st->bits, (uint32_t)-delta);
  }
}

/* libsrtp2's srtp_rdb_check: 0 or DCMF_ERR_REPLAY. */
static int rtcp_check(const struct stream *st, uint32_t idx) {
  if (idx > st->rtcp_start + DCMF_SRTP_RTCP_WINDOW - 1) {
    return 0;
  }
  if (idx < st->rtcp_start || bit_get(st->rtcp_bits, idx - st->rtcp_start)) {
    return DCMF_ERR_REPLAY;
  }
  return 0;
}

/* libsrtp2's srtp_rdb_add_index. */
static void rtcp_add(struct stream *st, uint32_t idx) {
  if (idx < st->rtcp_start) {
    return;
  }
  uint32_t d = idx - st->rtcp_start;
  if (d < DCMF_SRTP_RTCP_WINDOW) {
    bit_set(st->rtcp_bits, d);
    return;
  }
  d -= DCMF_SRTP_RTCP_WINDOW - 1;
  bits_down(st->rtcp_bits, RTCP_WORDS, d);
  bit_set(st->rtcp_bits, DCMF_SRTP_RTCP_WINDOW - 1);
  st->rtcp_start += d;
}

/* ---- packets ---- */

/* The 12-byte GCM IV: salt XOR (00 00 || SSRC || ROC || SEQ) for SRTP
 * (RFC 7714 §8.1), salt XOR (00 00 || SSRC || 00 00 || index) for SRTCP
 * (§9.1); |hi| || |lo| is ROC || SEQ or 0 || index. */
static void gcm_iv(uint8_t iv[GCM_IV_LEN], const uint8_t *salt, uint32_t ssrc,
                   uint32_t hi, uint32_t lo_seq, int rtcp) {
  memcpy(iv, salt, GCM_IV_LEN);
  xor32(iv + 2, ssrc);
  if (rtcp) {
    xor32(iv + 8, lo_seq);
  } else {
    xor32(iv + 6, hi);
    iv[10] ^= (uint8_t)(lo_seq >> 8);
    iv[11] ^= (uint8_t)lo_seq;
  }
}

static int rtp_protect(struct evp *e, const struct dcmf_srtp_profile_info *p,
                       uint8_t *buf, size_t len, size_t *out_len) {
  struct side *sd = &e->side[DCMF_SRTP_OUT];
  uint32_t ssrc = get32(buf + 8);
  struct stream *st = stream_find(sd, ssrc);
  if (st == NULL && (st = stream_add(sd, ssrc)) == NULL) {
    return DCMF_ERR_NOMEM;
  }
  uint64_t est;
  int32_t delta = estimate(st->index, (uint16_t)(buf[2] << 8 | buf[3]), &est);
  /* Never the same index twice under one key (RFC 3711 §9.2). */
  int rc = rtp_check(st, delta);
  if (rc != 0) {
    return rc;
  }
  rtp_add(st, delta);
  size_t h = dcmf_srtp_rtp_header_len(buf, len);
  if (e->gcm) {
    uint8_t iv[GCM_IV_LEN];
    gcm_iv(iv, sd->keys.salt[0], ssrc, (uint32_t)(est >> 16), (uint32_t)est, 0);
    rc = gcm_run(sd->keys.cipher[0], 1, iv, buf, h, NULL, 0, buf + h, len - h,
                 buf + len);
    *out_len = len + GCM_TAG_LEN;
    return rc;
  }
  uint8_t iv[16], roc[4], tag[SHA1_LEN];
  cm_iv(iv, sd->keys.salt[0], ssrc, est);
  if ((rc = dcmf_srtp_evp_cm_xor(sd->keys.cipher[0], iv, buf + h, len - h)) !=
      0) {
    return rc;
  }
  /* The tag covers the packet and then the ROC (RFC 3711 §4.2). */
  put32(roc, (uint32_t)(est >> 16));
  if ((rc = dcmf_srtp_evp_hmac(&sd->keys.mac[0], buf, len, roc, 4, tag)) != 0) {
    return rc;
  }
  memcpy(buf + len, tag, p->rtp_tag_len);
  *out_len = len + p->rtp_tag_len;
  return 0;
}

/* Under keys |ks|: the current ones, or the previous (the fallback)
 * with the same state. */
static int rtp_unprotect(struct evp *e, const struct dcmf_srtp_profile_info *p,
                         const struct keyset *ks, uint8_t *buf, size_t len,
                         size_t *out_len) {
  struct side *sd = &e->side[DCMF_SRTP_IN];
  uint32_t ssrc = get32(buf + 8);
  uint16_t seq = (uint16_t)(buf[2] << 8 | buf[3]);
  struct stream *st = stream_find(sd, ssrc);
  uint64_t est;
  int32_t delta;
  int rc;
  if (st == NULL) {
    /* A new SSRC: ROC 0, checked against no list (libsrtp2's template). */
    est = seq;
    delta = seq;
  } else {
    delta = estimate(st->index, seq, &est);
    if ((rc = rtp_check(st, delta)) != 0) {
      return rc;
    }
  }
  size_t tag_len = e->gcm ? GCM_TAG_LEN : p->rtp_tag_len;
  size_t n = len - tag_len;
  size_t h = dcmf_srtp_rtp_header_len(buf, n);
  if (e->gcm) {
    uint8_t iv[GCM_IV_LEN], tag[GCM_TAG_LEN];
    memcpy(tag, buf + n, GCM_TAG_LEN);
    gcm_iv(iv, ks->salt[0], ssrc, (uint32_t)(est >> 16), (uint32_t)est, 0);
    rc = gcm_run(ks->cipher[0], 0, iv, buf, h, NULL, 0, buf + h, n - h, tag);
  } else {
    uint8_t iv[16], roc[4], tag[SHA1_LEN];
    put32(roc, (uint32_t)(est >> 16));
    rc = dcmf_srtp_evp_hmac(&ks->mac[0], buf, n, roc, 4, tag);
    if (rc == 0 && CRYPTO_memcmp(tag, buf + n, tag_len) != 0) {
      rc = DCMF_ERR_AUTH;
    }
    if (rc == 0) {
      cm_iv(iv, ks->salt[0], ssrc, est);
      rc = dcmf_srtp_evp_cm_xor(ks->cipher[0], iv, buf + h, n - h);
    }
  }
  if (rc != 0) {
    return rc;
  }
  /* Only an authenticated packet makes a state (srtp.h). */
  if (st == NULL && (st = stream_add(sd, ssrc)) == NULL) {
    return DCMF_ERR_NOMEM;
  }
  rtp_add(st, delta);
  *out_len = n;
  return 0;
}

static int rtcp_protect(struct evp *e, const struct dcmf_srtp_profile_info *p,
                        uint8_t *buf, size_t len, size_t *out_len) {
  struct side *sd = &e->side[DCMF_SRTP_OUT];
  uint32_t ssrc = get32(buf + 4);
  struct stream *st = stream_find(sd, ssrc);
  if (st == NULL && (st = stream_add(sd, ssrc)) == NULL) {
    return DCMF_ERR_NOMEM;
  }
  /* libsrtp2 counts before it sends: the first index is 1 (srtp.h). */
  if (st->rtcp_start >= RTCP_INDEX_MAX) {
    return DCMF_ERR_SYSTEM; /* libsrtp2's key_expired */
  }
  uint32_t idx = ++st->rtcp_start;
  uint8_t trailer[4];
  put32(trailer, SRTCP_E_BIT | idx);
  const size_t h = DCMF_SRTP_RTCP_HEADER_LEN;
  int rc;
  if (e->gcm) {
    /* RFC 7714 §9: header || ciphertext || tag || E || index; the AAD is
     * the header and the E || index word. */
    uint8_t iv[GCM_IV_LEN];
    gcm_iv(iv, sd->keys.salt[1], ssrc, 0, idx, 1);
    rc = gcm_run(sd->keys.cipher[1], 1, iv, buf, h, trailer, 4, buf + h,
                 len - h, buf + len);
    memcpy(buf + len + GCM_TAG_LEN, trailer, 4);
    *out_len = len + GCM_TAG_LEN + 4;
    return rc;
  }
  /* RFC 3711 §3.4: header || ciphertext || E || index || tag, the tag
   * over all before it. */
  uint8_t iv[16], tag[SHA1_LEN];
  cm_iv(iv, sd->keys.salt[1], ssrc, idx);
  if ((rc = dcmf_srtp_evp_cm_xor(sd->keys.cipher[1], iv, buf + h, len - h)) !=
      0) {
    return rc;
  }
  memcpy(buf + len, trailer, 4);
  if ((rc = dcmf_srtp_evp_hmac(&sd->keys.mac[1], buf, len + 4, NULL, 0, tag)) !=
      0) {
    return rc;
  }
  memcpy(buf + len + 4, tag, p->rtcp_tag_len);
  *out_len = len + 4 + p->rtcp_tag_len;
  return 0;
}

static int rtcp_unprotect(struct evp *e, const struct dcmf_srtp_profile_info *p,
                          uint8_t *buf, size_t len, size_t *out_len) {
  struct side *sd = &e->side[DCMF_SRTP_IN];
  uint32_t ssrc = get32(buf + 4);
  struct stream *st = stream_find(sd, ssrc);
  const size_t h = DCMF_SRTP_RTCP_HEADER_LEN;
  size_t tag_len = e->gcm ? GCM_TAG_LEN : p->rtcp_tag_len;
  size_t n = len - tag_len - 4; /* the RTCP packet's own bytes */
  /* CM: E || index, then the tag; GCM: the tag, then E || index. */
  const uint8_t *tp = e->gcm ? buf + len - 4 : buf + n;
  uint8_t trailer[4];
  memcpy(trailer, tp, 4);
  int encrypted = (trailer[0] & 0x80) != 0;
  uint32_t idx = get32(trailer) & RTCP_INDEX_MAX;
  int rc;
  if (!e->gcm && !encrypted) {
    /* libsrtp2's cant_check: our profiles always encrypt SRTCP. */
    return DCMF_ERR_MALFORMED;
  }
  /* An SSRC with no state yet checks against an empty window. */
  if (st != NULL && (rc = rtcp_check(st, idx)) != 0) {
    return rc;
  }
  if (e->gcm) {
    /* E clear: RFC 7714 §9.3, the whole packet is AAD, none encrypted
     * (libsrtp2 takes it when the tag verifies, and so do we). */
    uint8_t iv[GCM_IV_LEN], tag[GCM_TAG_LEN];
    memcpy(tag, buf + n, GCM_TAG_LEN);
    gcm_iv(iv, sd->keys.salt[1], ssrc, 0, idx, 1);
    rc = encrypted ? gcm_run(sd->keys.cipher[1], 0, iv, buf, h, trailer, 4,
                             buf + h, n - h, tag)
                   : gcm_run(sd->keys.cipher[1], 0, iv, buf, n, trailer, 4,
                             buf + n, 0, tag);
  } else {
    uint8_t iv[16], tag[SHA1_LEN];
    rc = dcmf_srtp_evp_hmac(&sd->keys.mac[1], buf, n + 4, NULL, 0, tag);
    if (rc == 0 && CRYPTO_memcmp(tag, buf + n + 4, tag_len) != 0) {
      rc = DCMF_ERR_AUTH;
    }
    if (rc == 0) {
      cm_iv(iv, sd->keys.salt[1], ssrc, idx);
      rc = dcmf_srtp_evp_cm_xor(sd->keys.cipher[1], iv, buf + h, n - h);
    }
  }
  if (rc != 0) {
    return rc;
  }
  if (st == NULL && (st = stream_add(sd, ssrc)) == NULL) {
    return DCMF_ERR_NOMEM;
  }
  rtcp_add(st, idx);
  *out_len = n;
  return 0;
}

static int evp_protect(struct dcmf_srtp *s, int rtcp, uint8_t *buf, size_t len,
                       size_t *out_len) {
  return rtcp ? rtcp_protect(s->impl, s->info, buf, len, out_len)
              : rtp_protect(s->impl, s->info, buf, len, out_len);
}

static int evp_unprotect(struct dcmf_srtp *s, int rtcp, uint8_t *buf,
                         size_t len, size_t *out_len) {
  return rtcp ? rtcp_unprotect(s->impl, s->info, buf, len, out_len)
              : rtp_unprotect(s->impl, s->info,
                              &((struct evp *)s->impl)->side[DCMF_SRTP_IN].keys,
                              buf, len, out_len);
}

static int evp_unprotect_prev(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                              size_t *out_len) {
  struct evp *e = s->impl;
  return rtp_unprotect(e, s->info, &e->side[DCMF_SRTP_IN].prev, buf, len,
                       out_len);
}

static void evp_drop_prev(struct dcmf_srtp *s) {
  keyset_free(&((struct evp *)s->impl)->side[DCMF_SRTP_IN].prev);
}

static int evp_forget(struct dcmf_srtp *s, enum dcmf_srtp_dir dir,
                      uint32_t ssrc) {
  struct side *sd = &((struct evp *)s->impl)->side[dir];
  struct stream *st = stream_find(sd, ssrc);
  if (st == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  *st = sd->streams[--sd->n];
  return 0;
}

static int evp_roc(const struct dcmf_srtp *s, enum dcmf_srtp_dir dir,
                   uint32_t ssrc, uint32_t *roc) {
  struct side *sd = &((struct evp *)s->impl)->side[dir];
  const struct stream *st = stream_find(sd, ssrc);
  if (st == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  *roc = (uint32_t)(st->index >> 16);
  return 0;
}

const struct dcmf_srtp_backend_ops dcmf_srtp_evp_ops = {
    .make = evp_make,
    .rekey = evp_rekey,
    .free = evp_free,
    .protect = evp_protect,
    .unprotect = evp_unprotect,
    .unprotect_prev = evp_unprotect_prev,
    .drop_prev = evp_drop_prev,
    .forget = evp_forget,
    .roc = evp_roc,
};

/* ---- for the RFC vectors (srtp_int.h) ---- */

int dcmf_srtp_evp_set_session_keys(struct dcmf_srtp *s, const uint8_t *key,
                                   size_t key_len, const uint8_t *salt,
                                   size_t salt_len) {
  if (s->ops != &dcmf_srtp_evp_ops || !is_gcm(s->info) ||
      key_len != s->info->key_len || salt_len != GCM_IV_LEN) {
    return DCMF_ERR_INVALID;
  }
  struct evp *e = s->impl;
  for (int d = 0; d < 2; d++) {
    struct keyset k;
    memset(&k, 0, sizeof(k));
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
      memcpy(k.salt[i], salt, salt_len);
      rc = keyset_key(&k, i, 1, d == DCMF_SRTP_OUT, key, key_len, NULL);
    }
    if (rc != 0) {
      keyset_free(&k);
      return rc;
    }
    keyset_free(&e->side[d].keys);
    e->side[d].keys = k;
  }
  return 0;
}

int dcmf_srtp_evp_set_rtcp_index(struct dcmf_srtp *s, uint32_t ssrc,
                                 uint32_t index) {
  if (s->ops != &dcmf_srtp_evp_ops || index == 0 || index > RTCP_INDEX_MAX) {
    return DCMF_ERR_INVALID;
  }
  struct side *sd = &((struct evp *)s->impl)->side[DCMF_SRTP_OUT];
  struct stream *st = stream_find(sd, ssrc);
  if (st == NULL && (st = stream_add(sd, ssrc)) == NULL) {
    return DCMF_ERR_NOMEM;
  }
  st->rtcp_start = index - 1;
  return 0;
}
