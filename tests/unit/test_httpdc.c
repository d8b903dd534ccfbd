/*
 * test_httpdc.c - unit tests for the bootstrap repository (repo.c) and the
 * HTTP-over-data-channel engine (httpdc.c). Everything runs in memory
 * except the dcmf_repo_open tests, which build a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "buf.h"
#include "dcmf_build_config.h"
#include "errors.h"
#include "httpdc.h"
#include "repo.h"

static const char index_html[] = "<!doctype html><title>t</title><p>hello\n";
static const char app_js[] = "console.log('app');\n";
static const char notes_html[] = "<!doctype html><title>notes</title>\n";

/* ---- fixture ------------------------------------------------------------ */

struct fx {
  struct dcmf_repo *repo;
  struct dcmf_httpdc *h;
  struct dcmf_buf out; /* every byte written, in order */
  size_t msgs[8192];   /* length of each message written */
  size_t n_msgs;
  size_t max;
};

static void fx_init_with(struct fx *f, const struct dcmf_httpdc_settings *s,
                         const struct dcmf_httpdc_backend *backend) {
  memset(f, 0, sizeof(*f));
  assert_int_equal(dcmf_repo_new(&f->repo, NULL), 0);
  assert_int_equal(
      dcmf_repo_add(f->repo, "/index.html", index_html, strlen(index_html)),
      0);
  assert_int_equal(dcmf_repo_add(f->repo, "app.js", app_js, strlen(app_js)),
                   0);
  assert_int_equal(dcmf_repo_add(f->repo, "apps/notes/index.html", notes_html,
                                 strlen(notes_html)),
                   0);
  struct dcmf_httpdc_backend b;
  dcmf_httpdc_repo_backend(&b, f->repo);
  assert_int_equal(dcmf_httpdc_new(&f->h, s, backend ? backend : &b), 0);
  f->max = dcmf_httpdc_max_message_size(f->h);
}

static void fx_init(struct fx *f) {
  fx_init_with(f, NULL, NULL);
}

static void fx_free(struct fx *f) {
  dcmf_httpdc_del(f->h);
  dcmf_repo_del(f->repo);
  dcmf_buf_free(&f->out);
}

/* Writes every message the engine has now; returns how many. */
static size_t drain(struct fx *f) {
  uint8_t *msg = malloc(f->max);
  assert_non_null(msg);
  size_t n = 0, len;
  for (;;) {
    assert_int_equal(dcmf_httpdc_write(f->h, msg, f->max, &len), 0);
    if (len == 0) {
      break;
    }
    assert_true(len <= f->max);
    assert_true(f->n_msgs < sizeof(f->msgs) / sizeof(f->msgs[0]));
    f->msgs[f->n_msgs++] = len;
    assert_int_equal(dcmf_buf_append(&f->out, msg, len), 0);
    n++;
  }
  assert_int_equal(dcmf_httpdc_want_write(f->h), 0);
  free(msg);
  return n;
}

static void feed_len(struct fx *f, const char *msg, size_t len) {
  assert_int_equal(dcmf_httpdc_recv(f->h, (const uint8_t *)msg, len), 0);
}

static void feed(struct fx *f, const char *msg) {
  feed_len(f, msg, strlen(msg));
}

struct resp {
  int status;
  char head[4096];
  size_t head_len;
  const uint8_t *body;
  size_t body_len;
  long content_length; /* -1 when absent */
};

/* Parses the response at *|off| in the output; |head_only| for HEAD. */
static void next_resp(struct fx *f, size_t *off, int head_only,
                      struct resp *r) {
  const char *p = f->out.data + *off;
  size_t left = f->out.len - *off;
  assert_true(left > 12);
  assert_memory_equal(p, "HTTP/1.1 ", 9);
  const char *end = memmem(p, left, "\r\n\r\n", 4);
  assert_non_null(end);
  r->head_len = (size_t)(end + 4 - p);
  assert_true(r->head_len < sizeof(r->head));
  memcpy(r->head, p, r->head_len);
  r->head[r->head_len] = '\0';
  r->status = atoi(p + 9);
  const char *cl = strstr(r->head, "\r\nContent-Length: ");
  r->content_length = cl != NULL ? atol(cl + 18) : -1;
  size_t body = head_only || cl == NULL ? 0 : (size_t)r->content_length;
  assert_true(r->head_len + body <= left);
  r->body = (const uint8_t *)p + r->head_len;
  r->body_len = body;
  *off += r->head_len + body;
}

/* The only response in the output so far. */
static void only_resp(struct fx *f, int head_only, struct resp *r) {
  size_t off = 0;
  next_resp(f, &off, head_only, r);
  assert_int_equal(off, f->out.len);
}

static int has(const struct resp *r, const char *line) {
  char want[512];
  snprintf(want, sizeof(want), "\r\n%s\r\n", line);
  return strstr(r->head, want) != NULL;
}

static void reset_out(struct fx *f) {
  f->out.len = 0;
  f->n_msgs = 0;
}

/* ---- serving ------------------------------------------------------------ */

static void test_get_root(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "GET / HTTP/1.1\r\nHost: \r\n\r\n");
  assert_int_equal(drain(&f), 1);
  struct resp r;
  only_resp(&f, 0, &r);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.head, "HTTP/1.1 200 OK\r\n", 17);
  assert_int_equal(r.body_len, strlen(index_html));
  assert_memory_equal(r.body, index_html, r.body_len);
  assert_true(has(&r, "Content-Type: text/html; charset=utf-8"));
  assert_true(has(&r, "Cache-Control: no-cache"));
  assert_true(has(&r, "Server: dcmf"));
  const struct dcmf_repo_entry *e = dcmf_repo_lookup(f.repo, "/");
  assert_non_null(e);
  char etag[64];
  snprintf(etag, sizeof(etag), "ETag: %s", e->etag);
  assert_true(has(&r, etag));
  assert_null(strstr(r.head, "Date:"));
  assert_null(strstr(r.head, "Connection:"));
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);
  fx_free(&f);
}

static void test_head(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "HEAD /index.html HTTP/1.1\r\nHost:\r\n\r\n");
  assert_int_equal(drain(&f), 1);
  struct resp r;
  only_resp(&f, 1, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.content_length, (long)strlen(index_html));
  assert_int_equal(f.out.len, r.head_len);
  assert_true(has(&r, "Content-Type: text/html; charset=utf-8"));
  fx_free(&f);
}

static void test_if_none_match(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  const char *etag = dcmf_repo_lookup(f.repo, "/app.js")->etag;
  char req[512];
  /* Each value is before + etag + after; "*" matches without the etag. */
  static const struct {
    const char *before, *after;
    int with_etag;
  } forms[] = {{"", "", 1},
               {"\"xyz\", ", "", 1},
               {"*", "", 0},
               {"W/", "", 1},
               {"\"a\",W/", " , \"b\"", 1}};
  for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
    char value[128];
    snprintf(value, sizeof(value), "%s%s%s", forms[i].before,
             forms[i].with_etag ? etag : "", forms[i].after);
    snprintf(req, sizeof(req),
             "GET /app.js HTTP/1.1\r\nIf-None-Match: %s\r\n\r\n", value);
    reset_out(&f);
    feed(&f, req);
    drain(&f);
    struct resp r;
    only_resp(&f, 0, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.content_length, -1);
    assert_int_equal(r.body_len, 0);
    char line[64];
    snprintf(line, sizeof(line), "ETag: %s", etag);
    assert_true(has(&r, line));
    assert_true(has(&r, "Cache-Control: no-cache"));
  }
  /* Not matching, then matching in a second If-None-Match field. */
  reset_out(&f);
  feed(&f, "GET /app.js HTTP/1.1\r\nIf-None-Match: \"nope\"\r\n\r\n");
  snprintf(req, sizeof(req),
           "GET /app.js HTTP/1.1\r\nif-none-match: \"nope\"\r\n"
           "IF-NONE-MATCH: %s\r\n\r\n",
           etag);
  feed(&f, req);
  drain(&f);
  size_t off = 0;
  struct resp r;
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body, app_js, strlen(app_js));
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 304);
  assert_int_equal(off, f.out.len);
  fx_free(&f);
}

static void test_not_found(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "GET /nothing.html HTTP/1.1\r\nHost:\r\n\r\n");
  drain(&f);
  struct resp r;
  only_resp(&f, 0, &r);
  assert_int_equal(r.status, 404);
  assert_true(has(&r, "Content-Type: text/plain; charset=utf-8"));
  assert_int_equal(r.body_len, strlen("404 Not Found\n"));
  assert_memory_equal(r.body, "404 Not Found\n", r.body_len);
  assert_null(strstr(r.head, "Connection:"));
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);
  fx_free(&f);
}

static void test_method_not_allowed(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  /* The body is read and discarded; the next request still parses. */
  feed(&f, "POST /index.html HTTP/1.1\r\nContent-Length: 6\r\n\r\n"
           "GET /xGET /app.js HTTP/1.1\r\n\r\n");
  feed(&f, "DELETE / HTTP/1.1\r\n\r\nget / HTTP/1.1\r\n\r\n");
  drain(&f);
  size_t off = 0;
  struct resp r;
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 405);
  assert_true(has(&r, "Allow: GET, HEAD"));
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body, app_js, strlen(app_js));
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 405);
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 405); /* methods are case-sensitive */
  assert_int_equal(off, f.out.len);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);
  fx_free(&f);
}

static void test_body_read_before_answer(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
  assert_int_equal(drain(&f), 0);
  assert_int_equal(dcmf_httpdc_want_write(f.h), 0);
  feed(&f, "defg");
  assert_int_equal(drain(&f), 0);
  feed(&f, "hij");
  assert_int_equal(drain(&f), 1);
  struct resp r;
  only_resp(&f, 0, &r);
  assert_int_equal(r.status, 405);
  /* GET with a body: served after the body. */
  reset_out(&f);
  feed(&f, "GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nxy");
  assert_int_equal(drain(&f), 0);
  feed(&f, "zGET /app.js HTTP/1.1\r\n\r\n");
  drain(&f);
  size_t off = 0;
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body, index_html, strlen(index_html));
  next_resp(&f, &off, 0, &r);
  assert_memory_equal(r.body, app_js, strlen(app_js));
  fx_free(&f);
}

/* Feeds |input| to a fresh engine and expects one |status| response with
 * "Connection: close", after which input is ignored. */
static void expect_fatal(const char *input, size_t len, int status) {
  struct fx f;
  fx_init(&f);
  feed_len(&f, input, len);
  drain(&f);
  struct resp r;
  only_resp(&f, 0, &r);
  if (r.status != status) {
    fail_msg("input \"%.*s\": status %d, want %d", (int)(len > 60 ? 60 : len),
             input, r.status, status);
  }
  assert_true(has(&r, "Connection: close"));
  assert_true(has(&r, "Content-Type: text/plain; charset=utf-8"));
  assert_true(r.body_len > 0);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  size_t before = f.out.len;
  feed(&f, "GET / HTTP/1.1\r\n\r\n");
  assert_int_equal(drain(&f), 0);
  assert_int_equal(f.out.len, before);
  assert_int_equal(dcmf_httpdc_want_read(f.h), 1);
  fx_free(&f);
}

