/*
 * t140_rx.c - the RTP -> DC half of the T.140 gateway engine: RTP
 * (RFC 3550 §5.1) and RFC 2198 §3 parsing, loss recovery from redundancy
 * (RFC 4103 §4), loss marking (RFC 4103 §5, RFC 8865 §6), ordering,
 * duplicates, and the cps limit toward the UE (RFC 8865 §4.2.1). The
 * contract is in t140.h.
 */
#include "t140.h"

#include <string.h>

/* The most redundant blocks taken from one packet (RFC 2198 allows any
 * number; RFC 4103 senders use a few). More is bad red. */
#define MAX_RED_BLOCKS 16

struct block {
  int usable;           /* the t140 PT and valid UTF-8 */
  const uint8_t *text;
  size_t len;
};

/* One parsed packet: blocks[0..n_red-1] are the redundant ones, oldest
 * first (generation n_red .. 1), blocks[n_red] the primary. */
struct packet {
  uint16_t seq;
  uint32_t ssrc;
  unsigned n_red;
  struct block blocks[MAX_RED_BLOCKS + 1];
};

void dcmf_t140_rx_init(struct dcmf_t140 *t, uint64_t now) {
  dcmf_t140_bucket_init(&t->rx_cps, t->set.cps_to_dc, now);
  t->rx_started = 0;
  t->rxq.len = 0;
  t->rxq.marked = 0;
  for (size_t i = 0; i < DCMF_T140_REORDER; i++) {
    t->stash[i].used = 0;
  }
}

static int rx_allowed(const struct dcmf_t140 *t) {
  return t->set.direction == DCMF_T140_SENDRECV ||
         t->set.direction == DCMF_T140_RECVONLY;
}

static uint16_t get16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static void set_block(struct block *b, int t140, const uint8_t *p,
                      size_t len) {
  b->text = p;
  b->len = len;
  b->usable = t140 && dcmf_t140_utf8_valid(p, len, NULL);
}

/* Parses |p|, |len| bytes; 0, or -1 after counting why it was dropped. */
static int parse(struct dcmf_t140 *t, const uint8_t *p, size_t len,
                 struct packet *pk) {
  if (len < 12) {
    t->stats.drop_truncated++;
    return -1;
  }
  if (p[0] >> 6 != 2) {
    t->stats.drop_version++;
    return -1;
  }
  size_t at = 12 + 4 * (size_t)(p[0] & 0x0f);
  if (at > len) {
    t->stats.drop_truncated++;
    return -1;
  }
  if (p[0] & 0x10) { /* extension: 4-octet header, length in words */
    if (at + 4 > len) {
      t->stats.drop_truncated++;
      return -1;
    }
    at += 4 + 4 * (size_t)get16(p + at + 2);
    if (at > len) {
      t->stats.drop_truncated++;
      return -1;
    }
  }
  size_t end = len;
  if (p[0] & 0x20) { /* padding: the last octet counts it, itself included */
    size_t pad = p[len - 1];
    if (pad == 0 || pad > end - at) {
      t->stats.drop_truncated++;
      return -1;
    }
    end -= pad;
  }
  unsigned pt = p[1] & 0x7f;
  pk->seq = get16(p + 2);
  pk->ssrc = get32(p + 8);
  pk->n_red = 0;
  if (pt == t->set.pt_t140) {
    set_block(&pk->blocks[0], 1, p + at, end - at);
    return 0;
  }
  if (!t->set.use_red || pt != t->set.pt_red || t->set.pt_red > 127) {
    t->stats.drop_pt++;
    return -1;
  }
  /* RFC 2198 §3: 4-octet headers with F=1 (F, block PT, 14-bit timestamp
   * offset, 10-bit length), then one octet with F=0 and the primary's PT;
   * the blocks follow in the same order, the primary taking the rest. */
  size_t hdr = at, data;
  unsigned n = 0;
  size_t lens[MAX_RED_BLOCKS];
  unsigned pts[MAX_RED_BLOCKS];
  for (;;) {
    if (hdr >= end) {
      t->stats.drop_red++;
      return -1;
    }
    if (!(p[hdr] & 0x80)) {
      break;
    }
    if (n == MAX_RED_BLOCKS || end - hdr < 4) {
      t->stats.drop_red++;
      return -1;
    }
    pts[n] = p[hdr] & 0x7f;
    lens[n] = (size_t)(p[hdr + 2] & 0x03) << 8 | p[hdr + 3];
    n++;
    hdr += 4;
  }
  unsigned primary_pt = p[hdr] & 0x7f;
  data = hdr + 1;
  for (unsigned i = 0; i < n; i++) {
    if (lens[i] > end - data) {
      t->stats.drop_red++;
      return -1;
    }
    set_block(&pk->blocks[i], pts[i] == t->set.pt_t140, p + data, lens[i]);
    data += lens[i];
  }
  set_block(&pk->blocks[n], primary_pt == t->set.pt_t140, p + data,
            end - data);
  pk->n_red = n;
  return 0;
}

