/*
 * alg_rewrite.c - the SDP an IMS-ALG forwards, from the SDP it got and
 * the AGW's replies (alg.h; docs/e2ae.md "dcmf-alg" lists each rewrite
 * and its source).
 */
#include "alg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* What one media line's rewrite needs. */
struct mctx {
  struct dcmf_sdp_section *s;
  const struct dcmf_sdp_section *offer; /* the other side's offer, or NULL */
  const struct dcmf_alg_path *p;
  const struct dcmf_alg_opts *o;
  const json_t *acc, *core; /* the reply's terminations */
  struct dcmf_sdp_mline m;
  size_t index;
};

#define CHECK(expr)                                                           \
  do {                                                                        \
    int rc_ = (expr);                                                         \
    if (rc_)                                                                  \
      return rc_;                                                             \
  } while (0)

static const json_t *termination(const json_t *reply, const char *id) {
  json_t *ts = json_object_get(reply, "terminations");
  for (size_t k = 0; k < json_array_size(ts); k++) {
    json_t *t = json_array_get(ts, k);
    const char *tid = json_string_value(json_object_get(t, "terminationId"));
    if (tid && strcmp(tid, id) == 0)
      return t;
  }
  return NULL;
}

static const char *jstr(const json_t *o, const char *a, const char *b) {
  const json_t *v = json_object_get(o, a);
  if (b)
    v = json_object_get(v, b);
  return json_string_value(v);
}

/* The termination's local address into c= and its port into m=. */
static int set_local(struct mctx *c, const json_t *t, char *err, size_t errlen) {
  const json_t *local = json_object_get(t, "local");
  const char *v4 = jstr(local, "ipv4Addr", NULL);
  const char *v6 = jstr(local, "ipv6Addr", NULL);
  json_int_t port = json_integer_value(json_object_get(local, "port"));
  if ((!v4 && !v6) || port <= 0 || port > 65535) {
    snprintf(err, errlen, "reply %zu: termination %s has no local address",
             c->index, jstr(t, "terminationId", NULL));
    return DCMF_ERR_INVALID;
  }
  c->m.port = (unsigned)port;
  c->m.nports = 0;
  CHECK(dcmf_sdp_set(c->s, 'c', "IN %s %s", v4 ? "IP4" : "IP6", v4 ? v4 : v6));
  return 0;
}

/* The transport attributes neither side keeps as they came. */
static void strip_transport(struct dcmf_sdp_section *s) {
  static const char *const names[] = {
      "ice-ufrag", "ice-pwd", "ice-options", "ice-lite", "candidate",
      "end-of-candidates", "remote-candidates", "fingerprint", "setup",
      "tls-id", "connection", "rtcp", "rtcp-mux", "rtcp-mux-only",
      "rtcp-rsize", "3ge2ae", "sctp-port", "max-message-size", "bundle-only"};
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
    dcmf_sdp_remove_attr(s, names[k]);
}

static void bandwidth(struct mctx *c, bool add) {
  const char *pt = dcmf_sdp_attr(c->s, "ptime", 0);
  unsigned ptime = pt ? (unsigned)atoi(pt) : 0;
  for (size_t i = 0; i < c->s->n; i++) {
    struct dcmf_sdp_line *l = &c->s->lines[i];
    char mod[16];
    unsigned long v = 0;
    const char *colon = l->type == 'b' ? strchr(l->value, ':') : NULL;
    size_t mlen = colon ? (size_t)(colon - l->value) : 0;
    size_t digits = colon ? strspn(colon + 1, "0123456789") : 0;
    /* Only "<modifier>:<digits>" with at most 9 digits is adjusted. */
    if (!mlen || mlen >= sizeof mod || !digits || digits > 9 ||
        colon[1 + digits] != '\0')
      continue;
    memcpy(mod, l->value, mlen);
    mod[mlen] = '\0';
    v = strtoul(colon + 1, NULL, 10);
    unsigned long nv =
        dcmf_alg_bw_adjust(c->p, mod, v, c->m.media, ptime, add);
    char buf[48];
    snprintf(buf, sizeof buf, "%s:%lu", mod, nv);
    char *dup = strdup(buf);
    if (dup) {
      free(l->value);
      l->value = dup;
    }
  }
}

