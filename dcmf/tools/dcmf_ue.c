/*
 * dcmf-ue - plays the DCMTSI phone (and the IMS AS part of creating and
 * releasing the context) against dcmfd: the operator's curl for bootstrap
 * data channels, and the load generator.
 *
 *   dcmf-ue fetch [--api URL] [--include] [--timeout S] PATH
 *   dcmf-ue bench [--api URL] [--count N] [--concurrency C] [--timeout S] [PATH]
 *   dcmf-ue idle  [--api URL] [--count N] [--seconds S]
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <uv.h>

#include "apiclient.h"
#include "cert.h"
#include "dcmf_build_config.h"
#include "dtls.h"
#include "errors.h"
#include "fingerprint.h"
#include "sctp.h"
#include "srtp.h"
#include "tickq.h"
#include "ue.h"

enum mode { MODE_FETCH, MODE_BENCH, MODE_IDLE };

/* How long requests may still end by themselves once the control API
 * connection failed (see on_tick). */
#define API_LOST_GRACE_MS 1000

struct run;

/* One phone's life: create context, connect, fetch, delete. */
struct job {
  struct run *run;
  struct dcmf_ue *ue;
  char context_id[64];
  uint64_t first_byte_ns;
  int done;
  long requests_left; /* --repeat: requests still to send on the channel */
  uint64_t request_ns; /* when the current repeated request went out */
  struct job *prev, *next; /* in run->jobs until forgotten */
};

struct run {
  enum mode mode;
  uv_loop_t *loop;
  struct dcmf_apiclient *api;
  struct dcmf_cert cert;
  struct dcmf_dtls_ctx dtls_ctx;
  const char *path;
  int include_head;
  int no_ice;
  const char *replace_url; /* HTTP-proxy mode toward this upstream */
  const char *data;        /* POST this body instead of GET */
  long stream;             /* the HTTP channel's stream id */
  const char *mdc2;        /* "ADDR:PORT" of a DC application server */
  long repeat;             /* requests per phone after the first */
  double *request_ms;      /* --repeat: request sent to response done */
  long n_request_ms, request_errors;
  uint64_t repeat_start_ns, repeat_end_ns;
  long count, concurrency, seconds;
  long timeout_s; /* per wait of a phone (dcmf_ue_set_timeout); 0: none */
  struct dcmf_tickq ticks; /* phones whose SCTP needs the next tick */
  long started, finished, ok, failed, ready;
  double *latency_ms; /* first STUN to first byte, one per phone */
  long n_latency;
  uv_timer_t tick;
  uint64_t last_tick_ms;
  uv_signal_t sigint;
  int stopping;
  int api_failed;   /* the control API connection failed */
  uint64_t lost_ms; /* when it did */
  int exit_code;
  struct job *jobs;       /* every job not yet forgotten */
  struct job **idle_jobs; /* idle mode: every phone, to release them */
  uint64_t ready_ms;      /* idle mode: when all phones were ready */
};

static void job_start(struct run *r);
static void job_finish(struct job *j, int ok);

/* The control API connection failed (dcmfd exited, or never listened):
 * no phone can start or be released any more, so the run stops with an
 * error rather than keep trying. */
static void api_lost(struct run *r) {
  if (r->api_failed) {
    return;
  }
  r->api_failed = 1;
  r->lost_ms = uv_now(r->loop);
  fprintf(stderr, "dcmf-ue: the control API connection failed; stopping\n");
  r->stopping = 1;
  r->count = r->started; /* start no more */
  r->exit_code = 3;
  /* Phones already past the create wait for an MF that is gone: end
   * them now. Jobs whose create is still in flight hear it from the API
   * client, which fails every request it had sent. */
  struct job *next;
  for (struct job *j = r->jobs; j != NULL; j = next) {
    next = j->next;
    if (!j->done && j->context_id[0] != '\0') {
      job_finish(j, 0); /* may free |j|, never another job */
    }
  }
}

