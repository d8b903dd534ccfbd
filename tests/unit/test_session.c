/*
 * A session with services against a fake host side: the real session
 * (UDP socket on 127.0.0.1, ICE-lite, DTLS, SCTP, data channels) with
 * probe services registered by the test, and an in-memory phone (DTLS
 * client, SCTP, channels) whose datagrams go through one more loopback
 * socket. usrsctp's timers are ticked by hand and the services read a
 * fake clock. The probes check that a service sees attach, open,
 * message, writable, closed and detach in that order, the back-pressure
 * contract of host->send, and the dispatch rules of service.h. Two
 * relayed sessions with the DC relay service check that a twin deleted
 * while messages wait for it is unlinked at once (ASan-clean) and that
 * a new twin is linked again. A service's |tick| runs only after it
 * asked (host->want_tick), once per asking, and the sessions leave the
 * tick queue when they close. Association kinds registered by the test
 * (assoc.h) show that the session reaches the association only through
 * the kind's table: the SCTP kind wrapped to count its calls (an idle
 * association is never ticked), and a kind with a raw range beside
 * DTLS that echoes what it gets there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sctp_group.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "assoc.h"
#include "assoc_sctp.h"
#include "assoc_dtlsdata.h"
#include "assoc_srtp.h"
#include "cert.h"
#include "datachannel.h"
#include "dtls.h"
#include "errors.h"
#include "fingerprint.h"
#include "sctp.h"
#include "stun.h"
#include "service.h"
#include "session.h"
#include "svc_relay.h"
#include "tickq.h"
#include "worker.h"

#define FLOOD_MSGS 40      /* 40 x 60 kB: more than SCTP's 1 MiB buffer */
#define FLOOD_LEN 60000
#define LOG_CAP 4096

/* A service registered by the test: it writes what it sees to |log|. */
struct probe {
  const char *name;
  uint32_t fail_open_sid; /* open fails for this stream (0: never) */
  char log[LOG_CAP];
  struct dcmf_svc_host *host;
  int attached;
  uint64_t now_at_open; /* host->now when a flow opened */
  /* flooding: the next message to send and whether one was refused */
  int flooding, next, exhausted;
  int ticks;      /* tick calls */
  int ask_again;  /* ticks that ask for one more */
};

static void plog(struct probe *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void plog(struct probe *p, const char *fmt, ...) {
  size_t n = strlen(p->log);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->log + n, sizeof(p->log) - n, fmt, ap);
  va_end(ap);
  n = strlen(p->log);
  if (n + 1 < sizeof(p->log)) {
    p->log[n] = '|';
    p->log[n + 1] = '\0';
  }
}

static int probe_attach(void **media, void *worker,
                        struct dcmf_svc_host *host) {
  struct probe *p = worker;
  p->host = host;
  p->attached = 1;
  plog(p, "attach");
  *media = p;
  return 0;
}

static void probe_detach(void *media) {
  struct probe *p = media;
  p->attached = 0;
  plog(p, "detach");
}

static int probe_match(void *media, const struct dcmf_svc_flow *flow) {
  (void)media;
  return flow->kind == DCMF_ASSOC_SCTP && strcmp(flow->protocol, "probe") == 0;
}

static int probe_open(void *media, const struct dcmf_svc_flow *flow,
                      void **chan) {
  struct probe *p = media;
  if (flow->id == p->fail_open_sid) {
    plog(p, "refuse %u", flow->id);
    return DCMF_ERR_INVALID;
  }
  p->now_at_open = p->host->now(p->host);
  plog(p, "open %u", flow->id);
  *chan = p; /* any pointer: it must come back in message and closed */
  return 0;
}

/* Sends numbered FLOOD_LEN messages until all went or one is refused;
 * a refused one is sent again on writable (the host contract). */
static void flood(struct probe *p) {
  static uint8_t msg[FLOOD_LEN];
  while (p->next < FLOOD_MSGS) {
    memset(msg, 'x', sizeof(msg));
    char tag[8];
    snprintf(tag, sizeof(tag), "#%04d", p->next);
    memcpy(msg, tag, 5);
    int rv = p->host->send(p->host, 1000, 1, msg, sizeof(msg));
    if (rv == DCMF_ERR_EXHAUSTED) {
      if (!p->exhausted) {
        plog(p, "exhausted");
      }
      p->exhausted = 1;
      return;
    }
    assert_int_equal(rv, 0);
    p->next++;
  }
  if (p->flooding) {
    p->flooding = 0;
    plog(p, "flood done");
  }
}

static void probe_message(void *media, void *chan,
                          const struct dcmf_svc_flow *flow, int binary,
                          const uint8_t *data, size_t len) {
  struct probe *p = media;
  assert_ptr_equal(chan, p);
  plog(p, "msg %u %.*s", flow->id, (int)len, (const char *)data);
  (void)binary;
  if (len == 5 && memcmp(data, "flood", 5) == 0) {
    p->flooding = 1;
    flood(p);
  }
}

static void probe_writable(void *media) {
  struct probe *p = media;
  if (p->flooding) {
    plog(p, "writable");
    flood(p);
  }
}

static void probe_closed(void *media, void *chan,
                         const struct dcmf_svc_flow *flow) {
  struct probe *p = media;
  assert_ptr_equal(chan, p);
  plog(p, "closed %u", flow->id);
}

static void probe_tick(void *media) {
  struct probe *p = media;
  p->ticks++;
  if (p->ask_again > 0) {
    p->ask_again--;
    p->host->want_tick(p->host);
  }
}

static const struct dcmf_service probe_service = {
    .name = "probe",
    .attach = probe_attach,
    .detach = probe_detach,
    .match = probe_match,
    .open = probe_open,
    .message = probe_message,
    .writable = probe_writable,
    .closed = probe_closed,
    .tick = probe_tick,
};

/* ---- the phone ------------------------------------------------------------ */

struct phone {
  int up; /* created */
  struct dcmf_cert cert;
  struct dcmf_dtls_ctx ctx;
  struct dcmf_dtls *dtls;
  struct dcmf_sctp *sctp;
  struct dcmf_dc *dc;
  int fd;
  struct sockaddr_in addr; /* its own socket */
  struct sockaddr_in to;   /* the session's socket */
  int open[2];             /* streams 1000 and 1001 are open here */
  int inband_closed;       /* the in-band channel was refused and closed */
  int closed[2];           /* streams 1000 and 1001 were closed */
  int received, in_order;
  char text[LOG_CAP]; /* short messages received, '|' after each */
  int raw_received;   /* datagrams of 128-191 (beside DTLS) received */
  int stun_received;  /* datagrams of 0-3 (STUN) received */
};

static void phone_out(void *user, const uint8_t *data, size_t len) {
  struct phone *ph = user;
  /* Loopback UDP: a datagram that does not leave is lost, as on a wire. */
  (void)sendto(ph->fd, data, len, 0, (const struct sockaddr *)&ph->to,
               sizeof(ph->to));
}

static void phone_dtls_data(void *user, const uint8_t *data, size_t len) {
  struct phone *ph = user;
  dcmf_sctp_input(ph->sctp, data, len);
}

static void phone_dtls_state(void *user, enum dcmf_dtls_state st,
                             const char *why) {
  struct phone *ph = user;
  (void)why;
  if (st == DCMF_DTLS_CONNECTED) {
    assert_int_equal(dcmf_sctp_connect(ph->sctp), 0);
  }
}

static void phone_sctp_out(void *user, const uint8_t *data, size_t len) {
  struct phone *ph = user;
  dcmf_dtls_send(ph->dtls, data, len);
}

static void phone_sctp_msg(void *user, uint16_t sid, uint32_t ppid,
                           const uint8_t *data, size_t len) {
  struct phone *ph = user;
  dcmf_dc_on_sctp_message(ph->dc, sid, ppid, data, len);
}

