/*
 * relayq.h - the messages a DC relay holds for one side: those its twin
 * sent while this side's channel was not open yet or its SCTP send
 * buffer was full. A FIFO across streams, bounded in bytes, so a slow or
 * absent phone costs the relay a known amount of memory and the order
 * of every stream is kept. No I/O and no clock: the owner drains it into
 * its data channels and passes the time (ms, any monotonic origin) to
 * the calls that need it, so a stream that stops moving can be told.
 */
#ifndef DCMF_RELAYQ_H
#define DCMF_RELAYQ_H

#include <stddef.h>
#include <stdint.h>

struct dcmf_relayq_msg;

/* What waits on one stream. */
struct dcmf_relayq_stream {
  uint16_t sid;
  size_t count, bytes;
  uint64_t since; /* first queued, or last moved (a message left) */
  int stalled;    /* reported by dcmf_relayq_check_stalls, not moved since */
  int blocked;    /* scratch of dcmf_relayq_drain */
};

struct dcmf_relayq {
  struct dcmf_relayq_msg *head, *tail;
  size_t bytes, count;
  size_t max_bytes; /* the bound; set before use */
  /* Streams with something waiting (a few in practice: scanned). */
  struct dcmf_relayq_stream *streams;
  size_t n_streams, cap_streams;
  int draining; /* a drain runs */
  int again;    /* a drain or purge came in during one: walk again */
};

/* Appends a copy of a message queued at |now|. Returns 0, or
 * DCMF_ERR_EXHAUSTED (over max_bytes; an empty queue always takes one
 * message) or DCMF_ERR_NOMEM; the message is then not kept. */
int dcmf_relayq_push(struct dcmf_relayq *q, uint16_t sid, int binary,
                     const uint8_t *data, size_t len, uint64_t now);

/* Returns 1 if a message of stream |sid| waits. */
int dcmf_relayq_has(const struct dcmf_relayq *q, uint16_t sid);

/* What waits on stream |sid|, or NULL when nothing does. Valid until the
 * next call that changes the queue. */
const struct dcmf_relayq_stream *dcmf_relayq_stream(const struct dcmf_relayq *q,
                                                    uint16_t sid);

/*
 * Hands the messages to |send| in order. A stream whose message |send|
 * refuses with DCMF_ERR_EXHAUSTED or DCMF_ERR_NOT_FOUND (full, or not
 * open yet) keeps it and everything after it on that stream; other
 * streams go on. A message |send| fails otherwise is dropped and counted
 * in the return value. A stream that lost a message (sent or dropped)
 * has moved at |now|: its stall episode, if any, ends.
 *
 * |send| may reach this queue again (an SCTP send delivers the events
 * usrsctp queued, and their handlers relay, drain and close): a push
 * appends, a purge takes the messages out of the figures at once and
 * frees them once no walk holds them, and a nested drain returns 0 and
 * makes the running one walk again (a few times at most: a request
 * still open afterwards leaves |again| set, and the owner drains again
 * later).
 */
size_t dcmf_relayq_drain(struct dcmf_relayq *q,
                         int (*send)(void *user, uint16_t sid, int binary,
                                     const uint8_t *data, size_t len),
                         void *user, uint64_t now);

/*
 * Calls |stalled| for each stream that has not moved for more than
 * |after_ms| at |now| (messages wait, none left since the first was
 * queued or since the last one left), once per episode: the stream is
 * marked until it moves again. |stalled| must not change the queue.
 * Returns how many streams it reported.
 */
size_t dcmf_relayq_check_stalls(
    struct dcmf_relayq *q, uint64_t now, uint64_t after_ms,
    void (*stalled)(void *user, const struct dcmf_relayq_stream *st),
    void *user);

/* Drops every message of stream |sid| (see drain for a purge from
 * inside |send|); returns how many. */
size_t dcmf_relayq_purge(struct dcmf_relayq *q, uint16_t sid);

/* Frees everything; the queue is empty and usable again. Not from
 * inside a drain. An empty queue owns no memory (except messages a
 * purge inside a drain left for it to free), so a queue whose last
 * message left needs no clear. */
void dcmf_relayq_clear(struct dcmf_relayq *q);

#endif
