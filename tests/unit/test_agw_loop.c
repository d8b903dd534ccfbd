/*
 * Loopback tests of the whole AGW shim (agw-shim/api/agw.h) through libuv:
 * a real port pool on 127.0.0.1, a real media worker running the relays
 * (by message, as in dcmfd), and plain UDP sockets playing the phone and
 * the core. Checks byte-exact relaying both ways, drops, the counters
 * the worker pushes back on GET and /metrics, and that DELETE and
 * dcmf_agw_del give every port back. e2ae contexts: the media session
 * reaches the worker, the reply carries the certificate's fingerprint in
 * the asked hash, events are kept and notified, counter snapshots
 * replace each other, and the ports come back only after the worker
 * reported the session released.
 */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <uv.h>

#include "agw.h"
#include "cert.h"
#include "errors.h"
#include "ports.h"
#include "worker.h"

struct fixture {
  uv_loop_t loop;
  struct dcmf_cert cert;
  struct dcmf_worker *worker;
  struct dcmf_ports *ports;
  struct dcmf_agw *agw;
  struct dcmf_api_response resp;
  json_t *body;
  /* What the shim POSTed to notify URIs. */
  char notified_uri[256];
  char notified[1024];
  int n_notified;
  int link_down, lose_remove; /* see post_media */
};

static int pool_alloc(void *user, uint16_t *port, int *fd) {
  struct fixture *f = user;
  int rv = dcmf_ports_alloc(f->ports, port);
  if (rv != 0) {
    return rv;
  }
  *fd = dup(dcmf_ports_fd(f->ports, *port));
  if (*fd < 0) {
    dcmf_ports_release(f->ports, *port);
    return DCMF_ERR_SYSTEM;
  }
  return 0;
}

static void pool_release(void *user, uint16_t port) {
  struct fixture *f = user;
  dcmf_ports_release(f->ports, port);
}

/* Only e2ae media run here: their events belong to the shim. */
static void on_media_event(void *user, const struct dcmf_media_event *ev) {
  struct fixture *f = user;
  assert_int_equal(dcmf_agw_on_media_event(f->agw, ev), 1);
}

/* |link_down| plays a worker process whose link is down (wpool.c): the
 * message is dropped with its descriptors and the post says so.
 * |lose_remove| plays a REMOVE sent just before the worker died: taken,
 * never answered. */
static int post_media(void *user, size_t worker, enum dcmf_media_op op,
                      struct dcmf_media_desc *desc) {
  struct fixture *f = user;
  assert_int_equal(worker, 0);
  if (f->link_down || (f->lose_remove && op == DCMF_MEDIA_OP_REMOVE)) {
    if (desc->fd >= 0) {
      close(desc->fd);
    }
    dcmf_media_desc_free(desc);
    return f->link_down ? DCMF_ERR_SYSTEM : 0;
  }
  dcmf_worker_post(f->worker, op, desc);
  return 0;
}

static int pool_dup(void *user, uint16_t port) {
  struct fixture *f = user;
  return dup(dcmf_ports_fd(f->ports, port));
}

static void notify(void *user, const char *uri, const char *json) {
  struct fixture *f = user;
  snprintf(f->notified_uri, sizeof(f->notified_uri), "%s", uri);
  snprintf(f->notified, sizeof(f->notified), "%s", json);
  f->n_notified++;
}

/* The worker's relay reports, on the control loop, as main.c does. */
static void on_relay_event(void *user, const struct dcmf_relay_event *ev) {
  struct fixture *f = user;
  dcmf_agw_on_relay_event(f->agw, ev);
}

/* The shim's one worker runs in this process (dcmfd's go through the
 * worker processes' link, which test_wire covers). */
static void post_relay(void *user, size_t worker, enum dcmf_relay_op op,
                       struct dcmf_relay_desc *desc) {
  struct fixture *f = user;
  assert_int_equal(worker, 0);
  if (f->lose_remove && op == DCMF_RELAY_OP_REMOVE) {
    return; /* as post_media: taken, never answered */
  }
  dcmf_worker_post_relay(f->worker, op, desc);
}

