/*
 * agwiq_t140.c - the Iq elements of the e2ae real-time text path
 * (agwiq.h): a T.140 data channel (RFC 8865) on the access termination
 * ("UDP/DTLS/SCTP") <-> T.140 over RTP (RFC 4103, RFC 2198 redundancy)
 * on the core one ("RTP/AVP"); docs/e2ae.md "T.140 over a data channel
 * <-> RTP". Pure functions on jansson documents, as agwiq.c.
 *
 * The access termination carries "dtls" and "ice" as the RTP path does
 * and "dataChannel": the a=dcmap values (streamId, label, subprotocol
 * "t140" required, ordered true if given; maxRetr and maxTime refused,
 * RFC 8865 §4.1: "an offer with them MUST be rejected") and the a=dcsa
 * values of RFC 8865 §4.2 (cps, hlangSend, hlangRecv, direction). The
 * core termination carries the RTP path's RTCP members and "t140": the
 * payload types the core's m=text line uses, red's generations, and the
 * cps of the core's fmtp.
 */
#include "agwiq.h"
#include "agwiq_int.h"

#include <string.h>

#define CPS_DEFAULT 30 /* RFC 8865 §4.2.1 */
#define CPS_MAX 65535

int dcmf_agwiq_t140_wanted(json_t *access, int core_transport) {
  const char *sp = json_string_value(
      json_object_get(json_object_get(access, "dataChannel"), "subprotocol"));
  /* The subprotocol decides ("msrp" is agwiq_dc.c's whatever the core
   * is); without a known one, an RTP core makes it T.140. A t140
   * channel toward TCP/MSRP is refused by agwiq_dc.c, naming it. */
  if (sp != NULL && strcmp(sp, "msrp") == 0) {
    return 0;
  }
  if (sp != NULL && strcmp(sp, "t140") == 0) {
    return core_transport != DCMF_AGWIQ_TCP_MSRP;
  }
  return core_transport == DCMF_AGWIQ_AVP || core_transport == DCMF_AGWIQ_AVPF;
}

/* An RFC 5646 language tag as a=hlang-send/recv carry it (RFC 8373):
 * letters, digits and '-', with an optional '*' (RFC 8373 §5.2: the
 * call is not refused when that language is not supported). */
static int hlang_check(const char *s) {
  size_t n = strlen(s);
  if (n == 0) {
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             (ch >= '0' && ch <= '9') || ch == '-' || (ch == '*' && i == n - 1);
    if (!ok) {
      return -1;
    }
  }
  return 0;
}

static long int_member(struct check *c, json_t *obj, const char *name,
                       const char *prefix, long lo, long hi, long dflt,
                       const char *reason) {
  json_t *v = json_object_get(obj, name);
  if (v == NULL) {
    return dflt;
  }
  json_int_t n = json_integer_value(v);
  if (!json_is_integer(v) || n < lo || n > hi) {
    dcmf_agwiq_fail(c, reason, "%s/%s", prefix, name);
    return dflt;
  }
  return (long)n;
}

