/*
 * assoc_srtp.h - the DTLS-SRTP association kind (RFC 5764): DTLS keys
 * SRTP and SRTCP that travel beside it on the same port (first byte
 * 128-191, RFC 7983), behind struct dcmf_assoc_ops (assoc.h). A flow is
 * one SSRC of the peer; its id is the SSRC.
 *
 * Negotiation: the kind's DTLS offers and accepts dcmf_srtp_profile_list()
 * (srtp.h, our order of preference), through |srtp_profiles| of its ops.
 *
 * |connected| exports the keying material (label EXTRACTOR-dtls_srtp, the
 * selected profile's length) and builds the SRTP engine (srtp.h) in our
 * DTLS role; the association is then UP. No profile selected, or one we
 * do not know, fails the start (DCMF_ERR_SYSTEM). A second |connected|
 * (a new DTLS association keying the same flows, dcmf_dcstack_renew)
 * re-keys the engine with dcmf_srtp_rekey: every SSRC keeps its ROC and
 * SRTCP index, the flows stay open. Until then the kind protects and
 * unprotects with the keys it has (|rekeys| of its ops); from then on
 * only with the new ones.
 *
 * Inbound (|raw_in|): a datagram whose second byte is 192-223 is SRTCP,
 * any other SRTP (RFC 5761 §4). It is unprotected; a refused one
 * (authentication, replay, malformed) is counted by the engine and goes
 * no further. The first authenticated packet of an SSRC the kind has no
 * flow for opens one (|flow_open|, id = the SSRC of RTP, the sender SSRC
 * of RTCP) before it is delivered; a flow the owner refuses stays
 * refused, and its packets are dropped and counted, until the
 * association ends. The plain packet reaches the owner as |flow_message|
 * (binary). At most DCMF_ASSOC_SRTP_MAX_FLOWS flows (open or refused):
 * packets of further SSRCs are dropped and counted.
 *
 * Outbound (|send|): |data| is one plain RTP packet or RTCP compound
 * whose SSRC (RTP) or sender SSRC (RTCP) is |id|; it is protected and
 * leaves through |raw_out|. Our SSRCs are ours to send: no open flow is
 * needed (flows are the peer's SSRCs), but each costs the engine an
 * outbound state for the association's life, so at most
 * DCMF_ASSOC_SRTP_MAX_OUT_SSRCS of them are sent. |send| returns 0;
 * DCMF_ERR_INVALID before the association is up or when |id| is not the
 * packet's SSRC; DCMF_ERR_TOO_LARGE for a packet over
 * DCMF_ASSOC_SRTP_MAX_PACKET, or of a new SSRC past that cap (counted);
 * DCMF_ERR_MALFORMED for one that is not RTP/RTCP version 2 (too short);
 * DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM from the engine. A sequence number this
 * SSRC already sent (DCMF_ERR_REPLAY from the engine) is dropped and counted,
 * and |send| returns 0: a duplicate forwarded from the other leg is no error of
 * the caller's.
 *
 * |stats| (assoc.h struct dcmf_assoc_stats): keyed once |connected|
 * built the engine, the profile's name, and the engine's inbound
 * refusals (authentication, replay, malformed; datagrams over
 * DCMF_ASSOC_SRTP_MAX_PACKET count as malformed).
 *
 * |close_flow| reports the flow closed and forgets it (a later packet of
 * the SSRC opens it again); |destroy| reports every open flow closed
 * and frees everything. No tick, no held output, no DTLS data (a DTLS
 * application record is ignored).
 */
#ifndef DCMF_ASSOC_SRTP_H
#define DCMF_ASSOC_SRTP_H

#include <stdint.h>

#include "assoc.h"
#include "srtp.h"

extern const struct dcmf_assoc_ops dcmf_assoc_srtp;

/* SSRCs with a flow (open or refused) per association. */
#define DCMF_ASSOC_SRTP_MAX_FLOWS 64
/* Our SSRCs sent per association (each holds an outbound state). */
#define DCMF_ASSOC_SRTP_MAX_OUT_SSRCS 128
/* The largest plain or protected packet handled (above any UDP MTU). */
#define DCMF_ASSOC_SRTP_MAX_PACKET 8192

/* What the kind dropped beyond the engine's refusals. */
struct dcmf_assoc_srtp_counts {
  uint64_t not_keyed;      /* raw datagrams before the engine exists */
  uint64_t too_large;      /* raw datagrams over DCMF_ASSOC_SRTP_MAX_PACKET */
  uint64_t refused_flow;   /* authenticated packets of a refused SSRC */
  uint64_t flow_limit;     /* authenticated packets of an SSRC over the cap */
  uint64_t dtls_data;      /* DTLS application records (ignored) */
  uint64_t out_replay;     /* sends dropped: sequence number already sent */
  uint64_t out_ssrc_limit; /* sends refused: a new SSRC past the cap */
};

/* The engine of an association |dcmf_assoc_srtp| created (counters per
 * direction, ROCs: srtp.h), or NULL before |connected|. Valid until the
 * association is destroyed. */
const struct dcmf_srtp *dcmf_assoc_srtp_engine(void *assoc);

/* The kind's own counters of that association. */
const struct dcmf_assoc_srtp_counts *dcmf_assoc_srtp_counts(void *assoc);

#endif
