#include "tlspump.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "errors.h"

/* Records why the pump failed, from OpenSSL's verdict, and empties the
 * error queue (it is per thread: left over, it would be blamed on the
 * next TLS call of another connection). */
static void pump_fail(struct dcmf_tlspump *p) {
  p->state = DCMF_TLSPUMP_FAILED;
  long v = SSL_get_verify_result(p->ssl);
  unsigned long e = ERR_peek_error();
  if (v != X509_V_OK) {
    p->failure = DCMF_TLSPUMP_FAIL_VERIFY;
    snprintf(p->reason, sizeof(p->reason), "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
  } else if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
             ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    p->failure = DCMF_TLSPUMP_FAIL_NO_PEER_CERT;
    snprintf(p->reason, sizeof(p->reason), "no peer certificate");
  } else {
    p->failure = DCMF_TLSPUMP_FAIL_PROTOCOL;
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(p->reason, sizeof(p->reason), "%s",
             why != NULL ? why : "protocol error");
  }
  ERR_clear_error();
}

/* Moves the handshake on; OPEN once it is done. */
static void pump_handshake(struct dcmf_tlspump *p) {
  ERR_clear_error(); /* SSL_get_error() reads the thread-wide queue */
  int r = SSL_do_handshake(p->ssl);
  if (r == 1) {
    p->state = DCMF_TLSPUMP_OPEN;
    return;
  }
  int e = SSL_get_error(p->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return;
  }
  pump_fail(p);
}

int dcmf_tlspump_init(struct dcmf_tlspump *p, SSL_CTX *ctx,
                      enum dcmf_tlspump_role role, const char *peer_host) {
  memset(p, 0, sizeof(*p));
  p->ssl = SSL_new(ctx);
  BIO *rbio = BIO_new(BIO_s_mem());
  BIO *wbio = BIO_new(BIO_s_mem());
  if (p->ssl == NULL || rbio == NULL || wbio == NULL) {
    goto fail;
  }
  SSL_set_bio(p->ssl, rbio, wbio); /* the SSL now owns both */
  p->rbio = rbio;
  p->wbio = wbio;
  rbio = wbio = NULL;
  if (role == DCMF_TLSPUMP_SERVER) {
    SSL_set_accept_state(p->ssl);
    return 0;
  }
  SSL_set_connect_state(p->ssl);
  if (peer_host != NULL) {
    unsigned char bin[16];
    int is_ip = inet_pton(AF_INET, peer_host, bin) == 1 ||
                inet_pton(AF_INET6, peer_host, bin) == 1;
    if (is_ip) {
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), peer_host) !=
          1) {
        goto fail;
      }
    } else if (SSL_set_tlsext_host_name(p->ssl, peer_host) != 1 || /* SNI */
               SSL_set1_host(p->ssl, peer_host) != 1) {
      goto fail;
    }
  }
  pump_handshake(p); /* the ClientHello */
  if (p->state == DCMF_TLSPUMP_FAILED) {
    goto fail;
  }
  return 0;
fail:
  BIO_free(rbio);
  BIO_free(wbio);
  SSL_free(p->ssl);
  ERR_clear_error();
  memset(p, 0, sizeof(*p));
  return DCMF_ERR_NOMEM;
}

void dcmf_tlspump_free(struct dcmf_tlspump *p) {
  SSL_free(p->ssl);
  memset(p, 0, sizeof(*p));
}

void dcmf_tlspump_set_app_data(struct dcmf_tlspump *p, void *data) {
  SSL_set_app_data(p->ssl, data);
}

int dcmf_tlspump_feed(struct dcmf_tlspump *p, const uint8_t *data, size_t len) {
  if (p->state == DCMF_TLSPUMP_FAILED || p->state == DCMF_TLSPUMP_CLOSED) {
    return 0;
  }
  while (len > 0) {
    int n = len > INT_MAX ? INT_MAX : (int)len;
    if (BIO_write(p->rbio, data, n) != n) {
      p->state = DCMF_TLSPUMP_FAILED;
      p->failure = DCMF_TLSPUMP_FAIL_PROTOCOL;
      snprintf(p->reason, sizeof(p->reason), "out of memory");
      ERR_clear_error();
      return DCMF_ERR_NOMEM;
    }
    data += n;
    len -= (size_t)n;
  }
  if (p->state == DCMF_TLSPUMP_HANDSHAKE) {
    pump_handshake(p);
  }
  return 0;
}