static void phone_sctp_reset(void *user, uint16_t sid) {
  struct phone *ph = user;
  dcmf_dc_on_sctp_reset(ph->dc, sid);
}

static void phone_sctp_state(void *user, enum dcmf_sctp_state st) {
  struct phone *ph = user;
  dcmf_dc_on_sctp_state(ph->dc, st);
}

static void phone_sctp_writable(void *user) {
  struct phone *ph = user;
  dcmf_dc_on_sctp_writable(ph->dc);
}

static int phone_ch_open(void *user, struct dcmf_dc_channel *ch) {
  struct phone *ph = user;
  if (ch->sid == 1000 || ch->sid == 1001) {
    ph->open[ch->sid - 1000] = 1;
  }
  return 0;
}

static void phone_ch_message(void *user, struct dcmf_dc_channel *ch,
                             int binary, const uint8_t *data, size_t len) {
  struct phone *ph = user;
  (void)binary;
  char want[8];
  snprintf(want, sizeof(want), "#%04d", ph->received);
  if (ch->sid == 1000 && len == FLOOD_LEN && memcmp(data, want, 5) == 0) {
    ph->in_order++;
  }
  if (len < 64) {
    size_t n = strlen(ph->text);
    snprintf(ph->text + n, sizeof(ph->text) - n, "%.*s|", (int)len,
             (const char *)data);
  }
  ph->received++;
}

static void phone_ch_closed(void *user, struct dcmf_dc_channel *ch) {
  struct phone *ph = user;
  if (ch->sid == 3) {
    ph->inband_closed = 1;
  }
  if (ch->sid == 1000 || ch->sid == 1001) {
    ph->closed[ch->sid - 1000] = 1;
  }
}

static const struct dcmf_dtls_callbacks phone_dtls_cbs = {
    phone_out, phone_dtls_data, phone_dtls_state, NULL};
static const struct dcmf_sctp_callbacks phone_sctp_cbs = {
    phone_sctp_out, phone_sctp_msg, phone_sctp_reset, phone_sctp_state,
    phone_sctp_writable, NULL /* drained after every tick instead */,
    NULL /* no bundling: every message leaves at once */};
static const struct dcmf_dc_callbacks phone_dc_cbs = {
    phone_ch_open, phone_ch_message, phone_ch_closed};

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

static void cert_ctx(struct dcmf_cert *c, struct dcmf_dtls_ctx *ctx) {
  char err[256];
  assert_int_equal(dcmf_cert_generate(c, err, sizeof(err)), 0);
  assert_int_equal(dcmf_dtls_ctx_init(ctx, c->x509, c->pkey, 1200), 0);
}

/* A phone with negotiated channels 1000 and 1001 of subprotocol |proto|;
 * it starts DTLS toward |to| (certificate |peer_fp|) in phone_start. */
static void phone_new(struct phone *ph, const char *proto) {
  memset(ph, 0, sizeof(*ph));
  ph->up = 1;
  cert_ctx(&ph->cert, &ph->ctx);
  ph->fd = udp_socket(&ph->addr);
  assert_int_equal(dcmf_dtls_new(&ph->dtls, &ph->ctx, 0, &phone_dtls_cbs, ph),
                   0);
  struct dcmf_sctp_settings ss = {.local_port = 5000,
                                  .remote_port = 5000,
                                  .max_streams = 2048,
                                  .max_message_size = 65536,
                                  .send_buffer = 1 << 20};
  assert_int_equal(dcmf_sctp_new(&ph->sctp, &ss, &phone_sctp_cbs, ph), 0);
  assert_int_equal(dcmf_dc_new(&ph->dc, ph->sctp, &phone_dc_cbs, ph), 0);
  assert_int_equal(dcmf_dc_add_negotiated(ph->dc, 1000, proto, NULL, 256), 0);
  assert_int_equal(dcmf_dc_add_negotiated(ph->dc, 1001, proto, NULL, 256), 0);
}

static void phone_start(struct phone *ph, const struct sockaddr_in *to,
                        const struct dcmf_cert *peer) {
  ph->to = *to;
  struct dcmf_fingerprint_set fp;
  memset(&fp, 0, sizeof(fp));
  assert_int_equal(dcmf_fingerprint_parse(peer->fingerprint, &fp), 0);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(ph->dtls, &fp), 0);
  dcmf_dtls_start(ph->dtls);
}

static void phone_free(struct phone *ph) {
  if (!ph->up) {
    return;
  }
  dcmf_dc_del(ph->dc);
  dcmf_sctp_del(ph->sctp);
  dcmf_dtls_del(ph->dtls);
  close(ph->fd);
  dcmf_dtls_ctx_free(&ph->ctx);
  dcmf_cert_free(&ph->cert);
  ph->up = 0;
}

/* ---- the fixture ---------------------------------------------------------- */

#define N 2 /* sessions (and phones) at most */

struct fx {
  uv_loop_t loop;
  struct dcmf_log log;
  struct dcmf_media_stats stats;
  struct dcmf_cert cert; /* the sessions' */
  struct dcmf_dtls_ctx ctx;
  uint8_t rx[65536];
  uint64_t now; /* the services' fake clock */
  struct dcmf_tickq ticks; /* the sessions that asked for a tick */
  /* The sessions that held output back (SCTP bundling, DTLS coalescing),
   * flushed at the end of each turn as the worker does. */
  struct dcmf_tickq flushes;
  /* env.bundle_messages and env.coalesce_records of the sessions started
   * from now on; fx_new sets dcmfd's defaults (bundling only). */
  int bundle_messages, coalesce_records;
  struct probe first, second;
  void *relay_worker;
  struct dcmf_session_service services[2];
  size_t n_services;
  struct dcmf_session *session[N];
  struct sockaddr_in session_addr[N];
  struct phone phone[N];
  char events[LOG_CAP]; /* what the sessions raised toward control */
  /* The sessions' association kinds (env.assoc_kinds); NULL: built-in. */
  const struct dcmf_assoc_ops *const *kinds;
  /* Sessions started from now on wait for the phone's ICE checks
   * (remote ufrag PHONE_UFRAG) instead of taking the signalled address. */
  int ice_checks;
};

static uint64_t fake_now(void *user) {
  struct fx *f = user;
  return f->now;
}

static void on_event(void *user, const struct dcmf_media_key *key,
                     const char *event, const char *detail) {
  struct fx *f = user;
  (void)key;
  (void)detail;
  size_t n = strlen(f->events);
  snprintf(f->events + n, sizeof(f->events) - n, "%s|", event);
}

static void set_key(struct dcmf_media_key *k, const char *media) {
  memset(k, 0, sizeof(*k));
  snprintf(k->context_id, sizeof(k->context_id), "ctx");
  snprintf(k->termination_id, sizeof(k->termination_id), "term-%s", media);
  snprintf(k->media_id, sizeof(k->media_id), "%s", media);
}

/* The sessions' ICE credentials (desc_fill) and the phone's ufrag. */
#define SESSION_UFRAG "sEsS"
#define SESSION_PWD "0123456789abcdefghijkl"
#define PHONE_UFRAG "pHoN"

/* The description of session |i| (media |name|, relayed to |twin| unless
 * NULL) for phone |i|, which must exist, with streams 1000 and 1001 of
 * |proto|; |d->fd| is a new socket when |fd| is set, else -1. */
