#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "dcmf_build_config.h"
#include "errors.h"
#include "problem.h"

#define CONTEXTS_PATH "/nmf-mrm/v1/contexts"

/* Answers |doc| as JSON, or a 500 problem when it cannot be rendered. */
static void respond_json(struct dcmf_api_response *resp, int status,
                         json_t *doc) {
  if (dcmf_api_respond_json(resp, status, doc) != 0) {
    struct dcmf_problem p = {0};
    dcmf_problem_set(&p, 500, "SYSTEM_FAILURE", "out of memory");
    dcmf_api_respond_problem(resp, &p);
  }
}

/* ---- entity-tags (RFC 9110 8.8.3, 13.1.1) ------------------------------ */

/* Writes the strong entity-tag of |ctx|, quotes included. */
static void format_etag(const struct dcmf_context *ctx, char *out, size_t cap) {
  snprintf(out, cap, "\"%" PRIu64 "\"", ctx->version);
}

/* Answers a context document with its entity-tag. */
static void respond_context(struct dcmf_api_response *resp, int status,
                            const struct dcmf_context *ctx) {
  respond_json(resp, status, ctx->doc);
  if (resp->status == status) {
    format_etag(ctx, resp->etag, sizeof(resp->etag));
  }
}

/* Evaluates If-Match (a "*" or a comma-separated list of entity-tags)
 * against the current tag |etag|, with the strong comparison RFC 9110
 * 13.1.1 requires: a weak tag never matches. Returns 1 on a match; a
 * value that does not parse matches nothing. */
static int if_match_holds(const char *value, const char *etag) {
  const char *s = value;
  size_t etag_len = strlen(etag);
  for (;;) {
    s += strspn(s, " \t,");
    if (*s == '\0') {
      return 0;
    }
    if (*s == '*') {
      return 1; /* the context exists, or we would have answered 404 */
    }
    int weak = strncmp(s, "W/", 2) == 0;
    if (weak) {
      s += 2;
    }
    if (*s != '"') {
      return 0;
    }
    const char *end = strchr(s + 1, '"');
    if (end == NULL) {
      return 0;
    }
    size_t len = (size_t)(end - s) + 1;
    if (!weak && len == etag_len && memcmp(s, etag, len) == 0) {
      return 1;
    }
    s = end + 1;
  }
}

/* Fills |p| with 412 when the request's If-Match does not hold for
 * |ctx|. Returns 1 if the request may go on. */
static int precondition_holds(const struct dcmf_api_request *req,
                              const struct dcmf_context *ctx,
                              struct dcmf_problem *p) {
  if (req->if_match == NULL) {
    return 1;
  }
  char etag[40];
  format_etag(ctx, etag, sizeof(etag));
  if (if_match_holds(req->if_match, etag)) {
    return 1;
  }
  /* TS 29.500 names no application error for 412, so no cause. */
  dcmf_problem_param(p, "header if-match", "the context's entity-tag is now %s",
                     etag);
  dcmf_problem_set(p, 412, NULL,
                   "the context changed: If-Match %.64s does not match %s",
                   req->if_match, etag);
  return 0;
}

static void handle_create(struct dcmf_api *api,
                          const struct dcmf_api_request *req,
                          struct dcmf_api_response *resp,
                          struct dcmf_problem *p) {
  json_t *doc = dcmf_api_read_body(req, "application/json", resp, p);
  if (doc == NULL) {
    return;
  }
  struct dcmf_context *ctx;
  if (dcmf_registry_create(api->registry, doc, &ctx, p) == 0) {
    dcmf_api_set_location(resp, req, CONTEXTS_PATH, ctx->id);
    respond_context(resp, 201, ctx);
    DCMF_LOGI(api->log, "api", "context %s created (%zu DC media)", ctx->id,
              ctx->n_medias);
  }
  json_decref(doc);
}

static void handle_patch(struct dcmf_api *api,
                         const struct dcmf_api_request *req,
                         struct dcmf_context *ctx,
                         struct dcmf_api_response *resp,
                         struct dcmf_problem *p) {
  json_t *patch =
      dcmf_api_read_body(req, "application/json-patch+json", resp, p);
  if (patch == NULL) {
    return;
  }
  if (dcmf_registry_patch(api->registry, ctx, patch, p) == 0) {
    respond_context(resp, 200, ctx);
    DCMF_LOGI(api->log, "api", "context %s updated (%zu DC media)", ctx->id,
              ctx->n_medias);
  }
  json_decref(patch);
}

