/*
 * agwiq_tcp.c - the Iq elements of the e2ae TCP path (agwiq.h): MSRP or
 * BFCP over TLS/TCP on the access termination <-> plain TCP on the core
 * one (TS 23.334 5.16, 6.2.10.3, 6.2.18; docs/e2ae.md). Pure functions on
 * jansson documents, as agwiq.c.
 *
 * Setups. The "tls" member carries the UE's a=setup (as "dtls" does);
 * the TLS client is the TCP client (RFC 8122 section 5 via RFC 4572), so
 * the AGW's access TCP setup follows from it: active (it connects) when
 * it is the TLS client (peer passive, or actpass with establish), else
 * passive. The core termination's "tcp.setup" is the AGW's own
 * direction there. Without changing the setup direction (stateless and
 * stateAware) the AGW passes the connection on in the direction it came:
 * a passive access leg makes an active core leg and the other way round
 * (the default whatever the handling); "stateAwareChangingSetup" lets
 * the core setup be chosen freely, "merge" included (TS 23.334 6.2.18.4:
 * the IMS-ALG preconfigures TCP merge with a=setup:passive).
 */
#include "agwiq.h"
#include "agwiq_int.h"

#include <stdio.h>
#include <string.h>

#include "errors.h"

#define TIMEOUT_MIN 100
#define TIMEOUT_MAX 600000
#define TIMEOUT_DEFAULT 10000

int dcmf_agwiq_tcp_transport(const char *s, int access) {
  static const struct {
    const char *name;
    int access;
    enum dcmf_agwiq_transport t;
  } names[] = {
      {"TCP/TLS/MSRP", 1, DCMF_AGWIQ_TCP_TLS_MSRP},
      {"TCP/TLS/BFCP", 1, DCMF_AGWIQ_TCP_TLS_BFCP},
      {"TCP/MSRP", 0, DCMF_AGWIQ_TCP_MSRP},
      {"TCP/BFCP", 0, DCMF_AGWIQ_TCP_BFCP},
      {"TCP", 0, DCMF_AGWIQ_TCP},
  };
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (names[i].access == access && strcmp(names[i].name, s) == 0) {
      return (int)names[i].t;
    }
  }
  return -1;
}

int dcmf_agwiq_tcp_transport_kind(int t) {
  return t >= DCMF_AGWIQ_TCP_TLS_MSRP && t <= DCMF_AGWIQ_TCP;
}

static int is_msrp(enum dcmf_agwiq_transport t) {
  return t == DCMF_AGWIQ_TCP_TLS_MSRP || t == DCMF_AGWIQ_TCP_MSRP;
}

