/*
 * The DC relay service (proxy-modes/svc_relay.c) against fake hosts: twins are
 * linked when a media is attached or changed, unlinked when one goes
 * away (also while messages for it wait), messages keep their order
 * under back-pressure, and stalls are told on a fake clock. ASan checks
 * that no link outlives its media.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "service.h"
#include "svc_relay.h"
#include "worker.h"

#define NFLOWS 4
#define NSENT 16

/* A fake session: the host the service sees and what it did with it. */
struct fake {
  struct dcmf_svc_host host; /* first: the host pointer is the fake */
  struct dcmf_media_desc desc;
  void *media; /* the service's state */
  int assoc;   /* an association exists */
  uint16_t sid[NFLOWS];
  enum dcmf_svc_flow_state state[NFLOWS];
  int send_rv; /* what send answers (0 or DCMF_ERR_EXHAUSTED) */
  char sent[NSENT][32];
  size_t n_sent;
  int closes;
  int tick_asks; /* host->want_tick calls */
};

struct world {
  struct dcmf_media_stats stats;
  uint64_t now;
  struct dcmf_log log;
  void *worker;
  struct fake a, b, c;
};

static struct world *W; /* the fakes reach the world's stats and clock */

static struct fake *fake_of(struct dcmf_svc_host *h) {
  return (struct fake *)h;
}

static enum dcmf_svc_flow_state fake_flow_state(struct dcmf_svc_host *h,
                                                uint32_t id) {
  struct fake *f = fake_of(h);
  if (!f->assoc) {
    return DCMF_SVC_NO_ASSOC;
  }
  for (size_t i = 0; i < NFLOWS; i++) {
    if (f->sid[i] == id && f->state[i] != DCMF_SVC_NO_ASSOC) {
      return f->state[i];
    }
  }
  return DCMF_SVC_FLOW_ABSENT;
}

static int fake_send(struct dcmf_svc_host *h, uint32_t id, int binary,
                     const uint8_t *data, size_t len) {
  (void)binary;
  struct fake *f = fake_of(h);
  if (fake_flow_state(h, id) != DCMF_SVC_FLOW_OPEN) {
    return DCMF_ERR_NOT_FOUND;
  }
  if (f->send_rv != 0) {
    return f->send_rv;
  }
  assert_true(f->n_sent < NSENT);
  snprintf(f->sent[f->n_sent++], sizeof(f->sent[0]), "%u:%.*s", id, (int)len,
           (const char *)data);
  return 0;
}

static void fake_close(struct dcmf_svc_host *h, uint32_t id) {
  struct fake *f = fake_of(h);
  for (size_t i = 0; i < NFLOWS; i++) {
    if (f->sid[i] == id && f->state[i] == DCMF_SVC_FLOW_OPEN) {
      f->state[i] = DCMF_SVC_NO_ASSOC; /* gone */
      f->closes++;
      struct dcmf_svc_flow fl = {.kind = DCMF_ASSOC_SCTP, .id = id,
                                 .negotiated = 1, .label = "",
                                 .protocol = ""};
      /* As the session does: the service hears it before close returns. */
      dcmf_relay_service.closed(f->media, NULL, &fl);
    }
  }
}

static void fake_emit(struct dcmf_svc_host *h, const char *e, const char *d) {
  (void)h;
  (void)e;
  (void)d;
}

static struct dcmf_media_stats *fake_counters(struct dcmf_svc_host *h) {
  (void)h;
  return &W->stats;
}

static uint64_t fake_now(struct dcmf_svc_host *h) {
  (void)h;
  return W->now;
}

static void fake_wake(struct dcmf_svc_host *h) { (void)h; }

static void fake_want_tick(struct dcmf_svc_host *h) { fake_of(h)->tick_asks++; }

static void set_key(struct dcmf_media_key *k, const char *media) {
  memset(k, 0, sizeof(*k));
  snprintf(k->context_id, sizeof(k->context_id), "ctx");
  snprintf(k->termination_id, sizeof(k->termination_id), "t-%s", media);
  snprintf(k->media_id, sizeof(k->media_id), "%s", media);
}

/* A media |name| relayed to |twin| (NULL: not relayed), with stream
 * 1000 in |st|. */
static void fake_init(struct fake *f, const char *name, const char *twin,
                      enum dcmf_svc_flow_state st) {
  memset(f, 0, sizeof(*f));
  set_key(&f->desc.key, name);
  if (twin != NULL) {
    f->desc.has_relay = 1;
    set_key(&f->desc.relay, twin);
  }
  f->assoc = 1;
  f->sid[0] = 1000;
  f->state[0] = st;
  f->host = (struct dcmf_svc_host){.desc = &f->desc,
                                   .log = &W->log,
                                   .name = f->desc.key.media_id,
                                   .send = fake_send,
                                   .close = fake_close,
                                   .flow_state = fake_flow_state,
                                   .emit = fake_emit,
                                   .counters = fake_counters,
                                   .now = fake_now,
                                   .wake = fake_wake,
                                   .want_tick = fake_want_tick};
}

