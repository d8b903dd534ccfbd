/* HTTP/1.1 toward upstreams: requests written by hand, responses read by
 * the h1resp engine (http_parser behind it). This file is the glue: it
 * feeds the engine what the connection reads, holds input back while a
 * response is paused, and turns the engine's callbacks into the
 * request's. */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "upstream_int.h"
/* ---- HTTP/1.1 ---------------------------------------------------------- */

/* The request's callbacks may cancel it, which closes |c|: then the rest
 * of the response is of no interest, and a negative return stops the
 * engine. */
static int h1_go_on(const struct conn *c) {
  return c->closing ? -1 : 0;
}

static int h1_head(void *user, int status,
                   const struct dcmf_h1resp_header *hs, size_t n,
                   int64_t content_length) {
  struct conn *c = user;
  struct dcmf_upstream_req *r = c->h1_req;
  if (r == NULL) {
    return h1_go_on(c);
  }
  for (size_t i = 0; i < n; i++) {
    /* Beyond MAX_RESPONSE_HEADERS (or out of memory) fields are dropped. */
    (void)up_resp_header_add(r, hs[i].name, hs[i].name_len, hs[i].value,
                             hs[i].value_len);
  }
  r->status = status;
  up_req_head(r, content_length); /* 0 for HEAD, 204 and 304 */
  return h1_go_on(c);
}

static int h1_body(void *user, const uint8_t *data, size_t len) {
  struct conn *c = user;
  struct dcmf_upstream_req *r = c->h1_req;
  if (r == NULL) {
    return h1_go_on(c);
  }
  r->last_data_ms = uv_now(c->pool->loop);
  int pause = r->cbs.data(r->user, data, len) != 0;
  if (c->closing || c->h1_req != r) {
    return -1; /* cancelled from inside the callback */
  }
  if (pause) {
    r->paused = 1; /* the rest of this read waits in h1_pending */
    return DCMF_H1RESP_PAUSE;
  }
  return 0;
}

static void h1_complete(void *user, int keep_alive) {
  struct conn *c = user;
  struct dcmf_upstream_req *r = c->h1_req;
  if (r != NULL) {
    up_inflight_end(c, r, DCMF_UPSTREAM_OK, "complete");
  }
  c->h1_served++;
  c->origin->h1_guessed = 0; /* an HTTP/1.1 answer: the origin speaks it */
  if (!keep_alive) {
    c->ready = 0; /* closed after this read */
  }
  c->idle_since_ms = uv_now(c->pool->loop);
}

static const struct dcmf_h1resp_callbacks h1_cbs = {
    .head = h1_head,
    .body = h1_body,
    .complete = h1_complete,
};

/* Returns 1 if |data| holds nothing but CR and LF (which an HTTP/1.1
 * client ignores between responses). */
static int h1_only_crlf(const uint8_t *data, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (data[i] != '\r' && data[i] != '\n') {
      return 0;
    }
  }
  return 1;
}

void up_h1_send(struct conn *c, struct dcmf_upstream_req *r) {
  struct dcmf_buf out = {0};
  dcmf_buf_printf(&out, "%s %s HTTP/1.1\r\nHost: %s\r\n", r->method, r->path,
                  c->origin->authority);
  const char *h = r->headers.data;
  for (size_t i = 0; i < r->n_headers; i++) {
    const char *v = h + strlen(h) + 1;
    dcmf_buf_printf(&out, "%s: %s\r\n", h, v);
    h = v + strlen(v) + 1;
  }
  if (r->body.len > 0 || strcmp(r->method, "POST") == 0 ||
      strcmp(r->method, "PUT") == 0) {
    dcmf_buf_printf(&out, "Content-Length: %zu\r\n", r->body.len);
  }
  dcmf_buf_append(&out, "\r\n", 2);
  dcmf_buf_append(&out, r->body.data ? r->body.data : "", r->body.len);
  dcmf_h1resp_init(&c->h1, &h1_cbs, c);
  dcmf_h1resp_reset(&c->h1, strcmp(r->method, "HEAD") == 0);
  c->h1_req = r;
  c->h1_got = 0;
  r->conn = c;
  r->next = c->inflight;
  c->inflight = r;
  if (!r->retried) {
    /* A retry is still timed from the first send: the response timeout
     * bounds both attempts together. */
    r->sent_ms = uv_now(c->pool->loop);
  }
  up_conn_write(c, out.data, out.len);
  dcmf_buf_free(&out);
}

/* Feeds the engine (resuming it if paused) and acts on how it stops. */
static void h1_run(struct conn *c, const uint8_t *data, size_t len) {
  size_t n = 0;
  switch (dcmf_h1resp_feed(&c->h1, data, len, &n)) {
  case DCMF_H1RESP_NEED_MORE:
    return;
  case DCMF_H1RESP_PAUSED:
    /* Keep what the engine did not take until the caller resumes. */
    if (n < len) {
      dcmf_buf_append(&c->h1_pending, data + n, len - n);
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    return;
  case DCMF_H1RESP_ERROR:
    if (!c->closing) {
      up_conn_fail(c, dcmf_h1resp_get_reason(&c->h1));
    }
    return;
  case DCMF_H1RESP_COMPLETE:
    break;
  }
  if (c->closing) {
    return;
  }
  if (!c->ready || (n < len && !h1_only_crlf(data + n, len - n))) {
    /* Connection: close after the response, or more bytes than were
     * asked for: they would be taken for the next response. */
    up_conn_close(c);
  } else {
    up_dispatch_soon(c->pool); /* idle again: next request */
  }
}

void up_h1_feed(struct conn *c, const uint8_t *data, size_t len) {
  if (c->h1_req != NULL && len > 0) {
    c->h1_got = 1; /* the request can no longer be sent again */
  }
  if (c->h1_req == NULL) {
    /* Idle: nothing was asked. */
    if (!h1_only_crlf(data, len)) {
      up_conn_close(c);
    }
    return;
  }
  if (dcmf_h1resp_get_state(&c->h1) == DCMF_H1RESP_PAUSED) {
    /* More plaintext of this TLS read: it waits with the rest. */
    dcmf_buf_append(&c->h1_pending, data, len);
    return;
  }
  h1_run(c, data, len);
}

void up_h1_resume(struct conn *c) {
  struct dcmf_buf pending = c->h1_pending;
  memset(&c->h1_pending, 0, sizeof(c->h1_pending));
  if (c->h1_req != NULL) {
    h1_run(c, (const uint8_t *)pending.data, pending.len);
  }
  dcmf_buf_free(&pending);
  if (!c->closing && c->h1_pending.len == 0) {
    up_read_start(c);
  }
}

void up_h1_eof(struct conn *c) {
  /* A response without Content-Length or chunking ends with the
   * connection (RFC 9112 6.3): that is its normal end, not a failure. */
  if (c->h1_req != NULL &&
      dcmf_h1resp_eof(&c->h1) == DCMF_H1RESP_COMPLETE) {
    up_conn_close(c);
    return;
  }
  up_conn_fail(c, "closed by the upstream");
}
