/*
 * dcmfd - the IMS data-channel media function daemon.
 *
 * Wires the pieces together on one libuv loop: configuration, the DTLS
 * identity, the media port pool, the context registry, the control API
 * and its HTTP/2 server. SIGINT/SIGTERM stop it cleanly, within a bound.
 *
 * Shutdown does not trust any event loop. SIGINT and SIGTERM are blocked
 * in every thread and taken by a small signal thread with sigwait(). The
 * first one asks the control loop to stop (uv_async_send, safe from any
 * thread) and then waits, with sigtimedwait(), for a second signal or the
 * shutdown timeout. If either comes first it logs the parts that did not
 * stop and calls _exit(3). The thread reads one atomic (the parts still
 * pending) and writes log lines; _exit() skips atexit handlers and stdio
 * flushing, which a stuck thread might block. Writing a log line takes
 * the stdio lock and may block on a stderr nobody reads (a stalled log
 * collector), so the stop request and the deadline come before the first
 * line, and an alarm(2) armed beforehand ends the process by SIGALRM
 * should a write block past the bound. When the graceful shutdown
 * completes, main() disarms the alarm and
 * cancels the thread (sigwait and sigtimedwait are cancellation points,
 * the only places where it accepts cancellation).
 */
#include <errno.h>
#include <pthread.h>
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
#include "auth.h"
#include "authcfg.h"
#include "cmdline.h"
#include "cert.h"
#include "config.h"
#include "context.h"
#include "controller.h"
#include "dcmf_build_config.h"
#include "errors.h"
#include "h2server.h"
#include "heartbeat.h"
#include "log.h"
#include "media.h"
#include "memtrim.h"
#include "metrics.h"
#include "notify.h"
#include "ports.h"
#include "rsaident.h"
#include "wchild.h"
#include "wpool.h"

/* Events kept on a context for GET. */
#define EVENTS_KEPT 32
/* Exit status when the shutdown timeout or a second signal cuts a
 * graceful shutdown short. */
#define EXIT_SHUTDOWN_CUT 3

/* Parts a shutdown stops, in order; a bit stays set until it stopped. */
enum part {
  PART_CONTROL = 1, /* the control loop: API server, notifications */
  PART_MEDIA = 2,   /* the media workers, with the AGW shim's relays */
  PART_CLEANUP = 4, /* what remains after the threads have stopped */
};
static const struct {
  unsigned bit;
  const char *name;
} parts[] = {{PART_CONTROL, "control loop"},
             {PART_MEDIA, "media worker"},
             {PART_CLEANUP, "final clean-up"}};

/* A worker loop the control thread watches, with its stall episodes. */
struct watched {
  const char *name;
  const struct dcmf_heartbeat *heartbeat;
  int stalled;
  uint64_t stalls;
  uint64_t worst_ms; /* the longest age seen in this episode */
};

