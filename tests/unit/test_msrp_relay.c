/*
 * The MSRP relay (dcmf/proto/msrp_relay.h), in memory. The chunks the
 * tests send are typed from RFC 4975 §7.1 and §9 here (snprintf), not
 * made with the engine's writer; what comes out is read back with the
 * parser of msrp.h. Covered: both modes, chunks split at every byte
 * position, end-line look-alikes and '#', re-chunking with the pieces'
 * responses folded (all 200, a failure, Failure-Report no and partial,
 * expiry), aware-mode rewrites and 481, hostile input with bounded
 * memory, back-pressure both ways, and a 4 MiB message each way with the
 * relay's peak memory asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "msrp.h"
#include "msrp_relay.h"

#define WIC "msrps://wic.example.com:9/wicsess;dc"
#define CORE "msrp://core.example.com:7777/coresess;tcp"
#define MF_DC "msrps://mf.example.net:5000/mfdc1;dc"
#define MF_TCP "msrp://mf.example.net:6000/mftcp1;tcp"

static void fill_xorshift(void *user, uint8_t *buf, size_t len) {
  uint64_t *x = user;
  for (size_t i = 0; i < len; i++) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    buf[i] = (uint8_t)(*x >> 24);
  }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static struct dcmf_msrp_relay_settings settings(int aware, size_t mms) {
  struct dcmf_msrp_relay_settings s;
  memset(&s, 0, sizeof(s));
  s.mode = aware ? DCMF_MSRP_RELAY_AWARE : DCMF_MSRP_RELAY_AGNOSTIC;
  s.max_message_size = mms;
  s.max_header = 2048;
  s.rng.fill = fill_xorshift;
  s.rng.user = &rng_state;
  if (aware) {
    s.dc_own_uri = MF_DC;
    s.tcp_own_uri = MF_TCP;
    s.dc_peer_path = WIC;
    s.tcp_peer_path = CORE;
  }
  return s;
}

/* A growable byte string. */
struct bytes {
  uint8_t *p;
  size_t len, cap;
};

