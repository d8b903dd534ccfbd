/*
 * rsaident.h - the RSA identity T.38 terminations present (RFC 7345
 * section 4.1 mandates RSA suites; the other paths present the ECDSA
 * identity). It is loaded from --dtls-rsa-cert/--dtls-rsa-key, or
 * generated (RSA 2048) on a thread of its own, since the prime search
 * takes 0.1 s to seconds on a loaded host. Nothing waits for it: the
 * workers start and serve ECDSA terminations at once, and the owner is
 * told on the control loop when the identity is there (|on_ready|), to
 * hand it to the workers and the AGW shim.
 *
 * Glue of the control process; one thread (the control loop's) uses
 * it. The generating thread touches only the certificate it fills and
 * its result, and the control loop reads them only after joining it.
 */
#ifndef DCMF_RSAIDENT_H
#define DCMF_RSAIDENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cert.h"
#include "log.h"

struct dcmf_rsaident_settings {
  uv_loop_t *loop;       /* the control loop */
  const char *cert_path; /* "" : generate */
  const char *key_path;
  /* Tests only (--test-delay-rsa-ms): the generation starts this many
   * ms after dcmf_rsaident_start, so a test can see the daemon serve
   * while the identity is not there. 0: at once. */
  uint32_t delay_ms;
  const struct dcmf_log *log;
  /* On the control loop, once a generated identity is there (|cert|,
   * borrowed until dcmf_rsaident_close) or its generation failed (NULL,
   * logged). Not called for a loaded identity, nor after
   * dcmf_rsaident_close. */
  void (*on_ready)(void *user, const struct dcmf_cert *cert);
  void *user;
};

struct dcmf_rsaident {
  struct dcmf_rsaident_settings settings;
  struct dcmf_cert cert; /* x509 NULL: none (yet) */
  uv_async_t done;       /* the thread has finished */
  uv_timer_t delay;
  int handles;   /* done and delay were initialised */
  int pending;   /* being generated: not there yet, not failed */
  int thread_on; /* the thread was started and is not joined */
  uv_thread_t thread;
  int rv; /* the generation's result, read once joined */
  char err[256];
};

/*
 * Loads the identity, or, when settings->cert_path is "", starts
 * generating it (after settings->delay_ms). Returns 0, or the daemon's
 * exit status with |err| set: 2 (a file that cannot be used, a key that
 * is not RSA), 1 (no thread). dcmf_rsaident_close is needed either way
 * once this was called.
 */
int dcmf_rsaident_start(struct dcmf_rsaident *id,
                        const struct dcmf_rsaident_settings *settings,
                        char *err, size_t errlen);

/* The identity, or NULL while it is generated or when there is none;
 * borrowed until dcmf_rsaident_close. */
const struct dcmf_cert *dcmf_rsaident_get(const struct dcmf_rsaident *id);

/* 1 while the identity is being generated (not there, not failed). */
int dcmf_rsaident_pending(const struct dcmf_rsaident *id);

/*
 * Stops: |on_ready| is not called any more, a generation still running
 * is waited for (it cannot be cut short; the shutdown watchdog bounds
 * the wait), and the identity is freed. The loop must run afterwards
 * for the handles to close. |id| zeroed (never started) is fine.
 */
void dcmf_rsaident_close(struct dcmf_rsaident *id);

#endif
