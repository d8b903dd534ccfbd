#include "httpproxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cache.h"
#include "errors.h"
#include "urlmap.h"

#define MAX_HEADERS 64

/* One forwarded request. */
struct preq {
  struct dcmf_httpproxy *px;
  struct dcmf_httpdc *h;
  uint64_t id;
  struct dcmf_upstream_req *up; /* NULL once the upstream request ended */
  int started;                  /* respond_start went out */
  int upstream_ok;              /* the whole upstream body arrived */
  struct dcmf_buf pending;      /* body bytes the engine refused */
  size_t pending_off;
  /* caching (GET only) */
  char *url;                       /* the absolute upstream URL */
  char *accept_encoding;           /* the phone's, for Vary */
  struct dcmf_cache_entry *stale;  /* revalidating this entry */
  struct dcmf_cache_store *store;  /* storing the answer */
  int from_cache;                  /* answered from |stale| after a 304 */
  struct preq *next;
};

struct dcmf_httpproxy {
  const struct dcmf_httpproxy_env *env;
  struct dcmf_httpproxy_route route;
  struct dcmf_url base;
  int has_base;
  struct dcmf_httpproxy_counters *counters;
  struct dcmf_httpproxy_counters own_counters;
  dcmf_httpproxy_wake_fn wake;
  void *wake_user;
  struct dcmf_httpdc_backend repo_backend;
  struct preq *reqs;
};

