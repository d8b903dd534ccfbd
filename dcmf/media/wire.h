/*
 * wire.h - the frames between dcmfd's control process and its media
 * worker processes (layer "media"): the controller's messages of
 * media.h, the worker's events, its status, and the hello that starts
 * it. An engine: it encodes into and decodes from memory; the link
 * (wlink.h) moves the bytes and the descriptors.
 *
 * Both ends are the same executable (a worker is the control process's
 * own binary started again, see docs/architecture.md), so fixed-size
 * structs travel as their bytes in host order. What cannot travel as
 * bytes is rebuilt on decode: the arrays a description owns are flattened
 * after it, and descriptors (a media's UDP socket, its MDC2 sockets) go
 * beside the frame as SCM_RIGHTS; a frame says how many it carries. The
 * decoder trusts nothing: lengths, counts, strings (NUL inside their
 * arrays) and enums are checked, so a corrupted or truncated frame gives
 * DCMF_ERR_MALFORMED and never a bad pointer.
 *
 * A frame is a 12-byte header (type, body length, descriptor count:
 * three uint32) and the body.
 */
#ifndef DCMF_WIRE_H
#define DCMF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "counters.h"
#include "media.h"

enum dcmf_wire_type {
  DCMF_WIRE_HELLO = 1, /* control → worker, first: its index, identity */
  DCMF_WIRE_MEDIA,     /* control → worker: an op of media.h, fds beside */
  DCMF_WIRE_READY,     /* worker → control: started, or why it cannot */
  DCMF_WIRE_EVENT,     /* worker → control: a struct dcmf_media_event */
  DCMF_WIRE_STATUS,    /* worker → control: counters and heartbeat */
  DCMF_WIRE_RELAY,     /* control → worker: an AGW relay op, fds beside */
  DCMF_WIRE_RELAY_EVENT, /* worker → control: a struct dcmf_relay_event */
  /* control → worker: the RSA identity (T.38 over DTLS) that was still
   * being generated when the hello went */
  DCMF_WIRE_RSA_IDENTITY,
};

#define DCMF_WIRE_HEADER 12
/* A body is at most this long: 2048 streams with their HTTP routes fit
 * many times over. Longer frames are refused by both ends. */
#define DCMF_WIRE_MAX_BODY (16u << 20)
/* Descriptors one frame may carry: the media port, one MDC2 port per
 * stream of the largest stream count and an RTP leg's two sockets. */
#define DCMF_WIRE_MAX_FDS 65539u

/* The start of a worker: which one it is and the DTLS identity every
 * worker presents (DER; the key is secret). */
struct dcmf_wire_hello {
  uint32_t index;
  uint32_t n_workers; /* how many there are (they share the cache size) */
  const uint8_t *cert_der;
  size_t cert_len;
  const uint8_t *key_der;
  size_t key_len;
  /* The RSA identity (T.38 over DTLS); both 0 when there is none. */
  const uint8_t *rsa_cert_der;
  size_t rsa_cert_len;
  const uint8_t *rsa_key_der;
  size_t rsa_key_len;
};

/* What a worker publishes about itself, every few hundred ms. */
struct dcmf_wire_status {
  /* dcmf_heartbeat_now_ms() of its media loop's last turn. The clock is
   * CLOCK_MONOTONIC, which every process of the host shares. */
  uint64_t heartbeat_ms;
  uint64_t events_refused; /* events its outbox refused (lost) */
  struct dcmf_media_figures figures; /* its worker counters */
};

/* A frame as the reader (below) yields it. */
struct dcmf_wire_frame {
  uint32_t type;
  const uint8_t *body; /* valid until dcmf_wire_reader_consume */
  size_t len;
  int *fds; /* the frame's descriptors, owned by the reader until the
               caller takes them (set entries to -1) or consumes */
  size_t n_fds;
};

/* Appends a frame header for a body of |len| bytes with |n_fds|
 * descriptors. Returns 0, DCMF_ERR_TOO_LARGE or DCMF_ERR_NOMEM. */
int dcmf_wire_header(struct dcmf_buf *out, uint32_t type, size_t len,
                     size_t n_fds);

/*
 * Appends the frame of controller message |op| about |desc|. Its
 * descriptors (desc->fd when >= 0, then every MDC2 fd >= 0, in order)
 * are stored in |fds| (room for 3 + desc->n_mdc2: then the RTP leg's RTP
 * and RTCP sockets when |desc->rtpleg| has them); *|n_fds| gets their
 * number. |desc| is not changed and still owns them. Returns 0,
 * DCMF_ERR_TOO_LARGE (over DCMF_WIRE_MAX_BODY) or DCMF_ERR_NOMEM; on
 * failure |out| is as it was.
 */
int dcmf_wire_encode_media(struct dcmf_buf *out, enum dcmf_media_op op,
                           const struct dcmf_media_desc *desc, int *fds,
                           size_t *n_fds);

/*
 * Decodes the body of a MEDIA frame into |op| and |desc|, which then owns
 * its arrays and the descriptors taken from |fds| (their entries become
 * -1). On failure nothing is allocated, |fds| is untouched (the caller
 * closes them) and DCMF_ERR_MALFORMED (or DCMF_ERR_NOMEM) is returned.
 */
int dcmf_wire_decode_media(const uint8_t *body, size_t len, int *fds,
                           size_t n_fds, enum dcmf_media_op *op,
                           struct dcmf_media_desc *desc);

