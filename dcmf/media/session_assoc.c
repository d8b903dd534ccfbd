/*
 * session_assoc.c - a session's DTLS association and what keys it: the
 * association built, renewed (a re-key that keeps SRTP's state) and
 * freed, its outcomes, and the update of the media (a PATCH) that
 * decides between them and restarts ICE. The session object is
 * session_int.h's.
 */
#include "session_int.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "errors.h"
#include "srtp.h"
#include "stun.h"

/* ---- DTLS and the association (dcstack.h) --------------------------------- */

static void stack_send_datagram(void *user, const uint8_t *data,
                                size_t len) {
  struct dcmf_session *s = user;
  if (s->has_dtls_peer) {
    session_udp_send(s, (const struct sockaddr *)&s->dtls_peer, data, len);
  }
}

/* The stack held a message or gathered a record: the worker flushes at
 * the end of the loop turn (env.flushes). */
static void stack_output_pending(void *user) {
  struct dcmf_session *s = user;
  dcmf_tickq_join(s->env.flushes, &s->flush);
}

/* The counters of the current association, if its kind has any. */
int session_assoc_stats_now(const struct dcmf_session *s,
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

/* The association has room again (SCTP: owed DCEP ACKs have gone): the
 * services resume. */
static void stack_writable(void *user) { session_services_writable(user); }

static void stack_need_tick(void *user) { dcmf_session_want_tick(user); }

void session_association_free(struct dcmf_session *s) {
  /* Its counters outlive it (host->assoc_stats sums them). */
  struct dcmf_assoc_stats st;
  if (s->assoc != NULL && session_assoc_stats_now(s, &st) == 0) {
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

void session_dtls_failed(struct dcmf_session *s, const char *reason) {
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
  session_emit(s, "DTLS_FAILURE", text);
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
    session_services_assoc_changed(s); /* keyed: a profile to report */
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
    session_dtls_failed(s, reason);
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
    .flow_open = session_flow_open,
    .flow_message = session_flow_message,
    .flow_closed = session_flow_closed,
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

/* Builds fresh DTLS and a fresh association of the media's kind for the
 * current description. */
int session_association_new(struct dcmf_session *s) {
  session_association_free(s);
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
 * session_association_new. */
static int association_renew(struct dcmf_session *s) {
  if (s->stack == NULL || s->teardown || !s->kind->rekeys) {
    return session_association_new(s);
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
    return session_association_new(s);
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
void session_maybe_start_client(struct dcmf_session *s) {
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

/* ---- the update of the media ---------------------------------------------- */


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
  /* A peer without ICE whose address the answer brings (the UE's T.38
   * answer, the context POSTed before it): its media is taken and our
   * DTLS goes to it from now on (a passive UE waits for our ClientHello
   * there). */
  int remote_arrived =
      desc->remote_no_ice && desc->has_remote_addr &&
      (!s->desc.has_remote_addr ||
       !dcmf_stun_addr_equal((const struct sockaddr *)&s->desc.remote_addr,
                             (const struct sockaddr *)&desc->remote_addr));
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
  if (remote_arrived) {
    dcmf_ice_set_remote_no_ice(&s->ice,
                               (const struct sockaddr *)&s->desc.remote_addr);
  }
  if (new_association || fingerprint_changed) {
    /* RFC 8842: a new tls-id (or fingerprint) is a new DTLS association;
     * SRTP keeps its SSRCs' state across it, SCTP starts anew. */
    association_renew(s);
  } else if (role_changed || s->stack == NULL) {
    /* The answer to an actpass offer settled our role while the
     * handshake was held: nothing was keyed, so the DTLS side is built
     * again in that role. */
    session_association_new(s);
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
  session_services_update(s);
  if (s->assoc != NULL) {
    s->kind->foreach_open(s->assoc, session_reoffer_flow, s);
  }
  session_maybe_start_client(s);
  session_arm_timer(s);
}
