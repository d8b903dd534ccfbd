/*
 * test_stun.c - unit tests for the STUN codec: the RFC 5769 test vectors
 * (and mutated copies of them), header and attribute parsing rules, and
 * round trips of everything the builders produce.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "errors.h"
#include "stun.h"

/* RFC 5769 2.1-2.3 share the password and the transaction id. */
#define RFC5769_PWD "VOkJxbRl1RmTxUk/WvJxBt"
#define RFC5769_PWD_LEN (sizeof(RFC5769_PWD) - 1)

static const uint8_t rfc5769_txid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                         0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

/* RFC 5769 2.1: sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED,
 * USERNAME "evtj:h6vY" padded with spaces, MESSAGE-INTEGRITY,
 * FINGERPRINT). */
static const uint8_t rfc5769_request[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10,
    0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
    0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* RFC 5769 2.2: IPv4 response, mapped address 192.0.2.1:32853. */
static const uint8_t rfc5769_response_v4[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
    0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 2.3: IPv6 response, mapped address
 * [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
static const uint8_t rfc5769_response_v6[] = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
    0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

static const uint8_t *pwd_key(void) {
  return (const uint8_t *)RFC5769_PWD;
}

static struct sockaddr_storage make_addr(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (strchr(ip, ':') != NULL) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
  } else {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
  }
  return ss;
}

static const struct sockaddr *sa(const struct sockaddr_storage *ss) {
  return (const struct sockaddr *)ss;
}

/* Parses |pkt| and asserts both checks pass with the RFC 5769 key. */
static void parse_verified(struct dcmf_stun_msg *msg, const uint8_t *pkt,
                           size_t len) {
  assert_int_equal(dcmf_stun_parse(msg, pkt, len), 0);
  assert_int_equal(dcmf_stun_check_fingerprint(msg), 0);
  assert_int_equal(dcmf_stun_check_integrity(msg, pwd_key(), RFC5769_PWD_LEN),
                   0);
}

static void test_rfc5769_request(void **state) {
  (void)state;
  struct dcmf_stun_msg msg;
  parse_verified(&msg, rfc5769_request, sizeof(rfc5769_request));
  assert_int_equal(msg.type, DCMF_STUN_BINDING_REQUEST);
  assert_memory_equal(msg.txid, rfc5769_txid, 12);
  assert_int_equal(msg.username_len, 9);
  assert_memory_equal(msg.username, "evtj:h6vY", 9);
  assert_int_equal(msg.priority, 0x6e0001ff);
  assert_true(msg.present & DCMF_STUN_HAS_ICE_CONTROLLED);
  assert_false(msg.present & DCMF_STUN_HAS_ICE_CONTROLLING);
  assert_true(msg.controlled_tie_breaker == 0x932ff9b151263b36ull);
  assert_false(msg.present & DCMF_STUN_HAS_USE_CANDIDATE);
  /* SOFTWARE is comprehension-optional: ignored, not unknown. */
  assert_int_equal(msg.unknown_count, 0);
  assert_false(msg.malformed);
  assert_int_equal(dcmf_stun_check_integrity(&msg, (const uint8_t *)"wrong", 5),
                   DCMF_ERR_INVALID);
  assert_int_equal(
      dcmf_stun_looks_like(rfc5769_request, sizeof(rfc5769_request)), 1);
}

static void test_rfc5769_response_v4(void **state) {
  (void)state;
  struct dcmf_stun_msg msg;
  struct sockaddr_storage want = make_addr("192.0.2.1", 32853);
  parse_verified(&msg, rfc5769_response_v4, sizeof(rfc5769_response_v4));
  assert_int_equal(msg.type, DCMF_STUN_BINDING_SUCCESS);
  assert_true(msg.present & DCMF_STUN_HAS_XOR_MAPPED_ADDRESS);
  assert_true(dcmf_stun_addr_equal(sa(&msg.mapped), sa(&want)));
}

static void test_rfc5769_response_v6(void **state) {
  (void)state;
  struct dcmf_stun_msg msg;
  struct sockaddr_storage want =
      make_addr("2001:db8:1234:5678:11:2233:4455:6677", 32853);
  parse_verified(&msg, rfc5769_response_v6, sizeof(rfc5769_response_v6));
  assert_int_equal(msg.type, DCMF_STUN_BINDING_SUCCESS);
  assert_true(dcmf_stun_addr_equal(sa(&msg.mapped), sa(&want)));
}

/*
 * Flips each bit of each byte of |vec| in turn: the copy must fail to
 * parse or fail a check. Bits before MESSAGE-INTEGRITY's value must also
 * break the integrity (or parsing), whatever the FINGERPRINT says.
 */
static void mutate_all(const uint8_t *vec, size_t len) {
  uint8_t copy[128];
  struct dcmf_stun_msg ref;
  assert_true(len <= sizeof(copy));
  assert_int_equal(dcmf_stun_parse(&ref, vec, len), 0);
  for (size_t i = 0; i < len; i++) {
    for (unsigned bit = 0; bit < 8; bit++) {
      struct dcmf_stun_msg msg;
      int fp, mi;
      memcpy(copy, vec, len);
      copy[i] ^= (uint8_t)(1u << bit);
      if (dcmf_stun_parse(&msg, copy, len) != 0)
        continue;
      fp = dcmf_stun_check_fingerprint(&msg);
      mi = dcmf_stun_check_integrity(&msg, pwd_key(), RFC5769_PWD_LEN);
      assert_true(fp != 0 || mi != 0);
      if (i < ref.mi_offset + 4 + DCMF_STUN_MI_LEN)
        assert_int_not_equal(mi, 0);
      else
        assert_int_not_equal(fp, 0);
    }
  }
  /* Truncations never parse: the header length no longer matches. */
  for (size_t cut = 0; cut < len; cut++) {
    struct dcmf_stun_msg msg;
    assert_int_equal(dcmf_stun_parse(&msg, vec, cut), DCMF_ERR_MALFORMED);
  }
}

static void test_rfc5769_mutated(void **state) {
  (void)state;
  mutate_all(rfc5769_request, sizeof(rfc5769_request));
  mutate_all(rfc5769_response_v4, sizeof(rfc5769_response_v4));
  mutate_all(rfc5769_response_v6, sizeof(rfc5769_response_v6));
}

static void test_header_rules(void **state) {
  (void)state;
  struct dcmf_stun_msg msg;
  uint8_t m[sizeof(rfc5769_request) + 4];
  memcpy(m, rfc5769_request, sizeof(rfc5769_request));

  m[0] = 0x40; /* top type bits set */
  assert_int_equal(dcmf_stun_parse(&msg, m, sizeof(rfc5769_request)),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_stun_looks_like(m, sizeof(rfc5769_request)), 0);
  m[0] = 0x00;
  m[4] = 0x22; /* magic cookie */
  assert_int_equal(dcmf_stun_parse(&msg, m, sizeof(rfc5769_request)),
                   DCMF_ERR_MALFORMED);
  m[4] = 0x21;
  m[3] = 0x59; /* length not a multiple of 4 */
  assert_int_equal(dcmf_stun_parse(&msg, m, sizeof(rfc5769_request)),
                   DCMF_ERR_MALFORMED);
  m[3] = 0x58;
  /* Trailing bytes beyond the header length. */
  memset(m + sizeof(rfc5769_request), 0, 4);
  assert_int_equal(dcmf_stun_parse(&msg, m, sizeof(m)), DCMF_ERR_MALFORMED);
  /* Empty and tiny inputs. */
  assert_int_equal(dcmf_stun_parse(&msg, m, 0), DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_stun_looks_like(m, 19), 0);
  assert_int_equal(dcmf_stun_parse(&msg, m, sizeof(rfc5769_request)), 0);
}

/* Starts a Binding request in |w| with the RFC 5769 transaction id. */
static void start(struct dcmf_stun_writer *w, uint8_t *buf, size_t cap) {
  dcmf_stun_writer_init(w, buf, cap, DCMF_STUN_BINDING_REQUEST, rfc5769_txid);
}

static size_t finish(struct dcmf_stun_writer *w) {
  size_t len = 99;
  assert_int_equal(dcmf_stun_writer_finish(w, &len), 0);
  return len;
}

static void test_attribute_rules(void **state) {
  (void)state;
  uint8_t buf[256];
  struct dcmf_stun_writer w;
  struct dcmf_stun_msg msg;
  size_t len;

  /* An attribute running past the end does not parse. */
  start(&w, buf, sizeof(buf));
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, 1);
  len = finish(&w);
  buf[23] = 8; /* PRIORITY now claims 8 bytes, only 4 are there */
  assert_int_equal(dcmf_stun_parse(&msg, buf, len), DCMF_ERR_MALFORMED);

  /* Nothing may follow FINGERPRINT. */
  start(&w, buf, sizeof(buf));
  dcmf_stun_writer_add_fingerprint(&w);
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, 1);
  len = finish(&w);
  assert_int_equal(dcmf_stun_parse(&msg, buf, len), DCMF_ERR_MALFORMED);

  /* A FINGERPRINT of the wrong size does not parse. */
  start(&w, buf, sizeof(buf));
  dcmf_stun_writer_add_u64(&w, DCMF_STUN_ATTR_FINGERPRINT, 1);
  len = finish(&w);
  assert_int_equal(dcmf_stun_parse(&msg, buf, len), DCMF_ERR_MALFORMED);

  /* Unknown comprehension-required types are reported once each, in
   * order; unknown optional ones are not; known ones with bad values set
   * |malformed|; attributes after MESSAGE-INTEGRITY are ignored. */
  start(&w, buf, sizeof(buf));
  dcmf_stun_writer_add(&w, 0x7F01, "abc", 3);
  dcmf_stun_writer_add(&w, 0xC001, "abc", 3);
  dcmf_stun_writer_add(&w, 0x0001, NULL, 0);
  dcmf_stun_writer_add(&w, 0x7F01, NULL, 0);
  dcmf_stun_writer_add_u64(&w, DCMF_STUN_ATTR_PRIORITY, 7);
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, 5);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME, "a:b", 3);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME, "c:d", 3);
  dcmf_stun_writer_add_integrity(&w, pwd_key(), RFC5769_PWD_LEN);
  dcmf_stun_writer_add(&w, 0x7F02, NULL, 0);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USE_CANDIDATE, NULL, 0);
  dcmf_stun_writer_add_fingerprint(&w);
  len = finish(&w);
  assert_int_equal(len % 4, 0);
  parse_verified(&msg, buf, len);
  assert_int_equal(msg.unknown_count, 2);
  assert_int_equal(msg.unknown[0], 0x7F01);
  assert_int_equal(msg.unknown[1], 0x0001);
  assert_true(msg.malformed);
  assert_int_equal(msg.malformed_attr, DCMF_STUN_ATTR_PRIORITY);
  /* The bad PRIORITY came first; the later good one is not used. */
  assert_false(msg.present & DCMF_STUN_HAS_PRIORITY);
  assert_memory_equal(msg.username, "a:b", 3);
  assert_false(msg.present & DCMF_STUN_HAS_USE_CANDIDATE);

  /* A MESSAGE-INTEGRITY of the wrong size is malformed and not found. */
  start(&w, buf, sizeof(buf));
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_MESSAGE_INTEGRITY, "short", 5);
  len = finish(&w);
  assert_int_equal(dcmf_stun_parse(&msg, buf, len), 0);
  assert_true(msg.malformed);
  assert_int_equal(dcmf_stun_check_integrity(&msg, pwd_key(), 4),
                   DCMF_ERR_NOT_FOUND);
  assert_int_equal(dcmf_stun_check_fingerprint(&msg), DCMF_ERR_NOT_FOUND);

  /* Bad XOR-MAPPED-ADDRESS family and bad ERROR-CODE class. */
  start(&w, buf, sizeof(buf));
  dcmf_stun_writer_add_u64(&w, DCMF_STUN_ATTR_XOR_MAPPED_ADDRESS,
                           0x0003000000000000ull);
  len = finish(&w);
  assert_int_equal(dcmf_stun_parse(&msg, buf, len), 0);
  assert_int_equal(msg.malformed_attr, DCMF_STUN_ATTR_XOR_MAPPED_ADDRESS);
  start(&w, buf, sizeof(buf));
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_ERROR_CODE, 0x00000263);
  len = finish(&w);
  assert_int_equal(dcmf_stun_parse(&msg, buf, len), 0);
  assert_int_equal(msg.malformed_attr, DCMF_STUN_ATTR_ERROR_CODE);
}

