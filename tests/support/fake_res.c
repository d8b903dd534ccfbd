#include "fake_res.h"

#include <string.h>

#include "errors.h"

static int fake_alloc(void *user, uint16_t *port) {
  struct fake_res *f = user;
  for (size_t i = 0; i < f->n_ports; i++) {
    if (!f->used[i]) {
      f->used[i] = 1;
      f->in_use++;
      *port = (uint16_t)(f->base + i);
      return 0;
    }
  }
  return DCMF_ERR_EXHAUSTED;
}

static void fake_release(void *user, uint16_t port) {
  struct fake_res *f = user;
  size_t i = (size_t)(port - f->base);
  if (port >= f->base && i < f->n_ports && f->used[i]) {
    f->used[i] = 0;
    f->in_use--;
  }
}

/* xorshift64*: deterministic, so failures reproduce. */
static void fake_random(void *user, uint8_t *buf, size_t len) {
  struct fake_res *f = user;
  for (size_t i = 0; i < len; i++) {
    f->seed ^= f->seed >> 12;
    f->seed ^= f->seed << 25;
    f->seed ^= f->seed >> 27;
    buf[i] = (uint8_t)((f->seed * 0x2545F4914F6CDD1DULL) >> 56);
  }
}

struct dcmf_resources fake_res_init(struct fake_res *f, uint16_t base,
                                    size_t n_ports) {
  memset(f, 0, sizeof(*f));
  f->base = base;
  f->n_ports = n_ports < FAKE_PORTS_MAX ? n_ports : FAKE_PORTS_MAX;
  f->seed = 0x9E3779B97F4A7C15ULL;
  return (struct dcmf_resources){.port_alloc = fake_alloc,
                                 .port_release = fake_release,
                                 .random = fake_random,
                                 .user = f};
}
