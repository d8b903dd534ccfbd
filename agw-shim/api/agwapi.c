#include "agwapi.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <jansson.h>

#include "agwdoc.h"
#include "agwiq.h"
#include "errors.h"
#include "hashmap.h"
#include "jsonpatch.h"
#include "problem.h"

#define CONTEXTS_PATH "/agw/v1/contexts"
#define ID_LEN 36 /* a UUID in text */
/* Retry-After of a POST refused while the RSA identity is generated:
 * RSA 2048 takes 0.1 s to about 2 s on a loaded host. */
#define NOT_READY_RETRY_S 1

struct ctx {
  char id[ID_LEN + 1];
  json_t *doc; /* the stored document (dcmf_agwdoc_build) */
  struct dcmf_relay_config cfg;
  uint16_t ports[DCMF_RELAY_SIDES];
  void *relay; /* the relay, or the e2ae media when |e2ae| */
  int e2ae;
  struct dcmf_agwiq iq;                /* e2ae: the stored Iq elements */
  struct dcmf_agwapi_e2ae_local local; /* e2ae: what the AGW generated */
  struct dcmf_hashmap_entry entry;     /* in by_id, keyed by |id| */
  struct ctx *prev, *next;
};

struct dcmf_agwapi {
  struct dcmf_agwapi_settings settings;
  struct dcmf_agwapi_ops ops;
  struct dcmf_hashmap by_id; /* struct ctx, by id: one lookup a request */
  struct ctx *head, *tail;   /* the same, in creation order */
  size_t count;
};

/* ---- responses -------------------------------------------------------- */

/* Sends |doc| (reference stolen) as JSON, or a 500 when |doc| is NULL
 * or cannot be rendered (out of memory). */
static void respond_json(struct dcmf_api_response *resp, int status,
                         json_t *doc, struct dcmf_problem *p) {
  if (doc == NULL || dcmf_api_respond_json(resp, status, doc) != 0) {
    dcmf_problem_set(p, 500, "SYSTEM_FAILURE", "out of memory");
  }
  json_decref(doc);
}

/* ---- contexts --------------------------------------------------------- */

/* The members of a termination that agwiq.h owns; an e2ae context's
 * stored document keeps them as the IMS-ALG sent them. */
static const char *const iq_members[] = {
    "transport", "rtcpMux", "remoteRtcpPort", "dtls", "ice", "notifyUri",
    "dataChannel", "t140",
    "tls",       "tcp",     "msrp",           NULL};

/* The stored document of an e2ae context: the relay's members as
 * dcmf_agwdoc_build writes them (access first, core second, "local" with
 * the access port and the core RTP port), then the Iq members of |src|'s
 * terminations (found at iq->index). NULL when out of memory. */
static json_t *e2ae_stored(struct dcmf_agwapi *api, const char *id, json_t *src,
                           const struct dcmf_agwiq *iq,
                           const struct dcmf_relay_config *cfg,
                           const struct dcmf_agwapi_e2ae_local *local) {
  uint16_t ports[DCMF_RELAY_SIDES] = {local->access_port, local->rtp_port};
  json_t *doc = dcmf_agwdoc_build(id, cfg, api->settings.advertise_addr, ports);
  json_t *src_terms = json_object_get(src, "terminations");
  json_t *terms = json_object_get(doc, "terminations");
  for (size_t side = 0; doc != NULL && side < DCMF_RELAY_SIDES; side++) {
    json_t *from = json_array_get(src_terms, iq->index[side]);
    json_t *to = json_array_get(terms, side);
    for (size_t i = 0; iq_members[i] != NULL; i++) {
      json_t *v = json_object_get(from, iq_members[i]);
      if (v != NULL &&
          json_object_set_new(to, iq_members[i], json_deep_copy(v)) != 0) {
        json_decref(doc);
        doc = NULL;
        break;
      }
    }
  }
  return doc;
}

