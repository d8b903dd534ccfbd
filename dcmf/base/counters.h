/*
 * counters.h - the media-plane counters, defined once (layer "base").
 *
 * DCMF_COUNTERS is an X-macro table: one row per Prometheus series. The
 * per-worker struct (dcmf_media_stats), the summed figures
 * (dcmf_media_figures), the sum over workers (dcmf_counters_add) and the
 * /metrics rendering (metrics.c) are all generated from it, so adding a
 * counter is one row here plus the line that counts it.
 *
 * Columns of X(field, where, type, name, series, help):
 *   field   the struct member, e.g. STAT_ADD(s, field, n) in a session;
 *   where   worker: each media worker counts it (an atomic in
 *           dcmf_media_stats, summed over workers); control: the control
 *           loop fills it in dcmf_media_figures (no per-worker member);
 *   type    the Prometheus TYPE: counter, gauge or summary;
 *   name    the metric family name;
 *   series  what follows the name on the sample line: "" or the labels
 *           ("{result=\"ok\"}") or a summary suffix ("_sum", "_count");
 *   help    the HELP text, on the first row of a family; the rows after
 *           it with the same name (consecutive) leave it "".
 * The order of rows is the order of /metrics.
 */
#ifndef DCMF_COUNTERS_H
#define DCMF_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

/* clang-format off */
#define DCMF_COUNTERS(X)                                                       \
  X(sessions, worker, gauge, "dcmf_media_sessions", "",                        \
    "DC media sessions in the media workers.")                                 \
  X(dtls_ok, worker, counter, "dcmf_dtls_handshakes_total",                    \
    "{result=\"ok\"}", "DTLS handshakes by outcome.")                          \
  X(dtls_failed, worker, counter, "dcmf_dtls_handshakes_total",                \
    "{result=\"failed\"}", "")                                                 \
  X(sctp_associations, worker, counter, "dcmf_sctp_associations_total", "",    \
    "SCTP associations established.")                                          \
  X(channels_open, worker, gauge, "dcmf_data_channels", "",                    \
    "Data channels currently open.")                                           \
  X(messages_in, worker, counter, "dcmf_dc_messages_total",                    \
    "{direction=\"in\"}", "Data-channel messages by direction.")               \
  X(messages_out, worker, counter, "dcmf_dc_messages_total",                   \
    "{direction=\"out\"}", "")                                                 \
  X(bytes_in, worker, counter, "dcmf_dc_bytes_total", "{direction=\"in\"}",    \
    "Data-channel payload bytes by direction.")                                \
  X(bytes_out, worker, counter, "dcmf_dc_bytes_total", "{direction=\"out\"}",  \
    "")                                                                        \
  X(stun_ok, worker, counter, "dcmf_stun_requests_total",                      \
    "{result=\"success\"}", "STUN binding requests by answer.")                \
  X(stun_error, worker, counter, "dcmf_stun_requests_total",                   \
    "{result=\"error\"}", "")                                                  \
  X(consent_lost, worker, counter, "dcmf_consent_lost_total", "",              \
    "Media whose peer fell silent for 30 s.")                                  \
  X(dropped_unknown_protocol, worker, counter, "dcmf_dropped_packets_total",   \
    "{reason=\"unknown_protocol\"}", "Media packets dropped by reason.")       \
  X(dropped_unauthenticated, worker, counter, "dcmf_dropped_packets_total",    \
    "{reason=\"unauthenticated_source\"}", "")                                 \
  X(dropped_dtls, worker, counter, "dcmf_dropped_packets_total",               \
    "{reason=\"dtls\"}", "")                                                   \
  X(dropped_other, worker, counter, "dcmf_dropped_packets_total",              \
    "{reason=\"stun\"}", "")                                                   \
  X(events_sent, control, counter, "dcmf_events_total", "{result=\"sent\"}",   \
    "Event notifications by delivery outcome.")                                \
  X(events_failed, control, counter, "dcmf_events_total",                      \
    "{result=\"failed\"}", "")                                                 \
  X(events_dropped, control, counter, "dcmf_events_total",                     \
    "{result=\"dropped\"}", "")                                                \
  X(worker_failures, control, counter, "dcmf_media_worker_failures_total", "", \
    "Media worker processes that ended without being asked; the contexts "    \
    "they served were released.")                                              \
  X(udp_datagrams_out, worker, counter, "dcmf_udp_proxy_datagrams_total",      \
    "{direction=\"to_server\"}", "UDP-proxy mode datagrams by direction.")     \
  X(udp_datagrams_in, worker, counter, "dcmf_udp_proxy_datagrams_total",       \
    "{direction=\"from_server\"}", "")                                         \
  X(udp_bytes_out, worker, counter, "dcmf_udp_proxy_bytes_total",              \
    "{direction=\"to_server\"}", "UDP-proxy mode payload bytes by direction.") \
  X(udp_bytes_in, worker, counter, "dcmf_udp_proxy_bytes_total",               \
    "{direction=\"from_server\"}", "")                                         \
  X(udp_dropped_oversize, worker, counter, "dcmf_udp_proxy_dropped_total",     \
    "{reason=\"oversize\"}", "UDP-proxy mode drops by reason.")                \
  X(udp_dropped_source, worker, counter, "dcmf_udp_proxy_dropped_total",       \
    "{reason=\"unknown_source\"}", "")                                         \
  X(udp_dropped_queue, worker, counter, "dcmf_udp_proxy_dropped_total",        \
    "{reason=\"queue_full\"}", "")                                             \
  X(udp_dropped_send, worker, counter, "dcmf_udp_proxy_dropped_total",         \
    "{reason=\"send\"}", "")                                                   \
  X(relay_messages, worker, counter, "dcmf_dc_relay_messages_total", "",       \
    "Messages a DC relay delivered to the twin channel.")                      \
  X(relay_bytes, worker, counter, "dcmf_dc_relay_bytes_total", "",             \
    "Payload bytes a DC relay delivered.")                                     \
  X(relay_dropped_queue, worker, counter, "dcmf_dc_relay_dropped_total",       \
    "{reason=\"queue_full\"}", "DC relay drops by reason.")                    \
  X(relay_dropped_send, worker, counter, "dcmf_dc_relay_dropped_total",        \
    "{reason=\"send\"}", "")                                                   \
  X(relay_dropped_no_twin, worker, counter, "dcmf_dc_relay_dropped_total",     \
    "{reason=\"no_twin\"}", "")                                                \
  X(relay_queued_messages, worker, gauge, "dcmf_dc_relay_queued_messages", "", \
    "Messages a DC relay holds for phones now (channel not open yet, or "      \
    "SCTP full).")                                                             \
  X(relay_queued_bytes, worker, gauge, "dcmf_dc_relay_queued_bytes", "",       \
    "Payload bytes of those messages.")                                        \
  X(relay_stalls, worker, counter, "dcmf_dc_relay_stalls_total", "",           \
    "Relayed streams whose held messages did not move for 1 s, once per "      \
    "episode.")                                                                \
  X(proxy_requests, worker, counter, "dcmf_proxy_requests_total", "",          \
    "HTTP requests in HTTP-proxy mode.")                                       \
  X(proxy_upstream_errors, worker, counter,                                    \
    "dcmf_proxy_upstream_failures_total", "{kind=\"error\"}",                  \
    "Upstream failures answered 502 or 504.")                                  \
  X(proxy_upstream_timeouts, worker, counter,                                  \
    "dcmf_proxy_upstream_failures_total", "{kind=\"timeout\"}", "")            \
  X(proxy_upstream_opened, worker, counter,                                    \
    "dcmf_proxy_upstream_connections_total", "{event=\"opened\"}",            \
    "Upstream connections by event: opened, reused (a kept-alive HTTP/1.1 "    \
    "connection taking another request), closed (idle, failed or told to "     \
    "go away).")                                                               \
  X(proxy_upstream_reused, worker, counter,                                    \
    "dcmf_proxy_upstream_connections_total", "{event=\"reused\"}", "")         \
  X(proxy_upstream_closed, worker, counter,                                    \
    "dcmf_proxy_upstream_connections_total", "{event=\"closed\"}", "")         \
  X(proxy_upstream_retries, worker, counter,                                   \
    "dcmf_proxy_upstream_retries_total", "",                                   \
    "Requests sent again on a new upstream connection (RFC 9112 9.3.1, "       \
    "HTTP/2 refused streams).")                                                \
  X(proxy_cache_hits, worker, counter, "dcmf_proxy_cache_total",               \
    "{outcome=\"hit\"}", "Cache lookups by outcome.")                          \
  X(proxy_cache_misses, worker, counter, "dcmf_proxy_cache_total",             \
    "{outcome=\"miss\"}", "")                                                  \
  X(proxy_cache_revalidated, worker, counter, "dcmf_proxy_cache_total",        \
    "{outcome=\"revalidated\"}", "")                                           \
  X(proxy_cache_bytes, worker, gauge, "dcmf_proxy_cache_bytes", "",            \
    "Bytes held by the cache.")                                                \
  X(proxy_upstream_latency_ms, worker, summary,                                \
    "dcmf_proxy_upstream_latency_ms", "_sum",                                  \
    "Request sent to response head.")                                          \
  X(proxy_upstream_responses, worker, summary,                                 \
    "dcmf_proxy_upstream_latency_ms", "_count", "")                            \
  X(stun_rate_limited, worker, counter, "dcmf_stun_rate_limited_total", "",    \
    "STUN packets from sources other than a session's peer, dropped by the "   \
    "per-source limit.")                                                       \
  X(dtls_hello_rate_limited, worker, counter,                                  \
    "dcmf_dtls_hello_rate_limited_total", "",                                  \
    "DTLS ClientHellos dropped by the per-source limit.")
