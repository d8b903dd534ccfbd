/*
 * Unit tests for the controller between the registry and the media
 * workers, in memory: a fake port pool, descriptors of /dev/null for the
 * bound sockets, and a fake worker sink that records every message. No
 * sockets, no threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "controller.h"
#include "errors.h"
#include "fake_res.h"

#define RECS_MAX 128

/* What one worker message carried. */
struct rec {
  size_t worker;
  enum dcmf_media_op op;
  struct dcmf_media_desc desc; /* arrays freed, fds closed; copied flat */
  int had_fd;                  /* desc.fd was a descriptor */
  int mdc2_fds;                /* MDC2 entries that carried a descriptor */
  uint16_t sids[8];
  struct dcmf_sctp_reliability rel[8];
  char protocol[8][64];
};

struct fixture {
  struct fake_res res;
  struct dcmf_log log;
  struct dcmf_controller *ctl;
  struct dcmf_registry *reg;
  int devnull;
  int fail_dup;
  struct rec recs[RECS_MAX];
  size_t n_recs;
  char notified_uri[256];
  json_t *notified; /* the last notification, parsed */
  size_t n_notified;
};

static int fake_dup(void *user, uint16_t port) {
  struct fixture *f = user;
  (void)port;
  if (f->fail_dup) {
    errno = EMFILE;
    return -1;
  }
  return dup(f->devnull);
}

/* The fake worker: records the message and frees what it owns. */
static void fake_post(void *user, size_t worker, enum dcmf_media_op op,
                      struct dcmf_media_desc *desc) {
  struct fixture *f = user;
  assert_true(f->n_recs < RECS_MAX);
  struct rec *r = &f->recs[f->n_recs++];
  memset(r, 0, sizeof(*r));
  r->worker = worker;
  r->op = op;
  r->had_fd = desc->fd >= 0;
  if (desc->fd >= 0) {
    close(desc->fd);
  }
  for (size_t i = 0; i < desc->n_streams && i < 8; i++) {
    r->sids[i] = desc->streams[i].sid;
    r->rel[i] = desc->streams[i].rel;
    snprintf(r->protocol[i], sizeof(r->protocol[i]), "%s",
             desc->streams[i].protocol);
  }
  for (size_t i = 0; i < desc->n_mdc2; i++) {
    r->mdc2_fds += desc->mdc2[i].fd >= 0;
  }
  r->desc = *desc;
  r->desc.streams = NULL;
  r->desc.routes = NULL;
  r->desc.mdc2 = NULL;
  dcmf_media_desc_free(desc); /* closes the MDC2 descriptors */
}

static void fake_notify(void *user, const char *uri, const char *json) {
  struct fixture *f = user;
  snprintf(f->notified_uri, sizeof(f->notified_uri), "%s", uri);
  json_decref(f->notified);
  f->notified = json_loads(json, 0, NULL);
  assert_non_null(f->notified);
  f->n_notified++;
}

static int setup_n(void **state, size_t n_workers) {
  struct fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  f->devnull = open("/dev/null", O_RDWR);
  assert_true(f->devnull >= 0);
  f->log = (struct dcmf_log){.stream = stderr, .level = DCMF_LOG_ERROR};
  struct dcmf_controller_settings cs = {
      .registry = {.advertise_addr = "192.0.2.1",
                   .local_fingerprint = "SHA-256 AA:BB",
                   .sctp_port = 5000,
                   .max_contexts = 100},
      .res = fake_res_init(&f->res, 42000, FAKE_PORTS_MAX),
      .n_workers = n_workers,
      .events_kept = 2,
      .log = &f->log,
      .port_dup = fake_dup,
      .post = fake_post,
      .notify = fake_notify,
      .user = f,
  };
  assert_int_equal(dcmf_controller_new(&f->ctl, &cs), 0);
  f->reg = dcmf_controller_registry(f->ctl);
  *state = f;
  return 0;
}

static int setup(void **state) {
  return setup_n(state, 1);
}

static int setup_four(void **state) {
  return setup_n(state, 4);
}

