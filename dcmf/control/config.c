#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dcmf_build_config.h"
#include "errors.h"

/* How an option's text value is read into the config struct. */
enum opt_kind {
  OPT_HOSTPORT, /* "HOST:PORT" -> control_host + control_port */
  OPT_ADDR,     /* numeric IPv4/IPv6 address */
  OPT_RANGE,    /* "LO-HI" -> port_min + port_max */
  OPT_LEVEL,
  OPT_FORMAT,
  OPT_SRTP, /* "openssl" or "libsrtp2" -> srtp_backend */
  OPT_PATH,
  OPT_UINT, /* decimal, within [min, max] */
  OPT_FILE, /* --config: handled before the others */
  OPT_TEXT, /* a string of at most |width| - 1 bytes */
  OPT_LIST, /* repeatable: appends to an array of |width|-byte strings of
             * at most |max| entries, counted by the size_t at offset |min| */
};

struct opt {
  const char *name;
  enum opt_kind kind;
  size_t offset; /* into struct dcmf_config; width implied by kind */
  size_t width;  /* for OPT_UINT: sizeof the field */
  unsigned long min, max;
  const char *arg;
  const char *help;
};

#define FIELD(f) offsetof(struct dcmf_config, f)
#define UINTF(f) FIELD(f), sizeof(((struct dcmf_config *)0)->f)
#define TEXTF(f) FIELD(f), sizeof(((struct dcmf_config *)0)->f), 0, 0
#define LISTF(f, n)                                                            \
  FIELD(f), sizeof(((struct dcmf_config *)0)->f[0]), FIELD(n),                 \
      sizeof(((struct dcmf_config *)0)->f) /                                   \
          sizeof(((struct dcmf_config *)0)->f[0])

