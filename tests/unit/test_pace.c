/*
 * Loop pacing (pace.c) on a fake clock: off and idle loops never pause,
 * a busy loop pauses so that it polls once per pace, a quiet spell ends
 * the busy streak, a turn without I/O changes nothing, a pause that
 * gathered too few datagrams stops pausing for the hold time, and no
 * pause exceeds the pace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pace.h"

#define US 1000u

/* |turns| turns |step| ns apart from *|now| (advanced past them), each
 * with |datagrams| read and |more| waiting: none of them pauses. */
static void unpaused_turns(struct dcmf_pace *p, uint64_t *now, int turns,
                           uint64_t step, uint64_t datagrams, int more) {
  for (int i = 0; i < turns; i++) {
    assert_int_equal(dcmf_pace_turn(p, *now, datagrams, more), 0);
    *now += step;
  }
}

/* 100 turns |step| ns apart with |datagrams| each, on a loop paced at
 * |pace_us| (0: off), starting |step| after a first moment: none
 * pauses. */
static void never_pauses(uint32_t pace_us, uint64_t step, uint64_t datagrams) {
  struct dcmf_pace p;
  dcmf_pace_init(&p, pace_us);
  uint64_t now = 1000 * US + step;
  unpaused_turns(&p, &now, 100, step, datagrams, 0);
}

/* A loop paced at 500 us, busy with a datagram every 40 us from 1 ms:
 * after its unpaused streak, the turn 40 us after the last one pauses
 * 460 us. Returns the time the pause ends. */
static uint64_t busy_until_paused(struct dcmf_pace *p) {
  dcmf_pace_init(p, 500);
  uint64_t now = 1000 * US;
  unpaused_turns(p, &now, DCMF_PACE_BUSY_TURNS + 1, 40 * US, 1, 0);
  uint64_t pause = dcmf_pace_turn(p, now, 1, 0);
  assert_int_equal(pause, 460 * US);
  return now + pause;
}

static void test_off_never_pauses(void **state) {
  (void)state;
  never_pauses(0, 10 * US, 1);
}

static void test_turns_without_io_never_pause(void **state) {
  (void)state;
  never_pauses(500, 10 * US, 0);
}

/* A request/response every 2 ms: each turn with I/O comes after a
 * quiet spell longer than the pace, so none pauses. */
static void test_slow_io_never_pauses(void **state) {
  (void)state;
  never_pauses(500, 2000 * US, 1);
}

/* Packets every 40 us: the first DCMF_PACE_BUSY_TURNS + 1 turns run
 * unpaused, then each turn pauses until the pace has passed since the
 * previous pause ended, so the loop polls once per pace. */
static void test_busy_loop_polls_once_per_pace(void **state) {
  (void)state;
  struct dcmf_pace p;
  /* The turn 40 us after the last one pauses 460 us. */
  uint64_t now = busy_until_paused(&p);
  uint64_t pause;
  /* Polling again finds 12 ready sockets at once; handling them takes
   * 120 us, so the next pause is 380 us: one poll per 500 us. */
  for (int i = 0; i < 20; i++) {
    uint64_t start = now;
    now += 120 * US;
    pause = dcmf_pace_turn(&p, now, 12, 0);
    assert_int_equal(pause, 380 * US);
    now += pause;
    assert_int_equal(now - start, 500 * US);
  }
  /* A turn without I/O in between (a timer) neither pauses nor resets. */
  assert_int_equal(dcmf_pace_turn(&p, now + 10 * US, 0, 0), 0);
  assert_int_equal(dcmf_pace_turn(&p, now + 20 * US, 12, 0), 480 * US);
}

/* One request and its reply bouncing through a busy loop: the turn
 * after a pause reads one datagram, so pausing stops for the hold time
 * (the exchange runs unpaced), then is tried once more. */