static int setup_outbox(void **state, size_t outbox_limit) {
  struct fixture *f = calloc(1, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  char err[256];
  assert_int_equal(dcmf_cert_generate(&f->cert, err, sizeof(err)), 0);
  struct dcmf_worker_settings ws = {.cert = f->cert.x509,
                                    .pkey = f->cert.pkey,
                                    .max_streams = 16,
                                    .on_event = on_media_event,
                                    .user = f,
                                    .on_relay_event = on_relay_event,
                                    .relay_user = f,
                                    .outbox_limit = outbox_limit};
  assert_int_equal(
      dcmf_worker_start(&f->worker, &f->loop, &ws, err, sizeof(err)), 0);
  uint16_t base = (uint16_t)(46000 + (getpid() % 100) * 12);
  assert_int_equal(dcmf_ports_new(&f->ports, "127.0.0.1", base,
                                  (uint16_t)(base + 10)),
                   0);
  struct dcmf_agw_settings s = {.bind_addr = "127.0.0.1",
                                .n_workers = 1,
                                .post_relay = post_relay,
                                .post_user = f,
                                .advertise_addr = "127.0.0.1",
                                .port_alloc = pool_alloc,
                                .port_release = pool_release,
                                .port_dup = pool_dup,
                                .port_user = f,
                                .cert = &f->cert,
                                .post_media = post_media,
                                .notify = notify};
  assert_int_equal(dcmf_agw_new(&f->agw, &s), 0);
  *state = f;
  return 0;
}

static int setup(void **state) {
  return setup_outbox(state, 0);
}

/* A worker whose outbox holds one event: the first RELEASED fills it. */
static int setup_full_outbox(void **state) {
  return setup_outbox(state, 1);
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
  /* As dcmfd shuts down: the worker first (it closes every relay
   * socket), then the shim gives back every port it still holds. */
  dcmf_worker_stop(f->worker);
  dcmf_agw_del(f->agw);
  f->agw = NULL;
  assert_int_equal(dcmf_ports_in_use(f->ports), 0);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* closes the worker's outbox handle */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  dcmf_ports_del(f->ports);
  dcmf_cert_free(&f->cert);
  free(f);
  return 0;
}

static int call(struct fixture *f, const char *method, const char *path,
                const char *type, const char *body) {
  reset(f);
  struct dcmf_api_request req = {.method = method,
                                 .path = path,
                                 .content_type = type,
                                 .body = (const uint8_t *)body,
                                 .body_len = body ? strlen(body) : 0};
  dcmf_agw_handle(f->agw, &req, &f->resp);
  if (f->resp.body.len > 0) {
    f->body = json_loadb(f->resp.body.data, f->resp.body.len, 0, NULL);
  }
  return f->resp.status;
}

static int udp_socket(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in in = {.sin_family = AF_INET};
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
  socklen_t len = sizeof(in);
  getsockname(fd, (struct sockaddr *)&in, &len);
  *port = ntohs(in.sin_port);
  struct timeval tv = {.tv_sec = 2};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

static void send_to(int fd, uint16_t port, const void *data, size_t len) {
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(
      sendto(fd, data, len, 0, (struct sockaddr *)&to, sizeof(to)),
      (ssize_t)len);
}

/* Receives one datagram; returns its length and the source port. */
static ssize_t recv_from(int fd, void *buf, size_t cap, uint16_t *port) {
  struct sockaddr_in from;
  socklen_t len = sizeof(from);
  ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&from, &len);
  if (n >= 0 && port != NULL) {
    *port = ntohs(from.sin_port);
  }
  return n;
}

static json_int_t stat_of(json_t *doc, const char *a, const char *b) {
  json_t *st = json_object_get(doc, "statistics");
  return json_integer_value(json_object_get(json_object_get(st, a), b));
}

static void on_tick(uv_timer_t *t) {
  (void)t;
}

/* Runs the control loop for one turn of at most 5 ms: the worker's
 * reports arrive on it. (The worker's outbox handle is unreferenced, as
 * in dcmfd, where the server keeps the loop alive; a timer does here.) */
static void turn(struct fixture *f) {
  uv_timer_t tick;
  uv_timer_init(&f->loop, &tick);
  uv_timer_start(&tick, on_tick, 5, 0);
  uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Polls GET until the counter |a|.|b| reaches |want|: the worker pushes
 * counters at most DCMF_RELAY_PUSH_MS after it counted them. Bounded to
 * 400 turns (about 2 s). */
static void wait_stat(struct fixture *f, const char *path, const char *a,
                      const char *b, json_int_t want) {
  for (int i = 0; i < 400; i++) {
    assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
    if (stat_of(f->body, a, b) == want) {
      return;
    }
    turn(f);
  }
  fail_msg("%s.%s never reached %lld", a, b, (long long)want);
}

static void test_relay_through_sockets(void **state) {
  struct fixture *f = *state;
  uint16_t phone_port, core_port, stranger_port;
  int phone = udp_socket(&phone_port), core = udp_socket(&core_port);
  int stranger = udp_socket(&stranger_port);
  char body[512];
  snprintf(body, sizeof(body),
           "{\"terminations\":[{\"terminationId\":\"access\",\"latching\":"
           "\"signalled-only\",\"remote\":{\"ipv4Addr\":\"127.0.0.1\","
           "\"port\":%u}},{\"terminationId\":\"core\",\"remote\":"
           "{\"ipv4Addr\":\"127.0.0.1\",\"port\":%u}}]}",
           phone_port, core_port);
  assert_int_equal(call(f, "POST", "/agw/v1/contexts", "application/json",
                        body),
                   201);
  json_t *terms = json_object_get(f->body, "terminations");
  uint16_t access = (uint16_t)json_integer_value(json_object_get(
      json_object_get(json_array_get(terms, 0), "local"), "port"));
  uint16_t core_local = (uint16_t)json_integer_value(json_object_get(
      json_object_get(json_array_get(terms, 1), "local"), "port"));
  char path[128];
  snprintf(path, sizeof(path), "/agw/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  assert_int_equal(dcmf_ports_in_use(f->ports), 2);

  /* A stranger cannot latch (signalled-only) and is counted. */
  send_to(stranger, access, "x", 1);

  uint8_t out[1500], in[2000];
  for (size_t i = 0; i < sizeof(out); i++) {
    out[i] = (uint8_t)(i * 7 + 3);
  }
  uint16_t src;
  send_to(phone, access, out, sizeof(out));
  assert_int_equal(recv_from(core, in, sizeof(in), &src), sizeof(out));
  assert_memory_equal(in, out, sizeof(out));
  assert_int_equal(src, core_local);
  send_to(core, core_local, out, 100);
  assert_int_equal(recv_from(phone, in, sizeof(in), &src), 100);
  assert_memory_equal(in, out, 100);
  assert_int_equal(src, access);
  /* An empty datagram is relayed as one. */
  send_to(phone, access, out, 0);
  assert_int_equal(recv_from(core, in, sizeof(in), NULL), 0);
  /* The stranger toward the core port is dropped too. */
  send_to(stranger, core_local, "y", 1);

  wait_stat(f, path, "accessToCore", "packets", 2);
  wait_stat(f, path, "coreToAccess", "bytes", 100);
  json_t *dropped = json_object_get(json_object_get(f->body, "statistics"),
                                    "dropped");
  for (int i = 0; i < 400; i++) {
    call(f, "GET", path, NULL, NULL);
    dropped = json_object_get(json_object_get(f->body, "statistics"),
                              "dropped");
    if (json_integer_value(json_object_get(json_object_get(dropped, "core"),
                                           "unknownSource")) == 1) {
      break;
    }
    turn(f);
  }
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(dropped, "access"), "unknownSource")),
                   1);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(dropped, "core"), "unknownSource")),
                   1);
  assert_int_equal(stat_of(f->body, "accessToCore", "bytes"), sizeof(out));
  json_t *latched = json_object_get(
      json_array_get(json_object_get(f->body, "terminations"), 0), "latched");
  assert_int_equal(json_integer_value(json_object_get(latched, "port")),
                   phone_port);

  struct dcmf_buf metrics = {0};
  dcmf_agw_metrics(f->agw, &metrics);
  assert_non_null(strstr(metrics.data, "dcmf_agw_relays 1\n"));
  assert_non_null(strstr(
      metrics.data, "dcmf_agw_packets_total{direction=\"access_to_core\"} 2\n"));
  assert_non_null(strstr(
      metrics.data, "dcmf_agw_bytes_total{direction=\"core_to_access\"} 100\n"));
  assert_non_null(strstr(metrics.data, "dcmf_agw_dropped_total{side=\"core\","
                                       "reason=\"unknown_source\"} 1\n"));
  assert_non_null(strstr(metrics.data, "dcmf_agw_latches_total 1\n"));
  dcmf_buf_free(&metrics);

  /* DELETE: the ports come back once the worker reports the relay's
   * sockets closed, not before. */
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  assert_int_equal(dcmf_ports_in_use(f->ports), 2);
  for (int i = 0; i < 400 && dcmf_ports_in_use(f->ports) > 0; i++) {
    turn(f);
  }
  assert_int_equal(dcmf_ports_in_use(f->ports), 0);
  close(phone);
  close(core);
  close(stranger);
}

