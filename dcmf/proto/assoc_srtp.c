/*
 * assoc_srtp.c - the DTLS-SRTP association kind (assoc_srtp.h says what
 * it does): SRTP engine (srtp.h) keyed from DTLS, SSRCs as flows.
 */
#include "assoc_srtp.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

struct flow {
  uint32_t ssrc;
  int refused; /* the owner said no: drop its packets */
  void *slot;
};

struct srtp_assoc {
  struct dcmf_assoc_events ev;
  struct dcmf_srtp *engine;       /* NULL until |connected| */
  enum dcmf_srtp_backend backend; /* the engine's, from the settings */
  /* A later DTLS association connected but could not be keyed (no
   * profile shared, no exporter): the previous association's keys must
   * not go on serving under it. The engine stays for its counters. */
  int keys_dropped;
  struct flow flows[DCMF_ASSOC_SRTP_MAX_FLOWS];
  size_t n_flows;
  /* Our SSRCs the engine holds an outbound state for (the other leg
   * chooses them: a gateway forwards whatever SSRCs its core sends). */
  uint32_t out_ssrcs[DCMF_ASSOC_SRTP_MAX_OUT_SSRCS];
  size_t n_out;
  struct dcmf_assoc_srtp_counts counts;
};

/* A packet's room: the largest packet, the trailer protect appends, in
 * 32-bit words because libsrtp2 reads the buffer by words. */
#define PACKET_WORDS                                                           \
  ((DCMF_ASSOC_SRTP_MAX_PACKET + DCMF_SRTP_TRAILER_ROOM + 3) / 4)

/* RFC 5761 §4: with RTP and RTCP on one port, a second byte of 192-223
 * is an RTCP packet type (SR 200, RR 201, ... FB 205-206, XR 207); RTP
 * payload types 64-95 with the marker bit would collide, and are not
 * used there. */
static int is_rtcp(const uint8_t *p) {
  return p[1] >= 192 && p[1] <= 223;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* The SSRC a packet is of: RTP's header SSRC, RTCP's sender SSRC (the
 * first packet of the compound). Returns 0, or DCMF_ERR_MALFORMED when
 * the packet is too short to have one. */
static int packet_ssrc(const uint8_t *p, size_t len, int rtcp, uint32_t *out) {
  size_t at = rtcp ? 4 : 8;
  if (len < at + 4) {
    return DCMF_ERR_MALFORMED;
  }
  *out = get32(p + at);
  return 0;
}

static struct dcmf_svc_flow flow_of(uint32_t ssrc) {
  return (struct dcmf_svc_flow){
      .kind = DCMF_ASSOC_SRTP, .id = ssrc, .label = "", .protocol = ""};
}

static struct flow *flow_find(struct srtp_assoc *a, uint32_t ssrc) {
  for (size_t i = 0; i < a->n_flows; i++) {
    if (a->flows[i].ssrc == ssrc) {
      return &a->flows[i];
    }
  }
  return NULL;
}

/* ---- the hooks ---- */

static int sr_create(void **out, const struct dcmf_assoc_settings *settings,
                     const struct dcmf_assoc_events *ev) {
  /* No flow is declared in SDP (SSRCs come as they come): only the
   * backend is read. */
  struct srtp_assoc *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    return DCMF_ERR_NOMEM;
  }
  a->backend = settings->srtp_backend;
  a->ev = *ev;
  *out = a;
  return 0;
}

static void sr_destroy(void *assoc) {
  struct srtp_assoc *a = assoc;
  /* From the last: each report removes nothing, the table goes whole. */
  for (size_t i = a->n_flows; i-- > 0;) {
    if (!a->flows[i].refused) {
      struct dcmf_svc_flow f = flow_of(a->flows[i].ssrc);
      a->ev.flow_closed(a->ev.upper, &f, &a->flows[i].slot);
    }
  }
  a->n_flows = 0;
  dcmf_srtp_del(a->engine);
  free(a);
}

static int sr_connected(void *assoc, const struct dcmf_assoc_dtls *dtls) {
  struct srtp_assoc *a = assoc;
  const struct dcmf_srtp_profile_info *p =
      dcmf_srtp_profile_find(dtls->srtp_profile);
  if (p == NULL) {
    a->keys_dropped = a->engine != NULL;
    return DCMF_ERR_SYSTEM; /* the peer agreed to no profile we know */
  }
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  int rv =
      dtls->keys(dtls->keys_user, DCMF_SRTP_EXPORTER_LABEL, m, p->export_len);
  if (rv == 0) {
    enum dcmf_srtp_role role =
        dtls->dtls_server ? DCMF_SRTP_SERVER : DCMF_SRTP_CLIENT;
    /* A second DTLS association keys the same SSRCs: RFC 3711 §3.3.1
     * keeps their ROCs and SRTCP indices across the re-key. */
    rv = a->engine == NULL
             ? dcmf_srtp_new_with(&a->engine, a->backend, p->profile, m,
                                  p->export_len, role)
             : dcmf_srtp_rekey(a->engine, p->profile, m, p->export_len, role);
  }
  explicit_bzero(m, sizeof(m));
  if (rv != 0) {
    a->keys_dropped = a->engine != NULL;
    return DCMF_ERR_SYSTEM;
  }
  a->keys_dropped = 0;
  a->ev.state_changed(a->ev.lower, DCMF_ASSOC_UP, "SRTP keyed");
  return 0;
}

