#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errors.h"

#define MAX_IN_FLIGHT 64
#define DELIVERY_TIMEOUT_MS 5000

struct delivery {
  struct dcmf_notify *n;
  uv_getaddrinfo_t resolve;
  uv_connect_t connect;
  uv_write_t write;
  uv_tcp_t tcp;
  uv_timer_t timer;
  int handles_open;
  int tcp_ready;
  int done;
  char uri[512];
  struct dcmf_buf request;
  char response[64];
  size_t response_len;
  struct delivery *next, *prev;
};

struct dcmf_notify {
  uv_loop_t *loop;
  const struct dcmf_log *log;
  struct delivery *active;
  size_t in_flight;
  int closing;
  struct dcmf_notify_counters counters;
};

int dcmf_notify_new(struct dcmf_notify **out, uv_loop_t *loop,
                    const struct dcmf_log *log) {
  struct dcmf_notify *n = calloc(1, sizeof(*n));
  if (n == NULL) {
    return DCMF_ERR_NOMEM;
  }
  n->loop = loop;
  n->log = log;
  *out = n;
  return 0;
}

int dcmf_notify_parse_uri(const char *uri, char *host, size_t host_cap,
                          uint16_t *port, char *path, size_t path_cap) {
  if (strncmp(uri, "http://", 7) != 0) {
    return DCMF_ERR_INVALID;
  }
  const char *auth = uri + 7;
  size_t auth_len = strcspn(auth, "/?#");
  const char *rest = auth + auth_len;
  const char *host_start = auth, *host_end;
  const char *port_str = NULL;
  if (auth_len > 0 && auth[0] == '[') {
    host_end = memchr(auth, ']', auth_len);
    if (host_end == NULL) {
      return DCMF_ERR_INVALID;
    }
    host_start = auth + 1;
    if (host_end + 1 < rest && host_end[1] == ':') {
      port_str = host_end + 2;
    }
  } else {
    host_end = memchr(auth, ':', auth_len);
    if (host_end != NULL) {
      port_str = host_end + 1;
    } else {
      host_end = rest;
    }
  }
  size_t hlen = (size_t)(host_end - host_start);
  if (hlen == 0 || hlen >= host_cap || memchr(auth, '@', auth_len)) {
    return DCMF_ERR_INVALID;
  }
  memcpy(host, host_start, hlen);
  host[hlen] = '\0';
  *port = 80;
  if (port_str != NULL) {
    unsigned long p = 0;
    const char *c = port_str;
    for (; c < rest && *c >= '0' && *c <= '9' && p <= 65535; c++) {
      p = p * 10 + (unsigned long)(*c - '0');
    }
    if (c != rest || c == port_str || p == 0 || p > 65535) {
      return DCMF_ERR_INVALID;
    }
    *port = (uint16_t)p;
  }
  const char *frag = strchr(rest, '#');
  size_t plen = frag ? (size_t)(frag - rest) : strlen(rest);
  if (plen + 2 > path_cap) {
    return DCMF_ERR_INVALID;
  }
  if (plen == 0 || rest[0] != '/') {
    path[0] = '/';
    memcpy(path + 1, rest, plen);
    path[plen + 1] = '\0';
  } else {
    memcpy(path, rest, plen);
    path[plen] = '\0';
  }
  return 0;
}

/* Drops one of the things that still refer to |d| (its handles and the
 * resolver request); the last one frees it. */
static void delivery_release(struct delivery *d) {
  if (--d->handles_open > 0) {
    return;
  }
  struct dcmf_notify *n = d->n;
  if (d->prev) {
    d->prev->next = d->next;
  } else {
    n->active = d->next;
  }
  if (d->next) {
    d->next->prev = d->prev;
  }
  n->in_flight--;
  dcmf_buf_free(&d->request);
  free(d);
  if (n->closing && n->active == NULL) {
    free(n);
  }
}

static void delivery_closed(uv_handle_t *h) {
  delivery_release(h->data);
}

/* Ends a delivery once; |ok| says whether a 2xx came back. */
static void delivery_finish(struct delivery *d, int ok, const char *why) {
  if (d->done) {
    return;
  }
  d->done = 1;
  if (ok) {
    d->n->counters.sent++;
  } else {
    d->n->counters.failed++;
    DCMF_LOGW(d->n->log, "notify", "event to %s not delivered: %s", d->uri,
              why);
  }
  uv_close((uv_handle_t *)&d->timer, delivery_closed);
  if (d->tcp_ready) {
    uv_close((uv_handle_t *)&d->tcp, delivery_closed);
  }
}

