/*
 * Unit tests for the control API's access checks (auth.c, bearer.c): client
 * certificate subjects and OAuth2 bearer tokens. The tokens are signed
 * here with OpenSSL directly, with keys made for the run, so the test does
 * not lean on the library the module uses to verify them. The clock is a
 * number passed in. The last test runs the router (api.c) in memory to
 * show refused requests never reach it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "api.h"
#include "auth.h"
#include "errors.h"
#include "fake_res.h"

#define NOW 1800000000LL
#define AUD "7d5f8a1c-9e3b-4c2d-8f6a-0b1c2d3e4f50"

static EVP_PKEY *rsa_key, *ec_key, *other_rsa, *small_rsa;
static char *rsa_pem, *ec_pem, *small_pem;
static const char hmac_secret[] = "a shared secret of thirty-two b!";

static char *public_pem(EVP_PKEY *k) {
  BIO *b = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *s = malloc((size_t)n + 1);
  memcpy(s, data, (size_t)n);
  s[n] = '\0';
  BIO_free(b);
  return s;
}

static int setup_keys(void **state) {
  (void)state;
  rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  other_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  small_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
  ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (!rsa_key || !other_rsa || !small_rsa || !ec_key) {
    return -1;
  }
  rsa_pem = public_pem(rsa_key);
  ec_pem = public_pem(ec_key);
  small_pem = public_pem(small_rsa);
  return 0;
}

static int teardown_keys(void **state) {
  (void)state;
  EVP_PKEY_free(rsa_key);
  EVP_PKEY_free(other_rsa);
  EVP_PKEY_free(small_rsa);
  EVP_PKEY_free(ec_key);
  free(rsa_pem);
  free(ec_pem);
  free(small_pem);
  return 0;
}

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

/* Signs "header.claims" with |key| (RS256/ES256 by key type, |md|), or
 * with HMAC-SHA256 over |secret|, or not at all ("sig" appended). */
static char *sign(const char *header, const char *claims, EVP_PKEY *key,
                  const void *secret, size_t secret_len, const char *sig) {
  char *tok = malloc(8192);
  char h[1024], c[2048];
  b64url((const uint8_t *)header, strlen(header), h);
  b64url((const uint8_t *)claims, strlen(claims), c);
  int n = snprintf(tok, 8192, "%s.%s", h, c);
  uint8_t raw[512];
  size_t raw_len = 0;
  if (key != NULL) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[512];
    size_t der_len = sizeof(der);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(
        EVP_DigestSign(md, der, &der_len, (uint8_t *)tok, (size_t)n), 1);
    EVP_MD_CTX_free(md);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
      /* JWS wants r || s, each 32 bytes, not DER. */
      const uint8_t *p = der;
      ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
      BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
      BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
      ECDSA_SIG_free(es);
      raw_len = 64;
    } else {
      memcpy(raw, der, der_len);
      raw_len = der_len;
    }
  } else if (secret != NULL) {
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret, (int)secret_len, (uint8_t *)tok, (size_t)n, raw,
         &len);
    raw_len = len;
  }
  char s[1024];
  if (sig != NULL) {
    snprintf(s, sizeof(s), "%s", sig);
  } else {
    b64url(raw, raw_len, s);
  }
  snprintf(tok + n, 8192 - (size_t)n, ".%s", s);
  return tok;
}

static char *claims_text(const char *aud, const char *scope, long long exp) {
  char *c = malloc(1024);
  snprintf(c, 1024,
           "{\"iss\":\"nrf-1\",\"sub\":\"ims-as-1\",\"aud\":%s,"
           "\"scope\":\"%s\",\"exp\":%lld,\"iat\":%lld}",
           aud, scope, exp, NOW - 10);
  return c;
}