static void sr_dtls_in(void *assoc, const uint8_t *data, size_t len) {
  struct srtp_assoc *a = assoc;
  (void)data;
  (void)len;
  a->counts.dtls_data++; /* DTLS-SRTP carries no application data */
}

/* The flow an authenticated packet of |ssrc| goes to: found, or opened
 * now. NULL: drop it (refused, or the table is full; counted). */
static struct flow *flow_for(struct srtp_assoc *a, uint32_t ssrc) {
  struct flow *fl = flow_find(a, ssrc);
  if (fl == NULL) {
    if (a->n_flows == DCMF_ASSOC_SRTP_MAX_FLOWS) {
      a->counts.flow_limit++;
      /* Its packet authenticated, so the engine made it a state: drop
       * it, or a keyed peer cycling SSRCs grows the worker's memory and
       * every lookup without bound. */
      (void)dcmf_srtp_forget(a->engine, DCMF_SRTP_IN, ssrc);
      return NULL;
    }
    fl = &a->flows[a->n_flows++];
    *fl = (struct flow){.ssrc = ssrc};
    struct dcmf_svc_flow f = flow_of(ssrc);
    void *slot = NULL;
    /* The table does not move while the owner decides: it is fixed. */
    fl->refused = a->ev.flow_open(a->ev.upper, &f, &slot) != 0;
    fl->slot = slot;
  }
  if (fl->refused) {
    a->counts.refused_flow++;
    return NULL;
  }
  return fl;
}

static void sr_raw_in(void *assoc, const uint8_t *data, size_t len) {
  struct srtp_assoc *a = assoc;
  if (a->engine == NULL || a->keys_dropped) {
    a->counts.not_keyed++;
    return;
  }
  if (len > DCMF_ASSOC_SRTP_MAX_PACKET) {
    a->counts.too_large++;
    return;
  }
  uint32_t words[PACKET_WORDS];
  uint8_t *buf = (uint8_t *)words;
  memcpy(buf, data, len);
  int rtcp = len >= 2 && is_rtcp(buf);
  size_t n = 0;
  /* A refusal is counted by the engine, per reason and direction. */
  int rv = rtcp ? dcmf_srtp_unprotect_rtcp(a->engine, buf, len, &n)
                : dcmf_srtp_unprotect_rtp(a->engine, buf, len, &n);
  uint32_t ssrc;
  if (rv != 0 || packet_ssrc(buf, n, rtcp, &ssrc) != 0) {
    return;
  }
  struct flow *fl = flow_for(a, ssrc);
  if (fl != NULL) {
    struct dcmf_svc_flow f = flow_of(ssrc);
    a->ev.flow_message(a->ev.upper, &f, fl->slot, 1, buf, n);
  }
}

static int sr_send(void *assoc, uint32_t id, int binary, const uint8_t *data,
                   size_t len) {
  struct srtp_assoc *a = assoc;
  (void)binary; /* RTP is binary whatever the caller says */
  if (a->engine == NULL || a->keys_dropped) {
    return DCMF_ERR_INVALID;
  }
  if (len > DCMF_ASSOC_SRTP_MAX_PACKET) {
    return DCMF_ERR_TOO_LARGE;
  }
  if (len < 2) {
    return DCMF_ERR_MALFORMED;
  }
  int rtcp = is_rtcp(data);
  uint32_t ssrc;
  int rv = packet_ssrc(data, len, rtcp, &ssrc);
  if (rv != 0) {
    return rv;
  }
  if (ssrc != id) {
    return DCMF_ERR_INVALID;
  }
  /* Every SSRC sent costs an outbound state until the engine is freed:
   * past the cap a new one is refused, not one we know forgotten (its
   * ROC would restart while the peer's did not). */
  int known = 0;
  for (size_t i = 0; i < a->n_out && !known; i++) {
    known = a->out_ssrcs[i] == ssrc;
  }
  if (!known && a->n_out == DCMF_ASSOC_SRTP_MAX_OUT_SSRCS) {
    a->counts.out_ssrc_limit++;
    return DCMF_ERR_TOO_LARGE;
  }
  uint32_t words[PACKET_WORDS];
  uint8_t *buf = (uint8_t *)words;
  memcpy(buf, data, len);
  size_t n = 0;
  rv = rtcp ? dcmf_srtp_protect_rtcp(a->engine, buf, len, sizeof(words), &n)
            : dcmf_srtp_protect_rtp(a->engine, buf, len, sizeof(words), &n);
  if (!known && (rv == 0 || rv == DCMF_ERR_REPLAY)) {
    a->out_ssrcs[a->n_out++] = ssrc; /* the engine holds its state now */
  }
  if (rv == DCMF_ERR_REPLAY) {
    a->counts.out_replay++; /* the engine counted it too, as outbound */
    return 0;
  }
  if (rv != 0) {
    return rv;
  }
  a->ev.raw_out(a->ev.lower, buf, n);
  return 0;
}

