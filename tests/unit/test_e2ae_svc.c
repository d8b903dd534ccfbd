/*
 * The e2ae service (agw-shim/e2ae/e2ae_svc.h) in a real session: the
 * session of the SRTP association kind on a loopback UDP socket (ICE
 * off, DTLS server), the service registered as dcmfd's workers do, and
 * real loopback UDP sockets for its core leg. The WIC is a dcstack of
 * the SRTP kind (DTLS client) in the test, whose datagrams go through
 * its own loopback socket; the core peers are plain UDP sockets of the
 * test (and a stranger). Checked: RTP and RTCP both ways unchanged, with
 * rtcp-mux and with a separate RTCP port; feedback passed between AVPF
 * legs and stripped toward an AVP core (a compound of only feedback
 * dropped); unknown core sources dropped and counted; latching (first
 * source kept, a second one dropped); core packets before DTLS and under
 * a wrong fingerprint dropped and counted, nothing forwarded; tampered
 * and replayed SRTP counted through the association; the RTP_COUNTERS
 * pushes (JSON read with jansson; a counter's first count and a new
 * profile at once, else at most once per interval of the services'
 * clock, a final one at detach) and what a media costs the worker's
 * tick (no visit, idle or busy; the round runs the service's
 * worker_tick as the worker does); the core sockets closed at detach; an
 * update with a new tls-id (and a new certificate, the DTLS roles
 * swapped) re-keys the same SRTP association: media goes on with the
 * old keys during the handshake, the SSRCs keep ROC 1 after a wrap, the
 * WIC's old-key packets still pass after it (the fallback, counted as
 * toCore.srtpPrevious) until the session's fallback time, and are refused
 * after; a data-channel media left alone. Every
 * wait is a bounded poll of the loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <srtp2/srtp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "assoc_srtp.h"
#include "cert.h"
#include "dcstack.h"
#include "dtls.h"
#include "e2ae_svc.h"
#include "errors.h"
#include "fingerprint.h"
#include "ratelimit.h"
#include "service.h"
#include "session.h"
#include "srtp.h"
#include "srtp_backend.h"
#include "srtp_plain.h"
#include "stun.h"
#include "tickq.h"
#include "worker.h"

#define WIC_SSRC 0x11223344u
#define CORE_SSRC 0x0badf00du
#define QN 64
#define EVENTS_MAX 256

struct dgram {
  uint8_t b[2048];
  size_t len;
};

/* A plain UDP socket of the test: a core peer or a stranger. */
struct peer {
  int fd;
  struct sockaddr_in addr;
  struct dgram q[QN]; /* the first received, in order */
  size_t n;           /* received */
};

/* The WebRTC client: a DTLS-SRTP client stack. */
struct wic {
  struct dcmf_cert cert;
  struct dcmf_dtls_ctx ctx;
  struct dcmf_dcstack *stack;
  int fd;
  struct sockaddr_in addr, to;
  int up, failed;
  int tamper_next;    /* flip a payload bit of the next SRTP datagram */
  int duplicate_next; /* send the next SRTP datagram twice */
  int hold_next;      /* keep the next SRTP datagram in |held|, unsent */
  struct dgram held;
  struct dgram last_in, last_out; /* the last SRTP datagrams on the wire */
  int renewed; /* |cert2| and |ctx2| hold the certificate of a renewal */
  struct dcmf_cert cert2;
  struct dcmf_dtls_ctx ctx2;
  struct dgram rtp[QN], rtcp[QN]; /* the first plain packets received */
  size_t n_rtp, n_rtcp;
  uint32_t last_flow; /* the flow id of the last message */
};

struct fx {
  uv_loop_t loop;
  struct dcmf_log log;
  struct dcmf_media_stats stats;
  struct dcmf_cert cert; /* the session's */
  struct dcmf_dtls_ctx ctx;
  uint8_t rx[65536];
  uint64_t now;
  struct dcmf_tickq ticks, flushes;
  void *svc_worker;
  struct dcmf_session_service services[1];
  struct dcmf_session *session;
  struct dcmf_ratelimit *hello_limit; /* NULL: none */
  struct sockaddr_in session_addr;
  struct sockaddr_in core_rtp_addr, core_rtcp_addr; /* the service's */
  int core_fds[2];
  struct wic wic;
  struct peer core_rtp, core_rtcp, stranger;
  char events[4096];              /* event names, '|' after each */
  char counters[512];             /* the last RTP_COUNTERS detail */
  uint64_t pushed_at[EVENTS_MAX]; /* the services' clock at each push */
  size_t n_pushes;
  size_t visits; /* sessions visited by the tick (the service asked) */
};

/* What a fixture's media is. */
struct opts {
  int mux;          /* core rtcp-mux */
  int latching;     /* latch the core's address */
  int signalled;    /* the core addresses are signalled */
  int core_avpf;    /* core RTP/AVPF */
  int wrong_fp;     /* the session expects another certificate */
  int no_connect;   /* the WIC does not start DTLS */
  int access_avp;   /* access UDP/TLS/RTP/SAVP (no feedback) */
  int consent_ms;   /* the session's consent lifetime; 0: 30 s */
  int ice;          /* the WIC does ICE (checks before DTLS), not none */
  uint32_t push_ms; /* the service's push interval; 0: its default */
  int renewal_ms;   /* the session's renewal time limit; 0: the default */
  int fallback_ms;  /* the session's SRTP fallback time; 0: the default */
  int hello_rate;   /* a ClientHello limit (per second, burst as much) */
};

/* ---- sockets and packets ---- */

static int udp_socket(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t al = sizeof(*addr);
  assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &al), 0);
  return fd;
}

static void peer_new(struct peer *p) {
  memset(p, 0, sizeof(*p));
  p->fd = udp_socket(&p->addr);
}

static void peer_send(struct peer *p, const struct sockaddr_in *to,
                      const struct dgram *d) {
  assert_int_equal(
      sendto(p->fd, d->b, d->len, 0, (const struct sockaddr *)to, sizeof(*to)),
      (ssize_t)d->len);
}

