/*
 * assoc.h - the association kinds a session's DTLS can carry (layer:
 * media), chosen per media (dcmf_media_desc.assoc).
 *
 * DTLS sets up keys and, for some kinds, carries the data. What it
 * carries decides how a session demultiplexes the port (RFC 7983) and
 * what a flow is for the services (service.h):
 *
 *   kind                  on the port besides DTLS    a flow is
 *   DCMF_ASSOC_SCTP       nothing                     a data channel
 *   DCMF_ASSOC_SRTP       SRTP/SRTCP, 128-191         an SSRC
 *   DCMF_ASSOC_DTLS_DATA  nothing                     the one DTLS stream
 *
 * Only DCMF_ASSOC_SCTP is implemented today, and the session calls it
 * directly (the DTLS→SCTP→channel stack of dcstack.h), not through the
 * tables below: struct dcmf_assoc_ops and struct dcmf_assoc_events are
 * the draft of the interface the e2ae kinds will plug into, after which
 * SCTP moves behind it too. Services are written against struct
 * dcmf_svc_flow already, so a new kind needs no edit to them. A media
 * asking for a kind that has no implementation fails to start
 * (DCMF_ERR_INVALID).
 */
#ifndef DCMF_ASSOC_H
#define DCMF_ASSOC_H

#include <stddef.h>
#include <stdint.h>

enum dcmf_assoc_kind {
  DCMF_ASSOC_SCTP = 0,  /* SCTP with data channels (RFC 8831) */
  DCMF_ASSOC_SRTP,      /* DTLS-SRTP keying, SRTP beside DTLS (RFC 5764) */
  DCMF_ASSOC_DTLS_DATA, /* raw DTLS application data (UDPTL, RFC 7345) */
};

/* Where a flow of an association stands (dcmf_svc_host.flow_state). */
enum dcmf_svc_flow_state {
  DCMF_SVC_NO_ASSOC = 0, /* no association now (none yet, failed, or
                            being torn down) */
  DCMF_SVC_FLOW_ABSENT,  /* the association has no such flow */
  DCMF_SVC_FLOW_PENDING, /* declared, not open yet */
  DCMF_SVC_FLOW_OPEN,
};

struct dcmf_svc_flow;    /* service.h */
struct dcmf_media_desc;  /* media.h */

/* What an association reports to its session. Runs on the session's
 * thread, from inside the association's calls; pointers are borrowed
 * for the call. */
struct dcmf_assoc_events {
  /* Bytes to protect and send as DTLS application data. */
  void (*dtls_out)(void *user, const uint8_t *data, size_t len);
  /* A datagram to send beside DTLS (SRTP), already protected. */
  void (*raw_out)(void *user, const uint8_t *data, size_t len);
  /* A flow opened; returns 0 to keep it, -1 to refuse it. */
  int (*flow_open)(void *user, const struct dcmf_svc_flow *flow);
  void (*flow_message)(void *user, const struct dcmf_svc_flow *flow,
                       int binary, const uint8_t *data, size_t len);
  void (*flow_closed)(void *user, const struct dcmf_svc_flow *flow);
  /* Room to send again after a send returned DCMF_ERR_EXHAUSTED. */
  void (*writable)(void *user);
  /* |tick| is needed after the worker's next tick (as |need_tick| in
   * sctp.h): an idle association is never ticked. */
  void (*need_tick)(void *user);
};

/* The hooks an association kind provides. Each takes the state its
 * |create| made; none does I/O or reads a clock (the session does). */
struct dcmf_assoc_ops {
  enum dcmf_assoc_kind kind;
  /* First bytes (RFC 7983) this kind takes beside DTLS, inclusive;
   * raw_min > raw_max: none. */
  uint8_t raw_min, raw_max;
  /* Creates the association state for the media |desc| (read during
   * the call: ports, streams, sizes). Returns 0, DCMF_ERR_NOMEM or
   * DCMF_ERR_SYSTEM. |ev| and |user| are borrowed until |destroy|. */
  int (*create)(void **assoc, const struct dcmf_media_desc *desc,
                const struct dcmf_assoc_events *ev, void *user);
  /* The description changed (new negotiated streams); may be NULL. */
  void (*update)(void *assoc, const struct dcmf_media_desc *desc);
  /* Frees; reports every open flow closed first. */
  void (*destroy)(void *assoc);
  /* DTLS is connected: SCTP connects, SRTP derives its keys through
   * |keys| (RFC 5705 exporter: |len| bytes for |label| into |out|; 0 or
   * a negative error). Returns 0, or a negative error: the association
   * failed and the session tears it down. */
  int (*connected)(void *assoc,
                   int (*keys)(void *user, const char *label, uint8_t *out,
                               size_t len),
                   void *keys_user);
  /* Decrypted DTLS application data. */
  void (*dtls_in)(void *assoc, const uint8_t *data, size_t len);
  /* A datagram of the raw range; may be NULL when the range is empty. */
  void (*raw_in)(void *assoc, const uint8_t *data, size_t len);
  /* Sends on flow |id|, with the errors of dcmf_svc_host.send
   * (service.h); the session passes services' sends through here. */
  int (*send)(void *assoc, uint32_t id, int binary, const uint8_t *data,
              size_t len);
  void (*close_flow)(void *assoc, uint32_t id);
  /* As dcmf_svc_host.flow_state. */
  enum dcmf_svc_flow_state (*flow_state)(void *assoc, uint32_t id);
  /* After the worker's tick, once per |need_tick|; may be NULL. */
  void (*tick)(void *assoc);
};

#endif
