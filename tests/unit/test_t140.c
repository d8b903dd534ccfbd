/*
 * The T.140 gateway engine (dcmf/proto/t140.h) with a fake clock. The
 * packets it writes are read here field by field from the figures of
 * RFC 3550 §5.1 and RFC 2198 §3 (not with the engine's parser), and the
 * packets fed to it are built the same way: buffering, redundancy
 * generations and their offsets, the M bit after idle, unique
 * timestamps, keep-alives, loss recovered by redundancy and marked past
 * it, reordering, duplicates, the cps limits, direction, hostile bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "t140.h"

#define FFFD "\xef\xbf\xbd"

/* A packet as RFC 3550 §5.1 / RFC 2198 §3 lay it out. */
struct rd {
  int m, pt;
  uint16_t seq;
  uint32_t ts, ssrc;
  int nblocks;            /* redundant blocks, then the primary */
  int bpt[8];
  uint32_t off[8];
  char text[8][1024];
  size_t len[8];
};

static void read_packet(const uint8_t *p, size_t n, int red_pt, struct rd *r) {
  memset(r, 0, sizeof(*r));
  assert_true(n >= 12);
  assert_int_equal(p[0], 0x80); /* V=2, P=0, X=0, CC=0 */
  r->m = p[1] >> 7;
  r->pt = p[1] & 0x7f;
  r->seq = (uint16_t)(p[2] << 8 | p[3]);
  r->ts = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
  r->ssrc = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
  size_t at = 12;
  if (r->pt != red_pt) {
    r->nblocks = 1;
    r->bpt[0] = r->pt;
    r->len[0] = n - at;
    memcpy(r->text[0], p + at, n - at);
    return;
  }
  int k = 0;
  while (p[at] & 0x80) {
    r->bpt[k] = p[at] & 0x7f;
    r->off[k] = (uint32_t)(p[at + 1] << 6 | p[at + 2] >> 2);
    r->len[k] = (size_t)((p[at + 2] & 3) << 8 | p[at + 3]);
    k++;
    at += 4;
  }
  r->bpt[k] = p[at] & 0x7f;
  at++;
  for (int i = 0; i < k; i++) {
    memcpy(r->text[i], p + at, r->len[i]);
    at += r->len[i];
  }
  r->len[k] = n - at;
  memcpy(r->text[k], p + at, n - at);
  r->nblocks = k + 1;
}

static void setup_engine(struct dcmf_t140 *t, struct dcmf_t140_settings *s,
                         uint64_t now) {
  char err[128];
  assert_int_equal(dcmf_t140_init(t, s, now, err, sizeof(err)), 0);
}

static struct dcmf_t140 eng_a, eng_b; /* ~40 KiB each: not on the stack */

static void defaults(struct dcmf_t140_settings *s) {
  dcmf_t140_settings_default(s);
  s->ssrc = 0x11223344;
  s->first_seq = 65533; /* wraps within the tests */
  s->first_ts = 0xfffffe00u;
}

/* Writes the packet due at |now| (asserting there is one). */
static size_t due(struct dcmf_t140 *t, uint64_t now, uint8_t *out) {
  int n = dcmf_t140_rtp_write(t, out, DCMF_T140_MAX_PACKET, now);
  assert_true(n > 0);
  return (size_t)n;
}

static void none_due(struct dcmf_t140 *t, uint64_t now) {
  uint8_t out[DCMF_T140_MAX_PACKET];
  assert_int_equal(dcmf_t140_rtp_write(t, out, sizeof(out), now), 0);
}

static void send_text(struct dcmf_t140 *t, const char *s, uint64_t now) {
  dcmf_t140_dc_recv(t, (const uint8_t *)s, strlen(s), now);
}

