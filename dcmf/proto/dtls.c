#include "dtls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "cert.h"
#include "errors.h"

/* The client's first flight may come in several datagrams (Chromium's
 * ClientHello is ~1.4 KB in two); hold that much while we wait for the
 * fingerprint. */
#define HOLD_MAX_DATAGRAMS 8
#define HOLD_MAX_BYTES 16384

struct held {
  uint8_t *data;
  size_t len;
};

struct dcmf_dtls {
  struct dcmf_dtls_ctx *ctx;
  SSL *ssl;
  BIO *rbio; /* owned by ssl */
  int is_server;
  int start_requested;
  int have_fingerprints;
  int fingerprint_mismatch;
  enum dcmf_dtls_state state;
  struct dcmf_fingerprint_set remote;
  struct held held[HOLD_MAX_DATAGRAMS];
  size_t n_held, held_bytes;
  struct dcmf_dtls_callbacks cbs;
  void *user;
  /* Coalescing (dcmf_dtls_coalesce): records wait here, in order, for
   * dcmf_dtls_flush; NULL: each record leaves at once. ctx->mtu bytes. */
  uint8_t *gather;
  size_t gathered;
};

/* ---- output BIO: one BIO_write is one record ---------------------------- */

void dcmf_dtls_flush(struct dcmf_dtls *d) {
  if (d->gathered > 0) {
    size_t n = d->gathered;
    d->gathered = 0; /* first: nothing is sent twice, whatever follows */
    d->cbs.send_datagram(d->user, d->gather, n);
  }
}

/* OpenSSL writes one record per call (several per handshake flight).
 * send_datagram must not call back into this engine: the gathered
 * bytes are handed over in place. A
 * record joins the datagram being gathered if both fit in the MTU; one
 * that does not fit sends the gathered datagram first, so records keep
 * their order. A record larger than the MTU on its own (an SCTP packet
 * of a full 1200 bytes plus DTLS overhead) leaves alone, as it would
 * without coalescing. */
static int out_write(BIO *b, const char *data, int len) {
  struct dcmf_dtls *d = BIO_get_data(b);
  if (d == NULL || len <= 0) {
    return len;
  }
  size_t n = (size_t)len;
  if (d->gather == NULL) {
    d->cbs.send_datagram(d->user, (const uint8_t *)data, n);
    return len;
  }
  if (d->gathered + n > d->ctx->mtu) {
    dcmf_dtls_flush(d);
  }
  if (n > d->ctx->mtu) {
    d->cbs.send_datagram(d->user, (const uint8_t *)data, n);
    return len;
  }
  if (d->gathered == 0 && d->cbs.output_pending != NULL) {
    d->cbs.output_pending(d->user);
  }
  memcpy(d->gather + d->gathered, data, n);
  d->gathered += n;
  return len;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)ptr;
  (void)num;
  struct dcmf_dtls *d = BIO_get_data(b);
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1;
  case BIO_CTRL_DGRAM_QUERY_MTU:
  case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
    return d != NULL ? (long)d->ctx->mtu : 1200;
  case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
    return 1;
  default:
    return 0;
  }
}

static int out_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

/* ---- fingerprint check --------------------------------------------------- */

/* The whole certificate check, in place of OpenSSL's X509_verify_cert.
 * The certificate is self-signed by design and there is no trust anchor:
 * what authenticates the peer is the signalled fingerprint of the leaf
 * (RFC 8122), and libssl itself still checks that the peer holds the
 * leaf's key (a client's CertificateVerify, a server's signature over
 * its ServerKeyExchange). Chain building, purpose and extension
 * checks and store look-ups would only produce errors to ignore, at
 * about 1 % of a set-up's CPU (docs/benchmarks.md, "Set-up profile"). */
