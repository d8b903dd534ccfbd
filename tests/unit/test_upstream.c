/*
 * test_upstream.c - the HTTP client (dcmf/net/upstream.h) in process,
 * against the loopback HTTP/1.1 server of tests/support/h1srv.c on the
 * same libuv loop: the h2c-then-HTTP/1.1 fallback, keep-alive reuse,
 * chunked bodies paused and resumed, the response timeout, cancel, a
 * refused port, and https with the tlspump as the server (verified with
 * the test CA, refused with another, and a broken record after the
 * handshake).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "errors.h"
#include "h1srv.h"
#include "testpki.h"
#include "upstream.h"
#include "urlmap.h"

#define WAIT_MS 5000

struct fixture {
  uv_loop_t loop;
  struct dcmf_log log;
  struct testpki pki;
  char ca_path[64], other_path[64];
  SSL_CTX *srv_tls;
  struct dcmf_upstream_pool *pool;
  struct h1srv srv;
};

/* What one request saw. */
struct call {
  struct dcmf_upstream_pool *pool;
  int status, heads, ended;
  int64_t content_length;
  char x_test[16];
  char body[4096];
  size_t body_len;
  int pause_first; /* pause after the first piece */
  int pieces;
  enum dcmf_upstream_result result;
  char why[200];
  struct dcmf_upstream_req *req;
  uv_timer_t resume;
};

static void on_head(void *user, int status,
                    const struct dcmf_upstream_header *hs, size_t n,
                    int64_t content_length) {
  struct call *c = user;
  c->heads++;
  c->status = status;
  c->content_length = content_length;
  for (size_t i = 0; i < n; i++) {
    if (hs[i].name_len == 6 && strncasecmp(hs[i].name, "x-test", 6) == 0 &&
        hs[i].value_len < sizeof(c->x_test)) {
      memcpy(c->x_test, hs[i].value, hs[i].value_len);
    }
  }
}

static void on_resume(uv_timer_t *t) {
  struct call *c = t->data;
  dcmf_upstream_resume(c->req);
}

static int on_data(void *user, const uint8_t *data, size_t len) {
  struct call *c = user;
  assert_true(c->body_len + len <= sizeof(c->body));
  memcpy(c->body + c->body_len, data, len);
  c->body_len += len;
  if (c->pieces++ == 0 && c->pause_first) {
    uv_timer_start(&c->resume, on_resume, 50, 0); /* resume later */
    return 1;
  }
  return 0;
}

static void on_end(void *user, enum dcmf_upstream_result result,
                   const char *why) {
  struct call *c = user;
  c->ended++;
  c->result = result;
  snprintf(c->why, sizeof(c->why), "%s", why);
}

static const struct dcmf_upstream_callbacks cbs = {on_head, on_data, on_end};

static void pool_new(struct fixture *f, const char *ca, uint32_t response_ms) {
  struct dcmf_upstream_settings st = {
      .ca_file = ca,
      .connect_timeout_ms = 2000,
      .response_timeout_ms = response_ms,
      .idle_timeout_ms = 10000,
      .max_connections = 4,
  };
  char err[200];
  assert_int_equal(dcmf_upstream_pool_new(&f->pool, &f->loop, &st, &f->log, err,
                                          sizeof(err)),
                   0);
}

static void start(struct fixture *f, struct call *c, int https,
                  const char *host, uint16_t port, const char *method,
                  const char *path) {
  char text[256];
  snprintf(text, sizeof(text), "%s://%s:%u%s", https ? "https" : "http", host,
           port, path);
  struct dcmf_url url;
  assert_int_equal(dcmf_url_parse(text, &url), 0);
  uv_timer_init(&f->loop, &c->resume);
  c->resume.data = c;
  c->pool = f->pool;
  assert_int_equal(dcmf_upstream_request(f->pool, &url, method, NULL, 0, NULL,
                                         0, &cbs, c, &c->req),
                   0);
}

/* Runs the loop until |c| ended, for at most WAIT_MS. */
static void wait_end(struct fixture *f, struct call *c) {
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + WAIT_MS;
  for (int i = 0; i < 100000 && !c->ended && uv_now(&f->loop) < end; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&f->loop);
  }
  assert_int_equal(c->ended, 1);
}

/* The timer lives in the test's stack frame: closed before it returns. */
static void on_resume_closed(uv_handle_t *h) {
  struct call *c = h->data;
  c->resume.data = NULL;
}