/* GET of an e2ae TCP context: the stored document, the AGW's TLS
 * fingerprint and setup (RFC 4145 a=setup toward the UE, from its TLS
 * role), its TCP setup per leg, and what the relay reported. */
static json_t *tcp_view(struct dcmf_agwapi *api, struct ctx *c) {
  static const char *const setups[] = {"active", "passive", "merge"};
  json_t *doc = json_deep_copy(c->doc);
  json_t *terms = json_object_get(doc, "terminations");
  json_t *tls = json_object_get(json_array_get(terms, 0), "tls");
  int ok = doc != NULL && tls != NULL &&
           json_object_set_new(tls, "localFingerprint",
                               json_string(c->local.fingerprint)) == 0 &&
           json_object_set_new(tls, "localSetup",
                               json_string(setups[c->iq.tcp_setup[0]])) == 0;
  for (int s = 0; ok && s < 2; s++) {
    json_t *t = json_array_get(terms, (size_t)s);
    json_t *tcp = json_object_get(t, "tcp");
    if (tcp == NULL) {
      tcp = json_object();
      ok = json_object_set_new(t, "tcp", tcp) == 0;
    }
    ok = ok && json_object_set_new(tcp, "localSetup",
                                   json_string(setups[c->iq.tcp_setup[s]])) ==
                   0;
    /* Aware MSRP: the MF's own URI on this leg, which the IMS-ALG puts
     * in the a=path it sends that way (as msrp.localPath of the DC path). */
    json_t *msrp = json_object_get(t, "msrp");
    if (ok && c->iq.msrp_aware && msrp == NULL) {
      msrp = json_object();
      ok = json_object_set_new(t, "msrp", msrp) == 0;
    }
    if (ok && c->iq.msrp_aware && json_is_object(msrp)) {
      ok =
          json_object_set_new(msrp, "localPath",
                              json_string(s == 0 ? c->local.msrp_dc_uri
                                                 : c->local.msrp_tcp_uri)) == 0;
    }
  }
  if (!ok || api->ops.e2ae_view(api->ops.user, c->relay, doc) != 0) {
    json_decref(doc);
    return NULL;
  }
  return doc;
}

/* MSRP over a data channel: the MF's own URIs, which the IMS-ALG puts
 * in the rewritten SDPs (a=dcsa path toward the WIC, a=path toward the
 * core). */
static int msrpdc_view(json_t *access, json_t *core,
                       const struct dcmf_agwapi_e2ae_local *local) {
  json_t *dc = json_object_get(access, "dataChannel");
  json_t *msrp = json_object_get(core, "msrp");
  if (!json_is_object(dc) || !json_is_object(msrp)) {
    return DCMF_ERR_NOMEM;
  }
  return json_object_set_new(dc, "localPath",
                             json_string(local->msrp_dc_uri)) != 0 ||
                 json_object_set_new(msrp, "localPath",
                                     json_string(local->msrp_tcp_uri)) != 0
             ? DCMF_ERR_NOMEM
             : 0;
}

/* GET of an e2ae context: the stored document, the members the AGW
 * generated (its fingerprint, DTLS setup and tls-id, its ICE
 * credentials, the core RTCP port) and what the media reported. */
