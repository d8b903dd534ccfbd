/*
 * h1srv.h - a small HTTP/1.1 server for in-process tests of the HTTP
 * client (upstream pool, notifier): it listens on 127.0.0.1 (port 0) on
 * the test's libuv loop, optionally over TLS (the tlspump as server),
 * records every request it reads, and answers each with a fixed
 * response, or never. It refuses an h2c preface the way an HTTP/1-only
 * server does (400 and close), so a client that tries h2c first falls
 * back to HTTP/1.1.
 */
#ifndef DCMF_TEST_H1SRV_H
#define DCMF_TEST_H1SRV_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#define H1SRV_SEEN 8

struct h1srv {
  uv_tcp_t listener;
  uint16_t port;
  SSL_CTX *tls; /* borrowed; NULL: plain TCP */
  /* The answer: |status| 0 means never answer. The body goes with a
   * Content-Length, or in three chunks when |chunked|. */
  int status;
  const char *body;
  int chunked;
  /* When set, the answer is these bytes written to the socket as they
   * are, around TLS (to corrupt an https connection). */
  const char *raw_answer;
  /* When set, every connection is closed as soon as it is accepted (a
   * server dying under its clients), before reading anything. */
  int close_on_accept;
  /* When set, an h2c preface is answered in HTTP/2 with SETTINGS and a
   * GOAWAY that refuses every stream, and the connection stays open
   * (a server going down gracefully, slowly). */
  int h2_goaway;
  /* What happened. */
  int prefaces;                /* h2c prefaces refused */
  size_t n_seen;               /* complete requests read */
  char seen[H1SRV_SEEN][1024]; /* the first of them, NUL-terminated */
  size_t accepted;             /* connections */
  size_t open_conns;
  size_t tls_failures;
  struct h1srv_conn *conns; /* open ones */
};

/* Starts |s| on |loop| (asserts on failure). |tls| (borrowed) makes it
 * an HTTPS server. */
void h1srv_start(struct h1srv *s, uv_loop_t *loop, SSL_CTX *tls, int status,
                 const char *body);

/* h1srv_start on a given port (0: any), to bring a closed server back
 * where its clients look for it. */
void h1srv_start_port(struct h1srv *s, uv_loop_t *loop, SSL_CTX *tls,
                      int status, const char *body, uint16_t port);

/* Closes the listener and resets every connection (SO_LINGER 0: the
 * peer reads ECONNRESET, as from a crashed host); run the loop
 * afterwards. */
void h1srv_reset(struct h1srv *s);

/* Stops listening (connections stay). */
void h1srv_stop_listening(struct h1srv *s);

/* Closes the listener and every connection; run the loop afterwards. */
void h1srv_close(struct h1srv *s);

#endif
