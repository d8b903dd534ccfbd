/*
 * session.h - the media plane of one DC media inside a worker: its UDP
 * socket, first-byte demultiplexing (RFC 7983), the ICE-lite responder,
 * and DTLS with the association it carries, of the kind the media asks
 * for (assoc.h; SCTP with its data channels today), wired once in
 * dcstack.h. The session calls the association only through its kind's
 * table (struct dcmf_assoc_ops). The paths on top (bootstrap
 * repository, proxy modes, DC relay) are services (service.h) that the
 * session dispatches flows to. Glue: it owns the socket and the timers
 * and feeds the engines; it is visited after an SCTP tick only while it
 * has work pending (|ticks| of the env).
 */
#ifndef DCMF_SESSION_H
#define DCMF_SESSION_H

#include <uv.h>

#include "assoc.h"
#include "dtls.h"
#include "log.h"
#include "media.h"
#include "udpread.h"

struct dcmf_ratelimit;
struct dcmf_media_stats;
struct dcmf_tickq;

/* A service with its per-worker state (service.h). */
struct dcmf_session_service {
  const struct dcmf_service *svc;
  void *worker; /* what svc->init made; borrowed */
};

/* What every session of a worker shares. */
struct dcmf_session_env {
  uv_loop_t *loop;
  struct dcmf_dtls_ctx *dtls_ctx;
  /* The RSA identity (T.38 over DTLS, RFC 7345), for media whose
   * description asks for it (|dtls_rsa|, media.h); NULL: none, and such
   * a media does not start (DCMF_ERR_INVALID). */
  struct dcmf_dtls_ctx *dtls_rsa_ctx;
  const struct dcmf_log *log;
  struct dcmf_media_stats *stats;
  /* SCTP streams per association, ceiling and floor (assoc.h) */
  uint16_t max_streams, min_streams;
  /* The crypto of DTLS-SRTP associations' engines (srtp.h); 0 is
   * DCMF_SRTP_BACKEND_OPENSSL */
  enum dcmf_srtp_backend srtp_backend;
  /* Scratch memory of the worker thread, shared by its sessions because
   * one thread handles one datagram at a time: the UDP receive buffer. */
  uint8_t *rx_scratch;
  size_t rx_scratch_len;
  /* Datagrams read from the sockets of this thread (udpread.h, |tally|);
   * NULL: not counted. */
  struct dcmf_udpread_tally *rx_datagrams;
  /* The services, in match order (at most DCMF_SVC_MAX); borrowed. */
  const struct dcmf_session_service *services;
  size_t n_services;
  /* Raises an event toward the controller; |detail| is JSON text. */
  void (*emit)(void *user, const struct dcmf_media_key *key,
               const char *event, const char *detail);
  void *emit_user;
  /* The clock services read (host->now), in ms; NULL: the loop's time.
   * Tests set a fake one. */
  uint64_t (*now)(void *user);
  void *now_user;
  /* The worker's per-source limits (ratelimit.h) for STUN checks and
   * DTLS ClientHellos from anyone but the peer; NULL: no limit. */
  struct dcmf_ratelimit *stun_limit;
  struct dcmf_ratelimit *hello_limit;
  /* The sessions with work for the next SCTP tick (tickq.h): a session
   * joins when its stack needs dcmf_sctp_handle_tick or one of its
   * services asked for |tick| (host->want_tick: a relay queue, UDP-proxy
   * counters), and the worker runs the queue after each
   * dcmf_sctp_stack_tick. Idle sessions are never in it. NULL: no
   * session is ever visited. */
  struct dcmf_tickq *ticks;
  /* The sessions whose stack held output back this loop turn (dcstack.h):
   * a session joins when its association first holds a message
   * (|bundle_messages|) or DTLS first gathers a record
   * (|coalesce_records|), and the worker runs the queue at the end of
   * every loop turn, so what one turn produced leaves in as few packets
   * and datagrams as fit the MTU. NULL: neither, everything is sent at
   * once. */
  struct dcmf_tickq *flushes;
  /* With |flushes|: bundle a turn's messages into SCTP packets (several
   * DATA chunks per packet), and coalesce a turn's DTLS records into
   * datagrams. */
  int bundle_messages;
  int coalesce_records;
  /* The association kinds, indexed by enum dcmf_assoc_kind
   * (DCMF_ASSOC_KINDS entries, NULL where none); borrowed. NULL: the
   * built-in registry (dcmf_assoc_kind_ops). Tests put their own kinds
   * here. */
  const struct dcmf_assoc_ops *const *assoc_kinds;
  /* Consent lifetime (RFC 7675, ice.h) in ms; 0: 30 s. Tests set a
   * short one. */
  uint64_t consent_timeout_ms;
  /* How long a tls-id renewal may take before the old keys end, in ms;
   * 0: DCMF_SESSION_RENEWAL_MS. Tests set a short one. */
  uint64_t renewal_timeout_ms;
  /* How long the peer's previous SRTP keys are still tried after a
   * renewal re-keyed (srtp.h, the fallback), in ms; 0:
   * DCMF_SRTP_FALLBACK_MS. Tests set a short one. */
  uint64_t fallback_ms;
};

/*
 * The time a new DTLS association asked for by an update (a new tls-id
 * or fingerprint on a kind that re-keys) has to connect, from the
 * update: the old keys are trusted meanwhile, never longer. When it
 * runs out the old keys end, DTLS_FAILURE is raised and the association
 * is torn down (as for a handshake that fails). 30 s: the consent
 * lifetime (RFC 7675), and room for the answer to reach the peer and a
 * few handshake retransmissions (1, 2, 4, 8 s).
 */
#define DCMF_SESSION_RENEWAL_MS 30000

struct dcmf_session;

/*
 * Starts a session from |desc|, taking ownership of its fd and streams
 * (|desc| itself is copied), and attaches every service of |env|.
 * Returns 0, or with the fd closed: DCMF_ERR_NOMEM, DCMF_ERR_INVALID (an
 * association kind with no implementation in the registry) or
 * DCMF_ERR_SYSTEM.
 */
int dcmf_session_new(struct dcmf_session **session,
                     const struct dcmf_session_env *env,
                     struct dcmf_media_desc *desc);

/* Applies changed remote values (fingerprint, address, tls-id, streams);
 * takes ownership of |desc|'s streams. A new remote tls-id or fingerprint
 * starts a new DTLS association in the role of |desc|: for SRTP on the
 * same association of the kind (dcmf_dcstack_renew: SSRCs keep their
 * ROCs, media goes on with the old keys until the new handshake ends),
 * for SCTP with a new one. Every service's |update| runs; an open
 * negotiated flow that no service serves is offered again. */
void dcmf_session_update(struct dcmf_session *session,
                         struct dcmf_media_desc *desc);

/* Closes the association (services see their flows closed), detaches
 * the services, closes the socket and frees the session once libuv has
 * let go. */
void dcmf_session_close(struct dcmf_session *session);

const struct dcmf_media_key *dcmf_session_key(const struct dcmf_session *s);

#endif
