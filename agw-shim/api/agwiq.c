#include "agwiq.h"
#include "agwiq_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "errors.h"

static void fail(struct check *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records |reason| for the JSON Pointer built from |fmt|. */
static void fail(struct check *c, const char *reason, const char *fmt, ...) {
  char path[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(path, sizeof(path), fmt, ap);
  va_end(ap);
  dcmf_problem_param(c->p, path, "%s", reason);
  c->errors++;
}

void dcmf_agwiq_fail(struct check *c, const char *reason, const char *fmt,
                     ...) {
  char path[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(path, sizeof(path), fmt, ap);
  va_end(ap);
  fail(c, reason, "%s", path);
}

static int finish(struct check *c) {
  if (c->errors == 0) {
    return 0;
  }
  dcmf_problem_set(c->p, 400, "MANDATORY_IE_INCORRECT",
                   "the AGW context's information elements are not valid "
                   "(%d problem%s; see invalidParams)",
                   c->errors, c->errors == 1 ? "" : "s");
  return DCMF_ERR_INVALID;
}

static const char *const transport_names[] = {
    [DCMF_AGWIQ_UDP] = "UDP",
    [DCMF_AGWIQ_SAVP] = "UDP/TLS/RTP/SAVP",
    [DCMF_AGWIQ_SAVPF] = "UDP/TLS/RTP/SAVPF",
    [DCMF_AGWIQ_AVP] = "RTP/AVP",
    [DCMF_AGWIQ_AVPF] = "RTP/AVPF",
    [DCMF_AGWIQ_TCP_TLS_MSRP] = "TCP/TLS/MSRP",
    [DCMF_AGWIQ_TCP_TLS_BFCP] = "TCP/TLS/BFCP",
    [DCMF_AGWIQ_TCP_MSRP] = "TCP/MSRP",
    [DCMF_AGWIQ_TCP_BFCP] = "TCP/BFCP",
    [DCMF_AGWIQ_TCP] = "TCP",
    [DCMF_AGWIQ_DTLS_SCTP] = "UDP/DTLS/SCTP",
    [DCMF_AGWIQ_UDP_DTLS] = "UDP/DTLS",
};

const char *dcmf_agwiq_transport_name(enum dcmf_agwiq_transport t) {
  return transport_names[t];
}

/* Refuses members of |obj| not in |allowed| (NULL-terminated). */
static void only_members(struct check *c, json_t *obj,
                         const char *const *allowed, const char *prefix) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    size_t i = 0;
    while (allowed[i] != NULL && strcmp(allowed[i], key) != 0) {
      i++;
    }
    if (allowed[i] == NULL) {
      /* RFC 6901 escapes, so the pointer names the member exactly. */
      char seg[96];
      size_t n = 0;
      for (const char *q = key; *q && n + 3 < sizeof(seg); q++) {
        if (*q == '~' || *q == '/') {
          seg[n++] = '~';
          seg[n++] = *q == '~' ? '0' : '1';
        } else {
          seg[n++] = *q;
        }
      }
      seg[n] = '\0';
      fail(c, "is not a member of this object", "%s/%s", prefix, seg);
    }
  }
}

/* Copies a string member into |out| (capacity |cap|) after |check|; 1 if
 * a valid value was stored, 0 if absent, -1 if refused. */
static int string_member(struct check *c, json_t *obj, const char *name,
                         const char *prefix, int (*check)(const char *),
                         const char *reason, char *out, size_t cap) {
  json_t *v = json_object_get(obj, name);
  if (v == NULL) {
    return 0;
  }
  const char *s = json_string_value(v);
  if (s == NULL || strlen(s) >= cap || (check != NULL && check(s) != 0)) {
    fail(c, reason, "%s/%s", prefix, name);
    return -1;
  }
  memcpy(out, s, strlen(s) + 1);
  return 1;
}

static int parse_hash(const char *s, enum dcmf_hash *out) {
  static const enum dcmf_hash usable[] = {DCMF_HASH_SHA1, DCMF_HASH_SHA224,
                                          DCMF_HASH_SHA256, DCMF_HASH_SHA384,
                                          DCMF_HASH_SHA512};
  for (size_t i = 0; s != NULL && i < sizeof(usable) / sizeof(usable[0]); i++) {
    if (strcasecmp(s, dcmf_hash_name(usable[i])) == 0) {
      *out = usable[i];
      return 0;
    }
  }
  return DCMF_ERR_MALFORMED;
}

static int uri_check(const char *s) {
  /* An absolute http(s) URI with a host and no white space or control
   * characters; the notifier resolves and connects later. */
  size_t skip = strncasecmp(s, "http://", 7) == 0    ? 7
                : strncasecmp(s, "https://", 8) == 0 ? 8
                                                     : 0;
  if (skip == 0 || s[skip] == '\0' || s[skip] == '/') {
    return DCMF_ERR_MALFORMED;
  }
  for (const char *q = s; *q; q++) {
    if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
      return DCMF_ERR_MALFORMED;
    }
  }
  return 0;
}