static struct dcmf_auth *make(int client_cert, const char *const *subjects,
                              size_t n_subjects, int with_hmac) {
  struct dcmf_auth_key keys[] = {
      {"rsa.pem", (const uint8_t *)rsa_pem, strlen(rsa_pem)},
      {"ec.pem", (const uint8_t *)ec_pem, strlen(ec_pem)},
  };
  struct dcmf_auth_settings s = {
      .client_cert = client_cert,
      .subjects = subjects,
      .n_subjects = n_subjects,
      .keys = keys,
      .n_keys = 2,
      .hmac_secret = with_hmac ? (const uint8_t *)hmac_secret : NULL,
      .hmac_secret_len = with_hmac ? strlen(hmac_secret) : 0,
      .audience = AUD,
      .issuer = "nrf-1",
      .scope_agw = "dcmf-agw",
      .leeway_s = 30,
  };
  struct dcmf_auth *a = NULL;
  char err[256];
  assert_int_equal(dcmf_auth_new(&a, &s, err, sizeof(err)), 0);
  return a;
}

/* Checks |token| as "Bearer <token>" and returns the verdict. */
static struct dcmf_auth_result check(struct dcmf_auth *a, const char *token,
                                     enum dcmf_auth_api api, long long now) {
  char header[8200];
  snprintf(header, sizeof(header), "Bearer %s", token);
  struct dcmf_auth_result r;
  dcmf_auth_check(a, header, api, NULL, NULL, now, &r);
  /* Whatever the verdict, no part of the token comes back. */
  const char *sig = strrchr(token, '.');
  if (sig != NULL && strlen(sig) > 8) {
    assert_null(strstr(r.detail, sig + 1));
    assert_null(strstr(r.www_authenticate, sig + 1));
  }
  return r;
}

#define RS256 "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES256 "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static void test_good_tokens(void **state) {
  (void)state;
  struct dcmf_auth *a = make(0, NULL, 0, 0);
  char *c = claims_text("\"" AUD "\"", "nmf-mrm", NOW + 600);
  char *rs = sign(RS256, c, rsa_key, NULL, 0, NULL);
  char *es = sign(ES256, c, ec_key, NULL, 0, NULL);
  assert_int_equal(check(a, rs, DCMF_AUTH_API_MRM, NOW).status, 0);
  assert_int_equal(check(a, es, DCMF_AUTH_API_MRM, NOW).status, 0);
  /* Any path outside the two APIs takes either scope. */
  assert_int_equal(check(a, rs, DCMF_AUTH_API_ANY, NOW).status, 0);
  /* aud may be an array; the scope one name among several; the scheme
   * name is case-insensitive. */
  char *c2 = claims_text("[\"MF\",\"" AUD "\"]", "nmf-foo dcmf-agw nmf-mrm",
                         NOW + 600);
  char *rs2 = sign(RS256, c2, rsa_key, NULL, 0, NULL);
  assert_int_equal(check(a, rs2, DCMF_AUTH_API_AGW, NOW).status, 0);
  char header[8200];
  snprintf(header, sizeof(header), "bearer %s", rs2);
  struct dcmf_auth_result r;
  dcmf_auth_check(a, header, DCMF_AUTH_API_MRM, NULL, NULL, NOW, &r);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.reason, DCMF_AUTH_OK);
  free(c);
  free(c2);
  free(rs);
  free(es);
  free(rs2);
  dcmf_auth_del(a);
}

static void expect_401(struct dcmf_auth_result r, enum dcmf_auth_reason why,
                       const char *detail) {
  assert_int_equal(r.status, 401);
  assert_int_equal(r.reason, why);
  assert_non_null(strstr(r.detail, detail));
  assert_non_null(strstr(r.www_authenticate, "Bearer realm=\"dcmf\""));
  if (why == DCMF_AUTH_NO_TOKEN) {
    /* RFC 6750 section 3.1: no error code without credentials. */
    assert_null(strstr(r.www_authenticate, "error="));
  } else {
    assert_non_null(strstr(r.www_authenticate, "error=\"invalid_token\""));
  }
}

