/*
 * errors.h - the one error enum of dcmf.
 *
 * Every function that can fail returns 0 on success or one of these
 * negative codes. Codes at or below DCMF_ERR_FATAL mean the object that
 * returned them can only be freed; codes above it are recoverable and
 * describe bad input or a missing resource.
 */
#ifndef DCMF_ERRORS_H
#define DCMF_ERRORS_H

#include <stddef.h>

enum dcmf_err {
  DCMF_OK = 0,
  /* Input was syntactically malformed. */
  DCMF_ERR_MALFORMED = -501,
  /* Input was well-formed but violates a rule (schema, range, state). */
  DCMF_ERR_INVALID = -502,
  /* The named thing does not exist. */
  DCMF_ERR_NOT_FOUND = -503,
  /* A JSON Patch "test" operation did not match. */
  DCMF_ERR_TEST_FAILED = -504,
  /* A resource pool (ports, contexts) is exhausted. */
  DCMF_ERR_EXHAUSTED = -505,
  /* Input exceeded a configured size limit. */
  DCMF_ERR_TOO_LARGE = -506,
  /* An operating-system call failed; errno-derived detail is logged. */
  DCMF_ERR_SYSTEM = -507,
  /* A message failed its authentication check (SRTP tag, ...). */
  DCMF_ERR_AUTH = -508,
  /* A message was seen before, or is older than the replay window. */
  DCMF_ERR_REPLAY = -509,
  /* What the request needs is still being prepared (the T.38 RSA
   * identity while it is generated); the same request may succeed
   * later. */
  DCMF_ERR_NOT_READY = -510,
  DCMF_ERR_FATAL = -900,
  /* Memory allocation failed. */
  DCMF_ERR_NOMEM = -901,
};

/* Returns a short English name for |err|, never NULL. */
const char *dcmf_strerror(int err);

/*
 * Writes the message |fmt| into |err| (|errlen| bytes, cut if longer)
 * and returns DCMF_ERR_INVALID, for set-up code that refuses a setting
 * with a sentence: return dcmf_invalid(err, errlen, "...", ...).
 */
int dcmf_invalid(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