static void desc_fill(struct fx *f, size_t i, const char *name,
                      const char *twin, const char *proto, int fd,
                      struct dcmf_media_desc *dp) {
  struct dcmf_media_desc d;
  memset(&d, 0, sizeof(d));
  set_key(&d.key, name);
  if (twin != NULL) {
    d.has_relay = 1;
    set_key(&d.relay, twin);
  }
  d.fd = fd ? udp_socket(&f->session_addr[i]) : -1;
  snprintf(d.local_ufrag, sizeof(d.local_ufrag), "sEsS");
  snprintf(d.local_pwd, sizeof(d.local_pwd), "0123456789abcdefghijkl");
  memcpy(&d.remote_addr, &f->phone[i].addr, sizeof(f->phone[i].addr));
  d.has_remote_addr = 1;
  if (f->ice_checks) {
    snprintf(d.remote_ufrag, sizeof(d.remote_ufrag), PHONE_UFRAG);
  } else {
    d.remote_no_ice = 1; /* DTLS straight from the signalled address */
  }
  d.dtls_server = 1;
  assert_int_equal(
      dcmf_fingerprint_parse(f->phone[i].cert.fingerprint, &d.remote_fp), 0);
  d.local_sctp_port = d.remote_sctp_port = 5000;
  d.max_message_size = 65536;
  d.n_streams = 2;
  d.streams = calloc(2, sizeof(*d.streams));
  d.streams[0] = (struct dcmf_media_stream){.sid = 1000, .priority = 256};
  d.streams[1] = (struct dcmf_media_stream){.sid = 1001, .priority = 256};
  snprintf(d.streams[0].protocol, sizeof(d.streams[0].protocol), "%s", proto);
  snprintf(d.streams[1].protocol, sizeof(d.streams[1].protocol), "%s", proto);
  *dp = d;
}

/* Starts session |i| (see desc_fill) with association kind |kind|. */
static void session_start_kind(struct fx *f, size_t i, const char *name,
                               const char *twin, const char *proto,
                               enum dcmf_assoc_kind kind) {
  struct dcmf_media_desc d;
  desc_fill(f, i, name, twin, proto, 1, &d);
  d.assoc = kind;
  struct dcmf_session_env env = {.loop = &f->loop,
                                 .dtls_ctx = &f->ctx,
                                 .log = &f->log,
                                 .stats = &f->stats,
                                 .max_streams = 2048,
                                 .rx_scratch = f->rx,
                                 .rx_scratch_len = sizeof(f->rx),
                                 .services = f->services,
                                 .n_services = f->n_services,
                                 .emit = on_event,
                                 .emit_user = f,
                                 .now = fake_now,
                                 .now_user = f,
                                 .ticks = &f->ticks,
                                 .flushes = &f->flushes,
                                 .bundle_messages = f->bundle_messages,
                                 .coalesce_records = f->coalesce_records,
                                 .assoc_kinds = f->kinds};
  assert_int_equal(dcmf_session_new(&f->session[i], &env, &d), 0);
}

static void session_start(struct fx *f, size_t i, const char *name,
                          const char *twin, const char *proto) {
  session_start_kind(f, i, name, twin, proto, DCMF_ASSOC_SCTP);
}

static void session_end(struct fx *f, size_t i) {
  if (f->session[i] != NULL) {
    dcmf_session_close(f->session[i]);
    f->session[i] = NULL;
  }
}

/* One round: the sessions' loop, the phones' sockets, usrsctp's timers
 * and then the sessions that asked for the tick (worker.c). */
static void round_trip(struct fx *f) {
  uv_run(&f->loop, UV_RUN_NOWAIT);
  dcmf_tickq_run(&f->flushes); /* the end of the turn */
  uint8_t buf[65536];
  for (size_t p = 0; p < N; p++) {
    for (int i = 0; f->phone[p].up && i < 256; i++) {
      ssize_t n = recv(f->phone[p].fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) {
        break;
      }
      if (buf[0] >= 128 && buf[0] <= 191) { /* beside DTLS (RFC 7983) */
        f->phone[p].raw_received++;
        continue;
      }
      if (buf[0] <= 3) { /* a STUN answer (RFC 7983) */
        f->phone[p].stun_received++;
        continue;
      }
      dcmf_dtls_recv(f->phone[p].dtls, buf, (size_t)n);
    }
  }
  dcmf_sctp_stack_tick(10);
  for (size_t p = 0; p < N; p++) {
    if (f->phone[p].up) {
      dcmf_sctp_drain(f->phone[p].sctp);
    }
  }
  dcmf_tickq_run(&f->ticks);
  dcmf_tickq_run(&f->flushes);
  f->now += 10;
}

/* Runs rounds until |cond| holds: at most 20000 rounds and 20 s. */
static int until(struct fx *f, int (*cond)(struct fx *f)) {
  uint64_t deadline = uv_hrtime() + 20ull * 1000000000ull;
  for (int i = 0; i < 20000 && uv_hrtime() < deadline; i++) {
    if (cond(f)) {
      return 1;
    }
    round_trip(f);
  }
  return cond(f);
}

static int both_open(struct fx *f) {
  return f->phone[0].open[0] && f->phone[0].open[1] &&
         strstr(f->first.log, "open 1000") != NULL &&
         strstr(f->second.log, "open 1001") != NULL;
}

static int got_hello(struct fx *f) {
  return strstr(f->first.log, "msg 1000 hello") != NULL;
}

static int flood_arrived(struct fx *f) {
  return f->phone[0].received == FLOOD_MSGS;
}

static int closed_1000(struct fx *f) {
  return strstr(f->first.log, "closed 1000") != NULL;
}

static int inband_refused(struct fx *f) { return f->phone[0].inband_closed; }

