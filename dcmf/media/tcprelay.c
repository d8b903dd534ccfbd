#include "tcprelay.h"
#include "tcprelay_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <openssl/err.h>

#include "cert.h"
#include "errors.h"
#include "tcprelay_msrp.h"
#include "tlspump.h"

static const char *const leg_names[2] = {"access", "core"};

/* ---- handles ------------------------------------------------------------ */

static void relay_free(struct dcmf_tcprelay *r) {
  tcprelay_msrp_free(r);
  dcmf_tlspump_free(&r->tls);
  free(r);
}

/* Takes |r| off the host list at |*head| (live or closing). */
static void list_unlink(struct dcmf_tcprelay **head, struct dcmf_tcprelay *r) {
  if (r->prev != NULL) {
    r->prev->next = r->next;
  } else {
    *head = r->next;
  }
  if (r->next != NULL) {
    r->next->prev = r->prev;
  }
  r->next = r->prev = NULL;
}

static void list_push(struct dcmf_tcprelay **head, struct dcmf_tcprelay *r) {
  r->prev = NULL;
  r->next = *head;
  if (*head != NULL) {
    (*head)->prev = r;
  }
  *head = r;
}

static void relay_maybe_free(struct dcmf_tcprelay *r) {
  if (r->removed && r->handles == 0) {
    /* A removed relay still tied to its host is on its closing list; the
     * host's close unties every one (no events at shutdown). */
    if (r->h != NULL) {
      list_unlink(&r->h->closing, r);
      r->h->settings.emit(r->h->settings.user, &r->key, "RELEASED", "{}", 1);
    }
    relay_free(r);
  }
}

void tcprelay_on_handle_closed(uv_handle_t *hd) {
  struct dcmf_tcprelay *r = hd->data;
  free(hd);
  tcprelay_handle_gone(r);
}

void tcprelay_handle_gone(struct dcmf_tcprelay *r) {
  r->handles--;
  relay_maybe_free(r);
}

/* ---- events and counters ------------------------------------------------ */

void tcprelay_emitf(struct dcmf_tcprelay *r, const char *event,
                    const char *fmt1, const char *leg, const char *reason) {
  char detail[400], safe[200];
  size_t j = 0;
  for (size_t i = 0; reason[i] != '\0' && j + 1 < sizeof(safe); i++) {
    char ch = reason[i];
    safe[j++] =
        (ch == '"' || ch == '\\' || (unsigned char)ch < 0x20) ? '\'' : ch;
  }
  safe[j] = '\0';
  if (leg != NULL) {
    snprintf(detail, sizeof(detail), fmt1, leg, safe);
  } else {
    snprintf(detail, sizeof(detail), fmt1, safe);
  }
  DCMF_LOGI(r->h->settings.log, "tcprelay", "%s: %s %s", r->key.context_id,
            event, detail);
  r->h->settings.emit(r->h->settings.user, &r->key, event, detail, 0);
}

void tcprelay_push_counters(struct dcmf_tcprelay *r, int final) {
  char d[512];
  const struct counters *c = &r->c;
  snprintf(d, sizeof(d),
           "{\"toCore\":{\"bytes\":%llu,\"reads\":%llu},"
           "\"toAccess\":{\"bytes\":%llu,\"reads\":%llu},"
           "\"failures\":{\"connect\":%llu,\"timeout\":%llu,\"tls\":%llu,"
           "\"refusedSource\":%llu,\"reset\":%llu,\"tlsTruncated\":%llu},"
           "\"final\":%s}",
           (unsigned long long)c->bytes[CORE],
           (unsigned long long)c->reads[CORE],
           (unsigned long long)c->bytes[ACCESS],
           (unsigned long long)c->reads[ACCESS], (unsigned long long)c->connect,
           (unsigned long long)c->timeout, (unsigned long long)c->tls,
           (unsigned long long)c->refused_source, (unsigned long long)c->reset,
           (unsigned long long)c->truncated, final ? "true" : "false");
  r->dirty = 0;
  r->h->settings.emit(r->h->settings.user, &r->key, "TCP_COUNTERS", d, 0);
  if (r->msrp != NULL) {
    tcprelay_msrp_push(r, final);
  }
}