static void peer_drain(struct peer *p) {
  for (int i = 0; i < 64; i++) {
    struct dgram d;
    ssize_t n = recv(p->fd, d.b, sizeof(d.b), MSG_DONTWAIT);
    if (n < 0) {
      return;
    }
    if (p->n < QN) { /* the first QN are kept; the rest only counted */
      memcpy(p->q[p->n].b, d.b, (size_t)n);
      p->q[p->n].len = (size_t)n;
    }
    p->n++;
  }
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* RTP, PT 111 (Opus), 40 payload bytes. */
static struct dgram rtp(uint32_t ssrc, uint16_t seq) {
  struct dgram d = {0};
  d.b[0] = 0x80;
  d.b[1] = 111;
  d.b[2] = (uint8_t)(seq >> 8);
  d.b[3] = (uint8_t)seq;
  put32(d.b + 4, (uint32_t)seq * 960u);
  put32(d.b + 8, ssrc);
  for (size_t i = 0; i < 40; i++) {
    d.b[12 + i] = (uint8_t)(seq * 7u + i);
  }
  d.len = 52;
  return d;
}

/* Appends an RTCP packet: |count|, |type|, then |words|. */
static void rtcp_add(struct dgram *d, uint8_t count, uint8_t type,
                     const uint32_t *words, size_t n) {
  uint8_t *p = d->b + d->len;
  p[0] = (uint8_t)(0x80 | count);
  p[1] = type;
  p[2] = 0;
  p[3] = (uint8_t)n;
  for (size_t i = 0; i < n; i++) {
    put32(p + 4 + 4 * i, words[i]);
  }
  d->len += 4 + 4 * n;
}

static void add_sr(struct dgram *d, uint32_t ssrc) {
  uint32_t w[6] = {ssrc, 0xe1b2c3d4u, 0x80000000u, 48000, 100, 16000};
  rtcp_add(d, 0, 200, w, 6);
}

static void add_rr(struct dgram *d, uint32_t ssrc) {
  uint32_t w[7] = {ssrc, WIC_SSRC, 0x01000002u, 0x00010203u, 7, 0, 0};
  rtcp_add(d, 1, 201, w, 7);
}

static void add_sdes(struct dgram *d, uint32_t ssrc) {
  /* one chunk: CNAME "ab", the end item, padded to a word */
  uint32_t w[3] = {ssrc, 0x01026162u, 0};
  rtcp_add(d, 1, 202, w, 3);
}

static void add_pli(struct dgram *d, uint32_t ssrc, uint32_t media) {
  uint32_t w[2] = {ssrc, media};
  rtcp_add(d, 1, 206, w, 2);
}

static void add_nack(struct dgram *d, uint32_t ssrc, uint32_t media) {
  uint32_t w[3] = {ssrc, media, 1000u << 16 | 1u};
  rtcp_add(d, 1, 205, w, 3);
}

static int same(const struct dgram *a, const struct dgram *b) {
  return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* ---- the WIC ---- */

static void wic_out(void *user, const uint8_t *data, size_t len) {
  struct wic *w = user;
  uint8_t copy[2048];
  if (data[0] >= 128 && data[0] <= 191 && len <= sizeof(copy)) {
    memcpy(w->last_out.b, data, len);
    w->last_out.len = len;
    if (w->hold_next) {
      w->hold_next = 0;
      memcpy(w->held.b, data, len);
      w->held.len = len;
      return;
    }
    if (w->tamper_next) {
      w->tamper_next = 0;
      memcpy(copy, data, len);
      copy[len / 2] ^= 0x10; /* a payload bit: the tag no longer holds */
      data = copy;
    } else if (w->duplicate_next) {
      w->duplicate_next = 0;
      (void)sendto(w->fd, data, len, 0, (const struct sockaddr *)&w->to,
                   sizeof(w->to));
    }
  }
  (void)sendto(w->fd, data, len, 0, (const struct sockaddr *)&w->to,
               sizeof(w->to));
}

static void wic_state(void *user, enum dcmf_dcstack_state st, const char *why) {
  struct wic *w = user;
  (void)why;
  if (st == DCMF_DCSTACK_ASSOC_UP) {
    w->up = 1;
  } else if (st == DCMF_DCSTACK_DTLS_FAILED ||
             st == DCMF_DCSTACK_ASSOC_FAILED) {
    w->failed = 1;
  }
}

static int wic_flow_open(void *user, const struct dcmf_svc_flow *f,
                         void **slot) {
  (void)user;
  (void)slot;
  assert_int_equal(f->kind, DCMF_ASSOC_SRTP);
  return 0;
}

static void wic_flow_message(void *user, const struct dcmf_svc_flow *f,
                             void *slot, int binary, const uint8_t *data,
                             size_t len) {
  struct wic *w = user;
  (void)slot;
  (void)binary;
  w->last_flow = f->id;
  int rtcp = data[1] >= 192 && data[1] <= 223;
  struct dgram *q = rtcp ? w->rtcp : w->rtp;
  size_t *n = rtcp ? &w->n_rtcp : &w->n_rtp;
  assert_true(len <= sizeof(q[0].b));
  if (*n < QN) { /* the first QN are kept; the rest only counted */
    memcpy(q[*n].b, data, len);
    q[*n].len = len;
  }
  (*n)++;
}

static void wic_flow_closed(void *user, const struct dcmf_svc_flow *f,
                            void **slot) {
  (void)user;
  (void)f;
  (void)slot;
}

static const struct dcmf_dcstack_callbacks wic_cbs = {
    .send_datagram = wic_out,
    .state_changed = wic_state,
    .flow_open = wic_flow_open,
    .flow_message = wic_flow_message,
    .flow_closed = wic_flow_closed,
};

static void cert_ctx(struct dcmf_cert *c, struct dcmf_dtls_ctx *ctx) {
  char err[256];
  assert_int_equal(dcmf_cert_generate(c, err, sizeof(err)), 0);
  assert_int_equal(dcmf_dtls_ctx_init(ctx, c->x509, c->pkey, 1200), 0);
}

static void wic_new(struct wic *w) {
  memset(w, 0, sizeof(*w));
  cert_ctx(&w->cert, &w->ctx);
  w->fd = udp_socket(&w->addr);
  struct dcmf_dcstack_settings ss = {
      .dtls_ctx = &w->ctx, .dtls_server = 0, .kind = &dcmf_assoc_srtp};
  assert_int_equal(dcmf_dcstack_new(&w->stack, &ss, &wic_cbs, w), 0);
}

static void wic_start(struct wic *w, const struct sockaddr_in *to,
                      const struct dcmf_cert *peer) {
  w->to = *to;
  struct dcmf_fingerprint_set fp;
  memset(&fp, 0, sizeof(fp));
  assert_int_equal(dcmf_fingerprint_parse(peer->fingerprint, &fp), 0);
  assert_int_equal(dcmf_dcstack_set_remote_fingerprints(w->stack, &fp), 0);
  dcmf_dcstack_start(w->stack);
}

/* Sends one plain packet through the WIC's SRTP. */
static int wic_send(struct wic *w, uint32_t ssrc, const struct dgram *d) {
  return dcmf_dcstack_kind(w->stack)->send(dcmf_dcstack_assoc(w->stack), ssrc,
                                           1, d->b, d->len);
}

/* A new DTLS association of the same WIC (its re-offer with a new
 * tls-id): a fresh stack with the same certificate, its SRTP state
 * fresh too. */
static void wic_restart(struct wic *w, const struct dcmf_cert *peer) {
  dcmf_dcstack_del(w->stack);
  w->up = w->failed = 0;
  struct dcmf_dcstack_settings ss = {
      .dtls_ctx = &w->ctx, .dtls_server = 0, .kind = &dcmf_assoc_srtp};
  assert_int_equal(dcmf_dcstack_new(&w->stack, &ss, &wic_cbs, w), 0);
  wic_start(w, &w->to, peer);
}

/* The WIC's re-offer with a new tls-id, as a WebRTC stack keeping its
 * SRTP state: a new DTLS association (a new certificate, role
 * |dtls_server|) on the same SRTP association (dcmf_dcstack_renew). */
static void wic_renew(struct wic *w, int dtls_server,
                      const struct dcmf_cert *peer) {
  assert_false(w->renewed);
  cert_ctx(&w->cert2, &w->ctx2);
  w->renewed = 1;
  assert_int_equal(dcmf_dcstack_renew(w->stack, &w->ctx2, dtls_server), 0);
  w->up = w->failed = 0;
  struct dcmf_fingerprint_set fp;
  memset(&fp, 0, sizeof(fp));
  assert_int_equal(dcmf_fingerprint_parse(peer->fingerprint, &fp), 0);
  assert_int_equal(dcmf_dcstack_set_remote_fingerprints(w->stack, &fp), 0);
  dcmf_dcstack_start(w->stack); /* nothing for a server */
}

static void wic_free(struct wic *w) {
  dcmf_dcstack_del(w->stack);
  if (w->renewed) {
    dcmf_dtls_ctx_free(&w->ctx2);
    dcmf_cert_free(&w->cert2);
  }
  close(w->fd);
  dcmf_dtls_ctx_free(&w->ctx);
  dcmf_cert_free(&w->cert);
}

/* ---- the session ---- */

static uint64_t fake_now(void *user) {
  struct fx *f = user;
  return f->now;
}

static void on_event(void *user, const struct dcmf_media_key *key,
                     const char *event, const char *detail) {
  struct fx *f = user;
  (void)key;
  size_t n = strlen(f->events);
  snprintf(f->events + n, sizeof(f->events) - n, "%s|", event);
  if (strcmp(event, DCMF_E2AE_EVENT) == 0) {
    assert_true(strlen(detail) < sizeof(f->counters));
    snprintf(f->counters, sizeof(f->counters), "%s", detail);
    assert_true(f->n_pushes < EVENTS_MAX);
    f->pushed_at[f->n_pushes++] = f->now;
  }
}

static void set_addr(struct sockaddr_storage *ss, const struct sockaddr_in *a) {
  memset(ss, 0, sizeof(*ss));
  memcpy(ss, a, sizeof(*a));
}

static struct fx *fx_new(const struct opts *o) {
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->log = (struct dcmf_log){.stream = stderr, .level = DCMF_LOG_ERROR};
  f->now = 5000;
  dcmf_tickq_init(&f->ticks);
  dcmf_tickq_init(&f->flushes);
  cert_ctx(&f->cert, &f->ctx);
  struct dcmf_svc_worker_env wenv = {
      .loop = &f->loop, .log = &f->log, .stats = &f->stats};
  struct dcmf_e2ae_config cfg = {.push_ms = o->push_ms};
  assert_int_equal(dcmf_e2ae_service.init(&f->svc_worker, &wenv,
                                          o->push_ms != 0 ? &cfg : NULL, NULL,
                                          0),
                   0);
  f->services[0] =
      (struct dcmf_session_service){&dcmf_e2ae_service, f->svc_worker};
  wic_new(&f->wic);
  peer_new(&f->core_rtp);
  peer_new(&f->core_rtcp);
  peer_new(&f->stranger);

  struct dcmf_media_desc d;
  memset(&d, 0, sizeof(d));
  snprintf(d.key.context_id, sizeof(d.key.context_id), "ctx");
  snprintf(d.key.termination_id, sizeof(d.key.termination_id), "access");
  snprintf(d.key.media_id, sizeof(d.key.media_id), "audio");
  d.fd = udp_socket(&f->session_addr);
  snprintf(d.local_ufrag, sizeof(d.local_ufrag), "sEsS");
  snprintf(d.local_pwd, sizeof(d.local_pwd), "0123456789abcdefghijkl");
  memcpy(&d.remote_addr, &f->wic.addr, sizeof(f->wic.addr));
  d.has_remote_addr = 1;
  d.remote_no_ice = !o->ice; /* else DTLS straight from the signalled address */
  if (o->ice) {
    snprintf(d.remote_ufrag, sizeof(d.remote_ufrag), "wIcW");
  }
  d.dtls_server = 1;
  d.assoc = DCMF_ASSOC_SRTP;
  snprintf(d.remote_tls_id, sizeof(d.remote_tls_id), "tls-a");
  struct dcmf_cert other;
  if (o->wrong_fp) {
    char err[256];
    assert_int_equal(dcmf_cert_generate(&other, err, sizeof(err)), 0);
  }
  assert_int_equal(dcmf_fingerprint_parse(o->wrong_fp ? other.fingerprint
                                                      : f->wic.cert.fingerprint,
                                          &d.remote_fp),
                   0);
  if (o->wrong_fp) {
    dcmf_cert_free(&other);
  }
  struct dcmf_media_rtpleg *leg = calloc(1, sizeof(*leg));
  assert_non_null(leg);
  leg->rtp_fd = f->core_fds[0] = udp_socket(&f->core_rtp_addr);
  leg->rtp_port = ntohs(f->core_rtp_addr.sin_port);
  leg->rtcp_fd = -1;
  f->core_fds[1] = -1;
  if (!o->mux) {
    leg->rtcp_fd = f->core_fds[1] = udp_socket(&f->core_rtcp_addr);
    leg->rtcp_port = ntohs(f->core_rtcp_addr.sin_port);
  }
  if (o->signalled) {
    set_addr(&leg->remote_rtp, &f->core_rtp.addr);
    set_addr(&leg->remote_rtcp,
             o->mux ? &f->core_rtp.addr : &f->core_rtcp.addr);
  }
  leg->rtcp_mux = o->mux;
  leg->latching = o->latching;
  leg->core_avpf = o->core_avpf;
  leg->access_avpf = !o->access_avp;
  d.rtpleg = leg;
  if (o->hello_rate > 0) {
    struct dcmf_ratelimit_settings rs = {.rate = (uint32_t)o->hello_rate,
                                         .burst = (uint32_t)o->hello_rate};
    assert_int_equal(dcmf_ratelimit_new(&f->hello_limit, &rs), 0);
  }
  struct dcmf_session_env env = {.consent_timeout_ms = (uint64_t)o->consent_ms,
                                 .renewal_timeout_ms = (uint64_t)o->renewal_ms,
                                 .fallback_ms = (uint64_t)o->fallback_ms,
                                 .hello_limit = f->hello_limit,
                                 .loop = &f->loop,
                                 .dtls_ctx = &f->ctx,
                                 .log = &f->log,
                                 .stats = &f->stats,
                                 .max_streams = 16,
                                 .srtp_backend = test_srtp_backend(),
                                 .rx_scratch = f->rx,
                                 .rx_scratch_len = sizeof(f->rx),
                                 .services = f->services,
                                 .n_services = 1,
                                 .emit = on_event,
                                 .emit_user = f,
                                 .now = fake_now,
                                 .now_user = f,
                                 .ticks = &f->ticks,
                                 .flushes = &f->flushes};
  assert_int_equal(dcmf_session_new(&f->session, &env, &d), 0);
  if (!o->no_connect) {
    wic_start(&f->wic, &f->session_addr, &f->cert);
  }
  return f;
}

/* One round: the session's loop, the WIC's socket, the core peers', the
 * worker's tick as dcmfd's worker runs it (the services' worker_tick,
 * then the tick queue), and 10 ms on the services' clock. */
static void round_trip(struct fx *f) {
  uv_run(&f->loop, UV_RUN_NOWAIT);
  dcmf_tickq_run(&f->flushes);
  uint8_t buf[4096];
  for (int i = 0; i < 64; i++) {
    ssize_t n = recv(f->wic.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) {
      break;
    }
    if (buf[0] >= 20 && buf[0] <= 63) {
      (void)dcmf_dcstack_recv(f->wic.stack, buf, (size_t)n);
    } else if (buf[0] >= 128 && buf[0] <= 191) {
      if ((size_t)n <= sizeof(f->wic.last_in.b)) {
        memcpy(f->wic.last_in.b, buf, (size_t)n);
        f->wic.last_in.len = (size_t)n;
      }
      (void)dcmf_dcstack_recv_raw(f->wic.stack, buf, (size_t)n);
    }
  }
  dcmf_dcstack_handle_expiry(f->wic.stack, uv_hrtime() / 1000000);
  peer_drain(&f->core_rtp);
  peer_drain(&f->core_rtcp);
  peer_drain(&f->stranger);
  if (dcmf_e2ae_service.worker_tick != NULL) {
    dcmf_e2ae_service.worker_tick(f->svc_worker);
  }
  f->visits += dcmf_tickq_run(&f->ticks);
  dcmf_tickq_run(&f->flushes);
  f->now += 10;
}

/* Rounds until |cond| holds: at most 3000 rounds and 20 s. */
static int until(struct fx *f, int (*cond)(struct fx *f)) {
  uint64_t deadline = uv_hrtime() + 20ull * 1000000000ull;
  for (int i = 0; i < 3000 && uv_hrtime() < deadline; i++) {
    if (cond(f)) {
      return 1;
    }
    round_trip(f);
  }
  return cond(f);
}

/* As until(), for a condition that waits on the session's real timers:
 * rounds 2 ms apart, at most 5000 (10 s). */
static int until_slow(struct fx *f, int (*cond)(struct fx *f)) {
  for (int i = 0; i < 5000; i++) {
    if (cond(f)) {
      return 1;
    }
    round_trip(f);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  return cond(f);
}

static void rounds(struct fx *f, int n) {
  for (int i = 0; i < n; i++) {
    round_trip(f);
  }
}

/* Sends |len| bytes of |data| from the WIC's socket to the session as
 * they are (past the WIC's stack), asserting the whole datagram left. */
static void to_session_raw(struct fx *f, const void *data, size_t len) {
  assert_int_equal(sendto(f->wic.fd, data, len, 0,
                          (const struct sockaddr *)&f->session_addr,
                          sizeof(f->session_addr)),
                   (ssize_t)len);
}

/* A core RTP packet each round (10 ms of the services' clock) for |n|
 * rounds, sequence numbers 0 to |n| - 1. */
static void core_packet_each_round(struct fx *f, uint16_t n) {
  for (uint16_t i = 0; i < n; i++) {
    struct dgram c = rtp(CORE_SSRC, i);
    peer_send(&f->core_rtp, &f->core_rtp_addr, &c);
    round_trip(f);
  }
}

/* Asserts that each push from the |first|th on came |min_gap| to
 * |max_gap| ms (the services' clock) after the one before it. */
static void assert_push_gaps(const struct fx *f, size_t first, uint64_t min_gap,
                             uint64_t max_gap) {
  for (size_t i = first; i < f->n_pushes; i++) {
    assert_true(f->pushed_at[i] - f->pushed_at[i - 1] >= min_gap);
    assert_true(f->pushed_at[i] - f->pushed_at[i - 1] <= max_gap);
  }
}

static void fx_free(struct fx *f) {
  if (f->session != NULL) {
    dcmf_session_close(f->session);
  }
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  assert_int_equal(f->ticks.count, 0);
  wic_free(&f->wic);
  close(f->core_rtp.fd);
  close(f->core_rtcp.fd);
  close(f->stranger.fd);
  dcmf_e2ae_service.free(f->svc_worker);
  dcmf_ratelimit_del(f->hello_limit);
  dcmf_dtls_ctx_free(&f->ctx);
  dcmf_cert_free(&f->cert);
  free(f);
}

/* ---- conditions and counters ---- */

static int wic_up(struct fx *f) {
  return f->wic.up;
}

/* A fixture of |o| whose WIC's DTLS-SRTP association is up (keyed both
 * ways). */
static struct fx *fx_up(const struct opts *o) {
  struct fx *f = fx_new(o);
  assert_true(until(f, wic_up));
  return f;
}

/* A counter of the last push: counter(f, "drops", "unknownSource");
 * -1 when there was no push. */
static long long counter(struct fx *f, const char *group, const char *name) {
  if (f->counters[0] == '\0') {
    return -1;
  }
  json_error_t err;
  json_t *o = json_loads(f->counters, 0, &err);
  if (o == NULL) {
    fail_msg("RTP_COUNTERS is not JSON: %s (%s)", f->counters, err.text);
  }
  json_t *v = json_object_get(json_object_get(o, group), name);
  assert_true(json_is_integer(v));
  long long r = (long long)json_integer_value(v);
  json_decref(o);
  return r;
}

static const char *profile(struct fx *f, char *buf, size_t cap) {
  json_t *o = json_loads(f->counters, 0, NULL);
  assert_non_null(o);
  const char *p = json_string_value(json_object_get(o, "profile"));
  assert_non_null(p);
  snprintf(buf, cap, "%s", p);
  json_decref(o);
  return buf;
}

/* The condition functions below read what they wait for from these. */
static size_t want_n;
static const char *want_group, *want_name;

static int core_rtp_has_n(struct fx *f) {
  return f->core_rtp.n >= want_n;
}
static int core_rtcp_has_n(struct fx *f) {
  return f->core_rtcp.n >= want_n;
}
static int wic_rtp_has_n(struct fx *f) {
  return f->wic.n_rtp >= want_n;
}
static int wic_rtcp_has_n(struct fx *f) {
  return f->wic.n_rtcp >= want_n;
}
static int stranger_has_n(struct fx *f) {
  return f->stranger.n >= want_n;
}
static int counter_reached(struct fx *f) {
  return counter(f, want_group, want_name) >= (long long)want_n;
}

static int wait_counter(struct fx *f, const char *group, const char *name,
                        size_t n) {
  want_group = group;
  want_name = name;
  want_n = n;
  return until(f, counter_reached);
}

static int wait_n(struct fx *f, int (*cond)(struct fx *f), size_t n) {
  want_n = n;
  return until(f, cond);
}

/* ---- tests ---- */

/* rtcp-mux on the core leg, both legs AVPF: RTP and RTCP both ways,
 * byte for byte, feedback included. */
static void test_mux_both_ways(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1};
  struct fx *f = fx_up(&o);

  /* access -> core: RTP, then SR+SDES, then a reduced-size PLI */
  struct dgram r1 = rtp(WIC_SSRC, 1), r2 = rtp(WIC_SSRC, 2);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &r1), 0);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &r2), 0);
  struct dgram sr = {0};
  add_sr(&sr, WIC_SSRC);
  add_sdes(&sr, WIC_SSRC);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &sr), 0);
  struct dgram pli = {0};
  add_pli(&pli, WIC_SSRC, CORE_SSRC);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &pli), 0);
  assert_true(wait_n(f, core_rtp_has_n, 4));
  assert_true(same(&f->core_rtp.q[0], &r1));
  assert_true(same(&f->core_rtp.q[1], &r2));
  assert_true(same(&f->core_rtp.q[2], &sr));  /* on the RTP port: mux */
  assert_true(same(&f->core_rtp.q[3], &pli)); /* AVPF both: passes */
  assert_int_equal(f->core_rtcp.n, 0);

  /* core -> access: RTP, and RR+SDES+NACK on the same port */
  struct dgram c1 = rtp(CORE_SSRC, 7000);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  assert_true(same(&f->wic.rtp[0], &c1));
  assert_int_equal(f->wic.last_flow, CORE_SSRC);
  struct dgram rr = {0};
  add_rr(&rr, CORE_SSRC);
  add_sdes(&rr, CORE_SSRC);
  add_nack(&rr, CORE_SSRC, WIC_SSRC);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &rr);
  assert_true(wait_n(f, wic_rtcp_has_n, 1));
  assert_true(same(&f->wic.rtcp[0], &rr));

  /* counted and pushed */
  assert_true(wait_counter(f, "toAccess", "packets", 2));
  assert_true(wait_counter(f, "toCore", "packets", 4));
  assert_int_equal(counter(f, "toCore", "bytes"),
                   (long long)(r1.len + r2.len + sr.len + pli.len));
  assert_int_equal(counter(f, "toAccess", "bytes"),
                   (long long)(c1.len + rr.len));
  assert_int_equal(counter(f, "drops", "feedbackStripped"), 0);
  assert_int_equal(counter(f, "drops", "unknownSource"), 0);
  char p[64];
  /* our first choice, which the WIC (the same kind) offers too */
  assert_string_equal(profile(f, p, sizeof(p)), "SRTP_AEAD_AES_256_GCM");
  /* SSRC flows are no data channels */
  assert_null(strstr(f->events, "DC_OPEN"));
  fx_free(f);
}

