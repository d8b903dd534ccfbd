/* Unit tests for the event notifier's URI handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "notify.h"

static void expect_uri(const char *uri, const char *host, uint16_t port,
                       const char *path) {
  char h[256], p[256];
  uint16_t port_out = 0;
  assert_int_equal(dcmf_notify_parse_uri(uri, h, sizeof(h), &port_out, p,
                                         sizeof(p)),
                   0);
  assert_string_equal(h, host);
  assert_int_equal(port_out, port);
  assert_string_equal(p, path);
}

static void test_good_uris(void **state) {
  (void)state;
  expect_uri("http://127.0.0.1:9000/events", "127.0.0.1", 9000, "/events");
  expect_uri("http://as.example", "as.example", 80, "/");
  expect_uri("http://as.example?x=1", "as.example", 80, "/?x=1");
  expect_uri("http://[::1]:81/a/b?c#frag", "::1", 81, "/a/b?c");
  expect_uri("http://[2001:db8::1]/", "2001:db8::1", 80, "/");
}

static void test_bad_uris(void **state) {
  (void)state;
  static const char *const bad[] = {
      "https://as.example/",      "ftp://x/",         "http://",
      "http://:80/",              "http://h:0/",      "http://h:65536/",
      "http://h:12x/",            "http://[::1/",     "http://u:p@h/",
  };
  char h[256], p[256];
  uint16_t port;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (dcmf_notify_parse_uri(bad[i], h, sizeof(h), &port, p, sizeof(p)) !=
        DCMF_ERR_INVALID) {
      fail_msg("accepted %s", bad[i]);
    }
  }
  char tiny[4];
  assert_int_equal(dcmf_notify_parse_uri("http://longhost/", tiny,
                                         sizeof(tiny), &port, p, sizeof(p)),
                   DCMF_ERR_INVALID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_uris),
      cmocka_unit_test(test_bad_uris),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
