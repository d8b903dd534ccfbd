/*
 * httpdc.c - the HTTP/1.1 engine of httpdc.h, its input side and life
 * cycle: reason phrases, collecting a request (head, body, discarded
 * bodies, the stash while the queue is full) and handing it to the
 * backend, and the engine's state. Parsing is in httpdc_parse.c, the
 * responses in httpdc_resp.c, the repository backend in httpdc_repo.c.
 */
#include "httpdc.h"
#include "httpdc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errors.h"

#define DEFAULT_MAX_REQUEST_LINE 8192
#define DEFAULT_MAX_HEADER_BYTES 16384
#define DEFAULT_MAX_HEADERS 64
#define DEFAULT_MAX_PENDING 16

/* ---- reason phrases and small bodies ---------------------------------- */

#define REASON(code, text) {code, text, #code " " text "\n"}
static const struct {
  int status;
  const char *reason;
  const char *body; /* for error responses */
} reasons[] = {
    REASON(200, "OK"),
    REASON(201, "Created"),
    REASON(202, "Accepted"),
    REASON(204, "No Content"),
    REASON(206, "Partial Content"),
    REASON(301, "Moved Permanently"),
    REASON(302, "Found"),
    REASON(303, "See Other"),
    REASON(304, "Not Modified"),
    REASON(307, "Temporary Redirect"),
    REASON(308, "Permanent Redirect"),
    REASON(400, "Bad Request"),
    REASON(401, "Unauthorized"),
    REASON(403, "Forbidden"),
    REASON(404, "Not Found"),
    REASON(405, "Method Not Allowed"),
    REASON(406, "Not Acceptable"),
    REASON(408, "Request Timeout"),
    REASON(409, "Conflict"),
    REASON(410, "Gone"),
    REASON(411, "Length Required"),
    REASON(412, "Precondition Failed"),
    REASON(413, "Content Too Large"),
    REASON(414, "URI Too Long"),
    REASON(415, "Unsupported Media Type"),
    REASON(416, "Range Not Satisfiable"),
    REASON(417, "Expectation Failed"),
    REASON(421, "Misdirected Request"),
    REASON(422, "Unprocessable Content"),
    REASON(426, "Upgrade Required"),
    REASON(429, "Too Many Requests"),
    REASON(431, "Request Header Fields Too Large"),
    REASON(500, "Internal Server Error"),
    REASON(501, "Not Implemented"),
    REASON(502, "Bad Gateway"),
    REASON(503, "Service Unavailable"),
    REASON(504, "Gateway Timeout"),
    REASON(505, "HTTP Version Not Supported"),
};

const char *dcmf_httpdc_reason(int status) {
  for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
    if (reasons[i].status == status) {
      return reasons[i].reason;
    }
  }
  return "Unknown";
}

const char *httpdc_error_body(int status) {
  for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
    if (reasons[i].status == status) {
      return reasons[i].body;
    }
  }
  return "error\n";
}

/* ---- collecting and dispatching requests ----------------------------- */

/* Hands the complete head to the backend (or answers an error). */
/* Queues |req| and hands it to the backend. */
static void dispatch_request(struct dcmf_httpdc *h,
                             struct dcmf_httpdc_request *req,
                             const struct framing *fp, int collected) {
  struct framing f = *fp;
  int close = f.conn_close || (req->version_minor == 0 && !f.keep_alive) ||
              (f.expect_continue && f.content_length > 0);
  struct slot *sl = httpdc_slot_push(h);
  uint64_t id = sl->id;
  req->id = id;
  sl->head_only = httpdc_span_eq(req->method, req->method_len, "HEAD");
  sl->http10 = req->version_minor == 0;
  sl->close = close;
  sl->keep_alive = !close && req->version_minor == 0;
  sl->wait_body = !collected && !close && f.content_length > 0;
  if (close) {
    httpdc_close_after(h, NULL);
  } else if (!collected && f.content_length > 0) {
    h->discard_left = f.content_length;
    h->discard_id = id;
  }
  int rc = h->backend.request(h->backend.user, h, req);
  /* The callback may have closed the queue before this slot: look again. */
  sl = httpdc_slot_find(h, id);
  if (sl != NULL && !sl->answered && rc < 0) {
    httpdc_slot_error(h, sl, 500);
  }
}

