/*
 * agw.c - glue of the AGW shim: the control API (agwapi.c) runs on the
 * control thread and drives the relay thread (shimloop.c) through the
 * operations below; relay ports come from dcmfd's pool and go back to it
 * once the relay thread has closed their sockets.
 */
#include "agw.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/rand.h>

#include "agwapi.h"
#include "errors.h"
#include "shimloop.h"

struct dcmf_agw {
  struct dcmf_agw_settings settings;
  struct dcmf_shimloop *loop;
  struct dcmf_agwapi *api;
};

/* ---- operations for the API --------------------------------------------- */

static int op_relay_new(void *user, const struct dcmf_relay_config *cfg,
                        uint16_t ports[DCMF_RELAY_SIDES], void **relay) {
  struct dcmf_agw *agw = user;
  const struct dcmf_agw_settings *st = &agw->settings;
  int fds[DCMF_RELAY_SIDES] = {-1, -1};
  int got = 0, rv = 0;
  for (; got < DCMF_RELAY_SIDES; got++) {
    rv = st->port_alloc(st->port_user, &ports[got], &fds[got]);
    if (rv != 0) {
      goto fail_ports;
    }
  }
  struct dcmf_shimloop_relay *r;
  rv = dcmf_shimloop_add(agw->loop, cfg, ports, fds, &r);
  if (rv != 0) {
    goto fail_ports;
  }
  *relay = r;
  return 0;
fail_ports:
  while (got-- > 0) {
    close(fds[got]);
    st->port_release(st->port_user, ports[got]);
  }
  return rv;
}

static int op_relay_update(void *user, void *relay,
                           const struct dcmf_relay_config *cfg) {
  struct dcmf_agw *agw = user;
  return dcmf_shimloop_update(agw->loop, relay, cfg);
}

static void op_relay_del(void *user, void *relay) {
  struct dcmf_agw *agw = user;
  dcmf_shimloop_remove(agw->loop, relay);
}

static void op_relay_read(void *user, void *relay,
                          struct dcmf_relay_counters *c,
                          struct sockaddr_storage *peer, int *latched) {
  (void)user;
  dcmf_shimloop_read(relay, c, peer, latched);
}

static void op_random(void *user, uint8_t *buf, size_t len) {
  (void)user;
  if (RAND_bytes(buf, (int)len) != 1) {
    abort(); /* as dcmfd does: a process without randomness cannot go on */
  }
}

static void on_released(void *user, uint16_t port) {
  struct dcmf_agw *agw = user;
  agw->settings.port_release(agw->settings.port_user, port);
}

/* ---- the interface of agw.h ------------------------------------------- */

int dcmf_agw_new(struct dcmf_agw **out,
                 const struct dcmf_agw_settings *settings) {
  uint8_t bin[16];
  int v4 = inet_pton(AF_INET, settings->bind_addr, bin) == 1;
  int v6 = !v4 && inet_pton(AF_INET6, settings->bind_addr, bin) == 1;
  static const uint8_t any6[16];
  if (!v4 && !v6) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_agw *agw = calloc(1, sizeof(*agw));
  if (agw == NULL) {
    return DCMF_ERR_NOMEM;
  }
  agw->settings = *settings;
  struct dcmf_agwapi_settings as = {
      .advertise_addr = settings->advertise_addr,
      /* "::" is dual-stack (IPv4 arrives IPv4-mapped); others are not. */
      .allow_v4 = v4 || memcmp(bin, any6, 16) == 0,
      .allow_v6 = v6,
      .log = settings->log,
  };
  struct dcmf_agwapi_ops ops = {.relay_new = op_relay_new,
                                .relay_update = op_relay_update,
                                .relay_del = op_relay_del,
                                .relay_read = op_relay_read,
                                .random = op_random,
                                .user = agw};
  int rv = dcmf_agwapi_new(&agw->api, &as, &ops);
  if (rv != 0) {
    goto fail_api;
  }
  struct dcmf_shimloop_settings ss = {
      .log = settings->log, .on_released = on_released, .user = agw};
  rv = dcmf_shimloop_start(&agw->loop, settings->control_loop, &ss);
  if (rv != 0) {
    goto fail_loop;
  }
  *out = agw;
  return 0;
fail_loop:
  dcmf_agwapi_del(agw->api);
fail_api:
  free(agw);
  return rv;
}

