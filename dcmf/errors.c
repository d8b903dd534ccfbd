#include "errors.h"

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
  case DCMF_ERR_NOMEM:
    return "out of memory";
  default:
    return "unknown error";
  }
}
