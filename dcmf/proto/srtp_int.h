/*
 * srtp_int.h - inside the SRTP engine (srtp.h): what srtp.c shares with
 * its two backends, srtp_libsrtp.c (libsrtp2) and srtp_evp.c (OpenSSL
 * EVP). Not for callers of the engine; the unit tests include it for the
 * RFC vectors of the EVP backend's key derivation and ciphers.
 *
 * srtp.c owns what does not depend on the crypto: the profile table, the
 * argument checks of new and rekey, the alignment, length, room and
 * header checks of every packet, the broken flag and the counters. A
 * backend gets only packets those checks passed and owns the per-SSRC
 * state (ROC, replay lists, SRTCP index) and the keys.
 */
#ifndef DCMF_SRTP_INT_H
#define DCMF_SRTP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "srtp.h"

#define DCMF_SRTP_RTP_HEADER_LEN 12
#define DCMF_SRTP_RTCP_HEADER_LEN 8
#define DCMF_SRTP_SRTCP_INDEX_LEN 4
/* The largest master key and salt of a profile, and room for both. */
#define DCMF_SRTP_KEY_MAX 32
#define DCMF_SRTP_SALT_MAX 14
#define DCMF_SRTP_KEYSALT_MAX 64
/* SRTCP replay window of libsrtp2's srtp_rdb_t, kept by the EVP backend
 * so that both refuse the same packets. */
#define DCMF_SRTP_RTCP_WINDOW 128

/* Our and the peer's master key || salt, split from the exporter's
 * output by our role (RFC 5764 §4.2). */
struct dcmf_srtp_keys {
  uint8_t ours[DCMF_SRTP_KEYSALT_MAX];
  uint8_t peers[DCMF_SRTP_KEYSALT_MAX];
};

/* The hooks of a backend. |s->info| is the profile of |k| during
 * |make| and |rekey| (srtp.c sets it first and restores it on failure).
 * Errors as srtp.h says; |protect| and |unprotect| return the error of
 * the packet and srtp.c counts it. */
struct dcmf_srtp_backend_ops {
  /* Makes s->impl from |k|. */
  int (*make)(struct dcmf_srtp *s, const struct dcmf_srtp_keys *k);
  /* Re-keys s->impl with |k|, keeping every SSRC's ROC and SRTCP index.
   * With |keep| (the profile is the same), the inbound keys being
   * replaced become the previous keys, replacing any held; without it,
   * previous keys held are dropped. Failure leaves the engine broken
   * (srtp.c marks it). */
  int (*rekey)(struct dcmf_srtp *s, const struct dcmf_srtp_keys *k, int keep);
  void (*free)(struct dcmf_srtp *s);
  /* |buf| holds a packet whose header fits (RTP: version 2, CSRCs and
   * extension within |len|; RTCP: 8 bytes, version 2) with
   * DCMF_SRTP_TRAILER_ROOM bytes after it. */
  int (*protect)(struct dcmf_srtp *s, int rtcp, uint8_t *buf, size_t len,
                 size_t *out_len);
  /* |buf| holds a packet long enough for its header and trailer (RTP:
   * the header fits before the tag; RTCP: header, index and tag). */
  int (*unprotect)(struct dcmf_srtp *s, int rtcp, uint8_t *buf, size_t len,
                   size_t *out_len);
  /* As |unprotect| for SRTP under the previous keys, with the same
   * per-SSRC state; called only while they are held, with the packet as
   * it was before |unprotect| refused it for authentication. |s->copy|
   * holds the same bytes and has room for |len| + 1: a backend may use
   * it as scratch. */
  int (*unprotect_prev)(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                        size_t *out_len);
  /* Forgets the previous keys (they are held). */
  void (*drop_prev)(struct dcmf_srtp *s);
  int (*forget)(struct dcmf_srtp *s, enum dcmf_srtp_dir dir, uint32_t ssrc);
  int (*roc)(const struct dcmf_srtp *s, enum dcmf_srtp_dir dir, uint32_t ssrc,
             uint32_t *roc);
};

struct dcmf_srtp {
  const struct dcmf_srtp_backend_ops *ops;
  enum dcmf_srtp_backend backend;
  const struct dcmf_srtp_profile_info *info;
  int broken; /* a re-key failed half-way: refuse everything */
  /* The fallback (srtp.h): the backend holds previous inbound keys, and
   * |copy| keeps each inbound SRTP packet as it came, so that it can be
   * tried again after the current keys refused it (GCM and libsrtp2 may
   * have changed it in place). NULL when no fallback is held. */
  uint8_t *copy;
  struct dcmf_srtp_stats stats[2];
  void *impl; /* the backend's */
};

extern const struct dcmf_srtp_backend_ops dcmf_srtp_libsrtp_ops;
extern const struct dcmf_srtp_backend_ops dcmf_srtp_evp_ops;

/* Bytes of the RTP header at |p| (fixed part, CSRCs, extension), or 0
 * when it is not RTP version 2 or does not fit in |len|. */
size_t dcmf_srtp_rtp_header_len(const uint8_t *p, size_t len);

/* ---- the EVP backend's primitives, for the RFC vectors ---- */

/* The AES-CM PRF of RFC 3711 §4.3.3 with key derivation rate 0: |n|
 * bytes for |label| from the master key |key| (16 or 32 bytes) and the
 * master salt |salt| (|salt_len| bytes, 12 or 14; a 12-byte GCM salt is
 * padded with zeros to 14, as libsrtp2 does). Returns 0 or
 * DCMF_ERR_SYSTEM. */
int dcmf_srtp_evp_prf(const uint8_t *key, size_t key_len, const uint8_t *salt,
                      size_t salt_len, uint8_t label, uint8_t *out, size_t n);

/* |n| bytes of AES-CM keystream (RFC 3711 §4.1.1) for the 16-byte
 * counter block |iv| under |key| (16 or 32 bytes). Returns 0 or
 * DCMF_ERR_SYSTEM. */
int dcmf_srtp_evp_keystream(const uint8_t *key, size_t key_len,
                            const uint8_t iv[16], uint8_t *out, size_t n);

/* Session keys given directly, as RFC 7714's examples give them: the
 * EVP engine |s| (made with the profile the keys fit) takes |key| and
 * |salt| as the session encryption key and salt of both SRTP and SRTCP
 * in both directions (GCM profiles only: CM also needs an auth key).
 * Returns 0, DCMF_ERR_INVALID (not an EVP GCM engine, wrong lengths) or
 * DCMF_ERR_SYSTEM. */
int dcmf_srtp_evp_set_session_keys(struct dcmf_srtp *s, const uint8_t *key,
                                   size_t key_len, const uint8_t *salt,
                                   size_t salt_len);

/* Sets the outbound SRTCP counter of |ssrc| so that its next packet
 * carries |index| (RFC 7714 §17 starts at 0x5d4); makes the state.
 * Returns 0, DCMF_ERR_INVALID (not EVP, |index| 0 or past 2^31 - 1) or
 * DCMF_ERR_NOMEM. */
int dcmf_srtp_evp_set_rtcp_index(struct dcmf_srtp *s, uint32_t ssrc,
                                 uint32_t index);

#endif
