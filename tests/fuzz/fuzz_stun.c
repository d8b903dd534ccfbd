/*
 * Fuzz target for the STUN codec and the ICE-lite responder. The input is
 * one datagram. It is parsed and checked with the codec, then fed to
 * responders holding the RFC 5769 credentials (local ufrag "evtj", pwd
 * "VOkJxbRl1RmTxUk/WvJxBt", remote ufrag "h6vY" known or not) from an
 * IPv4 and an IPv6 source, with a roomy and a tight output buffer.
 * Invariants are checked with abort() so the fuzzer reports them:
 * output never exceeds its capacity, every response parses with a valid
 * FINGERPRINT and echoes the transaction id, and every success response
 * verifies with our pwd and maps to the source address.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ice.h"
#include "stun.h"

#define FUZZ_LOCAL_UFRAG "evtj"
#define FUZZ_REMOTE_UFRAG "h6vY"
#define FUZZ_PWD "VOkJxbRl1RmTxUk/WvJxBt"
#define FUZZ_PWD_LEN (sizeof(FUZZ_PWD) - 1)
#define FUZZ_OUT_MAX 1500
#define FUZZ_CANARY 0xA5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_require(int cond) {
  if (!cond)
    abort();
}

/* Checks what the parser claims about |data| against its size. */
static void fuzz_codec(const uint8_t *data, size_t size) {
  struct dcmf_stun_msg msg;
  int mi, fp;
  if (dcmf_stun_parse(&msg, data, size) != 0)
    return;
  fuzz_require(msg.len == size && size >= DCMF_STUN_HEADER_LEN);
  fuzz_require(msg.unknown_count <= DCMF_STUN_UNKNOWN_MAX);
  fuzz_require(msg.listed_unknown_count <= DCMF_STUN_UNKNOWN_MAX);
  if (msg.present & DCMF_STUN_HAS_USERNAME)
    fuzz_require(msg.username >= data &&
                 msg.username + msg.username_len <= data + size &&
                 msg.username_len <= DCMF_STUN_USERNAME_MAX);
  if (msg.present & DCMF_STUN_HAS_MESSAGE_INTEGRITY)
    fuzz_require(msg.mi_offset + 4 + DCMF_STUN_MI_LEN <= size);
  if (msg.present & DCMF_STUN_HAS_FINGERPRINT)
    fuzz_require(msg.fingerprint_offset + 8 == size);
  mi = dcmf_stun_check_integrity(&msg, (const uint8_t *)FUZZ_PWD, FUZZ_PWD_LEN);
  fp = dcmf_stun_check_fingerprint(&msg);
  /* A verified mapped address survives a rebuild. */
  if (mi == 0 && fp == 0 && (msg.present & DCMF_STUN_HAS_XOR_MAPPED_ADDRESS)) {
    uint8_t out[128];
    size_t len;
    struct dcmf_stun_msg back;
    fuzz_require(dcmf_stun_build_success(out, sizeof(out), &len, msg.txid,
                                         (const struct sockaddr *)&msg.mapped,
                                         (const uint8_t *)FUZZ_PWD,
                                         FUZZ_PWD_LEN) == 0);
    fuzz_require(dcmf_stun_parse(&back, out, len) == 0);
    fuzz_require(dcmf_stun_check_fingerprint(&back) == 0);
    fuzz_require(dcmf_stun_addr_equal((const struct sockaddr *)&back.mapped,
                                      (const struct sockaddr *)&msg.mapped));
  }
}

