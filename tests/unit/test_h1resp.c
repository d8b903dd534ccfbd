/*
 * test_h1resp.c - unit tests for the HTTP/1.1 response parser engine
 * (dcmf/net/h1resp.h): framing (length, chunked, close), bodiless
 * responses, 1xx, limits, pieces split across feeds, pause and resume,
 * keep-alive and errors.
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
#include "h1resp.h"

/* ---- a recorder ----------------------------------------------------------- */

struct rec {
  int heads;
  int status;
  int64_t content_length;
  size_t n_headers;
  char headers[40000]; /* "name=value\n" for each field */
  size_t headers_len;
  char body[70000];
  size_t body_len;
  int body_calls;
  int completes;
  int keep_alive;
  int late; /* callbacks after complete */
  int pause_every; /* pause on every n-th body call (0: never) */
  int stop_at_head;
};

static void rec_add(struct rec *r, const char *s, size_t len) {
  assert_true(r->headers_len + len < sizeof(r->headers));
  memcpy(r->headers + r->headers_len, s, len);
  r->headers_len += len;
  r->headers[r->headers_len] = '\0';
}

static int rec_head(void *user, int status,
                    const struct dcmf_h1resp_header *hs, size_t n,
                    int64_t content_length) {
  struct rec *r = user;
  r->late += r->completes;
  r->heads++;
  r->status = status;
  r->content_length = content_length;
  r->n_headers = n;
  for (size_t i = 0; i < n; i++) {
    rec_add(r, hs[i].name, hs[i].name_len);
    rec_add(r, "=", 1);
    rec_add(r, hs[i].value, hs[i].value_len);
    rec_add(r, "\n", 1);
  }
  return r->stop_at_head ? -1 : 0;
}

static int rec_body(void *user, const uint8_t *data, size_t len) {
  struct rec *r = user;
  r->late += r->completes;
  assert_true(len > 0);
  assert_true(r->body_len + len < sizeof(r->body));
  memcpy(r->body + r->body_len, data, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  r->body_calls++;
  if (r->pause_every > 0 && r->body_calls % r->pause_every == 0) {
    return DCMF_H1RESP_PAUSE;
  }
  return 0;
}

static void rec_complete(void *user, int keep_alive) {
  struct rec *r = user;
  r->late += r->completes;
  r->completes++;
  r->keep_alive = keep_alive;
}

static const struct dcmf_h1resp_callbacks rec_cbs = {
    .head = rec_head, .body = rec_body, .complete = rec_complete};

/* The engine is about 34 KiB: keep it off the stack. */
static struct dcmf_h1resp engine;

static struct dcmf_h1resp *start(struct rec *r, int head_request) {
  memset(r, 0, sizeof(*r));
  dcmf_h1resp_init(&engine, &rec_cbs, r);
  dcmf_h1resp_reset(&engine, head_request);
  return &engine;
}

/*
 * Feeds |len| bytes of |text| in pieces of |step| bytes, feeding again
 * what a pause left over, until the engine completes, fails or takes
 * everything. Returns the last state and sets *|taken| to the bytes
 * taken in all.
 */
static enum dcmf_h1resp_state feed_steps(struct dcmf_h1resp *p,
                                         const char *text, size_t len,
                                         size_t step, size_t *taken) {
  size_t off = 0;
  enum dcmf_h1resp_state st = dcmf_h1resp_get_state(p);
  while (off < len) {
    size_t n = len - off < step ? len - off : step;
    size_t used = 0;
    st = dcmf_h1resp_feed(p, (const uint8_t *)text + off, n, &used);
    assert_true(used <= n);
    off += used;
    if (st == DCMF_H1RESP_COMPLETE || st == DCMF_H1RESP_ERROR) {
      break;
    }
    if (st == DCMF_H1RESP_NEED_MORE) {
      assert_int_equal(used, n);
    }
  }
  *taken = off;
  return st;
}

static enum dcmf_h1resp_state feed_text(struct dcmf_h1resp *p,
                                        const char *text, size_t *taken) {
  return feed_steps(p, text, strlen(text), SIZE_MAX, taken);
}

/* ---- framing -------------------------------------------------------------- */

static void test_content_length(void **state) {
  (void)state;
  static const char resp[] = "HTTP/1.1 200 OK\r\n"
                             "Server: nginx/1.22.1\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 11\r\n"
                             "\r\n"
                             "hello world";
  char both[256];
  snprintf(both, sizeof(both), "%sHTTP/1.1 200 OK\r\n", resp);
  struct rec r;
  struct dcmf_h1resp *p = start(&r, 0);
  size_t taken;
  assert_int_equal(feed_text(p, both, &taken), DCMF_H1RESP_COMPLETE);
  /* The next response's bytes are not taken. */
  assert_int_equal(taken, strlen(resp));
  assert_int_equal(r.heads, 1);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.content_length, 11);
  assert_int_equal(r.n_headers, 3);
  assert_string_equal(r.headers, "Server=nginx/1.22.1\n"
                                 "Content-Type=text/plain\n"
                                 "Content-Length=11\n");
  assert_string_equal(r.body, "hello world");
  assert_int_equal(r.completes, 1);
  assert_int_equal(r.keep_alive, 1);
  assert_int_equal(dcmf_h1resp_get_error(p), 0);
  assert_string_equal(dcmf_h1resp_get_reason(p), "");
  /* Once complete, nothing more is taken and no callback runs. */
  size_t used = 7;
  assert_int_equal(dcmf_h1resp_feed(p, (const uint8_t *)"HTTP", 4, &used),
                   DCMF_H1RESP_COMPLETE);
  assert_int_equal(used, 0);
  assert_int_equal(dcmf_h1resp_eof(p), DCMF_H1RESP_COMPLETE);
  assert_int_equal(r.late, 0);

  /* Reset: the same engine reads the next response. */
  struct rec r2;
  memset(&r2, 0, sizeof(r2));
  dcmf_h1resp_init(p, &rec_cbs, &r2);
  assert_int_equal(feed_text(p, "HTTP/1.1 404 Not Found\r\n"
                                "Content-Length: 0\r\n\r\n",
                             &taken),
                   DCMF_H1RESP_COMPLETE);
  assert_int_equal(r2.status, 404);
  assert_int_equal(r2.content_length, 0);
  assert_int_equal(r2.body_len, 0);
  assert_int_equal(r2.completes, 1);
}

