/*
 * cache.h - the shared HTTP cache in front of the HTTP-proxy upstreams
 * (DCSF, application repository), after RFC 9111 for a shared cache.
 * Pure engine: no I/O, no clock (every call that needs the time takes
 * |now_ms|, wall-clock milliseconds since the Unix epoch), no globals.
 *
 * Use from the proxy glue:
 *
 *   dcmf_cache_lookup()      MISS or BYPASS: forward the request. FRESH:
 *                            serve the stored response. STALE_REVALIDATE:
 *                            forward with If-None-Match / If-Modified-Since
 *                            taken from the stored ETag / Last-Modified.
 *   upstream answers 304     dcmf_cache_update(), then serve the stored
 *                            response it hands back.
 *   upstream answers other   dcmf_cache_store_begin(), _append() per body
 *                            chunk as it streams, _commit() at the end (or
 *                            _abandon() if the upstream fails). A commit
 *                            replaces any entry for the same URL.
 *   unsafe method answered   dcmf_cache_invalidate() (RFC 9111 4.4).
 *   done serving a hit       dcmf_cache_release().
 *
 * Decisions, all deliberate simplifications of RFC 9111:
 * - The key is the absolute upstream URL, compared byte for byte (the
 *   glue normalises it). Only GET responses are stored; HEAD is answered
 *   from the GET entry. Other methods bypass the cache.
 * - Vary: a response whose Vary names anything but Accept-Encoding (or is
 *   "*") is not stored. With "Vary: Accept-Encoding" the entry remembers
 *   the first Accept-Encoding field of the request that filled it and is
 *   only used for requests with the same field, byte for byte (absent
 *   matches only absent). One variant per URL: a new one replaces the old.
 * - Storable: status 200, 203, 204, 300, 301, 308, 404 or 410 with a
 *   positive explicit freshness lifetime, or status 200 with a validator
 *   (ETag or Last-Modified) so it can be revalidated. Never stored: a
 *   response with Cache-Control no-store or private (also the field-name
 *   forms), with Set-Cookie (it would hand one phone's cookie to all), or
 *   to a request with Authorization or Cache-Control no-store.
 * - Freshness lifetime: s-maxage, else max-age, else Expires minus Date.
 *   Dates must be IMF-fixdate; any other form, or an invalid directive
 *   value, makes the response stale at once. A missing Date means the
 *   time the response arrived. There is no heuristic freshness: without
 *   explicit freshness the lifetime is 0. Response no-cache (also the
 *   field-name form) means lifetime 0, i.e. revalidate on every use.
 * - Age: the upstream Age header plus the time since the response
 *   arrived. Date is not used to estimate age (clock skew between
 *   upstreams and us would make entries stale early).
 * - Stale responses are never served (so must-revalidate and
 *   proxy-revalidate change nothing, and request max-stale is ignored). A
 *   stale entry without a validator is removed on lookup (MISS).
 * - Request Cache-Control: no-store (or Authorization) gives BYPASS;
 *   no-cache, max-age=0 or "Pragma: no-cache" (without Cache-Control)
 *   force revalidation (or MISS if the entry has no validator; the entry
 *   stays for other phones); max-age=N and min-fresh=N are honoured.
 * - Stored headers are a fixed allow-list: Cache-Control,
 *   Content-Disposition, Content-Encoding, Content-Language,
 *   Content-Location, Content-Type, Date, ETag, Expires, Last-Modified,
 *   Location and Vary, with lower-case names. The glue adds
 *   Content-Length from the body and Age from the lookup.
 * - Bounds: settings.max_bytes covers every byte the cache allocates for
 *   entries (bookkeeping, URL, headers, body capacity), including bodies
 *   still streaming in and entries held by readers after being replaced;
 *   the hash-table buckets are not counted. Room is made by evicting the
 *   least recently used entries that no reader holds; an entry in use is
 *   never evicted.
 * - A 304 replaces the stored Cache-Control, Date, ETag, Expires and
 *   Last-Modified fields (others describe the stored body and are kept)
 *   and restarts the age from the 304's own Age.
 * - Concurrent misses for one URL each go upstream (no request
 *   collapsing); the last commit wins.
 */
#ifndef DCMF_CACHE_H
#define DCMF_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* One header field. Neither string needs a NUL terminator. */
struct dcmf_cache_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};

/*
 * A request as the proxy will forward it. Everything is borrowed for the
 * length of the call. |method| and |url| are NUL-terminated; |url| is the
 * absolute upstream URL. The cache reads Cache-Control, Pragma,
 * Authorization and Accept-Encoding from |headers| (names in any case).
 */
struct dcmf_cache_request {
  const char *method;
  const char *url;
  const struct dcmf_cache_header *headers;
  size_t nheaders;
};

/*
 * A stored response, owned by the cache. All pointers stay valid while the
 * caller holds a reference to the entry. Header names are the lower-case
 * allow-list names; values have surrounding white space removed and are
 * also NUL-terminated. |etag| and |last_modified| point at the first such
 * header value (NUL-terminated) or are NULL; they are the validators for
 * If-None-Match and If-Modified-Since.
 */
