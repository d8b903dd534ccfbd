/* MSRP over a data channel <-> MSRP over TCP as a session service
 * (msrp_dc_svc.h says what it does). Glue: the protocol work is the
 * relay engine's (msrp_relay.h), the TCP connection msrp_dc_tcp.h's. */
#include "msrp_dc_svc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "errors.h"
#include "log.h"
#include "msrp_dc_tcp.h"
#include "msrp_relay.h"

/* A channel message the relay refused for now (its stream queue full). */
struct held {
  struct held *next;
  size_t len;
  uint8_t data[];
};

/* What the media of one worker share: the core connections they let go
 * that still close gracefully, reset when the worker stops (mdc_free)
 * rather than waited for. */
struct mdc_worker {
  struct dcmf_msrp_dc_tcp_closing closing;
};

struct mdc_media {
  struct dcmf_svc_host *host;
  struct mdc_worker *worker; /* NULL: none (a test without the worker) */
  int has_leg;
  struct dcmf_media_msrpleg leg; /* fd -1: the socket is the tcp's */
  struct dcmf_msrp_relay relay;
  int relay_ok;
  struct dcmf_msrp_dc_tcp *tcp; /* NULL before start and once down */
  int tcp_up;
  int dc_open;
  int ended; /* one leg went: the other is closing, nothing relays */
  int close_pending; /* the channel opened after the end: close it */
  /* Stream bytes read but not taken by the relay (back-pressure). */
  uint8_t *rest;
  size_t rest_len;
  struct held *held_first, *held_last;
  size_t held_bytes;
  /* Counters. */
  uint64_t to_core_bytes, to_access_msgs, to_access_bytes;
  int dirty;
  uint64_t last_push;
};

static void fill_random(void *user, uint8_t *buf, size_t len) {
  (void)user;
  if (RAND_bytes(buf, (int)len) != 1) {
    /* OpenSSL's CSPRNG does not fail once seeded; never leave it zero. */
    for (size_t i = 0; i < len; i++) {
      buf[i] = (uint8_t)(i * 131u + 7u);
    }
  }
}

/* ---- counters ---- */

static void push(struct mdc_media *m, int final) {
  const struct dcmf_msrp_relay_stats *st =
      m->relay_ok ? dcmf_msrp_relay_stats(&m->relay) : NULL;
  uint64_t from[2], refused;
  dcmf_msrp_relay_stats_sums(st, from, &refused);
  char detail[512];
  snprintf(detail, sizeof(detail),
           "{\"toCore\":{\"bytes\":%" PRIu64 "},\"toAccess\":{\"messages\":%"
           PRIu64 ",\"bytes\":%" PRIu64 "},\"chunks\":{\"fromAccess\":%" PRIu64
           ",\"fromCore\":%" PRIu64 ",\"splits\":%" PRIu64 ",\"pieces\":%"
           PRIu64 ",\"answers\":%" PRIu64 ",\"refused\":%" PRIu64
           "},\"peakMem\":%zu,\"final\":%s}",
           m->to_core_bytes, m->to_access_msgs, m->to_access_bytes,
           from[DCMF_MSRP_RELAY_FROM_MESSAGES],
           from[DCMF_MSRP_RELAY_FROM_STREAM], st ? st->splits : 0,
           st ? st->pieces : 0, st ? st->answers : 0, refused,
           st ? st->peak_mem : (size_t)0, final ? "true" : "false");
  m->host->emit(m->host, DCMF_MSRP_DC_EVENT, detail);
  m->dirty = 0;
  m->last_push = m->host->now(m->host);
}

static void counted(struct mdc_media *m) {
  if (!m->dirty) {
    m->dirty = 1;
    m->host->want_tick(m->host);
  }
}

/* ---- ending ---- */

static void drop_held(struct mdc_media *m) {
  while (m->held_first != NULL) {
    struct held *h = m->held_first;
    m->held_first = h->next;
    free(h);
  }
  m->held_last = NULL;
  m->held_bytes = 0;
}

/* Ends the relay of |m|: TCP closed (FIN, or reset when |reset|), the
 * channel closed (an outgoing stream reset), TCP_CLOSED raised once. */
