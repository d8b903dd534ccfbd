/*
 * The event notifier on the HTTP client, in process: a small HTTP/1.1
 * receiver on the test's libuv loop (tests/support/h1srv.c, loopback,
 * port 0) answers the notifier's POSTs. It refuses the client's h2c
 * preface as an HTTP/1-only server does (400 and close), so every
 * delivery here also crosses the client's fallback from h2c to HTTP/1.1.
 * The URI cases check what an eventNotifyUri may be, read by the
 * client's URL reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "errors.h"
#include "h1srv.h"
#include "notify.h"
#include "urlmap.h"

#define WAIT_MS 8000 /* a bound on every wait; the notifier's is 5 s */

/* ---- helpers ---------------------------------------------------------- */

struct fixture {
  uv_loop_t loop;
  struct dcmf_log log;
  struct dcmf_notify *n;
  struct h1srv rc;
};

/* Runs the loop until |done| says so, for at most WAIT_MS. */
static int run_until(struct fixture *f, int (*done)(struct fixture *)) {
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + WAIT_MS;
  for (int i = 0; i < 100000 && !done(f); i++) {
    if (uv_now(&f->loop) >= end) {
      return 0;
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&f->loop);
  }
  return done(f);
}

static int one_outcome(struct fixture *f) {
  const struct dcmf_notify_counters *c = dcmf_notify_counters(f->n);
  return c->sent + c->failed >= 1;
}

static int two_sent(struct fixture *f) {
  return dcmf_notify_counters(f->n)->sent >= 2;
}

