#include "problem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "errors.h"

const char *dcmf_http_reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Error";
  }
}

/* Details echo client input (headers, ids), and snprintf may cut a
 * multi-byte sequence in half; jansson refuses invalid UTF-8 and would
 * leave the problem without a body. Replace every byte that is not part
 * of a well-formed UTF-8 sequence with '?'. */
static void utf8_sanitize(char *s) {
  unsigned char *p = (unsigned char *)s;
  while (*p) {
    size_t need = *p < 0x80              ? 0
                  : (*p & 0xE0) == 0xC0 ? 1
                  : (*p & 0xF0) == 0xE0 ? 2
                  : (*p & 0xF8) == 0xF0 ? 3
                                        : 4;
    size_t ok = need < 4 && !(need == 1 && *p < 0xC2) &&
                !(need == 3 && *p > 0xF4);
    for (size_t i = 1; ok && i <= need; i++) {
      ok = (p[i] & 0xC0) == 0x80;
    }
    /* Overlong three-byte forms and UTF-16 surrogates are not UTF-8. */
    if (ok && need == 2 && ((p[0] == 0xE0 && p[1] < 0xA0) ||
                            (p[0] == 0xED && p[1] >= 0xA0))) {
      ok = 0;
    }
    if (ok && need == 3 && ((p[0] == 0xF0 && p[1] < 0x90) ||
                            (p[0] == 0xF4 && p[1] >= 0x90))) {
      ok = 0;
    }
    if (!ok) {
      *p++ = '?';
      continue;
    }
    p += need + 1;
  }
}

int dcmf_problem_set(struct dcmf_problem *p, int status, const char *cause,
                     const char *fmt, ...) {
  p->status = status;
  p->title = dcmf_http_reason(status);
  p->cause = cause;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
  va_end(ap);
  utf8_sanitize(p->detail);
  return status;
}

void dcmf_problem_param(struct dcmf_problem *p, const char *param,
                        const char *fmt, ...) {
  if (p->n_invalid >= DCMF_PROBLEM_MAX_PARAMS) {
    p->n_dropped++;
    return;
  }
  struct dcmf_invalid_param *ip = &p->invalid[p->n_invalid++];
  snprintf(ip->param, sizeof(ip->param), "%s", param);
  utf8_sanitize(ip->param);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ip->reason, sizeof(ip->reason), fmt, ap);
  va_end(ap);
  utf8_sanitize(ip->reason);
}

int dcmf_problem_render(const struct dcmf_problem *p, struct dcmf_buf *out) {
  json_t *doc = json_pack("{s:i, s:s, s:s}", "status", p->status, "title",
                          p->title ? p->title : dcmf_http_reason(p->status),
                          "detail", p->detail);
  if (doc == NULL) {
    return DCMF_ERR_NOMEM;
  }
  /* A member that could not be added fails the whole rendering: a
   * problem without its cause or invalidParams would mislead. */
  int rv = 0;
  if (p->cause != NULL) {
    rv |= json_object_set_new(doc, "cause", json_string(p->cause));
  }
  if (p->n_invalid > 0) {
    json_t *arr = json_array();
    rv |= json_object_set_new(doc, "invalidParams", arr); /* takes |arr| */
    for (size_t i = 0; i < p->n_invalid && rv == 0; i++) {
      rv |= json_array_append_new(arr, json_pack("{s:s, s:s}", "param",
                                                 p->invalid[i].param, "reason",
                                                 p->invalid[i].reason));
    }
  }
  if (rv != 0) {
    json_decref(doc);
    return DCMF_ERR_NOMEM;
  }
  struct dcmf_buf text = {0};
  rv = dcmf_buf_append_json(&text, doc, JSON_COMPACT);
  json_decref(doc);
  if (rv != 0) {
    dcmf_buf_free(&text);
    return DCMF_ERR_NOMEM;
  }
  dcmf_buf_adopt(out, text.data, text.len);
  return 0;
}
