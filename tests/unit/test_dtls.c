/*
 * DTLS engine tests: a client and a server engine paired in memory, with
 * datagrams carried by hand between them (no sockets, no timers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cert.h"
#include "dtls.h"
#include "errors.h"

#define QMAX 64

struct side {
  struct dcmf_dtls *dtls;
  /* datagrams this side sent, waiting to be delivered to the other */
  uint8_t *out[QMAX];
  size_t out_len[QMAX];
  size_t n_out;
  size_t datagrams_sent;
  size_t max_datagram;
  enum dcmf_dtls_state last_state;
  char last_reason[160];
  char received[8192];
  size_t received_len;
  size_t records_received; /* recv_data calls */
  size_t pending_calls;    /* output_pending calls (coalescing) */
  /* Sent from the CONNECTED callback, as dcstack starts SCTP there. */
  const char *send_on_connect;
};

struct pair {
  struct dcmf_cert ccert, scert;
  struct dcmf_dtls_ctx cctx, sctx;
  struct side client, server;
};

static void on_send(void *user, const uint8_t *data, size_t len) {
  struct side *s = user;
  assert_true(s->n_out < QMAX);
  s->out[s->n_out] = malloc(len);
  memcpy(s->out[s->n_out], data, len);
  s->out_len[s->n_out++] = len;
  s->datagrams_sent++;
  if (len > s->max_datagram) {
    s->max_datagram = len;
  }
}

static void on_recv(void *user, const uint8_t *data, size_t len) {
  struct side *s = user;
  assert_true(s->received_len + len < sizeof(s->received));
  memcpy(s->received + s->received_len, data, len);
  s->received_len += len;
  s->records_received++;
}

static void on_state(void *user, enum dcmf_dtls_state state,
                     const char *reason) {
  struct side *s = user;
  assert_non_null(reason);
  s->last_state = state;
  snprintf(s->last_reason, sizeof(s->last_reason), "%s", reason);
  if (state == DCMF_DTLS_CONNECTED && s->send_on_connect != NULL) {
    assert_int_equal(dcmf_dtls_send(s->dtls,
                                     (const uint8_t *)s->send_on_connect,
                                     strlen(s->send_on_connect)),
                     0);
  }
}

static void on_pending(void *user) {
  struct side *s = user;
  /* Asked once per datagram begun: never while one is gathered. */
  assert_int_equal(dcmf_dtls_output_pending(s->dtls), 0);
  s->pending_calls++;
}

static const struct dcmf_dtls_callbacks cbs = {on_send, on_recv, on_state,
                                               on_pending};

/* Delivers every queued datagram of |from| to |to|; returns how many. */
static size_t deliver(struct side *from, struct side *to) {
  size_t n = from->n_out;
  for (size_t i = 0; i < n; i++) {
    dcmf_dtls_recv(to->dtls, from->out[i], from->out_len[i]);
    free(from->out[i]);
  }
  /* Datagrams sent while delivering stay queued for the next round. */
  memmove(from->out, from->out + n, (from->n_out - n) * sizeof(from->out[0]));
  memmove(from->out_len, from->out_len + n,
          (from->n_out - n) * sizeof(from->out_len[0]));
  from->n_out -= n;
  return n;
}

static void run(struct pair *p) {
  for (int round = 0; round < 20; round++) {
    /* The end of a loop turn: what coalescing gathered leaves. */
    dcmf_dtls_flush(p->client.dtls);
    dcmf_dtls_flush(p->server.dtls);
    size_t moved = deliver(&p->client, &p->server);
    moved += deliver(&p->server, &p->client);
    if (moved == 0) {
      return;
    }
  }
}

static struct dcmf_fingerprint_set fp_of(const struct dcmf_cert *c) {
  struct dcmf_fingerprint_set set;
  memset(&set, 0, sizeof(set));
  assert_int_equal(dcmf_fingerprint_parse(c->fingerprint, &set), 0);
  return set;
}

