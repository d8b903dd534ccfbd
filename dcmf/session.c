#include "session.h"
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "datachannel.h"
#include "errors.h"
#include "ice.h"
#include "ratelimit.h"
#include "sctp.h"
#include "service.h"
#include "stun.h"
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

static void dtls_send_datagram(void *user, const uint8_t *data, size_t len) {
  struct dcmf_session *s = user;
  if (s->has_dtls_peer) {
    udp_send(s, (const struct sockaddr *)&s->dtls_peer, data, len);
  }
}

/* ---- the host the services see (service.h) ------------------------------- */

static struct dcmf_svc_slot *slot_of(struct dcmf_svc_host *h) {
  return (struct dcmf_svc_slot *)h; /* the host is the slot's first member */
}

/* While the association is torn down its channels report closed one by
 * one; services reacting to that (a relay twin) find no association. */
static int assoc_usable(const struct dcmf_session *s) {
  return s->dc != NULL && !s->assoc_closing;
}

static int host_send(struct dcmf_svc_host *h, uint32_t id, int binary,
                     const uint8_t *data, size_t len) {
  struct dcmf_session *s = slot_of(h)->s;
  if (!assoc_usable(s) || id > UINT16_MAX) {
    return DCMF_ERR_NOT_FOUND;
  }
  int rv = dcmf_dc_send(s->dc, (uint16_t)id, binary, data, len);
  if (rv == 0) {
    STAT_ADD(s, messages_out, 1);
    STAT_ADD(s, bytes_out, len);
  }
  return rv;
}

static void host_close(struct dcmf_svc_host *h, uint32_t id) {
  struct dcmf_session *s = slot_of(h)->s;
  if (assoc_usable(s) && id <= UINT16_MAX) {
    dcmf_dc_close(s->dc, (uint16_t)id);
  }
}

static enum dcmf_svc_flow_state host_flow_state(struct dcmf_svc_host *h,
                                                uint32_t id) {
  struct dcmf_session *s = slot_of(h)->s;
  if (!assoc_usable(s)) {
    return DCMF_SVC_NO_ASSOC;
  }
  if (id > UINT16_MAX) {
    return DCMF_SVC_FLOW_ABSENT;
  }
  const struct dcmf_dc_channel *ch = dcmf_dc_find(s->dc, (uint16_t)id);
  return ch == NULL  ? DCMF_SVC_FLOW_ABSENT
         : ch->open ? DCMF_SVC_FLOW_OPEN
                    : DCMF_SVC_FLOW_PENDING;
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
                                      .wake = host_wake};
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

