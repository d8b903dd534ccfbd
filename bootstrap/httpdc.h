/*
 * httpdc.h - an HTTP/1.1 server engine for one bootstrap data channel
 * (TS 26.114 6.2.10: stream 0/10/100/110, subprotocol "http"). No I/O:
 * the caller feeds each received data-channel message to
 * dcmf_httpdc_recv() and sends every message dcmf_httpdc_write() yields.
 *
 * Framing. A request may be split over several messages and several
 * requests may share a message (pipelining); the engine parses a byte
 * stream. Each outgoing message carries bytes of exactly one response:
 * the first message of a response holds its whole head (status line and
 * header fields) and as much body as fits, later messages carry the rest
 * of the body, each at most max_message_size bytes. Responses leave in
 * request order.
 *
 * Backends. The engine parses and frames; what to answer is decided by a
 * backend (struct dcmf_httpdc_backend). The built-in repository is one
 * backend (dcmf_httpdc_repo_backend); an upstream proxy can be another.
 * Every request gets an id; the backend answers with dcmf_httpdc_respond()
 * either before its callback returns (synchronous, like the repository)
 * or later (asynchronous). Later requests wait behind an unanswered one.
 *
 * Streamed responses. A backend that gets the body in pieces of unknown
 * total size (an upstream HTTP server) starts the response with
 * dcmf_httpdc_respond_start(), hands over each piece with
 * dcmf_httpdc_respond_data() and finishes with dcmf_httpdc_respond_end()
 * or, when the upstream fails, dcmf_httpdc_respond_abort(). The engine
 * copies the pieces and frames them with Content-Length when the length
 * is known, otherwise with Transfer-Encoding: chunked (HTTP/1.1) or by
 * closing after the body (HTTP/1.0). Backpressure: once stream_buffer
 * bytes of a response are buffered, respond_data refuses more with
 * DCMF_ERR_EXHAUSTED, and the engine calls the backend's |resume| when
 * writing has brought the buffer down to half of that. A streamed
 * response holds back the responses after it until it has ended and been
 * written. Since data can arrive at any time, the caller checks
 * dcmf_httpdc_want_write() after the backend's respond* calls too, not
 * only after dcmf_httpdc_recv().
 *
 * What the engine does itself (RFC 9112 / RFC 9110):
 *   - 400 for a malformed request line or header field (obs-fold, bare
 *     CR, white space before ':', control characters, ...), a bad or
 *     conflicting Content-Length, a request-target in neither origin-form
 *     nor absolute-form ("*" is accepted for OPTIONS only), and a
 *     Transfer-Encoding whose final coding is not chunked or that comes in
 *     an HTTP/1.0 request;
 *   - 501 for Transfer-Encoding: chunked (not supported: bootstrap
 *     requests carry no bodies, and Content-Length covers what does);
 *   - 414 when the request line (with its line end) exceeds
 *     max_request_line, 431 when the header section exceeds
 *     max_header_bytes or max_headers fields, 505 for a version other than
 *     HTTP/1.0 and HTTP/1.1;
 *   - the Host header is ignored whether empty, absent or repeated
 *     (TS 26.114: its value has no meaning on a bootstrap channel); an
 *     absolute-form target's scheme and authority are dropped;
 *   - a request body (Content-Length) is read and discarded, and the
 *     response is released only after the body has been read, so
 *     pipelined requests stay in sync;
 *   - HEAD responses carry the head only (Content-Length of the body a
 *     GET would get); 204 and 304 carry neither body nor Content-Length;
 *   - every response carries "Server: dcmf" and no Date (engines have no
 *     clock).
 *
 * Closing. Every error above leaves the byte stream unparseable, so the
 * engine answers it with "Connection: close" and ignores all further
 * input; it does the same after a request with "Connection: close", an
 * HTTP/1.0 request without "Connection: keep-alive", and a request with
 * "Expect: 100-continue" and a body (its body might never come). The
 * state then goes from DCMF_HTTPDC_OPEN to DCMF_HTTPDC_CLOSING and, once
 * the last response has been written, DCMF_HTTPDC_CLOSED: the caller may
 * then close the data channel. A 400 chosen by a backend (e.g. for a bad
 * path) does not close: the stream is still in sync. Streamed responses
 * close the same way when they are aborted after their head went out
 * (the body cannot be completed) and when their length is unknown and
 * the request is HTTP/1.0 (the close ends the body).
 *
 * Memory. The engine buffers at most max_request_line + max_header_bytes
 * bytes of an unfinished request head, and - only while max_pending
 * responses are queued - the unparsed rest of one message. Bodies given
 * to dcmf_httpdc_respond() are not copied (see
 * dcmf_httpdc_response.body); a streamed response holds copies of at
 * most stream_buffer + max_message_size - 1 body bytes.
 *
 * One engine is used by one thread. Peer input never makes a call fail:
 * peer errors are answered in HTTP.
 */