/* A separate core RTCP port, core RTP/AVP: feedback is stripped both
 * ways, a compound of only feedback goes nowhere. */
static void test_separate_rtcp_port_avp_core(void **state) {
  (void)state;
  struct opts o = {.mux = 0, .signalled = 1, .core_avpf = 0};
  struct fx *f = fx_up(&o);

  struct dgram r1 = rtp(WIC_SSRC, 10);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &r1), 0);
  /* SR + NACK + SDES: the NACK goes */
  struct dgram sr = {0}, want = {0};
  add_sr(&sr, WIC_SSRC);
  add_nack(&sr, WIC_SSRC, CORE_SSRC);
  add_sdes(&sr, WIC_SSRC);
  add_sr(&want, WIC_SSRC);
  add_sdes(&want, WIC_SSRC);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &sr), 0);
  /* a reduced-size PLI alone: dropped; then an RR that arrives */
  struct dgram pli = {0}, rr = {0};
  add_pli(&pli, WIC_SSRC, CORE_SSRC);
  add_rr(&rr, WIC_SSRC);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &pli), 0);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &rr), 0);
  assert_true(wait_n(f, core_rtp_has_n, 1));
  assert_true(wait_n(f, core_rtcp_has_n, 2));
  assert_true(same(&f->core_rtp.q[0], &r1)); /* RTP on the RTP port */
  assert_int_equal(f->core_rtp.n, 1);
  assert_true(same(&f->core_rtcp.q[0], &want)); /* RTCP on its own */
  assert_true(same(&f->core_rtcp.q[1], &rr));   /* no PLI between */

  /* core -> access: RTCP from the RTCP port, RR + PLI: the PLI goes */
  struct dgram crr = {0}, cwant = {0};
  add_rr(&crr, CORE_SSRC);
  add_pli(&crr, CORE_SSRC, WIC_SSRC);
  add_rr(&cwant, CORE_SSRC);
  peer_send(&f->core_rtcp, &f->core_rtcp_addr, &crr);
  assert_true(wait_n(f, wic_rtcp_has_n, 1));
  assert_true(same(&f->wic.rtcp[0], &cwant));
  /* RTP to the RTP port arrives; RTP to the RTCP port is malformed */
  struct dgram c1 = rtp(CORE_SSRC, 1);
  peer_send(&f->core_rtcp, &f->core_rtcp_addr, &c1);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  assert_true(same(&f->wic.rtp[0], &c1));
  assert_true(wait_counter(f, "drops", "malformed", 1));
  assert_int_equal(counter(f, "drops", "feedbackStripped"), 3);
  assert_true(wait_counter(f, "toCore", "packets", 3));
  assert_int_equal(counter(f, "toCore", "bytes"),
                   (long long)(r1.len + want.len + rr.len));
  assert_int_equal(f->wic.n_rtp, 1);
  fx_free(f);
}

