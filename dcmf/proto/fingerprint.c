/*
 * fingerprint.c - certificate fingerprints, tls-id and ICE credentials.
 *
 * Everything here works on caller-owned memory and plain ASCII; letter case
 * is folded by hand so the result never depends on the C locale.
 */
#include "fingerprint.h"

#include <string.h>

#include "errors.h"

struct fp_hash_info {
  const char *name;
  size_t size;
};

/* Indexed by enum dcmf_hash; names are RFC 8122's registry spelling. */
static const struct fp_hash_info fp_hashes[] = {
    [DCMF_HASH_SHA1] = {"SHA-1", 20},     [DCMF_HASH_SHA224] = {"SHA-224", 28},
    [DCMF_HASH_SHA256] = {"SHA-256", 32}, [DCMF_HASH_SHA384] = {"SHA-384", 48},
    [DCMF_HASH_SHA512] = {"SHA-512", 64}, [DCMF_HASH_MD5] = {"MD5", 16},
    [DCMF_HASH_MD2] = {"MD2", 16},
};

#define FP_HASH_COUNT (sizeof(fp_hashes) / sizeof(fp_hashes[0]))

static int fp_known(enum dcmf_hash hash) {
  return (size_t)hash < FP_HASH_COUNT;
}

const char *dcmf_hash_name(enum dcmf_hash hash) {
  return fp_known(hash) ? fp_hashes[hash].name : "UNKNOWN";
}

size_t dcmf_hash_size(enum dcmf_hash hash) {
  return fp_known(hash) ? fp_hashes[hash].size : 0;
}

