/*
 * tcprelay_int.h - what tcprelay.c (relaying, TLS, release, the host) and
 * tcprelay_setup.c (establishment: connect, listen, accept, the bounds)
 * share about one relay. Layer "media"; one owner thread.
 */
#ifndef DCMF_TCPRELAY_INT_H
#define DCMF_TCPRELAY_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tcprelay.h"
#include "tlspump.h"

#define ACCESS 0
#define CORE 1
/* How often a relay that is still being established looks at its
 * deadline and its MERGE retries. */
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
  uv_tcp_t *listener; /* passive and merge, until the leg is up */
  uv_tcp_t *out;      /* the connect in flight (active and merge) */
  uv_tcp_t *s;        /* the connection, once up */
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  int started; /* the leg's establishment began */
  int up;
  int reading;
  int closing;       /* the stream is shutting down or closing */
  size_t queued;     /* bytes handed to uv_write not yet written */
  uint64_t retry_at; /* MERGE: the next connect, in loop ms; 0: none due */
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
  uv_timer_t *timer; /* establishment deadline and MERGE retries; after
                        the end, the linger bound */
  uint64_t deadline; /* loop ms */
  int handles;       /* libuv handles not yet closed */
  int ended, removed, dirty;
  struct counters c;
  struct tcprelay_msrp *msrp;        /* MSRP aware (tcprelay_msrp.h), or NULL */
  struct dcmf_tcprelay *next, *prev; /* the host's live list */
};

/* ---- tcprelay.c ---- */

/* Closes a handle of |r| (counted in r->handles); *|t| becomes NULL. */
void tcprelay_handle_close(uv_tcp_t **t, int reset);
void tcprelay_on_handle_closed(uv_handle_t *hd);
/* A TCP handle of |r| (counted), or NULL. */
uv_tcp_t *tcprelay_tcp_new(struct dcmf_tcprelay *r);
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
/* Hands the plaintext TLS holds to the core and ends the relay if that
 * found a close_notify or a failure; returns 1 if the relay ended. */
int tcprelay_tls_deliver(struct dcmf_tcprelay *r);
/* The relay's establishment timer: the deadline and MERGE retries. */
void tcprelay_on_tick(uv_timer_t *t);

#endif
