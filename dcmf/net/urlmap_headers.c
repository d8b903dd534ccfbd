/*
 * urlmap_headers.c - the header mapping of HTTP-proxy mode (urlmap.h):
 * which request and response header fields go on toward the upstream
 * and back, which are dropped (hop-by-hop, those Connection names, the
 * phone's own), and the Via and forwarding fields added. The URL side
 * is urlmap.c's. See docs/http-proxy.md for the rules.
 */
#include "urlmap.h"
#include "urlmap_int.h"

#include <stdio.h>
#include <string.h>

#include "errors.h"

/* ---- headers ---------------------------------------------------------- */

static int name_ok(const char *s, size_t n) {
  if (s == NULL || n == 0) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (!urlmap_is_tchar((unsigned char)s[i])) {
      return 0;
    }
  }
  return 1;
}

/* A field value: no control character other than HTAB. */
static int value_ok(const char *s, size_t n) {
  if (s == NULL && n > 0) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return 0;
    }
  }
  return 1;
}

/* A value we add: non-empty visible ASCII, SP and HTAB, not starting or
 * ending with white space. */
static int own_value_ok(const char *s) {
  if (s == NULL || s[0] == '\0') {
    return 0;
  }
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c >= 0x7f) {
      return 0;
    }
  }
  return s[0] != ' ' && s[0] != '\t' && s[n - 1] != ' ' && s[n - 1] != '\t';
}

static int fields_ok(const struct dcmf_urlmap_header *in, size_t n) {
  if (in == NULL && n > 0) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (!name_ok(in[i].name, in[i].name_len) ||
        !value_ok(in[i].value, in[i].value_len)) {
      return 0;
    }
  }
  return 1;
}

/* Is |name| listed in the value of any Connection field of |in|? */
static int named_by_connection(const struct dcmf_urlmap_header *in, size_t n,
                               const char *name, size_t name_len) {
  for (size_t h = 0; h < n; h++) {
    if (!urlmap_ieq(in[h].name, in[h].name_len, "connection")) {
      continue;
    }
    const char *v = in[h].value;
    size_t vlen = in[h].value_len;
    size_t i = 0;
    while (i < vlen) {
      while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
        i++;
      }
      size_t start = i;
      while (i < vlen && v[i] != ',' && v[i] != ' ' && v[i] != '\t') {
        i++;
      }
      if (i > start && i - start == name_len) {
        int same = 1;
        for (size_t k = 0; k < name_len && same; k++) {
          same = urlmap_lower((unsigned char)v[start + k]) ==
                 urlmap_lower((unsigned char)name[k]);
        }
        if (same) {
          return 1;
        }
      }
    }
  }
  return 0;
}

static const char *const hop_by_hop[] = {
    "connection", "keep-alive", "proxy-connection",  "proxy-authorization",
    "te",         "trailer",    "transfer-encoding", "upgrade",
};

/* Should the field |h| of |in| be dropped? |request| selects the request
 * direction's extra rules. */
static int drop_field(const struct dcmf_urlmap_header *in, size_t n,
                      const struct dcmf_urlmap_header *h, int request) {
  for (size_t i = 0; i < sizeof(hop_by_hop) / sizeof(hop_by_hop[0]); i++) {
    if (urlmap_ieq(h->name, h->name_len, hop_by_hop[i])) {
      return 1;
    }
  }
  if (urlmap_ieq(h->name, h->name_len, "content-length")) {
    return 1;
  }
  if (request) {
    if (urlmap_ieq(h->name, h->name_len, "host") ||
        urlmap_ieq(h->name, h->name_len, "expect") ||
        urlmap_istarts(h->name, h->name_len, "x-dcmf-")) {
      return 1;
    }
  } else if (urlmap_ieq(h->name, h->name_len, "proxy-authenticate")) {
    return 1;
  }
  return named_by_connection(in, n, h->name, h->name_len);
}

static const char *via_value(enum dcmf_urlmap_proto proto) {
  switch (proto) {
  case DCMF_URLMAP_HTTP_1_0:
    return "1.0 dcmf";
  case DCMF_URLMAP_HTTP_1_1:
    return "1.1 dcmf";
  case DCMF_URLMAP_HTTP_2:
    return "2 dcmf";
  }
  return NULL;
}

/* Appends a field to |out| unless full; returns 0 or TOO_LARGE. */
static int emit(struct dcmf_urlmap_header *out, size_t cap, size_t *n,
                const char *name, size_t name_len, const char *value,
                size_t value_len) {
  if (*n >= cap) {
    return DCMF_ERR_TOO_LARGE;
  }
  out[*n].name = name;
  out[*n].name_len = name_len;
  out[*n].value = value;
  out[*n].value_len = value_len;
  (*n)++;
  return 0;
}

static int emit_str(struct dcmf_urlmap_header *out, size_t cap, size_t *n,
                    const char *name, const char *value) {
  return emit(out, cap, n, name, strlen(name), value, strlen(value));
}

/* Copies the kept fields of |in| to |out|. */
static int emit_kept(const struct dcmf_urlmap_header *in, size_t n_in,
                     int request, struct dcmf_urlmap_header *out, size_t cap,
                     size_t *n) {
  for (size_t i = 0; i < n_in; i++) {
    if (drop_field(in, n_in, &in[i], request)) {
      continue;
    }
    int rc = emit(out, cap, n, in[i].name, in[i].name_len, in[i].value,
                  in[i].value_len);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

int dcmf_urlmap_request_headers(const struct dcmf_urlmap_header *in,
                                size_t n_in,
                                const struct dcmf_urlmap_request_info *info,
                                struct dcmf_urlmap_header *out, size_t cap,
                                size_t *n_out) {
  *n_out = 0;
  const char *via = info != NULL ? via_value(info->received) : NULL;
  if (info == NULL || via == NULL || !own_value_ok(info->authority) ||
      !own_value_ok(info->context_id) || !own_value_ok(info->termination_id) ||
      !own_value_ok(info->media_id) || !own_value_ok(info->stream_id) ||
      !fields_ok(in, n_in)) {
    return DCMF_ERR_INVALID;
  }
  const char *const added[][2] = {
      {"Via", via},
      {"X-DCMF-Context-Id", info->context_id},
      {"X-DCMF-Termination-Id", info->termination_id},
      {"X-DCMF-Media-Id", info->media_id},
      {"X-DCMF-Stream-Id", info->stream_id},
  };
  size_t n = 0;
  int rc = emit_str(out, cap, &n, "Host", info->authority);
  if (rc == 0) {
    rc = emit_kept(in, n_in, 1, out, cap, &n);
  }
  for (size_t i = 0; rc == 0 && i < sizeof(added) / sizeof(added[0]); i++) {
    rc = emit_str(out, cap, &n, added[i][0], added[i][1]);
  }
  if (rc != 0) {
    return rc;
  }
  *n_out = n;
  return 0;
}

int dcmf_urlmap_response_headers(const struct dcmf_urlmap_header *in,
                                 size_t n_in, enum dcmf_urlmap_proto received,
                                 struct dcmf_urlmap_header *out, size_t cap,
                                 size_t *n_out) {
  *n_out = 0;
  const char *via = via_value(received);
  if (via == NULL || !fields_ok(in, n_in)) {
    return DCMF_ERR_INVALID;
  }
  size_t n = 0;
  int rc = emit_kept(in, n_in, 0, out, cap, &n);
  if (rc == 0) {
    rc = emit_str(out, cap, &n, "Via", via);
  }
  if (rc != 0) {
    return rc;
  }
  *n_out = n;
  return 0;
}
