#include "queue.h"

#include <string.h>

#include "errors.h"

/* Takes the whole list out under the lock. */
static struct dcmf_queue_node *queue_take(struct dcmf_queue *q) {
  uv_mutex_lock(&q->mu);
  struct dcmf_queue_node *list = q->head;
  q->head = q->tail = NULL;
  q->count = 0;
  uv_mutex_unlock(&q->mu);
  return list;
}

static void on_async(uv_async_t *a) {
  dcmf_queue_drain(a->data);
}

int dcmf_queue_init(struct dcmf_queue *q, uv_loop_t *loop,
                    const struct dcmf_queue_settings *settings) {
  memset(q, 0, sizeof(*q));
  q->settings = *settings;
  if (uv_mutex_init(&q->mu) != 0) {
    return DCMF_ERR_SYSTEM;
  }
  if (uv_async_init(loop, &q->async, on_async) != 0) {
    uv_mutex_destroy(&q->mu);
    return DCMF_ERR_SYSTEM;
  }
  q->async.data = q;
  if (settings->unref) {
    uv_unref((uv_handle_t *)&q->async);
  }
  return 0;
}

/* Appends under the lock; |force| ignores the limit. Returns 0 or
 * DCMF_ERR_EXHAUSTED. */
static int queue_append(struct dcmf_queue *q, struct dcmf_queue_node *node,
                        int force) {
  node->next = NULL;
  uv_mutex_lock(&q->mu);
  if (!force && q->settings.limit != 0 && q->count >= q->settings.limit) {
    q->refused++;
    uv_mutex_unlock(&q->mu);
    return DCMF_ERR_EXHAUSTED;
  }
  if (q->tail != NULL) {
    q->tail->next = node;
  } else {
    q->head = node;
  }
  q->tail = node;
  q->count++;
  uv_mutex_unlock(&q->mu);
  uv_async_send(&q->async);
  return 0;
}

int dcmf_queue_push(struct dcmf_queue *q, struct dcmf_queue_node *node) {
  return queue_append(q, node, 0);
}

void dcmf_queue_push_always(struct dcmf_queue *q,
                            struct dcmf_queue_node *node) {
  (void)queue_append(q, node, 1);
}

void dcmf_queue_drain(struct dcmf_queue *q) {
  struct dcmf_queue_node *list = queue_take(q);
  if (list != NULL) {
    q->settings.drain(q->settings.user, list);
  }
}

uint64_t dcmf_queue_refused(struct dcmf_queue *q) {
  uv_mutex_lock(&q->mu);
  uint64_t n = q->refused;
  uv_mutex_unlock(&q->mu);
  return n;
}

size_t dcmf_queue_count(struct dcmf_queue *q) {
  uv_mutex_lock(&q->mu);
  size_t n = q->count;
  uv_mutex_unlock(&q->mu);
  return n;
}

static void on_closed(uv_handle_t *h) {
  struct dcmf_queue *q = h->data;
  struct dcmf_queue_node *list = queue_take(q);
  uv_mutex_destroy(&q->mu);
  /* Last: the callback may free |q|. */
  q->closed(q->settings.user, list);
}

void dcmf_queue_close(struct dcmf_queue *q, dcmf_queue_closed_cb closed) {
  q->closed = closed;
  uv_close((uv_handle_t *)&q->async, on_closed);
}
