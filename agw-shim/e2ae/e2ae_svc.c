/* The e2ae media path as a session service (e2ae_svc.h says what it
 * does). Glue: it owns the core leg's sockets on the worker's loop; the
 * protocol work is the association's (SRTP) and rtcp.h's. */
#include "e2ae_svc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assoc_dtlsdata.h"
#include "assoc_srtp.h"
#include "errors.h"
#include "log.h"
#include "rtcp.h"
#include "stun.h"
#include "udpread.h"

/* A datagram read from the core is at most this big (a read slot,
 * udpread.h); a bigger one is truncated by the kernel and dropped as
 * malformed. */
#define RX_LEN 65536

struct e2ae_media;

/* What the worker's media share: one thread handles one datagram at a
 * time. */
struct e2ae_worker {
  uint8_t rx[DCMF_UDPREAD_BATCH * RX_LEN]; /* a batch of core datagrams */
  /* access RTCP being filtered (the association's buffer is read-only) */
  uint8_t tx[DCMF_ASSOC_SRTP_MAX_PACKET];
  uint64_t push_ms; /* the push interval */
  struct dcmf_udpread_tally *rx_datagrams; /* the worker's reads */
  /* The media with a push pending, in order of |due|: each joins at
   * now + push_ms and the services' clock only moves on, so appending
   * keeps the order, and a worker tick looks at the head only. */
  struct e2ae_media *first, *last;
};
struct core;

/* One core socket. */
struct sock {
  uv_udp_t udp;           /* sends (uv_udp_try_send only) and owns the socket */
  struct dcmf_udpread rd; /* reads it, a batch per readiness event */
  int reading;            /* rd was started: its handle is counted too */
  struct e2ae_media *m; /* NULL once the media detached */
  struct core *core;
  int rtcp_only; /* the separate RTCP socket (no rtcp-mux) */
  int open;      /* uv_udp_open succeeded, the handle is in use */
  struct sockaddr_storage latched;
  int has_latched;
};

/* The core leg's sockets; outlives the media until libuv lets go of
 * both handles. */
struct core {
  struct sock rtp, rtcp;
  int handles; /* initialised handles not closed yet */
};

struct counts {
  uint64_t core_packets, core_bytes;     /* to the core */
  uint64_t access_packets, access_bytes; /* to the access side */
  uint64_t unknown_source, before_dtls, malformed, feedback_stripped,
      send_failed, no_core_address;
};

/* What a push reports; compared whole to see a change. */
struct snapshot {
  struct counts c;
  uint64_t srtp_auth, srtp_replay;
  uint64_t srtp_malformed; /* access datagrams the engine could not parse */
  uint64_t srtp_previous;  /* passed under the previous keys (srtp.h) */
  const char *profile;     /* static */
};

struct e2ae_media {
  struct dcmf_svc_host *host;
  struct e2ae_worker *w;
  struct core *core; /* NULL: not an e2ae media (nothing matched) */
  /* T.38: UDPTL in DTLS application data (DCMF_ASSOC_DTLS_DATA) <->
   * UDPTL over UDP; 0: DTLS-SRTP <-> RTP. */
  int udptl;
  /* The leg's settings as last described (fds not kept: the sockets
   * are the core's). */
  struct dcmf_media_rtpleg leg;
  struct counts c;
  struct snapshot pushed; /* what the last push said */
  int has_pushed;
  /* In the worker's queue of pending pushes (w->first..), until |due|. */
  int queued;
  uint64_t due;
  struct e2ae_media *q_prev, *q_next;
  /* The association's refusals and profile as last looked at
   * (e2ae_assoc_changed). */
  uint64_t seen_auth, seen_replay, seen_malformed;
  const char *seen_profile;
};

/* ---- helpers ---- */

