/*
 * controller.h - the controller between the control API and the media
 * workers (layer "control").
 *
 * It owns the context registry and all control<->worker traffic: when
 * the registry adds, changes or removes a DC media, the controller
 * translates the stored MediaInfo (JSON) into the worker message of
 * media.h, attaches descriptors of the media's bound sockets, and posts
 * it to the worker that owns the media's context; events coming back
 * from a worker are recorded on their context and sent to its
 * eventNotifyUri. It does no I/O of its own: ports, descriptors, the
 * workers and the notification client are reached through the hooks in
 * its settings, so it runs in unit tests with a fake worker sink. One
 * owner thread (the control loop) uses it.
 *
 * Contexts map to workers by dcmf_controller_worker_for: a hash of the
 * context id over the number of workers. Every media of a context lands
 * on the same worker, so media joined to each other, such as the twins
 * of a DC relay (which must be in one context), share one worker thread
 * and reach each other without locks.
 */
#ifndef DCMF_CONTROLLER_H
#define DCMF_CONTROLLER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "context.h"
#include "log.h"
#include "media.h"

struct dcmf_controller_settings {
  /* For the registry; its strings are copied by dcmf_controller_new. */
  struct dcmf_registry_settings registry;
  /* Ports and random bytes for the registry (its media_changed member is
   * ignored: the controller takes those calls itself). */
  struct dcmf_resources res;
  size_t n_workers;           /* at least 1 */
  size_t events_kept;         /* events kept on a context for GET */
  const struct dcmf_log *log; /* borrowed for the controller's life */
  /* Returns a new descriptor (the caller's to close) of the bound socket
   * of media port |port|, or -1 with errno set. */
  int (*port_dup)(void *user, uint16_t port);
  /* Hands worker |worker| (< n_workers) the message |op| about |desc|.
   * Takes ownership of what |desc| owns (fds, arrays); |desc| itself is
   * the caller's and may be copied. */
  void (*post)(void *user, size_t worker, enum dcmf_media_op op,
               struct dcmf_media_desc *desc);
  /* Sends the event notification |json| (text) to |uri|; may be NULL. */
  void (*notify)(void *user, const char *uri, const char *json);
  void *user;
};

struct dcmf_controller;

/*
 * Creates a controller and its empty registry. |settings| is copied.
 * Returns 0, DCMF_ERR_INVALID (n_workers is 0) or DCMF_ERR_NOMEM.
 */
int dcmf_controller_new(struct dcmf_controller **ctl,
                        const struct dcmf_controller_settings *settings);

/* Releases every context (each media's worker is told to remove it) and
 * frees the registry and the controller. NULL is allowed. */
void dcmf_controller_del(struct dcmf_controller *ctl);

/* The registry the API serves; owned by the controller, valid until
 * dcmf_controller_del. */
struct dcmf_registry *dcmf_controller_registry(struct dcmf_controller *ctl);

/*
 * An event from a media worker, on the control loop: recorded on its
 * context (the latest events_kept are kept) and posted to the context's
 * eventNotifyUri. Events of contexts released meanwhile are dropped.
 * |ctl| is a struct dcmf_controller *, so this is the worker's on_event.
 */
void dcmf_controller_on_event(void *ctl, const struct dcmf_media_event *ev);

/*
 * Worker |worker| ended without being asked: every context it served
 * (by dcmf_controller_worker_for) lost its sessions. Each such context
 * gets a MEDIA_FAILURE event per DC media (detail.reason: |reason|),
 * notified to its eventNotifyUri like any event, and is released, its
 * ports freed; a GET then answers 404. Returns the number released.
 */
size_t dcmf_controller_worker_failed(struct dcmf_controller *ctl,
                                     size_t worker, const char *reason);

/*
 * Returns the worker (0 .. n_workers - 1) that owns the media of context
 * |context_id|: a hash of the id, so it spreads random UUIDs evenly and
 * gives every media of one context (relay twins included) the same
 * worker.
 */
size_t dcmf_controller_worker_for(const char *context_id, size_t n_workers);

/*
 * Fills |desc| for the MediaInfo |media| of context |ctx| whose MF-side
 * state is |m|: the JSON to worker-message translation. Leaves every fd
 * at -1 (the caller attaches sockets). On failure |desc| owns nothing.
 * Returns 0 or DCMF_ERR_NOMEM.
 */
int dcmf_controller_desc_build(struct dcmf_media_desc *desc,
                               const struct dcmf_context *ctx,
                               const struct dcmf_media *m, json_t *media,
                               uint16_t local_sctp_port);

#endif
