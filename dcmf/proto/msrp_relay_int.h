/*
 * msrp_relay_int.h - what the MSRP relay's files share: msrp_relay.c
 * (set-up, queues, the two directions, back-pressure, time) and
 * msrp_relay_split.c (splits of SENDs too large for one message, whole
 * or while they stream in, and the folding of their pieces' responses).
 * Internal: nothing outside those files includes it.
 */
#ifndef DCMF_MSRP_RELAY_INT_H
#define DCMF_MSRP_RELAY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "msrp_relay.h"

/* Legs by index: 0 the data channel (messages), 1 the stream. */
#define LEG_DC DCMF_MSRP_RELAY_FROM_MESSAGES
#define LEG_TCP DCMF_MSRP_RELAY_FROM_STREAM

/* Room a piece's head may need beyond the original's: a Byte-Range
 * line added or grown ("Byte-Range: " + 3 numbers of 19 digits) and a
 * transaction id of a different length. */
#define PIECE_HEAD_SLACK 128

/* One queued output: a whole message, or stream bytes (|off| written). */
struct msrp_relay_node {
  struct msrp_relay_node *next;
  size_t len, off;
  uint8_t data[];
};

/* A split SEND waiting for its pieces' responses. */
struct msrp_relay_split {
  int used;
  int partial;  /* Failure-Report "partial": only failures are answered */
  int answered; /* the original got its response */
  int open;     /* still streaming in: more pieces to come */
  char tid[DCMF_MSRP_TID_MAX];
  size_t tid_len;
  char *resp_to;   /* To-Path of the original's response */
  char *resp_from; /* its From-Path */
  char (*piece_tid)[DCMF_MSRP_TID_LEN];
  size_t n_pieces, n_answered, cap_pieces;
  uint64_t deadline;
  size_t mem;
};

/* msrp_relay.c */
void mrelay_note_mem(struct dcmf_msrp_relay *r);
struct msrp_relay_node *mrelay_node_new(size_t cap);
void mrelay_queue_push(struct msrp_relay_queue *q, struct msrp_relay_node *n);
int mrelay_queue_copy(struct dcmf_msrp_relay *r, int leg, const uint8_t *d,
                      size_t len);
int mrelay_answer(struct dcmf_msrp_relay *r, int leg,
                  const struct dcmf_msrp_chunk *req, int code,
                  const char *comment);
int mrelay_names_us(const struct dcmf_msrp_relay *r, int leg,
                    struct dcmf_msrp_str to_path);

/* msrp_relay_split.c */
void mrelay_split_release(struct dcmf_msrp_relay *r,
                          struct msrp_relay_split *sp);
struct msrp_relay_split *mrelay_find_piece(struct dcmf_msrp_relay *r,
                                           struct dcmf_msrp_str tid);
int mrelay_answer_split(struct dcmf_msrp_relay *r, struct msrp_relay_split *sp,
                        int code, const char *comment);
int mrelay_fold_response(struct dcmf_msrp_relay *r, struct msrp_relay_split *sp,
                         const struct dcmf_msrp_chunk *c);
int mrelay_split_send(struct dcmf_msrp_relay *r,
                      const struct dcmf_msrp_chunk *orig,
                      const struct dcmf_msrp_chunk *c, uint64_t now,
                      int *verdict);
int mrelay_streaming_step(struct dcmf_msrp_relay *r, uint64_t now);
int mrelay_streaming_end(struct dcmf_msrp_relay *r,
                         const struct dcmf_msrp_chunk *c, uint64_t now);

#endif
