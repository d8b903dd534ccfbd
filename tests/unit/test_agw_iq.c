/*
 * Unit tests for the Iq information elements of an e2ae AGW context
 * (agw-shim/api/agwiq.h): the happy paths, every refusal with the JSON
 * Pointer it names, and the PATCH rules (fingerprint later, tls-id
 * renewal, ICE restart, core RTCP change; transport and role changes
 * refused).
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
  "SHA-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:"       \
  "44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
#define FP1 "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"
#define TLSID1 "abcdefghijklmnopqrstuvwx"
#define TLSID2 "ABCDEFGHIJKLMNOPQRSTUVWX"
#define PWD1 "abcdefghijklmnopqrstuvwxyz"
#define PWD2 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* A full e2ae context; the tests edit it with json_object_set. */
static json_t *e2ae_doc(void) {
  return iqtest_doc(
      "{\"terminations\": ["
      " {\"terminationId\": \"access\", \"transport\": \"UDP/TLS/RTP/SAVPF\","
      "  \"rtcpMux\": true,"
      "  \"dtls\": {\"remoteFingerprints\": [\"" FP256 "\"],"
      "            \"setup\": \"actpass\", \"tlsId\": \"" TLSID1 "\"},"
      "  \"ice\": {\"remoteUfrag\": \"ufrA\", \"remotePwd\": \"" PWD1 "\"},"
      "  \"notifyUri\": \"http://127.0.0.1:8080/events\"},"
      " {\"terminationId\": \"core\", \"transport\": \"RTP/AVP\","
      "  \"remote\": {\"ipv4Addr\": \"127.0.0.2\", \"port\": 4000}}]}");
}

static json_t *dtls(json_t *doc) {
  return json_object_get(iqtest_term(doc, 0), "dtls");
}

static json_t *ice(json_t *doc) {
  return json_object_get(iqtest_term(doc, 0), "ice");
}

/* Parses |doc| (consumed) expecting a refusal that names |param|. */
static void expect_refused(json_t *doc, const char *param) {
  struct dcmf_problem p = iqtest_refused(doc, param);
  assert_string_equal(p.cause, "MANDATORY_IE_INCORRECT");
}

static void test_full_context(void **state) {
  (void)state;
  json_t *doc = e2ae_doc();
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_true(iq.e2ae);
  assert_int_equal(iq.transport[0], DCMF_AGWIQ_SAVPF);
  assert_int_equal(iq.transport[1], DCMF_AGWIQ_AVP);
  assert_int_equal(iq.remote_fp.count, 1);
  assert_int_equal(iq.remote_fp.items[0].hash, DCMF_HASH_SHA256);
  assert_int_equal(iq.remote_fp.items[0].value[0], 0xab);
  assert_int_equal(iq.local_fp_hash, DCMF_HASH_SHA256);
  assert_int_equal(iq.setup, DCMF_AGWIQ_SETUP_ACTPASS);
  assert_int_equal(iq.role, DCMF_AGWIQ_ROLE_SERVER);
  assert_false(iq.establish);
  assert_string_equal(iq.tls_id, TLSID1);
  assert_string_equal(iq.ice_ufrag, "ufrA");
  assert_string_equal(iq.ice_pwd, PWD1);
  assert_string_equal(iq.notify_uri, "http://127.0.0.1:8080/events");
  assert_false(iq.core_rtcp_mux);
  assert_int_equal(iq.core_rtcp_port, 0);
  assert_string_equal(dcmf_agwiq_transport_name(iq.transport[0]),
                      "UDP/TLS/RTP/SAVPF");
  json_decref(doc);
}

