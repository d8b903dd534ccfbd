/*
 * relayq.h - the messages a DC relay holds for one side: those its twin
 * sent while this side's channel was not open yet or its SCTP send
 * buffer was full. A FIFO across streams, bounded in bytes, so a slow or
 * absent phone costs the relay a known amount of memory and the order
 * of every stream is kept. No I/O: the owner drains it into its data
 * channels.
 */
#ifndef DCMF_RELAYQ_H
#define DCMF_RELAYQ_H

#include <stddef.h>
#include <stdint.h>

struct dcmf_relayq_msg;

struct dcmf_relayq {
  struct dcmf_relayq_msg *head, *tail;
  size_t bytes, count;
  size_t max_bytes; /* the bound; set before use */
};

/* Appends a copy of a message. Returns 0, or DCMF_ERR_EXHAUSTED (over
 * max_bytes; an empty queue always takes one message) or DCMF_ERR_NOMEM;
 * the message is then not kept. */
int dcmf_relayq_push(struct dcmf_relayq *q, uint16_t sid, int binary,
                     const uint8_t *data, size_t len);

/* Returns 1 if a message of stream |sid| waits. */
int dcmf_relayq_has(const struct dcmf_relayq *q, uint16_t sid);

/*
 * Hands the messages to |send| in order. A stream whose message |send|
 * refuses with DCMF_ERR_EXHAUSTED or DCMF_ERR_NOT_FOUND (full, or not
 * open yet) keeps it and everything after it on that stream; other
 * streams go on. A message |send| fails otherwise is dropped and counted
 * in the return value.
 */
size_t dcmf_relayq_drain(struct dcmf_relayq *q,
                         int (*send)(void *user, uint16_t sid, int binary,
                                     const uint8_t *data, size_t len),
                         void *user);

/* Drops every message of stream |sid|; returns how many. */
size_t dcmf_relayq_purge(struct dcmf_relayq *q, uint16_t sid);

/* Frees everything. */
void dcmf_relayq_clear(struct dcmf_relayq *q);

#endif