static void test_buffering_and_redundancy(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  setup_engine(&eng_a, &s, 1000);
  uint8_t p[DCMF_T140_MAX_PACKET];
  struct rd r;
  none_due(&eng_a, 1000);
  /* Idle: the first text leaves at once, with M (RFC 4103 §3, §5). */
  send_text(&eng_a, "a", 1000);
  read_packet(p, due(&eng_a, 1000, p), 100, &r);
  assert_int_equal(r.pt, 100);
  assert_int_equal(r.m, 1);
  assert_int_equal(r.seq, 65533);
  assert_int_equal(r.ts, 0xfffffe00u);
  assert_int_equal(r.ssrc, 0x11223344);
  assert_int_equal(r.nblocks, 3); /* two generations + primary */
  assert_int_equal(r.bpt[0], 98);
  assert_int_equal(r.bpt[2], 98);
  assert_int_equal(r.len[0] + r.len[1], 0);
  assert_int_equal(r.len[2], 1);
  assert_memory_equal(r.text[2], "a", 1);
  /* Text within the buffer time waits for the 300 ms tick. */
  send_text(&eng_a, "bc", 1050);
  none_due(&eng_a, 1050);
  none_due(&eng_a, 1299);
  assert_int_equal(dcmf_t140_next_expiry(&eng_a), 1300);
  read_packet(p, due(&eng_a, 1300, p), 100, &r);
  assert_int_equal(r.m, 0);
  assert_int_equal(r.seq, 65534);
  assert_int_equal(r.ts, 0xfffffe00u + 300);
  assert_int_equal(r.len[2], 2);
  assert_memory_equal(r.text[2], "bc", 2);
  assert_int_equal(r.len[1], 1); /* generation 1: "a", 300 ms before */
  assert_memory_equal(r.text[1], "a", 1);
  assert_int_equal(r.off[1], 300);
  assert_int_equal(r.len[0], 0);
  /* No more text: empty primaries until "bc" went twice as redundancy. */
  read_packet(p, due(&eng_a, 1600, p), 100, &r);
  assert_int_equal(r.len[2], 0);
  assert_memory_equal(r.text[1], "bc", 2);
  assert_int_equal(r.off[1], 300);
  assert_memory_equal(r.text[0], "a", 1);
  assert_int_equal(r.off[0], 600);
  read_packet(p, due(&eng_a, 1900, p), 100, &r);
  assert_int_equal(r.len[2] + r.len[1], 0);
  assert_memory_equal(r.text[0], "bc", 2);
  assert_int_equal(r.seq, 0); /* wrapped */
  assert_int_equal(r.ts, 0xfffffe00u + 900);
  /* Idle now: the next packet is the keep-alive, 15 s on. */
  assert_int_equal(dcmf_t140_next_expiry(&eng_a), 1900 + 15000);
  none_due(&eng_a, 2200);
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->rtp_sent, 4);
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->chars_to_rtp, 3);
}

static void test_no_red_one_empty_block(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  s.use_red = 0;
  s.buffer_ms = 500;
  setup_engine(&eng_a, &s, 0);
  uint8_t p[DCMF_T140_MAX_PACKET];
  struct rd r;
  send_text(&eng_a, "hi", 10);
  read_packet(p, due(&eng_a, 10, p), 100, &r);
  assert_int_equal(r.pt, 98);
  assert_int_equal(r.m, 1);
  assert_memory_equal(r.text[0], "hi", 2);
  none_due(&eng_a, 509);
  /* One empty T140block starts the idle period (RFC 4103 §5.2). */
  read_packet(p, due(&eng_a, 510, p), 100, &r);
  assert_int_equal(r.pt, 98);
  assert_int_equal(r.len[0], 0);
  assert_int_equal(dcmf_t140_next_expiry(&eng_a), 510 + 15000);
}

static void test_generations_configurable(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  s.generations = 4;
  setup_engine(&eng_a, &s, 0);
  uint8_t p[DCMF_T140_MAX_PACKET];
  struct rd r;
  send_text(&eng_a, "x", 0);
  read_packet(p, due(&eng_a, 0, p), 100, &r);
  assert_int_equal(r.nblocks, 5);
  for (int k = 1; k <= 4; k++) {
    read_packet(p, due(&eng_a, (uint64_t)k * 300, p), 100, &r);
    /* "x" sits at generation k: index 4 - k, offset k * 300. */
    assert_int_equal(r.len[4 - k], 1);
    assert_int_equal(r.off[4 - k], (uint32_t)k * 300);
  }
  assert_int_equal(dcmf_t140_next_expiry(&eng_a), 1200 + 15000);
}