static void test_build_success_round_trip(void **state) {
  (void)state;
  static const char *const ips[] = {"192.0.2.1", "2001:db8::1",
                                    "2001:db8:1234:5678:11:2233:4455:6677"};
  for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
    uint8_t buf[128];
    size_t len;
    struct dcmf_stun_msg msg;
    struct sockaddr_storage addr = make_addr(ips[i], (uint16_t)(40000 + i));
    assert_int_equal(dcmf_stun_build_success(buf, sizeof(buf), &len,
                                             rfc5769_txid, sa(&addr), pwd_key(),
                                             RFC5769_PWD_LEN),
                     0);
    parse_verified(&msg, buf, len);
    assert_int_equal(msg.type, DCMF_STUN_BINDING_SUCCESS);
    assert_memory_equal(msg.txid, rfc5769_txid, 12);
    assert_true(dcmf_stun_addr_equal(sa(&msg.mapped), sa(&addr)));
    assert_false(msg.malformed);
  }
  /* The RFC 5769 IPv4 address encodes to the vector's attribute bytes. */
  {
    uint8_t buf[128];
    size_t len;
    struct sockaddr_storage addr = make_addr("192.0.2.1", 32853);
    assert_int_equal(dcmf_stun_build_success(buf, sizeof(buf), &len,
                                             rfc5769_txid, sa(&addr), NULL, 0),
                     0);
    assert_memory_equal(buf + 20, rfc5769_response_v4 + 36, 12);
  }
}

