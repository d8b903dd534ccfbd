#include "ue.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "buf.h"
#include "datachannel.h"
#include "dcstack.h"
#include "errors.h"
#include "fingerprint.h"
#include "h1resp.h"
#include "stun.h"

#define CHECK_INTERVAL_MS 50
#define CHECK_TRIES 100
/* Consent freshness (RFC 7675) as a phone does it, and the phone's bound
 * on silence: after ICE a check goes out every |consent_interval_ms|;
 * when nothing at all (answer, DTLS, SCTP) came from the MF for
 * |consent_silence_ms|, the MF is taken as gone. A vanished MF whose
 * port is closed is noticed sooner: the socket is connected to the MF,
 * so the ICMP port unreachable that a check (or any retransmission)
 * provokes fails the phone at once. */
#define CONSENT_INTERVAL_MS 1000
#define CONSENT_SILENCE_MS 10000

struct dcmf_ue {
  uv_loop_t *loop;
  uv_udp_t udp;
  uv_timer_t timer;
  uv_timer_t deadline; /* the channel or a response is overdue */
  uv_timer_t consent;  /* the next consent check, after ICE */
  uint64_t consent_interval_ms, consent_silence_ms;
  uint64_t heard_ms; /* uv_now() of the last datagram from the MF */
  uint64_t timeout_ms; /* 0: no deadline */
  struct dcmf_tickq *ticks;
  struct dcmf_tickq_node tick; /* in |ticks| while SCTP needs a tick */
  int handles_open;
  struct dcmf_ue_callbacks cbs;
  void *user;
  struct dcmf_dtls_ctx *dtls_ctx;
  struct dcmf_ue_remote remote;
  char ufrag[16], pwd[32];
  uint16_t port;
  uint8_t txid[DCMF_STUN_TXID_LEN];
  uint64_t tie_breaker;
  int checks_sent, ice_done, failed, closing;
  uint64_t started_ns;
  struct dcmf_dcstack *stack;
  struct dcmf_dc *dc; /* the stack's channel table */
  /* The response being read: the h1resp engine (the one HTTP/1 response
   * parser) frames it; |rx| keeps its raw bytes until its head is read,
   * for the head's text (--include prints it as it came). */
  struct dcmf_h1resp h1;
  struct dcmf_buf rx, head, body;
  int status, head_seen;
  uint16_t sid; /* the channel HTTP goes on (0: bootstrap) */
  int got_first_byte;
  uint8_t rxbuf[65536];
};

static void deadline_arm(struct dcmf_ue *ue);

static void fail(struct dcmf_ue *ue, const char *why) {
  if (!ue->failed && !ue->closing) {
    ue->failed = 1;
    ue->cbs.failed(ue->user, ue, why);
  }
}

/* Why the MF's address cannot be reached, from a socket error (what the
 * kernel made of an ICMP error on the connected socket), or NULL when the
 * error says nothing about the MF (EAGAIN: the send buffer is full, and
 * the protocols retransmit). */
static const char *unreachable_why(int err) {
  switch (err) {
  case UV_ECONNREFUSED:
    return "the MF's media port is closed (ICMP port unreachable): "
           "the MF is gone";
  case UV_EHOSTUNREACH:
  case UV_ENETUNREACH:
    return "the MF's address is unreachable (ICMP)";
  default:
    return NULL;
  }
}

static void udp_send(struct dcmf_ue *ue, const uint8_t *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned int)len);
  /* connected to the MF (dcmf_ue_connect): no address */
  int rv = uv_udp_try_send(&ue->udp, &b, 1, NULL);
  const char *why = rv < 0 ? unreachable_why(rv) : NULL;
  if (why != NULL) {
    fail(ue, why);
  }
}

/* ---- HTTP client on the channel ------------------------------------------ */

/* The text of the final head in |raw| (informational heads skipped),
 * without its closing blank line. Returns 0 or -1 if it is not there. */
