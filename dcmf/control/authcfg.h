/*
 * authcfg.h - the control API's access checks (auth.h) built from
 * dcmfd's configuration: the OAuth2 keys and HMAC secret read from their
 * files, the client-certificate CAs set on the control TLS context, and
 * the warning an unprotected control API on a non-loopback address
 * deserves (TS 33.501 section 13). Start-up only, control thread.
 */
#ifndef DCMF_AUTHCFG_H
#define DCMF_AUTHCFG_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "auth.h"
#include "config.h"
#include "log.h"

/*
 * Builds *|auth| from |c| (NULL when no check is configured: the API is
 * open); with control-client-ca, |control_tls| is made to ask for and
 * verify client certificates. Returns 0, or the daemon's exit status
 * with |err| set: 2 (a file or value that cannot be used), 1 (memory).
 */
int dcmf_authcfg_build(const struct dcmf_config *c, SSL_CTX *control_tls,
                       struct dcmf_auth **auth, char *err, size_t errlen);

/* Logs a warning when the control API listens beyond loopback without
 * client authentication, or with bearer tokens but without TLS (|tls|
 * 0). */
void dcmf_authcfg_warn(const struct dcmf_config *c,
                       const struct dcmf_auth *auth, int tls,
                       const struct dcmf_log *log);

#endif