/* Without latching only the signalled address is heard. */
static void test_unknown_source_dropped(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1};
  struct fx *f = fx_up(&o);
  struct dgram bad = rtp(CORE_SSRC, 1), good = rtp(CORE_SSRC, 2);
  peer_send(&f->stranger, &f->core_rtp_addr, &bad);
  peer_send(&f->stranger, &f->core_rtp_addr, &bad);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &good);
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  assert_true(wait_counter(f, "drops", "unknownSource", 2));
  rounds(f, 20);
  assert_int_equal(f->wic.n_rtp, 1);
  assert_true(same(&f->wic.rtp[0], &good));
  assert_int_equal(counter(f, "drops", "unknownSource"), 2);
  assert_int_equal(counter(f, "toAccess", "packets"), 1);
  fx_free(f);
}

/* Latching with nothing signalled: no core address until the first
 * packet; its source is kept, a second source is dropped. */
static void test_latching(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .latching = 1, .signalled = 0, .core_avpf = 1};
  struct fx *f = fx_up(&o);
  struct dgram a1 = rtp(WIC_SSRC, 1);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a1), 0);
  assert_true(wait_counter(f, "drops", "noCoreAddress", 1));

  /* the core speaks first from |core_rtp|: latched */
  struct dgram c1 = rtp(CORE_SSRC, 1), s1 = rtp(CORE_SSRC + 1, 1);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  /* a second source: not latched, dropped */
  peer_send(&f->stranger, &f->core_rtp_addr, &s1);
  assert_true(wait_counter(f, "drops", "unknownSource", 1));
  /* what the WIC sends goes to the latched source, not the stranger */
  struct dgram a2 = rtp(WIC_SSRC, 2);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a2), 0);
  assert_true(wait_n(f, core_rtp_has_n, 1));
  assert_true(same(&f->core_rtp.q[0], &a2));
  struct dgram c2 = rtp(CORE_SSRC, 2);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c2);
  assert_true(wait_n(f, wic_rtp_has_n, 2));
  rounds(f, 20);
  assert_int_equal(f->stranger.n, 0);
  assert_int_equal(f->wic.n_rtp, 2);
  assert_true(same(&f->wic.rtp[1], &c2));
  assert_int_equal(counter(f, "drops", "unknownSource"), 1);
  fx_free(f);
}

/* Latching takes only a forwarded packet's source: a stranger speaking
 * before DTLS is up latches nothing (counted beforeDtls), the core that
 * speaks once the association is keyed is latched, and the stranger is
 * then an unknown source. */
static void test_latching_waits_for_keys(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .latching = 1, .core_avpf = 1, .no_connect = 1};
  struct fx *f = fx_new(&o);
  struct dgram s1 = rtp(CORE_SSRC + 1, 1);
  peer_send(&f->stranger, &f->core_rtp_addr, &s1);
  assert_true(wait_counter(f, "drops", "beforeDtls", 1));
  wic_start(&f->wic, &f->session_addr, &f->cert);
  assert_true(until(f, wic_up));
  struct dgram c1 = rtp(CORE_SSRC, 1);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  assert_true(same(&f->wic.rtp[0], &c1));
  peer_send(&f->stranger, &f->core_rtp_addr, &s1);
  assert_true(wait_counter(f, "drops", "unknownSource", 1));
  rounds(f, 20);
  assert_int_equal(f->wic.n_rtp, 1);
  fx_free(f);
}

/* With a separate core RTCP port, once RTP latched, RTCP is heard and
 * latched only from the same host: a stranger on another loopback
 * address is dropped, the core's RTCP (another port) passes. */
static void test_latching_rtcp_same_host(void **state) {
  (void)state;
  struct opts o = {.mux = 0, .latching = 1, .core_avpf = 1};
  struct fx *f = fx_up(&o);
  struct peer far;
  memset(&far, 0, sizeof(far));
  far.fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(far.fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(0x7f000002); /* 127.0.0.2 */
  assert_int_equal(bind(far.fd, (struct sockaddr *)&a, sizeof(a)), 0);
  struct dgram c1 = rtp(CORE_SSRC, 1);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  struct dgram rr = {0};
  add_rr(&rr, CORE_SSRC + 7);
  peer_send(&far, &f->core_rtcp_addr, &rr);
  assert_true(wait_counter(f, "drops", "unknownSource", 1));
  struct dgram rr2 = {0};
  add_rr(&rr2, CORE_SSRC);
  peer_send(&f->core_rtcp, &f->core_rtcp_addr, &rr2);
  assert_true(wait_n(f, wic_rtcp_has_n, 1));
  assert_true(same(&f->wic.rtcp[0], &rr2));
  rounds(f, 20);
  assert_int_equal(f->wic.n_rtcp, 1);
  close(far.fd);
  fx_free(f);
}

/* Toward an access leg without AVPF, a reduced-size PLI+RR from an AVPF
 * core loses the PLI; what is left goes on the flow of the RR's sender
 * (not of the PLI's, read before the filter), counted as stripped. */
static void test_feedback_stripped_sender_reread(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1, .access_avp = 1};
  struct fx *f = fx_up(&o);
  struct dgram in = {0}, want = {0};
  add_pli(&in, CORE_SSRC + 5, WIC_SSRC);
  add_rr(&in, CORE_SSRC);
  add_rr(&want, CORE_SSRC);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &in);
  assert_true(wait_n(f, wic_rtcp_has_n, 1));
  assert_true(same(&f->wic.rtcp[0], &want));
  assert_true(wait_counter(f, "toAccess", "packets", 1));
  assert_int_equal(counter(f, "drops", "beforeDtls"), 0);
  assert_int_equal(counter(f, "drops", "feedbackStripped"), 1);
  fx_free(f);
}

