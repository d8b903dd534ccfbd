#include "apiclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "buf.h"
#include "errors.h"
#include "notify.h"

struct request {
  int32_t stream_id;
  char *method, *path, *content_type;
  struct dcmf_buf body; /* request body */
  size_t body_off;
  struct dcmf_buf response;
  char location[512];
  int status;
  dcmf_apiclient_cb cb;
  void *user;
  struct request *next; /* in |waiting| or, once submitted, |sent| */
};

struct dcmf_apiclient {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  uv_connect_t connect;
  nghttp2_session *session;
  int connected, closing, failed;
  struct request *waiting; /* issued before the connection was up */
  struct request *sent;    /* submitted, no response yet */
  char readbuf[16384];
};

static void request_free(struct request *r) {
  free(r->method);
  free(r->path);
  free(r->content_type);
  dcmf_buf_free(&r->body);
  dcmf_buf_free(&r->response);
  free(r);
}

static void request_done(struct request *r, int status) {
  if (r->cb != NULL) {
    r->cb(r->user, status, r->response.data ? r->response.data : "",
          r->response.len, r->location[0] ? r->location : NULL);
  }
  request_free(r);
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf,
                         size_t len, uint32_t *flags, nghttp2_data_source *src,
                         void *user) {
  (void)s;
  (void)id;
  (void)user;
  struct request *r = src->ptr;
  size_t n = r->body.len - r->body_off;
  n = n < len ? n : len;
  memcpy(buf, r->body.data + r->body_off, n);
  r->body_off += n;
  if (r->body_off == r->body.len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return (ssize_t)n;
}

static void on_write(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void flush(struct dcmf_apiclient *c) {
  struct dcmf_buf out = {0};
  const uint8_t *data;
  ssize_t n;
  while ((n = nghttp2_session_mem_send(c->session, &data)) > 0) {
    dcmf_buf_append(&out, data, (size_t)n);
  }
  if (out.len > 0) {
    uv_write_t *w = malloc(sizeof(*w) + out.len);
    if (w != NULL) {
      memcpy(w + 1, out.data, out.len);
      uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned int)out.len);
      if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(w);
      }
    }
  }
  dcmf_buf_free(&out);
}

static int submit(struct dcmf_apiclient *c, struct request *r) {
  nghttp2_nv nva[6];
  size_t n = 0;
#define NV(name, value)                                                        \
  nva[n++] = (nghttp2_nv){(uint8_t *)(name), (uint8_t *)(value),              \
                          strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE}
  char length[24];
  NV(":method", r->method);
  NV(":scheme", "http");
  NV(":path", r->path);
  NV(":authority", "dcmf");
  if (r->content_type != NULL) {
    snprintf(length, sizeof(length), "%zu", r->body.len);
    nva[n++] = (nghttp2_nv){(uint8_t *)"content-type",
                            (uint8_t *)r->content_type, 12,
                            strlen(r->content_type), NGHTTP2_NV_FLAG_NONE};
    nva[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)length,
                            14, strlen(length), NGHTTP2_NV_FLAG_NONE};
  }
#undef NV
  nghttp2_data_provider prd = {.source = {.ptr = r}, .read_callback = body_read};
  r->stream_id = nghttp2_submit_request(c->session, NULL, nva, n,
                                        r->content_type ? &prd : NULL, r);
  if (r->stream_id < 0) {
    return DCMF_ERR_SYSTEM;
  }
  r->next = c->sent;
  c->sent = r;
  return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user) {
  (void)flags;
  (void)user;
  struct request *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (r == NULL) {
    return 0;
  }
  if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
    r->status = atoi((const char *)value);
  } else if (namelen == 8 && memcmp(name, "location", 8) == 0 &&
             valuelen < sizeof(r->location)) {
    memcpy(r->location, value, valuelen);
    r->location[valuelen] = '\0';
  }
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id,
                   const uint8_t *data, size_t len, void *user) {
  (void)flags;
  (void)user;
  struct request *r = nghttp2_session_get_stream_user_data(s, id);
  if (r != NULL) {
    dcmf_buf_append(&r->response, data, len);
  }
  return 0;
}

static void unlink_sent(struct dcmf_apiclient *c, struct request *r) {
  struct request **pp = &c->sent;
  while (*pp != NULL && *pp != r) {
    pp = &(*pp)->next;
  }
  if (*pp != NULL) {
    *pp = r->next;
  }
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t error,
                    void *user) {
  struct request *r = nghttp2_session_get_stream_user_data(s, id);
  if (r != NULL) {
    unlink_sent(user, r);
    nghttp2_session_set_stream_user_data(s, id, NULL);
    request_done(r, error == 0 && r->status > 0 ? r->status
                                                : DCMF_ERR_SYSTEM);
  }
  return 0;
}

