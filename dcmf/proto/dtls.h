/*
 * dtls.h - DTLS 1.2 engine for one association, on OpenSSL with a memory
 * BIO for input and a datagram-preserving BIO for output.
 *
 * The engine touches no socket: ciphertext datagrams leave through the
 * |send_datagram| callback and decrypted application data (SCTP packets)
 * through |recv_data|. Our clock is never read here; retransmission is
 * driven by the caller through dcmf_dtls_next_timeout_ms() and
 * dcmf_dtls_handle_timeout() (OpenSSL itself measures the interval).
 *
 * The peer is authenticated only by the fingerprints signalled in SDP
 * (RFC 8122): its self-signed certificate must match one of them. Until
 * the fingerprints are known a server holds the client's first flight
 * (TS 23.334: the handshake does not finish before the fingerprint is
 * received) and a client does not start.
 */
#ifndef DCMF_DTLS_H
#define DCMF_DTLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "fingerprint.h"

/* Shared by every association of a worker: the SSL_CTX with our
 * certificate and the output BIO method. */
struct dcmf_dtls_ctx {
  SSL_CTX *ssl_ctx;
  BIO_METHOD *out_method;
  unsigned mtu;
};

/*
 * Creates the context for certificate |cert| and key |pkey| (both
 * borrowed; OpenSSL takes its own references). DTLS 1.2 only, extended
 * master secret, peer certificate required. The suites follow the key:
 * ECDHE-ECDSA with AES-GCM preferred for an ECDSA key; for an RSA key
 * TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 then
 * TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 (RFC 7345 §4.1, T.38 over DTLS),
 * then the AES-256 and CBC ECDHE_RSA ones. Every association offers (as a client) and accepts (as a
 * server) the use_srtp profiles SRTP_AEAD_AES_128_GCM,
 * SRTP_AEAD_AES_256_GCM and SRTP_AES128_CM_SHA1_80, in that order,
 * unless it sets its own (dcmf_dtls_set_srtp_profiles). |mtu| is the
 * largest datagram we send (1200 keeps clear of any tunnel overhead).
 * Returns 0 or DCMF_ERR_SYSTEM.
 */
int dcmf_dtls_ctx_init(struct dcmf_dtls_ctx *ctx, X509 *cert, EVP_PKEY *pkey,
                       unsigned mtu);
void dcmf_dtls_ctx_free(struct dcmf_dtls_ctx *ctx);

enum dcmf_dtls_state {
  DCMF_DTLS_WAITING,   /* no fingerprint yet, or not started */
  DCMF_DTLS_HANDSHAKE, /* in progress */
  DCMF_DTLS_CONNECTED,
  DCMF_DTLS_FAILED, /* fatal alert sent or received, or bad fingerprint */
  DCMF_DTLS_CLOSED, /* close_notify received */
};

struct dcmf_dtls_callbacks {
  /* One ciphertext datagram for the peer (one record, or with coalescing
   * the records gathered since the last flush); |data| is valid for the
   * call. */
  void (*send_datagram)(void *user, const uint8_t *data, size_t len);
  /* Decrypted application data (one DTLS record's payload). */
  void (*recv_data)(void *user, const uint8_t *data, size_t len);
  /* The state changed to CONNECTED, FAILED or CLOSED. |reason| is a short
   * English phrase for logs and events. */
  void (*state_changed)(void *user, enum dcmf_dtls_state state,
                        const char *reason);
  /* With coalescing: a record was gathered into an empty datagram, so
   * the owner owes a dcmf_dtls_flush (at the end of its loop turn).
   * Called once per datagram begun. May be NULL without coalescing. */
  void (*output_pending)(void *user);
};

struct dcmf_dtls;

/*
 * Creates an association in role |is_server| (our a=setup: passive means
 * server). Nothing is sent until the remote fingerprints are set and,
 * for a client, dcmf_dtls_start() is called. Returns 0, DCMF_ERR_NOMEM
 * or DCMF_ERR_SYSTEM.
 */
int dcmf_dtls_new(struct dcmf_dtls **dtls, struct dcmf_dtls_ctx *ctx,
                  int is_server, const struct dcmf_dtls_callbacks *cbs,
                  void *user);
void dcmf_dtls_del(struct dcmf_dtls *dtls);

/* Replaces the callbacks and their |user| (copied); for an owner that
 * keeps an engine on in another part (a renewal's replaced engine,
 * dcstack.h). Not from a callback of |dtls|. */
void dcmf_dtls_set_callbacks(struct dcmf_dtls *dtls,
                             const struct dcmf_dtls_callbacks *cbs,
                             void *user);

