#include "tickq.h"

static void list_init(struct dcmf_tickq_node *h) {
  h->prev = h->next = h;
}

static void unlink_node(struct dcmf_tickq_node *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = NULL;
}

void dcmf_tickq_init(struct dcmf_tickq *q) {
  list_init(&q->head);
  list_init(&q->running);
  q->count = 0;
}

void dcmf_tickq_node_init(struct dcmf_tickq_node *node, dcmf_tickq_fn fn) {
  node->prev = node->next = NULL;
  node->fn = fn;
}

void dcmf_tickq_join(struct dcmf_tickq *q, struct dcmf_tickq_node *node) {
  if (node->next != NULL) {
    return;
  }
  node->prev = q->head.prev;
  node->next = &q->head;
  q->head.prev->next = node;
  q->head.prev = node;
  q->count++;
}

void dcmf_tickq_leave(struct dcmf_tickq *q, struct dcmf_tickq_node *node) {
  if (node->next != NULL) {
    unlink_node(node);
    q->count--;
  }
}

int dcmf_tickq_queued(const struct dcmf_tickq_node *node) {
  return node->next != NULL;
}

size_t dcmf_tickq_run(struct dcmf_tickq *q) {
  if (q->head.next == &q->head) {
    return 0;
  }
  /* Move the whole queue to the running list in O(1); joins made by the
   * visits go to the (now empty) queue for the next run. */
  struct dcmf_tickq_node *r = &q->running;
  r->next = q->head.next;
  r->prev = q->head.prev;
  r->next->prev = r;
  r->prev->next = r;
  list_init(&q->head);
  size_t visits = 0;
  while (r->next != r) {
    struct dcmf_tickq_node *n = r->next;
    unlink_node(n);
    q->count--;
    visits++;
    n->fn(n);
  }
  return visits;
}