static int setup(void **state) {
  struct pair *p = calloc(1, sizeof(*p));
  char err[256];
  assert_int_equal(dcmf_cert_generate(&p->ccert, err, sizeof(err)), 0);
  assert_int_equal(dcmf_cert_generate(&p->scert, err, sizeof(err)), 0);
  assert_int_equal(
      dcmf_dtls_ctx_init(&p->cctx, p->ccert.x509, p->ccert.pkey, 1200), 0);
  assert_int_equal(
      dcmf_dtls_ctx_init(&p->sctx, p->scert.x509, p->scert.pkey, 1200), 0);
  assert_int_equal(dcmf_dtls_new(&p->client.dtls, &p->cctx, 0, &cbs,
                                 &p->client),
                   0);
  assert_int_equal(dcmf_dtls_new(&p->server.dtls, &p->sctx, 1, &cbs,
                                 &p->server),
                   0);
  *state = p;
  return 0;
}

static void side_free(struct side *s) {
  for (size_t i = 0; i < s->n_out; i++) {
    free(s->out[i]);
  }
  dcmf_dtls_del(s->dtls);
}

static int teardown(void **state) {
  struct pair *p = *state;
  side_free(&p->client);
  side_free(&p->server);
  dcmf_dtls_ctx_free(&p->cctx);
  dcmf_dtls_ctx_free(&p->sctx);
  dcmf_cert_free(&p->ccert);
  dcmf_cert_free(&p->scert);
  free(p);
  return 0;
}

static void connect_pair(struct pair *p) {
  struct dcmf_fingerprint_set cfp = fp_of(&p->ccert), sfp = fp_of(&p->scert);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->server.dtls, &cfp), 0);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->client.dtls, &sfp), 0);
  dcmf_dtls_start(p->client.dtls);
  run(p);
  assert_int_equal(dcmf_dtls_state(p->client.dtls), DCMF_DTLS_CONNECTED);
  assert_int_equal(dcmf_dtls_state(p->server.dtls), DCMF_DTLS_CONNECTED);
}

static void test_handshake_and_data(void **state) {
  struct pair *p = *state;
  connect_pair(p);
  assert_int_equal(p->server.last_state, DCMF_DTLS_CONNECTED);
  assert_string_equal(dcmf_dtls_cipher(p->server.dtls),
                      "ECDHE-ECDSA-AES128-GCM-SHA256");
  assert_true(p->client.max_datagram <= 1200);
  assert_true(p->server.max_datagram <= 1200);
  assert_int_equal(dcmf_dtls_send(p->client.dtls, (const uint8_t *)"ping", 4),
                   0);
  assert_int_equal(dcmf_dtls_send(p->server.dtls, (const uint8_t *)"pong", 4),
                   0);
  run(p);
  assert_int_equal(p->server.received_len, 4);
  assert_memory_equal(p->server.received, "ping", 4);
  assert_memory_equal(p->client.received, "pong", 4);
  /* No retransmission timer once connected. */
  assert_int_equal(dcmf_dtls_next_timeout_ms(p->server.dtls), -1);
}

static void test_server_holds_until_fingerprint(void **state) {
  struct pair *p = *state;
  struct dcmf_fingerprint_set cfp = fp_of(&p->ccert), sfp = fp_of(&p->scert);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->client.dtls, &sfp), 0);
  dcmf_dtls_start(p->client.dtls);
  assert_true(p->client.n_out >= 1); /* ClientHello */
  run(p);
  /* The server answered nothing: it does not know the fingerprint. */
  assert_int_equal(p->server.datagrams_sent, 0);
  assert_int_equal(dcmf_dtls_state(p->server.dtls), DCMF_DTLS_WAITING);
  /* The PATCH with the fingerprint arrives: the held hello is replayed. */
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->server.dtls, &cfp), 0);
  run(p);
  assert_int_equal(dcmf_dtls_state(p->client.dtls), DCMF_DTLS_CONNECTED);
  assert_int_equal(dcmf_dtls_state(p->server.dtls), DCMF_DTLS_CONNECTED);
}

static void test_fingerprint_mismatch_fails_both(void **state) {
  struct pair *p = *state;
  struct dcmf_fingerprint_set sfp = fp_of(&p->scert);
  /* The server expects the wrong certificate: its own. */
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->server.dtls, &sfp), 0);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->client.dtls, &sfp), 0);
  dcmf_dtls_start(p->client.dtls);
  run(p);
  assert_int_equal(dcmf_dtls_state(p->server.dtls), DCMF_DTLS_FAILED);
  assert_int_equal(p->server.last_state, DCMF_DTLS_FAILED);
  /* The alert reached the client, which failed too. */
  assert_int_equal(dcmf_dtls_state(p->client.dtls), DCMF_DTLS_FAILED);
  assert_int_equal(dcmf_dtls_send(p->server.dtls, (const uint8_t *)"x", 1),
                   DCMF_ERR_INVALID);
}