static void refuse_listed(struct check *c, json_t *t, const char *const *names,
                          const char *prefix, const char *reason) {
  for (size_t i = 0; names[i] != NULL; i++) {
    if (json_object_get(t, names[i]) != NULL) {
      fail(c, reason, "%s/%s", prefix, names[i]);
    }
  }
}

static void parse_dtls(struct check *c, json_t *d, const char *prefix,
                       struct dcmf_agwiq *out) {
  static const char *const allowed[] = {"remoteFingerprints",
                                        "localFingerprintHash",
                                        "setup",
                                        "establish",
                                        "tlsId",
                                        "certificate",
                                        NULL};
  if (!json_is_object(d)) {
    fail(c, "must be an object with the DTLS information elements", "%s",
         prefix);
    return;
  }
  only_members(c, d, allowed, prefix);
  json_t *fps = json_object_get(d, "remoteFingerprints");
  if (fps != NULL && (!json_is_array(fps) || json_array_size(fps) == 0)) {
    fail(c,
         "must be a non-empty array of RFC 8122 fingerprints "
         "(\"sha-256 AB:CD:...\"); leave it out until known",
         "%s/remoteFingerprints", prefix);
  } else if (fps != NULL) {
    size_t i;
    json_t *fp;
    json_array_foreach(fps, i, fp) {
      const char *s = json_string_value(fp);
      size_t before = out->remote_fp.count;
      int rv = s == NULL || strpbrk(s, ",;") != NULL
                   ? DCMF_ERR_MALFORMED
                   : dcmf_fingerprint_parse(s, &out->remote_fp);
      if (rv == DCMF_ERR_TOO_LARGE) {
        fail(c, "too many fingerprints (at most 8)",
             "%s/remoteFingerprints/%zu", prefix, i);
        break;
      }
      if (rv != 0) {
        out->remote_fp.count = before;
        fail(c,
             "must be one fingerprint: an RFC 8122 hash name and the "
             "digest's bytes as hex pairs joined by ':'",
             "%s/remoteFingerprints/%zu", prefix, i);
      }
    }
  }
  json_t *h = json_object_get(d, "localFingerprintHash");
  out->local_fp_hash_given = h != NULL;
  if (h != NULL && parse_hash(json_string_value(h), &out->local_fp_hash)) {
    fail(c, "must be sha-1, sha-224, sha-256, sha-384 or sha-512",
         "%s/localFingerprintHash", prefix);
  } else if (h == NULL) {
    /* Answered with the hash the peer used (RFC 8122 section 5). */
    out->local_fp_hash = out->remote_fp.count > 0 ? out->remote_fp.items[0].hash
                                                  : DCMF_HASH_SHA256;
    if (out->local_fp_hash == DCMF_HASH_MD5 ||
        out->local_fp_hash == DCMF_HASH_MD2) {
      out->local_fp_hash = DCMF_HASH_SHA256;
    }
  }
  json_t *setup = json_object_get(d, "setup");
  const char *ss = json_string_value(setup);
  int setup_ok = 1;
  if (ss != NULL && strcmp(ss, "active") == 0) {
    out->setup = DCMF_AGWIQ_SETUP_ACTIVE;
  } else if (ss != NULL && strcmp(ss, "passive") == 0) {
    out->setup = DCMF_AGWIQ_SETUP_PASSIVE;
  } else if (ss != NULL && strcmp(ss, "actpass") == 0) {
    out->setup = DCMF_AGWIQ_SETUP_ACTPASS;
  } else {
    setup_ok = 0;
    fail(c,
         setup ? "must be \"active\", \"passive\" or \"actpass\" (the "
                 "peer's a=setup)"
               : "is required (the peer's a=setup)",
         "%s/setup", prefix);
  }
  json_t *cert = json_object_get(d, "certificate");
  const char *cs = json_string_value(cert);
  out->dtls_rsa = out->t38; /* RFC 7345's RSA suites; WebRTC's ECDSA */
  if (cs != NULL && (strcmp(cs, "rsa") == 0 || strcmp(cs, "ecdsa") == 0) &&
      !out->tcp) {
    out->dtls_rsa = strcmp(cs, "rsa") == 0;
  } else if (cert != NULL) {
    fail(c,
         out->tcp ? "is DTLS only: a TLS termination presents the ECDSA "
                    "certificate"
                  : "must be \"rsa\" or \"ecdsa\"",
         "%s/certificate", prefix);
  }
  json_t *est = json_object_get(d, "establish");
  if (est != NULL && !json_is_boolean(est)) {
    fail(c, "must be true or false", "%s/establish", prefix);
  }
  out->establish = json_is_true(est);
  if (setup_ok) {
    if (out->establish && out->setup == DCMF_AGWIQ_SETUP_ACTIVE) {
      fail(c,
           "the peer's setup is active: it is the DTLS client, so the "
           "AGW cannot establish the session",
           "%s/establish", prefix);
    } else if (!out->establish && out->setup == DCMF_AGWIQ_SETUP_PASSIVE) {
      fail(c,
           "the peer's setup is passive: the AGW must be the DTLS client; "
           "set establish to true",
           "%s/establish", prefix);
    }
    out->role =
        out->establish ? DCMF_AGWIQ_ROLE_CLIENT : DCMF_AGWIQ_ROLE_SERVER;
  }
  if (out->tcp && json_object_get(d, "tlsId") != NULL) {
    fail(c,
         "is DTLS only (RFC 8842); a TLS session lives as long as its "
         "TCP connection",
         "%s/tlsId", prefix);
    return;
  }
  string_member(c, d, "tlsId", prefix, dcmf_tls_id_check,
                "must be an RFC 8842 tls-id: 20 to 255 characters of "
                "letters, digits, '+', '/', '-' or '_'",
                out->tls_id, sizeof(out->tls_id));
}

