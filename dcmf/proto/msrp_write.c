/*
 * msrp_write.c - writing MSRP chunks (msrp.h): the serializer, the
 * builders of SEND, REPORT and responses, the path rewriter and the
 * re-chunker.
 */
#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "msrp_int.h"

static const uint8_t *find(const uint8_t *hay, size_t n, const uint8_t *needle,
                           size_t m) {
  if (m == 0 || m > n) {
    return m == 0 ? hay : NULL;
  }
  const uint8_t *p = hay, *end = hay + n - m + 1;
  while (p < end && (p = memchr(p, needle[0], (size_t)(end - p))) != NULL) {
    if (memcmp(p, needle, m) == 0) {
      return p;
    }
    p++;
  }
  return NULL;
}

struct out {
  uint8_t *p;
  size_t len, cap;
};

static void put(struct out *o, const void *d, size_t n) {
  if (n > 0 && o->len + n <= o->cap) {
    memcpy(o->p + o->len, d, n);
  }
  o->len += n;
}

static void puts_(struct out *o, const char *s) {
  put(o, s, strlen(s));
}

static int has_crlf(struct dcmf_msrp_str s) {
  return s.len > 0 && (memchr(s.p, '\r', s.len) != NULL ||
                       memchr(s.p, '\n', s.len) != NULL);
}

int dcmf_msrp_write(const struct dcmf_msrp_chunk *c, uint8_t *out,
                    size_t cap) {
  if (c->tid.p == NULL || !msrp_valid_ident(c->tid.p, c->tid.len) ||
      c->n_headers > DCMF_MSRP_MAX_HEADERS ||
      (c->flag != '$' && c->flag != '+' && c->flag != '#') ||
      (c->has_body && c->body == NULL && c->body_len > 0)) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_msrp_str method = c->method_name;
  if (c->kind == DCMF_MSRP_REQUEST && method.len == 0) {
    method = c->method == DCMF_MSRP_SEND     ? cstr("SEND")
             : c->method == DCMF_MSRP_REPORT ? cstr("REPORT")
                                             : mkstr(NULL, 0);
  }
  if ((c->kind == DCMF_MSRP_REQUEST && (method.len == 0 || has_crlf(method))) ||
      (c->kind == DCMF_MSRP_RESPONSE &&
       (c->status < 0 || c->status > 999 || has_crlf(c->comment)))) {
    return DCMF_ERR_INVALID;
  }
  for (size_t i = 0; i < c->n_headers; i++) {
    if (c->headers[i].name.len == 0 || has_crlf(c->headers[i].name) ||
        has_crlf(c->headers[i].value) ||
        (c->headers[i].value.len > 0 && c->headers[i].value.p == NULL)) {
      return DCMF_ERR_INVALID;
    }
  }
  struct out o = {out, 0, cap};
  puts_(&o, "MSRP ");
  put(&o, c->tid.p, c->tid.len);
  puts_(&o, " ");
  if (c->kind == DCMF_MSRP_REQUEST) {
    put(&o, method.p, method.len);
  } else {
    char code[4] = {(char)('0' + c->status / 100),
                    (char)('0' + c->status / 10 % 10),
                    (char)('0' + c->status % 10), 0};
    puts_(&o, code);
    if (c->comment.len > 0) {
      puts_(&o, " ");
      put(&o, c->comment.p, c->comment.len);
    }
  }
  puts_(&o, "\r\n");
  for (size_t i = 0; i < c->n_headers; i++) {
    put(&o, c->headers[i].name.p, c->headers[i].name.len);
    puts_(&o, ": ");
    put(&o, c->headers[i].value.p, c->headers[i].value.len);
    puts_(&o, "\r\n");
  }
  size_t head = o.len;
  if (c->has_body) {
    puts_(&o, "\r\n");
    put(&o, c->body, c->body_len);
    puts_(&o, "\r\n");
  }
  puts_(&o, "-------");
  put(&o, c->tid.p, c->tid.len);
  put(&o, &c->flag, 1);
  puts_(&o, "\r\n");
  if (o.len > cap) {
    return DCMF_ERR_TOO_LARGE;
  }
  if (o.len > (size_t)INT32_MAX) {
    return DCMF_ERR_INVALID;
  }
  /* What goes out must come back in: the end-line must not be in the
   * body (§7.1), and every field must be what the parser takes. */
  struct dcmf_msrp_limits lim = {head + 2 + DCMF_MSRP_END_MAX,
                                 c->has_body ? c->body_len : 0};
  struct dcmf_msrp_chunk check;
  if (dcmf_msrp_parse(out, o.len, &lim, &check) != 0) {
    return DCMF_ERR_INVALID;
  }
  return (int)o.len;
}

