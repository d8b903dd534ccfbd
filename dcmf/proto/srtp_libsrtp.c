/*
 * srtp_libsrtp.c - the libsrtp2 backend of the SRTP engine (srtp_int.h).
 *
 * Two libsrtp2 sessions, one per direction, because a session holds a
 * single wildcard template and a template serves only one direction:
 * |out| has an ssrc_any_outbound template, |in| an ssrc_any_inbound one.
 * libsrtp2 clones the template into an SSRC's own stream on its first
 * packet (inbound: after that packet authenticated), and srtp_update()
 * swaps the template's keys while carrying every cloned stream's
 * extended sequence number (ROC and sequence) and SRTCP index across,
 * which is exactly RFC 3711 §3.3.1's re-key rule.
 *
 * The fallback (srtp.h) must try a packet under the previous keys with
 * the very stream state of the current ones, which libsrtp2 offers only
 * through its master key identifiers (RFC 3711 §3.1's MKI): a stream may
 * hold several master keys, each with an MKI, and srtp_unprotect_mki
 * picks the key named by the MKI in the packet while the ROC estimate
 * and the replay list stay the stream's. So a re-key that keeps the
 * previous keys gives the inbound session two master keys: the new ones
 * first (MKI 0; srtp_unprotect without an MKI uses the first key, so a
 * packet as the peer sends it is checked under them) and the previous
 * ones (MKI 1). To try a packet under the previous keys, we insert MKI 1
 * where libsrtp2 looks for it (before the tag; after it under GCM) into
 * a copy, which the peer's packets never carry. Dropping the fallback
 * only stops those tries: removing the key would need srtp_update, which
 * empties every SRTP replay list, so the unused key stays in the
 * streams until the next re-key or the end of the engine.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <srtp2/srtp.h>

#include "errors.h"
#include "srtp.h"
#include "srtp_int.h"

_Static_assert(DCMF_SRTP_TRAILER_ROOM >= SRTP_MAX_TRAILER_LEN + 4,
               "protect needs libsrtp2's SRTCP trailer room");
_Static_assert(DCMF_SRTP_KEYSALT_MAX >= SRTP_MAX_KEY_LEN,
               "libsrtp2 reads up to SRTP_MAX_KEY_LEN key bytes");

struct lib {
  srtp_t out; /* protect: ssrc_any_outbound template + our SSRCs */
  srtp_t in;  /* unprotect: ssrc_any_inbound template + the peer's */
  /* The peer's current master key || salt, to become the previous keys
   * at the next re-key (libsrtp2 keeps no copy we could ask for). */
  uint8_t peers[DCMF_SRTP_KEYSALT_MAX];
};

/* The MKIs of the inbound master keys while the fallback is held
 * (libsrtp2 copies them; its pointer is not const). */
static const unsigned char mki_current[1] = {0};
static const unsigned char mki_previous[1] = {1};
#define MKI_LEN 1

/*
 * Debian's libsrtp2 does its AES and HMAC on NSS: each cipher it makes
 * opens an NSS context, and freeing the last one shuts NSS down, which
 * unloads NSS's soft token (dlclose). A process holding no SRTP session
 * then pays a dlopen with its relocations for every engine it makes:
 * 3.4 ms per engine made and freed on this machine, against 17 us while
 * some other session is alive. This session is made once per process by
 * the first dcmf_srtp_lib_init() and never freed, so NSS stays loaded
 * for the process's life. It carries no traffic. Written only under
 * dcmf_srtp_lib_init()'s calling rule (one thread, before any engine).
 */
static srtp_t nss_keeper;

static int keep_crypto_loaded(void) {
  if (nss_keeper != NULL) {
    return 0;
  }
  static const uint8_t key[SRTP_AES_ICM_128_KEY_LEN_WSALT];
  srtp_policy_t policy;
  memset(&policy, 0, sizeof(policy));
  srtp_crypto_policy_set_rtp_default(&policy.rtp);
  srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
  policy.ssrc.type = ssrc_any_inbound;
  policy.key = (unsigned char *)key;
  return srtp_create(&nss_keeper, &policy) == srtp_err_status_ok
             ? 0
             : DCMF_ERR_SYSTEM;
}

int dcmf_srtp_lib_init(void) {
  /* A second srtp_init() finds the kernel up (it re-runs the self-test
   * and returns its result) and then refuses to register libsrtp2's own
   * debug module twice, with bad_param: that is the kernel already
   * running, not a failure. Each worker start calls this (worker.c). */
  srtp_err_status_t st = srtp_init();
  if (st != srtp_err_status_ok && st != srtp_err_status_bad_param) {
    return DCMF_ERR_SYSTEM;
  }
  return keep_crypto_loaded();
}

