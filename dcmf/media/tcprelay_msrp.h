/*
 * tcprelay_msrp.h - MSRP application-aware relaying on an e2ae TCP relay
 * (tcprelay.h): MSRP over TLS/TCP from the UE <-> MSRP over TCP toward
 * the core, as TS 23.334 5.19.5 and docs/e2ae.md "MSRP over TLS, aware"
 * describe. Glue between tcprelay.c's legs and the relay engine
 * msrp_relay.h, used in stream-to-stream fashion: the core leg is the
 * engine's stream leg; the UE's TLS plaintext is cut into chunks here
 * (a framer of its own, so a chunk split across TLS records and TCP
 * segments is whole before it is offered) and each chunk is offered to
 * the engine as one "message". Per leg the engine checks that a request
 * names the MF's own URI first in its To-Path (else 481) and rewrites
 * To-Path and From-Path toward the other leg; Message-ID, Byte-Range,
 * Status, the body and the transaction id are kept.
 *
 * Limits: a chunk from the UE carries at most
 * DCMF_TCPRELAY_MSRP_MAX_BODY body bytes (a larger one ends the relay:
 * it cannot be held, and a UE sends a message of several MiB as chunks);
 * a SEND chunk from the core larger than that is passed on in pieces of
 * about that size (RFC 4975 §7.1.1), their responses folded into one
 * (msrp_relay.h), bounded by a timer of this module.
 *
 * Back-pressure as tcprelay.h says, and within the engine: a leg is not
 * read while the engine does not take its bytes (its queue toward the
 * other leg is full) or bytes read earlier still wait; the engine's
 * output goes to a socket only while that socket has fewer than
 * DCMF_TCPRELAY_BUFFER bytes queued. So a stalled side stops reading of
 * the other, and each direction holds at most the engine's queue limit,
 * one chunk, one read and the socket queue.
 *
 * A stream that cannot be cut into chunks (bad syntax, a head or body
 * over the limits) ends only its relay, with a reset and TCP_CLOSED
 * {"reason":"malformed MSRP from the access peer: ..."}.
 *
 * Events: MSRP_COUNTERS (with each TCP_COUNTERS push):
 *   {"toCore":{"bytes":N},"toAccess":{"messages":N,"bytes":N},
 *    "chunks":{"fromAccess":N,"fromCore":N,"splits":N,"pieces":N,
 *              "answers":N,"refused":N},"malformed":N,"peakMem":N,
 *    "final":B}
 *
 * Layer media; the relay's owner thread.
 */
#ifndef DCMF_TCPRELAY_MSRP_H
#define DCMF_TCPRELAY_MSRP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "msrp_relay.h"

/* The largest chunk body from the UE; the piece size toward the UE. */
#define DCMF_TCPRELAY_MSRP_MAX_BODY (1024 * 1024)

struct dcmf_tcprelay;

struct tcprelay_msrp {
  struct dcmf_msrp_relay relay;
  int relay_ok;                      /* started: both peer paths known */
  struct dcmf_msrp_framer access_in; /* the UE's plaintext -> chunks */
  uint8_t *plain;                    /* plaintext not yet in the framer */
  size_t plain_len, plain_off;
  uint8_t *core_rest; /* a core read the engine did not take yet */
  size_t core_rest_len, core_rest_off;
  uv_timer_t *timer; /* the engine's split expiry */
  uint64_t to_core_bytes, to_access_msgs, to_access_bytes, malformed;
};

/* Sets r->msrp up from r->cfg (msrp_aware set). Returns 0 or
 * DCMF_ERR_NOMEM; the engine starts once both peer paths are known
 * (now or at tcprelay_msrp_update). */
int tcprelay_msrp_new(struct dcmf_tcprelay *r);

/* Takes the peer paths an update brings ("": none given): the engine
 * starts once both are known, or a running one names a changed path
 * from its next chunk on. */
void tcprelay_msrp_update(struct dcmf_tcprelay *r, const char *paths[2]);

/* 1 if leg |side| may be read as far as MSRP is concerned. */
int tcprelay_msrp_may_read(const struct dcmf_tcprelay *r, int side);

/* Moves what can move: engine output to the sockets (while their
 * queues allow), bytes kept back into the engine, the UE's plaintext
 * out of TLS. Ends the relay on a malformed stream. */
void tcprelay_msrp_pump(struct dcmf_tcprelay *r);

/* One read from the core leg (|data|, |n|, borrowed). */
void tcprelay_msrp_from_core(struct dcmf_tcprelay *r, const uint8_t *data,
                             size_t n);

/* Raises MSRP_COUNTERS. */
void tcprelay_msrp_push(struct dcmf_tcprelay *r, int final);

/* A graceful end: everything the engine holds for a socket is queued
 * on it (bounded: the engine's queues), to go before the FIN. */
void tcprelay_msrp_flush(struct dcmf_tcprelay *r);

/* The relay ended (or the host closes): the timer goes. */
void tcprelay_msrp_end(struct dcmf_tcprelay *r);

/* Frees r->msrp (once its timer is closed). */
void tcprelay_msrp_free(struct dcmf_tcprelay *r);

#endif
