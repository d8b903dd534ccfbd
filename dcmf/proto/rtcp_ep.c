/* The RTCP of one RTP endpoint (rtcp_ep.h says what and why). */
#include "rtcp_ep.h"

#include <string.h>

#include "errors.h"
#include "rtcp.h"

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* |base| ms times a factor uniform in [0.5, 1.5] (RFC 3550 §6.3.1). */
static uint64_t randomised(uint64_t base, uint32_t rand) {
  return base / 2 + ((base * (uint64_t)rand) >> 32);
}

void dcmf_rtcp_ep_init(struct dcmf_rtcp_ep *ep, const char *cname,
                       uint64_t min_ms, uint64_t now, uint32_t rand) {
  memset(ep, 0, sizeof(*ep));
  size_t n = cname != NULL ? strlen(cname) : 0;
  if (n > DCMF_RTCP_EP_CNAME_MAX) {
    n = DCMF_RTCP_EP_CNAME_MAX;
  }
  if (n > 0) {
    memcpy(ep->cname, cname, n);
  }
  ep->min_ms = min_ms != 0 ? min_ms : DCMF_RTCP_EP_MIN_MS;
  /* §6.2: the first compound may go after half the minimum. */
  ep->next = now + randomised(ep->min_ms / 2, rand);
}

uint64_t dcmf_rtcp_ep_next(const struct dcmf_rtcp_ep *ep) {
  return ep->next;
}

const struct dcmf_rtcp_ep_stats *
dcmf_rtcp_ep_get_stats(const struct dcmf_rtcp_ep *ep) {
  return &ep->stats;
}

/* The bytes of the SR or RR (with its block) and the SDES. */
static size_t report_len(const struct dcmf_rtcp_ep *ep,
                         const struct dcmf_rtcp_ep_state *st, int sr) {
  size_t n = (sr ? 28u : 8u) + (st->have_source ? 24u : 0u);
  /* SDES: header, SSRC, CNAME item, the END octet, padded to 32 bits */
  size_t items = 2 + strlen(ep->cname) + 1;
  return n + 8 + (items + 3) / 4 * 4;
}

/* The report block about the peer's source (RFC 3550 §6.4.1). */
static void put_block(struct dcmf_rtcp_ep *ep,
                      const struct dcmf_rtcp_ep_state *st, uint64_t now,
                      uint8_t *b) {
  /* The extended highest sequence number (A.1): cycles counted from
   * the 16-bit highest, forward steps only. */
  if (!ep->have_ext) {
    ep->ext_max = ep->prev_ext_max = st->source_max_seq;
    ep->have_ext = 1;
  } else {
    int16_t step = (int16_t)(st->source_max_seq - (uint16_t)ep->ext_max);
    if (step > 0) {
      ep->ext_max += (uint16_t)step;
    }
  }
  uint32_t expected = ep->ext_max - ep->prev_ext_max;
  uint32_t lost = st->source_lost - ep->prev_lost;
  uint32_t fraction = 0;
  if (expected != 0 && lost != 0 && lost <= expected) {
    fraction = (uint32_t)(((uint64_t)lost << 8) / expected);
    fraction = fraction > 255 ? 255 : fraction;
  }
  ep->prev_ext_max = ep->ext_max;
  ep->prev_lost = st->source_lost;
  uint32_t cum = st->source_lost > 0x7fffff ? 0x7fffff : st->source_lost;
  put32(b, st->source_ssrc);
  put32(b + 4, fraction << 24 | cum);
  put32(b + 8, ep->ext_max);
  put32(b + 12, 0); /* jitter: not measured on the text path */
  uint32_t dlsr = 0;
  if (ep->lsr != 0 && now >= ep->lsr_at) {
    uint64_t d = (now - ep->lsr_at) * 65536u / 1000u; /* 1/65536 s */
    dlsr = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
  }
  put32(b + 16, ep->lsr);
  put32(b + 20, ep->lsr != 0 ? dlsr : 0);
}

