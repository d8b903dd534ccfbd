/*
 * t140.c - the T.140 gateway engine: settings, UTF-8 and cps helpers,
 * and the DC -> RTP sender (RFC 4103 §4-5, RFC 2198 §3, RFC 3550 §5.1).
 * The RTP -> DC receiver is in t140_rx.c. The contract is in t140.h.
 */
#include "t140.h"

#include <string.h>

#include "errors.h"

#define MARKER_LEN 3
static const uint8_t marker[MARKER_LEN] = {0xef, 0xbf, 0xbd}; /* U+FFFD */

void dcmf_t140_settings_default(struct dcmf_t140_settings *s) {
  memset(s, 0, sizeof(*s));
  s->pt_t140 = 98;
  s->pt_red = 100;
  s->use_red = 1;
  s->generations = 2;
  s->buffer_ms = 300;
  s->keepalive_ms = 15000;
  s->reorder_ms = 1000;
  s->cps_to_dc = 30;
  s->direction = DCMF_T140_SENDRECV;
}

/* ---- UTF-8 (RFC 3629 §4) ---- */

/* The length of the character led by |b|, 0 if |b| cannot lead one. */
static size_t utf8_lead_len(uint8_t b) {
  if (b < 0x80) {
    return 1;
  }
  if (b >= 0xc2 && b <= 0xdf) {
    return 2;
  }
  if (b >= 0xe0 && b <= 0xef) {
    return 3;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    return 4;
  }
  return 0;
}

int dcmf_t140_utf8_valid(const uint8_t *p, size_t n, size_t *chars) {
  size_t i = 0, count = 0;
  while (i < n) {
    size_t len = utf8_lead_len(p[i]);
    if (len == 0 || len > n - i) {
      return 0;
    }
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) {
        return 0;
      }
    }
    /* The second byte's range rules out overlong 3- and 4-byte forms,
     * surrogates (ED A0..BF) and code points above U+10FFFF. */
    if ((p[i] == 0xe0 && p[i + 1] < 0xa0) ||
        (p[i] == 0xed && p[i + 1] > 0x9f) ||
        (p[i] == 0xf0 && p[i + 1] < 0x90) ||
        (p[i] == 0xf4 && p[i + 1] > 0x8f)) {
      return 0;
    }
    i += len;
    count++;
  }
  if (chars != NULL) {
    *chars = count;
  }
  return 1;
}

size_t dcmf_t140_utf8_prefix(const uint8_t *p, size_t n, size_t max_chars,
                             size_t max_bytes) {
  size_t i = 0, count = 0;
  while (i < n && count < max_chars) {
    size_t len = utf8_lead_len(p[i]);
    if (len == 0 || len > n - i || i + len > max_bytes) {
      break;
    }
    i += len;
    count++;
  }
  return i;
}

/* ---- text queues ---- */

int dcmf_t140_textq_mark(struct dcmf_t140_textq *q) {
  if (q->marked || q->len + MARKER_LEN > sizeof(q->buf)) {
    return 0;
  }
  memcpy(q->buf + q->len, marker, MARKER_LEN);
  q->len += MARKER_LEN;
  q->marked = 1;
  return 1;
}

int dcmf_t140_textq_push(struct dcmf_t140_textq *q, const uint8_t *p,
                         size_t n) {
  /* A mark may have used the room kept for it: |len| can then be past
   * sizeof(buf) - MARKER_LEN, and the subtraction must not wrap. */
  if (q->len > sizeof(q->buf) - MARKER_LEN ||
      n > sizeof(q->buf) - MARKER_LEN - q->len) {
    return DCMF_ERR_EXHAUSTED;
  }
  if (n > 0) {
    memcpy(q->buf + q->len, p, n);
    q->len += n;
    q->marked = 0;
  }
  return 0;
}

void dcmf_t140_textq_pop(struct dcmf_t140_textq *q, size_t n) {
  memmove(q->buf, q->buf + n, q->len - n);
  q->len -= n;
  if (q->len == 0) {
    q->marked = 0;
  }
}

/* ---- cps: one second's worth of tokens, refilled at 9/10 of cps ---- */

#define TOKENS_PER_CHAR 10000u

void dcmf_t140_bucket_init(struct dcmf_t140_bucket *b, unsigned cps,
                           uint64_t now) {
  b->cps = cps;
  b->tokens = (uint64_t)cps * TOKENS_PER_CHAR;
  b->at = now;
}