/* libsrtp2's name for |p|; our enum values are the same numbers, but say
 * so once here rather than cast. */
static srtp_profile_t lib_profile(enum dcmf_srtp_profile p) {
  switch (p) {
  case DCMF_SRTP_AES128_CM_SHA1_80:
    return srtp_profile_aes128_cm_sha1_80;
  case DCMF_SRTP_AES128_CM_SHA1_32:
    return srtp_profile_aes128_cm_sha1_32;
  case DCMF_SRTP_AEAD_AES_128_GCM:
    return srtp_profile_aead_aes_128_gcm;
  case DCMF_SRTP_AEAD_AES_256_GCM:
    return srtp_profile_aead_aes_256_gcm;
  }
  return srtp_profile_reserved;
}

/* The template policy of one direction; |key| is borrowed. */
static int policy_make(srtp_policy_t *pol,
                       const struct dcmf_srtp_profile_info *p,
                       srtp_ssrc_type_t type, const uint8_t *key) {
  memset(pol, 0, sizeof(*pol));
  if (srtp_crypto_policy_set_from_profile_for_rtp(
          &pol->rtp, lib_profile(p->profile)) != srtp_err_status_ok ||
      srtp_crypto_policy_set_from_profile_for_rtcp(
          &pol->rtcp, lib_profile(p->profile)) != srtp_err_status_ok) {
    return DCMF_ERR_SYSTEM;
  }
  pol->ssrc.type = type;
  pol->key = (unsigned char *)key; /* libsrtp2 only reads it */
  pol->window_size = DCMF_SRTP_REPLAY_WINDOW;
  /* Never protect one sequence number twice (RFC 3711 §9.2). */
  pol->allow_repeat_tx = 0;
  pol->next = NULL;
  return 0;
}

static int lib_err(srtp_err_status_t st) {
  switch (st) {
  case srtp_err_status_ok:
    return 0;
  case srtp_err_status_alloc_fail:
    return DCMF_ERR_NOMEM;
  case srtp_err_status_auth_fail:
    return DCMF_ERR_AUTH;
  case srtp_err_status_replay_fail:
  case srtp_err_status_replay_old:
    return DCMF_ERR_REPLAY;
  case srtp_err_status_bad_param:
  case srtp_err_status_parse_err:
  /* SRTCP whose E flag says "not encrypted" while we encrypt: libsrtp2
   * will not check it against our policy. */
  case srtp_err_status_cant_check:
    return DCMF_ERR_MALFORMED;
  default:
    return DCMF_ERR_SYSTEM;
  }
}

static int lib_make(struct dcmf_srtp *s, const struct dcmf_srtp_keys *k) {
  srtp_policy_t pol;
  struct lib *l = calloc(1, sizeof(*l));
  if (l == NULL) {
    return DCMF_ERR_NOMEM;
  }
  int rc = policy_make(&pol, s->info, ssrc_any_outbound, k->ours);
  if (rc == 0 && (rc = lib_err(srtp_create(&l->out, &pol))) == 0) {
    rc = policy_make(&pol, s->info, ssrc_any_inbound, k->peers);
    if (rc == 0 && (rc = lib_err(srtp_create(&l->in, &pol))) != 0) {
      srtp_dealloc(l->out);
    }
  }
  if (rc != 0) {
    free(l);
    return rc;
  }
  memcpy(l->peers, k->peers, sizeof(l->peers));
  s->impl = l;
  return 0;
}

static void lib_free(struct dcmf_srtp *s) {
  struct lib *l = s->impl;
  /* Also frees every SSRC stream cloned from the templates. */
  srtp_dealloc(l->out);
  srtp_dealloc(l->in);
  explicit_bzero(l->peers, sizeof(l->peers));
  free(l);
}

static int lib_rekey(struct dcmf_srtp *s, const struct dcmf_srtp_keys *k,
                     int keep) {
  struct lib *l = s->impl;
  srtp_policy_t pol;
  /* srtp_update() re-derives the template and every stream cloned from
   * it, keeping each stream's extended sequence number (so its ROC) and
   * SRTCP replay/index state. */
  int rc = policy_make(&pol, s->info, ssrc_any_outbound, k->ours);
  if (rc == 0) {
    rc = lib_err(srtp_update(l->out, &pol));
  }
  if (rc == 0 &&
      (rc = policy_make(&pol, s->info, ssrc_any_inbound, k->peers)) == 0) {
    /* With the fallback: the new keys first, then the previous (above). */
    srtp_master_key_t cur = {(unsigned char *)k->peers,
                             (unsigned char *)mki_current, MKI_LEN};
    srtp_master_key_t prev = {l->peers, (unsigned char *)mki_previous, MKI_LEN};
    srtp_master_key_t *keys[2] = {&cur, &prev};
    if (keep) {
      pol.key = NULL;
      pol.keys = keys;
      pol.num_master_keys = 2;
    }
    rc = lib_err(srtp_update(l->in, &pol));
  }
  if (rc == 0) {
    memcpy(l->peers, k->peers, sizeof(l->peers));
  }
  return rc;
}