static void end_media(struct mdc_media *m, const char *reason, int reset) {
  if (m->ended) {
    return;
  }
  m->ended = 1;
  char detail[96];
  snprintf(detail, sizeof(detail), "{\"reason\":\"%s\"}", reason);
  m->host->emit(m->host, "TCP_CLOSED", detail);
  if (m->tcp != NULL) {
    struct dcmf_msrp_dc_tcp *t = m->tcp;
    m->tcp = NULL;
    dcmf_msrp_dc_tcp_close(t, reset);
  }
  drop_held(m);
  if (m->dc_open) {
    m->host->close(m->host, m->leg.sid); /* runs mdc_closed */
  }
  push(m, 0); /* what it came to, at once */
}

/* ---- relaying ---- */

static void pump(struct mdc_media *m);

/* Channel -> relay: held messages first, in order. */
static void feed_held(struct mdc_media *m) {
  uint64_t now = m->host->now(m->host);
  while (m->held_first != NULL && !m->ended) {
    struct held *h = m->held_first;
    int rv = dcmf_msrp_relay_recv_message(&m->relay, h->data, h->len, now);
    if (rv == DCMF_ERR_EXHAUSTED) {
      return;
    }
    m->held_first = h->next;
    if (m->held_first == NULL) {
      m->held_last = NULL;
    }
    m->held_bytes -= h->len;
    free(h);
    if (rv < 0) {
      end_media(m, "error", 1);
      return;
    }
  }
}

/* Stream bytes kept back are offered again; reading resumes once all
 * are taken. */
static void feed_rest(struct mdc_media *m) {
  uint64_t now = m->host->now(m->host);
  while (m->rest_len > 0 && !m->ended &&
         dcmf_msrp_relay_stream_wanted(&m->relay)) {
    int rv = dcmf_msrp_relay_recv_stream(&m->relay, m->rest, m->rest_len, now);
    if (rv < 0) {
      end_media(m, rv == DCMF_ERR_NOMEM ? "error" : "malformed", 1);
      return;
    }
    if (rv == 0) {
      break;
    }
    memmove(m->rest, m->rest + rv, m->rest_len - (size_t)rv);
    m->rest_len -= (size_t)rv;
  }
}

static void pump(struct mdc_media *m) {
  if (m->ended || !m->relay_ok) {
    return;
  }
  uint64_t now = m->host->now(m->host);
  /* Relay -> channel, while SCTP takes them. */
  size_t len;
  const uint8_t *msg;
  while (m->dc_open && (msg = dcmf_msrp_relay_peek_message(&m->relay, &len))) {
    int rv = m->host->send(m->host, m->leg.sid, 1, msg, len);
    if (rv == DCMF_ERR_EXHAUSTED) {
      break; /* |writable| comes back */
    }
    if (rv != 0) {
      end_media(m, "error", 1);
      return;
    }
    m->to_access_msgs++;
    m->to_access_bytes += len;
    counted(m);
    if (dcmf_msrp_relay_pop_message(&m->relay, now) < 0) {
      end_media(m, "malformed", 1);
      return;
    }
  }
  /* Relay -> TCP, one write in flight. */
  const uint8_t *out;
  if (m->tcp != NULL && dcmf_msrp_dc_tcp_can_write(m->tcp) &&
      (out = dcmf_msrp_relay_peek_stream(&m->relay, &len)) != NULL) {
    int n = dcmf_msrp_dc_tcp_write(m->tcp, out, len);
    if (n < 0) {
      end_media(m, "error", 1);
      return;
    }
    m->to_core_bytes += (size_t)n;
    counted(m);
    if (dcmf_msrp_relay_consume_stream(&m->relay, (size_t)n, now) < 0) {
      end_media(m, "malformed", 1);
      return;
    }
  }
  feed_held(m);
  feed_rest(m);
  if (m->tcp != NULL && !m->ended) {
    dcmf_msrp_dc_tcp_read(m->tcp, m->dc_open && m->rest_len == 0 &&
                                      dcmf_msrp_relay_stream_wanted(&m->relay));
  }
  if (dcmf_msrp_relay_next_expiry(&m->relay) != UINT64_MAX) {
    m->host->want_tick(m->host);
  }
}

/* ---- the TCP leg's callbacks ---- */

static void tcp_up(void *user) {
  struct mdc_media *m = user;
  m->tcp_up = 1;
  pump(m);
}

