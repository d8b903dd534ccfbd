#include "iq_check.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"

void iq_assert_names(const struct dcmf_problem *p, const char *param) {
  assert_int_equal(p->status, 400);
  int found = 0;
  for (size_t i = 0; i < p->n_invalid; i++) {
    found |= strcmp(p->invalid[i].param, param) == 0;
  }
  if (!found) {
    fail_msg("no invalid param %s (first: %s)", param,
             p->n_invalid ? p->invalid[0].param : "none");
  }
}

void iq_expect_refused(json_t *doc, const char *param) {
  struct dcmf_agwiq iq;
  struct dcmf_problem p = {0};
  assert_int_equal(dcmf_agwiq_parse(doc, &iq, &p), DCMF_ERR_INVALID);
  iq_assert_names(&p, param);
  json_decref(doc);
}

void iq_parse_ok(json_t *doc, struct dcmf_agwiq *iq) {
  struct dcmf_problem p = {0};
  if (dcmf_agwiq_parse(doc, iq, &p) != 0) {
    fail_msg("refused: %s: %s", p.n_invalid ? p.invalid[0].param : "",
             p.n_invalid ? p.invalid[0].reason : p.detail);
  }
}
