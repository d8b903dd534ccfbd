/*
 * assoc.h - the association kinds DTLS can carry (layer: proto), and the
 * table of hooks (struct dcmf_assoc_ops) through which its owner drives
 * one: a session of dcmfd, a dcmf-ue phone, a test.
 *
 * DTLS sets up keys and, for some kinds, carries the data. What it
 * carries decides how the owner demultiplexes its port (RFC 7983) and
 * what a flow is for the services (service.h):
 *
 *   kind                  on the port besides DTLS    a flow is
 *   DCMF_ASSOC_SCTP       nothing                     a data channel
 *   DCMF_ASSOC_SRTP       SRTP/SRTCP, 128-191         an SSRC
 *   DCMF_ASSOC_DTLS_DATA  nothing                     the one DTLS stream
 *
 * DCMF_ASSOC_SCTP (assoc_sctp.h), DCMF_ASSOC_SRTP (assoc_srtp.h) and
 * DCMF_ASSOC_DTLS_DATA (assoc_dtlsdata.h) are implemented;
 * dcmf_assoc_kind_ops() is the registry, and a media asking for a kind
 * it does not hold fails to start (DCMF_ERR_INVALID, session.h).
 *
 * Why in proto and not in media: the DTLS→SCTP→channel stack is written
 * once (dcstack.h) and is used by dcmfd's sessions (media), by dcmf-ue
 * (tools) and by the in-memory stack test; dcstack.c lives in proto, so
 * the kinds it carries and their interface live here too. A kind is an
 * engine like the others of this layer: it is configured with a
 * proto-level struct dcmf_assoc_settings, not with the worker message
 * (media.h), which the session translates. The flow types services see
 * (struct dcmf_svc_flow, enum dcmf_svc_flow_state) are defined here
 * under their service names because the association is what makes
 * them; the session hands the association's flow to a service as it is.
 *
 * A kind does no I/O and reads no clock: bytes go down to DTLS and up
 * to the owner through struct dcmf_assoc_events, and timer work is
 * asked for (|need_tick|) rather than polled, so an idle association
 * costs its owner nothing per tick. Everything runs on the owner's
 * thread. Events are called from inside the kind's hooks (and, for
 * SCTP, from dcmf_sctp_* deliveries); they must not destroy the
 * association: the owner tears it down from its loop afterwards.
 */
#ifndef DCMF_ASSOC_H
#define DCMF_ASSOC_H

#include <stddef.h>
#include <stdint.h>

#include "sctp.h"
#include "srtp.h"

enum dcmf_assoc_kind {
  DCMF_ASSOC_SCTP = 0,  /* SCTP with data channels (RFC 8831) */
  DCMF_ASSOC_SRTP,      /* DTLS-SRTP keying, SRTP beside DTLS (RFC 5764) */
  DCMF_ASSOC_DTLS_DATA, /* raw DTLS application data (UDPTL, RFC 7345) */
};

#define DCMF_ASSOC_KINDS 3 /* entries of enum dcmf_assoc_kind */

/* Where a flow of an association stands (dcmf_svc_host.flow_state). */
enum dcmf_svc_flow_state {
  DCMF_SVC_NO_ASSOC = 0, /* no association now (none yet, failed, or
                            being torn down); said by the owner */
  DCMF_SVC_FLOW_ABSENT,  /* the association has no such flow */
  DCMF_SVC_FLOW_PENDING, /* declared, not open yet */
  DCMF_SVC_FLOW_OPEN,
};

/* One flow of an association, as its owner and the services see it.
 * Strings are valid for the call (and, for an open flow, until it
 * closes). */
struct dcmf_svc_flow {
  enum dcmf_assoc_kind kind;
  uint32_t id;          /* SCTP: the stream id (< 65536); SRTP: the SSRC */
  int negotiated;       /* declared in SDP rather than opened in-band */
  const char *label;    /* "" when the kind has none */
  const char *protocol; /* SCTP: the data channel subprotocol */
};

/* A flow declared in SDP (SCTP: a channel of a=dcmap). */
struct dcmf_assoc_stream {
  uint32_t id;                      /* SCTP: the stream id */
  const char *protocol;             /* borrowed for the call */
  struct dcmf_sctp_reliability rel; /* SCTP */
  uint16_t priority;                /* SCTP */
};

/* What |create| and |update| read (borrowed for the call). Each kind
 * reads its own members. */
struct dcmf_assoc_settings {
  /* SCTP: ports and sizes. sctp.max_streams is the ceiling of the
   * streams the INIT asks for; the kind sizes the INIT itself
   * (dcmf_assoc_sctp_init_streams, assoc_sctp.h). */
  struct dcmf_sctp_settings sctp;
  /* SCTP: the floor of the streams the INIT asks for (room for channels
   * the phone opens in-band, or a later update declares); 0: the INIT
   * asks for sctp.max_streams. */
  uint16_t sctp_min_streams;
  /* SRTP: the crypto of the engine |connected| makes (srtp.h) */
  enum dcmf_srtp_backend srtp_backend;
  const struct dcmf_assoc_stream *streams; /* the declared flows */
  size_t n_streams;
};

