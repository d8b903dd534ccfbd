/*
 * tcprelay.h - the e2ae TCP relays of one media worker (layer "media"):
 * MSRP or BFCP over TLS/TCP on the access leg <-> plain TCP on the core
 * leg (TS 23.334 5.16, 6.2.10.3, 6.2.18; docs/e2ae.md "MSRP and BFCP over
 * TLS"), or plain TCP on both. Application-agnostic: the bytes leave as
 * they came (TLS removed or added), in order, nothing parsed; or, with
 * tcpleg->msrp_aware, MSRP relayed chunk by chunk with its paths
 * rewritten per leg (tcprelay_msrp.h).
 *
 * A relay is a media whose description carries a struct dcmf_media_tcpleg
 * (media.h); the worker hands every ADD, UPDATE and REMOVE of such a
 * media here instead of to a session.
 *
 * Establishment. Each leg is established by tcpleg.h (the module the
 * MSRP-over-data-channel core leg shares), which says how ACTIVE,
 * PASSIVE and MERGE work: ACTIVE connects from the leg's bound socket;
 * PASSIVE accepts one connection, only from the signalled remote IP
 * address (any port), resetting others (refusedSource), and accepts
 * nothing while no remote is signalled (the kernel queues what comes
 * until an UPDATE gives it); MERGE listens and connects from the same
 * local port, retrying a refused connect every DCMF_TCPLEG_RETRY_MS.
 * STATELESS handling forwards establishment: an ACTIVE leg starts only
 * once the other leg's connection is up; the state-aware handlings
 * start every leg at once. The access leg's TLS (tlspump.h, the
 * worker's certificate, TLS 1.2 or 1.3, no renegotiation, no tickets)
 * starts once its TCP connection is up and the remote fingerprints are
 * known (an UPDATE may bring them later: until then the handshake waits
 * and nothing is read). Bounds, each description's timeout_ms: a leg's
 * connection from the leg's start (the ADD; for a stateless ACTIVE leg,
 * the other leg's connection), whatever UPDATEs come meanwhile; the TLS
 * step from the access connection, restarted once when the handshake
 * starts (the fingerprints known). Past a bound TCP_FAILURE or
 * TLS_FAILURE is raised and the relay ends. An ACTIVE leg whose connect
 * is refused or fails raises TCP_FAILURE at once.
 *
 * TLS. The peer's certificate must match one remote fingerprint (RFC
 * 8122, cert.h); a mismatch makes libssl send a bad_certificate alert,
 * TLS_FAILURE is raised and the relay ends: nothing was read from the
 * core and nothing is forwarded to it before the handshake completed.
 * Renegotiation is refused (SSL_OP_NO_RENEGOTIATION: a TLS 1.2
 * ClientHello on an open session is answered at once with a
 * no_renegotiation warning alert and the session goes on unchanged
 * unless the client then gives up, which ends the relay as a TLS
 * failure; a HelloRequest is ignored), so only RFC 5746 secure
 * renegotiation could ever apply and none does.
 *
 * Relaying and back-pressure. A leg is read only while the other leg is
 * up and has fewer than DCMF_TCPRELAY_BUFFER bytes queued for its
 * socket; past that, reading stops until the queue drains below half of
 * it; the TLS leg is also not read while DCMF_TCPRELAY_BUFFER bytes wait
 * for the UE, since reading makes TLS answer it (alerts, KeyUpdates).
 * So each direction holds at most DCMF_TCPRELAY_BUFFER plus one read
 * (DCMF_TCPRELAY_READ bytes, as TLS records at most a few more) in
 * the relay, and the kernel the socket's DCMF_TCPRELAY_SNDBUF; a slow
 * reader only slows its own relay, and no loop spins: reading resumes
 * from the write completion.
 *
 * Release. A FIN, a TLS close_notify or a TLS failure on one leg ends
 * the relay: the other leg gets what was already queued, then a FIN
 * (and close_notify first toward a TLS peer when the core ended), and
 * what its peer still sends is read and dropped until the peer's FIN
 * (closing with unread input would reset it and lose the end of what
 * was relayed), within DCMF_TCPCONN_LINGER_MS, after which the leg is
 * reset (so a peer that stopped reading, or never sends its FIN, cannot
 * keep the ports): tcpconn.h, the close every e2ae TCP leg shares. A FIN
 * from the TLS peer on an open session without a close_notify before it
 * ends it the same way but is reported as a truncation (TCP_CLOSED
 * reason "TLS truncated: ...", failures.tlsTruncated). A write that
 * libuv refuses at once ends the relay with a reset (counted as reset)
 * rather than drop bytes from the stream. A reset
 * or socket error ends it with a reset on the other leg. TCP_CLOSED is
 * raised once with the reason. The listener is closed with the relay or
 * as soon as its leg is up.
 *
 * Events (emit, detail JSON, docs/api.md): TCP_FAILURE {"leg","reason"},
 * TLS_FAILURE {"reason"}, TCP_CLOSED {"reason"}, TCP_COUNTERS (a
 * snapshot, at most every DCMF_TCPRELAY_PUSH_MS while it counts, and a
 * final one when the relay ends):
 *   {"toCore":{"bytes":N,"reads":N},"toAccess":{"bytes":N,"reads":N},
 *    "failures":{"connect":N,"timeout":N,"tls":N,"refusedSource":N,
 *                "reset":N,"tlsTruncated":N},"final":B}
 * |bytes| are application bytes (TLS removed), |reads| the socket reads
 * that brought them. RELEASED follows a REMOVE once every socket is
 * closed (|must|).
 *
 * One owner thread (the worker's); no locks, no globals.
 */
