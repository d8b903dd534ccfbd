/*
 * srtp_plain.h - a plain libsrtp2 peer for the SRTP tests: a session keyed
 * by the test itself from DTLS-SRTP exporter material with RFC 5764
 * §4.2's layout (client key | server key | client salt | server salt),
 * independent of how dcmf's engines split it, so that a test shows the
 * engines interoperate with another implementation. Failures fail the
 * test (cmocka).
 */
#ifndef DCMF_TEST_SRTP_PLAIN_H
#define DCMF_TEST_SRTP_PLAIN_H

#include <stddef.h>
#include <stdint.h>

#include <srtp2/srtp.h>

#include "dcstack.h"
#include "srtp.h"

/* A libsrtp2 session of SRTP profile |profile| keyed from |material|
 * with the client's key and salt (|client_side|) or the server's, for
 * SSRCs of |type| (|ssrc|, host order, for ssrc_specific only). */
srtp_t test_plain_srtp(uint16_t profile, const uint8_t *material,
                       int client_side, srtp_ssrc_type_t type, uint32_t ssrc);

/* |stack|'s negotiated SRTP profile, its exporter material in
 * |material| (DCMF_SRTP_EXPORT_MAX bytes of room). */
uint16_t test_stack_srtp_material(struct dcmf_dcstack *stack,
                                  uint8_t *material);

/* Whether a plain receiver of SSRC |ssrc| at ROC |roc|, keyed from the
 * exporter of |stack| for what its client (|client_side|) or server
 * protects, opens the SRTP packet |wire| (|len| bytes; a copy is
 * opened). */
int test_plain_srtp_opens_at(struct dcmf_dcstack *stack, int client_side,
                             uint32_t ssrc, uint32_t roc, const uint8_t *wire,
                             size_t len);

#endif
