/*
 * test_upstream.c - the HTTP client (dcmf/net/upstream.h) in process,
 * against the loopback HTTP/1.1 server of tests/support/h1srv.c on the
 * same libuv loop: the h2c-then-HTTP/1.1 fallback, keep-alive reuse,
 * chunked bodies paused and resumed, the response timeout, cancel, a
 * refused port, and https with the tlspump as the server (verified with
 * the test CA, refused with another, and a broken record after the
 * handshake). Then an upstream that dies under queued and in-flight
 * requests (closed, reset, stalled; HTTP/1.1 here, h2c with a real
 * nghttpd stopped by pid): every request ends exactly once, also those
 * its callers send from end callbacks, and the pool serves the upstream
 * again once it is back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
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
  /* nghttpd, for the h2c cases */
  uv_process_t ngh;
  int ngh_running, ngh_spawned;
  char docroot[64];
  struct call *calls; /* the death cases' requests: timers closed here */
  size_t n_calls;
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
  int hold; /* pause at the first piece and never resume */
  /* Sent from this one's end callback, as a caller that goes on with
   * its next request does (dcmf-ue, a phone's next fetch). */
  struct call *follow;
  struct fixture *f;
  char url[128];
  char method[8];
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
  if (c->hold) {
    /* HTTP/2 delivers what the window let in before the pause took. */
    c->pieces++;
    return 1;
  }
  assert_true(c->body_len + len <= sizeof(c->body));
  memcpy(c->body + c->body_len, data, len);
  c->body_len += len;
  if (c->pieces++ == 0 && c->pause_first) {
    uv_timer_start(&c->resume, on_resume, 50, 0); /* resume later */
    return 1;
  }
  return 0;
}

static void start_url(struct fixture *f, struct call *c, const char *method,
                      const char *text);

static void on_end(void *user, enum dcmf_upstream_result result,
                   const char *why) {
  struct call *c = user;
  c->ended++;
  c->result = result;
  snprintf(c->why, sizeof(c->why), "%s", why);
  if (c->follow != NULL && c->ended == 1) {
    start_url(c->f, c->follow, c->method, c->url);
  }
}

static const struct dcmf_upstream_callbacks cbs = {on_head, on_data, on_end};

static void pool_new_full(struct fixture *f, const char *ca,
                          uint32_t connect_ms, uint32_t response_ms,
                          uint32_t max_connections) {
  struct dcmf_upstream_settings st = {
      .ca_file = ca,
      .connect_timeout_ms = connect_ms,
      .response_timeout_ms = response_ms,
      .idle_timeout_ms = 10000,
      .max_connections = max_connections,
  };
  char err[200];
  assert_int_equal(dcmf_upstream_pool_new(&f->pool, &f->loop, &st, &f->log, err,
                                          sizeof(err)),
                   0);
}

static void pool_new_max(struct fixture *f, const char *ca,
                         uint32_t response_ms, uint32_t max_connections) {
  pool_new_full(f, ca, 2000, response_ms, max_connections);
}

static void pool_new(struct fixture *f, const char *ca, uint32_t response_ms) {
  pool_new_max(f, ca, response_ms, 4);
}

static void start_url(struct fixture *f, struct call *c, const char *method,
                      const char *text) {
  struct dcmf_url url;
  assert_int_equal(dcmf_url_parse(text, &url), 0);
  uv_timer_init(&f->loop, &c->resume);
  c->resume.data = c;
  c->pool = f->pool;
  c->f = f;
  snprintf(c->url, sizeof(c->url), "%s", text);
  snprintf(c->method, sizeof(c->method), "%s", method);
  assert_int_equal(dcmf_upstream_request(f->pool, &url, method, NULL, 0, NULL,
                                         0, &cbs, c, &c->req),
                   0);
}

