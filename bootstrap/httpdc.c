#include "httpdc.h"

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

#define TEXT_PLAIN "text/plain; charset=utf-8"

/* The body of a streamed response: copies of what the backend gave and
 * was not yet written, in a ring buffer that grows up to stream_buffer +
 * max_message_size bytes. */
struct stream {
  uint8_t *ring;
  size_t cap;      /* allocated bytes of |ring| */
  size_t off;      /* first held byte */
  size_t len;      /* bytes held */
  uint64_t given;  /* body bytes taken from the backend so far */
  uint64_t length; /* the announced Content-Length, if |known| */
  int known;
  int chunked;     /* Transfer-Encoding: chunked */
  int no_body;     /* HEAD, 204, 304: data is ignored */
  int ended;       /* respond_end or abort: no more data, id done */
  int failed;      /* aborted after the head went out: no last chunk */
  int last_chunk;  /* "0\r\n\r\n" written */
  int want_resume; /* data was refused; resume not called since */
};

/* One queued response, in request order. */
struct slot {
  uint64_t id;
  int answered;   /* head built, body known (or streamed) */
  int streamed;   /* the body comes through respond_data, see |st| */
  int http10;     /* the request was HTTP/1.0 */
  int wait_body;  /* the request's body is still being read */
  int head_only;  /* HEAD request: the body is not sent */
  int close;      /* the last response: "Connection: close" */
  int keep_alive; /* HTTP/1.0 keep-alive: echo "Connection: keep-alive" */
  struct dcmf_buf head; /* status line and header fields; reused */
  const uint8_t *body;  /* borrowed, see dcmf_httpdc_response */
  size_t body_len;      /* bytes of body to send */
  size_t sent; /* bytes of head + body written so far (streamed: head) */
  void (*release)(void *arg);
  void *release_arg;
  struct stream st;
};

struct framing;

struct dcmf_httpdc {
  struct dcmf_httpdc_settings s;
  struct dcmf_httpdc_backend backend;
  int fatal; /* DCMF_ERR_NOMEM once an internal allocation failed */
  int dead;  /* input is ignored from now on */
  int parsing; /* consume() is reading the stash: do not free it */

  /* The request head being collected: the request line (reqline_len
   * bytes, 0 while incomplete), then header lines. */
  char *headbuf;
  size_t head_len;
  size_t line_start; /* offset of the line being collected */
  size_t reqline_len;
  size_t n_lines; /* header lines completed */
  struct dcmf_httpdc_header *hdrs; /* max_headers entries */

  /* Body bytes of request discard_id still to be skipped. */
  uint64_t discard_left;
  uint64_t discard_id;

  /* A request whose body is being collected (max_request_body): its
   * parsed head stays in headbuf until the body is complete. */
  int collecting;
  struct dcmf_httpdc_request held_req;
  struct framing *held_f;
  uint8_t *body;
  size_t body_len, body_want;

  struct slot *slots; /* ring of max_pending */
  size_t first;
  size_t count;
  uint64_t next_id;

  /* The unparsed rest of a message, kept while the queue is full. */
  uint8_t *stash;
  size_t stash_off;
  size_t stash_len;
};

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

static const char *error_body(int status) {
  for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
    if (reasons[i].status == status) {
      return reasons[i].body;
    }
  }
  return "error\n";
}

/* ---- character classes ------------------------------------------------ */

static int is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z')) {
    return 1;
  }
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_vchar(unsigned char c) {
  return c >= 0x21 && c <= 0x7e;
}

/* field-vchar / SP / HTAB, obs-text allowed in requests only. */
static int is_field_char(unsigned char c, int allow_obs_text) {
  return is_vchar(c) || c == ' ' || c == '\t' ||
         (allow_obs_text && c >= 0x80);
}

static int ascii_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Case-insensitive comparison of |n| bytes at |a| with the literal |lit|. */
static int span_ieq(const char *a, size_t n, const char *lit) {
  size_t m = strlen(lit);
  if (n != m) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)lit[i])) {
      return 0;
    }
  }
  return 1;
}

static int span_eq(const char *a, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(a, lit, n) == 0;
}

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* Calls |fn| for each element of a comma-separated list value, with
 * surrounding white space removed; empty elements are skipped. Stops and
 * returns 1 as soon as |fn| returns 1. */
static int list_any(const char *v, size_t n,
                    int (*fn)(const char *el, size_t len, const void *arg),
                    const void *arg) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (is_ows(v[i]) || v[i] == ',')) {
      i++;
    }
    size_t start = i;
    while (i < n && v[i] != ',') {
      i++;
    }
    size_t end = i;
    while (end > start && is_ows(v[end - 1])) {
      end--;
    }
    if (end > start && fn(v + start, end - start, arg)) {
      return 1;
    }
  }
  return 0;
}

static int el_ieq(const char *el, size_t len, const void *arg) {
  return span_ieq(el, len, arg);
}