static void bucket_refill(struct dcmf_t140_bucket *b, uint64_t now) {
  if (now <= b->at) {
    return;
  }
  /* cps * 0.9 characters per second = cps * 9 tokens per millisecond. */
  uint64_t cap = (uint64_t)b->cps * TOKENS_PER_CHAR;
  uint64_t add = (now - b->at) * (uint64_t)b->cps * 9u;
  b->tokens = add >= cap - b->tokens ? cap : b->tokens + add;
  b->at = now;
}

size_t dcmf_t140_bucket_avail(struct dcmf_t140_bucket *b, uint64_t now) {
  if (b->cps == 0) {
    return SIZE_MAX;
  }
  bucket_refill(b, now);
  return (size_t)(b->tokens / TOKENS_PER_CHAR);
}

void dcmf_t140_bucket_take(struct dcmf_t140_bucket *b, size_t chars) {
  if (b->cps == 0) {
    return;
  }
  uint64_t cost = (uint64_t)chars * TOKENS_PER_CHAR;
  b->tokens = cost >= b->tokens ? 0 : b->tokens - cost;
}

uint64_t dcmf_t140_bucket_when(const struct dcmf_t140_bucket *b) {
  if (b->cps == 0 || b->tokens >= TOKENS_PER_CHAR) {
    return b->at;
  }
  uint64_t rate = (uint64_t)b->cps * 9u;
  uint64_t need = TOKENS_PER_CHAR - b->tokens;
  return b->at + (need + rate - 1) / rate;
}

/* ---- set-up ---- */

int dcmf_t140_init(struct dcmf_t140 *t, const struct dcmf_t140_settings *s,
                   uint64_t now, char *err, size_t errlen) {
  if (s->pt_t140 > 127 || (s->use_red && s->pt_red > 127)) {
    return dcmf_invalid(err, errlen, "t140: payload type above 127");
  }
  /* Without red its PT is not negotiated (a core answering t140 alone
   * may well use red's default number for t140). */
  if (s->use_red && s->pt_red == s->pt_t140) {
    return dcmf_invalid(err, errlen, "t140: t140 and red share PT %u",
                        s->pt_t140);
  }
  if (s->generations > DCMF_T140_MAX_GENERATIONS) {
    return dcmf_invalid(err, errlen, "t140: %u generations (at most %d)",
                        s->generations, DCMF_T140_MAX_GENERATIONS);
  }
  if (s->buffer_ms > 500) {
    return dcmf_invalid(err, errlen,
                        "t140: buffer %u ms (RFC 8865 §5.3: at most 500)",
                        s->buffer_ms);
  }
  if ((unsigned)s->direction > DCMF_T140_INACTIVE) {
    return dcmf_invalid(err, errlen, "t140: bad direction");
  }
  memset(t, 0, sizeof(*t));
  t->set = *s;
  if (t->set.buffer_ms == 0) {
    t->set.buffer_ms = 300;
  }
  if (t->set.cps_to_dc == 0) {
    t->set.cps_to_dc = 30;
  }
  if (!t->set.use_red) {
    t->set.generations = 0;
  }
  dcmf_t140_bucket_init(&t->tx_cps, t->set.cps_to_rtp, now);
  t->seq = s->first_seq;
  t->ts_origin = s->first_ts;
  t->now_origin = now;
  t->last_send = now; /* the first keep-alive is keepalive_ms from here */
  t->idle = 1;
  dcmf_t140_rx_init(t, now);
  return 0;
}

int dcmf_t140_restart(struct dcmf_t140 *t, const struct dcmf_t140_settings *s,
                      uint64_t now, char *err, size_t errlen) {
  /* ~8 KiB on the stack: the text survives the reset. */
  struct dcmf_t140_textq txq = t->txq, rxq = t->rxq;
  struct dcmf_t140_stats stats = t->stats;
  int had_rx = t->rx_started;
  int rv = dcmf_t140_init(t, s, now, err, errlen);
  if (rv != 0) {
    return rv; /* init checks before it touches |t| */
  }
  t->txq = txq;
  t->rxq = rxq;
  t->stats = stats;
  if (had_rx && (t->set.direction == DCMF_T140_SENDRECV ||
                 t->set.direction == DCMF_T140_RECVONLY) &&
      dcmf_t140_textq_mark(&t->rxq)) {
    t->stats.markers_to_dc++;
  }
  return 0;
}

