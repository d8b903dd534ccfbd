/*
 * Unit tests for the Iq elements of an e2ae T.38 context
 * (agw-shim/api/agwiq_t38.c): UDP/DTLS access (SDP UDP/TLS/UDPTL) <->
 * UDP core (SDP UDPTL), the certificate each termination presents, the
 * refusals with the JSON Pointer each names, and the PATCH rules of a
 * re-offer (RFC 7345 §4.5: unchanged fingerprints keep the association,
 * a new tlsId starts a new one).
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
  "sha-256 01:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:"       \
  "23:45:67:89:AB:CD:EF:01:23:45:67:89"
#define TLS_ID_A "abcdefghijklmnopqrstuvwxyz012345"
#define TLS_ID_B "bbcdefghijklmnopqrstuvwxyz012345"

/* A core offer answered by the UE (TS 23.334 6.2.10.4): its setup
 * active, its fingerprint and tls-id. */
static json_t *t38_doc(void) {
  json_error_t err;
  json_t *doc = json_loads(
      "{\"terminations\": ["
      " {\"terminationId\": \"access\", \"transport\": \"UDP/DTLS\","
      "  \"remote\": {\"ipv4Addr\": \"127.0.0.3\", \"port\": 5000},"
      "  \"dtls\": {\"remoteFingerprints\": [\"" FP256 "\"],"
      "           \"setup\": \"active\", \"tlsId\": \"" TLS_ID_A "\"}},"
      " {\"terminationId\": \"core\", \"transport\": \"UDP\","
      "  \"remote\": {\"ipv4Addr\": \"127.0.0.2\", \"port\": 4000}}]}",
      0, &err);
  assert_non_null(doc);
  return doc;
}

static json_t *term(json_t *doc, size_t i) {
  return json_array_get(json_object_get(doc, "terminations"), i);
}

static json_t *dtls(json_t *doc) {
  return json_object_get(term(doc, 0), "dtls");
}

static void test_t38_context(void **state) {
  (void)state;
  json_t *doc = t38_doc();
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_true(iq.e2ae);
  assert_true(iq.t38);
  assert_false(iq.tcp || iq.dc);
  assert_int_equal(iq.transport[0], DCMF_AGWIQ_UDP_DTLS);
  assert_int_equal(iq.transport[1], DCMF_AGWIQ_UDP);
  assert_string_equal(dcmf_agwiq_transport_name(iq.transport[0]), "UDP/DTLS");
  assert_true(iq.dtls_rsa); /* RFC 7345's suites are RSA ones */
  assert_int_equal(iq.role, DCMF_AGWIQ_ROLE_SERVER); /* the UE is active */
  assert_true(iq.core_rtcp_mux);                     /* one core socket */
  assert_string_equal(iq.tls_id, TLS_ID_A);
  json_decref(doc);
  /* The UE passive: the AGW establishes; asked for ECDSA, it gets it. */
  doc = t38_doc();
  json_object_set_new(dtls(doc), "setup", json_string("passive"));
  json_object_set_new(dtls(doc), "establish", json_true());
  json_object_set_new(dtls(doc), "certificate", json_string("ecdsa"));
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.role, DCMF_AGWIQ_ROLE_CLIENT);
  assert_false(iq.dtls_rsa);
  json_decref(doc);
  /* Elsewhere ECDSA stays the default, RSA on request. */
  doc = json_loads(
      "{\"terminations\": ["
      " {\"terminationId\": \"access\", \"transport\": \"UDP/TLS/RTP/SAVPF\","
      "  \"dtls\": {\"setup\": \"active\"}},"
      " {\"terminationId\": \"core\", \"transport\": \"RTP/AVPF\"}]}",
      0, NULL);
  iqtest_parse_ok(doc, &iq);
  assert_false(iq.t38);
  assert_false(iq.dtls_rsa);
  json_object_set_new(dtls(doc), "certificate", json_string("rsa"));
  iqtest_parse_ok(doc, &iq);
  assert_true(iq.dtls_rsa);
  json_decref(doc);
}

