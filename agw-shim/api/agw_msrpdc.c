/*
 * agw_msrpdc.c - the MSRP-over-data-channel part of the AGW shim's glue
 * (docs/e2ae.md "MSRP over a data channel"): the MF's own MSRP URIs and
 * the worker's description of such a context's media. Control thread.
 */
#include "agw_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"

void dcmf_agw_msrpdc_uris(const char *advertise_addr, const char *context_id,
                          const char *access_transport,
                          struct dcmf_agwapi_e2ae_local *local) {
  /* RFC 4975 §9: an IPv6 literal goes in brackets. */
  int v6 = strchr(advertise_addr, ':') != NULL;
  snprintf(local->msrp_dc_uri, sizeof(local->msrp_dc_uri),
           "msrps://%s%s%s:%u/%s;%s", v6 ? "[" : "", advertise_addr,
           v6 ? "]" : "", local->access_port, context_id, access_transport);
  snprintf(local->msrp_tcp_uri, sizeof(local->msrp_tcp_uri),
           "msrp://%s%s%s:%u/%s;tcp", v6 ? "[" : "", advertise_addr,
           v6 ? "]" : "", local->rtp_port, context_id);
}

int dcmf_agw_msrpdc_desc(const struct dcmf_agwiq *iq,
                         const struct dcmf_relay_config *cfg,
                         const struct dcmf_agwapi_e2ae_local *local,
                         int core_fd, struct dcmf_media_desc *d) {
  struct dcmf_media_msrpleg *leg = calloc(1, sizeof(*leg));
  struct dcmf_media_stream *st = calloc(1, sizeof(*st));
  if (leg == NULL || st == NULL) {
    free(leg);
    free(st);
    return DCMF_ERR_NOMEM;
  }
  /* The RTP leg the shared builder made is not this path's. */
  free(d->rtpleg);
  d->rtpleg = NULL;
  d->assoc = DCMF_ASSOC_SCTP;
  d->local_sctp_port = 5000;
  d->remote_sctp_port = iq->dc_sctp_port;
  /* Ours (RFC 8841): what one chunk toward the core may be, bounded. */
  d->max_message_size = 256 * 1024;
  st->sid = iq->dc_sid;
  snprintf(st->protocol, sizeof(st->protocol), "msrp");
  /* reliable and ordered (zeroed rel): RFC 8873 §4.3 */
  d->streams = st;
  d->n_streams = 1;
  leg->fd = core_fd;
  leg->port = local->rtp_port;
  leg->sid = iq->dc_sid;
  leg->setup = iq->tcp_setup[1] == DCMF_AGWIQ_TCP_ACTIVE  ? DCMF_TCP_ACTIVE
               : iq->tcp_setup[1] == DCMF_AGWIQ_TCP_MERGE ? DCMF_TCP_MERGE
                                                          : DCMF_TCP_PASSIVE;
  leg->handling = (enum dcmf_tcp_handling)iq->tcp_handling;
  if (cfg->has_core_remote) {
    leg->remote = cfg->core_remote;
  }
  leg->timeout_ms = iq->tcp_timeout_ms;
  leg->aware = iq->msrp_aware;
  leg->peer_max_message_size = iq->dc_max_message_size;
  if (iq->msrp_aware) {
    snprintf(leg->dc_own_uri, sizeof(leg->dc_own_uri), "%s",
             local->msrp_dc_uri);
    snprintf(leg->tcp_own_uri, sizeof(leg->tcp_own_uri), "%s",
             local->msrp_tcp_uri);
    snprintf(leg->dc_peer_path, sizeof(leg->dc_peer_path), "%s", iq->dc_path);
    snprintf(leg->tcp_peer_path, sizeof(leg->tcp_peer_path), "%s",
             iq->core_path);
  }
  d->msrpleg = leg;
  return 0;
}

/* The counters of an MSRP_COUNTERS snapshot (msrp_dc_svc.h) as /metrics
 * shows them: dcmf_agw_e2ae_msrp_dc_<metric>_total{...}. */
static const struct dcmf_agw_series msrpdc_counters[] = {
    {"toCore", "bytes", "bytes", "direction=\"to_core\""},
    {"toAccess", "bytes", "bytes", "direction=\"to_access\""},
    {"toAccess", "messages", "messages", "direction=\"to_access\""},
    {"chunks", "fromAccess", "chunks", "from=\"access\""},
    {"chunks", "fromCore", "chunks", "from=\"core\""},
    {"chunks", "splits", "splits", ""},
    {"chunks", "pieces", "pieces", ""},
    {"chunks", "answers", "answers", ""},
    {"chunks", "refused", "refused", ""},
};
#define MSRPDC_COUNTERS (sizeof(msrpdc_counters) / sizeof(msrpdc_counters[0]))
_Static_assert(MSRPDC_COUNTERS == DCMF_AGW_MSRPDC_COUNTERS,
               "agw_int.h sizes the totals by this table");

void dcmf_agw_msrpdc_snapshot(struct dcmf_agw *agw, json_t **kept,
                              const char *detail) {
  dcmf_agw_series_take(msrpdc_counters, MSRPDC_COUNTERS, agw->totals_msrpdc,
                       kept, detail);
}

void dcmf_agw_msrpdc_metrics(struct dcmf_agw *agw, struct dcmf_buf *out) {
  static const struct dcmf_agw_family families[] = {
      {"bytes", "MSRP bytes the MSRP-over-DC relays sent, by direction."},
      {"messages", "SCTP messages (one MSRP chunk each) sent to the WIC."},
      {"chunks", "MSRP chunks the relays took, by the side they came from."},
      {"splits", "Chunks over the WIC's max-message-size that were split "
                 "(RFC 4975 section 7.1.1)."},
      {"pieces", "Pieces those splits made."},
      {"answers", "Responses and REPORTs the relays made themselves."},
      {"refused", "Chunks or channel messages the relays refused."},
  };
  dcmf_buf_printf(out,
                  "# HELP dcmf_agw_e2ae_msrp_dc_contexts_total MSRP-over-DC "
                  "contexts made.\n"
                  "# TYPE dcmf_agw_e2ae_msrp_dc_contexts_total counter\n"
                  "dcmf_agw_e2ae_msrp_dc_contexts_total %llu\n",
                  (unsigned long long)agw->msrpdc_contexts);
  dcmf_agw_series_render(out, "dcmf_agw_e2ae_msrp_dc", families,
                         sizeof(families) / sizeof(families[0]),
                         msrpdc_counters, MSRPDC_COUNTERS, agw->totals_msrpdc);
}
