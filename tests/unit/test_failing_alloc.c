/*
 * The failing-allocator run over the engines (docs/reliability.md).
 *
 * The executable is linked with -Wl,--wrap for malloc, calloc, realloc,
 * strdup and strndup, so every call to them from dcmf's own objects (the
 * static core library and this file) lands in __wrap_*() below; OpenSSL
 * and jansson get the same allocator through CRYPTO_set_mem_functions()
 * and json_set_alloc_funcs(). Allocations inside other shared libraries
 * (usrsctp, libjwt, libc itself) cannot be reached this way.
 *
 * Each scenario drives one engine (or a small stack of them) through its
 * public API, starting and ending with nothing allocated. It runs once
 * uncounted (so one-time library state such as OpenSSL's provider caches
 * exists before counting), once counting its N allocations, and then N
 * times more, with allocation k failing in run k. Every run must either
 * reach the scenario's full, checked result (the failure was absorbed)
 * or end in a clean error: a DCMF_ERR_* code or a failed state that the
 * engine reports. A crash, an abort, an engine that claims success with
 * a wrong result, and (in the ASan build) a leak all fail the test.
 * A run that claims success must also produce exactly what the warm-up
 * run produced (fa_result).
 *
 * FA_ONLY=test_sc_<name> runs one scenario; FA_BACKTRACE=<scenario name>
 * prints where each failed allocation of that scenario was made.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <execinfo.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "sctp_group.h"
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#if defined(__SANITIZE_ADDRESS__)
#define FA_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FA_LSAN 1
#endif
#endif
#ifdef FA_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include "agwdoc.h"
#include "auth.h"
#include "bfcp.h"
#include "buf.h"
#include "cache.h"
#include "cert.h"
#include "context.h"
#include "datachannel.h"
#include "dcep.h"
#include "dcstack.h"
#include "dtls.h"
#include "errors.h"
#include "fake_res.h"
#include "fingerprint.h"
#include "h1resp.h"
#include "httpdc.h"
#include "ice.h"
#include "jsonpatch.h"
#include "msrp.h"
#include "msrp_relay.h"
#include "problem.h"
#include "ratelimit.h"
#include "relay.h"
#include "relayq.h"
#include "repo.h"
#include "sctp.h"
#include "srtp.h"
#include "stun.h"
#include "urlmap.h"
#include "wire.h"

/* ---- the allocator ---------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *ptr, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *ptr, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static struct fa_state {
  int armed;             /* count (and maybe fail) allocations */
  unsigned long count;   /* allocations seen in this run */
  unsigned long fail_at; /* 1-based index of the one to fail; 0: none */
  unsigned long failed;  /* allocations failed in this run */
} fa;

/* FA_BACKTRACE=<scenario> prints where each failed allocation of that
 * scenario was made (glibc backtrace; build with -g for names). */
static const char *fa_trace;
static const char *fa_name;

static int fa_fail(void) {
  if (!fa.armed) {
    return 0;
  }
  if (++fa.count == fa.fail_at) {
    fa.failed++;
    if (fa_trace != NULL && strcmp(fa_trace, fa_name) == 0) {
      void *frames[16];
      fprintf(stderr, "-- allocation %lu fails here:\n", fa.fail_at);
      backtrace_symbols_fd(frames, backtrace(frames, 16), 2);
    }
    return 1;
  }
  return 0;
}

void *__wrap_malloc(size_t size) {
  return fa_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size) {
  return fa_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *ptr, size_t size) {
  return fa_fail() ? NULL : __real_realloc(ptr, size);
}

char *__wrap_strdup(const char *s) {
  return fa_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n) {
  return fa_fail() ? NULL : __real_strndup(s, n);
}

static void *fa_json_malloc(size_t size) {
  return __wrap_malloc(size);
}

static void fa_json_free(void *ptr) {
  free(ptr);
}

static void *fa_ossl_malloc(size_t size, const char *file, int line) {
  (void)file;
  (void)line;
  return __wrap_malloc(size);
}

static void *fa_ossl_realloc(void *ptr, size_t size, const char *file,
                             int line) {
  (void)file;
  (void)line;
  return __wrap_realloc(ptr, size);
}

static void fa_ossl_free(void *ptr, const char *file, int line) {
  (void)file;
  (void)line;
  free(ptr);
}

/* Harness allocations (queued packets, parsed inputs) must not fail, or
 * the run would test the harness: they are made with the arming off. */
static int fa_pause(void) {
  int was = fa.armed;
  fa.armed = 0;
  return was;
}

static void fa_resume(int was) {
  fa.armed = was;
}

static json_t *h_json(const char *text) {
  int was = fa_pause();
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  fa_resume(was);
  assert_non_null(j);
  return j;
}

static void h_decref(json_t *j) {
  int was = fa_pause();
  json_decref(j);
  fa_resume(was);
}

/* Fails the test, naming the run (the allocation that failed in it). */
#define FAIL(...)                                                              \
  do {                                                                         \
    print_error("run failing allocation %lu of the scenario: ", fa.fail_at);   \
    fail_msg(__VA_ARGS__);                                                     \
  } while (0)

/* ---- the runner ------------------------------------------------------- */

/* What a scenario run came to. */
enum fa_outcome {
  FA_OK = 0,    /* the full result, checked */
  FA_ERROR = 1, /* an engine returned a DCMF_ERR_* code */
  FA_STATE = 2, /* an engine reported failure another way (a failed
                 * state, a refusal counted, a 500 answer, a drop) */
};

/* Checks an engine's return code: 0 goes on; an error is only allowed
 * when an allocation failed, and must be one of ours. */
static int fa_rc(int rv) {
  if (rv == 0) {
    return 0;
  }
  if (fa.failed == 0) {
    FAIL("error %d without a failed allocation", rv);
  }
  if (rv != DCMF_ERR_NOMEM &&
      (rv > DCMF_ERR_MALFORMED || rv < DCMF_ERR_SYSTEM)) {
    FAIL("%d is not a DCMF_ERR_* code", rv);
  }
  return 1;
}

/* A result that is not the full one: allowed only after a failure. */
static enum fa_outcome fa_state(void) {
  if (fa.failed == 0) {
    FAIL("a failed state without a failed allocation");
  }
  return FA_STATE;
}

#define TRY(call)                                                              \
  do {                                                                         \
    if (fa_rc(call)) {                                                         \
      out = FA_ERROR;                                                          \
      goto done;                                                               \
    }                                                                          \
  } while (0)

#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      out = fa_state();                                                        \
      goto done;                                                               \
    }                                                                          \
  } while (0)

typedef enum fa_outcome (*fa_scenario)(void);

/* What the scenario produced in its warm-up run: every later run that
 * reaches its end (a failure absorbed) must produce exactly the same, or
 * the engine lost something while claiming success. */
static char *fa_ref;
static int fa_warmup;

static void fa_result(const char *text) {
  if (fa_warmup) {
    free(fa_ref);
    fa_ref = __real_strdup(text);
    return;
  }
  if (fa_ref == NULL || strcmp(fa_ref, text) != 0) {
    FAIL("a result unlike the run without failures:\n%s\nwanted:\n%s", text,
         fa_ref);
  }
}