/* What an association moved to (|state_changed|). */
enum dcmf_assoc_state {
  DCMF_ASSOC_UP,   /* flows can open now (SCTP: the association is up) */
  DCMF_ASSOC_DOWN, /* lost or shut down; its flows were reported closed */
};

/*
 * What an association reports. The first group goes down toward DTLS
 * and is called with |lower|; the second goes up to the owner of the
 * flows and is called with |upper| (two pointers, so that a message
 * reaches the owner in one call even when a DTLS wrapper such as
 * dcstack.c sits between). Pointers passed are borrowed for the call.
 */
struct dcmf_assoc_events {
  /* Bytes to protect and send as DTLS application data. */
  void (*dtls_out)(void *lower, const uint8_t *data, size_t len);
  /* A datagram to send beside DTLS (SRTP), already protected; may be
   * NULL for a kind with no raw range. */
  void (*raw_out)(void *lower, const uint8_t *data, size_t len);
  /* The association went up or down; |reason| is a short English
   * phrase for logs. UP comes before the first |flow_open|, DOWN after
   * the last |flow_closed|. */
  void (*state_changed)(void *lower, enum dcmf_assoc_state state,
                        const char *reason);
  /* Output is held for the end of the owner's loop turn: call |flush|
   * then (SCTP with |bundle|: a message waits to share a packet). Once
   * per flush owed. May be NULL for a kind that never holds output. */
  void (*output_pending)(void *lower);
  void *lower;

  /* A flow opened. |slot| is the flow's owner pointer (NULL now), kept
   * by the association and passed back with every later event of the
   * flow; the owner may set it before it returns. Returns 0 to keep the
   * flow, -1 to refuse it (the association closes it cleanly). */
  int (*flow_open)(void *upper, const struct dcmf_svc_flow *flow, void **slot);
  /* A message on an open flow; |binary| as in dcmf_svc_host.send. */
  void (*flow_message)(void *upper, const struct dcmf_svc_flow *flow,
                       void *slot, int binary, const uint8_t *data, size_t len);
  /* An open flow closed (either side, or the association ended); the
   * flow and its |slot| are gone after this returns. */
  void (*flow_closed)(void *upper, const struct dcmf_svc_flow *flow,
                      void **slot);
  /* Room to send again after a send returned DCMF_ERR_EXHAUSTED. May be
   * NULL. */
  void (*writable)(void *upper);
  /* Call |tick| after the owner's next SCTP stack tick (sctp.h): once
   * per need, never for an idle association. May be NULL: then call
   * |tick| after every stack tick. */
  void (*need_tick)(void *upper);
  void *upper;
};

/* What |connected| learns of the DTLS association that came up. */
struct dcmf_assoc_dtls {
  /* The RFC 5705 exporter of the association: |len| bytes for |label|
   * (no context) into |out|. Returns 0 or a negative DCMF_ERR_*. */
  int (*keys)(void *keys_user, const char *label, uint8_t *out, size_t len);
  void *keys_user;
  /* The use_srtp profile the handshake selected (its wire identifier,
   * enum dcmf_srtp_profile of srtp.h), 0 when none. */
  uint16_t srtp_profile;
  int dtls_server; /* our DTLS role: 1 server (a=setup:passive), 0 client */
};

/* What an association counts of itself, for its owner's metrics
 * (|stats| of its ops; dcmf_svc_host.assoc_stats). Kinds fill what they
 * have and leave the rest 0. */
struct dcmf_assoc_stats {
  int keyed; /* SRTP: keys derived from DTLS, media may flow */
  /* SRTP: the protection profile in use ("SRTP_AEAD_AES_256_GCM",
   * srtp.h), "" before |keyed|. Static. */
  const char *srtp_profile;
  /* SRTP: access packets (SRTP and SRTCP) refused inbound by the
   * engine (struct dcmf_srtp_stats of DCMF_SRTP_IN). */
  uint64_t srtp_auth;
  uint64_t srtp_replay;
  uint64_t srtp_malformed;
  /* SRTP: access packets that passed under the previous keys after a
   * re-key (the fallback, srtp.h); also among those forwarded. */
  uint64_t srtp_previous;
};

/* The hooks of one association kind. Each takes the state its |create|
 * made. None does I/O or reads a clock. */
