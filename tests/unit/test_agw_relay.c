/*
 * Unit tests for the AGW shim's relay engine (dcmf/proto/relay.h): the
 * latching rules of both modes, every drop reason, and that a forward
 * verdict hands back the caller's own bytes untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "errors.h"
#include "relay.h"

static struct sockaddr_storage v4(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
  return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
  return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static const uint8_t stun[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4,
                                 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static struct dcmf_relay_config config(enum dcmf_relay_latching latching,
                                       const struct sockaddr_storage *access,
                                       const struct sockaddr_storage *core) {
  struct dcmf_relay_config c;
  memset(&c, 0, sizeof(c));
  c.latching = latching;
  if (access != NULL) {
    c.has_access_remote = 1;
    c.access_remote = *access;
  }
  if (core != NULL) {
    c.has_core_remote = 1;
    c.core_remote = *core;
  }
  return c;
}

/* Feeds one datagram and returns the verdict's return value. */
static int feed(struct dcmf_relay *r, enum dcmf_relay_side side,
                struct sockaddr_storage from, struct dcmf_relay_verdict *v) {
  return dcmf_relay_recv(r, side, SA(from), stun, sizeof(stun), v);
}

static void test_first_packet_latches_and_forwards(void **state) {
  (void)state;
  struct sockaddr_storage phone = v4("198.51.100.7", 40000);
  struct sockaddr_storage dcmf = v4("127.0.0.1", 50000);
  struct dcmf_relay_config c =
      config(DCMF_RELAY_LATCH_FIRST_PACKET, NULL, &dcmf);
  struct dcmf_relay r;
  assert_int_equal(dcmf_relay_init(&r, &c), 0);
  assert_null(dcmf_relay_peer(&r));

  struct dcmf_relay_verdict v;
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, phone, &v), 1);
  assert_true(v.forward);
  assert_true(v.latched_now);
  assert_int_equal(v.out, DCMF_RELAY_CORE);
  assert_true(dcmf_relay_addr_equal(v.to, SA(dcmf)));
  assert_ptr_equal(v.data, stun); /* the caller's bytes, not a copy */
  assert_int_equal(v.len, sizeof(stun));
  assert_true(dcmf_relay_addr_equal(dcmf_relay_peer(&r), SA(phone)));

  /* The core answers; it goes to the latched phone. */
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, dcmf, &v), 1);
  assert_int_equal(v.out, DCMF_RELAY_ACCESS);
  assert_false(v.latched_now);
  assert_true(dcmf_relay_addr_equal(v.to, SA(phone)));

  /* A second source on the access side does not move the latch. */
  struct sockaddr_storage other = v4("198.51.100.7", 40001);
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, other, &v), 0);
  assert_int_equal(v.reason, DCMF_RELAY_DROP_UNKNOWN_SOURCE);
  assert_true(dcmf_relay_addr_equal(dcmf_relay_peer(&r), SA(phone)));
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, dcmf, &v), 1);
  assert_true(dcmf_relay_addr_equal(v.to, SA(phone)));

  const struct dcmf_relay_counters *k = &r.counters;
  assert_int_equal(k->packets[DCMF_RELAY_ACCESS], 1);
  assert_int_equal(k->packets[DCMF_RELAY_CORE], 2);
  assert_int_equal(k->bytes[DCMF_RELAY_ACCESS], sizeof(stun));
  assert_int_equal(k->bytes[DCMF_RELAY_CORE], 2 * sizeof(stun));
  assert_int_equal(
      k->dropped[DCMF_RELAY_ACCESS][DCMF_RELAY_DROP_UNKNOWN_SOURCE], 1);
  assert_int_equal(k->latches, 1);
}

static void test_core_rules(void **state) {
  (void)state;
  struct sockaddr_storage phone = v4("10.0.0.2", 1234);
  struct sockaddr_storage dcmf = v4("127.0.0.1", 50000);
  struct sockaddr_storage stranger = v4("127.0.0.1", 50001);
  struct dcmf_relay_config c =
      config(DCMF_RELAY_LATCH_FIRST_PACKET, NULL, &dcmf);
  struct dcmf_relay r;
  assert_int_equal(dcmf_relay_init(&r, &c), 0);
  struct dcmf_relay_verdict v;
  /* Before the latch nothing goes toward the phone. */
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, dcmf, &v), 0);
  assert_int_equal(v.reason, DCMF_RELAY_DROP_NOT_LATCHED);
  /* The core side takes nothing but the core remote, latch or not. */
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, stranger, &v), 0);
  assert_int_equal(v.reason, DCMF_RELAY_DROP_UNKNOWN_SOURCE);
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, phone, &v), 1);
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, stranger, &v), 0);
  assert_int_equal(v.reason, DCMF_RELAY_DROP_UNKNOWN_SOURCE);
  /* A packet from the phone's address arriving on the core port is no
   * phone packet either. */
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, phone, &v), 0);
  assert_int_equal(v.reason, DCMF_RELAY_DROP_UNKNOWN_SOURCE);
  const struct dcmf_relay_counters *k = &r.counters;
  assert_int_equal(k->dropped[DCMF_RELAY_CORE][DCMF_RELAY_DROP_NOT_LATCHED],
                   1);
  assert_int_equal(
      k->dropped[DCMF_RELAY_CORE][DCMF_RELAY_DROP_UNKNOWN_SOURCE], 3);
  assert_int_equal(k->packets[DCMF_RELAY_CORE], 0);
}

