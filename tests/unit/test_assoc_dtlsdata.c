/*
 * The raw DTLS data association kind (assoc_dtlsdata.h, T.38 UDPTL over
 * DTLS, RFC 7345) in memory: two dcstacks of the kind with RSA
 * identities, one the DTLS client and one the server, datagrams carried
 * by hand. Checked: the RFC 7345 suite is negotiated with RSA
 * certificates (ECDHE_RSA first, DHE_RSA when the peer offers only
 * that); the one flow opens on both sides when DTLS connects; each send
 * is one DTLS datagram that arrives as one message, byte for byte, both
 * ways; sends before DTLS, on another flow id, empty or too large are
 * refused; a wrong fingerprint fails the handshake and nothing is
 * delivered; a renewal (dcmf_dcstack_renew, new certificate) carries the
 * media on the old association both ways while the new handshake runs,
 * then on the new one, without the flow closing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "assoc_dtlsdata.h"
#include "cert.h"
#include "dcstack.h"
#include "dtlspair.h"
#include "errors.h"

struct side {
  struct dcmf_dcstack *stack;
  struct side *other;
  struct dtlspair_queue out; /* what it sent, not carried yet */
  int up, failed, opened, closed, messages;
  uint8_t last[2048];
  size_t last_len;
};

struct pair {
  struct dtlspair_ids id; /* client, server, the server's renewed one */
  struct side client, server;
};

static void datagram_out(void *user, const uint8_t *data, size_t len) {
  struct side *s = user;
  dtlspair_queue_push(&s->out, data, len);
}

static void stack_state(void *user, enum dcmf_dcstack_state state,
                        const char *reason) {
  struct side *s = user;
  (void)reason;
  if (state == DCMF_DCSTACK_ASSOC_UP) {
    s->up++;
  } else if (state == DCMF_DCSTACK_DTLS_FAILED ||
             state == DCMF_DCSTACK_ASSOC_FAILED) {
    s->failed = 1;
  }
}

static int flow_open(void *user, const struct dcmf_svc_flow *f, void **slot) {
  struct side *s = user;
  assert_int_equal(f->kind, DCMF_ASSOC_DTLS_DATA);
  assert_int_equal(f->id, DCMF_ASSOC_DTLSDATA_FLOW);
  s->opened++;
  *slot = s;
  return 0;
}

