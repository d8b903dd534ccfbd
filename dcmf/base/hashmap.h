/*
 * hashmap.h - an intrusive chained hash table (layer "base").
 *
 * The caller embeds a struct dcmf_hashmap_entry in each object it files
 * and computes the hash of the object's key itself (dcmf_hash_bytes or
 * anything else); the table compares keys through the |equal| function
 * given at init. The table owns only its bucket array: entries stay the
 * caller's, and the table never allocates per entry, so inserting and
 * removing on the per-packet path cost no allocation (growing the bucket
 * array is the only one, and it is optional: a failed grow leaves longer
 * chains, never a lost entry). No globals, no locks: one owner thread.
 */
#ifndef DCMF_HASHMAP_H
#define DCMF_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

/* Embedded in each filed object; the table's business while filed. */
struct dcmf_hashmap_entry {
  struct dcmf_hashmap_entry *next;
  uint64_t hash;
};

/* The object of type |type| whose member |member| is the entry |e|
 * (NULL stays NULL). |e| is evaluated once, so it may be a lookup. */
#define DCMF_HASHMAP_ITEM(e, type, member)                                     \
  ((type *)dcmf_hashmap_item_((const struct dcmf_hashmap_entry *)(e),          \
                              offsetof(type, member)))

static inline void *dcmf_hashmap_item_(const struct dcmf_hashmap_entry *e,
                                       size_t offset) {
  return e != NULL ? (void *)((const char *)e - offset) : NULL;
}

/* Returns nonzero if the object holding |entry| has key |key|. */
typedef int (*dcmf_hashmap_equal_fn)(const struct dcmf_hashmap_entry *entry,
                                     const void *key);

struct dcmf_hashmap {
  struct dcmf_hashmap_entry **buckets; /* owned; a power of two of them */
  size_t n_buckets;
  size_t count;
  dcmf_hashmap_equal_fn equal;
};

/*
 * Makes |map| an empty table of at least |buckets| buckets (rounded up to
 * a power of two, at least 8) that compares keys with |equal|. Returns 0
 * or DCMF_ERR_NOMEM (|map| then owns nothing).
 */
int dcmf_hashmap_init(struct dcmf_hashmap *map, size_t buckets,
                      dcmf_hashmap_equal_fn equal);

/* Frees the bucket array; the entries still filed are the caller's. */
void dcmf_hashmap_free(struct dcmf_hashmap *map);

/* Returns the entry whose key equals |key| (hash |hash|), or NULL. */
struct dcmf_hashmap_entry *dcmf_hashmap_find(const struct dcmf_hashmap *map,
                                             uint64_t hash, const void *key);

/*
 * Files |entry| under |hash|. The caller makes sure no entry with an
 * equal key is filed (find first). Grows the bucket array when entries
 * outnumber buckets; if that allocation fails the table keeps its size.
 */
void dcmf_hashmap_insert(struct dcmf_hashmap *map,
                         struct dcmf_hashmap_entry *entry, uint64_t hash);

/* Takes |entry|, which must be filed in |map|, out of the table. */
void dcmf_hashmap_remove(struct dcmf_hashmap *map,
                         struct dcmf_hashmap_entry *entry);

/* Returns the number of entries filed. */
size_t dcmf_hashmap_count(const struct dcmf_hashmap *map);

/*
 * FNV-1a over |len| bytes, started from |seed| (0 for the plain
 * function). Fast and well spread on short ids; not meant to resist
 * keys chosen to collide. Feed several fields by passing the previous
 * result as the next seed.
 */
uint64_t dcmf_hash_bytes(uint64_t seed, const void *data, size_t len);

#endif
