/*
 * alg_paths.c - the table of e2ae paths, the matching of an m= line to
 * one, the bandwidth arithmetic and the small SDP helpers the request
 * and rewrite halves share (alg.h).
 */
#include "alg.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errors.h"

/*
 * Overheads (docs/e2ae.md, "Bandwidth"):
 *   - SRTP adds the authentication tag, 16 octets at most among the
 *     profiles the AGW negotiates (AEAD-GCM 16, AES-CM HMAC-SHA1-80 10),
 *     per RTP packet; SRTCP adds the E flag and index (4) and the tag (16)
 *     per RTCP packet (RFC 3711 3.4, RFC 7714).
 *   - UDPTL over DTLS 1.2 with an AEAD suite (RFC 7345's mandatory
 *     AES-128-GCM): 13 octets of record header, 8 of explicit nonce and
 *     16 of tag per datagram.
 *   - TCP/TLS and data channel paths: none (b= lines are not adjusted;
 *     their media are not packet-rate bound).
 */
static const struct dcmf_alg_path paths[] = {
    {"srtp-avpf", NULL, "UDP/TLS/RTP/SAVPF", NULL, NULL, "RTP/AVPF",
     "UDP/TLS/RTP/SAVPF", "RTP/AVPF", NULL, DCMF_ALG_DTLS, true, false, 16,
     20, true},
    {"srtp-avp", NULL, "UDP/TLS/RTP/SAVP", NULL, NULL, "RTP/AVP",
     "UDP/TLS/RTP/SAVP", "RTP/AVP", NULL, DCMF_ALG_DTLS, true, false, 16, 20,
     true},
    {"t38", "image", "UDP/TLS/UDPTL", NULL, "image", "udptl", "UDP/DTLS",
     "UDP", NULL, DCMF_ALG_DTLS, false, true, 37, 0, true},
    {"msrp-tls", "message", "TCP/TLS/MSRP", NULL, "message", "TCP/MSRP",
     "TCP/TLS/MSRP", "TCP/MSRP", NULL, DCMF_ALG_TLS, false, true, 0, 0, true},
    {"bfcp-tls", "application", "TCP/TLS/BFCP", NULL, "application",
     "TCP/BFCP", "TCP/TLS/BFCP", "TCP/BFCP", NULL, DCMF_ALG_TLS, false, true,
     0, 0, true},
    {"msrp-dc", "application", "UDP/DTLS/SCTP", "webrtc-datachannel",
     "message", "TCP/MSRP", "UDP/DTLS/SCTP", "TCP/MSRP", "msrp",
     DCMF_ALG_DTLS, false, false, 0, 0, true},
    {"t140-dc", "application", "UDP/DTLS/SCTP", "webrtc-datachannel", "text",
     "RTP/AVP", "UDP/DTLS/SCTP", "RTP/AVP", "t140", DCMF_ALG_DTLS, false,
     false, 0, 0, true},
};

const struct dcmf_alg_path *dcmf_alg_path_find(enum dcmf_alg_side side,
                                               const char *media,
                                               const char *proto,
                                               const char *subprotocol,
                                               bool wic) {
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    const struct dcmf_alg_path *p = &paths[i];
    const char *pm = side == DCMF_ALG_ACCESS ? p->access_media : p->core_media;
    const char *pp = side == DCMF_ALG_ACCESS ? p->access_proto : p->core_proto;
    if (strcasecmp(pp, proto) != 0 || (pm && strcmp(pm, media) != 0))
      continue;
    if (side == DCMF_ALG_ACCESS && p->subprotocol &&
        (!subprotocol || strcmp(subprotocol, p->subprotocol) != 0))
      continue;
    /* Toward a WIC, message and text lines ride data channels; toward an
     * IMS UE, they keep their transport (and RTP/AVP audio is SRTP). */
    if (side == DCMF_ALG_CORE && (p->subprotocol != NULL) != wic &&
        (strcmp(media, "message") == 0 || strcmp(media, "text") == 0))
      continue;
    if (side == DCMF_ALG_CORE && p->subprotocol && !wic)
      continue;
    return p;
  }
  return NULL;
}