void dcmf_agwiq_parse_tcp(struct check *c, json_t *t, const char *prefix,
                      int access, struct tcp_member *out) {
  static const char *const allowed[] = {"setup", "handling", "timeoutMs", NULL};
  out->setup = out->handling = -1;
  out->timeout = -1;
  json_t *tcp = json_object_get(t, "tcp");
  if (tcp == NULL) {
    return;
  }
  if (!json_is_object(tcp)) {
    dcmf_agwiq_fail(c, "must be an object (setup, handling, timeoutMs)",
                    "%s/tcp", prefix);
    return;
  }
  char sub[160];
  snprintf(sub, sizeof(sub), "%s/tcp", prefix);
  dcmf_agwiq_only_members(c, tcp, allowed, sub);
  const char *s = json_string_value(json_object_get(tcp, "setup"));
  if (json_object_get(tcp, "setup") != NULL) {
    out->setup = s == NULL                        ? -2
                 : strcmp(s, "active") == 0       ? DCMF_AGWIQ_TCP_ACTIVE
                 : strcmp(s, "passive") == 0      ? DCMF_AGWIQ_TCP_PASSIVE
                 : !access && !strcmp(s, "merge") ? DCMF_AGWIQ_TCP_MERGE
                                                  : -2;
    if (out->setup == -2) {
      dcmf_agwiq_fail(c,
                      access ? "must be \"active\" or \"passive\" (the "
                               "AGW's own TCP setup toward the UE)"
                             : "must be \"active\", \"passive\" or \"merge\" "
                               "(the AGW's own TCP setup toward the core)",
                      "%s/tcp/setup", prefix);
    }
  }
  s = json_string_value(json_object_get(tcp, "handling"));
  if (json_object_get(tcp, "handling") != NULL) {
    out->handling = s == NULL                      ? -2
                    : strcmp(s, "stateless") == 0  ? DCMF_AGWIQ_TCP_STATELESS
                    : strcmp(s, "stateAware") == 0 ? DCMF_AGWIQ_TCP_STATE_AWARE
                    : strcmp(s, "stateAwareChangingSetup") == 0
                        ? DCMF_AGWIQ_TCP_STATE_AWARE_CHANGE
                        : -2;
    if (out->handling == -2) {
      dcmf_agwiq_fail(c,
                      "must be \"stateless\", \"stateAware\" or "
                      "\"stateAwareChangingSetup\" (TS 23.334 5.16)",
                      "%s/tcp/handling", prefix);
    }
  }
  json_t *to = json_object_get(tcp, "timeoutMs");
  if (to != NULL) {
    json_int_t n = json_integer_value(to);
    if (!json_is_integer(to) || n < TIMEOUT_MIN || n > TIMEOUT_MAX) {
      dcmf_agwiq_fail(c, "must be an integer from 100 to 600000",
                      "%s/tcp/timeoutMs", prefix);
    } else {
      out->timeout = (long)n;
    }
  }
}

/* Reads termination |t|'s "msrp" member: *|mode| -1 (absent or no
 * mode), 0 agnostic, 1 aware; an aware path goes to |path|. */
static void parse_msrp(struct check *c, json_t *t, const char *prefix,
                       enum dcmf_agwiq_transport tr, int *mode, char *path,
                       size_t path_cap) {
  *mode = -1;
  json_t *m = json_object_get(t, "msrp");
  if (m == NULL) {
    return;
  }
  if (!is_msrp(tr)) {
    dcmf_agwiq_fail(c, "is for MSRP transports only; leave it out", "%s/msrp",
                    prefix);
    return;
  }
  static const char *const allowed[] = {"mode", "path", NULL};
  if (!json_is_object(m)) {
    dcmf_agwiq_fail(c, "must be an object with mode (and path when aware)",
                    "%s/msrp", prefix);
    return;
  }
  char sub[160];
  snprintf(sub, sizeof(sub), "%s/msrp", prefix);
  dcmf_agwiq_only_members(c, m, allowed, sub);
  const char *s = json_string_value(json_object_get(m, "mode"));
  if (json_object_get(m, "mode") == NULL) {
    if (json_object_get(m, "path") != NULL) {
      dcmf_agwiq_fail(c, "needs mode \"aware\"", "%s/msrp/path", prefix);
    }
    return;
  }
  if (s != NULL && strcmp(s, "aware") == 0) {
    *mode = 1;
    /* The far end's a=path; the relay waits for a PATCH that gives it
     * when the answer has not come yet. */
    dcmf_agwiq_string_member(
        c, m, "path", sub, dcmf_agwiq_msrp_path_check,
        "must be the far end's a=path: MSRP URIs separated by spaces", path,
        path_cap);
  } else if (s != NULL && strcmp(s, "agnostic") == 0) {
    *mode = 0;
    if (json_object_get(m, "path") != NULL) {
      dcmf_agwiq_fail(c,
                      "must be left out in agnostic mode (CEMA: the path is "
                      "not used for routing)",
                      "%s/msrp/path", prefix);
    }
  } else {
    dcmf_agwiq_fail(c, "must be \"agnostic\" or \"aware\"", "%s/msrp/mode",
                    prefix);
  }
}