/* Terminations are found by terminationId, not by position. */
static void test_order_and_minimal(void **state) {
  (void)state;
  json_t *doc = json_loads(
      "{\"terminations\": ["
      " {\"terminationId\": \"core\", \"transport\": \"RTP/AVPF\","
      "  \"rtcpMux\": true},"
      " {\"terminationId\": \"access\", \"transport\": \"UDP/TLS/RTP/SAVP\","
      "  \"dtls\": {\"setup\": \"passive\", \"establish\": true}}]}",
      0, NULL);
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.index[0], 1);
  assert_int_equal(iq.index[1], 0);
  assert_int_equal(iq.transport[0], DCMF_AGWIQ_SAVP);
  assert_int_equal(iq.transport[1], DCMF_AGWIQ_AVPF);
  assert_int_equal(iq.remote_fp.count, 0); /* held until a PATCH */
  assert_int_equal(iq.role, DCMF_AGWIQ_ROLE_CLIENT);
  assert_true(iq.establish);
  assert_true(iq.core_rtcp_mux);
  assert_string_equal(iq.ice_ufrag, "");
  json_decref(doc);
}

static void test_relay_context_untouched(void **state) {
  (void)state;
  json_t *doc =
      json_loads("{\"terminations\": [{\"terminationId\": \"access\"},"
                 " {\"terminationId\": \"core\", \"transport\": \"UDP\"}]}",
                 0, NULL);
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_false(iq.e2ae);
  assert_int_equal(iq.transport[0], DCMF_AGWIQ_UDP);
  json_decref(doc);
}

static void test_several_fingerprints_any_hash(void **state) {
  (void)state;
  json_t *doc = e2ae_doc();
  json_object_set_new(dtls(doc), "remoteFingerprints",
                      json_pack("[s, s]", FP1, FP256B));
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.remote_fp.count, 2);
  assert_int_equal(iq.remote_fp.items[0].hash, DCMF_HASH_SHA1);
  /* The reply answers in the peer's hash (its first fingerprint's). */
  assert_int_equal(iq.local_fp_hash, DCMF_HASH_SHA1);
  json_object_set_new(dtls(doc), "localFingerprintHash",
                      json_string("SHA-512"));
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.local_fp_hash, DCMF_HASH_SHA512);
  json_decref(doc);
}

static void test_core_rtcp_port(void **state) {
  (void)state;
  json_t *doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 1), "remoteRtcpPort",
                      json_integer(4005));
  struct dcmf_agwiq iq;
  iqtest_parse_ok(doc, &iq);
  assert_int_equal(iq.core_rtcp_port, 4005);
  json_decref(doc);
  /* Remote port 65535 without a=rtcp: RTP + 1 does not exist. */
  doc = e2ae_doc();
  json_object_set_new(json_object_get(iqtest_term(doc, 1), "remote"), "port",
                      json_integer(65535));
  expect_refused(doc, "/terminations/1/remoteRtcpPort");
  doc = e2ae_doc(); /* with rtcp-mux or an RTCP port it is fine */
  json_object_set_new(json_object_get(iqtest_term(doc, 1), "remote"), "port",
                      json_integer(65535));
  json_object_set_new(iqtest_term(doc, 1), "remoteRtcpPort",
                      json_integer(4005));
  iqtest_parse_ok(doc, &iq);
  json_object_del(iqtest_term(doc, 1), "remoteRtcpPort");
  json_object_set_new(iqtest_term(doc, 1), "rtcpMux", json_true());
  iqtest_parse_ok(doc, &iq);
  json_decref(doc);
}

/* Every refusal names its member. */
static void test_refused_transports(void **state) {
  (void)state;
  json_t *doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 0), "transport", json_string("RTP/AVP"));
  expect_refused(doc, "/terminations/0/transport");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 1), "transport",
                      json_string("UDP/TLS/RTP/SAVP"));
  expect_refused(doc, "/terminations/1/transport");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 1), "transport", json_integer(3));
  expect_refused(doc, "/terminations/1/transport");
  /* Mixed relay and e2ae: both sides are named. */
  for (int s = 0; s < 2; s++) {
    for (int named = 0; named < 2; named++) {
      doc = e2ae_doc();
      json_object_del(iqtest_term(doc, (size_t)s), "transport"); /* UDP */
      expect_refused(doc, named ? "/terminations/1/transport"
                                : "/terminations/0/transport");
    }
  }
}

