/*
 * test_ice.c - unit tests for the ICE-lite responder with a fake clock:
 * answers to good and bad checks, latching, consent expiry and refresh,
 * and the path where the peer does no ICE checks.
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
#include "ice.h"
#include "stun.h"

#define LOCAL_UFRAG "lUfR"
#define LOCAL_PWD "localPasswordOf22chars"
#define REMOTE_UFRAG "rEmO"
#define REMOTE_PWD "remotePasswordOf22char"

/* The fake clock: tests move it by hand. */
static uint64_t now_ms;

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

static void new_ice(struct dcmf_ice *ice, const char *remote_ufrag) {
  struct dcmf_ice_settings s = {.local_ufrag = LOCAL_UFRAG,
                                .local_pwd = LOCAL_PWD,
                                .remote_ufrag = remote_ufrag};
  assert_int_equal(dcmf_ice_init(ice, &s), 0);
}

/* A check as a full ICE peer (controlling) would send it to us. */
static struct dcmf_stun_request check(int use_candidate) {
  struct dcmf_stun_request req = {
      .txid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
      .username = LOCAL_UFRAG ":" REMOTE_UFRAG,
      .key = (const uint8_t *)LOCAL_PWD,
      .key_len = sizeof(LOCAL_PWD) - 1,
      .priority = 0x6e0001ff,
      .role = DCMF_STUN_ROLE_CONTROLLING,
      .tie_breaker = 42,
      .use_candidate = use_candidate,
  };
  req.txid[0] = (uint8_t)now_ms; /* a new transaction per check */
  return req;
}

struct reply {
  int rc;
  size_t len;
  uint8_t buf[512];
  struct dcmf_stun_msg msg; /* parsed if |len| > 0 */
};

/* Feeds |pkt| from |from| and parses any response, which must always
 * carry a valid FINGERPRINT and echo the transaction id. */
static void feed(struct reply *r, struct dcmf_ice *ice,
                 const struct sockaddr *from, const uint8_t *pkt, size_t len) {
  memset(r, 0, sizeof(*r));
  r->rc = dcmf_ice_recv(ice, from, pkt, len, now_ms, r->buf, sizeof(r->buf),
                        &r->len);
  if (r->len > 0) {
    assert_true(r->rc == DCMF_ICE_RESPOND ||
                r->rc == DCMF_ICE_RESPOND_LATCHED ||
                r->rc == DCMF_ICE_RESPOND_ERROR);
    assert_int_equal(dcmf_stun_parse(&r->msg, r->buf, r->len), 0);
    assert_int_equal(r->rc == DCMF_ICE_RESPOND_ERROR,
                     r->msg.type == DCMF_STUN_BINDING_ERROR);
    assert_int_equal(dcmf_stun_check_fingerprint(&r->msg), 0);
    assert_memory_equal(r->msg.txid, pkt + 8, DCMF_STUN_TXID_LEN);
  } else {
    assert_true(r->rc <= 0 || r->rc == DCMF_ICE_DROP_UNAUTHENTICATED ||
                r->rc == DCMF_ICE_DROP_LIMITED);
  }
}

/* Builds |req|, feeds it and returns the result code. */
static int send_req(struct reply *r, struct dcmf_ice *ice,
                    const struct sockaddr *from,
                    const struct dcmf_stun_request *req) {
  uint8_t pkt[512];
  size_t len;
  assert_int_equal(dcmf_stun_build_request(pkt, sizeof(pkt), &len, req), 0);
  feed(r, ice, from, pkt, len);
  return r->rc;
}

static int verifies(const struct reply *r, const char *pwd) {
  return dcmf_stun_check_integrity(&r->msg, (const uint8_t *)pwd,
                                   strlen(pwd)) == 0;
}

/* Error responses go only to a source that proved it knows our pwd, so
 * every one carries MESSAGE-INTEGRITY. */
static void assert_error(const struct reply *r, unsigned code) {
  assert_int_equal(r->rc, DCMF_ICE_RESPOND_ERROR);
  assert_int_equal(r->msg.type, DCMF_STUN_BINDING_ERROR);
  assert_int_equal(r->msg.error_code, code);
  assert_true(verifies(r, LOCAL_PWD));
}

/* Decision (changed from RFC 8489's 400/401): a request that does not
 * authenticate gets no answer at all, so a spoofed source cannot make us
 * send anything anywhere; it is dropped and counted. */
static void assert_unauthenticated(const struct reply *r) {
  assert_int_equal(r->rc, DCMF_ICE_DROP_UNAUTHENTICATED);
  assert_int_equal(r->len, 0);
}

static void test_success(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage from = make_addr("198.51.100.7", 50000);
  struct dcmf_stun_request req;
  struct reply r;
  now_ms = 1000;
  new_ice(&ice, REMOTE_UFRAG);
  assert_null(dcmf_ice_peer(&ice));
  req = check(0);
  send_req(&r, &ice, sa(&from), &req);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_int_equal(r.msg.type, DCMF_STUN_BINDING_SUCCESS);
  assert_true(dcmf_stun_addr_equal(sa(&r.msg.mapped), sa(&from)));
  assert_true(verifies(&r, LOCAL_PWD));
  assert_false(verifies(&r, REMOTE_PWD));
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&from)));
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&from)));
  assert_int_equal(ice.counters.requests_ok, 1);
  assert_int_equal(ice.counters.latches, 1);

  /* The same check again: success, no change of peer. */
  send_req(&r, &ice, sa(&from), &req);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  assert_int_equal(r.msg.type, DCMF_STUN_BINDING_SUCCESS);
  assert_int_equal(ice.counters.requests_ok, 2);
}

