/*
 * sdp.c - the SDP parser, editor and serializer (sdp.h has the rules).
 */
#include "sdp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* RFC 8866 §5 order of the line types; a media section starts with its
 * m= line, so m ranks first. */
static const char type_order[] = "mvosiuepcbtrzka";

static int type_rank(char type) {
  const char *p = strchr(type_order, type);
  return p ? (int)(p - type_order) : (int)sizeof type_order;
}

static int fail(struct dcmf_sdp_error *err, unsigned line, int code,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct dcmf_sdp_error *err, unsigned line, int code,
                const char *fmt, ...) {
  if (err) {
    va_list ap;
    err->line = line;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

static void section_free(struct dcmf_sdp_section *s) {
  for (size_t i = 0; i < s->n; i++)
    free(s->lines[i].value);
  free(s->lines);
  memset(s, 0, sizeof *s);
}

void dcmf_sdp_free(struct dcmf_sdp *sdp) {
  section_free(&sdp->session);
  for (size_t i = 0; i < sdp->nmedia; i++)
    section_free(&sdp->media[i]);
  sdp->nmedia = 0;
}

/* Inserts the owned |value| at |pos| of |s|. */
static int section_insert(struct dcmf_sdp_section *s, size_t pos, char type,
                          char *value) {
  if (s->n >= DCMF_SDP_MAX_LINES) {
    free(value);
    return DCMF_ERR_TOO_LARGE;
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    struct dcmf_sdp_line *l = realloc(s->lines, cap * sizeof *l);
    if (!l) {
      free(value);
      return DCMF_ERR_NOMEM;
    }
    s->lines = l;
    s->cap = cap;
  }
  memmove(&s->lines[pos + 1], &s->lines[pos], (s->n - pos) * sizeof *s->lines);
  s->lines[pos].type = type;
  s->lines[pos].value = value;
  s->n++;
  return 0;
}

static void section_remove_at(struct dcmf_sdp_section *s, size_t pos) {
  free(s->lines[pos].value);
  memmove(&s->lines[pos], &s->lines[pos + 1],
          (s->n - pos - 1) * sizeof *s->lines);
  s->n--;
}

static int parse_mline(const char *v, struct dcmf_sdp_mline *m) {
  /* <media> SP <port>[/<n>] SP <proto> 1*(SP <fmt>) */
  memset(m, 0, sizeof *m);
  const char *sp1 = strchr(v, ' ');
  if (!sp1 || sp1 == v || (size_t)(sp1 - v) >= sizeof m->media)
    return DCMF_ERR_MALFORMED;
  memcpy(m->media, v, (size_t)(sp1 - v));
  const char *p = sp1 + 1;
  unsigned long port = 0;
  size_t digits = 0;
  while (*p >= '0' && *p <= '9' && digits < 6) {
    port = port * 10 + (unsigned long)(*p++ - '0');
    digits++;
  }
  if (!digits || port > 65535)
    return DCMF_ERR_MALFORMED;
  m->port = (unsigned)port;
  if (*p == '/') {
    unsigned long n = 0;
    digits = 0;
    p++;
    while (*p >= '0' && *p <= '9' && digits < 6) {
      n = n * 10 + (unsigned long)(*p++ - '0');
      digits++;
    }
    if (!digits || n == 0 || n > 65535)
      return DCMF_ERR_MALFORMED;
    m->nports = (unsigned)n;
  }
  if (*p++ != ' ')
    return DCMF_ERR_MALFORMED;
  const char *sp3 = strchr(p, ' ');
  if (!sp3 || sp3 == p || (size_t)(sp3 - p) >= sizeof m->proto)
    return DCMF_ERR_MALFORMED;
  memcpy(m->proto, p, (size_t)(sp3 - p));
  p = sp3 + 1;
  size_t flen = strlen(p);
  if (!flen || *p == ' ' || flen >= sizeof m->fmt)
    return DCMF_ERR_MALFORMED;
  memcpy(m->fmt, p, flen + 1);
  return 0;
}

int dcmf_sdp_mline_get(const struct dcmf_sdp_section *m,
                       struct dcmf_sdp_mline *out) {
  if (!m->n || m->lines[0].type != 'm')
    return DCMF_ERR_MALFORMED;
  return parse_mline(m->lines[0].value, out);
}

int dcmf_sdp_mline_set(struct dcmf_sdp_section *m,
                       const struct dcmf_sdp_mline *in) {
  if (!m->n || m->lines[0].type != 'm')
    return DCMF_ERR_MALFORMED;
  char ports[16] = "";
  if (in->nports)
    snprintf(ports, sizeof ports, "/%u", in->nports);
  char buf[DCMF_SDP_MAX_LINE];
  int n = snprintf(buf, sizeof buf, "%s %u%s %s %s", in->media, in->port,
                   ports, in->proto, in->fmt);
  if (n < 0 || (size_t)n >= sizeof buf)
    return DCMF_ERR_TOO_LARGE;
  char *v = strdup(buf);
  if (!v)
    return DCMF_ERR_NOMEM;
  free(m->lines[0].value);
  m->lines[0].value = v;
  return 0;
}

/* Checks one line's octets: "<a-z>=", then no control but TAB. */
static int check_line(const char *p, size_t len, unsigned lineno,
                      struct dcmf_sdp_error *err) {
  if (len > DCMF_SDP_MAX_LINE)
    return fail(err, lineno, DCMF_ERR_TOO_LARGE,
                "line %u: longer than %d octets", lineno, DCMF_SDP_MAX_LINE);
  if (len < 2 || p[0] < 'a' || p[0] > 'z' || p[1] != '=')
    return fail(err, lineno, DCMF_ERR_MALFORMED,
                "line %u: not \"<letter>=<value>\"", lineno);
  for (size_t i = 2; i < len; i++) {
    unsigned char c = (unsigned char)p[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return fail(err, lineno, DCMF_ERR_MALFORMED,
                  "line %u: control character 0x%02x at column %zu", lineno,
                  c, i + 1);
  }
  return 0;
}

static int parse_lines(struct dcmf_sdp *sdp, const char *text, size_t len,
                       struct dcmf_sdp_error *err, unsigned *mline_no) {
  unsigned lineno = 0;
  size_t pos = 0;
  struct dcmf_sdp_section *cur = &sdp->session;
  while (pos < len) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    size_t llen = end - pos;
    if (llen && text[end - 1] == '\r')
      llen--;
    lineno++;
    if (lineno > DCMF_SDP_MAX_LINES)
      return fail(err, lineno, DCMF_ERR_TOO_LARGE,
                  "line %u: more than %d lines", lineno, DCMF_SDP_MAX_LINES);
    const char *p = text + pos;
    pos = nl ? end + 1 : len;
    if (!llen) {
      /* Only trailing empty lines are tolerated. */
      for (size_t k = pos; k < len; k++)
        if (text[k] != '\r' && text[k] != '\n')
          return fail(err, lineno, DCMF_ERR_MALFORMED,
                      "line %u: empty line inside the description", lineno);
      break;
    }
    int rc = check_line(p, llen, lineno, err);
    if (rc)
      return rc;
    if (lineno == 1 && (llen != 3 || memcmp(p, "v=0", 3) != 0))
      return fail(err, 1, DCMF_ERR_MALFORMED, "line 1: not \"v=0\"");
    char *value = strndup(p + 2, llen - 2);
    if (!value)
      return fail(err, lineno, DCMF_ERR_NOMEM, "out of memory");
    if (p[0] == 'm') {
      struct dcmf_sdp_mline m;
      if (parse_mline(value, &m)) {
        free(value);
        return fail(err, lineno, DCMF_ERR_MALFORMED,
                    "line %u: m= is not \"<media> <port> <proto> <fmt>...\"",
                    lineno);
      }
      if (sdp->nmedia == DCMF_SDP_MAX_MEDIA) {
        free(value);
        return fail(err, lineno, DCMF_ERR_TOO_LARGE,
                    "line %u: more than %d m= lines", lineno,
                    DCMF_SDP_MAX_MEDIA);
      }
      mline_no[sdp->nmedia] = lineno;
      cur = &sdp->media[sdp->nmedia++];
    }
    rc = section_insert(cur, cur->n, p[0], value);
    if (rc)
      return fail(err, lineno, rc, "line %u: %s", lineno, dcmf_strerror(rc));
  }
  return 0;
}

int dcmf_sdp_parse(struct dcmf_sdp *sdp, const char *text, size_t len,
                   struct dcmf_sdp_error *err) {
  memset(sdp, 0, sizeof *sdp);
  if (err)
    memset(err, 0, sizeof *err);
  if (len > DCMF_SDP_MAX_BYTES)
    return fail(err, 0, DCMF_ERR_TOO_LARGE, "larger than %d octets",
                DCMF_SDP_MAX_BYTES);
  if (!len)
    return fail(err, 0, DCMF_ERR_MALFORMED, "empty description");
  unsigned mline_no[DCMF_SDP_MAX_MEDIA];
  int rc = parse_lines(sdp, text, len, err, mline_no);
  if (!rc && !sdp->session.n)
    rc = fail(err, 1, DCMF_ERR_MALFORMED, "line 1: not \"v=0\"");
  if (rc) {
    dcmf_sdp_free(sdp);
    return rc;
  }
  int session_c = dcmf_sdp_get(&sdp->session, 'c') != NULL;
  for (size_t i = 0; i < sdp->nmedia; i++) {
    struct dcmf_sdp_mline m;
    /* Cannot fail: every m= line was checked as it was read. */
    if (dcmf_sdp_mline_get(&sdp->media[i], &m) == 0 && m.port && !session_c && !dcmf_sdp_get(&sdp->media[i], 'c')) {
      unsigned l = mline_no[i];
      dcmf_sdp_free(sdp);
      return fail(err, l, DCMF_ERR_MALFORMED,
                  "line %u: media without a c= line (RFC 8866 5.7)", l);
    }
  }
  return 0;
}

static size_t section_len(const struct dcmf_sdp_section *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++)
    n += strlen(s->lines[i].value) + 4;
  return n;
}

static char *section_put(const struct dcmf_sdp_section *s, char *o) {
  for (size_t i = 0; i < s->n; i++) {
    size_t l = strlen(s->lines[i].value);
    *o++ = s->lines[i].type;
    *o++ = '=';
    memcpy(o, s->lines[i].value, l);
    o += l;
    *o++ = '\r';
    *o++ = '\n';
  }
  return o;
}

int dcmf_sdp_write(const struct dcmf_sdp *sdp, char **out, size_t *outlen) {
  size_t total = section_len(&sdp->session) + 1;
  for (size_t i = 0; i < sdp->nmedia; i++)
    total += section_len(&sdp->media[i]);
  char *buf = malloc(total);
  if (!buf)
    return DCMF_ERR_NOMEM;
  char *o = section_put(&sdp->session, buf);
  for (size_t i = 0; i < sdp->nmedia; i++)
    o = section_put(&sdp->media[i], o);
  *o = '\0';
  *out = buf;
  *outlen = (size_t)(o - buf);
  return 0;
}

/* Whether line value |v| is attribute |name| (flag or "name:..."). */
static const char *attr_value(const char *v, const char *name) {
  size_t n = strlen(name);
  if (strncmp(v, name, n) != 0)
    return NULL;
  if (v[n] == '\0')
    return v + n;
  if (v[n] == ':')
    return v + n + 1;
  return NULL;
}

const char *dcmf_sdp_attr(const struct dcmf_sdp_section *s, const char *name,
                          size_t nth) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->lines[i].type != 'a')
      continue;
    const char *v = attr_value(s->lines[i].value, name);
    if (v && nth-- == 0)
      return v;
  }
  return NULL;
}

