/*
 * Unit tests for the AGW shim's control API (agw-shim/api/agwapi.h) run in
 * memory: the relays are fakes that record what the API asked for, and
 * the port pool is a counter. Covers every status the API documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>

#include "agwapi.h"
#include "errors.h"

struct fake_relay {
  struct dcmf_relay_config cfg;
  struct dcmf_relay_counters counters;
  int latched;
  struct sockaddr_storage peer;
  int updates;
};

/* An e2ae media as the fake glue holds it: what the API handed over. */
struct fake_e2ae {
  struct dcmf_agwiq iq;
  struct dcmf_relay_config cfg;
  struct dcmf_agwiq_change last_change;
  int updates;
  int nports;
};

struct fixture {
  struct dcmf_agwapi *api;
  struct fake_e2ae *last_e2ae;
  int medias;
  size_t ports_free, ports_in_use;
  uint16_t next_port;
  int relays;
  int fail_update;
  struct fake_relay *last;
  uint8_t seed;
  struct dcmf_api_response resp;
  json_t *body;
};

static int fake_new(void *user, const char *context_id,
                    const struct dcmf_relay_config *cfg,
                    uint16_t ports[DCMF_RELAY_SIDES], void **relay) {
  struct fixture *f = user;
  /* The relay is told its context (it picks the worker by it). */
  assert_non_null(context_id);
  assert_true(strlen(context_id) > 0);
  if (f->ports_free < 2) {
    return DCMF_ERR_EXHAUSTED;
  }
  struct fake_relay *r = calloc(1, sizeof(*r));
  assert_non_null(r);
  r->cfg = *cfg;
  f->ports_free -= 2;
  f->ports_in_use += 2;
  ports[0] = f->next_port++;
  ports[1] = f->next_port++;
  f->relays++;
  f->last = r;
  *relay = r;
  return 0;
}

static int fake_update(void *user, void *relay,
                       const struct dcmf_relay_config *cfg) {
  struct fixture *f = user;
  struct fake_relay *r = relay;
  if (f->fail_update) {
    return DCMF_ERR_NOMEM;
  }
  r->cfg = *cfg;
  r->updates++;
  return 0;
}

static void fake_del(void *user, void *relay) {
  struct fixture *f = user;
  f->ports_free += 2;
  f->ports_in_use -= 2;
  f->relays--;
  if (f->last == relay) {
    f->last = NULL;
  }
  free(relay);
}

static void fake_read(void *user, void *relay, struct dcmf_relay_counters *c,
                      struct sockaddr_storage *peer, int *latched) {
  (void)user;
  struct fake_relay *r = relay;
  *c = r->counters;
  *latched = r->latched;
  *peer = r->peer;
}

static int fake_e2ae_new(void *user, const char *context_id,
                         const struct dcmf_agwiq *iq,
                         const struct dcmf_relay_config *cfg,
                         struct dcmf_agwapi_e2ae_local *local, void **media) {
  struct fixture *f = user;
  assert_true(strlen(context_id) > 0);
  size_t want = iq->core_rtcp_mux ? 2 : 3;
  if (f->ports_free < want) {
    return DCMF_ERR_EXHAUSTED;
  }
  struct fake_e2ae *m = calloc(1, sizeof(*m));
  assert_non_null(m);
  m->iq = *iq;
  m->cfg = *cfg;
  m->nports = (int)want;
  f->ports_free -= want;
  f->ports_in_use += want;
  memset(local, 0, sizeof(*local));
  local->access_port = f->next_port++;
  local->rtp_port = f->next_port++;
  local->rtcp_port = iq->core_rtcp_mux ? 0 : f->next_port++;
  snprintf(local->ufrag, sizeof(local->ufrag), "uf%02d", f->medias);
  snprintf(local->pwd, sizeof(local->pwd), "pwd-of-the-fake-glue-%02d",
           f->medias);
  /* The fingerprint in the hash the API asked for. */
  snprintf(local->fingerprint, sizeof(local->fingerprint), "%s 01:02",
           dcmf_hash_name(iq->local_fp_hash));
  f->medias++;
  f->last_e2ae = m;
  *media = m;
  return 0;
}

static int fake_e2ae_update(void *user, void *media,
                            const struct dcmf_agwiq *iq,
                            const struct dcmf_relay_config *cfg,
                            const struct dcmf_agwiq_change *ch,
                            struct dcmf_agwapi_e2ae_local *local) {
  struct fixture *f = user;
  struct fake_e2ae *m = media;
  if (f->fail_update) {
    return DCMF_ERR_NOMEM;
  }
  m->iq = *iq;
  m->cfg = *cfg;
  m->last_change = *ch;
  m->updates++;
  if (ch->ice_restart) {
    snprintf(local->ufrag, sizeof(local->ufrag), "re%02d", m->updates);
  }
  return 0;
}