static void parse_dcsa(struct check *c, json_t *d, const char *prefix,
                       struct dcmf_agwiq *out) {
  static const char *const allowed[] = {"cps", "hlangSend", "hlangRecv",
                                        "direction", NULL};
  if (!json_is_object(d)) {
    dcmf_agwiq_fail(c,
                    "must be an object (cps, hlangSend, hlangRecv, "
                    "direction)",
                    "%s", prefix);
    return;
  }
  dcmf_agwiq_only_members(c, d, allowed, prefix);
  out->t140_cps = (uint32_t)int_member(
      c, d, "cps", prefix, 1, CPS_MAX, CPS_DEFAULT,
      "must be an integer from 1 to 65535 (a=dcsa fmtp:t140 cps, RFC 8865 "
      "§4.2.1)");
  dcmf_agwiq_string_member(c, d, "hlangSend", prefix, hlang_check,
                           "must be a language tag (a=dcsa hlang-send, RFC "
                           "8373) of at most 63 characters",
                           out->t140_hlang_send, sizeof(out->t140_hlang_send));
  dcmf_agwiq_string_member(c, d, "hlangRecv", prefix, hlang_check,
                           "must be a language tag (a=dcsa hlang-recv, RFC "
                           "8373) of at most 63 characters",
                           out->t140_hlang_recv, sizeof(out->t140_hlang_recv));
  static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly",
                                     "inactive"};
  json_t *dir = json_object_get(d, "direction");
  if (dir != NULL) {
    const char *s = json_string_value(dir);
    int found = -1;
    for (int i = 0; s != NULL && i < 4; i++) {
      if (strcmp(s, dirs[i]) == 0) {
        found = i;
      }
    }
    if (found < 0) {
      dcmf_agwiq_fail(c,
                      "must be \"sendrecv\", \"sendonly\", \"recvonly\" "
                      "or \"inactive\" (the WIC's a=dcsa direction, RFC "
                      "8865 §4.2.3)",
                      "%s/direction", prefix);
    } else {
      out->t140_direction = found;
    }
  }
}

static void parse_data_channel(struct check *c, json_t *d, const char *prefix,
                               struct dcmf_agwiq *out) {
  static const char *const allowed[] = {
      "streamId", "label",          "subprotocol", "ordered", "maxRetr",
      "maxTime",  "maxMessageSize", "sctpPort",    "dcsa",    NULL};
  if (!json_is_object(d)) {
    dcmf_agwiq_fail(c,
                    "must be an object (streamId, label, subprotocol, "
                    "sctpPort, dcsa)",
                    "%s", prefix);
    return;
  }
  dcmf_agwiq_only_members(c, d, allowed, prefix);
  /* RFC 8865 §4.1: an offer with max-retr or max-time MUST be rejected. */
  dcmf_agwiq_parse_dcmap(c, d, prefix, "t140", "RFC 8865 §4.1", out);
  /* T.140 messages are small (one or more T140blocks); the WIC's limit
   * is taken for what it is and not needed. */
  int_member(c, d, "maxMessageSize", prefix, 0, 0x7fffffff, 0,
             "must be the WIC's a=max-message-size, a non-negative integer");
  out->dc_sctp_port =
      (uint16_t)int_member(c, d, "sctpPort", prefix, 1, 65535, 5000,
                           "must be an integer from 1 to 65535");
  out->t140_cps = CPS_DEFAULT;
  json_t *dcsa = json_object_get(d, "dcsa");
  if (dcsa != NULL) {
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/dcsa", prefix);
    parse_dcsa(c, dcsa, sub, out);
  }
}

static void parse_core_t140(struct check *c, json_t *t, const char *prefix,
                            struct dcmf_agwiq *out) {
  /* Absent: what dcmf-alg offers the core (RFC 4103 §4: red with
   * primary + 2 generations by default). */
  out->t140_pt = 98;
  out->t140_red = 1;
  out->t140_red_pt = 100;
  out->t140_generations = 2;
  json_t *m = json_object_get(t, "t140");
  if (m == NULL) {
    return;
  }
  char sub[80];
  snprintf(sub, sizeof(sub), "%s/t140", prefix);
  if (!json_is_object(m)) {
    dcmf_agwiq_fail(c,
                    "must be an object (payloadType, redPayloadType, "
                    "generations, cps)",
                    "%s", sub);
    return;
  }
  static const char *const allowed[] = {"payloadType", "redPayloadType",
                                        "generations", "cps", NULL};
  dcmf_agwiq_only_members(c, m, allowed, sub);
  if (json_object_get(m, "payloadType") == NULL) {
    dcmf_agwiq_fail(c, "is required: the core's text/t140 payload type",
                    "%s/payloadType", sub);
  }
  out->t140_pt = (uint8_t)int_member(
      c, m, "payloadType", sub, 0, 127, 98,
      "must be an RTP payload type, 0 to 127 (a=rtpmap:N t140/1000)");
  out->t140_red = json_object_get(m, "redPayloadType") != NULL;
  out->t140_red_pt = (uint8_t)int_member(
      c, m, "redPayloadType", sub, 0, 127, 100,
      "must be an RTP payload type, 0 to 127 (a=rtpmap:N red/1000), other "
      "than payloadType");
  if (out->t140_red && out->t140_red_pt == out->t140_pt &&
      json_is_integer(json_object_get(m, "redPayloadType"))) {
    dcmf_agwiq_fail(c,
                    "must differ from payloadType (RFC 2198: red has its "
                    "own payload type)",
                    "%s/redPayloadType", sub);
  }
  out->t140_generations = (uint8_t)int_member(
      c, m, "generations", sub, 0, 5, 2,
      "must be an integer from 0 to 5 (redundant generations; RFC 4103 §4: "
      "2 by default)");
  if (!out->t140_red && json_object_get(m, "generations") != NULL) {
    dcmf_agwiq_fail(c, "needs redPayloadType (generations are red's)",
                    "%s/generations", sub);
  }
  out->t140_core_cps = (uint32_t)int_member(
      c, m, "cps", sub, 1, CPS_MAX, 0,
      "must be an integer from 1 to 65535 (the core's a=fmtp cps)");
}

