/*
 * alg_request.c - from an SDP offer or answer, the /agw/v1 requests
 * (alg.h; the members are docs/api.md's and docs/openapi.yaml's).
 */
#include "alg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errors.h"

/* The media line's address: the first UDP host candidate of component 1
 * when it has ICE, else c=/m=. NULL when there is none usable (0.0.0.0,
 * or the discard port of a TCP active side, RFC 4145, stays as given). */
static json_t *remote_of(const struct dcmf_sdp *sdp, size_t i,
                         const struct dcmf_sdp_mline *m) {
  char addr[64];
  int family = 4;
  unsigned long port = m->port;
  for (size_t k = 0;; k++) {
    const char *c = dcmf_sdp_attr(&sdp->media[i], "candidate", k);
    if (!c)
      break;
    char found[64], transport[8], typ[8], kind[16];
    unsigned comp;
    unsigned long prio, cport;
    if (sscanf(c, "%*s %u %7s %lu %63s %lu %7s %15s", &comp, transport, &prio,
               found, &cport, typ, kind) == 7 &&
        comp == 1 && strcmp(typ, "typ") == 0 && cport <= 65535 &&
        (transport[0] == 'u' || transport[0] == 'U')) {
      json_t *r = json_object();
      json_object_set_new(r, strchr(found, ':') ? "ipv6Addr" : "ipv4Addr",
                          json_string(found));
      json_object_set_new(r, "port", json_integer((json_int_t)cport));
      return r;
    }
  }
  if (dcmf_sdp_conn(sdp, i, addr, sizeof addr, &family))
    return NULL;
  if (strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0)
    return NULL;
  json_t *r = json_object();
  json_object_set_new(r, family == 6 ? "ipv6Addr" : "ipv4Addr",
                      json_string(addr));
  json_object_set_new(r, "port", json_integer((json_int_t)port));
  return r;
}

static const char *setup_of(const struct dcmf_sdp *sdp, size_t i) {
  const char *s = dcmf_sdp_attr(&sdp->media[i], "setup", 0);
  return s ? s : dcmf_sdp_attr(&sdp->session, "setup", 0);
}

static json_t *fingerprints_of(const struct dcmf_sdp *sdp, size_t i) {
  json_t *a = json_array();
  const struct dcmf_sdp_section *sec[2] = {&sdp->media[i], &sdp->session};
  for (int s = 0; s < 2 && !json_array_size(a); s++)
    for (size_t k = 0; k < 8; k++) {
      const char *f = dcmf_sdp_attr(sec[s], "fingerprint", k);
      if (!f)
        break;
      json_array_append_new(a, json_string(f));
    }
  return a;
}

static const char *ice_attr(const struct dcmf_sdp *sdp, size_t i,
                            const char *name) {
  const char *v = dcmf_sdp_attr(&sdp->media[i], name, 0);
  return v ? v : dcmf_sdp_attr(&sdp->session, name, 0);
}

/* The peer's security members (dtls or tls) from the access SDP: its
 * fingerprints, its setup, establish when the AGW must be the client,
 * its tls-id (DTLS). An actpass offer makes the AGW the server
 * (passive): the WIC then starts DTLS as soon as it has the answer, and
 * the AGW's role never hangs on an unresolved actpass (e2ae-paths.md §8). */
static json_t *security_of(const struct dcmf_sdp *sdp, size_t i,
                           const struct dcmf_alg_path *p) {
  json_t *d = json_object();
  json_t *fps = fingerprints_of(sdp, i);
  if (json_array_size(fps))
    json_object_set_new(d, "remoteFingerprints", fps);
  else
    json_decref(fps);
  const char *setup = setup_of(sdp, i);
  if (!setup)
    setup = "actpass";
  json_object_set_new(d, "setup", json_string(setup));
  if (strcmp(setup, "passive") == 0)
    json_object_set_new(d, "establish", json_true());
  const char *tls_id = dcmf_sdp_attr(&sdp->media[i], "tls-id", 0);
  if (tls_id && p->security == DCMF_ALG_DTLS)
    json_object_set_new(d, "tlsId", json_string(tls_id + strspn(tls_id, " ")));
  return d;
}