static void fake_e2ae_del(void *user, void *media) {
  struct fixture *f = user;
  struct fake_e2ae *m = media;
  f->ports_free += (size_t)m->nports;
  f->ports_in_use -= (size_t)m->nports;
  f->medias--;
  if (f->last_e2ae == m) {
    f->last_e2ae = NULL;
  }
  free(m);
}

static int fake_e2ae_view(void *user, void *media, json_t *view) {
  (void)user;
  (void)media;
  return json_object_set_new(view, "events", json_array());
}

static void fake_random(void *user, uint8_t *buf, size_t len) {
  struct fixture *f = user;
  for (size_t i = 0; i < len; i++) {
    buf[i] = (uint8_t)(f->seed * 31 + i);
  }
  f->seed++;
}

static int setup_limits(void **state, size_t ports, size_t max, int v4,
                        int v6) {
  struct fixture *f = calloc(1, sizeof(*f));
  f->ports_free = ports;
  f->next_port = 40000;
  struct dcmf_agwapi_settings s = {.advertise_addr = v6 && !v4 ? "2001:db8::1"
                                                               : "192.0.2.1",
                                   .allow_v4 = v4,
                                   .allow_v6 = v6,
                                   .max_contexts = max};
  struct dcmf_agwapi_ops ops = {.relay_new = fake_new,
                                .relay_update = fake_update,
                                .relay_del = fake_del,
                                .relay_read = fake_read,
                                .e2ae_new = fake_e2ae_new,
                                .e2ae_update = fake_e2ae_update,
                                .e2ae_del = fake_e2ae_del,
                                .e2ae_view = fake_e2ae_view,
                                .random = fake_random,
                                .user = f};
  assert_int_equal(dcmf_agwapi_new(&f->api, &s, &ops), 0);
  *state = f;
  return 0;
}

static int setup(void **state) {
  return setup_limits(state, 16, 0, 1, 0);
}

static int setup_four_ports(void **state) {
  return setup_limits(state, 4, 0, 1, 0);
}

static int setup_one_context(void **state) {
  return setup_limits(state, 16, 1, 1, 0);
}

static int setup_v6(void **state) {
  return setup_limits(state, 16, 0, 0, 1);
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
  dcmf_agwapi_del(f->api);
  assert_int_equal(f->relays, 0);
  assert_int_equal(f->medias, 0);
  assert_int_equal(f->ports_in_use, 0);
  free(f);
  return 0;
}

static int call(struct fixture *f, const char *method, const char *path,
                const char *type, const char *body) {
  reset(f);
  struct dcmf_api_request req = {
      .method = method,
      .path = path,
      .scheme = "http",
      .authority = "127.0.0.1:8090",
      .content_type = type,
      .body = (const uint8_t *)body,
      .body_len = body ? strlen(body) : 0,
  };
  dcmf_agwapi_handle(f->api, &req, &f->resp);
  if (f->resp.body.len > 0) {
    f->body = json_loadb(f->resp.body.data, f->resp.body.len, 0, NULL);
    assert_non_null(f->body);
  }
  return f->resp.status;
}

#define POST(f, body) \
  call((f), "POST", "/agw/v1/contexts", "application/json", (body))
#define PATCH(f, path, body) \
  call((f), "PATCH", (path), "application/json-patch+json", (body))

static const char basic[] =
    "{\"terminations\":[{\"terminationId\":\"access\"},"
    "{\"terminationId\":\"core\",\"remote\":{\"ipv4Addr\":\"127.0.0.1\","
    "\"port\":50000}}]}";

static json_t *term(json_t *doc, size_t i) {
  return json_array_get(json_object_get(doc, "terminations"), i);
}

static json_int_t num(json_t *obj, const char *a, const char *b) {
  return json_integer_value(json_object_get(json_object_get(obj, a), b));
}

