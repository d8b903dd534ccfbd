/*
 * relay.h - the transparent UDP relay engine of the AGW shim.
 *
 * One relay joins an access-side port (toward the phone) and a core-side
 * port (toward dcmfd's media port for e2DCe, or toward the other phone's
 * shim leg for e2e). For every datagram the glue hands over (the side it
 * arrived on, its source address, its bytes), the engine decides: forward
 * exactly those bytes to one address through the other side's socket, or
 * drop them, counted by side and reason. It also keeps the access-side
 * latch (the phone's learned address).
 *
 * No I/O: the engine never touches a socket, a clock, a lock or the heap.
 * The payload is never read or copied; a forward verdict points at the
 * caller's own buffer, so what leaves is byte for byte what arrived.
 *
 * Rules (RFC 7362 latching, kept conservative):
 * - Access side, latching "first-packet": the first datagram on the
 *   access port latches its source as the phone. Latching
 *   "signalled-only": only a datagram from the signalled access remote
 *   (address and port) latches. Once latched, the latch is kept: a
 *   datagram from any other source is dropped as UNKNOWN_SOURCE (no
 *   re-latching, so a third party cannot steal the flow). Only a
 *   configuration change of the access side (dcmf_relay_set_config with
 *   another latching mode or access remote) clears the latch.
 * - Access to core: forwarded to the configured core remote; dropped as
 *   NO_REMOTE while none is configured (the source may still latch).
 * - Core side: only datagrams from the configured core remote are
 *   accepted (any other source, or any source while none is configured:
 *   UNKNOWN_SOURCE). They go to the latched phone address; before the
 *   latch they are dropped as NOT_LATCHED. Nothing is ever sent to an
 *   address that was neither learned by latching nor configured.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack socket
 * reports) compare equal to the IPv4 address they carry.
 */
#ifndef DCMF_RELAY_H
#define DCMF_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The two sides of a relay; also the index of the per-side arrays. */
enum dcmf_relay_side {
  DCMF_RELAY_ACCESS = 0,
  DCMF_RELAY_CORE = 1,
};
#define DCMF_RELAY_SIDES 2

/* How the access side learns the phone's address. */
enum dcmf_relay_latching {
  DCMF_RELAY_LATCH_FIRST_PACKET = 0,   /* JSON "first-packet" */
  DCMF_RELAY_LATCH_SIGNALLED_ONLY = 1, /* JSON "signalled-only" */
};

/* Why a datagram was dropped; the index of dcmf_relay_counters.dropped. */
enum dcmf_relay_drop {
  /* The source is not the latched phone, the signalled phone (before the
   * latch, signalled-only), or the core remote. */
  DCMF_RELAY_DROP_UNKNOWN_SOURCE = 0,
  /* Core to access before the phone's address was latched. */
  DCMF_RELAY_DROP_NOT_LATCHED = 1,
  /* Access to core while no core remote is configured. */
  DCMF_RELAY_DROP_NO_REMOTE = 2,
  /* Forwarding was decided but the glue could not send. */
  DCMF_RELAY_DROP_SEND_FAILED = 3,
};
#define DCMF_RELAY_DROP_REASONS 4

/* What a relay does; plain data, copied by the engine. */
struct dcmf_relay_config {
  enum dcmf_relay_latching latching;
  int has_access_remote;                 /* the signalled phone address */
  struct sockaddr_storage access_remote; /* AF_INET or AF_INET6 */
  int has_core_remote;
  struct sockaddr_storage core_remote; /* AF_INET or AF_INET6 */
};

/* Counters, all monotonic. Arrays are indexed by the side a datagram
 * arrived on: packets[DCMF_RELAY_ACCESS] counts access to core. */
struct dcmf_relay_counters {
  uint64_t packets[DCMF_RELAY_SIDES]; /* forwarded datagrams */
  uint64_t bytes[DCMF_RELAY_SIDES];   /* their UDP payload bytes */
  uint64_t dropped[DCMF_RELAY_SIDES][DCMF_RELAY_DROP_REASONS];
  uint64_t latches; /* times the phone's address was latched */
};

