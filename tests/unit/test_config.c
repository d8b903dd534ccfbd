/* Unit tests for flag and config-file parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "errors.h"

static int parse(struct dcmf_config *cfg, char *err, size_t errlen, int argc,
                 ...) {
  char *argv[32] = {"dcmfd"};
  va_list ap;
  va_start(ap, argc);
  for (int i = 1; i <= argc; i++) {
    argv[i] = va_arg(ap, char *);
  }
  va_end(ap);
  enum dcmf_config_action action;
  return dcmf_config_from_args(cfg, argc + 1, argv, &action, err, errlen);
}

static void test_defaults(void **state) {
  (void)state;
  struct dcmf_config cfg;
  char err[256];
  assert_int_equal(parse(&cfg, err, sizeof(err), 0), 0);
  assert_string_equal(cfg.control_host, "127.0.0.1");
  assert_int_equal(cfg.control_port, 8090);
  assert_string_equal(cfg.media_advertise, "127.0.0.1");
  assert_int_equal(cfg.port_min, 40000);
  assert_int_equal(cfg.port_max, 40999);
  assert_int_equal(cfg.sctp_port, 5000);
  assert_int_equal(cfg.stun_rate, 200);
  assert_int_equal(cfg.hello_rate, 100);
  assert_int_equal(cfg.shutdown_timeout_ms, 5000);
  assert_int_equal(cfg.mem_trim_delay_ms, 1000);
  assert_int_equal(cfg.dtls_coalesce, 0); /* libdatachannel reads one record */
  assert_int_equal(cfg.sctp_bundle, 1);
  assert_int_equal(cfg.media_pace_us, 500);
  assert_int_equal(cfg.srtp_backend, DCMF_SRTP_BACKEND_OPENSSL);
}

static void test_flags(void **state) {
  (void)state;
  struct dcmf_config cfg;
  char err[256];
  assert_int_equal(parse(&cfg, err, sizeof(err), 7, "--control", "[::1]:9000",
                         "--ports=50000-50010", "--media-bind", "0.0.0.0",
                         "--log-format", "json"),
                   0);
  assert_string_equal(cfg.control_host, "::1");
  assert_int_equal(cfg.control_port, 9000);
  assert_int_equal(cfg.port_min, 50000);
  assert_int_equal(cfg.port_max, 50010);
  /* The advertised address follows the bind address unless set. */
  assert_string_equal(cfg.media_advertise, "0.0.0.0");
  assert_int_equal(cfg.log_format, DCMF_LOG_JSON);
  assert_int_equal(
      parse(&cfg, err, sizeof(err), 2, "--srtp-backend", "libsrtp2"), 0);
  assert_int_equal(cfg.srtp_backend, DCMF_SRTP_BACKEND_LIBSRTP2);
  assert_int_equal(parse(&cfg, err, sizeof(err), 1, "--srtp-backend=openssl"),
                   0);
  assert_int_equal(cfg.srtp_backend, DCMF_SRTP_BACKEND_OPENSSL);
}

static void expect_error(const char *needle, int argc, char *a, char *b) {
  struct dcmf_config cfg;
  char err[256] = "";
  assert_int_equal(parse(&cfg, err, sizeof(err), argc, a, b),
                   DCMF_ERR_INVALID);
  if (strstr(err, needle) == NULL) {
    fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
  }
}

static void test_bad_flags(void **state) {
  (void)state;
  expect_error("unknown option --nope", 2, "--nope", "1");
  expect_error("ports", 2, "--ports", "3000-2000");
  expect_error("ports", 2, "--ports", "80-90");
  expect_error("ports", 2, "--ports", "abc");
  expect_error("control", 2, "--control", "localhost:80");
  expect_error("control", 2, "--control", "127.0.0.1:0");
  expect_error("log-level", 2, "--log-level", "loud");
  expect_error("sctp-port", 2, "--sctp-port", "70000");
  expect_error("srtp-backend must be openssl or libsrtp2", 2, "--srtp-backend",
               "nss");
  expect_error("needs a value", 1, "--ports", NULL);
  expect_error("control-key", 2, "--control-cert", "/x.pem");
  expect_error("config file /nonexistent", 2, "--config", "/nonexistent");
}