static json_t *e2ae_view(struct dcmf_agwapi *api, struct ctx *c) {
  if (c->iq.tcp) {
    return tcp_view(api, c);
  }
  json_t *doc = json_deep_copy(c->doc);
  json_t *terms = json_object_get(doc, "terminations");
  json_t *access = json_array_get(terms, DCMF_RELAY_ACCESS);
  json_t *core = json_array_get(terms, DCMF_RELAY_CORE);
  json_t *dtls = json_object_get(access, "dtls");
  json_t *ice = json_object_get(access, "ice");
  if (ice == NULL && access != NULL) {
    ice = json_object();
    if (json_object_set_new(access, "ice", ice) != 0) {
      ice = NULL;
    }
  }
  /* RFC 8842 section 5: the answerer's a=setup follows from our role. */
  const char *setup =
      c->iq.role == DCMF_AGWIQ_ROLE_CLIENT ? "active" : "passive";
  if (doc == NULL || dtls == NULL || ice == NULL ||
      json_object_set_new(dtls, "localFingerprint",
                          json_string(c->local.fingerprint)) != 0 ||
      json_object_set_new(dtls, "localSetup", json_string(setup)) != 0 ||
      json_object_set_new(dtls, "localTlsId", json_string(c->local.tls_id)) !=
          0 ||
      json_object_set_new(ice, "localUfrag", json_string(c->local.ufrag)) !=
          0 ||
      json_object_set_new(ice, "localPwd", json_string(c->local.pwd)) != 0 ||
      (c->local.rtcp_port != 0 &&
       json_object_set_new(core, "localRtcpPort",
                           json_integer(c->local.rtcp_port)) != 0) ||
      (c->iq.dc && msrpdc_view(access, core, &c->local) != 0) ||
      api->ops.e2ae_view(api->ops.user, c->relay, doc) != 0) {
    json_decref(doc);
    return NULL;
  }
  return doc;
}

static json_t *ctx_view(struct dcmf_agwapi *api, struct ctx *c) {
  if (c->e2ae) {
    return e2ae_view(api, c);
  }
  struct dcmf_relay_counters counters;
  struct sockaddr_storage peer;
  int latched = 0;
  memset(&counters, 0, sizeof(counters));
  api->ops.relay_read(api->ops.user, c->relay, &counters, &peer, &latched);
  return dcmf_agwdoc_view(c->doc, &counters,
                          latched ? (const struct sockaddr *)&peer : NULL);
}

static uint64_t id_hash(const char *id) {
  return dcmf_hash_bytes(0, id, strlen(id));
}

static int ctx_id_equal(const struct dcmf_hashmap_entry *e, const void *id) {
  const struct ctx *c = DCMF_HASHMAP_ITEM(e, const struct ctx, entry);
  return strcmp(c->id, id) == 0;
}

static struct ctx *ctx_find(struct dcmf_agwapi *api, const char *id) {
  return DCMF_HASHMAP_ITEM(dcmf_hashmap_find(&api->by_id, id_hash(id), id),
                           struct ctx, entry);
}

/* Files |c| by id and at the end of the creation order. */
static void ctx_link(struct dcmf_agwapi *api, struct ctx *c) {
  dcmf_hashmap_insert(&api->by_id, &c->entry, id_hash(c->id));
  c->prev = api->tail;
  c->next = NULL;
  if (api->tail != NULL) {
    api->tail->next = c;
  } else {
    api->head = c;
  }
  api->tail = c;
  api->count++;
}

static void new_id(struct dcmf_agwapi *api, char *out) {
  uint8_t b[16];
  api->ops.random(api->ops.user, b, sizeof(b));
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* RFC 9562 version 4 */
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out[n++] = '-';
    }
    out[n++] = hex[b[i] >> 4];
    out[n++] = hex[b[i] & 15];
  }
  out[n] = '\0';
}

static int resource_problem(int rv, struct dcmf_problem *p) {
  if (rv == DCMF_ERR_EXHAUSTED) {
    return dcmf_problem_set(p, 503, "INSUFFICIENT_RESOURCES",
                            "no relay ports are free");
  }
  if (rv == DCMF_ERR_NOT_READY) {
    return dcmf_problem_set(p, 503, "INSUFFICIENT_RESOURCES",
                            "the RSA identity of T.38 terminations is still "
                            "being generated; retry after %u s",
                            NOT_READY_RETRY_S);
  }
  if (rv == DCMF_ERR_NOMEM) {
    return dcmf_problem_set(p, 500, "SYSTEM_FAILURE", "out of memory");
  }
  return dcmf_problem_set(p, 500, "SYSTEM_FAILURE",
                          "the relay could not be set up (%s)",
                          dcmf_strerror(rv));
}

