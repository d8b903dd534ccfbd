/* Unit tests for MediaContext validation and normalisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "mediactx.h"

static const char valid_doc[] =
    "{\"terminations\":[{\"terminationId\":\"ue-a\",\"medias\":[{"
    "\"mediaId\":\"m2\",\"mediaResourceType\":\"DC\","
    "\"remoteMbEndpoint\":{\"ip\":{\"ipv4Addr\":\"192.0.2.7\"},"
    "\"transport\":\"UDP\",\"portNumber\":40000},"
    "\"dcMedia\":{\"mediaProxyConfig\":\"HTTP\",\"streams\":{"
    "\"0\":{\"streamId\":0,\"subprotocol\":\"http\",\"order\":true}},"
    "\"remoteDcEndpoint\":{\"sctpPort\":5000,\"fingerprint\":\"sha-256 "
    "0f:3a:0f:3a:0f:3a:0f:3a:0f:3a:0f:3a:0f:3a:0f:3a:0f:3a:0f:3a:0f:3a:0f:"
    "3a:0f:3a:0f:3a:0f:3a:0f:3a\",\"tlsId\":\" abc3de65cddef001be82\"},"
    "\"securitySetup\":\"ACTPASS\"}}]}]}";

static json_t *load(const char *text) {
  json_error_t e;
  json_t *doc = json_loads(text, JSON_DECODE_ANY, &e);
  assert_non_null(doc);
  return doc;
}

/* Applies |mutation| (a JSON Patch) to the valid document, validates it
 * and checks that exactly one invalid param names |param|. */
static void expect_invalid(const char *pointer, const char *value_json,
                           const char *param) {
  json_t *doc = load(valid_doc);
  json_t *value = value_json ? load(value_json) : NULL;
  /* Walk to the parent and set or delete the last member. */
  char path[256];
  snprintf(path, sizeof(path), "%s", pointer);
  char *last = strrchr(path, '/');
  *last = '\0';
  json_t *parent = doc;
  char *save = NULL;
  for (char *tok = strtok_r(path, "/", &save); tok;
       tok = strtok_r(NULL, "/", &save)) {
    parent = json_is_array(parent) ? json_array_get(parent, (size_t)atoi(tok))
                                   : json_object_get(parent, tok);
    assert_non_null(parent);
  }
  if (value != NULL) {
    json_object_set_new(parent, last + 1, value);
  } else {
    json_object_del(parent, last + 1);
  }
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_mediactx_validate(doc, &p), DCMF_ERR_INVALID);
  int found = 0;
  for (size_t i = 0; i < p.n_invalid; i++) {
    if (strcmp(p.invalid[i].param, param) == 0) {
      found = 1;
    }
  }
  if (!found) {
    fail_msg("no invalid param %s (first: %s: %s)", param,
             p.n_invalid ? p.invalid[0].param : "-",
             p.n_invalid ? p.invalid[0].reason : "-");
  }
  json_decref(doc);
}

#define M "/terminations/0/medias/0"
#define DC M "/dcMedia"

static void test_valid_document_passes(void **state) {
  (void)state;
  json_t *doc = load(valid_doc);
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_mediactx_normalise(doc), 0);
  assert_int_equal(dcmf_mediactx_validate(doc, &p), 0);
  assert_int_equal(p.n_invalid, 0);
  json_decref(doc);
}

static void test_normalise_fingerprint_and_tls_id(void **state) {
  (void)state;
  json_t *doc = load(valid_doc);
  assert_int_equal(dcmf_mediactx_normalise(doc), 0);
  json_t *ep = json_object_get(
      json_object_get(json_array_get(json_object_get(json_array_get(
                                         json_object_get(doc, "terminations"),
                                         0),
                                     "medias"),
                                     0),
                      "dcMedia"),
      "remoteDcEndpoint");
  const char *fp = json_string_value(json_object_get(ep, "fingerprint"));
  assert_non_null(fp);
  assert_true(strncmp(fp, "SHA-256 0F:3A:", 14) == 0);
  assert_string_equal(json_string_value(json_object_get(ep, "tlsId")),
                      "abc3de65cddef001be82");
  json_decref(doc);
}