static void call_done(struct call *c) {
  uv_close((uv_handle_t *)&c->resume, on_resume_closed);
  for (int i = 0; i < 10 && c->resume.data != NULL; i++) {
    uv_run(c->resume.loop, UV_RUN_NOWAIT);
  }
  assert_null(c->resume.data);
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->log = (struct dcmf_log){.stream = NULL};
  testpki_init(&f->pki);
  testpki_write_pem(f->pki.ca, f->ca_path, sizeof(f->ca_path));
  testpki_write_pem(f->pki.other_ca, f->other_path, sizeof(f->other_path));
  f->srv_tls = SSL_CTX_new(TLS_server_method());
  assert_non_null(f->srv_tls);
  assert_int_equal(SSL_CTX_use_certificate(f->srv_tls, f->pki.srv), 1);
  assert_int_equal(SSL_CTX_use_PrivateKey(f->srv_tls, f->pki.srv_key), 1);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  dcmf_upstream_pool_del(f->pool);
  if (f->srv.port != 0) {
    h1srv_close(&f->srv);
  }
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  SSL_CTX_free(f->srv_tls);
  unlink(f->ca_path);
  unlink(f->other_path);
  testpki_free(&f->pki);
  free(f);
  return 0;
}

static void test_h1_fallback_and_reuse(void **state) {
  struct fixture *f = *state;
  pool_new(f, NULL, 2000);
  h1srv_start(&f->srv, &f->loop, NULL, 200, "hello");
  struct call a = {0}, b = {0};
  start(f, &a, 0, "127.0.0.1", f->srv.port, "GET", "/a?q=1");
  wait_end(f, &a);
  assert_int_equal(a.result, DCMF_UPSTREAM_OK);
  assert_int_equal(a.status, 200);
  assert_int_equal(a.content_length, 5);
  assert_string_equal(a.x_test, "yes");
  assert_int_equal(a.body_len, 5);
  assert_memory_equal(a.body, "hello", 5);
  assert_int_equal(f->srv.prefaces, 1); /* h2c was tried first */
  assert_true(strncmp(f->srv.seen[0],
                      "GET /a?q=1 HTTP/1.1\r\nHost: 127.0.0.1:", 37) == 0);
  /* The next request reuses the kept-alive connection. */
  start(f, &b, 0, "127.0.0.1", f->srv.port, "GET", "/b");
  wait_end(f, &b);
  assert_int_equal(b.result, DCMF_UPSTREAM_OK);
  assert_int_equal(f->srv.prefaces, 1); /* not tried again */
  assert_int_equal(f->srv.accepted, 2); /* the probe, then one HTTP/1.1 */
  const struct dcmf_upstream_counters *n = dcmf_upstream_counters(f->pool);
  assert_int_equal(n->requests, 2);
  assert_int_equal(n->responses, 2);
  assert_int_equal(n->connections_reused, 1);
  assert_int_equal(n->failures, 0);
  call_done(&a);
  call_done(&b);
}

static void test_chunked_pause_resume(void **state) {
  struct fixture *f = *state;
  pool_new(f, NULL, 2000);
  static const char body[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  h1srv_start(&f->srv, &f->loop, NULL, 200, body);
  f->srv.chunked = 1;
  struct call c = {.pause_first = 1};
  start(f, &c, 0, "127.0.0.1", f->srv.port, "GET", "/c");
  wait_end(f, &c);
  assert_int_equal(c.result, DCMF_UPSTREAM_OK);
  assert_int_equal(c.content_length, -1);
  assert_true(c.pieces >= 2); /* paused after the first, then the rest */
  assert_int_equal(c.body_len, sizeof(body) - 1);
  assert_memory_equal(c.body, body, sizeof(body) - 1);
  call_done(&c);
}

static void test_error_status_is_a_response(void **state) {
  struct fixture *f = *state;
  pool_new(f, NULL, 2000);
  h1srv_start(&f->srv, &f->loop, NULL, 503, "busy");
  struct call c = {0};
  start(f, &c, 0, "127.0.0.1", f->srv.port, "POST", "/p");
  wait_end(f, &c);
  assert_int_equal(c.result, DCMF_UPSTREAM_OK);
  assert_int_equal(c.status, 503);
  assert_int_equal(c.body_len, 4);
  call_done(&c);
}

static void test_response_timeout(void **state) {
  struct fixture *f = *state;
  pool_new(f, NULL, 300);
  h1srv_start(&f->srv, &f->loop, NULL, 0, NULL); /* never answers */
  struct call c = {0};
  start(f, &c, 0, "127.0.0.1", f->srv.port, "GET", "/slow");
  wait_end(f, &c);
  assert_int_equal(c.result, DCMF_UPSTREAM_TIMEOUT);
  assert_int_equal(c.heads, 0);
  assert_string_equal(c.why, "no response in time");
  assert_int_equal(dcmf_upstream_counters(f->pool)->timeouts, 1);
  call_done(&c);
}

static void test_cancel(void **state) {
  struct fixture *f = *state;
  pool_new(f, NULL, 2000);
  h1srv_start(&f->srv, &f->loop, NULL, 0, NULL);
  struct call c = {0}, d = {0};
  start(f, &c, 0, "127.0.0.1", f->srv.port, "GET", "/x");
  /* Cancelled while queued: nothing is ever called. */
  dcmf_upstream_cancel(c.req);
  /* Cancelled in flight, once the server has the request. */
  start(f, &d, 0, "127.0.0.1", f->srv.port, "GET", "/y");
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + WAIT_MS;
  while (f->srv.n_seen == 0 && uv_now(&f->loop) < end) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&f->loop);
  }
  assert_int_equal(f->srv.n_seen, 1);
  assert_non_null(strstr(f->srv.seen[0], "GET /y HTTP/1.1")); /* not /x */
  dcmf_upstream_cancel(d.req);
  for (int i = 0; i < 20; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(c.ended + c.heads, 0);
  assert_int_equal(d.ended + d.heads, 0);
  call_done(&c);
  call_done(&d);
}