static void flow_message(void *user, const struct dcmf_svc_flow *f, void *slot,
                         int binary, const uint8_t *data, size_t len) {
  struct side *s = user;
  (void)f;
  assert_ptr_equal(slot, s);
  assert_true(binary);
  assert_true(len <= sizeof(s->last));
  memcpy(s->last, data, len);
  s->last_len = len;
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

static void deliver(void *user, const uint8_t *d, size_t len) {
  struct side *to = user;
  assert_true(d[0] >= 20 && d[0] <= 63); /* DTLS only */
  (void)dcmf_dcstack_recv(to->stack, d, len);
}

static size_t carry_side(struct side *from) {
  return dtlspair_queue_carry(&from->out, deliver, from->other);
}

static void pump(struct pair *p) {
  for (int i = 0; i < 100; i++) {
    if (carry_side(&p->client) + carry_side(&p->server) == 0) {
      return;
    }
  }
  fail_msg("datagrams still flowing after 100 rounds");
}

static void side_new(struct pair *p, struct side *s, int is_server,
                     const struct dcmf_fingerprint_set *remote) {
  s->other = is_server ? &p->client : &p->server;
  struct dcmf_dcstack_settings ss = {.dtls_ctx = &p->id.ctx[is_server],
                                     .dtls_server = is_server,
                                     .kind = &dcmf_assoc_dtlsdata};
  assert_int_equal(dcmf_dcstack_new(&s->stack, &ss, &cbs, s), 0);
  assert_int_equal(dcmf_dcstack_set_remote_fingerprints(s->stack, remote), 0);
}

static struct pair *pair_new(int wrong_fingerprint) {
  struct pair *p = calloc(1, sizeof(*p));
  assert_non_null(p);
  dtlspair_ids_init(&p->id, 3, DCMF_CERT_RSA);
  for (int i = 0; i < 3; i++) {
    assert_true(dcmf_cert_is_rsa(&p->id.cert[i]));
  }
  side_new(p, &p->client, 0, &p->id.fp[wrong_fingerprint ? 2 : 1]);
  side_new(p, &p->server, 1, &p->id.fp[0]);
  return p;
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

/* Sends |len| bytes from |from| and checks they leave as exactly one
 * datagram and arrive as exactly one message, unchanged. */
static void one_packet(struct side *from, const uint8_t *data, size_t len) {
  void *a = dcmf_dcstack_assoc(from->stack);
  int before = from->other->messages;
  size_t queued = from->out.nq; /* a handshake flight may wait (renewal) */
  assert_int_equal(
      dcmf_assoc_dtlsdata.send(a, DCMF_ASSOC_DTLSDATA_FLOW, 1, data, len), 0);
  assert_int_equal(from->out.nq, queued + 1);
  assert_int_equal(from->out.q[queued][0], 23); /* an application_data record */
  carry_side(from);
  assert_int_equal(from->other->messages, before + 1);
  assert_int_equal(from->other->last_len, len);
  assert_memory_equal(from->other->last, data, len);
}

static void test_rsa_suite_and_one_record_per_packet(void **state) {
  (void)state;
  struct pair *p = pair_new(0);
  void *ca = dcmf_dcstack_assoc(p->client.stack);
  uint8_t pkt[300];
  for (size_t i = 0; i < sizeof(pkt); i++) {
    pkt[i] = (uint8_t)(i * 7 + 1);
  }
  /* Nothing before DTLS. */
  assert_int_equal(dcmf_assoc_dtlsdata.send(ca, 0, 1, pkt, 10),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_assoc_dtlsdata.flow_state(ca, 0),
                   DCMF_SVC_FLOW_PENDING);
  dcmf_dcstack_start(p->client.stack);
  pump(p);
  assert_true(dcmf_dcstack_connected(p->client.stack));
  assert_true(dcmf_dcstack_connected(p->server.stack));
  assert_string_equal(dcmf_dcstack_cipher(p->client.stack),
                      "ECDHE-RSA-AES128-GCM-SHA256");
  assert_int_equal(p->client.opened, 1);
  assert_int_equal(p->server.opened, 1);
  assert_int_equal(p->client.up, 1);
  assert_int_equal(dcmf_assoc_dtlsdata.flow_state(ca, 0), DCMF_SVC_FLOW_OPEN);
  /* Both ways, sizes from 1 byte up. */
  size_t sizes[] = {1, 4, 77, 300};
  for (size_t i = 0; i < 4; i++) {
    one_packet(&p->client, pkt, sizes[i]);
    one_packet(&p->server, pkt + 1, sizes[i] - 1 > 0 ? sizes[i] - 1 : 1);
  }
  /* Refusals. */
  assert_int_equal(dcmf_assoc_dtlsdata.send(ca, 1, 1, pkt, 10),
                   DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_assoc_dtlsdata.send(ca, 0, 1, pkt, 0),
                   DCMF_ERR_TOO_LARGE);
  static uint8_t big[DCMF_ASSOC_DTLSDATA_MAX_PACKET + 1];
  assert_int_equal(dcmf_assoc_dtlsdata.send(ca, 0, 1, big, sizeof(big)),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_assoc_dtlsdata_counts(ca)->bad_size, 2);
  assert_int_equal(p->client.out.nq, 0);
  struct dcmf_assoc_stats st = {0};
  dcmf_assoc_dtlsdata.stats(ca, &st);
  assert_true(st.keyed);
  pair_free(p);
  /* The flows were reported closed as the stacks went. */
}

/* A peer offering only DHE_RSA (the other mandatory suite) gets it. */
static void test_dhe_rsa_suite(void **state) {
  (void)state;
  struct pair *p = pair_new(0);
  assert_int_equal(SSL_CTX_set_cipher_list(p->id.ctx[0].ssl_ctx,
                                           "DHE-RSA-AES128-GCM-SHA256"),
                   1);
  /* The client stack was made before: a new one with that list. */
  dcmf_dcstack_del(p->client.stack);
  p->client.opened = 0;
  side_new(p, &p->client, 0, &p->id.fp[1]);
  dcmf_dcstack_start(p->client.stack);
  pump(p);
  assert_true(dcmf_dcstack_connected(p->server.stack));
  assert_string_equal(dcmf_dcstack_cipher(p->server.stack),
                      "DHE-RSA-AES128-GCM-SHA256");
  uint8_t pkt[] = {0, 5, 0x06, 0xd0, 0x01, 0x00};
  one_packet(&p->client, pkt, sizeof(pkt));
  pair_free(p);
}

static void test_wrong_fingerprint_delivers_nothing(void **state) {
  (void)state;
  struct pair *p = pair_new(1);
  dcmf_dcstack_start(p->client.stack);
  pump(p);
  assert_true(p->client.failed);
  assert_false(dcmf_dcstack_connected(p->client.stack));
  assert_int_equal(p->client.opened + p->server.opened, 0);
  uint8_t pkt[4] = {1, 2, 3, 4};
  assert_int_equal(dcmf_assoc_dtlsdata.send(dcmf_dcstack_assoc(p->client.stack),
                                            0, 1, pkt, sizeof(pkt)),
                   DCMF_ERR_INVALID);
  assert_int_equal(p->client.messages + p->server.messages, 0);
  pair_free(p);
}

/* RFC 7345 §4.5: a new association is set up beside the old one, which
 * carries the media both ways until the new one is up. */
static void test_renewal_carries_media_on_old_until_new_is_up(void **state) {
  (void)state;
  struct pair *p = pair_new(0);
  dcmf_dcstack_start(p->client.stack);
  pump(p);
  uint8_t pkt[40];
  memset(pkt, 0x5a, sizeof(pkt));
  one_packet(&p->client, pkt, sizeof(pkt));
  /* The server gets a new certificate; the client is told of it. */
  assert_int_equal(dcmf_dcstack_renew(p->server.stack, &p->id.ctx[2], 1), 0);
  assert_int_equal(
      dcmf_dcstack_set_remote_fingerprints(p->server.stack, &p->id.fp[0]), 0);
  assert_int_equal(dcmf_dcstack_renew(p->client.stack, &p->id.ctx[0], 0), 0);
  assert_int_equal(
      dcmf_dcstack_set_remote_fingerprints(p->client.stack, &p->id.fp[2]), 0);
  assert_false(dcmf_dcstack_connected(p->client.stack));
  /* Before the new handshake starts: the old association, both ways. */
  pkt[0] = 1;
  one_packet(&p->client, pkt, sizeof(pkt));
  pkt[0] = 2;
  one_packet(&p->server, pkt, sizeof(pkt));
  /* The ClientHello goes; the server's flight comes back; media in
   * between still on the old association. */
  dcmf_dcstack_start(p->client.stack);
  carry_side(&p->client);
  pkt[0] = 3;
  assert_true(p->server.out.nq > 0); /* its new flight */
  one_packet(&p->server, pkt, 20);
  pump(p);
  assert_true(dcmf_dcstack_connected(p->client.stack));
  assert_true(dcmf_dcstack_connected(p->server.stack));
  /* Now on the new one. */
  pkt[0] = 4;
  one_packet(&p->client, pkt, sizeof(pkt));
  pkt[0] = 5;
  one_packet(&p->server, pkt, 7);
  /* The flow stayed open throughout: opened once, never closed. */
  assert_int_equal(p->client.opened, 1);
  assert_int_equal(p->server.opened, 1);
  assert_int_equal(p->client.closed + p->server.closed, 0);
  assert_int_equal(p->client.up, 2); /* up, then renewed */
  assert_false(p->client.failed || p->server.failed);
  pair_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rsa_suite_and_one_record_per_packet),
      cmocka_unit_test(test_dhe_rsa_suite),
      cmocka_unit_test(test_wrong_fingerprint_delivers_nothing),
      cmocka_unit_test(test_renewal_carries_media_on_old_until_new_is_up),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
