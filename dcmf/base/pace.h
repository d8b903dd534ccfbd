/*
 * pace.h - loop pacing: how long a busy event loop pauses after a turn
 * that handled I/O, so that its next poll returns many ready sockets at
 * once instead of one per wake-up.
 *
 * On a VM where every syscall and context switch is expensive, a media
 * worker that forwards 24,000 packets/s spread over hundreds of sockets
 * otherwise wakes for almost every packet. Pausing until |pace| has
 * passed since the end of the previous pause bounds the wake-ups to one
 * per |pace| while the loop is busy, at the price of at most |pace| of
 * added latency per crossing of the loop.
 *
 * Only a busy loop is paced, and only while pausing pays: a turn with
 * I/O pauses only when the two turns with I/O before it each came less
 * than |pace| after the end of the previous one, and a pause after which
 * the loop read fewer than DCMF_PACE_MIN_BATCH datagrams (one request
 * and its reply bouncing through the loop: waiting gathered nothing)
 * stops pausing for DCMF_PACE_HOLD_MS. A loop that wakes now and then (an
 * idle phone, a slow request/response) never pauses, and a turn without
 * I/O (a timer) never pauses. An idle loop keeps blocking in its poll:
 * the engine adds no wake-ups.
 *
 * A pure engine: it reads no clock and sleeps not; the glue (the media
 * worker) gives it the time at the end of each turn and does the pause.
 */
#ifndef DCMF_PACE_H
#define DCMF_PACE_H

#include <stdint.h>

/* Turns with I/O, each less than |pace| after the previous one ended,
 * before the loop counts as busy and the next such turn pauses. */
#define DCMF_PACE_BUSY_TURNS 2
/* A pause is worth it when the turn after it reads at least this many
 * datagrams; otherwise pausing stops for DCMF_PACE_HOLD_MS. */
#define DCMF_PACE_MIN_BATCH 4
#define DCMF_PACE_HOLD_MS 100

struct dcmf_pace {
  uint64_t pace_ns; /* 0: never pause */
  uint64_t
      last_end_ns; /* end of the previous turn with I/O (after its pause) */
  int have_last;   /* last_end_ns is set */
  unsigned streak; /* turns with I/O in a row that came quickly */
  int paused;      /* the previous turn with I/O paused */
  uint64_t hold_until_ns; /* no pause before this (a futile pause) */
};

/* |pace_us| 0 disables pacing. */
void dcmf_pace_init(struct dcmf_pace *p, uint32_t pace_us);

/*
 * The end of a loop turn at |now_ns| (a monotonic clock) that read
 * |datagrams| datagrams (0: a turn without I/O); |more_waiting|: a
 * socket held more than one read took (the next poll finds it ready at
 * once, so waiting gathers nothing and would only slow a single busy
 * flow down to a batch per pace). Returns how many
 * nanoseconds the
 * loop pauses now before it polls again (0: none), at most the pace.
 * The engine assumes the pause lasts what it returned; a longer one is
 * seen as a longer gap at the next turn.
 */
uint64_t dcmf_pace_turn(struct dcmf_pace *p, uint64_t now_ns,
                        uint64_t datagrams, int more_waiting);

#endif
