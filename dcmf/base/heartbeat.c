#include "heartbeat.h"

uint64_t dcmf_heartbeat_now_ms(void) {
  return uv_hrtime() / 1000000u;
}

static void on_beat(uv_timer_t *t) {
  struct dcmf_heartbeat *hb = t->data;
  atomic_store_explicit(&hb->last_ms, dcmf_heartbeat_now_ms(),
                        memory_order_relaxed);
}

void dcmf_heartbeat_start(struct dcmf_heartbeat *hb, uv_loop_t *loop) {
  atomic_store_explicit(&hb->last_ms, dcmf_heartbeat_now_ms(),
                        memory_order_relaxed);
  uv_timer_init(loop, &hb->timer);
  hb->timer.data = hb;
  uv_timer_start(&hb->timer, on_beat, DCMF_HEARTBEAT_PERIOD_MS,
                 DCMF_HEARTBEAT_PERIOD_MS);
  /* The loop ends when its real work is done, not when we stop beating. */
  uv_unref((uv_handle_t *)&hb->timer);
}

void dcmf_heartbeat_close(struct dcmf_heartbeat *hb) {
  uv_close((uv_handle_t *)&hb->timer, NULL);
}

uint64_t dcmf_heartbeat_age_ms(const struct dcmf_heartbeat *hb,
                               uint64_t now_ms) {
  uint64_t last = atomic_load_explicit(&hb->last_ms, memory_order_relaxed);
  return now_ms > last ? now_ms - last : 0;
}
