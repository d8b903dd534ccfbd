#include "context.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fingerprint.h"
#include "hashmap.h"
#include "jsonpatch.h"
#include "mediactx.h"

struct dcmf_registry {
  struct dcmf_registry_settings settings;
  char *advertise_addr;
  char *local_fingerprint;
  struct dcmf_resources res;
  struct dcmf_hashmap by_id; /* contexts by id (grows with them) */
  struct dcmf_context *first, *last;
  size_t count;
  uint64_t generation; /* the last version handed to a context */
};

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

static void notify(struct dcmf_registry *reg, const struct dcmf_context *ctx,
                   const struct dcmf_media *m, json_t *media,
                   enum dcmf_media_change change) {
  if (reg->res.media_changed != NULL) {
    reg->res.media_changed(reg->res.user, ctx, m, media, change);
  }
}

static void media_free_strings(struct dcmf_media *m) {
  free(m->termination_id);
  free(m->media_id);
  m->termination_id = m->media_id = NULL;
}

static void mdc2_release_all(struct dcmf_registry *reg, struct dcmf_media *m) {
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
    mdc2_release_all(reg, &ms[i]);
    media_free_strings(&ms[i]);
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
static int mdc2_plan(struct dcmf_registry *reg, json_t *media,
                     const struct dcmf_mdc2_port *old, size_t n_old,
                     struct dcmf_mdc2_port **out, size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (!wants_udp_proxy(media)) {
    return 0;
  }
  json_t *streams = json_object_get(json_object_get(media, "dcMedia"),
                                    "streams");
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
    notify(reg, ctx, &ctx->medias[i], NULL, DCMF_MEDIA_REMOVED);
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

static void random_token(struct dcmf_registry *reg, char *out, size_t len,
                         const char *alphabet) {
  uint8_t rnd[64];
  reg->res.random(reg->res.user, rnd, len);
  dcmf_token_from_random(out, len, rnd, alphabet);
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
static const char *mf_setup_for_peer(const char *peer) {
  return peer != NULL && strcmp(peer, "PASSIVE") == 0 ? "ACTIVE" : "PASSIVE";
}

static const char *remote_tls_id(json_t *media) {
  json_t *dc = json_object_get(media, "dcMedia");
  return json_string_value(
      json_object_get(json_object_get(dc, "remoteDcEndpoint"), "tlsId"));
}

static int is_dc(json_t *media) {
  const char *t = json_string_value(json_object_get(media, "mediaResourceType"));
  return t != NULL && strcmp(t, "DC") == 0;
}

/* HTTP-proxy mode, or a DCSF address given for MDC1. */
static int uses_mdc1(json_t *dc) {
  const char *mode = json_string_value(json_object_get(dc, "mediaProxyConfig"));
  return (mode != NULL && strcmp(mode, "HTTP") == 0) ||
         json_object_get(dc, "remoteMdc1Endpoint") != NULL;
}

/* Writes the MF-assigned members of |m| into the MediaInfo |media|. */
static int media_fill_locals(struct dcmf_registry *reg, json_t *media,
                             const struct dcmf_media *m) {
  const char *family =
      strchr(reg->advertise_addr, ':') != NULL ? "ipv6Addr" : "ipv4Addr";
  json_t *dc = json_object_get(media, "dcMedia");
  int rv = 0;
  rv |= json_object_set_new(
      media, "localMbEndpoint",
      json_pack("{s:{s:s}, s:s, s:i}", "ip", family, reg->advertise_addr,
                "transport", "UDP", "portNumber", (int)m->port));
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
      json_t *ep = json_pack("{s:{s:s}, s:s, s:i}", "ip", family,
                             reg->advertise_addr, "transport", "UDP",
                             "portNumber", (int)m->mdc2[i].port);
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
static int media_assign(struct dcmf_registry *reg, struct dcmf_media *m,
                        const char *term_id, json_t *media) {
  memset(m, 0, sizeof(*m));
  m->termination_id = strdup(term_id);
  m->media_id = strdup(json_string_value(json_object_get(media, "mediaId")));
  if (m->termination_id == NULL || m->media_id == NULL) {
    media_free_strings(m);
    return DCMF_ERR_NOMEM;
  }
  int rv = reg->res.port_alloc(reg->res.user, &m->port);
  if (rv != 0) {
    media_free_strings(m);
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
  const char *rtls = remote_tls_id(media);
  snprintf(m->remote_tls_id, sizeof(m->remote_tls_id), "%s", rtls ? rtls : "");
  json_t *dc = json_object_get(media, "dcMedia");
  m->local_setup =
      mf_setup_for_peer(json_string_value(json_object_get(dc, "securitySetup")));
  return 0;
}

static int status_for(int err, struct dcmf_problem *p) {
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
static size_t count_dc(json_t *doc) {
  size_t n = 0, i, j;
  json_t *t, *m;
  json_array_foreach(json_object_get(doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      n += (size_t)is_dc(m);
    }
  }
  return n;
}

/* Tells the owner about every DC media of |ctx|: those whose
 * fresh[k] is set (or all, when |fresh| is NULL) as added, the others as
 * updated. */
static void notify_all(struct dcmf_registry *reg, struct dcmf_context *ctx,
                       const unsigned char *fresh, int patching) {
  size_t i, j, k = 0;
  json_t *t, *m;
  json_array_foreach(json_object_get(ctx->doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      if (!is_dc(m)) {
        continue;
      }
      int added = !patching || (fresh != NULL && fresh[k]);
      notify(reg, ctx, &ctx->medias[k], m,
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
    return status_for(DCMF_ERR_NOMEM, p);
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
  size_t n_dc = count_dc(doc);
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
      if (!is_dc(m)) {
        continue;
      }
      rv = media_assign(reg, &ms[n], tid, m);
      if (rv != 0) {
        goto fail;
      }
      n++;
      rv = mdc2_plan(reg, m, NULL, 0, &ms[n - 1].mdc2, &ms[n - 1].n_mdc2);
      if (rv != 0) {
        goto fail;
      }
      rv = media_fill_locals(reg, m, &ms[n - 1]);
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
  notify_all(reg, ctx, NULL, 0);
  *out = ctx;
  return 0;
fail:
  medias_release(reg, ms, n);
  json_decref(doc);
  free(ctx);
  return status_for(rv, p);
}

static struct dcmf_media *media_find(struct dcmf_context *ctx,
                                     const char *term_id,
                                     const char *media_id) {
  for (size_t i = 0; i < ctx->n_medias; i++) {
    if (strcmp(ctx->medias[i].termination_id, term_id) == 0 &&
        strcmp(ctx->medias[i].media_id, media_id) == 0) {
      return &ctx->medias[i];
    }
  }
  return NULL;
}

/* MF-set members a PATCH may omit (they are put back) but not change. */
static void check_read_only(struct dcmf_problem *p, const char *base,
                            json_t *old_parent, json_t *new_parent,
                            const char *name, int *errors) {
  json_t *now = json_object_get(new_parent, name);
  if (now != NULL && !json_equal(now, json_object_get(old_parent, name))) {
    char param[256]; /* room for a 192-byte base and the name */
    snprintf(param, sizeof(param), "%s/%s", base, name);
    dcmf_problem_param(p, param, "is set by the MF and cannot be changed");
    (*errors)++;
  }
}

/* Finds the MediaInfo for (term_id, media_id) in |doc|. */
static json_t *doc_media(json_t *doc, const char *term_id,
                         const char *media_id) {
  size_t i, j;
  json_t *t, *m;
  json_array_foreach(json_object_get(doc, "terminations"), i, t) {
    const char *tid = json_string_value(json_object_get(t, "terminationId"));
    if (tid == NULL || strcmp(tid, term_id) != 0) {
      continue;
    }
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      const char *mid = json_string_value(json_object_get(m, "mediaId"));
      if (mid != NULL && strcmp(mid, media_id) == 0) {
        return m;
      }
    }
  }
  return NULL;
}

/* Carries a kept media over into the patched document, applying what the
 * patch changed in the remote values. */
static int media_update(struct dcmf_registry *reg, struct dcmf_media *m,
                        json_t *media) {
  const char *rtls = remote_tls_id(media);
  if (rtls != NULL && m->remote_tls_id[0] != '\0' &&
      strcmp(rtls, m->remote_tls_id) != 0) {
    /* RFC 8842: a new remote tls-id means a new DTLS association, and our
     * side of the new association gets a new identifier too. */
    random_token(reg, m->tls_id, sizeof(m->tls_id) - 1, hexdigits);
  }
  snprintf(m->remote_tls_id, sizeof(m->remote_tls_id), "%s", rtls ? rtls : "");
  json_t *dc = json_object_get(media, "dcMedia");
  const char *setup = json_string_value(json_object_get(dc, "securitySetup"));
  if (setup != NULL && strcmp(setup, m->local_setup) != 0) {
    m->local_setup = mf_setup_for_peer(setup);
  }
  return media_fill_locals(reg, media, m);
}

static int patch_status(int rv, const struct dcmf_jsonpatch_error *perr,
                        struct dcmf_problem *p) {
  if (rv == DCMF_ERR_NOMEM) {
    return dcmf_problem_set(p, 500, "SYSTEM_FAILURE", "out of memory");
  }
  if (perr->param[0] != '\0') {
    dcmf_problem_param(p, perr->param, "%s", perr->reason);
  }
  if (rv == DCMF_ERR_MALFORMED) {
    return dcmf_problem_set(p, 400, "INVALID_MSG_FORMAT",
                            "the JSON Patch document is malformed: %s",
                            perr->reason);
  }
  return dcmf_problem_set(p, 409, NULL,
                          "the patch cannot be applied to this context: %s",
                          perr->reason);
}

/* A patch being applied: the patched document and the DC media it will
 * hold, in document order. */
struct patch_plan {
  json_t *doc;
  struct dcmf_media *ms; /* the new medias array */
  size_t n;
  unsigned char *kept;  /* kept[i]: old media i survives */
  unsigned char *fresh; /* fresh[k]: ms[k] is new, its port this patch's */
};

/* Applies |patch| to a copy of the context's document, normalises and
 * validates it. Returns 0 with plan->doc set, or an HTTP status. */
static int patch_document(struct dcmf_context *ctx, json_t *patch,
                          struct patch_plan *plan, struct dcmf_problem *p) {
  struct dcmf_jsonpatch_error perr;
  memset(&perr, 0, sizeof(perr));
  int rv = dcmf_jsonpatch_apply(ctx->doc, patch, &plan->doc, &perr);
  if (rv != 0) {
    return patch_status(rv, &perr, p);
  }
  if (dcmf_mediactx_normalise(plan->doc) != 0) {
    return status_for(DCMF_ERR_NOMEM, p);
  }
  if (dcmf_mediactx_validate(plan->doc, p) != 0) {
    return dcmf_problem_set(p, 400, "MANDATORY_IE_INCORRECT",
                            "the patched MediaContext does not match the "
                            "schema");
  }
  return 0;
}

/* Records in |p| each MF-owned member of the kept media |m| (at
 * /terminations/i/medias/j) that the patch changed. */
static void check_media_owned(struct dcmf_problem *p, json_t *was, json_t *m,
                              size_t i, size_t j, int *errors) {
  char base[192];
  snprintf(base, sizeof(base), "/terminations/%zu/medias/%zu", i, j);
  check_read_only(p, base, was, m, "localMbEndpoint", errors);
  check_read_only(p, base, was, m, "localIceInfo", errors);
  strncat(base, "/dcMedia", sizeof(base) - strlen(base) - 1);
  static const char *const dc_owned[] = {
      "localDcEndpoint", "localMdc1Endpoint", "localMdc2Endpoint",
      "localMdc2Endpoints"};
  for (size_t k = 0; k < sizeof(dc_owned) / sizeof(dc_owned[0]); k++) {
    check_read_only(p, base, json_object_get(was, "dcMedia"),
                    json_object_get(m, "dcMedia"), dc_owned[k], errors);
  }
}

/* Matches the DC media of the patched document with the context's: a
 * new one gets a port and MF values, a kept one carries its own over
 * (its MDC2 ports are planned later). A change to an MF-owned member
 * is recorded in |p| and counted in |errors|. Returns 0 or an error. */
static int plan_medias(struct dcmf_registry *reg, struct dcmf_context *ctx,
                       struct patch_plan *plan, struct dcmf_problem *p,
                       int *errors) {
  size_t i, j;
  json_t *t, *m;
  json_array_foreach(json_object_get(plan->doc, "terminations"), i, t) {
    const char *tid = json_string_value(json_object_get(t, "terminationId"));
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      if (!is_dc(m)) {
        continue;
      }
      const char *mid = json_string_value(json_object_get(m, "mediaId"));
      struct dcmf_media *old = media_find(ctx, tid, mid);
      struct dcmf_media *nm = &plan->ms[plan->n];
      if (old == NULL) {
        int rv = media_assign(reg, nm, tid, m);
        if (rv != 0) {
          return rv;
        }
        plan->fresh[plan->n++] = 1;
        continue;
      }
      check_media_owned(p, doc_media(ctx->doc, tid, mid), m, i, j, errors);
      *nm = *old;
      nm->mdc2 = NULL; /* planned by plan_mdc2 */
      nm->n_mdc2 = 0;
      nm->termination_id = strdup(old->termination_id);
      nm->media_id = strdup(old->media_id);
      plan->kept[old - ctx->medias] = 1;
      plan->n++;
      if (nm->termination_id == NULL || nm->media_id == NULL) {
        return DCMF_ERR_NOMEM;
      }
    }
  }
  return 0;
}

/* MDC2 ports of UDP-proxy mode: streams keep theirs, new ones get one;
 * a shortage fails the whole patch. */
static int plan_mdc2(struct dcmf_registry *reg, struct dcmf_context *ctx,
                     struct patch_plan *plan) {
  size_t i, j, k = 0;
  json_t *t, *m;
  json_array_foreach(json_object_get(plan->doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      if (!is_dc(m)) {
        continue;
      }
      struct dcmf_media *nm = &plan->ms[k++];
      struct dcmf_media *old =
          media_find(ctx, nm->termination_id, nm->media_id);
      int rv = mdc2_plan(reg, m, old ? old->mdc2 : NULL, old ? old->n_mdc2 : 0,
                         &nm->mdc2, &nm->n_mdc2);
      if (rv != 0) {
        return rv;
      }
    }
  }
  return 0;
}

/* Writes the MF's values into the patched document. Only memory can
 * fail here. Returns 0 or DCMF_ERR_NOMEM. */
static int fill_document(struct dcmf_registry *reg, struct dcmf_context *ctx,
                         struct patch_plan *plan) {
  size_t i, j, k = 0;
  json_t *t, *m;
  json_array_foreach(json_object_get(plan->doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      if (is_dc(m) && media_update(reg, &plan->ms[k++], m) != 0) {
        return DCMF_ERR_NOMEM;
      }
    }
  }
  json_t *events = json_object_get(ctx->doc, "events");
  if (json_object_set_new(plan->doc, "contextId", json_string(ctx->id)) != 0 ||
      (events != NULL && json_object_set(plan->doc, "events", events) != 0)) {
    return DCMF_ERR_NOMEM;
  }
  return 0;
}

/* A kept media gives back the MDC2 ports of streams that went away. */
static void release_dropped_mdc2(struct dcmf_registry *reg,
                                 const struct dcmf_media *om,
                                 const struct patch_plan *plan) {
  const struct dcmf_media *nm = NULL;
  for (size_t q = 0; q < plan->n; q++) {
    if (strcmp(plan->ms[q].termination_id, om->termination_id) == 0 &&
        strcmp(plan->ms[q].media_id, om->media_id) == 0) {
      nm = &plan->ms[q];
    }
  }
  for (size_t a = 0; a < om->n_mdc2; a++) {
    int still = 0;
    for (size_t b = 0; nm != NULL && b < nm->n_mdc2; b++) {
      still |= nm->mdc2[b].port == om->mdc2[a].port;
    }
    if (!still) {
      reg->res.port_release(reg->res.user, om->mdc2[a].port);
    }
  }
}

/* Puts the plan in place: media gone are removed (the owner is told)
 * and release their ports, the context takes the new medias and
 * document. Cannot fail. */
static void commit_patch(struct dcmf_registry *reg, struct dcmf_context *ctx,
                         struct patch_plan *plan) {
  for (size_t k = 0; k < ctx->n_medias; k++) {
    struct dcmf_media *om = &ctx->medias[k];
    if (!plan->kept[k]) {
      notify(reg, ctx, om, NULL, DCMF_MEDIA_REMOVED);
      reg->res.port_release(reg->res.user, om->port);
      mdc2_release_all(reg, om);
    } else {
      release_dropped_mdc2(reg, om, plan);
      free(om->mdc2);
    }
    media_free_strings(om);
  }
  for (size_t q = 0; q < plan->n; q++) {
    for (size_t b = 0; b < plan->ms[q].n_mdc2; b++) {
      plan->ms[q].mdc2[b].fresh = 0;
    }
  }
  free(ctx->medias);
  ctx->medias = plan->ms;
  ctx->n_medias = plan->n;
  json_decref(ctx->doc);
  ctx->doc = plan->doc;
  ctx->version = ++reg->generation;
}

/* Undoes a plan that failed: only the ports this patch allocated go
 * back; the kept ones stay with the context. */
static void abort_patch(struct dcmf_registry *reg, struct patch_plan *plan) {
  for (size_t k = 0; k < plan->n; k++) {
    struct dcmf_media *nm = &plan->ms[k];
    if (plan->fresh[k]) {
      reg->res.port_release(reg->res.user, nm->port);
    }
    for (size_t b = 0; b < nm->n_mdc2; b++) {
      if (nm->mdc2[b].fresh) {
        reg->res.port_release(reg->res.user, nm->mdc2[b].port);
      }
    }
    free(nm->mdc2);
    media_free_strings(nm);
  }
}

int dcmf_registry_patch(struct dcmf_registry *reg, struct dcmf_context *ctx,
                        json_t *patch, struct dcmf_problem *p) {
  struct patch_plan plan = {0};
  int status = patch_document(ctx, patch, &plan, p);
  if (status != 0) {
    json_decref(plan.doc);
    return status;
  }
  int errors = 0;
  check_read_only(p, "", ctx->doc, plan.doc, "contextId", &errors);
  check_read_only(p, "", ctx->doc, plan.doc, "events", &errors);
  size_t n_dc = count_dc(plan.doc);
  plan.ms = calloc(n_dc ? n_dc : 1, sizeof(*plan.ms));
  plan.kept = calloc(ctx->n_medias ? ctx->n_medias : 1, 1);
  plan.fresh = calloc(n_dc ? n_dc : 1, 1);
  int rv = DCMF_ERR_NOMEM;
  if (plan.ms == NULL || plan.kept == NULL || plan.fresh == NULL) {
    goto fail;
  }
  rv = plan_medias(reg, ctx, &plan, p, &errors);
  if (rv == 0 && errors > 0) {
    rv = DCMF_ERR_INVALID;
  }
  if (rv != 0 || (rv = plan_mdc2(reg, ctx, &plan)) != 0 ||
      (rv = fill_document(reg, ctx, &plan)) != 0) {
    goto fail;
  }
  commit_patch(reg, ctx, &plan);
  notify_all(reg, ctx, plan.fresh, 1);
  free(plan.kept);
  free(plan.fresh);
  return 0;
fail:
  if (plan.ms != NULL && plan.fresh != NULL) {
    abort_patch(reg, &plan);
  }
  free(plan.ms);
  free(plan.kept);
  free(plan.fresh);
  json_decref(plan.doc);
  if (rv == DCMF_ERR_INVALID) {
    /* TS 29.500 5.2.7.2: a change the server does not allow is 403
     * MODIFICATION_NOT_ALLOWED; invalidParams names each member. */
    return dcmf_problem_set(p, 403, "MODIFICATION_NOT_ALLOWED",
                            "the patch changes %s, which the MF owns",
                            p->invalid[0].param);
  }
  return status_for(rv, p);
}
