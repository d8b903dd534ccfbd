/*
 * fingerprint.h - certificate fingerprints (RFC 8122 / RFC 4572 syntax),
 * TLS association identifiers (RFC 8842 tls-id) and ICE credentials
 * (RFC 8839 ice-ufrag / ice-pwd). Pure parsing and formatting: no I/O.
 */
#ifndef DCMF_FINGERPRINT_H
#define DCMF_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

/* Hash functions named by RFC 8122's hash-func registry that we accept. */
enum dcmf_hash {
  DCMF_HASH_SHA1,
  DCMF_HASH_SHA224,
  DCMF_HASH_SHA256,
  DCMF_HASH_SHA384,
  DCMF_HASH_SHA512,
  DCMF_HASH_MD5,
  DCMF_HASH_MD2,
};

#define DCMF_FINGERPRINT_MAX_BYTES 64
#define DCMF_FINGERPRINTS_MAX 8

struct dcmf_fingerprint {
  enum dcmf_hash hash;
  size_t len; /* number of bytes in |value|, equals the hash's size */
  uint8_t value[DCMF_FINGERPRINT_MAX_BYTES];
};

/* A set of fingerprints: the peer's certificate must match any one. */
struct dcmf_fingerprint_set {
  size_t count;
  struct dcmf_fingerprint items[DCMF_FINGERPRINTS_MAX];
};

/*
 * Parses |text| as one or more fingerprints. Each is "<hash> <hex>" where
 * <hash> is an RFC 8122 hash token in any letter case ("sha-256",
 * "SHA-256") and <hex> is pairs of hex digits (either case) joined by ':'.
 * Several fingerprints are separated by ',' or ';' (optional surrounding
 * white space), as an API client listing several a=fingerprint lines
 * would join them. Leading/trailing white space is ignored. The number of
 * bytes must equal the hash's digest size. Appends to |set| (caller
 * zero-initialises it first).
 *
 * Returns 0, DCMF_ERR_MALFORMED (syntax, unknown hash, wrong length) or
 * DCMF_ERR_TOO_LARGE (more than DCMF_FINGERPRINTS_MAX entries). On error
 * |set| may hold entries parsed before the bad one.
 */
int dcmf_fingerprint_parse(const char *text, struct dcmf_fingerprint_set *set);

/*
 * Writes the canonical form of |set| into |out| (capacity |cap| bytes,
 * NUL-terminated): "SHA-256 AB:CD:..." with the upper-case hash name of
 * RFC 8122's registry and upper-case hex, entries joined by ", ".
 * Returns the string length, or DCMF_ERR_TOO_LARGE if |cap| is too small.
 */
int dcmf_fingerprint_format(const struct dcmf_fingerprint_set *set, char *out,
                            size_t cap);

/* Returns the upper-case RFC 8122 name of |hash| ("SHA-256"). */
const char *dcmf_hash_name(enum dcmf_hash hash);

/* Returns the digest length in bytes of |hash|. */
size_t dcmf_hash_size(enum dcmf_hash hash);

/*
 * Returns 1 if |set| contains a fingerprint equal to |fp| (same hash and
 * bytes), else 0.
 */
int dcmf_fingerprint_set_contains(const struct dcmf_fingerprint_set *set,
                                  const struct dcmf_fingerprint *fp);

/*
 * Validates |text| as an RFC 8842 tls-id: 20 to 255 characters of
 * ALPHA / DIGIT / "+" / "/" / "-" / "_" (the TS 29.571 schema's narrower
 * hex-only pattern is deliberately not enforced). Returns 0 or
 * DCMF_ERR_MALFORMED.
 */
int dcmf_tls_id_check(const char *text);

/*
 * Validates an ICE username fragment (RFC 8839: 4 to 256 ice-chars, i.e.
 * ALPHA / DIGIT / "+" / "/") or password (22 to 256 ice-chars).
 * Returns 0 or DCMF_ERR_MALFORMED.
 */
int dcmf_ice_ufrag_check(const char *text);
int dcmf_ice_pwd_check(const char *text);

/*
 * Fills |out| with |len| characters drawn from |alphabet| using the
 * |random| bytes supplied by the caller (one byte per character, so the
 * engine needs no random source of its own) and NUL-terminates it;
 * |out| must hold |len| + 1 bytes. Used for ufrag, pwd and tls-id.
 */
void dcmf_token_from_random(char *out, size_t len, const uint8_t *random,
                            const char *alphabet);

#endif