/* Contexts left at shutdown are closed by dcmf_agw_del (teardown checks
 * that every port is back before the loop runs again). */
static void test_del_releases_everything(void **state) {
  struct fixture *f = *state;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(
        call(f, "POST", "/agw/v1/contexts", "application/json",
             "{\"terminations\":[{\"terminationId\":\"access\"},"
             "{\"terminationId\":\"core\"}]}"),
        201);
  }
  assert_int_equal(dcmf_ports_in_use(f->ports), 6);
  /* The pool has 11 ports: the sixth relay gets one, fails on the second
   * and gives the first back. */
  assert_int_equal(call(f, "POST", "/agw/v1/contexts", "application/json",
                        "{\"terminations\":[{\"terminationId\":\"access\"},"
                        "{\"terminationId\":\"core\"}]}"),
                   201);
  assert_int_equal(call(f, "POST", "/agw/v1/contexts", "application/json",
                        "{\"terminations\":[{\"terminationId\":\"access\"},"
                        "{\"terminationId\":\"core\"}]}"),
                   201);
  assert_int_equal(call(f, "POST", "/agw/v1/contexts", "application/json",
                        "{\"terminations\":[{\"terminationId\":\"access\"},"
                        "{\"terminationId\":\"core\"}]}"),
                   503);
  assert_int_equal(dcmf_ports_in_use(f->ports), 10);
}

