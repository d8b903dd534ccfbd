/* The DC relay as a session service (svc_relay.h). */
#include "svc_relay.h"

#include <stdlib.h>

#include "errors.h"
#include "log.h"
#include "relayq.h"
#include "worker.h"

struct side;

/* Per worker: the medias that carry a relay (dcmf_media_desc.has_relay).
 * Both sides of a relay carry it (media.c), so every twin is here. The
 * list is walked only when a media is attached, changed or detached. */
struct relay_worker {
  struct side *sides;
};

/* One media: its link to the twin and what the twin left for our phone. */
struct side {
  struct relay_worker *w;
  struct dcmf_svc_host *host;
  struct side *prev, *next; /* in w->sides while listed */
  int listed;
  struct side *twin; /* where our phone's messages go; NULL: none now */
  struct dcmf_media_key named; /* the twin our description names */
  struct dcmf_relayq in; /* what the twin sent that our phone could not
                            take yet */
  int overflow; /* dropping for lack of room; logged once */
  size_t pub_count, pub_bytes; /* in the worker's gauges */
};

static int relay_init(void **worker, const struct dcmf_svc_worker_env *env,
                      const void *config, char *err, size_t errlen) {
  (void)env;
  (void)config;
  (void)err;
  (void)errlen;
  struct relay_worker *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    return DCMF_ERR_NOMEM;
  }
  *worker = w;
  return 0;
}

static void relay_free(void *worker) { free(worker); }

static struct dcmf_media_stats *stats(struct side *s) {
  return s->host->counters(s->host);
}

/* Brings the worker's queue-depth gauges up to date with this side's
 * queue: they hold the sum over every side, so each side adds what
 * changed since it last published. */
static void publish(struct side *s) {
  const struct dcmf_relayq *q = &s->in;
  struct dcmf_media_stats *st = stats(s);
  if (q->count >= s->pub_count) {
    atomic_fetch_add_explicit(&st->relay_queued_messages,
                              q->count - s->pub_count, memory_order_relaxed);
  } else {
    atomic_fetch_sub_explicit(&st->relay_queued_messages,
                              s->pub_count - q->count, memory_order_relaxed);
  }
  if (q->bytes >= s->pub_bytes) {
    atomic_fetch_add_explicit(&st->relay_queued_bytes, q->bytes - s->pub_bytes,
                              memory_order_relaxed);
  } else {
    atomic_fetch_sub_explicit(&st->relay_queued_bytes, s->pub_bytes - q->bytes,
                              memory_order_relaxed);
  }
  s->pub_count = q->count;
  s->pub_bytes = q->bytes;
  if (q->count > 0 || q->again) {
    /* Stall checks and a left-over wake-up need the tick; an empty queue
     * does not, so an idle relay costs nothing per tick. */
    s->host->want_tick(s->host);
  }
}

/* ---- links ---------------------------------------------------------------- */

static void unlist(struct side *s) {
  if (!s->listed) {
    return;
  }
  /* Nobody may keep a link to a side that is no longer listed. */
  for (struct side *o = s->w->sides; o != NULL; o = o->next) {
    if (o->twin == s) {
      o->twin = NULL;
    }
  }
  if (s->prev != NULL) {
    s->prev->next = s->next;
  } else {
    s->w->sides = s->next;
  }
  if (s->next != NULL) {
    s->next->prev = s->prev;
  }
  s->prev = s->next = NULL;
  s->listed = 0;
  s->twin = NULL;
}

/* Resolves the links after |s| was attached or its description
 * changed: its own to the side it names, and those of every side that
 * names it. */