/* Writes the SR or RR and the SDES at |out|; returns the length. */
static size_t put_report(struct dcmf_rtcp_ep *ep,
                         const struct dcmf_rtcp_ep_state *st, uint64_t now,
                         int sr, uint8_t *out) {
  size_t at = 0;
  size_t rlen = (sr ? 28u : 8u) + (st->have_source ? 24u : 0u);
  out[0] = (uint8_t)(0x80 | (st->have_source ? 1 : 0));
  out[1] = sr ? DCMF_RTCP_SR : DCMF_RTCP_RR;
  put16(out + 2, (uint16_t)(rlen / 4 - 1));
  put32(out + 4, st->ssrc);
  at = 8;
  if (sr) {
    put32(out + 8, (uint32_t)(st->ntp >> 32));
    put32(out + 12, (uint32_t)st->ntp);
    put32(out + 16, st->rtp_ts);
    put32(out + 20, st->packets_sent);
    put32(out + 24, st->octets_sent);
    at = 28;
  }
  if (st->have_source) {
    put_block(ep, st, now, out + at);
    at += 24;
  }
  size_t cn = strlen(ep->cname);
  size_t slen = 8 + (2 + cn + 1 + 3) / 4 * 4;
  uint8_t *s = out + at;
  memset(s, 0, slen); /* the END item and the padding are zeros */
  s[0] = 0x81; /* one chunk */
  s[1] = DCMF_RTCP_SDES;
  put16(s + 2, (uint16_t)(slen / 4 - 1));
  put32(s + 4, st->ssrc);
  s[8] = 1; /* CNAME */
  s[9] = (uint8_t)cn;
  memcpy(s + 10, ep->cname, cn);
  return at + slen;
}

int dcmf_rtcp_ep_write(struct dcmf_rtcp_ep *ep,
                       const struct dcmf_rtcp_ep_state *st, uint64_t now,
                       uint32_t rand, uint8_t *out, size_t cap) {
  if (ep->next == DCMF_RTCP_EP_NEVER || now < ep->next) {
    return 0;
  }
  /* A sender since the last report (the first: since the start). */
  int sr = st->packets_sent != ep->last_packets ||
           (!ep->reported && st->packets_sent != 0);
  if (report_len(ep, st, sr) > cap) {
    return DCMF_ERR_TOO_LARGE;
  }
  size_t n = put_report(ep, st, now, sr, out);
  ep->last_packets = st->packets_sent;
  ep->reported = 1;
  if (sr) {
    ep->stats.sent_sr++;
  } else {
    ep->stats.sent_rr++;
  }
  ep->next = now + randomised(ep->min_ms, rand);
  return (int)n;
}

int dcmf_rtcp_ep_bye(struct dcmf_rtcp_ep *ep,
                     const struct dcmf_rtcp_ep_state *st, uint64_t now,
                     uint8_t *out, size_t cap) {
  int sr = st->packets_sent != ep->last_packets ||
           (!ep->reported && st->packets_sent != 0);
  size_t n = report_len(ep, st, sr);
  if (n + 8 > cap) {
    return DCMF_ERR_TOO_LARGE;
  }
  n = put_report(ep, st, now, sr, out);
  out[n] = 0x81; /* one source */
  out[n + 1] = DCMF_RTCP_BYE;
  put16(out + n + 2, 1);
  put32(out + n + 4, st->ssrc);
  ep->stats.sent_bye++;
  ep->next = DCMF_RTCP_EP_NEVER;
  return (int)(n + 8);
}

/* Report blocks of an SR or RR: counts those about |ours|. */
static void take_blocks(struct dcmf_rtcp_ep *ep,
                        const struct dcmf_rtcp_packet *p, uint32_t ours) {
  size_t first = p->type == DCMF_RTCP_SR ? 28 : 8;
  /* dcmf_rtcp_validate checked the packet holds |count| blocks. */
  for (size_t k = 0; k < p->count; k++) {
    const uint8_t *b = p->data + first + 24 * k;
    if (get32(b) != ours) {
      continue;
    }
    ep->stats.report_blocks++;
    ep->stats.peer_fraction_lost = b[4];
    ep->stats.peer_lost = get32(b + 4) & 0xffffff;
    ep->stats.peer_jitter = get32(b + 12);
  }
}

int dcmf_rtcp_ep_recv(struct dcmf_rtcp_ep *ep, const uint8_t *buf, size_t len,
                      uint32_t our_ssrc, uint64_t now) {
  if (dcmf_rtcp_validate(buf, len, 0) != 0) {
    ep->stats.malformed++;
    return DCMF_ERR_MALFORMED;
  }
  ep->stats.received++;
  struct dcmf_rtcp_iter it;
  struct dcmf_rtcp_packet p;
  int bye = 0;
  dcmf_rtcp_iter_init(&it, buf, len);
  while (dcmf_rtcp_next(&it, &p) == 1) {
    if (p.type == DCMF_RTCP_SR) {
      /* LSR: the middle 32 bits of the sender's NTP time (§6.4.1) */
      ep->lsr = get32(p.data + 10);
      ep->lsr_at = now;
      take_blocks(ep, &p, our_ssrc);
    } else if (p.type == DCMF_RTCP_RR) {
      take_blocks(ep, &p, our_ssrc);
    } else if (p.type == DCMF_RTCP_BYE) {
      bye = 1;
    }
  }
  if (bye) {
    ep->stats.byes++;
  }
  return 0;
}
