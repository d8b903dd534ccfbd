/*
 * cache_int.h - what the HTTP cache's own files share (cache.c: the
 * table, entries and the public calls; cache_fields.c: reading and
 * keeping header fields). Other modules see the cache only through
 * cache.h.
 */
#ifndef DCMF_CACHE_INT_H
#define DCMF_CACHE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"

/* RFC 9111 1.2.2: delta-seconds that overflow are taken as 2^31. */
#define DELTA_MAX 2147483648u

/* Cache-Control directives we act on. */
struct cc {
  uint8_t no_store, no_cache, private_;
  uint8_t has_max_age, bad_max_age, has_s_maxage, bad_s_maxage;
  uint8_t has_min_fresh, bad_min_fresh;
  uint64_t max_age, s_maxage, min_fresh;
};

/* What the cache reads from a request's or response's header fields. */
struct fields {
  struct cc cc;
  uint8_t has_cc, pragma_no_cache, authorization, set_cookie;
  uint8_t vary_ae, vary_other;
  uint8_t has_expires, expires_ok, has_date, date_ok, has_age, has_cl;
  int64_t expires, date;
  uint64_t age, content_length;
  const char *etag, *lm, *ae; /* first values, trimmed, or NULL */
  size_t etag_len, lm_len, ae_len;
};

/* Saturating additions for sizes and counters. */
static inline size_t sz_add(size_t a, size_t b) {
  return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static inline uint64_t u64_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Reads the |n| header fields |h| into |*f| (values point into |h|). */
void cache_fields_parse(const struct dcmf_cache_header *h, size_t n,
                        struct fields *f);

/* Freshness lifetime in seconds (RFC 9111 4.2.1, no heuristics), with
 * |now_ms| standing in for a missing Date. */
uint64_t cache_lifetime_of(const struct fields *f, uint64_t now_ms);

/* Weak comparison of two entity-tags (RFC 9110 8.8.3.2): 1 if equal. */
int cache_etag_weak_eq(const char *a, size_t an, const char *b, size_t bn);

/* Picks the fields an entry keeps: the allow-listed fields of |base| that
 * |upd| does not replace, then the updatable fields of |upd| (NULL when
 * storing). Counts them and adds their value bytes (with NUL) to
 * |*strbytes|; when |out| is not NULL also copies them, values into
 * |strings|. Returns the count. */
size_t cache_pick_fields(const struct dcmf_cache_header *base, size_t nbase,
                         const struct dcmf_cache_header *upd, size_t nupd,
                         struct dcmf_cache_header *out, char *strings,
                         size_t *strbytes);

#endif
