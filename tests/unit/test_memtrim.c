/*
 * The memory trim after releases (memtrim.c): the debounce rule with
 * given loop times (no trim while releases keep coming, one once they
 * pause, one at the latest max_wait after the first, none sooner than
 * max_wait after the previous trim), and the glue on a
 * real libuv loop: a burst of releases costs one trim, a disabled trim
 * never arms, and releases after the close do nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* glibc's own heap: not under AddressSanitizer, whose allocator
 * replaces it (mallinfo2 then reports nothing of ours). */
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define GLIBC_HEAP 1
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#undef GLIBC_HEAP
#endif
#endif
#endif
#ifdef GLIBC_HEAP
#include <malloc.h>
#include <pthread.h>
#endif

#include "memtrim.h"

/* The rule alone: the fields as dcmf_memtrim_note() sets them. */
static void test_wait_rule(void **state) {
  (void)state;
  struct dcmf_memtrim t = {.quiet_ms = 100, .max_wait_ms = 1000};
  t.first_ms = 5000;
  t.last_ms = 5000;
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 5000), 100);
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 5040), 60);
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 5100), 0); /* quiet long enough */
  /* A release at 5090 pushes the trim to 5190. */
  t.last_ms = 5090;
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 5100), 90);
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 5190), 0);
  /* Releases every few ms for longer than max_wait: due at first + 1000
   * all the same, and never later. */
  t.last_ms = 5950;
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 5960), 40);
  t.last_ms = 5990;
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 5990), 10);
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 6000), 0);
  /* After a trim at 6000 the next is due max_wait later, however soon
   * the releases after it pause. */
  t.trims = 1;
  t.last_trim_ms = 6000;
  t.first_ms = t.last_ms = 6100;
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 6200), 800);
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 7000), 0);
  /* A burst long after the last trim only waits for its pause. */
  t.first_ms = t.last_ms = 9000;
  assert_int_equal(dcmf_memtrim_wait_ms(&t, 9000), 100);
}

struct bed {
  uv_loop_t loop;
  uv_timer_t guard; /* keeps the loop running; stops it when done */
  struct dcmf_memtrim trim;
  uint64_t want_trims;
  uint64_t deadline, started;
  int ticks, notes_left;
  uint64_t trims_at_last_note;
};

static void on_guard(uv_timer_t *g) {
  struct bed *b = g->data;
  b->ticks++;
  /* Releases keep coming every tick while notes_left lasts. */
  if (b->notes_left > 0) {
    b->notes_left--;
    dcmf_memtrim_note(&b->trim);
    b->trims_at_last_note = b->trim.trims;
  }
  if ((b->notes_left == 0 && b->trim.trims >= b->want_trims &&
       !b->trim.pending) ||
      uv_now(&b->loop) >= b->deadline) {
    uv_timer_stop(g);
  }
}

static void bed_run(struct bed *b, uint64_t want_trims, int notes,
                    uint64_t limit_ms) {
  b->want_trims = want_trims;
  b->notes_left = notes;
  uv_update_time(&b->loop);
  b->started = uv_now(&b->loop);
  b->deadline = b->started + limit_ms;
  uv_timer_start(&b->guard, on_guard, 2, 2);
  uv_run(&b->loop, UV_RUN_DEFAULT);
}

static void bed_init(struct bed *b, uint32_t quiet_ms, uint32_t max_wait_ms) {
  memset(b, 0, sizeof(*b));
  assert_int_equal(uv_loop_init(&b->loop), 0);
  uv_timer_init(&b->loop, &b->guard);
  b->guard.data = b;
  dcmf_memtrim_init(&b->trim, &b->loop, quiet_ms, max_wait_ms, NULL);
}

static void bed_close(struct bed *b) {
  dcmf_memtrim_close(&b->trim);
  uv_close((uv_handle_t *)&b->guard, NULL);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&b->loop), 0);
}

/* A burst of 200 releases in one loop turn: one trim, after the quiet
 * time. */
