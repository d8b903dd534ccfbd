/*
 * Fuzz target for SRTP and SRTCP unprotect (dcmf/proto/srtp.h), with two
 * engines of opposite roles made from fixed keying material for each
 * input, and differential: every input runs once on each backend
 * (OpenSSL EVP and libsrtp2), and both runs must give the same verdict
 * for every call and the same bytes for every packet that passed.
 *
 * Input: byte 0 selects, the rest is a packet (at most 2048 bytes).
 *   sel & 3:  the profile (GCM-256, GCM-128, CM_80, CM_32);
 *   sel & 4:  RTCP rather than RTP;
 *   sel & 8:  round trip: the client protects the packet, the server
 *             unprotects it, then gets it again and a copy with the bit
 *             chosen by the next byte flipped;
 *             otherwise the packet goes to the server's unprotect as it is;
 *   sel & 16: first make the server know the packet's SSRC (a good packet
 *             of that SSRC, RTP: with the sequence number before, goes
 *             through), so the known-stream paths run;
 *   sel & 32: then re-key both under the same profile (new material), so
 *             that the server holds the client's previous keys as a
 *             fallback (srtp.h) and every refused SRTP packet is tried
 *             under them too; with sel & 64, the client first protects
 *             the packet under the old keys, and it reaches the server
 *             last (an old-key packet in flight at the switch); with
 *             sel & 128 the server drops the fallback before the packet.
 * Invariants (abort on violation): no raw input is accepted unless it
 * authenticates (never in practice) and then it shrinks; every packet is
 * counted exactly once in its direction; a protected packet grows by the
 * profile's trailer and comes back byte for byte; a replay is refused as
 * one; a flipped bit is refused; nothing is refused as "failed" (no
 * memory is never the fuzzer's doing); packets passed under the previous
 * keys are among those counted as passed; the two backends' traces (each
 * call's result, and the bytes out of each call that passed) are equal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "srtp.h"

#define FUZZ_MAX 2048
#define FUZZ_CAP (FUZZ_MAX + DCMF_SRTP_TRAILER_ROOM)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fbuf {
  _Alignas(4) uint8_t b[FUZZ_CAP];
};

static const enum dcmf_srtp_profile fuzz_profiles[4] = {
    DCMF_SRTP_AEAD_AES_256_GCM, DCMF_SRTP_AEAD_AES_128_GCM,
    DCMF_SRTP_AES128_CM_SHA1_80, DCMF_SRTP_AES128_CM_SHA1_32};

static void fuzz_require(int cond) {
  if (!cond)
    abort();
}

/* What one backend's run did, call by call: the result, and the bytes
 * out of a call that passed. Calls per input are few (at most 6). */
#define TRACE_MAX (8 * (FUZZ_CAP + 16))
struct trace {
  uint8_t log[TRACE_MAX];
  size_t len;
};

static void fuzz_note_bytes(struct trace *t, const void *p, size_t n) {
  fuzz_require(n <= TRACE_MAX - t->len);
  memcpy(t->log + t->len, p, n);
  t->len += n;
}

static void note(struct trace *t, int rc, const uint8_t *b, size_t n) {
  if (rc != 0) {
    n = 0; /* a refused packet's bytes are undefined (srtp.h) */
  }
  fuzz_note_bytes(t, &rc, sizeof(rc));
  fuzz_note_bytes(t, &n, sizeof(n));
  if (n > 0)
    fuzz_note_bytes(t, b, n);
}

/* One backend's run: where its calls are noted. */
struct run {
  struct trace *t;
};

static uint64_t counted(const struct dcmf_srtp *e, enum dcmf_srtp_dir dir) {
  const struct dcmf_srtp_stats *st = dcmf_srtp_stats(e, dir);
  fuzz_require(st->failed == 0);
  fuzz_require(st->previous <= st->rtp);
  return st->rtp + st->rtcp + st->auth + st->replay + st->malformed;
}

static int fuzz_protect(struct run *r, struct dcmf_srtp *e, int rtcp,
                        uint8_t *b, size_t len, size_t *out) {
  size_t n = 0;
  int rc = rtcp ? dcmf_srtp_protect_rtcp(e, b, len, FUZZ_CAP, &n)
                : dcmf_srtp_protect_rtp(e, b, len, FUZZ_CAP, &n);
  note(r->t, rc, b, n);
  *out = n;
  return rc;
}

static int fuzz_unprotect(struct run *r, struct dcmf_srtp *e, int rtcp,
                          uint8_t *b, size_t len, size_t *out) {
  size_t n = 0;
  int rc = rtcp ? dcmf_srtp_unprotect_rtcp(e, b, len, &n)
                : dcmf_srtp_unprotect_rtp(e, b, len, &n);
  note(r->t, rc, b, n);
  *out = n;
  return rc;
}

/* Sends a good packet of the SSRC in |pkt| (if it has one) client to
 * server, so the server holds a stream for it. */
static void fuzz_prime(struct run *r, struct dcmf_srtp *c, struct dcmf_srtp *s,
                       int rtcp, const uint8_t *pkt, size_t len) {
  static struct fbuf g;
  size_t n;
  if (len < 12)
    return;
  memset(g.b, 0, 12);
  g.b[0] = 0x80;
  g.b[1] = rtcp ? 200 : 0;
  /* RTP: the sequence number before the packet's, so that the packet
   * itself is new to the stream. */
  uint16_t seq = (uint16_t)(((pkt[2] << 8) | pkt[3]) - 1);
  g.b[2] = (uint8_t)(seq >> 8);
  g.b[3] = (uint8_t)seq;
  memcpy(g.b + (rtcp ? 4 : 8), pkt + (rtcp ? 4 : 8), 4); /* the SSRC */
  if (fuzz_protect(r, c, rtcp, g.b, 12, &n) == 0)
    fuzz_require(fuzz_unprotect(r, s, rtcp, g.b, n, &n) == 0);
}

