/*
 * Unit tests for the control API router and the context registry, run in
 * memory with a fake port pool: every status code the API documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "fake_res.h"
#include "controller.h"

struct fixture {
  struct fake_res res;
  struct dcmf_registry *reg;
  struct dcmf_metrics metrics;
  struct dcmf_api api;
  struct dcmf_api_response resp;
  json_t *body; /* parsed resp body, or NULL */
};

static const char create_body[] =
    "{\"terminations\":[{\"terminationId\":\"ue-a\",\"medias\":[{"
    "\"mediaId\":\"m2\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
    "\"streams\":{\"0\":{\"subprotocol\":\"http\"}},"
    "\"remoteDcEndpoint\":{\"tlsId\":\"abc3de65cddef001be82\"},"
    "\"securitySetup\":\"%s\"}}]}]}";

static int setup_n(void **state, size_t ports, uint32_t max_contexts) {
  struct fixture *f = calloc(1, sizeof(*f));
  struct dcmf_resources res = fake_res_init(&f->res, 41000, ports);
  struct dcmf_registry_settings rs = {.advertise_addr = "192.0.2.1",
                                      .local_fingerprint = "SHA-256 AA:BB",
                                      .sctp_port = 5000,
                                      .max_contexts = max_contexts};
  assert_int_equal(dcmf_registry_new(&f->reg, &rs, &res), 0);
  f->api = (struct dcmf_api){.registry = f->reg, .metrics = &f->metrics};
  *state = f;
  return 0;
}

static int setup(void **state) {
  return setup_n(state, 8, 100);
}

static int setup_two_ports(void **state) {
  return setup_n(state, 2, 100);
}

static void reset(struct fixture *f) {
  dcmf_api_response_free(&f->resp);
  memset(&f->resp, 0, sizeof(f->resp));
  json_decref(f->body);
  f->body = NULL;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  reset(f);
  dcmf_registry_del(f->reg);
  assert_int_equal(f->res.in_use, 0); /* every port came back */
  free(f);
  return 0;
}

/* Sends one request with optional content-encoding and if-match fields
 * and parses the JSON answer; returns the status. */
static int call_h(struct fixture *f, const char *method, const char *path,
                  const char *type, const char *body, const char *encoding,
                  const char *if_match) {
  reset(f);
  struct dcmf_api_request req = {
      .method = method,
      .path = path,
      .scheme = "http",
      .authority = "127.0.0.1:8090",
      .content_type = type,
      .content_encoding = encoding,
      .if_match = if_match,
      .body = (const uint8_t *)body,
      .body_len = body ? strlen(body) : 0,
  };
  dcmf_api_handle(&f->api, &req, &f->resp);
  if (f->resp.body.len > 0 && f->resp.content_type &&
      strstr(f->resp.content_type, "json")) {
    f->body = json_loadb(f->resp.body.data, f->resp.body.len, 0, NULL);
    assert_non_null(f->body);
  }
  return f->resp.status;
}

static int call(struct fixture *f, const char *method, const char *path,
                const char *type, const char *body) {
  return call_h(f, method, path, type, body, NULL, NULL);
}

