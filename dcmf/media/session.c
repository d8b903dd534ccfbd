#include "session.h"
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assoc.h"
#include "dcstack.h"
#include "errors.h"
#include "ice.h"
#include "ratelimit.h"
#include "service.h"
#include "stun.h"
#include "tickq.h"
#include "worker.h"

const char *dcmf_session_key_str(const struct dcmf_session *s, char *buf,
                                 size_t cap) {
  snprintf(buf, cap, "%s", s->name);
  return buf;
}

void session_emit(struct dcmf_session *s, const char *event,
                  const char *detail) {
  s->env.emit(s->env.emit_user, &s->desc.key, event, detail);
}

/* ---- sending -------------------------------------------------------------- */

void session_udp_send(struct dcmf_session *s, const struct sockaddr *to,
                      const uint8_t *data, size_t len) {
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
  /* UDP: a datagram that cannot leave now is lost like any other. */
  uv_udp_try_send(&s->udp, &buf, 1, to);
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
    session_udp_send(s, from, out, out_len);
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
    session_maybe_start_client(s);
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
    /* The association refused it, and counted. */
    session_services_assoc_changed(s);
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
    session_dtls_failed(s,
                        "the renewed DTLS association did not connect in time");
    s->teardown = 1;
  }
  if (s->fallback_until != 0 && now >= s->fallback_until) {
    s->fallback_until = 0;
    if (s->stack != NULL) {
      (void)dcmf_dcstack_drop_previous_keys(s->stack); /* none: fine */
    }
  }
  if (s->teardown) {
    session_association_free(s);
    s->teardown = 0; /* stack == NULL now says "no association" */
  }
  if (dcmf_ice_handle_expiry(&s->ice, now) == 1) {
    STAT_ADD(s, consent_lost, 1);
    char key[300];
    DCMF_LOGI(s->env.log, "media", "%s: consent lost (no STUN or DTLS for "
              "30 s)", dcmf_session_key_str(s, key, sizeof(key)));
    session_emit(s, "CONSENT_LOST", "{}");
    s->has_dtls_peer = 0;
  }
  if (s->stack != NULL) {
    dcmf_dcstack_handle_expiry(s->stack, now);
  }
  session_arm_timer(s);
}

void session_arm_timer(struct dcmf_session *s) {
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
  session_services_tick(s);
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
    rv = session_services_attach(s);
    if (rv != 0) {
      dcmf_session_close(s);
      return rv;
    }
  }
  if (rv != 0 || ice_setup(s) != 0 || session_association_new(s) != 0 ||
      start_reading(s) != 0) {
    dcmf_session_close(s);
    return DCMF_ERR_SYSTEM;
  }
  session_maybe_start_client(s);
  session_arm_timer(s);
  *out = s;
  return 0;
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
  session_association_free(s);
  session_services_detach(s);
  if (s->env.ticks != NULL) {
    /* The last closes and detaches may have asked for a tick (a relay
     * queue's last publication); nothing is left to tick. */
    dcmf_tickq_leave(s->env.ticks, &s->tick);
  }
  if (s->env.flushes != NULL) {
    /* session_association_free sent what was gathered. */
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