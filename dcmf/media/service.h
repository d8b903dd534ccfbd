/*
 * service.h - how a media path plugs into a session (layer: media).
 *
 * A session (session.h) is a transport: the UDP socket, ICE-lite, DTLS
 * and the association that DTLS carries. What flows on that association
 * is served by services: the bootstrap repository, HTTP-proxy mode,
 * UDP-proxy mode, the DC relay, and whatever comes next. A service is a
 * table of hooks (struct dcmf_service); the session gives it a host
 * table (struct dcmf_svc_host) to send, close, count, raise events and
 * read the clock. The worker creates each service's per-worker state
 * once (init/free) from the list the daemon passes in
 * (struct dcmf_svc_reg), so adding a path is a new service in that list
 * and no edit to session.c or worker.c.
 *
 * Flows. The association kind (enum dcmf_assoc_kind) decides what a
 * flow is: a data channel (its SCTP stream id) for DCMF_ASSOC_SCTP; later
 * an SSRC for SRTP or the one stream of raw DTLS application data
 * (UDPTL). Services see flows through struct dcmf_svc_flow (defined with
 * the association interface, assoc.h) and never the association's
 * engines, so a new kind needs no edit to the services that do not use
 * it.
 *
 * Dispatch. When a flow opens, the session offers it to each registered
 * service in list order: the first whose |match| returns 1 and whose
 * |open| returns 0 serves it until it closes (an |open| that fails lets
 * the next matching service try). A flow nobody serves stays open if it
 * was negotiated in SDP (its peer may be served later) and is refused
 * otherwise; after every |update| the open negotiated flows nobody
 * serves are offered again. |message| and |closed| go only to the
 * serving service; |writable| and |assoc_changed| go to every service
 * of the media, and |tick| only to each service that asked for it
 * (host->want_tick). A
 * service that knows only data channels matches only flows of kind
 * DCMF_ASSOC_SCTP, whose ids fit 16 bits.
 *
 * Threading and ownership. Everything here runs on the one worker thread
 * that owns the session; no hook may block. Per-worker state lives from
 * |init| to |free| and outlives every session of the worker. Per-media
 * state lives from |attach| to |detach|; per-flow state from |open| to
 * |closed|. The host and everything it points to (|desc| included) are
 * owned by the session and valid from |attach| until |detach| returns;
 * |desc| changes only just before |update|. Data passed to a hook is
 * borrowed for the call. A hook may call host functions, including
 * |close| of a flow (whose |closed| then runs before |close| returns),
 * except that |open| must not close the flow it is opening (it refuses
 * it by failing instead), and must not free the media state from inside
 * them: that happens only in |detach|.
 */
#ifndef DCMF_SERVICE_H
#define DCMF_SERVICE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "assoc.h" /* struct dcmf_svc_flow, enum dcmf_svc_flow_state */
#include "log.h"
#include "media.h"
#include "udpread.h"

struct dcmf_media_stats; /* worker.h: the worker's counters */

/* Adds |n| to counter |field| of a struct dcmf_media_stats (worker.h). */
#define DCMF_SVC_STAT_ADD(stats, field, n)                                     \
  atomic_fetch_add_explicit(&(stats)->field, (n), memory_order_relaxed)

/* What the session gives each of its services. Function fields are set
 * by the session; the service calls them with the host pointer. */
struct dcmf_svc_host {
  /* The media's description; changes only just before |update|. The
   * service may take what it adopts out of it (UDP-proxy mode takes the
   * MDC2 descriptors, leaving -1). */
  struct dcmf_media_desc *desc;
  const struct dcmf_log *log;
  uv_loop_t *loop;  /* the worker's loop, for services that own sockets */
  const char *name; /* "context/termination/media", for log lines */
  /*
   * Sends a message on flow |id| (|binary|: PPID 53 rather than 51 on a
   * data channel) and counts it in messages_out/bytes_out. Returns 0;
   * DCMF_ERR_EXHAUSTED when the association has no room now (keep the
   * message: |writable| runs once it has); DCMF_ERR_NOT_FOUND when the
   * flow is not open or there is no association; DCMF_ERR_INVALID,
   * DCMF_ERR_SYSTEM or DCMF_ERR_NOMEM when this message cannot be sent
   * (it never will be).
   */
  int (*send)(struct dcmf_svc_host *h, uint32_t id, int binary,
              const uint8_t *data, size_t len);
  /* Closes flow |id| from our side; the serving service's |closed| runs
   * before this returns. No effect on a flow that is not there. */
  void (*close)(struct dcmf_svc_host *h, uint32_t id);
  enum dcmf_svc_flow_state (*flow_state)(struct dcmf_svc_host *h,
                                         uint32_t id);
  /* Raises |event| toward the control plane; |detail| is JSON object
   * text (NULL: "{}"), copied. */
  void (*emit)(struct dcmf_svc_host *h, const char *event,
               const char *detail);
  /* The worker's counters (worker.h), for DCMF_SVC_STAT_ADD. */
  struct dcmf_media_stats *(*counters)(struct dcmf_svc_host *h);
  /* Monotonic milliseconds (the loop's time, or a test's fake clock). */
  uint64_t (*now)(struct dcmf_svc_host *h);
  /* Asks for |writable| of this service from the loop soon, not from
   * inside the current call (e.g. an upstream handed an engine data). */
  void (*wake)(struct dcmf_svc_host *h);
  /* Asks for |tick| of this service once, after the next SCTP tick (the
   * worker ticks every 10 ms). Work that only time moves on (a queue
   * waiting for room, counters to publish) asks here, and asks again
   * from |tick| while it remains; a media nobody asked for costs the
   * worker nothing per tick. Cheap when already asked. */
  void (*want_tick)(struct dcmf_svc_host *h);
  /* The association's own counters (assoc.h struct dcmf_assoc_stats)
   * into |*out|, summed over every association the media had (a new
   * tls-id makes a new one): |keyed| and |srtp_profile| are the current
   * association's, or, with none keyed now, |keyed| 0 and the profile of
   * the last one keyed ("" if none was). Returns 0, or
   * DCMF_ERR_NOT_FOUND (|*out| zeroed, profile "") when the media's kind
   * counts nothing for its owner (SCTP). */
  int (*assoc_stats)(struct dcmf_svc_host *h, struct dcmf_assoc_stats *out);
};

