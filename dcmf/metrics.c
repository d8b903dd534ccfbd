#include "metrics.h"

#include <string.h>

#include "errors.h"

static const char *const known_methods[] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL};

void dcmf_metrics_api(struct dcmf_metrics *m, const char *method, int status) {
  const char *name = "OTHER";
  for (size_t i = 0; known_methods[i]; i++) {
    if (strcmp(method, known_methods[i]) == 0) {
      name = known_methods[i];
    }
  }
  for (size_t i = 0; i < m->n_api; i++) {
    if (m->api[i].status == status && strcmp(m->api[i].method, name) == 0) {
      m->api[i].count++;
      return;
    }
  }
  if (m->n_api == DCMF_METRICS_MAX_SERIES) {
    m->api_other++;
    return;
  }
  struct dcmf_api_series *s = &m->api[m->n_api++];
  strcpy(s->method, name);
  s->status = status;
  s->count = 1;
}

/* The worker loops' liveness: one series per loop and metric. */
static int render_loops(const struct dcmf_gauges *g, struct dcmf_buf *out) {
  int rv = dcmf_buf_printf(
      out, "# HELP dcmf_worker_up 1 while the worker loop turns, 0 when it "
           "has not for over a second.\n"
           "# TYPE dcmf_worker_up gauge\n");
  for (size_t i = 0; i < g->n_loops; i++) {
    rv |= dcmf_buf_printf(out, "dcmf_worker_up{worker=\"%s\"} %d\n",
                          g->loops[i].name, !g->loops[i].stalled);
  }
  rv |= dcmf_buf_printf(
      out, "# HELP dcmf_worker_heartbeat_age_seconds Time since the worker "
           "loop last turned.\n"
           "# TYPE dcmf_worker_heartbeat_age_seconds gauge\n");
  for (size_t i = 0; i < g->n_loops; i++) {
    rv |= dcmf_buf_printf(
        out, "dcmf_worker_heartbeat_age_seconds{worker=\"%s\"} %llu.%03u\n",
        g->loops[i].name, (unsigned long long)(g->loops[i].age_ms / 1000),
        (unsigned)(g->loops[i].age_ms % 1000));
  }
  rv |= dcmf_buf_printf(
      out, "# HELP dcmf_worker_stalled_total Episodes in which the worker "
           "loop did not turn for over a second.\n"
           "# TYPE dcmf_worker_stalled_total counter\n");
  for (size_t i = 0; i < g->n_loops; i++) {
    rv |= dcmf_buf_printf(out, "dcmf_worker_stalled_total{worker=\"%s\"} "
                               "%llu\n",
                          g->loops[i].name,
                          (unsigned long long)g->loops[i].stalls);
  }
  return rv;
}

