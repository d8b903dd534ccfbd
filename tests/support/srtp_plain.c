/* The plain libsrtp2 peer of the SRTP tests (srtp_plain.h). */
#include "srtp_plain.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* The longest SRTP packet a test hands over (an MTU-sized datagram). */
#define WIRE_MAX 2048

srtp_t test_plain_srtp(uint16_t profile, const uint8_t *m, int client_side,
                       srtp_ssrc_type_t type, uint32_t ssrc) {
  const struct dcmf_srtp_profile_info *p = dcmf_srtp_profile_find(profile);
  assert_non_null(p);
  uint8_t key[SRTP_MAX_KEY_LEN];
  size_t kl = p->key_len, sl = p->salt_len;
  /* client_write_key | server_write_key | client_salt | server_salt */
  memcpy(key, m + (client_side ? 0 : kl), kl);
  memcpy(key + kl, m + 2 * kl + (client_side ? 0 : sl), sl);
  srtp_policy_t pol;
  memset(&pol, 0, sizeof(pol));
  assert_int_equal(srtp_crypto_policy_set_from_profile_for_rtp(
                       &pol.rtp, (srtp_profile_t)profile),
                   srtp_err_status_ok);
  assert_int_equal(srtp_crypto_policy_set_from_profile_for_rtcp(
                       &pol.rtcp, (srtp_profile_t)profile),
                   srtp_err_status_ok);
  pol.ssrc.type = type;
  pol.ssrc.value = ssrc;
  pol.key = key;
  srtp_t sess = NULL;
  assert_int_equal(srtp_create(&sess, &pol), srtp_err_status_ok);
  return sess;
}

uint16_t test_stack_srtp_material(struct dcmf_dcstack *stack, uint8_t *m) {
  uint16_t id = dcmf_dcstack_srtp_profile(stack);
  const struct dcmf_srtp_profile_info *pi = dcmf_srtp_profile_find(id);
  assert_non_null(pi);
  assert_int_equal(
      dcmf_dcstack_export_keys(stack, "EXTRACTOR-dtls_srtp", m, pi->export_len),
      0);
  return id;
}

int test_plain_srtp_opens_at(struct dcmf_dcstack *stack, int client_side,
                             uint32_t ssrc, uint32_t roc, const uint8_t *wire,
                             size_t len) {
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  uint16_t id = test_stack_srtp_material(stack, m);
  srtp_t rx = test_plain_srtp(id, m, client_side, ssrc_specific, ssrc);
  assert_int_equal(srtp_set_stream_roc(rx, ssrc, roc), srtp_err_status_ok);
  assert_true(len <= WIRE_MAX);
  _Alignas(8) uint8_t copy[WIRE_MAX];
  memcpy(copy, wire, len);
  int n = (int)len;
  int ok = srtp_unprotect(rx, copy, &n) == srtp_err_status_ok;
  srtp_dealloc(rx);
  return ok;
}
