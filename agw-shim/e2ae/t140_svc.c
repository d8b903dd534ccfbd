/* T.140 over a data channel <-> T.140 over RTP as a session service
 * (t140_svc.h says what it does). Glue: the protocol work is the T.140
 * engine's (t140.h); this owns the core socket and the timer on the
 * worker's loop. */
#include "t140_svc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "errors.h"
#include "log.h"
#include "rtcp_ep.h"
#include "stun.h"
#include "t140.h"
#include "udpread.h"

/* A core datagram is read into a slot this big; a bigger one arrives
 * truncated and is dropped as too large (the engine takes at most
 * DCMF_T140_MAX_PACKET bytes). */
#define RX_LEN 2048

/* What the worker's media share: one thread reads one batch at a time. */
struct t140_worker {
  uint8_t rx[DCMF_UDPREAD_BATCH * RX_LEN];
  struct dcmf_udpread_tally *rx_datagrams;
};

struct t140_media;

/* The core sockets and the timers; outlive the media until libuv lets
 * go of every handle. */
struct core {
  uv_udp_t udp;           /* sends (uv_udp_try_send only), owns the socket */
  struct dcmf_udpread rd; /* reads it */
  uv_timer_t timer;       /* the engine's next deadline */
  /* The RTCP socket without rtcp-mux (RFC 3550 §11: RTP port + 1). */
  uv_udp_t rtcp_udp;
  struct dcmf_udpread rtcp_rd;
  uv_timer_t rtcp_timer; /* the next RTCP compound */
  int handles;           /* initialised handles not closed yet */
  int reading, udp_open, timer_init;
  int rtcp_reading, rtcp_open, rtcp_timer_init;
  struct t140_media *m; /* NULL once the media detached */
};

struct drops {
  uint64_t unknown_source, rate, send_failed, rtcp_send_failed;
};

struct t140_media {
  struct dcmf_svc_host *host;
  struct t140_worker *w;
  struct core *core; /* NULL: not a T.140 media */
  int rtcp_fd;       /* the RTCP socket until core_open_rtcp adopts it */
  struct dcmf_media_t140 set;
  struct sockaddr_storage remote; /* ss_family 0: latch */
  struct sockaddr_storage latched;
  int has_latched;
  /* RTCP (RFC 3550 §6) toward the core: muxed on the RTP socket (RFC
   * 5761) when signalled or when no RTCP socket was bound. */
  int rtcp_mux;
  struct sockaddr_storage remote_rtcp; /* ss_family 0: latch */
  struct sockaddr_storage latched_rtcp;
  int has_latched_rtcp;
  int rtcp_on;
  struct dcmf_rtcp_ep rtcp;
  uint32_t rtp_packets, rtp_octets; /* sent with the current SSRC */
  int latching; /* the leg's: the core's address from its packets */
  int dc_open;
  /* A message SCTP had no room for, sent again on |writable|. */
  uint8_t pend[DCMF_T140_QUEUE];
  size_t pend_len;
  /* Core packets taken in the current second (DCMF_T140_SVC_RATE). */
  uint64_t rate_second;
  unsigned rate_count;
  struct drops d;
  uint64_t packets_to_core, bytes_to_core, msgs_to_access, chars_to_access;
  int dirty;
  uint64_t last_push;
  struct dcmf_t140 engine; /* last: ~40 KiB */
};

static void fill_random(void *buf, size_t len) {
  if (RAND_bytes(buf, (int)len) != 1) {
    /* OpenSSL's CSPRNG does not fail once seeded; never leave it zero. */
    for (size_t i = 0; i < len; i++) {
      ((uint8_t *)buf)[i] = (uint8_t)(i * 131u + 7u);
    }
  }
}

static uint32_t random32(void) {
  uint32_t r;
  fill_random(&r, sizeof(r));
  return r;
}

/* ---- counters ---- */