static void sr_close_flow(void *assoc, uint32_t id) {
  struct srtp_assoc *a = assoc;
  struct flow *fl = flow_find(a, id);
  if (fl == NULL) {
    return;
  }
  struct flow gone = *fl;
  /* Out of the table first: the owner's report sees it closed. */
  *fl = a->flows[--a->n_flows];
  if (!gone.refused) {
    struct dcmf_svc_flow f = flow_of(id);
    a->ev.flow_closed(a->ev.upper, &f, &gone.slot);
  }
}

static enum dcmf_svc_flow_state sr_flow_state(void *assoc, uint32_t id) {
  struct srtp_assoc *a = assoc;
  const struct flow *fl = flow_find(a, id);
  return fl != NULL && !fl->refused ? DCMF_SVC_FLOW_OPEN : DCMF_SVC_FLOW_ABSENT;
}

static void sr_foreach_open(void *assoc,
                            void (*fn)(void *user,
                                       const struct dcmf_svc_flow *flow,
                                       void **slot),
                            void *user) {
  struct srtp_assoc *a = assoc;
  for (size_t i = 0; i < a->n_flows; i++) {
    if (!a->flows[i].refused) {
      struct dcmf_svc_flow f = flow_of(a->flows[i].ssrc);
      fn(user, &f, &a->flows[i].slot);
    }
  }
}

static void sr_stats(void *assoc, struct dcmf_assoc_stats *out) {
  struct srtp_assoc *a = assoc;
  if (a->engine == NULL) {
    out->srtp_profile = "";
    return;
  }
  const struct dcmf_srtp_profile_info *p =
      dcmf_srtp_profile_find((uint16_t)dcmf_srtp_profile(a->engine));
  const struct dcmf_srtp_stats *in = dcmf_srtp_stats(a->engine, DCMF_SRTP_IN);
  out->keyed = 1;
  out->srtp_profile = p != NULL ? p->name : "";
  out->srtp_auth = in->auth;
  out->srtp_replay = in->replay;
  /* Datagrams too large for the kind never reached the engine. */
  out->srtp_malformed = in->malformed + a->counts.too_large;
  out->srtp_previous = in->previous;
}

static int sr_drop_previous_keys(void *assoc) {
  struct srtp_assoc *a = assoc;
  return a->engine != NULL ? dcmf_srtp_drop_previous(a->engine)
                           : DCMF_ERR_NOT_FOUND;
}

const struct dcmf_assoc_ops dcmf_assoc_srtp = {
    .kind = DCMF_ASSOC_SRTP,
    .name = "SRTP",
    .raw_min = 128, /* RFC 7983: RTP and RTCP */
    .raw_max = 191,
    .srtp_profiles = DCMF_SRTP_PROFILE_LIST, /* dcmf_srtp_profile_list() */
    .rekeys = 1, /* RFC 3711 §3.3.1: ROCs outlive the keys */
    .create = sr_create,
    .update = NULL,
    .destroy = sr_destroy,
    .connected = sr_connected,
    .dtls_in = sr_dtls_in,
    .raw_in = sr_raw_in,
    .send = sr_send,
    .close_flow = sr_close_flow,
    .flow_state = sr_flow_state,
    .foreach_open = sr_foreach_open,
    .tick = NULL,
    .drop_previous_keys = sr_drop_previous_keys,
    .flush = NULL,
    .stats = sr_stats,
};

const struct dcmf_srtp *dcmf_assoc_srtp_engine(void *assoc) {
  struct srtp_assoc *a = assoc;
  return a->engine;
}

const struct dcmf_assoc_srtp_counts *dcmf_assoc_srtp_counts(void *assoc) {
  struct srtp_assoc *a = assoc;
  return &a->counts;
}
