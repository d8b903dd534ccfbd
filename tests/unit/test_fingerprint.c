/*
 * test_fingerprint.c - unit tests for fingerprint parsing and formatting,
 * tls-id and ICE credential checks and token generation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "fingerprint.h"

#define SHA256_UPPER                                                           \
  "D1:2F:0A:9B:33:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:"                           \
  "F7:08:19:2A:3B:4C:5D:6E:7F:8A:9B:AC:BD:CE:DF:E0"
#define SHA256_LOWER                                                           \
  "d1:2f:0a:9b:33:4c:5d:6e:7f:80:91:a2:b3:c4:d5:e6:"                           \
  "f7:08:19:2a:3b:4c:5d:6e:7f:8a:9b:ac:bd:ce:df:e0"
#define SHA1_HEX "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:02:03:04"

/* Writes |n| bytes of |byte| as colon-joined hex into |out|. */
static void hex_run(char *out, size_t n, unsigned byte) {
  char *w = out;
  *w = '\0';
  for (size_t i = 0; i < n; i++)
    w += sprintf(w, i == 0 ? "%02X" : ":%02X", byte);
}

static void test_parse_cases(void **state) {
  (void)state;
  static const char *const inputs[] = {
      "sha-256 " SHA256_LOWER,
      "SHA-256 " SHA256_UPPER,
      "Sha-256 " SHA256_LOWER,
      "  \tsHA-256   " SHA256_UPPER "  \r\n",
  };
  static const uint8_t want[32] = {
      0xd1, 0x2f, 0x0a, 0x9b, 0x33, 0x4c, 0x5d, 0x6e, 0x7f, 0x80, 0x91,
      0xa2, 0xb3, 0xc4, 0xd5, 0xe6, 0xf7, 0x08, 0x19, 0x2a, 0x3b, 0x4c,
      0x5d, 0x6e, 0x7f, 0x8a, 0x9b, 0xac, 0xbd, 0xce, 0xdf, 0xe0};
  for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
    struct dcmf_fingerprint_set set;
    memset(&set, 0, sizeof(set));
    assert_int_equal(dcmf_fingerprint_parse(inputs[i], &set), 0);
    assert_int_equal(set.count, 1);
    assert_int_equal(set.items[0].hash, DCMF_HASH_SHA256);
    assert_int_equal(set.items[0].len, 32);
    assert_memory_equal(set.items[0].value, want, 32);
  }
}

static void test_every_hash(void **state) {
  (void)state;
  static const struct {
    const char *name;
    enum dcmf_hash hash;
    size_t size;
    const char *upper;
  } hashes[] = {
      {"sha-1", DCMF_HASH_SHA1, 20, "SHA-1"},
      {"sha-224", DCMF_HASH_SHA224, 28, "SHA-224"},
      {"sha-256", DCMF_HASH_SHA256, 32, "SHA-256"},
      {"sha-384", DCMF_HASH_SHA384, 48, "SHA-384"},
      {"sha-512", DCMF_HASH_SHA512, 64, "SHA-512"},
      {"md5", DCMF_HASH_MD5, 16, "MD5"},
      {"MD2", DCMF_HASH_MD2, 16, "MD2"},
  };
  char text[256];
  for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
    struct dcmf_fingerprint_set set;
    memset(&set, 0, sizeof(set));
    assert_string_equal(dcmf_hash_name(hashes[i].hash), hashes[i].upper);
    assert_int_equal(dcmf_hash_size(hashes[i].hash), hashes[i].size);
    int n = snprintf(text, sizeof(text), "%s ", hashes[i].name);
    hex_run(text + n, hashes[i].size, 0xa5);
    assert_int_equal(dcmf_fingerprint_parse(text, &set), 0);
    assert_int_equal(set.items[0].hash, hashes[i].hash);
    assert_int_equal(set.items[0].len, hashes[i].size);
    assert_int_equal(set.items[0].value[hashes[i].size - 1], 0xa5);

    /* One byte short and one byte long are both the wrong length. */
    memset(&set, 0, sizeof(set));
    hex_run(text + n, hashes[i].size - 1, 0xa5);
    assert_int_equal(dcmf_fingerprint_parse(text, &set), DCMF_ERR_MALFORMED);
    hex_run(text + n, hashes[i].size + 1, 0xa5);
    assert_int_equal(dcmf_fingerprint_parse(text, &set), DCMF_ERR_MALFORMED);
    assert_int_equal(set.count, 0);
  }
  assert_string_equal(dcmf_hash_name((enum dcmf_hash)99), "UNKNOWN");
  assert_int_equal(dcmf_hash_size((enum dcmf_hash)99), 0);
}

