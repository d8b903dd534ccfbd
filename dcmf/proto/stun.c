/*
 * stun.c - STUN message codec for ICE (RFC 8489 / RFC 5389, RFC 8445).
 *
 * Parsing borrows the packet and never allocates; building writes into
 * caller memory. HMAC-SHA1 comes from OpenSSL's EVP_MAC, CRC-32 is
 * computed here with a 16-entry constant table (a nibble at a time).
 */
#include "stun.h"

#include <netinet/in.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "errors.h"

#define STUN_FINGERPRINT_XOR 0x5354554eu
#define STUN_ATTR_HDR 4

static uint16_t stun_get16(const uint8_t *p) {
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t stun_get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static uint64_t stun_get64(const uint8_t *p) {
  return (uint64_t)stun_get32(p) << 32 | stun_get32(p + 4);
}

static void stun_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void stun_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static size_t stun_pad4(size_t n) {
  return (n + 3) & ~(size_t)3;
}

/* CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320) of |len| bytes. */
static uint32_t stun_crc32(const uint8_t *p, size_t len) {
  static const uint32_t nibble[16] = {
      0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
      0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
      0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
  };
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) {
    crc ^= p[i];
    crc = (crc >> 4) ^ nibble[crc & 0x0F];
    crc = (crc >> 4) ^ nibble[crc & 0x0F];
  }
  return crc ^ 0xFFFFFFFFu;
}

/* HMAC-SHA1 over |hdr| (a 20-byte header) followed by |rest|. */
static int stun_hmac(const uint8_t *key, size_t key_len, const uint8_t *hdr,
                     const uint8_t *rest, size_t rest_len,
                     uint8_t out[DCMF_STUN_MI_LEN]) {
  static const uint8_t empty_key[1] = {0};
  char digest[] = "SHA1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  int rc = DCMF_ERR_NOMEM;
  size_t out_len = 0;
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
  if (ctx == NULL)
    goto fail_ctx;
  if (key == NULL || key_len == 0) {
    /* HMAC pads keys with zeros, so one zero byte equals an empty key. */
    key = empty_key;
    key_len = sizeof(empty_key);
  }
  if (EVP_MAC_init(ctx, key, key_len, params) == 1 &&
      EVP_MAC_update(ctx, hdr, DCMF_STUN_HEADER_LEN) == 1 &&
      EVP_MAC_update(ctx, rest, rest_len) == 1 &&
      EVP_MAC_final(ctx, out, &out_len, DCMF_STUN_MI_LEN) == 1 &&
      out_len == DCMF_STUN_MI_LEN)
    rc = 0;
  EVP_MAC_CTX_free(ctx);
fail_ctx:
  EVP_MAC_free(mac);
  return rc;
}

int dcmf_stun_looks_like(const uint8_t *pkt, size_t len) {
  return len >= DCMF_STUN_HEADER_LEN && pkt[0] <= 3 &&
         stun_get32(pkt + 4) == DCMF_STUN_MAGIC_COOKIE;
}

static int stun_known(uint16_t type) {
  switch (type) {
  case DCMF_STUN_ATTR_USERNAME:
  case DCMF_STUN_ATTR_MESSAGE_INTEGRITY:
  case DCMF_STUN_ATTR_ERROR_CODE:
  case DCMF_STUN_ATTR_UNKNOWN_ATTRIBUTES:
  case DCMF_STUN_ATTR_XOR_MAPPED_ADDRESS:
  case DCMF_STUN_ATTR_PRIORITY:
  case DCMF_STUN_ATTR_USE_CANDIDATE:
    return 1;
  default:
    return 0;
  }
}

/* Decodes XOR-MAPPED-ADDRESS; returns 0 or -1 if malformed. */
static int stun_parse_xor_address(struct dcmf_stun_msg *msg, const uint8_t *v,
                                  size_t len) {
  uint16_t port;
  memset(&msg->mapped, 0, sizeof(msg->mapped));
  if (len < 4) /* the first byte is reserved and ignored */
    return -1;
  port = (uint16_t)(stun_get16(v + 2) ^ (DCMF_STUN_MAGIC_COOKIE >> 16));
  if (v[1] == 0x01 && len == 8) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&msg->mapped;
    uint8_t *a = (uint8_t *)&sin->sin_addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    for (size_t i = 0; i < 4; i++)
      a[i] = (uint8_t)(v[4 + i] ^ msg->pkt[4 + i]);
    return 0;
  }
  if (v[1] == 0x02 && len == 20) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&msg->mapped;
    uint8_t *a = (uint8_t *)&sin6->sin6_addr;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    /* The pad is the magic cookie followed by the transaction id. */
    for (size_t i = 0; i < 16; i++)
      a[i] = (uint8_t)(v[4 + i] ^ msg->pkt[4 + i]);
    return 0;
  }
  return -1;
}