static void push(struct t140_media *m, int final) {
  const struct dcmf_t140_stats *s = dcmf_t140_get_stats(&m->engine);
  const struct dcmf_rtcp_ep_stats *r = dcmf_rtcp_ep_get_stats(&m->rtcp);
  /* 34 counters of up to 20 digits and ~480 bytes of names: < 1200. */
  char detail[sizeof(((struct dcmf_media_event *)0)->detail)];
  int n = snprintf(
      detail, sizeof(detail),
      "{\"toCore\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
      ",\"keepalives\":%" PRIu64 ",\"chars\":%" PRIu64
      "},\"fromCore\":{\"packets\":%" PRIu64 ",\"recovered\":%" PRIu64
      ",\"lost\":%" PRIu64 "},\"toAccess\":{\"messages\":%" PRIu64
      ",\"chars\":%" PRIu64 "},\"markers\":{\"toAccess\":%" PRIu64
      ",\"toCore\":%" PRIu64 "},\"drops\":{\"version\":%" PRIu64
      ",\"truncated\":%" PRIu64 ",\"payloadType\":%" PRIu64 ",\"red\":%" PRIu64
      ",\"tooLarge\":%" PRIu64 ",\"utf8\":%" PRIu64 ",\"duplicate\":%" PRIu64
      ",\"direction\":%" PRIu64 ",\"unknownSource\":%" PRIu64
      ",\"rate\":%" PRIu64 ",\"overflow\":%" PRIu64 ",\"sendFailed\":%" PRIu64
      "},\"rtcp\":{\"sent\":%" PRIu64 ",\"senderReports\":%" PRIu64
      ",\"byeSent\":%" PRIu64 ",\"received\":%" PRIu64
      ",\"malformed\":%" PRIu64 ",\"byeReceived\":%" PRIu64
      ",\"reportBlocks\":%" PRIu64 ",\"peerFractionLost\":%" PRIu32
      ",\"peerLost\":%" PRIu32 ",\"peerJitter\":%" PRIu32
      ",\"sendFailed\":%" PRIu64 "},\"final\":%s}",
      m->packets_to_core, m->bytes_to_core, s->keepalives_sent,
      s->chars_to_rtp, s->rtp_received, s->recovered, s->lost,
      m->msgs_to_access, m->chars_to_access,
      s->markers_to_dc, s->markers_to_rtp, s->drop_version, s->drop_truncated,
      s->drop_pt, s->drop_red, s->drop_too_large,
      s->drop_utf8_rtp + s->drop_utf8_dc, s->drop_duplicate, s->drop_direction,
      m->d.unknown_source, m->d.rate, s->overflow_to_dc + s->overflow_to_rtp,
      m->d.send_failed, r->sent_sr + r->sent_rr + r->sent_bye, r->sent_sr,
      r->sent_bye, r->received, r->malformed, r->byes, r->report_blocks,
      r->peer_fraction_lost, r->peer_lost, r->peer_jitter,
      m->d.rtcp_send_failed, final ? "true" : "false");
  m->dirty = 0;
  m->last_push = m->host->now(m->host);
  if (n < 0 || (size_t)n >= sizeof(detail)) {
    DCMF_LOGE(m->host->log, "t140", "%s: counters cut", m->host->name);
    return; /* never half a JSON object */
  }
  m->host->emit(m->host, DCMF_T140_SVC_EVENT, detail);
}

/* The media cannot carry text (|why|: a short sentence from the engine or
 * libuv): said once as an event, beside the log line. */