static const struct opt options[] = {
    {"config", OPT_FILE, 0, 0, 0, 0, "FILE",
     "read settings from a JSON object file (flags override it)"},
    {"control", OPT_HOSTPORT, 0, 0, 0, 0, "HOST:PORT",
     "control API (Nmf_MRM) listen address [127.0.0.1:8090]"},
    {"media-bind", OPT_ADDR, FIELD(media_bind), 0, 0, 0, "ADDR",
     "address media UDP ports bind to [127.0.0.1]"},
    {"media-advertise", OPT_ADDR, FIELD(media_advertise), 0, 0, 0, "ADDR",
     "address reported in localMbEndpoint [the --media-bind address]"},
    {"ports", OPT_RANGE, 0, 0, 0, 0, "LO-HI",
     "UDP port range for media [40000-40999]"},
    {"log-level", OPT_LEVEL, 0, 0, 0, 0, "LEVEL",
     "error, warn, info or debug [info]"},
    {"log-format", OPT_FORMAT, 0, 0, 0, 0, "FORMAT",
     "text or json (one JSON object per line) [text]"},
    {"srtp-backend", OPT_SRTP, 0, 0, 0, 0, "NAME",
     "SRTP crypto: openssl (EVP) or libsrtp2 [openssl]"},
    {"bootstrap-dir", OPT_PATH, FIELD(bootstrap_dir), 0, 0, 0, "DIR",
     "bootstrap repository directory [built-in bootstrap/www]"},
    {"control-cert", OPT_PATH, FIELD(control_cert), 0, 0, 0, "PEM",
     "certificate for h2 over TLS on the control API [none: h2c]"},
    {"control-key", OPT_PATH, FIELD(control_key), 0, 0, 0, "PEM",
     "private key for --control-cert"},
    {"dtls-cert", OPT_PATH, FIELD(dtls_cert), 0, 0, 0, "PEM",
     "DTLS certificate [generated ECDSA P-256 at start]"},
    {"dtls-key", OPT_PATH, FIELD(dtls_key), 0, 0, 0, "PEM",
     "private key for --dtls-cert"},
    {"dtls-rsa-cert", OPT_PATH, FIELD(dtls_rsa_cert), 0, 0, 0, "PEM",
     "RSA DTLS certificate of T.38 over DTLS (RFC 7345) [generated RSA "
     "2048 at start]"},
    {"dtls-rsa-key", OPT_PATH, FIELD(dtls_rsa_key), 0, 0, 0, "PEM",
     "private key for --dtls-rsa-cert"},
    {"sctp-port", OPT_UINT, UINTF(sctp_port), 1, 65535, "PORT",
     "SCTP port reported in localDcEndpoint [5000]"},
    {"max-body", OPT_UINT, UINTF(max_body), 256, 64UL << 20, "BYTES",
     "largest control API request body [1048576]"},
    {"request-timeout", OPT_UINT, UINTF(request_timeout_ms), 100, 3600000,
     "MS", "time allowed to send a whole control request [10000]"},
    {"idle-timeout", OPT_UINT, UINTF(idle_timeout_ms), 100, 86400000, "MS",
     "idle control connections are closed after this [120000]"},
    {"max-contexts", OPT_UINT, UINTF(max_contexts), 1, 10000000, "N",
     "most media contexts held at once [100000]"},
    {"max-streams", OPT_UINT, UINTF(max_streams), 16, 65535, "N",
     "most SCTP streams an association asks for, each direction [2048]"},
    {"min-streams", OPT_UINT, UINTF(min_streams), 16, 65535, "N",
     "fewest SCTP streams an association asks for, each direction; "
     "more when the media declares higher stream ids [2048]"},
    {"upstream-ca", OPT_PATH, FIELD(upstream_ca), 0, 0, 0, "PEM",
     "CA bundle for https upstreams and event receivers [the system's]"},
    {"upstream-cert", OPT_PATH, FIELD(upstream_cert), 0, 0, 0, "PEM",
     "client certificate toward https upstreams [none]"},
    {"upstream-key", OPT_PATH, FIELD(upstream_key), 0, 0, 0, "PEM",
     "private key for --upstream-cert"},
    {"upstream-connect-timeout", OPT_UINT,
     UINTF(upstream_connect_timeout_ms), 100, 600000, "MS",
     "upstream TCP and TLS set-up limit (then 502) [3000]"},
    {"upstream-response-timeout", OPT_UINT,
     UINTF(upstream_response_timeout_ms), 100, 600000, "MS",
     "wait for an upstream response head (then 504), and the longest "
     "silence in a body being read (then the request ends) [10000]"},
    {"upstream-idle-timeout", OPT_UINT, UINTF(upstream_idle_timeout_ms), 100,
     86400000, "MS", "idle upstream connections are closed [60000]"},
    {"upstream-max-connections", OPT_UINT, UINTF(upstream_max_connections),
     1, 1024, "N", "HTTP/1.1 connections per upstream origin [8]"},
    {"cache-size", OPT_UINT, UINTF(cache_size), 0, 1UL << 40, "BYTES",
     "cache for proxied bootstrap content, split equally among the media "
     "workers; 0 disables [67108864]"},
    {"proxy-fallback", OPT_UINT, UINTF(proxy_fallback), 0, 1, "0|1",
     "HTTP-proxy mode: serve streams without a replacement URL from the "
     "built-in repository (1) or answer 404 (0) [1]"},
    {"dtls-coalesce", OPT_UINT, UINTF(dtls_coalesce), 0, 1, "0|1",
     "send the DTLS records a loop turn makes toward a phone in as few "
     "datagrams as fit 1200 bytes (1), or each in its own (0); off by "
     "default: libdatachannel (node-datachannel 0.33) reads only one "
     "record per datagram and stalls [0]"},
    {"sctp-bundle", OPT_UINT, UINTF(sctp_bundle), 0, 1, "0|1",
     "bundle the small messages a loop turn sends toward a phone into "
     "as few SCTP packets as fit (1), or send each in its own (0) [1]"},
    {"media-pace-us", OPT_UINT, UINTF(media_pace_us), 0, 10000, "US",
     "a busy media worker pauses after a loop turn with I/O until this "
     "long has passed since its previous pause, so one poll serves many "
     "sockets (fewer wake-ups per packet, at most this much added "
     "latency); 0: off [" DCMF_CONFIG_STR(DCMF_MEDIA_PACE_US_DEFAULT) "]"},
    {"stun-rate", OPT_UINT, UINTF(stun_rate), 0, 1000000, "N",
     "STUN checks per second per source address (not a session's peer) "
     "before drops; 0: no limit [200]"},
    {"hello-rate", OPT_UINT, UINTF(hello_rate), 0, 1000000, "N",
     "DTLS ClientHellos per second per source address before drops; 0: no "
     "limit [100]"},
    {"e2ae-push-ms", OPT_UINT, UINTF(e2ae_push_ms), 100, 60000, "MS",
     "push an e2ae media's counters to GET and /metrics at most this often "
     "(first counts and profile changes at once) [1000]"},
    {"workers", OPT_UINT, UINTF(workers), 1, DCMF_CONFIG_MAX_WORKERS, "N",
     "media worker processes, each with its own SCTP stack; contexts are "
     "spread over them [one per CPU core]"},
    {"mem-trim-delay", OPT_UINT, UINTF(mem_trim_delay_ms), 0, 600000, "MS",
     "give freed memory back to the system once no session or context "
     "ended for this long (at the latest, and at most once per, 10 times "
     "this); 0: never [1000]"},
    {"shutdown-timeout", OPT_UINT, UINTF(shutdown_timeout_ms), 100, 600000,
     "MS", "after SIGTERM/SIGINT, exit with status 3 if the graceful "
     "shutdown is not done by then [5000]"},
    {"control-client-ca", OPT_PATH, FIELD(control_client_ca), 0, 0, 0, "PEM",
     "require control clients to present a certificate from these CAs "
     "(needs --control-cert) [none]"},
    {"control-client-subject", OPT_LIST,
     LISTF(control_client_subjects, n_control_client_subjects), "NAME",
     "allow only this client certificate CN, or whole RFC 2253 subject if "
     "NAME holds '='; repeatable [any]"},
    {"oauth2-key", OPT_LIST, LISTF(oauth2_keys, n_oauth2_keys), "PEM",
     "require OAuth2 bearer tokens signed by this NRF public key or "
     "certificate (RS256/384/512, ES256/384/512); repeatable [none]"},
    {"oauth2-hmac-secret", OPT_PATH, FIELD(oauth2_hmac_secret), 0, 0, 0, "FILE",
     "accept HS256/384/512 tokens keyed with this file's bytes "
     "[none: refused]"},
    {"oauth2-audience", OPT_TEXT, TEXTF(oauth2_audience), "AUD",
     "value tokens must carry in aud, e.g. the MF's NF instance id "
     "(required with --oauth2-key)"},
    {"oauth2-issuer", OPT_TEXT, TEXTF(oauth2_issuer), "ISS",
     "value tokens must carry in iss, e.g. the NRF's NF instance id "
     "[not checked]"},
    {"oauth2-scope-agw", OPT_TEXT, TEXTF(oauth2_scope_agw), "SCOPE",
     "scope tokens need for /agw/v1 (Nmf_MRM needs nmf-mrm) [dcmf-agw]"},
    {"oauth2-leeway", OPT_UINT, UINTF(oauth2_leeway_s), 0, 3600, "S",
     "clock skew allowed on exp, nbf and iat [60]"},
    {"auth-metrics", OPT_UINT, UINTF(auth_metrics), 0, 1, "0|1",
     "check client subjects and tokens on /healthz and /metrics too [0]"},
    {"test-delay-rsa-ms", OPT_UINT, UINTF(test_delay_rsa_ms), 0, 600000, "MS",
     "tests only: start generating the T.38 RSA identity this much later "
     "[0]"},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

void dcmf_config_defaults(struct dcmf_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  strcpy(cfg->control_host, "127.0.0.1");
  cfg->control_port = 8090;
  strcpy(cfg->media_bind, "127.0.0.1");
  cfg->port_min = 40000;
  cfg->port_max = 40999;
  cfg->log_level = DCMF_LOG_INFO;
  cfg->log_format = DCMF_LOG_TEXT;
  cfg->srtp_backend = DCMF_SRTP_BACKEND_DEFAULT;
  snprintf(cfg->bootstrap_dir, sizeof(cfg->bootstrap_dir), "%s",
           DCMF_DEFAULT_BOOTSTRAP_DIR);
  cfg->sctp_port = 5000;
  cfg->max_body = 1 << 20;
  cfg->request_timeout_ms = 10000;
  cfg->idle_timeout_ms = 120000;
  cfg->max_contexts = 100000;
  cfg->max_streams = 2048;
  cfg->min_streams = 2048;
  cfg->sctp_bundle = 1;
  cfg->media_pace_us = DCMF_MEDIA_PACE_US_DEFAULT;
  cfg->upstream_connect_timeout_ms = 3000;
  cfg->upstream_response_timeout_ms = 10000;
  cfg->upstream_idle_timeout_ms = 60000;
  cfg->upstream_max_connections = 8;
  cfg->cache_size = 64u << 20;
  cfg->proxy_fallback = 1;
  cfg->stun_rate = 200;
  cfg->hello_rate = 100;
  cfg->shutdown_timeout_ms = 5000;
  cfg->mem_trim_delay_ms = 1000;
  strcpy(cfg->oauth2_scope_agw, "dcmf-agw");
  cfg->oauth2_leeway_s = 60;
}

static const struct opt *opt_find(const char *name) {
  for (size_t i = 0; i < N_OPTIONS; i++) {
    if (strcmp(options[i].name, name) == 0) {
      return &options[i];
    }
  }
  return NULL;
}

static int parse_ulong(const char *text, unsigned long min, unsigned long max,
                       unsigned long *out) {
  if (text[0] < '0' || text[0] > '9') {
    return DCMF_ERR_INVALID;
  }
  errno = 0;
  char *end;
  unsigned long v = strtoul(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) {
    return DCMF_ERR_INVALID;
  }
  *out = v;
  return 0;
}

static int is_ip_address(const char *text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text, buf) == 1 ||
         inet_pton(AF_INET6, text, buf) == 1;
}

