#include "authcfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include "errors.h"
#include "h2server.h"

/* Reads a small file (a PEM key, a secret) whole into |*out| (malloc'd,
 * NUL-terminated, |*len| without the NUL). Returns 0 or -1 with |err| set. */
static int read_small_file(const char *what, const char *path, uint8_t **out,
                           size_t *len, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err, errlen, "%s %.400s: %s", what, path, strerror(errno));
    return -1;
  }
  enum { CAP = 64 * 1024 };
  uint8_t *buf = malloc(CAP + 1);
  size_t n = buf != NULL ? fread(buf, 1, CAP, f) : 0;
  int bad = buf == NULL || ferror(f) || !feof(f) || n == 0;
  fclose(f);
  if (bad) {
    snprintf(err, errlen, "%s %.400s: empty, unreadable or over 64 KiB", what,
             path);
    free(buf);
    return -1;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

int dcmf_authcfg_build(const struct dcmf_config *c, SSL_CTX *control_tls,
                       struct dcmf_auth **auth, char *err, size_t errlen) {
  int mtls = c->control_client_ca[0] != '\0';
  if (!mtls && c->n_oauth2_keys == 0 && c->oauth2_hmac_secret[0] == '\0') {
    return 0;
  }
  struct dcmf_auth_key keys[DCMF_AUTH_MAX_KEYS];
  const char *subjects[DCMF_AUTH_MAX_SUBJECTS];
  uint8_t *secret = NULL;
  size_t secret_len = 0, n_keys = 0;
  int rv = 2;
  for (size_t i = 0; i < c->n_control_client_subjects; i++) {
    subjects[i] = c->control_client_subjects[i];
  }
  for (; n_keys < c->n_oauth2_keys; n_keys++) {
    uint8_t *pem;
    size_t len;
    if (read_small_file("oauth2-key", c->oauth2_keys[n_keys], &pem, &len, err,
                        errlen) != 0) {
      goto done;
    }
    keys[n_keys] = (struct dcmf_auth_key){c->oauth2_keys[n_keys], pem, len};
  }
  if (c->oauth2_hmac_secret[0] != '\0') {
    if (read_small_file("oauth2-hmac-secret", c->oauth2_hmac_secret, &secret,
                        &secret_len, err, errlen) != 0) {
      goto done;
    }
    /* A secret written with echo or an editor ends in a newline that is
     * not part of it. */
    if (secret[secret_len - 1] == '\n') {
      secret_len--;
    }
    if (secret_len < 32) {
      snprintf(err, errlen,
               "oauth2-hmac-secret %.400s: at least 32 bytes are needed (RFC "
               "7518 3.2)",
               c->oauth2_hmac_secret);
      goto done;
    }
  }
  struct dcmf_auth_settings as = {
      .client_cert = mtls,
      .subjects = subjects,
      .n_subjects = c->n_control_client_subjects,
      .keys = keys,
      .n_keys = n_keys,
      .hmac_secret = secret,
      .hmac_secret_len = secret_len,
      .audience = c->oauth2_audience,
      .issuer = c->oauth2_issuer,
      .scope_agw = c->oauth2_scope_agw,
      .leeway_s = c->oauth2_leeway_s,
  };
  int arv = dcmf_auth_new(auth, &as, err, errlen);
  rv = arv == 0 ? 0 : arv == DCMF_ERR_INVALID ? 2 : 1;
  if (rv == 0 && mtls) {
    rv = dcmf_h2server_tls_client_ca(control_tls, c->control_client_ca, err,
                                     errlen) == 0
             ? 0
             : 2;
  }
done:
  for (size_t i = 0; i < n_keys; i++) {
    free((void *)keys[i].pem);
  }
  if (secret != NULL) {
    OPENSSL_cleanse(secret, secret_len);
    free(secret);
  }
  return rv;
}

static int is_loopback(const char *host) {
  struct in_addr a4;
  if (inet_pton(AF_INET, host, &a4) == 1) {
    return (ntohl(a4.s_addr) >> 24) == 127;
  }
  return strcmp(host, "::1") == 0;
}

void dcmf_authcfg_warn(const struct dcmf_config *c,
                       const struct dcmf_auth *auth, int tls,
                       const struct dcmf_log *log) {
  if (is_loopback(c->control_host)) {
    return;
  }
  if (auth == NULL) {
    DCMF_LOGW(log, "auth",
              "control API on %s with no client authentication: anyone who "
              "reaches it can drive this MF (set control-client-ca and/or "
              "oauth2-key, docs/security.md)",
              c->control_host);
  } else if (!tls) {
    DCMF_LOGW(log, "auth",
              "control API on %s without TLS: bearer tokens cross the "
              "network in the clear (set control-cert)",
              c->control_host);
  }
}