/*
 * Runs the Iq validator (agwiq.h) on |doc| ahead of the relay's, which
 * only lets the Iq members through: so refusals name the Iq member. With
 * |prev| (a PATCH) the patch rules are checked against the stored
 * context too. Returns 0 with |*e2ae| set for an e2ae context, or
 * DCMF_ERR_INVALID with |p| filled (400).
 */
static int iq_check(json_t *prev, json_t *doc, struct dcmf_agwiq *now,
                    struct dcmf_agwiq_change *ch, struct dcmf_problem *p) {
  struct dcmf_agwiq was;
  memset(ch, 0, sizeof(*ch));
  if (dcmf_agwiq_parse(doc, now, p) != 0) {
    return DCMF_ERR_INVALID;
  }
  if (prev != NULL && dcmf_agwiq_parse(prev, &was, p) == 0 &&
      dcmf_agwiq_patch_check(&was, now, ch, p) != 0) {
    return DCMF_ERR_INVALID;
  }
  return 0;
}

/* Reserves the relay or the e2ae media of |c| (id set) and builds its
 * stored document from the POST body |body|. Returns 0, or an error of
 * relay_new / e2ae_new with nothing held. */
static int ctx_start(struct dcmf_agwapi *api, struct ctx *c, json_t *body,
                     const struct dcmf_agwiq *iq) {
  int rv;
  if (iq->e2ae) {
    c->e2ae = 1;
    c->iq = *iq;
    rv = api->ops.e2ae_new(api->ops.user, c->id, iq, &c->cfg, &c->local,
                           &c->relay);
    if (rv != 0) {
      return rv;
    }
    c->ports[DCMF_RELAY_ACCESS] = c->local.access_port;
    c->ports[DCMF_RELAY_CORE] = c->local.rtp_port;
    c->doc = e2ae_stored(api, c->id, body, iq, &c->cfg, &c->local);
  } else {
    rv = api->ops.relay_new(api->ops.user, c->id, &c->cfg, c->ports, &c->relay);
    if (rv != 0) {
      return rv;
    }
    c->doc = dcmf_agwdoc_build(c->id, &c->cfg, api->settings.advertise_addr,
                               c->ports);
  }
  return 0;
}

/* Ends what ctx_start started. */
static void ctx_stop(struct dcmf_agwapi *api, struct ctx *c) {
  if (c->e2ae) {
    api->ops.e2ae_del(api->ops.user, c->relay);
  } else {
    api->ops.relay_del(api->ops.user, c->relay);
  }
}

static void handle_create(struct dcmf_agwapi *api,
                          const struct dcmf_api_request *req,
                          struct dcmf_api_response *resp,
                          struct dcmf_problem *p) {
  json_t *body = dcmf_api_read_body(req, "application/json", resp, p);
  if (body == NULL) {
    return;
  }
  struct dcmf_agwdoc_limits lim = {.allow_v4 = api->settings.allow_v4,
                                   .allow_v6 = api->settings.allow_v6};
  struct dcmf_relay_config cfg;
  struct dcmf_agwiq iq;
  struct dcmf_agwiq_change ch;
  int rv = iq_check(NULL, body, &iq, &ch, p);
  if (rv == 0) {
    rv = dcmf_agwdoc_parse(body, DCMF_AGWDOC_CREATE, &lim, &cfg, NULL, p);
  }
  if (rv != 0) {
    json_decref(body);
    return;
  }
  if (api->settings.max_contexts != 0 &&
      api->count >= api->settings.max_contexts) {
    json_decref(body);
    dcmf_problem_set(p, 503, "INSUFFICIENT_RESOURCES",
                     "the AGW holds its maximum of %zu contexts",
                     api->settings.max_contexts);
    return;
  }
  struct ctx *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    json_decref(body);
    resource_problem(DCMF_ERR_NOMEM, p);
    return;
  }
  do {
    new_id(api, c->id);
  } while (ctx_find(api, c->id) != NULL);
  c->cfg = cfg;
  rv = ctx_start(api, c, body, &iq);
  json_decref(body);
  if (rv != 0) {
    free(c);
    resource_problem(rv, p);
    if (rv == DCMF_ERR_NOT_READY) {
      resp->retry_after_s = NOT_READY_RETRY_S;
    }
    return;
  }
  json_t *view = c->doc ? ctx_view(api, c) : NULL;
  if (view == NULL) {
    ctx_stop(api, c);
    json_decref(c->doc);
    free(c);
    resource_problem(DCMF_ERR_NOMEM, p);
    return;
  }
  ctx_link(api, c);
  dcmf_api_set_location(resp, req, CONTEXTS_PATH, c->id);
  respond_json(resp, 201, view, p);
  DCMF_LOGI(api->settings.log, "agw",
            "context %s created%s: access port %u, core port %u", c->id,
            c->e2ae ? " (e2ae)" : "", c->ports[DCMF_RELAY_ACCESS],
            c->ports[DCMF_RELAY_CORE]);
}