static void test_bad_requests(void **state) {
  (void)state;
  static const char *const bad[] = {
      "GET\r\n\r\n",
      "GET /\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1 \r\n\r\n",
      "GET / HTTP/1.1 extra\r\n\r\n",
      " GET / HTTP/1.1\r\n\r\n",
      "GET / http/1.1\r\n\r\n",
      "GET / HTTP/1.x\r\n\r\n",
      "GET / HTTP/11\r\n\r\n",
      "GET / HTTP/10.0\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
      "GET x HTTP/1.1\r\n\r\n",
      "GET * HTTP/1.1\r\n\r\n",
      "GET /a#b HTTP/1.1\r\n\r\n",
      "GET ://x/ HTTP/1.1\r\n\r\n",
      "GET http:/x/ HTTP/1.1\r\n\r\n",
      "GET /\x7f HTTP/1.1\r\n\r\n",
      "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\r\n\r\n",
      "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.1\r\nName : v\r\n\r\n",
      "GET / HTTP/1.1\r\n: v\r\n\r\n",
      "GET / HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\n\tX: a\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
      "GET / HTTP/1.1\r\nX(: a\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
      "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
      "GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    expect_fatal(bad[i], strlen(bad[i]), 400);
  }
  /* NUL bytes in the request line and in a header value. */
  static const char nul_target[] = "GET /\0 HTTP/1.1\r\n\r\n";
  expect_fatal(nul_target, sizeof(nul_target) - 1, 400);
  static const char nul_value[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
  expect_fatal(nul_value, sizeof(nul_value) - 1, 400);
  /* Equal duplicate Content-Length values are allowed. */
  struct fx f;
  fx_init(&f);
  feed(&f, "GET / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nxx"
           "GET /app.js HTTP/1.1\r\n\r\n");
  assert_int_equal(drain(&f), 2);
  fx_free(&f);
}

static void test_chunked_not_implemented(void **state) {
  (void)state;
  const char *in = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n0\r\n\r\n";
  expect_fatal(in, strlen(in), 501);
  in = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n"
       "Content-Length: 3\r\n\r\n";
  expect_fatal(in, strlen(in), 501);
}

static void test_uri_too_long(void **state) {
  (void)state;
  /* 8192 bytes with CRLF is accepted (404), one more is 414. */
  size_t n = 8192 - strlen("GET / HTTP/1.1\r\n");
  char *line = malloc(9000 + 64);
  assert_non_null(line);
  memcpy(line, "GET /", 5);
  memset(line + 5, 'a', n);
  strcpy(line + 5 + n, " HTTP/1.1\r\n\r\n");
  struct fx f;
  fx_init(&f);
  feed(&f, line);
  drain(&f);
  struct resp r;
  only_resp(&f, 0, &r);
  assert_int_equal(r.status, 404);
  fx_free(&f);
  memset(line + 5, 'a', n + 1);
  strcpy(line + 5 + n + 1, " HTTP/1.1\r\n\r\n");
  expect_fatal(line, strlen(line), 414);
  /* Also when the line end has not arrived yet. */
  memset(line + 5, 'b', 9000);
  expect_fatal(line, 9005, 414);
  free(line);
}

static void test_header_too_large(void **state) {
  (void)state;
  struct dcmf_buf b = {0};
  assert_int_equal(dcmf_buf_printf(&b, "GET / HTTP/1.1\r\n"), 0);
  for (int i = 0; i < 20; i++) {
    char v[1001];
    memset(v, 'v', 1000);
    v[1000] = '\0';
    assert_int_equal(dcmf_buf_printf(&b, "X-%d: %s\r\n", i, v), 0);
  }
  assert_int_equal(dcmf_buf_printf(&b, "\r\n"), 0);
  expect_fatal(b.data, b.len, 431);
  dcmf_buf_free(&b);
  /* Too many fields. */
  assert_int_equal(dcmf_buf_printf(&b, "GET / HTTP/1.1\r\n"), 0);
  for (int i = 0; i < 65; i++) {
    assert_int_equal(dcmf_buf_printf(&b, "X-%d: v\r\n", i), 0);
  }
  assert_int_equal(dcmf_buf_printf(&b, "\r\n"), 0);
  expect_fatal(b.data, b.len, 431);
  dcmf_buf_free(&b);
  /* 64 fields are fine. */
  assert_int_equal(dcmf_buf_printf(&b, "GET / HTTP/1.1\r\n"), 0);
  for (int i = 0; i < 64; i++) {
    assert_int_equal(dcmf_buf_printf(&b, "X-%d: v\r\n", i), 0);
  }
  assert_int_equal(dcmf_buf_printf(&b, "\r\n"), 0);
  struct fx f;
  fx_init(&f);
  feed_len(&f, b.data, b.len);
  drain(&f);
  struct resp r;
  only_resp(&f, 0, &r);
  assert_int_equal(r.status, 200);
  fx_free(&f);
  dcmf_buf_free(&b);
}

static void test_version_not_supported(void **state) {
  (void)state;
  static const char *const in[] = {
      "GET / HTTP/2.0\r\n\r\n",
      "GET / HTTP/1.2\r\n\r\n",
      "GET / HTTP/0.9\r\n\r\n",
      "GET / HTTP/3.0\r\nHost:\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
    expect_fatal(in[i], strlen(in[i]), 505);
  }
}

static void test_split_byte_by_byte(void **state) {
  (void)state;
  const char *in = "\r\nGET /app.js HTTP/1.1\r\nHost: \r\nIf-None-Match: "
                   "\"x\"\r\nAccept: */*\r\n\r\n"
                   "HEAD / HTTP/1.1\nHost:\n\n"
                   "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
                   "GET /apps/notes/ HTTP/1.1\r\n\r\n";
  struct fx f;
  fx_init(&f);
  for (size_t i = 0; in[i] != '\0'; i++) {
    feed_len(&f, in + i, 1);
  }
  drain(&f);
  size_t off = 0;
  struct resp r;
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body, app_js, strlen(app_js));
  next_resp(&f, &off, 1, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.content_length, (long)strlen(index_html));
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 405);
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body, notes_html, strlen(notes_html));
  assert_int_equal(off, f.out.len);
  assert_int_equal(f.n_msgs, 4);
  fx_free(&f);
}

static void test_pipelined(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "GET /app.js HTTP/1.1\r\nHost:\r\n\r\n"
           "HEAD / HTTP/1.1\r\nHost:\r\n\r\n"
           "GET /missing HTTP/1.1\r\nHost:\r\n\r\n");
  assert_int_equal(drain(&f), 3);
  size_t off = 0;
  struct resp r;
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(f.msgs[0], r.head_len + strlen(app_js));
  assert_memory_equal(r.body, app_js, strlen(app_js));
  next_resp(&f, &off, 1, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(f.msgs[1], r.head_len);
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 404);
  assert_int_equal(off, f.out.len);
  fx_free(&f);
}

static void check_large(size_t max_message_size) {
  struct dcmf_httpdc_settings s = {.max_message_size = max_message_size};
  struct fx f;
  fx_init_with(&f, &s, NULL);
  size_t big = 1024 * 1024;
  uint8_t *data = malloc(big);
  assert_non_null(data);
  for (size_t i = 0; i < big; i++) {
    data[i] = (uint8_t)(i * 7 + i / 251);
  }
  assert_int_equal(dcmf_repo_add(f.repo, "big.bin", data, big), 0);
  feed(&f, "GET /big.bin HTTP/1.1\r\nHost:\r\n\r\nGET /app.js HTTP/1.1\r\n\r\n");
  drain(&f);
  size_t off = 0;
  struct resp r;
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 200);
  assert_true(has(&r, "Content-Type: application/octet-stream"));
  assert_int_equal(r.body_len, big);
  assert_memory_equal(r.body, data, big);
  /* The head is in the first message, every message is full but the last
   * of the response, and the next response starts a new message. */
  size_t total = r.head_len + big;
  size_t want_msgs = (total + f.max - 1) / f.max;
  assert_true(f.msgs[0] >= r.head_len);
  size_t sum = 0;
  for (size_t i = 0; i < want_msgs; i++) {
    assert_true(f.msgs[i] <= f.max);
    if (i + 1 < want_msgs) {
      assert_int_equal(f.msgs[i], f.max);
    }
    sum += f.msgs[i];
  }
  assert_int_equal(sum, total);
  assert_int_equal(f.n_msgs, want_msgs + 1);
  next_resp(&f, &off, 0, &r);
  assert_memory_equal(r.body, app_js, strlen(app_js));
  assert_int_equal(f.msgs[want_msgs], r.head_len + strlen(app_js));
  /* HEAD of the big file is one message. */
  reset_out(&f);
  feed(&f, "HEAD /big.bin HTTP/1.1\r\n\r\n");
  assert_int_equal(drain(&f), 1);
  only_resp(&f, 1, &r);
  assert_int_equal(r.content_length, (long)big);
  free(data);
  fx_free(&f);
}

static void test_large_file(void **state) {
  (void)state;
  check_large(0); /* default 65536 */
  check_large(16384);
  check_large(1000); /* raised to 1024 */
}

static void test_host_ignored(void **state) {
  (void)state;
  static const char *const in[] = {
      "GET / HTTP/1.1\r\nHost:\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: \r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: [bad host\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
    struct fx f;
    fx_init(&f);
    feed(&f, in[i]);
    drain(&f);
    struct resp r;
    only_resp(&f, 0, &r);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, index_html, strlen(index_html));
    fx_free(&f);
  }
}

static void test_absolute_form(void **state) {
  (void)state;
  static const struct {
    const char *target;
    const char *body;
  } cases[] = {
      {"http://anything/index.html", index_html},
      {"http://anything/index.html?x=1", index_html},
      {"http://anything", index_html},
      {"http://anything?q", index_html},
      {"http://", index_html},
      {"HTTPS://user@host:443/app.js", app_js},
      {"http://x//apps/notes/", notes_html},
      {"/app.js?v=3", app_js},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct fx f;
    fx_init(&f);
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost:\r\n\r\n",
             cases[i].target);
    feed(&f, req);
    drain(&f);
    struct resp r;
    only_resp(&f, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen(cases[i].body));
    assert_memory_equal(r.body, cases[i].body, r.body_len);
    fx_free(&f);
  }
}

static void test_directory_redirect(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "GET /apps/notes HTTP/1.1\r\n\r\n"
           "GET /apps/notes?x=1 HTTP/1.1\r\n\r\n"
           "GET /apps/ HTTP/1.1\r\n\r\n");
  drain(&f);
  size_t off = 0;
  struct resp r;
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 301);
  assert_true(has(&r, "Location: /apps/notes/"));
  next_resp(&f, &off, 0, &r);
  assert_true(has(&r, "Location: /apps/notes/?x=1"));
  next_resp(&f, &off, 0, &r);
  assert_int_equal(r.status, 404); /* no apps/index.html */
  fx_free(&f);
}

