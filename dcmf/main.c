/*
 * dcmfd - the IMS data-channel media function daemon.
 *
 * Wires the pieces together on one libuv loop: configuration, the DTLS
 * identity, the media port pool, the context registry, the control API
 * and its HTTP/2 server. SIGINT/SIGTERM stop it cleanly.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <uv.h>

#include "agw.h"
#include "api.h"
#include "cert.h"
#include "config.h"
#include "context.h"
#include "dcmf_build_config.h"
#include "errors.h"
#include "h2server.h"
#include "log.h"
#include "metrics.h"
#include "media.h"
#include "notify.h"
#include "ports.h"
#include "repo.h"
#include "worker.h"

/* Events kept on a context for GET. */
#define EVENTS_KEPT 32

struct daemon {
  struct dcmf_config cfg;
  struct dcmf_log log;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  struct dcmf_cert dtls;
  struct dcmf_ports *ports;
  struct dcmf_registry *registry;
  struct dcmf_metrics metrics;
  struct dcmf_api api;
  SSL_CTX *control_tls;
  struct dcmf_h2server *server;
  struct dcmf_repo *repo;
  struct dcmf_worker *worker;
  struct dcmf_notify *notify;
  struct dcmf_agw *agw;
  int stopping;
};

static int res_port_alloc(void *user, uint16_t *port) {
  struct daemon *d = user;
  int rv = dcmf_ports_alloc(d->ports, port);
  if (rv == DCMF_ERR_SYSTEM) {
    DCMF_LOGE(&d->log, "ports", "binding a media port failed: %s",
              strerror(errno));
  } else if (rv == DCMF_ERR_EXHAUSTED) {
    DCMF_LOGW(&d->log, "ports", "media port range %u-%u is exhausted",
              d->cfg.port_min, d->cfg.port_max);
  }
  return rv;
}

static void res_port_release(void *user, uint16_t port) {
  struct daemon *d = user;
  dcmf_ports_release(d->ports, port);
}

static void res_random(void *user, uint8_t *buf, size_t len) {
  (void)user;
  if (RAND_bytes(buf, (int)len) != 1) {
    /* OpenSSL's DRBG failing means the process cannot make secrets. */
    fprintf(stderr, "dcmfd: the random generator failed\n");
    abort();
  }
}

/* The registry changed a DC media: tell the media worker. */
static void res_media_changed(void *user, const struct dcmf_context *ctx,
                              const struct dcmf_media *m, json_t *media,
                              enum dcmf_media_change change) {
  struct daemon *d = user;
  struct dcmf_media_desc desc;
  if (change == DCMF_MEDIA_REMOVED) {
    struct dcmf_media_key key;
    memset(&key, 0, sizeof(key));
    snprintf(key.context_id, sizeof(key.context_id), "%s", ctx->id);
    snprintf(key.termination_id, sizeof(key.termination_id), "%s",
             m->termination_id);
    snprintf(key.media_id, sizeof(key.media_id), "%s", m->media_id);
    dcmf_worker_remove(d->worker, &key);
    return;
  }
  if (dcmf_media_desc_build(&desc, ctx, m, media, d->cfg.sctp_port) != 0) {
    DCMF_LOGE(&d->log, "main", "out of memory describing media %s",
              m->media_id);
    return;
  }
  /* The worker gets its own descriptor of every MDC2 port too (it closes
   * those of ports it already holds). */
  for (size_t i = 0; i < desc.n_mdc2; i++) {
    desc.mdc2[i].fd = dup(dcmf_ports_fd(d->ports, desc.mdc2[i].port));
  }
  if (change == DCMF_MEDIA_ADDED) {
    /* The worker gets its own descriptor for the bound port; the pool
     * keeps the port reserved until the registry releases it. */
    desc.fd = dup(dcmf_ports_fd(d->ports, m->port));
    if (desc.fd < 0) {
      DCMF_LOGE(&d->log, "main", "dup of media port %u failed: %s", m->port,
                strerror(errno));
      dcmf_media_desc_free(&desc);
      return;
    }
    dcmf_worker_add(d->worker, &desc);
  } else {
    dcmf_worker_update(d->worker, &desc);
  }
}

/* An event from the media plane: keep it on the context and tell the
 * controller at its eventNotifyUri. */