/* Application-aware MSRP (TS 23.334 5.19.5) on the TCP path: "aware" on
 * either termination makes the relay aware; "agnostic" on the other
 * contradicts it, and a core that is plain "TCP" carries no MSRP the
 * AGW could rewrite. */
static void msrp_mode(struct check *c, const int mode[2], char prefix[2][48],
                      struct dcmf_agwiq *out) {
  out->msrp_aware = mode[0] == 1 || mode[1] == 1;
  if (!out->msrp_aware) {
    return;
  }
  if (mode[0] == 0 || mode[1] == 0) {
    dcmf_agwiq_fail(c, "must be the same on both terminations", "%s/msrp/mode",
                    prefix[mode[0] == 0 ? 0 : 1]);
  }
  if (out->transport[1] != DCMF_AGWIQ_TCP_MSRP) {
    dcmf_agwiq_fail(c,
                    "must be TCP/MSRP for msrp mode \"aware\" (the AGW "
                    "rewrites the MSRP paths toward the core)",
                    "%s/transport", prefix[1]);
  }
}

/* The members an e2ae TCP termination never carries ("latching", which
 * the stored document always shows, is not read: a TCP leg takes its
 * connection only from the signalled address, tcprelay.h). */
static const char *const not_tcp[] = {"dtls", "ice", "rtcpMux",
                                      "remoteRtcpPort", NULL};