static void test_m_bit_after_idle_only(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  setup_engine(&eng_a, &s, 0);
  uint8_t p[DCMF_T140_MAX_PACKET];
  struct rd r;
  send_text(&eng_a, "a", 0);
  read_packet(p, due(&eng_a, 0, p), 100, &r);
  assert_int_equal(r.m, 1);
  send_text(&eng_a, "b", 100);
  read_packet(p, due(&eng_a, 300, p), 100, &r);
  assert_int_equal(r.m, 0);
  read_packet(p, due(&eng_a, 600, p), 100, &r);
  assert_int_equal(r.m, 0);
  /* Text while redundancy is still owed: not after idle, no M. */
  send_text(&eng_a, "c", 700);
  read_packet(p, due(&eng_a, 900, p), 100, &r);
  assert_int_equal(r.m, 0);
  assert_memory_equal(r.text[2], "c", 1);
  read_packet(p, due(&eng_a, 1200, p), 100, &r);
  read_packet(p, due(&eng_a, 1500, p), 100, &r);
  assert_int_equal(r.m, 0);
  /* Idle from here; a keep-alive does not end idle and has no M. */
  read_packet(p, due(&eng_a, 16500, p), 100, &r);
  assert_int_equal(r.m, 0);
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->keepalives_sent, 1);
  send_text(&eng_a, "d", 20000);
  read_packet(p, due(&eng_a, 20000, p), 100, &r);
  assert_int_equal(r.m, 1);
  assert_memory_equal(r.text[2], "d", 1);
}

static void test_unique_timestamps(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  s.keepalive_ms = 100;
  s.buffer_ms = 1;
  setup_engine(&eng_a, &s, 0);
  uint8_t p[DCMF_T140_MAX_PACKET];
  struct rd r;
  read_packet(p, due(&eng_a, 100, p), 100, &r); /* keep-alive */
  uint32_t ka = r.ts;
  /* Text in the same millisecond as the keep-alive leaves at once. */
  send_text(&eng_a, "z", 100);
  read_packet(p, due(&eng_a, 100, p), 100, &r);
  assert_int_equal(r.ts, ka + 1);
  uint32_t last = r.ts;
  uint16_t seq = r.seq;
  /* Every later packet: a new, larger timestamp and the next seq. */
  for (uint64_t now = 101; now < 140; now++) {
    int n = dcmf_t140_rtp_write(&eng_a, p, sizeof(p), now);
    if (now % 7 == 0) {
      send_text(&eng_a, "y", now);
    }
    if (n > 0) {
      read_packet(p, (size_t)n, 100, &r);
      assert_true((int32_t)(r.ts - last) > 0);
      assert_int_equal(r.seq, (uint16_t)(seq + 1));
      last = r.ts;
      seq = r.seq;
    }
  }
}

static void test_keepalive_and_direction(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  s.keepalive_ms = 2000;
  setup_engine(&eng_a, &s, 500);
  uint8_t p[DCMF_T140_MAX_PACKET];
  struct rd r;
  assert_int_equal(dcmf_t140_next_expiry(&eng_a), 2500);
  none_due(&eng_a, 2499);
  read_packet(p, due(&eng_a, 2500, p), 100, &r);
  assert_int_equal(r.nblocks, 3);
  assert_int_equal(r.len[0] + r.len[1] + r.len[2], 0);
  read_packet(p, due(&eng_a, 4500, p), 100, &r);
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->keepalives_sent, 2);
  /* recvonly: the UE does not send; no RTP at all, DC text dropped. */
  assert_int_equal(dcmf_t140_set_direction(&eng_a, DCMF_T140_RECVONLY), 0);
  send_text(&eng_a, "q", 5000);
  none_due(&eng_a, 99999);
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->drop_direction, 1);
  assert_int_equal(dcmf_t140_set_direction(&eng_a, (enum dcmf_t140_direction)7),
                   DCMF_ERR_INVALID);
}

/* Runs |a| from |from| to |to| and passes each packet to |b| unless
 * drop(index) says so; returns the number of packets. */
static int relay(struct dcmf_t140 *a, struct dcmf_t140 *b, uint64_t from,
                 uint64_t to, const int *drops, int ndrops, int *index) {
  uint8_t p[DCMF_T140_MAX_PACKET];
  int count = 0;
  uint64_t now = from;
  while (now <= to) {
    int n;
    while ((n = dcmf_t140_rtp_write(a, p, sizeof(p), now)) > 0) {
      int lost = 0;
      for (int i = 0; i < ndrops; i++) {
        lost |= drops[i] == *index;
      }
      if (!lost) {
        dcmf_t140_rtp_recv(b, p, (size_t)n, now);
      }
      (*index)++;
      count++;
    }
    uint64_t next = dcmf_t140_next_expiry(a);
    if (next > to || next == DCMF_T140_NEVER) {
      break;
    }
    now = next > now ? next : now + 1;
  }
  return count;
}

static size_t take_dc(struct dcmf_t140 *b, uint64_t now, char *out,
                      size_t cap) {
  size_t total = 0, n;
  while ((n = dcmf_t140_dc_write(b, (uint8_t *)out + total,
                                 cap - 1 - total, now)) > 0) {
    total += n;
  }
  out[total] = 0;
  return total;
}