static void test_build_error_round_trip(void **state) {
  (void)state;
  static const struct {
    unsigned code;
    const char *reason;
    int with_mi;
  } cases[] = {
      {400, "Bad Request", 1},
      {401, "Unauthorized", 0},
      {420, "Unknown Attribute", 1},
      {487, "Role Conflict", 1},
      {500, "Error", 0},
  };
  static const uint16_t unknown[3] = {0x7F01, 0x0001, 0x0030};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t buf[128];
    size_t len;
    struct dcmf_stun_msg msg;
    assert_int_equal(dcmf_stun_build_error(buf, sizeof(buf), &len, rfc5769_txid,
                                           cases[i].code, unknown, 3,
                                           cases[i].with_mi ? pwd_key() : NULL,
                                           RFC5769_PWD_LEN),
                     0);
    assert_int_equal(dcmf_stun_parse(&msg, buf, len), 0);
    assert_int_equal(dcmf_stun_check_fingerprint(&msg), 0);
    assert_int_equal(msg.type, DCMF_STUN_BINDING_ERROR);
    assert_int_equal(msg.error_code, cases[i].code);
    assert_int_equal(msg.error_reason_len, strlen(cases[i].reason));
    assert_memory_equal(msg.error_reason, cases[i].reason,
                        msg.error_reason_len);
    assert_int_equal(
        dcmf_stun_check_integrity(&msg, pwd_key(), RFC5769_PWD_LEN),
        cases[i].with_mi ? 0 : DCMF_ERR_NOT_FOUND);
    if (cases[i].code == 420) {
      assert_int_equal(msg.listed_unknown_count, 3);
      assert_memory_equal(msg.listed_unknown, unknown, sizeof(unknown));
    } else {
      assert_false(msg.present & DCMF_STUN_HAS_UNKNOWN_ATTRIBUTES);
    }
  }
  {
    uint8_t buf[128];
    size_t len = 7;
    assert_int_equal(dcmf_stun_build_error(buf, sizeof(buf), &len, rfc5769_txid,
                                           299, NULL, 0, NULL, 0),
                     DCMF_ERR_INVALID);
    assert_int_equal(len, 0);
  }
}

