/*
 * Fuzz target for the MSRP engine (dcmf/proto/msrp.h). The input's first
 * byte says how many of the next bytes are piece sizes; the rest is a
 * TCP byte stream, fed to one framer in those pieces (cycled) and to
 * another all at once.
 *
 * Invariants (abort on violation):
 *   - both framers yield the same chunks, byte for byte, and stop with
 *     the same error (or none), and the chunks are consecutive slices
 *     of the stream from its start;
 *   - a third framer, whose chunks in progress lose body bytes to
 *     dcmf_msrp_framer_partial and _drop_body as they arrive (as the
 *     relay does), yields the same chunks, bodies and flags (the head
 *     and body partial gives are the stream's), with no error where the
 *     whole framer had none;
 *   - each chunk parses alone with dcmf_msrp_parse to the same fields;
 *   - written again by dcmf_msrp_write it parses to the same fields
 *     (round trip), and the writing is a fixed point;
 *   - a SEND split by the re-chunker (body limit from the input) gives
 *     pieces within the limit with consecutive Byte-Ranges, the same
 *     Message-ID, '+' on all but the last (which keeps the flag), whose
 *     bodies put back by Byte-Range are the original body;
 *   - the path rewriter changes To-Path and From-Path and nothing else.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_oracle.h"
#include "msrp.h"

#define FUZZ_MAX 65536
#define MAX_CHUNKS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_require(int cond) {
  if (!cond)
    abort();
}

static const struct dcmf_msrp_limits lim = {1024, 8192};

struct rec {
  size_t off, len;    /* the chunk's place in the stream */
  uint64_t body_hash; /* FNV-1a of its body, however it came out */
  size_t body_len;
  char flag;
};

struct run {
  struct rec chunks[MAX_CHUNKS];
  size_t n;
  int err;
};

static void fill_counter(void *user, uint8_t *buf, size_t len) {
  uint32_t *x = user;
  for (size_t i = 0; i < len; i++) {
    *x = *x * 1103515245u + 12345u;
    buf[i] = (uint8_t)(*x >> 16);
  }
}

FUZZ_ORACLE static int str_eq(struct dcmf_msrp_str a, struct dcmf_msrp_str b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* The fields a round trip keeps (the tid too unless |other_tid|). */
FUZZ_ORACLE static int same_fields(const struct dcmf_msrp_chunk *a,
                                   const struct dcmf_msrp_chunk *b, int paths) {
  if (a->kind != b->kind || !str_eq(a->tid, b->tid) || a->flag != b->flag ||
      a->has_body != b->has_body || a->body_len != b->body_len ||
      (a->body_len > 0 && memcmp(a->body, b->body, a->body_len) != 0) ||
      a->n_headers != b->n_headers || !str_eq(a->message_id, b->message_id) ||
      !str_eq(a->content_type, b->content_type) ||
      !str_eq(a->success_report, b->success_report) ||
      !str_eq(a->failure_report, b->failure_report) ||
      a->has_range != b->has_range || a->has_status != b->has_status) {
    return 0;
  }
  if (paths && (!str_eq(a->to_path, b->to_path) ||
                !str_eq(a->from_path, b->from_path))) {
    return 0;
  }
  if (a->has_range &&
      (a->range.start != b->range.start || a->range.end != b->range.end ||
       a->range.total != b->range.total)) {
    return 0;
  }
  if (a->has_status &&
      (a->status_ns != b->status_ns || a->status_code != b->status_code)) {
    return 0;
  }
  if (a->kind == DCMF_MSRP_REQUEST
          ? (a->method != b->method || !str_eq(a->method_name, b->method_name))
          : (a->status != b->status || !str_eq(a->comment, b->comment))) {
    return 0;
  }
  for (size_t i = 0; i < a->n_headers; i++) {
    if (!str_eq(a->headers[i].name, b->headers[i].name) ||
        (paths && !str_eq(a->headers[i].value, b->headers[i].value))) {
      return 0;
    }
  }
  return 1;
}

FUZZ_ORACLE static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h = (h ^ p[i]) * 1099511628211ull;
  }
  return h;
}