/* "a".."e" typed 300 ms apart: one packet each, then two empty ones. */
static void type_and_relay(const int *drops, int ndrops, char *got,
                           unsigned reorder_ms) {
  struct dcmf_t140_settings s;
  defaults(&s);
  s.reorder_ms = reorder_ms;
  setup_engine(&eng_a, &s, 0);
  setup_engine(&eng_b, &s, 0);
  int index = 0;
  const char *letters[] = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 5; i++) {
    send_text(&eng_a, letters[i], (uint64_t)i * 300);
    relay(&eng_a, &eng_b, (uint64_t)i * 300, (uint64_t)i * 300, drops, ndrops,
          &index);
  }
  relay(&eng_a, &eng_b, 1201, 5000, drops, ndrops, &index);
  take_dc(&eng_b, 10000, got, 256);
}

static void test_loss_recovered_by_redundancy(void **state) {
  (void)state;
  char got[256];
  int drops[] = {1, 2}; /* "b" and "c": two generations cover them */
  type_and_relay(drops, 2, got, 1000);
  assert_string_equal(got, "abcde");
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->recovered, 2);
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->lost, 0);
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->markers_to_dc, 0);
  int tail[] = {5, 6}; /* both empty packets after "e": "e" still there */
  type_and_relay(tail, 2, got, 1000);
  assert_string_equal(got, "abcde");
}

static void test_loss_past_redundancy_marked(void **state) {
  (void)state;
  char got[256];
  int drops[] = {1, 2, 3}; /* "b" is beyond two generations of "e" */
  type_and_relay(drops, 3, got, 0);
  assert_string_equal(got, "a" FFFD "cde");
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->lost, 1);
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->recovered, 2);
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->markers_to_dc, 1);
  /* With a reorder wait the packet is held, then marked on time out. */
  type_and_relay(drops, 3, got, 1000);
  assert_string_equal(got, "a" FFFD "cde");
}

/* An RTP packet built by hand: t140 PT 98 or red PT 100 with |nred|
 * redundant texts (oldest first). */
static size_t build(uint8_t *p, uint16_t seq, uint32_t ts, uint32_t ssrc,
                    const char *primary, int nred, const char **red) {
  p[0] = 0x80;
  p[1] = nred < 0 ? 98 : 100;
  p[2] = (uint8_t)(seq >> 8);
  p[3] = (uint8_t)seq;
  for (int i = 0; i < 4; i++) {
    p[4 + i] = (uint8_t)(ts >> (24 - 8 * i));
    p[8 + i] = (uint8_t)(ssrc >> (24 - 8 * i));
  }
  size_t at = 12;
  if (nred >= 0) {
    for (int i = 0; i < nred; i++) {
      size_t l = strlen(red[i]);
      uint32_t off = (uint32_t)(nred - i) * 300;
      p[at] = 0x80 | 98;
      p[at + 1] = (uint8_t)(off >> 6);
      p[at + 2] = (uint8_t)((off & 0x3f) << 2 | l >> 8);
      p[at + 3] = (uint8_t)l;
      at += 4;
    }
    p[at++] = 98;
    for (int i = 0; i < nred; i++) {
      memcpy(p + at, red[i], strlen(red[i]));
      at += strlen(red[i]);
    }
  }
  memcpy(p + at, primary, strlen(primary));
  return at + strlen(primary);
}

static void test_reorder_and_duplicates(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  setup_engine(&eng_b, &s, 0);
  uint8_t p[64];
  char got[256];
  /* Plain t140 (no red): 10, 12, 11, 11, 10, 13 -> "abcd". */
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 10, 0, 5, "a", -1, NULL), 0);
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 12, 600, 5, "c", -1, NULL), 10);
  take_dc(&eng_b, 20, got, sizeof(got));
  assert_string_equal(got, "a"); /* "c" waits for 11 */
  assert_int_equal(dcmf_t140_next_expiry(&eng_b), 10 + 1000);
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 11, 300, 5, "b", -1, NULL), 30);
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 11, 300, 5, "b", -1, NULL), 40);
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 10, 0, 5, "a", -1, NULL), 50);
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 13, 900, 5, "d", -1, NULL), 60);
  take_dc(&eng_b, 70, got, sizeof(got));
  assert_string_equal(got, "bcd");
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->drop_duplicate, 2);
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->lost, 0);
  /* With red, 15 before 14: 15 rebuilds 14; 14 is then a duplicate. */
  const char *r15[] = {"d", "e"};
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 15, 1500, 5, "f", 2, r15), 80);
  const char *r14[] = {"", "d"};
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 14, 1200, 5, "e", 2, r14), 90);
  take_dc(&eng_b, 100, got, sizeof(got));
  assert_string_equal(got, "ef");
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->drop_duplicate, 3);
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->recovered, 1);
  /* A new SSRC starts again wherever its sequence is. */
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 40000, 0, 6, "g", -1, NULL), 110);
  take_dc(&eng_b, 120, got, sizeof(got));
  assert_string_equal(got, "g");
  /* A jump far ahead: marked, taken at once. */
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 40100, 0, 6, "h", -1, NULL), 130);
  take_dc(&eng_b, 140, got, sizeof(got));
  assert_string_equal(got, FFFD "h");
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->lost, 99);
}