static void test_missing_or_not_bearer(void **state) {
  (void)state;
  struct dcmf_auth *a = make(0, NULL, 0, 0);
  struct dcmf_auth_result r;
  dcmf_auth_check(a, NULL, DCMF_AUTH_API_MRM, NULL, NULL, NOW, &r);
  expect_401(r, DCMF_AUTH_NO_TOKEN, "required");
  dcmf_auth_check(a, "", DCMF_AUTH_API_AGW, NULL, NULL, NOW, &r);
  expect_401(r, DCMF_AUTH_NO_TOKEN, "required");
  dcmf_auth_check(a, "Basic aW1zOmFz", DCMF_AUTH_API_MRM, NULL, NULL, NOW, &r);
  expect_401(r, DCMF_AUTH_NO_TOKEN, "Bearer");
  dcmf_auth_check(a, "Bearer", DCMF_AUTH_API_MRM, NULL, NULL, NOW, &r);
  expect_401(r, DCMF_AUTH_NO_TOKEN, "Bearer");
  dcmf_auth_del(a);
}

static void test_malformed(void **state) {
  (void)state;
  struct dcmf_auth *a = make(0, NULL, 0, 0);
  const char *bad[] = {
      "Bearer ",                      /* empty */
      "Bearer abc",                   /* no dots */
      "Bearer a.b",                   /* two segments */
      "Bearer a.b.c.d",               /* JWE-like, five parts cut short */
      "Bearer .eyJ9.c2ln",            /* empty header */
      "Bearer eyJ9..c2ln",            /* empty payload */
      "Bearer eyJ9.eyJ9.",            /* empty signature */
      "Bearer a b.c.d",               /* space inside */
      "Bearer e30=.e30.c2ln",         /* padding is not base64url */
      "Bearer !!!.e30.c2ln",          /* outside the alphabet */
      "Bearer W10.e30.c2ln",          /* header "[]" is not an object */
      "Bearer e30.e30.c2ln",          /* header "{}" has no alg */
      "Bearer eyJhbGciOjF9.e30.c2ln", /* alg is a number */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct dcmf_auth_result r;
    dcmf_auth_check(a, bad[i], DCMF_AUTH_API_MRM, NULL, NULL, NOW, &r);
    assert_int_equal(r.status, 401);
    assert_int_equal(r.reason, DCMF_AUTH_INVALID_TOKEN);
    assert_non_null(strstr(r.www_authenticate, "invalid_token"));
  }
  /* Far too long. */
  char *huge = malloc(20000);
  memcpy(huge, "Bearer ", 7);
  memset(huge + 7, 'A', 19990);
  huge[19997] = '\0';
  struct dcmf_auth_result r;
  dcmf_auth_check(a, huge, DCMF_AUTH_API_MRM, NULL, NULL, NOW, &r);
  assert_int_equal(r.reason, DCMF_AUTH_INVALID_TOKEN);
  free(huge);
  dcmf_auth_del(a);
}

static void test_bad_signature(void **state) {
  (void)state;
  struct dcmf_auth *a = make(0, NULL, 0, 0);
  char *c = claims_text("\"" AUD "\"", "nmf-mrm", NOW + 600);
  /* Signed by a key nobody configured. */
  char *t = sign(RS256, c, other_rsa, NULL, 0, NULL);
  expect_401(check(a, t, DCMF_AUTH_API_MRM, NOW), DCMF_AUTH_INVALID_TOKEN,
             "signature");
  free(t);
  /* A good token whose claims were changed after signing. */
  t = sign(RS256, c, rsa_key, NULL, 0, NULL);
  char *c2 = claims_text("\"" AUD "\"", "nmf-mrm", NOW + 999999);
  char *t2 = sign(RS256, c2, rsa_key, NULL, 0, NULL);
  char forged[8192];
  snprintf(forged, sizeof(forged), "%.*s%s", (int)(strrchr(t2, '.') - t2), t2,
           strrchr(t, '.'));
  expect_401(check(a, forged, DCMF_AUTH_API_MRM, NOW), DCMF_AUTH_INVALID_TOKEN,
             "signature");
  /* An RS256 header on an ES256 signature. */
  char *e = sign(ES256, c, ec_key, NULL, 0, NULL);
  snprintf(forged, sizeof(forged), "%.*s%s", (int)(strrchr(t, '.') - t), t,
           strrchr(e, '.'));
  expect_401(check(a, forged, DCMF_AUTH_API_MRM, NOW), DCMF_AUTH_INVALID_TOKEN,
             "signature");
  free(c);
  free(c2);
  free(t);
  free(t2);
  free(e);
  dcmf_auth_del(a);
}

