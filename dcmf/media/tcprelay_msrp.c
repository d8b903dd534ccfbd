/* MSRP application-aware relaying on an e2ae TCP relay (tcprelay_msrp.h
 * says what it does). Glue: the protocol work is msrp_relay.h's. */
#include "tcprelay_msrp.h"
#include "tcprelay_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "errors.h"
#include "tlspump.h"

#define MAX_HEAD 16384

/* Transaction ids of the pieces of a split SEND (RFC 4975 §7.1: at
 * least 64 bits of randomness). */
static void tid_random(void *user, uint8_t *buf, size_t len) {
  (void)user;
  if (RAND_bytes(buf, (int)len) != 1) {
    /* Not reached once OpenSSL is seeded; a fixed pattern is still a
     * valid id, and the relay's own splits are few. */
    memset(buf, 0x5a, len);
  }
}

static uint64_t now_ms(const struct dcmf_tcprelay *r) {
  return uv_now(r->h->settings.loop);
}

static int engine_start(struct dcmf_tcprelay *r) {
  struct tcprelay_msrp *m = r->msrp;
  const struct dcmf_media_tcpleg *c = &r->cfg;
  if (c->msrp_peer_path[ACCESS][0] == '\0' ||
      c->msrp_peer_path[CORE][0] == '\0') {
    return 0; /* waits for an update */
  }
  struct dcmf_msrp_relay_settings s = {
      .mode = DCMF_MSRP_RELAY_AWARE,
      /* A chunk of the largest body, rewritten, passes whole. */
      .max_message_size = DCMF_TCPRELAY_MSRP_MAX_BODY + 2 * MAX_HEAD,
      .max_header = MAX_HEAD,
      .max_chunk_body = DCMF_TCPRELAY_MSRP_MAX_BODY,
      .queue_limit = DCMF_TCPRELAY_BUFFER,
      /* The engine's message leg is the UE's, its stream leg the core's. */
      .dc_own_uri = c->msrp_own_uri[ACCESS],
      .tcp_own_uri = c->msrp_own_uri[CORE],
      .dc_peer_path = c->msrp_peer_path[ACCESS],
      .tcp_peer_path = c->msrp_peer_path[CORE],
      .rng = {tid_random, NULL},
  };
  int rv = dcmf_msrp_relay_init(&m->relay, &s);
  m->relay_ok = rv == 0;
  return rv;
}

int tcprelay_msrp_new(struct dcmf_tcprelay *r) {
  struct tcprelay_msrp *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return DCMF_ERR_NOMEM;
  }
  struct dcmf_msrp_limits lim = {MAX_HEAD, DCMF_TCPRELAY_MSRP_MAX_BODY};
  (void)dcmf_msrp_framer_init(&m->access_in, &lim);
  m->plain = malloc(DCMF_TCPRELAY_READ);
  m->core_rest = malloc(DCMF_TCPRELAY_READ);
  r->msrp = m;
  if (m->plain == NULL || m->core_rest == NULL) {
    return DCMF_ERR_NOMEM;
  }
  return engine_start(r);
}

void tcprelay_msrp_update(struct dcmf_tcprelay *r, const char *paths[2]) {
  struct tcprelay_msrp *m = r->msrp;
  static const int engine_leg[2] = {DCMF_MSRP_RELAY_FROM_MESSAGES,
                                    DCMF_MSRP_RELAY_FROM_STREAM};
  if (r->ended) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    if (paths[i][0] == '\0' ||
        strcmp(paths[i], r->cfg.msrp_peer_path[i]) == 0) {
      continue;
    }
    /* A re-offer changed a far end's path: a running engine names it
     * from its next chunk on (msrp_relay.h). */
    if (m->relay_ok && dcmf_msrp_relay_set_peer_path(&m->relay, engine_leg[i],
                                                     paths[i]) != 0) {
      tcprelay_relay_end(r, "MSRP relay cannot take the new path", 1);
      return;
    }
    snprintf(r->cfg.msrp_peer_path[i], sizeof(r->cfg.msrp_peer_path[i]), "%s",
             paths[i]);
  }
  if (m->relay_ok) {
    return;
  }
  if (engine_start(r) != 0) {
    tcprelay_relay_end(r, "MSRP relay cannot start", 1);
    return;
  }
  tcprelay_msrp_pump(r);
  if (!tcprelay_tls_settle(r)) {
    tcprelay_update_reading(r);
  }
}

