/*
 * cache.c - shared HTTP cache engine (RFC 9111); see cache.h for the
 * decisions. Entries live in a SipHash-indexed chained table and an LRU
 * list; pending stores and entries still referenced after leaving the
 * index sit on a second list so dcmf_cache_del() can find them. Each entry
 * is one allocation (bookkeeping, header array, URL, variant, header
 * values); the body is a separate refcounted block so that a 304 can
 * refresh headers without copying it.
 */
#include "cache.h"
#include "cache_int.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

#define BODY_MIN_CAP 1024u
#define BUCKETS_MIN 16u

enum { ENTRY_PENDING, ENTRY_LIVE, ENTRY_DETACHED };

struct cache_body {
  size_t refs;
  size_t len;
  size_t cap;
  uint8_t data[];
};

struct dcmf_cache_entry {
  struct dcmf_cache_entry *hnext; /* hash chain (live only) */
  struct dcmf_cache_entry *prev;  /* LRU list (live) or the other list */
  struct dcmf_cache_entry *next;
  uint64_t hash;
  size_t refs;
  size_t size; /* bytes of this allocation, all accounted */
  int state;
  int store_err; /* pending only: the error that failed the store */
  const char *url;
  size_t url_len;
  const char *variant; /* Accept-Encoding of the filling request */
  size_t variant_len;
  uint8_t vary_ae;         /* response had Vary: Accept-Encoding */
  uint8_t variant_present; /* that request had Accept-Encoding */
  struct cache_body *body;
  uint64_t response_ms;   /* when the response (or last 304) arrived */
  uint64_t initial_age_s; /* its Age header */
  uint64_t lifetime_s;
  struct dcmf_cache_response resp;
};

/* A pending store is an entry not yet in the index. */
struct dcmf_cache_store {
  struct dcmf_cache_entry e;
};

struct entry_list {
  struct dcmf_cache_entry *first; /* most recently used */
  struct dcmf_cache_entry *last;
};

struct dcmf_cache {
  struct dcmf_cache_settings settings;
  struct dcmf_cache_mem mem;
  struct dcmf_cache_entry **buckets;
  size_t nbuckets; /* a power of two */
  struct entry_list lru;
  struct entry_list other; /* pending and detached entries */
  struct dcmf_cache_stats stats;
};

/* ---- allocator ---------------------------------------------------- */

static void *libc_malloc(size_t size, void *user) {
  (void)user;
  return malloc(size);
}

static void *libc_realloc(void *ptr, size_t size, void *user) {
  (void)user;
  return realloc(ptr, size);
}

static void libc_free(void *ptr, void *user) {
  (void)user;
  free(ptr);
}

static void *mem_alloc(struct dcmf_cache *c, size_t size) {
  return c->mem.malloc(size, c->mem.user);
}

static void mem_free(struct dcmf_cache *c, void *ptr) {
  c->mem.free(ptr, c->mem.user);
}
/* ---- lists, index, accounting -------------------------------------- */

static void list_push(struct entry_list *l, struct dcmf_cache_entry *e) {
  e->prev = NULL;
  e->next = l->first;
  if (l->first != NULL)
    l->first->prev = e;
  else
    l->last = e;
  l->first = e;
}