static void start(struct fixture *f, struct call *c, int https,
                  const char *host, uint16_t port, const char *method,
                  const char *path) {
  char text[256];
  snprintf(text, sizeof(text), "%s://%s:%u%s", https ? "https" : "http", host,
           port, path);
  start_url(f, c, method, text);
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

static void ngh_stop(struct fixture *f);

static int teardown(void **state) {
  struct fixture *f = *state;
  dcmf_upstream_pool_del(f->pool);
  if (f->srv.port != 0) {
    h1srv_close(&f->srv);
  }
  ngh_stop(f);
  for (size_t i = 0; i < f->n_calls; i++) {
    struct call *c = &f->calls[i];
    if (c->f != NULL && c->resume.data != NULL &&
        !uv_is_closing((uv_handle_t *)&c->resume)) {
      uv_close((uv_handle_t *)&c->resume, on_resume_closed);
    }
  }
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  SSL_CTX_free(f->srv_tls);
  unlink(f->ca_path);
  unlink(f->other_path);
  testpki_free(&f->pki);
  if (f->docroot[0] != '\0') {
    char path[96];
    snprintf(path, sizeof(path), "%s/big", f->docroot);
    unlink(path);
    snprintf(path, sizeof(path), "%s/small", f->docroot);
    unlink(path);
    rmdir(f->docroot);
  }
  free(f->calls);
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

/* ---- an upstream that dies --------------------------------------------- */

#define DEATH_CALLS 12

static struct call *calls_new(struct fixture *f) {
  f->calls = calloc(DEATH_CALLS, sizeof(*f->calls));
  assert_non_null(f->calls);
  f->n_calls = DEATH_CALLS;
  return f->calls;
}

/* Runs the loop until every call in |cs| ended, for at most WAIT_MS;
 * each must have ended exactly once. */
static void wait_all(struct fixture *f, struct call *const *cs, size_t n) {
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + WAIT_MS;
  for (int i = 0; i < 100000 && uv_now(&f->loop) < end; i++) {
    size_t done = 0;
    for (size_t k = 0; k < n; k++) {
      done += cs[k]->ended > 0;
    }
    if (done == n) {
      break;
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&f->loop);
  }
  for (int i = 0; i < 5; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT); /* a second end would show now */
  }
  for (size_t k = 0; k < n; k++) {
    if (cs[k]->ended != 1) {
      fail_msg("request %zu (%s) ended %d times", k, cs[k]->url, cs[k]->ended);
    }
  }
}

/* Runs the loop until |*counter| reaches |want|, for at most WAIT_MS. */
static void wait_count(struct fixture *f, const size_t *counter, size_t want) {
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + WAIT_MS;
  for (int i = 0; i < 100000 && *counter < want && uv_now(&f->loop) < end;
       i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&f->loop);
  }
  assert_true(*counter >= want);
}

/*
 * HTTP/1.1, one connection per origin (or two): a request in flight on
 * a reused connection (and one on a new one) and the rest of four
 * queued behind when the upstream goes away (closed, or reset when
 * |reset|). The last queued one's caller sends
 * another from its end callback, and that one's caller once more. All
 * six end (UNREACHABLE: nothing listens any more), and once the
 * upstream is back on its port the pool serves it again.
 */
static void h1_dies_with_queue(struct fixture *f, int reset,
                               uint32_t max_connections) {
  pool_new_max(f, NULL, 4000, max_connections);
  h1srv_start(&f->srv, &f->loop, NULL, 200, "hello");
  uint16_t port = f->srv.port;
  struct call *cs = calls_new(f);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/q", port);
  /* The first makes the origin HTTP/1.1 and leaves a kept-alive
   * connection. */
  start_url(f, &cs[0], "GET", url);
  wait_end(f, &cs[0]);
  assert_int_equal(cs[0].result, DCMF_UPSTREAM_OK);
  f->srv.status = 0; /* from now on: read, never answered */
  size_t seen = f->srv.n_seen;
  for (int i = 1; i <= 4; i++) {
    start_url(f, &cs[i], "GET", url);
  }
  cs[4].follow = &cs[5];
  cs[5].follow = &cs[6];
  /* cs[1] is in flight (and cs[2] with two connections) */
  wait_count(f, &f->srv.n_seen, seen + max_connections);
  if (reset) {
    h1srv_reset(&f->srv);
  } else {
    h1srv_close(&f->srv);
  }
  struct call *const died[] = {&cs[1], &cs[2], &cs[3], &cs[4], &cs[5], &cs[6]};
  wait_all(f, died, 6);
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(died[i]->result, DCMF_UPSTREAM_UNREACHABLE);
    assert_int_equal(died[i]->heads, 0);
  }
  /* The upstream comes back where it was. */
  uv_run(&f->loop, UV_RUN_NOWAIT); /* the old listener's close callback */
  h1srv_start_port(&f->srv, &f->loop, NULL, 200, "back", port);
  start_url(f, &cs[7], "GET", url);
  start_url(f, &cs[8], "GET", url);
  struct call *const back[] = {&cs[7], &cs[8]};
  wait_all(f, back, 2);
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(back[i]->result, DCMF_UPSTREAM_OK);
    assert_int_equal(back[i]->body_len, 4);
    assert_memory_equal(back[i]->body, "back", 4);
  }
  assert_int_equal(f->srv.prefaces, 0); /* still known as HTTP/1.1 */
}

