/*
 * test_cache.c - unit tests for the shared HTTP cache engine with a fake
 * clock: freshness (max-age, s-maxage, Expires/Date, Age), revalidation
 * and 304 refresh, what is never stored, request directives, HEAD, Vary,
 * LRU eviction and reference counts, size limits, incremental bodies,
 * counters and a failing allocator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "errors.h"

#define HDR(n, v)                                                              \
  { n, sizeof(n) - 1, v, sizeof(v) - 1 }
#define NHDR(a) (sizeof(a) / sizeof((a)[0]))

/* Tue, 14 Nov 2023 22:13:20 GMT */
#define T0 ((uint64_t)1700000000 * 1000)
#define DATE_T0 "Tue, 14 Nov 2023 22:13:20 GMT"
#define DATE_T0_120 "Tue, 14 Nov 2023 22:15:20 GMT"
#define SEC 1000u

static const char *const URL = "https://ar.example.net/apps/app1/index.html";
static const char *const URL2 = "https://ar.example.net/apps/app2/index.html";
static const char *const URL3 = "https://ar.example.net/apps/app3/index.html";

static struct dcmf_cache *mk(size_t max_bytes, size_t max_entry,
                             size_t max_entries) {
  struct dcmf_cache_settings s;
  struct dcmf_cache *c = NULL;
  dcmf_cache_settings_default(&s);
  s.max_bytes = max_bytes;
  s.max_entry_bytes = max_entry;
  s.max_entries = max_entries;
  assert_int_equal(dcmf_cache_new(&c, &s, NULL), 0);
  return c;
}

static struct dcmf_cache *mk_default(void) {
  return mk((size_t)1 << 20, (size_t)64 << 10, 64);
}

/* Stores a GET response for |url| with |body|, in two chunks. */
static int put_req(struct dcmf_cache *c, const struct dcmf_cache_request *rq,
                   unsigned status, const struct dcmf_cache_header *h, size_t n,
                   const char *body, uint64_t now) {
  struct dcmf_cache_store *st = NULL;
  int rv = dcmf_cache_store_begin(c, rq, status, h, n, now, &st);
  if (rv != 0) {
    assert_null(st);
    return rv;
  }
  size_t len = strlen(body), half = len / 2;
  rv = dcmf_cache_store_append(c, st, body, half);
  if (rv == 0)
    rv = dcmf_cache_store_append(c, st, body + half, len - half);
  int crv = dcmf_cache_store_commit(c, st);
  return rv != 0 ? rv : crv;
}

static int put(struct dcmf_cache *c, const char *url, unsigned status,
               const struct dcmf_cache_header *h, size_t n, const char *body,
               uint64_t now) {
  struct dcmf_cache_request rq = {"GET", url, NULL, 0};
  return put_req(c, &rq, status, h, n, body, now);
}

/* Looks up with request headers; releases nothing. */
static enum dcmf_cache_outcome get_h(struct dcmf_cache *c, const char *method,
                                     const char *url,
                                     const struct dcmf_cache_header *h,
                                     size_t n, uint64_t now,
                                     struct dcmf_cache_hit *hit) {
  struct dcmf_cache_request rq = {method, url, h, n};
  dcmf_cache_lookup(c, &rq, now, hit);
  if (hit->outcome == DCMF_CACHE_FRESH ||
      hit->outcome == DCMF_CACHE_STALE_REVALIDATE) {
    assert_non_null(hit->entry);
    assert_ptr_equal(hit->response, dcmf_cache_entry_response(hit->entry));
  } else {
    assert_null(hit->entry);
    assert_null(hit->response);
  }
  return hit->outcome;
}

/* Looks up a plain GET and releases any reference at once. */
static enum dcmf_cache_outcome get(struct dcmf_cache *c, const char *url,
                                   uint64_t now) {
  struct dcmf_cache_hit hit;
  enum dcmf_cache_outcome o = get_h(c, "GET", url, NULL, 0, now, &hit);
  if (hit.entry != NULL)
    dcmf_cache_release(c, hit.entry);
  return o;
}

static const char *find_hdr(const struct dcmf_cache_response *r,
                            const char *name) {
  for (size_t i = 0; i < r->nheaders; i++)
    if (strcmp(r->headers[i].name, name) == 0)
      return r->headers[i].value;
  return NULL;
}

/* Deletes |c|; ASan reports anything it failed to free. */
static void done(struct dcmf_cache *c) {
  dcmf_cache_del(c);
}

/* ---- dates ---------------------------------------------------------- */

static void test_http_date_valid(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t secs;
  } v[] = {
      {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
      {DATE_T0, 1700000000},
      {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},
      {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
      {"Thu, 31 Dec 2099 23:59:59 GMT", 4102444799},
  };
  for (size_t i = 0; i < NHDR(v); i++) {
    int64_t s = -1;
    assert_int_equal(
        dcmf_cache_parse_http_date(v[i].text, strlen(v[i].text), &s), 0);
    assert_int_equal(s, v[i].secs);
  }
}

static void test_http_date_invalid(void **state) {
  (void)state;
  static const char *const bad[] = {
      "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850 */
      "Sun Nov  6 08:49:37 1994",       /* asctime */
      "0",
      "",
      "-1",
      "Sun, 06 Nov 1994 08:49:37 UTC",
      "Sun, 06 Nov 1994 08:49:37 gmt",
      "sun, 06 Nov 1994 08:49:37 GMT",
      "Sun, 06 nov 1994 08:49:37 GMT",
      "Xyz, 06 Nov 1994 08:49:37 GMT",
      "Sun, 6 Nov 1994 08:49:37 GMT",
      "Sun, 31 Nov 1994 08:49:37 GMT",
      "Sun, 29 Feb 1900 08:49:37 GMT",
      "Sun, 00 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 24:49:37 GMT",
      "Sun, 06 Nov 1994 08:60:37 GMT",
      "Sun, 06 Nov 1994 08:49:61 GMT",
      "Sun, 06 Nov 1994 08:49:37 GMT ",
      "Sun,  06 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 19a4 08:49:37 GMT",
  };
  for (size_t i = 0; i < NHDR(bad); i++) {
    int64_t s = 42;
    assert_int_equal(dcmf_cache_parse_http_date(bad[i], strlen(bad[i]), &s),
                     DCMF_ERR_MALFORMED);
    assert_int_equal(s, 42);
  }
}

/* ---- settings --------------------------------------------------------- */

static void test_new_invalid_settings(void **state) {
  (void)state;
  struct dcmf_cache_settings s;
  struct dcmf_cache *c = (struct dcmf_cache *)1;
  dcmf_cache_settings_default(&s);
  s.max_bytes = 0;
  assert_int_equal(dcmf_cache_new(&c, &s, NULL), DCMF_ERR_INVALID);
  assert_null(c);
  dcmf_cache_settings_default(&s);
  s.max_entries = 0;
  assert_int_equal(dcmf_cache_new(&c, &s, NULL), DCMF_ERR_INVALID);
  dcmf_cache_settings_default(&s);
  s.max_entry_bytes = s.max_bytes + 1;
  assert_int_equal(dcmf_cache_new(&c, &s, NULL), DCMF_ERR_INVALID);
  dcmf_cache_settings_default(&s);
  assert_int_equal(dcmf_cache_new(&c, &s, NULL), 0);
  dcmf_cache_del(c);
  dcmf_cache_del(NULL);
}

/* ---- freshness -------------------------------------------------------- */

static void test_fresh_max_age(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60"),
                                  HDR("Content-Type", "text/html")};
  struct dcmf_cache_hit hit;
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_MISS);
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "<html>app</html>", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0 + 59 * SEC + 999, &hit),
                   DCMF_CACHE_FRESH);
  assert_int_equal(hit.age_s, 59);
  assert_int_equal(hit.response->status, 200);
  assert_int_equal(hit.response->body_len, 16);
  assert_memory_equal(hit.response->body, "<html>app</html>", 16);
  assert_string_equal(find_hdr(hit.response, "content-type"), "text/html");
  assert_int_equal(dcmf_cache_entry_age(hit.entry, T0 + 30 * SEC), 30);
  dcmf_cache_release(c, hit.entry);
  /* Expired and no validator: useless, so it is dropped. */
  assert_int_equal(get(c, URL, T0 + 60 * SEC), DCMF_CACHE_MISS);
  struct dcmf_cache_stats st;
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.bytes, 0);
  done(c);
}