static void test_client_checks_server_fingerprint(void **state) {
  struct pair *p = *state;
  struct dcmf_fingerprint_set cfp = fp_of(&p->ccert);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->server.dtls, &cfp), 0);
  /* The client expects its own certificate from the server. */
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->client.dtls, &cfp), 0);
  dcmf_dtls_start(p->client.dtls);
  run(p);
  assert_int_equal(dcmf_dtls_state(p->client.dtls), DCMF_DTLS_FAILED);
  assert_true(dcmf_dtls_state(p->server.dtls) != DCMF_DTLS_CONNECTED);
}

static void test_garbage_and_hold_limit(void **state) {
  struct pair *p = *state;
  uint8_t junk[2000];
  memset(junk, 22, sizeof(junk));
  for (int i = 0; i < 8; i++) {
    junk[1] = (uint8_t)i; /* eight different datagrams */
    assert_int_equal(dcmf_dtls_recv(p->server.dtls, junk, sizeof(junk)), 0);
    /* A retransmission of a held datagram takes no room. */
    assert_int_equal(dcmf_dtls_recv(p->server.dtls, junk, sizeof(junk)), 0);
  }
  junk[1] = 8;
  assert_int_equal(dcmf_dtls_recv(p->server.dtls, junk, sizeof(junk)),
                   DCMF_ERR_TOO_LARGE);
  struct dcmf_fingerprint_set cfp = fp_of(&p->ccert);
  /* Replaying junk must not crash, and the server stays unconnected. */
  dcmf_dtls_set_remote_fingerprints(p->server.dtls, &cfp);
  assert_true(dcmf_dtls_state(p->server.dtls) != DCMF_DTLS_CONNECTED);
}

static void test_retransmission_timer(void **state) {
  struct pair *p = *state;
  struct dcmf_fingerprint_set sfp = fp_of(&p->scert);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->client.dtls, &sfp), 0);
  dcmf_dtls_start(p->client.dtls);
  long t = dcmf_dtls_next_timeout_ms(p->client.dtls);
  assert_true(t > 0 && t <= 1000);
}

/* Every session of a worker thread shares the thread's OpenSSL error
 * queue. An error another session (or a TLS upstream) left there must
 * not fail this handshake, which at each step only waits for input. */
static void test_stale_thread_error_is_not_fatal(void **state) {
  struct pair *p = *state;
  struct dcmf_fingerprint_set cfp = fp_of(&p->ccert), sfp = fp_of(&p->scert);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->server.dtls, &cfp), 0);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->client.dtls, &sfp), 0);
  dcmf_dtls_start(p->client.dtls);
  for (int round = 0; round < 20; round++) {
    ERR_raise(ERR_LIB_SSL, SSL_R_BAD_PACKET_LENGTH);
    size_t moved = deliver(&p->client, &p->server);
    ERR_raise(ERR_LIB_SSL, SSL_R_BAD_PACKET_LENGTH);
    moved += deliver(&p->server, &p->client);
    if (moved == 0) {
      break;
    }
  }
  assert_int_equal(dcmf_dtls_state(p->client.dtls), DCMF_DTLS_CONNECTED);
  assert_int_equal(dcmf_dtls_state(p->server.dtls), DCMF_DTLS_CONNECTED);
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_PACKET_LENGTH);
  assert_int_equal(dcmf_dtls_send(p->client.dtls, (const uint8_t *)"ping", 4),
                   0);
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_PACKET_LENGTH);
  run(p);
  assert_int_equal(dcmf_dtls_state(p->server.dtls), DCMF_DTLS_CONNECTED);
  assert_int_equal(p->server.received_len, 4);
  ERR_clear_error();
}

/* Finds the ClientKeyExchange in the datagrams |s| queued: a plaintext
 * handshake record (type 22, epoch 0) whose message type is 16. Returns
 * a pointer to the message body, or NULL. */
