/* HTTP/1.1 toward upstreams: requests written by hand, responses parsed
 * by http_parser (Debian's libhttp-parser). */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "upstream_int.h"
/* ---- HTTP/1.1 ---------------------------------------------------------- */

static int h1_on_header_field(http_parser *hp, const char *at, size_t len) {
  struct conn *c = hp->data;
  struct dcmf_upstream_req *r = c->h1_req;
  if (r == NULL) {
    return 0;
  }
  /* Field names may arrive in pieces; a new name starts after a value. */
  if (c->h1_last_was_value || r->n_resp == 0) {
    c->h1_dropping = up_resp_header_add(r, at, len, "", 0) != 0;
  } else if (!c->h1_dropping) {
    r->resp_names.len--; /* drop the NUL, extend the name */
    dcmf_buf_append(&r->resp_names, at, len);
    dcmf_buf_append(&r->resp_names, "", 1);
  }
  c->h1_last_was_value = 0;
  return 0;
}

static int h1_on_header_value(http_parser *hp, const char *at, size_t len) {
  struct conn *c = hp->data;
  struct dcmf_upstream_req *r = c->h1_req;
  if (r == NULL || r->n_resp == 0 || c->h1_dropping) {
    c->h1_last_was_value = 1;
    return 0;
  }
  /* The value is the last string of resp_values: extend it. */
  r->resp_values.len--;
  dcmf_buf_append(&r->resp_values, at, len);
  dcmf_buf_append(&r->resp_values, "", 1);
  c->h1_last_was_value = 1;
  return 0;
}

static int h1_on_headers_complete(http_parser *hp) {
  struct conn *c = hp->data;
  struct dcmf_upstream_req *r = c->h1_req;
  if (r == NULL) {
    return 0;
  }
  r->status = hp->status_code;
  int head = strcmp(r->method, "HEAD") == 0;
  int64_t length = (hp->flags & F_CHUNKED) || hp->content_length == ULLONG_MAX
                       ? -1
                       : (int64_t)hp->content_length;
  up_req_head(r, head ? 0 : length);
  /* http_parser: 1 means "this response has no body" (HEAD). */
  return head ? 1 : 0;
}

static int h1_on_body(http_parser *hp, const char *at, size_t len) {
  struct conn *c = hp->data;
  struct dcmf_upstream_req *r = c->h1_req;
  if (r != NULL && r->cbs.data(r->user, (const uint8_t *)at, len) != 0) {
    r->paused = 1;
    http_parser_pause(hp, 1); /* the rest of this read waits in h1_pending */
  }
  return 0;
}

static int h1_on_message_complete(http_parser *hp) {
  struct conn *c = hp->data;
  struct dcmf_upstream_req *r = c->h1_req;
  if (r != NULL) {
    up_inflight_end(c, r, DCMF_UPSTREAM_OK, "complete");
  }
  if (!http_should_keep_alive(hp)) {
    c->ready = 0; /* closed after this read */
  }
  c->idle_since_ms = uv_now(c->pool->loop);
  return 0;
}

static const http_parser_settings h1_settings = {
    .on_header_field = h1_on_header_field,
    .on_header_value = h1_on_header_value,
    .on_headers_complete = h1_on_headers_complete,
    .on_body = h1_on_body,
    .on_message_complete = h1_on_message_complete,
};

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
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
  c->h1_last_was_value = 0;
  c->h1_req = r;
  r->conn = c;
  r->next = c->inflight;
  c->inflight = r;
  r->sent_ms = uv_now(c->pool->loop);
  up_conn_write(c, out.data, out.len);
  dcmf_buf_free(&out);
}

void up_h1_feed(struct conn *c, const uint8_t *data, size_t len) {
  size_t n = http_parser_execute(&c->parser, &h1_settings, (const char *)data,
                                 len);
  if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
    /* Keep what the parser did not take until the caller resumes. */
    dcmf_buf_append(&c->h1_pending, data + n, len - n);
    uv_read_stop((uv_stream_t *)&c->tcp);
    return;
  }
  if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
    up_conn_fail(c, http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
    return;
  }
  if (!c->ready && c->h1_req == NULL) {
    up_conn_close(c); /* Connection: close after the response */
  } else if (c->h1_req == NULL) {
    up_dispatch_soon(c->pool); /* idle again: next request */
  }
}

void up_h1_resume(struct conn *c) {
  http_parser_pause(&c->parser, 0);
  struct dcmf_buf pending = c->h1_pending;
  memset(&c->h1_pending, 0, sizeof(c->h1_pending));
  if (pending.len > 0) {
    up_h1_feed(c, (const uint8_t *)pending.data, pending.len);
  }
  dcmf_buf_free(&pending);
  if (!c->closing && c->h1_pending.len == 0) {
    up_read_start(c);
  }
}