int dcmf_metrics_render(const struct dcmf_metrics *m,
                        const struct dcmf_gauges *g, const char *version,
                        struct dcmf_buf *out) {
  int rv = 0;
  rv |= dcmf_buf_printf(
      out,
      "# HELP dcmf_build_info Version of the running dcmfd.\n"
      "# TYPE dcmf_build_info gauge\n"
      "dcmf_build_info{version=\"%s\"} 1\n"
      "# HELP dcmf_contexts Media contexts currently held.\n"
      "# TYPE dcmf_contexts gauge\n"
      "dcmf_contexts %zu\n"
      "# HELP dcmf_media_ports_in_use Media UDP ports currently bound.\n"
      "# TYPE dcmf_media_ports_in_use gauge\n"
      "dcmf_media_ports_in_use %zu\n"
      "# HELP dcmf_media_ports Size of the media UDP port range.\n"
      "# TYPE dcmf_media_ports gauge\n"
      "dcmf_media_ports %zu\n"
      "# HELP dcmf_control_connections Open control API connections.\n"
      "# TYPE dcmf_control_connections gauge\n"
      "dcmf_control_connections %llu\n"
      "# HELP dcmf_control_connections_total Control API connections "
      "accepted.\n"
      "# TYPE dcmf_control_connections_total counter\n"
      "dcmf_control_connections_total %llu\n"
      "# HELP dcmf_control_timeouts_total Control requests or connections "
      "ended by a timeout.\n"
      "# TYPE dcmf_control_timeouts_total counter\n"
      "dcmf_control_timeouts_total %llu\n",
      version, g->contexts, g->ports_in_use, g->ports_total,
      (unsigned long long)m->control_connections_open,
      (unsigned long long)m->control_connections_total,
      (unsigned long long)m->control_timeouts_total);
  rv |=
      dcmf_buf_printf(out, "# HELP dcmf_control_auth_refused_total Control "
                           "requests refused by the access checks, by reason.\n"
                           "# TYPE dcmf_control_auth_refused_total counter\n");
  for (int r = DCMF_AUTH_OK + 1; r < DCMF_AUTH_N_REASONS; r++) {
    rv |= dcmf_buf_printf(out,
                          "dcmf_control_auth_refused_total{reason=\"%s\"} "
                          "%llu\n",
                          dcmf_auth_reason_name((enum dcmf_auth_reason)r),
                          (unsigned long long)m->control_auth_refused[r]);
  }
  const struct dcmf_media_figures *f = &g->media;
  rv |= dcmf_buf_printf(
      out,
      "# HELP dcmf_media_sessions DC media sessions in the media workers.\n"
      "# TYPE dcmf_media_sessions gauge\n"
      "dcmf_media_sessions %llu\n"
      "# HELP dcmf_dtls_handshakes_total DTLS handshakes by outcome.\n"
      "# TYPE dcmf_dtls_handshakes_total counter\n"
      "dcmf_dtls_handshakes_total{result=\"ok\"} %llu\n"
      "dcmf_dtls_handshakes_total{result=\"failed\"} %llu\n"
      "# HELP dcmf_sctp_associations_total SCTP associations established.\n"
      "# TYPE dcmf_sctp_associations_total counter\n"
      "dcmf_sctp_associations_total %llu\n"
      "# HELP dcmf_data_channels Data channels currently open.\n"
      "# TYPE dcmf_data_channels gauge\n"
      "dcmf_data_channels %llu\n"
      "# HELP dcmf_dc_messages_total Data-channel messages by direction.\n"
      "# TYPE dcmf_dc_messages_total counter\n"
      "dcmf_dc_messages_total{direction=\"in\"} %llu\n"
      "dcmf_dc_messages_total{direction=\"out\"} %llu\n"
      "# HELP dcmf_dc_bytes_total Data-channel payload bytes by direction.\n"
      "# TYPE dcmf_dc_bytes_total counter\n"
      "dcmf_dc_bytes_total{direction=\"in\"} %llu\n"
      "dcmf_dc_bytes_total{direction=\"out\"} %llu\n"
      "# HELP dcmf_stun_requests_total STUN binding requests by answer.\n"
      "# TYPE dcmf_stun_requests_total counter\n"
      "dcmf_stun_requests_total{result=\"success\"} %llu\n"
      "dcmf_stun_requests_total{result=\"error\"} %llu\n"
      "# HELP dcmf_consent_lost_total Media whose peer fell silent for 30 s.\n"
      "# TYPE dcmf_consent_lost_total counter\n"
      "dcmf_consent_lost_total %llu\n"
      "# HELP dcmf_dropped_packets_total Media packets dropped by reason.\n"
      "# TYPE dcmf_dropped_packets_total counter\n"
      "dcmf_dropped_packets_total{reason=\"unknown_protocol\"} %llu\n"
      "dcmf_dropped_packets_total{reason=\"unauthenticated_source\"} %llu\n"
      "dcmf_dropped_packets_total{reason=\"dtls\"} %llu\n"
      "dcmf_dropped_packets_total{reason=\"stun\"} %llu\n"
      "# HELP dcmf_events_total Event notifications by delivery outcome.\n"
      "# TYPE dcmf_events_total counter\n"
      "dcmf_events_total{result=\"sent\"} %llu\n"
      "dcmf_events_total{result=\"failed\"} %llu\n"
      "dcmf_events_total{result=\"dropped\"} %llu\n",
      (unsigned long long)f->sessions, (unsigned long long)f->dtls_ok,
      (unsigned long long)f->dtls_failed,
      (unsigned long long)f->sctp_associations,
      (unsigned long long)f->channels_open,
      (unsigned long long)f->messages_in, (unsigned long long)f->messages_out,
      (unsigned long long)f->bytes_in, (unsigned long long)f->bytes_out,
      (unsigned long long)f->stun_ok, (unsigned long long)f->stun_error,
      (unsigned long long)f->consent_lost,
      (unsigned long long)f->dropped_unknown_protocol,
      (unsigned long long)f->dropped_unauthenticated,
      (unsigned long long)f->dropped_dtls,
      (unsigned long long)f->dropped_other,
      (unsigned long long)f->events_sent, (unsigned long long)f->events_failed,
      (unsigned long long)f->events_dropped);
  rv |= dcmf_buf_printf(
      out,
      "# HELP dcmf_udp_proxy_datagrams_total UDP-proxy mode datagrams by "
      "direction.\n"
      "# TYPE dcmf_udp_proxy_datagrams_total counter\n"
      "dcmf_udp_proxy_datagrams_total{direction=\"to_server\"} %llu\n"
      "dcmf_udp_proxy_datagrams_total{direction=\"from_server\"} %llu\n"
      "# HELP dcmf_udp_proxy_bytes_total UDP-proxy mode payload bytes by "
      "direction.\n"
      "# TYPE dcmf_udp_proxy_bytes_total counter\n"
      "dcmf_udp_proxy_bytes_total{direction=\"to_server\"} %llu\n"
      "dcmf_udp_proxy_bytes_total{direction=\"from_server\"} %llu\n"
      "# HELP dcmf_udp_proxy_dropped_total UDP-proxy mode drops by reason.\n"
      "# TYPE dcmf_udp_proxy_dropped_total counter\n"
      "dcmf_udp_proxy_dropped_total{reason=\"oversize\"} %llu\n"
      "dcmf_udp_proxy_dropped_total{reason=\"unknown_source\"} %llu\n"
      "dcmf_udp_proxy_dropped_total{reason=\"queue_full\"} %llu\n"
      "dcmf_udp_proxy_dropped_total{reason=\"send\"} %llu\n"
      "# HELP dcmf_dc_relay_messages_total Messages a DC relay delivered to "
      "the twin channel.\n"
      "# TYPE dcmf_dc_relay_messages_total counter\n"
      "dcmf_dc_relay_messages_total %llu\n"
      "# HELP dcmf_dc_relay_bytes_total Payload bytes a DC relay delivered.\n"
      "# TYPE dcmf_dc_relay_bytes_total counter\n"
      "dcmf_dc_relay_bytes_total %llu\n"
      "# HELP dcmf_dc_relay_dropped_total DC relay drops by reason.\n"
      "# TYPE dcmf_dc_relay_dropped_total counter\n"
      "dcmf_dc_relay_dropped_total{reason=\"queue_full\"} %llu\n"
      "dcmf_dc_relay_dropped_total{reason=\"send\"} %llu\n"
      "dcmf_dc_relay_dropped_total{reason=\"no_twin\"} %llu\n"
      "# HELP dcmf_dc_relay_queued_messages Messages a DC relay holds for "
      "phones now (channel not open yet, or SCTP full).\n"
      "# TYPE dcmf_dc_relay_queued_messages gauge\n"
      "dcmf_dc_relay_queued_messages %llu\n"
      "# HELP dcmf_dc_relay_queued_bytes Payload bytes of those messages.\n"
      "# TYPE dcmf_dc_relay_queued_bytes gauge\n"
      "dcmf_dc_relay_queued_bytes %llu\n"
      "# HELP dcmf_dc_relay_stalls_total Relayed streams whose held messages "
      "did not move for 1 s, once per episode.\n"
      "# TYPE dcmf_dc_relay_stalls_total counter\n"
      "dcmf_dc_relay_stalls_total %llu\n"
      "# HELP dcmf_proxy_requests_total HTTP requests in HTTP-proxy mode.\n"
      "# TYPE dcmf_proxy_requests_total counter\n"
      "dcmf_proxy_requests_total %llu\n"
      "# HELP dcmf_proxy_upstream_failures_total Upstream failures answered "
      "502 or 504.\n"
      "# TYPE dcmf_proxy_upstream_failures_total counter\n"
      "dcmf_proxy_upstream_failures_total{kind=\"error\"} %llu\n"
      "dcmf_proxy_upstream_failures_total{kind=\"timeout\"} %llu\n"
      "# HELP dcmf_proxy_cache_total Cache lookups by outcome.\n"
      "# TYPE dcmf_proxy_cache_total counter\n"
      "dcmf_proxy_cache_total{outcome=\"hit\"} %llu\n"
      "dcmf_proxy_cache_total{outcome=\"miss\"} %llu\n"
      "dcmf_proxy_cache_total{outcome=\"revalidated\"} %llu\n"
      "# HELP dcmf_proxy_cache_bytes Bytes held by the cache.\n"
      "# TYPE dcmf_proxy_cache_bytes gauge\n"
      "dcmf_proxy_cache_bytes %llu\n"
      "# HELP dcmf_proxy_upstream_latency_ms Request sent to response head.\n"
      "# TYPE dcmf_proxy_upstream_latency_ms summary\n"
      "dcmf_proxy_upstream_latency_ms_sum %llu\n"
      "dcmf_proxy_upstream_latency_ms_count %llu\n",
      (unsigned long long)f->udp_datagrams_out,
      (unsigned long long)f->udp_datagrams_in,
      (unsigned long long)f->udp_bytes_out,
      (unsigned long long)f->udp_bytes_in,
      (unsigned long long)f->udp_dropped_oversize,
      (unsigned long long)f->udp_dropped_source,
      (unsigned long long)f->udp_dropped_queue,
      (unsigned long long)f->udp_dropped_send,
      (unsigned long long)f->relay_messages,
      (unsigned long long)f->relay_bytes,
      (unsigned long long)f->relay_dropped_queue,
      (unsigned long long)f->relay_dropped_send,
      (unsigned long long)f->relay_dropped_no_twin,
      (unsigned long long)f->relay_queued_messages,
      (unsigned long long)f->relay_queued_bytes,
      (unsigned long long)f->relay_stalls,
      (unsigned long long)f->proxy_requests,
      (unsigned long long)f->proxy_upstream_errors,
      (unsigned long long)f->proxy_upstream_timeouts,
      (unsigned long long)f->proxy_cache_hits,
      (unsigned long long)f->proxy_cache_misses,
      (unsigned long long)f->proxy_cache_revalidated,
      (unsigned long long)f->proxy_cache_bytes,
      (unsigned long long)f->proxy_upstream_latency_ms,
      (unsigned long long)f->proxy_upstream_responses);
  rv |= dcmf_buf_printf(
      out,
      "# HELP dcmf_stun_rate_limited_total STUN packets from sources other "
      "than a session's peer, dropped by the per-source limit.\n"
      "# TYPE dcmf_stun_rate_limited_total counter\n"
      "dcmf_stun_rate_limited_total %llu\n"
      "# HELP dcmf_dtls_hello_rate_limited_total DTLS ClientHellos dropped "
      "by the per-source limit.\n"
      "# TYPE dcmf_dtls_hello_rate_limited_total counter\n"
      "dcmf_dtls_hello_rate_limited_total %llu\n",
      (unsigned long long)f->stun_rate_limited,
      (unsigned long long)f->dtls_hello_rate_limited);
  rv |= render_loops(g, out);
  rv |= dcmf_buf_printf(out, "# HELP dcmf_api_requests_total Control API "
                             "requests by method and response status.\n"
                             "# TYPE dcmf_api_requests_total counter\n");
  for (size_t i = 0; i < m->n_api; i++) {
    rv |= dcmf_buf_printf(out,
                          "dcmf_api_requests_total{method=\"%s\",status=\"%d\"}"
                          " %llu\n",
                          m->api[i].method, m->api[i].status,
                          (unsigned long long)m->api[i].count);
  }
  if (m->api_other > 0) {
    rv |= dcmf_buf_printf(out,
                          "dcmf_api_requests_total{method=\"OTHER\","
                          "status=\"other\"} %llu\n",
                          (unsigned long long)m->api_other);
  }
  return rv == 0 ? 0 : DCMF_ERR_NOMEM;
}
