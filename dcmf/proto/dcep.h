/*
 * dcep.h - Data Channel Establishment Protocol messages (RFC 8832):
 * DATA_CHANNEL_OPEN and DATA_CHANNEL_ACK, carried with PPID 50.
 * Pure codec: no I/O, no allocation.
 */
#ifndef DCMF_DCEP_H
#define DCMF_DCEP_H

#include <stddef.h>
#include <stdint.h>

#define DCMF_PPID_DCEP 50
#define DCMF_PPID_STRING 51
#define DCMF_PPID_BINARY 53
#define DCMF_PPID_STRING_EMPTY 56
#define DCMF_PPID_BINARY_EMPTY 57

#define DCMF_DCEP_OPEN 0x03
#define DCMF_DCEP_ACK 0x02

/* Channel types (RFC 8832 5.1); bit 0x80 means unordered. */
#define DCMF_DCEP_RELIABLE 0x00
#define DCMF_DCEP_PARTIAL_RELIABLE_REXMIT 0x01
#define DCMF_DCEP_PARTIAL_RELIABLE_TIMED 0x02
#define DCMF_DCEP_UNORDERED 0x80

/* A parsed DATA_CHANNEL_OPEN. |label| and |protocol| point into the
 * message that was parsed and are not NUL-terminated. */
struct dcmf_dcep_open {
  uint8_t channel_type;
  uint16_t priority;
  uint32_t reliability; /* retransmissions or lifetime in ms */
  const uint8_t *label;
  uint16_t label_len;
  const uint8_t *protocol;
  uint16_t protocol_len;
};

/*
 * Parses a DCEP message. Returns DCMF_DCEP_OPEN (|open| filled),
 * DCMF_DCEP_ACK, or DCMF_ERR_MALFORMED (short, unknown type, unknown
 * channel type, lengths that overrun the message).
 */
int dcmf_dcep_parse(const uint8_t *msg, size_t len,
                    struct dcmf_dcep_open *open);

/*
 * Writes a DATA_CHANNEL_OPEN into |out| (capacity |cap|). Returns the
 * length, or DCMF_ERR_TOO_LARGE.
 */
int dcmf_dcep_build_open(const struct dcmf_dcep_open *open, uint8_t *out,
                         size_t cap);

#endif
