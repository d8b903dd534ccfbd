/*
 * datachannel.h - WebRTC data channels (RFC 8831) on one SCTP
 * association: channels negotiated in SDP (a=dcmap, from the Nmf_MRM
 * dcMedia.streams) and channels opened in-band with DCEP (RFC 8832).
 *
 * It maps messages to and from PPIDs (51 string, 53 binary, 56/57 empty),
 * answers DATA_CHANNEL_OPEN with DATA_CHANNEL_ACK (later, on the writable
 * callback or before the channel's first message, if SCTP is full at
 * that moment), and closes channels by
 * resetting the outgoing stream (RFC 8831 6.7), answering a peer's reset
 * with ours. No I/O of its own: it sits on a dcmf_sctp association.
 */
#ifndef DCMF_DATACHANNEL_H
#define DCMF_DATACHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "sctp.h"

#define DCMF_DC_LABEL_MAX 128

struct dcmf_dc_channel {
  uint16_t sid;
  int negotiated; /* from SDP rather than DCEP */
  int open;
  char label[DCMF_DC_LABEL_MAX];
  char protocol[DCMF_DC_LABEL_MAX]; /* a=dcmap subprotocol */
  struct dcmf_sctp_reliability rel;
  uint16_t priority;
  void *service; /* whatever the owner attached in channel_open */
};

struct dcmf_dc_callbacks {
  /* |ch| opened. Return 0 to keep it (set ch->service as needed), or -1
   * when nobody serves it: it is then closed cleanly. */
  int (*channel_open)(void *user, struct dcmf_dc_channel *ch);
  /* A message; |binary| says PPID 53/57 rather than 51/56. Empty messages
   * arrive with |len| 0. */
  void (*channel_message)(void *user, struct dcmf_dc_channel *ch, int binary,
                          const uint8_t *data, size_t len);
  /* |ch| is closed (by either side); it is freed after this returns. */
  void (*channel_closed)(void *user, struct dcmf_dc_channel *ch);
};

struct dcmf_dc_counters {
  uint64_t dcep_opened, dcep_refused, malformed, unknown_stream;
};

struct dcmf_dc;

/* Creates an empty channel table on |sctp| (borrowed). */
int dcmf_dc_new(struct dcmf_dc **dc, struct dcmf_sctp *sctp,
                const struct dcmf_dc_callbacks *cbs, void *user);

/* Sends nothing on the wire (the association goes away), reports every
 * open channel through channel_closed, and frees. */
void dcmf_dc_del(struct dcmf_dc *dc);

/* Calls |fn| for every channel, open or not. |fn| must not add or remove
 * channels. */
void dcmf_dc_foreach(struct dcmf_dc *dc,
                     void (*fn)(void *user, struct dcmf_dc_channel *ch),
                     void *user);

/*
 * Declares an SDP-negotiated channel. It opens (channel_open) once the
 * association is up. Returns 0, DCMF_ERR_INVALID (sid 65535 or already
 * used) or DCMF_ERR_NOMEM.
 */
int dcmf_dc_add_negotiated(struct dcmf_dc *dc, uint16_t sid,
                           const char *protocol,
                           const struct dcmf_sctp_reliability *rel,
                           uint16_t priority);

/*
 * Opens a channel in-band on stream |sid| (DATA_CHANNEL_OPEN). The
 * channel is usable at once (RFC 8832 6: an ordered channel may send
 * before the ACK). Returns 0, DCMF_ERR_INVALID (stream in use or the
 * association is not up), DCMF_ERR_NOMEM or an error of dcmf_sctp_send.
 */
int dcmf_dc_open(struct dcmf_dc *dc, uint16_t sid, const char *label,
                 const char *protocol,
                 const struct dcmf_sctp_reliability *rel, uint16_t priority);

/* What the association reports; wire these to the dcmf_sctp callbacks.
 * dcmf_dc_on_sctp_writable sends the DATA_CHANNEL_ACKs that found no room
 * (call it before sending anything else on |writable|). */
void dcmf_dc_on_sctp_state(struct dcmf_dc *dc, enum dcmf_sctp_state state);
void dcmf_dc_on_sctp_writable(struct dcmf_dc *dc);
void dcmf_dc_on_sctp_message(struct dcmf_dc *dc, uint16_t sid, uint32_t ppid,
                             const uint8_t *data, size_t len);
void dcmf_dc_on_sctp_reset(struct dcmf_dc *dc, uint16_t sid);
/* SCTP has room again (its writable callback): sends the
 * DATA_CHANNEL_ACKs that found it full. Call before other senders. */
void dcmf_dc_on_sctp_writable(struct dcmf_dc *dc);

/*
 * Sends a message on an open channel (after the channel's owed
 * DATA_CHANNEL_ACK, if any). Returns 0, DCMF_ERR_NOT_FOUND (no open
 * channel), DCMF_ERR_EXHAUSTED (send buffer full: wait for the
 * association's writable callback), DCMF_ERR_INVALID (the association is
 * not up), DCMF_ERR_SYSTEM or DCMF_ERR_NOMEM (see dcmf_sctp_send).
 */
int dcmf_dc_send(struct dcmf_dc *dc, uint16_t sid, int binary,
                 const uint8_t *data, size_t len);

/* Closes a channel from our side (stream reset); channel_closed runs at
 * once. */
void dcmf_dc_close(struct dcmf_dc *dc, uint16_t sid);

/* Looks up an open or pending channel. */
struct dcmf_dc_channel *dcmf_dc_find(struct dcmf_dc *dc, uint16_t sid);

const struct dcmf_dc_counters *dcmf_dc_counters(const struct dcmf_dc *dc);

#endif