static void test_chunked(void **state) {
  (void)state;
  static const char resp[] = "HTTP/1.1 200 OK\r\n"
                             "Transfer-Encoding: chunked\r\n"
                             "Trailer: Checksum\r\n"
                             "\r\n"
                             "5;name=value\r\n"
                             "hello\r\n"
                             "6;ext\r\n"
                             " world\r\n"
                             "A\r\n"
                             "0123456789\r\n"
                             "0;last\r\n"
                             "Checksum: abc\r\n"
                             "X-Trailer: t\r\n"
                             "\r\n";
  for (size_t step = 1; step <= sizeof(resp); step++) {
    struct rec r;
    struct dcmf_h1resp *p = start(&r, 0);
    size_t taken;
    assert_int_equal(feed_steps(p, resp, strlen(resp), step, &taken),
                     DCMF_H1RESP_COMPLETE);
    assert_int_equal(taken, strlen(resp));
    assert_int_equal(r.content_length, -1);
    /* Trailers are not headers. */
    assert_string_equal(r.headers, "Transfer-Encoding=chunked\n"
                                   "Trailer=Checksum\n");
    assert_string_equal(r.body, "hello world0123456789");
    assert_int_equal(r.completes, 1);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(r.late, 0);
  }
  /* A bad chunk size is malformed. */
  struct rec r;
  struct dcmf_h1resp *p = start(&r, 0);
  size_t taken;
  assert_int_equal(feed_text(p, "HTTP/1.1 200 OK\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"
                                "zz\r\n",
                             &taken),
                   DCMF_H1RESP_ERROR);
  assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_MALFORMED);
  assert_true(strlen(dcmf_h1resp_get_reason(p)) > 0);
}

