#include "session.h"
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datachannel.h"
#include "dcstack.h"
#include "errors.h"
#include "httpdc.h"
#include "httpproxy.h"
#include "ice.h"
#include "ratelimit.h"
#include "relayq.h"
#include "stun.h"
#include "tickq.h"
#include "udpproxy.h"
#include "worker.h"

/* Input an HTTP engine could not take yet, kept in arrival order. */
#define HTTP_STALL_MAX 8

/* In-band (DCEP) channels of one session that get an HTTP engine. The
 * phone chooses how many it opens (up to the association's streams) and
 * each costs some 18 KiB with its engine; further ones are refused. Channels
 * negotiated in SDP are not counted: the IMS AS bounds those. */
#define HTTP_INBAND_MAX 64

/* Messages one http_flush sends before it yields to the loop. SCTP's send
 * buffer (1 MiB) normally says "no room" long before. */
#define HTTP_FLUSH_ROUNDS 256

struct stalled {
  uint8_t *data;
  size_t len;
};

/* Bootstrap HTTP on one data channel. */
struct http_service {
  struct dcmf_session *s;
  uint16_t sid;
  struct dcmf_httpdc *engine;
  struct dcmf_httpproxy *proxy; /* HTTP-proxy mode; NULL: repository */
  int wake_pending;             /* the proxy handed the engine data */
  uint8_t *held;  /* a message SCTP had no room for; owned */
  size_t held_len;
  struct stalled in[HTTP_STALL_MAX];
  size_t n_in;
};


static void session_arm_timer(struct dcmf_session *s);
static void http_flush(struct http_service *h);

