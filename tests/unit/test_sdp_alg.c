/*
 * The SDP parser (dcmf/proto/sdp.h) and the IMS-ALG helper
 * (dcmf/tools/alg.h) on example flows written from the text of TS 23.334
 * 6.2.10.5 (WebRTC access, DTLS-SRTP: the WIC offers; the core answers)
 * and 6.2.10.4 (T.38: the core offers UDPTL, the UE answers), as the
 * digests in ../shared/spec/e2ae-agw.md (2, 3) summarise them; the other
 * paths' rewrites (MSRP over TLS, MSRP and T.140 over data channels),
 * the DTLS/TLS setup choices, the bandwidth arithmetic and hostile SDP.
 * The AGW replies are written by hand in the shape of docs/openapi.yaml.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alg.h"
#include "errors.h"
#include "sdp.h"

#define FP "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
           "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

/* 6.2.10.5: the WIC's offer (BUNDLE, ICE, actpass, rtcp-mux). */
static const char wic_offer[] =
    "v=0\r\no=- 1 2 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE a0\r\n"
    "m=audio 50000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 192.0.2.10\r\n"
    "b=AS:64\r\nb=RS:800\r\nb=TIAS:48000\r\nb=RR:99999999999\r\n"
    "a=candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host\r\n"
    "a=ice-ufrag:wicU\r\na=ice-pwd:wicpassword0123456789abc\r\n"
    "a=fingerprint:" FP "\r\na=setup:actpass\r\n"
    "a=tls-id:abcdefghijklmnopqrstuvwxyz\r\na=mid:a0\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=ptime:20\r\n";

static const char srtp_reply[] =
    "[{\"contextId\":\"c1\",\"terminations\":["
    "{\"terminationId\":\"access\",\"transport\":\"UDP/TLS/RTP/SAVPF\","
    "\"local\":{\"ipv4Addr\":\"198.51.100.1\",\"port\":40000},"
    "\"dtls\":{\"setup\":\"actpass\",\"localFingerprint\":\"SHA-256 11:22:33\","
    "\"localSetup\":\"passive\",\"localTlsId\":\"0123456789abcdef0123456789abcdef\"},"
    "\"ice\":{\"localUfrag\":\"agwU\",\"localPwd\":\"agwpassword0123456789abc\"}},"
    "{\"terminationId\":\"core\",\"transport\":\"RTP/AVPF\","
    "\"local\":{\"ipv4Addr\":\"203.0.113.1\",\"port\":40002},"
    "\"rtcpMux\":false,\"localRtcpPort\":40003}]}]";

struct parsed {
  struct dcmf_sdp sdp;
  json_t *replies;
};

static void parse_ok(struct dcmf_sdp *sdp, const char *text) {
  struct dcmf_sdp_error e;
  int rc = dcmf_sdp_parse(sdp, text, strlen(text), &e);
  if (rc)
    fail_msg("parse: %s", e.msg);
}

static char *written(const struct dcmf_sdp *sdp) {
  char *out;
  size_t len;
  assert_int_equal(dcmf_sdp_write(sdp, &out, &len), 0);
  assert_int_equal(strlen(out), len);
  return out;
}

static int has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
    if ((p == text || p[-1] == '\n') && p[n] == '\r')
      return 1;
  return 0;
}

/* Every line of the NULL-terminated |want| is a whole line of |text|. */
static void want_lines(const char *text, const char *const *want) {
  for (; *want; want++)
    if (!has_line(text, *want))
      fail_msg("line \"%s\" not in:\n%s", *want, text);
}

/* None of the NULL-terminated |gone| occurs in |text|. */
static void want_absent(const char *text, const char *const *gone) {
  for (; *gone; gone++)
    if (strstr(text, *gone))
      fail_msg("\"%s\" still in:\n%s", *gone, text);
}

/* Rewrites |text| from |side| with |replies| (and the other side's
 * |offer|) and returns the SDP written. */
static char *rewrite(const char *text, enum dcmf_alg_side side,
                     enum dcmf_alg_kind kind, const char *replies,
                     const char *offer) {
  struct dcmf_sdp sdp, off;
  json_error_t je;
  json_t *r = json_loads(replies, 0, &je);
  assert_non_null(r);
  parse_ok(&sdp, text);
  struct dcmf_alg_opts o = {.side = side, .kind = kind, .replies = r};
  if (offer) {
    parse_ok(&off, offer);
    o.offer = &off;
  }
  char err[256] = "";
  int rc = dcmf_alg_rewrite(&sdp, &o, err, sizeof err);
  if (rc)
    fail_msg("rewrite: %s", err);
  char *out = written(&sdp);
  dcmf_sdp_free(&sdp);
  if (offer)
    dcmf_sdp_free(&off);
  json_decref(r);
  return out;
}

static json_t *request(const char *text, enum dcmf_alg_side side,
                       enum dcmf_alg_kind kind, const char *replies) {
  struct dcmf_sdp sdp;
  parse_ok(&sdp, text);
  json_t *r = replies ? json_loads(replies, 0, NULL) : NULL;
  struct dcmf_alg_opts o = {.side = side, .kind = kind, .replies = r};
  json_t *out = NULL;
  char err[256];
  assert_int_equal(dcmf_alg_request(&sdp, &o, &out, err, sizeof err), 0);
  dcmf_sdp_free(&sdp);
  json_decref(r);
  return out;
}

static const json_t *req_body(const json_t *out, size_t i) {
  return json_object_get(json_array_get(json_object_get(out, "requests"), i),
                         "body");
}

static const char *jpath(const json_t *v, const char *path) {
  /* "a/0/b": objects by name, arrays by index. */
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *tok = strtok(buf, "/"); tok && v; tok = strtok(NULL, "/"))
    v = json_is_array(v) ? json_array_get(v, (size_t)atoi(tok))
                         : json_object_get(v, tok);
  if (json_is_string(v))
    return json_string_value(v);
  static char num[32];
  if (json_is_integer(v)) {
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
    return num;
  }
  if (json_is_boolean(v))
    return json_is_true(v) ? "true" : "false";
  return NULL;
}

/* 6.2.10.5 step 1: the POST from the WIC's offer. */
static void test_webrtc_offer_request(void **state) {
  (void)state;
  json_t *out = request(wic_offer, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, NULL);
  const json_t *b = req_body(out, 0);
  assert_string_equal(jpath(b, "terminations/0/transport"), "UDP/TLS/RTP/SAVPF");
  assert_string_equal(jpath(b, "terminations/0/dtls/remoteFingerprints/0"), FP);
  assert_string_equal(jpath(b, "terminations/0/dtls/setup"), "actpass");
  assert_null(jpath(b, "terminations/0/dtls/establish"));
  assert_string_equal(jpath(b, "terminations/0/dtls/tlsId"),
                      "abcdefghijklmnopqrstuvwxyz");
  assert_string_equal(jpath(b, "terminations/0/ice/remoteUfrag"), "wicU");
  assert_string_equal(jpath(b, "terminations/0/remote/ipv4Addr"), "192.0.2.10");
  assert_string_equal(jpath(b, "terminations/0/remote/port"), "50000");
  assert_string_equal(jpath(b, "terminations/0/rtcpMux"), "true");
  assert_string_equal(jpath(b, "terminations/1/transport"), "RTP/AVPF");
  assert_string_equal(jpath(b, "terminations/1/rtcpMux"), "false");
  json_decref(out);
}

/* 6.2.10.5 step 2: toward the core RTP/AVPF without DTLS, ICE, BUNDLE;
 * the bandwidth less the SRTP overhead. */
