#include "wpool.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "errors.h"
#include "wchild.h"
#include "wire.h"
#include "wlink.h"

/* A worker that ends sooner than this after its start is failing at
 * once (a refused configuration, a crash on the first message): it is
 * started again after a delay that doubles each time, from the minimum
 * to the maximum, so a broken worker does not spin. */
#define RESTART_WINDOW_MS 10000
#define RESTART_DELAY_MIN_MS 100
#define RESTART_DELAY_MAX_MS 10000
/* How long the start waits for every worker's READY. */
#define START_TIMEOUT_MS 30000

struct wproc {
  struct dcmf_wpool *pool;
  size_t index;
  /* One handle per process started: a handle being closed is never
   * reused for the next one (freed in its close callback). */
  uv_process_t *proc;
  int proc_alive;       /* spawned, exit not seen yet */
  int child_fd;         /* the worker's end until it is spawned, or -1 */
  struct dcmf_wlink *link; /* NULL between an end and the next start */
  int answered;         /* its READY came */
  uint32_t ready_status;
  char ready_text[512];
  int killed;           /* we sent SIGKILL: its link failed */
  struct dcmf_heartbeat beat; /* only last_ms: from its status frames */
  struct dcmf_media_figures figures; /* its last published counters */
  uint64_t events_refused;
  uint64_t started_ms;
  uint64_t delay_ms; /* before the next start after a quick failure */
  uv_timer_t restart_timer;
};

struct dcmf_wpool {
  struct dcmf_wpool_settings settings;
  char **argv; /* exe, DCMF_WCHILD_ARG, the daemon's args, NULL */
  struct dcmf_buf cert_der, key_der; /* for every hello */
  /* Empty: no RSA identity (yet: dcmf_wpool_set_rsa). */
  struct dcmf_buf rsa_cert_der, rsa_key_der;
  struct wproc *w;
  /* Counters of worker processes that ended, so totals never go back. */
  struct dcmf_media_figures retired;
  uint64_t retired_refused;
  uint64_t failures;
  uint64_t frames_refused; /* frames from a worker we could not read */
  int starting;            /* inside dcmf_wpool_start */
  int stopping;
  size_t alive;   /* processes whose exit has not been seen */
  size_t handles; /* open libuv handles; the pool is freed at 0 */
};

static void incarnate(struct wproc *w);
static void send_hello(struct wproc *w);
static void spawn(struct wproc *w);
static void on_restart_timer(uv_timer_t *t);

static void pool_maybe_free(struct dcmf_wpool *p) {
  if (p->handles > 0 || !p->stopping) {
    return;
  }
  OPENSSL_cleanse(p->key_der.data, p->key_der.len);
  dcmf_buf_free(&p->key_der);
  dcmf_buf_free(&p->cert_der);
  OPENSSL_cleanse(p->rsa_key_der.data, p->rsa_key_der.len);
  dcmf_buf_free(&p->rsa_key_der);
  dcmf_buf_free(&p->rsa_cert_der);
  free(p->argv);
  free(p->w);
  free(p);
}

static void on_handle_closed(uv_handle_t *h) {
  struct wproc *w = h->data;
  struct dcmf_wpool *p = w->pool;
  p->handles--;
  pool_maybe_free(p);
}

static void on_proc_closed(uv_handle_t *h) {
  struct wproc *w = h->data;
  struct dcmf_wpool *p = w->pool;
  free(h);
  p->handles--;
  pool_maybe_free(p);
}

/* ---- frames from a worker ------------------------------------------------ */

