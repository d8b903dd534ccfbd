/*
 * The whole data-channel stack in memory, as dcmfd and dcmf-ue run it
 * (dcstack.c): DTLS (client and server engines) carrying SCTP, data
 * channels negotiated and opened with DCEP, and HTTP over the bootstrap
 * channel answered by the httpdc engine from an in-memory repository.
 * Datagrams are carried by hand and usrsctp's timers ticked by hand, so
 * the test runs on a fake clock. After a tick only the stacks in the tick
 * queue are visited, as in the media worker: the tests count the visits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sctp_group.h"

#include "buf.h"
#include "cert.h"
#include "datachannel.h"
#include "dcstack.h"
#include "errors.h"
#include "httpdc.h"
#include "repo.h"
#include "sctp.h"
#include "tickq.h"

#define QMAX 8192
/* Idle associations beside the pair under test, in the tick tests. */
#define IDLE_PAIRS 20
#define MAX_SIDES (2 + 2 * IDLE_PAIRS)

struct stack;

struct side {
  struct stack *st;
  struct dcmf_dcstack *stack;
  struct dcmf_dc *dc;
  struct side *other;
  uint8_t *q[QMAX];
  size_t qlen[QMAX];
  size_t nq;
  /* server side: the HTTP engine on channel 0 */
  struct dcmf_httpdc *http;
  /* client side: what came back, and channel events */
  struct dcmf_buf received;
  int opened[4];
  int n_opened;
  int closed;
  int sctp_up;
  int n_writable;
  struct dcmf_tickq_node tick;
  size_t visits; /* tick-queue visits */
};

struct stack {
  struct dcmf_cert cert[2];         /* client, server */
  struct dcmf_dtls_ctx ctx[2];      /* client, server */
  struct dcmf_fingerprint_set fp[2]; /* of cert[] */
  struct side client, server;
  struct side *idle; /* IDLE_PAIRS client/server pairs, or NULL */
  struct side *all[MAX_SIDES];
  size_t n_all;
  struct dcmf_tickq ticks;
  struct dcmf_repo *repo;
  uint8_t page[5000];
};

static void datagram_out(void *user, const uint8_t *data, size_t len) {
  struct side *s = user;
  assert_true(s->nq < QMAX);
  s->q[s->nq] = malloc(len);
  memcpy(s->q[s->nq], data, len);
  s->qlen[s->nq++] = len;
}

static void stack_state(void *user, enum dcmf_dcstack_state state,
                        const char *reason) {
  struct side *s = user;
  (void)reason;
  assert_int_not_equal(state, DCMF_DCSTACK_ASSOC_FAILED);
  assert_int_not_equal(state, DCMF_DCSTACK_DTLS_FAILED);
  if (state == DCMF_DCSTACK_ASSOC_UP) {
    s->sctp_up = 1;
  } else if (state == DCMF_DCSTACK_ASSOC_DOWN) {
    s->sctp_up = 0;
  }
}

/* The server answers HTTP on channel 0 and refuses other channels. */
/* The channels come as flows of the SCTP kind (assoc.h): id is the
 * stream id. */
static int ch_open(void *user, const struct dcmf_svc_flow *ch, void **slot) {
  struct side *s = user;
  (void)slot;
  if (s->n_opened < 4) {
    s->opened[s->n_opened++] = (int)ch->id;
  }
  return s->http == NULL || ch->id == 0 ? 0 : -1;
}

static void ch_message(void *user, const struct dcmf_svc_flow *ch,
                       void *slot, int binary, const uint8_t *data,
                       size_t len) {
  struct side *s = user;
  (void)binary;
  (void)slot;
  if (s->http == NULL) {
    dcmf_buf_append(&s->received, data, len);
    return;
  }
  assert_int_equal(ch->id, 0);
  assert_int_equal(dcmf_httpdc_recv(s->http, data, len), 0);
  uint8_t out[4096];
  size_t n;
  while (dcmf_httpdc_write(s->http, out, sizeof(out), &n) == 0 && n > 0) {
    assert_int_equal(dcmf_dc_send(s->dc, 0, 1, out, n), 0);
  }
}

