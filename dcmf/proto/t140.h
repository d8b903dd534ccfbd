/*
 * t140.h - the real-time text gateway engine of one e2ae session: T.140
 * over a data channel (RFC 8865) on the access side, T.140 over RTP
 * (RFC 4103, with RFC 2198 redundancy) on the core side. Layer proto: no
 * I/O, no clock, no allocation, no globals; the caller passes the time
 * (milliseconds, any monotonic origin) and asks for the next deadline.
 *
 * DC -> RTP (dcmf_t140_dc_recv, dcmf_t140_rtp_write):
 *   - Each DC message is UTF-8 text (one or more T140blocks, RFC 8865
 *     §5.2); invalid UTF-8 is dropped, counted, and a missing-text marker
 *     U+FFFD takes its place (T.140 Amd 1; RFC 8865 §6 says the gateway
 *     SHOULD mark loss toward RTP).
 *   - Text is buffered for buffer_ms (RFC 4103 §5 and RFC 8865 §5.3:
 *     300 ms recommended, 500 ms at most); the first text after an idle
 *     period goes out at once with the M bit set (RFC 4103 §3 and §5, RFC 3550
 *     §5.1), later text one packet per buffer_ms.
 *   - With red (RFC 4103 §4, RFC 2198) every packet carries exactly
 *     `generations` redundant blocks, oldest first, then the primary, so a
 *     receiver counting back from the sequence number finds packet seq-k
 *     in generation k. After the last text an empty primary is sent each
 *     buffer_ms until that text has been sent `generations` times as
 *     redundancy (with 0 generations, one empty T140block: RFC 4103 §5.2
 *     "start of an idle period"). Then the stream is idle and a keep-alive
 *     (an empty T140block, with empty redundancy) is sent every
 *     keepalive_ms (RFC 6263 §4.6 recommends 15 s) [interpretation].
 *   - Timestamps run on the 1000 Hz clock from the caller's time and
 *     never repeat (a packet in the same millisecond as the last one gets
 *     the last timestamp + 1: RFC 4103 §3). SSRC and first sequence
 *     number and timestamp are the caller's random choices (RFC 3550
 *     §5.1, §8); the sequence number grows by one per packet.
 *   - cps_to_rtp (the cps the core declared in its fmtp) limits characters
 *     per second; text waits in a bounded queue (DCMF_T140_QUEUE bytes).
 *     A message that does not fit is dropped, counted, and replaced by one
 *     U+FFFD (RFC 8865 §4.2.1: drop and mark, as in an emergency).
 *
 * RTP -> DC (dcmf_t140_rtp_recv, dcmf_t140_dc_write):
 *   - RTP (RFC 3550 §5.1: version 2, CSRCs, extension, padding) with the
 *     text/t140 or (with use_red) the red payload type; anything else
 *     is dropped with a reason counter. A new SSRC restarts the sequence tracking.
 *   - Packets are taken in sequence order. A gap is filled from the
 *     redundancy of a later packet (generation k of packet s is packet
 *     s-k, RFC 4103 §4). A gap redundancy cannot fill waits up to
 *     reorder_ms for the missing packet (at most DCMF_T140_REORDER packets
 *     are held); then one U+FFFD marks the lost run (RFC 4103 §5,
 *     RFC 8865 §6). Packets at or before the last one taken are
 *     duplicates (or too late) and dropped.
 *   - Text toward the UE is limited to cps_to_dc characters per second
 *     (the UE's dcsa cps, RFC 8865 §4.2.1, default 30). It waits in a
 *     bounded queue; on overflow new text is dropped, counted, and one
 *     U+FFFD is queued in its place.
 *
 * cps limits: a token bucket of one second's worth of characters refilled
 * at 9/10 of the rate, so that no 10 s window carries more than 10 * cps
 * characters (the RFC's average is over 10 s).
 *
 * Direction (RFC 8865 §4.2.3 and §6: the same on both sides) is the UE's
 * dcsa direction: sendonly lets only DC -> RTP through, recvonly only
 * RTP -> DC, inactive nothing. Blocked input is dropped and counted; no
 * RTP is sent (not even keep-alives) while DC -> RTP is blocked.
 *
 * Errors are 0 or a negative DCMF_ERR_* (errors.h). Peer input never
 * fails a call: bad bytes are dropped and counted in dcmf_t140_stats.
 */