static void list_remove(struct entry_list *l, struct dcmf_cache_entry *e) {
  if (e->prev != NULL)
    e->prev->next = e->next;
  else
    l->first = e->next;
  if (e->next != NULL)
    e->next->prev = e->prev;
  else
    l->last = e->prev;
  e->prev = e->next = NULL;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
  do {                                                                         \
    v0 += v1;                                                                  \
    v1 = ROTL(v1, 13);                                                         \
    v1 ^= v0;                                                                  \
    v0 = ROTL(v0, 32);                                                         \
    v2 += v3;                                                                  \
    v3 = ROTL(v3, 16);                                                         \
    v3 ^= v2;                                                                  \
    v0 += v3;                                                                  \
    v3 = ROTL(v3, 21);                                                         \
    v3 ^= v0;                                                                  \
    v2 += v1;                                                                  \
    v1 = ROTL(v1, 17);                                                         \
    v1 ^= v2;                                                                  \
    v2 = ROTL(v2, 32);                                                         \
  } while (0)

static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* SipHash-2-4 of |len| bytes at |in| under |key|. */
static uint64_t siphash(const uint8_t key[16], const uint8_t *in, size_t len) {
  uint64_t k0 = le64(key), k1 = le64(key + 8);
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  uint64_t b = (uint64_t)len << 56;
  size_t i;
  for (i = 0; i + 8 <= len; i += 8) {
    uint64_t m = le64(in + i);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
  }
  for (size_t j = 0; i + j < len; j++)
    b |= (uint64_t)in[i + j] << (8 * j);
  v3 ^= b;
  SIPROUND;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t url_hash(const struct dcmf_cache *c, const char *url,
                         size_t len) {
  return siphash(c->settings.hash_key, (const uint8_t *)url, len);
}

static struct dcmf_cache_entry *index_find(struct dcmf_cache *c,
                                           const char *url, size_t len) {
  uint64_t h = url_hash(c, url, len);
  struct dcmf_cache_entry *e = c->buckets[h & (c->nbuckets - 1)];
  for (; e != NULL; e = e->hnext)
    if (e->hash == h && e->url_len == len && memcmp(e->url, url, len) == 0)
      return e;
  return NULL;
}

/* Doubles the bucket array; on allocation failure chains just grow. */
static void index_grow(struct dcmf_cache *c) {
  size_t n = c->nbuckets * 2;
  if (n > SIZE_MAX / sizeof(*c->buckets))
    return;
  struct dcmf_cache_entry **b = mem_alloc(c, n * sizeof(*b));
  if (b == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    b[i] = NULL;
  for (size_t i = 0; i < c->nbuckets; i++) {
    struct dcmf_cache_entry *e = c->buckets[i], *next;
    for (; e != NULL; e = next) {
      next = e->hnext;
      e->hnext = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
    }
  }
  mem_free(c, c->buckets);
  c->buckets = b;
  c->nbuckets = n;
}

static void index_remove(struct dcmf_cache *c, struct dcmf_cache_entry *e) {
  struct dcmf_cache_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  e->hnext = NULL;
}

static void unaccount(struct dcmf_cache *c, size_t n) {
  c->stats.bytes -= n;
}

static void body_unref(struct dcmf_cache *c, struct cache_body *b) {
  if (b == NULL || --b->refs > 0)
    return;
  unaccount(c, sizeof(*b) + b->cap);
  mem_free(c, b);
}

/* Frees an entry that is on no list and in no index. */
static void entry_free(struct dcmf_cache *c, struct dcmf_cache_entry *e) {
  body_unref(c, e->body);
  unaccount(c, e->size);
  mem_free(c, e);
}

/* Takes a live entry out of the index and LRU list. */
static void live_unlink(struct dcmf_cache *c, struct dcmf_cache_entry *e) {
  index_remove(c, e);
  list_remove(&c->lru, e);
  c->stats.entries--;
}

/* Makes a live entry unfindable: freed now, or when its readers finish. */
static void retire(struct dcmf_cache *c, struct dcmf_cache_entry *e) {
  live_unlink(c, e);
  if (e->refs > 0) {
    e->state = ENTRY_DETACHED;
    list_push(&c->other, e);
  } else {
    entry_free(c, e);
  }
}

static void make_live(struct dcmf_cache *c, struct dcmf_cache_entry *e) {
  size_t b = e->hash & (c->nbuckets - 1);
  e->state = ENTRY_LIVE;
  e->hnext = c->buckets[b];
  c->buckets[b] = e;
  list_push(&c->lru, e);
  if (++c->stats.entries > c->nbuckets)
    index_grow(c);
}

/* Evicts the least recently used unreferenced entry. Returns 0 or -1. */
static int evict_one(struct dcmf_cache *c) {
  struct dcmf_cache_entry *e = c->lru.last;
  while (e != NULL && e->refs > 0)
    e = e->prev;
  if (e == NULL)
    return -1;
  live_unlink(c, e);
  entry_free(c, e);
  c->stats.evictions++;
  return 0;
}

/* Accounts |n| more bytes, evicting to stay within max_bytes. */
static int reserve(struct dcmf_cache *c, size_t n) {
  while (n > c->settings.max_bytes - c->stats.bytes)
    if (evict_one(c) != 0)
      return DCMF_ERR_EXHAUSTED;
  c->stats.bytes += n;
  return 0;
}

/* ---- entries --------------------------------------------------------- */

#define ALIGN_UP(n, a) (((n) + (a)-1) / (a) * (a))

/*
 * Allocates an entry (state PENDING, on no list) holding |url|, the
 * variant and the picked fields of |base| / |upd|. |extra| is body room
 * the caller will need, counted against max_entry_bytes only.
 */
static int entry_new(struct dcmf_cache *c, const char *url, size_t url_len,
                     const char *variant, size_t variant_len,
                     const struct dcmf_cache_header *base, size_t nbase,
                     const struct dcmf_cache_header *upd, size_t nupd,
                     size_t extra, struct dcmf_cache_entry **pe) {
  size_t strbytes = 0;
  size_t n = cache_pick_fields(base, nbase, upd, nupd, NULL, NULL, &strbytes);
  size_t head = ALIGN_UP(sizeof(struct dcmf_cache_entry),
                         _Alignof(struct dcmf_cache_header));
  size_t size = sz_add(head, n * sizeof(struct dcmf_cache_header));
  size = sz_add(size, sz_add(url_len, 1));
  size = sz_add(size, sz_add(variant_len, 1));
  size = sz_add(size, strbytes);
  if (sz_add(size, extra) > c->settings.max_entry_bytes)
    return DCMF_ERR_TOO_LARGE;
  int rv = reserve(c, size);
  if (rv != 0)
    return rv;
  struct dcmf_cache_entry *e = mem_alloc(c, size);
  if (e == NULL) {
    unaccount(c, size);
    return DCMF_ERR_NOMEM;
  }
  memset(e, 0, sizeof(*e));
  e->size = size;
  e->state = ENTRY_PENDING;
  struct dcmf_cache_header *hdrs =
      (struct dcmf_cache_header *)(void *)((char *)e + head);
  char *p = (char *)(hdrs + n);
  memcpy(p, url, url_len);
  p[url_len] = '\0';
  e->url = p;
  e->url_len = url_len;
  e->hash = url_hash(c, url, url_len);
  p += url_len + 1;
  if (variant_len > 0)
    memcpy(p, variant, variant_len);
  p[variant_len] = '\0';
  e->variant = p;
  e->variant_len = variant_len;
  p += variant_len + 1;
  strbytes = 0;
  cache_pick_fields(base, nbase, upd, nupd, hdrs, p, &strbytes);
  e->resp.headers = hdrs;
  e->resp.nheaders = n;
  for (size_t i = n; i-- > 0;) {
    if (strcmp(hdrs[i].name, "etag") == 0)
      e->resp.etag = hdrs[i].value;
    else if (strcmp(hdrs[i].name, "last-modified") == 0)
      e->resp.last_modified = hdrs[i].value;
  }
  *pe = e;
  return 0;
}

static uint64_t age_ms(const struct dcmf_cache_entry *e, uint64_t now_ms) {
  uint64_t resident = now_ms > e->response_ms ? now_ms - e->response_ms : 0;
  return u64_add(e->initial_age_s * 1000, resident);
}

static int variant_matches(const struct dcmf_cache_entry *e,
                           const struct fields *req) {
  if (!e->vary_ae)
    return 1;
  if ((req->ae != NULL) != (e->variant_present != 0))
    return 0;
  return req->ae == NULL || (req->ae_len == e->variant_len &&
                             memcmp(req->ae, e->variant, req->ae_len) == 0);
}

/* Grows the pending entry's body to hold |need| bytes: exactly that many
 * if |exact| (the Content-Length is known), else with room to spare. */
static int body_grow(struct dcmf_cache *c, struct dcmf_cache_entry *e,
                     size_t need, int exact) {
  struct cache_body *b = e->body;
  size_t have = b != NULL ? sizeof(*b) + b->cap : 0;
  size_t room = c->settings.max_entry_bytes - e->size;
  if (room < sizeof(*b) || need > room - sizeof(*b))
    return DCMF_ERR_TOO_LARGE;
  size_t cap = b != NULL ? b->cap : 0;
  cap = cap > (room - sizeof(*b)) / 2 ? room - sizeof(*b) : cap * 2;
  if (cap < BODY_MIN_CAP)
    cap = BODY_MIN_CAP < room - sizeof(*b) ? BODY_MIN_CAP : room - sizeof(*b);
  if (cap < need || exact)
    cap = need;
  if (reserve(c, sizeof(*b) + cap - have) != 0) {
    cap = need; /* no room to double: try the exact size */
    int rv = reserve(c, sizeof(*b) + cap - have);
    if (rv != 0)
      return rv;
  }
  struct cache_body *nb = c->mem.realloc(b, sizeof(*b) + cap, c->mem.user);
  if (nb == NULL) {
    unaccount(c, sizeof(*b) + cap - have);
    return DCMF_ERR_NOMEM;
  }
  if (b == NULL) {
    nb->refs = 1;
    nb->len = 0;
  }
  nb->cap = cap;
  e->body = nb;
  return 0;
}

/* Fails a pending store: frees its body and remembers |err|. */
static int store_fail(struct dcmf_cache *c, struct dcmf_cache_entry *e,
                      int err) {
  body_unref(c, e->body);
  e->body = NULL;
  e->store_err = err;
  if (err == DCMF_ERR_TOO_LARGE) {
    struct dcmf_cache_entry *old = index_find(c, e->url, e->url_len);
    if (old != NULL)
      retire(c, old);
  }
  return err;
}

/* ---- public API -------------------------------------------------------- */

void dcmf_cache_settings_default(struct dcmf_cache_settings *settings) {
  memset(settings, 0, sizeof(*settings));
  settings->max_bytes = (size_t)64 << 20;
  settings->max_entry_bytes = (size_t)8 << 20;
  settings->max_entries = 4096;
}

int dcmf_cache_new(struct dcmf_cache **pcache,
                   const struct dcmf_cache_settings *settings,
                   const struct dcmf_cache_mem *mem) {
  static const struct dcmf_cache_mem libc_mem = {libc_malloc, libc_realloc,
                                                 libc_free, NULL};
  *pcache = NULL;
  if (settings->max_bytes == 0 || settings->max_entry_bytes == 0 ||
      settings->max_entries == 0 ||
      settings->max_entry_bytes > settings->max_bytes)
    return DCMF_ERR_INVALID;
  if (mem == NULL)
    mem = &libc_mem;
  struct dcmf_cache *c = mem->malloc(sizeof(*c), mem->user);
  if (c == NULL)
    return DCMF_ERR_NOMEM;
  memset(c, 0, sizeof(*c));
  c->settings = *settings;
  c->mem = *mem;
  c->nbuckets = BUCKETS_MIN;
  c->buckets = mem_alloc(c, c->nbuckets * sizeof(*c->buckets));
  if (c->buckets == NULL)
    goto fail_buckets;
  for (size_t i = 0; i < c->nbuckets; i++)
    c->buckets[i] = NULL;
  *pcache = c;
  return 0;

fail_buckets:
  mem_free(c, c);
  return DCMF_ERR_NOMEM;
}

void dcmf_cache_del(struct dcmf_cache *c) {
  if (c == NULL)
    return;
  while (c->lru.first != NULL) {
    struct dcmf_cache_entry *e = c->lru.first;
    live_unlink(c, e);
    entry_free(c, e);
  }
  while (c->other.first != NULL) {
    struct dcmf_cache_entry *e = c->other.first;
    list_remove(&c->other, e);
    entry_free(c, e);
  }
  mem_free(c, c->buckets);
  mem_free(c, c);
}

void dcmf_cache_lookup(struct dcmf_cache *c,
                       const struct dcmf_cache_request *req, uint64_t now_ms,
                       struct dcmf_cache_hit *hit) {
  struct fields f;
  memset(hit, 0, sizeof(*hit));
  cache_fields_parse(req->headers, req->nheaders, &f);
  if ((strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) ||
      f.cc.no_store || f.authorization) {
    hit->outcome = DCMF_CACHE_BYPASS;
    c->stats.bypasses++;
    return;
  }
  struct dcmf_cache_entry *e = index_find(c, req->url, strlen(req->url));
  if (e == NULL || !variant_matches(e, &f)) {
    hit->outcome = DCMF_CACHE_MISS;
    c->stats.misses++;
    return;
  }
  uint64_t age = age_ms(e, now_ms), life = e->lifetime_s * 1000;
  int fresh = age < life;
  int usable = fresh && !f.cc.no_cache && !(f.pragma_no_cache && !f.has_cc);
  if (f.cc.has_max_age && !f.cc.bad_max_age &&
      (f.cc.max_age == 0 || age > f.cc.max_age * 1000))
    usable = 0; /* max-age=0 is a reload: revalidate */
  if (f.cc.has_min_fresh && !f.cc.bad_min_fresh &&
      (!fresh || life - age < f.cc.min_fresh * 1000))
    usable = 0;
  if (usable) {
    hit->outcome = DCMF_CACHE_FRESH;
    c->stats.hits++;
  } else if (e->resp.etag != NULL || e->resp.last_modified != NULL) {
    hit->outcome = DCMF_CACHE_STALE_REVALIDATE;
    c->stats.revalidations++;
  } else {
    if (!fresh)
      retire(c, e); /* stale and cannot be revalidated: useless */
    hit->outcome = DCMF_CACHE_MISS;
    c->stats.misses++;
    return;
  }
  e->refs++;
  list_remove(&c->lru, e);
  list_push(&c->lru, e);
  hit->entry = e;
  hit->response = &e->resp;
  hit->age_s = age / 1000;
}

void dcmf_cache_entry_ref(struct dcmf_cache_entry *e) {
  e->refs++;
}

void dcmf_cache_release(struct dcmf_cache *c, struct dcmf_cache_entry *e) {
  if (--e->refs > 0 || e->state != ENTRY_DETACHED)
    return;
  list_remove(&c->other, e);
  entry_free(c, e);
}

const struct dcmf_cache_response *
dcmf_cache_entry_response(const struct dcmf_cache_entry *e) {
  return &e->resp;
}

uint64_t dcmf_cache_entry_age(const struct dcmf_cache_entry *e,
                              uint64_t now_ms) {
  return age_ms(e, now_ms) / 1000;
}

int dcmf_cache_update(struct dcmf_cache *c, struct dcmf_cache_entry **pentry,
                      const struct dcmf_cache_header *headers, size_t nheaders,
                      uint64_t now_ms) {
  struct dcmf_cache_entry *old = *pentry, *e;
  struct fields f, merged;
  cache_fields_parse(headers, nheaders, &f);
  if (f.etag != NULL) {
    if (old->resp.etag == NULL ||
        !cache_etag_weak_eq(f.etag, f.etag_len, old->resp.etag,
                            strlen(old->resp.etag)))
      return DCMF_ERR_INVALID;
  } else if (f.lm != NULL && old->resp.last_modified != NULL) {
    if (f.lm_len != strlen(old->resp.last_modified) ||
        memcmp(f.lm, old->resp.last_modified, f.lm_len) != 0)
      return DCMF_ERR_INVALID;
  }
  int rv = entry_new(c, old->url, old->url_len, old->variant, old->variant_len,
                     old->resp.headers, old->resp.nheaders, headers, nheaders,
                     0, &e);
  if (rv != 0)
    return rv;
  cache_fields_parse(e->resp.headers, e->resp.nheaders, &merged);
  if (!f.has_date)
    merged.has_date = 0; /* Expires counts from now, as the age does */
  e->vary_ae = old->vary_ae;
  e->variant_present = old->variant_present;
  e->response_ms = now_ms;
  e->initial_age_s = f.has_age ? f.age : 0;
  e->lifetime_s = cache_lifetime_of(&merged, now_ms);
  e->resp.status = old->resp.status;
  e->body = old->body;
  if (e->body != NULL) {
    e->body->refs++;
    e->resp.body = e->body->data;
    e->resp.body_len = e->body->len;
  }
  e->refs = 1;
  int keep = !merged.cc.no_store && !merged.cc.private_;
  if (old->state == ENTRY_LIVE) {
    retire(c, old); /* the caller's reference keeps it allocated */
    if (keep)
      make_live(c, e);
  }
  if (e->state != ENTRY_LIVE) {
    e->state = ENTRY_DETACHED;
    list_push(&c->other, e);
  }
  dcmf_cache_release(c, old);
  *pentry = e;
  c->stats.revalidated_not_modified++;
  return 0;
}

int dcmf_cache_store_begin(struct dcmf_cache *c,
                           const struct dcmf_cache_request *req,
                           unsigned status,
                           const struct dcmf_cache_header *headers,
                           size_t nheaders, uint64_t now_ms,
                           struct dcmf_cache_store **pstore) {
  struct fields q, f;
  struct dcmf_cache_entry *e;
  size_t url_len = strlen(req->url);
  *pstore = NULL;
  cache_fields_parse(req->headers, req->nheaders, &q);
  if (strcmp(req->method, "GET") != 0 || q.cc.no_store || q.authorization)
    return DCMF_ERR_INVALID;
  switch (status) {
  case 200:
  case 203:
  case 204:
  case 300:
  case 301:
  case 308:
  case 404:
  case 410:
    break;
  default:
    return DCMF_ERR_INVALID;
  }
  cache_fields_parse(headers, nheaders, &f);
  uint64_t life = cache_lifetime_of(&f, now_ms);
  int validator = f.etag != NULL || f.lm != NULL;
  if (f.cc.no_store || f.cc.private_ || f.set_cookie || f.vary_other ||
      !(life > 0 || (status == 200 && validator))) {
    e = index_find(c, req->url, url_len);
    if (e != NULL)
      retire(c, e);
    return DCMF_ERR_INVALID;
  }
  size_t extra = 0;
  if (f.has_cl && f.content_length > 0)
    extra = f.content_length > SIZE_MAX - sizeof(struct cache_body)
                ? SIZE_MAX
                : sizeof(struct cache_body) + (size_t)f.content_length;
  const char *variant = f.vary_ae ? q.ae : NULL;
  size_t variant_len = variant != NULL ? q.ae_len : 0;
  int rv = entry_new(c, req->url, url_len, variant, variant_len, headers,
                     nheaders, NULL, 0, extra, &e);
  if (rv == DCMF_ERR_TOO_LARGE) {
    struct dcmf_cache_entry *old = index_find(c, req->url, url_len);
    if (old != NULL)
      retire(c, old);
  }
  if (rv != 0)
    return rv;
  e->vary_ae = f.vary_ae;
  e->variant_present = f.vary_ae && q.ae != NULL;
  e->response_ms = now_ms;
  e->initial_age_s = f.has_age ? f.age : 0;
  e->lifetime_s = life;
  e->resp.status = status;
  list_push(&c->other, e);
  if (extra > 0) {
    rv = body_grow(c, e, (size_t)f.content_length, 1);
    if (rv != 0) {
      list_remove(&c->other, e);
      entry_free(c, e);
      return rv;
    }
  }
  *pstore = (struct dcmf_cache_store *)(void *)e;
  return 0;
}

int dcmf_cache_store_append(struct dcmf_cache *c, struct dcmf_cache_store *s,
                            const void *data, size_t len) {
  struct dcmf_cache_entry *e = &s->e;
  if (e->store_err != 0)
    return e->store_err;
  if (len == 0)
    return 0;
  size_t have = e->body != NULL ? e->body->len : 0;
  if (len > SIZE_MAX - have)
    return store_fail(c, e, DCMF_ERR_TOO_LARGE);
  if (e->body == NULL || have + len > e->body->cap) {
    int rv = body_grow(c, e, have + len, 0);
    if (rv != 0)
      return store_fail(c, e, rv);
  }
  memcpy(e->body->data + have, data, len);
  e->body->len = have + len;
  return 0;
}

int dcmf_cache_store_commit(struct dcmf_cache *c, struct dcmf_cache_store *s) {
  struct dcmf_cache_entry *e = &s->e;
  int rv = e->store_err;
  list_remove(&c->other, e);
  if (rv != 0)
    goto fail;
  struct cache_body *b = e->body;
  if (b != NULL && b->len == 0) {
    body_unref(c, b);
    e->body = NULL;
  } else if (b != NULL && b->cap > b->len) {
    struct cache_body *nb = c->mem.realloc(b, sizeof(*b) + b->len, c->mem.user);
    if (nb != NULL) { /* if shrinking fails the slack stays accounted */
      unaccount(c, nb->cap - nb->len);
      nb->cap = nb->len;
      e->body = nb;
    }
  }
  struct dcmf_cache_entry *old = index_find(c, e->url, e->url_len);
  if (old != NULL)
    retire(c, old);
  while (c->stats.entries >= c->settings.max_entries) {
    if (evict_one(c) != 0) {
      rv = DCMF_ERR_EXHAUSTED;
      goto fail;
    }
  }
  if (e->body != NULL) {
    e->resp.body = e->body->data;
    e->resp.body_len = e->body->len;
  }
  make_live(c, e);
  c->stats.stores++;
  return 0;

fail:
  entry_free(c, e);
  return rv;
}

void dcmf_cache_store_abandon(struct dcmf_cache *c,
                              struct dcmf_cache_store *s) {
  list_remove(&c->other, &s->e);
  entry_free(c, &s->e);
}

int dcmf_cache_invalidate(struct dcmf_cache *c, const char *url) {
  struct dcmf_cache_entry *e = index_find(c, url, strlen(url));
  if (e == NULL)
    return DCMF_ERR_NOT_FOUND;
  retire(c, e);
  return 0;
}

void dcmf_cache_get_stats(const struct dcmf_cache *c,
                          struct dcmf_cache_stats *stats) {
  *stats = c->stats;
}