/* json_dumps() with the arming off, for fa_result(). */
static void fa_result_json(json_t *j) {
  int was = fa_pause();
  char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  fa_resume(was);
  assert_non_null(text);
  fa_result(text);
  free(text);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fa_check_leaks(const char *name) {
#ifdef FA_LSAN
  if (__lsan_do_recoverable_leak_check() != 0) {
    FAIL("%s: LeakSanitizer found leaks (above)", name);
  }
#else
  (void)name;
#endif
}

static void fa_run(const char *name, fa_scenario fn) {
  double t0 = now_s();
  fa_name = name;
  ERR_clear_error();
  fa = (struct fa_state){.armed = 0};
  fa_warmup = 1;
  assert_int_equal(fn(), FA_OK); /* uncounted warm-up */
  fa_warmup = 0;
  fa = (struct fa_state){.armed = 1};
  enum fa_outcome o = fn();
  fa.armed = 0;
  assert_int_equal(o, FA_OK);
  unsigned long n = fa.count;
  unsigned long tally[3] = {0, 0, 0};
  for (unsigned long k = 1; k <= n; k++) {
    ERR_clear_error();
    fa = (struct fa_state){.armed = 1, .fail_at = k};
    o = fn();
    fa.armed = 0;
    tally[o]++;
  }
  ERR_clear_error();
  free(fa_ref);
  fa_ref = NULL;
  fa_check_leaks(name);
  printf("[failing-alloc] %-13s N=%4lu  absorbed %4lu  error %4lu  "
         "failed-state %4lu  %.2f s\n",
         name, n, tally[FA_OK], tally[FA_ERROR], tally[FA_STATE], now_s() - t0);
  fflush(stdout);
}

/* ---- buf, problem ------------------------------------------------------ */

static enum fa_outcome sc_buf(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_buf b = {0};
  for (int i = 0; i < 40; i++) {
    TRY(dcmf_buf_append(&b, "0123456789abcdef", 16));
    TRY(dcmf_buf_printf(&b, "<%d>", i));
  }
  if (b.len < 40 * 16 || memcmp(b.data, "0123456789abcdef<0>", 19) != 0) {
    FAIL("buf: wrong content");
  }
done:
  dcmf_buf_free(&b);
  return out;
}

static enum fa_outcome sc_problem(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_problem p;
  struct dcmf_buf b = {0};
  memset(&p, 0, sizeof(p));
  dcmf_problem_set(&p, 400, "MANDATORY_IE_INCORRECT", "bad %s", "body");
  dcmf_problem_param(&p, "/terminations/0", "is %s", "missing");
  dcmf_problem_param(&p, "header if-match", "does not match");
  TRY(dcmf_problem_render(&p, &b));
  fa_result(b.data);
done:
  dcmf_buf_free(&b);
  return out;
}

/* ---- relayq, ratelimit ------------------------------------------------- */

static int rq_send(void *user, uint16_t sid, int binary, const uint8_t *data,
                   size_t len) {
  size_t *sent = user;
  (void)sid;
  (void)binary;
  (void)data;
  *sent += len;
  return 0;
}

static enum fa_outcome sc_relayq(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_relayq q;
  memset(&q, 0, sizeof(q));
  q.max_bytes = 1 << 20;
  size_t pushed = 0, sent = 0;
  uint8_t msg[100];
  memset(msg, 'm', sizeof(msg));
  for (uint16_t i = 0; i < 24; i++) {
    TRY(dcmf_relayq_push(&q, (uint16_t)(i % 6), 1, msg, 10 + i, i));
    pushed += 10u + i;
  }
  if (dcmf_relayq_purge(&q, 5) != 4) {
    FAIL("relayq: purge");
  }
  pushed -= (10 + 5) + (10 + 11) + (10 + 17) + (10 + 23);
  size_t drained = dcmf_relayq_drain(&q, rq_send, &sent, 100);
  if (sent != pushed || q.count != 0) {
    FAIL("relayq: drained %zu (%zu of %zu bytes)", drained, sent, pushed);
  }
done:
  dcmf_relayq_clear(&q);
  return out;
}

static enum fa_outcome sc_ratelimit(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_ratelimit *rl = NULL;
  struct dcmf_ratelimit_settings s = {
      .rate = 10, .burst = 2, .slots = 64, .seed = 7};
  TRY(dcmf_ratelimit_new(&rl, &s));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
  a.sin_addr.s_addr = htonl(0x7f000001);
  int allowed = 0;
  for (int i = 0; i < 5; i++) {
    allowed += dcmf_ratelimit_allow(rl, (struct sockaddr *)&a, 1000);
  }
  if (allowed != 2) {
    FAIL("ratelimit: %d allowed", allowed);
  }
done:
  dcmf_ratelimit_del(rl);
  return out;
}

/* ---- stun, ice, fingerprint, dcep (expected to allocate little) -------- */

#define LOCAL_UFRAG "lUfR"
#define LOCAL_PWD "localPasswordOf22chars"
#define REMOTE_UFRAG "rEmO"

static enum fa_outcome sc_stun_ice(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_ice ice;
  struct dcmf_ice_settings s = {.local_ufrag = LOCAL_UFRAG,
                                .local_pwd = LOCAL_PWD,
                                .remote_ufrag = REMOTE_UFRAG};
  TRY(dcmf_ice_init(&ice, &s));
  struct dcmf_stun_request req = {
      .txid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
      .username = LOCAL_UFRAG ":" REMOTE_UFRAG,
      .key = (const uint8_t *)LOCAL_PWD,
      .key_len = sizeof(LOCAL_PWD) - 1,
      .priority = 0x6e0001ff,
      .role = DCMF_STUN_ROLE_CONTROLLING,
      .tie_breaker = 42,
      .use_candidate = 1,
  };
  uint8_t pkt[512], resp[512];
  size_t len = 0, rlen = 0;
  TRY(dcmf_stun_build_request(pkt, sizeof(pkt), &len, &req));
  struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(4000)};
  from.sin_addr.s_addr = htonl(0x7f000001);
  int rc = dcmf_ice_recv(&ice, (struct sockaddr *)&from, pkt, len, 1000, resp,
                         sizeof(resp), &rlen);
  if (rc < 0) {
    TRY(rc);
  }
  EXPECT(rc == DCMF_ICE_RESPOND_LATCHED);
  struct dcmf_stun_msg m;
  if (dcmf_stun_parse(&m, resp, rlen) != 0 ||
      dcmf_stun_check_fingerprint(&m) != 0 ||
      m.type != DCMF_STUN_BINDING_SUCCESS) {
    FAIL("ice: a latched answer that does not parse");
  }
  /* The integrity check allocates too (OpenSSL's HMAC). */
  rc = dcmf_stun_check_integrity(&m, (const uint8_t *)LOCAL_PWD,
                                 sizeof(LOCAL_PWD) - 1);
  EXPECT(rc == 0);
done:
  return out;
}

static enum fa_outcome sc_fingerprint_dcep(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_fingerprint_set set;
  char text[400];
  memset(&set, 0, sizeof(set));
  TRY(dcmf_fingerprint_parse(
      "SHA-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:"
      "3D:1A:7D:AB:F6:12:2F:DE:7F:1D:3E:4A",
      &set));
  if (dcmf_fingerprint_format(&set, text, sizeof(text)) <= 0 ||
      strncmp(text, "SHA-256 4A:AD:", 14) != 0) {
    FAIL("fingerprint: wrong format");
  }
  struct dcmf_dcep_open o = {.channel_type = 0,
                             .label = (const uint8_t *)"chat",
                             .label_len = 4,
                             .protocol = (const uint8_t *)"x",
                             .protocol_len = 1};
  uint8_t msg[64];
  int mlen = dcmf_dcep_build_open(&o, msg, sizeof(msg));
  if (mlen <= 0) {
    FAIL("dcep: build %d", mlen);
  }
  struct dcmf_dcep_open back;
  if (dcmf_dcep_parse(msg, (size_t)mlen, &back) != DCMF_DCEP_OPEN) {
    FAIL("dcep: not parsed");
  }
  if (back.label_len != 4 || memcmp(back.label, "chat", 4) != 0) {
    FAIL("dcep: wrong label");
  }
done:
  return out;
}

/* ---- h1resp, urlmap, relay (no allocations expected) ------------------- */

static int h1_head(void *user, int status,
                   const struct dcmf_h1resp_header *headers, size_t n,
                   int64_t content_length) {
  (void)headers;
  (void)n;
  *(int *)user = status + (int)content_length;
  return 0;
}

static int h1_body(void *user, const uint8_t *data, size_t len) {
  (void)user;
  (void)data;
  (void)len;
  return 0;
}

static void h1_complete(void *user, int keep_alive) {
  (void)user;
  (void)keep_alive;
}

/* These engines are expected not to allocate at all (N = 0). */
static enum fa_outcome sc_h1_urlmap_relay(void) {
  enum fa_outcome out = FA_OK;
  static const struct dcmf_h1resp_callbacks cbs = {h1_head, h1_body,
                                                   h1_complete};
  struct dcmf_h1resp *p = __real_malloc(sizeof(*p));
  int seen = 0;
  dcmf_h1resp_init(p, &cbs, &seen);
  static const char r[] =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
  size_t used = 0;
  if (dcmf_h1resp_feed(p, (const uint8_t *)r, sizeof(r) - 1, &used) !=
          DCMF_H1RESP_COMPLETE ||
      seen != 205) {
    FAIL("h1resp: not complete");
  }
  free(p);
  struct dcmf_url base, to;
  assert_int_equal(
      dcmf_url_parse("https://ar.example.net:8443/apps/a/index.html", &base),
      0);
  assert_int_equal(dcmf_urlmap_resolve_url(&base, "/x.js?v=1", 9, &to), 0);
  if (strcmp(to.path, "/apps/a/x.js?v=1") != 0) {
    FAIL("urlmap: %s", to.path);
  }
  struct dcmf_relay relay;
  struct dcmf_relay_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.has_core_remote = 1;
  struct sockaddr_in *core = (struct sockaddr_in *)&cfg.core_remote;
  core->sin_family = AF_INET;
  core->sin_port = htons(50000);
  core->sin_addr.s_addr = htonl(0x7f000001);
  assert_int_equal(dcmf_relay_init(&relay, &cfg), 0);
  struct sockaddr_in phone = {.sin_family = AF_INET, .sin_port = htons(7)};
  phone.sin_addr.s_addr = htonl(0x7f000002);
  struct dcmf_relay_verdict v;
  const uint8_t d[3] = {1, 2, 3};
  dcmf_relay_recv(&relay, DCMF_RELAY_ACCESS, (struct sockaddr *)&phone, d, 3,
                  &v);
  if (!v.forward || v.out != DCMF_RELAY_CORE) {
    FAIL("relay: not forwarded");
  }
  return out;
}

/* ---- jsonpatch, agwdoc -------------------------------------------------- */

static enum fa_outcome sc_jsonpatch(void) {
  enum fa_outcome out = FA_OK;
  json_t *doc = h_json("{\"a\":{\"b\":[1,2,3]},\"c\":\"x\",\"d\":{}}");
  json_t *patch =
      h_json("[{\"op\":\"add\",\"path\":\"/a/b/-\",\"value\":{\"k\":[4,5]}},"
             "{\"op\":\"replace\",\"path\":\"/c\",\"value\":\"y\"},"
             "{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/d/e\"},"
             "{\"op\":\"move\",\"from\":\"/d/e/b/0\",\"path\":\"/f\"},"
             "{\"op\":\"remove\",\"path\":\"/a/b/1\"},"
             "{\"op\":\"test\",\"path\":\"/f\",\"value\":1}]");
  json_t *result = NULL;
  struct dcmf_jsonpatch_error err;
  TRY(dcmf_jsonpatch_apply(doc, patch, &result, &err));
  json_t *want = h_json("{\"a\":{\"b\":[1,3,{\"k\":[4,5]}]},\"c\":\"y\","
                        "\"d\":{\"e\":{\"b\":[2,3,{\"k\":[4,5]}]}},\"f\":1}");
  int same = json_equal(result, want);
  h_decref(want);
  if (!same) {
    FAIL("jsonpatch: wrong result");
  }
  fa_result_json(result);
done:
  h_decref(result);
  h_decref(doc);
  h_decref(patch);
  return out;
}