/* The AGW's a=setup toward the access side. */
static const char *setup_toward_access(const struct mctx *c) {
  const char *sec = c->p->security == DCMF_ALG_TLS ? "tls" : "dtls";
  const char *local = jstr(c->acc, sec, "localSetup");
  if (c->p->security == DCMF_ALG_TLS)
    return local ? local : "passive"; /* the TCP port listens already */
  if (c->o->kind == DCMF_ALG_OFFER)
    return local && strcmp(local, "active") == 0 ? "active" : "actpass";
  return local ? local : "passive";
}

/* The AGW's a=setup toward the core on TCP paths: its core leg's role
 * (merge is announced as passive, TS 23.334 6.2.18.4), else the mirror
 * of the UE's (the UE's own value: the UE connecting makes the AGW
 * connect). */
static const char *setup_toward_core(const struct mctx *c, const char *ue) {
  const char *local = jstr(c->core, "tcp", "localSetup");
  if (!local)
    local = jstr(c->core, "tcp", "setup");
  if (local)
    return strcmp(local, "active") == 0 ? "active" : "passive";
  return ue && strcmp(ue, "passive") == 0 ? "passive" : "active";
}

static int add_security_toward_access(struct mctx *c) {
  const char *sec = c->p->security == DCMF_ALG_TLS ? "tls" : "dtls";
  const char *fp = jstr(c->acc, sec, "localFingerprint");
  if (fp) {
    char attr[512];
    CHECK(dcmf_alg_fingerprint_attr(fp, attr, sizeof attr));
    CHECK(dcmf_sdp_add(c->s, 'a', "fingerprint:%s", attr));
  }
  CHECK(dcmf_sdp_add(c->s, 'a', "setup:%s", setup_toward_access(c)));
  const char *tls_id = jstr(c->acc, "dtls", "localTlsId");
  if (tls_id && c->p->security == DCMF_ALG_DTLS)
    CHECK(dcmf_sdp_add(c->s, 'a', "tls-id:%s", tls_id));
  const char *uf = jstr(c->acc, "ice", "localUfrag");
  const char *pw = jstr(c->acc, "ice", "localPwd");
  if (uf && pw) {
    const json_t *local = json_object_get(c->acc, "local");
    const char *addr = jstr(local, "ipv4Addr", NULL);
    if (!addr)
      addr = jstr(local, "ipv6Addr", NULL);
    CHECK(dcmf_sdp_add(c->s, 'a', "ice-ufrag:%s", uf));
    CHECK(dcmf_sdp_add(c->s, 'a', "ice-pwd:%s", pw));
    CHECK(dcmf_sdp_add(c->s, 'a', "candidate:1 1 udp 2130706431 %s %u typ host",
                       addr ? addr : "0.0.0.0", c->m.port));
    CHECK(dcmf_sdp_add(c->s, 'a', "end-of-candidates"));
  }
  bool applied = c->p->e2ae_attr;
  if (applied && c->o->kind == DCMF_ALG_ANSWER && c->offer) {
    const char *req = dcmf_sdp_attr(c->offer, "3ge2ae", 0);
    applied = req && strcmp(req, "requested") == 0;
  }
  if (applied)
    CHECK(dcmf_sdp_add(c->s, 'a', "3ge2ae:applied"));
  return 0;
}

/* Media-level attributes that are the media's own and move into a=dcsa
 * (toward a WIC) or out of it (toward the core), RFC 8873 4.4 and RFC
 * 8865 4.2. */
static bool dcsa_movable(const char *v) {
  static const char *const names[] = {
      "accept-types", "accept-wrapped-types", "max-size", "sendrecv",
      "sendonly", "recvonly", "inactive", "hlang-send", "hlang-recv",
      "file-selector", "file-transfer-id", "file-disposition", "file-date",
      "file-icon", "file-range"};
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    size_t n = strlen(names[k]);
    if (strncmp(v, names[k], n) == 0 && (v[n] == ':' || v[n] == '\0'))
      return true;
  }
  return false;
}