static void test_missing_and_wrong_types(void **state) {
  (void)state;
  expect_invalid("/terminations", NULL, "/terminations");
  expect_invalid("/terminations", "{}", "/terminations");
  expect_invalid("/terminations", "[]", "/terminations");
  expect_invalid(M "/mediaId", "7", M "/mediaId");
  expect_invalid(M "/mediaId", NULL, M "/mediaId");
  expect_invalid(M "/mediaResourceType", "\"AUDIO\"", M "/mediaResourceType");
  expect_invalid(M "/dcMedia", NULL, M "/dcMedia");
  expect_invalid("/terminations/0/medias", "[]", "/terminations/0/medias");
  expect_invalid("/terminations/0/terminationId", "\"\"",
                 "/terminations/0/terminationId");
}

static void test_endpoints(void **state) {
  (void)state;
  expect_invalid(M "/remoteMbEndpoint/portNumber", "70000",
                 M "/remoteMbEndpoint/portNumber");
  expect_invalid(M "/remoteMbEndpoint/portNumber", "\"80\"",
                 M "/remoteMbEndpoint/portNumber");
  expect_invalid(M "/remoteMbEndpoint/ip/ipv4Addr", "\"1.2.3\"",
                 M "/remoteMbEndpoint/ip/ipv4Addr");
  expect_invalid(M "/remoteMbEndpoint/ip/ipv6Addr", "\"::1\"",
                 M "/remoteMbEndpoint/ip");
  expect_invalid(M "/remoteMbEndpoint/ip/ipv4Addr", NULL,
                 M "/remoteMbEndpoint/ip");
  expect_invalid(M "/remoteMbEndpoint/transport", NULL,
                 M "/remoteMbEndpoint/transport");
  expect_invalid(DC "/remoteMdc1Endpoint",
                 "{\"ip\":{\"ipv6Prefix\":\"2001:db8::/200\"},"
                 "\"transport\":\"TCP\",\"portNumber\":1}",
                 DC "/remoteMdc1Endpoint/ip/ipv6Prefix");
}

static void test_dc_media(void **state) {
  (void)state;
  expect_invalid(DC "/streams", "{}", DC "/streams");
  expect_invalid(DC "/streams/abc", "{}", DC "/streams/abc");
  expect_invalid(DC "/streams/070", "{}", DC "/streams/070");
  expect_invalid(DC "/streams/70000", "{}", DC "/streams/70000");
  expect_invalid(DC "/streams/5", "{\"streamId\":6}", DC "/streams/5/streamId");
  expect_invalid(DC "/streams/5", "{\"maxRetry\":1,\"maxTime\":2}",
                 DC "/streams/5");
  expect_invalid(DC "/streams/5", "{\"order\":1}", DC "/streams/5/order");
  expect_invalid(DC "/securitySetup", "\"HOLDCONN\"", DC "/securitySetup");
  expect_invalid(DC "/mediaProxyConfig", "\"TCP\"", DC "/mediaProxyConfig");
  expect_invalid(DC "/mdc2Protocol", "\"QUIC\"", DC "/mdc2Protocol");
  expect_invalid(DC "/maxMessageSize", "65", DC "/maxMessageSize");
  expect_invalid(DC "/maxMessageSize", "0", DC "/maxMessageSize");
  expect_invalid(DC "/replaceHttpUrl", "{}", DC "/replaceHttpUrl");
  expect_invalid(DC "/replaceHttpUrl",
                 "{\"0\":{\"replaceHttpUrl\":\"ftp://x\"}}",
                 DC "/replaceHttpUrl/0/replaceHttpUrl");
  expect_invalid(DC "/replaceHttpUrl", "{\"0\":{}}",
                 DC "/replaceHttpUrl/0/replaceHttpUrl");
}

/* UDP-proxy mode relays messages as datagrams: any MDC2 protocol but
 * UDP is refused rather than silently treated as UDP. */
static void test_udp_mode_mdc2_protocol(void **state) {
  (void)state;
  const char *protos[] = {"UDP", "UDP/DTLS/SCTP"};
  for (int i = 0; i < 2; i++) {
    json_t *doc = load(valid_doc);
    json_t *dc = json_object_get(
        json_array_get(json_object_get(json_array_get(json_object_get(
                                           doc, "terminations"), 0),
                                       "medias"),
                       0),
        "dcMedia");
    json_object_set_new(dc, "mediaProxyConfig", json_string("UDP"));
    json_object_set_new(dc, "mdc2Protocol", json_string(protos[i]));
    struct dcmf_problem p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(dcmf_mediactx_normalise(doc), 0);
    int rv = dcmf_mediactx_validate(doc, &p);
    if (i == 0) {
      if (rv != 0) {
        fail_msg("%s: %s", p.n_invalid ? p.invalid[0].param : "-",
                 p.n_invalid ? p.invalid[0].reason : p.detail);
      }
    } else {
      assert_int_equal(rv, DCMF_ERR_INVALID);
      assert_int_equal(p.n_invalid, 1);
      assert_string_equal(p.invalid[0].param, DC "/mdc2Protocol");
    }
    json_decref(doc);
  }
}

