/*
 * session_int.h - the session object, for the session's own files alone
 * (session.c: packets, timers and life cycle; session_host.c: the
 * services' host and the flows; session_assoc.c: the DTLS association
 * and the update of the media) and the session's in-process test. Other
 * modules see dcmf_session only through session.h; services see it only
 * through service.h.
 */
#ifndef DCMF_SESSION_INT_H
#define DCMF_SESSION_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "assoc.h"
#include "dcstack.h"
#include "ice.h"
#include "media.h"
#include "session.h"
#include "service.h"
#include "tickq.h"
#include "udpread.h"
#include "worker.h"

#define STAT_ADD(s, field, n)                                                  \
  atomic_fetch_add_explicit(&(s)->env.stats->field, (n), memory_order_relaxed)

/* One service attached to a session: the host table the session gives
 * it (first, so a host pointer is a slot pointer) and its media state. */
struct dcmf_svc_slot {
  struct dcmf_svc_host host;
  struct dcmf_session *s;
  const struct dcmf_service *svc;
  void *media;
  int wake_pending; /* host->wake was called: writable from the loop */
  int tick_pending; /* host->want_tick was called: tick on the next visit */
};

struct dcmf_session {
  struct dcmf_session_env env;
  struct dcmf_media_desc desc;
  char name[300]; /* "context/termination/media", for log lines */
  uv_udp_t udp;   /* sends (uv_udp_try_send only) and owns the socket */
  struct dcmf_udpread rd; /* reads the socket (udpread.h) */
  int reading;            /* rd was started: its handle is open */
  uv_timer_t timer;
  int handles_open;
  struct dcmf_ice ice;
  /* The association kind of the media (assoc.h), chosen at start; the
   * session reaches the association only through it. */
  const struct dcmf_assoc_ops *kind;
  struct dcmf_dcstack *stack; /* DTLS and the association; NULL: none */
  void *assoc;                /* the stack's association; NULL: none */
  struct dcmf_tickq_node tick; /* in env.ticks while work waits a tick */
  struct dcmf_tickq_node flush; /* in env.flushes while output waits */
  uv_timer_t flush_timer; /* runs writable of services that asked */
  struct dcmf_svc_slot slots[DCMF_SVC_MAX];
  size_t n_slots;   /* attached so far */
  int assoc_closing;  /* inside session_association_free */
  struct sockaddr_storage dtls_peer; /* where DTLS goes */
  int has_dtls_peer;
  int dtls_reported; /* an outcome event was raised for this association */
  int teardown; /* the association failed: the next update rebuilds it */
  /* A renewal (association_renew) waits for its handshake until this
   * time (loop ms); 0: none runs. Meanwhile the old keys still hold and
   * the peer's ClientHellos are expected (not rate limited). */
  uint64_t renewal_until;
  /* The association was keyed at a renewal (or first): what it keeps of
   * the keys it replaced (the SRTP fallback) ends at this time (loop ms;
   * dcmf_dcstack_drop_previous_keys); 0: nothing to end. */
  uint64_t fallback_until;
  /* What the associations freed so far counted (host->assoc_stats), and
   * the SRTP profile of the last one keyed (static; "" if none). */
  struct dcmf_assoc_stats assoc_past;
  /* Flow messages delivered to the services so far: a raw datagram that
   * adds none was refused by the association
   * (session_services_assoc_changed). */
  uint64_t delivered;
};

/* "context/termination/media", for log lines. */
const char *dcmf_session_key_str(const struct dcmf_session *s, char *buf,
                                 size_t cap);

/* Asks for a visit after the next SCTP tick (env.ticks): something waits
 * that only time moves on (usrsctp's timers, a sender waiting for room,
 * a service's |tick|). Cheap when already asked. */
void dcmf_session_want_tick(struct dcmf_session *s);

/* ---- session.c ---- */

/* Raises |event| (with |detail|, JSON text or NULL) toward the control
 * plane for this session's media. */
void session_emit(struct dcmf_session *s, const char *event,
                  const char *detail);

/* Sends one datagram from the session's socket; one that cannot leave
 * now is lost (UDP). |data| is borrowed for the call. */
void session_udp_send(struct dcmf_session *s, const struct sockaddr *to,
                      const uint8_t *data, size_t len);

/* Arms the session's timer at its earliest deadline (ICE, DTLS, a
 * renewal's or a fallback's end, a teardown now), or stops it. */
void session_arm_timer(struct dcmf_session *s);

/* ---- session_host.c: the services and the flows ---- */

/* Attaches the services of env.services in order, each with its host
 * table. Returns 0 or the first error of a service's attach (those
 * attached so far stay in n_slots, for session_services_detach). */
int session_services_attach(struct dcmf_session *s);
/* Detaches in reverse order; the flows are closed already. */
void session_services_detach(struct dcmf_session *s);
/* The media description changed (a PATCH): each service's |update|. */
void session_services_update(struct dcmf_session *s);
/* Runs |tick| of the services that asked for it (host->want_tick). */
void session_services_tick(struct dcmf_session *s);
/* The association was keyed or refused a datagram: |assoc_changed|. */
void session_services_assoc_changed(struct dcmf_session *s);
/* The association has room again: every service's |writable|. */
void session_services_writable(struct dcmf_session *s);

/* The flow callbacks of the association (dcstack.h), |user| the
 * session; |slot| keeps which service serves the flow. */
int session_flow_open(void *user, const struct dcmf_svc_flow *flow,
                      void **slot);
void session_flow_message(void *user, const struct dcmf_svc_flow *flow,
                          void *slot, int binary, const uint8_t *data,
                          size_t len);
void session_flow_closed(void *user, const struct dcmf_svc_flow *flow,
                         void **slot);
/* For foreach_open after a PATCH: an open negotiated flow nobody serves
 * is offered to the services again. */
void session_reoffer_flow(void *user, const struct dcmf_svc_flow *flow,
                          void **slot);

/* ---- session_assoc.c: the DTLS association ---- */

/* The counters of the current association into |*out| (zero when there
 * is none). Returns 0, or DCMF_ERR_NOT_FOUND if the kind keeps none. */
int session_assoc_stats_now(const struct dcmf_session *s,
                            struct dcmf_assoc_stats *out);
/* Builds fresh DTLS and a fresh association of the media's kind (the
 * old one freed first). Returns 0, DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM. */
int session_association_new(struct dcmf_session *s);
/* Frees DTLS and the association, its flows reported closed to their
 * services; its counters are kept in assoc_past. No-op without one. */
void session_association_free(struct dcmf_session *s);
/* As DTLS client, starts the handshake once the peer is known. */
void session_maybe_start_client(struct dcmf_session *s);
/* Counts and reports (DTLS_FAILURE) the association's failure, once per
 * association. */
void session_dtls_failed(struct dcmf_session *s, const char *reason);

/* The identity the media's description asks for (dtls_rsa: T.38 over
 * DTLS, RFC 7345); NULL when this worker has none. */
static inline struct dcmf_dtls_ctx *
session_dtls_ctx(const struct dcmf_session *s) {
  return s->desc.dtls_rsa ? s->env.dtls_rsa_ctx : s->env.dtls_ctx;
}

#endif