static void bput(struct bytes *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

/* A SEND as RFC 4975 §7.1 lays it out: start line, To-Path, From-Path,
 * Message-ID, Byte-Range (if |range|), Failure-Report (if |fr|),
 * Content-Type, blank line, body, CRLF, end-line. */
static void mk_send(struct bytes *b, const char *tid, const char *to,
                    const char *from, const char *range, const char *fr,
                    const uint8_t *body, size_t body_len, char flag) {
  char head[1024];
  int n =
      snprintf(head, sizeof(head),
               "MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\n"
               "Message-ID: m%s\r\n%s%s%s%s%s%s"
               "Content-Type: text/plain\r\n\r\n",
               tid, to, from, tid, range ? "Byte-Range: " : "",
               range ? range : "", range ? "\r\n" : "",
               fr ? "Failure-Report: " : "", fr ? fr : "", fr ? "\r\n" : "");
  bput(b, head, (size_t)n);
  bput(b, body, body_len);
  n = snprintf(head, sizeof(head), "\r\n-------%s%c\r\n", tid, flag);
  bput(b, head, (size_t)n);
}

static void mk_response(struct bytes *b, const char *tid, int code,
                        const char *to, const char *from) {
  char buf[1024];
  int n = snprintf(buf, sizeof(buf),
                   "MSRP %s %03d %s\r\nTo-Path: %s\r\nFrom-Path: %s\r\n"
                   "-------%s$\r\n",
                   tid, code, code == 200 ? "OK" : "Failed", to, from, tid);
  bput(b, buf, (size_t)n);
}

static void mk_report(struct bytes *b, const char *tid, const char *to,
                      const char *from) {
  char buf[1024];
  int n = snprintf(buf, sizeof(buf),
                   "MSRP %s REPORT\r\nTo-Path: %s\r\nFrom-Path: %s\r\n"
                   "Message-ID: mrep1234\r\nByte-Range: 1-5/5\r\n"
                   "Status: 000 200 OK\r\n-------%s$\r\n",
                   tid, to, from, tid);
  bput(b, buf, (size_t)n);
}

static const struct dcmf_msrp_limits big_lim = {1 << 16, 1 << 24};

/* Pops every queued message into |out| (each checked: one chunk the
 * parser takes, within |mms|), returns the count. */
static size_t drain_msgs(struct dcmf_msrp_relay *r, struct bytes *out,
                         size_t mms, uint64_t now) {
  size_t n = 0, len;
  const uint8_t *m;
  while ((m = dcmf_msrp_relay_peek_message(r, &len)) != NULL) {
    struct dcmf_msrp_chunk c;
    assert_true(len <= mms);
    assert_int_equal(dcmf_msrp_parse(m, len, &big_lim, &c), 0);
    if (out != NULL) {
      bput(out, m, len);
    }
    n++;
    assert_int_equal(dcmf_msrp_relay_pop_message(r, now), 0);
  }
  return n;
}

static void drain_stream(struct dcmf_msrp_relay *r, struct bytes *out) {
  size_t len;
  const uint8_t *p;
  while ((p = dcmf_msrp_relay_peek_stream(r, &len)) != NULL) {
    if (out != NULL) {
      bput(out, p, len);
    }
    assert_int_equal(dcmf_msrp_relay_consume_stream(r, len, 0), 0);
  }
}

/* Every chunk of a byte stream, cut with a fresh framer. */
static size_t cut(const struct bytes *b, struct dcmf_msrp_chunk *cs,
                  size_t max) {
  struct dcmf_msrp_framer f;
  size_t n = 0, off = 0;
  assert_int_equal(dcmf_msrp_framer_init(&f, &big_lim), 0);
  static struct bytes keep[64];
  while (off < b->len) {
    int t = dcmf_msrp_framer_feed(&f, b->p + off, b->len - off);
    assert_true(t > 0);
    off += (size_t)t;
    struct dcmf_msrp_chunk c;
    while (dcmf_msrp_framer_next(&f, &c) == 1) {
      assert_true(n < max && n < 64);
      /* keep a copy: the framer's buffer moves on the next feed */
      keep[n].len = 0;
      bput(&keep[n], c.raw, c.raw_len);
      assert_int_equal(
          dcmf_msrp_parse(keep[n].p, keep[n].len, &big_lim, &cs[n]), 0);
      n++;
    }
  }
  assert_int_equal(dcmf_msrp_framer_pending(&f), 0);
  dcmf_msrp_framer_free(&f);
  return n;
}

/* The responses |code| in a byte stream (every chunk must be one). */
static size_t count_responses(const struct bytes *b, int code) {
  struct dcmf_msrp_framer f;
  size_t n = 0, off = 0;
  struct dcmf_msrp_chunk c;
  assert_int_equal(dcmf_msrp_framer_init(&f, &big_lim), 0);
  while (off < b->len) {
    int t = dcmf_msrp_framer_feed(&f, b->p + off, b->len - off);
    assert_true(t > 0);
    off += (size_t)t;
    while (dcmf_msrp_framer_next(&f, &c) == 1) {
      assert_int_equal(c.kind, DCMF_MSRP_RESPONSE);
      assert_int_equal(c.status, code);
      n++;
    }
  }
  assert_int_equal(dcmf_msrp_framer_pending(&f), 0);
  dcmf_msrp_framer_free(&f);
  return n;
}

static int str_is(struct dcmf_msrp_str s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* Feeds all of |s| to |r| as bytes of the TCP stream; all must be
 * taken. */
static void feed_stream(struct dcmf_msrp_relay *r, const struct bytes *s) {
  assert_int_equal(dcmf_msrp_relay_recv_stream(r, s->p, s->len, 0),
                   (int)s->len);
}

/* Empties |out|, takes the one message waiting toward the data channel
 * into it and parses it into |c|. */
static void take_message(struct dcmf_msrp_relay *r, struct bytes *out,
                         struct dcmf_msrp_chunk *c) {
  out->len = 0;
  assert_int_equal(drain_msgs(r, out, 65536, 0), 1);
  assert_int_equal(dcmf_msrp_parse(out->p, out->len, &big_lim, c), 0);
}

/* Empties |out|, takes what waits toward the TCP stream into it and
 * parses its first chunk into |c|. */
static void take_stream(struct dcmf_msrp_relay *r, struct bytes *out,
                        struct dcmf_msrp_chunk *c) {
  out->len = 0;
  drain_stream(r, out);
  assert_int_equal(dcmf_msrp_parse(out->p, out->len, &big_lim, c), 0);
}

/* How many inputs from |leg| (DCMF_MSRP_RELAY_FROM_*) got |verdict|. */
static uint64_t verdicts(struct dcmf_msrp_relay *r, int leg, int verdict) {
  return dcmf_msrp_relay_stats(r)->verdicts[leg][verdict];
}

/* ---- agnostic: bytes unchanged, at every split point ---- */

static void build_mixed_stream(struct bytes *s) {
  /* a body holding an end-line look-alike with another tid */
  const char *tricky = "line one\r\n-------othertid$\r\nstill body";
  mk_send(s, "tidA1", MF_TCP, CORE, "1-*/*", NULL, (const uint8_t *)tricky,
          strlen(tricky), '+');
  mk_send(s, "tidA2", MF_TCP, CORE, "38-40/*", NULL, (const uint8_t *)"abc", 3,
          '#'); /* aborted */
  mk_report(s, "tidR1", MF_TCP, CORE);
  mk_response(s, "tidZ9", 200, MF_TCP, CORE);
  const char *bodyless = "MSRP tidB0 SEND\r\nTo-Path: " MF_TCP
                         "\r\nFrom-Path: " CORE "\r\n-------tidB0$\r\n";
  bput(s, bodyless, strlen(bodyless));
}

static void test_agnostic_every_split(void **state) {
  (void)state;
  struct bytes s = {0};
  build_mixed_stream(&s);
  for (size_t at = 0; at <= s.len; at++) {
    struct dcmf_msrp_relay r;
    struct dcmf_msrp_relay_settings set = settings(0, 65536);
    assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
    assert_int_equal(dcmf_msrp_relay_recv_stream(&r, s.p, at, 0), (int)at);
    assert_int_equal(dcmf_msrp_relay_recv_stream(&r, s.p + at, s.len - at, 0),
                     (int)(s.len - at));
    struct bytes out = {0};
    assert_int_equal(drain_msgs(&r, &out, 65536, 0), 5);
    /* one chunk per message, every byte unchanged */
    assert_int_equal(out.len, s.len);
    assert_memory_equal(out.p, s.p, s.len);
    assert_int_equal(
        verdicts(&r, DCMF_MSRP_RELAY_FROM_STREAM, DCMF_MSRP_RELAY_FORWARDED),
        5);
    free(out.p);
    dcmf_msrp_relay_free(&r);
  }
  /* one byte at a time */
  struct dcmf_msrp_relay r;
  struct dcmf_msrp_relay_settings set = settings(0, 65536);
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
  for (size_t i = 0; i < s.len; i++) {
    assert_int_equal(dcmf_msrp_relay_recv_stream(&r, s.p + i, 1, 0), 1);
  }
  struct bytes out = {0};
  assert_int_equal(drain_msgs(&r, &out, 65536, 0), 5);
  assert_memory_equal(out.p, s.p, s.len);
  free(out.p);
  dcmf_msrp_relay_free(&r);
  free(s.p);
}

static void test_agnostic_messages_to_stream(void **state) {
  (void)state;
  struct dcmf_msrp_relay r;
  struct dcmf_msrp_relay_settings set = settings(0, 65536);
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
  struct bytes a = {0}, b = {0}, all = {0}, out = {0};
  mk_send(&a, "dcA1", CORE, WIC, "1-5/5", NULL, (const uint8_t *)"hello", 5,
          '$');
  mk_response(&b, "tidA1", 200, CORE, WIC);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, a.p, a.len, 0),
                   DCMF_MSRP_RELAY_FORWARDED);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, b.p, b.len, 0),
                   DCMF_MSRP_RELAY_FORWARDED);
  bput(&all, a.p, a.len);
  bput(&all, b.p, b.len);
  /* a message of two chunks, half a chunk, trailing bytes: refused */
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, all.p, all.len, 0),
                   DCMF_MSRP_RELAY_NOT_A_CHUNK);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, a.p, a.len - 3, 0),
                   DCMF_MSRP_RELAY_NOT_A_CHUNK);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, a.p, a.len + 1, 0),
                   DCMF_MSRP_RELAY_NOT_A_CHUNK);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, NULL, 0, 0),
                   DCMF_MSRP_RELAY_NOT_A_CHUNK);
  drain_stream(&r, &out);
  assert_int_equal(out.len, all.len);
  assert_memory_equal(out.p, all.p, all.len);
  assert_int_equal(
      verdicts(&r, DCMF_MSRP_RELAY_FROM_MESSAGES, DCMF_MSRP_RELAY_NOT_A_CHUNK),
      4);
  assert_null(dcmf_msrp_relay_peek_message(&r, &out.len));
  free(a.p);
  free(b.p);
  free(all.p);
  free(out.p);
  dcmf_msrp_relay_free(&r);
}

