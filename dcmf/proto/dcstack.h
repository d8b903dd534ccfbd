/*
 * dcstack.h - one WebRTC data-channel stack: DTLS carrying SCTP carrying
 * data channels (RFC 8261, 8831, 8832), wired together once for dcmfd's
 * sessions, dcmf-ue's phones and the in-memory tests.
 *
 * It owns a DTLS engine, an SCTP association and its channel table, and
 * does the plumbing between them: DTLS application data goes into SCTP,
 * SCTP packets go out through DTLS, SCTP starts when DTLS connects, SCTP
 * events reach the channel layer (DCEP answers included), owed DCEP ACKs
 * go out when SCTP has room, and usrsctp's timer work is asked for only
 * when there is some (|need_tick|).
 *
 * No I/O: ciphertext datagrams leave through |send_datagram| and come in
 * through dcmf_dcstack_recv; time comes in as |now| (milliseconds on the
 * owner's monotonic clock) for DTLS retransmission. The usrsctp stack
 * itself (dcmf_sctp_stack_init/tick) stays with the owner's loop.
 *
 * Callbacks must not delete the stack (the engines are on the call
 * stack): tear down from the owner's loop afterwards.
 */
#ifndef DCMF_DCSTACK_H
#define DCMF_DCSTACK_H

#include <stddef.h>
#include <stdint.h>

#include "datachannel.h"
#include "dtls.h"
#include "fingerprint.h"
#include "sctp.h"

enum dcmf_dcstack_state {
  DCMF_DCSTACK_DTLS_CONNECTED, /* SCTP is being started */
  DCMF_DCSTACK_DTLS_FAILED,    /* fatal alert or bad fingerprint */
  DCMF_DCSTACK_DTLS_CLOSED,    /* close_notify received */
  DCMF_DCSTACK_SCTP_UP,        /* channels open now */
  DCMF_DCSTACK_SCTP_DOWN,      /* the association was lost or shut down */
  DCMF_DCSTACK_SCTP_FAILED,    /* SCTP could not be started */
};

/* Every member is required but |writable| and |need_tick|. */
struct dcmf_dcstack_callbacks {
  /* One ciphertext datagram for the peer; |data| is valid for the call. */
  void (*send_datagram)(void *user, const uint8_t *data, size_t len);
  /* The stack moved to |state|. |reason| is a short English phrase for
   * logs and events (the DTLS one for DTLS_FAILED). After DTLS_FAILED
   * and DTLS_CLOSED the stack carries nothing more: the owner deletes it
   * from its loop (or keeps it, as a record, until then). */
  void (*state_changed)(void *user, enum dcmf_dcstack_state state,
                        const char *reason);
  /* The channel layer's callbacks (datachannel.h), called with |user|. */
  int (*channel_open)(void *user, struct dcmf_dc_channel *ch);
  void (*channel_message)(void *user, struct dcmf_dc_channel *ch, int binary,
                          const uint8_t *data, size_t len);
  void (*channel_closed)(void *user, struct dcmf_dc_channel *ch);
  /* SCTP has room again after a send said DCMF_ERR_EXHAUSTED; the owed
   * DCEP ACKs have gone first. May be NULL. */
  void (*writable)(void *user);
  /* Call dcmf_dcstack_handle_tick after the next dcmf_sctp_stack_tick
   * (see |need_tick| in sctp.h). Called once per need. May be NULL: then
   * call dcmf_dcstack_handle_tick after every stack tick. */
  void (*need_tick)(void *user);
};

struct dcmf_dcstack_settings {
  struct dcmf_dtls_ctx *dtls_ctx; /* borrowed for the stack's life */
  int dtls_server;                /* our a=setup is passive */
  struct dcmf_sctp_settings sctp; /* copied */
};

struct dcmf_dcstack;

/*
 * Creates the stack: DTLS in the role |settings->dtls_server| (nothing is
 * sent before the remote fingerprints are set and, as a client,
 * dcmf_dcstack_start), an SCTP association waiting for DTLS, and an empty
 * channel table. |cbs| is copied; |user| is passed to every callback.
 * Returns 0, DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM (nothing is left behind).
 */
int dcmf_dcstack_new(struct dcmf_dcstack **stack,
                     const struct dcmf_dcstack_settings *settings,
                     const struct dcmf_dcstack_callbacks *cbs, void *user);

/*
 * Reports every open channel through |channel_closed|, aborts the SCTP
 * association (its ABORT leaves through |send_datagram| while DTLS is
 * up) and frees everything. NULL is allowed. Not from a callback.
 */
void dcmf_dcstack_del(struct dcmf_dcstack *stack);

/* The channel table, to declare, open, find, send on and close channels
 * (datachannel.h). Valid until dcmf_dcstack_del. */
struct dcmf_dc *dcmf_dcstack_dc(struct dcmf_dcstack *stack);

/* Sets the fingerprints the peer's certificate must match (copied); see
 * dcmf_dtls_set_remote_fingerprints for the errors. */
int dcmf_dcstack_set_remote_fingerprints(struct dcmf_dcstack *stack,
                                         const struct dcmf_fingerprint_set *fp);

/* Client role: starts the handshake (once the fingerprints are known).
 * No effect for a server. */
void dcmf_dcstack_start(struct dcmf_dcstack *stack);

/*
 * Feeds one received DTLS datagram (first byte 20-63), and through it
 * whatever SCTP and the channels make of it (callbacks run from here).
 * Returns 0 or an error of dcmf_dtls_recv (the datagram was dropped).
 */
int dcmf_dcstack_recv(struct dcmf_dcstack *stack, const uint8_t *data,
                      size_t len);

/* When DTLS next needs dcmf_dcstack_handle_expiry, in the clock of |now|
 * (milliseconds); UINT64_MAX when no timer runs. */
uint64_t dcmf_dcstack_next_expiry(struct dcmf_dcstack *stack, uint64_t now);

/* Lets DTLS retransmit a flight whose timer expired by |now|. */
void dcmf_dcstack_handle_expiry(struct dcmf_dcstack *stack, uint64_t now);

/* After a dcmf_sctp_stack_tick: delivers what usrsctp's timers produced
 * and retries a waiting sender (dcmf_sctp_handle_tick). */
void dcmf_dcstack_handle_tick(struct dcmf_dcstack *stack);

/* Returns 1 once DTLS is connected (and until it fails or closes). */
int dcmf_dcstack_connected(const struct dcmf_dcstack *stack);

/* The negotiated DTLS cipher, or "" before the handshake ends. */
const char *dcmf_dcstack_cipher(const struct dcmf_dcstack *stack);

#endif