static json_t *term_of(json_t *doc, size_t i) {
  return json_array_get(json_object_get(doc, "terminations"), i);
}

static const char *str_at(json_t *obj, const char *a, const char *b) {
  return json_string_value(json_object_get(json_object_get(obj, a), b));
}

/* A worker's event about the context's media, as it would arrive. */
static void media_event(struct fixture *f, const char *id, const char *event,
                        const char *detail) {
  struct dcmf_media_event ev;
  memset(&ev, 0, sizeof(ev));
  snprintf(ev.key.context_id, sizeof(ev.key.context_id), "%.36s", id);
  snprintf(ev.key.termination_id, sizeof(ev.key.termination_id), "access");
  snprintf(ev.key.media_id, sizeof(ev.key.media_id), "rtp");
  snprintf(ev.event, sizeof(ev.event), "%s", event);
  snprintf(ev.detail, sizeof(ev.detail), "%s", detail);
  ev.time_ms = 1733406597566; /* 2024-12-05T13:49:57.566Z */
  assert_int_equal(dcmf_agw_on_media_event(f->agw, &ev), 1);
}

static void test_e2ae_media(void **state) {
  struct fixture *f = *state;
  assert_int_equal(
      call(f, "POST", "/agw/v1/contexts", "application/json",
           "{\"terminations\":[{\"terminationId\":\"access\","
           "\"transport\":\"UDP/TLS/RTP/SAVPF\",\"notifyUri\":"
           "\"http://127.0.0.1:9/agw-events\",\"dtls\":{\"setup\":\"actpass\","
           "\"localFingerprintHash\":\"sha-512\"}},"
           "{\"terminationId\":\"core\",\"transport\":\"RTP/AVP\","
           "\"remote\":{\"ipv4Addr\":\"127.0.0.1\",\"port\":9}}]}"),
      201);
  assert_int_equal(dcmf_ports_in_use(f->ports), 3);
  char id[37], path[128];
  snprintf(id, sizeof(id), "%s",
           json_string_value(json_object_get(f->body, "contextId")));
  snprintf(path, sizeof(path), "/agw/v1/contexts/%s", id);
  char fp[DCMF_CERT_FP_MAX];
  assert_true(
      dcmf_cert_fingerprint(&f->cert, DCMF_HASH_SHA512, fp, sizeof(fp)) > 0);
  json_t *acc = term_of(f->body, 0);
  assert_string_equal(str_at(acc, "dtls", "localFingerprint"), fp);
  assert_int_equal(strlen(str_at(acc, "ice", "localUfrag")), 8);
  assert_int_equal(strlen(str_at(acc, "ice", "localPwd")), 24);
  /* Another context gets other credentials. */
  char ufrag[16], pwd[32], tls[40];
  snprintf(ufrag, sizeof(ufrag), "%s", str_at(acc, "ice", "localUfrag"));
  snprintf(pwd, sizeof(pwd), "%s", str_at(acc, "ice", "localPwd"));
  snprintf(tls, sizeof(tls), "%s", str_at(acc, "dtls", "localTlsId"));
  assert_int_equal(
      call(f, "POST", "/agw/v1/contexts", "application/json",
           "{\"terminations\":[{\"terminationId\":\"access\","
           "\"transport\":\"UDP/TLS/RTP/SAVP\",\"dtls\":{\"setup\":"
           "\"active\"}},{\"terminationId\":\"core\",\"transport\":"
           "\"RTP/AVP\",\"rtcpMux\":true}]}"),
      201);
  json_t *other = term_of(f->body, 0);
  assert_string_not_equal(str_at(other, "ice", "localUfrag"), ufrag);
  assert_string_not_equal(str_at(other, "ice", "localPwd"), pwd);
  assert_string_not_equal(str_at(other, "dtls", "localTlsId"), tls);
  char other_path[128];
  snprintf(other_path, sizeof(other_path), "/agw/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  assert_int_equal(call(f, "DELETE", other_path, NULL, NULL), 204);
  for (int i = 0; i < 400 && dcmf_ports_in_use(f->ports) != 3; i++) {
    turn(f);
  }
  assert_int_equal(dcmf_ports_in_use(f->ports), 3);
  /* A failure: kept for GET and notified, with the event's JSON. */
  media_event(f, id, "DTLS_FAILURE", "{\"reason\":\"bad\"}");
  assert_int_equal(f->n_notified, 1);
  assert_string_equal(f->notified_uri, "http://127.0.0.1:9/agw-events");
  json_t *n = json_loads(f->notified, 0, NULL);
  assert_non_null(n);
  assert_string_equal(json_string_value(json_object_get(n, "event")),
                      "DTLS_FAILURE");
  assert_string_equal(json_string_value(json_object_get(n, "contextId")), id);
  assert_string_equal(str_at(n, "detail", "reason"), "bad");
  assert_string_equal(json_string_value(json_object_get(n, "time")),
                      "2024-12-05T13:49:57.566Z");
  json_decref(n);
  /* Counter snapshots replace each other; /metrics sums their growth. */
  media_event(
      f, id, "RTP_COUNTERS",
      "{\"profile\":\"SRTP_AEAD_AES_256_GCM\",\"toCore\":{\"packets\":5,"
      "\"bytes\":500},\"toAccess\":{\"packets\":2,\"bytes\":200},"
      "\"drops\":{\"unknownSource\":1,\"srtpAuth\":0}}");
  media_event(
      f, id, "RTP_COUNTERS",
      "{\"profile\":\"SRTP_AEAD_AES_256_GCM\",\"toCore\":{\"packets\":8,"
      "\"bytes\":800},\"toAccess\":{\"packets\":3,\"bytes\":300},"
      "\"drops\":{\"unknownSource\":4,\"srtpAuth\":1},\"final\":false}");
  assert_int_equal(f->n_notified, 1); /* snapshots are not notified */
  assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
  assert_int_equal(json_array_size(json_object_get(f->body, "events")), 1);
  json_t *core = term_of(f->body, 1);
  acc = term_of(f->body, 0);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(core, "rtpStatistics"), "packetsSent")),
                   8);
  assert_int_equal(
      json_integer_value(json_object_get(
          json_object_get(json_object_get(core, "rtpStatistics"), "dropped"),
          "unknownSource")),
      4);
  assert_string_equal(str_at(acc, "rtpStatistics", "srtpProfile"),
                      "SRTP_AEAD_AES_256_GCM");
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(acc, "rtpStatistics"), "packetsSent")),
                   3);
  assert_int_equal(
      json_integer_value(json_object_get(
          json_object_get(json_object_get(f->body, "rtpCounters"), "toCore"),
          "bytes")),
      800);
  struct dcmf_buf m = {0};
  dcmf_agw_metrics(f->agw, &m);
  dcmf_buf_append(&m, "", 1);
  const char *text = m.data;
  assert_non_null(strstr(text, "dcmf_agw_e2ae_contexts 1\n"));
  assert_non_null(strstr(text, "dcmf_agw_e2ae_dtls_failures_total 1\n"));
  assert_non_null(
      strstr(text, "dcmf_agw_e2ae_packets_total{termination=\"core\"} 8\n"));
  assert_non_null(
      strstr(text, "dcmf_agw_e2ae_bytes_total{termination=\"access\"} 300\n"));
  assert_non_null(strstr(text, "dcmf_agw_e2ae_dropped_total{termination="
                               "\"core\",reason=\"unknown_source\"} 4\n"));
  assert_non_null(strstr(text, "dcmf_agw_e2ae_dropped_total{termination="
                               "\"access\",reason=\"srtp_auth\"} 1\n"));
  dcmf_buf_free(&m);
  /* ICE restart: new local credentials. */
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"add\",\"path\":\"/terminations/0/ice\",\"value\":"
           "{\"remoteUfrag\":\"ufrA\",\"remotePwd\":"
           "\"aaaaaaaaaaaaaaaaaaaaaaaa\"}}]"),
      200);
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"replace\",\"path\":\"/terminations/0/ice\",\"value\":"
           "{\"remoteUfrag\":\"ufrB\",\"remotePwd\":"
           "\"bbbbbbbbbbbbbbbbbbbbbbbb\"}}]"),
      200);
  assert_string_not_equal(str_at(term_of(f->body, 0), "ice", "localUfrag"),
                          ufrag);
  /* Our tls-id (RFC 8842): kept while the association is, new with a
   * new one (a new tls-id of the peer). */
  char tls_id[40];
  snprintf(tls_id, sizeof(tls_id), "%s",
           str_at(term_of(f->body, 0), "dtls", "localTlsId"));
  assert_int_equal(strlen(tls_id), 32);
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"add\",\"path\":\"/terminations/0/dtls/tlsId\","
           "\"value\":\"abcdefghijklmnopqrstuvwx\"}]"),
      200);
  assert_string_equal(str_at(term_of(f->body, 0), "dtls", "localTlsId"),
                      tls_id);
  assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
  assert_string_equal(str_at(term_of(f->body, 0), "dtls", "localTlsId"),
                      tls_id);
  assert_int_equal(
      call(f, "PATCH", path, "application/json-patch+json",
           "[{\"op\":\"replace\",\"path\":\"/terminations/0/dtls/tlsId\","
           "\"value\":\"ABCDEFGHIJKLMNOPQRSTUVWX\"}]"),
      200);
  assert_string_not_equal(str_at(term_of(f->body, 0), "dtls", "localTlsId"),
                          tls_id);
  assert_int_equal(strlen(str_at(term_of(f->body, 0), "dtls", "localTlsId")),
                   32);
  /* DELETE: the ports stay taken until the worker reports RELEASED. */
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  assert_int_equal(dcmf_ports_in_use(f->ports), 3);
  /* The final snapshot, pushed as the session closes, still counts. */
  media_event(f, id, "RTP_COUNTERS",
              "{\"toCore\":{\"packets\":10,\"bytes\":1000},\"final\":true}");
  for (int i = 0; i < 400 && dcmf_ports_in_use(f->ports) != 0; i++) {
    turn(f);
  }
  assert_int_equal(dcmf_ports_in_use(f->ports), 0);
  /* The record is gone: a late event of the context is not the shim's. */
  struct dcmf_media_event late;
  memset(&late, 0, sizeof(late));
  snprintf(late.key.context_id, sizeof(late.key.context_id), "%.36s", id);
  snprintf(late.event, sizeof(late.event), "DTLS_FAILURE");
  assert_int_equal(dcmf_agw_on_media_event(f->agw, &late), 0);
  assert_int_equal(f->n_notified, 1);
  m = (struct dcmf_buf){0};
  dcmf_agw_metrics(f->agw, &m);
  dcmf_buf_append(&m, "", 1);
  assert_non_null(strstr(m.data, "dcmf_agw_e2ae_contexts 0\n"));
  /* The totals stay after the context is gone. */
  assert_non_null(
      strstr(m.data, "dcmf_agw_e2ae_packets_total{termination=\"core\"} 10\n"));
  dcmf_buf_free(&m);
}