static void preq_free(struct dcmf_httpproxy *px, struct preq *r) {
  for (struct preq **pp = &px->reqs; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  struct dcmf_cache *cache = px->env->cache;
  if (r->stale != NULL) {
    dcmf_cache_release(cache, r->stale);
  }
  if (r->store != NULL) {
    dcmf_cache_store_abandon(cache, r->store);
  }
  free(r->url);
  free(r->accept_encoding);
  dcmf_buf_free(&r->pending);
  free(r);
}

static struct preq *preq_find(struct dcmf_httpproxy *px, uint64_t id) {
  for (struct preq *r = px->reqs; r; r = r->next) {
    if (r->id == id) {
      return r;
    }
  }
  return NULL;
}

/* A small text answer the app can show. */
static void answer_error(struct dcmf_httpdc *h, uint64_t id, int status,
                         const char *text) {
  struct dcmf_httpdc_response resp = {
      .status = status,
      .content_type = "text/plain; charset=utf-8",
      .body = (const uint8_t *)text,
      .body_len = strlen(text),
  };
  dcmf_httpdc_respond(h, id, &resp);
}

/* Offers pending bytes to the engine in message-sized pieces. Returns 1
 * when everything was taken, 0 when the engine is full. */
static int feed_pending(struct preq *r) {
  size_t max = dcmf_httpdc_max_message_size(r->h);
  while (r->pending_off < r->pending.len) {
    size_t n = r->pending.len - r->pending_off;
    n = n < max ? n : max;
    int rv = dcmf_httpdc_respond_data(
        r->h, r->id, (const uint8_t *)r->pending.data + r->pending_off, n);
    if (rv == DCMF_ERR_EXHAUSTED) {
      return 0;
    }
    r->pending_off += n; /* taken, or refused for good (dropped) */
  }
  r->pending.len = 0;
  r->pending_off = 0;
  return 1;
}

/* Ends the response once the upstream is done and nothing is pending. */
static void maybe_finish(struct preq *r) {
  if (r->up == NULL && r->upstream_ok && r->pending.len == 0) {
    dcmf_httpdc_respond_end(r->h, r->id);
    preq_free(r->px, r);
  }
}

/* ---- the cache --------------------------------------------------------- */

/* What the cache needs to know of a request. */
static struct dcmf_cache_request cache_request(const char *method,
                                               const char *url,
                                               const char *accept_encoding,
                                               struct dcmf_cache_header *h) {
  size_t n = 0;
  if (accept_encoding != NULL) {
    *h = (struct dcmf_cache_header){"Accept-Encoding", 15, accept_encoding,
                                    strlen(accept_encoding)};
    n = 1;
  }
  return (struct dcmf_cache_request){
      .method = method, .url = url, .headers = h, .nheaders = n};
}

/* A stored response answered from memory; |entry| is released once the
 * engine has written it. */
struct cached_answer {
  struct dcmf_cache *cache;
  struct dcmf_cache_entry *entry;
};

static void cached_release(void *arg) {
  struct cached_answer *a = arg;
  dcmf_cache_release(a->cache, a->entry);
  free(a);
}

/* Answers request |id| from |entry| (the reference passes to the
 * engine). Returns 0, or a negative error with the reference released. */
static int answer_from_cache(struct dcmf_httpdc *h, uint64_t id,
                             struct dcmf_cache *cache,
                             struct dcmf_cache_entry *entry, uint64_t age_s) {
  const struct dcmf_cache_response *cr = dcmf_cache_entry_response(entry);
  struct dcmf_httpdc_header hdrs[MAX_HEADERS + 2];
  size_t n = 0;
  const char *content_type = NULL;
  for (size_t i = 0; i < cr->nheaders && n < MAX_HEADERS; i++) {
    const struct dcmf_cache_header *ch = &cr->headers[i];
    if (ch->name_len == 12 && strncasecmp(ch->name, "content-type", 12) == 0) {
      content_type = ch->value;
      continue;
    }
    hdrs[n++] = (struct dcmf_httpdc_header){ch->name, ch->name_len, ch->value,
                                            ch->value_len};
  }
  char age[24];
  snprintf(age, sizeof(age), "%llu", (unsigned long long)age_s);
  hdrs[n++] = (struct dcmf_httpdc_header){"Age", 3, age, strlen(age)};
  hdrs[n++] = (struct dcmf_httpdc_header){"Via", 3, "1.1 dcmf", 8};
  struct cached_answer *a = malloc(sizeof(*a));
  if (a == NULL) {
    dcmf_cache_release(cache, entry);
    return DCMF_ERR_NOMEM;
  }
  *a = (struct cached_answer){cache, entry};
  struct dcmf_httpdc_response resp = {.status = (int)cr->status,
                                      .content_type = content_type,
                                      .headers = hdrs,
                                      .n_headers = n,
                                      .body = cr->body,
                                      .body_len = cr->body_len,
                                      .release = cached_release,
                                      .release_arg = a};
  int rv = dcmf_httpdc_respond(h, id, &resp);
  if (rv != 0) {
    cached_release(a);
  }
  return rv;
}

/* ---- upstream callbacks (from the loop, outside the engine) ------------ */

static void up_head(void *user, int status,
                    const struct dcmf_upstream_header *hs, size_t n,
                    int64_t content_length) {
  struct preq *r = user;
  struct dcmf_cache *cache = r->px->env->cache;
  uint64_t now = r->px->env->now_ms(r->px->env->now_user);
  struct dcmf_cache_header ch[MAX_HEADERS];
  size_t nch = n < MAX_HEADERS ? n : MAX_HEADERS;
  for (size_t i = 0; i < nch; i++) {
    ch[i] = (struct dcmf_cache_header){hs[i].name, hs[i].name_len,
                                       hs[i].value, hs[i].value_len};
  }
  if (r->stale != NULL) {
    if (status == 304 &&
        dcmf_cache_update(cache, &r->stale, ch, nch, now) == 0) {
      /* Still valid: answer from the cache; the upstream's (empty) 304
       * body is ignored. */
      r->px->counters->cache_revalidated++;
      struct dcmf_cache_entry *e = r->stale;
      r->stale = NULL;
      r->from_cache = 1;
      answer_from_cache(r->h, r->id, cache, e, 0);
      r->px->wake(r->px->wake_user);
      return;
    }
    dcmf_cache_release(cache, r->stale);
    r->stale = NULL;
  }
  if (cache != NULL && r->url != NULL) {
    struct dcmf_cache_header ae;
    struct dcmf_cache_request creq =
        cache_request("GET", r->url, r->accept_encoding, &ae);
    if (dcmf_cache_store_begin(cache, &creq, (unsigned)status, ch, nch, now,
                               &r->store) != 0) {
      r->store = NULL; /* not storable: just pass it on */
    }
  }
  struct dcmf_urlmap_header in[MAX_HEADERS], out[MAX_HEADERS + 2];
  size_t n_in = 0, n_out = 0;
  const char *content_type = NULL;
  char ct[256];
  for (size_t i = 0; i < n && n_in < MAX_HEADERS; i++) {
    /* To the phone the server is dcmf (the engine writes Server): a
     * second Server field would be invalid. */
    if (hs[i].name_len == 6 && strncasecmp(hs[i].name, "server", 6) == 0) {
      continue;
    }
    if (hs[i].name_len == 12 && strncasecmp(hs[i].name, "content-type", 12) == 0 &&
        hs[i].value_len < sizeof(ct)) {
      memcpy(ct, hs[i].value, hs[i].value_len);
      ct[hs[i].value_len] = '\0';
      content_type = ct;
      continue;
    }
    in[n_in++] = (struct dcmf_urlmap_header){hs[i].name, hs[i].name_len,
                                             hs[i].value, hs[i].value_len};
  }
  if (dcmf_urlmap_response_headers(in, n_in, DCMF_URLMAP_HTTP_1_1, out,
                                   MAX_HEADERS + 2, &n_out) != 0) {
    /* An upstream field we cannot pass on (control characters). */
    answer_error(r->h, r->id, 502, "bad gateway: unusable upstream "
                                   "answer\n");
    dcmf_upstream_cancel(r->up);
    r->up = NULL;
    preq_free(r->px, r);
    r = NULL;
    return;
  }
  struct dcmf_httpdc_header hdrs[MAX_HEADERS + 2];
  for (size_t i = 0; i < n_out; i++) {
    hdrs[i] = (struct dcmf_httpdc_header){out[i].name, out[i].name_len,
                                          out[i].value, out[i].value_len};
  }
  struct dcmf_httpdc_response head = {.status = status,
                                      .content_type = content_type,
                                      .headers = hdrs,
                                      .n_headers = n_out};
  if (dcmf_httpdc_respond_start(r->h, r->id, &head, content_length) != 0) {
    /* A head the engine refuses (odd status, bad field): say so. */
    answer_error(r->h, r->id, 502, "bad gateway: unusable upstream answer\n");
    dcmf_upstream_cancel(r->up);
    r->up = NULL;
    preq_free(r->px, r);
    return;
  }
  r->started = 1;
  r->px->wake(r->px->wake_user);
}

static int up_data(void *user, const uint8_t *data, size_t len) {
  struct preq *r = user;
  if (r->from_cache) {
    return 0;
  }
  if (r->store != NULL &&
      dcmf_cache_store_append(r->px->env->cache, r->store, data, len) != 0) {
    dcmf_cache_store_abandon(r->px->env->cache, r->store);
    r->store = NULL; /* too large to keep; still streamed to the phone */
  }
  if (dcmf_buf_append(&r->pending, data, len) != 0) {
    return 1;
  }
  int all = feed_pending(r);
  r->px->wake(r->px->wake_user);
  return all ? 0 : 1; /* pause the upstream until the engine drains */
}

static void up_end(void *user, enum dcmf_upstream_result res,
                   const char *why) {
  struct preq *r = user;
  struct dcmf_httpproxy *px = r->px;
  r->up = NULL;
  if (r->from_cache) {
    preq_free(px, r);
    return;
  }
  if (r->store != NULL) {
    if (res == DCMF_UPSTREAM_OK) {
      dcmf_cache_store_commit(px->env->cache, r->store);
    } else {
      dcmf_cache_store_abandon(px->env->cache, r->store);
    }
    r->store = NULL;
  }
  DCMF_LOGD(px->env->log, "proxy", "%s stream %u request %llu: %s",
            px->route.context_id, px->route.stream_id,
            (unsigned long long)r->id, why);
  if (!r->started) {
    if (res == DCMF_UPSTREAM_TIMEOUT) {
      px->counters->upstream_timeouts++;
      answer_error(r->h, r->id, 504, "gateway timeout: the upstream did not "
                                     "answer in time\n");
    } else {
      px->counters->upstream_errors++;
      answer_error(r->h, r->id, 502, "bad gateway: the upstream cannot be "
                                     "reached\n");
    }
    preq_free(px, r);
  } else if (res == DCMF_UPSTREAM_OK) {
    r->upstream_ok = 1;
    maybe_finish(r);
  } else {
    px->counters->upstream_errors++;
    dcmf_httpdc_respond_abort(r->h, r->id);
    preq_free(px, r);
  }
  px->wake(px->wake_user);
}

static const struct dcmf_upstream_callbacks up_cbs = {up_head, up_data,
                                                      up_end};

/* ---- the httpdc backend ------------------------------------------------- */

static int method_allowed(const struct dcmf_httpdc_request *req) {
  static const char *const methods[] = {"GET", "HEAD", "POST", "PUT"};
  for (size_t i = 0; i < 4; i++) {
    if (req->method_len == strlen(methods[i]) &&
        memcmp(req->method, methods[i], req->method_len) == 0) {
      return 1;
    }
  }
  return 0;
}

static int proxy_request(void *user, struct dcmf_httpdc *h,
                         const struct dcmf_httpdc_request *req) {
  struct dcmf_httpproxy *px = user;
  px->counters->requests++;
  if (!px->has_base) {
    if (px->env->repo != NULL) {
      return px->repo_backend.request(px->repo_backend.user, h, req);
    }
    answer_error(h, req->id, 404, "no application is configured for this "
                                  "channel\n");
    return 0;
  }
  if (!method_allowed(req)) {
    struct dcmf_httpdc_header allow = {"Allow", 5, "GET, HEAD, POST, PUT", 20};
    struct dcmf_httpdc_response resp = {.status = 405,
                                        .content_type = "text/plain",
                                        .headers = &allow,
                                        .n_headers = 1,
                                        .body = (const uint8_t *)"method not "
                                                                 "allowed\n",
                                        .body_len = 19};
    dcmf_httpdc_respond(h, req->id, &resp);
    return 0;
  }
  char target[DCMF_URL_MAX_PATH];
  int tn = snprintf(target, sizeof(target), "%.*s%s%.*s", (int)req->path_len,
                    req->path, req->query_len ? "?" : "",
                    (int)req->query_len, req->query);
  struct dcmf_url url;
  int urv = tn < 0 || (size_t)tn >= sizeof(target)
                ? DCMF_ERR_TOO_LARGE
                : dcmf_urlmap_resolve_url(&px->base, target, (size_t)tn, &url);
  if (urv == DCMF_ERR_TOO_LARGE) {
    answer_error(h, req->id, 414, "request target too long\n");
    return 0;
  }
  if (urv == DCMF_ERR_MALFORMED) {
    answer_error(h, req->id, 502, "bad gateway: the replacement URL cannot "
                                  "be used\n");
    return 0;
  }
  if (urv != 0) {
    answer_error(h, req->id, 400, "bad request target\n");
    return 0;
  }
  struct dcmf_urlmap_header in[MAX_HEADERS];
  struct dcmf_urlmap_header out[MAX_HEADERS + DCMF_URLMAP_REQUEST_EXTRA];
  size_t n_in = req->n_headers < MAX_HEADERS ? req->n_headers : MAX_HEADERS;
  for (size_t i = 0; i < n_in; i++) {
    in[i] = (struct dcmf_urlmap_header){
        req->headers[i].name, req->headers[i].name_len, req->headers[i].value,
        req->headers[i].value_len};
  }
  char sid[8];
  snprintf(sid, sizeof(sid), "%u", px->route.stream_id);
  struct dcmf_urlmap_request_info info = {
      .authority = url.authority,
      .context_id = px->route.context_id,
      .termination_id = px->route.termination_id,
      .media_id = px->route.media_id,
      .stream_id = sid,
      .received = req->version_minor == 0 ? DCMF_URLMAP_HTTP_1_0
                                          : DCMF_URLMAP_HTTP_1_1,
  };
  size_t n_out = 0;
  if (dcmf_urlmap_request_headers(in, n_in, &info, out,
                                  MAX_HEADERS + DCMF_URLMAP_REQUEST_EXTRA,
                                  &n_out) != 0) {
    answer_error(h, req->id, 400, "bad request header\n");
    return 0;
  }
  /* The upstream client sets Host itself from the URL. */
  struct dcmf_upstream_header hs[MAX_HEADERS + DCMF_URLMAP_REQUEST_EXTRA];
  size_t n = 0;
  for (size_t i = 0; i < n_out; i++) {
    if (out[i].name_len == 4 && strncasecmp(out[i].name, "host", 4) == 0) {
      continue;
    }
    hs[n++] = (struct dcmf_upstream_header){out[i].name, out[i].name_len,
                                            out[i].value, out[i].value_len};
  }
  struct preq *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    return DCMF_ERR_NOMEM;
  }
  r->px = px;
  r->h = h;
  r->id = req->id;
  char method[16];
  snprintf(method, sizeof(method), "%.*s", (int)req->method_len, req->method);
  int get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0;
  struct dcmf_cache *cache = px->env->cache;
  char cond_name[2][20];
  char cond_value[2][256];
  if (cache != NULL && (get || head)) {
    char full[DCMF_URL_MAX_PATH + DCMF_URL_MAX_AUTHORITY + 16];
    dcmf_url_format(&url, full, sizeof(full));
    struct dcmf_cache_header ch[MAX_HEADERS];
    for (size_t i = 0; i < n_in; i++) {
      ch[i] = (struct dcmf_cache_header){in[i].name, in[i].name_len,
                                         in[i].value, in[i].value_len};
    }
    struct dcmf_cache_request creq = {
        .method = method, .url = full, .headers = ch, .nheaders = n_in};
    struct dcmf_cache_hit hit;
    dcmf_cache_lookup(cache, &creq, px->env->now_ms(px->env->now_user), &hit);
    if (hit.outcome == DCMF_CACHE_FRESH) {
      px->counters->cache_hits++;
      free(r);
      return answer_from_cache(h, req->id, cache, hit.entry, hit.age_s);
    }
    px->counters->cache_misses++;
    if (get && hit.outcome != DCMF_CACHE_BYPASS) {
      r->url = strdup(full);
      for (size_t i = 0; i < n_in; i++) {
        if (in[i].name_len == 15 &&
            strncasecmp(in[i].name, "accept-encoding", 15) == 0) {
          r->accept_encoding = strndup(in[i].value, in[i].value_len);
          break;
        }
      }
    }
    if (hit.outcome == DCMF_CACHE_STALE_REVALIDATE) {
      r->stale = hit.entry;
      const struct dcmf_cache_response *cr = hit.response;
      if (cr->etag != NULL && n < MAX_HEADERS + DCMF_URLMAP_REQUEST_EXTRA) {
        snprintf(cond_name[0], sizeof(cond_name[0]), "If-None-Match");
        snprintf(cond_value[0], sizeof(cond_value[0]), "%s", cr->etag);
        hs[n++] = (struct dcmf_upstream_header){
            cond_name[0], strlen(cond_name[0]), cond_value[0],
            strlen(cond_value[0])};
      }
      if (cr->last_modified != NULL &&
          n < MAX_HEADERS + DCMF_URLMAP_REQUEST_EXTRA) {
        snprintf(cond_name[1], sizeof(cond_name[1]), "If-Modified-Since");
        snprintf(cond_value[1], sizeof(cond_value[1]), "%s",
                 cr->last_modified);
        hs[n++] = (struct dcmf_upstream_header){
            cond_name[1], strlen(cond_name[1]), cond_value[1],
            strlen(cond_value[1])};
      }
    }
  }
  if (dcmf_upstream_request(px->env->pool, &url, method, hs, n, req->body,
                            req->body_len, &up_cbs, r, &r->up) != 0) {
    preq_free(px, r); /* not linked yet: only its memory goes */
    return DCMF_ERR_NOMEM;
  }
  r->next = px->reqs;
  px->reqs = r;
  return 0;
}