static void test_build_request_round_trip(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t len;
  struct dcmf_stun_msg msg;
  struct dcmf_stun_request req = {
      .username = "evtj:h6vY",
      .key = pwd_key(),
      .key_len = RFC5769_PWD_LEN,
      .priority = 0x6e0001ff,
      .role = DCMF_STUN_ROLE_CONTROLLING,
      .tie_breaker = 0x0123456789abcdefull,
      .use_candidate = 1,
  };
  memcpy(req.txid, rfc5769_txid, 12);
  assert_int_equal(dcmf_stun_build_request(buf, sizeof(buf), &len, &req), 0);
  parse_verified(&msg, buf, len);
  assert_int_equal(msg.type, DCMF_STUN_BINDING_REQUEST);
  assert_memory_equal(msg.username, "evtj:h6vY", 9);
  assert_int_equal(msg.priority, 0x6e0001ff);
  assert_true(msg.present & DCMF_STUN_HAS_USE_CANDIDATE);
  assert_true(msg.present & DCMF_STUN_HAS_ICE_CONTROLLING);
  assert_false(msg.present & DCMF_STUN_HAS_ICE_CONTROLLED);
  assert_true(msg.controlling_tie_breaker == 0x0123456789abcdefull);
  assert_int_equal(msg.unknown_count, 0);
  assert_false(msg.malformed);
  /* The username's padding is zeros (RFC 8489 allows any value). */
  assert_int_equal(buf[20 + 4 + 9], 0);

  /* Controlled role, no USE-CANDIDATE, no USERNAME, no MI. */
  req.role = DCMF_STUN_ROLE_CONTROLLED;
  req.use_candidate = 0;
  req.username = NULL;
  req.key = NULL;
  assert_int_equal(dcmf_stun_build_request(buf, sizeof(buf), &len, &req), 0);
  assert_int_equal(dcmf_stun_parse(&msg, buf, len), 0);
  assert_int_equal(dcmf_stun_check_fingerprint(&msg), 0);
  assert_int_equal(msg.present, DCMF_STUN_HAS_PRIORITY |
                                    DCMF_STUN_HAS_ICE_CONTROLLED |
                                    DCMF_STUN_HAS_FINGERPRINT);
  assert_true(msg.controlled_tie_breaker == 0x0123456789abcdefull);

  /* A USERNAME over 512 bytes is refused. */
  {
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    req.username = big;
    assert_int_equal(dcmf_stun_build_request(buf, sizeof(buf), &len, &req),
                     DCMF_ERR_INVALID);
  }
}

