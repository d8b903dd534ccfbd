/*
 * h2server.h - the control API's HTTP/2 server: libuv TCP, nghttp2 and,
 * when a certificate is configured, TLS with ALPN "h2" through the TLS
 * pump (tlspump.h, OpenSSL over memory BIOs). Without a certificate it
 * speaks h2c with prior knowledge.
 *
 * Glue only: it collects complete requests and hands them to the API
 * router (api.h). A request body ends with END_STREAM; content-length
 * is optional (RFC 9113 8.1.1), and one that disagrees with the DATA
 * received resets the stream with PROTOCOL_ERROR (nghttp2 checks it).
 * It enforces the transport limits itself: body size (413 as soon as
 * the DATA received passes the limit, or up front from content-length),
 * header size (431), request completion time (408) and idle connections
 * (GOAWAY).
 */
#ifndef DCMF_H2SERVER_H
#define DCMF_H2SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "api.h"
#include "log.h"
#include "metrics.h"

struct dcmf_h2server_settings {
  const char *host;   /* numeric listen address */
  uint16_t port;
  SSL_CTX *tls;       /* borrowed; NULL for h2c */
  size_t max_body;
  uint32_t request_timeout_ms;
  uint32_t idle_timeout_ms;
};

struct dcmf_h2server;

/*
 * Starts listening on |loop|. |api|, |log| and |metrics| are borrowed for
 * the server's life. Returns 0, or a negative libuv error (e.g.
 * UV_EADDRINUSE) with nothing left open, or DCMF_ERR_NOMEM.
 */
int dcmf_h2server_start(struct dcmf_h2server **server, uv_loop_t *loop,
                        const struct dcmf_h2server_settings *settings,
                        struct dcmf_api *api, const struct dcmf_log *log,
                        struct dcmf_metrics *metrics);

/*
 * Stops accepting, sends GOAWAY on every connection and closes them all.
 * |done| runs (from the loop) once every handle is closed and the server
 * is freed.
 */
void dcmf_h2server_stop(struct dcmf_h2server *server,
                        void (*done)(void *user), void *user);

/*
 * Makes an SSL_CTX for the control API from PEM files, offering only
 * ALPN "h2" and TLS 1.2+. Returns NULL with |err| filled on failure.
 */
SSL_CTX *dcmf_h2server_tls_ctx(const char *cert_path, const char *key_path,
                               char *err, size_t errlen);

/*
 * Makes |ctx| require a client certificate issued by a CA of the PEM file
 * |ca_path| (mutual TLS): a client without one, or with another CA's,
 * fails the handshake. The verified subject reaches the API as
 * client_subject/client_cn. Returns 0, or DCMF_ERR_INVALID with |err|
 * filled when the file holds no readable certificate.
 */
int dcmf_h2server_tls_client_ca(SSL_CTX *ctx, const char *ca_path, char *err,
                                size_t errlen);

#endif