void tcprelay_tcp_failure(struct dcmf_tcprelay *r, int side,
                          const char *reason) {
  tcprelay_emitf(r, "TCP_FAILURE", "{\"leg\":\"%s\",\"reason\":\"%s\"}",
                 leg_names[side], reason);
}

/* ---- writing ------------------------------------------------------------ */

struct wbuf *tcprelay_wbuf_new(size_t cap) {
  return malloc(sizeof(struct wbuf) + cap);
}

static void on_written(uv_write_t *req, int status) {
  struct wbuf *wb = (struct wbuf *)req;
  struct leg *l = wb->to;
  struct dcmf_tcprelay *r = l->r;
  l->queued -= wb->len;
  free(wb);
  if (status < 0 && status != UV_ECANCELED && !r->ended) {
    r->c.reset++;
    tcprelay_relay_end(r, uv_strerror(status), 1);
    return;
  }
  if (!r->ended && r->msrp != NULL) {
    /* Room on a socket: the MSRP engine's output moves, and with it
     * the reading it held back; a close_notify among what TLS kept
     * back ends the relay. */
    tcprelay_msrp_pump(r);
    if (tcprelay_tls_settle(r)) {
      return;
    }
  }
  if (!r->ended) {
    tcprelay_update_reading(r);
  }
}

void tcprelay_leg_write(struct leg *l, struct wbuf *wb, size_t len) {
  wb->to = l;
  wb->len = len;
  if (l->s == NULL || l->closing) {
    free(wb);
    return;
  }
  uv_buf_t b = uv_buf_init((char *)wb->data, (unsigned)len);
  l->queued += len;
  int rv = uv_write(&wb->req, (uv_stream_t *)l->s, &b, 1, on_written);
  if (rv != 0) {
    /* Not queued (the socket failed under us): dropping the bytes and
     * relaying on would corrupt the stream, so the relay ends. */
    l->queued -= len;
    free(wb);
    struct dcmf_tcprelay *r = l->r;
    if (!r->ended) {
      char why[120];
      snprintf(why, sizeof(why), "write toward the %s peer failed: %s",
               leg_names[l->side], uv_strerror(rv));
      r->c.reset++;
      tcprelay_relay_end(r, why, 1);
    }
  }
}

void tcprelay_tls_flush(struct dcmf_tcprelay *r) {
  size_t n;
  while ((n = dcmf_tlspump_pending(&r->tls)) > 0) {
    if (n > DCMF_TCPRELAY_READ) {
      n = DCMF_TCPRELAY_READ;
    }
    struct wbuf *wb = tcprelay_wbuf_new(n);
    if (wb == NULL) {
      return;
    }
    n = dcmf_tlspump_drain(&r->tls, wb->data, n);
    tcprelay_leg_write(&r->leg[ACCESS], wb, n);
  }
}

/* Moves the plaintext TLS holds to the core leg (only once it is up),
 * then sends what reading made TLS answer (a no_renegotiation alert, a
 * TLS 1.3 KeyUpdate). */
void tcprelay_tls_plain_to_core(struct dcmf_tcprelay *r) {
  struct leg *core = &r->leg[CORE];
  int more = 1;
  if (r->msrp != NULL) {
    if (core->up && !core->closing) {
      tcprelay_msrp_pump(r); /* takes plaintext as far as it can go */
    }
    more = 0;
  }
  while (more && core->up && !core->closing) {
    struct wbuf *wb = tcprelay_wbuf_new(DCMF_TCPRELAY_READ);
    size_t filled = 0;
    if (wb == NULL) {
      break;
    }
    /* The pump gives one TLS record per read: fill the buffer with as
     * many as fit, so that a socket read of many small records costs
     * one write toward the core, not one per record. */
    while (filled < DCMF_TCPRELAY_READ) {
      size_t got = 0;
      if (dcmf_tlspump_read(&r->tls, wb->data + filled,
                            DCMF_TCPRELAY_READ - filled, &got) != 0 ||
          got == 0) {
        more = 0; /* and send what the read made TLS answer */
        break;
      }
      filled += got;
    }
    if (filled == 0) {
      free(wb);
      break;
    }
    r->c.bytes[CORE] += filled;
    r->dirty = 1;
    tcprelay_leg_write(core, wb, filled);
  }
  tcprelay_tls_flush(r);
}