static struct fx *fx_new(void) {
  struct fx *f = calloc(1, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->log = (struct dcmf_log){.stream = stderr, .level = DCMF_LOG_ERROR};
  f->now = 5000;
  dcmf_tickq_init(&f->ticks);
  dcmf_tickq_init(&f->flushes);
  f->bundle_messages = 1;
  cert_ctx(&f->cert, &f->ctx);
  return f;
}

/* |f| with two probe services that both match "probe"; the first
 * refuses stream 1001, which the second then gets. One session, its
 * phone connected, both channels open: the fixture in |state|. */
static int probes_connected(void **state, struct fx *f) {
  f->first = (struct probe){.name = "first", .fail_open_sid = 1001};
  f->second = (struct probe){.name = "second"};
  f->services[0] = (struct dcmf_session_service){&probe_service, &f->first};
  f->services[1] = (struct dcmf_session_service){&probe_service, &f->second};
  f->n_services = 2;
  phone_new(&f->phone[0], "probe");
  session_start(f, 0, "media", NULL, "probe");
  phone_start(&f->phone[0], &f->session_addr[0], &f->cert);
  assert_true(until(f, both_open));
  *state = f;
  return 0;
}

/* The probes' fixture with |bundle| and |coalesce| as
 * env.bundle_messages and env.coalesce_records. */
static int setup_output(void **state, int bundle, int coalesce) {
  struct fx *f = fx_new();
  f->bundle_messages = bundle;
  f->coalesce_records = coalesce;
  return probes_connected(state, f);
}

/* dcmfd's defaults: messages bundled, records not coalesced. */
static int setup(void **state) {
  return setup_output(state, 1, 0);
}

/* `--sctp-bundle 0 --dtls-coalesce 1`: the DTLS layer alone gathers. */
static int setup_coalescing(void **state) {
  return setup_output(state, 0, 1);
}

/* The DC relay service (svc_relay.h) alone: two relayed sessions are
 * started by the test. */
static int setup_relay(void **state) {
  struct fx *f = fx_new();
  struct dcmf_svc_worker_env env = {.loop = &f->loop,
                                    .log = &f->log,
                                    .stats = &f->stats};
  assert_int_equal(
      dcmf_relay_service.init(&f->relay_worker, &env, NULL, NULL, 0), 0);
  f->services[0] =
      (struct dcmf_session_service){&dcmf_relay_service, f->relay_worker};
  f->n_services = 1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  for (size_t i = 0; i < N; i++) {
    session_end(f, i);
  }
  assert_int_equal(f->ticks.count, 0); /* closed sessions left the queue */
  assert_int_equal(f->flushes.count, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* the sessions' handles close */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  for (size_t i = 0; i < N; i++) {
    phone_free(&f->phone[i]);
  }
  if (f->relay_worker != NULL) {
    dcmf_relay_service.free(f->relay_worker);
  }
  dcmf_dtls_ctx_free(&f->ctx);
  dcmf_cert_free(&f->cert);
  free(f);
  return 0;
}

/* Where |what| first appears in |log|; fails the test if it does not. */
static size_t at(const char *log, const char *what) {
  const char *p = strstr(log, what);
  if (p == NULL) {
    fail_msg("\"%s\" not in \"%s\"", what, log);
  }
  return (size_t)(p - log);
}

static void test_service_sees_its_life_in_order(void **state) {
  struct fx *f = *state;
  struct phone *ph = &f->phone[0];
  /* The first service was asked for 1001, refused it, and the second
   * got it: each open flow has exactly one service. */
  assert_non_null(strstr(f->first.log, "refuse 1001"));
  assert_null(strstr(f->second.log, "open 1000"));
  assert_true(f->first.now_at_open >= 5000); /* the fake clock, not uv's */
  assert_true(f->first.now_at_open < 5000 + 10 * 20000);

  assert_int_equal(dcmf_dc_send(ph->dc, 1000, 0, (const uint8_t *)"hello", 5),
                   0);
  assert_true(until(f, got_hello));
  assert_null(strstr(f->second.log, "hello")); /* only its service */

  /* Back-pressure: the probe sends 2.4 MB into a 1 MiB buffer at once,
   * gets DCMF_ERR_EXHAUSTED, and goes on from writable; every message
   * arrives once and in order. */
  assert_int_equal(dcmf_dc_send(ph->dc, 1000, 0, (const uint8_t *)"flood", 5),
                   0);
  assert_true(until(f, flood_arrived));
  assert_int_equal(ph->in_order, FLOOD_MSGS);
  assert_true(f->first.exhausted);
  assert_non_null(strstr(f->first.log, "flood done"));

  /* The phone closes 1000: only its service hears. */
  dcmf_dc_close(ph->dc, 1000);
  assert_true(until(f, closed_1000));
  assert_null(strstr(f->second.log, "closed 1000"));

  session_end(f, 0);
  /* 1001 was still open: closed with the association, before detach. */
  const char *l1 = f->first.log, *l2 = f->second.log;
  assert_true(at(l1, "attach") < at(l1, "open 1000"));
  assert_true(at(l1, "open 1000") < at(l1, "msg 1000 hello"));
  assert_true(at(l1, "msg 1000 hello") < at(l1, "msg 1000 flood"));
  assert_true(at(l1, "msg 1000 flood") < at(l1, "exhausted"));
  assert_true(at(l1, "exhausted") < at(l1, "writable"));
  assert_true(at(l1, "writable") < at(l1, "flood done"));
  assert_true(at(l1, "flood done") < at(l1, "closed 1000"));
  assert_true(at(l1, "closed 1000") < at(l1, "detach"));
  assert_true(at(l2, "attach") < at(l2, "open 1001"));
  assert_true(at(l2, "open 1001") < at(l2, "closed 1001"));
  assert_true(at(l2, "closed 1001") < at(l2, "detach"));
  assert_false(f->first.attached);
  assert_false(f->second.attached);
  /* The control plane heard of the channels. */
  assert_true(at(f->events, "DC_OPEN") < at(f->events, "DC_CLOSE"));
  assert_int_equal(atomic_load(&f->stats.messages_in), 2);
  assert_true(atomic_load(&f->stats.messages_out) >= FLOOD_MSGS);
}

static int got_five(struct fx *f) { return f->phone[0].received >= 5; }

/* A quiet association (the set-up's SACKs settled, the phone's socket
 * drained, nothing waiting for the end of a turn), then five one-byte
 * messages the first service sends on stream 1000 within one turn.
 * Returns what the phone had received before them. */
static int send_five_in_one_turn(struct fx *f) {
  struct phone *ph = &f->phone[0];
  for (int i = 0; i < 20; i++) {
    round_trip(f);
  }
  uint8_t buf[65536];
  for (int i = 0; i < 1000 && recv(ph->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
       i++) {
  }
  assert_int_equal(f->flushes.count, 0);
  int received0 = ph->received;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(
        f->first.host->send(f->first.host, 1000, 1, (const uint8_t *)"m", 1),
        0);
  }
  return received0;
}

/* The phone reads the datagram the flush sent (|len| bytes of |dgram|)
 * and, in the rounds after, all five messages arrive. */
static void phone_gets_five(struct fx *f, const uint8_t *dgram, size_t len,
                            int received0) {
  struct phone *ph = &f->phone[0];
  dcmf_dtls_recv(ph->dtls, dgram, len);
  ph->received -= received0;
  assert_true(until(f, got_five));
}

/* What a turn produces waits for the end of the turn, and then leaves in
 * one datagram: five messages a service sends (five SCTP packets, five
 * DTLS records) reach the phone's socket as one datagram, only once the
 * worker flushes. */
static void test_turn_output_leaves_in_one_datagram(void **state) {
  struct fx *f = *state;
  struct phone *ph = &f->phone[0];
  uint8_t buf[65536];
  int received0 = send_five_in_one_turn(f);
  /* Gathered, not sent: the session waits in the worker's queue. */
  assert_int_equal(f->flushes.count, 1);
  assert_true(recv(ph->fd, buf, sizeof(buf), MSG_DONTWAIT) < 0);
  dcmf_tickq_run(&f->flushes);
  ssize_t n = recv(ph->fd, buf, sizeof(buf), MSG_DONTWAIT);
  assert_true(n > 0 && n <= 1200);
  assert_true(recv(ph->fd, buf + n, sizeof(buf) - (size_t)n, MSG_DONTWAIT) < 0);
  /* Five records in it (type 23, application data), back to back. */
  size_t off = 0;
  int records = 0;
  while (off + 13 <= (size_t)n) {
    assert_int_equal(buf[off], 23);
    off += 13 + ((size_t)buf[off + 11] << 8 | buf[off + 12]);
    records++;
  }
  assert_int_equal(off, (size_t)n);
  assert_int_equal(records, 5);
  phone_gets_five(f, buf, (size_t)n, received0);
}

/* Bundling (dcmfd's default): five messages a service sends in one turn
 * wait for the end of the turn and leave as one SCTP packet, so one
 * record in one datagram, and the phone gets all five. */
static void test_turn_messages_share_one_packet(void **state) {
  struct fx *f = *state;
  struct phone *ph = &f->phone[0];
  uint8_t buf[65536];
  int received0 = send_five_in_one_turn(f);
  /* Nothing was in flight, so usrsctp may let the first go at once; the
   * others wait in the worker's queue for the end of the turn. */
  assert_int_equal(f->flushes.count, 1);
  ssize_t early = recv(ph->fd, buf, sizeof(buf), MSG_DONTWAIT);
  if (early > 0) {
    dcmf_dtls_recv(ph->dtls, buf, (size_t)early);
  }
  dcmf_tickq_run(&f->flushes);
  ssize_t n = recv(ph->fd, buf, sizeof(buf), MSG_DONTWAIT);
  assert_true(n > 0 && n <= 1200);
  assert_true(recv(ph->fd, buf + n, sizeof(buf) - (size_t)n, MSG_DONTWAIT) < 0);
  /* One record (type 23, application data): one SCTP packet. */
  assert_int_equal(buf[0], 23);
  assert_int_equal(13 + ((size_t)buf[11] << 8 | buf[12]), (size_t)n);
  phone_gets_five(f, buf, (size_t)n, received0);
}

static void test_inband_channel_nobody_serves_is_refused(void **state) {
  struct fx *f = *state;
  struct phone *ph = &f->phone[0];
  assert_int_equal(dcmf_dc_open(ph->dc, 3, "chat", "chat", NULL, 256), 0);
  assert_true(until(f, inband_refused));
  assert_null(strstr(f->first.log, "3"));
  assert_null(strstr(f->second.log, "3"));
  /* The refused channel did not disturb the others. */
  assert_int_equal(dcmf_dc_send(ph->dc, 1000, 0, (const uint8_t *)"hello", 5),
                   0);
  assert_true(until(f, got_hello));
}

/* Runs |n| rounds. */
static void rounds(struct fx *f, int n) {
  for (int i = 0; i < n; i++) {
    round_trip(f);
  }
}

static void test_tick_only_when_asked(void **state) {
  struct fx *f = *state;
  /* Connected and quiet: no service asked, none is ticked. */
  rounds(f, 50);
  assert_int_equal(f->first.ticks, 0);
  assert_int_equal(f->second.ticks, 0);
  /* One asking (twice before the tick) is one tick, of that service. */
  f->first.host->want_tick(f->first.host);
  f->first.host->want_tick(f->first.host);
  rounds(f, 20);
  assert_int_equal(f->first.ticks, 1);
  assert_int_equal(f->second.ticks, 0);
  /* A tick that asks again is ticked again, until it stops asking. */
  f->second.ask_again = 3;
  f->second.host->want_tick(f->second.host);
  rounds(f, 20);
  assert_int_equal(f->second.ticks, 4);
  assert_int_equal(f->first.ticks, 1);
}

/* ---- the DC relay between two real sessions ------------------------------ */

static int a_open(struct fx *f) { return f->phone[0].open[0]; }

static int b_open(struct fx *f) { return f->phone[1].open[0]; }

static int two_queued(struct fx *f) {
  return atomic_load(&f->stats.relay_queued_messages) == 2;
}

static int one_without_twin(struct fx *f) {
  return atomic_load(&f->stats.relay_dropped_no_twin) == 1;
}

static int b_closed(struct fx *f) {
  return f->phone[1].closed[0] && f->phone[1].closed[1];
}

static int b_got_four(struct fx *f) {
  return strstr(f->phone[1].text, "m4|") != NULL;
}

static void say(struct phone *ph, const char *text) {
  assert_int_equal(dcmf_dc_send(ph->dc, 1000, 0, (const uint8_t *)text,
                                strlen(text)),
                   0);
}

static void test_relay_twin_removed_mid_relay(void **state) {
  struct fx *f = *state;
  /* a and b name each other; b's phone has not connected, so what a's
   * phone says waits in b's queue. */
  phone_new(&f->phone[0], "chat");
  phone_new(&f->phone[1], "chat");
  session_start(f, 0, "a", "b", "chat");
  session_start(f, 1, "b", "a", "chat");
  phone_start(&f->phone[0], &f->session_addr[0], &f->cert);
  assert_true(until(f, a_open));
  say(&f->phone[0], "m1");
  say(&f->phone[0], "m2");
  assert_true(until(f, two_queued));
  assert_int_equal(atomic_load(&f->stats.relay_queued_bytes), 4);

  /* b is deleted with the messages waiting for it: its queue goes, the
   * gauges drop, and a no longer points at it. */
  session_end(f, 1);
  assert_int_equal(atomic_load(&f->stats.relay_queued_messages), 0);
  assert_int_equal(atomic_load(&f->stats.relay_queued_bytes), 0);
  say(&f->phone[0], "m3");
  assert_true(until(f, one_without_twin));

  /* b comes back (a new session) and its phone connects: a's phone
   * reaches it through the new link, and only what was said after. */
  phone_free(&f->phone[1]);
  phone_new(&f->phone[1], "chat");
  session_start(f, 1, "b", "a", "chat");
  phone_start(&f->phone[1], &f->session_addr[1], &f->cert);
  assert_true(until(f, b_open));
  say(&f->phone[0], "m4");
  assert_true(until(f, b_got_four));
  assert_string_equal(f->phone[1].text, "m4|");
  assert_int_equal(atomic_load(&f->stats.relay_messages), 1);

  /* a is deleted while b's phone is still talking: a's channels going
   * away close their twins on b (RFC 8831 6.7) while a is torn down,
   * and what b's phone said last goes nowhere (its channel is closed
   * by then), not to the freed session. */
  say(&f->phone[1], "m5");
  session_end(f, 0);
  assert_true(until(f, b_closed));
  assert_int_equal(atomic_load(&f->stats.relay_messages), 1);
  assert_null(strstr(f->phone[0].text, "m5"));
}

/* A media asking for the RSA identity (T.38) of a worker that has none:
 * the session does not start, its socket is closed, and no service
 * stays attached. */
static void test_missing_rsa_identity_is_refused(void **state) {
  struct fx *f = *state;
  struct dcmf_media_desc d;
  memset(&d, 0, sizeof(d));
  set_key(&d.key, "srtp");
  struct sockaddr_in addr;
  int fd = udp_socket(&addr);
  d.fd = fd;
  snprintf(d.local_ufrag, sizeof(d.local_ufrag), "sEsS");
  snprintf(d.local_pwd, sizeof(d.local_pwd), "0123456789abcdefghijkl");
  d.assoc = DCMF_ASSOC_DTLS_DATA;
  d.dtls_rsa = 1;
  struct dcmf_session_env env = {.loop = &f->loop,
                                 .dtls_ctx = &f->ctx,
                                 .log = &f->log,
                                 .stats = &f->stats,
                                 .max_streams = 2048,
                                 .rx_scratch = f->rx,
                                 .rx_scratch_len = sizeof(f->rx),
                                 .services = f->services,
                                 .n_services = f->n_services,
                                 .emit = on_event,
                                 .emit_user = f};
  struct dcmf_session *s = NULL;
  assert_int_equal(dcmf_session_new(&s, &env, &d), DCMF_ERR_INVALID);
  assert_null(s);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* its handles close */
  assert_int_equal(fcntl(fd, F_GETFD), -1);
  assert_false(f->first.attached);
  assert_false(f->second.attached);
}

/* An SRTP-kind media with a core leg and no service to take its sockets:
 * an UPDATE (whose leg has no descriptors) keeps the running leg's
 * sockets open, and closing the session closes them. New local ICE
 * credentials in the update are taken. */
static void test_srtp_update_keeps_the_leg(void **state) {
  struct fx *f = *state;
  struct dcmf_media_desc d;
  memset(&d, 0, sizeof(d));
  set_key(&d.key, "e2ae");
  struct sockaddr_in addr, core;
  d.fd = udp_socket(&addr);
  snprintf(d.local_ufrag, sizeof(d.local_ufrag), "sEsS");
  snprintf(d.local_pwd, sizeof(d.local_pwd), "0123456789abcdefghijkl");
  d.assoc = DCMF_ASSOC_SRTP;
  d.dtls_server = 1;
  d.rtpleg = calloc(1, sizeof(*d.rtpleg));
  assert_non_null(d.rtpleg);
  int rtp = udp_socket(&core), rtcp = udp_socket(&core);
  d.rtpleg->rtp_fd = rtp;
  d.rtpleg->rtcp_fd = rtcp;
  struct dcmf_session_env env = {.loop = &f->loop,
                                 .dtls_ctx = &f->ctx,
                                 .log = &f->log,
                                 .stats = &f->stats,
                                 .max_streams = 2048,
                                 .rx_scratch = f->rx,
                                 .rx_scratch_len = sizeof(f->rx),
                                 .emit = on_event,
                                 .emit_user = f};
  struct dcmf_session *s = NULL;
  assert_int_equal(dcmf_session_new(&s, &env, &d), 0);
  struct dcmf_media_desc u;
  memset(&u, 0, sizeof(u));
  set_key(&u.key, "e2ae");
  u.fd = -1;
  snprintf(u.local_ufrag, sizeof(u.local_ufrag), "nEwU");
  snprintf(u.local_pwd, sizeof(u.local_pwd), "newnewnewnewnewnewnewn");
  u.assoc = DCMF_ASSOC_SRTP;
  u.dtls_server = 1;
  u.rtpleg = calloc(1, sizeof(*u.rtpleg));
  assert_non_null(u.rtpleg);
  u.rtpleg->rtp_fd = u.rtpleg->rtcp_fd = -1;
  u.rtpleg->rtcp_port = 4242;
  dcmf_session_update(s, &u);
  assert_true(fcntl(rtp, F_GETFD) >= 0);
  assert_true(fcntl(rtcp, F_GETFD) >= 0);
  dcmf_session_close(s);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* its handles close, the leg too */
  assert_int_equal(fcntl(rtp, F_GETFD), -1);
  assert_int_equal(fcntl(rtcp, F_GETFD), -1);
}

static int setup_bare(void **state) {
  struct fx *f = fx_new();
  f->first = (struct probe){.name = "first"};
  f->second = (struct probe){.name = "second"};
  f->services[0] = (struct dcmf_session_service){&probe_service, &f->first};
  f->services[1] = (struct dcmf_session_service){&probe_service, &f->second};
  f->n_services = 2;
  *state = f;
  return 0;
}

/* ---- association kinds registered by the test (assoc.h) ------------------ */

/* The SCTP kind with every hook counted: what the session calls. */
struct kind_calls {
  int create, update, destroy, connected, dtls_in, send, close_flow,
      flow_state, foreach_open, tick;
};
static struct kind_calls calls; /* reset by setup_counting */

static int ck_create(void **assoc, const struct dcmf_assoc_settings *st,
                     const struct dcmf_assoc_events *ev) {
  calls.create++;
  return dcmf_assoc_sctp.create(assoc, st, ev);
}

static int ck_update(void *assoc, const struct dcmf_assoc_settings *st) {
  calls.update++;
  return dcmf_assoc_sctp.update(assoc, st);
}

static void ck_destroy(void *assoc) {
  calls.destroy++;
  dcmf_assoc_sctp.destroy(assoc);
}

static int ck_connected(void *assoc, const struct dcmf_assoc_dtls *dtls) {
  calls.connected++;
  return dcmf_assoc_sctp.connected(assoc, dtls);
}

static void ck_dtls_in(void *assoc, const uint8_t *data, size_t len) {
  calls.dtls_in++;
  dcmf_assoc_sctp.dtls_in(assoc, data, len);
}

static int ck_send(void *assoc, uint32_t id, int binary, const uint8_t *data,
                   size_t len) {
  calls.send++;
  return dcmf_assoc_sctp.send(assoc, id, binary, data, len);
}

static void ck_close_flow(void *assoc, uint32_t id) {
  calls.close_flow++;
  dcmf_assoc_sctp.close_flow(assoc, id);
}

static enum dcmf_svc_flow_state ck_flow_state(void *assoc, uint32_t id) {
  calls.flow_state++;
  return dcmf_assoc_sctp.flow_state(assoc, id);
}

static void ck_foreach_open(void *assoc,
                            void (*fn)(void *user,
                                       const struct dcmf_svc_flow *flow,
                                       void **slot),
                            void *user) {
  calls.foreach_open++;
  dcmf_assoc_sctp.foreach_open(assoc, fn, user);
}

static void ck_tick(void *assoc) {
  calls.tick++;
  dcmf_assoc_sctp.tick(assoc);
}

static void ck_flush(void *assoc) {
  dcmf_assoc_sctp.flush(assoc);
}

static const struct dcmf_assoc_ops counting_sctp = {
    .kind = DCMF_ASSOC_SCTP,
    .name = "counted SCTP",
    .raw_min = 1,
    .raw_max = 0,
    .create = ck_create,
    .update = ck_update,
    .destroy = ck_destroy,
    .connected = ck_connected,
    .dtls_in = ck_dtls_in,
    .send = ck_send,
    .close_flow = ck_close_flow,
    .flow_state = ck_flow_state,
    .foreach_open = ck_foreach_open,
    .tick = ck_tick,
    .flush = ck_flush,
};

/* A kind in the SRTP slot with the SRTP range beside DTLS (128-191): it
 * derives keys when DTLS connects and echoes every raw datagram. */
struct rawk {
  struct dcmf_assoc_events ev;
};

static struct {
  int created, destroyed, connected, keys_rv, dtls_in, raw_in;
  uint8_t key[60];
} rawk_seen;

static int rk_create(void **assoc, const struct dcmf_assoc_settings *st,
                     const struct dcmf_assoc_events *ev) {
  (void)st;
  struct rawk *k = calloc(1, sizeof(*k));
  if (k == NULL) {
    return DCMF_ERR_NOMEM;
  }
  k->ev = *ev;
  rawk_seen.created++;
  *assoc = k;
  return 0;
}

static void rk_destroy(void *assoc) {
  rawk_seen.destroyed++;
  free(assoc);
}

static int rk_connected(void *assoc,
                        const struct dcmf_assoc_dtls *dtls) {
  struct rawk *k = assoc;
  rawk_seen.connected++;
  /* RFC 5764 4.2: two master keys and salts of SRTP_AES128_CM_SHA1_80. */
  rawk_seen.keys_rv = dtls->keys(dtls->keys_user, "EXTRACTOR-dtls_srtp",
                                 rawk_seen.key, sizeof(rawk_seen.key));
  k->ev.state_changed(k->ev.lower, DCMF_ASSOC_UP, "raw up");
  return 0;
}

static void rk_dtls_in(void *assoc, const uint8_t *data, size_t len) {
  (void)assoc;
  (void)data;
  (void)len;
  rawk_seen.dtls_in++;
}

static void rk_raw_in(void *assoc, const uint8_t *data, size_t len) {
  struct rawk *k = assoc;
  rawk_seen.raw_in++;
  k->ev.raw_out(k->ev.lower, data, len);
}

static int rk_send(void *assoc, uint32_t id, int binary, const uint8_t *data,
                   size_t len) {
  (void)assoc;
  (void)id;
  (void)binary;
  (void)data;
  (void)len;
  return DCMF_ERR_NOT_FOUND;
}

static void rk_close_flow(void *assoc, uint32_t id) {
  (void)assoc;
  (void)id;
}

static enum dcmf_svc_flow_state rk_flow_state(void *assoc, uint32_t id) {
  (void)assoc;
  (void)id;
  return DCMF_SVC_FLOW_ABSENT;
}

static void rk_foreach_open(void *assoc,
                            void (*fn)(void *user,
                                       const struct dcmf_svc_flow *flow,
                                       void **slot),
                            void *user) {
  (void)assoc;
  (void)fn;
  (void)user;
}

static const struct dcmf_assoc_ops raw_kind = {
    .kind = DCMF_ASSOC_SRTP,
    .name = "raw echo",
    .raw_min = 128,
    .raw_max = 191,
    .create = rk_create,
    .destroy = rk_destroy,
    .connected = rk_connected,
    .dtls_in = rk_dtls_in,
    .raw_in = rk_raw_in,
    .send = rk_send,
    .close_flow = rk_close_flow,
    .flow_state = rk_flow_state,
    .foreach_open = rk_foreach_open,
};

static const struct dcmf_assoc_ops *const test_kinds[DCMF_ASSOC_KINDS] = {
    [DCMF_ASSOC_SCTP] = &counting_sctp,
    [DCMF_ASSOC_SRTP] = &raw_kind,
};

/* As setup, with the test's kinds: the session runs on counting_sctp. */
static int setup_counting(void **state) {
  memset(&calls, 0, sizeof(calls));
  struct fx *f = fx_new();
  f->kinds = test_kinds;
  return probes_connected(state, f);
}

static int got_pong(struct fx *f) {
  return strstr(f->phone[0].text, "pong|") != NULL;
}

static int opened_1002(struct fx *f) {
  return strstr(f->first.log, "open 1002") != NULL;
}

/* The session drives SCTP only through the kind's table: every step of
 * a media's life is a call of the table, and an idle association is
 * never ticked, however long it stays idle. */
static void test_session_drives_sctp_through_the_kind_table(void **state) {
  struct fx *f = *state;
  struct phone *ph = &f->phone[0];
  /* The built-in registry holds SCTP, SRTP and raw DTLS data. */
  assert_ptr_equal(dcmf_assoc_kind_ops(DCMF_ASSOC_SCTP), &dcmf_assoc_sctp);
  assert_ptr_equal(dcmf_assoc_kind_ops(DCMF_ASSOC_SRTP), &dcmf_assoc_srtp);
  assert_ptr_equal(dcmf_assoc_kind_ops(DCMF_ASSOC_DTLS_DATA),
                   &dcmf_assoc_dtlsdata);

  /* Set up through the table: created once, connected once DTLS was,
   * fed DTLS application data (SCTP's handshake). */
  assert_int_equal(calls.create, 1);
  assert_int_equal(calls.connected, 1);
  assert_true(calls.dtls_in > 0);
  assert_int_equal(calls.destroy, 0);

  /* A service's send and flow_state are the kind's. */
  assert_int_equal(f->first.host->flow_state(f->first.host, 1000),
                   DCMF_SVC_FLOW_OPEN);
  assert_int_equal(f->first.host->flow_state(f->first.host, 70000),
                   DCMF_SVC_FLOW_ABSENT);
  assert_int_equal(calls.flow_state, 2);
  /* A kind without a |stats| hook counts nothing for the services. */
  struct dcmf_assoc_stats as;
  assert_int_equal(f->first.host->assoc_stats(f->first.host, &as),
                   DCMF_ERR_NOT_FOUND);
  assert_int_equal(as.keyed, 0);
  assert_string_equal(as.srtp_profile, "");
  assert_int_equal(
      f->first.host->send(f->first.host, 1000, 0, (const uint8_t *)"pong", 4),
      0);
  assert_int_equal(calls.send, 1);
  assert_true(until(f, got_pong));

  /* Idle: nothing asks, nothing is ticked (after the last SACKs). */
  rounds(f, 20);
  int ticks = calls.tick;
  rounds(f, 300);
  assert_int_equal(calls.tick, ticks);
  assert_int_equal(f->ticks.count, 0);

  /* A sender waiting for room is ticked until it has sent everything. */
  assert_int_equal(dcmf_dc_send(ph->dc, 1000, 0, (const uint8_t *)"flood", 5),
                   0);
  assert_true(until(f, flood_arrived));
  assert_true(f->first.exhausted);
  assert_true(calls.tick > ticks);
  rounds(f, 20);
  ticks = calls.tick;
  rounds(f, 300);
  assert_int_equal(calls.tick, ticks);

  /* An update declares the new stream through the kind, and the open
   * flows are walked for a service again. */
  struct dcmf_media_desc d;
  desc_fill(f, 0, "media", NULL, "probe", 0, &d);
  struct dcmf_media_stream *st = realloc(d.streams, 3 * sizeof(*st));
  assert_non_null(st);
  d.streams = st;
  d.streams[2] = (struct dcmf_media_stream){.sid = 1002, .priority = 256};
  snprintf(d.streams[2].protocol, sizeof(d.streams[2].protocol), "probe");
  d.n_streams = 3;
  dcmf_session_update(f->session[0], &d);
  assert_int_equal(calls.update, 1);
  assert_int_equal(calls.foreach_open, 1);
  assert_true(until(f, opened_1002));

  /* A service's close is the kind's close_flow. */
  f->first.host->close(f->first.host, 1002);
  assert_int_equal(calls.close_flow, 1);
  assert_non_null(strstr(f->first.log, "closed 1002"));

  session_end(f, 0);
  assert_int_equal(calls.destroy, 1);
  assert_int_equal(calls.create, 1);
}

static int rawk_connected(struct fx *f) {
  (void)f;
  return rawk_seen.connected == 1;
}

static int raw_echoed(struct fx *f) { return f->phone[0].raw_received == 1; }

static void send_raw_from(struct fx *f, int fd) {
  static const uint8_t rtp[12] = {0x80, 0x60, 0x00, 0x01};
  assert_int_equal(sendto(fd, rtp, sizeof(rtp), 0,
                          (const struct sockaddr *)&f->session_addr[0],
                          sizeof(f->session_addr[0])),
                   (ssize_t)sizeof(rtp));
}

static void send_raw(struct fx *f, struct phone *ph) {
  send_raw_from(f, ph->fd);
}

/* A session of the test's raw kind in the SRTP slot (rawk_seen cleared),
 * with ICE checks required when |ice_checks|, and its phone made. */
static void raw_kind_start(struct fx *f, int ice_checks) {
  memset(&rawk_seen, 0, sizeof(rawk_seen));
  f->kinds = test_kinds;
  f->ice_checks = ice_checks;
  phone_new(&f->phone[0], "probe");
  session_start_kind(f, 0, "srtp", NULL, "probe", DCMF_ASSOC_SRTP);
}

/* A kind registered in the SRTP slot runs with no edit to the session:
 * the port's 128-191 range goes to the kind (from the DTLS peer, once
 * DTLS is up), what it sends there leaves beside DTLS, and it derives
 * keys from the DTLS exporter. */
static void test_kind_with_a_raw_range(void **state) {
  struct fx *f = *state;
  raw_kind_start(f, 0);
  assert_int_equal(rawk_seen.created, 1);

  /* Before DTLS there is no peer: the datagram is dropped. */
  send_raw(f, &f->phone[0]);
  rounds(f, 5);
  assert_int_equal(rawk_seen.raw_in, 0);
  assert_int_equal(atomic_load(&f->stats.dropped_unauthenticated), 1);

  phone_start(&f->phone[0], &f->session_addr[0], &f->cert);
  assert_true(until(f, rawk_connected));
  assert_int_equal(rawk_seen.keys_rv, 0);
  static const uint8_t zero[sizeof(rawk_seen.key)];
  assert_memory_not_equal(rawk_seen.key, zero, sizeof(zero));

  send_raw(f, &f->phone[0]);
  assert_true(until(f, raw_echoed));
  assert_int_equal(rawk_seen.raw_in, 1);
  /* The phone's SCTP INITs reached the kind as DTLS data, nothing
   * else: no flow opened, no channel event. */
  assert_true(rawk_seen.dtls_in > 0);
  assert_null(strstr(f->events, "DC_OPEN"));
  assert_int_equal(atomic_load(&f->stats.dtls_ok), 1);

  session_end(f, 0);
  assert_int_equal(rawk_seen.destroyed, 1);
}

/* A check from |fd| to session 0 as the controlling phone sends it,
 * nominating (USE-CANDIDATE) if |nominate|. */
static void send_check(struct fx *f, int fd, int nominate) {
  static uint8_t serial;
  struct dcmf_stun_request req = {
      .txid = {++serial, 't', 'e', 's', 't'},
      .username = SESSION_UFRAG ":" PHONE_UFRAG,
      .key = (const uint8_t *)SESSION_PWD,
      .key_len = sizeof(SESSION_PWD) - 1,
      .priority = 0x6e0001ff,
      .role = DCMF_STUN_ROLE_CONTROLLING,
      .tie_breaker = 7,
      .use_candidate = nominate,
  };
  uint8_t pkt[256];
  size_t len;
  assert_int_equal(dcmf_stun_build_request(pkt, sizeof(pkt), &len, &req), 0);
  assert_int_equal(sendto(fd, pkt, len, 0,
                          (const struct sockaddr *)&f->session_addr[0],
                          sizeof(f->session_addr[0])),
                   (ssize_t)len);
}

/* Runs rounds until a datagram arrives on |fd| (not a phone's) and
 * returns its first byte, or -1 after 20 s. */
static int first_byte_on(struct fx *f, int fd) {
  uint64_t deadline = uv_hrtime() + 20ull * 1000000000ull;
  uint8_t buf[2048];
  for (int i = 0; i < 20000 && uv_hrtime() < deadline; i++) {
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      return buf[0];
    }
    round_trip(f);
  }
  return -1;
}

