/*
 * stun.h - STUN message codec (RFC 8489, formerly RFC 5389) for what
 * ICE (RFC 8445) needs: the Binding method with USERNAME,
 * MESSAGE-INTEGRITY (HMAC-SHA1), ERROR-CODE, UNKNOWN-ATTRIBUTES,
 * XOR-MAPPED-ADDRESS, PRIORITY, USE-CANDIDATE, ICE-CONTROLLED,
 * ICE-CONTROLLING and FINGERPRINT.
 *
 * Pure parsing and building on caller-owned memory: no I/O, no clock, no
 * state between calls. Short-term credentials only: the HMAC key is the
 * password's bytes as given. RFC 8489 asks for OpaqueString (SASLprep in
 * RFC 5389) first; ICE passwords are ice-chars (ALPHA / DIGIT / "+" /
 * "/"), for which that processing changes nothing, so it is not done.
 */
#ifndef DCMF_STUN_H
#define DCMF_STUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DCMF_STUN_HEADER_LEN 20
#define DCMF_STUN_MAGIC_COOKIE 0x2112A442u
#define DCMF_STUN_TXID_LEN 12
#define DCMF_STUN_MI_LEN 20
/* RFC 8489 14.3: USERNAME is less than 513 bytes. */
#define DCMF_STUN_USERNAME_MAX 512
/* Most unknown attribute types one message records or a 420 lists. */
#define DCMF_STUN_UNKNOWN_MAX 16

/* Message class bits of the type field, and the Binding method. */
#define DCMF_STUN_CLASS_MASK 0x0110u
#define DCMF_STUN_CLASS_REQUEST 0x0000u
#define DCMF_STUN_CLASS_INDICATION 0x0010u
#define DCMF_STUN_CLASS_SUCCESS 0x0100u
#define DCMF_STUN_CLASS_ERROR 0x0110u
#define DCMF_STUN_METHOD_BINDING 0x0001u

/* Message types (method | class). */
#define DCMF_STUN_BINDING_REQUEST 0x0001u
#define DCMF_STUN_BINDING_INDICATION 0x0011u
#define DCMF_STUN_BINDING_SUCCESS 0x0101u
#define DCMF_STUN_BINDING_ERROR 0x0111u

/* Attribute types. Types below 0x8000 are comprehension-required. */
enum dcmf_stun_attr {
  DCMF_STUN_ATTR_USERNAME = 0x0006,
  DCMF_STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
  DCMF_STUN_ATTR_ERROR_CODE = 0x0009,
  DCMF_STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
  DCMF_STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
  DCMF_STUN_ATTR_PRIORITY = 0x0024,
  DCMF_STUN_ATTR_USE_CANDIDATE = 0x0025,
  DCMF_STUN_ATTR_SOFTWARE = 0x8022,
  DCMF_STUN_ATTR_FINGERPRINT = 0x8028,
  DCMF_STUN_ATTR_ICE_CONTROLLED = 0x8029,
  DCMF_STUN_ATTR_ICE_CONTROLLING = 0x802A,
};

/* Bits of dcmf_stun_msg.present: which attributes the message carried. */
enum dcmf_stun_has {
  DCMF_STUN_HAS_USERNAME = 1u << 0,
  DCMF_STUN_HAS_MESSAGE_INTEGRITY = 1u << 1,
  DCMF_STUN_HAS_ERROR_CODE = 1u << 2,
  DCMF_STUN_HAS_UNKNOWN_ATTRIBUTES = 1u << 3,
  DCMF_STUN_HAS_XOR_MAPPED_ADDRESS = 1u << 4,
  DCMF_STUN_HAS_PRIORITY = 1u << 5,
  DCMF_STUN_HAS_USE_CANDIDATE = 1u << 6,
  DCMF_STUN_HAS_FINGERPRINT = 1u << 7,
  DCMF_STUN_HAS_ICE_CONTROLLED = 1u << 8,
  DCMF_STUN_HAS_ICE_CONTROLLING = 1u << 9,
};

/*
 * A parsed message. Pointers point into the packet given to
 * dcmf_stun_parse() and are valid only as long as that packet is.
 * Only the first occurrence of an attribute is used (RFC 8489 14).
 * Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored
 * (RFC 8489 14.5).
 */