struct daemon {
  struct dcmf_config cfg;
  struct dcmf_log log;
  uv_loop_t loop;
  uv_async_t stop_async; /* the signal thread asks for a shutdown */
  uv_timer_t watch_timer;
  /* Contexts' documents freed in a burst go back to the system. */
  struct dcmf_memtrim trim;
  struct watched watched[DCMF_METRICS_MAX_LOOPS];
  size_t n_watched;
  sigset_t stop_signals; /* SIGINT, SIGTERM: blocked, taken by sigwait */
  pthread_t signal_thread;
  int signal_thread_running;
  _Atomic unsigned pending; /* enum part bits not stopped yet */
  struct dcmf_cert dtls;
  /* T.38 over DTLS (RFC 7345): loaded, or generated on a thread of its
   * own while everything else starts and serves (rsa_ready). */
  struct dcmf_rsaident rsa;
  struct dcmf_ports *ports;
  struct dcmf_controller *controller; /* owns the context registry */
  /* The media worker processes (wpool.h); they get the daemon's own
   * arguments again. */
  struct dcmf_wpool *workers;
  size_t n_workers;
  char worker_names[DCMF_CONFIG_MAX_WORKERS][16]; /* "media-0", ... */
  char **args;
  size_t n_args;
  struct dcmf_metrics metrics;
  struct dcmf_api api;
  SSL_CTX *control_tls;
  struct dcmf_h2server *server;
  struct dcmf_notify *notify;
  struct dcmf_agw *agw;
  struct dcmf_auth *auth; /* NULL: the control API is open */
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

/* The controller's hooks: descriptors of bound ports, the workers, and
 * the notification client. */
static int ctl_port_dup(void *user, uint16_t port) {
  struct daemon *d = user;
  return dup(dcmf_ports_fd(d->ports, port));
}

static void ctl_post(void *user, size_t worker, enum dcmf_media_op op,
                     struct dcmf_media_desc *desc) {
  struct daemon *d = user;
  if (op == DCMF_MEDIA_OP_REMOVE) {
    dcmf_memtrim_note(&d->trim);
  }
  dcmf_wpool_post(d->workers, worker, op, desc);
}

/* The AGW shim's e2ae media: it is told when nothing reached the
 * worker, so it does not wait for a RELEASED that never comes. */
static int agw_post_media(void *user, size_t worker, enum dcmf_media_op op,
                          struct dcmf_media_desc *desc) {
  struct daemon *d = user;
  if (op == DCMF_MEDIA_OP_REMOVE) {
    dcmf_memtrim_note(&d->trim);
  }
  return dcmf_wpool_post(d->workers, worker, op, desc);
}

/* The worker pool's hooks: events, a worker that ended, the end. */
static void wp_event(void *user, const struct dcmf_media_event *ev) {
  struct daemon *d = user;
  /* The media of an AGW e2ae context report to the shim. */
  if (d->agw != NULL && dcmf_agw_on_media_event(d->agw, ev)) {
    return;
  }
  dcmf_controller_on_event(d->controller, ev);
}

static void wp_failed(void *user, size_t worker, const char *reason) {
  struct daemon *d = user;
  char why[200];
  snprintf(why, sizeof(why), "media worker %zu %s", worker, reason);
  dcmf_controller_worker_failed(d->controller, worker, why);
  if (d->agw != NULL) {
    dcmf_agw_worker_failed(d->agw, worker);
  }
}

static void agw_post_relay(void *user, size_t worker, enum dcmf_relay_op op,
                           struct dcmf_relay_desc *desc) {
  struct daemon *d = user;
  dcmf_wpool_post_relay(d->workers, worker, op, desc);
}

static void wp_stopped(void *user) {
  struct daemon *d = user;
  atomic_fetch_and(&d->pending, ~(unsigned)PART_MEDIA);
}

static void ctl_notify(void *user, const char *uri, const char *json) {
  struct daemon *d = user;
  dcmf_notify_post(d->notify, uri, json);
}

/* ---- liveness of the worker loops ---------------------------------------- */

static void watch_add(struct daemon *d, const char *name,
                      const struct dcmf_heartbeat *hb) {
  d->watched[d->n_watched++] = (struct watched){.name = name, .heartbeat = hb};
}

/* Logs the start and the end of each stall episode once. */
static void watch_check(struct daemon *d) {
  uint64_t now = dcmf_heartbeat_now_ms();
  for (size_t i = 0; i < d->n_watched; i++) {
    struct watched *w = &d->watched[i];
    uint64_t age = dcmf_heartbeat_age_ms(w->heartbeat, now);
    if (age > DCMF_HEARTBEAT_STALL_MS) {
      if (!w->stalled) {
        w->stalled = 1;
        w->stalls++;
        DCMF_LOGW(&d->log, "main",
                  "worker %s: loop has not turned for "
                  "%llu.%llu s",
                  w->name, (unsigned long long)(age / 1000),
                  (unsigned long long)(age % 1000 / 100));
      }
      w->worst_ms = age > w->worst_ms ? age : w->worst_ms;
    } else if (w->stalled) {
      w->stalled = 0;
      DCMF_LOGI(&d->log, "main",
                "worker %s: loop turns again after a "
                "stall of at least %llu.%llu s",
                w->name, (unsigned long long)(w->worst_ms / 1000),
                (unsigned long long)(w->worst_ms % 1000 / 100));
      w->worst_ms = 0;
    }
  }
}

static void on_watch_timer(uv_timer_t *t) {
  watch_check(t->data);
}

static void gauges(void *user, struct dcmf_gauges *g) {
  struct daemon *d = user;
  g->ports_in_use = dcmf_ports_in_use(d->ports);
  g->ports_total = dcmf_ports_total(d->ports);
  dcmf_wpool_figures(d->workers, &g->media);
  watch_check(d);
  uint64_t now = dcmf_heartbeat_now_ms();
  for (size_t i = 0; i < d->n_watched; i++) {
    const struct watched *w = &d->watched[i];
    uint64_t age = dcmf_heartbeat_age_ms(w->heartbeat, now);
    g->loops[i] =
        (struct dcmf_loop_health){.name = w->name,
                                  .age_ms = age,
                                  .stalled = age > DCMF_HEARTBEAT_STALL_MS,
                                  .stalls = w->stalls};
  }
  g->n_loops = d->n_watched;
  const struct dcmf_notify_counters *nc = dcmf_notify_counters(d->notify);
  struct dcmf_media_figures *f = &g->media;
  f->events_sent = nc->sent;
  f->events_failed = nc->failed;
  /* Events the worker's outbox refused never reached the notifier. */
  f->events_dropped = nc->dropped + dcmf_wpool_events_refused(d->workers);
  f->worker_failures = dcmf_wpool_failures(d->workers);
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

/* A worker's report of an AGW relay. None comes before the shim exists
 * (there is no relay), and none is handed over after dcmf_agw_del. */
static void agw_relay_event(void *user, const struct dcmf_relay_event *ev) {
  struct daemon *d = user;
  if (d->agw != NULL) {
    dcmf_agw_on_relay_event(d->agw, ev);
  }
}

/* ---- shutdown -------------------------------------------------------------
 */

static void on_server_stopped(void *user) {
  struct daemon *d = user;
  uv_close((uv_handle_t *)&d->stop_async, NULL);
  uv_close((uv_handle_t *)&d->watch_timer, NULL);
  dcmf_memtrim_close(&d->trim);
  dcmf_notify_stop(d->notify); /* its idle connections would hold the loop */
}

/* On the control loop: the signal thread saw the first SIGINT/SIGTERM. */
static void on_stop_request(uv_async_t *a) {
  struct daemon *d = a->data;
  if (d->stopping || d->server == NULL) {
    return; /* already stopping, or start-up failed */
  }
  d->stopping = 1;
  dcmf_h2server_stop(d->server, on_server_stopped, d);
}

/* Signal thread: logs what has not stopped and ends the process. The
 * alarm bounds the log write (see the top of this file). */
static void shutdown_cut(struct daemon *d, const char *why) {
  alarm(1);
  unsigned pending = atomic_load(&d->pending);
  char names[128] = "";
  const char *first = "nothing";
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
    if (pending & parts[i].bit) {
      size_t n = strlen(names);
      snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "",
               parts[i].name);
      if (strcmp(first, "nothing") == 0) {
        first = parts[i].name;
      }
    }
  }
  DCMF_LOGE(&d->log, "main",
            "shutdown cut short %s: %s did not stop "
            "(still running: %s); exiting with status %d",
            why, first, names[0] ? names : "nothing", EXIT_SHUTDOWN_CUT);
  _exit(EXIT_SHUTDOWN_CUT);
}

