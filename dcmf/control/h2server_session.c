/*
 * h2server_session.c - the HTTP/2 side of a control connection
 * (h2server.h): its nghttp2 session and callbacks, the streams they
 * build (headers, body, limits), and each request's dispatch to the API
 * and its response. The connection's socket, TLS and timers are
 * h2server.c's; the shared objects are h2server_int.h's.
 */
#include "h2server.h"
#include "h2server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "errors.h"

/* ---- streams ---------------------------------------------------------- */

void h2server_stream_free(struct stream *st) {
  free(st->path);
  free(st->authority);
  free(st->scheme);
  free(st->content_type);
  free(st->content_encoding);
  free(st->if_match);
  free(st->authorization);
  dcmf_buf_free(&st->body);
  dcmf_api_response_free(&st->resp);
  free(st);
}

void h2server_stream_unlink(struct conn *c, struct stream *st) {
  if (st->prev) {
    st->prev->next = st->next;
  } else {
    c->streams = st->next;
  }
  if (st->next) {
    st->next->prev = st->prev;
  }
}

static ssize_t body_read_cb(nghttp2_session *session, int32_t stream_id,
                            uint8_t *buf, size_t length, uint32_t *flags,
                            nghttp2_data_source *source, void *user) {
  (void)session;
  (void)stream_id;
  (void)user;
  struct stream *st = source->ptr;
  size_t left = st->resp.body.len - st->resp_off;
  size_t n = left < length ? left : length;
  if (n > 0) {
    memcpy(buf, st->resp.body.data + st->resp_off, n);
  }
  st->resp_off += n;
  if (st->resp_off == st->resp.body.len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return (ssize_t)n;
}

#define NV(n, v)                                                               \
  {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                   \
   NGHTTP2_NV_FLAG_NO_COPY_NAME}

/* Submits st->resp. HEAD responses keep content-length but send no body. */
static void stream_respond(struct conn *c, struct stream *st) {
  char status[8], length[24], retry_after[12];
  snprintf(status, sizeof(status), "%d", st->resp.status);
  snprintf(length, sizeof(length), "%zu", st->resp.body.len);
  nghttp2_nv nva[14] = {NV(":status", status)};
  size_t n = 1;
  if (st->resp.content_type != NULL) {
    nva[n++] = (nghttp2_nv)NV("content-type", st->resp.content_type);
  }
  if (st->resp.status != 204 && st->resp.status != 304) {
    nva[n++] = (nghttp2_nv)NV("content-length", length);
  }
  if (st->resp.location[0] != '\0') {
    nva[n++] = (nghttp2_nv)NV("location", st->resp.location);
  }
  if (st->resp.allow != NULL) {
    nva[n++] = (nghttp2_nv)NV("allow", st->resp.allow);
  }
  if (st->resp.accept_patch != NULL) {
    nva[n++] = (nghttp2_nv)NV("accept-patch", st->resp.accept_patch);
  }
  if (st->resp.accept_encoding != NULL) {
    nva[n++] = (nghttp2_nv)NV("accept-encoding", st->resp.accept_encoding);
  }
  if (st->resp.etag[0] != '\0') {
    nva[n++] = (nghttp2_nv)NV("etag", st->resp.etag);
  }
  if (st->resp.www_authenticate[0] != '\0') {
    nva[n++] = (nghttp2_nv)NV("www-authenticate", st->resp.www_authenticate);
  }
  if (st->resp.retry_after_s != 0) {
    snprintf(retry_after, sizeof(retry_after), "%u", st->resp.retry_after_s);
    nva[n++] = (nghttp2_nv)NV("retry-after", retry_after);
  }
  nva[n++] = (nghttp2_nv)NV("cache-control", "no-store");
  int head = strcmp(st->method, "HEAD") == 0;
  nghttp2_data_provider prd = {.source = {.ptr = st},
                               .read_callback = body_read_cb};
  int has_body = !head && st->resp.body.len > 0;
  st->responded = 1;
  nghttp2_submit_response(c->session, st->id, nva, n, has_body ? &prd : NULL);
}

void h2server_stream_reject(struct conn *c, struct stream *st, int status,
                            const char *detail) {
  dcmf_api_reject(c->server->api, st->method[0] ? st->method : "OTHER",
                  status, detail, &st->resp);
  st->abort_after = 1;
  stream_respond(c, st);
}

static void stream_dispatch(struct conn *c, struct stream *st) {
  if (st->responded) {
    return;
  }
  struct dcmf_api_request req = {
      .method = st->method,
      .path = st->path ? st->path : "/",
      .scheme = st->scheme,
      .authority = st->authority,
      .content_type = st->content_type,
      .content_encoding = st->content_encoding,
      .if_match = st->if_match,
      .body = (const uint8_t *)st->body.data,
      .body_len = st->body.len,
      .authorization = st->authorization,
      .client_subject = c->peer_subject[0] ? c->peer_subject : NULL,
      .client_cn = c->peer_cn[0] ? c->peer_cn : NULL,
      .now = (int64_t)time(NULL),
  };
  dcmf_api_handle(c->server->api, &req, &st->resp);
  stream_respond(c, st);
}

/* ---- nghttp2 callbacks ------------------------------------------------ */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                            void *user) {
  struct conn *c = user;
  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  struct stream *st = calloc(1, sizeof(*st));
  if (st == NULL) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  st->id = frame->hd.stream_id;
  st->started_ms = uv_now(c->server->loop);
  st->next = c->streams;
  if (c->streams) {
    c->streams->prev = st;
  }
  c->streams = st;
  nghttp2_session_set_stream_user_data(session, st->id, st);
  return 0;
}