/* ---- text toward the DC ---- */

static void rx_mark(struct dcmf_t140 *t) {
  if (dcmf_t140_textq_mark(&t->rxq)) {
    t->stats.markers_to_dc++;
  }
}

static void rx_deliver(struct dcmf_t140 *t, const struct block *b) {
  if (!b->usable) {
    t->stats.drop_utf8_rtp++;
    rx_mark(t);
    return;
  }
  if (dcmf_t140_textq_push(&t->rxq, b->text, b->len) != 0) {
    t->stats.overflow_to_dc++;
    rx_mark(t);
  }
}

/* Takes packet |pk| as the next one, recovering the gap before it from
 * its redundancy and marking what is beyond it. */
static void rx_take(struct dcmf_t140 *t, const struct packet *pk) {
  uint16_t gap = (uint16_t)(pk->seq - t->rx_expected);
  unsigned gens = pk->n_red;
  if (gap > gens) {
    t->stats.lost += (uint64_t)(gap - gens);
    rx_mark(t);
  }
  unsigned from = gap < gens ? gap : gens;
  for (unsigned k = from; k >= 1; k--) {
    /* Generation k sits at index n_red - k (oldest first). */
    rx_deliver(t, &pk->blocks[gens - k]);
    t->stats.recovered++;
  }
  rx_deliver(t, &pk->blocks[gens]);
  t->rx_expected = (uint16_t)(pk->seq + 1);
}

static struct dcmf_t140_slot *slot_of(struct dcmf_t140 *t, uint16_t seq) {
  return &t->stash[seq % DCMF_T140_REORDER];
}

/* The held packet nearest after the expected one, or NULL. */
static struct dcmf_t140_slot *rx_first_held(struct dcmf_t140 *t) {
  for (uint16_t d = 0; d < DCMF_T140_REORDER; d++) {
    struct dcmf_t140_slot *s = slot_of(t, (uint16_t)(t->rx_expected + d));
    if (s->used && s->seq == (uint16_t)(t->rx_expected + d)) {
      return s;
    }
  }
  return NULL;
}

/* How many packets are held, and since when the oldest of them waits
 * (the gap before the first held one is at least that old). */
static size_t rx_held(const struct dcmf_t140 *t, uint64_t *oldest) {
  size_t n = 0;
  *oldest = DCMF_T140_NEVER;
  for (size_t i = 0; i < DCMF_T140_REORDER; i++) {
    if (t->stash[i].used) {
      n++;
      if (t->stash[i].arrived < *oldest) {
        *oldest = t->stash[i].arrived;
      }
    }
  }
  return n;
}

/* Takes held packets in order while the next one is there, is rebuilt
 * from redundancy, or has waited long enough (or |force|). */
