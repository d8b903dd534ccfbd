#include "cert.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "errors.h"

static void ssl_error(char *err, size_t errlen, const char *what) {
  char buf[200];
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  snprintf(err, errlen, "%s: %s", what, buf);
  ERR_clear_error();
}

static int cert_fingerprint(struct dcmf_cert *cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert->x509, EVP_sha256(), md, &len) != 1) {
    return DCMF_ERR_SYSTEM;
  }
  char *o = cert->fingerprint;
  o += sprintf(o, "SHA-256 ");
  for (unsigned int i = 0; i < len; i++) {
    o += sprintf(o, i ? ":%02X" : "%02X", md[i]);
  }
  return 0;
}

static const EVP_MD *match_md(enum dcmf_hash h) {
  switch (h) {
  case DCMF_HASH_SHA1:
    return EVP_sha1();
  case DCMF_HASH_SHA224:
    return EVP_sha224();
  case DCMF_HASH_SHA256:
    return EVP_sha256();
  case DCMF_HASH_SHA384:
    return EVP_sha384();
  case DCMF_HASH_SHA512:
    return EVP_sha512();
  case DCMF_HASH_MD5:
    return EVP_md5();
  default:
    return NULL; /* MD2 is not offered by OpenSSL 3: never matches */
  }
}

int dcmf_cert_fingerprint(const struct dcmf_cert *cert, enum dcmf_hash hash,
                          char *out, size_t cap) {
  /* RFC 8122 no longer lets us offer MD5 (or MD2). */
  const EVP_MD *md = hash == DCMF_HASH_MD5 ? NULL : match_md(hash);
  if (md == NULL) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_fingerprint_set set = {.count = 1};
  unsigned int len = 0;
  /* X509_digest hashes the DER encoding, which RFC 8122 section 5
   * fingerprints. */
  if (X509_digest(cert->x509, md, set.items[0].value, &len) != 1 ||
      len != dcmf_hash_size(hash)) {
    return DCMF_ERR_SYSTEM;
  }
  set.items[0].hash = hash;
  set.items[0].len = len;
  return dcmf_fingerprint_format(&set, out, cap);
}

int dcmf_cert_generate(struct dcmf_cert *cert, char *err, size_t errlen) {
  return dcmf_cert_generate_kind(cert, DCMF_CERT_ECDSA, err, errlen);
}

int dcmf_cert_generate_kind(struct dcmf_cert *cert, enum dcmf_cert_kind kind,
                            char *err, size_t errlen) {
  memset(cert, 0, sizeof(*cert));
  /* RSA 2048 for the RFC 7345 suites (ECDHE_RSA, DHE_RSA); ECDSA P-256
   * as WebRTC endpoints use. */
  cert->pkey = kind == DCMF_CERT_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  cert->x509 = X509_new();
  if (cert->pkey == NULL || cert->x509 == NULL) {
    ssl_error(err, errlen, "generating the DTLS key");
    goto fail;
  }
  unsigned char serial[8];
  if (RAND_bytes(serial, sizeof(serial)) != 1) {
    ssl_error(err, errlen, "random serial");
    goto fail;
  }
  serial[0] &= 0x7F; /* a positive serial number */
  BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
  X509_NAME *name = X509_get_subject_name(cert->x509);
  int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert->x509)) &&
           X509_set_version(cert->x509, 2) &&
           X509_gmtime_adj(X509_getm_notBefore(cert->x509), -3600) &&
           X509_gmtime_adj(X509_getm_notAfter(cert->x509), 365L * 86400) &&
           X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                      (const unsigned char *)"dcmf", -1, -1,
                                      0) &&
           X509_set_issuer_name(cert->x509, name) &&
           X509_set_pubkey(cert->x509, cert->pkey) &&
           X509_sign(cert->x509, cert->pkey, EVP_sha256()) > 0;
  BN_free(bn);
  if (!ok) {
    ssl_error(err, errlen, "self-signing the DTLS certificate");
    goto fail;
  }
  if (cert_fingerprint(cert) != 0) {
    ssl_error(err, errlen, "fingerprinting the DTLS certificate");
    goto fail;
  }
  return 0;
fail:
  dcmf_cert_free(cert);
  return DCMF_ERR_SYSTEM;
}