static json_t *data_channel_of(const struct dcmf_sdp *sdp, size_t i,
                               const struct dcmf_alg_path *p) {
  long id;
  const char *dcmap = dcmf_alg_dcmap(&sdp->media[i], &id);
  if (!dcmap)
    return NULL;
  json_t *dc = json_object();
  char v[256];
  json_object_set_new(dc, "streamId", json_integer(id));
  if (dcmf_alg_dcmap_opt(dcmap, "label", v, sizeof v))
    json_object_set_new(dc, "label", json_string(v));
  json_object_set_new(dc, "subprotocol", json_string(p->subprotocol));
  if (dcmf_alg_dcmap_opt(dcmap, "ordered", v, sizeof v))
    json_object_set_new(dc, "ordered", json_boolean(strcmp(v, "true") == 0));
  /* Passed on for the AGW to refuse: RFC 8873 4.3 and RFC 8865 4.1 want
   * reliable channels, and an offer with them rejected. */
  if (dcmf_alg_dcmap_opt(dcmap, "max-retr", v, sizeof v))
    json_object_set_new(dc, "maxRetr", json_integer(atol(v)));
  if (dcmf_alg_dcmap_opt(dcmap, "max-time", v, sizeof v))
    json_object_set_new(dc, "maxTime", json_integer(atol(v)));
  const char *mms = dcmf_sdp_attr(&sdp->media[i], "max-message-size", 0);
  if (mms)
    json_object_set_new(dc, "maxMessageSize", json_integer(atol(mms)));
  const char *sp = dcmf_sdp_attr(&sdp->media[i], "sctp-port", 0);
  if (sp)
    json_object_set_new(dc, "sctpPort", json_integer(atol(sp)));
  json_t *dcsa = json_object();
  const struct dcmf_sdp_section *s = &sdp->media[i];
  if (strcmp(p->subprotocol, "msrp") == 0) {
    const char *path = dcmf_alg_dcsa(s, id, "path");
    const char *setup = dcmf_alg_dcsa(s, id, "setup");
    if (path)
      json_object_set_new(dcsa, "path", json_string(path));
    json_object_set_new(dcsa, "setup", json_string(setup ? setup : "actpass"));
    json_object_set_new(dcsa, "msrpCema",
                        json_boolean(dcmf_alg_dcsa(s, id, "msrp-cema")));
  } else {
    /* T.140 (RFC 8865 4.2): cps from "fmtp:t140 cps=N", the direction. */
    const char *fmtp = dcmf_alg_dcsa(s, id, "fmtp");
    const char *cps = fmtp ? strstr(fmtp, "cps=") : NULL;
    if (cps)
      json_object_set_new(dcsa, "cps", json_integer(atol(cps + 4)));
    const char *hs = dcmf_alg_dcsa(s, id, "hlang-send");
    const char *hr = dcmf_alg_dcsa(s, id, "hlang-recv");
    if (hs)
      json_object_set_new(dcsa, "hlangSend", json_string(hs));
    if (hr)
      json_object_set_new(dcsa, "hlangRecv", json_string(hr));
    static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly",
                                       "inactive"};
    for (size_t k = 0; k < 4; k++)
      if (dcmf_alg_dcsa(s, id, dirs[k]))
        json_object_set_new(dcsa, "direction", json_string(dirs[k]));
  }
  json_object_set_new(dc, "dcsa", dcsa);
  return dc;
}

/* MSRP over TLS toward a TCP/MSRP core (TS 23.334 5.19): an offer with
 * a=msrp-cema (RFC 6714 puts it on the m= line; one at session level is
 * honoured too) makes the ALG ask for agnostic handling, as 5.19 says it
 * shall; without it the far ends' a=path URIs could not match, so the
 * ALG asks for aware handling (5.19.5) and the AGW rewrites the paths. */
