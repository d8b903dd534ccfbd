/*
 * msrp_dc_svc.h - MSRP over a data channel (RFC 8873) <-> MSRP over TCP
 * as a session service (service.h; layer: services; TS 23.334 5.19.6,
 * docs/e2ae.md "MSRP over a data channel").
 *
 * What it serves. A media whose description carries a struct
 * dcmf_media_msrpleg (media.h): the session is the access leg (ICE-lite,
 * DTLS, SCTP) and the leg names the negotiated msrp channel (|sid|) and
 * the core TCP socket, taken at attach. The service matches that one
 * flow and joins it to the TCP connection through the MSRP relay engine
 * (msrp_relay.h): the data channel is the relay's message leg (one MSRP
 * chunk per SCTP message, each at most the WIC's max-message-size, larger
 * SEND chunks from the core re-chunked), TCP its stream leg. Agnostic or
 * aware mode as the leg says (msrp_relay.h).
 *
 * Establishment. The TCP leg follows its setup (msrp_dc_tcp.h): active
 * connects at attach, or once the channel opens with stateless handling;
 * passive accepts one connection from the signalled core host. Nothing is
 * read from TCP before the channel is open; messages from the channel
 * before TCP is up wait in the relay (bounded as below). A connection not
 * up within the leg's timeout_ms, or refused, raises TCP_FAILURE
 * {"leg":"core","reason":R} (R "refused", "timeout", or "setup" when the
 * leg could not start) and closes the channel (at once, or as soon as it
 * opens).
 *
 * Back-pressure. SCTP send buffer full (host->send says EXHAUSTED): the
 * relay's message queue fills, the relay takes no more stream bytes, and
 * the service stops reading TCP until |writable| drains it. TCP slow:
 * one write is in flight at a time; the relay refuses channel messages
 * while its stream queue is over its limit (256 KiB), and the service
 * keeps those messages in a backlog of at most DCMF_MSRP_DC_BACKLOG
 * bytes. Past that the WIC outruns the core beyond every bound: the media
 * is ended (channel closed, TCP reset, TCP_CLOSED "overflow"), so its
 * memory stays bounded and no other media is touched.
 *
 * Release. The channel closing (the WIC reset its stream, or the
 * association ended) closes the TCP leg with a FIN after what was being
 * written; TCP FIN, reset or error closes the channel (an outgoing stream
 * reset, RFC 8831 §6.7). A stream that cannot be cut into chunks (the
 * relay's fatal error) resets TCP and closes the channel. TCP_CLOSED
 * {"reason":R} is raised once, R one of "fin", "reset", "error",
 * "channelClosed", "malformed", "overflow".
 *
 * Counters: MSRP_COUNTERS, pushed at most once per DCMF_MSRP_DC_PUSH_MS
 * while something is counted and once at detach with "final":true:
 *   {"toCore":{"bytes":N},"toAccess":{"messages":N,"bytes":N},
 *    "chunks":{"fromAccess":N,"fromCore":N,"splits":N,"pieces":N,
 *              "answers":N,"refused":N},"peakMem":N,"final":B}
 */
#ifndef DCMF_MSRP_DC_SVC_H
#define DCMF_MSRP_DC_SVC_H

#include "service.h"

extern const struct dcmf_service dcmf_msrp_dc_service;

/* Bytes of channel messages held while the relay refuses them. */
#define DCMF_MSRP_DC_BACKLOG (1024 * 1024)
/* The most often a busy media's counters are pushed. */
#define DCMF_MSRP_DC_PUSH_MS 1000
#define DCMF_MSRP_DC_EVENT "MSRP_COUNTERS"

#endif
