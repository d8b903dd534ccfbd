/*
 * tcpleg.h - the establishment of one e2ae TCP leg (layer "media"; libuv
 * glue, no protocol): the one place that connects, listens, accepts,
 * checks the peer and bounds the wait, for the TCP relay (tcprelay.h)
 * and the MSRP-over-data-channel core leg (agw-shim/e2ae/msrp_dc_tcp.h).
 *
 * Setups (media.h enum dcmf_tcp_setup; RFC 4145, TS 23.334 5.16, 6.2.18):
 * - ACTIVE connects to the signalled remote address from the leg's own
 *   socket, so the connection leaves from the signalled local port.
 * - PASSIVE accepts one connection on the leg's listening socket, only
 *   from the signalled remote IP address (any port: an active peer
 *   connects from an ephemeral one, RFC 4145 section 4). A connection
 *   from any other address is reset and reported (|refused|).
 * - MERGE (TS 23.334 6.2.18.4: TCP merge, preconfigured with
 *   a=setup:passive) does both at once: it accepts as PASSIVE does and
 *   connects to the remote from the same local address and port (a
 *   second socket bound with SO_REUSEADDR and SO_REUSEPORT, which the
 *   listening socket gets too: Linux lets a socket bind beside a
 *   listener only so), so the peer sees the signalled port and a
 *   simultaneous open from both signalled ports makes one connection.
 *   A refused or failed connect is tried again every
 *   DCMF_TCPLEG_RETRY_MS; the first connection up is kept and the other
 *   attempt dropped.
 *
 * No remote, no accept. A PASSIVE or MERGE leg whose remote address is
 * not signalled yet (the IMS-ALG learns the core's address from the
 * core's answer, after it had to offer the AGW's port: docs/e2ae.md)
 * accepts nothing: its socket listens already, so the kernel completes
 * and queues (up to the socket's backlog) the connections that arrive
 * meanwhile, and once dcmf_tcpleg_set_remote gives the address they are
 * accepted and checked like any other. An ACTIVE leg without a remote
 * fails at once.
 *
 * Addresses. IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack socket
 * reports for an IPv4 peer) equals the IPv4 address it carries; the
 * remote is converted to the socket's family before a connect (an IPv4
 * remote reached from a dual-stack IPv6 socket, or the other way round).
 *
 * Bound. The leg must be up within the |timeout_ms| of its start (when
 * it could first be established: the peer may connect from then on),
 * whatever changes meanwhile; otherwise it fails (TIMEOUT).
 *
 * The connection. |up| hands it over as a tcpconn.h object, which also
 * owns its end (a graceful close bounded by |linger_ms|, or a reset):
 * every user of this module closes its connections the same way.
 *
 * Callbacks run from the loop, never from inside a call of this module.
 * After |up| or |failed|, or dcmf_tcpleg_close, no callback runs but
 * |gone|, once, when the leg's last handle has closed (its sockets, and
 * so its port, are free then); the leg frees itself after it.
 * One owner thread (the loop's); no locks, no globals.
 */
#ifndef DCMF_TCPLEG_H
#define DCMF_TCPLEG_H

#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "media.h"
#include "tcpconn.h"

/* A refused or failed MERGE connect is tried again after this long. */
#define DCMF_TCPLEG_RETRY_MS 200

enum dcmf_tcpleg_failure {
  DCMF_TCPLEG_CONNECT,   /* an ACTIVE connect was refused or failed */
  DCMF_TCPLEG_TIMEOUT,   /* no connection within timeout_ms */
  DCMF_TCPLEG_SOCKET,    /* the socket cannot be used (open, listen) */
  DCMF_TCPLEG_NO_REMOTE, /* ACTIVE with no remote address */
};

struct dcmf_tcpleg_cbs {
  /* The connection is up and checked. |conn| (TCP_NODELAY set) is the
   * caller's from now on: it reads and writes dcmf_tcpconn_tcp(conn)
   * (whose |data| is its own) and ends it with dcmf_tcpconn_close
   * (tcpconn.h). */
  void (*up)(void *user, struct dcmf_tcpconn *conn);
  /* Establishment failed; |why| is a short text (borrowed for the
   * call). */
  void (*failed)(void *user, enum dcmf_tcpleg_failure kind, const char *why);
  /* A connection from an address other than the signalled one was
   * reset. May be NULL. */
  void (*refused)(void *user);
  /* The leg's last handle closed (see above). May be NULL. */
  void (*gone)(void *user);
};

struct dcmf_tcpleg_config {
  enum dcmf_tcp_setup setup;
  struct sockaddr_storage remote; /* ss_family 0: not signalled yet */
  uint32_t timeout_ms;            /* > 0 */
  /* The bound of the connection's graceful close (tcpconn.h); 0:
   * DCMF_TCPCONN_LINGER_MS. */
  uint32_t linger_ms;
};

struct dcmf_tcpleg;

/*
 * Takes |fd| (a TCP socket bound to the leg's local address and port;
 * listening already for PASSIVE and MERGE) and starts establishing per
 * |cfg| (copied). On 0 *|out| is the leg. Returns DCMF_ERR_NOMEM or
 * DCMF_ERR_INVALID (fd < 0, timeout 0) with |fd| closed and no
 * callback to come; every other failure comes as |failed|.
 */
int dcmf_tcpleg_start(struct dcmf_tcpleg **out, uv_loop_t *loop, int fd,
                      const struct dcmf_tcpleg_config *cfg,
                      const struct dcmf_tcpleg_cbs *cbs, void *user);

/* A new remote address (ss_family 0: none) for what is still to come:
 * the check of connections not accepted yet, MERGE connects not started
 * yet; a PASSIVE or MERGE leg that waited for it starts accepting (and
 * MERGE connecting). A connect in flight goes on. The bound is not
 * restarted. Only before |up|, |failed| or close. */
void dcmf_tcpleg_set_remote(struct dcmf_tcpleg *l,
                            const struct sockaddr_storage *remote);

/* Stops establishing (no callback but |gone| afterwards). Only before
 * |up| or |failed|: those close the leg themselves, and the caller
 * forgets |l| when they run. */
void dcmf_tcpleg_close(struct dcmf_tcpleg *l);

#endif