/* |peel|: after each feed, body bytes of the chunk in progress are
 * taken out with dcmf_msrp_framer_partial and _drop_body (a few at a
 * time, by the piece sizes), as a relay passing a chunk on does; the
 * chunk then ends with the rest of its body only. */
static void feed_all(const uint8_t *s, size_t len, const uint8_t *sizes,
                     size_t nsizes, int peel, struct run *out) {
  struct dcmf_msrp_framer f;
  fuzz_require(dcmf_msrp_framer_init(&f, &lim) == 0);
  size_t at = 0, k = 0, seen = 0, peeled = 0;
  uint64_t hash = 14695981039346656037ull;
  int rv = 0;
  memset(out, 0, sizeof(*out));
  while (at < len && rv >= 0) {
    size_t piece =
        nsizes > 0 ? 1 + (size_t)(sizes[k++ % nsizes] % 97) : len - at;
    if (piece > len - at) {
      piece = len - at;
    }
    rv = dcmf_msrp_framer_feed(&f, s + at, piece);
    if (rv < 0) {
      break;
    }
    at += (size_t)rv;
    struct dcmf_msrp_chunk c;
    while ((rv = dcmf_msrp_framer_next(&f, &c)) == 1) {
      fuzz_require(c.raw >= f.win.buf && c.raw_len > 0);
      hash = fnv(hash, c.body, c.body_len);
      if (out->n < MAX_CHUNKS) {
        out->chunks[out->n].off = seen;
        out->chunks[out->n].len = c.raw_len + peeled;
        out->chunks[out->n].body_hash = hash;
        out->chunks[out->n].body_len = c.body_len + peeled;
        out->chunks[out->n].flag = c.flag;
        out->n++;
      }
      if (!peel) {
        fuzz_require(memcmp(c.raw, s + seen, c.raw_len) == 0);
      }
      seen += c.raw_len + peeled;
      peeled = 0;
      hash = 14695981039346656037ull;
    }
    /* every fourth feed: a head parse per feed would make the run slow */
    if (peel && rv == 0 && k % 4 == 0 &&
        dcmf_msrp_framer_partial(&f, &c) == 1) {
      /* the head as the whole chunk will have it; the body so far is a
       * prefix of the stream's body, with no end-line in it */
      fuzz_require(c.has_body && c.flag == 0);
      fuzz_require(memcmp(c.raw, s + seen, (size_t)(c.body - c.raw)) == 0);
      fuzz_require(memcmp(c.body, s + seen + (size_t)(c.body - c.raw) + peeled,
                          c.body_len) == 0);
      size_t n = nsizes > 0 ? (size_t)(sizes[k % nsizes] % 64) : c.body_len;
      n = n < c.body_len ? n : c.body_len;
      hash = fnv(hash, c.body, n);
      dcmf_msrp_framer_drop_body(&f, n);
      peeled += n;
    }
  }
  out->err = rv < 0 ? rv : 0;
  dcmf_msrp_framer_free(&f);
}