static void test_connection_close(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "GET /app.js HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n"
           "GET / HTTP/1.1\r\n\r\n");
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSING);
  assert_int_equal(drain(&f), 1);
  struct resp r;
  only_resp(&f, 0, &r);
  assert_int_equal(r.status, 200);
  assert_true(has(&r, "Connection: close"));
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  fx_free(&f);

  /* HTTP/1.0: close unless keep-alive is asked for. */
  fx_init(&f);
  feed(&f, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
           "GET /app.js HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n");
  assert_int_equal(drain(&f), 2);
  size_t off = 0;
  next_resp(&f, &off, 0, &r);
  assert_true(has(&r, "Connection: keep-alive"));
  assert_memory_equal(r.body, index_html, strlen(index_html));
  next_resp(&f, &off, 0, &r);
  assert_true(has(&r, "Connection: close"));
  assert_memory_equal(r.body, app_js, strlen(app_js));
  assert_int_equal(off, f.out.len);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  fx_free(&f);
}

static void test_expect_continue(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 10"
           "\r\n\r\n");
  assert_int_equal(drain(&f), 1);
  struct resp r;
  only_resp(&f, 0, &r);
  assert_int_equal(r.status, 405);
  assert_true(has(&r, "Connection: close"));
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  fx_free(&f);
}

static void test_leading_empty_lines(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "\r\n\n\r\nGET / HTTP/1.1\r\n\r\n\r\nGET /app.js HTTP/1.1\r\n\r\n");
  assert_int_equal(drain(&f), 2);
  fx_free(&f);
}

/* ---- paths -------------------------------------------------------------- */

static void test_traversal_in_memory(void **state) {
  (void)state;
  static const char *const targets[] = {
      "/../index.html", "/%2e%2e/index.html", "/%2E%2E/index.html",
      "/.%2e/index.html", "/a/../index.html", "/a%2fb", "/a%2Fb",
      "/a\\b", "/a%5cb", "/%00", "/index.html%00", "/%0a", "/%",
      "/%zz", "/%2", "/..", "http://x/../index.html", "/%3f",
      "/.hidden", "//..//index.html",
  };
  for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
    struct fx f;
    fx_init(&f);
    assert_int_equal(dcmf_repo_add(f.repo, "a/b", "AB", 2), 0);
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", targets[i]);
    feed(&f, req);
    drain(&f);
    struct resp r;
    only_resp(&f, 0, &r);
    if (r.status != 400 && r.status != 404) {
      fail_msg("%s: status %d", targets[i], r.status);
    }
    assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);
    fx_free(&f);
  }
}

struct tmp {
  char root[64];
  char www[96];
};

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
  fclose(fp);
}

static void tmp_make(struct tmp *t) {
  char p[256];
  strcpy(t->root, "/tmp/dcmf-test-httpdc-XXXXXX");
  assert_non_null(mkdtemp(t->root));
  snprintf(t->www, sizeof(t->www), "%s/www", t->root);
  assert_int_equal(mkdir(t->www, 0700), 0);
  write_file(strcat(strcpy(p, t->root), "/secret.txt"), "TOPSECRET\n");
  snprintf(p, sizeof(p), "%s/index.html", t->www);
  write_file(p, index_html);
  snprintf(p, sizeof(p), "%s/.hidden", t->www);
  write_file(p, "TOPSECRET hidden\n");
  snprintf(p, sizeof(p), "%s/sub", t->www);
  assert_int_equal(mkdir(p, 0700), 0);
  snprintf(p, sizeof(p), "%s/sub/app.JS", t->www);
  write_file(p, app_js);
  snprintf(p, sizeof(p), "%s/link.txt", t->www);
  assert_int_equal(symlink("../secret.txt", p), 0);
  snprintf(p, sizeof(p), "%s/linkdir", t->www);
  assert_int_equal(symlink("..", p), 0);
}

static void tmp_remove(struct tmp *t) {
  static const char *const rel[] = {"www/linkdir", "www/link.txt",
                                    "www/sub/app.JS", "www/.hidden",
                                    "www/index.html", "www/extra.txt",
                                    "secret.txt"};
  char p[256];
  for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
    snprintf(p, sizeof(p), "%s/%s", t->root, rel[i]);
    unlink(p);
  }
  snprintf(p, sizeof(p), "%s/sub", t->www);
  rmdir(p);
  rmdir(t->www);
  rmdir(t->root);
}

static void test_repo_open(void **state) {
  (void)state;
  struct tmp t;
  tmp_make(&t);
  struct dcmf_repo *repo;
  char err[256] = "";
  assert_int_equal(dcmf_repo_open(&repo, t.www, NULL, err, sizeof(err)), 0);
  assert_int_equal(dcmf_repo_count(repo), 2); /* index.html, sub/app.JS */
  const struct dcmf_repo_entry *e = dcmf_repo_lookup(repo, "/");
  assert_non_null(e);
  assert_int_equal(e->len, strlen(index_html));
  assert_memory_equal(e->bytes, index_html, e->len);
  e = dcmf_repo_lookup(repo, "/sub/app.JS");
  assert_non_null(e);
  assert_string_equal(e->content_type, "text/javascript; charset=utf-8");
  assert_null(dcmf_repo_lookup(repo, "/link.txt"));
  assert_null(dcmf_repo_lookup(repo, "/linkdir/secret.txt"));
  assert_null(dcmf_repo_lookup(repo, "/.hidden"));

  /* Through the engine: nothing outside www/ ever comes back. */
  static const char *const targets[] = {
      "/../secret.txt",       "/%2e%2e/secret.txt", "/.%2E/secret.txt",
      "/link.txt",            "/linkdir/secret.txt", "/sub/../../secret.txt",
      "/sub%2f..%2f..%2fsecret.txt", "/..%5csecret.txt", "/..\\secret.txt",
      "/.hidden",             "/%2ehidden",         "/secret.txt%00",
      "http://h/../secret.txt",
  };
  struct dcmf_httpdc_backend b;
  dcmf_httpdc_repo_backend(&b, repo);
  struct fx f;
  memset(&f, 0, sizeof(f));
  assert_int_equal(dcmf_httpdc_new(&f.h, NULL, &b), 0);
  f.max = dcmf_httpdc_max_message_size(f.h);
  for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost:\r\n\r\n",
             targets[i]);
    feed(&f, req);
  }
  drain(&f);
  size_t off = 0;
  for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
    struct resp r;
    next_resp(&f, &off, 0, &r);
    if (r.status != 400 && r.status != 404) {
      fail_msg("%s: status %d", targets[i], r.status);
    }
  }
  assert_int_equal(off, f.out.len);
  assert_null(memmem(f.out.data, f.out.len, "TOPSECRET", 9));
  dcmf_httpdc_del(f.h);
  dcmf_buf_free(&f.out);
  dcmf_repo_del(repo);

  /* Limits. */
  struct dcmf_repo_settings s = {.max_files = 1};
  assert_int_equal(dcmf_repo_open(&repo, t.www, &s, err, sizeof(err)),
                   DCMF_ERR_TOO_LARGE);
  assert_non_null(strstr(err, "files"));
  s.max_files = 0;
  s.max_total_bytes = strlen(index_html) + strlen(app_js) - 1;
  assert_int_equal(dcmf_repo_open(&repo, t.www, &s, err, sizeof(err)),
                   DCMF_ERR_TOO_LARGE);
  s.max_total_bytes += 1;
  assert_int_equal(dcmf_repo_open(&repo, t.www, &s, NULL, 0), 0);
  dcmf_repo_del(repo);
  char missing[128];
  snprintf(missing, sizeof(missing), "%s/none", t.root);
  assert_int_equal(dcmf_repo_open(&repo, missing, NULL, err, sizeof(err)),
                   DCMF_ERR_SYSTEM);
  assert_non_null(strstr(err, "none"));
  tmp_remove(&t);
}

static void test_normalize(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *out; /* NULL: malformed */
  } cases[] = {
      {"/", "index.html"},
      {"//", "index.html"},
      {"/.", "index.html"},
      {"/./", "index.html"},
      {"/a", "a"},
      {"/a/", "a/index.html"},
      {"/a//b", "a/b"},
      {"/a/./b", "a/b"},
      {"/a/.", "a/index.html"},
      {"/%61%2Fb", NULL},
      {"/%61/%62", "a/b"},
      {"/caf%C3%a9", "caf\xc3\xa9"},
      {"/a%20b", "a b"},
      {"/%3F", "?"},
      {"/...", "..."},
      {"/..", NULL},
      {"/a/..", NULL},
      {"/../a", NULL},
      {"/%2e%2e/a", NULL},
      {"/%2e./a", NULL},
      {"/a\\b", NULL},
      {"/a%5Cb", NULL},
      {"/a%00", NULL},
      {"/a%1f", NULL},
      {"/a%7f", NULL},
      {"/a?b", NULL},
      {"/a#b", NULL},
      {"/%", NULL},
      {"/%4", NULL},
      {"/%g0", NULL},
      {"a", NULL},
      {"", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char out[64];
    size_t n = 99;
    int rc = dcmf_repo_normalize(cases[i].in, strlen(cases[i].in), out,
                                 sizeof(out), &n);
    if (cases[i].out == NULL) {
      if (rc != DCMF_ERR_MALFORMED) {
        fail_msg("%s: rc %d, want malformed", cases[i].in, rc);
      }
    } else {
      if (rc != 0 || strcmp(out, cases[i].out) != 0) {
        fail_msg("%s: rc %d out \"%s\", want \"%s\"", cases[i].in, rc,
                 rc == 0 ? out : "", cases[i].out);
      }
      assert_int_equal(n, strlen(cases[i].out));
    }
  }
  char small[8];
  size_t n;
  assert_int_equal(dcmf_repo_normalize("/abcdefgh", 9, small, sizeof(small),
                                       &n),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_repo_normalize("/abc/", 5, small, sizeof(small), &n),
                   DCMF_ERR_TOO_LARGE);
}