static void *signal_main(void *arg) {
  struct daemon *d = arg;
  int sig = 0;
  /* Cancellation only inside the waits, never while logging. */
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
  int rv = sigwait(&d->stop_signals, &sig);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  if (rv != 0) {
    return NULL;
  }
  uint32_t ms = d->cfg.shutdown_timeout_ms;
  struct timespec deadline, now;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += ms / 1000;
  deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  uv_async_send(&d->stop_async);
  /* The backstop, should a log write below block past the deadline. */
  alarm(ms / 1000 + 2);
  DCMF_LOGI(&d->log, "main", "signal %d: shutting down (at most %u ms)", sig,
            ms);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t left_ns = (int64_t)(deadline.tv_sec - now.tv_sec) * 1000000000 +
                      (deadline.tv_nsec - now.tv_nsec);
    if (left_ns <= 0) {
      char why[64];
      snprintf(why, sizeof(why), "after %u ms", ms);
      shutdown_cut(d, why);
    }
    struct timespec left = {(time_t)(left_ns / 1000000000),
                            (long)(left_ns % 1000000000)};
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    sig = sigtimedwait(&d->stop_signals, NULL, &left);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    if (sig > 0) {
      shutdown_cut(d, "by a second signal");
    }
    /* EAGAIN: the time is up (checked above); EINTR: wait again. */
  }
  return NULL;
}