/* A PATCH may not change what the AGW assigned. */
static int check_read_only(json_t *old, json_t *doc, const size_t terms[2],
                           struct dcmf_problem *p) {
  int bad = 0;
  if (!json_equal(json_object_get(doc, "contextId"),
                  json_object_get(old, "contextId"))) {
    dcmf_problem_param(p, "/contextId", "is read-only");
    bad++;
  }
  json_t *old_terms = json_object_get(old, "terminations");
  json_t *new_terms = json_object_get(doc, "terminations");
  for (size_t s = 0; s < DCMF_RELAY_SIDES; s++) {
    json_t *was = json_object_get(json_array_get(old_terms, s), "local");
    json_t *now =
        json_object_get(json_array_get(new_terms, terms[s]), "local");
    if (!json_equal(was, now)) {
      char param[64];
      snprintf(param, sizeof(param), "/terminations/%zu/local", terms[s]);
      dcmf_problem_param(p, param, "is read-only (assigned by the AGW)");
      bad++;
    }
  }
  if (bad) {
    /* As on Nmf_MRM: TS 29.500 answers a forbidden change with 403. */
    dcmf_problem_set(p, 403, "MODIFICATION_NOT_ALLOWED",
                     "the patch changes members the AGW assigned");
  }
  return bad;
}

