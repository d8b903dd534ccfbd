/*
 * The BFCP COMMON-HEADER and TCP framer (dcmf/proto/bfcp.h), on headers
 * the test writes bit by bit from the figure of RFC 8855 §5.1: fields,
 * the version each transport permits, R and F over TCP, the fragment
 * fields over UDP, and the framer at every split point, one byte at a
 * time, with a length beyond its bound and a bad version mid-stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bfcp.h"
#include "errors.h"

/* Writes a header by hand: Ver|R|F|Res, primitive, length, conference,
 * transaction, user; then |payload_units| * 4 payload bytes of |fill|. */
static size_t msg(uint8_t *out, int ver, int r, int f, int res,
                  uint8_t primitive, uint16_t payload_units, uint32_t conf,
                  uint16_t tid, uint16_t uid, uint8_t fill) {
  out[0] = (uint8_t)(ver << 5 | r << 4 | f << 3 | res);
  out[1] = primitive;
  out[2] = (uint8_t)(payload_units >> 8);
  out[3] = (uint8_t)payload_units;
  out[4] = (uint8_t)(conf >> 24);
  out[5] = (uint8_t)(conf >> 16);
  out[6] = (uint8_t)(conf >> 8);
  out[7] = (uint8_t)conf;
  out[8] = (uint8_t)(tid >> 8);
  out[9] = (uint8_t)tid;
  out[10] = (uint8_t)(uid >> 8);
  out[11] = (uint8_t)uid;
  memset(out + 12, fill, (size_t)payload_units * 4);
  return 12 + (size_t)payload_units * 4;
}

static void test_header(void **state) {
  (void)state;
  uint8_t b[64];
  struct dcmf_bfcp_header h;
  /* FloorRequest (1), 2 words of payload */
  size_t n = msg(b, 1, 0, 0, 0, 1, 2, 0x01020304u, 0x0506, 0x0708, 0xaa);
  assert_int_equal(n, 20);
  assert_int_equal(dcmf_bfcp_parse_header(b, n, DCMF_BFCP_RELIABLE, &h), 0);
  assert_int_equal(h.version, 1);
  assert_false(h.r);
  assert_false(h.f);
  assert_int_equal(h.primitive, 1);
  assert_int_equal(h.payload_len, 2);
  assert_int_equal(h.conference_id, 0x01020304u);
  assert_int_equal(h.transaction_id, 0x0506);
  assert_int_equal(h.user_id, 0x0708);
  assert_int_equal(h.header_len, 12);
  assert_int_equal(h.message_len, 20);
  /* the header alone is enough to read it */
  assert_int_equal(dcmf_bfcp_parse_header(b, 12, DCMF_BFCP_RELIABLE, &h), 0);
  assert_int_equal(dcmf_bfcp_parse_header(b, 11, DCMF_BFCP_RELIABLE, &h),
                   DCMF_ERR_MALFORMED);
  /* written back, the same 12 bytes */
  assert_int_equal(dcmf_bfcp_parse_header(b, n, DCMF_BFCP_RELIABLE, &h), 0);
  uint8_t w[12];
  dcmf_bfcp_write_header(&h, w);
  assert_memory_equal(w, b, 12);
  /* Res bits are ignored */
  msg(b, 1, 0, 0, 7, 11, 0, 9, 10, 11, 0);
  assert_int_equal(dcmf_bfcp_parse_header(b, 12, DCMF_BFCP_RELIABLE, &h), 0);
  assert_int_equal(h.primitive, 11);
  assert_int_equal(h.message_len, 12);
}

static void test_versions(void **state) {
  (void)state;
  uint8_t b[64];
  struct dcmf_bfcp_header h;
  for (int v = 0; v < 8; v++) {
    msg(b, v, 0, 0, 0, 1, 0, 1, 1, 1, 0);
    assert_int_equal(dcmf_bfcp_parse_header(b, 12, DCMF_BFCP_RELIABLE, &h),
                     v == 1 ? 0 : DCMF_ERR_INVALID);
    assert_int_equal(dcmf_bfcp_parse_header(b, 12, DCMF_BFCP_UNRELIABLE, &h),
                     v == 2 ? 0 : DCMF_ERR_INVALID);
    assert_int_equal(h.version, v);
  }
}

static void test_r_and_f(void **state) {
  (void)state;
  uint8_t b[64];
  struct dcmf_bfcp_header h;
  /* over TCP, R and F are ignored: the header stays 12 octets */
  msg(b, 1, 1, 1, 0, 4, 1, 1, 2, 3, 0x55);
  assert_int_equal(dcmf_bfcp_parse_header(b, 16, DCMF_BFCP_RELIABLE, &h), 0);
  assert_true(h.r);
  assert_true(h.f);
  assert_int_equal(h.header_len, 12);
  assert_int_equal(h.message_len, 16);
  /* over UDP, F brings the fragment fields */
  msg(b, 2, 1, 1, 0, 4, 3, 1, 2, 3, 0);
  b[12] = 0x00;
  b[13] = 0x05;
  b[14] = 0x00;
  b[15] = 0x02;
  assert_int_equal(dcmf_bfcp_parse_header(b, 16, DCMF_BFCP_UNRELIABLE, &h), 0);
  assert_int_equal(h.header_len, 16);
  assert_int_equal(h.frag_offset, 5);
  assert_int_equal(h.frag_len, 2);
  assert_int_equal(dcmf_bfcp_parse_header(b, 15, DCMF_BFCP_UNRELIABLE, &h),
                   DCMF_ERR_MALFORMED);
  msg(b, 2, 0, 0, 0, 4, 3, 1, 2, 3, 0);
  assert_int_equal(dcmf_bfcp_parse_header(b, 12, DCMF_BFCP_UNRELIABLE, &h), 0);
  assert_int_equal(h.header_len, 12);
}

