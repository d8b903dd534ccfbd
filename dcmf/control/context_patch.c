/*
 * context_patch.c - dcmf_registry_patch (context.h): the RFC 6902 patch
 * is applied to a copy of the context's document, the copy validated,
 * and its DC media planned against the context's (ports kept, given or
 * released; MF-owned members checked); then the plan is committed as a
 * whole or undone as a whole. Control loop only, like the registry.
 */
#include "context.h"
#include "context_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "jsonpatch.h"
#include "mediactx.h"

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
  const char *rtls = registry_remote_tls_id(media);
  if (rtls != NULL && m->remote_tls_id[0] != '\0' &&
      strcmp(rtls, m->remote_tls_id) != 0) {
    /* RFC 8842: a new remote tls-id means a new DTLS association, and our
     * side of the new association gets a new identifier too. */
    registry_new_tls_id(reg, m);
  }
  snprintf(m->remote_tls_id, sizeof(m->remote_tls_id), "%s", rtls ? rtls : "");
  json_t *dc = json_object_get(media, "dcMedia");
  const char *setup = json_string_value(json_object_get(dc, "securitySetup"));
  if (setup != NULL && strcmp(setup, m->local_setup) != 0) {
    m->local_setup = registry_mf_setup_for_peer(setup);
  }
  return registry_media_fill_locals(reg, media, m);
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
    return registry_status_for(DCMF_ERR_NOMEM, p);
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
  static const char *const dc_owned[] = {"localDcEndpoint", "localMdc1Endpoint",
                                         "localMdc2Endpoint",
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
      if (!registry_is_dc(m)) {
        continue;
      }
      const char *mid = json_string_value(json_object_get(m, "mediaId"));
      struct dcmf_media *old = media_find(ctx, tid, mid);
      struct dcmf_media *nm = &plan->ms[plan->n];
      if (old == NULL) {
        int rv = registry_media_assign(reg, nm, tid, m);
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
      if (!registry_is_dc(m)) {
        continue;
      }
      struct dcmf_media *nm = &plan->ms[k++];
      struct dcmf_media *old =
          media_find(ctx, nm->termination_id, nm->media_id);
      int rv =
          registry_mdc2_plan(reg, m, old ? old->mdc2 : NULL,
                             old ? old->n_mdc2 : 0, &nm->mdc2, &nm->n_mdc2);
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
      if (registry_is_dc(m) && media_update(reg, &plan->ms[k++], m) != 0) {
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
      registry_notify(reg, ctx, om, NULL, DCMF_MEDIA_REMOVED);
      reg->res.port_release(reg->res.user, om->port);
      registry_mdc2_release_all(reg, om);
    } else {
      release_dropped_mdc2(reg, om, plan);
      free(om->mdc2);
    }
    registry_media_free_strings(om);
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
    registry_media_free_strings(nm);
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
  size_t n_dc = registry_count_dc(plan.doc);
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
  registry_notify_all(reg, ctx, plan.fresh, 1);
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
  return registry_status_for(rv, p);
}