/* ---- re-chunking and the folded responses ---- */

#define SPLIT_MMS 4096

/* Feeds a 10000-octet SEND (Failure-Report |fr|) into a fresh relay
 * and checks the pieces; their transaction ids into |tids|. */
static size_t split_one(struct dcmf_msrp_relay *r, int aware, const char *fr,
                        char tids[][DCMF_MSRP_TID_MAX + 1], uint8_t *body,
                        size_t body_len) {
  struct dcmf_msrp_relay_settings set = settings(aware, SPLIT_MMS);
  set.tx_timeout_ms = 1000;
  assert_int_equal(dcmf_msrp_relay_init(r, &set), 0);
  struct bytes s = {0}, out = {0};
  mk_send(&s, "origTID42", aware ? MF_TCP : WIC, CORE, NULL, fr, body, body_len,
          '$');
  assert_int_equal(dcmf_msrp_relay_recv_stream(r, s.p, s.len, 0), (int)s.len);
  size_t n = 0;
  uint64_t next = 1;
  const uint8_t *m;
  size_t len;
  uint8_t *joined = calloc(1, body_len);
  while ((m = dcmf_msrp_relay_peek_message(r, &len)) != NULL) {
    struct dcmf_msrp_chunk c;
    assert_true(len <= SPLIT_MMS);
    assert_int_equal(dcmf_msrp_parse(m, len, &big_lim, &c), 0);
    assert_true(c.tid.len >= 16); /* >= 64 bits of randomness */
    assert_false(str_is(c.tid, "origTID42"));
    memcpy(tids[n], c.tid.p, c.tid.len);
    tids[n][c.tid.len] = 0;
    for (size_t k = 0; k < n; k++) {
      assert_string_not_equal(tids[k], tids[n]);
    }
    assert_true(str_is(c.message_id, "morigTID42"));
    assert_true(c.has_range);
    assert_int_equal(c.range.start, next);
    assert_int_equal(c.range.total, body_len);
    memcpy(joined + next - 1, c.body, c.body_len);
    next += c.body_len;
    int last = next - 1 == body_len;
    assert_int_equal(c.flag, last ? '$' : '+');
    if (aware) {
      assert_true(str_is(c.to_path, WIC));
      assert_true(str_is(c.from_path, MF_DC));
    } else {
      assert_true(str_is(c.to_path, WIC));
      assert_true(str_is(c.from_path, CORE));
    }
    n++;
    assert_int_equal(dcmf_msrp_relay_pop_message(r, 0), 0);
  }
  assert_int_equal(next - 1, body_len);
  assert_memory_equal(joined, body, body_len);
  free(joined);
  assert_int_equal(dcmf_msrp_relay_stats(r)->splits, 1);
  /* nothing toward the sender yet */
  assert_null(dcmf_msrp_relay_peek_stream(r, &len));
  drain_stream(r, &out);
  free(out.p);
  free(s.p);
  return n;
}

/* The data channel side answers piece |tid| with |code|. */
static int answer_piece(struct dcmf_msrp_relay *r, const char *tid, int code,
                        int aware) {
  struct bytes b = {0};
  mk_response(&b, tid, code, aware ? MF_DC : CORE, WIC);
  int v = dcmf_msrp_relay_recv_message(r, b.p, b.len, 0);
  free(b.p);
  return v;
}

/* The one response on the stream leg, parsed; 0 if none. */
static int stream_response(struct dcmf_msrp_relay *r, struct dcmf_msrp_chunk *c,
                           struct bytes *keep) {
  keep->len = 0;
  drain_stream(r, keep);
  if (keep->len == 0) {
    return 0;
  }
  assert_int_equal(dcmf_msrp_parse(keep->p, keep->len, &big_lim, c), 0);
  return 1;
}