static const char *create(struct fixture *f, const char *body, char *path,
                          size_t cap) {
  assert_int_equal(POST(f, body), 201);
  snprintf(path, cap, "/agw/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  return path;
}

static void assert_problem(struct fixture *f, int status, const char *param) {
  assert_int_equal(f->resp.status, status);
  assert_string_equal(f->resp.content_type, "application/problem+json");
  assert_int_equal(json_integer_value(json_object_get(f->body, "status")),
                   status);
  assert_non_null(json_string_value(json_object_get(f->body, "detail")));
  if (param != NULL) {
    json_t *list = json_object_get(f->body, "invalidParams");
    size_t i;
    json_t *ip;
    int found = 0;
    json_array_foreach(list, i, ip) {
      found |= strcmp(json_string_value(json_object_get(ip, "param")),
                      param) == 0;
    }
    if (!found) {
      char *text = json_dumps(f->body, 0);
      fail_msg("no invalid param %s in %s", param, text);
    }
  }
}

static void test_create_get_list_delete(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, basic, path, sizeof(path));
  const char *id = json_string_value(json_object_get(f->body, "contextId"));
  assert_int_equal(strlen(id), 36);
  assert_int_equal(id[14], '4'); /* UUID version 4 */
  char want[160];
  snprintf(want, sizeof(want), "http://127.0.0.1:8090/agw/v1/contexts/%s", id);
  assert_string_equal(f->resp.location, want);
  json_t *a = term(f->body, 0), *c = term(f->body, 1);
  assert_string_equal(json_string_value(json_object_get(a, "terminationId")),
                      "access");
  assert_string_equal(json_string_value(json_object_get(a, "latching")),
                      "first-packet");
  assert_string_equal(json_string_value(json_object_get(a, "transport")),
                      "UDP");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(a, "local"), "ipv4Addr")),
                      "192.0.2.1");
  assert_int_equal(num(a, "local", "port"), 40000);
  assert_int_equal(num(c, "local", "port"), 40001);
  assert_int_equal(num(c, "remote", "port"), 50000);
  assert_null(json_object_get(a, "remote"));
  assert_null(json_object_get(a, "latched"));
  assert_null(json_object_get(c, "latching"));
  json_t *st = json_object_get(f->body, "statistics");
  assert_int_equal(num(st, "accessToCore", "packets"), 0);
  assert_int_equal(f->relays, 1);
  assert_true(f->last->cfg.has_core_remote);
  assert_false(f->last->cfg.has_access_remote);

  /* Counters and the latch come from the relay. */
  struct fake_relay *r = f->last;
  r->counters.packets[DCMF_RELAY_ACCESS] = 7;
  r->counters.bytes[DCMF_RELAY_CORE] = 99;
  r->counters.dropped[DCMF_RELAY_CORE][DCMF_RELAY_DROP_NOT_LATCHED] = 3;
  r->latched = 1;
  struct sockaddr_in *in = (struct sockaddr_in *)&r->peer;
  in->sin_family = AF_INET;
  in->sin_port = htons(5004);
  inet_pton(AF_INET, "198.51.100.9", &in->sin_addr);
  assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
  st = json_object_get(f->body, "statistics");
  assert_int_equal(num(st, "accessToCore", "packets"), 7);
  assert_int_equal(num(st, "coreToAccess", "bytes"), 99);
  assert_int_equal(num(json_object_get(st, "dropped"), "core", "notLatched"),
                   3);
  json_t *latched = json_object_get(term(f->body, 0), "latched");
  assert_string_equal(json_string_value(json_object_get(latched, "ipv4Addr")),
                      "198.51.100.9");
  assert_int_equal(json_integer_value(json_object_get(latched, "port")), 5004);
  assert_int_equal(call(f, "HEAD", path, NULL, NULL), 200);

  char second[128];
  create(f, basic, second, sizeof(second));
  assert_int_equal(call(f, "GET", "/agw/v1/contexts?x=1", NULL, NULL), 200);
  assert_int_equal(json_array_size(f->body), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(f->body, 0),
                                        "contextId")),
      path + strlen("/agw/v1/contexts/"));
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  assert_int_equal(f->resp.body.len, 0);
  assert_int_equal(f->relays, 1);
  assert_int_equal(call(f, "GET", path, NULL, NULL), 404);
  assert_problem(f, 404, NULL);
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 404);
  assert_int_equal(dcmf_agwapi_count(f->api), 1);
}

static void test_create_terminations_any_order(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f,
         "{\"terminations\":[{\"terminationId\":\"core\",\"transport\":"
         "\"UDP\"},{\"terminationId\":\"access\",\"latching\":"
         "\"signalled-only\",\"remote\":{\"ipv4Addr\":\"10.1.2.3\","
         "\"port\":6000}}]}",
         path, sizeof(path));
  assert_string_equal(
      json_string_value(json_object_get(term(f->body, 0), "terminationId")),
      "access");
  assert_string_equal(
      json_string_value(json_object_get(term(f->body, 0), "latching")),
      "signalled-only");
  assert_int_equal(f->last->cfg.latching, DCMF_RELAY_LATCH_SIGNALLED_ONLY);
  assert_true(f->last->cfg.has_access_remote);
  assert_false(f->last->cfg.has_core_remote);
}