static int cert_verify(X509_STORE_CTX *store, void *arg) {
  (void)arg;
  SSL *ssl = X509_STORE_CTX_get_ex_data(store,
                                        SSL_get_ex_data_X509_STORE_CTX_idx());
  struct dcmf_dtls *d = ssl ? SSL_get_app_data(ssl) : NULL;
  X509 *cert = X509_STORE_CTX_get0_cert(store);
  if (d == NULL || cert == NULL || !dcmf_cert_x509_matches(&d->remote, cert)) {
    if (d != NULL) {
      d->fingerprint_mismatch = 1;
    }
    /* libssl turns this into a bad_certificate alert. */
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  X509_STORE_CTX_set_error(store, X509_V_OK);
  return 1;
}

/* ---- context ------------------------------------------------------------ */

/* The suites a context offers and accepts, by the key of its
 * certificate. ECDSA: WebRTC's (AES-GCM first). RSA: the two RFC 7345
 * §4.1 makes mandatory for T.38 over DTLS, ECDHE_RSA first as it asks
 * (PFS preferred), then the AES-256 and SHA-1 variants stacks commonly
 * offer. */
#define ECDSA_CIPHERS                                                          \
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"               \
  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"
#define RSA_CIPHERS                                                            \
  "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256:"                     \
  "ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384:"                     \
  "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA"

int dcmf_dtls_ctx_init(struct dcmf_dtls_ctx *ctx, X509 *cert, EVP_PKEY *pkey,
                       unsigned mtu) {
  memset(ctx, 0, sizeof(*ctx));
  ctx->mtu = mtu;
  ctx->ssl_ctx = SSL_CTX_new(DTLS_method());
  ctx->out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "dcmf-dtls-out");
  if (ctx->ssl_ctx == NULL || ctx->out_method == NULL) {
    goto fail;
  }
  BIO_meth_set_write(ctx->out_method, out_write);
  BIO_meth_set_ctrl(ctx->out_method, out_ctrl);
  BIO_meth_set_create(ctx->out_method, out_create);
  SSL_CTX *s = ctx->ssl_ctx;
  int rsa = EVP_PKEY_is_a(pkey, "RSA");
  /* DHE_RSA needs DH parameters: OpenSSL's built-in groups (RFC 7919
   * sized to the key) rather than parameters of our own. */
  if (rsa && SSL_CTX_set_dh_auto(s, 1) != 1) {
    goto fail;
  }
  if (SSL_CTX_set_min_proto_version(s, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(s, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(s, rsa ? RSA_CIPHERS : ECDSA_CIPHERS) != 1 ||
      SSL_CTX_set1_groups_list(s, "X25519:P-256:P-384") != 1 ||
      SSL_CTX_use_certificate(s, cert) != 1 ||
      SSL_CTX_use_PrivateKey(s, pkey) != 1) {
    goto fail;
  }
  /* Offer DTLS-SRTP (RFC 5764) on data-channel associations too: some
   * stacks (werift) fail a connection whose handshake selected no SRTP
   * profile even when it carries only data channels. This list is the
   * data channels' and stays as the phones have seen it; an association
   * that carries SRTP sets its own (dcmf_dtls_set_srtp_profiles). The
   * RSA context (T.38, RFC 7345: "no DTLS extension") offers none. The
   * return value is 0 on success (an OpenSSL oddity). */
  if (!rsa && SSL_CTX_set_tlsext_use_srtp(s, "SRTP_AEAD_AES_128_GCM:"
                                     "SRTP_AEAD_AES_256_GCM:"
                                     "SRTP_AES128_CM_SHA1_80") != 0) {
    goto fail;
  }
  /* No session resumption: every association is a fresh handshake bound
   * to the fingerprints of this call. */
  SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
  /* Idle associations give their record buffers back (thousands of
   * sessions mostly sit idle). */
  SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(s, SSL_OP_NO_TICKET | SSL_OP_NO_QUERY_MTU |
                             SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     NULL);
  SSL_CTX_set_cert_verify_callback(s, cert_verify, NULL);
  return 0;
fail:
  ERR_clear_error();
  dcmf_dtls_ctx_free(ctx);
  return DCMF_ERR_SYSTEM;
}

void dcmf_dtls_ctx_free(struct dcmf_dtls_ctx *ctx) {
  SSL_CTX_free(ctx->ssl_ctx);
  BIO_meth_free(ctx->out_method);
  ctx->ssl_ctx = NULL;
  ctx->out_method = NULL;
}

/* ---- association -------------------------------------------------------- */

int dcmf_dtls_new(struct dcmf_dtls **out, struct dcmf_dtls_ctx *ctx,
                  int is_server, const struct dcmf_dtls_callbacks *cbs,
                  void *user) {
  struct dcmf_dtls *d = calloc(1, sizeof(*d));
  if (d == NULL) {
    return DCMF_ERR_NOMEM;
  }
  d->ctx = ctx;
  d->is_server = is_server;
  d->cbs = *cbs;
  d->user = user;
  d->state = DCMF_DTLS_WAITING;
  d->ssl = SSL_new(ctx->ssl_ctx);
  d->rbio = BIO_new(BIO_s_mem());
  BIO *wbio = BIO_new(ctx->out_method);
  if (d->ssl == NULL || d->rbio == NULL || wbio == NULL) {
    BIO_free(d->rbio);
    BIO_free(wbio);
    SSL_free(d->ssl);
    free(d);
    ERR_clear_error();
    return DCMF_ERR_SYSTEM;
  }
  BIO_set_mem_eof_return(d->rbio, -1); /* empty means "retry", not EOF */
  BIO_set_data(wbio, d);
  SSL_set_bio(d->ssl, d->rbio, wbio);
  SSL_set_app_data(d->ssl, d);
  SSL_set_mtu(d->ssl, (long)ctx->mtu);
  if (is_server) {
    SSL_set_accept_state(d->ssl);
  } else {
    SSL_set_connect_state(d->ssl);
  }
  *out = d;
  return 0;
}

static void held_clear(struct dcmf_dtls *d) {
  for (size_t i = 0; i < d->n_held; i++) {
    free(d->held[i].data);
  }
  d->n_held = 0;
  d->held_bytes = 0;
}

void dcmf_dtls_del(struct dcmf_dtls *d) {
  if (d == NULL) {
    return;
  }
  held_clear(d);
  SSL_free(d->ssl);
  free(d->gather);
  free(d);
}

int dcmf_dtls_coalesce(struct dcmf_dtls *d) {
  if (d->gather == NULL) {
    d->gather = malloc(d->ctx->mtu);
    if (d->gather == NULL) {
      return DCMF_ERR_NOMEM;
    }
  }
  return 0;
}

int dcmf_dtls_output_pending(const struct dcmf_dtls *d) {
  return d->gathered > 0;
}

static void set_state(struct dcmf_dtls *d, enum dcmf_dtls_state state,
                      const char *reason) {
  if (d->state == state) {
    return;
  }
  d->state = state;
  if (state == DCMF_DTLS_CONNECTED || state == DCMF_DTLS_FAILED ||
      state == DCMF_DTLS_CLOSED) {
    d->cbs.state_changed(d->user, state, reason);
  }
}

/* SSL_get_error() reads the thread's OpenSSL error queue, which every
 * session of a worker thread shares (and so do its TLS upstreams). An
 * error left there by any other OpenSSL call would turn this session's
 * plain "want more input" into a fatal failure, so the queue is emptied
 * before each call whose result SSL_get_error() interprets. */
static void clear_stale_errors(void) { ERR_clear_error(); }

/* Interprets an SSL_do_handshake/SSL_read result. Returns 1 to go on
 * reading, 0 when OpenSSL needs more input. */
static int handle_ssl_result(struct dcmf_dtls *d, int r) {
  int err = SSL_get_error(d->ssl, r);
  switch (err) {
  case SSL_ERROR_NONE:
    return 1;
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return 0;
  case SSL_ERROR_ZERO_RETURN:
    set_state(d, DCMF_DTLS_CLOSED, "close_notify received");
    return 0;
  default: {
    /* OpenSSL's own reason ("bad record mac", "unexpected message") is
     * what an operator needs to tell a hostile peer from a bug. */
    char reason[160];
    unsigned long e = ERR_peek_last_error();
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
    if (d->fingerprint_mismatch) {
      snprintf(reason, sizeof(reason),
               "peer certificate does not match the signalled fingerprint");
    } else {
      snprintf(reason, sizeof(reason), "handshake or record failure (%s)",
               why != NULL ? why
                           : (err == SSL_ERROR_SYSCALL ? "I/O error"
                                                       : "no OpenSSL reason"));
    }
    ERR_clear_error();
    set_state(d, DCMF_DTLS_FAILED, reason);
    return 0;
  }
  }
}

static void drive(struct dcmf_dtls *d) {
  if (d->state == DCMF_DTLS_WAITING) {
    d->state = DCMF_DTLS_HANDSHAKE;
  }
  if (d->state == DCMF_DTLS_HANDSHAKE) {
    clear_stale_errors();
    int r = SSL_do_handshake(d->ssl);
    if (r != 1) {
      handle_ssl_result(d, r);
      return;
    }
    /* The last flight leaves before any application data gathers behind
     * it: a peer may still be finishing its handshake when it reads the
     * datagram (werift handles handshake messages asynchronously and
     * drops application data that comes with them). */
    dcmf_dtls_flush(d);
    set_state(d, DCMF_DTLS_CONNECTED, "handshake complete");
  }
  uint8_t buf[16384];
  while (d->state == DCMF_DTLS_CONNECTED) {
    clear_stale_errors();
    int n = SSL_read(d->ssl, buf, sizeof(buf));
    if (n > 0) {
      d->cbs.recv_data(d->user, buf, (size_t)n);
    } else if (!handle_ssl_result(d, n)) {
      break;
    }
  }
}

static void feed(struct dcmf_dtls *d, const uint8_t *data, size_t len) {
  if (BIO_write(d->rbio, data, (int)len) == (int)len) {
    drive(d);
  }
}

int dcmf_dtls_set_remote_fingerprints(struct dcmf_dtls *d,
                                      const struct dcmf_fingerprint_set *set) {
  if (d->state != DCMF_DTLS_WAITING && d->state != DCMF_DTLS_HANDSHAKE) {
    return DCMF_ERR_INVALID;
  }
  d->remote = *set;
  d->have_fingerprints = 1;
  if (d->is_server) {
    /* Replay the held flight in arrival order. */
    for (size_t i = 0; i < d->n_held && d->state != DCMF_DTLS_FAILED; i++) {
      feed(d, d->held[i].data, d->held[i].len);
    }
    held_clear(d);
  } else if (d->start_requested && d->state == DCMF_DTLS_WAITING) {
    drive(d);
  }
  return 0;
}

void dcmf_dtls_start(struct dcmf_dtls *d) {
  if (d->is_server) {
    return;
  }
  d->start_requested = 1;
  if (d->have_fingerprints && d->state == DCMF_DTLS_WAITING) {
    drive(d);
  }
}

int dcmf_dtls_recv(struct dcmf_dtls *d, const uint8_t *data, size_t len) {
  if (d->state == DCMF_DTLS_FAILED || d->state == DCMF_DTLS_CLOSED) {
    return DCMF_ERR_INVALID;
  }
  if (!d->have_fingerprints) {
    if (!d->is_server) {
      return 0; /* a client that has not started expects nothing */
    }
    /* A peer waiting for our answer retransmits its flight unchanged:
     * keep one copy, so retransmissions cannot crowd out the hold. */
    for (size_t i = 0; i < d->n_held; i++) {
      if (d->held[i].len == len && memcmp(d->held[i].data, data, len) == 0) {
        return 0;
      }
    }
    if (d->n_held == HOLD_MAX_DATAGRAMS ||
        d->held_bytes + len > HOLD_MAX_BYTES) {
      return DCMF_ERR_TOO_LARGE;
    }
    uint8_t *copy = malloc(len);
    if (copy == NULL) {
      return DCMF_ERR_NOMEM;
    }
    memcpy(copy, data, len);
    d->held[d->n_held++] = (struct held){copy, len};
    d->held_bytes += len;
    return 0;
  }
  if (!d->is_server && d->state == DCMF_DTLS_WAITING) {
    return 0;
  }
  feed(d, data, len);
  return 0;
}

int dcmf_dtls_send(struct dcmf_dtls *d, const uint8_t *data, size_t len) {
  if (d->state != DCMF_DTLS_CONNECTED) {
    return DCMF_ERR_INVALID;
  }
  clear_stale_errors();
  int n = SSL_write(d->ssl, data, (int)len);
  if (n != (int)len) {
    handle_ssl_result(d, n);
    return DCMF_ERR_SYSTEM;
  }
  return 0;
}

long dcmf_dtls_next_timeout_ms(struct dcmf_dtls *d) {
  struct timeval tv;
  if (d->state != DCMF_DTLS_HANDSHAKE || DTLSv1_get_timeout(d->ssl, &tv) != 1) {
    return -1;
  }
  return (long)tv.tv_sec * 1000 + (long)tv.tv_usec / 1000;
}

void dcmf_dtls_handle_timeout(struct dcmf_dtls *d) {
  clear_stale_errors();
  if (d->state == DCMF_DTLS_HANDSHAKE && DTLSv1_handle_timeout(d->ssl) < 0) {
    ERR_clear_error();
    set_state(d, DCMF_DTLS_FAILED, "handshake timed out");
  }
}

void dcmf_dtls_close(struct dcmf_dtls *d) {
  if (d->state == DCMF_DTLS_CONNECTED) {
    SSL_shutdown(d->ssl);
    ERR_clear_error();
  }
  d->state = DCMF_DTLS_CLOSED;
}

enum dcmf_dtls_state dcmf_dtls_state(const struct dcmf_dtls *d) {
  return d->state;
}

const char *dcmf_dtls_cipher(const struct dcmf_dtls *d) {
  const char *name = SSL_get_cipher_name(d->ssl);
  return d->state == DCMF_DTLS_CONNECTED && name ? name : "";
}

int dcmf_dtls_set_srtp_profiles(struct dcmf_dtls *d, const char *list) {
  if (d->state != DCMF_DTLS_WAITING) {
    return DCMF_ERR_INVALID;
  }
  /* SSL_set_tlsext_use_srtp returns 0 on success, as the CTX call does;
   * on failure the SSL keeps the list it had. */
  if (list == NULL || SSL_set_tlsext_use_srtp(d->ssl, list) != 0) {
    ERR_clear_error();
    return DCMF_ERR_SYSTEM;
  }
  return 0;
}

uint16_t dcmf_dtls_srtp_profile(const struct dcmf_dtls *d) {
  if (d->state != DCMF_DTLS_CONNECTED) {
    return 0;
  }
  const SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(d->ssl);
  return p != NULL ? (uint16_t)p->id : 0;
}

int dcmf_dtls_export_keys(struct dcmf_dtls *d, const char *label,
                          uint8_t *out, size_t len) {
  if (d->state != DCMF_DTLS_CONNECTED) {
    return DCMF_ERR_INVALID;
  }
  /* RFC 5705 without a context, as DTLS-SRTP (RFC 5764 4.2) asks. */
  return SSL_export_keying_material(d->ssl, out, len, label, strlen(label),
                                    NULL, 0, 0) == 1
             ? 0
             : DCMF_ERR_SYSTEM;
}

void dcmf_dtls_set_callbacks(struct dcmf_dtls *d,
                             const struct dcmf_dtls_callbacks *cbs,
                             void *user) {
  d->cbs = *cbs;
  d->user = user;
}
