/*
 * worker.h - a media worker: one thread running one libuv loop that owns
 * the media sockets and sessions of the DC media assigned to it, the
 * AGW shim's UDP relays assigned to it (relayhost.h), and the process's
 * usrsctp stack.
 *
 * The control loop talks to it only by message (media.h): the
 * controller's media operations (dcmf_worker_post: add, update, remove)
 * and the AGW shim's relay operations (dcmf_worker_post_relay) go in
 * through one queue (queue.h); media events and relay reports come back
 * the same way to the control loop. The queues are the only shared
 * state, so the worker can later become a process with the same
 * messages.
 */
#ifndef DCMF_WORKER_H
#define DCMF_WORKER_H

#include <stdatomic.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "counters.h"
#include "log.h"
#include "media.h"
#include "service.h"
#include "srtp.h"

/* The worker's counters are the worker rows of counters.h's table
 * (struct dcmf_media_stats). */

struct dcmf_worker_settings {
  X509 *cert;     /* borrowed for the worker's life */
  EVP_PKEY *pkey; /* borrowed for the worker's life */
  /* The RSA identity of T.38 media (media.h |dtls_rsa|), borrowed for
   * the worker's life; NULL: none yet (such media do not start until
   * dcmf_worker_set_rsa_identity gives it). */
  X509 *rsa_cert;
  EVP_PKEY *rsa_pkey;
  const struct dcmf_log *log;
  /* SCTP streams per association, ceiling and floor (assoc.h) */
  uint16_t max_streams, min_streams;
  /* The crypto of the sessions' SRTP engines (srtp.h) */
  enum dcmf_srtp_backend srtp_backend;
  /* The services of every session, in match order (service.h); the
   * array and each config are borrowed for the worker's life. At most
   * DCMF_SVC_MAX. */
  const struct dcmf_svc_reg *services;
  size_t n_services;
  /* Per-source limits, per second (ratelimit.h; 0: none): STUN checks
   * and DTLS ClientHellos from anyone but a session's peer. */
  uint32_t stun_rate, hello_rate;
  /* Freed memory goes back to the system once no session was released
   * for this long (memtrim.h), or at the latest 10 times this after the
   * first release not yet trimmed, at most once per 10 times this; 0:
   * never. */
  uint32_t trim_ms;
  /* The sessions coalesce their DTLS records per loop turn (the env's
   * |flushes|, session.h); 0: each record is a datagram of its own. */
  int dtls_coalesce;
  /* The sessions bundle their messages of a loop turn into SCTP packets
   * (the env's |flushes|); 0: each small message is a packet of its
   * own. */
  int sctp_bundle;
  /* Loop pacing (pace.h): once the loop is busy, a turn that handled
   * I/O pauses until this many microseconds have passed since the
   * previous pause, so that one poll returns many ready sockets; 0: off.
   * Adds at most this much latency per crossing of the worker. */
  uint32_t pace_us;
  /* The thread's name for operators (top -H, /proc/PID/task/TID/comm),
   * at most 15 characters; NULL: "dcmf-media". */
  const char *thread_name;
  /* Events the outbox holds for the control loop before it refuses
   * those that may be lost (counted, dcmf_worker_events_refused);
   * 0: 4096. Tests set a small one. */
  size_t outbox_limit;
  /* Runs on the control loop for every event the worker raises. */
  void (*on_event)(void *user, const struct dcmf_media_event *ev);
  void *user;
  /* Runs on the control loop for every report of a relay (media.h);
   * NULL drops them. */
  void (*on_relay_event)(void *relay_user, const struct dcmf_relay_event *ev);
  void *relay_user;
};

struct dcmf_worker;

/*
 * Starts the worker thread; events are delivered on |control_loop|.
 * Creates each service's per-worker state first. Returns 0,
 * DCMF_ERR_NOMEM, DCMF_ERR_SYSTEM, DCMF_ERR_INVALID with |err| naming
 * what a service's init refused (an unusable upstream certificate file)
 * or too many services, or another error of a service's init.
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

/*
 * Hands the worker the controller's message |op| about |desc| (media.h).
 * The worker takes ownership of what |desc| owns (its arrays and fds);
 * the struct itself is copied. ADD starts a session on desc->fd, UPDATE
 * applies changed remote values, REMOVE (only desc->key is read) ends
 * the media's session and closes its socket; a REMOVE whose desc->rtpleg
 * is set (an e2ae media) is answered with the event RELEASED once the
 * session is closed, or at once when there was none. Cannot fail: a message is
 * never lost (out of memory aborts, as a lost message would leave a
 * port bound forever).
 */
void dcmf_worker_post(struct dcmf_worker *worker, enum dcmf_media_op op,
                      struct dcmf_media_desc *desc);

/*
 * Hands the worker the AGW shim's message |op| about the relay |desc|
 * (media.h). The worker takes the descriptors of an ADD (it closes them
 * when the relay ends, or at once if it cannot start it, and reports
 * RELEASED either way); the struct is copied. UPDATE and REMOVE about an
 * id the worker does not hold are ignored. Cannot fail, like
 * dcmf_worker_post.
 */
void dcmf_worker_post_relay(struct dcmf_worker *worker, enum dcmf_relay_op op,
                            struct dcmf_relay_desc *desc);

/*
 * Hands the worker the RSA identity of T.38 media that it was started
 * without (it was still being generated): |cert| and |pkey| are
 * borrowed for the worker's life. Goes through the inbox like the
 * media messages, so an ADD posted after this call finds it. A worker
 * that has an RSA identity keeps it (the call is then ignored). Cannot
 * fail, like dcmf_worker_post; should the worker's DTLS context refuse
 * the identity, it says so in the log and such media do not start.
 */
void dcmf_worker_set_rsa_identity(struct dcmf_worker *worker, X509 *cert,
                                  EVP_PKEY *pkey);

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