static void test_fresh_s_maxage(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {
      HDR("Cache-Control", "max-age=10, s-maxage=100"), HDR("ETag", "\"v1\"")};
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "x", T0), 0);
  assert_int_equal(get(c, URL, T0 + 50 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL, T0 + 99 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL, T0 + 100 * SEC), DCMF_CACHE_STALE_REVALIDATE);
  /* s-maxage wins even when shorter. */
  struct dcmf_cache_header h2[] = {
      HDR("Cache-Control", "s-maxage=5, max-age=1000"), HDR("ETag", "\"v1\"")};
  assert_int_equal(put(c, URL2, 200, h2, NHDR(h2), "x", T0), 0);
  assert_int_equal(get(c, URL2, T0 + 4 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL2, T0 + 5 * SEC), DCMF_CACHE_STALE_REVALIDATE);
  done(c);
}

static void test_expires_date(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  /* The origin's clock is far behind ours: only Expires - Date counts. */
  struct dcmf_cache_header h[] = {HDR("Date", DATE_T0),
                                  HDR("Expires", DATE_T0_120),
                                  HDR("Last-Modified", DATE_T0)};
  uint64_t now = T0 + 3600 * SEC;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "body", now), 0);
  assert_int_equal(get(c, URL, now + 119 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL, now + 120 * SEC), DCMF_CACHE_STALE_REVALIDATE);
  /* max-age beats Expires. */
  struct dcmf_cache_header h2[] = {HDR("Date", DATE_T0),
                                   HDR("Expires", DATE_T0_120),
                                   HDR("Cache-Control", "max-age=5")};
  assert_int_equal(put(c, URL2, 200, h2, NHDR(h2), "body", T0), 0);
  assert_int_equal(get(c, URL2, T0 + 5 * SEC), DCMF_CACHE_MISS);
  done(c);
}

static void test_expires_without_date(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Expires", DATE_T0_120)};
  /* Received 20 s before T0: lifetime 140 s from the receipt time. */
  uint64_t rx = T0 - 20 * SEC;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "b", rx), 0);
  assert_int_equal(get(c, URL, rx + 139 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL, rx + 140 * SEC), DCMF_CACHE_MISS);
  /* Expires in the past: nothing to store without a validator. */
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "b", T0 + 200 * SEC),
                   DCMF_ERR_INVALID);
  done(c);
}

static void test_bad_dates_stale(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  /* "Expires: 0" and other forms are invalid: already stale. */
  struct dcmf_cache_header h1[] = {HDR("Expires", "0")};
  assert_int_equal(put(c, URL, 200, h1, NHDR(h1), "b", T0), DCMF_ERR_INVALID);
  struct dcmf_cache_header h2[] = {
      HDR("Expires", "Tuesday, 14-Nov-23 22:15:20 GMT"), HDR("ETag", "\"e\"")};
  assert_int_equal(put(c, URL, 200, h2, NHDR(h2), "b", T0), 0);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_STALE_REVALIDATE);
  /* A bad Date makes a good Expires useless too. */
  struct dcmf_cache_header h3[] = {HDR("Date", "Tue Nov 14 22:13:20 2023"),
                                   HDR("Expires", DATE_T0_120),
                                   HDR("ETag", "\"e\"")};
  assert_int_equal(put(c, URL2, 200, h3, NHDR(h3), "b", T0), 0);
  assert_int_equal(get(c, URL2, T0), DCMF_CACHE_STALE_REVALIDATE);
  /* A 404 with a bad Expires has no freshness and is not stored. */
  assert_int_equal(put(c, URL3, 404, h2, NHDR(h2), "b", T0), DCMF_ERR_INVALID);
  done(c);
}

static void test_age_header(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60"),
                                  HDR("Age", "30"), HDR("ETag", "\"a\"")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "b", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0 + 10 * SEC, &hit),
                   DCMF_CACHE_FRESH);
  assert_int_equal(hit.age_s, 40);
  dcmf_cache_release(c, hit.entry);
  assert_int_equal(get(c, URL, T0 + 29 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL, T0 + 30 * SEC), DCMF_CACHE_STALE_REVALIDATE);
  /* Age already past max-age: stored (validator) but stale at once. */
  struct dcmf_cache_header h2[] = {HDR("Cache-Control", "max-age=60"),
                                   HDR("Age", "61"), HDR("ETag", "\"a\"")};
  assert_int_equal(put(c, URL2, 200, h2, NHDR(h2), "b", T0), 0);
  assert_int_equal(get(c, URL2, T0), DCMF_CACHE_STALE_REVALIDATE);
  /* A malformed Age is ignored. */
  struct dcmf_cache_header h3[] = {HDR("Cache-Control", "max-age=60"),
                                   HDR("Age", "-5")};
  assert_int_equal(put(c, URL3, 200, h3, NHDR(h3), "b", T0), 0);
  assert_int_equal(get_h(c, "GET", URL3, NULL, 0, T0 + SEC, &hit),
                   DCMF_CACHE_FRESH);
  assert_int_equal(hit.age_s, 1);
  dcmf_cache_release(c, hit.entry);
  done(c);
}

