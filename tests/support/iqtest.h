/*
 * iqtest.h - what the Iq tests (tests/unit/test_agw_iq*.c) share:
 * loading a context document, reaching a termination, and parsing one
 * with the outcome asserted (cmocka). Each test keeps its own documents
 * and its own checks of the parsed Iq.
 */
#ifndef DCMF_TEST_IQTEST_H
#define DCMF_TEST_IQTEST_H

#include <stddef.h>

#include <jansson.h>

#include "agwiq.h"
#include "problem.h"

/* Loads the JSON |text| (asserts it is valid). The caller owns it. */
json_t *iqtest_doc(const char *text);

/* The |i|th member of the document's "terminations" (borrowed). */
json_t *iqtest_term(json_t *doc, size_t i);

/* Fails unless |p| is a 400 that names |param| among its invalid
 * params. */
void iqtest_names(const struct dcmf_problem *p, const char *param);

/* Parses |doc| (consumed) expecting a refusal (DCMF_ERR_INVALID) that
 * names |param|; returns the problem for further checks. */
struct dcmf_problem iqtest_refused(json_t *doc, const char *param);

/* Parses |doc| (kept) into |*iq|, failing with the first invalid param
 * if it is refused, and checks no problem was recorded. */
void iqtest_parse_ok(json_t *doc, struct dcmf_agwiq *iq);

/* Parses |before| and |after| (both kept; both must be taken) and
 * returns what dcmf_agwiq_patch_check says of going from one to the
 * other, with |*ch| and |*p| as it fills them. */
int iqtest_patch(json_t *before, json_t *after, struct dcmf_agwiq_change *ch,
                 struct dcmf_problem *p);

#endif
