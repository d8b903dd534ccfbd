/*
 * test_cert.c - the DTLS identity's fingerprints in every hash RFC 8122
 * lets an answer use (dcmf/proto/cert.h), compared with what the openssl
 * command line computes for the same certificate (`openssl x509
 * -fingerprint`), for a generated certificate; and the refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "cert.h"
#include "errors.h"

/* Runs the openssl tool on the PEM file |path| with digest |dgst| and
 * returns its fingerprint text (after "Fingerprint="), newline cut. */
static void openssl_fingerprint(const char *path, const char *dgst, char *out,
                                size_t cap) {
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -%s -in %s",
           dgst, path);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  char line[512] = "";
  assert_non_null(fgets(line, sizeof(line), f));
  assert_int_equal(pclose(f), 0);
  const char *eq = strchr(line, '=');
  assert_non_null(eq);
  snprintf(out, cap, "%s", eq + 1);
  out[strcspn(out, "\r\n")] = '\0';
}

static void test_every_hash(void **state) {
  (void)state;
  struct dcmf_cert cert;
  char err[256];
  assert_int_equal(dcmf_cert_generate(&cert, err, sizeof(err)), 0);
  char path[] = "/tmp/dcmf-test-cert-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_X509(f, cert.x509), 1);
  assert_int_equal(fclose(f), 0);
  static const struct {
    enum dcmf_hash hash;
    const char *dgst, *name;
    size_t bytes;
  } cases[] = {{DCMF_HASH_SHA1, "sha1", "SHA-1", 20},
               {DCMF_HASH_SHA224, "sha224", "SHA-224", 28},
               {DCMF_HASH_SHA256, "sha256", "SHA-256", 32},
               {DCMF_HASH_SHA384, "sha384", "SHA-384", 48},
               {DCMF_HASH_SHA512, "sha512", "SHA-512", 64}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char ours[DCMF_CERT_FP_MAX], theirs[512], want[600];
    int n = dcmf_cert_fingerprint(&cert, cases[i].hash, ours, sizeof(ours));
    openssl_fingerprint(path, cases[i].dgst, theirs, sizeof(theirs));
    assert_int_equal(strlen(theirs), 3 * cases[i].bytes - 1);
    snprintf(want, sizeof(want), "%s %s", cases[i].name, theirs);
    assert_string_equal(ours, want);
    assert_int_equal(n, (int)strlen(want));
    /* The one the control API has always advertised is the SHA-256 one. */
    if (cases[i].hash == DCMF_HASH_SHA256) {
      assert_string_equal(ours, cert.fingerprint);
    }
    /* A buffer one byte short is refused, not truncated. */
    char small[DCMF_CERT_FP_MAX];
    assert_int_equal(
        dcmf_cert_fingerprint(&cert, cases[i].hash, small, (size_t)n),
        DCMF_ERR_TOO_LARGE);
  }
  char out[DCMF_CERT_FP_MAX];
  assert_int_equal(
      dcmf_cert_fingerprint(&cert, DCMF_HASH_MD5, out, sizeof(out)),
      DCMF_ERR_INVALID);
  assert_int_equal(
      dcmf_cert_fingerprint(&cert, DCMF_HASH_MD2, out, sizeof(out)),
      DCMF_ERR_INVALID);
  unlink(path);
  dcmf_cert_free(&cert);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