/* An access datagram in the SRTP range that cannot be SRTP (shorter than
 * an RTP header) is refused by the association and shows as malformed
 * in the pushed counters; nothing reaches the core. */
static void test_access_malformed_counted(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1};
  struct fx *f = fx_up(&o);
  uint8_t junk[8] = {0x80, 111, 0, 1, 0, 0, 0, 0};
  to_session_raw(f, junk, sizeof(junk));
  assert_true(wait_counter(f, "drops", "malformed", 1));
  rounds(f, 10);
  assert_int_equal(f->core_rtp.n, 0);
  assert_int_equal(counter(f, "toCore", "packets"), 0);
  fx_free(f);
}

static int consent_lost(struct fx *f) {
  return strstr(f->events, "CONSENT_LOST") != NULL;
}

/* Once consent is lost the session has no DTLS peer to send to: core
 * packets are counted as dropped (sendFailed), not as sent toward the
 * access side, and none reaches the WIC. */
static void test_no_access_after_consent_lost(void **state) {
  (void)state;
  struct opts o = {.mux = 1,
                   .signalled = 1,
                   .core_avpf = 1,
                   .consent_ms = 300,
                   .ice = 1,
                   .no_connect = 1};
  struct fx *f = fx_new(&o);
  /* The WIC's nominating check latches it (consent starts), then DTLS. */
  struct dcmf_stun_request req = {
      .txid = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7},
      .username = "sEsS:wIcW",
      .key = (const uint8_t *)"0123456789abcdefghijkl",
      .key_len = 22,
      .priority = 0x6e0001ff,
      .role = DCMF_STUN_ROLE_CONTROLLING,
      .tie_breaker = 42,
      .use_candidate = 1,
  };
  uint8_t pkt[256];
  size_t len = 0;
  assert_int_equal(dcmf_stun_build_request(pkt, sizeof(pkt), &len, &req), 0);
  to_session_raw(f, pkt, len);
  rounds(f, 5);
  wic_start(&f->wic, &f->session_addr, &f->cert);
  assert_true(until(f, wic_up));
  struct dgram c1 = rtp(CORE_SSRC, 1);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  assert_true(wait_counter(f, "toAccess", "packets", 1));
  /* The WIC stays silent: consent runs out on the session's timer, which
   * each blocking turn waits for (bounded in turns; the test's timeout
   * bounds the time). */
  for (int i = 0; i < 200 && !consent_lost(f); i++) {
    uv_run(&f->loop, UV_RUN_ONCE);
    round_trip(f);
  }
  assert_true(consent_lost(f));
  struct dgram c2 = rtp(CORE_SSRC, 2), c3 = rtp(CORE_SSRC, 3);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c2);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c3);
  assert_true(wait_counter(f, "drops", "sendFailed", 2));
  rounds(f, 10);
  assert_int_equal(counter(f, "toAccess", "packets"), 1);
  assert_int_equal(f->wic.n_rtp, 1);
  fx_free(f);
}

static int dtls_failure(struct fx *f) {
  return strstr(f->events, "DTLS_FAILURE") != NULL;
}

/* Core packets before the handshake are dropped and counted; once DTLS
 * is up with the right fingerprint they pass. */
static void test_core_before_dtls(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1, .no_connect = 1};
  struct fx *f = fx_new(&o);
  struct dgram c1 = rtp(CORE_SSRC, 1);
  struct dgram rr = {0};
  add_rr(&rr, CORE_SSRC);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &rr);
  assert_true(wait_counter(f, "drops", "beforeDtls", 2));
  assert_int_equal(counter(f, "toAccess", "packets"), 0);
  char p[64];
  assert_string_equal(profile(f, p, sizeof(p)), "");
  wic_start(&f->wic, &f->session_addr, &f->cert);
  assert_true(until(f, wic_up));
  struct dgram c2 = rtp(CORE_SSRC, 2);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c2);
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  assert_true(same(&f->wic.rtp[0], &c2)); /* not c1: it was dropped */
  assert_true(wait_counter(f, "toAccess", "packets", 1));
  assert_int_equal(counter(f, "drops", "beforeDtls"), 2);
  fx_free(f);
}

/* A WIC whose certificate is not the signalled one: the handshake
 * fails, the failure is raised, nothing is forwarded either way. */
static void test_wrong_fingerprint_forwards_nothing(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1, .wrong_fp = 1};
  struct fx *f = fx_new(&o);
  assert_true(until(f, dtls_failure));
  struct dgram c1 = rtp(CORE_SSRC, 1);
  for (int i = 0; i < 3; i++) {
    peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  }
  assert_true(wait_counter(f, "drops", "beforeDtls", 3));
  /* the WIC cannot send media: it never got keys */
  assert_false(f->wic.up);
  struct dgram a1 = rtp(WIC_SSRC, 1);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a1), DCMF_ERR_INVALID);
  rounds(f, 30);
  assert_int_equal(f->core_rtp.n, 0);
  assert_int_equal(f->wic.n_rtp + f->wic.n_rtcp, 0);
  assert_int_equal(counter(f, "toCore", "packets"), 0);
  assert_int_equal(counter(f, "toAccess", "packets"), 0);
  fx_free(f);
}

/* Tampered and replayed SRTP from the WIC never reach the core; the
 * association's refusals show in the pushed counters. */
static void test_tampered_and_replayed_srtp(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1};
  struct fx *f = fx_up(&o);
  struct dgram a1 = rtp(WIC_SSRC, 1), a2 = rtp(WIC_SSRC, 2),
               a3 = rtp(WIC_SSRC, 3);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a1), 0);
  f->wic.tamper_next = 1;
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a2), 0);
  f->wic.duplicate_next = 1;
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a3), 0);
  struct dgram sr = {0};
  add_sr(&sr, WIC_SSRC);
  f->wic.tamper_next = 1;
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &sr), 0);
  assert_true(wait_counter(f, "drops", "srtpAuth", 2));
  assert_true(wait_counter(f, "drops", "srtpReplay", 1));
  assert_true(wait_n(f, core_rtp_has_n, 2));
  rounds(f, 20);
  assert_int_equal(f->core_rtp.n, 2);
  assert_true(same(&f->core_rtp.q[0], &a1));
  assert_true(same(&f->core_rtp.q[1], &a3));
  assert_int_equal(counter(f, "toCore", "packets"), 2);
  fx_free(f);
}

/* Pushes: the first packet at once, then at most one per interval
 * (DCMF_E2AE_PUSH_MS of the services' clock) while the counters change,
 * none once they stop, and a final one at detach; the core sockets are
 * closed then. The service never asks for a tick. */
static void test_counters_pushed(void **state) {
  (void)state;
  struct opts o = {.mux = 0, .signalled = 1, .core_avpf = 1};
  struct fx *f = fx_up(&o);
  rounds(f, 2);
  size_t n0 = f->n_pushes; /* the profile, pushed at keying */
  assert_int_equal(n0, 1);
  uint64_t t0 = f->now;
  /* a packet every round (10 ms) for 250 rounds: 2.5 s of change */
  core_packet_each_round(f, 250);
  /* the first packet at once, then after 1 s and 2 s */
  assert_int_equal(f->n_pushes - n0, 3);
  assert_true(f->pushed_at[n0] <= t0 + 10);
  assert_push_gaps(f, n0 + 1, DCMF_E2AE_PUSH_MS, DCMF_E2AE_PUSH_MS + 20);
  assert_true(wait_counter(f, "toAccess", "packets", 250));
  assert_int_equal(f->visits, 0);
  /* quiet: no more pushes */
  size_t n = f->n_pushes;
  rounds(f, 300);
  assert_int_equal(f->n_pushes, n);
  /* the final push at detach */
  dcmf_session_close(f->session);
  f->session = NULL;
  assert_int_equal(f->n_pushes, n + 1);
  json_t *last = json_loads(f->counters, 0, NULL);
  assert_non_null(last);
  assert_true(json_is_true(json_object_get(last, "final")));
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(last, "toAccess"), "packets")),
                   250);
  json_decref(last);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 2; i++) {
    errno = 0;
    assert_int_equal(fcntl(f->core_fds[i], F_GETFD), -1);
    assert_int_equal(errno, EBADF);
  }
  fx_free(f);
}

/* A keyed media with no traffic costs no tick and pushes nothing over a
 * long time; one packet then (not its counter's first) leads to exactly
 * one push, one interval later; an SRTP refusal, counted inside the
 * association, is pushed with nobody polling: at once for the first of
 * its kind, within the interval for the next. */