static void test_repo_entries(void **state) {
  (void)state;
  struct dcmf_repo_settings s = {.max_files = 3, .max_total_bytes = 10};
  struct dcmf_repo *repo;
  assert_int_equal(dcmf_repo_new(&repo, &s), 0);
  assert_int_equal(dcmf_repo_add(repo, "a.txt", "abc", 3), 0);
  assert_int_equal(dcmf_repo_add(repo, "/b/c.css", "abc", 3), 0);
  assert_int_equal(dcmf_repo_add(repo, "empty.bin", NULL, 0), 0);
  const struct dcmf_repo_entry *a = dcmf_repo_lookup(repo, "/a.txt");
  const struct dcmf_repo_entry *c = dcmf_repo_lookup(repo, "/b/c.css");
  const struct dcmf_repo_entry *z = dcmf_repo_lookup(repo, "/empty.bin");
  assert_non_null(a);
  assert_non_null(c);
  assert_non_null(z);
  assert_int_equal(z->len, 0);
  assert_int_equal(strlen(a->etag), DCMF_REPO_ETAG_LEN);
  assert_int_equal(a->etag[0], '"');
  assert_int_equal(a->etag[DCMF_REPO_ETAG_LEN - 1], '"');
  /* First 16 hex digits of SHA-256("abc"). */
  assert_string_equal(a->etag, "\"ba7816bf8f01cfea\"");
  assert_string_equal(a->etag, c->etag);
  assert_string_equal(c->content_type, "text/css; charset=utf-8");
  /* Limits, bad paths, replacement. */
  assert_int_equal(dcmf_repo_add(repo, "d", "x", 1), DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_repo_add(repo, "a.txt", "0123456789", 4), 0);
  assert_int_equal(dcmf_repo_add(repo, "a.txt", "0123456789", 10),
                   DCMF_ERR_TOO_LARGE);
  a = dcmf_repo_lookup(repo, "/a.txt");
  assert_int_equal(a->len, 4);
  assert_string_not_equal(a->etag, c->etag);
  static const char *const bad[] = {"", "/", "a/", "a//b", "./a", "a/../b",
                                    ".a", "a/.b", "a\\b", "a\nb", "//a"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(dcmf_repo_add(repo, bad[i], "x", 1), DCMF_ERR_INVALID);
  }
  assert_int_equal(dcmf_repo_count(repo), 3);
  const struct dcmf_repo_entry *e;
  assert_int_equal(dcmf_repo_find(repo, "/b/../a.txt", 11, &e),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_repo_find(repo, "/nope", 5, &e), DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_repo_find(repo, "/a.txt?", 6, &e), 0);
  assert_int_equal(dcmf_repo_is_dir(repo, "/b", 2), 0); /* no index.html */
  assert_int_equal(dcmf_repo_add(repo, "empty.bin", "", 0), 0);
  dcmf_repo_del(repo);

  static const struct {
    const char *name;
    const char *type;
  } types[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"a/b.HTM", "text/html; charset=utf-8"},
      {"m.mjs", "text/javascript; charset=utf-8"},
      {"apps.json", "application/json"},
      {"i.svg", "image/svg+xml"},
      {"i.png", "image/png"},
      {"i.jpg", "image/jpeg"},
      {"i.JPEG", "image/jpeg"},
      {"favicon.ico", "image/x-icon"},
      {"r.txt", "text/plain; charset=utf-8"},
      {"m.wasm", "application/wasm"},
      {"app.webmanifest", "application/manifest+json"},
      {"noext", "application/octet-stream"},
      {"x.tar.gz", "application/octet-stream"},
      {"dir.html/file", "application/octet-stream"},
      {"html", "application/octet-stream"},
  };
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    assert_string_equal(dcmf_repo_content_type(types[i].name), types[i].type);
  }
}

/* The shipped bootstrap/www: small, and every app apps.json lists exists. */
static void test_default_www(void **state) {
  (void)state;
  struct dcmf_repo *repo;
  char err[256] = "";
  assert_int_equal(
      dcmf_repo_open(&repo, DCMF_DEFAULT_BOOTSTRAP_DIR, NULL, err, sizeof(err)),
      0);
  const struct dcmf_repo_entry *idx = dcmf_repo_lookup(repo, "/");
  assert_non_null(idx);
  assert_string_equal(idx->content_type, "text/html; charset=utf-8");
  assert_memory_equal(idx->bytes, "<!doctype html>", 15);
  /* No external resources: nothing loads from another origin. */
  assert_null(memmem(idx->bytes, idx->len, "://", 3));
  const struct dcmf_repo_entry *list = dcmf_repo_lookup(repo, "/apps.json");
  assert_non_null(list);
  assert_string_equal(list->content_type, "application/json");
  json_error_t jerr;
  json_t *apps = json_loadb((const char *)list->bytes, list->len, 0, &jerr);
  assert_non_null(apps);
  assert_true(json_is_array(apps));
  assert_true(json_array_size(apps) >= 1);
  size_t i;
  json_t *app;
  json_array_foreach(apps, i, app) {
    static const char *const keys[] = {"id", "name", "description", "path"};
    for (size_t k = 0; k < 4; k++) {
      assert_true(json_is_string(json_object_get(app, keys[k])));
    }
    char path[512];
    snprintf(path, sizeof(path), "/%s",
             json_string_value(json_object_get(app, "path")));
    const struct dcmf_repo_entry *e = dcmf_repo_lookup(repo, path);
    assert_non_null(e);
    assert_null(memmem(e->bytes, e->len, "://", 3));
  }
  json_decref(apps);
  size_t total = 0;
  static const char *const files[] = {"/index.html", "/apps.json",
                                      "/apps/notes/index.html",
                                      "/apps/notes/app.js"};
  for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    const struct dcmf_repo_entry *e = dcmf_repo_lookup(repo, files[i]);
    assert_non_null(e);
    total += e->len;
  }
  assert_true(total < 30 * 1024);
  dcmf_repo_del(repo);
}

/* ---- backends ----------------------------------------------------------- */

struct async_be {
  uint64_t ids[16];
  size_t n;
  uint64_t cancelled[16];
  size_t n_cancelled;
  int fail_next;
  int released;
};

static int async_request(void *user, struct dcmf_httpdc *h,
                         const struct dcmf_httpdc_request *req) {
  struct async_be *be = user;
  if (be->fail_next) {
    be->fail_next = 0;
    return DCMF_ERR_NOMEM;
  }
  if (req->path_len == 5 && memcmp(req->path, "/sync", 5) == 0) {
    struct dcmf_httpdc_response r = {.status = 204};
    return dcmf_httpdc_respond(h, req->id, &r);
  }
  be->ids[be->n++] = req->id;
  return 0;
}

static void async_cancel(void *user, uint64_t id) {
  struct async_be *be = user;
  be->cancelled[be->n_cancelled++] = id;
}

static void release_body(void *arg) {
  ((struct async_be *)arg)->released++;
}

static void test_async_backend(void **state) {
  (void)state;
  struct async_be be;
  memset(&be, 0, sizeof(be));
  struct dcmf_httpdc_backend b = {
      .request = async_request, .cancel = async_cancel, .user = &be};
  struct fx f;
  fx_init_with(&f, NULL, &b);
  feed(&f, "GET /slow HTTP/1.1\r\n\r\nGET /sync HTTP/1.1\r\n\r\n"
           "GET /slow2?a=b HTTP/1.1\r\n\r\n");
  assert_int_equal(be.n, 2);
  assert_int_equal(be.ids[0], 1);
  assert_int_equal(be.ids[1], 3);
  assert_int_equal(drain(&f), 0); /* the first is unanswered */
  static const char body[] = "later";
  struct dcmf_httpdc_header hd = {"X-A", 3, "b", 1};
  struct dcmf_httpdc_response r = {.status = 200,
                                   .content_type = "text/plain",
                                   .headers = &hd,
                                   .n_headers = 1,
                                   .body = (const uint8_t *)body,
                                   .body_len = 5,
                                   .release = release_body,
                                   .release_arg = &be};
  /* Bad answers change nothing. */
  struct dcmf_httpdc_header bad = {"Bad Name", 8, "v", 1};
  struct dcmf_httpdc_response rb = r;
  rb.headers = &bad;
  assert_int_equal(dcmf_httpdc_respond(f.h, 1, &rb), DCMF_ERR_INVALID);
  struct dcmf_httpdc_header crlf = {"X", 1, "a\r\nInjected: 1", 15};
  rb.headers = &crlf;
  assert_int_equal(dcmf_httpdc_respond(f.h, 1, &rb), DCMF_ERR_INVALID);
  struct dcmf_httpdc_header cl = {"content-length", 14, "1", 1};
  rb.headers = &cl;
  assert_int_equal(dcmf_httpdc_respond(f.h, 1, &rb), DCMF_ERR_INVALID);
  rb = r;
  rb.body = NULL; /* Content-Length 5 without the bytes */
  assert_int_equal(dcmf_httpdc_respond(f.h, 1, &rb), DCMF_ERR_INVALID);
  rb = r;
  rb.status = 100;
  assert_int_equal(dcmf_httpdc_respond(f.h, 1, &rb), DCMF_ERR_INVALID);
  assert_int_equal(dcmf_httpdc_respond(f.h, 2, &r), DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_httpdc_respond(f.h, 99, &r), DCMF_ERR_NOT_FOUND);
  assert_int_equal(be.released, 0);

  /* Answering the third first still keeps the order. */
  assert_int_equal(dcmf_httpdc_respond(f.h, 3, &r), 0);
  assert_int_equal(drain(&f), 0);
  assert_int_equal(dcmf_httpdc_respond(f.h, 1, &r), 0);
  assert_int_equal(dcmf_httpdc_respond(f.h, 1, &r), DCMF_ERR_NOT_FOUND);
  assert_int_equal(drain(&f), 3);
  assert_int_equal(be.released, 2);
  size_t off = 0;
  struct resp rr;
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 200);
  assert_true(has(&rr, "X-A: b"));
  assert_true(has(&rr, "Content-Type: text/plain"));
  assert_memory_equal(rr.body, "later", 5);
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 204);
  assert_int_equal(rr.content_length, -1);
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 200);
  assert_int_equal(off, f.out.len);

  /* A failing backend gives 500 and the channel stays open. */
  reset_out(&f);
  be.fail_next = 1;
  feed(&f, "GET /x HTTP/1.1\r\n\r\n");
  drain(&f);
  only_resp(&f, 0, &rr);
  assert_int_equal(rr.status, 500);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);

  /* An answer with close drops later requests (cancelled). */
  be.n = 0;
  reset_out(&f);
  feed(&f, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
           "GET /c HTTP/1.1\r\n\r\n");
  assert_int_equal(be.n, 3);
  struct dcmf_httpdc_response rc = {.status = 503, .close = 1};
  assert_int_equal(dcmf_httpdc_respond(f.h, be.ids[1], &rc), 0);
  assert_int_equal(be.n_cancelled, 1);
  assert_int_equal(be.cancelled[0], be.ids[2]);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSING);
  assert_int_equal(dcmf_httpdc_respond(f.h, be.ids[2], &r),
                   DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_httpdc_respond(f.h, be.ids[0], &r), 0);
  assert_int_equal(drain(&f), 2);
  off = 0;
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 200);
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 503);
  assert_true(has(&rr, "Connection: close"));
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  fx_free(&f);

  /* Deleting the engine cancels what is unanswered and releases bodies. */
  memset(&be, 0, sizeof(be));
  fx_init_with(&f, NULL, &b);
  feed(&f, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  assert_int_equal(dcmf_httpdc_respond(f.h, 2, &r), 0);
  fx_free(&f);
  assert_int_equal(be.n_cancelled, 1);
  assert_int_equal(be.cancelled[0], 1);
  assert_int_equal(be.released, 1);
}

