/*
 * The MSRP engine (dcmf/proto/msrp.h): the examples of RFC 4975 §11
 * typed in from the RFC, the framer fed at every split point, one byte
 * at a time and in random pieces, end-line look-alikes in bodies, the
 * flags and Byte-Range forms, malformed chunks with their errors, the
 * serializer's round trip, responses and REPORTs, the re-chunker on a
 * 1 MiB body, the path rewriter and MSRP URIs.
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

/* RFC 4975 §11.1, messages 4 and 5 (Alice's SEND, Bob's 200). */
#define ALICE "msrp://alicepc.example.com:7777/iau39soe2843z;tcp"
#define BOB "msrp://bob.example.com:8888/9di4eae923wzd;tcp"
static const char rfc_send[] = "MSRP d93kswow SEND\r\n"
                               "To-Path: " BOB "\r\n"
                               "From-Path: " ALICE "\r\n"
                               "Message-ID: 12339sdqwer\r\n"
                               "Byte-Range: 1-16/16\r\n"
                               "Content-Type: text/plain\r\n"
                               "\r\n"
                               "Hi, I'm Alice!\r\n"
                               "-------d93kswow$\r\n";
static const char rfc_ok[] = "MSRP d93kswow 200 OK\r\n"
                             "To-Path: " ALICE "\r\n"
                             "From-Path: " BOB "\r\n"
                             "-------d93kswow$\r\n";
/* §11.4: a message/cpim message in two chunks. */
#define BOBPC "msrp://bobpc.example.com:8888/9di4eae923wzd;tcp"
#define ALICE7654 "msrp://alicepc.example.com:7654/iau39soe2843z;tcp"
static const char rfc_cpim1[] = "MSRP d93kswow SEND\r\n"
                                "To-Path: " BOBPC "\r\n"
                                "From-Path: " ALICE7654 "\r\n"
                                "Message-ID: 12339sdqwer\r\n"
                                "Byte-Range: 1-137/148\r\n"
                                "Content-Type: message/cpim\r\n"
                                "\r\n"
                                "To: Bob <sip:bob@example.com>\r\n"
                                "From: Alice <sip:alice@example.com>\r\n"
                                "DateTime: 2006-05-15T15:02:31-03:00\r\n"
                                "Content-Type: text/plain\r\n"
                                "\r\n"
                                "ABCD\r\n"
                                "-------d93kswow+\r\n";
static const char rfc_cpim2[] = "MSRP op2nc9a SEND\r\n"
                                "To-Path: " BOBPC "\r\n"
                                "From-Path: " ALICE7654 "\r\n"
                                "Message-ID: 12339sdqwer\r\n"
                                "Byte-Range: 138-148/148\r\n"
                                "Content-Type: message/cpim\r\n"
                                "\r\n"
                                "1234567890\r\n"
                                "-------op2nc9a$\r\n";
/* §11.5: a system message, no reports. */
static const char rfc_system[] =
    "MSRP d93kswow SEND\r\n"
    "To-Path: msrp://alicepc.example.com:8888/9di4eae923wzd;tcp\r\n"
    "From-Path: msrp://example.com:7777/iau39soe2843z;tcp\r\n"
    "Message-ID: 12339sdqwer\r\n"
    "Byte-Range: 1-38/38\r\n"
    "Failure-Report: no\r\n"
    "Success-Report: no\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "This conference will end in 5 minutes\r\n"
    "-------d93kswow$\r\n";
/* §11.6: the success REPORT. */
static const char rfc_report[] = "MSRP dkei38sd REPORT\r\n"
                                 "To-Path: " ALICE "\r\n"
                                 "From-Path: " BOB "\r\n"
                                 "Message-ID: 12339sdqwer\r\n"
                                 "Byte-Range: 1-106/106\r\n"
                                 "Status: 000 200 OK\r\n"
                                 "-------dkei38sd$\r\n";

static const struct dcmf_msrp_limits lim = {4096, 2 << 20};