void dcmf_agwiq_tcp_parse(struct check *c, json_t *terms[2], char prefix[2][48],
                          struct dcmf_agwiq *out) {
  enum dcmf_agwiq_transport a = out->transport[0], k = out->transport[1];
  int pair_ok = (a == DCMF_AGWIQ_TCP_TLS_MSRP &&
                 (k == DCMF_AGWIQ_TCP_MSRP || k == DCMF_AGWIQ_TCP)) ||
                (a == DCMF_AGWIQ_TCP_TLS_BFCP &&
                 (k == DCMF_AGWIQ_TCP_BFCP || k == DCMF_AGWIQ_TCP));
  if (!pair_ok) {
    dcmf_agwiq_fail(c,
                    "must be TCP/TLS/MSRP with a TCP/MSRP or TCP core "
                    "termination, or TCP/TLS/BFCP with TCP/BFCP or TCP",
                    "%s/transport", prefix[0]);
    dcmf_agwiq_fail(c,
                    "must be TCP/MSRP or TCP with TCP/TLS/MSRP access, "
                    "TCP/BFCP or TCP with TCP/TLS/BFCP",
                    "%s/transport", prefix[1]);
    return;
  }
  for (int s = 0; s < 2; s++) {
    dcmf_agwiq_refuse_listed(c, terms[s], not_tcp, prefix[s],
                             "is not a member of a TCP termination");
  }
  static const char *const core_refused[] = {"tls", "notifyUri", NULL};
  dcmf_agwiq_refuse_listed(c, terms[1], core_refused, prefix[1],
                           "is an access termination member; leave it out");
  char sub[160];
  json_t *tls = json_object_get(terms[0], "tls");
  snprintf(sub, sizeof(sub), "%s/tls", prefix[0]);
  int errors_before = c->errors;
  if (tls == NULL) {
    dcmf_agwiq_fail(c, "is required on a TCP/TLS termination (at least setup)",
                    "%s", sub);
  } else {
    dcmf_agwiq_parse_dtls(c, tls, sub, out);
  }
  dcmf_agwiq_string_member(c, terms[0], "notifyUri", prefix[0],
                           dcmf_agwiq_uri_check,
                           "must be an absolute http or https URI",
                           out->notify_uri, sizeof(out->notify_uri));
  struct tcp_member m[2];
  int mode[2];
  for (int s = 0; s < 2; s++) {
    dcmf_agwiq_parse_tcp(c, terms[s], prefix[s], s == 0, &m[s]);
  }
  parse_msrp(c, terms[0], prefix[0], out->transport[0], &mode[0],
             out->access_path, sizeof(out->access_path));
  parse_msrp(c, terms[1], prefix[1], out->transport[1], &mode[1],
             out->core_path, sizeof(out->core_path));
  msrp_mode(c, mode, prefix, out);
  if (c->errors != errors_before) {
    return;
  }
  /* RFC 8122 section 5 (RFC 4572): the TLS client is the TCP client. */
  out->tcp_setup[0] = out->role == DCMF_AGWIQ_ROLE_CLIENT
                          ? DCMF_AGWIQ_TCP_ACTIVE
                          : DCMF_AGWIQ_TCP_PASSIVE;
  if (m[0].setup >= 0 && m[0].setup != (int)out->tcp_setup[0]) {
    dcmf_agwiq_fail(c,
                    "must agree with tls: the TLS client is the TCP client "
                    "(RFC 8122), so the AGW's access setup is the one its "
                    "TLS role gives",
                    "%s/tcp/setup", prefix[0]);
  }
  int handling = m[1].handling >= 0 ? m[1].handling : m[0].handling;
  if (m[0].handling >= 0 && m[1].handling >= 0 &&
      m[0].handling != m[1].handling) {
    dcmf_agwiq_fail(c, "must be the same on both terminations",
                    "%s/tcp/handling", prefix[1]);
  }
  out->tcp_handling = handling >= 0 ? (enum dcmf_agwiq_tcp_handling)handling
                                    : DCMF_AGWIQ_TCP_STATE_AWARE;
  long timeout = m[1].timeout >= 0 ? m[1].timeout : m[0].timeout;
  if (m[0].timeout >= 0 && m[1].timeout >= 0 && m[0].timeout != m[1].timeout) {
    dcmf_agwiq_fail(c, "must be the same on both terminations",
                    "%s/tcp/timeoutMs", prefix[1]);
  }
  out->tcp_timeout_ms = timeout >= 0 ? (uint32_t)timeout : TIMEOUT_DEFAULT;
  enum dcmf_agwiq_tcp_setup mirror = out->tcp_setup[0] == DCMF_AGWIQ_TCP_ACTIVE
                                         ? DCMF_AGWIQ_TCP_PASSIVE
                                         : DCMF_AGWIQ_TCP_ACTIVE;
  out->tcp_setup[1] =
      m[1].setup >= 0 ? (enum dcmf_agwiq_tcp_setup)m[1].setup : mirror;
  if (out->tcp_handling != DCMF_AGWIQ_TCP_STATE_AWARE_CHANGE &&
      out->tcp_setup[1] != mirror) {
    dcmf_agwiq_fail(c,
                    out->tcp_setup[0] == DCMF_AGWIQ_TCP_PASSIVE
                        ? "must be \"active\": the UE connects to the AGW, "
                          "which passes the connection on to the core; a "
                          "changed setup direction needs handling "
                          "\"stateAwareChangingSetup\""
                        : "must be \"passive\": the AGW connects to the UE, "
                          "so the core connects to the AGW; a changed setup "
                          "direction needs handling "
                          "\"stateAwareChangingSetup\"",
                    "%s/tcp/setup", prefix[1]);
  }
  /* An active leg needs somewhere to connect to; a stateless one may
   * learn it later (it connects only once the other leg is up). */
  for (int s = 0; s < 2; s++) {
    if (out->tcp_setup[s] == DCMF_AGWIQ_TCP_ACTIVE &&
        out->tcp_handling != DCMF_AGWIQ_TCP_STATELESS &&
        json_object_get(terms[s], "remote") == NULL) {
      dcmf_agwiq_fail(c,
                      "is required: the AGW connects on this termination "
                      "at once (its TCP setup is active)",
                      "%s/remote", prefix[s]);
    }
  }
}