struct dcmf_stun_msg {
  const uint8_t *pkt; /* the whole message, borrowed */
  size_t len;         /* DCMF_STUN_HEADER_LEN + body length */
  uint16_t type;
  uint8_t txid[DCMF_STUN_TXID_LEN];
  unsigned present; /* DCMF_STUN_HAS_* bits */
  /*
   * Non-zero if a known attribute had a value of the wrong size or an
   * out-of-range field; |malformed_attr| is then the first such type and
   * that attribute's DCMF_STUN_HAS_* bit is not set. A server answers 400.
   */
  int malformed;
  uint16_t malformed_attr;
  const uint8_t *username; /* not NUL-terminated */
  size_t username_len;
  /* Offset of the MESSAGE-INTEGRITY header, 0 if none; also set when
   * its size is wrong (then DCMF_STUN_HAS_MESSAGE_INTEGRITY is not). */
  size_t mi_offset;
  size_t fingerprint_offset; /* offset of the FINGERPRINT header */
  unsigned error_code;       /* 300..699 */
  const uint8_t *error_reason;
  size_t error_reason_len;
  struct sockaddr_storage mapped; /* XOR-MAPPED-ADDRESS, already un-XORed */
  uint32_t priority;
  uint64_t controlled_tie_breaker;
  uint64_t controlling_tie_breaker;
  /*
   * Comprehension-required attribute types (below 0x8000) this codec does
   * not understand, in order of appearance; at most DCMF_STUN_UNKNOWN_MAX
   * are kept, |unknown_count| says how many were kept. A server answers a
   * request with any of them with 420 listing them.
   */
  size_t unknown_count;
  uint16_t unknown[DCMF_STUN_UNKNOWN_MAX];
  /* The types listed in an UNKNOWN-ATTRIBUTES attribute (in a 420). */
  size_t listed_unknown_count;
  uint16_t listed_unknown[DCMF_STUN_UNKNOWN_MAX];
};

/*
 * Returns 1 if |pkt| (|len| bytes) can be a STUN message by its first
 * bytes alone: at least a header, first byte 0..3 (RFC 7983
 * demultiplexing) and the magic cookie in place. Otherwise 0.
 */
int dcmf_stun_looks_like(const uint8_t *pkt, size_t len);

/*
 * Parses the datagram |pkt| of |len| bytes into |msg|. |msg| borrows
 * |pkt| (see struct dcmf_stun_msg); the integrity and fingerprint are not
 * checked here (see dcmf_stun_check_integrity/_fingerprint).
 *
 * Returns 0 if the header is sound (top two type bits zero, magic cookie,
 * body length a multiple of 4 equal to |len| - 20), every attribute with
 * its padding lies inside the body, and a FINGERPRINT present has 4 bytes
 * and is the last attribute. Value-level problems of known attributes do
 * not fail the parse; they set |msg->malformed|. Returns
 * DCMF_ERR_MALFORMED otherwise, and then |msg| holds nothing usable: the
 * input should be treated as not STUN.
 */
int dcmf_stun_parse(struct dcmf_stun_msg *msg, const uint8_t *pkt, size_t len);

/*
 * Verifies the MESSAGE-INTEGRITY of |msg| with the HMAC key |key| of
 * |key_len| bytes (RFC 8489 14.5: HMAC-SHA1 over the message up to the
 * attribute, with the header length covering the attribute). The
 * comparison takes constant time.
 *
 * Returns 0 if it matches, DCMF_ERR_NOT_FOUND if |msg| has no (well-sized)
 * MESSAGE-INTEGRITY, DCMF_ERR_INVALID if it does not match, or
 * DCMF_ERR_NOMEM if OpenSSL failed to compute the HMAC.
 */
int dcmf_stun_check_integrity(const struct dcmf_stun_msg *msg,
                              const uint8_t *key, size_t key_len);

/*
 * Verifies the FINGERPRINT of |msg| (CRC-32 of the message up to the
 * attribute, XOR 0x5354554e, RFC 8489 14.7). Returns 0 if it matches,
 * DCMF_ERR_NOT_FOUND if there is none, DCMF_ERR_INVALID if it differs.
 */
int dcmf_stun_check_fingerprint(const struct dcmf_stun_msg *msg);

/*
 * Incremental message builder writing into caller memory. Errors are
 * sticky: once a call fails the writer ignores further calls and
 * dcmf_stun_writer_finish() reports the first error. The buffer is never
 * written beyond |cap|. Fields are private to stun.c.
 */
struct dcmf_stun_writer {
  uint8_t *buf;
  size_t cap;
  size_t len;
  int err;
};

/*
 * Starts a message of |type| with transaction id |txid| in |buf| of |cap|
 * bytes, which the writer borrows until finished. Fails (sticky) with
 * DCMF_ERR_TOO_LARGE if |cap| cannot hold a header.
 */
void dcmf_stun_writer_init(struct dcmf_stun_writer *w, uint8_t *buf, size_t cap,
                           uint16_t type,
                           const uint8_t txid[DCMF_STUN_TXID_LEN]);

/*
 * Appends attribute |type| with the |len| bytes at |value| (may be NULL
 * when |len| is 0), zero-padded to a multiple of 4. Fails (sticky) with
 * DCMF_ERR_TOO_LARGE if it does not fit in |cap| or in the 16-bit length.
 */
void dcmf_stun_writer_add(struct dcmf_stun_writer *w, uint16_t type,
                          const void *value, size_t len);

/* Appends a 32-bit or 64-bit attribute in network byte order. */
void dcmf_stun_writer_add_u32(struct dcmf_stun_writer *w, uint16_t type,
                              uint32_t value);
void dcmf_stun_writer_add_u64(struct dcmf_stun_writer *w, uint16_t type,
                              uint64_t value);

