/*
 * The whole data-channel stack in memory: DTLS (client and server
 * engines) carrying SCTP, data channels negotiated and opened with DCEP,
 * and HTTP over the bootstrap channel answered by the httpdc engine from
 * an in-memory repository. Datagrams are carried by hand and usrsctp's
 * timers ticked by hand, so the test runs on a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "cert.h"
#include "datachannel.h"
#include "dtls.h"
#include "errors.h"
#include "httpdc.h"
#include "repo.h"
#include "sctp.h"

#define QMAX 8192

struct side {
  struct dcmf_cert cert;
  struct dcmf_dtls_ctx ctx;
  struct dcmf_dtls *dtls;
  struct dcmf_sctp *sctp;
  struct dcmf_dc *dc;
  struct side *other;
  uint8_t *q[QMAX];
  size_t qlen[QMAX];
  size_t nq;
  /* server side: the HTTP engine on channel 0 */
  struct dcmf_httpdc *http;
  /* client side: what came back, and channel events */
  struct dcmf_buf received;
  int opened[4];
  int n_opened;
  int closed;
};

struct stack {
  struct side client, server;
  struct dcmf_repo *repo;
  uint8_t page[5000];
};

static void datagram_out(void *user, const uint8_t *data, size_t len) {
  struct side *s = user;
  assert_true(s->nq < QMAX);
  s->q[s->nq] = malloc(len);
  memcpy(s->q[s->nq], data, len);
  s->qlen[s->nq++] = len;
}

static void dtls_data(void *user, const uint8_t *data, size_t len) {
  struct side *s = user;
  dcmf_sctp_input(s->sctp, data, len);
}

static void dtls_state(void *user, enum dcmf_dtls_state st, const char *why) {
  struct side *s = user;
  (void)why;
  if (st == DCMF_DTLS_CONNECTED) {
    assert_int_equal(dcmf_sctp_connect(s->sctp), 0);
  }
}

static void sctp_packet(void *user, const uint8_t *data, size_t len) {
  struct side *s = user;
  dcmf_dtls_send(s->dtls, data, len);
}

static void sctp_message(void *user, uint16_t sid, uint32_t ppid,
                         const uint8_t *data, size_t len) {
  struct side *s = user;
  dcmf_dc_on_sctp_message(s->dc, sid, ppid, data, len);
}

static void sctp_reset(void *user, uint16_t sid) {
  struct side *s = user;
  dcmf_dc_on_sctp_reset(s->dc, sid);
}

static void sctp_state(void *user, enum dcmf_sctp_state st) {
  struct side *s = user;
  dcmf_dc_on_sctp_state(s->dc, st);
}

static void sctp_writable(void *user) {
  (void)user;
}

/* The server answers HTTP on channel 0 and refuses other channels. */
static int ch_open(void *user, struct dcmf_dc_channel *ch) {
  struct side *s = user;
  if (s->n_opened < 4) {
    s->opened[s->n_opened++] = ch->sid;
  }
  return s->http == NULL || ch->sid == 0 ? 0 : -1;
}

static void ch_message(void *user, struct dcmf_dc_channel *ch, int binary,
                       const uint8_t *data, size_t len) {
  struct side *s = user;
  (void)binary;
  if (s->http == NULL) {
    dcmf_buf_append(&s->received, data, len);
    return;
  }
  assert_int_equal(ch->sid, 0);
  assert_int_equal(dcmf_httpdc_recv(s->http, data, len), 0);
  uint8_t out[4096];
  size_t n;
  while (dcmf_httpdc_write(s->http, out, sizeof(out), &n) == 0 && n > 0) {
    assert_int_equal(dcmf_dc_send(s->dc, 0, 1, out, n), 0);
  }
}

static void ch_closed(void *user, struct dcmf_dc_channel *ch) {
  struct side *s = user;
  (void)ch;
  s->closed++;
}

static const struct dcmf_dtls_callbacks dtls_cbs = {datagram_out, dtls_data,
                                                    dtls_state};
static const struct dcmf_sctp_callbacks sctp_cbs = {
    sctp_packet, sctp_message, sctp_reset, sctp_state, sctp_writable};
static const struct dcmf_dc_callbacks dc_cbs = {ch_open, ch_message,
                                                ch_closed};

static size_t pump_side(struct side *from) {
  size_t n = from->nq;
  uint8_t **q = malloc(n * sizeof(*q));
  size_t *ql = malloc(n * sizeof(*ql));
  memcpy(q, from->q, n * sizeof(*q));
  memcpy(ql, from->qlen, n * sizeof(*ql));
  from->nq = 0;
  for (size_t i = 0; i < n; i++) {
    dcmf_dtls_recv(from->other->dtls, q[i], ql[i]);
    free(q[i]);
  }
  free(q);
  free(ql);
  return n;
}

static void pump(struct stack *st) {
  for (int i = 0; i < 5000; i++) {
    if (pump_side(&st->client) + pump_side(&st->server) > 0) {
      continue;
    }
    for (int t = 0; t < 20 && st->client.nq == 0 && st->server.nq == 0;
         t++) {
      dcmf_sctp_stack_tick(50); /* fake time: delayed SACKs, resets */
      dcmf_sctp_drain(st->client.sctp);
      dcmf_sctp_drain(st->server.sctp);
    }
    if (st->client.nq == 0 && st->server.nq == 0) {
      return;
    }
  }
}

