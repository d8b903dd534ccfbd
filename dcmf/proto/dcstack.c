#include "dcstack.h"

#include <stdio.h>
#include <stdlib.h>

#include "assoc_sctp.h"
#include "errors.h"

struct dcmf_dcstack {
  struct dcmf_dcstack_callbacks cbs;
  void *user;
  struct dcmf_dtls *dtls;
  const struct dcmf_assoc_ops *kind;
  void *assoc;
  int dtls_server; /* our role, for kinds that key by it (SRTP) */
  int coalesce;    /* every DTLS engine of the stack gathers records */
  /* The kind holds keys from this DTLS engine: its |connected| took. */
  int keyed;
  /* A renewal replaced a DTLS engine that had keyed the kind, and the
   * new one has not connected yet: the kind goes on with the old keys
   * (raw datagrams in and out) until the re-key. */
  int old_keys;
  /* A kind whose media travels inside DTLS (no raw range: raw DTLS
   * data, T.38) cannot go on with keys: during a renewal the replaced
   * engine itself stays, carrying the media both ways, until the new one
   * connects (RFC 7345 §4.5: "receive on both meanwhile"); NULL
   * otherwise. |prev_done|: it failed or closed, to be freed. */
  struct dcmf_dtls *prev;
  int prev_done;
  char reason[64]; /* "SCTP did not start", for ASSOC_FAILED */
};

static void report(struct dcmf_dcstack *st, enum dcmf_dcstack_state state,
                   const char *reason) {
  st->cbs.state_changed(st->user, state, reason);
}

/* ---- the association → DTLS, UDP and the owner ------------------------ */

static void assoc_dtls_out(void *lower, const uint8_t *data, size_t len) {
  struct dcmf_dcstack *st = lower;
  /* Refused before DTLS is up (or after it failed): SCTP retransmits,
   * and an association that cannot start times out. During a renewal
   * of a kind carried inside DTLS the replaced engine sends. */
  struct dcmf_dtls *d =
      st->prev != NULL && !st->prev_done && !dcmf_dcstack_connected(st)
          ? st->prev
          : st->dtls;
  (void)dcmf_dtls_send(d, data, len);
}

static void assoc_raw_out(void *lower, const uint8_t *data, size_t len) {
  struct dcmf_dcstack *st = lower;
  st->cbs.send_datagram(st->user, data, len);
}

static void assoc_state(void *lower, enum dcmf_assoc_state state,
                        const char *reason) {
  struct dcmf_dcstack *st = lower;
  report(st,
         state == DCMF_ASSOC_UP ? DCMF_DCSTACK_ASSOC_UP
                                : DCMF_DCSTACK_ASSOC_DOWN,
         reason);
}

/* ---- DTLS → UDP, DTLS → the association -------------------------------- */

static void dtls_send_datagram(void *user, const uint8_t *data, size_t len) {
  struct dcmf_dcstack *st = user;
  st->cbs.send_datagram(st->user, data, len);
}

static void dtls_recv_data(void *user, const uint8_t *data, size_t len) {
  struct dcmf_dcstack *st = user;
  st->kind->dtls_in(st->assoc, data, len);
}

static int export_keys(void *keys_user, const char *label, uint8_t *out,
                       size_t len) {
  struct dcmf_dcstack *st = keys_user;
  return dcmf_dtls_export_keys(st->dtls, label, out, len);
}

static void prev_free(struct dcmf_dcstack *st) {
  if (st->prev != NULL) {
    dcmf_dtls_flush(st->prev);
    dcmf_dtls_del(st->prev);
    st->prev = NULL;
    st->prev_done = 0;
  }
}

static void dtls_state_changed(void *user, enum dcmf_dtls_state state,
                               const char *reason) {
  struct dcmf_dcstack *st = user;
  /* Whatever became of a renewal, the old keys are done with: replaced
   * now by the new ones, or (failed, closed) nothing is keyed. So is a
   * replaced engine still carrying the media (this runs on the new
   * engine's stack, never the old one's). */
  st->old_keys = 0;
  prev_free(st);
  if (state == DCMF_DTLS_CONNECTED) {
    report(st, DCMF_DCSTACK_DTLS_CONNECTED, reason);
    struct dcmf_assoc_dtls info = {
        .keys = export_keys,
        .keys_user = st,
        .srtp_profile = dcmf_dtls_srtp_profile(st->dtls),
        .dtls_server = st->dtls_server,
    };
    if (st->kind->connected(st->assoc, &info) != 0) {
      report(st, DCMF_DCSTACK_ASSOC_FAILED, st->reason);
    } else {
      st->keyed = 1;
    }
  } else {
    report(st,
           state == DCMF_DTLS_CLOSED ? DCMF_DCSTACK_DTLS_CLOSED
                                     : DCMF_DCSTACK_DTLS_FAILED,
           reason);
  }
}

/* DTLS gathered a record, or the association held a message: either
 * way the owner owes a dcmf_dcstack_flush at the end of its turn. */