static void test_split_responses(void **state) {
  (void)state;
  size_t body_len = 10000;
  uint8_t *body = malloc(body_len);
  for (size_t i = 0; i < body_len; i++) {
    body[i] = (uint8_t)('a' + i % 26);
  }
  char tids[16][DCMF_MSRP_TID_MAX + 1];
  struct dcmf_msrp_chunk c;
  struct bytes keep = {0};
  for (int aware = 0; aware < 2; aware++) {
    /* all 200: one 200 on the original id, after the last */
    struct dcmf_msrp_relay r;
    size_t n = split_one(&r, aware, NULL, tids, body, body_len);
    assert_true(n >= 3);
    for (size_t k = 0; k < n; k++) {
      assert_int_equal(answer_piece(&r, tids[k], 200, aware),
                       DCMF_MSRP_RELAY_ABSORBED);
      assert_int_equal(stream_response(&r, &c, &keep), k + 1 == n);
    }
    assert_true(str_is(c.tid, "origTID42"));
    assert_int_equal(c.status, 200);
    assert_true(str_is(c.to_path, CORE));
    assert_true(str_is(c.from_path, aware ? MF_TCP : WIC));
    assert_int_equal(dcmf_msrp_relay_next_expiry(&r), UINT64_MAX);
    /* a late duplicate is an unknown response: it passes (agnostic) */
    assert_int_equal(answer_piece(&r, tids[0], 200, aware),
                     DCMF_MSRP_RELAY_FORWARDED);
    dcmf_msrp_relay_free(&r);

    /* the first failure goes back once; later answers are absorbed */
    n = split_one(&r, aware, "yes", tids, body, body_len);
    assert_int_equal(answer_piece(&r, tids[0], 200, aware),
                     DCMF_MSRP_RELAY_ABSORBED);
    assert_int_equal(stream_response(&r, &c, &keep), 0);
    assert_int_equal(answer_piece(&r, tids[1], 413, aware),
                     DCMF_MSRP_RELAY_ABSORBED);
    assert_int_equal(stream_response(&r, &c, &keep), 1);
    assert_int_equal(c.status, 413);
    assert_true(str_is(c.tid, "origTID42"));
    for (size_t k = 2; k < n; k++) {
      assert_int_equal(answer_piece(&r, tids[k], k == 2 ? 400 : 200, aware),
                       DCMF_MSRP_RELAY_ABSORBED);
    }
    assert_int_equal(stream_response(&r, &c, &keep), 0);
    dcmf_msrp_relay_free(&r);

    /* Failure-Report: no: not tracked, nothing ever answered */
    n = split_one(&r, aware, "no", tids, body, body_len);
    assert_int_equal(dcmf_msrp_relay_next_expiry(&r), UINT64_MAX);
    assert_int_equal(dcmf_msrp_relay_handle_expiry(&r, 5000), 0);
    assert_int_equal(stream_response(&r, &c, &keep), 0);
    dcmf_msrp_relay_free(&r);

    /* partial: a failure goes back, silence expires with nothing */
    n = split_one(&r, aware, "partial", tids, body, body_len);
    assert_int_equal(answer_piece(&r, tids[n - 1], 481, aware),
                     DCMF_MSRP_RELAY_ABSORBED);
    assert_int_equal(stream_response(&r, &c, &keep), 1);
    assert_int_equal(c.status, 481);
    dcmf_msrp_relay_free(&r);
    n = split_one(&r, aware, "partial", tids, body, body_len);
    assert_int_equal(dcmf_msrp_relay_next_expiry(&r), 1000);
    assert_int_equal(dcmf_msrp_relay_handle_expiry(&r, 999), 0);
    assert_int_equal(dcmf_msrp_relay_handle_expiry(&r, 1000), 0);
    assert_int_equal(stream_response(&r, &c, &keep), 0);
    assert_int_equal(dcmf_msrp_relay_stats(&r)->expired, 1);
    dcmf_msrp_relay_free(&r);

    /* yes, unanswered: 408 at the deadline */
    n = split_one(&r, aware, NULL, tids, body, body_len);
    assert_int_equal(answer_piece(&r, tids[0], 200, aware),
                     DCMF_MSRP_RELAY_ABSORBED);
    assert_int_equal(dcmf_msrp_relay_handle_expiry(&r, 1000), 0);
    assert_int_equal(stream_response(&r, &c, &keep), 1);
    assert_int_equal(c.status, 408);
    assert_true(str_is(c.tid, "origTID42"));
    dcmf_msrp_relay_free(&r);
  }
  free(keep.p);
  free(body);
}

/* A SEND streaming in (fed in 1000-octet segments): pieces go out and
 * are answered before its end; a failure goes back at once, and the
 * split neither settles nor expires until its last piece. */
static void test_streaming_split(void **state) {
  (void)state;
  for (int fail = 0; fail < 2; fail++) {
    struct dcmf_msrp_relay r;
    struct dcmf_msrp_relay_settings set = settings(0, SPLIT_MMS);
    set.tx_timeout_ms = 1000;
    assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
    struct bytes s = {0}, keep = {0};
    uint8_t body[20000];
    for (size_t i = 0; i < sizeof(body); i++) {
      body[i] = (uint8_t)('A' + i % 23);
    }
    mk_send(&s, "streamT1", WIC, CORE, NULL, NULL, body, sizeof(body), '$');
    size_t at = 0, pieces = 0, got = 0;
    int answered_early = 0;
    struct dcmf_msrp_chunk c;
    while (at < s.len) {
      size_t n = s.len - at < 1000 ? s.len - at : 1000;
      int t = dcmf_msrp_relay_recv_stream(&r, s.p + at, n, 0);
      assert_true(t >= 0);
      at += (size_t)t;
      size_t len;
      const uint8_t *m;
      while ((m = dcmf_msrp_relay_peek_message(&r, &len)) != NULL) {
        assert_true(len <= SPLIT_MMS);
        assert_int_equal(dcmf_msrp_parse(m, len, &big_lim, &c), 0);
        assert_int_equal(c.range.start, got + 1);
        assert_memory_equal(c.body, body + got, c.body_len);
        got += c.body_len;
        char tid[DCMF_MSRP_TID_MAX + 1];
        memcpy(tid, c.tid.p, c.tid.len);
        tid[c.tid.len] = 0;
        int last = got == sizeof(body);
        assert_int_equal(c.flag, last ? '$' : '+');
        /* no Byte-Range in the original: '*' until the last */
        assert_int_equal(c.range.total,
                         last ? sizeof(body) : DCMF_MSRP_UNKNOWN);
        assert_int_equal(dcmf_msrp_relay_pop_message(&r, 0), 0);
        int code = fail && pieces == 1 ? 481 : 200;
        assert_int_equal(answer_piece(&r, tid, code, 0),
                         DCMF_MSRP_RELAY_ABSORBED);
        pieces++;
        if (!last) {
          /* open: no expiry, and nothing yet unless it failed */
          assert_int_equal(dcmf_msrp_relay_next_expiry(&r), UINT64_MAX);
          if (stream_response(&r, &c, &keep)) {
            assert_int_equal(c.status, 481);
            assert_true(str_is(c.tid, "streamT1"));
            answered_early++;
          }
        }
      }
    }
    assert_int_equal(got, sizeof(body));
    assert_true(pieces >= 5);
    assert_int_equal(answered_early, fail);
    if (fail) {
      assert_int_equal(stream_response(&r, &c, &keep), 0);
    } else {
      assert_int_equal(stream_response(&r, &c, &keep), 1);
      assert_int_equal(c.status, 200);
      assert_true(str_is(c.tid, "streamT1"));
    }
    assert_int_equal(dcmf_msrp_relay_stats(&r)->splits, 1);
    assert_int_equal(dcmf_msrp_relay_next_expiry(&r), UINT64_MAX);
    free(s.p);
    free(keep.p);
    dcmf_msrp_relay_free(&r);
  }
}

