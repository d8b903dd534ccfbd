#include "h2server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "errors.h"
#include "tlspump.h"

#define MAX_HEADER_BYTES 16384
#define MAX_CONCURRENT_STREAMS 128
/* Stop producing frames while this much is queued toward a slow client. */
#define WRITE_QUEUE_LIMIT (1u << 20)
/* After an idle GOAWAY, how long the last frames may take to leave. */
#define GOAWAY_GRACE_MS 1000

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

static void conn_close(struct conn *c);
static void conn_close_when_flushed(struct conn *c);
static void conn_flush(struct conn *c);
static void server_maybe_done(struct dcmf_h2server *s);

/* ---- streams ---------------------------------------------------------- */

static void stream_free(struct stream *st) {
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

static void stream_unlink(struct conn *c, struct stream *st) {
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
  char status[8], length[24];
  snprintf(status, sizeof(status), "%d", st->resp.status);
  snprintf(length, sizeof(length), "%zu", st->resp.body.len);
  nghttp2_nv nva[13] = {NV(":status", status)};
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
  nva[n++] = (nghttp2_nv)NV("cache-control", "no-store");
  int head = strcmp(st->method, "HEAD") == 0;
  nghttp2_data_provider prd = {.source = {.ptr = st},
                               .read_callback = body_read_cb};
  int has_body = !head && st->resp.body.len > 0;
  st->responded = 1;
  nghttp2_submit_response(c->session, st->id, nva, n, has_body ? &prd : NULL);
}

static void stream_reject(struct conn *c, struct stream *st, int status,
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
    stream_reject(c, st, 413, detail);
    return 0;
  }
  if (dcmf_buf_append(&st->body, data, len) != 0) {
    stream_reject(c, st, 500, "out of memory");
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
      stream_reject(c, st, 431, "the request headers are too large");
      return 0;
    }
    if (st->has_content_length &&
        (unsigned long long)st->content_length > c->server->settings.max_body) {
      char detail[96];
      snprintf(detail, sizeof(detail),
               "content-length exceeds the limit of %zu bytes",
               c->server->settings.max_body);
      stream_reject(c, st, 413, detail);
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
    stream_unlink(c, st);
    stream_free(st);
  }
  return 0;
}

/* ---- connection I/O --------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  struct conn *c = req->data;
  free(req);
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (c->close_when_flushed) {
    conn_close_when_flushed(c);
  } else if (!c->closing) {
    conn_flush(c);
  }
}

/* Queues |len| bytes on the socket (copied). */
static int conn_write_raw(struct conn *c, const void *data, size_t len) {
  uv_write_t *req = malloc(sizeof(*req) + len);
  if (req == NULL) {
    return DCMF_ERR_NOMEM;
  }
  char *copy = (char *)(req + 1);
  memcpy(copy, data, len);
  req->data = c;
  uv_buf_t buf = uv_buf_init(copy, (unsigned int)len);
  if (uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
    free(req);
    return DCMF_ERR_SYSTEM;
  }
  return 0;
}

/* Moves the records the TLS pump made onto the socket. */
static int conn_drain_tls(struct conn *c) {
  uint8_t buf[16384];
  size_t n;
  while ((n = dcmf_tlspump_drain(&c->tls, buf, sizeof(buf))) > 0) {
    if (conn_write_raw(c, buf, n) != 0) {
      return DCMF_ERR_SYSTEM;
    }
  }
  return 0;
}

static void conn_flush(struct conn *c) {
  if (c->closing || c->close_when_flushed) {
    return;
  }
  if (c->tls_on && dcmf_tlspump_get_state(&c->tls) != DCMF_TLSPUMP_OPEN) {
    return; /* frames wait in nghttp2 until the TLS handshake is done */
  }
  struct dcmf_buf out = {0};
  while (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) +
             out.len < WRITE_QUEUE_LIMIT) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(c->session, &data);
    if (n < 0) {
      dcmf_buf_free(&out);
      conn_close(c);
      return;
    }
    if (n == 0) {
      break;
    }
    if (dcmf_buf_append(&out, data, (size_t)n) != 0) {
      dcmf_buf_free(&out);
      conn_close(c);
      return;
    }
  }
  int rv = 0;
  if (out.len > 0) {
    if (c->tls_on) {
      rv = dcmf_tlspump_write(&c->tls, (const uint8_t *)out.data, out.len) == 0
               ? conn_drain_tls(c)
               : DCMF_ERR_SYSTEM;
    } else {
      rv = conn_write_raw(c, out.data, out.len);
    }
  }
  dcmf_buf_free(&out);
  if (rv != 0) {
    conn_close(c);
  } else if (!nghttp2_session_want_read(c->session) &&
             !nghttp2_session_want_write(c->session)) {
    /* GOAWAY (ours or the peer's) is done: let the last frames out. */
    conn_close_when_flushed(c);
  }
}