int tcprelay_msrp_may_read(const struct dcmf_tcprelay *r, int side) {
  const struct tcprelay_msrp *m = r->msrp;
  if (!m->relay_ok) {
    return 0;
  }
  if (side == ACCESS) {
    return m->plain_off == m->plain_len &&
           dcmf_msrp_relay_message_wanted(&m->relay);
  }
  return m->core_rest_off == m->core_rest_len &&
         dcmf_msrp_relay_stream_wanted(&m->relay);
}

/* The stream of |side| cannot be cut into chunks: this relay ends. */
static void malformed(struct dcmf_tcprelay *r, int side, int err) {
  char why[160];
  r->msrp->malformed++;
  snprintf(why, sizeof(why), "%s from the %s peer: %s",
           err == DCMF_ERR_NOMEM ? "out of memory relaying MSRP"
                                 : "malformed MSRP",
           side == ACCESS ? "access" : "core", dcmf_strerror(err));
  DCMF_LOGW(r->h->settings.log, "tcprelay", "%s: %s", r->key.context_id, why);
  tcprelay_relay_end(r, why, 1);
}

/* Engine output to the sockets while their queues hold less than
 * |bound|. Returns 1 if anything moved. */
static int drain(struct dcmf_tcprelay *r, size_t bound) {
  struct tcprelay_msrp *m = r->msrp;
  struct leg *core = &r->leg[CORE], *acc = &r->leg[ACCESS];
  uint64_t now = now_ms(r);
  int moved = 0;
  size_t len;
  const uint8_t *p;
  while (!r->ended && core->up && !core->closing && core->queued < bound &&
         (p = dcmf_msrp_relay_peek_stream(&m->relay, &len)) != NULL) {
    size_t n = len < DCMF_TCPRELAY_READ ? len : DCMF_TCPRELAY_READ;
    struct wbuf *wb = tcprelay_wbuf_new(n);
    if (wb == NULL) {
      malformed(r, CORE, DCMF_ERR_NOMEM);
      return 0;
    }
    memcpy(wb->data, p, n);
    int rv = dcmf_msrp_relay_consume_stream(&m->relay, n, now);
    m->to_core_bytes += n;
    r->c.bytes[CORE] += n;
    r->dirty = 1;
    moved = 1;
    tcprelay_leg_write(core, wb, n);
    if (rv < 0) {
      malformed(r, CORE, rv);
      return 0;
    }
  }
  while (!r->ended && tcprelay_tls_open(r) && !acc->closing &&
         acc->queued < bound &&
         (p = dcmf_msrp_relay_peek_message(&m->relay, &len)) != NULL) {
    if (dcmf_tlspump_write(&r->tls, p, len) != 0) {
      tcprelay_relay_end(r, "TLS write failed", 1);
      return 0;
    }
    m->to_access_msgs++;
    m->to_access_bytes += len;
    r->c.bytes[ACCESS] += len;
    r->dirty = 1;
    moved = 1;
    int rv = dcmf_msrp_relay_pop_message(&m->relay, now);
    tcprelay_tls_flush(r);
    if (rv < 0) {
      malformed(r, CORE, rv);
      return 0;
    }
  }
  return moved;
}