const char *dcmf_sdp_get(const struct dcmf_sdp_section *s, char type) {
  for (size_t i = 0; i < s->n; i++)
    if (s->lines[i].type == type)
      return s->lines[i].value;
  return NULL;
}

size_t dcmf_sdp_remove_attr_prefix(struct dcmf_sdp_section *s,
                                   const char *name, const char *prefix) {
  size_t removed = 0, plen = prefix ? strlen(prefix) : 0;
  for (size_t i = 0; i < s->n;) {
    const char *v = s->lines[i].type == 'a'
                        ? attr_value(s->lines[i].value, name)
                        : NULL;
    if (v && (!prefix || strncmp(v, prefix, plen) == 0)) {
      section_remove_at(s, i);
      removed++;
    } else {
      i++;
    }
  }
  return removed;
}

size_t dcmf_sdp_remove_attr(struct dcmf_sdp_section *s, const char *name) {
  return dcmf_sdp_remove_attr_prefix(s, name, NULL);
}

size_t dcmf_sdp_remove_type(struct dcmf_sdp_section *s, char type) {
  size_t removed = 0;
  if (type == 'a' || type == 'm')
    return 0;
  for (size_t i = 0; i < s->n;) {
    if (s->lines[i].type == type) {
      section_remove_at(s, i);
      removed++;
    } else {
      i++;
    }
  }
  return removed;
}

