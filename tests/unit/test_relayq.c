/* Unit tests for the DC relay's hold queue (time is a plain number:
 * the queue has no clock of its own). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "relayq.h"

/* A fake side: which streams accept, and what was sent, in order. */
struct side {
  int refuse[24]; /* per stream 1000+i: 0 accept, else the error */
  char log[256];
  int budget; /* > 0: sends accepted before it refuses (EXHAUSTED) */
  /* What the send does to the queue it drains, as SCTP events would. */
  struct dcmf_relayq *q;
  int nest_drain, nest_purge, nest_push; /* nest_drain < 0: always */
  int calls;
};

static int fake_send(void *user, uint16_t sid, int binary, const uint8_t *data,
                     size_t len) {
  struct side *s = user;
  if (s->nest_drain < 0) { /* every time, even when refusing */
    s->calls++;
    assert_int_equal(dcmf_relayq_drain(s->q, fake_send, s, 0), 0);
  }
  int rv = s->refuse[sid - 1000];
  if (rv != 0) {
    return rv;
  }
  if (s->budget > 0 && --s->budget == 0) {
    s->refuse[sid - 1000] = DCMF_ERR_EXHAUSTED; /* full after this one */
  }
  if (s->nest_drain) {
    s->nest_drain = 0;
    assert_int_equal(dcmf_relayq_drain(s->q, fake_send, s, 0), 0);
  }
  if (s->nest_purge) {
    uint16_t victim = (uint16_t)s->nest_purge;
    s->nest_purge = 0;
    dcmf_relayq_purge(s->q, victim);
  }
  if (s->nest_push) {
    s->nest_push = 0;
    assert_int_equal(
        dcmf_relayq_push(s->q, sid, 1, (const uint8_t *)"late", 4, 0), 0);
  }
  size_t at = strlen(s->log);
  snprintf(s->log + at, sizeof(s->log) - at, "%u%c%.*s ", sid - 1000,
           binary ? 'b' : 't', (int)len, (const char *)data);
  return 0;
}

static void push(struct dcmf_relayq *q, uint16_t sid, const char *text) {
  assert_int_equal(
      dcmf_relayq_push(q, sid, 1, (const uint8_t *)text, strlen(text), 0), 0);
}

static void test_order_kept_per_stream(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 1000};
  struct side s = {{0}, "", 0, NULL, 0, 0, 0, 0};
  push(&q, 1000, "a1");
  push(&q, 1001, "b1");
  push(&q, 1000, "a2");
  push(&q, 1001, "b2");
  s.refuse[0] = DCMF_ERR_NOT_FOUND; /* stream 1000 not open yet */
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 0);
  assert_string_equal(s.log, "1bb1 1bb2 "); /* 1001 went on without it */
  assert_true(dcmf_relayq_has(&q, 1000));
  assert_false(dcmf_relayq_has(&q, 1001));
  assert_int_equal(q.count, 2);
  s.refuse[0] = 0;
  s.log[0] = '\0';
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 0);
  assert_string_equal(s.log, "0ba1 0ba2 ");
  assert_int_equal(q.count, 0);
  assert_int_equal(q.bytes, 0);
}

static void test_full_stream_stops_at_first(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 1000};
  struct side s = {{0}, "", 0, NULL, 0, 0, 0, 0};
  push(&q, 1000, "x");
  push(&q, 1000, "y");
  s.refuse[0] = DCMF_ERR_EXHAUSTED;
  dcmf_relayq_drain(&q, fake_send, &s, 0);
  assert_string_equal(s.log, "");
  assert_int_equal(q.count, 2); /* "y" never overtakes "x" */
  dcmf_relayq_clear(&q);
}

static void test_other_errors_drop_and_count(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 1000};
  struct side s = {{0}, "", 0, NULL, 0, 0, 0, 0};
  push(&q, 1002, "gone");
  push(&q, 1000, "ok");
  s.refuse[2] = DCMF_ERR_INVALID; /* no such stream on that side */
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 1);
  assert_string_equal(s.log, "0bok ");
  assert_int_equal(q.count, 0);
}