/* An ICE restart: after dcmf_ice_set_local, a check with the old
 * credentials is dropped, one with the new ones succeeds and the
 * selected peer stays; bad credentials are refused, nothing changed. */
static void test_set_local_restart(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage from = make_addr("198.51.100.7", 50000);
  struct reply r;
  now_ms = 3000;
  new_ice(&ice, REMOTE_UFRAG);
  struct dcmf_stun_request req = check(0);
  assert_int_equal(send_req(&r, &ice, sa(&from), &req),
                   DCMF_ICE_RESPOND_LATCHED);
  assert_int_equal(dcmf_ice_set_local(&ice, "x", "newPasswordOf22charsXX"),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_ice_set_local(&ice, "nEwU", "short"), DCMF_ERR_INVALID);
  assert_int_equal(dcmf_ice_set_local(&ice, NULL, NULL), DCMF_ERR_INVALID);
  now_ms++;
  req = check(0);
  assert_int_equal(send_req(&r, &ice, sa(&from), &req), DCMF_ICE_RESPOND);
  assert_int_equal(dcmf_ice_set_local(&ice, "nEwU", "newPasswordOf22charsXX"),
                   0);
  now_ms++;
  req = check(0); /* the old credentials */
  send_req(&r, &ice, sa(&from), &req);
  assert_unauthenticated(&r);
  now_ms++;
  req = check(0);
  req.username = "nEwU:" REMOTE_UFRAG;
  req.key = (const uint8_t *)"newPasswordOf22charsXX";
  req.key_len = 22;
  assert_int_equal(send_req(&r, &ice, sa(&from), &req), DCMF_ICE_RESPOND);
  assert_true(verifies(&r, "newPasswordOf22charsXX"));
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&from)));
}

static void test_success_ipv6(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage from = make_addr("2001:db8::7", 50001);
  struct dcmf_stun_request req = check(1);
  struct reply r;
  new_ice(&ice, REMOTE_UFRAG);
  send_req(&r, &ice, sa(&from), &req);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_stun_addr_equal(sa(&r.msg.mapped), sa(&from)));
  assert_true(verifies(&r, LOCAL_PWD));
}

static void test_unauthenticated(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage from = make_addr("198.51.100.7", 50000);
  struct dcmf_stun_request req;
  struct reply r;
  new_ice(&ice, REMOTE_UFRAG);

  req = check(1);
  req.username = "xxxx:" REMOTE_UFRAG; /* wrong local ufrag */
  send_req(&r, &ice, sa(&from), &req);
  assert_unauthenticated(&r);

  req.username = LOCAL_UFRAG ":zzzz"; /* wrong remote ufrag */
  send_req(&r, &ice, sa(&from), &req);
  assert_unauthenticated(&r);

  req.username = LOCAL_UFRAG ":"; /* empty remote part */
  send_req(&r, &ice, sa(&from), &req);
  assert_unauthenticated(&r);

  req.username = LOCAL_UFRAG; /* no colon */
  send_req(&r, &ice, sa(&from), &req);
  assert_unauthenticated(&r);

  req = check(1);
  req.key = (const uint8_t *)REMOTE_PWD; /* wrong pwd */
  send_req(&r, &ice, sa(&from), &req);
  assert_unauthenticated(&r);

  req.key = NULL; /* no MESSAGE-INTEGRITY */
  send_req(&r, &ice, sa(&from), &req);
  assert_unauthenticated(&r);

  assert_int_equal(ice.counters.unauthenticated, 6);
  assert_int_equal(ice.counters.requests_ok, 0);
  assert_null(dcmf_ice_peer(&ice));
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&from)));
  assert_true(dcmf_ice_next_expiry(&ice) == UINT64_MAX);
}

static void test_remote_ufrag_unknown(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage from = make_addr("198.51.100.7", 50000);
  struct dcmf_stun_request req = check(0);
  struct reply r;
  new_ice(&ice, NULL);
  req.username = LOCAL_UFRAG ":anyOtherUfrag";
  send_req(&r, &ice, sa(&from), &req);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  /* Once the answer brings the ufrag, it is enforced. */
  assert_int_equal(dcmf_ice_set_remote_ufrag(&ice, REMOTE_UFRAG), 0);
  send_req(&r, &ice, sa(&from), &req);
  assert_unauthenticated(&r);
  assert_int_equal(dcmf_ice_set_remote_ufrag(&ice, "bad ufrag!"),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_ice_set_remote_ufrag(&ice, NULL), 0);
  send_req(&r, &ice, sa(&from), &req);
  assert_int_equal(r.msg.type, DCMF_STUN_BINDING_SUCCESS);
}

