#include "relayq.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

struct dcmf_relayq_msg {
  struct dcmf_relayq_msg *next;
  uint16_t sid;
  int binary;
  int dead; /* purged while a drain held it: out of the figures */
  size_t len;
  uint8_t data[];
};

static struct dcmf_relayq_stream *stream_find(const struct dcmf_relayq *q,
                                              uint16_t sid) {
  for (size_t i = 0; i < q->n_streams; i++) {
    if (q->streams[i].sid == sid) {
      return &q->streams[i];
    }
  }
  return NULL;
}

/* The entry of |sid|, added (waiting since |now|) if there is none;
 * NULL when out of memory. */
static struct dcmf_relayq_stream *stream_get(struct dcmf_relayq *q,
                                             uint16_t sid, uint64_t now) {
  struct dcmf_relayq_stream *st = stream_find(q, sid);
  if (st != NULL) {
    return st;
  }
  if (q->n_streams == q->cap_streams) {
    size_t cap = q->cap_streams ? 2 * q->cap_streams : 4;
    struct dcmf_relayq_stream *grown =
        realloc(q->streams, cap * sizeof(*grown));
    if (grown == NULL) {
      return NULL;
    }
    q->streams = grown;
    q->cap_streams = cap;
  }
  st = &q->streams[q->n_streams++];
  memset(st, 0, sizeof(*st));
  st->sid = sid;
  st->since = now;
  return st;
}

/* Forgets an entry with nothing left (the last one takes its place). The
 * table goes with the last entry: an empty queue owns no memory, as
 * before it had per-stream figures. */
static void stream_remove(struct dcmf_relayq *q,
                          struct dcmf_relayq_stream *st) {
  *st = q->streams[--q->n_streams];
  if (q->n_streams == 0) {
    free(q->streams);
    q->streams = NULL;
    q->cap_streams = 0;
  }
}

int dcmf_relayq_push(struct dcmf_relayq *q, uint16_t sid, int binary,
                     const uint8_t *data, size_t len, uint64_t now) {
  if (q->count > 0 && q->bytes + len > q->max_bytes) {
    return DCMF_ERR_EXHAUSTED;
  }
  struct dcmf_relayq_stream *st = stream_get(q, sid, now);
  if (st == NULL) {
    return DCMF_ERR_NOMEM;
  }
  struct dcmf_relayq_msg *m = malloc(sizeof(*m) + len);
  if (m == NULL) {
    if (st->count == 0) {
      stream_remove(q, st);
    }
    return DCMF_ERR_NOMEM;
  }
  m->next = NULL;
  m->sid = sid;
  m->binary = binary;
  m->dead = 0;
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
  st->bytes += len;
  st->count++;
  return 0;
}

int dcmf_relayq_has(const struct dcmf_relayq *q, uint16_t sid) {
  return stream_find(q, sid) != NULL;
}

const struct dcmf_relayq_stream *dcmf_relayq_stream(const struct dcmf_relayq *q,
                                                    uint16_t sid) {
  return stream_find(q, sid);
}

/* Takes |m| out of the figures: the queue's and its stream's. */
static void account_out(struct dcmf_relayq *q, struct dcmf_relayq_msg *m) {
  q->bytes -= m->len;
  q->count--;
  struct dcmf_relayq_stream *st = stream_find(q, m->sid);
  if (st != NULL) {
    st->bytes -= m->len;
    if (--st->count == 0) {
      stream_remove(q, st);
    }
  }
}

/* Unlinks and frees |m|, whose predecessor is |prev| (NULL: the head). */
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
  if (!m->dead) {
    account_out(q, m);
  }
  free(m);
}

/* One pass over the queue; see dcmf_relayq_drain. */
static size_t walk(struct dcmf_relayq *q,
                   int (*send)(void *user, uint16_t sid, int binary,
                               const uint8_t *data, size_t len),
                   void *user, uint64_t now) {
  for (size_t i = 0; i < q->n_streams; i++) {
    q->streams[i].blocked = 0;
  }
  size_t dropped = 0;
  struct dcmf_relayq_msg *prev = NULL, *m = q->head;
  while (m != NULL) {
    struct dcmf_relayq_stream *st = m->dead ? NULL : stream_find(q, m->sid);
    if (st == NULL) { /* purged from inside |send| */
      struct dcmf_relayq_msg *next = m->next;
      unlink_msg(q, prev, m);
      m = next;
      continue;
    }
    if (st->blocked) {
      prev = m;
      m = m->next;
      continue;
    }
    int rv = send(user, m->sid, m->binary, m->data, m->len);
    if (m->dead) {
      continue; /* purged during the send: freed on the next turn */
    }
    st = stream_find(q, m->sid); /* |send| may have moved the entries */
    if (rv == DCMF_ERR_EXHAUSTED || rv == DCMF_ERR_NOT_FOUND) {
      st->blocked = 1; /* nothing of this stream may overtake |m| */
      prev = m;
      m = m->next;
      continue;
    }
    dropped += rv != 0;
    st->since = now; /* it moved: a stall, if any, is over */
    st->stalled = 0;
    struct dcmf_relayq_msg *next = m->next;
    unlink_msg(q, prev, m);
    m = next;
  }
  return dropped;
}

/* Walks per drain, at most: each nested request comes from an event
 * that usrsctp queued earlier and hands over only once, so one or two
 * are the rule; past the cap |again| stays set for the owner to drain
 * later rather than loop here. */
#define WALKS_MAX 8

size_t dcmf_relayq_drain(struct dcmf_relayq *q,
                         int (*send)(void *user, uint16_t sid, int binary,
                                     const uint8_t *data, size_t len),
                         void *user, uint64_t now) {
  if (q->draining) {
    q->again = 1;
    return 0;
  }
  q->draining = 1;
  size_t dropped = 0;
  q->again = 1;
  for (int i = 0; i < WALKS_MAX && q->again; i++) {
    q->again = 0;
    dropped += walk(q, send, user, now);
  }
  q->draining = 0;
  return dropped;
}

size_t dcmf_relayq_check_stalls(
    struct dcmf_relayq *q, uint64_t now, uint64_t after_ms,
    void (*stalled)(void *user, const struct dcmf_relayq_stream *st),
    void *user) {
  size_t n = 0;
  for (size_t i = 0; i < q->n_streams; i++) {
    struct dcmf_relayq_stream *st = &q->streams[i];
    if (!st->stalled && now > st->since && now - st->since > after_ms) {
      st->stalled = 1;
      n++;
      stalled(user, st);
    }
  }
  return n;
}

size_t dcmf_relayq_purge(struct dcmf_relayq *q, uint16_t sid) {
  size_t n = 0;
  struct dcmf_relayq_msg *prev = NULL, *m = q->head;
  while (m != NULL) {
    struct dcmf_relayq_msg *next = m->next;
    if (m->sid == sid && !m->dead) {
      n++;
      if (q->draining) {
        /* The running walk may hold |m| or its neighbour: it frees it. */
        account_out(q, m);
        m->dead = 1;
        q->again = 1;
        prev = m;
      } else {
        unlink_msg(q, prev, m);
      }
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
  free(q->streams);
  q->streams = NULL;
  q->n_streams = q->cap_streams = 0;
}
