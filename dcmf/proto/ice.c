/*
 * ice.c - ICE-lite responder and consent freshness for one media.
 *
 * The order of checks in ice_classify() follows RFC 8489 6.3 and 9.1.3:
 * demultiplex (FINGERPRINT), authenticate, then unknown attributes, then
 * the rest of the request's syntax, then ICE's role rules.
 */
#include "ice.h"

#include <netinet/in.h>
#include <string.h>

#include "errors.h"
#include "fingerprint.h"
#include "stun.h"

/* Copies the NUL-terminated |src| into |dst| (room for |max| chars). */
static size_t ice_copy(char *dst, const char *src, size_t max) {
  size_t n = strlen(src);
  if (n > max)
    n = max;
  memcpy(dst, src, n);
  dst[n] = '\0';
  return n;
}

static int ice_addr_ok(const struct sockaddr *a) {
  return a != NULL && (a->sa_family == AF_INET || a->sa_family == AF_INET6);
}

static void ice_addr_copy(struct sockaddr_storage *dst,
                          const struct sockaddr *src) {
  memset(dst, 0, sizeof(*dst));
  memcpy(dst, src,
         src->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                   : sizeof(struct sockaddr_in6));
}

int dcmf_ice_init(struct dcmf_ice *ice,
                  const struct dcmf_ice_settings *settings) {
  const struct dcmf_ice_settings *s = settings;
  if (s->local_ufrag == NULL || s->local_pwd == NULL ||
      dcmf_ice_ufrag_check(s->local_ufrag) != 0 ||
      dcmf_ice_pwd_check(s->local_pwd) != 0 ||
      (s->remote_ufrag != NULL && dcmf_ice_ufrag_check(s->remote_ufrag) != 0))
    return DCMF_ERR_INVALID;
  if ((s->remote_addr != NULL && !ice_addr_ok(s->remote_addr)) ||
      (s->remote_ice_lite_or_none && s->remote_addr == NULL))
    return DCMF_ERR_INVALID;
  memset(ice, 0, sizeof(*ice));
  ice->local_ufrag_len =
      ice_copy(ice->local_ufrag, s->local_ufrag, DCMF_ICE_UFRAG_MAX);
  ice->local_pwd_len = ice_copy(ice->local_pwd, s->local_pwd, DCMF_ICE_PWD_MAX);
  if (s->remote_ufrag != NULL)
    ice->remote_ufrag_len =
        ice_copy(ice->remote_ufrag, s->remote_ufrag, DCMF_ICE_UFRAG_MAX);
  if (s->remote_addr != NULL) {
    ice_addr_copy(&ice->signalled, s->remote_addr);
    ice->has_signalled = 1;
  }
  ice->remote_ice_lite_or_none = s->remote_ice_lite_or_none != 0;
  ice->consent_timeout_ms = s->consent_timeout_ms != 0
                                ? s->consent_timeout_ms
                                : DCMF_ICE_CONSENT_TIMEOUT_MS;
  ice->may_authenticate = s->may_authenticate;
  ice->may_authenticate_user = s->may_authenticate_user;
  return 0;
}

int dcmf_ice_set_remote_no_ice(struct dcmf_ice *ice,
                               const struct sockaddr *addr) {
  if (addr == NULL || !ice_addr_ok(addr))
    return DCMF_ERR_INVALID;
  ice_addr_copy(&ice->signalled, addr);
  ice->has_signalled = 1;
  ice->remote_ice_lite_or_none = 1;
  return 0;
}

int dcmf_ice_set_remote_ufrag(struct dcmf_ice *ice, const char *ufrag) {
  if (ufrag == NULL) {
    ice->remote_ufrag[0] = '\0';
    ice->remote_ufrag_len = 0;
    return 0;
  }
  if (dcmf_ice_ufrag_check(ufrag) != 0)
    return DCMF_ERR_INVALID;
  ice->remote_ufrag_len =
      ice_copy(ice->remote_ufrag, ufrag, DCMF_ICE_UFRAG_MAX);
  return 0;
}

