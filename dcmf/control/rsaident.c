#include "rsaident.h"

#include <stdio.h>
#include <string.h>

static void generate(void *arg) {
  struct dcmf_rsaident *id = arg;
  id->rv = dcmf_cert_generate_kind(&id->cert, DCMF_CERT_RSA, id->err,
                                   sizeof(id->err));
}

int dcmf_rsaident_start(struct dcmf_rsaident *id, const char *cert_path,
                        const char *key_path, const struct dcmf_log *log,
                        char *err, size_t errlen) {
  memset(id, 0, sizeof(*id));
  id->log = log;
  if (cert_path[0] != '\0') {
    if (dcmf_cert_load(&id->cert, cert_path, key_path, err, errlen) != 0) {
      return 2;
    }
    if (!dcmf_cert_is_rsa(&id->cert)) {
      snprintf(err, errlen,
               "%s: not an RSA key (T.38 over DTLS needs the RFC 7345 RSA "
               "suites)",
               key_path);
      dcmf_cert_free(&id->cert);
      return 2;
    }
    return 0;
  }
  if (uv_thread_create(&id->thread, generate, id) != 0) {
    snprintf(err, errlen, "cannot start a thread");
    return 1;
  }
  id->generating = 1;
  return 0;
}

const struct dcmf_cert *dcmf_rsaident_await(struct dcmf_rsaident *id) {
  if (id->generating) {
    uv_thread_join(&id->thread);
    id->generating = 0;
    if (id->rv != 0) {
      DCMF_LOGE(id->log, "main", "no RSA identity for T.38: %s", id->err);
      dcmf_cert_free(&id->cert);
    }
  }
  return id->cert.x509 != NULL ? &id->cert : NULL;
}

void dcmf_rsaident_free(struct dcmf_rsaident *id) {
  (void)dcmf_rsaident_await(id); /* a setup that failed early did not wait */
  dcmf_cert_free(&id->cert);
}