/* ---- TLS ----------------------------------------------------------------- */

/* The certificate check of every TLS leg (RFC 8122): the self-signed
 * leaf must match a signalled fingerprint; libssl proves the peer holds
 * its key. A mismatch becomes a bad_certificate alert. */
static int tls_verify(X509_STORE_CTX *store, void *arg) {
  (void)arg;
  SSL *ssl =
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
  struct dcmf_tcprelay *r = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
  X509 *cert = X509_STORE_CTX_get0_cert(store);
  if (r == NULL || cert == NULL ||
      !dcmf_cert_x509_matches(&r->cfg.remote_fp, cert)) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  X509_STORE_CTX_set_error(store, X509_V_OK);
  return 1;
}

static void tls_failed(struct dcmf_tcprelay *r) {
  const char *why = dcmf_tlspump_get_reason(&r->tls);
  if (dcmf_tlspump_get_failure(&r->tls) == DCMF_TLSPUMP_FAIL_VERIFY) {
    why = "peer certificate does not match the signalled fingerprint";
  }
  r->c.tls++;
  tcprelay_emitf(r, "TLS_FAILURE", "{\"reason\":\"%s\"}", NULL, why);
  tcprelay_relay_end(r, "TLS failure", 0);
}

/* Delivers the plaintext TLS holds to the core, then acts on the state
 * reading it left: a close_notify or a failure found among the records
 * ends the relay. Returns 1 if the relay ended. */
/* A close_notify or a failure TLS has read ends the relay; returns 1
 * then. */
static int tls_end_if_over(struct dcmf_tcprelay *r) {
  switch (dcmf_tlspump_get_state(&r->tls)) {
  case DCMF_TLSPUMP_FAILED:
    tls_failed(r);
    return 1;
  case DCMF_TLSPUMP_CLOSED:
    tcprelay_relay_end(r, "TLS close_notify from the access peer", 0);
    return 1;
  default:
    return 0;
  }
}

/* The UE's FIN with no close_notify before it: a truncation (RFC 8446
 * section 6.1, RFC 5246 section 7.2.1), not a clean end; the core still
 * gets what was relayed, then its FIN. */
static void end_truncated(struct dcmf_tcprelay *r) {
  r->c.truncated++;
  tcprelay_relay_end(r,
                     "TLS truncated: FIN from the access peer without "
                     "close_notify",
                     0);
}

int tcprelay_tls_deliver(struct dcmf_tcprelay *r) {
  tcprelay_tls_plain_to_core(r);
  return tls_end_if_over(r) || r->ended;
}

int tcprelay_tls_settle(struct dcmf_tcprelay *r) {
  if (r->ended) {
    return 1;
  }
  if (!r->tls_started || tls_end_if_over(r)) {
    return r->tls_started;
  }
  if (dcmf_tlspump_get_state(&r->tls) != DCMF_TLSPUMP_OPEN) {
    return 0;
  }
  if (tcprelay_tls_deliver(r)) {
    return 1;
  }
  if (r->access_eof && (dcmf_tlspump_unread(&r->tls) == 0 ||
                        tcprelay_msrp_may_read(r, ACCESS))) {
    /* Every whole record the UE sent before its FIN is read (the engine
     * has room, so what TLS holds is at most a cut record): no
     * close_notify among them. */
    end_truncated(r);
    return 1;
  }
  return 0;
}