void dcmf_agwiq_t140_parse(struct check *c, json_t *terms[2],
                           char prefix[2][48], struct dcmf_agwiq *out) {
  out->t140 = 1;
  if (out->transport[1] != DCMF_AGWIQ_AVP) {
    dcmf_agwiq_fail(c,
                    "must be RTP/AVP with a T.140 data channel access "
                    "termination (RFC 8865 §6)",
                    "%s/transport", prefix[1]);
    return;
  }
  static const char *const access_refused[] = {
      "tls", "tcp", "msrp", "t140", "rtcpMux", "remoteRtcpPort", NULL};
  dcmf_agwiq_refuse_listed(c, terms[0], access_refused, prefix[0],
                           "is not a member of a UDP/DTLS/SCTP termination");
  static const char *const core_refused[] = {"tls", "tcp", "msrp",
                                             "dataChannel", NULL};
  dcmf_agwiq_refuse_listed(c, terms[1], core_refused, prefix[1],
                           "is not a member of the RTP/AVP core termination "
                           "of a T.140 data channel");
  dcmf_agwiq_parse_dtls_access(c, terms[0], prefix[0],
                               "is required on a UDP/DTLS/SCTP termination "
                               "(at least setup)",
                               out);
  json_t *dc = json_object_get(terms[0], "dataChannel");
  char sub[160];
  snprintf(sub, sizeof(sub), "%s/dataChannel", prefix[0]);
  if (dc == NULL) {
    dcmf_agwiq_fail(c, "is required (the a=dcmap and a=dcsa values)", "%s",
                    sub);
  } else {
    parse_data_channel(c, dc, sub, out);
  }
  parse_core_t140(c, terms[1], prefix[1], out);
}

void dcmf_agwiq_t140_patch_check(struct check *c, const struct dcmf_agwiq *prev,
                                 struct dcmf_agwiq *next) {
  char acc[48];
  snprintf(acc, sizeof(acc), "/terminations/%zu", next->index[0]);
  /* A re-offer may change the dcsa values (cps, hlang, direction:
   * RFC 8865 §4.2) and what the core's answer settles (its payload
   * types, red, its cps); the channel itself stays. */
  if (prev->dc_sid != next->dc_sid ||
      strcmp(prev->dc_label, next->dc_label) != 0) {
    dcmf_agwiq_fail(c,
                    "cannot change (the a=dcmap of a running T.140 "
                    "channel); remove the context and create a new one",
                    "%s/dataChannel", acc);
  }
  if (prev->dc_sctp_port != next->dc_sctp_port) {
    dcmf_agwiq_fail(c, "cannot change on an existing association",
                    "%s/dataChannel/sctpPort", acc);
  }
}