static void attach(struct fake *f) {
  assert_int_equal(dcmf_relay_service.attach(&f->media, W->worker, &f->host),
                   0);
}

static void detach(struct fake *f) {
  dcmf_relay_service.detach(f->media);
  f->media = NULL;
}

/* Our phone sent |text| on stream 1000 of |f|. */
static void phone_says(struct fake *f, const char *text) {
  struct dcmf_svc_flow fl = {.kind = DCMF_ASSOC_SCTP, .id = 1000,
                             .negotiated = 1, .label = "", .protocol = ""};
  assert_true(dcmf_relay_service.match(f->media, &fl));
  dcmf_relay_service.message(f->media, NULL, &fl, 0, (const uint8_t *)text,
                             strlen(text));
}

static uint64_t get(_Atomic uint64_t *v) { return atomic_load(v); }

static int setup(void **state) {
  W = calloc(1, sizeof(*W));
  W->log = (struct dcmf_log){.stream = stderr, .level = DCMF_LOG_ERROR};
  W->now = 1000;
  struct dcmf_svc_worker_env env = {.log = &W->log, .stats = &W->stats};
  assert_int_equal(dcmf_relay_service.init(&W->worker, &env, NULL, NULL, 0),
                   0);
  *state = W;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  dcmf_relay_service.free(W->worker);
  free(W);
  W = NULL;
  return 0;
}

static void test_twins_link_in_either_order(void **state) {
  (void)state;
  fake_init(&W->a, "a", "b", DCMF_SVC_FLOW_OPEN);
  fake_init(&W->b, "b", "a", DCMF_SVC_FLOW_OPEN);
  attach(&W->a);
  assert_null(dcmf_relay_twin(W->a.media)); /* b is not there yet */
  phone_says(&W->a, "early");
  assert_int_equal(get(&W->stats.relay_dropped_no_twin), 1);
  attach(&W->b);
  assert_ptr_equal(dcmf_relay_twin(W->a.media), W->b.media);
  assert_ptr_equal(dcmf_relay_twin(W->b.media), W->a.media);
  phone_says(&W->a, "hello");
  phone_says(&W->b, "hi");
  assert_int_equal(W->b.n_sent, 1);
  assert_string_equal(W->b.sent[0], "1000:hello");
  assert_int_equal(W->a.n_sent, 1);
  assert_string_equal(W->a.sent[0], "1000:hi");
  assert_int_equal(get(&W->stats.relay_messages), 2);
  assert_int_equal(get(&W->stats.relay_bytes), 7);
  detach(&W->a);
  detach(&W->b);
}

static void test_twin_removed_mid_relay(void **state) {
  (void)state;
  fake_init(&W->a, "a", "b", DCMF_SVC_FLOW_OPEN);
  fake_init(&W->b, "b", "a", DCMF_SVC_FLOW_PENDING);
  attach(&W->a);
  attach(&W->b);
  /* b's channel is not open yet: a's messages wait in b's queue. */
  phone_says(&W->a, "one");
  phone_says(&W->a, "two");
  assert_int_equal(W->b.n_sent, 0);
  assert_int_equal(get(&W->stats.relay_queued_messages), 2);
  assert_int_equal(get(&W->stats.relay_queued_bytes), 6);
  /* b goes away with messages held for it: the queue is freed, the
   * gauges drop, and a's link is cleared at once. */
  detach(&W->b);
  assert_int_equal(get(&W->stats.relay_queued_messages), 0);
  assert_int_equal(get(&W->stats.relay_queued_bytes), 0);
  assert_null(dcmf_relay_twin(W->a.media));
  phone_says(&W->a, "three");
  assert_int_equal(get(&W->stats.relay_dropped_no_twin), 1);
  /* A new b (a re-created media) is linked again. */
  fake_init(&W->b, "b", "a", DCMF_SVC_FLOW_OPEN);
  attach(&W->b);
  assert_ptr_equal(dcmf_relay_twin(W->a.media), W->b.media);
  phone_says(&W->a, "four");
  assert_int_equal(W->b.n_sent, 1);
  assert_string_equal(W->b.sent[0], "1000:four");
  /* Now a goes first, while b holds messages a sent. */
  W->b.send_rv = DCMF_ERR_EXHAUSTED;
  phone_says(&W->a, "five");
  assert_int_equal(get(&W->stats.relay_queued_messages), 1);
  detach(&W->a);
  assert_null(dcmf_relay_twin(W->b.media));
  W->b.send_rv = 0;
  dcmf_relay_service.writable(W->b.media); /* what a sent still arrives */
  assert_int_equal(W->b.n_sent, 2);
  assert_string_equal(W->b.sent[1], "1000:five");
  phone_says(&W->b, "lost");
  assert_int_equal(get(&W->stats.relay_dropped_no_twin), 2);
  detach(&W->b);
}