/* An unsplit chunk keeps its id, so its response passes both ways. */
static void test_unsplit_keeps_tid(void **state) {
  (void)state;
  struct dcmf_msrp_relay r;
  struct dcmf_msrp_relay_settings set = settings(0, SPLIT_MMS);
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
  struct bytes s = {0}, out = {0}, resp = {0};
  uint8_t body[3000];
  memset(body, 'x', sizeof(body));
  mk_send(&s, "keepTID1", WIC, CORE, "1-3000/3000", NULL, body, sizeof(body),
          '$');
  assert_true(s.len <= SPLIT_MMS);
  feed_stream(&r, &s);
  assert_int_equal(drain_msgs(&r, &out, SPLIT_MMS, 0), 1);
  assert_memory_equal(out.p, s.p, s.len);
  mk_response(&resp, "keepTID1", 200, CORE, WIC);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, resp.p, resp.len, 0),
                   DCMF_MSRP_RELAY_FORWARDED);
  out.len = 0;
  drain_stream(&r, &out);
  assert_int_equal(out.len, resp.len);
  assert_memory_equal(out.p, resp.p, resp.len);
  free(s.p);
  free(out.p);
  free(resp.p);
  dcmf_msrp_relay_free(&r);
}

/* ---- aware mode ---- */

static void test_aware_rewrites(void **state) {
  (void)state;
  struct dcmf_msrp_relay r;
  struct dcmf_msrp_relay_settings set = settings(1, 65536);
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
  struct bytes s = {0}, out = {0};
  struct dcmf_msrp_chunk c;

  /* DC -> TCP: To-Path names the MF's dc URI */
  mk_send(&s, "awA1", MF_DC, WIC, "1-5/5", NULL, (const uint8_t *)"hello", 5,
          '$');
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, s.p, s.len, 0),
                   DCMF_MSRP_RELAY_FORWARDED);
  take_stream(&r, &out, &c);
  assert_true(str_is(c.tid, "awA1"));
  assert_true(str_is(c.to_path, CORE));
  assert_true(str_is(c.from_path, MF_TCP));
  assert_true(str_is(c.message_id, "mawA1"));
  assert_int_equal(c.range.start, 1);
  assert_int_equal(c.range.end, 5);
  assert_int_equal(c.body_len, 5);
  assert_memory_equal(c.body, "hello", 5);
  assert_int_equal(c.flag, '$');

  /* TCP -> DC: a response and a REPORT, rewritten the same way */
  s.len = 0;
  mk_response(&s, "awA1", 200, MF_TCP, CORE);
  mk_report(&s, "awR1", MF_TCP, CORE);
  feed_stream(&r, &s);
  out.len = 0;
  assert_int_equal(drain_msgs(&r, &out, 65536, 0), 2);
  struct dcmf_msrp_chunk cs[4];
  assert_int_equal(cut(&out, cs, 4), 2);
  assert_int_equal(cs[0].status, 200);
  assert_true(str_is(cs[0].to_path, WIC));
  assert_true(str_is(cs[0].from_path, MF_DC));
  assert_int_equal(cs[1].method, DCMF_MSRP_REPORT);
  assert_true(str_is(cs[1].to_path, WIC));
  assert_true(str_is(cs[1].from_path, MF_DC));
  assert_true(cs[1].has_status && cs[1].status_code == 200);

  /* a SEND naming someone else: 481 back to its sender, nothing on */
  s.len = 0;
  mk_send(&s, "awB1", "msrps://other.example.com:1/zz;dc", WIC, NULL, NULL,
          (const uint8_t *)"x", 1, '$');
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, s.p, s.len, 0),
                   DCMF_MSRP_RELAY_WRONG_PATH);
  assert_null(dcmf_msrp_relay_peek_stream(&r, &out.len));
  take_message(&r, &out, &c);
  assert_int_equal(c.kind, DCMF_MSRP_RESPONSE);
  assert_int_equal(c.status, 481);
  assert_true(str_is(c.tid, "awB1"));
  assert_true(str_is(c.to_path, WIC));
  assert_true(str_is(c.from_path, MF_DC));
  /* the same from the stream, with the dc URI (wrong leg) */
  s.len = 0;
  mk_send(&s, "awB2", MF_DC, CORE, NULL, NULL, (const uint8_t *)"x", 1, '$');
  feed_stream(&r, &s);
  assert_null(dcmf_msrp_relay_peek_message(&r, &out.len));
  take_stream(&r, &out, &c);
  assert_int_equal(c.status, 481);
  assert_true(str_is(c.tid, "awB2"));
  assert_true(str_is(c.to_path, CORE));
  assert_true(str_is(c.from_path, MF_TCP));
  /* a REPORT or a Failure-Report: no SEND naming someone else: no
   * answer (§7.1.2, §7.2) */
  s.len = 0;
  mk_report(&s, "awR2", "msrps://other.example.com:1/zz;dc", WIC);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, s.p, s.len, 0),
                   DCMF_MSRP_RELAY_WRONG_PATH);
  s.len = 0;
  mk_send(&s, "awB3", "msrps://other.example.com:1/zz;dc", WIC, NULL, "no",
          (const uint8_t *)"x", 1, '$');
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, s.p, s.len, 0),
                   DCMF_MSRP_RELAY_WRONG_PATH);
  assert_null(dcmf_msrp_relay_peek_message(&r, &out.len));
  assert_null(dcmf_msrp_relay_peek_stream(&r, &out.len));
  /* URI comparison per §6.1: host case-insensitive */
  s.len = 0;
  mk_send(&s, "awC1", "msrps://MF.example.NET:5000/mfdc1;dc", WIC, NULL, NULL,
          (const uint8_t *)"x", 1, '$');
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, s.p, s.len, 0),
                   DCMF_MSRP_RELAY_FORWARDED);
  assert_int_equal(
      verdicts(&r, DCMF_MSRP_RELAY_FROM_MESSAGES, DCMF_MSRP_RELAY_WRONG_PATH),
      3);
  free(s.p);
  free(out.p);
  dcmf_msrp_relay_free(&r);

  /* bad settings */
  set.tcp_own_uri = "not a uri";
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), DCMF_ERR_INVALID);
  dcmf_msrp_relay_free(&r);
  set = settings(0, 100);
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), DCMF_ERR_INVALID);
  dcmf_msrp_relay_free(&r);
}