/* clang-format on */

/* Generators: a member per row (figures), or per worker row (stats). */
#define DCMF_COUNTER_VALUE(field, where, type, name, series, help)             \
  uint64_t field;
#define DCMF_COUNTER_ATOMIC_worker(field) _Atomic uint64_t field;
#define DCMF_COUNTER_ATOMIC_control(field)
#define DCMF_COUNTER_ATOMIC(field, where, type, name, series, help)            \
  DCMF_COUNTER_ATOMIC_##where(field)

/* What one media worker counts. The worker thread writes with relaxed
 * atomics; the control loop reads them the same way: readers want a
 * recent value, not a consistent set. */
struct dcmf_media_stats {
  DCMF_COUNTERS(DCMF_COUNTER_ATOMIC)
};

/* Every row's value, summed over the workers, for one rendering. */
struct dcmf_media_figures {
  DCMF_COUNTERS(DCMF_COUNTER_VALUE)
};

/* Adds what one worker counted (|one|, read with relaxed loads) to the
 * worker rows of |sum|; control rows are left alone. */
void dcmf_counters_add(struct dcmf_media_figures *sum,
                       const struct dcmf_media_stats *one);

/* Adds the worker rows of figures |one| (a worker process's published
 * set) to |sum|. With |totals_only|, only counter and summary rows, the
 * ones that only grow: what a worker that ended had counted stays in
 * the totals, while its gauges (sessions, open channels) go with it. */
void dcmf_counters_sum(struct dcmf_media_figures *sum,
                       const struct dcmf_media_figures *one, int totals_only);

#endif
