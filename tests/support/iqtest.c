#include "iqtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"

json_t *iqtest_doc(const char *text) {
  json_error_t err;
  json_t *doc = json_loads(text, 0, &err);
  assert_non_null(doc);
  return doc;
}

json_t *iqtest_term(json_t *doc, size_t i) {
  return json_array_get(json_object_get(doc, "terminations"), i);
}

void iqtest_names(const struct dcmf_problem *p, const char *param) {
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

struct dcmf_problem iqtest_refused(json_t *doc, const char *param) {
  struct dcmf_agwiq iq;
  struct dcmf_problem p = {0};
  assert_int_equal(dcmf_agwiq_parse(doc, &iq, &p), DCMF_ERR_INVALID);
  iqtest_names(&p, param);
  json_decref(doc);
  return p;
}

void iqtest_parse_ok(json_t *doc, struct dcmf_agwiq *iq) {
  struct dcmf_problem p = {0};
  if (dcmf_agwiq_parse(doc, iq, &p) != 0) {
    fail_msg("refused: %s: %s", p.n_invalid ? p.invalid[0].param : "",
             p.n_invalid ? p.invalid[0].reason : p.detail);
  }
  assert_int_equal(p.status, 0);
}

int iqtest_patch(json_t *before, json_t *after, struct dcmf_agwiq_change *ch,
                 struct dcmf_problem *p) {
  struct dcmf_agwiq a, b;
  iqtest_parse_ok(before, &a);
  iqtest_parse_ok(after, &b);
  return dcmf_agwiq_patch_check(&a, &b, ch, p);
}