static int head_text(const struct dcmf_buf *raw, struct dcmf_buf *out) {
  size_t at = 0;
  for (;;) {
    const char *end = memmem(raw->data + at, raw->len - at, "\r\n\r\n", 4);
    if (end == NULL) {
      return -1;
    }
    size_t len = (size_t)(end - (raw->data + at));
    if (len >= 10 && raw->data[at + 9] == '1') { /* "HTTP/1.1 1xx" */
      at += len + 4;
      continue;
    }
    out->len = 0;
    return dcmf_buf_append(out, raw->data + at, len) == 0 &&
                   dcmf_buf_append(out, "", 1) == 0
               ? 0
               : -1;
  }
}

static int h1_head(void *user, int status,
                   const struct dcmf_h1resp_header *headers, size_t n,
                   int64_t content_length) {
  (void)headers;
  (void)n;
  (void)content_length;
  struct dcmf_ue *ue = user;
  ue->status = status;
  ue->head_seen = 1;
  if (head_text(&ue->rx, &ue->head) == 0) {
    return 0;
  }
  /* Bare LF line ends (which http_parser accepts): show the status. */
  ue->head.len = 0;
  return dcmf_buf_printf(&ue->head, "HTTP/1.1 %d", status) == 0 &&
                 dcmf_buf_append(&ue->head, "", 1) == 0
             ? 0
             : DCMF_ERR_NOMEM;
}

static int h1_body(void *user, const uint8_t *data, size_t len) {
  struct dcmf_ue *ue = user;
  return dcmf_buf_append(&ue->body, data, len) == 0 ? 0 : DCMF_ERR_NOMEM;
}

static const struct dcmf_h1resp_callbacks h1_cbs = {
    .head = h1_head,
    .body = h1_body, /* the end is the feed's COMPLETE */
};

/* Reads response bytes; each complete response goes to the callback. */
static void http_consume(struct dcmf_ue *ue, const uint8_t *data,
                         size_t len) {
  size_t off = 0;
  while (off < len && !ue->closing) {
    if (!ue->head_seen &&
        dcmf_buf_append(&ue->rx, data + off, len - off) != 0) {
      fail(ue, "out of memory");
      return;
    }
    size_t used = 0;
    enum dcmf_h1resp_state st =
        dcmf_h1resp_feed(&ue->h1, data + off, len - off, &used);
    off += used;
    if (st == DCMF_H1RESP_ERROR) {
      fail(ue, dcmf_h1resp_get_reason(&ue->h1));
      return;
    }
    if (st != DCMF_H1RESP_COMPLETE) {
      return; /* the rest comes in later messages */
    }
    uv_timer_stop(&ue->deadline);
    ue->cbs.response(ue->user, ue, ue->status, ue->head.data,
                     (const uint8_t *)(ue->body.data ? ue->body.data : ""),
                     ue->body.len);
    if (ue->closing) {
      return; /* the callback closed us; the buffers go with the phone */
    }
    dcmf_h1resp_reset(&ue->h1, 0);
    ue->rx.len = ue->body.len = ue->head.len = 0;
    ue->head_seen = 0;
    ue->got_first_byte = 0;
  }
}

/* A request went out: its response is due within the timeout. */
static int request_sent(struct dcmf_ue *ue, int rv) {
  if (rv == 0) {
    deadline_arm(ue);
  }
  return rv;
}

static int dc_open(void *user, const struct dcmf_svc_flow *ch, void **slot) {
  struct dcmf_ue *ue = user;
  (void)slot;
  if (ch->id == ue->sid && !ue->closing) {
    uv_timer_stop(&ue->deadline); /* open: requests have their own */
    ue->cbs.ready(ue->user, ue);
  }
  return 0;
}

static void dc_message(void *user, const struct dcmf_svc_flow *ch,
                       void *slot, int binary, const uint8_t *data,
                       size_t len) {
  (void)binary;
  (void)slot;
  struct dcmf_ue *ue = user;
  if (ch->id != ue->sid || ue->closing) {
    return;
  }
  if (!ue->got_first_byte) {
    ue->got_first_byte = 1;
    ue->cbs.first_byte(ue->user, ue);
  }
  http_consume(ue, data, len);
}