static void on_media_event(void *user, const struct dcmf_media_event *ev) {
  struct daemon *d = user;
  struct dcmf_context *ctx = dcmf_registry_find(d->registry,
                                                ev->key.context_id);
  if (ctx == NULL) {
    return; /* released meanwhile */
  }
  char when[40];
  time_t secs = (time_t)(ev->time_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof(when) - n, ".%03dZ", (int)(ev->time_ms % 1000));
  json_t *detail = json_loads(ev->detail, 0, NULL);
  json_t *event = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "contextId",
                            ev->key.context_id, "terminationId",
                            ev->key.termination_id, "mediaId",
                            ev->key.media_id, "event", ev->event, "detail",
                            detail ? detail : json_object(), "time", when);
  if (event == NULL) {
    return;
  }
  DCMF_LOGI(&d->log, "event", "%s %s/%s/%s %s", ev->event, ev->key.context_id,
            ev->key.termination_id, ev->key.media_id, ev->detail);
  const char *uri = json_string_value(json_object_get(ctx->doc,
                                                      "eventNotifyUri"));
  if (uri != NULL) {
    char *text = json_dumps(event, JSON_COMPACT);
    if (text != NULL) {
      dcmf_notify_post(d->notify, uri, text);
    }
    free(text);
  }
  dcmf_registry_add_event(d->registry, ctx, event, EVENTS_KEPT);
}