/* A patch whose third operation fails its test: the same refusal, with
 * the same operation and reason, whatever failed before it. */
static enum fa_outcome sc_jsonpatch_refused(void) {
  enum fa_outcome out = FA_OK;
  json_t *doc = h_json("{\"a\":[1,2],\"b\":{\"c\":\"x\"}}");
  json_t *patch =
      h_json("[{\"op\":\"add\",\"path\":\"/a/0\",\"value\":0},"
             "{\"op\":\"copy\",\"from\":\"/b\",\"path\":\"/d\"},"
             "{\"op\":\"test\",\"path\":\"/d/c\",\"value\":\"y\"}]");
  json_t *result = NULL;
  struct dcmf_jsonpatch_error err;
  memset(&err, 0, sizeof(err));
  int rv = dcmf_jsonpatch_apply(doc, patch, &result, &err);
  if (rv == DCMF_ERR_NOMEM) {
    TRY(rv);
  }
  if (rv == 0 || result != NULL) {
    FAIL("jsonpatch: a failing test was applied");
  }
  char text[512];
  snprintf(text, sizeof(text), "%d|%ld|%s|%s", rv, err.op_index, err.param,
           err.reason);
  fa_result(text);
done:
  h_decref(result);
  h_decref(doc);
  h_decref(patch);
  return out;
}

static enum fa_outcome sc_agwdoc(void) {
  enum fa_outcome out = FA_OK;
  json_t *doc = h_json(
      "{\"terminations\":[{\"terminationId\":\"access\",\"remote\":{"
      "\"ipv4Addr\":\"127.0.0.2\",\"port\":40000}},"
      "{\"terminationId\":\"core\",\"remote\":{\"ipv4Addr\":\"127.0.0.1\","
      "\"port\":50000}}]}");
  json_t *built = NULL, *view = NULL;
  struct dcmf_agwdoc_limits lim = {1, 1};
  struct dcmf_relay_config cfg;
  size_t terms[2];
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  TRY(dcmf_agwdoc_parse(doc, DCMF_AGWDOC_CREATE, &lim, &cfg, terms, &p));
  const uint16_t ports[DCMF_RELAY_SIDES] = {30000, 30001};
  built = dcmf_agwdoc_build("6a5b7c1e-0000-4000-8000-000000000001", &cfg,
                            "192.0.2.1", ports);
  EXPECT(built != NULL);
  struct dcmf_relay_counters c;
  memset(&c, 0, sizeof(c));
  c.packets[0] = 3;
  struct sockaddr_in lat = {.sin_family = AF_INET, .sin_port = htons(40000)};
  lat.sin_addr.s_addr = htonl(0x7f000002);
  view = dcmf_agwdoc_view(built, &c, (struct sockaddr *)&lat);
  EXPECT(view != NULL);
  fa_result_json(view);
done:
  h_decref(view);
  h_decref(built);
  h_decref(doc);
  return out;
}

/* ---- the context registry (with mediactx validation) ------------------- */

static enum fa_outcome sc_registry(void) {
  enum fa_outcome out = FA_OK;
  struct fake_res fr;
  struct dcmf_resources res = fake_res_init(&fr, 41000, 8);
  struct dcmf_registry_settings rs = {.advertise_addr = "192.0.2.1",
                                      .local_fingerprint = "SHA-256 AA:BB",
                                      .sctp_port = 5000,
                                      .max_contexts = 10};
  struct dcmf_registry *reg = NULL;
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  json_t *req =
      h_json("{\"terminations\":[{\"terminationId\":\"ue-a\",\"medias\":[{"
             "\"mediaId\":\"m2\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
             "\"streams\":{\"0\":{\"subprotocol\":\"http\"}},"
             "\"remoteDcEndpoint\":{\"tlsId\":\" abc3de65cddef001be82 \","
             "\"fingerprint\":\"sha-256 4a:ad:b9:b1:3f:82:18:3b:54:02:12:df:"
             "3e:5d:49:6b:19:e5:7c:ab:3d:1a:7d:ab:f6:12:2f:de:7f:1d:3e:4a\"},"
             "\"securitySetup\":\"ACTPASS\"}}]}]}");
  json_t *patch =
      h_json("[{\"op\":\"replace\",\"path\":\"/terminations/0/medias/0/dcMedia/"
             "maxMessageSize\",\"value\":32},"
             "{\"op\":\"add\",\"path\":\"/terminations/0/medias/-\",\"value\":{"
             "\"mediaId\":\"m3\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
             "\"streams\":{\"0\":{\"subprotocol\":\"http\"}},"
             "\"securitySetup\":\"ACTIVE\"}}}]");
  json_t *event = NULL;
  TRY(dcmf_registry_new(&reg, &rs, &res));
  struct dcmf_context *ctx = NULL;
  /* These two answer with an HTTP status: 500 for a failure of ours. */
  int st = dcmf_registry_create(reg, req, &ctx, &p);
  if (st != 0) {
    assert_int_equal(st, 500);
    assert_int_equal(p.status, 500);
    out = fa_state();
    goto done;
  }
  st = dcmf_registry_patch(reg, ctx, patch, &p);
  if (st != 0) {
    assert_int_equal(st, 500);
    assert_int_equal(p.status, 500);
    out = fa_state();
    goto done;
  }
  if (ctx->n_medias != 2 || fr.in_use != 2) {
    FAIL("registry: %zu medias, %zu ports", ctx->n_medias, fr.in_use);
  }
  int was = fa_pause();
  event = json_pack("{s:s}", "event", "DC_OPEN");
  fa_resume(was);
  /* add_event takes the reference whatever it returns. */
  json_t *ev = event;
  event = NULL;
  TRY(dcmf_registry_add_event(reg, ctx, ev, 4));
  fa_result_json(ctx->doc);
  dcmf_registry_delete(reg, ctx);
  if (dcmf_registry_count(reg) != 0 || fr.in_use != 0) {
    FAIL("registry: not empty after delete");
  }
done:
  dcmf_registry_del(reg);
  if (fr.in_use != 0) {
    FAIL("registry: %zu ports leaked", fr.in_use);
  }
  h_decref(req);
  h_decref(patch);
  return out;
}

/* UDP-proxy mode: a port per application stream (MDC2), kept, added and
 * given back by a patch. */
static enum fa_outcome sc_registry_udp(void) {
  enum fa_outcome out = FA_OK;
  struct fake_res fr;
  struct dcmf_resources res = fake_res_init(&fr, 41000, 8);
  struct dcmf_registry_settings rs = {.advertise_addr = "192.0.2.1",
                                      .local_fingerprint = "SHA-256 AA:BB",
                                      .sctp_port = 5000,
                                      .max_contexts = 10};
  struct dcmf_registry *reg = NULL;
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  json_t *req =
      h_json("{\"terminations\":[{\"terminationId\":\"ue\",\"medias\":[{"
             "\"mediaId\":\"1\",\"mediaResourceType\":\"DC\",\"dcMedia\":{"
             "\"mediaProxyConfig\":\"UDP\",\"remoteMdc2Endpoint\":{\"ip\":{"
             "\"ipv4Addr\":\"127.0.0.1\"},\"transport\":\"UDP\",\"portNumber\":"
             "9000},\"streams\":{\"0\":{},\"1000\":{},\"1001\":{}}}}]}]}");
  json_t *patch =
      h_json("[{\"op\":\"add\",\"path\":\"/terminations/0/medias/0/dcMedia/"
             "streams/1002\",\"value\":{}},"
             "{\"op\":\"remove\",\"path\":\"/terminations/0/medias/0/"
             "dcMedia/streams/1000\"}]");
  TRY(dcmf_registry_new(&reg, &rs, &res));
  struct dcmf_context *ctx = NULL;
  int st = dcmf_registry_create(reg, req, &ctx, &p);
  if (st != 0) {
    assert_int_equal(st, 500);
    out = fa_state();
    goto done;
  }
  if (fr.in_use != 3) {
    FAIL("registry-udp: %zu ports after create", fr.in_use);
  }
  st = dcmf_registry_patch(reg, ctx, patch, &p);
  if (st != 0) {
    assert_int_equal(st, 500);
    /* A failed patch changes nothing. */
    if (fr.in_use != 3) {
      FAIL("registry-udp: %zu ports after a failed patch", fr.in_use);
    }
    out = fa_state();
    goto done;
  }
  if (fr.in_use != 3) {
    FAIL("registry-udp: %zu ports after the patch", fr.in_use);
  }
  fa_result_json(ctx->doc);
done:
  dcmf_registry_del(reg);
  if (fr.in_use != 0) {
    FAIL("registry-udp: %zu ports leaked", fr.in_use);
  }
  h_decref(req);
  h_decref(patch);
  return out;
}

/* ---- cache -------------------------------------------------------------- */

#define HDR(n, v)                                                              \
  { n, sizeof(n) - 1, v, sizeof(v) - 1 }

