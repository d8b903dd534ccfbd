/*
 * Unit tests for the Iq elements of an e2ae MSRP-over-data-channel
 * context (agw-shim/api/agwiq_dc.c): the dataChannel member (dcmap,
 * max-message-size, sctp port, dcsa), the core's tcp and msrp members,
 * the refusals with the JSON Pointer each names, and the PATCH rules.
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

static json_t *dc_doc(void) {
  return iqtest_doc(
      "{\"terminations\": ["
      " {\"terminationId\": \"access\", \"transport\": \"UDP/DTLS/SCTP\","
      "  \"dtls\": {\"remoteFingerprints\": [\"" FP256 "\"],"
      "           \"setup\": \"actpass\"},"
      "  \"ice\": {\"remoteUfrag\": \"abcd\","
      "           \"remotePwd\": \"abcdefghijklmnopqrstuvwx\"},"
      "  \"dataChannel\": {\"streamId\": 3, \"label\": \"chat\","
      "   \"subprotocol\": \"msrp\", \"maxMessageSize\": 262144,"
      "   \"sctpPort\": 5000,"
      "   \"dcsa\": {\"path\": \"msrps://127.0.0.9:9/s1;dc\","
      "             \"setup\": \"active\", \"msrpCema\": true}}},"
      " {\"terminationId\": \"core\", \"transport\": \"TCP/MSRP\","
      "  \"remote\": {\"ipv4Addr\": \"127.0.0.2\", \"port\": 4000},"
      "  \"msrp\": {\"mode\": \"agnostic\"}}]}");
}

static json_t *obj(json_t *doc, size_t t, const char *name) {
  return json_object_get(iqtest_term(doc, t), name);
}

static void test_agnostic(void **state) {
  (void)state;
  json_t *doc = dc_doc();
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_true(iq.e2ae && iq.dc && !iq.tcp);
  assert_int_equal(iq.transport[0], DCMF_AGWIQ_DTLS_SCTP);
  assert_int_equal(iq.transport[1], DCMF_AGWIQ_TCP_MSRP);
  assert_int_equal(iq.dc_sid, 3);
  assert_string_equal(iq.dc_label, "chat");
  assert_int_equal(iq.dc_max_message_size, 262144);
  assert_string_equal(iq.dc_path, "msrps://127.0.0.9:9/s1;dc");
  assert_true(iq.dc_msrp_active && iq.dc_cema && !iq.msrp_aware);
  assert_int_equal(iq.tcp_setup[1], DCMF_AGWIQ_TCP_ACTIVE);
  assert_int_equal(iq.tcp_timeout_ms, 10000);
  assert_int_equal(iq.role, DCMF_AGWIQ_ROLE_SERVER);
  assert_string_equal(dcmf_agwiq_transport_name(iq.transport[0]),
                      "UDP/DTLS/SCTP");
  json_decref(doc);
}

static void test_aware_path(void **state) {
  (void)state;
  json_t *doc = dc_doc();
  json_object_set_new(obj(doc, 1, "msrp"), "mode", json_string("aware"));
  json_object_set_new(obj(doc, 1, "msrp"), "path", json_string("sip:x"));
  iqtest_refused(doc, "/terminations/1/msrp/path");
  /* The path later: aware without it is taken, then a PATCH gives it;
   * a later re-offer may change it, not remove it. */
  doc = dc_doc();
  json_object_set_new(obj(doc, 1, "msrp"), "mode", json_string("aware"));
  struct dcmf_agwiq prev, next;
  iqtest_parse_ok(doc, &prev);
  assert_true(prev.msrp_aware && prev.core_path[0] == '\0');
  json_object_set_new(obj(doc, 1, "msrp"), "path",
                      json_string("msrp://127.0.0.2:4000/c1;tcp"));
  iqtest_parse_ok(doc, &next);
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p = {0};
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p), 0);
  prev = next;
  json_object_set_new(obj(doc, 1, "msrp"), "path",
                      json_string("msrp://127.0.0.2:4000/c2;tcp"));
  iqtest_parse_ok(doc, &next);
  /* A new a=path from the core's answer to a re-offer: taken. */
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p), 0);
  prev = next;
  json_object_del(obj(doc, 1, "msrp"), "path");
  iqtest_parse_ok(doc, &next);
  /* Removed once given: refused, naming it. */
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p),
                   DCMF_ERR_INVALID);
  iqtest_names(&p, "/terminations/1/msrp/path");
  json_decref(doc);
  doc = dc_doc();
  json_object_set_new(obj(doc, 1, "msrp"), "mode", json_string("aware"));
  json_object_set_new(obj(doc, 1, "msrp"), "path",
                      json_string("msrp://127.0.0.2:4000/c1;tcp"));
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "msrpCema", json_false());
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_true(iq.msrp_aware && !iq.dc_cema);
  assert_string_equal(iq.core_path, "msrp://127.0.0.2:4000/c1;tcp");
  json_decref(doc);
}