/* ---- hostile input ---- */

static void test_hostile(void **state) {
  (void)state;
  struct dcmf_msrp_relay r;
  struct dcmf_msrp_relay_settings set = settings(0, 65536);
  set.max_chunk_body = 100000;
  set.max_streamed_body = 1u << 20;
  struct bytes s = {0};
  uint8_t junk[4096];

  /* huge headers: fatal, sticky, bounded */
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
  const char *start = "MSRP huge1 SEND\r\nX-Pad: ";
  assert_int_equal(
      dcmf_msrp_relay_recv_stream(&r, (const uint8_t *)start, strlen(start), 0),
      (int)strlen(start));
  memset(junk, 'a', sizeof(junk));
  int rv = 0;
  for (int i = 0; i < 100 && rv >= 0; i++) {
    rv = dcmf_msrp_relay_recv_stream(&r, junk, sizeof(junk), 0);
  }
  assert_int_equal(rv, DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_msrp_relay_recv_stream(&r, junk, 1, 0),
                   DCMF_ERR_TOO_LARGE);
  assert_false(dcmf_msrp_relay_stream_wanted(&r));
  assert_true(dcmf_msrp_relay_stats(&r)->peak_mem < 64 * 1024);
  dcmf_msrp_relay_free(&r);

  /* an endless body: fatal once past max_chunk_body, never beyond */
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
  mk_send(&s, "endless1", WIC, CORE, "1-*/10485760", NULL, junk, 0, '$');
  s.len -= strlen("\r\n-------endless1$\r\n");
  feed_stream(&r, &s);
  /* it is passed on in pieces (popped here) up to max_streamed_body */
  rv = 0;
  size_t popped = 0;
  for (int i = 0; i < 2000 && rv >= 0; i++) {
    rv = dcmf_msrp_relay_recv_stream(&r, junk, sizeof(junk), 0);
    if (rv >= 0) {
      popped += drain_msgs(&r, NULL, 65536, 0);
    }
  }
  assert_int_equal(rv, DCMF_ERR_TOO_LARGE);
  assert_true(popped >= (1u << 20) / 65536);
  assert_true(dcmf_msrp_relay_stats(&r)->peak_mem < 256 * 1024);
  dcmf_msrp_relay_free(&r);

  /* a 10 MiB Byte-Range claim over a small body costs the body only */
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
  s.len = 0;
  mk_send(&s, "claim1", WIC, CORE, "1-10485760/10485760", NULL,
          (const uint8_t *)"tiny", 4, '$');
  feed_stream(&r, &s);
  assert_int_equal(drain_msgs(&r, NULL, 65536, 0), 1);
  assert_true(dcmf_msrp_relay_stats(&r)->peak_mem < 64 * 1024);

  /* a non-SEND request with a body over 10240: 413 to its sender */
  s.len = 0;
  char head[512];
  int n = snprintf(head, sizeof(head),
                   "MSRP big1 NICKNAME\r\nTo-Path: %s\r\nFrom-Path: %s\r\n"
                   "Content-Type: text/plain\r\n\r\n",
                   CORE, WIC);
  bput(&s, head, (size_t)n);
  uint8_t big[10241];
  memset(big, 'b', sizeof(big));
  bput(&s, big, sizeof(big));
  bput(&s, "\r\n-------big1$\r\n", 16);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, s.p, s.len, 0),
                   DCMF_MSRP_RELAY_TOO_LARGE);
  struct bytes out = {0};
  struct dcmf_msrp_chunk c;
  take_message(&r, &out, &c);
  assert_int_equal(c.status, 413);
  assert_true(str_is(c.tid, "big1"));
  assert_null(dcmf_msrp_relay_peek_stream(&r, &out.len));
  /* the same from the stream: 413 back on the stream */
  feed_stream(&r, &s);
  assert_null(dcmf_msrp_relay_peek_message(&r, &out.len));
  take_stream(&r, &out, &c);
  assert_int_equal(c.status, 413);
  /* a SEND too large without Byte-Range and with flag '+': split from
   * position 1 with an unknown total */
  s.len = 0;
  uint8_t *huge = malloc(70000);
  memset(huge, 'h', 70000);
  mk_send(&s, "nosplit1", WIC, CORE, NULL, NULL, huge, 70000, '+');
  feed_stream(&r, &s);
  out.len = 0;
  assert_int_equal(drain_msgs(&r, &out, 65536, 0), 2);
  struct dcmf_msrp_chunk cs[4];
  assert_int_equal(cut(&out, cs, 4), 2);
  assert_int_equal(cs[0].range.start, 1);
  assert_int_equal(cs[0].range.total, DCMF_MSRP_UNKNOWN);
  assert_int_equal(cs[1].range.start, 1 + cs[0].body_len);
  assert_int_equal(cs[0].body_len + cs[1].body_len, 70000);
  assert_int_equal(cs[0].flag, '+');
  assert_int_equal(cs[1].flag, '+');
  assert_int_equal(
      verdicts(&r, DCMF_MSRP_RELAY_FROM_STREAM, DCMF_MSRP_RELAY_TOO_LARGE), 1);
  free(huge);
  free(out.p);
  free(s.p);
  dcmf_msrp_relay_free(&r);
}

/* ---- back-pressure ---- */