/* Core bytes kept back, into the engine. Returns 1 if any were taken. */
static int feed_core_rest(struct dcmf_tcprelay *r) {
  struct tcprelay_msrp *m = r->msrp;
  size_t left = m->core_rest_len - m->core_rest_off;
  if (left == 0 || !dcmf_msrp_relay_stream_wanted(&m->relay)) {
    return 0;
  }
  int rv = dcmf_msrp_relay_recv_stream(
      &m->relay, m->core_rest + m->core_rest_off, left, now_ms(r));
  if (rv < 0) {
    malformed(r, CORE, rv);
    return 0;
  }
  m->core_rest_off += (size_t)rv;
  if (m->core_rest_off == m->core_rest_len) {
    m->core_rest_off = m->core_rest_len = 0;
  }
  return rv > 0;
}

/* The UE's plaintext: chunks out of the framer into the engine, bytes
 * into the framer, plaintext out of TLS, while the engine takes
 * messages. Returns 1 if anything moved. */
static int feed_access(struct dcmf_tcprelay *r) {
  struct tcprelay_msrp *m = r->msrp;
  int moved = 0;
  while (!r->ended && dcmf_msrp_relay_message_wanted(&m->relay)) {
    struct dcmf_msrp_chunk c;
    int rv = dcmf_msrp_framer_next(&m->access_in, &c);
    if (rv == 1) {
      rv = dcmf_msrp_relay_recv_message(&m->relay, c.raw, c.raw_len, now_ms(r));
      if (rv < 0) {
        malformed(r, ACCESS, rv); /* only NOMEM: message_wanted said 1 */
        return 0;
      }
      moved = 1;
      continue;
    }
    if (rv < 0) {
      malformed(r, ACCESS, rv);
      return 0;
    }
    if (m->plain_off < m->plain_len) {
      rv = dcmf_msrp_framer_feed(&m->access_in, m->plain + m->plain_off,
                                 m->plain_len - m->plain_off);
      if (rv < 0) {
        malformed(r, ACCESS, rv);
        return 0;
      }
      if (rv == 0) {
        break; /* the framer is full and holds no chunk: cannot be */
      }
      m->plain_off += (size_t)rv;
      moved = 1;
      continue;
    }
    size_t got = 0;
    if (!tcprelay_tls_open(r) ||
        dcmf_tlspump_read(&r->tls, m->plain, DCMF_TCPRELAY_READ, &got) != 0 ||
        got == 0) {
      break; /* no plaintext now; a close_notify is the caller's */
    }
    m->plain_len = got;
    m->plain_off = 0;
    moved = 1;
  }
  return moved;
}

static void on_expiry(uv_timer_t *t) {
  struct dcmf_tcprelay *r = t->data;
  if (r->ended || !r->msrp->relay_ok) {
    return;
  }
  if (dcmf_msrp_relay_handle_expiry(&r->msrp->relay, now_ms(r)) != 0) {
    malformed(r, CORE, DCMF_ERR_NOMEM);
    return;
  }
  tcprelay_msrp_pump(r);
  if (!tcprelay_tls_settle(r)) {
    tcprelay_update_reading(r);
  }
}

/* Arms the timer at the engine's next expiry (a split waiting for its
 * pieces' responses), or stops it. */
static void arm_expiry(struct dcmf_tcprelay *r) {
  struct tcprelay_msrp *m = r->msrp;
  uint64_t at = dcmf_msrp_relay_next_expiry(&m->relay);
  if (at == UINT64_MAX) {
    if (m->timer != NULL) {
      uv_timer_stop(m->timer);
    }
    return;
  }
  if (m->timer == NULL) {
    m->timer = malloc(sizeof(*m->timer));
    if (m->timer == NULL) {
      malformed(r, CORE, DCMF_ERR_NOMEM);
      return;
    }
    uv_timer_init(r->h->settings.loop, m->timer);
    m->timer->data = r;
    r->handles++;
  }
  uint64_t now = now_ms(r);
  uv_timer_start(m->timer, on_expiry, at > now ? at - now : 0, 0);
}