static void ch_closed(void *user, const struct dcmf_svc_flow *ch,
                      void **slot) {
  struct side *s = user;
  (void)ch;
  (void)slot;
  s->closed++;
}

static void stack_writable(void *user) {
  struct side *s = user;
  s->n_writable++;
}

static void need_tick(void *user) {
  struct side *s = user;
  dcmf_tickq_join(&s->st->ticks, &s->tick);
}

static void on_tick(struct dcmf_tickq_node *node) {
  struct side *s = DCMF_TICKQ_OWNER(node, struct side, tick);
  s->visits++;
  dcmf_dcstack_handle_tick(s->stack);
}

static const struct dcmf_dcstack_callbacks cbs = {
    .send_datagram = datagram_out,
    .state_changed = stack_state,
    .flow_open = ch_open,
    .flow_message = ch_message,
    .flow_closed = ch_closed,
    .writable = stack_writable,
    .need_tick = need_tick,
};

static size_t pump_side(struct side *from) {
  size_t n = from->nq;
  if (n == 0) {
    return 0;
  }
  uint8_t **q = malloc(n * sizeof(*q));
  size_t *ql = malloc(n * sizeof(*ql));
  memcpy(q, from->q, n * sizeof(*q));
  memcpy(ql, from->qlen, n * sizeof(*ql));
  from->nq = 0;
  for (size_t i = 0; i < n; i++) {
    dcmf_dcstack_recv(from->other->stack, q[i], ql[i]);
    free(q[i]);
  }
  free(q);
  free(ql);
  return n;
}

/* Carries every queued datagram once; returns how many. */
static size_t carry(struct stack *st) {
  size_t n = 0;
  for (size_t i = 0; i < st->n_all; i++) {
    n += pump_side(st->all[i]);
  }
  return n;
}

static int quiet(const struct stack *st) {
  for (size_t i = 0; i < st->n_all; i++) {
    if (st->all[i]->nq > 0) {
      return 0;
    }
  }
  return 1;
}

/* One worker tick on the fake clock: usrsctp's timers, then the stacks
 * that asked. Returns the visits. */
static size_t tick(struct stack *st, uint32_t ms) {
  dcmf_sctp_stack_tick(ms);
  return dcmf_tickq_run(&st->ticks);
}

static void pump(struct stack *st) {
  for (int i = 0; i < 5000; i++) {
    if (carry(st) > 0) {
      continue;
    }
    for (int t = 0; t < 20 && quiet(st); t++) {
      tick(st, 50); /* fake time: delayed SACKs, resets */
    }
    if (quiet(st)) {
      return;
    }
  }
}

static void side_init(struct stack *st, struct side *s, struct side *other,
                      int is_server) {
  s->st = st;
  s->other = other;
  dcmf_tickq_node_init(&s->tick, on_tick);
  struct dcmf_dcstack_settings ss = {
      .dtls_ctx = &st->ctx[is_server],
      .dtls_server = is_server,
      .assoc.sctp = {.local_port = 5000,
                     .remote_port = 5000,
                     .max_streams = 2048,
                     .max_message_size = 65536,
                     .send_buffer = 1 << 20}};
  assert_int_equal(dcmf_dcstack_new(&s->stack, &ss, &cbs, s), 0);
  s->dc = dcmf_dcstack_dc(s->stack);
  assert_int_equal(dcmf_dc_add_negotiated(s->dc, 0, "http", NULL, 256), 0);
  assert_int_equal(dcmf_dcstack_set_remote_fingerprints(
                       s->stack, &st->fp[is_server ? 0 : 1]),
                   0);
  assert_true(st->n_all < MAX_SIDES);
  st->all[st->n_all++] = s;
}