static void forget(struct job *j) {
  struct run *r = j->run;
  if (j->prev != NULL) {
    j->prev->next = j->next;
  } else {
    r->jobs = j->next;
  }
  if (j->next != NULL) {
    j->next->prev = j->prev;
  }
  for (long i = 0; r->idle_jobs != NULL && i < r->started; i++) {
    if (r->idle_jobs[i] == j) {
      r->idle_jobs[i] = NULL;
    }
  }
  free(j);
}

static void on_deleted(void *user, int status, const char *body, size_t len,
                       const char *location) {
  (void)body;
  (void)len;
  (void)location;
  struct job *j = user;
  struct run *r = j->run;
  if (status < 0) {
    api_lost(r);
  } else if (status != 204) {
    fprintf(stderr, "dcmf-ue: DELETE %s answered %d\n", j->context_id, status);
  }
  forget(j);
  r->finished++;
  if (r->mode != MODE_IDLE && !r->stopping && r->started < r->count) {
    job_start(r);
  }
}

static void job_finish(struct job *j, int ok) {
  if (j->done) {
    return;
  }
  j->done = 1;
  struct run *r = j->run;
  if (ok) {
    r->ok++;
  } else {
    r->failed++;
  }
  if (j->ue != NULL) {
    dcmf_ue_close(j->ue);
    j->ue = NULL;
  }
  if (j->context_id[0] == '\0') {
    forget(j);
    r->finished++;
    return;
  }
  char path[160];
  snprintf(path, sizeof(path), "/nmf-mrm/v1/contexts/%s", j->context_id);
  int rv = r->api == NULL ? DCMF_ERR_SYSTEM
                          : dcmf_apiclient_request(r->api, "DELETE", path,
                                                   NULL, NULL, on_deleted, j);
  if (rv != 0) {
    api_lost(r);
    forget(j);
    r->finished++;
  }
}

static void ue_ready(void *user, struct dcmf_ue *ue) {
  struct job *j = user;
  if (j->run->mode == MODE_IDLE) {
    j->run->ready++;
    return;
  }
  int rv = j->run->data != NULL
               ? dcmf_ue_post(ue, j->run->path, j->run->data,
                              strlen(j->run->data))
               : dcmf_ue_get(ue, j->run->path);
  if (rv != 0) {
    fprintf(stderr, "dcmf-ue: %s: the request could not be sent\n",
            j->context_id);
    j->run->exit_code = 3;
    job_finish(j, 0);
  }
}

static void ue_first_byte(void *user, struct dcmf_ue *ue) {
  struct job *j = user;
  if (j->first_byte_ns == 0) {
    j->first_byte_ns = uv_hrtime();
    struct run *r = j->run;
    if (r->latency_ms != NULL && r->n_latency < r->count) {
      r->latency_ms[r->n_latency++] =
          (double)(j->first_byte_ns - dcmf_ue_started_ns(ue)) / 1e6;
    }
  }
}

static void ue_response(void *user, struct dcmf_ue *ue, int status,
                        const char *head, const uint8_t *body, size_t len) {
  struct job *j = user;
  struct run *r = j->run;
  if (r->repeat > 0 && j->request_ns != 0) {
    /* One more request on the open channel: time it and go on. */
    uint64_t now = uv_hrtime();
    if (status >= 200 && status < 400) {
      r->request_ms[r->n_request_ms++] = (double)(now - j->request_ns) / 1e6;
    } else {
      r->request_errors++;
    }
    r->repeat_end_ns = now;
  }
  if (r->repeat > 0 && j->requests_left > 0 &&
      status >= 200 && status < 400) {
    j->requests_left--;
    j->request_ns = uv_hrtime();
    if (r->repeat_start_ns == 0) {
      r->repeat_start_ns = j->request_ns;
    }
    if (dcmf_ue_get(ue, r->path) == 0) {
      return;
    }
  }
  if (j->run->mode == MODE_FETCH) {
    if (j->run->include_head) {
      printf("%s\r\n\r\n", head);
    }
    fwrite(body, 1, len, stdout);
    fflush(stdout);
    j->run->exit_code = status >= 200 && status < 400 ? 0 : 1;
  }
  job_finish(j, status >= 200 && status < 400);
}