/* ---- the response queue ----------------------------------------------- */

static struct slot *slot_at(struct dcmf_httpdc *h, size_t i) {
  return &h->slots[(h->first + i) % h->s.max_pending];
}

static struct slot *slot_find(struct dcmf_httpdc *h, uint64_t id) {
  for (size_t i = 0; i < h->count; i++) {
    struct slot *sl = slot_at(h, i);
    if (sl->id == id) {
      return sl;
    }
  }
  return NULL;
}

/* Appends a fresh slot; the caller made sure one is free. */
static struct slot *slot_push(struct dcmf_httpdc *h) {
  struct slot *sl = slot_at(h, h->count);
  struct dcmf_buf head = sl->head;
  memset(sl, 0, sizeof(*sl));
  sl->head = head;
  sl->head.len = 0;
  sl->id = h->next_id++;
  h->count++;
  return sl;
}

static void stream_free(struct slot *sl) {
  free(sl->st.ring);
  memset(&sl->st, 0, sizeof(sl->st));
  sl->streamed = 0;
}

/* Gives up a slot's body, or tells the backend that its request (or the
 * body it still streams) is gone. */
static void slot_drop(struct dcmf_httpdc *h, struct slot *sl) {
  if (!sl->answered || (sl->streamed && !sl->st.ended)) {
    if (h->backend.cancel != NULL) {
      h->backend.cancel(h->backend.user, sl->id);
    }
  } else if (sl->release != NULL) {
    void (*release)(void *) = sl->release;
    sl->release = NULL;
    release(sl->release_arg);
  }
  stream_free(sl);
  sl->answered = 0;
  sl->body = NULL;
}

static void stash_free(struct dcmf_httpdc *h) {
  free(h->stash);
  h->stash = NULL;
  h->stash_off = h->stash_len = 0;
}

/* Stops reading after |last| (NULL: after the last queued slot): later
 * slots are dropped. */
static void engine_close_after(struct dcmf_httpdc *h, struct slot *last) {
  h->dead = 1;
  h->discard_left = 0;
  if (!h->parsing) {
    stash_free(h);
  }
  size_t keep = 0;
  while (keep < h->count && slot_at(h, keep) != last) {
    slot_at(h, keep)->wait_body = 0; /* no body is read any more */
    keep++;
  }
  if (keep < h->count) {
    slot_at(h, keep)->wait_body = 0;
    keep++;
  }
  /* Count down so that a cancel callback sees the queue already cut. */
  while (h->count > keep) {
    h->count--;
    slot_drop(h, slot_at(h, h->count));
  }
}

static int header_name_reserved(const char *name, size_t len) {
  return span_ieq(name, len, "content-length") ||
         span_ieq(name, len, "transfer-encoding") ||
         span_ieq(name, len, "connection");
}

static int response_check(const struct dcmf_httpdc_response *r) {
  if (r->status < 200 || r->status > 599) {
    return DCMF_ERR_INVALID;
  }
  if (r->content_type != NULL) {
    for (const char *p = r->content_type; *p != '\0'; p++) {
      if (!is_field_char((unsigned char)*p, 0)) {
        return DCMF_ERR_INVALID;
      }
    }
  }
  for (size_t i = 0; i < r->n_headers; i++) {
    const struct dcmf_httpdc_header *hd = &r->headers[i];
    if (hd->name_len == 0 || header_name_reserved(hd->name, hd->name_len)) {
      return DCMF_ERR_INVALID;
    }
    for (size_t k = 0; k < hd->name_len; k++) {
      if (!is_tchar((unsigned char)hd->name[k])) {
        return DCMF_ERR_INVALID;
      }
    }
    for (size_t k = 0; k < hd->value_len; k++) {
      if (!is_field_char((unsigned char)hd->value[k], 0)) {
        return DCMF_ERR_INVALID;
      }
    }
  }
  return 0;
}

/* How a response's body is delimited. */
struct body_framing {
  int have_length; /* send Content-Length: |length| */
  uint64_t length;
  int chunked; /* send Transfer-Encoding: chunked */
};

