/*
 * wpool.h - the media worker processes, seen from the control process
 * (layer "control").
 *
 * usrsctp keeps one stack per process, so each media worker is a process
 * of its own: dcmfd started again from its own executable
 * (/proc/self/exe) with DCMF_WCHILD_ARG before its arguments and one end
 * of a socket pair as descriptor 3 (wchild.h is the other side). The
 * control process keeps the media ports bound and passes each worker
 * its own descriptor of them with the controller's messages (wire.h over
 * wlink.h), so a port number the API has answered with is never taken by
 * anyone else, whatever a worker does.
 *
 * A worker that ends without being asked (a crash, a kill, a link that
 * fails) is reported once: a log line, dcmf_wpool_failures, and the
 * owner's |on_failed| on the control loop, which releases the contexts
 * it served with events. It is started again at once; one that keeps
 * failing within RESTART_WINDOW of its start waits longer each time (up
 * to 10 s). Messages for a worker that is being started again wait in
 * its new link, behind the hello.
 *
 * Glue: it owns the processes, the links and a timer on the control
 * loop; one thread (the control loop's) uses it.
 */
#ifndef DCMF_WPOOL_H
#define DCMF_WPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cert.h"
#include "counters.h"
#include "heartbeat.h"
#include "log.h"
#include "media.h"

struct dcmf_wpool_settings {
  uv_loop_t *loop; /* the control loop */
  size_t n_workers;
  /* The daemon's own arguments (argv[1..]), which each worker parses
   * again: argv[0] is not included. Borrowed for the pool's life. */
  char *const *args;
  size_t n_args;
  const struct dcmf_cert *cert; /* the identity every worker presents */
  /* The RSA identity of T.38 media (borrowed during start), or NULL:
   * none yet, dcmf_wpool_set_rsa may give it later. */
  const struct dcmf_cert *rsa_cert;
  const struct dcmf_log *log;
  /* An event a worker raised (media.h). */
  void (*on_event)(void *user, const struct dcmf_media_event *ev);
  /* A worker's report of an AGW relay (media.h). */
  void (*on_relay_event)(void *user, const struct dcmf_relay_event *ev);
  /* Worker |worker| ended without being asked and is being started
   * again; its sessions are gone. |reason| says how it ended. */
  void (*on_failed)(void *user, size_t worker, const char *reason);
  /* Every worker process has ended after dcmf_wpool_stop. */
  void (*on_stopped)(void *user);
  void *user;
};

struct dcmf_wpool;

/*
 * Starts every worker and runs the control loop until each has answered
 * its hello (at most 30 s). Returns 0; DCMF_ERR_INVALID with |err| set
 * when a worker refused the configuration (the daemon then exits with
 * status 2, as before a worker existed); DCMF_ERR_SYSTEM with |err| set
 * when a worker could not be started or did not answer; DCMF_ERR_NOMEM.
 * On failure nothing is left running once the loop has run again.
 */
int dcmf_wpool_start(struct dcmf_wpool **pool,
                     const struct dcmf_wpool_settings *settings, char *err,
                     size_t errlen);

/*
 * Gives every worker the RSA identity of T.38 media that the pool was
 * started without (it was being generated meanwhile; copied, |rsa| is
 * not kept): a frame on each link, behind what is queued there, so a
 * T.38 ADD posted after this call reaches its worker after the
 * identity; a worker started later has it in its hello. Returns 0 or
 * DCMF_ERR_NOMEM (no worker was given it).
 */
int dcmf_wpool_set_rsa(struct dcmf_wpool *pool, const struct dcmf_cert *rsa);

/*
 * Hands worker |worker| the controller's message (media.h); takes
 * ownership of what |desc| owns, as dcmf_worker_post does. Never lost
 * while the worker lives: it waits in the link. A message for a worker
 * that has ended is dropped (its descriptors closed): the contexts it
 * served are being released. Returns 0 (handed to the link),
 * DCMF_ERR_SYSTEM (the worker's link is down: nothing was sent) or
 * DCMF_ERR_NOMEM; either error means the worker will never see it, so a
 * caller waiting for an answer (the AGW shim's RELEASED) must not wait.
 */
int dcmf_wpool_post(struct dcmf_wpool *pool, size_t worker,
                    enum dcmf_media_op op, struct dcmf_media_desc *desc);

/* The same for the AGW shim's relay messages (media.h): takes the
 * descriptors of |desc|. */
void dcmf_wpool_post_relay(struct dcmf_wpool *pool, size_t worker,
                           enum dcmf_relay_op op, struct dcmf_relay_desc *desc);

/* Adds every worker's last published counters to |sum|. */
void dcmf_wpool_figures(const struct dcmf_wpool *pool,
                        struct dcmf_media_figures *sum);

/* The last beat worker |worker| published (only last_ms is meaningful:
 * the beats come from its status frames); valid for the pool's life. */
const struct dcmf_heartbeat *dcmf_wpool_heartbeat(const struct dcmf_wpool *pool,
                                                  size_t worker);

/* Events lost on the way: refused by a worker's outbox or its link, or
 * by the control process's link reader. */
uint64_t dcmf_wpool_events_refused(const struct dcmf_wpool *pool);

/* Workers that ended without being asked, since the start. */
uint64_t dcmf_wpool_failures(const struct dcmf_wpool *pool);

/*
 * Stops the workers: sends what is queued (within |timeout_ms|), then
 * closes each link, on which a worker ends its sessions and exits.
 * |on_stopped| runs on the loop once all have exited; the pool is freed
 * after that, once its handles have closed. A worker that does not exit
 * is waited for without a bound (the daemon's shutdown watchdog bounds
 * it).
 */
void dcmf_wpool_stop(struct dcmf_wpool *pool, int timeout_ms);

#endif