static void test_webrtc_offer_toward_core(void **state) {
  (void)state;
  char *o = rewrite(wic_offer, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, srtp_reply, NULL);
  want_lines(o, (const char *const[]){
      "m=audio 40002 RTP/AVPF 111",
      "c=IN IP4 203.0.113.1",
      "a=rtcp:40003",
      "a=rtcp-mux", /* offered, the separate port the fallback (RFC 8035) */
      "a=rtpmap:111 opus/48000/2",
      "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
      NULL});
  want_absent(o, (const char *const[]){"a=setup", "a=fingerprint", "a=tls-id",
                                        "a=ice-", "a=candidate", "a=group",
                                        "a=mid", "sdes:mid", "a=rtcp-mux-only",
                                        "a=rtcp-rsize", "192.0.2.10 50000",
                                        NULL});
  /* 50 packets/s x 16 octets x 8 = 6.4 kbit/s -> 7; RTCP 800 x 20/100. */
  want_lines(o, (const char *const[]){
      "b=AS:57",
      "b=RS:640",
      "b=TIAS:48000",
      "b=RR:99999999999", /* beyond 9 digits: kept as it is */
      NULL});
  free(o);
}

static const char core_answer[] =
    "v=0\r\no=core 1 1 IN IP4 203.0.113.50\r\ns=-\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVPF 111\r\nc=IN IP4 203.0.113.50\r\nb=AS:57\r\n"
    "a=rtcp:30001\r\na=rtpmap:111 opus/48000/2\r\na=ptime:20\r\n";

/* 6.2.10.5 steps 3-4: the core's answer becomes a PATCH and, from the
 * reply, the answer to the WIC. */
static void test_webrtc_answer(void **state) {
  (void)state;
  json_t *out = request(core_answer, DCMF_ALG_CORE, DCMF_ALG_ANSWER, srtp_reply);
  json_t *e = json_array_get(json_object_get(out, "requests"), 0);
  assert_string_equal(jpath(e, "method"), "PATCH");
  assert_string_equal(jpath(e, "uri"), "/agw/v1/contexts/c1");
  assert_string_equal(jpath(e, "body/0/path"), "/terminations/1/remote");
  assert_string_equal(jpath(e, "body/0/value/ipv4Addr"), "203.0.113.50");
  assert_string_equal(jpath(e, "body/0/value/port"), "30000");
  assert_string_equal(jpath(e, "body/1/path"), "/terminations/1/remoteRtcpPort");
  assert_string_equal(jpath(e, "body/1/value"), "30001");
  json_decref(out);

  char *a = rewrite(core_answer, DCMF_ALG_CORE, DCMF_ALG_ANSWER, srtp_reply,
                    wic_offer);
  want_lines(a, (const char *const[]){
      "m=audio 40000 UDP/TLS/RTP/SAVPF 111",
      "c=IN IP4 198.51.100.1",
      "a=ice-lite",
      "a=fingerprint:sha-256 11:22:33",
      "a=setup:passive",
      "a=tls-id:0123456789abcdef0123456789abcdef",
      "a=ice-ufrag:agwU",
      "a=candidate:1 1 udp 2130706431 198.51.100.1 40000 typ host",
      "a=rtcp-mux",
      "a=mid:a0",
      "b=AS:64",
      NULL});
  want_absent(a, (const char *const[]){"a=rtcp:", "a=3ge2ae", "a=group", NULL});
  free(a);

  /* A WIC's answer has ICE: its address comes by ICE, not in the PATCH
   * (only an answer without ICE brings the remote). */
  out = request(wic_offer, DCMF_ALG_ACCESS, DCMF_ALG_ANSWER, srtp_reply);
  e = json_array_get(json_object_get(out, "requests"), 0);
  bool ice = false;
  json_t *body = json_object_get(e, "body");
  for (size_t k = 0; k < json_array_size(body); k++) {
    const char *path =
        json_string_value(json_object_get(json_array_get(body, k), "path"));
    assert_string_not_equal(path, "/terminations/0/remote");
    ice = ice || strcmp(path, "/terminations/0/ice") == 0;
  }
  assert_true(ice);
  json_decref(out);
}

/* The core answers RTP/AVP (an ALG offered it AVP: it does no
 * feedback) while the WIC offered SAVPF: the answer toward the WIC keeps
 * the access termination's UDP/TLS/RTP/SAVPF (RFC 3264: an answer keeps
 * the offer's protocol). */
static void test_webrtc_answer_avp_core(void **state) {
  (void)state;
  char answer[sizeof core_answer];
  snprintf(answer, sizeof answer, "%s", core_answer);
  char *at = strstr(answer, "RTP/AVPF 111");
  assert_non_null(at);
  memmove(at + 7, at + 8, strlen(at + 8) + 1); /* RTP/AVPF -> RTP/AVP */
  char *a = rewrite(answer, DCMF_ALG_CORE, DCMF_ALG_ANSWER, srtp_reply,
                    wic_offer);
  want_lines(a, (const char *const[]){"m=audio 40000 UDP/TLS/RTP/SAVPF 111",
                                      "a=rtcp-mux", NULL});
  free(a);
}

/* A re-offer from the WIC (an offer for a line with a context): a new
 * tls-id, a new fingerprint and setup:passive become a PATCH of the
 * context, establish stated either way, the candidate's address too (an
 * ICE restart moves it); actpass states establish false. */
static void test_webrtc_reoffer(void **state) {
  (void)state;
  static const char *const from[] = {
      "a=setup:actpass", "abcdefghijklmnopqrstuvwxyz", "50000 typ host"};
  static const char *const to[] = {
      "a=setup:passive", "renewedtlsid0123456789abcd", "50002 typ host"};
  char text[sizeof wic_offer + 64];
  snprintf(text, sizeof text, "%s", wic_offer);
  for (size_t k = 0; k < 3; k++) {
    char *at = strstr(text, from[k]);
    assert_non_null(at);
    assert_int_equal(strlen(from[k]), strlen(to[k]));
    memcpy(at, to[k], strlen(to[k]));
  }
  json_t *out = request(text, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, srtp_reply);
  json_t *e = json_array_get(json_object_get(out, "requests"), 0);
  assert_string_equal(jpath(e, "method"), "PATCH");
  assert_string_equal(jpath(e, "uri"), "/agw/v1/contexts/c1");
  const json_t *ops = json_object_get(e, "body");
  int seen = 0;
  for (size_t k = 0; k < json_array_size(ops); k++) {
    const json_t *op = json_array_get(ops, k);
    const char *path = jpath(op, "path");
    const char *v = jpath(op, "value");
    if (strcmp(path, "/terminations/0/dtls/setup") == 0) {
      assert_string_equal(v, "passive");
      seen |= 1;
    } else if (strcmp(path, "/terminations/0/dtls/establish") == 0) {
      assert_string_equal(v, "true");
      seen |= 2;
    } else if (strcmp(path, "/terminations/0/dtls/tlsId") == 0) {
      assert_string_equal(v, "renewedtlsid0123456789abcd");
      seen |= 4;
    } else if (strcmp(path, "/terminations/0/remote") == 0) {
      assert_string_equal(jpath(op, "value/port"), "50002");
      seen |= 8;
    } else if (strcmp(path, "/terminations/0/ice") == 0) {
      assert_string_equal(jpath(op, "value/remoteUfrag"), "wicU");
      seen |= 16;
    }
  }
  assert_int_equal(seen, 31);
  json_decref(out);
  /* The same offer without a context is a POST; actpass re-offered
   * states establish false. */
  out = request(wic_offer, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, NULL);
  assert_string_equal(jpath(json_array_get(json_object_get(out, "requests"), 0),
                            "method"),
                      "POST");
  json_decref(out);
  out = request(wic_offer, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, srtp_reply);
  ops = json_object_get(
      json_array_get(json_object_get(out, "requests"), 0), "body");
  seen = 0;
  for (size_t k = 0; k < json_array_size(ops); k++)
    if (strcmp(jpath(json_array_get(ops, k), "path"),
               "/terminations/0/dtls/establish") == 0) {
      assert_string_equal(jpath(json_array_get(ops, k), "value"), "false");
      seen = 1;
    }
  assert_int_equal(seen, 1);
  json_decref(out);
}