static void test_bound_and_purge(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 10};
  uint8_t big[64] = {0};
  /* An empty queue takes one message of any size... */
  assert_int_equal(dcmf_relayq_push(&q, 1000, 0, big, sizeof(big), 0), 0);
  /* ...after that the bound holds. */
  assert_int_equal(dcmf_relayq_push(&q, 1001, 0, big, 1, 0),
                   DCMF_ERR_EXHAUSTED);
  dcmf_relayq_clear(&q);
  assert_int_equal(q.count, 0);
  push(&q, 1000, "a");
  push(&q, 1001, "b");
  push(&q, 1000, "c");
  push(&q, 1000, ""); /* empty messages are messages too */
  assert_int_equal(dcmf_relayq_purge(&q, 1000), 3);
  assert_int_equal(q.count, 1);
  assert_int_equal(q.bytes, 1);
  struct side s = {{0}, "", 0, NULL, 0, 0, 0, 0};
  dcmf_relayq_drain(&q, fake_send, &s, 0);
  assert_string_equal(s.log, "1bb ");
  push(&q, 1003, "left over"); /* freed by clear (ASan checks) */
  dcmf_relayq_clear(&q);
}

/* What the stall callback saw. */
struct stalls {
  char log[128];
};

static void on_stall(void *user, const struct dcmf_relayq_stream *st) {
  struct stalls *r = user;
  size_t at = strlen(r->log);
  snprintf(r->log + at, sizeof(r->log) - at, "%u:%zu/%zu ", st->sid - 1000,
           st->count, st->bytes);
}

static void test_stall_once_per_episode(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 1000};
  struct side s = {{0}, "", 0, NULL, 0, 0, 0, 0};
  struct stalls r = {""};
  assert_int_equal(dcmf_relayq_push(&q, 1000, 1, (const uint8_t *)"ab", 2, 0),
                   0);
  assert_int_equal(dcmf_relayq_push(&q, 1001, 1, (const uint8_t *)"c", 1, 400),
                   0);
  assert_int_equal(dcmf_relayq_push(&q, 1000, 1, (const uint8_t *)"d", 1, 600),
                   0);
  /* Waiting since 0 and 400: nothing yet at exactly 1 s. */
  assert_int_equal(dcmf_relayq_check_stalls(&q, 1000, 1000, on_stall, &r), 0);
  assert_int_equal(dcmf_relayq_check_stalls(&q, 1001, 1000, on_stall, &r), 1);
  assert_string_equal(r.log, "0:2/3 ");
  assert_int_equal(dcmf_relayq_check_stalls(&q, 1401, 1000, on_stall, &r), 1);
  assert_string_equal(r.log, "0:2/3 1:1/1 ");
  /* The same episode is not counted again, whatever comes in meanwhile. */
  assert_int_equal(dcmf_relayq_push(&q, 1000, 1, (const uint8_t *)"e", 1, 4000),
                   0);
  assert_int_equal(dcmf_relayq_check_stalls(&q, 9000, 1000, on_stall, &r), 0);
  /* 1000 moves one message at 10,000 (then SCTP is full): a new episode
   * starts from there; 1001 is refused and stays in its episode. */
  s.refuse[1] = DCMF_ERR_EXHAUSTED;
  s.budget = 1;
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 10000), 0);
  assert_string_equal(s.log, "0bab ");
  const struct dcmf_relayq_stream *st = dcmf_relayq_stream(&q, 1000);
  assert_non_null(st);
  assert_int_equal(st->count, 2);
  assert_int_equal(st->bytes, 2);
  assert_false(st->stalled);
  assert_int_equal(dcmf_relayq_check_stalls(&q, 11000, 1000, on_stall, &r), 0);
  assert_int_equal(dcmf_relayq_check_stalls(&q, 11001, 1000, on_stall, &r), 1);
  assert_string_equal(r.log, "0:2/3 1:1/1 0:2/2 ");
  /* Everything leaves: the streams are forgotten; a new message of 1001
   * waits from its own arrival, not from the old episode. */
  memset(s.refuse, 0, sizeof(s.refuse));
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 12000), 0);
  assert_int_equal(q.count, 0);
  assert_null(dcmf_relayq_stream(&q, 1001));
  assert_int_equal(q.n_streams, 0);
  assert_int_equal(
      dcmf_relayq_push(&q, 1001, 1, (const uint8_t *)"f", 1, 12500), 0);
  assert_int_equal(dcmf_relayq_check_stalls(&q, 13500, 1000, on_stall, &r), 0);
  assert_int_equal(dcmf_relayq_check_stalls(&q, 13501, 1000, on_stall, &r), 1);
  dcmf_relayq_clear(&q);
  assert_null(q.streams);
}

