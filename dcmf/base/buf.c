#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "errors.h"

static int buf_reserve(struct dcmf_buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) {
    return 0;
  }
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) {
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (p == NULL) {
    return DCMF_ERR_NOMEM;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

int dcmf_buf_append(struct dcmf_buf *b, const void *data, size_t len) {
  if (buf_reserve(b, len) != 0) {
    return DCMF_ERR_NOMEM;
  }
  if (len > 0) {
    memcpy(b->data + b->len, data, len);
  }
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

int dcmf_buf_printf(struct dcmf_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || buf_reserve(b, (size_t)n) != 0) {
    return DCMF_ERR_NOMEM;
  }
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

int dcmf_buf_append_json(struct dcmf_buf *b, const json_t *doc, size_t flags) {
  /* The measuring pass writes nothing; either pass may still fail on
   * jansson's own memory (loop detection, sorted keys) and then says 0. */
  size_t n = json_dumpb(doc, NULL, 0, flags);
  if (n == 0 || buf_reserve(b, n) != 0) {
    return DCMF_ERR_NOMEM;
  }
  if (json_dumpb(doc, b->data + b->len, n, flags) != n) {
    b->data[b->len] = '\0';
    return DCMF_ERR_NOMEM;
  }
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

void dcmf_buf_adopt(struct dcmf_buf *b, char *data, size_t len) {
  free(b->data);
  b->data = data;
  b->len = len;
  b->cap = len;
}

void dcmf_buf_free(struct dcmf_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
