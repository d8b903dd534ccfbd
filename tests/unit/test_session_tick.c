/*
 * Sessions on a libuv loop, as a media worker runs them, with dcmf-ue
 * phones (the same dcstack.c) on the same loop over loopback UDP: ICE,
 * DTLS, SCTP, the bootstrap channel (the bootstrap service, httpsvc.h)
 * and a 2 MiB page that fills SCTP's send buffer. The loop ticks usrsctp every 10 ms and then runs the
 * sessions' tick queue, as worker.c does, counting the visits: a session
 * whose sender waits for room is visited; once every page is delivered
 * and the sessions are idle, none is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "sctp_group.h"
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include "cert.h"
#include "dtls.h"
#include "errors.h"
#include "httpsvc.h"
#include "log.h"
#include "repo.h"
#include "sctp.h"
#include "service.h"
#include "session.h"
#include "tickq.h"
#include "ue.h"
#include "worker.h"

#define PHONES 4
#define PAGE_LEN (2u << 20)
#define TICK_MS 10
/* Ticks the fetches may take at most, and the idle ticks counted. */
#define BUSY_TICKS_MAX 3000
#define IDLE_TICKS 100

struct bed;

struct phone {
  struct bed *bed;
  struct dcmf_ue *ue;
  struct dcmf_session *session;
  size_t body_len;
  int status;
  int done;
};

struct bed {
  uv_loop_t loop;
  struct dcmf_cert cert[2]; /* MF, phones */
  struct dcmf_dtls_ctx ctx[2];
  struct dcmf_fingerprint_set fp[2];
  struct dcmf_log log;
  struct dcmf_repo *repo;
  uint8_t *page;
  struct dcmf_media_stats stats;
  struct dcmf_tickq mf_ticks, ue_ticks;
  void *boot_worker; /* the bootstrap service's per-worker state */
  struct dcmf_session_service services[1];
  struct dcmf_session_env env;
  uint8_t rx[65536], tx[65536];
  struct phone phones[PHONES];
  uv_timer_t tick;
  uint64_t last_ms;
  int ticks, idle_ticks;
  int done;
  size_t busy_visits, idle_visits;
  char failure[200];
};

static void emit(void *user, const struct dcmf_media_key *key,
                 const char *event, const char *detail) {
  (void)user;
  (void)key;
  (void)event;
  (void)detail;
}

static void phone_ready(void *user, struct dcmf_ue *ue) {
  struct phone *p = user;
  if (dcmf_ue_get(ue, "/big") != 0) {
    snprintf(p->bed->failure, sizeof(p->bed->failure), "GET not sent");
  }
}

static void phone_first_byte(void *user, struct dcmf_ue *ue) {
  (void)user;
  (void)ue;
}

static void phone_response(void *user, struct dcmf_ue *ue, int status,
                           const char *head, const uint8_t *body, size_t len) {
  (void)ue;
  (void)head;
  struct phone *p = user;
  p->status = status;
  p->body_len = len;
  if (len != PAGE_LEN || memcmp(body, p->bed->page, len) != 0) {
    snprintf(p->bed->failure, sizeof(p->bed->failure),
             "the page arrived changed (%zu bytes)", len);
  }
  p->done = 1;
  p->bed->done++;
}

static void phone_failed(void *user, struct dcmf_ue *ue, const char *why) {
  (void)ue;
  struct phone *p = user;
  snprintf(p->bed->failure, sizeof(p->bed->failure), "a phone failed: %s", why);
}

static const struct dcmf_ue_callbacks phone_cbs = {
    phone_ready, phone_first_byte, phone_response, phone_failed};

static void close_all(struct bed *b) {
  for (int i = 0; i < PHONES; i++) {
    struct phone *p = &b->phones[i];
    if (p->ue != NULL) {
      dcmf_ue_close(p->ue);
      p->ue = NULL;
    }
    if (p->session != NULL) {
      dcmf_session_close(p->session);
      p->session = NULL;
    }
  }
  uv_close((uv_handle_t *)&b->tick, NULL);
}

/* The worker's tick (worker.c on_sctp_tick) and dcmf-ue's, on one loop. */
static void on_tick(uv_timer_t *t) {
  struct bed *b = t->data;
  uint64_t now = uv_now(&b->loop);
  dcmf_sctp_stack_tick((uint32_t)(now - b->last_ms));
  b->last_ms = now;
  size_t visits = dcmf_tickq_run(&b->mf_ticks);
  dcmf_tickq_run(&b->ue_ticks);
  b->ticks++;
  if (b->done < PHONES) {
    b->busy_visits += visits;
    if (b->failure[0] != '\0' || b->ticks > BUSY_TICKS_MAX) {
      close_all(b);
    }
    return;
  }
  /* The first idle tick may still see what the last delivery left
   * (a session whose last sender resumed leaves on its visit). */
  if (b->idle_ticks++ > 0) {
    b->idle_visits += visits;
  }
  if (b->idle_ticks > IDLE_TICKS) {
    close_all(b);
  }
}