static void test_close_delimited(void **state) {
  (void)state;
  struct rec r;
  struct dcmf_h1resp *p = start(&r, 0);
  size_t taken;
  assert_int_equal(feed_text(p, "HTTP/1.1 200 OK\r\n"
                                "Content-Type: text/html\r\n\r\n"
                                "<html>",
                             &taken),
                   DCMF_H1RESP_NEED_MORE);
  assert_int_equal(r.content_length, -1);
  assert_int_equal(feed_text(p, "</html>", &taken), DCMF_H1RESP_NEED_MORE);
  assert_int_equal(r.completes, 0);
  assert_int_equal(dcmf_h1resp_eof(p), DCMF_H1RESP_COMPLETE);
  assert_string_equal(r.body, "<html></html>");
  assert_int_equal(r.completes, 1);
  assert_int_equal(r.keep_alive, 0);

  /* HTTP/1.0 without a length, an empty body. */
  p = start(&r, 0);
  assert_int_equal(feed_text(p, "HTTP/1.0 200 OK\r\n\r\n", &taken),
                   DCMF_H1RESP_NEED_MORE);
  assert_int_equal(dcmf_h1resp_eof(p), DCMF_H1RESP_COMPLETE);
  assert_int_equal(r.body_len, 0);
  assert_int_equal(r.keep_alive, 0);

  /* A close inside a length-delimited or chunked body is an error. */
  p = start(&r, 0);
  assert_int_equal(feed_text(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"
                                "\r\nabc",
                             &taken),
                   DCMF_H1RESP_NEED_MORE);
  assert_int_equal(dcmf_h1resp_eof(p), DCMF_H1RESP_ERROR);
  assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_MALFORMED);
  assert_string_equal(dcmf_h1resp_get_reason(p),
                      "closed before the response ended");
  assert_int_equal(r.completes, 0);
  p = start(&r, 0);
  feed_text(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
            &taken);
  assert_int_equal(dcmf_h1resp_eof(p), DCMF_H1RESP_ERROR);
  /* Before or inside the head too. */
  p = start(&r, 0);
  assert_int_equal(dcmf_h1resp_eof(p), DCMF_H1RESP_ERROR);
  p = start(&r, 0);
  feed_text(p, "HTTP/1.1 200 OK\r\nContent-Le", &taken);
  assert_int_equal(dcmf_h1resp_eof(p), DCMF_H1RESP_ERROR);
  assert_int_equal(r.heads, 0);
  /* After a 1xx, before the final head. */
  p = start(&r, 0);
  feed_text(p, "HTTP/1.1 100 Continue\r\n\r\n", &taken);
  assert_int_equal(dcmf_h1resp_eof(p), DCMF_H1RESP_ERROR);
  assert_int_equal(r.heads, 0);
  /* Nothing after the error. */
  size_t used = 1;
  assert_int_equal(dcmf_h1resp_feed(p, (const uint8_t *)"x", 1, &used),
                   DCMF_H1RESP_ERROR);
  assert_int_equal(used, 0);
}

/* ---- responses without a body ----------------------------------------- */

static void test_head_request(void **state) {
  (void)state;
  static const char resp[] = "HTTP/1.1 200 OK\r\n"
                             "Content-Length: 1234\r\n"
                             "ETag: \"abc\"\r\n\r\n";
  char two[256];
  snprintf(two, sizeof(two), "%sHTTP/1.1 200 OK\r\n", resp);
  struct rec r;
  struct dcmf_h1resp *p = start(&r, 1);
  size_t taken;
  assert_int_equal(feed_text(p, two, &taken), DCMF_H1RESP_COMPLETE);
  assert_int_equal(taken, strlen(resp));
  assert_int_equal(r.content_length, 0);
  assert_string_equal(r.headers, "Content-Length=1234\nETag=\"abc\"\n");
  assert_int_equal(r.body_calls, 0);
  assert_int_equal(r.keep_alive, 1);

  /* Chunked to HEAD: no body either. */
  p = start(&r, 1);
  assert_int_equal(feed_text(p, "HTTP/1.1 200 OK\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n",
                             &taken),
                   DCMF_H1RESP_COMPLETE);
  assert_int_equal(r.content_length, 0);
  /* Reset to a GET: the same head now announces a body. */
  memset(&r, 0, sizeof(r));
  dcmf_h1resp_reset(p, 0);
  assert_int_equal(feed_text(p, resp, &taken), DCMF_H1RESP_NEED_MORE);
  assert_int_equal(r.content_length, 1234);
}