static int stun_parse_error_code(struct dcmf_stun_msg *msg, const uint8_t *v,
                                 size_t len) {
  unsigned cls, num;
  if (len < 4 || len > 4 + 763)
    return -1;
  cls = v[2] & 0x07u;
  num = v[3];
  if (cls < 3 || cls > 6 || num > 99)
    return -1;
  msg->error_code = cls * 100 + num;
  msg->error_reason = v + 4;
  msg->error_reason_len = len - 4;
  return 0;
}

/* Decodes one known attribute; returns 0 or -1 if its value is bad. */
static int stun_parse_attr(struct dcmf_stun_msg *msg, uint16_t type,
                           const uint8_t *v, size_t len, size_t at) {
  switch (type) {
  case DCMF_STUN_ATTR_USERNAME:
    if (len > DCMF_STUN_USERNAME_MAX)
      return -1;
    msg->username = v;
    msg->username_len = len;
    return 0;
  case DCMF_STUN_ATTR_MESSAGE_INTEGRITY:
    msg->mi_offset = at;
    return len == DCMF_STUN_MI_LEN ? 0 : -1;
  case DCMF_STUN_ATTR_ERROR_CODE:
    return stun_parse_error_code(msg, v, len);
  case DCMF_STUN_ATTR_UNKNOWN_ATTRIBUTES:
    if (len % 2 != 0)
      return -1;
    for (size_t i = 0; i < len / 2 && i < DCMF_STUN_UNKNOWN_MAX; i++)
      msg->listed_unknown[msg->listed_unknown_count++] = stun_get16(v + 2 * i);
    return 0;
  case DCMF_STUN_ATTR_XOR_MAPPED_ADDRESS:
    return stun_parse_xor_address(msg, v, len);
  case DCMF_STUN_ATTR_PRIORITY:
    if (len != 4)
      return -1;
    msg->priority = stun_get32(v);
    return 0;
  case DCMF_STUN_ATTR_USE_CANDIDATE:
    return len == 0 ? 0 : -1;
  case DCMF_STUN_ATTR_ICE_CONTROLLED:
    if (len != 8)
      return -1;
    msg->controlled_tie_breaker = stun_get64(v);
    return 0;
  case DCMF_STUN_ATTR_ICE_CONTROLLING:
    if (len != 8)
      return -1;
    msg->controlling_tie_breaker = stun_get64(v);
    return 0;
  default:
    return 0;
  }
}

static unsigned stun_has_bit(uint16_t type) {
  switch (type) {
  case DCMF_STUN_ATTR_USERNAME:
    return DCMF_STUN_HAS_USERNAME;
  case DCMF_STUN_ATTR_MESSAGE_INTEGRITY:
    return DCMF_STUN_HAS_MESSAGE_INTEGRITY;
  case DCMF_STUN_ATTR_ERROR_CODE:
    return DCMF_STUN_HAS_ERROR_CODE;
  case DCMF_STUN_ATTR_UNKNOWN_ATTRIBUTES:
    return DCMF_STUN_HAS_UNKNOWN_ATTRIBUTES;
  case DCMF_STUN_ATTR_XOR_MAPPED_ADDRESS:
    return DCMF_STUN_HAS_XOR_MAPPED_ADDRESS;
  case DCMF_STUN_ATTR_PRIORITY:
    return DCMF_STUN_HAS_PRIORITY;
  case DCMF_STUN_ATTR_USE_CANDIDATE:
    return DCMF_STUN_HAS_USE_CANDIDATE;
  case DCMF_STUN_ATTR_ICE_CONTROLLED:
    return DCMF_STUN_HAS_ICE_CONTROLLED;
  case DCMF_STUN_ATTR_ICE_CONTROLLING:
    return DCMF_STUN_HAS_ICE_CONTROLLING;
  default:
    return 0;
  }
}

/*
 * Records one attribute found at offset |at| (its header). |seen| holds
 * the DCMF_STUN_HAS_* bits of known attributes met so far, well-formed
 * or not: only the first occurrence of each counts.
 */
