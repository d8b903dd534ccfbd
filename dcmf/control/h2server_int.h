/*
 * h2server_int.h - the control server's objects, for its own files
 * alone: h2server.c (listening, a connection's socket, TLS, timers and
 * closing) and h2server_session.c (a connection's HTTP/2 session and
 * its streams). Other modules see the server only through h2server.h.
 */
#ifndef DCMF_H2SERVER_INT_H
#define DCMF_H2SERVER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "buf.h"
#include "h2server.h"
#include "tlspump.h"

#define MAX_HEADER_BYTES 16384
#define MAX_CONCURRENT_STREAMS 128

struct stream {
  int32_t id;
  char method[16];
  char *path, *authority, *scheme, *content_type;
  char *content_encoding, *if_match;
  char *authorization; /* never logged */
  int has_content_length;
  long long content_length;
  size_t header_bytes;
  struct dcmf_buf body;
  uint64_t started_ms;
  int responded;      /* a response has been submitted */
  int abort_after;    /* RST_STREAM(NO_ERROR) once the response is sent */
  int rejected_status; /* set while headers arrive: 413 or 431 */
  struct dcmf_api_response resp;
  size_t resp_off;
  struct stream *next, *prev;
};

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  int handles_open;
  struct dcmf_h2server *server;
  nghttp2_session *session;
  int tls_on; /* 0 for h2c */
  struct dcmf_tlspump tls;
  uint64_t last_activity_ms;
  int closing;
  int close_when_flushed; /* nothing more to send: close once written */
  uint64_t goaway_ms;      /* when the idle GOAWAY went out; 0 if not */
  struct stream *streams;
  struct conn *next, *prev;
  /* The client certificate OpenSSL verified: RFC 2253 subject and CN. */
  char peer_subject[512], peer_cn[256];
  char readbuf[16384];
};

struct dcmf_h2server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  struct dcmf_h2server_settings settings;
  struct dcmf_api *api;
  const struct dcmf_log *log;
  struct dcmf_metrics *metrics;
  struct conn *conns;
  int stopping;
  int listener_open;
  void (*done)(void *);
  void *done_user;
};

/* Makes the connection's nghttp2 server session with the stream
 * callbacks and queues our SETTINGS. Returns 0 or DCMF_ERR_NOMEM. */
int h2server_session_new(struct conn *c);

/* Takes |st| off the connection's list of streams. */
void h2server_stream_unlink(struct conn *c, struct stream *st);

/* Answers |st| with |status| and |detail| (as the API words a refusal)
 * and resets the stream once the response is sent. */
void h2server_stream_reject(struct conn *c, struct stream *st, int status,
                            const char *detail);

/* Frees |st| and what it holds (request fields, body, response). */
void h2server_stream_free(struct stream *st);

#endif
