/*
 * dcstack.h - DTLS carrying one association (assoc.h), wired once for
 * dcmfd's sessions, dcmf-ue's phones and the in-memory tests. With the
 * SCTP kind (assoc_sctp.h, the default) it is the WebRTC data-channel
 * stack: DTLS carrying SCTP carrying data channels (RFC 8261, 8831,
 * 8832).
 *
 * It owns a DTLS engine and the association, and does the plumbing
 * between them: DTLS application data goes into the association, what
 * the association sends goes out through DTLS (or beside it, for a kind
 * with a raw range), the association starts when DTLS connects (with
 * the RFC 5705 exporter for kinds that derive keys), and DTLS and
 * association states reach the owner as one sequence. For a kind that
 * re-keys (SRTP) the DTLS engine can be replaced under the association
 * (dcmf_dcstack_renew, a new tls-id). The flows' events
 * (open, message, closed, writable, need_tick) go from the association
 * to the owner's callbacks directly, without passing through here.
 *
 * No I/O: ciphertext datagrams leave through |send_datagram| and come in
 * through dcmf_dcstack_recv (and dcmf_dcstack_recv_raw); time comes in as
 * |now| (milliseconds on the owner's monotonic clock) for DTLS
 * retransmission. The usrsctp stack itself (dcmf_sctp_stack_init/tick)
 * stays with the owner's loop.
 *
 * Callbacks must not delete the stack (the engines are on the call
 * stack): tear down from the owner's loop afterwards.
 */
#ifndef DCMF_DCSTACK_H
#define DCMF_DCSTACK_H

#include <stddef.h>
#include <stdint.h>

#include "assoc.h"
#include "datachannel.h"
#include "dtls.h"
#include "fingerprint.h"

enum dcmf_dcstack_state {
  DCMF_DCSTACK_DTLS_CONNECTED, /* the association is being started */
  DCMF_DCSTACK_DTLS_FAILED,    /* fatal alert or bad fingerprint */
  DCMF_DCSTACK_DTLS_CLOSED,    /* close_notify received */
  DCMF_DCSTACK_ASSOC_UP,       /* flows open now (SCTP: association up) */
  DCMF_DCSTACK_ASSOC_DOWN,     /* the association was lost or shut down */
  DCMF_DCSTACK_ASSOC_FAILED,   /* the association could not be started */
};

/* Every member is required but |writable| and |need_tick|. Flow events
 * are those of struct dcmf_assoc_events (assoc.h), called with |user|. */
struct dcmf_dcstack_callbacks {
  /* One datagram for the peer (DTLS, or a raw one of the kind); |data|
   * is valid for the call. */
  void (*send_datagram)(void *user, const uint8_t *data, size_t len);
  /* The stack moved to |state|. |reason| is a short English phrase for
   * logs and events (the DTLS one for DTLS_FAILED). After DTLS_FAILED
   * and DTLS_CLOSED the stack carries nothing more: the owner deletes it
   * from its loop (or keeps it, as a record, until then). */
  void (*state_changed)(void *user, enum dcmf_dcstack_state state,
                        const char *reason);
  int (*flow_open)(void *user, const struct dcmf_svc_flow *flow, void **slot);
  void (*flow_message)(void *user, const struct dcmf_svc_flow *flow, void *slot,
                       int binary, const uint8_t *data, size_t len);
  void (*flow_closed)(void *user, const struct dcmf_svc_flow *flow,
                      void **slot);
  /* Room again after a send said DCMF_ERR_EXHAUSTED (SCTP: the owed
   * DCEP ACKs have gone first). May be NULL. */
  void (*writable)(void *user);
  /* With |coalesce| or the association's bundling (SCTP: |bundle| in
   * struct dcmf_sctp_settings): datagrams are being gathered or a
   * message is held, call dcmf_dcstack_flush at the end of the loop
   * turn. Called once per flush owed. Required for either (without it
   * both settings are ignored); may be NULL otherwise. */
  void (*output_pending)(void *user);
  /* Call dcmf_dcstack_handle_tick after the next dcmf_sctp_stack_tick
   * (see |need_tick| in sctp.h). Called once per need. May be NULL: then
   * call dcmf_dcstack_handle_tick after every stack tick. */
  void (*need_tick)(void *user);
};

