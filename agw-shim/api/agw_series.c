/*
 * agw_series.c - /metrics totals from the media's counter snapshots
 * (agw_int.h, "agw_series.c"): the TCP relays' and the MSRP-over-DC
 * relays' counters, each a fixed table of series, so the labels are
 * bounded by the table and never by the contexts. Control thread.
 */
#include "agw_int.h"

#include <string.h>

static uint64_t series_value(json_t *snap, const struct dcmf_agw_series *s) {
  json_t *v = json_object_get(json_object_get(snap, s->obj), s->key);
  return json_is_integer(v) && json_integer_value(v) >= 0
             ? (uint64_t)json_integer_value(v)
             : 0;
}

void dcmf_agw_series_take(const struct dcmf_agw_series *table, size_t n,
                          uint64_t *totals, json_t **kept,
                          const char *detail) {
  json_t *snap = json_loads(detail, 0, NULL);
  if (!json_is_object(snap)) {
    json_decref(snap);
    return;
  }
  for (size_t i = 0; totals != NULL && i < n; i++) {
    uint64_t now = series_value(snap, &table[i]);
    uint64_t was = series_value(*kept, &table[i]);
    /* A counter that went back (the media never does that) counts from
     * 0 rather than wrapping the total. */
    totals[i] += now >= was ? now - was : now;
  }
  json_decref(*kept);
  *kept = snap;
}

void dcmf_agw_series_render(struct dcmf_buf *out, const char *prefix,
                            const struct dcmf_agw_family *families,
                            size_t n_families,
                            const struct dcmf_agw_series *table, size_t n,
                            const uint64_t *totals) {
  for (size_t f = 0; f < n_families; f++) {
    const char *metric = families[f].metric;
    dcmf_buf_printf(out,
                    "# HELP %s_%s_total %s\n"
                    "# TYPE %s_%s_total counter\n",
                    prefix, metric, families[f].help, prefix, metric);
    for (size_t i = 0; i < n; i++) {
      if (strcmp(table[i].metric, metric) != 0) {
        continue;
      }
      if (table[i].label[0] == '\0') {
        dcmf_buf_printf(out, "%s_%s_total %llu\n", prefix, metric,
                        (unsigned long long)totals[i]);
      } else {
        dcmf_buf_printf(out, "%s_%s_total{%s} %llu\n", prefix, metric,
                        table[i].label, (unsigned long long)totals[i]);
      }
    }
  }
}