/* After anything TLS was given: its output, its state, its plaintext. */
static void tls_progress(struct dcmf_tcprelay *r) {
  tcprelay_tls_flush(r);
  switch (dcmf_tlspump_get_state(&r->tls)) {
  case DCMF_TLSPUMP_FAILED:
    tls_failed(r);
    return;
  case DCMF_TLSPUMP_CLOSED:
    tcprelay_tls_plain_to_core(r);
    tcprelay_relay_end(r, "TLS close_notify from the access peer", 0);
    return;
  case DCMF_TLSPUMP_OPEN:
    if (tcprelay_tls_deliver(r)) {
      return;
    }
    break;
  default:
    break;
  }
  tcprelay_update_reading(r);
}

void tcprelay_tls_start(struct dcmf_tcprelay *r) {
  if (r->tls_started || !r->cfg.tls || !r->leg[ACCESS].up ||
      r->cfg.remote_fp.count == 0 || r->ended) {
    return;
  }
  if (dcmf_tlspump_init(&r->tls, r->h->tls_ctx,
                        r->cfg.tls_client ? DCMF_TLSPUMP_CLIENT
                                          : DCMF_TLSPUMP_SERVER,
                        NULL) != 0) {
    r->c.tls++;
    tcprelay_emitf(r, "TLS_FAILURE", "{\"reason\":\"%s\"}", NULL,
                   "out of memory");
    tcprelay_relay_end(r, "TLS failure", 1);
    return;
  }
  dcmf_tlspump_set_app_data(&r->tls, r);
  r->tls_started = 1;
  r->deadline = uv_now(r->h->settings.loop) + r->cfg.timeout_ms;
  tls_progress(r);
}

int tcprelay_tls_open(const struct dcmf_tcprelay *r) {
  return r->tls_started && dcmf_tlspump_get_state(&r->tls) == DCMF_TLSPUMP_OPEN;
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  (void)hd;
  (void)suggested;
  struct wbuf *wb = tcprelay_wbuf_new(DCMF_TCPRELAY_READ);
  *buf = wb != NULL ? uv_buf_init((char *)wb->data, DCMF_TCPRELAY_READ)
                    : uv_buf_init(NULL, 0);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  struct dcmf_tcprelay *r = st->data;
  struct wbuf *wb =
      buf->base != NULL
          ? (struct wbuf *)((uint8_t *)buf->base - offsetof(struct wbuf, data))
          : NULL;
  int side = (uv_tcp_t *)st == r->leg[ACCESS].s ? ACCESS : CORE;
  int other = 1 - side;
  if (n <= 0 || r->ended) {
    free(wb);
    if (n == UV_EOF && side == ACCESS && r->msrp != NULL &&
        tcprelay_tls_open(r) && !r->ended &&
        dcmf_tlspump_unread(&r->tls) > 0) {
      /* Records the MSRP engine had no room for yet: what ends the
       * relay is decided once they are read (tcprelay_tls_settle). */
      r->access_eof = 1;
      if (!tcprelay_tls_settle(r)) {
        tcprelay_update_reading(r);
      }
    } else if (n == UV_EOF && side == ACCESS && tcprelay_tls_open(r) &&
               !r->ended) {
      /* A close_notify would have ended the relay already: a FIN alone
       * may be an attacker cutting the stream short. */
      end_truncated(r);
    } else if (n == UV_EOF) {
      tcprelay_relay_end(r,
                         side == ACCESS ? "FIN from the access peer"
                                        : "FIN from the core peer",
                         0);
    } else if (n < 0) {
      r->c.reset++;
      tcprelay_relay_end(r, uv_strerror((int)n), 1);
    }
    return;
  }
  if (side == ACCESS && r->cfg.tls) {
    r->c.reads[CORE]++;
    dcmf_tlspump_feed(&r->tls, wb->data, (size_t)n);
    free(wb);
    tls_progress(r);
    return;
  }
  r->c.reads[other]++;
  r->dirty = 1;
  if (side == CORE && r->msrp != NULL) {
    tcprelay_msrp_from_core(r, wb->data, (size_t)n);
    free(wb);
    if (!tcprelay_tls_settle(r)) {
      tcprelay_update_reading(r);
    }
    return;
  }
  if (side == CORE && r->cfg.tls) {
    r->c.bytes[ACCESS] += (uint64_t)n;
    int rv = dcmf_tlspump_write(&r->tls, wb->data, (size_t)n);
    free(wb);
    if (rv != 0) {
      tcprelay_relay_end(r, "TLS write failed", 1);
      return;
    }
    tcprelay_tls_flush(r);
  } else {
    r->c.bytes[other] += (uint64_t)n;
    tcprelay_leg_write(&r->leg[other], wb, (size_t)n);
  }
  tcprelay_update_reading(r);
}

