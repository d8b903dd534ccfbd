/*
 * msrp_dc_tcp.h - the core TCP connection of one MSRP-over-DC media
 * (layer: services; libuv glue, no protocol): established per its setup
 * by tcpleg.h (the module the e2ae TCP relay shares: active connects
 * from the bound socket to the signalled address; passive accepts one
 * connection on the listening socket, only from the signalled host, and
 * none while no remote is signalled; the bounded wait), then read on
 * demand and written one buffer at a time, and closed by tcpconn.h (the
 * close every e2ae TCP leg shares: a graceful one lets the write in
 * flight and the FIN leave, drops what the core still sends until its
 * FIN, and is bounded by DCMF_TCPCONN_LINGER_MS, after which a core that
 * stops reading, or never sends its FIN, is reset so it cannot hold the
 * socket and its port after the context is gone).
 *
 * Callbacks run on the loop's thread, never from inside a call of this
 * module except dcmf_msrp_dc_tcp_connect's own failure. After
 * msrp_dc_tcp_close no callback runs; the handles finish closing as the
 * loop runs on and the object frees itself.
 */
#ifndef DCMF_MSRP_DC_TCP_H
#define DCMF_MSRP_DC_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "media.h"

/* One socket read at most. */
#define DCMF_MSRP_DC_TCP_READ (64 * 1024)
/* The connection's kernel send buffer (SO_SNDBUF). */
#define DCMF_MSRP_DC_TCP_SNDBUF (256 * 1024)
/* One socket write at most (a copy in flight). */
#define DCMF_MSRP_DC_TCP_WRITE (64 * 1024)

struct dcmf_msrp_dc_tcp;

/* The connections of one owner (a worker) that it let go while they
 * still close gracefully (they linger up to DCMF_TCPCONN_LINGER_MS), so
 * that the owner's own end can cut them short. Embed it zeroed; the
 * loop's thread. */
struct dcmf_msrp_dc_tcp_closing {
  struct dcmf_msrp_dc_tcp *first;
};

struct dcmf_msrp_dc_tcp_cbs {
  /* The connection is up. */
  void (*up)(void *user);
  /* |n| bytes read (borrowed for the call). */
  void (*data)(void *user, const uint8_t *p, size_t n);
  /* The bytes of the last msrp_dc_tcp_write were written. */
  void (*wrote)(void *user, size_t n);
  /* The connection is gone or never came: |reason| is "fin", "reset",
   * "error", "timeout", "refused" (connect failed); |establishing| 1 when
   * it never came up. The object is closed already (no more callbacks);
   * the caller forgets it. */
  void (*down)(void *user, const char *reason, int establishing);
};

/*
 * Takes |fd| (a bound TCP socket; listening unless |setup| is ACTIVE)
 * and starts establishing (tcpleg.h): at once, or for an ACTIVE leg
 * with |defer| when msrp_dc_tcp_connect is called. |timeout_ms| bounds
 * the wait from that start. A graceful close puts the connection on
 * |closing| (NULL: on none) until it is gone. Returns 0, or DCMF_ERR_NOMEM /
 * DCMF_ERR_INVALID with |fd| closed; failures found later (no remote
 * for an active leg, a socket that cannot listen) come as |down|.
 */
int dcmf_msrp_dc_tcp_start(struct dcmf_msrp_dc_tcp **out, uv_loop_t *loop,
                           int fd, enum dcmf_tcp_setup setup,
                           const struct sockaddr_storage *remote, int defer,
                           uint32_t timeout_ms,
                           struct dcmf_msrp_dc_tcp_closing *closing,
                           const struct dcmf_msrp_dc_tcp_cbs *cbs, void *user);

/* Starts a deferred active connect (no effect otherwise). */
void dcmf_msrp_dc_tcp_connect(struct dcmf_msrp_dc_tcp *t);

/* A new signalled remote (a PATCH) for what is still to be connected or
 * accepted (a passive leg waiting for it starts accepting); no effect
 * once up. */
void dcmf_msrp_dc_tcp_set_remote(struct dcmf_msrp_dc_tcp *t,
                                 const struct sockaddr_storage *remote);

/* Reads (|on| 1) or stops reading; no effect before the connection is
 * up (reading starts only when asked). */
void dcmf_msrp_dc_tcp_read(struct dcmf_msrp_dc_tcp *t, int on);

/* 1 while the connection is up and no write is in flight. */
int dcmf_msrp_dc_tcp_can_write(const struct dcmf_msrp_dc_tcp *t);

/* Writes up to DCMF_MSRP_DC_TCP_WRITE of the |n| bytes at |p| (copied:
 * |p| is borrowed for the call). Returns the count taken, or
 * DCMF_ERR_EXHAUSTED (not up, or a write in flight), DCMF_ERR_NOMEM,
 * DCMF_ERR_SYSTEM. |wrote| follows when it is written. */
int dcmf_msrp_dc_tcp_write(struct dcmf_msrp_dc_tcp *t, const uint8_t *p,
                           size_t n);

/* Ends the connection: gracefully (|reset| 0; tcpconn.h: the write in
 * flight, a FIN, the core's input dropped until its FIN, bounded), or a
 * reset at once. No callback runs afterwards. A reset after a graceful
 * close cuts it short, but |t| frees itself once that close is done, so
 * an owner that let go of |t| reaches it only through its |closing|. */
void dcmf_msrp_dc_tcp_close(struct dcmf_msrp_dc_tcp *t, int reset);

/* Resets every connection on |set| (a worker stopping: no linger) and
 * empties it; they finish closing as the loop runs on, and |set| may go
 * right after. */
void dcmf_msrp_dc_tcp_abort_closing(struct dcmf_msrp_dc_tcp_closing *set);

#endif
