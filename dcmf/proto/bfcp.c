#include "bfcp.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

static uint16_t be16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

int dcmf_bfcp_parse_header(const uint8_t *buf, size_t len,
                           enum dcmf_bfcp_transport transport,
                           struct dcmf_bfcp_header *h) {
  memset(h, 0, sizeof(*h));
  if (len < DCMF_BFCP_HEADER_LEN) {
    return DCMF_ERR_MALFORMED;
  }
  h->version = (uint8_t)(buf[0] >> 5);
  h->r = (buf[0] >> 4) & 1;
  h->f = (buf[0] >> 3) & 1;
  h->primitive = buf[1];
  h->payload_len = be16(buf + 2);
  h->conference_id = be32(buf + 4);
  h->transaction_id = be16(buf + 8);
  h->user_id = be16(buf + 10);
  h->header_len = DCMF_BFCP_HEADER_LEN;
  h->message_len = DCMF_BFCP_HEADER_LEN + (size_t)h->payload_len * 4;
  if (h->version != (transport == DCMF_BFCP_RELIABLE ? 1 : 2)) {
    return DCMF_ERR_INVALID;
  }
  /* Over a reliable transport F means nothing and the fragment fields
   * are never there (§5.1); over UDP they follow the 12 octets. */
  if (transport == DCMF_BFCP_UNRELIABLE && h->f) {
    if (len < DCMF_BFCP_FRAG_HEADER_LEN) {
      return DCMF_ERR_MALFORMED;
    }
    h->frag_offset = be16(buf + 12);
    h->frag_len = be16(buf + 14);
    h->header_len = DCMF_BFCP_FRAG_HEADER_LEN;
  }
  return 0;
}

void dcmf_bfcp_write_header(const struct dcmf_bfcp_header *h,
                            uint8_t out[DCMF_BFCP_HEADER_LEN]) {
  out[0] = (uint8_t)((h->version & 7) << 5 | (h->r ? 0x10 : 0) |
                     (h->f ? 0x08 : 0));
  out[1] = h->primitive;
  out[2] = (uint8_t)(h->payload_len >> 8);
  out[3] = (uint8_t)h->payload_len;
  for (int i = 0; i < 4; i++) {
    out[4 + i] = (uint8_t)(h->conference_id >> (24 - 8 * i));
  }
  out[8] = (uint8_t)(h->transaction_id >> 8);
  out[9] = (uint8_t)h->transaction_id;
  out[10] = (uint8_t)(h->user_id >> 8);
  out[11] = (uint8_t)h->user_id;
}

int dcmf_bfcp_framer_init(struct dcmf_bfcp_framer *f, size_t max_message) {
  memset(f, 0, sizeof(*f));
  if (max_message < DCMF_BFCP_HEADER_LEN ||
      max_message > DCMF_BFCP_MAX_MESSAGE) {
    return DCMF_ERR_INVALID;
  }
  f->max_message = max_message;
  return 0;
}

void dcmf_bfcp_framer_free(struct dcmf_bfcp_framer *f) {
  dcmf_streambuf_free(&f->win);
  memset(f, 0, sizeof(*f));
}

int dcmf_bfcp_framer_feed(struct dcmf_bfcp_framer *f, const uint8_t *data,
                          size_t len) {
  if (f->err != 0) {
    return f->err;
  }
  size_t taken;
  /* BFCP messages are small (§5.1 asks entities to keep them so), and
   * the bound is at most 256 KiB, so the int return cannot overflow. */
  int rv = dcmf_streambuf_feed(&f->win, data, len, f->max_message, &taken);
  return rv != 0 ? rv : (int)taken;
}

int dcmf_bfcp_framer_next(struct dcmf_bfcp_framer *f, const uint8_t **msg,
                          size_t *msg_len, struct dcmf_bfcp_header *h) {
  if (f->err != 0) {
    return f->err;
  }
  size_t avail = dcmf_streambuf_avail(&f->win);
  if (avail < DCMF_BFCP_HEADER_LEN) {
    return 0;
  }
  const uint8_t *b = dcmf_streambuf_data(&f->win);
  int rv = dcmf_bfcp_parse_header(b, avail, DCMF_BFCP_RELIABLE, h);
  if (rv == 0 && h->message_len > f->max_message) {
    rv = DCMF_ERR_TOO_LARGE;
  }
  if (rv != 0) {
    f->err = rv;
    return rv;
  }
  if (avail < h->message_len) {
    return 0;
  }
  *msg = b;
  *msg_len = h->message_len;
  dcmf_streambuf_consume(&f->win, h->message_len);
  return 1;
}
