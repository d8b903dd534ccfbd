#include "dcep.h"

#include <string.h>

#include "errors.h"

static uint16_t be16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

static int known_channel_type(uint8_t t) {
  uint8_t base = (uint8_t)(t & ~DCMF_DCEP_UNORDERED);
  return base == DCMF_DCEP_RELIABLE ||
         base == DCMF_DCEP_PARTIAL_RELIABLE_REXMIT ||
         base == DCMF_DCEP_PARTIAL_RELIABLE_TIMED;
}

int dcmf_dcep_parse(const uint8_t *msg, size_t len,
                    struct dcmf_dcep_open *open) {
  if (len < 1) {
    return DCMF_ERR_MALFORMED;
  }
  if (msg[0] == DCMF_DCEP_ACK) {
    return DCMF_DCEP_ACK; /* RFC 8832 5.2: extra bytes are ignored */
  }
  if (msg[0] != DCMF_DCEP_OPEN || len < 12) {
    return DCMF_ERR_MALFORMED;
  }
  memset(open, 0, sizeof(*open));
  open->channel_type = msg[1];
  open->priority = be16(msg + 2);
  open->reliability = be32(msg + 4);
  open->label_len = be16(msg + 8);
  open->protocol_len = be16(msg + 10);
  if (!known_channel_type(open->channel_type) ||
      (size_t)12 + open->label_len + open->protocol_len > len) {
    return DCMF_ERR_MALFORMED;
  }
  open->label = msg + 12;
  open->protocol = msg + 12 + open->label_len;
  return DCMF_DCEP_OPEN;
}

int dcmf_dcep_build_open(const struct dcmf_dcep_open *open, uint8_t *out,
                         size_t cap) {
  size_t len = (size_t)12 + open->label_len + open->protocol_len;
  if (len > cap) {
    return DCMF_ERR_TOO_LARGE;
  }
  out[0] = DCMF_DCEP_OPEN;
  out[1] = open->channel_type;
  out[2] = (uint8_t)(open->priority >> 8);
  out[3] = (uint8_t)open->priority;
  for (int i = 0; i < 4; i++) {
    out[4 + i] = (uint8_t)(open->reliability >> (24 - 8 * i));
  }
  out[8] = (uint8_t)(open->label_len >> 8);
  out[9] = (uint8_t)open->label_len;
  out[10] = (uint8_t)(open->protocol_len >> 8);
  out[11] = (uint8_t)open->protocol_len;
  if (open->label_len > 0) {
    memcpy(out + 12, open->label, open->label_len);
  }
  if (open->protocol_len > 0) {
    memcpy(out + 12 + open->label_len, open->protocol, open->protocol_len);
  }
  return (int)len;
}