int dcmf_ice_set_local(struct dcmf_ice *ice, const char *ufrag,
                       const char *pwd) {
  if (ufrag == NULL || pwd == NULL || dcmf_ice_ufrag_check(ufrag) != 0 ||
      dcmf_ice_pwd_check(pwd) != 0) {
    return DCMF_ERR_INVALID;
  }
  ice->local_ufrag_len = ice_copy(ice->local_ufrag, ufrag, DCMF_ICE_UFRAG_MAX);
  ice->local_pwd_len = ice_copy(ice->local_pwd, pwd, DCMF_ICE_PWD_MAX);
  /* Their checks proved a pwd that is no longer ours. */
  memset(ice->checked, 0, sizeof(ice->checked));
  return 0;
}

/* Returns 1 if USERNAME is "<local ufrag>:<remote ufrag>". */
static int ice_username_ok(const struct dcmf_ice *ice,
                           const struct dcmf_stun_msg *msg) {
  size_t lu = ice->local_ufrag_len;
  const uint8_t *u = msg->username;
  size_t rest;
  if (msg->username_len <= lu + 1 || memcmp(u, ice->local_ufrag, lu) != 0 ||
      u[lu] != ':')
    return 0;
  rest = msg->username_len - lu - 1;
  if (ice->remote_ufrag_len == 0)
    return 1; /* remote ufrag not known yet: accept any */
  return rest == ice->remote_ufrag_len &&
         memcmp(u + lu + 1, ice->remote_ufrag, rest) == 0;
}

/* ice_classify() results: authentication failed, or was not tried
 * because the gate said no; answer nothing either way. */
#define ICE_UNAUTHENTICATED 1
#define ICE_LIMITED 2

/*
 * Decides the answer to a Binding request whose FINGERPRINT is valid:
 * returns 0 for success, a STUN error code (the request authenticated),
 * ICE_UNAUTHENTICATED, or a negative DCMF_ERR_* (drop).
 */
static int ice_classify(const struct dcmf_ice *ice,
                        const struct dcmf_stun_msg *msg,
                        const struct sockaddr *from) {
  const unsigned has = msg->present;
  int rc;
  /* The cheap checks first: a stranger costs us no HMAC for these. */
  if (!(has & DCMF_STUN_HAS_MESSAGE_INTEGRITY) ||
      !(has & DCMF_STUN_HAS_USERNAME) || !ice_username_ok(ice, msg))
    return ICE_UNAUTHENTICATED;
  if (ice->may_authenticate != NULL &&
      !dcmf_ice_is_authorized_source(ice, from) &&
      !ice->may_authenticate(ice->may_authenticate_user, from))
    return ICE_LIMITED;
  rc = dcmf_stun_check_integrity(msg, (const uint8_t *)ice->local_pwd,
                                 ice->local_pwd_len);
  if (rc == DCMF_ERR_NOMEM)
    return rc;
  if (rc != 0)
    return ICE_UNAUTHENTICATED;
  if (msg->unknown_count > 0)
    return 420;
  if (msg->malformed || !(has & DCMF_STUN_HAS_PRIORITY) ||
      ((has & DCMF_STUN_HAS_ICE_CONTROLLED) &&
       (has & DCMF_STUN_HAS_ICE_CONTROLLING)))
    return 400;
  if (has & DCMF_STUN_HAS_ICE_CONTROLLED)
    return 487;
  return 0;
}

static void ice_count_error(struct dcmf_ice *ice, int code) {
  struct dcmf_ice_counters *c = &ice->counters;
  if (code == 400)
    c->bad_requests++;
  else if (code == 420)
    c->unknown_attrs++;
  else
    c->role_conflicts++;
}