void dcmf_agwiq_parse_ice(struct check *c, json_t *ice, const char *prefix,
                      struct dcmf_agwiq *out) {
  static const char *const allowed[] = {"remoteUfrag", "remotePwd",
                                        "localUfrag", "localPwd", NULL};
  if (!json_is_object(ice)) {
    fail(c, "must be an object with remoteUfrag and remotePwd", "%s", prefix);
    return;
  }
  only_members(c, ice, allowed, prefix);
  /* Named apart: the AGW generates its own (ICE-lite answers with them). */
  static const char *const local[] = {"localUfrag", "localPwd", NULL};
  refuse_listed(c, ice, local, prefix, "is generated by the AGW; leave it out");
  int u = string_member(c, ice, "remoteUfrag", prefix, dcmf_ice_ufrag_check,
                        "must be an ICE ufrag: 4 to 256 letters, digits, "
                        "'+' or '/'",
                        out->ice_ufrag, sizeof(out->ice_ufrag));
  int w = string_member(c, ice, "remotePwd", prefix, dcmf_ice_pwd_check,
                        "must be an ICE password: 22 to 256 letters, "
                        "digits, '+' or '/'",
                        out->ice_pwd, sizeof(out->ice_pwd));
  if (u == 0 && w != 0) {
    fail(c, "is required with remotePwd", "%s/remoteUfrag", prefix);
  } else if (w == 0 && u != 0) {
    fail(c, "is required with remoteUfrag", "%s/remotePwd", prefix);
  }
}