/* 6.2.10.4: the core offers T.38 over UDPTL; the UE gets UDP/TLS/UDPTL,
 * 3ge2ae:applied, the AGW's fingerprint, a new tls-id, actpass. */
static const char t38_offer[] =
    "v=0\r\no=core 1 1 IN IP4 203.0.113.50\r\ns=-\r\nt=0 0\r\n"
    "c=IN IP4 203.0.113.50\r\n"
    "m=image 32000 udptl t38\r\na=T38FaxVersion:0\r\n"
    "a=T38FaxRateManagement:transferredTCF\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n";

static const char t38_reply[] =
    "[{\"contextId\":\"t1\",\"terminations\":["
    "{\"terminationId\":\"access\",\"transport\":\"UDP/DTLS\","
    "\"local\":{\"ipv4Addr\":\"198.51.100.1\",\"port\":41000},"
    "\"dtls\":{\"setup\":\"actpass\",\"localFingerprint\":\"SHA-256 44:55\","
    "\"localSetup\":\"passive\",\"localTlsId\":\"fedcba9876543210fedcba9876543210\"}},"
    "{\"terminationId\":\"core\",\"transport\":\"UDP\","
    "\"local\":{\"ipv4Addr\":\"203.0.113.1\",\"port\":41002}}]}]";

static void test_t38_flow(void **state) {
  (void)state;
  json_t *out = request(t38_offer, DCMF_ALG_CORE, DCMF_ALG_OFFER, NULL);
  const json_t *b = req_body(out, 0);
  assert_string_equal(jpath(b, "terminations/0/transport"), "UDP/DTLS");
  assert_string_equal(jpath(b, "terminations/0/dtls/setup"), "actpass");
  assert_null(jpath(b, "terminations/0/dtls/remoteFingerprints/0"));
  assert_string_equal(jpath(b, "terminations/1/transport"), "UDP");
  assert_string_equal(jpath(b, "terminations/1/remote/ipv4Addr"), "203.0.113.50");
  assert_string_equal(jpath(b, "terminations/1/remote/port"), "32000");
  json_decref(out);

  char *o = rewrite(t38_offer, DCMF_ALG_CORE, DCMF_ALG_OFFER, t38_reply, NULL);
  want_lines(o, (const char *const[]){
      "m=image 41000 UDP/TLS/UDPTL t38",
      "c=IN IP4 198.51.100.1",
      "a=3ge2ae:applied",
      "a=fingerprint:sha-256 44:55",
      "a=tls-id:fedcba9876543210fedcba9876543210",
      "a=setup:actpass",
      "a=T38FaxUdpEC:t38UDPRedundancy",
      NULL});
  assert_null(strstr(o, "a=ice-"));
  free(o);

  /* The UE answers active (the AGW stays server) or passive (the AGW
   * becomes the client: Establish (D)TLS session). */
  static const char *const setups[] = {"active", "passive"};
  for (int k = 0; k < 2; k++) {
    char ans[1024];
    snprintf(ans, sizeof ans,
             "v=0\r\no=ue 1 1 IN IP4 192.0.2.20\r\ns=-\r\nt=0 0\r\n"
             "m=image 9000 UDP/TLS/UDPTL t38\r\nc=IN IP4 192.0.2.20\r\n"
             "a=setup:%s\r\na=fingerprint:" FP "\r\n"
             "a=tls-id:ue0123456789abcdefghij\r\na=3ge2ae:requested\r\n",
             setups[k]);
    json_t *p = request(ans, DCMF_ALG_ACCESS, DCMF_ALG_ANSWER, t38_reply);
    json_t *e = json_array_get(json_object_get(p, "requests"), 0);
    assert_string_equal(jpath(e, "uri"), "/agw/v1/contexts/t1");
    assert_null(json_object_get(e, "note")); /* dcmfd serves T.38 */
    /* No ICE: the UE's c=/m= is where a passive UE waits for the AGW's
     * ClientHello (RFC 7345 4.2-4.4), so the PATCH brings it. */
    size_t last = json_array_size(json_object_get(e, "body")) - 1;
    char at[32];
    snprintf(at, sizeof at, "body/%zu/path", last);
    assert_string_equal(jpath(e, at), "/terminations/0/remote");
    snprintf(at, sizeof at, "body/%zu/value/ipv4Addr", last);
    assert_string_equal(jpath(e, at), "192.0.2.20");
    snprintf(at, sizeof at, "body/%zu/value/port", last);
    assert_string_equal(jpath(e, at), "9000");
    assert_string_equal(jpath(e, "body/0/path"),
                        "/terminations/0/dtls/remoteFingerprints");
    assert_string_equal(jpath(e, "body/1/path"), "/terminations/0/dtls/setup");
    assert_string_equal(jpath(e, "body/1/value"), setups[k]);
    if (k == 1) {
      assert_string_equal(jpath(e, "body/2/path"), "/terminations/0/dtls/establish");
      assert_string_equal(jpath(e, "body/3/path"), "/terminations/0/dtls/tlsId");
    } else {
      assert_string_equal(jpath(e, "body/2/path"), "/terminations/0/dtls/tlsId");
    }
    json_decref(p);
    /* Toward the core: plain udptl, no DTLS, no 3ge2ae. */
    char *c = rewrite(ans, DCMF_ALG_ACCESS, DCMF_ALG_ANSWER, t38_reply, NULL);
    assert_true(has_line(c, "m=image 41002 udptl t38"));
    want_absent(c, (const char *const[]){"a=setup", "a=3ge2ae", "a=fingerprint", NULL});
    free(c);
  }
}

/* An offer's setup decides establish; passive makes the AGW client. */
static void test_setup_choice(void **state) {
  (void)state;
  static const struct {
    const char *setup;
    int establish;
  } cases[] = {{"actpass", 0}, {"active", 0}, {"passive", 1}};
  for (size_t k = 0; k < 3; k++) {
    char sdp[sizeof wic_offer + 16];
    snprintf(sdp, sizeof sdp, "%s", wic_offer);
    char *s = strstr(sdp, "a=setup:actpass");
    char tail[sizeof wic_offer];
    snprintf(tail, sizeof tail, "%s", s + strlen("a=setup:actpass"));
    snprintf(s, sizeof sdp - (size_t)(s - sdp), "a=setup:%s%s", cases[k].setup,
             tail);
    json_t *out = request(sdp, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, NULL);
    const json_t *b = req_body(out, 0);
    assert_string_equal(jpath(b, "terminations/0/dtls/setup"), cases[k].setup);
    if (cases[k].establish)
      assert_string_equal(jpath(b, "terminations/0/dtls/establish"), "true");
    else
      assert_null(jpath(b, "terminations/0/dtls/establish"));
    json_decref(out);
  }
  /* A core offering a=setup:active over TCP: the AGW is passive toward
   * the core and, mirroring, the TLS client toward the UE. */
  static const char bfcp[] =
      "v=0\r\no=c 1 1 IN IP4 203.0.113.50\r\ns=-\r\nt=0 0\r\n"
      "m=application 9 TCP/BFCP *\r\nc=IN IP4 203.0.113.50\r\n"
      "a=setup:active\r\na=floorctrl:c-s\r\na=confid:4321\r\n";
  json_t *out = request(bfcp, DCMF_ALG_CORE, DCMF_ALG_OFFER, NULL);
  const json_t *b = req_body(out, 0);
  assert_string_equal(jpath(b, "terminations/0/transport"), "TCP/TLS/BFCP");
  assert_string_equal(jpath(b, "terminations/0/tls/setup"), "passive");
  assert_string_equal(jpath(b, "terminations/0/tls/establish"), "true");
  assert_string_equal(jpath(b, "terminations/1/transport"), "TCP/BFCP");
  json_decref(out);
}