/* Toward the core: the WIC's data channel line becomes m=message TCP/MSRP
 * or m=text RTP/AVP. */
static int dc_toward_core(struct mctx *c) {
  long id = -1;
  const char *dcmap = dcmf_alg_dcmap(c->s, &id);
  char **moved = calloc(c->s->n + 1, sizeof *moved);
  size_t nmoved = 0;
  if (!moved)
    return DCMF_ERR_NOMEM;
  const char *path = dcmap ? dcmf_alg_dcsa(c->s, id, "path") : NULL;
  char *wic_path = path ? strdup(path) : NULL;
  const char *fmtp = dcmap ? dcmf_alg_dcsa(c->s, id, "fmtp") : NULL;
  const char *cps = fmtp ? strstr(fmtp, "cps=") : NULL;
  long cpsv = cps ? atol(cps + 4) : 0;
  for (size_t i = 0; dcmap && i < c->s->n; i++) {
    struct dcmf_sdp_line *l = &c->s->lines[i];
    char *end;
    if (l->type != 'a' || strncmp(l->value, "dcsa:", 5) != 0 ||
        strtol(l->value + 5, &end, 10) != id || *end != ' ')
      continue;
    if (dcsa_movable(end + 1))
      moved[nmoved++] = strdup(end + 1);
  }
  dcmf_sdp_remove_attr(c->s, "dcmap");
  dcmf_sdp_remove_attr(c->s, "dcsa");
  int rc = 0;
  bool msrp = strcmp(c->p->subprotocol, "msrp") == 0;
  snprintf(c->m.media, sizeof c->m.media, "%s", c->p->core_media);
  snprintf(c->m.proto, sizeof c->m.proto, "%s", c->p->core_proto);
  if (msrp) {
    snprintf(c->m.fmt, sizeof c->m.fmt, "*");
    const char *mode = jstr(c->core, "msrp", "mode");
    bool agnostic = mode && strcmp(mode, "agnostic") == 0;
    const char *p = agnostic ? wic_path : jstr(c->core, "msrp", "localPath");
    if (p)
      rc = rc ? rc : dcmf_sdp_add(c->s, 'a', "path:%s", p);
    rc = rc ? rc : dcmf_sdp_add(c->s, 'a', "setup:%s", setup_toward_core(c, NULL));
    if (agnostic)
      rc = rc ? rc : dcmf_sdp_add(c->s, 'a', "msrp-cema");
  } else {
    /* RFC 4103 5 and RFC 8865 6: t140 with red, primary + 2 generations. */
    snprintf(c->m.fmt, sizeof c->m.fmt, "98 100");
    rc = dcmf_sdp_add(c->s, 'a', "rtpmap:98 t140/1000");
    rc = rc ? rc : dcmf_sdp_add(c->s, 'a', "rtpmap:100 red/1000");
    rc = rc ? rc : dcmf_sdp_add(c->s, 'a', "fmtp:100 98/98/98");
    if (cpsv > 0)
      rc = rc ? rc : dcmf_sdp_add(c->s, 'a', "fmtp:98 cps=%ld", cpsv);
  }
  for (size_t k = 0; k < nmoved; k++) {
    if (moved[k] && !rc)
      rc = dcmf_sdp_add(c->s, 'a', "%s", moved[k]);
    free(moved[k]);
  }
  free(moved);
  free(wic_path);
  return rc;
}

/* The dcmap line toward the WIC: the offer's (an answer echoes it),
 * else the reply's dataChannel, else a new app stream 1000 + line. */
static int add_dcmap(struct mctx *c, long *id) {
  long oid;
  const char *odcmap = c->offer ? dcmf_alg_dcmap(c->offer, &oid) : NULL;
  if (odcmap) {
    *id = oid;
    return dcmf_sdp_add(c->s, 'a', "dcmap:%s", odcmap);
  }
  const json_t *dc = json_object_get(c->acc, "dataChannel");
  json_t *sid = json_object_get(dc, "streamId");
  *id = sid ? (long)json_integer_value(sid) : 1000 + (long)c->index;
  const char *label = jstr(dc, "label", NULL);
  return dcmf_sdp_add(c->s, 'a', "dcmap:%ld label=\"%s\";subprotocol=\"%s\"",
                      *id, label ? label : c->p->subprotocol,
                      c->p->subprotocol);
}

