/*
 * session_host.c - what a session's services see of it: the host table
 * (service.h) and the services' hooks, and the flows the association
 * reports (opened, messages, closed), each bound to the service that
 * serves it. The session object is session_int.h's.
 */
#include "session_int.h"

#include <stdlib.h>

#include <jansson.h>

#include "errors.h"
#include "service.h"

/* ---- the host the services see (service.h) ------------------------------- */

static struct dcmf_svc_slot *slot_of(struct dcmf_svc_host *h) {
  return (struct dcmf_svc_slot *)h; /* the host is the slot's first member */
}

/* While the association is torn down its flows report closed one by
 * one; services reacting to that (a relay twin) find no association. */
static int assoc_usable(const struct dcmf_session *s) {
  return s->assoc != NULL && !s->assoc_closing;
}

static int host_send(struct dcmf_svc_host *h, uint32_t id, int binary,
                     const uint8_t *data, size_t len) {
  struct dcmf_session *s = slot_of(h)->s;
  if (!assoc_usable(s)) {
    return DCMF_ERR_NOT_FOUND;
  }
  /* A keyed SRTP association after consent was lost has nowhere to send
   * (stack_send_datagram drops): the service counts the packet dropped,
   * not sent. An SCTP association keeps its messages for later. */
  struct dcmf_assoc_stats st = {0};
  if (!s->has_dtls_peer && s->kind->stats != NULL) {
    s->kind->stats(s->assoc, &st);
    if (st.keyed) {
      return DCMF_ERR_EXHAUSTED;
    }
  }
  int rv = s->kind->send(s->assoc, id, binary, data, len);
  if (rv == 0) {
    STAT_ADD(s, messages_out, 1);
    STAT_ADD(s, bytes_out, len);
  }
  return rv;
}

static void host_close(struct dcmf_svc_host *h, uint32_t id) {
  struct dcmf_session *s = slot_of(h)->s;
  if (assoc_usable(s)) {
    s->kind->close_flow(s->assoc, id);
  }
}

static enum dcmf_svc_flow_state host_flow_state(struct dcmf_svc_host *h,
                                                uint32_t id) {
  struct dcmf_session *s = slot_of(h)->s;
  if (!assoc_usable(s)) {
    return DCMF_SVC_NO_ASSOC;
  }
  return s->kind->flow_state(s->assoc, id);
}

static void host_emit(struct dcmf_svc_host *h, const char *event,
                      const char *detail) {
  session_emit(slot_of(h)->s, event, detail);
}

static struct dcmf_media_stats *host_counters(struct dcmf_svc_host *h) {
  return slot_of(h)->s->env.stats;
}

static uint64_t session_now(const struct dcmf_session *s) {
  return s->env.now != NULL ? s->env.now(s->env.now_user)
                            : uv_now(s->env.loop);
}

static uint64_t host_now(struct dcmf_svc_host *h) {
  return session_now(slot_of(h)->s);
}

static int host_assoc_stats(struct dcmf_svc_host *h,
                            struct dcmf_assoc_stats *out) {
  struct dcmf_session *s = slot_of(h)->s;
  int rv = session_assoc_stats_now(s, out);
  if (rv != 0) {
    return rv;
  }
  const struct dcmf_assoc_stats *p = &s->assoc_past;
  out->srtp_auth += p->srtp_auth;
  out->srtp_replay += p->srtp_replay;
  out->srtp_malformed += p->srtp_malformed;
  out->srtp_previous += p->srtp_previous;
  if (!out->keyed || out->srtp_profile == NULL) {
    out->srtp_profile = p->srtp_profile != NULL ? p->srtp_profile : "";
  }
  return 0;
}

static void on_flush_timer(uv_timer_t *t) {
  struct dcmf_session *s = t->data;
  for (size_t i = 0; i < s->n_slots; i++) {
    struct dcmf_svc_slot *sl = &s->slots[i];
    if (sl->wake_pending) {
      sl->wake_pending = 0;
      if (sl->svc->writable != NULL) {
        sl->svc->writable(sl->media);
      }
    }
  }
}

/* The service wants its writable hook from the loop, not from inside
 * whatever called it (an upstream handing an engine data on a resume). */
static void host_wake(struct dcmf_svc_host *h) {
  struct dcmf_svc_slot *sl = slot_of(h);
  sl->wake_pending = 1;
  uv_timer_start(&sl->s->flush_timer, on_flush_timer, 0, 0);
}

/* The service has periodic work (a queue waiting for room, counters to
 * publish): its |tick| runs after the next SCTP tick, once. */
static void host_want_tick(struct dcmf_svc_host *h) {
  struct dcmf_svc_slot *sl = slot_of(h);
  sl->tick_pending = 1;
  dcmf_session_want_tick(sl->s);
}

int session_services_attach(struct dcmf_session *s) {
  for (size_t i = 0; i < s->env.n_services && i < DCMF_SVC_MAX; i++) {
    struct dcmf_svc_slot *sl = &s->slots[i];
    sl->s = s;
    sl->svc = s->env.services[i].svc;
    sl->host = (struct dcmf_svc_host){.desc = &s->desc,
                                      .log = s->env.log,
                                      .loop = s->env.loop,
                                      .name = s->name,
                                      .send = host_send,
                                      .close = host_close,
                                      .flow_state = host_flow_state,
                                      .emit = host_emit,
                                      .counters = host_counters,
                                      .now = host_now,
                                      .wake = host_wake,
                                      .want_tick = host_want_tick,
                                      .assoc_stats = host_assoc_stats};
    int rv = sl->svc->attach(&sl->media, s->env.services[i].worker, &sl->host);
    if (rv != 0) {
      return rv;
    }
    s->n_slots = i + 1;
  }
  return 0;
}

