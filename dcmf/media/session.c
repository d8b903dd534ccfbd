#include "session.h"
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "assoc.h"
#include "dcstack.h"
#include "errors.h"
#include "ice.h"
#include "ratelimit.h"
#include "service.h"
#include "srtp.h"
#include "stun.h"
#include "tickq.h"
#include "worker.h"

static void session_arm_timer(struct dcmf_session *s);

const char *dcmf_session_key_str(const struct dcmf_session *s, char *buf,
                                 size_t cap) {
  snprintf(buf, cap, "%s", s->name);
  return buf;
}

static void emit(struct dcmf_session *s, const char *event,
                 const char *detail) {
  s->env.emit(s->env.emit_user, &s->desc.key, event, detail);
}

/* ---- sending -------------------------------------------------------------- */

static void udp_send(struct dcmf_session *s, const struct sockaddr *to,
                     const uint8_t *data, size_t len) {
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
  /* UDP: a datagram that cannot leave now is lost like any other. */
  uv_udp_try_send(&s->udp, &buf, 1, to);
}

static void stack_send_datagram(void *user, const uint8_t *data,
                                size_t len) {
  struct dcmf_session *s = user;
  if (s->has_dtls_peer) {
    udp_send(s, (const struct sockaddr *)&s->dtls_peer, data, len);
  }
}

/* The stack held a message or gathered a record: the worker flushes at
 * the end of the loop turn (env.flushes). */
static void stack_output_pending(void *user) {
  struct dcmf_session *s = user;
  dcmf_tickq_join(s->env.flushes, &s->flush);
}

static void on_flush(struct dcmf_tickq_node *node) {
  struct dcmf_session *s = DCMF_TICKQ_OWNER(node, struct dcmf_session, flush);
  if (s->stack != NULL) {
    dcmf_dcstack_flush(s->stack);
  }
}

/* ---- tick ----------------------------------------------------------------- */

void dcmf_session_want_tick(struct dcmf_session *s) {
  if (s->env.ticks != NULL) {
    dcmf_tickq_join(s->env.ticks, &s->tick);
  }
}

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
  emit(slot_of(h)->s, event, detail);
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

