/*
 * agw.c - glue of the AGW shim: the control API (agwapi.c) runs on the
 * control thread and drives the relays on the media workers
 * (relayhost.c) through the operations below, by message only
 * (media.h). Each relay has a record here, from its creation until the
 * worker reports it released: the control-side copy of its counters and
 * latched address, and its ports, which go back to dcmfd's pool only
 * once the worker has closed their sockets. The totals for /metrics are
 * the sums of what the reports added to each record. The e2ae contexts
 * are agw_e2ae.c's.
 */
#include "agw.h"
#include "agw_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/rand.h>

#include "controller.h"
#include "errors.h"

/* One relay as the control side knows it. */
struct relay {
  struct dcmf_hashmap_entry entry; /* by id */
  uint64_t id;
  size_t worker;
  char context_id[DCMF_ID_MAX]; /* the AGW context it belongs to */
  uint16_t ports[DCMF_RELAY_SIDES];
  int removed;  /* the API let go of it (REMOVE posted) */
  int released; /* the worker gave up its sockets; ports back */
  /* The latest report. */
  struct dcmf_relay_counters counters;
  int latched;
  struct sockaddr_storage peer;
  struct relay *next, *prev; /* every record, for dcmf_agw_del */
};

/* ---- relay records ------------------------------------------------------ */

static int id_equal(const struct dcmf_hashmap_entry *e, const void *key) {
  const struct relay *r = DCMF_HASHMAP_ITEM(e, const struct relay, entry);
  return r->id == *(const uint64_t *)key;
}

static uint64_t id_hash(uint64_t id) {
  return dcmf_hash_bytes(0, &id, sizeof(id));
}

static void record_link(struct dcmf_agw *agw, struct relay *r) {
  dcmf_hashmap_insert(&agw->by_id, &r->entry, id_hash(r->id));
  r->prev = NULL;
  r->next = agw->relays;
  if (agw->relays != NULL) {
    agw->relays->prev = r;
  }
  agw->relays = r;
}

static void record_free(struct dcmf_agw *agw, struct relay *r) {
  dcmf_hashmap_remove(&agw->by_id, &r->entry);
  if (r->prev != NULL) {
    r->prev->next = r->next;
  } else {
    agw->relays = r->next;
  }
  if (r->next != NULL) {
    r->next->prev = r->prev;
  }
  free(r);
}

static void release_ports(struct dcmf_agw *agw, struct relay *r) {
  if (!r->released) {
    r->released = 1;
    for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
      agw->settings.port_release(agw->settings.port_user, r->ports[s]);
    }
  }
}

/* Adds what |now| counted beyond |r|'s copy to the totals and keeps
 * |now|. Reports are snapshots of monotonic counters, so the difference
 * is what happened since the previous report, whether or not a report
 * in between was skipped. */
static void take_counters(struct dcmf_agw *agw, struct relay *r,
                          const struct dcmf_relay_counters *now) {
  struct dcmf_relay_counters *t = &agw->totals, *c = &r->counters;
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    t->packets[s] += now->packets[s] - c->packets[s];
    t->bytes[s] += now->bytes[s] - c->bytes[s];
    for (int k = 0; k < DCMF_RELAY_DROP_REASONS; k++) {
      t->dropped[s][k] += now->dropped[s][k] - c->dropped[s][k];
    }
  }
  t->latches += now->latches - c->latches;
  *c = *now;
}

void dcmf_agw_on_relay_event(struct dcmf_agw *agw,
                             const struct dcmf_relay_event *ev) {
  uint64_t id = ev->id;
  struct relay *r = DCMF_HASHMAP_ITEM(
      dcmf_hashmap_find(&agw->by_id, id_hash(id), &id), struct relay, entry);
  if (r == NULL) {
    return;
  }
  take_counters(agw, r, &ev->counters);
  r->latched = ev->latched;
  if (ev->latched) {
    memcpy(&r->peer, &ev->peer, sizeof(r->peer));
  }
  if (ev->kind == DCMF_RELAY_EV_RELEASED) {
    release_ports(agw, r);
    if (r->removed) {
      record_free(agw, r);
    }
    /* Else the worker could not start it: the context keeps its record
     * (relaying nothing) until it is deleted. */
  }
}

/* ---- operations for the API --------------------------------------------- */