#ifndef DCMF_HTTPDC_H
#define DCMF_HTTPDC_H

#include <stddef.h>
#include <stdint.h>

#include "repo.h"

#define DCMF_HTTPDC_DEFAULT_MAX_MESSAGE_SIZE 65536
/* The smallest max_message_size; smaller settings are raised to this. */
#define DCMF_HTTPDC_MIN_MESSAGE_SIZE 1024
#define DCMF_HTTPDC_DEFAULT_STREAM_BUFFER (256 * 1024)

struct dcmf_httpdc_settings {
  /* Largest outgoing message (the peer's a=max-message-size); 0 means
   * 65536, values below DCMF_HTTPDC_MIN_MESSAGE_SIZE are raised to it. */
  size_t max_message_size;
  /* Longest request line including its line end; 0 means 8192. */
  size_t max_request_line;
  /* Longest header section (after the request line, through the empty
   * line); 0 means 16384. */
  size_t max_header_bytes;
  /* Most header fields in one request; 0 means 64. */
  size_t max_headers;
  /* Most requests parsed but not yet fully written; 0 means 16. */
  size_t max_pending;
  /* High-water mark of body bytes buffered per streamed response (see
   * dcmf_httpdc_respond_data); 0 means
   * DCMF_HTTPDC_DEFAULT_STREAM_BUFFER. */
  size_t stream_buffer;
  /* Request bodies (Content-Length) up to this many bytes are collected
   * and handed to the backend with the request (|body| / |body_len|);
   * larger ones are answered 413 and the channel closes. 0 means bodies
   * are read and discarded, the request being handed over at once. */
  size_t max_request_body;
};

/* A header field: name and value are not NUL-terminated. In a request the
 * value has surrounding white space removed. */
struct dcmf_httpdc_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};

/* A parsed request as handed to the backend. Every pointer is borrowed
 * and valid only during the backend's |request| callback; an asynchronous
 * backend copies what it keeps. */
struct dcmf_httpdc_request {
  uint64_t id; /* unique per engine, increasing from 1 */
  const char *method; /* token, case-sensitive ("GET") */
  size_t method_len;
  /* The path: for origin-form the target up to '?', for absolute-form
   * the part after the authority ("/" when empty), "*" for OPTIONS *.
   * Still percent-encoded; only visible ASCII other than '#'. */
  const char *path;
  size_t path_len;
  const char *query; /* after '?', without it; query_len 0 if none */
  size_t query_len;
  int version_minor; /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
  const struct dcmf_httpdc_header *headers; /* in arrival order */
  size_t n_headers;
  uint64_t content_length; /* body bytes (discarded unless collected) */
  /* The collected body when settings.max_request_body is set; NULL and 0
   * otherwise. Borrowed for the callback like every other field. */
  const uint8_t *body;
  size_t body_len;
};

/* A response as given to dcmf_httpdc_respond(), or the head of a streamed
 * one as given to dcmf_httpdc_respond_start(). */
struct dcmf_httpdc_response {
  int status; /* 200..599 */
  /* Content-Type value, or NULL for none. Copied during the call. */
  const char *content_type;
  /* Further header fields, copied during the call. Names must be tokens,
   * values visible ASCII, SP or HTAB. The engine writes Server,
   * Content-Length and Connection itself; Content-Length,
   * Transfer-Encoding and Connection are refused here. */
  const struct dcmf_httpdc_header *headers;
  size_t n_headers;
  /* The body, NOT copied: it must stay valid until |release| is called
   * or, when |release| is NULL, until the engine is deleted (e.g. memory
   * of a repository that outlives the engine). Content-Length is
   * |body_len|. For HEAD requests, 204 and 304 the bytes are not sent;
   * for HEAD |body| may be NULL with a nonzero |body_len| (the length a
   * GET would get), otherwise NULL requires |body_len| 0. */
  const uint8_t *body;
  size_t body_len;
  /* Called once with |release_arg| when the engine no longer needs
   * |body| (written, dropped or engine deleted); may be NULL. Not called
   * when dcmf_httpdc_respond fails. */
  void (*release)(void *release_arg);
  void *release_arg;
  /* Nonzero: send "Connection: close" and stop reading after this
   * request; later requests already parsed are dropped. */
  int close;
};