/* |now_ms| + DCMF_ICE_ALTERNATE_GRACE_MS, saturated. */
static uint64_t ice_grace_end(uint64_t now_ms) {
  return now_ms > UINT64_MAX - DCMF_ICE_ALTERNATE_GRACE_MS
             ? UINT64_MAX
             : now_ms + DCMF_ICE_ALTERNATE_GRACE_MS;
}

static void ice_forget_previous(struct dcmf_ice *ice) {
  ice->has_previous = 0;
  memset(&ice->previous, 0, sizeof(ice->previous));
}

/* The slot of checked address |a|, or -1. */
static int ice_checked_find(const struct dcmf_ice *ice,
                            const struct sockaddr *a) {
  for (int i = 0; i < DCMF_ICE_CHECKED_MAX; i++) {
    if (ice->checked[i].used &&
        dcmf_stun_addr_equal((const struct sockaddr *)&ice->checked[i].addr, a))
      return i;
  }
  return -1;
}

/* Makes |from| a checked address until |now_ms| + the grace: its own
 * slot again, else a free or ended one, else the one that ends first
 * (the table is bounded; the oldest check goes). */
static void ice_checked_add(struct dcmf_ice *ice, const struct sockaddr *from,
                            uint64_t now_ms) {
  int at = ice_checked_find(ice, from);
  for (int i = 0; at < 0 && i < DCMF_ICE_CHECKED_MAX; i++) {
    if (!ice->checked[i].used || now_ms >= ice->checked[i].until_ms)
      at = i;
  }
  if (at < 0) {
    at = 0;
    for (int i = 1; i < DCMF_ICE_CHECKED_MAX; i++) {
      if (ice->checked[i].until_ms < ice->checked[at].until_ms)
        at = i;
    }
  }
  ice_addr_copy(&ice->checked[at].addr, from);
  ice->checked[at].used = 1;
  ice->checked[at].until_ms = ice_grace_end(now_ms);
}

/*
 * Applies the latching rules after a success to |from|; returns 1 if the
 * peer address changed.
 */
static int ice_latch(struct dcmf_ice *ice, const struct sockaddr *from,
                     int use_candidate, uint64_t now_ms) {
  if (ice->latched &&
      dcmf_stun_addr_equal((const struct sockaddr *)&ice->peer, from)) {
    if (now_ms > ice->last_valid_ms)
      ice->last_valid_ms = now_ms;
    return 0;
  }
  if (ice->latched && !use_candidate) {
    /* Only a nomination moves an existing latch; but the controlling
     * side may send media on this pair from now on (RFC 8445 12.1). */
    ice_checked_add(ice, from, now_ms);
    return 0;
  }
  if (ice->latched) {
    /* What the controlling side sent on the pair it leaves may still
     * arrive. Only the address just left; an older one is forgotten. */
    ice->previous = ice->peer;
    ice->has_previous = 1;
    ice->previous_until_ms = ice_grace_end(now_ms);
  }
  int was_checked = ice_checked_find(ice, from);
  if (was_checked >= 0) /* the peer now */
    memset(&ice->checked[was_checked], 0, sizeof(ice->checked[0]));
  ice_addr_copy(&ice->peer, from);
  ice->latched = 1;
  ice->last_valid_ms = now_ms;
  ice->counters.latches++;
  return 1;
}

