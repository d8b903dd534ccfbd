/*
 * msrp_relay.h - the MSRP relay of one session between a message leg (a
 * data channel: one MSRP chunk per SCTP user message, RFC 8873 §5.4)
 * and a stream leg (TCP or TLS: a byte stream, RFC 4975). Layer proto:
 * no I/O, no clock (time comes in as |now|, milliseconds of any
 * monotonic origin), no globals. Built on msrp.h (framer, parser,
 * writer, re-chunker, path rewriter).
 *
 * Modes:
 *   - agnostic (CEMA on both ends, RFC 6714, RFC 8873 §6): the bytes of
 *     a chunk pass unchanged. The stream is cut at chunk boundaries and
 *     each chunk goes out as one message. A SEND chunk whose message
 *     would exceed the message leg's max-message-size is split (RFC 4975
 *     §7.1.1) into pieces with fresh transaction ids: cut whole if it
 *     arrived whole, else passed on a piece at a time while it streams
 *     in, so it is never held whole. The responses to the pieces are
 *     folded into one response to the original transaction (below).
 *   - aware (no CEMA toward the core; TS 23.334 §5.19.5, RFC 8873 §6's
 *     B2BUA): a request must name this leg's own URI as the first URI of
 *     its To-Path, else it is refused with 481 (RFC 4975 §7.3.1) sent
 *     back to its sender when §7.2 lets us answer. Then toward the other
 *     leg: a request gets To-Path = that leg's peer path and From-Path =
 *     that leg's own URI; a response gets To-Path = the first URI of the
 *     peer path and From-Path = the own URI. Everything else (Message-ID,
 *     Byte-Range, Status, the body, the flag, the transaction id) is
 *     kept. Splitting works as in the agnostic mode.
 *
 * Folding piece responses (RFC 4975 §7.2, §7.1.4): a split SEND with
 * Failure-Report "no" is tracked by nobody (no response comes, none is
 * sent). Otherwise the relay remembers the pieces' ids. The first
 * non-200 answer to any piece goes back on the original transaction id
 * (once); with every piece answered 200 the original gets 200 (only if
 * Failure-Report is "yes" or absent). A tracked split unanswered after
 * |tx_timeout_ms| (from its last piece) gets 408 (Failure-Report "yes") or is forgotten
 * ("partial": no news is success). Responses to pieces never pass.
 * Unsplit chunks keep their transaction id, so their responses pass.
 *
 * Also refused (verdicts below), answered when §7.2 allows: a non-SEND
 * request with a body over 10240 octets (§7.1, 413); a chunk that
 * cannot fit a message and cannot be split (413; a SEND's pieces
 * already sent stay sent). A message that is not exactly one chunk is
 * dropped (no transaction id to answer is sure). A stream that cannot
 * be cut into chunks (bad syntax, a head over the limit, a body held
 * whole over max_chunk_body, a streaming SEND over max_streamed_body)
 * is fatal: the caller closes both legs.
 *
 * Memory is bounded: the framer holds at most one chunk at the limits
 * (a SEND streaming in: its head and less than a piece and a feed step);
 * each output queue takes input only below |queue_limit| (so it ends at
 * most one split chunk over it); at most |max_splits| splits are
 * tracked. dcmf_msrp_relay_mem counts every byte the relay holds.
 *
 * Back-pressure: while the message queue is at or over |queue_limit|
 * (or the split table is full) the relay takes no stream bytes
 * (dcmf_msrp_relay_recv_stream returns 0; stream_wanted says 0): the
 * caller stops reading the stream leg and keeps what it read. Popping
 * messages below the limit resumes it. Likewise messages are refused
 * with DCMF_ERR_EXHAUSTED while the stream queue is at or over the limit
 * (message_wanted says 0). The relay's own answers go back toward the
 * leg a chunk came from; a leg whose own queue reaches twice the limit
 * (its peer reads nothing) is paused as well.
 *
 * One owner thread per relay. Errors are negative DCMF_ERR_* (errors.h).
 */
#ifndef DCMF_MSRP_RELAY_H
#define DCMF_MSRP_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "msrp.h"

enum dcmf_msrp_relay_mode {
  DCMF_MSRP_RELAY_AGNOSTIC = 0,
  DCMF_MSRP_RELAY_AWARE = 1,
};

/* RFC 4975 §7.1: a non-SEND request's body is at most 10240 octets. */
#define DCMF_MSRP_NON_SEND_BODY_MAX 10240

