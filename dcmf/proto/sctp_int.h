/*
 * sctp_int.h - what sctp.c (association set-up, input, delivery) and
 * sctp_send.c (the send path: rests, bundling, stream resets) share.
 * Internal to the SCTP adapter; nothing outside those two files includes
 * it. Same rules as sctp.h: no I/O of our own, one owner thread.
 */
#ifndef DCMF_SCTP_INT_H
#define DCMF_SCTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <usrsctp.h>

#include "sctp.h"

/* Something usrsctp handed us inside its own call, kept for later. */
struct pending {
  enum { P_MESSAGE, P_RESET, P_STATE } kind;
  uint16_t sid;
  uint32_t ppid;
  enum dcmf_sctp_state state;
  uint8_t *data;
  size_t len;
  struct pending *next;
};

struct dcmf_sctp {
  struct socket *sock;
  struct dcmf_sctp_settings settings;
  struct dcmf_sctp_callbacks cbs;
  void *user;
  int up;
  /* A send was refused (or a message's rest waits): the caller is owed a
   * writable callback. usrsctp's send callback sets writable_ready, and
   * the next drain acts on it. */
  int want_writable;
  int writable_ready;
  /* Ticks since want_writable was set: usrsctp calls back only from SACK
   * processing, so when no SACK is coming (nothing in flight, or usrsctp
   * refused for another reason) the tick retries on its own. */
  unsigned waited_ticks;
  /* need_tick was called and dcmf_sctp_handle_tick has not run since. */
  int tick_wanted;
  /* Inside a call that drains before it returns: what usrsctp queues now
   * needs no tick. */
  int draining_call;
  /* reassembly of a message delivered in pieces (partial delivery) */
  uint8_t *partial;
  size_t partial_len;
  uint16_t partial_sid;
  uint32_t partial_ppid;
  int partial_dropping;
  /* Something the peer sent (a message or a piece of one, a stream reset,
   * a state change) could not be queued for want of memory. Delivering
   * what follows would hand the channels a stream with a hole in it, so
   * the association is given up: the next drain aborts it and reports
   * DOWN (without allocating), unless a DOWN was reported already. */
  int broken;
  int down_reported;
  struct pending *head, *tail;
  /* One delivered entry kept for the next: a steady stream of messages
   * allocates none (pending_new). */
  struct pending *spare;
  /* With explicit EOR usrsctp may take only the start of a message when
   * its send buffer is short; the rest waits here and goes out first, so
   * callers always hand over whole messages. */
  uint8_t *rest;
  size_t rest_off, rest_len; /* rest_len bytes wait at rest + rest_off */
  struct sctp_sendv_spa rest_spa;
  /* Bundling (settings.bundle): the newest small message of the loop
   * turn waits here, whole, until the next message or the turn's end
   * (dcmf_sctp_flush). The one before it was handed to usrsctp with
   * Nagle on, so usrsctp queued it; handing over the held one with
   * Nagle off then sends everything queued in full packets. Order:
   * a rest, then the held message, then anything newer. */
  uint8_t *held; /* HOLD_MAX bytes, allocated at the first hold */
  size_t held_len;
  int holding;
  struct sctp_sendv_spa held_spa;
  int bundle;     /* settings.bundle, with an output_pending to call */
  int flush_owed; /* output_pending was called, dcmf_sctp_flush not yet */
  int nodelay;    /* SCTP_NODELAY as last set on the socket */
  /* A channel was closed while its last message waited here for room:
   * the stream's reset follows the message (reset_if_due). */
  int reset_waits;
  uint16_t reset_sid;
  /* Outbound streams the association carries (from SCTP_COMM_UP): a
   * message for a stream beyond is refused before it is held, as
   * usrsctp would refuse it. 0 until known. */
  uint16_t out_streams;
  struct dcmf_sctp_counters counters;
};

/* Ticks (the media worker ticks every 10 ms) a refused sender waits for
 * usrsctp's send callback before the adapter retries on its own. */
#define RETRY_TICKS 10

/* How long a lone packet waits for its SACK (configure). */
#define SACK_DELAY_MS 50

/* The largest message held for bundling: two of them still share an
 * SCTP packet of the 1200-byte path MTU (a DATA chunk's header is 16
 * bytes, the packet's 12, DTLS adds up to 37). Larger ones leave at
 * once, taking what is queued with them. */
#define HOLD_MAX 560

/* sctp.c */
/* A sender waits for room: the owner's tick must look. */
void sctp_set_want_writable(struct dcmf_sctp *s);
/* Queues a state change or stream reset for the next drain. */
void sctp_push_event(struct dcmf_sctp *s, int kind, uint16_t sid,
                     enum dcmf_sctp_state state);
int sctp_set_opt(struct dcmf_sctp *s, int level, int name, const void *v,
                 socklen_t len);

/* sctp_send.c */
/* Aborts the association if it is up; returns whether it was. */
int sctp_abort_association(struct dcmf_sctp *s);
/* Hands usrsctp the rest of a partly sent message: 0 when all is out,
 * DCMF_ERR_EXHAUSTED when some still waits, DCMF_ERR_SYSTEM (failed). */
int sctp_flush_rest(struct dcmf_sctp *s);
/* Hands the held message over (|push|: Nagle off first): 0,
 * DCMF_ERR_EXHAUSTED (still held) or DCMF_ERR_NOMEM. */
int sctp_release_held(struct dcmf_sctp *s, int push);

#endif
