/*
 * msrp.c - reading MSRP chunks (msrp.h): the scan that finds a chunk's
 * head, body and end-line in bytes that arrive in pieces, the parser of
 * the start line and headers, and the streaming framer.
 */
#include "msrp.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "msrp_int.h"

int msrp_str_ieq(struct dcmf_msrp_str s, const char *lit) {
  size_t n = strlen(lit);
  if (s.len != n) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (tolower_ascii((unsigned char)s.p[i]) != tolower_ascii(lit[i])) {
      return 0;
    }
  }
  return 1;
}

int msrp_valid_ident(const char *p, size_t len) {
  if (len < DCMF_MSRP_TID_MIN || len > DCMF_MSRP_TID_MAX ||
      !is_alnum((unsigned char)p[0])) {
    return 0;
  }
  for (size_t i = 1; i < len; i++) {
    if (!is_ident_char((unsigned char)p[i])) {
      return 0;
    }
  }
  return 1;
}

static int valid_text(const char *p, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (!is_text_byte((unsigned char)p[i])) {
      return 0;
    }
  }
  return 1;
}

/* 1 to 19 digits into |*v| (19 digits always fit 64 bits). */
int msrp_parse_u64(const char *p, size_t len, uint64_t *v) {
  if (len == 0 || len > 19) {
    return 0;
  }
  uint64_t x = 0;
  for (size_t i = 0; i < len; i++) {
    if (!is_digit((unsigned char)p[i])) {
      return 0;
    }
    x = x * 10 + (uint64_t)(p[i] - '0');
  }
  *v = x;
  return 1;
}

/* Where |needle| first occurs in |hay|, or NULL. */
/* ---- the scan: where a chunk's head, body and end-line are ---- */

/* Matches the bytes at |p| (|avail| of them) against the start of
 * CRLF "-------" tid flag CRLF. Returns 1 if the whole end-line is
 * there (flag into |*flag|), 0 if what is there matches so far, -1 on
 * a mismatch. */
static int match_end(const uint8_t *p, size_t avail,
                     const struct dcmf_msrp_scan *s, char *flag) {
  size_t pl = 9 + s->tid_len, need = pl + 3;
  size_t n = avail < need ? avail : need;
  for (size_t i = 0; i < n; i++) {
    int want;
    if (i < 2) {
      want = i == 0 ? '\r' : '\n';
    } else if (i < 9) {
      want = '-';
    } else if (i < pl) {
      want = (unsigned char)s->tid[i - 9];
    } else if (i == pl) {
      if (p[i] != '$' && p[i] != '+' && p[i] != '#') {
        return -1;
      }
      continue;
    } else {
      want = i == pl + 1 ? '\r' : '\n';
    }
    if (p[i] != want) {
      return -1;
    }
  }
  if (avail < need) {
    return 0;
  }
  *flag = (char)p[pl];
  return 1;
}

/* The start line's transaction id and kind, for the end-line search. */
static int scan_start_line(struct dcmf_msrp_scan *s, const uint8_t *b,
                           size_t n) {
  const char *p = (const char *)b;
  if (n < 5 || memcmp(p, "MSRP ", 5) != 0) {
    return DCMF_ERR_MALFORMED;
  }
  const char *sp = memchr(p + 5, ' ', n - 5);
  if (sp == NULL || !msrp_valid_ident(p + 5, (size_t)(sp - p - 5))) {
    return DCMF_ERR_MALFORMED;
  }
  s->tid_len = (size_t)(sp - p - 5);
  memcpy(s->tid, p + 5, s->tid_len);
  size_t rest = n - (size_t)(sp + 1 - p);
  const char *r = sp + 1;
  s->response = rest >= 3 && is_digit(r[0]) && is_digit(r[1]) &&
                is_digit(r[2]) && (rest == 3 || r[3] == ' ');
  return 0;
}