/* Every builder, at every capacity short of what it needs, fails with
 * TOO_LARGE and never writes beyond the capacity. */
static void test_capacity(void **state) {
  (void)state;
  struct sockaddr_storage addr = make_addr("2001:db8::1", 1);
  struct dcmf_stun_request req = {.username = "evtj:h6vY",
                                  .key = pwd_key(),
                                  .key_len = RFC5769_PWD_LEN,
                                  .role = DCMF_STUN_ROLE_CONTROLLING,
                                  .use_candidate = 1};
  static const uint16_t unknown[1] = {0x7F01};
  for (int which = 0; which < 3; which++) {
    uint8_t full[256];
    size_t need, len;
    int rc;
    if (which == 0)
      rc = dcmf_stun_build_success(full, sizeof(full), &need, rfc5769_txid,
                                   sa(&addr), pwd_key(), RFC5769_PWD_LEN);
    else if (which == 1)
      rc = dcmf_stun_build_error(full, sizeof(full), &need, rfc5769_txid, 420,
                                 unknown, 1, pwd_key(), RFC5769_PWD_LEN);
    else
      rc = dcmf_stun_build_request(full, sizeof(full), &need, &req);
    assert_int_equal(rc, 0);
    for (size_t cap = 0; cap < need; cap++) {
      uint8_t buf[256];
      memset(buf, 0xA5, sizeof(buf));
      if (which == 0)
        rc = dcmf_stun_build_success(buf, cap, &len, rfc5769_txid, sa(&addr),
                                     pwd_key(), RFC5769_PWD_LEN);
      else if (which == 1)
        rc = dcmf_stun_build_error(buf, cap, &len, rfc5769_txid, 420, unknown,
                                   1, pwd_key(), RFC5769_PWD_LEN);
      else
        rc = dcmf_stun_build_request(buf, cap, &len, &req);
      assert_int_equal(rc, DCMF_ERR_TOO_LARGE);
      assert_int_equal(len, 0);
      for (size_t i = cap; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xA5);
    }
  }
}

