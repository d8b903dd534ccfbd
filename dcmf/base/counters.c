#include "counters.h"

#define ADD_worker(field)                                                      \
  sum->field += atomic_load_explicit(&one->field, memory_order_relaxed);
#define ADD_control(field)
#define ADD(field, where, type, name, series, help) ADD_##where(field)

void dcmf_counters_add(struct dcmf_media_figures *sum,
                       const struct dcmf_media_stats *one) {
  DCMF_COUNTERS(ADD)
}