/* RFC 5761 §4: on a muxed port a second byte of 192-223 is RTCP. */
static int is_rtcp(const uint8_t *p) {
  return p[1] >= 192 && p[1] <= 223;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static int feedback_passes(const struct e2ae_media *m) {
  return m->leg.core_avpf && m->leg.access_avpf;
}

static void push_now(struct e2ae_media *m);

/* Something was counted: a push within the interval, unless one is
 * pending already (then this costs one test). */
static void counted(struct e2ae_media *m) {
  if (m->queued) {
    return;
  }
  struct e2ae_worker *w = m->w;
  m->due = m->host->now(m->host) + w->push_ms;
  m->queued = 1;
  m->q_prev = w->last;
  m->q_next = NULL;
  if (w->last != NULL) {
    w->last->q_next = m;
  } else {
    w->first = m;
  }
  w->last = m;
}

static void unqueue(struct e2ae_media *m) {
  if (!m->queued) {
    return;
  }
  struct e2ae_worker *w = m->w;
  if (m->q_prev != NULL) {
    m->q_prev->q_next = m->q_next;
  } else {
    w->first = m->q_next;
  }
  if (m->q_next != NULL) {
    m->q_next->q_prev = m->q_prev;
  } else {
    w->last = m->q_prev;
  }
  m->queued = 0;
  m->q_prev = m->q_next = NULL;
}

/* Counts one in |*c|. The first of a kind in the media's life (a first
 * packet each way, a first drop of a reason) is news and pushed at
 * once; at most one such push per counter, so they stay bounded. */
static void count(struct e2ae_media *m, uint64_t *c) {
  if (++*c == 1) {
    push_now(m);
  } else {
    counted(m);
  }
}

static const struct sockaddr_storage *signalled(const struct e2ae_media *m,
                                                const struct sock *s) {
  const struct sockaddr_storage *a =
      s->rtcp_only ? &m->leg.remote_rtcp : &m->leg.remote_rtp;
  return a->ss_family != 0 ? a : NULL;
}

/* Where what leaves socket |s| goes: the latched source, else the
 * signalled address; NULL when neither is known. */
static const struct sockaddr *destination(const struct e2ae_media *m,
                                          const struct sock *s) {
  if (m->leg.latching && s->has_latched) {
    return (const struct sockaddr *)&s->latched;
  }
  return (const struct sockaddr *)signalled(m, s);
}

/* May a packet from |from| on |s| be taken? With latching and nothing
 * latched yet, any source may (the caller latches it once the packet
 * proved well-formed). */
/* The same host (family and address, any port). */
static int same_host(const struct sockaddr_storage *a,
                     const struct sockaddr *b) {
  if (a->ss_family != b->sa_family) {
    return 0;
  }
  if (b->sa_family == AF_INET) {
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  }
  return b->sa_family == AF_INET6 &&
         memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                &((const struct sockaddr_in6 *)b)->sin6_addr,
                sizeof(struct in6_addr)) == 0;
}

static int source_ok(const struct e2ae_media *m, const struct sock *s,
                     const struct sockaddr *from) {
  if (m->leg.latching) {
    if (s->has_latched) {
      return dcmf_stun_addr_equal((const struct sockaddr *)&s->latched, from);
    }
    /* The separate RTCP port is heard (and latched) only from the host
     * RTP latched to: a stranger cannot take the core's RTCP. */
    const struct sock *rtp = &s->core->rtp;
    return !s->rtcp_only || !rtp->has_latched || same_host(&rtp->latched, from);
  }
  const struct sockaddr_storage *a = signalled(m, s);
  return a != NULL && dcmf_stun_addr_equal((const struct sockaddr *)a, from);
}

static void latch(struct sock *s, const struct sockaddr *from) {
  memset(&s->latched, 0, sizeof(s->latched));
  memcpy(&s->latched, from,
         from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
  s->has_latched = 1;
}

/* Strips feedback from the valid compound at |buf| toward a leg without
 * AVPF; returns the length to send, 0 to drop. */
static size_t filter_rtcp(struct e2ae_media *m, uint8_t *buf, size_t len) {
  size_t removed = 0;
  size_t n = dcmf_rtcp_strip_feedback(buf, len, &removed);
  if (removed > 0 || n == 0) {
    count(m, &m->c.feedback_stripped);
  }
  return n;
}

/* ---- counters ---- */

static void snapshot_take(struct e2ae_media *m, struct snapshot *out) {
  struct dcmf_assoc_stats as;
  memset(out, 0, sizeof(*out));
  out->c = m->c;
  out->profile = "";
  if (m->host->assoc_stats != NULL && m->host->assoc_stats(m->host, &as) == 0) {
    out->srtp_auth = as.srtp_auth;
    out->srtp_replay = as.srtp_replay;
    out->srtp_malformed = as.srtp_malformed;
    out->srtp_previous = as.srtp_previous;
    out->profile = as.srtp_profile != NULL ? as.srtp_profile : "";
  }
}

static void push(struct e2ae_media *m, const struct snapshot *s, int final) {
  char text[640]; /* 13 counters of 20 digits, the profile, the names */
  const struct counts *c = &s->c;
  snprintf(text, sizeof(text),
           "{\"profile\":\"%s\","
           "\"toCore\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"srtpPrevious\":%" PRIu64 "},"
           "\"toAccess\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64 "},"
           "\"drops\":{\"unknownSource\":%" PRIu64 ",\"beforeDtls\":%" PRIu64
           ",\"srtpAuth\":%" PRIu64 ",\"srtpReplay\":%" PRIu64
           ",\"malformed\":%" PRIu64 ",\"feedbackStripped\":%" PRIu64
           ",\"sendFailed\":%" PRIu64 ",\"noCoreAddress\":%" PRIu64 "},"
           "\"final\":%s}",
           s->profile, c->core_packets, c->core_bytes, s->srtp_previous,
           c->access_packets, c->access_bytes, c->unknown_source,
           c->before_dtls, s->srtp_auth, s->srtp_replay,
           c->malformed + s->srtp_malformed, c->feedback_stripped,
           c->send_failed, c->no_core_address, final ? "true" : "false");
  m->host->emit(m->host, DCMF_E2AE_EVENT, text);
  m->pushed = *s;
  m->has_pushed = 1;
}