static void test_refused_iq_on_relay(void **state) {
  (void)state;
  json_t *doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 0), "transport", json_string("UDP"));
  json_object_set_new(iqtest_term(doc, 1), "transport", json_string("UDP"));
  json_object_set_new(iqtest_term(doc, 1), "rtcpMux", json_true());
  struct dcmf_agwiq iq;
  struct dcmf_problem p = {0};
  assert_int_equal(dcmf_agwiq_parse(doc, &iq, &p), DCMF_ERR_INVALID);
  /* dtls, ice, notifyUri, rtcpMux on access; rtcpMux on core. */
  assert_int_equal(p.n_invalid, 5);
  assert_string_equal(p.invalid[0].param, "/terminations/0/dtls");
  assert_string_equal(p.invalid[4].param, "/terminations/1/rtcpMux");
  json_decref(doc);
}

static void test_refused_wrong_side(void **state) {
  (void)state;
  json_t *doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 1), "dtls", json_object());
  expect_refused(doc, "/terminations/1/dtls");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 1), "notifyUri",
                      json_string("http://a/"));
  expect_refused(doc, "/terminations/1/notifyUri");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 0), "remoteRtcpPort", json_integer(5));
  expect_refused(doc, "/terminations/0/remoteRtcpPort");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 0), "rtcpMux", json_false());
  expect_refused(doc, "/terminations/0/rtcpMux");
}

static void test_refused_core_rtcp(void **state) {
  (void)state;
  json_t *doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 1), "rtcpMux", json_true());
  json_object_set_new(iqtest_term(doc, 1), "remoteRtcpPort",
                      json_integer(4001));
  expect_refused(doc, "/terminations/1/remoteRtcpPort");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 1), "remoteRtcpPort",
                      json_integer(65536));
  expect_refused(doc, "/terminations/1/remoteRtcpPort");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 1), "remoteRtcpPort",
                      json_string("4001"));
  expect_refused(doc, "/terminations/1/remoteRtcpPort");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 1), "rtcpMux", json_string("yes"));
  expect_refused(doc, "/terminations/1/rtcpMux");
}

static void test_refused_dtls(void **state) {
  (void)state;
  json_t *doc = e2ae_doc();
  json_object_del(iqtest_term(doc, 0), "dtls");
  expect_refused(doc, "/terminations/0/dtls");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 0), "dtls", json_string("x"));
  expect_refused(doc, "/terminations/0/dtls");
  doc = e2ae_doc();
  json_object_set_new(dtls(doc), "colour", json_true());
  expect_refused(doc, "/terminations/0/dtls/colour");
  doc = e2ae_doc();
  json_object_set_new(ice(doc), "a/b~c", json_true());
  expect_refused(doc, "/terminations/0/ice/a~1b~0c");
  doc = e2ae_doc();
  json_object_set_new(dtls(doc), "remoteFingerprints", json_array());
  expect_refused(doc, "/terminations/0/dtls/remoteFingerprints");
  doc = e2ae_doc();
  json_object_set_new(dtls(doc), "remoteFingerprints", json_string(FP256));
  expect_refused(doc, "/terminations/0/dtls/remoteFingerprints");
  doc = e2ae_doc(); /* wrong length for the hash */
  json_object_set_new(dtls(doc), "remoteFingerprints",
                      json_pack("[s, s]", FP256, "sha-256 AB:CD"));
  expect_refused(doc, "/terminations/0/dtls/remoteFingerprints/1");
  doc = e2ae_doc(); /* two in one string: one per element */
  json_object_set_new(dtls(doc), "remoteFingerprints",
                      json_pack("[s]", FP256 ", " FP1));
  expect_refused(doc, "/terminations/0/dtls/remoteFingerprints/0");
  doc = e2ae_doc();
  json_object_set_new(dtls(doc), "remoteFingerprints",
                      json_pack("[s,s,s,s,s,s,s,s,s]", FP1, FP1, FP1, FP1, FP1,
                                FP1, FP1, FP1, FP1));
  expect_refused(doc, "/terminations/0/dtls/remoteFingerprints/8");
  doc = e2ae_doc();
  json_object_set_new(dtls(doc), "localFingerprintHash", json_string("md5"));
  expect_refused(doc, "/terminations/0/dtls/localFingerprintHash");
  doc = e2ae_doc();
  json_object_del(dtls(doc), "setup");
  expect_refused(doc, "/terminations/0/dtls/setup");
  doc = e2ae_doc();
  json_object_set_new(dtls(doc), "setup", json_string("holdconn"));
  expect_refused(doc, "/terminations/0/dtls/setup");
  doc = e2ae_doc();
  json_object_set_new(dtls(doc), "establish", json_string("true"));
  expect_refused(doc, "/terminations/0/dtls/establish");
  doc = e2ae_doc(); /* both sides would be the DTLS client */
  json_object_set_new(dtls(doc), "setup", json_string("active"));
  json_object_set_new(dtls(doc), "establish", json_true());
  expect_refused(doc, "/terminations/0/dtls/establish");
  doc = e2ae_doc(); /* both sides would wait */
  json_object_set_new(dtls(doc), "setup", json_string("passive"));
  expect_refused(doc, "/terminations/0/dtls/establish");
  doc = e2ae_doc();
  json_object_set_new(dtls(doc), "tlsId", json_string("short"));
  expect_refused(doc, "/terminations/0/dtls/tlsId");
}