static void test_futile_pause_holds(void **state) {
  (void)state;
  struct dcmf_pace p;
  uint64_t now = busy_until_paused(&p) + 10 * US;
  uint64_t pause;
  uint64_t start = now;
  int paused = 0;
  /* Every 40 us for the hold time: not one pause. */
  while (now - start < (uint64_t)DCMF_PACE_HOLD_MS * 1000 * US - 50 * US) {
    paused += dcmf_pace_turn(&p, now, DCMF_PACE_MIN_BATCH - 1, 0) != 0;
    now += 40 * US;
  }
  assert_int_equal(paused, 0);
  /* After it, a busy loop pauses again, and a pause that gathers
   * enough keeps pacing. */
  now = start + (uint64_t)DCMF_PACE_HOLD_MS * 1000 * US;
  /* (The turns just before were quick: the streak starts at once.) */
  unpaused_turns(&p, &now, DCMF_PACE_BUSY_TURNS, 40 * US, 1, 0);
  pause = dcmf_pace_turn(&p, now, 1, 0);
  assert_true(pause > 0);
  now += pause;
  now += 100 * US;
  assert_int_equal(dcmf_pace_turn(&p, now, DCMF_PACE_MIN_BATCH, 0), 400 * US);
}

/* A turn that took longer than the pace, or came after a quiet spell,
 * ends the busy streak: the loop is not paced again until it has been
 * busy for DCMF_PACE_BUSY_TURNS quick turns. */
static void test_quiet_spell_ends_the_streak(void **state) {
  (void)state;
  struct dcmf_pace p;
  dcmf_pace_init(&p, 500);
  uint64_t now = 1000 * US;
  unpaused_turns(&p, &now, DCMF_PACE_BUSY_TURNS + 1, 10 * US, 1, 0);
  assert_int_equal(dcmf_pace_turn(&p, now, 1, 0), 490 * US);
  now += 490 * US + 600 * US; /* quiet for longer than the pace */
  unpaused_turns(&p, &now, DCMF_PACE_BUSY_TURNS + 1, 10 * US,
                 DCMF_PACE_MIN_BATCH, 0);
  uint64_t pause = dcmf_pace_turn(&p, now, 1, 0);
  assert_true(pause > 0);
  assert_true(pause <= 500 * US);
}

/* A socket that held more than a read takes: no pause (the next poll
 * finds it ready at once), so one busy flow is not held to a batch per
 * pace; the loop stays busy and pauses again once it has drained. */
static void test_no_pause_while_more_waits(void **state) {
  (void)state;
  struct dcmf_pace p;
  dcmf_pace_init(&p, 500);
  uint64_t now = 1000 * US;
  unpaused_turns(&p, &now, DCMF_PACE_BUSY_TURNS + 1, 40 * US, 8, 1);
  unpaused_turns(&p, &now, 50, 40 * US, 8, 1);
  assert_int_equal(dcmf_pace_turn(&p, now, 3, 0), 460 * US);
}

/* A clock that goes backwards counts as a quiet spell, never as a
 * pause longer than the pace. */
static void test_clock_backwards_is_no_long_pause(void **state) {
  (void)state;
  struct dcmf_pace p;
  dcmf_pace_init(&p, 500);
  uint64_t now = 1000000 * US;
  for (int i = 0; i <= DCMF_PACE_BUSY_TURNS; i++) {
    dcmf_pace_turn(&p, now, 1, 0);
    now += 10 * US;
  }
  assert_int_equal(dcmf_pace_turn(&p, now - 100000 * US, 1, 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_off_never_pauses),
      cmocka_unit_test(test_turns_without_io_never_pause),
      cmocka_unit_test(test_slow_io_never_pauses),
      cmocka_unit_test(test_busy_loop_polls_once_per_pace),
      cmocka_unit_test(test_quiet_spell_ends_the_streak),
      cmocka_unit_test(test_futile_pause_holds),
      cmocka_unit_test(test_no_pause_while_more_waits),
      cmocka_unit_test(test_clock_backwards_is_no_long_pause),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
