/*
 * Unit tests for the counters table (counters.h): the sum over workers
 * and the /metrics lines generated from it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "counters.h"
#include "metrics.h"

/* The table once more, as data the tests can walk. */
struct row {
  const char *field, *where, *type, *name, *series, *help;
  size_t offset;
};

#define ROW(field, where, type, name, series, help)                            \
  {#field, #where, #type, name, series, help,                                  \
   offsetof(struct dcmf_media_figures, field)},
static const struct row rows[] = {DCMF_COUNTERS(ROW)};
#undef ROW
#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static uint64_t *value_of(struct dcmf_media_figures *f, size_t i) {
  return (uint64_t *)(void *)((char *)f + rows[i].offset);
}

/* Worker rows add up over workers; control rows are not the workers'. */
static void test_sum_over_workers(void **state) {
  (void)state;
  static struct dcmf_media_stats a, b;
  atomic_store(&a.sessions, 2);
  atomic_store(&b.sessions, 3);
  atomic_store(&a.relay_bytes, 1000);
  atomic_store(&b.dtls_hello_rate_limited, 7);
  struct dcmf_media_figures sum;
  memset(&sum, 0, sizeof(sum));
  sum.events_sent = 11; /* filled by the control loop */
  dcmf_counters_add(&sum, &a);
  dcmf_counters_add(&sum, &b);
  assert_int_equal(sum.sessions, 5);
  assert_int_equal(sum.relay_bytes, 1000);
  assert_int_equal(sum.dtls_hello_rate_limited, 7);
  assert_int_equal(sum.events_sent, 11);
  assert_int_equal(sum.messages_in, 0);
}

/* The table's own rules: a family's rows are consecutive, its first row
 * has the help text and the later ones none, and types agree. */
static void test_table_is_consistent(void **state) {
  (void)state;
  for (size_t i = 0; i < N_ROWS; i++) {
    assert_true(strncmp(rows[i].name, "dcmf_", 5) == 0);
    int first = i == 0 || strcmp(rows[i].name, rows[i - 1].name) != 0;
    if (first) {
      assert_true(rows[i].help[0] != '\0');
      for (size_t j = 0; j + 1 < i; j++) {
        assert_true(strcmp(rows[j].name, rows[i].name) != 0);
      }
    } else {
      assert_string_equal(rows[i].help, "");
      assert_string_equal(rows[i].type, rows[i - 1].type);
      assert_string_not_equal(rows[i].series, rows[i - 1].series);
    }
    assert_true(strcmp(rows[i].where, "worker") == 0 ||
                strcmp(rows[i].where, "control") == 0);
  }
}

/* Every row renders as one sample line with its own value, under one
 * HELP and TYPE per family. */
static void test_render_every_row(void **state) {
  (void)state;
  static struct dcmf_metrics m;
  struct dcmf_gauges g;
  memset(&g, 0, sizeof(g));
  for (size_t i = 0; i < N_ROWS; i++) {
    *value_of(&g.media, i) = 1000 + i;
  }
  struct dcmf_buf out = {0};
  assert_int_equal(dcmf_metrics_render(&m, &g, "9.9", &out), 0);
  const char *text = out.data;
  const char *at = text;
  for (size_t i = 0; i < N_ROWS; i++) {
    char line[256];
    if (i == 0 || strcmp(rows[i].name, rows[i - 1].name) != 0) {
      snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n",
               rows[i].name, rows[i].help, rows[i].name, rows[i].type);
      const char *h = strstr(at, line);
      assert_non_null(h);
      at = h + strlen(line);
      /* Only one header per family. */
      snprintf(line, sizeof(line), "# HELP %s ", rows[i].name);
      assert_null(strstr(at, line));
    }
    snprintf(line, sizeof(line), "%s%s %zu\n", rows[i].name, rows[i].series,
             1000 + i);
    /* In table order, straight after the one before. */
    assert_true(strncmp(at, line, strlen(line)) == 0);
    at += strlen(line);
  }
  /* A few lines exactly as dashboards and the integration tests read
   * them. */
  assert_non_null(strstr(text, "# HELP dcmf_media_sessions DC media sessions "
                               "in the media workers.\n"
                               "# TYPE dcmf_media_sessions gauge\n"));
  assert_non_null(strstr(text, "dcmf_proxy_upstream_latency_ms_count "));
  assert_non_null(strstr(text, "dcmf_events_total{result=\"dropped\"} "));
  dcmf_buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sum_over_workers),
      cmocka_unit_test(test_table_is_consistent),
      cmocka_unit_test(test_render_every_row),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
