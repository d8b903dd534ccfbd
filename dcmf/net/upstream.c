#include "upstream.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "errors.h"
#include "upstream_int.h"

static void origin_dispatch(struct origin *o);

/* ---- requests ------------------------------------------------------------ */

static void req_free(struct dcmf_upstream_req *r) {
  free(r->path);
  dcmf_buf_free(&r->headers);
  dcmf_buf_free(&r->body);
  dcmf_buf_free(&r->resp_names);
  dcmf_buf_free(&r->resp_values);
  free(r);
}

/* ---- the origin queue ----------------------------------------------------
 *
 * Every request is at all times in exactly one place: its origin's queue
 * (conn NULL), one connection's in-flight list (conn set), or ended and
 * freed. End callbacks may send new requests (appended to the queue) or
 * cancel others, so a loop that ends requests takes each out of its
 * list, with queue_tail kept exact, before its callback runs, and reads
 * the list afresh afterwards. */

static void queue_unlink(struct origin *o, struct dcmf_upstream_req *r) {
  struct dcmf_upstream_req *prev = NULL;
  for (struct dcmf_upstream_req *q = o->queue; q; prev = q, q = q->next) {
    if (q == r) {
      if (prev) {
        prev->next = r->next;
      } else {
        o->queue = r->next;
      }
      if (o->queue_tail == r) {
        o->queue_tail = prev;
      }
      r->next = NULL;
      return;
    }
  }
}

/* Puts |r| back at the head of its origin's queue, to go out first. */
void up_queue_push_front(struct origin *o, struct dcmf_upstream_req *r) {
  r->conn = NULL;
  r->stream_id = 0;
  r->body_off = 0;
  r->next = o->queue;
  o->queue = r;
  if (o->queue_tail == NULL) {
    o->queue_tail = r;
  }
}

#ifndef NDEBUG
/* The invariant above, checked by the sweep (every SWEEP_MS, where the
 * pool is at rest); linear in the requests of |o|, so not per dispatch
 * (a tool with thousands of requests on one connection would pay it
 * per request). */
static void origin_check(const struct origin *o) {
  const struct dcmf_upstream_req *last = NULL;
  for (const struct dcmf_upstream_req *r = o->queue; r; r = r->next) {
    assert(r->origin == o && r->conn == NULL && !r->finished);
    last = r;
  }
  assert(last == o->queue_tail);
  for (const struct conn *c = o->conns; c; c = c->next) {
    for (const struct dcmf_upstream_req *r = c->inflight; r; r = r->next) {
      assert(r->conn == c && r->origin == o && !r->finished);
    }
  }
}
#else
static void origin_check(const struct origin *o) { (void)o; }
#endif

/* Runs the end callback once; the request is freed unless cancelled
 * objects still point at it (they never do after this). */
void up_req_end(struct dcmf_upstream_req *r, enum dcmf_upstream_result res,
                    const char *why) {
  if (r->finished) {
    return;
  }
  r->finished = 1;
  if (res == DCMF_UPSTREAM_UNREACHABLE || res == DCMF_UPSTREAM_BROKEN) {
    r->pool->counters.failures++;
  } else if (res == DCMF_UPSTREAM_TIMEOUT) {
    r->pool->counters.timeouts++;
  }
  if (r->cbs.end != NULL) {
    r->cbs.end(r->user, res, why);
  }
  req_free(r);
}

void up_req_head(struct dcmf_upstream_req *r, int64_t content_length) {
  struct dcmf_upstream_header hs[MAX_RESPONSE_HEADERS];
  for (size_t i = 0; i < r->n_resp; i++) {
    hs[i] = (struct dcmf_upstream_header){
        r->resp_names.data + r->resp_offsets[i][0],
        strlen(r->resp_names.data + r->resp_offsets[i][0]),
        r->resp_values.data + r->resp_offsets[i][1],
        strlen(r->resp_values.data + r->resp_offsets[i][1])};
  }
  r->head_done = 1;
  struct dcmf_upstream_pool *p = r->pool;
  r->last_data_ms = uv_now(p->loop);
  p->counters.responses++;
  p->counters.latency_ms_total += uv_now(p->loop) - r->sent_ms;
  if (r->cbs.head != NULL) {
    r->cbs.head(r->user, r->status, hs, r->n_resp, content_length);
  }
}