static int str_is(struct dcmf_msrp_str s, const char *want) {
  return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static int parse_str(const char *text, struct dcmf_msrp_chunk *c) {
  return dcmf_msrp_parse((const uint8_t *)text, strlen(text), &lim, c);
}

/* A deterministic generator for tests (xorshift). */
struct lcg {
  uint64_t x;
};

static uint64_t next_rand(struct lcg *g) {
  g->x ^= g->x << 13;
  g->x ^= g->x >> 7;
  g->x ^= g->x << 17;
  return g->x;
}

static void fill_rand(void *user, uint8_t *buf, size_t len) {
  for (size_t i = 0; i < len; i++) {
    buf[i] = (uint8_t)next_rand(user);
  }
}

static void test_rfc_examples(void **state) {
  (void)state;
  struct dcmf_msrp_chunk c;
  assert_int_equal(parse_str(rfc_send, &c), 0);
  assert_int_equal(c.kind, DCMF_MSRP_REQUEST);
  assert_int_equal(c.method, DCMF_MSRP_SEND);
  assert_true(str_is(c.tid, "d93kswow"));
  assert_true(str_is(c.method_name, "SEND"));
  assert_true(str_is(c.to_path, BOB));
  assert_true(str_is(c.from_path, ALICE));
  assert_true(str_is(c.message_id, "12339sdqwer"));
  assert_true(str_is(c.content_type, "text/plain"));
  assert_true(c.has_range);
  assert_int_equal(c.range.start, 1);
  assert_int_equal(c.range.end, 16);
  assert_int_equal(c.range.total, 16);
  assert_true(c.has_body);
  /* 14 bytes, though the RFC's Byte-Range says 16: §7.3.1 goes by the
   * body, so the parser does too */
  assert_int_equal(c.body_len, 14);
  assert_memory_equal(c.body, "Hi, I'm Alice!", 14);
  assert_int_equal(c.flag, '$');
  assert_int_equal(c.n_headers, 5);
  assert_int_equal(c.raw_len, strlen(rfc_send));

  /* Bob's 200 OK, built from the request, is the RFC's byte for byte */
  uint8_t out[1024];
  int n = dcmf_msrp_build_response(&c, 200, "OK", NULL, out, sizeof(out));
  assert_int_equal(n, (int)strlen(rfc_ok));
  assert_memory_equal(out, rfc_ok, strlen(rfc_ok));
  /* and written again from its parse, each example is unchanged */
  const char *all[] = {rfc_send,   rfc_ok,     rfc_cpim1,
                       rfc_cpim2,  rfc_system, rfc_report};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    assert_int_equal(parse_str(all[i], &c), 0);
    n = dcmf_msrp_write(&c, out, sizeof(out));
    assert_int_equal(n, (int)strlen(all[i]));
    assert_memory_equal(out, all[i], strlen(all[i]));
  }

  assert_int_equal(parse_str(rfc_ok, &c), 0);
  assert_int_equal(c.kind, DCMF_MSRP_RESPONSE);
  assert_int_equal(c.status, 200);
  assert_true(str_is(c.comment, "OK"));
  assert_false(c.has_body);

  assert_int_equal(parse_str(rfc_cpim1, &c), 0);
  assert_int_equal(c.flag, '+');
  assert_int_equal(c.range.end, 137);
  assert_int_equal(c.range.total, 148);
  assert_true(str_is(c.content_type, "message/cpim"));
  /* the CPIM headers and blank line are body, not MSRP headers */
  assert_int_equal(c.n_headers, 5);
  assert_int_equal(c.body_len, strlen(rfc_cpim1) - (size_t)(c.body - c.raw) -
                                   strlen("\r\n-------d93kswow+\r\n"));
  assert_int_equal(parse_str(rfc_cpim2, &c), 0);
  assert_int_equal(c.range.start, 138);
  assert_int_equal(c.body_len, 10);

  assert_int_equal(parse_str(rfc_system, &c), 0);
  assert_true(str_is(c.failure_report, "no"));
  assert_true(str_is(c.success_report, "no"));
  assert_false(dcmf_msrp_response_wanted(&c, 200));
  assert_false(dcmf_msrp_response_wanted(&c, 481));

  assert_int_equal(parse_str(rfc_report, &c), 0);
  assert_int_equal(c.method, DCMF_MSRP_REPORT);
  assert_true(c.has_status);
  assert_int_equal(c.status_ns, 0);
  assert_int_equal(c.status_code, 200);
  assert_false(c.has_body);
  assert_false(dcmf_msrp_response_wanted(&c, 200));
  assert_int_equal(dcmf_msrp_build_response(&c, 200, "OK", NULL, out,
                                            sizeof(out)),
                   DCMF_ERR_INVALID);
}

/* The same REPORT from dcmf_msrp_build_report, but for its fresh tid. */
static void test_build_report(void **state) {
  (void)state;
  struct lcg g = {42};
  struct dcmf_msrp_rng rng = {fill_rand, &g};
  struct dcmf_msrp_range r = {1, 106, 106};
  uint8_t out[1024];
  int n = dcmf_msrp_build_report(ALICE, BOB, "12339sdqwer", &r, 200, "OK",
                                 &rng, out, sizeof(out));
  assert_true(n > 0);
  struct dcmf_msrp_chunk c;
  assert_int_equal(dcmf_msrp_parse(out, (size_t)n, &lim, &c), 0);
  assert_int_equal(c.tid.len, DCMF_MSRP_TID_LEN);
  char want[1024];
  char tid[DCMF_MSRP_TID_LEN + 1];
  memcpy(tid, c.tid.p, DCMF_MSRP_TID_LEN);
  tid[DCMF_MSRP_TID_LEN] = 0;
  snprintf(want, sizeof(want),
           "MSRP %s REPORT\r\n"
           "To-Path: " ALICE "\r\n"
           "From-Path: " BOB "\r\n"
           "Message-ID: 12339sdqwer\r\n"
           "Byte-Range: 1-106/106\r\n"
           "Status: 000 200 OK\r\n"
           "-------%s$\r\n",
           tid, tid);
  assert_int_equal(n, (int)strlen(want));
  assert_memory_equal(out, want, strlen(want));
  /* a failure REPORT without range or text */
  n = dcmf_msrp_build_report(ALICE, BOB, "12339sdqwer", NULL, 413, NULL, &rng,
                             out, sizeof(out));
  assert_true(n > 0);
  assert_int_equal(dcmf_msrp_parse(out, (size_t)n, &lim, &c), 0);
  assert_int_equal(c.status_code, 413);
  assert_false(c.has_range);
  assert_int_equal(dcmf_msrp_build_report(ALICE, BOB, "x", NULL, 200, NULL,
                                          &rng, out, sizeof(out)),
                   DCMF_ERR_INVALID); /* "x" is no ident */
  assert_int_equal(dcmf_msrp_build_report(ALICE, BOB, "12339sdqwer", NULL,
                                          200, NULL, &rng, out, 20),
                   DCMF_ERR_TOO_LARGE);
}

/* What one chunk came out as: its bytes and a few fields, so chunks
 * from different feeds compare. */
struct seen {
  char raw[4096];
  size_t raw_len;
  size_t body_off, body_len;
  char flag;
};

/* Feeds |len| bytes in pieces whose sizes come from |sizes| (cycled;
 * NULL: all at once) and records the chunks. Returns how many, or the
 * framer's error. */
static int run_framer(const uint8_t *data, size_t len, const size_t *sizes,
                      size_t nsizes, struct seen *out, size_t max) {
  struct dcmf_msrp_framer f;
  assert_int_equal(dcmf_msrp_framer_init(&f, &lim), 0);
  size_t at = 0, k = 0, count = 0;
  int rv = 0;
  while (at < len && rv >= 0) {
    size_t piece = sizes != NULL ? sizes[k++ % nsizes] : len - at;
    if (piece > len - at) {
      piece = len - at;
    }
    size_t done = 0;
    while (done < piece) {
      rv = dcmf_msrp_framer_feed(&f, data + at + done, piece - done);
      if (rv < 0) {
        break;
      }
      done += (size_t)rv;
      struct dcmf_msrp_chunk c;
      while ((rv = dcmf_msrp_framer_next(&f, &c)) == 1) {
        assert_true(count < max);
        assert_true(c.raw_len <= sizeof(out[count].raw));
        memcpy(out[count].raw, c.raw, c.raw_len);
        out[count].raw_len = c.raw_len;
        out[count].body_off = c.has_body ? (size_t)(c.body - c.raw) : 0;
        out[count].body_len = c.body_len;
        out[count].flag = c.flag;
        count++;
      }
      if (rv < 0) {
        break;
      }
    }
    at += piece;
  }
  if (rv >= 0) {
    assert_int_equal(dcmf_msrp_framer_pending(&f), 0);
  }
  dcmf_msrp_framer_free(&f);
  return rv < 0 ? rv : (int)count;
}