/* Checks the response |out| (|len| bytes) to |req| sent from |from|. */
static void fuzz_response(const struct dcmf_ice *ice, int rc,
                          const struct sockaddr *from, const uint8_t *req,
                          const uint8_t *out, size_t len) {
  struct dcmf_stun_msg msg;
  fuzz_require(len > 0);
  fuzz_require(dcmf_stun_parse(&msg, out, len) == 0);
  fuzz_require(dcmf_stun_check_fingerprint(&msg) == 0);
  fuzz_require(memcmp(msg.txid, req + 8, DCMF_STUN_TXID_LEN) == 0);
  if (msg.type == DCMF_STUN_BINDING_SUCCESS) {
    fuzz_require(rc == DCMF_ICE_RESPOND || rc == DCMF_ICE_RESPOND_LATCHED);
    fuzz_require(dcmf_stun_check_integrity(&msg, (const uint8_t *)FUZZ_PWD,
                                           FUZZ_PWD_LEN) == 0);
    fuzz_require(
        dcmf_stun_addr_equal((const struct sockaddr *)&msg.mapped, from));
  } else {
    fuzz_require(msg.type == DCMF_STUN_BINDING_ERROR);
    fuzz_require(rc == DCMF_ICE_RESPOND_ERROR);
    /* No 401: nothing is answered before authentication, so every error
     * carries MESSAGE-INTEGRITY. */
    fuzz_require(msg.error_code == 400 || msg.error_code == 420 ||
                 msg.error_code == 487);
    fuzz_require(dcmf_stun_check_integrity(&msg, (const uint8_t *)FUZZ_PWD,
                                           FUZZ_PWD_LEN) == 0);
  }
  if (rc == DCMF_ICE_RESPOND_LATCHED) {
    fuzz_require(msg.type == DCMF_STUN_BINDING_SUCCESS);
    fuzz_require(dcmf_stun_addr_equal(dcmf_ice_peer(ice), from));
    fuzz_require(dcmf_ice_is_authorized_source(ice, from));
  }
}

static void fuzz_responder(const uint8_t *data, size_t size,
                           const char *remote_ufrag,
                           const struct sockaddr *from, size_t cap) {
  struct dcmf_ice_settings s = {.local_ufrag = FUZZ_LOCAL_UFRAG,
                                .local_pwd = FUZZ_PWD,
                                .remote_ufrag = remote_ufrag};
  struct dcmf_ice ice;
  uint8_t out[FUZZ_OUT_MAX + 16];
  size_t len = 1;
  int rc;
  fuzz_require(dcmf_ice_init(&ice, &s) == 0);
  memset(out, FUZZ_CANARY, sizeof(out));
  rc = dcmf_ice_recv(&ice, from, data, size, 1000, out, cap, &len);
  fuzz_require(len <= cap);
  for (size_t i = cap; i < sizeof(out); i++)
    fuzz_require(out[i] == FUZZ_CANARY);
  /* One packet to a new engine latches at most: nothing moved, so no
   * alternate source (ice.h, "Changes of pair"). */
  fuzz_require(!dcmf_ice_is_alternate_source(&ice, from, 1000));
  if (rc == DCMF_ICE_DROP_UNAUTHENTICATED)
    fuzz_require(len == 0 && dcmf_ice_peer(&ice) == NULL);
  else if (rc > 0)
    fuzz_response(&ice, rc, from, data, out, len);
  else
    fuzz_require(len == 0 && dcmf_ice_peer(&ice) == NULL);
  /* Consent runs out exactly once, 30 s after a latch. */
  if (dcmf_ice_peer(&ice) != NULL) {
    fuzz_require(dcmf_ice_next_expiry(&ice) == 31000);
    fuzz_require(dcmf_ice_handle_expiry(&ice, 30999) == 0);
    fuzz_require(dcmf_ice_handle_expiry(&ice, 31000) == 1);
    fuzz_require(dcmf_ice_handle_expiry(&ice, 31000) == 0);
    fuzz_require(dcmf_ice_peer(&ice) == NULL);
  } else {
    fuzz_require(dcmf_ice_handle_expiry(&ice, UINT64_MAX) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
  memset(&v4, 0, sizeof(v4));
  v4.sin_family = AF_INET;
  v4.sin_port = htons(32853);
  v4.sin_addr.s_addr = htonl(0xC0000201); /* 192.0.2.1 */
  memset(&v6, 0, sizeof(v6));
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(32853);
  v6.sin6_addr.s6_addr[0] = 0x20;
  v6.sin6_addr.s6_addr[1] = 0x01;
  v6.sin6_addr.s6_addr[2] = 0x0d;
  v6.sin6_addr.s6_addr[3] = 0xb8;
  v6.sin6_addr.s6_addr[15] = 0x01;

  fuzz_codec(data, size);
  fuzz_responder(data, size, FUZZ_REMOTE_UFRAG, (const struct sockaddr *)&v4,
                 FUZZ_OUT_MAX);
  fuzz_responder(data, size, NULL, (const struct sockaddr *)&v6, FUZZ_OUT_MAX);
  /* Too small for any success (64 bytes over IPv4) or most errors. */
  fuzz_responder(data, size, FUZZ_REMOTE_UFRAG, (const struct sockaddr *)&v4,
                 48);
  return 0;
}
