/*
 * agwiq.h - the Iq information elements of an e2ae AGW context (TS 23.334
 * 5.11.2.4 / 6.2.10.5, TS 29.334 DTLS and ICE IEs) as JSON members of a
 * /agw/v1/contexts termination: the data model, its validator and the
 * PATCH rules. Pure functions on jansson documents: no I/O, no clock, no
 * random source, no globals (the caller draws random bytes for the local
 * ICE credentials and the local certificate is the caller's).
 *
 * A termination is addressed by its "terminationId" ("access" or
 * "core"), wherever it sits in the "terminations" array; a JSON Patch
 * addresses its members as /terminations/<index>/<member>, the index
 * being the one the stored document (GET) shows.
 *
 * Members read here (beside the relay's own, see agwdoc.h):
 *
 *   access: "transport": "UDP/TLS/RTP/SAVP" | "UDP/TLS/RTP/SAVPF"
 *           "rtcpMux": true                     (optional; false refused)
 *           "dtls": {"remoteFingerprints": ["sha-256 AB:..", ...],
 *                    "localFingerprintHash": "sha-256",     (optional)
 *                    "setup": "active" | "passive" | "actpass",
 *                    "establish": false | true,             (optional)
 *                    "tlsId": "<RFC 8842 tls-id>"}          (optional)
 *           "ice": {"remoteUfrag": "...", "remotePwd": "..."} (optional)
 *           "notifyUri": "http(s)://..."                    (optional)
 *   core:   "transport": "RTP/AVP" | "RTP/AVPF"
 *           "rtcpMux": false | true              (optional; default false)
 *           "remoteRtcpPort": 1..65535  (optional; default RTP port + 1;
 *                                        refused with rtcpMux true)
 *
 * TCP path (docs/e2ae.md "MSRP and BFCP over TLS"; agwiq_tcp.c):
 *   access: "transport": "TCP/TLS/MSRP" | "TCP/TLS/BFCP"
 *           "tls": as "dtls" without tlsId (setup and establish give the
 *                  TLS and TCP roles: the TLS client is the TCP client)
 *           "tcp": {"setup": "active" | "passive",  (optional; must agree
 *                                                    with "tls")
 *                   "handling": ..., "timeoutMs": ...} (optional)
 *           "msrp": {"mode": "agnostic" | "aware",
 *                    "path": "<the UE's a=path>"}  (optional; MSRP only;
 *                    path only when aware, maybe later in a PATCH)
 *           "notifyUri"
 *   core:   "transport": "TCP/MSRP" | "TCP/BFCP" | "TCP"
 *           "tcp": {"setup": "active" | "passive" | "merge",
 *                   "handling": "stateless" | "stateAware" |
 *                               "stateAwareChangingSetup",
 *                   "timeoutMs": 100..600000}   (all optional)
 *           "msrp": {"mode": "agnostic" | "aware",
 *                    "path": "<the core's a=path>"}  (optional; TCP/MSRP
 *                    only; aware on one termination makes both aware)
 *
 * T.38 path (docs/e2ae.md "T.38 fax"; agwiq_t38.c; RFC 7345):
 *   access: "transport": "UDP/DTLS"   (SDP proto UDP/TLS/UDPTL)
 *           "dtls", "ice" (optional), "notifyUri" as the RTP path
 *   core:   "transport": "UDP"        (SDP proto UDPTL); no Iq member
 *
 * Every DTLS path's "dtls" may name "certificate": "rsa" | "ecdsa", the
 * identity the termination presents and fingerprints: "rsa" by default
 * on the T.38 path (RFC 7345 §4.1 mandates ECDHE_RSA and DHE_RSA
 * suites), "ecdsa" elsewhere. It cannot change on an existing context.
 *
 * T.140 path (docs/e2ae.md "T.140 over a data channel"; agwiq_t140.c;
 * RFC 8865 <-> RFC 4103):
 *   access: "transport": "UDP/DTLS/SCTP"
 *           "dtls", "ice" (optional), "notifyUri" as the RTP path
 *           "dataChannel": {"streamId": 0..65534, "label": "...",
 *                           "subprotocol": "t140", "ordered": true,
 *                           "maxMessageSize", "sctpPort",   (optional)
 *                           "dcsa": {"cps": 1..65535,        (optional)
 *                                    "hlangSend": "...", "hlangRecv": "...",
 *                                    "direction": "sendrecv" | "sendonly" |
 *                                                 "recvonly" | "inactive"}}
 *                          (maxRetr and maxTime are refused: RFC 8865
 *                           §4.1 says such an offer MUST be rejected)
 *   core:   "transport": "RTP/AVP"
 *           "rtcpMux", "remoteRtcpPort" as the RTP path
 *           "t140": {"payloadType": 0..127, "redPayloadType": 0..127,
 *                    "generations": 0..5, "cps": 1..65535} (optional;
 *                    absent: 98, red 100, 2 generations, no cps limit)
 *
 * A context whose two transports are "UDP" is the transparent relay and
 * carries none of these members. Unknown members are refused, as
 * agwdoc.c does and for the same reason.
 */