static void relink(struct side *s) {
  const struct dcmf_media_desc *d = s->host->desc;
  if (s->listed &&
      (!d->has_relay || !dcmf_media_key_equal(&s->named, &d->relay))) {
    unlist(s); /* no longer relayed, or relayed elsewhere */
  }
  if (!d->has_relay) {
    return;
  }
  if (!s->listed) {
    s->named = d->relay;
    s->next = s->w->sides;
    if (s->next != NULL) {
      s->next->prev = s;
    }
    s->w->sides = s;
    s->listed = 1;
  }
  s->twin = NULL;
  for (struct side *o = s->w->sides; o != NULL; o = o->next) {
    if (o == s) {
      continue;
    }
    if (dcmf_media_key_equal(&o->host->desc->key, &s->named)) {
      s->twin = o;
    }
    if (dcmf_media_key_equal(&o->named, &d->key)) {
      o->twin = s;
    }
  }
}

void *dcmf_relay_twin(void *media) {
  struct side *s = media;
  return s->twin;
}

/* ---- moving messages ------------------------------------------------------ */

/* Sends on side |user|'s channel: DCMF_ERR_NOT_FOUND (kept) while there
 * is no association or the channel is not open yet, DCMF_ERR_INVALID
 * (dropped) when that side has no such stream. */
static int send_to(void *user, uint16_t sid, int binary, const uint8_t *data,
                   size_t len) {
  struct side *t = user;
  enum dcmf_svc_flow_state st = t->host->flow_state(t->host, sid);
  if (st == DCMF_SVC_NO_ASSOC) {
    return DCMF_ERR_NOT_FOUND;
  }
  if (st == DCMF_SVC_FLOW_ABSENT) {
    return DCMF_ERR_INVALID;
  }
  int rv = t->host->send(t->host, sid, binary, data, len);
  if (rv == 0) {
    DCMF_SVC_STAT_ADD(stats(t), relay_messages, 1);
    DCMF_SVC_STAT_ADD(stats(t), relay_bytes, len);
  }
  return rv;
}

/* Sends what the twin left for our phone, in order. */
static void drain(struct side *s) {
  if (s->in.count > 0 || s->in.again) {
    DCMF_SVC_STAT_ADD(stats(s), relay_dropped_send,
                      dcmf_relayq_drain(&s->in, send_to, s,
                                        s->host->now(s->host)));
  }
  if (s->in.count == 0) {
    s->overflow = 0;
  }
  publish(s);
}

/* A message from our phone on relayed stream |sid|: on to the twin's. */
static void forward(struct side *s, uint16_t sid, int binary,
                    const uint8_t *data, size_t len) {
  struct side *t = s->twin;
  if (t == NULL) {
    DCMF_SVC_STAT_ADD(stats(s), relay_dropped_no_twin, 1);
    return;
  }
  if (!dcmf_relayq_has(&t->in, sid)) {
    int rv = send_to(t, sid, binary, data, len);
    if (rv == 0) {
      return;
    }
    if (rv != DCMF_ERR_EXHAUSTED && rv != DCMF_ERR_NOT_FOUND) {
      DCMF_SVC_STAT_ADD(stats(s), relay_dropped_send, 1);
      return;
    }
  }
  /* The twin's channel is not open yet, its send buffer is full, or older
   * messages of this stream still wait: keep order. */
  t->in.max_bytes = DCMF_RELAY_QUEUE_BYTES;
  int rv = dcmf_relayq_push(&t->in, sid, binary, data, len,
                            s->host->now(s->host));
  publish(t);
  if (rv != 0) {
    DCMF_SVC_STAT_ADD(stats(s), relay_dropped_queue, 1);
    if (!t->overflow) { /* once per episode, not per message */
      t->overflow = 1;
      DCMF_LOGW(s->host->log, "relay",
                "%s: %zu bytes already wait for the twin; dropping messages",
                t->host->name, t->in.bytes);
    }
  }
}