/* An asynchronous HEAD answer may declare a length without the bytes. */
static void test_head_declared_length(void **state) {
  (void)state;
  struct async_be be;
  memset(&be, 0, sizeof(be));
  struct dcmf_httpdc_backend b = {
      .request = async_request, .cancel = async_cancel, .user = &be};
  struct fx f;
  fx_init_with(&f, NULL, &b);
  feed(&f, "HEAD /upstream HTTP/1.1\r\n\r\nGET /upstream HTTP/1.1\r\n\r\n");
  struct dcmf_httpdc_response r = {.status = 200, .body_len = 12345};
  assert_int_equal(dcmf_httpdc_respond(f.h, 1, &r), 0);
  assert_int_equal(dcmf_httpdc_respond(f.h, 2, &r), DCMF_ERR_INVALID);
  r.body_len = 0;
  assert_int_equal(dcmf_httpdc_respond(f.h, 2, &r), 0);
  assert_int_equal(drain(&f), 2);
  size_t off = 0;
  struct resp rr;
  next_resp(&f, &off, 1, &rr);
  assert_int_equal(rr.content_length, 12345);
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.content_length, 0);
  assert_int_equal(off, f.out.len);
  fx_free(&f);
}

static void test_backpressure(void **state) {
  (void)state;
  struct dcmf_httpdc_settings s = {.max_pending = 2};
  struct fx f;
  fx_init_with(&f, &s, NULL);
  const char *five = "GET /app.js HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n"
                     "GET /x HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n"
                     "GET /apps/notes/ HTTP/1.1\r\n\r\n";
  feed(&f, five);
  assert_int_equal(dcmf_httpdc_want_read(f.h), 0);
  const char *more = "GET /app.js HTTP/1.1\r\n\r\n";
  assert_int_equal(
      dcmf_httpdc_recv(f.h, (const uint8_t *)more, strlen(more)),
      DCMF_ERR_EXHAUSTED);
  assert_int_equal(drain(&f), 5);
  assert_int_equal(dcmf_httpdc_want_read(f.h), 1);
  feed(&f, more);
  assert_int_equal(drain(&f), 1);
  size_t off = 0;
  struct resp r;
  static const int want[] = {200, 200, 404, 200, 200, 200};
  for (size_t i = 0; i < 6; i++) {
    next_resp(&f, &off, i == 3, &r);
    assert_int_equal(r.status, want[i]);
  }
  assert_memory_equal(r.body, app_js, strlen(app_js));
  assert_int_equal(off, f.out.len);
  fx_free(&f);
}

static void test_write_cap(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f);
  feed(&f, "GET / HTTP/1.1\r\n\r\n");
  uint8_t small[100];
  size_t len = 7;
  assert_int_equal(dcmf_httpdc_write(f.h, small, sizeof(small), &len),
                   DCMF_ERR_INVALID);
  assert_int_equal(len, 0);
  assert_int_equal(dcmf_httpdc_want_write(f.h), 1);
  assert_int_equal(drain(&f), 1);
  assert_string_equal(dcmf_httpdc_reason(431),
                      "Request Header Fields Too Large");
  assert_string_equal(dcmf_httpdc_reason(299), "Unknown");
  fx_free(&f);
}

/* ---- streamed responses ------------------------------------------------- */

/* The body byte at offset |i| of every streamed test body. */
static uint8_t pat(uint64_t i) {
  return (uint8_t)(i * 131u + (i >> 11));
}

static int pat_check(const uint8_t *p, size_t n, uint64_t from) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != pat(from + i)) {
      return 0;
    }
  }
  return 1;
}

/* A body source that a streaming backend feeds from. */
struct src {
  uint64_t id;
  uint64_t total;
  uint64_t off;   /* bytes taken by the engine */
  size_t piece;   /* pieces are 1..piece bytes */
  size_t k;       /* pieces taken */
  size_t refused; /* EXHAUSTED answers */
  int ended;
};

/* The size of the next piece: varies, the same again after a refusal. */
static size_t src_next(const struct src *s) {
  size_t n = 1 + (s->k * 7919 + s->k / 3) % s->piece;
  return (uint64_t)n > s->total - s->off ? (size_t)(s->total - s->off) : n;
}

/* Offers pieces until the engine refuses one or the body is all given
 * (then ends it). */
static void src_pump(struct dcmf_httpdc *h, struct src *s) {
  static uint8_t buf[65536];
  while (s->off < s->total) {
    size_t n = src_next(s);
    assert_true(n <= sizeof(buf));
    for (size_t i = 0; i < n; i++) {
      buf[i] = pat(s->off + i);
    }
    int rc = dcmf_httpdc_respond_data(h, s->id, buf, n);
    if (rc == DCMF_ERR_EXHAUSTED) {
      s->refused++;
      return;
    }
    assert_int_equal(rc, 0);
    s->off += n;
    s->k++;
  }
  if (!s->ended) {
    assert_int_equal(dcmf_httpdc_respond_end(h, s->id), 0);
    s->ended = 1;
  }
}

/* A streaming backend: "/sync" gets 204 at once, "/inline" a chunked
 * "hello" streamed from inside the callback, everything else waits. */
struct sbe {
  struct dcmf_httpdc *h;
  uint64_t ids[64];
  size_t n;
  uint64_t cancelled[64];
  size_t n_cancelled;
  uint64_t resumed[64]; /* the first 64 */
  size_t n_resumed;
  uint64_t last_resumed;
  struct src *pump; /* fed from inside |resume| when set */
};

static int sbe_request(void *user, struct dcmf_httpdc *h,
                       const struct dcmf_httpdc_request *req) {
  struct sbe *be = user;
  be->h = h;
  if (req->path_len == 5 && memcmp(req->path, "/sync", 5) == 0) {
    struct dcmf_httpdc_response r = {.status = 204};
    return dcmf_httpdc_respond(h, req->id, &r);
  }
  if (req->path_len == 7 && memcmp(req->path, "/inline", 7) == 0) {
    struct dcmf_httpdc_response r = {.status = 200};
    assert_int_equal(dcmf_httpdc_respond_start(h, req->id, &r, -1), 0);
    assert_int_equal(
        dcmf_httpdc_respond_data(h, req->id, (const uint8_t *)"hello", 5), 0);
    return dcmf_httpdc_respond_end(h, req->id);
  }
  assert_true(be->n < 64);
  be->ids[be->n++] = req->id;
  return 0;
}

static void sbe_cancel(void *user, uint64_t id) {
  struct sbe *be = user;
  assert_true(be->n_cancelled < 64);
  be->cancelled[be->n_cancelled++] = id;
}

static void sbe_resume(void *user, struct dcmf_httpdc *h, uint64_t id) {
  struct sbe *be = user;
  assert_ptr_equal(h, be->h);
  if (be->n_resumed < 64) {
    be->resumed[be->n_resumed] = id;
  }
  be->n_resumed++;
  be->last_resumed = id;
  if (be->pump != NULL && be->pump->id == id) {
    src_pump(h, be->pump);
  }
}

static void sbe_init(struct fx *f, struct sbe *be,
                     const struct dcmf_httpdc_settings *s) {
  memset(be, 0, sizeof(*be));
  struct dcmf_httpdc_backend b = {.request = sbe_request,
                                  .cancel = sbe_cancel,
                                  .user = be,
                                  .resume = sbe_resume};
  fx_init_with(f, s, &b);
  be->h = f->h;
}

/* Decodes a chunked body at |p| (|n| bytes) into |body|, strictly as the
 * engine frames it: lowercase-or-uppercase hex size without extensions,
 * CRLF, data, CRLF, and "0" CRLF CRLF at the end (no trailers). Returns 1
 * with *|used| past the last chunk, or 0 when the bytes end before it at
 * a chunk boundary (*|used| = n). Fails on anything else. */
static int dechunk(const uint8_t *p, size_t n, size_t *used,
                   struct dcmf_buf *body) {
  size_t i = 0;
  while (i < n) {
    size_t size = 0, digits = 0;
    while (i < n && ((p[i] >= '0' && p[i] <= '9') ||
                     (p[i] >= 'a' && p[i] <= 'f') ||
                     (p[i] >= 'A' && p[i] <= 'F'))) {
      int c = p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10;
      size = size * 16 + (size_t)c;
      digits++;
      i++;
    }
    assert_true(digits > 0 && digits <= 8);
    assert_true(digits == 1 || p[i - digits] != '0'); /* no leading 0 */
    assert_true(i + 2 <= n && p[i] == '\r' && p[i + 1] == '\n');
    i += 2;
    if (size == 0) {
      assert_true(i + 2 <= n && p[i] == '\r' && p[i + 1] == '\n');
      *used = i + 2;
      return 1;
    }
    assert_true(i + size + 2 <= n);
    assert_int_equal(dcmf_buf_append(body, p + i, size), 0);
    i += size;
    assert_true(p[i] == '\r' && p[i + 1] == '\n');
    i += 2;
  }
  *used = n;
  return 0;
}

/* Parses a chunked response at *|off|; returns what dechunk returns. */
static int next_chunked(struct fx *f, size_t *off, struct resp *r,
                        struct dcmf_buf *body) {
  next_resp(f, off, 1, r);
  assert_true(has(r, "Transfer-Encoding: chunked"));
  assert_int_equal(r->content_length, -1);
  size_t used;
  int done = dechunk((const uint8_t *)f->out.data + *off, f->out.len - *off,
                     &used, body);
  *off += used;
  return done;
}

/* Writes one message (appended to the fixture's output); returns its
 * length. */
static size_t write1(struct fx *f) {
  static uint8_t msg[65536];
  assert_true(f->max <= sizeof(msg));
  size_t len;
  assert_int_equal(dcmf_httpdc_write(f->h, msg, f->max, &len), 0);
  assert_true(len <= f->max);
  if (len > 0) {
    assert_int_equal(dcmf_buf_append(&f->out, msg, len), 0);
  }
  return len;
}