#ifndef DCMF_AGWIQ_H
#define DCMF_AGWIQ_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fingerprint.h"
#include "problem.h"

enum dcmf_agwiq_transport {
  DCMF_AGWIQ_UDP,   /* transparent relay, either side */
  DCMF_AGWIQ_SAVP,  /* UDP/TLS/RTP/SAVP, access */
  DCMF_AGWIQ_SAVPF, /* UDP/TLS/RTP/SAVPF, access */
  DCMF_AGWIQ_AVP,   /* RTP/AVP, core */
  DCMF_AGWIQ_AVPF,  /* RTP/AVPF, core */
  DCMF_AGWIQ_TCP_TLS_MSRP, /* access: MSRP over TLS over TCP */
  DCMF_AGWIQ_TCP_TLS_BFCP, /* access: BFCP over TLS over TCP */
  DCMF_AGWIQ_TCP_MSRP,     /* core: MSRP over TCP */
  DCMF_AGWIQ_TCP_BFCP,     /* core: BFCP over TCP */
  DCMF_AGWIQ_TCP,          /* core: application-agnostic TCP */
  DCMF_AGWIQ_DTLS_SCTP,    /* access: an MSRP data channel (RFC 8873) */
  DCMF_AGWIQ_UDP_DTLS,     /* access: T.38 UDPTL over DTLS (RFC 7345) */
};

/* The AGW's own TCP setup on a leg (docs/e2ae.md, media.h). */
enum dcmf_agwiq_tcp_setup {
  DCMF_AGWIQ_TCP_ACTIVE,
  DCMF_AGWIQ_TCP_PASSIVE,
  DCMF_AGWIQ_TCP_MERGE,
};

/* TS 23.334 5.16 TCP handling. */
enum dcmf_agwiq_tcp_handling {
  DCMF_AGWIQ_TCP_STATELESS,
  DCMF_AGWIQ_TCP_STATE_AWARE,
  DCMF_AGWIQ_TCP_STATE_AWARE_CHANGE,
};

/* The peer's a=setup (RFC 4145 / RFC 8842). */
enum dcmf_agwiq_setup {
  DCMF_AGWIQ_SETUP_ACTIVE,
  DCMF_AGWIQ_SETUP_PASSIVE,
  DCMF_AGWIQ_SETUP_ACTPASS,
};

/* The AGW's own DTLS role, derived from setup and establish. */
enum dcmf_agwiq_role {
  DCMF_AGWIQ_ROLE_SERVER,
  DCMF_AGWIQ_ROLE_CLIENT,
};

#define DCMF_AGWIQ_TLS_ID_MAX 255
#define DCMF_AGWIQ_ICE_MAX 256
#define DCMF_AGWIQ_URI_MAX 1024
#define DCMF_AGWIQ_LABEL_MAX 63
#define DCMF_AGWIQ_PATH_MAX 1000

struct dcmf_agwiq {
  int e2ae; /* 0: both transports "UDP"; nothing below is set */
  enum dcmf_agwiq_transport transport[2]; /* indexed access 0, core 1 */
  size_t index[2]; /* position of each termination in the array */

  /* Access (DTLS-SRTP) leg. */
  struct dcmf_fingerprint_set remote_fp; /* count 0: held until PATCH */
  enum dcmf_hash local_fp_hash; /* requested, else the peer's first, else
                                   SHA-256 */
  int local_fp_hash_given;      /* localFingerprintHash was a member */
  enum dcmf_agwiq_setup setup;
  int establish;             /* we are DTLS client and start at once */
  enum dcmf_agwiq_role role; /* derived */
  char tls_id[DCMF_AGWIQ_TLS_ID_MAX + 1]; /* "" when not given */
  char ice_ufrag[DCMF_AGWIQ_ICE_MAX + 1]; /* remote; "" until given */
  char ice_pwd[DCMF_AGWIQ_ICE_MAX + 1];
  char notify_uri[DCMF_AGWIQ_URI_MAX + 1]; /* "" when none */

  /* TCP path (transports TCP/TLS/MSRP, TCP/TLS/BFCP <-> TCP/MSRP,
   * TCP/BFCP, TCP): the "tls" member fills the certificate fields above
   * (no tlsId, no ice); "tcp" and "msrp" these. */
  int tcp;
  enum dcmf_agwiq_tcp_setup tcp_setup[2]; /* ours, access 0, core 1 */
  enum dcmf_agwiq_tcp_handling tcp_handling;
  uint32_t tcp_timeout_ms;

  /* MSRP over a data channel (UDP/DTLS/SCTP <-> TCP/MSRP; agwiq_dc.c):
   * "dtls" and "ice" as the RTP path, "dataChannel" and the core's "tcp"
   * and "msrp" these. */
  int dc;
  uint16_t dc_sid;                  /* a=dcmap stream id */
  char dc_label[DCMF_AGWIQ_LABEL_MAX + 1];
  uint32_t dc_max_message_size;     /* the WIC's a=max-message-size */
  uint16_t dc_sctp_port;            /* the WIC's a=sctp-port */
  char dc_path[DCMF_AGWIQ_PATH_MAX + 1]; /* dcsa path (msrps://...;dc) */
  int dc_msrp_active;               /* dcsa setup: the WIC is active */
  int dc_cema;                      /* dcsa msrp-cema */
  int msrp_aware;                   /* core msrp.mode "aware" */
  char core_path[DCMF_AGWIQ_PATH_MAX + 1]; /* core msrp.path (aware) */
  /* TCP path, aware: the UE's a=path (access msrp.path); "" until given.
   * msrp_aware and core_path above serve this path too. */
  char access_path[DCMF_AGWIQ_PATH_MAX + 1];

