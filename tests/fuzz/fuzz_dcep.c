/*
 * Fuzz target for DCEP (RFC 8832) messages: whatever parses must survive
 * a build/parse round trip unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dcmf_dcep_open open;
  if (dcmf_dcep_parse(data, size, &open) != DCMF_DCEP_OPEN) {
    return 0;
  }
  if (open.label + open.label_len > data + size ||
      open.protocol + open.protocol_len > data + size) {
    abort(); /* pointers must stay inside the message */
  }
  uint8_t out[12 + 2 * 65535];
  int len = dcmf_dcep_build_open(&open, out, sizeof(out));
  struct dcmf_dcep_open back;
  if (len < 12 || dcmf_dcep_parse(out, (size_t)len, &back) != DCMF_DCEP_OPEN ||
      back.channel_type != open.channel_type ||
      back.priority != open.priority ||
      back.reliability != open.reliability ||
      back.label_len != open.label_len ||
      back.protocol_len != open.protocol_len ||
      memcmp(back.label, open.label, open.label_len) != 0 ||
      memcmp(back.protocol, open.protocol, open.protocol_len) != 0) {
    abort();
  }
  return 0;
}