static void test_idle_keyed_costs_nothing(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1};
  struct fx *f = fx_up(&o);
  struct dgram c0 = rtp(CORE_SSRC, 1);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c0);
  assert_true(wait_counter(f, "toAccess", "packets", 1));
  rounds(f, 150); /* the first packet was pushed at once: nothing pends */
  size_t n = f->n_pushes;
  f->visits = 0;
  /* 60 s of the services' clock with nothing to do */
  rounds(f, 6000);
  assert_int_equal(f->visits, 0);
  assert_int_equal(f->n_pushes, n);
  /* one packet: one push, one interval later */
  uint64_t sent = f->now;
  struct dgram c1 = rtp(CORE_SSRC, 2);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  rounds(f, DCMF_E2AE_PUSH_MS / 10 + 5);
  assert_int_equal(f->n_pushes, n + 1);
  assert_true(f->pushed_at[n] >= sent + DCMF_E2AE_PUSH_MS);
  assert_true(f->pushed_at[n] <= sent + DCMF_E2AE_PUSH_MS + 20);
  assert_int_equal(counter(f, "toAccess", "packets"), 2);
  rounds(f, 300);
  assert_int_equal(f->n_pushes, n + 1);
  /* a tampered SRTP packet: the first srtpAuth is pushed at once */
  struct dgram a1 = rtp(WIC_SSRC, 1);
  f->wic.tamper_next = 1;
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a1), 0);
  rounds(f, 1);
  assert_int_equal(f->n_pushes, n + 2);
  assert_int_equal(counter(f, "drops", "srtpAuth"), 1);
  /* the next one within the interval, in one push */
  sent = f->now;
  struct dgram a2 = rtp(WIC_SSRC, 2);
  f->wic.tamper_next = 1;
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a2), 0);
  rounds(f, DCMF_E2AE_PUSH_MS / 10 + 5);
  assert_int_equal(f->n_pushes, n + 3);
  assert_true(f->pushed_at[n + 2] <= sent + DCMF_E2AE_PUSH_MS + 20);
  assert_int_equal(counter(f, "drops", "srtpAuth"), 2);
  assert_int_equal(f->visits, 0);
  fx_free(f);
}

/* The push interval is the worker's config: 200 ms here; over the
 * ceiling init refuses, naming it. */
static void test_push_interval_configured(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1, .push_ms = 200};
  struct fx *f = fx_up(&o);
  rounds(f, 2);
  size_t n0 = f->n_pushes;
  core_packet_each_round(f, 100);     /* 1 s, a packet every 10 ms */
  assert_true(f->n_pushes - n0 >= 4); /* the first at once, then every 200 ms */
  assert_push_gaps(f, n0 + 2, 200, 220);
  assert_int_equal(f->visits, 0);
  fx_free(f);

  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct dcmf_svc_worker_env wenv = {.loop = &loop};
  struct dcmf_e2ae_config big = {.push_ms = DCMF_E2AE_PUSH_MS_MAX + 1};
  void *worker = NULL;
  char err[128] = "";
  assert_int_equal(
      dcmf_e2ae_service.init(&worker, &wenv, &big, err, sizeof(err)),
      DCMF_ERR_INVALID);
  assert_null(worker);
  assert_non_null(strstr(err, "push interval"));
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* What a media costs the worker, idle and busy, in tick visits and
 * pushes per second of the services' clock (printed: the figures of
 * docs/e2ae.md): 10 s keyed and idle, then 10 s of 50 RTP packets per
 * second each way. */
static void test_cost_per_second(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1};
  struct fx *f = fx_up(&o);
  rounds(f, 10);
  size_t v0 = f->visits, p0 = f->n_pushes;
  rounds(f, 1000);
  double idle_visits = (double)(f->visits - v0) / 10.0;
  double idle_pushes = (double)(f->n_pushes - p0) / 10.0;
  v0 = f->visits;
  p0 = f->n_pushes;
  for (uint16_t i = 0; i < 1000; i++) {
    if (i % 2 == 0) { /* every 20 ms both ways */
      struct dgram c = rtp(CORE_SSRC, i), a = rtp(WIC_SSRC, i);
      peer_send(&f->core_rtp, &f->core_rtp_addr, &c);
      assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a), 0);
    }
    round_trip(f);
  }
  double busy_visits = (double)(f->visits - v0) / 10.0;
  double busy_pushes = (double)(f->n_pushes - p0) / 10.0;
  print_message("e2ae media: idle keyed %.1f tick visits/s %.1f pushes/s; "
                "50 pps each way %.1f tick visits/s %.1f pushes/s\n",
                idle_visits, idle_pushes, busy_visits, busy_pushes);
  assert_true(wait_counter(f, "toCore", "packets", 500));
  assert_true(idle_visits == 0.0);
  assert_true(idle_pushes == 0.0);
  assert_true(busy_visits == 0.0);
  /* the two first packets, then one per second */
  assert_true(busy_pushes <= 1000.0 / DCMF_E2AE_PUSH_MS + 0.3);
  fx_free(f);
}

/* A flood on the core port is read a bounded number of datagrams per
 * loop turn (libuv's bound), so the worker's other work still runs; the
 * rest is read on the next turns. */
static void test_core_flood_bounded_per_turn(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .no_connect = 1};
  struct fx *f = fx_new(&o);
  rounds(f, 5); /* nothing happened: nothing pushed */
  assert_int_equal(f->n_pushes, 0);
  struct dgram d = rtp(CORE_SSRC, 1);
  for (int i = 0; i < 100; i++) {
    peer_send(&f->stranger, &f->core_rtp_addr, &d);
  }
  uv_run(&f->loop, UV_RUN_NOWAIT); /* one turn */
  /* the first drop of its reason is pushed at once */
  assert_int_equal(f->n_pushes, 1);
  assert_int_equal(counter(f, "drops", "unknownSource"), 1);
  /* the next push, one interval later, says what the turn read */
  f->now += DCMF_E2AE_PUSH_MS;
  dcmf_e2ae_service.worker_tick(f->svc_worker);
  assert_int_equal(f->n_pushes, 2);
  long long first = counter(f, "drops", "unknownSource");
  assert_true(first > 1);
  assert_true(first <= 32); /* libuv reads 32 per socket per turn */
  assert_true(wait_counter(f, "drops", "unknownSource", 100));
  fx_free(f);
}

/* An update with a new tls-id, from a WIC that starts a fresh stack (no
 * SSRC of its had been keyed before): the new DTLS association comes up,
 * the SRTP refusals before and after it add up and the profile stays
 * known; the same update moves the core address, which the service
 * follows. */
static void test_update_new_association_and_core_address(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1};
  struct fx *f = fx_up(&o);
  struct dgram a1 = rtp(WIC_SSRC, 1);
  f->wic.tamper_next = 1;
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a1), 0);
  assert_true(wait_counter(f, "drops", "srtpAuth", 1));

  /* the PATCH: a new tls-id, the core now at the stranger's address */
  struct dcmf_media_desc u;
  memset(&u, 0, sizeof(u));
  snprintf(u.key.context_id, sizeof(u.key.context_id), "ctx");
  snprintf(u.key.termination_id, sizeof(u.key.termination_id), "access");
  snprintf(u.key.media_id, sizeof(u.key.media_id), "audio");
  u.fd = -1;
  snprintf(u.local_ufrag, sizeof(u.local_ufrag), "sEsS");
  snprintf(u.local_pwd, sizeof(u.local_pwd), "0123456789abcdefghijkl");
  memcpy(&u.remote_addr, &f->wic.addr, sizeof(f->wic.addr));
  u.has_remote_addr = 1;
  u.remote_no_ice = 1;
  u.dtls_server = 1;
  u.assoc = DCMF_ASSOC_SRTP;
  snprintf(u.remote_tls_id, sizeof(u.remote_tls_id), "tls-b");
  assert_int_equal(
      dcmf_fingerprint_parse(f->wic.cert.fingerprint, &u.remote_fp), 0);
  struct dcmf_media_rtpleg *leg = calloc(1, sizeof(*leg));
  assert_non_null(leg);
  leg->rtp_fd = leg->rtcp_fd = -1; /* updates carry no sockets */
  leg->rtp_port = ntohs(f->core_rtp_addr.sin_port);
  set_addr(&leg->remote_rtp, &f->stranger.addr);
  set_addr(&leg->remote_rtcp, &f->stranger.addr);
  leg->rtcp_mux = 1;
  leg->core_avpf = 1;
  leg->access_avpf = 1;
  u.rtpleg = leg;
  dcmf_session_update(f->session, &u);
  wic_restart(&f->wic, &f->cert);
  assert_true(until(f, wic_up));

  /* the old core address is a stranger now, the new one is heard */
  struct dgram old = rtp(CORE_SSRC, 1), cur = rtp(CORE_SSRC, 2);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &old);
  peer_send(&f->stranger, &f->core_rtp_addr, &cur);
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  assert_true(same(&f->wic.rtp[0], &cur));
  assert_true(wait_counter(f, "drops", "unknownSource", 1));
  /* the WIC's media goes to the new address */
  struct dgram a2 = rtp(WIC_SSRC, 2);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a2), 0);
  assert_true(wait_n(f, stranger_has_n, 1));
  assert_true(same(&f->stranger.q[0], &a2));
  assert_int_equal(f->core_rtp.n, 0);
  /* refusals of both associations add up; the profile is known */
  struct dgram a3 = rtp(WIC_SSRC, 3);
  f->wic.tamper_next = 1;
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a3), 0);
  assert_true(wait_counter(f, "drops", "srtpAuth", 2));
  char p[64];
  assert_string_equal(profile(f, p, sizeof(p)), "SRTP_AEAD_AES_256_GCM");
  fx_free(f);
}

