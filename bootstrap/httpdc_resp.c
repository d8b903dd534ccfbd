/*
 * httpdc_resp.c - the response side of httpdc.h: the queue of responses
 * in request order, the heads built and checked, writing responses as
 * messages (Content-Length, chunked or close framing, the streamed
 * body's ring), and the respond calls of the backends. The engine
 * object is httpdc_int.h's.
 */
#include "httpdc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errors.h"

/* ---- the response queue ----------------------------------------------- */

struct slot *httpdc_slot_at(struct dcmf_httpdc *h, size_t i) {
  return &h->slots[(h->first + i) % h->s.max_pending];
}

struct slot *httpdc_slot_find(struct dcmf_httpdc *h, uint64_t id) {
  for (size_t i = 0; i < h->count; i++) {
    struct slot *sl = httpdc_slot_at(h, i);
    if (sl->id == id) {
      return sl;
    }
  }
  return NULL;
}

/* Appends a fresh slot; the caller made sure one is free. */
struct slot *httpdc_slot_push(struct dcmf_httpdc *h) {
  struct slot *sl = httpdc_slot_at(h, h->count);
  struct dcmf_buf head = sl->head;
  memset(sl, 0, sizeof(*sl));
  sl->head = head;
  sl->head.len = 0;
  sl->id = h->next_id++;
  h->count++;
  return sl;
}

static void stream_free(struct slot *sl) {
  free(sl->st.ring);
  memset(&sl->st, 0, sizeof(sl->st));
  sl->streamed = 0;
}

/* Gives up a slot's body, or tells the backend that its request (or the
 * body it still streams) is gone. */
void httpdc_slot_drop(struct dcmf_httpdc *h, struct slot *sl) {
  if (!sl->answered || (sl->streamed && !sl->st.ended)) {
    if (h->backend.cancel != NULL) {
      h->backend.cancel(h->backend.user, sl->id);
    }
  } else if (sl->release != NULL) {
    void (*release)(void *) = sl->release;
    sl->release = NULL;
    release(sl->release_arg);
  }
  stream_free(sl);
  sl->answered = 0;
  sl->body = NULL;
}

void httpdc_stash_free(struct dcmf_httpdc *h) {
  free(h->stash);
  h->stash = NULL;
  h->stash_off = h->stash_len = 0;
}

/* Stops reading after |last| (NULL: after the last queued slot): later
 * slots are dropped. */
void httpdc_close_after(struct dcmf_httpdc *h, struct slot *last) {
  h->dead = 1;
  h->discard_left = 0;
  if (!h->parsing) {
    httpdc_stash_free(h);
  }
  size_t keep = 0;
  while (keep < h->count && httpdc_slot_at(h, keep) != last) {
    httpdc_slot_at(h, keep)->wait_body = 0; /* no body is read any more */
    keep++;
  }
  if (keep < h->count) {
    httpdc_slot_at(h, keep)->wait_body = 0;
    keep++;
  }
  /* Count down so that a cancel callback sees the queue already cut. */
  while (h->count > keep) {
    h->count--;
    httpdc_slot_drop(h, httpdc_slot_at(h, h->count));
  }
}

static int header_name_reserved(const char *name, size_t len) {
  return httpdc_span_ieq(name, len, "content-length") ||
         httpdc_span_ieq(name, len, "transfer-encoding") ||
         httpdc_span_ieq(name, len, "connection");
}

static int response_check(const struct dcmf_httpdc_response *r) {
  if (r->status < 200 || r->status > 599) {
    return DCMF_ERR_INVALID;
  }
  if (r->content_type != NULL) {
    for (const char *p = r->content_type; *p != '\0'; p++) {
      if (!httpdc_is_field_char((unsigned char)*p, 0)) {
        return DCMF_ERR_INVALID;
      }
    }
  }
  for (size_t i = 0; i < r->n_headers; i++) {
    const struct dcmf_httpdc_header *hd = &r->headers[i];
    if (hd->name_len == 0 || header_name_reserved(hd->name, hd->name_len)) {
      return DCMF_ERR_INVALID;
    }
    for (size_t k = 0; k < hd->name_len; k++) {
      if (!httpdc_is_tchar((unsigned char)hd->name[k])) {
        return DCMF_ERR_INVALID;
      }
    }
    for (size_t k = 0; k < hd->value_len; k++) {
      if (!httpdc_is_field_char((unsigned char)hd->value[k], 0)) {
        return DCMF_ERR_INVALID;
      }
    }
  }
  return 0;
}