/* A new limit for |b|: the tokens it had stay, up to the new size. */
static void bucket_change(struct dcmf_t140_bucket *b, unsigned cps,
                          uint64_t now) {
  if (b->cps == cps) {
    return;
  }
  uint64_t had = UINT64_MAX;
  if (b->cps != 0) {
    bucket_refill(b, now);
    had = b->tokens;
  }
  dcmf_t140_bucket_init(b, cps, now);
  if (had < b->tokens) {
    b->tokens = had;
  }
}

void dcmf_t140_set_cps(struct dcmf_t140 *t, unsigned cps_to_dc,
                       unsigned cps_to_rtp, uint64_t now) {
  t->set.cps_to_dc = cps_to_dc == 0 ? 30 : cps_to_dc;
  t->set.cps_to_rtp = cps_to_rtp;
  bucket_change(&t->rx_cps, t->set.cps_to_dc, now);
  bucket_change(&t->tx_cps, t->set.cps_to_rtp, now);
}

int dcmf_t140_set_direction(struct dcmf_t140 *t, enum dcmf_t140_direction d) {
  if ((unsigned)d > DCMF_T140_INACTIVE) {
    return DCMF_ERR_INVALID;
  }
  t->set.direction = d;
  return 0;
}

const struct dcmf_t140_stats *dcmf_t140_get_stats(const struct dcmf_t140 *t) {
  return &t->stats;
}

static int tx_allowed(const struct dcmf_t140 *t) {
  return t->set.direction == DCMF_T140_SENDRECV ||
         t->set.direction == DCMF_T140_SENDONLY;
}

/* ---- DC -> RTP ---- */

static void tx_mark(struct dcmf_t140 *t) {
  if (dcmf_t140_textq_mark(&t->txq)) {
    t->stats.markers_to_rtp++;
  }
}

void dcmf_t140_dc_recv(struct dcmf_t140 *t, const uint8_t *msg, size_t len,
                       uint64_t now) {
  (void)now;
  if (!tx_allowed(t)) {
    t->stats.drop_direction++;
    return;
  }
  if (!dcmf_t140_utf8_valid(msg, len, NULL)) {
    t->stats.drop_utf8_dc++;
    tx_mark(t);
    return;
  }
  if (dcmf_t140_textq_push(&t->txq, msg, len) != 0) {
    t->stats.overflow_to_rtp++;
    tx_mark(t);
  }
}

void dcmf_t140_dc_failed(struct dcmf_t140 *t) {
  if (tx_allowed(t)) {
    tx_mark(t);
  }
}

/* The 1000 Hz timestamp for |now|, never equal to the last one sent. */
static uint32_t tx_timestamp(struct dcmf_t140 *t, uint64_t now) {
  uint32_t ts = t->ts_origin + (uint32_t)(now - t->now_origin);
  if (t->sent_any && (int32_t)(ts - t->last_ts) <= 0) {
    ts = t->last_ts + 1;
  }
  return ts;
}

/* The characters the next primary may carry at |now|. */
static size_t tx_sendable(struct dcmf_t140 *t, uint64_t now) {
  if (t->txq.len == 0) {
    return 0;
  }
  size_t avail = dcmf_t140_bucket_avail(&t->tx_cps, now);
  size_t max_block = DCMF_T140_PACKET_TEXT / (t->set.generations + 1);
  return dcmf_t140_utf8_prefix(t->txq.buf, t->txq.len, avail, max_block);
}

/* When the next packet is due (DCMF_T140_NEVER when none is). */
static uint64_t tx_due(const struct dcmf_t140 *t) {
  if (!tx_allowed(t)) {
    return DCMF_T140_NEVER;
  }
  uint64_t tick = t->last_send + t->set.buffer_ms;
  if (t->txq.len > 0) {
    uint64_t ready = dcmf_t140_bucket_when(&t->tx_cps);
    uint64_t at = t->idle ? ready : (ready > tick ? ready : tick);
    /* While redundancy is owed the clock ticks anyway. */
    return !t->idle && t->red_left > 0 && tick < at ? tick : at;
  }
  if (!t->idle) {
    return tick;
  }
  if (t->set.keepalive_ms == 0) {
    return DCMF_T140_NEVER;
  }
  return t->last_send + t->set.keepalive_ms;
}

static void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v);
}