static void test_stream_known_length(void **state) {
  (void)state;
  struct dcmf_httpdc_settings s = {.max_message_size = 1024};
  struct fx f;
  struct sbe be;
  sbe_init(&f, &be, &s);
  feed(&f, "GET /s HTTP/1.1\r\n\r\n");
  assert_int_equal(be.n, 1);
  struct dcmf_httpdc_header hd = {"X-Up", 4, "1", 1};
  struct dcmf_httpdc_response r = {.status = 200,
                                   .content_type = "application/octet-stream",
                                   .headers = &hd,
                                   .n_headers = 1};
  uint64_t total = 100000;
  assert_int_equal(
      dcmf_httpdc_respond_start(f.h, be.ids[0], &r, (int64_t)total), 0);
  assert_int_equal(dcmf_httpdc_respond(f.h, be.ids[0], &r),
                   DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, 5),
                   DCMF_ERR_NOT_FOUND);
  /* The head goes out alone while no data is there. */
  assert_int_equal(drain(&f), 1);
  struct resp rr;
  size_t off = 0;
  next_resp(&f, &off, 1, &rr);
  assert_int_equal(f.msgs[0], rr.head_len);
  assert_int_equal(rr.content_length, (long)total);
  assert_true(has(&rr, "X-Up: 1"));
  assert_null(strstr(rr.head, "Transfer-Encoding"));
  assert_int_equal(dcmf_httpdc_want_write(f.h), 0);
  /* Many small pieces, drained now and then. */
  struct src src = {.id = be.ids[0], .total = total, .piece = 333};
  uint8_t buf[333];
  while (src.off < total) {
    size_t n = src_next(&src);
    for (size_t i = 0; i < n; i++) {
      buf[i] = pat(src.off + i);
    }
    assert_int_equal(dcmf_httpdc_respond_data(f.h, src.id, buf, n), 0);
    src.off += n;
    src.k++;
    if (src.k % 7 == 0) {
      drain(&f);
      assert_int_equal(dcmf_httpdc_buffered(f.h), 0);
    }
  }
  assert_int_equal(dcmf_httpdc_respond_data(f.h, src.id, buf, 1),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, src.id), 0);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, src.id), DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, src.id, buf, 1),
                   DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_httpdc_respond_abort(f.h, src.id), DCMF_ERR_NOT_FOUND);
  drain(&f);
  assert_int_equal(f.out.len, rr.head_len + total);
  assert_true(pat_check((const uint8_t *)f.out.data + rr.head_len, total, 0));
  assert_int_equal(dcmf_httpdc_buffered(f.h), 0);
  assert_int_equal(be.n_cancelled, 0);
  /* The engine reads on. */
  feed(&f, "GET /sync HTTP/1.1\r\n\r\n");
  assert_int_equal(drain(&f), 1);
  off = rr.head_len + total;
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 204);
  assert_int_equal(off, f.out.len);
  fx_free(&f);
}

static void test_stream_chunked(void **state) {
  (void)state;
  size_t sizes[] = {1024, 4096, 0};
  for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
    struct dcmf_httpdc_settings s = {.max_message_size = sizes[t]};
    struct fx f;
    struct sbe be;
    sbe_init(&f, &be, &s);
    feed(&f, "GET /s HTTP/1.1\r\n\r\nGET /sync HTTP/1.1\r\n\r\n");
    struct dcmf_httpdc_response r = {.status = 200,
                                     .content_type = "text/plain"};
    assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, -1), 0);
    uint64_t total = 300000;
    struct src src = {.id = be.ids[0], .total = total, .piece = f.max};
    uint8_t *buf = malloc(f.max);
    assert_non_null(buf);
    /* Mixed: bursts of pieces, single messages pulled in between. */
    while (src.off < total) {
      for (int i = 0; i < 5 && src.off < total; i++) {
        size_t n = src_next(&src);
        for (size_t k = 0; k < n; k++) {
          buf[k] = pat(src.off + k);
        }
        assert_int_equal(dcmf_httpdc_respond_data(f.h, src.id, buf, n), 0);
        src.off += n;
        src.k++;
      }
      write1(&f);
      write1(&f);
    }
    drain(&f);
    /* Ending with nothing buffered: the last chunk alone. */
    assert_int_equal(dcmf_httpdc_respond_end(f.h, src.id), 0);
    size_t before = f.out.len;
    assert_int_equal(write1(&f), 5);
    assert_memory_equal(f.out.data + before, "0\r\n\r\n", 5);
    drain(&f);
    free(buf);
    size_t off = 0;
    struct resp rr;
    struct dcmf_buf body = {0};
    assert_int_equal(next_chunked(&f, &off, &rr, &body), 1);
    assert_int_equal(rr.status, 200);
    assert_null(strstr(rr.head, "Connection:"));
    assert_int_equal(body.len, total);
    assert_true(pat_check((const uint8_t *)body.data, total, 0));
    next_resp(&f, &off, 0, &rr);
    assert_int_equal(rr.status, 204);
    assert_int_equal(off, f.out.len);
    dcmf_buf_free(&body);
    fx_free(&f);
  }
  /* Start, data and end from inside the request callback: one message. */
  struct fx f;
  struct sbe be;
  sbe_init(&f, &be, NULL);
  feed(&f, "GET /inline HTTP/1.1\r\n\r\n");
  assert_int_equal(drain(&f), 1);
  const char *end = memmem(f.out.data, f.out.len, "\r\n\r\n", 4);
  assert_non_null(end);
  size_t head = (size_t)(end + 4 - f.out.data);
  assert_int_equal(f.out.len - head, strlen("5\r\nhello\r\n0\r\n\r\n"));
  assert_memory_equal(end + 4, "5\r\nhello\r\n0\r\n\r\n", f.out.len - head);
  fx_free(&f);
}

/* 20 MB through the default buffer, data given only from |resume|. */
static void test_stream_bounded(void **state) {
  (void)state;
  int64_t lengths[] = {-1, 20 * 1000 * 1000};
  for (size_t t = 0; t < 2; t++) {
    struct fx f;
    struct sbe be;
    sbe_init(&f, &be, NULL);
    size_t high = DCMF_HTTPDC_DEFAULT_STREAM_BUFFER;
    size_t bound = high + f.max - 1;
    feed(&f, "GET /big HTTP/1.1\r\n\r\n");
    struct dcmf_httpdc_response r = {.status = 200};
    assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, lengths[t]),
                     0);
    struct src src = {.id = be.ids[0], .total = 20 * 1000 * 1000,
                      .piece = f.max};
    be.pump = &src;
    src_pump(f.h, &src);
    assert_int_equal(src.refused, 1);
    size_t peak = dcmf_httpdc_buffered(f.h);
    assert_true(peak >= high && peak <= bound);
    uint8_t *msg = malloc(f.max);
    assert_non_null(msg);
    struct dcmf_buf body = {0};
    size_t head = 0, used = 0, len;
    uint64_t seen = 0;
    int done = 0;
    for (;;) {
      assert_int_equal(dcmf_httpdc_write(f.h, msg, f.max, &len), 0);
      size_t b = dcmf_httpdc_buffered(f.h);
      assert_true(b <= bound);
      peak = b > peak ? b : peak;
      if (len == 0) {
        break;
      }
      assert_true(len <= f.max);
      /* Keep the head and the undecoded rest; decode as we go. */
      assert_int_equal(dcmf_buf_append(&f.out, msg, len), 0);
      if (head == 0) {
        const char *e = memmem(f.out.data, f.out.len, "\r\n\r\n", 4);
        assert_non_null(e);
        head = used = (size_t)(e + 4 - f.out.data);
        assert_true(lengths[t] < 0 ? strstr(f.out.data, "chunked") != NULL
                                   : strstr(f.out.data,
                                            "Content-Length: 20000000") !=
                                         NULL);
      }
      if (lengths[t] < 0) {
        /* Whole chunks per message: decode each message completely. */
        assert_false(done);
        size_t u;
        done = dechunk((const uint8_t *)f.out.data + used, f.out.len - used,
                       &u, &body);
        used += u;
        assert_int_equal(used, f.out.len);
      } else {
        assert_int_equal(
            dcmf_buf_append(&body, f.out.data + used, f.out.len - used), 0);
        used = f.out.len;
      }
      /* Check and forget what is decoded. */
      assert_true(pat_check((const uint8_t *)body.data, body.len, seen));
      seen += body.len;
      body.len = 0;
      f.out.len = used = head;
    }
    assert_true(src.ended);
    assert_int_equal(seen, src.total);
    /* Every refusal got exactly one resume, for this id. */
    assert_true(src.refused > 10);
    assert_int_equal(be.n_resumed, src.refused);
    assert_int_equal(be.resumed[0], src.id);
    assert_int_equal(be.last_resumed, src.id);
    assert_int_equal(dcmf_httpdc_buffered(f.h), 0);
    assert_int_equal(dcmf_httpdc_want_write(f.h), 0);
    if (lengths[t] < 0) {
      assert_true(done);
    }
    assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);
    dcmf_buf_free(&body);
    free(msg);
    fx_free(&f);
  }
}

static void test_stream_exhausted_resume(void **state) {
  (void)state;
  struct dcmf_httpdc_settings s = {.max_message_size = 1024,
                                   .stream_buffer = 4096};
  struct fx f;
  struct sbe be;
  sbe_init(&f, &be, &s);
  feed(&f, "GET /s HTTP/1.1\r\n\r\n");
  uint64_t id = be.ids[0];
  struct dcmf_httpdc_response r = {.status = 200};
  assert_int_equal(dcmf_httpdc_respond_start(f.h, id, &r, 100000), 0);
  uint8_t piece[1025];
  memset(piece, 'x', sizeof(piece));
  assert_int_equal(dcmf_httpdc_respond_data(f.h, id, piece, 1025),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, id, NULL, 3),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, id, NULL, 0), 0);
  /* Taken while less than 4096 bytes are buffered: 5 x 1000. */
  for (int i = 0; i < 5; i++) {
    assert_int_equal(dcmf_httpdc_respond_data(f.h, id, piece, 1000), 0);
  }
  assert_int_equal(dcmf_httpdc_buffered(f.h), 5000);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, id, piece, 1000),
                   DCMF_ERR_EXHAUSTED);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, id, piece, 1),
                   DCMF_ERR_EXHAUSTED);
  assert_int_equal(dcmf_httpdc_buffered(f.h), 5000);
  /* No resume until writing is down to 2048 buffered bytes, then one. */
  size_t writes = 0;
  while (dcmf_httpdc_buffered(f.h) > 2048) {
    assert_int_equal(be.n_resumed, 0);
    assert_true(write1(&f) > 0);
    writes++;
  }
  assert_int_equal(writes, 3); /* head + 4096 - head bytes, then 2 x 1024 */
  assert_int_equal(be.n_resumed, 1);
  assert_int_equal(be.resumed[0], id);
  assert_int_equal(write1(&f), 1024);
  assert_int_equal(be.n_resumed, 1);
  /* Taken again; a new refusal brings one new resume. */
  while (dcmf_httpdc_respond_data(f.h, id, piece, 1000) == 0) {
  }
  size_t held = dcmf_httpdc_buffered(f.h);
  assert_true(held >= 4096 && held < 4096 + 1000);
  drain(&f);
  assert_int_equal(be.n_resumed, 2);
  assert_int_equal(dcmf_httpdc_buffered(f.h), 0);
  /* Ending after a refusal: no resume for an ended response. */
  assert_int_equal(dcmf_httpdc_respond_abort(f.h, id), 0);
  assert_int_equal(be.n_resumed, 2);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSING);
  drain(&f);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  assert_int_equal(be.n_resumed, 2);
  /* A streaming backend without |resume| may poll. */
  fx_free(&f);
  memset(&be, 0, sizeof(be));
  struct dcmf_httpdc_backend b = {.request = sbe_request, .user = &be};
  fx_init_with(&f, &s, &b);
  be.h = f.h;
  feed(&f, "GET /s HTTP/1.1\r\n\r\n");
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, -1), 0);
  struct src src = {.id = be.ids[0], .total = 50000, .piece = 1024};
  while (!src.ended) {
    src_pump(f.h, &src);
    drain(&f);
  }
  size_t off = 0;
  struct resp rr;
  struct dcmf_buf body = {0};
  assert_int_equal(next_chunked(&f, &off, &rr, &body), 1);
  assert_int_equal(body.len, 50000);
  assert_true(pat_check((const uint8_t *)body.data, body.len, 0));
  dcmf_buf_free(&body);
  fx_free(&f);
}

