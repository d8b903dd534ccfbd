/* The control API client of the tools: whole-body requests on the
 * upstream client pool (dcmf/net/upstream.h), which speaks h2c to an
 * http:// base and h2 or HTTP/1.1 over TLS to an https:// one. */
#include "apiclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "errors.h"
#include "upstream.h"
#include "urlmap.h"

/* A tool drives the API hard (thousands of contexts at once): the
 * timeouts only catch a daemon that stopped answering. */
#define CONNECT_MS 10000
#define RESPONSE_MS 60000

struct request {
  struct dcmf_apiclient *c;
  struct dcmf_buf response;
  char location[512];
  int status;
  dcmf_apiclient_cb cb;
  void *user;
};

struct dcmf_apiclient {
  struct dcmf_upstream_pool *pool;
  struct dcmf_url base;
  int closing;
};

static void on_head(void *user, int status,
                    const struct dcmf_upstream_header *hs, size_t n,
                    int64_t content_length) {
  (void)content_length;
  struct request *r = user;
  r->status = status;
  for (size_t i = 0; i < n; i++) {
    if (hs[i].name_len == 8 && strncasecmp(hs[i].name, "location", 8) == 0 &&
        hs[i].value_len < sizeof(r->location)) {
      memcpy(r->location, hs[i].value, hs[i].value_len);
      r->location[hs[i].value_len] = '\0';
    }
  }
}

static int on_data(void *user, const uint8_t *data, size_t len) {
  struct request *r = user;
  if (dcmf_buf_append(&r->response, data, len) != 0) {
    r->status = DCMF_ERR_NOMEM; /* reported at the end */
  }
  return 0;
}

static void on_end(void *user, enum dcmf_upstream_result result,
                   const char *why) {
  (void)why;
  struct request *r = user;
  int status = r->status == DCMF_ERR_NOMEM ? DCMF_ERR_NOMEM
               : result == DCMF_UPSTREAM_OK && r->status > 0 ? r->status
                                                             : DCMF_ERR_SYSTEM;
  /* The callback may see an empty body; it is always NUL-terminated. */
  if (dcmf_buf_append(&r->response, "", 1) != 0) {
    status = DCMF_ERR_NOMEM;
  }
  if (r->cb != NULL) {
    r->cb(r->user, status, r->response.data ? r->response.data : "",
          r->response.len > 0 ? r->response.len - 1 : 0,
          r->location[0] ? r->location : NULL);
  }
  dcmf_buf_free(&r->response);
  free(r);
}

static const struct dcmf_upstream_callbacks request_cbs = {
    .head = on_head,
    .data = on_data,
    .end = on_end,
};

int dcmf_apiclient_new(struct dcmf_apiclient **out, uv_loop_t *loop,
                       const char *host, uint16_t port) {
  char text[DCMF_URL_MAX_AUTHORITY + 16];
  int v6 = strchr(host, ':') != NULL;
  snprintf(text, sizeof(text), "http://%s%s%s:%u/", v6 ? "[" : "", host,
           v6 ? "]" : "", port);
  struct dcmf_apiclient *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return DCMF_ERR_NOMEM;
  }
  if (dcmf_url_parse(text, &c->base) != 0) {
    free(c);
    return DCMF_ERR_INVALID;
  }
  struct dcmf_upstream_settings st = {
      .connect_timeout_ms = CONNECT_MS,
      .response_timeout_ms = RESPONSE_MS,
      .idle_timeout_ms = RESPONSE_MS,
      .max_connections = 8,
  };
  char err[200];
  static const struct dcmf_log quiet = {.stream = NULL};
  int rv =
      dcmf_upstream_pool_new(&c->pool, loop, &st, &quiet, err, sizeof(err));
  if (rv != 0) {
    free(c);
    return rv;
  }
  *out = c;
  return 0;
}

int dcmf_apiclient_request(struct dcmf_apiclient *c, const char *method,
                           const char *path, const char *content_type,
                           const char *body, dcmf_apiclient_cb cb, void *user) {
  if (c->closing) {
    return DCMF_ERR_SYSTEM;
  }
  struct dcmf_url url = c->base;
  if (path[0] != '/' || strlen(path) >= sizeof(url.path)) {
    return DCMF_ERR_INVALID;
  }
  snprintf(url.path, sizeof(url.path), "%s", path);
  struct request *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    return DCMF_ERR_NOMEM;
  }
  r->c = c;
  r->cb = cb;
  r->user = user;
  struct dcmf_upstream_header h = {"content-type", 12, content_type,
                                   content_type ? strlen(content_type) : 0};
  struct dcmf_upstream_req *req;
  int rv = dcmf_upstream_request(
      c->pool, &url, method, &h, content_type ? 1 : 0, (const uint8_t *)body,
      body ? strlen(body) : 0, &request_cbs, r, &req);
  if (rv != 0) {
    free(r);
  }
  return rv;
}

void dcmf_apiclient_close(struct dcmf_apiclient *c) {
  c->closing = 1;
  dcmf_upstream_pool_del(c->pool); /* fails what is outstanding */
  free(c);
}

int dcmf_apiclient_parse_base(const char *text, char *host, size_t cap,
                              uint16_t *port) {
  struct dcmf_url url;
  if (dcmf_url_parse(text, &url) != 0 || url.https ||
      strcmp(url.path, "/") != 0 || strlen(url.host) >= cap) {
    return DCMF_ERR_INVALID;
  }
  snprintf(host, cap, "%s", url.host);
  *port = url.port;
  return 0;
}