static void fuzz_round_trip(struct run *r, struct dcmf_srtp *c,
                            struct dcmf_srtp *s, int rtcp, const uint8_t *pkt,
                            size_t len, uint8_t flip) {
  static struct fbuf p, wire;
  size_t n, plain;
  const struct dcmf_srtp_profile_info *info =
      dcmf_srtp_profile_find((uint16_t)dcmf_srtp_profile(c));
  memcpy(p.b, pkt, len);
  uint64_t before = counted(c, DCMF_SRTP_OUT);
  int rc = fuzz_protect(r, c, rtcp, p.b, len, &n);
  fuzz_require(counted(c, DCMF_SRTP_OUT) == before + 1);
  if (rc != 0) {
    fuzz_require(rc == DCMF_ERR_MALFORMED || rc == DCMF_ERR_REPLAY);
    return;
  }
  fuzz_require(n == len + (rtcp ? 4 + info->rtcp_tag_len : info->rtp_tag_len));
  wire = p;
  fuzz_require(fuzz_unprotect(r, s, rtcp, p.b, n, &plain) == 0);
  fuzz_require(plain == len && memcmp(p.b, pkt, len) == 0);
  p = wire;
  fuzz_require(fuzz_unprotect(r, s, rtcp, p.b, n, &plain) == DCMF_ERR_REPLAY);
  p = wire;
  p.b[(flip >> 3) % n] ^= (uint8_t)(1u << (flip & 7));
  fuzz_require(fuzz_unprotect(r, s, rtcp, p.b, n, &plain) != 0);
}

/* One input on |backend|, its calls noted in |t|. */
static void fuzz_one(enum dcmf_srtp_backend backend, struct trace *t,
                     const uint8_t *data, size_t size) {
  static struct fbuf p;
  struct dcmf_srtp *c, *s;
  struct run run = {.t = t}, *r = &run;
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  t->len = 0;
  uint8_t sel = data[0];
  enum dcmf_srtp_profile prof = fuzz_profiles[sel & 3];
  int rtcp = (sel & 4) != 0;
  size_t elen = dcmf_srtp_profile_find((uint16_t)prof)->export_len;
  for (size_t i = 0; i < elen; i++)
    m[i] = (uint8_t)(i * 13 + 5);
  fuzz_require(
      dcmf_srtp_new_with(&c, backend, prof, m, elen, DCMF_SRTP_CLIENT) == 0);
  fuzz_require(
      dcmf_srtp_new_with(&s, backend, prof, m, elen, DCMF_SRTP_SERVER) == 0);
  data++;
  size--;
  uint8_t flip = 0;
  if ((sel & 8) && size > 0) {
    flip = data[0];
    data++;
    size--;
  }
  if (size > FUZZ_MAX)
    size = FUZZ_MAX;
  if (sel & 16)
    fuzz_prime(r, c, s, rtcp, data, size);
  static struct fbuf held;
  size_t held_len = 0;
  if (sel & 32) {
    if (sel & 64) {
      memcpy(held.b, data, size);
      if (fuzz_protect(r, c, rtcp, held.b, size, &held_len) != 0)
        held_len = 0;
    }
    for (size_t i = 0; i < elen; i++)
      m[i] = (uint8_t)(i * 7 + 11);
    fuzz_require(dcmf_srtp_rekey(c, prof, m, elen, DCMF_SRTP_CLIENT) == 0);
    fuzz_require(dcmf_srtp_rekey(s, prof, m, elen, DCMF_SRTP_SERVER) == 0);
    fuzz_require(dcmf_srtp_has_previous(s));
    if (sel & 128)
      fuzz_require(dcmf_srtp_drop_previous(s) == 0);
  }
  if (sel & 8) {
    fuzz_round_trip(r, c, s, rtcp, data, size, flip);
  } else {
    size_t n = 0;
    uint64_t before = counted(s, DCMF_SRTP_IN);
    memcpy(p.b, data, size);
    int rc = fuzz_unprotect(r, s, rtcp, p.b, size, &n);
    fuzz_require(counted(s, DCMF_SRTP_IN) == before + 1);
    fuzz_require(rc == 0 || rc == DCMF_ERR_MALFORMED || rc == DCMF_ERR_AUTH ||
                 rc == DCMF_ERR_REPLAY);
    if (rc == 0)
      fuzz_require(n < size);
  }
  if (held_len > 0) {
    size_t n = 0;
    int rc = fuzz_unprotect(r, s, rtcp, held.b, held_len, &n);
    /* Under the previous keys: refused only as a replay (the round trip
     * took that index), as SRTCP (not tried) or once dropped. */
    fuzz_require(rc == 0 || rc == DCMF_ERR_REPLAY ||
                 (rc == DCMF_ERR_AUTH && (rtcp || (sel & 128))));
  }
  dcmf_srtp_del(c);
  dcmf_srtp_del(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int lib_ready;
  static struct trace evp, lib;
  if (!lib_ready) {
    fuzz_require(dcmf_srtp_lib_init() == 0);
    lib_ready = 1;
  }
  if (size < 1)
    return 0;
  fuzz_one(DCMF_SRTP_BACKEND_OPENSSL, &evp, data, size);
  fuzz_one(DCMF_SRTP_BACKEND_LIBSRTP2, &lib, data, size);
  fuzz_require(evp.len == lib.len && memcmp(evp.log, lib.log, evp.len) == 0);
  return 0;
}