/* Arms the connection's one timer at its earliest deadline: the oldest
 * incomplete request, or the idle limit when nothing is in flight. */
static void conn_arm_timer(struct conn *c);

static void on_timer(uv_timer_t *t) {
  struct conn *c = t->data;
  struct dcmf_h2server *s = c->server;
  uint64_t now = uv_now(s->loop);
  int busy = 0;
  for (struct stream *st = c->streams; st; st = st->next) {
    if (st->responded) {
      continue;
    }
    busy = 1;
    if (now - st->started_ms >= s->settings.request_timeout_ms) {
      s->metrics->control_timeouts_total++;
      DCMF_LOGI(s->log, "h2", "request on stream %d timed out", st->id);
      stream_reject(c, st, 408,
                    "the request was not completed in time");
    }
  }
  /* Idle means no request is still arriving. Streams whose responses a
   * client does not read (flow control) do not keep it alive. */
  if (!busy && c->goaway_ms == 0 &&
      now - c->last_activity_ms >= s->settings.idle_timeout_ms) {
    s->metrics->control_timeouts_total++;
    c->goaway_ms = now;
    nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
  } else if (c->goaway_ms != 0 && now - c->goaway_ms >= GOAWAY_GRACE_MS) {
    conn_close(c); /* the client never let the last frames out */
    return;
  }
  conn_flush(c);
  if (!c->closing) {
    conn_arm_timer(c);
  }
}

static void conn_arm_timer(struct conn *c) {
  struct dcmf_h2server *s = c->server;
  uint64_t deadline = UINT64_MAX;
  int busy = 0;
  for (struct stream *st = c->streams; st; st = st->next) {
    uint64_t d = st->started_ms + s->settings.request_timeout_ms;
    if (!st->responded) {
      busy = 1;
      deadline = d < deadline ? d : deadline;
    }
  }
  uint64_t idle = c->goaway_ms != 0
                      ? c->goaway_ms + GOAWAY_GRACE_MS
                      : c->last_activity_ms + s->settings.idle_timeout_ms;
  if ((c->goaway_ms != 0 || !busy) && idle < deadline) {
    deadline = idle;
  }
  uint64_t now = uv_now(s->loop);
  uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

/* Keeps the subject and CN of the client certificate the handshake
 * verified (mutual TLS), for the access checks of every request. */
static void conn_peer_identity(struct conn *c) {
  X509 *peer = dcmf_tlspump_get_verified_peer(&c->tls);
  if (peer == NULL) {
    return;
  }
  const X509_NAME *name = X509_get_subject_name(peer);
  BIO *b = BIO_new(BIO_s_mem());
  if (b != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
    int n = BIO_read(b, c->peer_subject, sizeof(c->peer_subject) - 1);
    /* A subject longer than the buffer is not kept at all: a cut one
     * must never be compared with the allow-list (fail closed). */
    c->peer_subject[n > 0 && BIO_pending(b) == 0 ? n : 0] = '\0';
  }
  BIO_free(b);
  /* The last CN is the most specific one. */
  int i = -1, last = -1;
  while ((i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0) {
    last = i;
  }
  unsigned char *utf8 = NULL;
  int len =
      last < 0
          ? -1
          : ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
                                           X509_NAME_get_entry(name, last)));
  if (len > 0 && (size_t)len < sizeof(c->peer_cn) &&
      memchr(utf8, '\0', (size_t)len) == NULL) {
    memcpy(c->peer_cn, utf8, (size_t)len);
    c->peer_cn[len] = '\0';
  }
  OPENSSL_free(utf8);
}

/* Feeds plaintext HTTP/2 bytes to nghttp2. Returns 0 or -1 to close. */
static int conn_feed(struct conn *c, const uint8_t *data, size_t len) {
  ssize_t rv = nghttp2_session_mem_recv(c->session, data, len);
  if (rv < 0) {
    DCMF_LOGD(c->server->log, "h2", "closing connection: %s",
              nghttp2_strerror((int)rv));
    if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC && !c->tls_on) {
      /* Most likely an HTTP/1.1 client: tell it why, as a problem like
       * every other error (TS 29.500 5.2.7), then hang up. */
      static const char body[] =
          "{\"status\":505,\"title\":\"HTTP Version Not Supported\","
          "\"detail\":\"dcmfd speaks HTTP/2 only (h2c with prior knowledge, "
          "or h2 over TLS)\"}";
      char msg[512];
      int n = snprintf(msg, sizeof(msg),
                       "HTTP/1.1 505 HTTP Version Not Supported\r\n"
                       "Content-Type: application/problem+json\r\n"
                       "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                       sizeof(body) - 1, body);
      if (n > 0 && (size_t)n < sizeof(msg) &&
          conn_write_raw(c, msg, (size_t)n) == 0) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        conn_close_when_flushed(c);
        return -2;
      }
    }
    return -1;
  }
  return 0;
}

