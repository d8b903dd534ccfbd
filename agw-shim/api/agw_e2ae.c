/*
 * agw_e2ae.c - the e2ae part of the AGW shim's glue (agw.h,
 * docs/e2ae.md): each e2ae context's record from its creation until its
 * worker reports the session released, the worker messages that start,
 * change and end the media session, and what the workers report of it:
 * events kept for GET and POSTed to the notify URI, the latest
 * RTP_COUNTERS snapshot, and the totals /metrics shows. Control thread
 * only.
 */
#include "agw_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "controller.h"
#include "errors.h"
#include "fingerprint.h"

/* The events of an e2ae context kept for GET (the latest ones). */
#define E2AE_EVENTS_KEPT 16
/* The media key of an e2ae context's session: one access media. */
#define E2AE_TERMINATION "access"
#define E2AE_MEDIA_ID "rtp"
/* Generated lengths: RFC 8839 asks for at least 4 and 22 ice-chars
 * (24 and 128 bits of randomness here); tls-id as Nmf_MRM draws it. */
#define E2AE_UFRAG_LEN 8
#define E2AE_PWD_LEN 24
#define E2AE_TLS_ID_LEN 32

/* The e2ae media of one context as the control side knows it, from its
 * creation until its worker reports the session released. */
struct e2ae {
  struct dcmf_hashmap_entry entry; /* by context id */
  char context_id[37];             /* a UUID, as media keys hold it */
  size_t worker;
  uint16_t ports[3]; /* access, core RTP, core RTCP (0 with core mux) */
  int tcp;           /* a TCP relay (agw_tcp.c), not an RTP session */
  int dc;            /* MSRP over a data channel (agw_msrpdc.c) */
  int t140;          /* T.140 over a data channel <-> RTP (agw_t140.c) */
  int removed;       /* the API let go of it (REMOVE posted) */
  int released;      /* the worker let go of the sockets; ports back */
  char notify_uri[DCMF_AGWIQ_URI_MAX + 1];
  json_t *events;   /* the latest E2AE_EVENTS_KEPT, oldest first */
  json_t *snapshot; /* the latest RTP_COUNTERS detail, or NULL */
  json_t *msrp_snapshot; /* a TCP relay's latest MSRP_COUNTERS, or NULL */
  struct e2ae *next, *prev;
};

static const char ice_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static uint64_t ctx_hash(const char *id) {
  return dcmf_hash_bytes(0, id, strlen(id));
}

static int ctx_equal(const struct dcmf_hashmap_entry *e, const void *key) {
  const struct e2ae *m = DCMF_HASHMAP_ITEM(e, const struct e2ae, entry);
  return strcmp(m->context_id, key) == 0;
}

static struct e2ae *e2ae_find(struct dcmf_agw *agw, const char *id) {
  return DCMF_HASHMAP_ITEM(
      dcmf_hashmap_find(&agw->e2ae_by_ctx, ctx_hash(id), id), struct e2ae,
      entry);
}

static void e2ae_free(struct dcmf_agw *agw, struct e2ae *m) {
  dcmf_hashmap_remove(&agw->e2ae_by_ctx, &m->entry);
  if (m->prev != NULL) {
    m->prev->next = m->next;
  } else {
    agw->medias = m->next;
  }
  if (m->next != NULL) {
    m->next->prev = m->prev;
  }
  json_decref(m->events);
  json_decref(m->snapshot);
  json_decref(m->msrp_snapshot);
  free(m);
}

static void e2ae_release_ports(struct dcmf_agw *agw, struct e2ae *m) {
  if (!m->released) {
    m->released = 1;
    for (int i = 0; i < 3; i++) {
      if (m->ports[i] != 0) {
        agw->settings.port_release(agw->settings.port_user, m->ports[i]);
      }
    }
  }
}

static void random_token(struct dcmf_agw *agw, char *out, size_t len,
                         const char *alphabet) {
  uint8_t rnd[64];
  dcmf_agw_random(agw, rnd, len);
  dcmf_token_from_random(out, len, rnd, alphabet);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port) {
  if (ss->ss_family == AF_INET) {
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
  } else if (ss->ss_family == AF_INET6) {
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
  }
}

