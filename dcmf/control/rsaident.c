#include "rsaident.h"

#include <stdio.h>
#include <string.h>

/* On its own thread: fills |cert|, |rv| and |err| only. */
static void generate(void *arg) {
  struct dcmf_rsaident *id = arg;
  id->rv = dcmf_cert_generate_kind(&id->cert, DCMF_CERT_RSA, id->err,
                                   sizeof(id->err));
  uv_async_send(&id->done);
}

static void join(struct dcmf_rsaident *id) {
  if (id->thread_on) {
    uv_thread_join(&id->thread);
    id->thread_on = 0;
  }
}

static void on_done(uv_async_t *a) {
  struct dcmf_rsaident *id = a->data;
  join(id);
  id->pending = 0;
  if (id->rv != 0) {
    DCMF_LOGE(id->settings.log, "main", "no RSA identity for T.38: %s",
              id->err);
    dcmf_cert_free(&id->cert);
  } else {
    DCMF_LOGI(id->settings.log, "main", "RSA identity for T.38: %s",
              id->cert.fingerprint);
  }
  id->settings.on_ready(id->settings.user, dcmf_rsaident_get(id));
}

static int start_thread(struct dcmf_rsaident *id) {
  if (uv_thread_create(&id->thread, generate, id) != 0) {
    return -1;
  }
  id->thread_on = 1;
  return 0;
}

static void on_delay(uv_timer_t *t) {
  struct dcmf_rsaident *id = t->data;
  if (start_thread(id) != 0) {
    id->rv = -1;
    snprintf(id->err, sizeof(id->err), "cannot start a thread");
    uv_async_send(&id->done);
  }
}

int dcmf_rsaident_start(struct dcmf_rsaident *id,
                        const struct dcmf_rsaident_settings *settings,
                        char *err, size_t errlen) {
  memset(id, 0, sizeof(*id));
  id->settings = *settings;
  if (settings->cert_path[0] != '\0') {
    if (dcmf_cert_load(&id->cert, settings->cert_path, settings->key_path, err,
                       errlen) != 0) {
      return 2;
    }
    if (!dcmf_cert_is_rsa(&id->cert)) {
      snprintf(err, errlen,
               "%s: not an RSA key (T.38 over DTLS needs the RFC 7345 RSA "
               "suites)",
               settings->key_path);
      return 2;
    }
    return 0;
  }
  /* Neither handle keeps the loop alive: a shutdown does not wait for
   * the identity. */
  uv_async_init(settings->loop, &id->done, on_done);
  uv_timer_init(settings->loop, &id->delay);
  id->done.data = id->delay.data = id;
  uv_unref((uv_handle_t *)&id->done);
  uv_unref((uv_handle_t *)&id->delay);
  id->handles = 1;
  id->pending = 1;
  if (settings->delay_ms > 0) {
    uv_timer_start(&id->delay, on_delay, settings->delay_ms, 0);
  } else if (start_thread(id) != 0) {
    id->pending = 0;
    snprintf(err, errlen, "cannot start a thread");
    return 1;
  }
  return 0;
}

const struct dcmf_cert *dcmf_rsaident_get(const struct dcmf_rsaident *id) {
  return id->cert.x509 != NULL && !id->pending ? &id->cert : NULL;
}

int dcmf_rsaident_pending(const struct dcmf_rsaident *id) {
  return id->pending;
}

void dcmf_rsaident_close(struct dcmf_rsaident *id) {
  join(id); /* first: the thread's last act is a send on |done| */
  if (id->handles) {
    uv_close((uv_handle_t *)&id->done, NULL);
    uv_close((uv_handle_t *)&id->delay, NULL);
    id->handles = 0;
  }
  id->pending = 0;
  dcmf_cert_free(&id->cert);
}
