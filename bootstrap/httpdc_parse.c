/*
 * httpdc_parse.c - the request side of httpdc.h that needs no engine
 * state beyond the head buffer: character classes, and the parsing of a
 * complete request head (request line, header fields, framing). The
 * engine object is httpdc_int.h's.
 */
#include "httpdc_int.h"

#include <string.h>

#include "errors.h"

/* ---- character classes ------------------------------------------------ */

int httpdc_is_tchar(unsigned char c) {
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
int httpdc_is_field_char(unsigned char c, int allow_obs_text) {
  return is_vchar(c) || c == ' ' || c == '\t' ||
         (allow_obs_text && c >= 0x80);
}

static int ascii_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Case-insensitive comparison of |n| bytes at |a| with the literal |lit|. */
int httpdc_span_ieq(const char *a, size_t n, const char *lit) {
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

int httpdc_span_eq(const char *a, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(a, lit, n) == 0;
}

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* Calls |fn| for each element of a comma-separated list value, with
 * surrounding white space removed; empty elements are skipped. Stops and
 * returns 1 as soon as |fn| returns 1. */
int httpdc_list_any(const char *v, size_t n,
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
  return httpdc_span_ieq(el, len, arg);
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
    if (!httpdc_span_eq(req->method, req->method_len, "OPTIONS")) {
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
  while (i < n && httpdc_is_tchar((unsigned char)l[i])) {
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
  while (i < n && httpdc_is_tchar((unsigned char)l[i])) {
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
    if (!httpdc_is_field_char((unsigned char)l[k], 1)) {
      return 400;
    }
  }
  hd->value = l + i;
  hd->value_len = end - i;
  return 0;
}

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
  return httpdc_span_ieq(v + start, end - start, "chunked");
}

static int framing_scan(const struct dcmf_httpdc_header *hdrs, size_t n,
                        struct framing *f) {
  memset(f, 0, sizeof(*f));
  for (size_t i = 0; i < n; i++) {
    const struct dcmf_httpdc_header *hd = &hdrs[i];
    if (httpdc_span_ieq(hd->name, hd->name_len, "content-length")) {
      uint64_t v;
      if (content_length_parse(hd->value, hd->value_len, &v) != 0 ||
          (f->have_length && v != f->content_length)) {
        return 400;
      }
      f->content_length = v;
      f->have_length = 1;
    } else if (httpdc_span_ieq(hd->name, hd->name_len, "transfer-encoding")) {
      f->te = 1;
      f->te_chunked = last_is_chunked(hd->value, hd->value_len);
    } else if (httpdc_span_ieq(hd->name, hd->name_len, "connection")) {
      f->conn_close |=
          httpdc_list_any(hd->value, hd->value_len, el_ieq, "close");
      f->keep_alive |=
          httpdc_list_any(hd->value, hd->value_len, el_ieq, "keep-alive");
    } else if (httpdc_span_ieq(hd->name, hd->name_len, "expect")) {
      f->expect_continue |=
          httpdc_span_ieq(hd->value, hd->value_len, "100-continue");
    }
  }
  return 0;
}

/* Parses the complete head in headbuf; returns 0 or an error status. */
int httpdc_head_parse(struct dcmf_httpdc *h, struct dcmf_httpdc_request *req,
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
