/* h1resp.c - see h1resp.h. */
#include "h1resp.h"

#include <limits.h>
#include <string.h>

#include "errors.h"

/* Stops the engine with |err| and |why|; returns what an http_parser
 * callback returns to halt the parser. */
static int resp_fail(struct dcmf_h1resp *p, int err, const char *why) {
  if (p->state != DCMF_H1RESP_ERROR) {
    p->state = DCMF_H1RESP_ERROR;
    p->error = err;
    p->reason = why;
  }
  return -1;
}

/* Appends a piece of a name or value; returns 0 or -1 (over the limit). */
static int resp_append(struct dcmf_h1resp *p, const char *at, size_t len) {
  if (len > sizeof(p->bytes) - p->used) {
    return resp_fail(p, DCMF_ERR_TOO_LARGE, "response head too large");
  }
  memcpy(p->bytes + p->used, at, len);
  p->used += len;
  return 0;
}

static int on_message_begin(http_parser *hp) {
  struct dcmf_h1resp *p = hp->data;
  p->n_fields = 0;
  p->used = 0;
  p->in_value = 0;
  return 0;
}

/* A name may arrive in several pieces; a piece after a value (or the
 * first one) starts a new field. The field being read is always the last
 * thing in |bytes|, so a piece simply extends it. */
static int on_header_field(http_parser *hp, const char *at, size_t len) {
  struct dcmf_h1resp *p = hp->data;
  if (p->head_done) {
    return 0; /* a trailer: not kept */
  }
  if (p->in_value || p->n_fields == 0) {
    if (p->n_fields == DCMF_H1RESP_MAX_HEADERS) {
      return resp_fail(p, DCMF_ERR_TOO_LARGE, "too many response headers");
    }
    uint32_t *f = p->fields[p->n_fields++];
    f[0] = (uint32_t)p->used;
    f[1] = 0;
    f[2] = (uint32_t)p->used;
    f[3] = 0;
    p->in_value = 0;
  }
  if (resp_append(p, at, len) != 0) {
    return -1;
  }
  uint32_t *f = p->fields[p->n_fields - 1];
  f[1] += (uint32_t)len;
  f[2] = (uint32_t)p->used;
  return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len) {
  struct dcmf_h1resp *p = hp->data;
  if (p->head_done || p->n_fields == 0) {
    return 0;
  }
  p->in_value = 1;
  if (resp_append(p, at, len) != 0) {
    return -1;
  }
  p->fields[p->n_fields - 1][3] += (uint32_t)len;
  return 0;
}

/* Returns the body length the head announces (see h1resp.h), or -2 when
 * the Content-Length does not fit an int64_t. */
static int64_t resp_length(const http_parser *hp, int no_body) {
  if (no_body) {
    return 0;
  }
  if ((hp->flags & F_CHUNKED) || hp->uses_transfer_encoding ||
      hp->content_length == ULLONG_MAX) {
    return -1; /* chunked, or until the connection closes */
  }
  if (hp->content_length > (uint64_t)INT64_MAX) {
    return -2;
  }
  return (int64_t)hp->content_length;
}

static int on_headers_complete(http_parser *hp) {
  struct dcmf_h1resp *p = hp->data;
  unsigned status = hp->status_code;
  if (status == 101 || hp->upgrade) {
    return resp_fail(p, DCMF_ERR_INVALID, "unexpected protocol switch");
  }
  if (status < 100) {
    return resp_fail(p, DCMF_ERR_MALFORMED, "invalid response status");
  }
  if (hp->http_major != 1) {
    return resp_fail(p, DCMF_ERR_MALFORMED, "not an HTTP/1.x response");
  }
  if (status < 200) {
    p->informational = 1;
    return 1; /* 1xx has no body; the final response follows */
  }
  int no_body = p->head_request || status == 204 || status == 304;
  int64_t length = resp_length(hp, no_body);
  if (length == -2) {
    return resp_fail(p, DCMF_ERR_TOO_LARGE, "Content-Length too large");
  }
  struct dcmf_h1resp_header hs[DCMF_H1RESP_MAX_HEADERS];
  for (size_t i = 0; i < p->n_fields; i++) {
    const uint32_t *f = p->fields[i];
    hs[i] = (struct dcmf_h1resp_header){p->bytes + f[0], f[1],
                                        p->bytes + f[2], f[3]};
  }
  p->head_done = 1;
  if (p->cbs.head != NULL &&
      p->cbs.head(p->user, (int)status, hs, p->n_fields, length) < 0) {
    return resp_fail(p, DCMF_ERR_INVALID, "stopped by the caller");
  }
  /* http_parser: 1 means "this response has no body". */
  return no_body ? 1 : 0;
}

static int on_body(http_parser *hp, const char *at, size_t len) {
  struct dcmf_h1resp *p = hp->data;
  if (len == 0 || p->cbs.body == NULL) {
    return 0;
  }
  int rv = p->cbs.body(p->user, (const uint8_t *)at, len);
  if (rv < 0) {
    return resp_fail(p, DCMF_ERR_INVALID, "stopped by the caller");
  }
  if (rv > 0) {
    p->state = DCMF_H1RESP_PAUSED;
    http_parser_pause(hp, 1);
  }
  return 0;
}