struct dcmf_msrp_relay_settings {
  enum dcmf_msrp_relay_mode mode;
  /* The data channel peer's max-message-size (RFC 8841): every message
   * out is at most this. At least max_header + 1024. */
  size_t max_message_size;
  /* Limits on one chunk from either leg: start line and headers, body.
   * 0: 16384 and 1 MiB. */
  size_t max_header;
  size_t max_chunk_body;
  /* Queued output bytes toward a leg at which the other leg is paused.
   * 0: 256 KiB. */
  size_t queue_limit;
  /* The most body bytes one SEND may carry when it is passed on in
   * pieces while it streams in (a chunk larger than max-message-size
   * need not fit max_chunk_body); more is fatal. 0: 64 MiB. */
  uint64_t max_streamed_body;
  /* Split SENDs tracked at once for their responses. 0: 64. */
  size_t max_splits;
  /* How long a split waits for its pieces' responses. 0: 30000 ms
   * (RFC 4975 §7.1.4's sender timer). */
  uint64_t tx_timeout_ms;
  /* Aware mode only (NUL-terminated, copied): the MF's own URI on each
   * leg ("msrps://host:port/sid;dc", "msrp://host:port/sid;tcp") and
   * the far ends' paths from the SDP (URIs separated by SP). */
  const char *dc_own_uri;
  const char *tcp_own_uri;
  const char *dc_peer_path;
  const char *tcp_peer_path;
  /* Randomness for the pieces' transaction ids (copied). */
  struct dcmf_msrp_rng rng;
};

/* What became of one chunk (a message, or a chunk cut from the
 * stream). */
enum dcmf_msrp_relay_verdict {
  /* Passed to the other leg (maybe rewritten, maybe split). */
  DCMF_MSRP_RELAY_FORWARDED = 0,
  /* A response to a split's piece, folded into the original's. */
  DCMF_MSRP_RELAY_ABSORBED = 1,
  /* Not exactly one well-formed chunk within the limits: dropped. */
  DCMF_MSRP_RELAY_NOT_A_CHUNK = 2,
  /* Aware: the To-Path does not name this leg's URI (481 if wanted;
   * a response is dropped). */
  DCMF_MSRP_RELAY_WRONG_PATH = 3,
  /* Too large: a non-SEND body over 10240, or a chunk that fits no
   * message and cannot be split (413 if wanted). */
  DCMF_MSRP_RELAY_TOO_LARGE = 4,
  DCMF_MSRP_RELAY_N_VERDICTS = 5,
};

/* Legs, to index the counters: where a chunk came from. */
enum dcmf_msrp_relay_leg {
  DCMF_MSRP_RELAY_FROM_MESSAGES = 0,
  DCMF_MSRP_RELAY_FROM_STREAM = 1,
};

struct dcmf_msrp_relay_stats {
  uint64_t verdicts[2][DCMF_MSRP_RELAY_N_VERDICTS]; /* [from leg][verdict] */
  uint64_t splits;  /* stream chunks split into pieces */
  uint64_t pieces;  /* pieces written */
  uint64_t answers; /* responses the relay made itself */
  uint64_t expired; /* tracked splits that timed out */
  size_t peak_mem;  /* the highest dcmf_msrp_relay_mem seen */
};

struct msrp_relay_node;
struct msrp_relay_split;

struct msrp_relay_queue {
  struct msrp_relay_node *head, *tail;
  size_t bytes; /* payload bytes queued */
  size_t alloc; /* bytes allocated for the nodes */
};

/* A SEND from the stream passed on in pieces while it streams in. */
struct msrp_relay_streaming {
  int active;
  int discard;   /* refused: its body is dropped as it comes */
  int verdict;   /* the verdict of a refused one, answered at its end */
  int answered;  /* its answer already went (a failed piece) */
  uint8_t *head; /* its head with a made-up end-line, hc points here */
  size_t head_cap;
  struct dcmf_msrp_chunk hc;   /* the head; paths rewritten (aware) */
  uint64_t start, total, sent; /* Byte-Range base and total, bytes sent */
  size_t piece;                /* body bytes per piece */
  size_t head_len;             /* its head's length in the framer */
  struct msrp_relay_split *sp; /* NULL: not tracked */
};

struct dcmf_msrp_relay {
  struct dcmf_msrp_relay_settings set; /* URIs point to owned copies */
  char *own_uri[2];                    /* [leg]: dc, tcp (aware) */
  char *peer_path[2];
  struct dcmf_msrp_str peer_first[2]; /* first URI of peer_path */
  /* A new data-channel path (dcmf_msrp_relay_set_peer_path) waiting
   * until no streamed head points into peer_path[dc]. */
  char *next_dc_path;
  struct dcmf_msrp_limits lim;
  struct dcmf_msrp_framer framer; /* the stream leg's input */
  struct msrp_relay_queue to_msgs, to_stream;
  struct msrp_relay_split *splits; /* max_splits slots */
  size_t n_splits;
  size_t split_mem;
  uint8_t *scratch; /* aware rewrites before a split */
  size_t scratch_cap;
  struct msrp_relay_streaming big;
  int fatal; /* sticky: the stream could not be cut */
  struct dcmf_msrp_relay_stats stats;
};