/* The packet sent |k| packets before the next one (k = 1: the last). */
static const struct dcmf_t140_hist *tx_hist(const struct dcmf_t140 *t,
                                            unsigned k) {
  unsigned n = t->set.generations;
  return &t->hist[(t->hist_head + n + 1 - k) % n];
}

int dcmf_t140_rtp_write(struct dcmf_t140 *t, uint8_t *out, size_t cap,
                        uint64_t now) {
  uint64_t due = tx_due(t);
  if (due == DCMF_T140_NEVER || now < due) {
    return 0;
  }
  size_t text = tx_sendable(t, now);
  unsigned gens = t->set.generations;
  size_t red_bytes = 0;
  for (unsigned k = 1; k <= gens && t->sent_any; k++) {
    red_bytes += tx_hist(t, k)->len;
  }
  size_t len = 12 + (t->set.use_red ? 4 * (size_t)gens + 1 : 0) +
               red_bytes + text;
  if (len > cap) {
    return DCMF_ERR_TOO_LARGE;
  }
  uint32_t ts = tx_timestamp(t, now);
  int marker_bit = text > 0 && t->idle;
  int keepalive = text == 0 && t->idle;
  out[0] = 0x80; /* V=2, no padding, no extension, no CSRC */
  out[1] = (uint8_t)((marker_bit ? 0x80 : 0) |
                     (t->set.use_red ? t->set.pt_red : t->set.pt_t140));
  put16(out + 2, t->seq);
  put32(out + 4, ts);
  put32(out + 8, t->set.ssrc);
  size_t at = 12;
  if (t->set.use_red) {
    /* RFC 2198 §3: F=1 headers, oldest block first, then the primary's. */
    for (unsigned k = gens; k >= 1; k--) {
      const struct dcmf_t140_hist *h = tx_hist(t, k);
      uint32_t off = t->sent_any ? ts - h->ts : 0;
      uint32_t blen = t->sent_any ? h->len : 0;
      if (off > 0x3fff) {
        /* Only an empty block can be this old (redundancy ends within
         * generations * buffer_ms); its offset carries nothing. */
        off = 0;
      }
      out[at] = (uint8_t)(0x80 | t->set.pt_t140);
      out[at + 1] = (uint8_t)(off >> 6);
      out[at + 2] = (uint8_t)((off & 0x3f) << 2 | blen >> 8);
      out[at + 3] = (uint8_t)blen;
      at += 4;
    }
    out[at++] = t->set.pt_t140;
    for (unsigned k = gens; k >= 1; k--) {
      const struct dcmf_t140_hist *h = tx_hist(t, k);
      if (t->sent_any && h->len > 0) {
        memcpy(out + at, h->text, h->len);
        at += h->len;
      }
    }
  }
  memcpy(out + at, t->txq.buf, text);
  at += text;
  /* The primary becomes the newest generation. */
  if (gens > 0) {
    if (!t->sent_any) {
      memset(t->hist, 0, sizeof(t->hist));
    }
    t->hist_head = (t->hist_head + 1) % gens;
    struct dcmf_t140_hist *h = &t->hist[t->hist_head];
    h->ts = ts;
    h->len = (uint16_t)text;
    memcpy(h->text, t->txq.buf, text);
  }
  if (text > 0) {
    size_t chars = 0;
    (void)dcmf_t140_utf8_valid(t->txq.buf, text, &chars);
    dcmf_t140_bucket_take(&t->tx_cps, chars);
    t->stats.chars_to_rtp += chars;
    dcmf_t140_textq_pop(&t->txq, text);
    /* With no redundancy one empty T140block still starts the idle
     * period (RFC 4103 §5.2). */
    t->red_left = gens > 0 ? gens : 1;
    t->idle = 0;
  } else if (keepalive) {
    t->stats.keepalives_sent++;
  } else if (t->red_left > 0) {
    t->red_left--;
  }
  if (text == 0 && t->red_left == 0) {
    t->idle = 1;
  }
  t->seq++;
  t->last_ts = ts;
  t->last_send = now;
  t->sent_any = 1;
  t->stats.rtp_sent++;
  return (int)at;
}

uint64_t dcmf_t140_next_expiry(const struct dcmf_t140 *t) {
  uint64_t tx = tx_due(t);
  uint64_t rx = dcmf_t140_rx_expiry(t);
  return tx < rx ? tx : rx;
}

uint64_t dcmf_t140_tx_expiry(const struct dcmf_t140 *t) {
  return tx_due(t);
}