static void failed(struct t140_media *m, const char *why) {
  char detail[256];
  size_t at = (size_t)snprintf(detail, sizeof(detail), "{\"reason\":\"");
  for (const char *p = why; *p != '\0' && at < sizeof(detail) - 3; p++) {
    /* Nothing that would need escaping in JSON. */
    detail[at++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                       ? '\''
                       : *p;
  }
  memcpy(detail + at, "\"}", 3);
  DCMF_LOGW(m->host->log, "t140", "%s: %s", m->host->name, why);
  m->host->emit(m->host, DCMF_T140_SVC_FAILURE, detail);
}

static void counted(struct t140_media *m) {
  if (!m->dirty) {
    m->dirty = 1;
    m->host->want_tick(m->host);
  }
}

/* ---- moving text ---- */

static void on_timer(uv_timer_t *t);

/* Latching (as the e2ae RTP leg, e2ae_svc.c): the leg asks for it, or no
 * core address is signalled. Until a packet latched, any source is taken
 * and the signalled address (if any) is sent to; then only the latched
 * one both ways. Without latching only the signalled address. */
static int latch_mode(const struct t140_media *m) {
  return m->latching || m->remote.ss_family == 0;
}

/* RTCP's rule is the same on the RTCP address (rtcp_source_ok). */
static int rtcp_latch_mode(const struct t140_media *m) {
  return m->latching || m->remote_rtcp.ss_family == 0;
}

static const struct sockaddr *core_dest(const struct t140_media *m) {
  if (latch_mode(m) && m->has_latched) {
    return (const struct sockaddr *)&m->latched;
  }
  return m->remote.ss_family != 0 ? (const struct sockaddr *)&m->remote
                                  : NULL;
}

static int source_ok(const struct t140_media *m, const struct sockaddr *from) {
  if (latch_mode(m)) {
    return !m->has_latched ||
           dcmf_stun_addr_equal(from, (const struct sockaddr *)&m->latched);
  }
  return dcmf_stun_addr_equal(from, (const struct sockaddr *)&m->remote);
}

/* Sends what the engine has due toward the core and the WIC, then arms
 * the timer at its next deadline. */
static void pump(struct t140_media *m) {
  if (m->core == NULL) {
    return;
  }
  uint64_t now = m->host->now(m->host);
  uint8_t pkt[DCMF_T140_MAX_PACKET];
  int n;
  while ((n = dcmf_t140_rtp_write(&m->engine, pkt, sizeof(pkt), now)) > 0) {
    const struct sockaddr *to = core_dest(m);
    uv_buf_t b = uv_buf_init((char *)pkt, (unsigned)n);
    if (to == NULL || uv_udp_try_send(&m->core->udp, &b, 1, to) != n) {
      m->d.send_failed++; /* no core address yet, or the socket refused */
    } else {
      m->packets_to_core++;
      m->bytes_to_core += (uint64_t)n;
      /* SR counts (RFC 3550 §6.4.1): the payload after the fixed
       * 12-byte header (the engine writes no CSRC nor extension). */
      m->rtp_packets++;
      m->rtp_octets += (uint32_t)(n - 12);
    }
    counted(m);
  }
  while (m->dc_open) {
    if (m->pend_len == 0) {
      m->pend_len =
          dcmf_t140_dc_write(&m->engine, m->pend, sizeof(m->pend), now);
      if (m->pend_len == 0) {
        break;
      }
    }
    int rv = m->host->send(m->host, m->set.sid, 0, m->pend, m->pend_len);
    if (rv == DCMF_ERR_EXHAUSTED) {
      break; /* |writable| comes back */
    }
    if (rv != 0) {
      m->d.send_failed++;
    } else {
      size_t chars = 0;
      (void)dcmf_t140_utf8_valid(m->pend, m->pend_len, &chars);
      m->msgs_to_access++;
      m->chars_to_access += chars;
    }
    m->pend_len = 0;
    counted(m);
  }
  /* Toward the WIC only a writable channel has deadlines: without one
   * (not open, or a message waiting for |writable|) the receive side's
   * deadlines stay in the past, since only dc_write meets them. */
  uint64_t next = m->dc_open && m->pend_len == 0
                      ? dcmf_t140_next_expiry(&m->engine)
                      : dcmf_t140_tx_expiry(&m->engine);
  if (next == DCMF_T140_NEVER) {
    uv_timer_stop(&m->core->timer);
  } else {
    /* Never 0: libuv runs a 0 timer started in its own callback again in
     * the same pass, and a deadline left in the past would then keep the
     * worker from ever polling. */
    uint64_t after = next > now ? next - now : 1;
    uv_timer_start(&m->core->timer, on_timer, after, 0);
  }
}

static void on_timer(uv_timer_t *t) {
  struct core *core = t->data;
  if (core->m != NULL) {
    pump(core->m);
  }
}

/* ---- RTCP toward the core (RFC 3550 §6; the engine is rtcp_ep.h) ---- */

static void on_rtcp_timer(uv_timer_t *t);

/* The wall clock in NTP format (RFC 3550 §4): seconds since 1900. */
static uint64_t ntp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t sec = (uint64_t)ts.tv_sec + 2208988800u;
  uint64_t frac = ((uint64_t)ts.tv_nsec << 32) / 1000000000u;
  return sec << 32 | frac;
}