/* Decision: a request without FINGERPRINT is dropped, not answered,
 * because FINGERPRINT is what tells STUN from other traffic (RFC 8445
 * 7.1: checks always carry it). */
static void test_dropped(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage from = make_addr("198.51.100.7", 50000);
  struct dcmf_stun_writer w;
  uint8_t pkt[256];
  size_t len;
  struct reply r;
  static const uint8_t garbage[] = {0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0};
  const uint8_t txid[12] = {0};
  new_ice(&ice, REMOTE_UFRAG);

  /* No FINGERPRINT. */
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), DCMF_STUN_BINDING_REQUEST, txid);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME,
                       LOCAL_UFRAG ":" REMOTE_UFRAG, 9);
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, 1);
  dcmf_stun_writer_add_integrity(&w, (const uint8_t *)LOCAL_PWD,
                                 sizeof(LOCAL_PWD) - 1);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_int_equal(r.rc, DCMF_ICE_DROP);

  /* Bad FINGERPRINT. */
  {
    struct dcmf_stun_request req = check(1);
    assert_int_equal(dcmf_stun_build_request(pkt, sizeof(pkt), &len, &req), 0);
    pkt[len - 1] ^= 1;
    feed(&r, &ice, sa(&from), pkt, len);
    assert_int_equal(r.rc, DCMF_ICE_DROP);
  }

  /* A success response and an indication are not requests. */
  assert_int_equal(
      dcmf_stun_build_success(pkt, sizeof(pkt), &len, txid, sa(&from), NULL, 0),
      0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_int_equal(r.rc, DCMF_ICE_DROP);
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), DCMF_STUN_BINDING_INDICATION,
                        txid);
  dcmf_stun_writer_add_fingerprint(&w);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_int_equal(r.rc, DCMF_ICE_DROP);

  /* Another method (0x003, TURN Allocate) is not ours. */
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), 0x0003, txid);
  dcmf_stun_writer_add_fingerprint(&w);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_int_equal(r.rc, DCMF_ICE_DROP);

  /* Garbage. */
  feed(&r, &ice, sa(&from), garbage, sizeof(garbage));
  assert_int_equal(r.rc, DCMF_ICE_DROP);
  feed(&r, &ice, sa(&from), garbage, 0);
  assert_int_equal(r.rc, DCMF_ICE_DROP);

  assert_int_equal(ice.counters.dropped, 7);
  assert_null(dcmf_ice_peer(&ice));
}

static void test_role_conflict(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage from = make_addr("198.51.100.7", 50000);
  struct dcmf_stun_request req = check(1);
  struct reply r;
  new_ice(&ice, REMOTE_UFRAG);
  req.role = DCMF_STUN_ROLE_CONTROLLED;
  send_req(&r, &ice, sa(&from), &req);
  assert_error(&r, 487);
  assert_int_equal(ice.counters.role_conflicts, 1);
  assert_null(dcmf_ice_peer(&ice));
}

/* The RFC 5769 2.1 request (a controlled peer) gets 487 from a
 * responder holding its credentials. */
static void test_rfc5769_request_role_conflict(void **state) {
  (void)state;
  static const uint8_t pkt[] = {
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
  struct dcmf_ice_settings s = {.local_ufrag = "evtj",
                                .local_pwd = "VOkJxbRl1RmTxUk/WvJxBt",
                                .remote_ufrag = "h6vY"};
  struct dcmf_ice ice;
  struct sockaddr_storage from = make_addr("192.0.2.1", 32853);
  struct reply r;
  assert_int_equal(dcmf_ice_init(&ice, &s), 0);
  feed(&r, &ice, sa(&from), pkt, sizeof(pkt));
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_ERROR);
  assert_int_equal(r.msg.error_code, 487);
  assert_true(verifies(&r, "VOkJxbRl1RmTxUk/WvJxBt"));
}