struct dcmf_httpdc;

/* What the engine asks of its backend. */
struct dcmf_httpdc_backend {
  /*
   * Called once per well-formed request, in request order, from within
   * dcmf_httpdc_recv() or dcmf_httpdc_write(). The backend answers with
   * dcmf_httpdc_respond(|h|, |req|->id, ...) or starts a streamed
   * response with dcmf_httpdc_respond_start() before returning or later.
   * From inside the callback it may call the dcmf_httpdc_respond*
   * functions (for any id), but no other function of |h|. Returning a
   * negative DCMF_ERR_* without having answered makes the engine answer
   * 500 Internal Server Error.
   */
  int (*request)(void *user, struct dcmf_httpdc *h,
                 const struct dcmf_httpdc_request *req);
  /*
   * Called for each request the engine drops while it is still unanswered
   * or while its streamed response has not ended (engine deleted, or an
   * earlier response closed the channel); the id is invalid afterwards
   * and the backend stops producing its body. It runs inside
   * dcmf_httpdc_del() or a dcmf_httpdc_respond* call that closes the
   * channel (also one made from |request| or |resume|, so possibly inside
   * dcmf_httpdc_recv() or dcmf_httpdc_write()) and must not call the
   * engine. May be NULL for synchronous backends.
   */
  void (*cancel)(void *user, uint64_t id);
  void *user;
  /*
   * Called, from inside dcmf_httpdc_write(), once after
   * dcmf_httpdc_respond_data() refused bytes of the streamed response to
   * |id| with DCMF_ERR_EXHAUSTED (several refusals before the call count
   * as one), as soon as the bytes buffered for it are down to half the
   * stream_buffer or less: the backend offers its bytes again. Not called
   * if the response has ended or was dropped (|cancel|) meanwhile.
   * From inside the callback the backend may call the dcmf_httpdc_respond*
   * functions (typically respond_data until it refuses, and
   * respond_end), dcmf_httpdc_buffered() and the getters, but not
   * dcmf_httpdc_recv(), dcmf_httpdc_write() or dcmf_httpdc_del(). What
   * it adds is written by later dcmf_httpdc_write() calls. May be NULL
   * for backends that never stream (a backend that streams without it
   * must poll).
   */
  void (*resume)(void *user, struct dcmf_httpdc *h, uint64_t id);
};

enum dcmf_httpdc_state {
  /* Reading requests. */
  DCMF_HTTPDC_OPEN,
  /* Input is ignored; queued responses remain to be written. */
  DCMF_HTTPDC_CLOSING,
  /* Nothing more will be written: the caller may close the channel. */
  DCMF_HTTPDC_CLOSED,
};

/*
 * Creates an engine. |settings| (may be NULL for the defaults) and
 * |backend| are copied; |backend->user| is borrowed for the engine's
 * life. Returns 0 or DCMF_ERR_NOMEM.
 */
int dcmf_httpdc_new(struct dcmf_httpdc **h,
                    const struct dcmf_httpdc_settings *settings,
                    const struct dcmf_httpdc_backend *backend);

/* Releases every queued body, cancels unanswered requests (backend
 * |cancel|) and frees |h|; NULL is allowed. */
void dcmf_httpdc_del(struct dcmf_httpdc *h);

/*
 * Feeds one received data-channel message of |len| bytes (borrowed for
 * the call). Complete requests are passed to the backend at once. While
 * the engine is CLOSING or CLOSED the bytes are discarded.
 *
 * Returns:
 *   0                    the message was taken (parsed, or kept because
 *                        max_pending responses are queued)
 *   DCMF_ERR_EXHAUSTED   nothing was taken: the rest of an earlier message
 *                        still waits for queued responses to be written.
 *                        Call dcmf_httpdc_write() and offer the message
 *                        again when dcmf_httpdc_want_read() says so (or
 *                        treat the peer as abusive and close)
 *   DCMF_ERR_NOMEM       allocation failed; the engine can only be deleted
 */
int dcmf_httpdc_recv(struct dcmf_httpdc *h, const uint8_t *msg, size_t len);