static void on_frame(void *user, const struct dcmf_wire_frame *f) {
  struct wproc *w = user;
  struct dcmf_wpool *p = w->pool;
  int rv = DCMF_ERR_MALFORMED;
  if (f->type == DCMF_WIRE_EVENT) {
    struct dcmf_media_event ev;
    rv = dcmf_wire_decode_event(f->body, f->len, &ev);
    if (rv == 0 && !p->stopping) {
      p->settings.on_event(p->settings.user, &ev);
    }
  } else if (f->type == DCMF_WIRE_RELAY_EVENT) {
    struct dcmf_relay_event ev;
    rv = dcmf_wire_decode_relay_event(f->body, f->len, &ev);
    if (rv == 0 && !p->stopping) {
      p->settings.on_relay_event(p->settings.user, &ev);
    }
  } else if (f->type == DCMF_WIRE_STATUS) {
    struct dcmf_wire_status st;
    rv = dcmf_wire_decode_status(f->body, f->len, &st);
    if (rv == 0) {
      atomic_store_explicit(&w->beat.last_ms, st.heartbeat_ms,
                            memory_order_relaxed);
      w->figures = st.figures;
      w->events_refused = st.events_refused;
    }
  } else if (f->type == DCMF_WIRE_READY && !w->answered) {
    rv = dcmf_wire_decode_ready(f->body, f->len, &w->ready_status,
                                w->ready_text, sizeof(w->ready_text));
    w->answered = rv == 0;
    if (rv == 0 && w->ready_status != 0 && !p->starting) {
      /* A restarted worker that refuses the configuration now (a file
       * removed since the start): it is ended and retried later. */
      DCMF_LOGE(p->settings.log, "workers",
                "media worker %zu refused to start: %s", w->index,
                w->ready_text);
      w->killed = 1;
      uv_process_kill(w->proc, SIGKILL);
    }
  }
  if (rv != 0) {
    p->frames_refused++;
  }
}

static void on_link_close(void *user, int err) {
  struct wproc *w = user;
  /* The worker closed its end or sent what cannot be read: it is ended
   * (if it is not already) and handled as a failure when it exits. */
  if (!w->pool->stopping && w->proc_alive && !w->killed) {
    DCMF_LOGE(w->pool->settings.log, "workers",
              "media worker %zu: link lost (%s); ending it", w->index,
              err == 0 ? "closed" : dcmf_strerror(err));
    w->killed = 1;
    uv_process_kill(w->proc, SIGKILL);
  }
}

/* ---- process lifecycle --------------------------------------------------- */

static void describe_exit(char *out, size_t cap, int64_t status, int sig) {
  if (sig != 0) {
    snprintf(out, cap, "killed by signal %d (%s)", sig, strsignal(sig));
  } else {
    snprintf(out, cap, "exited with status %lld", (long long)status);
  }
}

static void on_process_exit(uv_process_t *proc, int64_t status, int sig) {
  struct wproc *w = proc->data;
  struct dcmf_wpool *p = w->pool;
  w->proc_alive = 0;
  p->alive--;
  uv_close((uv_handle_t *)proc, on_proc_closed);
  w->proc = NULL;
  /* What it counted stays in the totals. */
  dcmf_counters_sum(&p->retired, &w->figures, 1);
  p->retired_refused += w->events_refused;
  memset(&w->figures, 0, sizeof(w->figures));
  w->events_refused = 0;
  dcmf_wlink_close(w->link);
  w->link = NULL;
  if (p->stopping) {
    if (p->alive == 0 && p->settings.on_stopped != NULL) {
      p->settings.on_stopped(p->settings.user);
    }
    return;
  }
  char reason[160];
  describe_exit(reason, sizeof(reason), status, sig);
  if (p->starting) {
    /* The start reports it, even when this worker had answered: dcmfd
     * does not come up with a worker that died on the way. */
    if (!w->answered || w->ready_status == 0) {
      snprintf(w->ready_text, sizeof(w->ready_text), "media worker %zu %s",
               w->index, reason);
      w->answered = 1;
      w->ready_status = 1;
    }
    return;
  }
  p->failures++;
  DCMF_LOGE(p->settings.log, "workers",
            "media worker %zu %s; releasing its contexts and starting it "
            "again",
            w->index, reason);
  /* Its messages from here on would reach no session: dropped while the
   * owner releases what it served. */
  p->settings.on_failed(p->settings.user, w->index, reason);
  uint64_t now = uv_now(p->settings.loop);
  if (now - w->started_ms < RESTART_WINDOW_MS) {
    w->delay_ms = w->delay_ms == 0 ? RESTART_DELAY_MIN_MS : w->delay_ms * 2;
    if (w->delay_ms > RESTART_DELAY_MAX_MS) {
      w->delay_ms = RESTART_DELAY_MAX_MS;
    }
  } else {
    w->delay_ms = 0;
  }
  incarnate(w);
}