/* Reads "transport" of one termination; -1 when refused. */
static int transport_of(struct check *c, json_t *t, int access,
                        const char *prefix) {
  json_t *v = json_object_get(t, "transport");
  const char *s = json_string_value(v);
  if (v == NULL) {
    return DCMF_AGWIQ_UDP; /* the relay's default */
  }
  int tcp = s != NULL ? dcmf_agwiq_tcp_transport(s, access) : -1;
  if (tcp >= 0) {
    return tcp;
  }
  int t38 = s != NULL ? dcmf_agwiq_t38_transport(s, access) : -1;
  if (t38 >= 0) {
    return t38;
  }
  const char *hint = s != NULL ? dcmf_agwiq_t38_hint(s) : NULL;
  if (hint != NULL) {
    fail(c, hint, "%s/transport", prefix);
    return -1;
  }
  if (access && s != NULL && strcmp(s, "UDP/DTLS/SCTP") == 0) {
    return DCMF_AGWIQ_DTLS_SCTP;
  }
  for (int i = 0; s != NULL && i <= DCMF_AGWIQ_AVPF; i++) {
    if (strcmp(s, transport_names[i]) != 0) {
      continue;
    }
    if (i == DCMF_AGWIQ_UDP ||
        (access && (i == DCMF_AGWIQ_SAVP || i == DCMF_AGWIQ_SAVPF)) ||
        (!access && (i == DCMF_AGWIQ_AVP || i == DCMF_AGWIQ_AVPF))) {
      return i;
    }
  }
  fail(c,
       access ? "must be \"UDP/TLS/RTP/SAVP\", \"UDP/TLS/RTP/SAVPF\", "
                "\"UDP/DTLS\" (T.38), \"UDP/DTLS/SCTP\", \"TCP/TLS/MSRP\", "
                "\"TCP/TLS/BFCP\" or \"UDP\" (the transparent relay)"
              : "must be \"RTP/AVP\", \"RTP/AVPF\", \"TCP/MSRP\", "
                "\"TCP/BFCP\", \"TCP\" or \"UDP\" (the transparent "
                "relay)",
       "%s/transport", prefix);
  return -1;
}

/* The Iq members a relay-only termination may not carry. */
static const char *const iq_access[] = {"dtls", "ice", "notifyUri", "rtcpMux",
                                        NULL};
static const char *const iq_core[] = {"rtcpMux", "remoteRtcpPort", NULL};
/* Members of the other side that are never allowed on this side. */
static const char *const core_only[] = {"remoteRtcpPort", NULL};
static const char *const access_only[] = {"dtls", "ice", "notifyUri", NULL};

void dcmf_agwiq_parse_dtls_access(struct check *c, json_t *t,
                                  const char *prefix, const char *missing,
                                  struct dcmf_agwiq *out) {
  json_t *d = json_object_get(t, "dtls");
  char sub[160];
  snprintf(sub, sizeof(sub), "%s/dtls", prefix);
  if (d == NULL) {
    fail(c, missing, "%s", sub);
  } else {
    parse_dtls(c, d, sub, out);
  }
  json_t *ice = json_object_get(t, "ice");
  if (ice != NULL) {
    snprintf(sub, sizeof(sub), "%s/ice", prefix);
    dcmf_agwiq_parse_ice(c, ice, sub, out);
  }
  string_member(c, t, "notifyUri", prefix, uri_check,
                "must be an absolute http or https URI", out->notify_uri,
                sizeof(out->notify_uri));
}

static void parse_access(struct check *c, json_t *t, const char *prefix,
                         struct dcmf_agwiq *out) {
  refuse_listed(c, t, core_only, prefix,
                "is a core termination member; leave it out");
  json_t *mux = json_object_get(t, "rtcpMux");
  if (mux != NULL && !json_is_true(mux)) {
    fail(c,
         json_is_boolean(mux) ? "must be true: the access leg always "
                                "multiplexes RTCP (RFC 8834)"
                              : "must be true",
         "%s/rtcpMux", prefix);
  }
  dcmf_agwiq_parse_dtls_access(
      c, t, prefix, "is required on a DTLS-SRTP termination (at least setup)",
      out);
}