static void test_cps_toward_dc(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  s.cps_to_dc = 10;
  setup_engine(&eng_b, &s, 0);
  uint8_t p[1100];
  char text[201];
  for (int i = 0; i < 200; i++) {
    text[i] = (char)('0' + i % 10);
  }
  text[200] = 0;
  dcmf_t140_rtp_recv(&eng_b, p, build(p, 1, 0, 5, text, -1, NULL), 0);
  /* 200 characters at 10 cps: no 10 s window holds more than 100, and
   * one second's burst at most. */
  static size_t per_ms[30001];
  memset(per_ms, 0, sizeof(per_ms));
  size_t total = 0;
  uint64_t now = 0;
  char out[256];
  while (total < 200 && now <= 30000) {
    size_t n = take_dc(&eng_b, now, out, sizeof(out));
    per_ms[now] = n;
    total += n;
    uint64_t next = dcmf_t140_next_expiry(&eng_b);
    assert_true(next != DCMF_T140_NEVER || total == 200);
    now = next > now ? next : now + 1;
  }
  assert_int_equal(total, 200);
  assert_int_equal(per_ms[0], 10);
  for (size_t start = 0; start + 10000 <= 30000; start += 100) {
    size_t w = 0;
    for (size_t i = start; i < start + 10000; i++) {
      w += per_ms[i];
    }
    assert_true(w <= 100);
  }
  assert_true(now > 21000); /* 190 characters at 9/s after the burst */
  /* Overflow of the bounded queue: dropped, one marker. */
  setup_engine(&eng_b, &s, 0);
  static char big[1001];
  memset(big, 'x', 1000);
  uint8_t q[1100];
  for (uint16_t i = 0; i < 6; i++) {
    dcmf_t140_rtp_recv(&eng_b, q, build(q, i, i * 300u, 5, big, -1, NULL), i);
  }
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->overflow_to_dc, 2);
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->markers_to_dc, 1);
  static char all[8192];
  size_t got = 0;
  for (now = 0; now < 3000000 && got < 4003; now += 1000) {
    got += take_dc(&eng_b, now, all + got, sizeof(all) - got - 1);
  }
  assert_int_equal(got, 4003);
  assert_memory_equal(all + 4000, FFFD, 3);
}

static void test_cps_toward_rtp(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  s.cps_to_rtp = 5;
  setup_engine(&eng_a, &s, 0);
  uint8_t p[DCMF_T140_MAX_PACKET];
  struct rd r;
  send_text(&eng_a, "0123456789", 0);
  read_packet(p, due(&eng_a, 0, p), 100, &r);
  assert_int_equal(r.len[2], 5); /* one second's burst */
  size_t sent = 5;
  uint64_t now = 0;
  while (sent < 10) {
    now = dcmf_t140_next_expiry(&eng_a);
    read_packet(p, due(&eng_a, now, p), 100, &r);
    sent += r.len[2];
  }
  /* 5 more characters at 4.5 per second: after about 1.1 s. */
  assert_true(now >= 1100 && now <= 1500);
  /* Overflow toward RTP: the DC side is reliable, the queue bounded. */
  static char big[1001];
  memset(big, 'x', 1000);
  big[1000] = 0;
  for (int i = 0; i < 6; i++) {
    send_text(&eng_a, big, now);
  }
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->overflow_to_rtp, 2);
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->markers_to_rtp, 1);
}