/* Pushes what the counters say now if it differs from the last push (or
 * says anything at all, before the first); nothing is pending after. */
static void push_now(struct e2ae_media *m) {
  unqueue(m);
  struct snapshot s;
  snapshot_take(m, &s);
  int changed = !m->has_pushed
                    ? memcmp(&s.c, &(struct counts){0}, sizeof(s.c)) != 0 ||
                          s.srtp_auth || s.srtp_replay || s.srtp_malformed ||
                          s.profile[0]
                    : memcmp(&s, &m->pushed, sizeof(s)) != 0;
  if (changed) {
    push(m, &s, 0);
  }
}

/* ---- core -> access ---- */

static void forwarded_to_access(struct e2ae_media *m, struct sock *s,
                                const struct sockaddr *from, int rv, size_t n);

/* A core UDPTL datagram (T.38): one DTLS record toward the access side,
 * as it came (RFC 7345 §3). No parse: the relay is agnostic of T.38, and
 * the UDPTL sequence number and recovery are the endpoints' business. */
static void core_udptl(struct e2ae_media *m, struct sock *s,
                       const struct sockaddr *from, const uint8_t *p, size_t n,
                       unsigned flags) {
  if ((flags & UV_UDP_PARTIAL) || n < 2 ||
      n > DCMF_ASSOC_DTLSDATA_MAX_PACKET) {
    count(m, &m->c.malformed); /* not even a sequence number, or too big */
    return;
  }
  int rv = m->host->send(m->host, DCMF_ASSOC_DTLSDATA_FLOW, 1, p, n);
  forwarded_to_access(m, s, from, rv, n);
}

static void core_packet(struct e2ae_media *m, struct sock *s,
                        const struct sockaddr *from, uint8_t *p, size_t n,
                        unsigned flags) {
  if (!source_ok(m, s, from)) {
    count(m, &m->c.unknown_source);
    return;
  }
  if (m->udptl) {
    core_udptl(m, s, from, p, n, flags);
    return;
  }
  if ((flags & UV_UDP_PARTIAL) || n > DCMF_ASSOC_SRTP_MAX_PACKET || n < 2 ||
      (p[0] >> 6) != 2) {
    count(m, &m->c.malformed);
    return;
  }
  int rtcp = is_rtcp(p);
  uint32_t ssrc = 0;
  if (rtcp) {
    if (dcmf_rtcp_validate(p, n, DCMF_RTCP_REDUCED_SIZE) != 0 ||
        dcmf_rtcp_sender_ssrc(p, n, &ssrc) != 0) {
      count(m, &m->c.malformed);
      return;
    }
  } else if (s->rtcp_only || n < 12) {
    count(m, &m->c.malformed); /* RTP on the RTCP port, or a short header */
    return;
  } else {
    ssrc = get32(p + 8);
  }
  if (rtcp && !feedback_passes(m)) {
    n = filter_rtcp(m, p, n);
    if (n == 0) {
      return;
    }
    /* The compound may now start with another packet (a reduced-size
     * PSFB before an RR): its sender is the flow. */
    if (dcmf_rtcp_sender_ssrc(p, n, &ssrc) != 0) {
      count(m, &m->c.malformed);
      return;
    }
  }
  int rv = m->host->send(m->host, ssrc, 1, p, n);
  forwarded_to_access(m, s, from, rv, n);
}