/* One relay. Caller-owned, usually embedded; holds no resources, so
 * there is no _free. |counters| may be read at any time; the other
 * fields are private to relay.c. */
struct dcmf_relay {
  struct dcmf_relay_config config;
  int latched;
  struct sockaddr_storage peer; /* the phone, valid if |latched| */
  struct dcmf_relay_counters counters;
};

/* The decision for one datagram, filled by dcmf_relay_recv(). */
struct dcmf_relay_verdict {
  int forward; /* 1: send |data|/|len| to |to| through side |out| */
  enum dcmf_relay_side out;
  /* Points into the relay (valid until the next call on it). */
  const struct sockaddr *to;
  /* The caller's own datagram, unchanged: |pkt| and |len| of the call. */
  const uint8_t *data;
  size_t len;
  enum dcmf_relay_drop reason; /* why, when !forward */
  int latched_now; /* this datagram latched the phone's address */
};

/*
 * Checks |config|: the latching mode is known, each remote present is
 * AF_INET or AF_INET6 with a non-zero port, and signalled-only latching
 * has an access remote. Returns 0 or DCMF_ERR_INVALID.
 */
int dcmf_relay_config_check(const struct dcmf_relay_config *config);

/*
 * Initialises |r| with a copy of |config|: nothing latched, counters 0.
 * Returns 0 or DCMF_ERR_INVALID (see dcmf_relay_config_check; |r| is
 * then untouched).
 */
int dcmf_relay_init(struct dcmf_relay *r,
                    const struct dcmf_relay_config *config);

/*
 * Replaces the configuration with a copy of |config|. The latch is kept
 * if the latching mode and the access remote are unchanged, and cleared
 * otherwise (the controller re-signalled the phone). Counters are kept.
 * Returns 0 or DCMF_ERR_INVALID (|r| unchanged).
 */
int dcmf_relay_set_config(struct dcmf_relay *r,
                          const struct dcmf_relay_config *config);

/*
 * Decides what to do with the datagram |pkt| (|len| bytes, borrowed for
 * the call, never read) that arrived on side |side| from |from|, counts
 * it, and fills |v|. Returns 1 (forward: send v->data, v->len to v->to
 * through the socket of side v->out), 0 (dropped, v->reason says why),
 * or DCMF_ERR_INVALID when |side| is not a side or |from| is NULL or not
 * AF_INET/AF_INET6 (nothing counted, v->forward is 0).
 */
int dcmf_relay_recv(struct dcmf_relay *r, enum dcmf_relay_side side,
                    const struct sockaddr *from, const uint8_t *pkt,
                    size_t len, struct dcmf_relay_verdict *v);

/*
 * Tells the engine that a datagram of |len| bytes that arrived on |side|
 * and was to be forwarded could not be sent: it is counted as dropped
 * (SEND_FAILED) instead of forwarded. Sides out of range are ignored.
 */
void dcmf_relay_send_failed(struct dcmf_relay *r, enum dcmf_relay_side side,
                            size_t len);

/* Returns the latched phone address, or NULL before the latch. Valid
 * until the next call that changes |r|. */
const struct sockaddr *dcmf_relay_peer(const struct dcmf_relay *r);

/*
 * Returns 1 if |a| and |b| are the same transport address (family,
 * address, port; IPv4-mapped IPv6 equals its IPv4 address), else 0.
 * NULL or families other than AF_INET/AF_INET6 are never equal.
 */
int dcmf_relay_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

/* 1 if |a| and |b| hold the same IP address, whatever their ports (a TCP
 * peer connects from any port, RFC 4145 section 4), else 0; IPv4-mapped
 * IPv6 equals its IPv4 address, as above. */
int dcmf_relay_host_equal(const struct sockaddr *a, const struct sockaddr *b);

/* Names for JSON and metrics: "access"/"core", "first-packet"/... ,
 * "unknown_source"/... Never NULL. */
const char *dcmf_relay_side_name(enum dcmf_relay_side side);
const char *dcmf_relay_latching_name(enum dcmf_relay_latching latching);
const char *dcmf_relay_drop_name(enum dcmf_relay_drop reason);

#endif