void dcmf_agw_del(struct dcmf_agw *agw) {
  if (agw == NULL) {
    return;
  }
  size_t n = dcmf_agwapi_count(agw->api);
  if (n > 0) {
    DCMF_LOGI(agw->settings.log, "agw", "%zu AGW contexts released", n);
  }
  dcmf_agwapi_del(agw->api);   /* removes every relay */
  dcmf_shimloop_stop(agw->loop); /* every port is back in the pool now */
  free(agw);
}

const struct dcmf_heartbeat *dcmf_agw_heartbeat(const struct dcmf_agw *agw) {
  return dcmf_shimloop_heartbeat(agw->loop);
}

void dcmf_agw_handle(struct dcmf_agw *agw, const struct dcmf_api_request *req,
                     struct dcmf_api_response *resp) {
  dcmf_agwapi_handle(agw->api, req, resp);
}

void dcmf_agw_metrics(struct dcmf_agw *agw, struct dcmf_buf *out) {
  const struct dcmf_shimloop_stats *st = dcmf_shimloop_stats(agw->loop);
  static const char *const dir[2] = {"access_to_core", "core_to_access"};
  /* The reasons that can happen on each side. */
  static const enum dcmf_relay_drop reasons[2][3] = {
      {DCMF_RELAY_DROP_UNKNOWN_SOURCE, DCMF_RELAY_DROP_NO_REMOTE,
       DCMF_RELAY_DROP_SEND_FAILED},
      {DCMF_RELAY_DROP_UNKNOWN_SOURCE, DCMF_RELAY_DROP_NOT_LATCHED,
       DCMF_RELAY_DROP_SEND_FAILED}};
  dcmf_buf_printf(out,
                  "# HELP dcmf_agw_relays AGW shim relays (contexts) held.\n"
                  "# TYPE dcmf_agw_relays gauge\n"
                  "dcmf_agw_relays %zu\n"
                  "# HELP dcmf_agw_packets_total Datagrams the AGW shim "
                  "relayed, per direction.\n"
                  "# TYPE dcmf_agw_packets_total counter\n",
                  dcmf_agwapi_count(agw->api));
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    dcmf_buf_printf(out, "dcmf_agw_packets_total{direction=\"%s\"} %llu\n",
                    dir[s],
                    (unsigned long long)atomic_load_explicit(
                        &st->packets[s], memory_order_relaxed));
  }
  dcmf_buf_printf(out, "# HELP dcmf_agw_bytes_total UDP payload bytes the "
                       "AGW shim relayed, per direction.\n"
                       "# TYPE dcmf_agw_bytes_total counter\n");
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    dcmf_buf_printf(out, "dcmf_agw_bytes_total{direction=\"%s\"} %llu\n",
                    dir[s],
                    (unsigned long long)atomic_load_explicit(
                        &st->bytes[s], memory_order_relaxed));
  }
  dcmf_buf_printf(out, "# HELP dcmf_agw_dropped_total Datagrams the AGW "
                       "shim dropped, by arrival side and reason.\n"
                       "# TYPE dcmf_agw_dropped_total counter\n");
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    for (int i = 0; i < 3; i++) {
      enum dcmf_relay_drop r = reasons[s][i];
      dcmf_buf_printf(
          out, "dcmf_agw_dropped_total{side=\"%s\",reason=\"%s\"} %llu\n",
          dcmf_relay_side_name((enum dcmf_relay_side)s),
          dcmf_relay_drop_name(r),
          (unsigned long long)atomic_load_explicit(&st->dropped[s][r],
                                                   memory_order_relaxed));
    }
  }
  dcmf_buf_printf(out,
                  "# HELP dcmf_agw_latches_total Phone addresses the AGW "
                  "shim latched on.\n"
                  "# TYPE dcmf_agw_latches_total counter\n"
                  "dcmf_agw_latches_total %llu\n",
                  (unsigned long long)atomic_load_explicit(
                      &st->latches, memory_order_relaxed));
}