static void store_uint(struct dcmf_config *cfg, const struct opt *o,
                       unsigned long v) {
  char *field = (char *)cfg + o->offset;
  switch (o->width) {
  case sizeof(uint16_t): {
    uint16_t x = (uint16_t)v;
    memcpy(field, &x, sizeof(x));
    break;
  }
  case sizeof(uint32_t): {
    uint32_t x = (uint32_t)v;
    memcpy(field, &x, sizeof(x));
    break;
  }
  default: {
    size_t x = (size_t)v;
    memcpy(field, &x, sizeof(x));
    break;
  }
  }
}

/* Sets option |o| from the text |value|; |origin| prefixes messages. */
static int opt_set(struct dcmf_config *cfg, const struct opt *o,
                   const char *value, const char *origin, char *err,
                   size_t errlen) {
  unsigned long v;
  switch (o->kind) {
  case OPT_HOSTPORT: {
    /* The port follows the last ':', so "[::1]:8090" and "::1:8090" are
     * both read; brackets are stripped. */
    const char *colon = strrchr(value, ':');
    if (colon == NULL || colon == value ||
        parse_ulong(colon + 1, 1, 65535, &v) != 0) {
      return dcmf_invalid(
          err, errlen,
          "%s: %s must be HOST:PORT with a port 1-65535, got \"%s\"", origin,
          o->name, value);
    }
    const char *host = value;
    size_t hlen = (size_t)(colon - value);
    if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
      host++;
      hlen -= 2;
    }
    char tmp[DCMF_HOST_MAX];
    if (hlen >= sizeof(tmp)) {
      return dcmf_invalid(err, errlen, "%s: %s host is too long", origin,
                          o->name);
    }
    memcpy(tmp, host, hlen);
    tmp[hlen] = '\0';
    if (!is_ip_address(tmp)) {
      return dcmf_invalid(
          err, errlen, "%s: %s host must be a numeric IP address, got \"%s\"",
          origin, o->name, tmp);
    }
    strcpy(cfg->control_host, tmp);
    cfg->control_port = (uint16_t)v;
    return 0;
  }
  case OPT_ADDR: {
    if (strlen(value) >= DCMF_HOST_MAX || !is_ip_address(value)) {
      return dcmf_invalid(err, errlen,
                          "%s: %s must be a numeric IP address, got \"%s\"",
                          origin, o->name, value);
    }
    strcpy((char *)cfg + o->offset, value);
    return 0;
  }
  case OPT_RANGE: {
    char lo[8], hi[8];
    const char *dash = strchr(value, '-');
    unsigned long a, b;
    if (dash == NULL || (size_t)(dash - value) >= sizeof(lo) ||
        strlen(dash + 1) >= sizeof(hi)) {
      return dcmf_invalid(err, errlen, "%s: %s must be LO-HI, got \"%s\"",
                          origin, o->name, value);
    }
    memcpy(lo, value, (size_t)(dash - value));
    lo[dash - value] = '\0';
    strcpy(hi, dash + 1);
    if (parse_ulong(lo, 1024, 65535, &a) != 0 ||
        parse_ulong(hi, 1024, 65535, &b) != 0 || a > b) {
      return dcmf_invalid(
          err, errlen,
          "%s: %s must be LO-HI with 1024 <= LO <= HI <= 65535, got "
          "\"%s\"",
          origin, o->name, value);
    }
    cfg->port_min = (uint16_t)a;
    cfg->port_max = (uint16_t)b;
    return 0;
  }
  case OPT_LEVEL:
    if (dcmf_log_level_parse(value, &cfg->log_level) != 0) {
      return dcmf_invalid(
          err, errlen, "%s: %s must be error, warn, info or debug, got \"%s\"",
          origin, o->name, value);
    }
    return 0;
  case OPT_FORMAT:
    if (dcmf_log_format_parse(value, &cfg->log_format) != 0) {
      return dcmf_invalid(err, errlen,
                          "%s: %s must be text or json, got \"%s\"", origin,
                          o->name, value);
    }
    return 0;
  case OPT_SRTP:
    if (dcmf_srtp_backend_by_name(value, &cfg->srtp_backend) != 0) {
      return dcmf_invalid(err, errlen,
                          "%s: %s must be openssl or libsrtp2, got \"%s\"",
                          origin, o->name, value);
    }
    return 0;
  case OPT_PATH:
    if (value[0] == '\0' || strlen(value) >= DCMF_PATH_MAX) {
      return dcmf_invalid(err, errlen, "%s: %s must be a non-empty path",
                          origin, o->name);
    }
    strcpy((char *)cfg + o->offset, value);
    return 0;
  case OPT_UINT:
    if (parse_ulong(value, o->min, o->max, &v) != 0) {
      return dcmf_invalid(
          err, errlen,
          "%s: %s must be a whole number from %lu to %lu, got \"%s\"", origin,
          o->name, o->min, o->max, value);
    }
    store_uint(cfg, o, v);
    return 0;
  case OPT_FILE:
    return dcmf_invalid(err, errlen, "%s: \"config\" cannot be nested", origin);
  case OPT_TEXT:
    if (value[0] == '\0' || strlen(value) >= o->width) {
      return dcmf_invalid(err, errlen, "%s: %s must be 1 to %zu bytes", origin,
                          o->name, o->width - 1);
    }
    strcpy((char *)cfg + o->offset, value);
    return 0;
  case OPT_LIST: {
    size_t n;
    memcpy(&n, (char *)cfg + o->min, sizeof(n));
    if (n >= o->max) {
      return dcmf_invalid(err, errlen, "%s: %s is given more than %lu times",
                          origin, o->name, o->max);
    }
    if (value[0] == '\0' || strlen(value) >= o->width) {
      return dcmf_invalid(err, errlen, "%s: %s must be 1 to %zu bytes", origin,
                          o->name, o->width - 1);
    }
    strcpy((char *)cfg + o->offset + n * o->width, value);
    n++;
    memcpy((char *)cfg + o->min, &n, sizeof(n));
    return 0;
  }
  }
  return DCMF_ERR_INVALID;
}