static int bound_socket(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

static void start_phone(struct bed *b, int i) {
  struct phone *p = &b->phones[i];
  p->bed = b;
  assert_int_equal(dcmf_ue_new(&p->ue, &b->loop, &b->ctx[1], &b->ue_ticks,
                               "127.0.0.1", &phone_cbs, p),
                   0);
  dcmf_ue_set_timeout(p->ue, 20000);
  struct dcmf_media_desc d;
  memset(&d, 0, sizeof(d));
  snprintf(d.key.context_id, sizeof(d.key.context_id), "ctx-%d", i);
  snprintf(d.key.termination_id, sizeof(d.key.termination_id), "ue");
  snprintf(d.key.media_id, sizeof(d.key.media_id), "1");
  d.fd = bound_socket(&d.port);
  snprintf(d.local_ufrag, sizeof(d.local_ufrag), "mf%02d", i);
  snprintf(d.local_pwd, sizeof(d.local_pwd), "abcdefghijklmnopqrstuvw%c",
           (char)('a' + i));
  snprintf(d.remote_ufrag, sizeof(d.remote_ufrag), "%s", dcmf_ue_ufrag(p->ue));
  d.dtls_server = 1;
  d.remote_fp = b->fp[1];
  d.local_sctp_port = d.remote_sctp_port = 5000;
  d.max_message_size = 65536;
  d.streams = calloc(1, sizeof(*d.streams));
  assert_non_null(d.streams);
  d.streams[0] = (struct dcmf_media_stream){.sid = 0, .priority = 256};
  snprintf(d.streams[0].protocol, sizeof(d.streams[0].protocol), "http");
  d.n_streams = 1;
  struct dcmf_ue_remote r;
  memset(&r, 0, sizeof(r));
  struct sockaddr_in *sa = (struct sockaddr_in *)&r.addr;
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa->sin_port = htons(d.port);
  snprintf(r.ufrag, sizeof(r.ufrag), "%s", d.local_ufrag);
  snprintf(r.pwd, sizeof(r.pwd), "%s", d.local_pwd);
  r.fingerprint = b->fp[0];
  r.sctp_port = 5000;
  r.mf_is_dtls_server = 1;
  assert_int_equal(dcmf_session_new(&p->session, &b->env, &d), 0);
  assert_int_equal(dcmf_ue_connect(p->ue, &r, 0), 0);
}

static void test_idle_sessions_are_not_visited(void **state) {
  (void)state;
  struct bed *b = calloc(1, sizeof(*b));
  assert_non_null(b);
  char err[256];
  for (int i = 0; i < 2; i++) {
    assert_int_equal(dcmf_cert_generate(&b->cert[i], err, sizeof(err)), 0);
    assert_int_equal(
        dcmf_dtls_ctx_init(&b->ctx[i], b->cert[i].x509, b->cert[i].pkey, 1200),
        0);
    assert_int_equal(dcmf_fingerprint_parse(b->cert[i].fingerprint, &b->fp[i]),
                     0);
  }
  b->log = (struct dcmf_log){stderr, DCMF_LOG_ERROR, DCMF_LOG_TEXT};
  b->page = malloc(PAGE_LEN);
  assert_non_null(b->page);
  for (size_t i = 0; i < PAGE_LEN; i++) {
    b->page[i] = (uint8_t)(i * 7 + i / 4096);
  }
  assert_int_equal(dcmf_repo_new(&b->repo, NULL), 0);
  assert_int_equal(dcmf_repo_add(b->repo, "/big", b->page, PAGE_LEN), 0);
  assert_int_equal(uv_loop_init(&b->loop), 0);
  dcmf_tickq_init(&b->mf_ticks);
  dcmf_tickq_init(&b->ue_ticks);
  /* The bootstrap service serves the page, as dcmfd registers it. */
  struct dcmf_svc_worker_env wenv = {.loop = &b->loop,
                                     .log = &b->log,
                                     .stats = &b->stats,
                                     .tx_scratch = b->tx,
                                     .tx_scratch_len = sizeof(b->tx)};
  assert_int_equal(dcmf_bootstrap_service.init(&b->boot_worker, &wenv,
                                               b->repo, err, sizeof(err)),
                   0);
  b->services[0] =
      (struct dcmf_session_service){&dcmf_bootstrap_service, b->boot_worker};
  b->env = (struct dcmf_session_env){.loop = &b->loop,
                                     .dtls_ctx = &b->ctx[0],
                                     .log = &b->log,
                                     .stats = &b->stats,
                                     .max_streams = 16,
                                     .rx_scratch = b->rx,
                                     .rx_scratch_len = sizeof(b->rx),
                                     .services = b->services,
                                     .n_services = 1,
                                     .emit = emit,
                                     .emit_user = b,
                                     .ticks = &b->mf_ticks};
  for (int i = 0; i < PHONES; i++) {
    start_phone(b, i);
  }
  uv_timer_init(&b->loop, &b->tick);
  b->tick.data = b;
  b->last_ms = uv_now(&b->loop);
  uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
  uv_run(&b->loop, UV_RUN_DEFAULT);

  print_message("%d ticks, %zu visits while fetching, %zu after\n", b->ticks,
                b->busy_visits, b->idle_visits);
  assert_string_equal(b->failure, "");
  assert_int_equal(b->done, PHONES);
  for (int i = 0; i < PHONES; i++) {
    assert_int_equal(b->phones[i].status, 200);
  }
  /* 2 MiB each through a 1 MiB send buffer: the senders waited, and the
   * tick visited their sessions. */
  assert_true(b->busy_visits > 0);
  /* Idle: IDLE_TICKS ticks, not one visit; nobody is queued. */
  assert_int_equal(b->idle_ticks, IDLE_TICKS + 1);
  assert_int_equal(b->idle_visits, 0);
  assert_int_equal(b->mf_ticks.count, 0);
  assert_int_equal(atomic_load(&b->stats.dtls_ok), PHONES);

  dcmf_bootstrap_service.free(b->boot_worker);
  assert_int_equal(uv_loop_close(&b->loop), 0);
  for (int i = 0; i < 2; i++) {
    dcmf_dtls_ctx_free(&b->ctx[i]);
    dcmf_cert_free(&b->cert[i]);
  }
  dcmf_repo_del(b->repo);
  free(b->page);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idle_sessions_are_not_visited),
  };
  return cmocka_run_group_tests(tests, dcmf_test_sctp_group_setup,
                                dcmf_test_sctp_group_teardown);
}