/* How a response's body is delimited. */
struct body_framing {
  int have_length; /* send Content-Length: |length| */
  uint64_t length;
  int chunked; /* send Transfer-Encoding: chunked */
};

static int head_build(struct dcmf_httpdc *h, struct slot *sl,
                      const struct dcmf_httpdc_response *r, int close,
                      const struct body_framing *bf) {
  struct dcmf_buf *b = &sl->head;
  b->len = 0;
  int rc = dcmf_buf_printf(b, "HTTP/1.1 %d %s\r\nServer: dcmf\r\n", r->status,
                           dcmf_httpdc_reason(r->status));
  if (rc == 0 && r->content_type != NULL) {
    rc = dcmf_buf_printf(b, "Content-Type: %s\r\n", r->content_type);
  }
  if (rc == 0 && bf->have_length) {
    rc = dcmf_buf_printf(b, "Content-Length: %" PRIu64 "\r\n", bf->length);
  }
  if (rc == 0 && bf->chunked) {
    rc = dcmf_buf_append(b, "Transfer-Encoding: chunked\r\n", 28);
  }
  for (size_t i = 0; rc == 0 && i < r->n_headers; i++) {
    const struct dcmf_httpdc_header *hd = &r->headers[i];
    if (dcmf_buf_append(b, hd->name, hd->name_len) != 0 ||
        dcmf_buf_append(b, ": ", 2) != 0 ||
        dcmf_buf_append(b, hd->value, hd->value_len) != 0 ||
        dcmf_buf_append(b, "\r\n", 2) != 0) {
      rc = DCMF_ERR_NOMEM;
    }
  }
  if (rc == 0 && close) {
    rc = dcmf_buf_append(b, "Connection: close\r\n", 19);
  } else if (rc == 0 && sl->keep_alive) {
    rc = dcmf_buf_append(b, "Connection: keep-alive\r\n", 24);
  }
  if (rc == 0) {
    rc = dcmf_buf_append(b, "\r\n", 2);
  }
  if (rc == 0 && b->len > h->s.max_message_size) {
    rc = DCMF_ERR_TOO_LARGE;
  }
  if (rc != 0) {
    b->len = 0;
  }
  return rc;
}

/* Answers |sl| with |r|; on error the slot is unchanged (unanswered). */
static int slot_fill(struct dcmf_httpdc *h, struct slot *sl,
                     const struct dcmf_httpdc_response *r) {
  int rc = response_check(r);
  if (rc != 0) {
    return rc;
  }
  int send_body = !sl->head_only && r->status != 204 && r->status != 304;
  if (send_body && r->body == NULL && r->body_len > 0) {
    return DCMF_ERR_INVALID; /* a Content-Length we could not honour */
  }
  int close = sl->close || r->close;
  struct body_framing bf = {.have_length = r->status != 204 && r->status != 304,
                            .length = r->body_len};
  rc = head_build(h, sl, r, close, &bf);
  if (rc != 0) {
    return rc;
  }
  sl->body = send_body ? r->body : NULL;
  sl->body_len = send_body ? r->body_len : 0;
  sl->release = r->release;
  sl->release_arg = r->release_arg;
  sl->sent = 0;
  sl->answered = 1;
  if (close && !sl->close) {
    sl->close = 1;
    httpdc_close_after(h, sl);
  }
  return 0;
}