static void fail_all(struct dcmf_apiclient *c, int status) {
  while (c->waiting != NULL) {
    struct request *r = c->waiting;
    c->waiting = r->next;
    request_done(r, status);
  }
}

/* The connection is gone: no response can come for what was sent. The
 * callbacks see |failed| set, so they cannot add requests meanwhile. */
static void fail_sent(struct dcmf_apiclient *c, int status) {
  while (c->sent != NULL) {
    struct request *r = c->sent;
    c->sent = r->next;
    nghttp2_session_set_stream_user_data(c->session, r->stream_id, NULL);
    request_done(r, status);
  }
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)s;
  struct dcmf_apiclient *c = h->data;
  *b = uv_buf_init(c->readbuf, sizeof(c->readbuf));
}

static void on_closed(uv_handle_t *h) {
  struct dcmf_apiclient *c = h->data;
  nghttp2_session_del(c->session); /* fails open streams via on_close */
  free(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct dcmf_apiclient *c = s->data;
  if (n < 0 || nghttp2_session_mem_recv(c->session, (const uint8_t *)b->base,
                                        (size_t)n) < 0) {
    c->failed = 1;
    uv_read_stop(s);
    fail_sent(c, n < 0 ? (int)n : DCMF_ERR_SYSTEM);
    return;
  }
  flush(c);
}

static void on_connect(uv_connect_t *req, int status) {
  struct dcmf_apiclient *c = req->data;
  if (status < 0) {
    c->failed = 1;
    fail_all(c, status);
    return;
  }
  c->connected = 1;
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, NULL, 0);
  while (c->waiting != NULL) {
    struct request *r = c->waiting;
    c->waiting = r->next;
    if (submit(c, r) != 0) {
      request_done(r, DCMF_ERR_SYSTEM);
    }
  }
  flush(c);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int dcmf_apiclient_new(struct dcmf_apiclient **out, uv_loop_t *loop,
                       const char *host, uint16_t port) {
  struct sockaddr_storage sa;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_apiclient *c = calloc(1, sizeof(*c));
  nghttp2_session_callbacks *cbs;
  if (c == NULL || nghttp2_session_callbacks_new(&cbs) != 0) {
    free(c);
    return DCMF_ERR_NOMEM;
  }
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
  int rv = nghttp2_session_client_new(&c->session, cbs, c);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    free(c);
    return DCMF_ERR_NOMEM;
  }
  c->loop = loop;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->connect.data = c;
  if (uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&sa,
                     on_connect) != 0) {
    c->failed = 1;
  }
  *out = c;
  return 0;
}

int dcmf_apiclient_request(struct dcmf_apiclient *c, const char *method,
                           const char *path, const char *content_type,
                           const char *body, dcmf_apiclient_cb cb,
                           void *user) {
  if (c->failed || c->closing) {
    return DCMF_ERR_SYSTEM;
  }
  struct request *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    return DCMF_ERR_NOMEM;
  }
  r->method = strdup(method);
  r->path = strdup(path);
  r->content_type = content_type ? strdup(content_type) : NULL;
  r->cb = cb;
  r->user = user;
  if (body != NULL && dcmf_buf_append(&r->body, body, strlen(body)) != 0) {
    request_free(r);
    return DCMF_ERR_NOMEM;
  }
  if (!c->connected) {
    r->next = c->waiting;
    c->waiting = r;
    return 0;
  }
  if (submit(c, r) != 0) {
    request_free(r);
    return DCMF_ERR_SYSTEM;
  }
  flush(c);
  return 0;
}

void dcmf_apiclient_close(struct dcmf_apiclient *c) {
  c->closing = 1;
  fail_all(c, DCMF_ERR_SYSTEM);
  fail_sent(c, DCMF_ERR_SYSTEM);
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

int dcmf_apiclient_parse_base(const char *url, char *host, size_t cap,
                              uint16_t *port) {
  char path[8];
  char trimmed[300];
  snprintf(trimmed, sizeof(trimmed), "%s", url);
  size_t n = strlen(trimmed);
  if (n > 0 && trimmed[n - 1] == '/') {
    trimmed[n - 1] = '\0';
  }
  /* The notifier's URI reader already splits http://host:port. */
  return dcmf_notify_parse_uri(trimmed, host, cap, port, path, sizeof(path));
}
