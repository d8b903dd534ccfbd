#include "metrics.h"

#include <stddef.h>
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

/* The control server's own figures and the gauges of the pools. */
static int render_control(const struct dcmf_metrics *m,
                          const struct dcmf_gauges *g, const char *version,
                          struct dcmf_buf *out) {
  return dcmf_buf_printf(
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
}

/* Requests the access checks refused, one series per reason. */
static int render_auth(const struct dcmf_metrics *m, struct dcmf_buf *out) {
  int rv =
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
  return rv;
}

/* One row of the counters table (counters.h), for rendering. */
struct counter_row {
  const char *name, *series, *type, *help;
  size_t offset; /* of the value in struct dcmf_media_figures */
};

#define COUNTER_ROW(field, where, type, name, series, help)                    \
  {name, series, #type, help, offsetof(struct dcmf_media_figures, field)},
static const struct counter_row counter_rows[] = {DCMF_COUNTERS(COUNTER_ROW)};
#undef COUNTER_ROW

/* The media-plane figures, in table order: HELP and TYPE where a family
 * starts, then one sample line per row. */
static int render_counters(const struct dcmf_media_figures *f,
                           struct dcmf_buf *out) {
  int rv = 0;
  const char *family = "";
  for (size_t i = 0; i < sizeof(counter_rows) / sizeof(counter_rows[0]); i++) {
    const struct counter_row *r = &counter_rows[i];
    if (strcmp(r->name, family) != 0) {
      family = r->name;
      rv |= dcmf_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", r->name,
                            r->help, r->name, r->type);
    }
    uint64_t v;
    memcpy(&v, (const char *)f + r->offset, sizeof(v));
    rv |= dcmf_buf_printf(out, "%s%s %llu\n", r->name, r->series,
                          (unsigned long long)v);
  }
  return rv;
}

/* Control API requests by method and status. */
static int render_api(const struct dcmf_metrics *m, struct dcmf_buf *out) {
  int rv = dcmf_buf_printf(out, "# HELP dcmf_api_requests_total Control API "
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
  return rv;
}

int dcmf_metrics_render(const struct dcmf_metrics *m,
                        const struct dcmf_gauges *g, const char *version,
                        struct dcmf_buf *out) {
  int rv = render_control(m, g, version, out);
  rv |= render_auth(m, out);
  rv |= render_counters(&g->media, out);
  rv |= render_loops(g, out);
  rv |= render_api(m, out);
  return rv == 0 ? 0 : DCMF_ERR_NOMEM;
}
