/*
 * Fuzz target for the JSON Patch engine (RFC 6902) behind every PATCH of
 * the control APIs: the input is split at the first NUL byte into a
 * target document and a patch, both parsed as JSON; when both parse, the
 * patch is applied.
 *
 * Properties checked (abort() on violation):
 * - the target document is never modified, whatever the outcome;
 * - success returns a document and a known code otherwise, with the
 *   error's param and reason NUL-terminated and a reason given;
 * - applying the same patch twice gives the same outcome (no hidden
 *   state between calls);
 * - a result never holds more than DCMF_JSONPATCH_MAX_VALUES values
 *   (the corpus keeps a patch that doubled the document with each copy
 *   and took 51 s before that bound).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "errors.h"
#include "jsonpatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int known(int rv) {
  return rv == 0 || rv == DCMF_ERR_MALFORMED || rv == DCMF_ERR_NOT_FOUND ||
         rv == DCMF_ERR_INVALID || rv == DCMF_ERR_TEST_FAILED ||
         rv == DCMF_ERR_TOO_LARGE || rv == DCMF_ERR_NOMEM;
}

static int apply(json_t *doc, json_t *patch, json_t **result) {
  struct dcmf_jsonpatch_error err;
  memset(&err, 0x5a, sizeof(err)); /* garbage the engine must overwrite */
  *result = NULL;
  int rv = dcmf_jsonpatch_apply(doc, patch, result, &err);
  if (!known(rv) || (rv == 0) != (*result != NULL)) {
    abort();
  }
  if (rv != 0 && rv != DCMF_ERR_NOMEM &&
      (memchr(err.param, 0, sizeof(err.param)) == NULL ||
       memchr(err.reason, 0, sizeof(err.reason)) == NULL ||
       err.reason[0] == '\0' || err.op_index < -1)) {
    abort();
  }
  return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  if (nul == NULL) {
    return 0;
  }
  size_t doc_len = (size_t)(nul - data);
  json_t *doc = json_loadb((const char *)data, doc_len, JSON_DECODE_ANY, NULL);
  json_t *patch = json_loadb((const char *)nul + 1, size - doc_len - 1,
                             JSON_DECODE_ANY, NULL);
  if (doc != NULL && patch != NULL) {
    json_t *before = json_deep_copy(doc);
    json_t *first, *second;
    int rv1 = apply(doc, patch, &first);
    if (rv1 == 0 && json_dumpb(first, NULL, 0, 0) > 64u * 1024 * 1024) {
      abort(); /* far past what the value bound lets through */
    }
    if (before != NULL && !json_equal(before, doc)) {
      abort(); /* the target must stay untouched */
    }
    int rv2 = apply(doc, patch, &second);
    if (rv1 != rv2 ||
        (rv1 == 0 && !json_equal(first, second))) {
      abort();
    }
    json_decref(first);
    json_decref(second);
    json_decref(before);
  }
  json_decref(doc);
  json_decref(patch);
  return 0;
}