static int setup(void **state) {
  struct stack *st = calloc(1, sizeof(*st));
  char err[256];
  for (int i = 0; i < 2; i++) {
    assert_int_equal(dcmf_cert_generate(&st->cert[i], err, sizeof(err)), 0);
    assert_int_equal(dcmf_dtls_ctx_init(&st->ctx[i], st->cert[i].x509,
                                        st->cert[i].pkey, 1200),
                     0);
    assert_int_equal(dcmf_fingerprint_parse(st->cert[i].fingerprint,
                                            &st->fp[i]),
                     0);
  }
  dcmf_tickq_init(&st->ticks);
  side_init(st, &st->client, &st->server, 0);
  side_init(st, &st->server, &st->client, 1);
  for (size_t i = 0; i < sizeof(st->page); i++) {
    st->page[i] = (uint8_t)('a' + i % 26);
  }
  assert_int_equal(dcmf_repo_new(&st->repo, NULL), 0);
  assert_int_equal(dcmf_repo_add(st->repo, "/index.html", st->page,
                                 sizeof(st->page)),
                   0);
  struct dcmf_httpdc_backend backend;
  dcmf_httpdc_repo_backend(&backend, st->repo);
  /* Small messages so the page needs several. */
  struct dcmf_httpdc_settings hs = {.max_message_size = 1024};
  assert_int_equal(dcmf_httpdc_new(&st->server.http, &hs, &backend), 0);
  *state = st;
  return 0;
}

static void side_free(struct side *s) {
  dcmf_dcstack_del(s->stack);
  dcmf_tickq_leave(&s->st->ticks, &s->tick);
  dcmf_httpdc_del(s->http);
  dcmf_buf_free(&s->received);
  for (size_t i = 0; i < s->nq; i++) {
    free(s->q[i]);
  }
}

static int teardown(void **state) {
  struct stack *st = *state;
  for (size_t i = 0; i < st->n_all; i++) {
    side_free(st->all[i]);
  }
  assert_int_equal(st->ticks.count, 0);
  free(st->idle);
  for (int i = 0; i < 2; i++) {
    dcmf_dtls_ctx_free(&st->ctx[i]);
    dcmf_cert_free(&st->cert[i]);
  }
  dcmf_repo_del(st->repo);
  free(st);
  return 0;
}

static void connect_pair(struct side *client) {
  dcmf_dcstack_start(client->stack);
}

static void connect_both(struct stack *st) {
  connect_pair(&st->client);
  pump(st);
  assert_true(dcmf_dcstack_connected(st->client.stack));
  assert_true(dcmf_dcstack_connected(st->server.stack));
  assert_true(st->client.sctp_up && st->server.sctp_up);
  assert_int_equal(st->client.n_opened, 1);
  assert_int_equal(st->server.n_opened, 1);
}

static void test_http_get_over_the_whole_stack(void **state) {
  struct stack *st = *state;
  connect_both(st);
  static const char req[] = "GET / HTTP/1.1\r\nHost: \r\n\r\n";
  assert_int_equal(dcmf_dc_send(st->client.dc, 0, 0, (const uint8_t *)req,
                                sizeof(req) - 1),
                   0);
  pump(st);
  struct dcmf_buf *r = &st->client.received;
  assert_true(r->len > sizeof(st->page));
  assert_memory_equal(r->data, "HTTP/1.1 200 OK\r\n", 17);
  assert_non_null(strstr(r->data, "Content-Length: 5000\r\n"));
  char *body = strstr(r->data, "\r\n\r\n") + 4;
  assert_int_equal(r->len - (size_t)(body - r->data), sizeof(st->page));
  assert_memory_equal(body, st->page, sizeof(st->page));
}

static void test_dcep_channel_refused_across_dtls(void **state) {
  struct stack *st = *state;
  connect_both(st);
  assert_int_equal(dcmf_dc_open(st->client.dc, 2, "chat", "chat", NULL, 256),
                   0);
  pump(st);
  /* The server saw it open, refused it, and both sides closed it. */
  assert_int_equal(st->server.n_opened, 2);
  assert_int_equal(st->server.opened[1], 2);
  assert_null(dcmf_dc_find(st->server.dc, 2));
  assert_null(dcmf_dc_find(st->client.dc, 2));
  assert_int_equal(st->client.closed, 1);
  /* Channel 0 is untouched. */
  assert_non_null(dcmf_dc_find(st->client.dc, 0));
}