static enum fa_outcome sc_cache(void) {
  enum fa_outcome out = FA_OK;
  static const uint64_t t0 = (uint64_t)1700000000 * 1000;
  struct dcmf_cache_settings s;
  struct dcmf_cache *c = NULL;
  struct dcmf_cache_header h[] = {HDR("ETag", "\"a\""),
                                  HDR("Cache-Control", "max-age=10"),
                                  HDR("Content-Type", "text/html")};
  struct dcmf_cache_header nm[] = {HDR("Cache-Control", "max-age=100")};
  struct dcmf_cache_hit hit;
  char url[64];
  dcmf_cache_settings_default(&s);
  TRY(dcmf_cache_new(&c, &s, NULL));
  for (int i = 0; i < 20; i++) { /* enough to grow the index */
    snprintf(url, sizeof(url), "https://ar.example.net/f/%d", i);
    struct dcmf_cache_request rq = {"GET", url, NULL, 0};
    struct dcmf_cache_store *st = NULL;
    TRY(dcmf_cache_store_begin(c, &rq, 200, h, 3, t0, &st));
    int rv = dcmf_cache_store_append(c, st, "body-", 5);
    if (rv == 0) {
      rv = dcmf_cache_store_append(c, st, url, strlen(url));
    }
    int crv = dcmf_cache_store_commit(c, st);
    TRY(rv);
    TRY(crv);
  }
  struct dcmf_cache_request rq = {"GET", url, NULL, 0};
  dcmf_cache_lookup(c, &rq, t0 + 20 * 1000, &hit);
  if (hit.outcome != DCMF_CACHE_STALE_REVALIDATE) {
    FAIL("cache: %d", (int)hit.outcome);
  }
  struct dcmf_cache_entry *e = hit.entry;
  int rv = dcmf_cache_update(c, &e, nm, 1, t0 + 20 * 1000);
  dcmf_cache_release(c, e);
  TRY(rv);
  dcmf_cache_lookup(c, &rq, t0 + 30 * 1000, &hit);
  if (hit.outcome != DCMF_CACHE_FRESH) {
    FAIL("cache: not fresh after the update");
  }
  char text[256];
  snprintf(text, sizeof(text), "%.*s|%zu headers", (int)hit.response->body_len,
           (const char *)hit.response->body, hit.response->nheaders);
  fa_result(text);
  dcmf_cache_release(c, hit.entry);
done:
  dcmf_cache_del(c);
  return out;
}

/* ---- bearer tokens (auth) ----------------------------------------------- */

static const char hmac_secret[] = "a shared secret of thirty-two b!";
static char bearer_header[1024];

static void b64url(const uint8_t *in, size_t len, char *o) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint32_t acc = 0;
  unsigned bits = 0;
  for (size_t i = 0; i < len; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      *o++ = abc[(acc >> bits) & 63];
    }
  }
  if (bits > 0) {
    *o++ = abc[(acc << (6 - bits)) & 63];
  }
  *o = '\0';
}

#define AUD "7d5f8a1c-9e3b-4c2d-8f6a-0b1c2d3e4f50"
#define NOW 1800000000LL

/* An HS256 token, made once before the run. */
static void make_token(void) {
  static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  char claims[256], h[128], c[512], tok[800], sig[128];
  snprintf(claims, sizeof(claims),
           "{\"iss\":\"nrf-1\",\"aud\":\"" AUD "\",\"scope\":\"nmf-mrm\","
           "\"exp\":%lld,\"iat\":%lld}",
           NOW + 600, NOW - 10);
  b64url((const uint8_t *)hdr, strlen(hdr), h);
  b64url((const uint8_t *)claims, strlen(claims), c);
  int n = snprintf(tok, sizeof(tok), "%s.%s", h, c);
  uint8_t raw[64];
  unsigned int rl = 0;
  HMAC(EVP_sha256(), hmac_secret, (int)strlen(hmac_secret), (uint8_t *)tok,
       (size_t)n, raw, &rl);
  b64url(raw, rl, sig);
  snprintf(bearer_header, sizeof(bearer_header), "Bearer %s.%s", tok, sig);
}

static enum fa_outcome sc_bearer(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_auth_settings s = {
      .hmac_secret = (const uint8_t *)hmac_secret,
      .hmac_secret_len = sizeof(hmac_secret) - 1,
      .audience = AUD,
      .issuer = "nrf-1",
      .leeway_s = 30,
  };
  struct dcmf_auth *a = NULL;
  char err[256];
  TRY(dcmf_auth_new(&a, &s, err, sizeof(err)));
  struct dcmf_auth_result r;
  dcmf_auth_check(a, bearer_header, DCMF_AUTH_API_MRM, NULL, NULL, NOW, &r);
  /* A refusal here must be the engine's own answer to a failure, and
   * never a 403 or a verdict about the token's contents. */
  if (r.status != 0) {
    if (r.status != 401 && r.status != 500 && r.status != 503) {
      FAIL("bearer: status %d (%s)", r.status, r.detail);
    }
    out = fa_state();
  }
done:
  dcmf_auth_del(a);
  return out;
}

/* ---- repo and httpdc ---------------------------------------------------- */

static uint8_t page[3000];

static enum fa_outcome sc_repo_httpdc(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_repo *repo = NULL;
  struct dcmf_httpdc *h = NULL;
  struct dcmf_buf got = {0};
  TRY(dcmf_repo_new(&repo, NULL));
  TRY(dcmf_repo_add(repo, "/index.html", page, sizeof(page)));
  TRY(dcmf_repo_add(repo, "/app/main.js", "x()", 3));
  TRY(dcmf_repo_add(repo, "/app/style.css", "a{}", 3));
  struct dcmf_httpdc_backend backend;
  dcmf_httpdc_repo_backend(&backend, repo);
  struct dcmf_httpdc_settings hs = {.max_message_size = 1024,
                                    .max_request_body = 64};
  TRY(dcmf_httpdc_new(&h, &hs, &backend));
  static const char reqs[] =
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /app/main.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"z\"\r\n\r\n"
      "POST /app/style.css HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"
      "abcd"
      "HEAD /app/ HTTP/1.1\r\nHost: x\r\n\r\n";
  /* In two pieces, so the engine has to hold a partial request. */
  TRY(dcmf_httpdc_recv(h, (const uint8_t *)reqs, 40));
  TRY(dcmf_httpdc_recv(h, (const uint8_t *)reqs + 40, sizeof(reqs) - 41));
  uint8_t msg[1024];
  size_t n = 0;
  for (int i = 0; i < 100; i++) {
    TRY(dcmf_httpdc_write(h, msg, sizeof(msg), &n));
    if (n == 0) {
      break;
    }
    int was = fa_pause();
    int rv = dcmf_buf_append(&got, msg, n);
    fa_resume(was);
    assert_int_equal(rv, 0);
  }
  /* Four answers; a 500 stands for the backend's failure. */
  const char *p = got.data;
  int answers = 0, errors = 0;
  while (p != NULL && (p = strstr(p, "HTTP/1.1 ")) != NULL) {
    answers++;
    errors += strncmp(p, "HTTP/1.1 5", 10) == 0;
    p += 9;
  }
  if (answers != 4) {
    FAIL("httpdc: %d answers", answers);
  }
  EXPECT(errors == 0);
  fa_result(got.data);
done:
  dcmf_httpdc_del(h);
  dcmf_repo_del(repo);
  int was = fa_pause();
  dcmf_buf_free(&got);
  fa_resume(was);
  return out;
}

/* A backend that answers later, in pieces (as the HTTP proxy does). */
struct st_backend {
  uint64_t ids[4];
  size_t n;
  size_t cancelled;
};

static int st_request(void *user, struct dcmf_httpdc *h,
                      const struct dcmf_httpdc_request *req) {
  struct st_backend *b = user;
  (void)h;
  if (b->n < 4) {
    b->ids[b->n++] = req->id;
  }
  return 0;
}

static void st_cancel(void *user, uint64_t id) {
  struct st_backend *b = user;
  (void)id;
  b->cancelled++;
}