static void test_alg_none_and_others(void **state) {
  (void)state;
  struct dcmf_auth *a = make(0, NULL, 0, 0);
  char *c = claims_text("\"" AUD "\"", "nmf-mrm", NOW + 600);
  char *t = sign("{\"alg\":\"none\"}", c, NULL, NULL, 0, "c2lnbmF0dXJl");
  expect_401(check(a, t, DCMF_AUTH_API_MRM, NOW), DCMF_AUTH_INVALID_TOKEN,
             "alg none");
  free(t);
  t = sign("{\"alg\":\"NONE\"}", c, NULL, NULL, 0, "c2lnbmF0dXJl");
  expect_401(check(a, t, DCMF_AUTH_API_MRM, NOW), DCMF_AUTH_INVALID_TOKEN,
             "alg none");
  free(t);
  t = sign("{\"alg\":\"PS256\"}", c, NULL, NULL, 0, "c2lnbmF0dXJl");
  expect_401(check(a, t, DCMF_AUTH_API_MRM, NOW), DCMF_AUTH_INVALID_TOKEN,
             "not supported");
  free(t);
  /* No ES384 key is configured. */
  t = sign("{\"alg\":\"ES384\"}", c, NULL, NULL, 0, "c2lnbmF0dXJl");
  expect_401(check(a, t, DCMF_AUTH_API_MRM, NOW), DCMF_AUTH_INVALID_TOKEN,
             "no configured key verifies ES384");
  free(t);
  /* Unknown critical extensions fail (RFC 7515 section 4.1.11). */
  t = sign("{\"alg\":\"RS256\",\"crit\":[\"x\"],\"x\":1}", c, rsa_key, NULL, 0,
           NULL);
  expect_401(check(a, t, DCMF_AUTH_API_MRM, NOW), DCMF_AUTH_INVALID_TOKEN,
             "critical");
  free(t);
  free(c);
  dcmf_auth_del(a);
}

static void test_hmac(void **state) {
  (void)state;
  char *c = claims_text("\"" AUD "\"", "nmf-mrm", NOW + 600);
  /* The classic confusion: HS256 keyed with the RSA public key PEM. */
  char *confused = sign(HS256, c, NULL, rsa_pem, strlen(rsa_pem), NULL);
  char *t = sign(HS256, c, NULL, hmac_secret, strlen(hmac_secret), NULL);
  struct dcmf_auth *a = make(0, NULL, 0, 0);
  expect_401(check(a, confused, DCMF_AUTH_API_MRM, NOW),
             DCMF_AUTH_INVALID_TOKEN, "no configured key verifies HS256");
  expect_401(check(a, t, DCMF_AUTH_API_MRM, NOW), DCMF_AUTH_INVALID_TOKEN,
             "no configured key verifies HS256");
  dcmf_auth_del(a);
  /* With a shared secret configured, HS256 works, and still only with it. */
  a = make(0, NULL, 0, 1);
  assert_int_equal(check(a, t, DCMF_AUTH_API_MRM, NOW).status, 0);
  expect_401(check(a, confused, DCMF_AUTH_API_MRM, NOW),
             DCMF_AUTH_INVALID_TOKEN, "signature");
  dcmf_auth_del(a);
  free(c);
  free(confused);
  free(t);
}