int dcmf_cert_load(struct dcmf_cert *cert, const char *cert_path,
                   const char *key_path, char *err, size_t errlen) {
  memset(cert, 0, sizeof(*cert));
  char what[1100];
  FILE *f = fopen(cert_path, "r");
  if (f == NULL) {
    snprintf(err, errlen, "certificate %s: cannot be opened", cert_path);
    return DCMF_ERR_INVALID;
  }
  cert->x509 = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  if (cert->x509 == NULL) {
    snprintf(what, sizeof(what), "certificate %s", cert_path);
    ssl_error(err, errlen, what);
    return DCMF_ERR_INVALID;
  }
  f = fopen(key_path, "r");
  if (f == NULL) {
    snprintf(err, errlen, "key %s: cannot be opened", key_path);
    dcmf_cert_free(cert);
    return DCMF_ERR_INVALID;
  }
  cert->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  if (cert->pkey == NULL) {
    snprintf(what, sizeof(what), "key %s", key_path);
    ssl_error(err, errlen, what);
    dcmf_cert_free(cert);
    return DCMF_ERR_INVALID;
  }
  if (X509_check_private_key(cert->x509, cert->pkey) != 1) {
    snprintf(err, errlen, "key %s does not belong to certificate %s",
             key_path, cert_path);
    ERR_clear_error();
    dcmf_cert_free(cert);
    return DCMF_ERR_INVALID;
  }
  if (cert_fingerprint(cert) != 0) {
    ssl_error(err, errlen, "fingerprinting the certificate");
    dcmf_cert_free(cert);
    return DCMF_ERR_INVALID;
  }
  return 0;
}

/* Appends the DER of |obj| written by |i2d| (i2d_X509, i2d_PrivateKey). */
static int append_der(struct dcmf_buf *out, int len, unsigned char *der) {
  if (len <= 0 || der == NULL) {
    ERR_clear_error();
    return DCMF_ERR_SYSTEM;
  }
  int rv = dcmf_buf_append(out, der, (size_t)len);
  OPENSSL_clear_free(der, (size_t)len);
  return rv;
}

int dcmf_cert_to_der(const struct dcmf_cert *cert, struct dcmf_buf *cert_der,
                     struct dcmf_buf *key_der) {
  size_t cert_was = cert_der->len, key_was = key_der->len;
  unsigned char *der = NULL;
  int len = i2d_X509(cert->x509, &der);
  int rv = append_der(cert_der, len, der);
  if (rv == 0) {
    der = NULL;
    len = i2d_PrivateKey(cert->pkey, &der);
    rv = append_der(key_der, len, der);
  }
  if (rv != 0) {
    cert_der->len = cert_was;
    key_der->len = key_was;
  }
  return rv;
}

int dcmf_cert_from_der(struct dcmf_cert *cert, const uint8_t *cert_der,
                       size_t cert_len, const uint8_t *key_der,
                       size_t key_len, char *err, size_t errlen) {
  memset(cert, 0, sizeof(*cert));
  const unsigned char *p = cert_der;
  cert->x509 = cert_len <= INT32_MAX ? d2i_X509(NULL, &p, (long)cert_len)
                                     : NULL;
  p = key_der;
  cert->pkey = key_len <= INT32_MAX
                   ? d2i_AutoPrivateKey(NULL, &p, (long)key_len)
                   : NULL;
  if (cert->x509 == NULL || cert->pkey == NULL) {
    ssl_error(err, errlen, "the DTLS identity from the control process");
    dcmf_cert_free(cert);
    return DCMF_ERR_INVALID;
  }
  if (X509_check_private_key(cert->x509, cert->pkey) != 1 ||
      cert_fingerprint(cert) != 0) {
    ssl_error(err, errlen, "the DTLS identity from the control process");
    dcmf_cert_free(cert);
    return DCMF_ERR_INVALID;
  }
  return 0;
}

void dcmf_cert_free(struct dcmf_cert *cert) {
  X509_free(cert->x509);
  EVP_PKEY_free(cert->pkey);
  cert->x509 = NULL;
  cert->pkey = NULL;
}

int dcmf_cert_x509_matches(const struct dcmf_fingerprint_set *set, X509 *x509) {
  for (size_t i = 0; i < set->count; i++) {
    const EVP_MD *md = match_md(set->items[i].hash);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (md != NULL && X509_digest(x509, md, digest, &len) == 1 &&
        len == set->items[i].len &&
        memcmp(digest, set->items[i].value, len) == 0) {
      return 1;
    }
  }
  return 0;
}

int dcmf_cert_is_rsa(const struct dcmf_cert *cert) {
  return cert->pkey != NULL && EVP_PKEY_is_a(cert->pkey, "RSA");
}
