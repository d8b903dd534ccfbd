/*
 * agwiq_dc.c - the Iq elements of the e2ae MSRP-over-data-channel path
 * (agwiq.h): an MSRP data channel (RFC 8873) on the access termination
 * ("UDP/DTLS/SCTP") <-> MSRP over TCP on the core one ("TCP/MSRP"; TS
 * 23.334 5.19.6; docs/e2ae.md "MSRP over a data channel"). Pure
 * functions on jansson documents, as agwiq.c.
 *
 * The access termination carries "dtls" and "ice" as the RTP path does
 * and "dataChannel": the a=dcmap values (streamId, label, subprotocol
 * "msrp" required, ordered true if given, maxRetr and maxTime refused:
 * RFC 8873 §4.3), the WIC's a=max-message-size and a=sctp-port, and the
 * a=dcsa values the MSRP session needs (RFC 8873 §4.4: path, setup,
 * msrpCema). The core termination carries "tcp" as the TCP path does
 * (setup active or passive, handling, timeoutMs) and "msrp": mode
 * "agnostic" (CEMA on both ends, RFC 6714: the WIC's dcsa must say
 * msrpCema true) or "aware" with the core's path (its SDP a=path),
 * which may come later in a PATCH (once).
 */
#include "agwiq.h"
#include "agwiq_int.h"

#include <string.h>
#include <strings.h>

#include "errors.h"
#include "msrp.h"

#define TIMEOUT_DEFAULT 10000
#define MMS_MIN 2048

/* An MSRP path (RFC 4975 §9: URIs separated by single spaces), each URI
 * as the relay engine will parse it (msrp.h), so a path taken here is
 * one the media can use. */
int dcmf_agwiq_msrp_path_check(const char *s) {
  size_t n = strlen(s);
  if (n == 0) {
    return DCMF_ERR_MALFORMED;
  }
  for (size_t start = 0; start <= n;) {
    const char *sp = strchr(s + start, ' ');
    size_t end = sp != NULL ? (size_t)(sp - s) : n;
    struct dcmf_msrp_uri u;
    if (end == start || dcmf_msrp_uri_parse(s + start, end - start, &u) != 0) {
      return DCMF_ERR_MALFORMED;
    }
    start = end + 1;
  }
  return 0;
}

/* The WIC's own URI: one msrps URI of transport dc (RFC 8873 §4.1, §4.2). */
static int dc_path_check(const char *s) {
  struct dcmf_msrp_uri u;
  return strchr(s, ' ') == NULL &&
                 dcmf_msrp_uri_parse(s, strlen(s), &u) == 0 && u.secure &&
                 u.transport.len == 2 &&
                 strncasecmp(u.transport.p, "dc", 2) == 0
             ? 0
             : DCMF_ERR_MALFORMED;
}

void dcmf_agwiq_parse_dcmap(struct check *c, json_t *d, const char *prefix,
                            const char *subprotocol, const char *clause,
                            struct dcmf_agwiq *out) {
  json_t *sid = json_object_get(d, "streamId");
  if (!json_is_integer(sid) || json_integer_value(sid) < 0 ||
      json_integer_value(sid) > 65534) {
    dcmf_agwiq_fail(c, "is required: the a=dcmap stream id, 0 to 65534",
                    "%s/streamId", prefix);
  } else {
    out->dc_sid = (uint16_t)json_integer_value(sid);
  }
  dcmf_agwiq_string_member(c, d, "label", prefix, NULL,
                           "must be a string of at most 63 bytes",
                           out->dc_label, sizeof(out->dc_label));
  char why[160];
  const char *sp = json_string_value(json_object_get(d, "subprotocol"));
  if (sp == NULL || strcmp(sp, subprotocol) != 0) {
    snprintf(why, sizeof(why), "is required and must be \"%s\" (%s)",
             subprotocol, clause);
    dcmf_agwiq_fail(c, why, "%s/subprotocol", prefix);
  }
  json_t *ord = json_object_get(d, "ordered");
  if (ord != NULL && !json_is_true(ord)) {
    snprintf(why, sizeof(why),
             "must be true if given: %s needs an ordered channel (%s)",
             subprotocol, clause);
    dcmf_agwiq_fail(c, why, "%s/ordered", prefix);
  }
  static const char *const partial[] = {"maxRetr", "maxTime", NULL};
  snprintf(why, sizeof(why),
           "must be left out: %s needs a reliable channel, and an offer "
           "with max-retr or max-time is refused (%s)",
           subprotocol, clause);
  dcmf_agwiq_refuse_listed(c, d, partial, prefix, why);
}