static const char *create(struct fixture *f, const char *setup_value,
                          char *path, size_t cap) {
  char body[1024];
  snprintf(body, sizeof(body), create_body, setup_value);
  assert_int_equal(call(f, "POST", "/nmf-mrm/v1/contexts", "application/json",
                        body),
                   201);
  snprintf(path, cap, "/nmf-mrm/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  return path;
}

static json_t *media0(json_t *doc) {
  return json_array_get(
      json_object_get(json_array_get(json_object_get(doc, "terminations"), 0),
                      "medias"),
      0);
}

static const char *dc_str(json_t *doc, const char *obj, const char *key) {
  json_t *dc = json_object_get(media0(doc), "dcMedia");
  json_t *o = obj ? json_object_get(dc, obj) : dc;
  return json_string_value(json_object_get(o, key));
}

static void assert_problem(struct fixture *f, int status) {
  assert_int_equal(f->resp.status, status);
  assert_string_equal(f->resp.content_type, "application/problem+json");
  assert_int_equal(json_integer_value(json_object_get(f->body, "status")),
                   status);
  assert_non_null(json_string_value(json_object_get(f->body, "title")));
  assert_non_null(json_string_value(json_object_get(f->body, "detail")));
}

static const char *first_param(struct fixture *f) {
  return json_string_value(json_object_get(
      json_array_get(json_object_get(f->body, "invalidParams"), 0), "param"));
}

static void test_create_fills_mf_values(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, "ACTPASS", path, sizeof(path));
  assert_int_equal(f->res.in_use, 1);
  const char *id = json_string_value(json_object_get(f->body, "contextId"));
  assert_int_equal(strlen(id), 36);
  char want[160];
  snprintf(want, sizeof(want), "http://127.0.0.1:8090/nmf-mrm/v1/contexts/%s",
           id);
  assert_string_equal(f->resp.location, want);
  json_t *m = media0(f->body);
  json_t *mb = json_object_get(m, "localMbEndpoint");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(mb, "ip"), "ipv4Addr")),
      "192.0.2.1");
  assert_string_equal(json_string_value(json_object_get(mb, "transport")),
                      "UDP");
  assert_int_equal(json_integer_value(json_object_get(mb, "portNumber")),
                   41000);
  json_t *ice = json_object_get(m, "localIceInfo");
  assert_int_equal(strlen(json_string_value(json_object_get(ice, "ufrag"))),
                   8);
  assert_int_equal(strlen(json_string_value(json_object_get(ice, "pwd"))), 24);
  assert_true(json_is_true(json_object_get(ice, "iceLite")));
  assert_string_equal(dc_str(f->body, "localDcEndpoint", "fingerprint"),
                      "SHA-256 AA:BB");
  assert_int_equal(strlen(dc_str(f->body, "localDcEndpoint", "tlsId")), 32);
  assert_string_equal(dc_str(f->body, NULL, "securitySetup"), "PASSIVE");
}

static void test_security_setup_mapping(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, "ACTIVE", path, sizeof(path));
  assert_string_equal(dc_str(f->body, NULL, "securitySetup"), "PASSIVE");
  create(f, "PASSIVE", path, sizeof(path));
  assert_string_equal(dc_str(f->body, NULL, "securitySetup"), "ACTIVE");
  /* A PATCH that leaves securitySetup alone keeps the MF's role. */
  assert_int_equal(call(f, "PATCH", path, "application/json-patch+json",
                        "[{\"op\":\"add\",\"path\":\"/x\",\"value\":1}]"),
                   200);
  assert_string_equal(dc_str(f->body, NULL, "securitySetup"), "ACTIVE");
  /* A new peer role is read as such. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/dcMedia/"
           "securitySetup\",\"value\":\"ACTPASS\"}]"),
      200);
  assert_string_equal(dc_str(f->body, NULL, "securitySetup"), "PASSIVE");
}

static void test_get_list_delete(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, "ACTPASS", path, sizeof(path));
  char *created = json_dumps(f->body, JSON_SORT_KEYS);
  assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
  char *got = json_dumps(f->body, JSON_SORT_KEYS);
  assert_string_equal(created, got);
  free(created);
  free(got);
  assert_int_equal(call(f, "GET", "/nmf-mrm/v1/contexts", NULL, NULL), 200);
  assert_int_equal(json_array_size(f->body), 1);
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  assert_int_equal(f->resp.body.len, 0);
  assert_int_equal(f->res.in_use, 0);
  assert_int_equal(call(f, "GET", path, NULL, NULL), 404);
  assert_problem(f, 404);
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 404);
}

static void test_request_errors(void **state) {
  struct fixture *f = *state;
  call(f, "POST", "/nmf-mrm/v1/contexts", "text/plain", "{}");
  assert_problem(f, 415);
  call(f, "POST", "/nmf-mrm/v1/contexts", "application/json", "{\"a\":");
  assert_problem(f, 400);
  assert_string_equal(json_string_value(json_object_get(f->body, "cause")),
                      "INVALID_MSG_FORMAT");
  call(f, "POST", "/nmf-mrm/v1/contexts", "application/json",
       "{\"a\":1,\"a\":2}");
  assert_problem(f, 400);
  call(f, "POST", "/nmf-mrm/v1/contexts", "application/json", "[]");
  assert_problem(f, 400);
  assert_string_equal(first_param(f), "/");
  call(f, "POST", "/nmf-mrm/v1/contexts", "Application/JSON; charset=utf-8",
       "{\"terminations\":7}");
  assert_problem(f, 400);
  assert_string_equal(first_param(f), "/terminations");
  call(f, "PUT", "/nmf-mrm/v1/contexts", "application/json", "{}");
  assert_problem(f, 405);
  assert_string_equal(f->resp.allow, "GET, HEAD, POST");
  call(f, "POST", "/nmf-mrm/v1/contexts/x", "application/json", "{}");
  assert_problem(f, 405);
  call(f, "GET", "/nmf-mrm/v2/contexts", NULL, NULL);
  assert_problem(f, 404);
  call(f, "GET", "/nmf-mrm/v1/contexts/a/b", NULL, NULL);
  assert_problem(f, 404);
  /* An encoded body is refused with the codings accepted (RFC 9110
   * 15.5.16); no content-length is needed, HTTP/2 ends a body itself. */
  assert_int_equal(call_h(f, "POST", "/nmf-mrm/v1/contexts", "application/json",
                          "{}", "gzip", NULL),
                   415);
  assert_problem(f, 415);
  assert_string_equal(first_param(f), "header content-encoding");
  assert_string_equal(f->resp.accept_encoding, "identity");
  assert_int_equal(call_h(f, "POST", "/nmf-mrm/v1/contexts", "application/json",
                          "{}", "identity, gzip", NULL),
                   415);
  assert_int_equal(call_h(f, "POST", "/nmf-mrm/v1/contexts", "application/json",
                          "{}", "Identity", NULL),
                   400); /* read and validated: no terminations */
  assert_string_equal(first_param(f), "/terminations");
  char longpath[700];
  memset(longpath, 'a', sizeof(longpath) - 1);
  longpath[0] = '/';
  longpath[sizeof(longpath) - 1] = '\0';
  call(f, "GET", longpath, NULL, NULL);
  assert_problem(f, 414);
  assert_int_equal(f->res.in_use, 0);
}

