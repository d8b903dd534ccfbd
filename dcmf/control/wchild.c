#include "wchild.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "cert.h"
#include "errors.h"
#include "heartbeat.h"
#include "log.h"
#include "services.h"
#include "wire.h"
#include "wlink.h"
#include "worker.h"

/* Events and status frames waiting for the control process; it reads
 * them on every turn of its loop, so only a stopped control loop fills
 * this. Past it, events are lost and counted. */
#define LINK_LIMIT 4096

struct child {
  const struct dcmf_config *cfg;
  struct dcmf_log log;
  uv_loop_t loop;
  struct dcmf_wlink *link;
  uv_timer_t status_timer;
  struct dcmf_cert cert;
  struct dcmf_cert rsa_cert; /* x509 NULL: none */
  struct dcmf_services services;
  int have_services;
  struct dcmf_worker *worker;
  uint32_t index;
  char thread_name[16];
  uint64_t link_refused; /* events the link refused */
  int status;            /* the exit status */
  int stopping;
};

static void stop(struct child *c, int status) {
  if (c->stopping) {
    return;
  }
  c->stopping = 1;
  c->status = status;
  if (c->worker != NULL) {
    uv_close((uv_handle_t *)&c->status_timer, NULL);
    /* Ends every session (DTLS close_notify, SCTP shutdown) and joins
     * the thread; events it raises meanwhile find the link closing. */
    dcmf_worker_stop(c->worker);
    c->worker = NULL;
  }
  dcmf_wlink_close(c->link);
  c->link = NULL;
}

static void send_frame(struct child *c, struct dcmf_buf *frame, int must,
                       int is_event) {
  if (c->link == NULL) {
    return;
  }
  if (dcmf_wlink_send(c->link, frame, NULL, 0, must) != 0 && is_event) {
    c->link_refused++;
  }
}

/* RELEASED must arrive (the AGW shim returns the e2ae media's ports and
 * record then); the other events may be refused and counted. */
static void on_event(void *user, const struct dcmf_media_event *ev) {
  struct child *c = user;
  int must = strcmp(ev->event, "RELEASED") == 0;
  struct dcmf_buf frame = {0};
  if (dcmf_wire_encode_event(&frame, ev) == 0) {
    send_frame(c, &frame, must, 1);
  } else if (must) {
    abort(); /* a lost release would leave the ports bound forever */
  } else {
    c->link_refused++;
  }
  dcmf_buf_free(&frame);
}

/* Releases must arrive (the control side returns the ports then);
 * counter and latch snapshots may be refused, the next one replaces
 * them. */
static void on_relay_event(void *user, const struct dcmf_relay_event *ev) {
  struct child *c = user;
  struct dcmf_buf frame = {0};
  if (dcmf_wire_encode_relay_event(&frame, ev) == 0) {
    send_frame(c, &frame, ev->kind == DCMF_RELAY_EV_RELEASED, 0);
  }
  dcmf_buf_free(&frame);
}

static void on_status_timer(uv_timer_t *t) {
  struct child *c = t->data;
  struct dcmf_wire_status st = {
      .heartbeat_ms = atomic_load_explicit(
          &dcmf_worker_heartbeat(c->worker)->last_ms, memory_order_relaxed),
      .events_refused =
          dcmf_worker_events_refused(c->worker) + c->link_refused,
  };
  dcmf_counters_add(&st.figures, dcmf_worker_stats(c->worker));
  struct dcmf_buf frame = {0};
  if (dcmf_wire_encode_status(&frame, &st) == 0) {
    send_frame(c, &frame, 0, 0);
  }
  dcmf_buf_free(&frame);
}

/* A per-source limit is the whole host's: a source reaching the ports
 * of every worker may send |rate| in all, so each worker allows its
 * share (at least 1; 0 stays "no limit"). */
static uint32_t share_of(uint32_t rate, uint32_t n_workers) {
  if (rate == 0) {
    return 0;
  }
  uint32_t share = rate / n_workers;
  return share > 0 ? share : 1;
}

static void ready(struct child *c, uint32_t status, const char *why) {
  struct dcmf_buf frame = {0};
  if (dcmf_wire_encode_ready(&frame, status, why) == 0) {
    send_frame(c, &frame, 1, 0);
  }
  dcmf_buf_free(&frame);
}

/* The hello: the identity, then the services and the worker. Answers
 * READY either way; after a refusal the control process ends the link. */