static int conn_read_tls(struct conn *c, const char *data, size_t len) {
  int was_open = dcmf_tlspump_get_state(&c->tls) == DCMF_TLSPUMP_OPEN;
  if (dcmf_tlspump_feed(&c->tls, (const uint8_t *)data, len) != 0) {
    return -1;
  }
  if (!was_open) {
    enum dcmf_tlspump_state st = dcmf_tlspump_get_state(&c->tls);
    conn_drain_tls(c); /* the next flight, or the alert */
    if (st == DCMF_TLSPUMP_FAILED) {
      uint64_t *refused = c->server->metrics->control_auth_refused;
      switch (dcmf_tlspump_get_failure(&c->tls)) {
      case DCMF_TLSPUMP_FAIL_VERIFY:
        refused[DCMF_AUTH_UNTRUSTED_CLIENT_CERT]++;
        DCMF_LOGI(c->server->log, "auth",
                  "TLS handshake failed: client certificate: %s",
                  X509_verify_cert_error_string(
                      dcmf_tlspump_get_verify_result(&c->tls)));
        break;
      case DCMF_TLSPUMP_FAIL_NO_PEER_CERT:
        refused[DCMF_AUTH_NO_CLIENT_CERT]++;
        DCMF_LOGI(c->server->log, "auth",
                  "TLS handshake failed: no client certificate");
        break;
      default:
        DCMF_LOGD(c->server->log, "h2", "TLS handshake failed: %s",
                  dcmf_tlspump_get_reason(&c->tls));
        break;
      }
      /* Let the alert reach the client, so it learns why. */
      uv_read_stop((uv_stream_t *)&c->tcp);
      conn_close_when_flushed(c);
      return -2;
    }
    if (st == DCMF_TLSPUMP_HANDSHAKE) {
      return 0;
    }
    const uint8_t *alpn = NULL;
    size_t alpn_len = 0;
    dcmf_tlspump_get_alpn(&c->tls, &alpn, &alpn_len);
    if (alpn_len != 0 && (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0)) {
      return -1;
    }
    conn_peer_identity(c);
  }
  uint8_t plain[16384];
  for (;;) {
    size_t n = 0;
    int rv = dcmf_tlspump_read(&c->tls, plain, sizeof(plain), &n);
    if (n == 0) {
      conn_drain_tls(c);
      /* A protocol error, or the client's close_notify: hang up. */
      return rv != 0 || dcmf_tlspump_get_state(&c->tls) != DCMF_TLSPUMP_OPEN
                 ? -1
                 : 0;
    }
    rv = conn_feed(c, plain, n);
    if (rv != 0) {
      return rv;
    }
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct conn *c = h->data;
  *buf = uv_buf_init(c->readbuf, sizeof(c->readbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = stream->data;
  if (nread == 0) {
    return;
  }
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->last_activity_ms = uv_now(c->server->loop);
  int rv = c->tls_on
               ? conn_read_tls(c, buf->base, (size_t)nread)
               : conn_feed(c, (const uint8_t *)buf->base, (size_t)nread);
  if (rv == -2) {
    return; /* an HTTP/1 client or a failed handshake: winding down */
  }
  if (rv != 0) {
    conn_close(c);
    return;
  }
  conn_flush(c);
  if (!c->closing) {
    conn_arm_timer(c);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  if (--c->handles_open > 0) {
    return;
  }
  struct dcmf_h2server *s = c->server;
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    s->conns = c->next;
  }
  if (c->next) {
    c->next->prev = c->prev;
  }
  nghttp2_session_del(c->session); /* frees streams via on_stream_close */
  while (c->streams) {
    struct stream *st = c->streams;
    stream_unlink(c, st);
    stream_free(st);
  }
  dcmf_tlspump_free(&c->tls);
  free(c);
  s->metrics->control_connections_open--;
  server_maybe_done(s);
}

static void conn_close(struct conn *c) {
  if (c->closing) {
    return;
  }
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void conn_close_when_flushed(struct conn *c) {
  c->close_when_flushed = 1;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
    conn_close(c);
  }
}

static int conn_session_new(struct conn *c) {
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

static void on_connection(uv_stream_t *listener, int status) {
  struct dcmf_h2server *s = listener->data;
  if (status < 0 || s->stopping) {
    return;
  }
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return;
  }
  c->server = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles_open = 2;
  c->next = s->conns;
  if (s->conns) {
    s->conns->prev = c;
  }
  s->conns = c;
  s->metrics->control_connections_total++;
  s->metrics->control_connections_open++;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
      conn_session_new(c) != 0) {
    conn_close(c);
    return;
  }
  if (s->settings.tls != NULL) {
    if (dcmf_tlspump_init(&c->tls, s->settings.tls, DCMF_TLSPUMP_SERVER,
                          NULL) != 0) {
      conn_close(c);
      return;
    }
    c->tls_on = 1;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->last_activity_ms = uv_now(s->loop);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  conn_arm_timer(c);
}

int dcmf_h2server_start(struct dcmf_h2server **out, uv_loop_t *loop,
                        const struct dcmf_h2server_settings *settings,
                        struct dcmf_api *api, const struct dcmf_log *log,
                        struct dcmf_metrics *metrics) {
  struct dcmf_h2server *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    return DCMF_ERR_NOMEM;
  }
  s->loop = loop;
  s->settings = *settings;
  s->api = api;
  s->log = log;
  s->metrics = metrics;
  struct sockaddr_storage addr;
  int rv = uv_ip4_addr(settings->host, settings->port,
                       (struct sockaddr_in *)&addr);
  if (rv != 0) {
    rv = uv_ip6_addr(settings->host, settings->port,
                     (struct sockaddr_in6 *)&addr);
  }
  if (rv == 0) {
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listener_open = 1;
    rv = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (rv == 0) {
      rv = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    }
  }
  if (rv != 0) {
    /* Nothing is listening; close what was opened and report. */
    s->stopping = 1;
    if (s->listener_open) {
      uv_close((uv_handle_t *)&s->listener, NULL);
      uv_run(loop, UV_RUN_NOWAIT);
    }
    free(s);
    return rv;
  }
  *out = s;
  return 0;
}

static void server_maybe_done(struct dcmf_h2server *s) {
  if (!s->stopping || s->conns != NULL || s->listener_open) {
    return;
  }
  void (*done)(void *) = s->done;
  void *user = s->done_user;
  free(s);
  if (done != NULL) {
    done(user);
  }
}

static void on_listener_closed(uv_handle_t *h) {
  struct dcmf_h2server *s = h->data;
  s->listener_open = 0;
  server_maybe_done(s);
}

void dcmf_h2server_stop(struct dcmf_h2server *s, void (*done)(void *),
                        void *user) {
  s->stopping = 1;
  s->done = done;
  s->done_user = user;
  for (struct conn *c = s->conns; c; c = c->next) {
    if (!c->closing && !c->close_when_flushed) {
      nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
      conn_flush(c);
      /* A client that never reads must not hold up shutdown. */
      if (!c->closing) {
        conn_close_when_flushed(c);
      }
    }
  }
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

int dcmf_h2server_tls_client_ca(SSL_CTX *ctx, const char *ca_path, char *err,
                                size_t errlen) {
  STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_path);
  if (names == NULL || SSL_CTX_load_verify_locations(ctx, ca_path, NULL) != 1) {
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    ERR_clear_error();
    snprintf(err, errlen,
             "control-client-ca %s: not a readable PEM CA certificate",
             ca_path);
    return DCMF_ERR_INVALID;
  }
  SSL_CTX_set_client_CA_list(ctx, names); /* the context owns |names| */
  /* TS 33.501 13.1: no certificate, or one the CA did not issue, ends the
   * handshake; the subject allow-list is checked per request. */
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     NULL);
  /* Resumed sessions keep the verified peer; OpenSSL needs an id context
   * to resume at all once client certificates are requested. */
  static const unsigned char sid_ctx[] = "dcmf-control";
  SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
  return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  static const unsigned char h2[] = {2, 'h', '2'};
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, h2, sizeof(h2), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
  }
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *dcmf_h2server_tls_ctx(const char *cert_path, const char *key_path,
                               char *err, size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) {
    snprintf(err, errlen, "cannot create a TLS context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
    snprintf(err, errlen, "control-cert %s: not a readable PEM certificate",
             cert_path);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
    snprintf(err, errlen, "control-key %s: not a readable PEM key", key_path);
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    snprintf(err, errlen, "control-key %s does not match control-cert %s",
             key_path, cert_path);
    goto fail;
  }
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  return ctx;
fail:
  ERR_clear_error();
  SSL_CTX_free(ctx);
  return NULL;
}