/* The e2ae counter push interval: the service's default (0) unless set,
 * 100 ms to 60 s. */
static void test_e2ae_push_ms(void **state) {
  (void)state;
  struct dcmf_config cfg;
  char err[256];
  assert_int_equal(parse(&cfg, err, sizeof(err), 0), 0);
  assert_int_equal(cfg.e2ae_push_ms, 0);
  assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--e2ae-push-ms", "250"),
                   0);
  assert_int_equal(cfg.e2ae_push_ms, 250);
  expect_error("e2ae-push-ms", 2, "--e2ae-push-ms", "99");
  expect_error("e2ae-push-ms", 2, "--e2ae-push-ms", "60001");
}

/* The flood limits and the shutdown bound (0 turns a limit off). */
static void test_liveness_flags(void **state) {
  (void)state;
  struct dcmf_config cfg;
  char err[256];
  assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--stun-rate", "0",
                         "--hello-rate=7", "--shutdown-timeout", "1500"),
                   0);
  assert_int_equal(cfg.stun_rate, 0);
  assert_int_equal(cfg.hello_rate, 7);
  assert_int_equal(cfg.shutdown_timeout_ms, 1500);
  expect_error("shutdown-timeout", 2, "--shutdown-timeout", "50");
  expect_error("stun-rate", 2, "--stun-rate", "-1");
  /* 0 turns the memory trim off; past ten minutes is refused. */
  assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--mem-trim-delay", "0"),
                   0);
  assert_int_equal(cfg.mem_trim_delay_ms, 0);
  expect_error("mem-trim-delay", 2, "--mem-trim-delay", "600001");
  assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--dtls-coalesce", "1"),
                   0);
  assert_int_equal(cfg.dtls_coalesce, 1);
  expect_error("dtls-coalesce", 2, "--dtls-coalesce", "2");
  assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--sctp-bundle", "0"), 0);
  assert_int_equal(cfg.sctp_bundle, 0);
  expect_error("sctp-bundle", 2, "--sctp-bundle", "2");
  assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--media-pace-us", "0"),
                   0);
  assert_int_equal(cfg.media_pace_us, 0);
  expect_error("media-pace-us", 2, "--media-pace-us", "10001");
}

static void test_json_config(void **state) {
  (void)state;
  struct dcmf_config cfg;
  char err[256];
  dcmf_config_defaults(&cfg);
  assert_int_equal(dcmf_config_apply_json(&cfg,
                                          "{\"control\":\"127.0.0.2:7000\","
                                          "\"max-contexts\":5,"
                                          "\"ports\":\"41000-41001\"}",
                                          "test", err, sizeof(err)),
                   0);
  assert_int_equal(cfg.control_port, 7000);
  assert_int_equal(cfg.max_contexts, 5);
  assert_int_equal(cfg.port_max, 41001);
  assert_int_equal(dcmf_config_apply_json(&cfg, "{\"bogus\":1}", "test", err,
                                          sizeof(err)),
                   DCMF_ERR_INVALID);
  assert_non_null(strstr(err, "unknown key \"bogus\""));
  assert_int_equal(dcmf_config_apply_json(&cfg, "{\"ports\":5}", "test", err,
                                          sizeof(err)),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_config_apply_json(&cfg, "[1]", "test", err,
                                          sizeof(err)),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_config_apply_json(&cfg, "{\"ports\":", "test", err,
                                          sizeof(err)),
                   DCMF_ERR_INVALID);
}

