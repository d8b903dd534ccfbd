/* Request bodies and JSON responses shared by the control APIs mounted
 * on the one HTTP/2 server (Nmf_MRM in api.c, the AGW shim's agwapi.c). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api.h"
#include "errors.h"
#include "problem.h"

void dcmf_api_respond_problem(struct dcmf_api_response *resp,
                              const struct dcmf_problem *p) {
  resp->status = p->status;
  resp->content_type = "application/problem+json";
  if (dcmf_problem_render(p, &resp->body) != 0) {
    dcmf_buf_free(&resp->body);
  }
}

int dcmf_api_respond_json(struct dcmf_api_response *resp, int status,
                          const json_t *doc) {
  char *text = json_dumps(doc, JSON_COMPACT);
  if (text == NULL) {
    return DCMF_ERR_NOMEM;
  }
  resp->status = status;
  resp->content_type = "application/json";
  dcmf_buf_adopt(&resp->body, text, strlen(text));
  return 0;
}

/* Compares the media type of a Content-Type value, ignoring parameters
 * and letter case (RFC 9110 8.3.1). */
static int media_type_is(const char *content_type, const char *want) {
  if (content_type == NULL) {
    return 0;
  }
  content_type += strspn(content_type, " \t");
  size_t n = strlen(want);
  if (strncasecmp(content_type, want, n) != 0) {
    return 0;
  }
  char c = content_type[n];
  return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

/* Returns 1 when a Content-Encoding value names no coding but identity
 * (RFC 9110 8.4.1: a comma-separated list, names case-insensitive). */
static int encoding_is_identity(const char *value) {
  const char *s = value;
  while (*s != '\0') {
    s += strspn(s, " \t,");
    size_t n = strcspn(s, " \t,");
    if (n > 0 && !(n == 8 && strncasecmp(s, "identity", 8) == 0)) {
      return 0;
    }
    s += n;
  }
  return 1;
}

json_t *dcmf_api_read_body(const struct dcmf_api_request *req,
                           const char *type, struct dcmf_api_response *resp,
                           struct dcmf_problem *p) {
  if (req->content_encoding != NULL &&
      !encoding_is_identity(req->content_encoding)) {
    /* RFC 9110 15.5.16: a 415 over a content coding names the codings
     * the server accepts in Accept-Encoding. */
    resp->accept_encoding = "identity";
    dcmf_problem_param(p, "header content-encoding", "must be identity");
    dcmf_problem_set(p, 415, "UNSUPPORTED_MEDIA_TYPE",
                     "the body must not be encoded (content-encoding %.64s); "
                     "only identity is accepted",
                     req->content_encoding);
    return NULL;
  }
  if (!media_type_is(req->content_type, type)) {
    if (strcmp(type, "application/json-patch+json") == 0) {
      resp->accept_patch = "application/json-patch+json";
    }
    dcmf_problem_param(p, "header content-type", "must be %s", type);
    dcmf_problem_set(p, 415, "UNSUPPORTED_MEDIA_TYPE",
                     "the body must be %s, not %s", type,
                     req->content_type ? req->content_type : "absent");
    return NULL;
  }
  json_error_t jerr;
  json_t *doc = json_loadb((const char *)req->body, req->body_len,
                           JSON_REJECT_DUPLICATES, &jerr);
  if (doc == NULL) {
    dcmf_problem_set(p, 400, "INVALID_MSG_FORMAT",
                     "the body is not valid JSON: %s (line %d, column %d)",
                     jerr.text, jerr.line, jerr.column);
  }
  return doc;
}

int dcmf_api_request_path(const struct dcmf_api_request *req, char *out,
                          size_t cap, struct dcmf_problem *p) {
  size_t len = strcspn(req->path, "?#");
  if (len >= cap) {
    return dcmf_problem_set(p, 414, NULL,
                            "the request path is longer than %zu bytes",
                            cap - 1);
  }
  memcpy(out, req->path, len);
  out[len] = '\0';
  return 0;
}

void dcmf_api_set_location(struct dcmf_api_response *resp,
                           const struct dcmf_api_request *req,
                           const char *collection, const char *id) {
  if (req->authority != NULL && req->authority[0] != '\0' &&
      strpbrk(req->authority, "/?#\r\n ") == NULL) {
    snprintf(resp->location, sizeof(resp->location), "%s://%s%s/%s",
             req->scheme ? req->scheme : "http", req->authority, collection,
             id);
  } else {
    snprintf(resp->location, sizeof(resp->location), "%s/%s", collection,
             id);
  }
}