static void test_refused_ice_and_notify(void **state) {
  (void)state;
  json_t *doc = e2ae_doc();
  json_object_set_new(ice(doc), "localUfrag", json_string("mine"));
  expect_refused(doc, "/terminations/0/ice/localUfrag");
  doc = e2ae_doc();
  json_object_set_new(ice(doc), "remoteUfrag", json_string("a*b!"));
  expect_refused(doc, "/terminations/0/ice/remoteUfrag");
  doc = e2ae_doc();
  json_object_set_new(ice(doc), "remotePwd", json_string("tooshort"));
  expect_refused(doc, "/terminations/0/ice/remotePwd");
  doc = e2ae_doc();
  json_object_del(ice(doc), "remotePwd");
  expect_refused(doc, "/terminations/0/ice/remotePwd");
  doc = e2ae_doc();
  json_object_del(ice(doc), "remoteUfrag");
  expect_refused(doc, "/terminations/0/ice/remoteUfrag");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 0), "ice", json_array());
  expect_refused(doc, "/terminations/0/ice");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 0), "notifyUri",
                      json_string("ftp://x/"));
  expect_refused(doc, "/terminations/0/notifyUri");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 0), "notifyUri",
                      json_string("http://a b/"));
  expect_refused(doc, "/terminations/0/notifyUri");
  doc = e2ae_doc();
  json_object_set_new(iqtest_term(doc, 0), "notifyUri",
                      json_string("https://"));
  expect_refused(doc, "/terminations/0/notifyUri");
}

static void expect_patch_refused(json_t *before, json_t *after,
                                 const char *param) {
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p = {0};
  assert_int_equal(iqtest_patch(before, after, &ch, &p), DCMF_ERR_INVALID);
  assert_int_equal(p.status, 400);
  assert_true(p.n_invalid >= 1);
  assert_string_equal(p.invalid[0].param, param);
  assert_false(ch.new_association || ch.ice_restart || ch.fingerprint_arrived);
  json_decref(before);
  json_decref(after);
}

static void test_patch_fingerprint_later(void **state) {
  (void)state;
  json_t *before = e2ae_doc();
  json_object_del(dtls(before), "remoteFingerprints");
  json_t *after = e2ae_doc();
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p = {0};
  assert_int_equal(iqtest_patch(before, after, &ch, &p), 0);
  assert_true(ch.fingerprint_arrived);
  assert_false(ch.new_association);
  assert_false(ch.ice_restart);
  /* The same document again changes nothing. */
  assert_int_equal(iqtest_patch(after, after, &ch, &p), 0);
  assert_false(ch.fingerprint_arrived || ch.new_association || ch.ice_restart ||
               ch.ice_arrived || ch.core_rtcp_changed || ch.notify_changed);
  json_decref(before);
  json_decref(after);
}