static void dispatch(struct dcmf_httpdc *h) {
  struct dcmf_httpdc_request req;
  struct framing f;
  memset(&req, 0, sizeof(req));
  int st = httpdc_head_parse(h, &req, &f);
  if (st != 0) {
    httpdc_fail(h, st);
    return;
  }
  int close = f.conn_close || (req.version_minor == 0 && !f.keep_alive) ||
              (f.expect_continue && f.content_length > 0);
  if (h->s.max_request_body > 0 && f.content_length > 0 && !close) {
    if (f.content_length > h->s.max_request_body) {
      httpdc_fail(h, 413);
      return;
    }
    /* Keep the head where it is and collect the body first. */
    h->body = malloc((size_t)f.content_length);
    h->held_f = malloc(sizeof(f));
    if (h->body == NULL || h->held_f == NULL) {
      free(h->body);
      free(h->held_f);
      h->body = NULL;
      h->held_f = NULL;
      h->fatal = DCMF_ERR_NOMEM;
      return;
    }
    *h->held_f = f;
    h->held_req = req;
    h->body_len = 0;
    h->body_want = (size_t)f.content_length;
    h->collecting = 1;
    return;
  }
  dispatch_request(h, &req, &f, 0);
}

/* The collected body is complete: hand the held request over. */
static void body_collected(struct dcmf_httpdc *h) {
  h->held_req.body = h->body;
  h->held_req.body_len = h->body_len;
  h->collecting = 0;
  dispatch_request(h, &h->held_req, h->held_f, 1);
  free(h->body);
  free(h->held_f);
  h->body = NULL;
  h->held_f = NULL;
  memset(&h->held_req, 0, sizeof(h->held_req));
  h->head_len = h->line_start = h->reqline_len = h->n_lines = 0;
}

static void head_reset(struct dcmf_httpdc *h) {
  h->head_len = h->line_start = h->reqline_len = h->n_lines = 0;
}

/* Takes bytes of a request head up to and including one line end; returns
 * how many were taken. */
static size_t head_feed(struct dcmf_httpdc *h, const uint8_t *data,
                        size_t len) {
  const uint8_t *nl = memchr(data, '\n', len);
  size_t seg = nl != NULL ? (size_t)(nl - data) + 1 : len;
  if (h->reqline_len == 0) {
    if (h->head_len + seg > h->s.max_request_line) {
      httpdc_fail(h, 414);
      return len;
    }
  } else if (h->head_len - h->reqline_len + seg > h->s.max_header_bytes) {
    httpdc_fail(h, 431);
    return len;
  }
  if (h->headbuf == NULL) {
    /* Taken at the first request, not at creation: a phone may open
     * thousands of channels and send nothing on most. */
    h->headbuf = malloc(h->s.max_request_line + h->s.max_header_bytes);
    if (h->headbuf == NULL) {
      h->fatal = DCMF_ERR_NOMEM;
      return len;
    }
  }
  memcpy(h->headbuf + h->head_len, data, seg);
  h->head_len += seg;
  if (nl == NULL) {
    return seg;
  }
  size_t line_len = h->head_len - h->line_start;
  int empty =
      line_len == 1 || (line_len == 2 && h->headbuf[h->line_start] == '\r');
  if (h->reqline_len == 0) {
    if (empty) {
      head_reset(h); /* empty lines before a request line are ignored */
    } else {
      h->reqline_len = h->line_start = h->head_len;
    }
    return seg;
  }
  if (empty) {
    dispatch(h);
    if (!h->collecting) {
      head_reset(h);
    }
    return seg;
  }
  if (++h->n_lines > h->s.max_headers) {
    httpdc_fail(h, 431);
    return len;
  }
  h->line_start = h->head_len;
  return seg;
}

static void body_done(struct dcmf_httpdc *h) {
  struct slot *sl = httpdc_slot_find(h, h->discard_id);
  if (sl != NULL) {
    sl->wait_body = 0;
  }
}

/* Parses as much of |data| as the queue allows; returns the bytes taken
 * (all of them once the engine ignores input). */
static size_t consume(struct dcmf_httpdc *h, const uint8_t *data,
                      size_t len) {
  size_t pos = 0;
  while (pos < len && !h->dead && h->fatal == 0) {
    if (h->collecting) {
      size_t n = len - pos;
      if (n > h->body_want - h->body_len) {
        n = h->body_want - h->body_len;
      }
      memcpy(h->body + h->body_len, data + pos, n);
      h->body_len += n;
      pos += n;
      if (h->body_len == h->body_want) {
        body_collected(h);
      }
      continue;
    }
    if (h->discard_left > 0) {
      size_t n = len - pos;
      if ((uint64_t)n > h->discard_left) {
        n = (size_t)h->discard_left;
      }
      pos += n;
      h->discard_left -= n;
      if (h->discard_left == 0) {
        body_done(h);
      }
      continue;
    }
    if (h->count == h->s.max_pending) {
      break;
    }
    pos += head_feed(h, data + pos, len - pos);
  }
  return h->dead ? len : pos;
}

void httpdc_stash_drain(struct dcmf_httpdc *h) {
  if (h->stash == NULL) {
    return;
  }
  h->parsing = 1;
  size_t n =
      consume(h, h->stash + h->stash_off, h->stash_len - h->stash_off);
  h->parsing = 0;
  h->stash_off += n;
  if (h->dead || h->stash_off == h->stash_len) {
    httpdc_stash_free(h);
  }
}

