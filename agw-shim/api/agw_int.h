/*
 * agw_int.h - the AGW shim's state, for agw.c (the relays and the
 * interface of agw.h) and agw_e2ae.c (the e2ae media) alone. Control
 * thread only, like everything of agw.h.
 */
#ifndef DCMF_AGW_INT_H
#define DCMF_AGW_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agw.h"
#include "agwapi.h"
#include "buf.h"
#include "hashmap.h"

struct relay; /* agw.c */
struct e2ae;  /* agw_e2ae.c */

/* The counters of the e2ae service's snapshots (the table of
 * agw_e2ae.c). */
#define DCMF_AGW_E2AE_COUNTERS 13
/* The counters of the TCP relays' snapshots (the table of agw_tcp.c). */
#define DCMF_AGW_TCP_COUNTERS 10
/* The counters of the MSRP-over-DC relays' snapshots (agw_msrpdc.c). */
#define DCMF_AGW_MSRPDC_COUNTERS 9
/* The counters of the T.140 media's snapshots (agw_t140.c). */
#define DCMF_AGW_T140_COUNTERS 30
/* The media id of an e2ae TCP context's relay (access termination). */
#define DCMF_AGW_TCP_MEDIA_ID "tcp"

struct dcmf_agw {
  struct dcmf_agw_settings settings;
  struct dcmf_agwapi *api;
  struct dcmf_hashmap by_id; /* struct relay */
  struct relay *relays;
  struct dcmf_hashmap e2ae_by_ctx; /* struct e2ae */
  struct e2ae *medias;
  /* e2ae totals (for /metrics): DTLS_FAILURE events, and the sums of
   * what each RTP_COUNTERS snapshot added, per counter of the service's
   * fixed set (labels are bounded by it, not by the contexts, which
   * come and go). */
  uint64_t e2ae_failures;
  uint64_t totals_e2ae[DCMF_AGW_E2AE_COUNTERS];
  /* e2ae TCP relays: TLS_FAILURE and TCP_FAILURE events, and the sums
   * of what each TCP_COUNTERS snapshot added (agw_tcp.c). */
  uint64_t tls_failures, tcp_failures;
  uint64_t totals_tcp[DCMF_AGW_TCP_COUNTERS];
  /* MSRP-over-DC relays: contexts made, and the sums of what each
   * MSRP_COUNTERS snapshot added (agw_msrpdc.c). */
  uint64_t msrpdc_contexts;
  uint64_t totals_msrpdc[DCMF_AGW_MSRPDC_COUNTERS];
  /* T.140 media: contexts made, and the sums of what each
   * T140_COUNTERS snapshot added (agw_t140.c). */
  uint64_t t140_contexts;
  uint64_t totals_t140[DCMF_AGW_T140_COUNTERS];
  uint64_t next_id;
  int workers_gone; /* in dcmf_agw_del: nothing is posted any more */
  /* Totals over every relay ever run, from the reports (for /metrics). */
  struct dcmf_relay_counters totals;
};

/* ---- agw.c ---- */

/* Fills |buf| with |len| random bytes (OpenSSL's; aborts without
 * randomness, as dcmfd does). */
void dcmf_agw_random(void *user, uint8_t *buf, size_t len);

/* ---- agw_e2ae.c ---- */

/* Prepares |agw|'s e2ae records. Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_agw_e2ae_init(struct dcmf_agw *agw);

/* Gives every e2ae record's ports back and frees the records (the
 * workers have stopped). */
void dcmf_agw_e2ae_free_all(struct dcmf_agw *agw);

/* Worker |worker| ended: frees the deleted e2ae contexts still waiting
 * for its RELEASED, with their ports. Returns how many. */
size_t dcmf_agw_e2ae_release_removed(struct dcmf_agw *agw, size_t worker);

/* Worker |worker| ended: releases each live e2ae context it served
 * (ports back, a warning, the context deleted). Returns how many. */
size_t dcmf_agw_e2ae_release_live(struct dcmf_agw *agw, size_t worker);

/* The API's e2ae operations (agwapi.h struct dcmf_agwapi_ops). */
int dcmf_agw_e2ae_new(void *user, const char *context_id,
                      const struct dcmf_agwiq *iq,
                      const struct dcmf_relay_config *cfg,
                      struct dcmf_agwapi_e2ae_local *local, void **media);
int dcmf_agw_e2ae_update(void *user, void *media, const struct dcmf_agwiq *iq,
                         const struct dcmf_relay_config *cfg,
                         const struct dcmf_agwiq_change *ch,
                         struct dcmf_agwapi_e2ae_local *local);
void dcmf_agw_e2ae_del(void *user, void *media);
int dcmf_agw_e2ae_view(void *user, void *media, json_t *view);

/* Appends the dcmf_agw_e2ae_* metrics to |out|. */
void dcmf_agw_e2ae_metrics(struct dcmf_agw *agw, struct dcmf_buf *out);

/* ---- agw_series.c ---- */