static void test_cache_control_parsing(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  /* Quoted value, upper case, two fields, junk directives. */
  struct dcmf_cache_header h1[] = {HDR("CACHE-CONTROL", "Public , x=\"a,b\""),
                                   HDR("cache-control", " MAX-AGE=\"30\" ")};
  assert_int_equal(put(c, URL, 200, h1, NHDR(h1), "b", T0), 0);
  assert_int_equal(get(c, URL, T0 + 29 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL, T0 + 30 * SEC), DCMF_CACHE_MISS);
  /* Duplicate max-age: the first counts. */
  struct dcmf_cache_header h2[] = {HDR("Cache-Control", "max-age=10"),
                                   HDR("Cache-Control", "max-age=1000")};
  assert_int_equal(put(c, URL, 200, h2, NHDR(h2), "b", T0), 0);
  assert_int_equal(get(c, URL, T0 + 10 * SEC), DCMF_CACHE_MISS);
  /* Invalid max-age: stale (and here not storable). */
  struct dcmf_cache_header h3[] = {HDR("Cache-Control", "max-age=ten")};
  assert_int_equal(put(c, URL, 200, h3, NHDR(h3), "b", T0), DCMF_ERR_INVALID);
  struct dcmf_cache_header h4[] = {HDR("Cache-Control", "max-age=1.5"),
                                   HDR("ETag", "\"q\"")};
  assert_int_equal(put(c, URL, 200, h4, NHDR(h4), "b", T0), 0);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_STALE_REVALIDATE);
  /* Overflowing delta-seconds saturate at 2^31. */
  struct dcmf_cache_header h5[] = {
      HDR("Cache-Control", "max-age=99999999999999999999999")};
  assert_int_equal(put(c, URL2, 200, h5, NHDR(h5), "b", T0), 0);
  assert_int_equal(get(c, URL2, T0 + (uint64_t)2147483647 * SEC),
                   DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL2, T0 + (uint64_t)2147483648 * SEC),
                   DCMF_CACHE_MISS);
  /* no-cache="set-cookie" counts as no-cache. */
  struct dcmf_cache_header h6[] = {
      HDR("Cache-Control", "max-age=100, no-cache=\"Set-Cookie\""),
      HDR("ETag", "\"q\"")};
  assert_int_equal(put(c, URL3, 200, h6, NHDR(h6), "b", T0), 0);
  assert_int_equal(get(c, URL3, T0), DCMF_CACHE_STALE_REVALIDATE);
  done(c);
}

/* ---- revalidation ----------------------------------------------------- */

static void test_stale_conditional_values(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {
      HDR("Cache-Control", "max-age=10"), HDR("ETag", "  W/\"abc\"  "),
      HDR("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "b", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0 + 11 * SEC, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  assert_string_equal(hit.response->etag, "W/\"abc\"");
  assert_string_equal(hit.response->last_modified,
                      "Sun, 06 Nov 1994 08:49:37 GMT");
  assert_int_equal(hit.age_s, 11);
  dcmf_cache_release(c, hit.entry);
  /* Only Last-Modified: etag is NULL. */
  struct dcmf_cache_header h2[] = {HDR("Last-Modified", DATE_T0)};
  assert_int_equal(put(c, URL2, 200, h2, NHDR(h2), "b", T0), 0);
  assert_int_equal(get_h(c, "GET", URL2, NULL, 0, T0, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  assert_null(hit.response->etag);
  assert_string_equal(hit.response->last_modified, DATE_T0);
  dcmf_cache_release(c, hit.entry);
  done(c);
}

static void test_etag_only_always_revalidates(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("ETag", "\"v1\"")};
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "app", T0), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(get(c, URL, T0 + (uint64_t)i * SEC),
                     DCMF_CACHE_STALE_REVALIDATE);
  /* Response no-cache with a validator behaves the same. */
  struct dcmf_cache_header h2[] = {
      HDR("Cache-Control", "no-cache, max-age=600"), HDR("ETag", "\"v1\"")};
  assert_int_equal(put(c, URL2, 200, h2, NHDR(h2), "app", T0), 0);
  assert_int_equal(get(c, URL2, T0), DCMF_CACHE_STALE_REVALIDATE);
  /* ...and max-age=0. */
  struct dcmf_cache_header h3[] = {HDR("Cache-Control", "max-age=0"),
                                   HDR("ETag", "\"v1\"")};
  assert_int_equal(put(c, URL3, 200, h3, NHDR(h3), "app", T0), 0);
  assert_int_equal(get(c, URL3, T0), DCMF_CACHE_STALE_REVALIDATE);
  done(c);
}

static void test_304_refresh(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {
      HDR("Cache-Control", "max-age=10"), HDR("ETag", "\"v1\""),
      HDR("Content-Type", "text/html"), HDR("Date", DATE_T0)};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "the-app", T0), 0);
  uint64_t t = T0 + 20 * SEC;
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, t, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  struct dcmf_cache_entry *e = hit.entry;
  struct dcmf_cache_header nm[] = {
      HDR("Cache-Control", "max-age=100"), HDR("ETag", "\"v1\""),
      HDR("Date", DATE_T0_120), HDR("Content-Type", "text/plain"),
      HDR("X-Upstream", "ignored")};
  assert_int_equal(dcmf_cache_update(c, &e, nm, NHDR(nm), t), 0);
  const struct dcmf_cache_response *r = dcmf_cache_entry_response(e);
  assert_int_equal(r->status, 200);
  assert_int_equal(r->body_len, 7);
  assert_memory_equal(r->body, "the-app", 7);
  assert_string_equal(find_hdr(r, "cache-control"), "max-age=100");
  assert_string_equal(find_hdr(r, "date"), DATE_T0_120);
  assert_string_equal(find_hdr(r, "content-type"), "text/html");
  assert_null(find_hdr(r, "x-upstream"));
  assert_int_equal(dcmf_cache_entry_age(e, t), 0);
  dcmf_cache_release(c, e);
  /* Age restarted at t; fresh for 100 s from there. */
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, t + 99 * SEC, &hit),
                   DCMF_CACHE_FRESH);
  assert_int_equal(hit.age_s, 99);
  assert_memory_equal(hit.response->body, "the-app", 7);
  dcmf_cache_release(c, hit.entry);
  assert_int_equal(get(c, URL, t + 100 * SEC), DCMF_CACHE_STALE_REVALIDATE);
  struct dcmf_cache_stats st;
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.revalidated_not_modified, 1);
  assert_int_equal(st.revalidations, 2);
  assert_int_equal(st.entries, 1);
  done(c);
}

static void test_304_age_and_expires(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("ETag", "\"v1\"")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "a", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  /* 304 without ETag, with Expires (no Date: counts from now) and Age. */
  struct dcmf_cache_header nm[] = {HDR("Expires", DATE_T0_120),
                                   HDR("Age", "20")};
  struct dcmf_cache_entry *e = hit.entry;
  assert_int_equal(dcmf_cache_update(c, &e, nm, NHDR(nm), T0), 0);
  assert_int_equal(dcmf_cache_entry_age(e, T0), 20);
  dcmf_cache_release(c, e);
  assert_int_equal(get(c, URL, T0 + 99 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL, T0 + 100 * SEC), DCMF_CACHE_STALE_REVALIDATE);
  done(c);
}

