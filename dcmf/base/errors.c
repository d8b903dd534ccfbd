#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

const char *dcmf_strerror(int err) {
  switch (err) {
  case DCMF_OK:
    return "ok";
  case DCMF_ERR_MALFORMED:
    return "malformed input";
  case DCMF_ERR_INVALID:
    return "invalid input";
  case DCMF_ERR_NOT_FOUND:
    return "not found";
  case DCMF_ERR_TEST_FAILED:
    return "test operation failed";
  case DCMF_ERR_EXHAUSTED:
    return "resource exhausted";
  case DCMF_ERR_TOO_LARGE:
    return "too large";
  case DCMF_ERR_SYSTEM:
    return "system call failed";
  case DCMF_ERR_AUTH:
    return "authentication failed";
  case DCMF_ERR_REPLAY:
    return "replayed";
  case DCMF_ERR_NOT_READY:
    return "not ready yet";
  case DCMF_ERR_NOMEM:
    return "out of memory";
  default:
    return "unknown error";
  }
}

int dcmf_invalid(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return DCMF_ERR_INVALID;
}