/*
 * Writes the next outgoing message into |out| (capacity |cap|, which must
 * be at least dcmf_httpdc_max_message_size(h)) and sets *|len| to its
 * length, or to 0 when nothing can be sent now (no response queued, the
 * next one unanswered by the backend, its request body still being read,
 * or a streamed response waiting for data). Finishing a response may
 * parse input kept back by recv, which may call the backend; writing
 * body bytes of a streamed response may call the backend's |resume|.
 * *|len| can be 0 even when dcmf_httpdc_want_write() said 1: a streamed
 * response that ended with nothing left to send is then just retired.
 *
 * Returns 0, DCMF_ERR_INVALID (|cap| too small; nothing written) or
 * DCMF_ERR_NOMEM (the engine can only be deleted).
 */
int dcmf_httpdc_write(struct dcmf_httpdc *h, uint8_t *out, size_t cap,
                      size_t *len);

/*
 * Answers request |id| with |resp| (see struct dcmf_httpdc_response for
 * what is copied and what is borrowed). Allowed from inside the backend's
 * |request| callback and at any later time.
 *
 * Returns:
 *   0                    the response is queued
 *   DCMF_ERR_NOT_FOUND   |id| is unknown, already answered or dropped
 *   DCMF_ERR_INVALID     status out of range, a header name or value
 *                        with characters not allowed, a reserved header
 *                        (Content-Length, Transfer-Encoding, Connection),
 *                        or a NULL body with a nonzero length
 *   DCMF_ERR_TOO_LARGE   the response head would not fit into one message
 *   DCMF_ERR_NOMEM       allocation failed
 * On error nothing changes and the request still waits for an answer.
 */
int dcmf_httpdc_respond(struct dcmf_httpdc *h, uint64_t id,
                        const struct dcmf_httpdc_response *resp);

/*
 * Starts a streamed response to request |id|: status and header fields
 * as in |head| (whose body, body_len, release and release_arg are
 * ignored), the body to follow through dcmf_httpdc_respond_data() and
 * dcmf_httpdc_respond_end(). Allowed wherever dcmf_httpdc_respond() is.
 *
 * |content_length| >= 0 is sent as Content-Length, and exactly that many
 * bytes must follow. -1 means unknown: for an HTTP/1.1 request the body
 * is sent with Transfer-Encoding: chunked; for an HTTP/1.0 request it is
 * sent as is with "Connection: close", and its end is the end of the
 * channel (the engine closes after it, as with |head|->close).
 *
 * Responses without a body - to a HEAD request, and 204 and 304 - carry
 * the head only: Content-Length when |content_length| >= 0 (HEAD only;
 * never for 204 and 304), no Transfer-Encoding, and no forced close.
 * Their data is accepted and ignored, and the backend still ends them
 * with dcmf_httpdc_respond_end().
 *
 * Returns:
 *   0                    the head is queued; the id now takes
 *                        respond_data, respond_end and respond_abort
 *   DCMF_ERR_NOT_FOUND   |id| is unknown, already answered or dropped
 *   DCMF_ERR_INVALID     as for dcmf_httpdc_respond() (the body fields
 *                        aside), or |content_length| < -1
 *   DCMF_ERR_TOO_LARGE   the response head would not fit into one message
 *   DCMF_ERR_NOMEM       allocation failed
 * On error nothing changes and the request still waits for an answer.
 */
int dcmf_httpdc_respond_start(struct dcmf_httpdc *h, uint64_t id,
                              const struct dcmf_httpdc_response *head,
                              int64_t content_length);

/*
 * Appends |len| bytes at |data| (copied; |data| may be NULL when |len| is
 * 0) to the body of the streamed response to |id|. |len| is at most
 * dcmf_httpdc_max_message_size(h): together with the high-water mark
 * this bounds what a response buffers to stream_buffer +
 * max_message_size - 1 bytes. With chunked framing each message carries
 * whole chunks of what is buffered when it is written.
 *
 * Returns:
 *   0                    all |len| bytes were taken (or ignored: HEAD,
 *                        204, 304)
 *   DCMF_ERR_EXHAUSTED   nothing was taken: stream_buffer or more bytes
 *                        of this response are already buffered. The
 *                        backend keeps the bytes and offers them again
 *                        when its |resume| is called (or later)
 *   DCMF_ERR_NOT_FOUND   |id| is unknown or dropped, was not started
 *                        with dcmf_httpdc_respond_start(), or has ended
 *   DCMF_ERR_INVALID     the bytes would exceed the announced
 *                        content_length, or |data| is NULL with |len| > 0
 *   DCMF_ERR_TOO_LARGE   |len| exceeds dcmf_httpdc_max_message_size(h)
 *   DCMF_ERR_NOMEM       allocation failed
 * On error nothing is taken and the response is unchanged.
 */