static void handle_list(struct dcmf_api *api, struct dcmf_api_response *resp) {
  json_t *list = json_array();
  for (struct dcmf_context *c = dcmf_registry_first(api->registry); c;
       c = c->next) {
    json_array_append(list, c->doc);
  }
  respond_json(resp, 200, list);
  json_decref(list);
}

static void handle_metrics(struct dcmf_api *api,
                           struct dcmf_api_response *resp) {
  struct dcmf_gauges g = {0};
  if (api->gauges != NULL) {
    api->gauges(api->gauges_user, &g);
  }
  g.contexts = dcmf_registry_count(api->registry);
  resp->status = 200;
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
  if (dcmf_metrics_render(api->metrics, &g, DCMF_VERSION, &resp->body) != 0) {
    dcmf_buf_free(&resp->body);
    resp->status = 500;
  } else if (api->extra_metrics != NULL) {
    api->extra_metrics(api->mount_user, &resp->body);
  }
}

/* 200 while every worker loop turns; 503 naming those that stalled. */
static void handle_healthz(struct dcmf_api *api, struct dcmf_api_response *resp,
                           struct dcmf_problem *p) {
  struct dcmf_gauges g = {0};
  if (api->gauges != NULL) {
    api->gauges(api->gauges_user, &g);
  }
  char detail[sizeof(p->detail)] = "";
  for (size_t i = 0; i < g.n_loops; i++) {
    const struct dcmf_loop_health *l = &g.loops[i];
    size_t n = strlen(detail);
    if (l->stalled) {
      snprintf(detail + n, sizeof(detail) - n,
               "%sworker %s: loop has not turned for %llu.%llu s",
               n ? "; " : "", l->name, (unsigned long long)(l->age_ms / 1000),
               (unsigned long long)(l->age_ms % 1000 / 100));
    }
  }
  if (detail[0] != '\0') {
    dcmf_problem_set(p, 503, NULL, "%s", detail);
    return;
  }
  json_t *doc = json_pack("{s:s, s:I}", "status", "ok", "contexts",
                          (json_int_t)dcmf_registry_count(api->registry));
  respond_json(resp, 200, doc);
  json_decref(doc);
}

static int method_is(const struct dcmf_api_request *req, const char *m) {
  return strcmp(req->method, m) == 0 ||
         (strcmp(m, "GET") == 0 && strcmp(req->method, "HEAD") == 0);
}