static void on_timeout(uv_timer_t *t) {
  delivery_finish(t->data, 0, "timed out");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct delivery *d = h->data;
  *buf = uv_buf_init(d->response + d->response_len,
                     (unsigned int)(sizeof(d->response) - 1 -
                                    d->response_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  struct delivery *d = s->data;
  if (nread > 0) {
    d->response_len += (size_t)nread;
    d->response[d->response_len] = '\0';
  }
  /* The status line is all we need: "HTTP/1.x 2xx". */
  if (d->response_len >= 12 || nread < 0 ||
      d->response_len == sizeof(d->response) - 1) {
    int ok = d->response_len >= 12 &&
             strncmp(d->response, "HTTP/1.", 7) == 0 && d->response[9] == '2';
    char why[80];
    snprintf(why, sizeof(why), "answer \"%.12s\"",
             d->response_len ? d->response : "(none)");
    delivery_finish(d, ok, why);
  }
}

static void on_written(uv_write_t *w, int status) {
  struct delivery *d = w->data;
  if (status < 0) {
    delivery_finish(d, 0, uv_strerror(status));
    return;
  }
  uv_read_start((uv_stream_t *)&d->tcp, on_alloc, on_read);
}

static void on_connected(uv_connect_t *c, int status) {
  struct delivery *d = c->data;
  if (d->done) {
    return;
  }
  if (status < 0) {
    delivery_finish(d, 0, uv_strerror(status));
    return;
  }
  uv_buf_t buf = uv_buf_init(d->request.data, (unsigned int)d->request.len);
  d->write.data = d;
  if (uv_write(&d->write, (uv_stream_t *)&d->tcp, &buf, 1, on_written) != 0) {
    delivery_finish(d, 0, "write failed");
  }
}

static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *ai) {
  struct delivery *d = r->data;
  if (!d->done && (status < 0 || ai == NULL)) {
    delivery_finish(d, 0, "host not resolved");
  } else if (!d->done) {
    uv_tcp_init(d->n->loop, &d->tcp);
    d->tcp.data = d;
    d->tcp_ready = 1;
    d->handles_open++;
    d->connect.data = d;
    if (uv_tcp_connect(&d->connect, &d->tcp, ai->ai_addr, on_connected) !=
        0) {
      delivery_finish(d, 0, "connect failed");
    }
  }
  uv_freeaddrinfo(ai);
  delivery_release(d); /* the resolver request is over */
}

void dcmf_notify_post(struct dcmf_notify *n, const char *uri,
                      const char *json) {
  char host[256], path[1024];
  uint16_t port;
  if (dcmf_notify_parse_uri(uri, host, sizeof(host), &port, path,
                            sizeof(path)) != 0) {
    n->counters.failed++;
    DCMF_LOGW(n->log, "notify", "cannot deliver to %s: only http:// URIs "
              "are supported", uri);
    return;
  }
  if (n->in_flight >= MAX_IN_FLIGHT || n->closing) {
    n->counters.dropped++;
    return;
  }
  struct delivery *d = calloc(1, sizeof(*d));
  if (d == NULL) {
    n->counters.dropped++;
    return;
  }
  d->n = n;
  snprintf(d->uri, sizeof(d->uri), "%s", uri);
  int bracket = strchr(host, ':') != NULL;
  if (dcmf_buf_printf(&d->request,
                      "POST %s HTTP/1.1\r\nHost: %s%s%s:%u\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n"
                      "User-Agent: dcmf\r\n\r\n%s",
                      path, bracket ? "[" : "", host, bracket ? "]" : "",
                      port, strlen(json), json) != 0) {
    free(d);
    n->counters.dropped++;
    return;
  }
  d->next = n->active;
  if (n->active) {
    n->active->prev = d;
  }
  n->active = d;
  n->in_flight++;
  uv_timer_init(n->loop, &d->timer);
  d->timer.data = d;
  d->handles_open = 2; /* the timer and the resolver request */
  uv_timer_start(&d->timer, on_timeout, DELIVERY_TIMEOUT_MS, 0);
  char service[8];
  snprintf(service, sizeof(service), "%u", port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  d->resolve.data = d;
  if (uv_getaddrinfo(n->loop, &d->resolve, on_resolved, host, service,
                     &hints) != 0) {
    delivery_finish(d, 0, "resolver refused");
    delivery_release(d);
  }
}

void dcmf_notify_del(struct dcmf_notify *n) {
  if (n == NULL) {
    return;
  }
  n->closing = 1;
  if (n->active == NULL) {
    free(n);
    return;
  }
  for (struct delivery *d = n->active; d; d = d->next) {
    uv_cancel((uv_req_t *)&d->resolve);
    delivery_finish(d, 0, "shutting down");
  }
}

const struct dcmf_notify_counters *
dcmf_notify_counters(const struct dcmf_notify *n) {
  return &n->counters;
}
