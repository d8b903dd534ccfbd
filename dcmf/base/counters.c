#include "counters.h"

#define ADD_worker(field)                                                      \
  sum->field += atomic_load_explicit(&one->field, memory_order_relaxed);
#define ADD_control(field)
#define ADD(field, where, type, name, series, help) ADD_##where(field)

void dcmf_counters_add(struct dcmf_media_figures *sum,
                       const struct dcmf_media_stats *one) {
  DCMF_COUNTERS(ADD)
}

#define SUM_worker(field) sum->field += one->field;
#define SUM_control(field)
#define SUM(field, where, type, name, series, help) SUM_##where(field)
#define SUM_TOTAL_counter(field) sum->field += one->field;
#define SUM_TOTAL_summary(field) sum->field += one->field;
#define SUM_TOTAL_gauge(field)
#define SUM_TOTAL_worker(type, field) SUM_TOTAL_##type(field)
#define SUM_TOTAL_control(type, field)
#define SUM_TOTAL(field, where, type, name, series, help)                      \
  SUM_TOTAL_##where(type, field)

void dcmf_counters_sum(struct dcmf_media_figures *sum,
                       const struct dcmf_media_figures *one, int totals_only) {
  if (totals_only) {
    DCMF_COUNTERS(SUM_TOTAL)
  } else {
    DCMF_COUNTERS(SUM)
  }
}