static void on_restart_timer(uv_timer_t *t) {
  struct wproc *w = t->data;
  if (w->child_fd >= 0) {
    spawn(w);
    return;
  }
  /* The socket pair failed last time (out of descriptors): again now. */
  uint64_t delay = w->delay_ms;
  w->delay_ms = 0;
  incarnate(w);
  w->delay_ms = delay;
}

static void spawn(struct wproc *w) {
  struct dcmf_wpool *p = w->pool;
  uv_stdio_container_t stdio[4] = {
      {.flags = UV_INHERIT_FD, .data.fd = 0},
      {.flags = UV_INHERIT_FD, .data.fd = 1},
      {.flags = UV_INHERIT_FD, .data.fd = 2},
      {.flags = UV_INHERIT_FD, .data.fd = w->child_fd},
  };
  uv_process_options_t opts = {.exit_cb = on_process_exit,
                               .file = "/proc/self/exe",
                               .args = p->argv,
                               .stdio = stdio,
                               .stdio_count = 4};
  w->proc = calloc(1, sizeof(*w->proc));
  if (w->proc == NULL) {
    abort(); /* out of memory before a worker could even start */
  }
  w->proc->data = w;
  w->answered = 0;
  w->killed = 0;
  w->started_ms = uv_now(p->settings.loop);
  if (p->starting) {
    /* A first beat, so /healthz is not 503 before its first status. A
     * worker started again keeps its old beat: it is not healthy until
     * it reports. */
    atomic_store(&w->beat.last_ms, dcmf_heartbeat_now_ms());
  }
  int rv = uv_spawn(p->settings.loop, w->proc, &opts);
  close(w->child_fd);
  w->child_fd = -1;
  p->handles++; /* uv_spawn initialises the handle even when it fails */
  if (rv != 0) {
    DCMF_LOGE(p->settings.log, "workers", "cannot start media worker %zu: %s",
              w->index, uv_strerror(rv));
    uv_close((uv_handle_t *)w->proc, on_proc_closed);
    w->proc = NULL;
    dcmf_wlink_close(w->link);
    w->link = NULL;
    if (p->starting) {
      snprintf(w->ready_text, sizeof(w->ready_text),
               "cannot start media worker %zu: %s", w->index,
               uv_strerror(rv));
      w->answered = 1;
      w->ready_status = 1;
    } else {
      w->delay_ms = RESTART_DELAY_MAX_MS;
      incarnate(w);
    }
    return;
  }
  /* Running processes do not keep the control loop alive; the stop
   * takes them back (dcmf_wpool_stop). */
  uv_unref((uv_handle_t *)w->proc);
  w->proc_alive = 1;
  p->alive++;
}

/* The hello a new incarnation of |w| starts with: its index and the
 * identities (wire.h). */
