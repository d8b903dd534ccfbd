/*
 * heartbeat.h - proof that an event loop still turns, readable from any
 * thread.
 *
 * The loop's own thread runs a cheap repeating timer that stores the
 * monotonic time of each turn in an atomic; whoever watches (the control
 * thread, for /healthz, /metrics and its stall log) compares it with the
 * monotonic clock. A loop that spins or blocks stops storing, so its age
 * grows. Glue: it owns a libuv timer.
 */
#ifndef DCMF_HEARTBEAT_H
#define DCMF_HEARTBEAT_H

#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

/* How often a healthy loop beats. */
#define DCMF_HEARTBEAT_PERIOD_MS 250
/* A loop whose last beat is older than this is stalled. */
#define DCMF_HEARTBEAT_STALL_MS 1000

struct dcmf_heartbeat {
  uv_timer_t timer;         /* on the watched loop */
  _Atomic uint64_t last_ms; /* dcmf_heartbeat_now_ms() of the last beat */
};

/*
 * Stores a first beat and starts the timer on |loop|. Call on the loop's
 * thread, or before any thread runs |loop|. The timer does not keep
 * |loop| alive, but it must be closed with dcmf_heartbeat_close() before
 * the loop is closed.
 */
void dcmf_heartbeat_start(struct dcmf_heartbeat *hb, uv_loop_t *loop);

/* Closes the timer (the loop's thread); |hb| must stay valid until the
 * loop has run its close callbacks. */
void dcmf_heartbeat_close(struct dcmf_heartbeat *hb);

/* The monotonic clock the beats use, in milliseconds. Any thread. */
uint64_t dcmf_heartbeat_now_ms(void);

/* Milliseconds from the last beat to |now_ms| (0 if the beat is newer).
 * Any thread. */
uint64_t dcmf_heartbeat_age_ms(const struct dcmf_heartbeat *hb,
                               uint64_t now_ms);

#endif
