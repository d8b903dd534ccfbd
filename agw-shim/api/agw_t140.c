/*
 * agw_t140.c - the T.140 part of the AGW shim's glue (docs/e2ae.md
 * "T.140 over a data channel <-> RTP"): the worker's description of such
 * a context's media, and its counters (T140_COUNTERS snapshots, kept for
 * GET and summed for /metrics). Control thread.
 */
#include "agw_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

int dcmf_agw_t140_desc(const struct dcmf_agwiq *iq, struct dcmf_media_desc *d) {
  /* The description the RTP path's builder made (access session, core
   * RTP leg with its sockets) becomes a data channel session: SCTP, the
   * negotiated t140 stream, and the leg's T.140 settings. */
  struct dcmf_media_stream *st = calloc(1, sizeof(*st));
  if (st == NULL) {
    return DCMF_ERR_NOMEM;
  }
  d->assoc = DCMF_ASSOC_SCTP;
  d->local_sctp_port = 5000;
  d->remote_sctp_port = iq->dc_sctp_port;
  /* Ours (RFC 8841): T.140 messages are small; a WIC that sends more at
   * once is refused by SCTP rather than buffered. */
  d->max_message_size = 64 * 1024;
  st->sid = iq->dc_sid;
  snprintf(st->protocol, sizeof(st->protocol), "t140");
  /* reliable and ordered (zeroed rel): RFC 8865 §4.1 */
  free(d->streams);
  d->streams = st;
  d->n_streams = 1;
  struct dcmf_media_t140 *t = &d->rtpleg->t140;
  t->on = 1;
  t->sid = iq->dc_sid;
  t->pt_t140 = iq->t140_pt;
  t->pt_red = iq->t140_red_pt;
  t->use_red = iq->t140_red;
  t->generations = iq->t140_red ? iq->t140_generations : 0;
  t->cps_to_dc = iq->t140_cps;
  t->cps_to_rtp = iq->t140_core_cps;
  t->direction = iq->t140_direction;
  return 0;
}

/* The counters of a T140_COUNTERS snapshot (t140_svc.h) as /metrics
 * shows them: dcmf_agw_e2ae_t140_<metric>_total{...}. */
static const struct dcmf_agw_series t140_counters[] = {
    {"toCore", "packets", "packets", "direction=\"to_core\""},
    {"fromCore", "packets", "packets", "direction=\"from_core\""},
    {"toCore", "bytes", "bytes", "direction=\"to_core\""},
    {"toCore", "keepalives", "keepalives", ""},
    {"toCore", "chars", "chars", "direction=\"to_core\""},
    {"toAccess", "chars", "chars", "direction=\"to_access\""},
    {"toAccess", "messages", "messages", "direction=\"to_access\""},
    {"fromCore", "recovered", "recovered", ""},
    {"fromCore", "lost", "lost", ""},
    {"markers", "toAccess", "markers", "direction=\"to_access\""},
    {"markers", "toCore", "markers", "direction=\"to_core\""},
    {"drops", "version", "dropped", "reason=\"version\""},
    {"drops", "truncated", "dropped", "reason=\"truncated\""},
    {"drops", "payloadType", "dropped", "reason=\"payload_type\""},
    {"drops", "red", "dropped", "reason=\"red\""},
    {"drops", "tooLarge", "dropped", "reason=\"too_large\""},
    {"drops", "utf8", "dropped", "reason=\"utf8\""},
    {"drops", "duplicate", "dropped", "reason=\"duplicate\""},
    {"drops", "direction", "dropped", "reason=\"direction\""},
    {"drops", "unknownSource", "dropped", "reason=\"unknown_source\""},
    {"drops", "rate", "dropped", "reason=\"rate\""},
    {"drops", "overflow", "dropped", "reason=\"overflow\""},
    {"drops", "sendFailed", "dropped", "reason=\"send_failed\""},
    {"rtcp", "sent", "rtcp", "direction=\"to_core\""},
    {"rtcp", "received", "rtcp", "direction=\"from_core\""},
    {"rtcp", "byeSent", "rtcp_byes", "direction=\"to_core\""},
    {"rtcp", "byeReceived", "rtcp_byes", "direction=\"from_core\""},
    {"rtcp", "reportBlocks", "rtcp_report_blocks", ""},
    {"rtcp", "malformed", "dropped", "reason=\"rtcp_malformed\""},
    {"rtcp", "sendFailed", "dropped", "reason=\"rtcp_send_failed\""},
};
#define T140_COUNTERS (sizeof(t140_counters) / sizeof(t140_counters[0]))
_Static_assert(T140_COUNTERS == DCMF_AGW_T140_COUNTERS,
               "agw_int.h sizes the totals by this table");

void dcmf_agw_t140_snapshot(struct dcmf_agw *agw, json_t **kept,
                            const char *detail) {
  dcmf_agw_series_take(t140_counters, T140_COUNTERS, agw->totals_t140, kept,
                       detail);
}

void dcmf_agw_t140_metrics(struct dcmf_agw *agw, struct dcmf_buf *out) {
  static const struct dcmf_agw_family families[] = {
      {"packets", "RTP text packets the T.140 media sent to or took from the "
                  "core."},
      {"bytes", "Bytes of the RTP text packets sent to the core."},
      {"keepalives", "Keep-alive packets (empty T140blocks after 15 s idle) "
                     "sent to the core."},
      {"chars", "Characters of text relayed, by direction."},
      {"messages", "Data channel messages of text sent to the WIC."},
      {"recovered", "RTP text packets rebuilt from redundancy (RFC 4103 "
                    "section 4)."},
      {"lost", "RTP text packets neither received nor rebuilt."},
      {"markers", "Missing-text markers (U+FFFD) inserted, by direction."},
      {"dropped", "Input the T.140 media dropped, by reason."},
      {"rtcp", "RTCP compounds (RFC 3550 section 6) sent to or taken from "
               "the core."},
      {"rtcp_byes", "RTCP compounds with a BYE sent to or taken from the "
                    "core."},
      {"rtcp_report_blocks", "Report blocks about the gateway's text "
                             "stream in the core's RTCP."},
  };
  dcmf_buf_printf(out,
                  "# HELP dcmf_agw_e2ae_t140_contexts_total T.140 contexts "
                  "made.\n"
                  "# TYPE dcmf_agw_e2ae_t140_contexts_total counter\n"
                  "dcmf_agw_e2ae_t140_contexts_total %llu\n",
                  (unsigned long long)agw->t140_contexts);
  dcmf_agw_series_render(out, "dcmf_agw_e2ae_t140", families,
                         sizeof(families) / sizeof(families[0]), t140_counters,
                         T140_COUNTERS, agw->totals_t140);
}