static void test_304_validator_mismatch(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("ETag", "\"v1\""),
                                  HDR("Last-Modified", DATE_T0)};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "a", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  struct dcmf_cache_entry *e = hit.entry;
  struct dcmf_cache_header bad[] = {HDR("ETag", "\"v2\"")};
  assert_int_equal(dcmf_cache_update(c, &e, bad, NHDR(bad), T0),
                   DCMF_ERR_INVALID);
  assert_ptr_equal(e, hit.entry);
  struct dcmf_cache_header badlm[] = {HDR("Last-Modified", DATE_T0_120)};
  assert_int_equal(dcmf_cache_update(c, &e, badlm, NHDR(badlm), T0),
                   DCMF_ERR_INVALID);
  /* Weak comparison: W/"v1" matches "v1". */
  struct dcmf_cache_header weak[] = {HDR("ETag", "W/\"v1\""),
                                     HDR("Cache-Control", "max-age=5")};
  assert_int_equal(dcmf_cache_update(c, &e, weak, NHDR(weak), T0), 0);
  assert_ptr_not_equal(e, hit.entry);
  assert_string_equal(dcmf_cache_entry_response(e)->etag, "W/\"v1\"");
  dcmf_cache_release(c, e);
  assert_int_equal(get(c, URL, T0 + 4 * SEC), DCMF_CACHE_FRESH);
  done(c);
}

static void test_304_no_store_uncaches(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("ETag", "\"v1\"")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "body", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  struct dcmf_cache_entry *e = hit.entry;
  struct dcmf_cache_header nm[] = {HDR("Cache-Control", "no-store")};
  assert_int_equal(dcmf_cache_update(c, &e, nm, NHDR(nm), T0), 0);
  /* The caller still serves the body it revalidated. */
  assert_memory_equal(dcmf_cache_entry_response(e)->body, "body", 4);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_MISS);
  struct dcmf_cache_stats st;
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.entries, 0);
  assert_true(st.bytes > 0);
  dcmf_cache_release(c, e);
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.bytes, 0);
  done(c);
}

static void test_update_after_replace(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("ETag", "\"v1\"")};
  struct dcmf_cache_header h2[] = {HDR("ETag", "\"v2\""),
                                   HDR("Cache-Control", "max-age=60")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "old", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  /* Another phone's fetch stores v2 meanwhile. */
  assert_int_equal(put(c, URL, 200, h2, NHDR(h2), "new", T0), 0);
  struct dcmf_cache_entry *e = hit.entry;
  struct dcmf_cache_header nm[] = {HDR("ETag", "\"v1\""),
                                   HDR("Cache-Control", "max-age=600")};
  assert_int_equal(dcmf_cache_update(c, &e, nm, NHDR(nm), T0), 0);
  assert_memory_equal(dcmf_cache_entry_response(e)->body, "old", 3);
  dcmf_cache_release(c, e);
  /* The newer entry stays. */
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit), DCMF_CACHE_FRESH);
  assert_memory_equal(hit.response->body, "new", 3);
  dcmf_cache_release(c, hit.entry);
  struct dcmf_cache_stats st;
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.entries, 1);
  done(c);
}

/* ---- what is not stored ----------------------------------------------- */

static void test_not_stored_response(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  static const struct dcmf_cache_header cases[][2] = {
      {HDR("Cache-Control", "no-store, max-age=60"), HDR("ETag", "\"a\"")},
      {HDR("Cache-Control", "private, max-age=60"), HDR("ETag", "\"a\"")},
      {HDR("Cache-Control", "max-age=60, private=\"x-user\""),
       HDR("ETag", "\"a\"")},
      {HDR("Cache-Control", "max-age=60"), HDR("Set-Cookie", "sid=1")},
      {HDR("Cache-Control", "max-age=60"), HDR("Vary", "Cookie")},
      {HDR("Cache-Control", "max-age=60"), HDR("Vary", "*")},
      {HDR("Cache-Control", "max-age=60"),
       HDR("Vary", "accept-encoding, user-agent")},
      {HDR("Cache-Control", "public"), HDR("Content-Type", "text/html")},
  };
  for (size_t i = 0; i < NHDR(cases); i++)
    assert_int_equal(put(c, URL, 200, cases[i], 2, "b", T0), DCMF_ERR_INVALID);
  struct dcmf_cache_header ok[] = {HDR("Cache-Control", "max-age=60"),
                                   HDR("ETag", "\"a\"")};
  static const unsigned bad_status[] = {201, 206, 302, 304, 307,
                                        400, 403, 500, 503};
  for (size_t i = 0; i < NHDR(bad_status); i++)
    assert_int_equal(put(c, URL, bad_status[i], ok, NHDR(ok), "b", T0),
                     DCMF_ERR_INVALID);
  static const unsigned good_status[] = {200, 203, 204, 300,
                                         301, 308, 404, 410};
  for (size_t i = 0; i < NHDR(good_status); i++) {
    assert_int_equal(put(c, URL, good_status[i], ok, NHDR(ok), "", T0), 0);
    struct dcmf_cache_hit hit;
    assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit), DCMF_CACHE_FRESH);
    assert_int_equal(hit.response->status, good_status[i]);
    assert_null(hit.response->body);
    assert_int_equal(hit.response->body_len, 0);
    dcmf_cache_release(c, hit.entry);
  }
  /* A validator is enough only for 200. */
  struct dcmf_cache_header et[] = {HDR("ETag", "\"a\"")};
  assert_int_equal(put(c, URL2, 404, et, NHDR(et), "b", T0), DCMF_ERR_INVALID);
  assert_int_equal(put(c, URL2, 301, et, NHDR(et), "b", T0), DCMF_ERR_INVALID);
  struct dcmf_cache_stats st;
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.stores, NHDR(good_status));
  done(c);
}

static void test_not_stored_request(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header ok[] = {HDR("Cache-Control", "public, max-age=60"),
                                   HDR("ETag", "\"a\"")};
  struct dcmf_cache_header auth[] = {HDR("Authorization", "Bearer x")};
  struct dcmf_cache_header ns[] = {HDR("Cache-Control", "no-store")};
  struct dcmf_cache_request r1 = {"GET", URL, auth, 1};
  struct dcmf_cache_request r2 = {"GET", URL, ns, 1};
  struct dcmf_cache_request r3 = {"HEAD", URL, NULL, 0};
  struct dcmf_cache_request r4 = {"POST", URL, NULL, 0};
  assert_int_equal(put_req(c, &r1, 200, ok, NHDR(ok), "b", T0),
                   DCMF_ERR_INVALID);
  assert_int_equal(put_req(c, &r2, 200, ok, NHDR(ok), "b", T0),
                   DCMF_ERR_INVALID);
  assert_int_equal(put_req(c, &r3, 200, ok, NHDR(ok), "b", T0),
                   DCMF_ERR_INVALID);
  assert_int_equal(put_req(c, &r4, 200, ok, NHDR(ok), "b", T0),
                   DCMF_ERR_INVALID);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_MISS);
  /* A refused request does not remove the entry others use. */
  assert_int_equal(put(c, URL, 200, ok, NHDR(ok), "b", T0), 0);
  assert_int_equal(put_req(c, &r1, 200, ok, NHDR(ok), "b", T0),
                   DCMF_ERR_INVALID);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_FRESH);
  done(c);
}

