#include "relayq.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

struct dcmf_relayq_msg {
  struct dcmf_relayq_msg *next;
  uint16_t sid;
  int binary;
  size_t len;
  uint8_t data[];
};

int dcmf_relayq_push(struct dcmf_relayq *q, uint16_t sid, int binary,
                     const uint8_t *data, size_t len) {
  if (q->count > 0 && q->bytes + len > q->max_bytes) {
    return DCMF_ERR_EXHAUSTED;
  }
  struct dcmf_relayq_msg *m = malloc(sizeof(*m) + len);
  if (m == NULL) {
    return DCMF_ERR_NOMEM;
  }
  m->next = NULL;
  m->sid = sid;
  m->binary = binary;
  m->len = len;
  if (len > 0) {
    memcpy(m->data, data, len);
  }
  if (q->tail != NULL) {
    q->tail->next = m;
  } else {
    q->head = m;
  }
  q->tail = m;
  q->bytes += len;
  q->count++;
  return 0;
}

int dcmf_relayq_has(const struct dcmf_relayq *q, uint16_t sid) {
  for (const struct dcmf_relayq_msg *m = q->head; m; m = m->next) {
    if (m->sid == sid) {
      return 1;
    }
  }
  return 0;
}

/* Unlinks |m|, whose predecessor is |prev| (NULL: the head). */
static void unlink_msg(struct dcmf_relayq *q, struct dcmf_relayq_msg *prev,
                       struct dcmf_relayq_msg *m) {
  if (prev != NULL) {
    prev->next = m->next;
  } else {
    q->head = m->next;
  }
  if (q->tail == m) {
    q->tail = prev;
  }
  q->bytes -= m->len;
  q->count--;
  free(m);
}

/* Streams that stopped during one drain; few at a time in practice, so a
 * short list, and past it everything stops (order is never broken). */
#define BLOCKED_MAX 16

size_t dcmf_relayq_drain(struct dcmf_relayq *q,
                         int (*send)(void *user, uint16_t sid, int binary,
                                     const uint8_t *data, size_t len),
                         void *user) {
  uint16_t blocked[BLOCKED_MAX];
  size_t n_blocked = 0, dropped = 0;
  struct dcmf_relayq_msg *prev = NULL, *m = q->head;
  while (m != NULL) {
    int is_blocked = 0;
    for (size_t i = 0; i < n_blocked; i++) {
      is_blocked |= blocked[i] == m->sid;
    }
    if (is_blocked) {
      prev = m;
      m = m->next;
      continue;
    }
    int rv = send(user, m->sid, m->binary, m->data, m->len);
    if (rv == DCMF_ERR_EXHAUSTED || rv == DCMF_ERR_NOT_FOUND) {
      if (n_blocked == BLOCKED_MAX) {
        break;
      }
      blocked[n_blocked++] = m->sid;
      prev = m;
      m = m->next;
      continue;
    }
    dropped += rv != 0;
    struct dcmf_relayq_msg *next = m->next;
    unlink_msg(q, prev, m);
    m = next;
  }
  return dropped;
}

size_t dcmf_relayq_purge(struct dcmf_relayq *q, uint16_t sid) {
  size_t n = 0;
  struct dcmf_relayq_msg *prev = NULL, *m = q->head;
  while (m != NULL) {
    struct dcmf_relayq_msg *next = m->next;
    if (m->sid == sid) {
      unlink_msg(q, prev, m);
      n++;
    } else {
      prev = m;
    }
    m = next;
  }
  return n;
}

void dcmf_relayq_clear(struct dcmf_relayq *q) {
  while (q->head != NULL) {
    unlink_msg(q, NULL, q->head);
  }
}