static void parse_core(struct check *c, json_t *t, const char *prefix,
                       struct dcmf_agwiq *out) {
  refuse_listed(c, t, access_only, prefix,
                "is an access termination member; leave it out");
  json_t *mux = json_object_get(t, "rtcpMux");
  if (mux != NULL && !json_is_boolean(mux)) {
    fail(c, "must be true or false", "%s/rtcpMux", prefix);
  }
  out->core_rtcp_mux = json_is_true(mux);
  json_t *rp = json_object_get(t, "remoteRtcpPort");
  if (rp != NULL) {
    json_int_t n = json_integer_value(rp);
    if (out->core_rtcp_mux) {
      fail(c, "must be left out when rtcpMux is true", "%s/remoteRtcpPort",
           prefix);
    } else if (!json_is_integer(rp) || n < 1 || n > 65535) {
      fail(c, "must be an integer from 1 to 65535", "%s/remoteRtcpPort",
           prefix);
    } else {
      out->core_rtcp_port = (uint16_t)n;
    }
  } else if (!out->core_rtcp_mux &&
             json_integer_value(json_object_get(json_object_get(t, "remote"),
                                                "port")) == 65535) {
    /* RFC 3605: without a=rtcp the RTCP port is RTP + 1, which does not
     * exist here. (remote itself is agwdoc.c's to check.) */
    fail(c,
         "is required when the remote port is 65535 and rtcpMux is not "
         "true: the default RTCP port (the RTP port + 1) does not exist",
         "%s/remoteRtcpPort", prefix);
  }
}

int dcmf_agwiq_parse(json_t *doc, struct dcmf_agwiq *out,
                     struct dcmf_problem *p) {
  struct check c = {.p = p};
  memset(out, 0, sizeof(*out));
  out->index[0] = out->index[1] = SIZE_MAX;
  json_t *arr = json_object_get(doc, "terminations");
  json_t *terms[2] = {NULL, NULL};
  size_t i;
  json_t *t;
  json_array_foreach(arr, i, t) {
    const char *id = json_string_value(json_object_get(t, "terminationId"));
    int side = id == NULL                  ? -1
               : strcmp(id, "access") == 0 ? 0
               : strcmp(id, "core") == 0   ? 1
                                           : -1;
    /* Unnamed, duplicate or extra terminations are agwdoc.c's to refuse. */
    if (side >= 0 && terms[side] == NULL && json_is_object(t)) {
      terms[side] = t;
      out->index[side] = i;
    }
  }
  if (terms[0] == NULL || terms[1] == NULL) {
    return 0; /* agwdoc.c names what is missing */
  }
  char prefix[2][48];
  int tr[2];
  for (int s = 0; s < 2; s++) {
    snprintf(prefix[s], sizeof(prefix[s]), "/terminations/%zu", out->index[s]);
    tr[s] = transport_of(&c, terms[s], s == 0, prefix[s]);
  }
  if (tr[0] < 0 || tr[1] < 0) {
    return finish(&c);
  }
  out->transport[0] = (enum dcmf_agwiq_transport)tr[0];
  out->transport[1] = (enum dcmf_agwiq_transport)tr[1];
  if (tr[0] == DCMF_AGWIQ_UDP && tr[1] == DCMF_AGWIQ_UDP) {
    refuse_listed(&c, terms[0], iq_access, prefix[0],
                  "needs transport UDP/TLS/RTP/SAVP or UDP/TLS/RTP/SAVPF "
                  "(a UDP termination is the transparent relay)");
    refuse_listed(&c, terms[1], iq_core, prefix[1],
                  "needs transport RTP/AVP or RTP/AVPF (a UDP termination "
                  "is the transparent relay)");
    return finish(&c);
  }
  if (tr[0] == DCMF_AGWIQ_UDP_DTLS) {
    out->e2ae = 1;
    dcmf_agwiq_t38_parse(&c, terms, prefix, out);
    return finish(&c);
  }
  if (tr[0] == DCMF_AGWIQ_DTLS_SCTP && dcmf_agwiq_t140_wanted(terms[0], tr[1])) {
    out->e2ae = 1;
    dcmf_agwiq_t140_parse(&c, terms, prefix, out);
    if (out->transport[1] == DCMF_AGWIQ_AVP) {
      parse_core(&c, terms[1], prefix[1], out);
    }
    return finish(&c);
  }
  if (tr[0] == DCMF_AGWIQ_DTLS_SCTP) {
    out->e2ae = 1;
    out->dc = 1;
    dcmf_agwiq_dc_parse(&c, terms, prefix, out);
    return dcmf_agwiq_finish(&c);
  }
  if (dcmf_agwiq_tcp_transport_kind(tr[0]) ||
      dcmf_agwiq_tcp_transport_kind(tr[1])) {
    out->e2ae = 1;
    out->tcp = 1;
    dcmf_agwiq_tcp_parse(&c, terms, prefix, out);
    return finish(&c);
  }
  if (tr[0] == DCMF_AGWIQ_UDP || tr[1] == DCMF_AGWIQ_UDP) {
    /* Either side may be the one out of step (an omitted transport is
     * "UDP"), so both are named, each saying what the other needs. */
    fail(&c,
         "must be UDP with a UDP core termination, or UDP/TLS/RTP/SAVP(F) "
         "with an RTP/AVP(F) one",
         "%s/transport", prefix[0]);
    fail(&c,
         "must be UDP with a UDP access termination, or RTP/AVP(F) with a "
         "UDP/TLS/RTP/SAVP(F) one",
         "%s/transport", prefix[1]);
    return finish(&c);
  }
  out->e2ae = 1;
  parse_access(&c, terms[0], prefix[0], out);
  parse_core(&c, terms[1], prefix[1], out);
  return finish(&c);
}

