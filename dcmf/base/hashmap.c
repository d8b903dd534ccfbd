#include "hashmap.h"

#include <stdlib.h>

#include "errors.h"

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL
#define MIN_BUCKETS 8

uint64_t dcmf_hash_bytes(uint64_t seed, const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = FNV_OFFSET ^ seed;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= FNV_PRIME;
  }
  return h;
}

/* Buckets are a power of two, so the index is a mask of the hash. */
static size_t slot(uint64_t hash, size_t n_buckets) {
  return (size_t)(hash & (uint64_t)(n_buckets - 1));
}

int dcmf_hashmap_init(struct dcmf_hashmap *map, size_t buckets,
                      dcmf_hashmap_equal_fn equal) {
  size_t n = MIN_BUCKETS;
  while (n < buckets && n <= SIZE_MAX / 2) {
    n *= 2;
  }
  map->buckets = calloc(n, sizeof(*map->buckets));
  if (map->buckets == NULL) {
    map->n_buckets = 0;
    map->count = 0;
    return DCMF_ERR_NOMEM;
  }
  map->n_buckets = n;
  map->count = 0;
  map->equal = equal;
  return 0;
}

void dcmf_hashmap_free(struct dcmf_hashmap *map) {
  free(map->buckets);
  map->buckets = NULL;
  map->n_buckets = 0;
  map->count = 0;
}

struct dcmf_hashmap_entry *dcmf_hashmap_find(const struct dcmf_hashmap *map,
                                             uint64_t hash, const void *key) {
  if (map->n_buckets == 0) {
    return NULL;
  }
  for (struct dcmf_hashmap_entry *e = map->buckets[slot(hash, map->n_buckets)];
       e != NULL; e = e->next) {
    if (e->hash == hash && map->equal(e, key)) {
      return e;
    }
  }
  return NULL;
}

/* Doubles the bucket array and refiles every entry; on failure the
 * table stays as it was (only the chains get longer). */
static void grow(struct dcmf_hashmap *map) {
  if (map->n_buckets > SIZE_MAX / 2 / sizeof(*map->buckets)) {
    return;
  }
  size_t n = map->n_buckets * 2;
  struct dcmf_hashmap_entry **b = calloc(n, sizeof(*b));
  if (b == NULL) {
    return;
  }
  for (size_t i = 0; i < map->n_buckets; i++) {
    struct dcmf_hashmap_entry *e = map->buckets[i];
    while (e != NULL) {
      struct dcmf_hashmap_entry *next = e->next;
      size_t s = slot(e->hash, n);
      e->next = b[s];
      b[s] = e;
      e = next;
    }
  }
  free(map->buckets);
  map->buckets = b;
  map->n_buckets = n;
}

void dcmf_hashmap_insert(struct dcmf_hashmap *map,
                         struct dcmf_hashmap_entry *entry, uint64_t hash) {
  if (map->count >= map->n_buckets) {
    grow(map);
  }
  size_t s = slot(hash, map->n_buckets);
  entry->hash = hash;
  entry->next = map->buckets[s];
  map->buckets[s] = entry;
  map->count++;
}

void dcmf_hashmap_remove(struct dcmf_hashmap *map,
                         struct dcmf_hashmap_entry *entry) {
  struct dcmf_hashmap_entry **pp =
      &map->buckets[slot(entry->hash, map->n_buckets)];
  while (*pp != NULL && *pp != entry) {
    pp = &(*pp)->next;
  }
  if (*pp == entry) {
    *pp = entry->next;
    entry->next = NULL;
    map->count--;
  }
}

size_t dcmf_hashmap_count(const struct dcmf_hashmap *map) {
  return map->count;
}
