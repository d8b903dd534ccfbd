/*
 * jsonpatch.c - RFC 6902 JSON Patch and RFC 6901 JSON Pointer on jansson.
 *
 * Every patch runs on a deep copy of the document, so a failure half way
 * through simply drops the copy and the caller's document never changes.
 */
#include "jsonpatch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* Where a pointer leads. |parent| is NULL when the pointer names the root;
 * |target| is NULL when add is about to create the value; |key| is the
 * decoded last token and lives in the caller's buffer; |index| is the
 * position in |parent| when that is an array. */
struct ptr_loc {
  json_t *parent;
  json_t *target;
  const char *key;
  size_t key_len;
  size_t index;
};

enum patch_kind {
  PATCH_ADD,
  PATCH_REMOVE,
  PATCH_REPLACE,
  PATCH_MOVE,
  PATCH_COPY,
  PATCH_TEST
};

/* One operation object after its members have been checked. */
struct patch_op {
  enum patch_kind kind;
  const char *path, *from;
  size_t path_len, from_len;
  json_t *value;
};

/* RFC 6901 allows "~" only as the first half of "~0" or "~1". NUL is
 * refused too: jansson's parser and deep copy cannot keep it in keys. */
static int ptr_valid(const char *ptr, size_t len) {
  if (len > 0 && ptr[0] != '/')
    return 0;
  for (size_t i = 0; i < len; i++) {
    if (ptr[i] == '\0' ||
        (ptr[i] == '~' &&
         (i + 1 == len || (ptr[i + 1] != '0' && ptr[i + 1] != '1'))))
      return 0;
  }
  return 1;
}

/* Decodes the token in [start, end) into |buf| and returns its length. */
static size_t ptr_decode(const char *ptr, size_t start, size_t end, char *buf) {
  size_t n = 0;
  for (size_t i = start; i < end; i++) {
    char c = ptr[i];
    if (c == '~')
      c = ptr[++i] == '0' ? '~' : '/';
    buf[n++] = c;
  }
  return n;
}

/* Array indices are plain decimal; a leading zero would make "01" and "1"
 * name the same element, which RFC 6901 forbids. */