static bool tls_msrp(const struct dcmf_alg_path *p) {
  return p->security == DCMF_ALG_TLS &&
         strcmp(p->api_access, "TCP/TLS/MSRP") == 0 &&
         strcmp(p->api_core, "TCP/MSRP") == 0;
}

static bool tls_msrp_aware(const struct dcmf_sdp *sdp, size_t i,
                           const struct dcmf_alg_path *p) {
  return tls_msrp(p) && !dcmf_sdp_attr(&sdp->media[i], "msrp-cema", 0) &&
         !dcmf_sdp_attr(&sdp->session, "msrp-cema", 0);
}

/* The msrp member of a TCP/TLS/MSRP POST's termination on |side|: the
 * offerer's own a=path goes on its termination when aware (the other
 * comes with the answer's PATCH). */
static json_t *tls_msrp_member(const struct dcmf_sdp *sdp, size_t i,
                               const struct dcmf_alg_path *p,
                               const struct dcmf_alg_opts *o,
                               enum dcmf_alg_side side) {
  if (!tls_msrp_aware(sdp, i, p))
    return json_pack("{s:s}", "mode", "agnostic");
  json_t *m = json_pack("{s:s}", "mode", "aware");
  const char *path = dcmf_sdp_attr(&sdp->media[i], "path", 0);
  if (path && o->side == side)
    json_object_set_new(m, "path", json_string(path));
  return m;
}

/* The access termination of a POST: from the access SDP when it is the
 * offer; when the core offered, the UE is not known yet and only the
 * AGW's role (from the core's |core_setup| on TCP paths) is set. */
static json_t *access_termination(const struct dcmf_sdp *sdp, size_t i,
                                  const struct dcmf_alg_path *p,
                                  const struct dcmf_alg_opts *o,
                                  const struct dcmf_sdp_mline *m,
                                  const char *core_setup) {
  json_t *t = json_object();
  json_object_set_new(t, "terminationId", json_string("access"));
  json_object_set_new(t, "transport", json_string(p->api_access));
  if (p->rtp)
    json_object_set_new(t, "rtcpMux", json_true());
  const char *sec = p->security == DCMF_ALG_TLS ? "tls" : "dtls";
  if (o->side == DCMF_ALG_ACCESS) {
    json_object_set_new(t, sec, security_of(sdp, i, p));
    const char *uf = ice_attr(sdp, i, "ice-ufrag");
    const char *pw = ice_attr(sdp, i, "ice-pwd");
    if (uf && pw && p->security == DCMF_ALG_DTLS)
      json_object_set_new(t, "ice",
                          json_pack("{s:s,s:s}", "remoteUfrag", uf,
                                    "remotePwd", pw));
    json_t *r = remote_of(sdp, i, m);
    if (r)
      json_object_set_new(t, "remote", r);
    if (p->subprotocol) {
      json_t *dc = data_channel_of(sdp, i, p);
      if (dc)
        json_object_set_new(t, "dataChannel", dc);
    }
  } else if (p->security == DCMF_ALG_TLS && core_setup &&
             strcmp(core_setup, "active") == 0) {
    /* The core connects to the AGW: the AGW connects to the UE (the
     * legs mirror, TS 23.334 5.16.2.2). */
    json_object_set_new(t, sec, json_pack("{s:s,s:b}", "setup", "passive",
                                          "establish", 1));
  } else {
    json_object_set_new(t, sec, json_pack("{s:s}", "setup", "actpass"));
  }
  if (o->side == DCMF_ALG_CORE && p->subprotocol &&
      strcmp(p->subprotocol, "t140") == 0) {
    /* The core offers text to a WIC: the ALG picks the channel it will
     * offer the WIC (the stream id alg_rewrite.c's add_dcmap uses
     * without one, 1000 + the line) and the direction the core's
     * implies (RFC 8865 6: the same on both sides); the WIC's cps comes
     * with its answer. */
    json_t *dcsa = json_object();
    static const char *const mirror[][2] = {{"sendonly", "recvonly"},
                                            {"recvonly", "sendonly"},
                                            {"inactive", "inactive"}};
    for (size_t k = 0; k < 3; k++)
      if (dcmf_sdp_attr(&sdp->media[i], mirror[k][0], 0))
        json_object_set_new(dcsa, "direction", json_string(mirror[k][1]));
    json_object_set_new(t, "dataChannel",
                        json_pack("{s:I,s:s,s:o}", "streamId",
                                  (json_int_t)(1000 + i), "subprotocol",
                                  "t140", "dcsa", dcsa));
  }
  if (tls_msrp(p))
    json_object_set_new(t, "msrp",
                        tls_msrp_member(sdp, i, p, o, DCMF_ALG_ACCESS));
  if (o->notify_uri)
    json_object_set_new(t, "notifyUri", json_string(o->notify_uri));
  return t;
}

