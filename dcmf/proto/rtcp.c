/* RTCP compound packets: checks, walk, feedback filter (rtcp.h). */
#include "rtcp.h"

#include <string.h>

#include "errors.h"

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

void dcmf_rtcp_iter_init(struct dcmf_rtcp_iter *it, const uint8_t *buf,
                         size_t len) {
  it->buf = buf;
  it->len = buf != NULL ? len : 0;
  it->at = 0;
}

int dcmf_rtcp_next(struct dcmf_rtcp_iter *it, struct dcmf_rtcp_packet *pkt) {
  size_t left = it->len - it->at;
  if (left == 0) {
    return 0;
  }
  const uint8_t *p = it->buf + it->at;
  if (left < 4 || (p[0] >> 6) != 2) {
    return DCMF_ERR_MALFORMED;
  }
  size_t n = ((size_t)p[2] << 8 | p[3]) * 4 + 4;
  if (n > left) {
    return DCMF_ERR_MALFORMED;
  }
  *pkt = (struct dcmf_rtcp_packet){.type = p[1],
                                   .count = (uint8_t)(p[0] & 0x1f),
                                   .padding = (p[0] & 0x20) != 0,
                                   .data = p,
                                   .len = n};
  it->at += n;
  return 1;
}

/* The bytes a packet of |type| with |count| needs after its 4-byte
 * header; 0 for types whose body we do not read. */
static size_t body_min(uint8_t type, uint8_t count) {
  switch (type) {
  case DCMF_RTCP_SR:
    return 24 + 24 * (size_t)count; /* sender info, report blocks */
  case DCMF_RTCP_RR:
    return 4 + 24 * (size_t)count; /* reporter SSRC, report blocks */
  case DCMF_RTCP_BYE:
    return 4 * (size_t)count; /* the SSRCs leaving */
  case DCMF_RTCP_RTPFB:
  case DCMF_RTCP_PSFB:
    return 8; /* sender SSRC, media source SSRC (RFC 4585 §6.1) */
  case DCMF_RTCP_APP:
    return 8; /* SSRC, name */
  case DCMF_RTCP_XR:
    return 4; /* SSRC (RFC 3611 §2) */
  default:
    return 0;
  }
}

int dcmf_rtcp_validate(const uint8_t *buf, size_t len, unsigned flags) {
  if (buf == NULL || len == 0) {
    return DCMF_ERR_MALFORMED;
  }
  struct dcmf_rtcp_iter it;
  struct dcmf_rtcp_packet pkt;
  dcmf_rtcp_iter_init(&it, buf, len);
  int first = 1;
  int rv;
  while ((rv = dcmf_rtcp_next(&it, &pkt)) == 1) {
    if (pkt.type < 192 || pkt.type > 223) {
      return DCMF_ERR_MALFORMED;
    }
    if (first && !(flags & DCMF_RTCP_REDUCED_SIZE) &&
        pkt.type != DCMF_RTCP_SR && pkt.type != DCMF_RTCP_RR) {
      return DCMF_ERR_MALFORMED; /* RFC 3550 A.2 */
    }
    first = 0;
    size_t body = pkt.len - 4;
    if (pkt.padding) {
      if (it.at != len) {
        return DCMF_ERR_MALFORMED; /* padding only on the last packet */
      }
      size_t pad = pkt.data[pkt.len - 1];
      if (pad == 0 || pad > body) {
        return DCMF_ERR_MALFORMED;
      }
      body -= pad;
    }
    if (body < body_min(pkt.type, pkt.count)) {
      return DCMF_ERR_MALFORMED;
    }
  }
  return rv == 0 ? 0 : DCMF_ERR_MALFORMED;
}

int dcmf_rtcp_sender_ssrc(const uint8_t *buf, size_t len, uint32_t *ssrc) {
  struct dcmf_rtcp_iter it;
  struct dcmf_rtcp_packet pkt;
  dcmf_rtcp_iter_init(&it, buf, len);
  if (dcmf_rtcp_next(&it, &pkt) != 1 || pkt.len < 8) {
    return DCMF_ERR_MALFORMED;
  }
  if ((pkt.type == DCMF_RTCP_SDES || pkt.type == DCMF_RTCP_BYE) &&
      pkt.count == 0) {
    return DCMF_ERR_MALFORMED; /* bytes 4-7 are padding or junk then */
  }
  *ssrc = get32(pkt.data + 4);
  return 0;
}

size_t dcmf_rtcp_strip_feedback(uint8_t *buf, size_t len, size_t *removed) {
  size_t out = 0; /* bytes kept so far, at the front of |buf| */
  size_t gone = 0;
  struct dcmf_rtcp_iter it;
  struct dcmf_rtcp_packet pkt;
  dcmf_rtcp_iter_init(&it, buf, len);
  /* The walk reads ahead of what is written: |out| never passes the
   * start of the packet being read, so memmove keeps it intact. */
  while (dcmf_rtcp_next(&it, &pkt) == 1) {
    if (pkt.type == DCMF_RTCP_RTPFB || pkt.type == DCMF_RTCP_PSFB) {
      gone++;
      continue;
    }
    size_t from = (size_t)(pkt.data - buf);
    if (from != out) {
      memmove(buf + out, pkt.data, pkt.len);
    }
    out += pkt.len;
  }
  if (removed != NULL) {
    *removed = gone;
  }
  /* An RFC 3550 receiver takes only a compound that starts with a
   * report (A.2); a reduced-size rest is dropped. */
  if (out == 0 || (buf[1] != DCMF_RTCP_SR && buf[1] != DCMF_RTCP_RR)) {
    return 0;
  }
  return out;
}