static void test_hostile_bytes(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  setup_engine(&eng_b, &s, 0);
  const struct dcmf_t140_stats *st = dcmf_t140_get_stats(&eng_b);
  uint8_t p[2048];
  size_t n = build(p, 1, 0, 5, "ok", -1, NULL);
  dcmf_t140_rtp_recv(&eng_b, p, 11, 0); /* shorter than the header */
  assert_int_equal(st->drop_truncated, 1);
  p[0] = 0x40; /* version 1 */
  dcmf_t140_rtp_recv(&eng_b, p, n, 0);
  assert_int_equal(st->drop_version, 1);
  p[0] = 0x8f; /* 15 CSRCs past the end */
  dcmf_t140_rtp_recv(&eng_b, p, n, 0);
  p[0] = 0x90; /* an extension header past the end */
  dcmf_t140_rtp_recv(&eng_b, p, n, 0);
  p[0] = 0xa0; /* padding larger than the payload */
  p[n - 1] = 200;
  dcmf_t140_rtp_recv(&eng_b, p, n, 0);
  assert_int_equal(st->drop_truncated, 4);
  n = build(p, 1, 0, 5, "ok", -1, NULL);
  p[1] = 0; /* PT 0 */
  dcmf_t140_rtp_recv(&eng_b, p, n, 0);
  assert_int_equal(st->drop_pt, 1);
  /* red: only F=1 headers, no primary header */
  const char *r1[] = {"abc"};
  n = build(p, 1, 0, 5, "", 1, r1);
  dcmf_t140_rtp_recv(&eng_b, p, 16, 0);
  /* red: a block length past the end */
  n = build(p, 1, 0, 5, "x", 1, r1);
  p[15] = 0xff;
  dcmf_t140_rtp_recv(&eng_b, p, n, 0);
  /* red: 17 redundant headers */
  memset(p + 12, 0xe2, 17 * 4);
  p[12 + 68] = 98;
  dcmf_t140_rtp_recv(&eng_b, p, 12 + 69, 0);
  assert_int_equal(st->drop_red, 3);
  assert_int_equal(st->rtp_received, 0);
  /* Invalid UTF-8 in the primary: dropped, marked. */
  n = build(p, 1, 0, 5, "\xc0\x80", -1, NULL);
  dcmf_t140_rtp_recv(&eng_b, p, n, 0);
  assert_int_equal(st->drop_utf8_rtp, 1);
  /* Too large. */
  dcmf_t140_rtp_recv(&eng_b, p, DCMF_T140_MAX_PACKET + 1, 0);
  assert_int_equal(st->drop_too_large, 1);
  /* Valid text still flows after all that. */
  n = build(p, 2, 300, 5, "ok", -1, NULL);
  dcmf_t140_rtp_recv(&eng_b, p, n, 0);
  char got[64];
  take_dc(&eng_b, 0, got, sizeof(got));
  assert_string_equal(got, FFFD "ok");
  /* Invalid UTF-8 from the DC: dropped, one marker toward RTP. */
  setup_engine(&eng_a, &s, 0);
  send_text(&eng_a, "\xed\xa0\x80", 0); /* a surrogate */
  send_text(&eng_a, "\xff", 0);
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->drop_utf8_dc, 2);
  struct rd r;
  read_packet(p, due(&eng_a, 0, p), 100, &r);
  assert_int_equal(r.len[2], 3);
  assert_memory_equal(r.text[2], FFFD, 3);
  /* A DC failure marks loss toward RTP too (RFC 8865 §6). */
  dcmf_t140_dc_failed(&eng_a);
  send_text(&eng_a, "ok", 0);
  read_packet(p, due(&eng_a, 300, p), 100, &r);
  assert_int_equal(r.len[2], 5);
  assert_memory_equal(r.text[2], FFFD "ok", 5);
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->markers_to_rtp, 2);
  /* Random bytes: no crash, every drop counted, nothing delivered that
   * is not valid UTF-8. */
  setup_engine(&eng_b, &s, 0);
  uint32_t x = 12345;
  for (int i = 0; i < 20000; i++) {
    size_t len = 0;
    x = x * 1103515245u + 12345u;
    len = (x >> 16) % 80;
    for (size_t k = 0; k < len; k++) {
      x = x * 1103515245u + 12345u;
      p[k] = (uint8_t)(x >> 16);
    }
    if (len > 1) {
      p[0] = (uint8_t)(0x80 | (p[0] & 0x3f));
      p[1] = (uint8_t)((p[1] & 0x80) | (i % 2 ? 98 : 100));
    }
    dcmf_t140_rtp_recv(&eng_b, p, len, (uint64_t)i);
    size_t m = dcmf_t140_dc_write(&eng_b, (uint8_t *)got, sizeof(got),
                                  (uint64_t)i * 1000);
    assert_true(dcmf_t140_utf8_valid((uint8_t *)got, m, NULL));
  }
}

