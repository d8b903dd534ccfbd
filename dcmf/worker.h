/*
 * worker.h - a media worker: one thread running one libuv loop that owns
 * the media sockets and sessions of the DC media assigned to it, and the
 * process's usrsctp stack.
 *
 * The control loop talks to it only by message: media add / update /
 * remove go in through a queue and uv_async; events come back the same
 * way to the control loop. The queues are the only shared state, so the
 * worker can later become a process with the same messages.
 */
#ifndef DCMF_WORKER_H
#define DCMF_WORKER_H

#include <stdatomic.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "log.h"
#include "media.h"
#include "upstream.h"

struct dcmf_repo;

/* Something that happened to a media, for the controller. */
struct dcmf_media_event {
  struct dcmf_media_key key;
  char event[24];   /* DTLS_FAILURE, DC_OPEN, DC_CLOSE, CONSENT_LOST, ... */
  char detail[200]; /* JSON object text with event specifics */
  int64_t time_ms;  /* wall clock, ms since the epoch */
};

/* Counters the worker keeps and the control loop reads for /metrics.
 * Relaxed atomics: readers want a recent value, not a consistent set. */
struct dcmf_media_stats {
  _Atomic uint64_t sessions;
  _Atomic uint64_t dtls_ok, dtls_failed;
  _Atomic uint64_t sctp_associations;
  _Atomic uint64_t channels_open;
  _Atomic uint64_t messages_in, messages_out, bytes_in, bytes_out;
  _Atomic uint64_t stun_ok, stun_error;
  _Atomic uint64_t dropped_unknown_protocol, dropped_unauthenticated,
      dropped_dtls, dropped_other;
  _Atomic uint64_t consent_lost;
  /* dropped by the per-source limits before any work was spent */
  _Atomic uint64_t stun_rate_limited, dtls_hello_rate_limited;
  /* UDP-proxy mode */
  _Atomic uint64_t udp_datagrams_out, udp_bytes_out, udp_datagrams_in,
      udp_bytes_in, udp_dropped_oversize, udp_dropped_source,
      udp_dropped_queue, udp_dropped_send;
  /* DC relay: messages and bytes handed to the twin, and drops */
  _Atomic uint64_t relay_messages, relay_bytes, relay_dropped_queue,
      relay_dropped_send, relay_dropped_no_twin;
  /* DC relay: held for a phone now (gauges), streams that stopped */
  _Atomic uint64_t relay_queued_messages, relay_queued_bytes, relay_stalls;
  /* HTTP-proxy mode */
  _Atomic uint64_t proxy_requests, proxy_upstream_errors,
      proxy_upstream_timeouts, proxy_cache_hits, proxy_cache_misses,
      proxy_upstream_responses, proxy_upstream_latency_ms, proxy_cache_bytes,
      proxy_cache_revalidated;
};

struct dcmf_worker_settings {
  X509 *cert;     /* borrowed for the worker's life */
  EVP_PKEY *pkey; /* borrowed for the worker's life */
  const struct dcmf_log *log;
  const struct dcmf_repo *repo; /* bootstrap repository, borrowed */
  uint16_t max_streams;
  /* HTTP-proxy mode */
  struct dcmf_upstream_settings upstream;
  size_t cache_size;  /* 0: no cache */
  int proxy_fallback; /* streams without a URL use |repo| */
  /* Per-source limits, per second (ratelimit.h; 0: none): STUN checks
   * and DTLS ClientHellos from anyone but a session's peer. */
  uint32_t stun_rate, hello_rate;
  /* Runs on the control loop for every event the worker raises. */
  void (*on_event)(void *user, const struct dcmf_media_event *ev);
  void *user;
};

struct dcmf_worker;

/*
 * Starts the worker thread; events are delivered on |control_loop|.
 * Returns 0, DCMF_ERR_NOMEM, DCMF_ERR_SYSTEM, or DCMF_ERR_INVALID with
 * |err| naming an unusable upstream certificate file.
 */
int dcmf_worker_start(struct dcmf_worker **worker, uv_loop_t *control_loop,
                      const struct dcmf_worker_settings *settings, char *err,
                      size_t errlen);



/*
 * Asks the worker to stop, waits for its thread, and frees it, closing
 * every session. Must run on the control loop's thread; the control loop
 * must run afterwards once more so the async handle can close. The wait
 * is unbounded: a worker whose loop is stuck never returns from here,
 * which is why dcmfd's shutdown runs under a watchdog (main.c).
 */
void dcmf_worker_stop(struct dcmf_worker *worker);

/* Hands a new media to the worker, which takes ownership of |desc| (the
 * struct is copied; its streams array and fd now belong to the worker). */
void dcmf_worker_add(struct dcmf_worker *worker, struct dcmf_media_desc *desc);

/* Sends changed remote values of an existing media (desc->fd unused). */
void dcmf_worker_update(struct dcmf_worker *worker,
                        struct dcmf_media_desc *desc);

/* Ends a media's session and closes its socket. */
void dcmf_worker_remove(struct dcmf_worker *worker,
                        const struct dcmf_media_key *key);

const struct dcmf_media_stats *dcmf_worker_stats(const struct dcmf_worker *w);

/* Any thread: media events refused because the outbox toward the control
 * loop held its limit (4096) already; they are lost, not delayed. */
uint64_t dcmf_worker_events_refused(struct dcmf_worker *w);

struct dcmf_heartbeat;

/* The worker loop's heartbeat (heartbeat.h), readable from any thread
 * until dcmf_worker_stop(). */
const struct dcmf_heartbeat *dcmf_worker_heartbeat(
    const struct dcmf_worker *w);

#endif
