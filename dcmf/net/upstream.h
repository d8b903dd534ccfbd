/*
 * upstream.h - the HTTP client pool toward MDC1/MDC2 upstreams (the DCSF
 * and DC application repositories) for HTTP-proxy mode, and dcmf's one
 * HTTP client: event notifications (notify.h) and dcmf-ue's control API
 * client (apiclient.h) run on pools of their own.
 *
 * One pool per media worker, shared by all its contexts. Connections are
 * pooled per origin (scheme, host, port) and reused: HTTP/2 carries many
 * concurrent streams on one connection; HTTP/1.1 keeps idle connections
 * alive for the next request. https:// origins negotiate h2 or
 * http/1.1 by ALPN with SNI and certificate verification; http://
 * origins are tried with h2c prior knowledge first and fall back to
 * HTTP/1.1 for good when the server answers in HTTP/1. A GET, HEAD,
 * PUT, DELETE or OPTIONS that a reused HTTP/1.1 connection loses before
 * any byte of its answer (the upstream closed it for idleness) is sent
 * once more on a new connection (RFC 9112 9.3.1); other methods fail.
 * An HTTP/2 stream the upstream refused (REFUSED_STREAM, GOAWAY) is sent
 * once more whatever its method. When an upstream dies, every request
 * queued or in flight still ends exactly once, in bounded time (it
 * waits for a connection at most connect_timeout_ms +
 * response_timeout_ms, then response_timeout_ms for the head and for
 * each silence in the body; a response its caller paused waits for the
 * caller), and a request issued from an end callback is queued like any
 * other.
 *
 * TLS goes through the TLS pump (tlspump.h); a failed handshake ends the
 * requests with UNREACHABLE and a reason such as "TLS handshake failed:
 * certificate verify failed: unable to get local issuer certificate".
 *
 * Bodies stream: every piece goes to the |data| callback as it arrives,
 * and the caller can pause a response (HTTP/2 flow control stays closed,
 * an HTTP/1.1 socket stops being read) until dcmf_upstream_resume.
 * Glue: it owns sockets and timers on the worker's loop.
 */
#ifndef DCMF_UPSTREAM_H
#define DCMF_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "log.h"
#include "urlmap.h"

struct dcmf_upstream_settings {
  const char *ca_file;     /* PEM bundle; NULL: the system's default paths */
  const char *client_cert; /* PEM; NULL: none */
  const char *client_key;
  uint32_t connect_timeout_ms;  /* TCP + TLS set-up */
  uint32_t response_timeout_ms; /* request sent to response head, and
                                   the longest silence in a body that is
                                   being read (then BROKEN) */
  uint32_t idle_timeout_ms;     /* unused connections are closed */
  uint32_t max_connections;     /* HTTP/1.1 connections per origin */
};

/* A header field (not NUL-terminated). */
struct dcmf_upstream_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};

/* How a request ended. */
enum dcmf_upstream_result {
  DCMF_UPSTREAM_OK,          /* the whole body arrived */
  DCMF_UPSTREAM_UNREACHABLE, /* connect, TLS or protocol failure */
  DCMF_UPSTREAM_TIMEOUT,     /* no response head in time */
  DCMF_UPSTREAM_BROKEN,      /* the body was cut short */
};

struct dcmf_upstream_callbacks {
  /* The response head. |content_length| is -1 when unknown. Pointers are
   * valid for the call. */
  void (*head)(void *user, int status,
               const struct dcmf_upstream_header *headers, size_t n,
               int64_t content_length);
  /* A piece of the body. Return 0 to go on, 1 to pause this response
   * until dcmf_upstream_resume(). */
  int (*data)(void *user, const uint8_t *data, size_t len);
  /* The request is over (after or instead of head); no more callbacks.
   * |why| is a short phrase for logs. */
  void (*end)(void *user, enum dcmf_upstream_result result, const char *why);
};

struct dcmf_upstream_pool;
struct dcmf_upstream_req;

/*
 * Creates a pool on |loop|. Returns 0, DCMF_ERR_NOMEM, or
 * DCMF_ERR_INVALID with |err| naming a certificate file that cannot be
 * used.
 */
int dcmf_upstream_pool_new(struct dcmf_upstream_pool **pool, uv_loop_t *loop,
                           const struct dcmf_upstream_settings *settings,
                           const struct dcmf_log *log, char *err,
                           size_t errlen);

/* Ends every request (end callbacks run with UNREACHABLE), closes every
 * connection and frees the pool once libuv lets go (the loop must run). */
void dcmf_upstream_pool_del(struct dcmf_upstream_pool *pool);

/*
 * Sends |method| to |url| with |headers| (copied; the pool adds
 * Host/:authority, Content-Length and the connection's own framing) and
 * |body| (copied; may be NULL). Callbacks run on the loop, never from
 * inside this call. Returns 0 with *|req| set (valid until |end| ran or
 * dcmf_upstream_cancel), or DCMF_ERR_NOMEM.
 */
int dcmf_upstream_request(struct dcmf_upstream_pool *pool,
                          const struct dcmf_url *url, const char *method,
                          const struct dcmf_upstream_header *headers,
                          size_t n_headers, const uint8_t *body,
                          size_t body_len,
                          const struct dcmf_upstream_callbacks *cbs,
                          void *user, struct dcmf_upstream_req **req);

/* From now on, connections are closed as soon as they are idle (within
 * the sweep period, 100 ms), so that an owner whose loop is stopping is
 * not held up by keep-alive connections. Requests go on as before. */
void dcmf_upstream_pool_drain(struct dcmf_upstream_pool *pool);

/* Lets a paused response flow again. */
void dcmf_upstream_resume(struct dcmf_upstream_req *req);

/* Abandons a request: no more callbacks; its stream or connection is
 * reset or closed. */
void dcmf_upstream_cancel(struct dcmf_upstream_req *req);

struct dcmf_upstream_counters {
  uint64_t requests, connections_opened, connections_reused, failures,
      timeouts;
  uint64_t connections_closed; /* for any reason: idle, failed, GOAWAY */
  uint64_t latency_ms_total; /* request sent to response head, summed */
  uint64_t responses;        /* how many heads latency_ms_total covers */
  uint64_t retries; /* requests sent again on a new connection: an
                       idempotent one a reused HTTP/1.1 connection lost
                       unanswered, or any one whose HTTP/2 stream was
                       refused (REFUSED_STREAM, GOAWAY) */
};

const struct dcmf_upstream_counters *
dcmf_upstream_counters(const struct dcmf_upstream_pool *pool);

#endif
