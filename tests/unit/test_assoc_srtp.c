/*
 * The DTLS-SRTP association kind (assoc_srtp.h) in memory: two dcstacks
 * of the kind, one the DTLS client and one the server, datagrams carried
 * by hand and demultiplexed by first byte as a session does (RFC 7983:
 * 20-63 DTLS, 128-191 RTP/RTCP). Checked: the use_srtp profile each side
 * negotiates (ours first; the server's order among what the client
 * offers); RTP and RTCP sent through one kind arrive plain through the
 * other, as SRTP on the wire that a plain libsrtp2 session built from
 * the exported keys opens; SSRCs as flows (opened on the first
 * authenticated packet, refused ones counted); replayed and tampered
 * packets counted and not delivered; raw input before DTLS refused; a
 * re-key keeps the ROC; a DTLS renewal (dcmf_dcstack_renew: new
 * certificate, swapped roles) keeps each SSRC's ROC on the wire, starts
 * a new SSRC at 0, carries media on the old keys during the handshake
 * and refuses them after, and ends the old keys when the new handshake
 * fails; a data-channel stack still negotiates the context's list and
 * cannot be renewed.
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

#include "sctp_group.h"

#include "assoc_srtp.h"
#include "cert.h"
#include "dcstack.h"
#include "dtlspair.h"
#include "errors.h"
#include "srtp.h"
#include "srtp_backend.h"
#include "srtp_plain.h"

#define SSRC_A 0x11223344u
#define SSRC_B 0x55667788u
#define SSRC_C 0x0badf00du

struct side {
  struct dcmf_dcstack *stack;
  struct side *other;
  struct dtlspair_queue out; /* what it sent, not carried yet */
  int up;                    /* ASSOC_UP seen */
  int failed;                /* DTLS or association failure seen */
  uint32_t opened[8];        /* flow ids in order of flow_open */
  size_t n_opened;
  int closed;
  uint32_t refuse;    /* an SSRC this side's owner refuses */
  uint8_t last[2048]; /* the last flow message */
  size_t last_len;
  uint32_t last_id;
  int messages;
};

struct pair {
  struct dtlspair_ids id; /* client, server */
  struct side client, server;
};

/* ---- the owner of each stack ---- */

static void datagram_out(void *user, const uint8_t *data, size_t len) {
  struct side *s = user;
  dtlspair_queue_push(&s->out, data, len);
}

static void stack_state(void *user, enum dcmf_dcstack_state state,
                        const char *reason) {
  struct side *s = user;
  (void)reason;
  if (state == DCMF_DCSTACK_ASSOC_UP) {
    s->up = 1;
  } else if (state == DCMF_DCSTACK_DTLS_FAILED ||
             state == DCMF_DCSTACK_ASSOC_FAILED) {
    s->failed = 1;
  }
}

static int flow_open(void *user, const struct dcmf_svc_flow *f, void **slot) {
  struct side *s = user;
  assert_int_equal(f->kind, DCMF_ASSOC_SRTP);
  if (s->n_opened < 8) {
    s->opened[s->n_opened++] = f->id;
  }
  *slot = s; /* handed back with each message */
  return f->id == s->refuse ? -1 : 0;
}

static void flow_message(void *user, const struct dcmf_svc_flow *f, void *slot,
                         int binary, const uint8_t *data, size_t len) {
  struct side *s = user;
  assert_ptr_equal(slot, s);
  assert_true(binary);
  assert_true(len <= sizeof(s->last));
  memcpy(s->last, data, len);
  s->last_len = len;
  s->last_id = f->id;
  s->messages++;
}

static void flow_closed(void *user, const struct dcmf_svc_flow *f,
                        void **slot) {
  struct side *s = user;
  (void)f;
  (void)slot;
  s->closed++;
}

static const struct dcmf_dcstack_callbacks cbs = {
    .send_datagram = datagram_out,
    .state_changed = stack_state,
    .flow_open = flow_open,
    .flow_message = flow_message,
    .flow_closed = flow_closed,
};

/* Delivers |d|, sent by |from|, to the other side by its first byte
 * (RFC 7983) as a session does. Returns the recv result. */
static int deliver(struct side *from, const uint8_t *d, size_t len) {
  struct dcmf_dcstack *to = from->other->stack;
  if (d[0] >= 20 && d[0] <= 63) {
    return dcmf_dcstack_recv(to, d, len);
  }
  assert_true(d[0] >= 128 && d[0] <= 191);
  return dcmf_dcstack_recv_raw(to, d, len);
}

static void deliver_from(void *user, const uint8_t *d, size_t len) {
  (void)deliver(user, d, len);
}

/* recv may queue more on either side: only this batch goes now */
static size_t carry_side(struct side *from) {
  return dtlspair_queue_carry(&from->out, deliver_from, from);
}

static void pump(struct pair *p) {
  for (int i = 0; i < 200; i++) {
    if (carry_side(&p->client) + carry_side(&p->server) == 0) {
      return;
    }
  }
  fail_msg("datagrams still flowing after 200 rounds");
}

/* Takes the one datagram |s| queued (the caller carries it itself). */
static size_t take_one(struct side *s, uint8_t *out, size_t cap) {
  assert_int_equal(s->out.nq, 1);
  size_t n = s->out.qlen[0];
  assert_true(n <= cap);
  memcpy(out, s->out.q[0], n);
  free(s->out.q[0]);
  s->out.nq = 0;
  return n;
}

/* Takes the last datagram |s| queued (its handshake flight stays). */
static size_t take_last(struct side *s, uint8_t *out, size_t cap) {
  assert_true(s->out.nq > 0);
  size_t n = s->out.qlen[--s->out.nq];
  assert_true(n <= cap);
  memcpy(out, s->out.q[s->out.nq], n);
  free(s->out.q[s->out.nq]);
  return n;
}