static void dc_closed(void *user, const struct dcmf_svc_flow *ch,
                      void **slot) {
  struct dcmf_ue *ue = user;
  (void)slot;
  if (ch->id == ue->sid) {
    fail(ue, "the HTTP channel closed");
  }
}

int dcmf_ue_get(struct dcmf_ue *ue, const char *path) {
  char req[2048];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: \r\n\r\n", path);
  if (n < 0 || (size_t)n >= sizeof(req) || ue->dc == NULL) {
    return DCMF_ERR_INVALID;
  }
  return request_sent(
      ue, dcmf_dc_send(ue->dc, ue->sid, 0, (const uint8_t *)req, (size_t)n));
}

int dcmf_ue_post(struct dcmf_ue *ue, const char *path, const char *body,
                 size_t len) {
  char head[2048];
  int n = snprintf(head, sizeof(head),
                   "POST %s HTTP/1.1\r\nHost: \r\n"
                   "Content-Type: application/octet-stream\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   path, len);
  if (n < 0 || (size_t)n >= sizeof(head) || ue->dc == NULL) {
    return DCMF_ERR_INVALID;
  }
  int rv = dcmf_dc_send(ue->dc, ue->sid, 0, (const uint8_t *)head,
                        (size_t)n);
  if (rv == 0 && len > 0) {
    rv = dcmf_dc_send(ue->dc, ue->sid, 1, (const uint8_t *)body, len);
  }
  return request_sent(ue, rv);
}

/* ---- the DTLS/SCTP/channel stack ---------------------------------------- */

static void stack_send_datagram(void *user, const uint8_t *d, size_t len) {
  udp_send(user, d, len);
}

static void stack_state(void *user, enum dcmf_dcstack_state state,
                        const char *reason) {
  struct dcmf_ue *ue = user;
  if (state != DCMF_DCSTACK_DTLS_CONNECTED && state != DCMF_DCSTACK_ASSOC_UP) {
    fail(ue, reason);
  }
}

static void stack_need_tick(void *user) {
  struct dcmf_ue *ue = user;
  dcmf_tickq_join(ue->ticks, &ue->tick);
}

static const struct dcmf_dcstack_callbacks stack_cbs = {
    .send_datagram = stack_send_datagram,
    .state_changed = stack_state,
    .flow_open = dc_open,
    .flow_message = dc_message,
    .flow_closed = dc_closed,
    .need_tick = stack_need_tick,
};

/* After a stack tick, when the stack asked: SCTP's timer work. */
static void on_tick(struct dcmf_tickq_node *node) {
  struct dcmf_ue *ue = DCMF_TICKQ_OWNER(node, struct dcmf_ue, tick);
  if (ue->stack != NULL) {
    dcmf_dcstack_handle_tick(ue->stack);
  }
}

/* No answer in time: the MF is gone or stuck. A phone without this bound
 * waits as long as SCTP takes to give up, which with nothing in flight
 * is never. */
static void on_deadline(uv_timer_t *t) {
  struct dcmf_ue *ue = t->data;
  const struct dcmf_dc_channel *ch =
      ue->dc != NULL ? dcmf_dc_find(ue->dc, ue->sid) : NULL;
  char why[96];
  snprintf(why, sizeof(why), "%s within %llu ms",
           ch != NULL && ch->open ? "no response" : "the channel did not open",
           (unsigned long long)ue->timeout_ms);
  fail(ue, why);
}

static void deadline_arm(struct dcmf_ue *ue) {
  if (ue->timeout_ms > 0 && !ue->closing) {
    uv_timer_start(&ue->deadline, on_deadline, ue->timeout_ms, 0);
  }
}

/* ---- ICE (controlling, one pair) ---------------------------------------- */

/* A connectivity check (|nominate|: with USE-CANDIDATE, the transaction
 * of ue->txid) or a consent check (a fresh transaction, RFC 7675 5.1). */
static void send_binding(struct dcmf_ue *ue, int nominate) {
  char username[160];
  snprintf(username, sizeof(username), "%s:%s", ue->remote.ufrag, ue->ufrag);
  struct dcmf_stun_request req = {
      .username = username,
      .key = (const uint8_t *)ue->remote.pwd,
      .key_len = strlen(ue->remote.pwd),
      .priority = 0x6E0001FF,
      .role = DCMF_STUN_ROLE_CONTROLLING,
      .tie_breaker = ue->tie_breaker,
      .use_candidate = nominate,
  };
  if (nominate) {
    memcpy(req.txid, ue->txid, sizeof(ue->txid));
  } else {
    RAND_bytes(req.txid, sizeof(req.txid));
  }
  uint8_t out[512];
  size_t len;
  if (dcmf_stun_build_request(out, sizeof(out), &len, &req) == 0) {
    if (nominate && ue->started_ns == 0) {
      ue->started_ns = uv_hrtime();
    }
    ue->checks_sent += nominate;
    udp_send(ue, out, len); /* may fail the phone */
  }
}

static void send_check(struct dcmf_ue *ue) {
  send_binding(ue, 1);
}

/* Every consent interval after ICE: the MF is given up after a silence
 * of consent_silence_ms; else one more consent check goes out. */
static void on_consent(uv_timer_t *t) {
  struct dcmf_ue *ue = t->data;
  if (ue->closing || ue->failed) {
    return;
  }
  uint64_t silent = uv_now(ue->loop) - ue->heard_ms;
  if (silent >= ue->consent_silence_ms) {
    char why[96];
    snprintf(why, sizeof(why), "nothing from the MF for %llu ms",
             (unsigned long long)silent);
    fail(ue, why);
    return;
  }
  uv_timer_start(&ue->consent, on_consent, ue->consent_interval_ms, 0);
  send_binding(ue, 0);
}

static void consent_start(struct dcmf_ue *ue) {
  ue->heard_ms = uv_now(ue->loop);
  if (ue->consent_interval_ms > 0 && !ue->closing) {
    uv_timer_start(&ue->consent, on_consent, ue->consent_interval_ms, 0);
  }
}

static void on_timer(uv_timer_t *t) {
  struct dcmf_ue *ue = t->data;
  if (ue->closing) {
    return;
  }
  if (!ue->ice_done) {
    if (ue->checks_sent >= CHECK_TRIES) {
      fail(ue, "no STUN answer from the MF");
      return;
    }
    send_check(ue);
    if (!ue->closing) { /* the send may have failed and closed the phone */
      uv_timer_start(&ue->timer, on_timer, CHECK_INTERVAL_MS, 0);
    }
    return;
  }
  if (ue->stack == NULL) {
    return;
  }
  uint64_t now = uv_now(ue->loop);
  dcmf_dcstack_handle_expiry(ue->stack, now);
  if (ue->closing) { /* a send failed: |timer| now runs close_now */
    return;
  }
  uint64_t at = dcmf_dcstack_next_expiry(ue->stack, now);
  if (at != UINT64_MAX) {
    uv_timer_start(&ue->timer, on_timer, at > now ? at - now : 0, 0);
  }
}

static void on_stun(struct dcmf_ue *ue, const uint8_t *d, size_t len) {
  struct dcmf_stun_msg msg;
  if (ue->ice_done || dcmf_stun_parse(&msg, d, len) != 0 ||
      msg.type != DCMF_STUN_BINDING_SUCCESS ||
      memcmp(msg.txid, ue->txid, sizeof(ue->txid)) != 0 ||
      dcmf_stun_check_integrity(&msg, (const uint8_t *)ue->remote.pwd,
                                strlen(ue->remote.pwd)) != 0) {
    return;
  }
  ue->ice_done = 1;
  consent_start(ue);
  dcmf_dcstack_start(ue->stack);
  on_timer(&ue->timer);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)s;
  struct dcmf_ue *ue = h->data;
  *b = uv_buf_init((char *)ue->rxbuf, sizeof(ue->rxbuf));
}