static int teardown(void **state) {
  struct fixture *f = *state;
  size_t before = f->n_recs;
  size_t medias = 0;
  for (struct dcmf_context *c = dcmf_registry_first(f->reg); c; c = c->next) {
    medias += c->n_medias;
  }
  dcmf_controller_del(f->ctl);
  /* Every media still held was removed from its worker. */
  assert_int_equal(f->n_recs - before, medias);
  for (size_t i = before; i < f->n_recs; i++) {
    assert_int_equal(f->recs[i].op, DCMF_MEDIA_OP_REMOVE);
  }
  assert_int_equal(f->res.in_use, 0);
  json_decref(f->notified);
  close(f->devnull);
  free(f);
  return 0;
}

static struct dcmf_context *create(struct fixture *f, const char *body) {
  json_error_t jerr;
  json_t *req = json_loads(body, 0, &jerr);
  assert_non_null(req);
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  struct dcmf_context *ctx = NULL;
  int rv = dcmf_registry_create(f->reg, req, &ctx, &p);
  json_decref(req);
  if (rv != 0) {
    fail_msg("create: %d %s", rv, p.detail);
  }
  return ctx;
}

static int patch(struct fixture *f, struct dcmf_context *ctx,
                 const char *body) {
  json_t *ops = json_loads(body, 0, NULL);
  assert_non_null(ops);
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  int rv = dcmf_registry_patch(f->reg, ctx, ops, &p);
  json_decref(ops);
  return rv;
}

static json_t *doc_media(const struct dcmf_context *ctx, size_t t, size_t m) {
  return json_array_get(
      json_object_get(
          json_array_get(json_object_get(ctx->doc, "terminations"), t),
          "medias"),
      m);
}

static const char *str_at(json_t *v, const char *a, const char *b) {
  return json_string_value(json_object_get(json_object_get(v, a), b));
}

static json_int_t int_at(json_t *v, const char *a, const char *b) {
  return json_integer_value(json_object_get(json_object_get(v, a), b));
}

static const char one_media[] =
    "{\"eventNotifyUri\":\"http://127.0.0.1:9/events\","
    "\"terminations\":[{\"terminationId\":\"ue-a\",\"medias\":[{"
    "\"mediaId\":\"m1\",\"mediaResourceType\":\"DC\","
    "\"remoteMbEndpoint\":{\"ip\":{\"ipv4Addr\":\"198.51.100.7\"},"
    "\"transport\":\"UDP\",\"portNumber\":5004},"
    "\"remoteIceInfo\":{\"ufrag\":\"peer\",\"pwd\":"
    "\"abcdefghijklmnopqrstuvwxyz\"},"
    "\"dcMedia\":{\"streams\":{\"0\":{\"subprotocol\":\"http\"},"
    "\"1000\":{\"maxRetry\":2,\"order\":false}},"
    "\"maxMessageSize\":32,"
    "\"remoteDcEndpoint\":{\"sctpPort\":5001,\"tlsId\":"
    "\"abc3de65cddef001be82\",\"fingerprint\":\"sha-256 "
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF\"},"
    "\"securitySetup\":\"ACTIVE\"}}]}]}";

/* A create reaches the context's worker as ADD with what the API said
 * and what the MF assigned, and a descriptor of the media's socket. */
