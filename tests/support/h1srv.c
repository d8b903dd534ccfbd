#include "h1srv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tlspump.h"

struct h1srv_conn {
  uv_tcp_t tcp;
  struct h1srv *s;
  struct h1srv_conn *next, **prev;
  int tls_on;
  int goaway_sent;
  struct dcmf_tlspump tls;
  char buf[8192];
  size_t len;
  uint8_t rx[16384];
};

static void rconn_closed(uv_handle_t *h) {
  struct h1srv_conn *k = h->data;
  k->s->open_conns--;
  *k->prev = k->next;
  if (k->next != NULL) {
    k->next->prev = k->prev;
  }
  dcmf_tlspump_free(&k->tls);
  free(k);
}

static void rconn_close(struct h1srv_conn *k) {
  if (!uv_is_closing((uv_handle_t *)&k->tcp)) {
    uv_close((uv_handle_t *)&k->tcp, rconn_closed);
  }
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void raw_send(struct h1srv_conn *k, const void *data, size_t n) {
  uv_write_t *w = malloc(sizeof(*w) + n);
  assert_non_null(w);
  memcpy(w + 1, data, n);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned int)n);
  if (uv_write(w, (uv_stream_t *)&k->tcp, &b, 1, on_written) != 0) {
    free(w);
  }
}

static void tls_flush(struct h1srv_conn *k) {
  uint8_t out[16384];
  size_t n;
  while ((n = dcmf_tlspump_drain(&k->tls, out, sizeof(out))) > 0) {
    raw_send(k, out, n);
  }
}

static void send_text(struct h1srv_conn *k, const char *text) {
  size_t n = strlen(text);
  if (!k->tls_on) {
    raw_send(k, text, n);
    return;
  }
  assert_int_equal(dcmf_tlspump_write(&k->tls, (const uint8_t *)text, n), 0);
  tls_flush(k);
}

static void answer(struct h1srv_conn *k) {
  struct h1srv *s = k->s;
  if (s->raw_answer != NULL) {
    raw_send(k, s->raw_answer, strlen(s->raw_answer));
    return;
  }
  const char *body = s->body ? s->body : "";
  size_t blen = strlen(body);
  char resp[4096];
  if (!s->chunked) {
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 %d Test\r\nX-Test: yes\r\nContent-Length: %zu\r\n\r\n%s",
             s->status, blen, body);
  } else {
    size_t a = blen / 3, b = blen / 3;
    size_t c = blen - a - b;
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 %d Test\r\nX-Test: yes\r\n"
             "Transfer-Encoding: chunked\r\n\r\n"
             "%zx\r\n%.*s\r\n%zx\r\n%.*s\r\n%zx\r\n%.*s\r\n0\r\n\r\n",
             s->status, a, (int)a, body, b, (int)b, body + a, c, (int)c,
             body + a + b);
  }
  send_text(k, resp);
}