static void test_no_body_status(void **state) {
  (void)state;
  static const char *const resps[] = {
      "HTTP/1.1 204 No Content\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
      "\r\n",
      "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 100\r\n"
      "\r\n",
      "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
  };
  static const int statuses[] = {204, 304, 304};
  for (size_t i = 0; i < 3; i++) {
    char two[256];
    snprintf(two, sizeof(two), "%sHTTP/1.1 200 OK\r\n\r\n", resps[i]);
    struct rec r;
    struct dcmf_h1resp *p = start(&r, 0);
    size_t taken;
    assert_int_equal(feed_text(p, two, &taken), DCMF_H1RESP_COMPLETE);
    assert_int_equal(taken, strlen(resps[i]));
    assert_int_equal(r.status, statuses[i]);
    assert_int_equal(r.content_length, 0);
    assert_int_equal(r.body_calls, 0);
    assert_int_equal(r.completes, 1);
    assert_int_equal(r.keep_alive, 1);
  }
}

static void test_informational(void **state) {
  (void)state;
  static const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
                             "HTTP/1.1 103 Early Hints\r\n"
                             "Link: </style.css>; rel=preload\r\n\r\n"
                             "HTTP/1.1 200 OK\r\n"
                             "Content-Length: 2\r\n"
                             "X-Final: yes\r\n\r\n"
                             "ok";
  for (size_t step = 1; step <= sizeof(resp); step += 3) {
    struct rec r;
    struct dcmf_h1resp *p = start(&r, 0);
    size_t taken;
    assert_int_equal(feed_steps(p, resp, strlen(resp), step, &taken),
                     DCMF_H1RESP_COMPLETE);
    assert_int_equal(taken, strlen(resp));
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.headers, "Content-Length=2\nX-Final=yes\n");
    assert_string_equal(r.body, "ok");
    assert_int_equal(r.completes, 1);
  }
  /* 101 was never asked for. */
  struct rec r;
  struct dcmf_h1resp *p = start(&r, 0);
  size_t taken;
  assert_int_equal(feed_text(p, "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n\r\n",
                             &taken),
                   DCMF_H1RESP_ERROR);
  assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_INVALID);
  assert_int_equal(r.heads, 0);
  /* An Upgrade offer in a 200 is only informational. */
  p = start(&r, 0);
  assert_int_equal(feed_text(p, "HTTP/1.1 200 OK\r\n"
                                "Upgrade: h2c\r\n"
                                "Connection: Upgrade\r\n"
                                "Content-Length: 1\r\n\r\nx",
                             &taken),
                   DCMF_H1RESP_COMPLETE);
  assert_string_equal(r.body, "x");
}

/* ---- heads split, limits ------------------------------------------------ */

static void test_header_split(void **state) {
  (void)state;
  char resp[4096];
  int len = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 200 OK\r\n"
                     "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                     "Content-Type: application/json; charset=utf-8\r\n"
                     "X-Empty:\r\n"
                     "X-Spaces:    padded value   \r\n"
                     "Set-Cookie: a=1; Path=/; HttpOnly\r\n"
                     "Set-Cookie: b=2\r\n"
                     "Cache-Control: max-age=3600, public\r\n"
                     "X-Long-%0200d: %0300d\r\n"
                     "Content-Length: 3\r\n\r\n{}\n",
                     0, 0);
  char expect[4096];
  snprintf(expect, sizeof(expect),
           "Date=Mon, 01 Jan 2024 00:00:00 GMT\n"
           "Content-Type=application/json; charset=utf-8\n"
           "X-Empty=\n"
           "X-Spaces=padded value   \n"
           "Set-Cookie=a=1; Path=/; HttpOnly\n"
           "Set-Cookie=b=2\n"
           "Cache-Control=max-age=3600, public\n"
           "X-Long-%0200d=%0300d\n"
           "Content-Length=3\n",
           0, 0);
  for (size_t step = 1; step <= (size_t)len; step++) {
    struct rec r;
    struct dcmf_h1resp *p = start(&r, 0);
    size_t taken;
    assert_int_equal(feed_steps(p, resp, (size_t)len, step, &taken),
                     DCMF_H1RESP_COMPLETE);
    assert_int_equal(taken, (size_t)len);
    assert_int_equal(r.n_headers, 9);
    /* http_parser keeps trailing white space of a value. */
    if (strcmp(r.headers, expect) != 0) {
      print_error("step %zu:\n%s\n", step, r.headers);
    }
    assert_string_equal(r.headers, expect);
    assert_string_equal(r.body, "{}\n");
  }
}