int dcmf_httpdc_respond_data(struct dcmf_httpdc *h, uint64_t id,
                             const uint8_t *data, size_t len);

/*
 * Ends the body of the streamed response to |id|; with chunked framing
 * the last chunk ("0" CRLF CRLF) follows the data. The id takes no more
 * calls; its response is retired once written.
 *
 * Ending a response of known length before all content_length bytes were
 * given is an upstream failure: it is treated as dcmf_httpdc_respond_abort()
 * (see there: the channel closes after what was buffered, and the phone
 * sees a body shorter than its Content-Length) and returns
 * DCMF_ERR_INVALID.
 *
 * Returns:
 *   0                    the body is complete
 *   DCMF_ERR_NOT_FOUND   |id| is unknown or dropped, not streamed, or has
 *                        already ended
 *   DCMF_ERR_INVALID     bytes were missing; the response was aborted
 *   DCMF_ERR_NOMEM       bytes were missing and building the 502 failed;
 *                        the engine can only be deleted
 */
int dcmf_httpdc_respond_end(struct dcmf_httpdc *h, uint64_t id);

/*
 * Gives up the streamed response to |id| because its body cannot be
 * completed (the upstream failed). The id takes no more calls.
 *   - If nothing of the response has been written yet, the engine answers
 *     502 Bad Gateway (text/plain) instead; the buffered body is dropped
 *     and the channel stays open unless the response was to close it.
 *   - Otherwise the engine writes what it has buffered, adds nothing to
 *     end the body (no last chunk), and closes: further input is ignored,
 *     later requests are dropped (|cancel|), and the state goes to
 *     DCMF_HTTPDC_CLOSING and then DCMF_HTTPDC_CLOSED, when the caller
 *     closes the data channel. The phone sees a truncated chunked body or
 *     one shorter than its Content-Length; a close-delimited HTTP/1.0
 *     body cannot show the truncation.
 *   - A response without a body (HEAD, 204, 304) whose head has been
 *     written is complete; it is just ended.
 *
 * Returns 0, DCMF_ERR_NOT_FOUND (|id| is unknown or dropped, not
 * streamed, or has ended) or DCMF_ERR_NOMEM (building the 502 failed;
 * the engine can only be deleted).
 */
int dcmf_httpdc_respond_abort(struct dcmf_httpdc *h, uint64_t id);

/* Returns the body bytes held for all streamed responses (copies made by
 * dcmf_httpdc_respond_data() and not yet written). */
size_t dcmf_httpdc_buffered(const struct dcmf_httpdc *h);

/* Returns the engine's state (see enum dcmf_httpdc_state). */
enum dcmf_httpdc_state dcmf_httpdc_get_state(const struct dcmf_httpdc *h);

/* Returns 1 if dcmf_httpdc_write() would produce a message now, else 0. */
int dcmf_httpdc_want_write(const struct dcmf_httpdc *h);

/* Returns 1 if dcmf_httpdc_recv() would take a message now, else 0. */
int dcmf_httpdc_want_read(const struct dcmf_httpdc *h);

/* Returns the effective largest outgoing message size. */
size_t dcmf_httpdc_max_message_size(const struct dcmf_httpdc *h);

/*
 * Returns the reason phrase for |status| ("Not Found"), or "Unknown" for
 * codes the engine does not know. A static string.
 */
const char *dcmf_httpdc_reason(int status);

/*
 * Fills |backend| with the built-in repository backend serving |repo|
 * (borrowed; it must outlive every engine using the backend, since
 * bodies point into it):
 *   - GET and HEAD only; other methods get 405 with "Allow: GET, HEAD";
 *   - the path is looked up with dcmf_repo_find: 400 for a malformed path
 *     (traversal, encoded '/', NUL, backslash), 404 when absent, and 301
 *     with Location: path + "/" when it names a directory without the
 *     trailing '/', so relative links in its index.html resolve;
 *   - 200 with Content-Type, ETag, "Cache-Control: no-cache" and
 *     "X-Content-Type-Options: nosniff";
 *   - If-None-Match ("*" or a list of entity tags, compared weakly, over
 *     all such header fields) matching the ETag gives 304 with ETag and
 *     Cache-Control and no body;
 *   - error responses carry a short text/plain body.
 */
void dcmf_httpdc_repo_backend(struct dcmf_httpdc_backend *backend,
                              const struct dcmf_repo *repo);

#endif