static void ue_failed(void *user, struct dcmf_ue *ue, const char *why) {
  (void)ue;
  struct job *j = user;
  if (!j->done) {
    fprintf(stderr, "dcmf-ue: %s: %s\n", j->context_id, why);
    j->run->exit_code = 3;
  }
  job_finish(j, 0);
}

static const struct dcmf_ue_callbacks ue_cbs = {ue_ready, ue_first_byte,
                                                ue_response, ue_failed};

/* Reads what the phone needs from the MF's MediaContext. */
static int remote_from_context(json_t *ctx, struct dcmf_ue_remote *rem) {
  json_t *media = json_array_get(
      json_object_get(json_array_get(json_object_get(ctx, "terminations"), 0),
                      "medias"),
      0);
  json_t *mb = json_object_get(media, "localMbEndpoint");
  json_t *ice = json_object_get(media, "localIceInfo");
  json_t *dc = json_object_get(media, "dcMedia");
  json_t *ldc = json_object_get(dc, "localDcEndpoint");
  const char *ip = json_string_value(
      json_object_get(json_object_get(mb, "ip"), "ipv4Addr"));
  const char *ufrag = json_string_value(json_object_get(ice, "ufrag"));
  const char *pwd = json_string_value(json_object_get(ice, "pwd"));
  const char *fp = json_string_value(json_object_get(ldc, "fingerprint"));
  const char *setup = json_string_value(json_object_get(dc, "securitySetup"));
  memset(rem, 0, sizeof(*rem));
  if (ip == NULL || ufrag == NULL || pwd == NULL || fp == NULL ||
      setup == NULL ||
      uv_ip4_addr(ip,
                  (int)json_integer_value(json_object_get(mb, "portNumber")),
                  (struct sockaddr_in *)&rem->addr) != 0 ||
      dcmf_fingerprint_parse(fp, &rem->fingerprint) != 0) {
    return DCMF_ERR_MALFORMED;
  }
  snprintf(rem->ufrag, sizeof(rem->ufrag), "%s", ufrag);
  snprintf(rem->pwd, sizeof(rem->pwd), "%s", pwd);
  rem->sctp_port = (uint16_t)json_integer_value(json_object_get(ldc, "sctpPort"));
  rem->mf_is_dtls_server = strcmp(setup, "PASSIVE") == 0;
  return 0;
}

static void on_created(void *user, int status, const char *body, size_t len,
                       const char *location) {
  (void)location;
  struct job *j = user;
  json_t *ctx = status == 201 ? json_loadb(body, len, 0, NULL) : NULL;
  struct dcmf_ue_remote rem;
  const char *id = json_string_value(json_object_get(ctx, "contextId"));
  if (id != NULL) {
    snprintf(j->context_id, sizeof(j->context_id), "%s", id);
  }
  if (status < 0) {
    api_lost(j->run);
  }
  if (ctx == NULL || remote_from_context(ctx, &rem) != 0 ||
      dcmf_ue_connect(j->ue, &rem, j->run->no_ice) != 0) {
    fprintf(stderr, "dcmf-ue: create answered %d: %.*s\n", status, (int)len,
            body);
    j->run->exit_code = 3;
    json_decref(ctx);
    job_finish(j, 0);
    return;
  }
  json_decref(ctx);
}