int dcmf_config_apply_json(struct dcmf_config *cfg, const char *json,
                           const char *origin, char *err, size_t errlen) {
  json_error_t jerr;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL) {
    return dcmf_invalid(err, errlen, "%s: line %d: %s", origin, jerr.line,
                        jerr.text);
  }
  int rv = 0;
  if (!json_is_object(root)) {
    rv = dcmf_invalid(err, errlen, "%s: must hold one JSON object", origin);
    goto done;
  }
  const char *key;
  json_t *value;
  json_object_foreach(root, key, value) {
    const struct opt *o = opt_find(key);
    if (o == NULL) {
      rv =
          dcmf_invalid(err, errlen, "%s: unknown key \"%s\" (see dcmfd --help)",
                       origin, key);
      goto done;
    }
    if (o->kind == OPT_LIST && json_is_array(value)) {
      size_t i;
      json_t *item;
      json_array_foreach(value, i, item) {
        if (!json_is_string(item)) {
          rv = dcmf_invalid(err, errlen, "%s: key \"%s\" must hold strings",
                            origin, key);
          goto done;
        }
        rv = opt_set(cfg, o, json_string_value(item), origin, err, errlen);
        if (rv != 0) {
          goto done;
        }
      }
      continue;
    }
    char text[DCMF_PATH_MAX];
    if (json_is_string(value)) {
      snprintf(text, sizeof(text), "%s", json_string_value(value));
    } else if (json_is_integer(value) && o->kind == OPT_UINT) {
      snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(value));
    } else {
      rv = dcmf_invalid(err, errlen, "%s: key \"%s\" must be a %s", origin, key,
                        o->kind == OPT_UINT ? "number" : "string");
      goto done;
    }
    rv = opt_set(cfg, o, text, origin, err, errlen);
    if (rv != 0) {
      goto done;
    }
  }
