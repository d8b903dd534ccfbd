#include "testpki.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static long serial = 1;

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key, const char *san, int is_ca) {
  X509 *x = X509_new();
  assert_non_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
  X509_EXTENSION *ext =
      X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                          is_ca ? "critical,CA:TRUE" : "CA:FALSE");
  assert_non_null(ext);
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  if (san != NULL) {
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
  return x;
}

void testpki_init(struct testpki *k) {
  k->ca_key = EVP_EC_gen("P-256");
  k->other_key = EVP_EC_gen("P-256");
  k->srv_key = EVP_EC_gen("P-256");
  k->cli_key = EVP_EC_gen("P-256");
  assert_non_null(k->ca_key);
  assert_non_null(k->other_key);
  assert_non_null(k->srv_key);
  assert_non_null(k->cli_key);
  k->ca = make_cert(k->ca_key, "test ca", NULL, NULL, NULL, 1);
  k->other_ca = make_cert(k->other_key, "other ca", NULL, NULL, NULL, 1);
  k->srv = make_cert(k->srv_key, "server", k->ca, k->ca_key,
                     "DNS:server.test,IP:127.0.0.1", 0);
  k->cli = make_cert(k->cli_key, "phone-as", k->ca, k->ca_key, NULL, 0);
}

void testpki_free(struct testpki *k) {
  X509_free(k->ca);
  X509_free(k->other_ca);
  X509_free(k->srv);
  X509_free(k->cli);
  EVP_PKEY_free(k->ca_key);
  EVP_PKEY_free(k->other_key);
  EVP_PKEY_free(k->srv_key);
  EVP_PKEY_free(k->cli_key);
}

void testpki_write_pem(X509 *cert, char *path, size_t cap) {
  assert_true(cap > 32);
  snprintf(path, cap, "/tmp/dcmf-testpki-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_X509(f, cert), 1);
  assert_int_equal(fclose(f), 0);
}