static void test_patch_media_lifecycle(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, "ACTPASS", path, sizeof(path));
  const char *old_tls = dc_str(f->body, "localDcEndpoint", "tlsId");
  char tls_before[64];
  snprintf(tls_before, sizeof(tls_before), "%s", old_tls);
  /* Add a second DC media: it gets its own port. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"add\",\"path\":\"/terminations/0/medias/-\",\"value\":"
           "{\"mediaId\":\"m3\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
           "\"streams\":{\"1000\":{}}}}}]"),
      200);
  assert_int_equal(f->res.in_use, 2);
  json_t *m3 = json_array_get(
      json_object_get(json_array_get(json_object_get(f->body, "terminations"),
                                     0),
                      "medias"),
      1);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(m3, "localMbEndpoint"), "portNumber")),
                   41001);
  /* The remote fingerprint arrives normalised; tlsId is unchanged. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"add\",\"path\":\"/terminations/0/medias/0/dcMedia/"
           "remoteDcEndpoint/fingerprint\",\"value\":\"sha-1 "
           "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33\"}]"),
      200);
  assert_string_equal(
      dc_str(f->body, "remoteDcEndpoint", "fingerprint"),
      "SHA-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33");
  assert_string_equal(dc_str(f->body, "localDcEndpoint", "tlsId"), tls_before);
  /* A new remote tls-id means a new association: ours changes too. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/dcMedia/"
           "remoteDcEndpoint/tlsId\",\"value\":\"zzzzzzzzzzzzzzzzzzzzzz\"}]"),
      200);
  assert_string_not_equal(dc_str(f->body, "localDcEndpoint", "tlsId"),
                          tls_before);
  /* Remove the first media: its port goes back. */
  assert_int_equal(call(f, "PATCH", path, "application/json-patch+json",
                        "[{\"op\":\"remove\",\"path\":\"/terminations/0/"
                        "medias/0\"}]"),
                   200);
  assert_int_equal(f->res.in_use, 1);
  assert_false(f->res.used[0]);
}