/* MSRP over TLS (6.2.10.3.1): toward the core TCP/MSRP with the mirrored
 * setup; toward the UE TCP/TLS/MSRP, fingerprint, 3ge2ae:applied. */
static void test_msrp_tls(void **state) {
  (void)state;
  static const char ue_offer[] =
      "v=0\r\no=ue 1 1 IN IP4 192.0.2.20\r\ns=-\r\nt=0 0\r\n"
      "m=message 9 TCP/TLS/MSRP *\r\nc=IN IP4 192.0.2.20\r\n"
      "a=setup:active\r\na=fingerprint:" FP "\r\na=3ge2ae:requested\r\n"
      "a=path:msrps://ue.example:9/s1;tcp\r\na=msrp-cema\r\n"
      "a=accept-types:text/plain\r\n";
  static const char reply[] =
      "[{\"contextId\":\"m1\",\"terminations\":["
      "{\"terminationId\":\"access\",\"transport\":\"TCP/TLS/MSRP\","
      "\"local\":{\"ipv4Addr\":\"198.51.100.1\",\"port\":42000},"
      "\"tls\":{\"setup\":\"active\",\"localFingerprint\":\"SHA-256 66:77\","
      "\"localSetup\":\"passive\"}},"
      "{\"terminationId\":\"core\",\"transport\":\"TCP/MSRP\","
      "\"local\":{\"ipv4Addr\":\"203.0.113.1\",\"port\":42002},"
      "\"tcp\":{\"localSetup\":\"active\"}}]}]";
  json_t *out = request(ue_offer, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, NULL);
  const json_t *b = req_body(out, 0);
  assert_string_equal(jpath(b, "terminations/0/tls/setup"), "active");
  assert_null(jpath(b, "terminations/0/tls/tlsId"));
  assert_string_equal(jpath(b, "terminations/0/msrp/mode"), "agnostic");
  assert_string_equal(jpath(b, "terminations/1/transport"), "TCP/MSRP");
  json_decref(out);
  char *c = rewrite(ue_offer, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, reply, NULL);
  want_lines(c, (const char *const[]){
      "m=message 42002 TCP/MSRP *",
      "a=setup:active",
      "a=path:msrps://ue.example:9/s1;tcp",
      "a=msrp-cema",
      NULL});
  want_absent(c, (const char *const[]){"a=fingerprint", "3ge2ae", NULL});
  free(c);
  static const char core_ans[] =
      "v=0\r\no=c 1 1 IN IP4 203.0.113.50\r\ns=-\r\nt=0 0\r\n"
      "m=message 7777 TCP/MSRP *\r\nc=IN IP4 203.0.113.50\r\n"
      "a=setup:passive\r\na=path:msrp://core.example:7777/x;tcp\r\na=msrp-cema\r\n";
  char *a = rewrite(core_ans, DCMF_ALG_CORE, DCMF_ALG_ANSWER, reply, ue_offer);
  want_lines(a, (const char *const[]){
      "m=message 42000 TCP/TLS/MSRP *",
      "a=setup:passive",
      "a=fingerprint:sha-256 66:77",
      "a=3ge2ae:applied",
      NULL});
  want_absent(a, (const char *const[]){"a=ice-", "a=candidate", NULL});
  free(a);
}

/* The PATCH op on |path| in |ops|, or NULL. */
static const json_t *op_on(const json_t *ops, const char *path) {
  for (size_t k = 0; k < json_array_size(ops); k++) {
    const json_t *op = json_array_get(ops, k);
    const char *p = json_string_value(json_object_get(op, "path"));
    if (p && strcmp(p, path) == 0)
      return op;
  }
  return NULL;
}

/* The value of that op as jpath gives it, or NULL. */
static const char *op_value(const json_t *ops, const char *path) {
  const json_t *op = op_on(ops, path);
  return op ? jpath(op, "value") : NULL;
}

/* MSRP over TLS without CEMA (TS 23.334 5.19.5): the context is aware,
 * the offerer's a=path goes in the POST and the answerer's in the PATCH,
 * and each side gets the AGW's own URI of its leg as a=path. With CEMA
 * (m= line or session level) it stays agnostic and the paths pass. */
