/*
 * relayhost.h - the AGW shim's UDP relays as a media worker runs them
 * (layer "media"): the relays of one worker loop, the glue between their
 * sockets and the relay engine (relay.h), and the reports back.
 *
 * The worker hands over the shim's messages (media.h: add, update,
 * remove) and gets plain dcmf_relay_event structs to send back to the
 * control side through |emit|. Per datagram: libuv receives into the
 * worker's receive buffer, the engine decides (and counts), and a
 * forward is sent with uv_udp_try_send from that same buffer; nothing is
 * copied or allocated. A relay that counted something is marked dirty
 * (a flag test per datagram); a timer pushes the counters of the dirty
 * relays every DCMF_RELAY_PUSH_MS and stops when none is.
 *
 * One owner thread (the worker's); no locks, no globals.
 */
#ifndef DCMF_RELAYHOST_H
#define DCMF_RELAYHOST_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hashmap.h"
#include "log.h"
#include "media.h"

struct dcmf_relayhost_settings {
  uv_loop_t *loop;            /* the worker's; borrowed */
  const struct dcmf_log *log; /* borrowed, may be NULL */
  /* The receive buffer (at least 65536 bytes, so no datagram is ever
   * truncated), borrowed; used only inside a receive callback, so the
   * worker's sessions may share it. */
  uint8_t *rx;
  size_t rx_len;
  /*
   * Sends |ev| to the control side. |must| 1 (RELEASED, latch changes):
   * it must arrive, so it may not be refused. |must| 0 (counters): the
   * callee may refuse it by returning nonzero; the relay then stays dirty
   * and is pushed again at the next period.
   */
  int (*emit)(void *user, const struct dcmf_relay_event *ev, int must);
  void *user;
};

struct dcmf_relayhost_relay;

/* Embed it; every field is private. */
struct dcmf_relayhost {
  struct dcmf_relayhost_settings settings;
  struct dcmf_hashmap by_id;              /* relays not closing, by id */
  struct dcmf_relayhost_relay *live_list; /* the same relays, for close */
  size_t live;
  struct dcmf_relayhost_relay *dirty; /* counted since the last push */
  uv_timer_t push_timer;
};

/* Makes |h| empty; creates its timer on settings->loop (on that loop's
 * thread, or before it runs). Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_relayhost_init(struct dcmf_relayhost *h,
                        const struct dcmf_relayhost_settings *settings);

/*
 * Applies the shim's message |op| about |desc| (media.h).
 * - ADD takes the descriptors (desc->fds are -1 afterwards); the relay
 *   closes them when it ends. A socket libuv refuses (or a -1) is logged
 *   and the relay is filed anyway, relaying nothing, so its REMOVE
 *   releases its ports as usual. Out of memory: the descriptors are
 *   closed at once and RELEASED is emitted. An ADD of an id already held
 *   is a sender's bug: its descriptors are closed, nothing is emitted.
 * - UPDATE gives the relay a new configuration (see
 *   dcmf_relay_set_config); a latch it clears is reported at once.
 * - REMOVE closes the relay's sockets; RELEASED, with the final
 *   counters, is emitted once libuv has closed them.
 * UPDATE and REMOVE of ids not held are ignored.
 */
void dcmf_relayhost_handle(struct dcmf_relayhost *h, enum dcmf_relay_op op,
                           struct dcmf_relay_desc *desc);

/* Relays not yet removed. */
size_t dcmf_relayhost_count(const struct dcmf_relayhost *h);

/*
 * Closes every relay (each emits RELEASED once its sockets are closed)
 * and the timer; the loop must run on until they are closed, after which
 * |h| holds nothing. No message may follow.
 */
void dcmf_relayhost_close(struct dcmf_relayhost *h);

#endif
