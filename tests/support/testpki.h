/*
 * testpki.h - certificates made in process for TLS tests: a test CA,
 * another CA nobody trusts, a server certificate for "server.test" and
 * 127.0.0.1 signed by the test CA, and a client certificate it signs.
 * ECDSA P-256, valid from a minute ago for an hour.
 */
#ifndef DCMF_TEST_TESTPKI_H
#define DCMF_TEST_TESTPKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

struct testpki {
  EVP_PKEY *ca_key, *other_key, *srv_key, *cli_key;
  X509 *ca, *other_ca, *srv, *cli;
};

/* Makes every certificate (asserts on failure). */
void testpki_init(struct testpki *k);

/* Frees them. */
void testpki_free(struct testpki *k);

/* Writes |cert| as PEM to a new temporary file whose name goes to
 * |path| (|cap| bytes); the caller removes it. */
void testpki_write_pem(X509 *cert, char *path, size_t cap);

#endif
