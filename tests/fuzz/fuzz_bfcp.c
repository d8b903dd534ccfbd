/*
 * Fuzz target for the BFCP COMMON-HEADER and TCP framer
 * (dcmf/proto/bfcp.h). The input's first byte gives a piece size and a
 * bound; the rest is a TCP byte stream.
 *
 * Invariants (abort on violation):
 *   - the header parser agrees with the harness's own reading of the
 *     bits (RFC 8855 §5.1), takes version 1 only over TCP and 2 only
 *     over UDP, and its 12 octets written back are the input with Res
 *     cleared;
 *   - the framer fed in pieces and all at once yields the same messages
 *     and the same error; the messages are consecutive slices of the
 *     stream from its start, each 12 + 4 * its length field octets, none
 *     beyond the bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bfcp.h"
#include "errors.h"
#include "fuzz_oracle.h"

#define FUZZ_MAX 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_require(int cond) {
  if (!cond)
    abort();
}

struct run {
  size_t n, total;
  int err;
};

static void frame(const uint8_t *s, size_t len, size_t piece, size_t bound,
                  struct run *r) {
  struct dcmf_bfcp_framer f;
  fuzz_require(dcmf_bfcp_framer_init(&f, bound) == 0);
  size_t at = 0;
  int rv = 0;
  memset(r, 0, sizeof(*r));
  while (at < len && rv >= 0) {
    size_t n = piece == 0 || piece > len - at ? len - at : piece;
    rv = dcmf_bfcp_framer_feed(&f, s + at, n);
    if (rv < 0) {
      break;
    }
    at += (size_t)rv;
    const uint8_t *m;
    size_t ml;
    struct dcmf_bfcp_header h;
    while ((rv = dcmf_bfcp_framer_next(&f, &m, &ml, &h)) == 1) {
      fuzz_require(ml == 12 + 4 * (size_t)(m[2] << 8 | m[3]));
      fuzz_require(ml <= bound && (m[0] >> 5) == 1);
      fuzz_require(r->total + ml <= len &&
                   memcmp(m, s + r->total, ml) == 0);
      r->total += ml;
      r->n++;
    }
  }
  r->err = rv < 0 ? rv : 0;
  dcmf_bfcp_framer_free(&f);
}

FUZZ_ORACLE static void check_header(const uint8_t *b, size_t len) {
  struct dcmf_bfcp_header h;
  int rel = dcmf_bfcp_parse_header(b, len, DCMF_BFCP_RELIABLE, &h);
  if (len < 12) {
    fuzz_require(rel == DCMF_ERR_MALFORMED);
    return;
  }
  int ver = b[0] >> 5;
  fuzz_require(rel == (ver == 1 ? 0 : DCMF_ERR_INVALID));
  fuzz_require(h.version == ver && h.r == ((b[0] >> 4) & 1) &&
               h.f == ((b[0] >> 3) & 1) && h.primitive == b[1] &&
               h.payload_len == (b[2] << 8 | b[3]) &&
               h.conference_id == ((uint32_t)b[4] << 24 |
                                   (uint32_t)b[5] << 16 |
                                   (uint32_t)b[6] << 8 | b[7]) &&
               h.transaction_id == (b[8] << 8 | b[9]) &&
               h.user_id == (b[10] << 8 | b[11]) && h.header_len == 12);
  uint8_t w[12];
  dcmf_bfcp_write_header(&h, w);
  fuzz_require(w[0] == (b[0] & 0xf8) && memcmp(w + 1, b + 1, 11) == 0);
  int unrel = dcmf_bfcp_parse_header(b, len, DCMF_BFCP_UNRELIABLE, &h);
  if (ver != 2) {
    fuzz_require(unrel == DCMF_ERR_INVALID);
  } else if (h.f) {
    fuzz_require(unrel == (len >= 16 ? 0 : DCMF_ERR_MALFORMED));
    fuzz_require(unrel != 0 || (h.header_len == 16 &&
                                h.frag_offset == (b[12] << 8 | b[13]) &&
                                h.frag_len == (b[14] << 8 | b[15])));
  } else {
    fuzz_require(unrel == 0 && h.header_len == 12);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > FUZZ_MAX) {
    return 0;
  }
  size_t piece = 1 + (data[0] & 15);
  size_t bound = 12 + (size_t)(data[0] >> 4) * 64;
  const uint8_t *s = data + 1;
  size_t len = size - 1;
  check_header(s, len);
  struct run a, b;
  frame(s, len, piece, bound, &a);
  frame(s, len, 0, bound, &b);
  fuzz_require(a.n == b.n && a.total == b.total && a.err == b.err);
  if (a.err == 0) {
    fuzz_require(len - a.total < bound); /* the rest: a message begun */
  }
  return 0;
}