/* Names a stalled stream of our queue and where it waits. */
static void stalled(void *user, const struct dcmf_relayq_stream *st) {
  struct side *s = user;
  DCMF_SVC_STAT_ADD(stats(s), relay_stalls, 1);
  enum dcmf_svc_flow_state fs = s->host->flow_state(s->host, st->sid);
  const char *where = fs == DCMF_SVC_NO_ASSOC ? "no association with this phone"
                      : fs != DCMF_SVC_FLOW_OPEN
                          ? "its channel to this phone is not open"
                          : "SCTP toward this phone takes no more";
  DCMF_LOGW(s->host->log, "relay",
            "%s: stream %u: %zu relayed messages (%zu bytes) have not moved "
            "for more than %d ms (%s); %zu messages, %zu bytes wait for "
            "this phone in all (dcmf_dc_relay_stalls_total)",
            s->host->name, st->sid, st->count, st->bytes, DCMF_RELAY_STALL_MS,
            where, s->in.count, s->in.bytes);
}

/* ---- hooks ---------------------------------------------------------------- */

static int relay_attach(void **media, void *worker,
                        struct dcmf_svc_host *host) {
  struct side *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    return DCMF_ERR_NOMEM;
  }
  s->w = worker;
  s->host = host;
  relink(s);
  *media = s;
  return 0;
}

static void relay_update(void *media) { relink(media); }

static void relay_detach(void *media) {
  struct side *s = media;
  unlist(s);
  dcmf_relayq_clear(&s->in);
  publish(s);
  free(s);
}

/* Asked for by publish() while our queue holds messages or a wake-up. */
static void relay_tick(void *media) {
  struct side *s = media;
  if (s->in.again) {
    drain(s); /* a wake-up a capped drain left over */
  }
  if (s->in.count > 0) {
    dcmf_relayq_check_stalls(&s->in, s->host->now(s->host),
                             DCMF_RELAY_STALL_MS, stalled, s);
  }
  if (s->in.count > 0 || s->in.again) {
    s->host->want_tick(s->host); /* still waiting: the next tick too */
  }
}

/* Negotiated channels of a relayed media that an earlier service did not
 * take (HTTP, UDP-proxy legs) are relayed. */
static int relay_match(void *media, const struct dcmf_svc_flow *flow) {
  struct side *s = media;
  return flow->kind == DCMF_ASSOC_SCTP && s->host->desc->has_relay &&
         flow->negotiated;
}

static int relay_open(void *media, const struct dcmf_svc_flow *flow,
                      void **chan) {
  (void)flow;
  drain(media); /* what the twin sent before we opened */
  *chan = NULL;
  return 0;
}

static void relay_message(void *media, void *chan,
                          const struct dcmf_svc_flow *flow, int binary,
                          const uint8_t *data, size_t len) {
  (void)chan;
  struct side *s = media;
  if (s->host->desc->has_relay) { /* a PATCH may have ended the relay */
    forward(s, (uint16_t)flow->id, binary, data, len); /* SCTP: 16 bits */
  }
}

static void relay_writable(void *media) { drain(media); }

/* Our channel closed: its twin closes too (RFC 8831 6.7 reset). */
static void relay_closed(void *media, void *chan,
                         const struct dcmf_svc_flow *flow) {
  (void)chan;
  struct side *s = media;
  uint16_t sid = (uint16_t)flow->id; /* an SCTP stream (relay_match) */
  dcmf_relayq_purge(&s->in, sid);
  publish(s);
  struct side *t = s->twin;
  if (t == NULL ||
      t->host->flow_state(t->host, sid) == DCMF_SVC_NO_ASSOC) {
    return;
  }
  /* What our phone sent before it closed goes first. */
  drain(t);
  if (t->host->flow_state(t->host, sid) == DCMF_SVC_FLOW_OPEN) {
    t->host->close(t->host, sid);
  }
}

const struct dcmf_service dcmf_relay_service = {
    .name = "dc-relay",
    .init = relay_init,
    .free = relay_free,
    .attach = relay_attach,
    .update = relay_update,
    .detach = relay_detach,
    .tick = relay_tick,
    .match = relay_match,
    .open = relay_open,
    .message = relay_message,
    .writable = relay_writable,
    .closed = relay_closed,
};