static void test_order_kept_under_back_pressure(void **state) {
  (void)state;
  fake_init(&W->a, "a", "b", DCMF_SVC_FLOW_OPEN);
  fake_init(&W->b, "b", "a", DCMF_SVC_FLOW_OPEN);
  attach(&W->a);
  attach(&W->b);
  W->b.send_rv = DCMF_ERR_EXHAUSTED;
  phone_says(&W->a, "m1");
  W->b.send_rv = 0; /* room again, but m1 still waits: m2 queues too */
  phone_says(&W->a, "m2");
  assert_int_equal(W->b.n_sent, 0);
  dcmf_relay_service.writable(W->b.media);
  assert_int_equal(W->b.n_sent, 2);
  assert_string_equal(W->b.sent[0], "1000:m1");
  assert_string_equal(W->b.sent[1], "1000:m2");
  assert_int_equal(get(&W->stats.relay_queued_messages), 0);
  detach(&W->a);
  detach(&W->b);
}

static void test_change_of_twin_relinks(void **state) {
  (void)state;
  fake_init(&W->a, "a", "b", DCMF_SVC_FLOW_OPEN);
  fake_init(&W->b, "b", "a", DCMF_SVC_FLOW_OPEN);
  fake_init(&W->c, "c", NULL, DCMF_SVC_FLOW_OPEN);
  attach(&W->a);
  attach(&W->b);
  attach(&W->c);
  /* A PATCH relays a to c instead, and c to a. */
  set_key(&W->a.desc.relay, "c");
  dcmf_relay_service.update(W->a.media);
  assert_null(dcmf_relay_twin(W->a.media)); /* c names nobody yet */
  assert_ptr_equal(dcmf_relay_twin(W->b.media), W->a.media);
  W->c.desc.has_relay = 1;
  set_key(&W->c.desc.relay, "a");
  dcmf_relay_service.update(W->c.media);
  assert_ptr_equal(dcmf_relay_twin(W->a.media), W->c.media);
  assert_ptr_equal(dcmf_relay_twin(W->c.media), W->a.media);
  phone_says(&W->a, "to-c");
  assert_int_equal(W->c.n_sent, 1);
  assert_int_equal(W->b.n_sent, 0);
  /* a stops relaying: nobody keeps a link to it. */
  W->a.desc.has_relay = 0;
  dcmf_relay_service.update(W->a.media);
  assert_null(dcmf_relay_twin(W->b.media));
  assert_null(dcmf_relay_twin(W->c.media));
  assert_null(dcmf_relay_twin(W->a.media));
  detach(&W->c);
  detach(&W->b);
  detach(&W->a);
}

static void test_close_reaches_twin_and_stall_is_told(void **state) {
  (void)state;
  fake_init(&W->a, "a", "b", DCMF_SVC_FLOW_OPEN);
  fake_init(&W->b, "b", "a", DCMF_SVC_FLOW_OPEN);
  attach(&W->a);
  attach(&W->b);
  W->b.send_rv = DCMF_ERR_EXHAUSTED;
  phone_says(&W->a, "stuck");
  /* Held for b: b asks for ticks (the stall check); a holds nothing and
   * does not. */
  assert_true(W->b.tick_asks > 0);
  assert_int_equal(W->a.tick_asks, 0);
  W->b.tick_asks = 0;
  dcmf_relay_service.tick(W->b.media);
  assert_int_equal(W->b.tick_asks, 1); /* still held: the next tick too */
  assert_int_equal(get(&W->stats.relay_stalls), 0);
  W->now += DCMF_RELAY_STALL_MS + 1; /* the fake clock moves on */
  dcmf_relay_service.tick(W->b.media);
  assert_int_equal(get(&W->stats.relay_stalls), 1);
  dcmf_relay_service.tick(W->b.media); /* once per episode */
  assert_int_equal(get(&W->stats.relay_stalls), 1);
  /* a's phone closes stream 1000: b's closes too, and what waited for
   * b on it is tried first (still no room there: dropped with it). */
  W->a.state[0] = DCMF_SVC_NO_ASSOC;
  struct dcmf_svc_flow fl = {.kind = DCMF_ASSOC_SCTP, .id = 1000,
                             .negotiated = 1, .label = "", .protocol = ""};
  dcmf_relay_service.closed(W->a.media, NULL, &fl);
  assert_int_equal(W->b.closes, 1);
  assert_int_equal(fake_flow_state(&W->b.host, 1000), DCMF_SVC_FLOW_ABSENT);
  assert_int_equal(get(&W->stats.relay_queued_messages), 0);
  /* Nothing is held for b any more: a tick asks for no further one. */
  W->b.tick_asks = 0;
  dcmf_relay_service.tick(W->b.media);
  assert_int_equal(W->b.tick_asks, 0);
  detach(&W->a);
  detach(&W->b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_twins_link_in_either_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_twin_removed_mid_relay, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_order_kept_under_back_pressure,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_change_of_twin_relinks, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_close_reaches_twin_and_stall_is_told, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
