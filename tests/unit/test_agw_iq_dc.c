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

#define FP256                                                                  \
  "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:"       \
  "23:45:67:89:AB:CD:EF:01:23:45:67:89"

static json_t *dc_doc(void) {
  json_error_t err;
  json_t *doc = json_loads(
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
      "  \"msrp\": {\"mode\": \"agnostic\"}}]}",
      0, &err);
  assert_non_null(doc);
  return doc;
}

static json_t *term(json_t *doc, size_t i) {
  return json_array_get(json_object_get(doc, "terminations"), i);
}

static json_t *obj(json_t *doc, size_t t, const char *name) {
  return json_object_get(term(doc, t), name);
}

static void assert_names(const struct dcmf_problem *p, const char *param) {
  assert_int_equal(p->status, 400);
  int found = 0;
  for (size_t i = 0; i < p->n_invalid; i++) {
    found |= strcmp(p->invalid[i].param, param) == 0;
  }
  if (!found) {
    fail_msg("no invalid param %s (first: %s)", param,
             p->n_invalid ? p->invalid[0].param : "none");
  }
}

static void expect_refused(json_t *doc, const char *param) {
  struct dcmf_agwiq iq;
  struct dcmf_problem p = {0};
  assert_int_equal(dcmf_agwiq_parse(doc, &iq, &p), DCMF_ERR_INVALID);
  assert_names(&p, param);
  json_decref(doc);
}

static void parse_ok(json_t *doc, struct dcmf_agwiq *iq) {
  struct dcmf_problem p = {0};
  if (dcmf_agwiq_parse(doc, iq, &p) != 0) {
    fail_msg("refused: %s: %s", p.n_invalid ? p.invalid[0].param : "",
             p.n_invalid ? p.invalid[0].reason : p.detail);
  }
}

static void test_agnostic(void **state) {
  (void)state;
  json_t *doc = dc_doc();
  struct dcmf_agwiq iq;
  parse_ok(doc, &iq);
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
  expect_refused(doc, "/terminations/1/msrp/path");
  /* The path later: aware without it is taken, then a PATCH gives it;
   * a later re-offer may change it, not remove it. */
  doc = dc_doc();
  json_object_set_new(obj(doc, 1, "msrp"), "mode", json_string("aware"));
  struct dcmf_agwiq prev, next;
  parse_ok(doc, &prev);
  assert_true(prev.msrp_aware && prev.core_path[0] == '\0');
  json_object_set_new(obj(doc, 1, "msrp"), "path",
                      json_string("msrp://127.0.0.2:4000/c1;tcp"));
  parse_ok(doc, &next);
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p = {0};
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p), 0);
  prev = next;
  json_object_set_new(obj(doc, 1, "msrp"), "path",
                      json_string("msrp://127.0.0.2:4000/c2;tcp"));
  parse_ok(doc, &next);
  /* A new a=path from the core's answer to a re-offer: taken. */
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p), 0);
  prev = next;
  json_object_del(obj(doc, 1, "msrp"), "path");
  parse_ok(doc, &next);
  /* Removed once given: refused, naming it. */
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p),
                   DCMF_ERR_INVALID);
  assert_names(&p, "/terminations/1/msrp/path");
  json_decref(doc);
  doc = dc_doc();
  json_object_set_new(obj(doc, 1, "msrp"), "mode", json_string("aware"));
  json_object_set_new(obj(doc, 1, "msrp"), "path",
                      json_string("msrp://127.0.0.2:4000/c1;tcp"));
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "msrpCema", json_false());
  struct dcmf_agwiq iq;
  parse_ok(doc, &iq);
  assert_true(iq.msrp_aware && !iq.dc_cema);
  assert_string_equal(iq.core_path, "msrp://127.0.0.2:4000/c1;tcp");
  json_decref(doc);
}

static void test_refusals(void **state) {
  (void)state;
  json_t *doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "subprotocol",
                      json_string("t140"));
  expect_refused(doc, "/terminations/0/dataChannel/subprotocol");
  doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "maxRetr", json_integer(3));
  expect_refused(doc, "/terminations/0/dataChannel/maxRetr");
  doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "ordered", json_false());
  expect_refused(doc, "/terminations/0/dataChannel/ordered");
  doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "maxMessageSize",
                      json_integer(0));
  expect_refused(doc, "/terminations/0/dataChannel/maxMessageSize");
  doc = dc_doc();
  json_object_del(obj(doc, 0, "dataChannel"), "dcsa");
  expect_refused(doc, "/terminations/0/dataChannel/dcsa");
  doc = dc_doc();
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "path", json_string("msrp://127.0.0.9:9/s1;tcp"));
  expect_refused(doc, "/terminations/0/dataChannel/dcsa/path");
  doc = dc_doc();
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "msrpCema", json_false());
  expect_refused(doc, "/terminations/0/dataChannel/dcsa/msrpCema");
  doc = dc_doc();
  json_object_set_new(term(doc, 1), "tcp",
                      json_pack("{s:s}", "setup", "merge"));
  expect_refused(doc, "/terminations/1/tcp/setup");
  doc = dc_doc();
  json_object_del(term(doc, 1), "remote");
  expect_refused(doc, "/terminations/1/remote");
  doc = dc_doc();
  json_object_set_new(term(doc, 1), "transport", json_string("RTP/AVP"));
  expect_refused(doc, "/terminations/1/transport");
  doc = dc_doc();
  json_object_set_new(term(doc, 0), "tls", json_object());
  expect_refused(doc, "/terminations/0/tls");
}

static void test_patch(void **state) {
  (void)state;
  json_t *doc = dc_doc();
  json_object_del(obj(doc, 0, "dtls"), "remoteFingerprints");
  struct dcmf_agwiq prev, next;
  parse_ok(doc, &prev);
  json_decref(doc);
  /* The fingerprint later, and a new dcsa path keeping the dcmap. */
  doc = dc_doc();
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "path", json_string("msrps://127.0.0.9:9/s2;dc"));
  parse_ok(doc, &next);
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p = {0};
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p), 0);
  assert_true(ch.fingerprint_arrived);
  json_decref(doc);
  /* A changed dcmap or msrp mode is refused. */
  doc = dc_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "streamId", json_integer(5));
  parse_ok(doc, &next);
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p),
                   DCMF_ERR_INVALID);
  assert_names(&p, "/terminations/0/dataChannel");
  json_decref(doc);
  doc = dc_doc();
  json_object_set_new(term(doc, 1), "tcp",
                      json_pack("{s:i}", "timeoutMs", 500));
  parse_ok(doc, &next);
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &next, &ch, &p),
                   DCMF_ERR_INVALID);
  assert_names(&p, "/terminations/1/tcp");
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