static void parse_dcsa(struct check *c, json_t *d, const char *prefix,
                       struct dcmf_agwiq *out) {
  static const char *const allowed[] = {"path", "setup", "msrpCema", NULL};
  if (!json_is_object(d)) {
    dcmf_agwiq_fail(c, "must be an object with path, setup and msrpCema",
                    "%s", prefix);
    return;
  }
  dcmf_agwiq_only_members(c, d, allowed, prefix);
  if (dcmf_agwiq_string_member(
          c, d, "path", prefix, dc_path_check,
          "must be the WIC's MSRP URI: msrps://host:port/id;dc (RFC 8873 "
          "§4.1, §4.2)",
          out->dc_path, sizeof(out->dc_path)) == 0) {
    dcmf_agwiq_fail(c, "is required (a=dcsa path, RFC 8873 §4.4)", "%s/path",
                    prefix);
  }
  const char *s = json_string_value(json_object_get(d, "setup"));
  if (s != NULL && (!strcmp(s, "active") || !strcmp(s, "actpass"))) {
    out->dc_msrp_active = 1;
  } else if (s == NULL || strcmp(s, "passive") != 0) {
    dcmf_agwiq_fail(c,
                    "is required: \"active\", \"passive\" or \"actpass\" "
                    "(a=dcsa setup, the MSRP active side, RFC 8873 §4.5)",
                    "%s/setup", prefix);
  }
  json_t *cema = json_object_get(d, "msrpCema");
  if (!json_is_boolean(cema)) {
    dcmf_agwiq_fail(c, "is required: true or false (a=dcsa msrp-cema)",
                    "%s/msrpCema", prefix);
  }
  out->dc_cema = json_is_true(cema);
}

static void parse_data_channel(struct check *c, json_t *d, const char *prefix,
                               struct dcmf_agwiq *out) {
  static const char *const allowed[] = {
      "streamId", "label",    "subprotocol", "ordered", "maxRetr",
      "maxTime",  "maxMessageSize", "sctpPort", "dcsa", NULL};
  if (!json_is_object(d)) {
    dcmf_agwiq_fail(c, "must be an object (streamId, label, subprotocol, "
                       "maxMessageSize, sctpPort, dcsa)",
                    "%s", prefix);
    return;
  }
  dcmf_agwiq_only_members(c, d, allowed, prefix);
  dcmf_agwiq_parse_dcmap(c, d, prefix, "msrp", "RFC 8873 §4.3", out);
  json_t *mms = json_object_get(d, "maxMessageSize");
  out->dc_max_message_size = 65536; /* RFC 8841 §6: absent means 64 KiB */
  if (mms != NULL) {
    json_int_t n = json_integer_value(mms);
    if (!json_is_integer(mms) || n < MMS_MIN || n > 0x7fffffff) {
      dcmf_agwiq_fail(c,
                      "must be the WIC's a=max-message-size, an integer of "
                      "at least 2048 (0, \"any size\", is not usable: a "
                      "chunk must fit one message)",
                      "%s/maxMessageSize", prefix);
    } else {
      out->dc_max_message_size = (uint32_t)n;
    }
  }
  json_t *port = json_object_get(d, "sctpPort");
  out->dc_sctp_port = 5000;
  if (port != NULL) {
    json_int_t n = json_integer_value(port);
    if (!json_is_integer(port) || n < 1 || n > 65535) {
      dcmf_agwiq_fail(c, "must be an integer from 1 to 65535",
                      "%s/sctpPort", prefix);
    } else {
      out->dc_sctp_port = (uint16_t)n;
    }
  }
  char sub[200];
  snprintf(sub, sizeof(sub), "%s/dcsa", prefix);
  json_t *dcsa = json_object_get(d, "dcsa");
  if (dcsa == NULL) {
    dcmf_agwiq_fail(c, "is required (path, setup, msrpCema: RFC 8873 §4.4)",
                    "%s", sub);
  } else {
    parse_dcsa(c, dcsa, sub, out);
  }
}