const char *dcmf_session_key_str(const struct dcmf_session *s, char *buf,
                                 size_t cap) {
  snprintf(buf, cap, "%s/%s/%s", s->desc.key.context_id,
           s->desc.key.termination_id, s->desc.key.media_id);
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

/* ---- tick ----------------------------------------------------------------- */

void dcmf_session_want_tick(struct dcmf_session *s) {
  if (s->env.ticks != NULL) {
    dcmf_tickq_join(s->env.ticks, &s->tick);
  }
}

/* ---- HTTP service --------------------------------------------------------- */

static void http_free(struct http_service *h) {
  dcmf_httpdc_del(h->engine); /* cancels what the proxy still runs */
  dcmf_httpproxy_del(h->proxy);
  for (size_t i = 0; i < h->n_in; i++) {
    free(h->in[i].data);
  }
  free(h->held);
  free(h);
}

static void flush_woken(void *user, struct dcmf_dc_channel *ch) {
  (void)user;
  struct http_service *h = ch->service;
  if (h != NULL && h->wake_pending) {
    h->wake_pending = 0;
    http_flush(h);
  }
}

static void on_flush_timer(uv_timer_t *t) {
  struct dcmf_session *s = t->data;
  if (s->dc != NULL) {
    dcmf_dc_foreach(s->dc, flush_woken, s);
  }
}

/* The proxy handed the engine data (possibly from inside the engine, on
 * a resume): send it from the loop, not from here. */
static void http_wake(void *user) {
  struct http_service *h = user;
  h->wake_pending = 1;
  uv_timer_start(&h->s->flush_timer, on_flush_timer, 0, 0);
}

static int http_open(struct dcmf_session *s, struct dcmf_dc_channel *ch) {
  struct http_service *h = calloc(1, sizeof(*h));
  if (h == NULL) {
    return -1;
  }
  h->s = s;
  h->sid = ch->sid;
  struct dcmf_httpdc_settings hs = {.max_message_size =
                                        s->desc.max_message_size};
  struct dcmf_httpdc_backend backend;
  if (s->desc.http_proxy && s->env.proxy != NULL) {
    /* POST and PUT bodies go upstream: collect them (up to 1 MiB). */
    hs.max_request_body = 1 << 20;
    struct dcmf_httpproxy_route route = {.stream_id = ch->sid};
    const char *base = dcmf_media_route_for(&s->desc, ch->sid);
    snprintf(route.base_url, sizeof(route.base_url), "%s", base ? base : "");
    snprintf(route.context_id, sizeof(route.context_id), "%s",
             s->desc.key.context_id);
    snprintf(route.termination_id, sizeof(route.termination_id), "%s",
             s->desc.key.termination_id);
    snprintf(route.media_id, sizeof(route.media_id), "%s",
             s->desc.key.media_id);
    if (dcmf_httpproxy_new(&h->proxy, s->env.proxy, &route,
                           s->env.proxy_counters, http_wake, h,
                           &backend) != 0) {
      free(h);
      return -1;
    }
  } else {
    dcmf_httpdc_repo_backend(&backend, s->env.repo);
  }
  if (dcmf_httpdc_new(&h->engine, &hs, &backend) != 0) {
    dcmf_httpproxy_del(h->proxy);
    free(h);
    return -1;
  }
  if (dcmf_httpdc_max_message_size(h->engine) > s->env.tx_scratch_len) {
    http_free(h);
    return -1;
  }
  ch->service = h;
  return 0;
}

/* Offers stalled input to the engine again, in order. */
static void http_feed_stalled(struct http_service *h) {
  while (h->n_in > 0 && dcmf_httpdc_want_read(h->engine)) {
    int rv = dcmf_httpdc_recv(h->engine, h->in[0].data, h->in[0].len);
    if (rv == DCMF_ERR_EXHAUSTED) {
      return;
    }
    free(h->in[0].data);
    memmove(h->in, h->in + 1, --h->n_in * sizeof(h->in[0]));
  }
}

/* Sends one message. Returns 0; DCMF_ERR_EXHAUSTED when SCTP has no room
 * (the message is then kept in |h->held|, and the association's writable
 * callback resends it); or the error that makes this channel unusable
 * (a response would go on with bytes missing). */
static int http_send(struct http_service *h, const uint8_t *msg, size_t len) {
  struct dcmf_session *s = h->s;
  /* Binary (PPID 53): a body may be any bytes, and a string message
   * would be decoded as UTF-8 by the receiving stack. */
  int rv = dcmf_dc_send(s->dc, h->sid, 1, msg, len);
  if (rv == DCMF_ERR_EXHAUSTED && h->held == NULL) {
    h->held = malloc(len);
    if (h->held == NULL) {
      return DCMF_ERR_NOMEM;
    }
    memcpy(h->held, msg, len);
    h->held_len = len;
  }
  if (rv == 0) {
    STAT_ADD(s, messages_out, 1);
    STAT_ADD(s, bytes_out, len);
  }
  return rv;
}

/* A message of this channel could not be made or sent and never will
 * be: the phone's response cannot be completed, so the channel is closed
 * (as an HTTP/1.1 server closes the connection). Frees |h|. */
static void http_fail(struct http_service *h, int err) {
  struct dcmf_session *s = h->s;
  char key[300];
  DCMF_LOGW(
      s->env.log, "media", "%s: stream %u: sending failed (%s); channel closed",
      dcmf_session_key_str(s, key, sizeof(key)), h->sid, dcmf_strerror(err));
  dcmf_dc_close(s->dc, h->sid);
}

/* Hands the engine's output to SCTP until SCTP has no room (then the
 * writable callback calls again), the engine has nothing more (the proxy
 * wakes us when it has), or a round limit is reached (then it yields to
 * the loop and comes back). It never waits and never spins. */
static void http_flush(struct http_service *h) {
  struct dcmf_session *s = h->s;
  if (h->held != NULL) {
    int rv = http_send(h, h->held, h->held_len);
    if (rv == DCMF_ERR_EXHAUSTED) {
      return; /* resumed by the association's writable callback */
    }
    free(h->held);
    h->held = NULL;
    if (rv != 0) {
      http_fail(h, rv);
      return;
    }
  }
  for (int rounds = 0;; rounds++) {
    if (rounds == HTTP_FLUSH_ROUNDS) {
      http_wake(h); /* more to send: the other sessions go first */
      return;
    }
    size_t len = 0;
    int rv = dcmf_httpdc_write(h->engine, s->env.tx_scratch,
                               s->env.tx_scratch_len, &len);
    if (rv != 0) {
      http_fail(h, rv); /* the engine can only be deleted */
      return;
    }
    if (len == 0) {
      http_feed_stalled(h);
      if (!dcmf_httpdc_want_write(h->engine)) {
        break;
      }
      continue; /* the empty write retired an ended response */
    }
    rv = http_send(h, s->env.tx_scratch, len);
    if (rv == DCMF_ERR_EXHAUSTED) {
      return;
    }
    if (rv != 0) {
      http_fail(h, rv);
      return;
    }
  }
  if (dcmf_httpdc_get_state(h->engine) == DCMF_HTTPDC_CLOSED) {
    dcmf_dc_close(s->dc, h->sid);
  }
}

static void http_message(struct http_service *h, const uint8_t *data,
                         size_t len) {
  if (h->n_in > 0 || dcmf_httpdc_recv(h->engine, data, len) ==
                         DCMF_ERR_EXHAUSTED) {
    if (h->n_in == HTTP_STALL_MAX) {
      /* The peer pipelines far more than it reads: stop serving it. */
      dcmf_dc_close(h->s->dc, h->sid);
      return;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
      return;
    }
    memcpy(copy, data, len);
    h->in[h->n_in++] = (struct stalled){copy, len};
  }
  http_flush(h);
}

/* ---- UDP-proxy mode ------------------------------------------------------- */

static int udp_deliver(void *user, uint16_t sid, int text, const uint8_t *data,
                       size_t len) {
  struct dcmf_session *s = user;
  if (s->dc == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  int rv = dcmf_dc_send(s->dc, sid, !text, data, len);
  if (rv == 0) {
    STAT_ADD(s, messages_out, 1);
    STAT_ADD(s, bytes_out, len);
  }
  return rv;
}

/* The legs counted something: publish it at the next tick. */
static void udp_counted(void *user) {
  dcmf_session_want_tick(user);
}

static const struct dcmf_udpproxy_callbacks udp_cbs = {udp_deliver,
                                                       udp_counted};

/* Adds what the legs counted since the last call to the worker's stats. */
static void publish_udp(struct dcmf_session *s) {
  if (s->mdc2 == NULL) {
    return;
  }
  const struct dcmf_udpproxy_counters *c = dcmf_udpproxy_counters(s->mdc2);
  struct dcmf_udpproxy_counters *p = &s->udp_published;
#define PUB(field, stat)                                                       \
  STAT_ADD(s, stat, c->field - p->field);                                      \
  p->field = c->field
  PUB(datagrams_out, udp_datagrams_out);
  PUB(bytes_out, udp_bytes_out);
  PUB(datagrams_in, udp_datagrams_in);
  PUB(bytes_in, udp_bytes_in);
  PUB(dropped_oversize, udp_dropped_oversize);
  PUB(dropped_source, udp_dropped_source);
  PUB(dropped_queue_full, udp_dropped_queue);
  PUB(dropped_send, udp_dropped_send);
#undef PUB
}

/* Brings the MDC2 legs in line with the description (taking its fds). */
static void udp_sync(struct dcmf_session *s) {
  if (s->desc.n_mdc2 == 0 && s->mdc2 == NULL) {
    return;
  }
  if (s->mdc2 == NULL &&
      dcmf_udpproxy_new(&s->mdc2, s->env.loop, &s->desc.mdc2_addr, &udp_cbs,
                        s) != 0) {
    return;
  }
  dcmf_udpproxy_sync(s->mdc2, s->desc.mdc2, s->desc.n_mdc2,
                     &s->desc.mdc2_addr);
}

/* ---- data channels -------------------------------------------------------- */

static int is_bootstrap_sid(uint16_t sid) {
  return sid == 0 || sid == 10 || sid == 100 || sid == 110;
}

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

static void count_inband_http(void *user, struct dcmf_dc_channel *ch) {
  size_t *n = user;
  if (ch->service != NULL && !ch->negotiated) {
    (*n)++;
  }
}

/* Returns 1 if another in-band HTTP channel would pass HTTP_INBAND_MAX. */
static int inband_http_full(struct dcmf_session *s) {
  size_t n = 0;
  dcmf_dc_foreach(s->dc, count_inband_http, &n);
  return n >= HTTP_INBAND_MAX;
}

static int dc_channel_open(void *user, struct dcmf_dc_channel *ch) {
  struct dcmf_session *s = user;
  STAT_ADD(s, channels_open, 1);
  channel_event(s, "DC_OPEN", ch);
  /* HTTP is served on the bootstrap streams (TS 26.114 6.2.10.1), on
   * any in-band channel whose protocol is "http", and in HTTP-proxy mode
   * on application streams (>= 1000) whose protocol is "http". */
  int http = strcmp(ch->protocol, "http") == 0 &&
             (is_bootstrap_sid(ch->sid) || !ch->negotiated ||
              (s->desc.http_proxy && ch->sid >= 1000));
  if (http && !ch->negotiated && inband_http_full(s)) {
    char key[300];
    DCMF_LOGD(s->env.log, "media",
              "%s: stream %u: refused, %d in-band HTTP channels are open",
              dcmf_session_key_str(s, key, sizeof(key)), ch->sid,
              HTTP_INBAND_MAX);
    http = 0;
  }
  if (http && http_open(s, ch) == 0) {
    return 0;
  }
  if (s->mdc2 != NULL && dcmf_udpproxy_has(s->mdc2, ch->sid)) {
    dcmf_udpproxy_channel_open(s->mdc2, ch->sid); /* queued A2P datagrams */
    return 0;
  }
  if (dcmf_session_is_relayed(s, ch)) {
    dcmf_session_relay_drain(s); /* what the twin sent before we opened */
    return 0;
  }
  /* Application channels (>= 1000) wait for the proxy modes; keep
   * negotiated ones open, refuse in-band ones nobody serves. */
  return ch->negotiated ? 0 : -1;
}

static void dc_channel_message(void *user, struct dcmf_dc_channel *ch,
                               int binary, const uint8_t *data, size_t len) {
  struct dcmf_session *s = user;
  STAT_ADD(s, messages_in, 1);
  STAT_ADD(s, bytes_in, len);
  if (ch->service != NULL) {
    http_message(ch->service, data, len);
  } else if (s->mdc2 != NULL && dcmf_udpproxy_has(s->mdc2, ch->sid)) {
    if (len > DCMF_UDPPROXY_MAX_DATAGRAM && !s->oversize_logged) {
      char k[300];
      s->oversize_logged = 1; /* once per session: a phone could flood */
      DCMF_LOGW(s->env.log, "udp-proxy",
                "%s: stream %u: a %zu-byte message cannot be one UDP "
                "datagram (max %d); dropped (dcmf_udp_proxy_dropped_total"
                "{reason=\"oversize\"} counts every such message)",
                dcmf_session_key_str(s, k, sizeof(k)), ch->sid, len,
                DCMF_UDPPROXY_MAX_DATAGRAM);
    }
    dcmf_udpproxy_message(s->mdc2, ch->sid, data, len);
  } else if (dcmf_session_is_relayed(s, ch)) {
    dcmf_session_relay_forward(s, ch->sid, binary, data, len);
  }
}

static void dc_channel_closed(void *user, struct dcmf_dc_channel *ch) {
  struct dcmf_session *s = user;
  atomic_fetch_sub_explicit(&s->env.stats->channels_open, 1,
                            memory_order_relaxed);
  channel_event(s, "DC_CLOSE", ch);
  if (ch->service != NULL) {
    http_free(ch->service);
    ch->service = NULL;
  } else if (dcmf_session_is_relayed(s, ch)) {
    dcmf_session_relay_close(s, ch->sid);
  }
}

/* ---- the DTLS/SCTP/channel stack ------------------------------------------ */

static void resume_channel(void *user, struct dcmf_dc_channel *ch) {
  (void)user;
  if (ch->service != NULL) {
    http_flush(ch->service);
  }
}

/* SCTP has room again (owed DCEP ACKs have gone): the senders resume. */
static void stack_writable(void *user) {
  struct dcmf_session *s = user;
  dcmf_session_relay_drain(s);
  dcmf_dc_foreach(s->dc, resume_channel, s);
}

static void stack_need_tick(void *user) {
  dcmf_session_want_tick(user);
}

static void association_free(struct dcmf_session *s) {
  s->assoc_closing = 1; /* a relay twin reacting to the closes keeps off */
  /* Reports each open channel closed (freeing services), then aborts. */
  dcmf_dcstack_del(s->stack);
  s->assoc_closing = 0;
  s->stack = NULL;
  s->dc = NULL;
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
  switch (state) {
  case DCMF_DCSTACK_DTLS_CONNECTED:
    STAT_ADD(s, dtls_ok, 1);
    DCMF_LOGI(s->env.log, "media", "%s: DTLS connected (%s)",
              dcmf_session_key_str(s, key, sizeof(key)),
              dcmf_dcstack_cipher(s->stack));
    return;
  case DCMF_DCSTACK_SCTP_UP:
    STAT_ADD(s, sctp_associations, 1);
    return;
  case DCMF_DCSTACK_SCTP_DOWN:
    return; /* the channels were reported closed */
  case DCMF_DCSTACK_SCTP_FAILED:
    DCMF_LOGW(s->env.log, "media", "%s: %s",
              dcmf_session_key_str(s, key, sizeof(key)), reason);
    return;
  case DCMF_DCSTACK_DTLS_FAILED:
    dtls_failed(s, reason);
    break;
  case DCMF_DCSTACK_DTLS_CLOSED:
    break;
  }
  /* The association is over; a PATCH with a new tls-id starts another.
   * Freeing waits for the timer: we are inside the DTLS engine now. */
  s->teardown = 1;
  session_arm_timer(s);
}

static const struct dcmf_dcstack_callbacks stack_cbs = {
    .send_datagram = stack_send_datagram,
    .state_changed = stack_state_changed,
    .channel_open = dc_channel_open,
    .channel_message = dc_channel_message,
    .channel_closed = dc_channel_closed,
    .writable = stack_writable,
    .need_tick = stack_need_tick,
};

/* Builds a fresh DTLS + SCTP association for the current description. */
static int association_new(struct dcmf_session *s) {
  association_free(s);
  s->teardown = 0;
  s->dtls_reported = 0;
  struct dcmf_dcstack_settings ss = {
      .dtls_ctx = s->env.dtls_ctx,
      .dtls_server = s->desc.dtls_server,
      .sctp = {.local_port = s->desc.local_sctp_port,
               .remote_port = s->desc.remote_sctp_port,
               .max_streams = s->env.max_streams,
               .max_message_size = s->desc.max_message_size,
               .send_buffer = 1024 * 1024},
  };
  if (dcmf_dcstack_new(&s->stack, &ss, &stack_cbs, s) != 0) {
    s->stack = NULL;
    return DCMF_ERR_SYSTEM;
  }
  s->dc = dcmf_dcstack_dc(s->stack);
  for (size_t i = 0; i < s->desc.n_streams; i++) {
    const struct dcmf_media_stream *st = &s->desc.streams[i];
    dcmf_dc_add_negotiated(s->dc, st->sid, st->protocol, &st->rel,
                           st->priority);
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

static void on_dtls(struct dcmf_session *s, const struct sockaddr *from,
                    const uint8_t *data, size_t len) {
  if (!dcmf_ice_is_authorized_source(&s->ice, from)) {
    STAT_ADD(s, dropped_unauthenticated, 1);
    return;
  }
  if (s->stack == NULL) {
    STAT_ADD(s, dropped_dtls, 1);
    return;
  }
  uint64_t now = uv_now(s->env.loop);
  /* A handshake costs a signature: ClientHellos are limited per source,
   * except from the peer of an established association. */
  int established =
      s->has_dtls_peer && dcmf_dcstack_connected(s->stack) &&
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
  if (dcmf_dcstack_recv(s->stack, data, len) != 0) {
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
  if (deadline == UINT64_MAX) {
    uv_timer_stop(&s->timer);
    return;
  }
  uv_timer_start(&s->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

/* After a stack tick, for a session that asked (dcmf_session_want_tick):
 * what usrsctp's timers produced, a waiting sender, relayed messages
 * waiting for room, counters to publish. Out of the queue now; whatever
 * still waits joins again. */
static void on_tick(struct dcmf_tickq_node *node) {
  struct dcmf_session *s =
      (struct dcmf_session *)((char *)node -
                              offsetof(struct dcmf_session, tick));
  if (s->stack != NULL) {
    dcmf_dcstack_handle_tick(s->stack);
  }
  dcmf_session_relay_tick(s);
  publish_udp(s);
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
  uv_udp_init(env->loop, &s->udp);
  uv_timer_init(env->loop, &s->timer);
  uv_timer_init(env->loop, &s->flush_timer);
  s->udp.data = s->timer.data = s->flush_timer.data = s;
  dcmf_tickq_node_init(&s->tick, on_tick);
  s->handles_open = 3;
  int rv = uv_udp_open(&s->udp, s->desc.fd);
  if (rv != 0) {
    close(s->desc.fd);
  }
  if (rv != 0 || ice_setup(s) != 0 || association_new(s) != 0 ||
      uv_udp_recv_start(&s->udp, on_alloc, on_udp) != 0) {
    dcmf_session_close(s);
    return DCMF_ERR_SYSTEM;
  }
  udp_sync(s);
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
  if (new_association || fingerprint_changed || s->stack == NULL) {
    /* RFC 8842: a new tls-id (or fingerprint) is a new association. */
    association_new(s);
  } else {
    if (s->desc.remote_fp.count > 0) {
      dcmf_dcstack_set_remote_fingerprints(s->stack, &s->desc.remote_fp);
    }
    for (size_t i = 0; i < s->desc.n_streams; i++) {
      const struct dcmf_media_stream *st = &s->desc.streams[i];
      if (dcmf_dc_find(s->dc, st->sid) == NULL) {
        dcmf_dc_add_negotiated(s->dc, st->sid, st->protocol, &st->rel,
                               st->priority);
      }
    }
  }
  udp_sync(s);
  maybe_start_client(s);
  session_arm_timer(s);
}

static void on_closed(uv_handle_t *h) {
  struct dcmf_session *s = h->data;
  if (--s->handles_open == 0) {
    dcmf_session_relay_free(s);
    if (s->env.ticks != NULL) {
      /* Never freed while queued: the relay queue's last publication may
       * have asked for a tick (a drain's left-over wake-up). */
      dcmf_tickq_leave(s->env.ticks, &s->tick);
    }
    dcmf_media_desc_free(&s->desc);
    free(s);
  }
}

void dcmf_session_close(struct dcmf_session *s) {
  association_free(s);
  if (s->env.ticks != NULL) {
    dcmf_tickq_leave(s->env.ticks, &s->tick); /* freed once libuv lets go */
  }
  if (s->mdc2 != NULL) {
    publish_udp(s);
    dcmf_udpproxy_close(s->mdc2);
    s->mdc2 = NULL;
  }
  uv_close((uv_handle_t *)&s->udp, on_closed); /* closes the socket too */
  uv_close((uv_handle_t *)&s->timer, on_closed);
  uv_close((uv_handle_t *)&s->flush_timer, on_closed);
}

const struct dcmf_media_key *dcmf_session_key(const struct dcmf_session *s) {
  return &s->desc.key;
}