static enum fa_outcome sc_httpdc_stream(void) {
  enum fa_outcome out = FA_OK;
  struct st_backend sb = {{0}, 0, 0};
  struct dcmf_httpdc_backend backend = {
      .request = st_request, .cancel = st_cancel, .user = &sb};
  struct dcmf_httpdc_settings hs = {.max_message_size = 1024,
                                    .stream_buffer = 4096};
  struct dcmf_httpdc *h = NULL;
  struct dcmf_buf got = {0};
  TRY(dcmf_httpdc_new(&h, &hs, &backend));
  static const char reqs[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
  TRY(dcmf_httpdc_recv(h, (const uint8_t *)reqs, sizeof(reqs) - 1));
  if (sb.n != 2) {
    FAIL("httpdc: %zu requests handed over", sb.n);
  }
  struct dcmf_httpdc_header hd[] = {{"X-From", 6, "upstream", 8}};
  struct dcmf_httpdc_response head = {.status = 200,
                                      .content_type = "text/plain",
                                      .headers = hd,
                                      .n_headers = 1};
  /* The first without a length (chunked), the second with one. */
  TRY(dcmf_httpdc_respond_start(h, sb.ids[0], &head, -1));
  TRY(dcmf_httpdc_respond_start(h, sb.ids[1], &head, 3 * 700));
  uint8_t piece[700];
  for (int i = 0; i < 3; i++) {
    memset(piece, 'p' + i, sizeof(piece));
    TRY(dcmf_httpdc_respond_data(h, sb.ids[0], piece, sizeof(piece)));
    TRY(dcmf_httpdc_respond_data(h, sb.ids[1], piece, sizeof(piece)));
  }
  TRY(dcmf_httpdc_respond_end(h, sb.ids[0]));
  TRY(dcmf_httpdc_respond_end(h, sb.ids[1]));
  uint8_t msg[1024];
  size_t n = 0;
  for (int i = 0; i < 100; i++) {
    TRY(dcmf_httpdc_write(h, msg, sizeof(msg), &n));
    if (n == 0) {
      break;
    }
    int was = fa_pause();
    int rv = dcmf_buf_append(&got, msg, n);
    fa_resume(was);
    assert_int_equal(rv, 0);
  }
  fa_result(got.data);
done:
  dcmf_httpdc_del(h);
  int was = fa_pause();
  dcmf_buf_free(&got);
  fa_resume(was);
  return out;
}

/* ---- sctp + datachannel (+ dcep, httpdc) in memory, without DTLS -------- */

#define QMAX 512

struct sside {
  struct dcmf_sctp *sctp;
  struct dcmf_dc *dc;
  struct dcmf_httpdc *http; /* server only */
  struct sside *other;
  uint8_t *q[QMAX];
  size_t qlen[QMAX];
  size_t nq;
  char received[8192];
  size_t rlen;
  size_t echoed; /* client: bytes echoed on the in-band channel */
  int opened, closed, up, err;
};

static void s_packet(void *user, const uint8_t *data, size_t len) {
  struct sside *s = user;
  if (s->nq == QMAX) {
    return; /* a lost packet: SCTP retransmits */
  }
  s->q[s->nq] = __real_malloc(len);
  memcpy(s->q[s->nq], data, len);
  s->qlen[s->nq++] = len;
}

static void s_message(void *user, uint16_t sid, uint32_t ppid,
                      const uint8_t *data, size_t len) {
  struct sside *s = user;
  dcmf_dc_on_sctp_message(s->dc, sid, ppid, data, len);
}

static void s_reset(void *user, uint16_t sid) {
  struct sside *s = user;
  dcmf_dc_on_sctp_reset(s->dc, sid);
}

static void s_state(void *user, enum dcmf_sctp_state st) {
  struct sside *s = user;
  s->up = st == DCMF_SCTP_UP;
  dcmf_dc_on_sctp_state(s->dc, st);
}

static void s_writable(void *user) {
  struct sside *s = user;
  dcmf_dc_on_sctp_writable(s->dc);
}

static int c_open(void *user, struct dcmf_dc_channel *ch) {
  struct sside *s = user;
  s->opened++;
  /* The server serves HTTP on 0 and echoes on channels labelled "keep". */
  return s->http == NULL || ch->sid == 0 || strcmp(ch->label, "keep") == 0 ? 0
                                                                           : -1;
}

static void c_message(void *user, struct dcmf_dc_channel *ch, int binary,
                      const uint8_t *data, size_t len) {
  struct sside *s = user;
  if (ch->sid != 0) {
    if (s->http == NULL) {
      s->echoed += len;
      return;
    }
    int rv = dcmf_dc_send(s->dc, ch->sid, binary, data, len);
    if (rv != 0 && s->err == 0) {
      s->err = rv;
    }
    return;
  }
  if (s->http == NULL) {
    if (s->rlen + len <= sizeof(s->received)) {
      memcpy(s->received + s->rlen, data, len);
      s->rlen += len;
    }
    return;
  }
  int rv = dcmf_httpdc_recv(s->http, data, len);
  if (rv != 0 && s->err == 0) {
    s->err = rv;
  }
  uint8_t o[1024];
  size_t n;
  while ((rv = dcmf_httpdc_write(s->http, o, sizeof(o), &n)) == 0 && n > 0) {
    rv = dcmf_dc_send(s->dc, ch->sid, 1, o, n);
    if (rv != 0) {
      break;
    }
  }
  if (rv != 0 && s->err == 0) {
    s->err = rv;
  }
}

static void c_closed(void *user, struct dcmf_dc_channel *ch) {
  struct sside *s = user;
  (void)ch;
  s->closed++;
}

static const struct dcmf_sctp_callbacks s_cbs = {
    s_packet, s_message, s_reset, s_state, s_writable, NULL, NULL};
static const struct dcmf_dc_callbacks c_cbs = {c_open, c_message, c_closed};

static size_t s_deliver(struct sside *from) {
  size_t n = from->nq;
  uint8_t *q[QMAX];
  size_t ql[QMAX];
  memcpy(q, from->q, n * sizeof(*q));
  memcpy(ql, from->qlen, n * sizeof(*ql));
  from->nq = 0;
  for (size_t i = 0; i < n; i++) {
    if (from->other->sctp != NULL) {
      dcmf_sctp_input(from->other->sctp, q[i], ql[i]);
    }
    free(q[i]);
  }
  return n;
}

/* Carries packets both ways, ticking usrsctp's timers on a fake clock
 * while nothing is in flight; bounded in rounds. */
static void s_pump(struct sside *a, struct sside *b) {
  for (int i = 0; i < 400; i++) {
    if (s_deliver(a) + s_deliver(b) > 0) {
      continue;
    }
    for (int t = 0; t < 10 && a->nq == 0 && b->nq == 0; t++) {
      dcmf_sctp_stack_tick(50);
      dcmf_sctp_drain(a->sctp);
      dcmf_sctp_drain(b->sctp);
    }
    if (a->nq == 0 && b->nq == 0) {
      return;
    }
  }
}

static void s_free(struct sside *s) {
  dcmf_dc_del(s->dc);
  s->dc = NULL;
  dcmf_sctp_del(s->sctp);
  s->sctp = NULL;
  dcmf_httpdc_del(s->http);
  s->http = NULL;
  for (size_t i = 0; i < s->nq; i++) {
    free(s->q[i]);
  }
  s->nq = 0;
}

static struct sside sa_client, sa_server;
static char sa_ref[8192];
static size_t sa_ref_len;

static enum fa_outcome sc_sctp_dc(void) {
  enum fa_outcome out = FA_OK;
  struct sside *c = &sa_client, *s = &sa_server;
  struct dcmf_repo *repo = NULL;
  memset(c, 0, sizeof(*c));
  memset(s, 0, sizeof(*s));
  c->other = s;
  s->other = c;
  struct dcmf_sctp_settings ss = {.local_port = 5000,
                                  .remote_port = 5000,
                                  .max_streams = 16,
                                  .max_message_size = 65536,
                                  .send_buffer = 1 << 18};
  TRY(dcmf_repo_new(&repo, NULL));
  TRY(dcmf_repo_add(repo, "/index.html", page, sizeof(page)));
  struct dcmf_httpdc_backend backend;
  dcmf_httpdc_repo_backend(&backend, repo);
  struct dcmf_httpdc_settings hs = {.max_message_size = 1024};
  TRY(dcmf_httpdc_new(&s->http, &hs, &backend));
  TRY(dcmf_sctp_new(&c->sctp, &ss, &s_cbs, c));
  TRY(dcmf_sctp_new(&s->sctp, &ss, &s_cbs, s));
  TRY(dcmf_dc_new(&c->dc, c->sctp, &c_cbs, c));
  TRY(dcmf_dc_new(&s->dc, s->sctp, &c_cbs, s));
  TRY(dcmf_dc_add_negotiated(c->dc, 0, "http", NULL, 256));
  TRY(dcmf_dc_add_negotiated(s->dc, 0, "http", NULL, 256));
  TRY(dcmf_sctp_connect(c->sctp));
  TRY(dcmf_sctp_connect(s->sctp));
  s_pump(c, s);
  EXPECT(c->up && s->up && c->opened == 1 && s->opened == 1);
  /* An in-band channel the server refuses: DCEP both ways. */
  TRY(dcmf_dc_open(c->dc, 2, "chat", "chat", NULL, 256));
  s_pump(c, s);
  if (c->up && s->up && dcmf_dc_find(c->dc, 2) != NULL) {
    FAIL("sctp: channel 2 was neither refused nor the association given up");
  }
  EXPECT(c->up && s->up && s->opened == 2 && c->closed == 1);
  /* One it accepts, used before the ACK comes back (RFC 8832 6). */
  TRY(dcmf_dc_open(c->dc, 4, "keep", "echo", NULL, 256));
  TRY(dcmf_dc_send(c->dc, 4, 1, (const uint8_t *)"hello", 5));
  s_pump(c, s);
  TRY(s->err);
  if (c->echoed != 5) {
    /* The failure must show: the association given up, or the channel
     * closed (refused) on the phone's side; not a channel that never
     * answers. */
    if (c->up && s->up && dcmf_dc_find(c->dc, 4) != NULL) {
      FAIL("sctp: channel 4 neither echoes nor closes");
    }
    out = fa_state();
    goto done;
  }
  EXPECT(c->up && s->up && s->opened == 3);
  static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  TRY(dcmf_dc_send(c->dc, 0, 0, (const uint8_t *)req, sizeof(req) - 1));
  s_pump(c, s);
  TRY(s->err);
  if (fa_warmup) {
    memcpy(sa_ref, c->received, c->rlen);
    sa_ref_len = c->rlen;
  }
  /* A given-up association is a failed state; one still up must have
   * carried every byte. */
  EXPECT(c->up && s->up);
  /* The repository backend answers 500 when it cannot build a head. */
  EXPECT(c->rlen < 10 || memcmp(c->received, "HTTP/1.1 5", 10) != 0);
  if (c->rlen != sa_ref_len || memcmp(c->received, sa_ref, c->rlen) != 0) {
    FAIL("sctp: the page arrived damaged (%zu bytes)", c->rlen);
  }
  /* Closing channel 0 resets its stream (a request of ours, an event on
   * the other side). */
  dcmf_dc_close(c->dc, 0);
  s_pump(c, s);
  EXPECT(c->up && s->up);
  char text[64];
  snprintf(text, sizeof(text), "closed %d/%d open %d/%d", c->closed, s->closed,
           dcmf_dc_find(c->dc, 0) != NULL, dcmf_dc_find(s->dc, 0) != NULL);
  fa_result(text);
done:
  s_free(c);
  s_free(s);
  dcmf_repo_del(repo);
  return out;
}

/* ---- dtls --------------------------------------------------------------- */

struct dside {
  struct dcmf_dtls *dtls;
  struct dside *other;
  uint8_t *q[64];
  size_t qlen[64];
  size_t nq;
  enum dcmf_dtls_state state;
  char got[64];
  size_t glen;
};

static struct dcmf_cert certs[2];
static struct dcmf_fingerprint_set fps[2];

static void d_datagram(void *user, const uint8_t *data, size_t len) {
  struct dside *d = user;
  if (d->nq == 64) {
    return;
  }
  d->q[d->nq] = __real_malloc(len);
  memcpy(d->q[d->nq], data, len);
  d->qlen[d->nq++] = len;
}

static void d_data(void *user, const uint8_t *data, size_t len) {
  struct dside *d = user;
  if (d->glen + len <= sizeof(d->got)) {
    memcpy(d->got + d->glen, data, len);
    d->glen += len;
  }
}

static void d_state(void *user, enum dcmf_dtls_state st, const char *why) {
  struct dside *d = user;
  (void)why;
  d->state = st;
}

static const struct dcmf_dtls_callbacks d_cbs = {d_datagram, d_data, d_state, NULL};

static size_t d_deliver(struct dside *from) {
  size_t n = from->nq;
  uint8_t *q[64];
  size_t ql[64];
  memcpy(q, from->q, n * sizeof(*q));
  memcpy(ql, from->qlen, n * sizeof(*ql));
  from->nq = 0;
  for (size_t i = 0; i < n; i++) {
    dcmf_dtls_recv(from->other->dtls, q[i], ql[i]);
    free(q[i]);
  }
  return n;
}

static enum fa_outcome sc_dtls(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_dtls_ctx ctx[2];
  struct dside side[2];
  int have_ctx[2] = {0, 0};
  memset(side, 0, sizeof(side));
  side[0].other = &side[1];
  side[1].other = &side[0];
  for (int i = 0; i < 2; i++) {
    TRY(dcmf_dtls_ctx_init(&ctx[i], certs[i].x509, certs[i].pkey, 1200));
    have_ctx[i] = 1;
  }
  for (int i = 0; i < 2; i++) {
    TRY(dcmf_dtls_new(&side[i].dtls, &ctx[i], i, &d_cbs, &side[i]));
    TRY(dcmf_dtls_set_remote_fingerprints(side[i].dtls, &fps[1 - i]));
  }
  dcmf_dtls_start(side[0].dtls);
  for (int i = 0; i < 50 && d_deliver(&side[0]) + d_deliver(&side[1]) > 0;
       i++) {
  }
  /* A failed allocation inside OpenSSL either fails the handshake (an
   * alert: FAILED) or loses a flight, which a real peer would retransmit
   * on its timer: the handshake is then still going on. */
  EXPECT(side[0].state == DCMF_DTLS_CONNECTED &&
         side[1].state == DCMF_DTLS_CONNECTED);
  TRY(dcmf_dtls_send(side[0].dtls, (const uint8_t *)"ping", 4));
  TRY(dcmf_dtls_send(side[1].dtls, (const uint8_t *)"pong", 4));
  d_deliver(&side[0]);
  d_deliver(&side[1]);
  EXPECT(side[1].glen == 4 && side[0].glen == 4);
  if (memcmp(side[1].got, "ping", 4) != 0 ||
      memcmp(side[0].got, "pong", 4) != 0) {
    FAIL("dtls: wrong data");
  }
  dcmf_dtls_close(side[0].dtls);
  d_deliver(&side[0]);
  EXPECT(side[1].state == DCMF_DTLS_CLOSED);
done:
  for (int i = 0; i < 2; i++) {
    dcmf_dtls_del(side[i].dtls);
    for (size_t j = 0; j < side[i].nq; j++) {
      free(side[i].q[j]);
    }
    if (have_ctx[i]) {
      dcmf_dtls_ctx_free(&ctx[i]);
    }
  }
  return out;
}

/* ---- dcstack: DTLS carrying the SCTP association kind ------------------ */

/* Two stacks (dcstack.c with assoc_sctp.c) in memory: the handshake runs
 * with the arming off (sc_dtls covers OpenSSL's allocations), everything
 * else is counted: the stacks and their associations being built, the
 * channel opening, a message each way and the teardown. */

struct kside {
  struct dcmf_dcstack *st;
  struct kside *other;
  uint8_t *q[QMAX];
  size_t qlen[QMAX];
  size_t nq;
  int up, failed, opened, closed;
  char got[64];
  size_t glen;
};

static void k_datagram(void *user, const uint8_t *data, size_t len) {
  struct kside *k = user;
  if (k->nq == QMAX) {
    return; /* a lost datagram: DTLS or SCTP retransmits */
  }
  k->q[k->nq] = __real_malloc(len);
  memcpy(k->q[k->nq], data, len);
  k->qlen[k->nq++] = len;
}

static void k_state(void *user, enum dcmf_dcstack_state st,
                    const char *why) {
  struct kside *k = user;
  (void)why;
  if (st == DCMF_DCSTACK_ASSOC_UP) {
    k->up = 1;
  } else if (st != DCMF_DCSTACK_DTLS_CONNECTED) {
    k->up = 0;
    k->failed = 1;
  }
}

static int k_open(void *user, const struct dcmf_svc_flow *flow, void **slot) {
  struct kside *k = user;
  (void)flow;
  *slot = k; /* must come back with the messages */
  k->opened++;
  return 0;
}

static void k_message(void *user, const struct dcmf_svc_flow *flow,
                      void *slot, int binary, const uint8_t *data,
                      size_t len) {
  struct kside *k = user;
  (void)binary;
  if (slot != k || flow->id != 0) {
    FAIL("dcstack: a message with the wrong flow");
  }
  if (k->glen + len <= sizeof(k->got)) {
    memcpy(k->got + k->glen, data, len);
    k->glen += len;
  }
}

static void k_closed(void *user, const struct dcmf_svc_flow *flow,
                     void **slot) {
  struct kside *k = user;
  (void)flow;
  (void)slot;
  k->closed++;
}

static const struct dcmf_dcstack_callbacks k_cbs = {
    .send_datagram = k_datagram,
    .state_changed = k_state,
    .flow_open = k_open,
    .flow_message = k_message,
    .flow_closed = k_closed,
    /* no need_tick: handle_tick after every stack tick */
};

static size_t k_deliver(struct kside *from) {
  size_t n = from->nq;
  uint8_t *q[QMAX];
  size_t ql[QMAX];
  memcpy(q, from->q, n * sizeof(*q));
  memcpy(ql, from->qlen, n * sizeof(*ql));
  from->nq = 0;
  for (size_t i = 0; i < n; i++) {
    if (from->other->st != NULL) {
      dcmf_dcstack_recv(from->other->st, q[i], ql[i]);
    }
    free(q[i]);
  }
  return n;
}

/* Carries datagrams both ways (uncounted while DTLS shakes hands),
 * ticking usrsctp on a fake clock while nothing is in flight; bounded. */
static void k_pump(struct kside *a, struct kside *b) {
  for (int i = 0; i < 400; i++) {
    int handshake =
        !dcmf_dcstack_connected(a->st) || !dcmf_dcstack_connected(b->st);
    int was = handshake ? fa_pause() : fa.armed;
    size_t n = k_deliver(a) + k_deliver(b);
    fa_resume(was);
    if (n > 0) {
      continue;
    }
    for (int t = 0; t < 10 && a->nq == 0 && b->nq == 0; t++) {
      dcmf_sctp_stack_tick(50);
      dcmf_dcstack_handle_tick(a->st);
      dcmf_dcstack_handle_tick(b->st);
    }
    if (a->nq == 0 && b->nq == 0) {
      return;
    }
  }
}

static void k_free(struct kside *k) {
  dcmf_dcstack_del(k->st);
  k->st = NULL;
  for (size_t i = 0; i < k->nq; i++) {
    free(k->q[i]);
  }
  k->nq = 0;
}

static enum fa_outcome sc_dcstack(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_dtls_ctx ctx[2];
  struct kside side[2];
  memset(side, 0, sizeof(side));
  side[0].other = &side[1];
  side[1].other = &side[0];
  int was = fa_pause(); /* sc_dtls counts these */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(
        dcmf_dtls_ctx_init(&ctx[i], certs[i].x509, certs[i].pkey, 1200), 0);
  }
  fa_resume(was);
  struct dcmf_assoc_stream http = {.id = 0, .protocol = "http",
                                   .priority = 256};
  for (int i = 0; i < 2; i++) {
    struct dcmf_dcstack_settings ss = {
        .dtls_ctx = &ctx[i],
        .dtls_server = i,
        .assoc = {.sctp = {.local_port = 5000,
                           .remote_port = 5000,
                           .max_streams = 16,
                           .max_message_size = 65536,
                           .send_buffer = 1 << 18},
                  .streams = &http,
                  .n_streams = 1}};
    TRY(dcmf_dcstack_new(&side[i].st, &ss, &k_cbs, &side[i]));
    TRY(dcmf_dcstack_set_remote_fingerprints(side[i].st, &fps[1 - i]));
  }
  const struct dcmf_assoc_ops *kind = dcmf_dcstack_kind(side[0].st);
  dcmf_dcstack_start(side[0].st);
  k_pump(&side[0], &side[1]);
  EXPECT(side[0].up && side[1].up && side[0].opened == 1 &&
         side[1].opened == 1);
  void *a = dcmf_dcstack_assoc(side[0].st);
  void *b = dcmf_dcstack_assoc(side[1].st);
  TRY(kind->send(a, 0, 0, (const uint8_t *)"ping", 4));
  TRY(kind->send(b, 0, 1, (const uint8_t *)"pong", 4));
  k_pump(&side[0], &side[1]);
  EXPECT(side[0].up && side[1].up && side[0].glen == 4 && side[1].glen == 4);
  if (memcmp(side[1].got, "ping", 4) != 0 ||
      memcmp(side[0].got, "pong", 4) != 0) {
    FAIL("dcstack: wrong data");
  }
  char text[64];
  snprintf(text, sizeof(text), "state %d/%d",
           (int)kind->flow_state(a, 0), (int)kind->flow_state(b, 0));
  fa_result(text);
done:
  for (int i = 0; i < 2; i++) {
    k_free(&side[i]);
  }
  /* Every opened flow was reported closed by the teardown. */
  if (side[0].closed != side[0].opened || side[1].closed != side[1].opened) {
    FAIL("dcstack: %d/%d flows opened, %d/%d closed", side[0].opened,
         side[1].opened, side[0].closed, side[1].closed);
  }
  was = fa_pause();
  for (int i = 0; i < 2; i++) {
    dcmf_dtls_ctx_free(&ctx[i]);
  }
  fa_resume(was);
  return out;
}