static void test_bad_requests(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage from = make_addr("198.51.100.7", 50000);
  struct dcmf_stun_writer w;
  uint8_t pkt[256];
  size_t len;
  struct reply r;
  const uint8_t txid[12] = {9};
  const uint8_t *key = (const uint8_t *)LOCAL_PWD;
  const size_t key_len = sizeof(LOCAL_PWD) - 1;
  const char *user = LOCAL_UFRAG ":" REMOTE_UFRAG;
  new_ice(&ice, REMOTE_UFRAG);

  /* Unknown comprehension-required attributes: 420 listing them. */
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), DCMF_STUN_BINDING_REQUEST, txid);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME, user, strlen(user));
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, 1);
  dcmf_stun_writer_add(&w, 0x7F01, NULL, 0);
  dcmf_stun_writer_add(&w, 0xFF01, NULL, 0); /* optional: ignored */
  dcmf_stun_writer_add(&w, 0x0031, NULL, 0);
  dcmf_stun_writer_add_integrity(&w, key, key_len);
  dcmf_stun_writer_add_fingerprint(&w);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_error(&r, 420);
  assert_int_equal(r.msg.listed_unknown_count, 2);
  assert_int_equal(r.msg.listed_unknown[0], 0x7F01);
  assert_int_equal(r.msg.listed_unknown[1], 0x0031);

  /* A malformed PRIORITY: 400 with MI (authentication passed). */
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), DCMF_STUN_BINDING_REQUEST, txid);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME, user, strlen(user));
  dcmf_stun_writer_add_u64(&w, DCMF_STUN_ATTR_PRIORITY, 1);
  dcmf_stun_writer_add_integrity(&w, key, key_len);
  dcmf_stun_writer_add_fingerprint(&w);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_error(&r, 400);

  /* No PRIORITY: 400. */
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), DCMF_STUN_BINDING_REQUEST, txid);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME, user, strlen(user));
  dcmf_stun_writer_add_integrity(&w, key, key_len);
  dcmf_stun_writer_add_fingerprint(&w);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_error(&r, 400);

  /* Both roles claimed: 400. */
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), DCMF_STUN_BINDING_REQUEST, txid);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME, user, strlen(user));
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, 1);
  dcmf_stun_writer_add_u64(&w, DCMF_STUN_ATTR_ICE_CONTROLLING, 1);
  dcmf_stun_writer_add_u64(&w, DCMF_STUN_ATTR_ICE_CONTROLLED, 1);
  dcmf_stun_writer_add_integrity(&w, key, key_len);
  dcmf_stun_writer_add_fingerprint(&w);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_error(&r, 400);

  /* MI but no USERNAME: not authenticated, no answer. */
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), DCMF_STUN_BINDING_REQUEST, txid);
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, 1);
  dcmf_stun_writer_add_integrity(&w, key, key_len);
  dcmf_stun_writer_add_fingerprint(&w);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_unauthenticated(&r);

  /* A MESSAGE-INTEGRITY of the wrong size: not authenticated either. */
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), DCMF_STUN_BINDING_REQUEST, txid);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME, user, strlen(user));
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, 1);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_MESSAGE_INTEGRITY, "short", 5);
  dcmf_stun_writer_add_fingerprint(&w);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_unauthenticated(&r);

  /* An unknown attribute with bad credentials: authentication comes
   * first, so no 420 either. */
  dcmf_stun_writer_init(&w, pkt, sizeof(pkt), DCMF_STUN_BINDING_REQUEST, txid);
  dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME, user, strlen(user));
  dcmf_stun_writer_add(&w, 0x7F01, NULL, 0);
  dcmf_stun_writer_add_integrity(&w, (const uint8_t *)"nope", 4);
  dcmf_stun_writer_add_fingerprint(&w);
  assert_int_equal(dcmf_stun_writer_finish(&w, &len), 0);
  feed(&r, &ice, sa(&from), pkt, len);
  assert_unauthenticated(&r);

  assert_int_equal(ice.counters.unknown_attrs, 1);
  assert_int_equal(ice.counters.bad_requests, 3);
  assert_int_equal(ice.counters.unauthenticated, 3);
  assert_null(dcmf_ice_peer(&ice));
}

static void test_latching(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage b = make_addr("198.51.100.2", 2000);
  struct sockaddr_storage c = make_addr("2001:db8::3", 3000);
  struct dcmf_stun_request plain = check(0), nominate = check(1);
  struct reply r;
  new_ice(&ice, REMOTE_UFRAG);

  /* The first authenticated check latches, even without USE-CANDIDATE. */
  send_req(&r, &ice, sa(&a), &plain);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&a)));
  /* A plain check from elsewhere is answered but does not move it. */
  send_req(&r, &ice, sa(&b), &plain);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  assert_true(dcmf_stun_addr_equal(sa(&r.msg.mapped), sa(&b)));
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&a)));
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&b)));
  /* USE-CANDIDATE from elsewhere re-latches. */
  send_req(&r, &ice, sa(&b), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&b)));
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&b)));
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&a)));
  /* USE-CANDIDATE again from the peer changes nothing. */
  send_req(&r, &ice, sa(&b), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  /* A plain check from the old address does not take it back... */
  send_req(&r, &ice, sa(&a), &plain);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&b)));
  /* ...but a later nomination elsewhere (another family too) does. */
  send_req(&r, &ice, sa(&c), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&c)));
  /* Failed checks never latch. */
  nominate.key = NULL;
  send_req(&r, &ice, sa(&a), &nominate);
  assert_unauthenticated(&r);
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&c)));
  assert_int_equal(ice.counters.latches, 3);
}

/* A nomination that moves the peer keeps the address left for media
 * until media comes from the new peer (RFC 8445 12.1: the controlling
 * side sends on its old pair until its own check completes). */