struct bad_body {
  const char *body;
  int status;
  const char *param;
};

static void test_create_validation(void **state) {
  struct fixture *f = *state;
  static const struct bad_body cases[] = {
      {"{", 400, NULL},
      {"[]", 400, ""},
      {"{}", 400, "/terminations"},
      {"{\"terminations\":[{\"terminationId\":\"access\"}]}", 400,
       "/terminations"},
      {"{\"terminations\":[{\"terminationId\":\"access\"},"
       "{\"terminationId\":\"access\"}]}",
       400, "/terminations/1/terminationId"},
      {"{\"terminations\":[{\"terminationId\":\"access\"},"
       "{\"terminationId\":\"middle\"}]}",
       400, "/terminations/1/terminationId"},
      {"{\"terminations\":[{},{\"terminationId\":\"core\"}]}", 400,
       "/terminations/0/terminationId"},
      {"{\"terminations\":[1,{\"terminationId\":\"core\"}]}", 400,
       "/terminations/0"},
      {"{\"terminations\":[{\"terminationId\":\"access\",\"x/y\":1},"
       "{\"terminationId\":\"core\"}]}",
       400, "/terminations/0/x~1y"},
      {"{\"contextId\":\"mine\",\"terminations\":[{\"terminationId\":"
       "\"access\"},{\"terminationId\":\"core\"}]}",
       400, "/contextId"},
      {"{\"terminations\":[{\"terminationId\":\"access\",\"local\":{}},"
       "{\"terminationId\":\"core\"}]}",
       400, "/terminations/0/local"},
      {"{\"terminations\":[{\"terminationId\":\"access\",\"latching\":"
       "\"always\"},{\"terminationId\":\"core\"}]}",
       400, "/terminations/0/latching"},
      {"{\"terminations\":[{\"terminationId\":\"access\",\"latching\":"
       "\"signalled-only\"},{\"terminationId\":\"core\"}]}",
       400, "/terminations/0/latching"},
      {"{\"terminations\":[{\"terminationId\":\"access\"},"
       "{\"terminationId\":\"core\",\"latching\":\"first-packet\"}]}",
       400, "/terminations/1/latching"},
      {"{\"terminations\":[{\"terminationId\":\"access\",\"transport\":"
       "\"UDP/TLS/UDPTL\"},{\"terminationId\":\"core\"}]}",
       400, "/terminations/0/transport"},
      {"{\"terminations\":[{\"terminationId\":\"access\",\"remote\":"
       "\"1.2.3.4\"},{\"terminationId\":\"core\"}]}",
       400, "/terminations/0/remote"},
      {"{\"terminations\":[{\"terminationId\":\"access\",\"remote\":"
       "{\"ipv4Addr\":\"1.2.3.4\"}},{\"terminationId\":\"core\"}]}",
       400, "/terminations/0/remote/port"},
      {"{\"terminations\":[{\"terminationId\":\"access\",\"remote\":"
       "{\"ipv4Addr\":\"1.2.3.4\",\"port\":70000}},{\"terminationId\":"
       "\"core\"}]}",
       400, "/terminations/0/remote/port"},
      {"{\"terminations\":[{\"terminationId\":\"access\",\"remote\":"
       "{\"ipv4Addr\":\"1.2.3.4\",\"port\":\"80\"}},{\"terminationId\":"
       "\"core\"}]}",
       400, "/terminations/0/remote/port"},
      {"{\"terminations\":[{\"terminationId\":\"access\"},{\"terminationId\":"
       "\"core\",\"remote\":{\"ipv4Addr\":\"1.2.3\",\"port\":1}}]}",
       400, "/terminations/1/remote/ipv4Addr"},
      {"{\"terminations\":[{\"terminationId\":\"access\"},{\"terminationId\":"
       "\"core\",\"remote\":{\"ipv4Addr\":\"0.0.0.0\",\"port\":1}}]}",
       400, "/terminations/1/remote/ipv4Addr"},
      {"{\"terminations\":[{\"terminationId\":\"access\"},{\"terminationId\":"
       "\"core\",\"remote\":{\"ipv4Addr\":\"239.1.1.1\",\"port\":1}}]}",
       400, "/terminations/1/remote/ipv4Addr"},
      {"{\"terminations\":[{\"terminationId\":\"access\"},{\"terminationId\":"
       "\"core\",\"remote\":{\"ipv6Addr\":\"2001:db8::1\",\"port\":1}}]}",
       400, "/terminations/1/remote/ipv6Addr"},
      {"{\"terminations\":[{\"terminationId\":\"access\"},{\"terminationId\":"
       "\"core\",\"remote\":{\"ipv4Addr\":\"1.1.1.1\",\"ipv6Addr\":\"::1\","
       "\"port\":1}}]}",
       400, "/terminations/1/remote"},
      {"{\"terminations\":[{\"terminationId\":\"access\"},{\"terminationId\":"
       "\"core\",\"remote\":{\"ipv4Addr\":\"1.1.1.1\",\"port\":1,"
       "\"fingerprint\":\"x\"}}]}",
       400, "/terminations/1/remote/fingerprint"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int status = POST(f, cases[i].body);
    if (status != cases[i].status) {
      fail_msg("case %zu: %d, want %d", i, status, cases[i].status);
    }
    assert_problem(f, cases[i].status, cases[i].param);
  }
  assert_int_equal(f->relays, 0);
  /* Not JSON at all names the syntax error. */
  POST(f, "{\"terminations\":");
  assert_string_equal(json_string_value(json_object_get(f->body, "cause")),
                      "INVALID_MSG_FORMAT");
}

static void test_request_errors(void **state) {
  struct fixture *f = *state;
  assert_int_equal(call(f, "POST", "/agw/v1/contexts", "text/plain", basic),
                   415);
  assert_problem(f, 415, "header content-type");
  assert_int_equal(call(f, "POST", "/agw/v1/contexts",
                        "Application/JSON; charset=utf-8", basic),
                   201);
  char path[128];
  snprintf(path, sizeof(path), "/agw/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  /* No content-length is needed (HTTP/2 ends a body with the stream):
   * an empty body is read, and refused as JSON. */
  assert_int_equal(
      call(f, "POST", "/agw/v1/contexts", "application/json", NULL), 400);
  assert_int_equal(call(f, "PUT", "/agw/v1/contexts", NULL, NULL), 405);
  assert_string_equal(f->resp.allow, "GET, HEAD, POST");
  assert_int_equal(call(f, "POST", path, "application/json", basic), 405);
  assert_string_equal(f->resp.allow, "GET, HEAD, PATCH, DELETE");
  assert_int_equal(call(f, "GET", "/agw/v1/other", NULL, NULL), 404);
  assert_int_equal(call(f, "GET", "/agw/v1/contexts/", NULL, NULL), 404);
  char deeper[160];
  snprintf(deeper, sizeof(deeper), "%s/terminations", path);
  assert_int_equal(call(f, "GET", deeper, NULL, NULL), 404);
  char longpath[400];
  memset(longpath, 'a', sizeof(longpath) - 1);
  longpath[sizeof(longpath) - 1] = '\0';
  memcpy(longpath, "/agw/v1/", 8);
  assert_int_equal(call(f, "GET", longpath, NULL, NULL), 414);
  assert_int_equal(call(f, "PATCH", path, "application/json", "[]"), 415);
  assert_string_equal(f->resp.accept_patch, "application/json-patch+json");
}

static void test_patch(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f,
         "{\"terminations\":[{\"terminationId\":\"access\"},"
         "{\"terminationId\":\"core\"}]}",
         path, sizeof(path));
  struct fake_relay *r = f->last;
  assert_false(r->cfg.has_core_remote);
  /* The controller learns the core address afterwards. */
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"add\",\"path\":\"/terminations/1/remote\","
            "\"value\":{\"ipv4Addr\":\"127.0.0.1\",\"port\":50002}}]"),
      200);
  assert_int_equal(r->updates, 1);
  assert_true(r->cfg.has_core_remote);
  assert_int_equal(num(term(f->body, 1), "remote", "port"), 50002);
  assert_non_null(json_object_get(f->body, "statistics"));
  /* Signalled-only with the phone's address, in one patch. */
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"add\",\"path\":\"/terminations/0/remote\","
            "\"value\":{\"ipv4Addr\":\"10.0.0.1\",\"port\":4000}},"
            "{\"op\":\"replace\",\"path\":\"/terminations/0/latching\","
            "\"value\":\"signalled-only\"}]"),
      200);
  assert_int_equal(r->cfg.latching, DCMF_RELAY_LATCH_SIGNALLED_ONLY);
  assert_int_equal(r->updates, 2);
  /* Removing the phone's address while signalled-only: 400, no change. */
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"remove\",\"path\":\"/terminations/0/remote\"}]"),
      400);
  assert_problem(f, 400, "/terminations/0/latching");
  assert_int_equal(r->updates, 2);
  /* Read-only members. */
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"replace\",\"path\":\"/terminations/1/local/port\","
            "\"value\":1}]"),
      403);
  assert_problem(f, 403, "/terminations/1/local");
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"remove\",\"path\":\"/terminations/0/local\"}]"),
      403);
  assert_problem(f, 403, "/terminations/0/local");
  assert_int_equal(PATCH(f, path,
                         "[{\"op\":\"replace\",\"path\":\"/contextId\","
                         "\"value\":\"x\"}]"),
                   403);
  assert_problem(f, 403, "/contextId");
  /* Dynamic members are not part of the patched document. */
  assert_int_equal(PATCH(f, path,
                         "[{\"op\":\"replace\",\"path\":\"/statistics\","
                         "\"value\":{}}]"),
                   409);
  assert_int_equal(PATCH(f, path,
                         "[{\"op\":\"add\",\"path\":\"/statistics\","
                         "\"value\":{}}]"),
                   400);
  assert_problem(f, 400, "/statistics");
  /* Malformed and failing patches. */
  assert_int_equal(PATCH(f, path, "{}"), 400);
  assert_int_equal(PATCH(f, path, "[]"), 400);
  assert_int_equal(PATCH(f, path,
                         "[{\"op\":\"test\",\"path\":\"/terminations/0/"
                         "latching\",\"value\":\"first-packet\"}]"),
                   409);
  /* Moving the terminations around is fine: they are found by id. */
  assert_int_equal(PATCH(f, path,
                         "[{\"op\":\"move\",\"from\":\"/terminations/0\","
                         "\"path\":\"/terminations/-\"}]"),
                   200);
  assert_string_equal(
      json_string_value(json_object_get(term(f->body, 0), "terminationId")),
      "access");
  /* A relay that cannot take the update keeps the old document. */
  f->fail_update = 1;
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"replace\",\"path\":\"/terminations/1/remote/port\","
            "\"value\":1}]"),
      500);
  f->fail_update = 0;
  assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
  assert_int_equal(num(term(f->body, 1), "remote", "port"), 50002);
  assert_int_equal(r->updates, 3);
}