static int ptr_index(const char *tok, size_t len, size_t *out) {
  size_t v = 0;
  if (len == 0 || (tok[0] == '0' && len > 1))
    return -1;
  for (size_t i = 0; i < len; i++) {
    if (tok[i] < '0' || tok[i] > '9')
      return -1;
    size_t d = (size_t)(tok[i] - '0');
    if (v > (SIZE_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* Walks the valid pointer |ptr| from |root|. With |stop_last| set it stops
 * at the parent of the last token and leaves that token decoded in |buf|
 * with its length in *|last_len|. Returns the node reached or NULL. */
static json_t *ptr_walk(json_t *root, const char *ptr, size_t len, char *buf,
                        int stop_last, size_t *last_len) {
  json_t *node = root;
  size_t pos = 0, idx;
  while (pos < len && node) {
    size_t end = pos + 1;
    while (end < len && ptr[end] != '/')
      end++;
    size_t n = ptr_decode(ptr, pos + 1, end, buf);
    if (stop_last && end == len) {
      *last_len = n;
      return node;
    }
    if (json_is_object(node))
      node = json_object_getn(node, buf, n);
    else if (json_is_array(node) && ptr_index(buf, n, &idx) == 0)
      node = json_array_get(node, idx);
    else
      node = NULL;
    pos = end;
  }
  return node;
}

/* Finds the location |ptr| names. |must_exist| is clear only for add, the
 * one operation that may name a member or index not there yet. */
static int ptr_locate(json_t *root, const char *ptr, size_t len, char *buf,
                      int must_exist, struct ptr_loc *loc, const char **why) {
  memset(loc, 0, sizeof(*loc));
  if (len == 0) {
    loc->target = root;
    return 0;
  }
  loc->parent = ptr_walk(root, ptr, len, buf, 1, &loc->key_len);
  loc->key = buf;
  if (!loc->parent) {
    *why = "The parent of the location does not exist.";
    return DCMF_ERR_NOT_FOUND;
  }
  if (json_is_object(loc->parent)) {
    loc->target = json_object_getn(loc->parent, buf, loc->key_len);
    if (must_exist && !loc->target) {
      *why = "The location names no existing member.";
      return DCMF_ERR_NOT_FOUND;
    }
    return 0;
  }
  if (!json_is_array(loc->parent)) {
    *why = "The parent of the location is not an object or an array.";
    return DCMF_ERR_NOT_FOUND;
  }
  size_t size = json_array_size(loc->parent);
  if (loc->key_len == 1 && buf[0] == '-') {
    if (must_exist) {
      *why = "The index \"-\" names no element, so only add may use it.";
      return DCMF_ERR_INVALID;
    }
    loc->index = size;
    return 0;
  }
  if (ptr_index(buf, loc->key_len, &loc->index) != 0) {
    *why = "The array index is not a decimal number without leading zeros.";
    return DCMF_ERR_INVALID;
  }
  if (loc->index > size || (must_exist && loc->index == size)) {
    *why = "The array index is out of range.";
    return DCMF_ERR_INVALID;
  }
  loc->target = json_array_get(loc->parent, loc->index);
  return 0;
}

json_t *dcmf_json_pointer_get(json_t *doc, const char *pointer) {
  if (!doc || !pointer)
    return NULL;
  size_t len = strlen(pointer);
  if (!ptr_valid(pointer, len))
    return NULL;
  char *buf = malloc(len + 1);
  if (!buf)
    return NULL;
  json_t *found = ptr_walk(doc, pointer, len, buf, 0, NULL);
  free(buf);
  return found;
}

static int patch_fail(struct dcmf_jsonpatch_error *err, long index,
                      const char *member, int code, const char *reason) {
  err->op_index = index;
  if (index < 0)
    err->param[0] = '\0';
  else if (member)
    snprintf(err->param, sizeof(err->param), "/%ld/%s", index, member);
  else
    snprintf(err->param, sizeof(err->param), "/%ld", index);
  snprintf(err->reason, sizeof(err->reason), "%s", reason);
  return code;
}

/* Reads member |name| as a string that is a valid JSON Pointer. */
static int patch_pointer(json_t *obj, const char *name, const char **out,
                         size_t *len) {
  json_t *v = json_object_get(obj, name);
  if (!json_is_string(v))
    return -1;
  *out = json_string_value(v);
  *len = json_string_length(v);
  return ptr_valid(*out, *len) ? 0 : -1;
}

static int patch_parse(json_t *obj, long i, struct patch_op *op,
                       struct dcmf_jsonpatch_error *err) {
  static const char *const names[] = {"add",  "remove", "replace",
                                      "move", "copy",   "test"};
  if (!json_is_object(obj))
    return patch_fail(err, i, NULL, DCMF_ERR_MALFORMED,
                      "The operation is not a JSON object.");
  json_t *opv = json_object_get(obj, "op");
  const char *name = json_string_value(opv);
  if (!name)
    return patch_fail(err, i, "op", DCMF_ERR_MALFORMED,
                      "The operation has no \"op\" string.");
  size_t k = 0;
  while (k < 6 && strcmp(name, names[k]) != 0)
    k++;
  /* An embedded NUL must not let "add\u0000x" pass for "add". */
  if (k == 6 || strlen(name) != json_string_length(opv))
    return patch_fail(err, i, "op", DCMF_ERR_MALFORMED,
                      "The \"op\" member names no known operation.");
  memset(op, 0, sizeof(*op));
  op->kind = (enum patch_kind)k;
  if (patch_pointer(obj, "path", &op->path, &op->path_len) != 0)
    return patch_fail(err, i, "path", DCMF_ERR_MALFORMED,
                      "The \"path\" member is missing or not a JSON Pointer.");
  if ((op->kind == PATCH_MOVE || op->kind == PATCH_COPY) &&
      patch_pointer(obj, "from", &op->from, &op->from_len) != 0)
    return patch_fail(err, i, "from", DCMF_ERR_MALFORMED,
                      "The \"from\" member is missing or not a JSON Pointer.");
  op->value = json_object_get(obj, "value");
  if ((op->kind == PATCH_ADD || op->kind == PATCH_REPLACE ||
       op->kind == PATCH_TEST) &&
      !op->value)
    return patch_fail(err, i, "value", DCMF_ERR_MALFORMED,
                      "The operation has no \"value\" member.");
  return 0;
}

/* Adds, replaces (|kind| says which) or, with no |value|, removes the value
 * at |ptr|. Takes over the reference to |value| even on failure. */
static int patch_put(json_t *root, const char *ptr, size_t len, char *buf,
                     enum patch_kind kind, json_t *value, long i,
                     const char *member, struct dcmf_jsonpatch_error *err) {
  struct ptr_loc loc;
  const char *why = "";
  int rc = ptr_locate(root, ptr, len, buf, kind != PATCH_ADD, &loc, &why);
  if (rc == 0 && !loc.parent) {
    why = "The operation would replace or remove the whole document.";
    rc = DCMF_ERR_INVALID;
  }
  if (rc != 0) {
    json_decref(value);
    return patch_fail(err, i, member, rc, why);
  }
  if (value && json_is_object(loc.parent))
    rc = json_object_setn_new(loc.parent, loc.key, loc.key_len, value);
  else if (value && kind == PATCH_ADD)
    rc = json_array_insert_new(loc.parent, loc.index, value);
  else if (value)
    rc = json_array_set_new(loc.parent, loc.index, value);
  else if (json_is_object(loc.parent))
    rc = json_object_deln(loc.parent, loc.key, loc.key_len);
  else
    rc = json_array_remove(loc.parent, loc.index);
  if (rc != 0)
    return patch_fail(err, i, member, DCMF_ERR_NOMEM,
                      "Memory ran out while changing the document.");
  return 0;
}

/* Counts the values of |v| (itself and everything inside it), stopping
 * as soon as the count passes |cap|: the cost of a count is bounded by
 * the budget it checks, not by the size of |v|. */
static size_t count_values(json_t *v, size_t cap) {
  size_t n = 1;
  if (json_is_object(v)) {
    const char *key;
    json_t *child;
    json_object_foreach(v, key, child) {
      if (n > cap) {
        break;
      }
      n += count_values(child, cap - n);
    }
  } else if (json_is_array(v)) {
    size_t k;
    json_t *child;
    json_array_foreach(v, k, child) {
      if (n > cap) {
        break;
      }
      n += count_values(child, cap - n);
    }
  }
  return n;
}

/* Takes the values of |v| from the patch's budget |*left|; 0 or
 * DCMF_ERR_TOO_LARGE (nothing taken). */
static int budget_take(json_t *v, size_t *left, long i, const char *param,
                       struct dcmf_jsonpatch_error *err) {
  size_t n = count_values(v, *left);
  if (n > *left) {
    return patch_fail(err, i, param, DCMF_ERR_TOO_LARGE,
                      "The patched document would hold too many values.");
  }
  *left -= n;
  return 0;
}

/* Runs one checked operation on the working copy |root|; |left| is what
 * remains of the document's value budget. */
static int patch_run(json_t *root, const struct patch_op *op, char *buf, long i,
                     size_t *left, struct dcmf_jsonpatch_error *err) {
  struct ptr_loc loc;
  const char *why = "";
  json_t *value;
  int rc;

  switch (op->kind) {
  case PATCH_ADD:
  case PATCH_REPLACE:
    /* The value is copied so the result shares nothing with the patch,
     * which later operations or the caller might otherwise mutate. */
    rc = budget_take(op->value, left, i, "value", err);
    if (rc != 0)
      return rc;
    value = json_deep_copy(op->value);
    if (!value)
      return patch_fail(err, i, "value", DCMF_ERR_NOMEM,
                        "Memory ran out while copying the value.");
    return patch_put(root, op->path, op->path_len, buf, op->kind, value, i,
                     "path", err);
  case PATCH_REMOVE:
    return patch_put(root, op->path, op->path_len, buf, op->kind, NULL, i,
                     "path", err);
  case PATCH_TEST:
    rc = ptr_locate(root, op->path, op->path_len, buf, 1, &loc, &why);
    if (rc != 0)
      return patch_fail(err, i, "path", rc, why);
    if (!json_equal(loc.target, op->value))
      return patch_fail(err, i, "value", DCMF_ERR_TEST_FAILED,
                        "The value at the path differs from the test value.");
    return 0;
  case PATCH_MOVE:
  case PATCH_COPY:
    break;
  }

  /* Comparing the encoded pointers is exact because every decoded token
   * has exactly one encoding. */
  if (op->kind == PATCH_MOVE && op->path_len > op->from_len &&
      memcmp(op->path, op->from, op->from_len) == 0 &&
      op->path[op->from_len] == '/')
    return patch_fail(err, i, "path", DCMF_ERR_INVALID,
                      "A value cannot be moved into one of its own children.");
  rc = ptr_locate(root, op->from, op->from_len, buf, 1, &loc, &why);
  if (rc != 0)
    return patch_fail(err, i, "from", rc, why);
  if (op->kind == PATCH_COPY) {
    rc = budget_take(loc.target, left, i, "from", err);
    if (rc != 0)
      return rc;
    value = json_deep_copy(loc.target);
    if (!value)
      return patch_fail(err, i, "from", DCMF_ERR_NOMEM,
                        "Memory ran out while copying the value.");
    return patch_put(root, op->path, op->path_len, buf, PATCH_ADD, value, i,
                     "path", err);
  }
  if (op->path_len == op->from_len &&
      memcmp(op->path, op->from, op->path_len) == 0 && op->path_len > 0)
    return 0;
  /* The extra reference keeps the value alive between remove and add. */
  value = json_incref(loc.target);
  rc = patch_put(root, op->from, op->from_len, buf, PATCH_REMOVE, NULL, i,
                 "from", err);
  if (rc != 0) {
    json_decref(value);
    return rc;
  }
  return patch_put(root, op->path, op->path_len, buf, PATCH_ADD, value, i,
                   "path", err);
}

int dcmf_jsonpatch_apply(json_t *doc, json_t *patch, json_t **result,
                         struct dcmf_jsonpatch_error *err) {
  struct dcmf_jsonpatch_error scratch;
  if (!err)
    err = &scratch;
  patch_fail(err, -1, NULL, 0, "");
  if (!doc || !result)
    return patch_fail(err, -1, NULL, DCMF_ERR_INVALID,
                      "No document or result location was given.");
  if (!json_is_array(patch))
    return patch_fail(err, -1, NULL, DCMF_ERR_MALFORMED,
                      "The patch is not a JSON array.");
  if (json_array_size(patch) == 0)
    return patch_fail(err, -1, NULL, DCMF_ERR_MALFORMED,
                      "The patch holds no operations.");

  json_t *work = json_deep_copy(doc);
  if (!work)
    return patch_fail(err, -1, NULL, DCMF_ERR_NOMEM,
                      "Memory ran out while copying the document.");
  /* Removals do not give budget back: a patch is short, and the bound
   * is on the work it can cause as much as on the result. */
  size_t held = count_values(work, DCMF_JSONPATCH_MAX_VALUES);
  size_t left =
      held < DCMF_JSONPATCH_MAX_VALUES ? DCMF_JSONPATCH_MAX_VALUES - held : 0;
  size_t n;
  json_t *item;
  int rc = 0;
  json_array_foreach(patch, n, item) {
    struct patch_op op;
    long i = (long)n;
    rc = patch_parse(item, i, &op, err);
    if (rc != 0)
      break;
    /* Decoded tokens are never longer than the pointers they come from,
     * so one buffer sized for the longer pointer serves both. */
    char *buf =
        malloc((op.path_len > op.from_len ? op.path_len : op.from_len) + 1);
    if (!buf) {
      rc = patch_fail(err, i, NULL, DCMF_ERR_NOMEM,
                      "Memory ran out while reading the operation.");
      break;
    }
    rc = patch_run(work, &op, buf, i, &left, err);
    free(buf);
    if (rc != 0)
      break;
  }
  if (rc == 0)
    *result = work;
  else
    json_decref(work);
  return rc;
}
