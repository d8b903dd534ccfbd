/*
 * Fuzz target for the MSRP relay (dcmf/proto/msrp_relay.h). The first
 * byte picks the mode (aware or agnostic) and the message leg's
 * max-message-size; the rest is a script of operations, each an op byte
 * and its operands:
 *   0: raw stream bytes (1-byte length, then the bytes)
 *   1: a raw message (2-byte length, then the bytes)
 *   2: a well-formed SEND built from operands (leg, body length, body
 *      seed, flag, Byte-Range or not, Failure-Report, To-Path ours or
 *      not), fed to the stream (in two pieces) or as a message
 *   3: pop a message; its transaction id is remembered
 *   4: answer the remembered id from the message leg with a code
 *   5: write some stream bytes (a partial write)
 *   6: advance the clock and handle expiry
 *   7: a re-offer's new peer path for one leg (aware; refused when
 *      agnostic or malformed), maybe while a split streams
 *
 * Invariants (abort on violation):
 *   - every message out is one complete chunk that dcmf_msrp_parse takes,
 *     at most max-message-size;
 *   - the bytes out on the stream leg cut into chunks with a framer
 *     without an error;
 *   - dcmf_msrp_relay_mem stays under a bound set by the limits alone
 *     (no unbounded growth), and the relay takes nothing while it says
 *     it wants nothing;
 *   - a fatal stream error is sticky.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fuzz_oracle.h"
#include "msrp.h"
#include "msrp_relay.h"

#define MF_DC "msrps://mf.example.net:5000/mfdc1;dc"
#define MF_TCP "msrp://mf.example.net:6000/mftcp1;tcp"
#define WIC "msrps://wic.example.com:9/wicsess;dc"
#define CORE "msrp://core.example.com:7777/coresess;tcp"

/* The limits under fuzzing, and the memory bound they imply: the
 * framer's window, the aware scratch buffer, two queues at twice their
 * limit plus one split chunk each, the split table. */
#define F_HEADER 512
#define F_BODY 8192
#define F_QUEUE 4096
#define F_MEM_BOUND (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_require(int cond) {
  if (!cond)
    abort();
}

static void fill_counter(void *user, uint8_t *buf, size_t len) {
  uint32_t *x = user;
  for (size_t i = 0; i < len; i++) {
    *x = *x * 1103515245u + 12345u;
    buf[i] = (uint8_t)(*x >> 16);
  }
}

struct input {
  const uint8_t *p;
  size_t len;
};

FUZZ_ORACLE static uint8_t take(struct input *in) {
  if (in->len == 0)
    return 0;
  in->len--;
  return *in->p++;
}

static const struct dcmf_msrp_limits any = {1 << 16, 1 << 20};

struct state {
  struct dcmf_msrp_relay r;
  struct dcmf_msrp_framer out; /* the stream leg's receiver */
  size_t mms;
  int aware;
  char tid[DCMF_MSRP_TID_MAX + 1];
  uint64_t now;
  int fatal;
};

/* Checks the head message, pops it, remembers its id. */
FUZZ_ORACLE static void pop(struct state *s) {
  size_t len;
  const uint8_t *m = dcmf_msrp_relay_peek_message(&s->r, &len);
  if (m == NULL)
    return;
  struct dcmf_msrp_chunk c;
  fuzz_require(len <= s->mms);
  fuzz_require(dcmf_msrp_parse(m, len, &any, &c) == 0);
  if (c.kind == DCMF_MSRP_REQUEST) {
    memcpy(s->tid, c.tid.p, c.tid.len);
    s->tid[c.tid.len] = 0;
  }
  int rv = dcmf_msrp_relay_pop_message(&s->r, s->now);
  fuzz_require(rv == 0 || rv == DCMF_ERR_MALFORMED || rv == DCMF_ERR_TOO_LARGE);
}

