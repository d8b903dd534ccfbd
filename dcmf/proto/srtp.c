/*
 * srtp.c - the SRTP engine on libsrtp2 (srtp.h says what it does).
 *
 * Two libsrtp2 sessions, one per direction, because a session holds a
 * single wildcard template and a template serves only one direction:
 * |out| has an ssrc_any_outbound template, |in| an ssrc_any_inbound one.
 * libsrtp2 clones the template into an SSRC's own stream on its first
 * packet (inbound: after that packet authenticated), and srtp_update()
 * swaps the template's keys while carrying every cloned stream's
 * extended sequence number (ROC and sequence) and SRTCP index across,
 * which is exactly RFC 3711 §3.3.1's re-key rule.
 */
#include "srtp.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <srtp2/srtp.h>

#include "errors.h"

_Static_assert(DCMF_SRTP_TRAILER_ROOM >= SRTP_MAX_TRAILER_LEN + 4,
               "protect needs libsrtp2's SRTCP trailer room");

/* The largest packet we hand to libsrtp2 (its lengths are int). */
#define SRTP_PACKET_MAX 65535
#define RTP_HEADER_LEN 12
#define RTCP_HEADER_LEN 8
#define SRTCP_INDEX_LEN 4

struct dcmf_srtp {
  srtp_t out; /* protect: ssrc_any_outbound template + our SSRCs */
  srtp_t in;  /* unprotect: ssrc_any_inbound template + the peer's */
  const struct dcmf_srtp_profile_info *info;
  int broken; /* a re-key failed half-way: refuse everything */
  struct dcmf_srtp_stats stats[2];
};

/* Key and salt lengths: RFC 5764 §4.1.2 (AES-CM: 128-bit key, 112-bit
 * salt; _32 keeps an 80-bit SRTCP tag) and RFC 7714 §12 and §14.2 (GCM:
 * 96-bit salt, 16-byte tag). In our order of preference. */
static const struct dcmf_srtp_profile_info profiles[] = {
    {DCMF_SRTP_AEAD_AES_256_GCM, "SRTP_AEAD_AES_256_GCM", 32, 12, 16, 16, 88},
    {DCMF_SRTP_AEAD_AES_128_GCM, "SRTP_AEAD_AES_128_GCM", 16, 12, 16, 16, 56},
    {DCMF_SRTP_AES128_CM_SHA1_80, "SRTP_AES128_CM_SHA1_80", 16, 14, 10, 10, 60},
    {DCMF_SRTP_AES128_CM_SHA1_32, "SRTP_AES128_CM_SHA1_32", 16, 14, 4, 10, 60},
};

#define N_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

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

const struct dcmf_srtp_profile_info *dcmf_srtp_profile_find(uint16_t id) {
  for (size_t i = 0; i < N_PROFILES; i++) {
    if ((uint16_t)profiles[i].profile == id) {
      return &profiles[i];
    }
  }
  return NULL;
}

const struct dcmf_srtp_profile_info *
dcmf_srtp_profile_by_name(const char *name) {
  for (size_t i = 0; name != NULL && i < N_PROFILES; i++) {
    if (strcmp(profiles[i].name, name) == 0) {
      return &profiles[i];
    }
  }
  return NULL;
}