static void test_claims(void **state) {
  (void)state;
  struct dcmf_auth *a = make(0, NULL, 0, 0);
  struct {
    const char *claims;
    enum dcmf_auth_reason why;
    const char *detail;
  } cases[] = {
      {"{\"iss\":\"nrf-1\",\"aud\":\"other-mf\",\"scope\":\"nmf-mrm\","
       "\"exp\":1800000600}",
       DCMF_AUTH_INVALID_TOKEN, "aud"},
      {"{\"iss\":\"nrf-1\",\"aud\":[\"other-mf\",\"MF\"],\"scope\":\"nmf-mrm\","
       "\"exp\":1800000600}",
       DCMF_AUTH_INVALID_TOKEN, "aud"},
      {"{\"iss\":\"nrf-1\",\"scope\":\"nmf-mrm\",\"exp\":1800000600}",
       DCMF_AUTH_INVALID_TOKEN, "aud"},
      {"{\"iss\":\"nrf-2\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\","
       "\"exp\":1800000600}",
       DCMF_AUTH_INVALID_TOKEN, "issuer"},
      {"{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\"}",
       DCMF_AUTH_INVALID_TOKEN, "no expiry"},
      {"{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\","
       "\"exp\":\"1800000600\"}",
       DCMF_AUTH_INVALID_TOKEN, "no expiry"},
      /* Expired 31 s ago: beyond the 30 s leeway. */
      {"{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\","
       "\"exp\":1799999969}",
       DCMF_AUTH_EXPIRED, "expired"},
      {"{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\","
       "\"exp\":1800000600,\"nbf\":1800000031}",
       DCMF_AUTH_EXPIRED, "not valid yet"},
      {"{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\","
       "\"exp\":1800000600,\"iat\":1800000100}",
       DCMF_AUTH_EXPIRED, "future"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *t = sign(RS256, cases[i].claims, rsa_key, NULL, 0, NULL);
    expect_401(check(a, t, DCMF_AUTH_API_MRM, NOW), cases[i].why,
               cases[i].detail);
    free(t);
  }
  /* Within the leeway on both sides, a fractional NumericDate, and an
   * issuer's "never expires" at the top of the range (no overflow: the
   * UBSan build would stop here). */
  const char *fine[] = {
      "{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\","
      "\"exp\":1799999971}",
      "{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\","
      "\"exp\":1800000600.5,\"nbf\":1800000029}",
      "{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\","
      "\"exp\":9223372036854775807}",
  };
  for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
    char *t = sign(RS256, fine[i], rsa_key, NULL, 0, NULL);
    assert_int_equal(check(a, t, DCMF_AUTH_API_MRM, NOW).status, 0);
    free(t);
  }
  /* The same token expires as the clock moves on. */
  char *c = claims_text("\"" AUD "\"", "nmf-mrm", NOW + 60);
  char *t = sign(ES256, c, ec_key, NULL, 0, NULL);
  assert_int_equal(check(a, t, DCMF_AUTH_API_MRM, NOW + 89).status, 0);
  expect_401(check(a, t, DCMF_AUTH_API_MRM, NOW + 90), DCMF_AUTH_EXPIRED,
             "expired");
  free(c);
  free(t);
  dcmf_auth_del(a);
}

static void expect_403_scope(struct dcmf_auth_result r, const char *scope) {
  assert_int_equal(r.status, 403);
  assert_int_equal(r.reason, DCMF_AUTH_SCOPE);
  assert_non_null(strstr(r.www_authenticate, "error=\"insufficient_scope\""));
  char want[64];
  snprintf(want, sizeof(want), "scope=\"%s\"", scope);
  assert_non_null(strstr(r.www_authenticate, want));
}

