/*
 * log.h - leveled logging as text lines or JSON lines on a stream.
 *
 * A logger is a plain struct owned by the daemon and passed to the glue
 * that logs; protocol engines never log (they return errors and counters).
 */
#ifndef DCMF_LOG_H
#define DCMF_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum dcmf_log_level {
  DCMF_LOG_ERROR,
  DCMF_LOG_WARN,
  DCMF_LOG_INFO,
  DCMF_LOG_DEBUG,
};

enum dcmf_log_format {
  DCMF_LOG_TEXT,
  DCMF_LOG_JSON,
};

struct dcmf_log {
  FILE *stream; /* borrowed; stderr in dcmfd */
  enum dcmf_log_level level;
  enum dcmf_log_format format;
};

/* Writes |time_ms| (ms since the epoch, UTC, not negative) as RFC 3339
 * with milliseconds ("2026-12-05T14:55:00.123Z", 24 bytes and the NUL)
 * into |out| of |cap| bytes: the form of log lines and of events. */
void dcmf_format_time_ms(int64_t time_ms, char *out, size_t cap);

/* Parses "error", "warn", "info" or "debug". Returns 0 or DCMF_ERR_INVALID. */
int dcmf_log_level_parse(const char *text, enum dcmf_log_level *level);

/* Parses "text" or "json". Returns 0 or DCMF_ERR_INVALID. */
int dcmf_log_format_parse(const char *text, enum dcmf_log_format *format);

/*
 * Writes one line if |level| is enabled. |component| names the module
 * ("api", "h2"). In JSON format the line is
 * {"ts":..,"level":..,"component":..,"msg":..}; in text format
 * "<ts> <level> <component>: <msg>". Newlines in the message are escaped.
 */
void dcmf_log_write(const struct dcmf_log *log, enum dcmf_log_level level,
                    const char *component, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define DCMF_LOGE(l, c, ...) dcmf_log_write((l), DCMF_LOG_ERROR, (c), __VA_ARGS__)
#define DCMF_LOGW(l, c, ...) dcmf_log_write((l), DCMF_LOG_WARN, (c), __VA_ARGS__)
#define DCMF_LOGI(l, c, ...) dcmf_log_write((l), DCMF_LOG_INFO, (c), __VA_ARGS__)
#define DCMF_LOGD(l, c, ...) dcmf_log_write((l), DCMF_LOG_DEBUG, (c), __VA_ARGS__)

#endif
