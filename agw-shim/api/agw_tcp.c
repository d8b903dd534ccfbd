/*
 * agw_tcp.c - the e2ae TCP path's part of the AGW shim's glue
 * (docs/e2ae.md "MSRP and BFCP over TLS"): the TCP sockets of a context,
 * the worker description of its relay (media.h struct dcmf_media_tcpleg,
 * served by dcmf/media/tcprelay.c), its TCP_COUNTERS snapshots and the
 * totals /metrics shows. agw_e2ae.c keeps the context records, events
 * and ports as for the RTP path. Control thread only.
 */
#include "agw_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "errors.h"

/* Replaces |*fd| (a UDP socket of the pool, whose port number is ours)
 * with a TCP socket bound to the same address and port, listening when
 * |listen_too|. The pool keeps its own UDP socket, which holds the
 * number; TCP's port space is apart, so the bind fails only when
 * another process holds that TCP port (then DCMF_ERR_EXHAUSTED, |*fd|
 * untouched). */
int dcmf_agw_tcp_socket(int *fd, int listen_too) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(*fd, (struct sockaddr *)&ss, &len) != 0) {
    return DCMF_ERR_SYSTEM;
  }
  int t = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (t < 0) {
    return DCMF_ERR_SYSTEM;
  }
  int one = 1;
  /* A port just released may still have connections in TIME_WAIT. */
  setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(t, (struct sockaddr *)&ss, len) != 0 ||
      (listen_too && listen(t, 4) != 0)) {
    int busy = errno == EADDRINUSE;
    close(t);
    return busy ? DCMF_ERR_EXHAUSTED : DCMF_ERR_SYSTEM;
  }
  close(*fd);
  *fd = t;
  return 0;
}

int dcmf_agw_tcp_sockets(const struct dcmf_agwiq *iq, int fds[2]) {
  for (int i = 0; i < 2; i++) {
    int rv = dcmf_agw_tcp_socket(&fds[i], iq->tcp_setup[i] != DCMF_AGWIQ_TCP_ACTIVE);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

int dcmf_agw_tcp_desc(const char *context_id, const struct dcmf_agwiq *iq,
                      const struct dcmf_relay_config *cfg,
                      const struct dcmf_agwapi_e2ae_local *local,
                      const int *fds, struct dcmf_media_desc *d) {
  memset(d, 0, sizeof(*d));
  struct dcmf_media_tcpleg *leg = calloc(1, sizeof(*leg));
  if (leg == NULL) {
    return DCMF_ERR_NOMEM;
  }
  snprintf(d->key.context_id, sizeof(d->key.context_id), "%s", context_id);
  snprintf(d->key.termination_id, sizeof(d->key.termination_id), "access");
  snprintf(d->key.media_id, sizeof(d->key.media_id), "%s",
           DCMF_AGW_TCP_MEDIA_ID);
  d->fd = -1;
  static const enum dcmf_tcp_setup setups[] = {
      [DCMF_AGWIQ_TCP_ACTIVE] = DCMF_TCP_ACTIVE,
      [DCMF_AGWIQ_TCP_PASSIVE] = DCMF_TCP_PASSIVE,
      [DCMF_AGWIQ_TCP_MERGE] = DCMF_TCP_MERGE,
  };
  static const enum dcmf_tcp_handling handlings[] = {
      [DCMF_AGWIQ_TCP_STATELESS] = DCMF_TCP_STATELESS,
      [DCMF_AGWIQ_TCP_STATE_AWARE] = DCMF_TCP_STATE_AWARE,
      [DCMF_AGWIQ_TCP_STATE_AWARE_CHANGE] = DCMF_TCP_STATE_AWARE_CHANGE,
  };
  for (int i = 0; i < 2; i++) {
    leg->fd[i] = fds != NULL ? fds[i] : -1;
    leg->setup[i] = setups[iq->tcp_setup[i]];
  }
  leg->port[0] = local->access_port;
  leg->port[1] = local->rtp_port;
  if (cfg->has_access_remote) {
    leg->remote[0] = cfg->access_remote;
  }
  if (cfg->has_core_remote) {
    leg->remote[1] = cfg->core_remote;
  }
  leg->handling = handlings[iq->tcp_handling];
  leg->tls = 1; /* both access transports are TCP/TLS */
  leg->tls_client = iq->role == DCMF_AGWIQ_ROLE_CLIENT;
  leg->remote_fp = iq->remote_fp;
  leg->timeout_ms = iq->tcp_timeout_ms;
  d->tcpleg = leg;
  return 0;
}

/* ---- counters ------------------------------------------------------------ */

/* The counters of a TCP_COUNTERS snapshot (tcprelay.h) as /metrics shows
 * them: dcmf_agw_e2ae_tcp_<metric>_total{...}. */
static const struct dcmf_agw_series tcp_counters[] = {
    {"toCore", "bytes", "bytes", "direction=\"to_core\""},
    {"toAccess", "bytes", "bytes", "direction=\"to_access\""},
    {"toCore", "reads", "reads", "direction=\"to_core\""},
    {"toAccess", "reads", "reads", "direction=\"to_access\""},
    {"failures", "connect", "failures", "reason=\"connect\""},
    {"failures", "timeout", "failures", "reason=\"timeout\""},
    {"failures", "tls", "failures", "reason=\"tls\""},
    {"failures", "refusedSource", "failures", "reason=\"refused_source\""},
    {"failures", "reset", "failures", "reason=\"reset\""},
};
#define TCP_COUNTERS (sizeof(tcp_counters) / sizeof(tcp_counters[0]))
_Static_assert(TCP_COUNTERS == DCMF_AGW_TCP_COUNTERS,
               "agw_int.h sizes the totals by this table");

void dcmf_agw_tcp_snapshot(struct dcmf_agw *agw, json_t **kept,
                           const char *detail) {
  dcmf_agw_series_take(tcp_counters, TCP_COUNTERS, agw->totals_tcp, kept,
                       detail);
}

void dcmf_agw_tcp_metrics(struct dcmf_agw *agw, struct dcmf_buf *out) {
  dcmf_buf_printf(
      out,
      "# HELP dcmf_agw_e2ae_tls_failures_total TLS_FAILURE events of e2ae "
      "TCP relays.\n"
      "# TYPE dcmf_agw_e2ae_tls_failures_total counter\n"
      "dcmf_agw_e2ae_tls_failures_total %llu\n"
      "# HELP dcmf_agw_e2ae_tcp_establishment_failures_total TCP_FAILURE "
      "events of e2ae TCP relays.\n"
      "# TYPE dcmf_agw_e2ae_tcp_establishment_failures_total counter\n"
      "dcmf_agw_e2ae_tcp_establishment_failures_total %llu\n",
      (unsigned long long)agw->tls_failures,
      (unsigned long long)agw->tcp_failures);
  static const struct dcmf_agw_family families[] = {
      {"bytes", "Application bytes the e2ae TCP relays forwarded (TLS "
                "removed), by direction."},
      {"reads", "Socket reads that brought those bytes, by direction."},
      {"failures", "e2ae TCP relay failures by reason (a count of the "
                   "relays' failures counters)."},
  };
  dcmf_agw_series_render(out, "dcmf_agw_e2ae_tcp", families,
                         sizeof(families) / sizeof(families[0]), tcp_counters,
                         TCP_COUNTERS, agw->totals_tcp);
}
