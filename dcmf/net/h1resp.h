/*
 * h1resp.h - the HTTP/1.1 response parser engine of the upstream client:
 * one response at a time, read with http_parser (Debian's libhttp-parser
 * 2.9) behind this adapter. Pure: no I/O, no clock, no allocation, no
 * globals. The glue (upstream_h1.c) feeds what it reads and learns about
 * the response through callbacks.
 *
 * Memory is bounded: the engine is one caller-owned struct (about 34 KiB,
 * embedded where the connection lives) that keeps at most
 * DCMF_H1RESP_MAX_HEADERS header fields with at most
 * DCMF_H1RESP_MAX_HEADER_BYTES bytes of names and values together. A
 * response over either limit is an error. Bodies are never kept: each
 * piece goes to the |body| callback as it arrives.
 *
 * Informational (1xx) heads before the final response are read and
 * skipped; 101 Switching Protocols is an error (we never ask for it).
 * Trailer fields after a chunked body are read and ignored.
 */
#ifndef DCMF_H1RESP_H
#define DCMF_H1RESP_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#define DCMF_H1RESP_MAX_HEADERS 100
#define DCMF_H1RESP_MAX_HEADER_BYTES (32 * 1024)

/* What |body| returns to stop the flow until the next feed. */
#define DCMF_H1RESP_PAUSE 1

/* A header field of the response head. Neither string is NUL-terminated;
 * both point into the engine and are valid during the |head| call only. */
struct dcmf_h1resp_header {
  const char *name;
  size_t name_len;
  const char *value; /* leading white space removed, trailing kept */
  size_t value_len;
};

/*
 * Callbacks run from inside dcmf_h1resp_feed() and dcmf_h1resp_eof(),
 * never later. They must not call feed, eof or reset on the same engine.
 * Any of them may be NULL. After |complete|, or after a callback stopped
 * the engine, no callback runs until dcmf_h1resp_reset().
 */
struct dcmf_h1resp_callbacks {
  /* The final response head: |status| 200..999 (or, for 1xx never).
   * |content_length| is the number of body bytes that follow: 0 for a
   * response that has no body (to HEAD, and 204 and 304, whatever their
   * Content-Length says), the Content-Length otherwise, or -1 when the
   * body is chunked or ends when the connection closes. Returns 0 to go
   * on, or a negative value to stop the engine (state ERROR). */
  int (*head)(void *user, int status, const struct dcmf_h1resp_header *headers,
              size_t n, int64_t content_length);
  /* A piece of the body (de-chunked; |len| > 0, |data| valid for the
   * call). Returns 0 to go on, DCMF_H1RESP_PAUSE to pause (the feed
   * returns PAUSED, and the caller feeds the unconsumed rest again to
   * resume), or a negative value to stop the engine (state ERROR). */
  int (*body)(void *user, const uint8_t *data, size_t len);
  /* The response ended. |keep_alive| is 1 when the connection may carry
   * the next request (HTTP/1.1 without "Connection: close", or HTTP/1.0
   * with "Connection: keep-alive", and a body not delimited by close). */
  void (*complete)(void *user, int keep_alive);
};

enum dcmf_h1resp_state {
  DCMF_H1RESP_NEED_MORE, /* everything fed was taken; the response goes on */
  DCMF_H1RESP_PAUSED,    /* |body| paused: feed the rest again to resume */
  DCMF_H1RESP_COMPLETE,  /* |complete| ran; later bytes are not taken */
  DCMF_H1RESP_ERROR,     /* see dcmf_h1resp_get_error() and _get_reason() */
};