static int head_build(struct dcmf_httpdc *h, struct slot *sl,
                      const struct dcmf_httpdc_response *r, int close,
                      const struct body_framing *bf) {
  struct dcmf_buf *b = &sl->head;
  b->len = 0;
  int rc = dcmf_buf_printf(b, "HTTP/1.1 %d %s\r\nServer: dcmf\r\n", r->status,
                           dcmf_httpdc_reason(r->status));
  if (rc == 0 && r->content_type != NULL) {
    rc = dcmf_buf_printf(b, "Content-Type: %s\r\n", r->content_type);
  }
  if (rc == 0 && bf->have_length) {
    rc = dcmf_buf_printf(b, "Content-Length: %" PRIu64 "\r\n", bf->length);
  }
  if (rc == 0 && bf->chunked) {
    rc = dcmf_buf_append(b, "Transfer-Encoding: chunked\r\n", 28);
  }
  for (size_t i = 0; rc == 0 && i < r->n_headers; i++) {
    const struct dcmf_httpdc_header *hd = &r->headers[i];
    if (dcmf_buf_append(b, hd->name, hd->name_len) != 0 ||
        dcmf_buf_append(b, ": ", 2) != 0 ||
        dcmf_buf_append(b, hd->value, hd->value_len) != 0 ||
        dcmf_buf_append(b, "\r\n", 2) != 0) {
      rc = DCMF_ERR_NOMEM;
    }
  }
  if (rc == 0 && close) {
    rc = dcmf_buf_append(b, "Connection: close\r\n", 19);
  } else if (rc == 0 && sl->keep_alive) {
    rc = dcmf_buf_append(b, "Connection: keep-alive\r\n", 24);
  }
  if (rc == 0) {
    rc = dcmf_buf_append(b, "\r\n", 2);
  }
  if (rc == 0 && b->len > h->s.max_message_size) {
    rc = DCMF_ERR_TOO_LARGE;
  }
  if (rc != 0) {
    b->len = 0;
  }
  return rc;
}

/* Answers |sl| with |r|; on error the slot is unchanged (unanswered). */
static int slot_fill(struct dcmf_httpdc *h, struct slot *sl,
                     const struct dcmf_httpdc_response *r) {
  int rc = response_check(r);
  if (rc != 0) {
    return rc;
  }
  int send_body = !sl->head_only && r->status != 204 && r->status != 304;
  if (send_body && r->body == NULL && r->body_len > 0) {
    return DCMF_ERR_INVALID; /* a Content-Length we could not honour */
  }
  int close = sl->close || r->close;
  struct body_framing bf = {.have_length = r->status != 204 && r->status != 304,
                            .length = r->body_len};
  rc = head_build(h, sl, r, close, &bf);
  if (rc != 0) {
    return rc;
  }
  sl->body = send_body ? r->body : NULL;
  sl->body_len = send_body ? r->body_len : 0;
  sl->release = r->release;
  sl->release_arg = r->release_arg;
  sl->sent = 0;
  sl->answered = 1;
  if (close && !sl->close) {
    sl->close = 1;
    engine_close_after(h, sl);
  }
  return 0;
}

/* Starts a streamed response on |sl|; on error the slot is unchanged. */
static int slot_start(struct dcmf_httpdc *h, struct slot *sl,
                      const struct dcmf_httpdc_response *r,
                      int64_t content_length) {
  if (content_length < -1) {
    return DCMF_ERR_INVALID;
  }
  int rc = response_check(r);
  if (rc != 0) {
    return rc;
  }
  int status_no_body = r->status == 204 || r->status == 304;
  int no_body = sl->head_only || status_no_body;
  int known = content_length >= 0;
  /* An HTTP/1.0 peer knows no chunked coding: the end of the channel
   * ends the body. */
  int close = sl->close || r->close || (!known && !no_body && sl->http10);
  struct body_framing bf = {
      .have_length = known && !status_no_body,
      .length = known ? (uint64_t)content_length : 0,
      .chunked = !known && !no_body && !sl->http10,
  };
  rc = head_build(h, sl, r, close, &bf);
  if (rc != 0) {
    return rc;
  }
  memset(&sl->st, 0, sizeof(sl->st));
  sl->st.known = known;
  sl->st.length = bf.length;
  sl->st.chunked = bf.chunked;
  sl->st.no_body = no_body;
  sl->streamed = 1;
  sl->body = NULL;
  sl->body_len = 0;
  sl->release = NULL;
  sl->sent = 0;
  sl->answered = 1;
  if (close && !sl->close) {
    sl->close = 1;
    engine_close_after(h, sl);
  }
  return 0;
}

/* Answers |sl| with a short text/plain error of the engine's own. */
static int slot_error(struct dcmf_httpdc *h, struct slot *sl, int status) {
  const char *body = error_body(status);
  struct dcmf_httpdc_response r = {.status = status,
                                   .content_type = TEXT_PLAIN,
                                   .body = (const uint8_t *)body,
                                   .body_len = strlen(body)};
  int rc = slot_fill(h, sl, &r);
  if (rc != 0) {
    h->fatal = DCMF_ERR_NOMEM;
  }
  return rc;
}

/* A request the stream cannot recover from: answer |status| with
 * "Connection: close" and ignore all further input. */
static void engine_fail(struct dcmf_httpdc *h, int status) {
  struct slot *sl = slot_push(h);
  sl->close = 1;
  engine_close_after(h, NULL);
  slot_error(h, sl, status);
}

/* ---- parsing a complete request head ---------------------------------- */

/* Returns the length of the line at |off| without its line end ("\r\n" or
 * "\n") and sets *|next| past it. The line end is known to exist. */
