/*
 * udpproxy.h - UDP-proxy mode (mediaProxyConfig "UDP", MDC2 over UDP):
 * every message on an application data channel leaves as one UDP
 * datagram toward the DC application server, from a local port of that
 * channel's own, and every datagram the server sends to that port
 * arrives on the phone as one message.
 *
 * One proxy per DC media, on its session's worker loop. Datagrams from
 * any source other than the configured server are dropped and counted.
 * Datagrams that arrive before their channel is open (A2P: the server
 * speaks first) are queued, bounded, and delivered when it opens.
 * Glue: it owns the MDC2 sockets.
 */
#ifndef DCMF_UDPPROXY_H
#define DCMF_UDPPROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "media.h"

/* Largest UDP payload over IPv4 (65,535 - 8 - 20). */
#define DCMF_UDPPROXY_MAX_DATAGRAM 65507
/* Datagrams queued per stream while its channel is not open. */
#define DCMF_UDPPROXY_QUEUE 64

struct dcmf_udpproxy_counters {
  uint64_t datagrams_out, bytes_out; /* channel → server */
  uint64_t datagrams_in, bytes_in;   /* server → channel */
  uint64_t dropped_oversize, dropped_source, dropped_queue_full,
      dropped_send;
};

struct dcmf_udpproxy_callbacks {
  /* Delivers a datagram to the phone on stream |sid|. Returns 0;
   * DCMF_ERR_NOT_FOUND when the channel is not open (the datagram is
   * queued); any other error drops it (counted). */
  int (*deliver)(void *user, uint16_t sid, int text, const uint8_t *data,
                 size_t len);
  /* The counters may have changed: the owner reads them later, from its
   * loop, so that an idle proxy costs nothing. May be NULL. */
  void (*counted)(void *user);
};

struct dcmf_udpproxy;

/* Receive scratch of one slot per datagram read in one system call. */
#define DCMF_UDPPROXY_SLOT 65536
/* Slots a worker's scratch should have: its MDC2 legs then read up to
 * this many datagrams per recvmmsg (docs/benchmarks.md). */
#define DCMF_UDPPROXY_BATCH 8

/*
 * Creates an empty proxy toward |server| (copied). |rx| is receive
 * scratch of |rx_len| bytes (at least DCMF_UDPPROXY_SLOT), borrowed for
 * the proxy's life: the worker's proxies share it, since one thread
 * handles one read at a time and nothing keeps pointers into it. With
 * room for two slots or more, each leg reads a batch of datagrams per
 * system call (recvmmsg). Returns 0, DCMF_ERR_NOMEM or DCMF_ERR_INVALID
 * (|rx_len| too small).
 */
int dcmf_udpproxy_new(struct dcmf_udpproxy **up, uv_loop_t *loop,
                      const struct sockaddr_storage *server, uint8_t *rx,
                      size_t rx_len, const struct dcmf_udpproxy_callbacks *cbs,
                      void *user);

/*
 * Makes the proxy's legs match |list|: streams it has keep their socket
 * (a descriptor passed again is closed), new streams adopt the
 * descriptor of their entry (which is set to -1), streams not listed are
 * closed. |server| (copied) replaces the server address.
 */
void dcmf_udpproxy_sync(struct dcmf_udpproxy *up,
                        struct dcmf_media_mdc2 *list, size_t n,
                        const struct sockaddr_storage *server);

/* Returns 1 if stream |sid| is proxied. */
int dcmf_udpproxy_has(const struct dcmf_udpproxy *up, uint16_t sid);

/* A message from the phone on |sid|: send it as one datagram. Messages
 * over DCMF_UDPPROXY_MAX_DATAGRAM are dropped and counted. */
void dcmf_udpproxy_message(struct dcmf_udpproxy *up, uint16_t sid,
                           const uint8_t *data, size_t len);

/* The channel of |sid| opened: deliver what was queued for it. */
void dcmf_udpproxy_channel_open(struct dcmf_udpproxy *up, uint16_t sid);

/* A datagram from |from| on the MDC2 port of |sid|, as the socket hands
 * it over (exposed for the fuzz target). Returns 0, or
 * DCMF_ERR_NOT_FOUND when |sid| has no leg. */
int dcmf_udpproxy_receive(struct dcmf_udpproxy *up, uint16_t sid,
                          const struct sockaddr *from, const uint8_t *data,
                          size_t len);

const struct dcmf_udpproxy_counters *
dcmf_udpproxy_counters(const struct dcmf_udpproxy *up);

/* Closes every socket; frees the proxy once libuv lets go. */
void dcmf_udpproxy_close(struct dcmf_udpproxy *up);

#endif
