/*
 * upstream_conn.c - the connections of the upstream pool (upstream.h):
 * opening one (resolve, connect, TLS), writing and reading its bytes
 * (the protocol's own file parses them: upstream_h1.c, upstream_h2.c),
 * ending, refusing and requeueing its requests, and failing and closing
 * it. The origin queue and dispatch are upstream.c's; the shared
 * objects are upstream_int.h's.
 */
#include "upstream.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "errors.h"
#include "upstream_int.h"

/* ---- connection I/O ------------------------------------------------------- */

static void on_written(uv_write_t *w, int status) {
  struct conn *c = w->data;
  free(w);
  if (status < 0 && !c->closing) {
    /* EPIPE, ECONNRESET: the upstream is gone; its requests fail (or an
     * HTTP/1.1 one is sent again, see req_requeue) now rather than when
     * the read side notices. */
    up_conn_fail(c, uv_strerror(status));
    return;
  }
  if (!c->closing && c->h2 != NULL) {
    up_h2_flush(c); /* what waited for room in the write queue */
  }
}

static void raw_write(struct conn *c, const void *data, size_t len) {
  uv_write_t *w = malloc(sizeof(*w) + len);
  if (w == NULL) {
    return;
  }
  memcpy(w + 1, data, len);
  w->data = c;
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned int)len);
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
    free(w);
  }
}

/* Moves the records the TLS pump made onto the socket. */
static void tls_drain(struct conn *c) {
  uint8_t buf[16384];
  size_t n;
  while ((n = dcmf_tlspump_drain(&c->tls, buf, sizeof(buf))) > 0) {
    raw_write(c, buf, n);
  }
}

void up_conn_write(struct conn *c, const void *data, size_t len) {
  if (!c->tls_on) {
    raw_write(c, data, len);
  } else if (dcmf_tlspump_write(&c->tls, data, len) == 0) {
    tls_drain(c);
  }
}

static void inflight_remove(struct conn *c, struct dcmf_upstream_req *r) {
  for (struct dcmf_upstream_req **pp = &c->inflight; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      r->next = NULL;
      return;
    }
  }
}

/* Ends a request that went out on |c|. */
void up_inflight_end(struct conn *c, struct dcmf_upstream_req *r,
                         enum dcmf_upstream_result res, const char *why) {
  inflight_remove(c, r);
  if (c->h1_req == r) {
    c->h1_req = NULL;
  }
  if (c->inflight == NULL) {
    /* Idle from now: an HTTP/2 connection has no other moment that says
     * so (HTTP/1.1 also marks it when its response ends), and without
     * this the sweep kept a once-used HTTP/2 connection open for good. */
    c->idle_since_ms = uv_now(c->pool->loop);
  }
  if (c->h2 != NULL && r->stream_id > 0) {
    nghttp2_session_set_stream_user_data(c->h2, r->stream_id, NULL);
  }
  up_req_end(r, res, why);
}