static void handle_patch(struct dcmf_agwapi *api,
                         const struct dcmf_api_request *req, struct ctx *c,
                         struct dcmf_api_response *resp,
                         struct dcmf_problem *p) {
  json_t *patch = dcmf_api_read_body(req, "application/json-patch+json", resp, p);
  if (patch == NULL) {
    return;
  }
  struct dcmf_jsonpatch_error perr;
  memset(&perr, 0, sizeof(perr));
  json_t *doc = NULL;
  int rv = dcmf_jsonpatch_apply(c->doc, patch, &doc, &perr);
  json_decref(patch);
  if (rv != 0) {
    if (rv == DCMF_ERR_NOMEM) {
      resource_problem(rv, p);
      return;
    }
    if (perr.param[0] != '\0') {
      dcmf_problem_param(p, perr.param, "%s", perr.reason);
    }
    if (rv == DCMF_ERR_MALFORMED) {
      dcmf_problem_set(p, 400, "INVALID_MSG_FORMAT",
                       "the JSON Patch document is malformed: %s",
                       perr.reason);
    } else {
      dcmf_problem_set(p, 409, NULL,
                       "the patch cannot be applied to this context: %s",
                       perr.reason);
    }
    return;
  }
  struct dcmf_agwdoc_limits lim = {.allow_v4 = api->settings.allow_v4,
                                   .allow_v6 = api->settings.allow_v6};
  struct dcmf_relay_config cfg;
  size_t terms[2];
  struct dcmf_agwiq iq;
  struct dcmf_agwiq_change ch;
  /* The patch rules keep a context what it was: a relay stays a relay
   * (transport is refused), an e2ae context stays e2ae. */
  if (iq_check(c->doc, doc, &iq, &ch, p) != 0 ||
      dcmf_agwdoc_parse(doc, DCMF_AGWDOC_PATCHED, &lim, &cfg, terms, p) != 0 ||
      check_read_only(c->doc, doc, terms, p) != 0) {
    json_decref(doc);
    return;
  }
  if (c->e2ae && !iq.tcp && !iq.dc && c->local.rtcp_port == 0 && !iq.core_rtcp_mux) {
    /* Created with rtcp-mux: no core RTCP socket was bound, so RTCP
     * could only go on by the RTP port, against what the core asked. */
    char param[48];
    snprintf(param, sizeof(param), "/terminations/%zu/rtcpMux", iq.index[1]);
    dcmf_problem_param(p, param, "%s",
                       "cannot be turned off: the context was created with "
                       "rtcp-mux, so no core RTCP port was bound; delete the "
                       "context and create a new one");
    dcmf_problem_set(p, 400, "MANDATORY_IE_INCORRECT",
                     "the AGW context's information elements are not valid "
                     "(1 problem; see invalidParams)");
    json_decref(doc);
    return;
  }
  json_t *stored;
  struct dcmf_agwapi_e2ae_local local = c->local;
  if (c->e2ae) {
    stored = e2ae_stored(api, c->id, doc, &iq, &cfg, &c->local);
  } else {
    stored =
        dcmf_agwdoc_build(c->id, &cfg, api->settings.advertise_addr, c->ports);
  }
  json_decref(doc);
  rv = stored == NULL ? DCMF_ERR_NOMEM : 0;
  if (rv == 0 && c->e2ae) {
    rv = api->ops.e2ae_update(api->ops.user, c->relay, &iq, &cfg, &ch, &local);
  } else if (rv == 0) {
    rv = api->ops.relay_update(api->ops.user, c->relay, &cfg);
  }
  if (rv != 0) {
    json_decref(stored);
    resource_problem(DCMF_ERR_NOMEM, p);
    return;
  }
  json_decref(c->doc);
  c->doc = stored;
  c->cfg = cfg;
  c->iq = iq;
  c->local = local;
  respond_json(resp, 200, ctx_view(api, c), p);
  DCMF_LOGI(api->settings.log, "agw", "context %s updated", c->id);
}

static void ctx_delete(struct dcmf_agwapi *api, struct ctx *c) {
  dcmf_hashmap_remove(&api->by_id, &c->entry);
  if (c->prev != NULL) {
    c->prev->next = c->next;
  } else {
    api->head = c->next;
  }
  if (c->next != NULL) {
    c->next->prev = c->prev;
  } else {
    api->tail = c->prev;
  }
  api->count--;
  ctx_stop(api, c);
  json_decref(c->doc);
  free(c);
}

int dcmf_agwapi_delete(struct dcmf_agwapi *api, const char *id) {
  struct ctx *c = ctx_find(api, id);
  if (c == NULL) {
    return DCMF_ERR_NOT_FOUND;
  }
  DCMF_LOGI(api->settings.log, "agw", "context %s deleted", c->id);
  ctx_delete(api, c);
  return 0;
}

static void handle_list(struct dcmf_agwapi *api,
                        struct dcmf_api_response *resp,
                        struct dcmf_problem *p) {
  json_t *list = json_array();
  for (struct ctx *c = api->head; c != NULL && list != NULL; c = c->next) {
    if (json_array_append_new(list, ctx_view(api, c)) != 0) {
      json_decref(list);
      list = NULL;
    }
  }
  respond_json(resp, 200, list, p);
}

/* ---- routing ---------------------------------------------------------- */

