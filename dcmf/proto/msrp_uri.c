/*
 * msrp_uri.c - MSRP URIs (RFC 4975 §6, §9; RFC 8873 §4.1) and path
 * values, for msrp.h.
 */
#include <string.h>

#include "errors.h"
#include "msrp_int.h"

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
  if (len > 5 || !msrp_parse_u64(p, len, &v) || v > 65535) {
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
  if (len >= 7 && msrp_str_ieq(mkstr(s, 7), "msrp://")) {
    at = 7;
  } else if (len >= 8 && msrp_str_ieq(mkstr(s, 8), "msrps://")) {
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

int msrp_valid_path(struct dcmf_msrp_str v) {
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
