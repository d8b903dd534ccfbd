/*
 * streambuf.h - the window a stream framer keeps on a byte stream (TCP):
 * bytes come in at the end, whole messages leave from the start. Used by
 * the MSRP and BFCP framers (layer proto). No I/O.
 *
 * The window holds the message in progress and what follows it, never
 * more than the framer's |limit| bytes: a message that cannot fit is the
 * framer's error to report, not a reason to grow. Bytes of messages the
 * framer handed out stay in place until the next feed, so what it handed
 * out (pointers into the window) stays valid until then.
 *
 * Ownership: the struct owns its buffer; zero it to start, free it with
 * dcmf_streambuf_free. One owner thread.
 */
#ifndef DCMF_STREAMBUF_H
#define DCMF_STREAMBUF_H

#include <stddef.h>
#include <stdint.h>

struct dcmf_streambuf {
  uint8_t *buf; /* owned */
  size_t cap;
  size_t len;   /* bytes in buf */
  size_t start; /* the message in progress starts here */
};

/* Drops the bytes of messages consumed so far, then takes as much of the
 * |len| bytes at |data| as keeps the window within |limit| bytes, growing
 * the buffer by doubling (from 4 KiB, never past |limit|). Sets |*taken|
 * (0 when the window is full or |len| is 0). Returns 0, or
 * DCMF_ERR_NOMEM (nothing taken, the window as it was). */
int dcmf_streambuf_feed(struct dcmf_streambuf *b, const uint8_t *data,
                        size_t len, size_t limit, size_t *taken);

/* The unconsumed bytes: where they start, and how many. */
static inline const uint8_t *
dcmf_streambuf_data(const struct dcmf_streambuf *b) {
  return b->buf + b->start;
}
static inline size_t dcmf_streambuf_avail(const struct dcmf_streambuf *b) {
  return b->len - b->start;
}

/* Marks |n| more bytes (at most dcmf_streambuf_avail) as a message
 * handed out; they stay readable until the next feed. */
void dcmf_streambuf_consume(struct dcmf_streambuf *b, size_t n);

/* Frees the buffer and zeroes |b|. */
void dcmf_streambuf_free(struct dcmf_streambuf *b);

#endif