static int phone_stun_answered(struct fx *f) {
  return f->phone[0].stun_received > 0;
}

/* raw_kind_start with ICE checks: the phone's check (nominating) is
 * answered, then its DTLS brings the kind up. Returns the phone. */
static struct phone *raw_kind_checked_up(struct fx *f) {
  raw_kind_start(f, 1);
  struct phone *ph = &f->phone[0];
  send_check(f, ph->fd, 1);
  assert_true(until(f, phone_stun_answered));
  phone_start(ph, &f->session_addr[0], &f->cert);
  assert_true(until(f, rawk_connected));
  return ph;
}

/* What raw_in_reached waits for. */
static int want_raw_in;

static int raw_in_reached(struct fx *f) {
  (void)f;
  return rawk_seen.raw_in >= want_raw_in;
}

/* Sends from |fd1| then |fd2| and waits until the kind took |n|
 * datagrams in all. Both are queued on the session's socket before the
 * loop runs, and a loop turn reads all it holds in order; a few more
 * turns give a wrongly taken first one time to show in the count. */
static void send_two_until(struct fx *f, int fd1, int fd2, int n) {
  send_raw_from(f, fd1);
  send_raw_from(f, fd2);
  want_raw_in = n;
  assert_true(until(f, raw_in_reached));
  rounds(f, 3);
}

