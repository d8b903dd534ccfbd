#include "assoc_sctp.h"

#include <stdlib.h>

#include "errors.h"

struct sctp_assoc {
  struct dcmf_assoc_events ev;
  struct dcmf_sctp *sctp;
  struct dcmf_dc *dc;
  uint16_t init_streams; /* what the INIT asks for, each way */
  int connected;         /* the INIT is out: init_streams is fixed */
};

/* A channel as a flow: built on the stack for each event (the strings
 * stay the channel's). */
static struct dcmf_svc_flow flow_of(const struct dcmf_dc_channel *ch) {
  return (struct dcmf_svc_flow){.kind = DCMF_ASSOC_SCTP,
                                .id = ch->sid,
                                .negotiated = ch->negotiated,
                                .label = ch->label,
                                .protocol = ch->protocol};
}

/* ---- SCTP → DTLS, SCTP → channels ------------------------------------ */

static void sctp_send_packet(void *user, const uint8_t *data, size_t len) {
  struct sctp_assoc *a = user;
  /* Before DTLS is up (or after it failed) DTLS refuses it: usrsctp
   * retransmits, and an association that cannot start times out. */
  a->ev.dtls_out(a->ev.lower, data, len);
}

static void sctp_message(void *user, uint16_t sid, uint32_t ppid,
                         const uint8_t *data, size_t len) {
  struct sctp_assoc *a = user;
  dcmf_dc_on_sctp_message(a->dc, sid, ppid, data, len);
}

static void sctp_reset(void *user, uint16_t sid) {
  struct sctp_assoc *a = user;
  dcmf_dc_on_sctp_reset(a->dc, sid);
}

static void sctp_state(void *user, enum dcmf_sctp_state state) {
  struct sctp_assoc *a = user;
  /* The owner hears UP before the channels open, and DOWN after the
   * channels have been reported closed. */
  if (state == DCMF_SCTP_UP) {
    a->ev.state_changed(a->ev.lower, DCMF_ASSOC_UP, "SCTP association up");
    dcmf_dc_on_sctp_state(a->dc, state);
  } else {
    dcmf_dc_on_sctp_state(a->dc, state);
    a->ev.state_changed(a->ev.lower, DCMF_ASSOC_DOWN, "SCTP association down");
  }
}

static void sctp_writable(void *user) {
  struct sctp_assoc *a = user;
  dcmf_dc_on_sctp_writable(a->dc); /* owed DCEP ACKs before anything */
  if (a->ev.writable != NULL) {
    a->ev.writable(a->ev.upper);
  }
}

static void sctp_need_tick(void *user) {
  struct sctp_assoc *a = user;
  if (a->ev.need_tick != NULL) {
    a->ev.need_tick(a->ev.upper);
  }
}

static void sctp_output_pending(void *user) {
  struct sctp_assoc *a = user;
  a->ev.output_pending(a->ev.lower);
}

static const struct dcmf_sctp_callbacks sctp_cbs = {
    .send_packet = sctp_send_packet,
    .message = sctp_message,
    .stream_reset = sctp_reset,
    .state_changed = sctp_state,
    .writable = sctp_writable,
    .need_tick = sctp_need_tick,
    .output_pending = sctp_output_pending};

/* ---- channels → the owner --------------------------------------------- */

static int channel_open(void *user, struct dcmf_dc_channel *ch) {
  struct sctp_assoc *a = user;
  struct dcmf_svc_flow f = flow_of(ch);
  return a->ev.flow_open(a->ev.upper, &f, &ch->service);
}

static void channel_message(void *user, struct dcmf_dc_channel *ch, int binary,
                            const uint8_t *data, size_t len) {
  struct sctp_assoc *a = user;
  struct dcmf_svc_flow f = flow_of(ch);
  a->ev.flow_message(a->ev.upper, &f, ch->service, binary, data, len);
}

