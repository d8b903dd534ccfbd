/*
 * urlmap.c - root-URL replacement and header mapping for HTTP-proxy mode.
 * See urlmap.h for the contract and docs/http-proxy.md for the rules.
 */
#include "urlmap.h"
#include "urlmap_int.h"

#include <stdio.h>
#include <string.h>

#include "errors.h"

/* ---- characters ------------------------------------------------------- */

static int is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

static unsigned hex_val(unsigned char c) {
  if (c >= '0' && c <= '9') {
    return (unsigned)(c - '0');
  }
  if (c >= 'a' && c <= 'f') {
    return (unsigned)(c - 'a' + 10);
  }
  return (unsigned)(c - 'A' + 10);
}

/* The byte a valid "%XX" triplet at |p| stands for. */
static unsigned pct_val(const char *p) {
  return hex_val((unsigned char)p[1]) * 16 + hex_val((unsigned char)p[2]);
}

unsigned char urlmap_lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static int is_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

/* RFC 9110 tchar. */
int urlmap_is_tchar(unsigned char c) {
  return is_alpha(c) || is_digit(c) ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Case-insensitive comparison of |a| (|alen| bytes) with the C string
 * |b|. */
int urlmap_ieq(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen) {
    return 0;
  }
  for (size_t i = 0; i < alen; i++) {
    if (urlmap_lower((unsigned char)a[i]) !=
        urlmap_lower((unsigned char)b[i])) {
      return 0;
    }
  }
  return 1;
}

/* Case-insensitive: does |a| (|alen| bytes) start with the C string
 * |prefix|? */
int urlmap_istarts(const char *a, size_t alen, const char *prefix) {
  size_t plen = strlen(prefix);
  return alen >= plen && urlmap_ieq(a, plen, prefix);
}

/* Checks the characters shared by URLs and request-targets: visible
 * ASCII except '\', and every '%' starting a hex triplet. Stops at the
 * first '#' when |stop_at_hash|, else refuses '#'. Returns the number of
 * bytes checked (up to '#' or |len|), or -1. */
static long url_chars(const char *s, size_t len, int stop_at_hash) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '#' && stop_at_hash) {
      return (long)i;
    }
    if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#') {
      return -1;
    }
    if (c == '%') {
      if (len - i < 3 || !is_hex((unsigned char)s[i + 1]) ||
          !is_hex((unsigned char)s[i + 2])) {
        return -1;
      }
    }
  }
  return (long)len;
}

/* ---- dcmf_url_parse --------------------------------------------------- */

/* RFC 3986 dec-octet "." x 4, no leading zeros. */
static int ipv4_ok(const char *s, size_t n) {
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= n || s[i] != '.') {
        return 0;
      }
      i++;
    }
    size_t start = i;
    unsigned v = 0;
    while (i < n && is_digit((unsigned char)s[i]) && i - start < 3) {
      v = v * 10 + (unsigned)(s[i] - '0');
      i++;
    }
    size_t digits = i - start;
    if (digits == 0 || v > 255 || (digits > 1 && s[start] == '0')) {
      return 0;
    }
  }
  return i == n;
}

/* RFC 3986 IPv6address (without brackets). */
static int ipv6_ok(const char *s, size_t n) {
  size_t i = 0;
  size_t groups = 0;
  int elided = 0;
  if (n >= 2 && s[0] == ':' && s[1] == ':') {
    elided = 1;
    i = 2;
    if (i == n) {
      return 1;
    }
  }
  for (;;) {
    size_t j = i;
    while (j < n && is_hex((unsigned char)s[j]) && j - i < 5) {
      j++;
    }
    if (j < n && s[j] == '.') {
      if (!ipv4_ok(s + i, n - i)) {
        return 0;
      }
      groups += 2;
      break;
    }
    if (j == i || j - i > 4) {
      return 0;
    }
    groups++;
    i = j;
    if (i == n) {
      break;
    }
    if (s[i] != ':' || i + 1 == n) {
      return 0;
    }
    i++;
    if (s[i] == ':') {
      if (elided) {
        return 0;
      }
      elided = 1;
      i++;
      if (i == n) {
        break;
      }
    }
  }
  return elided ? groups <= 7 : groups == 8;
}

static int reg_name_char(unsigned char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

/* Copies |n| bytes of |s| urlmap_lower-cased into |dst| and NUL-terminates. */
static void copy_lower(char *dst, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    dst[i] = (char)urlmap_lower((unsigned char)s[i]);
  }
  dst[n] = '\0';
}