static void test_create_posts_add(void **state) {
  struct fixture *f = *state;
  struct dcmf_context *ctx = create(f, one_media);
  assert_int_equal(f->n_recs, 1);
  const struct rec *r = &f->recs[0];
  assert_int_equal(r->op, DCMF_MEDIA_OP_ADD);
  assert_int_equal(r->worker, 0);
  assert_true(r->had_fd);
  const struct dcmf_media_desc *d = &r->desc;
  assert_string_equal(d->key.context_id, ctx->id);
  assert_string_equal(d->key.termination_id, "ue-a");
  assert_string_equal(d->key.media_id, "m1");
  json_t *m = doc_media(ctx, 0, 0);
  /* The MF's values are those the stored document reports. */
  assert_int_equal(d->port, int_at(m, "localMbEndpoint", "portNumber"));
  assert_string_equal(d->local_ufrag, str_at(m, "localIceInfo", "ufrag"));
  assert_string_equal(d->local_pwd, str_at(m, "localIceInfo", "pwd"));
  json_t *dc = json_object_get(m, "dcMedia");
  assert_string_equal(d->local_tls_id, str_at(dc, "localDcEndpoint", "tlsId"));
  assert_int_equal(d->dtls_server, 1); /* the peer is active */
  assert_int_equal(d->local_sctp_port, 5000);
  /* The peer's values as the request gave them. */
  assert_string_equal(d->remote_ufrag, "peer");
  assert_int_equal(d->remote_no_ice, 0);
  assert_int_equal(d->has_remote_addr, 1);
  const struct sockaddr_in *a = (const struct sockaddr_in *)&d->remote_addr;
  assert_int_equal(a->sin_family, AF_INET);
  assert_int_equal(ntohs(a->sin_port), 5004);
  assert_int_equal(ntohl(a->sin_addr.s_addr), 0xC6336407); /* .100.7 */
  assert_int_equal(d->remote_fp.count, 1);
  assert_int_equal(d->remote_fp.items[0].value[0], 0x01);
  assert_string_equal(d->remote_tls_id, "abc3de65cddef001be82");
  assert_int_equal(d->remote_sctp_port, 5001);
  assert_int_equal(d->max_message_size, 32 * 1024);
  assert_int_equal(d->n_streams, 2);
  for (size_t i = 0; i < 2; i++) {
    if (r->sids[i] == 0) {
      assert_string_equal(r->protocol[i], "http");
      assert_int_equal(r->rel[i].policy, 0);
      assert_int_equal(r->rel[i].unordered, 0);
    } else {
      assert_int_equal(r->sids[i], 1000);
      assert_int_equal(r->rel[i].policy, 1);
      assert_int_equal(r->rel[i].value, 2);
      assert_int_equal(r->rel[i].unordered, 1);
    }
  }
  assert_int_equal(d->has_relay, 0);
  assert_int_equal(d->http_proxy, 0);
}

/* A patch tells the worker what changed: kept media are updated (no new
 * socket), new media are added, media gone are removed; a delete removes
 * every media. */
static void test_patch_and_delete(void **state) {
  struct fixture *f = *state;
  struct dcmf_context *ctx = create(f, one_media);
  f->n_recs = 0;
  assert_int_equal(
      patch(f, ctx,
            "[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/"
            "remoteIceInfo/ufrag\",\"value\":\"newpeer\"}]"),
      0);
  assert_int_equal(f->n_recs, 1);
  assert_int_equal(f->recs[0].op, DCMF_MEDIA_OP_UPDATE);
  assert_false(f->recs[0].had_fd);
  assert_string_equal(f->recs[0].desc.remote_ufrag, "newpeer");
  assert_string_equal(f->recs[0].desc.key.media_id, "m1");
  /* A refused patch tells the workers nothing. */
  f->n_recs = 0;
  assert_int_not_equal(
      patch(f, ctx,
            "[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/"
            "localIceInfo/ufrag\",\"value\":\"mine\"}]"),
      0);
  assert_int_equal(f->n_recs, 0);
  /* A second media. */
  assert_int_equal(
      patch(f, ctx,
            "[{\"op\":\"add\",\"path\":\"/terminations/0/medias/-\","
            "\"value\":{\"mediaId\":\"m2\",\"mediaResourceType\":\"DC\","
            "\"dcMedia\":{\"streams\":{\"0\":{}}}}}]"),
      0);
  assert_int_equal(f->n_recs, 2);
  assert_int_equal(f->recs[0].op, DCMF_MEDIA_OP_UPDATE);
  assert_string_equal(f->recs[0].desc.key.media_id, "m1");
  assert_int_equal(f->recs[1].op, DCMF_MEDIA_OP_ADD);
  assert_string_equal(f->recs[1].desc.key.media_id, "m2");
  assert_true(f->recs[1].had_fd);
  assert_int_equal(f->recs[1].desc.remote_no_ice, 1);
  /* The first goes. */
  f->n_recs = 0;
  assert_int_equal(
      patch(f, ctx,
            "[{\"op\":\"remove\",\"path\":\"/terminations/0/medias/0\"}]"),
      0);
  assert_int_equal(f->n_recs, 2);
  assert_int_equal(f->recs[0].op, DCMF_MEDIA_OP_REMOVE);
  assert_string_equal(f->recs[0].desc.key.media_id, "m1");
  assert_string_equal(f->recs[0].desc.key.context_id, ctx->id);
  assert_int_equal(f->recs[1].op, DCMF_MEDIA_OP_UPDATE);
  assert_string_equal(f->recs[1].desc.key.media_id, "m2");
  f->n_recs = 0;
  dcmf_registry_delete(f->reg, ctx);
  assert_int_equal(f->n_recs, 1);
  assert_int_equal(f->recs[0].op, DCMF_MEDIA_OP_REMOVE);
  assert_string_equal(f->recs[0].desc.key.media_id, "m2");
  assert_int_equal(f->res.in_use, 0);
}