/* Toward the WIC: m=message TCP/MSRP or m=text RTP/AVP from the core
 * becomes a data channel line with the dcmap and dcsa lines. */
static int dc_toward_access(struct mctx *c) {
  bool msrp = strcmp(c->p->subprotocol, "msrp") == 0;
  char *core_path = NULL;
  long cps = 0;
  if (msrp) {
    const char *p = dcmf_sdp_attr(c->s, "path", 0);
    core_path = p ? strdup(p) : NULL;
  } else {
    for (size_t k = 0;; k++) {
      const char *f = dcmf_sdp_attr(c->s, "fmtp", k);
      const char *cp = f ? strstr(f, "cps=") : NULL;
      if (!f)
        break;
      if (cp)
        cps = atol(cp + 4);
    }
  }
  char **moved = calloc(c->s->n + 1, sizeof *moved);
  size_t nmoved = 0;
  if (!moved) {
    free(core_path);
    return DCMF_ERR_NOMEM;
  }
  for (size_t i = 1; i < c->s->n;) {
    struct dcmf_sdp_line *l = &c->s->lines[i];
    if (l->type == 'a' && dcsa_movable(l->value)) {
      moved[nmoved++] = l->value;
      memmove(l, l + 1, (c->s->n - i - 1) * sizeof *l);
      c->s->n--;
    } else {
      i++;
    }
  }
  static const char *const media_only[] = {"path", "msrp-cema", "rtpmap",
                                           "fmtp", "ptime", "maxptime"};
  for (size_t k = 0; k < sizeof media_only / sizeof media_only[0]; k++)
    dcmf_sdp_remove_attr(c->s, media_only[k]);
  snprintf(c->m.media, sizeof c->m.media, "%s", c->p->access_media);
  snprintf(c->m.proto, sizeof c->m.proto, "%s", c->p->access_proto);
  snprintf(c->m.fmt, sizeof c->m.fmt, "%s", c->p->access_fmt);
  long id = 0;
  int rc = dcmf_sdp_add(c->s, 'a', "sctp-port:5000");
  rc = rc ? rc : dcmf_sdp_add(c->s, 'a', "max-message-size:262144");
  rc = rc ? rc : add_dcmap(c, &id);
  if (msrp && !rc) {
    const char *mode = jstr(c->core, "msrp", "mode");
    bool agnostic = mode && strcmp(mode, "agnostic") == 0;
    const json_t *dc = json_object_get(c->acc, "dataChannel");
    const char *p = agnostic ? core_path : jstr(dc, "localPath", NULL);
    const char *wic = jstr(json_object_get(dc, "dcsa"), "setup", NULL);
    if (p)
      rc = dcmf_sdp_add(c->s, 'a', "dcsa:%ld path:%s", id, p);
    rc = rc ? rc
            : dcmf_sdp_add(c->s, 'a', "dcsa:%ld setup:%s", id,
                           wic && strcmp(wic, "passive") == 0 ? "active"
                                                              : "passive");
    if (agnostic && !rc)
      rc = dcmf_sdp_add(c->s, 'a', "dcsa:%ld msrp-cema", id);
  } else if (!rc && cps > 0) {
    rc = dcmf_sdp_add(c->s, 'a', "dcsa:%ld fmtp:t140 cps=%ld", id, cps);
  }
  for (size_t k = 0; k < nmoved; k++) {
    if (!rc)
      rc = dcmf_sdp_add(c->s, 'a', "dcsa:%ld %s", id, moved[k]);
    free(moved[k]);
  }
  free(moved);
  free(core_path);
  return rc;
}

/* MSRP over TLS in aware mode (TS 23.334 5.19.5; the context's msrp.mode
 * decides, as the offer's CEMA decided it): each side gets the AGW's own
 * URI of that leg as a=path (msrps:...;tcp toward the UE, msrp:...;tcp
 * toward the core, from |t|'s msrp.localPath), and no a=msrp-cema: the
 * AGW is the path end, not a CEMA relay. In agnostic mode a=path and
 * a=msrp-cema pass unchanged (RFC 6714: the far end connects to c=/m=). */