static void test_h1_closed_with_queue(void **state) {
  h1_dies_with_queue(*state, 0, 1);
}

static void test_h1_reset_with_queue(void **state) {
  h1_dies_with_queue(*state, 1, 1);
}

static void test_h1_closed_with_queue_two_conns(void **state) {
  h1_dies_with_queue(*state, 0, 2);
}

/*
 * An upstream that reads and never answers, one connection: the request
 * in flight times out, the queued ones run out of time waiting for the
 * connection; one caller sends anew from its end callback. None is
 * lost, and a new request after the upstream answers again succeeds.
 */
static void test_h1_stalled_with_queue(void **state) {
  struct fixture *f = *state;
  /* Requests in flight time out after 1 s each, one after the other;
   * the queued ones give up at 1.5 s (connect + response timeout), while
   * the second is in flight. */
  pool_new_full(f, NULL, 500, 1000, 1);
  h1srv_start(&f->srv, &f->loop, NULL, 200, "hello");
  struct call *cs = calls_new(f);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/s", f->srv.port);
  start_url(f, &cs[0], "GET", url);
  wait_end(f, &cs[0]);
  assert_int_equal(cs[0].result, DCMF_UPSTREAM_OK);
  f->srv.status = 0;
  for (int i = 1; i <= 5; i++) {
    start_url(f, &cs[i], "GET", url);
  }
  cs[3].follow = &cs[6]; /* the first to time out in the queue */
  struct call *const all[] = {&cs[1], &cs[2], &cs[3], &cs[4], &cs[5], &cs[6]};
  wait_all(f, all, 6);
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(all[i]->result, DCMF_UPSTREAM_TIMEOUT);
  }
  assert_string_equal(cs[3].why, "no connection in time");
  f->srv.status = 200;
  start_url(f, &cs[7], "GET", url);
  wait_end(f, &cs[7]);
  assert_int_equal(cs[7].result, DCMF_UPSTREAM_OK);
}

/* ---- nghttpd (h2c) ------------------------------------------------------ */

static const char *nghttpd_path(void) {
  static const char *const where[] = {"/usr/sbin/nghttpd", "/usr/bin/nghttpd"};
  for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
    if (access(where[i], X_OK) == 0) {
      return where[i];
    }
  }
  return NULL;
}

static uint16_t free_port(struct fixture *f) {
  uv_tcp_t t;
  uv_tcp_init(&f->loop, &t);
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&sa, 0), 0);
  struct sockaddr_storage got;
  int len = sizeof(got);
  uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* Waits (bounded) until something accepts on 127.0.0.1:|port|. */
static void wait_listening(uint16_t port) {
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", port, &sa);
  for (int i = 0; i < 500; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    if (ok) {
      return;
    }
    uv_sleep(10);
  }
  fail_msg("nothing listens on port %u", port);
}

static void on_ngh_exit(uv_process_t *p, int64_t status, int sig) {
  (void)status;
  (void)sig;
  struct fixture *f = p->data;
  f->ngh_running = 0;
}

static void write_file(const char *dir, const char *name, size_t len) {
  char path[96];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  for (size_t i = 0; i < len; i++) {
    fputc('a' + (int)(i % 26), fp);
  }
  assert_int_equal(fclose(fp), 0);
}

/* Starts nghttpd --no-tls on |port|; returns 0, or -1 when nghttpd is
 * not installed. */
static int ngh_start(struct fixture *f, uint16_t port) {
  const char *exe = nghttpd_path();
  if (exe == NULL) {
    return -1;
  }
  if (f->docroot[0] == '\0') {
    snprintf(f->docroot, sizeof(f->docroot), "/tmp/dcmf-upstream-XXXXXX");
    assert_non_null(mkdtemp(f->docroot));
    write_file(f->docroot, "big", 2u << 20); /* beyond any window */
    write_file(f->docroot, "small", 5);
  }
  char portarg[8];
  snprintf(portarg, sizeof(portarg), "%u", port);
  char *args[] = {(char *)exe, "--no-tls", "-a",    "127.0.0.1",
                  "-d",        f->docroot, portarg, NULL};
  uv_stdio_container_t io[3] = {
      {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
  uv_process_options_t opt = {.file = exe,
                              .args = args,
                              .exit_cb = on_ngh_exit,
                              .stdio = io,
                              .stdio_count = 3};
  f->ngh.data = f;
  assert_int_equal(uv_spawn(&f->loop, &f->ngh, &opt), 0);
  f->ngh_running = f->ngh_spawned = 1;
  wait_listening(port);
  return 0;
}

/* Kills nghttpd by its pid and waits (bounded) for its exit. */
static void ngh_kill(struct fixture *f) {
  if (!f->ngh_spawned) {
    return;
  }
  if (f->ngh_running) {
    assert_int_equal(uv_process_kill(&f->ngh, SIGKILL), 0);
  }
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + WAIT_MS;
  while (f->ngh_running && uv_now(&f->loop) < end) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&f->loop);
  }
  assert_false(f->ngh_running);
  uv_close((uv_handle_t *)&f->ngh, NULL);
  f->ngh_spawned = 0;
}

