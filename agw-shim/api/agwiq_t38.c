/*
 * agwiq_t38.c - the Iq elements of the e2ae T.38 path (agwiq.h): UDPTL
 * over DTLS (RFC 7345) on the access termination <-> UDPTL over UDP on
 * the core one (TS 23.334 6.2.10.4; docs/e2ae.md "T.38 fax"). Pure
 * functions on jansson documents, as agwiq.c.
 *
 * Naming. The Iq transport values are those TS 23.334 gives the
 * IMS-ALG's reservation: the access termination "UDP/DTLS" (SDP proto
 * UDP/TLS/UDPTL toward the UE) and the core termination "UDP" (SDP proto
 * UDPTL toward the core). The SDP names are refused with a hint, so a
 * caller who copied the m-line learns the mapping.
 *
 * The access termination carries "dtls" (as the RTP path: fingerprints,
 * localFingerprintHash, setup, establish, tlsId; "certificate" defaults
 * to "rsa" here, RFC 7345 §4.1's suites being RSA ones), "ice"
 * (optional: an IMS UE does no ICE) and "notifyUri". The core
 * termination carries only the relay's members (remote, latching): UDPTL
 * has no RTCP, so rtcpMux and remoteRtcpPort are refused.
 */
#include "agwiq.h"
#include "agwiq_int.h"

#include <string.h>

int dcmf_agwiq_t38_transport(const char *s, int access) {
  return access && strcmp(s, "UDP/DTLS") == 0 ? DCMF_AGWIQ_UDP_DTLS : -1;
}

const char *dcmf_agwiq_t38_hint(const char *s) {
  if (strcmp(s, "UDP/TLS/UDPTL") == 0) {
    return "is the SDP proto: the Iq transport of a T.38 over DTLS access "
           "termination is \"UDP/DTLS\" (TS 23.334 6.2.10.4)";
  }
  if (strcmp(s, "UDPTL") == 0 || strcmp(s, "udptl") == 0) {
    return "is the SDP proto: the Iq transport of a T.38 core termination "
           "is \"UDP\" (TS 23.334 6.2.10.4)";
  }
  return NULL;
}

void dcmf_agwiq_t38_parse(struct check *c, json_t *terms[2],
                          char prefix[2][48], struct dcmf_agwiq *out) {
  out->t38 = 1;
  if (out->transport[1] != DCMF_AGWIQ_UDP) {
    dcmf_agwiq_fail(c,
                    "must be \"UDP\" (UDPTL toward the core) with a UDP/DTLS "
                    "access termination",
                    "%s/transport", prefix[1]);
    return;
  }
  static const char *const access_refused[] = {
      "tls", "tcp", "msrp", "dataChannel", "rtcpMux", "remoteRtcpPort", NULL};
  dcmf_agwiq_refuse_listed(c, terms[0], access_refused, prefix[0],
                           "is not a member of a UDP/DTLS (T.38) termination");
  static const char *const core_refused[] = {
      "dtls",    "ice", "tls", "tcp", "msrp", "dataChannel", "notifyUri",
      "rtcpMux", NULL};
  dcmf_agwiq_refuse_listed(c, terms[1], core_refused, prefix[1],
                           "is not a member of a UDP (T.38) core termination");
  if (json_object_get(terms[1], "remoteRtcpPort") != NULL) {
    dcmf_agwiq_fail(c, "must be left out: UDPTL has no RTCP",
                    "%s/remoteRtcpPort", prefix[1]);
  }
  dcmf_agwiq_parse_dtls_access(c, terms[0], prefix[0],
                               "is required on a UDP/DTLS termination (at "
                               "least setup; RFC 7345 §4.1: a=setup is "
                               "mandatory)",
                               out);
  out->core_rtcp_mux = 1; /* one core socket: UDPTL */
}