struct dcmf_cache_response {
  unsigned status;
  const struct dcmf_cache_header *headers;
  size_t nheaders;
  const uint8_t *body; /* NULL when |body_len| is 0 */
  size_t body_len;
  const char *etag;
  const char *last_modified;
};

enum dcmf_cache_outcome {
  /* Nothing usable: forward the request; the response may be stored. */
  DCMF_CACHE_MISS,
  /* The request must not use the cache (method, no-store,
   * Authorization): forward it; do not store the response. */
  DCMF_CACHE_BYPASS,
  /* Serve the stored response (headers only for HEAD). */
  DCMF_CACHE_FRESH,
  /* Send a conditional request with the stored validators. */
  DCMF_CACHE_STALE_REVALIDATE,
};

struct dcmf_cache_entry;
struct dcmf_cache_store;
struct dcmf_cache;

/*
 * The result of a lookup. For FRESH and STALE_REVALIDATE |entry| is a
 * reference the caller must give back with dcmf_cache_release() and
 * |response| is that entry's response; otherwise both are NULL. |age_s|
 * is the entry's current age in seconds, for the Age header (0 without an
 * entry).
 */
struct dcmf_cache_hit {
  enum dcmf_cache_outcome outcome;
  struct dcmf_cache_entry *entry;
  const struct dcmf_cache_response *response;
  uint64_t age_s;
};

struct dcmf_cache_settings {
  /* Total bytes held for entries; see "Bounds" above. */
  size_t max_bytes;
  /* Largest single entry: bookkeeping, URL, stored headers and body. */
  size_t max_entry_bytes;
  /* Most entries findable by lookup. */
  size_t max_entries;
  /* SipHash key for the URL index; fill from a random source so that
   * phones cannot choose URLs that collide. All zero works in tests. */
  uint8_t hash_key[16];
};

/*
 * Allocator. |malloc|, |realloc| and |free| behave like the C library
 * functions, with |user| passed through.
 */
struct dcmf_cache_mem {
  void *(*malloc)(size_t size, void *user);
  void *(*realloc)(void *ptr, size_t size, void *user);
  void (*free)(void *ptr, void *user);
  void *user;
};

struct dcmf_cache_stats {
  uint64_t hits;                     /* lookups answered FRESH */
  uint64_t misses;                   /* lookups answered MISS */
  uint64_t bypasses;                 /* lookups answered BYPASS */
  uint64_t revalidations;            /* lookups answered STALE_REVALIDATE */
  uint64_t revalidated_not_modified; /* successful dcmf_cache_update() */
  uint64_t stores;                   /* successful commits */
  uint64_t evictions;                /* entries evicted to make room (LRU) */
  size_t bytes;   /* bytes currently held, see settings.max_bytes */
  size_t entries; /* entries currently findable */
};

/*
 * Fills |settings| with defaults: 64 MiB in all, 8 MiB per entry, 4096
 * entries, all-zero hash key.
 */
void dcmf_cache_settings_default(struct dcmf_cache_settings *settings);

/*
 * Creates a cache in |*pcache|. |settings| is copied. |mem| is copied, or
 * NULL for the C library allocator.
 *
 * Returns 0, DCMF_ERR_INVALID (a limit is 0, or max_entry_bytes exceeds
 * max_bytes) or DCMF_ERR_NOMEM.
 */
int dcmf_cache_new(struct dcmf_cache **pcache,
                   const struct dcmf_cache_settings *settings,
                   const struct dcmf_cache_mem *mem);

/*
 * Frees |cache| and everything in it. Callers release every entry and
 * finish every store first; any left are freed here too, and their
 * pointers become invalid. |cache| may be NULL.
 */
void dcmf_cache_del(struct dcmf_cache *cache);

/*
 * Looks |req| up at time |now_ms| and fills |hit| (see the outcomes).
 * FRESH and STALE_REVALIDATE take a reference and make the entry the most
 * recently used. A lookup never fails.
 */
void dcmf_cache_lookup(struct dcmf_cache *cache,
                       const struct dcmf_cache_request *req, uint64_t now_ms,
                       struct dcmf_cache_hit *hit);

/*
 * Takes another reference to |entry|, for a second reader.
 */
void dcmf_cache_entry_ref(struct dcmf_cache_entry *entry);

/*
 * Gives back one reference to |entry|. An entry that was replaced, evicted
 * or invalidated while referenced is freed when its last reference goes.
 */
void dcmf_cache_release(struct dcmf_cache *cache,
                        struct dcmf_cache_entry *entry);

/*
 * Returns |entry|'s response, valid while the reference is held.
 */
const struct dcmf_cache_response *
dcmf_cache_entry_response(const struct dcmf_cache_entry *entry);

/*
 * Returns |entry|'s current age in whole seconds at |now_ms|.
 */
uint64_t dcmf_cache_entry_age(const struct dcmf_cache_entry *entry,
                              uint64_t now_ms);

