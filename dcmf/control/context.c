#include "context.h"
#include "context_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fingerprint.h"
#include "hashmap.h"
#include "mediactx.h"

/* 64 ice-chars (RFC 8839), so one random byte maps to one without bias. */
static const char ice_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hexdigits[] = "0123456789abcdef";

static uint64_t id_hash(const char *id) {
  return dcmf_hash_bytes(0, id, strlen(id));
}

static int id_equal(const struct dcmf_hashmap_entry *e, const void *id) {
  const struct dcmf_context *c =
      DCMF_HASHMAP_ITEM(e, const struct dcmf_context, hash_entry);
  return strcmp(c->id, id) == 0;
}

int dcmf_registry_new(struct dcmf_registry **out,
                      const struct dcmf_registry_settings *settings,
                      const struct dcmf_resources *res) {
  struct dcmf_registry *reg = calloc(1, sizeof(*reg));
  if (reg == NULL) {
    return DCMF_ERR_NOMEM;
  }
  reg->settings = *settings;
  reg->advertise_addr = strdup(settings->advertise_addr);
  reg->local_fingerprint = strdup(settings->local_fingerprint);
  if (reg->advertise_addr == NULL || reg->local_fingerprint == NULL ||
      dcmf_hashmap_init(&reg->by_id, 64, id_equal) != 0) {
    free(reg->advertise_addr);
    free(reg->local_fingerprint);
    free(reg);
    return DCMF_ERR_NOMEM;
  }
  reg->res = *res;
  *out = reg;
  return 0;
}

void registry_notify(struct dcmf_registry *reg, const struct dcmf_context *ctx,
                     const struct dcmf_media *m, json_t *media,
                     enum dcmf_media_change change) {
  if (reg->res.media_changed != NULL) {
    reg->res.media_changed(reg->res.user, ctx, m, media, change);
  }
}

void registry_media_free_strings(struct dcmf_media *m) {
  free(m->termination_id);
  free(m->media_id);
  m->termination_id = m->media_id = NULL;
}

void registry_mdc2_release_all(struct dcmf_registry *reg,
                               struct dcmf_media *m) {
  for (size_t i = 0; i < m->n_mdc2; i++) {
    reg->res.port_release(reg->res.user, m->mdc2[i].port);
  }
  free(m->mdc2);
  m->mdc2 = NULL;
  m->n_mdc2 = 0;
}

static void medias_release(struct dcmf_registry *reg, struct dcmf_media *ms,
                           size_t n) {
  for (size_t i = 0; i < n; i++) {
    reg->res.port_release(reg->res.user, ms[i].port);
    registry_mdc2_release_all(reg, &ms[i]);
    registry_media_free_strings(&ms[i]);
  }
  free(ms);
}

/* UDP-proxy mode (mediaProxyConfig "UDP" with a remoteMdc2Endpoint) gives
 * every application stream (>= 1000) a local MDC2 port. */
static int wants_udp_proxy(json_t *media) {
  json_t *dc = json_object_get(media, "dcMedia");
  const char *mode = json_string_value(json_object_get(dc, "mediaProxyConfig"));
  return mode != NULL && strcmp(mode, "UDP") == 0 &&
         json_object_get(dc, "remoteMdc2Endpoint") != NULL;
}

/* Works out the MDC2 ports |media| needs: a stream keeps its port from
 * |old|, a new stream gets a fresh one. On failure every fresh port is
 * returned and nothing changes. */
int registry_mdc2_plan(struct dcmf_registry *reg, json_t *media,
                       const struct dcmf_mdc2_port *old, size_t n_old,
                       struct dcmf_mdc2_port **out, size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (!wants_udp_proxy(media)) {
    return 0;
  }
  json_t *streams =
      json_object_get(json_object_get(media, "dcMedia"), "streams");
  struct dcmf_mdc2_port *list =
      calloc(json_object_size(streams) + 1, sizeof(*list));
  if (list == NULL) {
    return DCMF_ERR_NOMEM;
  }
  size_t n = 0;
  const char *key;
  json_t *v;
  json_object_foreach(streams, key, v) {
    unsigned long sid = strtoul(key, NULL, 10);
    if (sid < 1000) {
      continue; /* bootstrap streams are not proxied to MDC2 */
    }
    struct dcmf_mdc2_port *p = &list[n];
    p->sid = (uint16_t)sid;
    for (size_t i = 0; i < n_old; i++) {
      if (old[i].sid == p->sid) {
        p->port = old[i].port;
      }
    }
    if (p->port == 0) {
      int rv = reg->res.port_alloc(reg->res.user, &p->port);
      if (rv != 0) {
        for (size_t i = 0; i < n; i++) {
          if (list[i].fresh) {
            reg->res.port_release(reg->res.user, list[i].port);
          }
        }
        free(list);
        return rv;
      }
      p->fresh = 1;
    }
    n++;
  }
  *out = list;
  *n_out = n;
  return 0;
}

