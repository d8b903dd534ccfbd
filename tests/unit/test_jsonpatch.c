/*
 * test_jsonpatch.c - unit tests for RFC 6902 JSON Patch and RFC 6901 JSON
 * Pointer. The Appendix A cases are rewritten from the RFC's scenarios.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "errors.h"
#include "jsonpatch.h"

static json_t *load(const char *text) {
  json_error_t jerr;
  json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (!v)
    fail_msg("bad test JSON at %d: %s", jerr.position, jerr.text);
  return v;
}

/* Applies |patch| to |doc|, checks the code, that the inputs did not
 * change, and on success returns the result (else NULL). */
static json_t *run(const char *doc_text, const char *patch_text, int want,
                   struct dcmf_jsonpatch_error *err) {
  json_t *doc = load(doc_text);
  json_t *patch = load(patch_text);
  json_t *doc_before = json_deep_copy(doc);
  json_t *patch_before = json_deep_copy(patch);
  json_t *sentinel = json_string("untouched");
  json_t *result = sentinel;

  int rc = dcmf_jsonpatch_apply(doc, patch, &result, err);
  assert_int_equal(rc, want);
  assert_true(json_equal(doc, doc_before));
  assert_true(json_equal(patch, patch_before));
  if (rc != 0) {
    assert_ptr_equal(result, sentinel);
    result = NULL;
  } else {
    assert_ptr_not_equal(result, doc);
  }
  json_decref(doc);
  json_decref(patch);
  json_decref(doc_before);
  json_decref(patch_before);
  json_decref(sentinel);
  return result;
}

static void expect_ok(const char *doc, const char *patch,
                      const char *expected) {
  struct dcmf_jsonpatch_error err;
  json_t *result = run(doc, patch, 0, &err);
  json_t *want = load(expected);
  if (!json_equal(result, want)) {
    char *got = json_dumps(result, JSON_SORT_KEYS);
    fail_msg("got %s, want %s", got, expected);
  }
  json_decref(result);
  json_decref(want);
}

static void expect_err(const char *doc, const char *patch, int code, long index,
                       const char *param) {
  struct dcmf_jsonpatch_error err;
  memset(&err, 0x5a, sizeof(err));
  json_t *result = run(doc, patch, code, &err);
  assert_null(result);
  assert_int_equal(err.op_index, index);
  assert_string_equal(err.param, param);
  /* The reason is one sentence: non-empty, ending in a full stop. */
  size_t len = strnlen(err.reason, sizeof(err.reason));
  assert_true(len > 1 && len < sizeof(err.reason));
  assert_int_equal(err.reason[len - 1], '.');
}

/* RFC 6902 Appendix A, reconstructed. */

static void test_a1_add_member(void **state) {
  (void)state;
  expect_ok("{\"foo\":\"bar\"}",
            "[{\"op\":\"add\",\"path\":\"/baz\","
            "\"value\":\"qux\"}]",
            "{\"baz\":\"qux\",\"foo\":\"bar\"}");
}