/* A stream of the RFC chunks, a '#' chunk whose body holds end-line
 * look-alikes, and a bodiless SEND. */
static size_t sample_stream(uint8_t *buf, size_t cap) {
  const char *parts[] = {
      rfc_send,
      rfc_ok,
      rfc_cpim1,
      rfc_cpim2,
      "MSRP abcd SEND\r\n"
      "To-Path: " BOB "\r\n"
      "From-Path: " ALICE "\r\n"
      "Message-ID: m1234\r\n"
      "Byte-Range: 1-*/*\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "-------abcd$ no CRLF before\r\n"
      "\r\n-------abc$\r\n"
      "\r\n-------abcd$x\r\n"
      "\r\n-------abcd!\r\n"
      "\r\n-------abcde$\r\n"
      "\r\n-------abcd$\r"
      "\r\n-------abcd#\r\n",
      "MSRP k3j4h5 SEND\r\n"
      "To-Path: " BOB "\r\n"
      "From-Path: " ALICE "\r\n"
      "-------k3j4h5$\r\n",
      rfc_report,
  };
  size_t len = 0;
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
    size_t n = strlen(parts[i]);
    assert_true(len + n <= cap);
    memcpy(buf + len, parts[i], n);
    len += n;
  }
  return len;
}

static void assert_same(const struct seen *a, const struct seen *b, int n) {
  for (int i = 0; i < n; i++) {
    assert_int_equal(a[i].raw_len, b[i].raw_len);
    assert_memory_equal(a[i].raw, b[i].raw, a[i].raw_len);
    assert_int_equal(a[i].body_off, b[i].body_off);
    assert_int_equal(a[i].body_len, b[i].body_len);
    assert_int_equal(a[i].flag, b[i].flag);
  }
}

static void test_split_points(void **state) {
  (void)state;
  static uint8_t stream[8192];
  static struct seen whole[8], got[8];
  size_t len = sample_stream(stream, sizeof(stream));
  int n = run_framer(stream, len, NULL, 0, whole, 8);
  assert_int_equal(n, 7);
  /* chunk by chunk, what the one-shot parser says too */
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    struct dcmf_msrp_chunk c;
    assert_int_equal(dcmf_msrp_parse(stream + at, whole[i].raw_len, &lim, &c),
                     0);
    assert_memory_equal(whole[i].raw, stream + at, whole[i].raw_len);
    at += whole[i].raw_len;
  }
  assert_int_equal(at, len);
  /* the look-alikes stayed in the body of the '#' chunk */
  assert_int_equal(whole[4].flag, '#');
  const char *body = whole[4].raw + whole[4].body_off;
  assert_int_equal(whole[4].body_len, 109);
  assert_memory_equal(body, "-------abcd$ no CRLF", 20);
  assert_memory_equal(body + whole[4].body_len - 15, "\r\n-------abcd$\r", 15);
  assert_int_equal(whole[5].body_len, 0);
  assert_int_equal(whole[5].body_off, 0);

  /* one byte at a time */
  size_t one = 1;
  assert_int_equal(run_framer(stream, len, &one, 1, got, 8), n);
  assert_same(whole, got, n);
  /* every split point into two pieces */
  for (size_t cut = 1; cut < len; cut++) {
    size_t sizes[2] = {cut, len - cut};
    assert_int_equal(run_framer(stream, len, sizes, 2, got, 8), n);
    assert_same(whole, got, n);
  }
  /* random pieces of 1 to 64 bytes, 200 times */
  struct lcg g = {7};
  for (int round = 0; round < 200; round++) {
    size_t sizes[64];
    for (size_t i = 0; i < 64; i++) {
      sizes[i] = 1 + next_rand(&g) % 64;
    }
    assert_int_equal(run_framer(stream, len, sizes, 64, got, 8), n);
    assert_same(whole, got, n);
  }
}

/* A 256 KiB body fed one byte at a time: the scan keeps its place, so
 * this is linear (a rescan from the body's start would take minutes). */
static void test_no_rescan(void **state) {
  (void)state;
  size_t body = 256 * 1024;
  static uint8_t buf[256 * 1024 + 512];
  struct lcg g = {99};
  struct dcmf_msrp_rng rng = {fill_rand, &g};
  uint8_t *payload = malloc(body);
  assert_non_null(payload);
  for (size_t i = 0; i < body; i++) {
    payload[i] = (uint8_t)(i % 7 == 0 ? '\r' : i % 7 == 1 ? '\n' : '-');
  }
  struct dcmf_msrp_send s = {
      .to_path = BOB,
      .from_path = ALICE,
      .message_id = "big1",
      .content_type = "application/octet-stream",
      .has_body = 1,
      .body = payload,
      .body_len = body,
      .flag = '$',
  };
  int n = dcmf_msrp_build_send(&s, &rng, buf, sizeof(buf));
  assert_true(n > 0);
  struct dcmf_msrp_framer f;
  assert_int_equal(dcmf_msrp_framer_init(&f, &lim), 0);
  struct dcmf_msrp_chunk c;
  int got = 0;
  for (int i = 0; i < n; i++) {
    assert_int_equal(dcmf_msrp_framer_feed(&f, buf + i, 1), 1);
    int rv = dcmf_msrp_framer_next(&f, &c);
    assert_true(rv == 0 || (rv == 1 && i == n - 1));
    got += rv;
  }
  assert_int_equal(got, 1);
  assert_int_equal(c.body_len, body);
  assert_memory_equal(c.body, payload, body);
  dcmf_msrp_framer_free(&f);
  free(payload);
}

