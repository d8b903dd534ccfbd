#include "ue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "buf.h"
#include "datachannel.h"
#include "errors.h"
#include "fingerprint.h"
#include "h1resp.h"
#include "sctp.h"
#include "stun.h"

#define CHECK_INTERVAL_MS 50
#define CHECK_TRIES 100

struct dcmf_ue {
  uv_loop_t *loop;
  uv_udp_t udp;
  uv_timer_t timer;
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
  struct dcmf_dtls *dtls;
  struct dcmf_sctp *sctp;
  struct dcmf_dc *dc;
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

static void fail(struct dcmf_ue *ue, const char *why) {
  if (!ue->failed && !ue->closing) {
    ue->failed = 1;
    ue->cbs.failed(ue->user, ue, why);
  }
}

static void udp_send(struct dcmf_ue *ue, const uint8_t *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned int)len);
  uv_udp_try_send(&ue->udp, &b, 1, (const struct sockaddr *)&ue->remote.addr);
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

static int dc_open(void *user, struct dcmf_dc_channel *ch) {
  struct dcmf_ue *ue = user;
  if (ch->sid == ue->sid && !ue->closing) {
    ue->cbs.ready(ue->user, ue);
  }
  return 0;
}

static void dc_message(void *user, struct dcmf_dc_channel *ch, int binary,
                       const uint8_t *data, size_t len) {
  (void)binary;
  struct dcmf_ue *ue = user;
  if (ch->sid != ue->sid || ue->closing) {
    return;
  }
  if (!ue->got_first_byte) {
    ue->got_first_byte = 1;
    ue->cbs.first_byte(ue->user, ue);
  }
  http_consume(ue, data, len);
}

static void dc_closed(void *user, struct dcmf_dc_channel *ch) {
  struct dcmf_ue *ue = user;
  if (ch->sid == ue->sid) {
    fail(ue, "the HTTP channel closed");
  }
}

static const struct dcmf_dc_callbacks dc_cbs = {dc_open, dc_message,
                                                dc_closed};

int dcmf_ue_get(struct dcmf_ue *ue, const char *path) {
  char req[2048];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: \r\n\r\n", path);
  if (n < 0 || (size_t)n >= sizeof(req) || ue->dc == NULL) {
    return DCMF_ERR_INVALID;
  }
  return dcmf_dc_send(ue->dc, ue->sid, 0, (const uint8_t *)req, (size_t)n);
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
  return rv;
}

/* ---- SCTP and DTLS ---------------------------------------------------- */

static void sctp_send_packet(void *user, const uint8_t *d, size_t len) {
  struct dcmf_ue *ue = user;
  dcmf_dtls_send(ue->dtls, d, len);
}

static void sctp_message(void *user, uint16_t sid, uint32_t ppid,
                         const uint8_t *d, size_t len) {
  struct dcmf_ue *ue = user;
  dcmf_dc_on_sctp_message(ue->dc, sid, ppid, d, len);
}

static void sctp_reset(void *user, uint16_t sid) {
  struct dcmf_ue *ue = user;
  dcmf_dc_on_sctp_reset(ue->dc, sid);
}

static void sctp_state(void *user, enum dcmf_sctp_state state) {
  struct dcmf_ue *ue = user;
  dcmf_dc_on_sctp_state(ue->dc, state);
  if (state == DCMF_SCTP_DOWN) {
    fail(ue, "SCTP association down");
  }
}

static void sctp_writable(void *user) {
  (void)user;
}

static const struct dcmf_sctp_callbacks sctp_cbs = {
    sctp_send_packet, sctp_message, sctp_reset, sctp_state, sctp_writable};

static void dtls_send(void *user, const uint8_t *d, size_t len) {
  udp_send(user, d, len);
}

static void dtls_recv(void *user, const uint8_t *d, size_t len) {
  struct dcmf_ue *ue = user;
  dcmf_sctp_input(ue->sctp, d, len);
}

static void dtls_state(void *user, enum dcmf_dtls_state state,
                       const char *reason) {
  struct dcmf_ue *ue = user;
  if (state == DCMF_DTLS_CONNECTED) {
    dcmf_sctp_connect(ue->sctp);
  } else {
    fail(ue, reason);
  }
}

static const struct dcmf_dtls_callbacks dtls_cbs = {dtls_send, dtls_recv,
                                                    dtls_state};

/* ---- ICE (controlling, one pair) ---------------------------------------- */