/* What became of a core packet handed to the association (|rv| of
 * host->send): counted, and its source latched if it was the first. */
static void forwarded_to_access(struct e2ae_media *m, struct sock *s,
                                const struct sockaddr *from, int rv,
                                size_t n) {
  if (rv == 0) {
    if (m->leg.latching && !s->has_latched) {
      /* The first forwarded packet's source, for good: one sent before
       * the association is keyed (anyone's) latches nothing. */
      latch(s, from);
    }
    m->c.access_bytes += n;
    count(m, &m->c.access_packets);
  } else if (rv == DCMF_ERR_INVALID || rv == DCMF_ERR_NOT_FOUND) {
    /* No keyed association: DTLS is not up (or is over). The SSRC is
     * the packet's own, so INVALID cannot mean a mismatch. */
    count(m, &m->c.before_dtls);
  } else if (rv == DCMF_ERR_MALFORMED) {
    count(m, &m->c.malformed); /* e.g. CSRCs or an extension past the end */
  } else {
    count(m, &m->c.send_failed);
  }
}

/* One datagram read from a core socket (udpread.h). */
static void on_core(void *user, uint8_t *buf, size_t nread,
                    const struct sockaddr *from, int truncated) {
  struct sock *s = user;
  if (s->m == NULL || nread == 0) {
    return; /* detached, or empty */
  }
  core_packet(s->m, s, from, buf, nread, truncated ? UV_UDP_PARTIAL : 0);
}

/* ---- the core sockets ---- */

static void sock_handle_closed(struct sock *s) {
  struct core *core = s->core;
  if (--core->handles == 0) {
    free(core);
  }
}

static void on_sock_closed(uv_handle_t *h) {
  sock_handle_closed(h->data);
}

static void on_rd_closed(uv_handle_t *h) {
  struct dcmf_udpread *rd = h->data;
  sock_handle_closed(rd->user);
}

/* Adopts |*fd| (set to -1: the socket is ours, closed with the handle). */
static int sock_open(struct e2ae_media *m, struct sock *s, int *fd,
                     int rtcp_only) {
  s->m = m;
  s->core = m->core;
  s->rtcp_only = rtcp_only;
  uv_udp_init(m->host->loop, &s->udp);
  s->udp.data = s;
  m->core->handles++;
  int rv = uv_udp_open(&s->udp, *fd);
  if (rv != 0) {
    close(*fd);
    *fd = -1;
    return rv;
  }
  *fd = -1;
  s->open = 1;
  uv_os_fd_t ufd = -1;
  (void)uv_fileno((uv_handle_t *)&s->udp, &ufd); /* open: cannot fail */
  rv = dcmf_udpread_start(&s->rd, m->host->loop, ufd, m->w->rx,
                          sizeof(m->w->rx), on_core, s);
  if (rv == 0) {
    s->reading = 1;
    s->rd.tally = m->w->rx_datagrams;
    m->core->handles++;
  }
  return rv;
}

static void core_close(struct core *core) {
  struct sock *socks[2] = {&core->rtp, &core->rtcp};
  int inited = core->handles;
  for (int i = 0; i < 2; i++) {
    socks[i]->m = NULL;
  }
  if (inited == 0) {
    free(core);
    return;
  }
  /* Only initialised handles are counted; rtp is initialised first,
   * and a socket's reader (udpread.h) right after it: it is closed
   * before the udp handle closes the socket. */
  for (int i = 0; i < 2 && inited > 0; i++) {
    if (socks[i]->reading) {
      socks[i]->reading = 0;
      dcmf_udpread_close(&socks[i]->rd, on_rd_closed);
      inited--;
    }
    uv_close((uv_handle_t *)&socks[i]->udp, on_sock_closed);
    inited--;
  }
}

/* Takes the core leg of the description: its settings, and its sockets
 * the first time. */
