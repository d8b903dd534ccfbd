/*
 * msrp_wire.h - the MSRP bytes of msrp_load.c (tests/bench), written from
 * RFC 4975: a SEND chunk built once per run and stamped per message (its
 * transaction id has a fixed width, so stamping changes no length), the
 * receiver's check of a chunk with the 200 it answers (§7.2), and the
 * sender's check of that 200. Benchmark code, not part of dcmfd; the
 * script checks a sample of these bytes with tests/integration/msrp_peer.py.
 */
#ifndef DCMF_MSRP_WIRE_H
#define DCMF_MSRP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define MSRP_BODY_MAX (1024 * 1024)
#define MSRP_TID_LEN 12 /* 'u' or 'd', 2 hex digits of the pair, 9 of the seq */

struct msrp_msg {
  unsigned char *data; /* the whole chunk */
  size_t len;
  size_t tid_at[4]; /* start line, Message-ID, body stamp, end-line */
  size_t body_at, body_len;
  int up, pair;
};

/* Builds the SEND of pair |pair| in direction |up| (1: UE -> core) with
 * a |size|-byte body; allocates m->data once (|m| zeroed before the
 * first build), reused by later builds. */
void msrp_msg_build(struct msrp_msg *m, int up, int pair, size_t size);

/* Frees what msrp_msg_build allocated. */
void msrp_msg_free(struct msrp_msg *m);

/* Puts the transaction id of message |seq| in every place it goes. */
void msrp_msg_stamp(struct msrp_msg *m, uint64_t seq);

/* The receiver: one SEND chunk at |buf| (|n| bytes there). Returns 0
 * when more bytes are needed, -1 (|why| says) when it is not the chunk
 * |seq| of |expect|'s pair and direction with |expect|'s body, else the
 * length of the 200 written to |resp| (512 bytes room), with |used| the
 * chunk's length and |body| its body's. */
int msrp_take_send(const unsigned char *buf, size_t n, const struct msrp_msg *expect,
                   int up, uint64_t seq, unsigned char *resp, size_t *used, size_t *body,
                   char *why, size_t why_len);

/* The sender: the response at |buf|. Returns 0 (more bytes needed), -1
 * (not "200" for message |seq|), or 1 with |used| its length. */
int msrp_take_200(const unsigned char *buf, size_t n, int up, int pair, uint64_t seq,
                  size_t *used, char *why, size_t why_len);

#endif