/* dcMedia.dcRelay must name another DC media of the context, and every
 * media joins at most one other. */
static void test_dc_relay(void **state) {
  (void)state;
  static const char two[] =
      "{\"terminations\":["
      "{\"terminationId\":\"ue-a\",\"medias\":[{\"mediaId\":\"1\","
      "\"mediaResourceType\":\"DC\",\"dcMedia\":{\"streams\":{\"1000\":{}}}}]},"
      "{\"terminationId\":\"ue-b\",\"medias\":[{\"mediaId\":\"1\","
      "\"mediaResourceType\":\"DC\",\"dcMedia\":{\"streams\":{\"1000\":{}}}}]},"
      "{\"terminationId\":\"ue-c\",\"medias\":[{\"mediaId\":\"1\","
      "\"mediaResourceType\":\"DC\",\"dcMedia\":{\"streams\":{\"1000\":{}}}}]}"
      "]}";
  struct {
    const char *from, *to_term, *to_media; /* a dcRelay to set */
    const char *from2, *to_term2;          /* and a second one, or NULL */
    const char *bad;                       /* expected param, NULL: valid */
  } cases[] = {
      {"0", "ue-b", "1", NULL, NULL, NULL},
      {"0", "ue-b", "1", "1", "ue-a", NULL}, /* both sides say it */
      {"0", "ue-a", "1", NULL, NULL,
       "/terminations/0/medias/0/dcMedia/dcRelay"}, /* itself */
      {"0", "ue-z", "1", NULL, NULL,
       "/terminations/0/medias/0/dcMedia/dcRelay"}, /* no such media */
      {"0", "ue-b", "2", NULL, NULL,
       "/terminations/0/medias/0/dcMedia/dcRelay"},
      {"0", "ue-b", "1", "2", "ue-b",
       "/terminations/1/medias/0"}, /* ue-b in two joins */
      {"0", "ue-b", "1", "1", "ue-c",
       "/terminations/0/medias/0/dcMedia/dcRelay"}, /* b goes elsewhere */
  };
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    json_t *doc = load(two);
    json_t *terms = json_object_get(doc, "terminations");
    const char *froms[2] = {cases[c].from, cases[c].from2};
    const char *tos[2] = {cases[c].to_term, cases[c].to_term2};
    const char *mids[2] = {cases[c].to_media, "1"};
    for (int k = 0; k < 2; k++) {
      if (froms[k] == NULL) {
        continue;
      }
      json_t *dc = json_object_get(
          json_array_get(json_object_get(json_array_get(terms, (size_t)atoi(
                                                                   froms[k])),
                                         "medias"),
                         0),
          "dcMedia");
      json_object_set_new(dc, "dcRelay",
                          json_pack("{s:s, s:s}", "terminationId", tos[k],
                                    "mediaId", mids[k]));
    }
    struct dcmf_problem p;
    memset(&p, 0, sizeof(p));
    int rv = dcmf_mediactx_validate(doc, &p);
    if (cases[c].bad == NULL) {
      if (rv != 0) {
        fail_msg("case %zu: %s: %s", c, p.n_invalid ? p.invalid[0].param : "-",
                 p.n_invalid ? p.invalid[0].reason : "-");
      }
    } else {
      int found = 0;
      for (size_t i = 0; i < p.n_invalid; i++) {
        found |= strcmp(p.invalid[i].param, cases[c].bad) == 0;
      }
      if (rv != DCMF_ERR_INVALID || !found) {
        fail_msg("case %zu: want %s, got %s", c, cases[c].bad,
                 p.n_invalid ? p.invalid[0].param : "valid");
      }
    }
    json_decref(doc);
  }
}

static void test_security_fields(void **state) {
  (void)state;
  expect_invalid(DC "/remoteDcEndpoint/fingerprint", "\"SHA-256 00:11\"",
                 DC "/remoteDcEndpoint/fingerprint");
  expect_invalid(DC "/remoteDcEndpoint/fingerprint", "\"FOO-1 00:11\"",
                 DC "/remoteDcEndpoint/fingerprint");
  expect_invalid(DC "/remoteDcEndpoint/tlsId", "\"short\"",
                 DC "/remoteDcEndpoint/tlsId");
  expect_invalid(DC "/remoteDcEndpoint/sctpPort", "-1",
                 DC "/remoteDcEndpoint/sctpPort");
  expect_invalid(M "/remoteIceInfo", "{\"ufrag\":\"abcd\",\"pwd\":\"short\"}",
                 M "/remoteIceInfo/pwd");
  expect_invalid(M "/remoteIceInfo", "{\"pwd\":\"4mK2yQvZ0pL9sT6wR1nB3c\"}",
                 M "/remoteIceInfo/ufrag");
  expect_invalid("/eventNotifyUri", "\"mailto:x@y\"", "/eventNotifyUri");
}