static void ngh_stop(struct fixture *f) {
  if (f->ngh_spawned && f->ngh_running) {
    uv_process_kill(&f->ngh, SIGKILL);
  }
  if (f->ngh_spawned) {
    ngh_kill(f);
  }
}

/*
 * h2c: three responses held in flight (paused, so nghttpd is still
 * sending them) when nghttpd is killed by its pid; the caller of one
 * sends a new request from its end callback, and that one's caller once
 * more while nothing listens. Every request ends once (BROKEN for the
 * three, UNREACHABLE for the two), and a nghttpd started again on the
 * port is used over h2c again.
 */
static void test_h2c_killed_in_flight(void **state) {
  struct fixture *f = *state;
  pool_new(f, NULL, 4000);
  uint16_t port = free_port(f);
  if (ngh_start(f, port) != 0) {
    skip();
  }
  struct call *cs = calls_new(f);
  char small[64], big[64];
  snprintf(small, sizeof(small), "http://127.0.0.1:%u/small", port);
  snprintf(big, sizeof(big), "http://127.0.0.1:%u/big", port);
  start_url(f, &cs[0], "GET", small);
  wait_end(f, &cs[0]);
  assert_int_equal(cs[0].result, DCMF_UPSTREAM_OK);
  assert_int_equal(cs[0].body_len, 5);
  size_t heads = 0;
  for (int i = 1; i <= 3; i++) {
    cs[i].hold = 1;
    start_url(f, &cs[i], "GET", big);
  }
  cs[3].follow = &cs[4];
  cs[4].follow = &cs[5];
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + WAIT_MS;
  while (heads < 3 && uv_now(&f->loop) < end) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&f->loop);
    heads = (size_t)(cs[1].pieces > 0) + (size_t)(cs[2].pieces > 0) +
            (size_t)(cs[3].pieces > 0);
  }
  assert_int_equal(heads, 3);
  ngh_kill(f);
  struct call *const died[] = {&cs[1], &cs[2], &cs[3], &cs[4], &cs[5]};
  wait_all(f, died, 5);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(died[i]->result, DCMF_UPSTREAM_BROKEN);
    assert_int_equal(died[i]->status, 200);
  }
  assert_int_equal(cs[4].result, DCMF_UPSTREAM_UNREACHABLE);
  assert_int_equal(cs[5].result, DCMF_UPSTREAM_UNREACHABLE);
  assert_int_equal(ngh_start(f, port), 0);
  start_url(f, &cs[6], "GET", small);
  start_url(f, &cs[7], "GET", small);
  struct call *const back[] = {&cs[6], &cs[7]};
  wait_all(f, back, 2);
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(back[i]->result, DCMF_UPSTREAM_OK);
    assert_int_equal(back[i]->body_len, 5);
  }
}

/*
 * An http:// origin whose first connection is accepted and closed
 * before it says anything (the process died as it came up): that says
 * nothing about HTTP/1.1, so when nghttpd then serves the port the pool
 * must still speak h2c to it.
 */
static void test_h2c_dies_before_answering(void **state) {
  struct fixture *f = *state;
  pool_new(f, NULL, 2000);
  if (nghttpd_path() == NULL) {
    skip();
  }
  h1srv_start(&f->srv, &f->loop, NULL, 200, "x");
  f->srv.close_on_accept = 1;
  uint16_t port = f->srv.port;
  struct call *cs = calls_new(f);
  char small[64];
  snprintf(small, sizeof(small), "http://127.0.0.1:%u/small", port);
  start_url(f, &cs[0], "GET", small);
  start_url(f, &cs[1], "GET", small);
  struct call *const died[] = {&cs[0], &cs[1]};
  wait_all(f, died, 2);
  assert_int_equal(cs[0].result, DCMF_UPSTREAM_UNREACHABLE);
  assert_int_equal(cs[1].result, DCMF_UPSTREAM_UNREACHABLE);
  assert_true(f->srv.accepted >= 1);
  h1srv_close(&f->srv);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  f->srv.port = 0; /* closed: teardown leaves it */
  assert_int_equal(ngh_start(f, port), 0);
  start_url(f, &cs[2], "GET", small);
  wait_end(f, &cs[2]);
  assert_int_equal(cs[2].result, DCMF_UPSTREAM_OK);
  assert_int_equal(cs[2].status, 200);
  assert_int_equal(cs[2].body_len, 5);
}

