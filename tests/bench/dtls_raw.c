/*
 * The raw cost of a DTLS 1.2 handshake with OpenSSL alone, for comparison
 * with dcmfd's set-up: a server and a client in one thread, joined by
 * memory BIOs, with dcmfd's parameters (ECDSA P-256 certificates,
 * ECDHE-ECDSA-AES128-GCM-SHA256, X25519 first, the DTLS-SRTP extension,
 * mutual certificates checked by a callback that accepts, MTU 1200, no
 * cookie exchange, no session cache). Each side's CPU time is taken with
 * the thread CPU clock around its own calls (SSL_new to SSL_free).
 *
 * Built as tests/bench_dtls_raw (meson); run:
 * build-release/tests/bench_dtls_raw [HANDSHAKES] (default 1000).
 * docs/benchmarks.md, "Set-up profile".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int accept_all(X509_STORE_CTX *st, void *arg) {
  (void)st;
  (void)arg;
  return 1;
}

static SSL_CTX *make_ctx(void) {
  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)"raw", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_set_pubkey(x, pkey);
  X509_sign(x, pkey, EVP_sha256());
  SSL_CTX *c = SSL_CTX_new(DTLS_method());
  SSL_CTX_set_min_proto_version(c, DTLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(c, DTLS1_2_VERSION);
  SSL_CTX_set_cipher_list(c, "ECDHE-ECDSA-AES128-GCM-SHA256");
  SSL_CTX_set1_groups_list(c, "X25519:P-256:P-384");
  SSL_CTX_use_certificate(c, x);
  SSL_CTX_use_PrivateKey(c, pkey);
  SSL_CTX_set_tlsext_use_srtp(c, "SRTP_AEAD_AES_128_GCM");
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_QUERY_MTU);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     NULL);
  SSL_CTX_set_cert_verify_callback(c, accept_all, NULL);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return c;
}

/* Moves what |from| wrote to |to|'s input. */
static void carry(BIO *from, BIO *to) {
  char buf[16384];
  int n;
  while ((n = BIO_read(from, buf, sizeof(buf))) > 0) {
    BIO_write(to, buf, n);
  }
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  if (n <= 0) {
    fprintf(stderr, "usage: %s [HANDSHAKES]\n", argv[0]);
    return 2;
  }
  SSL_CTX *sctx = make_ctx(), *cctx = make_ctx();
  double server = 0, client = 0;
  int done_n = 0;
  for (int i = 0; i < n; i++) {
    double t = cpu_now();
    SSL *s = SSL_new(sctx);
    BIO *s_in = BIO_new(BIO_s_mem()), *s_out = BIO_new(BIO_s_mem());
    SSL_set_bio(s, s_in, s_out);
    SSL_set_mtu(s, 1200);
    SSL_set_accept_state(s);
    server += cpu_now() - t;
    t = cpu_now();
    SSL *c = SSL_new(cctx);
    BIO *c_in = BIO_new(BIO_s_mem()), *c_out = BIO_new(BIO_s_mem());
    SSL_set_bio(c, c_in, c_out);
    SSL_set_mtu(c, 1200);
    SSL_set_connect_state(c);
    client += cpu_now() - t;
    int sd = 0, cd = 0;
    for (int round = 0; round < 20 && !(sd && cd); round++) {
      t = cpu_now();
      cd = SSL_do_handshake(c) == 1;
      client += cpu_now() - t;
      carry(c_out, s_in);
      t = cpu_now();
      sd = SSL_do_handshake(s) == 1;
      server += cpu_now() - t;
      carry(s_out, c_in);
    }
    done_n += sd && cd;
    t = cpu_now();
    SSL_free(s);
    server += cpu_now() - t;
    t = cpu_now();
    SSL_free(c);
    client += cpu_now() - t;
  }
  printf("%d of %d handshakes; server %.3f ms, client %.3f ms of CPU each "
         "(%s)\n",
         done_n, n, server * 1000 / n, client * 1000 / n,
         OpenSSL_version(OPENSSL_VERSION));
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
  return done_n == n ? 0 : 1;
}
