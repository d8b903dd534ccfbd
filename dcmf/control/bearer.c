#include "bearer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "errors.h"

#define REALM "dcmf"
/* A token beyond this is no NRF token; the header limit is 16 KiB. */
#define MAX_TOKEN 8192
#define MIN_RSA_BITS 2048

/* What a key (or the HMAC secret) can verify. */
enum key_kind { KIND_HMAC, KIND_RSA, KIND_P256, KIND_P384, KIND_P521 };

struct key {
  enum key_kind kind;
  char *pem; /* SubjectPublicKeyInfo PEM, the form libjwt reads */
  size_t pem_len;
};

struct dcmf_bearer {
  struct key keys[DCMF_AUTH_MAX_KEYS];
  size_t n_keys;
  uint8_t *hmac;
  size_t hmac_len;
  char *audience, *issuer, *scope_mrm, *scope_agw;
  int64_t leeway;
};

/* The JWS algorithms accepted, each with the one kind of key it may use.
 * "none", PS* and EdDSA are absent: libjwt 1.10 verifies neither of the
 * latter two, and an unsigned token is never acceptable. */
static const struct {
  const char *name;
  jwt_alg_t alg;
  enum key_kind kind;
} algs[] = {
    {"HS256", JWT_ALG_HS256, KIND_HMAC}, {"HS384", JWT_ALG_HS384, KIND_HMAC},
    {"HS512", JWT_ALG_HS512, KIND_HMAC}, {"RS256", JWT_ALG_RS256, KIND_RSA},
    {"RS384", JWT_ALG_RS384, KIND_RSA},  {"RS512", JWT_ALG_RS512, KIND_RSA},
    {"ES256", JWT_ALG_ES256, KIND_P256}, {"ES384", JWT_ALG_ES384, KIND_P384},
    {"ES512", JWT_ALG_ES512, KIND_P521},
};

/* ---- set-up ------------------------------------------------------------ */

/* Reads a public key from a PEM public key or certificate. */
static EVP_PKEY *pem_public_key(const uint8_t *pem, size_t len) {
  if (len > INT32_MAX) {
    return NULL;
  }
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if (bio == NULL) {
    return NULL;
  }
  EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  if (pkey == NULL && BIO_reset(bio) == 1) {
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (x != NULL) {
      pkey = X509_get_pubkey(x);
      X509_free(x);
    }
  }
  BIO_free(bio);
  ERR_clear_error();
  return pkey;
}

static int key_kind_of(EVP_PKEY *pkey, enum key_kind *kind) {
  if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
    *kind = KIND_RSA;
    return EVP_PKEY_get_bits(pkey) >= MIN_RSA_BITS ? 0 : -1;
  }
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
    return -1;
  }
  char group[64];
  size_t glen = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                     sizeof(group), &glen) != 1) {
    return -1;
  }
  if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
    *kind = KIND_P256;
  } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
    *kind = KIND_P384;
  } else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) {
    *kind = KIND_P521;
  } else {
    return -1;
  }
  return 0;
}

/* Parses one configured key into |k|: its kind and a SubjectPublicKeyInfo
 * PEM (certificates are reduced to their key, as libjwt wants). */
static int key_load(struct key *k, const struct dcmf_auth_key *in, char *err,
                    size_t errlen) {
  EVP_PKEY *pkey = pem_public_key(in->pem, in->pem_len);
  if (pkey == NULL) {
    return dcmf_invalid(err, errlen,
                        "oauth2-key %s: not a PEM public key or certificate",
                        in->name);
  }
  int rv = 0;
  if (key_kind_of(pkey, &k->kind) != 0) {
    rv = dcmf_invalid(
        err, errlen,
        "oauth2-key %s: must be RSA of %d bits or more, or EC P-256, "
        "P-384 or P-521",
        in->name, MIN_RSA_BITS);
    goto done;
  }
  BIO *out = BIO_new(BIO_s_mem());
  char *data;
  long n;
  if (out == NULL || PEM_write_bio_PUBKEY(out, pkey) != 1 ||
      (n = BIO_get_mem_data(out, &data)) <= 0 ||
      (k->pem = malloc((size_t)n + 1)) == NULL) {
    BIO_free(out);
    rv = DCMF_ERR_NOMEM;
    goto done;
  }
  memcpy(k->pem, data, (size_t)n);
  k->pem[n] = '\0';
  k->pem_len = (size_t)n;
  BIO_free(out);
done:
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  return rv;
}

/* A scope or audience goes into WWW-Authenticate inside quotes. */
static int header_safe(const char *s) {
  for (; *s; s++) {
    if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\') {
      return 0;
    }
  }
  return 1;
}