static void context_free(struct dcmf_registry *reg, struct dcmf_context *ctx) {
  medias_release(reg, ctx->medias, ctx->n_medias);
  json_decref(ctx->doc);
  free(ctx);
}

void dcmf_registry_del(struct dcmf_registry *reg) {
  if (reg == NULL) {
    return;
  }
  while (reg->first != NULL) {
    dcmf_registry_delete(reg, reg->first);
  }
  dcmf_hashmap_free(&reg->by_id);
  free(reg->advertise_addr);
  free(reg->local_fingerprint);
  free(reg);
}

struct dcmf_context *dcmf_registry_find(struct dcmf_registry *reg,
                                        const char *id) {
  return DCMF_HASHMAP_ITEM(dcmf_hashmap_find(&reg->by_id, id_hash(id), id),
                           struct dcmf_context, hash_entry);
}

struct dcmf_context *dcmf_registry_first(struct dcmf_registry *reg) {
  return reg->first;
}

int dcmf_registry_add_event(struct dcmf_registry *reg, struct dcmf_context *ctx,
                            json_t *event, size_t keep) {
  json_t *events = json_object_get(ctx->doc, "events");
  if (events == NULL) {
    events = json_array();
    if (events == NULL || json_object_set_new(ctx->doc, "events", events)) {
      json_decref(event);
      return DCMF_ERR_NOMEM;
    }
  }
  if (json_array_append_new(events, event) != 0) {
    return DCMF_ERR_NOMEM;
  }
  while (json_array_size(events) > keep) {
    json_array_remove(events, 0);
  }
  ctx->version = ++reg->generation;
  return 0;
}

size_t dcmf_registry_count(const struct dcmf_registry *reg) {
  return reg->count;
}

void dcmf_registry_delete(struct dcmf_registry *reg, struct dcmf_context *ctx) {
  for (size_t i = 0; i < ctx->n_medias; i++) {
    registry_notify(reg, ctx, &ctx->medias[i], NULL, DCMF_MEDIA_REMOVED);
  }
  dcmf_hashmap_remove(&reg->by_id, &ctx->hash_entry);
  if (ctx->prev) {
    ctx->prev->next = ctx->next;
  } else {
    reg->first = ctx->next;
  }
  if (ctx->next) {
    ctx->next->prev = ctx->prev;
  } else {
    reg->last = ctx->prev;
  }
  reg->count--;
  context_free(reg, ctx);
}

/* A fresh local tls-id for |m| (RFC 8842: a new association). */
void registry_new_tls_id(struct dcmf_registry *reg, struct dcmf_media *m) {
  enum { TLS_ID = sizeof(m->tls_id) - 1 };
  uint8_t rnd[TLS_ID];
  reg->res.random(reg->res.user, rnd, sizeof(rnd));
  dcmf_token_from_random(m->tls_id, TLS_ID, rnd, hexdigits);
}

static void make_uuid(struct dcmf_registry *reg, char out[37]) {
  uint8_t b[16];
  reg->res.random(reg->res.user, b, sizeof(b));
  b[6] = (uint8_t)((b[6] & 0x0F) | 0x40); /* version 4 */
  b[8] = (uint8_t)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
  char *o = out;
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      *o++ = '-';
    }
    *o++ = hexdigits[b[i] >> 4];
    *o++ = hexdigits[b[i] & 0x0F];
  }
  *o = '\0';
}

/* The MF's DTLS role for the SDP toward the UE from the UE's a=setup:
 * we answer actpass/active (or nothing) as passive, passive as active. */
const char *registry_mf_setup_for_peer(const char *peer) {
  return peer != NULL && strcmp(peer, "PASSIVE") == 0 ? "ACTIVE" : "PASSIVE";
}

const char *registry_remote_tls_id(json_t *media) {
  json_t *dc = json_object_get(media, "dcMedia");
  return json_string_value(
      json_object_get(json_object_get(dc, "remoteDcEndpoint"), "tlsId"));
}

int registry_is_dc(json_t *media) {
  const char *t =
      json_string_value(json_object_get(media, "mediaResourceType"));
  return t != NULL && strcmp(t, "DC") == 0;
}

/* HTTP-proxy mode, or a DCSF address given for MDC1. */
static int uses_mdc1(json_t *dc) {
  const char *mode = json_string_value(json_object_get(dc, "mediaProxyConfig"));
  return (mode != NULL && strcmp(mode, "HTTP") == 0) ||
         json_object_get(dc, "remoteMdc1Endpoint") != NULL;
}