static void test_a2_add_element(void **state) {
  (void)state;
  expect_ok("{\"foo\":[\"bar\",\"baz\"]}",
            "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
            "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
}

static void test_a3_remove_member(void **state) {
  (void)state;
  expect_ok("{\"baz\":\"qux\",\"foo\":\"bar\"}",
            "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}");
}

static void test_a4_remove_element(void **state) {
  (void)state;
  expect_ok("{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
            "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
            "{\"foo\":[\"bar\",\"baz\"]}");
}

static void test_a5_replace(void **state) {
  (void)state;
  expect_ok("{\"baz\":\"qux\",\"foo\":\"bar\"}",
            "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
            "{\"baz\":\"boo\",\"foo\":\"bar\"}");
}

static void test_a6_move_member(void **state) {
  (void)state;
  expect_ok("{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},"
            "\"qux\":{\"corge\":\"grault\"}}",
            "[{\"op\":\"move\",\"from\":\"/foo/waldo\","
            "\"path\":\"/qux/thud\"}]",
            "{\"foo\":{\"bar\":\"baz\"},"
            "\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
}

static void test_a7_move_element(void **state) {
  (void)state;
  expect_ok("{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
            "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
            "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
}

static void test_a8_test_success(void **state) {
  (void)state;
  expect_ok("{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
            "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
            "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
            "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
}

static void test_a9_test_error(void **state) {
  (void)state;
  expect_err("{\"baz\":\"qux\"}",
             "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]",
             DCMF_ERR_TEST_FAILED, 0, "/0/value");
}

static void test_a10_add_nested(void **state) {
  (void)state;
  expect_ok("{\"foo\":\"bar\"}",
            "[{\"op\":\"add\",\"path\":\"/child\","
            "\"value\":{\"grandchild\":{}}}]",
            "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
}

static void test_a11_ignore_unknown_members(void **state) {
  (void)state;
  expect_ok("{\"foo\":\"bar\"}",
            "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\","
            "\"xyz\":123}]",
            "{\"foo\":\"bar\",\"baz\":\"qux\"}");
}

static void test_a12_add_missing_parent(void **state) {
  (void)state;
  expect_err("{\"foo\":\"bar\"}",
             "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]",
             DCMF_ERR_NOT_FOUND, 0, "/0/path");
}

static void test_a14_escape_order(void **state) {
  (void)state;
  /* "~01" must decode to "~1", not "/", so it names the second member. */
  expect_ok("{\"/\":9,\"~1\":10}",
            "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
            "{\"/\":9,\"~1\":10}");
}

static void test_a15_string_vs_number(void **state) {
  (void)state;
  expect_err("{\"/\":9,\"~1\":10}",
             "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]",
             DCMF_ERR_TEST_FAILED, 0, "/0/value");
}

static void test_a16_add_array_value(void **state) {
  (void)state;
  expect_ok("{\"foo\":[\"bar\"]}",
            "[{\"op\":\"add\",\"path\":\"/foo/-\","
            "\"value\":[\"abc\",\"def\"]}]",
            "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
}

/* Further success paths. */

static void test_add_replaces_member_and_appends(void **state) {
  (void)state;
  expect_ok("{\"a\":1,\"l\":[1,2]}",
            "[{\"op\":\"add\",\"path\":\"/a\",\"value\":null},"
            "{\"op\":\"add\",\"path\":\"/l/2\",\"value\":3},"
            "{\"op\":\"add\",\"path\":\"/l/0\",\"value\":0},"
            "{\"op\":\"add\",\"path\":\"/-\",\"value\":\"key\"}]",
            "{\"a\":null,\"l\":[0,1,2,3],\"-\":\"key\"}");
}

static void test_replace_element_and_test_objects(void **state) {
  (void)state;
  expect_ok("{\"l\":[{\"x\":1,\"y\":2}]}",
            "[{\"op\":\"replace\",\"path\":\"/l/0/x\",\"value\":5},"
            "{\"op\":\"replace\",\"path\":\"/l/0\",\"value\":{\"y\":2,"
            "\"x\":5,\"z\":[]}},"
            "{\"op\":\"test\",\"path\":\"/l\",\"value\":[{\"z\":[],\"x\":5,"
            "\"y\":2}]},"
            "{\"op\":\"test\",\"path\":\"\",\"value\":{\"l\":[{\"x\":5,"
            "\"y\":2,\"z\":[]}]}}]",
            "{\"l\":[{\"x\":5,\"y\":2,\"z\":[]}]}");
}

static void test_move_and_copy(void **state) {
  (void)state;
  /* Moving onto itself is a no-op; copy from the root nests a snapshot. */
  expect_ok("{\"a\":{\"b\":1},\"l\":[1,2,3]}",
            "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"},"
            "{\"op\":\"move\",\"from\":\"/l/0\",\"path\":\"/l/-\"},"
            "{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"},"
            "{\"op\":\"add\",\"path\":\"/c/b\",\"value\":2},"
            "{\"op\":\"copy\",\"from\":\"\",\"path\":\"/snap\"}]",
            "{\"a\":{\"b\":1},\"l\":[2,3,1],\"c\":{\"b\":2},"
            "\"snap\":{\"a\":{\"b\":1},\"l\":[2,3,1],\"c\":{\"b\":2}}}");
}

static void test_added_value_not_shared_with_patch(void **state) {
  (void)state;
  /* The second operation edits what the first added; run() checks that
   * the patch's own value object is left as it was. */
  expect_ok("{}",
            "[{\"op\":\"add\",\"path\":\"/o\",\"value\":{}},"
            "{\"op\":\"add\",\"path\":\"/o/k\",\"value\":1}]",
            "{\"o\":{\"k\":1}}");
}

static void test_embedded_nul_in_pointer(void **state) {
  (void)state;
  /* jansson cannot hold NUL in keys reliably, so such a pointer must be
   * refused rather than cut short at the NUL, where it would name "a". */
  expect_err("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/a\\u0000b\"}]",
             DCMF_ERR_MALFORMED, 0, "/0/path");
  expect_err("{\"a\":1}",
             "[{\"op\":\"copy\",\"from\":\"/a\\u0000\",\"path\":\"/b\"}]",
             DCMF_ERR_MALFORMED, 0, "/0/from");
}

static void test_escapes(void **state) {
  (void)state;
  expect_ok("{\"a/b\":{\"m~n\":1}}",
            "[{\"op\":\"move\",\"from\":\"/a~1b/m~0n\",\"path\":\"/~0~1\"},"
            "{\"op\":\"add\",\"path\":\"/~1~0\",\"value\":2}]",
            "{\"a/b\":{},\"~/\":1,\"/~\":2}");
}

/* RFC 6901 section 5, reconstructed, plus malformed pointers. */
static void test_pointer_get(void **state) {
  (void)state;
  json_t *doc = load("{\"foo\":[\"bar\",\"baz\"],\"\":0,\"a/b\":1,"
                     "\"c%d\":2,\"e^f\":3,\"g|h\":4,\"i\\\\j\":5,"
                     "\"k\\\"l\":6,\" \":7,\"m~n\":8}");
  static const struct {
    const char *ptr;
    json_int_t want;
  } ints[] = {{"/", 0},     {"/a~1b", 1}, {"/c%d", 2}, {"/e^f", 3}, {"/g|h", 4},
              {"/i\\j", 5}, {"/k\"l", 6}, {"/ ", 7},   {"/m~0n", 8}};
  for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
    json_t *v = dcmf_json_pointer_get(doc, ints[i].ptr);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), ints[i].want);
  }
  assert_ptr_equal(dcmf_json_pointer_get(doc, ""), doc);
  assert_ptr_equal(dcmf_json_pointer_get(doc, "/foo"),
                   json_object_get(doc, "foo"));
  assert_string_equal(json_string_value(dcmf_json_pointer_get(doc, "/foo/0")),
                      "bar");
  assert_string_equal(json_string_value(dcmf_json_pointer_get(doc, "/foo/1")),
                      "baz");

  static const char *const none[] = {"foo",
                                     "/foo/2",
                                     "/foo/-",
                                     "/foo/01",
                                     "/foo/x",
                                     "/foo/-1",
                                     "/~2",
                                     "/a~",
                                     "/nope",
                                     "/foo/0/x",
                                     "/foo/99999999999999999999999"};
  for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
    assert_null(dcmf_json_pointer_get(doc, none[i]));
  assert_null(dcmf_json_pointer_get(doc, NULL));
  assert_null(dcmf_json_pointer_get(NULL, ""));
  json_decref(doc);
}

/* DCMF_ERR_MALFORMED. */

static void test_malformed_document(void **state) {
  (void)state;
  expect_err("{}", "{\"op\":\"remove\",\"path\":\"/a\"}", DCMF_ERR_MALFORMED,
             -1, "");
  expect_err("{}", "[]", DCMF_ERR_MALFORMED, -1, "");
  expect_err("{}", "null", DCMF_ERR_MALFORMED, -1, "");
  expect_err("{}", "[{\"op\":\"test\",\"path\":\"\",\"value\":{}},17]",
             DCMF_ERR_MALFORMED, 1, "/1");
}

static void test_malformed_members(void **state) {
  (void)state;
  expect_err("{}", "[{\"path\":\"/a\",\"value\":1}]", DCMF_ERR_MALFORMED, 0,
             "/0/op");
  expect_err("{}", "[{\"op\":7,\"path\":\"/a\"}]", DCMF_ERR_MALFORMED, 0,
             "/0/op");
  expect_err("{}", "[{\"op\":\"ADD\",\"path\":\"/a\",\"value\":1}]",
             DCMF_ERR_MALFORMED, 0, "/0/op");
  expect_err("{}", "[{\"op\":\"add\\u0000\",\"path\":\"/a\",\"value\":1}]",
             DCMF_ERR_MALFORMED, 0, "/0/op");
  expect_err("{}", "[{\"op\":\"remove\"}]", DCMF_ERR_MALFORMED, 0, "/0/path");
  expect_err("{}", "[{\"op\":\"remove\",\"path\":[]}]", DCMF_ERR_MALFORMED, 0,
             "/0/path");
  expect_err("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"a\"}]",
             DCMF_ERR_MALFORMED, 0, "/0/path");
  expect_err("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/~2\"}]",
             DCMF_ERR_MALFORMED, 0, "/0/path");
  expect_err("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/a~\"}]",
             DCMF_ERR_MALFORMED, 0, "/0/path");
  expect_err("{\"a\":1}", "[{\"op\":\"move\",\"path\":\"/b\"}]",
             DCMF_ERR_MALFORMED, 0, "/0/from");
  expect_err("{\"a\":1}", "[{\"op\":\"copy\",\"path\":\"/b\",\"from\":1}]",
             DCMF_ERR_MALFORMED, 0, "/0/from");
  expect_err("{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", DCMF_ERR_MALFORMED, 0,
             "/0/value");
  expect_err("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/a\"}]",
             DCMF_ERR_MALFORMED, 0, "/0/value");
  expect_err("{\"a\":1}",
             "[{\"op\":\"remove\",\"path\":\"/a\"},{\"op\":\"test\","
             "\"path\":\"/a\"}]",
             DCMF_ERR_MALFORMED, 1, "/1/value");
}

/* DCMF_ERR_NOT_FOUND. */
static void test_not_found(void **state) {
  (void)state;
  const char *doc = "{\"a\":1,\"o\":{},\"l\":[0]}";
  expect_err(doc, "[{\"op\":\"remove\",\"path\":\"/b\"}]", DCMF_ERR_NOT_FOUND,
             0, "/0/path");
  expect_err(doc, "[{\"op\":\"replace\",\"path\":\"/o/x\",\"value\":1}]",
             DCMF_ERR_NOT_FOUND, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"test\",\"path\":\"/o/x\",\"value\":1}]",
             DCMF_ERR_NOT_FOUND, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"add\",\"path\":\"/a/x\",\"value\":1}]",
             DCMF_ERR_NOT_FOUND, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"add\",\"path\":\"/l/3/x\",\"value\":1}]",
             DCMF_ERR_NOT_FOUND, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"move\",\"from\":\"/z\",\"path\":\"/y\"}]",
             DCMF_ERR_NOT_FOUND, 0, "/0/from");
  expect_err(doc, "[{\"op\":\"copy\",\"from\":\"/o/z\",\"path\":\"/y\"}]",
             DCMF_ERR_NOT_FOUND, 0, "/0/from");
  expect_err(doc, "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/q/y\"}]",
             DCMF_ERR_NOT_FOUND, 0, "/0/path");
}

/* DCMF_ERR_INVALID. */
static void test_invalid(void **state) {
  (void)state;
  const char *doc = "{\"a\":{\"b\":1},\"l\":[0,1]}";
  expect_err(doc, "[{\"op\":\"add\",\"path\":\"/l/3\",\"value\":1}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"remove\",\"path\":\"/l/2\"}]", DCMF_ERR_INVALID,
             0, "/0/path");
  expect_err(doc, "[{\"op\":\"remove\",\"path\":\"/l/-\"}]", DCMF_ERR_INVALID,
             0, "/0/path");
  expect_err(doc, "[{\"op\":\"replace\",\"path\":\"/l/-\",\"value\":1}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"test\",\"path\":\"/l/-\",\"value\":1}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"move\",\"from\":\"/l/-\",\"path\":\"/x\"}]",
             DCMF_ERR_INVALID, 0, "/0/from");
  expect_err(doc, "[{\"op\":\"add\",\"path\":\"/l/01\",\"value\":1}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"replace\",\"path\":\"/l/x\",\"value\":1}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"move\",\"from\":\"\",\"path\":\"/x\"}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"remove\",\"path\":\"\"}]", DCMF_ERR_INVALID, 0,
             "/0/path");
  expect_err(doc, "[{\"op\":\"replace\",\"path\":\"\",\"value\":{}}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"add\",\"path\":\"\",\"value\":{}}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"\"}]",
             DCMF_ERR_INVALID, 0, "/0/path");
  expect_err(doc, "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"\"}]",
             DCMF_ERR_INVALID, 0, "/0/path");
}

static void test_null_arguments(void **state) {
  (void)state;
  json_t *doc = load("{}");
  json_t *patch = load("[{\"op\":\"test\",\"path\":\"\",\"value\":{}}]");
  json_t *result = NULL;
  assert_int_equal(dcmf_jsonpatch_apply(NULL, patch, &result, NULL),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_jsonpatch_apply(doc, patch, NULL, NULL),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_jsonpatch_apply(doc, NULL, &result, NULL),
                   DCMF_ERR_MALFORMED);
  assert_null(result);
  /* A NULL error struct is allowed on success too. */
  assert_int_equal(dcmf_jsonpatch_apply(doc, patch, &result, NULL), 0);
  assert_true(json_equal(result, doc));
  json_decref(result);
  json_decref(doc);
  json_decref(patch);
}

/* A failure late in the patch must leave no trace of the earlier steps. */
static void test_atomic_failure(void **state) {
  (void)state;
  json_t *doc = load("{\"a\":1,\"l\":[1,2]}");
  json_t *patch = load("[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},"
                       "{\"op\":\"remove\",\"path\":\"/a\"},"
                       "{\"op\":\"add\",\"path\":\"/l/0\",\"value\":0},"
                       "{\"op\":\"test\",\"path\":\"/b\",\"value\":3}]");
  json_t *before = json_deep_copy(doc);
  json_t *result = NULL;
  struct dcmf_jsonpatch_error err;
  assert_int_equal(dcmf_jsonpatch_apply(doc, patch, &result, &err),
                   DCMF_ERR_TEST_FAILED);
  assert_null(result);
  assert_int_equal(err.op_index, 3);
  assert_string_equal(err.param, "/3/value");
  assert_true(json_equal(doc, before));
  assert_int_equal(json_integer_value(json_object_get(doc, "a")), 1);
  assert_null(json_object_get(doc, "b"));
  json_decref(doc);
  json_decref(patch);
  json_decref(before);
}

/* Allocator that fails once |fail_budget| allocations have been made. */
static long fail_budget = -1;

static void *failing_malloc(size_t size) {
  if (fail_budget == 0)
    return NULL;
  if (fail_budget > 0)
    fail_budget--;
  return malloc(size);
}

static void test_out_of_memory(void **state) {
  (void)state;
  json_t *doc = load("{\"a\":{\"b\":[1,2,3]},\"s\":\"text\"}");
  json_t *patch = load("[{\"op\":\"add\",\"path\":\"/n\",\"value\":{\"x\":[1,"
                       "{\"y\":\"z\"}]}},"
                       "{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"},"
                       "{\"op\":\"move\",\"from\":\"/s\",\"path\":\"/a/t\"},"
                       "{\"op\":\"add\",\"path\":\"/a/b/-\",\"value\":4},"
                       "{\"op\":\"replace\",\"path\":\"/c/b\",\"value\":[]}]");
  json_t *before = json_deep_copy(doc);
  int failures = 0;

  json_set_alloc_funcs(failing_malloc, free);
  for (long budget = 0;; budget++) {
    json_t *result = NULL;
    struct dcmf_jsonpatch_error err;
    fail_budget = budget;
    int rc = dcmf_jsonpatch_apply(doc, patch, &result, &err);
    fail_budget = -1;
    if (rc == 0) {
      json_decref(result);
      break;
    }
    assert_int_equal(rc, DCMF_ERR_NOMEM);
    assert_null(result);
    assert_true(json_equal(doc, before));
    failures++;
    assert_true(budget < 10000);
  }
  json_set_alloc_funcs(malloc, free);
  assert_true(failures > 5);
  json_decref(doc);
  json_decref(patch);
  json_decref(before);
}