static void side_init(struct side *s, int is_server) {
  char err[256];
  assert_int_equal(dcmf_cert_generate(&s->cert, err, sizeof(err)), 0);
  assert_int_equal(dcmf_dtls_ctx_init(&s->ctx, s->cert.x509, s->cert.pkey,
                                      1200),
                   0);
  assert_int_equal(dcmf_dtls_new(&s->dtls, &s->ctx, is_server, &dtls_cbs, s),
                   0);
  struct dcmf_sctp_settings ss = {.local_port = 5000,
                                  .remote_port = 5000,
                                  .max_streams = 2048,
                                  .max_message_size = 65536,
                                  .send_buffer = 1 << 20};
  assert_int_equal(dcmf_sctp_new(&s->sctp, &ss, &sctp_cbs, s), 0);
  assert_int_equal(dcmf_dc_new(&s->dc, s->sctp, &dc_cbs, s), 0);
  assert_int_equal(dcmf_dc_add_negotiated(s->dc, 0, "http", NULL, 256), 0);
}

static int setup(void **state) {
  struct stack *st = calloc(1, sizeof(*st));
  st->client.other = &st->server;
  st->server.other = &st->client;
  side_init(&st->client, 0);
  side_init(&st->server, 1);
  for (size_t i = 0; i < sizeof(st->page); i++) {
    st->page[i] = (uint8_t)('a' + i % 26);
  }
  assert_int_equal(dcmf_repo_new(&st->repo, NULL), 0);
  assert_int_equal(dcmf_repo_add(st->repo, "/index.html", st->page,
                                 sizeof(st->page)),
                   0);
  struct dcmf_httpdc_backend backend;
  dcmf_httpdc_repo_backend(&backend, st->repo);
  /* Small messages so the page needs several. */
  struct dcmf_httpdc_settings hs = {.max_message_size = 1024};
  assert_int_equal(dcmf_httpdc_new(&st->server.http, &hs, &backend), 0);
  *state = st;
  return 0;
}

static void side_free(struct side *s) {
  dcmf_dc_del(s->dc);
  dcmf_sctp_del(s->sctp);
  dcmf_dtls_del(s->dtls);
  dcmf_dtls_ctx_free(&s->ctx);
  dcmf_cert_free(&s->cert);
  dcmf_httpdc_del(s->http);
  dcmf_buf_free(&s->received);
  for (size_t i = 0; i < s->nq; i++) {
    free(s->q[i]);
  }
}

static int teardown(void **state) {
  struct stack *st = *state;
  side_free(&st->client);
  side_free(&st->server);
  dcmf_repo_del(st->repo);
  free(st);
  return 0;
}

static struct dcmf_fingerprint_set fp(const struct side *s) {
  struct dcmf_fingerprint_set set;
  memset(&set, 0, sizeof(set));
  assert_int_equal(dcmf_fingerprint_parse(s->cert.fingerprint, &set), 0);
  return set;
}

static void connect_both(struct stack *st) {
  struct dcmf_fingerprint_set c = fp(&st->client), s = fp(&st->server);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(st->server.dtls, &c), 0);
  assert_int_equal(dcmf_dtls_set_remote_fingerprints(st->client.dtls, &s), 0);
  dcmf_dtls_start(st->client.dtls);
  pump(st);
  assert_int_equal(dcmf_dtls_state(st->client.dtls), DCMF_DTLS_CONNECTED);
  assert_int_equal(st->client.n_opened, 1);
  assert_int_equal(st->server.n_opened, 1);
}

static void test_http_get_over_the_whole_stack(void **state) {
  struct stack *st = *state;
  connect_both(st);
  static const char req[] = "GET / HTTP/1.1\r\nHost: \r\n\r\n";
  assert_int_equal(dcmf_dc_send(st->client.dc, 0, 0, (const uint8_t *)req,
                                sizeof(req) - 1),
                   0);
  pump(st);
  struct dcmf_buf *r = &st->client.received;
  assert_true(r->len > sizeof(st->page));
  assert_memory_equal(r->data, "HTTP/1.1 200 OK\r\n", 17);
  assert_non_null(strstr(r->data, "Content-Length: 5000\r\n"));
  char *body = strstr(r->data, "\r\n\r\n") + 4;
  assert_int_equal(r->len - (size_t)(body - r->data), sizeof(st->page));
  assert_memory_equal(body, st->page, sizeof(st->page));
}

static void test_dcep_channel_refused_across_dtls(void **state) {
  struct stack *st = *state;
  connect_both(st);
  assert_int_equal(dcmf_dc_open(st->client.dc, 2, "chat", "chat", NULL, 256),
                   0);
  pump(st);
  /* The server saw it open, refused it, and both sides closed it. */
  assert_int_equal(st->server.n_opened, 2);
  assert_int_equal(st->server.opened[1], 2);
  assert_null(dcmf_dc_find(st->server.dc, 2));
  assert_null(dcmf_dc_find(st->client.dc, 2));
  assert_int_equal(st->client.closed, 1);
  /* Channel 0 is untouched. */
  assert_non_null(dcmf_dc_find(st->client.dc, 0));
}

static int group_setup(void **state) {
  (void)state;
  return dcmf_sctp_stack_init();
}

static int group_teardown(void **state) {
  (void)state;
  for (int i = 0; i < 50 && dcmf_sctp_stack_finish() != 0; i++) {
    dcmf_sctp_stack_tick(100);
  }
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_http_get_over_the_whole_stack,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_dcep_channel_refused_across_dtls,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