#ifndef DCMF_T140_H
#define DCMF_T140_H

#include <stddef.h>
#include <stdint.h>

#define DCMF_T140_MAX_GENERATIONS 5
/* The text one RTP packet carries, all blocks together (the primary is
 * cut at 1000 / (generations + 1) bytes, on a character boundary). */
#define DCMF_T140_PACKET_TEXT 1000
/* The largest RTP packet the engine writes or takes. */
#define DCMF_T140_MAX_PACKET 1500
/* Bytes of text queued in each direction. */
#define DCMF_T140_QUEUE 4096
/* Packets held while waiting for a missing one. */
#define DCMF_T140_REORDER 16
/* No deadline. */
#define DCMF_T140_NEVER UINT64_MAX

enum dcmf_t140_direction {
  DCMF_T140_SENDRECV = 0,
  DCMF_T140_SENDONLY = 1, /* the UE only sends: DC -> RTP */
  DCMF_T140_RECVONLY = 2, /* the UE only receives: RTP -> DC */
  DCMF_T140_INACTIVE = 3,
};

struct dcmf_t140_settings {
  uint8_t pt_t140;        /* the text/t140 payload type (0..127) */
  uint8_t pt_red;         /* the red payload type, if use_red (else unused) */
  int use_red;            /* 1: send and take red; 0: t140 only */
  unsigned generations;   /* redundant generations when use_red, 0..5 */
  unsigned buffer_ms;     /* 1..500; 0 means 300 */
  unsigned keepalive_ms;  /* idle keep-alive period; 0 means none */
  unsigned reorder_ms;    /* wait for a missing packet; 0: mark at once */
  unsigned cps_to_dc;     /* the UE's dcsa cps; 0 means 30 (RFC 8865) */
  unsigned cps_to_rtp;    /* the core's fmtp cps; 0 means no limit */
  uint32_t ssrc;          /* random, from the caller */
  uint16_t first_seq;     /* random, from the caller */
  uint32_t first_ts;      /* random, from the caller */
  enum dcmf_t140_direction direction;
};

/* Fills |s| with the defaults: PTs 98 (t140) and 100 (red), red on, 2
 * generations, 300 ms, keep-alive 15 s, reorder 1 s, cps 30 toward the
 * DC, no limit toward RTP, sendrecv, SSRC/seq/ts 0 (set them). */
void dcmf_t140_settings_default(struct dcmf_t140_settings *s);

/* Why input was dropped, and what happened. */
struct dcmf_t140_stats {
  uint64_t rtp_sent, rtp_received, keepalives_sent;
  uint64_t chars_to_rtp, chars_to_dc;
  uint64_t drop_truncated;  /* RTP shorter than its headers say */
  uint64_t drop_version;    /* RTP version not 2 */
  uint64_t drop_pt;         /* neither t140 nor red */
  uint64_t drop_red;        /* bad RFC 2198 headers or lengths */
  uint64_t drop_too_large;  /* RTP over DCMF_T140_MAX_PACKET */
  uint64_t drop_utf8_rtp;   /* T140block not valid UTF-8 */
  uint64_t drop_utf8_dc;    /* DC message not valid UTF-8 */
  uint64_t drop_duplicate;  /* seq already taken (or too late) */
  uint64_t drop_direction;  /* blocked by the direction */
  uint64_t recovered;       /* packets rebuilt from redundancy */
  uint64_t lost;            /* packets neither received nor rebuilt */
  uint64_t markers_to_dc, markers_to_rtp; /* U+FFFD inserted */
  uint64_t overflow_to_dc, overflow_to_rtp; /* text dropped: queue full */
};

/* The engine's state; opaque to callers, embedded by them (~40 KiB). */
struct dcmf_t140_hist {
  uint32_t ts;
  uint16_t len;
  uint8_t text[DCMF_T140_PACKET_TEXT];
};
struct dcmf_t140_slot {
  int used;
  uint16_t seq;
  uint16_t len;
  uint64_t arrived;
  uint8_t bytes[DCMF_T140_MAX_PACKET];
};
/* Text waiting in one direction: valid UTF-8 only; room for one U+FFFD
 * is always kept, so that a loss can be shown where it happened. */
