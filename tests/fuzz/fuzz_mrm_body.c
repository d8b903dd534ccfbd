/*
 * Fuzz target for the Nmf_MRM request-body path: the input is split at
 * the first NUL byte into a create body and, if present, a JSON Patch
 * body. Both go through the API router exactly as dcmfd would hand them
 * over (validation, registry, JSON Patch, rendering), then the context is
 * read back and deleted, and the port pool must be empty again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "context.h"
#include "fake_res.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void request(struct dcmf_api *api, const char *method,
                    const char *path, const char *type, const uint8_t *body,
                    size_t len, struct dcmf_api_response *resp) {
  struct dcmf_api_request req = {.method = method,
                                 .path = path,
                                 .scheme = "http",
                                 .authority = "127.0.0.1:8090",
                                 .content_type = type,
                                 .body = body,
                                 .body_len = len};
  memset(resp, 0, sizeof(*resp));
  dcmf_api_handle(api, &req, resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fake_res fr;
  struct dcmf_resources res = fake_res_init(&fr, 40000, 8);
  struct dcmf_registry_settings rs = {
      .advertise_addr = "127.0.0.1",
      .local_fingerprint = "SHA-256 00:11",
      .sctp_port = 5000,
      .max_contexts = 4,
  };
  struct dcmf_registry *reg;
  if (dcmf_registry_new(&reg, &rs, &res) != 0) {
    return 0;
  }
  struct dcmf_metrics metrics;
  memset(&metrics, 0, sizeof(metrics));
  struct dcmf_api api = {.registry = reg, .metrics = &metrics};

  const uint8_t *nul = memchr(data, 0, size);
  size_t create_len = nul ? (size_t)(nul - data) : size;
  struct dcmf_api_response resp;
  request(&api, "POST", "/nmf-mrm/v1/contexts", "application/json", data,
          create_len, &resp);
  if (resp.status == 201) {
    struct dcmf_context *ctx = dcmf_registry_first(reg);
    char path[128];
    snprintf(path, sizeof(path), "/nmf-mrm/v1/contexts/%s", ctx->id);
    if (nul != NULL) {
      struct dcmf_api_response presp;
      request(&api, "PATCH", path, "application/json-patch+json", nul + 1,
              size - create_len - 1, &presp);
      if (presp.status != 200 && presp.status != 400 && presp.status != 403 &&
          presp.status != 409 && presp.status != 503) {
        abort();
      }
      dcmf_api_response_free(&presp);
    }
    struct dcmf_api_response gresp;
    request(&api, "GET", path, NULL, NULL, 0, &gresp);
    dcmf_api_response_free(&gresp);
    request(&api, "DELETE", path, NULL, NULL, 0, &gresp);
    if (gresp.status != 204) {
      abort();
    }
    dcmf_api_response_free(&gresp);
  } else if (resp.status != 400 && resp.status != 503) {
    abort(); /* the body path answers 201, 400 or 503 only */
  }
  dcmf_api_response_free(&resp);
  if (fr.in_use != 0) {
    abort(); /* a port leaked */
  }
  dcmf_registry_del(reg);
  return 0;
}