/* Whether a plain libsrtp2 receiver of |ssrc| at ROC |roc| opens the
 * SRTP datagram |wire|, keyed by the test from the exporter of the WIC's
 * DTLS association with RFC 5764 §4.2's layout (client key | server key
 * | client salt | server salt) for the sender's role: what the session's
 * engine did, seen from outside it. */
static int plain_opens_at(struct wic *w, int sender_is_server, uint32_t ssrc,
                          uint32_t roc, const struct dgram *wire) {
  return test_plain_srtp_opens_at(w->stack, !sender_is_server, ssrc, roc,
                                  wire->b, wire->len);
}

/* The PATCH of a new tls-id: an update of the media with tls-id |tls|,
 * the peer's fingerprint |fp| and our DTLS role |dtls_server|, the core
 * leg as it was (rtcp-mux, signalled). */
static void update_tls_id(struct fx *f, const char *tls, const char *fp,
                          int dtls_server) {
  struct dcmf_media_desc u;
  memset(&u, 0, sizeof(u));
  snprintf(u.key.context_id, sizeof(u.key.context_id), "ctx");
  snprintf(u.key.termination_id, sizeof(u.key.termination_id), "access");
  snprintf(u.key.media_id, sizeof(u.key.media_id), "audio");
  u.fd = -1;
  snprintf(u.local_ufrag, sizeof(u.local_ufrag), "sEsS");
  snprintf(u.local_pwd, sizeof(u.local_pwd), "0123456789abcdefghijkl");
  memcpy(&u.remote_addr, &f->wic.addr, sizeof(f->wic.addr));
  u.has_remote_addr = 1;
  u.remote_no_ice = 1;
  u.dtls_server = dtls_server;
  u.assoc = DCMF_ASSOC_SRTP;
  snprintf(u.remote_tls_id, sizeof(u.remote_tls_id), "%s", tls);
  assert_int_equal(dcmf_fingerprint_parse(fp, &u.remote_fp), 0);
  struct dcmf_media_rtpleg *leg = calloc(1, sizeof(*leg));
  assert_non_null(leg);
  leg->rtp_fd = leg->rtcp_fd = -1; /* updates carry no sockets */
  leg->rtp_port = ntohs(f->core_rtp_addr.sin_port);
  set_addr(&leg->remote_rtp, &f->core_rtp.addr);
  set_addr(&leg->remote_rtcp, &f->core_rtp.addr);
  leg->rtcp_mux = 1;
  leg->core_avpf = 1;
  leg->access_avpf = 1;
  u.rtpleg = leg;
  dcmf_session_update(f->session, &u);
}

static int session_rekeyed(struct fx *f) {
  return f->wic.up && atomic_load(&f->stats.dtls_ok) >= 2;
}

/* An update with a new tls-id for an SRTP media re-keys its association
 * rather than starting another: the WIC renews too (a new certificate,
 * now the DTLS server), the session becomes the DTLS client. Both
 * directions wrapped before (ROC 1). While the new handshake runs, media
 * goes both ways on the old keys; after it, the same SSRCs go on at ROC
 * 1 under the new keys (a new association would expect ROC 0 and refuse
 * them), and nothing was counted as before DTLS. Packets the WIC
 * protected with the old keys and that arrive after the switch pass
 * (srtpPrevious) until the session ends the fallback, not before its
 * fallback time (500 ms here) from the switch, and are refused
 * (srtpAuth) from then on. */
static void test_update_new_tls_id_rekeys(void **state) {
  (void)state;
  struct opts o = {
      .mux = 1, .signalled = 1, .core_avpf = 1, .fallback_ms = 500};
  struct fx *f = fx_up(&o);
  struct dgram a[4] = {rtp(WIC_SSRC, 65535), rtp(WIC_SSRC, 0), rtp(WIC_SSRC, 1),
                       rtp(WIC_SSRC, 3)};
  struct dgram c[4] = {rtp(CORE_SSRC, 65535), rtp(CORE_SSRC, 0),
                       rtp(CORE_SSRC, 1), rtp(CORE_SSRC, 2)};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a[i]), 0);
    peer_send(&f->core_rtp, &f->core_rtp_addr, &c[i]);
  }
  assert_true(wait_n(f, core_rtp_has_n, 2));
  assert_true(wait_n(f, wic_rtp_has_n, 2));

  /* the WIC's re-offer (new tls-id, new certificate, a=setup:passive),
   * then the PATCH: the session is the DTLS client now */
  wic_renew(&f->wic, 1, &f->cert);
  update_tls_id(f, "tls-b", f->wic.cert2.fingerprint, 0); /* its
                                                            ClientHello */

  /* Sent before either side read a handshake message: they can only go
   * through on the old keys. */
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a[2]), 0);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c[2]);
  struct dgram stale = rtp(WIC_SSRC, 2);
  f->wic.hold_next = 1;
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &stale), 0);
  assert_true(f->wic.held.len > stale.len); /* protected, not sent */
  struct dgram held = f->wic.held;
  /* probes: more old-key packets, each sent once after the switch */
  enum { PROBES = 60 };
  static struct dgram probe[PROBES];
  for (int i = 0; i < PROBES; i++) {
    struct dgram d = rtp(WIC_SSRC, (uint16_t)(20 + i));
    f->wic.hold_next = 1;
    assert_int_equal(wic_send(&f->wic, WIC_SSRC, &d), 0);
    probe[i] = f->wic.held;
  }
  assert_true(wait_n(f, core_rtp_has_n, 3));
  assert_true(same(&f->core_rtp.q[2], &a[2]));
  assert_true(wait_n(f, wic_rtp_has_n, 3));
  assert_true(same(&f->wic.rtp[2], &c[2]));

  /* The session's clock is the loop's (cached, whole ms) time: measure
   * with it, as wall time read here may lead it by up to a millisecond. */
  uv_update_time(&f->loop);
  uint64_t t0 = uv_now(&f->loop); /* before the switch */
  assert_true(until(f, session_rekeyed));
  assert_int_equal(atomic_load(&f->stats.dtls_failed), 0);
  /* the old keys still pass, as the previous keys */
  to_session_raw(f, held.b, held.len);
  assert_true(wait_n(f, core_rtp_has_n, 4));
  assert_true(same(&f->core_rtp.q[3], &stale));
  assert_true(wait_counter(f, "toCore", "srtpPrevious", 1));
  /* until the fallback ends: one probe at a time, each waited for (it
   * reaches the core or is refused), about 10 ms apart */
  size_t passed = 0;
  int refused_at = -1;
  uint64_t t_refused = 0;
  for (int i = 0; i < PROBES && refused_at < 0; i++) {
    to_session_raw(f, probe[i].b, probe[i].len);
    want_n = 5 + passed;
    for (int k = 0;
         k < 1000 && !core_rtp_has_n(f) && counter(f, "drops", "srtpAuth") < 1;
         k++) {
      round_trip(f);
    }
    if (core_rtp_has_n(f)) {
      passed++;
    } else {
      assert_true(wait_counter(f, "drops", "srtpAuth", 1));
      refused_at = i;
      uv_update_time(&f->loop);
      t_refused = uv_now(&f->loop);
    }
    for (int k = 0; k < 8; k++) {
      round_trip(f);
      struct timespec ts = {0, 3000000};
      nanosleep(&ts, NULL);
    }
  }
  assert_true(refused_at >= 0);
  assert_true(t_refused - t0 >= 500);
  assert_true(wait_counter(f, "toCore", "srtpPrevious", 1 + passed));
  /* and it does not come back */
  if (refused_at + 1 < PROBES) {
    const struct dgram *d = &probe[refused_at + 1];
    to_session_raw(f, d->b, d->len);
    assert_true(wait_counter(f, "drops", "srtpAuth", 2));
  }
  size_t at_core = 4 + passed;
  /* the same SSRCs, ROC 1, new keys, both ways */
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a[3]), 0);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c[3]);
  assert_true(wait_n(f, core_rtp_has_n, at_core + 1));
  if (at_core < QN) {
    assert_true(same(&f->core_rtp.q[at_core], &a[3]));
  }
  assert_true(wait_n(f, wic_rtp_has_n, 4));
  assert_true(same(&f->wic.rtp[3], &c[3]));
  /* on the wire, under the new association's keys: ROC 1, not 0 (the
   * session is the DTLS client, the WIC the server) */
  assert_true(plain_opens_at(&f->wic, 0, CORE_SSRC, 1, &f->wic.last_in));
  assert_false(plain_opens_at(&f->wic, 0, CORE_SSRC, 0, &f->wic.last_in));
  assert_true(plain_opens_at(&f->wic, 1, WIC_SSRC, 1, &f->wic.last_out));
  assert_false(plain_opens_at(&f->wic, 1, WIC_SSRC, 0, &f->wic.last_out));
  assert_true(wait_counter(f, "toAccess", "packets", 4));
  rounds(f, 10);
  assert_int_equal(f->core_rtp.n, at_core + 1);
  assert_int_equal(counter(f, "toCore", "packets"), (long long)at_core + 1);
  assert_int_equal(counter(f, "toCore", "srtpPrevious"), (long long)passed + 1);
  assert_int_equal(counter(f, "drops", "srtpAuth"),
                   refused_at + 1 < PROBES ? 2 : 1);
  assert_int_equal(counter(f, "drops", "srtpReplay"), 0);
  assert_int_equal(counter(f, "drops", "beforeDtls"), 0);
  assert_int_equal(atomic_load(&f->stats.dropped_other), 0);
  fx_free(f);
}