static int eight_seen(struct fixture *f) {
  return f->rc.n_seen >= 8 && f->rc.open_conns >= 8;
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->log = (struct dcmf_log){.stream = NULL};
  struct dcmf_upstream_settings tls = {0};
  char err[200];
  assert_int_equal(
      dcmf_notify_new(&f->n, &f->loop, &tls, &f->log, err, sizeof(err)), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  dcmf_notify_del(f->n);
  if (f->rc.port != 0) {
    h1srv_close(&f->rc);
  }
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void post(struct fixture *f, const char *path, const char *json) {
  char uri[128];
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%u%s", f->rc.port, path);
  dcmf_notify_post(f->n, uri, json);
}

/* ---- cases ------------------------------------------------------------ */

static void test_delivered(void **state) {
  struct fixture *f = *state;
  h1srv_start(&f->rc, &f->loop, NULL, 204, "ok");
  post(f, "/events?x=1", "{\"event\":\"DC_OPEN\"}");
  assert_true(run_until(f, one_outcome));
  const struct dcmf_notify_counters *c = dcmf_notify_counters(f->n);
  assert_int_equal(c->sent, 1);
  assert_int_equal(c->failed, 0);
  assert_int_equal(f->rc.n_seen, 1);
  assert_true(f->rc.prefaces >= 1); /* h2c was tried first */
  const char *req = f->rc.seen[0];
  assert_true(strncmp(req, "POST /events?x=1 HTTP/1.1\r\n", 27) == 0);
  assert_non_null(strstr(req, "\r\ncontent-type: application/json\r\n"));
  assert_non_null(strstr(req, "\r\nHost: 127.0.0.1:"));
  assert_non_null(strstr(req, "\r\nContent-Length: 19\r\n"));
  assert_non_null(strstr(req, "\r\n\r\n{\"event\":\"DC_OPEN\"}"));
}

static void test_two_on_one_receiver(void **state) {
  struct fixture *f = *state;
  h1srv_start(&f->rc, &f->loop, NULL, 200, "ok");
  post(f, "/e", "{\"n\":1}");
  post(f, "/e", "{\"n\":2}");
  assert_true(run_until(f, two_sent));
  assert_int_equal(f->rc.n_seen, 2);
  assert_int_equal(dcmf_notify_counters(f->n)->failed, 0);
}

static void test_error_status_fails(void **state) {
  struct fixture *f = *state;
  h1srv_start(&f->rc, &f->loop, NULL, 500, "ok");
  post(f, "/e", "{}");
  assert_true(run_until(f, one_outcome));
  const struct dcmf_notify_counters *c = dcmf_notify_counters(f->n);
  assert_int_equal(c->sent, 0);
  assert_int_equal(c->failed, 1);
  assert_int_equal(f->rc.n_seen, 1);
}

static void test_refused_port_fails(void **state) {
  struct fixture *f = *state;
  h1srv_start(&f->rc, &f->loop, NULL, 204, "ok");
  uint16_t port = f->rc.port;
  h1srv_stop_listening(&f->rc); /* nobody listens now */
  uv_run(&f->loop, UV_RUN_NOWAIT);
  char uri[64];
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%u/e", port);
  dcmf_notify_post(f->n, uri, "{}");
  assert_true(run_until(f, one_outcome));
  assert_int_equal(dcmf_notify_counters(f->n)->failed, 1);
  assert_int_equal(dcmf_notify_counters(f->n)->sent, 0);
}

static void test_bad_uri_fails_at_once(void **state) {
  struct fixture *f = *state;
  dcmf_notify_post(f->n, "ftp://127.0.0.1/x", "{}");
  dcmf_notify_post(f->n, "http://u:p@127.0.0.1/x", "{}");
  assert_int_equal(dcmf_notify_counters(f->n)->failed, 2);
}

/* A receiver that never answers: 64 deliveries are in flight, the 65th
 * is dropped, and deleting the notifier ends the 64 as failed. */
static void test_bound_and_shutdown(void **state) {
  struct fixture *f = *state;
  h1srv_start(&f->rc, &f->loop, NULL, 0, NULL);
  for (int i = 0; i < DCMF_NOTIFY_MAX_IN_FLIGHT + 1; i++) {
    post(f, "/slow", "{}");
  }
  const struct dcmf_notify_counters *c = dcmf_notify_counters(f->n);
  assert_int_equal(c->dropped, 1);
  /* HTTP/1.1 after the refused preface: 8 connections, one POST each. */
  assert_true(run_until(f, eight_seen));
  assert_int_equal(c->sent + c->failed, 0);
  assert_int_equal(c->dropped, 1);
  /* Ends the 64 (as failed) at once; ASan checks that nothing leaks. */
  dcmf_notify_del(f->n);
  f->n = NULL;
}

static void expect_uri(const char *uri, int https, const char *host,
                       uint16_t port, const char *path) {
  struct dcmf_url u;
  assert_int_equal(dcmf_url_parse(uri, &u), 0);
  assert_int_equal(u.https, https);
  assert_string_equal(u.host, host);
  assert_int_equal(u.port, port);
  assert_string_equal(u.path, path);
}

static void test_uris(void **state) {
  (void)state;
  expect_uri("http://127.0.0.1:9000/events", 0, "127.0.0.1", 9000, "/events");
  expect_uri("http://as.example", 0, "as.example", 80, "/");
  expect_uri("http://as.example?x=1", 0, "as.example", 80, "/?x=1");
  expect_uri("http://[::1]:81/a/b?c#frag", 0, "::1", 81, "/a/b?c");
  expect_uri("http://[2001:db8::1]/", 0, "2001:db8::1", 80, "/");
  expect_uri("https://as.example/", 1, "as.example", 443, "/");
  static const char *const bad[] = {
      "ftp://x/",        "http://",       "http://:80/",  "http://h:0/",
      "http://h:65536/", "http://h:12x/", "http://[::1/", "http://u:p@h/",
  };
  struct dcmf_url u;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (dcmf_url_parse(bad[i], &u) == 0) {
      fail_msg("accepted %s", bad[i]);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uris),
      cmocka_unit_test_setup_teardown(test_delivered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_on_one_receiver, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_error_status_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_port_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_uri_fails_at_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bound_and_shutdown, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
