/*
 * Unit tests for the Iq elements of an e2ae TCP context
 * (agw-shim/api/agwiq_tcp.c): transports and their pairs, the TLS role
 * and the AGW's TCP setups it gives, handling and merge, timeouts, the
 * refusals with the JSON Pointer each names, and the PATCH rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agwiq.h"
#include "errors.h"
#include "iqtest.h"

#define FP256                                                                  \
  "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:"       \
  "23:45:67:89:AB:CD:EF:01:23:45:67:89"
#define FP256B                                                                 \
  "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:"       \
  "44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"

/* UE active (it connects): the AGW listens on access, connects to core. */
static json_t *tcp_doc(void) {
  return iqtest_doc(
      "{\"terminations\": ["
      " {\"terminationId\": \"access\", \"transport\": \"TCP/TLS/MSRP\","
      "  \"remote\": {\"ipv4Addr\": \"127.0.0.3\", \"port\": 9},"
      "  \"tls\": {\"remoteFingerprints\": [\"" FP256 "\"],"
      "           \"setup\": \"active\"},"
      "  \"msrp\": {\"mode\": \"agnostic\"},"
      "  \"notifyUri\": \"http://127.0.0.1:8080/events\"},"
      " {\"terminationId\": \"core\", \"transport\": \"TCP/MSRP\","
      "  \"remote\": {\"ipv4Addr\": \"127.0.0.2\", \"port\": 4000}}]}");
}

static void set_path(json_t *doc, size_t t, const char *obj, const char *key,
                     json_t *v) {
  json_t *o = json_object_get(iqtest_term(doc, t), obj);
  if (o == NULL) {
    o = json_object();
    json_object_set_new(iqtest_term(doc, t), obj, o);
  }
  json_object_set_new(o, key, v);
}

static void test_ue_active(void **state) {
  (void)state;
  json_t *doc = tcp_doc();
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_true(iq.e2ae && iq.tcp);
  assert_int_equal(iq.transport[0], DCMF_AGWIQ_TCP_TLS_MSRP);
  assert_int_equal(iq.transport[1], DCMF_AGWIQ_TCP_MSRP);
  assert_int_equal(iq.role, DCMF_AGWIQ_ROLE_SERVER);
  assert_int_equal(iq.tcp_setup[0], DCMF_AGWIQ_TCP_PASSIVE);
  assert_int_equal(iq.tcp_setup[1], DCMF_AGWIQ_TCP_ACTIVE); /* mirror */
  assert_int_equal(iq.tcp_handling, DCMF_AGWIQ_TCP_STATE_AWARE);
  assert_int_equal(iq.tcp_timeout_ms, 10000);
  assert_int_equal(iq.remote_fp.count, 1);
  assert_string_equal(iq.notify_uri, "http://127.0.0.1:8080/events");
  json_decref(doc);
}

static void test_ue_passive_bfcp_any_tcp(void **state) {
  (void)state;
  json_t *doc = tcp_doc();
  json_object_set_new(iqtest_term(doc, 0), "transport",
                      json_string("TCP/TLS/BFCP"));
  json_object_del(iqtest_term(doc, 0), "msrp");
  json_object_set_new(iqtest_term(doc, 1), "transport", json_string("TCP"));
  set_path(doc, 0, "tls", "setup", json_string("passive"));
  set_path(doc, 0, "tls", "establish", json_true());
  set_path(doc, 1, "tcp", "timeoutMs", json_integer(250));
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.role, DCMF_AGWIQ_ROLE_CLIENT);
  assert_int_equal(iq.tcp_setup[0], DCMF_AGWIQ_TCP_ACTIVE);
  assert_int_equal(iq.tcp_setup[1], DCMF_AGWIQ_TCP_PASSIVE);
  assert_int_equal(iq.tcp_timeout_ms, 250);
  json_decref(doc);
}

static void test_merge_needs_changing_setup(void **state) {
  (void)state;
  json_t *doc = tcp_doc();
  set_path(doc, 1, "tcp", "setup", json_string("merge"));
  iqtest_refused(doc, "/terminations/1/tcp/setup");
  doc = tcp_doc();
  set_path(doc, 1, "tcp", "setup", json_string("merge"));
  set_path(doc, 1, "tcp", "handling", json_string("stateAwareChangingSetup"));
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.tcp_setup[1], DCMF_AGWIQ_TCP_MERGE);
  assert_int_equal(iq.tcp_handling, DCMF_AGWIQ_TCP_STATE_AWARE_CHANGE);
  json_decref(doc);
}

/* Aware MSRP (TS 23.334 5.19.5): on TCP/TLS/MSRP with a TCP/MSRP core,
 * each far end's path given now or later. */
