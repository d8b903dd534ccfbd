/*
 * Fuzz target for the SDP parser (dcmf/proto/sdp.h) and the IMS-ALG
 * helper on top of it (dcmf/tools/alg.h). The input is an SDP.
 *
 * Invariants (abort on violation):
 *   - a refused input leaves an empty description and names a line no
 *     further than the input's line count (+1);
 *   - an accepted one written back parses again, and writing that gives
 *     the same bytes (the serializer is a fixed point);
 *   - the requests for every side and kind, and the rewrites with a
 *     reply for every m= line, succeed or fail cleanly; a rewritten SDP
 *     parses again unless it outgrew a bound (DCMF_ERR_TOO_LARGE).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alg.h"
#include "errors.h"
#include "sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_require(int cond) {
  if (!cond)
    abort();
}

static const char reply_one[] =
    "{\"contextId\":\"f\",\"terminations\":["
    "{\"terminationId\":\"access\",\"transport\":\"UDP/DTLS/SCTP\","
    "\"local\":{\"ipv4Addr\":\"127.0.0.1\",\"port\":40000},"
    "\"dtls\":{\"localFingerprint\":\"SHA-256 AA:BB\",\"localSetup\":\"passive\","
    "\"localTlsId\":\"0123456789abcdef0123456789abcdef\"},"
    "\"tls\":{\"localFingerprint\":\"SHA-256 AA:BB\",\"localSetup\":\"passive\"},"
    "\"ice\":{\"localUfrag\":\"uuuu\",\"localPwd\":\"pppppppppppppppppppppp\"},"
    "\"dataChannel\":{\"streamId\":3,\"localPath\":\"msrps://127.0.0.1:40000/f;dc\","
    "\"dcsa\":{\"setup\":\"active\"}}},"
    "{\"terminationId\":\"core\",\"transport\":\"RTP/AVP\","
    "\"local\":{\"ipv6Addr\":\"::1\",\"port\":40002},\"localRtcpPort\":40003,"
    "\"tcp\":{\"localSetup\":\"merge\"},"
    "\"msrp\":{\"mode\":\"aware\",\"localPath\":\"msrp://[::1]:40002/f;tcp\"}}]}";

static void roundtrip(const struct dcmf_sdp *sdp, int may_outgrow) {
  char *w1, *w2;
  size_t l1, l2;
  fuzz_require(dcmf_sdp_write(sdp, &w1, &l1) == 0);
  struct dcmf_sdp again;
  int rc = dcmf_sdp_parse(&again, w1, l1, NULL);
  if (rc) {
    fuzz_require(may_outgrow && rc == DCMF_ERR_TOO_LARGE);
    free(w1);
    return;
  }
  fuzz_require(dcmf_sdp_write(&again, &w2, &l2) == 0);
  fuzz_require(l1 == l2 && memcmp(w1, w2, l1) == 0);
  free(w1);
  free(w2);
  dcmf_sdp_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dcmf_sdp sdp;
  struct dcmf_sdp_error e;
  int rc = dcmf_sdp_parse(&sdp, (const char *)data, size, &e);
  if (rc) {
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
      lines += data[i] == '\n';
    fuzz_require(sdp.nmedia == 0 && sdp.session.n == 0);
    fuzz_require(e.line <= lines + 1 && e.msg[0]);
    return 0;
  }
  roundtrip(&sdp, 0);
  dcmf_sdp_free(&sdp);

  json_t *one = json_loads(reply_one, 0, NULL);
  json_t *replies = json_array();
  for (int k = 0; k < DCMF_SDP_MAX_MEDIA; k++)
    json_array_append(replies, one);
  json_decref(one);
  for (int side = 0; side < 2; side++)
    for (int kind = 0; kind < 2; kind++) {
      struct dcmf_sdp s, offer;
      fuzz_require(dcmf_sdp_parse(&s, (const char *)data, size, NULL) == 0);
      fuzz_require(dcmf_sdp_parse(&offer, (const char *)data, size, NULL) == 0);
      struct dcmf_alg_opts o = {.side = (enum dcmf_alg_side)side,
                                .kind = (enum dcmf_alg_kind)kind,
                                .wic = kind == 1,
                                .replies = kind ? replies : NULL,
                                .offer = &offer};
      json_t *out = NULL;
      char err[256] = "";
      fuzz_require(dcmf_alg_request(&s, &o, &out, err, sizeof err) == 0);
      json_decref(out);
      o.replies = replies;
      /* An offer with its contexts: a re-offer's patch. */
      out = NULL;
      fuzz_require(dcmf_alg_request(&s, &o, &out, err, sizeof err) == 0);
      json_decref(out);
      err[0] = '\0';
      rc = dcmf_alg_rewrite(&s, &o, err, sizeof err);
      fuzz_require(rc == 0 || err[0]);
      if (rc == 0)
        roundtrip(&s, 1);
      dcmf_sdp_free(&s);
      dcmf_sdp_free(&offer);
    }
  json_decref(replies);
  return 0;
}
