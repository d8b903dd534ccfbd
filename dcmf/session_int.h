/*
 * session_int.h - what the parts of one session share inside dcmf/: the
 * session object and the DC relay glue (session_relay.c). Not for other
 * modules: they see dcmf_session only through session.h.
 */
#ifndef DCMF_SESSION_INT_H
#define DCMF_SESSION_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "datachannel.h"
#include "dcstack.h"
#include "ice.h"
#include "media.h"
#include "relayq.h"
#include "session.h"
#include "tickq.h"
#include "udpproxy.h"
#include "worker.h"

#define STAT_ADD(s, field, n)                                                  \
  atomic_fetch_add_explicit(&(s)->env.stats->field, (n), memory_order_relaxed)

struct dcmf_session {
  struct dcmf_session_env env;
  struct dcmf_media_desc desc;
  uv_udp_t udp;
  uv_timer_t timer;
  int handles_open;
  struct dcmf_ice ice;
  struct dcmf_dcstack *stack; /* DTLS, SCTP, channels; NULL: none */
  struct dcmf_dc *dc;         /* the stack's channel table; NULL: none */
  struct dcmf_tickq_node tick; /* in env.ticks while work waits a tick */
  uv_timer_t flush_timer; /* sends what proxies handed the engines */
  struct dcmf_udpproxy *mdc2; /* UDP-proxy mode legs; NULL: none */
  struct dcmf_udpproxy_counters udp_published;
  /* DC relay: what the twin sent that our phone could not take yet. */
  struct dcmf_relayq relay_in;
  int relay_overflow; /* dropping for lack of room; logged once */
  size_t relay_pub_count, relay_pub_bytes; /* in the worker's gauges */
  int assoc_closing;  /* inside association_free */
  int oversize_logged; /* UDP-proxy: an oversize message was logged */
  struct sockaddr_storage dtls_peer; /* where DTLS goes */
  int has_dtls_peer;
  int dtls_reported; /* an outcome event was raised for this association */
  int teardown; /* the association failed: rebuild only on a new tls-id */
};

/* "context/termination/media", for log lines. */
const char *dcmf_session_key_str(const struct dcmf_session *s, char *buf,
                                 size_t cap);

/* Asks for a visit after the next SCTP tick (env.ticks): something waits
 * that only time moves on. Cheap when already asked. */
void dcmf_session_want_tick(struct dcmf_session *s);

/* ---- DC relay (session_relay.c) ---- */

/* Returns 1 if channel |ch| of |s| is relayed to the twin DC media. */
int dcmf_session_is_relayed(struct dcmf_session *s,
                            const struct dcmf_dc_channel *ch);

/* A message from our phone on relayed stream |sid|: on to the twin. */
void dcmf_session_relay_forward(struct dcmf_session *s, uint16_t sid,
                                int binary, const uint8_t *data, size_t len);

/* Sends what the twin left for our phone, in order (a channel opened, or
 * SCTP has room again). */
void dcmf_session_relay_drain(struct dcmf_session *s);

/* Our channel |sid| closed: its twin closes too. */
void dcmf_session_relay_close(struct dcmf_session *s, uint16_t sid);

/* On the session's tick visit: drains again if a drain left a wake-up
 * over, counts and logs streams of our queue that stopped moving
 * (dcmf_dc_relay_stalls_total). A non-empty queue asks for the next
 * visit too. */
void dcmf_session_relay_tick(struct dcmf_session *s);

/* Frees our queue and takes it out of the worker's gauges. */
void dcmf_session_relay_free(struct dcmf_session *s);

#endif