done:
  json_decref(root);
  return rv;
}

static int config_load_file(struct dcmf_config *cfg, const char *path,
                            char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    return dcmf_invalid(err, errlen, "config file %s: %s", path,
                        strerror(errno));
  }
  /* A config file is small; refuse anything that is clearly not one. */
  char *buf = malloc(1 << 20);
  if (buf == NULL) {
    fclose(f);
    return dcmf_invalid(err, errlen, "config file %s: out of memory", path);
  }
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  int read_error = ferror(f);
  int too_big = !feof(f) && n == (1 << 20) - 1;
  fclose(f);
  int rv;
  if (read_error) {
    rv = dcmf_invalid(err, errlen, "config file %s: cannot be read", path);
  } else if (too_big) {
    rv = dcmf_invalid(err, errlen, "config file %s: larger than 1 MiB", path);
  } else {
    buf[n] = '\0';
    char origin[DCMF_PATH_MAX + 16];
    snprintf(origin, sizeof(origin), "config file %s", path);
    rv = dcmf_config_apply_json(cfg, buf, origin, err, errlen);
  }
  free(buf);
  return rv;
}

/* Splits "--name=value" or "--name value"; returns the option or NULL. */
static const struct opt *arg_option(int argc, char **argv, int *i,
                                    const char **value, char *err,
                                    size_t errlen, int *rv) {
  const char *arg = argv[*i];
  char name[64];
  const char *eq = strchr(arg + 2, '=');
  size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
  *rv = 0;
  if (nlen >= sizeof(name)) {
    *rv = dcmf_invalid(err, errlen, "unknown option %s (see --help)", arg);
    return NULL;
  }
  memcpy(name, arg + 2, nlen);
  name[nlen] = '\0';
  const struct opt *o = opt_find(name);
  if (o == NULL) {
    *rv = dcmf_invalid(err, errlen, "unknown option --%s (see --help)", name);
    return NULL;
  }
  if (eq != NULL) {
    *value = eq + 1;
  } else if (*i + 1 < argc) {
    *value = argv[++*i];
  } else {
    *rv = dcmf_invalid(err, errlen, "option --%s needs a value (%s)", name,
                       o->arg);
    return NULL;
  }
  return o;
}