static int dup_opt(char **out, const char *s, const char *fallback) {
  const char *v = s != NULL && s[0] != '\0' ? s : fallback;
  if (v == NULL) {
    *out = NULL;
    return 0;
  }
  *out = strdup(v);
  return *out == NULL ? DCMF_ERR_NOMEM : 0;
}
int dcmf_bearer_new(struct dcmf_bearer **out,
                    const struct dcmf_auth_settings *s, char *err,
                    size_t errlen) {
  if (s->n_keys > DCMF_AUTH_MAX_KEYS) {
    return dcmf_invalid(err, errlen, "at most %d oauth2-key files",
                        DCMF_AUTH_MAX_KEYS);
  }
  if (s->audience == NULL || s->audience[0] == '\0') {
    return dcmf_invalid(
        err, errlen,
        "oauth2-audience is required with oauth2-key (the MF's NF "
        "instance id or NF type, as the NRF puts it in \"aud\")");
  }
  const char *scopes[] = {s->scope_mrm, s->scope_agw};
  for (size_t i = 0; i < 2; i++) {
    if (scopes[i] != NULL && !header_safe(scopes[i])) {
      return dcmf_invalid(
          err, errlen,
          "an OAuth2 scope is one word of printable ASCII without "
          "quotes or backslashes");
    }
  }
  struct dcmf_bearer *b = calloc(1, sizeof(*b));
  if (b == NULL) {
    return DCMF_ERR_NOMEM;
  }
  int rv = 0;
  b->leeway = s->leeway_s;
  for (size_t i = 0; i < s->n_keys && rv == 0; i++) {
    rv = key_load(&b->keys[i], &s->keys[i], err, errlen);
    b->n_keys = i + 1;
  }
  if (rv == 0 && s->hmac_secret_len > 0) {
    b->hmac = malloc(s->hmac_secret_len);
    if (b->hmac == NULL) {
      rv = DCMF_ERR_NOMEM;
    } else {
      memcpy(b->hmac, s->hmac_secret, s->hmac_secret_len);
      b->hmac_len = s->hmac_secret_len;
    }
  }
  if (rv == 0) {
    rv = dup_opt(&b->audience, s->audience, NULL);
  }
  if (rv == 0) {
    rv = dup_opt(&b->issuer, s->issuer, NULL);
  }
  if (rv == 0) {
    rv = dup_opt(&b->scope_mrm, s->scope_mrm, "nmf-mrm");
  }
  if (rv == 0) {
    rv = dup_opt(&b->scope_agw, s->scope_agw, "dcmf-agw");
  }
  if (rv != 0) {
    dcmf_bearer_del(b);
    return rv;
  }
  *out = b;
  return 0;
}

void dcmf_bearer_del(struct dcmf_bearer *b) {
  if (b == NULL) {
    return;
  }
  for (size_t i = 0; i < b->n_keys; i++) {
    free(b->keys[i].pem);
  }
  if (b->hmac != NULL) {
    OPENSSL_cleanse(b->hmac, b->hmac_len);
    free(b->hmac);
  }
  free(b->audience);
  free(b->issuer);
  free(b->scope_mrm);
  free(b->scope_agw);
  free(b);
}

/* ---- verdicts ---------------------------------------------------------- */

static void refuse(struct dcmf_auth_result *r, int status,
                   enum dcmf_auth_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void refuse(struct dcmf_auth_result *r, int status,
                   enum dcmf_auth_reason reason, const char *fmt, ...) {
  r->status = status;
  r->reason = reason;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
  va_end(ap);
  /* RFC 6750 section 3: no error code when no credentials were sent. The
   * detail holds no quote or backslash, so it fits error_description. */
  if (reason == DCMF_AUTH_NO_TOKEN) {
    snprintf(r->www_authenticate, sizeof(r->www_authenticate),
             "Bearer realm=\"" REALM "\"");
  } else if (reason == DCMF_AUTH_INVALID_TOKEN || reason == DCMF_AUTH_EXPIRED) {
    snprintf(r->www_authenticate, sizeof(r->www_authenticate),
             "Bearer realm=\"" REALM "\", error=\"invalid_token\", "
             "error_description=\"%s\"",
             r->detail);
  }
}

/* Decodes unpadded base64url (RFC 7515 section 2). Returns the length
 * written, or -1 on a character outside the alphabet or a bad length. */
static long b64url_decode(const char *in, size_t len, uint8_t *out,
                          size_t cap) {
  if (len % 4 == 1 || len / 4 * 3 + 3 > cap) {
    return -1;
  }
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    char c = in[i];
    uint32_t v;
    if (c >= 'A' && c <= 'Z') {
      v = (uint32_t)(c - 'A');
    } else if (c >= 'a' && c <= 'z') {
      v = (uint32_t)(c - 'a' + 26);
    } else if (c >= '0' && c <= '9') {
      v = (uint32_t)(c - '0' + 52);
    } else if (c == '-') {
      v = 62;
    } else if (c == '_') {
      v = 63;
    } else {
      return -1;
    }
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (uint8_t)(acc >> bits);
    }
  }
  return (long)n;
}