/*
 * Applies a 304 (Not Modified) answer to a revalidation. |*pentry| is the
 * caller's reference from a STALE_REVALIDATE lookup; |headers| (|nheaders|
 * fields, borrowed for the call) are the 304's headers, received at
 * |now_ms|. The stored Cache-Control, Date, ETag, Expires and
 * Last-Modified are replaced by the 304's (where it has them), freshness
 * is recomputed and the age restarts from the 304's Age (0 if absent).
 * The refreshed entry replaces the old one in the index (if the old one
 * was still there) unless the result says no-store or private, in which
 * case the URL is no longer cached.
 *
 * On success the caller's reference moves to the refreshed entry: |*pentry|
 * is released and set to it, and the caller serves its response.
 *
 * Returns 0; DCMF_ERR_INVALID if the 304's ETag does not match the stored
 * one (weak comparison) or, without an ETag, its Last-Modified differs
 * from the stored one: the stored response is not the one the upstream
 * confirmed, so the caller should repeat the request unconditionally;
 * DCMF_ERR_TOO_LARGE if the merged headers exceed max_entry_bytes;
 * DCMF_ERR_EXHAUSTED if no room could be made in max_bytes;
 * DCMF_ERR_NOMEM. On error |*pentry| is unchanged and still held (the
 * caller may still serve it).
 */
int dcmf_cache_update(struct dcmf_cache *cache,
                      struct dcmf_cache_entry **pentry,
                      const struct dcmf_cache_header *headers, size_t nheaders,
                      uint64_t now_ms);

/*
 * Starts storing the response to |req| (status |status|, |nheaders|
 * |headers|), whose headers arrived at |now_ms|. Everything is borrowed
 * for the call; the allow-listed headers and the URL are copied. A
 * Content-Length header is used to size the body buffer and to refuse
 * early. On success |*pstore| is a pending store that the caller feeds
 * with dcmf_cache_store_append() and finishes with exactly one of
 * dcmf_cache_store_commit() or dcmf_cache_store_abandon(). A pending
 * store is not visible to lookups.
 *
 * If the response is not storable only because of itself (a storable
 * status, but no-store, private, Set-Cookie, an unsupported Vary, or
 * neither freshness nor a usable validator), any entry for the URL is
 * removed: the upstream's current answer supersedes it.
 *
 * Returns 0; DCMF_ERR_INVALID if the response is not storable (see the
 * decisions at the top); DCMF_ERR_TOO_LARGE if the entry (with the
 * Content-Length, if given) would exceed max_entry_bytes, which also
 * removes any entry for the URL; DCMF_ERR_EXHAUSTED if no room could be
 * made in max_bytes; DCMF_ERR_NOMEM. On error |*pstore| is NULL.
 */
int dcmf_cache_store_begin(struct dcmf_cache *cache,
                           const struct dcmf_cache_request *req,
                           unsigned status,
                           const struct dcmf_cache_header *headers,
                           size_t nheaders, uint64_t now_ms,
                           struct dcmf_cache_store **pstore);

/*
 * Appends |len| bytes of body (copied) to |store|.
 *
 * Returns 0; DCMF_ERR_TOO_LARGE if the entry would exceed
 * max_entry_bytes; DCMF_ERR_EXHAUSTED if no room could be made in
 * max_bytes; DCMF_ERR_NOMEM. After an error the store has failed: its body
 * is freed at once, every later append returns the same error and commit
 * returns it too, so the caller may keep streaming to the phone and finish
 * the store as usual. TOO_LARGE also removes any entry for the URL.
 */
int dcmf_cache_store_append(struct dcmf_cache *cache,
                            struct dcmf_cache_store *store, const void *data,
                            size_t len);

/*
 * Finishes |store| (the body is complete) and makes it the entry for its
 * URL, replacing any previous one, evicting as needed to keep within
 * max_entries. |store| is consumed in all cases.
 *
 * Returns 0, the error that failed the store earlier, or
 * DCMF_ERR_EXHAUSTED if every entry is in use and max_entries is reached.
 */
int dcmf_cache_store_commit(struct dcmf_cache *cache,
                            struct dcmf_cache_store *store);

/*
 * Drops |store| (upstream failed or the caller gave up); nothing is
 * stored and an existing entry stays. |store| is consumed.
 */
void dcmf_cache_store_abandon(struct dcmf_cache *cache,
                              struct dcmf_cache_store *store);

/*
 * Removes the entry for |url| (NUL-terminated), as after a successful
 * unsafe request (POST, PUT, DELETE) to it. A referenced entry stays
 * valid for its readers. Returns 0 or DCMF_ERR_NOT_FOUND.
 */
int dcmf_cache_invalidate(struct dcmf_cache *cache, const char *url);

/* Copies the counters into |stats|. */
void dcmf_cache_get_stats(const struct dcmf_cache *cache,
                          struct dcmf_cache_stats *stats);

/*
 * Parses |len| bytes at |text| as an IMF-fixdate ("Sun, 06 Nov 1994
 * 08:49:37 GMT", RFC 9110 5.6.7) into seconds since the Unix epoch in
 * |*secs|. The obsolete RFC 850 and asctime forms are rejected.
 * Returns 0 or DCMF_ERR_MALFORMED.
 */
int dcmf_cache_parse_http_date(const char *text, size_t len, int64_t *secs);

#endif
