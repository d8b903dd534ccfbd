#include "dcstack.h"

#include <stdlib.h>

#include "errors.h"

struct dcmf_dcstack {
  struct dcmf_dcstack_callbacks cbs;
  void *user;
  struct dcmf_dtls *dtls;
  struct dcmf_sctp *sctp;
  struct dcmf_dc *dc;
};

static void report(struct dcmf_dcstack *st, enum dcmf_dcstack_state state,
                   const char *reason) {
  st->cbs.state_changed(st->user, state, reason);
}

/* ---- SCTP → DTLS, SCTP → channels ------------------------------------ */

static void sctp_send_packet(void *user, const uint8_t *data, size_t len) {
  struct dcmf_dcstack *st = user;
  /* Before DTLS is up (or after it failed) this is refused: usrsctp
   * retransmits, and an association that cannot start times out. */
  (void)dcmf_dtls_send(st->dtls, data, len);
}

static void sctp_message(void *user, uint16_t sid, uint32_t ppid,
                         const uint8_t *data, size_t len) {
  struct dcmf_dcstack *st = user;
  dcmf_dc_on_sctp_message(st->dc, sid, ppid, data, len);
}

static void sctp_reset(void *user, uint16_t sid) {
  struct dcmf_dcstack *st = user;
  dcmf_dc_on_sctp_reset(st->dc, sid);
}

static void sctp_state(void *user, enum dcmf_sctp_state state) {
  struct dcmf_dcstack *st = user;
  /* The owner hears UP before the channels open, and DOWN after the
   * channels have been reported closed. */
  if (state == DCMF_SCTP_UP) {
    report(st, DCMF_DCSTACK_SCTP_UP, "SCTP association up");
    dcmf_dc_on_sctp_state(st->dc, state);
  } else {
    dcmf_dc_on_sctp_state(st->dc, state);
    report(st, DCMF_DCSTACK_SCTP_DOWN, "SCTP association down");
  }
}

static void sctp_writable(void *user) {
  struct dcmf_dcstack *st = user;
  dcmf_dc_on_sctp_writable(st->dc); /* owed DCEP ACKs before anything */
  if (st->cbs.writable != NULL) {
    st->cbs.writable(st->user);
  }
}

static void sctp_need_tick(void *user) {
  struct dcmf_dcstack *st = user;
  if (st->cbs.need_tick != NULL) {
    st->cbs.need_tick(st->user);
  }
}

static const struct dcmf_sctp_callbacks sctp_cbs = {
    sctp_send_packet, sctp_message,  sctp_reset,
    sctp_state,       sctp_writable, sctp_need_tick};

/* ---- DTLS → UDP, DTLS → SCTP ----------------------------------------- */

static void dtls_send_datagram(void *user, const uint8_t *data, size_t len) {
  struct dcmf_dcstack *st = user;
  st->cbs.send_datagram(st->user, data, len);
}

static void dtls_recv_data(void *user, const uint8_t *data, size_t len) {
  struct dcmf_dcstack *st = user;
  dcmf_sctp_input(st->sctp, data, len);
}

static void dtls_state_changed(void *user, enum dcmf_dtls_state state,
                               const char *reason) {
  struct dcmf_dcstack *st = user;
  if (state == DCMF_DTLS_CONNECTED) {
    report(st, DCMF_DCSTACK_DTLS_CONNECTED, reason);
    if (dcmf_sctp_connect(st->sctp) != 0) {
      report(st, DCMF_DCSTACK_SCTP_FAILED, "SCTP did not start");
    }
  } else {
    report(st,
           state == DCMF_DTLS_CLOSED ? DCMF_DCSTACK_DTLS_CLOSED
                                     : DCMF_DCSTACK_DTLS_FAILED,
           reason);
  }
}

static const struct dcmf_dtls_callbacks dtls_cbs = {
    dtls_send_datagram, dtls_recv_data, dtls_state_changed};

/* ---- life cycle ---------------------------------------------------------- */

int dcmf_dcstack_new(struct dcmf_dcstack **out,
                     const struct dcmf_dcstack_settings *settings,
                     const struct dcmf_dcstack_callbacks *cbs, void *user) {
  struct dcmf_dcstack *st = calloc(1, sizeof(*st));
  if (st == NULL) {
    return DCMF_ERR_NOMEM;
  }
  st->cbs = *cbs;
  st->user = user;
  int rv = dcmf_dtls_new(&st->dtls, settings->dtls_ctx, settings->dtls_server,
                         &dtls_cbs, st);
  if (rv != 0) {
    goto fail_dtls;
  }
  rv = dcmf_sctp_new(&st->sctp, &settings->sctp, &sctp_cbs, st);
  if (rv != 0) {
    goto fail_sctp;
  }
  /* The channel layer calls the owner directly: nothing to add there. */
  struct dcmf_dc_callbacks dc_cbs = {cbs->channel_open, cbs->channel_message,
                                     cbs->channel_closed};
  rv = dcmf_dc_new(&st->dc, st->sctp, &dc_cbs, user);
  if (rv != 0) {
    goto fail_dc;
  }
  *out = st;
  return 0;

fail_dc:
  dcmf_sctp_del(st->sctp);
fail_sctp:
  dcmf_dtls_del(st->dtls);
fail_dtls:
  free(st);
  return rv;
}

void dcmf_dcstack_del(struct dcmf_dcstack *st) {
  if (st == NULL) {
    return;
  }
  dcmf_dc_del(st->dc);     /* reports each open channel closed */
  dcmf_sctp_del(st->sctp); /* its ABORT still goes out through DTLS */
  dcmf_dtls_del(st->dtls);
  free(st);
}

/* ---- the owner's calls --------------------------------------------------- */

struct dcmf_dc *dcmf_dcstack_dc(struct dcmf_dcstack *st) {
  return st->dc;
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
  return dcmf_dtls_recv(st->dtls, data, len);
}

uint64_t dcmf_dcstack_next_expiry(struct dcmf_dcstack *st, uint64_t now) {
  long ms = dcmf_dtls_next_timeout_ms(st->dtls);
  return ms < 0 ? UINT64_MAX : now + (uint64_t)ms;
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
  dcmf_sctp_handle_tick(st->sctp);
}

int dcmf_dcstack_connected(const struct dcmf_dcstack *st) {
  return dcmf_dtls_state(st->dtls) == DCMF_DTLS_CONNECTED;
}

const char *dcmf_dcstack_cipher(const struct dcmf_dcstack *st) {
  return dcmf_dtls_cipher(st->dtls);
}
