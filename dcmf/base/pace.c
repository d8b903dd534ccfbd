#include "pace.h"

void dcmf_pace_init(struct dcmf_pace *p, uint32_t pace_us) {
  *p = (struct dcmf_pace){.pace_ns = (uint64_t)pace_us * 1000u};
}

uint64_t dcmf_pace_turn(struct dcmf_pace *p, uint64_t now_ns,
                        uint64_t datagrams, int more_waiting) {
  if (p->pace_ns == 0 || datagrams == 0) {
    return 0;
  }
  if (p->paused) {
    p->paused = 0;
    if (datagrams < DCMF_PACE_MIN_BATCH) {
      /* Waiting gathered (almost) nothing: the loop is busy with few
       * flows back and forth, whose every crossing the pause delays. */
      p->hold_until_ns = now_ns + (uint64_t)DCMF_PACE_HOLD_MS * 1000000u;
    }
  }
  if (now_ns < p->hold_until_ns) {
    p->streak = 0;
    p->have_last = 1;
    p->last_end_ns = now_ns;
    return 0;
  }
  /* A clock that went backwards (it should not) counts as a long gap. */
  int quick = p->have_last && now_ns >= p->last_end_ns &&
              now_ns - p->last_end_ns < p->pace_ns;
  p->have_last = 1;
  if (!quick) {
    /* The first turn after a quiet spell: the loop is not busy. */
    p->streak = 0;
    p->last_end_ns = now_ns;
    return 0;
  }
  uint64_t gap = now_ns - p->last_end_ns;
  if (p->streak < DCMF_PACE_BUSY_TURNS || more_waiting) {
    p->streak++;
    p->last_end_ns = now_ns;
    return 0;
  }
  /* Busy: pause until |pace| has passed since the previous turn ended,
   * so the loop polls at most once per |pace|. */
  uint64_t pause = p->pace_ns - gap;
  p->last_end_ns = now_ns + pause;
  p->paused = 1;
  return pause;
}