/* The access-control settings only make sense in certain combinations. */
static int config_check_auth(const struct dcmf_config *cfg, char *err,
                             size_t errlen) {
  if (cfg->control_client_ca[0] != '\0' && cfg->control_cert[0] == '\0') {
    return dcmf_invalid(
        err, errlen,
        "control-client-ca needs control-cert and control-key (mutual "
        "TLS runs over h2 with TLS)");
  }
  if (cfg->n_control_client_subjects > 0 && cfg->control_client_ca[0] == '\0') {
    return dcmf_invalid(err, errlen,
                        "control-client-subject needs control-client-ca");
  }
  int oauth2 = cfg->n_oauth2_keys > 0 || cfg->oauth2_hmac_secret[0] != '\0';
  if (oauth2 && cfg->oauth2_audience[0] == '\0') {
    return dcmf_invalid(
        err, errlen,
        "oauth2-key needs oauth2-audience (the value the NRF puts "
        "in aud for this MF)");
  }
  if (!oauth2 &&
      (cfg->oauth2_audience[0] != '\0' || cfg->oauth2_issuer[0] != '\0')) {
    return dcmf_invalid(err, errlen,
                        "oauth2-audience and oauth2-issuer need oauth2-key");
  }
  return 0;
}

int dcmf_config_from_args(struct dcmf_config *cfg, int argc, char **argv,
                          enum dcmf_config_action *action, char *err,
                          size_t errlen) {
  dcmf_config_defaults(cfg);
  *action = DCMF_CONFIG_RUN;
  int rv;
  /* First pass: --help, --version and --config, so the file is applied
   * before any flag regardless of where --config appears. */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      *action = DCMF_CONFIG_HELP;
      return 0;
    }
    if (strcmp(argv[i], "--version") == 0) {
      *action = DCMF_CONFIG_VERSION;
      return 0;
    }
  }
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) != 0) {
      return dcmf_invalid(err, errlen,
                          "unexpected argument \"%s\" (see --help)", argv[i]);
    }
    const char *value;
    const struct opt *o = arg_option(argc, argv, &i, &value, err, errlen, &rv);
    if (o == NULL) {
      return rv;
    }
    if (o->kind == OPT_FILE && (rv = config_load_file(cfg, value, err,
                                                      errlen)) != 0) {
      return rv;
    }
  }
  /* A repeatable flag replaces the file's list rather than adding to it. */
  unsigned char cleared[N_OPTIONS] = {0};
  for (int i = 1; i < argc; i++) {
    const char *value;
    const struct opt *o = arg_option(argc, argv, &i, &value, err, errlen, &rv);
    size_t oi = (size_t)(o - options);
    if (o->kind == OPT_LIST && !cleared[oi]) {
      size_t zero = 0;
      memcpy((char *)cfg + o->min, &zero, sizeof(zero));
      cleared[oi] = 1;
    }
    if (o->kind != OPT_FILE &&
        (rv = opt_set(cfg, o, value, "command line", err, errlen)) != 0) {
      return rv;
    }
  }
  if (cfg->media_advertise[0] == '\0') {
    strcpy(cfg->media_advertise, cfg->media_bind);
  }
  if ((cfg->control_cert[0] == '\0') != (cfg->control_key[0] == '\0')) {
    return dcmf_invalid(err, errlen,
                        "control-cert and control-key go together");
  }
  if ((cfg->dtls_cert[0] == '\0') != (cfg->dtls_key[0] == '\0')) {
    return dcmf_invalid(err, errlen, "dtls-cert and dtls-key go together");
  }
  if ((cfg->dtls_rsa_cert[0] == '\0') != (cfg->dtls_rsa_key[0] == '\0')) {
    return dcmf_invalid(err, errlen,
                        "dtls-rsa-cert and dtls-rsa-key go together");
  }
  if ((cfg->upstream_cert[0] == '\0') != (cfg->upstream_key[0] == '\0')) {
    return dcmf_invalid(err, errlen,
                        "upstream-cert and upstream-key go together");
  }
  return config_check_auth(cfg, err, errlen);
}

void dcmf_config_usage(FILE *out, const char *program) {
  fprintf(out,
          "Usage: %s [OPTION...]\n"
          "dcmfd %s - IMS data-channel media function (Nmf_MRM over "
          "HTTP/2).\n\n"
          "Options (each may also be a key of the --config JSON file):\n",
          program, DCMF_VERSION);
  for (size_t i = 0; i < N_OPTIONS; i++) {
    char left[48];
    snprintf(left, sizeof(left), "--%s %s", options[i].name, options[i].arg);
    fprintf(out, "  %-28s %s\n", left, options[i].help);
  }
  fprintf(out, "  %-28s %s\n  %-28s %s\n\n", "--help", "show this text",
          "--version", "print the version");
  fprintf(out, "Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on "
               "a run-time failure,\n2 on a bad flag, key or file.\n");
}