static void take_leg(struct e2ae_media *m) {
  struct dcmf_media_desc *d = m->host->desc;
  struct dcmf_media_rtpleg *leg = d->rtpleg;
  if ((d->assoc != DCMF_ASSOC_SRTP && d->assoc != DCMF_ASSOC_DTLS_DATA) ||
      leg == NULL) {
    return;
  }
  m->udptl = d->assoc == DCMF_ASSOC_DTLS_DATA;
  struct dcmf_media_rtpleg old = m->leg;
  m->leg = *leg;
  m->leg.rtp_fd = m->leg.rtcp_fd = -1;
  if (m->core == NULL) {
    if (leg->rtp_fd < 0) {
      return; /* an update cannot bring sockets */
    }
    m->core = calloc(1, sizeof(*m->core));
    if (m->core == NULL) {
      return;
    }
    int rv = sock_open(m, &m->core->rtp, &leg->rtp_fd, 0);
    if (rv == 0 && !leg->rtcp_mux && leg->rtcp_fd >= 0) {
      rv = sock_open(m, &m->core->rtcp, &leg->rtcp_fd, 1);
    }
    if (rv != 0) {
      DCMF_LOGW(m->host->log, "e2ae", "%s: core leg socket: %s", m->host->name,
                uv_strerror(rv));
      core_close(m->core);
      m->core = NULL;
      return;
    }
  } else if (old.latching != m->leg.latching ||
             memcmp(&old.remote_rtp, &m->leg.remote_rtp,
                    sizeof(old.remote_rtp)) ||
             memcmp(&old.remote_rtcp, &m->leg.remote_rtcp,
                    sizeof(old.remote_rtcp))) {
    /* A new core address or latching setting: latch again. */
    m->core->rtp.has_latched = m->core->rtcp.has_latched = 0;
  }
  /* The sockets are fixed at attach: without an RTCP socket (rtcp-mux,
   * or none was given) RTCP goes by the RTP one, whatever an update
   * says; with one, an update turning mux on leaves it unused. */
  if (!m->core->rtcp.open) {
    m->leg.rtcp_mux = 1;
  }
}

/* ---- the service hooks ---- */

static int e2ae_init(void **worker, const struct dcmf_svc_worker_env *env,
                     const void *config, char *err, size_t errlen) {
  const struct dcmf_e2ae_config *cfg = config;
  uint32_t push_ms =
      cfg != NULL && cfg->push_ms != 0 ? cfg->push_ms : DCMF_E2AE_PUSH_MS;
  if (push_ms > DCMF_E2AE_PUSH_MS_MAX) {
    snprintf(err, errlen, "e2ae counter push interval %u ms is over %u ms",
             push_ms, DCMF_E2AE_PUSH_MS_MAX);
    return DCMF_ERR_INVALID;
  }
  struct e2ae_worker *w = malloc(sizeof(*w));
  if (w == NULL) {
    return DCMF_ERR_NOMEM;
  }
  w->push_ms = push_ms;
  w->rx_datagrams = env->rx_datagrams;
  w->first = w->last = NULL;
  *worker = w;
  return 0;
}

static void e2ae_free(void *worker) {
  free(worker);
}

static int e2ae_attach(void **media, void *worker, struct dcmf_svc_host *host) {
  struct e2ae_media *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return DCMF_ERR_NOMEM;
  }
  m->host = host;
  m->w = worker;
  m->seen_profile = "";
  take_leg(m);
  *media = m;
  return 0;
}

static void e2ae_update(void *media) {
  take_leg(media);
}

static void e2ae_detach(void *media) {
  struct e2ae_media *m = media;
  unqueue(m);
  if (m->core != NULL) {
    struct snapshot s;
    snapshot_take(m, &s);
    push(m, &s, 1);
    core_close(m->core);
  }
  free(m);
}

/* Every worker tick (10 ms): the pushes that are due, from the head of
 * the queue; nothing else. A media with nothing counted is not in the
 * queue and costs no tick at all. */
static void e2ae_worker_tick(void *worker) {
  struct e2ae_worker *w = worker;
  if (w->first == NULL) {
    return;
  }
  /* Every media of the worker reads the same clock. */
  uint64_t now = w->first->host->now(w->first->host);
  while (w->first != NULL && w->first->due <= now) {
    push_now(w->first); /* takes it out of the queue */
  }
}

static int newly(uint64_t now, uint64_t was) {
  return now != 0 && was == 0;
}

/* The association was keyed, or refused an access datagram (counted in
 * its engine, which reaches the service by no other way): a new profile
 * or a first refusal of a kind is pushed at once, other growth within
 * the interval like any count. Cheap: a refusal flood costs a stats
 * read per datagram, no push. */