/* Whether leg |side| may be read now: its bytes have somewhere to go. */
static int may_read(const struct dcmf_tcprelay *r, int side) {
  const struct leg *l = &r->leg[side], *o = &r->leg[1 - side];
  if (!l->up || l->closing || (side == ACCESS && r->access_eof)) {
    return 0;
  }
  if (side == ACCESS && r->cfg.tls) {
    if (!r->tls_started) {
      return 0; /* held: no fingerprints yet */
    }
    /* Reading makes TLS answer the UE (handshake flights, a
     * no_renegotiation alert, KeyUpdates): not while the UE has not
     * taken what it was already sent, so that queue stays bounded. */
    if (l->queued >= DCMF_TCPRELAY_BUFFER) {
      return 0;
    }
    enum dcmf_tlspump_state st = dcmf_tlspump_get_state(&r->tls);
    if (st == DCMF_TLSPUMP_HANDSHAKE) {
      return 1;
    }
    if (st != DCMF_TLSPUMP_OPEN) {
      return 0; /* closed or failed: the relay is ending */
    }
  }
  if (side == CORE && r->cfg.tls && !tcprelay_tls_open(r)) {
    return 0;
  }
  if (r->msrp != NULL && !tcprelay_msrp_may_read(r, side)) {
    return 0; /* the MSRP engine holds what it can take */
  }
  size_t limit = o->queued > 0 && !l->reading ? DCMF_TCPRELAY_BUFFER / 2
                                              : DCMF_TCPRELAY_BUFFER;
  return o->up && !o->closing && o->queued < limit;
}

void tcprelay_update_reading(struct dcmf_tcprelay *r) {
  for (int side = 0; side < 2 && !r->ended; side++) {
    struct leg *l = &r->leg[side];
    int want = may_read(r, side);
    if (want && !l->reading) {
      l->reading = uv_read_start((uv_stream_t *)l->s, on_alloc, on_read) == 0;
    } else if (!want && l->reading) {
      uv_read_stop((uv_stream_t *)l->s);
      l->reading = 0;
    }
  }
}

/* ---- the host ------------------------------------------------------------ */

static uint64_t key_hash(const struct dcmf_media_key *k) {
  return dcmf_media_key_hash(k);
}

static int key_equal(const struct dcmf_hashmap_entry *e, const void *key) {
  const struct dcmf_tcprelay *r =
      DCMF_HASHMAP_ITEM(e, const struct dcmf_tcprelay, entry);
  return dcmf_media_key_equal(&r->key, key);
}

static void on_push(uv_timer_t *t) {
  struct dcmf_tcprelay_host *h = t->data;
  for (struct dcmf_tcprelay *r = h->live; r != NULL; r = r->next) {
    if (r->dirty && !r->ended) {
      tcprelay_push_counters(r, 0);
    }
  }
}