static void check_rechunk(const struct dcmf_msrp_chunk *c, size_t max,
                          uint32_t seed) {
  static uint8_t piece[16384], whole[8192];
  struct dcmf_msrp_rechunker r;
  if (dcmf_msrp_rechunk_init(&r, c, max) != 0) {
    fuzz_require(c->method != DCMF_MSRP_SEND ||
                 (!c->has_range && c->flag != '$'));
    return;
  }
  struct dcmf_msrp_rng rng = {fill_counter, &seed};
  uint64_t first = c->has_range ? c->range.start : 1, next = first;
  size_t covered = 0;
  int n, count = 0;
  while ((n = dcmf_msrp_rechunk_next(&r, &rng, piece, sizeof(piece))) > 0) {
    struct dcmf_msrp_chunk p;
    struct dcmf_msrp_limits big = {4096, 16384};
    fuzz_require(dcmf_msrp_parse(piece, (size_t)n, &big, &p) == 0);
    count++;
    if (!c->has_body || c->body_len <= max) {
      /* it fits: the chunk as it was */
      fuzz_require(same_fields(c, &p, 1));
      continue;
    }
    fuzz_require(p.body_len <= max && p.body_len > 0);
    fuzz_require(p.has_range && p.range.start == next);
    fuzz_require(str_eq(p.message_id, c->message_id));
    fuzz_require(p.range.end == (p.body_len > 2048 ? DCMF_MSRP_UNKNOWN
                                                   : next + p.body_len - 1));
    fuzz_require(covered + p.body_len <= sizeof(whole));
    memcpy(whole + (p.range.start - first), p.body, p.body_len);
    covered += p.body_len;
    next += p.body_len;
    fuzz_require(p.flag == (covered == c->body_len ? c->flag : '+'));
  }
  /* a Byte-Range the pieces cannot carry (positions past 19 digits, or
   * an end past the total) is refused, and nothing else */
  if (n < 0) {
    return;
  }
  fuzz_require(n == 0 && count > 0);
  if (c->has_body && c->body_len > max) {
    fuzz_require(covered == c->body_len &&
                 memcmp(whole, c->body, c->body_len) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t out[16384], again[16384];
  static struct run a, b;
  if (size < 1 || size > FUZZ_MAX) {
    return 0;
  }
  size_t nsizes = data[0] % 8;
  if (size < 1 + nsizes) {
    return 0;
  }
  const uint8_t *sizes = data + 1, *s = data + 1 + nsizes;
  size_t len = size - 1 - nsizes;
  feed_all(s, len, sizes, nsizes, 0, &a);
  feed_all(s, len, NULL, 0, 0, &b);
  fuzz_require(a.n == b.n && a.err == b.err);
  for (size_t i = 0; i < a.n; i++) {
    fuzz_require(a.chunks[i].off == b.chunks[i].off &&
                 a.chunks[i].len == b.chunks[i].len &&
                 a.chunks[i].body_hash == b.chunks[i].body_hash);
  }
  /* Peeled as a relay does: the same chunks and bodies; the body limit
   * counts what is left, so only a run without an error must match in
   * full. */
  static struct run p;
  feed_all(s, len, sizes, nsizes, 1, &p);
  size_t common = p.n < b.n ? p.n : b.n;
  if (b.err == 0) {
    fuzz_require(p.err == 0 && p.n == b.n);
  }
  for (size_t i = 0; i < common; i++) {
    fuzz_require(p.chunks[i].off == b.chunks[i].off &&
                 p.chunks[i].len == b.chunks[i].len &&
                 p.chunks[i].body_len == b.chunks[i].body_len &&
                 p.chunks[i].body_hash == b.chunks[i].body_hash &&
                 p.chunks[i].flag == b.chunks[i].flag);
  }
  for (size_t i = 0; i < a.n; i++) {
    const uint8_t *raw = s + a.chunks[i].off;
    struct dcmf_msrp_chunk c, d, e;
    fuzz_require(dcmf_msrp_parse(raw, a.chunks[i].len, &lim, &c) == 0);
    int n = dcmf_msrp_write(&c, out, sizeof(out));
    fuzz_require(n > 0);
    struct dcmf_msrp_limits big = {4096, 16384};
    fuzz_require(dcmf_msrp_parse(out, (size_t)n, &big, &d) == 0);
    fuzz_require(same_fields(&c, &d, 1));
    fuzz_require(dcmf_msrp_write(&d, again, sizeof(again)) == n &&
                 memcmp(again, out, (size_t)n) == 0);
    n = dcmf_msrp_rewrite_paths(&c, "msrp://10.0.0.1:2855/gw1;tcp",
                                "msrps://[2001:db8::1]:9/x;dc", out,
                                sizeof(out));
    fuzz_require(n > 0);
    fuzz_require(dcmf_msrp_parse(out, (size_t)n, &big, &e) == 0);
    fuzz_require(same_fields(&c, &e, 0));
    fuzz_require(e.to_path.len == 28 &&
                 memcmp(e.to_path.p, "msrp://10.0.0.1:2855/gw1;tcp", 28) == 0);
    check_rechunk(&c, 64 + (size_t)(data[0] >> 3) * 97, (uint32_t)i);
    if (c.kind == DCMF_MSRP_REQUEST &&
        dcmf_msrp_build_response(&c, 200, "OK", NULL, out, sizeof(out)) > 0) {
      fuzz_require(c.method != DCMF_MSRP_REPORT);
    }
  }
  return 0;
}