/* RFC 9110 9.2.2: the methods whose request may be sent twice. */
static int method_idempotent(const char *m) {
  static const char *const idem[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
  for (size_t i = 0; i < sizeof(idem) / sizeof(idem[0]); i++) {
    if (strcmp(m, idem[i]) == 0) {
      return 1;
    }
  }
  return 0;
}

/* An upstream may close an idle HTTP/1.1 keep-alive connection (its own
 * idle timer, Node's 5 s) just as we send a request on it: the request
 * is lost unanswered, through no fault of the phone. RFC 9112 9.3.1
 * lets a client send an idempotent request again when the connection
 * closed before any of the response came. So: once, on a connection
 * that had served earlier requests (a new one failing says the upstream
 * is broken), before any byte of the answer, and on a new connection
 * (the other idle ones are as old). Returns 1 if |r| went back to the
 * head of its origin's queue, 0 if it must fail. */
static int req_requeue(struct conn *c, struct dcmf_upstream_req *r) {
  if (c->proto != P_H1 || c->h1_req != r || c->h1_served == 0 || c->h1_got ||
      r->head_done || r->retried || c->pool->closing ||
      !method_idempotent(r->method)) {
    return 0;
  }
  inflight_remove(c, r);
  c->h1_req = NULL;
  r->retried = 1;
  struct origin *o = c->origin;
  up_queue_push_front(o, r);
  c->pool->counters.retries++;
  DCMF_LOGD(c->pool->log, "upstream",
            "%s: %s %s: reused connection closed unanswered; sending it "
            "again on a new one",
            o->authority, r->method, r->path);
  return 1;
}

/* An HTTP/2 stream the upstream refused (REFUSED_STREAM, or above the
 * last stream of its GOAWAY) was not processed (RFC 9113 8.7): any
 * method may go again, once, on a connection that takes new streams.
 * Returns 1 if |r| went back to the head of its origin's queue. */
int up_req_refused(struct conn *c, struct dcmf_upstream_req *r) {
  if (r->head_done || r->retried || c->pool->closing) {
    return 0;
  }
  inflight_remove(c, r);
  if (c->h2 != NULL && r->stream_id > 0) {
    nghttp2_session_set_stream_user_data(c->h2, r->stream_id, NULL);
  }
  r->retried = 1;
  up_queue_push_front(c->origin, r);
  c->pool->counters.retries++;
  up_dispatch_soon(c->pool);
  DCMF_LOGD(c->pool->log, "upstream", "%s: %s %s: stream refused; sending it "
            "again", c->origin->authority, r->method, r->path);
  return 1;
}

/* Fails every request on |c|, and, when the connection never came up
 * (the upstream is down or refuses us), every request waiting for it. */
void up_conn_fail(struct conn *c, const char *why) {
  /* A plain-HTTP upstream that hangs up on our h2c preface before saying
   * anything in HTTP/2 is taken for an HTTP/1.1-only server. */
  if (c->ready && c->proto == P_H2 && !c->origin->https &&
      c->origin->proto == P_UNKNOWN && !c->pool->closing) {
    struct origin *o = c->origin;
    up_h2c_give_up(c);
    o->h1_guessed = 1; /* a hang-up is no HTTP/1 answer */
    return;
  }
  struct origin *o = c->origin;
  if (o->h1_guessed && c->proto == P_H1) {
    /* HTTP/1.1 was only inferred from an h2c connection that was hung
     * up on, and HTTP/1.1 has not answered either: the upstream was
     * likely going down. Ask with h2c again next time, or an h2c server
     * that comes back would be spoken to in HTTP/1.1 for good. */
    o->proto = P_UNKNOWN;
    o->h1_guessed = 0;
  }
  while (c->inflight != NULL) {
    struct dcmf_upstream_req *r = c->inflight;
    if (req_requeue(c, r)) {
      continue;
    }
    up_inflight_end(c, r,
                 r->head_done ? DCMF_UPSTREAM_BROKEN
                              : DCMF_UPSTREAM_UNREACHABLE,
                 why);
  }
  if (!c->ready && !c->pool->closing) {
    /* The upstream is down or refuses us: the requests that waited for
     * a connection fail now rather than at their timeout (waiting for
     * another connection of the origin instead would have the pool
     * retry a refusing upstream at loop speed). Only those queued now:
     * a request an end callback sends goes to the back of the queue,
     * unmarked, and gets a connection attempt of its own (so a caller
     * that resends on failure is not answered from inside its own
     * callback, endlessly). */
    for (struct dcmf_upstream_req *r = o->queue; r; r = r->next) {
      r->failing = 1;
    }
    while (o->queue != NULL && o->queue->failing) {
      struct dcmf_upstream_req *r = o->queue;
      up_queue_unlink(o, r);
      up_req_end(r, DCMF_UPSTREAM_UNREACHABLE, why);
    }
  }
  DCMF_LOGD(c->pool->log, "upstream", "%s: %s", o->authority, why);
  up_conn_close(c);
}

static void conn_free(struct conn *c) {
  dcmf_buf_free(&c->h1_pending);
  free(c);
}

static void on_conn_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  c->handle_closed = 1;
  if (!c->resolving) {
    conn_free(c);
  }
}

void up_conn_close(struct conn *c) {
  if (c->closing) {
    return;
  }
  c->closing = 1;
  c->pool->counters.connections_closed++;
  struct origin *o = c->origin;
  for (struct conn **pp = &o->conns; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  }
  if (c->h2 != NULL) {
    nghttp2_session *s = c->h2;
    c->h2 = NULL;
    nghttp2_session_del(s); /* ends open streams via on_stream_close */
  }
  dcmf_tlspump_free(&c->tls);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  if (o->queue != NULL && !c->pool->closing) {
    up_dispatch_soon(c->pool); /* waiting requests need a new connection */
  }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)s;
  struct conn *c = h->data;
  *b = uv_buf_init(c->readbuf, sizeof(c->readbuf));
}