/* Writes up to |n| stream bytes into the receiving framer. */
FUZZ_ORACLE static void write_stream(struct state *s, size_t n) {
  size_t len;
  const uint8_t *p = dcmf_msrp_relay_peek_stream(&s->r, &len);
  if (p == NULL)
    return;
  if (n > len)
    n = len;
  size_t at = 0;
  while (at < n) {
    int t = dcmf_msrp_framer_feed(&s->out, p + at, n - at);
    fuzz_require(t > 0);
    at += (size_t)t;
    struct dcmf_msrp_chunk c;
    int rv;
    while ((rv = dcmf_msrp_framer_next(&s->out, &c)) == 1) {
    }
    fuzz_require(rv == 0);
  }
  int rv = dcmf_msrp_relay_consume_stream(&s->r, n, s->now);
  fuzz_require(rv == 0 || rv == DCMF_ERR_MALFORMED || rv == DCMF_ERR_TOO_LARGE);
}

FUZZ_ORACLE static void feed_stream(struct state *s, const uint8_t *d,
                                    size_t n) {
  int wanted = dcmf_msrp_relay_stream_wanted(&s->r);
  int rv = dcmf_msrp_relay_recv_stream(&s->r, d, n, s->now);
  if (rv < 0) {
    fuzz_require(rv == DCMF_ERR_MALFORMED || rv == DCMF_ERR_TOO_LARGE);
    s->fatal = rv;
  } else {
    fuzz_require(!s->fatal);
    fuzz_require((size_t)rv <= n);
    fuzz_require(wanted || rv == 0);
  }
}

FUZZ_ORACLE static void feed_message(struct state *s, const uint8_t *d,
                                     size_t n) {
  int wanted = dcmf_msrp_relay_message_wanted(&s->r);
  int rv = dcmf_msrp_relay_recv_message(&s->r, d, n, s->now);
  fuzz_require(rv >= 0 ? wanted && rv < DCMF_MSRP_RELAY_N_VERDICTS
                       : rv == DCMF_ERR_EXHAUSTED && !wanted);
}

/* A well-formed SEND from the operands. */
FUZZ_ORACLE static void built_send(struct state *s, struct input *in) {
  static uint8_t buf[F_BODY + 1024];
  static uint8_t body[F_BODY];
  uint8_t leg = take(in), l1 = take(in), l2 = take(in), seed = take(in);
  uint8_t flags = take(in);
  size_t body_len = ((size_t)l1 << 8 | l2) % F_BODY;
  for (size_t i = 0; i < body_len; i++) {
    body[i] = (uint8_t)('a' + (seed + i * 7) % 26);
  }
  int to_stream = leg & 1;
  const char *own =
      s->aware ? (to_stream ? MF_TCP : MF_DC) : (to_stream ? WIC : CORE);
  const char *to = flags & 1 ? "msrp://other.example.org:1/x1;tcp" : own;
  const char *from = to_stream ? CORE : WIC;
  const char *fr[] = {NULL, "yes", "no", "partial"};
  const char *f = fr[(flags >> 1) & 3];
  char flag = "$+#$"[(flags >> 3) & 3];
  char range[64] = "";
  if (flags & 0x20) {
    snprintf(range, sizeof(range), "Byte-Range: 1-%zu/%zu\r\n", body_len,
             body_len);
  }
  char tid[24];
  snprintf(tid, sizeof(tid), "zq%02x%02x%02xQZ", seed, l1, l2);
  int n = snprintf((char *)buf, sizeof(buf),
                   "MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\n"
                   "Message-ID: msg%s\r\n%s%s%s%s"
                   "Content-Type: text/plain\r\n\r\n",
                   tid, to, from, tid, range, f ? "Failure-Report: " : "",
                   f ? f : "", f ? "\r\n" : "");
  size_t len = (size_t)n;
  memcpy(buf + len, body, body_len);
  len += body_len;
  len += (size_t)snprintf((char *)buf + len, sizeof(buf) - len,
                          "\r\n-------%s%c\r\n", tid, flag);
  if (to_stream) {
    size_t cut = seed % (len + 1);
    feed_stream(s, buf, cut);
    feed_stream(s, buf + cut, len - cut);
  } else {
    feed_message(s, buf, len);
  }
}

