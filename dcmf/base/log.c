#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "errors.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int dcmf_log_level_parse(const char *text, enum dcmf_log_level *level) {
  for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if (strcmp(text, level_names[i]) == 0) {
      *level = (enum dcmf_log_level)i;
      return 0;
    }
  }
  return DCMF_ERR_INVALID;
}

int dcmf_log_format_parse(const char *text, enum dcmf_log_format *format) {
  if (strcmp(text, "text") == 0) {
    *format = DCMF_LOG_TEXT;
  } else if (strcmp(text, "json") == 0) {
    *format = DCMF_LOG_JSON;
  } else {
    return DCMF_ERR_INVALID;
  }
  return 0;
}

void dcmf_format_time_ms(int64_t time_ms, char *out, size_t cap) {
  time_t secs = (time_t)(time_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, cap - n, ".%03dZ", (int)(time_ms % 1000));
}

/* Logging is glue, so it may read the wall clock. */
static void log_timestamp(char *out, size_t cap) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  dcmf_format_time_ms((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000L,
                      out, cap);
}

void dcmf_log_write(const struct dcmf_log *log, enum dcmf_log_level level,
                    const char *component, const char *fmt, ...) {
  if (log == NULL || log->stream == NULL || level > log->level) {
    return;
  }
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);

  char ts[40];
  log_timestamp(ts, sizeof(ts));

  if (log->format == DCMF_LOG_JSON) {
    json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level",
                             level_names[level], "component", component,
                             "msg", msg);
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    if (text != NULL) {
      fprintf(log->stream, "%s\n", text);
    }
    free(text);
    json_decref(line);
  } else {
    /* Keep one event per line even if a peer-controlled string slipped
     * a newline into the message. */
    for (char *p = msg; *p; p++) {
      if (*p == '\n' || *p == '\r') {
        *p = ' ';
      }
    }
    fprintf(log->stream, "%s %-5s %s: %s\n", ts, level_names[level], component,
            msg);
  }
  fflush(log->stream);
}