static void test_uncacheable_supersedes(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header ok[] = {HDR("ETag", "\"a\"")};
  struct dcmf_cache_header nostore[] = {HDR("Cache-Control", "no-store")};
  assert_int_equal(put(c, URL, 200, ok, NHDR(ok), "b", T0), 0);
  /* A 5xx does not touch the entry... */
  assert_int_equal(put(c, URL, 503, nostore, NHDR(nostore), "b", T0),
                   DCMF_ERR_INVALID);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_STALE_REVALIDATE);
  /* ...but a newer 200 that forbids storing removes it. */
  assert_int_equal(put(c, URL, 200, nostore, NHDR(nostore), "b", T0),
                   DCMF_ERR_INVALID);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_MISS);
  done(c);
}

/* ---- request directives ------------------------------------------------ */

static void test_request_no_cache(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=600"),
                                  HDR("ETag", "\"a\"")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "b", T0), 0);
  static const struct dcmf_cache_header reqs[][1] = {
      {HDR("Cache-Control", "no-cache")},
      {HDR("Cache-Control", "max-age=0")},
      {HDR("Pragma", "no-cache")},
  };
  for (size_t i = 0; i < NHDR(reqs); i++) {
    assert_int_equal(get_h(c, "GET", URL, reqs[i], 1, T0 + SEC, &hit),
                     DCMF_CACHE_STALE_REVALIDATE);
    assert_string_equal(hit.response->etag, "\"a\"");
    dcmf_cache_release(c, hit.entry);
  }
  /* Pragma is ignored when Cache-Control is present. */
  struct dcmf_cache_header both[] = {HDR("Pragma", "no-cache"),
                                     HDR("Cache-Control", "max-age=100")};
  assert_int_equal(get_h(c, "GET", URL, both, 2, T0 + SEC, &hit),
                   DCMF_CACHE_FRESH);
  dcmf_cache_release(c, hit.entry);
  /* Without a validator a forced revalidation is a MISS; the entry stays
   * fresh for everyone else. */
  struct dcmf_cache_header h2[] = {HDR("Cache-Control", "max-age=600")};
  assert_int_equal(put(c, URL2, 200, h2, NHDR(h2), "b", T0), 0);
  assert_int_equal(get_h(c, "GET", URL2, reqs[0], 1, T0, &hit),
                   DCMF_CACHE_MISS);
  assert_int_equal(get(c, URL2, T0), DCMF_CACHE_FRESH);
  done(c);
}

static void test_request_max_age_min_fresh(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=600"),
                                  HDR("ETag", "\"a\"")};
  struct dcmf_cache_header ma[] = {HDR("Cache-Control", "max-age=30")};
  struct dcmf_cache_header mf[] = {HDR("Cache-Control", "min-fresh=100")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "b", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, ma, 1, T0 + 30 * SEC, &hit),
                   DCMF_CACHE_FRESH);
  dcmf_cache_release(c, hit.entry);
  assert_int_equal(get_h(c, "GET", URL, ma, 1, T0 + 31 * SEC, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  dcmf_cache_release(c, hit.entry);
  assert_int_equal(get_h(c, "GET", URL, mf, 1, T0 + 500 * SEC, &hit),
                   DCMF_CACHE_FRESH);
  dcmf_cache_release(c, hit.entry);
  assert_int_equal(get_h(c, "GET", URL, mf, 1, T0 + 501 * SEC, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  dcmf_cache_release(c, hit.entry);
  done(c);
}

static void test_request_bypass(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=600")};
  struct dcmf_cache_header ns[] = {HDR("cache-control", "No-Store")};
  struct dcmf_cache_header au[] = {HDR("authorization", "Basic eDp5")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "b", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, ns, 1, T0, &hit), DCMF_CACHE_BYPASS);
  assert_int_equal(get_h(c, "GET", URL, au, 1, T0, &hit), DCMF_CACHE_BYPASS);
  assert_int_equal(get_h(c, "POST", URL, NULL, 0, T0, &hit), DCMF_CACHE_BYPASS);
  assert_int_equal(get_h(c, "get", URL, NULL, 0, T0, &hit), DCMF_CACHE_BYPASS);
  struct dcmf_cache_stats st;
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.bypasses, 4);
  assert_int_equal(st.hits, 0);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_FRESH);
  done(c);
}

static void test_head_from_get(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60"),
                                  HDR("Content-Type", "application/zip")};
  struct dcmf_cache_hit hit;
  assert_int_equal(get_h(c, "HEAD", URL, NULL, 0, T0, &hit), DCMF_CACHE_MISS);
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "PK\x03\x04zip", T0), 0);
  assert_int_equal(get_h(c, "HEAD", URL, NULL, 0, T0 + SEC, &hit),
                   DCMF_CACHE_FRESH);
  assert_int_equal(hit.response->body_len, 7);
  assert_string_equal(find_hdr(hit.response, "content-type"),
                      "application/zip");
  dcmf_cache_release(c, hit.entry);
  done(c);
}

static void test_vary_accept_encoding(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60"),
                                  HDR("Vary", "Accept-Encoding"),
                                  HDR("Content-Encoding", "gzip")};
  struct dcmf_cache_header gz[] = {HDR("Accept-Encoding", "gzip, br")};
  struct dcmf_cache_header id[] = {HDR("Accept-Encoding", "identity")};
  struct dcmf_cache_request rq = {"GET", URL, gz, 1};
  struct dcmf_cache_hit hit;
  assert_int_equal(put_req(c, &rq, 200, h, NHDR(h), "gz", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, gz, 1, T0, &hit), DCMF_CACHE_FRESH);
  assert_string_equal(find_hdr(hit.response, "vary"), "Accept-Encoding");
  assert_string_equal(find_hdr(hit.response, "content-encoding"), "gzip");
  dcmf_cache_release(c, hit.entry);
  assert_int_equal(get_h(c, "GET", URL, id, 1, T0, &hit), DCMF_CACHE_MISS);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit), DCMF_CACHE_MISS);
  /* A variant for a request without Accept-Encoding matches only that. */
  struct dcmf_cache_request rq2 = {"GET", URL2, NULL, 0};
  assert_int_equal(put_req(c, &rq2, 200, h, NHDR(h), "plain", T0), 0);
  assert_int_equal(get_h(c, "GET", URL2, NULL, 0, T0, &hit), DCMF_CACHE_FRESH);
  dcmf_cache_release(c, hit.entry);
  assert_int_equal(get_h(c, "GET", URL2, id, 1, T0, &hit), DCMF_CACHE_MISS);
  /* Without Vary, Accept-Encoding does not matter. */
  struct dcmf_cache_header nv[] = {HDR("Cache-Control", "max-age=60")};
  assert_int_equal(put_req(c, &rq, 200, nv, NHDR(nv), "x", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, id, 1, T0, &hit), DCMF_CACHE_FRESH);
  dcmf_cache_release(c, hit.entry);
  done(c);
}