/* A core answering t140 alone may put it on red's default PT (100): the
 * engine starts, sends and takes plain t140 there, and with red off a red
 * packet is not taken. */
static void test_no_red_on_pt_100(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  s.use_red = 0;
  s.pt_t140 = 100; /* pt_red keeps its default 100: not negotiated */
  setup_engine(&eng_a, &s, 0);
  setup_engine(&eng_b, &s, 0);
  uint8_t p[DCMF_T140_MAX_PACKET];
  struct rd r;
  send_text(&eng_a, "ok", 0);
  size_t n = due(&eng_a, 0, p);
  read_packet(p, n, -1, &r);
  assert_int_equal(r.pt, 100);
  assert_memory_equal(r.text[0], "ok", 2);
  dcmf_t140_rtp_recv(&eng_b, p, n, 0);
  uint8_t out[64];
  assert_int_equal(dcmf_t140_dc_write(&eng_b, out, sizeof(out), 0), 2);
  assert_memory_equal(out, "ok", 2);
  /* Red off, t140 on 98: a packet on 100 (red's default) is another PT. */
  defaults(&s);
  s.use_red = 0;
  setup_engine(&eng_b, &s, 0);
  uint8_t red[] = {0x80, 100, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4, 98, 'x'};
  dcmf_t140_rtp_recv(&eng_b, red, sizeof(red), 0);
  assert_int_equal(dcmf_t140_get_stats(&eng_b)->drop_pt, 1);
  assert_int_equal(dcmf_t140_dc_write(&eng_b, out, sizeof(out), 0), 0);
}

/* New cps limits keep the text queued both ways; a restart (new PTs)
 * keeps it too and marks the receive side's possible loss. */
static void test_cps_change_and_restart_keep_text(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  defaults(&s);
  s.use_red = 0;
  s.cps_to_rtp = 10;
  setup_engine(&eng_a, &s, 0);
  uint8_t p[DCMF_T140_MAX_PACKET], out[128];
  struct rd r;
  /* 40 characters from RTP: 30 go at once (cps 30), 10 wait. */
  const char *forty = "0123456789012345678901234567890123456789";
  uint8_t pkt[64] = {0x80, 98, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4};
  memcpy(pkt + 12, forty, 40);
  dcmf_t140_rtp_recv(&eng_a, pkt, 52, 0);
  assert_int_equal(dcmf_t140_dc_write(&eng_a, out, sizeof(out), 0), 30);
  /* 15 characters toward RTP: 10 go (cps 10), 5 wait. */
  send_text(&eng_a, "abcdefghijklmno", 0);
  read_packet(p, due(&eng_a, 0, p), -1, &r);
  assert_int_equal(r.len[0], 10);
  dcmf_t140_set_cps(&eng_a, 60, 0, 10);
  /* No tokens came with the change toward the UE (it had none). */
  assert_int_equal(dcmf_t140_dc_write(&eng_a, out, sizeof(out), 10), 0);
  uint64_t at = dcmf_t140_next_expiry(&eng_a);
  assert_true(at > 10 && at < 1000);
  size_t got = 0;
  for (uint64_t now = 10; now < 2000 && got < 10; now += 10) {
    got += dcmf_t140_dc_write(&eng_a, out + got, sizeof(out) - got, now);
  }
  assert_int_equal(got, 10);
  assert_memory_equal(out, "0123456789", 10);
  /* Toward RTP no limit now: the 5 waiting go in the next packet. */
  read_packet(p, due(&eng_a, 300, p), -1, &r);
  assert_int_equal(r.len[0], 5);
  assert_memory_equal(r.text[0], "klmno", 5);
  /* A restart with new PTs: text queued toward RTP stays, a U+FFFD goes
   * toward the UE, the counters run on. */
  send_text(&eng_a, "xyz", 2000);
  memcpy(pkt + 12, "held", 4);
  pkt[3] = 3; /* seq 3: 2 is missing, held */
  dcmf_t140_rtp_recv(&eng_a, pkt, 16, 2000);
  uint64_t sent = dcmf_t140_get_stats(&eng_a)->rtp_sent;
  s.pt_t140 = 99;
  char err[128];
  assert_int_equal(dcmf_t140_restart(&eng_a, &s, 2000, err, sizeof(err)), 0);
  assert_int_equal(dcmf_t140_get_stats(&eng_a)->rtp_sent, sent);
  assert_int_equal(dcmf_t140_dc_write(&eng_a, out, sizeof(out), 2000), 3);
  assert_memory_equal(out, FFFD, 3);
  read_packet(p, due(&eng_a, 2000, p), -1, &r);
  assert_int_equal(r.pt, 99);
  assert_int_equal(r.m, 1);
  assert_memory_equal(r.text[0], "xyz", 3);
  /* Refused settings leave the engine as it was. */
  s.generations = 9;
  s.use_red = 1;
  assert_int_equal(dcmf_t140_restart(&eng_a, &s, 2000, err, sizeof(err)),
                   DCMF_ERR_INVALID);
  assert_int_equal(eng_a.set.pt_t140, 99);
}