int dcmf_ice_recv(struct dcmf_ice *ice, const struct sockaddr *from,
                  const uint8_t *pkt, size_t len, uint64_t now_ms, uint8_t *out,
                  size_t out_cap, size_t *out_len) {
  struct dcmf_stun_msg msg;
  const uint8_t *key = (const uint8_t *)ice->local_pwd;
  int code, rc;
  *out_len = 0;
  if (!ice_addr_ok(from))
    return DCMF_ERR_INVALID;
  if (dcmf_stun_parse(&msg, pkt, len) != 0 ||
      dcmf_stun_check_fingerprint(&msg) != 0 ||
      msg.type != DCMF_STUN_BINDING_REQUEST) {
    ice->counters.dropped++;
    return DCMF_ICE_DROP;
  }
  code = ice_classify(ice, &msg, from);
  if (code < 0) {
    ice->counters.dropped++;
    return code;
  }
  if (code == ICE_UNAUTHENTICATED) {
    ice->counters.unauthenticated++;
    return DCMF_ICE_DROP_UNAUTHENTICATED;
  }
  if (code == ICE_LIMITED) {
    ice->counters.limited++;
    return DCMF_ICE_DROP_LIMITED;
  }
  if (code == 0)
    rc = dcmf_stun_build_success(out, out_cap, out_len, msg.txid, from, key,
                                 ice->local_pwd_len);
  else
    rc = dcmf_stun_build_error(out, out_cap, out_len, msg.txid, (unsigned)code,
                               msg.unknown, msg.unknown_count, key,
                               ice->local_pwd_len);
  if (rc != 0) {
    *out_len = 0;
    ice->counters.dropped++;
    return rc;
  }
  if (code != 0) {
    ice_count_error(ice, code);
    return DCMF_ICE_RESPOND_ERROR;
  }
  ice->counters.requests_ok++;
  if (ice_latch(ice, from, (msg.present & DCMF_STUN_HAS_USE_CANDIDATE) != 0,
                now_ms))
    return DCMF_ICE_RESPOND_LATCHED;
  return DCMF_ICE_RESPOND;
}

const struct sockaddr *dcmf_ice_peer(const struct dcmf_ice *ice) {
  if (ice->latched)
    return (const struct sockaddr *)&ice->peer;
  if (ice->remote_ice_lite_or_none)
    return (const struct sockaddr *)&ice->signalled;
  return NULL;
}

int dcmf_ice_is_authorized_source(const struct dcmf_ice *ice,
                                  const struct sockaddr *from) {
  if (ice->latched &&
      dcmf_stun_addr_equal((const struct sockaddr *)&ice->peer, from))
    return 1;
  return ice->remote_ice_lite_or_none &&
         dcmf_stun_addr_equal((const struct sockaddr *)&ice->signalled, from);
}

int dcmf_ice_is_alternate_source(const struct dcmf_ice *ice,
                                 const struct sockaddr *from, uint64_t now_ms) {
  if (!ice->latched)
    return 0;
  if (ice->has_previous && now_ms < ice->previous_until_ms &&
      dcmf_stun_addr_equal((const struct sockaddr *)&ice->previous, from))
    return 1;
  int at = ice_checked_find(ice, from);
  return at >= 0 && now_ms < ice->checked[at].until_ms;
}

uint64_t dcmf_ice_next_expiry(const struct dcmf_ice *ice) {
  if (!ice->latched)
    return UINT64_MAX;
  if (ice->last_valid_ms > UINT64_MAX - ice->consent_timeout_ms)
    return UINT64_MAX; /* saturate: never */
  return ice->last_valid_ms + ice->consent_timeout_ms;
}

void dcmf_ice_note_traffic(struct dcmf_ice *ice, uint64_t now_ms) {
  if (!ice->latched || now_ms >= dcmf_ice_next_expiry(ice))
    return;
  if (now_ms > ice->last_valid_ms)
    ice->last_valid_ms = now_ms;
  /* Media on the new path: the old one is done with. */
  ice_forget_previous(ice);
}

int dcmf_ice_handle_expiry(struct dcmf_ice *ice, uint64_t now_ms) {
  if (!ice->latched || now_ms < dcmf_ice_next_expiry(ice))
    return 0;
  ice->latched = 0;
  memset(&ice->peer, 0, sizeof(ice->peer));
  ice_forget_previous(ice);
  memset(ice->checked, 0, sizeof(ice->checked));
  ice->counters.consent_losses++;
  return 1;
}
