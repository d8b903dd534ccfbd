/*
 * auth.h - who may drive the control API: the TS 33.501 section 13 checks
 * an NF service producer makes on each request.
 *
 *  - Mutual TLS: the HTTP/2 glue has already verified the client
 *    certificate chain against the configured CA during the handshake; this
 *    module checks the verified subject against an optional allow-list.
 *  - OAuth2 (RFC 6749 client credentials, tokens issued by an NRF as JWS
 *    per RFC 7515/7519, TS 29.510 AccessTokenClaims): the bearer token of
 *    the Authorization header (RFC 6750) must be signed by one of the
 *    configured keys, name the configured audience, be within its validity
 *    period and carry the scope of the API it is used on.
 *
 * No I/O: keys arrive as PEM bytes, the time is passed in. This module
 * holds the policy and the certificate subjects; bearer.h checks the
 * tokens. Tokens are never copied into details, headers or logs.
 */
#ifndef DCMF_AUTH_H
#define DCMF_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define DCMF_AUTH_MAX_KEYS 8
#define DCMF_AUTH_MAX_SUBJECTS 16

/* The API a request is for; each has its own required scope. */
enum dcmf_auth_api {
  DCMF_AUTH_API_MRM, /* /nmf-mrm/v1/...: scope "nmf-mrm" (TS 29.176) */
  DCMF_AUTH_API_AGW, /* /agw/v1/...: the configured AGW scope */
  DCMF_AUTH_API_ANY, /* other paths: either scope */
};

/* Why a request was refused (also the metrics label). */
enum dcmf_auth_reason {
  DCMF_AUTH_OK = 0,
  DCMF_AUTH_NO_TOKEN,       /* 401: no Authorization, or not Bearer */
  DCMF_AUTH_INVALID_TOKEN,  /* 401: malformed, bad signature, alg, aud, iss */
  DCMF_AUTH_EXPIRED,        /* 401: exp passed, or nbf/iat in the future */
  DCMF_AUTH_SCOPE,          /* 403: the token lacks the API's scope */
  DCMF_AUTH_NO_CLIENT_CERT, /* 403: mTLS configured, no verified cert;
                             * also a handshake without a certificate */
  DCMF_AUTH_SUBJECT,        /* 403: certificate subject not allowed */
  /* Counted by the TLS glue only: a certificate the CA did not vouch for
   * (bad chain, expired, ...) ended the handshake. */
  DCMF_AUTH_UNTRUSTED_CLIENT_CERT,
  DCMF_AUTH_N_REASONS,
};

/* One accepted signing key: a PEM "PUBLIC KEY" or "CERTIFICATE" (RSA of
 * at least 2048 bits, or EC P-256/P-384/P-521). Borrowed for the call to
 * dcmf_auth_new only; |name| (e.g. the file name) is used in errors. */
struct dcmf_auth_key {
  const char *name;
  const uint8_t *pem;
  size_t pem_len;
};

struct dcmf_auth_settings {
  /* Mutual TLS. Non-zero: every request must come with a verified client
   * certificate. */
  int client_cert;
  /* Allowed subjects (empty: any certificate the CA vouches for). An
   * entry containing '=' is compared with the whole subject as RFC 2253
   * prints it ("CN=ims-as,O=Operator,C=FR"); any other entry with the
   * certificate's common name. Borrowed for dcmf_auth_new (copied). */
  const char *const *subjects;
  size_t n_subjects;

  /* OAuth2: enabled when |n_keys| > 0 or |hmac_secret_len| > 0. */
  const struct dcmf_auth_key *keys;
  size_t n_keys;
  /* An HS256/384/512 shared secret; HMAC tokens are refused without one. */
  const uint8_t *hmac_secret;
  size_t hmac_secret_len;
  const char *audience;  /* required in "aud" (string or array) */
  const char *issuer;    /* required "iss"; NULL or "": not checked */
  const char *scope_mrm; /* NULL: "nmf-mrm" */
  const char *scope_agw; /* NULL: "dcmf-agw" */
  uint32_t leeway_s;     /* clock skew allowed on exp, nbf and iat */
};

struct dcmf_auth;

/* The verdict on one request. */
struct dcmf_auth_result {
  int status; /* 0: allowed; 401 or 403 */
  enum dcmf_auth_reason reason;
  /* One English sentence for the problem+json detail and the log. It may
   * name an algorithm or scope but never holds any part of the token. */
  char detail[160];
  /* The WWW-Authenticate value (RFC 6750 section 3), "" when none. */
  char www_authenticate[224];
};

/*
 * Builds the checker from |s| (copied; the PEM bytes are parsed and kept
 * in the form libjwt reads). Returns 0, DCMF_ERR_INVALID with one
 * sentence in |err| (a key that is not a usable public key, OAuth2
 * without an audience, a subject list without client certificates), or
 * DCMF_ERR_NOMEM.
 */
int dcmf_auth_new(struct dcmf_auth **auth, const struct dcmf_auth_settings *s,
                  char *err, size_t errlen);

void dcmf_auth_del(struct dcmf_auth *auth);

/* Returns non-zero when bearer tokens are checked. */
int dcmf_auth_oauth2(const struct dcmf_auth *auth);

/*
 * Decides on one request for |api|. |authorization| is the Authorization
 * header value or NULL. |subject| and |cn| describe the client certificate
 * the transport verified (both NULL without one). |now| is the time in
 * seconds since the epoch. Fills |out|; never fails.
 */
void dcmf_auth_check(const struct dcmf_auth *auth, const char *authorization,
                     enum dcmf_auth_api api, const char *subject,
                     const char *cn, int64_t now, struct dcmf_auth_result *out);

/* Returns the metrics label of |r| ("invalid_token"), never NULL. */
const char *dcmf_auth_reason_name(enum dcmf_auth_reason r);

#endif