/*
 * Advances the scan over |len| bytes at |b| (the chunk's first byte
 * first). Returns 1 when the chunk is whole (s->total and the rest
 * set), 0 when more bytes are needed, or an error.
 */
static int scan_chunk(struct dcmf_msrp_scan *s, const uint8_t *b, size_t len,
                      const struct dcmf_msrp_limits *lim) {
  if (s->phase == 0 && s->line == 0) {
    /* Not an MSRP stream: say so now, not once a line is too long. */
    size_t n = len < 5 ? len : 5;
    if (n > 0 && memcmp(b, "MSRP ", n) != 0) {
      return DCMF_ERR_MALFORMED;
    }
  }
  while (s->phase == 0) {
    const uint8_t *nl =
        s->scan < len ? memchr(b + s->scan, '\n', len - s->scan) : NULL;
    if (nl == NULL) {
      s->scan = len;
      return len > lim->max_header ? DCMF_ERR_TOO_LARGE : 0;
    }
    size_t lf = (size_t)(nl - b);
    if (lf + 1 > lim->max_header) {
      return DCMF_ERR_TOO_LARGE;
    }
    if (lf == s->line || b[lf - 1] != '\r') {
      return DCMF_ERR_MALFORMED; /* a bare LF */
    }
    size_t ls = s->line, ll = lf - 1 - ls;
    if (ls == 0) {
      int rv = scan_start_line(s, b, ll);
      if (rv != 0) {
        return rv;
      }
    } else if (ll == 0) {
      if (s->response) {
        return DCMF_ERR_MALFORMED; /* responses carry no body */
      }
      s->head_end = ls;
      s->body_start = s->scan = lf + 1;
      s->phase = 1;
      break;
    } else if (ll >= 7 && memcmp(b + ls, "-------", 7) == 0) {
      /* the end-line of a chunk without body: no CRLF before it */
      char flag;
      if (ll != 7 + s->tid_len + 1 || ls < 2 ||
          match_end(b + ls - 2, ll + 4, s, &flag) != 1) {
        return DCMF_ERR_MALFORMED;
      }
      s->head_end = ls;
      s->total = lf + 1;
      s->flag = flag;
      s->has_body = 0;
      return 1;
    }
    s->line = s->scan = lf + 1;
  }
  /* The body ends at the first CRLF "-------" tid flag CRLF. */
  size_t p = s->scan;
  for (;;) {
    const uint8_t *cr = p < len ? memchr(b + p, '\r', len - p) : NULL;
    if (cr == NULL) {
      s->scan = len;
      return len - s->body_start > lim->max_body ? DCMF_ERR_TOO_LARGE : 0;
    }
    p = (size_t)(cr - b);
    if (p - s->body_start > lim->max_body) {
      return DCMF_ERR_TOO_LARGE;
    }
    char flag;
    int m = match_end(b + p, len - p, s, &flag);
    if (m == 1) {
      s->body_end = p;
      s->total = p + 9 + s->tid_len + 3;
      s->flag = flag;
      s->has_body = 1;
      return 1;
    }
    if (m == 0) {
      s->scan = p; /* an end-line may be arriving: look here again */
      return 0;
    }
    p++;
  }
}

/* ---- the head: start line and headers ---- */

static int parse_range(struct dcmf_msrp_str v, struct dcmf_msrp_range *r) {
  const char *dash = memchr(v.p, '-', v.len);
  const char *slash = memchr(v.p, '/', v.len);
  if (dash == NULL || slash == NULL || slash < dash) {
    return 0;
  }
  const char *e = dash + 1, *t = slash + 1;
  size_t el = (size_t)(slash - e), tl = (size_t)(v.p + v.len - t);
  if (!msrp_parse_u64(v.p, (size_t)(dash - v.p), &r->start) || r->start < 1) {
    return 0;
  }
  if (el == 1 && *e == '*') {
    r->end = DCMF_MSRP_UNKNOWN;
  } else if (!msrp_parse_u64(e, el, &r->end) || r->end + 1 < r->start) {
    return 0;
  }
  if (tl == 1 && *t == '*') {
    r->total = DCMF_MSRP_UNKNOWN;
  } else if (!msrp_parse_u64(t, tl, &r->total) ||
             (r->end != DCMF_MSRP_UNKNOWN && r->end > r->total)) {
    return 0;
  }
  return 1;
}