struct dcmf_dcstack_settings {
  struct dcmf_dtls_ctx *dtls_ctx; /* borrowed for the stack's life */
  int dtls_server;                /* our a=setup is passive */
  /* The association kind; NULL: dcmf_assoc_sctp. Borrowed (static). */
  const struct dcmf_assoc_ops *kind;
  struct dcmf_assoc_settings assoc; /* read during dcmf_dcstack_new */
  /* Gather the DTLS records made during a loop turn (SCTP packets with
   * their DATA chunks and SACKs, handshake messages) into as few
   * datagrams as fit the DTLS context's MTU (dcmf_dtls_coalesce); the
   * owner sends them with dcmf_dcstack_flush when |output_pending| asks.
   * Raw datagrams of the kind (SRTP) are not gathered: they leave at
   * once, possibly ahead of records gathered before them.
   * 0: every record is a datagram of its own, sent at once. */
  int coalesce;
};

struct dcmf_dcstack;

/*
 * Creates the stack: DTLS in the role |settings->dtls_server|, offering
 * the kind's use_srtp profiles (its |srtp_profiles|; the context's list
 * when NULL) (nothing is
 * sent before the remote fingerprints are set and, as a client,
 * dcmf_dcstack_start), and an association of the kind waiting for DTLS,
 * with the declared flows of |settings->assoc|. |cbs| is copied; |user|
 * is passed to every callback. Returns 0, DCMF_ERR_NOMEM or
 * DCMF_ERR_SYSTEM (nothing is left behind).
 */
int dcmf_dcstack_new(struct dcmf_dcstack **stack,
                     const struct dcmf_dcstack_settings *settings,
                     const struct dcmf_dcstack_callbacks *cbs, void *user);

/*
 * Destroys the association (which reports every open flow closed and,
 * for SCTP, sends its ABORT through DTLS while DTLS is up), sends what
 * coalescing gathered (the ABORT included) and frees everything. NULL
 * is allowed. Not from a callback.
 */
void dcmf_dcstack_del(struct dcmf_dcstack *stack);

/* The association and its kind, for the owner's calls to the ops
 * (send, close_flow, flow_state, foreach_open, update). Valid until
 * dcmf_dcstack_del. */
void *dcmf_dcstack_assoc(struct dcmf_dcstack *stack);
const struct dcmf_assoc_ops *dcmf_dcstack_kind(const struct dcmf_dcstack *s);

/* With the SCTP kind: the channel table, to declare, open, find, send on
 * and close channels (datachannel.h); NULL with another kind. Valid until
 * dcmf_dcstack_del. */
struct dcmf_dc *dcmf_dcstack_dc(struct dcmf_dcstack *stack);

/* Sets the fingerprints the peer's certificate must match (copied); see
 * dcmf_dtls_set_remote_fingerprints for the errors. */
int dcmf_dcstack_set_remote_fingerprints(struct dcmf_dcstack *stack,
                                         const struct dcmf_fingerprint_set *fp);

/* Client role: starts the handshake (once the fingerprints are known).
 * No effect for a server. */
void dcmf_dcstack_start(struct dcmf_dcstack *stack);

/*
 * A new DTLS association (RFC 8842: a new tls-id, possibly new
 * fingerprints and another role) for the same association of the kind,
 * for a kind with |rekeys| (assoc.h; SRTP). The DTLS engine is replaced
 * by a new one in role |dtls_server| with the certificate of |dtls_ctx|
 * (borrowed for the stack's life), offering the kind's profiles as
 * dcmf_dcstack_new does; the old engine is freed after what it gathered
 * is sent, without a close_notify (the peer's media still runs on it).
 * The owner then sets the new remote fingerprints and, as a client,
 * calls dcmf_dcstack_start, as for a new stack.
 *
 * A kind carried inside DTLS (no raw range: raw DTLS data, T.38) keeps
 * the old DTLS engine itself instead, connected as it was: until the new
 * one connects, the kind's sends go out on it and application-data
 * records (type 23) received are given to it, everything else to the
 * new engine; it is freed (without close_notify) when the new one
 * connects, fails or closes, or itself fails or closes.
 *
 * Until the new DTLS connects, the kind goes on with the keys the old
 * association gave it (RFC 7345 §4.5, RFC 5763 re-offers: media stays
 * on the old association until the new one is up): raw datagrams are
 * taken (dcmf_dcstack_recv_raw) and the kind's sends are protected and
 * sent with them, while dcmf_dcstack_connected says 0 and the cipher,
 * profile and exporter are those of the new DTLS (none yet). When it
 * connects, DTLS_CONNECTED is reported and the kind's |connected| runs
 * again on the same association, which re-keys (SRTP: every SSRC keeps
 * its ROC and SRTCP index, a new SSRC starts at 0; packets protected
 * with the old keys are refused from then on, no overlap) and reports
 * ASSOC_UP again; the flows stay open throughout. If the new DTLS fails
 * or closes instead, the old keys end too (raw datagrams are refused)
 * and DTLS_FAILED or DTLS_CLOSED is reported as for a first one. A
 * renewal before the old DTLS connected just replaces it.
 *
 * Returns 0; DCMF_ERR_INVALID for a kind without |rekeys| (SCTP: the
 * owner makes a new stack, a new SCTP association); DCMF_ERR_NOMEM or
 * DCMF_ERR_SYSTEM (the stack is unchanged). Not from a callback.
 */
