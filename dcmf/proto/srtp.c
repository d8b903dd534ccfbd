/*
 * srtp.c - the SRTP engine (srtp.h says what it does): the parts both
 * backends share. The profile table, the checks every call makes and the
 * counters live here, so that the two backends cannot differ in them;
 * srtp_libsrtp.c and srtp_evp.c do the crypto and keep the per-SSRC
 * state (srtp_int.h says what each side owns).
 */
#include "srtp.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "srtp_int.h"

/* The largest packet we take (libsrtp2's lengths are int; RTP's 16-bit
 * lengths say the same). */
#define SRTP_PACKET_MAX 65535

/* Key and salt lengths: RFC 5764 §4.1.2 (AES-CM: 128-bit key, 112-bit
 * salt; _32 keeps an 80-bit SRTCP tag, as libsrtp2 does) and RFC 7714 §12
 * and §14.2 (GCM: 96-bit salt, 16-byte tag). In our order of preference. */
static const struct dcmf_srtp_profile_info profiles[] = {
    {DCMF_SRTP_AEAD_AES_256_GCM, "SRTP_AEAD_AES_256_GCM", 32, 12, 16, 16, 88},
    {DCMF_SRTP_AEAD_AES_128_GCM, "SRTP_AEAD_AES_128_GCM", 16, 12, 16, 16, 56},
    {DCMF_SRTP_AES128_CM_SHA1_80, "SRTP_AES128_CM_SHA1_80", 16, 14, 10, 10, 60},
    {DCMF_SRTP_AES128_CM_SHA1_32, "SRTP_AES128_CM_SHA1_32", 16, 14, 4, 10, 60},
};

#define N_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

_Static_assert(DCMF_SRTP_KEY_MAX + DCMF_SRTP_SALT_MAX <= DCMF_SRTP_KEYSALT_MAX,
               "key || salt fits");

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

int dcmf_srtp_backend_by_name(const char *name, enum dcmf_srtp_backend *out) {
  if (name != NULL && strcmp(name, "openssl") == 0) {
    *out = DCMF_SRTP_BACKEND_OPENSSL;
  } else if (name != NULL && strcmp(name, "libsrtp2") == 0) {
    *out = DCMF_SRTP_BACKEND_LIBSRTP2;
  } else {
    return DCMF_ERR_INVALID;
  }
  return 0;
}

const char *dcmf_srtp_backend_name(enum dcmf_srtp_backend b) {
  switch (b) {
  case DCMF_SRTP_BACKEND_OPENSSL:
    return "openssl";
  case DCMF_SRTP_BACKEND_LIBSRTP2:
    return "libsrtp2";
  }
  return "?";
}

static const struct dcmf_srtp_backend_ops *
backend_ops(enum dcmf_srtp_backend b) {
  switch (b) {
  case DCMF_SRTP_BACKEND_OPENSSL:
    return &dcmf_srtp_evp_ops;
  case DCMF_SRTP_BACKEND_LIBSRTP2:
    return &dcmf_srtp_libsrtp_ops;
  }
  return NULL;
}

/* Splits the exporter's client key | server key | client salt | server
 * salt (RFC 5764 §4.2) into ours and the peer's, each key || salt. */
static void keys_split(struct dcmf_srtp_keys *k,
                       const struct dcmf_srtp_profile_info *p, const uint8_t *m,
                       enum dcmf_srtp_role role) {
  const uint8_t *ckey = m, *skey = m + p->key_len;
  const uint8_t *csalt = m + 2 * p->key_len;
  const uint8_t *ssalt = csalt + p->salt_len;
  int client = role == DCMF_SRTP_CLIENT;
  memset(k, 0, sizeof(*k));
  memcpy(k->ours, client ? ckey : skey, p->key_len);
  memcpy(k->ours + p->key_len, client ? csalt : ssalt, p->salt_len);
  memcpy(k->peers, client ? skey : ckey, p->key_len);
  memcpy(k->peers + p->key_len, client ? ssalt : csalt, p->salt_len);
}

/* Checks the arguments of new and rekey; fills |*info| and |*k|. */
static int keys_make(struct dcmf_srtp_keys *k,
                     const struct dcmf_srtp_profile_info **info,
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

static void keys_wipe(struct dcmf_srtp_keys *k) {
  explicit_bzero(k, sizeof(*k));
}

int dcmf_srtp_new_with(struct dcmf_srtp **out, enum dcmf_srtp_backend backend,
                       enum dcmf_srtp_profile profile, const uint8_t *material,
                       size_t len, enum dcmf_srtp_role role) {
  struct dcmf_srtp_keys k;
  const struct dcmf_srtp_profile_info *info;
  const struct dcmf_srtp_backend_ops *ops = backend_ops(backend);
  if (ops == NULL) {
    return DCMF_ERR_INVALID;
  }
  int rc = keys_make(&k, &info, profile, material, len, role);
  if (rc != 0) {
    return rc;
  }
  struct dcmf_srtp *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    keys_wipe(&k);
    return DCMF_ERR_NOMEM;
  }
  s->ops = ops;
  s->backend = backend;
  s->info = info;
  rc = ops->make(s, &k);
  keys_wipe(&k);
  if (rc != 0) {
    free(s);
    return rc == DCMF_ERR_NOMEM ? rc : DCMF_ERR_SYSTEM;
  }
  *out = s;
  return 0;
}