static const char relay_pair[] =
    "{\"terminations\":[{\"terminationId\":\"a\",\"medias\":[{"
    "\"mediaId\":\"1\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
    "\"streams\":{\"1000\":{}},\"dcRelay\":{\"terminationId\":\"b\","
    "\"mediaId\":\"1\"}}}]},{\"terminationId\":\"b\",\"medias\":[{"
    "\"mediaId\":\"1\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
    "\"streams\":{\"1000\":{}}}}]}]}";

/* Over four workers, the two sides of every DC relay land on one worker
 * and name each other; the contexts spread over the workers. */
static void test_relay_twins_share_worker(void **state) {
  struct fixture *f = *state;
  enum { CONTEXTS = 24 };
  int used[4] = {0};
  for (int i = 0; i < CONTEXTS; i++) {
    f->n_recs = 0;
    struct dcmf_context *ctx = create(f, relay_pair);
    assert_int_equal(f->n_recs, 2);
    const struct rec *a = &f->recs[0], *b = &f->recs[1];
    assert_int_equal(a->op, DCMF_MEDIA_OP_ADD);
    assert_int_equal(b->op, DCMF_MEDIA_OP_ADD);
    assert_int_equal(a->worker, b->worker);
    assert_int_equal(a->worker, dcmf_controller_worker_for(ctx->id, 4));
    assert_true(a->desc.has_relay && b->desc.has_relay);
    assert_true(dcmf_media_key_equal(&a->desc.relay, &b->desc.key));
    assert_true(dcmf_media_key_equal(&b->desc.relay, &a->desc.key));
    used[a->worker]++;
    /* Release the ports for the next one; both sides go together. */
    f->n_recs = 0;
    dcmf_registry_delete(f->reg, ctx);
    assert_int_equal(f->n_recs, 2);
    assert_int_equal(f->recs[0].worker, a->worker);
    assert_int_equal(f->recs[1].worker, a->worker);
  }
  int workers_used = 0;
  for (int w = 0; w < 4; w++) {
    workers_used += used[w] > 0;
  }
  assert_true(workers_used >= 2);
}

/* The mapping: in range, stable, and even over many ids. */
static void test_worker_for(void **state) {
  (void)state;
  assert_int_equal(dcmf_controller_worker_for("anything", 1), 0);
  size_t count[4] = {0};
  char id[40];
  for (unsigned i = 0; i < 4000; i++) {
    snprintf(id, sizeof(id), "%08x-1c2d-4e5f-8a9b-%012x", i * 2654435761u, i);
    size_t w = dcmf_controller_worker_for(id, 4);
    assert_true(w < 4);
    assert_int_equal(w, dcmf_controller_worker_for(id, 4));
    count[w]++;
  }
  for (int w = 0; w < 4; w++) {
    assert_in_range(count[w], 800, 1200);
  }
}

/* UDP-proxy mode: the worker gets a descriptor of every MDC2 port, the
 * payload type of each stream, and the server's address. */