static void e2ae_assoc_changed(void *media) {
  struct e2ae_media *m = media;
  struct dcmf_assoc_stats as;
  if (m->core == NULL || m->host->assoc_stats == NULL ||
      m->host->assoc_stats(m->host, &as) != 0) {
    return;
  }
  const char *profile = as.srtp_profile != NULL ? as.srtp_profile : "";
  int news =
      strcmp(profile, m->seen_profile) != 0 ||
      newly(as.srtp_auth, m->seen_auth) ||
      newly(as.srtp_replay, m->seen_replay) ||
      /* reported summed with the service's own malformed */
      (m->c.malformed == 0 && newly(as.srtp_malformed, m->seen_malformed));
  int grew = as.srtp_auth != m->seen_auth || as.srtp_replay != m->seen_replay ||
             as.srtp_malformed != m->seen_malformed;
  m->seen_profile = profile;
  m->seen_auth = as.srtp_auth;
  m->seen_replay = as.srtp_replay;
  m->seen_malformed = as.srtp_malformed;
  if (news) {
    push_now(m);
  } else if (grew) {
    counted(m);
  }
}

static int e2ae_match(void *media, const struct dcmf_svc_flow *flow) {
  struct e2ae_media *m = media;
  return m->core != NULL &&
         flow->kind == (m->udptl ? DCMF_ASSOC_DTLS_DATA : DCMF_ASSOC_SRTP);
}

static int e2ae_open(void *media, const struct dcmf_svc_flow *flow,
                     void **chan) {
  (void)flow;
  (void)media;
  *chan = NULL; /* no per-SSRC state: packets go as they come */
  return 0;
}

/* Sends |n| bytes on core socket |s| to |to|, counted. */
static void core_send(struct e2ae_media *m, struct sock *s,
                      const struct sockaddr *to, const uint8_t *out,
                      size_t n) {
  uv_buf_t b = uv_buf_init((char *)out, (unsigned int)n);
  /* UDP: a datagram that cannot leave now is lost, and counted. */
  if (uv_udp_try_send(&s->udp, &b, 1, to) < 0) {
    count(m, &m->c.send_failed);
    return;
  }
  m->c.core_bytes += n;
  count(m, &m->c.core_packets);
}

/* access -> core, T.38: the record's payload is one UDPTL datagram. */
static void access_udptl(struct e2ae_media *m, const uint8_t *data,
                         size_t len) {
  if (len < 2) {
    count(m, &m->c.malformed);
    return;
  }
  const struct sockaddr *to = destination(m, &m->core->rtp);
  if (to == NULL) {
    count(m, &m->c.no_core_address);
    return;
  }
  core_send(m, &m->core->rtp, to, data, len);
}

/* access -> core */
static void e2ae_message(void *media, void *chan,
                         const struct dcmf_svc_flow *flow, int binary,
                         const uint8_t *data, size_t len) {
  (void)chan;
  (void)flow;
  (void)binary;
  struct e2ae_media *m = media;
  if (m->udptl) {
    access_udptl(m, data, len);
    return;
  }
  if (len < 2 || len > sizeof(m->w->tx)) {
    count(m, &m->c.malformed); /* the association hands up whole packets */
    return;
  }
  int rtcp = is_rtcp(data);
  struct sock *s = rtcp && !m->leg.rtcp_mux ? &m->core->rtcp : &m->core->rtp;
  const struct sockaddr *to = destination(m, s);
  if (to == NULL) {
    count(m, &m->c.no_core_address);
    return;
  }
  const uint8_t *out = data;
  size_t n = len;
  if (rtcp) {
    if (dcmf_rtcp_validate(data, len, DCMF_RTCP_REDUCED_SIZE) != 0) {
      count(m, &m->c.malformed);
      return;
    }
    if (!feedback_passes(m)) {
      memcpy(m->w->tx, data, len);
      n = filter_rtcp(m, m->w->tx, len);
      if (n == 0) {
        return;
      }
      out = m->w->tx;
    }
  }
  core_send(m, s, to, out, n);
}

const struct dcmf_service dcmf_e2ae_service = {
    .name = "e2ae",
    .init = e2ae_init,
    .free = e2ae_free,
    .worker_tick = e2ae_worker_tick,
    .attach = e2ae_attach,
    .update = e2ae_update,
    .detach = e2ae_detach,
    .assoc_changed = e2ae_assoc_changed,
    .match = e2ae_match,
    .open = e2ae_open,
    .message = e2ae_message,
};