static void test_msrp_aware(void **state) {
  (void)state;
  json_t *doc = tcp_doc();
  set_path(doc, 0, "msrp", "mode", json_string("aware"));
  set_path(doc, 0, "msrp", "path", json_string("msrps://127.0.0.3:9/ue1;tcp"));
  set_path(doc, 1, "msrp", "mode", json_string("aware"));
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_true(iq.msrp_aware);
  assert_string_equal(iq.access_path, "msrps://127.0.0.3:9/ue1;tcp");
  assert_string_equal(iq.core_path, "");
  json_decref(doc);
  doc = tcp_doc(); /* the core side alone says it */
  json_object_del(iqtest_term(doc, 0), "msrp");
  set_path(doc, 1, "msrp", "mode", json_string("aware"));
  set_path(
      doc, 1, "msrp", "path",
      json_string("msrp://relay.example:2/r;tcp msrp://127.0.0.2:4000/c;tcp"));
  iqtest_parse_ok(doc, &iq);
  assert_true(iq.msrp_aware);
  assert_string_equal(iq.access_path, "");
  json_decref(doc);
}

static void test_stateless_active_core_may_wait_for_remote(void **state) {
  (void)state;
  json_t *doc = tcp_doc();
  json_object_del(iqtest_term(doc, 1), "remote");
  iqtest_refused(doc, "/terminations/1/remote"); /* stateAware: at once */
  doc = tcp_doc();
  json_object_del(iqtest_term(doc, 1), "remote");
  set_path(doc, 0, "tcp", "handling", json_string("stateless"));
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.tcp_handling, DCMF_AGWIQ_TCP_STATELESS);
  json_decref(doc);
}

static void test_refusals(void **state) {
  (void)state;
  json_t *doc = tcp_doc();
  json_object_set_new(iqtest_term(doc, 1), "transport",
                      json_string("TCP/BFCP"));
  iqtest_refused(doc, "/terminations/0/transport");
  doc = tcp_doc();
  json_object_set_new(iqtest_term(doc, 1), "transport", json_string("RTP/AVP"));
  iqtest_refused(doc, "/terminations/1/transport");
  doc = tcp_doc(); /* aware on one termination, agnostic on the other */
  set_path(doc, 1, "msrp", "mode", json_string("aware"));
  iqtest_refused(doc, "/terminations/0/msrp/mode");
  doc = tcp_doc(); /* aware toward a plain TCP core */
  set_path(doc, 0, "msrp", "mode", json_string("aware"));
  json_object_set_new(iqtest_term(doc, 1), "transport", json_string("TCP"));
  iqtest_refused(doc, "/terminations/1/transport");
  doc = tcp_doc();
  set_path(doc, 0, "msrp", "path", json_string("msrps://ue.example:1/a;tcp"));
  iqtest_refused(doc, "/terminations/0/msrp/path"); /* agnostic */
  doc = tcp_doc();
  set_path(doc, 0, "msrp", "mode", json_string("aware"));
  set_path(doc, 0, "msrp", "path", json_string("not a uri"));
  iqtest_refused(doc, "/terminations/0/msrp/path");
  doc = tcp_doc();
  set_path(doc, 0, "tls", "tlsId", json_string("abcdefghijklmnopqrstuvwx"));
  iqtest_refused(doc, "/terminations/0/tls/tlsId");
  doc = tcp_doc();
  json_object_del(iqtest_term(doc, 0), "tls");
  iqtest_refused(doc, "/terminations/0/tls");
  doc = tcp_doc();
  set_path(doc, 0, "tcp", "setup", json_string("active"));
  iqtest_refused(doc, "/terminations/0/tcp/setup"); /* tls says passive */
  doc = tcp_doc();
  set_path(doc, 0, "tcp", "setup", json_string("merge"));
  iqtest_refused(doc, "/terminations/0/tcp/setup");
  doc = tcp_doc();
  set_path(doc, 1, "tcp", "timeoutMs", json_integer(99));
  iqtest_refused(doc, "/terminations/1/tcp/timeoutMs");
  doc = tcp_doc();
  set_path(doc, 1, "tcp", "handling", json_string("stateful"));
  iqtest_refused(doc, "/terminations/1/tcp/handling");
  doc = tcp_doc();
  set_path(doc, 0, "tcp", "handling", json_string("stateless"));
  set_path(doc, 1, "tcp", "handling", json_string("stateAware"));
  iqtest_refused(doc, "/terminations/1/tcp/handling");
  doc = tcp_doc();
  set_path(doc, 1, "msrp", "mode", json_string("agnostic"));
  json_object_set_new(iqtest_term(doc, 1), "transport", json_string("TCP"));
  iqtest_refused(doc, "/terminations/1/msrp");
  doc = tcp_doc();
  json_object_set_new(iqtest_term(doc, 0), "dtls", json_object());
  iqtest_refused(doc, "/terminations/0/dtls");
  doc = tcp_doc();
  json_object_set_new(iqtest_term(doc, 1), "notifyUri",
                      json_string("http://x.example/"));
  iqtest_refused(doc, "/terminations/1/notifyUri");
  doc = tcp_doc();
  set_path(doc, 1, "tcp", "bogus", json_true());
  iqtest_refused(doc, "/terminations/1/tcp/bogus");
}

