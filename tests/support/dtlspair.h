/*
 * dtlspair.h - what the in-memory DTLS pair tests of the association
 * kinds (tests/unit/test_assoc_srtp.c, test_assoc_dtlsdata.c) share: the
 * identities of the two engines (a generated certificate, its DTLS
 * context and its fingerprint each) and the queue of datagrams a side
 * sent until the test carries them to the other. Failures are cmocka
 * assertions. Each test keeps its own sides, callbacks and checks.
 */
#ifndef DCMF_TEST_DTLSPAIR_H
#define DCMF_TEST_DTLSPAIR_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "dtls.h"
#include "fingerprint.h"

#define DTLSPAIR_MAX_IDS 3
#define DTLSPAIR_QMAX 256

/* The identities of a pair: [0] the client's, [1] the server's, then
 * spares (a renewal's new certificate). */
struct dtlspair_ids {
  struct dcmf_cert cert[DTLSPAIR_MAX_IDS];
  struct dcmf_dtls_ctx ctx[DTLSPAIR_MAX_IDS];
  struct dcmf_fingerprint_set fp[DTLSPAIR_MAX_IDS];
  size_t n;
};

/* Generates |n| (at most DTLSPAIR_MAX_IDS) identities of |kind|, each
 * with a DTLS context (MTU 1200) and its parsed fingerprint. */
void dtlspair_ids_init(struct dtlspair_ids *ids, size_t n,
                       enum dcmf_cert_kind kind);
void dtlspair_ids_free(struct dtlspair_ids *ids);

/* The datagrams one side sent, oldest first (copies, owned here). */
struct dtlspair_queue {
  uint8_t *q[DTLSPAIR_QMAX];
  size_t qlen[DTLSPAIR_QMAX];
  size_t nq;
};

/* Appends a copy of |data| (fails the test past DTLSPAIR_QMAX). */
void dtlspair_queue_push(struct dtlspair_queue *q, const uint8_t *data,
                         size_t len);

/* Hands each datagram queued at the time of the call to |deliver| and
 * drops it; what |deliver| makes either side queue stays for the next
 * call. Returns how many were carried. */
size_t dtlspair_queue_carry(struct dtlspair_queue *q,
                            void (*deliver)(void *user, const uint8_t *data,
                                            size_t len),
                            void *user);

/* Frees what is still queued. */
void dtlspair_queue_free(struct dtlspair_queue *q);

#endif