static void test_patch_errors_change_nothing(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, "ACTPASS", path, sizeof(path));
  char *before = json_dumps(f->body, JSON_SORT_KEYS);
  static const struct {
    const char *type, *body;
    int status;
  } cases[] = {
      {"application/json", "[]", 415},
      {"application/json-patch+json", "{}", 400},
      {"application/json-patch+json", "[]", 400},
      {"application/json-patch+json", "[{\"op\":\"jump\",\"path\":\"/a\"}]",
       400},
      {"application/json-patch+json",
       "[{\"op\":\"remove\",\"path\":\"no-slash\"}]", 400},
      {"application/json-patch+json",
       "[{\"op\":\"remove\",\"path\":\"/nope\"}]", 409},
      {"application/json-patch+json",
       "[{\"op\":\"test\",\"path\":\"/terminations/0/terminationId\","
       "\"value\":\"ue-b\"}]",
       409},
      {"application/json-patch+json",
       "[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/"
       "localMbEndpoint/portNumber\",\"value\":1}]",
       403},
      {"application/json-patch+json",
       "[{\"op\":\"replace\",\"path\":\"/contextId\",\"value\":\"x\"}]", 403},
      {"application/json-patch+json",
       "[{\"op\":\"remove\",\"path\":\"/terminations\"}]", 400},
      {"application/json-patch+json",
       "[{\"op\":\"add\",\"path\":\"/terminations/0/medias/-\",\"value\":"
       "{\"mediaId\":\"m9\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
       "\"streams\":{\"1000\":{}}}}},"
       "{\"op\":\"test\",\"path\":\"/x\",\"value\":1}]",
       409},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    call(f, "PATCH", path, cases[i].type, cases[i].body);
    if (f->resp.status != cases[i].status) {
      fail_msg("case %zu: status %d, want %d", i, f->resp.status,
               cases[i].status);
    }
    assert_problem(f, cases[i].status);
    assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
    char *now = json_dumps(f->body, JSON_SORT_KEYS);
    assert_string_equal(before, now);
    free(now);
    assert_int_equal(f->res.in_use, 1);
  }
  call(f, "PATCH", path, "text/plain", "[]");
  assert_string_equal(f->resp.accept_patch, "application/json-patch+json");
  free(before);
}

static void test_port_exhaustion(void **state) {
  struct fixture *f = *state;
  char p1[128], p2[128];
  create(f, "ACTPASS", p1, sizeof(p1));
  create(f, "ACTPASS", p2, sizeof(p2));
  char body[1024];
  snprintf(body, sizeof(body), create_body, "ACTPASS");
  call(f, "POST", "/nmf-mrm/v1/contexts", "application/json", body);
  assert_problem(f, 503);
  assert_string_equal(json_string_value(json_object_get(f->body, "cause")),
                      "INSUFFICIENT_RESOURCES");
  /* A patch that needs a port fails whole and keeps the context. */
  call(f, "PATCH", p1, "application/json-patch+json",
       "[{\"op\":\"add\",\"path\":\"/terminations/0/medias/-\",\"value\":"
       "{\"mediaId\":\"m3\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
       "\"streams\":{\"1000\":{}}}}}]");
  assert_problem(f, 503);
  assert_int_equal(f->res.in_use, 2);
  assert_int_equal(call(f, "DELETE", p2, NULL, NULL), 204);
  assert_int_equal(call(f, "POST", "/nmf-mrm/v1/contexts", "application/json",
                        body),
                   201);
}

static void test_context_limit(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, "ACTPASS", path, sizeof(path));
  char body[1024];
  snprintf(body, sizeof(body), create_body, "ACTPASS");
  call(f, "POST", "/nmf-mrm/v1/contexts", "application/json", body);
  assert_problem(f, 503);
  assert_int_equal(f->res.in_use, 1);
}

static void test_health_and_metrics(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, "ACTPASS", path, sizeof(path));
  assert_int_equal(call(f, "GET", "/healthz", NULL, NULL), 200);
  assert_int_equal(json_integer_value(json_object_get(f->body, "contexts")), 1);
  assert_int_equal(call(f, "DELETE", "/healthz", NULL, NULL), 405);
  assert_int_equal(call(f, "GET", "/metrics", NULL, NULL), 200);
  assert_non_null(strstr(f->resp.body.data, "dcmf_contexts 1\n"));
  assert_non_null(strstr(f->resp.body.data,
                         "dcmf_api_requests_total{method=\"POST\","
                         "status=\"201\"} 1\n"));
  assert_non_null(strstr(f->resp.body.data,
                         "dcmf_api_requests_total{method=\"DELETE\","
                         "status=\"405\"} 1\n"));
}

