/*
 * metrics.h - counters of the control plane, rendered in the Prometheus
 * text exposition format. Gauges that other modules own (contexts, ports)
 * are passed in at render time rather than mirrored here.
 */
#ifndef DCMF_METRICS_H
#define DCMF_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "counters.h"

#define DCMF_METRICS_MAX_SERIES 96

struct dcmf_api_series {
  char method[12];
  int status;
  uint64_t count;
};

struct dcmf_metrics {
  struct dcmf_api_series api[DCMF_METRICS_MAX_SERIES];
  size_t n_api;
  uint64_t api_other; /* requests whose (method, status) found no slot */
  uint64_t control_connections_total;
  uint64_t control_connections_open;
  uint64_t control_timeouts_total;
  /* Requests refused by the access checks, by reason (auth.h). */
  uint64_t control_auth_refused[DCMF_AUTH_N_REASONS];
};

/* Media-plane figures (struct dcmf_media_figures, counters.h) are
 * summed from the workers at render time. */

/* Liveness of one worker loop, as the control thread sees it. */
struct dcmf_loop_health {
  const char *name; /* "media", "agw"; static */
  uint64_t age_ms;  /* since its loop last turned */
  int stalled;      /* |age_ms| is over the stall threshold */
  uint64_t stalls;  /* stall episodes since start */
};

#define DCMF_METRICS_MAX_LOOPS (DCMF_CONFIG_MAX_WORKERS + 2)

/* Gauges read at render time. */
struct dcmf_gauges {
  size_t contexts;
  size_t ports_in_use;
  size_t ports_total;
  struct dcmf_media_figures media;
  struct dcmf_loop_health loops[DCMF_METRICS_MAX_LOOPS];
  size_t n_loops;
};

/* Counts one API request by method and response status. Methods outside
 * the HTTP set are counted as "OTHER" so a client cannot grow the table. */
void dcmf_metrics_api(struct dcmf_metrics *m, const char *method, int status);

/* Renders all metrics into |out|. Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_metrics_render(const struct dcmf_metrics *m,
                        const struct dcmf_gauges *g, const char *version,
                        struct dcmf_buf *out);

#endif