static void rtcp_state(const struct t140_media *m, uint64_t now,
                       struct dcmf_rtcp_ep_state *st) {
  const struct dcmf_t140 *e = &m->engine;
  memset(st, 0, sizeof(*st));
  st->ssrc = e->set.ssrc; /* the text stream's SSRC */
  st->ntp = ntp_now();
  /* the RTP time of |now| on the text stream's 1000 Hz clock */
  st->rtp_ts = e->ts_origin + (uint32_t)(now - e->now_origin);
  st->packets_sent = m->rtp_packets;
  st->octets_sent = m->rtp_octets;
  st->have_source = e->rx_started;
  st->source_ssrc = e->rx_ssrc;
  st->source_max_seq = (uint16_t)(e->rx_expected - 1);
  st->source_lost = (uint32_t)dcmf_t140_get_stats(e)->lost;
}

static const struct sockaddr *rtcp_dest(const struct t140_media *m) {
  if (m->rtcp_mux) {
    return core_dest(m);
  }
  if (rtcp_latch_mode(m) && m->has_latched_rtcp) {
    return (const struct sockaddr *)&m->latched_rtcp;
  }
  return m->remote_rtcp.ss_family != 0
             ? (const struct sockaddr *)&m->remote_rtcp
             : NULL;
}

static void rtcp_send(struct t140_media *m, const uint8_t *p, int n) {
  const struct sockaddr *to = rtcp_dest(m);
  uv_udp_t *u = m->rtcp_mux ? &m->core->udp : &m->core->rtcp_udp;
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  if (to == NULL || uv_udp_try_send(u, &b, 1, to) != n) {
    m->d.rtcp_send_failed++;
  }
  counted(m);
}

/* Sends the compound when one is due and arms the RTCP timer. */
static void rtcp_pump(struct t140_media *m) {
  if (m->core == NULL || !m->rtcp_on) {
    return;
  }
  uint64_t now = m->host->now(m->host);
  struct dcmf_rtcp_ep_state st;
  rtcp_state(m, now, &st);
  uint8_t pkt[DCMF_RTCP_EP_MAX_PACKET];
  int n = dcmf_rtcp_ep_write(&m->rtcp, &st, now, random32(), pkt, sizeof(pkt));
  if (n > 0) {
    rtcp_send(m, pkt, n);
  }
  uint64_t next = dcmf_rtcp_ep_next(&m->rtcp);
  if (next == DCMF_RTCP_EP_NEVER) {
    uv_timer_stop(&m->core->rtcp_timer);
  } else {
    uv_timer_start(&m->core->rtcp_timer, on_rtcp_timer,
                   next > now ? next - now : 0, 0);
  }
}

static void on_rtcp_timer(uv_timer_t *t) {
  struct core *core = t->data;
  if (core->m != NULL) {
    rtcp_pump(core->m);
  }
}

/* RFC 3550 §6.6: a BYE for the SSRC of |st| as the last compound. */
static void rtcp_bye(struct t140_media *m,
                     const struct dcmf_rtcp_ep_state *st) {
  if (m->core == NULL || !m->rtcp_on) {
    return;
  }
  uint8_t pkt[DCMF_RTCP_EP_MAX_PACKET];
  int n = dcmf_rtcp_ep_bye(&m->rtcp, st, m->host->now(m->host), pkt,
                           sizeof(pkt));
  if (n > 0) {
    rtcp_send(m, pkt, n);
  }
}

/* (Re)starts the reports for the engine's current SSRC; the counters
 * run on. The CNAME is random per media (RFC 7022 §4.2, 96 bits). */
static void rtcp_start(struct t140_media *m) {
  uint8_t id[12];
  char cname[2 * sizeof(id) + 1];
  fill_random(id, sizeof(id));
  for (size_t i = 0; i < sizeof(id); i++) {
    snprintf(cname + 2 * i, 3, "%02x", id[i]);
  }
  struct dcmf_rtcp_ep_stats kept = m->rtcp.stats;
  dcmf_rtcp_ep_init(&m->rtcp, cname, 0, m->host->now(m->host), random32());
  m->rtcp.stats = kept;
  m->rtp_packets = m->rtp_octets = 0;
  m->rtcp_on = 1;
  rtcp_pump(m);
}