static void test_burst_one_trim(void **state) {
  (void)state;
  struct bed b;
  bed_init(&b, 20, 200);
  for (int i = 0; i < 200; i++) {
    dcmf_memtrim_note(&b.trim);
  }
  assert_true(b.trim.pending);
  assert_int_equal(b.trim.trims, 0); /* not per release */
  bed_run(&b, 1, 0, 5000);
  assert_int_equal(b.trim.trims, 1);
  assert_false(b.trim.pending);
  /* Nothing released since: no more trims however long the loop runs. */
  bed_run(&b, 2, 0, 60);
  assert_int_equal(b.trim.trims, 1);
  /* A second burst right away waits out the gap after the first trim,
   * then trims once. */
  uint64_t first_trim = b.trim.last_trim_ms;
  dcmf_memtrim_note(&b.trim);
  bed_run(&b, 2, 0, 5000);
  assert_int_equal(b.trim.trims, 2);
  assert_true(b.trim.last_trim_ms >= first_trim + 200);
  bed_close(&b);
}

/* Releases every 2 ms for 80 ticks (at least 160 ms) against a 50 ms
 * quiet time: they do not pause long enough, so max_wait (100 ms) forces
 * a trim while they last, and each trim covers many releases. (A loaded
 * machine that stretches the ticks past the quiet time trims too.) */
static void test_trickle_bounded_wait(void **state) {
  (void)state;
  struct bed b;
  bed_init(&b, 50, 100);
  bed_run(&b, 1, 80, 10000);
  assert_true(b.trims_at_last_note >= 1); /* before the releases ended */
  /* Debounced, and at least max_wait apart: not one per release. */
  uint64_t elapsed = uv_now(&b.loop) - b.started;
  assert_true(b.trim.trims <= 1 + elapsed / 100);
  assert_false(b.trim.pending);
  bed_close(&b);
}

/* quiet_ms 0 disables it, and a closed trim ignores releases. */
static void test_disabled_and_closed(void **state) {
  (void)state;
  struct bed b;
  bed_init(&b, 0, 0);
  dcmf_memtrim_note(&b.trim);
  assert_false(b.trim.pending);
  assert_false(uv_is_active((uv_handle_t *)&b.trim.timer));
  bed_close(&b);

  bed_init(&b, 20, 20);
  dcmf_memtrim_close(&b.trim);
  dcmf_memtrim_note(&b.trim);
  assert_false(b.trim.pending);
  uv_close((uv_handle_t *)&b.guard, NULL);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&b.loop), 0);
  assert_int_equal(b.trim.trims, 0);
}

#ifdef GLIBC_HEAP
/* What a thread's heap holds from the system (every arena, summed). */
static size_t heap_bytes(void) {
  return mallinfo2().arena;
}

struct held {
  size_t grown, after_free, after_release;
  int released;
};

/* On a thread of its own (so in an arena other than the main one, where
 * malloc_trim does not reach the top): 8 MiB of session-sized blocks
 * freed in one go stay in the heap while trimming is on, and
 * dcmf_memtrim_release() returns them. */
static void *hold_and_release(void *arg) {
  struct held *h = arg;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct dcmf_memtrim t;
  dcmf_memtrim_init(&t, &loop, 100, 1000, NULL);
  enum { N = 256, SIZE = 32 << 10 };
  static void *blocks[N];
  size_t base = heap_bytes();
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(SIZE);
    memset(blocks[i], 1, SIZE);
  }
  h->grown = heap_bytes() - base;
  for (int i = N - 1; i >= 0; i--) {
    free(blocks[i]);
  }
  h->after_free = heap_bytes() - base;
  h->released = dcmf_memtrim_release();
  size_t now = heap_bytes();
  h->after_release = now > base ? now - base : 0;
  dcmf_memtrim_close(&t);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return NULL;
}

static void test_freed_memory_waits_for_the_trim(void **state) {
  (void)state;
  struct held h;
  memset(&h, 0, sizeof(h));
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, hold_and_release, &h), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_true(h.grown >= 7u << 20);
  /* held: glibc alone would have returned all but its top pad */
  assert_true(h.after_free >= h.grown - (1u << 20));
  assert_true(h.released);
  assert_true(h.after_release < (1u << 20));
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wait_rule),
      cmocka_unit_test(test_burst_one_trim),
      cmocka_unit_test(test_trickle_bounded_wait),
      cmocka_unit_test(test_disabled_and_closed),
#ifdef GLIBC_HEAP
      cmocka_unit_test(test_freed_memory_waits_for_the_trim),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