static void test_udp_proxy_ports(void **state) {
  struct fixture *f = *state;
  create(f, "{\"terminations\":[{\"terminationId\":\"ue\",\"medias\":[{"
            "\"mediaId\":\"1\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
            "\"mediaProxyConfig\":\"UDP\",\"remoteMdc2Endpoint\":{\"ip\":{"
            "\"ipv4Addr\":\"127.0.0.1\"},\"transport\":\"UDP\","
            "\"portNumber\":9000},\"streams\":{\"0\":{},\"1000\":{"
            "\"udpPayloadType\":\"text\"},\"1001\":{}}}}]}]}");
  assert_int_equal(f->n_recs, 1);
  const struct rec *r = &f->recs[0];
  assert_int_equal(r->desc.n_mdc2, 2);
  assert_int_equal(r->mdc2_fds, 2);
  assert_int_equal(f->res.in_use, 3);
  const struct sockaddr_in *a = (const struct sockaddr_in *)&r->desc.mdc2_addr;
  assert_int_equal(ntohs(a->sin_port), 9000);
  assert_string_equal(r->desc.mdc2_base, "http://127.0.0.1:9000/");
}

/* A media whose socket cannot be handed over is not posted; the next
 * one is. */
static void test_dup_failure(void **state) {
  struct fixture *f = *state;
  f->fail_dup = 1;
  create(f, one_media);
  assert_int_equal(f->n_recs, 0);
  f->fail_dup = 0;
  create(f, one_media);
  assert_int_equal(f->n_recs, 1);
  assert_true(f->recs[0].had_fd);
}

static struct dcmf_media_event make_event(const struct dcmf_context *ctx,
                                          const char *name) {
  struct dcmf_media_event ev;
  memset(&ev, 0, sizeof(ev));
  snprintf(ev.key.context_id, sizeof(ev.key.context_id), "%s", ctx->id);
  snprintf(ev.key.termination_id, sizeof(ev.key.termination_id), "ue-a");
  snprintf(ev.key.media_id, sizeof(ev.key.media_id), "m1");
  snprintf(ev.event, sizeof(ev.event), "%s", name);
  snprintf(ev.detail, sizeof(ev.detail), "{\"streamId\":0}");
  ev.time_ms = 1700000000123;
  return ev;
}

/* Events from a worker are kept on the context (the latest events_kept)
 * and sent to its eventNotifyUri; those of a context gone are dropped. */
static void test_events(void **state) {
  struct fixture *f = *state;
  struct dcmf_context *ctx = create(f, one_media);
  uint64_t version = ctx->version;
  struct dcmf_media_event ev = make_event(ctx, "DC_OPEN");
  dcmf_controller_on_event(f->ctl, &ev);
  assert_int_equal(f->n_notified, 1);
  assert_string_equal(f->notified_uri, "http://127.0.0.1:9/events");
  assert_string_equal(json_string_value(json_object_get(f->notified, "event")),
                      "DC_OPEN");
  assert_string_equal(
      json_string_value(json_object_get(f->notified, "contextId")), ctx->id);
  assert_string_equal(json_string_value(json_object_get(f->notified, "time")),
                      "2023-11-14T22:13:20.123Z");
  assert_int_equal(int_at(f->notified, "detail", "streamId"), 0);
  assert_true(ctx->version != version);
  json_t *events = json_object_get(ctx->doc, "events");
  assert_int_equal(json_array_size(events), 1);
  ev = make_event(ctx, "DC_CLOSE");
  dcmf_controller_on_event(f->ctl, &ev);
  ev = make_event(ctx, "CONSENT_LOST");
  dcmf_controller_on_event(f->ctl, &ev);
  events = json_object_get(ctx->doc, "events");
  assert_int_equal(json_array_size(events), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(events, 1), "event")),
      "CONSENT_LOST");
  /* Gone: nothing is sent. */
  struct dcmf_media_event late = make_event(ctx, "DC_OPEN");
  dcmf_registry_delete(f->reg, ctx);
  dcmf_controller_on_event(f->ctl, &late);
  assert_int_equal(f->n_notified, 3);
}

static void test_settings_checked(void **state) {
  (void)state;
  struct dcmf_controller_settings cs = {.n_workers = 0};
  struct dcmf_controller *ctl = NULL;
  assert_int_equal(dcmf_controller_new(&ctl, &cs), DCMF_ERR_INVALID);
  assert_null(ctl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_posts_add, setup, teardown),
      cmocka_unit_test_setup_teardown(test_patch_and_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_relay_twins_share_worker, setup_four,
                                      teardown),
      cmocka_unit_test(test_worker_for),
      cmocka_unit_test_setup_teardown(test_udp_proxy_ports, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dup_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events, setup, teardown),
      cmocka_unit_test(test_settings_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