/*
 * Sets the fingerprints the peer certificate must match (copied). A
 * server then processes the held client flight. Calling it again with
 * other fingerprints before the handshake finished replaces them; after
 * it finished it returns DCMF_ERR_INVALID (a new fingerprint means a new
 * association: the caller creates one).
 */
int dcmf_dtls_set_remote_fingerprints(struct dcmf_dtls *dtls,
                                      const struct dcmf_fingerprint_set *set);

/*
 * Client role: sends the ClientHello once fingerprints are known (if they
 * are not, starts as soon as they are). No effect for a server.
 */
void dcmf_dtls_start(struct dcmf_dtls *dtls);

/*
 * Feeds one received datagram (first byte 20-63). Returns 0, or
 * DCMF_ERR_TOO_LARGE when a held flight would exceed the hold limit
 * (the datagram is dropped), or DCMF_ERR_INVALID when the association
 * has failed or closed.
 */
int dcmf_dtls_recv(struct dcmf_dtls *dtls, const uint8_t *data, size_t len);

/*
 * Encrypts and sends application data. Returns 0, DCMF_ERR_INVALID when
 * not connected, or DCMF_ERR_SYSTEM.
 */
int dcmf_dtls_send(struct dcmf_dtls *dtls, const uint8_t *data, size_t len);

/*
 * Coalescing: from now on the records OpenSSL writes (handshake flights,
 * application data, alerts) are gathered, in order, into datagrams of at
 * most the context's |mtu| bytes instead of leaving one by one. A
 * datagram leaves when the next record would not fit, or at
 * dcmf_dtls_flush; a record larger than |mtu| on its own leaves alone.
 * |output_pending| tells the owner when a flush is owed. Cannot be
 * undone. Returns 0 or DCMF_ERR_NOMEM (nothing changed).
 */
int dcmf_dtls_coalesce(struct dcmf_dtls *dtls);

/* Sends the datagram being gathered, if any (through |send_datagram|).
 * Without coalescing there is never one. Records still gathered when
 * the engine is deleted are dropped: flush first to send them. */
void dcmf_dtls_flush(struct dcmf_dtls *dtls);

/* Returns 1 while records wait for dcmf_dtls_flush. */
int dcmf_dtls_output_pending(const struct dcmf_dtls *dtls);

/*
 * Milliseconds until the handshake retransmission timer fires, or -1
 * when no timer is running.
 */
long dcmf_dtls_next_timeout_ms(struct dcmf_dtls *dtls);

/* Lets OpenSSL retransmit if its timer expired. */
void dcmf_dtls_handle_timeout(struct dcmf_dtls *dtls);

/* Sends close_notify (best effort) and moves to CLOSED. */
void dcmf_dtls_close(struct dcmf_dtls *dtls);

enum dcmf_dtls_state dcmf_dtls_state(const struct dcmf_dtls *dtls);

/* Returns the negotiated cipher name, or "" before the handshake ends. */
const char *dcmf_dtls_cipher(const struct dcmf_dtls *dtls);

/*
 * Replaces the use_srtp profile list (RFC 5764 §4.1.1) this association
 * offers as a client, or accepts as a server, with |list| (OpenSSL's
 * colon-separated names, in our order of preference: an OpenSSL server
 * picks by its own order among what the client offered). Without this
 * call the association uses the context's list (dcmf_dtls_ctx_init).
 * Call before the handshake starts. Returns 0; DCMF_ERR_INVALID once
 * the handshake has started; DCMF_ERR_SYSTEM when OpenSSL refuses the
 * list (an unknown name). On error the association keeps its list.
 */
int dcmf_dtls_set_srtp_profiles(struct dcmf_dtls *dtls, const char *list);

/* The use_srtp profile the handshake selected: its wire identifier
 * (OpenSSL's SRTP_PROTECTION_PROFILE.id, the values of enum
 * dcmf_srtp_profile in srtp.h), or 0 when none was selected or DTLS is
 * not connected (before the handshake ends, after it failed or
 * closed). */
uint16_t dcmf_dtls_srtp_profile(const struct dcmf_dtls *dtls);

/* Writes |len| bytes of keying material for |label| into |out| (RFC
 * 5705, no context: what DTLS-SRTP derives its keys from). Returns 0,
 * DCMF_ERR_INVALID when not connected, or DCMF_ERR_SYSTEM. */
int dcmf_dtls_export_keys(struct dcmf_dtls *dtls, const char *label,
                          uint8_t *out, size_t len);

#endif