static void test_backpressure(void **state) {
  (void)state;
  struct dcmf_msrp_relay r;
  struct dcmf_msrp_relay_settings set = settings(0, 65536);
  set.queue_limit = 8192;
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
  struct bytes s = {0};
  uint8_t body[1000];
  memset(body, 'q', sizeof(body));
  for (int i = 0; i < 40; i++) {
    char tid[16];
    snprintf(tid, sizeof(tid), "bp%04d", i);
    mk_send(&s, tid, WIC, CORE, NULL, NULL, body, sizeof(body), '$');
  }
  size_t off = 0, msgs = 0;
  int stalls = 0;
  while (off < s.len || dcmf_msrp_relay_peek_message(&r, &(size_t){0})) {
    if (dcmf_msrp_relay_stream_wanted(&r) && off < s.len) {
      int t = dcmf_msrp_relay_recv_stream(&r, s.p + off, s.len - off, 0);
      assert_true(t >= 0);
      off += (size_t)t;
    }
    /* the queue ends at most one chunk over its limit */
    size_t q = 0, len;
    assert_true(dcmf_msrp_relay_mem(&r) < 8192 + 2 * 2048 + 64 * 1024);
    if (!dcmf_msrp_relay_stream_wanted(&r)) {
      stalls++;
      assert_int_equal(dcmf_msrp_relay_recv_stream(&r, s.p + off, 1, 0), 0);
    }
    if (dcmf_msrp_relay_peek_message(&r, &len) != NULL) {
      q++;
      assert_int_equal(dcmf_msrp_relay_pop_message(&r, 0), 0);
      msgs++;
    }
    (void)q;
  }
  assert_int_equal(msgs, 40);
  assert_true(stalls > 0);

  /* messages -> stream: EXHAUSTED at the limit, taken once drained */
  struct bytes m = {0};
  mk_send(&m, "bpM1", CORE, WIC, NULL, NULL, body, sizeof(body), '$');
  int taken = 0;
  while (dcmf_msrp_relay_message_wanted(&r)) {
    assert_int_equal(dcmf_msrp_relay_recv_message(&r, m.p, m.len, 0),
                     DCMF_MSRP_RELAY_FORWARDED);
    taken++;
  }
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, m.p, m.len, 0),
                   DCMF_ERR_EXHAUSTED);
  assert_true(taken >= 8192 / (int)m.len);
  size_t len;
  dcmf_msrp_relay_peek_stream(&r, &len);
  assert_int_equal(dcmf_msrp_relay_consume_stream(&r, len / 2, 0),
                   0); /* a partial write */
  dcmf_msrp_relay_peek_stream(&r, &len);
  assert_int_equal(dcmf_msrp_relay_consume_stream(&r, len, 0), 0);
  assert_true(dcmf_msrp_relay_message_wanted(&r));
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, m.p, m.len, 0),
                   DCMF_MSRP_RELAY_FORWARDED);
  free(m.p);
  free(s.p);
  dcmf_msrp_relay_free(&r);

  /* the relay's own answers toward a stream peer that reads nothing:
   * at twice the limit the stream is paused; writing resumes it */
  set = settings(1, 65536);
  set.queue_limit = 2048;
  assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
  s.p = NULL;
  s.len = s.cap = 0;
  for (int i = 0; i < 100; i++) {
    char tid[16];
    snprintf(tid, sizeof(tid), "wp%04d", i);
    mk_send(&s, tid, "msrp://other.example.org:1/x1;tcp", CORE, NULL, NULL,
            (const uint8_t *)"x", 1, '$');
  }
  int t = dcmf_msrp_relay_recv_stream(&r, s.p, s.len, 0);
  assert_true(t >= 0 && (size_t)t < s.len);
  assert_false(dcmf_msrp_relay_stream_wanted(&r));
  size_t answered = 0;
  off = (size_t)t;
  struct bytes out = {0};
  for (int rounds = 0; rounds < 1000; rounds++) {
    out.len = 0;
    drain_stream(&r, &out);
    answered += count_responses(&out, 481);
    if (off == s.len && dcmf_msrp_relay_peek_stream(&r, &len) == NULL) {
      break;
    }
    t = dcmf_msrp_relay_recv_stream(&r, s.p + off, s.len - off, 0);
    assert_true(t >= 0);
    off += (size_t)t;
  }
  assert_int_equal(answered, 100);
  assert_int_equal(
      verdicts(&r, DCMF_MSRP_RELAY_FROM_STREAM, DCMF_MSRP_RELAY_WRONG_PATH),
      100);
  free(out.p);
  free(s.p);
  dcmf_msrp_relay_free(&r);
}

/* ---- 4 MiB each way, peak memory bounded ---- */

#define BIG_MSG (4u << 20)
/* the core sends 256 KiB chunks, or the whole message in one chunk,
 * which is passed on in pieces while it streams in */
static const size_t core_chunks[] = {256u << 10, BIG_MSG};
#define WIC_MMS (64u << 10) /* the WIC's max-message-size */