static size_t line_at(const char *buf, size_t off, size_t end, size_t *next) {
  const char *nl = memchr(buf + off, '\n', end - off);
  size_t e = (size_t)(nl - buf);
  *next = e + 1;
  if (e > off && buf[e - 1] == '\r') {
    e--;
  }
  return e - off;
}

/* Splits |t| (|n| bytes, visible ASCII) into path and query. */
static void target_split(const char *t, size_t n,
                         struct dcmf_httpdc_request *req) {
  const char *q = memchr(t, '?', n);
  req->path = t;
  req->path_len = q != NULL ? (size_t)(q - t) : n;
  req->query = q != NULL ? q + 1 : NULL;
  req->query_len = q != NULL ? n - req->path_len - 1 : 0;
}

/* Parses the request-target; returns 0 or 400. */
static int target_parse(const char *t, size_t n,
                        struct dcmf_httpdc_request *req) {
  if (n == 1 && t[0] == '*') {
    if (!span_eq(req->method, req->method_len, "OPTIONS")) {
      return 400;
    }
    req->path = t;
    req->path_len = 1;
    return 0;
  }
  if (t[0] == '/') {
    target_split(t, n, req); /* origin-form */
    return 0;
  }
  /* absolute-form: scheme "://" authority [path] ["?" query] */
  size_t i = 0;
  while (i < n && ((t[i] >= 'a' && t[i] <= 'z') ||
                   (t[i] >= 'A' && t[i] <= 'Z') ||
                   (i > 0 && ((t[i] >= '0' && t[i] <= '9') || t[i] == '+' ||
                              t[i] == '-' || t[i] == '.')))) {
    i++;
  }
  if (i == 0 || n - i < 3 || memcmp(t + i, "://", 3) != 0) {
    return 400;
  }
  i += 3;
  while (i < n && t[i] != '/' && t[i] != '?') {
    i++;
  }
  if (i < n && t[i] == '/') {
    target_split(t + i, n - i, req);
  } else {
    req->path = "/";
    req->path_len = 1;
    req->query = i < n ? t + i + 1 : NULL;
    req->query_len = i < n ? n - i - 1 : 0;
  }
  return 0;
}

/* Parses the request line |l| (|n| bytes, no line end); returns 0, 400 or
 * 505. */
static int request_line_parse(const char *l, size_t n,
                              struct dcmf_httpdc_request *req) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)l[i])) {
    i++;
  }
  if (i == 0 || i >= n || l[i] != ' ') {
    return 400;
  }
  req->method = l;
  req->method_len = i++;
  size_t t = i;
  while (i < n && l[i] != ' ') {
    if (!is_vchar((unsigned char)l[i]) || l[i] == '#') {
      return 400;
    }
    i++;
  }
  if (i == t || i >= n) {
    return 400;
  }
  size_t tlen = i - t;
  const char *v = l + i + 1;
  if (n - i - 1 != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' ||
      v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9') {
    return 400;
  }
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
    return 505;
  }
  req->version_minor = v[7] - '0';
  return target_parse(l + t, tlen, req);
}

/* Parses one header line into |hd|; returns 0 or 400. */
static int header_parse(const char *l, size_t n,
                        struct dcmf_httpdc_header *hd) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)l[i])) {
    i++;
  }
  if (i == 0 || i >= n || l[i] != ':') {
    return 400; /* also obs-fold and white space before ':' */
  }
  hd->name = l;
  hd->name_len = i++;
  while (i < n && is_ows(l[i])) {
    i++;
  }
  size_t end = n;
  while (end > i && is_ows(l[end - 1])) {
    end--;
  }
  for (size_t k = i; k < end; k++) {
    if (!is_field_char((unsigned char)l[k], 1)) {
      return 400;
    }
  }
  hd->value = l + i;
  hd->value_len = end - i;
  return 0;
}

/* Request properties that decide framing and connection handling. */
struct framing {
  uint64_t content_length;
  int have_length;
  int te;         /* Transfer-Encoding present */
  int te_chunked; /* ... and its final coding is chunked */
  int conn_close;
  int keep_alive;
  int expect_continue;
};

static int content_length_parse(const char *v, size_t n, uint64_t *out) {
  uint64_t x = 0;
  if (n == 0) {
    return 400;
  }
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') {
      return 400;
    }
    uint64_t d = (uint64_t)(v[i] - '0');
    if (x > (UINT64_MAX - d) / 10) {
      return 400;
    }
    x = x * 10 + d;
  }
  *out = x;
  return 0;
}

/* Returns 1 if the last element of the list |v| is "chunked". */
static int last_is_chunked(const char *v, size_t n) {
  size_t end = n;
  while (end > 0 && (is_ows(v[end - 1]) || v[end - 1] == ',')) {
    end--;
  }
  size_t start = end;
  while (start > 0 && v[start - 1] != ',') {
    start--;
  }
  while (start < end && is_ows(v[start])) {
    start++;
  }
  return span_ieq(v + start, end - start, "chunked");
}