struct dcmf_assoc_ops {
  enum dcmf_assoc_kind kind;
  const char *name; /* for logs: "SCTP" */
  /* First bytes (RFC 7983) this kind takes beside STUN and DTLS,
   * inclusive; raw_min > raw_max: none. */
  uint8_t raw_min, raw_max;
  /* The use_srtp profiles (OpenSSL's colon-separated names, our order
   * of preference) the DTLS association of this kind offers and
   * accepts; NULL: the DTLS context's list (dtls.h), which data-channel
   * associations use. Static. */
  const char *srtp_profiles;
  /* 1: the association outlives its DTLS association (SRTP). A new DTLS
   * association (RFC 8842: a new tls-id) keys the same flows through a
   * second |connected|, and until then the kind goes on with the keys
   * it has (dcmf_dcstack_renew, dcstack.h). 0: a new DTLS association
   * needs a new association of the kind (SCTP: its state lives inside
   * DTLS). */
  int rekeys;
  /* Creates the association (nothing is sent before |connected|) with
   * the flows of |settings| declared. |ev| is copied. Returns 0,
   * DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM; nothing is left behind then. */
  int (*create)(void **assoc, const struct dcmf_assoc_settings *settings,
                const struct dcmf_assoc_events *ev);
  /* The description changed: declares the flows of |settings| that are
   * new (the others stay as they are). May be NULL. Returns 0, or
   * DCMF_ERR_TOO_LARGE when a declared flow is beyond what this
   * association can carry (SCTP: a stream id at or above the stream
   * count its INIT fixed); such a flow is declared all the same and
   * stays pending, and the next association (a new tls-id) is sized for
   * it. */
  int (*update)(void *assoc, const struct dcmf_assoc_settings *settings);
  /* Reports every open flow closed, tells the peer (SCTP: an ABORT
   * through |dtls_out|, while DTLS is still up) and frees. */
  void (*destroy)(void *assoc);
  /* DTLS is connected: SCTP connects; SRTP derives its keys through
   * |dtls| (borrowed for the call). A kind with |rekeys| may be told
   * again, by the owner of a new DTLS association that keys the same
   * flows (SRTP: a re-key). Returns 0, or DCMF_ERR_SYSTEM: the
   * association could not start (or re-key) and the owner tears it
   * down. */
  int (*connected)(void *assoc, const struct dcmf_assoc_dtls *dtls);
  /* Decrypted DTLS application data. */
  void (*dtls_in)(void *assoc, const uint8_t *data, size_t len);
  /* A datagram of the raw range; NULL when the range is empty. */
  void (*raw_in)(void *assoc, const uint8_t *data, size_t len);
  /* Sends on flow |id| with the errors of dcmf_svc_host.send
   * (service.h): 0, DCMF_ERR_EXHAUSTED (wait for |writable|),
   * DCMF_ERR_NOT_FOUND (no such open flow), DCMF_ERR_INVALID (not up),
   * DCMF_ERR_SYSTEM or DCMF_ERR_NOMEM. |data| is borrowed for the
   * call. */
  int (*send)(void *assoc, uint32_t id, int binary, const uint8_t *data,
              size_t len);
  /* Closes flow |id| from our side; its |flow_closed| runs before this
   * returns. No effect on a flow that is not there. */
  void (*close_flow)(void *assoc, uint32_t id);
  /* DCMF_SVC_FLOW_ABSENT, _PENDING or _OPEN. */
  enum dcmf_svc_flow_state (*flow_state)(void *assoc, uint32_t id);
  /* Calls |fn| for every open flow, with its slot. |fn| may open a
   * service on the flow and send on it; it must not open or close
   * flows. */
  void (*foreach_open)(void *assoc,
                       void (*fn)(void *user, const struct dcmf_svc_flow *flow,
                                  void **slot),
                       void *user);
  /* After the stack tick that follows a |need_tick|; may be NULL. */
  void (*tick)(void *assoc);
  /* Ends what a re-key kept of the keys it replaced (SRTP: the peer's
   * previous keys, dcmf_srtp_drop_previous of srtp.h); the owner calls it
   * DCMF_SRTP_FALLBACK_MS after |connected| re-keyed. Returns 0, or
   * DCMF_ERR_NOT_FOUND when nothing is kept. May be NULL (a kind that
   * does not re-key). */
  int (*drop_previous_keys)(void *assoc);
  /* At the end of the loop turn, after |output_pending|: sends what was
   * held. May be NULL (a kind that holds nothing). */
  void (*flush)(void *assoc);
  /* Fills |*out| (zeroed by the caller) with the association's own
   * counters since |create|. May be NULL (a kind that counts nothing
   * for its owner). */
  void (*stats)(void *assoc, struct dcmf_assoc_stats *out);
};

/* The registry: the table of |kind|, or NULL when this build has no
 * implementation of it. */
const struct dcmf_assoc_ops *dcmf_assoc_kind_ops(enum dcmf_assoc_kind kind);

#endif
