/* UDP-proxy mode as a session service (udpproxy_svc.h). */
#include "udpproxy_svc.h"

#include <stdlib.h>

#include "errors.h"
#include "log.h"
#include "udpproxy.h"
#include "worker.h"

struct udp_media {
  struct dcmf_svc_host *host;
  struct udp_worker *worker;
  struct dcmf_udpproxy *legs; /* NULL: no MDC2 leg so far */
  struct dcmf_udpproxy_counters published;
  int oversize_logged; /* an oversize message was logged */
};

static int deliver(void *user, uint16_t sid, int text, const uint8_t *data,
                   size_t len) {
  struct udp_media *m = user;
  return m->host->send(m->host, sid, !text, data, len);
}

/* The legs counted something: publish it after the next tick (not per
 * datagram, and an idle media is never ticked). */
static void counted(void *user) {
  struct udp_media *m = user;
  m->host->want_tick(m->host);
}

static const struct dcmf_udpproxy_callbacks udp_cbs = {deliver, counted};

/* What the worker's media share: the receive scratch of every MDC2 leg. */
struct udp_worker {
  uint8_t *rx;
  size_t rx_len;
};

static int udp_init(void **worker, const struct dcmf_svc_worker_env *env,
                    const void *config, char *err, size_t errlen) {
  (void)env;
  (void)config;
  (void)err;
  (void)errlen;
  struct udp_worker *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    return DCMF_ERR_NOMEM;
  }
  w->rx_len = (size_t)DCMF_UDPPROXY_BATCH * DCMF_UDPPROXY_SLOT;
  w->rx = malloc(w->rx_len);
  if (w->rx == NULL) {
    free(w);
    return DCMF_ERR_NOMEM;
  }
  *worker = w;
  return 0;
}

static void udp_free(void *worker) {
  struct udp_worker *w = worker;
  free(w->rx);
  free(w);
}

/* Adds what the legs counted since the last call to the worker's stats. */
static void publish(struct udp_media *m) {
  if (m->legs == NULL) {
    return;
  }
  struct dcmf_media_stats *st = m->host->counters(m->host);
  const struct dcmf_udpproxy_counters *c = dcmf_udpproxy_counters(m->legs);
  struct dcmf_udpproxy_counters *p = &m->published;
#define PUB(field, stat)                                                       \
  DCMF_SVC_STAT_ADD(st, stat, c->field - p->field);                            \
  p->field = c->field
  PUB(datagrams_out, udp_datagrams_out);
  PUB(bytes_out, udp_bytes_out);
  PUB(datagrams_in, udp_datagrams_in);
  PUB(bytes_in, udp_bytes_in);
  PUB(dropped_oversize, udp_dropped_oversize);
  PUB(dropped_source, udp_dropped_source);
  PUB(dropped_queue_full, udp_dropped_queue);
  PUB(dropped_send, udp_dropped_send);
#undef PUB
}

/* Brings the MDC2 legs in line with the description (taking its fds). */
static void sync_legs(struct udp_media *m) {
  struct dcmf_media_desc *d = m->host->desc;
  if (d->n_mdc2 == 0 && m->legs == NULL) {
    return;
  }
  if (m->legs == NULL &&
      dcmf_udpproxy_new(&m->legs, m->host->loop, &d->mdc2_addr,
                        m->worker->rx, m->worker->rx_len, &udp_cbs,
                        m) != 0) {
    m->legs = NULL;
    return;
  }
  dcmf_udpproxy_sync(m->legs, d->mdc2, d->n_mdc2, &d->mdc2_addr);
}

static int udp_attach(void **media, void *worker, struct dcmf_svc_host *host) {
  struct udp_media *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return DCMF_ERR_NOMEM;
  }
  m->host = host;
  m->worker = worker;
  sync_legs(m);
  *media = m;
  return 0;
}

static void udp_update(void *media) { sync_legs(media); }

static void udp_detach(void *media) {
  struct udp_media *m = media;
  if (m->legs != NULL) {
    publish(m);
    dcmf_udpproxy_close(m->legs);
  }
  free(m);
}

/* Asked for by counted(). */
static void udp_tick(void *media) { publish(media); }

static int udp_match(void *media, const struct dcmf_svc_flow *flow) {
  struct udp_media *m = media;
  return flow->kind == DCMF_ASSOC_SCTP && flow->id <= UINT16_MAX &&
         m->legs != NULL && dcmf_udpproxy_has(m->legs, (uint16_t)flow->id);
}

static int udp_open(void *media, const struct dcmf_svc_flow *flow,
                    void **chan) {
  struct udp_media *m = media;
  /* Queued A2P datagrams go now; an SCTP stream (udp_match). */
  dcmf_udpproxy_channel_open(m->legs, (uint16_t)flow->id);
  *chan = NULL;
  return 0;
}

static void udp_message(void *media, void *chan,
                        const struct dcmf_svc_flow *flow, int binary,
                        const uint8_t *data, size_t len) {
  (void)chan;
  (void)binary;
  struct udp_media *m = media;
  uint16_t sid = (uint16_t)flow->id; /* an SCTP stream (udp_match) */
  if (!dcmf_udpproxy_has(m->legs, sid)) {
    return; /* a PATCH took the leg away */
  }
  if (len > DCMF_UDPPROXY_MAX_DATAGRAM && !m->oversize_logged) {
    m->oversize_logged = 1; /* once per media: a phone could flood */
    DCMF_LOGW(m->host->log, "udp-proxy",
              "%s: stream %u: a %zu-byte message cannot be one UDP "
              "datagram (max %d); dropped (dcmf_udp_proxy_dropped_total"
              "{reason=\"oversize\"} counts every such message)",
              m->host->name, sid, len, DCMF_UDPPROXY_MAX_DATAGRAM);
  }
  dcmf_udpproxy_message(m->legs, sid, data, len);
}

const struct dcmf_service dcmf_udpproxy_service = {
    .name = "udp-proxy",
    .init = udp_init,
    .free = udp_free,
    .attach = udp_attach,
    .update = udp_update,
    .detach = udp_detach,
    .tick = udp_tick,
    .match = udp_match,
    .open = udp_open,
    .message = udp_message,
};