static void channel_closed(void *user, struct dcmf_dc_channel *ch) {
  struct sctp_assoc *a = user;
  struct dcmf_svc_flow f = flow_of(ch);
  a->ev.flow_closed(a->ev.upper, &f, &ch->service);
}

static const struct dcmf_dc_callbacks dc_cbs = {channel_open, channel_message,
                                                channel_closed};

/* ---- the hooks ----------------------------------------------------------- */

static void declare(struct sctp_assoc *a,
                    const struct dcmf_assoc_settings *settings) {
  for (size_t i = 0; i < settings->n_streams; i++) {
    const struct dcmf_assoc_stream *st = &settings->streams[i];
    if (st->id <= UINT16_MAX && dcmf_dc_find(a->dc, (uint16_t)st->id) == NULL) {
      /* A stream the table refuses (65535, or no memory) stays
       * undeclared; the peer may still open it in-band. */
      (void)dcmf_dc_add_negotiated(a->dc, (uint16_t)st->id, st->protocol,
                                   &st->rel, st->priority);
    }
  }
}

uint16_t dcmf_assoc_sctp_init_streams(const struct dcmf_assoc_settings *st) {
  uint16_t ceiling = st->sctp.max_streams > 0 ? st->sctp.max_streams : 1;
  if (st->sctp_min_streams == 0) {
    return ceiling;
  }
  uint32_t n = st->sctp_min_streams;
  for (size_t i = 0; i < st->n_streams; i++) {
    /* 65535 is no stream (RFC 8831 6.6); such an id is never declared */
    if (st->streams[i].id < UINT16_MAX && st->streams[i].id + 1 > n) {
      n = st->streams[i].id + 1;
    }
  }
  return n < ceiling ? (uint16_t)n : ceiling;
}

static int sa_create(void **out, const struct dcmf_assoc_settings *settings,
                     const struct dcmf_assoc_events *ev) {
  struct sctp_assoc *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    return DCMF_ERR_NOMEM;
  }
  a->ev = *ev;
  struct dcmf_sctp_settings ss = settings->sctp;
  ss.max_streams = a->init_streams = dcmf_assoc_sctp_init_streams(settings);
  ss.bundle = ss.bundle && ev->output_pending != NULL;
  int rv = dcmf_sctp_new(&a->sctp, &ss, &sctp_cbs, a);
  if (rv != 0) {
    free(a);
    return rv;
  }
  rv = dcmf_dc_new(&a->dc, a->sctp, &dc_cbs, a);
  if (rv != 0) {
    dcmf_sctp_del(a->sctp);
    free(a);
    return rv;
  }
  declare(a, settings);
  *out = a;
  return 0;
}

/* The streams this association carries each way: what the peer agreed
 * to once it is up, what our INIT asked for before. */
static uint16_t carried_streams(const struct sctp_assoc *a) {
  uint16_t in, out;
  if (dcmf_sctp_streams(a->sctp, &in, &out) == 0) {
    return in < out ? in : out;
  }
  return a->init_streams;
}

static int sa_update(void *assoc, const struct dcmf_assoc_settings *settings) {
  struct sctp_assoc *a = assoc;
  declare(a, settings);
  uint16_t want = dcmf_assoc_sctp_init_streams(settings);
  if (!a->connected && want > a->init_streams &&
      dcmf_sctp_set_init_streams(a->sctp, want) == 0) {
    a->init_streams = want; /* the INIT is not out yet: it asks for them */
  }
  /* Once the INIT is out the count is fixed (sctp.h): a declared stream
   * at or above it (or above the peer's) cannot open on this
   * association. */
  uint16_t carried = carried_streams(a);
  for (size_t i = 0; i < settings->n_streams; i++) {
    if (settings->streams[i].id < UINT16_MAX &&
        settings->streams[i].id >= carried) {
      return DCMF_ERR_TOO_LARGE;
    }
  }
  return 0;
}