int dcmf_tlspump_read(struct dcmf_tlspump *p, uint8_t *out, size_t cap,
                      size_t *got) {
  *got = 0;
  if (p->state != DCMF_TLSPUMP_OPEN || cap == 0) {
    return p->state == DCMF_TLSPUMP_FAILED ? DCMF_ERR_MALFORMED : 0;
  }
  ERR_clear_error();
  int n = SSL_read(p->ssl, out, cap > INT_MAX ? INT_MAX : (int)cap);
  if (n > 0) {
    *got = (size_t)n;
    return 0;
  }
  int e = SSL_get_error(p->ssl, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return 0;
  }
  if (e == SSL_ERROR_ZERO_RETURN) {
    p->state = DCMF_TLSPUMP_CLOSED;
    ERR_clear_error();
    return 0;
  }
  pump_fail(p);
  return DCMF_ERR_MALFORMED;
}

int dcmf_tlspump_write(struct dcmf_tlspump *p, const uint8_t *data,
                       size_t len) {
  if (p->state != DCMF_TLSPUMP_OPEN) {
    return DCMF_ERR_INVALID;
  }
  while (len > 0) {
    int n = len > INT_MAX ? INT_MAX : (int)len;
    /* A memory BIO takes everything: a short write is memory. */
    ERR_clear_error();
    if (SSL_write(p->ssl, data, n) != n) {
      ERR_clear_error();
      return DCMF_ERR_NOMEM;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

size_t dcmf_tlspump_pending(const struct dcmf_tlspump *p) {
  return p->wbio != NULL ? BIO_ctrl_pending(p->wbio) : 0;
}

size_t dcmf_tlspump_unread(const struct dcmf_tlspump *p) {
  if (p->ssl == NULL || p->rbio == NULL) {
    return 0;
  }
  int plain = SSL_pending(p->ssl);
  return BIO_ctrl_pending(p->rbio) + (plain > 0 ? (size_t)plain : 0);
}

size_t dcmf_tlspump_drain(struct dcmf_tlspump *p, uint8_t *out, size_t cap) {
  if (p->wbio == NULL || cap == 0) {
    return 0;
  }
  int n = BIO_read(p->wbio, out, cap > INT_MAX ? INT_MAX : (int)cap);
  return n > 0 ? (size_t)n : 0;
}

void dcmf_tlspump_shutdown(struct dcmf_tlspump *p) {
  if (p->state == DCMF_TLSPUMP_OPEN || p->state == DCMF_TLSPUMP_CLOSED) {
    (void)SSL_shutdown(p->ssl);
    ERR_clear_error();
  }
}

enum dcmf_tlspump_state dcmf_tlspump_get_state(const struct dcmf_tlspump *p) {
  return p->state;
}

enum dcmf_tlspump_failure
dcmf_tlspump_get_failure(const struct dcmf_tlspump *p) {
  return p->failure;
}

const char *dcmf_tlspump_get_reason(const struct dcmf_tlspump *p) {
  return p->reason;
}

void dcmf_tlspump_get_alpn(const struct dcmf_tlspump *p, const uint8_t **proto,
                           size_t *len) {
  unsigned int n = 0;
  *proto = NULL;
  if (p->ssl != NULL && p->state != DCMF_TLSPUMP_HANDSHAKE) {
    SSL_get0_alpn_selected(p->ssl, proto, &n);
  }
  *len = n;
}

long dcmf_tlspump_get_verify_result(const struct dcmf_tlspump *p) {
  return p->ssl != NULL ? SSL_get_verify_result(p->ssl) : X509_V_OK;
}

X509 *dcmf_tlspump_get_verified_peer(const struct dcmf_tlspump *p) {
  if (p->ssl == NULL || SSL_get_verify_result(p->ssl) != X509_V_OK) {
    return NULL;
  }
  return SSL_get0_peer_certificate(p->ssl);
}
