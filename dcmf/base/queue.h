/*
 * queue.h - the one queue between two threads: any thread pushes, the
 * thread that runs the consumer's libuv loop drains. A mutex guards an
 * intrusive FIFO list, and a uv_async wakes the consumer, which gets
 * everything pushed so far as one list. Used by the media worker: its
 * inbox from the control thread (DC media and AGW relay messages) and its
 * outbox back to it (media events and relay reports).
 *
 * Items embed a struct dcmf_queue_node (dcmf_queue_entry gets the item
 * back); the queue never allocates, so a push cannot fail for want of
 * memory. The queue may be bounded in count: a push over the limit is
 * refused and counted, while dcmf_queue_push_always bypasses the limit
 * for messages that must never be lost (stop, release a port).
 *
 * The caller owns the struct (embed it). The consumer loop's thread
 * closes it (dcmf_queue_close); items still queued are handed back then.
 */
#ifndef DCMF_QUEUE_H
#define DCMF_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct dcmf_queue_node {
  struct dcmf_queue_node *next;
};

/* The item of type |type| whose member |member| is |node|. */
#define dcmf_queue_entry(node, type, member)                                   \
  ((type *)(void *)((char *)(node)-offsetof(type, member)))

/*
 * Called on the consumer loop with everything pushed since the last call,
 * oldest first (follow ->next; the list is the callee's). Also called by
 * dcmf_queue_drain().
 */
typedef void (*dcmf_queue_drain_cb)(void *user, struct dcmf_queue_node *list);

/* Called once the queue is closed, with the items never drained (or
 * NULL); the list is the callee's. The queue may then be freed. */
typedef void (*dcmf_queue_closed_cb)(void *user, struct dcmf_queue_node *list);

struct dcmf_queue_settings {
  size_t limit; /* most items queued at once; 0: no bound */
  int unref;    /* 1: the queue does not keep its loop running */
  dcmf_queue_drain_cb drain;
  void *user; /* given to the callbacks */
};

/* Embed it; every field is private. */
struct dcmf_queue {
  uv_async_t async;
  uv_mutex_t mu;
  struct dcmf_queue_node *head, *tail; /* under |mu| */
  size_t count;                        /* under |mu| */
  uint64_t refused;                    /* under |mu| */
  struct dcmf_queue_settings settings;
  dcmf_queue_closed_cb closed;
};

/*
 * Makes |q| a queue drained on |loop| (call on |loop|'s thread, or before
 * that loop runs). Returns 0 or DCMF_ERR_SYSTEM (libuv refused the mutex
 * or the async handle; |q| then holds nothing).
 */
int dcmf_queue_init(struct dcmf_queue *q, uv_loop_t *loop,
                    const struct dcmf_queue_settings *settings);

/*
 * Any thread: appends |node| (owned by the queue until drained) and wakes
 * the consumer. Returns 0, or DCMF_ERR_EXHAUSTED when the queue holds
 * |limit| items already: |node| is not taken (still the caller's) and
 * the refusal is counted.
 */
int dcmf_queue_push(struct dcmf_queue *q, struct dcmf_queue_node *node);

/* Any thread: appends |node| whatever the limit (it still counts). */
void dcmf_queue_push_always(struct dcmf_queue *q, struct dcmf_queue_node *node);

/* Consumer thread: runs the drain callback now if anything is queued
 * (for a last pass when the consumer stops). */
void dcmf_queue_drain(struct dcmf_queue *q);

/* Any thread: pushes refused so far. */
uint64_t dcmf_queue_refused(struct dcmf_queue *q);

/* Any thread: items queued now. */
size_t dcmf_queue_count(struct dcmf_queue *q);

/*
 * Consumer loop's thread: closes the async handle. Once libuv has closed
 * it (the loop must run), |closed| runs with the items never drained and
 * |user|. No push may follow this call.
 */
void dcmf_queue_close(struct dcmf_queue *q, dcmf_queue_closed_cb closed);

#endif
