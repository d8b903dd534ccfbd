/*
 * assoc_dtlsdata.c - the raw DTLS data association kind
 * (assoc_dtlsdata.h says what it does): one flow, one record per
 * datagram of the media.
 */
#include "assoc_dtlsdata.h"

#include <stdlib.h>

#include "errors.h"

struct dd_assoc {
  struct dcmf_assoc_events ev;
  int connected;
  int open;    /* the flow is open */
  int refused; /* the owner refused it */
  void *slot;
  struct dcmf_assoc_dtlsdata_counts counts;
};

static struct dcmf_svc_flow the_flow(void) {
  return (struct dcmf_svc_flow){.kind = DCMF_ASSOC_DTLS_DATA,
                                .id = DCMF_ASSOC_DTLSDATA_FLOW,
                                .label = "",
                                .protocol = ""};
}

static int dd_create(void **out, const struct dcmf_assoc_settings *settings,
                     const struct dcmf_assoc_events *ev) {
  (void)settings; /* nothing is declared: the one flow is implicit */
  struct dd_assoc *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    return DCMF_ERR_NOMEM;
  }
  a->ev = *ev;
  *out = a;
  return 0;
}

static void close_open_flow(struct dd_assoc *a) {
  if (a->open) {
    struct dcmf_svc_flow f = the_flow();
    a->open = 0;
    a->ev.flow_closed(a->ev.upper, &f, &a->slot);
  }
}

static void dd_destroy(void *assoc) {
  struct dd_assoc *a = assoc;
  close_open_flow(a);
  free(a);
}

static int dd_connected(void *assoc, const struct dcmf_assoc_dtls *dtls) {
  (void)dtls; /* no keys to export: DTLS itself protects the media */
  struct dd_assoc *a = assoc;
  int first = !a->connected;
  a->connected = 1;
  a->ev.state_changed(a->ev.lower, DCMF_ASSOC_UP,
                      first ? "DTLS data up" : "DTLS data renewed");
  if (!a->open && !a->refused) {
    struct dcmf_svc_flow f = the_flow();
    a->slot = NULL;
    if (a->ev.flow_open(a->ev.upper, &f, &a->slot) == 0) {
      a->open = 1;
    } else {
      a->refused = 1;
    }
  }
  return 0;
}

static void dd_dtls_in(void *assoc, const uint8_t *data, size_t len) {
  struct dd_assoc *a = assoc;
  if (len == 0 || len > DCMF_ASSOC_DTLSDATA_MAX_PACKET) {
    a->counts.bad_size++;
    return;
  }
  if (!a->open) {
    a->counts.not_open++;
    return;
  }
  struct dcmf_svc_flow f = the_flow();
  a->ev.flow_message(a->ev.upper, &f, a->slot, 1, data, len);
}

static int dd_send(void *assoc, uint32_t id, int binary, const uint8_t *data,
                   size_t len) {
  (void)binary;
  struct dd_assoc *a = assoc;
  if (!a->connected) {
    return DCMF_ERR_INVALID;
  }
  if (id != DCMF_ASSOC_DTLSDATA_FLOW) {
    return DCMF_ERR_NOT_FOUND;
  }
  if (len == 0 || len > DCMF_ASSOC_DTLSDATA_MAX_PACKET) {
    a->counts.bad_size++;
    return DCMF_ERR_TOO_LARGE;
  }
  a->ev.dtls_out(a->ev.lower, data, len);
  return 0;
}

static void dd_close_flow(void *assoc, uint32_t id) {
  struct dd_assoc *a = assoc;
  if (id == DCMF_ASSOC_DTLSDATA_FLOW) {
    close_open_flow(a);
  }
}

static enum dcmf_svc_flow_state dd_flow_state(void *assoc, uint32_t id) {
  struct dd_assoc *a = assoc;
  if (id != DCMF_ASSOC_DTLSDATA_FLOW) {
    return DCMF_SVC_FLOW_ABSENT;
  }
  return a->open ? DCMF_SVC_FLOW_OPEN : DCMF_SVC_FLOW_PENDING;
}

static void dd_foreach_open(void *assoc,
                            void (*fn)(void *user,
                                       const struct dcmf_svc_flow *flow,
                                       void **slot),
                            void *user) {
  struct dd_assoc *a = assoc;
  if (a->open) {
    struct dcmf_svc_flow f = the_flow();
    fn(user, &f, &a->slot);
  }
}

static void dd_stats(void *assoc, struct dcmf_assoc_stats *out) {
  struct dd_assoc *a = assoc;
  out->keyed = a->connected;
  out->srtp_profile = "";
}

const struct dcmf_assoc_ops dcmf_assoc_dtlsdata = {
    .kind = DCMF_ASSOC_DTLS_DATA,
    .name = "DTLS data",
    .raw_min = 1, /* no raw range */
    .raw_max = 0,
    .srtp_profiles = NULL,
    /* The flow outlives a DTLS association renewed under it (RFC 7345
     * §4.5: media goes on until the new association is up). */
    .rekeys = 1,
    .create = dd_create,
    .update = NULL,
    .destroy = dd_destroy,
    .connected = dd_connected,
    .dtls_in = dd_dtls_in,
    .raw_in = NULL,
    .send = dd_send,
    .close_flow = dd_close_flow,
    .flow_state = dd_flow_state,
    .foreach_open = dd_foreach_open,
    .tick = NULL,
    .drop_previous_keys = NULL,
    .flush = NULL,
    .stats = dd_stats,
};

const struct dcmf_assoc_dtlsdata_counts *
dcmf_assoc_dtlsdata_counts(void *assoc) {
  struct dd_assoc *a = assoc;
  return &a->counts;
}