/* A streamed response holds back the responses after it. */
static void test_stream_ordering(void **state) {
  (void)state;
  struct dcmf_httpdc_settings s = {.max_message_size = 1024,
                                   .stream_buffer = 2000};
  struct fx f;
  struct sbe be;
  sbe_init(&f, &be, &s);
  feed(&f, "GET /a HTTP/1.1\r\n\r\nGET /sync HTTP/1.1\r\n\r\n"
           "GET /c HTTP/1.1\r\n\r\n");
  assert_int_equal(be.n, 2);
  uint64_t a = be.ids[0], c = be.ids[1];
  struct dcmf_httpdc_response r = {.status = 200};
  /* The third starts first and buffers up to its limit. */
  assert_int_equal(dcmf_httpdc_respond_start(f.h, c, &r, -1), 0);
  struct src sc = {.id = c, .total = 10000, .piece = 700};
  src_pump(f.h, &sc);
  assert_int_equal(sc.refused, 1);
  assert_true(dcmf_httpdc_buffered(f.h) >= 2000);
  assert_int_equal(drain(&f), 0); /* the first is unanswered */
  assert_int_equal(dcmf_httpdc_respond_start(f.h, a, &r, 3000), 0);
  struct src sa = {.id = a, .total = 3000, .piece = 500};
  uint8_t buf[500];
  for (int i = 0; i < 2; i++) {
    size_t n = src_next(&sa);
    for (size_t k = 0; k < n; k++) {
      buf[k] = pat(sa.off + k);
    }
    assert_int_equal(dcmf_httpdc_respond_data(f.h, a, buf, n), 0);
    sa.off += n;
    sa.k++;
  }
  drain(&f);
  /* Only the first response so far; the 204 and the third wait. */
  size_t off = 0;
  struct resp rr;
  next_resp(&f, &off, 1, &rr);
  assert_int_equal(rr.content_length, 3000);
  assert_int_equal(f.out.len - off, sa.off);
  assert_int_equal(be.n_resumed, 0); /* the third has not drained */
  while (!sa.ended) {
    src_pump(f.h, &sa);
    drain(&f);
  }
  /* The third is resumed once it is first and has drained. */
  assert_int_equal(be.last_resumed, c);
  for (size_t i = 0; i + 1 < be.n_resumed; i++) {
    assert_int_equal(be.resumed[i], a);
  }
  while (!sc.ended) {
    src_pump(f.h, &sc);
    drain(&f);
  }
  off = 0;
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.content_length, 3000);
  assert_true(pat_check(rr.body, rr.body_len, 0));
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 204);
  struct dcmf_buf body = {0};
  assert_int_equal(next_chunked(&f, &off, &rr, &body), 1);
  assert_int_equal(body.len, 10000);
  assert_true(pat_check((const uint8_t *)body.data, body.len, 0));
  assert_int_equal(off, f.out.len);
  dcmf_buf_free(&body);
  fx_free(&f);
}

static void test_stream_abort(void **state) {
  (void)state;
  struct fx f;
  struct sbe be;
  /* After the head went out: what is buffered, no last chunk, close. */
  sbe_init(&f, &be, NULL);
  feed(&f, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  struct dcmf_httpdc_response r = {.status = 200};
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, -1), 0);
  assert_int_equal(
      dcmf_httpdc_respond_data(f.h, be.ids[0], (const uint8_t *)"abc", 3), 0);
  assert_int_equal(drain(&f), 1);
  assert_int_equal(
      dcmf_httpdc_respond_data(f.h, be.ids[0], (const uint8_t *)"def", 3), 0);
  assert_int_equal(dcmf_httpdc_respond_abort(f.h, be.ids[0]), 0);
  assert_int_equal(dcmf_httpdc_respond_abort(f.h, be.ids[0]),
                   DCMF_ERR_NOT_FOUND);
  assert_int_equal(
      dcmf_httpdc_respond_data(f.h, be.ids[0], (const uint8_t *)"g", 1),
      DCMF_ERR_NOT_FOUND);
  assert_int_equal(be.n_cancelled, 1); /* the second request */
  assert_int_equal(be.cancelled[0], be.ids[1]);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSING);
  assert_int_equal(dcmf_httpdc_want_read(f.h), 1);
  feed(&f, "GET /sync HTTP/1.1\r\n\r\n"); /* ignored */
  assert_int_equal(drain(&f), 1);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  size_t off = 0;
  struct resp rr;
  struct dcmf_buf body = {0};
  assert_int_equal(next_chunked(&f, &off, &rr, &body), 0);
  assert_int_equal(body.len, 6);
  assert_memory_equal(body.data, "abcdef", 6);
  assert_int_equal(off, f.out.len);
  dcmf_buf_free(&body);
  fx_free(&f);

  /* Aborting with nothing buffered retires the response at once. */
  sbe_init(&f, &be, NULL);
  feed(&f, "GET /a HTTP/1.1\r\n\r\n");
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, 100), 0);
  assert_int_equal(drain(&f), 1);
  assert_int_equal(dcmf_httpdc_respond_abort(f.h, be.ids[0]), 0);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSING);
  assert_int_equal(dcmf_httpdc_want_write(f.h), 1);
  assert_int_equal(drain(&f), 0);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  fx_free(&f);

  /* Known length ended early: INVALID, and the same as an abort. */
  sbe_init(&f, &be, NULL);
  feed(&f, "GET /a HTTP/1.1\r\n\r\n");
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, 10), 0);
  assert_int_equal(
      dcmf_httpdc_respond_data(f.h, be.ids[0], (const uint8_t *)"1234", 4), 0);
  assert_int_equal(drain(&f), 1);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, be.ids[0]), DCMF_ERR_INVALID);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, be.ids[0]),
                   DCMF_ERR_NOT_FOUND);
  drain(&f);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  off = 0;
  next_resp(&f, &off, 1, &rr);
  assert_int_equal(rr.content_length, 10);
  assert_int_equal(f.out.len - off, 4);
  assert_memory_equal(f.out.data + off, "1234", 4);
  fx_free(&f);

  /* Before anything was written: 502 instead, the channel stays open. */
  sbe_init(&f, &be, NULL);
  feed(&f, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
           "GET /c HTTP/1.1\r\n\r\n");
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[1], &r, -1), 0);
  assert_int_equal(
      dcmf_httpdc_respond_data(f.h, be.ids[1], (const uint8_t *)"abc", 3), 0);
  assert_int_equal(dcmf_httpdc_respond_abort(f.h, be.ids[1]), 0);
  assert_int_equal(dcmf_httpdc_buffered(f.h), 0);
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[2], &r, 5), 0);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, be.ids[2]), DCMF_ERR_INVALID);
  struct dcmf_httpdc_response ok = {.status = 204};
  assert_int_equal(dcmf_httpdc_respond(f.h, be.ids[0], &ok), 0);
  assert_int_equal(drain(&f), 3);
  off = 0;
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 204);
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 502);
  assert_memory_equal(rr.body, "502 Bad Gateway\n", rr.body_len);
  assert_null(strstr(rr.head, "Connection:"));
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.status, 502);
  assert_int_equal(off, f.out.len);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);
  assert_int_equal(be.n_cancelled, 0);
  fx_free(&f);

  /* An earlier response that closes drops a started stream (cancel), and
   * deleting the engine cancels one that has not ended. */
  sbe_init(&f, &be, NULL);
  feed(&f, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
           "GET /c HTTP/1.1\r\n\r\n");
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[2], &r, -1), 0);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, be.ids[2]), 0);
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[1], &r, -1), 0);
  assert_int_equal(
      dcmf_httpdc_respond_data(f.h, be.ids[1], (const uint8_t *)"abc", 3), 0);
  struct dcmf_httpdc_response closing = {.status = 200, .close = 1};
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &closing, -1),
                   0);
  assert_int_equal(be.n_cancelled, 1); /* the ended one is not cancelled */
  assert_int_equal(be.cancelled[0], be.ids[1]);
  assert_int_equal(
      dcmf_httpdc_respond_data(f.h, be.ids[1], (const uint8_t *)"abc", 3),
      DCMF_ERR_NOT_FOUND);
  assert_int_equal(
      dcmf_httpdc_respond_data(f.h, be.ids[0], (const uint8_t *)"xyz", 3), 0);
  assert_int_equal(dcmf_httpdc_buffered(f.h), 3);
  fx_free(&f);
  assert_int_equal(be.n_cancelled, 2);
  assert_int_equal(be.cancelled[1], be.ids[0]);
}

static void test_stream_errors(void **state) {
  (void)state;
  struct fx f;
  struct sbe be;
  sbe_init(&f, &be, NULL);
  feed(&f, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  uint64_t a = be.ids[0], b = be.ids[1];
  struct dcmf_httpdc_response r = {.status = 200};
  const uint8_t *d = (const uint8_t *)"0123456789";
  assert_int_equal(dcmf_httpdc_respond_start(f.h, 99, &r, -1),
                   DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_httpdc_respond_start(f.h, a, &r, -2),
                   DCMF_ERR_INVALID);
  struct dcmf_httpdc_header te = {"Transfer-Encoding", 17, "chunked", 7};
  struct dcmf_httpdc_response bad = {.status = 200, .headers = &te,
                                     .n_headers = 1};
  assert_int_equal(dcmf_httpdc_respond_start(f.h, a, &bad, -1),
                   DCMF_ERR_INVALID);
  bad = r;
  bad.status = 199;
  assert_int_equal(dcmf_httpdc_respond_start(f.h, a, &bad, -1),
                   DCMF_ERR_INVALID);
  char *longv = malloc(70000);
  assert_non_null(longv);
  memset(longv, 'v', 70000);
  struct dcmf_httpdc_header big = {"X", 1, longv, 70000};
  bad = r;
  bad.headers = &big;
  bad.n_headers = 1;
  assert_int_equal(dcmf_httpdc_respond_start(f.h, a, &bad, -1),
                   DCMF_ERR_TOO_LARGE);
  free(longv);
  /* Data and end for ids that are not streamed. */
  assert_int_equal(dcmf_httpdc_respond_data(f.h, a, d, 1), DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, a), DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_httpdc_respond_abort(f.h, a), DCMF_ERR_NOT_FOUND);
  struct dcmf_httpdc_response plain = {.status = 200, .body = d,
                                       .body_len = 10};
  assert_int_equal(dcmf_httpdc_respond(f.h, b, &plain), 0);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, b, d, 1), DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, b), DCMF_ERR_NOT_FOUND);
  /* More than announced: refused, nothing taken. */
  assert_int_equal(dcmf_httpdc_respond_start(f.h, a, &r, 10), 0);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, a, d, 6), 0);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, a, d + 6, 5),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_httpdc_buffered(f.h), 6);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, a, d + 6, 4), 0);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, a, d, 1), DCMF_ERR_INVALID);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, a), 0);
  assert_int_equal(drain(&f), 2);
  size_t off = 0;
  struct resp rr;
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.body_len, 10);
  assert_memory_equal(rr.body, d, 10);
  next_resp(&f, &off, 0, &rr);
  assert_memory_equal(rr.body, d, 10);
  assert_int_equal(off, f.out.len);
  /* Content-Length 0. */
  feed(&f, "GET /e HTTP/1.1\r\n\r\n");
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[2], &r, 0), 0);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, be.ids[2], d, 1),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, be.ids[2]), 0);
  assert_int_equal(drain(&f), 1);
  next_resp(&f, &off, 0, &rr);
  assert_int_equal(rr.content_length, 0);
  assert_int_equal(off, f.out.len);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);
  fx_free(&f);
}