/* Writes a response head with |n| fields "H<i>: <value>" whose values
 * are |vlen| bytes each, then Content-Length: 0 (counted in |n|). */
static size_t many_headers(char *out, size_t cap, size_t n, size_t vlen) {
  size_t off = (size_t)snprintf(out, cap, "HTTP/1.1 200 OK\r\n");
  for (size_t i = 0; i + 1 < n; i++) {
    off += (size_t)snprintf(out + off, cap - off, "H%03zu: ", i);
    assert_true(off + vlen + 2 < cap);
    memset(out + off, 'v', vlen);
    off += vlen;
    off += (size_t)snprintf(out + off, cap - off, "\r\n");
  }
  off += (size_t)snprintf(out + off, cap - off, "Content-Length: 0\r\n\r\n");
  assert_true(off < cap);
  return off;
}

static char big[200000];

static void test_limits(void **state) {
  (void)state;
  struct rec r;
  struct dcmf_h1resp *p;
  size_t taken, len;
  /* Exactly DCMF_H1RESP_MAX_HEADERS fields are fine, one more is not. */
  len = many_headers(big, sizeof(big), DCMF_H1RESP_MAX_HEADERS, 10);
  p = start(&r, 0);
  assert_int_equal(feed_steps(p, big, len, 7, &taken), DCMF_H1RESP_COMPLETE);
  assert_int_equal(r.n_headers, DCMF_H1RESP_MAX_HEADERS);
  len = many_headers(big, sizeof(big), DCMF_H1RESP_MAX_HEADERS + 1, 10);
  p = start(&r, 0);
  assert_int_equal(feed_steps(p, big, len, 7, &taken), DCMF_H1RESP_ERROR);
  assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_TOO_LARGE);
  assert_string_equal(dcmf_h1resp_get_reason(p), "too many response headers");
  assert_int_equal(r.heads, 0);
  assert_int_equal(r.completes, 0);

  /* Names and values add up to exactly the byte limit: fine. Each field
   * "Hnnn" + value; Content-Length + "0" is 15 bytes. */
  size_t n = 10;
  size_t vlen = (DCMF_H1RESP_MAX_HEADER_BYTES - 15 - 4 * (n - 1)) / (n - 1);
  size_t total = 15 + (n - 1) * (4 + vlen);
  assert_true(total <= DCMF_H1RESP_MAX_HEADER_BYTES);
  len = many_headers(big, sizeof(big), n, vlen);
  p = start(&r, 0);
  assert_int_equal(feed_steps(p, big, len, 1000, &taken),
                   DCMF_H1RESP_COMPLETE);
  /* Pad the last value to hit the limit exactly, then go one over. */
  size_t pad = DCMF_H1RESP_MAX_HEADER_BYTES - total;
  char *field = strstr(big, "Content-Length: 0\r\n");
  assert_non_null(field);
  char tail[] = "Content-Length: 0\r\n\r\n";
  size_t at = (size_t)(field - big) - 2; /* before "\r\n" of the last H */
  memset(big + at, 'w', pad);
  memcpy(big + at + pad, "\r\n", 2);
  memcpy(big + at + pad + 2, tail, sizeof(tail));
  len = strlen(big);
  p = start(&r, 0);
  assert_int_equal(feed_steps(p, big, len, 333, &taken),
                   DCMF_H1RESP_COMPLETE);
  memset(big + at, 'w', pad + 1);
  memcpy(big + at + pad + 1, "\r\n", 2);
  memcpy(big + at + pad + 3, tail, sizeof(tail));
  len = strlen(big);
  p = start(&r, 0);
  assert_int_equal(feed_steps(p, big, len, 333, &taken), DCMF_H1RESP_ERROR);
  assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_TOO_LARGE);
  assert_string_equal(dcmf_h1resp_get_reason(p), "response head too large");

  /* One huge value, and one beyond http_parser's own limit. */
  len = many_headers(big, sizeof(big), 2, 40000);
  p = start(&r, 0);
  assert_int_equal(feed_steps(p, big, len, 4096, &taken), DCMF_H1RESP_ERROR);
  assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_TOO_LARGE);
  len = many_headers(big, sizeof(big), 2, 100000);
  p = start(&r, 0);
  assert_int_equal(feed_steps(p, big, len, 65536, &taken),
                   DCMF_H1RESP_ERROR);
  assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_TOO_LARGE);

  /* Trailers do not count: they are not kept. */
  size_t off = (size_t)snprintf(
      big, sizeof(big), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                        "\r\n1\r\nx\r\n0\r\n");
  for (size_t i = 0; i < 2 * DCMF_H1RESP_MAX_HEADERS; i++) {
    off += (size_t)snprintf(big + off, sizeof(big) - off, "T%zu: t\r\n", i);
  }
  off += (size_t)snprintf(big + off, sizeof(big) - off, "\r\n");
  p = start(&r, 0);
  assert_int_equal(feed_steps(p, big, off, 100, &taken),
                   DCMF_H1RESP_COMPLETE);
  assert_string_equal(r.body, "x");

  /* A Content-Length an int64_t cannot hold. */
  p = start(&r, 0);
  assert_int_equal(feed_text(p, "HTTP/1.1 200 OK\r\n"
                                "Content-Length: 9223372036854775808\r\n\r\n",
                             &taken),
                   DCMF_H1RESP_ERROR);
  assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_TOO_LARGE);
  assert_int_equal(r.heads, 0);
}