static void route(struct dcmf_api *api, const struct dcmf_api_request *req,
                  struct dcmf_api_response *resp, struct dcmf_problem *p) {
  char path[512];
  if (dcmf_api_request_path(req, path, sizeof(path), p) != 0) {
    return;
  }

  if (api->mount != NULL &&
      strncmp(path, api->mount_prefix, strlen(api->mount_prefix)) == 0) {
    api->mount(api->mount_user, req, resp);
    return;
  }
  if (strcmp(path, "/healthz") == 0) {
    if (!method_is(req, "GET")) {
      resp->allow = "GET, HEAD";
      dcmf_problem_set(p, 405, NULL, "/healthz allows GET and HEAD");
      return;
    }
    handle_healthz(api, resp, p);
    return;
  }
  if (strcmp(path, "/metrics") == 0) {
    if (!method_is(req, "GET")) {
      resp->allow = "GET, HEAD";
      dcmf_problem_set(p, 405, NULL, "/metrics allows GET and HEAD");
      return;
    }
    handle_metrics(api, resp);
    return;
  }
  if (strcmp(path, CONTEXTS_PATH) == 0) {
    if (method_is(req, "GET")) {
      handle_list(api, resp);
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
  if (strncmp(path, prefix, strlen(prefix)) == 0 &&
      strchr(path + strlen(prefix), '/') == NULL &&
      path[strlen(prefix)] != '\0') {
    const char *id = path + strlen(prefix);
    int known = method_is(req, "GET") || strcmp(req->method, "PATCH") == 0 ||
                strcmp(req->method, "DELETE") == 0;
    if (!known) {
      resp->allow = "GET, HEAD, PATCH, DELETE";
      dcmf_problem_set(p, 405, NULL,
                       "a context allows GET, HEAD, PATCH and DELETE");
      return;
    }
    struct dcmf_context *ctx = dcmf_registry_find(api->registry, id);
    if (ctx == NULL) {
      dcmf_problem_set(p, 404, "CONTEXT_NOT_FOUND",
                       "no media context has the id \"%.64s\"", id);
      return;
    }
    if (method_is(req, "GET")) {
      respond_context(resp, 200, ctx);
    } else if (!precondition_holds(req, ctx, p)) {
      return; /* RFC 9110 13.2.1: before the body is looked at */
    } else if (strcmp(req->method, "PATCH") == 0) {
      handle_patch(api, req, ctx, resp, p);
    } else {
      DCMF_LOGI(api->log, "api", "context %s deleted", ctx->id);
      dcmf_registry_delete(api->registry, ctx);
      resp->status = 204;
    }
    return;
  }
  dcmf_problem_set(p, 404, "RESOURCE_URI_STRUCTURE_NOT_FOUND",
                   "no resource is served at this path");
}

/* TS 33.501 section 13: only authorised consumers (the IMS AS and the
 * IMS-ALG) reach the router. Returns 0 to go on, or the refusal status
 * with |p| and the challenge in |resp| set. */
static int authorize(struct dcmf_api *api, const struct dcmf_api_request *req,
                     struct dcmf_api_response *resp, struct dcmf_problem *p) {
  if (api->auth == NULL) {
    return 0;
  }
  char path[512];
  enum dcmf_auth_api which = DCMF_AUTH_API_ANY;
  if (dcmf_api_request_path(req, path, sizeof(path), p) != 0) {
    memset(p, 0, sizeof(*p)); /* routing answers the 414 if allowed */
    path[0] = '\0';
  } else if (strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0) {
    if (!api->auth_metrics) {
      return 0;
    }
  } else if (strncmp(path, "/nmf-mrm/", 9) == 0) {
    which = DCMF_AUTH_API_MRM;
  } else if (api->mount_prefix != NULL &&
             strncmp(path, api->mount_prefix, strlen(api->mount_prefix)) == 0) {
    which = DCMF_AUTH_API_AGW;
  }
  struct dcmf_auth_result r;
  dcmf_auth_check(api->auth, req->authorization, which, req->client_subject,
                  req->client_cn, req->now, &r);
  if (r.status == 0) {
    return 0;
  }
  api->metrics->control_auth_refused[r.reason]++;
  snprintf(resp->www_authenticate, sizeof(resp->www_authenticate), "%s",
           r.www_authenticate);
  /* The detail never holds the token; the subject is the client's own. */
  DCMF_LOGI(api->log, "auth", "refused %s %.100s from %.200s: %s (%s)",
            req->method, path, req->client_subject ? req->client_subject : "-",
            r.detail, dcmf_auth_reason_name(r.reason));
  return dcmf_problem_set(p, r.status, NULL, "%s", r.detail);
}

void dcmf_api_handle(struct dcmf_api *api, const struct dcmf_api_request *req,
                     struct dcmf_api_response *resp) {
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  if (authorize(api, req, resp, &p) == 0) {
    route(api, req, resp, &p);
  }
  if (p.status != 0) {
    dcmf_api_respond_problem(resp, &p);
  }
  if (resp->status == 0) {
    resp->status = 500;
  }
  dcmf_metrics_api(api->metrics, req->method, resp->status);
  if (resp->status >= 400) {
    DCMF_LOGD(api->log, "api", "%s %.200s -> %d", req->method, req->path,
              resp->status);
  }
}

void dcmf_api_reject(struct dcmf_api *api, const char *method, int status,
                     const char *detail, struct dcmf_api_response *resp) {
  struct dcmf_problem p;
  memset(&p, 0, sizeof(p));
  const char *cause = status == 413 ? "PAYLOAD_TOO_LARGE" : NULL;
  dcmf_problem_set(&p, status, cause, "%s", detail);
  dcmf_api_respond_problem(resp, &p);
  dcmf_metrics_api(api->metrics, method ? method : "OTHER", status);
}

void dcmf_api_response_free(struct dcmf_api_response *resp) {
  dcmf_buf_free(&resp->body);
}
