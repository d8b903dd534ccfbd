/*
 * httpdc_repo.c - the built-in repository as an httpdc backend
 * (dcmf_httpdc_repo_backend, httpdc.h): GET and HEAD of the repository's
 * files, If-None-Match, the redirect of a directory to its slash.
 */
#include "httpdc_int.h"

#include <stdio.h>
#include <string.h>

#include "errors.h"

/* ---- the repository backend ------------------------------------------- */

struct etag_match {
  const char *etag; /* quoted */
  size_t len;
};

/* One If-None-Match list element: "*" or [W/]"opaque". */
static int inm_element(const char *el, size_t len, const void *arg) {
  const struct etag_match *m = arg;
  if (len == 1 && el[0] == '*') {
    return 1;
  }
  if (len >= 2 && el[0] == 'W' && el[1] == '/') {
    el += 2; /* weak comparison: the W/ prefix does not matter */
    len -= 2;
  }
  return len == m->len && memcmp(el, m->etag, len) == 0;
}

static int inm_matches(const struct dcmf_httpdc_request *req,
                       const char *etag) {
  struct etag_match m = {etag, strlen(etag)};
  for (size_t i = 0; i < req->n_headers; i++) {
    const struct dcmf_httpdc_header *hd = &req->headers[i];
    if (httpdc_span_ieq(hd->name, hd->name_len, "if-none-match") &&
        httpdc_list_any(hd->value, hd->value_len, inm_element, &m)) {
      return 1;
    }
  }
  return 0;
}

#define HDR(n, v) {n, sizeof(n) - 1, v, strlen(v)}

static int repo_error(struct dcmf_httpdc *h, uint64_t id, int status,
                      const struct dcmf_httpdc_header *extra, size_t n_extra) {
  const char *body = httpdc_error_body(status);
  struct dcmf_httpdc_response r = {.status = status,
                                   .content_type = TEXT_PLAIN,
                                   .headers = extra,
                                   .n_headers = n_extra,
                                   .body = (const uint8_t *)body,
                                   .body_len = strlen(body)};
  return dcmf_httpdc_respond(h, id, &r);
}

static int repo_redirect(struct dcmf_httpdc *h,
                         const struct dcmf_httpdc_request *req) {
  struct dcmf_buf loc = {0};
  int rc = dcmf_buf_append(&loc, req->path, req->path_len);
  if (rc == 0) {
    rc = dcmf_buf_append(&loc, "/", 1);
  }
  if (rc == 0 && req->query_len > 0) {
    rc = dcmf_buf_append(&loc, "?", 1);
    if (rc == 0) {
      rc = dcmf_buf_append(&loc, req->query, req->query_len);
    }
  }
  if (rc == 0) {
    struct dcmf_httpdc_header hd[] = {
        {"Location", 8, loc.data, loc.len},
        HDR("X-Content-Type-Options", "nosniff"),
    };
    rc = repo_error(h, req->id, 301, hd, 2);
  }
  dcmf_buf_free(&loc);
  return rc;
}

static int repo_request(void *user, struct dcmf_httpdc *h,
                        const struct dcmf_httpdc_request *req) {
  const struct dcmf_repo *repo = user;
  static const struct dcmf_httpdc_header nosniff[] = {
      {"X-Content-Type-Options", 22, "nosniff", 7}};
  if (!httpdc_span_eq(req->method, req->method_len, "GET") &&
      !httpdc_span_eq(req->method, req->method_len, "HEAD")) {
    static const struct dcmf_httpdc_header allow[] = {
        {"Allow", 5, "GET, HEAD", 9},
        {"X-Content-Type-Options", 22, "nosniff", 7}};
    return repo_error(h, req->id, 405, allow, 2);
  }
  const struct dcmf_repo_entry *e = NULL;
  int rc = dcmf_repo_find(repo, req->path, req->path_len, &e);
  if (rc == DCMF_ERR_MALFORMED) {
    return repo_error(h, req->id, 400, nosniff, 1);
  }
  if (rc != 0) {
    if (dcmf_repo_is_dir(repo, req->path, req->path_len)) {
      return repo_redirect(h, req);
    }
    return repo_error(h, req->id, 404, nosniff, 1);
  }
  struct dcmf_httpdc_header hd[] = {
      {"ETag", 4, e->etag, strlen(e->etag)},
      HDR("Cache-Control", "no-cache"),
      HDR("X-Content-Type-Options", "nosniff"),
  };
  struct dcmf_httpdc_response r = {.headers = hd, .n_headers = 3};
  if (inm_matches(req, e->etag)) {
    r.status = 304;
  } else {
    r.status = 200;
    r.content_type = e->content_type;
    r.body = e->bytes;
    r.body_len = e->len;
  }
  return dcmf_httpdc_respond(h, req->id, &r);
}

void dcmf_httpdc_repo_backend(struct dcmf_httpdc_backend *backend,
                              const struct dcmf_repo *repo) {
  memset(backend, 0, sizeof(*backend));
  backend->request = repo_request;
  /* The backend only reads |repo|; the table's user pointer is not const. */
  backend->user = (void *)(uintptr_t)repo;
}