/* One compound from the core, by its port or muxed: counted only. */
static void rtcp_in(struct t140_media *m, const uint8_t *buf, size_t len) {
  if (m->rtcp_on) {
    dcmf_rtcp_ep_recv(&m->rtcp, buf, len, m->engine.set.ssrc,
                      m->host->now(m->host));
    counted(m);
  }
}

/* At most DCMF_T140_SVC_RATE core datagrams (RTP and RTCP) a second. */
static int within_rate(struct t140_media *m, uint64_t now) {
  if (now / 1000 != m->rate_second) {
    m->rate_second = now / 1000;
    m->rate_count = 0;
  }
  if (++m->rate_count > DCMF_T140_SVC_RATE) {
    m->d.rate++;
    counted(m);
    return 0;
  }
  return 1;
}

static void take_addr(struct sockaddr_storage *to, const struct sockaddr *from) {
  memset(to, 0, sizeof(*to));
  memcpy(to, from,
         from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
}

/* RTCP's source rule is RTP's (latch_mode) on the RTCP address: the
 * signalled one, else (or with the leg's latching) the first source
 * heard. A refused source is counted. */
static int rtcp_source_ok(struct t140_media *m, const struct sockaddr *from) {
  int ok = rtcp_latch_mode(m)
               ? !m->has_latched_rtcp ||
                     dcmf_stun_addr_equal(
                         from, (const struct sockaddr *)&m->latched_rtcp)
               : dcmf_stun_addr_equal(from,
                                      (const struct sockaddr *)&m->remote_rtcp);
  if (!ok) {
    m->d.unknown_source++;
    counted(m);
  }
  return ok;
}

/* One datagram from the core socket (udpread.h). */
static void on_core(void *user, uint8_t *buf, size_t len,
                    const struct sockaddr *from, int truncated) {
  struct core *core = user;
  struct t140_media *m = core->m;
  if (m == NULL) {
    return;
  }
  if (!source_ok(m, from)) {
    m->d.unknown_source++;
    counted(m);
    return;
  }
  uint64_t now = m->host->now(m->host);
  if (!within_rate(m, now)) {
    return;
  }
  /* RFC 5761 §4: on a muxed port a second byte of 192-223 (an RTP
   * payload type of 64-95 with the marker) is RTCP. */
  if (m->rtcp_mux && len >= 2 && buf[1] >= 192 && buf[1] <= 223) {
    rtcp_in(m, buf, truncated ? 0 : len); /* a truncated one: malformed */
    return;
  }
  /* Well-formed, or refused by the direction only (a sendonly WIC's
   * core still needs an address to send to). */
  const struct dcmf_t140_stats *st = dcmf_t140_get_stats(&m->engine);
  uint64_t taken = st->rtp_received + st->drop_direction;
  /* A truncated datagram was bigger than any the engine takes: it is
   * given whole-length-plus-one so the engine counts it too large. */
  dcmf_t140_rtp_recv(&m->engine, buf,
                     truncated ? DCMF_T140_MAX_PACKET + 1 : len, now);
  if (latch_mode(m) && !m->has_latched &&
      st->rtp_received + st->drop_direction != taken) {
    /* The first packet the engine took: a stray datagram latches no one. */
    take_addr(&m->latched, from);
    m->has_latched = 1;
  }
  counted(m);
  pump(m);
}

/* One datagram from the core's RTCP port: from the signalled RTCP
 * address, else from the first source heard (latched as RTP is). */
static void on_core_rtcp(void *user, uint8_t *buf, size_t len,
                         const struct sockaddr *from, int truncated) {
  struct core *core = user;
  struct t140_media *m = core->m;
  if (m == NULL) {
    return;
  }
  if (!rtcp_source_ok(m, from)) {
    return;
  }
  if (!within_rate(m, m->host->now(m->host))) {
    return;
  }
  if (rtcp_latch_mode(m) && !m->has_latched_rtcp) {
    take_addr(&m->latched_rtcp, from);
    m->has_latched_rtcp = 1;
  }
  rtcp_in(m, buf, truncated ? 0 : len);
}

/* ---- the core handles ---- */

static void handle_closed(uv_handle_t *h) {
  struct core *core = h->data;
  if (--core->handles == 0) {
    free(core);
  }
}

static void rd_closed(uv_handle_t *h) {
  struct dcmf_udpread *rd = h->data;
  struct core *core = rd->user;
  if (--core->handles == 0) {
    free(core);
  }
}

static void core_close(struct core *core) {
  core->m = NULL;
  if (core->handles == 0) {
    free(core);
    return;
  }
  if (core->reading) {
    dcmf_udpread_close(&core->rd, rd_closed);
  }
  if (core->timer_init) {
    uv_close((uv_handle_t *)&core->timer, handle_closed);
  }
  if (core->udp_open) {
    uv_close((uv_handle_t *)&core->udp, handle_closed);
  }
  if (core->rtcp_reading) {
    dcmf_udpread_close(&core->rtcp_rd, rd_closed);
  }
  if (core->rtcp_timer_init) {
    uv_close((uv_handle_t *)&core->rtcp_timer, handle_closed);
  }
  if (core->rtcp_open) {
    uv_close((uv_handle_t *)&core->rtcp_udp, handle_closed);
  }
}

/* Adopts |fd| into |udp| and starts reading it with |rd| into |cb|;
 * |*open| and |*reading| say which handles core_close must close. */
static int sock_adopt(struct t140_media *m, uv_udp_t *udp,
                      struct dcmf_udpread *rd, int fd, dcmf_udpread_cb cb,
                      int *open, int *reading) {
  struct core *core = m->core;
  uv_udp_init(m->host->loop, udp);
  udp->data = core;
  *open = 1;
  core->handles++;
  int rv = uv_udp_open(udp, fd);
  if (rv != 0) {
    close(fd);
    return rv;
  }
  uv_os_fd_t ufd = -1;
  (void)uv_fileno((uv_handle_t *)udp, &ufd);
  rv = dcmf_udpread_start(rd, m->host->loop, ufd, m->w->rx, sizeof(m->w->rx),
                          cb, core);
  if (rv == 0) {
    *reading = 1;
    rd->tally = m->w->rx_datagrams;
    core->handles++;
  }
  return rv;
}

/* Sets up the core's handles: its timers, and |fd| (the core RTP
 * socket) read. */
static int core_open(struct t140_media *m, int fd) {
  struct core *core = calloc(1, sizeof(*core));
  if (core == NULL) {
    close(fd);
    return UV_ENOMEM;
  }
  core->m = m;
  m->core = core;
  uv_timer_init(m->host->loop, &core->timer);
  core->timer.data = core;
  core->timer_init = 1;
  core->handles++;
  uv_timer_init(m->host->loop, &core->rtcp_timer);
  core->rtcp_timer.data = core;
  core->rtcp_timer_init = 1;
  core->handles++;
  return sock_adopt(m, &core->udp, &core->rd, fd, on_core, &core->udp_open,
                    &core->reading);
}

/* Adopts m->rtcp_fd (the core RTCP socket) and starts reading it. */
static int core_open_rtcp(struct t140_media *m) {
  int fd = m->rtcp_fd;
  m->rtcp_fd = -1;
  return sock_adopt(m, &m->core->rtcp_udp, &m->core->rtcp_rd, fd,
                    on_core_rtcp, &m->core->rtcp_open,
                    &m->core->rtcp_reading);
}

/* ---- the service hooks ---- */

static int t140_init(void **worker, const struct dcmf_svc_worker_env *env,
                     const void *config, char *err, size_t errlen) {
  (void)config;
  (void)err;
  (void)errlen;
  struct t140_worker *w = malloc(sizeof(*w));
  if (w == NULL) {
    return DCMF_ERR_NOMEM;
  }
  w->rx_datagrams = env->rx_datagrams;
  *worker = w;
  return 0;
}

static void t140_free(void *worker) {
  free(worker);
}

/* The engine's settings from the leg's. */
static void settings_of(const struct dcmf_media_t140 *t,
                        struct dcmf_t140_settings *s) {
  dcmf_t140_settings_default(s);
  s->pt_t140 = t->pt_t140;
  s->pt_red = t->pt_red;
  s->use_red = t->use_red;
  s->generations = t->use_red ? t->generations : 0;
  s->cps_to_dc = t->cps_to_dc;
  s->cps_to_rtp = t->cps_to_rtp;
  s->direction = (enum dcmf_t140_direction)t->direction;
  fill_random(&s->ssrc, sizeof(s->ssrc));
  fill_random(&s->first_seq, sizeof(s->first_seq));
  fill_random(&s->first_ts, sizeof(s->first_ts));
}

static void take_remote(struct t140_media *m,
                        const struct dcmf_media_rtpleg *leg) {
  int rule_changed = m->latching != leg->latching;
  m->latching = leg->latching;
  if (memcmp(&m->remote, &leg->remote_rtp, sizeof(m->remote)) != 0 ||
      rule_changed) {
    m->remote = leg->remote_rtp;
    m->has_latched = 0; /* a new core address or rule: latch again */
  }
  /* The sockets are fixed at attach (as the RTP path's): without an
   * RTCP socket RTCP goes by the RTP one whatever an update says; with
   * one, an update turning mux on leaves it unused. */
  m->rtcp_mux = leg->rtcp_mux || m->core == NULL || !m->core->rtcp_open;
  if (memcmp(&m->remote_rtcp, &leg->remote_rtcp, sizeof(m->remote_rtcp)) ||
      rule_changed) {
    m->remote_rtcp = leg->remote_rtcp;
    m->has_latched_rtcp = 0;
  }
}

static int t140_attach(void **media, void *worker, struct dcmf_svc_host *host) {
  struct t140_media *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return DCMF_ERR_NOMEM;
  }
  m->host = host;
  m->w = worker;
  m->rtcp_fd = -1;
  *media = m;
  struct dcmf_media_rtpleg *leg = host->desc->rtpleg;
  if (host->desc->assoc != DCMF_ASSOC_SCTP || leg == NULL || !leg->t140.on ||
      leg->rtp_fd < 0) {
    return 0; /* not a T.140 media: this service stays out of it */
  }
  m->set = leg->t140;
  take_remote(m, leg);
  struct dcmf_t140_settings s;
  settings_of(&leg->t140, &s);
  char err[160];
  int rv = dcmf_t140_init(&m->engine, &s, host->now(host), err, sizeof(err));
  if (rv != 0) {
    /* The API checks these: not expected, but never silent. */
    failed(m, err);
    return 0; /* the media stays without text */
  }
  int fd = leg->rtp_fd;
  leg->rtp_fd = -1; /* ours now */
  m->rtcp_fd = leg->rtcp_fd;
  leg->rtcp_fd = -1;
  rv = core_open(m, fd);
  if (rv == 0 && !leg->rtcp_mux && m->rtcp_fd >= 0) {
    rv = core_open_rtcp(m);
  }
  if (rv != 0) {
    snprintf(err, sizeof(err), "t140: core socket: %s", uv_strerror(rv));
    failed(m, err);
    core_close(m->core);
    m->core = NULL;
    return 0;
  }
  take_remote(m, leg); /* now that the RTCP socket is known */
  pump(m);
  rtcp_start(m);
  return 0;
}