/* Returns 0, or -1 when the header is dropped (too many, or memory). */
int up_resp_header_add(struct dcmf_upstream_req *r, const char *name,
                           size_t nlen, const char *value, size_t vlen) {
  if (r->n_resp == MAX_RESPONSE_HEADERS) {
    return -1; /* more than a proxy passes on; the rest are dropped */
  }
  size_t no = r->resp_names.len, vo = r->resp_values.len;
  if (dcmf_buf_append(&r->resp_names, name, nlen) != 0 ||
      dcmf_buf_append(&r->resp_names, "", 1) != 0 ||
      dcmf_buf_append(&r->resp_values, value, vlen) != 0 ||
      dcmf_buf_append(&r->resp_values, "", 1) != 0) {
    r->resp_names.len = no;
    r->resp_values.len = vo;
    return -1;
  }
  r->resp_offsets[r->n_resp][0] = no;
  r->resp_offsets[r->n_resp][1] = vo;
  r->n_resp++;
  return 0;
}

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
      queue_unlink(o, r);
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
static struct conn *conn_open(struct origin *o) {
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

/* ---- dispatch ------------------------------------------------------------- */

static size_t origin_count(const struct origin *o) {
  size_t n = 0;
  for (const struct conn *c = o->conns; c; c = c->next) {
    n++;
  }
  return n;
}

/* Closes one idle HTTP/1.1 connection of |o|, if it has one. */
static void origin_evict_idle(struct origin *o) {
  for (struct conn *c = o->conns; c; c = c->next) {
    if (!c->closing && c->ready && c->proto == P_H1 && c->h1_req == NULL &&
        c->h1_pending.len == 0 && c->inflight == NULL) {
      up_conn_close(c);
      return;
    }
  }
}

static void origin_dispatch(struct origin *o) {
  while (o->queue != NULL) {
    struct dcmf_upstream_req *r = o->queue;
    struct conn *use = NULL;
    int connecting = 0;
    for (struct conn *c = o->conns; c; c = c->next) {
      if (c->closing) {
        continue;
      }
      if (!c->ready) {
        connecting++;
      } else if (c->proto == P_H2 && c->h2 != NULL &&
                 nghttp2_session_check_request_allowed(c->h2)) {
        use = c; /* (not after a GOAWAY: its streams finish, no new ones) */
      } else if (c->proto == P_H1 && c->h1_req == NULL &&
                 c->h1_pending.len == 0 && (!r->retried || c->h1_served == 0)) {
        use = c; /* a retry takes only a connection not used before */
      }
      if (use != NULL) {
        break;
      }
    }
    if (use == NULL) {
      if (r->retried && o->proto == P_H1 &&
          origin_count(o) >= o->pool->settings.max_connections) {
        origin_evict_idle(o); /* room for the new connection a retry needs */
      }
      /* HTTP/2 needs one usable connection; HTTP/1.1 one per request in
       * flight, up to the limit. While the protocol is unknown, open
       * one. */
      int want = o->proto == P_H1
                     ? origin_count(o) < o->pool->settings.max_connections
                     : connecting == 0;
      if (want) {
        conn_open(o);
      }
      return;
    }
    queue_unlink(o, r);
    if (use->proto == P_H1 && use->h1_served > 0) {
      /* (A new connection is idle too from the moment it is ready.) */
      o->pool->counters.connections_reused++;
    }
    use->idle_since_ms = 0;
    if (use->proto == P_H1) {
      up_h1_send(use, r);
    } else if (up_h2_send(use, r) != 0) {
      up_req_end(r, DCMF_UPSTREAM_UNREACHABLE, "HTTP/2 request refused");
    }
  }
}

static void on_kick(uv_timer_t *t) {
  struct dcmf_upstream_pool *p = t->data;
  for (struct origin *o = p->origins; o; o = o->next) {
    origin_dispatch(o);
  }
}

void up_dispatch_soon(struct dcmf_upstream_pool *p) {
  if (!p->closing) {
    uv_timer_start(&p->kick, on_kick, 0, 0);
  }
}

/* Timeouts: waiting for a connection, response heads, idle
 * connections. */
static void on_sweep(uv_timer_t *t) {
  struct dcmf_upstream_pool *p = t->data;
  uint64_t now = uv_now(p->loop);
  const struct dcmf_upstream_settings *st = &p->settings;
  for (struct origin *o = p->origins; o; o = o->next) {
    /* Each expired request leaves the queue before its end callback,
     * which may change the queue: the scan starts over after each. A
     * request sent from the callback is new, so this ends. */
    const uint64_t wait_ms =
        (uint64_t)st->connect_timeout_ms + st->response_timeout_ms;
    for (;;) {
      struct dcmf_upstream_req *r = o->queue;
      while (r != NULL && now - r->queued_ms < wait_ms) {
        r = r->next;
      }
      if (r == NULL) {
        break;
      }
      queue_unlink(o, r);
      up_req_end(r, DCMF_UPSTREAM_TIMEOUT, "no connection in time");
    }
    for (struct conn *c = o->conns, *next; c; c = next) {
      next = c->next;
      if (c->closing) {
        continue;
      }
      if (!c->ready && now - c->started_ms >= st->connect_timeout_ms) {
        up_conn_fail(c, "connect timed out");
        continue;
      }
      for (struct dcmf_upstream_req *r = c->inflight; r && !c->closing;) {
        int no_head =
            !r->head_done && now - r->sent_ms >= st->response_timeout_ms;
        /* An upstream silent mid-body while we read would hold the
         * phone's request, and an HTTP/1.1 connection of the origin's
         * few, for ever. A paused response is silent because of us. */
        int stalled = r->head_done && !r->paused &&
                      now - r->last_data_ms >= st->response_timeout_ms;
        if (no_head || stalled) {
          if (c->h2 != NULL) {
            nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id,
                                      NGHTTP2_CANCEL);
          }
          up_inflight_end(
              c, r, no_head ? DCMF_UPSTREAM_TIMEOUT : DCMF_UPSTREAM_BROKEN,
              no_head ? "no response in time" : "upstream silent mid-body");
          if (c->proto == P_H1) {
            up_conn_close(c); /* the late answer would confuse the next one */
          }
          /* Its end callback may have cancelled others of |c|: start
           * over (each pass ends one, so this stops). */
          r = c->inflight;
        } else {
          r = r->next;
        }
      }
      if (c->closing) {
        continue;
      }
      up_h2_flush(c);
      if (c->ready && c->inflight == NULL &&
          ((c->idle_since_ms != 0 &&
            now - c->idle_since_ms >= st->idle_timeout_ms) ||
           (c->h2 != NULL && !nghttp2_session_check_request_allowed(c->h2)))) {
        up_conn_close(c); /* idle, or told to go away and done */
      }
    }
    origin_check(o);
  }
}

