/*
 * assoc_dtlsdata.h - the raw DTLS data association kind (assoc.h
 * DCMF_ASSOC_DTLS_DATA): DTLS application data carries the media itself,
 * one datagram of the media per record, as T.38 UDPTL over DTLS does
 * (RFC 7345 §3: "each UDPTL packet MUST be carried in DTLS
 * application_data records"). No keys are exported and nothing travels
 * beside DTLS (no raw range).
 *
 * Flows. There is one flow, id 0 (DCMF_ASSOC_DTLSDATA_FLOW), the DTLS
 * stream itself. It opens (|flow_open|) when DTLS connects (|connected|,
 * then UP) and closes when the association is destroyed. A flow the
 * owner refuses stays refused: its records are dropped and counted.
 *
 * Inbound (|dtls_in|): each decrypted record reaches the owner as one
 * |flow_message| (binary), unchanged. An empty record, one before the
 * flow is open, or one over DCMF_ASSOC_DTLSDATA_MAX_PACKET is dropped
 * and counted.
 *
 * Outbound (|send|): |data| on flow 0 leaves through |dtls_out| as one
 * record. Returns 0; DCMF_ERR_INVALID before |connected|;
 * DCMF_ERR_NOT_FOUND for another flow id; DCMF_ERR_TOO_LARGE for an
 * empty packet or one over DCMF_ASSOC_DTLSDATA_MAX_PACKET.
 *
 * A second |connected| (a DTLS association renewed under it,
 * dcmf_dcstack_renew) keeps the flow open. No tick, no held output.
 */
#ifndef DCMF_ASSOC_DTLSDATA_H
#define DCMF_ASSOC_DTLSDATA_H

#include <stdint.h>

#include "assoc.h"

extern const struct dcmf_assoc_ops dcmf_assoc_dtlsdata;

/* The one flow's id. */
#define DCMF_ASSOC_DTLSDATA_FLOW 0
/* The largest record payload carried: a DTLS 1.2 record holds 2^14
 * bytes of plaintext (RFC 6347 §4.1 via RFC 5246 §6.2.1); a UDPTL
 * packet is far smaller (T.38 Annex D: a few hundred bytes). */
#define DCMF_ASSOC_DTLSDATA_MAX_PACKET 16384

/* What the kind dropped (never reaching the owner or DTLS). */
struct dcmf_assoc_dtlsdata_counts {
  uint64_t not_open; /* records before the flow opened, or refused */
  uint64_t bad_size; /* empty records, or over the limit (either way) */
};

/* The counts of an association |dcmf_assoc_dtlsdata| created; valid
 * until it is destroyed. */
const struct dcmf_assoc_dtlsdata_counts *
dcmf_assoc_dtlsdata_counts(void *assoc);

#endif
