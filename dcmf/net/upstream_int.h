/*
 * upstream_int.h - what the files of the upstream client share:
 * upstream.c (pool, origins and their queues, dispatch, timeouts),
 * upstream_conn.c (connections: connect, TLS, I/O, failing and closing),
 * upstream_h1.c (HTTP/1.1, responses read by the h1resp engine) and
 * upstream_h2.c (HTTP/2 over nghttp2). Not a public header: only those
 * files include it.
 */
#ifndef DCMF_UPSTREAM_INT_H
#define DCMF_UPSTREAM_INT_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "h1resp.h"
#include "tlspump.h"
#include "upstream.h"

#define SWEEP_MS 100                /* timeout checks */
#define MAX_RESPONSE_HEADERS 64     /* more are dropped */
#define H2_WINDOW (256 * 1024)      /* per stream, our receive side */
/* HTTP/2 frames stop being produced while this much waits on a socket
 * the upstream does not read; nghttp2 then holds them, and fails the
 * connection when an upstream floods it with frames to acknowledge. */
#define WRITE_QUEUE_LIMIT (1u << 20)

enum proto { P_UNKNOWN, P_H1, P_H2 };

struct conn;

struct dcmf_upstream_req {
  struct dcmf_upstream_pool *pool;
  struct origin *origin;
  struct conn *conn;
  char method[16];
  char *path;
  struct dcmf_buf headers; /* "name\0value\0" pairs */
  size_t n_headers;
  struct dcmf_buf body;
  size_t body_off;
  struct dcmf_upstream_callbacks cbs;
  void *user;
  int32_t stream_id;
  int head_done, finished, paused;
  /* sent again after a reused HTTP/1.1 connection dropped it unanswered;
   * it waits for a new connection and is never sent a third time */
  int retried;
  /* marked for failing with the rest of its origin's queue when no
   * connection of the origin could be opened */
  int failing;
  uint64_t sent_ms;   /* when it went out on a connection */
  uint64_t queued_ms; /* when it was issued */
  /* the head or the last body bytes came, or the caller resumed: the
   * body's silence is timed from here while the caller reads */
  uint64_t last_data_ms;
  /* response headers while they arrive */
  struct dcmf_buf resp_names, resp_values;
  size_t resp_offsets[MAX_RESPONSE_HEADERS][2];
  size_t n_resp;
  int status;
  /* HTTP/2 bytes delivered while paused: the stream window gives them
   * back on resume (the connection window did at once) */
  size_t unconsumed;
  /* origin queue, or connection in-flight: at all times in exactly one
   * of them until it ends (upstream.c) */
  struct dcmf_upstream_req *next;
};

struct origin {
  struct dcmf_upstream_pool *pool;
  int https;
  char host[256];
  uint16_t port;
  char authority[300];
  enum proto proto;
  /* |proto| is P_H1 only because an h2c connection was hung up on
   * before any answer; the first HTTP/1.1 response confirms it, a
   * failed HTTP/1.1 connection takes it back (upstream_conn.c) */
  int h1_guessed;
  struct conn *conns;
  struct dcmf_upstream_req *queue, *queue_tail;
  struct origin *next;
};

struct conn {
  struct dcmf_upstream_pool *pool;
  struct origin *origin;
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_getaddrinfo_t resolve;
  int ready, closing;
  /* The resolver request and the TCP handle each hold |c|: whichever
   * ends last frees it (libuv may report the resolution after the
   * handle closed). */
  int resolving, handle_closed;
  int h2_first_seen; /* the first bytes of an h2c probe were checked */
  enum proto proto;
  int tls_on; /* an https origin: |tls| carries the bytes */
  struct dcmf_tlspump tls;
  nghttp2_session *h2;
  struct dcmf_upstream_req *h1_req;
  uint32_t h1_served; /* responses completed: above 0, the conn is reused */
  int h1_got;         /* a byte of h1_req's response arrived */
  struct dcmf_upstream_req *inflight; /* requests sent on this connection */
  struct dcmf_buf h1_pending; /* input held while an h1 response pauses */
  uint64_t started_ms, idle_since_ms;
  struct conn *next;
  char readbuf[16384];
  struct dcmf_h1resp h1; /* reads the response to h1_req */
};

struct dcmf_upstream_pool {
  uv_loop_t *loop;
  uv_timer_t sweep;
  uv_timer_t kick; /* runs dispatch outside any caller's stack */
  SSL_CTX *tls;
  struct dcmf_upstream_settings settings;
  const struct dcmf_log *log;
  struct origin *origins;
  struct dcmf_upstream_counters counters;
  int closing;
  int timers_open; /* while closing */
};

/* Requests (upstream.c). */
void up_req_end(struct dcmf_upstream_req *r, enum dcmf_upstream_result res,
                const char *why);
void up_req_head(struct dcmf_upstream_req *r, int64_t content_length);
int up_resp_header_add(struct dcmf_upstream_req *r, const char *name,
                       size_t nlen, const char *value, size_t vlen);
/* Puts |r| back at the head of its origin's queue, to go out first. */
void up_queue_push_front(struct origin *o, struct dcmf_upstream_req *r);
/* Takes |r| off its origin's queue. */
void up_queue_unlink(struct origin *o, struct dcmf_upstream_req *r);
void up_dispatch_soon(struct dcmf_upstream_pool *p);

/* Connections (upstream_conn.c). */
/* Opens a new connection to |o| (resolving first); NULL if none could
 * start. */
struct conn *up_conn_open(struct origin *o);
void up_conn_write(struct conn *c, const void *data, size_t len);
void up_conn_fail(struct conn *c, const char *why);
void up_conn_close(struct conn *c);
void up_inflight_end(struct conn *c, struct dcmf_upstream_req *r,
                     enum dcmf_upstream_result res, const char *why);
/* An HTTP/2 stream of |r| was refused: returns 1 if |r| was queued again
 * (once per request), 0 if it must end. */
int up_req_refused(struct conn *c, struct dcmf_upstream_req *r);
void up_read_start(struct conn *c);

/* HTTP/1.1 (upstream_h1.c). */
void up_h1_send(struct conn *c, struct dcmf_upstream_req *r);
void up_h1_feed(struct conn *c, const uint8_t *data, size_t len);
void up_h1_resume(struct conn *c);
/* The upstream closed an HTTP/1.1 connection. */
void up_h1_eof(struct conn *c);

/* HTTP/2 (upstream_h2.c). */
int up_h2_start(struct conn *c);
void up_h2_flush(struct conn *c);
int up_h2_send(struct conn *c, struct dcmf_upstream_req *r);
void up_conn_feed(struct conn *c, const uint8_t *data, size_t len);
/* An http:// origin that turned out not to speak h2c: it is marked
 * HTTP/1.1-only and the requests of |c| go back to its queue. */
void up_h2c_give_up(struct conn *c);

#endif
