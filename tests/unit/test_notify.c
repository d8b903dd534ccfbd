/*
 * The event notifier on the HTTP client, in process: a small HTTP/1.1
 * receiver on a libuv loop in this test (loopback, port 0) answers the
 * notifier's POSTs. It refuses the client's h2c preface as an HTTP/1-only
 * server does (400 and close), so every delivery here also crosses the
 * client's fallback from h2c to HTTP/1.1. The URI cases check what an
 * eventNotifyUri may be, read by the client's URL reader.
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
#include "notify.h"
#include "urlmap.h"

#define MAX_SEEN 8
#define WAIT_MS 8000 /* a bound on every wait; the notifier's is 5 s */

/* ---- the receiver ---------------------------------------------------------- */

struct receiver {
  uv_tcp_t listener;
  uint16_t port;
  int status;    /* what to answer; 0: never answer */
  int prefaces;  /* h2c prefaces refused */
  size_t n_seen; /* complete requests */
  char seen[MAX_SEEN][1024];
  size_t open_conns;
};

struct rconn {
  uv_tcp_t tcp;
  struct receiver *rc;
  char buf[4096];
  size_t len;
};

static void rconn_closed(uv_handle_t *h) {
  struct rconn *k = h->data;
  k->rc->open_conns--;
  free(k);
}

static void rconn_close(struct rconn *k) {
  if (!uv_is_closing((uv_handle_t *)&k->tcp)) {
    uv_close((uv_handle_t *)&k->tcp, rconn_closed);
  }
}

static void on_rwritten(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void rconn_send(struct rconn *k, const char *text) {
  size_t n = strlen(text);
  uv_write_t *w = malloc(sizeof(*w) + n);
  assert_non_null(w);
  memcpy(w + 1, text, n);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned int)n);
  assert_int_equal(uv_write(w, (uv_stream_t *)&k->tcp, &b, 1, on_rwritten), 0);
}

static void on_ralloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)s;
  struct rconn *k = h->data;
  *b = uv_buf_init(k->buf + k->len, (unsigned int)(sizeof(k->buf) - k->len));
}

/* Takes every complete request out of the buffer. */
static void rconn_parse(struct rconn *k) {
  for (;;) {
    if (k->len >= 3 && memcmp(k->buf, "PRI", 3) == 0) {
      k->rc->prefaces++;
      rconn_send(k, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                    "Content-Length: 0\r\n\r\n");
      rconn_close(k);
      return;
    }
    char *end = memmem(k->buf, k->len, "\r\n\r\n", 4);
    if (end == NULL) {
      return;
    }
    size_t head = (size_t)(end + 4 - k->buf);
    const char *cl = memmem(k->buf, head, "\r\nContent-Length: ", 18);
    size_t body = cl ? strtoul(cl + 18, NULL, 10) : 0;
    if (k->len < head + body) {
      return;
    }
    struct receiver *rc = k->rc;
    if (rc->n_seen < MAX_SEEN) {
      size_t n = head + body < sizeof(rc->seen[0]) - 1 ? head + body
                                                      : sizeof(rc->seen[0]) - 1;
      memcpy(rc->seen[rc->n_seen], k->buf, n);
      rc->seen[rc->n_seen][n] = '\0';
    }
    rc->n_seen++;
    if (rc->status != 0) {
      char resp[128];
      snprintf(resp, sizeof(resp),
               "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok", rc->status);
      rconn_send(k, resp);
    }
    memmove(k->buf, k->buf + head + body, k->len - head - body);
    k->len -= head + body;
  }
}

static void on_rread(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  struct rconn *k = s->data;
  if (n < 0 || k->len + (size_t)n >= sizeof(k->buf)) {
    rconn_close(k);
    return;
  }
  k->len += (size_t)n;
  rconn_parse(k);
}

static void on_rconn(uv_stream_t *l, int status) {
  assert_int_equal(status, 0);
  struct receiver *rc = l->data;
  struct rconn *k = calloc(1, sizeof(*k));
  assert_non_null(k);
  k->rc = rc;
  uv_tcp_init(l->loop, &k->tcp);
  k->tcp.data = k;
  rc->open_conns++;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&k->tcp), 0);
  uv_read_start((uv_stream_t *)&k->tcp, on_ralloc, on_rread);
}

static void receiver_start(struct receiver *rc, uv_loop_t *loop, int status) {
  memset(rc, 0, sizeof(*rc));
  rc->status = status;
  uv_tcp_init(loop, &rc->listener);
  rc->listener.data = rc;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&rc->listener, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&rc->listener, 16, on_rconn), 0);
  struct sockaddr_storage got;
  int len = sizeof(got);
  uv_tcp_getsockname(&rc->listener, (struct sockaddr *)&got, &len);
  rc->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* After the notifier is gone, every open handle is the receiver's: its
 * listener (|arg|) or one of its connections. */
static void close_walk(uv_handle_t *h, void *arg) {
  if (uv_is_closing(h)) {
    return;
  }
  if (h == arg) {
    uv_close(h, NULL);
  } else {
    rconn_close(h->data);
  }
}

/* ---- helpers --------------------------------------------------------------- */

struct fixture {
  uv_loop_t loop;
  struct dcmf_log log;
  struct dcmf_notify *n;
  struct receiver rc;
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

static int sixty_four_seen(struct fixture *f) {
  return f->rc.n_seen >= MAX_SEEN && f->rc.open_conns >= 8;
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
  uv_walk(&f->loop, close_walk, &f->rc.listener);
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

/* ---- cases ----------------------------------------------------------------- */

static void test_delivered(void **state) {
  struct fixture *f = *state;
  receiver_start(&f->rc, &f->loop, 204);
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
  receiver_start(&f->rc, &f->loop, 200);
  post(f, "/e", "{\"n\":1}");
  post(f, "/e", "{\"n\":2}");
  assert_true(run_until(f, two_sent));
  assert_int_equal(f->rc.n_seen, 2);
  assert_int_equal(dcmf_notify_counters(f->n)->failed, 0);
}

static void test_error_status_fails(void **state) {
  struct fixture *f = *state;
  receiver_start(&f->rc, &f->loop, 500);
  post(f, "/e", "{}");
  assert_true(run_until(f, one_outcome));
  const struct dcmf_notify_counters *c = dcmf_notify_counters(f->n);
  assert_int_equal(c->sent, 0);
  assert_int_equal(c->failed, 1);
  assert_int_equal(f->rc.n_seen, 1);
}

static void test_refused_port_fails(void **state) {
  struct fixture *f = *state;
  receiver_start(&f->rc, &f->loop, 204);
  uint16_t port = f->rc.port;
  uv_close((uv_handle_t *)&f->rc.listener, NULL); /* nobody listens now */
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
  receiver_start(&f->rc, &f->loop, 0);
  for (int i = 0; i < DCMF_NOTIFY_MAX_IN_FLIGHT + 1; i++) {
    post(f, "/slow", "{}");
  }
  const struct dcmf_notify_counters *c = dcmf_notify_counters(f->n);
  assert_int_equal(c->dropped, 1);
  /* HTTP/1.1 after the refused preface: 8 connections, one POST each. */
  assert_true(run_until(f, sixty_four_seen));
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
      "ftp://x/",      "http://",       "http://:80/",
      "http://h:0/",   "http://h:65536/", "http://h:12x/",
      "http://[::1/",  "http://u:p@h/",
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
      cmocka_unit_test_setup_teardown(test_error_status_fails, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_refused_port_fails, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_uri_fails_at_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bound_and_shutdown, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