static void rx_drain(struct dcmf_t140 *t, uint64_t now, int force) {
  struct dcmf_t140_slot *s;
  while ((s = rx_first_held(t)) != NULL) {
    struct packet pk;
    uint16_t gap = (uint16_t)(s->seq - t->rx_expected);
    if (parse(t, s->bytes, s->len, &pk) != 0) { /* cannot happen: parsed */
      s->used = 0;
      continue;
    }
    uint64_t oldest;
    int full = rx_held(t, &oldest) >= DCMF_T140_REORDER - 1;
    if (gap > pk.n_red && !force && !full &&
        now < oldest + t->set.reorder_ms) {
      break;
    }
    rx_take(t, &pk);
    s->used = 0;
  }
}

void dcmf_t140_rtp_recv(struct dcmf_t140 *t, const uint8_t *pkt, size_t len,
                        uint64_t now) {
  if (!rx_allowed(t)) {
    t->stats.drop_direction++;
    return;
  }
  if (len > DCMF_T140_MAX_PACKET) {
    t->stats.drop_too_large++;
    return;
  }
  struct packet pk;
  if (parse(t, pkt, len, &pk) != 0) {
    return;
  }
  t->stats.rtp_received++;
  if (!t->rx_started || pk.ssrc != t->rx_ssrc) {
    /* A new sender (RFC 3550 §8.2): what was held from the old one is
     * taken as it is, then the sequence starts again. */
    if (t->rx_started) {
      rx_drain(t, now, 1);
    }
    for (size_t i = 0; i < DCMF_T140_REORDER; i++) {
      t->stash[i].used = 0;
    }
    t->rx_started = 1;
    t->rx_ssrc = pk.ssrc;
    t->rx_expected = pk.seq;
  }
  int16_t diff = (int16_t)(uint16_t)(pk.seq - t->rx_expected);
  if (diff < 0) {
    t->stats.drop_duplicate++;
    return;
  }
  if (diff >= DCMF_T140_REORDER) {
    /* Far ahead: what is held is taken, and the run up to this packet is
     * lost except what its own redundancy carries. */
    rx_drain(t, now, 1);
    if ((int16_t)(uint16_t)(pk.seq - t->rx_expected) < 0) {
      t->stats.drop_duplicate++;
      return;
    }
    rx_take(t, &pk);
    rx_drain(t, now, 0);
    return;
  }
  struct dcmf_t140_slot *s = slot_of(t, pk.seq);
  if (s->used) {
    t->stats.drop_duplicate++; /* the window holds one seq per slot */
    return;
  }
  s->used = 1;
  s->seq = pk.seq;
  s->len = (uint16_t)len;
  s->arrived = now;
  memcpy(s->bytes, pkt, len);
  rx_drain(t, now, 0);
}

size_t dcmf_t140_dc_write(struct dcmf_t140 *t, uint8_t *out, size_t cap,
                          uint64_t now) {
  rx_drain(t, now, 0);
  if (t->rxq.len == 0) {
    return 0;
  }
  size_t avail = dcmf_t140_bucket_avail(&t->rx_cps, now);
  size_t n = dcmf_t140_utf8_prefix(t->rxq.buf, t->rxq.len, avail, cap);
  if (n == 0) {
    return 0;
  }
  size_t chars = 0;
  (void)dcmf_t140_utf8_valid(t->rxq.buf, n, &chars);
  dcmf_t140_bucket_take(&t->rx_cps, chars);
  t->stats.chars_to_dc += chars;
  memcpy(out, t->rxq.buf, n);
  dcmf_t140_textq_pop(&t->rxq, n);
  return n;
}

uint64_t dcmf_t140_rx_expiry(const struct dcmf_t140 *t) {
  uint64_t at = DCMF_T140_NEVER;
  if (t->rxq.len > 0) {
    at = dcmf_t140_bucket_when(&t->rx_cps);
  }
  uint64_t oldest;
  if (rx_held(t, &oldest) > 0 && oldest + t->set.reorder_ms < at) {
    at = oldest + t->set.reorder_ms;
  }
  return at;
}