/* ---- set-up ---- */

static void side_new(struct pair *p, struct side *s, int is_server,
                     const struct dcmf_assoc_ops *kind) {
  s->other = is_server ? &p->client : &p->server;
  struct dcmf_dcstack_settings ss = {.dtls_ctx = &p->id.ctx[is_server],
                                     .dtls_server = is_server,
                                     .kind = kind,
                                     .assoc.srtp_backend = test_srtp_backend(),
                                     .assoc.sctp = {.local_port = 5000,
                                                    .remote_port = 5000,
                                                    .max_streams = 16,
                                                    .max_message_size = 65536,
                                                    .send_buffer = 1 << 18}};
  assert_int_equal(dcmf_dcstack_new(&s->stack, &ss, &cbs, s), 0);
  assert_int_equal(dcmf_dcstack_set_remote_fingerprints(
                       s->stack, &p->id.fp[is_server ? 0 : 1]),
                   0);
}

static struct pair *pair_new(const struct dcmf_assoc_ops *client_kind,
                             const struct dcmf_assoc_ops *server_kind) {
  struct pair *p = calloc(1, sizeof(*p));
  assert_non_null(p);
  dtlspair_ids_init(&p->id, 2, DCMF_CERT_ECDSA);
  side_new(p, &p->client, 0, client_kind);
  side_new(p, &p->server, 1, server_kind);
  return p;
}

static void pair_connect(struct pair *p) {
  dcmf_dcstack_start(p->client.stack);
  pump(p);
  assert_true(dcmf_dcstack_connected(p->client.stack));
  assert_true(dcmf_dcstack_connected(p->server.stack));
}

static void pair_free(struct pair *p) {
  struct side *sides[2] = {&p->client, &p->server};
  for (int i = 0; i < 2; i++) {
    dcmf_dcstack_del(sides[i]->stack);
    dtlspair_queue_free(&sides[i]->out);
  }
  dtlspair_ids_free(&p->id);
  free(p);
}

static int group_setup(void **state) {
  /* twice, as a second worker start in one process does */
  if (dcmf_srtp_lib_init() != 0 || dcmf_srtp_lib_init() != 0) {
    return -1;
  }
  return dcmf_test_sctp_group_setup(state); /* for the data-channel pair */
}

/* ---- packets ---- */

struct pkt {
  _Alignas(4) uint8_t b[2048];
  size_t len;
};

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* RTP, PT 111, |n| payload bytes from |seq|. */
static void make_rtp(struct pkt *p, uint32_t ssrc, uint16_t seq, size_t n) {
  memset(p, 0, sizeof(*p));
  p->b[0] = 0x80;
  p->b[1] = 111;
  p->b[2] = (uint8_t)(seq >> 8);
  p->b[3] = (uint8_t)seq;
  put32(p->b + 4, (uint32_t)seq * 960u);
  put32(p->b + 8, ssrc);
  for (size_t i = 0; i < n; i++) {
    p->b[12 + i] = (uint8_t)(seq + i * 3u);
  }
  p->len = 12 + n;
}

/* An RTCP sender report (PT 200, 28 bytes) from |ssrc|. */
static void make_sr(struct pkt *p, uint32_t ssrc, uint32_t mark) {
  memset(p, 0, sizeof(*p));
  p->b[0] = 0x80;
  p->b[1] = 200;
  p->b[3] = 6;
  put32(p->b + 4, ssrc);
  put32(p->b + 8, mark);
  put32(p->b + 20, mark * 7u);
  p->len = 28;
}

static int send_on(struct side *s, uint32_t id, const struct pkt *p) {
  return dcmf_dcstack_kind(s->stack)->send(dcmf_dcstack_assoc(s->stack), id, 1,
                                           p->b, p->len);
}

static const struct dcmf_srtp_stats *stats(struct side *s,
                                           enum dcmf_srtp_dir dir) {
  const struct dcmf_srtp *e =
      dcmf_assoc_srtp_engine(dcmf_dcstack_assoc(s->stack));
  assert_non_null(e);
  return dcmf_srtp_stats(e, dir);
}

/* A plain libsrtp2 receiver for what |sender| protects, keyed by the
 * test from |sender|'s exporter (srtp_plain.h), independent of the
 * engine's split. */
static srtp_t plain_receiver(struct side *sender, int sender_is_server) {
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  uint16_t id = test_stack_srtp_material(sender->stack, m);
  return test_plain_srtp(id, m, !sender_is_server, ssrc_any_inbound, 0);
}

/* Whether a plain libsrtp2 receiver of SSRC |ssrc| at ROC |roc|, keyed
 * from |sender|'s exporter as plain_receiver is, opens the SRTP packet
 * |wire| (a copy is opened). */
static int plain_opens_at(struct side *sender, int sender_is_server,
                          uint32_t ssrc, uint32_t roc, const struct pkt *wire) {
  return test_plain_srtp_opens_at(sender->stack, !sender_is_server, ssrc, roc,
                                  wire->b, wire->len);
}

/* ---- tests ---- */

/* Each row: what a client kind and a server kind offer (NULL: ours,
 * dcmf_srtp_profile_list()), and what the handshake must select. */
struct offer_case {
  const char *client, *server;
  uint16_t want;
};

