/*
 * Fuzz target for the T.140 gateway engine (dcmf/proto/t140.h). The
 * first 4 input bytes choose the settings; the rest is a script of
 * operations: [op][len lo][len hi][len bytes]: RTP packet in, DC message
 * in, time passes, direction change (and a DC failure). Every packet engine A writes is
 * also fed to engine B (same settings), and B's own output is checked.
 *
 * Invariants (abort on violation):
 *   - every text written toward the DC is valid UTF-8;
 *   - every packet written is RTP version 2 with the configured SSRC and
 *     PT, its sequence number one more than the last, its timestamp
 *     larger, and with red its block lengths sum to the packet (RFC 2198
 *     §3 read here, not by the engine);
 *   - once both writers have been drained at a time, the next deadline
 *     is later than that time (no loop can spin without progress);
 *   - the counters only grow.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_oracle.h"
#include "t140.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_require(int cond) {
  if (!cond)
    abort();
}

struct sent {
  int any;
  uint16_t seq;
  uint32_t ts;
};

FUZZ_ORACLE static void check_packet(const struct dcmf_t140_settings *s,
                                     const uint8_t *p, size_t n,
                                     struct sent *last) {
  fuzz_require(n >= 12 && n <= DCMF_T140_MAX_PACKET);
  fuzz_require(p[0] == 0x80);
  unsigned pt = p[1] & 0x7f;
  fuzz_require(pt == (s->use_red ? s->pt_red : s->pt_t140));
  uint16_t seq = (uint16_t)(p[2] << 8 | p[3]);
  uint32_t ts = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
                (uint32_t)p[6] << 8 | p[7];
  uint32_t ssrc = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 |
                  (uint32_t)p[10] << 8 | p[11];
  fuzz_require(ssrc == s->ssrc);
  if (last->any) {
    fuzz_require(seq == (uint16_t)(last->seq + 1));
    fuzz_require((int32_t)(ts - last->ts) > 0);
  }
  last->any = 1;
  last->seq = seq;
  last->ts = ts;
  if (!s->use_red) {
    fuzz_require(dcmf_t140_utf8_valid(p + 12, n - 12, NULL));
    return;
  }
  size_t at = 12, blocks = 0;
  unsigned gens = 0;
  while (at < n && (p[at] & 0x80)) {
    fuzz_require(at + 4 <= n && (p[at] & 0x7f) == s->pt_t140);
    blocks += (size_t)(p[at + 2] & 3) << 8 | p[at + 3];
    gens++;
    at += 4;
  }
  fuzz_require(at < n && p[at] == s->pt_t140 && gens == s->generations);
  at++;
  fuzz_require(blocks <= n - at);
  fuzz_require(dcmf_t140_utf8_valid(p + at, n - at, NULL));
}

static void drain(struct dcmf_t140 *a, struct dcmf_t140 *b,
                  const struct dcmf_t140_settings *s, struct sent *sa,
                  struct sent *sb, uint64_t now) {
  static uint8_t pkt[DCMF_T140_MAX_PACKET];
  static uint8_t text[DCMF_T140_QUEUE];
  int n;
  for (int guard = 0; (n = dcmf_t140_rtp_write(a, pkt, sizeof(pkt), now)) > 0;
       guard++) {
    fuzz_require(guard < 4);
    check_packet(s, pkt, (size_t)n, sa);
    dcmf_t140_rtp_recv(b, pkt, (size_t)n, now);
  }
  fuzz_require(n == 0);
  for (int guard = 0; (n = dcmf_t140_rtp_write(b, pkt, sizeof(pkt), now)) > 0;
       guard++) {
    fuzz_require(guard < 4);
    check_packet(s, pkt, (size_t)n, sb);
  }
  fuzz_require(n == 0);
  struct dcmf_t140 *both[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    size_t m;
    while ((m = dcmf_t140_dc_write(both[i], text, sizeof(text), now)) > 0) {
      fuzz_require(m <= sizeof(text));
      fuzz_require(dcmf_t140_utf8_valid(text, m, NULL));
    }
    fuzz_require(dcmf_t140_next_expiry(both[i]) > now);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct dcmf_t140 a, b;
  if (size < 4 || size > 65536) {
    return 0;
  }
  struct dcmf_t140_settings s;
  dcmf_t140_settings_default(&s);
  s.use_red = data[0] & 1;
  s.generations = (unsigned)(data[0] >> 1) % (DCMF_T140_MAX_GENERATIONS + 1);
  s.buffer_ms = (unsigned)data[1] * 2u; /* 0 (= 300) .. 510: some refused */
  s.reorder_ms = (unsigned)(data[2] & 0x0f) * 100u;
  s.cps_to_dc = (unsigned)(data[2] >> 4) * 5u;
  s.cps_to_rtp = (unsigned)(data[3] & 0x0f) * 3u;
  s.keepalive_ms = (data[3] & 0x10) ? 700 : 15000;
  s.ssrc = 0x5eed;
  s.first_seq = 0xfff0;
  s.first_ts = 0xffffff00u;
  char err[128];
  if (dcmf_t140_init(&a, &s, 0, err, sizeof(err)) != 0) {
    return 0;
  }
  fuzz_require(dcmf_t140_init(&b, &s, 0, err, sizeof(err)) == 0);
  if (!s.use_red) {
    s.generations = 0;
  }
  struct sent sa = {0}, sb = {0};
  uint64_t now = 0;
  size_t at = 4;
  while (at + 3 <= size) {
    uint8_t op = data[at];
    size_t len = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
    at += 3;
    if (len > size - at) {
      len = size - at;
    }
    const uint8_t *arg = data + at;
    at += len;
    struct dcmf_t140_stats before = *dcmf_t140_get_stats(&b);
    switch (op & 3) {
    case 0:
      dcmf_t140_rtp_recv(&b, arg, len, now);
      break;
    case 1:
      dcmf_t140_dc_recv(&a, arg, len, now);
      break;
    case 2:
      now += (uint64_t)(op >> 2) * 37u + len;
      break;
    default:
      (void)dcmf_t140_set_direction(&a, (enum dcmf_t140_direction)(op >> 2 & 3));
      (void)dcmf_t140_set_direction(&b, (enum dcmf_t140_direction)(op >> 4 & 3));
      if (op & 0x40) {
        dcmf_t140_dc_failed(&a);
      }
      break;
    }
    drain(&a, &b, &s, &sa, &sb, now);
    const struct dcmf_t140_stats *after = dcmf_t140_get_stats(&b);
    fuzz_require(after->rtp_received >= before.rtp_received &&
                 after->lost >= before.lost &&
                 after->drop_red >= before.drop_red);
    /* Let the deadlines pass now and then, as the glue would. */
    uint64_t next = dcmf_t140_next_expiry(&a);
    uint64_t nb = dcmf_t140_next_expiry(&b);
    if (nb < next) {
      next = nb;
    }
    if ((op & 0x80) && next != DCMF_T140_NEVER && next - now < 20000) {
      now = next;
      drain(&a, &b, &s, &sa, &sb, now);
    }
  }
  return 0;
}