static const char *range_chunk(char *buf, size_t cap, const char *range,
                               char flag) {
  snprintf(buf, cap,
           "MSRP t0000 SEND\r\nTo-Path: " BOB "\r\nFrom-Path: " ALICE
           "\r\nMessage-ID: m1234\r\nByte-Range: %s\r\nContent-Type: text/plain"
           "\r\n\r\nabc\r\n-------t0000%c\r\n",
           range, flag);
  return buf;
}

static void test_flags_and_ranges(void **state) {
  (void)state;
  char buf[1024];
  struct dcmf_msrp_chunk c;
  struct {
    const char *text;
    uint64_t start, end, total;
  } ok[] = {
      {"1-3/3", 1, 3, 3},
      {"1-*/*", 1, DCMF_MSRP_UNKNOWN, DCMF_MSRP_UNKNOWN},
      {"1-0/0", 1, 0, 0},
      {"5-*/100", 5, DCMF_MSRP_UNKNOWN, 100},
      {"2049-4096/*", 2049, 4096, DCMF_MSRP_UNKNOWN},
      {"9999999999999999999-*/*", 9999999999999999999ull, DCMF_MSRP_UNKNOWN,
       DCMF_MSRP_UNKNOWN},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    assert_int_equal(parse_str(range_chunk(buf, sizeof(buf), ok[i].text, '$'),
                               &c),
                     0);
    assert_int_equal(c.range.start, ok[i].start);
    assert_int_equal(c.range.end, ok[i].end);
    assert_int_equal(c.range.total, ok[i].total);
  }
  const char *bad[] = {"0-3/3",  "5-3/10", "1-20/10", "a-1/1",
                       "1-1",    "1/1-1",  "-1/1",    "1-/1",
                       "1-1/",   "1-**/*", "1-1/1 ",  "10000000000000000000-*/*"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(parse_str(range_chunk(buf, sizeof(buf), bad[i], '$'), &c),
                     DCMF_ERR_MALFORMED);
  }
  const char flags[] = {'$', '+', '#'};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(
        parse_str(range_chunk(buf, sizeof(buf), "1-3/3", flags[i]), &c), 0);
    assert_int_equal(c.flag, flags[i]);
  }
  /* any other flag is no end-line: the chunk never ends */
  assert_int_equal(parse_str(range_chunk(buf, sizeof(buf), "1-3/3", '!'), &c),
                   DCMF_ERR_MALFORMED);
}

