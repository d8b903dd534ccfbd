/* DC relay glue of a session: messages on a relayed channel go to the
 * channel with the same stream id of the twin DC media's session (found
 * on the same worker thread), or wait in the twin's bounded queue. */
#include <stdio.h>

#include "errors.h"
#include "log.h"
#include "session_int.h"

/* Messages held for one side of a relay, at most (then dropped, counted). */
#define RELAY_QUEUE_BYTES (4u * 1024 * 1024)

/* A stream whose held messages have not moved for this long is stalled:
 * counted and logged once per episode (RTO-scale waits stay quiet). */
#define RELAY_STALL_MS 1000

/* Brings the worker's queue-depth gauges up to date with this side's
 * queue: they hold the sum over every side, so each side adds what
 * changed since it last published. */
static void relay_publish(struct dcmf_session *s) {
  const struct dcmf_relayq *q = &s->relay_in;
  struct dcmf_media_stats *st = s->env.stats;
  if (q->count >= s->relay_pub_count) {
    atomic_fetch_add_explicit(&st->relay_queued_messages,
                              q->count - s->relay_pub_count,
                              memory_order_relaxed);
  } else {
    atomic_fetch_sub_explicit(&st->relay_queued_messages,
                              s->relay_pub_count - q->count,
                              memory_order_relaxed);
  }
  if (q->bytes >= s->relay_pub_bytes) {
    atomic_fetch_add_explicit(&st->relay_queued_bytes,
                              q->bytes - s->relay_pub_bytes,
                              memory_order_relaxed);
  } else {
    atomic_fetch_sub_explicit(&st->relay_queued_bytes,
                              s->relay_pub_bytes - q->bytes,
                              memory_order_relaxed);
  }
  s->relay_pub_count = q->count;
  s->relay_pub_bytes = q->bytes;
  if (q->count > 0 || q->again) {
    dcmf_session_want_tick(s); /* stall checks, a left-over wake-up */
  }
}

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
  if (s->relay_in.count > 0 || s->relay_in.again) {
    STAT_ADD(s, relay_dropped_send,
             dcmf_relayq_drain(&s->relay_in, relay_send, s,
                               uv_now(s->env.loop)));
  }
  if (s->relay_in.count == 0) {
    s->relay_overflow = 0;
  }
  relay_publish(s);
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
  int rv = dcmf_relayq_push(&t->relay_in, sid, binary, data, len,
                            uv_now(s->env.loop));
  relay_publish(t);
  if (rv != 0) {
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
  relay_publish(s);
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

/* Names a stalled stream of our queue and where it waits. */
static void relay_stalled(void *user, const struct dcmf_relayq_stream *st) {
  struct dcmf_session *s = user;
  STAT_ADD(s, relay_stalls, 1);
  const struct dcmf_dc_channel *ch =
      s->dc != NULL ? dcmf_dc_find(s->dc, st->sid) : NULL;
  const char *where =
      s->dc == NULL || s->assoc_closing ? "no association with this phone"
      : ch == NULL || !ch->open ? "its channel to this phone is not open"
                                : "SCTP toward this phone takes no more";
  char k[300];
  DCMF_LOGW(s->env.log, "relay",
            "%s: stream %u: %zu relayed messages (%zu bytes) have not moved "
            "for more than %d ms (%s); %zu messages, %zu bytes wait for "
            "this phone in all (dcmf_dc_relay_stalls_total)",
            dcmf_session_key_str(s, k, sizeof(k)), st->sid, st->count,
            st->bytes, RELAY_STALL_MS, where, s->relay_in.count,
            s->relay_in.bytes);
}

void dcmf_session_relay_tick(struct dcmf_session *s) {
  if (s->relay_in.again) {
    dcmf_session_relay_drain(s); /* a wake-up a capped drain left over */
  }
  if (s->relay_in.count > 0) {
    dcmf_relayq_check_stalls(&s->relay_in, uv_now(s->env.loop),
                             RELAY_STALL_MS, relay_stalled, s);
  }
  if (s->relay_in.count > 0 || s->relay_in.again) {
    dcmf_session_want_tick(s);
  }
}

void dcmf_session_relay_free(struct dcmf_session *s) {
  dcmf_relayq_clear(&s->relay_in);
  relay_publish(s);
}

int dcmf_session_is_relayed(struct dcmf_session *s,
                            const struct dcmf_dc_channel *ch) {
  return s->desc.has_relay && ch->negotiated && ch->service == NULL &&
         (s->mdc2 == NULL || !dcmf_udpproxy_has(s->mdc2, ch->sid));
}

