/*
 * tickq.h - the members of a periodic tick that have work pending.
 *
 * usrsctp has no "next timeout" call, so a worker ticks its stack at a
 * fixed period. What each association (and the services on it) has to do
 * after a tick is rare: a sender waiting to retry, events usrsctp queued
 * from a timer, relayed messages waiting for room. A member joins the
 * queue when it has such work and is visited on each run until it stops
 * joining, so the cost of a tick follows the busy members, not all of
 * them.
 *
 * Intrusive: the node lives inside its owner and nothing is allocated.
 * One thread owns a queue and its nodes; no locks.
 */
#ifndef DCMF_TICKQ_H
#define DCMF_TICKQ_H

#include <stddef.h>

struct dcmf_tickq_node;

/* What a visit does. The node is out of the queue while |fn| runs; |fn|
 * (or anything it calls) joins again to be visited on the next run. */
typedef void (*dcmf_tickq_fn)(struct dcmf_tickq_node *node);

struct dcmf_tickq_node {
  struct dcmf_tickq_node *prev, *next; /* NULL while out of any queue */
  dcmf_tickq_fn fn;
};

/* The owner of |node|: the |type| whose member |field| it is (a node
 * lives inside its owner, so a visit finds the owner without a table). */
#define DCMF_TICKQ_OWNER(node, type, field)                                    \
  ((type *)(void *)((char *)(node) - offsetof(type, field)))

struct dcmf_tickq {
  struct dcmf_tickq_node head; /* sentinel of a circular list */
  size_t count; /* members queued, or waiting in the run in progress */
  /* The run in progress keeps its members here (see dcmf_tickq_run). */
  struct dcmf_tickq_node running;
};

/* Makes |q| empty. */
void dcmf_tickq_init(struct dcmf_tickq *q);

/* Prepares |node| (out of any queue) to call |fn| when visited. */
void dcmf_tickq_node_init(struct dcmf_tickq_node *node, dcmf_tickq_fn fn);

/* Puts |node| in |q| for the next run. Does nothing when it is already
 * queued (joining is cheap enough to do on every event). */
void dcmf_tickq_join(struct dcmf_tickq *q, struct dcmf_tickq_node *node);

/* Takes |node| out of its queue, if any. Call it before the node's owner
 * is freed. */
void dcmf_tickq_leave(struct dcmf_tickq *q, struct dcmf_tickq_node *node);

/* Returns 1 if |node| is queued (or waits in the run in progress). */
int dcmf_tickq_queued(const struct dcmf_tickq_node *node);

/*
 * Visits every member queued when the run starts, once each, in the
 * order they joined: takes it out, then calls its |fn|. Members that
 * join during the run wait for the next one, so a run always ends. A
 * member may leave (or be left by another member's |fn|) while it waits
 * in the run. Not from inside a visit. Returns the number of visits.
 */
size_t dcmf_tickq_run(struct dcmf_tickq *q);

#endif
