/*
 * test_ratelimit.c - the per-address token buckets with a fake clock:
 * burst then refill, ports of one host share a bucket, IPv6 /64 and
 * IPv4-mapped keys, bounded memory with eviction, and rate 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "errors.h"
#include "ratelimit.h"

static struct sockaddr_storage addr(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (strchr(ip, ':') != NULL) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
  }
  return ss;
}

static int allow(struct dcmf_ratelimit *rl, const char *ip, uint16_t port,
                 uint64_t now) {
  struct sockaddr_storage ss = addr(ip, port);
  return dcmf_ratelimit_allow(rl, (const struct sockaddr *)&ss, now);
}

/* Counts how many of |n| packets from |ip| pass at time |now|. */
static int passes(struct dcmf_ratelimit *rl, const char *ip, int n,
                  uint64_t now) {
  int ok = 0;
  for (int i = 0; i < n; i++) {
    ok += allow(rl, ip, (uint16_t)(1024 + i), now);
  }
  return ok;
}

static void test_burst_then_refill(void **state) {
  (void)state;
  struct dcmf_ratelimit *rl;
  struct dcmf_ratelimit_settings s = {.rate = 10, .burst = 20};
  assert_int_equal(dcmf_ratelimit_new(&rl, &s), 0);
  uint64_t t = 5000;
  /* A full bucket lets the burst through, then nothing. */
  assert_int_equal(passes(rl, "198.51.100.1", 30, t), 20);
  assert_int_equal(dcmf_ratelimit_counters(rl)->limited, 10);
  /* 10 per second: after 100 ms exactly one more. */
  assert_int_equal(passes(rl, "198.51.100.1", 5, t + 99), 0);
  assert_int_equal(passes(rl, "198.51.100.1", 5, t + 100), 1);
  /* After 1 s, ten more (the bucket had 0.9 of a token left over). */
  assert_int_equal(passes(rl, "198.51.100.1", 50, t + 1100), 10);
  /* A long silence fills the bucket to the burst, not beyond. */
  assert_int_equal(passes(rl, "198.51.100.1", 50, t + 1000000000), 20);
  /* Time that does not advance adds nothing. */
  assert_int_equal(passes(rl, "198.51.100.1", 5, t + 1000000000), 0);
  dcmf_ratelimit_del(rl);
}

static void test_sources_are_separate(void **state) {
  (void)state;
  struct dcmf_ratelimit *rl;
  struct dcmf_ratelimit_settings s = {.rate = 5};
  assert_int_equal(dcmf_ratelimit_new(&rl, &s), 0);
  /* burst 0 means one second's worth. */
  assert_int_equal(passes(rl, "192.0.2.1", 100, 1), 5);
  /* Another host is not affected by the first one's flood. */
  assert_int_equal(passes(rl, "192.0.2.2", 3, 1), 3);
  /* Many ports of one host share its bucket. */
  assert_int_equal(allow(rl, "192.0.2.1", 60000, 1), 0);
  dcmf_ratelimit_del(rl);
}

static void test_address_keys(void **state) {
  (void)state;
  struct dcmf_ratelimit *rl;
  struct dcmf_ratelimit_settings s = {.rate = 1, .burst = 2};
  assert_int_equal(dcmf_ratelimit_new(&rl, &s), 0);
  /* An IPv4-mapped IPv6 source is the same host as its IPv4 address. */
  assert_int_equal(allow(rl, "203.0.113.9", 1, 0), 1);
  assert_int_equal(allow(rl, "::ffff:203.0.113.9", 2, 0), 1);
  assert_int_equal(allow(rl, "203.0.113.9", 3, 0), 0);
  /* IPv6 addresses of one /64 share a bucket; another /64 does not. */
  assert_int_equal(allow(rl, "2001:db8:1:2::1", 1, 0), 1);
  assert_int_equal(allow(rl, "2001:db8:1:2:ffff::7", 1, 0), 1);
  assert_int_equal(allow(rl, "2001:db8:1:2:abcd::1", 1, 0), 0);
  assert_int_equal(allow(rl, "2001:db8:1:3::1", 1, 0), 1);
  /* Not an IP address: refused as invalid. */
  struct sockaddr bad = {.sa_family = AF_UNIX};
  assert_int_equal(dcmf_ratelimit_allow(rl, &bad, 0), DCMF_ERR_INVALID);
  assert_int_equal(dcmf_ratelimit_allow(rl, NULL, 0), DCMF_ERR_INVALID);
  dcmf_ratelimit_del(rl);
}

/* A flood from more addresses than the table holds evicts old buckets
 * instead of growing; the table keeps working for new and old sources. */
static void test_bounded_table(void **state) {
  (void)state;
  struct dcmf_ratelimit *rl;
  struct dcmf_ratelimit_settings s = {
      .rate = 1, .burst = 1, .slots = 64, .seed = 7};
  assert_int_equal(dcmf_ratelimit_new(&rl, &s), 0);
  char ip[32];
  /* All within 0.3 s, so no bucket could refill a whole token. */
  uint64_t t = 10;
  for (int i = 0; i < 4096; i++) {
    snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
    t = 10 + (uint64_t)i / 16;
    assert_int_equal(allow(rl, ip, 1, t), 1); /* each is new: full */
  }
  const struct dcmf_ratelimit_counters *c = dcmf_ratelimit_counters(rl);
  assert_true(c->evicted >= 4096 - 64);
  assert_int_equal(c->allowed, 4096);
  /* The most recent source is still tracked (its bucket is empty). */
  assert_int_equal(allow(rl, ip, 2, t), 0);
  /* The least recently seen ones were evicted and start full again. */
  assert_int_equal(allow(rl, "10.0.0.1", 2, t), 1);
  dcmf_ratelimit_del(rl);
}

static void test_rate_zero_is_unlimited(void **state) {
  (void)state;
  struct dcmf_ratelimit *rl;
  struct dcmf_ratelimit_settings s = {0};
  assert_int_equal(dcmf_ratelimit_new(&rl, &s), 0);
  assert_int_equal(passes(rl, "192.0.2.1", 1000, 0), 1000);
  assert_int_equal(dcmf_ratelimit_counters(rl)->limited, 0);
  dcmf_ratelimit_del(rl);
  dcmf_ratelimit_del(NULL);
}

/* Large settings must not overflow the refill arithmetic. */
static void test_large_values(void **state) {
  (void)state;
  struct dcmf_ratelimit *rl;
  struct dcmf_ratelimit_settings s = {.rate = UINT32_MAX, .burst = UINT32_MAX};
  assert_int_equal(dcmf_ratelimit_new(&rl, &s), 0);
  assert_int_equal(passes(rl, "192.0.2.1", 10, 0), 10);
  assert_int_equal(passes(rl, "192.0.2.1", 10, UINT64_MAX / 2), 10);
  assert_int_equal(passes(rl, "192.0.2.1", 10, UINT64_MAX), 10);
  dcmf_ratelimit_del(rl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_then_refill),
      cmocka_unit_test(test_sources_are_separate),
      cmocka_unit_test(test_address_keys),
      cmocka_unit_test(test_bounded_table),
      cmocka_unit_test(test_rate_zero_is_unlimited),
      cmocka_unit_test(test_large_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
