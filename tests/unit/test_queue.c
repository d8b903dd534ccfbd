/*
 * test_queue.c - the thread queue (dcmf/base/queue.h): order, the count bound
 * and its refusals, push_always, a producer thread against the consumer
 * loop, items handed back on close, and unref.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "errors.h"
#include "queue.h"

#define THREAD_ITEMS 20000

struct item {
  int seq;
  struct dcmf_queue_node node;
};

struct sink {
  int got[THREAD_ITEMS];
  size_t n;
  int drains;
  int closed;
  size_t left_on_close;
};

static void on_drain(void *user, struct dcmf_queue_node *list) {
  struct sink *s = user;
  s->drains++;
  while (list != NULL) {
    struct item *it = dcmf_queue_entry(list, struct item, node);
    list = list->next;
    assert_true(s->n < THREAD_ITEMS);
    s->got[s->n++] = it->seq;
  }
}

static void on_closed(void *user, struct dcmf_queue_node *list) {
  struct sink *s = user;
  s->closed++;
  for (; list != NULL; list = list->next) {
    s->left_on_close++;
  }
}

static void close_and_run(uv_loop_t *loop, struct dcmf_queue *q) {
  dcmf_queue_close(q, on_closed);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

static void test_order_and_bound(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  static struct sink s;
  memset(&s, 0, sizeof(s));
  struct dcmf_queue q;
  struct dcmf_queue_settings st = {.limit = 2, .drain = on_drain, .user = &s};
  assert_int_equal(dcmf_queue_init(&q, &loop, &st), 0);
  struct item it[5] = {
      {.seq = 1}, {.seq = 2}, {.seq = 3}, {.seq = 4}, {.seq = 5}};
  assert_int_equal(dcmf_queue_push(&q, &it[0].node), 0);
  assert_int_equal(dcmf_queue_push(&q, &it[1].node), 0);
  assert_int_equal(dcmf_queue_push(&q, &it[2].node), DCMF_ERR_EXHAUSTED);
  assert_int_equal(dcmf_queue_refused(&q), 1);
  assert_int_equal(dcmf_queue_count(&q), 2);
  dcmf_queue_push_always(&q, &it[3].node); /* over the bound on purpose */
  assert_int_equal(dcmf_queue_count(&q), 3);
  assert_int_equal(dcmf_queue_push(&q, &it[4].node), DCMF_ERR_EXHAUSTED);
  assert_int_equal(dcmf_queue_refused(&q), 2);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(s.drains, 1); /* one wake-up, one list */
  assert_int_equal(s.n, 3);
  assert_int_equal(s.got[0], 1);
  assert_int_equal(s.got[1], 2);
  assert_int_equal(s.got[2], 4);
  assert_int_equal(dcmf_queue_count(&q), 0);
  /* Room again once drained. */
  assert_int_equal(dcmf_queue_push(&q, &it[2].node), 0);
  dcmf_queue_drain(&q);
  assert_int_equal(s.n, 4);
  assert_int_equal(s.got[3], 3);
  dcmf_queue_drain(&q); /* nothing queued: no call */
  assert_int_equal(s.drains, 2);
  close_and_run(&loop, &q);
  assert_int_equal(s.closed, 1);
  assert_int_equal(s.left_on_close, 0);
}

static void test_close_hands_back(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  static struct sink s;
  memset(&s, 0, sizeof(s));
  struct dcmf_queue q;
  struct dcmf_queue_settings st = {.drain = on_drain, .user = &s};
  assert_int_equal(dcmf_queue_init(&q, &loop, &st), 0);
  struct item it[3] = {{.seq = 1}, {.seq = 2}, {.seq = 3}};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(dcmf_queue_push(&q, &it[i].node), 0); /* no bound */
  }
  close_and_run(&loop, &q);
  assert_int_equal(s.closed, 1);
  assert_int_equal(s.left_on_close, 3);
  assert_int_equal(s.n, 0);
}

static void test_unref(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  static struct sink s;
  memset(&s, 0, sizeof(s));
  struct dcmf_queue q;
  struct dcmf_queue_settings st = {.unref = 1, .drain = on_drain, .user = &s};
  assert_int_equal(dcmf_queue_init(&q, &loop, &st), 0);
  assert_int_equal(uv_loop_alive(&loop), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* returns at once */
  close_and_run(&loop, &q);
  assert_int_equal(s.closed, 1);
}

struct producer {
  struct dcmf_queue *q;
  struct item *items;
};

static void produce(void *arg) {
  struct producer *p = arg;
  for (int i = 0; i < THREAD_ITEMS; i++) {
    dcmf_queue_push_always(p->q, &p->items[i].node);
  }
}

static void on_deadline(uv_timer_t *t) {
  uv_stop(t->loop);
}

/* One producer thread, the consumer on its loop: every item arrives,
 * in order, in as many drains as the wake-ups coalesced into. */
static void test_across_threads(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  static struct sink s;
  memset(&s, 0, sizeof(s));
  struct dcmf_queue q;
  struct dcmf_queue_settings st = {.drain = on_drain, .user = &s};
  assert_int_equal(dcmf_queue_init(&q, &loop, &st), 0);
  struct item *items = calloc(THREAD_ITEMS, sizeof(*items));
  assert_non_null(items);
  for (int i = 0; i < THREAD_ITEMS; i++) {
    items[i].seq = i;
  }
  struct producer p = {&q, items};
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, produce, &p), 0);
  uv_timer_t deadline;
  uv_timer_init(&loop, &deadline);
  uv_timer_start(&deadline, on_deadline, 10000, 0);
  uv_unref((uv_handle_t *)&deadline);
  for (int turns = 0; turns < 1000000 && s.n < THREAD_ITEMS; turns++) {
    if (uv_run(&loop, UV_RUN_ONCE) == 0 &&
        !uv_is_active((uv_handle_t *)&deadline)) {
      break; /* the deadline passed */
    }
  }
  uv_thread_join(&t);
  dcmf_queue_drain(&q); /* whatever the last wake-up has not brought */
  assert_int_equal(s.n, THREAD_ITEMS);
  for (int i = 0; i < THREAD_ITEMS; i++) {
    assert_int_equal(s.got[i], i);
  }
  assert_true(s.drains >= 1);
  uv_close((uv_handle_t *)&deadline, NULL);
  close_and_run(&loop, &q);
  free(items);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_and_bound),
      cmocka_unit_test(test_close_hands_back),
      cmocka_unit_test(test_unref),
      cmocka_unit_test(test_across_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