/* The connection is usable: decide its protocol and hand it work. */
static void conn_ready(struct conn *c) {
  c->ready = 1;
  if (c->tls_on) {
    const uint8_t *alpn;
    size_t alen;
    dcmf_tlspump_get_alpn(&c->tls, &alpn, &alen);
    c->proto = alen == 2 && memcmp(alpn, "h2", 2) == 0 ? P_H2 : P_H1;
    c->origin->proto = c->proto;
  }
  if (c->proto == P_H2 && up_h2_start(c) != 0) {
    up_conn_fail(c, "HTTP/2 session failed");
    return;
  }
  c->idle_since_ms = uv_now(c->pool->loop);
  up_dispatch_soon(c->pool);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct conn *c = s->data;
  if (n == 0) {
    return; /* EAGAIN; an empty feed would mean EOF to http_parser */
  }
  if (n < 0) {
    if (n == UV_EOF && c->proto == P_H1) {
      up_h1_eof(c);
      return;
    }
    up_conn_fail(c, n == UV_EOF ? "closed by the upstream" : uv_strerror((int)n));
    return;
  }
  if (!c->tls_on) {
    up_conn_feed(c, (const uint8_t *)b->base, (size_t)n);
    return;
  }
  int was_open = dcmf_tlspump_get_state(&c->tls) == DCMF_TLSPUMP_OPEN;
  int rv = dcmf_tlspump_feed(&c->tls, (const uint8_t *)b->base, (size_t)n);
  tls_drain(c); /* handshake flights, alerts */
  if (rv != 0 || dcmf_tlspump_get_state(&c->tls) == DCMF_TLSPUMP_FAILED) {
    char why[200];
    snprintf(why, sizeof(why), "TLS %s failed: %s",
             was_open ? "connection" : "handshake",
             dcmf_tlspump_get_reason(&c->tls));
    up_conn_fail(c, why);
    return;
  }
  if (dcmf_tlspump_get_state(&c->tls) == DCMF_TLSPUMP_HANDSHAKE) {
    return;
  }
  if (!was_open) {
    conn_ready(c);
  }
  uint8_t plain[16384];
  size_t got = 0;
  while (!c->closing &&
         dcmf_tlspump_read(&c->tls, plain, sizeof(plain), &got) == 0 &&
         got > 0) {
    up_conn_feed(c, plain, got);
  }
  if (c->closing) {
    return;
  }
  tls_drain(c);
  if (dcmf_tlspump_get_state(&c->tls) == DCMF_TLSPUMP_FAILED) {
    /* A bad record or a fatal alert: nothing more can be read. */
    char why[200];
    snprintf(why, sizeof(why), "TLS connection failed: %s",
             dcmf_tlspump_get_reason(&c->tls));
    up_conn_fail(c, why);
  }
}

static void on_connected(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  if (c->closing) {
    return;
  }
  if (status < 0) {
    up_conn_fail(c, uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (!c->tls_on) {
    conn_ready(c);
    return;
  }
  tls_drain(c); /* the ClientHello */
}

static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *ai) {
  struct conn *c = r->data;
  c->resolving = 0;
  if (c->closing) {
    uv_freeaddrinfo(ai);
    if (c->handle_closed) {
      conn_free(c);
    }
    return;
  }
  if (status < 0 || ai == NULL ||
      uv_tcp_connect(&c->connect, &c->tcp, ai->ai_addr, on_connected) != 0) {
    uv_freeaddrinfo(ai);
    up_conn_fail(c, "upstream host not resolved");
    return;
  }
  uv_freeaddrinfo(ai);
}

/* Opens a new connection to |o| (its requests wait in the origin queue). */
struct conn *up_conn_open(struct origin *o) {
  struct dcmf_upstream_pool *p = o->pool;
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return NULL;
  }
  c->pool = p;
  c->origin = o;
  c->proto = o->https ? P_UNKNOWN : (o->proto == P_H1 ? P_H1 : P_H2);
  c->started_ms = uv_now(p->loop);
  uv_tcp_init(p->loop, &c->tcp);
  c->tcp.data = c;
  c->connect.data = c;
  c->resolve.data = c;
  c->next = o->conns;
  o->conns = c;
  p->counters.connections_opened++;
  if (o->https) {
    /* SNI and the name (or address) the certificate must carry. */
    if (dcmf_tlspump_init(&c->tls, p->tls, DCMF_TLSPUMP_CLIENT, o->host) !=
        0) {
      up_conn_fail(c, "TLS set-up failed");
      return NULL;
    }
    c->tls_on = 1;
  }
  char port[8];
  snprintf(port, sizeof(port), "%u", o->port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  c->resolving = 1;
  if (uv_getaddrinfo(p->loop, &c->resolve, on_resolved, o->host, port,
                     &hints) != 0) {
    c->resolving = 0;
    up_conn_fail(c, "resolver refused");
    return NULL;
  }
  return c;
}

void up_read_start(struct conn *c) {
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}