static void tcp_data(void *user, const uint8_t *p, size_t n) {
  struct mdc_media *m = user;
  if (m->ended || !m->relay_ok) { /* pump reads only with a relay */
    return;
  }
  if (m->rest_len > 0) {
    /* Reading stops while bytes are kept (pump), so this is a read the
     * stop came too late for: it is kept behind them. */
    if (m->rest_len + n > 2 * DCMF_MSRP_DC_TCP_READ) {
      end_media(m, "error", 1);
      return;
    }
    memcpy(m->rest + m->rest_len, p, n);
    m->rest_len += n;
    pump(m);
    return;
  }
  int rv = dcmf_msrp_relay_recv_stream(&m->relay, p, n,
                                       m->host->now(m->host));
  counted(m); /* chunks from the core, the relay's memory */
  if (rv < 0) {
    end_media(m, rv == DCMF_ERR_NOMEM ? "error" : "malformed", 1);
    return;
  }
  if ((size_t)rv < n) {
    /* Kept for later; reading stops (pump) until all is taken. At most
     * two reads are kept. */
    if (m->rest == NULL) {
      m->rest = malloc(2 * DCMF_MSRP_DC_TCP_READ);
    }
    if (m->rest == NULL) {
      end_media(m, "error", 1);
      return;
    }
    memcpy(m->rest, p + rv, n - (size_t)rv);
    m->rest_len = n - (size_t)rv;
  }
  pump(m);
}

static void tcp_wrote(void *user, size_t n) {
  (void)n;
  pump(user);
}

static void tcp_down(void *user, const char *reason, int establishing) {
  struct mdc_media *m = user;
  m->tcp = NULL; /* closed by the module */
  if (establishing) {
    char detail[96];
    snprintf(detail, sizeof(detail), "{\"leg\":\"core\",\"reason\":\"%s\"}",
             reason);
    m->host->emit(m->host, "TCP_FAILURE", detail);
  }
  end_media(m, reason, 0);
}

static const struct dcmf_msrp_dc_tcp_cbs tcp_cbs = {tcp_up, tcp_data,
                                                    tcp_wrote, tcp_down};

/* ---- the service ---- */

/* Sets the relay up from m->leg. */
static int relay_start(struct mdc_media *m) {
  const struct dcmf_media_msrpleg *leg = &m->leg;
  struct dcmf_msrp_relay_settings rs = {
      .mode = leg->aware ? DCMF_MSRP_RELAY_AWARE : DCMF_MSRP_RELAY_AGNOSTIC,
      .max_message_size = leg->peer_max_message_size,
      /* A chunk's head must fit one message with room for a body (the
       * engine wants max_header + 1024): a small max-message-size gets a
       * smaller head limit (the API takes 2048 and up). */
      .max_header = leg->peer_max_message_size >= 16384 + 1024
                        ? 16384
                        : leg->peer_max_message_size - 1024,
      .dc_own_uri = leg->dc_own_uri,
      .tcp_own_uri = leg->tcp_own_uri,
      .dc_peer_path = leg->dc_peer_path,
      .tcp_peer_path = leg->tcp_peer_path,
      .rng = {fill_random, NULL},
  };
  int rv = dcmf_msrp_relay_init(&m->relay, &rs);
  m->relay_ok = rv == 0;
  return rv;
}

static int mdc_init(void **worker, const struct dcmf_svc_worker_env *env,
                    const void *config, char *err, size_t errlen) {
  (void)env;
  (void)config;
  (void)err;
  (void)errlen;
  *worker = calloc(1, sizeof(struct mdc_worker));
  return *worker != NULL ? 0 : DCMF_ERR_NOMEM;
}

/* Every media is detached: the connections still lingering are reset,
 * so the worker's loop ends now, not after DCMF_TCPCONN_LINGER_MS. */
static void mdc_free(void *worker) {
  struct mdc_worker *w = worker;
  dcmf_msrp_dc_tcp_abort_closing(&w->closing);
  free(w);
}