static void test_profile_negotiated(void **state) {
  (void)state;
  static const struct offer_case cases[] = {
      /* ours on both sides: our first choice */
      {NULL, NULL, DCMF_SRTP_AEAD_AES_256_GCM},
      /* libwebrtc's offer order (CM_80 first): we, the server, pick by
       * our order among what was offered */
      {"SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM", NULL,
       DCMF_SRTP_AEAD_AES_128_GCM},
      /* we, the client, against a server that takes CM_80 only (aiortc) */
      {NULL, "SRTP_AES128_CM_SHA1_80", DCMF_SRTP_AES128_CM_SHA1_80},
      {NULL, "SRTP_AES128_CM_SHA1_32", DCMF_SRTP_AES128_CM_SHA1_32},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct dcmf_assoc_ops ck = dcmf_assoc_srtp, sk = dcmf_assoc_srtp;
    if (cases[i].client != NULL) {
      ck.srtp_profiles = cases[i].client;
    }
    if (cases[i].server != NULL) {
      sk.srtp_profiles = cases[i].server;
    }
    struct pair *p = pair_new(&ck, &sk);
    assert_int_equal(dcmf_dcstack_srtp_profile(p->client.stack), 0);
    pair_connect(p);
    assert_int_equal(dcmf_dcstack_srtp_profile(p->client.stack), cases[i].want);
    assert_int_equal(dcmf_dcstack_srtp_profile(p->server.stack), cases[i].want);
    assert_true(p->client.up && p->server.up);
    assert_false(p->client.failed || p->server.failed);
    assert_int_equal(dcmf_srtp_profile(dcmf_assoc_srtp_engine(
                         dcmf_dcstack_assoc(p->client.stack))),
                     cases[i].want);
    /* on the backend the settings named */
    assert_int_equal(dcmf_srtp_backend(dcmf_assoc_srtp_engine(
                         dcmf_dcstack_assoc(p->server.stack))),
                     test_srtp_backend());
    /* and media flows both ways on it */
    struct pkt r;
    make_rtp(&r, SSRC_A, 1, 40);
    assert_int_equal(send_on(&p->client, SSRC_A, &r), 0);
    make_rtp(&r, SSRC_B, 1, 40);
    assert_int_equal(send_on(&p->server, SSRC_B, &r), 0);
    pump(p);
    assert_int_equal(p->server.messages, 1);
    assert_int_equal(p->client.messages, 1);
    assert_memory_equal(p->client.last, r.b, r.len);
    pair_free(p);
  }
}

/* One packet from |from| to |to|: on the wire it is SRTP (not the plain
 * bytes; a plain libsrtp2 session opens it), and |to| hands up the plain
 * packet on flow |ssrc|. */
static void through(struct side *from, int from_is_server, struct side *to,
                    const struct pkt *plain, uint32_t ssrc, int rtcp) {
  int before = to->messages;
  assert_int_equal(send_on(from, ssrc, plain), 0);
  struct pkt wire;
  wire.len = take_one(from, wire.b, sizeof(wire.b));
  const struct dcmf_srtp_profile_info *pi =
      dcmf_srtp_profile_find(dcmf_dcstack_srtp_profile(from->stack));
  /* the trailer: the tag, and for SRTCP the E flag and index first */
  assert_int_equal(
      wire.len, plain->len + (rtcp ? 4 + pi->rtcp_tag_len : pi->rtp_tag_len));
  /* the header stays readable; the payload does not */
  assert_memory_equal(wire.b, plain->b, rtcp ? 8 : 12);
  assert_memory_not_equal(wire.b + (rtcp ? 8 : 12), plain->b + (rtcp ? 8 : 12),
                          plain->len - (rtcp ? 8 : 12));
  struct pkt copy = wire;
  srtp_t rx = plain_receiver(from, from_is_server);
  int n = (int)copy.len;
  assert_int_equal(rtcp ? srtp_unprotect_rtcp(rx, copy.b, &n)
                        : srtp_unprotect(rx, copy.b, &n),
                   srtp_err_status_ok);
  assert_int_equal(n, (int)plain->len);
  assert_memory_equal(copy.b, plain->b, plain->len);
  srtp_dealloc(rx);
  assert_int_equal(deliver(from, wire.b, wire.len), 0);
  assert_int_equal(to->messages, before + 1);
  assert_int_equal(to->last_id, ssrc);
  assert_int_equal(to->last_len, plain->len);
  assert_memory_equal(to->last, plain->b, plain->len);
}

static void test_rtp_and_rtcp_both_ways(void **state) {
  (void)state;
  struct pair *p = pair_new(&dcmf_assoc_srtp, &dcmf_assoc_srtp);
  pair_connect(p);
  struct pkt pk;
  for (uint16_t seq = 100; seq < 103; seq++) {
    make_rtp(&pk, SSRC_A, seq, 160);
    through(&p->client, 0, &p->server, &pk, SSRC_A, 0);
    make_rtp(&pk, SSRC_B, seq, 120);
    through(&p->server, 1, &p->client, &pk, SSRC_B, 0);
  }
  make_sr(&pk, SSRC_A, 5);
  through(&p->client, 0, &p->server, &pk, SSRC_A, 1);
  make_sr(&pk, SSRC_B, 6);
  through(&p->server, 1, &p->client, &pk, SSRC_B, 1);
  /* one flow per SSRC, opened once */
  assert_int_equal(p->server.n_opened, 1);
  assert_int_equal(p->server.opened[0], SSRC_A);
  assert_int_equal(p->client.n_opened, 1);
  assert_int_equal(p->client.opened[0], SSRC_B);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->rtp, 3);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->rtcp, 1);
  assert_int_equal(stats(&p->client, DCMF_SRTP_OUT)->rtp, 3);
  /* the packet's SSRC must be the flow's */
  make_rtp(&pk, SSRC_A, 200, 10);
  assert_int_equal(send_on(&p->client, SSRC_B, &pk), DCMF_ERR_INVALID);
  pk.len = 1;
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), DCMF_ERR_MALFORMED);
  pk.len = DCMF_ASSOC_SRTP_MAX_PACKET + 1;
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), DCMF_ERR_TOO_LARGE);
  assert_int_equal(p->client.out.nq, 0);
  pair_free(p);
}