static int is_get(const struct dcmf_api_request *req) {
  return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

static void route(struct dcmf_agwapi *api, const struct dcmf_api_request *req,
                  struct dcmf_api_response *resp, struct dcmf_problem *p) {
  char path[256];
  if (dcmf_api_request_path(req, path, sizeof(path), p) != 0) {
    return;
  }
  if (strcmp(path, CONTEXTS_PATH) == 0) {
    if (is_get(req)) {
      handle_list(api, resp, p);
    } else if (strcmp(req->method, "POST") == 0) {
      handle_create(api, req, resp, p);
    } else {
      resp->allow = "GET, HEAD, POST";
      dcmf_problem_set(p, 405, NULL, "%s allows GET, HEAD and POST",
                       CONTEXTS_PATH);
    }
    return;
  }
  const char *prefix = CONTEXTS_PATH "/";
  size_t n = strlen(prefix);
  if (strncmp(path, prefix, n) != 0 || path[n] == '\0' ||
      strchr(path + n, '/') != NULL) {
    dcmf_problem_set(p, 404, "RESOURCE_URI_STRUCTURE_NOT_FOUND",
                     "no resource is served at this path");
    return;
  }
  const char *id = path + n;
  int patch = strcmp(req->method, "PATCH") == 0;
  int del = strcmp(req->method, "DELETE") == 0;
  if (!is_get(req) && !patch && !del) {
    resp->allow = "GET, HEAD, PATCH, DELETE";
    dcmf_problem_set(p, 405, NULL,
                     "an AGW context allows GET, HEAD, PATCH and DELETE");
    return;
  }
  struct ctx *c = ctx_find(api, id);
  if (c == NULL) {
    dcmf_problem_set(p, 404, "CONTEXT_NOT_FOUND",
                     "no AGW context has the id \"%.64s\"", id);
    return;
  }
  if (patch) {
    handle_patch(api, req, c, resp, p);
  } else if (del) {
    DCMF_LOGI(api->settings.log, "agw", "context %s deleted", c->id);
    ctx_delete(api, c);
    resp->status = 204;
  } else {
    respond_json(resp, 200, ctx_view(api, c), p);
  }
}

void dcmf_agwapi_handle(struct dcmf_agwapi *api,
                        const struct dcmf_api_request *req,
                        struct dcmf_api_response *resp) {
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  route(api, req, resp, &p);
  if (p.status != 0) {
    dcmf_buf_free(&resp->body);
    dcmf_api_respond_problem(resp, &p);
  }
  if (resp->status == 0) {
    resp->status = 500;
  }
}

/* ---- life cycle ------------------------------------------------------- */

int dcmf_agwapi_new(struct dcmf_agwapi **out,
                    const struct dcmf_agwapi_settings *settings,
                    const struct dcmf_agwapi_ops *ops) {
  uint8_t bin[16];
  const char *adv = settings->advertise_addr;
  if (adv == NULL || (inet_pton(AF_INET, adv, bin) != 1 &&
                      inet_pton(AF_INET6, adv, bin) != 1) ||
      (!settings->allow_v4 && !settings->allow_v6)) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_agwapi *api = calloc(1, sizeof(*api));
  if (api == NULL) {
    return DCMF_ERR_NOMEM;
  }
  if (dcmf_hashmap_init(&api->by_id, 64, ctx_id_equal) != 0) {
    free(api);
    return DCMF_ERR_NOMEM;
  }
  api->settings = *settings;
  api->ops = *ops;
  *out = api;
  return 0;
}

void dcmf_agwapi_del(struct dcmf_agwapi *api) {
  if (api == NULL) {
    return;
  }
  while (api->head != NULL) {
    ctx_delete(api, api->head);
  }
  dcmf_hashmap_free(&api->by_id);
  free(api);
}

size_t dcmf_agwapi_count(const struct dcmf_agwapi *api) {
  return api ? api->count : 0;
}
