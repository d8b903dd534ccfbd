#include "h2server.h"
#include "h2server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "errors.h"
#include "tlspump.h"

/* Stop producing frames while this much is queued toward a slow client. */
#define WRITE_QUEUE_LIMIT (1u << 20)
/* After an idle GOAWAY, how long the last frames may take to leave. */
#define GOAWAY_GRACE_MS 1000

static void conn_close(struct conn *c);
static void conn_close_when_flushed(struct conn *c);
static void conn_flush(struct conn *c);
static void server_maybe_done(struct dcmf_h2server *s);

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
      h2server_stream_reject(c, st, 408,
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
    h2server_stream_unlink(c, st);
    h2server_stream_free(st);
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
      h2server_session_new(c) != 0) {
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