static void test_patch_new_tls_id(void **state) {
  (void)state;
  json_t *before = e2ae_doc();
  json_t *after = e2ae_doc();
  json_object_set_new(dtls(after), "tlsId", json_string(TLSID2));
  json_object_set_new(dtls(after), "remoteFingerprints",
                      json_pack("[s]", FP256B));
  json_object_set_new(dtls(after), "setup", json_string("passive"));
  json_object_set_new(dtls(after), "establish", json_true());
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p = {0};
  assert_int_equal(iqtest_patch(before, after, &ch, &p), 0);
  assert_true(ch.new_association);
  assert_false(ch.fingerprint_arrived);
  json_decref(before);
  json_decref(after);
}

static void test_patch_ice_restart_and_core(void **state) {
  (void)state;
  json_t *before = e2ae_doc();
  json_t *after = e2ae_doc();
  json_object_set_new(ice(after), "remoteUfrag", json_string("ufrB"));
  json_object_set_new(ice(after), "remotePwd", json_string(PWD2));
  json_object_set_new(iqtest_term(after, 1), "remoteRtcpPort",
                      json_integer(4009));
  json_object_set_new(iqtest_term(after, 0), "notifyUri",
                      json_string("https://127.0.0.1/n"));
  struct dcmf_agwiq_change ch;
  struct dcmf_problem p = {0};
  assert_int_equal(iqtest_patch(before, after, &ch, &p), 0);
  assert_true(ch.ice_restart);
  assert_true(ch.core_rtcp_changed);
  assert_true(ch.notify_changed);
  assert_false(ch.new_association);
  json_decref(before);
  json_decref(after);
  /* Remote ICE credentials given later (UE-terminated call). */
  before = e2ae_doc();
  json_object_del(iqtest_term(before, 0), "ice");
  after = e2ae_doc();
  assert_int_equal(iqtest_patch(before, after, &ch, &p), 0);
  assert_true(ch.ice_arrived);
  assert_false(ch.ice_restart);
  json_decref(before);
  json_decref(after);
}

static void test_patch_refusals(void **state) {
  (void)state;
  json_t *after = e2ae_doc();
  json_object_set_new(iqtest_term(after, 0), "transport",
                      json_string("UDP/TLS/RTP/SAVP"));
  expect_patch_refused(e2ae_doc(), after, "/terminations/0/transport");
  after = e2ae_doc();
  json_object_set_new(iqtest_term(after, 1), "transport",
                      json_string("RTP/AVPF"));
  expect_patch_refused(e2ae_doc(), after, "/terminations/1/transport");
  after = e2ae_doc();
  json_object_set_new(dtls(after), "remoteFingerprints",
                      json_pack("[s]", FP256B));
  expect_patch_refused(e2ae_doc(), after,
                       "/terminations/0/dtls/remoteFingerprints");
  after = e2ae_doc();
  json_object_del(dtls(after), "remoteFingerprints");
  expect_patch_refused(e2ae_doc(), after,
                       "/terminations/0/dtls/remoteFingerprints");
  after = e2ae_doc();
  json_object_del(dtls(after), "tlsId");
  expect_patch_refused(e2ae_doc(), after, "/terminations/0/dtls/tlsId");
  after = e2ae_doc(); /* the role is sticky under the same tls-id */
  json_object_set_new(dtls(after), "setup", json_string("active"));
  expect_patch_refused(e2ae_doc(), after, "/terminations/0/dtls/setup");
  after = e2ae_doc();
  json_object_set_new(dtls(after), "establish", json_true());
  expect_patch_refused(e2ae_doc(), after, "/terminations/0/dtls/establish");
  after = e2ae_doc();
  json_object_set_new(dtls(after), "localFingerprintHash",
                      json_string("sha-384"));
  expect_patch_refused(e2ae_doc(), after,
                       "/terminations/0/dtls/localFingerprintHash");
  after = e2ae_doc();
  json_object_set_new(ice(after), "remoteUfrag", json_string("ufrB"));
  expect_patch_refused(e2ae_doc(), after, "/terminations/0/ice/remotePwd");
  after = e2ae_doc();
  json_object_set_new(ice(after), "remotePwd", json_string(PWD2));
  expect_patch_refused(e2ae_doc(), after, "/terminations/0/ice/remoteUfrag");
  after = e2ae_doc();
  json_object_del(iqtest_term(after, 0), "ice");
  expect_patch_refused(e2ae_doc(), after, "/terminations/0/ice");
}