/* ---- wire: the worker frames -------------------------------------------- */

/* A media message and a hello through the encoders, a reader fed in
 * pieces and the decoders, and the DTLS identity to DER and back (as a
 * worker process receives it). No descriptors: those cost no memory. */
static enum fa_outcome sc_wire(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_media_desc d = {.fd = -1}, back = {.fd = -1};
  struct dcmf_buf frames = {0}, der_cert = {0}, der_key = {0}, text = {0};
  struct dcmf_wire_reader r = {0};
  struct dcmf_cert cert = {0};
  int have_back = 0, have_cert = 0;
  strcpy(d.key.context_id, "ctx");
  struct dcmf_media_stream streams[2] = {{.sid = 1000}, {.sid = 1001}};
  strcpy(streams[0].protocol, "a");
  strcpy(streams[1].protocol, "b");
  struct dcmf_media_route routes[1] = {{.sid = 0}};
  strcpy(routes[0].url, "http://127.0.0.1:1/x");
  struct dcmf_media_mdc2 mdc2[2] = {{.sid = 1000, .port = 1, .fd = -1},
                                    {.sid = 1001, .port = 2, .fd = -1}};
  d.streams = streams;
  d.n_streams = 2;
  d.routes = routes;
  d.n_routes = 1;
  d.mdc2 = mdc2;
  d.n_mdc2 = 2;
  int fds[3];
  size_t n_fds;
  TRY(dcmf_wire_encode_media(&frames, DCMF_MEDIA_OP_ADD, &d, fds, &n_fds));
  TRY(dcmf_cert_to_der(&certs[0], &der_cert, &der_key));
  struct dcmf_wire_hello h = {.index = 1,
                              .n_workers = 2,
                              .cert_der = (const uint8_t *)der_cert.data,
                              .cert_len = der_cert.len,
                              .key_der = (const uint8_t *)der_key.data,
                              .key_len = der_key.len};
  TRY(dcmf_wire_encode_hello(&frames, &h));
  for (size_t off = 0; off < frames.len; off += 700) {
    size_t n = frames.len - off < 700 ? frames.len - off : 700;
    TRY(dcmf_wire_reader_feed(&r, (const uint8_t *)frames.data + off, n));
  }
  struct dcmf_wire_frame f;
  EXPECT(dcmf_wire_reader_next(&r, &f) == 1 && f.type == DCMF_WIRE_MEDIA);
  enum dcmf_media_op op;
  TRY(dcmf_wire_decode_media(f.body, f.len, f.fds, f.n_fds, &op, &back));
  have_back = 1;
  dcmf_wire_reader_consume(&r, &f);
  EXPECT(dcmf_wire_reader_next(&r, &f) == 1 && f.type == DCMF_WIRE_HELLO);
  struct dcmf_wire_hello h2;
  TRY(dcmf_wire_decode_hello(f.body, f.len, &h2));
  char err[200];
  TRY(dcmf_cert_from_der(&cert, h2.cert_der, h2.cert_len, h2.key_der,
                         h2.key_len, err, sizeof(err)));
  have_cert = 1;
  dcmf_wire_reader_consume(&r, &f);
  TRY(dcmf_buf_printf(&text, "%s %zu %zu %zu %s %u %s", back.key.context_id,
                      back.n_streams, back.n_routes, back.n_mdc2,
                      back.routes[0].url, (unsigned)back.mdc2[1].port,
                      cert.fingerprint));
  EXPECT(strcmp(cert.fingerprint, certs[0].fingerprint) == 0);
  fa_result(text.data);
done:
  if (have_back) {
    dcmf_media_desc_free(&back);
  }
  if (have_cert) {
    dcmf_cert_free(&cert);
  }
  dcmf_wire_reader_free(&r);
  dcmf_buf_free(&frames);
  dcmf_buf_free(&der_cert);
  dcmf_buf_free(&der_key);
  dcmf_buf_free(&text);
  return out;
}

