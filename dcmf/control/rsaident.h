/*
 * rsaident.h - the RSA identity T.38 terminations present (RFC 7345
 * section 4.1 mandates RSA suites; the other paths present the ECDSA
 * identity). It is loaded from --dtls-rsa-cert/--dtls-rsa-key, or
 * generated (RSA 2048) on a thread of its own, since the prime search
 * takes 0.1 s to seconds on a loaded host.
 *
 * Glue of the control process; one thread (the control loop's) uses
 * it, the generating thread touches only the certificate it fills until
 * it is joined.
 */
#ifndef DCMF_RSAIDENT_H
#define DCMF_RSAIDENT_H

#include <stddef.h>

#include <uv.h>

#include "cert.h"
#include "log.h"

struct dcmf_rsaident {
  const struct dcmf_log *log;
  struct dcmf_cert cert; /* x509 NULL: none (yet) */
  uv_thread_t thread;
  int generating; /* the thread runs or was not joined yet */
  int rv;         /* the generation's result, once joined */
  char err[256];
};

/*
 * Loads the identity from |cert_path| and |key_path|, or, when
 * |cert_path| is "", starts generating it. Returns 0, or the daemon's
 * exit status with |err| set: 2 (a file that cannot be used, a key that
 * is not RSA), 1 (no thread).
 */
int dcmf_rsaident_start(struct dcmf_rsaident *id, const char *cert_path,
                        const char *key_path, const struct dcmf_log *log,
                        char *err, size_t errlen);

/*
 * The identity, waiting for the generation if it still runs; NULL when
 * there is none (the generation failed: logged once, and T.38 contexts
 * are refused rather than the daemon kept from starting). Borrowed
 * until dcmf_rsaident_free.
 */
const struct dcmf_cert *dcmf_rsaident_await(struct dcmf_rsaident *id);

/* Waits for a generation still running and frees the identity. */
void dcmf_rsaident_free(struct dcmf_rsaident *id);

#endif
