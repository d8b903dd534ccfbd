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
 * path) does not close: the stream is still in sync.
 *
 * Memory. The engine buffers at most max_request_line + max_header_bytes
 * bytes of an unfinished request head, and - only while max_pending
 * responses are queued - the unparsed rest of one message. Response
 * bodies are not copied (see dcmf_httpdc_response.body).
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
  uint64_t content_length; /* body bytes the engine reads and discards */
};

/* A response as given to dcmf_httpdc_respond(). */
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
   * dcmf_httpdc_respond(|h|, |req|->id, ...) before returning or later;
   * it must not call any other function of |h| from inside the callback.
   * Returning a negative DCMF_ERR_* without having answered makes the
   * engine answer 500 Internal Server Error.
   */
  int (*request)(void *user, struct dcmf_httpdc *h,
                 const struct dcmf_httpdc_request *req);
  /*
   * Called for each request still unanswered when the engine drops it
   * (engine deleted, or an earlier response closed the channel); the id
   * is invalid afterwards. It runs inside dcmf_httpdc_del() or
   * dcmf_httpdc_respond() and must not call the engine. May be NULL for
   * synchronous backends.
   */
  void (*cancel)(void *user, uint64_t id);
  void *user;
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
 * next one unanswered by the backend, or its request body still being
 * read). Finishing a response may parse input kept back by recv, which
 * may call the backend.
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
