/*
 * config.h - dcmfd settings: built-in defaults, an optional JSON config
 * file and command-line flags, in that order of precedence.
 *
 * Every setting has one name used both as the flag (--name) and as the
 * config-file key ("name"), so the two can never drift apart.
 */
#ifndef DCMF_CONFIG_H
#define DCMF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "log.h"
#include "srtp.h"

#define DCMF_HOST_MAX 64
#define DCMF_PATH_MAX 1024
#define DCMF_NAME_MAX 256

/* The most media worker processes (--workers). */
#define DCMF_CONFIG_MAX_WORKERS 64

/* --media-pace-us's default (docs/benchmarks.md, rtpengine side by
 * side: the call mix's CPU per packet against the latency it adds). */
#define DCMF_MEDIA_PACE_US_DEFAULT 500
#define DCMF_CONFIG_STR_(x) #x
#define DCMF_CONFIG_STR(x) DCMF_CONFIG_STR_(x)

struct dcmf_config {
  char control_host[DCMF_HOST_MAX]; /* control API listen address */
  uint16_t control_port;
  char media_bind[DCMF_HOST_MAX];      /* address media sockets bind to */
  char media_advertise[DCMF_HOST_MAX]; /* address reported to the IMS AS */
  uint16_t port_min, port_max;         /* inclusive UDP media port range */
  enum dcmf_log_level log_level;
  enum dcmf_log_format log_format;
  char bootstrap_dir[DCMF_PATH_MAX];
  char control_cert[DCMF_PATH_MAX]; /* PEM; empty means plain h2c */
  char control_key[DCMF_PATH_MAX];
  char dtls_cert[DCMF_PATH_MAX]; /* PEM; empty means generate at start */
  char dtls_key[DCMF_PATH_MAX];
  /* PEM; empty means an RSA 2048 one generated at start (T.38 over DTLS,
   * RFC 7345) */
  char dtls_rsa_cert[DCMF_PATH_MAX];
  char dtls_rsa_key[DCMF_PATH_MAX];
  uint16_t sctp_port;         /* local a=sctp-port we report */
  size_t max_body;            /* control API request body limit, bytes */
  uint32_t request_timeout_ms; /* a request must be complete within this */
  uint32_t idle_timeout_ms;    /* an idle control connection is closed */
  uint32_t max_contexts;
  /* SCTP streams an association's INIT asks for in each direction: the
   * highest declared stream id + 1, at least min_streams, at most
   * max_streams (dcmf_assoc_sctp_init_streams) */
  uint16_t max_streams;
  uint16_t min_streams;
  /* The crypto of every SRTP engine (srtp.h; --srtp-backend) */
  enum dcmf_srtp_backend srtp_backend;
  /* HTTP-proxy mode */
  char upstream_ca[DCMF_PATH_MAX]; /* "" : the system's CA paths */
  char upstream_cert[DCMF_PATH_MAX];
  char upstream_key[DCMF_PATH_MAX];
  uint32_t upstream_connect_timeout_ms;
  uint32_t upstream_response_timeout_ms;
  uint32_t upstream_idle_timeout_ms;
  uint32_t upstream_max_connections;
  size_t cache_size; /* bytes; 0 disables the cache */
  uint32_t proxy_fallback; /* 1: streams without a URL use the repo */
  /* 1: a loop turn's DTLS records share datagrams (dcstack.h) */
  uint32_t dtls_coalesce;
  /* 1: a loop turn's small messages share SCTP packets (sctp.h) */
  uint32_t sctp_bundle;
  /* Media worker loop pacing in microseconds, 0: off (pace.h;
   * DCMF_MEDIA_PACE_US_DEFAULT) */
  uint32_t media_pace_us;
  /* Per-source limits per worker, per second (0: none). */
  uint32_t stun_rate;  /* STUN checks from sources other than the peer */
  uint32_t hello_rate; /* DTLS ClientHellos */
  /* The most often an e2ae media's counters are pushed, in ms; 0: the
   * service's default, DCMF_E2AE_PUSH_MS (e2ae_svc.h). */
  uint32_t e2ae_push_ms;
  uint32_t shutdown_timeout_ms; /* SIGTERM: exit 3 if not done by then */
  /* Quiet time after releases before malloc_trim (memtrim.h); 0: never. */
  uint32_t mem_trim_delay_ms;
  /* Who may drive the control API (docs/security.md). */
  char control_client_ca[DCMF_PATH_MAX]; /* "": no client certificates */
  char control_client_subjects[DCMF_AUTH_MAX_SUBJECTS][DCMF_NAME_MAX];
  size_t n_control_client_subjects;
  char oauth2_keys[DCMF_AUTH_MAX_KEYS][DCMF_PATH_MAX]; /* NRF keys, PEM */
  size_t n_oauth2_keys;
  char oauth2_hmac_secret[DCMF_PATH_MAX]; /* file; "": HS* refused */
  char oauth2_audience[DCMF_NAME_MAX];
  char oauth2_issuer[DCMF_NAME_MAX]; /* "": not checked */
  char oauth2_scope_agw[64];
  uint32_t oauth2_leeway_s;
  uint32_t auth_metrics; /* 1: /healthz and /metrics are checked too */
  /* Media worker processes; 0: one per CPU core (dcmfd resolves it). */
  uint32_t workers;
  /* Tests only: the generated RSA identity starts this many ms late
   * (rsaident.h), so a test sees the daemon before it is there. */
  uint32_t test_delay_rsa_ms;
};

/* Fills |cfg| with the built-in defaults. */
void dcmf_config_defaults(struct dcmf_config *cfg);

/* What dcmf_config_from_args asks the caller to do next. */
enum dcmf_config_action {
  DCMF_CONFIG_RUN,
  DCMF_CONFIG_HELP,
  DCMF_CONFIG_VERSION,
};

/*
 * Builds the configuration from defaults, the file named by --config (if
 * any) and the remaining flags, which override the file. On success
 * returns 0 and sets *|action|. On failure returns DCMF_ERR_INVALID and
 * writes one sentence naming the problem (unknown flag or key, bad value,
 * unreadable file) into |err| (capacity |errlen|).
 */
int dcmf_config_from_args(struct dcmf_config *cfg, int argc, char **argv,
                          enum dcmf_config_action *action, char *err,
                          size_t errlen);

/*
 * Applies the JSON object text |json| (config-file syntax) on top of
 * |cfg|. |origin| names the source in error messages. Returns 0 or
 * DCMF_ERR_INVALID with |err| filled.
 */
int dcmf_config_apply_json(struct dcmf_config *cfg, const char *json,
                           const char *origin, char *err, size_t errlen);

/* Prints the --help text to |out|. */
void dcmf_config_usage(FILE *out, const char *program);

#endif
