/*
 * Fuzz target for the AGW shim's control API bodies: the input is split
 * at the first NUL byte into a POST body and, if present, a JSON Patch
 * body. Both go through /agw/v1/contexts exactly as dcmfd hands them
 * over (validation, JSON Patch, read-only checks, rendering) against
 * in-memory relays and e2ae media (the TCP path's members included);
 * then the context is read back and deleted, and no relay, media or port
 * may be left.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agwapi.h"
#include "errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fake {
  int relays;
  int medias;
  uint16_t next_port;
};

static int fake_new(void *user, const char *context_id,
                    const struct dcmf_relay_config *cfg,
                    uint16_t ports[DCMF_RELAY_SIDES], void **relay) {
  struct fake *f = user;
  if (context_id == NULL || context_id[0] == '\0' ||
      dcmf_relay_config_check(cfg) != 0) {
    abort(); /* the API must validate before creating */
  }
  struct dcmf_relay_config *copy = malloc(sizeof(*copy));
  if (copy == NULL) {
    return DCMF_ERR_NOMEM;
  }
  *copy = *cfg;
  ports[0] = f->next_port++;
  ports[1] = f->next_port++;
  f->relays++;
  *relay = copy;
  return 0;
}

static int fake_update(void *user, void *relay,
                       const struct dcmf_relay_config *cfg) {
  (void)user;
  if (dcmf_relay_config_check(cfg) != 0) {
    abort();
  }
  *(struct dcmf_relay_config *)relay = *cfg;
  return 0;
}

static void fake_del(void *user, void *relay) {
  struct fake *f = user;
  f->relays--;
  free(relay);
}

static void fake_read(void *user, void *relay, struct dcmf_relay_counters *c,
                      struct sockaddr_storage *peer, int *latched) {
  (void)user;
  const struct dcmf_relay_config *cfg = relay;
  memset(c, 0, sizeof(*c));
  c->packets[0] = 1;
  *latched = cfg->has_access_remote;
  if (*latched) {
    *peer = cfg->access_remote;
  }
}

/* An e2ae media: only what the API handed over is checked. */
static int fake_e2ae_new(void *user, const char *context_id,
                         const struct dcmf_agwiq *iq,
                         const struct dcmf_relay_config *cfg,
                         struct dcmf_agwapi_e2ae_local *local, void **media) {
  struct fake *f = user;
  if (context_id == NULL || context_id[0] == '\0' || !iq->e2ae ||
      dcmf_relay_config_check(cfg) != 0) {
    abort(); /* the API must validate before creating */
  }
  if (iq->tcp &&
      (iq->tcp_timeout_ms < 100 || iq->tcp_timeout_ms > 600000 ||
       iq->tcp_setup[0] == DCMF_AGWIQ_TCP_MERGE ||
       (iq->tcp_handling != DCMF_AGWIQ_TCP_STATE_AWARE_CHANGE &&
        iq->tcp_setup[0] == iq->tcp_setup[1]))) {
    abort(); /* the TCP rules of agwiq_tcp.c were not applied */
  }
  memset(local, 0, sizeof(*local));
  local->access_port = f->next_port++;
  local->rtp_port = f->next_port++;
  local->rtcp_port = iq->core_rtcp_mux ? 0 : f->next_port++;
  snprintf(local->ufrag, sizeof(local->ufrag), "ufra");
  snprintf(local->pwd, sizeof(local->pwd), "aaaaaaaaaaaaaaaaaaaaaa");
  snprintf(local->fingerprint, sizeof(local->fingerprint), "%s 00",
           dcmf_hash_name(iq->local_fp_hash));
  f->medias++;
  *media = f; /* any non-NULL handle */
  return 0;
}

static int fake_e2ae_update(void *user, void *media,
                            const struct dcmf_agwiq *iq,
                            const struct dcmf_relay_config *cfg,
                            const struct dcmf_agwiq_change *ch,
                            struct dcmf_agwapi_e2ae_local *local) {
  (void)user;
  (void)media;
  (void)ch;
  (void)local;
  if (!iq->e2ae || dcmf_relay_config_check(cfg) != 0) {
    abort();
  }
  return 0;
}

