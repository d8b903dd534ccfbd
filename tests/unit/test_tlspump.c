/*
 * test_tlspump.c - a client and a server TLS pump (dcmf/net/tlspump.h)
 * paired in memory: handshake with ALPN, data both ways, certificate
 * verification (name, IP address, untrusted issuer), mutual TLS with and
 * without a client certificate, garbage, close_notify. The certificates
 * come from tests/support/testpki.c: a test CA and leaf certificates it
 * signs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "errors.h"
#include "testpki.h"
#include "tlspump.h"

/* ---- certificates ----------------------------------------------------- */

static int pki_setup(void **state) {
  struct testpki *k = calloc(1, sizeof(*k));
  assert_non_null(k);
  testpki_init(k);
  *state = k;
  return 0;
}

static int pki_teardown(void **state) {
  testpki_free(*state);
  free(*state);
  return 0;
}

static int alpn_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  static const unsigned char h2[] = "\x02h2";
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, h2, sizeof(h2) - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* A server context; |want_client| asks for (and requires) a client
 * certificate from the test CA. */
static SSL_CTX *server_ctx(struct testpki *k, int want_client) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  assert_non_null(ctx);
  assert_int_equal(SSL_CTX_use_certificate(ctx, k->srv), 1);
  assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k->srv_key), 1);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_h2, NULL);
  if (want_client) {
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), k->ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
  }
  return ctx;
}

/* A client context trusting |trust|, offering h2 and http/1.1, and the
 * client certificate when |with_cert|. */
static SSL_CTX *client_ctx(struct testpki *k, X509 *trust, int with_cert) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(ctx);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), trust);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  static const unsigned char alpn[] = "\x02h2\x08http/1.1";
  SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
  if (with_cert) {
    assert_int_equal(SSL_CTX_use_certificate(ctx, k->cli), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k->cli_key), 1);
  }
  return ctx;
}

/* ---- pairing ---------------------------------------------------------- */

/* Moves what |from| has to send into |to|; returns the byte count. */
static size_t carry(struct dcmf_tlspump *from, struct dcmf_tlspump *to) {
  uint8_t buf[4096];
  size_t total = 0, n;
  while ((n = dcmf_tlspump_drain(from, buf, sizeof(buf))) > 0) {
    assert_int_equal(dcmf_tlspump_feed(to, buf, n), 0);
    total += n;
  }
  return total;
}

/* Runs both directions until neither side has anything to send (bounded:
 * a TLS handshake takes a few flights). */
static void shuttle(struct dcmf_tlspump *c, struct dcmf_tlspump *s) {
  for (int i = 0; i < 20; i++) {
    size_t moved = carry(c, s) + carry(s, c);
    if (moved == 0) {
      return;
    }
  }
  fail_msg("the pumps kept talking");
}

/* Reads every plaintext byte |p| has into |out| (|cap| bytes). */
static size_t read_all(struct dcmf_tlspump *p, uint8_t *out, size_t cap) {
  size_t total = 0, got;
  for (int i = 0; i < 10000; i++) {
    assert_int_equal(dcmf_tlspump_read(p, out + total, cap - total, &got), 0);
    if (got == 0) {
      return total;
    }
    total += got;
  }
  fail_msg("read did not stop");
  return total;
}

struct pair {
  SSL_CTX *cctx, *sctx;
  struct dcmf_tlspump c, s;
};

static void pair_open(struct pair *pr, SSL_CTX *cctx, SSL_CTX *sctx,
                      const char *host) {
  pr->cctx = cctx;
  pr->sctx = sctx;
  assert_int_equal(dcmf_tlspump_init(&pr->c, cctx, DCMF_TLSPUMP_CLIENT, host),
                   0);
  assert_int_equal(dcmf_tlspump_init(&pr->s, sctx, DCMF_TLSPUMP_SERVER, NULL),
                   0);
  assert_true(dcmf_tlspump_pending(&pr->c) > 0); /* the ClientHello */
  assert_int_equal(dcmf_tlspump_pending(&pr->s), 0);
  shuttle(&pr->c, &pr->s);
}

static void pair_close(struct pair *pr) {
  dcmf_tlspump_free(&pr->c);
  dcmf_tlspump_free(&pr->s);
  dcmf_tlspump_free(&pr->c); /* idempotent */
  SSL_CTX_free(pr->cctx);
  SSL_CTX_free(pr->sctx);
  assert_int_equal(ERR_peek_error(), 0); /* no error left behind */
}

/* ---- cases ------------------------------------------------------------ */

