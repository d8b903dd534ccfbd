/*
 * shimloop.h - the AGW shim's relay thread: one thread running one
 * libuv loop that owns the relay sockets (two UDP sockets per relay,
 * access-facing and core-facing) and feeds every datagram to its relay
 * engine (relay.h), sending what the engine forwards with
 * uv_udp_try_send from the same buffer it was received into.
 *
 * The control thread talks to it only by message (a queue plus
 * uv_async): add, update, remove, stop. The relay thread answers on the
 * control loop, the same way, when a removed relay's sockets are closed,
 * so its ports go back to the pool only once nothing holds them.
 * Counters are published as relaxed atomics (a recent value, not a
 * consistent set) and the latched address behind a per-relay mutex that
 * the relay thread takes only when the latch changes.
 */
#ifndef DCMF_SHIMLOOP_H
#define DCMF_SHIMLOOP_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "log.h"
#include "relay.h"

/* Totals over every relay the loop ever ran (for /metrics). */
struct dcmf_shimloop_stats {
  _Atomic uint64_t packets[DCMF_RELAY_SIDES]; /* by arrival side */
  _Atomic uint64_t bytes[DCMF_RELAY_SIDES];
  _Atomic uint64_t dropped[DCMF_RELAY_SIDES][DCMF_RELAY_DROP_REASONS];
  _Atomic uint64_t latches;
};

struct dcmf_shimloop_settings {
  const struct dcmf_log *log; /* borrowed, may be NULL */
  /*
   * Runs on the control thread once a removed relay's sockets are
   * closed, once per port of it: the port may be reused now. Also runs
   * inside dcmf_shimloop_stop() for relays closed at shutdown.
   */
  void (*on_released)(void *user, uint16_t port);
  void *user;
};

struct dcmf_shimloop;
struct dcmf_shimloop_relay;

/*
 * Starts the relay thread; releases are reported on |control_loop|.
 * Returns 0, DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM.
 */
int dcmf_shimloop_start(struct dcmf_shimloop **sl, uv_loop_t *control_loop,
                        const struct dcmf_shimloop_settings *settings);

/*
 * Stops the thread (closing every relay still running), waits for it
 * (without a bound: a stuck relay loop never returns from here),
 * reports every port still held through on_released before returning,
 * and frees |sl| once its handle on the control loop has closed (the
 * control loop must run once more). Control thread only.
 */
void dcmf_shimloop_stop(struct dcmf_shimloop *sl);

/*
 * Hands a new relay to the thread: |cfg| (valid, copied), the ports and
 * the bound UDP descriptors of each side (indexed by side). On success
 * the relay owns the descriptors and *|relay| is its handle for the
 * calls below until dcmf_shimloop_remove(). Returns 0, DCMF_ERR_INVALID
 * (bad |cfg|) or DCMF_ERR_NOMEM; on failure the descriptors stay the
 * caller's. A socket that libuv cannot take is logged; that relay then
 * drops everything until removed.
 */
int dcmf_shimloop_add(struct dcmf_shimloop *sl,
                      const struct dcmf_relay_config *cfg,
                      const uint16_t ports[DCMF_RELAY_SIDES],
                      const int fds[DCMF_RELAY_SIDES],
                      struct dcmf_shimloop_relay **relay);

/* Sends a new configuration (valid, copied; see dcmf_relay_set_config).
 * Returns 0 or DCMF_ERR_NOMEM (nothing sent). */
int dcmf_shimloop_update(struct dcmf_shimloop *sl,
                         struct dcmf_shimloop_relay *relay,
                         const struct dcmf_relay_config *cfg);

/* Ends |relay|; the handle is invalid from now on. Its ports come back
 * through on_released once its sockets are closed. */
void dcmf_shimloop_remove(struct dcmf_shimloop *sl,
                          struct dcmf_shimloop_relay *relay);

/* Reads |relay|'s published counters and latched address (*|latched| 1
 * with |peer| filled, or 0). Control thread. */
void dcmf_shimloop_read(struct dcmf_shimloop_relay *relay,
                        struct dcmf_relay_counters *c,
                        struct sockaddr_storage *peer, int *latched);

/* The loop's totals; valid until dcmf_shimloop_stop(). */
const struct dcmf_shimloop_stats *dcmf_shimloop_stats(
    const struct dcmf_shimloop *sl);

struct dcmf_heartbeat;

/* The relay loop's heartbeat (heartbeat.h), readable from any thread
 * until dcmf_shimloop_stop(). */
const struct dcmf_heartbeat *
dcmf_shimloop_heartbeat(const struct dcmf_shimloop *sl);

#endif
