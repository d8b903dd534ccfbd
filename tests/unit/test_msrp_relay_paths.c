/*
 * The MSRP relay's path change (dcmf_msrp_relay_set_peer_path): a
 * re-offer may give the far end of either leg a new path (RFC 8873
 * §4.4), and an aware relay then names it in what it relays toward
 * that leg. A SEND being split while it streams keeps the path it
 * started with. The chunks are typed from RFC 4975 §7.1 here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "msrp_relay.h"

#define WIC "msrps://wic.example.com:9/wicsess;dc"
#define WIC2 "msrps://wic.example.com:9/reoffered;dc"
#define CORE "msrp://core.example.com:7777/coresess;tcp"
#define CORE2 "msrp://core2.example.com:7777/moved;tcp"
#define MF_DC "msrps://mf.example.net:5000/mfdc1;dc"
#define MF_TCP "msrp://mf.example.net:6000/mftcp1;tcp"
#define MMS 4096

static void counting_fill(void *user, uint8_t *buf, size_t len) {
  unsigned *n = user;
  for (size_t i = 0; i < len; i++) {
    buf[i] = (uint8_t)('a' + (*n)++ % 26);
  }
}

static unsigned fill_state;

static void relay_new(struct dcmf_msrp_relay *r, int aware) {
  struct dcmf_msrp_relay_settings s;
  memset(&s, 0, sizeof(s));
  s.mode = aware ? DCMF_MSRP_RELAY_AWARE : DCMF_MSRP_RELAY_AGNOSTIC;
  s.max_message_size = MMS;
  s.max_header = 2048;
  s.rng.fill = counting_fill;
  s.rng.user = &fill_state;
  if (aware) {
    s.dc_own_uri = MF_DC;
    s.tcp_own_uri = MF_TCP;
    s.dc_peer_path = WIC;
    s.tcp_peer_path = CORE;
  }
  assert_int_equal(dcmf_msrp_relay_init(r, &s), 0);
}

/* A SEND of |body_len| bytes of 'x' (Byte-Range 1-n/n). */
static size_t send_chunk(char *out, size_t cap, const char *tid,
                         const char *to, const char *from, size_t body_len) {
  int n = snprintf(out, cap,
                   "MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\n"
                   "Message-ID: m%s\r\nByte-Range: 1-%zu/%zu\r\n"
                   "Content-Type: text/plain\r\n\r\n",
                   tid, to, from, tid, body_len, body_len);
  assert_true(n > 0 && (size_t)n + body_len + 64 < cap);
  memset(out + n, 'x', body_len);
  n += (int)body_len;
  n += snprintf(out + n, cap - (size_t)n, "\r\n-------%s$\r\n", tid);
  return (size_t)n;
}

/* The To-Path of every message queued for the data channel, popped,
 * each appended to |to_paths| (one per line). Returns the count. */
static size_t pop_to_paths(struct dcmf_msrp_relay *r, char *to_paths,
                           size_t cap) {
  size_t n = 0, len;
  const uint8_t *m;
  to_paths[0] = '\0';
  while ((m = dcmf_msrp_relay_peek_message(r, &len)) != NULL) {
    const char *at = memmem(m, len, "To-Path: ", 9);
    assert_non_null(at);
    const char *end = memmem(at, len - (size_t)(at - (const char *)m), "\r\n", 2);
    assert_non_null(end);
    size_t used = strlen(to_paths);
    snprintf(to_paths + used, cap - used, "%.*s\n", (int)(end - at - 9),
             at + 9);
    n++;
    assert_int_equal(dcmf_msrp_relay_pop_message(r, 0), 0);
  }
  return n;
}

/* What the relay wrote toward TCP, as a string. */
static void take_stream(struct dcmf_msrp_relay *r, char *out, size_t cap) {
  size_t got = 0, len;
  const uint8_t *p;
  while ((p = dcmf_msrp_relay_peek_stream(r, &len)) != NULL) {
    assert_true(got + len < cap);
    memcpy(out + got, p, len);
    got += len;
    assert_int_equal(dcmf_msrp_relay_consume_stream(r, len, 0), 0);
  }
  out[got] = '\0';
}

static void new_core_path_names_it_toward_tcp(void **state) {
  (void)state;
  struct dcmf_msrp_relay r;
  relay_new(&r, 1);
  char msg[1024], out[4096];
  size_t n = send_chunk(msg, sizeof(msg), "tid0001", MF_DC, WIC, 5);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, (uint8_t *)msg, n, 0),
                   DCMF_MSRP_RELAY_FORWARDED);
  take_stream(&r, out, sizeof(out));
  assert_non_null(strstr(out, "To-Path: " CORE "\r\n"));

  assert_int_equal(
      dcmf_msrp_relay_set_peer_path(&r, DCMF_MSRP_RELAY_FROM_STREAM, CORE2), 0);
  n = send_chunk(msg, sizeof(msg), "tid0002", MF_DC, WIC, 5);
  assert_int_equal(dcmf_msrp_relay_recv_message(&r, (uint8_t *)msg, n, 0),
                   DCMF_MSRP_RELAY_FORWARDED);
  take_stream(&r, out, sizeof(out));
  assert_non_null(strstr(out, "To-Path: " CORE2 "\r\n"));
  assert_null(strstr(out, CORE "\r\n"));
  /* The MF's own URI on the data channel is what the WIC still names. */
  assert_non_null(strstr(out, "From-Path: " MF_TCP "\r\n"));
  dcmf_msrp_relay_free(&r);
}