static void stun_take_attr(struct dcmf_stun_msg *msg, unsigned *seen,
                           uint16_t type, const uint8_t *v, size_t len,
                           size_t at) {
  unsigned bit = stun_has_bit(type);
  if (bit != 0) {
    if (*seen & bit)
      return;
    *seen |= bit;
    if (stun_parse_attr(msg, type, v, len, at) == 0) {
      msg->present |= bit;
    } else if (!msg->malformed) {
      msg->malformed = 1;
      msg->malformed_attr = type;
    }
    return;
  }
  if (type < 0x8000 && !stun_known(type) &&
      msg->unknown_count < DCMF_STUN_UNKNOWN_MAX) {
    for (size_t i = 0; i < msg->unknown_count; i++)
      if (msg->unknown[i] == type)
        return;
    msg->unknown[msg->unknown_count++] = type;
  }
}

int dcmf_stun_parse(struct dcmf_stun_msg *msg, const uint8_t *pkt, size_t len) {
  size_t at = DCMF_STUN_HEADER_LEN;
  unsigned seen = 0;
  int after_mi = 0;
  memset(msg, 0, sizeof(*msg));
  /* looks_like() also checks the top two type bits (first byte <= 3). */
  if (!dcmf_stun_looks_like(pkt, len) ||
      (size_t)stun_get16(pkt + 2) != len - DCMF_STUN_HEADER_LEN || len % 4 != 0)
    return DCMF_ERR_MALFORMED;
  msg->pkt = pkt;
  msg->len = len;
  msg->type = stun_get16(pkt);
  memcpy(msg->txid, pkt + 8, DCMF_STUN_TXID_LEN);
  while (at < len) {
    uint16_t type, alen;
    if (len - at < STUN_ATTR_HDR || (msg->present & DCMF_STUN_HAS_FINGERPRINT))
      return DCMF_ERR_MALFORMED; /* truncated, or FINGERPRINT not last */
    type = stun_get16(pkt + at);
    alen = stun_get16(pkt + at + 2);
    if (stun_pad4(alen) > len - at - STUN_ATTR_HDR)
      return DCMF_ERR_MALFORMED;
    if (type == DCMF_STUN_ATTR_FINGERPRINT) {
      if (alen != 4)
        return DCMF_ERR_MALFORMED;
      msg->present |= DCMF_STUN_HAS_FINGERPRINT;
      msg->fingerprint_offset = at;
    } else if (!after_mi) {
      stun_take_attr(msg, &seen, type, pkt + at + STUN_ATTR_HDR, alen, at);
      after_mi = type == DCMF_STUN_ATTR_MESSAGE_INTEGRITY;
    }
    at += STUN_ATTR_HDR + stun_pad4(alen);
  }
  return 0;
}

int dcmf_stun_check_integrity(const struct dcmf_stun_msg *msg,
                              const uint8_t *key, size_t key_len) {
  uint8_t hdr[DCMF_STUN_HEADER_LEN], mac[DCMF_STUN_MI_LEN];
  size_t at = msg->mi_offset;
  int rc;
  if (!(msg->present & DCMF_STUN_HAS_MESSAGE_INTEGRITY))
    return DCMF_ERR_NOT_FOUND;
  memcpy(hdr, msg->pkt, sizeof(hdr));
  stun_put16(hdr + 2, (uint16_t)(at + STUN_ATTR_HDR + DCMF_STUN_MI_LEN -
                                 DCMF_STUN_HEADER_LEN));
  rc = stun_hmac(key, key_len, hdr, msg->pkt + DCMF_STUN_HEADER_LEN,
                 at - DCMF_STUN_HEADER_LEN, mac);
  if (rc != 0)
    return rc;
  if (CRYPTO_memcmp(mac, msg->pkt + at + STUN_ATTR_HDR, sizeof(mac)) != 0)
    return DCMF_ERR_INVALID;
  return 0;
}

int dcmf_stun_check_fingerprint(const struct dcmf_stun_msg *msg) {
  size_t at = msg->fingerprint_offset;
  if (!(msg->present & DCMF_STUN_HAS_FINGERPRINT))
    return DCMF_ERR_NOT_FOUND;
  /* The header length already ends at FINGERPRINT: it is last. */
  if ((stun_crc32(msg->pkt, at) ^ STUN_FINGERPRINT_XOR) !=
      stun_get32(msg->pkt + at + STUN_ATTR_HDR))
    return DCMF_ERR_INVALID;
  return 0;
}

