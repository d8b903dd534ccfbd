/*
 * Fuzz target for the RTCP compound engine (dcmf/proto/rtcp.h): the
 * validity checks, the walk, the sender SSRC and the feedback filter
 * toward an RTP/AVP leg, on arbitrary bytes (at most 4096).
 *
 * Invariants (abort on violation):
 *   - a compound valid by RFC 3550 is valid as reduced-size too;
 *   - the walk of a valid compound ends cleanly on its last byte;
 *   - the filter's output is 0 or a compound valid without the
 *     reduced-size flag that starts with SR or RR, is never longer, holds
 *     no RTPFB/PSFB, is exactly the input's other packets in order (the
 *     harness computes them itself), and a second filter leaves it as it
 *     is (same length, same bytes);
 *   - the sender SSRC of a valid compound is the 32 bits after its
 *     header whenever the engine gives one;
 *   - the RTCP endpoint (rtcp_ep.h) takes exactly the compounds valid by
 *     RFC 3550, counts each once, never counts more report blocks than
 *     the compound can hold, and still writes a valid compound after.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_oracle.h"
#include "rtcp.h"
#include "rtcp_ep.h"

#define FUZZ_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_require(int cond) {
  if (!cond)
    abort();
}

/* The packets of a valid compound that are not feedback, concatenated
 * into |out|, read by the harness's own framing; returns the length. */
FUZZ_ORACLE static size_t expected_rest(const uint8_t *b, size_t len,
                                        uint8_t *out) {
  size_t at = 0, n = 0;
  while (at + 4 <= len) {
    size_t plen = ((size_t)b[at + 2] << 8 | b[at + 3]) * 4 + 4;
    if (b[at + 1] != 205 && b[at + 1] != 206) {
      memcpy(out + n, b + at, plen);
      n += plen;
    }
    at += plen;
  }
  return n;
}

FUZZ_ORACLE static int has_feedback(const uint8_t *b, size_t len) {
  for (size_t at = 0; at + 4 <= len;
       at += ((size_t)b[at + 2] << 8 | b[at + 3]) * 4 + 4) {
    if (b[at + 1] == 205 || b[at + 1] == 206) {
      return 1;
    }
  }
  return 0;
}

static void check_endpoint(const uint8_t *b, size_t len, int strict) {
  struct dcmf_rtcp_ep ep;
  dcmf_rtcp_ep_init(&ep, "fuzz", 0, 0, 0);
  uint32_t ours = len >= 12 ? (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 |
                                  (uint32_t)b[10] << 8 | b[11]
                            : 0;
  int rv = dcmf_rtcp_ep_recv(&ep, b, len, ours, 1000);
  const struct dcmf_rtcp_ep_stats *c = dcmf_rtcp_ep_get_stats(&ep);
  fuzz_require((rv == 0) == strict);
  fuzz_require(c->received + c->malformed == 1);
  fuzz_require(c->report_blocks <= len / 24);
  struct dcmf_rtcp_ep_state st = {.ssrc = 1, .have_source = 1};
  uint8_t out[DCMF_RTCP_EP_MAX_PACKET];
  int n = dcmf_rtcp_ep_write(&ep, &st, 10000, 0, out, sizeof(out));
  fuzz_require(n > 0 && dcmf_rtcp_validate(out, (size_t)n, 0) == 0);
}

static void check_walk(const uint8_t *b, size_t len) {
  struct dcmf_rtcp_iter it;
  struct dcmf_rtcp_packet p;
  dcmf_rtcp_iter_init(&it, b, len);
  size_t sum = 0;
  int rv;
  while ((rv = dcmf_rtcp_next(&it, &p)) == 1) {
    fuzz_require(p.data == b + sum && p.len >= 4);
    sum += p.len;
  }
  fuzz_require(rv == 0 && sum == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t buf[FUZZ_MAX], again[FUZZ_MAX], want[FUZZ_MAX];
  if (size > FUZZ_MAX) {
    return 0;
  }
  int strict = dcmf_rtcp_validate(data, size, 0) == 0;
  int rsize = dcmf_rtcp_validate(data, size, DCMF_RTCP_REDUCED_SIZE) == 0;
  fuzz_require(!strict || rsize);
  check_endpoint(data, size, strict);
  uint32_t ssrc = 0;
  if (dcmf_rtcp_sender_ssrc(data, size, &ssrc) == 0) {
    fuzz_require(size >= 8);
    fuzz_require(ssrc == ((uint32_t)data[4] << 24 | (uint32_t)data[5] << 16 |
                          (uint32_t)data[6] << 8 | data[7]));
  }
  if (!rsize) {
    /* the walk still must not read past the end */
    struct dcmf_rtcp_iter it;
    struct dcmf_rtcp_packet p;
    dcmf_rtcp_iter_init(&it, data, size);
    for (int i = 0; i < 1100 && dcmf_rtcp_next(&it, &p) == 1; i++) {
      fuzz_require(p.data + p.len <= data + size);
    }
    return 0;
  }
  check_walk(data, size);
  memcpy(buf, data, size);
  size_t removed = 0;
  size_t n = dcmf_rtcp_strip_feedback(buf, size, &removed);
  fuzz_require(n <= size);
  fuzz_require((removed > 0) == has_feedback(data, size));
  if (n == 0) {
    return 0;
  }
  fuzz_require(dcmf_rtcp_validate(buf, n, 0) == 0);
  fuzz_require(buf[1] == 200 || buf[1] == 201);
  fuzz_require(!has_feedback(buf, n));
  size_t wn = expected_rest(data, size, want);
  fuzz_require(wn == n && memcmp(want, buf, n) == 0);
  if (strict && removed == 0) {
    fuzz_require(n == size); /* nothing to take out: unchanged */
  }
  memcpy(again, buf, n);
  size_t removed2 = 1;
  fuzz_require(dcmf_rtcp_strip_feedback(again, n, &removed2) == n);
  fuzz_require(removed2 == 0 && memcmp(again, buf, n) == 0);
  return 0;
}