static void test_flags_override_file(void **state) {
  (void)state;
  char path[] = "/tmp/dcmf-config-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char body[] = "{\"control\":\"127.0.0.1:7001\",\"sctp-port\":6000}";
  assert_int_equal(write(fd, body, sizeof(body) - 1), sizeof(body) - 1);
  close(fd);
  struct dcmf_config cfg;
  char err[256];
  /* --config comes last but is applied first. */
  int rv = parse(&cfg, err, sizeof(err), 4, "--sctp-port", "7000", "--config",
                 path);
  unlink(path);
  assert_int_equal(rv, 0);
  assert_int_equal(cfg.control_port, 7001);
  assert_int_equal(cfg.sctp_port, 7000);
}

static void test_auth_options(void **state) {
  (void)state;
  char path[] = "/tmp/dcmf-config-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char body[] =
      "{\"control-cert\":\"/c.pem\",\"control-key\":\"/k.pem\","
      "\"control-client-ca\":\"/ca.pem\","
      "\"control-client-subject\":[\"ims-as\",\"CN=alg,O=Op\\\\, Inc.\"],"
      "\"oauth2-key\":\"/nrf1.pem\",\"oauth2-audience\":\"mf-1\"}";
  assert_int_equal(write(fd, body, sizeof(body) - 1), sizeof(body) - 1);
  close(fd);
  struct dcmf_config cfg;
  char err[256];
  int rv = parse(&cfg, err, sizeof(err), 2, "--config", path);
  assert_int_equal(rv, 0);
  assert_int_equal(cfg.n_control_client_subjects, 2);
  assert_string_equal(cfg.control_client_subjects[1], "CN=alg,O=Op\\, Inc.");
  assert_int_equal(cfg.n_oauth2_keys, 1);
  assert_string_equal(cfg.oauth2_audience, "mf-1");
  assert_string_equal(cfg.oauth2_scope_agw, "dcmf-agw");
  assert_int_equal(cfg.oauth2_leeway_s, 60);
  /* Repeated flags replace the file's list instead of adding to it. */
  rv = parse(&cfg, err, sizeof(err), 6, "--config", path, "--oauth2-key",
             "/a.pem", "--oauth2-key", "/b.pem");
  unlink(path);
  assert_int_equal(rv, 0);
  assert_int_equal(cfg.n_oauth2_keys, 2);
  assert_string_equal(cfg.oauth2_keys[0], "/a.pem");
  assert_string_equal(cfg.oauth2_keys[1], "/b.pem");
  assert_int_equal(cfg.n_control_client_subjects, 2);

  /* Combinations that cannot work are refused. */
  expect_error("needs control-cert", 2, "--control-client-ca", "/ca.pem");
  expect_error("needs control-client-ca", 2, "--control-client-subject", "x");
  expect_error("needs oauth2-audience", 2, "--oauth2-key", "/k.pem");
  expect_error("need oauth2-key", 2, "--oauth2-audience", "mf");
  expect_error("auth-metrics", 2, "--auth-metrics", "2");
  char *many[40] = {"dcmfd"};
  for (int i = 1; i <= 2 * (DCMF_AUTH_MAX_KEYS + 1); i += 2) {
    many[i] = "--oauth2-key";
    many[i + 1] = "/k.pem";
  }
  enum dcmf_config_action action;
  assert_int_equal(dcmf_config_from_args(&cfg, 2 * (DCMF_AUTH_MAX_KEYS + 1) + 1,
                                         many, &action, err, sizeof(err)),
                   DCMF_ERR_INVALID);
  assert_non_null(strstr(err, "more than 8 times"));
  dcmf_config_defaults(&cfg);
  assert_int_equal(dcmf_config_apply_json(&cfg, "{\"oauth2-key\":[\"/a\",3]}",
                                          "test", err, sizeof(err)),
                   DCMF_ERR_INVALID);
  assert_non_null(strstr(err, "must hold strings"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_flags),
      cmocka_unit_test(test_bad_flags),
      cmocka_unit_test(test_liveness_flags),
      cmocka_unit_test(test_e2ae_push_ms),
      cmocka_unit_test(test_json_config),
      cmocka_unit_test(test_flags_override_file),
      cmocka_unit_test(test_auth_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