/* The core's m=text payload types (RFC 4103: t140/1000 and red/1000,
 * red's fmtp giving the generations) and its fmtp cps. A core SDP
 * without t140 gets nothing (the AGW's defaults). */
static json_t *t140_of(const struct dcmf_sdp_section *s) {
  long pt = -1, red = -1, cps = 0;
  for (size_t k = 0;; k++) {
    const char *r = dcmf_sdp_attr(s, "rtpmap", k);
    if (!r)
      break;
    char name[16];
    long n;
    if (sscanf(r, "%ld %15[^/]", &n, name) != 2 || n < 0 || n > 127)
      continue;
    if (strcasecmp(name, "t140") == 0 && pt < 0)
      pt = n;
    else if (strcasecmp(name, "red") == 0 && red < 0)
      red = n;
  }
  if (pt < 0)
    return NULL;
  json_t *t = json_pack("{s:I}", "payloadType", (json_int_t)pt);
  for (size_t k = 0;; k++) {
    const char *f = dcmf_sdp_attr(s, "fmtp", k);
    long n;
    int at = 0;
    if (!f)
      break;
    if (sscanf(f, "%ld %n", &n, &at) != 1)
      continue;
    const char *c = strstr(f + at, "cps=");
    if (n == pt && c)
      cps = atol(c + 4);
    if (n == red && red >= 0) {
      /* "98/98/98": the primary and two generations, one per '/'. */
      long gens = 0;
      for (const char *q = f + at; *q && *q != ' '; q++)
        gens += *q == '/';
      json_object_set_new(t, "generations", json_integer(gens > 5 ? 5 : gens));
    }
  }
  if (red >= 0)
    json_object_set_new(t, "redPayloadType", json_integer(red));
  else
    json_object_del(t, "generations");
  if (cps > 0 && cps <= 65535)
    json_object_set_new(t, "cps", json_integer(cps));
  return t;
}

