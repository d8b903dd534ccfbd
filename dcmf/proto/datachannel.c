#include "datachannel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcep.h"
#include "errors.h"

struct node {
  struct dcmf_dc_channel ch;
  int closing;     /* we reset our outgoing stream and wait for theirs */
  int ack_pending; /* the DATA_CHANNEL_ACK found SCTP full: owed */
  struct node *next;
};

struct dcmf_dc {
  struct dcmf_sctp *sctp;
  struct dcmf_dc_callbacks cbs;
  void *user;
  int up;
  struct node *channels;
  struct dcmf_dc_counters counters;
};

int dcmf_dc_new(struct dcmf_dc **out, struct dcmf_sctp *sctp,
                const struct dcmf_dc_callbacks *cbs, void *user) {
  struct dcmf_dc *dc = calloc(1, sizeof(*dc));
  if (dc == NULL) {
    return DCMF_ERR_NOMEM;
  }
  dc->sctp = sctp;
  dc->cbs = *cbs;
  dc->user = user;
  *out = dc;
  return 0;
}

void dcmf_dc_del(struct dcmf_dc *dc) {
  if (dc == NULL) {
    return;
  }
  while (dc->channels != NULL) {
    struct node *n = dc->channels;
    dc->channels = n->next;
    if (n->ch.open) {
      dc->cbs.channel_closed(dc->user, &n->ch);
    }
    free(n);
  }
  free(dc);
}

void dcmf_dc_foreach(struct dcmf_dc *dc,
                     void (*fn)(void *user, struct dcmf_dc_channel *ch),
                     void *user) {
  for (struct node *n = dc->channels; n; n = n->next) {
    fn(user, &n->ch);
  }
}

static struct node *node_find(struct dcmf_dc *dc, uint16_t sid) {
  for (struct node *n = dc->channels; n; n = n->next) {
    if (n->ch.sid == sid) {
      return n;
    }
  }
  return NULL;
}

struct dcmf_dc_channel *dcmf_dc_find(struct dcmf_dc *dc, uint16_t sid) {
  struct node *n = node_find(dc, sid);
  return n ? &n->ch : NULL;
}

static struct node *node_add(struct dcmf_dc *dc, uint16_t sid) {
  struct node *n = calloc(1, sizeof(*n));
  if (n != NULL) {
    n->ch.sid = sid;
    n->next = dc->channels;
    dc->channels = n;
  }
  return n;
}

static void node_remove(struct dcmf_dc *dc, struct node *gone) {
  for (struct node **pp = &dc->channels; *pp; pp = &(*pp)->next) {
    if (*pp == gone) {
      *pp = gone->next;
      free(gone);
      return;
    }
  }
}