/*
 * Appends the frame of the AGW shim's message |op| about relay |desc|;
 * its descriptors (fds[] >= 0, access side first) go to |fds| (room for
 * two), their number to *|n_fds|; |desc| still owns them. Returns 0 or
 * DCMF_ERR_NOMEM.
 */
int dcmf_wire_encode_relay(struct dcmf_buf *out, enum dcmf_relay_op op,
                           const struct dcmf_relay_desc *desc, int *fds,
                           size_t *n_fds);

/* Decodes a RELAY body; on success |desc| owns the descriptors taken
 * from |fds| (entries become -1). Returns 0 or DCMF_ERR_MALFORMED (fds
 * untouched). */
int dcmf_wire_decode_relay(const uint8_t *body, size_t len, int *fds,
                           size_t n_fds, enum dcmf_relay_op *op,
                           struct dcmf_relay_desc *desc);

/* Appends a whole RELAY_EVENT frame. Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_wire_encode_relay_event(struct dcmf_buf *out,
                                 const struct dcmf_relay_event *ev);

/* Decodes a RELAY_EVENT body. Returns 0 or DCMF_ERR_MALFORMED (wrong
 * size, an unknown kind, a latched address of no known family). */
int dcmf_wire_decode_relay_event(const uint8_t *body, size_t len,
                                 struct dcmf_relay_event *ev);

/* Appends a whole HELLO frame. Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_wire_encode_hello(struct dcmf_buf *out,
                           const struct dcmf_wire_hello *hello);

/* Decodes a HELLO body; the DER pointers point into |body|. Returns 0 or
 * DCMF_ERR_MALFORMED. */
int dcmf_wire_decode_hello(const uint8_t *body, size_t len,
                           struct dcmf_wire_hello *hello);

/*
 * Appends a whole RSA_IDENTITY frame: the certificate and its key (DER;
 * the key is secret), both non-empty. Returns 0, DCMF_ERR_TOO_LARGE or
 * DCMF_ERR_NOMEM (|out| as it was).
 */
int dcmf_wire_encode_rsa_identity(struct dcmf_buf *out,
                                  const uint8_t *cert_der, size_t cert_len,
                                  const uint8_t *key_der, size_t key_len);

/* Decodes an RSA_IDENTITY body; the DER pointers point into |body|.
 * Returns 0 or DCMF_ERR_MALFORMED. */
int dcmf_wire_decode_rsa_identity(const uint8_t *body, size_t len,
                                  const uint8_t **cert_der, size_t *cert_len,
                                  const uint8_t **key_der, size_t *key_len);

/* Appends a whole READY frame: |status| 0 (started) or the exit status
 * the worker will end with, and a text saying why (may be ""). Returns
 * 0 or DCMF_ERR_NOMEM. */
int dcmf_wire_encode_ready(struct dcmf_buf *out, uint32_t status,
                           const char *text);

/* Decodes a READY body; |text| (capacity |cap|) gets the reason. Returns
 * 0 or DCMF_ERR_MALFORMED. */
int dcmf_wire_decode_ready(const uint8_t *body, size_t len,
                           uint32_t *status, char *text, size_t cap);

/* Appends a whole EVENT / STATUS frame. Return 0 or DCMF_ERR_NOMEM. */
int dcmf_wire_encode_event(struct dcmf_buf *out,
                           const struct dcmf_media_event *ev);
int dcmf_wire_encode_status(struct dcmf_buf *out,
                            const struct dcmf_wire_status *st);

/* Decode an EVENT / STATUS body. Return 0 or DCMF_ERR_MALFORMED (wrong
 * size, an unterminated string). */
int dcmf_wire_decode_event(const uint8_t *body, size_t len,
                           struct dcmf_media_event *ev);
int dcmf_wire_decode_status(const uint8_t *body, size_t len,
                            struct dcmf_wire_status *st);

/*
 * Reassembles frames from a byte stream and the descriptors that arrive
 * beside it. A descriptor arrives with the first bytes of its frame (the
 * link sends them so), never later than the frame completes, so the
 * descriptors are a queue taken from the front frame by frame. The
 * caller owns the struct; zero it before use.
 */
struct dcmf_wire_reader {
  uint8_t *buf;
  size_t len, cap;
  size_t consumed; /* bytes of |buf| already handed out and consumed */
  int *fds;
  size_t n_fds, cap_fds;
};

/* Appends received bytes. Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_wire_reader_feed(struct dcmf_wire_reader *r, const uint8_t *data,
                          size_t len);

/* Queues a received descriptor (owned by the reader from now on).
 * Returns 0, or DCMF_ERR_NOMEM after closing it. */
int dcmf_wire_reader_add_fd(struct dcmf_wire_reader *r, int fd);

/*
 * Yields the next complete frame in |f|: returns 1, 0 (more bytes
 * needed), or DCMF_ERR_MALFORMED (a body over DCMF_WIRE_MAX_BODY, more
 * descriptors than allowed, or a complete frame whose descriptors did
 * not arrive): the stream cannot be trusted from there on.
 */
int dcmf_wire_reader_next(struct dcmf_wire_reader *r,
                          struct dcmf_wire_frame *f);

/* Drops frame |f| (from _next), closing the descriptors the caller did
 * not take. */
void dcmf_wire_reader_consume(struct dcmf_wire_reader *r,
                              const struct dcmf_wire_frame *f);

/* Frees the buffers and closes every descriptor still held. */
void dcmf_wire_reader_free(struct dcmf_wire_reader *r);

#endif