static void on_udp(uv_udp_t *u, ssize_t n, const uv_buf_t *b,
                   const struct sockaddr *from, unsigned flags) {
  (void)flags;
  struct dcmf_ue *ue = u->data;
  const char *why = n < 0 ? unreachable_why((int)n) : NULL;
  if (why != NULL) {
    fail(ue, why);
    return;
  }
  /* Like any ICE agent, the phone takes STUN answers and DTLS only from
   * the address of its one candidate pair: a datagram from anywhere else
   * (a scan, or a flood aimed at ports that are the MF's one moment and
   * this socket's the next) must not reach the DTLS engine, which would
   * fail the handshake on a stranger's ClientHello. */
  if (n <= 0 || from == NULL ||
      !dcmf_stun_addr_equal(from, (const struct sockaddr *)&ue->remote.addr)) {
    return;
  }
  /* The kernel only passes datagrams from the MF's address (connected
   * socket): any of them shows the MF is alive. */
  ue->heard_ms = uv_now(ue->loop);
  const uint8_t *d = (const uint8_t *)b->base;
  if (d[0] <= 3) {
    on_stun(ue, d, (size_t)n);
  } else if (d[0] >= 20 && d[0] <= 63 && ue->stack != NULL) {
    dcmf_dcstack_recv(ue->stack, d, (size_t)n);
    on_timer(&ue->timer);
  }
}