static void test_no_core_remote(void **state) {
  (void)state;
  struct sockaddr_storage phone = v4("10.0.0.2", 1234);
  struct sockaddr_storage dcmf = v4("127.0.0.1", 50000);
  struct dcmf_relay_config c = config(DCMF_RELAY_LATCH_FIRST_PACKET, NULL,
                                      NULL);
  struct dcmf_relay r;
  assert_int_equal(dcmf_relay_init(&r, &c), 0);
  struct dcmf_relay_verdict v;
  /* The phone latches but has nowhere to go yet. */
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, phone, &v), 0);
  assert_int_equal(v.reason, DCMF_RELAY_DROP_NO_REMOTE);
  assert_true(v.latched_now);
  assert_non_null(dcmf_relay_peer(&r));
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, dcmf, &v), 0);
  assert_int_equal(v.reason, DCMF_RELAY_DROP_UNKNOWN_SOURCE);
  /* The controller signals the core side later: the latch stays. */
  c = config(DCMF_RELAY_LATCH_FIRST_PACKET, NULL, &dcmf);
  assert_int_equal(dcmf_relay_set_config(&r, &c), 0);
  assert_true(dcmf_relay_addr_equal(dcmf_relay_peer(&r), SA(phone)));
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, dcmf, &v), 1);
  assert_true(dcmf_relay_addr_equal(v.to, SA(phone)));
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, phone, &v), 1);
  assert_true(dcmf_relay_addr_equal(v.to, SA(dcmf)));
}

static void test_signalled_only(void **state) {
  (void)state;
  struct sockaddr_storage phone = v4("192.0.2.10", 5004);
  struct sockaddr_storage attacker = v4("192.0.2.66", 5004);
  struct sockaddr_storage same_ip = v4("192.0.2.10", 5005);
  struct sockaddr_storage dcmf = v4("127.0.0.1", 50000);
  struct dcmf_relay_config c =
      config(DCMF_RELAY_LATCH_SIGNALLED_ONLY, &phone, &dcmf);
  struct dcmf_relay r;
  assert_int_equal(dcmf_relay_init(&r, &c), 0);
  struct dcmf_relay_verdict v;
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, attacker, &v), 0);
  assert_int_equal(v.reason, DCMF_RELAY_DROP_UNKNOWN_SOURCE);
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, same_ip, &v), 0);
  assert_null(dcmf_relay_peer(&r));
  /* Core traffic still waits for the phone. */
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, dcmf, &v), 0);
  assert_int_equal(v.reason, DCMF_RELAY_DROP_NOT_LATCHED);
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, phone, &v), 1);
  assert_true(v.latched_now);
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, attacker, &v), 0);
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, dcmf, &v), 1);
  assert_true(dcmf_relay_addr_equal(v.to, SA(phone)));
  assert_int_equal(r.counters.latches, 1);
  assert_int_equal(
      r.counters.dropped[DCMF_RELAY_ACCESS][DCMF_RELAY_DROP_UNKNOWN_SOURCE],
      3);
}

