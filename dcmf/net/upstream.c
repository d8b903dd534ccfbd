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

void up_queue_unlink(struct origin *o, struct dcmf_upstream_req *r) {
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
        up_conn_open(o);
      }
      return;
    }
    up_queue_unlink(o, r);
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
      up_queue_unlink(o, r);
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
      up_queue_unlink(o, r);
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
    up_queue_unlink(r->origin, r);
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