static void test_refused_port(void **state) {
  struct fixture *f = *state;
  pool_new(f, NULL, 2000);
  h1srv_start(&f->srv, &f->loop, NULL, 200, "x");
  uint16_t port = f->srv.port;
  h1srv_stop_listening(&f->srv);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  struct call c = {0};
  start(f, &c, 0, "127.0.0.1", port, "GET", "/");
  wait_end(f, &c);
  assert_int_equal(c.result, DCMF_UPSTREAM_UNREACHABLE);
  assert_int_equal(dcmf_upstream_counters(f->pool)->failures, 1);
  call_done(&c);
}

static void test_https_verified(void **state) {
  struct fixture *f = *state;
  pool_new(f, f->ca_path, 2000);
  h1srv_start(&f->srv, &f->loop, f->srv_tls, 200, "secret");
  struct call c = {0};
  start(f, &c, 1, "127.0.0.1", f->srv.port, "GET", "/s");
  wait_end(f, &c);
  assert_int_equal(c.result, DCMF_UPSTREAM_OK);
  assert_int_equal(c.status, 200);
  assert_memory_equal(c.body, "secret", 6);
  assert_int_equal(f->srv.prefaces, 0); /* no ALPN h2: HTTP/1.1 at once */
  assert_int_equal(f->srv.tls_failures, 0);
  call_done(&c);
}

static void test_https_untrusted_refused(void **state) {
  struct fixture *f = *state;
  pool_new(f, f->other_path, 2000);
  h1srv_start(&f->srv, &f->loop, f->srv_tls, 200, "secret");
  struct call c = {0};
  start(f, &c, 1, "127.0.0.1", f->srv.port, "GET", "/s");
  wait_end(f, &c);
  assert_int_equal(c.result, DCMF_UPSTREAM_UNREACHABLE);
  assert_int_equal(c.heads, 0);
  assert_string_equal(c.why, "TLS handshake failed: certificate verify "
                             "failed: unable to get local issuer certificate");
  assert_int_equal(f->srv.n_seen, 0);
  call_done(&c);
}

/* Bytes that are no TLS record on an open connection fail it. */
static void test_https_broken_record(void **state) {
  struct fixture *f = *state;
  pool_new(f, f->ca_path, 2000);
  h1srv_start(&f->srv, &f->loop, f->srv_tls, 200, "secret");
  f->srv.raw_answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  struct call c = {0};
  start(f, &c, 1, "127.0.0.1", f->srv.port, "GET", "/s");
  wait_end(f, &c);
  assert_int_equal(c.result, DCMF_UPSTREAM_UNREACHABLE);
  assert_int_equal(c.heads, 0);
  assert_true(strncmp(c.why, "TLS connection failed: ", 23) == 0);
  assert_true(strlen(c.why) > 23); /* OpenSSL's reason follows */
  assert_int_equal(f->srv.n_seen, 1);
  call_done(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_h1_fallback_and_reuse, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_chunked_pause_resume, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_error_status_is_a_response, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_response_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_port, setup, teardown),
      cmocka_unit_test_setup_teardown(test_https_verified, setup, teardown),
      cmocka_unit_test_setup_teardown(test_https_untrusted_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_https_broken_record, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