void dcmf_stun_writer_init(struct dcmf_stun_writer *w, uint8_t *buf, size_t cap,
                           uint16_t type,
                           const uint8_t txid[DCMF_STUN_TXID_LEN]) {
  w->buf = buf;
  w->cap = cap;
  w->len = 0;
  w->err = 0;
  if (cap < DCMF_STUN_HEADER_LEN) {
    w->err = DCMF_ERR_TOO_LARGE;
    return;
  }
  stun_put16(buf, (uint16_t)(type & 0x3FFFu));
  stun_put16(buf + 2, 0);
  stun_put32(buf + 4, DCMF_STUN_MAGIC_COOKIE);
  memcpy(buf + 8, txid, DCMF_STUN_TXID_LEN);
  w->len = DCMF_STUN_HEADER_LEN;
}

/*
 * Reserves an attribute of |len| value bytes: writes its header, zeroes
 * its padding, sets the header length to cover it, and returns a pointer
 * to the value, or NULL (sticky error) if it does not fit.
 */
static uint8_t *stun_reserve(struct dcmf_stun_writer *w, uint16_t type,
                             size_t len) {
  size_t need = STUN_ATTR_HDR + stun_pad4(len);
  uint8_t *p;
  if (w->err != 0)
    return NULL;
  if (len > 0xFFFF || need > w->cap - w->len ||
      w->len + need - DCMF_STUN_HEADER_LEN > 0xFFFF) {
    w->err = DCMF_ERR_TOO_LARGE;
    return NULL;
  }
  p = w->buf + w->len;
  stun_put16(p, type);
  stun_put16(p + 2, (uint16_t)len);
  memset(p + STUN_ATTR_HDR, 0, need - STUN_ATTR_HDR);
  w->len += need;
  stun_put16(w->buf + 2, (uint16_t)(w->len - DCMF_STUN_HEADER_LEN));
  return p + STUN_ATTR_HDR;
}

void dcmf_stun_writer_add(struct dcmf_stun_writer *w, uint16_t type,
                          const void *value, size_t len) {
  uint8_t *p = stun_reserve(w, type, len);
  if (p != NULL && len > 0)
    memcpy(p, value, len);
}

void dcmf_stun_writer_add_u32(struct dcmf_stun_writer *w, uint16_t type,
                              uint32_t value) {
  uint8_t *p = stun_reserve(w, type, 4);
  if (p != NULL)
    stun_put32(p, value);
}

void dcmf_stun_writer_add_u64(struct dcmf_stun_writer *w, uint16_t type,
                              uint64_t value) {
  uint8_t *p = stun_reserve(w, type, 8);
  if (p != NULL) {
    stun_put32(p, (uint32_t)(value >> 32));
    stun_put32(p + 4, (uint32_t)value);
  }
}

void dcmf_stun_writer_add_xor_address(struct dcmf_stun_writer *w,
                                      const struct sockaddr *addr) {
  const uint8_t *a;
  size_t alen;
  uint16_t port;
  uint8_t *p;
  if (w->err != 0)
    return;
  if (addr != NULL && addr->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    a = (const uint8_t *)&sin->sin_addr;
    alen = 4;
    port = ntohs(sin->sin_port);
  } else if (addr != NULL && addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
    a = (const uint8_t *)&sin6->sin6_addr;
    alen = 16;
    port = ntohs(sin6->sin6_port);
  } else {
    w->err = DCMF_ERR_INVALID;
    return;
  }
  p = stun_reserve(w, DCMF_STUN_ATTR_XOR_MAPPED_ADDRESS, 4 + alen);
  if (p == NULL)
    return;
  p[1] = alen == 4 ? 0x01 : 0x02;
  stun_put16(p + 2, (uint16_t)(port ^ (DCMF_STUN_MAGIC_COOKIE >> 16)));
  for (size_t i = 0; i < alen; i++)
    p[4 + i] = (uint8_t)(a[i] ^ w->buf[4 + i]); /* cookie, then txid */
}

void dcmf_stun_writer_add_integrity(struct dcmf_stun_writer *w,
                                    const uint8_t *key, size_t key_len) {
  size_t at = w->len;
  uint8_t *p =
      stun_reserve(w, DCMF_STUN_ATTR_MESSAGE_INTEGRITY, DCMF_STUN_MI_LEN);
  if (p == NULL)
    return;
  /* The header length now ends at MESSAGE-INTEGRITY, as the MAC needs. */
  w->err = stun_hmac(key, key_len, w->buf, w->buf + DCMF_STUN_HEADER_LEN,
                     at - DCMF_STUN_HEADER_LEN, p);
}

void dcmf_stun_writer_add_fingerprint(struct dcmf_stun_writer *w) {
  size_t at = w->len;
  uint8_t *p = stun_reserve(w, DCMF_STUN_ATTR_FINGERPRINT, 4);
  if (p != NULL)
    stun_put32(p, stun_crc32(w->buf, at) ^ STUN_FINGERPRINT_XOR);
}

