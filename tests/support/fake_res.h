/*
 * fake_res.h - in-memory stand-ins for what dcmfd gives the context
 * registry: a port pool without sockets and a deterministic random
 * source, so registry and API tests run without I/O.
 */
#ifndef DCMF_TEST_FAKE_RES_H
#define DCMF_TEST_FAKE_RES_H

#include <stddef.h>
#include <stdint.h>

#include "context.h"

#define FAKE_PORTS_MAX 64

struct fake_res {
  uint16_t base;
  size_t n_ports; /* at most FAKE_PORTS_MAX */
  unsigned char used[FAKE_PORTS_MAX];
  size_t in_use;
  uint64_t seed;
};

/* Sets up |f| with |n_ports| ports from |base| and returns the callback
 * table bound to it. */
struct dcmf_resources fake_res_init(struct fake_res *f, uint16_t base,
                                    size_t n_ports);

#endif