struct dcmf_t140_textq {
  uint8_t buf[DCMF_T140_QUEUE];
  size_t len;
  int marked; /* the queue ends with U+FFFD */
};
struct dcmf_t140_bucket {
  unsigned cps;     /* 0: no limit */
  uint64_t tokens;  /* in 1/10000 character */
  uint64_t at;      /* time of the last refill */
};
struct dcmf_t140 {
  struct dcmf_t140_settings set;
  struct dcmf_t140_stats stats;
  /* DC -> RTP */
  struct dcmf_t140_textq txq;
  struct dcmf_t140_bucket tx_cps;
  struct dcmf_t140_hist hist[DCMF_T140_MAX_GENERATIONS];
  unsigned hist_head;  /* index of the newest primary */
  uint16_t seq;        /* the next sequence number */
  uint32_t ts_origin;  /* first_ts at time now_origin */
  uint64_t now_origin;
  uint32_t last_ts;
  int sent_any;
  uint64_t last_send;
  unsigned red_left;   /* empty packets still owed to redundancy */
  int idle;            /* no text and no redundancy pending */
  /* RTP -> DC */
  struct dcmf_t140_textq rxq;
  struct dcmf_t140_bucket rx_cps;
  int rx_started;
  uint32_t rx_ssrc;
  uint16_t rx_expected;
  struct dcmf_t140_slot stash[DCMF_T140_REORDER];
};

/*
 * Starts |t| with a copy of |s| at time |now|. Returns
 * DCMF_ERR_INVALID (with a sentence in |err|, |errlen| bytes) for a
 * setting out of range: a PT above 127, t140 and red the same PT (with
 * red),
 * generations above 5, buffer_ms above 500, a direction not in the enum.
 */
int dcmf_t140_init(struct dcmf_t140 *t, const struct dcmf_t140_settings *s,
                   uint64_t now, char *err, size_t errlen);

/* Starts |t| again with |s| (new payload types, red or generations: a
 * new SSRC and sequence toward RTP, the receive side's sequence tracking
 * anew) at |now|, keeping the text queued both ways and the counters.
 * Packets held for a missing one are lost, as is what the core still
 * sends in the old format: when the receive side had started, one U+FFFD
 * goes toward the UE (RFC 8865 §6, as after a DC re-establishment).
 * Errors as dcmf_t140_init's; |t| is unchanged then. */
int dcmf_t140_restart(struct dcmf_t140 *t, const struct dcmf_t140_settings *s,
                      uint64_t now, char *err, size_t errlen);

/* Changes the cps limits (a PATCH bringing the UE's dcsa cps or the
 * core's fmtp cps; 0 as in the settings) at |now|, keeping all queued
 * and held text. A bucket keeps the tokens it had, up to its new size. */
void dcmf_t140_set_cps(struct dcmf_t140 *t, unsigned cps_to_dc,
                       unsigned cps_to_rtp, uint64_t now);

/* Changes the direction (an SDP re-offer). Returns DCMF_ERR_INVALID for a
 * value not in the enum. */
int dcmf_t140_set_direction(struct dcmf_t140 *t, enum dcmf_t140_direction d);

/* Takes one DC message (|msg|, |len| bytes, borrowed for the call) of
 * T.140 text from the UE at |now|. Never fails: bad or blocked input is
 * counted in the stats. */
void dcmf_t140_dc_recv(struct dcmf_t140 *t, const uint8_t *msg, size_t len,
                       uint64_t now);

/* Tells |t| that the data channel failed or was re-established: text the
 * UE sent may be lost, so one U+FFFD goes toward RTP (RFC 8865 §5.4 and
 * §6: the gateway SHOULD mark loss toward RTP after a DC failure). */
void dcmf_t140_dc_failed(struct dcmf_t140 *t);