static void owe_flush(void *user) {
  struct dcmf_dcstack *st = user;
  st->cbs.output_pending(st->user);
}

static const struct dcmf_dtls_callbacks dtls_cbs = {
    dtls_send_datagram, dtls_recv_data, dtls_state_changed,
    owe_flush};

/* The replaced engine of a renewal: its end is not the stack's (the new
 * association decides that), it is only let go. */
static void prev_state_changed(void *user, enum dcmf_dtls_state state,
                               const char *reason) {
  (void)state;
  (void)reason;
  struct dcmf_dcstack *st = user;
  st->prev_done = 1; /* freed once its call returns */
}

static const struct dcmf_dtls_callbacks prev_cbs = {
    dtls_send_datagram, dtls_recv_data, prev_state_changed, owe_flush};

/* ---- life cycle ---------------------------------------------------------- */

/* A DTLS engine for |st|: role |dtls_server|, the kind's use_srtp
 * profiles, coalescing as the stack was set up. Returns 0, or an error
 * of dcmf_dtls_new, _set_srtp_profiles or _coalesce (nothing made). */
static int dtls_make(struct dcmf_dcstack *st, struct dcmf_dtls_ctx *ctx,
                     int dtls_server, struct dcmf_dtls **out) {
  struct dcmf_dtls *d;
  int rv = dcmf_dtls_new(&d, ctx, dtls_server, &dtls_cbs, st);
  if (rv != 0) {
    return rv;
  }
  /* A kind that carries SRTP negotiates its own profiles; the others
   * keep the context's list (dtls.h). */
  if (st->kind->srtp_profiles != NULL &&
      (rv = dcmf_dtls_set_srtp_profiles(d, st->kind->srtp_profiles)) != 0) {
    dcmf_dtls_del(d);
    return rv;
  }
  if (st->coalesce && (rv = dcmf_dtls_coalesce(d)) != 0) {
    dcmf_dtls_del(d);
    return rv;
  }
  *out = d;
  return 0;
}

int dcmf_dcstack_new(struct dcmf_dcstack **out,
                     const struct dcmf_dcstack_settings *settings,
                     const struct dcmf_dcstack_callbacks *cbs, void *user) {
  struct dcmf_dcstack *st = calloc(1, sizeof(*st));
  if (st == NULL) {
    return DCMF_ERR_NOMEM;
  }
  st->cbs = *cbs;
  st->user = user;
  st->kind = settings->kind != NULL ? settings->kind : &dcmf_assoc_sctp;
  snprintf(st->reason, sizeof(st->reason), "%s did not start", st->kind->name);
  st->coalesce = settings->coalesce && cbs->output_pending != NULL;
  st->dtls_server = settings->dtls_server;
  int rv = dtls_make(st, settings->dtls_ctx, settings->dtls_server, &st->dtls);
  if (rv != 0) {
    free(st);
    return rv;
  }
  /* The flows' events go from the association to the owner in one call;
   * only what concerns DTLS passes through here. */
  struct dcmf_assoc_events ev = {
      .dtls_out = assoc_dtls_out,
      .raw_out = assoc_raw_out,
      .state_changed = assoc_state,
      .output_pending =
          cbs->output_pending != NULL ? owe_flush : NULL,
      .lower = st,
      .flow_open = cbs->flow_open,
      .flow_message = cbs->flow_message,
      .flow_closed = cbs->flow_closed,
      .writable = cbs->writable,
      .need_tick = cbs->need_tick,
      .upper = user,
  };
  rv = st->kind->create(&st->assoc, &settings->assoc, &ev);
  if (rv != 0) {
    dcmf_dtls_del(st->dtls);
    free(st);
    return rv;
  }
  *out = st;
  return 0;
}

void dcmf_dcstack_del(struct dcmf_dcstack *st) {
  if (st == NULL) {
    return;
  }
  st->kind->destroy(st->assoc); /* flows closed; SCTP's ABORT via DTLS */
  prev_free(st);
  dcmf_dtls_flush(st->dtls);    /* what was gathered, the ABORT last */
  dcmf_dtls_del(st->dtls);
  free(st);
}

int dcmf_dcstack_renew(struct dcmf_dcstack *st, struct dcmf_dtls_ctx *dtls_ctx,
                       int dtls_server) {
  if (!st->kind->rekeys) {
    return DCMF_ERR_INVALID; /* its state dies with DTLS: a new stack */
  }
  struct dcmf_dtls *d;
  int rv = dtls_make(st, dtls_ctx, dtls_server, &d);
  if (rv != 0) {
    return rv;
  }
  /* The kind keeps its keys while the new handshake runs, if this
   * engine (or one an earlier renewal replaced) gave it any. */
  st->old_keys = st->old_keys || (st->keyed && dcmf_dcstack_connected(st));
  st->keyed = 0;
  /* What was gathered leaves; then the old engine goes without a
   * close_notify: the peer's media runs on the old keys until the new
   * association is up, and an alert could make it stop. A kind carried
   * inside DTLS keeps the old engine itself until then (a second
   * renewal keeps the one that is connected, if any). */
  dcmf_dtls_flush(st->dtls);
  if (st->kind->raw_in == NULL && dcmf_dcstack_connected(st)) {
    prev_free(st);
    st->prev = st->dtls;
    dcmf_dtls_set_callbacks(st->prev, &prev_cbs, st);
  } else {
    dcmf_dtls_del(st->dtls);
  }
  st->dtls = d;
  st->dtls_server = dtls_server;
  return 0;
}