static void test_msrp_tls_aware(void **state) {
  (void)state;
  static const char ue_offer[] =
      "v=0\r\no=ue 1 1 IN IP4 192.0.2.20\r\ns=-\r\nt=0 0\r\n"
      "m=message 9 TCP/TLS/MSRP *\r\nc=IN IP4 192.0.2.20\r\n"
      "a=setup:active\r\na=fingerprint:" FP "\r\na=3ge2ae:requested\r\n"
      "a=path:msrps://ue.example:9/s1;tcp\r\na=accept-types:text/plain\r\n";
  static const char reply[] =
      "[{\"contextId\":\"m2\",\"terminations\":["
      "{\"terminationId\":\"access\",\"transport\":\"TCP/TLS/MSRP\","
      "\"local\":{\"ipv4Addr\":\"198.51.100.1\",\"port\":42000},"
      "\"tls\":{\"setup\":\"active\",\"localFingerprint\":\"SHA-256 66:77\","
      "\"localSetup\":\"passive\"},\"msrp\":{\"mode\":\"aware\","
      "\"path\":\"msrps://ue.example:9/s1;tcp\","
      "\"localPath\":\"msrps://198.51.100.1:42000/m2;tcp\"}},"
      "{\"terminationId\":\"core\",\"transport\":\"TCP/MSRP\","
      "\"local\":{\"ipv4Addr\":\"203.0.113.1\",\"port\":42002},"
      "\"tcp\":{\"localSetup\":\"active\"},\"msrp\":{\"mode\":\"aware\","
      "\"localPath\":\"msrp://203.0.113.1:42002/m2;tcp\"}}]}]";
  json_t *out = request(ue_offer, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, NULL);
  const json_t *b = req_body(out, 0);
  assert_string_equal(jpath(b, "terminations/0/msrp/mode"), "aware");
  assert_string_equal(jpath(b, "terminations/0/msrp/path"),
                      "msrps://ue.example:9/s1;tcp");
  assert_string_equal(jpath(b, "terminations/1/msrp/mode"), "aware");
  assert_null(jpath(b, "terminations/1/msrp/path"));
  json_decref(out);
  char *c = rewrite(ue_offer, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, reply, NULL);
  want_lines(c, (const char *const[]){"m=message 42002 TCP/MSRP *",
                                      "a=path:msrp://203.0.113.1:42002/m2;tcp",
                                      "a=accept-types:text/plain", NULL});
  want_absent(c, (const char *const[]){"a=path:msrps", "a=msrp-cema",
                                       "a=fingerprint", NULL});
  free(c);
  static const char core_ans[] =
      "v=0\r\no=c 1 1 IN IP4 203.0.113.50\r\ns=-\r\nt=0 0\r\n"
      "m=message 7777 TCP/MSRP *\r\nc=IN IP4 203.0.113.50\r\n"
      "a=setup:passive\r\na=path:msrp://core.example:7777/x;tcp\r\n";
  out = request(core_ans, DCMF_ALG_CORE, DCMF_ALG_ANSWER, reply);
  const json_t *ops = req_body(out, 0);
  assert_string_equal(op_value(ops, "/terminations/1/msrp/path"),
                      "msrp://core.example:7777/x;tcp");
  json_decref(out);
  char *a = rewrite(core_ans, DCMF_ALG_CORE, DCMF_ALG_ANSWER, reply, ue_offer);
  want_lines(a, (const char *const[]){"m=message 42000 TCP/TLS/MSRP *",
                                      "a=path:msrps://198.51.100.1:42000/m2;tcp",
                                      "a=3ge2ae:applied", NULL});
  want_absent(a, (const char *const[]){"a=path:msrp:", "a=msrp-cema", NULL});
  free(a);

  /* UE-terminated: the core's a=path in the POST, the UE's in the PATCH
   * of its answer (and of a re-offer). */
  static const char core_offer[] =
      "v=0\r\no=c 1 1 IN IP4 203.0.113.50\r\ns=-\r\nt=0 0\r\n"
      "m=message 7777 TCP/MSRP *\r\nc=IN IP4 203.0.113.50\r\n"
      "a=setup:actpass\r\na=path:msrp://core.example:7777/y;tcp\r\n";
  out = request(core_offer, DCMF_ALG_CORE, DCMF_ALG_OFFER, NULL);
  b = req_body(out, 0);
  assert_string_equal(jpath(b, "terminations/0/msrp/mode"), "aware");
  assert_null(jpath(b, "terminations/0/msrp/path"));
  assert_string_equal(jpath(b, "terminations/1/msrp/mode"), "aware");
  assert_string_equal(jpath(b, "terminations/1/msrp/path"),
                      "msrp://core.example:7777/y;tcp");
  json_decref(out);
  char *o2 = rewrite(core_offer, DCMF_ALG_CORE, DCMF_ALG_OFFER, reply, NULL);
  want_lines(o2, (const char *const[]){"m=message 42000 TCP/TLS/MSRP *",
                                       "a=path:msrps://198.51.100.1:42000/m2;tcp",
                                       NULL});
  want_absent(o2, (const char *const[]){"a=path:msrp:", NULL});
  free(o2);
  static const char ue_ans[] =
      "v=0\r\no=ue 1 1 IN IP4 192.0.2.20\r\ns=-\r\nt=0 0\r\n"
      "m=message 9 TCP/TLS/MSRP *\r\nc=IN IP4 192.0.2.20\r\n"
      "a=setup:active\r\na=fingerprint:" FP "\r\n"
      "a=path:msrps://ue.example:9/t1;tcp\r\n";
  for (int re = 0; re < 2; re++) {
    out = request(ue_ans, DCMF_ALG_ACCESS, re ? DCMF_ALG_OFFER : DCMF_ALG_ANSWER,
                  reply);
    ops = req_body(out, 0);
    assert_string_equal(jpath(json_array_get(json_object_get(out, "requests"), 0),
                              "method"),
                        "PATCH");
    assert_string_equal(op_value(ops, "/terminations/0/msrp/path"),
                        "msrps://ue.example:9/t1;tcp");
    json_decref(out);
  }
  char *a2 = rewrite(ue_ans, DCMF_ALG_ACCESS, DCMF_ALG_ANSWER, reply, core_offer);
  want_lines(a2, (const char *const[]){"m=message 42002 TCP/MSRP *",
                                       "a=path:msrp://203.0.113.1:42002/m2;tcp",
                                       NULL});
  want_absent(a2, (const char *const[]){"a=path:msrps:", NULL});
  free(a2);

  /* CEMA on the m= line or at session level: agnostic, no path in the
   * POST or the PATCH, a=path and a=msrp-cema passed unchanged. */
  static const char *const cema[] = {
      "v=0\r\no=ue 1 1 IN IP4 192.0.2.20\r\ns=-\r\nt=0 0\r\n"
      "m=message 9 TCP/TLS/MSRP *\r\nc=IN IP4 192.0.2.20\r\n"
      "a=setup:active\r\na=fingerprint:" FP "\r\n"
      "a=path:msrps://ue.example:9/s1;tcp\r\na=msrp-cema\r\n",
      "v=0\r\no=ue 1 1 IN IP4 192.0.2.20\r\ns=-\r\nt=0 0\r\na=msrp-cema\r\n"
      "m=message 9 TCP/TLS/MSRP *\r\nc=IN IP4 192.0.2.20\r\n"
      "a=setup:active\r\na=fingerprint:" FP "\r\n"
      "a=path:msrps://ue.example:9/s1;tcp\r\n"};
  static const char agnostic_reply[] =
      "[{\"contextId\":\"m3\",\"terminations\":["
      "{\"terminationId\":\"access\",\"transport\":\"TCP/TLS/MSRP\","
      "\"local\":{\"ipv4Addr\":\"198.51.100.1\",\"port\":42000},"
      "\"tls\":{\"localSetup\":\"passive\"},\"msrp\":{\"mode\":\"agnostic\"}},"
      "{\"terminationId\":\"core\",\"transport\":\"TCP/MSRP\","
      "\"local\":{\"ipv4Addr\":\"203.0.113.1\",\"port\":42002},"
      "\"tcp\":{\"localSetup\":\"active\"},\"msrp\":{\"mode\":\"agnostic\"}}]}]";
  for (size_t k = 0; k < 2; k++) {
    out = request(cema[k], DCMF_ALG_ACCESS, DCMF_ALG_OFFER, NULL);
    b = req_body(out, 0);
    assert_string_equal(jpath(b, "terminations/0/msrp/mode"), "agnostic");
    assert_null(jpath(b, "terminations/0/msrp/path"));
    assert_string_equal(jpath(b, "terminations/1/msrp/mode"), "agnostic");
    json_decref(out);
    char *x = rewrite(cema[k], DCMF_ALG_ACCESS, DCMF_ALG_OFFER, agnostic_reply,
                      NULL);
    want_lines(x, (const char *const[]){"a=path:msrps://ue.example:9/s1;tcp",
                                        "a=msrp-cema", NULL});
    free(x);
  }
  static const char cema_ans[] =
      "v=0\r\no=c 1 1 IN IP4 203.0.113.50\r\ns=-\r\nt=0 0\r\n"
      "m=message 7777 TCP/MSRP *\r\nc=IN IP4 203.0.113.50\r\n"
      "a=setup:passive\r\na=path:msrp://core.example:7777/x;tcp\r\n"
      "a=msrp-cema\r\n";
  out = request(cema_ans, DCMF_ALG_CORE, DCMF_ALG_ANSWER, agnostic_reply);
  assert_null(op_value(req_body(out, 0), "/terminations/1/msrp/path"));
  json_decref(out);
  char *y = rewrite(cema_ans, DCMF_ALG_CORE, DCMF_ALG_ANSWER, agnostic_reply,
                    cema[0]);
  want_lines(y, (const char *const[]){"a=path:msrp://core.example:7777/x;tcp",
                                      "a=msrp-cema", NULL});
  free(y);
}

