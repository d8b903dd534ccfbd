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
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <uv.h>

#include "api.h"
#include "cert.h"
#include "config.h"
#include "context.h"
#include "dcmf_build_config.h"
#include "errors.h"
#include "h2server.h"
#include "log.h"
#include "metrics.h"
#include "ports.h"

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

static void gauges(void *user, struct dcmf_gauges *g) {
  struct daemon *d = user;
  g->ports_in_use = dcmf_ports_in_use(d->ports);
  g->ports_total = dcmf_ports_total(d->ports);
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
  uv_fs_t req;
  int st = uv_fs_stat(NULL, &req, d->cfg.bootstrap_dir, NULL);
  int is_dir = st == 0 && S_ISDIR(req.statbuf.st_mode);
  uv_fs_req_cleanup(&req);
  if (!is_dir || uv_fs_access(NULL, &req, d->cfg.bootstrap_dir, R_OK | X_OK,
                              NULL) != 0) {
    uv_fs_req_cleanup(&req);
    fprintf(stderr, "dcmfd: bootstrap-dir %s is not a readable directory\n",
            d->cfg.bootstrap_dir);
    return 2;
  }
  uv_fs_req_cleanup(&req);
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
      .user = d,
  };
  if (dcmf_registry_new(&d->registry, &rs, &res) != 0) {
    fprintf(stderr, "dcmfd: out of memory\n");
    return 1;
  }
  d->api = (struct dcmf_api){.registry = d->registry,
                             .metrics = &d->metrics,
                             .log = &d->log,
                             .gauges = gauges,
                             .gauges_user = d};
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
  dcmf_registry_del(d->registry); /* releases every port */
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
