/*
 * iq_check.h - cmocka checks of the AGW's Iq parser (agwiq.h) for the
 * unit tests of its paths: a document parsed, or refused naming a JSON
 * Pointer among its invalid parameters.
 */
#ifndef DCMF_TEST_IQ_CHECK_H
#define DCMF_TEST_IQ_CHECK_H

#include <jansson.h>

#include "agwiq.h"

/* Fails the test unless |p| is a 400 naming |param|. */
void iq_assert_names(const struct dcmf_problem *p, const char *param);

/* Parses |doc| (reference stolen), which must be refused naming
 * |param|. */
void iq_expect_refused(json_t *doc, const char *param);

/* Parses |doc| (borrowed) into |iq|, failing the test with the first
 * problem if it is refused. */
void iq_parse_ok(json_t *doc, struct dcmf_agwiq *iq);

#endif