/* Worker liveness as the daemon's gauges report it. */
static void fake_loops(void *user, struct dcmf_gauges *g) {
  const int *stalled = user;
  g->loops[0] = (struct dcmf_loop_health){.name = "media", .age_ms = 250};
  g->loops[1] = (struct dcmf_loop_health){
      .name = "agw", .age_ms = 1700, .stalled = *stalled, .stalls = 1};
  g->n_loops = 2;
}

static void test_health_names_stalled_worker(void **state) {
  struct fixture *f = *state;
  int stalled = 1;
  f->api.gauges = fake_loops;
  f->api.gauges_user = &stalled;
  assert_int_equal(call(f, "GET", "/healthz", NULL, NULL), 503);
  assert_problem(f, 503);
  assert_string_equal(json_string_value(json_object_get(f->body, "detail")),
                      "worker agw: loop has not turned for 1.7 s");
  assert_int_equal(call(f, "GET", "/metrics", NULL, NULL), 200);
  assert_non_null(strstr(f->resp.body.data,
                         "dcmf_worker_up{worker=\"media\"} 1\n"
                         "dcmf_worker_up{worker=\"agw\"} 0\n"));
  assert_non_null(strstr(f->resp.body.data,
                         "dcmf_worker_heartbeat_age_seconds{worker=\"agw\"}"
                         " 1.700\n"));
  assert_non_null(strstr(f->resp.body.data,
                         "dcmf_worker_stalled_total{worker=\"agw\"} 1\n"));
  stalled = 0; /* it turns again */
  assert_int_equal(call(f, "GET", "/healthz", NULL, NULL), 200);
}