static int same_fps(const struct dcmf_fingerprint_set *a,
                    const struct dcmf_fingerprint_set *b) {
  if (a->count != b->count) {
    return 0;
  }
  for (size_t i = 0; i < a->count; i++) {
    if (!dcmf_fingerprint_set_contains(b, &a->items[i])) {
      return 0;
    }
  }
  return 1;
}

int dcmf_agwiq_patch_check(const struct dcmf_agwiq *prev,
                           struct dcmf_agwiq *next,
                           struct dcmf_agwiq_change *ch,
                           struct dcmf_problem *p) {
  struct check c = {.p = p};
  memset(ch, 0, sizeof(*ch));
  char acc[48], core[48];
  snprintf(acc, sizeof(acc), "/terminations/%zu", next->index[0]);
  snprintf(core, sizeof(core), "/terminations/%zu", next->index[1]);
  for (int s = 0; s < 2; s++) {
    if (prev->transport[s] != next->transport[s]) {
      fail(&c,
           "cannot change on an existing termination; delete the context "
           "and create a new one",
           "%s/transport", s == 0 ? acc : core);
    }
  }
  if (c.errors != 0 || !next->e2ae) {
    return finish(&c);
  }
  if (next->dc) {
    /* Its own members here; DTLS and ICE below, as the RTP path's. */
    dcmf_agwiq_dc_patch_check(&c, prev, next, ch);
  }
  if (next->t140) {
    dcmf_agwiq_t140_patch_check(&c, prev, next);
  }
  if (next->tcp) {
    dcmf_agwiq_tcp_patch_check(&c, prev, next, ch);
    if (c.errors != 0) {
      memset(ch, 0, sizeof(*ch));
    }
    return finish(&c);
  }
  /* DTLS: a new tls-id is a new association (RFC 8842 section 5), which
   * may bring its own fingerprints and role; under the same tls-id the
   * association and its role stay as they are. */
  if (prev->tls_id[0] != '\0' && next->tls_id[0] == '\0') {
    fail(&c, "cannot be removed once given", "%s/dtls/tlsId", acc);
  }
  ch->new_association = next->tls_id[0] != '\0' &&
                        strcmp(prev->tls_id, next->tls_id) != 0 &&
                        prev->tls_id[0] != '\0';
  if (prev->remote_fp.count > 0 && next->remote_fp.count == 0) {
    fail(&c, "cannot be removed once given", "%s/dtls/remoteFingerprints", acc);
  } else if (prev->remote_fp.count == 0 && next->remote_fp.count > 0) {
    ch->fingerprint_arrived = 1;
  } else if (!same_fps(&prev->remote_fp, &next->remote_fp) &&
             !ch->new_association) {
    fail(&c,
         "cannot change under the same tlsId: give a new tlsId for a new "
         "DTLS association",
         "%s/dtls/remoteFingerprints", acc);
  }
  /* The local fingerprint was answered at the POST in the hash chosen
   * then: a hash derived anew from fingerprints arriving now would not
   * match it. */
  if (!next->local_fp_hash_given) {
    next->local_fp_hash = prev->local_fp_hash;
  }
  /* An actpass offer of ours (UE-terminated, RFC 8842 section 5.3) is
   * settled by the peer's answer: its setup, and establish when it
   * answers passive, may be given once, while nothing of the association
   * is known yet (no tls-id, no fingerprint: the handshake is held). */
  int unresolved = prev->setup == DCMF_AGWIQ_SETUP_ACTPASS &&
                   prev->tls_id[0] == '\0' && prev->remote_fp.count == 0;
  if (!ch->new_association && !unresolved) {
    if (prev->setup != next->setup) {
      fail(&c,
           "the DTLS role is sticky: a new setup needs a new tlsId (a new "
           "association)",
           "%s/dtls/setup", acc);
    }
    if (prev->establish != next->establish) {
      fail(&c,
           "the DTLS role is sticky: changing establish needs a new tlsId "
           "(a new association)",
           "%s/dtls/establish", acc);
    }
  }
  if (prev->dtls_rsa != next->dtls_rsa) {
    fail(&c,
         "cannot change: the local fingerprint was answered for this "
         "certificate",
         "%s/dtls/certificate", acc);
  }
  if (!ch->new_association) {
    if (prev->local_fp_hash != next->local_fp_hash) {
      fail(&c,
           "cannot change under the same tlsId: the local fingerprint was "
           "answered in this hash",
           "%s/dtls/localFingerprintHash", acc);
    }
  }
  /* ICE (RFC 8839 section 4.4.1.1.1): a restart changes ufrag and pwd
   * together. */
  int had_ice = prev->ice_ufrag[0] != '\0';
  int has_ice = next->ice_ufrag[0] != '\0';
  if (had_ice && !has_ice) {
    fail(&c,
         "cannot be removed once given; an ICE restart sends new "
         "remoteUfrag and remotePwd",
         "%s/ice", acc);
  } else if (!had_ice && has_ice) {
    ch->ice_arrived = 1;
  } else if (had_ice) {
    int u = strcmp(prev->ice_ufrag, next->ice_ufrag) != 0;
    int w = strcmp(prev->ice_pwd, next->ice_pwd) != 0;
    if (u != w) {
      fail(&c, "an ICE restart changes remoteUfrag and remotePwd together",
           "%s/ice/%s", acc, u ? "remotePwd" : "remoteUfrag");
    }
    ch->ice_restart = u && w;
  }
  ch->role_changed = prev->role != next->role;
  ch->core_rtcp_changed = prev->core_rtcp_mux != next->core_rtcp_mux ||
                          prev->core_rtcp_port != next->core_rtcp_port;
  ch->notify_changed = strcmp(prev->notify_uri, next->notify_uri) != 0;
  if (c.errors != 0) {
    memset(ch, 0, sizeof(*ch));
  }
  return finish(&c);
}

/* ---- for agwiq_tcp.c (agwiq_int.h) ----------------------------------------
 */

int dcmf_agwiq_finish(struct check *c) {
  return finish(c);
}

void dcmf_agwiq_only_members(struct check *c, json_t *obj,
                             const char *const *allowed, const char *prefix) {
  only_members(c, obj, allowed, prefix);
}

void dcmf_agwiq_refuse_listed(struct check *c, json_t *t,
                              const char *const *names, const char *prefix,
                              const char *reason) {
  refuse_listed(c, t, names, prefix, reason);
}

int dcmf_agwiq_string_member(struct check *c, json_t *obj, const char *name,
                             const char *prefix, int (*check)(const char *),
                             const char *reason, char *out, size_t cap) {
  return string_member(c, obj, name, prefix, check, reason, out, cap);
}

int dcmf_agwiq_uri_check(const char *s) {
  return uri_check(s);
}

void dcmf_agwiq_parse_dtls(struct check *c, json_t *d, const char *prefix,
                           struct dcmf_agwiq *out) {
  parse_dtls(c, d, prefix, out);
}
