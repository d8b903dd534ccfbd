/*
 * e2ae_svc.h - the e2ae media path as a session service (service.h;
 * layer: services): DTLS-SRTP on the access leg <-> plain RTP/RTCP on
 * the core leg (TS 23.334 5.11.2.4, 6.2.10.5; TS 33.328 Annex N.2), and
 * T.38 UDPTL over DTLS <-> UDPTL over UDP (RFC 7345, below).
 *
 * What it serves. A media whose association kind is DCMF_ASSOC_SRTP and
 * whose description carries a core leg (host->desc->rtpleg, media.h):
 * the session is the access leg (ICE-lite, DTLS-SRTP, SRTP and SRTCP
 * with rtcp-mux); this service owns the core leg's sockets (taken from
 * the description at attach: the core RTP socket, and the RTCP one
 * unless rtcp-mux) and joins every SSRC flow of the association to them.
 * It matches only flows of kind DCMF_ASSOC_SRTP of such a media, so
 * data-channel media never see it. Its per-worker config is a struct
 * dcmf_e2ae_config (below), or NULL for the defaults.
 *
 * Access -> core. Each plain packet of a flow (the association has
 * unprotected and authenticated it) leaves unchanged (SSRC, sequence
 * number, timestamp, payload): RTP to the core RTP address from the RTP
 * socket, RTCP (second byte 192-223, RFC 5761 §4) to the core RTCP
 * address from the RTCP socket, or from the RTP socket with rtcp-mux.
 * The core address is the latched one (below) or else the signalled one;
 * with neither the packet is dropped (noCoreAddress).
 *
 * Core -> access. The core sockets are read on the worker's loop (libuv;
 * at most 32 datagrams per socket per loop turn, libuv's bound, so a
 * flood on the core port cannot starve the worker). A packet is taken
 * only from the signalled core address of its socket (RTP, RTCP); with
 * |latching| the first packet's source is latched instead and kept: a
 * second source is never latched (no re-latch, so nobody can steal the
 * stream), its packets are dropped as unknownSource; a new core address
 * or latching setting in an update drops the latch. On a rtcp-mux socket
 * RTP and RTCP are told apart by RFC 5761 §4; a packet in the RTCP range
 * on the RTP socket without mux is RTCP too (the access leg is always
 * muxed), one outside it on the RTCP socket is malformed. RTP needs a
 * whole 12-byte version-2 header. It then goes to the access side with
 * host->send on flow id = its SSRC (RTP) or sender SSRC (RTCP): our
 * SSRCs need no flow of the association (assoc_srtp.h). Before DTLS is
 * up with a verified fingerprint the association has no keys and
 * refuses the send: the packet is dropped as beforeDtls (also after the
 * association ended, until a new one is keyed).
 *
 * RTCP, both ways, must pass dcmf_rtcp_validate (rtcp.h) with RFC 5506
 * reduced-size compounds accepted; others are dropped as malformed.
 * Feedback (RTPFB, PSFB) passes only when both legs are AVPF
 * (|core_avpf| and |access_avpf| of the leg); otherwise it is stripped
 * both ways (dcmf_rtcp_strip_feedback), and a compound left empty or
 * without a leading SR/RR is dropped.
 *
 * T.38 (RFC 7345; TS 23.334 6.2.10.4). A media whose association kind
 * is DCMF_ASSOC_DTLS_DATA with a core leg (rtcp-mux, no RTCP socket) is
 * UDPTL over DTLS on the access leg <-> UDPTL over UDP on the core leg,
 * and this service joins the one flow of the association
 * (assoc_dtlsdata.h) to the core socket. Each DTLS application record
 * from the access side is sent as one datagram to the core address
 * (latched or signalled, as above; noCoreAddress without one); each
 * core datagram from the signalled (or latched) source is sent as one
 * record to the access side. Nothing is parsed beyond a length of at
 * least 2 (the UDPTL sequence number) and at most
 * DCMF_ASSOC_DTLSDATA_MAX_PACKET (malformed otherwise). Before DTLS is
 * up with a verified fingerprint, core datagrams are dropped as
 * beforeDtls, and nothing comes from the access side. The counters are
 * those below (the SRTP ones stay 0, profile ""), toCore and toAccess
 * counting UDPTL datagrams.
 *
 * Nothing is queued: a packet is forwarded at once or dropped. Packets
 * over DCMF_ASSOC_SRTP_MAX_PACKET bytes from the core are malformed.
 *
 * Counters. Per media; pushed to the control plane with
 * host->emit(host, "RTP_COUNTERS", detail):
 *   - at once when a counter counts its first (the first packet each
 *     way, the first drop of a reason) or the profile changes (an
 *     association was keyed with another profile): at most once per
 *     counter and keying, so these stay few;
 *   - otherwise at most once per push interval (struct
 *     dcmf_e2ae_config, DCMF_E2AE_PUSH_MS = 1 s by default): the first
 *     count after a push queues the media for a push one interval
 *     later, which reports everything counted until then;
 *   - once at detach, with "final":true.
 * So what the control plane shows is at most one interval (plus one
 * 10 ms worker tick) behind. Nothing is polled: the service asks for
 * no |tick|; the pushes that are due are found by |worker_tick| at the
 * head of a per-worker queue ordered by due time, and the association's
 * SRTP refusals (counted inside the engine, not seen by the service)
 * and keyings arrive through |assoc_changed| (service.h). An idle media
 * costs nothing per tick, and a busy one a flag test per packet and one
 * push per interval. |detail| is one JSON object, exactly:
 *
 *   {"profile":"SRTP_AEAD_AES_256_GCM",
 *    "toCore":{"packets":N,"bytes":N,"srtpPrevious":N},
 *    "toAccess":{"packets":N,"bytes":N},
 *    "drops":{"unknownSource":N,"beforeDtls":N,"srtpAuth":N,
 *             "srtpReplay":N,"malformed":N,"feedbackStripped":N,
 *             "sendFailed":N,"noCoreAddress":N},
 *    "final":B}
 *
 * (no white space in the real text; N are unsigned 64-bit decimals, B
 * is true only in the detach push). Members:
 *   profile          the SRTP profile of the current DTLS association,
 *                    else of the last one keyed; "" if none ever was
 *   toCore           plain RTP and RTCP packets sent on the core leg,
 *                    bytes as sent (after the feedback filter);
 *                    srtpPrevious: of those from access SRTP, the ones
 *                    that passed under the previous keys of a tls-id
 *                    renewal (the fallback, srtp.h), summed over every
 *                    association of the media
 *   toAccess         packets from the core handed to the association
 *                    (protected and sent), plain bytes
 *   unknownSource    core packets from a source neither signalled nor
 *                    latched, or while no core address is known
 *   beforeDtls       core packets while no association is keyed
 *   srtpAuth         access SRTP/SRTCP that failed authentication
 *   srtpReplay       access SRTP/SRTCP refused as replayed or too old
 *                    (both summed over every association of the media)
 *   malformed        RTCP failing dcmf_rtcp_validate (either leg), core
 *                    RTP shorter than its header or not version 2, core
 *                    datagrams over the size limit or of the wrong kind
 *                    for their socket, and access SRTP/SRTCP the
 *                    association could not parse or found too large
 *                    (summed over every association of the media)
 *   feedbackStripped RTCP compounds the AVP filter changed or dropped
 *                    whole (either direction)
 *   sendFailed       packets that could not leave: the core socket's
 *                    send failed, the access peer is gone (consent
 *                    lost: the session has nowhere to send), or the
 *                    association refused the
 *                    packet for another reason than missing keys (a
 *                    new core SSRC past DCMF_ASSOC_SRTP_MAX_OUT_SSRCS)
 *   noCoreAddress    access packets dropped while no core address is
 *                    known (latching with nothing latched yet and
 *                    nothing signalled)
 * Every counter only grows during the media's life. The worst case
 * (every N at 2^64-1, profile SRTP_AES128_CM_SHA1_80) is 485 bytes,
 * within struct dcmf_media_event's |detail|.
 */
#ifndef DCMF_E2AE_SVC_H
#define DCMF_E2AE_SVC_H

#include <stdint.h>

#include "service.h"

extern const struct dcmf_service dcmf_e2ae_service;

/* The per-worker config of the service (the registration's |config|;
 * NULL: every default). */
struct dcmf_e2ae_config {
  /* The most often a media's counters are pushed, in ms (first counts
   * and profile changes excepted; dcmfd's --e2ae-push-ms); 0:
   * DCMF_E2AE_PUSH_MS. Over
   * DCMF_E2AE_PUSH_MS_MAX, init fails with DCMF_ERR_INVALID. */
  uint32_t push_ms;
};

/* The default push interval, in ms: what GET and /metrics show of an
 * e2ae media is at most this stale. */
#define DCMF_E2AE_PUSH_MS 1000
#define DCMF_E2AE_PUSH_MS_MAX 60000

/* The event the counters are pushed as. */
#define DCMF_E2AE_EVENT "RTP_COUNTERS"

#endif
