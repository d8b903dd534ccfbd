/*
 * buf.h - a growable byte buffer for building response bodies and
 * metrics text. Not used on the media path.
 */
#ifndef DCMF_BUF_H
#define DCMF_BUF_H

#include <stddef.h>

struct dcmf_buf {
  char *data; /* owned; NUL-terminated when len > 0 */
  size_t len;
  size_t cap;
};

/* Appends |len| bytes. Returns 0 or DCMF_ERR_NOMEM (buffer unchanged). */
int dcmf_buf_append(struct dcmf_buf *b, const void *data, size_t len);

/* Appends formatted text. Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_buf_printf(struct dcmf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct json_t; /* jansson's */

/* Appends the JSON text of |doc| (json_dumpb |flags|). Returns 0 or
 * DCMF_ERR_NOMEM (buffer unchanged). Unlike json_dumps(), which in
 * jansson 2.14 silently leaves an object key out of the text when its
 * own output buffer fails to grow, the text is measured first and then
 * written into the buffer, so it is whole or not there at all. */
int dcmf_buf_append_json(struct dcmf_buf *b, const struct json_t *doc,
                         size_t flags);

/* Takes ownership of |data| (malloc'ed, |len| bytes), freeing old data. */
void dcmf_buf_adopt(struct dcmf_buf *b, char *data, size_t len);

/* Frees the data and zeroes |b|. */
void dcmf_buf_free(struct dcmf_buf *b);

#endif
