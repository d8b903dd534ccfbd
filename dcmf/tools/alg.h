/*
 * alg.h - an IMS-ALG helper for the e2ae paths of dcmfd's /agw/v1 API
 * (TS 23.334 6.2.10; docs/e2ae.md "dcmf-alg"). Layer tools; no I/O: SDP
 * text in (dcmf/proto/sdp.h), JSON out (jansson), or SDP and the AGW's
 * replies in, SDP out. The command is dcmf_alg.c.
 *
 * One AGW context per media line (docs/e2ae.md, "Call flows"). An SDP
 * coming from |side| (access = the served UE or WIC, core = the IMS
 * core) is either an offer or an answer:
 *   - dcmf_alg_request builds, per m= line, the request to make: a POST
 *     of a context for an offer, a JSON Patch of the context for an
 *     answer, or for a re-offer (an offer for a line whose context the
 *     replies in |opts| hold: a new tls-id, an ICE restart)
 *     (terminations[0] is access, [1] core, as the POST has them; a
 *     reply given in |opts| overrides the order and names the context);
 *   - dcmf_alg_rewrite rewrites the SDP for the other side from the
 *     replies (the contexts as the POST or a GET returned them).
 *
 * The paths are a table (alg_paths.c, struct dcmf_alg_path): adding one
 * is a table entry, plus its request members if it has new ones.
 * Errors: 0 or a negative DCMF_ERR_*, with a sentence in |err|.
 */
#ifndef DCMF_ALG_H
#define DCMF_ALG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "sdp.h"

enum dcmf_alg_side { DCMF_ALG_ACCESS = 0, DCMF_ALG_CORE = 1 };
enum dcmf_alg_kind { DCMF_ALG_OFFER = 0, DCMF_ALG_ANSWER = 1 };
enum dcmf_alg_security { DCMF_ALG_DTLS, DCMF_ALG_TLS };

/* One e2ae path: how a media line looks on each side and which
 * /agw/v1 transports serve it. */
struct dcmf_alg_path {
  const char *name;
  const char *access_media; /* NULL: any media, kept as it is */
  const char *access_proto;
  const char *access_fmt;   /* the m= fmt toward access, NULL: kept */
  const char *core_media;   /* NULL: any, kept */
  const char *core_proto;
  const char *api_access;   /* /agw/v1 terminations[].transport */
  const char *api_core;
  const char *subprotocol;  /* data channel paths: the dcmap subprotocol */
  enum dcmf_alg_security security;
  bool rtp;       /* RTP/RTCP: rtcp-mux handling and b= adjustment */
  bool e2ae_attr; /* a=3ge2ae:applied toward the UE (TS 24.229 7.5.2) */
  /* Security overhead added per packet (octets) and per RTCP packet;
   * 0 leaves b= lines alone (docs/e2ae.md, "Bandwidth"). */
  unsigned overhead_packet;
  unsigned overhead_rtcp;
  bool served; /* dcmfd's /agw/v1 serves it today */
};

/* The path of an m= line seen on |side|. |wic| (core side only) says the
 * access is a WebRTC client, which turns message/text lines into data
 * channel paths; on the access side a UDP/DTLS/SCTP line is matched by
 * its first dcmap's subprotocol. NULL: not an e2ae line. */
const struct dcmf_alg_path *dcmf_alg_path_find(enum dcmf_alg_side side,
                                               const char *media,
                                               const char *proto,
                                               const char *subprotocol,
                                               bool wic);

struct dcmf_alg_opts {
  enum dcmf_alg_side side; /* where the SDP comes from */
  enum dcmf_alg_kind kind;
  bool wic;                /* core side: the access is a WIC */
  const char *notify_uri;  /* access notifyUri, optional */
  /* Answers: the offer this answers, as the other side sent it to us
   * (a=mid values, dcmap/dcsa and 3ge2ae of the WIC/UE); optional. */
  const struct dcmf_sdp *offer;
  /* The contexts of the call (a JSON array by m= line, null where no
   * context), as the AGW returned them; optional for dcmf_alg_request,
   * required for dcmf_alg_rewrite. */
  const json_t *replies;
};

/* Builds {"requests": [...]}, one entry per m= line: {"mline", "path",
 * "method", "uri", "body"} or {"mline", "skip": reason}. */
int dcmf_alg_request(const struct dcmf_sdp *sdp,
                     const struct dcmf_alg_opts *opts, json_t **out,
                     char *err, size_t errlen);

/* Rewrites |sdp| in place for the other side. */
int dcmf_alg_rewrite(struct dcmf_sdp *sdp, const struct dcmf_alg_opts *opts,
                     char *err, size_t errlen);

/* Bandwidth (docs/e2ae.md, "Bandwidth"): |value| of a b=<modifier> line
 * of a media line of |path| whose packets are |ptime_ms| apart (0 =
 * unknown), adjusted by the security overhead: added when |add| (the SDP
 * comes from the remote peer, toward the served UE), subtracted
 * otherwise (never below 1 unless it was 0). b=TIAS and unknown
 * modifiers are returned unchanged. */
unsigned long dcmf_alg_bw_adjust(const struct dcmf_alg_path *path,
                                 const char *modifier, unsigned long value,
                                 const char *media, unsigned ptime_ms,
                                 bool add);

/* The "<hash> <hex>" of an RFC 8122 fingerprint with the hash in lower
 * case, as a=fingerprint writes it, into |out|. */
int dcmf_alg_fingerprint_attr(const char *fp, char *out, size_t outlen);

/* Internal helpers shared by alg_request.c and alg_rewrite.c. */
const struct dcmf_alg_path *dcmf_alg_media_path(const struct dcmf_sdp *sdp,
                                                size_t i,
                                                const struct dcmf_alg_opts *o,
                                                struct dcmf_sdp_mline *m);
/* The first dcmap of a section: its stream id and its value. */
const char *dcmf_alg_dcmap(const struct dcmf_sdp_section *s, long *stream_id);
/* The value of a dcsa of stream |id| whose attribute is |name|. */
const char *dcmf_alg_dcsa(const struct dcmf_sdp_section *s, long id,
                          const char *name);
/* A dcmap option ("label", "subprotocol", ...) copied unquoted. */
bool dcmf_alg_dcmap_opt(const char *dcmap, const char *opt, char *out,
                        size_t outlen);

#endif