static json_t *core_termination(const struct dcmf_sdp *sdp, size_t i,
                                const struct dcmf_alg_path *p,
                                const struct dcmf_alg_opts *o,
                                const struct dcmf_sdp_mline *m) {
  json_t *t = json_object();
  json_object_set_new(t, "terminationId", json_string("core"));
  json_object_set_new(t, "transport", json_string(p->api_core));
  if (o->side == DCMF_ALG_CORE) {
    json_t *r = remote_of(sdp, i, m);
    if (r)
      json_object_set_new(t, "remote", r);
    if (p->rtp || (p->subprotocol && strcmp(p->subprotocol, "t140") == 0)) {
      bool mux = dcmf_sdp_attr(&sdp->media[i], "rtcp-mux", 0) != NULL;
      json_object_set_new(t, "rtcpMux", json_boolean(mux));
      const char *rtcp = dcmf_sdp_attr(&sdp->media[i], "rtcp", 0);
      if (rtcp && !mux && atol(rtcp) > 0 && atol(rtcp) <= 65535)
        json_object_set_new(t, "remoteRtcpPort", json_integer(atol(rtcp)));
    }
    json_t *t140 = p->subprotocol && strcmp(p->subprotocol, "t140") == 0
                       ? t140_of(&sdp->media[i])
                       : NULL;
    if (t140)
      json_object_set_new(t, "t140", t140);
  } else if (p->rtp ||
             (p->subprotocol && strcmp(p->subprotocol, "t140") == 0)) {
    json_object_set_new(t, "rtcpMux", json_false());
  }
  if (p->subprotocol && strcmp(p->subprotocol, "msrp") == 0) {
    long id;
    bool cema = false;
    if (o->side == DCMF_ALG_ACCESS && dcmf_alg_dcmap(&sdp->media[i], &id))
      cema = dcmf_alg_dcsa(&sdp->media[i], id, "msrp-cema") != NULL;
    json_object_set_new(t, "tcp", json_pack("{s:s}", "setup", "active"));
    json_object_set_new(t, "msrp",
                        json_pack("{s:s}", "mode", cema ? "agnostic" : "aware"));
  } else if (p->security == DCMF_ALG_TLS) {
    /* Stateless (TS 23.334 5.16.1): the AGW's active leg connects once
     * the other leg is up, so the address of the side that has not
     * answered yet may come in the answer's PATCH. */
    json_object_set_new(t, "tcp", json_pack("{s:s}", "handling", "stateless"));
    if (tls_msrp(p))
      json_object_set_new(t, "msrp",
                          tls_msrp_member(sdp, i, p, o, DCMF_ALG_CORE));
  }
  return t;
}

static json_t *patch_op(const char *op, const char *path, json_t *value) {
  return json_pack("{s:s,s:s,s:o}", "op", op, "path", path, "value", value);
}

/* The index of |id| in the reply's terminations (else the POST's). */
static int term_index(const json_t *reply, const char *id) {
  json_t *ts = json_object_get(reply, "terminations");
  for (size_t k = 0; k < json_array_size(ts); k++) {
    const char *tid =
        json_string_value(json_object_get(json_array_get(ts, k), "terminationId"));
    if (tid && strcmp(tid, id) == 0)
      return (int)k;
  }
  return strcmp(id, "access") == 0 ? 0 : 1;
}

/* The msrp.mode of the reply's termination |id|, or NULL. */
static const char *reply_msrp_mode(const json_t *reply, const char *id) {
  const json_t *t = json_array_get(json_object_get(reply, "terminations"),
                                   (size_t)term_index(reply, id));
  return json_string_value(json_object_get(json_object_get(t, "msrp"), "mode"));
}

/* The patch of an answer, or of a re-offer (|reoffer|: an offer for a
 * line that has a context already). A re-offer from the access side
 * states the peer's whole security state again: establish is set either
 * way (a new tls-id may change the role both ways) and the address goes
 * in on DTLS paths too (an ICE restart brings a new candidate). */