static void job_start(struct run *r) {
  struct job *j = calloc(1, sizeof(*j));
  if (j == NULL) {
    return;
  }
  j->run = r;
  j->requests_left = r->repeat;
  j->next = r->jobs;
  if (r->jobs != NULL) {
    r->jobs->prev = j;
  }
  r->jobs = j;
  if (r->idle_jobs != NULL) {
    r->idle_jobs[r->started] = j;
  }
  r->started++;
  if (dcmf_ue_new(&j->ue, r->loop, &r->dtls_ctx, &r->ticks, "127.0.0.1",
                  &ue_cbs, j) != 0) {
    j->ue = NULL;
    job_finish(j, 0);
    return;
  }
  dcmf_ue_set_stream(j->ue, (uint16_t)r->stream);
  dcmf_ue_set_timeout(j->ue, (uint64_t)r->timeout_s * 1000);
  if (r->mode == MODE_IDLE) {
    /* Phones held idle check consent at RFC 7675's pace (about every
     * 5 s, gone after 30 s of silence); the others keep ue.c's tighter
     * bound, as their runs end with the MF. */
    dcmf_ue_set_consent(j->ue, 5000, 30000);
  }
  uint8_t rnd[32];
  char tls_id[33];
  RAND_bytes(rnd, sizeof(rnd));
  dcmf_token_from_random(tls_id, 32, rnd, "0123456789abcdef");
  json_t *req = json_pack(
      "{s:[{s:s, s:[{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s}, s:s, s:i},"
      " s:{s:s, s:{s:{s:i, s:s, s:b}}, s:{s:i, s:s, s:s}, s:s}}]}]}",
      "terminations", "terminationId", "ue", "medias", "mediaId", "1",
      "mediaResourceType", "DC", "remoteIceInfo", "ufrag", dcmf_ue_ufrag(j->ue),
      "pwd", dcmf_ue_pwd(j->ue), "remoteMbEndpoint", "ip", "ipv4Addr",
      "127.0.0.1", "transport", "UDP", "portNumber", (int)dcmf_ue_port(j->ue),
      "dcMedia", "mediaProxyConfig", "HTTP", "streams", "0", "streamId", 0,
      "subprotocol", "http", "order", 1, "remoteDcEndpoint", "sctpPort", 5000,
      "fingerprint", r->cert.fingerprint, "tlsId", tls_id, "securitySetup",
      "ACTPASS");
  if (req != NULL && r->replace_url != NULL) {
    json_t *dc = json_object_get(
        json_array_get(json_object_get(json_array_get(json_object_get(
                                                          req, "terminations"),
                                                      0),
                                       "medias"),
                       0),
        "dcMedia");
    json_object_set_new(dc, "replaceHttpUrl",
                        json_pack("{s:{s:i, s:s}}", "0", "streamId", 0,
                                  "replaceHttpUrl", r->replace_url));
  }
  json_t *dcm = json_object_get(
      json_array_get(json_object_get(json_array_get(json_object_get(
                                                        req, "terminations"),
                                                    0),
                                     "medias"),
                     0),
      "dcMedia");
  if (req != NULL && r->stream != 0) {
    char key[8];
    snprintf(key, sizeof(key), "%ld", r->stream);
    json_object_set_new(dcm, "streams",
                        json_pack("{s:{s:I, s:s, s:b}}", key, "streamId",
                                  (json_int_t)r->stream, "subprotocol", "http",
                                  "order", 1));
  }
  if (req != NULL && r->mdc2 != NULL) {
    char host[64];
    const char *colon = strrchr(r->mdc2, ':');
    snprintf(host, sizeof(host), "%.*s",
             colon ? (int)(colon - r->mdc2) : 0, r->mdc2);
    json_object_set_new(dcm, "remoteMdc2Endpoint",
                        json_pack("{s:{s:s}, s:s, s:i}", "ip", "ipv4Addr", host,
                                  "transport", "TCP", "portNumber",
                                  colon ? atoi(colon + 1) : 0));
  }
  if (req != NULL && r->no_ice) {
    /* An ICE-lite phone signals no credentials; the MF then accepts DTLS
     * from the signalled address (RFC 8445 6.1.1). */
    json_object_del(json_array_get(json_object_get(json_array_get(
                                                       json_object_get(
                                                           req,
                                                           "terminations"),
                                                       0),
                                                   "medias"),
                                   0),
                    "remoteIceInfo");
  }
  char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
  json_decref(req);
  int rv = text == NULL   ? DCMF_ERR_NOMEM
           : r->api == NULL ? DCMF_ERR_SYSTEM
                            : dcmf_apiclient_request(r->api, "POST",
                                                 "/nmf-mrm/v1/contexts",
                                                 "application/json", text,
                                                 on_created, j);
  if (rv != 0) {
    if (text != NULL) {
      api_lost(r);
    }
    job_finish(j, 0);
  }
  free(text);
}