static int format_value(char **out, const char *fmt, va_list ap) {
  char buf[DCMF_SDP_MAX_LINE];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0 || (size_t)n >= sizeof buf)
    return DCMF_ERR_TOO_LARGE;
  *out = strdup(buf);
  return *out ? 0 : DCMF_ERR_NOMEM;
}

int dcmf_sdp_vadd(struct dcmf_sdp_section *s, char type, const char *fmt,
                  va_list ap) {
  char *value;
  int rc = format_value(&value, fmt, ap);
  if (rc)
    return rc;
  size_t pos = s->n;
  if (type != 'a') {
    int rank = type_rank(type);
    pos = 0;
    for (size_t i = 0; i < s->n; i++)
      if (type_rank(s->lines[i].type) <= rank)
        pos = i + 1;
  }
  return section_insert(s, pos, type, value);
}

int dcmf_sdp_add(struct dcmf_sdp_section *s, char type, const char *fmt,
                 ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = dcmf_sdp_vadd(s, type, fmt, ap);
  va_end(ap);
  return rc;
}

int dcmf_sdp_set(struct dcmf_sdp_section *s, char type, const char *fmt,
                 ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc;
  size_t i = 0;
  while (i < s->n && s->lines[i].type != type)
    i++;
  if (i < s->n) {
    char *value;
    rc = format_value(&value, fmt, ap);
    if (!rc) {
      free(s->lines[i].value);
      s->lines[i].value = value;
    }
  } else {
    rc = dcmf_sdp_vadd(s, type, fmt, ap);
  }
  va_end(ap);
  return rc;
}

int dcmf_sdp_conn(const struct dcmf_sdp *sdp, size_t i, char *addr,
                  size_t addrlen, int *family) {
  const char *c = i < sdp->nmedia ? dcmf_sdp_get(&sdp->media[i], 'c') : NULL;
  if (!c)
    c = dcmf_sdp_get(&sdp->session, 'c');
  if (!c)
    return DCMF_ERR_NOT_FOUND;
  /* "IN IP4 <addr>[/ttl]" */
  int fam;
  if (strncmp(c, "IN IP4 ", 7) == 0)
    fam = 4;
  else if (strncmp(c, "IN IP6 ", 7) == 0)
    fam = 6;
  else
    return DCMF_ERR_MALFORMED;
  const char *a = c + 7;
  size_t n = strcspn(a, "/ ");
  if (!n || n >= addrlen)
    return DCMF_ERR_MALFORMED;
  memcpy(addr, a, n);
  addr[n] = '\0';
  *family = fam;
  return 0;
}