static char *dup_value(const uint8_t *v, size_t len) {
  char *s = malloc(len + 1);
  if (s != NULL) {
    memcpy(s, v, len);
    s[len] = '\0';
  }
  return s;
}

static void set_field(char **field, const uint8_t *v, size_t len) {
  free(*field);
  *field = dup_value(v, len);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user) {
  (void)flags;
  (void)user;
  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  struct stream *st =
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (st == NULL) {
    return 0;
  }
  st->header_bytes += namelen + valuelen + 32;
  if (st->header_bytes > MAX_HEADER_BYTES) {
    st->rejected_status = 431;
    return 0;
  }
#define IS(n) (namelen == sizeof(n) - 1 && memcmp(name, n, namelen) == 0)
  if (IS(":method")) {
    size_t n = valuelen < sizeof(st->method) - 1 ? valuelen
                                                 : sizeof(st->method) - 1;
    memcpy(st->method, value, n);
    st->method[n] = '\0';
  } else if (IS(":path")) {
    set_field(&st->path, value, valuelen);
  } else if (IS(":authority") || (IS("host") && st->authority == NULL)) {
    set_field(&st->authority, value, valuelen);
  } else if (IS(":scheme")) {
    set_field(&st->scheme, value, valuelen);
  } else if (IS("content-type")) {
    set_field(&st->content_type, value, valuelen);
  } else if (IS("content-encoding")) {
    set_field(&st->content_encoding, value, valuelen);
  } else if (IS("if-match")) {
    set_field(&st->if_match, value, valuelen);
  } else if (IS("authorization")) {
    set_field(&st->authorization, value, valuelen);
  } else if (IS("content-length")) {
    /* nghttp2 has already checked that the value is a number, and resets
     * the stream with PROTOCOL_ERROR when the DATA received disagrees
     * with it (RFC 9113 8.1.1). It is optional: END_STREAM ends a body,
     * so it only lets an oversized body be refused before it arrives. */
    st->has_content_length = 1;
    char tmp[24];
    size_t n = valuelen < sizeof(tmp) - 1 ? valuelen : sizeof(tmp) - 1;
    memcpy(tmp, value, n);
    tmp[n] = '\0';
    st->content_length = strtoll(tmp, NULL, 10);
  }
#undef IS
  return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags,
                         int32_t stream_id, const uint8_t *data, size_t len,
                         void *user) {
  (void)flags;
  struct conn *c = user;
  struct stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
  if (st == NULL || st->responded) {
    return 0;
  }
  if (st->body.len + len > c->server->settings.max_body) {
    char detail[96];
    snprintf(detail, sizeof(detail), "the body is larger than %zu bytes",
             c->server->settings.max_body);
    h2server_stream_reject(c, st, 413, detail);
    return 0;
  }
  if (dcmf_buf_append(&st->body, data, len) != 0) {
    h2server_stream_reject(c, st, 500, "out of memory");
  }
  return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user) {
  (void)session;
  struct conn *c = user;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
    return 0;
  }
  struct stream *st =
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (st == NULL || st->responded) {
    return 0;
  }
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (st->rejected_status == 431) {
      h2server_stream_reject(c, st, 431,
                             "the request headers are too large");
      return 0;
    }
    if (st->has_content_length &&
        (unsigned long long)st->content_length > c->server->settings.max_body) {
      char detail[96];
      snprintf(detail, sizeof(detail),
               "content-length exceeds the limit of %zu bytes",
               c->server->settings.max_body);
      h2server_stream_reject(c, st, 413, detail);
      return 0;
    }
  }
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
    stream_dispatch(c, st);
  }
  return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user) {
  (void)user;
  if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    return 0;
  }
  struct stream *st =
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (st != NULL && st->abort_after) {
    /* RFC 9113 8.1: the response is complete, so ask the client to stop
     * sending the rest of a request we will not read. */
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id,
                              NGHTTP2_NO_ERROR);
  }
  return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id,
                           uint32_t error_code, void *user) {
  (void)error_code;
  struct conn *c = user;
  struct stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
  if (st != NULL) {
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    h2server_stream_unlink(c, st);
    h2server_stream_free(st);
  }
  return 0;
}

int h2server_session_new(struct conn *c) {
  nghttp2_session_callbacks *cbs;
  if (nghttp2_session_callbacks_new(&cbs) != 0) {
    return DCMF_ERR_NOMEM;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
                                                          on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
                                                            on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                         on_stream_close);
  int rv = nghttp2_session_server_new(&c->session, cbs, c);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    return DCMF_ERR_NOMEM;
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
  };
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv,
                          sizeof(iv) / sizeof(iv[0]));
  return 0;
}