static void test_previous_peer_until_new_media(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage b = make_addr("198.51.100.2", 2000);
  struct sockaddr_storage c = make_addr("198.51.100.3", 3000);
  struct dcmf_stun_request plain, nominate;
  struct reply r;
  now_ms = 1000;
  new_ice(&ice, REMOTE_UFRAG);
  nominate = check(1);
  send_req(&r, &ice, sa(&a), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  /* Nothing moved yet: no previous peer. */
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), now_ms));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));

  /* The restart's nomination from B: media goes to B, A's still in. */
  now_ms = 1100;
  nominate = check(1);
  send_req(&r, &ice, sa(&b), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&b)));
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&b)));
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&a)));
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&a), now_ms));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));
  /* An address that was never the peer is never let in. */
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&c), now_ms));
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&c)));
  /* A failed check from C changes nothing. */
  plain = check(0);
  plain.key = NULL;
  send_req(&r, &ice, sa(&c), &plain);
  assert_unauthenticated(&r);
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&c), now_ms));
  assert_true(dcmf_ice_next_expiry(&ice) == 1100 + DCMF_ICE_CONSENT_TIMEOUT_MS);

  /* Media from B: A is done with, for good. */
  now_ms = 1200;
  dcmf_ice_note_traffic(&ice, now_ms);
  assert_true(dcmf_ice_next_expiry(&ice) == 1200 + DCMF_ICE_CONSENT_TIMEOUT_MS);
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), now_ms));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), 1201));
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&b)));
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&b)));
}

/* The controlling side sends on a pair once its check succeeded, before
 * it nominates it (RFC 8445 12.1; Chromium after an ICE restart): the
 * checked address is taken media from for DCMF_ICE_ALTERNATE_GRACE_MS
 * after each answered check, without moving the peer or its consent. */
static void test_checked_address(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage b = make_addr("198.51.100.2", 2000);
  struct sockaddr_storage c = make_addr("198.51.100.3", 3000);
  struct dcmf_stun_request plain, nominate;
  struct reply r;
  now_ms = 1000;
  new_ice(&ice, REMOTE_UFRAG);
  /* The first check latches: A is the peer, not a checked address. */
  plain = check(0);
  send_req(&r, &ice, sa(&a), &plain);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), now_ms));

  /* B's check is answered: B may send media, nothing moves. */
  now_ms = 2000;
  plain = check(0);
  send_req(&r, &ice, sa(&b), &plain);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&b)));
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&a)));
  assert_true(dcmf_ice_next_expiry(&ice) == 1000 + DCMF_ICE_CONSENT_TIMEOUT_MS);
  /* Media from the peer does not end it (A's still in flight). */
  dcmf_ice_note_traffic(&ice, 2100);
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&b), 2100));
  /* Until its time runs out; another check starts it again. */
  uint64_t end = 2000 + DCMF_ICE_ALTERNATE_GRACE_MS;
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&b), end - 1));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&b), end));
  now_ms = end + 500;
  plain = check(0);
  send_req(&r, &ice, sa(&b), &plain);
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));

  /* Two checked addresses (two candidates of one restart): C's check
   * keeps B. */
  now_ms += 10;
  plain = check(0);
  send_req(&r, &ice, sa(&c), &plain);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&c), now_ms));
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));

  /* C's nomination: C is the peer, A the previous one; C is no longer a
   * checked address, and media from C ends A's time. */
  now_ms += 10;
  nominate = check(1);
  send_req(&r, &ice, sa(&c), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&c)));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&c), now_ms));
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&a), now_ms));
  dcmf_ice_note_traffic(&ice, now_ms);
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), now_ms));
  /* B, the candidate not nominated, keeps the rest of its time. */
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));
  assert_false(dcmf_ice_is_alternate_source(
      &ice, sa(&b), now_ms + DCMF_ICE_ALTERNATE_GRACE_MS));
}

/* At most DCMF_ICE_CHECKED_MAX checked addresses: one more replaces the
 * one whose time ends first, the others stay. */
static void test_checked_addresses_bounded(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage peer = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage c[DCMF_ICE_CHECKED_MAX + 1];
  struct dcmf_stun_request plain;
  struct reply r;
  now_ms = 1000;
  new_ice(&ice, REMOTE_UFRAG);
  plain = check(0);
  send_req(&r, &ice, sa(&peer), &plain);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  for (int i = 0; i <= DCMF_ICE_CHECKED_MAX; i++) {
    c[i] = make_addr("198.51.100.9", (uint16_t)(2000 + i));
    now_ms += 10;
    plain = check(0);
    send_req(&r, &ice, sa(&c[i]), &plain);
    assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  }
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&c[0]), now_ms));
  for (int i = 1; i <= DCMF_ICE_CHECKED_MAX; i++) {
    assert_true(dcmf_ice_is_alternate_source(&ice, sa(&c[i]), now_ms));
  }
  /* A check again from one already kept takes no other's place. */
  now_ms += 10;
  plain = check(0);
  send_req(&r, &ice, sa(&c[1]), &plain);
  for (int i = 1; i <= DCMF_ICE_CHECKED_MAX; i++) {
    assert_true(dcmf_ice_is_alternate_source(&ice, sa(&c[i]), now_ms));
  }
  /* An ended one's slot is taken first: c[0] again, once c[2..] ended
   * (c[1] was refreshed last), leaves c[1] in. */
  uint64_t c1_end = now_ms + DCMF_ICE_ALTERNATE_GRACE_MS;
  now_ms = c1_end - 5;
  plain = check(0);
  send_req(&r, &ice, sa(&c[0]), &plain);
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&c[0]), now_ms));
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&c[1]), now_ms));
}

/* New local credentials: what was checked under the old pwd is no
 * longer an alternate source. */