/* Parses the authority |a| (|n| bytes) into |url|. */
static int parse_authority(const char *a, size_t n, struct dcmf_url *url) {
  if (memchr(a, '@', n) != NULL) {
    return DCMF_ERR_MALFORMED;
  }
  size_t hlen;
  size_t i;
  int v6 = 0;
  const char *host;
  if (n > 0 && a[0] == '[') {
    const char *close = memchr(a, ']', n);
    if (close == NULL) {
      return DCMF_ERR_MALFORMED;
    }
    host = a + 1;
    hlen = (size_t)(close - host);
    if (!ipv6_ok(host, hlen)) {
      return DCMF_ERR_MALFORMED;
    }
    v6 = 1;
    i = (size_t)(close - a) + 1;
  } else {
    host = a;
    for (i = 0; i < n && a[i] != ':'; i++) {
      if (!reg_name_char((unsigned char)a[i])) {
        return DCMF_ERR_MALFORMED;
      }
    }
    hlen = i;
  }
  if (hlen == 0) {
    return DCMF_ERR_MALFORMED;
  }
  if (hlen >= sizeof(url->host)) {
    return DCMF_ERR_TOO_LARGE;
  }
  uint16_t def = url->https ? 443 : 80;
  url->port = def;
  if (i < n) {
    if (a[i] != ':' || n - i - 1 == 0 || n - i - 1 > 5) {
      return DCMF_ERR_MALFORMED;
    }
    unsigned long port = 0;
    for (size_t k = i + 1; k < n; k++) {
      if (!is_digit((unsigned char)a[k])) {
        return DCMF_ERR_MALFORMED;
      }
      port = port * 10 + (unsigned long)(a[k] - '0');
    }
    if (port == 0 || port > 65535) {
      return DCMF_ERR_MALFORMED;
    }
    url->port = (uint16_t)port;
  }
  copy_lower(url->host, host, hlen);
  /* At most 255 bytes of host, brackets and ":65535": always fits. */
  int w = snprintf(url->authority, sizeof(url->authority), "%s%s%s",
                   v6 ? "[" : "", url->host, v6 ? "]" : "");
  if (url->port != def && w > 0) {
    snprintf(url->authority + w, sizeof(url->authority) - (size_t)w, ":%u",
             (unsigned)url->port);
  }
  return 0;
}

int dcmf_url_parse(const char *text, struct dcmf_url *url) {
  if (text == NULL) {
    return DCMF_ERR_MALFORMED;
  }
  size_t len = strlen(text);
  long checked = url_chars(text, len, 1);
  if (checked < 0) {
    return DCMF_ERR_MALFORMED;
  }
  len = (size_t)checked; /* the fragment is dropped */
  size_t i;
  if (urlmap_istarts(text, len, "https://")) {
    url->https = 1;
    i = 8;
  } else if (urlmap_istarts(text, len, "http://")) {
    url->https = 0;
    i = 7;
  } else {
    return DCMF_ERR_MALFORMED;
  }
  size_t a_end = i;
  while (a_end < len && text[a_end] != '/' && text[a_end] != '?') {
    a_end++;
  }
  int rc = parse_authority(text + i, a_end - i, url);
  if (rc != 0) {
    return rc;
  }
  size_t plen = len - a_end;
  int add_slash = plen == 0 || text[a_end] == '?';
  if (plen + (size_t)add_slash >= sizeof(url->path)) {
    return DCMF_ERR_TOO_LARGE;
  }
  char *w = url->path;
  if (add_slash) {
    *w++ = '/';
  }
  memcpy(w, text + a_end, plen);
  w[plen] = '\0';
  return 0;
}

/* ---- output ----------------------------------------------------------- */

/* A bounded string builder: |len| counts bytes written, |over| is set
 * once something did not fit (one byte is always kept for the NUL). */
struct sbuf {
  char *buf;
  size_t cap;
  size_t len;
  int over;
};

static void sb_put(struct sbuf *b, const char *s, size_t n) {
  if (b->over || b->cap - b->len <= n) {
    b->over = 1;
    return;
  }
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) {
  sb_put(b, s, strlen(s));
}

int dcmf_url_format(const struct dcmf_url *url, char *out, size_t cap) {
  if (cap == 0) {
    return DCMF_ERR_TOO_LARGE;
  }
  struct sbuf b = {out, cap, 0, 0};
  out[0] = '\0';
  sb_puts(&b, url->https ? "https://" : "http://");
  sb_puts(&b, url->authority);
  sb_puts(&b, url->path);
  if (b.over) {
    out[0] = '\0';
    return DCMF_ERR_TOO_LARGE;
  }
  return 0;
}

/* ---- the replacement rule --------------------------------------------- */

/* Is the segment |s| (|n| bytes) "." or ".." after percent-decoding?
 * Sets *|encoded| when it held a percent-encoding. */