/* Blocks SIGINT and SIGTERM in this thread and every thread it starts
 * from now on; only the signal thread takes them, with sigwait(). */
static void block_stop_signals(struct daemon *d) {
  sigemptyset(&d->stop_signals);
  sigaddset(&d->stop_signals, SIGINT);
  sigaddset(&d->stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &d->stop_signals, NULL);
}

static int start_signal_thread(struct daemon *d) {
  uv_async_init(&d->loop, &d->stop_async, on_stop_request);
  d->stop_async.data = d;
  atomic_store(&d->pending, PART_CONTROL | PART_MEDIA | PART_CLEANUP);
  if (pthread_create(&d->signal_thread, NULL, signal_main, d) != 0) {
    uv_close((uv_handle_t *)&d->stop_async, NULL);
    return -1;
  }
  d->signal_thread_running = 1;
  return 0;
}

static void stop_signal_thread(struct daemon *d) {
  if (d->signal_thread_running) {
    pthread_cancel(d->signal_thread);
    pthread_join(d->signal_thread, NULL);
    d->signal_thread_running = 0;
    alarm(0); /* the shutdown finished in time */
  }
}

/* The generated RSA identity is there (or failed: NULL). The workers get
 * it first, the shim then answers with its fingerprint: a T.38 ADD
 * reaches its worker behind the identity on the same link. Either may
 * not exist yet (the workers answer their hellos on this loop). */
static void rsa_ready(void *user, const struct dcmf_cert *cert) {
  struct daemon *d = user;
  if (cert != NULL && d->workers != NULL &&
      dcmf_wpool_set_rsa(d->workers, cert) != 0) {
    DCMF_LOGE(&d->log, "main", "no RSA identity for T.38: out of memory");
    cert = NULL;
  }
  if (d->agw != NULL) {
    dcmf_agw_set_rsa_cert(d->agw, cert);
  }
}