static void test_stored_headers(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {
      HDR("Cache-Control", "max-age=60"),
      HDR("X-Trace", "abc"),
      HDR("CONTENT-TYPE", "  text/html; charset=utf-8\t"),
      HDR("Connection", "keep-alive"),
      HDR("Content-Length", "4"),
      HDR("Location", "https://ar.example.net/x"),
      HDR("Content-Language", "en")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 301, h, NHDR(h), "abcd", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit), DCMF_CACHE_FRESH);
  const struct dcmf_cache_response *r = hit.response;
  assert_int_equal(r->nheaders, 4);
  assert_string_equal(r->headers[0].name, "cache-control");
  assert_string_equal(r->headers[1].name, "content-type");
  assert_string_equal(r->headers[1].value, "text/html; charset=utf-8");
  assert_int_equal(r->headers[1].value_len, 24);
  assert_int_equal(r->headers[1].name_len, 12);
  assert_string_equal(find_hdr(r, "location"), "https://ar.example.net/x");
  assert_string_equal(find_hdr(r, "content-language"), "en");
  assert_null(find_hdr(r, "x-trace"));
  assert_null(find_hdr(r, "content-length"));
  dcmf_cache_release(c, hit.entry);
  done(c);
}

/* ---- bounds, eviction, references -------------------------------------- */

static char big_body[8192];

/* Stores |len| bytes of 'a'+|tag| with a Content-Length. */
static int put_big(struct dcmf_cache *c, const char *url, size_t len,
                   char tag) {
  char cl[24];
  snprintf(cl, sizeof(cl), "%zu", len);
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=600"),
                                  {"Content-Length", 14, cl, strlen(cl)}};
  struct dcmf_cache_request rq = {"GET", url, NULL, 0};
  struct dcmf_cache_store *st;
  int rv = dcmf_cache_store_begin(c, &rq, 200, h, 2, T0, &st);
  if (rv != 0)
    return rv;
  memset(big_body, 'a' + tag, len);
  rv = dcmf_cache_store_append(c, st, big_body, len);
  int crv = dcmf_cache_store_commit(c, st);
  return rv != 0 ? rv : crv;
}

static void test_lru_eviction(void **state) {
  (void)state;
  /* Room for two 3000-byte entries, not three. */
  struct dcmf_cache *c = mk(8000, 5000, 64);
  struct dcmf_cache_stats st;
  assert_int_equal(put_big(c, URL, 3000, 0), 0);
  assert_int_equal(put_big(c, URL2, 3000, 1), 0);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_FRESH); /* URL2 now LRU */
  assert_int_equal(put_big(c, URL3, 3000, 2), 0);
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.evictions, 1);
  assert_int_equal(st.entries, 2);
  assert_true(st.bytes <= 8000);
  assert_true(st.bytes >= 6000);
  assert_int_equal(get(c, URL2, T0), DCMF_CACHE_MISS);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL3, T0), DCMF_CACHE_FRESH);
  done(c);
}

static void test_in_use_not_evicted(void **state) {
  (void)state;
  struct dcmf_cache *c = mk(8000, 5000, 64);
  struct dcmf_cache_hit a, b;
  assert_int_equal(put_big(c, URL, 3000, 0), 0);
  assert_int_equal(put_big(c, URL2, 3000, 1), 0);
  /* Hold URL (least recently used); touch URL2 after it. */
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &a), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL2, T0), DCMF_CACHE_FRESH);
  assert_int_equal(put_big(c, URL3, 3000, 2), 0);
  /* URL was LRU but held, so URL2 went. */
  assert_int_equal(get(c, URL2, T0), DCMF_CACHE_MISS);
  assert_int_equal(a.response->body[0], 'a');
  assert_int_equal(a.response->body[2999], 'a');
  /* With both remaining entries held, nothing can make room. */
  assert_int_equal(get_h(c, "GET", URL3, NULL, 0, T0, &b), DCMF_CACHE_FRESH);
  assert_int_equal(put_big(c, URL2, 3000, 1), DCMF_ERR_EXHAUSTED);
  dcmf_cache_release(c, b.entry);
  dcmf_cache_release(c, a.entry);
  assert_int_equal(put_big(c, URL2, 3000, 1), 0);
  struct dcmf_cache_stats st;
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.entries, 2);
  assert_true(st.bytes <= 8000);
  done(c);
}

static void test_replace_while_in_use(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60")};
  struct dcmf_cache_hit a, b;
  struct dcmf_cache_stats st;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "version-1", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &a), DCMF_CACHE_FRESH);
  dcmf_cache_entry_ref(a.entry); /* a second reader of the same entry */
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "version-2", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &b), DCMF_CACHE_FRESH);
  assert_memory_equal(b.response->body, "version-2", 9);
  assert_memory_equal(a.response->body, "version-1", 9);
  dcmf_cache_get_stats(c, &st);
  size_t both = st.bytes;
  dcmf_cache_release(c, a.entry);
  assert_memory_equal(a.response->body, "version-1", 9);
  dcmf_cache_release(c, a.entry);
  dcmf_cache_get_stats(c, &st);
  assert_true(st.bytes < both);
  assert_int_equal(st.entries, 1);
  /* Invalidation while held works the same way. */
  assert_int_equal(dcmf_cache_invalidate(c, URL), 0);
  assert_int_equal(dcmf_cache_invalidate(c, URL), DCMF_ERR_NOT_FOUND);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_MISS);
  assert_memory_equal(b.response->body, "version-2", 9);
  dcmf_cache_release(c, b.entry);
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.bytes, 0);
  assert_int_equal(st.entries, 0);
  done(c);
}

static void test_max_entries(void **state) {
  (void)state;
  struct dcmf_cache *c = mk((size_t)1 << 20, (size_t)64 << 10, 2);
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60")};
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "1", T0), 0);
  assert_int_equal(put(c, URL2, 200, h, NHDR(h), "2", T0), 0);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_FRESH);
  assert_int_equal(put(c, URL3, 200, h, NHDR(h), "3", T0), 0);
  assert_int_equal(get(c, URL2, T0), DCMF_CACHE_MISS);
  /* Replacing an entry does not count as a new one. */
  assert_int_equal(put(c, URL3, 200, h, NHDR(h), "3b", T0), 0);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_FRESH);
  struct dcmf_cache_stats st;
  dcmf_cache_get_stats(c, &st);
  assert_int_equal(st.entries, 2);
  assert_int_equal(st.evictions, 1);
  done(c);
}

static void test_many_entries_index(void **state) {
  (void)state;
  struct dcmf_cache *c = mk((size_t)16 << 20, (size_t)64 << 10, 1000);
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60")};
  char url[64];
  for (int i = 0; i < 1500; i++) {
    snprintf(url, sizeof(url), "https://ar.example.net/a/%d", i);
    assert_int_equal(put(c, url, 200, h, NHDR(h), url, T0), 0);
  }
  for (int i = 0; i < 1500; i++) {
    struct dcmf_cache_hit hit;
    snprintf(url, sizeof(url), "https://ar.example.net/a/%d", i);
    enum dcmf_cache_outcome o = get_h(c, "GET", url, NULL, 0, T0, &hit);
    assert_int_equal(o, i < 500 ? DCMF_CACHE_MISS : DCMF_CACHE_FRESH);
    if (hit.entry != NULL) {
      assert_int_equal(hit.response->body_len, strlen(url));
      assert_memory_equal(hit.response->body, url, strlen(url));
      dcmf_cache_release(c, hit.entry);
    }
  }
  done(c);
}