/* The engine. Embed it and treat every field as private. */
struct dcmf_h1resp {
  http_parser hp;
  struct dcmf_h1resp_callbacks cbs;
  void *user;
  enum dcmf_h1resp_state state;
  int error;          /* 0 or a DCMF_ERR_* code when state is ERROR */
  const char *reason; /* static text when state is ERROR */
  int head_request;   /* the request was HEAD: no body follows */
  int head_done;      /* the final head was delivered */
  int informational;  /* a 1xx head is being skipped */
  int in_value;       /* the last header piece read was part of a value */
  size_t prefix;      /* bytes of "HTTP/" seen at the response's start */
  size_t n_fields;
  size_t used; /* bytes of |bytes| in use */
  /* Offsets into |bytes|: name, name length, value, value length. */
  uint32_t fields[DCMF_H1RESP_MAX_HEADERS][4];
  char bytes[DCMF_H1RESP_MAX_HEADER_BYTES];
};

/*
 * Initialises |p| with a copy of |cbs| and the |user| pointer given to
 * every callback, ready for a response to a request other than HEAD (as
 * after dcmf_h1resp_reset(p, 0)). |p| holds no resources: there is no
 * free function, and the caller may simply drop it.
 */
void dcmf_h1resp_init(struct dcmf_h1resp *p,
                      const struct dcmf_h1resp_callbacks *cbs, void *user);

/*
 * Forgets the response being read (if any) and readies |p| for the
 * response to the next request. |head_request| is 1 when that request is
 * HEAD, so the response has no body whatever its head says.
 */
void dcmf_h1resp_reset(struct dcmf_h1resp *p, int head_request);

/*
 * Reads |len| bytes at |data| (borrowed for the call; |data| may be NULL
 * when |len| is 0), running the callbacks, and stores in *|consumed| how
 * many of them were taken (never more than |len|). Returns:
 *   DCMF_H1RESP_NEED_MORE  all |len| bytes were taken; feed more
 *   DCMF_H1RESP_PAUSED     |body| paused the response: the bytes after
 *                          *|consumed| were not taken, and the next feed
 *                          (of those bytes and whatever followed them;
 *                          |len| 0 is fine) resumes
 *   DCMF_H1RESP_COMPLETE   the response ended at *|consumed|; the bytes
 *                          after it were not taken (the glue decides
 *                          what they mean). Later feeds take nothing
 *   DCMF_H1RESP_ERROR      malformed input, a limit was exceeded or a
 *                          callback stopped the engine; the connection
 *                          is unusable. Later feeds take nothing
 * |len| 0 never means the end of the input: see dcmf_h1resp_eof().
 */
enum dcmf_h1resp_state dcmf_h1resp_feed(struct dcmf_h1resp *p,
                                        const uint8_t *data, size_t len,
                                        size_t *consumed);

/*
 * Tells |p| that the connection was closed after everything fed (a
 * paused engine is resumed first, so feed any bytes it left over
 * before). A body delimited by the close (no Content-Length, not
 * chunked) ends here: |complete| runs with keep_alive 0 and the result is
 * COMPLETE. Anywhere else inside a response the result is ERROR
 * ("closed before the response ended"); COMPLETE and ERROR stay as they
 * are.
 */
enum dcmf_h1resp_state dcmf_h1resp_eof(struct dcmf_h1resp *p);

/* Returns the state the last feed or eof left |p| in. */
enum dcmf_h1resp_state dcmf_h1resp_get_state(const struct dcmf_h1resp *p);

/*
 * Returns 0 unless the state is ERROR, then: DCMF_ERR_MALFORMED (not
 * HTTP/1.x, or the connection closed in the middle of a response),
 * DCMF_ERR_TOO_LARGE (over DCMF_H1RESP_MAX_HEADERS or
 * DCMF_H1RESP_MAX_HEADER_BYTES, http_parser's own 80 KiB head limit, or a
 * Content-Length beyond INT64_MAX) or DCMF_ERR_INVALID (a protocol
 * switch, or a callback stopped the engine).
 */
int dcmf_h1resp_get_error(const struct dcmf_h1resp *p);

/* Returns a short static phrase for logs saying why the state is ERROR,
 * or "" in any other state. */
const char *dcmf_h1resp_get_reason(const struct dcmf_h1resp *p);

#endif
