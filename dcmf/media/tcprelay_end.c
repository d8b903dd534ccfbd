/*
 * tcprelay_end.c - how a TCP relay ends (tcprelay.h): both legs released
 * together, each connection closed by tcpconn.h (gracefully: the FIN
 * after what is queued, the peer's remaining input read and dropped
 * until its own FIN, within DCMF_TCPCONN_LINGER_MS, then a reset; or a
 * reset at once). Worker thread, like the rest of the relay.
 */
#include "tcprelay_int.h"

#include "tcprelay_msrp.h"

void tcprelay_leg_close(struct leg *l, int reset) {
  tcprelay_leg_stop_setup(l);
  if (l->conn == NULL || (l->closing && !reset)) {
    return;
  }
  l->closing = 1;
  l->s = NULL; /* the tcpconn's from now on */
  l->reading = 0;
  dcmf_tcpconn_close(l->conn,
                     reset ? DCMF_TCPCONN_ABORT : DCMF_TCPCONN_GRACEFUL);
}

void tcprelay_relay_end(struct dcmf_tcprelay *r, const char *reason,
                        int reset) {
  if (r->ended) {
    return;
  }
  if (!reset) {
    tcprelay_msrp_flush(r);
    if (r->ended) {
      return; /* the flush failed and ended it */
    }
  }
  r->ended = 1;
  if (r->tls_started && dcmf_tlspump_get_state(&r->tls) == DCMF_TLSPUMP_OPEN &&
      !reset) {
    dcmf_tlspump_shutdown(&r->tls); /* close_notify to the UE */
  }
  if (r->tls_started) {
    tcprelay_tls_flush(r); /* a close_notify or the alert of a failure */
  }
  for (int i = 0; i < 2; i++) {
    tcprelay_leg_close(&r->leg[i], reset);
  }
  if (r->timer != NULL) {
    /* Nothing left to establish; each connection bounds its own close. */
    uv_close((uv_handle_t *)r->timer, tcprelay_on_handle_closed);
    r->timer = NULL;
  }
  tcprelay_msrp_end(r);
  tcprelay_emitf(r, "TCP_CLOSED", "{\"reason\":\"%s\"}", NULL, reason);
  tcprelay_push_counters(r, 1);
}