int dcmf_msrp_pick_tid(const struct dcmf_msrp_rng *rng, const uint8_t *body,
                       size_t len, char tid[DCMF_MSRP_TID_LEN]) {
  static const char alnum[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  for (int tries = 0; tries < 8; tries++) {
    uint8_t r[DCMF_MSRP_TID_LEN];
    rng->fill(rng->user, r, sizeof(r));
    for (size_t i = 0; i < DCMF_MSRP_TID_LEN; i++) {
      tid[i] = alnum[r[i] % 62];
    }
    /* §7.1: a transaction id "that is not present in the body" */
    if (body == NULL ||
        find(body, len, (const uint8_t *)tid, DCMF_MSRP_TID_LEN) == NULL) {
      return 0;
    }
  }
  return DCMF_ERR_EXHAUSTED;
}

static void add_header(struct dcmf_msrp_chunk *c, const char *name,
                       const char *value) {
  if (value != NULL && c->n_headers < DCMF_MSRP_MAX_HEADERS) {
    c->headers[c->n_headers].name = cstr(name);
    c->headers[c->n_headers].value = cstr(value);
    c->n_headers++;
  }
}

/* Byte-Range text into |buf| (80 bytes hold any). */
static void format_range(char *buf, size_t cap, uint64_t start, uint64_t end,
                         uint64_t total) {
  char e[24], t[24];
  if (end == DCMF_MSRP_UNKNOWN) {
    strcpy(e, "*");
  } else {
    snprintf(e, sizeof(e), "%llu", (unsigned long long)end);
  }
  if (total == DCMF_MSRP_UNKNOWN) {
    strcpy(t, "*");
  } else {
    snprintf(t, sizeof(t), "%llu", (unsigned long long)total);
  }
  snprintf(buf, cap, "%llu-%s/%s", (unsigned long long)start, e, t);
}

int dcmf_msrp_build_send(const struct dcmf_msrp_send *s,
                         const struct dcmf_msrp_rng *rng, uint8_t *out,
                         size_t cap) {
  struct dcmf_msrp_chunk c;
  char tid[DCMF_MSRP_TID_LEN], range[80];
  memset(&c, 0, sizeof(c));
  if (s->to_path == NULL || s->from_path == NULL) {
    return DCMF_ERR_INVALID;
  }
  int rv = dcmf_msrp_pick_tid(rng, s->has_body ? s->body : NULL,
                              s->has_body ? s->body_len : 0, tid);
  if (rv != 0) {
    return rv;
  }
  c.kind = DCMF_MSRP_REQUEST;
  c.method = DCMF_MSRP_SEND;
  c.tid = mkstr(tid, sizeof(tid));
  add_header(&c, "To-Path", s->to_path);
  add_header(&c, "From-Path", s->from_path);
  add_header(&c, "Message-ID", s->message_id);
  if (s->has_range) {
    format_range(range, sizeof(range), s->range.start, s->range.end,
                 s->range.total);
    add_header(&c, "Byte-Range", range);
  }
  add_header(&c, "Success-Report", s->success_report);
  add_header(&c, "Failure-Report", s->failure_report);
  if (s->has_body) {
    add_header(&c, "Content-Type", s->content_type);
  }
  c.has_body = s->has_body;
  c.body = s->body;
  c.body_len = s->body_len;
  c.flag = s->flag;
  return dcmf_msrp_write(&c, out, cap);
}

int dcmf_msrp_build_report(const char *to_path, const char *from_path,
                           const char *message_id,
                           const struct dcmf_msrp_range *range, int code,
                           const char *text, const struct dcmf_msrp_rng *rng,
                           uint8_t *out, size_t cap) {
  struct dcmf_msrp_chunk c;
  char tid[DCMF_MSRP_TID_LEN], rbuf[80], status[128];
  memset(&c, 0, sizeof(c));
  if (to_path == NULL || from_path == NULL || message_id == NULL ||
      code < 0 || code > 999 ||
      (text != NULL && strlen(text) > 100)) {
    return DCMF_ERR_INVALID;
  }
  int rv = dcmf_msrp_pick_tid(rng, NULL, 0, tid);
  if (rv != 0) {
    return rv;
  }
  c.kind = DCMF_MSRP_REQUEST;
  c.method = DCMF_MSRP_REPORT;
  c.tid = mkstr(tid, sizeof(tid));
  add_header(&c, "To-Path", to_path);
  add_header(&c, "From-Path", from_path);
  add_header(&c, "Message-ID", message_id);
  if (range != NULL) {
    format_range(rbuf, sizeof(rbuf), range->start, range->end, range->total);
    add_header(&c, "Byte-Range", rbuf);
  }
  snprintf(status, sizeof(status), "000 %03d%s%s", code,
           text != NULL && *text ? " " : "", text != NULL ? text : "");
  add_header(&c, "Status", status);
  c.flag = '$';
  return dcmf_msrp_write(&c, out, cap);
}

int dcmf_msrp_response_wanted(const struct dcmf_msrp_chunk *req, int code) {
  if (req->kind != DCMF_MSRP_REQUEST || req->method == DCMF_MSRP_REPORT) {
    return 0;
  }
  if (req->failure_report.p == NULL || msrp_str_ieq(req->failure_report, "yes")) {
    return 1;
  }
  return msrp_str_ieq(req->failure_report, "partial") && code != 200;
}

int dcmf_msrp_build_response(const struct dcmf_msrp_chunk *req, int code,
                             const char *comment, const char *own_uri,
                             uint8_t *out, size_t cap) {
  if (req->kind != DCMF_MSRP_REQUEST || req->method == DCMF_MSRP_REPORT ||
      code < 100 || code > 999) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_msrp_chunk c;
  memset(&c, 0, sizeof(c));
  struct dcmf_msrp_str to = req->from_path, from;
  if (req->method == DCMF_MSRP_SEND && dcmf_msrp_path_first(to, &to) != 0) {
    return DCMF_ERR_INVALID;
  }
  if (own_uri != NULL) {
    from = cstr(own_uri);
  } else if (dcmf_msrp_path_first(req->to_path, &from) != 0) {
    return DCMF_ERR_INVALID;
  }
  c.kind = DCMF_MSRP_RESPONSE;
  c.tid = req->tid;
  c.status = code;
  c.comment = cstr(comment);
  c.headers[0].name = cstr("To-Path");
  c.headers[0].value = to;
  c.headers[1].name = cstr("From-Path");
  c.headers[1].value = from;
  c.n_headers = 2;
  c.flag = '$';
  return dcmf_msrp_write(&c, out, cap);
}

int dcmf_msrp_rewrite_paths(const struct dcmf_msrp_chunk *c,
                            const char *to_path, const char *from_path,
                            uint8_t *out, size_t cap) {
  struct dcmf_msrp_chunk w = *c;
  if ((to_path != NULL && !msrp_valid_path(cstr(to_path))) ||
      (from_path != NULL && !msrp_valid_path(cstr(from_path)))) {
    return DCMF_ERR_INVALID;
  }
  for (size_t i = 0; i < w.n_headers; i++) {
    if (to_path != NULL && msrp_str_ieq(w.headers[i].name, "To-Path")) {
      w.headers[i].value = cstr(to_path);
    } else if (from_path != NULL && msrp_str_ieq(w.headers[i].name, "From-Path")) {
      w.headers[i].value = cstr(from_path);
    }
  }
  return dcmf_msrp_write(&w, out, cap);
}

/* ---- re-chunking ---- */

int dcmf_msrp_rechunk_init(struct dcmf_msrp_rechunker *r,
                           const struct dcmf_msrp_chunk *c, size_t max_body) {
  memset(r, 0, sizeof(*r));
  if (c->kind != DCMF_MSRP_REQUEST || c->method != DCMF_MSRP_SEND ||
      max_body == 0) {
    return DCMF_ERR_INVALID;
  }
  if (c->has_range) {
    r->start = c->range.start;
    r->total = c->range.total;
  } else if (c->flag == '$') {
    /* §7.3.1: no Byte-Range and '$' is the whole message */
    r->start = 1;
    r->total = c->body_len;
  } else {
    return DCMF_ERR_INVALID;
  }
  r->c = c;
  r->max_body = max_body;
  return 0;
}

/* Index of the first Content-* header (or n_headers). */
static size_t first_content_header(const struct dcmf_msrp_chunk *c) {
  for (size_t i = 0; i < c->n_headers; i++) {
    struct dcmf_msrp_str n = c->headers[i].name;
    if (n.len >= 8 && msrp_str_ieq(mkstr(n.p, 8), "Content-")) {
      return i;
    }
  }
  return c->n_headers;
}

int dcmf_msrp_write_piece(const struct dcmf_msrp_chunk *c,
                          const uint8_t *body, size_t len, uint64_t start,
                          uint64_t total, char flag,
                          const struct dcmf_msrp_rng *rng, uint8_t *out,
                          size_t cap) {
  struct dcmf_msrp_chunk w = *c;
  char tid[DCMF_MSRP_TID_LEN], range[80];
  if (c->kind != DCMF_MSRP_REQUEST || !c->has_body || start == 0) {
    return DCMF_ERR_INVALID;
  }
  int rv = dcmf_msrp_pick_tid(rng, body, len, tid);
  if (rv != 0) {
    return rv;
  }
  /* §7.1.1: a body over 2048 octets goes with range-end '*' */
  uint64_t end = len > 2048 ? DCMF_MSRP_UNKNOWN : start + len - 1;
  format_range(range, sizeof(range), start, end, total);
  size_t i;
  for (i = 0; i < w.n_headers; i++) {
    if (msrp_str_ieq(w.headers[i].name, "Byte-Range")) {
      w.headers[i].value = cstr(range);
      break;
    }
  }
  if (i == w.n_headers) {
    if (w.n_headers == DCMF_MSRP_MAX_HEADERS) {
      return DCMF_ERR_INVALID;
    }
    size_t at = first_content_header(&w);
    memmove(&w.headers[at + 1], &w.headers[at],
            (w.n_headers - at) * sizeof(w.headers[0]));
    w.headers[at].name = cstr("Byte-Range");
    w.headers[at].value = cstr(range);
    w.n_headers++;
  }
  w.tid = mkstr(tid, sizeof(tid));
  w.body = body;
  w.body_len = len;
  w.flag = flag;
  return dcmf_msrp_write(&w, out, cap);
}

int dcmf_msrp_rechunk_next(struct dcmf_msrp_rechunker *r,
                           const struct dcmf_msrp_rng *rng, uint8_t *out,
                           size_t cap) {
  const struct dcmf_msrp_chunk *c = r->c;
  if (r->done || c == NULL) {
    return 0;
  }
  if (!c->has_body || c->body_len <= r->max_body) {
    int n = dcmf_msrp_write(c, out, cap);
    if (n >= 0) {
      r->done = 1;
    }
    return n;
  }
  size_t n = c->body_len - r->off;
  if (n > r->max_body) {
    n = r->max_body;
  }
  int last = r->off + n == c->body_len;
  int len = dcmf_msrp_write_piece(c, c->body + r->off, n, r->start + r->off,
                                  r->total, last ? c->flag : '+', rng, out,
                                  cap);
  if (len >= 0) {
    r->off += n;
    r->done = last;
  }
  return len;
}