static void test_udp_proxy_mdc2_ports(void **state) {
  struct fixture *f = *state;
  static const char body[] =
      "{\"terminations\":[{\"terminationId\":\"ue\",\"medias\":[{"
      "\"mediaId\":\"1\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
      "\"mediaProxyConfig\":\"UDP\",\"remoteMdc2Endpoint\":{\"ip\":{"
      "\"ipv4Addr\":\"127.0.0.1\"},\"transport\":\"UDP\",\"portNumber\":"
      "9000},\"streams\":{\"0\":{},\"1000\":{},\"1001\":{}}}}]}]}";
  assert_int_equal(call(f, "POST", "/nmf-mrm/v1/contexts", "application/json",
                        body),
                   201);
  /* The media port and one MDC2 port per application stream. */
  assert_int_equal(f->res.in_use, 3);
  json_t *dc = json_object_get(media0(f->body), "dcMedia");
  json_t *map = json_object_get(dc, "localMdc2Endpoints");
  assert_int_equal(json_object_size(map), 2);
  assert_non_null(json_object_get(map, "1000"));
  assert_non_null(json_object_get(map, "1001"));
  assert_null(json_object_get(map, "0"));
  json_int_t first = json_integer_value(json_object_get(
      json_object_get(map, "1000"), "portNumber"));
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(dc, "localMdc2Endpoint"), "portNumber")),
                   first);
  char path[128];
  snprintf(path, sizeof(path), "/nmf-mrm/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  /* A new stream gets a port; the others keep theirs. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"add\",\"path\":\"/terminations/0/medias/0/dcMedia/"
           "streams/1002\",\"value\":{}}]"),
      200);
  assert_int_equal(f->res.in_use, 4);
  map = json_object_get(json_object_get(media0(f->body), "dcMedia"),
                        "localMdc2Endpoints");
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(map, "1000"), "portNumber")),
                   first);
  /* A stream that goes away gives its port back. */
  assert_int_equal(call(f, "PATCH", path, "application/json-patch+json",
                        "[{\"op\":\"remove\",\"path\":\"/terminations/0/"
                        "medias/0/dcMedia/streams/1000\"}]"),
                   200);
  assert_int_equal(f->res.in_use, 3);
  /* Leaving UDP mode gives them all back. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/"
           "dcMedia/mediaProxyConfig\",\"value\":\"HTTP\"}]"),
      200);
  assert_int_equal(f->res.in_use, 1);
  assert_null(json_object_get(json_object_get(media0(f->body), "dcMedia"),
                              "localMdc2Endpoints"));
}

/* ETag on every context document; If-Match guards PATCH and DELETE. */
static void test_etag_if_match(void **state) {
  struct fixture *f = *state;
  char path[128], tag1[40], tag2[40];
  create(f, "ACTPASS", path, sizeof(path));
  snprintf(tag1, sizeof(tag1), "%s", f->resp.etag);
  assert_int_equal(tag1[0], '"');
  assert_int_equal(tag1[strlen(tag1) - 1], '"');
  assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
  assert_string_equal(f->resp.etag, tag1);
  static const char patch[] =
      "[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/dcMedia/"
      "maxMessageSize\",\"value\":32}]";
  assert_int_equal(call_h(f, "PATCH", path, "application/json-patch+json",
                          patch, NULL, tag1),
                   200);
  snprintf(tag2, sizeof(tag2), "%s", f->resp.etag);
  assert_string_not_equal(tag2, tag1);
  /* A stale tag, a weak one and garbage are refused and change nothing;
   * the 412 comes before the body is looked at. */
  char weak[48];
  snprintf(weak, sizeof(weak), "W/%s", tag2);
  const char *bad[] = {tag1, weak, "nonsense", "\"\""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(call_h(f, "PATCH", path, "text/plain", "x", NULL, bad[i]),
                     412);
    assert_problem(f, 412);
    assert_string_equal(first_param(f), "header if-match");
    assert_string_equal(f->resp.etag, "");
    assert_int_equal(call_h(f, "DELETE", path, NULL, NULL, NULL, bad[i]), 412);
  }
  assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
  assert_string_equal(f->resp.etag, tag2);
  /* A list holding the current tag, and "*", both match. */
  char list[96];
  snprintf(list, sizeof(list), "\"x\", W/\"y\",%s", tag2);
  assert_int_equal(call_h(f, "PATCH", path, "application/json-patch+json",
                          patch, NULL, list),
                   200);
  char tag3[40];
  snprintf(tag3, sizeof(tag3), "%s", f->resp.etag);
  assert_string_not_equal(tag3, tag2);
  /* An event changes the document, so the tag changes too. */
  struct dcmf_context *ctx = dcmf_registry_first(f->reg);
  assert_int_equal(
      dcmf_registry_add_event(f->reg, ctx, json_pack("{s:s}", "event", "X"), 4),
      0);
  assert_int_equal(call_h(f, "DELETE", path, NULL, NULL, NULL, tag3), 412);
  assert_int_equal(call_h(f, "DELETE", path, NULL, NULL, NULL, "*"), 204);
  assert_string_equal(f->resp.etag, "");
  /* The list carries no tag; an unknown context stays 404. */
  assert_int_equal(call(f, "GET", "/nmf-mrm/v1/contexts", NULL, NULL), 200);
  assert_string_equal(f->resp.etag, "");
  assert_int_equal(call_h(f, "DELETE", path, NULL, NULL, NULL, "*"), 404);
}

/* What a client generated from the official OpenAPI sends, and the
 * values the MF owns: localMdc1Endpoint is filled in, not echoed, and a
 * change to it is 403 MODIFICATION_NOT_ALLOWED. */