struct got {
  uint8_t bytes[512];
  size_t len;
  uint16_t tid;
};

/* Feeds |len| bytes in pieces of |piece| (0: at once); records messages;
 * returns their count or the framer's error. */
static int run(const uint8_t *data, size_t len, size_t piece, size_t bound,
               struct got *out, size_t max) {
  struct dcmf_bfcp_framer f;
  assert_int_equal(dcmf_bfcp_framer_init(&f, bound), 0);
  size_t at = 0, count = 0;
  int rv = 0;
  while (at < len && rv >= 0) {
    size_t n = piece == 0 || piece > len - at ? len - at : piece;
    rv = dcmf_bfcp_framer_feed(&f, data + at, n);
    if (rv < 0) {
      break;
    }
    at += (size_t)rv;
    const uint8_t *m;
    size_t ml;
    struct dcmf_bfcp_header h;
    while ((rv = dcmf_bfcp_framer_next(&f, &m, &ml, &h)) == 1) {
      assert_true(count < max && ml <= sizeof(out[0].bytes));
      memcpy(out[count].bytes, m, ml);
      out[count].len = ml;
      out[count].tid = h.transaction_id;
      count++;
    }
  }
  dcmf_bfcp_framer_free(&f);
  return rv < 0 ? rv : (int)count;
}

static void test_framer(void **state) {
  (void)state;
  uint8_t stream[512];
  size_t len = 0;
  len += msg(stream + len, 1, 0, 0, 0, 1, 5, 77, 1, 9, 0x11);  /* 32 */
  len += msg(stream + len, 1, 0, 1, 0, 11, 0, 77, 2, 9, 0x22); /* Hello, F */
  len += msg(stream + len, 1, 0, 0, 0, 4, 40, 77, 3, 9, 0x33); /* 172 */
  struct got whole[4], got[4];
  assert_int_equal(run(stream, len, 0, 1024, whole, 4), 3);
  assert_int_equal(whole[0].len, 32);
  assert_int_equal(whole[1].len, 12);
  assert_int_equal(whole[2].len, 172);
  assert_int_equal(whole[2].tid, 3);
  assert_memory_equal(whole[0].bytes, stream, 32);
  assert_memory_equal(whole[2].bytes, stream + 44, 172);
  for (size_t piece = 1; piece <= len; piece++) {
    assert_int_equal(run(stream, len, piece, 1024, got, 4), 3);
    for (int i = 0; i < 3; i++) {
      assert_int_equal(got[i].len, whole[i].len);
      assert_memory_equal(got[i].bytes, whole[i].bytes, whole[i].len);
    }
  }
  /* a message exactly at the bound passes; one word more does not */
  assert_int_equal(run(stream, len, 1, 172, got, 4), 3);
  assert_int_equal(run(stream, len, 7, 171, got, 4), DCMF_ERR_TOO_LARGE);
  /* the longest length field against a small bound, its header split */
  uint8_t huge[12];
  msg(huge, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0);
  huge[2] = 0xff;
  huge[3] = 0xff;
  assert_int_equal(run(huge, 12, 1, 4096, got, 4), DCMF_ERR_TOO_LARGE);
  /* version 2 mid-stream stops the framer after the good message */
  stream[32] = (uint8_t)(2 << 5);
  struct dcmf_bfcp_framer f;
  assert_int_equal(dcmf_bfcp_framer_init(&f, 1024), 0);
  assert_int_equal(dcmf_bfcp_framer_feed(&f, stream, len), (int)len);
  const uint8_t *m;
  size_t ml;
  struct dcmf_bfcp_header h;
  assert_int_equal(dcmf_bfcp_framer_next(&f, &m, &ml, &h), 1);
  assert_int_equal(dcmf_bfcp_framer_next(&f, &m, &ml, &h), DCMF_ERR_INVALID);
  assert_int_equal(dcmf_bfcp_framer_next(&f, &m, &ml, &h), DCMF_ERR_INVALID);
  assert_int_equal(dcmf_bfcp_framer_feed(&f, stream, 1), DCMF_ERR_INVALID);
  dcmf_bfcp_framer_free(&f);
  /* the framer takes no more than one message's worth at a time */
  assert_int_equal(dcmf_bfcp_framer_init(&f, 20), 0);
  assert_int_equal(dcmf_bfcp_framer_feed(&f, stream, len), 20);
  assert_int_equal(dcmf_bfcp_framer_next(&f, &m, &ml, &h), DCMF_ERR_TOO_LARGE);
  dcmf_bfcp_framer_free(&f);
  assert_int_equal(dcmf_bfcp_framer_init(&f, 11), DCMF_ERR_INVALID);
  assert_int_equal(dcmf_bfcp_framer_init(&f, DCMF_BFCP_MAX_MESSAGE + 1),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_bfcp_framer_init(&f, DCMF_BFCP_MAX_MESSAGE), 0);
  dcmf_bfcp_framer_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header),
      cmocka_unit_test(test_versions),
      cmocka_unit_test(test_r_and_f),
      cmocka_unit_test(test_framer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