static uint64_t load(const _Atomic uint64_t *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

static void gauges(void *user, struct dcmf_gauges *g) {
  struct daemon *d = user;
  g->ports_in_use = dcmf_ports_in_use(d->ports);
  g->ports_total = dcmf_ports_total(d->ports);
  const struct dcmf_media_stats *st = dcmf_worker_stats(d->worker);
  struct dcmf_media_figures *f = &g->media;
  f->sessions = load(&st->sessions);
  f->dtls_ok = load(&st->dtls_ok);
  f->dtls_failed = load(&st->dtls_failed);
  f->sctp_associations = load(&st->sctp_associations);
  f->channels_open = load(&st->channels_open);
  f->messages_in = load(&st->messages_in);
  f->messages_out = load(&st->messages_out);
  f->bytes_in = load(&st->bytes_in);
  f->bytes_out = load(&st->bytes_out);
  f->stun_ok = load(&st->stun_ok);
  f->stun_error = load(&st->stun_error);
  f->consent_lost = load(&st->consent_lost);
  f->dropped_unknown_protocol = load(&st->dropped_unknown_protocol);
  f->dropped_unauthenticated = load(&st->dropped_unauthenticated);
  f->dropped_dtls = load(&st->dropped_dtls);
  f->dropped_other = load(&st->dropped_other);
  f->udp_datagrams_out = load(&st->udp_datagrams_out);
  f->udp_bytes_out = load(&st->udp_bytes_out);
  f->udp_datagrams_in = load(&st->udp_datagrams_in);
  f->udp_bytes_in = load(&st->udp_bytes_in);
  f->udp_dropped_oversize = load(&st->udp_dropped_oversize);
  f->udp_dropped_source = load(&st->udp_dropped_source);
  f->udp_dropped_queue = load(&st->udp_dropped_queue);
  f->udp_dropped_send = load(&st->udp_dropped_send);
  f->relay_messages = load(&st->relay_messages);
  f->relay_bytes = load(&st->relay_bytes);
  f->relay_dropped_queue = load(&st->relay_dropped_queue);
  f->relay_dropped_send = load(&st->relay_dropped_send);
  f->relay_dropped_no_twin = load(&st->relay_dropped_no_twin);
  f->relay_queued_messages = load(&st->relay_queued_messages);
  f->relay_queued_bytes = load(&st->relay_queued_bytes);
  f->relay_stalls = load(&st->relay_stalls);
  f->proxy_requests = load(&st->proxy_requests);
  f->proxy_upstream_errors = load(&st->proxy_upstream_errors);
  f->proxy_upstream_timeouts = load(&st->proxy_upstream_timeouts);
  f->proxy_cache_hits = load(&st->proxy_cache_hits);
  f->proxy_cache_misses = load(&st->proxy_cache_misses);
  f->proxy_cache_revalidated = load(&st->proxy_cache_revalidated);
  f->proxy_cache_bytes = load(&st->proxy_cache_bytes);
  f->proxy_upstream_responses = load(&st->proxy_upstream_responses);
  f->proxy_upstream_latency_ms = load(&st->proxy_upstream_latency_ms);
  const struct dcmf_notify_counters *nc = dcmf_notify_counters(d->notify);
  f->events_sent = nc->sent;
  f->events_failed = nc->failed;
  f->events_dropped = nc->dropped;
}

/* The AGW shim's ports come from the same pool; the shim gets its own
 * descriptor of each. */
static int agw_port_alloc(void *user, uint16_t *port, int *fd) {
  struct daemon *d = user;
  int rv = res_port_alloc(d, port);
  if (rv != 0) {
    return rv;
  }
  *fd = dup(dcmf_ports_fd(d->ports, *port));
  if (*fd < 0) {
    dcmf_ports_release(d->ports, *port);
    return DCMF_ERR_SYSTEM;
  }
  return 0;
}

static void agw_port_release(void *user, uint16_t port) {
  struct daemon *d = user;
  dcmf_ports_release(d->ports, port);
}

static void agw_mount(void *user, const struct dcmf_api_request *req,
                      struct dcmf_api_response *resp) {
  struct daemon *d = user;
  dcmf_agw_handle(d->agw, req, resp);
}

static void agw_metrics(void *user, struct dcmf_buf *out) {
  struct daemon *d = user;
  dcmf_agw_metrics(d->agw, out);
}

static void on_server_stopped(void *user) {
  struct daemon *d = user;
  uv_close((uv_handle_t *)&d->sigint, NULL);
  uv_close((uv_handle_t *)&d->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  struct daemon *d = h->data;
  if (d->stopping) {
    return;
  }
  d->stopping = 1;
  DCMF_LOGI(&d->log, "main", "signal %d: shutting down", signum);
  dcmf_h2server_stop(d->server, on_server_stopped, d);
}

static int daemon_setup(struct daemon *d) {
  char err[512];
  struct dcmf_repo_settings repo_settings = {0};
  if (dcmf_repo_open(&d->repo, d->cfg.bootstrap_dir, &repo_settings, err,
                     sizeof(err)) != 0) {
    fprintf(stderr, "dcmfd: bootstrap-dir %s: %s\n", d->cfg.bootstrap_dir,
            err);
    return 2;
  }
  if (d->cfg.dtls_cert[0] != '\0') {
    if (dcmf_cert_load(&d->dtls, d->cfg.dtls_cert, d->cfg.dtls_key, err,
                       sizeof(err)) != 0) {
      fprintf(stderr, "dcmfd: %s\n", err);
      return 2;
    }
  } else if (dcmf_cert_generate(&d->dtls, err, sizeof(err)) != 0) {
    fprintf(stderr, "dcmfd: %s\n", err);
    return 1;
  }
  if (d->cfg.control_cert[0] != '\0') {
    d->control_tls = dcmf_h2server_tls_ctx(d->cfg.control_cert,
                                           d->cfg.control_key, err,
                                           sizeof(err));
    if (d->control_tls == NULL) {
      fprintf(stderr, "dcmfd: %s\n", err);
      return 2;
    }
  }
  if (dcmf_ports_new(&d->ports, d->cfg.media_bind, d->cfg.port_min,
                     d->cfg.port_max) != 0) {
    fprintf(stderr, "dcmfd: cannot use media address %s\n",
            d->cfg.media_bind);
    return 2;
  }
  struct dcmf_registry_settings rs = {
      .advertise_addr = d->cfg.media_advertise,
      .local_fingerprint = d->dtls.fingerprint,
      .sctp_port = d->cfg.sctp_port,
      .max_contexts = d->cfg.max_contexts,
  };
  struct dcmf_resources res = {
      .port_alloc = res_port_alloc,
      .port_release = res_port_release,
      .random = res_random,
      .media_changed = res_media_changed,
      .user = d,
  };
  const struct dcmf_config *c = &d->cfg;
  struct dcmf_worker_settings ws = {
      .cert = d->dtls.x509,
      .pkey = d->dtls.pkey,
      .log = &d->log,
      .repo = d->repo,
      .max_streams = c->max_streams,
      .upstream = {.ca_file = c->upstream_ca[0] ? c->upstream_ca : NULL,
                   .client_cert = c->upstream_cert[0] ? c->upstream_cert
                                                      : NULL,
                   .client_key = c->upstream_key[0] ? c->upstream_key : NULL,
                   .connect_timeout_ms = c->upstream_connect_timeout_ms,
                   .response_timeout_ms = c->upstream_response_timeout_ms,
                   .idle_timeout_ms = c->upstream_idle_timeout_ms,
                   .max_connections = c->upstream_max_connections},
      .cache_size = c->cache_size,
      .proxy_fallback = (int)c->proxy_fallback,
      .on_event = on_media_event,
      .user = d,
  };
  if (dcmf_notify_new(&d->notify, &d->loop, &d->log) != 0) {
    fprintf(stderr, "dcmfd: out of memory\n");
    return 1;
  }
  int wrv = dcmf_worker_start(&d->worker, &d->loop, &ws, err, sizeof(err));
  if (wrv != 0) {
    fprintf(stderr, "dcmfd: %s\n", wrv == DCMF_ERR_INVALID
                                       ? err
                                       : "cannot start the media worker");
    return wrv == DCMF_ERR_INVALID ? 2 : 1;
  }
  if (dcmf_registry_new(&d->registry, &rs, &res) != 0) {
    fprintf(stderr, "dcmfd: out of memory\n");
    return 1;
  }
  struct dcmf_agw_settings as = {.control_loop = &d->loop,
                                 .bind_addr = d->cfg.media_bind,
                                 .advertise_addr = d->cfg.media_advertise,
                                 .log = &d->log,
                                 .port_alloc = agw_port_alloc,
                                 .port_release = agw_port_release,
                                 .port_user = d};
  if (dcmf_agw_new(&d->agw, &as) != 0) {
    fprintf(stderr, "dcmfd: cannot start the AGW shim\n");
    return 1;
  }
  d->api = (struct dcmf_api){.registry = d->registry,
                             .metrics = &d->metrics,
                             .log = &d->log,
                             .gauges = gauges,
                             .gauges_user = d,
                             .mount_prefix = "/agw/v1/",
                             .mount = agw_mount,
                             .extra_metrics = agw_metrics,
                             .mount_user = d};
  struct dcmf_h2server_settings hs = {
      .host = d->cfg.control_host,
      .port = d->cfg.control_port,
      .tls = d->control_tls,
      .max_body = d->cfg.max_body,
      .request_timeout_ms = d->cfg.request_timeout_ms,
      .idle_timeout_ms = d->cfg.idle_timeout_ms,
  };
  int rv = dcmf_h2server_start(&d->server, &d->loop, &hs, &d->api, &d->log,
                               &d->metrics);
  if (rv != 0) {
    fprintf(stderr, "dcmfd: cannot listen on %s:%u: %s\n",
            d->cfg.control_host, d->cfg.control_port,
            rv == DCMF_ERR_NOMEM ? "out of memory" : uv_strerror(rv));
    return 1;
  }
  return 0;
}

static void daemon_teardown(struct daemon *d) {
  dcmf_registry_del(d->registry); /* releases every port and session */
  if (d->worker != NULL) {
    dcmf_worker_stop(d->worker);
  }
  dcmf_agw_del(d->agw); /* releases its ports before the pool goes */
  dcmf_notify_del(d->notify);
  dcmf_repo_del(d->repo);
  dcmf_ports_del(d->ports);
  SSL_CTX_free(d->control_tls);
  dcmf_cert_free(&d->dtls);
}

int main(int argc, char **argv) {
  struct daemon *d = calloc(1, sizeof(*d));
  if (d == NULL) {
    return 1;
  }
  char err[1200];
  enum dcmf_config_action action;
  if (dcmf_config_from_args(&d->cfg, argc, argv, &action, err, sizeof(err)) !=
      0) {
    fprintf(stderr, "dcmfd: %s\n", err);
    free(d);
    return 2;
  }
  if (action != DCMF_CONFIG_RUN) {
    if (action == DCMF_CONFIG_HELP) {
      dcmf_config_usage(stdout, "dcmfd");
    } else {
      printf("dcmfd %s\n", DCMF_VERSION);
    }
    free(d);
    return 0;
  }
  d->log = (struct dcmf_log){.stream = stderr,
                             .level = d->cfg.log_level,
                             .format = d->cfg.log_format};
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&d->loop);
  int rv = daemon_setup(d);
  if (rv == 0) {
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_init(&d->loop, &d->sigterm);
    d->sigint.data = d->sigterm.data = d;
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    DCMF_LOGI(&d->log, "main",
              "dcmfd %s: control API %s://%s:%u, media %s (advertised %s) "
              "ports %u-%u, DTLS %s",
              DCMF_VERSION, d->control_tls ? "https" : "http",
              d->cfg.control_host, d->cfg.control_port, d->cfg.media_bind,
              d->cfg.media_advertise, d->cfg.port_min, d->cfg.port_max,
              d->dtls.fingerprint);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    DCMF_LOGI(&d->log, "main", "stopped; %zu contexts released",
              dcmf_registry_count(d->registry));
  }
  daemon_teardown(d);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  uv_loop_close(&d->loop);
  free(d);
  return rv;
}
