#include "memtrim.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

static void trim_now(struct dcmf_memtrim *t) {
  t->pending = 0;
  t->trims++;
#ifdef __GLIBC__
  uint64_t t0 = uv_hrtime();
  int released = malloc_trim(0);
  if (t->log != NULL) {
    DCMF_LOGD(t->log, "memtrim", "malloc_trim: %s in %.2f ms",
              released ? "memory returned" : "nothing to return",
              (double)(uv_hrtime() - t0) / 1e6);
  }
#endif
}

uint64_t dcmf_memtrim_wait_ms(const struct dcmf_memtrim *t, uint64_t now_ms) {
  uint64_t quiet = now_ms - t->last_ms;
  uint64_t waited = now_ms - t->first_ms;
  /* Releases still coming: wait until they pause, unless the first has
   * waited its longest. */
  if (quiet >= t->quiet_ms || waited >= t->max_wait_ms) {
    return 0;
  }
  uint64_t left = t->quiet_ms - quiet;
  uint64_t cap = t->max_wait_ms - waited;
  return left < cap ? left : cap;
}

static void on_timer(uv_timer_t *timer) {
  struct dcmf_memtrim *t = timer->data;
  uint64_t wait = dcmf_memtrim_wait_ms(t, uv_now(t->loop));
  if (wait > 0) {
    uv_timer_start(&t->timer, on_timer, wait, 0);
    return;
  }
  trim_now(t);
}

void dcmf_memtrim_init(struct dcmf_memtrim *t, uv_loop_t *loop,
                       uint32_t quiet_ms, uint32_t max_wait_ms,
                       const struct dcmf_log *log) {
  *t = (struct dcmf_memtrim){.loop = loop,
                             .log = log,
                             .quiet_ms = quiet_ms,
                             .max_wait_ms = max_wait_ms > quiet_ms
                                                ? max_wait_ms
                                                : quiet_ms};
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
  /* Memory left to trim is no reason to keep the loop running. */
  uv_unref((uv_handle_t *)&t->timer);
}

void dcmf_memtrim_note(struct dcmf_memtrim *t) {
  if (t->quiet_ms == 0) {
    return;
  }
  /* uv_now() is the loop's cached time: no system call. */
  t->last_ms = uv_now(t->loop);
  if (!t->pending) {
    t->pending = 1;
    t->first_ms = t->last_ms;
    uv_timer_start(&t->timer, on_timer, t->quiet_ms, 0);
  }
}

void dcmf_memtrim_close(struct dcmf_memtrim *t) {
  t->quiet_ms = 0; /* releases during the shutdown start no timer */
  uv_close((uv_handle_t *)&t->timer, NULL);
}
