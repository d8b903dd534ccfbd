/* HTTP/2 toward upstreams (nghttp2 client sessions), and the choice
 * between HTTP/2 and HTTP/1.1 on an h2c connection. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errors.h"
#include "upstream_int.h"
/* ---- HTTP/2 --------------------------------------------------------------- */

static ssize_t h2_body_read(nghttp2_session *s, int32_t id, uint8_t *buf,
                            size_t len, uint32_t *flags,
                            nghttp2_data_source *src, void *user) {
  (void)s;
  (void)id;
  (void)user;
  struct dcmf_upstream_req *r = src->ptr;
  size_t n = r->body.len - r->body_off;
  n = n < len ? n : len;
  memcpy(buf, r->body.data + r->body_off, n);
  r->body_off += n;
  if (r->body_off == r->body.len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return (ssize_t)n;
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f,
                        const uint8_t *name, size_t nlen,
                        const uint8_t *value, size_t vlen, uint8_t flags,
                        void *user) {
  (void)flags;
  (void)user;
  struct dcmf_upstream_req *r =
      nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (r == NULL || r->head_done) {
    return 0; /* trailers are not passed on */
  }
  if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
    r->status = atoi((const char *)value);
  } else if (nlen > 0 && name[0] != ':') {
    up_resp_header_add(r, (const char *)name, nlen, (const char *)value, vlen);
  }
  return 0;
}

static int h2_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f,
                            void *user) {
  (void)user;
  if (f->hd.type != NGHTTP2_HEADERS ||
      f->headers.cat != NGHTTP2_HCAT_RESPONSE) {
    return 0;
  }
  struct dcmf_upstream_req *r =
      nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (r == NULL || r->head_done || r->status < 200) {
    return 0; /* 1xx heads are skipped */
  }
  int64_t length = -1;
  for (size_t i = 0; i < r->n_resp; i++) {
    if (strcasecmp(r->resp_names.data + r->resp_offsets[i][0],
                   "content-length") == 0) {
      length = strtoll(r->resp_values.data + r->resp_offsets[i][1], NULL, 10);
    }
  }
  if (strcmp(r->method, "HEAD") == 0) {
    length = 0;
  }
  up_req_head(r, length);
  return 0;
}

static int h2_on_data(nghttp2_session *s, uint8_t flags, int32_t id,
                      const uint8_t *data, size_t len, void *user) {
  (void)flags;
  (void)user;
  struct dcmf_upstream_req *r = nghttp2_session_get_stream_user_data(s, id);
  if (r == NULL) {
    nghttp2_session_consume(s, id, len);
    return 0;
  }
  /* Flow control: the stream's bytes are acknowledged only while the
   * caller keeps up, so a paused response stops the upstream within one
   * stream window (H2_WINDOW). The connection's window is given back at
   * once: held by a paused stream it would stall every other stream of
   * the connection, i.e. other phones' requests to the same origin. */
  nghttp2_session_consume_connection(s, len);
  r->last_data_ms = uv_now(r->pool->loop);
  if (r->paused) {
    r->unconsumed += len;
  } else {
    nghttp2_session_consume_stream(s, id, len);
  }
  if (r->cbs.data(r->user, data, len) != 0) {
    r->paused = 1;
  }
  return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t id, uint32_t error,
                       void *user) {
  (void)user;
  struct dcmf_upstream_req *r = nghttp2_session_get_stream_user_data(s, id);
  if (r == NULL) {
    return 0;
  }
  struct conn *c = r->conn;
  if (error == NGHTTP2_REFUSED_STREAM && up_req_refused(c, r)) {
    return 0;
  }
  if (error == NGHTTP2_NO_ERROR && r->head_done) {
    up_inflight_end(c, r, DCMF_UPSTREAM_OK, "complete");
  } else {
    up_inflight_end(c, r,
                 r->head_done ? DCMF_UPSTREAM_BROKEN
                              : DCMF_UPSTREAM_UNREACHABLE,
                 nghttp2_http2_strerror(error));
  }
  return 0;
}

int up_h2_start(struct conn *c) {
  nghttp2_session_callbacks *cbs;
  nghttp2_option *opt;
  if (nghttp2_session_callbacks_new(&cbs) != 0) {
    return DCMF_ERR_NOMEM;
  }
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return DCMF_ERR_NOMEM;
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_close);
  int rv = nghttp2_session_client_new2(&c->h2, cbs, c, opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  if (rv != 0) {
    return DCMF_ERR_NOMEM;
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2);
  up_h2_flush(c);
  return 0;
}