static int parse_status(struct dcmf_msrp_str v, struct dcmf_msrp_chunk *c) {
  uint64_t ns, code;
  if (v.len < 7 || v.p[3] != ' ' || !msrp_parse_u64(v.p, 3, &ns) ||
      !msrp_parse_u64(v.p + 4, 3, &code) || (v.len > 7 && v.p[7] != ' ')) {
    return 0;
  }
  c->has_status = 1;
  c->status_ns = (int)ns;
  c->status_code = (int)code;
  return 1;
}

/* media-type = type "/" subtype *( ";" gen-param ): the type and subtype
 * are checked, the parameters only as text. */
static int valid_content_type(struct dcmf_msrp_str v) {
  size_t i = 0;
  while (i < v.len && is_token_char((unsigned char)v.p[i])) {
    i++;
  }
  if (i == 0 || i == v.len || v.p[i] != '/') {
    return 0;
  }
  size_t sub = ++i;
  while (i < v.len && is_token_char((unsigned char)v.p[i])) {
    i++;
  }
  return i > sub && (i == v.len || v.p[i] == ';' || v.p[i] == ' ');
}

/* Sets the known field |*slot| once. */
static int set_once(struct dcmf_msrp_str *slot, struct dcmf_msrp_str v) {
  if (slot->p != NULL) {
    return 0;
  }
  *slot = v;
  return 1;
}

static int parse_header(struct dcmf_msrp_chunk *c, struct dcmf_msrp_str n,
                        struct dcmf_msrp_str v) {
  if (msrp_str_ieq(n, "To-Path")) {
    return set_once(&c->to_path, v) && msrp_valid_path(v);
  }
  if (msrp_str_ieq(n, "From-Path")) {
    return set_once(&c->from_path, v) && msrp_valid_path(v);
  }
  if (msrp_str_ieq(n, "Message-ID")) {
    return set_once(&c->message_id, v) && msrp_valid_ident(v.p, v.len);
  }
  if (msrp_str_ieq(n, "Success-Report")) {
    return set_once(&c->success_report, v) &&
           (msrp_str_ieq(v, "yes") || msrp_str_ieq(v, "no"));
  }
  if (msrp_str_ieq(n, "Failure-Report")) {
    return set_once(&c->failure_report, v) &&
           (msrp_str_ieq(v, "yes") || msrp_str_ieq(v, "no") || msrp_str_ieq(v, "partial"));
  }
  if (msrp_str_ieq(n, "Content-Type")) {
    return set_once(&c->content_type, v) && valid_content_type(v);
  }
  if (msrp_str_ieq(n, "Byte-Range")) {
    if (c->has_range) {
      return 0;
    }
    c->has_range = 1;
    return parse_range(v, &c->range);
  }
  if (msrp_str_ieq(n, "Status")) {
    return !c->has_status && parse_status(v, c);
  }
  return 1;
}

