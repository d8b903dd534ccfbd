#include "streambuf.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

int dcmf_streambuf_feed(struct dcmf_streambuf *b, const uint8_t *data,
                        size_t len, size_t limit, size_t *taken) {
  *taken = 0;
  if (b->start > 0) {
    memmove(b->buf, b->buf + b->start, b->len - b->start);
    b->len -= b->start;
    b->start = 0;
  }
  size_t take = b->len < limit ? limit - b->len : 0;
  if (take > len) {
    take = len;
  }
  if (take == 0) {
    return 0;
  }
  if (b->len + take > b->cap) {
    size_t need = b->len + take, cap = b->cap < 4096 ? 4096 : b->cap;
    while (cap < need && cap <= SIZE_MAX / 2) {
      cap *= 2;
    }
    if (cap > limit) {
      cap = limit; /* need <= limit */
    }
    uint8_t *nb = realloc(b->buf, cap);
    if (nb == NULL) {
      return DCMF_ERR_NOMEM;
    }
    b->buf = nb;
    b->cap = cap;
  }
  memcpy(b->buf + b->len, data, take);
  b->len += take;
  *taken = take;
  return 0;
}

void dcmf_streambuf_consume(struct dcmf_streambuf *b, size_t n) {
  size_t avail = b->len - b->start;
  b->start += n < avail ? n : avail;
}

void dcmf_streambuf_free(struct dcmf_streambuf *b) {
  free(b->buf);
  memset(b, 0, sizeof(*b));
}
