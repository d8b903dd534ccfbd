#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bearer.h"
#include "errors.h"

struct dcmf_auth {
  int client_cert;
  char *subjects[DCMF_AUTH_MAX_SUBJECTS];
  size_t n_subjects;
  struct dcmf_bearer *bearer; /* NULL: no OAuth2 */
};

static const char *const reason_names[DCMF_AUTH_N_REASONS] = {
    [DCMF_AUTH_OK] = "ok",
    [DCMF_AUTH_NO_TOKEN] = "no_token",
    [DCMF_AUTH_INVALID_TOKEN] = "invalid_token",
    [DCMF_AUTH_EXPIRED] = "expired_token",
    [DCMF_AUTH_SCOPE] = "insufficient_scope",
    [DCMF_AUTH_NO_CLIENT_CERT] = "no_client_certificate",
    [DCMF_AUTH_SUBJECT] = "subject_not_allowed",
    [DCMF_AUTH_UNTRUSTED_CLIENT_CERT] = "untrusted_client_certificate",
};

const char *dcmf_auth_reason_name(enum dcmf_auth_reason r) {
  return (unsigned)r < DCMF_AUTH_N_REASONS ? reason_names[r] : "unknown";
}

int dcmf_auth_new(struct dcmf_auth **out, const struct dcmf_auth_settings *s,
                  char *err, size_t errlen) {
  if (s->n_subjects > DCMF_AUTH_MAX_SUBJECTS) {
    return dcmf_invalid(err, errlen,
                        "at most %d control-client-subject entries",
                        DCMF_AUTH_MAX_SUBJECTS);
  }
  if (s->n_subjects > 0 && !s->client_cert) {
    return dcmf_invalid(err, errlen,
                        "control-client-subject needs control-client-ca");
  }
  struct dcmf_auth *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    return DCMF_ERR_NOMEM;
  }
  int rv = 0;
  a->client_cert = s->client_cert;
  for (size_t i = 0; i < s->n_subjects && rv == 0; i++) {
    a->subjects[i] = strdup(s->subjects[i]);
    rv = a->subjects[i] == NULL ? DCMF_ERR_NOMEM : 0;
    a->n_subjects = i + 1;
  }
  if (rv == 0 && (s->n_keys > 0 || s->hmac_secret_len > 0)) {
    rv = dcmf_bearer_new(&a->bearer, s, err, errlen);
  }
  if (rv != 0) {
    if (rv == DCMF_ERR_NOMEM) {
      snprintf(err, errlen, "out of memory");
    }
    dcmf_auth_del(a);
    return rv;
  }
  *out = a;
  return 0;
}

void dcmf_auth_del(struct dcmf_auth *a) {
  if (a == NULL) {
    return;
  }
  for (size_t i = 0; i < a->n_subjects; i++) {
    free(a->subjects[i]);
  }
  dcmf_bearer_del(a->bearer);
  free(a);
}

int dcmf_auth_oauth2(const struct dcmf_auth *a) {
  return a->bearer != NULL;
}

/* A refusal for the transport identity: 403, no Bearer challenge. */
static void deny(struct dcmf_auth_result *r, enum dcmf_auth_reason reason,
                 const char *detail) {
  r->status = 403;
  r->reason = reason;
  snprintf(r->detail, sizeof(r->detail), "%s", detail);
}

static int subject_ok(const struct dcmf_auth *a, const char *subject,
                      const char *cn) {
  if (a->n_subjects == 0) {
    return 1;
  }
  for (size_t i = 0; i < a->n_subjects; i++) {
    const char *want = a->subjects[i];
    const char *have = strchr(want, '=') != NULL ? subject : cn;
    if (have != NULL && strcmp(want, have) == 0) {
      return 1;
    }
  }
  return 0;
}

void dcmf_auth_check(const struct dcmf_auth *a, const char *authorization,
                     enum dcmf_auth_api api, const char *subject,
                     const char *cn, int64_t now, struct dcmf_auth_result *r) {
  memset(r, 0, sizeof(*r));
  if (a->client_cert) {
    if (subject == NULL) {
      deny(r, DCMF_AUTH_NO_CLIENT_CERT,
           "a verified client certificate is required");
      return;
    }
    if (!subject_ok(a, subject, cn)) {
      deny(r, DCMF_AUTH_SUBJECT,
           "the client certificate's subject is not allowed to drive this "
           "MF");
      return;
    }
  }
  if (a->bearer != NULL) {
    dcmf_bearer_check(a->bearer, authorization, api, now, r);
  }
}