static void send_check(struct dcmf_ue *ue) {
  char username[160];
  snprintf(username, sizeof(username), "%s:%s", ue->remote.ufrag, ue->ufrag);
  struct dcmf_stun_request req = {
      .username = username,
      .key = (const uint8_t *)ue->remote.pwd,
      .key_len = strlen(ue->remote.pwd),
      .priority = 0x6E0001FF,
      .role = DCMF_STUN_ROLE_CONTROLLING,
      .tie_breaker = ue->tie_breaker,
      .use_candidate = 1,
  };
  memcpy(req.txid, ue->txid, sizeof(ue->txid));
  uint8_t out[512];
  size_t len;
  if (dcmf_stun_build_request(out, sizeof(out), &len, &req) == 0) {
    if (ue->started_ns == 0) {
      ue->started_ns = uv_hrtime();
    }
    udp_send(ue, out, len);
    ue->checks_sent++;
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
    uv_timer_start(&ue->timer, on_timer, CHECK_INTERVAL_MS, 0);
    return;
  }
  long dt = ue->dtls ? dcmf_dtls_next_timeout_ms(ue->dtls) : -1;
  if (dt == 0) {
    dcmf_dtls_handle_timeout(ue->dtls);
    dt = dcmf_dtls_next_timeout_ms(ue->dtls);
  }
  if (dt >= 0) {
    uv_timer_start(&ue->timer, on_timer, (uint64_t)dt, 0);
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
  dcmf_dtls_start(ue->dtls);
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
  (void)from;
  struct dcmf_ue *ue = u->data;
  if (n <= 0) {
    return;
  }
  const uint8_t *d = (const uint8_t *)b->base;
  if (d[0] <= 3) {
    on_stun(ue, d, (size_t)n);
  } else if (d[0] >= 20 && d[0] <= 63 && ue->dtls != NULL) {
    dcmf_dtls_recv(ue->dtls, d, (size_t)n);
    on_timer(&ue->timer);
  }
}

/* ---- life cycle --------------------------------------------------------- */

static const char ice_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int dcmf_ue_new(struct dcmf_ue **out, uv_loop_t *loop,
                struct dcmf_dtls_ctx *dtls_ctx, const char *bind_addr,
                const struct dcmf_ue_callbacks *cbs, void *user) {
  struct dcmf_ue *ue = calloc(1, sizeof(*ue));
  if (ue == NULL) {
    return DCMF_ERR_NOMEM;
  }
  ue->loop = loop;
  ue->cbs = *cbs;
  ue->user = user;
  ue->dtls_ctx = dtls_ctx;
  dcmf_h1resp_init(&ue->h1, &h1_cbs, ue);
  uint8_t rnd[64];
  RAND_bytes(rnd, sizeof(rnd));
  dcmf_token_from_random(ue->ufrag, 8, rnd, ice_chars);
  dcmf_token_from_random(ue->pwd, 24, rnd + 8, ice_chars);
  memcpy(ue->txid, rnd + 32, sizeof(ue->txid));
  memcpy(&ue->tie_breaker, rnd + 48, sizeof(ue->tie_breaker));
  uv_udp_init(loop, &ue->udp);
  uv_timer_init(loop, &ue->timer);
  ue->udp.data = ue->timer.data = ue;
  ue->handles_open = 2;
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
  struct dcmf_sctp_settings ss = {.local_port = 5000,
                                  .remote_port = remote->sctp_port,
                                  /* enough for the chosen stream id */
                                  .max_streams =
                                      ue->sid < 16 ? 16
                                                   : (uint16_t)(ue->sid + 1),
                                  .max_message_size = 256 * 1024,
                                  .send_buffer = 256 * 1024};
  if (dcmf_dtls_new(&ue->dtls, ue->dtls_ctx, !remote->mf_is_dtls_server,
                    &dtls_cbs, ue) != 0 ||
      dcmf_sctp_new(&ue->sctp, &ss, &sctp_cbs, ue) != 0 ||
      dcmf_dc_new(&ue->dc, ue->sctp, &dc_cbs, ue) != 0 ||
      dcmf_dc_add_negotiated(ue->dc, ue->sid, "http", NULL, 256) != 0 ||
      dcmf_dtls_set_remote_fingerprints(ue->dtls, &remote->fingerprint) != 0) {
    return DCMF_ERR_SYSTEM;
  }
  if (no_ice) {
    ue->started_ns = uv_hrtime();
    ue->ice_done = 1;
    dcmf_dtls_start(ue->dtls);
    on_timer(&ue->timer);
    return 0;
  }
  send_check(ue);
  uv_timer_start(&ue->timer, on_timer, CHECK_INTERVAL_MS, 0);
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
  dcmf_dc_del(ue->dc);
  ue->dc = NULL;
  dcmf_sctp_del(ue->sctp);
  ue->sctp = NULL;
  dcmf_dtls_del(ue->dtls);
  ue->dtls = NULL;
  uv_close((uv_handle_t *)&ue->udp, on_closed);
  uv_close((uv_handle_t *)&ue->timer, on_closed);
}

void dcmf_ue_close(struct dcmf_ue *ue) {
  /* Often called from a callback deep inside the engines: tear down
   * once they have returned. */
  ue->closing = 1;
  ue->cbs = (struct dcmf_ue_callbacks){0};
  uv_udp_recv_stop(&ue->udp);
  uv_timer_start(&ue->timer, close_now, 0, 0);
}