/* ---- pause and resume ----------------------------------------------------- */

static void test_pause_resume(void **state) {
  (void)state;
  static const char resp[] = "HTTP/1.1 200 OK\r\n"
                             "Content-Length: 26\r\n\r\n"
                             "abcdefghijklmnopqrstuvwxyz"
                             "HTTP/1.1 200 OK\r\n";
  size_t end = strlen(resp) - strlen("HTTP/1.1 200 OK\r\n");
  /* Pause on the first piece: the rest waits. */
  struct rec r;
  struct dcmf_h1resp *p = start(&r, 0);
  r.pause_every = 1;
  size_t used;
  size_t head_len = end - 26;
  assert_int_equal(
      dcmf_h1resp_feed(p, (const uint8_t *)resp, head_len + 10, &used),
      DCMF_H1RESP_PAUSED);
  assert_int_equal(dcmf_h1resp_get_state(p), DCMF_H1RESP_PAUSED);
  assert_string_equal(r.body, "abcdefghij");
  /* The whole piece was delivered: all of it was taken. */
  assert_int_equal(used, head_len + 10);
  /* Feeding nothing resumes. */
  assert_int_equal(dcmf_h1resp_feed(p, NULL, 0, &used), DCMF_H1RESP_NEED_MORE);
  assert_int_equal(used, 0);
  /* The last piece pauses too; its end byte stays behind until the next
   * feed, which completes the response without more body. */
  const uint8_t *rest = (const uint8_t *)resp + head_len + 10;
  size_t rest_len = strlen(resp) - head_len - 10;
  assert_int_equal(dcmf_h1resp_feed(p, rest, rest_len, &used),
                   DCMF_H1RESP_PAUSED);
  assert_true(used < rest_len);
  assert_string_equal(r.body, "abcdefghijklmnopqrstuvwxyz");
  assert_int_equal(r.completes, 0);
  rest += used;
  rest_len -= used;
  assert_int_equal(dcmf_h1resp_feed(p, rest, rest_len, &used),
                   DCMF_H1RESP_COMPLETE);
  assert_int_equal((size_t)(rest + used - (const uint8_t *)resp), end);
  assert_string_equal(r.body, "abcdefghijklmnopqrstuvwxyz");
  assert_int_equal(r.completes, 1);

  /* Pausing on every piece, in every split, for each framing. */
  static const char *const resps[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n"
      "abcdefghijklmnopqrstuvwxyz",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n10\r\ndefghijklmnopqrs\r\n7\r\ntuvwxyz\r\n0\r\n\r\n",
      "HTTP/1.0 200 OK\r\n\r\nabcdefghijklmnopqrstuvwxyz",
  };
  for (size_t i = 0; i < 3; i++) {
    for (size_t step = 1; step < 100; step++) {
      p = start(&r, 0);
      r.pause_every = 1 + (int)(step % 3);
      size_t taken;
      size_t len = strlen(resps[i]);
      enum dcmf_h1resp_state st = feed_steps(p, resps[i], len, step, &taken);
      if (i == 2) {
        /* A pause on the last piece: eof resumes. */
        assert_true(st == DCMF_H1RESP_NEED_MORE || st == DCMF_H1RESP_PAUSED);
        assert_int_equal(dcmf_h1resp_eof(p), DCMF_H1RESP_COMPLETE);
      } else {
        if (st == DCMF_H1RESP_PAUSED) {
          /* Everything was taken on a pause: resume with nothing. */
          assert_int_equal(taken, len);
          st = dcmf_h1resp_feed(p, NULL, 0, &used);
        }
        assert_int_equal(st, DCMF_H1RESP_COMPLETE);
      }
      assert_int_equal(taken, len);
      assert_string_equal(r.body, "abcdefghijklmnopqrstuvwxyz");
      assert_int_equal(r.completes, 1);
      assert_int_equal(r.late, 0);
    }
  }
}