static void test_four_mib(void **state) {
  (void)state;
  for (int round = 0; round < 4; round++) {
    int aware = round & 1;
    size_t core_chunk = core_chunks[round >> 1];
    struct dcmf_msrp_relay r;
    struct dcmf_msrp_relay_settings set = settings(aware, WIC_MMS);
    set.max_chunk_body = 256u << 10;
    set.queue_limit = 128u << 10;
    assert_int_equal(dcmf_msrp_relay_init(&r, &set), 0);
    uint8_t *msg = malloc(BIG_MSG);
    for (size_t i = 0; i < BIG_MSG; i++) {
      msg[i] = (uint8_t)(i * 2654435761u >> 13);
    }
    /* the stream, generated chunk by chunk and fed in 16 KiB segments */
    size_t got = 0, pieces = 0, fed_chunks = 0;
    struct bytes seg = {0};
    uint64_t next = 1;
    for (size_t off = 0; off < BIG_MSG; off += core_chunk) {
      char tid[32], range[64];
      snprintf(tid, sizeof(tid), "big%zu", off / core_chunk);
      snprintf(range, sizeof(range), "%zu-%zu/%u", off + 1, off + core_chunk,
               BIG_MSG);
      seg.len = 0;
      mk_send(&seg, tid, aware ? MF_TCP : WIC, CORE, range, NULL, msg + off,
              core_chunk, off + core_chunk == BIG_MSG ? '$' : '+');
      fed_chunks++;
      size_t at = 0;
      while (at < seg.len) {
        size_t n = seg.len - at < 16384 ? seg.len - at : 16384;
        int t = dcmf_msrp_relay_recv_stream(&r, seg.p + at, n, 0);
        assert_true(t >= 0);
        at += (size_t)t;
        /* the WIC side reads (and answers) one message per round */
        size_t len;
        const uint8_t *m = dcmf_msrp_relay_peek_message(&r, &len);
        if (m != NULL) {
          struct dcmf_msrp_chunk c;
          assert_true(len <= WIC_MMS);
          assert_int_equal(dcmf_msrp_parse(m, len, &big_lim, &c), 0);
          assert_int_equal(c.range.start, next);
          assert_memory_equal(c.body, msg + next - 1, c.body_len);
          next += c.body_len;
          got += c.body_len;
          pieces++;
          char ptid[DCMF_MSRP_TID_MAX + 1];
          memcpy(ptid, c.tid.p, c.tid.len);
          ptid[c.tid.len] = 0;
          assert_int_equal(dcmf_msrp_relay_pop_message(&r, 0), 0);
          answer_piece(&r, ptid, 200, aware);
        }
      }
    }
    size_t len;
    const uint8_t *m;
    while ((m = dcmf_msrp_relay_peek_message(&r, &len)) != NULL) {
      struct dcmf_msrp_chunk c;
      assert_int_equal(dcmf_msrp_parse(m, len, &big_lim, &c), 0);
      assert_memory_equal(c.body, msg + next - 1, c.body_len);
      next += c.body_len;
      got += c.body_len;
      pieces++;
      char ptid[DCMF_MSRP_TID_MAX + 1];
      memcpy(ptid, c.tid.p, c.tid.len);
      ptid[c.tid.len] = 0;
      assert_int_equal(dcmf_msrp_relay_pop_message(&r, 0), 0);
      answer_piece(&r, ptid, 200, aware);
    }
    assert_int_equal(got, BIG_MSG);
    assert_true(pieces >= BIG_MSG / WIC_MMS);
    /* one 200 per core chunk, on the core's ids */
    struct bytes resp = {0};
    drain_stream(&r, &resp);
    struct dcmf_msrp_chunk cs[64];
    assert_int_equal(cut(&resp, cs, 64), fed_chunks);
    for (size_t i = 0; i < fed_chunks; i++) {
      char tid[32];
      snprintf(tid, sizeof(tid), "big%zu", i);
      assert_int_equal(cs[i].status, 200);
      assert_true(str_is(cs[i].tid, tid));
    }
    /* never the message, nor near it: a chunk, a queue, a split */
    size_t peak = dcmf_msrp_relay_stats(&r)->peak_mem;
    assert_true(peak < 1024u * 1024u);

    /* and back: the WIC sends 4 MiB in 64 KiB messages */
    size_t sent = 0, back = 0;
    struct dcmf_msrp_framer f;
    assert_int_equal(dcmf_msrp_framer_init(&f, &big_lim), 0);
    uint64_t want = 1;
    while (sent < BIG_MSG || dcmf_msrp_relay_peek_stream(&r, &len) != NULL) {
      if (sent < BIG_MSG && dcmf_msrp_relay_message_wanted(&r)) {
        size_t n = BIG_MSG - sent < 60000 ? BIG_MSG - sent : 60000;
        char tid[32], range[64];
        snprintf(tid, sizeof(tid), "wic%zu", sent);
        snprintf(range, sizeof(range), "%zu-%zu/%u", sent + 1, sent + n,
                 BIG_MSG);
        seg.len = 0;
        mk_send(&seg, tid, aware ? MF_DC : CORE, WIC, range, NULL, msg + sent,
                n, sent + n == BIG_MSG ? '$' : '+');
        assert_true(seg.len <= WIC_MMS);
        assert_int_equal(dcmf_msrp_relay_recv_message(&r, seg.p, seg.len, 0),
                         DCMF_MSRP_RELAY_FORWARDED);
        sent += n;
      }
      /* the TCP side writes at most 20000 bytes per round */
      const uint8_t *p = dcmf_msrp_relay_peek_stream(&r, &len);
      if (p != NULL) {
        size_t n = len < 20000 ? len : 20000;
        size_t at = 0;
        while (at < n) {
          int t = dcmf_msrp_framer_feed(&f, p + at, n - at);
          assert_true(t > 0);
          at += (size_t)t;
          struct dcmf_msrp_chunk c;
          while (dcmf_msrp_framer_next(&f, &c) == 1) {
            assert_int_equal(c.range.start, want);
            assert_memory_equal(c.body, msg + want - 1, c.body_len);
            if (aware) {
              assert_true(str_is(c.to_path, CORE));
              assert_true(str_is(c.from_path, MF_TCP));
            }
            want += c.body_len;
            back += c.body_len;
          }
        }
        assert_int_equal(dcmf_msrp_relay_consume_stream(&r, n, 0), 0);
      }
    }
    assert_int_equal(back, BIG_MSG);
    assert_true(dcmf_msrp_relay_stats(&r)->peak_mem < 1024u * 1024u);
    print_message("4 MiB each way (%s, core chunks of %zu): peak relay "
                  "memory %zu bytes\n",
                  aware ? "aware" : "agnostic", core_chunk,
                  dcmf_msrp_relay_stats(&r)->peak_mem);
    dcmf_msrp_framer_free(&f);
    free(seg.p);
    free(resp.p);
    free(msg);
    dcmf_msrp_relay_free(&r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_agnostic_every_split),
      cmocka_unit_test(test_agnostic_messages_to_stream),
      cmocka_unit_test(test_split_responses),
      cmocka_unit_test(test_streaming_split),
      cmocka_unit_test(test_unsplit_keeps_tid),
      cmocka_unit_test(test_aware_rewrites),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_four_mib),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