/* ---- the pool ------------------------------------------------------------ */

static struct origin *origin_get(struct dcmf_upstream_pool *p,
                                 const struct dcmf_url *url) {
  for (struct origin *o = p->origins; o; o = o->next) {
    if (o->https == url->https && o->port == url->port &&
        strcmp(o->host, url->host) == 0) {
      return o;
    }
  }
  struct origin *o = calloc(1, sizeof(*o));
  if (o == NULL) {
    return NULL;
  }
  o->pool = p;
  o->https = url->https;
  o->port = url->port;
  snprintf(o->host, sizeof(o->host), "%s", url->host);
  snprintf(o->authority, sizeof(o->authority), "%s", url->authority);
  o->next = p->origins;
  p->origins = o;
  return o;
}

int dcmf_upstream_pool_new(struct dcmf_upstream_pool **out, uv_loop_t *loop,
                           const struct dcmf_upstream_settings *settings,
                           const struct dcmf_log *log, char *err,
                           size_t errlen) {
  struct dcmf_upstream_pool *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    return DCMF_ERR_NOMEM;
  }
  p->loop = loop;
  p->settings = *settings;
  p->log = log;
  p->tls = SSL_CTX_new(TLS_client_method());
  if (p->tls == NULL) {
    free(p);
    return DCMF_ERR_NOMEM;
  }
  SSL_CTX_set_min_proto_version(p->tls, TLS1_2_VERSION);
  SSL_CTX_set_verify(p->tls, SSL_VERIFY_PEER, NULL);
  static const unsigned char alpn[] = "\x02h2\x08http/1.1";
  SSL_CTX_set_alpn_protos(p->tls, alpn, sizeof(alpn) - 1);
  int ok = settings->ca_file != NULL
               ? SSL_CTX_load_verify_locations(p->tls, settings->ca_file,
                                               NULL) == 1
               : SSL_CTX_set_default_verify_paths(p->tls) == 1;
  if (!ok) {
    snprintf(err, errlen, "upstream-ca %s: not a readable PEM bundle",
             settings->ca_file ? settings->ca_file : "(default)");
  } else if (settings->client_cert != NULL &&
             (SSL_CTX_use_certificate_chain_file(p->tls,
                                                 settings->client_cert) != 1 ||
              SSL_CTX_use_PrivateKey_file(p->tls, settings->client_key,
                                          SSL_FILETYPE_PEM) != 1 ||
              SSL_CTX_check_private_key(p->tls) != 1)) {
    snprintf(err, errlen, "upstream-cert %s / upstream-key %s: unusable",
             settings->client_cert, settings->client_key);
    ok = 0;
  }
  if (!ok) {
    ERR_clear_error();
    SSL_CTX_free(p->tls);
    free(p);
    return DCMF_ERR_INVALID;
  }
  if (p->settings.max_connections == 0) {
    p->settings.max_connections = 8;
  }
  uv_timer_init(loop, &p->sweep);
  uv_timer_init(loop, &p->kick);
  p->sweep.data = p->kick.data = p;
  uv_timer_start(&p->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  uv_unref((uv_handle_t *)&p->sweep);
  *out = p;
  return 0;
}