/* Starts a streamed response on |sl|; on error the slot is unchanged. */
static int slot_start(struct dcmf_httpdc *h, struct slot *sl,
                      const struct dcmf_httpdc_response *r,
                      int64_t content_length) {
  if (content_length < -1) {
    return DCMF_ERR_INVALID;
  }
  int rc = response_check(r);
  if (rc != 0) {
    return rc;
  }
  int status_no_body = r->status == 204 || r->status == 304;
  int no_body = sl->head_only || status_no_body;
  int known = content_length >= 0;
  /* An HTTP/1.0 peer knows no chunked coding: the end of the channel
   * ends the body. */
  int close = sl->close || r->close || (!known && !no_body && sl->http10);
  struct body_framing bf = {
      .have_length = known && !status_no_body,
      .length = known ? (uint64_t)content_length : 0,
      .chunked = !known && !no_body && !sl->http10,
  };
  rc = head_build(h, sl, r, close, &bf);
  if (rc != 0) {
    return rc;
  }
  memset(&sl->st, 0, sizeof(sl->st));
  sl->st.known = known;
  sl->st.length = bf.length;
  sl->st.chunked = bf.chunked;
  sl->st.no_body = no_body;
  sl->streamed = 1;
  sl->body = NULL;
  sl->body_len = 0;
  sl->release = NULL;
  sl->sent = 0;
  sl->answered = 1;
  if (close && !sl->close) {
    sl->close = 1;
    httpdc_close_after(h, sl);
  }
  return 0;
}

/* Answers |sl| with a short text/plain error of the engine's own. */
int httpdc_slot_error(struct dcmf_httpdc *h, struct slot *sl, int status) {
  const char *body = httpdc_error_body(status);
  struct dcmf_httpdc_response r = {.status = status,
                                   .content_type = TEXT_PLAIN,
                                   .body = (const uint8_t *)body,
                                   .body_len = strlen(body)};
  int rc = slot_fill(h, sl, &r);
  if (rc != 0) {
    h->fatal = DCMF_ERR_NOMEM;
  }
  return rc;
}

/* A request the stream cannot recover from: answer |status| with
 * "Connection: close" and ignore all further input. */
void httpdc_fail(struct dcmf_httpdc *h, int status) {
  struct slot *sl = httpdc_slot_push(h);
  sl->close = 1;
  httpdc_close_after(h, NULL);
  httpdc_slot_error(h, sl, status);
}

/* ---- writing responses ------------------------------------------------ */

/* Appends |n| bytes to the ring, growing it up to |limit| bytes (the
 * caller made sure len + n <= limit). Returns 0 or DCMF_ERR_NOMEM (ring
 * unchanged). */
static int ring_put(struct stream *st, const uint8_t *p, size_t n,
                    size_t limit) {
  if (st->cap - st->len < n) {
    size_t cap = st->cap > 0 ? st->cap : 4096;
    while (cap - st->len < n && cap < limit) {
      cap = cap > limit / 2 ? limit : cap * 2;
    }
    if (cap > limit) {
      cap = limit;
    }
    uint8_t *ring = malloc(cap);
    if (ring == NULL) {
      return DCMF_ERR_NOMEM;
    }
    /* Unwrap into the new buffer. */
    size_t first = st->cap - st->off < st->len ? st->cap - st->off : st->len;
    if (st->len > 0) {
      memcpy(ring, st->ring + st->off, first);
      memcpy(ring + first, st->ring, st->len - first);
    }
    free(st->ring);
    st->ring = ring;
    st->cap = cap;
    st->off = 0;
  }
  size_t end = (st->off + st->len) % st->cap;
  size_t first = st->cap - end < n ? st->cap - end : n;
  memcpy(st->ring + end, p, first);
  memcpy(st->ring, p + first, n - first);
  st->len += n;
  return 0;
}

/* Takes |n| <= len bytes out of the ring. */
static void ring_get(struct stream *st, uint8_t *out, size_t n) {
  if (n == 0) {
    return; /* |ring| may be NULL */
  }
  size_t first = st->cap - st->off < n ? st->cap - st->off : n;
  memcpy(out, st->ring + st->off, first);
  memcpy(out + first, st->ring, n - first);
  st->len -= n;
  st->off = st->len == 0 ? 0 : (st->off + n) % st->cap;
}