/* The phone moves (an ICE restart to a new address B), as Chromium
 * does (RFC 8445 12.1): it sends from B once its check from there was
 * answered, before it nominates B, and from the old address A until it
 * sees the answer to the nomination. All of it is taken, with the
 * answers going to the peer of the moment; A until the first datagram
 * from B as the peer; an address that never checked, never. */
static void test_raw_from_the_previous_peer(void **state) {
  struct fx *f = *state;
  struct phone *ph = raw_kind_checked_up(f);

  struct sockaddr_in b_addr, c_addr;
  int b = udp_socket(&b_addr), c = udp_socket(&c_addr);
  /* B checked, not nominated: taken, echoed to A, the peer still. */
  send_check(f, b, 0);
  assert_int_equal(first_byte_on(f, b), 1); /* the Binding success */
  send_raw_from(f, b);
  want_raw_in = 1;
  assert_true(until(f, raw_in_reached));
  assert_true(until(f, raw_echoed));

  send_check(f, b, 1);
  assert_int_equal(first_byte_on(f, b), 1);
  /* Still from A: taken, echoed to B. */
  send_raw(f, ph);
  want_raw_in = 2;
  assert_true(until(f, raw_in_reached));
  int echo = first_byte_on(f, b);
  assert_true(echo >= 128 && echo <= 191);

  /* From C, which never was the peer: dropped (A's, sent after it, is
   * taken, so C's was seen by then). */
  send_two_until(f, c, ph->fd, 3);
  assert_int_equal(rawk_seen.raw_in, 3);
  echo = first_byte_on(f, b);
  assert_true(echo >= 128 && echo <= 191);

  /* From B: taken; then A is done with (B's after it is taken). */
  send_raw_from(f, b);
  want_raw_in = 4;
  assert_true(until(f, raw_in_reached));
  send_two_until(f, ph->fd, b, 5);
  assert_int_equal(rawk_seen.raw_in, 5);
  /* Since the nomination every answer went to B, none to A. */
  assert_int_equal(ph->raw_received, 1);

  close(b);
  close(c);
  session_end(f, 0);
}