static void on_pool_timer_closed(uv_handle_t *h) {
  struct dcmf_upstream_pool *p = h->data;
  /* libuv does not promise an order of close callbacks: count them. */
  if (--p->timers_open == 0) {
    SSL_CTX_free(p->tls);
    free(p);
  }
}

void dcmf_upstream_pool_del(struct dcmf_upstream_pool *p) {
  if (p == NULL) {
    return;
  }
  p->closing = 1;
  while (p->origins != NULL) {
    struct origin *o = p->origins;
    p->origins = o->next;
    while (o->queue != NULL) {
      struct dcmf_upstream_req *r = o->queue;
      queue_unlink(o, r);
      up_req_end(r, DCMF_UPSTREAM_UNREACHABLE, "shutting down");
    }
    while (o->conns != NULL) {
      up_conn_fail(o->conns, "shutting down");
    }
    free(o);
  }
  p->timers_open = 2;
  uv_close((uv_handle_t *)&p->sweep, on_pool_timer_closed);
  uv_close((uv_handle_t *)&p->kick, on_pool_timer_closed);
}

int dcmf_upstream_request(struct dcmf_upstream_pool *p,
                          const struct dcmf_url *url, const char *method,
                          const struct dcmf_upstream_header *headers,
                          size_t n_headers, const uint8_t *body,
                          size_t body_len,
                          const struct dcmf_upstream_callbacks *cbs,
                          void *user, struct dcmf_upstream_req **out) {
  struct origin *o = origin_get(p, url);
  struct dcmf_upstream_req *r = calloc(1, sizeof(*r));
  if (o == NULL || r == NULL || strlen(method) >= sizeof(r->method)) {
    free(r);
    return DCMF_ERR_NOMEM;
  }
  r->pool = p;
  r->origin = o;
  snprintf(r->method, sizeof(r->method), "%s", method);
  r->path = strdup(url->path);
  int rv = r->path == NULL ? DCMF_ERR_NOMEM : 0;
  for (size_t i = 0; rv == 0 && i < n_headers; i++) {
    rv |= dcmf_buf_append(&r->headers, headers[i].name, headers[i].name_len);
    rv |= dcmf_buf_append(&r->headers, "", 1);
    rv |= dcmf_buf_append(&r->headers, headers[i].value, headers[i].value_len);
    rv |= dcmf_buf_append(&r->headers, "", 1);
  }
  r->n_headers = n_headers;
  if (rv == 0 && body_len > 0) {
    rv = dcmf_buf_append(&r->body, body, body_len);
  }
  if (rv != 0) {
    req_free(r);
    return DCMF_ERR_NOMEM;
  }
  r->cbs = *cbs;
  r->user = user;
  r->queued_ms = uv_now(p->loop);
  if (o->queue_tail) {
    o->queue_tail->next = r;
  } else {
    o->queue = r;
  }
  o->queue_tail = r;
  p->counters.requests++;
  up_dispatch_soon(p);
  *out = r;
  return 0;
}

void dcmf_upstream_pool_drain(struct dcmf_upstream_pool *p) {
  p->settings.idle_timeout_ms = 0; /* the sweep closes what is idle */
}

void dcmf_upstream_resume(struct dcmf_upstream_req *r) {
  if (!r->paused) {
    return;
  }
  r->paused = 0;
  r->last_data_ms = uv_now(r->pool->loop);
  struct conn *c = r->conn;
  if (c == NULL || c->closing) {
    return;
  }
  if (c->proto == P_H1) {
    up_h1_resume(c);
  } else if (c->h2 != NULL) {
    nghttp2_session_consume_stream(c->h2, r->stream_id, r->unconsumed);
    r->unconsumed = 0;
    up_h2_flush(c);
  }
}

void dcmf_upstream_cancel(struct dcmf_upstream_req *r) {
  r->cbs = (struct dcmf_upstream_callbacks){0};
  struct conn *c = r->conn;
  if (c == NULL) {
    /* Still queued: take it out. */
    queue_unlink(r->origin, r);
    req_free(r);
    return;
  }
  if (c->h2 != NULL) {
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id,
                              NGHTTP2_CANCEL);
    up_inflight_end(c, r, DCMF_UPSTREAM_BROKEN, "cancelled");
    up_h2_flush(c);
  } else {
    up_inflight_end(c, r, DCMF_UPSTREAM_BROKEN, "cancelled");
    up_conn_close(c); /* an HTTP/1.1 response cannot be abandoned midway */
  }
}

const struct dcmf_upstream_counters *
dcmf_upstream_counters(const struct dcmf_upstream_pool *p) {
  return &p->counters;
}