/* ---- incremental store, limits ------------------------------------------ */

static void test_chunked_body(void **state) {
  (void)state;
  struct dcmf_cache *c = mk((size_t)1 << 20, (size_t)256 << 10, 8);
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60")};
  struct dcmf_cache_request rq = {"GET", URL, NULL, 0};
  struct dcmf_cache_store *st;
  static uint8_t want[100000];
  size_t off = 0;
  for (size_t i = 0; i < sizeof(want); i++)
    want[i] = (uint8_t)(i * 7 + 3);
  assert_int_equal(dcmf_cache_store_begin(c, &rq, 200, h, NHDR(h), T0, &st), 0);
  /* A pending store is invisible. */
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_MISS);
  for (size_t n = 1; off < sizeof(want); n = n * 3 % 4093 + 1) {
    size_t k = n < sizeof(want) - off ? n : sizeof(want) - off;
    assert_int_equal(dcmf_cache_store_append(c, st, want + off, k), 0);
    assert_int_equal(dcmf_cache_store_append(c, st, want, 0), 0);
    off += k;
  }
  assert_int_equal(dcmf_cache_store_commit(c, st), 0);
  struct dcmf_cache_hit hit;
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit), DCMF_CACHE_FRESH);
  assert_int_equal(hit.response->body_len, sizeof(want));
  assert_memory_equal(hit.response->body, want, sizeof(want));
  dcmf_cache_release(c, hit.entry);
  struct dcmf_cache_stats s;
  dcmf_cache_get_stats(c, &s);
  /* The buffer was shrunk to fit on commit. */
  assert_true(s.bytes < sizeof(want) + 1024);
  done(c);
}

static void test_entry_limit_append(void **state) {
  (void)state;
  struct dcmf_cache *c = mk(100000, 5000, 8);
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60")};
  struct dcmf_cache_request rq = {"GET", URL, NULL, 0};
  struct dcmf_cache_store *st;
  struct dcmf_cache_stats s;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "old", T0), 0);
  memset(big_body, 'z', 3000);
  assert_int_equal(dcmf_cache_store_begin(c, &rq, 200, h, NHDR(h), T0, &st), 0);
  assert_int_equal(dcmf_cache_store_append(c, st, big_body, 3000), 0);
  assert_int_equal(dcmf_cache_store_append(c, st, big_body, 3000),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_cache_store_append(c, st, big_body, 1),
                   DCMF_ERR_TOO_LARGE);
  /* The body is freed at once; the old, superseded entry is gone. */
  dcmf_cache_get_stats(c, &s);
  assert_true(s.bytes < 1000);
  assert_int_equal(s.entries, 0);
  assert_int_equal(dcmf_cache_store_commit(c, st), DCMF_ERR_TOO_LARGE);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_MISS);
  dcmf_cache_get_stats(c, &s);
  assert_int_equal(s.bytes, 0);
  assert_int_equal(s.stores, 1);
  /* Failing then abandoning is fine too. */
  assert_int_equal(dcmf_cache_store_begin(c, &rq, 200, h, NHDR(h), T0, &st), 0);
  assert_int_equal(dcmf_cache_store_append(c, st, big_body, 6000),
                   DCMF_ERR_TOO_LARGE);
  dcmf_cache_store_abandon(c, st);
  dcmf_cache_get_stats(c, &s);
  assert_int_equal(s.bytes, 0);
  done(c);
}

static void test_entry_limit_content_length(void **state) {
  (void)state;
  struct dcmf_cache *c = mk(100000, 5000, 8);
  assert_int_equal(put_big(c, URL, 4000, 0), 0);
  assert_int_equal(put_big(c, URL, 5000, 0), DCMF_ERR_TOO_LARGE);
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_MISS);
  struct dcmf_cache_header h[] = {
      HDR("Cache-Control", "max-age=60"),
      HDR("Content-Length", "99999999999999999999999999")};
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "x", T0), DCMF_ERR_TOO_LARGE);
  /* A huge header value is counted as well. */
  static char v[6000];
  memset(v, 'v', sizeof(v));
  struct dcmf_cache_header h2[] = {HDR("Cache-Control", "max-age=60"),
                                   {"Content-Type", 12, v, sizeof(v)}};
  assert_int_equal(put(c, URL, 200, h2, NHDR(h2), "x", T0), DCMF_ERR_TOO_LARGE);
  struct dcmf_cache_stats s;
  dcmf_cache_get_stats(c, &s);
  assert_int_equal(s.bytes, 0);
  done(c);
}

static void test_abandon_keeps_old(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=60")};
  struct dcmf_cache_request rq = {"GET", URL, NULL, 0};
  struct dcmf_cache_store *st;
  struct dcmf_cache_stats s;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "old", T0), 0);
  dcmf_cache_get_stats(c, &s);
  size_t before = s.bytes;
  assert_int_equal(dcmf_cache_store_begin(c, &rq, 200, h, NHDR(h), T0, &st), 0);
  assert_int_equal(dcmf_cache_store_append(c, st, "partial", 7), 0);
  dcmf_cache_get_stats(c, &s);
  assert_true(s.bytes > before); /* pending bytes are counted */
  dcmf_cache_store_abandon(c, st);
  dcmf_cache_get_stats(c, &s);
  assert_int_equal(s.bytes, before);
  struct dcmf_cache_hit hit;
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit), DCMF_CACHE_FRESH);
  assert_memory_equal(hit.response->body, "old", 3);
  dcmf_cache_release(c, hit.entry);
  done(c);
}

/* ---- counters, clock, teardown ------------------------------------------ */

static void test_counters(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=10"),
                                  HDR("ETag", "\"c\"")};
  struct dcmf_cache_header nm[] = {HDR("Cache-Control", "max-age=10")};
  struct dcmf_cache_header ns[] = {HDR("Cache-Control", "no-store")};
  struct dcmf_cache_hit hit;
  struct dcmf_cache_stats s;
  assert_int_equal(get(c, URL, T0), DCMF_CACHE_MISS);
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "body", T0), 0);
  assert_int_equal(get(c, URL, T0 + SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get(c, URL, T0 + 2 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0 + 10 * SEC, &hit),
                   DCMF_CACHE_STALE_REVALIDATE);
  struct dcmf_cache_entry *e = hit.entry;
  assert_int_equal(dcmf_cache_update(c, &e, nm, NHDR(nm), T0 + 10 * SEC), 0);
  dcmf_cache_release(c, e);
  assert_int_equal(get(c, URL, T0 + 11 * SEC), DCMF_CACHE_FRESH);
  assert_int_equal(get_h(c, "GET", URL, ns, 1, T0, &hit), DCMF_CACHE_BYPASS);
  dcmf_cache_get_stats(c, &s);
  assert_int_equal(s.hits, 3);
  assert_int_equal(s.misses, 1);
  assert_int_equal(s.bypasses, 1);
  assert_int_equal(s.revalidations, 1);
  assert_int_equal(s.revalidated_not_modified, 1);
  assert_int_equal(s.stores, 1);
  assert_int_equal(s.evictions, 0);
  assert_int_equal(s.entries, 1);
  assert_true(s.bytes > 4);
  assert_int_equal(dcmf_cache_invalidate(c, URL), 0);
  dcmf_cache_get_stats(c, &s);
  assert_int_equal(s.bytes, 0);
  assert_int_equal(s.entries, 0);
  done(c);
}