static void test_stream_no_body(void **state) {
  (void)state;
  struct fx f;
  struct sbe be;
  sbe_init(&f, &be, NULL);
  feed(&f, "HEAD /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n"
           "GET /c HTTP/1.1\r\n\r\nHEAD /d HTTP/1.0\r\n\r\n");
  assert_int_equal(be.n, 4);
  struct dcmf_httpdc_response r = {.status = 200, .content_type = "a/b"};
  uint8_t big[2000] = {0};
  /* HEAD, known length: Content-Length, data ignored. */
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, 1234), 0);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, be.ids[0], big, 2000), 0);
  assert_int_equal(dcmf_httpdc_buffered(f.h), 0);
  assert_int_equal(drain(&f), 1); /* the head; the response is still open */
  assert_int_equal(dcmf_httpdc_respond_data(f.h, be.ids[0], big, 100), 0);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, be.ids[0]), 0);
  /* HEAD, unknown length: neither Content-Length nor chunked. An abort
   * once the head is out just ends it. */
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[1], &r, -1), 0);
  assert_int_equal(drain(&f), 1);
  assert_int_equal(dcmf_httpdc_respond_abort(f.h, be.ids[1]), 0);
  /* 204 to a GET: no Content-Length even when one is given. */
  struct dcmf_httpdc_response nc = {.status = 204};
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[2], &nc, 55), 0);
  assert_int_equal(dcmf_httpdc_respond_data(f.h, be.ids[2], big, 10), 0);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, be.ids[2]), 0);
  /* HTTP/1.0 HEAD, unknown length: closes only because 1.0 does. */
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[3], &r, -1), 0);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, be.ids[3]), 0);
  assert_int_equal(drain(&f), 2);
  size_t off = 0;
  struct resp rr;
  next_resp(&f, &off, 1, &rr);
  assert_int_equal(rr.content_length, 1234);
  assert_true(has(&rr, "Content-Type: a/b"));
  next_resp(&f, &off, 1, &rr);
  assert_int_equal(rr.content_length, -1);
  assert_null(strstr(rr.head, "Transfer-Encoding"));
  assert_null(strstr(rr.head, "Connection"));
  next_resp(&f, &off, 1, &rr);
  assert_int_equal(rr.status, 204);
  assert_int_equal(rr.content_length, -1);
  next_resp(&f, &off, 1, &rr);
  assert_null(strstr(rr.head, "Transfer-Encoding"));
  assert_true(has(&rr, "Connection: close"));
  assert_int_equal(off, f.out.len);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSED);
  assert_int_equal(be.n_cancelled, 0);
  fx_free(&f);
}

static void test_stream_http10(void **state) {
  (void)state;
  struct fx f;
  struct sbe be;
  sbe_init(&f, &be, NULL);
  /* Keep-alive asked for, but an unknown length needs the close. */
  feed(&f, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
           "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  assert_int_equal(be.n, 2);
  struct dcmf_httpdc_response r = {.status = 200};
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, -1), 0);
  assert_int_equal(be.n_cancelled, 1);
  assert_int_equal(be.cancelled[0], be.ids[1]);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_CLOSING);
  struct src src = {.id = be.ids[0], .total = 200000, .piece = 5000};
  while (!src.ended) {
    src_pump(f.h, &src);
    drain(&f);
    assert_int_equal(dcmf_httpdc_get_state(f.h),
                     src.ended ? DCMF_HTTPDC_CLOSED : DCMF_HTTPDC_CLOSING);
  }
  struct resp rr;
  size_t off = 0;
  next_resp(&f, &off, 1, &rr);
  assert_true(has(&rr, "Connection: close"));
  assert_null(strstr(rr.head, "keep-alive"));
  assert_null(strstr(rr.head, "Transfer-Encoding"));
  assert_int_equal(rr.content_length, -1);
  assert_int_equal(f.out.len - off, 200000);
  assert_true(pat_check((const uint8_t *)f.out.data + off, 200000, 0));
  fx_free(&f);

  /* A known length keeps the keep-alive. */
  sbe_init(&f, &be, NULL);
  feed(&f, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  assert_int_equal(dcmf_httpdc_respond_start(f.h, be.ids[0], &r, 3), 0);
  assert_int_equal(
      dcmf_httpdc_respond_data(f.h, be.ids[0], (const uint8_t *)"abc", 3), 0);
  assert_int_equal(dcmf_httpdc_respond_end(f.h, be.ids[0]), 0);
  assert_int_equal(drain(&f), 1);
  only_resp(&f, 0, &rr);
  assert_true(has(&rr, "Connection: keep-alive"));
  assert_memory_equal(rr.body, "abc", 3);
  assert_int_equal(dcmf_httpdc_get_state(f.h), DCMF_HTTPDC_OPEN);
  fx_free(&f);
}

/* With max_request_body set, the body reaches the backend with the
 * request, split however it arrives; too large a body gets 413. */
struct body_seen {
  char body[64];
  size_t len;
  int calls;
};

static int body_backend_request(void *user, struct dcmf_httpdc *h,
                                const struct dcmf_httpdc_request *req) {
  struct body_seen *b = user;
  b->calls++;
  b->len = req->body_len;
  if (req->body_len > 0 && req->body_len < sizeof(b->body)) {
    memcpy(b->body, req->body, req->body_len);
  }
  struct dcmf_httpdc_response resp = {.status = 204};
  return dcmf_httpdc_respond(h, req->id, &resp);
}

static void test_request_bodies_collected(void **state) {
  (void)state;
  struct body_seen seen;
  memset(&seen, 0, sizeof(seen));
  struct dcmf_httpdc_backend backend = {.request = body_backend_request,
                                        .user = &seen};
  struct dcmf_httpdc_settings st = {.max_request_body = 32};
  struct dcmf_httpdc *h;
  assert_int_equal(dcmf_httpdc_new(&h, &st, &backend), 0);
  static const char req[] = "POST /x HTTP/1.1\r\nHost:\r\nContent-Length: 11"
                            "\r\n\r\nhello world"
                            "GET /y HTTP/1.1\r\nHost:\r\n\r\n";
  /* Byte by byte: the body is collected across messages. */
  for (size_t i = 0; i < sizeof(req) - 1; i++) {
    assert_int_equal(dcmf_httpdc_recv(h, (const uint8_t *)req + i, 1), 0);
  }
  assert_int_equal(seen.calls, 2);
  assert_int_equal(seen.len, 0); /* the GET has none */
  dcmf_httpdc_del(h);
  /* The POST's body arrived whole. */
  memset(&seen, 0, sizeof(seen));
  assert_int_equal(dcmf_httpdc_new(&h, &st, &backend), 0);
  /* The POST alone: its head and body (58 bytes). */
  assert_int_equal(dcmf_httpdc_recv(h, (const uint8_t *)req, 58), 0);
  assert_int_equal(seen.calls, 1);
  assert_int_equal(seen.len, 11);
  assert_memory_equal(seen.body, "hello world", 11);
  dcmf_httpdc_del(h);
  /* Over the limit: 413 and the channel closes. */
  memset(&seen, 0, sizeof(seen));
  assert_int_equal(dcmf_httpdc_new(&h, &st, &backend), 0);
  static const char big[] = "PUT /z HTTP/1.1\r\nContent-Length: 33\r\n\r\n";
  assert_int_equal(dcmf_httpdc_recv(h, (const uint8_t *)big, sizeof(big) - 1),
                   0);
  assert_int_equal(seen.calls, 0);
  size_t cap = dcmf_httpdc_max_message_size(h);
  uint8_t *out = malloc(cap);
  size_t n = 0;
  assert_int_equal(dcmf_httpdc_write(h, out, cap, &n), 0);
  assert_true(n > 12);
  assert_memory_equal(out, "HTTP/1.1 413 ", 13);
  free(out);
  dcmf_httpdc_del(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_bodies_collected),
      cmocka_unit_test(test_get_root),
      cmocka_unit_test(test_head),
      cmocka_unit_test(test_if_none_match),
      cmocka_unit_test(test_not_found),
      cmocka_unit_test(test_method_not_allowed),
      cmocka_unit_test(test_body_read_before_answer),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_chunked_not_implemented),
      cmocka_unit_test(test_uri_too_long),
      cmocka_unit_test(test_header_too_large),
      cmocka_unit_test(test_version_not_supported),
      cmocka_unit_test(test_split_byte_by_byte),
      cmocka_unit_test(test_pipelined),
      cmocka_unit_test(test_large_file),
      cmocka_unit_test(test_host_ignored),
      cmocka_unit_test(test_absolute_form),
      cmocka_unit_test(test_directory_redirect),
      cmocka_unit_test(test_connection_close),
      cmocka_unit_test(test_expect_continue),
      cmocka_unit_test(test_leading_empty_lines),
      cmocka_unit_test(test_traversal_in_memory),
      cmocka_unit_test(test_repo_open),
      cmocka_unit_test(test_normalize),
      cmocka_unit_test(test_repo_entries),
      cmocka_unit_test(test_default_www),
      cmocka_unit_test(test_async_backend),
      cmocka_unit_test(test_head_declared_length),
      cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_write_cap),
      cmocka_unit_test(test_stream_known_length),
      cmocka_unit_test(test_stream_chunked),
      cmocka_unit_test(test_stream_bounded),
      cmocka_unit_test(test_stream_exhausted_resume),
      cmocka_unit_test(test_stream_ordering),
      cmocka_unit_test(test_stream_abort),
      cmocka_unit_test(test_stream_errors),
      cmocka_unit_test(test_stream_no_body),
      cmocka_unit_test(test_stream_http10),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
