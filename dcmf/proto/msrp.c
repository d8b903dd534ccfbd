#include "msrp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* ---- character classes (RFC 4975 §9, RFC 3986 §2) ---- */

static int is_alpha(int ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int is_digit(int ch) {
  return ch >= '0' && ch <= '9';
}

static int is_alnum(int ch) {
  return is_alpha(ch) || is_digit(ch);
}

static int is_ident_char(int ch) {
  return is_alnum(ch) || ch == '.' || ch == '-' || ch == '+' || ch == '%' ||
         ch == '=';
}

/* token = 1*(%x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A /
 * %x5E-7E) */
static int is_token_char(int ch) {
  return ch == 0x21 || (ch >= 0x23 && ch <= 0x27) || ch == 0x2A ||
         ch == 0x2B || ch == 0x2D || ch == 0x2E || is_digit(ch) ||
         (ch >= 0x41 && ch <= 0x5A) || (ch >= 0x5E && ch <= 0x7E);
}

static int is_unreserved(int ch) {
  return is_alnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* utf8text: HTAB, printable ASCII, and bytes of multi-byte UTF-8
 * characters (taken as they are, not decoded). */
static int is_text_byte(int ch) {
  return ch == '\t' || (ch >= 0x20 && ch <= 0x7E) || ch >= 0x80;
}

static int tolower_ascii(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* |s| equals the NUL-terminated |lit| without case. */
static int str_ieq(struct dcmf_msrp_str s, const char *lit) {
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

static int str_ieq2(struct dcmf_msrp_str a, struct dcmf_msrp_str b) {
  if (a.len != b.len) {
    return 0;
  }
  for (size_t i = 0; i < a.len; i++) {
    if (tolower_ascii((unsigned char)a.p[i]) !=
        tolower_ascii((unsigned char)b.p[i])) {
      return 0;
    }
  }
  return 1;
}

static struct dcmf_msrp_str mkstr(const char *p, size_t len) {
  struct dcmf_msrp_str s = {p, len};
  return s;
}

static struct dcmf_msrp_str cstr(const char *p) {
  return mkstr(p, p != NULL ? strlen(p) : 0);
}

static int valid_ident(const char *p, size_t len) {
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
static int parse_u64(const char *p, size_t len, uint64_t *v) {
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

/* ---- URIs (RFC 4975 §6, §9) ---- */

static int valid_host(const char *p, size_t len, int ipv6) {
  if (len == 0) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    int ch = (unsigned char)p[i];
    int ok = ipv6 ? (is_digit(ch) || (tolower_ascii(ch) >= 'a' &&
                                      tolower_ascii(ch) <= 'f') ||
                     ch == ':' || ch == '.')
                  : (is_unreserved(ch) || ch == '%' || strchr("!$&'()*+,=", ch));
    if (!ok || ch == 0) {
      return 0;
    }
  }
  return 1;
}

static int parse_port(const char *p, size_t len, uint16_t *port) {
  uint64_t v;
  if (len > 5 || !parse_u64(p, len, &v) || v > 65535) {
    return 0;
  }
  *port = (uint16_t)v;
  return 1;
}

static int parse_authority(const char *p, size_t len,
                           struct dcmf_msrp_uri *u) {
  const char *at = NULL;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '@') {
      at = p + i;
    }
  }
  if (at != NULL) {
    u->userinfo = mkstr(p, (size_t)(at - p));
    len -= (size_t)(at - p) + 1;
    p = at + 1;
    for (size_t i = 0; i < u->userinfo.len; i++) {
      int ch = (unsigned char)u->userinfo.p[i];
      if (!is_unreserved(ch) && !strchr("%&=+$,;?/", ch)) {
        return 0;
      }
    }
  }
  const char *hp = p, *port = NULL;
  size_t hl = len;
  int ipv6 = 0;
  if (len > 0 && p[0] == '[') {
    const char *close = memchr(p, ']', len);
    if (close == NULL) {
      return 0;
    }
    hp = p + 1;
    hl = (size_t)(close - hp);
    ipv6 = 1;
    size_t rest = len - (size_t)(close + 1 - p);
    if (rest > 0) {
      if (close[1] != ':') {
        return 0;
      }
      port = close + 2;
    }
  } else {
    size_t colons = 0;
    const char *last = NULL;
    for (size_t i = 0; i < len; i++) {
      if (p[i] == ':') {
        colons++;
        last = p + i;
      }
    }
    if (colons > 0) {
      /* Two colons or more: an IPv6 address without brackets, its port
       * after the last colon (RFC 8873 §4.8's example). */
      ipv6 = colons > 1;
      hl = (size_t)(last - p);
      port = last + 1;
    }
  }
  if (!valid_host(hp, hl, ipv6)) {
    return 0;
  }
  u->host = mkstr(hp, hl);
  if (port != NULL) {
    if (!parse_port(port, (size_t)(p + len - port), &u->port)) {
      return 0;
    }
    u->has_port = 1;
  }
  return 1;
}

int dcmf_msrp_uri_parse(const char *s, size_t len, struct dcmf_msrp_uri *u) {
  memset(u, 0, sizeof(*u));
  size_t at;
  if (len >= 7 && str_ieq(mkstr(s, 7), "msrp://")) {
    at = 7;
  } else if (len >= 8 && str_ieq(mkstr(s, 8), "msrps://")) {
    at = 8;
    u->secure = 1;
  } else {
    return DCMF_ERR_MALFORMED;
  }
  size_t auth = at;
  while (at < len && s[at] != '/' && s[at] != ';') {
    at++;
  }
  if (!parse_authority(s + auth, at - auth, u)) {
    return DCMF_ERR_MALFORMED;
  }
  if (at < len && s[at] == '/') {
    size_t sid = ++at;
    while (at < len && s[at] != ';') {
      int ch = (unsigned char)s[at];
      if (!is_unreserved(ch) && ch != '+' && ch != '=' && ch != '/') {
        return DCMF_ERR_MALFORMED;
      }
      at++;
    }
    if (at == sid) {
      return DCMF_ERR_MALFORMED;
    }
    u->session_id = mkstr(s + sid, at - sid);
  }
  /* ";" transport: required (§6: "tcp" over TCP; RFC 8873 §4.1: "dc"). */
  if (at >= len || s[at] != ';') {
    return DCMF_ERR_MALFORMED;
  }
  size_t tr = ++at;
  while (at < len && s[at] != ';') {
    if (!is_alnum((unsigned char)s[at])) {
      return DCMF_ERR_MALFORMED;
    }
    at++;
  }
  if (at == tr) {
    return DCMF_ERR_MALFORMED;
  }
  u->transport = mkstr(s + tr, at - tr);
  if (at < len) {
    /* *( ";" token ["=" token] ) */
    size_t ps = ++at;
    int in_token = 0, seen_eq = 0;
    for (; at <= len; at++) {
      int ch = at < len ? (unsigned char)s[at] : ';';
      if (ch == ';') {
        if (!in_token) {
          return DCMF_ERR_MALFORMED;
        }
        in_token = 0;
        seen_eq = 0;
      } else if (ch == '=' && in_token && !seen_eq) {
        seen_eq = 1;
        in_token = 0;
      } else if (is_token_char(ch)) {
        in_token = 1;
      } else {
        return DCMF_ERR_MALFORMED;
      }
    }
    u->params = mkstr(s + ps, len - ps);
  }
  return 0;
}

int dcmf_msrp_uri_equal(const struct dcmf_msrp_uri *a,
                        const struct dcmf_msrp_uri *b) {
  return a->secure == b->secure && str_ieq2(a->host, b->host) &&
         a->has_port == b->has_port && a->port == b->port &&
         a->session_id.len == b->session_id.len &&
         (a->session_id.len == 0 ||
          memcmp(a->session_id.p, b->session_id.p, a->session_id.len) == 0) &&
         str_ieq2(a->transport, b->transport);
}

int dcmf_msrp_path_first(struct dcmf_msrp_str path,
                         struct dcmf_msrp_str *first) {
  const char *sp = path.len > 0 ? memchr(path.p, ' ', path.len) : NULL;
  size_t n = sp != NULL ? (size_t)(sp - path.p) : path.len;
  if (n == 0) {
    return DCMF_ERR_MALFORMED;
  }
  *first = mkstr(path.p, n);
  return 0;
}

/* A path value: MSRP-URI *(SP MSRP-URI). */
static int valid_path(struct dcmf_msrp_str v) {
  size_t at = 0;
  if (v.len == 0) {
    return 0;
  }
  while (at <= v.len) {
    const char *sp = memchr(v.p + at, ' ', v.len - at);
    size_t end = sp != NULL ? (size_t)(sp - v.p) : v.len;
    struct dcmf_msrp_uri u;
    if (end == at || dcmf_msrp_uri_parse(v.p + at, end - at, &u) != 0) {
      return 0;
    }
    at = end + 1;
  }
  return 1;
}

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
  if (sp == NULL || !valid_ident(p + 5, (size_t)(sp - p - 5))) {
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
    if (memcmp(b, "MSRP ", n) != 0) {
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
  if (!parse_u64(v.p, (size_t)(dash - v.p), &r->start) || r->start < 1) {
    return 0;
  }
  if (el == 1 && *e == '*') {
    r->end = DCMF_MSRP_UNKNOWN;
  } else if (!parse_u64(e, el, &r->end) || r->end + 1 < r->start) {
    return 0;
  }
  if (tl == 1 && *t == '*') {
    r->total = DCMF_MSRP_UNKNOWN;
  } else if (!parse_u64(t, tl, &r->total) ||
             (r->end != DCMF_MSRP_UNKNOWN && r->end > r->total)) {
    return 0;
  }
  return 1;
}

static int parse_status(struct dcmf_msrp_str v, struct dcmf_msrp_chunk *c) {
  uint64_t ns, code;
  if (v.len < 7 || v.p[3] != ' ' || !parse_u64(v.p, 3, &ns) ||
      !parse_u64(v.p + 4, 3, &code) || (v.len > 7 && v.p[7] != ' ')) {
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
  if (str_ieq(n, "To-Path")) {
    return set_once(&c->to_path, v) && valid_path(v);
  }
  if (str_ieq(n, "From-Path")) {
    return set_once(&c->from_path, v) && valid_path(v);
  }
  if (str_ieq(n, "Message-ID")) {
    return set_once(&c->message_id, v) && valid_ident(v.p, v.len);
  }
  if (str_ieq(n, "Success-Report")) {
    return set_once(&c->success_report, v) &&
           (str_ieq(v, "yes") || str_ieq(v, "no"));
  }
  if (str_ieq(n, "Failure-Report")) {
    return set_once(&c->failure_report, v) &&
           (str_ieq(v, "yes") || str_ieq(v, "no") || str_ieq(v, "partial"));
  }
  if (str_ieq(n, "Content-Type")) {
    return set_once(&c->content_type, v) && valid_content_type(v);
  }
  if (str_ieq(n, "Byte-Range")) {
    if (c->has_range) {
      return 0;
    }
    c->has_range = 1;
    return parse_range(v, &c->range);
  }
  if (str_ieq(n, "Status")) {
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
  c->method = str_ieq(c->method_name, "SEND")     ? DCMF_MSRP_SEND
              : str_ieq(c->method_name, "REPORT") ? DCMF_MSRP_REPORT
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
  free(f->buf);
  memset(f, 0, sizeof(*f));
}

int dcmf_msrp_framer_feed(struct dcmf_msrp_framer *f, const uint8_t *data,
                          size_t len) {
  if (f->err != 0) {
    return f->err;
  }
  if (f->start > 0) {
    /* Chunks handed out before are now given up: drop their bytes. */
    memmove(f->buf, f->buf + f->start, f->len - f->start);
    f->len -= f->start;
    f->start = 0;
  }
  size_t limit = framer_limit(&f->lim);
  size_t take = limit - f->len;
  if (take > len) {
    take = len;
  }
  if (take > (size_t)INT32_MAX) {
    take = (size_t)INT32_MAX;
  }
  if (take == 0) {
    return 0;
  }
  if (f->len + take > f->cap) {
    /* Doubling, but never past one chunk at the limits. */
    size_t need = f->len + take, cap = f->cap < 4096 ? 4096 : f->cap;
    while (cap < need && cap <= SIZE_MAX / 2) {
      cap *= 2;
    }
    if (cap < need || cap > limit) {
      cap = need > limit ? need : limit;
    }
    uint8_t *nb = realloc(f->buf, cap);
    if (nb == NULL) {
      return DCMF_ERR_NOMEM;
    }
    f->buf = nb;
    f->cap = cap;
  }
  memcpy(f->buf + f->len, data, take);
  f->len += take;
  return (int)take;
}

int dcmf_msrp_framer_next(struct dcmf_msrp_framer *f,
                          struct dcmf_msrp_chunk *c) {
  if (f->err != 0) {
    return f->err;
  }
  if (f->start == f->len) {
    return 0;
  }
  const uint8_t *b = f->buf + f->start;
  int rv = scan_chunk(&f->s, b, f->len - f->start, &f->lim);
  if (rv == 1) {
    rv = parse_chunk(b, &f->s, c);
    if (rv == 0) {
      f->start += f->s.total;
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
  return f->len - f->start;
}

/* ---- writing ---- */

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
  if (c->tid.p == NULL || !valid_ident(c->tid.p, c->tid.len) ||
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
  if (req->failure_report.p == NULL || str_ieq(req->failure_report, "yes")) {
    return 1;
  }
  return str_ieq(req->failure_report, "partial") && code != 200;
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
  if ((to_path != NULL && !valid_path(cstr(to_path))) ||
      (from_path != NULL && !valid_path(cstr(from_path)))) {
    return DCMF_ERR_INVALID;
  }
  for (size_t i = 0; i < w.n_headers; i++) {
    if (to_path != NULL && str_ieq(w.headers[i].name, "To-Path")) {
      w.headers[i].value = cstr(to_path);
    } else if (from_path != NULL && str_ieq(w.headers[i].name, "From-Path")) {
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
    if (n.len >= 8 && str_ieq(mkstr(n.p, 8), "Content-")) {
      return i;
    }
  }
  return c->n_headers;
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
  struct dcmf_msrp_chunk w = *c;
  char tid[DCMF_MSRP_TID_LEN], range[80];
  int rv = dcmf_msrp_pick_tid(rng, c->body + r->off, n, tid);
  if (rv != 0) {
    return rv;
  }
  uint64_t start = r->start + r->off;
  /* §7.1.1: a body over 2048 octets goes with range-end '*' */
  uint64_t end = n > 2048 ? DCMF_MSRP_UNKNOWN : start + n - 1;
  format_range(range, sizeof(range), start, end, r->total);
  size_t i;
  for (i = 0; i < w.n_headers; i++) {
    if (str_ieq(w.headers[i].name, "Byte-Range")) {
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
  w.body = c->body + r->off;
  w.body_len = n;
  w.flag = last ? c->flag : '+';
  int len = dcmf_msrp_write(&w, out, cap);
  if (len >= 0) {
    r->off += n;
    r->done = last;
  }
  return len;
}