static void test_set_local_forgets_checked(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage b = make_addr("198.51.100.2", 2000);
  struct dcmf_stun_request plain;
  struct reply r;
  now_ms = 1000;
  new_ice(&ice, REMOTE_UFRAG);
  plain = check(0);
  send_req(&r, &ice, sa(&a), &plain);
  plain = check(0);
  send_req(&r, &ice, sa(&b), &plain);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));
  assert_int_equal(dcmf_ice_set_local(&ice, "nEwU", "newpasswordnewpassword00"),
                   0);
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));
  /* the peer stays */
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&a)));
}

/* Without media from the new peer the previous one is let in for
 * DCMF_ICE_ALTERNATE_GRACE_MS, never after; there is only ever one. */
static void test_previous_peer_grace(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage b = make_addr("198.51.100.2", 2000);
  struct sockaddr_storage c = make_addr("2001:db8::3", 3000);
  struct dcmf_stun_request nominate;
  struct reply r;
  now_ms = 1000;
  new_ice(&ice, REMOTE_UFRAG);
  nominate = check(1);
  send_req(&r, &ice, sa(&a), &nominate);
  now_ms = 2000;
  nominate = check(1);
  send_req(&r, &ice, sa(&b), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  uint64_t end = 2000 + DCMF_ICE_ALTERNATE_GRACE_MS;
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&a), end - 1));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), end));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), end + 60000));

  /* B to C within the grace: B is the previous peer, A is forgotten. */
  now_ms = 2500;
  nominate = check(1);
  send_req(&r, &ice, sa(&c), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), now_ms));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&c), now_ms));
  /* Back to B: C is the previous one, with a grace of its own. */
  now_ms = 2600;
  nominate = check(1);
  send_req(&r, &ice, sa(&b), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&c), now_ms));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));
  assert_true(dcmf_ice_is_alternate_source(
      &ice, sa(&c), 2600 + DCMF_ICE_ALTERNATE_GRACE_MS - 1));
  assert_false(dcmf_ice_is_alternate_source(
      &ice, sa(&c), 2600 + DCMF_ICE_ALTERNATE_GRACE_MS));
  assert_int_equal(ice.counters.latches, 4);
}

/* Consent lost on the new peer ends the time of both alternate sources,
 * and a latch after the loss is no move: it leaves no previous peer. */
static void test_previous_peer_consent_loss(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage b = make_addr("198.51.100.2", 2000);
  struct sockaddr_storage c = make_addr("198.51.100.3", 3000);
  struct dcmf_ice_settings s = {.local_ufrag = LOCAL_UFRAG,
                                .local_pwd = LOCAL_PWD,
                                .remote_ufrag = REMOTE_UFRAG,
                                .consent_timeout_ms = 500};
  struct dcmf_stun_request nominate;
  struct reply r;
  assert_int_equal(dcmf_ice_init(&ice, &s), 0);
  now_ms = 1000;
  nominate = check(1);
  send_req(&r, &ice, sa(&a), &nominate);
  now_ms = 1100;
  nominate = check(1);
  send_req(&r, &ice, sa(&b), &nominate);
  now_ms = 1200;
  struct dcmf_stun_request plain = check(0);
  send_req(&r, &ice, sa(&c), &plain);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&a), 1599));
  assert_true(dcmf_ice_is_alternate_source(&ice, sa(&c), 1599));
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 1600), 1);
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), 1600));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&c), 1600));
  now_ms = 1700;
  nominate = check(1);
  send_req(&r, &ice, sa(&c), &nominate);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&a), now_ms));
  assert_false(dcmf_ice_is_alternate_source(&ice, sa(&b), now_ms));
}

static void test_consent_expiry(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage b = make_addr("198.51.100.2", 2000);
  struct dcmf_stun_request req;
  struct reply r;
  now_ms = 1000;
  new_ice(&ice, REMOTE_UFRAG);
  assert_true(dcmf_ice_next_expiry(&ice) == UINT64_MAX);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 1000000), 0);

  req = check(1);
  send_req(&r, &ice, sa(&a), &req);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_ice_next_expiry(&ice) == 31000);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 30999), 0);
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&a)));
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 31000), 1);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 31000), 0);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 99000), 0);
  assert_null(dcmf_ice_peer(&ice));
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&a)));
  assert_true(dcmf_ice_next_expiry(&ice) == UINT64_MAX);
  assert_int_equal(ice.counters.consent_losses, 1);
  /* Traffic after the loss does not revive consent. */
  dcmf_ice_note_traffic(&ice, 31001);
  assert_null(dcmf_ice_peer(&ice));

  /* A new authenticated check latches again, even without nomination
   * and from another address. */
  now_ms = 40000;
  req = check(0);
  send_req(&r, &ice, sa(&b), &req);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_ice_next_expiry(&ice) == 70000);
}