static int framing_scan(const struct dcmf_httpdc_header *hdrs, size_t n,
                        struct framing *f) {
  memset(f, 0, sizeof(*f));
  for (size_t i = 0; i < n; i++) {
    const struct dcmf_httpdc_header *hd = &hdrs[i];
    if (span_ieq(hd->name, hd->name_len, "content-length")) {
      uint64_t v;
      if (content_length_parse(hd->value, hd->value_len, &v) != 0 ||
          (f->have_length && v != f->content_length)) {
        return 400;
      }
      f->content_length = v;
      f->have_length = 1;
    } else if (span_ieq(hd->name, hd->name_len, "transfer-encoding")) {
      f->te = 1;
      f->te_chunked = last_is_chunked(hd->value, hd->value_len);
    } else if (span_ieq(hd->name, hd->name_len, "connection")) {
      f->conn_close |= list_any(hd->value, hd->value_len, el_ieq, "close");
      f->keep_alive |=
          list_any(hd->value, hd->value_len, el_ieq, "keep-alive");
    } else if (span_ieq(hd->name, hd->name_len, "expect")) {
      f->expect_continue |= span_ieq(hd->value, hd->value_len, "100-continue");
    }
  }
  return 0;
}

/* Parses the complete head in headbuf; returns 0 or an error status. */
static int head_parse(struct dcmf_httpdc *h, struct dcmf_httpdc_request *req,
                      struct framing *f) {
  size_t next;
  size_t n = line_at(h->headbuf, 0, h->head_len, &next);
  int st = request_line_parse(h->headbuf, n, req);
  if (st != 0) {
    return st;
  }
  size_t off = next, count = 0;
  for (;;) {
    n = line_at(h->headbuf, off, h->head_len, &next);
    if (n == 0) {
      break; /* the empty line ending the head */
    }
    if (header_parse(h->headbuf + off, n, &h->hdrs[count]) != 0) {
      return 400;
    }
    count++;
    off = next;
  }
  req->headers = h->hdrs;
  req->n_headers = count;
  if (framing_scan(h->hdrs, count, f) != 0) {
    return 400;
  }
  if (f->te) {
    return req->version_minor == 0 || !f->te_chunked ? 400 : 501;
  }
  req->content_length = f->content_length;
  return 0;
}

/* Hands the complete head to the backend (or answers an error). */
/* Queues |req| and hands it to the backend. */
static void dispatch_request(struct dcmf_httpdc *h,
                             struct dcmf_httpdc_request *req,
                             const struct framing *fp, int collected) {
  struct framing f = *fp;
  int close = f.conn_close || (req->version_minor == 0 && !f.keep_alive) ||
              (f.expect_continue && f.content_length > 0);
  struct slot *sl = slot_push(h);
  uint64_t id = sl->id;
  req->id = id;
  sl->head_only = span_eq(req->method, req->method_len, "HEAD");
  sl->http10 = req->version_minor == 0;
  sl->close = close;
  sl->keep_alive = !close && req->version_minor == 0;
  sl->wait_body = !collected && !close && f.content_length > 0;
  if (close) {
    engine_close_after(h, NULL);
  } else if (!collected && f.content_length > 0) {
    h->discard_left = f.content_length;
    h->discard_id = id;
  }
  int rc = h->backend.request(h->backend.user, h, req);
  /* The callback may have closed the queue before this slot: look again. */
  sl = slot_find(h, id);
  if (sl != NULL && !sl->answered && rc < 0) {
    slot_error(h, sl, 500);
  }
}

static void dispatch(struct dcmf_httpdc *h) {
  struct dcmf_httpdc_request req;
  struct framing f;
  memset(&req, 0, sizeof(req));
  int st = head_parse(h, &req, &f);
  if (st != 0) {
    engine_fail(h, st);
    return;
  }
  int close = f.conn_close || (req.version_minor == 0 && !f.keep_alive) ||
              (f.expect_continue && f.content_length > 0);
  if (h->s.max_request_body > 0 && f.content_length > 0 && !close) {
    if (f.content_length > h->s.max_request_body) {
      engine_fail(h, 413);
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
      engine_fail(h, 414);
      return len;
    }
  } else if (h->head_len - h->reqline_len + seg > h->s.max_header_bytes) {
    engine_fail(h, 431);
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
    engine_fail(h, 431);
    return len;
  }
  h->line_start = h->head_len;
  return seg;
}