static void test_ssrcs_are_flows(void **state) {
  (void)state;
  struct pair *p = pair_new(&dcmf_assoc_srtp, &dcmf_assoc_srtp);
  p->server.refuse = SSRC_C;
  pair_connect(p);
  const struct dcmf_assoc_ops *k = dcmf_dcstack_kind(p->server.stack);
  void *sa = dcmf_dcstack_assoc(p->server.stack);
  struct pkt pk;
  make_rtp(&pk, SSRC_A, 1, 20);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  make_rtp(&pk, SSRC_A, 2, 20);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  make_rtp(&pk, SSRC_B, 1, 20);
  assert_int_equal(send_on(&p->client, SSRC_B, &pk), 0);
  pump(p);
  assert_int_equal(p->server.n_opened, 2);
  assert_int_equal(p->server.opened[0], SSRC_A);
  assert_int_equal(p->server.opened[1], SSRC_B);
  assert_int_equal(p->server.messages, 3);
  assert_int_equal(k->flow_state(sa, SSRC_A), DCMF_SVC_FLOW_OPEN);
  assert_int_equal(k->flow_state(sa, SSRC_B), DCMF_SVC_FLOW_OPEN);
  assert_int_equal(k->flow_state(sa, SSRC_C), DCMF_SVC_FLOW_ABSENT);

  /* A refused SSRC: asked once, its packets counted, not delivered. */
  for (uint16_t seq = 1; seq <= 2; seq++) {
    make_rtp(&pk, SSRC_C, seq, 20);
    assert_int_equal(send_on(&p->client, SSRC_C, &pk), 0);
  }
  pump(p);
  assert_int_equal(p->server.n_opened, 3);
  assert_int_equal(p->server.messages, 3);
  assert_int_equal(dcmf_assoc_srtp_counts(sa)->refused_flow, 2);
  assert_int_equal(k->flow_state(sa, SSRC_C), DCMF_SVC_FLOW_ABSENT);

  /* Closed from our side: reported, and the next packet reopens it. */
  k->close_flow(sa, SSRC_A);
  assert_int_equal(p->server.closed, 1);
  assert_int_equal(k->flow_state(sa, SSRC_A), DCMF_SVC_FLOW_ABSENT);
  make_rtp(&pk, SSRC_A, 3, 20);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  pump(p);
  assert_int_equal(p->server.n_opened, 4);
  assert_int_equal(p->server.opened[3], SSRC_A);
  /* destroy reports the open flows (A and B) closed, not the refused */
  dcmf_dcstack_del(p->server.stack);
  p->server.stack = NULL;
  assert_int_equal(p->server.closed, 3);
  dcmf_dcstack_del(p->client.stack);
  p->client.stack = NULL;
  pair_free(p);
}

/* A keyed peer sending from more SSRCs than the flow table holds: the
 * table stops at its limit, the extra SSRCs are counted and the engine
 * keeps no state for them (no growth without bound). */
static void test_ssrcs_beyond_the_flow_limit(void **state) {
  (void)state;
  struct pair *p = pair_new(&dcmf_assoc_srtp, &dcmf_assoc_srtp);
  pair_connect(p);
  void *sa = dcmf_dcstack_assoc(p->server.stack);
  enum { EXTRA = 6 };
  struct pkt pk;
  for (uint32_t i = 0; i < DCMF_ASSOC_SRTP_MAX_FLOWS + EXTRA; i++) {
    make_rtp(&pk, 0x1000 + i, 1, 20);
    assert_int_equal(send_on(&p->client, 0x1000 + i, &pk), 0);
    pump(p);
  }
  assert_int_equal(p->server.messages, DCMF_ASSOC_SRTP_MAX_FLOWS);
  assert_int_equal(dcmf_assoc_srtp_counts(sa)->flow_limit, EXTRA);
  const struct dcmf_srtp *engine = dcmf_assoc_srtp_engine(sa);
  uint32_t roc;
  assert_int_equal(dcmf_srtp_roc(engine, DCMF_SRTP_IN, 0x1000, &roc), 0);
  for (uint32_t i = 0; i < EXTRA; i++) {
    assert_int_equal(dcmf_srtp_roc(engine, DCMF_SRTP_IN,
                                   0x1000 + DCMF_ASSOC_SRTP_MAX_FLOWS + i,
                                   &roc),
                     DCMF_ERR_NOT_FOUND);
  }
  dcmf_dcstack_del(p->server.stack);
  p->server.stack = NULL;
  dcmf_dcstack_del(p->client.stack);
  p->client.stack = NULL;
  pair_free(p);
}

/* Our own SSRCs are sent without flows, but each holds an outbound
 * state: past DCMF_ASSOC_SRTP_MAX_OUT_SSRCS a new one is refused and
 * counted, the known ones still go. */
static void test_out_ssrcs_beyond_the_cap(void **state) {
  (void)state;
  struct pair *p = pair_new(&dcmf_assoc_srtp, &dcmf_assoc_srtp);
  pair_connect(p);
  void *ca = dcmf_dcstack_assoc(p->client.stack);
  struct pkt pk;
  for (uint32_t i = 0; i < DCMF_ASSOC_SRTP_MAX_OUT_SSRCS; i++) {
    make_rtp(&pk, 0x2000 + i, 1, 20);
    assert_int_equal(send_on(&p->client, 0x2000 + i, &pk), 0);
  }
  make_rtp(&pk, 0x9000, 1, 20);
  assert_int_equal(send_on(&p->client, 0x9000, &pk), DCMF_ERR_TOO_LARGE);
  struct pkt sr;
  make_sr(&sr, 0x9001, 1);
  assert_int_equal(send_on(&p->client, 0x9001, &sr), DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_assoc_srtp_counts(ca)->out_ssrc_limit, 2);
  /* a known SSRC, RTP and RTCP */
  make_rtp(&pk, 0x2000, 2, 20);
  assert_int_equal(send_on(&p->client, 0x2000, &pk), 0);
  make_sr(&sr, 0x2001, 1);
  assert_int_equal(send_on(&p->client, 0x2001, &sr), 0);
  size_t sent = p->client.out.nq;
  assert_int_equal(sent, DCMF_ASSOC_SRTP_MAX_OUT_SSRCS + 2);
  uint32_t roc;
  assert_int_equal(
      dcmf_srtp_roc(dcmf_assoc_srtp_engine(ca), DCMF_SRTP_OUT, 0x9000, &roc),
      DCMF_ERR_NOT_FOUND);
  pair_free(p);
}