/* ---- life cycle --------------------------------------------------------- */

static const char ice_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int dcmf_ue_new(struct dcmf_ue **out, uv_loop_t *loop,
                struct dcmf_dtls_ctx *dtls_ctx, struct dcmf_tickq *ticks,
                const char *bind_addr, const struct dcmf_ue_callbacks *cbs,
                void *user) {
  struct dcmf_ue *ue = calloc(1, sizeof(*ue));
  if (ue == NULL) {
    return DCMF_ERR_NOMEM;
  }
  ue->loop = loop;
  ue->cbs = *cbs;
  ue->user = user;
  ue->dtls_ctx = dtls_ctx;
  ue->ticks = ticks;
  dcmf_tickq_node_init(&ue->tick, on_tick);
  dcmf_h1resp_init(&ue->h1, &h1_cbs, ue);
  uint8_t rnd[64];
  RAND_bytes(rnd, sizeof(rnd));
  dcmf_token_from_random(ue->ufrag, 8, rnd, ice_chars);
  dcmf_token_from_random(ue->pwd, 24, rnd + 8, ice_chars);
  memcpy(ue->txid, rnd + 32, sizeof(ue->txid));
  memcpy(&ue->tie_breaker, rnd + 48, sizeof(ue->tie_breaker));
  uv_udp_init(loop, &ue->udp);
  uv_timer_init(loop, &ue->timer);
  uv_timer_init(loop, &ue->deadline);
  uv_timer_init(loop, &ue->consent);
  ue->udp.data = ue->timer.data = ue->deadline.data = ue->consent.data = ue;
  ue->handles_open = 4;
  ue->consent_interval_ms = CONSENT_INTERVAL_MS;
  ue->consent_silence_ms = CONSENT_SILENCE_MS;
  struct sockaddr_in sa;
  uv_ip4_addr(bind_addr ? bind_addr : "127.0.0.1", 0, &sa);
  struct sockaddr_in bound;
  int blen = sizeof(bound);
  if (uv_udp_bind(&ue->udp, (struct sockaddr *)&sa, 0) != 0 ||
      uv_udp_getsockname(&ue->udp, (struct sockaddr *)&bound, &blen) != 0 ||
      uv_udp_recv_start(&ue->udp, on_alloc, on_udp) != 0) {
    dcmf_ue_close(ue);
    return DCMF_ERR_SYSTEM;
  }
  ue->port = ntohs(bound.sin_port);
  *out = ue;
  return 0;
}

void dcmf_ue_set_stream(struct dcmf_ue *ue, uint16_t sid) {
  ue->sid = sid;
}

void dcmf_ue_set_timeout(struct dcmf_ue *ue, uint64_t ms) {
  ue->timeout_ms = ms;
}

void dcmf_ue_set_consent(struct dcmf_ue *ue, uint64_t interval_ms,
                         uint64_t silence_ms) {
  ue->consent_interval_ms = interval_ms;
  ue->consent_silence_ms = silence_ms;
}