static int dot_segment(const char *s, size_t n, int *encoded) {
  size_t dots = 0;
  *encoded = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '.') {
      dots++;
    } else if (s[i] == '%' && n - i >= 3 && s[i + 1] == '2' &&
               urlmap_lower((unsigned char)s[i + 2]) == 'e') {
      dots++;
      *encoded = 1;
      i += 2;
    } else {
      return 0;
    }
  }
  return dots == 1 || dots == 2;
}

/* Does the path |p| (|n| bytes, starting with '/') have a "." or ".."
 * segment, literal or percent-encoded? */
static int has_dot_segment(const char *p, size_t n) {
  size_t start = 1;
  for (size_t i = 1; i <= n; i++) {
    if (i == n || p[i] == '/') {
      int enc;
      if (dot_segment(p + start, i - start, &enc)) {
        return 1;
      }
      start = i + 1;
    }
  }
  return 0;
}

/* Refuses the percent-encodings rule 2 forbids in a request path. */
static int path_encodings_ok(const char *p, size_t n) {
  for (size_t i = 0; i + 2 < n; i++) {
    if (p[i] != '%') {
      continue;
    }
    unsigned v = pct_val(p + i);
    if (v < 0x20 || v == 0x7f || v == '/' || v == '\\') {
      return 0;
    }
    i += 2;
  }
  return 1;
}

/*
 * RFC 3986 5.2.4 on the request path |p| (|n| bytes, starting with '/')
 * into |b|, refusing a ".." that finds no segment to remove and any
 * encoded dot segment. The output starts with '/'.
 */
static int normalise(const char *p, size_t n, struct sbuf *b) {
  size_t root = b->len; /* the output path starts here */
  size_t start = 1;
  for (size_t i = 1; i <= n; i++) {
    if (i < n && p[i] != '/') {
      continue;
    }
    const char *seg = p + start;
    size_t slen = i - start;
    int last = i == n;
    int enc;
    if (dot_segment(seg, slen, &enc)) {
      if (enc) {
        return DCMF_ERR_INVALID;
      }
      if (slen == 2) {
        if (b->len == root) {
          return DCMF_ERR_INVALID; /* would climb above the root */
        }
        while (b->buf[b->len - 1] != '/') {
          b->len--;
        }
        b->len--; /* the '/' before the removed segment */
        b->buf[b->len] = '\0';
      }
      if (last) {
        sb_put(b, "/", 1);
      }
    } else {
      sb_put(b, "/", 1);
      sb_put(b, seg, slen);
    }
    if (b->over) {
      return DCMF_ERR_TOO_LARGE;
    }
    start = i + 1;
  }
  return 0;
}

/* Reads the character of the query parameter name |s| (|n| bytes, valid
 * percent triplets only) at *|i| and advances *|i|: percent-decoded, '+'
 * read as a space, urlmap_lower-cased. */
static unsigned char qname_char(const char *s, size_t n, size_t *i) {
  unsigned char c = (unsigned char)s[*i];
  if (c == '%' && n - *i >= 3) {
    c = (unsigned char)pct_val(s + *i);
    *i += 3;
  } else {
    c = c == '+' ? ' ' : c;
    (*i)++;
  }
  return urlmap_lower(c);
}

/* Compares two query parameter names as qname_char() reads them. */
static int qname_eq(const char *a, size_t an, const char *b, size_t bn) {
  size_t i = 0, j = 0;
  while (i < an && j < bn) {
    if (qname_char(a, an, &i) != qname_char(b, bn, &j)) {
      return 0;
    }
  }
  return i == an && j == bn;
}

/* Length of the parameter name at |q| (|n| bytes): up to '=', '&' or
 * ';'. */
static size_t qname_len(const char *q, size_t n) {
  size_t k = 0;
  while (k < n && q[k] != '=' && q[k] != '&' && q[k] != ';') {
    k++;
  }
  return k;
}

/* Does the query |q| (|n| bytes) name the parameter |name|? */
static int query_names(const char *q, size_t n, const char *name,
                       size_t name_len) {
  size_t i = 0;
  while (i < n) {
    size_t k = qname_len(q + i, n - i);
    if (k > 0 && qname_eq(q + i, k, name, name_len)) {
      return 1;
    }
    i += k;
    while (i < n && q[i] != '&' && q[i] != ';') {
      i++;
    }
    i++;
  }
  return 0;
}

/* Does the request query |rq| name a parameter the base query |bq|
 * names? */
static int query_overlaps(const char *bq, size_t bn, const char *rq,
                          size_t rn) {
  size_t i = 0;
  while (i < rn) {
    size_t k = qname_len(rq + i, rn - i);
    if (k > 0 && query_names(bq, bn, rq + i, k)) {
      return 1;
    }
    i += k;
    while (i < rn && rq[i] != '&' && rq[i] != ';') {
      i++;
    }
    i++;
  }
  return 0;
}