void tcprelay_msrp_pump(struct dcmf_tcprelay *r) {
  struct tcprelay_msrp *m = r->msrp;
  if (!m->relay_ok) {
    return;
  }
  /* Each round moves bytes or stops; the queues and the framer are
   * bounded, so it ends. */
  int moved = 1;
  while (moved && !r->ended) {
    moved = drain(r, DCMF_TCPRELAY_BUFFER);
    moved |= !r->ended && feed_core_rest(r);
    moved |= !r->ended && feed_access(r);
  }
  if (!r->ended) {
    arm_expiry(r);
  }
  if (!r->ended && r->tls_started) {
    /* Reading may have made TLS answer (an alert, a KeyUpdate). */
    tcprelay_tls_flush(r);
  }
}

void tcprelay_msrp_from_core(struct dcmf_tcprelay *r, const uint8_t *data,
                             size_t n) {
  struct tcprelay_msrp *m = r->msrp;
  int rv = dcmf_msrp_relay_recv_stream(&m->relay, data, n, now_ms(r));
  if (rv < 0) {
    malformed(r, CORE, rv);
    return;
  }
  if ((size_t)rv < n) {
    /* Kept; the core leg is not read until the engine took it all
     * (tcprelay_msrp_may_read), and a read is at most this size. */
    memcpy(m->core_rest, data + rv, n - (size_t)rv);
    m->core_rest_off = 0;
    m->core_rest_len = n - (size_t)rv;
  }
  tcprelay_msrp_pump(r);
}

void tcprelay_msrp_push(struct dcmf_tcprelay *r, int final) {
  const struct tcprelay_msrp *m = r->msrp;
  const struct dcmf_msrp_relay_stats *st =
      m->relay_ok ? dcmf_msrp_relay_stats(&m->relay) : NULL;
  uint64_t from[2], refused;
  dcmf_msrp_relay_stats_sums(st, from, &refused);
  char d[512];
  snprintf(
      d, sizeof(d),
      "{\"toCore\":{\"bytes\":%" PRIu64 "},\"toAccess\":{\"messages\":%" PRIu64
      ",\"bytes\":%" PRIu64 "},\"chunks\":{\"fromAccess\":%" PRIu64
      ",\"fromCore\":%" PRIu64 ",\"splits\":%" PRIu64 ",\"pieces\":%" PRIu64
      ",\"answers\":%" PRIu64 ",\"refused\":%" PRIu64 "},\"malformed\":%" PRIu64
      ",\"peakMem\":%zu,\"final\":%s}",
      m->to_core_bytes, m->to_access_msgs, m->to_access_bytes,
      from[DCMF_MSRP_RELAY_FROM_MESSAGES], from[DCMF_MSRP_RELAY_FROM_STREAM],
      st ? st->splits : 0, st ? st->pieces : 0, st ? st->answers : 0, refused,
      m->malformed, st ? st->peak_mem : (size_t)0, final ? "true" : "false");
  r->h->settings.emit(r->h->settings.user, &r->key, "MSRP_COUNTERS", d, 0);
}

void tcprelay_msrp_flush(struct dcmf_tcprelay *r) {
  if (r->msrp != NULL && r->msrp->relay_ok) {
    (void)drain(r, SIZE_MAX);
  }
}

void tcprelay_msrp_end(struct dcmf_tcprelay *r) {
  struct tcprelay_msrp *m = r->msrp;
  if (m != NULL && m->timer != NULL) {
    uv_close((uv_handle_t *)m->timer, tcprelay_on_handle_closed);
    m->timer = NULL;
  }
}

void tcprelay_msrp_free(struct dcmf_tcprelay *r) {
  struct tcprelay_msrp *m = r->msrp;
  if (m == NULL) {
    return;
  }
  if (m->relay_ok) {
    dcmf_msrp_relay_free(&m->relay);
  }
  dcmf_msrp_framer_free(&m->access_in);
  free(m->plain);
  free(m->core_rest);
  free(m);
  r->msrp = NULL;
}