static uint16_t get_port(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6
             ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
             : ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/*
 * The worker's description of the e2ae media of |m|: the access session
 * (ICE-lite with our |local| credentials, DTLS in the role the Iq
 * elements give, the SRTP association kind) and its core RTP leg.
 * |fds| (access, RTP, RTCP; -1 for none) go with an ADD; NULL for an
 * UPDATE. Returns 0 or DCMF_ERR_NOMEM (nothing owned, |fds| untouched).
 */
static int e2ae_desc(const struct e2ae *m, const struct dcmf_agwiq *iq,
                     const struct dcmf_relay_config *cfg,
                     const struct dcmf_agwapi_e2ae_local *local, const int *fds,
                     struct dcmf_media_desc *d) {
  memset(d, 0, sizeof(*d));
  struct dcmf_media_rtpleg *leg = calloc(1, sizeof(*leg));
  if (leg == NULL) {
    return DCMF_ERR_NOMEM;
  }
  snprintf(d->key.context_id, sizeof(d->key.context_id), "%s", m->context_id);
  snprintf(d->key.termination_id, sizeof(d->key.termination_id), "%s",
           E2AE_TERMINATION);
  snprintf(d->key.media_id, sizeof(d->key.media_id), "%s", E2AE_MEDIA_ID);
  d->fd = fds != NULL ? fds[0] : -1;
  d->port = local->access_port;
  snprintf(d->local_ufrag, sizeof(d->local_ufrag), "%s", local->ufrag);
  snprintf(d->local_pwd, sizeof(d->local_pwd), "%s", local->pwd);
  snprintf(d->local_tls_id, sizeof(d->local_tls_id), "%s", local->tls_id);
  snprintf(d->remote_ufrag, sizeof(d->remote_ufrag), "%s", iq->ice_ufrag);
  if (cfg->has_access_remote) {
    d->remote_addr = cfg->access_remote;
    d->has_remote_addr = 1;
  }
  /* Without remote ICE credentials the peer does no ICE (a WebRTC client
   * always does): DTLS from the signalled address is accepted. */
  d->remote_no_ice = iq->ice_ufrag[0] == '\0';
  d->dtls_server = iq->role == DCMF_AGWIQ_ROLE_SERVER;
  /* T.38: UDPTL inside DTLS (RFC 7345), one core socket (no RTCP). */
  d->assoc = iq->t38 ? DCMF_ASSOC_DTLS_DATA : DCMF_ASSOC_SRTP;
  d->dtls_rsa = iq->dtls_rsa;
  d->remote_fp = iq->remote_fp; /* none: the handshake is held */
  snprintf(d->remote_tls_id, sizeof(d->remote_tls_id), "%s", iq->tls_id);
  leg->rtp_fd = fds != NULL ? fds[1] : -1;
  leg->rtcp_fd = fds != NULL ? fds[2] : -1;
  leg->rtp_port = local->rtp_port;
  leg->rtcp_port = local->rtcp_port;
  leg->rtcp_mux = iq->core_rtcp_mux;
  if (cfg->has_core_remote) {
    leg->remote_rtp = cfg->core_remote;
    leg->remote_rtcp = cfg->core_remote;
    if (!iq->core_rtcp_mux) {
      /* RFC 3605: without a=rtcp the RTCP port is the RTP port + 1. */
      uint16_t rtcp = iq->core_rtcp_port != 0
                          ? iq->core_rtcp_port
                          : (uint16_t)(get_port(&cfg->core_remote) + 1);
      set_port(&leg->remote_rtcp, rtcp);
    }
  }
  /* A core peer that was not signalled is learned from its first packet;
   * one that was is the only source accepted. */
  leg->latching = !cfg->has_core_remote;
  leg->core_avpf = iq->transport[1] == DCMF_AGWIQ_AVPF;
  leg->access_avpf = iq->transport[0] == DCMF_AGWIQ_SAVPF;
  d->rtpleg = leg;
  return 0;
}

int dcmf_agw_e2ae_new(void *user, const char *context_id,
                      const struct dcmf_agwiq *iq,
                      const struct dcmf_relay_config *cfg,
                      struct dcmf_agwapi_e2ae_local *local, void **media) {
  struct dcmf_agw *agw = user;
  const struct dcmf_agw_settings *st = &agw->settings;
  /* The identity the termination presents (RSA for T.38, RFC 7345). */
  const struct dcmf_cert *cert = iq->dtls_rsa ? st->rsa_cert : st->cert;
  if (cert == NULL && iq->dtls_rsa && st->rsa_pending) {
    /* Still being generated: the answer would name a fingerprint no
     * worker could present yet. */
    return DCMF_ERR_NOT_READY;
  }
  if (st->post_media == NULL || cert == NULL) {
    return DCMF_ERR_SYSTEM; /* a shim without media workers */
  }
  memset(local, 0, sizeof(*local));
  int n = dcmf_cert_fingerprint(cert, iq->local_fp_hash, local->fingerprint,
                                sizeof(local->fingerprint));
  if (n < 0) {
    return DCMF_ERR_SYSTEM;
  }
  struct e2ae *m = calloc(1, sizeof(*m));
  json_t *events = json_array();
  if (m == NULL || events == NULL) {
    free(m);
    json_decref(events);
    return DCMF_ERR_NOMEM;
  }
  m->events = events;
  int fds[3] = {-1, -1, -1};
  uint16_t *ports[3] = {&local->access_port, &local->rtp_port,
                        &local->rtcp_port};
  int want = iq->tcp || iq->dc || iq->t38 || iq->core_rtcp_mux ? 2 : 3;
  int got = 0, rv = 0;
  for (; got < want; got++) {
    rv = st->port_alloc(st->port_user, ports[got], &fds[got]);
    if (rv != 0) {
      break;
    }
  }
  struct dcmf_media_desc desc;
  snprintf(m->context_id, sizeof(m->context_id), "%s", context_id);
  snprintf(m->notify_uri, sizeof(m->notify_uri), "%s", iq->notify_uri);
  random_token(agw, local->ufrag, E2AE_UFRAG_LEN, ice_chars);
  random_token(agw, local->pwd, E2AE_PWD_LEN, ice_chars);
  random_token(agw, local->tls_id, E2AE_TLS_ID_LEN, "0123456789abcdef");
  m->tcp = iq->tcp;
  m->dc = iq->dc;
  m->t140 = iq->t140;
  if (rv == 0 && iq->tcp) {
    rv = dcmf_agw_tcp_sockets(iq, fds);
  }
  if (rv == 0 && iq->dc) {
    /* MSRP over a data channel: the core port is a TCP one. */
    rv = dcmf_agw_tcp_socket(&fds[1],
                             iq->tcp_setup[1] != DCMF_AGWIQ_TCP_ACTIVE);
    dcmf_agw_msrpdc_uris(st->advertise_addr, m->context_id, "dc", local);
  }
  if (rv == 0 && iq->tcp && iq->msrp_aware) {
    dcmf_agw_msrpdc_uris(st->advertise_addr, m->context_id, "tcp", local);
  }
  if (rv == 0) {
    rv = iq->tcp ? dcmf_agw_tcp_desc(m->context_id, iq, cfg, local, fds, &desc)
                 : e2ae_desc(m, iq, cfg, local, fds, &desc);
  }
  if (rv == 0 && iq->t140) {
    rv = dcmf_agw_t140_desc(iq, &desc);
    if (rv != 0) {
      desc.fd = -1; /* fds[] are closed below with the others */
      desc.rtpleg->rtp_fd = desc.rtpleg->rtcp_fd = -1;
      dcmf_media_desc_free(&desc);
    }
  }
  if (rv == 0 && iq->dc) {
    /* e2ae_desc took fds[1] as the RTP socket: it moves to the TCP leg. */
    int core_fd = desc.rtpleg->rtp_fd;
    desc.rtpleg->rtp_fd = -1;
    rv = dcmf_agw_msrpdc_desc(iq, cfg, local, core_fd, &desc);
    if (rv != 0) {
      desc.fd = -1; /* fds[] are closed below with the others */
      dcmf_media_desc_free(&desc);
    }
  }
  if (rv != 0) {
    while (got-- > 0) {
      close(fds[got]);
      st->port_release(st->port_user, *ports[got]);
    }
    json_decref(events);
    free(m);
    return rv;
  }
  m->ports[0] = local->access_port;
  m->ports[1] = local->rtp_port;
  m->ports[2] = local->rtcp_port;
  m->worker = dcmf_controller_worker_for(context_id, st->n_workers);
  dcmf_hashmap_insert(&agw->e2ae_by_ctx, &m->entry, ctx_hash(m->context_id));
  m->next = agw->medias;
  if (agw->medias != NULL) {
    agw->medias->prev = m;
  }
  agw->medias = m;
  /* The worker owns the descriptors from here on. A worker whose link is
   * down never sees the ADD (nor would it a REMOVE): the context fails
   * now and its ports go back. */
  rv = st->post_media(st->post_user, m->worker, DCMF_MEDIA_OP_ADD, &desc);
  if (rv != 0) {
    DCMF_LOGW(st->log, "agw", "AGW e2ae context %s: media worker %zu is down",
              m->context_id, m->worker);
    e2ae_release_ports(agw, m);
    e2ae_free(agw, m);
    return rv == DCMF_ERR_NOMEM ? rv : DCMF_ERR_SYSTEM;
  }
  if (iq->dc) {
    agw->msrpdc_contexts++;
  }
  if (iq->t140) {
    agw->t140_contexts++;
  }
  *media = m;
  return 0;
}

int dcmf_agw_e2ae_update(void *user, void *media, const struct dcmf_agwiq *iq,
                         const struct dcmf_relay_config *cfg,
                         const struct dcmf_agwiq_change *ch,
                         struct dcmf_agwapi_e2ae_local *local) {
  struct dcmf_agw *agw = user;
  struct e2ae *m = media;
  struct dcmf_agwapi_e2ae_local next = *local;
  if (ch->ice_restart) {
    /* RFC 8839 section 4.4.1.1.1: new credentials on both sides. */
    random_token(agw, next.ufrag, E2AE_UFRAG_LEN, ice_chars);
    random_token(agw, next.pwd, E2AE_PWD_LEN, ice_chars);
  }
  if (ch->new_association) {
    /* RFC 8842 section 5.2: a new association gets a new tls-id of ours
     * too, which the IMS-ALG puts in its answer. */
    random_token(agw, next.tls_id, E2AE_TLS_ID_LEN, "0123456789abcdef");
  }
  struct dcmf_media_desc desc;
  if ((m->tcp ? dcmf_agw_tcp_desc(m->context_id, iq, cfg, &next, NULL, &desc)
              : e2ae_desc(m, iq, cfg, &next, NULL, &desc)) != 0) {
    return DCMF_ERR_NOMEM;
  }
  if (iq->t140 && dcmf_agw_t140_desc(iq, &desc) != 0) {
    dcmf_media_desc_free(&desc);
    return DCMF_ERR_NOMEM;
  }
  if (iq->dc && dcmf_agw_msrpdc_desc(iq, cfg, &next, -1, &desc) != 0) {
    dcmf_media_desc_free(&desc);
    return DCMF_ERR_NOMEM;
  }
  *local = next;
  snprintf(m->notify_uri, sizeof(m->notify_uri), "%s", iq->notify_uri);
  /* Every change is an update of the running session: fingerprints that
   * arrive release the held handshake, a new tls-id makes the session
   * start a new association (RFC 8842), new ICE credentials restart ICE,
   * and the core leg takes its new addresses. */
  if (!m->released) {
    /* A lost update changes nothing the worker holds; a dead worker's
     * contexts are released by dcmf_agw_worker_failed. */
    (void)agw->settings.post_media(agw->settings.post_user, m->worker,
                                   DCMF_MEDIA_OP_UPDATE, &desc);
  } else {
    dcmf_media_desc_free(&desc);
  }
  return 0;
}

void dcmf_agw_e2ae_del(void *user, void *media) {
  struct dcmf_agw *agw = user;
  struct e2ae *m = media;
  m->removed = 1;
  if (m->released) {
    e2ae_free(agw, m);
    return;
  }
  if (agw->workers_gone) {
    return; /* dcmf_agw_del releases it */
  }
  /* A REMOVE that carries a leg asks the worker to report RELEASED once
   * the session is gone, so the ports are reused only after that. */
  struct dcmf_media_desc desc;
  memset(&desc, 0, sizeof(desc));
  desc.fd = -1;
  if (m->tcp) {
    /* The marker that routes the REMOVE to the TCP relay host. */
    desc.tcpleg = calloc(1, sizeof(*desc.tcpleg));
    if (desc.tcpleg != NULL) {
      desc.tcpleg->fd[0] = desc.tcpleg->fd[1] = -1;
    }
  } else {
    desc.rtpleg = calloc(1, sizeof(*desc.rtpleg));
    if (desc.rtpleg != NULL) {
      desc.rtpleg->rtp_fd = -1;
      desc.rtpleg->rtcp_fd = -1;
    }
  }
  if (desc.rtpleg == NULL && desc.tcpleg == NULL) {
    /* Without the marker no RELEASED comes: the ports go back now (a port
     * still bound in the worker is skipped by the pool). */
    e2ae_release_ports(agw, m);
  }
  snprintf(desc.key.context_id, sizeof(desc.key.context_id), "%s",
           m->context_id);
  snprintf(desc.key.termination_id, sizeof(desc.key.termination_id), "%s",
           E2AE_TERMINATION);
  snprintf(desc.key.media_id, sizeof(desc.key.media_id), "%s",
           m->tcp ? DCMF_AGW_TCP_MEDIA_ID : E2AE_MEDIA_ID);
  if (agw->settings.post_media(agw->settings.post_user, m->worker,
                               DCMF_MEDIA_OP_REMOVE, &desc) != 0) {
    /* Nothing reached the worker (its link is down, its sockets are
     * closing with it): no RELEASED will come. */
    e2ae_release_ports(agw, m);
  }
  if (m->released) {
    e2ae_free(agw, m);
  }
}

static json_t *termination_stats(json_t *snap, const char *term);

/* GET: the kept events, the latest snapshot as the service sent it
 * ("rtpCounters") and each termination's share of it ("rtpStatistics"). */
int dcmf_agw_e2ae_view(void *user, void *media, json_t *view) {
  (void)user;
  struct e2ae *m = media;
  if (json_object_set_new(view, "events", json_deep_copy(m->events)) != 0) {
    return DCMF_ERR_NOMEM;
  }
  if (m->msrp_snapshot != NULL &&
      json_object_set_new(view, "msrpCounters",
                          json_deep_copy(m->msrp_snapshot)) != 0) {
    return DCMF_ERR_NOMEM;
  }
  if (m->snapshot == NULL) {
    return 0;
  }
  if (m->t140) {
    return json_object_set_new(view, "t140Counters",
                               json_deep_copy(m->snapshot)) != 0
               ? DCMF_ERR_NOMEM
               : 0;
  }
  if (m->tcp || m->dc) {
    return json_object_set_new(view, m->tcp ? "tcpCounters" : "msrpCounters",
                               json_deep_copy(m->snapshot)) != 0
               ? DCMF_ERR_NOMEM
               : 0;
  }
  json_t *terms = json_object_get(view, "terminations");
  if (json_object_set_new(view, "rtpCounters", json_deep_copy(m->snapshot)) !=
          0 ||
      json_object_set_new(json_array_get(terms, DCMF_RELAY_ACCESS),
                          "rtpStatistics",
                          termination_stats(m->snapshot, "access")) != 0 ||
      json_object_set_new(json_array_get(terms, DCMF_RELAY_CORE),
                          "rtpStatistics",
                          termination_stats(m->snapshot, "core")) != 0) {
    return DCMF_ERR_NOMEM;
  }
  return 0;
}

/* The counters of an RTP_COUNTERS snapshot (e2ae_svc.h) as GET and
 * /metrics show them, defined once: each on the termination where it
 * happens (packets and bytes by the termination they leave from, drops
 * by the one the packet arrived on, "any" for reasons of either leg),
 * and the metric family dcmf_agw_e2ae_<metric>_total it is a series
 * of. The first row of a family carries its HELP text (NULL on the
 * others); /metrics renders the families in the order of those rows,
 * each with all its rows in table order. */
static const struct e2ae_counter {
  const char *obj, *key;   /* where in the snapshot */
  const char *termination; /* "access", "core" or "any" */
  const char *metric;      /* packets, bytes, dropped, feedback_stripped */
  const char *reason;      /* dropped: the label; NULL otherwise */
  const char *help;        /* the family's HELP on its first row */
} e2ae_counters[] = {
    {"toAccess", "packets", "access", "packets", NULL,
     "RTP and RTCP packets the e2ae media sent, by the termination they "
     "left from."},
    {"toAccess", "bytes", "access", "bytes", NULL,
     "Bytes of those packets (plain RTP and RTCP)."},
    {"toCore", "packets", "core", "packets", NULL, NULL},
    {"toCore", "bytes", "core", "bytes", NULL, NULL},
    {"toCore", "srtpPrevious", "access", "srtp_previous", NULL,
     "Access SRTP packets the e2ae media took under the previous keys of a "
     "tls-id renewal (the fallback; also among the packets sent to the "
     "core)."},
    {"drops", "srtpAuth", "access", "dropped", "srtp_auth",
     "Packets the e2ae media dropped, by the termination they arrived on "
     "(any: either) and reason."},
    {"drops", "srtpReplay", "access", "dropped", "srtp_replay", NULL},
    {"drops", "noCoreAddress", "access", "dropped", "no_core_address", NULL},
    {"drops", "unknownSource", "core", "dropped", "unknown_source", NULL},
    {"drops", "beforeDtls", "core", "dropped", "before_dtls", NULL},
    {"drops", "malformed", "any", "dropped", "malformed", NULL},
    {"drops", "sendFailed", "any", "dropped", "send_failed", NULL},
    {"drops", "feedbackStripped", "any", "feedback_stripped", NULL,
     "RTCP compounds the feedback filter toward an RTP/AVP leg changed or "
     "dropped."},
};
#define E2AE_COUNTERS (sizeof(e2ae_counters) / sizeof(e2ae_counters[0]))
_Static_assert(E2AE_COUNTERS == DCMF_AGW_E2AE_COUNTERS,
               "agw_int.h sizes the totals by this table");

static uint64_t counter_of(json_t *snap, const struct e2ae_counter *c) {
  json_t *v = json_object_get(json_object_get(snap, c->obj), c->key);
  return json_is_integer(v) && json_integer_value(v) >= 0
             ? (uint64_t)json_integer_value(v)
             : 0;
}

/* Keeps |snap| (reference stolen) as |m|'s latest snapshot and adds what
 * each counter grew since the previous one to the totals (a counter that
 * went back, which the service never does, counts from 0). */
static void e2ae_take_snapshot(struct dcmf_agw *agw, struct e2ae *m,
                               json_t *snap) {
  for (size_t i = 0; i < E2AE_COUNTERS; i++) {
    uint64_t now = counter_of(snap, &e2ae_counters[i]);
    uint64_t was = counter_of(m->snapshot, &e2ae_counters[i]);
    agw->totals_e2ae[i] += now >= was ? now - was : now;
  }
  json_decref(m->snapshot);
  m->snapshot = snap;
}

/* "rtpStatistics" of one termination (|term|) from a snapshot: what
 * left through it and what was dropped on arrival there. */
static json_t *termination_stats(json_t *snap, const char *term) {
  json_t *drops = json_object();
  json_t *st = json_pack("{s:o}", "dropped", drops);
  for (size_t i = 0; st != NULL && i < E2AE_COUNTERS; i++) {
    const struct e2ae_counter *c = &e2ae_counters[i];
    if (strcmp(c->termination, term) != 0) {
      continue;
    }
    json_t *obj = strcmp(c->obj, "drops") == 0 ? drops : st;
    const char *name = strcmp(c->key, "packets") == 0 ? "packetsSent"
                       : strcmp(c->key, "bytes") == 0 ? "bytesSent"
                                                      : c->key;
    if (json_object_set_new(
            obj, name, json_integer((json_int_t)counter_of(snap, c))) != 0) {
      json_decref(st);
      st = NULL;
    }
  }
  json_t *profile = json_object_get(snap, "profile");
  if (st != NULL && strcmp(term, "access") == 0 && json_is_string(profile) &&
      json_object_set(st, "srtpProfile", profile) != 0) {
    json_decref(st);
    st = NULL;
  }
  return st;
}

/* Keeps |ev| on |m| for GET and POSTs it to the notify URI. */
static void e2ae_record(struct dcmf_agw *agw, struct e2ae *m,
                        const struct dcmf_media_event *ev) {
  char when[40];
  dcmf_format_time_ms(ev->time_ms, when, sizeof(when));
  json_t *detail = json_loads(ev->detail, 0, NULL);
  json_t *event = json_pack(
      "{s:s, s:s, s:s, s:o, s:s}", "contextId", m->context_id, "terminationId",
      ev->key.termination_id, "event", ev->event, "detail",
      json_is_object(detail) ? detail : json_object(), "time", when);
  if (!json_is_object(detail)) {
    json_decref(detail);
  }
  if (event == NULL) {
    return;
  }
  DCMF_LOGI(agw->settings.log, "agw", "context %s: %s %s", m->context_id,
            ev->event, ev->detail);
  if (m->notify_uri[0] != '\0' && agw->settings.notify != NULL) {
    char *text = json_dumps(event, JSON_COMPACT);
    if (text != NULL) {
      agw->settings.notify(agw->settings.post_user, m->notify_uri, text);
    }
    free(text);
  }
  if (json_array_size(m->events) >= E2AE_EVENTS_KEPT) {
    json_array_remove(m->events, 0);
  }
  json_array_append_new(m->events, event);
}

int dcmf_agw_on_media_event(struct dcmf_agw *agw,
                            const struct dcmf_media_event *ev) {
  struct e2ae *m = e2ae_find(agw, ev->key.context_id);
  if (m == NULL) {
    return 0;
  }
  if (strcmp(ev->event, "RELEASED") == 0) {
    e2ae_release_ports(agw, m);
    if (m->removed) {
      e2ae_free(agw, m);
    }
    return 1;
  }
  if (strcmp(ev->event, "RTP_COUNTERS") == 0) {
    /* A snapshot, not an event: the latest replaces the one before. The
     * final one of a deleted context (pushed as the session closes,
     * before RELEASED) still adds its growth to the totals. */
    json_t *snap = json_loads(ev->detail, 0, NULL);
    if (json_is_object(snap)) {
      e2ae_take_snapshot(agw, m, snap);
    } else {
      json_decref(snap);
    }
    return 1;
  }
  if (strcmp(ev->event, "TCP_COUNTERS") == 0) {
    dcmf_agw_tcp_snapshot(agw, &m->snapshot, ev->detail);
    return 1;
  }
  if (strcmp(ev->event, "T140_COUNTERS") == 0) {
    dcmf_agw_t140_snapshot(agw, &m->snapshot, ev->detail);
    return 1;
  }
  if (strcmp(ev->event, "MSRP_COUNTERS") == 0) {
    if (m->tcp) {
      /* An aware TCP relay sends them beside its TCP_COUNTERS: kept for
       * GET; the MSRP-over-DC totals are not theirs. */
      dcmf_agw_series_take(NULL, 0, NULL, &m->msrp_snapshot, ev->detail);
    } else {
      dcmf_agw_msrpdc_snapshot(agw, &m->snapshot, ev->detail);
    }
    return 1;
  }
  if (m->removed) {
    return 1; /* the context is gone; its last words are dropped */
  }
  if (strcmp(ev->event, "DTLS_FAILURE") == 0) {
    agw->e2ae_failures++;
  } else if (strcmp(ev->event, "TLS_FAILURE") == 0) {
    agw->tls_failures++;
  } else if (strcmp(ev->event, "TCP_FAILURE") == 0) {
    agw->tcp_failures++;
  }
  e2ae_record(agw, m, ev);
  return 1;
}

/* ---- what agw.c asks of this part ---------------------------------------- */

int dcmf_agw_e2ae_init(struct dcmf_agw *agw) {
  return dcmf_hashmap_init(&agw->e2ae_by_ctx, 64, ctx_equal);
}

void dcmf_agw_e2ae_free_all(struct dcmf_agw *agw) {
  while (agw->medias != NULL) {
    e2ae_release_ports(agw, agw->medias);
    e2ae_free(agw, agw->medias);
  }
  dcmf_hashmap_free(&agw->e2ae_by_ctx);
}

size_t dcmf_agw_e2ae_release_removed(struct dcmf_agw *agw, size_t worker) {
  size_t released = 0;
  for (struct e2ae *m = agw->medias, *next; m != NULL; m = next) {
    next = m->next;
    if (m->worker == worker && m->removed && !m->released) {
      e2ae_release_ports(agw, m);
      e2ae_free(agw, m);
      released++;
    }
  }
  return released;
}

size_t dcmf_agw_e2ae_release_live(struct dcmf_agw *agw, size_t worker) {
  size_t released = 0;
  for (;;) {
    struct e2ae *m = agw->medias;
    while (m != NULL && (m->worker != worker || m->removed || m->released)) {
      m = m->next;
    }
    if (m == NULL) {
      return released;
    }
    /* As for a relay (agw.c): the sockets died with the worker, and the
     * walk restarts, as the delete frees the record. */
    e2ae_release_ports(agw, m);
    DCMF_LOGW(agw->settings.log, "agw",
              "AGW e2ae context %s released: its media worker %zu ended",
              m->context_id, worker);
    char id[DCMF_ID_MAX];
    snprintf(id, sizeof(id), "%s", m->context_id);
    if (dcmf_agwapi_delete(agw->api, id) != 0) {
      m->removed = 1;
      e2ae_free(agw, m);
    }
    released++;
  }
}

void dcmf_agw_e2ae_metrics(struct dcmf_agw *agw, struct dcmf_buf *out) {
  size_t n_e2ae = 0;
  for (const struct e2ae *m = agw->medias; m != NULL; m = m->next) {
    n_e2ae += !m->removed;
  }
  dcmf_buf_printf(out,
                  "# HELP dcmf_agw_e2ae_contexts AGW contexts with e2ae media "
                  "(DTLS-SRTP to RTP) held.\n"
                  "# TYPE dcmf_agw_e2ae_contexts gauge\n"
                  "dcmf_agw_e2ae_contexts %zu\n"
                  "# HELP dcmf_agw_e2ae_dtls_failures_total Access DTLS "
                  "handshakes of e2ae media that failed.\n"
                  "# TYPE dcmf_agw_e2ae_dtls_failures_total counter\n"
                  "dcmf_agw_e2ae_dtls_failures_total %llu\n",
                  n_e2ae, (unsigned long long)agw->e2ae_failures);
  /* The media's counters summed over every context, per termination:
   * each family (a row with HELP), then its rows. */
  for (size_t f = 0; f < E2AE_COUNTERS; f++) {
    const char *family = e2ae_counters[f].metric;
    if (e2ae_counters[f].help == NULL) {
      continue;
    }
    dcmf_buf_printf(out,
                    "# HELP dcmf_agw_e2ae_%s_total %s\n"
                    "# TYPE dcmf_agw_e2ae_%s_total counter\n",
                    family, e2ae_counters[f].help, family);
    for (size_t i = 0; i < E2AE_COUNTERS; i++) {
      const struct e2ae_counter *c = &e2ae_counters[i];
      if (strcmp(c->metric, family) != 0) {
        continue;
      }
      if (c->reason != NULL) {
        dcmf_buf_printf(
            out,
            "dcmf_agw_e2ae_%s_total{termination=\"%s\",reason=\"%s\"} %llu\n",
            c->metric, c->termination, c->reason,
            (unsigned long long)agw->totals_e2ae[i]);
      } else {
        dcmf_buf_printf(
            out, "dcmf_agw_e2ae_%s_total{termination=\"%s\"} %llu\n", c->metric,
            c->termination, (unsigned long long)agw->totals_e2ae[i]);
      }
    }
  }
  dcmf_agw_tcp_metrics(agw, out);
  dcmf_agw_msrpdc_metrics(agw, out);
  dcmf_agw_t140_metrics(agw, out);
}