static void copy_text(char *dst, size_t cap, const uint8_t *src, size_t len) {
  size_t n = len < cap - 1 ? len : cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

int dcmf_dc_add_negotiated(struct dcmf_dc *dc, uint16_t sid,
                           const char *protocol,
                           const struct dcmf_sctp_reliability *rel,
                           uint16_t priority) {
  if (sid == 65535 || node_find(dc, sid) != NULL) {
    return DCMF_ERR_INVALID;
  }
  struct node *n = node_add(dc, sid);
  if (n == NULL) {
    return DCMF_ERR_NOMEM;
  }
  n->ch.negotiated = 1;
  snprintf(n->ch.protocol, sizeof(n->ch.protocol), "%s",
           protocol ? protocol : "");
  if (rel != NULL) {
    n->ch.rel = *rel;
  }
  n->ch.priority = priority;
  if (dc->up) {
    n->ch.open = 1;
    if (dc->cbs.channel_open(dc->user, &n->ch) != 0) {
      dcmf_dc_close(dc, sid);
    }
  }
  return 0;
}

int dcmf_dc_open(struct dcmf_dc *dc, uint16_t sid, const char *label,
                 const char *protocol,
                 const struct dcmf_sctp_reliability *rel, uint16_t priority) {
  if (!dc->up || sid == 65535 || node_find(dc, sid) != NULL) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_sctp_reliability r = {0};
  if (rel != NULL) {
    r = *rel;
  }
  uint8_t type = r.policy == 1   ? DCMF_DCEP_PARTIAL_RELIABLE_REXMIT
                 : r.policy == 2 ? DCMF_DCEP_PARTIAL_RELIABLE_TIMED
                                 : DCMF_DCEP_RELIABLE;
  if (r.unordered) {
    type |= DCMF_DCEP_UNORDERED;
  }
  struct dcmf_dcep_open open = {
      .channel_type = type,
      .priority = priority,
      .reliability = r.value,
      .label = (const uint8_t *)label,
      .label_len = (uint16_t)strnlen(label, DCMF_DC_LABEL_MAX - 1),
      .protocol = (const uint8_t *)protocol,
      .protocol_len = (uint16_t)strnlen(protocol, DCMF_DC_LABEL_MAX - 1),
  };
  uint8_t msg[12 + 2 * DCMF_DC_LABEL_MAX];
  int len = dcmf_dcep_build_open(&open, msg, sizeof(msg));
  if (len < 0) {
    return len;
  }
  int rv = dcmf_sctp_send(dc->sctp, sid, DCMF_PPID_DCEP, msg, (size_t)len,
                          NULL);
  if (rv != 0) {
    return rv;
  }
  struct node *n = node_add(dc, sid);
  if (n == NULL) {
    return DCMF_ERR_NOMEM;
  }
  copy_text(n->ch.label, sizeof(n->ch.label), open.label, open.label_len);
  copy_text(n->ch.protocol, sizeof(n->ch.protocol), open.protocol,
            open.protocol_len);
  n->ch.rel = r;
  n->ch.priority = priority;
  n->ch.open = 1;
  return 0;
}

/* Opens every negotiated channel; a refused one is closed. */
static void open_negotiated(struct dcmf_dc *dc) {
  for (struct node *n = dc->channels; n; n = n->next) {
    if (n->ch.negotiated && !n->ch.open) {
      n->ch.open = 1;
      if (dc->cbs.channel_open(dc->user, &n->ch) != 0) {
        dcmf_dc_close(dc, n->ch.sid);
      }
    }
  }
}

void dcmf_dc_on_sctp_state(struct dcmf_dc *dc, enum dcmf_sctp_state state) {
  if (state == DCMF_SCTP_UP) {
    dc->up = 1;
    open_negotiated(dc);
    return;
  }
  dc->up = 0;
  while (dc->channels != NULL) {
    struct node *n = dc->channels;
    dc->channels = n->next;
    if (n->ch.open) {
      dc->cbs.channel_closed(dc->user, &n->ch);
    }
    free(n);
  }
}

/* Sends the DATA_CHANNEL_ACK channel |sid| owes, if any, ordered and
 * reliable whatever the channel type. Returns 0 (nothing owed any more:
 * sent, or given up because SCTP will not carry it) or
 * DCMF_ERR_EXHAUSTED (no room: it stays owed and goes before the
 * channel's first message, or on writable). The node is looked up again
 * after the send, and so must the callers: a callback run meanwhile (the
 * peer's reset of this very stream) may have freed it. */
static int send_ack(struct dcmf_dc *dc, uint16_t sid) {
  struct node *n = node_find(dc, sid);
  if (n == NULL || !n->ack_pending) {
    return 0;
  }
  n->ack_pending = 0;
  static const uint8_t ack = DCMF_DCEP_ACK;
  int rv = dcmf_sctp_send(dc->sctp, sid, DCMF_PPID_DCEP, &ack, 1, NULL);
  if (rv != DCMF_ERR_EXHAUSTED) {
    return 0;
  }
  if ((n = node_find(dc, sid)) != NULL) {
    n->ack_pending = 1;
  }
  return rv;
}

void dcmf_dc_on_sctp_writable(struct dcmf_dc *dc) {
  /* From the head each time: a send may add or free nodes. Every pass
   * pays one ACK or stops. */
  for (;;) {
    struct node *n = dc->channels;
    while (n != NULL && (!n->ack_pending || n->closing)) {
      n = n->next;
    }
    if (n == NULL || send_ack(dc, n->ch.sid) != 0) {
      return; /* all paid, or full again: the next call goes on */
    }
  }
}

static void on_dcep(struct dcmf_dc *dc, uint16_t sid, const uint8_t *data,
                    size_t len) {
  struct dcmf_dcep_open open;
  int type = dcmf_dcep_parse(data, len, &open);
  if (type == DCMF_DCEP_ACK) {
    return; /* we never open channels in-band, so nothing waits for it */
  }
  if (type != DCMF_DCEP_OPEN || node_find(dc, sid) != NULL) {
    /* Malformed, or an OPEN for a stream already in use: RFC 8832 6
     * leaves us no way to answer but to ignore it. */
    dc->counters.malformed++;
    return;
  }
  /* Either stream-id parity is accepted: some stacks (werift) pick odd ids
   * when they should pick even ones (RFC 8832 6). */
  struct node *n = node_add(dc, sid);
  if (n == NULL) {
    /* No memory to keep the channel: refuse it as an unserved one is
     * refused, so the phone sees it close instead of waiting for an ACK
     * that never comes. The stream reset allocates nothing of ours. */
    dc->counters.dcep_refused++;
    dcmf_sctp_reset_stream(dc->sctp, sid);
    return;
  }
  copy_text(n->ch.label, sizeof(n->ch.label), open.label, open.label_len);
  copy_text(n->ch.protocol, sizeof(n->ch.protocol), open.protocol,
            open.protocol_len);
  n->ch.priority = open.priority;
  n->ch.rel.unordered = (open.channel_type & DCMF_DCEP_UNORDERED) != 0;
  uint8_t base = (uint8_t)(open.channel_type & ~DCMF_DCEP_UNORDERED);
  n->ch.rel.policy = base == DCMF_DCEP_PARTIAL_RELIABLE_REXMIT ? 1
                     : base == DCMF_DCEP_PARTIAL_RELIABLE_TIMED ? 2
                                                                : 0;
  n->ch.rel.value = open.reliability;
  /* The ACK goes out ordered and reliable whatever the channel type. If
   * SCTP has no room (a large response in flight), it is owed: without
   * it the opener (libdatachannel, browsers) never calls the channel
   * open, while we do. */
  n->ack_pending = 1;
  send_ack(dc, sid);
  n = node_find(dc, sid);
  if (n == NULL) {
    return; /* the peer closed it already (its reset came with the OPEN) */
  }
  n->ch.open = 1;
  dc->counters.dcep_opened++;
  if (dc->cbs.channel_open(dc->user, &n->ch) != 0) {
    dc->counters.dcep_refused++;
    dcmf_dc_close(dc, sid);
  }
}

void dcmf_dc_on_sctp_message(struct dcmf_dc *dc, uint16_t sid, uint32_t ppid,
                             const uint8_t *data, size_t len) {
  if (ppid == DCMF_PPID_DCEP) {
    on_dcep(dc, sid, data, len);
    return;
  }
  struct node *n = node_find(dc, sid);
  if (n == NULL || !n->ch.open || n->closing) {
    dc->counters.unknown_stream++;
    return;
  }
  switch (ppid) {
  case DCMF_PPID_STRING:
  case DCMF_PPID_BINARY:
    dc->cbs.channel_message(dc->user, &n->ch, ppid == DCMF_PPID_BINARY, data,
                            len);
    break;
  case DCMF_PPID_STRING_EMPTY:
  case DCMF_PPID_BINARY_EMPTY:
    /* The one payload byte only exists because SCTP cannot carry an
     * empty message (RFC 8831 6.6). */
    dc->cbs.channel_message(dc->user, &n->ch,
                            ppid == DCMF_PPID_BINARY_EMPTY, data, 0);
    break;
  default:
    dc->counters.malformed++; /* deprecated partial PPIDs and unknown */
    break;
  }
}

void dcmf_dc_on_sctp_reset(struct dcmf_dc *dc, uint16_t sid) {
  struct node *n = node_find(dc, sid);
  if (n == NULL) {
    return;
  }
  if (!n->closing) {
    /* RFC 8831 6.7: the peer closed; reset our side too. */
    n->closing = 1;
    dcmf_sctp_reset_stream(dc->sctp, sid);
  }
  if (n->ch.open) {
    /* Closed before the callback runs, so what the callback sets off
     * (a relay closing the twin, which closes back) finds it closed. */
    n->ch.open = 0;
    dc->cbs.channel_closed(dc->user, &n->ch);
  }
  node_remove(dc, n);
}

int dcmf_dc_send(struct dcmf_dc *dc, uint16_t sid, int binary,
                 const uint8_t *data, size_t len) {
  struct node *n = node_find(dc, sid);
  if (n == NULL || !n->ch.open || n->closing) {
    return DCMF_ERR_NOT_FOUND;
  }
  if (n->ack_pending) {
    int rv = send_ack(dc, sid); /* it goes first on its stream */
    if (rv != 0) {
      return rv;
    }
    n = node_find(dc, sid);
    if (n == NULL || !n->ch.open || n->closing) {
      return DCMF_ERR_NOT_FOUND;
    }
  }
  static const uint8_t zero = 0;
  uint32_t ppid = binary ? DCMF_PPID_BINARY : DCMF_PPID_STRING;
  if (len == 0) {
    ppid = binary ? DCMF_PPID_BINARY_EMPTY : DCMF_PPID_STRING_EMPTY;
    data = &zero;
    len = 1;
  }
  return dcmf_sctp_send(dc->sctp, sid, ppid, data, len, &n->ch.rel);
}

void dcmf_dc_close(struct dcmf_dc *dc, uint16_t sid) {
  struct node *n = node_find(dc, sid);
  if (n == NULL || n->closing) {
    return;
  }
  n->closing = 1;
  dcmf_sctp_reset_stream(dc->sctp, sid);
  /* Closed for us from here on; the node stays until the peer resets its
   * side too (some stacks never do), so the stream id is not reused. */
  if (n->ch.open) {
    n->ch.open = 0;
    dc->cbs.channel_closed(dc->user, &n->ch);
  }
}

const struct dcmf_dc_counters *dcmf_dc_counters(const struct dcmf_dc *dc) {
  return &dc->counters;
}
