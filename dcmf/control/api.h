/*
 * api.h - the control API router: Nmf_MRM (TS 29.176) on
 * /nmf-mrm/v1/contexts plus /healthz and /metrics.
 *
 * Transport-neutral: the HTTP/2 glue hands over a complete request and
 * sends back the response this module builds, so every status code and
 * body can be tested in memory.
 */
#ifndef DCMF_API_H
#define DCMF_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "buf.h"
#include "context.h"
#include "log.h"
#include "metrics.h"

struct dcmf_api_request {
  const char *method;       /* ":method" */
  const char *path;         /* ":path", query included */
  const char *scheme;       /* ":scheme", may be NULL */
  const char *authority;    /* ":authority" or Host, may be NULL */
  const char *content_type; /* may be NULL */
  /* The body ends with the stream (RFC 9113 8.1.1): content-length is
   * optional, and the transport has checked any it was given. */
  const char *content_encoding; /* may be NULL */
  const char *if_match;         /* may be NULL */
  const uint8_t *body;      /* borrowed for the call */
  size_t body_len;
  /* Access checks (auth.h). */
  const char *authorization;  /* Authorization header, may be NULL */
  const char *client_subject; /* verified client certificate (RFC 2253) */
  const char *client_cn;      /* its common name; both NULL without one */
  int64_t now;                /* wall-clock seconds, for token expiry */
};

struct dcmf_api_response {
  int status;
  const char *content_type; /* static string, or NULL without a body */
  struct dcmf_buf body;     /* owned by the response */
  char location[512];       /* "" when absent */
  const char *allow;        /* static, for 405; NULL otherwise */
  const char *accept_patch; /* static, for PATCH 415; NULL otherwise */
  /* static, for a 415 over content-encoding; NULL otherwise */
  const char *accept_encoding;
  char etag[40]; /* strong entity-tag with its quotes; "" when absent */
  char www_authenticate[224]; /* RFC 6750 challenge for 401/403; "" */
  /* Retry-After in seconds (RFC 9110 10.2.3) for a 503 that a later
   * attempt may not get; 0 when absent. */
  unsigned retry_after_s;
};

/* Reads the gauges other modules own (contexts, ports). */
typedef void (*dcmf_api_gauges_fn)(void *user, struct dcmf_gauges *g);

/* Another API mounted under a path prefix (the AGW shim's /agw/v1/). */
typedef void (*dcmf_api_mount_fn)(void *user,
                                  const struct dcmf_api_request *req,
                                  struct dcmf_api_response *resp);
/* Appends extra Prometheus text to /metrics. */
typedef void (*dcmf_api_metrics_fn)(void *user, struct dcmf_buf *out);

struct dcmf_api {
  struct dcmf_registry *registry; /* borrowed */
  struct dcmf_metrics *metrics;   /* borrowed */
  const struct dcmf_log *log;     /* borrowed, may be NULL */
  dcmf_api_gauges_fn gauges;
  void *gauges_user;
  const char *mount_prefix; /* e.g. "/agw/v1/"; NULL: none */
  dcmf_api_mount_fn mount;
  dcmf_api_metrics_fn extra_metrics;
  void *mount_user;
  /* Access checks before routing; NULL: every request is served. */
  const struct dcmf_auth *auth; /* borrowed */
  int auth_metrics;             /* 1: /healthz and /metrics checked too */
};

/*
 * Handles one complete request and fills |resp| (zero it first; free it
 * with dcmf_api_response_free). HEAD is answered as GET; the transport
 * drops the body. With |api->auth| set, the request must first pass
 * dcmf_auth_check for the API its path belongs to (401 or 403 problem
 * with WWW-Authenticate otherwise). A response that carries a
 * MediaContext carries its entity-tag in resp->etag; PATCH and DELETE of
 * a context whose tag the request's If-Match does not name get 412
 * before the body is read. Never fails: internal errors become 500
 * problems.
 */
void dcmf_api_handle(struct dcmf_api *api, const struct dcmf_api_request *req,
                     struct dcmf_api_response *resp);

/*
 * Fills |resp| with a problem+json response for a request the transport
 * rejected before it was complete (408, 413, 431), counting it in the
 * metrics like any other response.
 */
void dcmf_api_reject(struct dcmf_api *api, const char *method, int status,
                     const char *detail, struct dcmf_api_response *resp);

void dcmf_api_response_free(struct dcmf_api_response *resp);

/* ---- shared by the mounted APIs (apibody.c) ---- */

struct dcmf_problem;

/* Fills |resp| with |p| as application/problem+json. */
void dcmf_api_respond_problem(struct dcmf_api_response *resp,
                              const struct dcmf_problem *p);

/* Fills |resp| with |doc| (borrowed) as application/json. Returns 0 or
 * DCMF_ERR_NOMEM (|resp| untouched). */
int dcmf_api_respond_json(struct dcmf_api_response *resp, int status,
                          const json_t *doc);

/* Sets the Location of a created resource |collection|/|id|: absolute
 * when the request named a plain authority, else the path alone (an
 * authority with path or space characters is not echoed). */
void dcmf_api_set_location(struct dcmf_api_response *resp,
                           const struct dcmf_api_request *req,
                           const char *collection, const char *id);

/* Copies the path of |req| without query or fragment into |out|.
 * Returns 0, or the status with |p| set to 414 when it does not fit. */
int dcmf_api_request_path(const struct dcmf_api_request *req, char *out,
                          size_t cap, struct dcmf_problem *p);

/* Checks that the body has no content coding (TS 29.500 5.2.2: identity
 * only) and that its media type is |type|, then parses it as JSON
 * (duplicate names refused). No content-length is needed: HTTP/2 ends a
 * body with END_STREAM. Returns a new reference, or NULL with |p| set to
 * 415 (with Accept-Encoding, or Accept-Patch for a JSON Patch, on
 * |resp|) or 400. */
json_t *dcmf_api_read_body(const struct dcmf_api_request *req,
                           const char *type, struct dcmf_api_response *resp,
                           struct dcmf_problem *p);

#endif