static void test_refusals(void **state) {
  (void)state;
  json_t *doc = t38_doc();
  /* The SDP protos name the Iq ones. */
  json_object_set_new(term(doc, 0), "transport", json_string("UDP/TLS/UDPTL"));
  iqtest_refused(doc, "/terminations/0/transport");
  doc = t38_doc();
  json_object_set_new(term(doc, 1), "transport", json_string("UDPTL"));
  iqtest_refused(doc, "/terminations/1/transport");
  /* A T.38 access with an RTP core. */
  doc = t38_doc();
  json_object_set_new(term(doc, 1), "transport", json_string("RTP/AVP"));
  iqtest_refused(doc, "/terminations/1/transport");
  /* "UDP/DTLS" is an access transport only. */
  doc = t38_doc();
  json_object_set_new(term(doc, 1), "transport", json_string("UDP/DTLS"));
  iqtest_refused(doc, "/terminations/1/transport");
  /* No dtls, no setup. */
  doc = t38_doc();
  json_object_del(term(doc, 0), "dtls");
  iqtest_refused(doc, "/terminations/0/dtls");
  doc = t38_doc();
  json_object_del(dtls(doc), "setup");
  iqtest_refused(doc, "/terminations/0/dtls/setup");
  /* UDPTL has no RTCP, and the core has no Iq members. */
  doc = t38_doc();
  json_object_set_new(term(doc, 1), "remoteRtcpPort", json_integer(4001));
  iqtest_refused(doc, "/terminations/1/remoteRtcpPort");
  doc = t38_doc();
  json_object_set_new(term(doc, 1), "rtcpMux", json_true());
  iqtest_refused(doc, "/terminations/1/rtcpMux");
  doc = t38_doc();
  json_object_set_new(term(doc, 1), "dtls", json_object());
  iqtest_refused(doc, "/terminations/1/dtls");
  doc = t38_doc();
  json_object_set_new(term(doc, 0), "dataChannel", json_object());
  iqtest_refused(doc, "/terminations/0/dataChannel");
  /* A certificate of no known kind; a bad fingerprint. */
  doc = t38_doc();
  json_object_set_new(dtls(doc), "certificate", json_string("dsa"));
  iqtest_refused(doc, "/terminations/0/dtls/certificate");
  doc = t38_doc();
  json_object_set_new(dtls(doc), "remoteFingerprints",
                      json_pack("[s]", "sha-256 zz"));
  iqtest_refused(doc, "/terminations/0/dtls/remoteFingerprints/0");
}

static int check_patch(json_t *prev_doc, json_t *next_doc,
                       struct dcmf_agwiq_change *ch, struct dcmf_problem *p) {
  struct dcmf_agwiq prev, next;
  iqtest_parse_ok(prev_doc, &prev);
  iqtest_parse_ok(next_doc, &next);
  memset(p, 0, sizeof(*p));
  int rv = dcmf_agwiq_patch_check(&prev, &next, ch, p);
  json_decref(prev_doc);
  json_decref(next_doc);
  return rv;
}

static void test_reoffer(void **state) {
  (void)state;
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p;
  /* Unchanged fingerprints, tls-id and transport: the association
   * stays. */
  assert_int_equal(check_patch(t38_doc(), t38_doc(), &ch, &p), 0);
  assert_false(ch.new_association || ch.fingerprint_arrived ||
               ch.role_changed);
  /* A new tls-id with a new fingerprint: a new association. */
  json_t *next = t38_doc();
  json_object_set_new(dtls(next), "tlsId", json_string(TLS_ID_B));
  json_object_set_new(dtls(next), "remoteFingerprints",
                      json_pack("[s]", FP256B));
  assert_int_equal(check_patch(t38_doc(), next, &ch, &p), 0);
  assert_true(ch.new_association);
  /* A new fingerprint under the same tls-id is refused. */
  next = t38_doc();
  json_object_set_new(dtls(next), "remoteFingerprints",
                      json_pack("[s]", FP256B));
  assert_int_equal(check_patch(t38_doc(), next, &ch, &p), DCMF_ERR_INVALID);
  iqtest_names(&p, "/terminations/0/dtls/remoteFingerprints");
  /* The certificate was answered in the fingerprint: it stays. */
  next = t38_doc();
  json_object_set_new(dtls(next), "certificate", json_string("ecdsa"));
  assert_int_equal(check_patch(t38_doc(), next, &ch, &p), DCMF_ERR_INVALID);
  iqtest_names(&p, "/terminations/0/dtls/certificate");
  /* The transport cannot change. */
  next = t38_doc();
  json_object_set_new(term(next, 0), "transport", json_string("UDP"));
  json_object_del(term(next, 0), "dtls");
  struct dcmf_agwiq prev, nx;
  json_t *prev_doc = t38_doc();
  iqtest_parse_ok(prev_doc, &prev);
  iqtest_parse_ok(next, &nx);
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_agwiq_patch_check(&prev, &nx, &ch, &p),
                   DCMF_ERR_INVALID);
  iqtest_names(&p, "/terminations/0/transport");
  json_decref(prev_doc);
  json_decref(next);
  /* The AGW offered actpass (core offer): the UE's answer sets setup
   * and establish once, with its fingerprint. */
  json_t *offer = t38_doc();
  json_object_set_new(dtls(offer), "setup", json_string("actpass"));
  json_object_del(dtls(offer), "remoteFingerprints");
  json_object_del(dtls(offer), "tlsId");
  next = t38_doc();
  json_object_set_new(dtls(next), "setup", json_string("passive"));
  json_object_set_new(dtls(next), "establish", json_true());
  assert_int_equal(check_patch(offer, next, &ch, &p), 0);
  assert_true(ch.fingerprint_arrived);
  assert_true(ch.role_changed);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_t38_context),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_reoffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