static void test_consent_refresh(void **state) {
  (void)state;
  struct reply r;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage b = make_addr("198.51.100.2", 2000);
  struct dcmf_stun_request req;
  now_ms = 0;
  new_ice(&ice, REMOTE_UFRAG);
  req = check(1);
  assert_int_equal(send_req(&r, &ice, sa(&a), &req), DCMF_ICE_RESPOND_LATCHED);
  assert_true(dcmf_ice_next_expiry(&ice) == 30000);

  /* DTLS traffic postpones it. */
  dcmf_ice_note_traffic(&ice, 20000);
  assert_true(dcmf_ice_next_expiry(&ice) == 50000);
  /* Time never runs backwards in the record. */
  dcmf_ice_note_traffic(&ice, 10000);
  assert_true(dcmf_ice_next_expiry(&ice) == 50000);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 30000), 0);

  /* A consent check from the peer postpones it. */
  now_ms = 45000;
  req = check(0);
  assert_int_equal(send_req(&r, &ice, sa(&a), &req), DCMF_ICE_RESPOND);
  assert_true(dcmf_ice_next_expiry(&ice) == 75000);
  /* A check from another address does not. */
  now_ms = 60000;
  assert_int_equal(send_req(&r, &ice, sa(&b), &req), DCMF_ICE_RESPOND);
  assert_true(dcmf_ice_next_expiry(&ice) == 75000);
  /* A failed check from the peer does not either. */
  req.key = NULL;
  send_req(&r, &ice, sa(&a), &req);
  assert_true(dcmf_ice_next_expiry(&ice) == 75000);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 74999), 0);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 75000), 1);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 75001), 0);
}

static void test_consent_timeout_setting(void **state) {
  (void)state;
  struct reply r;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct dcmf_ice_settings s = {.local_ufrag = LOCAL_UFRAG,
                                .local_pwd = LOCAL_PWD,
                                .remote_ufrag = REMOTE_UFRAG,
                                .consent_timeout_ms = 5000};
  struct dcmf_stun_request req;
  now_ms = 100;
  assert_int_equal(dcmf_ice_init(&ice, &s), 0);
  req = check(1);
  send_req(&r, &ice, sa(&a), &req);
  assert_true(dcmf_ice_next_expiry(&ice) == 5100);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, 5100), 1);
}

/* Both sides lite (or the peer does no ICE): only the signalled address
 * is authorized, from the start, and no consent timer runs. */
static void test_remote_lite(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage sig = make_addr("203.0.113.5", 4000);
  struct sockaddr_storage other = make_addr("203.0.113.5", 4001);
  struct dcmf_ice_settings s = {.local_ufrag = LOCAL_UFRAG,
                                .local_pwd = LOCAL_PWD,
                                .remote_addr = sa(&sig),
                                .remote_ice_lite_or_none = 1};
  assert_int_equal(dcmf_ice_init(&ice, &s), 0);
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&sig)));
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&other)));
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&sig)));
  assert_true(dcmf_ice_next_expiry(&ice) == UINT64_MAX);
  dcmf_ice_note_traffic(&ice, 1000);
  assert_int_equal(dcmf_ice_handle_expiry(&ice, UINT64_MAX - 1), 0);
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&sig)));

  /* Without the flag the signalled address alone authorizes nothing. */
  s.remote_ice_lite_or_none = 0;
  assert_int_equal(dcmf_ice_init(&ice, &s), 0);
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&sig)));
  assert_null(dcmf_ice_peer(&ice));
}

/* The peer's address without ICE after the start (an answer): it is the
 * peer and authorized from then on, as if given at init. */
static void test_remote_no_ice_later(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage sig = make_addr("203.0.113.5", 4000);
  struct sockaddr_storage other = make_addr("203.0.113.5", 4001);
  struct dcmf_ice_settings s = {.local_ufrag = LOCAL_UFRAG,
                                .local_pwd = LOCAL_PWD};
  assert_int_equal(dcmf_ice_init(&ice, &s), 0);
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&sig)));
  assert_null(dcmf_ice_peer(&ice));
  assert_int_equal(dcmf_ice_set_remote_no_ice(&ice, NULL), DCMF_ERR_INVALID);
  assert_null(dcmf_ice_peer(&ice));
  assert_int_equal(dcmf_ice_set_remote_no_ice(&ice, sa(&sig)), 0);
  assert_true(dcmf_ice_is_authorized_source(&ice, sa(&sig)));
  assert_false(dcmf_ice_is_authorized_source(&ice, sa(&other)));
  assert_true(dcmf_stun_addr_equal(dcmf_ice_peer(&ice), sa(&sig)));
  assert_true(dcmf_ice_next_expiry(&ice) == UINT64_MAX);
}

static void test_init_errors(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage unix_addr;
  struct dcmf_ice_settings s = {.local_ufrag = LOCAL_UFRAG,
                                .local_pwd = LOCAL_PWD};
  memset(&unix_addr, 0, sizeof(unix_addr));
  unix_addr.ss_family = AF_UNIX;
  s.local_pwd = "short";
  assert_int_equal(dcmf_ice_init(&ice, &s), DCMF_ERR_INVALID);
  s.local_pwd = NULL;
  assert_int_equal(dcmf_ice_init(&ice, &s), DCMF_ERR_INVALID);
  s.local_pwd = LOCAL_PWD;
  s.local_ufrag = "ab:c";
  assert_int_equal(dcmf_ice_init(&ice, &s), DCMF_ERR_INVALID);
  s.local_ufrag = LOCAL_UFRAG;
  s.remote_ufrag = "x";
  assert_int_equal(dcmf_ice_init(&ice, &s), DCMF_ERR_INVALID);
  s.remote_ufrag = NULL;
  s.remote_ice_lite_or_none = 1;
  assert_int_equal(dcmf_ice_init(&ice, &s), DCMF_ERR_INVALID);
  s.remote_addr = sa(&unix_addr);
  assert_int_equal(dcmf_ice_init(&ice, &s), DCMF_ERR_INVALID);
}