static void test_scope(void **state) {
  (void)state;
  struct dcmf_auth *a = make(0, NULL, 0, 0);
  char *none =
      sign(RS256, "{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"exp\":1800000600}",
           rsa_key, NULL, 0, NULL);
  char *c_mrm = claims_text("\"" AUD "\"", "nmf-mrm", NOW + 600);
  char *c_agw = claims_text("\"" AUD "\"", "dcmf-agw", NOW + 600);
  char *c_near = claims_text("\"" AUD "\"", "nmf-mrmx nmf", NOW + 600);
  char *mrm = sign(RS256, c_mrm, rsa_key, NULL, 0, NULL);
  char *agw = sign(RS256, c_agw, rsa_key, NULL, 0, NULL);
  char *near = sign(RS256, c_near, rsa_key, NULL, 0, NULL);
  expect_403_scope(check(a, none, DCMF_AUTH_API_MRM, NOW), "nmf-mrm");
  expect_403_scope(check(a, near, DCMF_AUTH_API_MRM, NOW), "nmf-mrm");
  expect_403_scope(check(a, agw, DCMF_AUTH_API_MRM, NOW), "nmf-mrm");
  expect_403_scope(check(a, mrm, DCMF_AUTH_API_AGW, NOW), "dcmf-agw");
  expect_403_scope(check(a, none, DCMF_AUTH_API_ANY, NOW), "nmf-mrm dcmf-agw");
  assert_int_equal(check(a, agw, DCMF_AUTH_API_AGW, NOW).status, 0);
  assert_int_equal(check(a, agw, DCMF_AUTH_API_ANY, NOW).status, 0);
  free(none);
  free(c_mrm);
  free(c_agw);
  free(c_near);
  free(mrm);
  free(agw);
  free(near);
  dcmf_auth_del(a);
}

static void test_client_subjects(void **state) {
  (void)state;
  const char *subjects[] = {"ims-as.example.org",
                            "CN=ims-alg,O=Operator\\, Inc.,C=FR"};
  struct dcmf_auth *a = make(1, subjects, 2, 0);
  char *c = claims_text("\"" AUD "\"", "nmf-mrm", NOW + 600);
  char *t = sign(RS256, c, rsa_key, NULL, 0, NULL);
  char header[8200];
  snprintf(header, sizeof(header), "Bearer %s", t);
  struct dcmf_auth_result r;
  /* No certificate: refused before the token is looked at. */
  dcmf_auth_check(a, header, DCMF_AUTH_API_MRM, NULL, NULL, NOW, &r);
  assert_int_equal(r.status, 403);
  assert_int_equal(r.reason, DCMF_AUTH_NO_CLIENT_CERT);
  assert_string_equal(r.www_authenticate, "");
  /* A CN entry matches the CN only, not the whole subject. */
  dcmf_auth_check(a, header, DCMF_AUTH_API_MRM,
                  "CN=ims-as.example.org,O=Operator", "ims-as.example.org", NOW,
                  &r);
  assert_int_equal(r.status, 0);
  dcmf_auth_check(a, header, DCMF_AUTH_API_MRM, "CN=intruder,O=Operator",
                  "intruder", NOW, &r);
  assert_int_equal(r.status, 403);
  assert_int_equal(r.reason, DCMF_AUTH_SUBJECT);
  /* A DN entry must match the whole RFC 2253 subject. */
  dcmf_auth_check(a, header, DCMF_AUTH_API_AGW,
                  "CN=ims-alg,O=Operator\\, Inc.,C=FR", "ims-alg", NOW, &r);
  assert_int_equal(r.status, 403); /* the token lacks the AGW scope */
  assert_int_equal(r.reason, DCMF_AUTH_SCOPE);
  dcmf_auth_check(a, header, DCMF_AUTH_API_MRM,
                  "CN=ims-alg,O=Operator\\, Inc.,C=FR", "ims-alg", NOW, &r);
  assert_int_equal(r.status, 0);
  dcmf_auth_check(a, header, DCMF_AUTH_API_MRM, "CN=ims-alg,O=Other,C=FR",
                  "ims-alg", NOW, &r);
  assert_int_equal(r.reason, DCMF_AUTH_SUBJECT);
  /* An allowed subject still needs a good token when OAuth2 is on. */
  dcmf_auth_check(a, NULL, DCMF_AUTH_API_MRM, "CN=ims-as.example.org",
                  "ims-as.example.org", NOW, &r);
  assert_int_equal(r.reason, DCMF_AUTH_NO_TOKEN);
  dcmf_auth_del(a);
  free(c);
  free(t);

  /* mTLS alone: any certificate the CA vouches for; no token asked. */
  struct dcmf_auth_settings s = {.client_cert = 1};
  char err[256];
  assert_int_equal(dcmf_auth_new(&a, &s, err, sizeof(err)), 0);
  assert_int_equal(dcmf_auth_oauth2(a), 0);
  dcmf_auth_check(a, NULL, DCMF_AUTH_API_MRM, "CN=x", "x", NOW, &r);
  assert_int_equal(r.status, 0);
  dcmf_auth_check(a, NULL, DCMF_AUTH_API_MRM, NULL, NULL, NOW, &r);
  assert_int_equal(r.reason, DCMF_AUTH_NO_CLIENT_CERT);
  dcmf_auth_del(a);
}