/* A PATCH: the dcsa values (direction, cps) and the core's address may
 * change (RFC 8865 §4.2: same direction both sides; the ALG gives the
 * core the same), and the core's answer may settle other payload types,
 * red or its cps. Direction and cps are set on the running engine, its
 * queued text kept (the core's answer often brings its cps while the user
 * types); new payload types, red or generations start it again (a new
 * SSRC toward the core, RFC 3550 §8: its sequence and timing start anew),
 * the text queued both ways kept and a possible loss toward the WIC
 * marked (dcmf_t140_restart). */
static void t140_update(void *media) {
  struct t140_media *m = media;
  const struct dcmf_media_rtpleg *leg = m->host->desc->rtpleg;
  if (m->core == NULL || leg == NULL || !leg->t140.on) {
    return;
  }
  take_remote(m, leg);
  const struct dcmf_media_t140 *n = &leg->t140, *o = &m->set;
  uint64_t now = m->host->now(m->host);
  if (n->pt_t140 != o->pt_t140 || n->use_red != o->use_red ||
      (n->use_red && (n->pt_red != o->pt_red ||
                      n->generations != o->generations))) {
    struct dcmf_t140_settings s;
    settings_of(&leg->t140, &s);
    char err[160];
    struct dcmf_rtcp_ep_state old;
    rtcp_state(m, now, &old);
    if (dcmf_t140_restart(&m->engine, &s, now, err, sizeof(err)) != 0) {
      failed(m, err); /* the old settings run on */
    } else {
      m->set = leg->t140;
      /* The old SSRC leaves (RFC 3550 §6.6), the new one reports. */
      rtcp_bye(m, &old);
      rtcp_start(m);
      counted(m);
    }
  } else {
    if (n->cps_to_dc != o->cps_to_dc || n->cps_to_rtp != o->cps_to_rtp) {
      dcmf_t140_set_cps(&m->engine, n->cps_to_dc, n->cps_to_rtp, now);
      m->set.cps_to_dc = n->cps_to_dc;
      m->set.cps_to_rtp = n->cps_to_rtp;
    }
    if (n->direction != o->direction &&
        dcmf_t140_set_direction(&m->engine,
                                (enum dcmf_t140_direction)n->direction) == 0) {
      m->set.direction = n->direction;
    }
  }
  pump(m);
}