static void proxy_cancel(void *user, uint64_t id) {
  struct dcmf_httpproxy *px = user;
  struct preq *r = preq_find(px, id);
  if (r == NULL) {
    return;
  }
  if (r->up != NULL) {
    dcmf_upstream_cancel(r->up);
  }
  preq_free(px, r);
}

static void proxy_resume(void *user, struct dcmf_httpdc *h, uint64_t id) {
  (void)h;
  struct dcmf_httpproxy *px = user;
  struct preq *r = preq_find(px, id);
  if (r == NULL || !feed_pending(r)) {
    return;
  }
  if (r->up != NULL) {
    dcmf_upstream_resume(r->up);
  } else {
    maybe_finish(r);
  }
}

int dcmf_httpproxy_new(struct dcmf_httpproxy **out,
                       const struct dcmf_httpproxy_env *env,
                       const struct dcmf_httpproxy_route *route,
                       struct dcmf_httpproxy_counters *counters,
                       dcmf_httpproxy_wake_fn wake, void *wake_user,
                       struct dcmf_httpdc_backend *backend) {
  struct dcmf_httpproxy *px = calloc(1, sizeof(*px));
  if (px == NULL) {
    return DCMF_ERR_NOMEM;
  }
  px->env = env;
  px->route = *route;
  px->counters = counters ? counters : &px->own_counters;
  px->wake = wake;
  px->wake_user = wake_user;
  if (route->base_url[0] != '\0') {
    if (dcmf_url_parse(route->base_url, &px->base) != 0) {
      free(px);
      return DCMF_ERR_INVALID;
    }
    px->has_base = 1;
  }
  if (env->repo != NULL) {
    dcmf_httpdc_repo_backend(&px->repo_backend, env->repo);
  }
  *backend = (struct dcmf_httpdc_backend){.request = proxy_request,
                                          .cancel = proxy_cancel,
                                          .resume = proxy_resume,
                                          .user = px};
  *out = px;
  return 0;
}

void dcmf_httpproxy_del(struct dcmf_httpproxy *px) {
  if (px == NULL) {
    return;
  }
  while (px->reqs != NULL) {
    struct preq *r = px->reqs;
    if (r->up != NULL) {
      dcmf_upstream_cancel(r->up);
    }
    preq_free(px, r);
  }
  free(px);
}
