/*
 * tls_bench.h - what msrp_load.c (the UE and core peers) and tls_relay.c
 * (the anchor relay) of tests/bench/msrp_compare.py share: an OpenSSL
 * context with a self-signed certificate that asks for the peer's
 * certificate and accepts any (it is pinned afterwards by its SHA-256
 * fingerprint, RFC 8122, as dcmfd does), the fingerprint itself, and a
 * socket's non-blocking mode. Benchmark code, not part of dcmfd.
 */
#ifndef DCMF_TLS_BENCH_H
#define DCMF_TLS_BENCH_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* The certificate is checked by fingerprint after the handshake, not by
 * a CA: every self-signed certificate passes here. */
static int tls_bench_accept_any(int preverify_ok, X509_STORE_CTX *x) {
  (void)preverify_ok;
  (void)x;
  return 1;
}

/* A TLS 1.2+ context with the settings dcmfd's TCP relay uses
 * (dcmf/media/tcprelay.c): no session cache, no tickets, no
 * renegotiation, released buffers, a peer certificate required. */
static SSL_CTX *tls_bench_ctx(int server, const char *cert, const char *key) {
  SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (c == NULL || SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate_file(c, cert, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(c);
    return NULL;
  }
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                             (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     tls_bench_accept_any);
  /* Read ahead into a 64 KiB buffer: one read(2) takes many records, as
   * dcmfd's 64 KiB socket reads into a memory BIO do; without it
   * OpenSSL reads each record's header and body with a read(2) each. */
  SSL_CTX_set_read_ahead(c, 1);
  SSL_CTX_set_default_read_buffer_len(c, 64 * 1024);
  return c;
}

/* "AB:CD:..." (upper case, 95 characters) of a certificate's DER. */
static void tls_bench_fingerprint(X509 *x, char out[96]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  out[0] = '\0';
  if (x == NULL || X509_digest(x, EVP_sha256(), md, &n) != 1) {
    return;
  }
  for (unsigned int i = 0; i < n && i < 32; i++) {
    snprintf(out + i * 3, 4, "%02X%s", md[i], i + 1 < n ? ":" : "");
  }
}

/* Whether the session's peer certificate has the fingerprint |want|
 * ("AB:CD:.." in any case). */
static int tls_bench_peer_matches(SSL *s, const char *want) {
  X509 *x = SSL_get1_peer_certificate(s);
  char got[96];
  tls_bench_fingerprint(x, got);
  X509_free(x);
  return got[0] != '\0' && strcasecmp(got, want) == 0;
}

static int tls_bench_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

#endif