/* Each copy of the whole document into itself doubles it: 40 of them
 * would ask for 2^40 values. The budget stops the patch at the copy that
 * passes DCMF_JSONPATCH_MAX_VALUES: the document holds 3 values and
 * after copy k 3 * 2^(k+1), so copy 15 (the 16th) is the first past it. */
static void test_exponential_copy_refused(void **state) {
  (void)state;
  char patch[4096] = "[";
  for (int k = 0; k < 40; k++) {
    char op[64];
    snprintf(op, sizeof(op), "%s{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c%d\"}",
             k ? "," : "", k);
    strcat(patch, op);
  }
  strcat(patch, "]");
  struct dcmf_jsonpatch_error err;
  run("{\"a\":{\"b\":1}}", patch, DCMF_ERR_TOO_LARGE, &err);
  assert_int_equal(err.op_index, 15);
  assert_string_equal(err.param, "/15/from");
  /* A value that alone passes the budget is refused as well. */
  json_t *doc = load("{}");
  json_t *big = json_array();
  for (int k = 0; k < DCMF_JSONPATCH_MAX_VALUES; k++) {
    json_array_append_new(big, json_true());
  }
  json_t *patch2 = json_pack("[{s:s, s:s, s:o}]", "op", "add", "path", "/x",
                             "value", big);
  json_t *result = NULL;
  assert_int_equal(dcmf_jsonpatch_apply(doc, patch2, &result, &err),
                   DCMF_ERR_TOO_LARGE);
  assert_null(result);
  assert_string_equal(err.param, "/0/value");
  json_decref(doc);
  json_decref(patch2);
  /* Under the budget, copies work as before. */
  json_t *ok = run("{\"a\":{\"b\":1}}",
                   "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c\"},"
                   "{\"op\":\"copy\",\"from\":\"\",\"path\":\"/d\"}]",
                   0, &err);
  assert_non_null(json_object_get(json_object_get(ok, "d"), "c"));
  json_decref(ok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a1_add_member),
      cmocka_unit_test(test_a2_add_element),
      cmocka_unit_test(test_a3_remove_member),
      cmocka_unit_test(test_a4_remove_element),
      cmocka_unit_test(test_a5_replace),
      cmocka_unit_test(test_a6_move_member),
      cmocka_unit_test(test_a7_move_element),
      cmocka_unit_test(test_a8_test_success),
      cmocka_unit_test(test_a9_test_error),
      cmocka_unit_test(test_a10_add_nested),
      cmocka_unit_test(test_a11_ignore_unknown_members),
      cmocka_unit_test(test_a12_add_missing_parent),
      cmocka_unit_test(test_a14_escape_order),
      cmocka_unit_test(test_a15_string_vs_number),
      cmocka_unit_test(test_a16_add_array_value),
      cmocka_unit_test(test_add_replaces_member_and_appends),
      cmocka_unit_test(test_replace_element_and_test_objects),
      cmocka_unit_test(test_move_and_copy),
      cmocka_unit_test(test_added_value_not_shared_with_patch),
      cmocka_unit_test(test_escapes),
      cmocka_unit_test(test_embedded_nul_in_pointer),
      cmocka_unit_test(test_pointer_get),
      cmocka_unit_test(test_malformed_document),
      cmocka_unit_test(test_malformed_members),
      cmocka_unit_test(test_not_found),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_null_arguments),
      cmocka_unit_test(test_atomic_failure),
      cmocka_unit_test(test_out_of_memory),
      cmocka_unit_test(test_exponential_copy_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
