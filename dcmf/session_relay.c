/* DC relay glue of a session: messages on a relayed channel go to the
 * channel with the same stream id of the twin DC media's session (found
 * on the same worker thread), or wait in the twin's bounded queue. */
#include <stdio.h>

#include "errors.h"
#include "log.h"
#include "session_int.h"

/* Messages held for one side of a relay, at most (then dropped, counted). */
#define RELAY_QUEUE_BYTES (4u * 1024 * 1024)

static struct dcmf_session *relay_twin(struct dcmf_session *s) {
  if (!s->desc.has_relay || s->env.find_session == NULL) {
    return NULL;
  }
  return s->env.find_session(s->env.find_user, &s->desc.relay);
}

static int relay_send(void *user, uint16_t sid, int binary,
                      const uint8_t *data, size_t len) {
  struct dcmf_session *t = user;
  if (t->dc == NULL || t->assoc_closing) {
    return DCMF_ERR_NOT_FOUND;
  }
  struct dcmf_dc_channel *ch = dcmf_dc_find(t->dc, sid);
  if (ch == NULL) {
    return DCMF_ERR_INVALID; /* no such stream on this side: dropped */
  }
  int rv = dcmf_dc_send(t->dc, sid, binary, data, len);
  if (rv == 0) {
    STAT_ADD(t, relay_messages, 1);
    STAT_ADD(t, relay_bytes, len);
    STAT_ADD(t, messages_out, 1);
    STAT_ADD(t, bytes_out, len);
  }
  return rv;
}

/* Sends what the twin left for our phone, in order. */
void dcmf_session_relay_drain(struct dcmf_session *s) {
  if (s->relay_in.count > 0) {
    STAT_ADD(s, relay_dropped_send,
             dcmf_relayq_drain(&s->relay_in, relay_send, s));
  }
  if (s->relay_in.count == 0) {
    s->relay_overflow = 0;
  }
}

/* A message from our phone on relayed stream |sid|: on to the twin's. */
void dcmf_session_relay_forward(struct dcmf_session *s, uint16_t sid,
                                int binary, const uint8_t *data, size_t len) {
  struct dcmf_session *t = relay_twin(s);
  if (t == NULL) {
    STAT_ADD(s, relay_dropped_no_twin, 1);
    return;
  }
  if (!dcmf_relayq_has(&t->relay_in, sid)) {
    int rv = relay_send(t, sid, binary, data, len);
    if (rv == 0) {
      return;
    }
    if (rv != DCMF_ERR_EXHAUSTED && rv != DCMF_ERR_NOT_FOUND) {
      STAT_ADD(s, relay_dropped_send, 1);
      return;
    }
  }
  /* The twin's channel is not open yet, its send buffer is full, or older
   * messages of this stream still wait: keep order. */
  t->relay_in.max_bytes = RELAY_QUEUE_BYTES;
  if (dcmf_relayq_push(&t->relay_in, sid, binary, data, len) != 0) {
    STAT_ADD(s, relay_dropped_queue, 1);
    if (!t->relay_overflow) { /* once per episode, not per message */
      char k[300];
      t->relay_overflow = 1;
      DCMF_LOGW(s->env.log, "relay",
                "%s: %zu bytes already wait for the twin; dropping messages",
                dcmf_session_key_str(t, k, sizeof(k)), t->relay_in.bytes);
    }
  }
}

/* Our channel |sid| closed: its twin closes too (RFC 8831 6.7 reset). */
void dcmf_session_relay_close(struct dcmf_session *s, uint16_t sid) {
  dcmf_relayq_purge(&s->relay_in, sid);
  struct dcmf_session *t = relay_twin(s);
  if (t == NULL || t->dc == NULL || t->assoc_closing) {
    return;
  }
  /* What our phone sent before it closed goes first. */
  dcmf_session_relay_drain(t);
  struct dcmf_dc_channel *c = dcmf_dc_find(t->dc, sid);
  if (c != NULL && c->open) {
    dcmf_dc_close(t->dc, sid);
  }
}

int dcmf_session_is_relayed(struct dcmf_session *s,
                            const struct dcmf_dc_channel *ch) {
  return s->desc.has_relay && ch->negotiated && ch->service == NULL &&
         (s->mdc2 == NULL || !dcmf_udpproxy_has(s->mdc2, ch->sid));
}