int dcmf_tcprelay_host_init(struct dcmf_tcprelay_host *h,
                            const struct dcmf_tcprelay_settings *settings) {
  memset(h, 0, sizeof(*h));
  h->settings = *settings;
  SSL_CTX *s = SSL_CTX_new(TLS_method());
  if (s == NULL || SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate(s, settings->cert) != 1 ||
      SSL_CTX_use_PrivateKey(s, settings->pkey) != 1) {
    SSL_CTX_free(s);
    ERR_clear_error();
    return DCMF_ERR_SYSTEM;
  }
  /* No resumption: every session is bound to the fingerprints of its
   * call. No renegotiation (RFC 5746 is then moot; docs/e2ae.md). */
  SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(s, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     NULL);
  SSL_CTX_set_cert_verify_callback(s, tls_verify, NULL);
  h->tls_ctx = s;
  h->push_timer = malloc(sizeof(*h->push_timer));
  if (h->push_timer == NULL ||
      dcmf_hashmap_init(&h->by_key, 64, key_equal) != 0) {
    free(h->push_timer);
    SSL_CTX_free(s);
    return DCMF_ERR_NOMEM;
  }
  uv_timer_init(settings->loop, h->push_timer);
  h->push_timer->data = h;
  uv_timer_start(h->push_timer, on_push, DCMF_TCPRELAY_PUSH_MS,
                 DCMF_TCPRELAY_PUSH_MS);
  uv_unref((uv_handle_t *)h->push_timer);
  return 0;
}

static void relay_add(struct dcmf_tcprelay_host *h,
                      struct dcmf_media_desc *desc) {
  struct dcmf_tcprelay *r = calloc(1, sizeof(*r));
  /* The establishment timer is the relay's TLS bound: without it a
   * handshake could wait for ever, so the ADD fails instead. */
  uv_timer_t *timer = malloc(sizeof(*timer));
  if (r == NULL || timer == NULL) {
    free(r);
    free(timer);
    h->settings.emit(h->settings.user, &desc->key, "TCP_FAILURE",
                     "{\"leg\":\"access\",\"reason\":\"out of memory\"}", 1);
    return; /* desc's fds are closed by the caller's free */
  }
  r->h = h;
  r->key = desc->key;
  r->cfg = *desc->tcpleg;
  desc->tcpleg->fd[0] = desc->tcpleg->fd[1] = -1;
  if (r->cfg.timeout_ms == 0) {
    r->cfg.timeout_ms = DCMF_TCPRELAY_TIMEOUT_MS;
  }
  for (int i = 0; i < 2; i++) {
    r->leg[i].r = r;
    r->leg[i].side = i;
  }
  if (r->cfg.msrp_aware && tcprelay_msrp_new(r) != 0) {
    for (int i = 0; i < 2; i++) {
      desc->tcpleg->fd[i] = r->cfg.fd[i]; /* closed by the caller's free */
    }
    tcprelay_msrp_free(r);
    free(r);
    free(timer);
    h->settings.emit(h->settings.user, &desc->key, "TCP_FAILURE",
                     "{\"leg\":\"access\",\"reason\":\"MSRP relay "
                     "cannot start\"}",
                     1);
    return;
  }
  dcmf_hashmap_insert(&h->by_key, &r->entry, key_hash(&r->key));
  list_push(&h->live, r);
  r->timer = timer;
  uv_timer_init(h->settings.loop, r->timer);
  r->timer->data = r;
  r->handles++;
  uv_timer_start(r->timer, tcprelay_on_tick, TICK_MS, TICK_MS);
  tcprelay_leg_start(&r->leg[ACCESS]);
  tcprelay_leg_start(&r->leg[CORE]);
}

static void relay_unlink(struct dcmf_tcprelay_host *h,
                         struct dcmf_tcprelay *r) {
  dcmf_hashmap_remove(&h->by_key, &r->entry);
  list_unlink(&h->live, r);
}