static void send_hello(struct wproc *w) {
  struct dcmf_wpool *p = w->pool;
  struct dcmf_buf hello = {0};
  struct dcmf_wire_hello h = {.index = (uint32_t)w->index,
                              .n_workers = (uint32_t)p->settings.n_workers,
                              .cert_der = (const uint8_t *)p->cert_der.data,
                              .cert_len = p->cert_der.len,
                              .key_der = (const uint8_t *)p->key_der.data,
                              .key_len = p->key_der.len,
                              .rsa_cert_der =
                                  (const uint8_t *)p->rsa_cert_der.data,
                              .rsa_cert_len = p->rsa_cert_der.len,
                              .rsa_key_der =
                                  (const uint8_t *)p->rsa_key_der.data,
                              .rsa_key_len = p->rsa_key_der.len};
  if (dcmf_wire_encode_hello(&hello, &h) != 0 ||
      dcmf_wlink_send(w->link, &hello, NULL, 0, 1) != 0) {
    abort(); /* out of memory before a worker could even start */
  }
  OPENSSL_cleanse(hello.data, hello.len);
  dcmf_buf_free(&hello);
}

/* A new link with the hello queued, then the process now or after its
 * delay. Messages posted meanwhile wait behind the hello. */
static void incarnate(struct wproc *w) {
  struct dcmf_wpool *p = w->pool;
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    DCMF_LOGE(p->settings.log, "workers",
              "media worker %zu: no socket pair; retrying in %d ms", w->index,
              RESTART_DELAY_MAX_MS);
    w->delay_ms = RESTART_DELAY_MAX_MS;
    w->child_fd = -1;
    uv_timer_start(&w->restart_timer, on_restart_timer, w->delay_ms, 0);
    return;
  }
  w->child_fd = pair[1];
  struct dcmf_wlink_settings ls = {.loop = p->settings.loop,
                                   .fd = pair[0],
                                   .unref = 1,
                                   .on_frame = on_frame,
                                   .on_close = on_link_close,
                                   .user = w};
  if (dcmf_wlink_new(&w->link, &ls) != 0) {
    abort(); /* out of memory before a worker could even start */
  }
  send_hello(w);
  if (w->delay_ms == 0) {
    spawn(w);
  } else {
    uv_timer_start(&w->restart_timer, on_restart_timer, w->delay_ms, 0);
  }
}

/* ---- the pool ------------------------------------------------------------ */

static void on_start_timeout(uv_timer_t *t) {
  *(int *)t->data = 1;
}

static void start_timer_closed(uv_handle_t *h) {
  (void)h;
}

/* Runs the loop until every worker answered or the time is up. Returns
 * 0, or the first refusal's status (2: configuration) with |err| set. */
static int wait_ready(struct dcmf_wpool *p, char *err, size_t errlen) {
  int timed_out = 0;
  uv_timer_t timer;
  uv_timer_init(p->settings.loop, &timer);
  timer.data = &timed_out;
  uv_timer_start(&timer, on_start_timeout, START_TIMEOUT_MS, 0);
  int rv = 0;
  for (;;) {
    size_t answered = 0;
    for (size_t i = 0; i < p->settings.n_workers && rv == 0; i++) {
      struct wproc *w = &p->w[i];
      if (w->answered && w->ready_status != 0) {
        snprintf(err, errlen, "%s", w->ready_text);
        rv = w->ready_status == 2 ? DCMF_ERR_INVALID : DCMF_ERR_SYSTEM;
      }
      answered += w->answered ? 1 : 0;
    }
    if (rv != 0 || answered == p->settings.n_workers) {
      break;
    }
    if (timed_out) {
      snprintf(err, errlen, "a media worker did not start within %d s",
               START_TIMEOUT_MS / 1000);
      rv = DCMF_ERR_SYSTEM;
      break;
    }
    uv_run(p->settings.loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&timer, start_timer_closed);
  uv_run(p->settings.loop, UV_RUN_NOWAIT); /* lets the timer close */
  return rv;
}

int dcmf_wpool_start(struct dcmf_wpool **out,
                     const struct dcmf_wpool_settings *settings, char *err,
                     size_t errlen) {
  struct dcmf_wpool *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    return DCMF_ERR_NOMEM;
  }
  p->settings = *settings;
  p->w = calloc(settings->n_workers, sizeof(*p->w));
  p->argv = calloc(settings->n_args + 3, sizeof(*p->argv));
  if (p->w == NULL || p->argv == NULL ||
      dcmf_cert_to_der(settings->cert, &p->cert_der, &p->key_der) != 0 ||
      (settings->rsa_cert != NULL &&
       dcmf_cert_to_der(settings->rsa_cert, &p->rsa_cert_der,
                        &p->rsa_key_der) != 0)) {
    free(p->w);
    free(p->argv);
    OPENSSL_cleanse(p->key_der.data, p->key_der.len);
    dcmf_buf_free(&p->key_der);
    dcmf_buf_free(&p->cert_der);
    dcmf_buf_free(&p->rsa_cert_der);
    free(p);
    return DCMF_ERR_NOMEM;
  }
  p->argv[0] = "dcmfd";
  p->argv[1] = DCMF_WCHILD_ARG;
  for (size_t i = 0; i < settings->n_args; i++) {
    p->argv[2 + i] = settings->args[i];
  }
  p->starting = 1;
  for (size_t i = 0; i < settings->n_workers; i++) {
    struct wproc *w = &p->w[i];
    w->pool = p;
    w->index = i;
    w->child_fd = -1;
    uv_timer_init(settings->loop, &w->restart_timer);
    uv_unref((uv_handle_t *)&w->restart_timer);
    w->restart_timer.data = w;
    p->handles++;
    incarnate(w);
  }
  *out = p;
  int rv = wait_ready(p, err, errlen);
  p->starting = 0;
  return rv;
}