static void test_replay_and_tamper_refused(void **state) {
  (void)state;
  struct pair *p = pair_new(&dcmf_assoc_srtp, &dcmf_assoc_srtp);
  pair_connect(p);
  void *sa = dcmf_dcstack_assoc(p->server.stack);
  struct pkt pk, wire;
  make_rtp(&pk, SSRC_A, 7, 80);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  wire.len = take_one(&p->client, wire.b, sizeof(wire.b));
  assert_int_equal(deliver(&p->client, wire.b, wire.len), 0);
  assert_int_equal(p->server.messages, 1);
  /* the same datagram again: a replay, counted, not delivered */
  assert_int_equal(deliver(&p->client, wire.b, wire.len), 0);
  assert_int_equal(p->server.messages, 1);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->replay, 1);
  /* one bit flipped in the next packet's payload: authentication */
  make_rtp(&pk, SSRC_A, 8, 80);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  wire.len = take_one(&p->client, wire.b, sizeof(wire.b));
  wire.b[30] ^= 0x04;
  assert_int_equal(deliver(&p->client, wire.b, wire.len), 0);
  assert_int_equal(p->server.messages, 1);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->auth, 1);
  /* a tampered packet of a new SSRC opens no flow */
  make_rtp(&pk, SSRC_B, 1, 80);
  assert_int_equal(send_on(&p->client, SSRC_B, &pk), 0);
  wire.len = take_one(&p->client, wire.b, sizeof(wire.b));
  wire.b[wire.len - 1] ^= 0x80; /* in the tag */
  assert_int_equal(deliver(&p->client, wire.b, wire.len), 0);
  assert_int_equal(p->server.n_opened, 1);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->auth, 2);
  /* RTCP replayed */
  make_sr(&pk, SSRC_A, 1);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  wire.len = take_one(&p->client, wire.b, sizeof(wire.b));
  assert_int_equal(deliver(&p->client, wire.b, wire.len), 0);
  assert_int_equal(deliver(&p->client, wire.b, wire.len), 0);
  assert_int_equal(p->server.messages, 2);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->replay, 2);
  /* a sequence number sent twice (a duplicate from the other leg):
   * dropped and counted, no error for the caller, nothing on the wire */
  make_rtp(&pk, SSRC_A, 8, 80);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  assert_int_equal(p->client.out.nq, 0);
  assert_int_equal(
      dcmf_assoc_srtp_counts(dcmf_dcstack_assoc(p->client.stack))->out_replay,
      1);
  /* garbage and oversize raw input harm nothing */
  uint8_t junk[DCMF_ASSOC_SRTP_MAX_PACKET + 1];
  memset(junk, 0x80, sizeof(junk));
  assert_int_equal(dcmf_dcstack_recv_raw(p->server.stack, junk, 5), 0);
  assert_int_equal(dcmf_dcstack_recv_raw(p->server.stack, junk, sizeof(junk)),
                   0);
  assert_int_equal(dcmf_assoc_srtp_counts(sa)->too_large, 1);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->malformed, 1);
  assert_int_equal(p->server.messages, 2);
  pair_free(p);
}

static void test_raw_before_dtls_refused(void **state) {
  (void)state;
  struct pair *p = pair_new(&dcmf_assoc_srtp, &dcmf_assoc_srtp);
  struct pkt pk;
  make_rtp(&pk, SSRC_A, 1, 20);
  assert_int_equal(dcmf_dcstack_recv_raw(p->server.stack, pk.b, pk.len),
                   DCMF_ERR_INVALID);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), DCMF_ERR_INVALID);
  assert_null(dcmf_assoc_srtp_engine(dcmf_dcstack_assoc(p->client.stack)));
  assert_int_equal(p->client.out.nq, 0);
  assert_int_equal(p->server.n_opened, 0);
  /* the kind itself, asked before it is keyed, drops and counts */
  void *sa = dcmf_dcstack_assoc(p->server.stack);
  dcmf_assoc_srtp.raw_in(sa, pk.b, pk.len);
  assert_int_equal(dcmf_assoc_srtp_counts(sa)->not_keyed, 1);
  assert_int_equal(p->server.messages, 0);
  pair_free(p);
}

/* Stand-in exporter for a second DTLS association: fresh material. */
static int fresh_keys(void *user, const char *label, uint8_t *out, size_t len) {
  assert_string_equal(label, "EXTRACTOR-dtls_srtp");
  for (size_t i = 0; i < len; i++) {
    out[i] = (uint8_t)(*(uint8_t *)user + i * 13u);
  }
  return 0;
}