static void test_port_exhaustion_and_limit(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, basic, path, sizeof(path));
  create(f, basic, path, sizeof(path));
  assert_int_equal(POST(f, basic), 503);
  assert_problem(f, 503, NULL);
  assert_string_equal(json_string_value(json_object_get(f->body, "cause")),
                      "INSUFFICIENT_RESOURCES");
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  create(f, basic, path, sizeof(path));
}

static void test_context_limit(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f, basic, path, sizeof(path));
  assert_int_equal(POST(f, basic), 503);
  assert_int_equal(f->relays, 1);
}

static void test_ipv6(void **state) {
  struct fixture *f = *state;
  char path[128];
  create(f,
         "{\"terminations\":[{\"terminationId\":\"access\",\"remote\":"
         "{\"ipv6Addr\":\"2001:DB8::7\",\"port\":5004}},"
         "{\"terminationId\":\"core\"}]}",
         path, sizeof(path));
  json_t *a = term(f->body, 0);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(a, "remote"), "ipv6Addr")),
                      "2001:db8::7"); /* canonical text */
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(a, "local"), "ipv6Addr")),
                      "2001:db8::1");
  assert_int_equal(
      POST(f, "{\"terminations\":[{\"terminationId\":\"access\",\"remote\":"
              "{\"ipv4Addr\":\"10.0.0.1\",\"port\":5004}},"
              "{\"terminationId\":\"core\"}]}"),
      400);
  assert_int_equal(
      POST(f, "{\"terminations\":[{\"terminationId\":\"access\",\"remote\":"
              "{\"ipv6Addr\":\"::ffff:10.0.0.1\",\"port\":5004}},"
              "{\"terminationId\":\"core\"}]}"),
      400);
  assert_int_equal(
      POST(f, "{\"terminations\":[{\"terminationId\":\"access\",\"remote\":"
              "{\"ipv6Addr\":\"ff02::1\",\"port\":5004}},"
              "{\"terminationId\":\"core\"}]}"),
      400);
}