static void test_handshake_alpn_and_data(void **state) {
  struct testpki *k = *state;
  struct pair pr;
  /* Data cannot go out before the handshake. */
  SSL_CTX *cctx = client_ctx(k, k->ca, 0);
  struct dcmf_tlspump early;
  assert_int_equal(
      dcmf_tlspump_init(&early, cctx, DCMF_TLSPUMP_CLIENT, "server.test"), 0);
  assert_int_equal(dcmf_tlspump_get_state(&early), DCMF_TLSPUMP_HANDSHAKE);
  assert_int_equal(dcmf_tlspump_write(&early, (const uint8_t *)"x", 1),
                   DCMF_ERR_INVALID);
  dcmf_tlspump_free(&early);

  pair_open(&pr, cctx, server_ctx(k, 0), "server.test");
  assert_int_equal(dcmf_tlspump_get_state(&pr.c), DCMF_TLSPUMP_OPEN);
  assert_int_equal(dcmf_tlspump_get_state(&pr.s), DCMF_TLSPUMP_OPEN);
  assert_string_equal(dcmf_tlspump_get_reason(&pr.c), "");
  const uint8_t *alpn;
  size_t alen;
  dcmf_tlspump_get_alpn(&pr.c, &alpn, &alen);
  assert_int_equal(alen, 2);
  assert_memory_equal(alpn, "h2", 2);
  dcmf_tlspump_get_alpn(&pr.s, &alpn, &alen);
  assert_int_equal(alen, 2);
  assert_int_equal(dcmf_tlspump_get_verify_result(&pr.c), X509_V_OK);
  assert_non_null(dcmf_tlspump_get_verified_peer(&pr.c));
  assert_null(dcmf_tlspump_get_verified_peer(&pr.s)); /* none was asked */

  /* 100 KiB one way (several records), a short answer the other. */
  static uint8_t big[100 * 1024], got[sizeof(big) + 16];
  for (size_t i = 0; i < sizeof(big); i++) {
    big[i] = (uint8_t)(i * 7 + 3);
  }
  assert_int_equal(dcmf_tlspump_write(&pr.c, big, sizeof(big)), 0);
  assert_true(dcmf_tlspump_pending(&pr.c) > sizeof(big));
  carry(&pr.c, &pr.s);
  assert_int_equal(read_all(&pr.s, got, sizeof(got)), sizeof(big));
  assert_memory_equal(got, big, sizeof(big));
  assert_int_equal(dcmf_tlspump_write(&pr.s, (const uint8_t *)"pong", 4), 0);
  shuttle(&pr.c, &pr.s);
  assert_int_equal(read_all(&pr.c, got, sizeof(got)), 4);
  assert_memory_equal(got, "pong", 4);

  /* close_notify: the server sees the end, after which reads give 0. */
  dcmf_tlspump_shutdown(&pr.c);
  carry(&pr.c, &pr.s);
  assert_int_equal(read_all(&pr.s, got, sizeof(got)), 0);
  assert_int_equal(dcmf_tlspump_get_state(&pr.s), DCMF_TLSPUMP_CLOSED);
  assert_int_equal(dcmf_tlspump_feed(&pr.s, (const uint8_t *)"x", 1), 0);
  pair_close(&pr);
}

static void test_ip_address_verified(void **state) {
  struct testpki *k = *state;
  struct pair pr;
  pair_open(&pr, client_ctx(k, k->ca, 0), server_ctx(k, 0), "127.0.0.1");
  assert_int_equal(dcmf_tlspump_get_state(&pr.c), DCMF_TLSPUMP_OPEN);
  pair_close(&pr);
  pair_open(&pr, client_ctx(k, k->ca, 0), server_ctx(k, 0), "127.0.0.2");
  assert_int_equal(dcmf_tlspump_get_state(&pr.c), DCMF_TLSPUMP_FAILED);
  assert_int_equal(dcmf_tlspump_get_failure(&pr.c), DCMF_TLSPUMP_FAIL_VERIFY);
  assert_int_equal(dcmf_tlspump_get_verify_result(&pr.c),
                   X509_V_ERR_IP_ADDRESS_MISMATCH);
  assert_string_equal(dcmf_tlspump_get_reason(&pr.c),
                      "certificate verify failed: IP address mismatch");
  pair_close(&pr);
}