static void test_rekey_keeps_roc(void **state) {
  (void)state;
  struct pair *p = pair_new(&dcmf_assoc_srtp, &dcmf_assoc_srtp);
  pair_connect(p);
  void *ca = dcmf_dcstack_assoc(p->client.stack);
  void *sa = dcmf_dcstack_assoc(p->server.stack);
  struct pkt pk;
  /* the sequence number wraps: ROC 1 on both sides */
  make_rtp(&pk, SSRC_A, 65535, 20);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  make_rtp(&pk, SSRC_A, 0, 20);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  pump(p);
  assert_int_equal(p->server.messages, 2);
  uint32_t roc = 0;
  assert_int_equal(
      dcmf_srtp_roc(dcmf_assoc_srtp_engine(sa), DCMF_SRTP_IN, SSRC_A, &roc), 0);
  assert_int_equal(roc, 1);
  /* a new DTLS association keys the same kind: another profile, new
   * material, the same roles */
  uint8_t seed = 42;
  struct dcmf_assoc_dtls d = {.keys = fresh_keys,
                              .keys_user = &seed,
                              .srtp_profile = DCMF_SRTP_AES128_CM_SHA1_80};
  assert_int_equal(dcmf_assoc_srtp.connected(ca, &d), 0);
  d.dtls_server = 1;
  assert_int_equal(dcmf_assoc_srtp.connected(sa, &d), 0);
  assert_int_equal(dcmf_srtp_profile(dcmf_assoc_srtp_engine(sa)),
                   DCMF_SRTP_AES128_CM_SHA1_80);
  make_rtp(&pk, SSRC_A, 1, 20);
  assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
  pump(p);
  /* delivered on the same flow: both ends kept ROC 1 */
  assert_int_equal(p->server.messages, 3);
  assert_memory_equal(p->server.last, pk.b, pk.len);
  assert_int_equal(p->server.n_opened, 1);
  assert_int_equal(p->server.closed, 0);
  assert_int_equal(
      dcmf_srtp_roc(dcmf_assoc_srtp_engine(ca), DCMF_SRTP_OUT, SSRC_A, &roc),
      0);
  assert_int_equal(roc, 1);
  /* a profile we do not know fails the (re-)key */
  d.srtp_profile = 0;
  assert_int_equal(dcmf_assoc_srtp.connected(sa, &d), DCMF_ERR_SYSTEM);
  pair_free(p);
}

static uint32_t roc_of(struct side *s, enum dcmf_srtp_dir dir, uint32_t ssrc) {
  uint32_t roc = 99;
  assert_int_equal(
      dcmf_srtp_roc(dcmf_assoc_srtp_engine(dcmf_dcstack_assoc(s->stack)), dir,
                    ssrc, &roc),
      0);
  return roc;
}

/* One RTP packet of |ssrc| at |seq| from |from|, protected now, taken
 * off its queue (behind any handshake flight) into |wire|. */
static void protect_one(struct side *from, uint32_t ssrc, uint16_t seq,
                        struct pkt *plain, struct pkt *wire) {
  make_rtp(plain, ssrc, seq, 40);
  assert_int_equal(send_on(from, ssrc, plain), 0);
  wire->len = take_last(from, wire->b, sizeof(wire->b));
}

/* A new DTLS association (RFC 8842: a new tls-id) under the same SRTP
 * associations: the server side takes a new certificate and the roles
 * swap. Both SSRCs wrapped before (ROC 1) and keep ROC 1 under the new
 * keys, as a plain libsrtp2 receiver keyed from the new exporter sees;
 * a new SSRC starts at 0; media on the old keys flows while the new
 * handshake runs, still passes after it (the fallback, counted in
 * srtp_previous) and is refused once the owner drops the previous keys
 * (drop_previous_keys, what the session does DCMF_SRTP_FALLBACK_MS
 * later); the flows stay open. */