/*
 * Sets |r| up from |s| (copied, strings too). Returns 0,
 * DCMF_ERR_INVALID (a limit out of range, no rng, aware without all
 * four URIs/paths or with one that does not parse), or DCMF_ERR_NOMEM.
 */
int dcmf_msrp_relay_init(struct dcmf_msrp_relay *r,
                         const struct dcmf_msrp_relay_settings *s);

/* Frees everything |r| holds (queued output included). */
void dcmf_msrp_relay_free(struct dcmf_msrp_relay *r);

/*
 * Feeds stream-leg bytes (|data|, |len|, borrowed for the call). Whole
 * chunks are relayed toward the message leg (or answered toward the
 * stream leg) as they complete. Returns the count of bytes taken (fewer
 * than |len|, maybe 0, under back-pressure: keep the rest and feed it
 * when dcmf_msrp_relay_stream_wanted says 1), or a fatal error:
 * DCMF_ERR_MALFORMED or DCMF_ERR_TOO_LARGE (the stream cannot be cut
 * into chunks: close both legs; sticky), DCMF_ERR_NOMEM.
 */
int dcmf_msrp_relay_recv_stream(struct dcmf_msrp_relay *r, const uint8_t *data,
                                size_t len, uint64_t now);

/*
 * Feeds one message-leg message (one SCTP user message, borrowed for the
 * call). Returns a dcmf_msrp_relay_verdict (>= 0; also counted), or
 * DCMF_ERR_EXHAUSTED (the stream queue is full: nothing taken, offer it
 * again once dcmf_msrp_relay_message_wanted says 1), or DCMF_ERR_NOMEM.
 */
int dcmf_msrp_relay_recv_message(struct dcmf_msrp_relay *r, const uint8_t *msg,
                                 size_t len, uint64_t now);

/* The next message for the message leg: its bytes (valid until it is
 * popped or the relay freed) and length into |*len|; NULL if none. */
const uint8_t *dcmf_msrp_relay_peek_message(const struct dcmf_msrp_relay *r,
                                            size_t *len);

/* Drops the message peek returned (it was sent) and resumes stream
 * chunks held back by back-pressure. Returns 0 or a fatal error as
 * dcmf_msrp_relay_recv_stream returns them. */
int dcmf_msrp_relay_pop_message(struct dcmf_msrp_relay *r, uint64_t now);

/* The next bytes for the stream leg (contiguous, maybe not all that is
 * queued), valid until consumed; NULL if none. */
const uint8_t *dcmf_msrp_relay_peek_stream(const struct dcmf_msrp_relay *r,
                                           size_t *len);

/* Marks |n| bytes of what peek_stream returned as written (a partial
 * write is fine), and resumes stream chunks held back while the
 * relay's answers toward the stream piled up. Returns 0 or a fatal
 * error as dcmf_msrp_relay_recv_stream returns them. */
int dcmf_msrp_relay_consume_stream(struct dcmf_msrp_relay *r, size_t n,
                                   uint64_t now);

/* 1 if the relay takes stream bytes now (keep reading the stream
 * leg), 0 under back-pressure or after a fatal error. */
int dcmf_msrp_relay_stream_wanted(const struct dcmf_msrp_relay *r);

/* 1 if the relay takes messages now, 0 under back-pressure. */
int dcmf_msrp_relay_message_wanted(const struct dcmf_msrp_relay *r);

/* Aware mode: the far end of |leg| (DCMF_MSRP_RELAY_FROM_MESSAGES: the
 * data channel; _FROM_STREAM: TCP) has the path |path| now, because a
 * re-offer changed it (RFC 8873 §4.4 lets a re-offer change the dcsa
 * values). Chunks relayed toward that leg from now on name it; a SEND
 * being split as it streams keeps the path it started with, and the
 * new one applies from the next chunk. Returns 0, DCMF_ERR_INVALID (not
 * aware, or a path that does not parse) or DCMF_ERR_NOMEM. */
int dcmf_msrp_relay_set_peer_path(struct dcmf_msrp_relay *r, int leg,
                                  const char *path);

/* The earliest time a tracked split expires; UINT64_MAX if none. */
uint64_t dcmf_msrp_relay_next_expiry(const struct dcmf_msrp_relay *r);

/* Answers (408) or forgets the splits expired at |now|. Returns 0 or
 * DCMF_ERR_NOMEM. */
int dcmf_msrp_relay_handle_expiry(struct dcmf_msrp_relay *r, uint64_t now);

/* Bytes the relay holds now: the framer's buffer, the queues, the
 * split table and the scratch buffer. */
size_t dcmf_msrp_relay_mem(const struct dcmf_msrp_relay *r);

/* The counters (valid as long as |r|). */
const struct dcmf_msrp_relay_stats *
dcmf_msrp_relay_stats(const struct dcmf_msrp_relay *r);

#endif