int dcmf_wpool_set_rsa(struct dcmf_wpool *p, const struct dcmf_cert *rsa) {
  if (p->rsa_cert_der.len > 0) {
    return 0; /* the workers have one */
  }
  struct dcmf_buf frame = {0};
  int rv = dcmf_cert_to_der(rsa, &p->rsa_cert_der, &p->rsa_key_der);
  rv = rv != 0 ? rv : dcmf_wire_encode_rsa_identity(
      &frame, (const uint8_t *)p->rsa_cert_der.data, p->rsa_cert_der.len,
      (const uint8_t *)p->rsa_key_der.data, p->rsa_key_der.len);
  /* A worker without a link now gets it in the hello of its next start;
   * one whose link refuses it is failing and will too. */
  for (size_t i = 0; rv == 0 && i < p->settings.n_workers; i++) {
    if (p->w[i].link != NULL) {
      (void)dcmf_wlink_send(p->w[i].link, &frame, NULL, 0, 1);
    }
  }
  OPENSSL_cleanse(frame.data, frame.len);
  dcmf_buf_free(&frame);
  if (rv != 0) { /* then no worker has it, not even a later one */
    OPENSSL_cleanse(p->rsa_key_der.data, p->rsa_key_der.len);
    dcmf_buf_free(&p->rsa_key_der);
    dcmf_buf_free(&p->rsa_cert_der);
    return DCMF_ERR_NOMEM;
  }
  return 0;
}

int dcmf_wpool_post(struct dcmf_wpool *p, size_t worker, enum dcmf_media_op op,
                    struct dcmf_media_desc *desc) {
  struct wproc *w = &p->w[worker];
  /* The media's, the MDC2 ports', the RTP leg's two, the TCP legs' two
   * and the MSRP leg's: all dcmf_wire_encode_media may take from |desc|
   * (it writes without a bound of its own). */
  size_t cap = 6 + desc->n_mdc2;
  int *fds = calloc(cap, sizeof(*fds));
  struct dcmf_buf frame = {0};
  size_t n_fds = 0;
  int rv = w->link == NULL ? DCMF_ERR_SYSTEM : DCMF_ERR_NOMEM;
  if (w->link != NULL && fds != NULL) {
    rv = dcmf_wire_encode_media(&frame, op, desc, fds, &n_fds);
  }
  if (rv == 0) {
    /* The link owns the descriptors now: the description must not close
     * them when it is freed. */
    desc->fd = -1;
    for (size_t i = 0; i < desc->n_mdc2; i++) {
      desc->mdc2[i].fd = -1;
    }
    if (desc->rtpleg != NULL) {
      desc->rtpleg->rtp_fd = -1;
      desc->rtpleg->rtcp_fd = -1;
    }
    if (desc->msrpleg != NULL) {
      desc->msrpleg->fd = -1;
    }
    if (desc->tcpleg != NULL) {
      desc->tcpleg->fd[0] = desc->tcpleg->fd[1] = -1;
    }
    rv = dcmf_wlink_send(w->link, &frame, fds, n_fds, 1);
  } else {
    if (w->link != NULL) {
      DCMF_LOGE(p->settings.log, "workers",
                "media %s/%s/%s cannot be sent to worker %zu: %s",
                desc->key.context_id, desc->key.termination_id,
                desc->key.media_id, worker, dcmf_strerror(rv));
    }
    if (desc->fd >= 0) {
      close(desc->fd);
    }
  }
  dcmf_buf_free(&frame);
  free(fds);
  dcmf_media_desc_free(desc); /* closes the MDC2 and leg descriptors left */
  return rv;
}