static int lib_protect(struct dcmf_srtp *s, int rtcp, uint8_t *buf, size_t len,
                       size_t *out_len) {
  struct lib *l = s->impl;
  int n = (int)len;
  srtp_err_status_t e =
      rtcp ? srtp_protect_rtcp(l->out, buf, &n) : srtp_protect(l->out, buf, &n);
  int rc = lib_err(e);
  if (rc == 0) {
    *out_len = (size_t)n;
  }
  return rc;
}

static int lib_unprotect(struct dcmf_srtp *s, int rtcp, uint8_t *buf,
                         size_t len, size_t *out_len) {
  struct lib *l = s->impl;
  int n = (int)len;
  srtp_err_status_t e = rtcp ? srtp_unprotect_rtcp(l->in, buf, &n)
                             : srtp_unprotect(l->in, buf, &n);
  /* An AEAD tag that does not verify comes back as a cipher failure. */
  int rc = e == srtp_err_status_cipher_fail ? DCMF_ERR_AUTH : lib_err(e);
  if (rc == 0) {
    *out_len = (size_t)n;
  }
  return rc;
}

static int lib_unprotect_prev(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                              size_t *out_len) {
  struct lib *l = s->impl;
  /* |s->copy| holds the packet (srtp_int.h); MKI 1 goes before the tag,
   * or at the end under GCM, where libsrtp2 2.5's srtp_get_session_keys
   * looks for it (GCM's tag counts as ciphertext there). */
  size_t tag = s->info->profile == DCMF_SRTP_AEAD_AES_128_GCM ||
                       s->info->profile == DCMF_SRTP_AEAD_AES_256_GCM
                   ? 0
                   : s->info->rtp_tag_len;
  uint8_t *p = s->copy;
  memmove(p + len - tag + MKI_LEN, p + len - tag, tag);
  memcpy(p + len - tag, mki_previous, MKI_LEN);
  int n = (int)(len + MKI_LEN);
  srtp_err_status_t e = srtp_unprotect_mki(l->in, p, &n, 1);
  int rc = e == srtp_err_status_cipher_fail || e == srtp_err_status_bad_mki
               ? DCMF_ERR_AUTH
               : lib_err(e);
  if (rc == 0) {
    memcpy(buf, p, (size_t)n);
    *out_len = (size_t)n;
  }
  return rc;
}

static void lib_drop_prev(struct dcmf_srtp *s) {
  /* Nothing to free: the key stays in the streams, unused (above). */
  (void)s;
}

static int lib_forget(struct dcmf_srtp *s, enum dcmf_srtp_dir dir,
                      uint32_t ssrc) {
  struct lib *l = s->impl;
  srtp_t sess = dir == DCMF_SRTP_OUT ? l->out : l->in;
  /* libsrtp2 keys its streams by the SSRC as it is on the wire. */
  return srtp_remove_stream(sess, htonl(ssrc)) == srtp_err_status_ok
             ? 0
             : DCMF_ERR_NOT_FOUND;
}

static int lib_roc(const struct dcmf_srtp *s, enum dcmf_srtp_dir dir,
                   uint32_t ssrc, uint32_t *roc) {
  const struct lib *l = s->impl;
  srtp_t sess = dir == DCMF_SRTP_OUT ? l->out : l->in;
  /* libsrtp2 finds only cloned streams here, never the template. */
  return srtp_get_stream_roc(sess, ssrc, roc) == srtp_err_status_ok
             ? 0
             : DCMF_ERR_NOT_FOUND;
}

const struct dcmf_srtp_backend_ops dcmf_srtp_libsrtp_ops = {
    .make = lib_make,
    .rekey = lib_rekey,
    .free = lib_free,
    .protect = lib_protect,
    .unprotect = lib_unprotect,
    .unprotect_prev = lib_unprotect_prev,
    .drop_prev = lib_drop_prev,
    .forget = lib_forget,
    .roc = lib_roc,
};
