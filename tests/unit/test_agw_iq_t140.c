/*
 * Unit tests for the Iq elements of an e2ae T.140 context
 * (agw-shim/api/agwiq_t140.c): the dataChannel member (dcmap, dcsa cps,
 * hlang and direction), the core's t140 member and its defaults, the
 * refusals with the JSON Pointer each names (max-retr and max-time:
 * RFC 8865 §4.1), and the PATCH rules.
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

/* What dcmf-alg makes of a WIC's offer (alg_request.c). */
static json_t *t140_doc(void) {
  return iqtest_doc(
      "{\"terminations\": ["
      " {\"terminationId\": \"access\", \"transport\": \"UDP/DTLS/SCTP\","
      "  \"dtls\": {\"remoteFingerprints\": [\"" FP256 "\"],"
      "           \"setup\": \"actpass\"},"
      "  \"ice\": {\"remoteUfrag\": \"abcd\","
      "           \"remotePwd\": \"abcdefghijklmnopqrstuvwx\"},"
      "  \"remote\": {\"ipv4Addr\": \"127.0.0.9\", \"port\": 5004},"
      "  \"dataChannel\": {\"streamId\": 5, \"label\": \"rtt\","
      "   \"subprotocol\": \"t140\", \"maxMessageSize\": 262144,"
      "   \"sctpPort\": 5000,"
      "   \"dcsa\": {\"cps\": 20, \"hlangSend\": \"en\","
      "             \"hlangRecv\": \"de*\", \"direction\": \"sendonly\"}}},"
      " {\"terminationId\": \"core\", \"transport\": \"RTP/AVP\","
      "  \"remote\": {\"ipv4Addr\": \"127.0.0.2\", \"port\": 4000},"
      "  \"rtcpMux\": false}]}");
}

static json_t *obj(json_t *doc, size_t t, const char *name) {
  return json_object_get(iqtest_term(doc, t), name);
}

static void test_defaults(void **state) {
  (void)state;
  json_t *doc = t140_doc();
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_true(iq.e2ae && iq.t140 && !iq.dc && !iq.tcp);
  assert_int_equal(iq.dc_sid, 5);
  assert_string_equal(iq.dc_label, "rtt");
  assert_int_equal(iq.t140_cps, 20);
  assert_int_equal(iq.t140_direction, 1);
  assert_string_equal(iq.t140_hlang_send, "en");
  assert_string_equal(iq.t140_hlang_recv, "de*");
  /* No core t140 member: 98, red 100, primary + 2 (RFC 4103 §4). */
  assert_int_equal(iq.t140_pt, 98);
  assert_true(iq.t140_red);
  assert_int_equal(iq.t140_red_pt, 100);
  assert_int_equal(iq.t140_generations, 2);
  assert_int_equal(iq.t140_core_cps, 0);
  assert_false(iq.core_rtcp_mux);
  json_decref(doc);
  /* No dcsa: cps 30 (RFC 8865 §4.2.1), sendrecv. */
  doc = t140_doc();
  json_object_del(obj(doc, 0, "dataChannel"), "dcsa");
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.t140_cps, 30);
  assert_int_equal(iq.t140_direction, 0);
  json_decref(doc);
  /* The core's own: no red. */
  doc = t140_doc();
  json_object_set_new(iqtest_term(doc, 1), "t140",
                      json_pack("{s:i,s:i}", "payloadType", 96, "cps", 50));
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.t140_pt, 96);
  assert_false(iq.t140_red);
  assert_int_equal(iq.t140_core_cps, 50);
  json_decref(doc);
}

static void test_refusals(void **state) {
  (void)state;
  json_t *doc = t140_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "maxRetr", json_integer(0));
  iqtest_refused(doc, "/terminations/0/dataChannel/maxRetr");
  doc = t140_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "maxTime", json_integer(500));
  iqtest_refused(doc, "/terminations/0/dataChannel/maxTime");
  doc = t140_doc();
  json_object_set_new(obj(doc, 0, "dataChannel"), "ordered", json_false());
  iqtest_refused(doc, "/terminations/0/dataChannel/ordered");
  doc = t140_doc();
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "cps", json_integer(0));
  iqtest_refused(doc, "/terminations/0/dataChannel/dcsa/cps");
  doc = t140_doc();
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "direction", json_string("both"));
  iqtest_refused(doc, "/terminations/0/dataChannel/dcsa/direction");
  doc = t140_doc();
  json_object_set_new(json_object_get(obj(doc, 0, "dataChannel"), "dcsa"),
                      "hlangSend", json_string("en;x"));
  iqtest_refused(doc, "/terminations/0/dataChannel/dcsa/hlangSend");
  doc = t140_doc();
  json_object_set_new(
      iqtest_term(doc, 1), "t140",
      json_pack("{s:i,s:i}", "payloadType", 98, "redPayloadType", 98));
  iqtest_refused(doc, "/terminations/1/t140/redPayloadType");
  doc = t140_doc();
  json_object_set_new(iqtest_term(doc, 1), "t140",
                      json_pack("{s:i,s:i,s:i}", "payloadType", 98,
                                "redPayloadType", 100, "generations", 6));
  iqtest_refused(doc, "/terminations/1/t140/generations");
  doc = t140_doc();
  json_object_set_new(iqtest_term(doc, 1), "t140",
                      json_pack("{s:i}", "payloadType", 128));
  iqtest_refused(doc, "/terminations/1/t140/payloadType");
  doc = t140_doc();
  json_object_set_new(iqtest_term(doc, 1), "transport", json_string("UDP"));
  iqtest_refused(doc, "/terminations/1/transport");
  doc = t140_doc();
  json_object_set_new(iqtest_term(doc, 1), "msrp", json_object());
  iqtest_refused(doc, "/terminations/1/msrp");
  doc = t140_doc();
  json_object_set_new(iqtest_term(doc, 0), "t140", json_object());
  iqtest_refused(doc, "/terminations/0/t140");
  /* A t140 channel toward an MSRP core: the MSRP path names it. */
  doc = t140_doc();
  json_object_set_new(iqtest_term(doc, 1), "transport",
                      json_string("TCP/MSRP"));
  iqtest_refused(doc, "/terminations/0/dataChannel/subprotocol");
}

static void test_patch(void **state) {
  (void)state;
  json_t *before = t140_doc();
  json_t *after = t140_doc();
  /* A re-offer's new direction and cps, the core's answer's t140. */
  json_object_set_new(json_object_get(obj(after, 0, "dataChannel"), "dcsa"),
                      "direction", json_string("recvonly"));
  json_object_set_new(iqtest_term(after, 1), "t140",
                      json_pack("{s:i,s:i,s:i}", "payloadType", 97,
                                "redPayloadType", 99, "generations", 3));
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p = {0};
  assert_int_equal(iqtest_patch(before, after, &ch, &p), 0);
  json_decref(after);
  /* The dcmap stays. */
  after = t140_doc();
  json_object_set_new(obj(after, 0, "dataChannel"), "streamId",
                      json_integer(7));
  memset(&p, 0, sizeof(p));
  assert_int_equal(iqtest_patch(before, after, &ch, &p), DCMF_ERR_INVALID);
  iqtest_names(&p, "/terminations/0/dataChannel");
  json_decref(after);
  json_decref(before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_patch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