int dcmf_urlmap_resolve_url(const struct dcmf_url *base, const char *target,
                            size_t target_len, struct dcmf_url *out) {
  /* The base: path, directory and query. */
  const char *bpath = base->path;
  size_t bfull = strlen(bpath);
  const char *bq_mark = memchr(bpath, '?', bfull);
  size_t bplen = bq_mark != NULL ? (size_t)(bq_mark - bpath) : bfull;
  if (bplen == 0 || bpath[0] != '/' || has_dot_segment(bpath, bplen)) {
    return DCMF_ERR_MALFORMED;
  }
  const char *bq = bq_mark != NULL ? bq_mark + 1 : NULL;
  size_t bqlen = bq != NULL ? bfull - bplen - 1 : 0;
  size_t bdir = bplen;
  while (bpath[bdir - 1] != '/') {
    bdir--;
  }

  /* Rule 1: the form and characters of the target. */
  if (target == NULL || target_len == 0 ||
      url_chars(target, target_len, 0) < 0) {
    return DCMF_ERR_INVALID;
  }
  const char *t = target;
  size_t tlen = target_len;
  if (t[0] != '/') {
    size_t skip;
    if (urlmap_istarts(t, tlen, "http://")) {
      skip = 7;
    } else if (urlmap_istarts(t, tlen, "https://")) {
      skip = 8;
    } else {
      return DCMF_ERR_INVALID;
    }
    while (skip < tlen && t[skip] != '/' && t[skip] != '?') {
      skip++;
    }
    t += skip;
    tlen -= skip;
  }

  /* Rule 2: split, check the path's encodings. */
  const char *tq_mark = memchr(t, '?', tlen);
  size_t tplen = tq_mark != NULL ? (size_t)(tq_mark - t) : tlen;
  const char *tq = tq_mark != NULL ? tq_mark + 1 : NULL;
  size_t tqlen = tq != NULL ? tlen - tplen - 1 : 0;
  if (!path_encodings_ok(t, tplen)) {
    return DCMF_ERR_INVALID;
  }

  /* Rule 3: normalise ("" from an absolute-form target is "/"). */
  char path[DCMF_URL_MAX_PATH];
  struct sbuf b = {path, sizeof(path), 0, 0};
  path[0] = '\0';
  int rc = tplen == 0 ? 0 : normalise(t, tplen, &b);
  if (rc != 0) {
    return rc;
  }
  size_t nlen = b.len;

  /* Rule 5's refusal, before anything is composed. */
  if (bqlen > 0 && tqlen > 0 && query_overlaps(bq, bqlen, tq, tqlen)) {
    return DCMF_ERR_INVALID;
  }

  /* Rule 4: the path, composed behind the normalised request path (which
   * is then moved into place). */
  if (nlen <= 1) {
    b.len = 0;
    sb_put(&b, bpath, bplen);
  } else {
    /* path = "/rel" -> base dir + "rel": shift "rel" right. */
    size_t rel = nlen - 1;
    if (bdir + rel >= sizeof(path)) {
      return DCMF_ERR_TOO_LARGE;
    }
    memmove(path + bdir, path + 1, rel);
    memcpy(path, bpath, bdir);
    b.len = bdir + rel;
    path[b.len] = '\0';
  }

  /* Rule 5: the query. */
  if (bq != NULL || tq != NULL) {
    sb_put(&b, "?", 1);
    if (bqlen > 0) {
      sb_put(&b, bq, bqlen);
    }
    if (bqlen > 0 && tqlen > 0) {
      sb_put(&b, "&", 1);
    }
    if (tqlen > 0) {
      sb_put(&b, tq, tqlen);
    }
  }
  if (b.over) {
    return DCMF_ERR_TOO_LARGE;
  }

  if (out != base) {
    out->https = base->https;
    out->port = base->port;
    memcpy(out->host, base->host, sizeof(out->host));
    memcpy(out->authority, base->authority, sizeof(out->authority));
  }
  memcpy(out->path, path, b.len + 1);
  return 0;
}

int dcmf_urlmap_resolve(const char *base, const char *target, size_t target_len,
                        char *out, size_t cap) {
  struct dcmf_url url;
  if (cap > 0) {
    out[0] = '\0';
  }
  if (dcmf_url_parse(base, &url) != 0) {
    return DCMF_ERR_MALFORMED;
  }
  int rc = dcmf_urlmap_resolve_url(&url, target, target_len, &url);
  if (rc != 0) {
    return rc;
  }
  return dcmf_url_format(&url, out, cap);
}