static void test_duplicates(void **state) {
  (void)state;
  json_t *doc = load(valid_doc);
  json_t *terms = json_object_get(doc, "terminations");
  json_array_append_new(terms, json_deep_copy(json_array_get(terms, 0)));
  json_t *medias =
      json_object_get(json_array_get(terms, 0), "medias");
  json_array_append_new(medias, json_deep_copy(json_array_get(medias, 0)));
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_mediactx_validate(doc, &p), DCMF_ERR_INVALID);
  int term = 0, media = 0;
  for (size_t i = 0; i < p.n_invalid; i++) {
    term |= strcmp(p.invalid[i].param, "/terminations/1/terminationId") == 0;
    media |= strcmp(p.invalid[i].param, "/terminations/0/medias/1/mediaId") ==
             0;
  }
  assert_true(term);
  assert_true(media);
  json_decref(doc);
}

static void test_unknown_members_are_accepted(void **state) {
  (void)state;
  json_t *doc = load(valid_doc);
  json_object_set_new(doc, "vendorExtension", json_pack("{s:i}", "any", 1));
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_mediactx_normalise(doc), 0);
  assert_int_equal(dcmf_mediactx_validate(doc, &p), 0);
  assert_non_null(json_object_get(doc, "vendorExtension"));
  json_decref(doc);
}

/* A client generated from the TS 29.176 OpenAPI sends every default:
 * maxRetry 0 and maxTime 0 side by side, priority 256, and optional
 * members dcmfd does not act on. 0 means "no limit", so this passes. */
static void test_official_defaults_are_accepted(void **state) {
  (void)state;
  json_t *doc = load(valid_doc);
  json_t *media = json_array_get(
      json_object_get(json_array_get(json_object_get(doc, "terminations"), 0),
                      "medias"),
      0);
  json_t *streams =
      json_object_get(json_object_get(media, "dcMedia"), "streams");
  json_object_set_new(streams, "10",
                      json_pack("{s:i, s:s, s:b, s:i, s:i, s:i, s:s}",
                                "streamId", 10, "subprotocol", "http", "order",
                                1, "maxRetry", 0, "maxTime", 0, "priority", 256,
                                "appBindingInfo", "app-1"));
  json_object_set_new(streams, "1000",
                      json_pack("{s:i, s:i, s:i}", "streamId", 1000, "maxRetry",
                                3, "maxTime", 0));
  json_object_set_new(streams, "1002",
                      json_pack("{s:i, s:i, s:i}", "streamId", 1002, "maxRetry",
                                0, "maxTime", 150));
  json_object_set_new(media, "arMedia",
                      json_pack("{s:s}", "mediaProcessingSpec", "spec-1"));
  json_object_set_new(media, "mediaProcessingUri",
                      json_string("http://mp.example/x"));
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  assert_int_equal(dcmf_mediactx_normalise(doc), 0);
  assert_int_equal(dcmf_mediactx_validate(doc, &p), 0);
  json_decref(doc);
  /* Two non-zero limits still conflict; a malformed ArMedia is named. */
  expect_invalid(DC "/streams/5", "{\"maxRetry\":1,\"maxTime\":2}",
                 DC "/streams/5");
  expect_invalid(M "/arMedia", "\"spec\"", M "/arMedia");
  expect_invalid(M "/arMedia", "{\"mediaProcessingSpec\":1}",
                 M "/arMedia/mediaProcessingSpec");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_document_passes),
      cmocka_unit_test(test_normalise_fingerprint_and_tls_id),
      cmocka_unit_test(test_missing_and_wrong_types),
      cmocka_unit_test(test_endpoints),
      cmocka_unit_test(test_dc_media),
      cmocka_unit_test(test_udp_mode_mdc2_protocol),
      cmocka_unit_test(test_dc_relay),
      cmocka_unit_test(test_security_fields),
      cmocka_unit_test(test_duplicates),
      cmocka_unit_test(test_unknown_members_are_accepted),
      cmocka_unit_test(test_official_defaults_are_accepted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