static void test_refusals(void **state) {
  (void)state;
  json_t *doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "subprotocol",
                      json_string("t140"));
  iqtest_refused(doc, "/terminations/0/dataChannel/subprotocol");
  doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "maxRetr", json_integer(3));
  iqtest_refused(doc, "/terminations/0/dataChannel/maxRetr");
  doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "ordered", json_false());
  iqtest_refused(doc, "/terminations/0/dataChannel/ordered");
  doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "maxMessageSize",
                      json_integer(0));
  iqtest_refused(doc, "/terminations/0/dataChannel/maxMessageSize");
  doc = dc_doc();
  json_object_del(obj(doc, 0, "dataChannel"), "dcsa");
  iqtest_refused(doc, "/terminations/0/dataChannel/dcsa");
  doc = dc_doc();
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "path", json_string("msrp://127.0.0.9:9/s1;tcp"));
  iqtest_refused(doc, "/terminations/0/dataChannel/dcsa/path");
  doc = dc_doc();
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "msrpCema", json_false());
  iqtest_refused(doc, "/terminations/0/dataChannel/dcsa/msrpCema");
  doc = dc_doc();
  json_object_set_new(iqtest_term(doc, 1), "tcp",
                      json_pack("{s:s, s:s}", "setup", "merge", "handling",
                                "stateless"));
  iqtest_refused(doc, "/terminations/1/tcp/setup");
  /* Merge with a state-aware leg: taken (TS 23.334 6.2.18.4). */
  doc = dc_doc();
  json_object_set_new(iqtest_term(doc, 1), "tcp",
                      json_pack("{s:s}", "setup", "merge"));
  struct dcmf_agwiq merged;
  iqtest_parse_ok(doc, &merged);
  assert_int_equal(merged.tcp_setup[1], DCMF_AGWIQ_TCP_MERGE);
  json_decref(doc);
  doc = dc_doc();
  json_object_del(iqtest_term(doc, 1), "remote");
  iqtest_refused(doc, "/terminations/1/remote");
  doc = dc_doc();
  json_object_set_new(iqtest_term(doc, 1), "transport", json_string("RTP/AVP"));
  iqtest_refused(doc, "/terminations/1/transport");
  doc = dc_doc();
  json_object_set_new(iqtest_term(doc, 0), "tls", json_object());
  iqtest_refused(doc, "/terminations/0/tls");
}

static void test_patch(void **state) {
  (void)state;
  json_t *doc = dc_doc();
  json_object_del(obj(doc, 0, "dtls"), "remoteFingerprints");
  struct dcmf_agwiq prev, next;
  iqtest_parse_ok(doc, &prev);
  json_decref(doc);
  /* The fingerprint later, and a new dcsa path keeping the dcmap. */
  doc = dc_doc();
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "path", json_string("msrps://127.0.0.9:9/s2;dc"));
  iqtest_parse_ok(doc, &next);
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p = {0};
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p), 0);
  assert_true(ch.fingerprint_arrived);
  json_decref(doc);
  /* A changed dcmap or msrp mode is refused. */
  doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "streamId", json_integer(5));
  iqtest_parse_ok(doc, &next);
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p),
                   DCMF_ERR_INVALID);
  iqtest_names(&p, "/terminations/0/dataChannel");
  json_decref(doc);
  doc = dc_doc();
  json_object_set_new(iqtest_term(doc, 1), "tcp",
                      json_pack("{s:i}", "timeoutMs", 500));
  iqtest_parse_ok(doc, &next);
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p),
                   DCMF_ERR_INVALID);
  iqtest_names(&p, "/terminations/1/tcp");
  json_decref(doc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_agnostic),
      cmocka_unit_test(test_aware_path),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_patch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