/* ---- the owner's calls --------------------------------------------------- */

void *dcmf_dcstack_assoc(struct dcmf_dcstack *st) {
  return st->assoc;
}

const struct dcmf_assoc_ops *dcmf_dcstack_kind(const struct dcmf_dcstack *st) {
  return st->kind;
}

struct dcmf_dc *dcmf_dcstack_dc(struct dcmf_dcstack *st) {
  return st->kind == &dcmf_assoc_sctp ? dcmf_assoc_sctp_dc(st->assoc) : NULL;
}

int dcmf_dcstack_set_remote_fingerprints(
    struct dcmf_dcstack *st, const struct dcmf_fingerprint_set *fp) {
  return dcmf_dtls_set_remote_fingerprints(st->dtls, fp);
}

void dcmf_dcstack_start(struct dcmf_dcstack *st) {
  dcmf_dtls_start(st->dtls);
}

int dcmf_dcstack_recv(struct dcmf_dcstack *st, const uint8_t *data,
                      size_t len) {
  if (st->prev == NULL) {
    return dcmf_dtls_recv(st->dtls, data, len);
  }
  /* A renewal of a kind carried inside DTLS: application data (record
   * type 23, RFC 6347 §4.1) belongs to the old association until the
   * new one is up; handshake, change_cipher_spec and alerts to the new
   * one. A new engine that connects here frees the old one. */
  int rv = len > 0 && data[0] == 23 && !st->prev_done
               ? dcmf_dtls_recv(st->prev, data, len)
               : dcmf_dtls_recv(st->dtls, data, len);
  if (st->prev_done) {
    prev_free(st);
  }
  return rv;
}

int dcmf_dcstack_recv_raw(struct dcmf_dcstack *st, const uint8_t *data,
                          size_t len) {
  /* Raw datagrams are keyed by DTLS (SRTP): nothing to do before, but
   * during a renewal the old keys still hold. */
  if (st->kind->raw_in == NULL ||
      (!dcmf_dcstack_connected(st) && !st->old_keys)) {
    return DCMF_ERR_INVALID;
  }
  st->kind->raw_in(st->assoc, data, len);
  return 0;
}

uint64_t dcmf_dcstack_next_expiry(struct dcmf_dcstack *st, uint64_t now) {
  long ms = dcmf_dtls_next_timeout_ms(st->dtls);
  return ms < 0 ? UINT64_MAX : now + (uint64_t)ms;
}

int dcmf_dcstack_drop_previous_keys(struct dcmf_dcstack *st) {
  if (st->assoc == NULL || st->kind->drop_previous_keys == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  return st->kind->drop_previous_keys(st->assoc);
}

void dcmf_dcstack_handle_expiry(struct dcmf_dcstack *st, uint64_t now) {
  /* OpenSSL keeps the timer itself (it reads its own clock): |now| only
   * says the owner's deadline came, and OpenSSL confirms. */
  (void)now;
  if (dcmf_dtls_next_timeout_ms(st->dtls) == 0) {
    dcmf_dtls_handle_timeout(st->dtls);
  }
}

void dcmf_dcstack_handle_tick(struct dcmf_dcstack *st) {
  if (st->kind->tick != NULL) {
    st->kind->tick(st->assoc);
  }
}

void dcmf_dcstack_flush(struct dcmf_dcstack *st) {
  /* The association's held output first: its packets become records
   * that the DTLS flush then sends. */
  if (st->kind->flush != NULL) {
    st->kind->flush(st->assoc);
  }
  if (st->prev != NULL) {
    dcmf_dtls_flush(st->prev);
  }
  dcmf_dtls_flush(st->dtls);
}

int dcmf_dcstack_connected(const struct dcmf_dcstack *st) {
  return dcmf_dtls_state(st->dtls) == DCMF_DTLS_CONNECTED;
}

const char *dcmf_dcstack_cipher(const struct dcmf_dcstack *st) {
  return dcmf_dtls_cipher(st->dtls);
}

uint16_t dcmf_dcstack_srtp_profile(const struct dcmf_dcstack *st) {
  return dcmf_dtls_srtp_profile(st->dtls);
}

int dcmf_dcstack_export_keys(struct dcmf_dcstack *st, const char *label,
                             uint8_t *out, size_t len) {
  return dcmf_dtls_export_keys(st->dtls, label, out, len);
}