  /* T.38 (UDP/DTLS <-> UDP; agwiq_t38.c): "dtls" and "ice" as the RTP
   * path, no core members but the relay's. */
  int t38;
  /* The certificate the access termination presents (dtls.certificate):
   * 1 RSA (T.38's default), 0 ECDSA (the other paths' default). */
  int dtls_rsa;

  /* T.140 real-time text (UDP/DTLS/SCTP with a "t140" channel <->
   * RTP/AVP text; agwiq_t140.c, RFC 8865 and RFC 4103): "dtls" and
   * "ice" as the RTP path, "dataChannel" (dc_sid, dc_label and
   * dc_sctp_port above, and its dcsa values here) and the core's "t140"
   * and RTCP members. */
  int t140;
  uint32_t t140_cps;        /* dcsa cps: what the WIC takes (default 30) */
  int t140_direction;       /* dcsa direction: 0 sendrecv, 1 sendonly,
                               2 recvonly, 3 inactive (the WIC's view) */
  char t140_hlang_send[DCMF_AGWIQ_LABEL_MAX + 1]; /* "" when not given */
  char t140_hlang_recv[DCMF_AGWIQ_LABEL_MAX + 1];
  uint8_t t140_pt;          /* core t140.payloadType (default 98) */
  int t140_red;             /* red toward the core */
  uint8_t t140_red_pt;      /* core t140.redPayloadType (default 100) */
  uint8_t t140_generations; /* core t140.generations (default 2) */
  uint32_t t140_core_cps;   /* core t140.cps; 0: no limit */

  /* Core (plain RTP) leg. */
  int core_rtcp_mux;
  uint16_t core_rtcp_port; /* 0: RTP port + 1 (or mux) */
};

/* What a valid PATCH changed, for the media wiring to act on. */
struct dcmf_agwiq_change {
  int fingerprint_arrived; /* remote fingerprints given for the first time:
                              release a held handshake */
  int new_association;     /* tls-id renewed: a new DTLS association */
  int role_changed;        /* our DTLS role changed (a new association,
                              or the answer to an actpass offer) */
  int ice_restart;         /* remote ufrag and pwd both changed */
  int ice_arrived;         /* remote credentials given for the first time */
  int core_rtcp_changed;   /* rtcpMux or remoteRtcpPort changed */
  int notify_changed;
};

/*
 * Validates the Iq members of |doc| (a context document: POST body or a
 * stored document after a JSON Patch) and fills |out| (zeroed first).
 * Only the members listed above and "transport" are read; the relay's
 * members (terminationId, remote, local, latching) are agwdoc.c's and
 * are skipped here, as are terminations agwdoc.c already refuses.
 * On failure records each problem as an invalid parameter (a JSON Pointer
 * into |doc|) in |p|, sets |p| to 400 MANDATORY_IE_INCORRECT and returns
 * DCMF_ERR_INVALID; returns 0 with |p| untouched on success.
 */
int dcmf_agwiq_parse(json_t *doc, struct dcmf_agwiq *out,
                     struct dcmf_problem *p);

/*
 * Checks that |next| (parsed from the patched document) is an allowed
 * successor of |prev| (the stored context) and fills |ch|:
 *   allowed:  remote fingerprints supplied later; a new tlsId (new
 *             association, which may also bring new fingerprints, setup
 *             and establish); setup and establish once after an
 *             "actpass" setup while no tlsId and no fingerprint were
 *             given (the answer to an offer of ours, UE-terminated); an
 *             ICE restart (ufrag and pwd both new);
 *             core rtcpMux / remoteRtcpPort; notifyUri; the core address
 *             (agwdoc.c).
 *   refused:  a changed transport on either termination; removing given
 *             fingerprints, tlsId or ICE credentials; other fingerprints,
 *             setup or establish under the same tlsId (the DTLS role is
 *             sticky across re-offers); only one of ufrag and pwd new.
 * When the patched document names no localFingerprintHash, |next| keeps
 * |prev|'s (the local fingerprint was answered in it).
 * Errors as dcmf_agwiq_parse (400 MANDATORY_IE_INCORRECT naming the
 * member in |next|'s document, DCMF_ERR_INVALID).
 */
int dcmf_agwiq_patch_check(const struct dcmf_agwiq *prev,
                           struct dcmf_agwiq *next,
                           struct dcmf_agwiq_change *ch,
                           struct dcmf_problem *p);

/* Returns the SDP name of |t| ("UDP/TLS/RTP/SAVPF", "UDP"). */
const char *dcmf_agwiq_transport_name(enum dcmf_agwiq_transport t);

#endif