static void expect_setup_error(const struct dcmf_auth_settings *s,
                               const char *needle) {
  struct dcmf_auth *a = NULL;
  char err[256] = "";
  assert_int_equal(dcmf_auth_new(&a, s, err, sizeof(err)), DCMF_ERR_INVALID);
  assert_null(a);
  if (strstr(err, needle) == NULL) {
    fail_msg("error \"%s\" lacks \"%s\"", err, needle);
  }
}

static void test_settings_errors(void **state) {
  (void)state;
  struct dcmf_auth_key good = {"rsa.pem", (const uint8_t *)rsa_pem,
                               strlen(rsa_pem)};
  struct dcmf_auth_settings s = {.keys = &good, .n_keys = 1};
  expect_setup_error(&s, "oauth2-audience is required");
  s.audience = AUD;
  struct dcmf_auth_key junk = {"junk.pem", (const uint8_t *)"hello", 5};
  s.keys = &junk;
  expect_setup_error(&s, "junk.pem: not a PEM public key");
  struct dcmf_auth_key small = {"small.pem", (const uint8_t *)small_pem,
                                strlen(small_pem)};
  s.keys = &small;
  expect_setup_error(&s, "small.pem: must be RSA of 2048 bits");
  s.keys = &good;
  s.scope_agw = "two words";
  expect_setup_error(&s, "scope");
  s.scope_agw = NULL;
  const char *subjects[] = {"x"};
  s.subjects = subjects;
  s.n_subjects = 1;
  expect_setup_error(&s, "control-client-ca");
  assert_string_equal(dcmf_auth_reason_name(DCMF_AUTH_SUBJECT),
                      "subject_not_allowed");
  assert_string_equal(dcmf_auth_reason_name(DCMF_AUTH_N_REASONS), "unknown");
}

/* ---- the router applies the checks (api.c) ---- */

static int mounted_calls;

static void mount(void *user, const struct dcmf_api_request *req,
                  struct dcmf_api_response *resp) {
  (void)user;
  (void)req;
  mounted_calls++;
  resp->status = 200;
}

static int route(struct dcmf_api *api, const char *method, const char *path,
                 const char *authorization, const char *subject,
                 struct dcmf_api_response *resp) {
  dcmf_api_response_free(resp);
  memset(resp, 0, sizeof(*resp));
  struct dcmf_api_request req = {.method = method,
                                 .path = path,
                                 .authorization = authorization,
                                 .client_subject = subject,
                                 .client_cn = subject ? "ims-as" : NULL,
                                 .now = NOW};
  dcmf_api_handle(api, &req, resp);
  return resp->status;
}