static int on_message_complete(http_parser *hp) {
  struct dcmf_h1resp *p = hp->data;
  if (p->informational) {
    /* The final response comes next: dcmf_h1resp_feed() checks how it
     * starts before reading on. */
    p->informational = 0;
    p->prefix = 0;
    http_parser_pause(hp, 1);
    return 0;
  }
  /* Pausing stops the parser right after the response's last byte. */
  p->state = DCMF_H1RESP_COMPLETE;
  http_parser_pause(hp, 1);
  if (p->cbs.complete != NULL) {
    p->cbs.complete(p->user, http_should_keep_alive(hp) ? 1 : 0);
  }
  return 0;
}

static const http_parser_settings resp_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void dcmf_h1resp_init(struct dcmf_h1resp *p,
                      const struct dcmf_h1resp_callbacks *cbs, void *user) {
  p->cbs = *cbs;
  p->user = user;
  dcmf_h1resp_reset(p, 0);
}

void dcmf_h1resp_reset(struct dcmf_h1resp *p, int head_request) {
  http_parser_init(&p->hp, HTTP_RESPONSE);
  p->hp.data = p;
  p->state = DCMF_H1RESP_NEED_MORE;
  p->error = 0;
  p->reason = "";
  p->head_request = head_request != 0;
  p->head_done = 0;
  p->informational = 0;
  p->in_value = 0;
  p->prefix = 0;
  p->n_fields = 0;
  p->used = 0;
}

/* Lets a paused parser go on. */
static void resp_unpause(struct dcmf_h1resp *p) {
  if (p->state == DCMF_H1RESP_PAUSED) {
    http_parser_pause(&p->hp, 0);
    p->state = DCMF_H1RESP_NEED_MORE;
  }
}

/* The libhttp-parser Debian ships is built lenient: it takes "HTXY/1.1"
 * for a status line. Checks that a response starts with "HTTP/" (after
 * the empty lines http_parser skips); returns 0 or -1. */
static int resp_check_start(struct dcmf_h1resp *p, const uint8_t *data,
                            size_t len) {
  static const char start[] = "HTTP/";
  for (size_t i = 0; i < len && p->prefix < sizeof(start) - 1; i++) {
    if (p->prefix == 0 && (data[i] == '\r' || data[i] == '\n')) {
      continue;
    }
    if (data[i] != (uint8_t)start[p->prefix]) {
      return resp_fail(p, DCMF_ERR_MALFORMED, "not an HTTP/1.x response");
    }
    p->prefix++;
  }
  return 0;
}

/* Runs http_parser over |len| bytes; returns how many it took. */
static size_t resp_execute(struct dcmf_h1resp *p, const uint8_t *data,
                           size_t len) {
  if (resp_check_start(p, data, len) != 0) {
    return 0;
  }
  size_t n = http_parser_execute(&p->hp, &resp_settings, (const char *)data,
                                 len);
  n = n <= len ? n : len;
  if (p->state == DCMF_H1RESP_ERROR) {
    return n; /* a limit, or a callback stopped us */
  }
  enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
  if (e == HPE_PAUSED) {
    return n; /* PAUSED, COMPLETE, or a 1xx ended (still NEED_MORE) */
  }
  if (e == HPE_HEADER_OVERFLOW) {
    resp_fail(p, DCMF_ERR_TOO_LARGE, http_errno_description(e));
  } else if (e != HPE_OK) {
    resp_fail(p, DCMF_ERR_MALFORMED, http_errno_description(e));
  } else if (n != len) {
    /* http_parser stops early only for an upgrade, refused above. */
    resp_fail(p, DCMF_ERR_INVALID, "unexpected protocol switch");
  }
  return n;
}

enum dcmf_h1resp_state dcmf_h1resp_feed(struct dcmf_h1resp *p,
                                        const uint8_t *data, size_t len,
                                        size_t *consumed) {
  *consumed = 0;
  resp_unpause(p);
  size_t off = 0;
  /* len 0 would mean EOF to http_parser: never pass it on. */
  while (p->state == DCMF_H1RESP_NEED_MORE && off < len) {
    size_t n = resp_execute(p, data + off, len - off);
    off += n;
    if (p->state == DCMF_H1RESP_NEED_MORE) {
      if (n == 0) {
        resp_fail(p, DCMF_ERR_INVALID, "parser made no progress");
        break;
      }
      http_parser_pause(&p->hp, 0); /* after a 1xx */
    }
  }
  *consumed = off;
  return p->state;
}

enum dcmf_h1resp_state dcmf_h1resp_eof(struct dcmf_h1resp *p) {
  resp_unpause(p);
  if (p->state != DCMF_H1RESP_NEED_MORE) {
    return p->state;
  }
  if (p->head_done) {
    /* Only a body delimited by the close completes here. */
    http_parser_execute(&p->hp, &resp_settings, NULL, 0);
    if (p->state != DCMF_H1RESP_NEED_MORE) {
      return p->state;
    }
  }
  resp_fail(p, DCMF_ERR_MALFORMED, "closed before the response ended");
  return p->state;
}

enum dcmf_h1resp_state dcmf_h1resp_get_state(const struct dcmf_h1resp *p) {
  return p->state;
}

int dcmf_h1resp_get_error(const struct dcmf_h1resp *p) {
  return p->state == DCMF_H1RESP_ERROR ? p->error : 0;
}

const char *dcmf_h1resp_get_reason(const struct dcmf_h1resp *p) {
  return p->state == DCMF_H1RESP_ERROR ? p->reason : "";
}