static void test_renewal_keeps_rocs(void **state) {
  (void)state;
  struct pair *p = pair_new(&dcmf_assoc_srtp, &dcmf_assoc_srtp);
  pair_connect(p);
  void *ca = dcmf_dcstack_assoc(p->client.stack);
  void *sa = dcmf_dcstack_assoc(p->server.stack);
  struct pkt pk, wire;
  /* both directions wrap: ROC 1 */
  for (uint32_t seq = 65534; seq <= 65536; seq++) {
    make_rtp(&pk, SSRC_A, (uint16_t)seq, 40);
    assert_int_equal(send_on(&p->client, SSRC_A, &pk), 0);
    make_rtp(&pk, SSRC_B, (uint16_t)seq, 40);
    assert_int_equal(send_on(&p->server, SSRC_B, &pk), 0);
  }
  pump(p);
  assert_int_equal(p->server.messages, 3);
  assert_int_equal(p->client.messages, 3);
  assert_int_equal(roc_of(&p->server, DCMF_SRTP_IN, SSRC_A), 1);
  assert_int_equal(roc_of(&p->client, DCMF_SRTP_IN, SSRC_B), 1);
  uint16_t old_profile = dcmf_dcstack_srtp_profile(p->server.stack);

  /* The renewal: the server side gets a new certificate and becomes the
   * DTLS client; the client side keeps its certificate and serves. */
  struct dcmf_cert cert;
  struct dcmf_dtls_ctx ctx;
  struct dcmf_fingerprint_set fp;
  char err[256];
  assert_int_equal(dcmf_cert_generate(&cert, err, sizeof(err)), 0);
  assert_int_equal(dcmf_dtls_ctx_init(&ctx, cert.x509, cert.pkey, 1200), 0);
  memset(&fp, 0, sizeof(fp));
  assert_int_equal(dcmf_fingerprint_parse(cert.fingerprint, &fp), 0);
  assert_int_equal(dcmf_dcstack_renew(p->server.stack, &ctx, 0), 0);
  assert_int_equal(dcmf_dcstack_renew(p->client.stack, &p->id.ctx[0], 1), 0);
  assert_int_equal(
      dcmf_dcstack_set_remote_fingerprints(p->server.stack, &p->id.fp[0]), 0);
  assert_int_equal(dcmf_dcstack_set_remote_fingerprints(p->client.stack, &fp),
                   0);
  assert_ptr_equal(dcmf_dcstack_assoc(p->server.stack), sa);
  assert_ptr_equal(dcmf_dcstack_assoc(p->client.stack), ca);
  p->client.up = p->server.up = 0;
  /* the new handshake half way: ClientHello there, the server's flight
   * back, the client's last flight held (neither side is done) */
  dcmf_dcstack_start(p->server.stack);
  assert_true(carry_side(&p->server) > 0);
  assert_true(carry_side(&p->client) > 0);
  assert_true(p->server.out.nq > 0);
  assert_false(dcmf_dcstack_connected(p->server.stack));
  assert_false(dcmf_dcstack_connected(p->client.stack));
  /* media on the old keys goes on, both ways */
  protect_one(&p->client, SSRC_A, 1, &pk, &wire);
  assert_int_equal(deliver(&p->client, wire.b, wire.len), 0);
  assert_int_equal(p->server.messages, 4);
  assert_memory_equal(p->server.last, pk.b, pk.len);
  protect_one(&p->server, SSRC_B, 1, &pk, &wire);
  assert_int_equal(deliver(&p->server, wire.b, wire.len), 0);
  assert_int_equal(p->client.messages, 4);
  assert_memory_equal(p->client.last, pk.b, pk.len);
  /* two more on the old keys, delivered only after the re-key */
  struct pkt stale, stale2, stale_plain;
  protect_one(&p->client, SSRC_A, 2, &stale_plain, &stale);
  protect_one(&p->client, SSRC_A, 20, &pk, &stale2);

  pump(p);
  assert_true(dcmf_dcstack_connected(p->server.stack));
  assert_true(dcmf_dcstack_connected(p->client.stack));
  assert_true(p->client.up && p->server.up);
  assert_false(p->client.failed || p->server.failed);
  assert_int_equal(dcmf_dcstack_srtp_profile(p->server.stack), old_profile);
  /* the old keys still pass, as the previous keys, and are counted */
  uint64_t auth = stats(&p->server, DCMF_SRTP_IN)->auth;
  assert_int_equal(deliver(&p->client, stale.b, stale.len), 0);
  assert_int_equal(p->server.messages, 5);
  assert_memory_equal(p->server.last, stale_plain.b, stale_plain.len);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->auth, auth);
  struct dcmf_assoc_stats as;
  memset(&as, 0, sizeof(as));
  dcmf_assoc_srtp.stats(sa, &as);
  assert_int_equal(as.srtp_previous, 1);
  /* a replay of it is refused whichever keys */
  assert_int_equal(deliver(&p->client, stale.b, stale.len), 0);
  assert_int_equal(p->server.messages, 5);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->replay, 1);
  /* the owner ends the fallback: the old keys are refused now */
  assert_int_equal(dcmf_dcstack_drop_previous_keys(p->server.stack), 0);
  assert_int_equal(dcmf_dcstack_drop_previous_keys(p->server.stack),
                   DCMF_ERR_NOT_FOUND);
  assert_int_equal(deliver(&p->client, stale2.b, stale2.len), 0);
  assert_int_equal(p->server.messages, 5);
  assert_int_equal(stats(&p->server, DCMF_SRTP_IN)->auth, auth + 1);
  dcmf_assoc_srtp.stats(sa, &as);
  assert_int_equal(as.srtp_previous, 1);

  /* Same SSRCs, new keys, ROC 1 on the wire: the new exporter opens the
   * packet at ROC 1 and not at 0; the peer's engine takes it. The old
   * client is the DTLS server now. */
  protect_one(&p->client, SSRC_A, 3, &pk, &wire);
  assert_true(plain_opens_at(&p->client, 1, SSRC_A, 1, &wire));
  assert_false(plain_opens_at(&p->client, 1, SSRC_A, 0, &wire));
  assert_int_equal(deliver(&p->client, wire.b, wire.len), 0);
  assert_int_equal(p->server.messages, 6);
  assert_memory_equal(p->server.last, pk.b, pk.len);
  protect_one(&p->server, SSRC_B, 2, &pk, &wire);
  assert_true(plain_opens_at(&p->server, 0, SSRC_B, 1, &wire));
  assert_false(plain_opens_at(&p->server, 0, SSRC_B, 0, &wire));
  assert_int_equal(deliver(&p->server, wire.b, wire.len), 0);
  assert_int_equal(p->client.messages, 5);
  assert_memory_equal(p->client.last, pk.b, pk.len);
  assert_int_equal(roc_of(&p->server, DCMF_SRTP_IN, SSRC_A), 1);
  assert_int_equal(roc_of(&p->client, DCMF_SRTP_OUT, SSRC_A), 1);
  /* A new SSRC starts at ROC 0, on a flow of its own. */
  protect_one(&p->client, SSRC_C, 7, &pk, &wire);
  assert_true(plain_opens_at(&p->client, 1, SSRC_C, 0, &wire));
  assert_false(plain_opens_at(&p->client, 1, SSRC_C, 1, &wire));
  assert_int_equal(deliver(&p->client, wire.b, wire.len), 0);
  assert_int_equal(p->server.messages, 7);
  assert_int_equal(roc_of(&p->server, DCMF_SRTP_IN, SSRC_C), 0);
  /* the flows stayed open: one each before, SSRC_C new, none closed */
  assert_int_equal(p->server.n_opened, 2);
  assert_int_equal(p->server.opened[1], SSRC_C);
  assert_int_equal(p->client.n_opened, 1);
  assert_int_equal(p->server.closed + p->client.closed, 0);
  pair_free(p);
  dcmf_dtls_ctx_free(&ctx);
  dcmf_cert_free(&cert);
}

/* A renewal whose handshake fails (the certificate is not the one
 * signalled) ends the old keys too: raw input is refused from then on,
 * and the failure is reported. A renewal of a kind that cannot re-key
 * (SCTP) is refused and leaves the stack as it was. */