static void test_several(void **state) {
  (void)state;
  struct dcmf_fingerprint_set set;
  memset(&set, 0, sizeof(set));
  assert_int_equal(dcmf_fingerprint_parse("sha-1 " SHA1_HEX
                                          " ,sha-256 " SHA256_LOWER
                                          ";SHA-1\t" SHA1_HEX " ; md5 "
                                          "00:00:00:00:00:00:00:00:00:00:00:"
                                          "00:00:00:00:01",
                                          &set),
                   0);
  assert_int_equal(set.count, 4);
  assert_int_equal(set.items[0].hash, DCMF_HASH_SHA1);
  assert_int_equal(set.items[1].hash, DCMF_HASH_SHA256);
  assert_int_equal(set.items[2].hash, DCMF_HASH_SHA1);
  assert_int_equal(set.items[3].hash, DCMF_HASH_MD5);
  assert_int_equal(set.items[3].value[15], 1);

  /* Parsing appends to what the set already holds. */
  assert_int_equal(dcmf_fingerprint_parse("sha-1 " SHA1_HEX, &set), 0);
  assert_int_equal(set.count, 5);
}

static void test_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "   ",
      "sha-256",
      "sha-256 ",
      "sha-256" SHA256_UPPER,
      "sha256 " SHA256_UPPER,
      "sha-3 " SHA256_UPPER,
      "sha-2566 " SHA256_UPPER,
      "sha-256 " SHA256_UPPER ":",
      "sha-256 " SHA256_UPPER "0",
      "sha-256 " SHA256_UPPER "x",
      "sha-256 :" SHA256_UPPER,
      "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:02:03:0G",
      "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:02:03:4",
      "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:02::03:04",
      "sha-1 0011:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:02:03:04:05",
      "sha-1 00 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:02:03:04:05",
      "sha-1 " SHA1_HEX ",",
      "sha-1 " SHA1_HEX " ; ",
      "sha-1 " SHA1_HEX ",,sha-1 " SHA1_HEX,
      "sha-1 " SHA1_HEX " sha-1 " SHA1_HEX,
      ",sha-1 " SHA1_HEX,
      "sha-1 +" SHA1_HEX,
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct dcmf_fingerprint_set set;
    memset(&set, 0, sizeof(set));
    if (dcmf_fingerprint_parse(bad[i], &set) != DCMF_ERR_MALFORMED)
      fail_msg("accepted \"%s\"", bad[i]);
  }
  struct dcmf_fingerprint_set set;
  memset(&set, 0, sizeof(set));
  assert_int_equal(dcmf_fingerprint_parse(NULL, &set), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_fingerprint_parse("sha-1 " SHA1_HEX, NULL),
                   DCMF_ERR_MALFORMED);

  /* Entries before the bad one stay in the set. */
  assert_int_equal(
      dcmf_fingerprint_parse("sha-1 " SHA1_HEX ", md5 00:11", &set),
      DCMF_ERR_MALFORMED);
  assert_int_equal(set.count, 1);
}

