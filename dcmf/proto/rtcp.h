/*
 * rtcp.h - RTCP compound packets (RFC 3550 §6, RFC 4585, RFC 5506) for
 * the e2ae gateway (layer proto: no I/O, no clock, no state). Checks a
 * compound, walks its packets, reads its sender SSRC, and removes the
 * RTCP feedback packets that a leg without AVPF must not receive.
 *
 * Validity (RFC 3550 §6.1 and the checks of Appendix A.2), by
 * dcmf_rtcp_validate:
 *   - at least one packet; every packet has version 2, a packet type of
 *     192-223 (the RTCP range of RFC 5761 §4: on a muxed leg anything
 *     else is RTP) and a length field whose packets add up exactly to
 *     the compound's length (so the compound is a whole number of 32-bit
 *     words);
 *   - only the last packet may have the padding bit; its padding count
 *     (the packet's last byte) is at least 1 and leaves the 4-byte
 *     header whole;
 *   - the packets we look into hold what their count says: SR 24 + 24 *
 *     RC bytes after the header, RR 4 + 24 * RC, BYE 4 * SC, RTPFB and
 *     PSFB (RFC 4585 §6.1) and APP 8 at least, XR 4 at least; other
 *     types are taken as their length says;
 *   - the first packet is SR or RR (A.2), unless |flags| holds
 *     DCMF_RTCP_REDUCED_SIZE: RFC 5506 lets a compound (a "reduced-size"
 *     one) start with any packet, and WebRTC peers send lone feedback
 *     packets that way once a=rtcp-rsize is accepted. The gateway accepts
 *     them from both legs, and sends what is left of them only toward a
 *     leg that takes feedback (dcmf_rtcp_strip_feedback says why).
 *   Not checked: SDES items inside their chunks (forwarded as they are),
 *   SSRC values, and that an SR's sender is the SSRC of any stream.
 *
 * All functions take borrowed bytes and keep nothing. Errors are 0 or a
 * negative DCMF_ERR_* (errors.h).
 */
#ifndef DCMF_RTCP_H
#define DCMF_RTCP_H

#include <stddef.h>
#include <stdint.h>

/* RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1, RFC 3611). */
enum dcmf_rtcp_type {
  DCMF_RTCP_SR = 200,
  DCMF_RTCP_RR = 201,
  DCMF_RTCP_SDES = 202,
  DCMF_RTCP_BYE = 203,
  DCMF_RTCP_APP = 204,
  DCMF_RTCP_RTPFB = 205, /* transport-layer feedback (NACK, TWCC, ...) */
  DCMF_RTCP_PSFB = 206,  /* payload-specific feedback (PLI, FIR, REMB) */
  DCMF_RTCP_XR = 207,
};

/* dcmf_rtcp_validate |flags|: accept RFC 5506 reduced-size compounds. */
#define DCMF_RTCP_REDUCED_SIZE 1u

/* One packet of a compound, as dcmf_rtcp_next yields it. */
struct dcmf_rtcp_packet {
  uint8_t type;        /* the packet type (enum dcmf_rtcp_type or another) */
  uint8_t count;       /* the 5-bit RC / SC / FMT field */
  int padding;         /* the padding bit */
  const uint8_t *data; /* the whole packet, header included */
  size_t len;          /* its bytes: 4 * (length field + 1) */
};

/* A walk over a compound (dcmf_rtcp_next). */
struct dcmf_rtcp_iter {
  const uint8_t *buf;
  size_t len;
  size_t at;
};

/*
 * Checks the compound of |len| bytes at |buf| as the header comment says.
 * Returns 0, or DCMF_ERR_MALFORMED (anything else than a valid compound,
 * |buf| NULL or |len| 0 included).
 */
int dcmf_rtcp_validate(const uint8_t *buf, size_t len, unsigned flags);

/* Starts a walk over |len| bytes at |buf| (borrowed for the walk). */
void dcmf_rtcp_iter_init(struct dcmf_rtcp_iter *it, const uint8_t *buf,
                         size_t len);

/*
 * The next packet of the walk into |*pkt|. Returns 1 with a packet, 0 at
 * the end, DCMF_ERR_MALFORMED when the next header is cut short, has
 * another version than 2 or a length past the end (the walk stays
 * there). It checks only the framing: dcmf_rtcp_validate first for the
 * rest.
 */
int dcmf_rtcp_next(struct dcmf_rtcp_iter *it, struct dcmf_rtcp_packet *pkt);

/*
 * The sender SSRC of the compound at |buf| (the 32 bits after the first
 * packet's header: SR and RR sender, the first SDES chunk or BYE source,
 * the feedback packet's sender, APP and XR source) into |*ssrc|. Returns
 * 0, or DCMF_ERR_MALFORMED when the first packet is shorter than 8 bytes
 * or is an SDES or BYE with a count of 0 (which names nobody).
 */
int dcmf_rtcp_sender_ssrc(const uint8_t *buf, size_t len, uint32_t *ssrc);

/*
 * For a leg toward a peer without RTP/AVPF (RFC 4585 §6.1: an AVP
 * receiver does not know feedback packets): removes every RTPFB and PSFB
 * packet of the compound at |buf| in place, closing the gaps, and
 * returns the new length. The result must still be a compound an RFC
 * 3550 receiver takes, so when it would not start with SR or RR (a
 * reduced-size compound, or nothing left) it returns 0: drop it.
 * |*removed| (may be NULL) gets the number of packets removed.
 *
 * |buf| must hold a compound that dcmf_rtcp_validate accepted (with or
 * without DCMF_RTCP_REDUCED_SIZE); the result then passes
 * dcmf_rtcp_validate without the flag, is never longer, and a second
 * call leaves it as it is. Padding stays on the last packet, where it
 * was (a padded packet is the last one, so it is kept last or removed).
 */
size_t dcmf_rtcp_strip_feedback(uint8_t *buf, size_t len, size_t *removed);

#endif