static void fake_e2ae_del(void *user, void *media) {
  (void)media;
  ((struct fake *)user)->medias--;
}

static int fake_e2ae_view(void *user, void *media, json_t *view) {
  (void)user;
  (void)media;
  return json_object_set_new(view, "events", json_array());
}

static void fake_random(void *user, uint8_t *buf, size_t len) {
  struct fake *f = user;
  memset(buf, f->next_port & 0xff, len);
  buf[0] = (uint8_t)(f->next_port >> 8);
}

static int request(struct dcmf_agwapi *api, const char *method,
                   const char *path, const char *type, const uint8_t *body,
                   size_t len) {
  struct dcmf_api_request req = {.method = method,
                                 .path = path,
                                 .scheme = "http",
                                 .authority = "127.0.0.1:8090",
                                 .content_type = type,
                                 .body = body,
                                 .body_len = len};
  struct dcmf_api_response resp;
  memset(&resp, 0, sizeof(resp));
  dcmf_agwapi_handle(api, &req, &resp);
  /* Every answer with a body is JSON (a resource or a problem). */
  if (resp.body.len > 0) {
    json_t *doc = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    if (doc == NULL) {
      abort();
    }
    json_decref(doc);
  }
  dcmf_api_response_free(&resp);
  return resp.status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fake f = {.next_port = 40000};
  struct dcmf_agwapi_settings s = {.advertise_addr = "192.0.2.1",
                                   .allow_v4 = 1,
                                   .allow_v6 = 1};
  struct dcmf_agwapi_ops ops = {.relay_new = fake_new,
                                .relay_update = fake_update,
                                .relay_del = fake_del,
                                .relay_read = fake_read,
                                .e2ae_new = fake_e2ae_new,
                                .e2ae_update = fake_e2ae_update,
                                .e2ae_del = fake_e2ae_del,
                                .e2ae_view = fake_e2ae_view,
                                .random = fake_random,
                                .user = &f};
  struct dcmf_agwapi *api;
  if (dcmf_agwapi_new(&api, &s, &ops) != 0) {
    abort();
  }
  const uint8_t *nul = memchr(data, 0, size);
  size_t create_len = nul ? (size_t)(nul - data) : size;
  int status = request(api, "POST", "/agw/v1/contexts", "application/json",
                       data, create_len);
  if (status == 201) {
    /* The one context: find its id through the list. */
    struct dcmf_api_request req = {.method = "GET",
                                   .path = "/agw/v1/contexts"};
    struct dcmf_api_response resp;
    memset(&resp, 0, sizeof(resp));
    dcmf_agwapi_handle(api, &req, &resp);
    json_t *list = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    dcmf_api_response_free(&resp);
    const char *id = json_string_value(
        json_object_get(json_array_get(list, 0), "contextId"));
    if (id == NULL) {
      abort();
    }
    char path[128];
    snprintf(path, sizeof(path), "/agw/v1/contexts/%s", id);
    json_decref(list);
    if (nul != NULL) {
      int ps = request(api, "PATCH", path, "application/json-patch+json",
                       nul + 1, size - create_len - 1);
      if (ps != 200 && ps != 400 && ps != 403 && ps != 409) {
        abort();
      }
    }
    if (request(api, "GET", path, NULL, NULL, 0) != 200 ||
        request(api, "DELETE", path, NULL, NULL, 0) != 204) {
      abort();
    }
  } else if (status != 400) {
    /* The body path answers 201 (a relay or e2ae media) or 400. */
    abort();
  }
  if (f.relays != 0 || f.medias != 0 || dcmf_agwapi_count(api) != 0) {
    abort(); /* a relay or a media leaked */
  }
  dcmf_agwapi_del(api);
  return 0;
}