static void test_too_many(void **state) {
  (void)state;
  char text[1024] = "";
  for (int i = 0; i < DCMF_FINGERPRINTS_MAX; i++)
    strcat(text, i == 0 ? "sha-1 " SHA1_HEX : ", sha-1 " SHA1_HEX);
  struct dcmf_fingerprint_set set;
  memset(&set, 0, sizeof(set));
  assert_int_equal(dcmf_fingerprint_parse(text, &set), 0);
  assert_int_equal(set.count, DCMF_FINGERPRINTS_MAX);

  strcat(text, "; sha-1 " SHA1_HEX);
  memset(&set, 0, sizeof(set));
  assert_int_equal(dcmf_fingerprint_parse(text, &set), DCMF_ERR_TOO_LARGE);
  assert_int_equal(set.count, DCMF_FINGERPRINTS_MAX);

  /* The limit counts entries already in the set. */
  memset(&set, 0, sizeof(set));
  set.count = DCMF_FINGERPRINTS_MAX - 1;
  assert_int_equal(
      dcmf_fingerprint_parse("sha-1 " SHA1_HEX ", sha-1 " SHA1_HEX, &set),
      DCMF_ERR_TOO_LARGE);
  assert_int_equal(set.count, DCMF_FINGERPRINTS_MAX);
}

static void test_format_round_trip(void **state) {
  (void)state;
  const char *canonical = "SHA-256 " SHA256_UPPER ", SHA-1 " SHA1_HEX;
  struct dcmf_fingerprint_set set, again;
  memset(&set, 0, sizeof(set));
  memset(&again, 0, sizeof(again));
  assert_int_equal(
      dcmf_fingerprint_parse("sha-256 " SHA256_LOWER ";sha-1 " SHA1_HEX, &set),
      0);
  char out[512];
  int n = dcmf_fingerprint_format(&set, out, sizeof(out));
  assert_int_equal(n, (int)strlen(canonical));
  assert_string_equal(out, canonical);
  assert_int_equal(dcmf_fingerprint_parse(out, &again), 0);
  assert_int_equal(again.count, set.count);
  assert_memory_equal(&again, &set, sizeof(set));

  /* The buffer must hold the terminator too. */
  size_t len = strlen(canonical);
  assert_int_equal(dcmf_fingerprint_format(&set, out, len + 1), (int)len);
  assert_int_equal(dcmf_fingerprint_format(&set, out, len), DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_fingerprint_format(&set, NULL, 0), DCMF_ERR_TOO_LARGE);

  struct dcmf_fingerprint_set empty;
  memset(&empty, 0, sizeof(empty));
  assert_int_equal(dcmf_fingerprint_format(&empty, out, 1), 0);
  assert_string_equal(out, "");

  /* A set no parse could have produced is refused, not overrun. */
  set.items[1].len = DCMF_FINGERPRINT_MAX_BYTES + 1;
  assert_int_equal(dcmf_fingerprint_format(&set, out, sizeof(out)),
                   DCMF_ERR_INVALID);
}

static void test_set_contains(void **state) {
  (void)state;
  struct dcmf_fingerprint_set set, probe;
  memset(&set, 0, sizeof(set));
  memset(&probe, 0, sizeof(probe));
  assert_int_equal(
      dcmf_fingerprint_parse("sha-1 " SHA1_HEX ", sha-256 " SHA256_UPPER, &set),
      0);
  assert_int_equal(dcmf_fingerprint_parse("SHA-256 " SHA256_LOWER, &probe), 0);
  assert_int_equal(dcmf_fingerprint_set_contains(&set, &probe.items[0]), 1);

  struct dcmf_fingerprint fp = probe.items[0];
  fp.value[31] ^= 1;
  assert_int_equal(dcmf_fingerprint_set_contains(&set, &fp), 0);
  fp = probe.items[0];
  fp.hash = DCMF_HASH_SHA512;
  assert_int_equal(dcmf_fingerprint_set_contains(&set, &fp), 0);
  fp = set.items[0];
  fp.len = 16;
  assert_int_equal(dcmf_fingerprint_set_contains(&set, &fp), 0);
  assert_int_equal(dcmf_fingerprint_set_contains(NULL, &fp), 0);
  assert_int_equal(dcmf_fingerprint_set_contains(&set, NULL), 0);
}