/*
 * Writes the RTP packet due at |now| into |out| (|cap| bytes; at least
 * DCMF_T140_MAX_PACKET is always enough). Returns its length, 0 when no
 * packet is due, or DCMF_ERR_TOO_LARGE when |cap| cannot hold it (the
 * packet stays due). Call again until it returns 0: at most one packet
 * is due at a time.
 */
int dcmf_t140_rtp_write(struct dcmf_t140 *t, uint8_t *out, size_t cap,
                        uint64_t now);

/* Takes one RTP packet from the core (|pkt|, |len| bytes, borrowed for
 * the call) at |now|. Never fails: bad input is counted in the stats. */
void dcmf_t140_rtp_recv(struct dcmf_t140 *t, const uint8_t *pkt, size_t len,
                        uint64_t now);

/*
 * Writes the text due toward the UE at |now| (whole UTF-8 characters,
 * within the cps limit) into |out| (|cap| bytes, at least 4 so that any
 * character fits), to be sent as one DC message. Returns its length, or
 * 0 when nothing is due. Call again until it returns 0.
 */
size_t dcmf_t140_dc_write(struct dcmf_t140 *t, uint8_t *out, size_t cap,
                          uint64_t now);

/* The earliest time at which rtp_write or dc_write may produce output, or
 * a held packet times out; DCMF_T140_NEVER if none. Call both writers
 * (and nothing else is needed) when it passes. */
uint64_t dcmf_t140_next_expiry(const struct dcmf_t140 *t);

/* The deadline of the sending side alone (rtp_write), DCMF_T140_NEVER if
 * none: what a caller that cannot write toward the UE (no channel yet,
 * or the last message still waiting for room) waits for. The receive
 * side's deadlines are only met by calling dc_write, and its cps clock
 * only moves there, so while dc_write is not called they stay in the
 * past; held packets then wait until dc_write runs again (it takes those
 * that waited long enough first). */
uint64_t dcmf_t140_tx_expiry(const struct dcmf_t140 *t);

/* The counters of |t|, valid until its next call. */
const struct dcmf_t140_stats *dcmf_t140_get_stats(const struct dcmf_t140 *t);

/* Internal, shared by t140.c and t140_rx.c; declared here so that the
 * unit tests and the fuzz target can check them too. */

/* Returns 1 if |p|, |n| bytes, is valid UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), with its character count
 * in |*chars| (may be NULL); 0 otherwise. */
int dcmf_t140_utf8_valid(const uint8_t *p, size_t n, size_t *chars);

/* The byte length of the longest prefix of valid UTF-8 |p|, |n| bytes,
 * that has at most |max_chars| characters and |max_bytes| bytes. */
size_t dcmf_t140_utf8_prefix(const uint8_t *p, size_t n, size_t max_chars,
                             size_t max_bytes);

/* The cps token bucket (see above); cps 0 means no limit. */
void dcmf_t140_bucket_init(struct dcmf_t140_bucket *b, unsigned cps,
                           uint64_t now);
/* The whole characters |b| allows at |now| (SIZE_MAX without a limit). */
size_t dcmf_t140_bucket_avail(struct dcmf_t140_bucket *b, uint64_t now);
void dcmf_t140_bucket_take(struct dcmf_t140_bucket *b, size_t chars);
/* The time at which |b| next allows one character. */
uint64_t dcmf_t140_bucket_when(const struct dcmf_t140_bucket *b);

/* Appends U+FFFD unless |q| already ends with one; returns 1 if it did. */
int dcmf_t140_textq_mark(struct dcmf_t140_textq *q);
/* Appends |n| bytes of valid UTF-8; DCMF_ERR_EXHAUSTED (nothing taken)
 * when they do not fit beside the room kept for one marker. */
int dcmf_t140_textq_push(struct dcmf_t140_textq *q, const uint8_t *p,
                         size_t n);
/* Drops the first |n| bytes (n <= q->len). */
void dcmf_t140_textq_pop(struct dcmf_t140_textq *q, size_t n);

/* Starts the receive side (called by dcmf_t140_init). */
void dcmf_t140_rx_init(struct dcmf_t140 *t, uint64_t now);
/* The receive side's own deadline (held packets, cps). */
uint64_t dcmf_t140_rx_expiry(const struct dcmf_t140 *t);

#endif