/* One counter of a media snapshot ({"obj":{"key":n}}) as a /metrics
 * series PREFIX_metric_total{label} ("" for no label). */
struct dcmf_agw_series {
  const char *obj, *key, *metric, *label;
};
/* A metric family of such a table and its HELP text. */
struct dcmf_agw_family {
  const char *metric, *help;
};

/* Keeps the snapshot |detail| (JSON) as |*kept|, replacing it, and adds
 * to each of |totals| what its series grew since the snapshot kept
 * before. Text that is not a JSON object changes nothing. */
void dcmf_agw_series_take(const struct dcmf_agw_series *table, size_t n,
                          uint64_t *totals, json_t **kept,
                          const char *detail);

/* Appends the families (HELP, TYPE, then their series in table order). */
void dcmf_agw_series_render(struct dcmf_buf *out, const char *prefix,
                            const struct dcmf_agw_family *families,
                            size_t n_families,
                            const struct dcmf_agw_series *table, size_t n,
                            const uint64_t *totals);

/* ---- agw_tcp.c ---- */

/* Replaces the two pool sockets in |fds| (access, core; UDP, holding
 * their port numbers) with TCP sockets bound to the same ports, the
 * passive and merge ones listening. Returns 0, DCMF_ERR_EXHAUSTED (the
 * TCP port is taken by another process) or DCMF_ERR_SYSTEM; on failure
 * each fd is still open (some may be TCP already). */
int dcmf_agw_tcp_sockets(const struct dcmf_agwiq *iq, int fds[2]);
/* One of them: |*fd| replaced by a TCP socket on its port (listening
 * when |listen_too|); errors as dcmf_agw_tcp_sockets. */
int dcmf_agw_tcp_socket(int *fd, int listen_too);

/* The worker's description of the TCP relay of a context: |fds| (access,
 * core) with an ADD, NULL for an UPDATE. Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_agw_tcp_desc(const char *context_id, const struct dcmf_agwiq *iq,
                      const struct dcmf_relay_config *cfg,
                      const struct dcmf_agwapi_e2ae_local *local,
                      const int *fds, struct dcmf_media_desc *d);

/* Keeps the TCP_COUNTERS |detail| as |*kept| (replacing it) and adds its
 * growth to the totals. */
void dcmf_agw_tcp_snapshot(struct dcmf_agw *agw, json_t **kept,
                           const char *detail);

/* Appends the dcmf_agw_e2ae_tcp_* metrics to |out|. */
void dcmf_agw_tcp_metrics(struct dcmf_agw *agw, struct dcmf_buf *out);

/* ---- agw_msrpdc.c ---- */

/* The MF's own MSRP URIs of an MSRP context into |local|
 * (msrps://ADDR:ACCESS/ID;|access_transport| and msrp://ADDR:CORE/ID;tcp):
 * "dc" over a data channel, "tcp" over TLS/TCP (aware mode). */
void dcmf_agw_msrpdc_uris(const char *advertise_addr, const char *context_id,
                          const char *access_transport,
                          struct dcmf_agwapi_e2ae_local *local);

/* Keeps the MSRP_COUNTERS |detail| (msrp_dc_svc.h) as |*kept| and adds
 * its growth to the totals. */
void dcmf_agw_msrpdc_snapshot(struct dcmf_agw *agw, json_t **kept,
                              const char *detail);

/* Appends the dcmf_agw_e2ae_msrp_dc_* metrics to |out|. */
void dcmf_agw_msrpdc_metrics(struct dcmf_agw *agw, struct dcmf_buf *out);

/* Turns the RTP path's description |d| of an access session into the
 * MSRP-over-DC one: SCTP association, the negotiated msrp stream, the
 * core TCP leg (|core_fd|, -1 for an UPDATE) in place of the RTP leg.
 * Returns 0 or DCMF_ERR_NOMEM (|d| still owns what it owned). */
int dcmf_agw_msrpdc_desc(const struct dcmf_agwiq *iq,
                         const struct dcmf_relay_config *cfg,
                         const struct dcmf_agwapi_e2ae_local *local,
                         int core_fd, struct dcmf_media_desc *d);

/* ---- agw_t140.c ---- */

/* Turns the RTP path's description |d| of an access session (with its
 * core RTP leg) into the T.140 one: SCTP association, the negotiated
 * t140 stream, the leg's T.140 settings from |iq|. Returns 0 or
 * DCMF_ERR_NOMEM (|d| still owns what it owned). */
int dcmf_agw_t140_desc(const struct dcmf_agwiq *iq, struct dcmf_media_desc *d);

/* Keeps the T140_COUNTERS |detail| (t140_svc.h) as |*kept| and adds its
 * growth to the totals. */
void dcmf_agw_t140_snapshot(struct dcmf_agw *agw, json_t **kept,
                            const char *detail);

/* Appends the dcmf_agw_e2ae_t140_* metrics to |out|. */
void dcmf_agw_t140_metrics(struct dcmf_agw *agw, struct dcmf_buf *out);

#endif