static int mdc_attach(void **media, void *worker, struct dcmf_svc_host *host) {
  struct mdc_media *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return DCMF_ERR_NOMEM;
  }
  m->host = host;
  m->worker = worker;
  *media = m;
  struct dcmf_media_msrpleg *leg = host->desc->msrpleg;
  if (leg == NULL || leg->fd < 0) {
    return 0; /* not an MSRP media: this service stays out of it */
  }
  m->has_leg = 1;
  m->leg = *leg;
  m->leg.fd = -1;
  int fd = leg->fd;
  leg->fd = -1; /* ours now */
  /* Aware without the core's path yet: the relay starts once an update
   * brings it (mdc_update); TCP is set up meanwhile. */
  int wait_path = leg->aware && leg->tcp_peer_path[0] == '\0';
  int rv = wait_path ? 0 : relay_start(m);
  if (rv == 0) {
    int defer = leg->setup == DCMF_TCP_ACTIVE &&
                leg->handling == DCMF_TCP_STATELESS;
    rv = dcmf_msrp_dc_tcp_start(&m->tcp, host->loop, fd, leg->setup,
                                &leg->remote, defer, leg->timeout_ms,
                                m->worker != NULL ? &m->worker->closing : NULL,
                                &tcp_cbs, m);
    fd = -1;
  }
  if (rv != 0) {
    if (fd >= 0) {
      close(fd);
    }
    m->tcp = NULL;
    DCMF_LOGW(host->log, "msrp-dc", "%s: the MSRP relay cannot start: %s",
              host->name, dcmf_strerror(rv));
    char detail[96];
    snprintf(detail, sizeof(detail), "{\"leg\":\"core\",\"reason\":\"%s\"}",
             "setup");
    host->emit(host, "TCP_FAILURE", detail);
    m->ended = 1;
  }
  return 0;
}

/* An aware relay takes a far end's new path (a re-offer may change the
 * dcsa path, RFC 8873 §4.4, or the core's a=path). */
static void update_peer_path(struct mdc_media *m, int leg, char *kept,
                             size_t cap, const char *next) {
  if (next[0] == '\0' || strcmp(kept, next) == 0) {
    return;
  }
  int rv = dcmf_msrp_relay_set_peer_path(&m->relay, leg, next);
  if (rv != 0) {
    DCMF_LOGW(m->host->log, "msrp-dc", "%s: the new MSRP path is not taken: %s",
              m->host->name, dcmf_strerror(rv));
    return;
  }
  snprintf(kept, cap, "%s", next);
}

/* A PATCH may change the dcsa values: a running aware relay names the
 * new paths from the next chunk on (its own URIs stay). An aware relay
 * still waiting for the core's path starts now if the update brings
 * it. */
static void mdc_update(void *media) {
  struct mdc_media *m = media;
  const struct dcmf_media_msrpleg *leg = m->host->desc->msrpleg;
  if (!m->has_leg || m->ended || leg == NULL || !m->leg.aware) {
    return;
  }
  if (m->relay_ok) {
    update_peer_path(m, DCMF_MSRP_RELAY_FROM_MESSAGES, m->leg.dc_peer_path,
                     sizeof(m->leg.dc_peer_path), leg->dc_peer_path);
    update_peer_path(m, DCMF_MSRP_RELAY_FROM_STREAM, m->leg.tcp_peer_path,
                     sizeof(m->leg.tcp_peer_path), leg->tcp_peer_path);
    pump(m);
    return;
  }
  if (leg->tcp_peer_path[0] == '\0') {
    return;
  }
  memcpy(m->leg.dc_peer_path, leg->dc_peer_path, sizeof(m->leg.dc_peer_path));
  memcpy(m->leg.tcp_peer_path, leg->tcp_peer_path,
         sizeof(m->leg.tcp_peer_path));
  if (relay_start(m) != 0) {
    DCMF_LOGW(m->host->log, "msrp-dc", "%s: the MSRP relay cannot start",
              m->host->name);
    end_media(m, "error", 1);
    return;
  }
  pump(m);
}

static void mdc_detach(void *media) {
  struct mdc_media *m = media;
  if (m->has_leg) {
    if (m->tcp != NULL) {
      dcmf_msrp_dc_tcp_close(m->tcp, 0);
      m->tcp = NULL;
    }
    push(m, 1);
  }
  drop_held(m);
  free(m->rest);
  if (m->relay_ok) {
    dcmf_msrp_relay_free(&m->relay);
  }
  free(m);
}

static void mdc_tick(void *media) {
  struct mdc_media *m = media;
  if (!m->has_leg) {
    return;
  }
  uint64_t now = m->host->now(m->host);
  if (m->relay_ok && !m->ended &&
      dcmf_msrp_relay_next_expiry(&m->relay) <= now) {
    if (dcmf_msrp_relay_handle_expiry(&m->relay, now) != 0) {
      end_media(m, "error", 1);
    }
    pump(m);
  }
  if (m->dirty) {
    if (now - m->last_push >= DCMF_MSRP_DC_PUSH_MS || m->last_push == 0) {
      push(m, 0);
    } else {
      m->host->want_tick(m->host);
    }
  }
  if (m->relay_ok && dcmf_msrp_relay_next_expiry(&m->relay) != UINT64_MAX) {
    m->host->want_tick(m->host);
  }
}