const char *dcmf_ue_ufrag(const struct dcmf_ue *ue) {
  return ue->ufrag;
}

const char *dcmf_ue_pwd(const struct dcmf_ue *ue) {
  return ue->pwd;
}

uint16_t dcmf_ue_port(const struct dcmf_ue *ue) {
  return ue->port;
}

uint64_t dcmf_ue_started_ns(const struct dcmf_ue *ue) {
  return ue->started_ns;
}

int dcmf_ue_connect(struct dcmf_ue *ue, const struct dcmf_ue_remote *remote,
                    int no_ice) {
  ue->remote = *remote;
  /* One candidate pair: connected, the socket takes datagrams from the
   * MF only, and reports the ICMP errors that its sends provoke (an
   * unconnected UDP socket drops them), so a vanished MF is noticed. */
  if (ue->stack != NULL ||
      uv_udp_connect(&ue->udp, (const struct sockaddr *)&remote->addr) != 0) {
    return DCMF_ERR_SYSTEM;
  }
  struct dcmf_dcstack_settings ss = {
      .dtls_ctx = ue->dtls_ctx,
      .dtls_server = !remote->mf_is_dtls_server,
      .assoc.sctp = {.local_port = 5000,
                     .remote_port = remote->sctp_port,
                     /* enough for the chosen stream id */
                     .max_streams =
                         ue->sid < 16 ? 16 : (uint16_t)(ue->sid + 1),
                     .max_message_size = 256 * 1024,
                     .send_buffer = 256 * 1024}};
  if (ue->stack != NULL ||
      dcmf_dcstack_new(&ue->stack, &ss, &stack_cbs, ue) != 0) {
    return DCMF_ERR_SYSTEM;
  }
  ue->dc = dcmf_dcstack_dc(ue->stack);
  if (dcmf_dc_add_negotiated(ue->dc, ue->sid, "http", NULL, 256) != 0 ||
      dcmf_dcstack_set_remote_fingerprints(ue->stack, &remote->fingerprint) !=
          0) {
    return DCMF_ERR_SYSTEM;
  }
  deadline_arm(ue); /* ICE, DTLS, SCTP and the channel, all within it */
  if (no_ice) {
    /* No STUN at all (an ICE-lite pair has no consent checks): the
     * deadline and the ICMP errors of the protocols' own sends bound
     * the waits. */
    ue->started_ns = uv_hrtime();
    ue->ice_done = 1;
    dcmf_dcstack_start(ue->stack);
    on_timer(&ue->timer);
    return 0;
  }
  send_check(ue);
  if (!ue->closing) {
    uv_timer_start(&ue->timer, on_timer, CHECK_INTERVAL_MS, 0);
  }
  return 0;
}

static void on_closed(uv_handle_t *h) {
  struct dcmf_ue *ue = h->data;
  if (--ue->handles_open == 0) {
    dcmf_buf_free(&ue->rx);
    dcmf_buf_free(&ue->head);
    dcmf_buf_free(&ue->body);
    free(ue);
  }
}

/* Runs from the loop, outside any engine callback. */
static void close_now(uv_timer_t *t) {
  struct dcmf_ue *ue = t->data;
  dcmf_dcstack_del(ue->stack);
  ue->stack = NULL;
  ue->dc = NULL;
  dcmf_tickq_leave(ue->ticks, &ue->tick); /* after: the del may ask */
  uv_close((uv_handle_t *)&ue->udp, on_closed);
  uv_close((uv_handle_t *)&ue->timer, on_closed);
  uv_close((uv_handle_t *)&ue->deadline, on_closed);
  uv_close((uv_handle_t *)&ue->consent, on_closed);
}

void dcmf_ue_close(struct dcmf_ue *ue) {
  /* Often called from a callback deep inside the engines: tear down
   * once they have returned. */
  ue->closing = 1;
  ue->cbs = (struct dcmf_ue_callbacks){0};
  uv_udp_recv_stop(&ue->udp);
  uv_timer_stop(&ue->deadline);
  uv_timer_stop(&ue->consent);
  uv_timer_start(&ue->timer, close_now, 0, 0);
}