unsigned long dcmf_alg_bw_adjust(const struct dcmf_alg_path *path,
                                 const char *modifier, unsigned long value,
                                 const char *media, unsigned ptime_ms,
                                 bool add) {
  unsigned long delta;
  if (!value || !path)
    return value;
  if (strcmp(modifier, "AS") == 0) {
    if (!path->overhead_packet)
      return value;
    /* Packets per second: audio and T.38 from a=ptime (20 ms if not
     * given); other media (video) from the rate itself in packets of
     * 1200 octets, at least 30 per second. */
    unsigned long pps;
    if (strcmp(media, "audio") == 0 || strcmp(media, "image") == 0) {
      pps = 1000 / (ptime_ms ? ptime_ms : 20);
      if (!pps)
        pps = 1;
    } else {
      pps = (value * 1000 + 9599) / 9600;
      if (pps < 30)
        pps = 30;
    }
    /* kbit/s, rounded up. */
    delta = (pps * path->overhead_packet * 8 + 999) / 1000;
  } else if (strcmp(modifier, "RS") == 0 || strcmp(modifier, "RR") == 0) {
    if (!path->overhead_rtcp)
      return value;
    /* bit/s: the same RTCP packet rate with packets |overhead_rtcp|
     * larger, for an average compound of 100 octets (RFC 3550 6.2). */
    delta = (value * path->overhead_rtcp + 99) / 100;
  } else {
    return value; /* TIAS excludes every transport overhead (RFC 3890) */
  }
  if (add)
    return value + delta;
  return value > delta + 1 ? value - delta : 1;
}

int dcmf_alg_fingerprint_attr(const char *fp, char *out, size_t outlen) {
  size_t n = strlen(fp);
  if (n + 1 > outlen)
    return DCMF_ERR_TOO_LARGE;
  size_t sp = strcspn(fp, " ");
  for (size_t i = 0; i < n; i++)
    out[i] = i < sp ? (char)tolower((unsigned char)fp[i]) : fp[i];
  out[n] = '\0';
  return 0;
}

const char *dcmf_alg_dcmap(const struct dcmf_sdp_section *s, long *stream_id) {
  const char *v = dcmf_sdp_attr(s, "dcmap", 0);
  if (!v)
    return NULL;
  char *end;
  long id = strtol(v, &end, 10);
  if (end == v || id < 0 || id > 65534 || (*end != ' ' && *end != '\0'))
    return NULL;
  *stream_id = id;
  return v;
}

const char *dcmf_alg_dcsa(const struct dcmf_sdp_section *s, long id,
                          const char *name) {
  size_t nlen = strlen(name);
  for (size_t k = 0;; k++) {
    const char *v = dcmf_sdp_attr(s, "dcsa", k);
    if (!v)
      return NULL;
    char *end;
    long sid = strtol(v, &end, 10);
    if (end == v || sid != id || *end != ' ')
      continue;
    const char *a = end + 1;
    if (strncmp(a, name, nlen) == 0 && (a[nlen] == ':' || a[nlen] == '\0'))
      return a[nlen] == ':' ? a + nlen + 1 : a + nlen;
  }
}

bool dcmf_alg_dcmap_opt(const char *dcmap, const char *opt, char *out,
                        size_t outlen) {
  size_t olen = strlen(opt);
  const char *p = strchr(dcmap, ' ');
  while (p && *p) {
    p += strspn(p, " ;");
    if (strncmp(p, opt, olen) == 0 && p[olen] == '=') {
      const char *v = p + olen + 1;
      size_t n;
      if (*v == '"') {
        v++;
        const char *q = strchr(v, '"');
        n = q ? (size_t)(q - v) : strlen(v);
      } else {
        n = strcspn(v, ";");
      }
      if (n >= outlen)
        return false;
      memcpy(out, v, n);
      out[n] = '\0';
      return true;
    }
    p = strchr(p, ';');
  }
  return false;
}

const struct dcmf_alg_path *dcmf_alg_media_path(const struct dcmf_sdp *sdp,
                                                size_t i,
                                                const struct dcmf_alg_opts *o,
                                                struct dcmf_sdp_mline *m) {
  if (dcmf_sdp_mline_get(&sdp->media[i], m))
    return NULL;
  char sub[64] = "";
  long id;
  const char *dcmap = dcmf_alg_dcmap(&sdp->media[i], &id);
  if (dcmap)
    dcmf_alg_dcmap_opt(dcmap, "subprotocol", sub, sizeof sub);
  /* A context already made says which access it serves. */
  bool wic = o->wic;
  json_t *ts = json_object_get(json_array_get(o->replies, i), "terminations");
  for (size_t k = 0; k < json_array_size(ts); k++) {
    json_t *t = json_array_get(ts, k);
    const char *tid = json_string_value(json_object_get(t, "terminationId"));
    const char *tr = json_string_value(json_object_get(t, "transport"));
    if (tid && tr && strcmp(tid, "access") == 0)
      wic = strcmp(tr, "UDP/DTLS/SCTP") == 0;
  }
  return dcmf_alg_path_find(o->side, m->media, m->proto, sub, wic);
}