/* What unauth_reached waits for. */
static uint64_t want_unauth;

static int unauth_reached(struct fx *f) {
  return atomic_load(&f->stats.dropped_unauthenticated) >= want_unauth;
}

/* Sends |len| bytes from |fd| to session 0. */
static void send_bytes_from(struct fx *f, int fd, const uint8_t *b,
                            size_t len) {
  assert_int_equal(sendto(fd, b, len, 0,
                          (const struct sockaddr *)&f->session_addr[0],
                          sizeof(f->session_addr[0])),
                   (ssize_t)len);
}

/* A check proves nothing about who sends it (it can be replayed from
 * anywhere): from an address that only checked, DTLS gets records of a
 * later epoch (authenticated) and ClientHellos, never epoch 0's other
 * records (a fatal alert anyone can write), also when one rides behind
 * a ClientHello in the same datagram. */
static void test_alternate_gets_no_plain_dtls(void **state) {
  struct fx *f = *state;
  struct phone *ph = raw_kind_checked_up(f);

  struct sockaddr_in b_addr;
  int b = udp_socket(&b_addr);
  send_check(f, b, 0);
  assert_int_equal(first_byte_on(f, b), 1); /* B is a checked address */
  uint64_t base = atomic_load(&f->stats.dropped_unauthenticated);

  /* epoch 0: a fatal alert (handshake_failure) */
  static const uint8_t alert[] = {21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9,
                                  0,  2,    2,    40};
  send_bytes_from(f, b, alert, sizeof(alert));
  want_unauth = base + 1;
  assert_true(until(f, unauth_reached));
  /* a ClientHello's record header and message type, then the alert */
  uint8_t two[64];
  static const uint8_t hello[] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 10,
                                  0,  4,    1,    0, 0, 0};
  memcpy(two, hello, sizeof(hello));
  memcpy(two + sizeof(hello), alert, sizeof(alert));
  send_bytes_from(f, b, two, sizeof(hello) + sizeof(alert));
  want_unauth = base + 2;
  assert_true(until(f, unauth_reached));
  /* a record cut short */
  send_bytes_from(f, b, hello, 12);
  want_unauth = base + 3;
  assert_true(until(f, unauth_reached));
  /* epoch 1 application data (DTLS will find it does not authenticate):
   * passed on, not refused here; then the same alert from the peer
   * itself, which is no alternate: passed on too (DTLS, at epoch 1 now,
   * drops it). */
  static const uint8_t data1[] = {23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1,
                                  0,  4,    9,    9, 9, 9};
  send_bytes_from(f, b, data1, sizeof(data1));
  send_bytes_from(f, ph->fd, alert, sizeof(alert));
  rounds(f, 20);
  assert_int_equal(atomic_load(&f->stats.dropped_unauthenticated), base + 3);
  /* the association is unharmed: raw media still goes */
  send_raw(f, ph);
  want_raw_in = 1;
  assert_true(until(f, raw_in_reached));
  close(b);
  session_end(f, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_turn_output_leaves_in_one_datagram,
                                      setup_coalescing, teardown),
      cmocka_unit_test_setup_teardown(test_turn_messages_share_one_packet,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_sees_its_life_in_order,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_inband_channel_nobody_serves_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tick_only_when_asked, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_relay_twin_removed_mid_relay,
                                      setup_relay, teardown),
      cmocka_unit_test_setup_teardown(
          test_missing_rsa_identity_is_refused, setup_bare,
          teardown),
      cmocka_unit_test_setup_teardown(
          test_session_drives_sctp_through_the_kind_table, setup_counting,
          teardown),
      cmocka_unit_test_setup_teardown(test_srtp_update_keeps_the_leg,
                                      setup_bare, teardown),
      cmocka_unit_test_setup_teardown(test_kind_with_a_raw_range, setup_bare,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_alternate_gets_no_plain_dtls,
                                      setup_bare, teardown),
      cmocka_unit_test_setup_teardown(test_raw_from_the_previous_peer,
                                      setup_bare, teardown),
  };
  return cmocka_run_group_tests(tests, dcmf_test_sctp_group_setup,
                                dcmf_test_sctp_group_teardown);
}