static int tls_msrp_path(struct mctx *c, const json_t *t) {
  const char *am = jstr(c->acc, "msrp", "mode");
  const char *cm = jstr(c->core, "msrp", "mode");
  bool aware = (am && strcmp(am, "aware") == 0) ||
               (cm && strcmp(cm, "aware") == 0);
  if (c->p->security != DCMF_ALG_TLS || !aware ||
      strcmp(c->p->access_proto, "TCP/TLS/MSRP") != 0)
    return 0;
  const char *own = jstr(t, "msrp", "localPath");
  if (!own)
    return 0; /* no URI to give: the far end's path stays, and fails */
  char *keep = strdup(own);
  if (!keep)
    return DCMF_ERR_NOMEM;
  dcmf_sdp_remove_attr(c->s, "path");
  dcmf_sdp_remove_attr(c->s, "msrp-cema");
  int rc = dcmf_sdp_add(c->s, 'a', "path:%s", keep);
  free(keep);
  return rc;
}

static int toward_core(struct mctx *c, char *err, size_t errlen) {
  const char *ue_setup = dcmf_sdp_attr(c->s, "setup", 0);
  char ue[16] = "";
  if (ue_setup)
    snprintf(ue, sizeof ue, "%s", ue_setup);
  CHECK(set_local(c, c->core, err, errlen));
  if (c->p->subprotocol) {
    strip_transport(c->s);
    CHECK(dc_toward_core(c));
  } else {
    strip_transport(c->s);
    snprintf(c->m.proto, sizeof c->m.proto, "%s", c->p->core_proto);
    if (c->p->security == DCMF_ALG_TLS)
      CHECK(dcmf_sdp_add(c->s, 'a', "setup:%s",
                         setup_toward_core(c, ue[0] ? ue : NULL)));
    CHECK(tls_msrp_path(c, c->core));
  }
  if (c->p->rtp || (c->p->subprotocol && !strcmp(c->p->subprotocol, "t140"))) {
    /* An offer offers rtcp-mux with the separate RTCP port as the
     * fallback: the core may answer rtcp-mux only if it was offered
     * (RFC 5761 5.1.1 as RFC 8035 updates it), and its answer (a=rtcp-mux
     * or not) becomes the PATCH of rtcpMux. An answer follows the
     * context, which followed the core's offer. */
    bool mux = json_is_true(json_object_get(c->core, "rtcpMux"));
    const json_t *rtcp = json_object_get(c->core, "localRtcpPort");
    if (mux || (rtcp && c->o->kind == DCMF_ALG_OFFER))
      CHECK(dcmf_sdp_add(c->s, 'a', "rtcp-mux"));
    if (!mux && rtcp)
      CHECK(dcmf_sdp_add(c->s, 'a', "rtcp:%lld",
                         (long long)json_integer_value(rtcp)));
  }
  /* BUNDLE's header extensions (mid, rtp-stream-id) mean nothing
   * without it. */
  for (size_t i = 0; i < c->s->n;) {
    struct dcmf_sdp_line *l = &c->s->lines[i];
    if (l->type == 'a' && strncmp(l->value, "extmap:", 7) == 0 &&
        strstr(l->value, "urn:ietf:params:rtp-hdrext:sdes:")) {
      free(l->value);
      memmove(l, l + 1, (c->s->n - i - 1) * sizeof *l);
      c->s->n--;
    } else {
      i++;
    }
  }
  bandwidth(c, false);
  return dcmf_sdp_mline_set(c->s, &c->m);
}