int dcmf_dcstack_renew(struct dcmf_dcstack *stack,
                       struct dcmf_dtls_ctx *dtls_ctx, int dtls_server);

/*
 * Ends what the last renewal kept of the keys it replaced (the kind's
 * |drop_previous_keys|: SRTP's fallback, srtp.h). Returns 0, or
 * DCMF_ERR_NOT_FOUND when nothing is kept or the kind keeps nothing.
 */
int dcmf_dcstack_drop_previous_keys(struct dcmf_dcstack *stack);

/*
 * Feeds one received DTLS datagram (first byte 20-63), and through it
 * whatever the association and its flows make of it (callbacks run from
 * here). Returns 0 or an error of dcmf_dtls_recv (the datagram was
 * dropped).
 */
int dcmf_dcstack_recv(struct dcmf_dcstack *stack, const uint8_t *data,
                      size_t len);

/*
 * Feeds one received datagram of the kind's raw range (raw_min..raw_max
 * of its ops). Returns 0, or DCMF_ERR_INVALID when the kind takes none
 * or DTLS is not connected and no renewal runs on the old keys
 * (dcmf_dcstack_renew) (the datagram was dropped).
 */
int dcmf_dcstack_recv_raw(struct dcmf_dcstack *stack, const uint8_t *data,
                          size_t len);

/* When DTLS next needs dcmf_dcstack_handle_expiry, in the clock of |now|
 * (milliseconds); UINT64_MAX when no timer runs. */
uint64_t dcmf_dcstack_next_expiry(struct dcmf_dcstack *stack, uint64_t now);

/* Lets DTLS retransmit a flight whose timer expired by |now|. */
void dcmf_dcstack_handle_expiry(struct dcmf_dcstack *stack, uint64_t now);

/* After a dcmf_sctp_stack_tick, when |need_tick| asked: the kind's |tick|
 * (SCTP: delivers what usrsctp's timers produced and retries a waiting
 * sender, dcmf_sctp_handle_tick). */
void dcmf_dcstack_handle_tick(struct dcmf_dcstack *stack);

/* Sends what the loop turn held back: the association's held message
 * (bundling), then the datagram being gathered (|coalesce|), through
 * |send_datagram|. dcmf_dcstack_del flushes DTLS by itself (the SCTP
 * ABORT goes out; a held message is dropped with the association).
 * Nothing to do without either. */
void dcmf_dcstack_flush(struct dcmf_dcstack *stack);

/* Returns 1 once DTLS is connected (and until it fails or closes, or a
 * renewal replaces it). */
int dcmf_dcstack_connected(const struct dcmf_dcstack *stack);

/* The negotiated DTLS cipher, or "" before the handshake ends. */
const char *dcmf_dcstack_cipher(const struct dcmf_dcstack *stack);

/* The use_srtp profile DTLS selected (dcmf_dtls_srtp_profile): 0 before
 * the handshake ends or when none was. The kind decides what is offered
 * (srtp_profiles of its ops, assoc.h). */
uint16_t dcmf_dcstack_srtp_profile(const struct dcmf_dcstack *stack);

/* The RFC 5705 exporter of the DTLS association (dcmf_dtls_export_keys:
 * 0, DCMF_ERR_INVALID when DTLS is not connected, DCMF_ERR_SYSTEM), for
 * owners and tests that check what a kind derived. */
int dcmf_dcstack_export_keys(struct dcmf_dcstack *stack, const char *label,
                             uint8_t *out, size_t len);

#endif