/* Detaches in reverse order; the flows are closed already. */
void session_services_detach(struct dcmf_session *s) {
  while (s->n_slots > 0) {
    struct dcmf_svc_slot *sl = &s->slots[--s->n_slots];
    sl->svc->detach(sl->media);
    sl->media = NULL;
  }
}

void session_services_update(struct dcmf_session *s) {
  for (size_t i = 0; i < s->n_slots; i++) {
    if (s->slots[i].svc->update != NULL) {
      s->slots[i].svc->update(s->slots[i].media);
    }
  }
}

/* Only the services that asked (host->want_tick); a tick may ask
 * again for the next one. */
void session_services_tick(struct dcmf_session *s) {
  for (size_t i = 0; i < s->n_slots; i++) {
    struct dcmf_svc_slot *sl = &s->slots[i];
    if (sl->tick_pending) {
      sl->tick_pending = 0;
      if (sl->svc->tick != NULL) {
        sl->svc->tick(sl->media);
      }
    }
  }
}

/* The association was keyed or refused a datagram: the services that
 * report its counters look now rather than poll (service.h). */
void session_services_assoc_changed(struct dcmf_session *s) {
  for (size_t i = 0; i < s->n_slots; i++) {
    if (s->slots[i].svc->assoc_changed != NULL) {
      s->slots[i].svc->assoc_changed(s->slots[i].media);
    }
  }
}

void session_services_writable(struct dcmf_session *s) {
  for (size_t i = 0; i < s->n_slots; i++) {
    if (s->slots[i].svc->writable != NULL) {
      s->slots[i].svc->writable(s->slots[i].media);
    }
  }
}

/* Which service serves a flow: what the association keeps in the flow's
 * slot (assoc.h). */
struct svc_bind {
  struct dcmf_svc_slot *slot;
  void *chan;
};

/* Offers |flow| to the services in order. Returns 0 when one took it. */
static int services_open(struct dcmf_session *s,
                         const struct dcmf_svc_flow *flow, void **slot) {
  for (size_t i = 0; i < s->n_slots; i++) {
    struct dcmf_svc_slot *sl = &s->slots[i];
    if (!sl->svc->match(sl->media, flow)) {
      continue;
    }
    struct svc_bind *b = calloc(1, sizeof(*b));
    if (b == NULL) {
      return DCMF_ERR_NOMEM;
    }
    b->slot = sl;
    *slot = b; /* before open: it may send, and sends may report */
    if (sl->svc->open(sl->media, flow, &b->chan) == 0) {
      return 0;
    }
    *slot = NULL;
    free(b);
  }
  return DCMF_ERR_NOT_FOUND;
}

/* ---- flows (data channels for SCTP) --------------------------------------- */

/* DC_OPEN / DC_CLOSE toward the control plane. */
static void channel_event(struct dcmf_session *s, const char *event,
                          const struct dcmf_svc_flow *f) {
  json_t *d = json_pack("{s:i, s:s, s:s, s:b}", "streamId", (int)f->id,
                        "label", f->label, "protocol", f->protocol,
                        "negotiated", f->negotiated);
  char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
  session_emit(s, event, text);
  free(text);
  json_decref(d);
}

int session_flow_open(void *user, const struct dcmf_svc_flow *flow,
                      void **slot) {
  struct dcmf_session *s = user;
  /* Data channels are reported and counted as such; an SRTP flow (an
   * SSRC) is no channel, and its service reports its own counters. */
  if (flow->kind == DCMF_ASSOC_SCTP) {
    STAT_ADD(s, channels_open, 1);
    channel_event(s, "DC_OPEN", flow);
  }
  if (services_open(s, flow, slot) == 0) {
    return 0;
  }
  /* Nobody serves it: keep negotiated flows open (a PATCH may bring
   * their service), refuse in-band ones. */
  return flow->negotiated ? 0 : -1;
}

/* The per-message path: the association's flow goes to the service as
 * it is (no copy). */
void session_flow_message(void *user, const struct dcmf_svc_flow *flow,
                          void *slot, int binary, const uint8_t *data,
                          size_t len) {
  struct dcmf_session *s = user;
  s->delivered++;
  STAT_ADD(s, messages_in, 1);
  STAT_ADD(s, bytes_in, len);
  struct svc_bind *b = slot;
  if (b != NULL && b->slot->svc->message != NULL) {
    b->slot->svc->message(b->slot->media, b->chan, flow, binary, data, len);
  }
}

void session_flow_closed(void *user, const struct dcmf_svc_flow *flow,
                         void **slot) {
  struct dcmf_session *s = user;
  if (flow->kind == DCMF_ASSOC_SCTP) {
    atomic_fetch_sub_explicit(&s->env.stats->channels_open, 1,
                              memory_order_relaxed);
    channel_event(s, "DC_CLOSE", flow);
  }
  struct svc_bind *b = *slot;
  if (b != NULL) {
    *slot = NULL;
    if (b->slot->svc->closed != NULL) {
      b->slot->svc->closed(b->slot->media, b->chan, flow);
    }
    free(b);
  }
}

/* After a PATCH: an open negotiated flow nobody served is offered again
 * (the change may have brought its service, e.g. a relay). */
void session_reoffer_flow(void *user, const struct dcmf_svc_flow *flow,
                          void **slot) {
  struct dcmf_session *s = user;
  if (*slot == NULL && flow->negotiated) {
    services_open(s, flow, slot);
  }
}