static void test_malformed(void **state) {
  (void)state;
#define TP "To-Path: " BOB "\r\n"
#define FP "From-Path: " ALICE "\r\n"
  struct {
    const char *text;
    int err;
  } cases[] = {
      {"MSRP abcd SEND\n" TP FP "-------abcd$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "-------abcd$\n", DCMF_ERR_MALFORMED},
      {"msrp abcd SEND\r\n" TP FP "-------abcd$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abc SEND\r\n" TP FP "-------abc$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcdefghijabcdefghijabcdefghijklm SEND\r\n" TP FP
       "-------abcdefghijabcdefghijabcdefghijklm$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP -abcd SEND\r\n" TP FP "--------abcd$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd send\r\n" TP FP "-------abcd$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND x\r\n" TP FP "-------abcd$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd 20 OK\r\n" TP FP "-------abcd$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" FP "-------abcd$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP "-------abcd$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP FP "-------abcd$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "Message-ID: a\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "Content-Type: text/plain\r\n"
       "-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "\r\nhi\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "Content-Type: text/plain\r\n"
       "Message-ID: abcd\r\n\r\nhi\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "Content-Type: text\r\n\r\nhi\r\n"
       "-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd 200 OK\r\n" TP FP "Content-Type: text/plain\r\n\r\nhi\r\n"
       "-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\nTo-Path: http://x.example.com:1/s;tcp\r\n" FP
       "-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\nTo-Path: " BOB "  " BOB "\r\n" FP "-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "NoColon\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "1x: y\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "X-A: b\001c\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "X-A: b\rc\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "Success-Report: maybe\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "Failure-Report: never\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd REPORT\r\n" TP FP "Status: 000 20\r\n-------abcd$\r\n",
       DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "-------abce$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "-------abcd$$\r\n", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "-------abcd$\r\nMSRP", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP "-------abcd$", DCMF_ERR_MALFORMED},
      {"MSRP abcd SEND\r\n" TP FP, DCMF_ERR_MALFORMED},
      {"", DCMF_ERR_MALFORMED},
  };
  struct dcmf_msrp_chunk c;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    if (parse_str(cases[i].text, &c) != cases[i].err) {
      fail_msg("case %zu: got %d", i, parse_str(cases[i].text, &c));
    }
  }
  /* more than DCMF_MSRP_MAX_HEADERS header lines */
  char many[4096];
  size_t n = (size_t)snprintf(many, sizeof(many), "MSRP abcd SEND\r\n" TP FP);
  for (int i = 0; i < DCMF_MSRP_MAX_HEADERS - 1; i++) {
    n += (size_t)snprintf(many + n, sizeof(many) - n, "X-%d: y\r\n", i);
  }
  snprintf(many + n, sizeof(many) - n, "-------abcd$\r\n");
  assert_int_equal(parse_str(many, &c), DCMF_ERR_TOO_LARGE);
  /* limits: a head or a body beyond them, in the parser and the framer */
  struct dcmf_msrp_limits small = {128, 8};
  const char *big_head = "MSRP abcd SEND\r\n" TP FP "X-Long: "
                         "0123456789012345678901234567890123456789\r\n"
                         "-------abcd$\r\n";
  assert_int_equal(dcmf_msrp_parse((const uint8_t *)big_head,
                                   strlen(big_head), &small, &c),
                   DCMF_ERR_TOO_LARGE);
  struct dcmf_msrp_limits head_ok = {512, 8};
  const char *big_body = "MSRP abcd SEND\r\n" TP FP
                         "Content-Type: text/plain\r\n\r\n123456789\r\n"
                         "-------abcd$\r\n";
  const char *fits = "MSRP abcd SEND\r\n" TP FP
                     "Content-Type: text/plain\r\n\r\n12345678\r\n"
                     "-------abcd$\r\n";
  assert_int_equal(dcmf_msrp_parse((const uint8_t *)big_body,
                                   strlen(big_body), &head_ok, &c),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(
      dcmf_msrp_parse((const uint8_t *)fits, strlen(fits), &head_ok, &c), 0);
  /* the framer stops on the first error, and stays stopped */
  struct dcmf_msrp_framer f;
  assert_int_equal(dcmf_msrp_framer_init(&f, &head_ok), 0);
  assert_int_equal(
      dcmf_msrp_framer_feed(&f, (const uint8_t *)fits, strlen(fits)),
      (int)strlen(fits));
  assert_int_equal(dcmf_msrp_framer_next(&f, &c), 1);
  /* a body that never ends: the framer takes no more than one chunk at
   * the limits can need, then says TOO_LARGE */
  const char *start = "MSRP abcd SEND\r\n" TP FP
                      "Content-Type: text/plain\r\n\r\n";
  assert_int_equal(
      dcmf_msrp_framer_feed(&f, (const uint8_t *)start, strlen(start)),
      (int)strlen(start));
  assert_int_equal(dcmf_msrp_framer_next(&f, &c), 0);
  uint8_t junk[1024];
  memset(junk, 'x', sizeof(junk));
  int took = dcmf_msrp_framer_feed(&f, junk, sizeof(junk));
  assert_true(took > 0 && took < (int)sizeof(junk));
  assert_int_equal(dcmf_msrp_framer_next(&f, &c), DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_msrp_framer_next(&f, &c), DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_msrp_framer_feed(&f, junk, 1), DCMF_ERR_TOO_LARGE);
  dcmf_msrp_framer_free(&f);
  /* a head that never ends */
  assert_int_equal(dcmf_msrp_framer_init(&f, &small), 0);
  took = dcmf_msrp_framer_feed(&f, junk, sizeof(junk));
  assert_true(took > 128);
  assert_int_equal(dcmf_msrp_framer_next(&f, &c), DCMF_ERR_MALFORMED);
  dcmf_msrp_framer_free(&f);
  assert_int_equal(dcmf_msrp_framer_init(&f, &small), 0);
  const char *partial = "MSRP abcd SEND\r\nX-A: ";
  dcmf_msrp_framer_feed(&f, (const uint8_t *)partial, strlen(partial));
  assert_int_equal(dcmf_msrp_framer_next(&f, &c), 0);
  took = dcmf_msrp_framer_feed(&f, junk, sizeof(junk));
  assert_true(took > 0);
  assert_int_equal(dcmf_msrp_framer_next(&f, &c), DCMF_ERR_TOO_LARGE);
  dcmf_msrp_framer_free(&f);
  struct dcmf_msrp_limits zero = {0, 8};
  assert_int_equal(dcmf_msrp_framer_init(&f, &zero), DCMF_ERR_INVALID);
#undef TP
#undef FP
}

/* parse(write(x)) == x for chunks made from parts. */
static void test_roundtrip(void **state) {
  (void)state;
  struct lcg g = {5};
  struct dcmf_msrp_rng rng = {fill_rand, &g};
  uint8_t out[4096];
  const uint8_t body[] = "body with -------look$ alike\r\n-------\r\n";
  struct dcmf_msrp_send s = {
      .to_path = BOB " " ALICE,
      .from_path = ALICE,
      .message_id = "msg.42-x",
      .has_range = 1,
      .range = {3, DCMF_MSRP_UNKNOWN, 900},
      .success_report = "yes",
      .failure_report = "partial",
      .content_type = "text/plain;charset=utf-8",
      .has_body = 1,
      .body = body,
      .body_len = sizeof(body) - 1,
      .flag = '+',
  };
  int n = dcmf_msrp_build_send(&s, &rng, out, sizeof(out));
  assert_true(n > 0);
  struct dcmf_msrp_chunk c, d;
  assert_int_equal(dcmf_msrp_parse(out, (size_t)n, &lim, &c), 0);
  assert_true(str_is(c.to_path, BOB " " ALICE));
  assert_true(str_is(c.from_path, ALICE));
  assert_true(str_is(c.message_id, "msg.42-x"));
  assert_int_equal(c.range.start, 3);
  assert_int_equal(c.range.end, DCMF_MSRP_UNKNOWN);
  assert_int_equal(c.range.total, 900);
  assert_true(str_is(c.success_report, "yes"));
  assert_true(str_is(c.failure_report, "partial"));
  assert_true(str_is(c.content_type, "text/plain;charset=utf-8"));
  assert_int_equal(c.body_len, sizeof(body) - 1);
  assert_memory_equal(c.body, body, sizeof(body) - 1);
  assert_int_equal(c.flag, '+');
  assert_true(dcmf_msrp_response_wanted(&c, 413));
  assert_false(dcmf_msrp_response_wanted(&c, 200));
  /* written again, the same bytes */
  uint8_t again[4096];
  assert_int_equal(dcmf_msrp_write(&c, again, sizeof(again)), n);
  assert_memory_equal(again, out, (size_t)n);
  assert_int_equal(dcmf_msrp_parse(again, (size_t)n, &lim, &d), 0);
  assert_true(d.tid.len == c.tid.len &&
              memcmp(d.tid.p, c.tid.p, c.tid.len) == 0);
  /* too small a buffer */
  assert_int_equal(dcmf_msrp_write(&c, again, (size_t)n - 1),
                   DCMF_ERR_TOO_LARGE);
  /* an empty body is not a missing one */
  s.body_len = 0;
  s.has_range = 0;
  n = dcmf_msrp_build_send(&s, &rng, out, sizeof(out));
  assert_int_equal(dcmf_msrp_parse(out, (size_t)n, &lim, &c), 0);
  assert_true(c.has_body);
  assert_int_equal(c.body_len, 0);
  s.has_body = 0;
  n = dcmf_msrp_build_send(&s, &rng, out, sizeof(out));
  assert_int_equal(dcmf_msrp_parse(out, (size_t)n, &lim, &c), 0);
  assert_false(c.has_body);
  assert_null(c.content_type.p);
  /* requests the writer refuses */
  struct dcmf_msrp_chunk w = c;
  w.tid.len = 3;
  assert_int_equal(dcmf_msrp_write(&w, out, sizeof(out)), DCMF_ERR_INVALID);
  w = c;
  w.flag = 'x';
  assert_int_equal(dcmf_msrp_write(&w, out, sizeof(out)), DCMF_ERR_INVALID);
  w = c;
  w.headers[2].value.p = "a\r\nb";
  w.headers[2].value.len = 4;
  assert_int_equal(dcmf_msrp_write(&w, out, sizeof(out)), DCMF_ERR_INVALID);
  /* a body holding the end-line of the chosen tid */
  const char *ended = "hi\r\n-------abcd$\r\nmore";
  assert_int_equal(parse_str(rfc_send, &w), 0);
  w.tid.p = "abcd";
  w.tid.len = 4;
  w.body = (const uint8_t *)ended;
  w.body_len = strlen(ended);
  assert_int_equal(dcmf_msrp_write(&w, out, sizeof(out)), DCMF_ERR_INVALID);
  w.tid.p = "abce";
  assert_true(dcmf_msrp_write(&w, out, sizeof(out)) > 0);
  s.to_path = NULL;
  assert_int_equal(dcmf_msrp_build_send(&s, &rng, out, sizeof(out)),
                   DCMF_ERR_INVALID);
}

/* An rng whose first draws make a tid that is in the body. */
struct fixed_rng {
  int calls;
};

static void fill_fixed(void *user, uint8_t *buf, size_t len) {
  struct fixed_rng *r = user;
  for (size_t i = 0; i < len; i++) {
    buf[i] = r->calls == 0 ? 10 : (uint8_t)(11 + i); /* 'A'... or 'B'... */
  }
  r->calls++;
}

static void fill_same(void *user, uint8_t *buf, size_t len) {
  (void)user;
  memset(buf, 10, len); /* always "AAAAAAAAAAAAAAAA" */
}

static void test_pick_tid(void **state) {
  (void)state;
  const uint8_t body[] = "xxAAAAAAAAAAAAAAAAxx";
  struct fixed_rng fr = {0};
  struct dcmf_msrp_rng rng = {fill_fixed, &fr};
  char tid[DCMF_MSRP_TID_LEN];
  assert_int_equal(dcmf_msrp_pick_tid(&rng, body, sizeof(body) - 1, tid), 0);
  assert_int_equal(fr.calls, 2);
  assert_memory_equal(tid, "BCDEFGHIJKLMNOPQ", DCMF_MSRP_TID_LEN);
  struct dcmf_msrp_rng same = {fill_same, NULL};
  assert_int_equal(dcmf_msrp_pick_tid(&same, body, sizeof(body) - 1, tid),
                   DCMF_ERR_EXHAUSTED);
  assert_int_equal(dcmf_msrp_pick_tid(&same, NULL, 0, tid), 0);
}

/* Splits |c| with |max| and puts the pieces back by Byte-Range into
 * |msg| (|total| bytes). Returns the number of pieces. */
static size_t rechunk_and_reassemble(const struct dcmf_msrp_chunk *c,
                                     size_t max, uint8_t *msg, size_t total,
                                     char last_flag) {
  struct lcg g = {1234};
  struct dcmf_msrp_rng rng = {fill_rand, &g};
  struct dcmf_msrp_rechunker r;
  assert_int_equal(dcmf_msrp_rechunk_init(&r, c, max), 0);
  size_t cap = max + 2048;
  uint8_t *out = malloc(cap);
  assert_non_null(out);
  size_t pieces = 0, covered = 0;
  uint64_t next_start = c->has_range ? c->range.start : 1;
  char prev_tid[DCMF_MSRP_TID_MAX] = {0};
  int n;
  /* a buffer too small: TOO_LARGE, and nothing moves */
  assert_int_equal(dcmf_msrp_rechunk_next(&r, &rng, out, 16),
                   DCMF_ERR_TOO_LARGE);
  while ((n = dcmf_msrp_rechunk_next(&r, &rng, out, cap)) > 0) {
    struct dcmf_msrp_chunk p;
    assert_int_equal(dcmf_msrp_parse(out, (size_t)n, &lim, &p), 0);
    assert_int_equal(p.method, DCMF_MSRP_SEND);
    assert_true(p.body_len <= max);
    assert_true(p.has_range);
    assert_int_equal(p.range.start, next_start);
    if (p.body_len > 2048) {
      assert_int_equal(p.range.end, DCMF_MSRP_UNKNOWN);
    } else {
      assert_int_equal(p.range.end, p.range.start + p.body_len - 1);
    }
    assert_int_equal(p.range.total, total);
    assert_true(str_is(p.message_id, "12339sdqwer"));
    assert_true(str_is(p.success_report, "yes"));
    assert_true(str_is(p.to_path, BOB));
    assert_true(str_is(p.content_type, "application/octet-stream"));
    assert_true(p.tid.len == DCMF_MSRP_TID_LEN);
    assert_false(memcmp(p.tid.p, prev_tid, p.tid.len) == 0);
    assert_false(str_is(p.tid, "d93kswow"));
    memcpy(prev_tid, p.tid.p, p.tid.len);
    /* the Byte-Range header sits before Content-Type, which is last */
    assert_true(str_is(p.headers[p.n_headers - 1].name, "Content-Type"));
    memcpy(msg + p.range.start - 1, p.body, p.body_len);
    covered += p.body_len;
    next_start += p.body_len;
    pieces++;
    int is_last = covered == c->body_len;
    assert_int_equal(p.flag, is_last ? last_flag : '+');
  }
  assert_int_equal(n, 0);
  assert_int_equal(covered, c->body_len);
  assert_int_equal(dcmf_msrp_rechunk_next(&r, &rng, out, cap), 0);
  free(out);
  return pieces;
}

static void test_rechunk(void **state) {
  (void)state;
  size_t total = 1 << 20;
  uint8_t *body = malloc(total), *msg = malloc(total);
  assert_non_null(body);
  assert_non_null(msg);
  struct lcg g = {77};
  for (size_t i = 0; i < total; i++) {
    body[i] = (uint8_t)next_rand(&g);
  }
  /* a few end-line look-alikes of the original tid in the body */
  memcpy(body + 5000, "\r\n-------d93kswo", 16);
  memcpy(body + 700000, "-------d93kswow", 15);
  size_t cap = total + 1024;
  uint8_t *wire = malloc(cap);
  assert_non_null(wire);
  struct dcmf_msrp_chunk c;
  assert_int_equal(parse_str(rfc_send, &c), 0);
  struct dcmf_msrp_header h[6] = {
      c.headers[0],
      c.headers[1],
      {{"Message-ID", 10}, {"12339sdqwer", 11}},
      {{"Success-Report", 14}, {"yes", 3}},
      {{"Byte-Range", 10}, {"1-1048576/1048576", 17}},
      {{"Content-Type", 12}, {"application/octet-stream", 24}},
  };
  memcpy(c.headers, h, sizeof(h));
  c.n_headers = 6;
  c.body = body;
  c.body_len = total;
  int n = dcmf_msrp_write(&c, wire, cap);
  assert_true(n > 0);
  assert_int_equal(dcmf_msrp_parse(wire, (size_t)n, &lim, &c), 0);

  memset(msg, 0, total);
  assert_int_equal(rechunk_and_reassemble(&c, 1024, msg, total, '$'), 1024);
  assert_memory_equal(msg, body, total);
  memset(msg, 0, total);
  assert_int_equal(rechunk_and_reassemble(&c, 16384, msg, total, '$'), 64);
  assert_memory_equal(msg, body, total);

  /* no Byte-Range and '$': the whole message; the header goes in */
  c.headers[4] = c.headers[5];
  c.n_headers = 5;
  c.has_range = 0;
  memset(msg, 0, total);
  assert_int_equal(rechunk_and_reassemble(&c, 16384, msg, total, '$'), 64);
  assert_memory_equal(msg, body, total);
  /* an aborted message keeps its '#' on the last piece */
  c.flag = '#';
  assert_int_equal(dcmf_msrp_rechunk_init(&(struct dcmf_msrp_rechunker){0},
                                          &c, 1024),
                   DCMF_ERR_INVALID); /* no range, not '$': positions? */
  c.has_range = 1;
  c.range.start = 1;
  c.range.end = DCMF_MSRP_UNKNOWN;
  c.range.total = DCMF_MSRP_UNKNOWN;
  struct dcmf_msrp_header br = {{"Byte-Range", 10}, {"1-*/*", 5}};
  c.headers[5] = c.headers[4];
  c.headers[4] = br;
  c.n_headers = 6;
  c.body_len = 10000;
  memset(msg, 0, total);
  assert_int_equal(
      rechunk_and_reassemble(&c, 4096, msg, DCMF_MSRP_UNKNOWN, '#'), 3);
  assert_memory_equal(msg, body, 10000);

  /* a chunk that fits is written as it was, once */
  struct dcmf_msrp_chunk small;
  assert_int_equal(parse_str(rfc_send, &small), 0);
  struct dcmf_msrp_rechunker r;
  struct lcg g2 = {3};
  struct dcmf_msrp_rng rng = {fill_rand, &g2};
  assert_int_equal(dcmf_msrp_rechunk_init(&r, &small, 1024), 0);
  n = dcmf_msrp_rechunk_next(&r, &rng, wire, cap);
  assert_int_equal(n, (int)strlen(rfc_send));
  assert_memory_equal(wire, rfc_send, strlen(rfc_send));
  assert_int_equal(dcmf_msrp_rechunk_next(&r, &rng, wire, cap), 0);
  /* only SENDs are split */
  assert_int_equal(parse_str(rfc_report, &small), 0);
  assert_int_equal(dcmf_msrp_rechunk_init(&r, &small, 1024), DCMF_ERR_INVALID);
  assert_int_equal(parse_str(rfc_ok, &small), 0);
  assert_int_equal(dcmf_msrp_rechunk_init(&r, &small, 1024), DCMF_ERR_INVALID);
  free(wire);
  free(body);
  free(msg);
}

static void test_rewrite_paths(void **state) {
  (void)state;
  struct dcmf_msrp_chunk c, d;
  uint8_t out[1024];
  assert_int_equal(parse_str(rfc_send, &c), 0);
  const char *to = "msrp://198.51.100.7:2855/core77;tcp";
  const char *from = "msrps://[2001:db8::3]:54111/si438dsaodes;dc";
  int n = dcmf_msrp_rewrite_paths(&c, to, from, out, sizeof(out));
  assert_true(n > 0);
  assert_int_equal(dcmf_msrp_parse(out, (size_t)n, &lim, &d), 0);
  assert_true(str_is(d.to_path, to));
  assert_true(str_is(d.from_path, from));
  assert_true(str_is(d.tid, "d93kswow"));
  assert_true(str_is(d.message_id, "12339sdqwer"));
  assert_int_equal(d.n_headers, c.n_headers);
  assert_int_equal(d.body_len, c.body_len);
  assert_memory_equal(d.body, c.body, c.body_len);
  assert_int_equal(d.flag, c.flag);
  /* only one side */
  n = dcmf_msrp_rewrite_paths(&c, NULL, from, out, sizeof(out));
  assert_int_equal(dcmf_msrp_parse(out, (size_t)n, &lim, &d), 0);
  assert_true(str_is(d.to_path, BOB));
  assert_true(str_is(d.from_path, from));
  /* back to the original paths: the original bytes */
  struct dcmf_msrp_chunk e;
  uint8_t back[1024];
  n = dcmf_msrp_rewrite_paths(&d, BOB, ALICE, back, sizeof(back));
  assert_int_equal(n, (int)strlen(rfc_send));
  assert_memory_equal(back, rfc_send, strlen(rfc_send));
  assert_int_equal(dcmf_msrp_parse(back, (size_t)n, &lim, &e), 0);
  assert_int_equal(dcmf_msrp_rewrite_paths(&c, "not a uri", NULL, out,
                                           sizeof(out)),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_msrp_rewrite_paths(&c, "", NULL, out, sizeof(out)),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_msrp_rewrite_paths(&c, to, NULL, out, 10),
                   DCMF_ERR_TOO_LARGE);
}

static int uri(const char *s, struct dcmf_msrp_uri *u) {
  return dcmf_msrp_uri_parse(s, strlen(s), u);
}

static void test_uri(void **state) {
  (void)state;
  struct dcmf_msrp_uri u, v;
  /* RFC 4975 §6 */
  assert_int_equal(uri("msrp://host.example.com:8493/asfd34;tcp", &u), 0);
  assert_false(u.secure);
  assert_true(str_is(u.host, "host.example.com"));
  assert_true(u.has_port);
  assert_int_equal(u.port, 8493);
  assert_true(str_is(u.session_id, "asfd34"));
  assert_true(str_is(u.transport, "tcp"));
  assert_int_equal(u.params.len, 0);
  /* RFC 8873 §4.8, as the RFC writes it, and with brackets */
  assert_int_equal(uri("msrps://2001:db8::3:54111/si438dsaodes;dc", &u), 0);
  assert_true(u.secure);
  assert_true(str_is(u.host, "2001:db8::3"));
  assert_int_equal(u.port, 54111);
  assert_true(str_is(u.transport, "dc"));
  assert_int_equal(uri("msrps://[2001:db8::3]:54111/si438dsaodes;dc", &v), 0);
  assert_true(dcmf_msrp_uri_equal(&u, &v));
  /* userinfo, no session, parameters */
  assert_int_equal(uri("MSRP://bob@Relay.Example.com:2855;TCP;a=b;c", &u), 0);
  assert_true(str_is(u.userinfo, "bob"));
  assert_true(str_is(u.host, "Relay.Example.com"));
  assert_int_equal(u.session_id.len, 0);
  assert_true(str_is(u.params, "a=b;c"));
  assert_int_equal(uri("msrp://relay.example.com:2855;tcp", &v), 0);
  assert_true(dcmf_msrp_uri_equal(&u, &v)); /* case, userinfo, params */
  assert_int_equal(uri("msrp://relay.example.com;tcp", &v), 0);
  assert_false(v.has_port);
  assert_false(dcmf_msrp_uri_equal(&u, &v)); /* a port against none */
  assert_int_equal(uri("msrp://a.example.com:1/AbC;tcp", &u), 0);
  assert_int_equal(uri("msrp://a.example.com:1/abc;tcp", &v), 0);
  assert_false(dcmf_msrp_uri_equal(&u, &v)); /* session-id has case */
  assert_int_equal(uri("msrp://a.example.com:1/AbC;dc", &v), 0);
  assert_false(dcmf_msrp_uri_equal(&u, &v));
  assert_int_equal(uri("msrps://a.example.com:1/AbC;tcp", &v), 0);
  assert_false(dcmf_msrp_uri_equal(&u, &v));
  const char *bad[] = {
      "http://a.example.com:1/s;tcp", "msrp://a.example.com:1/s",
      "msrp://a.example.com:1/s;",    "msrp://a.example.com:70000/s;tcp",
      "msrp://a.example.com:1/;tcp",  "msrp://a.example.com:1/s s;tcp",
      "msrp://:1/s;tcp",              "msrp://[2001:db8::1/s;tcp",
      "msrp://[2001:db8::1]x/s;tcp",  "msrp://a.example.com:x/s;tcp",
      "msrp://a.example.com:1/s;t-p", "msrp://a.example.com:1/s;tcp;;",
      "msrp://a.example.com:1/s;tcp;a==b", "msrp://a<b:1/s;tcp",
      "msrp:/a.example.com:1/s;tcp",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (uri(bad[i], &u) != DCMF_ERR_MALFORMED) {
      fail_msg("accepted %s", bad[i]);
    }
  }
  struct dcmf_msrp_str first;
  assert_int_equal(dcmf_msrp_path_first((struct dcmf_msrp_str){BOB " " ALICE,
                                                               strlen(BOB) +
                                                                   1 +
                                                                   strlen(
                                                                       ALICE)},
                                        &first),
                   0);
  assert_true(str_is(first, BOB));
  assert_int_equal(
      dcmf_msrp_path_first((struct dcmf_msrp_str){" x", 2}, &first),
      DCMF_ERR_MALFORMED);
}

/* §7.2: response To-Path for SEND and other methods; From-Path given. */
static void test_responses(void **state) {
  (void)state;
  const char *other = "MSRP abcd NICKNAME\r\n"
                      "To-Path: " BOB "\r\n"
                      "From-Path: " ALICE " " BOB "\r\n"
                      "-------abcd$\r\n";
  struct dcmf_msrp_chunk c, r;
  uint8_t out[1024];
  assert_int_equal(parse_str(other, &c), 0);
  assert_int_equal(c.method, DCMF_MSRP_OTHER);
  assert_true(str_is(c.method_name, "NICKNAME"));
  int n = dcmf_msrp_build_response(&c, 501, NULL, "msrp://me.example.com:1;tcp",
                                   out, sizeof(out));
  assert_true(n > 0);
  assert_int_equal(dcmf_msrp_parse(out, (size_t)n, &lim, &r), 0);
  assert_true(str_is(r.to_path, ALICE " " BOB)); /* the full path back */
  assert_true(str_is(r.from_path, "msrp://me.example.com:1;tcp"));
  assert_int_equal(r.status, 501);
  assert_int_equal(r.comment.len, 0);
  assert_true(str_is(r.tid, "abcd"));
  assert_int_equal(dcmf_msrp_build_response(&c, 99, NULL, NULL, out,
                                            sizeof(out)),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_msrp_build_response(&r, 200, NULL, NULL, out,
                                            sizeof(out)),
                   DCMF_ERR_INVALID);
  /* Failure-Report: absent or yes always, partial only failures */
  assert_true(dcmf_msrp_response_wanted(&c, 200));
  assert_false(dcmf_msrp_response_wanted(&r, 200));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc_examples),
      cmocka_unit_test(test_build_report),
      cmocka_unit_test(test_split_points),
      cmocka_unit_test(test_no_rescan),
      cmocka_unit_test(test_flags_and_ranges),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_pick_tid),
      cmocka_unit_test(test_rechunk),
      cmocka_unit_test(test_rewrite_paths),
      cmocka_unit_test(test_uri),
      cmocka_unit_test(test_responses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