static void body_done(struct dcmf_httpdc *h) {
  struct slot *sl = slot_find(h, h->discard_id);
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

static void stash_drain(struct dcmf_httpdc *h) {
  if (h->stash == NULL) {
    return;
  }
  h->parsing = 1;
  size_t n =
      consume(h, h->stash + h->stash_off, h->stash_len - h->stash_off);
  h->parsing = 0;
  h->stash_off += n;
  if (h->dead || h->stash_off == h->stash_len) {
    stash_free(h);
  }
}

/* ---- writing responses ------------------------------------------------ */

/* Appends |n| bytes to the ring, growing it up to |limit| bytes (the
 * caller made sure len + n <= limit). Returns 0 or DCMF_ERR_NOMEM (ring
 * unchanged). */
static int ring_put(struct stream *st, const uint8_t *p, size_t n,
                    size_t limit) {
  if (st->cap - st->len < n) {
    size_t cap = st->cap > 0 ? st->cap : 4096;
    while (cap - st->len < n && cap < limit) {
      cap = cap > limit / 2 ? limit : cap * 2;
    }
    if (cap > limit) {
      cap = limit;
    }
    uint8_t *ring = malloc(cap);
    if (ring == NULL) {
      return DCMF_ERR_NOMEM;
    }
    /* Unwrap into the new buffer. */
    size_t first = st->cap - st->off < st->len ? st->cap - st->off : st->len;
    if (st->len > 0) {
      memcpy(ring, st->ring + st->off, first);
      memcpy(ring + first, st->ring, st->len - first);
    }
    free(st->ring);
    st->ring = ring;
    st->cap = cap;
    st->off = 0;
  }
  size_t end = (st->off + st->len) % st->cap;
  size_t first = st->cap - end < n ? st->cap - end : n;
  memcpy(st->ring + end, p, first);
  memcpy(st->ring, p + first, n - first);
  st->len += n;
  return 0;
}

/* Takes |n| <= len bytes out of the ring. */
static void ring_get(struct stream *st, uint8_t *out, size_t n) {
  if (n == 0) {
    return; /* |ring| may be NULL */
  }
  size_t first = st->cap - st->off < n ? st->cap - st->off : n;
  memcpy(out, st->ring + st->off, first);
  memcpy(out + first, st->ring, n - first);
  st->len -= n;
  st->off = st->len == 0 ? 0 : (st->off + n) % st->cap;
}

static size_t hex_len(size_t n) {
  size_t d = 1;
  while (n >= 16) {
    n >>= 4;
    d++;
  }
  return d;
}

/* Writes |n| in hex (no leading zeros) at |out|; returns the length. */
static size_t hex_put(uint8_t *out, size_t n) {
  size_t d = hex_len(n);
  for (size_t i = d; i > 0; i--) {
    out[i - 1] = (uint8_t)"0123456789abcdef"[n & 15];
    n >>= 4;
  }
  return d;
}

/* 1 once everything of |sl| has been written. */
static int slot_done(const struct slot *sl) {
  if (!sl->streamed) {
    return sl->sent == sl->head.len + sl->body_len;
  }
  const struct stream *st = &sl->st;
  return sl->sent == sl->head.len && st->ended && st->len == 0 &&
         (!st->chunked || st->failed || st->last_chunk);
}

/* Fills |out| with the next bytes of a response from dcmf_httpdc_respond;
 * returns their number. */
static size_t plain_write(struct dcmf_httpdc *h, struct slot *sl,
                          uint8_t *out) {
  size_t total = sl->head.len + sl->body_len;
  size_t n = total - sl->sent;
  if (n > h->s.max_message_size) {
    n = h->s.max_message_size;
  }
  size_t w = 0;
  if (sl->sent < sl->head.len) {
    w = sl->head.len - sl->sent;
    if (w > n) {
      w = n;
    }
    memcpy(out, sl->head.data + sl->sent, w);
  }
  if (n > w) {
    memcpy(out + w, sl->body + (sl->sent + w - sl->head.len), n - w);
  }
  sl->sent += n;
  return n;
}

/* Fills |out| with the head (the first time), then buffered body bytes of
 * a streamed response: one chunk of as many as fit when chunked, then the
 * last chunk once the body has ended. Returns the bytes written. */
static size_t stream_write(struct dcmf_httpdc *h, struct slot *sl,
                           uint8_t *out) {
  struct stream *st = &sl->st;
  size_t room = h->s.max_message_size, w = 0;
  if (sl->sent < sl->head.len) {
    w = sl->sent = sl->head.len; /* a head fits into one message */
    memcpy(out, sl->head.data, w);
  }
  if (!st->chunked) {
    size_t n = st->len < room - w ? st->len : room - w;
    ring_get(st, out + w, n);
    return w + n;
  }
  if (st->len > 0 && room - w > 4) {
    /* hex digits, CRLF, data, CRLF */
    size_t n = room - w - 4;
    n -= hex_len(n);
    if (n > st->len) {
      n = st->len;
    }
    if (n > 0) {
      w += hex_put(out + w, n);
      memcpy(out + w, "\r\n", 2);
      ring_get(st, out + w + 2, n);
      memcpy(out + w + 2 + n, "\r\n", 2);
      w += n + 4;
    }
  }
  if (st->ended && !st->failed && st->len == 0 && room - w >= 5) {
    memcpy(out + w, "0\r\n\r\n", 5);
    w += 5;
    st->last_chunk = 1;
  }
  return w;
}

/* Removes the written first slot and reads on. */
static void slot_retire(struct dcmf_httpdc *h) {
  slot_drop(h, slot_at(h, 0));
  h->first = (h->first + 1) % h->s.max_pending;
  h->count--;
  if (!h->dead) {
    stash_drain(h);
  }
}

/* Calls |resume| for the first response if it was refused data and has
 * drained to the low-water mark. Last thing dcmf_httpdc_write does, so
 * the backend finds the engine consistent. */
static void stream_resume(struct dcmf_httpdc *h) {
  if (h->fatal != 0 || h->count == 0) {
    return;
  }
  struct slot *sl = slot_at(h, 0);
  struct stream *st = &sl->st;
  if (!sl->streamed || !st->want_resume || st->ended ||
      st->len > h->s.stream_buffer / 2) {
    return;
  }
  st->want_resume = 0;
  if (h->backend.resume != NULL) {
    h->backend.resume(h->backend.user, h, sl->id);
  }
}

/* The streamed response on |sl| cannot be completed. */
static void stream_fail(struct dcmf_httpdc *h, struct slot *sl) {
  if (sl->sent == 0) {
    /* Nothing went out: a complete error response keeps the stream in
     * sync. */
    stream_free(sl);
    sl->answered = 0;
    slot_error(h, sl, 502);
    return;
  }
  sl->st.ended = 1;
  if (sl->st.no_body) {
    return; /* the head was all there was to send */
  }
  sl->st.failed = 1;
  engine_close_after(h, sl);
}

/* The slot of a streamed response to |id| that takes data, or NULL. */
static struct slot *stream_find(struct dcmf_httpdc *h, uint64_t id) {
  struct slot *sl = slot_find(h, id);
  return sl != NULL && sl->streamed && !sl->st.ended ? sl : NULL;
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
      slot_drop(h, slot_at(h, h->count));
    }
    for (size_t i = 0; i < h->s.max_pending; i++) {
      dcmf_buf_free(&h->slots[i].head);
    }
  }
  stash_free(h);
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