static size_t hex_len(size_t n) {
  size_t d = 1;
  while (n >= 16) {
    n >>= 4;
    d++;
  }
  return d;
}

/* Writes |n| in hex (no leading zeros) at |out|; returns the length. */
static size_t hex_put(uint8_t *out, size_t n) {
  size_t d = hex_len(n);
  for (size_t i = d; i > 0; i--) {
    out[i - 1] = (uint8_t)"0123456789abcdef"[n & 15];
    n >>= 4;
  }
  return d;
}

/* 1 once everything of |sl| has been written. */
static int slot_done(const struct slot *sl) {
  if (!sl->streamed) {
    return sl->sent == sl->head.len + sl->body_len;
  }
  const struct stream *st = &sl->st;
  return sl->sent == sl->head.len && st->ended && st->len == 0 &&
         (!st->chunked || st->failed || st->last_chunk);
}

/* Fills |out| with the next bytes of a response from dcmf_httpdc_respond;
 * returns their number. */
static size_t plain_write(struct dcmf_httpdc *h, struct slot *sl,
                          uint8_t *out) {
  size_t total = sl->head.len + sl->body_len;
  size_t n = total - sl->sent;
  if (n > h->s.max_message_size) {
    n = h->s.max_message_size;
  }
  size_t w = 0;
  if (sl->sent < sl->head.len) {
    w = sl->head.len - sl->sent;
    if (w > n) {
      w = n;
    }
    memcpy(out, sl->head.data + sl->sent, w);
  }
  if (n > w) {
    memcpy(out + w, sl->body + (sl->sent + w - sl->head.len), n - w);
  }
  sl->sent += n;
  return n;
}

/* Fills |out| with the head (the first time), then buffered body bytes of
 * a streamed response: one chunk of as many as fit when chunked, then the
 * last chunk once the body has ended. Returns the bytes written. */
static size_t stream_write(struct dcmf_httpdc *h, struct slot *sl,
                           uint8_t *out) {
  struct stream *st = &sl->st;
  size_t room = h->s.max_message_size, w = 0;
  if (sl->sent < sl->head.len) {
    w = sl->sent = sl->head.len; /* a head fits into one message */
    memcpy(out, sl->head.data, w);
  }
  if (!st->chunked) {
    size_t n = st->len < room - w ? st->len : room - w;
    ring_get(st, out + w, n);
    return w + n;
  }
  if (st->len > 0 && room - w > 4) {
    /* hex digits, CRLF, data, CRLF */
    size_t n = room - w - 4;
    n -= hex_len(n);
    if (n > st->len) {
      n = st->len;
    }
    if (n > 0) {
      w += hex_put(out + w, n);
      memcpy(out + w, "\r\n", 2);
      ring_get(st, out + w + 2, n);
      memcpy(out + w + 2 + n, "\r\n", 2);
      w += n + 4;
    }
  }
  if (st->ended && !st->failed && st->len == 0 && room - w >= 5) {
    memcpy(out + w, "0\r\n\r\n", 5);
    w += 5;
    st->last_chunk = 1;
  }
  return w;
}

/* Removes the written first slot and reads on. */
static void slot_retire(struct dcmf_httpdc *h) {
  httpdc_slot_drop(h, httpdc_slot_at(h, 0));
  h->first = (h->first + 1) % h->s.max_pending;
  h->count--;
  if (!h->dead) {
    httpdc_stash_drain(h);
  }
}

/* Calls |resume| for the first response if it was refused data and has
 * drained to the low-water mark. Last thing dcmf_httpdc_write does, so
 * the backend finds the engine consistent. */
static void stream_resume(struct dcmf_httpdc *h) {
  if (h->fatal != 0 || h->count == 0) {
    return;
  }
  struct slot *sl = httpdc_slot_at(h, 0);
  struct stream *st = &sl->st;
  if (!sl->streamed || !st->want_resume || st->ended ||
      st->len > h->s.stream_buffer / 2) {
    return;
  }
  st->want_resume = 0;
  if (h->backend.resume != NULL) {
    h->backend.resume(h->backend.user, h, sl->id);
  }
}