static int fp_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char fp_upper(char c) {
  return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static int fp_hex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = fp_upper(c);
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static const char *fp_skip_space(const char *p) {
  while (fp_space(*p))
    p++;
  return p;
}

/* Matches the hash token of |len| bytes at |p| against the registry. */
static int fp_lookup(const char *p, size_t len, enum dcmf_hash *out) {
  for (size_t h = 0; h < FP_HASH_COUNT; h++) {
    const char *name = fp_hashes[h].name;
    size_t i = 0;
    if (strlen(name) != len)
      continue;
    while (i < len && fp_upper(p[i]) == name[i])
      i++;
    if (i == len) {
      *out = (enum dcmf_hash)h;
      return 0;
    }
  }
  return -1;
}

/* Parses one "<hash> <hex>" at *|pp| and leaves *|pp| just after it. */
static int fp_parse_one(const char **pp, struct dcmf_fingerprint *fp) {
  const char *p = *pp;
  const char *start = p;
  while (*p && !fp_space(*p) && *p != ',' && *p != ';')
    p++;
  if (fp_lookup(start, (size_t)(p - start), &fp->hash) != 0 || !fp_space(*p))
    return DCMF_ERR_MALFORMED;
  p = fp_skip_space(p);
  fp->len = 0;
  for (;;) {
    int hi = fp_hex(p[0]);
    int lo = hi < 0 ? -1 : fp_hex(p[1]);
    /* Stopping at the buffer size is enough: any longer value has the
     * wrong length for every hash we know. */
    if (lo < 0 || fp->len == DCMF_FINGERPRINT_MAX_BYTES)
      return DCMF_ERR_MALFORMED;
    fp->value[fp->len++] = (uint8_t)(hi << 4 | lo);
    p += 2;
    if (*p != ':')
      break;
    p++;
  }
  if (*p && !fp_space(*p) && *p != ',' && *p != ';')
    return DCMF_ERR_MALFORMED;
  if (fp->len != fp_hashes[fp->hash].size)
    return DCMF_ERR_MALFORMED;
  *pp = p;
  return 0;
}

int dcmf_fingerprint_parse(const char *text, struct dcmf_fingerprint_set *set) {
  if (!text || !set)
    return DCMF_ERR_MALFORMED;
  const char *p = fp_skip_space(text);
  for (;;) {
    struct dcmf_fingerprint fp;
    memset(&fp, 0, sizeof(fp));
    int rc = fp_parse_one(&p, &fp);
    if (rc != 0)
      return rc;
    if (set->count >= DCMF_FINGERPRINTS_MAX)
      return DCMF_ERR_TOO_LARGE;
    set->items[set->count++] = fp;
    p = fp_skip_space(p);
    if (*p == '\0')
      return 0;
    /* Anything but a separator here means two entries ran together; a
     * separator must be followed by another entry, not the end. */
    if (*p != ',' && *p != ';')
      return DCMF_ERR_MALFORMED;
    p = fp_skip_space(p + 1);
  }
}

int dcmf_fingerprint_format(const struct dcmf_fingerprint_set *set, char *out,
                            size_t cap) {
  static const char digits[] = "0123456789ABCDEF";
  size_t n = 0;
  if (!set || set->count > DCMF_FINGERPRINTS_MAX)
    return DCMF_ERR_INVALID;
  for (size_t k = 0; k < set->count; k++) {
    const struct dcmf_fingerprint *fp = &set->items[k];
    if (!fp_known(fp->hash) || fp->len == 0 ||
        fp->len > DCMF_FINGERPRINT_MAX_BYTES)
      return DCMF_ERR_INVALID;
    n += (k > 0 ? 2 : 0) + strlen(fp_hashes[fp->hash].name) + 3 * fp->len;
  }
  /* Every byte takes a separator (' ' or ':') and two digits, so |n| is
   * the exact string length and the terminator needs one byte more. */
  if (!out || cap < n + 1)
    return DCMF_ERR_TOO_LARGE;
  char *w = out;
  for (size_t k = 0; k < set->count; k++) {
    const struct dcmf_fingerprint *fp = &set->items[k];
    if (k > 0) {
      *w++ = ',';
      *w++ = ' ';
    }
    const char *name = fp_hashes[fp->hash].name;
    size_t len = strlen(name);
    memcpy(w, name, len);
    w += len;
    for (size_t i = 0; i < fp->len; i++) {
      *w++ = i == 0 ? ' ' : ':';
      *w++ = digits[fp->value[i] >> 4];
      *w++ = digits[fp->value[i] & 0x0f];
    }
  }
  *w = '\0';
  return (int)(w - out);
}

int dcmf_fingerprint_set_contains(const struct dcmf_fingerprint_set *set,
                                  const struct dcmf_fingerprint *fp) {
  if (!set || !fp || fp->len > DCMF_FINGERPRINT_MAX_BYTES)
    return 0;
  for (size_t k = 0; k < set->count && k < DCMF_FINGERPRINTS_MAX; k++) {
    const struct dcmf_fingerprint *item = &set->items[k];
    if (item->hash == fp->hash && item->len == fp->len &&
        memcmp(item->value, fp->value, fp->len) == 0)
      return 1;
  }
  return 0;
}

/* Checks that |text| has |min| to |max| characters, each an ALPHA, DIGIT
 * or one of |extra|. The scan stops past |max| so huge input costs little. */
static int fp_charset_check(const char *text, size_t min, size_t max,
                            const char *extra) {
  size_t n = 0;
  if (!text)
    return DCMF_ERR_MALFORMED;
  for (; text[n] && n <= max; n++) {
    char c = fp_upper(text[n]);
    if (!(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') && !strchr(extra, c))
      return DCMF_ERR_MALFORMED;
  }
  return n >= min && n <= max ? 0 : DCMF_ERR_MALFORMED;
}

int dcmf_tls_id_check(const char *text) {
  return fp_charset_check(text, 20, 255, "+/-_");
}

int dcmf_ice_ufrag_check(const char *text) {
  return fp_charset_check(text, 4, 256, "+/");
}

int dcmf_ice_pwd_check(const char *text) {
  return fp_charset_check(text, 22, 256, "+/");
}

void dcmf_token_from_random(char *out, size_t len, const uint8_t *random,
                            const char *alphabet) {
  if (!out)
    return;
  size_t n = alphabet ? strlen(alphabet) : 0;
  if (n == 0 || !random) {
    out[0] = '\0';
    return;
  }
  /* One byte per character is unbiased only when |n| divides 256, as it
   * does for the 64 ice-chars; other alphabets are slightly skewed. */
  for (size_t i = 0; i < len; i++)
    out[i] = alphabet[random[i] % n];
  out[len] = '\0';
}