void dcmf_agwiq_tcp_patch_check(struct check *c, const struct dcmf_agwiq *prev,
                                struct dcmf_agwiq *next,
                                struct dcmf_agwiq_change *ch) {
  char acc[48], core[48];
  snprintf(acc, sizeof(acc), "/terminations/%zu", next->index[0]);
  snprintf(core, sizeof(core), "/terminations/%zu", next->index[1]);
  if (!next->local_fp_hash_given) {
    next->local_fp_hash = prev->local_fp_hash; /* answered at the POST */
  }
  if (prev->remote_fp.count > 0 && next->remote_fp.count == 0) {
    dcmf_agwiq_fail(c, "cannot be removed once given",
                    "%s/tls/remoteFingerprints", acc);
  } else if (prev->remote_fp.count == 0 && next->remote_fp.count > 0) {
    ch->fingerprint_arrived = 1; /* releases the held handshake */
  } else {
    int same = prev->remote_fp.count == next->remote_fp.count;
    for (size_t i = 0; same && i < prev->remote_fp.count; i++) {
      same = dcmf_fingerprint_set_contains(&next->remote_fp,
                                           &prev->remote_fp.items[i]);
    }
    if (!same) {
      dcmf_agwiq_fail(c,
                      "cannot change: a TLS session is bound to its TCP "
                      "connection; a new certificate needs a new context",
                      "%s/tls/remoteFingerprints", acc);
    }
  }
  /* The UE's answer to an actpass offer of ours may settle the roles
   * once, while the leg waits for its fingerprints. */
  int unresolved = prev->setup == DCMF_AGWIQ_SETUP_ACTPASS &&
                   prev->remote_fp.count == 0 && prev->establish == 0;
  if (!unresolved &&
      (prev->setup != next->setup || prev->establish != next->establish)) {
    dcmf_agwiq_fail(c,
                    "cannot change: the TCP connection and TLS roles are "
                    "set; a new setup needs a new context",
                    "%s/tls/%s", acc,
                    prev->setup != next->setup ? "setup" : "establish");
  }
  if (unresolved && prev->tcp_setup[0] != next->tcp_setup[0]) {
    dcmf_agwiq_fail(c,
                    "cannot change the AGW's TCP setup: its port already "
                    "listens",
                    "%s/tls/establish", acc);
  }
  if (prev->local_fp_hash != next->local_fp_hash) {
    dcmf_agwiq_fail(c,
                    "cannot change: the local fingerprint was answered in "
                    "this hash",
                    "%s/tls/localFingerprintHash", acc);
  }
  if (prev->tcp_setup[1] != next->tcp_setup[1]) {
    dcmf_agwiq_fail(c, "cannot change on an existing termination",
                    "%s/tcp/setup", core);
  }
  if (prev->tcp_handling != next->tcp_handling) {
    dcmf_agwiq_fail(c, "cannot change on an existing context",
                    "%s/tcp/handling", core);
  }
  if (prev->tcp_timeout_ms != next->tcp_timeout_ms) {
    dcmf_agwiq_fail(c, "cannot change on an existing context",
                    "%s/tcp/timeoutMs", core);
  }
  if (prev->msrp_aware != next->msrp_aware) {
    dcmf_agwiq_fail(c, "cannot change on an existing context", "%s/msrp/mode",
                    core);
  }
  /* An aware relay rewrites with the paths: a re-offer may change one
   * (as on the data-channel path), not remove it. */
  if (prev->access_path[0] != '\0' && next->access_path[0] == '\0') {
    dcmf_agwiq_fail(c, "cannot be removed once given", "%s/msrp/path", acc);
  }
  if (prev->core_path[0] != '\0' && next->core_path[0] == '\0') {
    dcmf_agwiq_fail(c, "cannot be removed once given", "%s/msrp/path", core);
  }
  ch->notify_changed = strcmp(prev->notify_uri, next->notify_uri) != 0;
}