/* The streamed response on |sl| cannot be completed. */
static void stream_fail(struct dcmf_httpdc *h, struct slot *sl) {
  if (sl->sent == 0) {
    /* Nothing went out: a complete error response keeps the stream in
     * sync. */
    stream_free(sl);
    sl->answered = 0;
    httpdc_slot_error(h, sl, 502);
    return;
  }
  sl->st.ended = 1;
  if (sl->st.no_body) {
    return; /* the head was all there was to send */
  }
  sl->st.failed = 1;
  httpdc_close_after(h, sl);
}

/* The slot of a streamed response to |id| that takes data, or NULL. */
static struct slot *stream_find(struct dcmf_httpdc *h, uint64_t id) {
  struct slot *sl = httpdc_slot_find(h, id);
  return sl != NULL && sl->streamed && !sl->st.ended ? sl : NULL;
}

/* ---- public API: writing and responding ------------------------------ */

int dcmf_httpdc_write(struct dcmf_httpdc *h, uint8_t *out, size_t cap,
                      size_t *len) {
  *len = 0;
  if (h->fatal != 0) {
    return h->fatal;
  }
  if (cap < h->s.max_message_size) {
    return DCMF_ERR_INVALID;
  }
  /* Normally one round; more only to retire streamed responses that
   * ended with nothing left to write. */
  while (h->fatal == 0 && dcmf_httpdc_want_write(h)) {
    struct slot *sl = httpdc_slot_at(h, 0);
    size_t n = 0;
    if (!slot_done(sl)) {
      n = sl->streamed ? stream_write(h, sl, out) : plain_write(h, sl, out);
    }
    int done = slot_done(sl);
    if (done) {
      slot_retire(h);
    }
    if (n > 0 || !done) {
      *len = n;
      break;
    }
  }
  stream_resume(h);
  return h->fatal;
}

int dcmf_httpdc_respond(struct dcmf_httpdc *h, uint64_t id,
                        const struct dcmf_httpdc_response *resp) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = httpdc_slot_find(h, id);
  if (sl == NULL || sl->answered) {
    return DCMF_ERR_NOT_FOUND;
  }
  return slot_fill(h, sl, resp);
}

int dcmf_httpdc_respond_start(struct dcmf_httpdc *h, uint64_t id,
                              const struct dcmf_httpdc_response *head,
                              int64_t content_length) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = httpdc_slot_find(h, id);
  if (sl == NULL || sl->answered) {
    return DCMF_ERR_NOT_FOUND;
  }
  return slot_start(h, sl, head, content_length);
}

int dcmf_httpdc_respond_data(struct dcmf_httpdc *h, uint64_t id,
                             const uint8_t *data, size_t len) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = stream_find(h, id);
  if (sl == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  struct stream *st = &sl->st;
  if (st->no_body || len == 0) {
    return 0;
  }
  if (data == NULL || (st->known && len > st->length - st->given)) {
    return DCMF_ERR_INVALID;
  }
  if (len > h->s.max_message_size) {
    return DCMF_ERR_TOO_LARGE;
  }
  if (st->len >= h->s.stream_buffer) {
    st->want_resume = 1;
    return DCMF_ERR_EXHAUSTED;
  }
  int rc = ring_put(st, data, len, h->s.stream_buffer + h->s.max_message_size);
  if (rc != 0) {
    return rc;
  }
  st->given += len;
  return 0;
}

int dcmf_httpdc_respond_end(struct dcmf_httpdc *h, uint64_t id) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = stream_find(h, id);
  if (sl == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  struct stream *st = &sl->st;
  if (!st->no_body && st->known && st->given < st->length) {
    stream_fail(h, sl);
    return h->fatal != 0 ? h->fatal : DCMF_ERR_INVALID;
  }
  st->ended = 1;
  return 0;
}

int dcmf_httpdc_respond_abort(struct dcmf_httpdc *h, uint64_t id) {
  if (h->fatal != 0) {
    return h->fatal;
  }
  struct slot *sl = stream_find(h, id);
  if (sl == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  stream_fail(h, sl);
  return h->fatal;
}
