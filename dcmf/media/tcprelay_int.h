/*
 * tcprelay_int.h - what tcprelay.c (relaying, TLS, release, the host) and
 * tcprelay_setup.c (establishment: each leg through tcpleg.h, the
 * forwarding of stateless establishment, the TLS bound) share about one
 * relay. Layer "media"; one owner thread.
 */
#ifndef DCMF_TCPRELAY_INT_H
#define DCMF_TCPRELAY_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tcpconn.h"
#include "tcpleg.h"
#include "tcprelay.h"
#include "tlspump.h"

#define ACCESS 0
#define CORE 1
/* How often a relay that is still being established looks at its TLS
 * deadline (each leg's TCP bound is its tcpleg's). */
#define TICK_MS 50

/* One buffer: a socket read, or bytes queued for a socket. */
struct wbuf {
  uv_write_t req;
  struct leg *to;
  size_t len;
  uint8_t data[];
};

struct leg {
  struct dcmf_tcprelay *r;
  int side;
  struct dcmf_tcpleg *est; /* establishing (counted in r->handles) */
  /* The connection, from its |up| until its |gone| (counted in
   * r->handles); it owns its end (tcpconn.h). */
  struct dcmf_tcpconn *conn;
  uv_tcp_t *s; /* its handle, to read and write until the leg closes */
  int started; /* the leg's establishment began */
  int up;
  int reading;
  int closing;       /* the connection is closing (|s| NULL) */
  size_t queued;     /* bytes handed to uv_write not yet written */
};

struct counters {
  uint64_t bytes[2], reads[2]; /* by direction: [CORE] is toCore */
  uint64_t connect, timeout, tls, refused_source, reset;
  uint64_t truncated; /* the UE's FIN came without a TLS close_notify */
};

struct dcmf_tcprelay {
  struct dcmf_hashmap_entry entry;
  struct dcmf_tcprelay_host *h;
  struct dcmf_media_key key;
  struct dcmf_media_tcpleg cfg; /* fds moved out */
  struct leg leg[2];
  struct dcmf_tlspump tls;
  int tls_started;
  uv_timer_t *timer; /* the TLS deadline while establishing */
  uint64_t deadline; /* loop ms: the TLS step (fingerprints, handshake) */
  int handles;       /* libuv handles not yet closed */
  int ended, removed, dirty;
  /* The UE's FIN came while TLS still held records the MSRP engine had
   * no room for: its close_notify may be among them, so the end waits
   * until they are read (tcprelay_tls_settle). */
  int access_eof;
  struct counters c;
  struct tcprelay_msrp *msrp;        /* MSRP aware (tcprelay_msrp.h), or NULL */
  struct dcmf_tcprelay *next, *prev; /* the host's live or closing list */
};

/* ---- tcprelay.c ---- */

/* The close callback of |r|'s timers (counted in r->handles). */
void tcprelay_on_handle_closed(uv_handle_t *hd);
/* One of |r|'s counted handles is gone (a tcpleg's |gone|); |r| may be
 * freed by it. */
void tcprelay_handle_gone(struct dcmf_tcprelay *r);
/* Raises |event| with a detail made of |fmt1| and |leg| (or NULL) and
 * |reason| (quotes and control characters replaced). */
void tcprelay_emitf(struct dcmf_tcprelay *r, const char *event,
                    const char *fmt1, const char *leg, const char *reason);
void tcprelay_tcp_failure(struct dcmf_tcprelay *r, int side,
                          const char *reason);
/* Ends the relay once: both legs released (FIN after what is queued, or
 * a reset), TCP_CLOSED and the final counters raised. */
void tcprelay_relay_end(struct dcmf_tcprelay *r, const char *reason, int reset);
/* Starts or stops reading each leg per the back-pressure rule. */
void tcprelay_update_reading(struct dcmf_tcprelay *r);
/* Starts TLS on the access leg once it is up and fingerprints are known. */
void tcprelay_tls_start(struct dcmf_tcprelay *r);
int tcprelay_tls_open(const struct dcmf_tcprelay *r);
void tcprelay_tls_plain_to_core(struct dcmf_tcprelay *r);
/* A buffer of |cap| bytes (malloc; NULL when out of memory). */
struct wbuf *tcprelay_wbuf_new(size_t cap);
/* Queues |wb| (|len| bytes of it) for leg |l|'s socket; takes |wb|. A
 * write libuv refuses at once ends the relay with a reset (counted). */
void tcprelay_leg_write(struct leg *l, struct wbuf *wb, size_t len);
/* Sends what TLS has ready for the access peer. */
void tcprelay_tls_flush(struct dcmf_tcprelay *r);

/* ---- tcprelay_setup.c ---- */

/* Starts leg |l| per its setup (a stateless active leg waits for the
 * other leg's connection). */
void tcprelay_leg_start(struct leg *l);
/* Stops leg |l|'s establishment, if any (no more events from it). */
void tcprelay_leg_stop_setup(struct leg *l);
/* A new remote address for leg |l| (an UPDATE): what is still to be
 * connected or accepted uses it; a connection that is up stays. */
void tcprelay_leg_set_remote(struct leg *l,
                             const struct sockaddr_storage *remote);
/* Hands the plaintext TLS holds to the core and ends the relay if that
 * found a close_notify or a failure; returns 1 if the relay ended. */
int tcprelay_tls_deliver(struct dcmf_tcprelay *r);
/* After the MSRP engine was pumped outside a TLS read (a write done, a
 * core read, a timer, an update): it may have read a close_notify or hit
 * a failure among the records back-pressure had left in TLS. Acts on
 * that state as a read would (ending the relay), else delivers what TLS
 * holds. Returns 1 if the relay ended. */
int tcprelay_tls_settle(struct dcmf_tcprelay *r);
/* Pushes the relay's TCP_COUNTERS (|final|: the last one). */
void tcprelay_push_counters(struct dcmf_tcprelay *r, int final);
/* The relay's establishment timer: the TLS deadline. */
void tcprelay_on_tick(uv_timer_t *t);

/* ---- tcprelay_end.c ---- */

/* Stops leg |l|'s establishment and closes its connection (tcpconn.h):
 * with a reset, or gracefully (FIN after what is queued, the peer's
 * input dropped until its FIN, within the linger bound). A reset also
 * cuts a graceful close short. */
void tcprelay_leg_close(struct leg *l, int reset);

#endif