static void test_new_rejects_bad_settings(void **state) {
  (void)state;
  struct dcmf_agwapi *api;
  struct dcmf_agwapi_ops ops = {0};
  struct dcmf_agwapi_settings s = {.advertise_addr = "example.org",
                                   .allow_v4 = 1};
  assert_int_equal(dcmf_agwapi_new(&api, &s, &ops), DCMF_ERR_INVALID);
  s.advertise_addr = "192.0.2.1";
  s.allow_v4 = 0;
  assert_int_equal(dcmf_agwapi_new(&api, &s, &ops), DCMF_ERR_INVALID);
  dcmf_agwapi_del(NULL);
  assert_int_equal(dcmf_agwapi_count(NULL), 0);
}

/* The e2ae Iq members (agwiq.h) are validated with problems naming the
 * member; a valid e2ae context is 501 until DTLS-SRTP media is wired, and
 * nothing is allocated for it; a relay context cannot be patched into one. */
static json_t *member(json_t *obj, const char *a, const char *b) {
  return json_object_get(json_object_get(obj, a), b);
}

/* e2ae contexts are served: the glue reserves three ports (two with a
 * multiplexing core), the reply carries what the AGW generated; what is
 * still refused is refused before anything is reserved. */
static void test_e2ae_served(void **state) {
  struct fixture *f = *state;
  static const char e2ae[] =
      "{\"terminations\":[{\"terminationId\":\"access\","
      "\"transport\":\"UDP/TLS/RTP/SAVPF\",\"dtls\":{\"setup\":\"actpass\","
      "\"remoteFingerprints\":[\"%s\"]}},"
      "{\"terminationId\":\"core\",\"transport\":\"RTP/AVP\"}]}";
  char body[512];
  snprintf(body, sizeof(body), e2ae,
           "sha-384 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:"
           "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:"
           "89:AB:CD:EF:01:23:45:67:89");
  char path[128];
  create(f, body, path, sizeof(path));
  assert_int_equal(f->relays, 0); /* no transparent relay stands in */
  assert_int_equal(f->medias, 1);
  assert_int_equal(f->ports_in_use, 3);
  struct fake_e2ae *m = f->last_e2ae;
  assert_non_null(m);
  assert_int_equal(m->iq.remote_fp.count, 1);
  assert_int_equal(m->iq.role, DCMF_AGWIQ_ROLE_SERVER);
  json_t *acc = term(f->body, 0), *core = term(f->body, 1);
  assert_string_equal(json_string_value(json_object_get(acc, "transport")),
                      "UDP/TLS/RTP/SAVPF");
  assert_string_equal(json_string_value(json_object_get(core, "transport")),
                      "RTP/AVP");
  /* The answer's fingerprint follows the peer's hash (RFC 8122 s. 5). */
  assert_string_equal(
      json_string_value(member(acc, "dtls", "localFingerprint")),
      "SHA-384 01:02");
  assert_string_equal(json_string_value(member(acc, "dtls", "localSetup")),
                      "passive");
  assert_string_equal(json_string_value(member(acc, "ice", "localUfrag")),
                      "uf00");
  assert_non_null(json_string_value(member(acc, "ice", "localPwd")));
  assert_int_equal(num(acc, "local", "port"), 40000);
  assert_int_equal(num(core, "local", "port"), 40001);
  assert_int_equal(json_integer_value(json_object_get(core, "localRtcpPort")),
                   40002);
  assert_true(json_is_array(json_object_get(f->body, "events")));
  /* GET shows the same. */
  assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
  assert_string_equal(
      json_string_value(member(term(f->body, 0), "ice", "localUfrag")), "uf00");
  /* What the AGW generated is not in the stored context: a patch cannot
   * reach it. */
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"replace\",\"path\":\"/terminations/0/ice/localUfrag\","
            "\"value\":\"mine\"}]"),
      409);
  /* An ICE restart: new local credentials in the answer. */
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"add\",\"path\":\"/terminations/0/ice\",\"value\":"
            "{\"remoteUfrag\":\"ufrB\","
            "\"remotePwd\":\"bbbbbbbbbbbbbbbbbbbbbbbb\"}}]"),
      200);
  assert_int_equal(m->updates, 1);
  assert_true(m->last_change.ice_arrived);
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"replace\",\"path\":\"/terminations/0/ice\",\"value\":"
            "{\"remoteUfrag\":\"ufrC\","
            "\"remotePwd\":\"cccccccccccccccccccccccc\"}},"
            "{\"op\":\"add\",\"path\":\"/terminations/1/remote\",\"value\":"
            "{\"ipv4Addr\":\"127.0.0.1\",\"port\":50010}}]"),
      200);
  assert_int_equal(m->updates, 2);
  assert_true(m->last_change.ice_restart);
  assert_true(m->cfg.has_core_remote);
  assert_string_equal(
      json_string_value(member(term(f->body, 0), "ice", "localUfrag")), "re02");
  assert_int_equal(num(term(f->body, 1), "remote", "port"), 50010);
  /* The transport stays: an e2ae context does not turn into a relay. */
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"replace\",\"path\":\"/terminations/0/transport\","
            "\"value\":\"UDP\"}]"),
      400);
  assert_problem(f, 400, "/terminations/0/transport");
  /* The glue failing an update changes nothing. */
  f->fail_update = 1;
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"add\",\"path\":\"/terminations/1/rtcpMux\","
            "\"value\":true}]"),
      500);
  f->fail_update = 0;
  assert_int_equal(m->updates, 2);
  assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
  assert_null(json_object_get(term(f->body, 1), "rtcpMux"));
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  assert_int_equal(f->medias, 0);
  assert_int_equal(f->ports_in_use, 0);

  /* Held handshake: no fingerprint yet, a multiplexing core, and the AGW
   * as DTLS client; the fingerprint arrives by PATCH. */
  create(f,
         "{\"terminations\":[{\"terminationId\":\"access\","
         "\"transport\":\"UDP/TLS/RTP/SAVP\",\"dtls\":{\"setup\":\"passive\","
         "\"establish\":true,\"localFingerprintHash\":\"sha-1\"}},"
         "{\"terminationId\":\"core\",\"transport\":\"RTP/AVPF\","
         "\"rtcpMux\":true}]}",
         path, sizeof(path));
  m = f->last_e2ae;
  assert_int_equal(f->ports_in_use, 2);
  assert_int_equal(m->iq.remote_fp.count, 0);
  assert_int_equal(m->iq.role, DCMF_AGWIQ_ROLE_CLIENT);
  assert_string_equal(
      json_string_value(member(term(f->body, 0), "dtls", "localSetup")),
      "active");
  assert_string_equal(
      json_string_value(member(term(f->body, 0), "dtls", "localFingerprint")),
      "SHA-1 01:02");
  assert_null(json_object_get(term(f->body, 1), "localRtcpPort"));
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"add\",\"path\":\"/terminations/0/dtls/"
            "remoteFingerprints\",\"value\":[\"sha-1 00:11:22:33:44:55:66:77:"
            "88:99:AA:BB:CC:DD:EE:FF:01:02:03:04\"]}]"),
      200);
  assert_true(m->last_change.fingerprint_arrived);
  assert_int_equal(m->iq.remote_fp.count, 1);
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);

  /* Still refused, nothing reserved: the relay's members are checked on
   * e2ae contexts too. */
  snprintf(body, sizeof(body), e2ae,
           "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:"
           "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89");
  char bad_remote[640];
  snprintf(bad_remote, sizeof(bad_remote), "%.*s,\"remote\":{\"port\":0}}]}",
           (int)(strlen(body) - 3), body);
  assert_int_equal(POST(f, bad_remote), 400);
  assert_problem(f, 400, "/terminations/1/remote");
  snprintf(body, sizeof(body), e2ae, "sha-256 AB:CD");
  assert_int_equal(POST(f, body), 400);
  assert_problem(f, 400, "/terminations/0/dtls/remoteFingerprints/0");
  assert_int_equal(f->medias, 0);
  assert_int_equal(f->relays, 0);
  assert_int_equal(f->ports_in_use, 0);
  /* Iq members on a relay termination are named, not just "unknown". */
  assert_int_equal(
      POST(f, "{\"terminations\":[{\"terminationId\":\"access\","
              "\"notifyUri\":\"http://127.0.0.1/n\"},"
              "{\"terminationId\":\"core\"}]}"),
      400);
  assert_problem(f, 400, "/terminations/0/notifyUri");
  /* A relay does not turn into an e2ae context. */
  create(f, basic, path, sizeof(path));
  assert_int_equal(
      PATCH(f, path,
            "[{\"op\":\"replace\",\"path\":\"/terminations/0/transport\","
            "\"value\":\"UDP/TLS/RTP/SAVP\"},"
            "{\"op\":\"replace\",\"path\":\"/terminations/1/transport\","
            "\"value\":\"RTP/AVP\"},"
            "{\"op\":\"add\",\"path\":\"/terminations/0/dtls\","
            "\"value\":{\"setup\":\"active\"}}]"),
      400);
  assert_problem(f, 400, "/terminations/0/transport");
  assert_int_equal(f->last->updates, 0);
  assert_int_equal(f->medias, 0);
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  /* The ports running out: 503, nothing held. */
  f->ports_free = 2;
  snprintf(body, sizeof(body), e2ae,
           "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:"
           "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89");
  assert_int_equal(POST(f, body), 503);
  assert_int_equal(f->medias, 0);
  assert_int_equal(f->ports_in_use, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_get_list_delete, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_create_terminations_any_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_create_validation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_patch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_e2ae_served, setup, teardown),
      cmocka_unit_test_setup_teardown(test_port_exhaustion_and_limit,
                                      setup_four_ports, teardown),
      cmocka_unit_test_setup_teardown(test_context_limit, setup_one_context,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ipv6, setup_v6, teardown),
      cmocka_unit_test(test_new_rejects_bad_settings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
