/*
 * ue.h - one simulated DCMTSI phone for dcmf-ue: a UDP socket, an ICE
 * controlling agent that nominates the MF's only candidate, a DTLS client,
 * SCTP with the negotiated bootstrap channel (id 0, "http"), and an
 * HTTP/1.1 client on it. It reuses dcmfd's engines (stun, and the
 * DTLS/SCTP/channel stack of dcstack.h). Glue on one libuv loop.
 */
#ifndef DCMF_UE_H
#define DCMF_UE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dtls.h"
#include "tickq.h"

/* What the MF told the IMS AS, as far as the phone needs it. */
struct dcmf_ue_remote {
  struct sockaddr_storage addr; /* localMbEndpoint */
  char ufrag[64], pwd[64];      /* localIceInfo */
  struct dcmf_fingerprint_set fingerprint;
  uint16_t sctp_port;
  int mf_is_dtls_server; /* securitySetup PASSIVE */
};

struct dcmf_ue;

struct dcmf_ue_callbacks {
  /* The channel is open: requests may be sent. */
  void (*ready)(void *user, struct dcmf_ue *ue);
  /* The first bytes of a response arrived. */
  void (*first_byte)(void *user, struct dcmf_ue *ue);
  /* A whole response arrived; |body| is valid for the call. */
  void (*response)(void *user, struct dcmf_ue *ue, int status,
                   const char *head, const uint8_t *body, size_t len);
  /* Something failed; |why| is a short phrase. */
  void (*failed)(void *user, struct dcmf_ue *ue, const char *why);
};

/*
 * Creates a phone with a UDP socket bound to 127.0.0.1 (or |bind_addr|).
 * Its ICE credentials and the port are available at once (for the create
 * request). The phone joins |ticks| (borrowed; the caller runs it after
 * each dcmf_sctp_stack_tick) whenever its SCTP association needs the
 * tick. Returns 0 or a negative error.
 */
int dcmf_ue_new(struct dcmf_ue **ue, uv_loop_t *loop,
                struct dcmf_dtls_ctx *dtls_ctx, struct dcmf_tickq *ticks,
                const char *bind_addr, const struct dcmf_ue_callbacks *cbs,
                void *user);

/* Uses stream |sid| (negotiated, subprotocol "http") instead of the
 * bootstrap stream 0. Call before dcmf_ue_connect. */
void dcmf_ue_set_stream(struct dcmf_ue *ue, uint16_t sid);

/* Bounds each wait of the phone: from dcmf_ue_connect until the channel
 * is open, and from each request until its whole response. When |ms|
 * pass, |failed| runs ("no response within ..."). 0 (the default): no
 * bound. Call before dcmf_ue_connect. */
void dcmf_ue_set_timeout(struct dcmf_ue *ue, uint64_t ms);

/* After ICE, a consent check (RFC 7675) goes out every |interval_ms|
 * (0: none), and the phone fails ("nothing from the MF for ...") when no
 * datagram came from the MF for |silence_ms|. Default 1 s and 10 s. A
 * closed MF port (ICMP port unreachable in answer to any datagram the
 * phone sends: its socket is connected to the MF) fails it at once. Call
 * before dcmf_ue_connect. */
void dcmf_ue_set_consent(struct dcmf_ue *ue, uint64_t interval_ms,
                         uint64_t silence_ms);

/* Our ufrag, pwd and local UDP port, for the Nmf_MRM create request. */
const char *dcmf_ue_ufrag(const struct dcmf_ue *ue);
const char *dcmf_ue_pwd(const struct dcmf_ue *ue);
uint16_t dcmf_ue_port(const struct dcmf_ue *ue);

/* Starts ICE (with USE-CANDIDATE), then DTLS and SCTP toward |remote|.
 * With |no_ice| the phone behaves like an ICE-lite peer of an ICE-lite MF:
 * no checks at all, DTLS straight to the signalled address. Once per
 * phone. Returns 0 or DCMF_ERR_SYSTEM. */
int dcmf_ue_connect(struct dcmf_ue *ue, const struct dcmf_ue_remote *remote,
                    int no_ice);

/* Sends "GET |path|" on the bootstrap channel. */
int dcmf_ue_get(struct dcmf_ue *ue, const char *path);

/* Sends "POST |path|" with |body| (|len| bytes, sent as its own
 * message after the head) on the bootstrap channel. */
int dcmf_ue_post(struct dcmf_ue *ue, const char *path, const char *body,
                 size_t len);

/* When the first STUN check left, in uv_hrtime() nanoseconds (0 before). */
uint64_t dcmf_ue_started_ns(const struct dcmf_ue *ue);

/* Closes everything; frees once libuv lets go. */
void dcmf_ue_close(struct dcmf_ue *ue);

#endif
