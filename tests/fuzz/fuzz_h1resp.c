/*
 * Fuzz target for the HTTP/1.1 response parser engine (h1resp.h), the
 * upstream client's response path. Input format: the first byte chooses
 * the run (bit 0: the first request is HEAD; bits 1-7 seed a small
 * random generator that picks pauses, partial re-feeds, empty resumes,
 * HEAD for later requests and callbacks that stop the engine); the rest
 * is a sequence of feeds, each a length byte n followed by n bytes (cut
 * short at the end of the input). n = 0 means the connection closed:
 * dcmf_h1resp_eof(), then the engine is reset as for a new connection.
 * A response that completes with bytes left over is followed by the next
 * one on the same connection (reset, then the rest is fed).
 *
 * Checked: a feed takes no more than it is given, and all of it unless it
 * pauses, completes or fails; a paused engine resumes with the rest (or
 * with nothing); after COMPLETE or ERROR nothing is taken and no callback
 * runs; a head comes at most once, before any body, with a status of
 * 200..999, at most DCMF_H1RESP_MAX_HEADERS fields within
 * DCMF_H1RESP_MAX_HEADER_BYTES; HEAD, 204 and 304 get no body; the body
 * never exceeds a known length and equals it at COMPLETE; only a body of
 * unknown length completes at EOF, and never keeps the connection;
 * errors carry a code and a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "h1resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      abort();                                                                 \
    }                                                                          \
  } while (0)

struct fz {
  uint32_t rng;
  int head_request;
  int status;
  int heads;
  int completes;
  int done; /* COMPLETE, ERROR or stopped: no more callbacks */
  int stopped;
  int64_t length;
  uint64_t body;
  unsigned sum; /* touches every byte handed out */
};

static unsigned fz_rand(struct fz *z, unsigned n) {
  z->rng = z->rng * 1103515245u + 12345u;
  return (z->rng >> 16) % n;
}

static int fz_head(void *user, int status,
                   const struct dcmf_h1resp_header *hs, size_t n,
                   int64_t content_length) {
  struct fz *z = user;
  CHECK(!z->done && z->heads == 0);
  CHECK(status >= 200 && status <= 999);
  CHECK(n <= DCMF_H1RESP_MAX_HEADERS);
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    CHECK(hs[i].name != NULL && hs[i].value != NULL && hs[i].name_len > 0);
    for (size_t k = 0; k < hs[i].name_len; k++) {
      z->sum += (uint8_t)hs[i].name[k];
    }
    for (size_t k = 0; k < hs[i].value_len; k++) {
      z->sum += (uint8_t)hs[i].value[k];
    }
    bytes += hs[i].name_len + hs[i].value_len;
  }
  CHECK(bytes <= DCMF_H1RESP_MAX_HEADER_BYTES);
  CHECK(content_length >= -1);
  if (z->head_request || status == 204 || status == 304) {
    CHECK(content_length == 0);
  }
  z->heads++;
  z->status = status;
  z->length = content_length;
  if (fz_rand(z, 64) == 0) {
    z->stopped = 1;
    z->done = 1;
    return -1;
  }
  return 0;
}

static int fz_body(void *user, const uint8_t *data, size_t len) {
  struct fz *z = user;
  CHECK(!z->done && z->heads == 1 && len > 0 && data != NULL);
  CHECK(!z->head_request && z->status != 204 && z->status != 304);
  for (size_t i = 0; i < len; i++) {
    z->sum += data[i];
  }
  z->body += len;
  CHECK(z->length < 0 || z->body <= (uint64_t)z->length);
  unsigned r = fz_rand(z, 256);
  if (r == 0) {
    z->stopped = 1;
    z->done = 1;
    return -1;
  }
  return r < 90 ? DCMF_H1RESP_PAUSE : 0;
}

static void fz_complete(void *user, int keep_alive) {
  struct fz *z = user;
  CHECK(!z->done && z->heads == 1);
  CHECK(keep_alive == 0 || keep_alive == 1);
  CHECK(z->length < 0 || z->body == (uint64_t)z->length);
  z->completes++;
  z->done = 1;
}

static const struct dcmf_h1resp_callbacks fz_cbs = {
    .head = fz_head, .body = fz_body, .complete = fz_complete};

static struct dcmf_h1resp engine; /* about 34 KiB: not on the stack */
static volatile unsigned sink;    /* keeps the byte sums from being elided */