/* Decodes one base64url segment holding a JSON object. */
static json_t *segment_json(const char *seg, size_t len) {
  uint8_t *buf = malloc(len / 4 * 3 + 3);
  if (buf == NULL) {
    return NULL;
  }
  long n = b64url_decode(seg, len, buf, len / 4 * 3 + 3);
  json_t *doc = NULL;
  if (n > 0) {
    doc =
        json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
  }
  free(buf);
  if (doc != NULL && !json_is_object(doc)) {
    json_decref(doc);
    doc = NULL;
  }
  return doc;
}

/* A NumericDate (RFC 7519 section 2): seconds, possibly fractional. */
static int numeric_date(const json_t *v, int64_t *out) {
  if (json_is_integer(v)) {
    *out = (int64_t)json_integer_value(v);
    return 0;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (d > -9e15 && d < 9e15) {
      *out = (int64_t)d;
      return 0;
    }
  }
  return -1;
}

static int audience_ok(const struct dcmf_bearer *a, const json_t *aud) {
  if (json_is_string(aud)) {
    return strcmp(json_string_value(aud), a->audience) == 0;
  }
  size_t i;
  json_t *v;
  json_array_foreach(aud, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), a->audience) == 0) {
      return 1;
    }
  }
  return 0;
}

/* TS 29.510: "scope" lists NF service names separated by spaces. */
static int scope_has(const char *scope, const char *want) {
  size_t wlen = strlen(want);
  for (const char *p = scope; *p;) {
    while (*p == ' ') {
      p++;
    }
    size_t n = strcspn(p, " ");
    if (n == wlen && memcmp(p, want, n) == 0) {
      return 1;
    }
    p += n;
  }
  return 0;
}

/* Checks the claims of a token whose signature is good. */
static void check_claims(const struct dcmf_bearer *a, const json_t *claims,
                         enum dcmf_auth_api api, int64_t now,
                         struct dcmf_auth_result *r) {
  const json_t *iss = json_object_get(claims, "iss");
  if (a->issuer != NULL &&
      (!json_is_string(iss) || strcmp(json_string_value(iss), a->issuer))) {
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
           "the access token is not from the configured issuer");
    return;
  }
  const json_t *aud = json_object_get(claims, "aud");
  if (aud == NULL || !audience_ok(a, aud)) {
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
           "the access token is not meant for this MF (aud)");
    return;
  }
  int64_t exp, t;
  if (numeric_date(json_object_get(claims, "exp"), &exp) != 0) {
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
           "the access token has no expiry (exp)");
    return;
  }
  /* Written so that a far-future exp (up to INT64_MAX, "never expires")
   * cannot overflow: |now| is the current time and the leeway small. */
  if (now - a->leeway >= exp) {
    refuse(r, 401, DCMF_AUTH_EXPIRED, "the access token has expired");
    return;
  }
  const json_t *nbf = json_object_get(claims, "nbf");
  if (nbf != NULL && (numeric_date(nbf, &t) != 0 || now + a->leeway < t)) {
    refuse(r, 401, DCMF_AUTH_EXPIRED, "the access token is not valid yet");
    return;
  }
  const json_t *iat = json_object_get(claims, "iat");
  if (iat != NULL && (numeric_date(iat, &t) != 0 || now + a->leeway < t)) {
    refuse(r, 401, DCMF_AUTH_EXPIRED,
           "the access token was issued in the future");
    return;
  }
  const char *scope = json_string_value(json_object_get(claims, "scope"));
  int ok = scope != NULL &&
           ((api != DCMF_AUTH_API_AGW && scope_has(scope, a->scope_mrm)) ||
            (api != DCMF_AUTH_API_MRM && scope_has(scope, a->scope_agw)));
  if (!ok) {
    const char *want = api == DCMF_AUTH_API_AGW ? a->scope_agw : a->scope_mrm;
    refuse(r, 403, DCMF_AUTH_SCOPE,
           "the access token's scope does not include %s", want);
    if (api == DCMF_AUTH_API_ANY) {
      snprintf(r->www_authenticate, sizeof(r->www_authenticate),
               "Bearer realm=\"" REALM "\", error=\"insufficient_scope\", "
               "scope=\"%s %s\"",
               a->scope_mrm, a->scope_agw);
    } else {
      snprintf(r->www_authenticate, sizeof(r->www_authenticate),
               "Bearer realm=\"" REALM "\", error=\"insufficient_scope\", "
               "scope=\"%s\"",
               want);
    }
  }
}