/* T.140: the WIC's t140 channel <-> m=text RTP/AVP t140 + red. */
static void test_t140_dc(void **state) {
  (void)state;
  static const char wic[] =
      "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n"
      "m=application 50004 UDP/DTLS/SCTP webrtc-datachannel\r\n"
      "c=IN IP4 192.0.2.10\r\na=setup:actpass\r\na=fingerprint:" FP "\r\n"
      "a=ice-ufrag:wicU\r\na=ice-pwd:wicpassword0123456789abc\r\n"
      "a=sctp-port:5000\r\na=max-message-size:65536\r\n"
      "a=dcmap:5 label=\"rtt\";subprotocol=\"t140\"\r\n"
      "a=dcsa:5 fmtp:t140 cps=20\r\na=dcsa:5 hlang-send:en\r\n"
      "a=dcsa:5 sendrecv\r\n";
  static const char reply[] =
      "[{\"contextId\":\"x1\",\"terminations\":["
      "{\"terminationId\":\"access\",\"transport\":\"UDP/DTLS/SCTP\","
      "\"local\":{\"ipv4Addr\":\"198.51.100.1\",\"port\":43000},"
      "\"dtls\":{\"localFingerprint\":\"SHA-256 88:99\",\"localSetup\":\"passive\"},"
      "\"dataChannel\":{\"streamId\":5,\"subprotocol\":\"t140\"}},"
      "{\"terminationId\":\"core\",\"transport\":\"RTP/AVP\","
      "\"local\":{\"ipv4Addr\":\"203.0.113.1\",\"port\":43002},"
      "\"rtcpMux\":true}]}]";
  json_t *out = request(wic, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, NULL);
  json_t *e = json_array_get(json_object_get(out, "requests"), 0);
  assert_string_equal(jpath(e, "path"), "t140-dc");
  assert_string_equal(jpath(e, "body/terminations/0/dataChannel/subprotocol"), "t140");
  assert_string_equal(jpath(e, "body/terminations/0/dataChannel/dcsa/cps"), "20");
  assert_string_equal(jpath(e, "body/terminations/1/transport"), "RTP/AVP");
  json_decref(out);
  char *c = rewrite(wic, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, reply, NULL);
  want_lines(c, (const char *const[]){
      "m=text 43002 RTP/AVP 98 100",
      "a=rtpmap:98 t140/1000",
      "a=rtpmap:100 red/1000",
      "a=fmtp:100 98/98/98",
      "a=fmtp:98 cps=20",
      "a=hlang-send:en",
      "a=sendrecv",
      "a=rtcp-mux",
      NULL});
  want_absent(c, (const char *const[]){"dcmap", "dcsa", "sctp-port", NULL});
  /* The core's answer back toward the WIC. */
  char *a = rewrite(c, DCMF_ALG_CORE, DCMF_ALG_ANSWER, reply, wic);
  want_lines(a, (const char *const[]){
      "m=application 43000 UDP/DTLS/SCTP webrtc-datachannel",
      "a=dcmap:5 label=\"rtt\";subprotocol=\"t140\"",
      "a=dcsa:5 fmtp:t140 cps=20",
      "a=dcsa:5 hlang-send:en",
      "a=dcsa:5 sendrecv",
      "a=sctp-port:5000",
      NULL});
  want_absent(a, (const char *const[]){"rtpmap", "a=rtcp-mux", NULL});
  free(a);
  free(c);
}

/* T.140 requests: the dcsa hlang values, a dcmap's max-retr passed on
 * for the AGW to refuse (RFC 8865 4.1), and the core answer's m=text
 * line read into the PATCH (its payload types, red's generations, cps). */
static void test_t140_requests(void **state) {
  (void)state;
  static const char wic[] =
      "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n"
      "m=application 50004 UDP/DTLS/SCTP webrtc-datachannel\r\n"
      "c=IN IP4 192.0.2.10\r\na=setup:actpass\r\na=fingerprint:" FP "\r\n"
      "a=dcmap:5 label=\"rtt\";subprotocol=\"t140\";max-retr=3\r\n"
      "a=dcsa:5 hlang-send:en\r\na=dcsa:5 hlang-recv:de\r\n"
      "a=dcsa:5 recvonly\r\n";
  json_t *out = request(wic, DCMF_ALG_ACCESS, DCMF_ALG_OFFER, NULL);
  json_t *e = json_array_get(json_object_get(out, "requests"), 0);
  assert_null(json_object_get(e, "note")); /* served */
  assert_string_equal(jpath(e, "body/terminations/0/dataChannel/maxRetr"), "3");
  assert_string_equal(
      jpath(e, "body/terminations/0/dataChannel/dcsa/hlangSend"), "en");
  assert_string_equal(
      jpath(e, "body/terminations/0/dataChannel/dcsa/hlangRecv"), "de");
  assert_string_equal(
      jpath(e, "body/terminations/0/dataChannel/dcsa/direction"), "recvonly");
  json_decref(out);
  static const char core[] =
      "v=0\r\no=core 1 1 IN IP4 203.0.113.7\r\ns=-\r\nt=0 0\r\n"
      "m=text 40000 RTP/AVP 96 97\r\nc=IN IP4 203.0.113.7\r\n"
      "a=rtpmap:96 t140/1000\r\na=rtpmap:97 red/1000\r\n"
      "a=fmtp:97 96/96/96/96\r\na=fmtp:96 cps=40\r\n";
  static const char reply[] =
      "[{\"contextId\":\"x1\",\"terminations\":["
      "{\"terminationId\":\"access\",\"transport\":\"UDP/DTLS/SCTP\"},"
      "{\"terminationId\":\"core\",\"transport\":\"RTP/AVP\"}]}]";
  out = request(core, DCMF_ALG_CORE, DCMF_ALG_ANSWER, reply);
  e = json_array_get(json_object_get(out, "requests"), 0);
  assert_string_equal(jpath(e, "path"), "t140-dc");
  const json_t *ops = json_object_get(e, "body");
  const json_t *t140 = NULL;
  for (size_t k = 0; k < json_array_size(ops); k++) {
    const json_t *op = json_array_get(ops, k);
    if (strcmp(json_string_value(json_object_get(op, "path")),
               "/terminations/1/t140") == 0)
      t140 = json_object_get(op, "value");
  }
  assert_non_null(t140);
  assert_string_equal(jpath(t140, "payloadType"), "96");
  assert_string_equal(jpath(t140, "redPayloadType"), "97");
  assert_string_equal(jpath(t140, "generations"), "3");
  assert_string_equal(jpath(t140, "cps"), "40");
  json_decref(out);
}

/* The core's answer on m=text says how it takes RTCP (RFC 3550 §6 on
 * the RTP text session): a=rtcp-mux turns rtcpMux on (RFC 5761), an
 * a=rtcp port without it is remoteRtcpPort (RFC 3605), neither leaves
 * both out (RTP port + 1). */
