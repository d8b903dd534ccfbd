#include "memtrim.h"

#include <time.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

/* This thread's CPU time in ms: the trim's own cost, which the wall time
 * on a busy machine overstates. */
static double thread_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int dcmf_memtrim_release(void) {
#ifdef __GLIBC__
  int released = malloc_trim(0);
  /* malloc_trim trims the top of the main arena only. A free checks the
   * top of its own thread's arena against the trim threshold whenever
   * the chunk it frees (merged with its free neighbours) is at least 64
   * KiB (glibc's FASTBIN_CONSOLIDATION_THRESHOLD): with the threshold
   * lowered for the moment, one such free returns that top. */
  size_t before = mallinfo2().arena;
  mallopt(M_TRIM_THRESHOLD, 0);
  /* volatile: a malloc whose block is only freed may be left out */
  void *volatile p = malloc(64u << 10);
  free(p);
  mallopt(M_TRIM_THRESHOLD, (int)DCMF_MEMTRIM_HOLD);
  return released || mallinfo2().arena < before;
#else
  return 0;
#endif
}

static void trim_now(struct dcmf_memtrim *t) {
  t->pending = 0;
  t->trims++;
  t->last_trim_ms = uv_now(t->loop);
#ifdef __GLIBC__
  uint64_t t0 = uv_hrtime();
  double c0 = thread_cpu_ms();
  int released = dcmf_memtrim_release();
  if (t->log != NULL) {
    DCMF_LOGD(t->log, "memtrim", "malloc_trim: %s in %.2f ms (%.2f ms of CPU)",
              released ? "memory returned" : "nothing to return",
              (double)(uv_hrtime() - t0) / 1e6, thread_cpu_ms() - c0);
  }
#endif
}

uint64_t dcmf_memtrim_wait_ms(const struct dcmf_memtrim *t, uint64_t now_ms) {
  /* Due once releases pause for quiet_ms, or max_wait_ms after the first
   * one not yet trimmed if they do not pause... */
  uint64_t due = t->last_ms + t->quiet_ms;
  uint64_t cap = t->first_ms + t->max_wait_ms;
  if (cap < due) {
    due = cap;
  }
  /* ...but not sooner than max_wait_ms after the previous trim: a trim
   * walks the whole heap (tens of ms for a few hundred sessions' worth),
   * so a trickle of releases must not bring one every quiet_ms. */
  uint64_t gap = t->last_trim_ms + t->max_wait_ms;
  if (t->trims > 0 && due < gap) {
    due = gap;
  }
  return due > now_ms ? due - now_ms : 0;
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
                             .max_wait_ms = max_wait_ms > quiet_ms ? max_wait_ms
                                                                   : quiet_ms};
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
#ifdef __GLIBC__
  if (quiet_ms > 0) {
    /* Freed memory waits for the trim (memtrim.h). Setting either
     * threshold also ends glibc's own moving of them. */
    mallopt(M_TRIM_THRESHOLD, (int)DCMF_MEMTRIM_HOLD);
    mallopt(M_MMAP_THRESHOLD, (int)DCMF_MEMTRIM_MMAP);
  }
#endif
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