static void test_writer_errors(void **state) {
  (void)state;
  uint8_t buf[64];
  struct dcmf_stun_writer w;
  size_t len;
  struct sockaddr_storage unix_addr;
  memset(&unix_addr, 0, sizeof(unix_addr));
  unix_addr.ss_family = AF_UNIX;
  start(&w, buf, sizeof(buf));
  dcmf_stun_writer_add_xor_address(&w, sa(&unix_addr));
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, 1);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), DCMF_ERR_INVALID);
  assert_int_equal(len, 0);
}

static void test_addr_equal(void **state) {
  (void)state;
  struct sockaddr_storage a = make_addr("192.0.2.1", 1000);
  struct sockaddr_storage b = make_addr("192.0.2.1", 1000);
  struct sockaddr_storage c = make_addr("192.0.2.1", 1001);
  struct sockaddr_storage d = make_addr("::ffff:192.0.2.1", 1000);
  struct sockaddr_storage e = make_addr("2001:db8::1", 1000);
  struct sockaddr_storage f = make_addr("2001:db8::1", 1000);
  assert_true(dcmf_stun_addr_equal(sa(&a), sa(&b)));
  assert_false(dcmf_stun_addr_equal(sa(&a), sa(&c)));
  assert_false(dcmf_stun_addr_equal(sa(&a), sa(&d)));
  assert_true(dcmf_stun_addr_equal(sa(&e), sa(&f)));
  ((struct sockaddr_in6 *)&f)->sin6_scope_id = 2;
  assert_false(dcmf_stun_addr_equal(sa(&e), sa(&f)));
  assert_false(dcmf_stun_addr_equal(sa(&a), NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc5769_request),
      cmocka_unit_test(test_rfc5769_response_v4),
      cmocka_unit_test(test_rfc5769_response_v6),
      cmocka_unit_test(test_rfc5769_mutated),
      cmocka_unit_test(test_header_rules),
      cmocka_unit_test(test_attribute_rules),
      cmocka_unit_test(test_build_success_round_trip),
      cmocka_unit_test(test_build_error_round_trip),
      cmocka_unit_test(test_build_request_round_trip),
      cmocka_unit_test(test_capacity),
      cmocka_unit_test(test_writer_errors),
      cmocka_unit_test(test_addr_equal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