static json_t *answer_patch(const struct dcmf_sdp *sdp, size_t i,
                            const struct dcmf_alg_path *p,
                            const struct dcmf_alg_opts *o,
                            const struct dcmf_sdp_mline *m,
                            const json_t *reply, bool reoffer) {
  json_t *ops = json_array();
  char base[64], path[128];
  if (o->side == DCMF_ALG_CORE) {
    snprintf(base, sizeof base, "/terminations/%d", term_index(reply, "core"));
    json_t *r = remote_of(sdp, i, m);
    if (r) {
      snprintf(path, sizeof path, "%s/remote", base);
      json_array_append_new(ops, patch_op("add", path, r));
    }
    /* The RTP core leg's RTCP: the SRTP path's and T.140's (RFC 4103
     * text is an RTP session, RFC 3550 §6; RFC 5761 rtcp-mux). */
    if (p->rtp || (p->subprotocol && strcmp(p->subprotocol, "t140") == 0)) {
      bool mux = dcmf_sdp_attr(&sdp->media[i], "rtcp-mux", 0) != NULL;
      const char *rtcp = dcmf_sdp_attr(&sdp->media[i], "rtcp", 0);
      if (mux) {
        snprintf(path, sizeof path, "%s/rtcpMux", base);
        json_array_append_new(ops, patch_op("replace", path, json_true()));
      } else if (rtcp && atol(rtcp) > 0 && atol(rtcp) <= 65535) {
        snprintf(path, sizeof path, "%s/remoteRtcpPort", base);
        json_array_append_new(ops,
                              patch_op("add", path, json_integer(atol(rtcp))));
      }
    }
    json_t *t140 = p->subprotocol && strcmp(p->subprotocol, "t140") == 0
                       ? t140_of(&sdp->media[i])
                       : NULL;
    if (t140) {
      /* The core's answer settles its payload types and red. */
      snprintf(path, sizeof path, "%s/t140", base);
      json_array_append_new(ops, patch_op("add", path, t140));
    }
    const char *mpath = dcmf_sdp_attr(&sdp->media[i], "path", 0);
    const char *mode = reply_msrp_mode(reply, "core");
    /* The DC path's context is aware unless it says otherwise; a
     * TCP/TLS/MSRP one only when its POST asked (the offer's CEMA). */
    bool dc_msrp = p->subprotocol && strcmp(p->subprotocol, "msrp") == 0;
    if (mpath && ((dc_msrp && (!mode || strcmp(mode, "aware") == 0)) ||
                  (tls_msrp(p) && mode && strcmp(mode, "aware") == 0))) {
      snprintf(path, sizeof path, "%s/msrp/path", base);
      json_array_append_new(ops, patch_op("add", path, json_string(mpath)));
    }
    return ops;
  }
  snprintf(base, sizeof base, "/terminations/%d/%s",
           term_index(reply, "access"),
           p->security == DCMF_ALG_TLS ? "tls" : "dtls");
  json_t *sec = security_of(sdp, i, p);
  json_t *fps = json_object_get(sec, "remoteFingerprints");
  if (fps) {
    snprintf(path, sizeof path, "%s/remoteFingerprints", base);
    json_array_append_new(ops, patch_op("add", path, json_incref(fps)));
  }
  snprintf(path, sizeof path, "%s/setup", base);
  json_array_append_new(ops, patch_op("replace", path,
                                      json_incref(json_object_get(sec, "setup"))));
  if (json_object_get(sec, "establish") || reoffer) {
    snprintf(path, sizeof path, "%s/establish", base);
    json_array_append_new(
        ops, patch_op("add", path,
                      json_boolean(json_object_get(sec, "establish"))));
  }
  if (json_object_get(sec, "tlsId")) {
    snprintf(path, sizeof path, "%s/tlsId", base);
    json_array_append_new(ops, patch_op("add", path,
                                        json_incref(json_object_get(sec, "tlsId"))));
  }
  json_decref(sec);
  const char *uf = ice_attr(sdp, i, "ice-ufrag");
  const char *pw = ice_attr(sdp, i, "ice-pwd");
  bool ice = uf && pw && p->security == DCMF_ALG_DTLS;
  json_t *r = p->security == DCMF_ALG_TLS || reoffer || !ice
                  ? remote_of(sdp, i, m)
                  : NULL;
  if (r) {
    /* The UE's address, for the AGW's access leg to connect to or to
     * accept from (TCP has no ICE), or, on a DTLS path without ICE (an
     * IMS UE's T.38, RFC 7345 4.2-4.4), for the AGW's ClientHello when
     * the UE answered passive: without it the AGW has nowhere to send. */
    snprintf(path, sizeof path, "/terminations/%d/remote",
             term_index(reply, "access"));
    json_array_append_new(ops, patch_op("add", path, r));
  }
  const char *mode = reply_msrp_mode(reply, "access");
  const char *upath = dcmf_sdp_attr(&sdp->media[i], "path", 0);
  if (tls_msrp(p) && upath && mode && strcmp(mode, "aware") == 0) {
    /* The UE's a=path (its answer's, or a re-offer's new one) for the
     * aware relay's To-Path toward the UE. */
    snprintf(path, sizeof path, "/terminations/%d/msrp/path",
             term_index(reply, "access"));
    json_array_append_new(ops, patch_op("add", path, json_string(upath)));
  }
  json_t *dc = p->subprotocol && strcmp(p->subprotocol, "t140") == 0
                   ? data_channel_of(sdp, i, p)
                   : NULL;
  if (dc) {
    /* The WIC's answer settles its dcsa values (cps, hlang, direction). */
    snprintf(path, sizeof path, "/terminations/%d/dataChannel/dcsa",
             term_index(reply, "access"));
    json_array_append_new(
        ops, patch_op("add", path, json_incref(json_object_get(dc, "dcsa"))));
    json_decref(dc);
  }
  if (ice) {
    snprintf(path, sizeof path, "/terminations/%d/ice",
             term_index(reply, "access"));
    json_array_append_new(ops, patch_op("add", path,
                                        json_pack("{s:s,s:s}", "remoteUfrag",
                                                  uf, "remotePwd", pw)));
  }
  return ops;
}