/* The worker serving an e2ae context ends: the context is released at
 * once (its sockets died with the worker), its ports are back, and a
 * GET finds nothing. */
static void test_e2ae_worker_failed(void **state) {
  struct fixture *f = *state;
  assert_int_equal(
      call(
          f, "POST", "/agw/v1/contexts", "application/json",
          "{\"terminations\":[{\"terminationId\":\"access\","
          "\"transport\":\"UDP/TLS/RTP/SAVP\",\"dtls\":{\"setup\":\"active\"}},"
          "{\"terminationId\":\"core\",\"transport\":\"RTP/AVPF\","
          "\"rtcpMux\":true}]}"),
      201);
  assert_int_equal(dcmf_ports_in_use(f->ports), 2);
  char path[128];
  snprintf(path, sizeof(path), "/agw/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  assert_int_equal(dcmf_agw_worker_failed(f->agw, 0), 1);
  assert_int_equal(dcmf_ports_in_use(f->ports), 0);
  assert_int_equal(call(f, "GET", path, NULL, NULL), 404);
  assert_int_equal(dcmf_agw_worker_failed(f->agw, 0), 0);
}

/* Waits, bounded to 2 s, until the worker thread holds |want| sessions
 * (its gauge is read across threads, as /metrics does). */
static void wait_sessions(struct fixture *f, uint64_t want) {
  for (int i = 0; i < 2000; i++) {
    if (atomic_load_explicit(&dcmf_worker_stats(f->worker)->sessions,
                             memory_order_relaxed) == want) {
      return;
    }
    struct timespec ms = {.tv_nsec = 1000000};
    nanosleep(&ms, NULL);
  }
  fail_msg("the worker never held %llu sessions", (unsigned long long)want);
}

/* RELEASED is never refused: two contexts deleted while the control
 * loop does not turn; the outbox (of one event here) is full with the
 * first one's RELEASED when the second's comes, and both get their
 * ports back. */
static void test_e2ae_released_outbox_full(void **state) {
  struct fixture *f = *state;
  char path[2][128];
  for (int i = 0; i < 2; i++) {
    assert_int_equal(
        call(f, "POST", "/agw/v1/contexts", "application/json",
             "{\"terminations\":[{\"terminationId\":\"access\","
             "\"transport\":\"UDP/TLS/RTP/SAVP\",\"dtls\":{\"setup\":"
             "\"active\"}},{\"terminationId\":\"core\",\"transport\":"
             "\"RTP/AVP\",\"rtcpMux\":true}]}"),
        201);
    snprintf(path[i], sizeof(path[i]), "/agw/v1/contexts/%s",
             json_string_value(json_object_get(f->body, "contextId")));
  }
  wait_sessions(f, 2);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(call(f, "DELETE", path[i], NULL, NULL), 204);
  }
  wait_sessions(f, 0);
  for (int i = 0; i < 400 && dcmf_ports_in_use(f->ports) != 0; i++) {
    turn(f);
  }
  assert_int_equal(dcmf_ports_in_use(f->ports), 0);
  assert_int_equal(dcmf_worker_events_refused(f->worker), 0);
}

