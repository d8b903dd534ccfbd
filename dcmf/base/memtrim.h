/*
 * memtrim.h - gives the heap's free memory back to the operating system
 * once a burst of session releases is over.
 *
 * glibc's malloc keeps what a thread frees in that thread's arena for
 * reuse. Its heaps shrink only from the top, so after hundreds of
 * sessions end, one live block high in an arena keeps the freed pages
 * below it resident (measured in docs/benchmarks.md, "Memory after
 * sessions end"). malloc_trim(0) walks every arena and hands each whole
 * free page back (MADV_DONTNEED), whatever lies above it.
 *
 * The walk costs time in proportion to the heap (a few hundred sessions'
 * worth: tens of ms, during which the owner's loop waits), and the pages
 * it returns cost page faults when sessions come back, so it is not done
 * per release. The owner calls dcmf_memtrim_note() on each release, which
 * is two stores and, after a trim, one timer start. The timer trims once
 * no release came for |quiet_ms|, or at the latest |max_wait_ms| after
 * the first release not yet trimmed, so a steady trickle of releases is
 * trimmed too; and never sooner than |max_wait_ms| after the previous
 * trim. A burst of releases costs one walk.
 *
 * Between trims, freed memory stays in the heap. Left to itself, glibc
 * hands the top of a thread's heap back (MADV_DONTNEED) as soon as a
 * free leaves more than its trim threshold there, which a session
 * release does: with sessions set up one after another, every set-up
 * faulted back in the pages the previous release had returned, about 5 %
 * of a set-up's CPU (docs/benchmarks.md, "Set-up profile"). So when
 * trimming is on, dcmf_memtrim_init raises malloc's trim threshold
 * (process-wide; it also fixes the mmap threshold at DCMF_MEMTRIM_MMAP
 * instead of glibc's moving one), and the trim returns what piled up:
 * malloc_trim(0) returns the free pages inside every arena and the top
 * of the main arena, and dcmf_memtrim_release() returns the top of the
 * calling thread's own arena too, which malloc_trim leaves.
 *
 * Glue: owns a libuv timer on the owner's loop; one owner thread. On a C
 * library other than glibc the timer still runs and counts, but nothing
 * is trimmed or held.
 */
#ifndef DCMF_MEMTRIM_H
#define DCMF_MEMTRIM_H

#include <stdint.h>

#include <uv.h>

#include "log.h"

struct dcmf_memtrim {
  uv_timer_t timer;
  uv_loop_t *loop;
  const struct dcmf_log *log; /* borrowed; NULL: silent */
  uint64_t quiet_ms;          /* 0: never trims */
  uint64_t max_wait_ms;
  uint64_t first_ms, last_ms; /* loop times of releases not yet trimmed */
  uint64_t last_trim_ms;      /* loop time of the last trim */
  int pending;                /* a release waits for a trim */
  uint64_t trims;             /* trims done */
};

/*
 * Prepares |t| on |loop| (the owner's thread, or before any thread runs
 * the loop). quiet_ms 0 disables trimming; otherwise max_wait_ms is at
 * least quiet_ms, and malloc keeps freed memory until the trim (above).
 * The timer does not keep the loop alive; close it with
 * dcmf_memtrim_close() before the loop closes. Cannot fail.
 */
void dcmf_memtrim_init(struct dcmf_memtrim *t, uv_loop_t *loop,
                       uint32_t quiet_ms, uint32_t max_wait_ms,
                       const struct dcmf_log *log);

/* Notes one release (a session, a context ended). Owner's thread. */
void dcmf_memtrim_note(struct dcmf_memtrim *t);

/* The debounce rule, apart from the timer: 0 when a trim is due at loop
 * time |now_ms| given the pending releases, else the milliseconds left. */
uint64_t dcmf_memtrim_wait_ms(const struct dcmf_memtrim *t, uint64_t now_ms);

/* What free() may leave at the top of a heap between trims, and the
 * size from which an allocation gets its own mapping, once trimming is
 * on. */
#define DCMF_MEMTRIM_HOLD (64u << 20)
#define DCMF_MEMTRIM_MMAP (1u << 20)

/* Returns free heap memory to the system now: malloc_trim(0), then the
 * top of the calling thread's arena. Returns 1 when something was
 * returned, else 0 (always 0 on a C library other than glibc). Any
 * thread; what it does in the arenas of other threads is malloc_trim's
 * part only. Leaves malloc's trim threshold at DCMF_MEMTRIM_HOLD, as
 * dcmf_memtrim_init sets it when trimming is on. */
int dcmf_memtrim_release(void);

/* Closes the timer; notes after this do nothing. |t| must stay valid
 * until the loop has run its close callbacks. Owner's thread. */
void dcmf_memtrim_close(struct dcmf_memtrim *t);

#endif