static int parse_start_line(struct dcmf_msrp_chunk *c, const char *p,
                            size_t n, const struct dcmf_msrp_scan *s) {
  /* "MSRP " tid " " was checked by the scan */
  c->tid = mkstr(p + 5, s->tid_len);
  const char *r = p + 5 + s->tid_len + 1;
  size_t rl = n - 5 - s->tid_len - 1;
  if (s->response) {
    c->kind = DCMF_MSRP_RESPONSE;
    c->status = (r[0] - '0') * 100 + (r[1] - '0') * 10 + (r[2] - '0');
    c->comment = rl > 3 ? mkstr(r + 4, rl - 4) : mkstr(r + 3, 0);
    return valid_text(c->comment.p, c->comment.len) ? 0 : DCMF_ERR_MALFORMED;
  }
  c->kind = DCMF_MSRP_REQUEST;
  if (rl == 0) {
    return DCMF_ERR_MALFORMED;
  }
  for (size_t i = 0; i < rl; i++) {
    if (r[i] < 'A' || r[i] > 'Z') {
      return DCMF_ERR_MALFORMED;
    }
  }
  c->method_name = mkstr(r, rl);
  c->method = msrp_str_ieq(c->method_name, "SEND")     ? DCMF_MSRP_SEND
              : msrp_str_ieq(c->method_name, "REPORT") ? DCMF_MSRP_REPORT
                                                  : DCMF_MSRP_OTHER;
  return 0;
}

/* Fills |c| from the whole chunk at |b| whose scan is |s|. */
static int parse_chunk(const uint8_t *b, const struct dcmf_msrp_scan *s,
                       struct dcmf_msrp_chunk *c) {
  const char *t = (const char *)b;
  memset(c, 0, sizeof(*c));
  const char *lf = memchr(t, '\n', s->head_end);
  size_t first = (size_t)(lf - t) - 1; /* the start line's length */
  int rv = parse_start_line(c, t, first, s);
  if (rv != 0) {
    return rv;
  }
  for (size_t at = first + 2; at < s->head_end;) {
    const char *eol = memchr(t + at, '\n', s->head_end - at);
    size_t ll = (size_t)(eol - t) - 1 - at;
    const char *line = t + at;
    at += ll + 2;
    const char *colon = memchr(line, ':', ll);
    if (colon == NULL || colon == line || !is_alpha((unsigned char)line[0])) {
      return DCMF_ERR_MALFORMED;
    }
    struct dcmf_msrp_str n = mkstr(line, (size_t)(colon - line));
    for (size_t i = 1; i < n.len; i++) {
      if (!is_token_char((unsigned char)n.p[i])) {
        return DCMF_ERR_MALFORMED;
      }
    }
    /* §9 puts one SP after the colon; more SP or HTAB are let by */
    const char *v = colon + 1, *end = line + ll;
    while (v < end && (*v == ' ' || *v == '\t')) {
      v++;
    }
    struct dcmf_msrp_str val = mkstr(v, (size_t)(end - v));
    if (!valid_text(val.p, val.len)) {
      return DCMF_ERR_MALFORMED;
    }
    if (c->n_headers == DCMF_MSRP_MAX_HEADERS) {
      return DCMF_ERR_TOO_LARGE;
    }
    if (c->content_type.p != NULL) {
      return DCMF_ERR_MALFORMED; /* §7.1: Content-Type is the last one */
    }
    c->headers[c->n_headers].name = n;
    c->headers[c->n_headers].value = val;
    c->n_headers++;
    if (!parse_header(c, n, val)) {
      return DCMF_ERR_MALFORMED;
    }
  }
  if (c->to_path.p == NULL || c->from_path.p == NULL ||
      (c->content_type.p != NULL) != (s->has_body != 0)) {
    return DCMF_ERR_MALFORMED;
  }
  c->has_body = s->has_body;
  if (s->has_body) {
    c->body = b + s->body_start;
    c->body_len = s->body_end - s->body_start;
  }
  c->flag = s->flag;
  c->raw = b;
  c->raw_len = s->total;
  return 0;
}

int dcmf_msrp_parse(const uint8_t *buf, size_t len,
                    const struct dcmf_msrp_limits *lim,
                    struct dcmf_msrp_chunk *c) {
  struct dcmf_msrp_scan s;
  memset(&s, 0, sizeof(s));
  int rv = scan_chunk(&s, buf, len, lim);
  if (rv < 0) {
    return rv;
  }
  if (rv == 0 || s.total != len) {
    return DCMF_ERR_MALFORMED; /* cut short, or more than one chunk */
  }
  return parse_chunk(buf, &s, c);
}