void up_h2_flush(struct conn *c) {
  struct dcmf_buf out = {0};
  const uint8_t *data;
  ssize_t n;
  while (c->h2 != NULL &&
         uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + out.len <
             WRITE_QUEUE_LIMIT &&
         (n = nghttp2_session_mem_send(c->h2, &data)) > 0) {
    dcmf_buf_append(&out, data, (size_t)n);
  }
  if (out.len > 0) {
    up_conn_write(c, out.data, out.len);
  }
  dcmf_buf_free(&out);
}

int up_h2_send(struct conn *c, struct dcmf_upstream_req *r) {
  nghttp2_nv nva[4 + 64];
  size_t n = 0;
#define NV(nm, val, vl)                                                        \
  nva[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), strlen(nm), (vl), \
                          NGHTTP2_NV_FLAG_NONE}
  NV(":method", r->method, strlen(r->method));
  NV(":scheme", c->origin->https ? "https" : "http",
     strlen(c->origin->https ? "https" : "http"));
  NV(":authority", c->origin->authority, strlen(c->origin->authority));
  NV(":path", r->path, strlen(r->path));
  const char *h = r->headers.data;
  for (size_t i = 0; i < r->n_headers && n < sizeof(nva) / sizeof(nva[0]);
       i++) {
    const char *v = h + strlen(h) + 1;
    /* HTTP/2 field names are lower case (RFC 9113 8.2.1); ours may not
     * be, so nghttp2 copies and we lower-case in place. */
    for (char *p = (char *)h; *p; p++) {
      *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    }
    NV(h, v, strlen(v));
    h = v + strlen(v) + 1;
  }
#undef NV
  nghttp2_data_provider prd = {.source = {.ptr = r},
                               .read_callback = h2_body_read};
  r->stream_id = nghttp2_submit_request(c->h2, NULL, nva, n,
                                        r->body.len ? &prd : NULL, r);
  if (r->stream_id < 0) {
    return DCMF_ERR_SYSTEM;
  }
  r->conn = c;
  r->next = c->inflight;
  c->inflight = r;
  r->sent_ms = uv_now(c->pool->loop);
  up_h2_flush(c);
  return 0;
}

void up_conn_feed(struct conn *c, const uint8_t *data, size_t len) {
  if (c->proto == P_H1) {
    up_h1_feed(c, data, len);
    return;
  }
  /* An http:// upstream answering our h2c preface in HTTP/1 does not
   * speak h2c: remember that and retry its requests over HTTP/1.1. */
  /* An h2c server's first frame is SETTINGS (RFC 9113 3.4): anything
   * else (an HTTP/1 status line, an HTML error page) means it does not
   * speak HTTP/2 with prior knowledge. */
  if (!c->origin->https && c->origin->proto == P_UNKNOWN &&
      !c->h2_first_seen && len > 0) {
    c->h2_first_seen = 1;
    if (len < 4 || data[3] != NGHTTP2_SETTINGS) {
      up_h2c_give_up(c);
      return;
    }
  }
  ssize_t rv = nghttp2_session_mem_recv(c->h2, data, len);
  if (rv < 0) {
    if (!c->origin->https && c->origin->proto == P_UNKNOWN) {
      up_h2c_give_up(c); /* not HTTP/2 at all: try HTTP/1.1 */
      return;
    }
    /* nghttp2's reason tells a flood from a malformed frame. */
    up_conn_fail(c, nghttp2_strerror((int)rv));
    return;
  }
  if (!c->origin->https) {
    c->origin->proto = P_H2;
  }
  up_h2_flush(c);
}

void up_h2c_give_up(struct conn *c) {
  struct origin *o = c->origin;
  o->proto = P_H1;
  o->h1_guessed = 0; /* up_conn_fail sets it when nothing was said */
  while (c->inflight != NULL) {
    struct dcmf_upstream_req *r = c->inflight;
    c->inflight = r->next;
    if (c->h2 != NULL) {
      nghttp2_session_set_stream_user_data(c->h2, r->stream_id, NULL);
    }
    up_queue_push_front(o, r);
  }
  up_conn_close(c);
}