/* What the worker gives a service's per-worker |init|. */
struct dcmf_svc_worker_env {
  uv_loop_t *loop; /* the worker's loop; nothing runs it yet during init */
  const struct dcmf_log *log;
  struct dcmf_media_stats *stats;
  /* Worker-wide scratch for one outgoing message: one thread sends one
   * message at a time, so its sessions share it. */
  uint8_t *tx_scratch;
  size_t tx_scratch_len;
  /* Datagrams read from the worker's sockets: a service's readers
   * (udpread.h, |tally|) add to it, the loop pacing reads it (pace.h);
   * NULL: not counted. */
  struct dcmf_udpread_tally *rx_datagrams;
};

struct dcmf_service {
  const char *name; /* for logs */

  /* ---- per worker (all optional) ---- */
  /* Creates the state every media of the worker shares from |config|
   * (the registration's, borrowed for the worker's life). Returns 0,
   * DCMF_ERR_NOMEM, DCMF_ERR_SYSTEM, or DCMF_ERR_INVALID with |err|
   * naming the unusable setting; the worker does not start then. */
  int (*init)(void **worker, const struct dcmf_svc_worker_env *env,
              const void *config, char *err, size_t errlen);
  /* Runs on the worker thread after every session is gone, while the
   * loop still runs (handles may close). */
  void (*free)(void *worker);
  /* Every SCTP tick (10 ms): publish plain counters into the stats. */
  void (*worker_tick)(void *worker);

  /* ---- per media ---- */
  /* Attaches to a new session (required). Returns 0, or DCMF_ERR_NOMEM
   * (the session does not start). */
  int (*attach)(void **media, void *worker, struct dcmf_svc_host *host);
  /* host->desc was replaced (a PATCH); optional. */
  void (*update)(void *media);
  /* The session ends (its flows are closed already); frees |media|. */
  void (*detach)(void *media);
  /* The association's counters or state (host->assoc_stats) may have
   * changed with no flow message to show it: it was keyed (again), or
   * it took in a raw datagram (SRTP) and delivered nothing (refused:
   * authentication, replay, malformed, or a refused flow). A service
   * that reports those counters learns of them here instead of polling;
   * runs on every datagram refused, so it must be cheap. Optional. */
  void (*assoc_changed)(void *media);
  /* After the SCTP tick that follows a host->want_tick of this media
   * (once per asking; ask again from here to be ticked again); optional.
   * Never called for a media that did not ask. */
  void (*tick)(void *media);

  /* ---- per flow ---- */
  /* Returns 1 if this service takes |flow| of this media, else 0. */
  int (*match)(void *media, const struct dcmf_svc_flow *flow);
  /* |flow| opened and was matched. Returns 0 with |*chan| set (may be
   * NULL), or a negative error: the next matching service is asked. */
  int (*open)(void *media, const struct dcmf_svc_flow *flow, void **chan);
  /* A message on a flow this service opened. */
  void (*message)(void *media, void *chan, const struct dcmf_svc_flow *flow,
                  int binary, const uint8_t *data, size_t len);
  /* The association has room again, or host->wake was called. */
  void (*writable)(void *media);
  /* A flow this service opened is closed (either side, or the
   * association ended); frees |chan|. */
  void (*closed)(void *media, void *chan, const struct dcmf_svc_flow *flow);
};

/* One entry of the list the daemon passes to the worker, in match
 * order. */
struct dcmf_svc_reg {
  const struct dcmf_service *svc;
  const void *config; /* for svc->init; borrowed */
};

/* At most this many services per worker. */
#define DCMF_SVC_MAX 8

#endif