/* UE-terminated (docs/e2ae.md): the POST offered actpass with nothing of
 * the association; the WIC's answer settles setup (and establish when it
 * answers passive) once, and the local fingerprint stays in the hash it
 * was answered in although the WIC's fingerprint uses another. */
static json_t *actpass_offer(void) {
  json_t *doc = e2ae_doc();
  json_object_del(dtls(doc), "remoteFingerprints");
  json_object_del(dtls(doc), "tlsId");
  json_object_del(iqtest_term(doc, 0), "ice");
  return doc;
}

static void test_patch_answer_to_actpass(void **state) {
  (void)state;
  static const char *const answers[2] = {"active", "passive"};
  for (int i = 0; i < 2; i++) {
    json_t *before = actpass_offer();
    json_t *after = e2ae_doc();
    json_object_set_new(dtls(after), "remoteFingerprints",
                        json_pack("[s]", FP1));
    json_object_set_new(dtls(after), "setup", json_string(answers[i]));
    if (i == 1) {
      json_object_set_new(dtls(after), "establish", json_true());
    }
    struct dcmf_agwiq a, b;
    struct dcmf_agwiq_change ch;
    struct dcmf_problem p = {0};
    iqtest_parse_ok(before, &a);
    iqtest_parse_ok(after, &b);
    assert_int_equal(b.local_fp_hash, DCMF_HASH_SHA1); /* derived */
    assert_int_equal(dcmf_agwiq_patch_check(&a, &b, &ch, &p), 0);
    assert_int_equal(b.local_fp_hash, DCMF_HASH_SHA256); /* kept */
    assert_true(ch.fingerprint_arrived);
    assert_false(ch.new_association);
    assert_int_equal(ch.role_changed, i == 1);
    assert_int_equal(b.role,
                     i == 1 ? DCMF_AGWIQ_ROLE_CLIENT : DCMF_AGWIQ_ROLE_SERVER);
    /* Once settled the role is sticky again. */
    json_t *again = e2ae_doc();
    json_object_set_new(dtls(again), "remoteFingerprints",
                        json_pack("[s]", FP1));
    json_object_set_new(dtls(again), "setup", json_string(answers[1 - i]));
    if (i == 0) {
      json_object_set_new(dtls(again), "establish", json_true());
    }
    expect_patch_refused(after, again, "/terminations/0/dtls/setup");
    json_decref(before);
  }
  /* A fingerprint already given (the association is known): sticky. */
  json_t *before = actpass_offer();
  json_object_set_new(dtls(before), "remoteFingerprints",
                      json_pack("[s]", FP256));
  json_t *after = json_deep_copy(before);
  json_object_set_new(dtls(after), "setup", json_string("active"));
  expect_patch_refused(before, after, "/terminations/0/dtls/setup");
  /* An explicit other hash is still refused. */
  before = actpass_offer();
  after = e2ae_doc();
  json_object_set_new(dtls(after), "localFingerprintHash",
                      json_string("sha-384"));
  expect_patch_refused(before, after,
                       "/terminations/0/dtls/localFingerprintHash");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_context),
      cmocka_unit_test(test_order_and_minimal),
      cmocka_unit_test(test_relay_context_untouched),
      cmocka_unit_test(test_several_fingerprints_any_hash),
      cmocka_unit_test(test_core_rtcp_port),
      cmocka_unit_test(test_refused_transports),
      cmocka_unit_test(test_refused_iq_on_relay),
      cmocka_unit_test(test_refused_wrong_side),
      cmocka_unit_test(test_refused_core_rtcp),
      cmocka_unit_test(test_refused_dtls),
      cmocka_unit_test(test_refused_ice_and_notify),
      cmocka_unit_test(test_patch_fingerprint_later),
      cmocka_unit_test(test_patch_new_tls_id),
      cmocka_unit_test(test_patch_ice_restart_and_core),
      cmocka_unit_test(test_patch_refusals),
      cmocka_unit_test(test_patch_answer_to_actpass),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