/* ---- public API ------------------------------------------------------- */

int dcmf_httpdc_new(struct dcmf_httpdc **out,
                    const struct dcmf_httpdc_settings *settings,
                    const struct dcmf_httpdc_backend *backend) {
  struct dcmf_httpdc *h = calloc(1, sizeof(*h));
  if (h == NULL) {
    return DCMF_ERR_NOMEM;
  }
  if (settings != NULL) {
    h->s = *settings;
  }
  if (h->s.max_message_size == 0) {
    h->s.max_message_size = DCMF_HTTPDC_DEFAULT_MAX_MESSAGE_SIZE;
  }
  if (h->s.max_message_size < DCMF_HTTPDC_MIN_MESSAGE_SIZE) {
    h->s.max_message_size = DCMF_HTTPDC_MIN_MESSAGE_SIZE;
  }
  if (h->s.max_request_line == 0) {
    h->s.max_request_line = DEFAULT_MAX_REQUEST_LINE;
  }
  if (h->s.max_header_bytes == 0) {
    h->s.max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
  }
  if (h->s.max_headers == 0) {
    h->s.max_headers = DEFAULT_MAX_HEADERS;
  }
  if (h->s.max_pending == 0) {
    h->s.max_pending = DEFAULT_MAX_PENDING;
  }
  if (h->s.stream_buffer == 0) {
    h->s.stream_buffer = DCMF_HTTPDC_DEFAULT_STREAM_BUFFER;
  }
  if (h->s.stream_buffer > SIZE_MAX / 4) {
    h->s.stream_buffer = SIZE_MAX / 4; /* keeps the ring size in range */
  }
  h->backend = *backend;
  h->next_id = 1;
  h->hdrs = calloc(h->s.max_headers, sizeof(*h->hdrs));
  h->slots = calloc(h->s.max_pending, sizeof(*h->slots));
  if (h->hdrs == NULL || h->slots == NULL) {
    dcmf_httpdc_del(h);
    return DCMF_ERR_NOMEM;
  }
  *out = h;
  return 0;
}

void dcmf_httpdc_del(struct dcmf_httpdc *h) {
  if (h != NULL) {
    free(h->body);
    free(h->held_f);
    h->body = NULL;
    h->held_f = NULL;
  }
  if (h == NULL) {
    return;
  }
  if (h->slots != NULL) {
    while (h->count > 0) {
      h->count--;
      httpdc_slot_drop(h, httpdc_slot_at(h, h->count));
    }
    for (size_t i = 0; i < h->s.max_pending; i++) {
      dcmf_buf_free(&h->slots[i].head);
    }
  }
  httpdc_stash_free(h);
  free(h->slots);
  free(h->hdrs);
  free(h->headbuf);
  free(h);
}

int dcmf_httpdc_recv(struct dcmf_httpdc *h, const uint8_t *msg, size_t len) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  if (h->dead || len == 0) {
    return 0;
  }
  if (h->stash != NULL) {
    return DCMF_ERR_EXHAUSTED;
  }
  size_t n = consume(h, msg, len);
  if (h->fatal != 0) {
    return h->fatal;
  }
  if (n < len) {
    h->stash = malloc(len - n);
    if (h->stash == NULL) {
      h->fatal = DCMF_ERR_NOMEM;
      return h->fatal;
    }
    memcpy(h->stash, msg + n, len - n);
    h->stash_off = 0;
    h->stash_len = len - n;
  }
  return 0;
}

size_t dcmf_httpdc_buffered(const struct dcmf_httpdc *h) {
  size_t n = 0;
  for (size_t i = 0; i < h->count; i++) {
    const struct slot *sl = &h->slots[(h->first + i) % h->s.max_pending];
    n += sl->streamed ? sl->st.len : 0;
  }
  return n;
}

enum dcmf_httpdc_state dcmf_httpdc_get_state(const struct dcmf_httpdc *h) {
  if (!h->dead && h->fatal == 0) {
    return DCMF_HTTPDC_OPEN;
  }
  return h->count > 0 && h->fatal == 0 ? DCMF_HTTPDC_CLOSING
                                       : DCMF_HTTPDC_CLOSED;
}

int dcmf_httpdc_want_write(const struct dcmf_httpdc *h) {
  if (h->fatal != 0 || h->count == 0) {
    return 0;
  }
  const struct slot *sl = &h->slots[h->first];
  if (!sl->answered || sl->wait_body) {
    return 0;
  }
  return !sl->streamed || sl->sent < sl->head.len || sl->st.len > 0 ||
         sl->st.ended;
}

int dcmf_httpdc_want_read(const struct dcmf_httpdc *h) {
  return h->fatal == 0 && (h->stash == NULL || h->dead);
}

size_t dcmf_httpdc_max_message_size(const struct dcmf_httpdc *h) {
  return h->s.max_message_size;
}