/* Tries every key of the kind algs[|alg_i|] needs; returns 1 when one
 * verifies the signature. A token that names an algorithm has exactly one
 * key kind, so a public key is never used as an HMAC secret. */
static int verify(const struct dcmf_bearer *a, const char *token,
                  size_t alg_i) {
  int hmac = algs[alg_i].kind == KIND_HMAC;
  size_t n = hmac ? 1 : a->n_keys;
  int ok = 0;
  for (size_t i = 0; i < n && !ok; i++) {
    const unsigned char *key =
        hmac ? a->hmac : (const unsigned char *)a->keys[i].pem;
    size_t len = hmac ? a->hmac_len : a->keys[i].pem_len;
    jwt_t *jwt = NULL;
    if ((!hmac && a->keys[i].kind != algs[alg_i].kind) ||
        jwt_decode(&jwt, token, key, (int)len) != 0) {
      continue;
    }
    /* libjwt read the same header; make sure it agrees on the alg. */
    ok = jwt_get_alg(jwt) == algs[alg_i].alg;
    jwt_free(jwt);
  }
  ERR_clear_error();
  return ok;
}

static int token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

void dcmf_bearer_check(const struct dcmf_bearer *a, const char *authorization,
                       enum dcmf_auth_api api, int64_t now,
                       struct dcmf_auth_result *r) {
  memset(r, 0, sizeof(*r));
  if (authorization == NULL || authorization[0] == '\0') {
    refuse(r, 401, DCMF_AUTH_NO_TOKEN, "an OAuth2 access token is required");
    return;
  }
  /* RFC 7235: the scheme is case-insensitive. Another scheme carries no
   * bearer credentials at all. */
  if (strncasecmp(authorization, "Bearer ", 7) != 0) {
    refuse(r, 401, DCMF_AUTH_NO_TOKEN,
           "an OAuth2 access token is required (Authorization: Bearer)");
    return;
  }
  const char *token = authorization + 7;
  while (*token == ' ') {
    token++;
  }
  size_t len = 0, dots[2], n_dots = 0;
  for (; token[len] != '\0'; len++) {
    if (!token_char(token[len]) || len >= MAX_TOKEN) {
      refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
             "the access token is not a compact JWS");
      return;
    }
    if (token[len] == '.') {
      if (n_dots == 2) {
        n_dots = 3;
        break;
      }
      dots[n_dots++] = len;
    }
  }
  if (n_dots != 2 || dots[0] == 0 || dots[1] == dots[0] + 1 ||
      token[dots[1] + 1] == '\0') {
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
           "the access token is not a compact JWS");
    return;
  }
  json_t *head = segment_json(token, dots[0]);
  const char *alg = json_string_value(json_object_get(head, "alg"));
  if (head == NULL || alg == NULL) {
    json_decref(head);
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
           "the access token has no readable JOSE header");
    return;
  }
  /* RFC 7515 section 4.1.11: extensions we do not know must fail. */
  if (json_object_get(head, "crit") != NULL) {
    json_decref(head);
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
           "the access token has critical header extensions");
    return;
  }
  size_t alg_i = sizeof(algs) / sizeof(algs[0]);
  for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
    if (strcmp(alg, algs[i].name) == 0) {
      alg_i = i;
    }
  }
  int none = strcasecmp(alg, "none") == 0;
  json_decref(head);
  if (alg_i == sizeof(algs) / sizeof(algs[0])) {
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN, "%s",
           none ? "unsigned access tokens (alg none) are refused"
                : "the access token's signature algorithm is not supported");
    return;
  }
  int have_key = algs[alg_i].kind == KIND_HMAC ? a->hmac_len > 0 : 0;
  for (size_t i = 0; i < a->n_keys; i++) {
    have_key |= a->keys[i].kind == algs[alg_i].kind;
  }
  if (!have_key) {
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
           "no configured key verifies %s access tokens", algs[alg_i].name);
    return;
  }
  if (!verify(a, token, alg_i)) {
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
           "the access token's signature does not verify");
    return;
  }
  /* The signature covers these bytes; read the claims with their JSON
   * types intact (libjwt's accessors flatten them). */
  json_t *claims = segment_json(token + dots[0] + 1, dots[1] - dots[0] - 1);
  if (claims == NULL) {
    refuse(r, 401, DCMF_AUTH_INVALID_TOKEN,
           "the access token's claims are not a JSON object");
    return;
  }
  check_claims(a, claims, api, now, r);
  json_decref(claims);
}
