/*
 * t140_svc.h - T.140 real-time text over a data channel (RFC 8865) <->
 * T.140 over RTP (RFC 4103, RFC 2198 redundancy) as a session service
 * (service.h; layer: services; docs/e2ae.md "T.140 over a data channel
 * <-> RTP").
 *
 * What it serves. A media whose description carries an RTP leg with
 * t140.on (media.h struct dcmf_media_t140): the session is the access
 * leg (ICE-lite, DTLS, SCTP), the leg names the negotiated "t140"
 * channel (|t140.sid|) and owns the core RTP socket (and the RTCP one
 * without rtcp-mux). The service
 * matches that one flow and joins it to the RTP text stream through the
 * T.140 engine (t140.h), which does the protocol: ~300 ms buffering,
 * red generations, the M bit after idle, unique timestamps, keep-alives,
 * recovery by redundancy, U+FFFD for unrecovered loss, cps limits and
 * the direction. The core leg is an RTP endpoint for RTCP too (RFC 3550
 * §6, the engine rtcp_ep.h): reports at the §6.2 interval with the text
 * stream's SSRC, a BYE when the media ends or the SSRC changes, the
 * core's compounds validated and counted (docs/e2ae.md "RTCP toward
 * the core"). This file is glue: sockets, timers, counters.
 *
 * Time. One uv_timer per media on the worker's loop, armed at the
 * engine's next deadline after every input, and one at the next RTCP
 * report; the engines' clock is the host's (host->now), the SR's NTP
 * time the wall clock.
 *
 * Core packets. Without latching only the signalled core address (ip
 * and port) is accepted. With the leg's latching, or without a signalled
 * address, the first packet the engine takes (well-formed) latches its
 * source for good, as on the e2ae RTP leg: before that any source is
 * taken and text goes to the signalled address, if any; after it only
 * the latched one, both ways. Others are dropped ("unknownSource"). At most DCMF_T140_SVC_RATE
 * packets per second are given to the engine; more are dropped ("rate"),
 * so a flood costs its own media a counter and no work. What the engine
 * refuses (bad version, short, bad red headers, bad UTF-8, too large,
 * other payload types, duplicates) is counted by it. None of that ends
 * the media or touches another one.
 *
 * Toward the WIC. Text goes as UTF-8 string messages (PPID 51) while the
 * channel is open; one message waits when SCTP has no room (|writable|
 * resends it, also after the channel closed and opened again) and the
 * engine's bounded queue holds the rest. Text from the core while the
 * channel is not open waits in the same bounded queue; while nothing can
 * be written toward the WIC the timer follows the sending side's
 * deadlines only (no wake-ups for text that cannot go).
 *
 * Settings. A PATCH's direction and cps are set on the running engine,
 * its queues kept; new payload types, red or generations restart it,
 * queued text kept and one U+FFFD toward the WIC. Settings the engine
 * refuses (at attach or in a PATCH) and a core socket that cannot be
 * used raise T140_FAILURE {"reason":"..."} (at attach the media then
 * stays without text). A channel that closes while the media goes on (the WIC reset
 * it, or the association ended) makes the engine mark the loss toward
 * RTP (one U+FFFD, RFC 8865 §6), sent from the loop; a channel closed
 * because the media ends (DELETE) marks nothing. A channel that opens
 * again carries on.
 *
 * Counters: T140_COUNTERS, pushed at most once per DCMF_T140_SVC_PUSH_MS
 * while something is counted and once at detach with "final":true:
 *   {"toCore":{"packets","bytes","keepalives","chars"},
 *    "fromCore":{"packets","recovered","lost"},
 *    "toAccess":{"messages","chars"},"markers":{"toAccess","toCore"},
 *    "drops":{"version","truncated","payloadType","red","tooLarge",
 *             "utf8","duplicate","direction","unknownSource","rate",
 *             "overflow","sendFailed"},
 *    "rtcp":{"sent","senderReports","byeSent","received","malformed",
 *            "byeReceived","reportBlocks","peerFractionLost","peerLost",
 *            "peerJitter","sendFailed"},"final":B}
 * toCore.packets and toAccess.messages/chars count what was sent; sends
 * that failed (no core address yet, the socket or the association
 * refused) count in sendFailed.
 */
#ifndef DCMF_T140_SVC_H
#define DCMF_T140_SVC_H

#include "service.h"

extern const struct dcmf_service dcmf_t140_service;

/* Core packets per second a media gives the engine at most. */
#define DCMF_T140_SVC_RATE 200
/* The most often a busy media's counters are pushed. */
#define DCMF_T140_SVC_PUSH_MS 1000
#define DCMF_T140_SVC_EVENT "T140_COUNTERS"
/* The media cannot carry text: {"reason":"..."}. */
#define DCMF_T140_SVC_FAILURE "T140_FAILURE"

#endif