static void test_settings_and_utf8(void **state) {
  (void)state;
  struct dcmf_t140_settings s;
  char err[128];
  defaults(&s);
  s.buffer_ms = 501;
  assert_int_equal(dcmf_t140_init(&eng_a, &s, 0, err, sizeof(err)),
                   DCMF_ERR_INVALID);
  defaults(&s);
  s.generations = 6;
  assert_int_equal(dcmf_t140_init(&eng_a, &s, 0, err, sizeof(err)),
                   DCMF_ERR_INVALID);
  defaults(&s);
  s.pt_red = 98;
  assert_int_equal(dcmf_t140_init(&eng_a, &s, 0, err, sizeof(err)),
                   DCMF_ERR_INVALID);
  defaults(&s);
  s.pt_t140 = 128;
  assert_int_equal(dcmf_t140_init(&eng_a, &s, 0, err, sizeof(err)),
                   DCMF_ERR_INVALID);
  size_t chars = 0;
  assert_true(dcmf_t140_utf8_valid((const uint8_t *)"a\xc3\xa9\xe2\x82\xac"
                                   "\xf0\x9f\x98\x80", 10, &chars));
  assert_int_equal(chars, 4);
  const char *bad[] = {"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
                       "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                       "\xe2\x82", "\x80", "\xc3\x28"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_false(dcmf_t140_utf8_valid((const uint8_t *)bad[i], strlen(bad[i]),
                                      NULL));
  }
  /* A prefix never cuts a character. */
  assert_int_equal(dcmf_t140_utf8_prefix((const uint8_t *)"a\xe2\x82\xac", 4,
                                         10, 3), 1);
  assert_int_equal(dcmf_t140_utf8_prefix((const uint8_t *)"a\xe2\x82\xac", 4,
                                         2, 4), 4);
}

/* The queue's room kept for the loss marker may be used by a mark; a
 * push after that must be refused, never written past the buffer. */
static void test_queue_full_after_mark(void **state) {
  (void)state;
  static struct dcmf_t140_textq q;
  uint8_t text[DCMF_T140_QUEUE];
  memset(text, 'a', sizeof(text));
  for (size_t fill = sizeof(q.buf) - 6; fill <= sizeof(q.buf) - 3; fill++) {
    memset(&q, 0, sizeof(q));
    assert_int_equal(dcmf_t140_textq_push(&q, text, fill), 0);
    assert_int_equal(dcmf_t140_textq_mark(&q), 1);
    size_t len = q.len;
    assert_true(len <= sizeof(q.buf));
    for (size_t n = 1; n <= 8; n++) {
      int rv = dcmf_t140_textq_push(&q, text, n);
      if (len + n + 3 > sizeof(q.buf)) {
        assert_int_equal(rv, DCMF_ERR_EXHAUSTED);
        assert_int_equal(q.len, len);
      } else {
        assert_int_equal(rv, 0);
        len = q.len;
      }
      assert_true(q.len <= sizeof(q.buf));
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queue_full_after_mark),
      cmocka_unit_test(test_buffering_and_redundancy),
      cmocka_unit_test(test_no_red_one_empty_block),
      cmocka_unit_test(test_generations_configurable),
      cmocka_unit_test(test_m_bit_after_idle_only),
      cmocka_unit_test(test_unique_timestamps),
      cmocka_unit_test(test_keepalive_and_direction),
      cmocka_unit_test(test_loss_recovered_by_redundancy),
      cmocka_unit_test(test_loss_past_redundancy_marked),
      cmocka_unit_test(test_reorder_and_duplicates),
      cmocka_unit_test(test_cps_toward_dc),
      cmocka_unit_test(test_cps_toward_rtp),
      cmocka_unit_test(test_hostile_bytes),
      cmocka_unit_test(test_settings_and_utf8),
      cmocka_unit_test(test_no_red_on_pt_100),
      cmocka_unit_test(test_cps_change_and_restart_keep_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