/* Writes the MF-assigned members of |m| into the MediaInfo |media|. */
int registry_media_fill_locals(struct dcmf_registry *reg, json_t *media,
                               const struct dcmf_media *m) {
  const char *family =
      strchr(reg->advertise_addr, ':') != NULL ? "ipv6Addr" : "ipv4Addr";
  json_t *dc = json_object_get(media, "dcMedia");
  int rv = 0;
  rv |= json_object_set_new(media, "localMbEndpoint",
                            json_pack("{s:{s:s}, s:s, s:i}", "ip", family,
                                      reg->advertise_addr, "transport", "UDP",
                                      "portNumber", (int)m->port));
  rv |= json_object_set_new(media, "localIceInfo",
                            json_pack("{s:s, s:s, s:b}", "ufrag", m->ufrag,
                                      "pwd", m->pwd, "iceLite", 1));
  rv |= json_object_set_new(
      dc, "localDcEndpoint",
      json_pack("{s:i, s:s, s:s}", "sctpPort", (int)reg->settings.sctp_port,
                "fingerprint", reg->local_fingerprint, "tlsId", m->tls_id));
  rv |= json_object_set_new(dc, "securitySetup", json_string(m->local_setup));
  if (json_object_get(dc, "maxMessageSize") == NULL) {
    rv |= json_object_set_new(dc, "maxMessageSize", json_integer(64));
  }
  /* MDC1 (toward the DCSF) is used by HTTP-proxy mode, where the MF is
   * the HTTP client: it connects from the advertised address and an
   * ephemeral source port the kernel picks per connection, so there is
   * no fixed port to report and portNumber is 0 (docs/api.md). */
  json_object_del(dc, "localMdc1Endpoint");
  if (uses_mdc1(dc)) {
    rv |= json_object_set_new(dc, "localMdc1Endpoint",
                              json_pack("{s:{s:s}, s:s, s:i}", "ip", family,
                                        reg->advertise_addr, "transport", "TCP",
                                        "portNumber", 0));
  }
  json_object_del(dc, "localMdc2Endpoint");
  json_object_del(dc, "localMdc2Endpoints");
  if (m->n_mdc2 > 0) {
    /* TS 29.176 has one localMdc2Endpoint; with one port per stream we
     * report the first there and all of them in localMdc2Endpoints. */
    json_t *map = json_object();
    for (size_t i = 0; i < m->n_mdc2; i++) {
      char key[8];
      snprintf(key, sizeof(key), "%u", m->mdc2[i].sid);
      json_t *ep =
          json_pack("{s:{s:s}, s:s, s:i}", "ip", family, reg->advertise_addr,
                    "transport", "UDP", "portNumber", (int)m->mdc2[i].port);
      if (i == 0) {
        rv |= json_object_set(dc, "localMdc2Endpoint", ep);
      }
      rv |= json_object_set_new(map, key, ep);
    }
    rv |= json_object_set_new(dc, "localMdc2Endpoints", map);
  }
  return rv == 0 ? 0 : DCMF_ERR_NOMEM;
}

/* Gives a media that is new to this context its port and MF values. */
int registry_media_assign(struct dcmf_registry *reg, struct dcmf_media *m,
                          const char *term_id, json_t *media) {
  memset(m, 0, sizeof(*m));
  m->termination_id = strdup(term_id);
  m->media_id = strdup(json_string_value(json_object_get(media, "mediaId")));
  if (m->termination_id == NULL || m->media_id == NULL) {
    registry_media_free_strings(m);
    return DCMF_ERR_NOMEM;
  }
  int rv = reg->res.port_alloc(reg->res.user, &m->port);
  if (rv != 0) {
    registry_media_free_strings(m);
    return rv;
  }
  /* One draw for the three values: each draw from OpenSSL's generator
   * costs a lock and a getpid() (its fork check) besides the bytes. */
  enum {
    UFRAG = sizeof(m->ufrag) - 1,
    PWD = sizeof(m->pwd) - 1,
    TLS_ID = sizeof(m->tls_id) - 1
  };
  uint8_t rnd[UFRAG + PWD + TLS_ID];
  reg->res.random(reg->res.user, rnd, sizeof(rnd));
  dcmf_token_from_random(m->ufrag, UFRAG, rnd, ice_chars);
  dcmf_token_from_random(m->pwd, PWD, rnd + UFRAG, ice_chars);
  dcmf_token_from_random(m->tls_id, TLS_ID, rnd + UFRAG + PWD, hexdigits);
  const char *rtls = registry_remote_tls_id(media);
  snprintf(m->remote_tls_id, sizeof(m->remote_tls_id), "%s", rtls ? rtls : "");
  json_t *dc = json_object_get(media, "dcMedia");
  m->local_setup = registry_mf_setup_for_peer(
      json_string_value(json_object_get(dc, "securitySetup")));
  return 0;
}

