/*
 * srtp_backend.h - which SRTP backend (srtp.h) a test's engines use:
 * DCMF_TEST_SRTP_BACKEND names one ("openssl" or "libsrtp2"; unset: the
 * default), so that tests/meson.build runs the SRTP tests once per
 * backend. A name it does not know aborts the test rather than quietly
 * testing the default.
 */
#ifndef DCMF_TEST_SRTP_BACKEND_H
#define DCMF_TEST_SRTP_BACKEND_H

#include <stdio.h>
#include <stdlib.h>

#include "srtp.h"

static inline enum dcmf_srtp_backend test_srtp_backend(void) {
  const char *name = getenv("DCMF_TEST_SRTP_BACKEND");
  enum dcmf_srtp_backend b = DCMF_SRTP_BACKEND_DEFAULT;
  if (name != NULL && dcmf_srtp_backend_by_name(name, &b) != 0) {
    fprintf(stderr, "DCMF_TEST_SRTP_BACKEND=%s: not a backend\n", name);
    abort();
  }
  return b;
}

/* dcmf_srtp_new on the test's backend. */
static inline int test_srtp_new(struct dcmf_srtp **out,
                                enum dcmf_srtp_profile profile,
                                const uint8_t *material, size_t len,
                                enum dcmf_srtp_role role) {
  return dcmf_srtp_new_with(out, test_srtp_backend(), profile, material, len,
                            role);
}

#endif