void dcmf_wpool_post_relay(struct dcmf_wpool *p, size_t worker,
                           enum dcmf_relay_op op,
                           struct dcmf_relay_desc *desc) {
  struct wproc *w = &p->w[worker];
  struct dcmf_buf frame = {0};
  int fds[DCMF_RELAY_SIDES];
  size_t n_fds = 0;
  int rv = w->link != NULL
               ? dcmf_wire_encode_relay(&frame, op, desc, fds, &n_fds)
               : DCMF_ERR_SYSTEM;
  if (rv == 0) {
    rv = dcmf_wlink_send(w->link, &frame, fds, n_fds, 1); /* takes them */
  } else {
    for (int side = 0; side < DCMF_RELAY_SIDES; side++) {
      if (desc->fds[side] >= 0) {
        close(desc->fds[side]);
      }
    }
  }
  dcmf_buf_free(&frame);
}

void dcmf_wpool_figures(const struct dcmf_wpool *p,
                        struct dcmf_media_figures *sum) {
  dcmf_counters_sum(sum, &p->retired, 0);
  for (size_t i = 0; i < p->settings.n_workers; i++) {
    dcmf_counters_sum(sum, &p->w[i].figures, 0);
  }
}

const struct dcmf_heartbeat *dcmf_wpool_heartbeat(const struct dcmf_wpool *p,
                                                  size_t worker) {
  return &p->w[worker].beat;
}

uint64_t dcmf_wpool_events_refused(const struct dcmf_wpool *p) {
  uint64_t n = p->retired_refused + p->frames_refused;
  for (size_t i = 0; i < p->settings.n_workers; i++) {
    n += p->w[i].events_refused;
  }
  return n;
}

uint64_t dcmf_wpool_failures(const struct dcmf_wpool *p) {
  return p->failures;
}

void dcmf_wpool_stop(struct dcmf_wpool *p, int timeout_ms) {
  p->stopping = 1;
  for (size_t i = 0; i < p->settings.n_workers; i++) {
    struct wproc *w = &p->w[i];
    uv_close((uv_handle_t *)&w->restart_timer, on_handle_closed);
    if (w->child_fd >= 0) { /* waiting for a restart: never started */
      close(w->child_fd);
      w->child_fd = -1;
    }
    if (w->link != NULL && w->proc_alive) {
      /* The last REMOVEs first, so that sessions end cleanly. */
      dcmf_wlink_flush_blocking(w->link, timeout_ms);
    }
    /* End of file on the worker's side: it ends its sessions and exits. */
    dcmf_wlink_close(w->link);
    w->link = NULL;
    if (w->proc_alive) {
      uv_ref((uv_handle_t *)w->proc); /* the loop now waits for it */
    }
  }
  if (p->alive == 0 && p->settings.on_stopped != NULL) {
    p->settings.on_stopped(p->settings.user);
  }
}