static uint8_t *client_key_exchange(struct side *s, size_t *body_len) {
  for (size_t i = 0; i < s->n_out; i++) {
    size_t off = 0;
    while (off + 13 <= s->out_len[i]) {
      uint8_t *rec = s->out[i] + off;
      size_t len = (size_t)rec[11] << 8 | rec[12];
      if (rec[0] == 22 && rec[3] == 0 && rec[4] == 0 && len > 12 &&
          rec[13] == 16 && off + 13 + len <= s->out_len[i]) {
        *body_len = len - 12;
        return rec + 13 + 12;
      }
      off += 13 + len;
    }
  }
  return NULL;
}

/* A real failure names OpenSSL's reason: the client's ECDHE point is not
 * on the curve, which the server must refuse with an alert. */
static void test_failure_reason_names_openssl_reason(void **state) {
  struct pair *p = *state;
  struct dcmf_fingerprint_set cfp = fp_of(&p->ccert), sfp = fp_of(&p->scert);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->server.dtls, &cfp), 0);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->client.dtls, &sfp), 0);
  dcmf_dtls_start(p->client.dtls);
  size_t n = 0;
  uint8_t *cke = NULL;
  for (int round = 0; round < 4 && cke == NULL; round++) {
    deliver(&p->client, &p->server);
    deliver(&p->server, &p->client);
    cke = client_key_exchange(&p->client, &n);
  }
  assert_non_null(cke);
  assert_true(n > 10);
  cke[6] ^= 0x5a; /* inside the point's x coordinate */
  deliver(&p->client, &p->server);
  assert_int_equal(dcmf_dtls_state(p->server.dtls), DCMF_DTLS_FAILED);
  assert_int_equal(p->server.last_state, DCMF_DTLS_FAILED);
  assert_non_null(strstr(p->server.last_reason,
                         "handshake or record failure ("));
  assert_null(strstr(p->server.last_reason, "no OpenSSL reason"));
}

/* Walks the records of one datagram: returns how many there are and
 * stores the content type of the last one; -1 if they do not tile it. */
static int count_records(const uint8_t *d, size_t len, uint8_t *last_type) {
  size_t off = 0;
  int n = 0;
  while (off + 13 <= len) {
    size_t rlen = (size_t)d[off + 11] << 8 | d[off + 12];
    *last_type = d[off];
    off += 13 + rlen;
    n++;
  }
  return off == len ? n : -1;
}

/* With coalescing, the records of a turn wait for the flush and leave
 * in datagrams of at most the MTU, in order, each holding as many whole
 * records as fit. */
static void test_coalesce_up_to_mtu(void **state) {
  struct pair *p = *state;
  assert_int_equal(dcmf_dtls_coalesce(p->server.dtls), 0);
  connect_pair(p); /* the server's flights were gathered too */
  assert_true(p->server.max_datagram <= 1200);
  size_t sent0 = p->server.datagrams_sent, pending0 = p->server.pending_calls;
  /* 100 bytes of data are 137-byte records (AES-GCM): 8 fit in 1200. */
  char msg[100];
  for (int i = 0; i < 20; i++) {
    memset(msg, 'a' + i, sizeof(msg));
    assert_int_equal(dcmf_dtls_send(p->server.dtls, (const uint8_t *)msg,
                                     sizeof(msg)),
                     0);
  }
  /* Two full datagrams left when the next record did not fit; four
   * records wait for the end of the turn. */
  assert_int_equal(p->server.datagrams_sent - sent0, 2);
  assert_int_equal(dcmf_dtls_output_pending(p->server.dtls), 1);
  assert_int_equal(p->server.pending_calls - pending0, 3);
  dcmf_dtls_flush(p->server.dtls);
  assert_int_equal(dcmf_dtls_output_pending(p->server.dtls), 0);
  assert_int_equal(p->server.datagrams_sent - sent0, 3);
  int expect[3] = {8, 8, 4};
  for (size_t i = 0; i < 3; i++) {
    uint8_t type = 0;
    assert_true(p->server.out_len[i] <= 1200);
    assert_int_equal(count_records(p->server.out[i], p->server.out_len[i],
                                   &type),
                     expect[i]);
    assert_int_equal(type, 23); /* application data */
  }
  dcmf_dtls_flush(p->server.dtls); /* nothing more: no empty datagram */
  assert_int_equal(p->server.datagrams_sent - sent0, 3);
  run(p);
  /* The client decrypted every record, in the order sent. */
  assert_int_equal(p->client.records_received, 20);
  assert_int_equal(p->client.received_len, 20 * sizeof(msg));
  for (int i = 0; i < 20; i++) {
    assert_int_equal(p->client.received[i * 100], 'a' + i);
  }
}