/*
 * Appends XOR-MAPPED-ADDRESS for |addr| (AF_INET or AF_INET6, port
 * included). Fails (sticky) with DCMF_ERR_INVALID for another family.
 */
void dcmf_stun_writer_add_xor_address(struct dcmf_stun_writer *w,
                                      const struct sockaddr *addr);

/*
 * Appends MESSAGE-INTEGRITY keyed with |key| (|key_len| bytes) over
 * everything written so far. Fails (sticky) with DCMF_ERR_TOO_LARGE or
 * DCMF_ERR_NOMEM (OpenSSL could not compute the HMAC).
 */
void dcmf_stun_writer_add_integrity(struct dcmf_stun_writer *w,
                                    const uint8_t *key, size_t key_len);

/* Appends FINGERPRINT; call it last. Fails (sticky) like _add. */
void dcmf_stun_writer_add_fingerprint(struct dcmf_stun_writer *w);

/*
 * Ends the message: returns 0 and sets *|out_len| to its total length, or
 * returns the first error of the writer and sets *|out_len| to 0 (the
 * buffer's contents are then unspecified).
 */
int dcmf_stun_writer_finish(struct dcmf_stun_writer *w, size_t *out_len);

/*
 * Builds into |out| (|cap| bytes) a Binding success response to the
 * transaction |txid| with XOR-MAPPED-ADDRESS |mapped|, MESSAGE-INTEGRITY
 * keyed with |key| (the password the request was checked with; omitted
 * if |key| is NULL) and FINGERPRINT. Sets *|out_len|.
 * Returns 0, DCMF_ERR_TOO_LARGE, DCMF_ERR_INVALID (|mapped| not IPv4 or
 * IPv6) or DCMF_ERR_NOMEM (HMAC failure).
 */
int dcmf_stun_build_success(uint8_t *out, size_t cap, size_t *out_len,
                            const uint8_t txid[DCMF_STUN_TXID_LEN],
                            const struct sockaddr *mapped, const uint8_t *key,
                            size_t key_len);

/*
 * Builds into |out| (|cap| bytes) a Binding error response to |txid| with
 * ERROR-CODE |code| (300..699, reason phrase chosen here: 400 Bad
 * Request, 401 Unauthorized, 420 Unknown Attribute, 487 Role Conflict),
 * for 420 an UNKNOWN-ATTRIBUTES listing the |unknown_count| types at
 * |unknown| (at most DCMF_STUN_UNKNOWN_MAX are listed), then
 * MESSAGE-INTEGRITY keyed with |key| unless |key| is NULL (RFC 8489
 * 9.1.3: a 401 carries none), then FINGERPRINT. Sets *|out_len|.
 * Returns 0, DCMF_ERR_TOO_LARGE, DCMF_ERR_INVALID (|code| out of range)
 * or DCMF_ERR_NOMEM.
 */
int dcmf_stun_build_error(uint8_t *out, size_t cap, size_t *out_len,
                          const uint8_t txid[DCMF_STUN_TXID_LEN], unsigned code,
                          const uint16_t *unknown, size_t unknown_count,
                          const uint8_t *key, size_t key_len);

/* ICE role claimed in a Binding request. */
enum dcmf_stun_role {
  DCMF_STUN_ROLE_NONE,
  DCMF_STUN_ROLE_CONTROLLING,
  DCMF_STUN_ROLE_CONTROLLED,
};

/* What an ICE connectivity check (client side, e.g. dcmf-ue) carries. */
struct dcmf_stun_request {
  uint8_t txid[DCMF_STUN_TXID_LEN]; /* from the caller's random source */
  /* "<receiver's ufrag>:<sender's ufrag>", NUL-terminated; NULL: none. */
  const char *username;
  /* The receiver's ice-pwd; NULL: no MESSAGE-INTEGRITY. */
  const uint8_t *key;
  size_t key_len;
  uint32_t priority; /* PRIORITY, always included */
  enum dcmf_stun_role role;
  uint64_t tie_breaker; /* for ICE-CONTROLLING / ICE-CONTROLLED */
  int use_candidate;    /* non-zero: include USE-CANDIDATE */
};

/*
 * Builds into |out| (|cap| bytes) a Binding request from |req|: USERNAME,
 * PRIORITY, ICE-CONTROLLING or ICE-CONTROLLED, USE-CANDIDATE,
 * MESSAGE-INTEGRITY, FINGERPRINT, each as |req| asks. Sets *|out_len|.
 * Returns 0, DCMF_ERR_TOO_LARGE, DCMF_ERR_INVALID (USERNAME longer than
 * DCMF_STUN_USERNAME_MAX) or DCMF_ERR_NOMEM.
 */
int dcmf_stun_build_request(uint8_t *out, size_t cap, size_t *out_len,
                            const struct dcmf_stun_request *req);

/*
 * Returns 1 if |a| and |b| are the same transport address: same family
 * (AF_INET or AF_INET6; anything else never matches), address and port,
 * and for IPv6 the same scope id. An IPv4-mapped IPv6 address does not
 * match the plain IPv4 one. Otherwise 0.
 */
int dcmf_stun_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

#endif