/* The SRTP engine on its OpenSSL EVP backend (libsrtp2's allocations are
 * out of reach): two engines, three SSRCs each way with RTP and SRTCP, a
 * re-key to another profile, and the packets after it. */
static enum fa_outcome sc_srtp(void) {
  enum fa_outcome out = FA_OK;
  struct dcmf_srtp *c = NULL, *s = NULL;
  uint8_t m[DCMF_SRTP_EXPORT_MAX];
  size_t total = 0;
  for (size_t i = 0; i < sizeof(m); i++) {
    m[i] = (uint8_t)(i * 3 + 1);
  }
  TRY(dcmf_srtp_new_with(&c, DCMF_SRTP_BACKEND_OPENSSL,
                         DCMF_SRTP_AES128_CM_SHA1_80, m, 60, DCMF_SRTP_CLIENT));
  TRY(dcmf_srtp_new_with(&s, DCMF_SRTP_BACKEND_OPENSSL,
                         DCMF_SRTP_AES128_CM_SHA1_80, m, 60, DCMF_SRTP_SERVER));
  for (int round = 0; round < 2; round++) {
    for (uint8_t k = 0; k < 6; k++) {
      _Alignas(4) uint8_t b[64 + DCMF_SRTP_TRAILER_ROOM] = {0};
      int rtcp = k % 2;
      size_t n = rtcp ? 28 : 52, w;
      b[0] = 0x80;
      b[1] = rtcp ? 200 : 96;
      b[3] = rtcp ? 6 : (uint8_t)(round * 8 + k);
      b[rtcp ? 7 : 11] = (uint8_t)(k / 2 + 1); /* SSRC 1, 2, 3 */
      TRY(rtcp ? dcmf_srtp_protect_rtcp(c, b, n, sizeof(b), &w)
               : dcmf_srtp_protect_rtp(c, b, n, sizeof(b), &w));
      TRY(rtcp ? dcmf_srtp_unprotect_rtcp(s, b, w, &n)
               : dcmf_srtp_unprotect_rtp(s, b, w, &n));
      total += w + n;
    }
    if (round == 0) {
      TRY(dcmf_srtp_rekey(c, DCMF_SRTP_AEAD_AES_128_GCM, m, 56,
                          DCMF_SRTP_CLIENT));
      TRY(dcmf_srtp_rekey(s, DCMF_SRTP_AEAD_AES_128_GCM, m, 56,
                          DCMF_SRTP_SERVER));
    }
  }
  char res[32];
  snprintf(res, sizeof(res), "%zu", total);
  fa_result(res);
done:
  dcmf_srtp_del(c);
  dcmf_srtp_del(s);
  return out;
}

/* ---- msrp, bfcp --------------------------------------------------------
 */

/* The two stream framers, whose buffers grow while they are fed: an MSRP
 * chunk with a 9000-byte body between two small ones, and two BFCP
 * messages, each stream in pieces of 1000 bytes. */
static enum fa_outcome sc_msrp_bfcp(void) {
  enum fa_outcome out = FA_OK;
  static uint8_t ms[12000], bs[64];
  static const char head[] = "MSRP a1b2 SEND\r\n"
                             "To-Path: msrp://b.example.com:1/s;tcp\r\n"
                             "From-Path: msrp://a.example.com:2/t;tcp\r\n"
                             "Message-ID: m1234\r\n"
                             "Content-Type: text/plain\r\n\r\n";
  static const char small[] = "MSRP k3j4 SEND\r\n"
                              "To-Path: msrp://b.example.com:1/s;tcp\r\n"
                              "From-Path: msrp://a.example.com:2/t;tcp\r\n"
                              "-------k3j4$\r\n";
  size_t ml = 0, bl = 0;
  memcpy(ms, small, sizeof(small) - 1);
  ml += sizeof(small) - 1;
  memcpy(ms + ml, head, sizeof(head) - 1);
  ml += sizeof(head) - 1;
  memset(ms + ml, 'x', 9000);
  ml += 9000;
  memcpy(ms + ml, "\r\n-------a1b2+\r\n", 16);
  ml += 16;
  memcpy(ms + ml, small, sizeof(small) - 1);
  ml += sizeof(small) - 1;
  for (int i = 0; i < 2; i++) {
    uint8_t *m = bs + bl;
    memset(m, 0, 20);
    m[0] = 1 << 5; /* version 1 */
    m[1] = (uint8_t)(1 + i);
    m[3] = 2; /* 2 words of payload */
    bl += 20;
  }
  struct dcmf_msrp_limits lim = {1024, 65536};
  struct dcmf_msrp_framer f;
  struct dcmf_bfcp_framer g;
  size_t chunks = 0, body = 0, msgs = 0, at;
  char flags[8] = {0};
  dcmf_msrp_framer_init(&f, &lim);
  dcmf_bfcp_framer_init(&g, 1024);
  for (at = 0; at < ml;) {
    size_t n = ml - at < 1000 ? ml - at : 1000;
    int took = dcmf_msrp_framer_feed(&f, ms + at, n);
    if (took < 0) {
      TRY(took);
    }
    at += (size_t)took;
    struct dcmf_msrp_chunk c;
    int rv;
    while ((rv = dcmf_msrp_framer_next(&f, &c)) == 1) {
      if (chunks < sizeof(flags) - 1) {
        flags[chunks] = c.flag;
      }
      chunks++;
      body += c.body_len;
    }
    if (rv < 0) {
      TRY(rv);
    }
  }
  for (at = 0; at < bl;) {
    int took = dcmf_bfcp_framer_feed(&g, bs + at, bl - at);
    if (took < 0) {
      TRY(took);
    }
    at += (size_t)took;
    const uint8_t *m;
    size_t len;
    struct dcmf_bfcp_header h;
    int rv;
    while ((rv = dcmf_bfcp_framer_next(&g, &m, &len, &h)) == 1) {
      msgs++;
    }
    if (rv < 0) {
      TRY(rv);
    }
  }
  char text[128];
  snprintf(text, sizeof(text), "msrp %zu chunks %zu body %s; bfcp %zu",
           chunks, body, flags, msgs);
  fa_result(text);
done:
  dcmf_msrp_framer_free(&f);
  dcmf_bfcp_framer_free(&g);
  return out;
}