static void sa_destroy(void *assoc) {
  struct sctp_assoc *a = assoc;
  dcmf_dc_del(a->dc);     /* reports each open channel closed */
  dcmf_sctp_del(a->sctp); /* its ABORT still goes out through DTLS */
  free(a);
}

static int sa_connected(void *assoc, const struct dcmf_assoc_dtls *dtls) {
  struct sctp_assoc *a = assoc;
  (void)dtls; /* SCTP rides inside DTLS: no keys of its own */
  a->connected = 1;
  return dcmf_sctp_connect(a->sctp) == 0 ? 0 : DCMF_ERR_SYSTEM;
}

static void sa_dtls_in(void *assoc, const uint8_t *data, size_t len) {
  struct sctp_assoc *a = assoc;
  dcmf_sctp_input(a->sctp, data, len);
}

static int sa_send(void *assoc, uint32_t id, int binary, const uint8_t *data,
                   size_t len) {
  struct sctp_assoc *a = assoc;
  if (id > UINT16_MAX) {
    return DCMF_ERR_NOT_FOUND;
  }
  return dcmf_dc_send(a->dc, (uint16_t)id, binary, data, len);
}

static void sa_close_flow(void *assoc, uint32_t id) {
  struct sctp_assoc *a = assoc;
  if (id <= UINT16_MAX) {
    dcmf_dc_close(a->dc, (uint16_t)id);
  }
}

static enum dcmf_svc_flow_state sa_flow_state(void *assoc, uint32_t id) {
  struct sctp_assoc *a = assoc;
  if (id > UINT16_MAX) {
    return DCMF_SVC_FLOW_ABSENT;
  }
  const struct dcmf_dc_channel *ch = dcmf_dc_find(a->dc, (uint16_t)id);
  return ch == NULL ? DCMF_SVC_FLOW_ABSENT
         : ch->open ? DCMF_SVC_FLOW_OPEN
                    : DCMF_SVC_FLOW_PENDING;
}

struct foreach_ctx {
  void (*fn)(void *user, const struct dcmf_svc_flow *flow, void **slot);
  void *user;
};

static void foreach_one(void *user, struct dcmf_dc_channel *ch) {
  struct foreach_ctx *c = user;
  if (ch->open) {
    struct dcmf_svc_flow f = flow_of(ch);
    c->fn(c->user, &f, &ch->service);
  }
}

static void sa_foreach_open(void *assoc,
                            void (*fn)(void *user,
                                       const struct dcmf_svc_flow *flow,
                                       void **slot),
                            void *user) {
  struct sctp_assoc *a = assoc;
  struct foreach_ctx c = {fn, user};
  dcmf_dc_foreach(a->dc, foreach_one, &c);
}

static void sa_tick(void *assoc) {
  struct sctp_assoc *a = assoc;
  dcmf_sctp_handle_tick(a->sctp);
}

static void sa_flush(void *assoc) {
  struct sctp_assoc *a = assoc;
  dcmf_sctp_flush(a->sctp);
}

const struct dcmf_assoc_ops dcmf_assoc_sctp = {
    .kind = DCMF_ASSOC_SCTP,
    .name = "SCTP",
    .raw_min = 1, /* none: SCTP rides inside DTLS */
    .raw_max = 0,
    .srtp_profiles = NULL, /* the context's list, as phones expect */
    .create = sa_create,
    .update = sa_update,
    .destroy = sa_destroy,
    .connected = sa_connected,
    .dtls_in = sa_dtls_in,
    .raw_in = NULL,
    .send = sa_send,
    .close_flow = sa_close_flow,
    .flow_state = sa_flow_state,
    .foreach_open = sa_foreach_open,
    .tick = sa_tick,
    .flush = sa_flush,
};

struct dcmf_dc *dcmf_assoc_sctp_dc(void *assoc) {
  struct sctp_assoc *a = assoc;
  return a->dc;
}
