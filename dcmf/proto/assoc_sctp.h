/*
 * assoc_sctp.h - the SCTP data-channel association kind (RFC 8261, 8831,
 * 8832): an SCTP association (sctp.c) and its channel table
 * (datachannel.c, DCEP answers included) behind struct dcmf_assoc_ops
 * (assoc.h). A flow is a data channel; its id is the stream id.
 *
 * Wiring: SCTP packets go to DTLS through |dtls_out| and DTLS data comes
 * in through |dtls_in|; SCTP connects on |connected|; SCTP events reach
 * the channel table, whose channels become flows toward the owner; owed
 * DCEP ACKs go out before the owner hears |writable|; usrsctp's timer
 * work is asked for through |need_tick| only when there is some, and
 * |tick| delivers it (dcmf_sctp_handle_tick). No raw range.
 */
#ifndef DCMF_ASSOC_SCTP_H
#define DCMF_ASSOC_SCTP_H

#include "assoc.h"
#include "datachannel.h"

extern const struct dcmf_assoc_ops dcmf_assoc_sctp;

/* The streams the INIT of an association made from |settings| asks for,
 * each way: the highest declared stream id + 1, at least
 * |sctp_min_streams|, at most |sctp.max_streams| (or |sctp.max_streams|
 * when |sctp_min_streams| is 0). An |update| that declares more before
 * the association connects raises it; after that the count is fixed,
 * and |update| returns DCMF_ERR_TOO_LARGE for a stream beyond it
 * (assoc.h). */
uint16_t dcmf_assoc_sctp_init_streams(const struct dcmf_assoc_settings *st);

/* The channel table of an association |dcmf_assoc_sctp| created, for
 * owners that open in-band channels or look channels up themselves
 * (dcmf-ue, tests). Valid until |destroy|. */
struct dcmf_dc *dcmf_assoc_sctp_dc(void *assoc);

#endif