static void t140_detach(void *media) {
  struct t140_media *m = media;
  if (m->core != NULL) {
    struct dcmf_rtcp_ep_state st;
    rtcp_state(m, m->host->now(m->host), &st);
    rtcp_bye(m, &st);
    push(m, 1);
    core_close(m->core);
  }
  if (m->rtcp_fd >= 0) {
    close(m->rtcp_fd);
  }
  free(m);
}

static void t140_tick(void *media) {
  struct t140_media *m = media;
  if (!m->dirty || m->core == NULL) {
    return;
  }
  uint64_t now = m->host->now(m->host);
  if (now - m->last_push >= DCMF_T140_SVC_PUSH_MS || m->last_push == 0) {
    push(m, 0);
  } else {
    m->host->want_tick(m->host);
  }
}

static int t140_match(void *media, const struct dcmf_svc_flow *flow) {
  struct t140_media *m = media;
  return m->core != NULL && flow->kind == DCMF_ASSOC_SCTP &&
         flow->id == m->set.sid && strcmp(flow->protocol, "t140") == 0;
}

static int t140_open(void *media, const struct dcmf_svc_flow *flow,
                     void **chan) {
  (void)flow;
  struct t140_media *m = media;
  if (m->dc_open) {
    return DCMF_ERR_INVALID; /* one channel per RTP text stream */
  }
  m->dc_open = 1;
  *chan = NULL;
  /* Text waiting for the channel goes from the loop: |open| may not
   * send on the flow it opens. */
  m->host->wake(m->host);
  return 0;
}