/* Aware on both terminations, with the core's path if |core_path|. */
static json_t *aware_doc(const char *core_path) {
  json_t *doc = tcp_doc();
  set_path(doc, 0, "msrp", "mode", json_string("aware"));
  set_path(doc, 1, "msrp", "mode", json_string("aware"));
  if (core_path != NULL) {
    set_path(doc, 1, "msrp", "path", json_string(core_path));
  }
  return doc;
}

static int patch(json_t *prev_doc, json_t *next_doc,
                 struct dcmf_agwiq_change *ch, const char *param) {
  struct dcmf_problem p = {0};
  int rv = iqtest_patch(prev_doc, next_doc, ch, &p);
  if (param != NULL) {
    assert_int_equal(rv, DCMF_ERR_INVALID);
    iqtest_names(&p, param);
  }
  json_decref(prev_doc);
  json_decref(next_doc);
  return rv;
}

static void test_patch_rules(void **state) {
  (void)state;
  struct dcmf_agwiq_change ch;
  /* Aware: the core's path may come later, and change (a re-offer),
   * not go; the mode stays. */
  json_t *a = aware_doc(NULL), *b = aware_doc("msrp://127.0.0.2:4000/c;tcp");
  assert_int_equal(patch(a, b, &ch, NULL), 0);
  a = aware_doc("msrp://127.0.0.2:4000/c;tcp");
  b = aware_doc("msrp://127.0.0.2:4000/d;tcp");
  assert_int_equal(patch(a, b, &ch, NULL), 0);
  a = aware_doc("msrp://127.0.0.2:4000/c;tcp");
  b = aware_doc(NULL);
  patch(a, b, &ch, "/terminations/1/msrp/path");
  a = tcp_doc();
  b = tcp_doc();
  set_path(b, 0, "msrp", "mode", json_string("aware"));
  patch(a, b, &ch, "/terminations/1/msrp/mode");
  /* Fingerprints later release the handshake. */
  a = tcp_doc();
  b = tcp_doc();
  json_object_del(json_object_get(iqtest_term(a, 0), "tls"), "remoteFingerprints");
  assert_int_equal(patch(a, b, &ch, NULL), 0);
  assert_true(ch.fingerprint_arrived);
  /* A new core address and notify URI are fine. */
  a = tcp_doc();
  b = tcp_doc();
  json_object_set_new(json_object_get(iqtest_term(b, 1), "remote"), "port",
                      json_integer(4001));
  json_object_set_new(iqtest_term(b, 0), "notifyUri",
                      json_string("http://127.0.0.1:9/n"));
  assert_int_equal(patch(a, b, &ch, NULL), 0);
  assert_true(ch.notify_changed);
  /* Other fingerprints, a removed one, a new setup or handling: no. */
  a = tcp_doc();
  b = tcp_doc();
  json_array_set_new(json_object_get(json_object_get(iqtest_term(b, 0), "tls"),
                                     "remoteFingerprints"),
                     0, json_string(FP256B));
  patch(a, b, &ch, "/terminations/0/tls/remoteFingerprints");
  a = tcp_doc();
  b = tcp_doc();
  json_object_del(json_object_get(iqtest_term(b, 0), "tls"),
                  "remoteFingerprints");
  patch(a, b, &ch, "/terminations/0/tls/remoteFingerprints");
  a = tcp_doc();
  b = tcp_doc();
  set_path(b, 0, "tls", "setup", json_string("actpass"));
  patch(a, b, &ch, "/terminations/0/tls/setup");
  a = tcp_doc();
  b = tcp_doc();
  set_path(b, 1, "tcp", "timeoutMs", json_integer(500));
  patch(a, b, &ch, "/terminations/1/tcp/timeoutMs");
  a = tcp_doc();
  b = tcp_doc();
  set_path(b, 0, "tcp", "handling", json_string("stateless"));
  patch(a, b, &ch, "/terminations/1/tcp/handling");
  /* The answer to an actpass offer: setup once, the AGW's TCP setup
   * (passive: its port listens) unchanged. */
  a = tcp_doc();
  b = tcp_doc();
  set_path(a, 0, "tls", "setup", json_string("actpass"));
  json_object_del(json_object_get(iqtest_term(a, 0), "tls"),
                  "remoteFingerprints");
  assert_int_equal(patch(a, b, &ch, NULL), 0);
  assert_true(ch.fingerprint_arrived);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ue_active),
      cmocka_unit_test(test_ue_passive_bfcp_any_tcp),
      cmocka_unit_test(test_merge_needs_changing_setup),
      cmocka_unit_test(test_stateless_active_core_may_wait_for_remote),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_msrp_aware),
      cmocka_unit_test(test_patch_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
