/*
 * jsonpatch.h - RFC 6902 JSON Patch and RFC 6901 JSON Pointer on jansson
 * documents. Pure functions: no I/O, no globals.
 */
#ifndef DCMF_JSONPATCH_H
#define DCMF_JSONPATCH_H

#include <stddef.h>
#include <jansson.h>

/* The most JSON values (objects, arrays and scalars, counted one each) a
 * patched document may hold: far above any MediaContext or AGW context,
 * far below what would stall the control loop. */
#define DCMF_JSONPATCH_MAX_VALUES 100000

/* Details of a failed patch, filled by dcmf_jsonpatch_apply. */
struct dcmf_jsonpatch_error {
  /* Index of the failing operation in the patch array, or -1 when the
   * patch document as a whole is malformed (not an array, empty, ...). */
  long op_index;
  /* JSON Pointer (RFC 6901) naming the offending member of the *patch
   * document*, e.g. "/2/path"; "" for the whole document. */
  char param[64];
  /* One English sentence saying what is wrong. */
  char reason[160];
};

/*
 * Resolves the JSON Pointer |pointer| (RFC 6901, "~0"/"~1" escapes) in
 * |doc|. Returns a borrowed reference to the value, or NULL when the
 * pointer is malformed or names nothing. "" names |doc| itself.
 */
json_t *dcmf_json_pointer_get(json_t *doc, const char *pointer);

/*
 * Applies the RFC 6902 patch |patch| (an array of operation objects with
 * "op" of add, remove, replace, move, copy or test) to |doc| atomically:
 * on success *|result| receives a new reference to the patched document
 * (|doc| itself is never modified); on failure *|result| is untouched,
 * |err| (which may be NULL) says why, and nothing else changes.
 *
 * Rules beyond RFC 6902: the patch must hold at least one operation
 * (TS 29.176 PatchItem array has minItems 1); an operation that replaces
 * or removes the root ("" path) is refused as DCMF_ERR_INVALID; the
 * values that add, replace and copy put into the document count against
 * DCMF_JSONPATCH_MAX_VALUES together with the document's own (a patch of
 * a few copies of the whole document into itself would otherwise double
 * it with each one, which a small body can repeat until memory and time
 * run out), and an operation past it is refused as DCMF_ERR_TOO_LARGE.
 *
 * Returns:
 *   0                     success
 *   DCMF_ERR_MALFORMED    the patch is not an array of well-formed
 *                         operations (missing/ill-typed "op", "path",
 *                         "from", "value"; bad pointer syntax; unknown op)
 *   DCMF_ERR_NOT_FOUND    a path or from names no existing value where
 *                         one is required (remove, replace, move, copy,
 *                         test, or the parent for add)
 *   DCMF_ERR_INVALID      an index out of range, "-" where not allowed,
 *                         move into its own child, root replaced/removed
 *   DCMF_ERR_TEST_FAILED  a test operation's value did not match
 *   DCMF_ERR_TOO_LARGE    the document would hold more than
 *                         DCMF_JSONPATCH_MAX_VALUES values
 *   DCMF_ERR_NOMEM        allocation failed
 */
int dcmf_jsonpatch_apply(json_t *doc, json_t *patch, json_t **result,
                         struct dcmf_jsonpatch_error *err);

#endif