static void test_wrong_name_refused(void **state) {
  struct testpki *k = *state;
  struct pair pr;
  pair_open(&pr, client_ctx(k, k->ca, 0), server_ctx(k, 0), "other.test");
  assert_int_equal(dcmf_tlspump_get_state(&pr.c), DCMF_TLSPUMP_FAILED);
  assert_int_equal(dcmf_tlspump_get_failure(&pr.c), DCMF_TLSPUMP_FAIL_VERIFY);
  assert_string_equal(dcmf_tlspump_get_reason(&pr.c),
                      "certificate verify failed: hostname mismatch");
  /* The client's alert told the server. */
  assert_int_equal(dcmf_tlspump_get_state(&pr.s), DCMF_TLSPUMP_FAILED);
  assert_int_equal(dcmf_tlspump_get_failure(&pr.s), DCMF_TLSPUMP_FAIL_PROTOCOL);
  assert_true(strlen(dcmf_tlspump_get_reason(&pr.s)) > 0);
  uint8_t b[16];
  size_t got;
  assert_int_equal(dcmf_tlspump_read(&pr.c, b, sizeof(b), &got),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(got, 0);
  assert_int_equal(dcmf_tlspump_write(&pr.c, b, 1), DCMF_ERR_INVALID);
  pair_close(&pr);
}

static void test_untrusted_issuer_refused(void **state) {
  struct testpki *k = *state;
  struct pair pr;
  pair_open(&pr, client_ctx(k, k->other_ca, 0), server_ctx(k, 0),
            "server.test");
  assert_int_equal(dcmf_tlspump_get_state(&pr.c), DCMF_TLSPUMP_FAILED);
  assert_int_equal(dcmf_tlspump_get_failure(&pr.c), DCMF_TLSPUMP_FAIL_VERIFY);
  assert_int_equal(dcmf_tlspump_get_verify_result(&pr.c),
                   X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  assert_null(dcmf_tlspump_get_verified_peer(&pr.c));
  pair_close(&pr);
}

static void test_mutual_tls(void **state) {
  struct testpki *k = *state;
  struct pair pr;
  pair_open(&pr, client_ctx(k, k->ca, 1), server_ctx(k, 1), "server.test");
  assert_int_equal(dcmf_tlspump_get_state(&pr.s), DCMF_TLSPUMP_OPEN);
  X509 *peer = dcmf_tlspump_get_verified_peer(&pr.s);
  assert_non_null(peer);
  assert_int_equal(X509_cmp(peer, k->cli), 0);
  pair_close(&pr);
}

static void test_missing_client_cert(void **state) {
  struct testpki *k = *state;
  struct pair pr;
  pair_open(&pr, client_ctx(k, k->ca, 0), server_ctx(k, 1), "server.test");
  assert_int_equal(dcmf_tlspump_get_state(&pr.s), DCMF_TLSPUMP_FAILED);
  assert_int_equal(dcmf_tlspump_get_failure(&pr.s),
                   DCMF_TLSPUMP_FAIL_NO_PEER_CERT);
  assert_string_equal(dcmf_tlspump_get_reason(&pr.s), "no peer certificate");
  /* In TLS 1.3 the client learns it from the alert after its Finished. */
  uint8_t b[16];
  size_t got;
  (void)dcmf_tlspump_read(&pr.c, b, sizeof(b), &got);
  assert_int_equal(got, 0);
  assert_int_equal(dcmf_tlspump_get_state(&pr.c), DCMF_TLSPUMP_FAILED);
  pair_close(&pr);
}

static void test_garbage_fails_cleanly(void **state) {
  struct testpki *k = *state;
  SSL_CTX *sctx = server_ctx(k, 0);
  struct dcmf_tlspump s;
  assert_int_equal(dcmf_tlspump_init(&s, sctx, DCMF_TLSPUMP_SERVER, NULL), 0);
  static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(
      dcmf_tlspump_feed(&s, (const uint8_t *)http, sizeof(http) - 1), 0);
  assert_int_equal(dcmf_tlspump_get_state(&s), DCMF_TLSPUMP_FAILED);
  assert_int_equal(dcmf_tlspump_get_failure(&s), DCMF_TLSPUMP_FAIL_PROTOCOL);
  assert_true(strlen(dcmf_tlspump_get_reason(&s)) > 0);
  const uint8_t *alpn;
  size_t alen;
  dcmf_tlspump_get_alpn(&s, &alpn, &alen);
  assert_int_equal(alen, 0);
  dcmf_tlspump_free(&s);
  SSL_CTX_free(sctx);
  assert_int_equal(ERR_peek_error(), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_alpn_and_data),
      cmocka_unit_test(test_ip_address_verified),
      cmocka_unit_test(test_wrong_name_refused),
      cmocka_unit_test(test_untrusted_issuer_refused),
      cmocka_unit_test(test_mutual_tls),
      cmocka_unit_test(test_missing_client_cert),
      cmocka_unit_test(test_garbage_fails_cleanly),
  };
  return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
