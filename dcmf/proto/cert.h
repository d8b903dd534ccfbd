/*
 * cert.h - the DTLS identities of the MF: a certificate and key loaded
 * from PEM files, or a self-signed one generated at start (ECDSA P-256 as
 * WebRTC endpoints use; RSA 2048 for T.38 over DTLS, whose RFC 7345
 * mandatory suites are ECDHE_RSA and DHE_RSA), and its SHA-256
 * fingerprint for a=fingerprint / localDcEndpoint.fingerprint.
 */
#ifndef DCMF_CERT_H
#define DCMF_CERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "fingerprint.h"

struct dcmf_cert {
  X509 *x509;     /* owned */
  EVP_PKEY *pkey; /* owned */
  char fingerprint[128]; /* canonical "SHA-256 XX:XX:..." */
};

/* The key type of a generated certificate. */
enum dcmf_cert_kind {
  DCMF_CERT_ECDSA, /* P-256: WebRTC's, every e2ae path but T.38 */
  DCMF_CERT_RSA,   /* 2048 bits: the RFC 7345 suites of T.38 over DTLS */
};

/*
 * Generates a key of |kind| and a self-signed certificate valid for 365
 * days. Returns 0, or DCMF_ERR_SYSTEM with |err| filled.
 */
int dcmf_cert_generate_kind(struct dcmf_cert *cert, enum dcmf_cert_kind kind,
                            char *err, size_t errlen);

/* Returns 1 when |cert|'s key is RSA. */
int dcmf_cert_is_rsa(const struct dcmf_cert *cert);

/*
 * Generates an ECDSA P-256 key and a self-signed certificate valid for
 * 365 days. Returns 0, or DCMF_ERR_SYSTEM with |err| filled.
 */
int dcmf_cert_generate(struct dcmf_cert *cert, char *err, size_t errlen);

/*
 * Loads a certificate and its private key from PEM files and checks that
 * they belong together. Returns 0, or DCMF_ERR_INVALID with |err| naming
 * the file and the problem.
 */
int dcmf_cert_load(struct dcmf_cert *cert, const char *cert_path,
                   const char *key_path, char *err, size_t errlen);

/*
 * Writes the certificate and its private key in DER (for a media worker
 * process, which must present the same identity as the fingerprint the
 * control API advertises). |key_der| holds the secret: the caller
 * cleanses it (OPENSSL_cleanse) before freeing. Returns 0,
 * DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM; on failure both buffers are as
 * they were.
 */
int dcmf_cert_to_der(const struct dcmf_cert *cert, struct dcmf_buf *cert_der,
                     struct dcmf_buf *key_der);

/*
 * The reverse of dcmf_cert_to_der: parses both, checks they belong
 * together and computes the fingerprint. Returns 0, or DCMF_ERR_INVALID
 * with |err| saying what is wrong.
 */
int dcmf_cert_from_der(struct dcmf_cert *cert, const uint8_t *cert_der,
                       size_t cert_len, const uint8_t *key_der, size_t key_len,
                       char *err, size_t errlen);

/*
 * Writes the RFC 8122 fingerprint of |cert| in hash |hash| into |out|
 * (capacity |cap|): "SHA-384 AB:CD:...", the digest of the certificate's
 * DER encoding, in the canonical form of dcmf_fingerprint_format (an
 * answer uses the hash the peer used, RFC 8122 section 5). Returns the
 * string length, DCMF_ERR_INVALID for MD5 and MD2 (which RFC 8122 no
 * longer allows us to offer), DCMF_ERR_TOO_LARGE when |cap| is short
 * (DCMF_CERT_FP_MAX always suffices) or DCMF_ERR_SYSTEM.
 */
#define DCMF_CERT_FP_MAX (8 + 3 * DCMF_FINGERPRINT_MAX_BYTES)
int dcmf_cert_fingerprint(const struct dcmf_cert *cert, enum dcmf_hash hash,
                          char *out, size_t cap);

/* Returns 1 if the DER digest of |x509| equals one fingerprint of |set|
 * (RFC 8122: the self-signed certificate is authenticated by the
 * signalled fingerprint alone), else 0. MD2 never matches (OpenSSL 3
 * has no MD2). Used by DTLS and by the TLS legs of the TCP relay. */
int dcmf_cert_x509_matches(const struct dcmf_fingerprint_set *set, X509 *x509);

/* Frees what |cert| owns. */
void dcmf_cert_free(struct dcmf_cert *cert);

#endif