/* A worker that dies after a DELETE posted the REMOVE (RELEASED never
 * comes): the ports come back with the worker's failure, for an e2ae
 * context and for a relay. A worker whose link is down gets nothing: a
 * POST fails with its ports back, and a DELETE gives them back at once. */
static void test_e2ae_worker_gone(void **state) {
  static const char body[] =
      "{\"terminations\":[{\"terminationId\":\"access\","
      "\"transport\":\"UDP/TLS/RTP/SAVP\",\"dtls\":{\"setup\":"
      "\"active\"}},{\"terminationId\":\"core\",\"transport\":"
      "\"RTP/AVP\",\"rtcpMux\":true}]}";
  struct fixture *f = *state;
  char path[128], relay_path[128];
  assert_int_equal(
      call(f, "POST", "/agw/v1/contexts", "application/json", body), 201);
  snprintf(path, sizeof(path), "/agw/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  assert_int_equal(call(f, "POST", "/agw/v1/contexts", "application/json",
                        "{\"terminations\":[{\"terminationId\":\"access\"},"
                        "{\"terminationId\":\"core\"}]}"),
                   201);
  snprintf(relay_path, sizeof(relay_path), "/agw/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  f->lose_remove = 1;
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  assert_int_equal(call(f, "DELETE", relay_path, NULL, NULL), 204);
  assert_int_equal(dcmf_ports_in_use(f->ports), 4); /* wait for RELEASED */
  assert_int_equal(dcmf_agw_worker_failed(f->agw, 0), 2);
  assert_int_equal(dcmf_ports_in_use(f->ports), 0);
  f->lose_remove = 0;
  /* The link is down: the POST fails and holds nothing. */
  f->link_down = 1;
  assert_int_equal(
      call(f, "POST", "/agw/v1/contexts", "application/json", body), 500);
  assert_int_equal(dcmf_ports_in_use(f->ports), 0);
  /* Created while the link was up, deleted while it is down. */
  f->link_down = 0;
  assert_int_equal(
      call(f, "POST", "/agw/v1/contexts", "application/json", body), 201);
  snprintf(path, sizeof(path), "/agw/v1/contexts/%s",
           json_string_value(json_object_get(f->body, "contextId")));
  assert_int_equal(dcmf_ports_in_use(f->ports), 2);
  f->link_down = 1;
  assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  assert_int_equal(dcmf_ports_in_use(f->ports), 0);
  assert_int_equal(dcmf_agw_worker_failed(f->agw, 0), 0); /* nothing left */
  f->link_down = 0;
}