/* The MSRP relay: a 10000-byte SEND from the stream split for a
 * max-message-size of 4096, every piece answered 200 from the data
 * channel (one 200 folded back), and an aware-mode SEND from the data
 * channel rewritten toward the stream. */
static void fa_relay_fill(void *user, uint8_t *buf, size_t len) {
  uint32_t *x = user;
  for (size_t i = 0; i < len; i++) {
    *x = *x * 1103515245u + 12345u;
    buf[i] = (uint8_t)(*x >> 16);
  }
}

static enum fa_outcome sc_msrp_relay(void) {
  enum fa_outcome out = FA_OK;
  static uint8_t in[11000];
  static const char head[] = "MSRP orig1234 SEND\r\n"
                             "To-Path: msrp://mf.example.net:6000/m1;tcp\r\n"
                             "From-Path: msrp://core.example.com:7/c1;tcp\r\n"
                             "Message-ID: mid12345\r\n"
                             "Content-Type: text/plain\r\n\r\n";
  size_t il = 0;
  memcpy(in, head, sizeof(head) - 1);
  il += sizeof(head) - 1;
  memset(in + il, 'y', 10000);
  il += 10000;
  memcpy(in + il, "\r\n-------orig1234$\r\n", 20);
  il += 20;
  uint32_t seed = 1;
  struct dcmf_msrp_relay r;
  struct dcmf_msrp_relay_settings set;
  memset(&set, 0, sizeof(set));
  set.mode = DCMF_MSRP_RELAY_AWARE;
  set.max_message_size = 4096;
  set.max_header = 1024;
  set.rng.fill = fa_relay_fill;
  set.rng.user = &seed;
  set.dc_own_uri = "msrps://mf.example.net:5000/d1;dc";
  set.tcp_own_uri = "msrp://mf.example.net:6000/m1;tcp";
  set.dc_peer_path = "msrps://wic.example.com:9/w1;dc";
  set.tcp_peer_path = "msrp://core.example.com:7/c1;tcp";
  memset(&r, 0, sizeof(r));
  size_t pieces = 0, streamed = 0;
  int code = 0;
  TRY(dcmf_msrp_relay_init(&r, &set));
  for (size_t at = 0; at < il;) {
    size_t n = il - at < 1000 ? il - at : 1000;
    int took = dcmf_msrp_relay_recv_stream(&r, in + at, n, 0);
    if (took < 0) {
      TRY(took);
    }
    at += (size_t)took;
  }
  const uint8_t *m;
  size_t len;
  while ((m = dcmf_msrp_relay_peek_message(&r, &len)) != NULL) {
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "MSRP %.16s 200 OK\r\n"
                     "To-Path: msrps://mf.example.net:5000/d1;dc\r\n"
                     "From-Path: msrps://wic.example.com:9/w1;dc\r\n"
                     "-------%.16s$\r\n",
                     (const char *)m + 5, (const char *)m + 5);
    pieces++;
    TRY(dcmf_msrp_relay_pop_message(&r, 0));
    int v = dcmf_msrp_relay_recv_message(&r, (const uint8_t *)resp,
                                         (size_t)n, 0);
    if (v < 0) {
      TRY(v);
    }
  }
  static const char dc[] = "MSRP dcsend1 SEND\r\n"
                           "To-Path: msrps://mf.example.net:5000/d1;dc\r\n"
                           "From-Path: msrps://wic.example.com:9/w1;dc\r\n"
                           "Message-ID: mid99999\r\n"
                           "Content-Type: text/plain\r\n\r\nhi\r\n"
                           "-------dcsend1$\r\n";
  int v = dcmf_msrp_relay_recv_message(&r, (const uint8_t *)dc,
                                       sizeof(dc) - 1, 0);
  if (v < 0) {
    TRY(v);
  }
  while ((m = dcmf_msrp_relay_peek_stream(&r, &len)) != NULL) {
    if (len > 13 && memcmp(m, "MSRP orig1234 ", 14) == 0) {
      code = atoi((const char *)m + 14);
    }
    streamed += len;
    TRY(dcmf_msrp_relay_consume_stream(&r, len, 0));
  }
  char text[128];
  if (code != 200 || pieces < 3) {
    out = FA_STATE; /* a lost answer: only under a failed allocation */
    assert_false(fa_warmup);
    goto done;
  }
  snprintf(text, sizeof(text), "relay pieces %zu code %d streamed %zu", pieces,
           code, streamed);
  fa_result(text);
done:
  dcmf_msrp_relay_free(&r);
  return out;
}

/* ---- the tests ------------------------------------------------------------
 */

#define SCENARIO(name, fn)                                                     \
  static void test_##fn(void **state) {                                        \
    (void)state;                                                               \
    fa_run(name, fn);                                                          \
  }
SCENARIO("buf", sc_buf)
SCENARIO("srtp-evp", sc_srtp)
SCENARIO("problem", sc_problem)
SCENARIO("relayq", sc_relayq)
SCENARIO("ratelimit", sc_ratelimit)
SCENARIO("stun+ice", sc_stun_ice)
SCENARIO("fp+dcep", sc_fingerprint_dcep)
SCENARIO("h1+url+relay", sc_h1_urlmap_relay)
SCENARIO("jsonpatch", sc_jsonpatch)
SCENARIO("jsonpatch-no", sc_jsonpatch_refused)
SCENARIO("agwdoc", sc_agwdoc)
SCENARIO("registry", sc_registry)
SCENARIO("registry-udp", sc_registry_udp)
SCENARIO("cache", sc_cache)
SCENARIO("bearer", sc_bearer)
SCENARIO("repo+httpdc", sc_repo_httpdc)
SCENARIO("httpdc-stream", sc_httpdc_stream)
SCENARIO("msrp+bfcp", sc_msrp_bfcp)
SCENARIO("msrp-relay", sc_msrp_relay)
SCENARIO("sctp+dc", sc_sctp_dc)
SCENARIO("dtls", sc_dtls)
SCENARIO("dcstack", sc_dcstack)
SCENARIO("wire", sc_wire)

static int group_setup(void **state) {
  (void)state;
  char err[256];
  for (size_t i = 0; i < sizeof(page); i++) {
    page[i] = (uint8_t)('a' + i % 26);
  }
  make_token();
  for (int i = 0; i < 2; i++) {
    if (dcmf_cert_generate(&certs[i], err, sizeof(err)) != 0 ||
        dcmf_fingerprint_parse(certs[i].fingerprint, &fps[i]) != 0) {
      return -1;
    }
  }
  return dcmf_sctp_stack_init();
}

static int group_teardown(void **state) {
  (void)state;
  for (int i = 0; i < 2; i++) {
    dcmf_cert_free(&certs[i]);
  }
  dcmf_test_sctp_finish();
  return 0;
}

int main(void) {
  /* Before OpenSSL allocates anything: it refuses later. */
  if (CRYPTO_set_mem_functions(fa_ossl_malloc, fa_ossl_realloc, fa_ossl_free) !=
      1) {
    fprintf(stderr, "CRYPTO_set_mem_functions refused\n");
    return 1;
  }
  json_set_alloc_funcs(fa_json_malloc, fa_json_free);
  fa_trace = getenv("FA_BACKTRACE");
  /* FA_ONLY=test_sc_dtls (a cmocka filter) runs one scenario. */
  if (getenv("FA_ONLY") != NULL) {
    cmocka_set_test_filter(getenv("FA_ONLY"));
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sc_buf),
      cmocka_unit_test(test_sc_problem),
      cmocka_unit_test(test_sc_relayq),
      cmocka_unit_test(test_sc_ratelimit),
      cmocka_unit_test(test_sc_stun_ice),
      cmocka_unit_test(test_sc_fingerprint_dcep),
      cmocka_unit_test(test_sc_h1_urlmap_relay),
      cmocka_unit_test(test_sc_jsonpatch),
      cmocka_unit_test(test_sc_jsonpatch_refused),
      cmocka_unit_test(test_sc_agwdoc),
      cmocka_unit_test(test_sc_registry),
      cmocka_unit_test(test_sc_registry_udp),
      cmocka_unit_test(test_sc_cache),
      cmocka_unit_test(test_sc_bearer),
      cmocka_unit_test(test_sc_repo_httpdc),
      cmocka_unit_test(test_sc_httpdc_stream),
      cmocka_unit_test(test_sc_msrp_bfcp),
      cmocka_unit_test(test_sc_msrp_relay),
      cmocka_unit_test(test_sc_sctp_dc),
      cmocka_unit_test(test_sc_dtls),
      cmocka_unit_test(test_sc_dcstack),
      cmocka_unit_test(test_sc_wire),
      cmocka_unit_test(test_sc_srtp),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