static void test_official_client_and_mdc1(void **state) {
  struct fixture *f = *state;
  static const char body[] =
      "{\"terminations\":[{\"terminationId\":\"ue-a\",\"medias\":[{"
      "\"mediaId\":\"m2\",\"mediaResourceType\":\"DC\","
      "\"arMedia\":{\"mediaProcessingSpec\":\"spec\"},"
      "\"mediaProcessingUri\":\"http://mp.example/a\",\"dcMedia\":{"
      "\"mediaProxyConfig\":\"HTTP\",\"maxMessageSize\":64,"
      "\"remoteMdc1Endpoint\":{\"ip\":{\"ipv4Addr\":\"198.51.100.5\"},"
      "\"transport\":\"TCP\",\"portNumber\":8080},"
      "\"localMdc1Endpoint\":{\"ip\":{\"ipv4Addr\":\"203.0.113.9\"},"
      "\"transport\":\"TCP\",\"portNumber\":1234},"
      "\"streams\":{\"0\":{\"streamId\":0,\"subprotocol\":\"http\","
      "\"order\":true,\"maxRetry\":0,\"maxTime\":0,\"priority\":256,"
      "\"appBindingInfo\":\"b\"},"
      "\"1000\":{\"streamId\":1000,\"maxRetry\":3,\"maxTime\":0,"
      "\"priority\":256},"
      "\"1002\":{\"streamId\":1002,\"order\":false,\"maxRetry\":0,"
      "\"maxTime\":150,\"priority\":256}},"
      "\"securitySetup\":\"ACTPASS\"}}]}]}";
  assert_int_equal(
      call(f, "POST", "/nmf-mrm/v1/contexts", "application/json", body), 201);
  char path[128];
  snprintf(path, sizeof(path), "/nmf-mrm/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  json_t *m = media0(f->body);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(m, "arMedia"),
                                        "mediaProcessingSpec")),
      "spec");
  json_t *mdc1 =
      json_object_get(json_object_get(m, "dcMedia"), "localMdc1Endpoint");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(mdc1, "ip"), "ipv4Addr")),
                      "192.0.2.1");
  assert_string_equal(json_string_value(json_object_get(mdc1, "transport")),
                      "TCP");
  assert_int_equal(json_integer_value(json_object_get(mdc1, "portNumber")), 0);
  /* The media plane reads 0 as "no limit". */
  struct dcmf_context *ctx = dcmf_registry_first(f->reg);
  struct dcmf_media_desc d;
  assert_int_equal(
      dcmf_controller_desc_build(&d, ctx, &ctx->medias[0], media0(ctx->doc),
                                 5000),
      0);
  assert_int_equal(d.n_streams, 3);
  for (size_t i = 0; i < d.n_streams; i++) {
    const struct dcmf_sctp_reliability *r = &d.streams[i].rel;
    if (d.streams[i].sid == 0) {
      assert_int_equal(r->policy, 0);
    } else if (d.streams[i].sid == 1000) {
      assert_int_equal(r->policy, 1);
      assert_int_equal(r->value, 3);
    } else {
      assert_int_equal(d.streams[i].sid, 1002);
      assert_int_equal(r->policy, 2);
      assert_int_equal(r->value, 150);
      assert_int_equal(r->unordered, 1);
    }
  }
  dcmf_media_desc_free(&d);
  /* The MF owns localMdc1Endpoint. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/"
           "dcMedia/localMdc1Endpoint/portNumber\",\"value\":9}]"),
      403);
  assert_problem(f, 403);
  assert_string_equal(json_string_value(json_object_get(f->body, "cause")),
                      "MODIFICATION_NOT_ALLOWED");
  assert_string_equal(first_param(f),
                      "/terminations/0/medias/0/dcMedia/localMdc1Endpoint");
  /* Leaving HTTP-proxy mode (and dropping the DCSF address) removes it. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"remove\",\"path\":\"/terminations/0/medias/0/"
           "dcMedia/mediaProxyConfig\"},{\"op\":\"remove\",\"path\":"
           "\"/terminations/0/medias/0/dcMedia/remoteMdc1Endpoint\"}]"),
      200);
  assert_null(json_object_get(json_object_get(media0(f->body), "dcMedia"),
                              "localMdc1Endpoint"));
  /* Two non-zero limits on one stream are still refused. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/"
           "dcMedia/streams/1000/maxTime\",\"value\":5}]"),
      400);
  assert_string_equal(first_param(f),
                      "/terminations/0/medias/0/dcMedia/streams/1000");
}

static int setup_one_context(void **state) {
  return setup_n(state, 8, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_fills_mf_values, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_security_setup_mapping, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_get_list_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_names_stalled_worker, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_request_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_patch_media_lifecycle, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_patch_errors_change_nothing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_port_exhaustion, setup_two_ports,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_context_limit, setup_one_context,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_health_and_metrics, setup, teardown),
      cmocka_unit_test_setup_teardown(test_udp_proxy_mdc2_ports, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_etag_if_match, setup, teardown),
      cmocka_unit_test_setup_teardown(test_official_client_and_mdc1, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