static void parse_core_msrp(struct check *c, json_t *t, const char *prefix,
                            struct dcmf_agwiq *out) {
  static const char *const allowed[] = {"mode", "path", NULL};
  json_t *m = json_object_get(t, "msrp");
  if (m == NULL) {
    dcmf_agwiq_fail(c, "is required: mode \"agnostic\" or \"aware\"",
                    "%s/msrp", prefix);
    return;
  }
  if (!json_is_object(m)) {
    dcmf_agwiq_fail(c, "must be an object with mode (and path when aware)",
                    "%s/msrp", prefix);
    return;
  }
  char sub[80];
  snprintf(sub, sizeof(sub), "%s/msrp", prefix);
  dcmf_agwiq_only_members(c, m, allowed, sub);
  const char *mode = json_string_value(json_object_get(m, "mode"));
  if (mode != NULL && strcmp(mode, "aware") == 0) {
    out->msrp_aware = 1;
    /* Without it (the core has not answered yet) the relay waits for a
     * PATCH that gives it; nothing is relayed until then. */
    dcmf_agwiq_string_member(
        c, m, "path", sub, dcmf_agwiq_msrp_path_check,
        "must be the core's a=path: MSRP URIs separated by spaces",
        out->core_path, sizeof(out->core_path));
  } else if (mode == NULL || strcmp(mode, "agnostic") != 0) {
    dcmf_agwiq_fail(c, "must be \"agnostic\" or \"aware\"", "%s/msrp/mode",
                    prefix);
  } else if (json_object_get(m, "path") != NULL) {
    dcmf_agwiq_fail(c, "must be left out in agnostic mode (CEMA: the path "
                       "is not used for routing)",
                    "%s/msrp/path", prefix);
  }
}

