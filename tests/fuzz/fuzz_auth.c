/*
 * Fuzz target for the control API's access checks (auth.c, bearer.c). The first
 * byte picks the mode:
 *  - even: the rest is the Authorization header value as a client sends
 *    it, against RSA and EC public keys and an HMAC secret (the header
 *    and base64url parsers, alg selection, libjwt's verifiers on garbage
 *    signatures);
 *  - odd: the rest is "JOSE header JSON" NUL "claims JSON", signed here
 *    with HS256 under the configured secret, so the claim checks (types,
 *    NumericDates, aud arrays, scope lists) see input a forger could not
 *    otherwise get past the signature.
 * The verdict must be one of the documented ones, and a refusal must
 * carry a detail.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rsa_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6JznEXbDhelpAmpOznmu\n"
    "BZgVr24cOpYhvV/xSeQafRsrhK2A3nW8Gm+UhwOgDyMxtxs4zhT/bnlOoUL6DTeM\n"
    "UzzZ1N/p0KEHSUW5E9VWqaYpfpvRj1rdlJchABfrB6RmnUmnwNV0aMivM1EH6Zdi\n"
    "lvholzpbp2x/09FnTBW+MJZJk+BtkC/jYXQV9C+CAFYyutvwl9ajHnmy5ojJNIfi\n"
    "JuZLKzJ8ZbC1Yik1Z/XJX0ftXeNAQkcGiMQjKAOCo262bWP9/DHGwwkebRWEidBl\n"
    "FV8jn30Xf1LOvraZW/Uq2nvClfhycjIM4DNoLVCRDKstx81cB2LqkdIXGMilrrBs\n"
    "MwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char ec_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEP6Fzkz6cCe45/+3V3wGb9SXulJ2B\n"
    "tSBdMFP/mPZSt5+W9UCBTs74gf41hUnCQ0mnwNd7HqqcUVVeK9Eh0GS90g==\n"
    "-----END PUBLIC KEY-----\n";

static const char secret[] = "fuzzing secret, thirty-two bytes";

static void b64url(const uint8_t *in, size_t len, char *out) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  uint32_t acc = 0;
  unsigned bits = 0;
  for (size_t i = 0; i < len; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out[o++] = abc[(acc >> bits) & 63];
    }
  }
  if (bits > 0) {
    out[o++] = abc[(acc << (6 - bits)) & 63];
  }
  out[o] = '\0';
}

/* "Bearer " + b64(head) + "." + b64(claims) + "." + HS256 signature. */
static char *signed_header(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t hlen = nul != NULL ? (size_t)(nul - data) : size;
  size_t clen = nul != NULL ? size - hlen - 1 : 0;
  char *out = malloc(16 + (size + 2) * 4 / 3 + 64);
  if (out == NULL) {
    return NULL;
  }
  memcpy(out, "Bearer ", 7);
  char *p = out + 7;
  b64url(data, hlen, p);
  p += strlen(p);
  *p++ = '.';
  b64url(nul != NULL ? nul + 1 : data, clen, p);
  p += strlen(p);
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int mlen = 0;
  HMAC(EVP_sha256(), secret, (int)strlen(secret), (uint8_t *)out + 7,
       (size_t)(p - out - 7), mac, &mlen);
  *p++ = '.';
  b64url(mac, mlen, p);
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct dcmf_auth *auth;
  if (auth == NULL) {
    struct dcmf_auth_key keys[] = {
        {"rsa", (const uint8_t *)rsa_pub, sizeof(rsa_pub) - 1},
        {"ec", (const uint8_t *)ec_pub, sizeof(ec_pub) - 1},
    };
    struct dcmf_auth_settings s = {
        .keys = keys,
        .n_keys = 2,
        .hmac_secret = (const uint8_t *)secret,
        .hmac_secret_len = strlen(secret),
        .audience = "mf-1",
        .issuer = "nrf-1",
        .leeway_s = 60,
    };
    char err[256];
    if (dcmf_auth_new(&auth, &s, err, sizeof(err)) != 0) {
      fprintf(stderr, "fuzz_auth: %s\n", err);
      abort();
    }
  }
  if (size == 0) {
    return 0;
  }
  char *header;
  if (data[0] & 1) {
    header = signed_header(data + 1, size - 1);
  } else {
    header = malloc(size);
    if (header != NULL) {
      memcpy(header, data + 1, size - 1);
      header[size - 1] = '\0'; /* a header value ends at its first NUL */
    }
  }
  if (header == NULL) {
    return 0;
  }
  static const enum dcmf_auth_api apis[] = {
      DCMF_AUTH_API_MRM, DCMF_AUTH_API_AGW, DCMF_AUTH_API_ANY};
  struct dcmf_auth_result r;
  dcmf_auth_check(auth, header, apis[data[0] / 2 % 3], NULL, NULL, 1800000000,
                  &r);
  int known = (r.status == 0 && r.reason == DCMF_AUTH_OK) ||
              (r.status == 401 && (r.reason == DCMF_AUTH_NO_TOKEN ||
                                   r.reason == DCMF_AUTH_INVALID_TOKEN ||
                                   r.reason == DCMF_AUTH_EXPIRED)) ||
              (r.status == 403 && r.reason == DCMF_AUTH_SCOPE);
  if (!known || (r.status != 0 && r.detail[0] == '\0') ||
      strchr(r.detail, '"') != NULL) {
    abort();
  }
  free(header);
  return 0;
}