/*
 * An h2c upstream that answers with GOAWAY (every stream refused) and
 * keeps the connection open, then stops listening while nghttpd takes
 * its port: the refused request is sent once more on a new connection,
 * refused again and ends (UNREACHABLE), and the next one
 * goes to nghttpd on a new connection, not to the connection that
 * said it takes no more streams.
 */
static void test_h2c_goaway_then_back(void **state) {
  struct fixture *f = *state;
  pool_new(f, NULL, 2000);
  if (nghttpd_path() == NULL) {
    skip();
  }
  h1srv_start(&f->srv, &f->loop, NULL, 200, "x");
  f->srv.h2_goaway = 1;
  uint16_t port = f->srv.port;
  struct call *cs = calls_new(f);
  char small[64];
  snprintf(small, sizeof(small), "http://127.0.0.1:%u/small", port);
  start_url(f, &cs[0], "GET", small);
  wait_end(f, &cs[0]);
  assert_int_equal(cs[0].result, DCMF_UPSTREAM_UNREACHABLE);
  /* The refused stream was sent once more, on a second connection. */
  assert_int_equal(f->srv.prefaces, 2);
  assert_int_equal(dcmf_upstream_counters(f->pool)->retries, 1);
  h1srv_stop_listening(&f->srv); /* its connections stay open */
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(ngh_start(f, port), 0);
  start_url(f, &cs[1], "GET", small);
  wait_end(f, &cs[1]);
  assert_int_equal(cs[1].result, DCMF_UPSTREAM_OK);
  assert_int_equal(cs[1].body_len, 5);
}

/*
 * An h2c connection that served a request and then sat unused is closed
 * after the idle timeout, like an HTTP/1.1 one; the next request opens
 * a new connection. (An HTTP/2 connection used once used to stay open
 * for the process's life.)
 */
static void test_h2c_idle_closed(void **state) {
  struct fixture *f = *state;
  struct dcmf_upstream_settings st = {
      .connect_timeout_ms = 2000,
      .response_timeout_ms = 2000,
      .idle_timeout_ms = 200,
      .max_connections = 4,
  };
  char err[200];
  assert_int_equal(dcmf_upstream_pool_new(&f->pool, &f->loop, &st, &f->log, err,
                                          sizeof(err)),
                   0);
  uint16_t port = free_port(f);
  if (ngh_start(f, port) != 0) {
    skip();
  }
  struct call *cs = calls_new(f);
  char small[64];
  snprintf(small, sizeof(small), "http://127.0.0.1:%u/small", port);
  start_url(f, &cs[0], "GET", small);
  wait_end(f, &cs[0]);
  assert_int_equal(cs[0].result, DCMF_UPSTREAM_OK);
  const struct dcmf_upstream_counters *n = dcmf_upstream_counters(f->pool);
  assert_int_equal(n->connections_opened, 1);
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + WAIT_MS;
  while (n->connections_closed == 0 && uv_now(&f->loop) < end) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&f->loop);
  }
  assert_int_equal(n->connections_closed, 1);
  start_url(f, &cs[1], "GET", small);
  wait_end(f, &cs[1]);
  assert_int_equal(cs[1].result, DCMF_UPSTREAM_OK);
  assert_int_equal(cs[1].body_len, 5);
  assert_int_equal(n->connections_opened, 2);
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
      cmocka_unit_test_setup_teardown(test_h1_closed_with_queue, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_h1_reset_with_queue, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_h1_closed_with_queue_two_conns,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_h1_stalled_with_queue, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_h2c_killed_in_flight, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_h2c_dies_before_answering, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_h2c_goaway_then_back, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_h2c_idle_closed, setup, teardown),
  };
  /* As in dcmfd and dcmf-ue: a write to an upstream that hung up is an
   * EPIPE for the pool to handle, not the end of the process. */
  signal(SIGPIPE, SIG_IGN);
  if (getenv("UPSTREAM_TEST") != NULL) {
    cmocka_set_test_filter(getenv("UPSTREAM_TEST")); /* one case, by name */
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