/* Core rtcpMux: a context created with it has no core RTCP socket, so
 * turning it off is refused, naming the member; one created without it
 * may turn it on (the RTCP socket stays unused) and off again. */
static void test_e2ae_core_rtcp_mux_patch(void **state) {
  struct fixture *f = *state;
  char path[128];
  for (int mux = 1; mux >= 0; mux--) {
    char body[512];
    snprintf(body, sizeof(body),
             "{\"terminations\":[{\"terminationId\":\"access\","
             "\"transport\":\"UDP/TLS/RTP/SAVP\",\"dtls\":{\"setup\":"
             "\"active\"}},{\"terminationId\":\"core\",\"transport\":"
             "\"RTP/AVP\",\"rtcpMux\":%s}]}",
             mux ? "true" : "false");
    assert_int_equal(
        call(f, "POST", "/agw/v1/contexts", "application/json", body), 201);
    snprintf(path, sizeof(path), "/agw/v1/contexts/%s",
             json_string_value(json_object_get(f->body, "contextId")));
    const char *off = "[{\"op\":\"replace\",\"path\":"
                      "\"/terminations/1/rtcpMux\",\"value\":false}]";
    const char *on = "[{\"op\":\"replace\",\"path\":"
                     "\"/terminations/1/rtcpMux\",\"value\":true}]";
    if (mux) {
      assert_int_equal(
          call(f, "PATCH", path, "application/json-patch+json", off), 400);
      json_t *inv =
          json_array_get(json_object_get(f->body, "invalidParams"), 0);
      assert_string_equal(json_string_value(json_object_get(inv, "param")),
                          "/terminations/1/rtcpMux");
      assert_int_equal(call(f, "GET", path, NULL, NULL), 200);
      assert_true(
          json_is_true(json_object_get(term_of(f->body, 1), "rtcpMux")));
    } else {
      assert_int_equal(
          call(f, "PATCH", path, "application/json-patch+json", on), 200);
      assert_int_equal(
          call(f, "PATCH", path, "application/json-patch+json", off), 200);
    }
    assert_int_equal(call(f, "DELETE", path, NULL, NULL), 204);
  }
  for (int i = 0; i < 400 && dcmf_ports_in_use(f->ports) != 0; i++) {
    turn(f);
  }
  assert_int_equal(dcmf_ports_in_use(f->ports), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_relay_through_sockets, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_e2ae_media, setup, teardown),
      cmocka_unit_test_setup_teardown(test_e2ae_worker_failed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_e2ae_worker_gone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_e2ae_core_rtcp_mux_patch, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_e2ae_released_outbox_full,
                                      setup_full_outbox, teardown),
      cmocka_unit_test_setup_teardown(test_del_releases_everything, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