FUZZ_ORACLE static void answer(struct state *s, uint8_t code_sel) {
  static const int codes[] = {200, 200, 200, 400, 403, 408, 413, 415, 481};
  char buf[512];
  if (s->tid[0] == 0)
    return;
  int code = codes[code_sel % 9];
  int n = snprintf(buf, sizeof(buf),
                   "MSRP %s %03d x\r\nTo-Path: %s\r\nFrom-Path: %s\r\n"
                   "-------%s$\r\n",
                   s->tid, code, s->aware ? MF_DC : CORE, WIC, s->tid);
  feed_message(s, (const uint8_t *)buf, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t mms_choice[] = {1536, 2048, 3000, 9000};
  struct input in = {data, size};
  struct state s;
  memset(&s, 0, sizeof(s));
  uint8_t cfg = take(&in);
  uint32_t seed = 7;
  struct dcmf_msrp_relay_settings set;
  memset(&set, 0, sizeof(set));
  s.aware = cfg & 1;
  s.mms = mms_choice[(cfg >> 1) & 3];
  set.mode = s.aware ? DCMF_MSRP_RELAY_AWARE : DCMF_MSRP_RELAY_AGNOSTIC;
  set.max_message_size = s.mms;
  set.max_header = F_HEADER;
  set.max_chunk_body = F_BODY;
  set.queue_limit = F_QUEUE;
  set.max_splits = 4;
  set.tx_timeout_ms = 1000;
  set.rng.fill = fill_counter;
  set.rng.user = &seed;
  set.dc_own_uri = MF_DC;
  set.tcp_own_uri = MF_TCP;
  set.dc_peer_path = WIC;
  set.tcp_peer_path = CORE;
  fuzz_require(dcmf_msrp_relay_init(&s.r, &set) == 0);
  fuzz_require(dcmf_msrp_framer_init(&s.out, &any) == 0);
  for (int steps = 0; in.len > 0 && steps < 4096; steps++) {
    uint8_t op = take(&in);
    switch (op % 8) {
    case 0: {
      size_t n = take(&in);
      n = n < in.len ? n : in.len;
      feed_stream(&s, in.p, n);
      in.p += n;
      in.len -= n;
      break;
    }
    case 1: {
      size_t n = (size_t)take(&in) << 8;
      n |= take(&in);
      n = n < in.len ? n : in.len;
      feed_message(&s, in.p, n);
      in.p += n;
      in.len -= n;
      break;
    }
    case 2:
      built_send(&s, &in);
      break;
    case 3:
      pop(&s);
      break;
    case 4:
      answer(&s, take(&in));
      break;
    case 5:
      write_stream(&s, (size_t)take(&in) * 64 + 1);
      break;
    case 7: {
      static const char *paths[] = {
          WIC, CORE, "msrps://wic2.example.com:9/re1;dc",
          "msrp://relay.example.org:2855/hop;tcp "
          "msrp://core2.example.com:7777/re2;tcp",
          "not a path", ""};
      uint8_t sel = take(&in);
      int rv = dcmf_msrp_relay_set_peer_path(&s.r, sel & 1, paths[(sel >> 1) % 6]);
      fuzz_require(rv == 0 || rv == DCMF_ERR_INVALID);
      fuzz_require(s.aware || rv == DCMF_ERR_INVALID);
      break;
    }
    default: {
      s.now += (uint64_t)take(&in) * 10;
      int rv = dcmf_msrp_relay_handle_expiry(&s.r, s.now);
      fuzz_require(rv == 0 || rv == DCMF_ERR_MALFORMED ||
                   rv == DCMF_ERR_TOO_LARGE);
      fuzz_require(dcmf_msrp_relay_next_expiry(&s.r) > s.now);
      break;
    }
    }
    fuzz_require(dcmf_msrp_relay_mem(&s.r) <= F_MEM_BOUND);
  }
  /* drain both legs: every output still checks */
  for (int i = 0;
       i < 100000 && dcmf_msrp_relay_peek_message(&s.r, &(size_t){0}); i++) {
    pop(&s);
  }
  for (int i = 0; i < 100000 && dcmf_msrp_relay_peek_stream(&s.r, &(size_t){0});
       i++) {
    write_stream(&s, SIZE_MAX);
  }
  fuzz_require(dcmf_msrp_relay_stats(&s.r)->peak_mem <= F_MEM_BOUND);
  dcmf_msrp_relay_free(&s.r);
  dcmf_msrp_framer_free(&s.out);
  return 0;
}
