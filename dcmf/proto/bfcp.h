/*
 * bfcp.h - the BFCP COMMON-HEADER (RFC 8855 §5.1) and a framer that cuts
 * a BFCP byte stream over TCP (or TLS over TCP) into whole messages, for
 * the e2ae gateway, which relays BFCP without reading its attributes.
 * Layer proto: no I/O, no clock, no globals.
 *
 * The header is 12 octets: Ver (3 bits), R, F, Res (3 bits), Primitive
 * (8), Payload Length (16, in 4-octet units, the header excluded),
 * Conference ID (32), Transaction ID (16), User ID (16); when F is set
 * over an unreliable transport, Fragment Offset and Fragment Length (16
 * each) follow. What RFC 8855 §5.1 says, and what is done here:
 *   - Ver "MUST be set to 1 when using BFCP over a reliable transport"
 *     and to 2 over an unreliable one; a message "with a version number
 *     that is not permitted with the transport" gets an Error
 *     (Unsupported Version). So over TCP only version 1 is taken, over
 *     UDP only 2: anything else is DCMF_ERR_INVALID.
 *   - R and F: over a reliable transport each "MUST be cleared by the
 *     sender" and "MUST be ignored by the receiver", and the fragment
 *     fields "are never present": over TCP the header is always 12
 *     octets, and R and F are reported but not refused.
 *   - Res is ignored. Primitive is reported as it is (unknown ones are
 *     the floor control server's business, not the framing's).
 *   - Payload Length: a message longer than the caller's bound is
 *     DCMF_ERR_TOO_LARGE (the 16-bit field allows 262140 octets).
 *
 * Errors are 0 or a negative DCMF_ERR_* (errors.h).
 */
#ifndef DCMF_BFCP_H
#define DCMF_BFCP_H

#include <stddef.h>
#include <stdint.h>

#include "streambuf.h"

#define DCMF_BFCP_HEADER_LEN 12
#define DCMF_BFCP_FRAG_HEADER_LEN 16
/* The largest message the Payload Length field can describe. */
#define DCMF_BFCP_MAX_MESSAGE (DCMF_BFCP_HEADER_LEN + 65535 * 4)

enum dcmf_bfcp_transport {
  DCMF_BFCP_RELIABLE = 0,   /* TCP, TLS over TCP: version 1 */
  DCMF_BFCP_UNRELIABLE = 1, /* UDP, DTLS over UDP: version 2 */
};

struct dcmf_bfcp_header {
  uint8_t version;
  int r; /* Transaction Responder (meaningful over UDP only) */
  int f; /* Fragmentation (meaningful over UDP only) */
  uint8_t primitive;
  uint16_t payload_len; /* in 4-octet units */
  uint32_t conference_id;
  uint16_t transaction_id;
  uint16_t user_id;
  uint16_t frag_offset; /* UDP with F only */
  uint16_t frag_len;    /* UDP with F only */
  size_t header_len;    /* 12, or 16 with fragment fields */
  size_t message_len;   /* 12 + 4 * payload_len (the whole message) */
};

/*
 * Reads the COMMON-HEADER at |buf| (|len| bytes, borrowed) into |h|, as
 * received over |transport|. It does not look at the payload, so |len|
 * may be the header alone. Returns 0, DCMF_ERR_MALFORMED (fewer than 12
 * octets, or 16 with F over UDP), or DCMF_ERR_INVALID (a version the
 * transport does not permit).
 */
int dcmf_bfcp_parse_header(const uint8_t *buf, size_t len,
                           enum dcmf_bfcp_transport transport,
                           struct dcmf_bfcp_header *h);

/* Writes |h|'s fields into 12 octets at |out| (R and F as given, Res 0,
 * no fragment fields). */
void dcmf_bfcp_write_header(const struct dcmf_bfcp_header *h,
                            uint8_t out[DCMF_BFCP_HEADER_LEN]);

/*
 * The framer over a reliable transport: bytes in as they come, whole
 * messages out. It owns one buffer, grown up to |max_message| and no
 * further.
 */
struct dcmf_bfcp_framer {
  size_t max_message;
  struct dcmf_streambuf win; /* the message in progress and what follows */
  int err;                   /* sticky */
};

/* Sets |f| up; |max_message| from 12 to DCMF_BFCP_MAX_MESSAGE, else
 * DCMF_ERR_INVALID. Allocates nothing yet. */
int dcmf_bfcp_framer_init(struct dcmf_bfcp_framer *f, size_t max_message);

/* Frees the buffer. */
void dcmf_bfcp_framer_free(struct dcmf_bfcp_framer *f);

/*
 * Copies bytes from |data| (|len|, borrowed) into the framer, at most
 * what one message at the bound holds beside the unread bytes. Returns
 * the count taken (call dcmf_bfcp_framer_next until 0, then feed the
 * rest), DCMF_ERR_NOMEM, or the sticky error. Messages returned before
 * become invalid.
 */
int dcmf_bfcp_framer_feed(struct dcmf_bfcp_framer *f, const uint8_t *data,
                          size_t len);

/*
 * The next whole message: |*msg| points into the framer's buffer
 * (valid until the next _feed or _free), |*msg_len| is its length, |h|
 * its header. Returns 1 with a message, 0 when more bytes are needed,
 * or an error, which is sticky (the caller closes the connection):
 * DCMF_ERR_INVALID (version other than 1), DCMF_ERR_TOO_LARGE (longer
 * than the bound).
 */
int dcmf_bfcp_framer_next(struct dcmf_bfcp_framer *f, const uint8_t **msg,
                          size_t *msg_len, struct dcmf_bfcp_header *h);

#endif