static int op_relay_new(void *user, const char *context_id,
                        const struct dcmf_relay_config *cfg,
                        uint16_t ports[DCMF_RELAY_SIDES], void **relay) {
  struct dcmf_agw *agw = user;
  const struct dcmf_agw_settings *st = &agw->settings;
  struct relay *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    return DCMF_ERR_NOMEM;
  }
  struct dcmf_relay_desc desc = {
      .id = ++agw->next_id, .config = *cfg, .fds = {-1, -1}};
  int got = 0, rv = 0;
  for (; got < DCMF_RELAY_SIDES; got++) {
    rv = st->port_alloc(st->port_user, &ports[got], &desc.fds[got]);
    if (rv != 0) {
      goto fail_ports;
    }
  }
  r->id = desc.id;
  r->worker = dcmf_controller_worker_for(context_id, st->n_workers);
  snprintf(r->context_id, sizeof(r->context_id), "%s", context_id);
  memcpy(r->ports, ports, sizeof(r->ports));
  memcpy(desc.ports, ports, sizeof(desc.ports));
  record_link(agw, r);
  /* The worker owns the descriptors from here on. */
  st->post_relay(st->post_user, r->worker, DCMF_RELAY_OP_ADD, &desc);
  *relay = r;
  return 0;
fail_ports:
  while (got-- > 0) {
    close(desc.fds[got]);
    st->port_release(st->port_user, ports[got]);
  }
  free(r);
  return rv;
}

static int op_relay_update(void *user, void *relay,
                           const struct dcmf_relay_config *cfg) {
  struct dcmf_agw *agw = user;
  struct relay *r = relay;
  struct dcmf_relay_desc desc = {.id = r->id, .config = *cfg, .fds = {-1, -1}};
  agw->settings.post_relay(agw->settings.post_user, r->worker,
                           DCMF_RELAY_OP_UPDATE, &desc);
  return 0;
}

static void op_relay_del(void *user, void *relay) {
  struct dcmf_agw *agw = user;
  struct relay *r = relay;
  r->removed = 1;
  if (r->released) { /* its worker could not start it: nothing to close */
    record_free(agw, r);
    return;
  }
  if (agw->workers_gone) {
    return; /* dcmf_agw_del releases it */
  }
  struct dcmf_relay_desc desc = {.id = r->id, .fds = {-1, -1}};
  agw->settings.post_relay(agw->settings.post_user, r->worker,
                           DCMF_RELAY_OP_REMOVE, &desc);
}

static void op_relay_read(void *user, void *relay,
                          struct dcmf_relay_counters *c,
                          struct sockaddr_storage *peer, int *latched) {
  (void)user;
  const struct relay *r = relay;
  *c = r->counters;
  *latched = r->latched;
  if (r->latched) {
    memcpy(peer, &r->peer, sizeof(*peer));
  }
}

void dcmf_agw_random(void *user, uint8_t *buf, size_t len) {
  (void)user;
  if (RAND_bytes(buf, (int)len) != 1) {
    abort(); /* as dcmfd does: a process without randomness cannot go on */
  }
}

/* ---- the interface of agw.h ------------------------------------------- */

void dcmf_agw_set_rsa_cert(struct dcmf_agw *agw,
                           const struct dcmf_cert *cert) {
  agw->settings.rsa_cert = cert;
  agw->settings.rsa_pending = 0;
}

int dcmf_agw_new(struct dcmf_agw **out,
                 const struct dcmf_agw_settings *settings) {
  uint8_t bin[16];
  int v4 = inet_pton(AF_INET, settings->bind_addr, bin) == 1;
  int v6 = !v4 && inet_pton(AF_INET6, settings->bind_addr, bin) == 1;
  static const uint8_t any6[16];
  if ((!v4 && !v6) || settings->n_workers == 0) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_agw *agw = calloc(1, sizeof(*agw));
  if (agw == NULL) {
    return DCMF_ERR_NOMEM;
  }
  agw->settings = *settings;
  if (dcmf_hashmap_init(&agw->by_id, 64, id_equal) != 0) {
    free(agw);
    return DCMF_ERR_NOMEM;
  }
  if (dcmf_agw_e2ae_init(agw) != 0) {
    dcmf_hashmap_free(&agw->by_id);
    free(agw);
    return DCMF_ERR_NOMEM;
  }
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
                                .e2ae_new = dcmf_agw_e2ae_new,
                                .e2ae_update = dcmf_agw_e2ae_update,
                                .e2ae_del = dcmf_agw_e2ae_del,
                                .e2ae_view = dcmf_agw_e2ae_view,
                                .random = dcmf_agw_random,
                                .user = agw};
  int rv = dcmf_agwapi_new(&agw->api, &as, &ops);
  if (rv != 0) {
    dcmf_hashmap_free(&agw->e2ae_by_ctx);
    dcmf_hashmap_free(&agw->by_id);
    free(agw);
    return rv;
  }
  *out = agw;
  return 0;
}