static int toward_access(struct mctx *c, char *err, size_t errlen) {
  CHECK(set_local(c, c->acc, err, errlen));
  strip_transport(c->s);
  if (c->p->subprotocol) {
    CHECK(dc_toward_access(c));
  } else {
    /* On RTP paths the API's transport is the SDP protocol: the access
     * side keeps the one its termination has, whatever the core runs (a
     * WIC's SAVPF toward an RTP/AVP core that gets no feedback). */
    const char *tr = jstr(c->acc, "transport", NULL);
    bool savp = tr && (strcmp(tr, "UDP/TLS/RTP/SAVPF") == 0 ||
                       strcmp(tr, "UDP/TLS/RTP/SAVP") == 0);
    snprintf(c->m.proto, sizeof c->m.proto, "%s",
             c->p->rtp && savp ? tr : c->p->access_proto);
    CHECK(tls_msrp_path(c, c->acc));
  }
  if (c->p->rtp)
    CHECK(dcmf_sdp_add(c->s, 'a', "rtcp-mux"));
  CHECK(add_security_toward_access(c));
  const char *mid = c->offer ? dcmf_sdp_attr(c->offer, "mid", 0) : NULL;
  if (mid && c->o->kind == DCMF_ALG_ANSWER) {
    dcmf_sdp_remove_attr(c->s, "mid");
    CHECK(dcmf_sdp_add(c->s, 'a', "mid:%s", mid));
  }
  /* A core offer made a WIC's data channel line: JSEP (RFC 8829 5.2.1)
   * gives every m= section of an offer an a=mid, and WebRTC stacks find
   * the SCTP transport by it. */
  if (c->p->subprotocol && c->o->kind == DCMF_ALG_OFFER &&
      !dcmf_sdp_attr(c->s, "mid", 0))
    CHECK(dcmf_sdp_add(c->s, 'a', "mid:%zu", c->index));
  bandwidth(c, true);
  return dcmf_sdp_mline_set(c->s, &c->m);
}

/* a=group:BUNDLE goes (TS 23.228 U.1.1); a=mid goes toward the core
 * when no other group uses it. Returns whether a=mid is still used. */
static bool remove_bundle(struct dcmf_sdp *sdp) {
  dcmf_sdp_remove_attr_prefix(&sdp->session, "group", "BUNDLE");
  return dcmf_sdp_attr(&sdp->session, "group", 0) != NULL;
}

int dcmf_alg_rewrite(struct dcmf_sdp *sdp, const struct dcmf_alg_opts *o,
                     char *err, size_t errlen) {
  if (!json_is_array(o->replies)) {
    snprintf(err, errlen, "the replies must be a JSON array, one per m= line");
    return DCMF_ERR_INVALID;
  }
  bool toward_acc = o->side == DCMF_ALG_CORE;
  bool mid_used = remove_bundle(sdp);
  bool any_ice = false;
  static const char *const session_strip[] = {
      "ice-lite", "ice-options", "ice-ufrag", "ice-pwd", "fingerprint",
      "setup", "tls-id"};
  for (size_t k = 0; k < sizeof session_strip / sizeof session_strip[0]; k++)
    dcmf_sdp_remove_attr(&sdp->session, session_strip[k]);
  for (size_t i = 0; i < sdp->nmedia; i++) {
    struct mctx c = {.s = &sdp->media[i], .o = o, .index = i};
    c.p = dcmf_alg_media_path(sdp, i, o, &c.m);
    const json_t *reply = json_array_get(o->replies, i);
    if (!c.p || !c.m.port || !json_is_object(reply))
      continue;
    c.acc = termination(reply, "access");
    c.core = termination(reply, "core");
    if (!c.acc || !c.core) {
      snprintf(err, errlen, "reply %zu: no access and core terminations", i);
      return DCMF_ERR_INVALID;
    }
    if (o->offer && i < o->offer->nmedia)
      c.offer = &o->offer->media[i];
    if (!toward_acc && !mid_used) {
      dcmf_sdp_remove_attr(c.s, "mid");
    }
    int rc = toward_acc ? toward_access(&c, err, errlen)
                        : toward_core(&c, err, errlen);
    if (rc) {
      if (!err[0])
        snprintf(err, errlen, "m= line %zu: %s", i + 1, dcmf_strerror(rc));
      return rc;
    }
    if (toward_acc && jstr(c.acc, "ice", "localUfrag"))
      any_ice = true;
  }
  if (any_ice)
    return dcmf_sdp_add(&sdp->session, 'a', "ice-lite");
  return 0;
}