static void test_clock_backwards(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=10")};
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "b", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0 - 3600 * SEC, &hit),
                   DCMF_CACHE_FRESH);
  assert_int_equal(hit.age_s, 0);
  dcmf_cache_release(c, hit.entry);
  done(c);
}

static void test_del_with_outstanding(void **state) {
  (void)state;
  struct dcmf_cache *c = mk_default();
  struct dcmf_cache_header h[] = {HDR("Cache-Control", "max-age=10")};
  struct dcmf_cache_request rq = {"GET", URL2, NULL, 0};
  struct dcmf_cache_store *st;
  struct dcmf_cache_hit hit;
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "b", T0), 0);
  assert_int_equal(get_h(c, "GET", URL, NULL, 0, T0, &hit), DCMF_CACHE_FRESH);
  assert_int_equal(put(c, URL, 200, h, NHDR(h), "c", T0), 0); /* detaches */
  assert_int_equal(dcmf_cache_store_begin(c, &rq, 200, h, NHDR(h), T0, &st), 0);
  assert_int_equal(dcmf_cache_store_append(c, st, "x", 1), 0);
  dcmf_cache_del(c); /* frees all three; ASan checks for leaks */
}

/* An allocator that fails the |fail_at|th call (0-based). */
struct fail_mem {
  int calls;
  int fail_at;
};

static void *fm_malloc(size_t size, void *user) {
  struct fail_mem *fm = user;
  return fm->calls++ == fm->fail_at ? NULL : malloc(size);
}

static void *fm_realloc(void *ptr, size_t size, void *user) {
  struct fail_mem *fm = user;
  return fm->calls++ == fm->fail_at ? NULL : realloc(ptr, size);
}

static void fm_free(void *ptr, void *user) {
  (void)user;
  free(ptr);
}

/* Runs a full scenario; returns 1 if every step succeeded. */
static int scenario(struct fail_mem *fm) {
  struct dcmf_cache_mem mem = {fm_malloc, fm_realloc, fm_free, fm};
  struct dcmf_cache_settings s;
  struct dcmf_cache *c;
  struct dcmf_cache_header h[] = {HDR("ETag", "\"a\""),
                                  HDR("Cache-Control", "max-age=10")};
  struct dcmf_cache_header nm[] = {HDR("Cache-Control", "max-age=100")};
  struct dcmf_cache_request rq = {"GET", URL, NULL, 0};
  struct dcmf_cache_store *st;
  struct dcmf_cache_hit hit;
  int ok = 1, rv;
  dcmf_cache_settings_default(&s);
  rv = dcmf_cache_new(&c, &s, &mem);
  if (rv != 0) {
    assert_int_equal(rv, DCMF_ERR_NOMEM);
    return 0;
  }
  char url[64];
  for (int i = 0; i < 20; i++) { /* enough to grow the index */
    snprintf(url, sizeof(url), "https://ar.example.net/f/%d", i);
    rv = put(c, url, 200, h, NHDR(h), "x", T0);
    if (rv != 0) {
      assert_int_equal(rv, DCMF_ERR_NOMEM);
      ok = 0;
    }
  }
  rv = dcmf_cache_store_begin(c, &rq, 200, h, NHDR(h), T0, &st);
  if (rv == 0) {
    for (int i = 0; i < 50; i++) {
      rv = dcmf_cache_store_append(c, st, big_body, 100);
      if (rv != 0) {
        assert_int_equal(rv, DCMF_ERR_NOMEM);
        ok = 0;
      }
    }
    rv = dcmf_cache_store_commit(c, st);
  }
  if (rv != 0) {
    assert_int_equal(rv, DCMF_ERR_NOMEM);
    ok = 0;
  }
  if (get_h(c, "GET", URL, NULL, 0, T0 + 20 * SEC, &hit) ==
      DCMF_CACHE_STALE_REVALIDATE) {
    struct dcmf_cache_entry *e = hit.entry;
    rv = dcmf_cache_update(c, &e, nm, NHDR(nm), T0 + 20 * SEC);
    if (rv != 0) {
      assert_int_equal(rv, DCMF_ERR_NOMEM);
      ok = 0;
    }
    dcmf_cache_release(c, e);
  } else {
    ok = 0;
  }
  dcmf_cache_del(c);
  return ok;
}

static void test_failing_allocator(void **state) {
  (void)state;
  struct fail_mem fm;
  int n;
  for (n = 0; n < 1000; n++) {
    fm.calls = 0;
    fm.fail_at = n;
    if (scenario(&fm) && fm.calls <= n)
      break;
  }
  assert_true(n > 10);
  assert_true(n < 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_http_date_valid),
      cmocka_unit_test(test_http_date_invalid),
      cmocka_unit_test(test_new_invalid_settings),
      cmocka_unit_test(test_fresh_max_age),
      cmocka_unit_test(test_fresh_s_maxage),
      cmocka_unit_test(test_expires_date),
      cmocka_unit_test(test_expires_without_date),
      cmocka_unit_test(test_bad_dates_stale),
      cmocka_unit_test(test_age_header),
      cmocka_unit_test(test_cache_control_parsing),
      cmocka_unit_test(test_stale_conditional_values),
      cmocka_unit_test(test_etag_only_always_revalidates),
      cmocka_unit_test(test_304_refresh),
      cmocka_unit_test(test_304_age_and_expires),
      cmocka_unit_test(test_304_validator_mismatch),
      cmocka_unit_test(test_304_no_store_uncaches),
      cmocka_unit_test(test_update_after_replace),
      cmocka_unit_test(test_not_stored_response),
      cmocka_unit_test(test_not_stored_request),
      cmocka_unit_test(test_uncacheable_supersedes),
      cmocka_unit_test(test_request_no_cache),
      cmocka_unit_test(test_request_max_age_min_fresh),
      cmocka_unit_test(test_request_bypass),
      cmocka_unit_test(test_head_from_get),
      cmocka_unit_test(test_vary_accept_encoding),
      cmocka_unit_test(test_stored_headers),
      cmocka_unit_test(test_lru_eviction),
      cmocka_unit_test(test_in_use_not_evicted),
      cmocka_unit_test(test_replace_while_in_use),
      cmocka_unit_test(test_max_entries),
      cmocka_unit_test(test_many_entries_index),
      cmocka_unit_test(test_chunked_body),
      cmocka_unit_test(test_entry_limit_append),
      cmocka_unit_test(test_entry_limit_content_length),
      cmocka_unit_test(test_abandon_keeps_old),
      cmocka_unit_test(test_counters),
      cmocka_unit_test(test_clock_backwards),
      cmocka_unit_test(test_del_with_outstanding),
      cmocka_unit_test(test_failing_allocator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