/* Builds a string of |n| characters cycling through |chars|. */
static const char *make(char *buf, size_t n, const char *chars) {
  size_t k = strlen(chars);
  for (size_t i = 0; i < n; i++)
    buf[i] = chars[i % k];
  buf[n] = '\0';
  return buf;
}

static void test_tls_id(void **state) {
  (void)state;
  char buf[300];
  const char *all = "aZ09+/-_";
  assert_int_equal(dcmf_tls_id_check(make(buf, 19, all)), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_tls_id_check(make(buf, 20, all)), 0);
  assert_int_equal(dcmf_tls_id_check(make(buf, 255, all)), 0);
  assert_int_equal(dcmf_tls_id_check(make(buf, 256, all)), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_tls_id_check(make(buf, 299, all)), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_tls_id_check(""), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_tls_id_check(NULL), DCMF_ERR_MALFORMED);

  static const char bad[] = "=. :~!\"\x7f\x80\xff";
  for (size_t i = 0; i + 1 < sizeof(bad); i++) {
    make(buf, 40, all);
    buf[17] = bad[i];
    assert_int_equal(dcmf_tls_id_check(buf), DCMF_ERR_MALFORMED);
  }
}

static void test_ice_credentials(void **state) {
  (void)state;
  char buf[300];
  const char *all = "Az09+/";
  assert_int_equal(dcmf_ice_ufrag_check(make(buf, 3, all)), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_ice_ufrag_check(make(buf, 4, all)), 0);
  assert_int_equal(dcmf_ice_ufrag_check(make(buf, 256, all)), 0);
  assert_int_equal(dcmf_ice_ufrag_check(make(buf, 257, all)),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_ice_pwd_check(make(buf, 21, all)), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_ice_pwd_check(make(buf, 22, all)), 0);
  assert_int_equal(dcmf_ice_pwd_check(make(buf, 256, all)), 0);
  assert_int_equal(dcmf_ice_pwd_check(make(buf, 257, all)), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_ice_ufrag_check(NULL), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_ice_pwd_check(NULL), DCMF_ERR_MALFORMED);

  /* "-" and "_" are tls-id characters but not ice-chars. */
  static const char bad[] = "-_= :";
  for (size_t i = 0; i + 1 < sizeof(bad); i++) {
    make(buf, 30, all);
    buf[5] = bad[i];
    assert_int_equal(dcmf_ice_ufrag_check(buf), DCMF_ERR_MALFORMED);
    assert_int_equal(dcmf_ice_pwd_check(buf), DCMF_ERR_MALFORMED);
  }
}

static void test_token_from_random(void **state) {
  (void)state;
  static const char ice[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint8_t random[256];
  char out[257];
  for (size_t i = 0; i < sizeof(random); i++)
    random[i] = (uint8_t)i;

  dcmf_token_from_random(out, 256, random, ice);
  assert_int_equal(strlen(out), 256);
  assert_int_equal(out[0], 'A');
  assert_int_equal(out[63], '/');
  assert_int_equal(out[64], 'A');
  assert_int_equal(out[255], '/');
  assert_int_equal(dcmf_ice_pwd_check(out), 0);

  memset(out, 'x', sizeof(out));
  dcmf_token_from_random(out, 4, random + 10, "ab");
  assert_string_equal(out, "abab");

  memset(out, 'x', sizeof(out));
  dcmf_token_from_random(out, 0, random, ice);
  assert_string_equal(out, "");
  memset(out, 'x', sizeof(out));
  dcmf_token_from_random(out, 4, random, "");
  assert_string_equal(out, "");
  dcmf_token_from_random(NULL, 4, random, ice);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_cases),
      cmocka_unit_test(test_every_hash),
      cmocka_unit_test(test_several),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_too_many),
      cmocka_unit_test(test_format_round_trip),
      cmocka_unit_test(test_set_contains),
      cmocka_unit_test(test_tls_id),
      cmocka_unit_test(test_ice_credentials),
      cmocka_unit_test(test_token_from_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