int dcmf_httpdc_write(struct dcmf_httpdc *h, uint8_t *out, size_t cap,
                      size_t *len) {
  *len = 0;
  if (h->fatal != 0) {
    return h->fatal;
  }
  if (cap < h->s.max_message_size) {
    return DCMF_ERR_INVALID;
  }
  /* Normally one round; more only to retire streamed responses that
   * ended with nothing left to write. */
  while (h->fatal == 0 && dcmf_httpdc_want_write(h)) {
    struct slot *sl = slot_at(h, 0);
    size_t n = 0;
    if (!slot_done(sl)) {
      n = sl->streamed ? stream_write(h, sl, out) : plain_write(h, sl, out);
    }
    int done = slot_done(sl);
    if (done) {
      slot_retire(h);
    }
    if (n > 0 || !done) {
      *len = n;
      break;
    }
  }
  stream_resume(h);
  return h->fatal;
}

int dcmf_httpdc_respond(struct dcmf_httpdc *h, uint64_t id,
                        const struct dcmf_httpdc_response *resp) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = slot_find(h, id);
  if (sl == NULL || sl->answered) {
    return DCMF_ERR_NOT_FOUND;
  }
  return slot_fill(h, sl, resp);
}

int dcmf_httpdc_respond_start(struct dcmf_httpdc *h, uint64_t id,
                              const struct dcmf_httpdc_response *head,
                              int64_t content_length) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = slot_find(h, id);
  if (sl == NULL || sl->answered) {
    return DCMF_ERR_NOT_FOUND;
  }
  return slot_start(h, sl, head, content_length);
}

int dcmf_httpdc_respond_data(struct dcmf_httpdc *h, uint64_t id,
                             const uint8_t *data, size_t len) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = stream_find(h, id);
  if (sl == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  struct stream *st = &sl->st;
  if (st->no_body || len == 0) {
    return 0;
  }
  if (data == NULL || (st->known && len > st->length - st->given)) {
    return DCMF_ERR_INVALID;
  }
  if (len > h->s.max_message_size) {
    return DCMF_ERR_TOO_LARGE;
  }
  if (st->len >= h->s.stream_buffer) {
    st->want_resume = 1;
    return DCMF_ERR_EXHAUSTED;
  }
  int rc = ring_put(st, data, len, h->s.stream_buffer + h->s.max_message_size);
  if (rc != 0) {
    return rc;
  }
  st->given += len;
  return 0;
}

int dcmf_httpdc_respond_end(struct dcmf_httpdc *h, uint64_t id) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = stream_find(h, id);
  if (sl == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  struct stream *st = &sl->st;
  if (!st->no_body && st->known && st->given < st->length) {
    stream_fail(h, sl);
    return h->fatal != 0 ? h->fatal : DCMF_ERR_INVALID;
  }
  st->ended = 1;
  return 0;
}