/* A renewal whose handshake never comes (the PATCH brought a new tls-id
 * and another certificate, and the peer never starts): the old keys are
 * trusted only for the session's renewal time, then they end and
 * DTLS_FAILURE is raised; nothing passes either way after that. */
static void test_renewal_times_out(void **state) {
  (void)state;
  struct opts o = {.mux = 1, .signalled = 1, .core_avpf = 1, .renewal_ms = 300};
  struct fx *f = fx_up(&o);
  struct dcmf_cert other;
  char err[256];
  assert_int_equal(dcmf_cert_generate(&other, err, sizeof(err)), 0);
  struct dgram a0 = rtp(WIC_SSRC, 10), c0 = rtp(CORE_SSRC, 10);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a0), 0);
  assert_true(wait_n(f, core_rtp_has_n, 1));

  /* The session's clock is the loop's (cached) time: measure with it. */
  uv_update_time(&f->loop);
  uint64_t t0 = uv_now(&f->loop);
  update_tls_id(f, "tls-b", other.fingerprint, 1);
  dcmf_cert_free(&other);
  /* at first the old keys hold, both ways */
  struct dgram a1 = rtp(WIC_SSRC, 11);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a1), 0);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c0);
  assert_true(wait_n(f, core_rtp_has_n, 2));
  assert_true(wait_n(f, wic_rtp_has_n, 1));
  assert_null(strstr(f->events, "DTLS_FAILURE"));

  assert_true(until_slow(f, dtls_failure));
  uv_update_time(&f->loop);
  assert_true(uv_now(&f->loop) - t0 >= 300);
  assert_int_equal(atomic_load(&f->stats.dtls_failed), 1);
  /* the old keys are done with: neither way passes */
  struct dgram a2 = rtp(WIC_SSRC, 12), c1 = rtp(CORE_SSRC, 11);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a2), 0);
  peer_send(&f->core_rtp, &f->core_rtp_addr, &c1);
  assert_true(wait_counter(f, "drops", "beforeDtls", 1));
  rounds(f, 20);
  assert_int_equal(f->core_rtp.n, 2);
  assert_int_equal(f->wic.n_rtp, 1);
  fx_free(f);
}

static int hello_limited(struct fx *f) {
  return atomic_load(&f->stats.dtls_hello_rate_limited) >= 1;
}

/* Spends the WIC's allowance of ClientHellos. */
static void spend_hellos(struct fx *f) {
  for (int i = 0;
       i < 100 && dcmf_ratelimit_allow(f->hello_limit,
                                       (const struct sockaddr *)&f->wic.addr,
                                       uv_now(&f->loop)) == 1;
       i++) {
  }
}

/* The ClientHello of a renewal the update asked for is expected: the
 * hello limit does not refuse it, even with the peer's allowance spent;
 * a hello nobody asked for (here the first handshake's) still counts. */
static void test_renewal_hello_not_limited(void **state) {
  (void)state;
  struct opts o = {.mux = 1,
                   .signalled = 1,
                   .core_avpf = 1,
                   .hello_rate = 1,
                   .no_connect = 1};
  struct fx *f = fx_new(&o);
  spend_hellos(f);
  wic_start(&f->wic, &f->session_addr, &f->cert);
  assert_true(until_slow(f, hello_limited));
  /* a retransmission, once the allowance grew again, gets through */
  assert_true(until_slow(f, wic_up));
  uint64_t limited = atomic_load(&f->stats.dtls_hello_rate_limited);
  assert_true(limited >= 1);
  spend_hellos(f);
  uint64_t t0 = uv_hrtime();
  /* a new certificate, the WIC the DTLS client again */
  wic_renew(&f->wic, 0, &f->cert);
  update_tls_id(f, "tls-b", f->wic.cert2.fingerprint, 1);
  assert_true(until(f, session_rekeyed));
  assert_int_equal(atomic_load(&f->stats.dtls_hello_rate_limited), limited);
  /* no retransmission was needed (OpenSSL's first is 1 s later) */
  assert_true(uv_hrtime() - t0 < 1000ull * 1000000ull);
  struct dgram a = rtp(WIC_SSRC, 1);
  assert_int_equal(wic_send(&f->wic, WIC_SSRC, &a), 0);
  assert_true(wait_n(f, core_rtp_has_n, 1));
  fx_free(f);
}

/* A ClientHello behind a record of a later epoch in one datagram
 * (RFC 6347 4.1 lets records share one) is still a ClientHello to the
 * hello limit: with the allowance spent it is refused and counted. */
static void test_hello_behind_another_record_limited(void **state) {
  (void)state;
  struct opts o = {.mux = 1,
                   .signalled = 1,
                   .core_avpf = 1,
                   .hello_rate = 1,
                   .no_connect = 1};
  struct fx *f = fx_new(&o);
  spend_hellos(f);
  uint8_t d[13 + 1 + 13 + 12] = {0};
  /* an application-data record of epoch 1, one byte */
  d[0] = 23, d[1] = 0xfe, d[2] = 0xfd, d[4] = 1, d[12] = 1;
  /* then an epoch-0 handshake record: a ClientHello's first bytes */
  uint8_t *h = d + 14;
  h[0] = 22, h[1] = 0xfe, h[2] = 0xff, h[12] = 12;
  h[13] = 1; /* handshake type client_hello */
  to_session_raw(f, d, sizeof(d));
  assert_true(until_slow(f, hello_limited));
  fx_free(f);
}

/* ---- a fake host: a data-channel media ---- */

static void fh_want_tick(struct dcmf_svc_host *h) {
  (void)h;
}
static uint64_t fh_now(struct dcmf_svc_host *h) {
  (void)h;
  return 0;
}
static int fh_emits;
static void fh_emit(struct dcmf_svc_host *h, const char *event,
                    const char *detail) {
  (void)h;
  (void)event;
  (void)detail;
  fh_emits++;
}

/* A data-channel media (SCTP, no core leg): the service takes none of
 * its flows, owns nothing and says nothing. */
static void test_dc_media_untouched(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct dcmf_log log = {.stream = stderr, .level = DCMF_LOG_ERROR};
  struct dcmf_svc_worker_env wenv = {.loop = &loop, .log = &log};
  void *worker = NULL;
  assert_int_equal(dcmf_e2ae_service.init(&worker, &wenv, NULL, NULL, 0), 0);
  struct dcmf_media_desc d;
  memset(&d, 0, sizeof(d));
  d.assoc = DCMF_ASSOC_SCTP;
  struct dcmf_svc_host host = {.desc = &d,
                               .log = &log,
                               .loop = &loop,
                               .name = "dc",
                               .emit = fh_emit,
                               .now = fh_now,
                               .want_tick = fh_want_tick};
  void *media = NULL;
  fh_emits = 0;
  assert_int_equal(dcmf_e2ae_service.attach(&media, worker, &host), 0);
  struct dcmf_svc_flow dc = {
      .kind = DCMF_ASSOC_SCTP, .id = 1000, .label = "", .protocol = "http"};
  struct dcmf_svc_flow ssrc = {
      .kind = DCMF_ASSOC_SRTP, .id = WIC_SSRC, .label = "", .protocol = ""};
  assert_int_equal(dcmf_e2ae_service.match(media, &dc), 0);
  assert_int_equal(dcmf_e2ae_service.match(media, &ssrc), 0);
  dcmf_e2ae_service.assoc_changed(media);
  dcmf_e2ae_service.worker_tick(worker);
  dcmf_e2ae_service.detach(media);
  assert_int_equal(fh_emits, 0);
  dcmf_e2ae_service.free(worker);
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0); /* no handle left */
  assert_int_equal(uv_loop_close(&loop), 0);
}

static int group_setup(void **state) {
  (void)state;
  return dcmf_srtp_lib_init() == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mux_both_ways),
      cmocka_unit_test(test_separate_rtcp_port_avp_core),
      cmocka_unit_test(test_unknown_source_dropped),
      cmocka_unit_test(test_latching),
      cmocka_unit_test(test_latching_waits_for_keys),
      cmocka_unit_test(test_latching_rtcp_same_host),
      cmocka_unit_test(test_feedback_stripped_sender_reread),
      cmocka_unit_test(test_access_malformed_counted),
      cmocka_unit_test(test_no_access_after_consent_lost),
      cmocka_unit_test(test_core_before_dtls),
      cmocka_unit_test(test_wrong_fingerprint_forwards_nothing),
      cmocka_unit_test(test_tampered_and_replayed_srtp),
      cmocka_unit_test(test_counters_pushed),
      cmocka_unit_test(test_idle_keyed_costs_nothing),
      cmocka_unit_test(test_cost_per_second),
      cmocka_unit_test(test_push_interval_configured),
      cmocka_unit_test(test_core_flood_bounded_per_turn),
      cmocka_unit_test(test_update_new_association_and_core_address),
      cmocka_unit_test(test_update_new_tls_id_rekeys),
      cmocka_unit_test(test_renewal_times_out),
      cmocka_unit_test(test_renewal_hello_not_limited),
      cmocka_unit_test(test_hello_behind_another_record_limited),
      cmocka_unit_test(test_dc_media_untouched),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