/* Adds IDLE_PAIRS more connected pairs, all with channel 0 open. */
static void add_idle_pairs(struct stack *st) {
  st->idle = calloc(2 * IDLE_PAIRS, sizeof(*st->idle));
  assert_non_null(st->idle);
  for (size_t i = 0; i < IDLE_PAIRS; i++) {
    struct side *c = &st->idle[2 * i], *s = &st->idle[2 * i + 1];
    side_init(st, c, s, 0);
    side_init(st, s, c, 1);
    connect_pair(c);
  }
  pump(st);
  for (size_t i = 0; i < 2 * IDLE_PAIRS; i++) {
    assert_true(st->idle[i].sctp_up);
    assert_int_equal(st->idle[i].n_opened, 1);
  }
}

static size_t visits_of_idle(const struct stack *st) {
  size_t n = 0;
  for (size_t i = 0; i < 2 * IDLE_PAIRS; i++) {
    n += st->idle[i].visits;
  }
  return n;
}

/* Runs |ticks| worker ticks of |ms|, carrying datagrams between them
 * (heartbeats and their answers), and returns the visits. */
static size_t run_ticks(struct stack *st, int ticks, uint32_t ms,
                        size_t *carried) {
  size_t visits = 0;
  for (int i = 0; i < ticks; i++) {
    visits += tick(st, ms);
    *carried += carry(st);
  }
  return visits;
}

/* Established associations with nothing to do are never visited after a
 * tick, however long time runs; and they are still alive afterwards. */
static void test_idle_stacks_are_not_visited(void **state) {
  struct stack *st = *state;
  connect_both(st);
  add_idle_pairs(st);
  pump(st); /* settle: the last SACKs and whatever they ask for */
  size_t carried = 0;
  /* 90 s of fake time, datagrams carried between ticks. */
  size_t visits = run_ticks(st, 900, 100, &carried);
  assert_int_equal(visits, 0);
  assert_int_equal(st->ticks.count, 0);
  /* Every idle association still carries a message. */
  for (size_t i = 0; i < IDLE_PAIRS; i++) {
    assert_true(st->idle[2 * i].sctp_up && st->idle[2 * i + 1].sctp_up);
    assert_int_equal(dcmf_dc_send(st->idle[2 * i].dc, 0, 0,
                                  (const uint8_t *)"ping", 4),
                     0);
  }
  pump(st);
  for (size_t i = 0; i < IDLE_PAIRS; i++) {
    const struct dcmf_buf *r = &st->idle[2 * i + 1].received;
    assert_int_equal(r->len, 4);
    assert_memory_equal(r->data, "ping", 4);
  }
}

/* A sender whose buffer is full is visited on every tick until room
 * comes back, and only it: the other 41 associations are not. Once its
 * data is acknowledged it leaves the queue. */
static void test_only_a_waiting_sender_is_visited(void **state) {
  struct stack *st = *state;
  connect_both(st);
  add_idle_pairs(st);
  pump(st);
  enum { LEN = 60000 };
  uint8_t *msg = malloc(LEN);
  memset(msg, 'x', LEN);
  /* Fill the server's 1 MiB send buffer without carrying anything. */
  int rv = 0;
  size_t sent = 0;
  for (int i = 0; i < 100 && rv == 0; i++) {
    rv = dcmf_dc_send(st->server.dc, 0, 1, msg, LEN);
    sent += rv == 0 ? LEN : 0;
  }
  assert_int_equal(rv, DCMF_ERR_EXHAUSTED);
  assert_true(dcmf_tickq_queued(&st->server.tick));
  size_t before = st->server.visits;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(tick(st, 10), 1);
  }
  assert_int_equal(st->server.visits - before, 5);
  assert_int_equal(st->client.visits, 0);
  assert_int_equal(visits_of_idle(st), 0);
  /* Carry it all: the SACKs make room, the sender hears it, and the
   * client has every byte. */
  pump(st);
  assert_true(st->server.n_writable > 0);
  assert_int_equal(st->client.received.len, sent);
  /* Idle again: no more visits. */
  size_t carried = 0;
  assert_int_equal(run_ticks(st, 100, 10, &carried), 0);
  assert_false(dcmf_tickq_queued(&st->server.tick));
  assert_int_equal(visits_of_idle(st), 0);
  free(msg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_http_get_over_the_whole_stack,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_dcep_channel_refused_across_dtls,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_idle_stacks_are_not_visited, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_only_a_waiting_sender_is_visited,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, dcmf_test_sctp_group_setup,
                                dcmf_test_sctp_group_teardown);
}
