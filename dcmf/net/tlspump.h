/*
 * tlspump.h - TLS over memory BIOs for one stream connection, client or
 * server: ciphertext in, plaintext out, plaintext in, ciphertext out. It
 * is the TLS of the control API's HTTP/2 server (h2server.c) and of the
 * HTTP client (dcmf/net/upstream.c), and is meant for any later TLS
 * over TCP (MSRP, BFCP). Layer "net".
 *
 * No I/O: no sockets, no clock, no libuv. The glue feeds what its socket
 * read (dcmf_tlspump_feed), takes the plaintext out (dcmf_tlspump_read),
 * hands plaintext to send (dcmf_tlspump_write), and after each of those
 * calls writes what dcmf_tlspump_drain gives back to its socket. The
 * handshake needs no separate call: a client's first flight is ready to
 * drain once dcmf_tlspump_init returned, and later flights appear after
 * feeds. OpenSSL's error queue is cleared before each call returns.
 *
 * The caller owns the struct (embed it) and the SSL_CTX, which carries
 * the certificates, verification mode and ALPN list; the SSL_CTX must
 * outlive the pump. A pump is used from one thread.
 */
#ifndef DCMF_TLSPUMP_H
#define DCMF_TLSPUMP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

enum dcmf_tlspump_role {
  DCMF_TLSPUMP_CLIENT,
  DCMF_TLSPUMP_SERVER,
};

enum dcmf_tlspump_state {
  DCMF_TLSPUMP_HANDSHAKE, /* not yet open; feed what the peer sends */
  DCMF_TLSPUMP_OPEN,      /* application data flows both ways */
  DCMF_TLSPUMP_CLOSED,    /* the peer sent close_notify */
  DCMF_TLSPUMP_FAILED,    /* see dcmf_tlspump_get_failure(), _get_reason() */
};

/* Why a pump FAILED. */
enum dcmf_tlspump_failure {
  DCMF_TLSPUMP_FAIL_NONE,
  /* The peer's certificate did not verify (untrusted, expired, wrong
   * name or address); dcmf_tlspump_get_verify_result() says which. */
  DCMF_TLSPUMP_FAIL_VERIFY,
  /* A server that requires a client certificate got none. */
  DCMF_TLSPUMP_FAIL_NO_PEER_CERT,
  /* Anything else: not TLS, no common version, cipher or protocol, a
   * fatal alert from the peer, a malformed record. */
  DCMF_TLSPUMP_FAIL_PROTOCOL,
};

/* Embed it; every field is private. */
struct dcmf_tlspump {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by |ssl| */
  enum dcmf_tlspump_state state;
  enum dcmf_tlspump_failure failure;
  char reason[160];
};

/*
 * Makes |p| a TLS endpoint of |role| on |ctx| (borrowed; it must outlive
 * |p|). For a client, |peer_host| (or NULL) is the name or IP address the
 * server's certificate must carry (checked when |ctx| verifies peers);
 * a DNS name is also sent as SNI. A client's ClientHello is ready to
 * drain on return. Returns 0, or DCMF_ERR_NOMEM (then |p| holds nothing
 * and dcmf_tlspump_free is harmless).
 */
int dcmf_tlspump_init(struct dcmf_tlspump *p, SSL_CTX *ctx,
                      enum dcmf_tlspump_role role, const char *peer_host);

/* Attaches |data| to the pump's SSL (SSL_set_app_data), for an SSL_CTX
 * verify callback that checks per connection (e.g. signalled
 * fingerprints). */
void dcmf_tlspump_set_app_data(struct dcmf_tlspump *p, void *data);

/* Frees what |p| holds. Idempotent; |p| may be zeroed. */
void dcmf_tlspump_free(struct dcmf_tlspump *p);

/*
 * Takes |len| ciphertext bytes the peer sent (borrowed for the call) and
 * moves the handshake on. Returns 0 (check the state: the handshake may
 * have completed or the pump failed) or DCMF_ERR_NOMEM (the pump is then
 * FAILED too). Feeding a FAILED or CLOSED pump takes nothing and returns
 * 0.
 */
int dcmf_tlspump_feed(struct dcmf_tlspump *p, const uint8_t *data, size_t len);

/*
 * Reads decrypted application data into |out| (|cap| bytes) and stores
 * in *|got| how many bytes were written. Returns 0 with *|got| > 0 (call
 * again for more), 0 with *|got| == 0 (nothing more until the next feed,
 * or the peer closed: see the state), or DCMF_ERR_MALFORMED (a
 * protocol error; the pump is FAILED).
 */
int dcmf_tlspump_read(struct dcmf_tlspump *p, uint8_t *out, size_t cap,
                      size_t *got);

/*
 * Encrypts |len| bytes of |data| (borrowed for the call); the records
 * are then ready to drain. Returns 0, DCMF_ERR_INVALID (the pump is not
 * OPEN) or DCMF_ERR_NOMEM.
 */
int dcmf_tlspump_write(struct dcmf_tlspump *p, const uint8_t *data, size_t len);

/* Returns how many ciphertext bytes wait to be drained. */
size_t dcmf_tlspump_pending(const struct dcmf_tlspump *p);

/* Returns how many received bytes TLS holds that dcmf_tlspump_read has
 * not consumed yet (records fed but not read, plaintext decrypted but
 * not taken): a close_notify may still be among them. */
size_t dcmf_tlspump_unread(const struct dcmf_tlspump *p);

/* Moves up to |cap| waiting ciphertext bytes into |out| and returns how
 * many; 0 when none wait. */
size_t dcmf_tlspump_drain(struct dcmf_tlspump *p, uint8_t *out, size_t cap);

/* Queues a close_notify alert to drain (best effort, no wait for the
 * peer's). */
void dcmf_tlspump_shutdown(struct dcmf_tlspump *p);

enum dcmf_tlspump_state dcmf_tlspump_get_state(const struct dcmf_tlspump *p);

enum dcmf_tlspump_failure
dcmf_tlspump_get_failure(const struct dcmf_tlspump *p);

/* A short phrase saying why the pump FAILED ("certificate verify
 * failed: unable to get local issuer certificate", "no peer
 * certificate", "wrong version number"), or "" before a failure. Valid
 * while |p| is. */
const char *dcmf_tlspump_get_reason(const struct dcmf_tlspump *p);

/* The protocol ALPN chose, as *|proto| (not NUL-terminated, valid while
 * |p| is) and *|len|; *|len| is 0 when none was chosen or the handshake
 * is not done. */
void dcmf_tlspump_get_alpn(const struct dcmf_tlspump *p, const uint8_t **proto,
                           size_t *len);

/* OpenSSL's certificate verification result (X509_V_OK, or an
 * X509_V_ERR_* code) for the peer certificate. */
long dcmf_tlspump_get_verify_result(const struct dcmf_tlspump *p);

/* The peer's certificate when it was presented and verified, else NULL.
 * Borrowed: valid while |p| is. */
X509 *dcmf_tlspump_get_verified_peer(const struct dcmf_tlspump *p);

#endif