static int mdc_match(void *media, const struct dcmf_svc_flow *flow) {
  struct mdc_media *m = media;
  return m->has_leg && flow->kind == DCMF_ASSOC_SCTP &&
         flow->id == m->leg.sid && strcmp(flow->protocol, "msrp") == 0;
}

static int mdc_open(void *media, const struct dcmf_svc_flow *flow,
                    void **chan) {
  (void)flow;
  struct mdc_media *m = media;
  if (m->dc_open) {
    return DCMF_ERR_INVALID; /* one MSRP session per channel */
  }
  m->dc_open = 1;
  *chan = NULL;
  if (m->ended) {
    /* The core leg failed before the channel opened: the channel goes
     * too, from the loop (|open| may not close the flow it opens). */
    m->close_pending = 1;
    m->host->wake(m->host);
    return 0;
  }
  if (m->tcp != NULL) {
    dcmf_msrp_dc_tcp_connect(m->tcp); /* stateless: now, else no effect */
  }
  /* Relaying starts from the loop: a failure while sending could close
   * the flow, which |open| must not do. */
  m->host->wake(m->host);
  return 0;
}

static void mdc_message(void *media, void *chan,
                        const struct dcmf_svc_flow *flow, int binary,
                        const uint8_t *data, size_t len) {
  (void)chan;
  (void)flow;
  (void)binary;
  struct mdc_media *m = media;
  if (m->ended) {
    return;
  }
  int rv = DCMF_ERR_EXHAUSTED; /* held until the relay takes it */
  if (m->held_first == NULL && m->relay_ok) {
    rv = dcmf_msrp_relay_recv_message(&m->relay, data, len,
                                      m->host->now(m->host));
  }
  if (rv == DCMF_ERR_EXHAUSTED) {
    if (m->held_bytes + len > DCMF_MSRP_DC_BACKLOG) {
      DCMF_LOGW(m->host->log, "msrp-dc",
                "%s: the core reads too slowly: more than %d bytes of "
                "channel messages wait; the media ends",
                m->host->name, DCMF_MSRP_DC_BACKLOG);
      end_media(m, "overflow", 1);
      return;
    }
    struct held *h = malloc(sizeof(*h) + len);
    if (h == NULL) {
      end_media(m, "error", 1);
      return;
    }
    h->next = NULL;
    h->len = len;
    memcpy(h->data, data, len);
    if (m->held_last != NULL) {
      m->held_last->next = h;
    } else {
      m->held_first = h;
    }
    m->held_last = h;
    m->held_bytes += len;
  } else if (rv < 0) {
    end_media(m, "error", 1);
    return;
  }
  counted(m); /* chunks from the channel */
  pump(m);
}

static void mdc_writable(void *media) {
  struct mdc_media *m = media;
  if (m->close_pending) {
    m->close_pending = 0;
    if (m->dc_open) {
      m->host->close(m->host, m->leg.sid); /* runs mdc_closed */
    }
    return;
  }
  if (m->has_leg) {
    pump(m);
  }
}

static void mdc_closed(void *media, void *chan,
                       const struct dcmf_svc_flow *flow) {
  (void)chan;
  (void)flow;
  struct mdc_media *m = media;
  m->dc_open = 0;
  /* What was queued toward the core still goes, then the FIN. */
  end_media(m, "channelClosed", 0);
}

/* An update: a core leg not up yet takes the core's remote first (it
 * may come with the core's answer, docs/e2ae.md: a passive leg accepts
 * nothing until then), then the MSRP values (mdc_update). */
static void mdc_update_leg(void *media) {
  struct mdc_media *m = media;
  const struct dcmf_media_msrpleg *leg = m->host->desc->msrpleg;
  if (m->has_leg && m->tcp != NULL && leg != NULL) {
    dcmf_msrp_dc_tcp_set_remote(m->tcp, &leg->remote);
  }
  mdc_update(media);
}

const struct dcmf_service dcmf_msrp_dc_service = {
    .name = "msrp-dc",
    .init = mdc_init,
    .free = mdc_free,
    .attach = mdc_attach,
    .update = mdc_update_leg,
    .detach = mdc_detach,
    .tick = mdc_tick,
    .match = mdc_match,
    .open = mdc_open,
    .message = mdc_message,
    .writable = mdc_writable,
    .closed = mdc_closed,
};