static void test_renewal_failed_ends_old_keys(void **state) {
  (void)state;
  struct pair *p = pair_new(&dcmf_assoc_srtp, &dcmf_assoc_srtp);
  pair_connect(p);
  struct pkt pk, wire;
  assert_int_equal(dcmf_dcstack_renew(p->server.stack, &p->id.ctx[1], 1), 0);
  assert_int_equal(dcmf_dcstack_renew(p->client.stack, &p->id.ctx[0], 0), 0);
  /* the server expects its own certificate: the client's will not do */
  assert_int_equal(
      dcmf_dcstack_set_remote_fingerprints(p->server.stack, &p->id.fp[1]), 0);
  assert_int_equal(
      dcmf_dcstack_set_remote_fingerprints(p->client.stack, &p->id.fp[1]), 0);
  protect_one(&p->client, SSRC_A, 1, &pk, &wire);
  assert_int_equal(dcmf_dcstack_recv_raw(p->server.stack, wire.b, wire.len), 0);
  assert_int_equal(p->server.messages, 1);
  dcmf_dcstack_start(p->client.stack);
  pump(p);
  assert_true(p->server.failed);
  assert_false(dcmf_dcstack_connected(p->server.stack));
  protect_one(&p->client, SSRC_A, 2, &pk, &wire);
  assert_int_equal(dcmf_dcstack_recv_raw(p->server.stack, wire.b, wire.len),
                   DCMF_ERR_INVALID);
  assert_int_equal(p->server.messages, 1);
  pair_free(p);

  p = pair_new(NULL, NULL);
  pair_connect(p);
  assert_int_equal(dcmf_dcstack_renew(p->server.stack, &p->id.ctx[1], 0),
                   DCMF_ERR_INVALID);
  assert_true(dcmf_dcstack_connected(p->server.stack));
  pair_free(p);
}

/* A renewal whose DTLS connects but cannot be keyed: the new handshake
 * shares no SRTP profile (the client offers only CM_32, the server takes
 * only GCM-256, so OpenSSL goes on without use_srtp). The association
 * fails, and the previous association's keys serve no more: a packet
 * protected with them before is refused, and nothing is sent. */
static void test_renewal_unkeyed_ends_old_keys(void **state) {
  (void)state;
  struct dcmf_assoc_ops ck = dcmf_assoc_srtp, sk = dcmf_assoc_srtp;
  struct pair *p = pair_new(&ck, &sk);
  pair_connect(p);
  struct pkt pk, stale;
  protect_one(&p->client, SSRC_A, 1, &pk, &stale);
  ck.srtp_profiles = "SRTP_AES128_CM_SHA1_32";
  sk.srtp_profiles = "SRTP_AEAD_AES_256_GCM";
  assert_int_equal(dcmf_dcstack_renew(p->server.stack, &p->id.ctx[1], 1), 0);
  assert_int_equal(dcmf_dcstack_renew(p->client.stack, &p->id.ctx[0], 0), 0);
  assert_int_equal(
      dcmf_dcstack_set_remote_fingerprints(p->server.stack, &p->id.fp[0]), 0);
  assert_int_equal(
      dcmf_dcstack_set_remote_fingerprints(p->client.stack, &p->id.fp[1]), 0);
  p->client.up = p->server.up = 0;
  dcmf_dcstack_start(p->client.stack);
  pump(p);
  assert_true(dcmf_dcstack_connected(p->server.stack));
  assert_int_equal(dcmf_dcstack_srtp_profile(p->server.stack), 0);
  assert_true(p->server.failed);
  assert_false(p->server.up);
  int before = p->server.messages;
  (void)dcmf_dcstack_recv_raw(p->server.stack, stale.b, stale.len);
  assert_int_equal(p->server.messages, before);
  make_rtp(&pk, SSRC_B, 2, 40);
  assert_int_not_equal(send_on(&p->server, SSRC_B, &pk), 0);
  pair_free(p);
}

/* The data-channel kind keeps the context's list (dtls.h): the same
 * selection as before the kinds chose their own. */
static void test_dc_stack_negotiates_as_before(void **state) {
  (void)state;
  struct pair *p = pair_new(NULL, NULL);
  pair_connect(p);
  assert_int_equal(dcmf_dcstack_srtp_profile(p->client.stack),
                   DCMF_SRTP_AEAD_AES_128_GCM);
  assert_int_equal(dcmf_dcstack_srtp_profile(p->server.stack),
                   DCMF_SRTP_AEAD_AES_128_GCM);
  assert_non_null(dcmf_dcstack_dc(p->client.stack));
  pair_free(p);
  /* an SRTP kind answering a client that offers the data channels'
   * list picks by our order among it */
  p = pair_new(NULL, &dcmf_assoc_srtp);
  pair_connect(p);
  assert_int_equal(dcmf_dcstack_srtp_profile(p->server.stack),
                   DCMF_SRTP_AEAD_AES_256_GCM);
  pair_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_profile_negotiated),
      cmocka_unit_test(test_rtp_and_rtcp_both_ways),
      cmocka_unit_test(test_ssrcs_are_flows),
      cmocka_unit_test(test_ssrcs_beyond_the_flow_limit),
      cmocka_unit_test(test_out_ssrcs_beyond_the_cap),
      cmocka_unit_test(test_replay_and_tamper_refused),
      cmocka_unit_test(test_raw_before_dtls_refused),
      cmocka_unit_test(test_rekey_keeps_roc),
      cmocka_unit_test(test_renewal_keeps_rocs),
      cmocka_unit_test(test_renewal_failed_ends_old_keys),
      cmocka_unit_test(test_renewal_unkeyed_ends_old_keys),
      cmocka_unit_test(test_dc_stack_negotiates_as_before),
  };
  return cmocka_run_group_tests(tests, group_setup,
                                dcmf_test_sctp_group_teardown);
}