static void t140_message(void *media, void *chan,
                         const struct dcmf_svc_flow *flow, int binary,
                         const uint8_t *data, size_t len) {
  (void)chan;
  (void)flow;
  (void)binary; /* PPID 51 or 53: both carry the UTF-8 text */
  struct t140_media *m = media;
  dcmf_t140_dc_recv(&m->engine, data, len, m->host->now(m->host));
  counted(m);
  pump(m);
}

static void t140_writable(void *media) {
  struct t140_media *m = media;
  pump(m);
}

static void t140_closed(void *media, void *chan,
                        const struct dcmf_svc_flow *flow) {
  (void)chan;
  (void)flow;
  struct t140_media *m = media;
  m->dc_open = 0;
  /* A message SCTP had no room for (|pend|) was not sent: it stays, the
   * first to go when a channel opens again, before the text queued after
   * it. */
  /* RFC 8865 §5.4 and §6: text the WIC sent may be lost with the
   * channel; the RTP side is told by a missing-text marker. */
  dcmf_t140_dc_failed(&m->engine);
  counted(m);
  /* Sent from the loop, not from here: a channel closed because the
   * session ends (a DELETE) is followed by |detach| at once, and the
   * call's end is not a loss to mark. */
  if (m->core != NULL) {
    uv_timer_start(&m->core->timer, on_timer, 0, 0);
  }
}

const struct dcmf_service dcmf_t140_service = {
    .name = "t140",
    .init = t140_init,
    .free = t140_free,
    .attach = t140_attach,
    .update = t140_update,
    .detach = t140_detach,
    .tick = t140_tick,
    .match = t140_match,
    .open = t140_open,
    .message = t140_message,
    .writable = t140_writable,
    .closed = t140_closed,
};
