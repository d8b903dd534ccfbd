/*
 * tcpconn.h - one established e2ae TCP connection and its end (layer
 * "media"; libuv glue, no protocol): the one place that closes the
 * connections tcpleg.h establishes, for the TCP relay (tcprelay.h) and
 * the MSRP-over-data-channel core leg (agw-shim/e2ae/msrp_dc_tcp.h).
 *
 * While open, the owner reads and writes the connection's libuv handle
 * (dcmf_tcpconn_tcp) as it likes, and its |data| is the owner's.
 *
 * Closing (dcmf_tcpconn_close) hands the handle back to this module:
 * - GRACEFUL. The owner's reading stops; what the owner queued with
 *   uv_write is written, then our FIN goes (uv_shutdown waits for the
 *   queue). Meanwhile, and until the peer's FIN, whatever the peer still
 *   sends is read and dropped: a socket closed with unread input (or
 *   that gets input after the close) answers with a reset (RFC 1122
 *   4.2.2.13; Linux does so), which throws away what our kernel had not
 *   sent yet (on some stacks also what the peer had received but not
 *   read): the end of what was relayed to the peer. Once our FIN is out
 *   and the peer's came, the socket closes (nothing unread, nothing more
 *   to come: no reset). The whole close is bounded by the linger time
 *   (|linger_ms| of dcmf_tcpconn_new, DCMF_TCPCONN_LINGER_MS by
 *   default): a peer that stops reading (our queue cannot drain) or
 *   never sends its FIN is then reset, so it cannot hold the socket, and
 *   its port, for ever.
 * - ABORT. A reset at once; what was queued is dropped. Also cuts a
 *   graceful close short (a worker shutting down).
 * Either way the owner's write callbacks still run (with UV_ECANCELED
 * for what is dropped) before |gone|.
 *
 * |gone| runs once, from the loop, when the socket is closed and nothing
 * of the connection is left; the object is freed right after it.
 * One owner thread (the loop's); no locks, no globals.
 */
#ifndef DCMF_TCPCONN_H
#define DCMF_TCPCONN_H

#include <stdint.h>

#include <uv.h>

/* The default bound of a graceful close (see above). */
#define DCMF_TCPCONN_LINGER_MS 5000

enum dcmf_tcpconn_how {
  DCMF_TCPCONN_GRACEFUL, /* queue written, FIN, peer's input until FIN */
  DCMF_TCPCONN_ABORT,    /* reset now */
};

/* How the connection ended, for |gone|. */
enum dcmf_tcpconn_end {
  DCMF_TCPCONN_ENDED_FIN,    /* both FINs, nothing left unread: clean */
  DCMF_TCPCONN_ENDED_RESET,  /* ABORT, or the socket failed meanwhile */
  DCMF_TCPCONN_ENDED_LINGER, /* reset when the linger bound ran out */
};

/* Runs once the connection is gone (see above). */
typedef void (*dcmf_tcpconn_gone_cb)(void *user, enum dcmf_tcpconn_end end);

struct dcmf_tcpconn;

/*
 * Wraps |tcp|: a malloc'ed handle, initialised on its loop and connected.
 * On 0 *|out| owns it (and frees it when it closes); |linger_ms| 0
 * means DCMF_TCPCONN_LINGER_MS. Returns DCMF_ERR_NOMEM with |tcp| left
 * untouched (still the caller's).
 */
int dcmf_tcpconn_new(struct dcmf_tcpconn **out, uv_tcp_t *tcp,
                     uint32_t linger_ms);

/* The connection's handle, to read and write while it is open (until
 * dcmf_tcpconn_close). Valid until |gone|; its |data| is the owner's
 * until the close. */
uv_tcp_t *dcmf_tcpconn_tcp(const struct dcmf_tcpconn *c);

/* Who hears |gone| (NULL: nobody). Set it before closing. */
void dcmf_tcpconn_set_gone(struct dcmf_tcpconn *c, dcmf_tcpconn_gone_cb gone,
                           void *user);

/*
 * Closes the connection |how| (see above). No callback runs inside this
 * call. After it the owner no longer reads or writes the handle (its
 * pending writes go on). A later ABORT cuts a GRACEFUL close short; any
 * other repeat has no effect. |c| stays valid until |gone|.
 */
void dcmf_tcpconn_close(struct dcmf_tcpconn *c, enum dcmf_tcpconn_how how);

#endif