static void relay_update(struct dcmf_tcprelay *r,
                         const struct dcmf_media_tcpleg *next) {
  int released = r->cfg.remote_fp.count == 0 && next->remote_fp.count > 0;
  r->cfg.remote_fp = next->remote_fp;
  for (int i = 0; i < 2; i++) {
    /* A connection that is up stays where it is (TCP cannot move); a
     * new remote address serves the connects still to come and the
     * check of a connection still to be accepted (a passive leg waiting
     * for it starts accepting). */
    tcprelay_leg_set_remote(&r->leg[i], &next->remote[i]);
  }
  /* The handshake's bound starts when it can (tcprelay_tls_start: the
   * access leg up and the fingerprints known), not with this UPDATE: an
   * UPDATE before the UE connected leaves the access leg's bound as it
   * was. */
  if (released && !r->ended) {
    tcprelay_tls_start(r);
  }
  if (r->msrp != NULL) {
    const char *paths[2] = {next->msrp_peer_path[0], next->msrp_peer_path[1]};
    tcprelay_msrp_update(r, paths);
  }
}

void dcmf_tcprelay_host_handle(struct dcmf_tcprelay_host *h,
                               enum dcmf_media_op op,
                               struct dcmf_media_desc *desc) {
  struct dcmf_tcprelay *r = DCMF_HASHMAP_ITEM(
      dcmf_hashmap_find(&h->by_key, key_hash(&desc->key), &desc->key),
      struct dcmf_tcprelay, entry);
  switch (op) {
  case DCMF_MEDIA_OP_ADD:
    if (r == NULL) {
      relay_add(h, desc);
    }
    break;
  case DCMF_MEDIA_OP_UPDATE:
    if (r != NULL) {
      relay_update(r, desc->tcpleg);
    }
    break;
  case DCMF_MEDIA_OP_REMOVE:
    if (r == NULL) {
      h->settings.emit(h->settings.user, &desc->key, "RELEASED", "{}", 1);
      break;
    }
    relay_unlink(h, r);
    if (!r->ended) {
      tcprelay_relay_end(r, "context deleted", 0);
    }
    for (int i = 0; i < 2; i++) {
      if (r->cfg.fd[i] >= 0) {
        close(r->cfg.fd[i]); /* a stateless leg that never started */
        r->cfg.fd[i] = -1;
      }
    }
    r->removed = 1;
    /* Its connections may linger (tcpconn.h): the host's close aborts
     * them and unties the relay (relay_maybe_free). */
    list_push(&h->closing, r);
    relay_maybe_free(r);
    break;
  }
  dcmf_media_desc_free(desc);
}

void dcmf_tcprelay_host_close(struct dcmf_tcprelay_host *h) {
  while (h->live != NULL) {
    struct dcmf_tcprelay *r = h->live;
    relay_unlink(h, r);
    r->ended = 1; /* no events at shutdown */
    for (int i = 0; i < 2; i++) {
      tcprelay_leg_close(&r->leg[i], 1); /* one closing gracefully too */
      if (r->cfg.fd[i] >= 0) {
        close(r->cfg.fd[i]);
      }
    }
    if (r->timer != NULL) {
      uv_close((uv_handle_t *)r->timer, tcprelay_on_handle_closed);
      r->timer = NULL;
    }
    tcprelay_msrp_end(r);
    r->removed = 1;
    r->h = NULL;
    if (r->handles == 0) {
      relay_free(r);
    }
  }
  /* Relays removed earlier whose connections still close gracefully: a
   * worker shutting down does not wait out their linger (an abort cuts
   * it short, tcpconn.h), and they no longer know the host, so nothing
   * they do once gone raises an event or touches it. */
  while (h->closing != NULL) {
    struct dcmf_tcprelay *r = h->closing;
    list_unlink(&h->closing, r);
    r->h = NULL;
    for (int i = 0; i < 2; i++) {
      tcprelay_leg_close(&r->leg[i], 1);
    }
    if (r->handles == 0) {
      relay_free(r);
    }
  }
  if (h->push_timer != NULL) {
    uv_close((uv_handle_t *)h->push_timer, (uv_close_cb)free);
    h->push_timer = NULL;
  }
  dcmf_hashmap_free(&h->by_key);
  SSL_CTX_free(h->tls_ctx);
  h->tls_ctx = NULL;
}