void dcmf_agwiq_dc_parse(struct check *c, json_t *terms[2], char prefix[2][48],
                         struct dcmf_agwiq *out) {
  if (out->transport[1] != DCMF_AGWIQ_TCP_MSRP) {
    dcmf_agwiq_fail(c, "must be TCP/MSRP with a UDP/DTLS/SCTP access "
                       "termination",
                    "%s/transport", prefix[1]);
    return;
  }
  static const char *const access_refused[] = {"tls", "tcp", "msrp",
                                               "rtcpMux", NULL};
  dcmf_agwiq_refuse_listed(c, terms[0], access_refused, prefix[0],
                           "is not a member of a UDP/DTLS/SCTP termination");
  static const char *const core_refused[] = {
      "dtls", "ice", "tls", "notifyUri", "rtcpMux", "remoteRtcpPort",
      "dataChannel", NULL};
  dcmf_agwiq_refuse_listed(c, terms[1], core_refused, prefix[1],
                           "is not a member of a TCP/MSRP core termination "
                           "of an MSRP data channel");
  char sub[160];
  dcmf_agwiq_parse_dtls_access(c, terms[0], prefix[0],
                               "is required on a UDP/DTLS/SCTP termination "
                               "(at least setup)",
                               out);
  json_t *dc = json_object_get(terms[0], "dataChannel");
  snprintf(sub, sizeof(sub), "%s/dataChannel", prefix[0]);
  if (dc == NULL) {
    dcmf_agwiq_fail(c, "is required (the a=dcmap and a=dcsa values)", "%s",
                    sub);
  } else {
    parse_data_channel(c, dc, sub, out);
  }
  parse_core_msrp(c, terms[1], prefix[1], out);
  if (!out->msrp_aware && dc != NULL && !out->dc_cema &&
      json_is_boolean(json_object_get(json_object_get(dc, "dcsa"),
                                      "msrpCema"))) {
    dcmf_agwiq_fail(c,
                    "must be true in agnostic mode: transport-level "
                    "interworking needs CEMA on both ends (RFC 8873 §6); "
                    "use msrp mode \"aware\" otherwise",
                    "%s/dataChannel/dcsa/msrpCema", prefix[0]);
  }
  struct tcp_member tm;
  dcmf_agwiq_parse_tcp(c, terms[1], prefix[1], 0, &tm);
  /* TCP merge (TS 23.334 6.2.18.4, announced to the core as
   * a=setup:passive): the AGW listens and also connects from its core
   * port. A stateless leg only ever connects once the channel is up. */
  if (tm.setup == DCMF_AGWIQ_TCP_MERGE &&
      tm.handling == DCMF_AGWIQ_TCP_STATELESS) {
    dcmf_agwiq_fail(c, "cannot be \"merge\" with handling \"stateless\" "
                       "(a stateless leg connects once the channel is up)",
                    "%s/tcp/setup", prefix[1]);
  }
  out->tcp_setup[1] = tm.setup >= 0 ? (enum dcmf_agwiq_tcp_setup)tm.setup
                                    : DCMF_AGWIQ_TCP_ACTIVE;
  out->tcp_handling = tm.handling >= 0
                          ? (enum dcmf_agwiq_tcp_handling)tm.handling
                          : DCMF_AGWIQ_TCP_STATE_AWARE;
  out->tcp_timeout_ms = tm.timeout >= 0 ? (uint32_t)tm.timeout
                                        : TIMEOUT_DEFAULT;
  if (out->tcp_setup[1] == DCMF_AGWIQ_TCP_ACTIVE &&
      json_object_get(terms[1], "remote") == NULL) {
    dcmf_agwiq_fail(c, "is required: the AGW connects to the core (its TCP "
                       "setup is active)",
                    "%s/remote", prefix[1]);
  }
}

void dcmf_agwiq_dc_patch_check(struct check *c, const struct dcmf_agwiq *prev,
                               struct dcmf_agwiq *next,
                               struct dcmf_agwiq_change *ch) {
  (void)ch;
  char acc[48], core[48];
  snprintf(acc, sizeof(acc), "/terminations/%zu", next->index[0]);
  snprintf(core, sizeof(core), "/terminations/%zu", next->index[1]);
  /* RFC 8873 §4.4: a re-offer may change dcsa values keeping the dcmap.
   * An aware relay takes new paths (the WIC's dcsa path, the core's
   * path) from its next chunk on; the MSRP setup and CEMA stay. */
  if (prev->dc_sid != next->dc_sid ||
      strcmp(prev->dc_label, next->dc_label) != 0) {
    dcmf_agwiq_fail(c, "cannot change (the a=dcmap of a running MSRP "
                       "session); remove the context and create a new one",
                    "%s/dataChannel", acc);
  }
  if (prev->dc_sctp_port != next->dc_sctp_port) {
    dcmf_agwiq_fail(c, "cannot change on an existing association",
                    "%s/dataChannel/sctpPort", acc);
  }
  if (prev->msrp_aware != next->msrp_aware) {
    dcmf_agwiq_fail(c, "cannot change on a running MSRP session",
                    "%s/msrp/mode", core);
  } else if (prev->core_path[0] != '\0' && next->core_path[0] == '\0') {
    /* An aware relay rewrites with it: it may change, not go. */
    dcmf_agwiq_fail(c, "cannot be removed once given", "%s/msrp/path", core);
  }
  if (prev->tcp_setup[1] != next->tcp_setup[1] ||
      prev->tcp_handling != next->tcp_handling ||
      prev->tcp_timeout_ms != next->tcp_timeout_ms) {
    dcmf_agwiq_fail(c, "cannot change on an existing context", "%s/tcp",
                    core);
  }
}