int dcmf_httpdc_respond_abort(struct dcmf_httpdc *h, uint64_t id) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = stream_find(h, id);
  if (sl == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  stream_fail(h, sl);
  return h->fatal;
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

/* ---- the repository backend ------------------------------------------- */

struct etag_match {
  const char *etag; /* quoted */
  size_t len;
};

/* One If-None-Match list element: "*" or [W/]"opaque". */
static int inm_element(const char *el, size_t len, const void *arg) {
  const struct etag_match *m = arg;
  if (len == 1 && el[0] == '*') {
    return 1;
  }
  if (len >= 2 && el[0] == 'W' && el[1] == '/') {
    el += 2; /* weak comparison: the W/ prefix does not matter */
    len -= 2;
  }
  return len == m->len && memcmp(el, m->etag, len) == 0;
}

static int inm_matches(const struct dcmf_httpdc_request *req,
                       const char *etag) {
  struct etag_match m = {etag, strlen(etag)};
  for (size_t i = 0; i < req->n_headers; i++) {
    const struct dcmf_httpdc_header *hd = &req->headers[i];
    if (span_ieq(hd->name, hd->name_len, "if-none-match") &&
        list_any(hd->value, hd->value_len, inm_element, &m)) {
      return 1;
    }
  }
  return 0;
}

#define HDR(n, v) {n, sizeof(n) - 1, v, strlen(v)}

static int repo_error(struct dcmf_httpdc *h, uint64_t id, int status,
                      const struct dcmf_httpdc_header *extra, size_t n_extra) {
  const char *body = error_body(status);
  struct dcmf_httpdc_response r = {.status = status,
                                   .content_type = TEXT_PLAIN,
                                   .headers = extra,
                                   .n_headers = n_extra,
                                   .body = (const uint8_t *)body,
                                   .body_len = strlen(body)};
  return dcmf_httpdc_respond(h, id, &r);
}

static int repo_redirect(struct dcmf_httpdc *h,
                         const struct dcmf_httpdc_request *req) {
  struct dcmf_buf loc = {0};
  int rc = dcmf_buf_append(&loc, req->path, req->path_len);
  if (rc == 0) {
    rc = dcmf_buf_append(&loc, "/", 1);
  }
  if (rc == 0 && req->query_len > 0) {
    rc = dcmf_buf_append(&loc, "?", 1);
    if (rc == 0) {
      rc = dcmf_buf_append(&loc, req->query, req->query_len);
    }
  }
  if (rc == 0) {
    struct dcmf_httpdc_header hd[] = {
        {"Location", 8, loc.data, loc.len},
        HDR("X-Content-Type-Options", "nosniff"),
    };
    rc = repo_error(h, req->id, 301, hd, 2);
  }
  dcmf_buf_free(&loc);
  return rc;
}

static int repo_request(void *user, struct dcmf_httpdc *h,
                        const struct dcmf_httpdc_request *req) {
  const struct dcmf_repo *repo = user;
  static const struct dcmf_httpdc_header nosniff[] = {
      {"X-Content-Type-Options", 22, "nosniff", 7}};
  if (!span_eq(req->method, req->method_len, "GET") &&
      !span_eq(req->method, req->method_len, "HEAD")) {
    static const struct dcmf_httpdc_header allow[] = {
        {"Allow", 5, "GET, HEAD", 9},
        {"X-Content-Type-Options", 22, "nosniff", 7}};
    return repo_error(h, req->id, 405, allow, 2);
  }
  const struct dcmf_repo_entry *e = NULL;
  int rc = dcmf_repo_find(repo, req->path, req->path_len, &e);
  if (rc == DCMF_ERR_MALFORMED) {
    return repo_error(h, req->id, 400, nosniff, 1);
  }
  if (rc != 0) {
    if (dcmf_repo_is_dir(repo, req->path, req->path_len)) {
      return repo_redirect(h, req);
    }
    return repo_error(h, req->id, 404, nosniff, 1);
  }
  struct dcmf_httpdc_header hd[] = {
      {"ETag", 4, e->etag, strlen(e->etag)},
      HDR("Cache-Control", "no-cache"),
      HDR("X-Content-Type-Options", "nosniff"),
  };
  struct dcmf_httpdc_response r = {.headers = hd, .n_headers = 3};
  if (inm_matches(req, e->etag)) {
    r.status = 304;
  } else {
    r.status = 200;
    r.content_type = e->content_type;
    r.body = e->bytes;
    r.body_len = e->len;
  }
  return dcmf_httpdc_respond(h, req->id, &r);
}

void dcmf_httpdc_repo_backend(struct dcmf_httpdc_backend *backend,
                              const struct dcmf_repo *repo) {
  memset(backend, 0, sizeof(*backend));
  backend->request = repo_request;
  /* The backend only reads |repo|; the table's user pointer is not const. */
  backend->user = (void *)(uintptr_t)repo;
}