int dcmf_srtp_new(struct dcmf_srtp **out, enum dcmf_srtp_profile profile,
                  const uint8_t *material, size_t len,
                  enum dcmf_srtp_role role) {
  return dcmf_srtp_new_with(out, DCMF_SRTP_BACKEND_DEFAULT, profile, material,
                            len, role);
}

void dcmf_srtp_del(struct dcmf_srtp *s) {
  if (s == NULL) {
    return;
  }
  s->ops->free(s);
  free(s->copy);
  free(s);
}

int dcmf_srtp_rekey(struct dcmf_srtp *s, enum dcmf_srtp_profile profile,
                    const uint8_t *material, size_t len,
                    enum dcmf_srtp_role role) {
  struct dcmf_srtp_keys k;
  const struct dcmf_srtp_profile_info *info;
  if (s->broken) {
    return DCMF_ERR_INVALID;
  }
  int rc = keys_make(&k, &info, profile, material, len, role);
  if (rc != 0) {
    return rc;
  }
  const struct dcmf_srtp_profile_info *old = s->info;
  /* The previous keys are kept only under the same profile: the packet
   * checks here (tag length) and libsrtp2's key selection assume one. */
  int keep = info == old;
  if (keep && s->copy == NULL &&
      (s->copy = malloc(SRTP_PACKET_MAX + 1)) == NULL) {
    keys_wipe(&k);
    return DCMF_ERR_NOMEM; /* |s| unchanged */
  }
  s->info = info;
  rc = s->ops->rekey(s, &k, keep);
  keys_wipe(&k);
  if (!keep || rc != 0) {
    free(s->copy);
    s->copy = NULL;
  }
  if (rc != 0) {
    /* One direction may hold the new keys and the other the old, or a
     * state may be lost: nothing safe is left. */
    s->info = old;
    s->broken = 1;
    return rc == DCMF_ERR_NOMEM ? rc : DCMF_ERR_SYSTEM;
  }
  return 0;
}

int dcmf_srtp_drop_previous(struct dcmf_srtp *s) {
  if (s->copy == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  s->ops->drop_prev(s);
  free(s->copy);
  s->copy = NULL;
  return 0;
}

int dcmf_srtp_has_previous(const struct dcmf_srtp *s) {
  return s->copy != NULL;
}

enum dcmf_srtp_profile dcmf_srtp_profile(const struct dcmf_srtp *s) {
  return s->info->profile;
}

enum dcmf_srtp_backend dcmf_srtp_backend(const struct dcmf_srtp *s) {
  return s->backend;
}

size_t dcmf_srtp_rtp_header_len(const uint8_t *p, size_t len) {
  if (len < DCMF_SRTP_RTP_HEADER_LEN || (p[0] >> 6) != 2) {
    return 0;
  }
  size_t h = DCMF_SRTP_RTP_HEADER_LEN + 4 * (size_t)(p[0] & 0x0f);
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
  if (rtcp ? len < DCMF_SRTP_RTCP_HEADER_LEN || (buf[0] >> 6) != 2
           : dcmf_srtp_rtp_header_len(buf, len) == 0) {
    return count(st, passed, DCMF_ERR_MALFORMED);
  }
  size_t n = len;
  rc = s->ops->protect(s, rtcp, buf, len, &n);
  if (rc == 0) {
    *out_len = n;
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
  /* Refuse what cannot hold a header and a tag before a backend reads
   * it; the header must also fit before the tag. */
  if (rtcp) {
    size_t min = DCMF_SRTP_RTCP_HEADER_LEN + DCMF_SRTP_SRTCP_INDEX_LEN +
                 s->info->rtcp_tag_len;
    if (len < min || (buf[0] >> 6) != 2) {
      return count(st, passed, DCMF_ERR_MALFORMED);
    }
  } else if (len < s->info->rtp_tag_len ||
             dcmf_srtp_rtp_header_len(buf, len - s->info->rtp_tag_len) == 0) {
    return count(st, passed, DCMF_ERR_MALFORMED);
  }
  size_t n = len;
  int fallback = !rtcp && s->copy != NULL;
  if (fallback) {
    memcpy(s->copy, buf, len);
  }
  rc = s->ops->unprotect(s, rtcp, buf, len, &n);
  if (rc == DCMF_ERR_AUTH && fallback) {
    /* The same packet, under the previous keys (srtp.h). A refusal here
     * is counted as the first one was: an authentication failure. */
    memcpy(buf, s->copy, len);
    n = len;
    rc = s->ops->unprotect_prev(s, buf, len, &n);
    if (rc == 0) {
      st->previous++;
    }
  }
  if (rc == 0) {
    *out_len = n;
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
  return s->ops->forget(s, dir == DCMF_SRTP_OUT ? DCMF_SRTP_OUT : DCMF_SRTP_IN,
                        ssrc);
}

int dcmf_srtp_roc(const struct dcmf_srtp *s, enum dcmf_srtp_dir dir,
                  uint32_t ssrc, uint32_t *roc) {
  if (s->broken) {
    return DCMF_ERR_NOT_FOUND;
  }
  return s->ops->roc(s, dir == DCMF_SRTP_OUT ? DCMF_SRTP_OUT : DCMF_SRTP_IN,
                     ssrc, roc);
}

const struct dcmf_srtp_stats *dcmf_srtp_stats(const struct dcmf_srtp *s,
                                              enum dcmf_srtp_dir dir) {
  return &s->stats[dir == DCMF_SRTP_OUT ? DCMF_SRTP_OUT : DCMF_SRTP_IN];
}