int dcmf_stun_writer_finish(struct dcmf_stun_writer *w, size_t *out_len) {
  *out_len = w->err == 0 ? w->len : 0;
  return w->err;
}

int dcmf_stun_build_success(uint8_t *out, size_t cap, size_t *out_len,
                            const uint8_t txid[DCMF_STUN_TXID_LEN],
                            const struct sockaddr *mapped, const uint8_t *key,
                            size_t key_len) {
  struct dcmf_stun_writer w;
  dcmf_stun_writer_init(&w, out, cap, DCMF_STUN_BINDING_SUCCESS, txid);
  dcmf_stun_writer_add_xor_address(&w, mapped);
  if (key != NULL)
    dcmf_stun_writer_add_integrity(&w, key, key_len);
  dcmf_stun_writer_add_fingerprint(&w);
  return dcmf_stun_writer_finish(&w, out_len);
}

static const char *stun_reason(unsigned code) {
  switch (code) {
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 420:
    return "Unknown Attribute";
  case 487:
    return "Role Conflict";
  default:
    return "Error";
  }
}

int dcmf_stun_build_error(uint8_t *out, size_t cap, size_t *out_len,
                          const uint8_t txid[DCMF_STUN_TXID_LEN], unsigned code,
                          const uint16_t *unknown, size_t unknown_count,
                          const uint8_t *key, size_t key_len) {
  struct dcmf_stun_writer w;
  const char *reason = stun_reason(code);
  size_t rlen = strlen(reason);
  uint8_t *p;
  *out_len = 0;
  if (code < 300 || code > 699)
    return DCMF_ERR_INVALID;
  dcmf_stun_writer_init(&w, out, cap, DCMF_STUN_BINDING_ERROR, txid);
  p = stun_reserve(&w, DCMF_STUN_ATTR_ERROR_CODE, 4 + rlen);
  if (p != NULL) {
    p[2] = (uint8_t)(code / 100);
    p[3] = (uint8_t)(code % 100);
    memcpy(p + 4, reason, rlen);
  }
  if (code == 420) {
    if (unknown_count > DCMF_STUN_UNKNOWN_MAX)
      unknown_count = DCMF_STUN_UNKNOWN_MAX;
    p = stun_reserve(&w, DCMF_STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * unknown_count);
    for (size_t i = 0; p != NULL && i < unknown_count; i++)
      stun_put16(p + 2 * i, unknown[i]);
  }
  if (key != NULL)
    dcmf_stun_writer_add_integrity(&w, key, key_len);
  dcmf_stun_writer_add_fingerprint(&w);
  return dcmf_stun_writer_finish(&w, out_len);
}

int dcmf_stun_build_request(uint8_t *out, size_t cap, size_t *out_len,
                            const struct dcmf_stun_request *req) {
  struct dcmf_stun_writer w;
  *out_len = 0;
  dcmf_stun_writer_init(&w, out, cap, DCMF_STUN_BINDING_REQUEST, req->txid);
  if (req->username != NULL) {
    size_t ulen = strlen(req->username);
    if (ulen > DCMF_STUN_USERNAME_MAX)
      return DCMF_ERR_INVALID;
    dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USERNAME, req->username, ulen);
  }
  dcmf_stun_writer_add_u32(&w, DCMF_STUN_ATTR_PRIORITY, req->priority);
  if (req->role == DCMF_STUN_ROLE_CONTROLLING)
    dcmf_stun_writer_add_u64(&w, DCMF_STUN_ATTR_ICE_CONTROLLING,
                             req->tie_breaker);
  else if (req->role == DCMF_STUN_ROLE_CONTROLLED)
    dcmf_stun_writer_add_u64(&w, DCMF_STUN_ATTR_ICE_CONTROLLED,
                             req->tie_breaker);
  if (req->use_candidate)
    dcmf_stun_writer_add(&w, DCMF_STUN_ATTR_USE_CANDIDATE, NULL, 0);
  if (req->key != NULL)
    dcmf_stun_writer_add_integrity(&w, req->key, req->key_len);
  dcmf_stun_writer_add_fingerprint(&w);
  return dcmf_stun_writer_finish(&w, out_len);
}

int dcmf_stun_addr_equal(const struct sockaddr *a, const struct sockaddr *b) {
  if (a == NULL || b == NULL || a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a;
    const struct sockaddr_in *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port &&
           x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return 0;
}