static void test_config_changes_and_latch(void **state) {
  (void)state;
  struct sockaddr_storage phone = v4("192.0.2.10", 5004);
  struct sockaddr_storage moved = v4("192.0.2.11", 6000);
  struct sockaddr_storage dcmf = v4("127.0.0.1", 50000);
  struct sockaddr_storage dcmf2 = v4("127.0.0.1", 50002);
  struct dcmf_relay_config c =
      config(DCMF_RELAY_LATCH_FIRST_PACKET, &phone, &dcmf);
  struct dcmf_relay r;
  struct dcmf_relay_verdict v;
  assert_int_equal(dcmf_relay_init(&r, &c), 0);
  /* first-packet ignores the signalled address when latching. */
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, moved, &v), 1);
  assert_true(dcmf_relay_addr_equal(dcmf_relay_peer(&r), SA(moved)));
  /* Changing only the core side keeps the latch. */
  c = config(DCMF_RELAY_LATCH_FIRST_PACKET, &phone, &dcmf2);
  assert_int_equal(dcmf_relay_set_config(&r, &c), 0);
  assert_non_null(dcmf_relay_peer(&r));
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, dcmf, &v), 0); /* old core */
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, dcmf2, &v), 1);
  /* Same access config again: still latched. */
  assert_int_equal(dcmf_relay_set_config(&r, &c), 0);
  assert_non_null(dcmf_relay_peer(&r));
  /* Another signalled access address clears it... */
  c = config(DCMF_RELAY_LATCH_FIRST_PACKET, &moved, &dcmf2);
  assert_int_equal(dcmf_relay_set_config(&r, &c), 0);
  assert_null(dcmf_relay_peer(&r));
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, phone, &v), 1);
  assert_true(dcmf_relay_addr_equal(dcmf_relay_peer(&r), SA(phone)));
  /* ...and so does another latching mode. */
  c = config(DCMF_RELAY_LATCH_SIGNALLED_ONLY, &moved, &dcmf2);
  assert_int_equal(dcmf_relay_set_config(&r, &c), 0);
  assert_null(dcmf_relay_peer(&r));
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, phone, &v), 0);
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, moved, &v), 1);
  assert_int_equal(r.counters.latches, 3);
  /* An invalid config leaves everything as it was. */
  struct dcmf_relay_config bad =
      config(DCMF_RELAY_LATCH_SIGNALLED_ONLY, NULL, &dcmf);
  assert_int_equal(dcmf_relay_set_config(&r, &bad), DCMF_ERR_INVALID);
  assert_true(dcmf_relay_addr_equal(dcmf_relay_peer(&r), SA(moved)));
}

static void test_config_check(void **state) {
  (void)state;
  struct sockaddr_storage ok = v4("192.0.2.1", 1);
  struct sockaddr_storage port0 = v4("192.0.2.1", 0);
  struct sockaddr_storage unix_family;
  memset(&unix_family, 0, sizeof(unix_family));
  unix_family.ss_family = AF_UNIX;
  struct dcmf_relay_config c = config(DCMF_RELAY_LATCH_FIRST_PACKET, NULL,
                                      NULL);
  assert_int_equal(dcmf_relay_config_check(&c), 0);
  c = config(DCMF_RELAY_LATCH_SIGNALLED_ONLY, NULL, &ok);
  assert_int_equal(dcmf_relay_config_check(&c), DCMF_ERR_INVALID);
  c = config(DCMF_RELAY_LATCH_FIRST_PACKET, &port0, NULL);
  assert_int_equal(dcmf_relay_config_check(&c), DCMF_ERR_INVALID);
  c = config(DCMF_RELAY_LATCH_FIRST_PACKET, NULL, &unix_family);
  assert_int_equal(dcmf_relay_config_check(&c), DCMF_ERR_INVALID);
  c = config((enum dcmf_relay_latching)7, NULL, NULL);
  assert_int_equal(dcmf_relay_config_check(&c), DCMF_ERR_INVALID);
  struct dcmf_relay r;
  memset(&r, 0xAB, sizeof(r));
  assert_int_equal(dcmf_relay_init(&r, &c), DCMF_ERR_INVALID);
}

static void test_bad_input_counts_nothing(void **state) {
  (void)state;
  struct dcmf_relay_config c = config(DCMF_RELAY_LATCH_FIRST_PACKET, NULL,
                                      NULL);
  struct dcmf_relay r;
  assert_int_equal(dcmf_relay_init(&r, &c), 0);
  struct dcmf_relay_verdict v;
  struct sockaddr_storage phone = v4("192.0.2.1", 9);
  struct sockaddr_storage unix_family;
  memset(&unix_family, 0, sizeof(unix_family));
  unix_family.ss_family = AF_UNIX;
  assert_int_equal(dcmf_relay_recv(&r, DCMF_RELAY_ACCESS, NULL, stun, 1, &v),
                   DCMF_ERR_INVALID);
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, unix_family, &v),
                   DCMF_ERR_INVALID);
  assert_int_equal(feed(&r, (enum dcmf_relay_side)2, phone, &v),
                   DCMF_ERR_INVALID);
  assert_false(v.forward);
  struct dcmf_relay_counters zero;
  memset(&zero, 0, sizeof(zero));
  assert_memory_equal(&r.counters, &zero, sizeof(zero));
  assert_null(dcmf_relay_peer(&r));
}