void dcmf_agw_del(struct dcmf_agw *agw) {
  if (agw == NULL) {
    return;
  }
  size_t n = dcmf_agwapi_count(agw->api);
  if (n > 0) {
    DCMF_LOGI(agw->settings.log, "agw", "%zu AGW contexts released", n);
  }
  /* The workers have stopped, so no REMOVE is posted: their sockets are
   * closed already, and every port still held goes back now. */
  agw->workers_gone = 1;
  dcmf_agwapi_del(agw->api);
  while (agw->relays != NULL) {
    release_ports(agw, agw->relays);
    record_free(agw, agw->relays);
  }
  dcmf_agw_e2ae_free_all(agw);
  dcmf_hashmap_free(&agw->by_id);
  free(agw);
}

size_t dcmf_agw_worker_failed(struct dcmf_agw *agw, size_t worker) {
  /* Deleted contexts still waiting for the worker's RELEASED: it will
   * not come, the sockets died with the worker. */
  size_t released = dcmf_agw_e2ae_release_removed(agw, worker);
  for (struct relay *r = agw->relays, *next; r != NULL; r = next) {
    next = r->next;
    if (r->worker == worker && r->removed && !r->released) {
      release_ports(agw, r);
      record_free(agw, r);
      released++;
    }
  }
  released += dcmf_agw_e2ae_release_live(agw, worker);
  for (;;) {
    struct relay *r = agw->relays;
    while (r != NULL && (r->worker != worker || r->removed || r->released)) {
      r = r->next;
    }
    if (r == NULL) {
      return released;
    }
    /* Its sockets died with the worker: the ports are free now, and the
     * context's delete finds nothing left to close (the walk restarts,
     * as the delete frees the record). */
    release_ports(agw, r);
    DCMF_LOGW(agw->settings.log, "agw",
              "AGW context %s released: its media worker %zu ended",
              r->context_id, worker);
    char id[DCMF_ID_MAX];
    snprintf(id, sizeof(id), "%s", r->context_id);
    if (dcmf_agwapi_delete(agw->api, id) != 0) {
      r->removed = 1; /* no such context: only the record is left */
      record_free(agw, r);
    }
    released++;
  }
}

void dcmf_agw_handle(struct dcmf_agw *agw, const struct dcmf_api_request *req,
                     struct dcmf_api_response *resp) {
  dcmf_agwapi_handle(agw->api, req, resp);
}

void dcmf_agw_metrics(struct dcmf_agw *agw, struct dcmf_buf *out) {
  const struct dcmf_relay_counters *st = &agw->totals;
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
                    dir[s], (unsigned long long)st->packets[s]);
  }
  dcmf_buf_printf(out, "# HELP dcmf_agw_bytes_total UDP payload bytes the "
                       "AGW shim relayed, per direction.\n"
                       "# TYPE dcmf_agw_bytes_total counter\n");
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    dcmf_buf_printf(out, "dcmf_agw_bytes_total{direction=\"%s\"} %llu\n",
                    dir[s], (unsigned long long)st->bytes[s]);
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
          dcmf_relay_drop_name(r), (unsigned long long)st->dropped[s][r]);
    }
  }
  dcmf_buf_printf(out,
                  "# HELP dcmf_agw_latches_total Phone addresses the AGW "
                  "shim latched on.\n"
                  "# TYPE dcmf_agw_latches_total counter\n"
                  "dcmf_agw_latches_total %llu\n",
                  (unsigned long long)st->latches);
  dcmf_agw_e2ae_metrics(agw, out);
}
