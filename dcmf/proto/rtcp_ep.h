/*
 * rtcp_ep.h - the RTCP of one RTP endpoint (RFC 3550 §6) for a media
 * whose RTP the gateway itself sends and ends (the T.140 core leg): when
 * to report, the compound it sends, the BYE at the end, and what the
 * peer's compounds say (counted only). Layer proto: no I/O, no clock, no
 * randomness of its own; the caller gives the time, the random draws and
 * the sending state, and sends the bytes. Validation and the walk over a
 * received compound are rtcp.h's (one parser).
 *
 * Interval (RFC 3550 §6.2, §6.3, §A.7) for a two-party session whose
 * RTCP bandwidth share is far above what two members use: the
 * deterministic interval is the minimum T_min (DCMF_RTCP_EP_MIN_MS,
 * 5 s), halved before the first compound as §6.2 allows, and each wait
 * is that times a factor drawn uniformly from [0.5, 1.5] (|rand|, a
 * 32-bit draw of the caller). The e^-1.5 compensation of §6.3.1 serves
 * timer reconsideration in large groups and is not applied: with two
 * members the waits are T_min * [0.5, 1.5], mean T_min.
 *
 * The compound sent (RFC 3550 §6.1): an SR when the endpoint sent RTP
 * since its last report (§6.4: "a participant is a sender if it sent
 * RTP since the last report"; keep-alive packets are RTP too), else an
 * RR; a report block for the peer's source once RTP came from it
 * (fraction and cumulative loss from the caller's counts, the extended
 * highest sequence number, LSR/DLSR of the peer's last SR; jitter 0: the
 * text path does not measure arrival jitter), then SDES with CNAME. BYE
 * (§6.6) is that compound with a BYE packet at the end.
 */
#ifndef DCMF_RTCP_EP_H
#define DCMF_RTCP_EP_H

#include <stddef.h>
#include <stdint.h>

#define DCMF_RTCP_EP_MIN_MS 5000u
#define DCMF_RTCP_EP_CNAME_MAX 64  /* bytes, without a terminator */
#define DCMF_RTCP_EP_MAX_PACKET 160 /* the largest compound we write */
#define DCMF_RTCP_EP_NEVER UINT64_MAX

/* What the caller knows at the time of a report. */
struct dcmf_rtcp_ep_state {
  uint32_t ssrc;          /* our RTP SSRC (the text stream's) */
  uint64_t ntp;           /* wall clock, NTP 64-bit format (SR) */
  uint32_t rtp_ts;        /* the RTP timestamp of that instant (SR) */
  uint32_t packets_sent;  /* RTP packets sent so far with |ssrc| */
  uint32_t octets_sent;   /* their payload octets */
  int have_source;        /* RTP came from the peer */
  uint32_t source_ssrc;
  uint16_t source_max_seq; /* the highest sequence number taken */
  uint32_t source_lost;    /* packets lost so far (cumulative) */
};

/* Counters of received compounds and of what they said. */
struct dcmf_rtcp_ep_stats {
  uint64_t sent_sr, sent_rr, sent_bye;
  uint64_t received;  /* valid compounds */
  uint64_t malformed; /* refused by dcmf_rtcp_validate */
  uint64_t byes;      /* compounds holding a BYE */
  uint64_t report_blocks;     /* blocks about our SSRC */
  uint32_t peer_fraction_lost; /* of the last block, 0-255 */
  uint32_t peer_lost;          /* its cumulative loss (24 bits) */
  uint32_t peer_jitter;        /* its interarrival jitter */
};

struct dcmf_rtcp_ep {
  char cname[DCMF_RTCP_EP_CNAME_MAX + 1];
  uint64_t min_ms;
  uint64_t next; /* when the next compound is due */
  uint32_t last_packets; /* packets_sent at the last report */
  int reported;          /* a report went out */
  /* extended highest sequence number (RFC 3550 A.1) of the peer */
  uint32_t ext_max;
  uint32_t prev_ext_max, prev_lost;
  int have_ext;
  /* the peer's last SR: the middle 32 bits of its NTP time, when */
  uint32_t lsr;
  uint64_t lsr_at;
  struct dcmf_rtcp_ep_stats stats;
};

/*
 * Starts |ep| at |now| with the CNAME |cname| (truncated to
 * DCMF_RTCP_EP_CNAME_MAX) and the minimum interval |min_ms| (0:
 * DCMF_RTCP_EP_MIN_MS). The first compound is due at now + min_ms/2 *
 * [0.5, 1.5] (|rand|).
 */
void dcmf_rtcp_ep_init(struct dcmf_rtcp_ep *ep, const char *cname,
                       uint64_t min_ms, uint64_t now, uint32_t rand);

/* When the next compound is due. */
uint64_t dcmf_rtcp_ep_next(const struct dcmf_rtcp_ep *ep);

/*
 * When a compound is due at |now|: writes it into |out| (|cap| bytes,
 * DCMF_RTCP_EP_MAX_PACKET are enough), draws the next time with |rand|
 * and returns its length; 0 when none is due, DCMF_ERR_TOO_LARGE when
 * |cap| is short (the report stays due).
 */
int dcmf_rtcp_ep_write(struct dcmf_rtcp_ep *ep,
                       const struct dcmf_rtcp_ep_state *st, uint64_t now,
                       uint32_t rand, uint8_t *out, size_t cap);

/*
 * The last compound (RFC 3550 §6.6): the report and SDES with a BYE for
 * |st->ssrc|, into |out|. Returns its length or DCMF_ERR_TOO_LARGE. No
 * compound is due afterwards.
 */
int dcmf_rtcp_ep_bye(struct dcmf_rtcp_ep *ep,
                     const struct dcmf_rtcp_ep_state *st, uint64_t now,
                     uint8_t *out, size_t cap);

/*
 * A compound from the peer, arrived at |now|: validated by RFC 3550
 * (dcmf_rtcp_validate without the reduced-size flag: the core leg is
 * RTP/AVP); counted; report blocks about |our_ssrc| update the peer's
 * loss and jitter counters; an SR is kept for LSR/DLSR. Returns 0 or
 * DCMF_ERR_MALFORMED (counted as malformed, nothing else changes).
 */
int dcmf_rtcp_ep_recv(struct dcmf_rtcp_ep *ep, const uint8_t *buf, size_t len,
                      uint32_t our_ssrc, uint64_t now);

const struct dcmf_rtcp_ep_stats *
dcmf_rtcp_ep_get_stats(const struct dcmf_rtcp_ep *ep);

#endif