static void test_many_blocked_streams(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 1000};
  struct side s = {{0}, "", 0, NULL, 0, 0, 0, 0};
  char text[2] = "a";
  /* Twenty streams not open yet, each with two messages, then one that
   * is: it goes out, none of the others is reordered. */
  for (int i = 0; i < 20; i++) {
    s.refuse[i] = DCMF_ERR_NOT_FOUND;
    push(&q, (uint16_t)(1000 + i), text);
    push(&q, (uint16_t)(1000 + i), text);
  }
  push(&q, 1020, "x");
  assert_int_equal(q.n_streams, 21);
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 0);
  assert_string_equal(s.log, "20bx ");
  assert_int_equal(q.count, 40);
  assert_int_equal(q.n_streams, 20);
  for (int i = 0; i < 20; i++) {
    s.refuse[i] = 0;
  }
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 0);
  assert_int_equal(q.count, 0);
  assert_int_equal(q.bytes, 0);
  dcmf_relayq_clear(&q);
}

/* An SCTP send delivers queued events: their handlers may drain, purge
 * or push into the very queue being drained. */
static void test_reentry_from_send(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 1000};
  struct side s = {{0}, "", 0, &q, 0, 0, 0, 0};
  push(&q, 1000, "a1");
  push(&q, 1001, "b1");
  push(&q, 1000, "a2");
  push(&q, 1001, "b2");
  push(&q, 1002, "c1");
  /* A nested drain sends nothing twice and frees nothing under us. */
  s.nest_drain = 1;
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 0);
  assert_string_equal(s.log, "0ba1 1bb1 0ba2 1bb2 2bc1 ");
  assert_int_equal(q.count, 0);
  /* A purge from inside the send, of a stream with messages on either
   * side of the walk: they are gone from the figures at once, never
   * sent, and freed (ASan). */
  s.log[0] = '\0';
  s.refuse[1] = DCMF_ERR_EXHAUSTED;
  push(&q, 1001, "b3"); /* before the walk's position: blocked */
  push(&q, 1000, "a3");
  push(&q, 1001, "b4"); /* after it */
  push(&q, 1000, "a4");
  s.nest_purge = 1001;
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 0);
  assert_string_equal(s.log, "0ba3 0ba4 ");
  assert_int_equal(q.count, 0);
  assert_int_equal(q.bytes, 0);
  assert_false(dcmf_relayq_has(&q, 1001));
  assert_null(q.head);
  /* A message pushed from inside the send goes out after the one being
   * sent, in the same drain. */
  s.log[0] = '\0';
  s.refuse[1] = 0;
  push(&q, 1000, "a5");
  s.nest_push = 1;
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 0);
  assert_string_equal(s.log, "0ba5 0blate ");
  assert_int_equal(q.count, 0);
  /* A send that asks for another walk every time: the drain stops after
   * a few walks and leaves |again| set for its owner, who drains later. */
  s.log[0] = '\0';
  s.refuse[0] = DCMF_ERR_NOT_FOUND;
  push(&q, 1000, "a6");
  s.nest_drain = -1;
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 0);
  assert_true(s.calls > 1 && s.calls <= 16);
  assert_true(q.again);
  assert_false(q.draining);
  s.nest_drain = 0;
  s.refuse[0] = 0;
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s, 0), 0);
  assert_string_equal(s.log, "0ba6 ");
  assert_false(q.again);
  dcmf_relayq_clear(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_kept_per_stream),
      cmocka_unit_test(test_full_stream_stops_at_first),
      cmocka_unit_test(test_other_errors_drop_and_count),
      cmocka_unit_test(test_bound_and_purge),
      cmocka_unit_test(test_stall_once_per_episode),
      cmocka_unit_test(test_many_blocked_streams),
      cmocka_unit_test(test_reentry_from_send),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
