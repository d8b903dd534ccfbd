/*
 * cache_fields.c - what the HTTP cache (cache.c) reads from header
 * fields and keeps of them: small text helpers, IMF-fixdate dates
 * (dcmf_cache_parse_http_date), Cache-Control, Vary and the other
 * fields it acts on, the freshness lifetime (RFC 9111 4.2.1), weak
 * entity-tag comparison, and the allow-listed header set an entry
 * stores. No entry or table state: header arrays in, results out.
 */
#include "cache.h"
#include "cache_int.h"

#include <string.h>

#include "errors.h"

/* ---- small text helpers ------------------------------------------- */

static char lower(char ch) {
  return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

/* Compares |n| bytes of |s| with the lower-case |lc| ignoring case. */
static int ieq(const char *s, size_t n, const char *lc) {
  size_t i;
  for (i = 0; i < n; i++)
    if (lc[i] == '\0' || lower(s[i]) != lc[i])
      return 0;
  return lc[i] == '\0';
}

static int is_ows(char ch) {
  return ch == ' ' || ch == '\t';
}

static void trim(const char **p, size_t *n) {
  while (*n > 0 && is_ows(**p)) {
    (*p)++;
    (*n)--;
  }
  while (*n > 0 && is_ows((*p)[*n - 1]))
    (*n)--;
}

static int is_tchar(char ch) {
  if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
      (ch >= 'A' && ch <= 'Z'))
    return 1;
  return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Parses 1*DIGIT, saturating at |cap|. Returns 0 or -1. */
static int parse_uint(const char *s, size_t n, uint64_t cap, uint64_t *out) {
  uint64_t v = 0;
  if (n == 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    unsigned d = (unsigned)(s[i] - '0');
    v = (v > (cap - d) / 10) ? cap : v * 10 + d;
  }
  *out = v;
  return 0;
}

/* ---- dates (IMF-fixdate only) -------------------------------------- */

static int two_digits(const char *p, unsigned *v) {
  if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
    return -1;
  *v = (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
  return 0;
}

/* Days from 1970-01-01 to the civil date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

int dcmf_cache_parse_http_date(const char *t, size_t len, int64_t *secs) {
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  static const unsigned mdays[] = {31, 29, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31};
  unsigned day, mon, yhi, ylo, h, mi, s, i;
  if (len != 29 || t[3] != ',' || t[4] != ' ' || t[7] != ' ' || t[11] != ' ' ||
      t[16] != ' ' || t[19] != ':' || t[22] != ':' ||
      memcmp(t + 25, " GMT", 4) != 0)
    return DCMF_ERR_MALFORMED;
  for (i = 0; i < 7 && memcmp(t, days + 3 * i, 3) != 0; i++)
    ;
  if (i == 7)
    return DCMF_ERR_MALFORMED;
  for (mon = 0; mon < 12 && memcmp(t + 8, months + 3 * mon, 3) != 0; mon++)
    ;
  if (mon == 12 || two_digits(t + 5, &day) || two_digits(t + 12, &yhi) ||
      two_digits(t + 14, &ylo) || two_digits(t + 17, &h) ||
      two_digits(t + 20, &mi) || two_digits(t + 23, &s))
    return DCMF_ERR_MALFORMED;
  unsigned year = yhi * 100 + ylo;
  int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day < 1 || day > mdays[mon] || (mon == 1 && day == 29 && !leap) ||
      h > 23 || mi > 59 || s > 60)
    return DCMF_ERR_MALFORMED;
  *secs = days_from_civil(year, mon + 1, day) * 86400 + h * 3600 + mi * 60 + s;
  return 0;
}

/* ---- header field parsing ------------------------------------------ */

static void cc_delta(uint8_t *has, uint8_t *bad, uint64_t *v, const char *val,
                     size_t vlen) {
  if (*has)
    return; /* RFC 9111 4.2.1: the first occurrence is used */
  *has = 1;
  *bad = val == NULL || parse_uint(val, vlen, DELTA_MAX, v) != 0;
}

static void cc_directive(struct cc *cc, const char *name, size_t nlen,
                         const char *val, size_t vlen) {
  if (ieq(name, nlen, "no-store"))
    cc->no_store = 1;
  else if (ieq(name, nlen, "no-cache"))
    cc->no_cache = 1; /* the field-name form is treated as unqualified */
  else if (ieq(name, nlen, "private"))
    cc->private_ = 1;
  else if (ieq(name, nlen, "max-age"))
    cc_delta(&cc->has_max_age, &cc->bad_max_age, &cc->max_age, val, vlen);
  else if (ieq(name, nlen, "s-maxage"))
    cc_delta(&cc->has_s_maxage, &cc->bad_s_maxage, &cc->s_maxage, val, vlen);
  else if (ieq(name, nlen, "min-fresh"))
    cc_delta(&cc->has_min_fresh, &cc->bad_min_fresh, &cc->min_fresh, val, vlen);
}

/* Parses a Cache-Control (or Pragma) field value into |cc|. */
static void cc_parse(const char *s, size_t len, struct cc *cc) {
  size_t i = 0;
  while (i < len) {
    while (i < len && (is_ows(s[i]) || s[i] == ','))
      i++;
    size_t n0 = i;
    while (i < len && is_tchar(s[i]))
      i++;
    size_t nlen = i - n0;
    const char *val = NULL;
    size_t vlen = 0;
    while (i < len && is_ows(s[i]))
      i++;
    if (i < len && s[i] == '=') {
      for (i++; i < len && is_ows(s[i]); i++)
        ;
      size_t v0 = i;
      if (i < len && s[i] == '"') {
        v0 = ++i;
        while (i < len && s[i] != '"')
          i += (s[i] == '\\' && i + 1 < len) ? 2 : 1;
        vlen = (i < len ? i : len) - v0;
        if (i < len)
          i++;
      } else {
        while (i < len && is_tchar(s[i]))
          i++;
        vlen = i - v0;
      }
      val = s + v0;
    }
    while (i < len && s[i] != ',')
      i++; /* skip anything malformed up to the next directive */
    if (nlen > 0)
      cc_directive(cc, s + n0, nlen, val, vlen);
  }
}

/* Notes the names listed in a Vary field value. */
static void vary_parse(const char *s, size_t len, struct fields *f) {
  size_t i = 0;
  while (i < len) {
    size_t n0 = i;
    while (i < len && s[i] != ',')
      i++;
    const char *p = s + n0;
    size_t n = i - n0;
    trim(&p, &n);
    if (ieq(p, n, "accept-encoding"))
      f->vary_ae = 1;
    else if (n > 0)
      f->vary_other = 1; /* includes "*" */
    i++;
  }
}

static void first_value(const char **dst, size_t *dlen, const char *v,
                        size_t n) {
  if (*dst == NULL) {
    *dst = v;
    *dlen = n;
  }
}

void cache_fields_parse(const struct dcmf_cache_header *h, size_t n,
                        struct fields *f) {
  memset(f, 0, sizeof(*f));
  for (size_t i = 0; i < n; i++) {
    const char *nm = h[i].name, *v = h[i].value;
    size_t nl = h[i].name_len, vl = h[i].value_len;
    trim(&v, &vl);
    if (ieq(nm, nl, "cache-control")) {
      f->has_cc = 1;
      cc_parse(v, vl, &f->cc);
    } else if (ieq(nm, nl, "pragma")) {
      struct cc p;
      memset(&p, 0, sizeof(p));
      cc_parse(v, vl, &p);
      f->pragma_no_cache |= p.no_cache;
    } else if (ieq(nm, nl, "authorization")) {
      f->authorization = 1;
    } else if (ieq(nm, nl, "set-cookie")) {
      f->set_cookie = 1;
    } else if (ieq(nm, nl, "vary")) {
      vary_parse(v, vl, f);
    } else if (ieq(nm, nl, "expires") && !f->has_expires) {
      f->has_expires = 1;
      f->expires_ok = dcmf_cache_parse_http_date(v, vl, &f->expires) == 0;
    } else if (ieq(nm, nl, "date") && !f->has_date) {
      f->has_date = 1;
      f->date_ok = dcmf_cache_parse_http_date(v, vl, &f->date) == 0;
    } else if (ieq(nm, nl, "age") && !f->has_age) {
      f->has_age = parse_uint(v, vl, DELTA_MAX, &f->age) == 0;
    } else if (ieq(nm, nl, "content-length") && !f->has_cl) {
      f->has_cl = parse_uint(v, vl, UINT64_MAX, &f->content_length) == 0;
    } else if (ieq(nm, nl, "etag")) {
      first_value(&f->etag, &f->etag_len, v, vl);
    } else if (ieq(nm, nl, "last-modified")) {
      first_value(&f->lm, &f->lm_len, v, vl);
    } else if (ieq(nm, nl, "accept-encoding")) {
      first_value(&f->ae, &f->ae_len, v, vl);
    }
  }
}

/* Freshness lifetime in seconds (RFC 9111 4.2.1, no heuristics). */
uint64_t cache_lifetime_of(const struct fields *f, uint64_t now_ms) {
  if (f->cc.no_cache)
    return 0;
  if (f->cc.has_s_maxage)
    return f->cc.bad_s_maxage ? 0 : f->cc.s_maxage;
  if (f->cc.has_max_age)
    return f->cc.bad_max_age ? 0 : f->cc.max_age;
  if (!f->has_expires || !f->expires_ok)
    return 0;
  int64_t date = (int64_t)(now_ms / 1000);
  if (f->has_date) {
    if (!f->date_ok)
      return 0;
    date = f->date;
  }
  if (f->expires <= date)
    return 0;
  uint64_t d = (uint64_t)(f->expires - date);
  return d > DELTA_MAX ? DELTA_MAX : d;
}

/* Weak comparison of two entity-tags (RFC 9110 8.8.3.2). */
int cache_etag_weak_eq(const char *a, size_t an, const char *b, size_t bn) {
  if (an >= 2 && a[0] == 'W' && a[1] == '/') {
    a += 2;
    an -= 2;
  }
  if (bn >= 2 && b[0] == 'W' && b[1] == '/') {
    b += 2;
    bn -= 2;
  }
  return an == bn && memcmp(a, b, an) == 0;
}

/* ---- stored header set --------------------------------------------- */

static const char *const kept_names[] = {
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-location",
    "content-type",
    "date",
    "etag",
    "expires",
    "last-modified",
    "location",
    "vary",
};

/* Returns the allow-list name for a field name, or NULL. */
static const char *kept_name(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof(kept_names) / sizeof(kept_names[0]); i++)
    if (ieq(name, len, kept_names[i]))
      return kept_names[i];
  return NULL;
}

/* Fields a 304 replaces (RFC 9111 4.3.4, limited to what we act on). */
static int updatable(const char *kept) {
  return strcmp(kept, "cache-control") == 0 || strcmp(kept, "date") == 0 ||
         strcmp(kept, "etag") == 0 || strcmp(kept, "expires") == 0 ||
         strcmp(kept, "last-modified") == 0;
}

static int has_field(const struct dcmf_cache_header *h, size_t n,
                     const char *lc) {
  for (size_t i = 0; i < n; i++)
    if (ieq(h[i].name, h[i].name_len, lc))
      return 1;
  return 0;
}

/*
 * Picks the fields an entry keeps: the allow-listed fields of |base| that
 * |upd| does not replace, then the updatable fields of |upd| (NULL when
 * storing). Counts them and adds their value bytes (with NUL) to
 * |*strbytes|; when |out| is not NULL also copies them, values into
 * |strings|.
 */
size_t cache_pick_fields(const struct dcmf_cache_header *base, size_t nbase,
                         const struct dcmf_cache_header *upd, size_t nupd,
                         struct dcmf_cache_header *out, char *strings,
                         size_t *strbytes) {
  size_t count = 0;
  for (int pass = 0; pass < 2; pass++) {
    const struct dcmf_cache_header *h = pass == 0 ? base : upd;
    size_t n = pass == 0 ? nbase : nupd;
    for (size_t i = 0; i < n; i++) {
      const char *name = kept_name(h[i].name, h[i].name_len);
      if (name == NULL)
        continue;
      if (pass == 0 && upd != NULL && updatable(name) &&
          has_field(upd, nupd, name))
        continue;
      if (pass == 1 && !updatable(name))
        continue;
      const char *v = h[i].value;
      size_t vl = h[i].value_len;
      trim(&v, &vl);
      if (out != NULL) {
        memcpy(strings, v, vl);
        strings[vl] = '\0';
        out[count].name = name;
        out[count].name_len = strlen(name);
        out[count].value = strings;
        out[count].value_len = vl;
        strings += vl + 1;
      }
      *strbytes = sz_add(*strbytes, sz_add(vl, 1));
      count++;
    }
  }
  return count;
}
