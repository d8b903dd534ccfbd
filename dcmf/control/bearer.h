/*
 * bearer.h - the OAuth2 half of the control API's access checks (auth.h):
 * RFC 6750 bearer tokens that are JWS-signed JWTs (RFC 7515, RFC 7519)
 * as an NRF issues them (TS 29.510 AccessTokenClaims).
 *
 * No I/O: keys arrive as PEM bytes and the time is passed in. libjwt
 * checks the signatures. Before libjwt sees a token, this module picks
 * the one kind of key the token's "alg" may use. So "none" never reaches
 * a verifier, a public key is never used as an HMAC secret (the RS/HS
 * confusion), and curve mismatches are refused. The claims are read by
 * jansson with their JSON types kept. Tokens are never copied into
 * details, headers or logs.
 */
#ifndef DCMF_BEARER_H
#define DCMF_BEARER_H

#include <stdint.h>

#include "auth.h"

struct dcmf_bearer;

/*
 * Builds the checker from the OAuth2 members of |s| (copied). The PEM
 * bytes are parsed and kept in the form libjwt reads. Returns 0,
 * DCMF_ERR_INVALID with one sentence in |err| (a key that is not a
 * usable public key, no audience, a scope unfit for a WWW-Authenticate
 * header), or DCMF_ERR_NOMEM.
 */
int dcmf_bearer_new(struct dcmf_bearer **b, const struct dcmf_auth_settings *s,
                    char *err, size_t errlen);

void dcmf_bearer_del(struct dcmf_bearer *b);

/*
 * Checks the Authorization header value |authorization| (may be NULL)
 * for |api| at |now| (seconds since the epoch) and fills |r|: status 0,
 * or 401 (no token, invalid or expired token) or 403 (scope). Each
 * refusal comes with its RFC 6750 challenge. Never fails.
 */
void dcmf_bearer_check(const struct dcmf_bearer *b, const char *authorization,
                       enum dcmf_auth_api api, int64_t now,
                       struct dcmf_auth_result *r);

#endif
