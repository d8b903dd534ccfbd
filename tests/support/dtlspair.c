#include "dtlspair.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

void dtlspair_ids_init(struct dtlspair_ids *ids, size_t n,
                       enum dcmf_cert_kind kind) {
  assert_true(n <= DTLSPAIR_MAX_IDS);
  memset(ids, 0, sizeof(*ids));
  char err[256];
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(
        dcmf_cert_generate_kind(&ids->cert[i], kind, err, sizeof(err)), 0);
    assert_int_equal(dcmf_dtls_ctx_init(&ids->ctx[i], ids->cert[i].x509,
                                        ids->cert[i].pkey, 1200),
                     0);
    assert_int_equal(
        dcmf_fingerprint_parse(ids->cert[i].fingerprint, &ids->fp[i]), 0);
    ids->n = i + 1;
  }
}

void dtlspair_ids_free(struct dtlspair_ids *ids) {
  for (size_t i = 0; i < ids->n; i++) {
    dcmf_dtls_ctx_free(&ids->ctx[i]);
    dcmf_cert_free(&ids->cert[i]);
  }
  ids->n = 0;
}

void dtlspair_queue_push(struct dtlspair_queue *q, const uint8_t *data,
                         size_t len) {
  assert_true(q->nq < DTLSPAIR_QMAX);
  q->q[q->nq] = malloc(len);
  assert_non_null(q->q[q->nq]);
  memcpy(q->q[q->nq], data, len);
  q->qlen[q->nq++] = len;
}

size_t dtlspair_queue_carry(struct dtlspair_queue *q,
                            void (*deliver)(void *user, const uint8_t *data,
                                            size_t len),
                            void *user) {
  size_t n = q->nq;
  for (size_t i = 0; i < n; i++) {
    deliver(user, q->q[i], q->qlen[i]);
    free(q->q[i]);
  }
  memmove(q->q, q->q + n, (q->nq - n) * sizeof(q->q[0]));
  memmove(q->qlen, q->qlen + n, (q->nq - n) * sizeof(q->qlen[0]));
  q->nq -= n;
  return n;
}

void dtlspair_queue_free(struct dtlspair_queue *q) {
  for (size_t i = 0; i < q->nq; i++) {
    free(q->q[i]);
  }
  q->nq = 0;
}