static void test_t140_core_rtcp(void **state) {
  (void)state;
  static const char reply[] =
      "[{\"contextId\":\"x1\",\"terminations\":["
      "{\"terminationId\":\"access\",\"transport\":\"UDP/DTLS/SCTP\"},"
      "{\"terminationId\":\"core\",\"transport\":\"RTP/AVP\"}]}]";
  static const char *const answers[3] = {
      "v=0\r\no=core 1 1 IN IP4 203.0.113.7\r\ns=-\r\nt=0 0\r\n"
      "m=text 40000 RTP/AVP 98\r\nc=IN IP4 203.0.113.7\r\n"
      "a=rtpmap:98 t140/1000\r\na=rtcp-mux\r\n",
      "v=0\r\no=core 1 1 IN IP4 203.0.113.7\r\ns=-\r\nt=0 0\r\n"
      "m=text 40000 RTP/AVP 98\r\nc=IN IP4 203.0.113.7\r\n"
      "a=rtpmap:98 t140/1000\r\na=rtcp:40011\r\n",
      "v=0\r\no=core 1 1 IN IP4 203.0.113.7\r\ns=-\r\nt=0 0\r\n"
      "m=text 40000 RTP/AVP 98\r\nc=IN IP4 203.0.113.7\r\n"
      "a=rtpmap:98 t140/1000\r\n"};
  for (int k = 0; k < 3; k++) {
    json_t *out = request(answers[k], DCMF_ALG_CORE, DCMF_ALG_ANSWER, reply);
    json_t *e = json_array_get(json_object_get(out, "requests"), 0);
    assert_string_equal(jpath(e, "path"), "t140-dc");
    const json_t *ops = json_object_get(e, "body");
    const json_t *mux =
        json_object_get(op_on(ops, "/terminations/1/rtcpMux"), "value");
    const json_t *port =
        json_object_get(op_on(ops, "/terminations/1/remoteRtcpPort"), "value");
    if (k == 0) {
      assert_true(json_is_true(mux));
      assert_null(port);
    } else if (k == 1) {
      assert_null(mux);
      assert_int_equal(json_integer_value(port), 40011);
    } else {
      assert_null(mux);
      assert_null(port);
    }
    json_decref(out);
  }
}

/* The core offers text to a WIC (UE-terminated): the POST names the
 * channel the ALG offers the WIC (stream 1000 + line, the direction the
 * mirror of the core's), the rewrite offers that dcmap, and the WIC's
 * answer patches its dcsa values. */
static void test_t140_core_offer(void **state) {
  (void)state;
  static const char core[] =
      "v=0\r\no=core 1 1 IN IP4 203.0.113.7\r\ns=-\r\nt=0 0\r\n"
      "m=text 40000 RTP/AVP 98 100\r\nc=IN IP4 203.0.113.7\r\n"
      "a=rtpmap:98 t140/1000\r\na=rtpmap:100 red/1000\r\n"
      "a=fmtp:100 98/98/98\r\na=sendonly\r\n";
  struct dcmf_sdp sdp;
  parse_ok(&sdp, core);
  struct dcmf_alg_opts o = {
      .side = DCMF_ALG_CORE, .kind = DCMF_ALG_OFFER, .wic = true};
  json_t *out = NULL;
  char err[256];
  assert_int_equal(dcmf_alg_request(&sdp, &o, &out, err, sizeof err), 0);
  dcmf_sdp_free(&sdp);
  json_t *e = json_array_get(json_object_get(out, "requests"), 0);
  assert_string_equal(jpath(e, "path"), "t140-dc");
  assert_string_equal(jpath(e, "method"), "POST");
  assert_string_equal(
      jpath(e, "body/terminations/0/dataChannel/streamId"), "1000");
  assert_string_equal(
      jpath(e, "body/terminations/0/dataChannel/subprotocol"), "t140");
  assert_string_equal(
      jpath(e, "body/terminations/0/dataChannel/dcsa/direction"), "recvonly");
  assert_string_equal(jpath(e, "body/terminations/1/t140/payloadType"), "98");
  json_decref(out);
  static const char wic_answer[] =
      "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n"
      "m=application 50004 UDP/DTLS/SCTP webrtc-datachannel\r\n"
      "c=IN IP4 192.0.2.10\r\na=setup:active\r\na=fingerprint:" FP "\r\n"
      "a=dcmap:1000 label=\"t140\";subprotocol=\"t140\"\r\n"
      "a=dcsa:1000 fmtp:t140 cps=20\r\na=dcsa:1000 recvonly\r\n";
  static const char reply[] =
      "[{\"contextId\":\"x1\",\"terminations\":["
      "{\"terminationId\":\"access\",\"transport\":\"UDP/DTLS/SCTP\"},"
      "{\"terminationId\":\"core\",\"transport\":\"RTP/AVP\"}]}]";
  out = request(wic_answer, DCMF_ALG_ACCESS, DCMF_ALG_ANSWER, reply);
  e = json_array_get(json_object_get(out, "requests"), 0);
  const json_t *ops = json_object_get(e, "body");
  const json_t *dcsa = NULL;
  for (size_t k = 0; k < json_array_size(ops); k++) {
    const json_t *op = json_array_get(ops, k);
    if (strcmp(json_string_value(json_object_get(op, "path")),
               "/terminations/0/dataChannel/dcsa") == 0)
      dcsa = json_object_get(op, "value");
  }
  assert_non_null(dcsa);
  assert_string_equal(jpath(dcsa, "cps"), "20");
  assert_string_equal(jpath(dcsa, "direction"), "recvonly");
  json_decref(out);
}

static void test_bandwidth(void **state) {
  (void)state;
  const struct dcmf_alg_path *srtp = dcmf_alg_path_find(
      DCMF_ALG_ACCESS, "audio", "UDP/TLS/RTP/SAVP", NULL, false);
  assert_non_null(srtp);
  /* ptime 20: 50 pps x 16 x 8 = 6400 bit/s -> 7 kbit/s. */
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "AS", 64, "audio", 20, true), 71);
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "AS", 64, "audio", 0, false), 57);
  /* ptime 60: 16.67 -> 16 pps x 128 = 2048 -> 3 kbit/s. */
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "AS", 30, "audio", 60, true), 33);
  /* Video 1000 kbit/s: 105 packets of 1200 octets -> 13440 -> 14. */
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "AS", 1000, "video", 0, true), 1014);
  /* Low-rate video: 30 pps floor -> 3840 -> 4. */
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "AS", 10, "video", 0, true), 14);
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "RS", 800, "audio", 20, true), 960);
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "RR", 2000, "audio", 20, false), 1600);
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "TIAS", 48000, "audio", 20, true), 48000);
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "AS", 0, "audio", 20, true), 0);
  assert_int_equal(dcmf_alg_bw_adjust(srtp, "AS", 3, "audio", 20, false), 1);
  const struct dcmf_alg_path *t38 =
      dcmf_alg_path_find(DCMF_ALG_CORE, "image", "udptl", NULL, false);
  assert_non_null(t38);
  assert_string_equal(t38->name, "t38");
  /* 50 x 37 x 8 = 14800 -> 15. */
  assert_int_equal(dcmf_alg_bw_adjust(t38, "AS", 20, "image", 0, true), 35);
  const struct dcmf_alg_path *tls = dcmf_alg_path_find(
      DCMF_ALG_ACCESS, "message", "TCP/TLS/MSRP", NULL, false);
  assert_int_equal(dcmf_alg_bw_adjust(tls, "AS", 100, "message", 0, true), 100);
}

static void expect_error(const char *text, size_t len, int code,
                         unsigned line) {
  struct dcmf_sdp sdp;
  struct dcmf_sdp_error e;
  assert_int_equal(dcmf_sdp_parse(&sdp, text, len, &e), code);
  assert_int_equal(e.line, line);
  char want[32];
  if (line) {
    snprintf(want, sizeof want, "line %u:", line);
    assert_non_null(strstr(e.msg, want));
  }
  assert_int_equal(sdp.nmedia, 0);
  dcmf_sdp_free(&sdp);
}