static void on_hello(struct child *c, const struct dcmf_wire_frame *f) {
  struct dcmf_wire_hello hello;
  char err[600];
  if (c->worker != NULL || c->have_services ||
      dcmf_wire_decode_hello(f->body, f->len, &hello) != 0) {
    DCMF_LOGE(&c->log, "worker", "a second or malformed hello");
    stop(c, 1);
    return;
  }
  c->index = hello.index;
  snprintf(c->thread_name, sizeof(c->thread_name), "dcmf-media-%u",
           (unsigned)(c->index % 10000));
  if (dcmf_cert_from_der(&c->cert, hello.cert_der, hello.cert_len,
                         hello.key_der, hello.key_len, err,
                         sizeof(err)) != 0 ||
      (hello.rsa_cert_len > 0 &&
       dcmf_cert_from_der(&c->rsa_cert, hello.rsa_cert_der,
                          hello.rsa_cert_len, hello.rsa_key_der,
                          hello.rsa_key_len, err, sizeof(err)) != 0)) {
    ready(c, 1, err);
    return;
  }
  if (dcmf_services_open(&c->services, c->cfg, hello.n_workers, err,
                         sizeof(err)) != 0) {
    ready(c, 2, err);
    return;
  }
  c->have_services = 1;
  const struct dcmf_config *cfg = c->cfg;
  struct dcmf_worker_settings ws = {
      .cert = c->cert.x509,
      .pkey = c->cert.pkey,
      .rsa_cert = c->rsa_cert.x509,
      .rsa_pkey = c->rsa_cert.pkey,
      .log = &c->log,
      .max_streams = cfg->max_streams,
      .min_streams = cfg->min_streams,
      .srtp_backend = cfg->srtp_backend,
      .services = c->services.regs,
      .n_services = c->services.n,
      .stun_rate = share_of(cfg->stun_rate, hello.n_workers),
      .hello_rate = share_of(cfg->hello_rate, hello.n_workers),
      .trim_ms = cfg->mem_trim_delay_ms,
      .dtls_coalesce = cfg->dtls_coalesce != 0,
      .sctp_bundle = cfg->sctp_bundle != 0,
      .pace_us = cfg->media_pace_us,
      .thread_name = c->thread_name,
      .on_event = on_event,
      .user = c,
      .on_relay_event = on_relay_event,
      .relay_user = c,
  };
  int rv = dcmf_worker_start(&c->worker, &c->loop, &ws, err, sizeof(err));
  if (rv != 0) {
    c->worker = NULL;
    ready(c, rv == DCMF_ERR_INVALID ? 2 : 1,
          rv == DCMF_ERR_INVALID ? err : "cannot start the media worker");
    return;
  }
  uv_timer_init(&c->loop, &c->status_timer);
  c->status_timer.data = c;
  uv_timer_start(&c->status_timer, on_status_timer, 0, DCMF_WCHILD_STATUS_MS);
  ready(c, 0, "");
}

/* The RSA identity that was still being generated when the hello went:
 * the worker gets it through its inbox, ahead of any T.38 media the
 * control process sends after it. Returns 0, or -1 for a frame only a
 * bug sends. */
static int on_rsa_identity(struct child *c, const struct dcmf_wire_frame *f) {
  const uint8_t *cert, *key;
  size_t cert_len, key_len;
  char err[600];
  if (c->worker == NULL || dcmf_wire_decode_rsa_identity(
                               f->body, f->len, &cert, &cert_len, &key,
                               &key_len) != 0) {
    return -1;
  }
  if (c->rsa_cert.x509 != NULL) {
    return 0; /* the hello had it already */
  }
  if (dcmf_cert_from_der(&c->rsa_cert, cert, cert_len, key, key_len, err,
                         sizeof(err)) != 0) {
    DCMF_LOGE(&c->log, "worker", "worker %u: the RSA identity: %s",
              (unsigned)c->index, err);
    return 0; /* T.38 media do not start here; the rest goes on */
  }
  dcmf_worker_set_rsa_identity(c->worker, c->rsa_cert.x509, c->rsa_cert.pkey);
  return 0;
}

static void on_frame(void *user, const struct dcmf_wire_frame *f) {
  struct child *c = user;
  if (c->stopping) {
    return;
  }
  if (f->type == DCMF_WIRE_HELLO) {
    on_hello(c, f);
    return;
  }
  if (f->type == DCMF_WIRE_RSA_IDENTITY && on_rsa_identity(c, f) == 0) {
    return;
  }
  if (f->type == DCMF_WIRE_RELAY && c->worker != NULL) {
    enum dcmf_relay_op rop;
    struct dcmf_relay_desc rdesc;
    if (dcmf_wire_decode_relay(f->body, f->len, f->fds, f->n_fds, &rop,
                               &rdesc) == 0) {
      dcmf_worker_post_relay(c->worker, rop, &rdesc);
      return;
    }
  }
  enum dcmf_media_op op;
  struct dcmf_media_desc desc;
  if (f->type != DCMF_WIRE_MEDIA || c->worker == NULL ||
      dcmf_wire_decode_media(f->body, f->len, f->fds, f->n_fds, &op, &desc) !=
          0) {
    /* Only a bug sends this; the control process sees the worker end
     * and releases its contexts. */
    DCMF_LOGE(&c->log, "worker", "worker %u: unexpected frame %u from the "
              "control process; ending", (unsigned)c->index,
              (unsigned)f->type);
    stop(c, 1);
    return;
  }
  dcmf_worker_post(c->worker, op, &desc);
}

static void on_close(void *user, int err) {
  struct child *c = user;
  /* The normal end: the control process closed the link. */
  stop(c, err == 0 ? 0 : 1);
}

int dcmf_wchild_main(const struct dcmf_config *cfg, int fd) {
  /* Ends with the control process, should the link outlive it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  struct child *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return 1;
  }
  c->cfg = cfg;
  c->log = (struct dcmf_log){
      .stream = stderr, .level = cfg->log_level, .format = cfg->log_format};
  uv_loop_init(&c->loop);
  struct dcmf_wlink_settings ls = {.loop = &c->loop,
                                   .fd = fd,
                                   .limit = LINK_LIMIT,
                                   .on_frame = on_frame,
                                   .on_close = on_close,
                                   .user = c};
  int status = 1;
  if (dcmf_wlink_new(&c->link, &ls) == 0) {
    uv_run(&c->loop, UV_RUN_DEFAULT);
    status = c->status;
  }
  uv_loop_close(&c->loop);
  if (c->have_services) {
    dcmf_services_close(&c->services);
  }
  dcmf_cert_free(&c->cert);
  dcmf_cert_free(&c->rsa_cert);
  free(c);
  return status;
}