/* Takes every complete request out of the buffer. */
static void rconn_parse(struct h1srv_conn *k) {
  struct h1srv *s = k->s;
  for (;;) {
    if (k->len >= 3 && memcmp(k->buf, "PRI", 3) == 0 && s->h2_goaway) {
      /* SETTINGS (empty), then GOAWAY: last stream 0, NO_ERROR. */
      static const uint8_t frames[] = {0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 8, 7,
                                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
      if (!k->goaway_sent) {
        s->prefaces++;
        raw_send(k, frames, sizeof(frames));
        k->goaway_sent = 1;
      }
      k->len = 3; /* keeps "PRI": the rest of the HTTP/2 input is dropped */
      return;
    }
    if (k->len >= 3 && memcmp(k->buf, "PRI", 3) == 0) {
      s->prefaces++;
      send_text(k, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                   "Content-Length: 0\r\n\r\n");
      rconn_close(k);
      return;
    }
    char *end = memmem(k->buf, k->len, "\r\n\r\n", 4);
    if (end == NULL) {
      return;
    }
    size_t head = (size_t)(end + 4 - k->buf);
    const char *cl = memmem(k->buf, head, "\r\nContent-Length: ", 18);
    size_t body = cl ? strtoul(cl + 18, NULL, 10) : 0;
    if (k->len < head + body) {
      return;
    }
    if (s->n_seen < H1SRV_SEEN) {
      size_t n = head + body < sizeof(s->seen[0]) - 1 ? head + body
                                                      : sizeof(s->seen[0]) - 1;
      memcpy(s->seen[s->n_seen], k->buf, n);
      s->seen[s->n_seen][n] = '\0';
    }
    s->n_seen++;
    if (s->status != 0) {
      answer(k);
    }
    memmove(k->buf, k->buf + head + body, k->len - head - body);
    k->len -= head + body;
  }
}

static void take(struct h1srv_conn *k, const uint8_t *data, size_t n) {
  if (k->len + n >= sizeof(k->buf)) {
    rconn_close(k);
    return;
  }
  memcpy(k->buf + k->len, data, n);
  k->len += n;
  rconn_parse(k);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  (void)sz;
  struct h1srv_conn *k = h->data;
  *b = uv_buf_init((char *)k->rx, sizeof(k->rx));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  struct h1srv_conn *k = st->data;
  if (n < 0) {
    rconn_close(k);
    return;
  }
  if (!k->tls_on) {
    take(k, (const uint8_t *)b->base, (size_t)n);
    return;
  }
  dcmf_tlspump_feed(&k->tls, (const uint8_t *)b->base, (size_t)n);
  tls_flush(k);
  if (dcmf_tlspump_get_state(&k->tls) == DCMF_TLSPUMP_FAILED) {
    k->s->tls_failures++;
    rconn_close(k);
    return;
  }
  uint8_t plain[4096];
  size_t got;
  while (!uv_is_closing((uv_handle_t *)&k->tcp) &&
         dcmf_tlspump_read(&k->tls, plain, sizeof(plain), &got) == 0 &&
         got > 0) {
    take(k, plain, got);
  }
}

static void on_conn(uv_stream_t *l, int status) {
  assert_int_equal(status, 0);
  struct h1srv *s = l->data;
  struct h1srv_conn *k = calloc(1, sizeof(*k));
  assert_non_null(k);
  k->s = s;
  uv_tcp_init(l->loop, &k->tcp);
  k->tcp.data = k;
  s->open_conns++;
  s->accepted++;
  k->next = s->conns;
  k->prev = &s->conns;
  if (s->conns != NULL) {
    s->conns->prev = &k->next;
  }
  s->conns = k;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&k->tcp), 0);
  if (s->tls != NULL) {
    assert_int_equal(
        dcmf_tlspump_init(&k->tls, s->tls, DCMF_TLSPUMP_SERVER, NULL), 0);
    k->tls_on = 1;
  }
  if (s->close_on_accept) {
    rconn_close(k);
    return;
  }
  uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
}

void h1srv_start(struct h1srv *s, uv_loop_t *loop, SSL_CTX *tls, int status,
                 const char *body) {
  h1srv_start_port(s, loop, tls, status, body, 0);
}

void h1srv_start_port(struct h1srv *s, uv_loop_t *loop, SSL_CTX *tls,
                      int status, const char *body, uint16_t port) {
  memset(s, 0, sizeof(*s));
  s->tls = tls;
  s->status = status;
  s->body = body;
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", port, &sa);
  assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 16, on_conn), 0);
  struct sockaddr_storage got;
  int len = sizeof(got);
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
  s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

void h1srv_stop_listening(struct h1srv *s) {
  if (!uv_is_closing((uv_handle_t *)&s->listener)) {
    uv_close((uv_handle_t *)&s->listener, NULL);
  }
}

void h1srv_close(struct h1srv *s) {
  h1srv_stop_listening(s);
  for (struct h1srv_conn *k = s->conns; k != NULL; k = k->next) {
    rconn_close(k);
  }
}

void h1srv_reset(struct h1srv *s) {
  h1srv_stop_listening(s);
  for (struct h1srv_conn *k = s->conns; k != NULL; k = k->next) {
    uv_os_fd_t fd;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (uv_fileno((uv_handle_t *)&k->tcp, &fd) == 0) {
      assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
                       0);
    }
    rconn_close(k);
  }
}