static void test_hostile(void **state) {
  (void)state;
  static const char head[] = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n";
  char *buf = malloc(DCMF_SDP_MAX_BYTES * 2);
  assert_non_null(buf);
  /* A very long line. */
  int n = snprintf(buf, 128, "%sa=", head);
  memset(buf + n, 'x', DCMF_SDP_MAX_LINE + 10);
  size_t len = (size_t)n + DCMF_SDP_MAX_LINE + 10;
  expect_error(buf, len, DCMF_ERR_TOO_LARGE, 5);
  /* Larger than the whole bound. */
  memset(buf, 'a', DCMF_SDP_MAX_BYTES + 1);
  expect_error(buf, DCMF_SDP_MAX_BYTES + 1, DCMF_ERR_TOO_LARGE, 0);
  /* No c= for the second media line (line 8). */
  static const char noc[] =
      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"
      "m=audio 1000 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\n"
      "a=sendrecv\r\nm=video 1002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
  expect_error(noc, sizeof noc - 1, DCMF_ERR_MALFORMED, 8);
  /* A port-0 line needs none. */
  struct dcmf_sdp sdp;
  static const char zero[] = "v=0\nm=audio 0 RTP/AVP 0\n";
  assert_int_equal(dcmf_sdp_parse(&sdp, zero, sizeof zero - 1, NULL), 0);
  dcmf_sdp_free(&sdp);
  /* Too many m= lines: the 33rd is refused. */
  len = (size_t)snprintf(buf, 128, "%sc=IN IP4 1.2.3.4\r\n", head);
  for (int k = 0; k < DCMF_SDP_MAX_MEDIA + 1; k++)
    len += (size_t)snprintf(buf + len, 64, "m=audio %d RTP/AVP 0\r\n", 2000 + k);
  expect_error(buf, len, DCMF_ERR_TOO_LARGE, 6 + DCMF_SDP_MAX_MEDIA);
  /* Too many lines. */
  len = (size_t)snprintf(buf, 128, "%s", head);
  for (int k = 0; k < DCMF_SDP_MAX_LINES; k++)
    len += (size_t)snprintf(buf + len, 16, "a=x%d\n", k);
  expect_error(buf, len, DCMF_ERR_TOO_LARGE, DCMF_SDP_MAX_LINES + 1);
  free(buf);
  expect_error("v=1\r\n", 5, DCMF_ERR_MALFORMED, 1);
  expect_error("v=0\r\nX=y\r\n", 10, DCMF_ERR_MALFORMED, 2);
  expect_error("v=0\r\ns=a\0b\r\n", 11, DCMF_ERR_MALFORMED, 2);
  expect_error("v=0\r\ns=a\rb\r\n", 11, DCMF_ERR_MALFORMED, 2);
  expect_error("v=0\r\n\r\ns=x\r\n", 12, DCMF_ERR_MALFORMED, 2);
  expect_error("v=0\nc=IN IP4 1.2.3.4\nm=audio 70000 RTP/AVP 0\n", 45,
               DCMF_ERR_MALFORMED, 3);
  expect_error("v=0\nc=IN IP4 1.2.3.4\nm=audio 7 RTP/AVP\n", 38,
               DCMF_ERR_MALFORMED, 3);
  expect_error("", 0, DCMF_ERR_MALFORMED, 0);
  expect_error("\n\r\n", 3, DCMF_ERR_MALFORMED, 1);
}

/* Parse, write, parse again: the same lines, CRLF; editing keeps the
 * RFC 8866 order of line types. */
static void test_roundtrip_and_edit(void **state) {
  (void)state;
  struct dcmf_sdp sdp, again;
  static const char lf[] = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\n"
                           "m=audio 1000 RTP/AVP 0 8\nc=IN IP4 1.2.3.4\n"
                           "a=rtpmap:0 PCMU/8000\na=sendrecv\n";
  parse_ok(&sdp, lf);
  char *w = written(&sdp);
  parse_ok(&again, w);
  char *w2 = written(&again);
  assert_string_equal(w, w2);
  assert_non_null(strstr(w, "a=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"));
  assert_int_equal(dcmf_sdp_add(&sdp.media[0], 'b', "AS:%d", 80), 0);
  assert_int_equal(dcmf_sdp_add(&sdp.session, 'c', "IN IP4 5.6.7.8"), 0);
  char *w3 = written(&sdp);
  assert_non_null(strstr(w3, "c=IN IP4 1.2.3.4\r\nb=AS:80\r\na=rtpmap"));
  assert_non_null(strstr(w3, "s=-\r\nc=IN IP4 5.6.7.8\r\nt=0 0\r\n"));
  assert_string_equal(dcmf_sdp_attr(&sdp.media[0], "sendrecv", 0), "");
  assert_int_equal(dcmf_sdp_remove_attr(&sdp.media[0], "rtpmap"), 1);
  struct dcmf_sdp_mline m;
  assert_int_equal(dcmf_sdp_mline_get(&sdp.media[0], &m), 0);
  assert_string_equal(m.fmt, "0 8");
  free(w);
  free(w2);
  free(w3);
  dcmf_sdp_free(&sdp);
  dcmf_sdp_free(&again);
}

/* A core offer toward a WIC's MSRP channel is not served by /agw/v1
 * (the POST needs the WIC's dcsa path): skipped with the reason; a
 * line that is not e2ae is skipped too. */
static void test_skips(void **state) {
  (void)state;
  static const char core[] =
      "v=0\r\no=c 1 1 IN IP4 203.0.113.50\r\ns=-\r\nt=0 0\r\n"
      "c=IN IP4 203.0.113.50\r\n"
      "m=message 7000 TCP/MSRP *\r\na=path:msrp://c:7000/x;tcp\r\n"
      "m=video 7002 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\n"
      "m=application 7004 UDP/BFCP *\r\n";
  struct dcmf_sdp sdp;
  parse_ok(&sdp, core);
  struct dcmf_alg_opts o = {.side = DCMF_ALG_CORE, .kind = DCMF_ALG_OFFER,
                            .wic = true};
  json_t *out;
  char err[128];
  assert_int_equal(dcmf_alg_request(&sdp, &o, &out, err, sizeof err), 0);
  json_t *r = json_object_get(out, "requests");
  assert_int_equal(json_array_size(r), 4);
  assert_non_null(strstr(jpath(json_array_get(r, 0), "skip"), "dcsa path"));
  assert_string_equal(jpath(json_array_get(r, 1), "path"), "srtp-avp");
  assert_string_equal(jpath(json_array_get(r, 1), "method"), "POST");
  assert_non_null(strstr(jpath(json_array_get(r, 2), "skip"), "port 0"));
  assert_non_null(jpath(json_array_get(r, 3), "skip"));
  json_decref(out);
  dcmf_sdp_free(&sdp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_webrtc_offer_request),
      cmocka_unit_test(test_webrtc_offer_toward_core),
      cmocka_unit_test(test_webrtc_answer),
      cmocka_unit_test(test_webrtc_reoffer),
      cmocka_unit_test(test_webrtc_answer_avp_core),
      cmocka_unit_test(test_t38_flow),
      cmocka_unit_test(test_setup_choice),
      cmocka_unit_test(test_msrp_tls),
      cmocka_unit_test(test_msrp_tls_aware),
      cmocka_unit_test(test_t140_dc),
      cmocka_unit_test(test_t140_requests),
      cmocka_unit_test(test_t140_core_rtcp),
      cmocka_unit_test(test_t140_core_offer),
      cmocka_unit_test(test_bandwidth),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_roundtrip_and_edit),
      cmocka_unit_test(test_skips),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
