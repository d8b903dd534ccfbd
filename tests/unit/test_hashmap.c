/* Unit tests for the intrusive hash table: filing, finding, removing,
 * growing, and chains of entries whose hashes collide. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hashmap.h"

struct item {
  char key[16];
  int value;
  struct dcmf_hashmap_entry entry; /* not first: DCMF_HASHMAP_ITEM finds it */
};

static int item_equal(const struct dcmf_hashmap_entry *e, const void *key) {
  return strcmp(DCMF_HASHMAP_ITEM(e, const struct item, entry)->key, key) == 0;
}

static uint64_t key_hash(const char *key) {
  return dcmf_hash_bytes(0, key, strlen(key));
}

static struct item *lookup(struct dcmf_hashmap *m, const char *key) {
  return DCMF_HASHMAP_ITEM(dcmf_hashmap_find(m, key_hash(key), key),
                           struct item, entry);
}

static void test_hash_bytes(void **state) {
  (void)state;
  /* FNV-1a's published test values: "" and "a". */
  assert_true(dcmf_hash_bytes(0, "", 0) == 0xcbf29ce484222325ULL);
  assert_true(dcmf_hash_bytes(0, "a", 1) == 0xaf63dc4c8601ec8cULL);
  /* A seed changes the result, so chained fields hash differently from
   * the same bytes fed from scratch. */
  assert_true(dcmf_hash_bytes(1, "a", 1) != dcmf_hash_bytes(0, "a", 1));
}

static void test_insert_find_remove_grow(void **state) {
  (void)state;
  enum { N = 1000 };
  static struct item items[N];
  struct dcmf_hashmap m;
  assert_int_equal(dcmf_hashmap_init(&m, 4, item_equal), 0);
  assert_int_equal(m.n_buckets, 8); /* rounded up to the minimum */
  for (int i = 0; i < N; i++) {
    snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
    items[i].value = i;
    assert_null(lookup(&m, items[i].key));
    dcmf_hashmap_insert(&m, &items[i].entry, key_hash(items[i].key));
  }
  assert_int_equal(dcmf_hashmap_count(&m), N);
  /* It grew with the entries: chains stay about one long. */
  assert_true(m.n_buckets >= N);
  for (int i = 0; i < N; i++) {
    struct item *it = lookup(&m, items[i].key);
    assert_non_null(it);
    assert_int_equal(it->value, i);
  }
  assert_null(lookup(&m, "k1000"));
  /* Remove every other one; the rest stay findable. */
  for (int i = 0; i < N; i += 2) {
    dcmf_hashmap_remove(&m, &items[i].entry);
  }
  assert_int_equal(dcmf_hashmap_count(&m), N / 2);
  for (int i = 0; i < N; i++) {
    struct item *it = lookup(&m, items[i].key);
    if (i % 2 == 0) {
      assert_null(it);
    } else {
      assert_ptr_equal(it, &items[i]);
    }
  }
  dcmf_hashmap_free(&m);
  assert_null(m.buckets);
}

/* Every entry under one hash: the table tells them apart by key. */
static void test_colliding_hashes(void **state) {
  (void)state;
  struct item a = {.key = "alpha", .value = 1};
  struct item b = {.key = "beta", .value = 2};
  struct item c = {.key = "gamma", .value = 3};
  struct dcmf_hashmap m;
  assert_int_equal(dcmf_hashmap_init(&m, 8, item_equal), 0);
  dcmf_hashmap_insert(&m, &a.entry, 42);
  dcmf_hashmap_insert(&m, &b.entry, 42);
  dcmf_hashmap_insert(&m, &c.entry, 42);
  assert_ptr_equal(dcmf_hashmap_find(&m, 42, "alpha"), &a.entry);
  assert_ptr_equal(dcmf_hashmap_find(&m, 42, "beta"), &b.entry);
  assert_ptr_equal(dcmf_hashmap_find(&m, 42, "gamma"), &c.entry);
  assert_null(dcmf_hashmap_find(&m, 42, "delta"));
  /* The right key under the wrong hash is not found. */
  assert_null(dcmf_hashmap_find(&m, 43, "alpha"));
  /* Removing from the middle of a chain keeps both ends. */
  dcmf_hashmap_remove(&m, &b.entry);
  assert_null(dcmf_hashmap_find(&m, 42, "beta"));
  assert_ptr_equal(dcmf_hashmap_find(&m, 42, "alpha"), &a.entry);
  assert_ptr_equal(dcmf_hashmap_find(&m, 42, "gamma"), &c.entry);
  /* A removed entry can be filed again. */
  dcmf_hashmap_insert(&m, &b.entry, 42);
  assert_ptr_equal(dcmf_hashmap_find(&m, 42, "beta"), &b.entry);
  assert_int_equal(dcmf_hashmap_count(&m), 3);
  dcmf_hashmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hash_bytes),
      cmocka_unit_test(test_insert_find_remove_grow),
      cmocka_unit_test(test_colliding_hashes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