int dcmf_alg_request(const struct dcmf_sdp *sdp,
                     const struct dcmf_alg_opts *o, json_t **out, char *err,
                     size_t errlen) {
  json_t *reqs = json_array();
  for (size_t i = 0; i < sdp->nmedia; i++) {
    struct dcmf_sdp_mline m;
    const struct dcmf_alg_path *p = dcmf_alg_media_path(sdp, i, o, &m);
    json_t *e = json_pack("{s:i}", "mline", (int)i);
    json_array_append_new(reqs, e);
    const json_t *reply = json_array_get(o->replies, i);
    if (!p) {
      json_object_set_new(e, "skip", json_string("not an e2ae media line"));
      continue;
    }
    json_object_set_new(e, "path", json_string(p->name));
    if (!m.port) {
      json_object_set_new(e, "skip", json_string("port 0: rejected or disabled"));
      continue;
    }
    /* An offer for a line whose context the replies hold: a re-offer. */
    bool reoffer = o->kind == DCMF_ALG_OFFER &&
                   json_is_string(json_object_get(reply, "contextId"));
    if (o->side == DCMF_ALG_CORE && o->kind == DCMF_ALG_OFFER && !reoffer &&
        p->subprotocol &&
        strcmp(p->subprotocol, "msrp") == 0) {
      json_object_set_new(e, "skip",
                          json_string("a core offer toward a WIC's MSRP data "
                                      "channel: /agw/v1 needs the WIC's dcsa "
                                      "path at the POST"));
      continue;
    }
    if (!p->served)
      json_object_set_new(e, "note",
                          json_string("this path is not served by dcmfd yet"));
    if (o->kind == DCMF_ALG_OFFER && !reoffer) {
      json_t *ts = json_array();
      const char *cs = o->side == DCMF_ALG_CORE ? setup_of(sdp, i) : NULL;
      json_array_append_new(ts, access_termination(sdp, i, p, o, &m, cs));
      json_array_append_new(ts, core_termination(sdp, i, p, o, &m));
      json_object_set_new(e, "method", json_string("POST"));
      json_object_set_new(e, "uri", json_string("/agw/v1/contexts"));
      json_object_set_new(e, "body", json_pack("{s:o}", "terminations", ts));
    } else {
      const char *cid = json_string_value(json_object_get(reply, "contextId"));
      char uri[300];
      snprintf(uri, sizeof uri, "/agw/v1/contexts/%s", cid ? cid : "{contextId}");
      json_object_set_new(e, "method", json_string("PATCH"));
      json_object_set_new(e, "uri", json_string(uri));
      json_object_set_new(e, "body",
                          answer_patch(sdp, i, p, o, &m, reply, reoffer));
    }
  }
  *out = json_pack("{s:o}", "requests", reqs);
  if (!*out) {
    snprintf(err, errlen, "out of memory");
    return DCMF_ERR_NOMEM;
  }
  return 0;
}