static void test_ipv6_and_mapped(void **state) {
  (void)state;
  struct sockaddr_storage phone6 = v6("2001:db8::7", 5004);
  struct sockaddr_storage core4 = v4("127.0.0.1", 50000);
  struct sockaddr_storage core4_mapped = v6("::ffff:127.0.0.1", 50000);
  struct sockaddr_storage core4_other = v6("::ffff:127.0.0.1", 50001);
  assert_true(dcmf_relay_addr_equal(SA(core4), SA(core4_mapped)));
  assert_true(dcmf_relay_addr_equal(SA(core4_mapped), SA(core4)));
  assert_false(dcmf_relay_addr_equal(SA(core4), SA(core4_other)));
  assert_false(dcmf_relay_addr_equal(SA(core4), NULL));
  struct dcmf_relay_config c =
      config(DCMF_RELAY_LATCH_SIGNALLED_ONLY, &phone6, &core4);
  struct dcmf_relay r;
  assert_int_equal(dcmf_relay_init(&r, &c), 0);
  struct dcmf_relay_verdict v;
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, phone6, &v), 1);
  assert_true(dcmf_relay_addr_equal(v.to, SA(core4)));
  /* A dual-stack socket reports the core as IPv4-mapped: same source. */
  assert_int_equal(feed(&r, DCMF_RELAY_CORE, core4_mapped, &v), 1);
  assert_true(dcmf_relay_addr_equal(v.to, SA(phone6)));
  assert_int_equal(v.to->sa_family, AF_INET6);
}

static void test_send_failed_and_empty(void **state) {
  (void)state;
  struct sockaddr_storage phone = v4("192.0.2.1", 9);
  struct sockaddr_storage core = v4("192.0.2.2", 9);
  struct dcmf_relay_config c = config(DCMF_RELAY_LATCH_FIRST_PACKET, NULL,
                                      &core);
  struct dcmf_relay r;
  assert_int_equal(dcmf_relay_init(&r, &c), 0);
  struct dcmf_relay_verdict v;
  /* An empty datagram is a datagram: it is relayed as one. */
  assert_int_equal(dcmf_relay_recv(&r, DCMF_RELAY_ACCESS, SA(phone), stun, 0,
                                   &v),
                   1);
  assert_int_equal(v.len, 0);
  assert_int_equal(feed(&r, DCMF_RELAY_ACCESS, phone, &v), 1);
  dcmf_relay_send_failed(&r, DCMF_RELAY_ACCESS, v.len);
  dcmf_relay_send_failed(&r, (enum dcmf_relay_side)5, 1); /* ignored */
  assert_int_equal(r.counters.packets[DCMF_RELAY_ACCESS], 1);
  assert_int_equal(r.counters.bytes[DCMF_RELAY_ACCESS], 0);
  assert_int_equal(
      r.counters.dropped[DCMF_RELAY_ACCESS][DCMF_RELAY_DROP_SEND_FAILED], 1);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(dcmf_relay_side_name(DCMF_RELAY_ACCESS), "access");
  assert_string_equal(dcmf_relay_side_name(DCMF_RELAY_CORE), "core");
  assert_string_equal(
      dcmf_relay_latching_name(DCMF_RELAY_LATCH_SIGNALLED_ONLY),
      "signalled-only");
  assert_string_equal(dcmf_relay_latching_name(DCMF_RELAY_LATCH_FIRST_PACKET),
                      "first-packet");
  assert_string_equal(dcmf_relay_drop_name(DCMF_RELAY_DROP_UNKNOWN_SOURCE),
                      "unknown_source");
  assert_string_equal(dcmf_relay_drop_name(DCMF_RELAY_DROP_NOT_LATCHED),
                      "not_latched");
  assert_string_equal(dcmf_relay_drop_name(DCMF_RELAY_DROP_NO_REMOTE),
                      "no_remote");
  assert_string_equal(dcmf_relay_drop_name(DCMF_RELAY_DROP_SEND_FAILED),
                      "send_failed");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_packet_latches_and_forwards),
      cmocka_unit_test(test_core_rules),
      cmocka_unit_test(test_no_core_remote),
      cmocka_unit_test(test_signalled_only),
      cmocka_unit_test(test_config_changes_and_latch),
      cmocka_unit_test(test_config_check),
      cmocka_unit_test(test_bad_input_counts_nothing),
      cmocka_unit_test(test_ipv6_and_mapped),
      cmocka_unit_test(test_send_failed_and_empty),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
