#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "urlmap.h"

/* The deadline is the pool's: a connection must be up in CONNECT_MS and
 * the response head come RESPONSE_MS after the POST went out, so no
 * delivery lasts longer than DCMF_NOTIFY_TIMEOUT_MS. A receiver on the
 * IMS AS's network connects in far less than the connect share. */
#define CONNECT_MS 1500
#define RESPONSE_MS (DCMF_NOTIFY_TIMEOUT_MS - CONNECT_MS)
/* Idle connections are kept this long for the next event. It is below
 * the keep-alive time of common servers (Node and Apache 5 s, nginx
 * 75 s): a receiver closing an idle connection just as a POST goes out
 * on it would lose that event, as a POST is never sent twice. */
#define IDLE_MS 2000
/* HTTP/1.1 connections per receiver; h2 and h2c multiplex on one. */
#define MAX_CONNECTIONS 8

struct delivery {
  struct dcmf_notify *n;
  struct dcmf_upstream_req *req;
  int status; /* of the response head; 0 before it */
  char uri[512];
  struct delivery *next, *prev;
};

struct dcmf_notify {
  struct dcmf_upstream_pool *pool;
  const struct dcmf_log *log;
  struct delivery *active;
  size_t in_flight;
  int closing;
  struct dcmf_notify_counters counters;
};

int dcmf_notify_new(struct dcmf_notify **out, uv_loop_t *loop,
                    const struct dcmf_upstream_settings *tls,
                    const struct dcmf_log *log, char *err, size_t errlen) {
  struct dcmf_notify *n = calloc(1, sizeof(*n));
  if (n == NULL) {
    return DCMF_ERR_NOMEM;
  }
  struct dcmf_upstream_settings st = {
      .ca_file = tls->ca_file,
      .client_cert = tls->client_cert,
      .client_key = tls->client_key,
      .connect_timeout_ms = CONNECT_MS,
      .response_timeout_ms = RESPONSE_MS,
      .idle_timeout_ms = IDLE_MS,
      .max_connections = MAX_CONNECTIONS,
  };
  int rv = dcmf_upstream_pool_new(&n->pool, loop, &st, log, err, errlen);
  if (rv != 0) {
    free(n);
    return rv;
  }
  n->log = log;
  *out = n;
  return 0;
}

static void delivery_unlink(struct delivery *d) {
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
}

static void on_head(void *user, int status,
                    const struct dcmf_upstream_header *headers, size_t n,
                    int64_t content_length) {
  (void)headers;
  (void)n;
  (void)content_length;
  struct delivery *d = user;
  d->status = status;
}

static int on_data(void *user, const uint8_t *data, size_t len) {
  (void)user;
  (void)data;
  (void)len;
  return 0; /* the receiver's body says nothing we use */
}

static void on_end(void *user, enum dcmf_upstream_result result,
                   const char *why) {
  struct delivery *d = user;
  struct dcmf_notify *n = d->n;
  if (result == DCMF_UPSTREAM_OK && d->status >= 200 && d->status < 300) {
    n->counters.sent++;
  } else {
    n->counters.failed++;
    if (d->status != 0) {
      DCMF_LOGW(n->log, "notify", "event to %s not delivered: answer %d",
                d->uri, d->status);
    } else {
      DCMF_LOGW(n->log, "notify", "event to %s not delivered: %s", d->uri, why);
    }
  }
  delivery_unlink(d);
  free(d);
}

static const struct dcmf_upstream_callbacks delivery_cbs = {
    .head = on_head,
    .data = on_data,
    .end = on_end,
};

void dcmf_notify_post(struct dcmf_notify *n, const char *uri,
                      const char *json) {
  struct dcmf_url url;
  if (dcmf_url_parse(uri, &url) != 0) {
    n->counters.failed++;
    DCMF_LOGW(n->log, "notify",
              "cannot deliver to %s: not an absolute http:// or https:// URI",
              uri);
    return;
  }
  if (n->in_flight >= DCMF_NOTIFY_MAX_IN_FLIGHT || n->closing) {
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
  static const struct dcmf_upstream_header headers[] = {
      {"content-type", 12, "application/json", 16},
      {"user-agent", 10, "dcmf", 4},
  };
  if (dcmf_upstream_request(n->pool, &url, "POST", headers,
                            sizeof(headers) / sizeof(headers[0]),
                            (const uint8_t *)json, strlen(json), &delivery_cbs,
                            d, &d->req) != 0) {
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
}

void dcmf_notify_stop(struct dcmf_notify *n) {
  dcmf_upstream_pool_drain(n->pool);
}

void dcmf_notify_del(struct dcmf_notify *n) {
  if (n == NULL) {
    return;
  }
  n->closing = 1;
  /* The pool ends every request at once (on_end frees each delivery) and
   * frees itself once libuv has closed its handles. */
  dcmf_upstream_pool_del(n->pool);
  free(n);
}

const struct dcmf_notify_counters *
dcmf_notify_counters(const struct dcmf_notify *n) {
  return &n->counters;
}