/* ---- the framer ---- */

/* The most bytes one chunk at the limits takes (saturating). */
static size_t framer_limit(const struct dcmf_msrp_limits *lim) {
  size_t l = lim->max_header + lim->max_body;
  if (l < lim->max_header || l + DCMF_MSRP_END_MAX < l) {
    return SIZE_MAX;
  }
  return l + DCMF_MSRP_END_MAX;
}

int dcmf_msrp_framer_init(struct dcmf_msrp_framer *f,
                          const struct dcmf_msrp_limits *lim) {
  memset(f, 0, sizeof(*f));
  if (lim->max_header == 0 || lim->max_body == 0) {
    return DCMF_ERR_INVALID;
  }
  f->lim = *lim;
  return 0;
}

void dcmf_msrp_framer_free(struct dcmf_msrp_framer *f) {
  dcmf_streambuf_free(&f->win);
  memset(f, 0, sizeof(*f));
}

int dcmf_msrp_framer_feed(struct dcmf_msrp_framer *f, const uint8_t *data,
                          size_t len) {
  if (f->err != 0) {
    return f->err;
  }
  if (len > (size_t)INT32_MAX) {
    len = (size_t)INT32_MAX; /* the count taken is returned as an int */
  }
  /* Chunks handed out before are given up now: the window drops their
   * bytes, and holds at most one chunk at the limits. */
  size_t taken;
  int rv = dcmf_streambuf_feed(&f->win, data, len, framer_limit(&f->lim),
                               &taken);
  return rv != 0 ? rv : (int)taken;
}

int dcmf_msrp_framer_next(struct dcmf_msrp_framer *f,
                          struct dcmf_msrp_chunk *c) {
  if (f->err != 0) {
    return f->err;
  }
  size_t avail = dcmf_streambuf_avail(&f->win);
  if (avail == 0) {
    return 0;
  }
  const uint8_t *b = dcmf_streambuf_data(&f->win);
  int rv = scan_chunk(&f->s, b, avail, &f->lim);
  if (rv == 1) {
    rv = parse_chunk(b, &f->s, c);
    if (rv == 0) {
      dcmf_streambuf_consume(&f->win, f->s.total);
      memset(&f->s, 0, sizeof(f->s));
      return 1;
    }
  }
  if (rv < 0) {
    f->err = rv;
  }
  return rv;
}

size_t dcmf_msrp_framer_pending(const struct dcmf_msrp_framer *f) {
  return dcmf_streambuf_avail(&f->win);
}

int dcmf_msrp_framer_partial(const struct dcmf_msrp_framer *f,
                             struct dcmf_msrp_chunk *c) {
  if (f->err != 0 || f->s.phase != 1) {
    return f->err;
  }
  /* Bytes before the scan position hold no start of the end-line (the
   * scan stops on any CR that may begin one), so they are body. */
  struct dcmf_msrp_scan s = f->s;
  s.has_body = 1;
  s.body_end = s.scan;
  s.total = s.scan;
  s.flag = 0;
  int rv = parse_chunk(dcmf_streambuf_data(&f->win), &s, c);
  return rv == 0 ? 1 : rv;
}

void dcmf_msrp_framer_drop_body(struct dcmf_msrp_framer *f, size_t n) {
  if (f->err != 0 || f->s.phase != 1 || n > f->s.scan - f->s.body_start) {
    return;
  }
  /* The head moves up over the dropped bytes, so the chunk in progress
   * stays one run of bytes: head, then the rest of the body. */
  uint8_t *b = f->win.buf + f->win.start;
  memmove(b + n, b, f->s.body_start);
  dcmf_streambuf_consume(&f->win, n);
  f->s.scan -= n;
}