#ifndef DCMF_TCPRELAY_H
#define DCMF_TCPRELAY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "hashmap.h"
#include "log.h"
#include "media.h"

/* Bytes queued toward one socket before the other leg is not read. */
#define DCMF_TCPRELAY_BUFFER (256 * 1024)
/* The send buffer asked of each connection (SO_SNDBUF; Linux doubles
 * it), so the kernel too holds a bounded amount per stalled leg. */
#define DCMF_TCPRELAY_SNDBUF (128 * 1024)
/* One socket read. */
#define DCMF_TCPRELAY_READ (64 * 1024)
/* The most often a busy relay's counters are pushed. */
#define DCMF_TCPRELAY_PUSH_MS 1000
/* The default establishment bound (per leg, and the TLS step). */
#define DCMF_TCPRELAY_TIMEOUT_MS 10000

struct dcmf_tcprelay_settings {
  uv_loop_t *loop;            /* the worker's; borrowed */
  const struct dcmf_log *log; /* borrowed, may be NULL */
  X509 *cert;                 /* the worker's identity; borrowed */
  EVP_PKEY *pkey;
  /* Raises |event| about media |key| toward the control side; |must|
   * 1: it may not be lost (RELEASED). */
  void (*emit)(void *user, const struct dcmf_media_key *key, const char *event,
               const char *detail, int must);
  void *user;
};

struct dcmf_tcprelay;

/* Embed it; every field is private. */
struct dcmf_tcprelay_host {
  struct dcmf_tcprelay_settings settings;
  SSL_CTX *tls_ctx;
  struct dcmf_hashmap by_key; /* relays not removed */
  struct dcmf_tcprelay *live; /* the same, for the push and close */
  /* Removed, their connections still closing (RELEASED to come). */
  struct dcmf_tcprelay *closing;
  uv_timer_t *push_timer;
};

/* Returns 0, DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM (no TLS context). */
int dcmf_tcprelay_host_init(struct dcmf_tcprelay_host *h,
                            const struct dcmf_tcprelay_settings *settings);

/* Applies |op| about |desc| (desc->tcpleg set; its fds are taken on ADD)
 * and frees what |desc| owns. */
void dcmf_tcprelay_host_handle(struct dcmf_tcprelay_host *h,
                               enum dcmf_media_op op,
                               struct dcmf_media_desc *desc);

/* Closes every relay with a reset, those removed but still closing
 * gracefully too (their linger is cut short), and the host's handles;
 * they finish closing as the loop runs on, and no event is raised once
 * this returns (no RELEASED): |h| may go right after. */
void dcmf_tcprelay_host_close(struct dcmf_tcprelay_host *h);

#endif