static int daemon_setup(struct daemon *d) {
  char err[1024];
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
  struct dcmf_rsaident_settings rs = {.loop = &d->loop,
                                      .cert_path = d->cfg.dtls_rsa_cert,
                                      .key_path = d->cfg.dtls_rsa_key,
                                      .delay_ms = d->cfg.test_delay_rsa_ms,
                                      .log = &d->log,
                                      .on_ready = rsa_ready,
                                      .user = d};
  int rrv = dcmf_rsaident_start(&d->rsa, &rs, err, sizeof(err));
  if (rrv != 0) {
    fprintf(stderr, "dcmfd: %s\n", err);
    return rrv;
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
  int arv = dcmf_authcfg_build(&d->cfg, d->control_tls, &d->auth, err,
                               sizeof(err));
  if (arv != 0) {
    fprintf(stderr, "dcmfd: %s\n", err);
    return arv;
  }
  if (dcmf_ports_new(&d->ports, d->cfg.media_bind, d->cfg.port_min,
                     d->cfg.port_max) != 0) {
    fprintf(stderr, "dcmfd: cannot use media address %s\n",
            d->cfg.media_bind);
    return 2;
  }
  struct dcmf_controller_settings cs = {
      .registry = {.advertise_addr = d->cfg.media_advertise,
                   .local_fingerprint = d->dtls.fingerprint,
                   .sctp_port = d->cfg.sctp_port,
                   .max_contexts = d->cfg.max_contexts},
      .res = {.port_alloc = res_port_alloc,
              .port_release = res_port_release,
              .random = res_random,
              .user = d},
      .n_workers = d->n_workers,
      .events_kept = EVENTS_KEPT,
      .log = &d->log,
      .port_dup = ctl_port_dup,
      .post = ctl_post,
      .notify = ctl_notify,
      .user = d,
  };
  /* Event receivers are verified with the upstreams' CA bundle; the
   * proxy's client certificate is for upstreams only, not offered to
   * whatever an eventNotifyUri names. */
  struct dcmf_upstream_settings notify_tls = {
      .ca_file = d->cfg.upstream_ca[0] ? d->cfg.upstream_ca : NULL};
  int nrv = dcmf_notify_new(&d->notify, &d->loop, &notify_tls, &d->log, err,
                            sizeof(err));
  if (nrv != 0) {
    fprintf(stderr, "dcmfd: %s\n",
            nrv == DCMF_ERR_INVALID ? err : "out of memory");
    return nrv == DCMF_ERR_INVALID ? 2 : 1;
  }
  if (dcmf_controller_new(&d->controller, &cs) != 0) {
    fprintf(stderr, "dcmfd: out of memory\n");
    return 1;
  }
  struct dcmf_wpool_settings wps = {.loop = &d->loop,
                                    .n_workers = d->n_workers,
                                    .args = d->args,
                                    .n_args = d->n_args,
                                    .cert = &d->dtls,
                                    .rsa_cert = dcmf_rsaident_get(&d->rsa),
                                    .log = &d->log,
                                    .on_event = wp_event,
                                    .on_relay_event = agw_relay_event,
                                    .on_failed = wp_failed,
                                    .on_stopped = wp_stopped,
                                    .user = d};
  int wrv = dcmf_wpool_start(&d->workers, &wps, err, sizeof(err));
  if (wrv != 0) {
    fprintf(stderr, "dcmfd: %s\n", wrv == DCMF_ERR_NOMEM ? "out of memory" : err);
    return wrv == DCMF_ERR_INVALID ? 2 : 1;
  }
  struct dcmf_agw_settings as = {.bind_addr = d->cfg.media_bind,
                                 .advertise_addr = d->cfg.media_advertise,
                                 .log = &d->log,
                                 .n_workers = d->n_workers,
                                 .post_relay = agw_post_relay,
                                 .post_user = d,
                                 .port_alloc = agw_port_alloc,
                                 .port_release = agw_port_release,
                                 .port_dup = ctl_port_dup,
                                 .port_user = d,
                                 .cert = &d->dtls,
                                 .rsa_cert = dcmf_rsaident_get(&d->rsa),
                                 .rsa_pending =
                                     dcmf_rsaident_pending(&d->rsa),
                                 .post_media = agw_post_media,
                                 .notify = ctl_notify};
  if (dcmf_agw_new(&d->agw, &as) != 0) {
    fprintf(stderr, "dcmfd: cannot start the AGW shim\n");
    return 1;
  }
  for (size_t i = 0; i < d->n_workers; i++) {
    snprintf(d->worker_names[i], sizeof(d->worker_names[i]), "media-%u",
             (unsigned)(i % 1000));
    watch_add(d, d->worker_names[i], dcmf_wpool_heartbeat(d->workers, i));
  }
  struct dcmf_registry *registry = dcmf_controller_registry(d->controller);
  d->api = (struct dcmf_api){.registry = registry,
                             .metrics = &d->metrics,
                             .log = &d->log,
                             .gauges = gauges,
                             .gauges_user = d,
                             .mount_prefix = "/agw/v1/",
                             .mount = agw_mount,
                             .extra_metrics = agw_metrics,
                             .mount_user = d,
                             .auth = d->auth,
                             .auth_metrics = (int)d->cfg.auth_metrics};
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
  /* Last, so that a failed start-up never has this timer to close. */
  uv_timer_init(&d->loop, &d->watch_timer);
  d->watch_timer.data = d;
  uv_timer_start(&d->watch_timer, on_watch_timer, DCMF_HEARTBEAT_PERIOD_MS,
                 DCMF_HEARTBEAT_PERIOD_MS);
  uv_unref((uv_handle_t *)&d->watch_timer);
  dcmf_memtrim_init(&d->trim, &d->loop, d->cfg.mem_trim_delay_ms,
                    d->cfg.mem_trim_delay_ms * 10u, &d->log);
  return 0;
}

static void daemon_teardown(struct daemon *d) {
  /* First: no identity arrives at the workers or the shim while they
   * stop. */
  dcmf_rsaident_close(&d->rsa);
  /* Releases every port and tells the workers to end every session. */
  dcmf_controller_del(d->controller);
  if (d->workers != NULL) {
    /* The workers end their sessions and exit; the loop run after this
     * waits for them (bounded by the shutdown watchdog) and wp_stopped
     * marks the media part done. */
    dcmf_wpool_stop(d->workers, (int)d->cfg.shutdown_timeout_ms);
    /* Waits here, so that a worker that does not exit is the part the
     * shutdown watchdog names. */
    while (atomic_load(&d->pending) & PART_MEDIA) {
      uv_run(&d->loop, UV_RUN_ONCE);
    }
  } else {
    atomic_fetch_and(&d->pending, ~(unsigned)PART_MEDIA);
  }
  /* After the workers: they closed every relay socket, so the shim's
   * ports go back to the pool here, before the pool goes. */
  dcmf_agw_del(d->agw);
  d->agw = NULL; /* reports still queued are dropped */
  dcmf_notify_del(d->notify);
  dcmf_ports_del(d->ports);
  SSL_CTX_free(d->control_tls);
  dcmf_auth_del(d->auth);
  dcmf_cert_free(&d->dtls);
}

int main(int argc, char **argv) {
  struct daemon *d = calloc(1, sizeof(*d));
  if (d == NULL) {
    return 1;
  }
  struct dcmf_cmdline cl;
  dcmf_cmdline_read(&cl, &d->cfg, argc, argv);
  if (cl.role != DCMF_CMDLINE_CONTROL) {
    int status = cl.role == DCMF_CMDLINE_WORKER
                     ? dcmf_wchild_main(&d->cfg, DCMF_WCHILD_FD)
                     : cl.exit_status;
    free(d);
    return status;
  }
  d->args = cl.args;
  d->n_args = cl.n_args;
  d->n_workers = cl.n_workers;
  d->log = (struct dcmf_log){.stream = stderr,
                             .level = d->cfg.log_level,
                             .format = d->cfg.log_format};
  signal(SIGPIPE, SIG_IGN);
  /* Before any thread starts, so that every thread inherits the mask. */
  block_stop_signals(d);
  uv_loop_init(&d->loop);
  if (start_signal_thread(d) != 0) {
    fprintf(stderr, "dcmfd: cannot start the signal thread\n");
    uv_run(&d->loop, UV_RUN_DEFAULT); /* closes the async handle */
    uv_loop_close(&d->loop);
    free(d);
    return 1;
  }
  int rv = daemon_setup(d);
  if (rv != 0) {
    stop_signal_thread(d); /* before its async handle goes */
    uv_close((uv_handle_t *)&d->stop_async, NULL);
  } else {
    DCMF_LOGI(&d->log, "main",
              "dcmfd %s: control API %s://%s:%u, media %s (advertised %s) "
              "ports %u-%u, DTLS %s, SRTP on %s",
              DCMF_VERSION, d->control_tls ? "https" : "http",
              d->cfg.control_host, d->cfg.control_port, d->cfg.media_bind,
              d->cfg.media_advertise, d->cfg.port_min, d->cfg.port_max,
              d->dtls.fingerprint,
              dcmf_srtp_backend_name(d->cfg.srtp_backend));
    dcmf_authcfg_warn(&d->cfg, d->auth, d->control_tls != NULL, &d->log);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    /* The API server and every control-loop handle have closed. */
    atomic_fetch_and(&d->pending, ~(unsigned)PART_CONTROL);
    DCMF_LOGI(&d->log, "main", "stopped; %zu contexts released",
              dcmf_registry_count(dcmf_controller_registry(d->controller)));
  }
  daemon_teardown(d);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  uv_loop_close(&d->loop);
  atomic_fetch_and(&d->pending, ~(unsigned)PART_CLEANUP);
  stop_signal_thread(d); /* done in time: nothing left to watch */
  free(d);
  return rv;
}