/* A record that cannot share a datagram (larger than the MTU on its
 * own) leaves alone, after what was gathered before it. */
static void test_coalesce_large_record_alone(void **state) {
  struct pair *p = *state;
  assert_int_equal(dcmf_dtls_coalesce(p->server.dtls), 0);
  connect_pair(p);
  size_t sent0 = p->server.datagrams_sent;
  assert_int_equal(dcmf_dtls_send(p->server.dtls, (const uint8_t *)"one", 3),
                   0);
  uint8_t big[1190];
  memset(big, 'b', sizeof(big));
  assert_int_equal(dcmf_dtls_send(p->server.dtls, big, sizeof(big)), 0);
  assert_int_equal(dcmf_dtls_send(p->server.dtls, (const uint8_t *)"two", 3),
                   0);
  assert_int_equal(p->server.datagrams_sent - sent0, 2);
  uint8_t type = 0;
  assert_int_equal(count_records(p->server.out[0], p->server.out_len[0],
                                 &type),
                   1);
  assert_true(p->server.out_len[1] > 1200); /* the big one, alone */
  assert_int_equal(count_records(p->server.out[1], p->server.out_len[1],
                                 &type),
                   1);
  run(p);
  assert_int_equal(p->client.records_received, 3);
  assert_memory_equal(p->client.received, "one", 3);
  assert_memory_equal(p->client.received + 3 + sizeof(big), "two", 3);
}

/* The handshake's last flight leaves before application data made when
 * the handshake completes (SCTP's INIT) can join its datagram. */
static void test_coalesce_flight_before_data(void **state) {
  struct pair *p = *state;
  assert_int_equal(dcmf_dtls_coalesce(p->server.dtls), 0);
  p->server.send_on_connect = "INIT";
  struct dcmf_fingerprint_set cfp = fp_of(&p->ccert), sfp = fp_of(&p->scert);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->server.dtls, &cfp), 0);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(p->client.dtls, &sfp), 0);
  dcmf_dtls_start(p->client.dtls);
  for (int round = 0; round < 20; round++) {
    dcmf_dtls_flush(p->client.dtls);
    deliver(&p->client, &p->server);
    if (dcmf_dtls_state(p->server.dtls) == DCMF_DTLS_CONNECTED) {
      break; /* what the server sent is still queued */
    }
    dcmf_dtls_flush(p->server.dtls);
    deliver(&p->server, &p->client);
  }
  assert_int_equal(dcmf_dtls_state(p->server.dtls), DCMF_DTLS_CONNECTED);
  /* The final flight (ChangeCipherSpec, Finished) left, alone; the data
   * waits for the flush. */
  assert_true(p->server.n_out >= 1);
  uint8_t type = 0;
  size_t last = p->server.n_out - 1;
  assert_true(count_records(p->server.out[last], p->server.out_len[last],
                            &type) >= 1);
  assert_int_equal(type, 22); /* handshake (Finished) */
  assert_int_equal(dcmf_dtls_output_pending(p->server.dtls), 1);
  run(p);
  assert_int_equal(dcmf_dtls_state(p->client.dtls), DCMF_DTLS_CONNECTED);
  assert_int_equal(p->client.received_len, 4);
  assert_memory_equal(p->client.received, "INIT", 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_coalesce_up_to_mtu, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_coalesce_large_record_alone, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_coalesce_flight_before_data, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_handshake_and_data, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_server_holds_until_fingerprint,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_fingerprint_mismatch_fails_both,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_checks_server_fingerprint,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_garbage_and_hold_limit, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stale_thread_error_is_not_fatal,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_failure_reason_names_openssl_reason,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_retransmission_timer, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
