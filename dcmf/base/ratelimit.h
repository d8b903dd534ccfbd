/*
 * ratelimit.h - token buckets keyed by source address, for work a
 * stranger can make us do (STUN checks that cost an HMAC, DTLS
 * ClientHellos that cost a handshake).
 *
 * An engine without I/O: the glue passes the source address and the time
 * of each packet and drops the packet when the answer is "limited".
 * Buckets are keyed by the IP address without the port, so many source
 * ports of one host share one bucket. An IPv4-mapped IPv6 address is the
 * IPv4 address, and IPv6 addresses are keyed by their /64 prefix, since
 * one host commonly owns a whole /64.
 *
 * Memory is bounded: the table has a fixed number of slots, grouped in
 * small sets. A new address takes a free slot of its set or evicts the
 * least recently seen one. A flood from many addresses thus evicts the
 * buckets of quiet addresses, which then start full again: the limit
 * holds per address only while the table can keep it. This is the
 * price of bounded memory; sources that must never be limited (an
 * established peer) are not asked about at all (see session.c).
 */
#ifndef DCMF_RATELIMIT_H
#define DCMF_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct dcmf_ratelimit_settings {
  /* Tokens added per second to each address's bucket; 0: no limit. */
  uint32_t rate;
  /* Bucket size: how many packets an idle address may send at once;
   * 0 means |rate| (one second's worth). */
  uint32_t burst;
  /* Number of addresses tracked; rounded up to a multiple of the set
   * size. 0 means DCMF_RATELIMIT_DEFAULT_SLOTS. */
  uint32_t slots;
  /* Mixed into the slot hash so a sender cannot aim at one set. */
  uint64_t seed;
};

#define DCMF_RATELIMIT_DEFAULT_SLOTS 4096

/* What the limiter did, for metrics. Plain counters, owner thread. */
struct dcmf_ratelimit_counters {
  uint64_t allowed;
  uint64_t limited;
  uint64_t evicted; /* buckets of other addresses dropped for a new one */
};

struct dcmf_ratelimit;

/*
 * Creates a limiter with a copy of |settings|. Returns 0 and sets *|rl|,
 * or DCMF_ERR_NOMEM. The caller owns it and frees it with
 * dcmf_ratelimit_del(). One thread at a time may use it.
 */
int dcmf_ratelimit_new(struct dcmf_ratelimit **rl,
                       const struct dcmf_ratelimit_settings *settings);

/* Frees |rl| (NULL is fine). */
void dcmf_ratelimit_del(struct dcmf_ratelimit *rl);

/*
 * Takes one token from the bucket of |from|'s address at time |now_ms|
 * (any monotonic millisecond clock; it must not go backwards between
 * calls). Returns 1 if the packet may be processed, 0 if its source is
 * over the limit, or DCMF_ERR_INVALID if |from| is NULL or neither IPv4
 * nor IPv6 (drop it). With rate 0 it always returns 1 for a valid
 * address.
 */
int dcmf_ratelimit_allow(struct dcmf_ratelimit *rl, const struct sockaddr *from,
                         uint64_t now_ms);

/* The counters since creation; valid as long as |rl|. */
const struct dcmf_ratelimit_counters *
dcmf_ratelimit_counters(const struct dcmf_ratelimit *rl);

#endif