/* Ends the idle hold: every phone is released (contexts deleted). */
static void release_idle(struct run *r) {
  for (long i = 0; i < r->started; i++) {
    if (r->idle_jobs[i] != NULL) {
      job_finish(r->idle_jobs[i], 1);
    }
  }
}

/* Ticks usrsctp (and the phones that need it), keeps the wanted number of
 * phones going and ends the run. */
static void on_tick(uv_timer_t *t) {
  struct run *r = t->data;
  uint64_t now = uv_now(r->loop);
  dcmf_sctp_stack_tick((uint32_t)(now - r->last_tick_ms));
  r->last_tick_ms = now;
  dcmf_tickq_run(&r->ticks);
  /* Once the control API is gone, a request the HTTP client still holds
   * (queued for a connection that will never come) would keep the run
   * alive until the client's own timeouts, a minute away. A second after
   * the loss the client is closed, and every job still waiting for an
   * answer (a create, or the DELETE of a finished phone) is counted as
   * finished: nothing will answer it. */
  if (r->api_failed && r->api != NULL &&
      now - r->lost_ms >= API_LOST_GRACE_MS) {
    struct dcmf_apiclient *api = r->api;
    r->api = NULL; /* callbacks it may still run must not use it */
    dcmf_apiclient_close(api);
    struct job *next;
    for (struct job *j = r->jobs; j != NULL; j = next) {
      next = j->next;
      if (j->done) {
        forget(j); /* its DELETE is lost */
        r->finished++;
      } else {
        job_finish(j, 0); /* frees |j|, never another job */
      }
    }
  }
  long active = r->started - r->finished;
  while (!r->stopping && r->started < r->count && active < r->concurrency) {
    job_start(r);
    active++;
  }
  if (r->mode == MODE_IDLE && r->ready_ms == 0 && r->ready >= r->count) {
    r->ready_ms = now;
    printf("ready %ld\n", r->ready);
    fflush(stdout);
  }
  if (r->mode == MODE_IDLE && !r->stopping &&
      ((r->ready_ms != 0 && r->seconds > 0 &&
        now - r->ready_ms >= (uint64_t)r->seconds * 1000) ||
       r->count == 0)) {
    r->stopping = 1;
    release_idle(r);
  }
  if (r->finished >= r->started && (r->started >= r->count || r->stopping)) {
    uv_timer_stop(&r->tick);
    uv_close((uv_handle_t *)&r->tick, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    if (r->api != NULL) {
      dcmf_apiclient_close(r->api);
      r->api = NULL;
    }
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void report_repeat(struct run *r) {
  if (r->repeat == 0 || r->n_request_ms == 0) {
    return;
  }
  qsort(r->request_ms, (size_t)r->n_request_ms, sizeof(double), cmp_double);
  double secs = (double)(r->repeat_end_ns - r->repeat_start_ns) / 1e9;
  printf("requests on open channels %ld (errors %ld) in %.2f s: %.0f/s; "
         "median %.2f ms, p99 %.2f ms\n",
         r->n_request_ms, r->request_errors, secs,
         (double)r->n_request_ms / (secs > 0 ? secs : 1),
         r->request_ms[r->n_request_ms / 2],
         r->request_ms[(size_t)((double)(r->n_request_ms - 1) * 0.99)]);
}

static void report(struct run *r, double seconds) {
  long n = r->n_latency;
  qsort(r->latency_ms, (size_t)n, sizeof(double), cmp_double);
  double median = n ? r->latency_ms[n / 2] : 0;
  double p99 = n ? r->latency_ms[(size_t)((double)(n - 1) * 0.99)] : 0;
  printf("fetches %ld ok %ld failed %ld in %.2f s (%.1f/s)\n",
         r->ok + r->failed, r->ok, r->failed, seconds,
         (double)r->ok / seconds);
  printf("first STUN to first byte: median %.2f ms, p99 %.2f ms, max %.2f ms\n",
         median, p99, n ? r->latency_ms[n - 1] : 0);
}

static void usage(FILE *out) {
  fprintf(out,
          "Usage: dcmf-ue fetch [--api URL] [--include] [--no-ice] PATH\n"
          "       dcmf-ue bench [--api URL] [--count N] [--concurrency C] "
          "[--repeat N] [PATH]\n"
          "       dcmf-ue idle  [--api URL] [--count N] [--seconds S]\n\n"
          "Plays a DCMTSI phone against dcmfd: creates a context through "
          "the Nmf_MRM API\n(--api, default http://127.0.0.1:8090), does "
          "ICE (controlling, USE-CANDIDATE),\nDTLS and SCTP, opens the "
          "negotiated bootstrap channel (id 0, \"http\"), sends\nGET PATH "
          "and deletes the context.\n"
          "  --no-ice  act as an ICE-lite phone: no checks, DTLS at once\n"
          "  --replace-url URL  ask for HTTP-proxy mode: stream 0 is "
          "forwarded to URL\n"
          "  --data TEXT  send POST with TEXT as the body instead of GET\n"
          "  --repeat N   bench: N more GETs on each open channel, timed "
          "one by one\n"
          "  --stream ID  use negotiated stream ID (subprotocol http) instead "
          "of 0\n"
          "  --mdc2 ADDR:PORT  set remoteMdc2Endpoint (the DC application "
          "server)\n"
          "  --timeout S  a phone fails when its channel is not open, or a "
          "response not\n               complete, S seconds after it asked "
          "(default 60; 0: wait\n               forever). Whatever it "
          "waits for, a phone fails at once\n               when the MF's "
          "port is closed (ICMP port unreachable), and\n               "
          "after 10 s (idle: 30 s) with nothing from the MF\n"
          "  bench and idle exit 1 when a phone failed, else 3 when the "
          "control API\n         connection failed, else 0\n"
          "  fetch  prints the body (--include: the head too); exit 0 on "
          "2xx/3xx, 1 on an\n         HTTP error, 3 when no response came\n"
          "  bench  runs N fetches, C at a time, and reports the time from "
          "the first\n         STUN check to the first response byte\n"
          "  idle   connects N phones, prints \"ready N\", holds them S "
          "seconds (or until\n         SIGINT), then releases them\n");
}

static void on_sigint(uv_signal_t *s, int sig) {
  (void)sig;
  struct run *r = s->data;
  r->count = r->started; /* start no more */
  if (!r->stopping) {
    r->stopping = 1;
    if (r->idle_jobs != NULL) {
      release_idle(r);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  struct run r = {.count = 1,
                  .concurrency = 1,
                  .path = "/",
                  .exit_code = 0,
                  .timeout_s = 60};
  const char *api = "http://127.0.0.1:8090";
  if (strcmp(argv[1], "fetch") == 0) {
    r.mode = MODE_FETCH;
  } else if (strcmp(argv[1], "bench") == 0) {
    r.mode = MODE_BENCH;
    r.count = 100;
    r.concurrency = 10;
  } else if (strcmp(argv[1], "idle") == 0) {
    r.mode = MODE_IDLE;
    r.count = 100;
    r.concurrency = 50;
  } else if (strcmp(argv[1], "--version") == 0) {
    printf("dcmf-ue %s\n", DCMF_VERSION);
    return 0;
  } else {
    usage(strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
      api = argv[++i];
    } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      r.count = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--concurrency") == 0 && i + 1 < argc) {
      r.concurrency = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      r.seconds = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      r.timeout_s = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--include") == 0 || strcmp(argv[i], "-i") == 0) {
      r.include_head = 1;
    } else if (strcmp(argv[i], "--no-ice") == 0) {
      r.no_ice = 1;
    } else if (strcmp(argv[i], "--replace-url") == 0 && i + 1 < argc) {
      r.replace_url = argv[++i];
    } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
      r.data = argv[++i];
    } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
      r.repeat = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--stream") == 0 && i + 1 < argc) {
      r.stream = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--mdc2") == 0 && i + 1 < argc) {
      r.mdc2 = argv[++i];
    } else if (argv[i][0] == '/') {
      r.path = argv[i];
    } else {
      fprintf(stderr, "dcmf-ue: unexpected argument \"%s\"\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (r.count < 1 || r.concurrency < 1 || r.repeat < 0 || r.stream < 0 ||
      r.stream > 65534 || r.timeout_s < 0 || r.timeout_s > 86400) {
    fprintf(stderr, "dcmf-ue: --count and --concurrency must be positive, "
                    "--timeout within 0..86400\n");
    return 2;
  }
  if (r.mode == MODE_IDLE) {
    r.concurrency = r.count;
  }
  char host[64];
  uint16_t port;
  char err[256];
  if (dcmf_apiclient_parse_base(api, host, sizeof(host), &port) != 0) {
    fprintf(stderr, "dcmf-ue: --api must be http://HOST:PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  r.loop = uv_default_loop();
  r.latency_ms = calloc((size_t)r.count, sizeof(double));
  if (r.repeat > 0) {
    r.request_ms = calloc((size_t)(r.count * r.repeat), sizeof(double));
    if (r.request_ms == NULL) {
      return 3;
    }
  }
  if (r.mode == MODE_IDLE) {
    r.idle_jobs = calloc((size_t)r.count, sizeof(*r.idle_jobs));
    if (r.idle_jobs == NULL) {
      return 3;
    }
  }
  /* libsrtp2's kernel, once per process before any phone (srtp.h). */
  if (r.latency_ms == NULL || dcmf_srtp_lib_init() != 0 ||
      dcmf_cert_generate(&r.cert, err, sizeof(err)) ||
      dcmf_dtls_ctx_init(&r.dtls_ctx, r.cert.x509, r.cert.pkey, 1200) ||
      dcmf_apiclient_new(&r.api, r.loop, host, port) != 0) {
    fprintf(stderr, "dcmf-ue: cannot start\n");
    return 3;
  }
  dcmf_sctp_stack_init();
  dcmf_tickq_init(&r.ticks);
  uv_timer_init(r.loop, &r.tick);
  uv_signal_init(r.loop, &r.sigint);
  r.tick.data = r.sigint.data = &r;
  uv_signal_start(&r.sigint, on_sigint, SIGINT);
  r.last_tick_ms = uv_now(r.loop);
  uv_timer_start(&r.tick, on_tick, 0, 5);
  uint64_t t0 = uv_hrtime();
  uv_run(r.loop, UV_RUN_DEFAULT);
  double seconds = (double)(uv_hrtime() - t0) / 1e9;
  if (r.mode == MODE_BENCH) {
    report(&r, seconds);
    report_repeat(&r);
  }
  free(r.latency_ms);
  free(r.request_ms);
  free(r.idle_jobs);
  dcmf_dtls_ctx_free(&r.dtls_ctx);
  dcmf_cert_free(&r.cert);
  for (int i = 0; i < 100 && dcmf_sctp_stack_finish() != 0; i++) {
    dcmf_sctp_stack_tick(100);
  }
  if (r.mode != MODE_FETCH && r.failed > 0) {
    return 1;
  }
  return r.exit_code;
}