static void services_tick(struct dcmf_session *s) {
  for (size_t i = 0; i < s->n_slots; i++) {
    if (s->slots[i].svc->tick != NULL) {
      s->slots[i].svc->tick(s->slots[i].media);
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

/* Which service serves a channel: what ch->service points to. */
struct svc_bind {
  struct dcmf_svc_slot *slot;
  void *chan;
};

static struct dcmf_svc_flow flow_of(const struct dcmf_dc_channel *ch) {
  return (struct dcmf_svc_flow){.kind = DCMF_ASSOC_SCTP,
                                .id = ch->sid,
                                .negotiated = ch->negotiated,
                                .label = ch->label,
                                .protocol = ch->protocol};
}

/* Offers |ch| to the services in order. Returns 0 when one took it. */
static int services_open(struct dcmf_session *s, struct dcmf_dc_channel *ch) {
  struct dcmf_svc_flow f = flow_of(ch);
  for (size_t i = 0; i < s->n_slots; i++) {
    struct dcmf_svc_slot *sl = &s->slots[i];
    if (!sl->svc->match(sl->media, &f)) {
      continue;
    }
    struct svc_bind *b = calloc(1, sizeof(*b));
    if (b == NULL) {
      return DCMF_ERR_NOMEM;
    }
    b->slot = sl;
    ch->service = b; /* before open: it may send, and sends may report */
    if (sl->svc->open(sl->media, &f, &b->chan) == 0) {
      return 0;
    }
    ch->service = NULL;
    free(b);
  }
  return DCMF_ERR_NOT_FOUND;
}

/* ---- data channels -------------------------------------------------------- */

static void channel_event(struct dcmf_session *s, const char *event,
                          const struct dcmf_dc_channel *ch) {
  json_t *d = json_pack("{s:i, s:s, s:s, s:b}", "streamId", (int)ch->sid,
                        "label", ch->label, "protocol", ch->protocol,
                        "negotiated", ch->negotiated);
  char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
  emit(s, event, text);
  free(text);
  json_decref(d);
}

static int dc_channel_open(void *user, struct dcmf_dc_channel *ch) {
  struct dcmf_session *s = user;
  STAT_ADD(s, channels_open, 1);
  channel_event(s, "DC_OPEN", ch);
  if (services_open(s, ch) == 0) {
    return 0;
  }
  /* Nobody serves it: keep negotiated channels open (a PATCH may bring
   * their service), refuse in-band ones. */
  return ch->negotiated ? 0 : -1;
}

static void dc_channel_message(void *user, struct dcmf_dc_channel *ch,
                               int binary, const uint8_t *data, size_t len) {
  struct dcmf_session *s = user;
  STAT_ADD(s, messages_in, 1);
  STAT_ADD(s, bytes_in, len);
  struct svc_bind *b = ch->service;
  if (b != NULL && b->slot->svc->message != NULL) {
    struct dcmf_svc_flow f = flow_of(ch);
    b->slot->svc->message(b->slot->media, b->chan, &f, binary, data, len);
  }
}

static void dc_channel_closed(void *user, struct dcmf_dc_channel *ch) {
  struct dcmf_session *s = user;
  atomic_fetch_sub_explicit(&s->env.stats->channels_open, 1,
                            memory_order_relaxed);
  channel_event(s, "DC_CLOSE", ch);
  struct svc_bind *b = ch->service;
  if (b != NULL) {
    ch->service = NULL;
    struct dcmf_svc_flow f = flow_of(ch);
    if (b->slot->svc->closed != NULL) {
      b->slot->svc->closed(b->slot->media, b->chan, &f);
    }
    free(b);
  }
}

/* After a PATCH: an open negotiated channel nobody served is offered
 * again (the change may have brought its service, e.g. a relay). */
static void reoffer_channel(void *user, struct dcmf_dc_channel *ch) {
  struct dcmf_session *s = user;
  if (ch->open && ch->service == NULL && ch->negotiated) {
    services_open(s, ch);
  }
}

static const struct dcmf_dc_callbacks dc_cbs = {
    dc_channel_open, dc_channel_message, dc_channel_closed};

/* ---- SCTP ----------------------------------------------------------------- */

static void sctp_send_packet(void *user, const uint8_t *data, size_t len) {
  struct dcmf_session *s = user;
  if (s->dtls != NULL) {
    dcmf_dtls_send(s->dtls, data, len);
  }
}

static void sctp_message(void *user, uint16_t sid, uint32_t ppid,
                         const uint8_t *data, size_t len) {
  struct dcmf_session *s = user;
  dcmf_dc_on_sctp_message(s->dc, sid, ppid, data, len);
}

static void sctp_reset(void *user, uint16_t sid) {
  struct dcmf_session *s = user;
  dcmf_dc_on_sctp_reset(s->dc, sid);
}

static void sctp_state(void *user, enum dcmf_sctp_state state) {
  struct dcmf_session *s = user;
  if (state == DCMF_SCTP_UP) {
    STAT_ADD(s, sctp_associations, 1);
  }
  dcmf_dc_on_sctp_state(s->dc, state);
}

static void sctp_writable(void *user) {
  struct dcmf_session *s = user;
  dcmf_dc_on_sctp_writable(s->dc); /* owed DCEP ACKs first */
  services_writable(s);
}

static const struct dcmf_sctp_callbacks sctp_cbs = {
    sctp_send_packet, sctp_message, sctp_reset, sctp_state, sctp_writable};

static void association_free(struct dcmf_session *s) {
  s->assoc_closing = 1; /* a relay twin reacting to the closes keeps off */
  dcmf_dc_del(s->dc); /* reports each open channel closed to its service */
  s->assoc_closing = 0;
  s->dc = NULL;
  dcmf_sctp_del(s->sctp);
  s->sctp = NULL;
  dcmf_dtls_del(s->dtls);
  s->dtls = NULL;
}

/* ---- DTLS ----------------------------------------------------------------- */

static void dtls_recv_data(void *user, const uint8_t *data, size_t len) {
  struct dcmf_session *s = user;
  if (s->sctp != NULL) {
    dcmf_sctp_input(s->sctp, data, len);
  }
}

static void dtls_state_changed(void *user, enum dcmf_dtls_state state,
                               const char *reason) {
  struct dcmf_session *s = user;
  char key[300];
  if (state == DCMF_DTLS_CONNECTED) {
    STAT_ADD(s, dtls_ok, 1);
    DCMF_LOGI(s->env.log, "media", "%s: DTLS connected (%s)",
              dcmf_session_key_str(s, key, sizeof(key)), dcmf_dtls_cipher(s->dtls));
    if (dcmf_sctp_connect(s->sctp) != 0) {
      DCMF_LOGW(s->env.log, "media", "%s: SCTP did not start", key);
    }
    return;
  }
  if (state == DCMF_DTLS_FAILED && !s->dtls_reported) {
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
  /* The association is over; a PATCH with a new tls-id starts another.
   * Freeing waits for the timer: we are inside the DTLS engine now. */
  s->teardown = 1;
  session_arm_timer(s);
}

static const struct dcmf_dtls_callbacks dtls_cbs = {
    dtls_send_datagram, dtls_recv_data, dtls_state_changed};

/* Builds a fresh DTLS + SCTP association for the current description. */
static int association_new(struct dcmf_session *s) {
  association_free(s);
  s->teardown = 0;
  s->dtls_reported = 0;
  struct dcmf_sctp_settings ss = {
      .local_port = s->desc.local_sctp_port,
      .remote_port = s->desc.remote_sctp_port,
      .max_streams = s->env.max_streams,
      .max_message_size = s->desc.max_message_size,
      .send_buffer = 1024 * 1024,
  };
  if (dcmf_dtls_new(&s->dtls, s->env.dtls_ctx, s->desc.dtls_server,
                    &dtls_cbs, s) != 0 ||
      dcmf_sctp_new(&s->sctp, &ss, &sctp_cbs, s) != 0 ||
      dcmf_dc_new(&s->dc, s->sctp, &dc_cbs, s) != 0) {
    association_free(s);
    return DCMF_ERR_SYSTEM;
  }
  for (size_t i = 0; i < s->desc.n_streams; i++) {
    const struct dcmf_media_stream *st = &s->desc.streams[i];
    dcmf_dc_add_negotiated(s->dc, st->sid, st->protocol, &st->rel,
                           st->priority);
  }
  if (s->desc.remote_fp.count > 0) {
    dcmf_dtls_set_remote_fingerprints(s->dtls, &s->desc.remote_fp);
  }
  return 0;
}

/* As DTLS client we start once we know where the peer is. */
static void maybe_start_client(struct dcmf_session *s) {
  if (s->desc.dtls_server || s->dtls == NULL) {
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
    dcmf_dtls_start(s->dtls);
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

static void on_dtls(struct dcmf_session *s, const struct sockaddr *from,
                    const uint8_t *data, size_t len) {
  if (!dcmf_ice_is_authorized_source(&s->ice, from)) {
    STAT_ADD(s, dropped_unauthenticated, 1);
    return;
  }
  if (s->dtls == NULL) {
    STAT_ADD(s, dropped_dtls, 1);
    return;
  }
  uint64_t now = uv_now(s->env.loop);
  /* A handshake costs a signature: ClientHellos are limited per source,
   * except from the peer of an established association. */
  int established =
      s->has_dtls_peer && dcmf_dtls_state(s->dtls) == DCMF_DTLS_CONNECTED &&
      dcmf_stun_addr_equal((const struct sockaddr *)&s->dtls_peer, from);
  if (!established && is_client_hello(data, len) &&
      !source_allowed(s->env.hello_limit, from, now)) {
    STAT_ADD(s, dtls_hello_rate_limited, 1);
    return;
  }
  memcpy(&s->dtls_peer, from,
         from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
  s->has_dtls_peer = 1;
  dcmf_ice_note_traffic(&s->ice, now);
  if (dcmf_dtls_recv(s->dtls, data, len) != 0) {
    STAT_ADD(s, dropped_dtls, 1);
  }
  session_arm_timer(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct dcmf_session *s = h->data;
  *buf = uv_buf_init((char *)s->env.rx_scratch,
                     (unsigned int)s->env.rx_scratch_len);
}

static void on_udp(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *from, unsigned flags) {
  (void)flags;
  struct dcmf_session *s = udp->data;
  if (nread <= 0 || from == NULL) {
    return;
  }
  const uint8_t *data = (const uint8_t *)buf->base;
  size_t len = (size_t)nread;
  /* RFC 7983 first-byte demultiplexing. */
  if (data[0] <= 3) {
    on_stun(s, from, data, len);
  } else if (data[0] >= 20 && data[0] <= 63) {
    on_dtls(s, from, data, len);
  } else {
    STAT_ADD(s, dropped_unknown_protocol, 1);
  }
}

/* ---- timer ---------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  struct dcmf_session *s = t->data;
  uint64_t now = uv_now(s->env.loop);
  if (s->teardown) {
    association_free(s);
    s->teardown = 0; /* dtls == NULL now says "no association" */
  }
  if (dcmf_ice_handle_expiry(&s->ice, now) == 1) {
    STAT_ADD(s, consent_lost, 1);
    char key[300];
    DCMF_LOGI(s->env.log, "media", "%s: consent lost (no STUN or DTLS for "
              "30 s)", dcmf_session_key_str(s, key, sizeof(key)));
    emit(s, "CONSENT_LOST", "{}");
    s->has_dtls_peer = 0;
  }
  if (s->dtls != NULL && dcmf_dtls_next_timeout_ms(s->dtls) == 0) {
    dcmf_dtls_handle_timeout(s->dtls);
  }
  session_arm_timer(s);
}

static void session_arm_timer(struct dcmf_session *s) {
  uint64_t now = uv_now(s->env.loop);
  uint64_t deadline = dcmf_ice_next_expiry(&s->ice);
  if (s->teardown) {
    deadline = now;
  }
  long dtls = s->dtls ? dcmf_dtls_next_timeout_ms(s->dtls) : -1;
  if (dtls >= 0 && now + (uint64_t)dtls < deadline) {
    deadline = now + (uint64_t)dtls;
  }
  if (deadline == UINT64_MAX) {
    uv_timer_stop(&s->timer);
    return;
  }
  uv_timer_start(&s->timer, on_timer, deadline > now ? deadline - now : 0, 0);
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
  };
  return dcmf_ice_init(&s->ice, &is);
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
  s->handles_open = 3;
  int rv = uv_udp_open(&s->udp, s->desc.fd);
  if (rv != 0) {
    close(s->desc.fd);
  }
  if (rv == 0 && s->desc.assoc != DCMF_ASSOC_SCTP) {
    /* Only SCTP data channels are implemented (assoc.h). */
    dcmf_session_close(s);
    return DCMF_ERR_INVALID;
  }
  if (rv == 0) {
    rv = services_attach(s);
    if (rv != 0) {
      dcmf_session_close(s);
      return rv;
    }
  }
  if (rv != 0 || ice_setup(s) != 0 || association_new(s) != 0 ||
      uv_udp_recv_start(&s->udp, on_alloc, on_udp) != 0) {
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
  int fd = s->desc.fd;
  dcmf_media_desc_free(&s->desc);
  s->desc = *desc;
  s->desc.fd = fd;
  if (s->desc.remote_ufrag[0] != '\0') {
    dcmf_ice_set_remote_ufrag(&s->ice, s->desc.remote_ufrag);
  }
  if (new_association || fingerprint_changed || s->dtls == NULL) {
    /* RFC 8842: a new tls-id (or fingerprint) is a new association. */
    association_new(s);
  } else {
    if (s->desc.remote_fp.count > 0) {
      dcmf_dtls_set_remote_fingerprints(s->dtls, &s->desc.remote_fp);
    }
    for (size_t i = 0; i < s->desc.n_streams; i++) {
      const struct dcmf_media_stream *st = &s->desc.streams[i];
      if (dcmf_dc_find(s->dc, st->sid) == NULL) {
        dcmf_dc_add_negotiated(s->dc, st->sid, st->protocol, &st->rel,
                               st->priority);
      }
    }
  }
  services_update(s);
  if (s->dc != NULL) {
    dcmf_dc_foreach(s->dc, reoffer_channel, s);
  }
  maybe_start_client(s);
  session_arm_timer(s);
}

static void on_closed(uv_handle_t *h) {
  struct dcmf_session *s = h->data;
  if (--s->handles_open == 0) {
    dcmf_media_desc_free(&s->desc);
    free(s);
  }
}

void dcmf_session_close(struct dcmf_session *s) {
  association_free(s);
  services_detach(s);
  uv_close((uv_handle_t *)&s->udp, on_closed); /* closes the socket too */
  uv_close((uv_handle_t *)&s->timer, on_closed);
  uv_close((uv_handle_t *)&s->flush_timer, on_closed);
}

void dcmf_session_after_sctp_tick(struct dcmf_session *s) {
  if (s->sctp != NULL) {
    dcmf_sctp_handle_tick(s->sctp);
  }
  services_tick(s);
}

const struct dcmf_media_key *dcmf_session_key(const struct dcmf_session *s) {
  return &s->desc.key;
}