/* The counters of the current association, if its kind has any. */
static int assoc_stats_now(const struct dcmf_session *s,
                           struct dcmf_assoc_stats *out) {
  *out = (struct dcmf_assoc_stats){.srtp_profile = ""};
  if (s->kind == NULL || s->kind->stats == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  if (s->assoc != NULL) {
    s->kind->stats(s->assoc, out);
  }
  return 0;
}

static int host_assoc_stats(struct dcmf_svc_host *h,
                            struct dcmf_assoc_stats *out) {
  struct dcmf_session *s = slot_of(h)->s;
  int rv = assoc_stats_now(s, out);
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

static int services_attach(struct dcmf_session *s) {
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
static void services_detach(struct dcmf_session *s) {
  while (s->n_slots > 0) {
    struct dcmf_svc_slot *sl = &s->slots[--s->n_slots];
    sl->svc->detach(sl->media);
    sl->media = NULL;
  }
}

static void services_update(struct dcmf_session *s) {
  for (size_t i = 0; i < s->n_slots; i++) {
    if (s->slots[i].svc->update != NULL) {
      s->slots[i].svc->update(s->slots[i].media);
    }
  }
}

/* Only the services that asked (host->want_tick); a tick may ask
 * again for the next one. */
static void services_tick(struct dcmf_session *s) {
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
static void services_assoc_changed(struct dcmf_session *s) {
  for (size_t i = 0; i < s->n_slots; i++) {
    if (s->slots[i].svc->assoc_changed != NULL) {
      s->slots[i].svc->assoc_changed(s->slots[i].media);
    }
  }
}

static void services_writable(struct dcmf_session *s) {
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
  emit(s, event, text);
  free(text);
  json_decref(d);
}

static int flow_open(void *user, const struct dcmf_svc_flow *flow,
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
static void flow_message(void *user, const struct dcmf_svc_flow *flow,
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

static void flow_closed(void *user, const struct dcmf_svc_flow *flow,
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
static void reoffer_flow(void *user, const struct dcmf_svc_flow *flow,
                         void **slot) {
  struct dcmf_session *s = user;
  if (*slot == NULL && flow->negotiated) {
    services_open(s, flow, slot);
  }
}

/* ---- DTLS and the association (dcstack.h) --------------------------------- */

/* The association has room again (SCTP: owed DCEP ACKs have gone): the
 * services resume. */
static void stack_writable(void *user) { services_writable(user); }

static void stack_need_tick(void *user) { dcmf_session_want_tick(user); }

static void association_free(struct dcmf_session *s) {
  /* Its counters outlive it (host->assoc_stats sums them). */
  struct dcmf_assoc_stats st;
  if (s->assoc != NULL && assoc_stats_now(s, &st) == 0) {
    s->assoc_past.srtp_auth += st.srtp_auth;
    s->assoc_past.srtp_replay += st.srtp_replay;
    s->assoc_past.srtp_malformed += st.srtp_malformed;
    s->assoc_past.srtp_previous += st.srtp_previous;
    if (st.keyed) {
      s->assoc_past.srtp_profile = st.srtp_profile;
    }
  }
  s->assoc_closing = 1; /* a relay twin reacting to the closes keeps off */
  /* Reports each open channel closed to its service, then aborts. */
  dcmf_dcstack_del(s->stack);
  s->assoc_closing = 0;
  s->stack = NULL;
  s->assoc = NULL;
  s->renewal_until = 0;
  s->fallback_until = 0;
}

static void dtls_failed(struct dcmf_session *s, const char *reason) {
  char key[300];
  if (s->dtls_reported) {
    return;
  }
  s->dtls_reported = 1;
  STAT_ADD(s, dtls_failed, 1);
  DCMF_LOGW(s->env.log, "media", "%s: DTLS failed: %s",
            dcmf_session_key_str(s, key, sizeof(key)), reason);
  json_t *d = json_pack("{s:s}", "reason", reason);
  char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
  emit(s, "DTLS_FAILURE", text);
  free(text);
  json_decref(d);
}

static void stack_state_changed(void *user, enum dcmf_dcstack_state state,
                                const char *reason) {
  struct dcmf_session *s = user;
  char key[300];
  if (state == DCMF_DCSTACK_DTLS_CONNECTED ||
      state == DCMF_DCSTACK_DTLS_FAILED || state == DCMF_DCSTACK_DTLS_CLOSED) {
    s->renewal_until = 0; /* a renewal, if one ran, has its outcome */
  }
  switch (state) {
  case DCMF_DCSTACK_DTLS_CONNECTED:
    STAT_ADD(s, dtls_ok, 1);
    DCMF_LOGI(s->env.log, "media", "%s: DTLS connected (%s)",
              dcmf_session_key_str(s, key, sizeof(key)),
              dcmf_dcstack_cipher(s->stack));
    return;
  case DCMF_DCSTACK_ASSOC_UP:
    if (s->desc.assoc == DCMF_ASSOC_SCTP) { /* SRTP has its own counters */
      STAT_ADD(s, sctp_associations, 1);
    }
    services_assoc_changed(s); /* keyed: a profile to report */
    if (s->kind->rekeys) {
      /* A re-key keeps the peer's previous keys for the packets it sent
       * before it switched (srtp.h); they end at this deadline. At the
       * first keying there are none and the deadline ends nothing. */
      s->fallback_until = uv_now(s->env.loop) + (s->env.fallback_ms != 0
                                                     ? s->env.fallback_ms
                                                     : DCMF_SRTP_FALLBACK_MS);
      session_arm_timer(s);
    }
    return;
  case DCMF_DCSTACK_ASSOC_DOWN:
    return; /* the flows were reported closed */
  case DCMF_DCSTACK_ASSOC_FAILED:
    DCMF_LOGW(s->env.log, "media", "%s: %s",
              dcmf_session_key_str(s, key, sizeof(key)), reason);
    return;
  case DCMF_DCSTACK_DTLS_FAILED:
    dtls_failed(s, reason);
    break;
  case DCMF_DCSTACK_DTLS_CLOSED:
    break;
  }
  /* The association is over; the next update of the media (a PATCH,
   * typically with a new tls-id after the phone's re-offer) starts
   * another.
   * Freeing waits for the timer: we are inside the DTLS engine now. */
  s->teardown = 1;
  session_arm_timer(s);
}

static const struct dcmf_dcstack_callbacks stack_cbs = {
    .send_datagram = stack_send_datagram,
    .state_changed = stack_state_changed,
    .flow_open = flow_open,
    .flow_message = flow_message,
    .flow_closed = flow_closed,
    .writable = stack_writable,
    .need_tick = stack_need_tick,
    .output_pending = stack_output_pending,
};

/* The description as the association reads it (assoc.h): the worker
 * message is a media-layer type the kinds do not see. |*streams| holds
 * the declared flows for the call (NULL when there are none); the caller
 * frees it. Returns 0 or DCMF_ERR_NOMEM. */
static int assoc_settings(const struct dcmf_session *s,
                          struct dcmf_assoc_settings *as,
                          struct dcmf_assoc_stream **streams) {
  *as = (struct dcmf_assoc_settings){
      .sctp = {.local_port = s->desc.local_sctp_port,
               .remote_port = s->desc.remote_sctp_port,
               .max_streams = s->env.max_streams,
               .max_message_size = s->desc.max_message_size,
               .send_buffer = 1024 * 1024,
               .bundle = s->env.flushes != NULL && s->env.bundle_messages},
      .sctp_min_streams = s->env.min_streams,
      .srtp_backend = s->env.srtp_backend,
  };
  *streams = NULL;
  if (s->desc.n_streams == 0) {
    return 0;
  }
  *streams = calloc(s->desc.n_streams, sizeof(**streams));
  if (*streams == NULL) {
    return DCMF_ERR_NOMEM;
  }
  for (size_t i = 0; i < s->desc.n_streams; i++) {
    const struct dcmf_media_stream *st = &s->desc.streams[i];
    (*streams)[i] = (struct dcmf_assoc_stream){.id = st->sid,
                                               .protocol = st->protocol,
                                               .rel = st->rel,
                                               .priority = st->priority};
  }
  as->streams = *streams;
  as->n_streams = s->desc.n_streams;
  return 0;
}

/* The identity the media's description asks for (dtls_rsa: T.38). */
static struct dcmf_dtls_ctx *session_dtls_ctx(const struct dcmf_session *s) {
  return s->desc.dtls_rsa ? s->env.dtls_rsa_ctx : s->env.dtls_ctx;
}

/* Builds fresh DTLS and a fresh association of the media's kind for the
 * current description. */
static int association_new(struct dcmf_session *s) {
  association_free(s);
  s->teardown = 0;
  s->dtls_reported = 0;
  struct dcmf_dcstack_settings ss = {
      .dtls_ctx = session_dtls_ctx(s),
      .dtls_server = s->desc.dtls_server,
      .kind = s->kind,
      .coalesce = s->env.flushes != NULL && s->env.coalesce_records,
  };
  struct dcmf_assoc_stream *streams;
  if (assoc_settings(s, &ss.assoc, &streams) != 0) {
    return DCMF_ERR_NOMEM;
  }
  int rv = dcmf_dcstack_new(&s->stack, &ss, &stack_cbs, s);
  free(streams);
  if (rv != 0) {
    s->stack = NULL;
    return DCMF_ERR_SYSTEM;
  }
  s->assoc = dcmf_dcstack_assoc(s->stack);
  if (s->desc.remote_fp.count > 0) {
    dcmf_dcstack_set_remote_fingerprints(s->stack, &s->desc.remote_fp);
  }
  return 0;
}

/* A new DTLS association for the association we have, of a kind that
 * re-keys (SRTP, dcmf_dcstack_renew): the SSRCs keep their ROCs and the
 * media goes on with the old keys while the new handshake runs. Where
 * that cannot be (SCTP, a torn-down or missing stack, a renewal that
 * failed), a new association. Returns 0 or an error of
 * association_new. */
static int association_renew(struct dcmf_session *s) {
  if (s->stack == NULL || s->teardown || !s->kind->rekeys) {
    return association_new(s);
  }
  /* Keys the kind goes on with: a connected association's, or those a
   * renewal still running goes on with. */
  int old_keys = dcmf_dcstack_connected(s->stack) || s->renewal_until != 0;
  int rv =
      dcmf_dcstack_renew(s->stack, session_dtls_ctx(s), s->desc.dtls_server);
  if (rv != 0) {
    char key[300];
    DCMF_LOGW(s->env.log, "media",
              "%s: the DTLS association could not be renewed (%d); a new "
              "%s association starts",
              dcmf_session_key_str(s, key, sizeof(key)), rv, s->kind->name);
    return association_new(s);
  }
  s->dtls_reported = 0; /* the new association's outcome is news */
  /* The old keys hold until the new handshake ends, and no longer than
   * this (session.h) from the first renewal that kept them: a second
   * update does not extend their time. */
  uint64_t limit = s->env.renewal_timeout_ms != 0 ? s->env.renewal_timeout_ms
                                                  : DCMF_SESSION_RENEWAL_MS;
  if (old_keys && s->renewal_until == 0) {
    s->renewal_until = uv_now(s->env.loop) + limit;
  }
  if (s->desc.remote_fp.count > 0) {
    dcmf_dcstack_set_remote_fingerprints(s->stack, &s->desc.remote_fp);
  }
  return 0;
}

/* As DTLS client we start once we know where the peer is. */
static void maybe_start_client(struct dcmf_session *s) {
  if (s->desc.dtls_server || s->stack == NULL) {
    return;
  }
  const struct sockaddr *peer = dcmf_ice_peer(&s->ice);
  if (peer != NULL && !s->has_dtls_peer) {
    memcpy(&s->dtls_peer, peer,
           peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
    s->has_dtls_peer = 1;
  }
  if (s->has_dtls_peer) {
    dcmf_dcstack_start(s->stack);
  }
}

/* ---- packets -------------------------------------------------------------- */

/* Sources other than the peer pay a token of the worker's limiter
 * before we spend work on them (an HMAC, a handshake). Returns 1 if the
 * packet may go on. */
static int source_allowed(struct dcmf_ratelimit *limit,
                          const struct sockaddr *from, uint64_t now) {
  return limit == NULL || dcmf_ratelimit_allow(limit, from, now) == 1;
}

/* The ICE engine asks this before it spends an HMAC on a request that
 * names this session's ufrags from a source other than the peer (whose
 * consent checks are never limited). Asking only then means a sender
 * that does not know the ufrags costs nothing and cannot drain the
 * allowance of the phones that share its address. */
static int stun_may_authenticate(void *user, const struct sockaddr *from) {
  struct dcmf_session *s = user;
  return source_allowed(s->env.stun_limit, from, uv_now(s->env.loop));
}

static void on_stun(struct dcmf_session *s, const struct sockaddr *from,
                    const uint8_t *data, size_t len) {
  uint64_t now = uv_now(s->env.loop);
  uint8_t out[512];
  size_t out_len = 0;
  int rv =
      dcmf_ice_recv(&s->ice, from, data, len, now, out, sizeof(out), &out_len);
  /* The engine writes only answers to authenticated requests. */
  if (out_len > 0) {
    udp_send(s, from, out, out_len);
  }
  if (rv == DCMF_ICE_RESPOND || rv == DCMF_ICE_RESPOND_LATCHED) {
    STAT_ADD(s, stun_ok, 1);
  } else if (rv == DCMF_ICE_RESPOND_ERROR) {
    STAT_ADD(s, stun_error, 1);
  } else if (rv == DCMF_ICE_DROP_UNAUTHENTICATED) {
    STAT_ADD(s, dropped_unauthenticated, 1);
  } else if (rv == DCMF_ICE_DROP_LIMITED) {
    STAT_ADD(s, stun_rate_limited, 1);
  } else {
    STAT_ADD(s, dropped_other, 1);
  }
  if (rv == DCMF_ICE_RESPOND_LATCHED) {
    /* A (re)latched peer is where our DTLS goes from now on. */
    const struct sockaddr *peer = dcmf_ice_peer(&s->ice);
    memcpy(&s->dtls_peer, peer,
           peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
    s->has_dtls_peer = 1;
    maybe_start_client(s);
    session_arm_timer(s);
  }
}

/* A DTLS record of epoch 0 holding a ClientHello (content type 22,
 * handshake type 1): what makes OpenSSL start a handshake. */
static int is_client_hello(const uint8_t *data, size_t len) {
  return len > 13 && data[0] == 22 && data[3] == 0 && data[4] == 0 &&
         data[13] == 1;
}

/* Walks the DTLS records of a datagram (RFC 6347 4.1: several may share
 * one): whether one of them is an epoch-0 ClientHello, and whether one
 * is another epoch-0 record. Returns 0, or -1 when the datagram is not a
 * sequence of whole DTLS 1.2 records. */
static int scan_records(const uint8_t *data, size_t len, int *hello,
                        int *plain_other) {
  *hello = *plain_other = 0;
  size_t at = 0;
  while (at < len) {
    if (len - at < 13 || data[at] < 20 || data[at] > 25) {
      return -1; /* cut short, or no DTLS 1.2 record header */
    }
    size_t n = (size_t)data[at + 11] << 8 | data[at + 12];
    if (n > len - at - 13) {
      return -1;
    }
    if (data[at + 3] == 0 && data[at + 4] == 0) {
      if (is_client_hello(data + at, n + 13)) {
        *hello = 1;
      } else {
        *plain_other = 1;
      }
    }
    at += 13 + n;
  }
  return 0;
}

/* Whether a datagram from an alternate source (ice.h, "Changes of
 * pair") may reach DTLS: a check proves nothing about its sender (it
 * can be replayed from anywhere), so only what a stranger cannot forge
 * passes, records of a later epoch (DTLS authenticates them), and what
 * can start a new association, ClientHellos. Epoch 0's other records
 * (alerts, handshake messages) are plain text anyone can write, and
 * could end a handshake that runs; every record of the datagram is
 * looked at. */
static int alternate_may_take(const uint8_t *data, size_t len) {
  int hello, plain_other;
  return scan_records(data, len, &hello, &plain_other) == 0 && !plain_other;
}

/* Whether any record of the datagram is a ClientHello: the rate limit
 * must see one that rides behind a record of a later epoch too. */
static int has_client_hello(const uint8_t *data, size_t len) {
  int hello, plain_other;
  if (scan_records(data, len, &hello, &plain_other) != 0) {
    return is_client_hello(data, len); /* as OpenSSL may still read it */
  }
  return hello;
}

static void on_dtls(struct dcmf_session *s, const struct sockaddr *from,
                    const uint8_t *data, size_t len) {
  uint64_t now = uv_now(s->env.loop);
  /* Around a change of pair, records from the pair being taken up or
   * left are taken too (ice.h, "Changes of pair"), but move nothing: our
   * records keep going to the peer, and consent is the peer's own. */
  int alternate = !dcmf_ice_is_authorized_source(&s->ice, from);
  if (alternate && (!dcmf_ice_is_alternate_source(&s->ice, from, now) ||
                    !alternate_may_take(data, len))) {
    STAT_ADD(s, dropped_unauthenticated, 1);
    return;
  }
  if (s->stack == NULL) {
    STAT_ADD(s, dropped_dtls, 1);
    return;
  }
  /* A handshake costs a signature: ClientHellos are limited per source,
   * except from the peer of an established association, or of a renewal
   * the update asked for (bounded by its time, session.h). */
  int established =
      s->has_dtls_peer &&
      (dcmf_dcstack_connected(s->stack) || s->renewal_until != 0) &&
      dcmf_stun_addr_equal((const struct sockaddr *)&s->dtls_peer, from);
  if (!established && has_client_hello(data, len) &&
      !source_allowed(s->env.hello_limit, from, now)) {
    STAT_ADD(s, dtls_hello_rate_limited, 1);
    return;
  }
  if (!alternate) {
    memcpy(&s->dtls_peer, from,
           from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
    s->has_dtls_peer = 1;
    dcmf_ice_note_traffic(&s->ice, now);
  }
  if (dcmf_dcstack_recv(s->stack, data, len) != 0) {
    STAT_ADD(s, dropped_dtls, 1);
  }
  session_arm_timer(s);
}

/* A datagram of the kind's raw range (SRTP): from the DTLS peer, or,
 * around a change of pair, from the address being taken up or left
 * (ice.h, "Changes of pair": the WIC sends on a pair once its check
 * succeeded, before it nominates it, and what it sent on the old one may
 * arrive after the nomination), and only while an association exists.
 * Only the DTLS peer's media counts as consent. */
static void on_raw(struct dcmf_session *s, const struct sockaddr *from,
                   const uint8_t *data, size_t len) {
  uint64_t now = uv_now(s->env.loop);
  int from_peer =
      s->has_dtls_peer &&
      dcmf_stun_addr_equal((const struct sockaddr *)&s->dtls_peer, from);
  if (!from_peer && !dcmf_ice_is_alternate_source(&s->ice, from, now)) {
    STAT_ADD(s, dropped_unauthenticated, 1);
    return;
  }
  uint64_t delivered = s->delivered;
  if (s->stack == NULL || dcmf_dcstack_recv_raw(s->stack, data, len) != 0) {
    STAT_ADD(s, dropped_other, 1);
    return;
  }
  if (s->delivered == delivered) {
    services_assoc_changed(s); /* the association refused it, and counted */
  }
  if (from_peer) {
    dcmf_ice_note_traffic(&s->ice, now);
  }
}

/* One datagram read from the session's socket (udpread.h). */
static void on_udp(void *user, uint8_t *buf, size_t nread,
                   const struct sockaddr *from, int truncated) {
  struct dcmf_session *s = user;
  if (nread == 0) {
    return;
  }
  if (truncated) {
    /* Longer than a read slot (64 KiB: no UDP datagram is); dropped. */
    STAT_ADD(s, dropped_other, 1);
    return;
  }
  const uint8_t *data = buf;
  size_t len = nread;
  /* RFC 7983 first-byte demultiplexing: STUN, DTLS, and the range the
   * association kind takes beside DTLS (none for SCTP). */
  if (data[0] <= 3) {
    on_stun(s, from, data, len);
  } else if (data[0] >= 20 && data[0] <= 63) {
    on_dtls(s, from, data, len);
  } else if (data[0] >= s->kind->raw_min && data[0] <= s->kind->raw_max) {
    on_raw(s, from, data, len);
  } else {
    STAT_ADD(s, dropped_unknown_protocol, 1);
  }
}

/* ---- timer ---------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  struct dcmf_session *s = t->data;
  uint64_t now = uv_now(s->env.loop);
  if (s->renewal_until != 0 && now >= s->renewal_until && !s->teardown) {
    /* The renewal did not connect in time: the old keys end now, as
     * after a handshake that failed. */
    s->renewal_until = 0;
    dtls_failed(s, "the renewed DTLS association did not connect in time");
    s->teardown = 1;
  }
  if (s->fallback_until != 0 && now >= s->fallback_until) {
    s->fallback_until = 0;
    if (s->stack != NULL) {
      (void)dcmf_dcstack_drop_previous_keys(s->stack); /* none: fine */
    }
  }
  if (s->teardown) {
    association_free(s);
    s->teardown = 0; /* stack == NULL now says "no association" */
  }
  if (dcmf_ice_handle_expiry(&s->ice, now) == 1) {
    STAT_ADD(s, consent_lost, 1);
    char key[300];
    DCMF_LOGI(s->env.log, "media", "%s: consent lost (no STUN or DTLS for "
              "30 s)", dcmf_session_key_str(s, key, sizeof(key)));
    emit(s, "CONSENT_LOST", "{}");
    s->has_dtls_peer = 0;
  }
  if (s->stack != NULL) {
    dcmf_dcstack_handle_expiry(s->stack, now);
  }
  session_arm_timer(s);
}

static void session_arm_timer(struct dcmf_session *s) {
  uint64_t now = uv_now(s->env.loop);
  uint64_t deadline = dcmf_ice_next_expiry(&s->ice);
  if (s->teardown) {
    deadline = now;
  }
  uint64_t dtls = s->stack ? dcmf_dcstack_next_expiry(s->stack, now)
                          : UINT64_MAX;
  if (dtls < deadline) {
    deadline = dtls;
  }
  if (s->renewal_until != 0 && s->renewal_until < deadline) {
    deadline = s->renewal_until;
  }
  if (s->fallback_until != 0 && s->fallback_until < deadline) {
    deadline = s->fallback_until;
  }
  if (deadline == UINT64_MAX) {
    uv_timer_stop(&s->timer);
    return;
  }
  uv_timer_start(&s->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

/* After a stack tick, for a session that asked (dcmf_session_want_tick):
 * the association's |tick| (SCTP: what usrsctp's timers produced, a
 * waiting sender), and the services
 * that asked for their |tick| (a relay queue waiting for room, counters
 * to publish). Out of the queue now; whatever still waits joins again. */
static void on_tick(struct dcmf_tickq_node *node) {
  struct dcmf_session *s = DCMF_TICKQ_OWNER(node, struct dcmf_session, tick);
  if (s->stack != NULL) {
    dcmf_dcstack_handle_tick(s->stack);
  }
  services_tick(s);
}

/* ---- life cycle ----------------------------------------------------------- */

static int ice_setup(struct dcmf_session *s) {
  struct dcmf_ice_settings is = {
      .local_ufrag = s->desc.local_ufrag,
      .local_pwd = s->desc.local_pwd,
      .remote_ufrag = s->desc.remote_ufrag[0] ? s->desc.remote_ufrag : NULL,
      .remote_addr = s->desc.has_remote_addr
                         ? (const struct sockaddr *)&s->desc.remote_addr
                         : NULL,
      .remote_ice_lite_or_none =
          s->desc.remote_no_ice && s->desc.has_remote_addr,
      .may_authenticate = stun_may_authenticate,
      .may_authenticate_user = s,
      .consent_timeout_ms = s->env.consent_timeout_ms,
  };
  return dcmf_ice_init(&s->ice, &is);
}

/* The session's socket is read one batch per readiness event
 * (udpread.h); s->udp only sends, so its own watcher never starts. */
static int start_reading(struct dcmf_session *s) {
  int rv =
      dcmf_udpread_start(&s->rd, s->env.loop, s->desc.fd, s->env.rx_scratch,
                         s->env.rx_scratch_len, on_udp, s);
  if (rv == 0) {
    s->reading = 1;
    s->rd.tally = s->env.rx_datagrams;
  }
  return rv;
}

int dcmf_session_new(struct dcmf_session **out,
                     const struct dcmf_session_env *env,
                     struct dcmf_media_desc *desc) {
  struct dcmf_session *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    close(desc->fd);
    dcmf_media_desc_free(desc);
    return DCMF_ERR_NOMEM;
  }
  s->env = *env;
  s->desc = *desc;
  snprintf(s->name, sizeof(s->name), "%s/%s/%s", s->desc.key.context_id,
           s->desc.key.termination_id, s->desc.key.media_id);
  uv_udp_init(env->loop, &s->udp);
  uv_timer_init(env->loop, &s->timer);
  uv_timer_init(env->loop, &s->flush_timer);
  s->udp.data = s->timer.data = s->flush_timer.data = s;
  dcmf_tickq_node_init(&s->tick, on_tick);
  dcmf_tickq_node_init(&s->flush, on_flush);
  s->handles_open = 3;
  int rv = uv_udp_open(&s->udp, s->desc.fd);
  if (rv != 0) {
    close(s->desc.fd);
  }
  if (rv == 0) {
    /* The kind's table from the registry (assoc.h); a kind with none
     * (SRTP and raw DTLS data until e2ae) cannot start. */
    unsigned kind = (unsigned)s->desc.assoc;
    if (kind < DCMF_ASSOC_KINDS) {
      s->kind = env->assoc_kinds != NULL
                    ? env->assoc_kinds[kind]
                    : dcmf_assoc_kind_ops(s->desc.assoc);
    }
    /* No RSA identity in this worker: nothing it could present. */
    if (s->kind == NULL || session_dtls_ctx(s) == NULL) {
      dcmf_session_close(s);
      return DCMF_ERR_INVALID;
    }
  }
  if (rv == 0) {
    rv = services_attach(s);
    if (rv != 0) {
      dcmf_session_close(s);
      return rv;
    }
  }
  if (rv != 0 || ice_setup(s) != 0 || association_new(s) != 0 ||
      start_reading(s) != 0) {
    dcmf_session_close(s);
    return DCMF_ERR_SYSTEM;
  }
  maybe_start_client(s);
  session_arm_timer(s);
  *out = s;
  return 0;
}

void dcmf_session_update(struct dcmf_session *s,
                         struct dcmf_media_desc *desc) {
  int new_association =
      s->desc.remote_tls_id[0] != '\0' &&
      strcmp(s->desc.remote_tls_id, desc->remote_tls_id) != 0;
  int fingerprint_changed =
      s->desc.remote_fp.count > 0 &&
      memcmp(&s->desc.remote_fp, &desc->remote_fp, sizeof(desc->remote_fp));
  /* Our DTLS role changes only with a new association, or when the
   * answer to an actpass offer settles it while the handshake is still
   * held (agwiq.c): the DTLS side is rebuilt in the new role. */
  int role_changed = s->desc.dtls_server != desc->dtls_server;
  int fd = s->desc.fd;
  int local_changed = strcmp(s->desc.local_ufrag, desc->local_ufrag) != 0 ||
                      strcmp(s->desc.local_pwd, desc->local_pwd) != 0;
  /* An update's RTP leg carries no descriptors: the running leg's
   * sockets stay (freeing the old description would close them). */
  if (s->desc.rtpleg != NULL && desc->rtpleg != NULL) {
    desc->rtpleg->rtp_fd = s->desc.rtpleg->rtp_fd;
    desc->rtpleg->rtcp_fd = s->desc.rtpleg->rtcp_fd;
    s->desc.rtpleg->rtp_fd = -1;
    s->desc.rtpleg->rtcp_fd = -1;
  }
  dcmf_media_desc_free(&s->desc);
  s->desc = *desc;
  s->desc.fd = fd;
  if (local_changed && s->desc.local_ufrag[0] != '\0') {
    dcmf_ice_set_local(&s->ice, s->desc.local_ufrag, s->desc.local_pwd);
  }
  if (s->desc.remote_ufrag[0] != '\0') {
    dcmf_ice_set_remote_ufrag(&s->ice, s->desc.remote_ufrag);
  }
  if (new_association || fingerprint_changed) {
    /* RFC 8842: a new tls-id (or fingerprint) is a new DTLS association;
     * SRTP keeps its SSRCs' state across it, SCTP starts anew. */
    association_renew(s);
  } else if (role_changed || s->stack == NULL) {
    /* The answer to an actpass offer settled our role while the
     * handshake was held: nothing was keyed, so the DTLS side is built
     * again in that role. */
    association_new(s);
  } else {
    if (s->desc.remote_fp.count > 0) {
      dcmf_dcstack_set_remote_fingerprints(s->stack, &s->desc.remote_fp);
    }
    /* New streams are declared; the others stay as they are. */
    struct dcmf_assoc_settings as;
    struct dcmf_assoc_stream *streams;
    if (s->kind->update != NULL && assoc_settings(s, &as, &streams) == 0) {
      if (s->kind->update(s->assoc, &as) == DCMF_ERR_TOO_LARGE) {
        char key[300];
        DCMF_LOGW(s->env.log, "media",
                  "%s: a declared stream is beyond the %s association's "
                  "streams; it opens on the next association (raise "
                  "--min-streams, and --max-streams if the id is at or "
                  "above it)",
                  dcmf_session_key_str(s, key, sizeof(key)), s->kind->name);
      }
      free(streams);
    }
  }
  services_update(s);
  if (s->assoc != NULL) {
    s->kind->foreach_open(s->assoc, reoffer_flow, s);
  }
  maybe_start_client(s);
  session_arm_timer(s);
}

static void handle_closed(struct dcmf_session *s) {
  if (--s->handles_open == 0) {
    if (s->env.ticks != NULL) {
      /* Never freed while queued (dcmf_session_close left already; this
       * holds whatever asked since). */
      dcmf_tickq_leave(s->env.ticks, &s->tick);
    }
    if (s->env.flushes != NULL) {
      dcmf_tickq_leave(s->env.flushes, &s->flush);
    }
    dcmf_media_desc_free(&s->desc);
    free(s);
  }
}

static void on_closed(uv_handle_t *h) {
  handle_closed(h->data);
}

static void on_rd_closed(uv_handle_t *h) {
  struct dcmf_udpread *rd = h->data;
  handle_closed(rd->user);
}

void dcmf_session_close(struct dcmf_session *s) {
  association_free(s);
  services_detach(s);
  if (s->env.ticks != NULL) {
    /* The last closes and detaches may have asked for a tick (a relay
     * queue's last publication); nothing is left to tick. */
    dcmf_tickq_leave(s->env.ticks, &s->tick);
  }
  if (s->env.flushes != NULL) {
    /* association_free sent what was gathered. */
    dcmf_tickq_leave(s->env.flushes, &s->flush);
  }
  if (s->reading) {
    /* Before the socket closes with s->udp. */
    s->reading = 0;
    s->handles_open++;
    dcmf_udpread_close(&s->rd, on_rd_closed);
  }
  uv_close((uv_handle_t *)&s->udp, on_closed); /* closes the socket too */
  uv_close((uv_handle_t *)&s->timer, on_closed);
  uv_close((uv_handle_t *)&s->flush_timer, on_closed);
}

const struct dcmf_media_key *dcmf_session_key(const struct dcmf_session *s) {
  return &s->desc.key;
}