static void test_stop(void **state) {
  (void)state;
  struct rec r;
  struct dcmf_h1resp *p = start(&r, 0);
  r.stop_at_head = 1;
  size_t taken;
  assert_int_equal(feed_text(p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                "\r\nok",
                             &taken),
                   DCMF_H1RESP_ERROR);
  assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_INVALID);
  assert_string_equal(dcmf_h1resp_get_reason(p), "stopped by the caller");
  assert_int_equal(r.heads, 1);
  assert_int_equal(r.body_calls, 0);
  assert_int_equal(r.completes, 0);
  /* NULL callbacks are allowed. */
  static const struct dcmf_h1resp_callbacks none = {0};
  dcmf_h1resp_init(p, &none, NULL);
  assert_int_equal(feed_text(p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                "\r\nok",
                             &taken),
                   DCMF_H1RESP_COMPLETE);
}

/* ---- errors, keep-alive ------------------------------------------------- */

static void test_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {
      "HTTX/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 abc OK\r\n\r\n",
      "HTTP/x.1 200 OK\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "HTTP/1.1 000 Zero\r\n\r\n",
      "HTTP/1.1 099 Low\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/0.9 200 OK\r\n\r\n",
      "\r\nHTTP/1.1 100 Continue\r\n\r\nHTTX/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\001b\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
       "Transfer-Encoding: chunked\r\n\r\n"),
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct rec r;
    struct dcmf_h1resp *p = start(&r, 0);
    size_t taken;
    enum dcmf_h1resp_state st = feed_text(p, bad[i], &taken);
    if (st != DCMF_H1RESP_ERROR) {
      print_error("accepted: %s\n", bad[i]);
    }
    assert_int_equal(st, DCMF_H1RESP_ERROR);
    assert_int_equal(dcmf_h1resp_get_error(p), DCMF_ERR_MALFORMED);
    assert_int_equal(r.heads, 0);
    assert_int_equal(r.completes, 0);
  }
}

static void test_keep_alive(void **state) {
  (void)state;
  static const struct {
    const char *resp;
    int keep_alive;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
       0},
      {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
       "Content-Length: 0\r\n\r\n",
       1},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
       "Content-Length: 0\r\n\r\n",
       1},
      {"HTTP/1.1 404 Not Found\r\nConnection: close\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       0},
      {"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n", 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct rec r;
    struct dcmf_h1resp *p = start(&r, 0);
    size_t taken;
    assert_int_equal(feed_text(p, cases[i].resp, &taken),
                     DCMF_H1RESP_COMPLETE);
    assert_int_equal(r.completes, 1);
    assert_int_equal(r.keep_alive, cases[i].keep_alive);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_content_length),
      cmocka_unit_test(test_chunked),
      cmocka_unit_test(test_close_delimited),
      cmocka_unit_test(test_head_request),
      cmocka_unit_test(test_no_body_status),
      cmocka_unit_test(test_informational),
      cmocka_unit_test(test_header_split),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_pause_resume),
      cmocka_unit_test(test_stop),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_keep_alive),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