static void new_wic_path_names_it_toward_the_channel(void **state) {
  (void)state;
  struct dcmf_msrp_relay r;
  relay_new(&r, 1);
  char msg[1024], paths[512];
  assert_int_equal(
      dcmf_msrp_relay_set_peer_path(&r, DCMF_MSRP_RELAY_FROM_MESSAGES, WIC2),
      0);
  size_t n = send_chunk(msg, sizeof(msg), "cor0001", MF_TCP, CORE, 5);
  assert_int_equal(dcmf_msrp_relay_recv_stream(&r, (uint8_t *)msg, n, 0),
                   (int)n);
  assert_int_equal(pop_to_paths(&r, paths, sizeof(paths)), 1);
  assert_string_equal(paths, WIC2 "\n");
  dcmf_msrp_relay_free(&r);
}

/* A SEND over the channel's max-message-size streams in pieces: a path
 * change in the middle applies from the next SEND on. */
static void split_in_progress_keeps_its_path(void **state) {
  (void)state;
  struct dcmf_msrp_relay r;
  relay_new(&r, 1);
  static char big[64 * 1024], small[1024];
  char paths[4096];
  size_t n = send_chunk(big, sizeof(big), "big0001", MF_TCP, CORE, 40000);
  size_t half = n / 2;
  assert_int_equal(dcmf_msrp_relay_recv_stream(&r, (uint8_t *)big, half, 0),
                   (int)half);
  size_t first = pop_to_paths(&r, paths, sizeof(paths));
  assert_true(first >= 1); /* pieces already went while it streams */

  assert_int_equal(
      dcmf_msrp_relay_set_peer_path(&r, DCMF_MSRP_RELAY_FROM_MESSAGES, WIC2),
      0);
  assert_int_equal(dcmf_msrp_relay_recv_stream(&r, (uint8_t *)big + half,
                                               n - half, 0),
                   (int)(n - half));
  size_t rest = pop_to_paths(&r, paths, sizeof(paths));
  assert_true(rest >= 1);
  for (char *line = paths; *line != '\0'; line = strchr(line, '\n') + 1) {
    assert_int_equal(strncmp(line, WIC "\n", strlen(WIC) + 1), 0);
  }
  size_t m = send_chunk(small, sizeof(small), "sml0002", MF_TCP, CORE, 5);
  assert_int_equal(dcmf_msrp_relay_recv_stream(&r, (uint8_t *)small, m, 0),
                   (int)m);
  assert_int_equal(pop_to_paths(&r, paths, sizeof(paths)), 1);
  assert_string_equal(paths, WIC2 "\n");
  dcmf_msrp_relay_free(&r);
}

static void refused_when_agnostic_or_malformed(void **state) {
  (void)state;
  struct dcmf_msrp_relay r;
  relay_new(&r, 0);
  assert_int_equal(
      dcmf_msrp_relay_set_peer_path(&r, DCMF_MSRP_RELAY_FROM_STREAM, CORE2),
      DCMF_ERR_INVALID);
  dcmf_msrp_relay_free(&r);
  relay_new(&r, 1);
  assert_int_equal(dcmf_msrp_relay_set_peer_path(
                       &r, DCMF_MSRP_RELAY_FROM_STREAM, "not a uri"),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_msrp_relay_set_peer_path(&r, 7, CORE2),
                   DCMF_ERR_INVALID);
  /* Two changes while a split streams: the last one wins, no leak. */
  static char big[64 * 1024];
  size_t n = send_chunk(big, sizeof(big), "big0002", MF_TCP, CORE, 40000);
  assert_int_equal(dcmf_msrp_relay_recv_stream(&r, (uint8_t *)big, n / 2, 0),
                   (int)(n / 2));
  assert_int_equal(
      dcmf_msrp_relay_set_peer_path(&r, DCMF_MSRP_RELAY_FROM_MESSAGES, WIC2),
      0);
  assert_int_equal(
      dcmf_msrp_relay_set_peer_path(&r, DCMF_MSRP_RELAY_FROM_MESSAGES, WIC),
      0);
  dcmf_msrp_relay_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(new_core_path_names_it_toward_tcp),
      cmocka_unit_test(new_wic_path_names_it_toward_the_channel),
      cmocka_unit_test(split_in_progress_keeps_its_path),
      cmocka_unit_test(refused_when_agnostic_or_malformed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