static void test_api_router(void **state) {
  (void)state;
  const char *subjects[] = {"ims-as"};
  struct dcmf_auth *a = make(1, subjects, 1, 0);
  struct fake_res fr;
  struct dcmf_resources res = fake_res_init(&fr, 41000, 4);
  struct dcmf_registry_settings rs = {.advertise_addr = "192.0.2.1",
                                      .local_fingerprint = "SHA-256 AA:BB",
                                      .sctp_port = 5000,
                                      .max_contexts = 10};
  struct dcmf_registry *reg;
  assert_int_equal(dcmf_registry_new(&reg, &rs, &res), 0);
  struct dcmf_metrics metrics;
  memset(&metrics, 0, sizeof(metrics));
  struct dcmf_api api = {.registry = reg,
                         .metrics = &metrics,
                         .mount_prefix = "/agw/v1/",
                         .mount = mount,
                         .auth = a};
  struct dcmf_api_response resp = {0};
  char *c = claims_text("\"" AUD "\"", "nmf-mrm", NOW + 600);
  char *t = sign(ES256, c, ec_key, NULL, 0, NULL);
  char bearer[8200];
  snprintf(bearer, sizeof(bearer), "Bearer %s", t);
  const char *as = "CN=ims-as";

  /* Refused: a problem+json body, the challenge, a counter; the router
   * and the mounted API never see the request. */
  assert_int_equal(route(&api, "POST", "/nmf-mrm/v1/contexts", NULL, as, &resp),
                   401);
  assert_string_equal(resp.content_type, "application/problem+json");
  assert_non_null(strstr((const char *)resp.body.data, "\"status\":401"));
  assert_non_null(
      strstr((const char *)resp.body.data, "\"title\":\"Unauthorized\""));
  assert_string_equal(resp.www_authenticate, "Bearer realm=\"dcmf\"");
  assert_int_equal(metrics.control_auth_refused[DCMF_AUTH_NO_TOKEN], 1);
  assert_int_equal(route(&api, "GET", "/agw/v1/contexts", bearer, as, &resp),
                   403);
  assert_non_null(strstr(resp.www_authenticate, "scope=\"dcmf-agw\""));
  assert_int_equal(route(&api, "GET", "/agw/v1/contexts", bearer, NULL, &resp),
                   403);
  assert_string_equal(resp.www_authenticate, "");
  assert_int_equal(mounted_calls, 0);
  assert_int_equal(route(&api, "GET", "/nope", NULL, as, &resp), 401);
  assert_int_equal(metrics.control_auth_refused[DCMF_AUTH_SCOPE], 1);
  assert_int_equal(metrics.control_auth_refused[DCMF_AUTH_NO_CLIENT_CERT], 1);

  /* Allowed. */
  assert_int_equal(
      route(&api, "GET", "/nmf-mrm/v1/contexts", bearer, as, &resp), 200);
  assert_string_equal(resp.www_authenticate, "");
  assert_int_equal(route(&api, "GET", "/nope", bearer, as, &resp), 404);
  /* /healthz and /metrics stay open unless auth_metrics is set. */
  assert_int_equal(route(&api, "GET", "/healthz", NULL, NULL, &resp), 200);
  assert_int_equal(route(&api, "GET", "/metrics?x=1", NULL, NULL, &resp), 200);
  assert_non_null(strstr((const char *)resp.body.data,
                         "dcmf_control_auth_refused_total{reason=\""
                         "insufficient_scope\"} 1\n"));
  api.auth_metrics = 1;
  assert_int_equal(route(&api, "GET", "/healthz", NULL, as, &resp), 401);
  assert_int_equal(route(&api, "GET", "/metrics", bearer, as, &resp), 200);
  free(c);
  free(t);
  c = claims_text("\"" AUD "\"", "dcmf-agw", NOW + 600);
  t = sign(ES256, c, ec_key, NULL, 0, NULL);
  snprintf(bearer, sizeof(bearer), "Bearer %s", t);
  assert_int_equal(route(&api, "GET", "/agw/v1/contexts", bearer, as, &resp),
                   200);
  assert_int_equal(mounted_calls, 1);
  dcmf_api_response_free(&resp);
  free(c);
  free(t);
  dcmf_registry_del(reg);
  dcmf_auth_del(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_tokens),
      cmocka_unit_test(test_missing_or_not_bearer),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_bad_signature),
      cmocka_unit_test(test_alg_none_and_others),
      cmocka_unit_test(test_hmac),
      cmocka_unit_test(test_claims),
      cmocka_unit_test(test_scope),
      cmocka_unit_test(test_client_subjects),
      cmocka_unit_test(test_settings_errors),
      cmocka_unit_test(test_api_router),
  };
  return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