static void test_small_output(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct sockaddr_storage a = make_addr("198.51.100.1", 1000);
  struct sockaddr_storage unix_addr;
  struct dcmf_stun_request req = check(1);
  uint8_t pkt[256], out[300];
  size_t len, out_len = 5;
  new_ice(&ice, REMOTE_UFRAG);
  assert_int_equal(dcmf_stun_build_request(pkt, sizeof(pkt), &len, &req), 0);
  memset(out, 0xA5, sizeof(out));
  assert_int_equal(dcmf_ice_recv(&ice, sa(&a), pkt, len, 0, out, 40, &out_len),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(out_len, 0);
  for (size_t i = 40; i < sizeof(out); i++)
    assert_int_equal(out[i], 0xA5);
  assert_null(dcmf_ice_peer(&ice));
  assert_int_equal(ice.counters.requests_ok, 0);

  memset(&unix_addr, 0, sizeof(unix_addr));
  unix_addr.ss_family = AF_UNIX;
  assert_int_equal(dcmf_ice_recv(&ice, sa(&unix_addr), pkt, len, 0, out,
                                 sizeof(out), &out_len),
                   DCMF_ERR_INVALID);
  assert_int_equal(out_len, 0);
}

/* The glue's rate limit, as the engine sees it: a gate that says no
 * while |open| is 0 and counts every time it is asked. */
struct gate {
  int open;
  int asked;
};

static int gate_ask(void *user, const struct sockaddr *from) {
  (void)from;
  struct gate *g = user;
  g->asked++;
  return g->open;
}

/* The gate is asked only for a request that names this session's
 * ufrags, from a source that is not the peer: a stranger who does not
 * know the ufrags drains nothing, and the latched peer's consent checks
 * never wait on it. */
static void test_may_authenticate_gate(void **state) {
  (void)state;
  struct dcmf_ice ice;
  struct gate g = {0, 0};
  struct sockaddr_storage phone = make_addr("198.51.100.7", 50000);
  struct sockaddr_storage stranger = make_addr("198.51.100.9", 40000);
  struct dcmf_ice_settings s = {.local_ufrag = LOCAL_UFRAG,
                                .local_pwd = LOCAL_PWD,
                                .remote_ufrag = REMOTE_UFRAG,
                                .may_authenticate = gate_ask,
                                .may_authenticate_user = &g};
  struct dcmf_stun_request req;
  struct reply r;
  now_ms = 5000;
  assert_int_equal(dcmf_ice_init(&ice, &s), 0);

  req = check(1);
  req.username = "xxxx:" REMOTE_UFRAG; /* does not know our ufrag */
  send_req(&r, &ice, sa(&stranger), &req);
  assert_unauthenticated(&r);
  assert_int_equal(g.asked, 0);

  req = check(1); /* the right names: the gate decides, and says no */
  send_req(&r, &ice, sa(&phone), &req);
  assert_int_equal(r.rc, DCMF_ICE_DROP_LIMITED);
  assert_int_equal(r.len, 0);
  assert_int_equal(g.asked, 1);
  assert_int_equal(ice.counters.limited, 1);
  assert_null(dcmf_ice_peer(&ice));

  g.open = 1; /* room again: the check goes through and latches */
  send_req(&r, &ice, sa(&phone), &req);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND_LATCHED);
  assert_int_equal(g.asked, 2);

  g.open = 0; /* the latched peer is never held up */
  req = check(0);
  send_req(&r, &ice, sa(&phone), &req);
  assert_int_equal(r.rc, DCMF_ICE_RESPOND);
  assert_int_equal(g.asked, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_success),
      cmocka_unit_test(test_remote_no_ice_later),
      cmocka_unit_test(test_set_local_restart),
      cmocka_unit_test(test_success_ipv6),
      cmocka_unit_test(test_unauthenticated),
      cmocka_unit_test(test_may_authenticate_gate),
      cmocka_unit_test(test_remote_ufrag_unknown),
      cmocka_unit_test(test_dropped),
      cmocka_unit_test(test_role_conflict),
      cmocka_unit_test(test_rfc5769_request_role_conflict),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_latching),
      cmocka_unit_test(test_previous_peer_until_new_media),
      cmocka_unit_test(test_previous_peer_grace),
      cmocka_unit_test(test_checked_address),
      cmocka_unit_test(test_checked_addresses_bounded),
      cmocka_unit_test(test_set_local_forgets_checked),
      cmocka_unit_test(test_previous_peer_consent_loss),
      cmocka_unit_test(test_consent_expiry),
      cmocka_unit_test(test_consent_refresh),
      cmocka_unit_test(test_consent_timeout_setting),
      cmocka_unit_test(test_remote_lite),
      cmocka_unit_test(test_init_errors),
      cmocka_unit_test(test_small_output),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