int registry_status_for(int err, struct dcmf_problem *p) {
  if (err == DCMF_ERR_EXHAUSTED) {
    return dcmf_problem_set(p, 503, "INSUFFICIENT_RESOURCES",
                            "no free UDP port is left in the media port "
                            "range");
  }
  if (err == DCMF_ERR_NOMEM) {
    return dcmf_problem_set(p, 500, "SYSTEM_FAILURE", "out of memory");
  }
  return dcmf_problem_set(p, 500, "SYSTEM_FAILURE",
                          "a media port could not be bound: %s",
                          dcmf_strerror(err));
}

/* Counts the DC media of a validated document. */
size_t registry_count_dc(json_t *doc) {
  size_t n = 0, i, j;
  json_t *t, *m;
  json_array_foreach(json_object_get(doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      n += (size_t)registry_is_dc(m);
    }
  }
  return n;
}

/* Tells the owner about every DC media of |ctx|: those whose
 * fresh[k] is set (or all, when |fresh| is NULL) as added, the others as
 * updated. */
void registry_notify_all(struct dcmf_registry *reg, struct dcmf_context *ctx,
                         const unsigned char *fresh, int patching) {
  size_t i, j, k = 0;
  json_t *t, *m;
  json_array_foreach(json_object_get(ctx->doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      if (!registry_is_dc(m)) {
        continue;
      }
      int added = !patching || (fresh != NULL && fresh[k]);
      registry_notify(reg, ctx, &ctx->medias[k], m,
                      added ? DCMF_MEDIA_ADDED : DCMF_MEDIA_UPDATED);
      k++;
    }
  }
}

static void context_link(struct dcmf_registry *reg, struct dcmf_context *ctx) {
  dcmf_hashmap_insert(&reg->by_id, &ctx->hash_entry, id_hash(ctx->id));
  ctx->prev = reg->last;
  ctx->next = NULL;
  if (reg->last) {
    reg->last->next = ctx;
  } else {
    reg->first = ctx;
  }
  reg->last = ctx;
  reg->count++;
}

int dcmf_registry_create(struct dcmf_registry *reg, json_t *request,
                         struct dcmf_context **out, struct dcmf_problem *p) {
  json_t *doc = json_deep_copy(request);
  if (doc == NULL || dcmf_mediactx_normalise(doc) != 0) {
    json_decref(doc);
    return registry_status_for(DCMF_ERR_NOMEM, p);
  }
  if (dcmf_mediactx_validate(doc, p) != 0) {
    json_decref(doc);
    return dcmf_problem_set(p, 400, "MANDATORY_IE_INCORRECT",
                            "the MediaContext does not match the schema");
  }
  if (reg->count >= reg->settings.max_contexts) {
    json_decref(doc);
    return dcmf_problem_set(p, 503, "INSUFFICIENT_RESOURCES",
                            "the limit of %u media contexts is reached",
                            reg->settings.max_contexts);
  }
  struct dcmf_context *ctx = calloc(1, sizeof(*ctx));
  size_t n_dc = registry_count_dc(doc);
  struct dcmf_media *ms = calloc(n_dc ? n_dc : 1, sizeof(*ms));
  int rv = DCMF_ERR_NOMEM;
  size_t n = 0;
  if (ctx == NULL || ms == NULL) {
    goto fail;
  }
  do {
    make_uuid(reg, ctx->id);
  } while (dcmf_registry_find(reg, ctx->id) != NULL);
  if (json_object_set_new(doc, "contextId", json_string(ctx->id)) != 0) {
    goto fail;
  }
  size_t i, j;
  json_t *t, *m;
  json_array_foreach(json_object_get(doc, "terminations"), i, t) {
    const char *tid = json_string_value(json_object_get(t, "terminationId"));
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      if (!registry_is_dc(m)) {
        continue;
      }
      rv = registry_media_assign(reg, &ms[n], tid, m);
      if (rv != 0) {
        goto fail;
      }
      n++;
      rv = registry_mdc2_plan(reg, m, NULL, 0, &ms[n - 1].mdc2,
                              &ms[n - 1].n_mdc2);
      if (rv != 0) {
        goto fail;
      }
      rv = registry_media_fill_locals(reg, m, &ms[n - 1]);
      if (rv != 0) {
        goto fail;
      }
    }
  }
  ctx->doc = doc;
  ctx->version = ++reg->generation;
  ctx->medias = ms;
  ctx->n_medias = n;
  context_link(reg, ctx);
  registry_notify_all(reg, ctx, NULL, 0);
  *out = ctx;
  return 0;
fail:
  medias_release(reg, ms, n);
  json_decref(doc);
  free(ctx);
  return registry_status_for(rv, p);
}
