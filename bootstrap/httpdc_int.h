/*
 * httpdc_int.h - the engine object of httpdc.h, for its own files alone:
 * httpdc.c (input: collecting and dispatching requests; life cycle),
 * httpdc_parse.c (character classes, parsing a complete request head),
 * httpdc_resp.c (the response queue, writing responses, the respond
 * calls) and httpdc_repo.c (the repository backend). Other modules see
 * the engine only through httpdc.h.
 */
#ifndef DCMF_HTTPDC_INT_H
#define DCMF_HTTPDC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "httpdc.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"

/* The body of a streamed response: copies of what the backend gave and
 * was not yet written, in a ring buffer that grows up to stream_buffer +
 * max_message_size bytes. */
struct stream {
  uint8_t *ring;
  size_t cap;      /* allocated bytes of |ring| */
  size_t off;      /* first held byte */
  size_t len;      /* bytes held */
  uint64_t given;  /* body bytes taken from the backend so far */
  uint64_t length; /* the announced Content-Length, if |known| */
  int known;
  int chunked;     /* Transfer-Encoding: chunked */
  int no_body;     /* HEAD, 204, 304: data is ignored */
  int ended;       /* respond_end or abort: no more data, id done */
  int failed;      /* aborted after the head went out: no last chunk */
  int last_chunk;  /* "0\r\n\r\n" written */
  int want_resume; /* data was refused; resume not called since */
};

/* One queued response, in request order. */
struct slot {
  uint64_t id;
  int answered;   /* head built, body known (or streamed) */
  int streamed;   /* the body comes through respond_data, see |st| */
  int http10;     /* the request was HTTP/1.0 */
  int wait_body;  /* the request's body is still being read */
  int head_only;  /* HEAD request: the body is not sent */
  int close;      /* the last response: "Connection: close" */
  int keep_alive; /* HTTP/1.0 keep-alive: echo "Connection: keep-alive" */
  struct dcmf_buf head; /* status line and header fields; reused */
  const uint8_t *body;  /* borrowed, see dcmf_httpdc_response */
  size_t body_len;      /* bytes of body to send */
  size_t sent; /* bytes of head + body written so far (streamed: head) */
  void (*release)(void *arg);
  void *release_arg;
  struct stream st;
};

/* Request properties that decide framing and connection handling. */
struct framing {
  uint64_t content_length;
  int have_length;
  int te;         /* Transfer-Encoding present */
  int te_chunked; /* ... and its final coding is chunked */
  int conn_close;
  int keep_alive;
  int expect_continue;
};

struct dcmf_httpdc {
  struct dcmf_httpdc_settings s;
  struct dcmf_httpdc_backend backend;
  int fatal; /* DCMF_ERR_NOMEM once an internal allocation failed */
  int dead;  /* input is ignored from now on */
  int parsing; /* consume() is reading the stash: do not free it */

  /* The request head being collected: the request line (reqline_len
   * bytes, 0 while incomplete), then header lines. */
  char *headbuf;
  size_t head_len;
  size_t line_start; /* offset of the line being collected */
  size_t reqline_len;
  size_t n_lines; /* header lines completed */
  struct dcmf_httpdc_header *hdrs; /* max_headers entries */

  /* Body bytes of request discard_id still to be skipped. */
  uint64_t discard_left;
  uint64_t discard_id;

  /* A request whose body is being collected (max_request_body): its
   * parsed head stays in headbuf until the body is complete. */
  int collecting;
  struct dcmf_httpdc_request held_req;
  struct framing *held_f;
  uint8_t *body;
  size_t body_len, body_want;

  struct slot *slots; /* ring of max_pending */
  size_t first;
  size_t count;
  uint64_t next_id;

  /* The unparsed rest of a message, kept while the queue is full. */
  uint8_t *stash;
  size_t stash_off;
  size_t stash_len;
};

/* ---- httpdc.c ---- */

/* The small text/plain body of an error response with |status|
 * (static). */
const char *httpdc_error_body(int status);
/* Goes on with the stashed rest of a message once the queue has room;
 * frees the stash when it is used up or the engine is dead. */
void httpdc_stash_drain(struct dcmf_httpdc *h);

/* ---- httpdc_parse.c ---- */

/* RFC 9110 token character. */
int httpdc_is_tchar(unsigned char c);
/* field-vchar / SP / HTAB, obs-text allowed in requests only. */
int httpdc_is_field_char(unsigned char c, int allow_obs_text);
/* Whether the |n| bytes at |a| are the literal |lit|: ignoring ASCII
 * case (ieq), or exactly (eq). */
int httpdc_span_ieq(const char *a, size_t n, const char *lit);
int httpdc_span_eq(const char *a, size_t n, const char *lit);
/* Calls |fn| for each element of a comma-separated list value, with
 * surrounding white space removed; empty elements are skipped. Returns
 * 1 as soon as |fn| returns 1, else 0. */
int httpdc_list_any(const char *v, size_t n,
                    int (*fn)(const char *el, size_t len, const void *arg),
                    const void *arg);
/* Parses the complete head in h->headbuf into |*req| (its strings point
 * into headbuf, its headers into h->hdrs) and |*f|. Returns 0 or the
 * error status to answer. */
int httpdc_head_parse(struct dcmf_httpdc *h, struct dcmf_httpdc_request *req,
                      struct framing *f);

/* ---- httpdc_resp.c ---- */

/* The |i|th queued slot, in request order. */
struct slot *httpdc_slot_at(struct dcmf_httpdc *h, size_t i);
/* The queued slot of request |id|, or NULL. */
struct slot *httpdc_slot_find(struct dcmf_httpdc *h, uint64_t id);
/* Appends a fresh slot; the caller made sure one is free. */
struct slot *httpdc_slot_push(struct dcmf_httpdc *h);
/* Gives up a slot's body, or tells the backend that its request (or the
 * body it still streams) is gone. */
void httpdc_slot_drop(struct dcmf_httpdc *h, struct slot *sl);
/* Answers |sl| with a short text/plain error of the engine's own.
 * Returns 0 or DCMF_ERR_NOMEM. */
int httpdc_slot_error(struct dcmf_httpdc *h, struct slot *sl, int status);
/* Frees the stashed rest of a message. */
void httpdc_stash_free(struct dcmf_httpdc *h);
/* Stops reading after |last| (NULL: after the last queued slot): later
 * slots are dropped. */
void httpdc_close_after(struct dcmf_httpdc *h, struct slot *last);
/* A request the stream cannot recover from: answer |status| with
 * "Connection: close" and ignore all further input. */
void httpdc_fail(struct dcmf_httpdc *h, int status);

#endif