static void fz_next(struct fz *z, struct dcmf_h1resp *p) {
  z->head_request = fz_rand(z, 4) == 0;
  z->status = 0;
  z->heads = 0;
  z->completes = 0;
  z->done = 0;
  z->stopped = 0;
  z->length = -1;
  z->body = 0;
  dcmf_h1resp_reset(p, z->head_request);
}

/* Checks what a final state says. */
static void fz_final(struct fz *z, struct dcmf_h1resp *p,
                     enum dcmf_h1resp_state st) {
  if (st == DCMF_H1RESP_COMPLETE) {
    CHECK(z->completes == 1 && z->heads == 1 && !z->stopped);
    CHECK(dcmf_h1resp_get_error(p) == 0);
  } else {
    CHECK(st == DCMF_H1RESP_ERROR && z->completes == 0);
    int e = dcmf_h1resp_get_error(p);
    CHECK(e == DCMF_ERR_MALFORMED || e == DCMF_ERR_TOO_LARGE ||
          e == DCMF_ERR_INVALID);
    CHECK(!z->stopped || e == DCMF_ERR_INVALID);
    CHECK(dcmf_h1resp_get_reason(p)[0] != '\0');
  }
  z->done = 1;
  /* Nothing more is taken. */
  size_t used = 1;
  CHECK(dcmf_h1resp_feed(p, (const uint8_t *)"HTTP/1.1 200 OK\r\n\r\n", 19,
                         &used) == st);
  CHECK(used == 0);
  CHECK(dcmf_h1resp_eof(p) == st);
}

/* Feeds one piece; returns 0 to go on, or -1 after an error. */
static int fz_feed(struct fz *z, struct dcmf_h1resp *p, const uint8_t *piece,
                   size_t n) {
  for (int rounds = 0;; rounds++) {
    CHECK(rounds < 100000);
    /* Sometimes only part of what is there. */
    size_t give = n;
    if (n > 1 && fz_rand(z, 4) == 0) {
      give = 1 + fz_rand(z, (unsigned)(n - 1));
    }
    size_t used = 99;
    enum dcmf_h1resp_state st = dcmf_h1resp_feed(p, piece, give, &used);
    CHECK(used <= give);
    CHECK(dcmf_h1resp_get_state(p) == st);
    piece += used;
    n -= used;
    switch (st) {
    case DCMF_H1RESP_NEED_MORE:
      CHECK(used == give && !z->done);
      if (n == 0) {
        return 0;
      }
      break;
    case DCMF_H1RESP_PAUSED:
      CHECK(!z->done && z->heads == 1);
      if (fz_rand(z, 3) == 0) {
        CHECK(dcmf_h1resp_feed(p, NULL, 0, &used) == DCMF_H1RESP_NEED_MORE);
        CHECK(used == 0);
      }
      if (n == 0) {
        CHECK(dcmf_h1resp_feed(p, piece, 0, &used) == DCMF_H1RESP_NEED_MORE);
        return 0;
      }
      break;
    case DCMF_H1RESP_COMPLETE:
      fz_final(z, p, st);
      fz_next(z, p); /* the next response on this connection */
      if (n == 0) {
        return 0;
      }
      break;
    case DCMF_H1RESP_ERROR:
      fz_final(z, p, st);
      return -1;
    }
  }
}

/* The connection closed. */
static void fz_eof(struct fz *z, struct dcmf_h1resp *p) {
  int64_t length = z->length;
  int heads = z->heads;
  enum dcmf_h1resp_state st = dcmf_h1resp_eof(p);
  if (st == DCMF_H1RESP_COMPLETE) {
    CHECK(heads == 1 && length == -1); /* delimited by the close */
  }
  fz_final(z, p, st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  struct fz z;
  memset(&z, 0, sizeof(z));
  z.rng = data[0] >> 1;
  z.head_request = data[0] & 1;
  z.length = -1;
  struct dcmf_h1resp *p = &engine;
  dcmf_h1resp_init(p, &fz_cbs, &z);
  dcmf_h1resp_reset(p, z.head_request);
  int dead = 0;
  size_t i = 1;
  while (i < size) {
    size_t want = data[i++];
    if (want == 0) {
      if (!dead) {
        fz_eof(&z, p);
      }
      fz_next(&z, p); /* a new connection */
      dead = 0;
      continue;
    }
    size_t n = want < size - i ? want : size - i;
    if (!dead) {
      dead = fz_feed(&z, p, data + i, n) != 0;
    }
    i += n;
  }
  if (!dead) {
    fz_eof(&z, p);
  }
  sink = z.sum;
  return 0;
}
