/*
 * The tick queue (tickq.c): members are visited once per run in the
 * order they joined, joining twice is once, a member that joins during a
 * run waits for the next one, and a member may leave (or be left) while
 * it waits in the run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tickq.h"

#define N 5

struct member {
  struct dcmf_tickq_node node;
  int id;
  int visits;
  int rejoin;          /* join again from the visit */
  struct member *drop; /* make this one leave from the visit */
  struct dcmf_tickq *q;
  int *order, *n_order;
};

static void visit(struct dcmf_tickq_node *node) {
  struct member *m = DCMF_TICKQ_OWNER(node, struct member, node);
  assert_false(dcmf_tickq_queued(node)); /* out while it runs */
  m->visits++;
  m->order[(*m->n_order)++] = m->id;
  if (m->rejoin) {
    dcmf_tickq_join(m->q, node);
  }
  if (m->drop != NULL) {
    dcmf_tickq_leave(m->q, &m->drop->node);
  }
}

struct bed {
  struct dcmf_tickq q;
  struct member m[N];
  int order[64];
  int n_order;
};

static void bed_init(struct bed *b) {
  memset(b, 0, sizeof(*b));
  dcmf_tickq_init(&b->q);
  for (int i = 0; i < N; i++) {
    dcmf_tickq_node_init(&b->m[i].node, visit);
    b->m[i].id = i;
    b->m[i].q = &b->q;
    b->m[i].order = b->order;
    b->m[i].n_order = &b->n_order;
  }
}

static void test_empty_run_visits_nothing(void **state) {
  (void)state;
  struct bed b;
  bed_init(&b);
  assert_int_equal(dcmf_tickq_run(&b.q), 0);
  assert_int_equal(b.q.count, 0);
}

static void test_visits_once_in_join_order(void **state) {
  (void)state;
  struct bed b;
  bed_init(&b);
  dcmf_tickq_join(&b.q, &b.m[3].node);
  dcmf_tickq_join(&b.q, &b.m[1].node);
  dcmf_tickq_join(&b.q, &b.m[3].node); /* already queued: once */
  assert_int_equal(b.q.count, 2);
  assert_int_equal(dcmf_tickq_run(&b.q), 2);
  assert_int_equal(b.n_order, 2);
  assert_int_equal(b.order[0], 3);
  assert_int_equal(b.order[1], 1);
  /* Nobody joined again: the next run visits nobody. */
  assert_int_equal(b.q.count, 0);
  assert_int_equal(dcmf_tickq_run(&b.q), 0);
  assert_int_equal(b.m[0].visits + b.m[2].visits + b.m[4].visits, 0);
}

static void test_join_during_run_waits_for_the_next(void **state) {
  (void)state;
  struct bed b;
  bed_init(&b);
  b.m[2].rejoin = 1;
  dcmf_tickq_join(&b.q, &b.m[2].node);
  for (int run = 1; run <= 3; run++) {
    assert_int_equal(dcmf_tickq_run(&b.q), 1); /* never twice in a run */
    assert_int_equal(b.m[2].visits, run);
    assert_int_equal(b.q.count, 1);
  }
  b.m[2].rejoin = 0;
  assert_int_equal(dcmf_tickq_run(&b.q), 1);
  assert_int_equal(dcmf_tickq_run(&b.q), 0);
}

static void test_leave_while_waiting_in_the_run(void **state) {
  (void)state;
  struct bed b;
  bed_init(&b);
  b.m[0].drop = &b.m[4]; /* 0's visit makes 4 leave before its turn */
  for (int i = 0; i < N; i++) {
    dcmf_tickq_join(&b.q, &b.m[i].node);
  }
  dcmf_tickq_leave(&b.q, &b.m[2].node); /* leaves before the run */
  dcmf_tickq_leave(&b.q, &b.m[2].node); /* twice is harmless */
  assert_int_equal(b.q.count, 4);
  assert_int_equal(dcmf_tickq_run(&b.q), 3);
  assert_int_equal(b.m[2].visits, 0);
  assert_int_equal(b.m[4].visits, 0);
  assert_int_equal(b.q.count, 0);
  assert_false(dcmf_tickq_queued(&b.m[4].node));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_run_visits_nothing),
      cmocka_unit_test(test_visits_once_in_join_order),
      cmocka_unit_test(test_join_during_run_waits_for_the_next),
      cmocka_unit_test(test_leave_while_waiting_in_the_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
