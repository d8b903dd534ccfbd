/*
 * session.h - the media plane of one DC media inside a worker: its UDP
 * socket, first-byte demultiplexing (RFC 7983), the ICE-lite responder,
 * the DTLS/SCTP/data-channel stack (dcstack.h), and
 * the services on those channels (bootstrap HTTP). Glue: it owns the
 * socket and the timer and feeds the engines.
 */
#ifndef DCMF_SESSION_H
#define DCMF_SESSION_H

#include <uv.h>

#include "dtls.h"
#include "log.h"
#include "media.h"

struct dcmf_repo;
struct dcmf_ratelimit;
struct dcmf_media_stats;
struct dcmf_httpproxy_env;
struct dcmf_httpproxy_counters;
struct dcmf_tickq;

/* What every session of a worker shares. */
struct dcmf_session_env {
  uv_loop_t *loop;
  struct dcmf_dtls_ctx *dtls_ctx;
  const struct dcmf_log *log;
  const struct dcmf_repo *repo;
  struct dcmf_media_stats *stats;
  uint16_t max_streams;
  /* Scratch memory of the worker thread, shared by its sessions because
   * one thread handles one datagram or one message at a time: the UDP
   * receive buffer and the outgoing HTTP message. */
  uint8_t *rx_scratch;
  size_t rx_scratch_len;
  uint8_t *tx_scratch;
  size_t tx_scratch_len;
  /* HTTP-proxy mode: the worker's upstream pool and cache. */
  const struct dcmf_httpproxy_env *proxy;
  struct dcmf_httpproxy_counters *proxy_counters;
  /* Raises an event toward the controller; |detail| is JSON text. */
  void (*emit)(void *user, const struct dcmf_media_key *key,
               const char *event, const char *detail);
  void *emit_user;
  /* The session of DC media |key| on the same thread, or NULL. */
  struct dcmf_session *(*find_session)(void *user,
                                       const struct dcmf_media_key *key);
  void *find_user;
  /* The worker's per-source limits (ratelimit.h) for STUN checks and
   * DTLS ClientHellos from anyone but the peer; NULL: no limit. */
  struct dcmf_ratelimit *stun_limit;
  struct dcmf_ratelimit *hello_limit;
  /* The sessions with work for the next SCTP tick (tickq.h): a session
   * joins when its stack, relay queue or UDP-proxy counters need the
   * tick, and the worker runs the queue after each dcmf_sctp_stack_tick.
   * Idle sessions are never in it. */
  struct dcmf_tickq *ticks;
};

struct dcmf_session;

/*
 * Starts a session from |desc|, taking ownership of its fd and streams
 * (|desc| itself is copied). Returns 0, or a negative error with the fd
 * closed.
 */
int dcmf_session_new(struct dcmf_session **session,
                     const struct dcmf_session_env *env,
                     struct dcmf_media_desc *desc);

/* Applies changed remote values (fingerprint, address, tls-id, streams);
 * takes ownership of |desc|'s streams. */
void dcmf_session_update(struct dcmf_session *session,
                         struct dcmf_media_desc *desc);

/* Closes the socket and frees the session once libuv has let go. */
void dcmf_session_close(struct dcmf_session *session);

const struct dcmf_media_key *dcmf_session_key(const struct dcmf_session *s);

#endif
