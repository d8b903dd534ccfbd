/* Unit tests for the DC relay's hold queue. */
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
  int refuse[4]; /* per stream 1000+i: 0 accept, else the error */
  char log[256];
};

static int fake_send(void *user, uint16_t sid, int binary,
                     const uint8_t *data, size_t len) {
  struct side *s = user;
  int rv = s->refuse[sid - 1000];
  if (rv != 0) {
    return rv;
  }
  size_t at = strlen(s->log);
  snprintf(s->log + at, sizeof(s->log) - at, "%u%c%.*s ", sid - 1000,
           binary ? 'b' : 't', (int)len, (const char *)data);
  return 0;
}

static void push(struct dcmf_relayq *q, uint16_t sid, const char *text) {
  assert_int_equal(
      dcmf_relayq_push(q, sid, 1, (const uint8_t *)text, strlen(text)), 0);
}

static void test_order_kept_per_stream(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 1000};
  struct side s = {{0}, ""};
  push(&q, 1000, "a1");
  push(&q, 1001, "b1");
  push(&q, 1000, "a2");
  push(&q, 1001, "b2");
  s.refuse[0] = DCMF_ERR_NOT_FOUND; /* stream 1000 not open yet */
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s), 0);
  assert_string_equal(s.log, "1bb1 1bb2 "); /* 1001 went on without it */
  assert_true(dcmf_relayq_has(&q, 1000));
  assert_false(dcmf_relayq_has(&q, 1001));
  assert_int_equal(q.count, 2);
  s.refuse[0] = 0;
  s.log[0] = '\0';
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s), 0);
  assert_string_equal(s.log, "0ba1 0ba2 ");
  assert_int_equal(q.count, 0);
  assert_int_equal(q.bytes, 0);
}

static void test_full_stream_stops_at_first(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 1000};
  struct side s = {{0}, ""};
  push(&q, 1000, "x");
  push(&q, 1000, "y");
  s.refuse[0] = DCMF_ERR_EXHAUSTED;
  dcmf_relayq_drain(&q, fake_send, &s);
  assert_string_equal(s.log, "");
  assert_int_equal(q.count, 2); /* "y" never overtakes "x" */
  dcmf_relayq_clear(&q);
}

static void test_other_errors_drop_and_count(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 1000};
  struct side s = {{0}, ""};
  push(&q, 1002, "gone");
  push(&q, 1000, "ok");
  s.refuse[2] = DCMF_ERR_INVALID; /* no such stream on that side */
  assert_int_equal(dcmf_relayq_drain(&q, fake_send, &s), 1);
  assert_string_equal(s.log, "0bok ");
  assert_int_equal(q.count, 0);
}

static void test_bound_and_purge(void **state) {
  (void)state;
  struct dcmf_relayq q = {.max_bytes = 10};
  uint8_t big[64] = {0};
  /* An empty queue takes one message of any size... */
  assert_int_equal(dcmf_relayq_push(&q, 1000, 0, big, sizeof(big)), 0);
  /* ...after that the bound holds. */
  assert_int_equal(dcmf_relayq_push(&q, 1001, 0, big, 1), DCMF_ERR_EXHAUSTED);
  dcmf_relayq_clear(&q);
  assert_int_equal(q.count, 0);
  push(&q, 1000, "a");
  push(&q, 1001, "b");
  push(&q, 1000, "c");
  push(&q, 1000, ""); /* empty messages are messages too */
  assert_int_equal(dcmf_relayq_purge(&q, 1000), 3);
  assert_int_equal(q.count, 1);
  assert_int_equal(q.bytes, 1);
  struct side s = {{0}, ""};
  dcmf_relayq_drain(&q, fake_send, &s);
  assert_string_equal(s.log, "1bb ");
  push(&q, 1003, "left over"); /* freed by clear (ASan checks) */
  dcmf_relayq_clear(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_kept_per_stream),
      cmocka_unit_test(test_full_stream_stops_at_first),
      cmocka_unit_test(test_other_errors_drop_and_count),
      cmocka_unit_test(test_bound_and_purge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