const char *dcmf_srtp_profile_list(void) {
  return DCMF_SRTP_PROFILE_LIST;
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

/* The two key||salt strings libsrtp2 wants, split from the exporter's
 * client key | server key | client salt | server salt (RFC 5764 §4.2). */
struct keys {
  uint8_t ours[SRTP_MAX_KEY_LEN];
  uint8_t peers[SRTP_MAX_KEY_LEN];
};

static void keys_split(struct keys *k, const struct dcmf_srtp_profile_info *p,
                       const uint8_t *m, enum dcmf_srtp_role role) {
  const uint8_t *ckey = m, *skey = m + p->key_len;
  const uint8_t *csalt = m + 2 * p->key_len;
  const uint8_t *ssalt = csalt + p->salt_len;
  int client = role == DCMF_SRTP_CLIENT;
  memcpy(k->ours, client ? ckey : skey, p->key_len);
  memcpy(k->ours + p->key_len, client ? csalt : ssalt, p->salt_len);
  memcpy(k->peers, client ? skey : ckey, p->key_len);
  memcpy(k->peers + p->key_len, client ? ssalt : csalt, p->salt_len);
}

/* Checks the arguments of new and rekey; fills |*info| and |*k|. */
static int keys_make(struct keys *k, const struct dcmf_srtp_profile_info **info,
                     enum dcmf_srtp_profile profile, const uint8_t *material,
                     size_t len, enum dcmf_srtp_role role) {
  const struct dcmf_srtp_profile_info *p =
      dcmf_srtp_profile_find((uint16_t)profile);
  if (p == NULL || material == NULL || len != p->export_len ||
      (role != DCMF_SRTP_CLIENT && role != DCMF_SRTP_SERVER)) {
    return DCMF_ERR_INVALID;
  }
  keys_split(k, p, material, role);
  *info = p;
  return 0;
}

static void keys_wipe(struct keys *k) {
  explicit_bzero(k, sizeof(*k));
}

/* The template policy of one direction; |key| is borrowed. */
static int policy_make(srtp_policy_t *pol,
                       const struct dcmf_srtp_profile_info *p,
                       srtp_ssrc_type_t type, uint8_t *key) {
  memset(pol, 0, sizeof(*pol));
  if (srtp_crypto_policy_set_from_profile_for_rtp(
          &pol->rtp, lib_profile(p->profile)) != srtp_err_status_ok ||
      srtp_crypto_policy_set_from_profile_for_rtcp(
          &pol->rtcp, lib_profile(p->profile)) != srtp_err_status_ok) {
    return DCMF_ERR_SYSTEM;
  }
  pol->ssrc.type = type;
  pol->key = key;
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

int dcmf_srtp_new(struct dcmf_srtp **out, enum dcmf_srtp_profile profile,
                  const uint8_t *material, size_t len,
                  enum dcmf_srtp_role role) {
  struct keys k;
  const struct dcmf_srtp_profile_info *info;
  srtp_policy_t pol;
  int rc = keys_make(&k, &info, profile, material, len, role);
  if (rc != 0) {
    return rc;
  }
  struct dcmf_srtp *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    rc = DCMF_ERR_NOMEM;
    goto fail_alloc;
  }
  s->info = info;
  if ((rc = policy_make(&pol, info, ssrc_any_outbound, k.ours)) != 0) {
    goto fail_out;
  }
  if ((rc = lib_err(srtp_create(&s->out, &pol))) != 0) {
    goto fail_out;
  }
  if ((rc = policy_make(&pol, info, ssrc_any_inbound, k.peers)) != 0) {
    goto fail_in;
  }
  if ((rc = lib_err(srtp_create(&s->in, &pol))) != 0) {
    goto fail_in;
  }
  keys_wipe(&k);
  *out = s;
  return 0;
fail_in:
  srtp_dealloc(s->out);
fail_out:
  free(s);
fail_alloc:
  keys_wipe(&k);
  return rc == DCMF_ERR_NOMEM ? rc : DCMF_ERR_SYSTEM;
}

void dcmf_srtp_del(struct dcmf_srtp *s) {
  if (s == NULL) {
    return;
  }
  /* Also frees every SSRC stream cloned from the templates. */
  srtp_dealloc(s->out);
  srtp_dealloc(s->in);
  free(s);
}

int dcmf_srtp_rekey(struct dcmf_srtp *s, enum dcmf_srtp_profile profile,
                    const uint8_t *material, size_t len,
                    enum dcmf_srtp_role role) {
  struct keys k;
  const struct dcmf_srtp_profile_info *info;
  srtp_policy_t pol;
  if (s->broken) {
    return DCMF_ERR_INVALID;
  }
  int rc = keys_make(&k, &info, profile, material, len, role);
  if (rc != 0) {
    return rc;
  }
  /* srtp_update() re-derives the template and every stream cloned from
   * it, keeping each stream's extended sequence number (so its ROC) and
   * SRTCP replay/index state. */
  if ((rc = policy_make(&pol, info, ssrc_any_outbound, k.ours)) == 0) {
    rc = lib_err(srtp_update(s->out, &pol));
  }
  if (rc == 0 &&
      (rc = policy_make(&pol, info, ssrc_any_inbound, k.peers)) == 0) {
    rc = lib_err(srtp_update(s->in, &pol));
  }
  keys_wipe(&k);
  if (rc != 0) {
    /* One direction may hold the new keys and the other the old, or a
     * session may have lost streams: nothing safe is left. */
    s->broken = 1;
    return rc == DCMF_ERR_NOMEM ? rc : DCMF_ERR_SYSTEM;
  }
  s->info = info;
  return 0;
}

enum dcmf_srtp_profile dcmf_srtp_profile(const struct dcmf_srtp *s) {
  return s->info->profile;
}

/* Bytes of the RTP header at |p| (fixed part, CSRCs, extension), or 0
 * when it is not RTP version 2 or does not fit in |len|. */
static size_t rtp_header_len(const uint8_t *p, size_t len) {
  if (len < RTP_HEADER_LEN || (p[0] >> 6) != 2) {
    return 0;
  }
  size_t h = RTP_HEADER_LEN + 4 * (size_t)(p[0] & 0x0f);
  if (p[0] & 0x10) { /* X: a 4-byte extension header, then its words */
    if (h + 4 > len) {
      return 0;
    }
    h += 4 + 4 * (size_t)((p[h + 2] << 8) | p[h + 3]);
  }
  return h <= len ? h : 0;
}

/* Checks what every call checks; counts a refusal of the packet. */
static int check_buf(struct dcmf_srtp *s, struct dcmf_srtp_stats *st,
                     const uint8_t *buf, size_t len) {
  if (s->broken || buf == NULL || ((uintptr_t)buf & 3) != 0) {
    return DCMF_ERR_INVALID;
  }
  if (len > SRTP_PACKET_MAX) {
    st->malformed++;
    return DCMF_ERR_TOO_LARGE;
  }
  return 0;
}

/* Counts the outcome |rc| of one packet in |st|; returns |rc|. */
static int count(struct dcmf_srtp_stats *st, uint64_t *passed, int rc) {
  switch (rc) {
  case 0:
    (*passed)++;
    break;
  case DCMF_ERR_AUTH:
    st->auth++;
    break;
  case DCMF_ERR_REPLAY:
    st->replay++;
    break;
  case DCMF_ERR_MALFORMED:
  case DCMF_ERR_TOO_LARGE:
    st->malformed++;
    break;
  default:
    st->failed++;
    break;
  }
  return rc;
}

static int protect(struct dcmf_srtp *s, int rtcp, uint8_t *buf, size_t len,
                   size_t cap, size_t *out_len) {
  struct dcmf_srtp_stats *st = &s->stats[DCMF_SRTP_OUT];
  uint64_t *passed = rtcp ? &st->rtcp : &st->rtp;
  int rc = check_buf(s, st, buf, len);
  if (rc != 0) {
    return rc;
  }
  if (cap < len || cap - len < DCMF_SRTP_TRAILER_ROOM) {
    return count(st, passed, DCMF_ERR_TOO_LARGE);
  }
  if (rtcp ? len < RTCP_HEADER_LEN || (buf[0] >> 6) != 2
           : rtp_header_len(buf, len) == 0) {
    return count(st, passed, DCMF_ERR_MALFORMED);
  }
  int n = (int)len;
  srtp_err_status_t e =
      rtcp ? srtp_protect_rtcp(s->out, buf, &n) : srtp_protect(s->out, buf, &n);
  rc = lib_err(e);
  if (rc == 0) {
    *out_len = (size_t)n;
  }
  return count(st, passed, rc);
}

int dcmf_srtp_protect_rtp(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                          size_t cap, size_t *out_len) {
  return protect(s, 0, buf, len, cap, out_len);
}

int dcmf_srtp_protect_rtcp(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                           size_t cap, size_t *out_len) {
  return protect(s, 1, buf, len, cap, out_len);
}

static int unprotect(struct dcmf_srtp *s, int rtcp, uint8_t *buf, size_t len,
                     size_t *out_len) {
  struct dcmf_srtp_stats *st = &s->stats[DCMF_SRTP_IN];
  uint64_t *passed = rtcp ? &st->rtcp : &st->rtp;
  int rc = check_buf(s, st, buf, len);
  if (rc != 0) {
    return rc;
  }
  /* Refuse what cannot hold a header and a tag before libsrtp2 reads
   * it; the header must also fit before the tag. */
  if (rtcp) {
    size_t min = RTCP_HEADER_LEN + SRTCP_INDEX_LEN + s->info->rtcp_tag_len;
    if (len < min || (buf[0] >> 6) != 2) {
      return count(st, passed, DCMF_ERR_MALFORMED);
    }
  } else if (len < s->info->rtp_tag_len ||
             rtp_header_len(buf, len - s->info->rtp_tag_len) == 0) {
    return count(st, passed, DCMF_ERR_MALFORMED);
  }
  int n = (int)len;
  srtp_err_status_t e = rtcp ? srtp_unprotect_rtcp(s->in, buf, &n)
                             : srtp_unprotect(s->in, buf, &n);
  /* An AEAD tag that does not verify comes back as a cipher failure. */
  rc = e == srtp_err_status_cipher_fail ? DCMF_ERR_AUTH : lib_err(e);
  if (rc == 0) {
    *out_len = (size_t)n;
  }
  return count(st, passed, rc);
}

int dcmf_srtp_unprotect_rtp(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                            size_t *out_len) {
  return unprotect(s, 0, buf, len, out_len);
}

int dcmf_srtp_unprotect_rtcp(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                             size_t *out_len) {
  return unprotect(s, 1, buf, len, out_len);
}

int dcmf_srtp_forget(struct dcmf_srtp *s, enum dcmf_srtp_dir dir,
                     uint32_t ssrc) {
  srtp_t sess = dir == DCMF_SRTP_OUT ? s->out : s->in;
  /* libsrtp2 keys its streams by the SSRC as it is on the wire. */
  return srtp_remove_stream(sess, htonl(ssrc)) == srtp_err_status_ok
             ? 0
             : DCMF_ERR_NOT_FOUND;
}

int dcmf_srtp_roc(const struct dcmf_srtp *s, enum dcmf_srtp_dir dir,
                  uint32_t ssrc, uint32_t *roc) {
  srtp_t sess = dir == DCMF_SRTP_OUT ? s->out : s->in;
  /* libsrtp2 finds only cloned streams here, never the template. */
  if (s->broken || srtp_get_stream_roc(sess, ssrc, roc) != srtp_err_status_ok) {
    return DCMF_ERR_NOT_FOUND;
  }
  return 0;
}

const struct dcmf_srtp_stats *dcmf_srtp_stats(const struct dcmf_srtp *s,
                                              enum dcmf_srtp_dir dir) {
  return &s->stats[dir == DCMF_SRTP_OUT ? DCMF_SRTP_OUT : DCMF_SRTP_IN];
}
