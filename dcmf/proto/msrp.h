/*
 * msrp.h - MSRP chunks (RFC 4975) for the e2ae gateway: a parser, a
 * streaming framer for a TCP byte stream, a serializer, a re-chunker
 * and a path rewriter, and MSRP URIs (RFC 4975 §6, RFC 8873 §4.1).
 * Layer proto: no I/O, no clock, no globals. Randomness (transaction
 * ids) comes from a callback the caller gives.
 *
 * What a chunk is (RFC 4975 §9): a start line
 *   "MSRP" SP transact-id SP method CRLF                  (a request)
 *   "MSRP" SP transact-id SP status-code [SP comment] CRLF (a response)
 * header lines "Name: value" CRLF, then either the end-line directly
 * (no body), or a blank line, the body (content-stuff), CRLF and the
 * end-line. The end-line is "-------" transact-id flag CRLF, the flag
 * '$' (the message ends here), '+' (more chunks follow) or '#' (the
 * sender aborts the message). The body has no length field: its end is
 * the first CRLF "-------" transact-id flag CRLF after the blank line,
 * which §7.1 makes the sender keep out of the body by picking a
 * transaction id that does not occur in it.
 *
 * Checked by the parser (anything else is DCMF_ERR_MALFORMED):
 *   - CRLF line ends everywhere (a bare LF is refused);
 *   - the transaction id is an ident (an ALPHANUM and 3 to 31 of
 *     ALPHANUM . - + % =), the method 1*UPALPHA, the status code 3DIGIT;
 *   - header names are ALPHA *token, values utf8text (no control bytes
 *     but HTAB; bytes from 0x80 are taken as they are); at most
 *     DCMF_MSRP_MAX_HEADERS lines (more: DCMF_ERR_TOO_LARGE);
 *   - To-Path and From-Path each exactly once, each a list of MSRP URIs
 *     separated by one SP (the §9 ABNF puts them first; the parser takes
 *     them anywhere, a gateway gains nothing by refusing the order);
 *   - Message-ID an ident; Byte-Range start-end/total (start >= 1, end
 *     and total digits or '*', end >= start - 1 and end <= total when
 *     numbers; 19 digits at most); Success-Report yes/no; Failure-Report
 *     yes/no/partial; Status 3DIGIT SP 3DIGIT [SP text]; each of these
 *     at most once. Header names and these keyword values compare
 *     without case (ABNF strings);
 *   - a body comes with a Content-Type, which is the last header (§7.1);
 *     no body comes with no Content-Type; a response has no body.
 * Not checked (the relay's business, not the framing's): that a SEND
 * has a Message-ID, that a REPORT has a Status, that Byte-Range agrees
 * with the body's length (§7.3.1: the receiver goes by the body; the
 * RFC's own §11.1 example says 1-16/16 for 14 bytes), the 10240-octet
 * limit on non-SEND bodies.
 *
 * All errors are 0 or a negative DCMF_ERR_* (errors.h).
 */
#ifndef DCMF_MSRP_H
#define DCMF_MSRP_H

#include <stddef.h>
#include <stdint.h>

#include "streambuf.h"

/* RFC 4975 §9: ident = ALPHANUM 3*31ident-char. */
#define DCMF_MSRP_TID_MIN 4
#define DCMF_MSRP_TID_MAX 32
/* Transaction ids this module makes: 16 ALPHANUM characters from 16
 * random bytes (about 95 bits; §7.1 asks for 64 at least). */
#define DCMF_MSRP_TID_LEN 16
/* Header lines a chunk may have (To-Path and From-Path included). */
#define DCMF_MSRP_MAX_HEADERS 32
/* A Byte-Range end or total written as '*'. */
#define DCMF_MSRP_UNKNOWN UINT64_MAX
/* Bytes of an end-line at most: CRLF "-------" tid flag CRLF. */
#define DCMF_MSRP_END_MAX (2 + 7 + DCMF_MSRP_TID_MAX + 1 + 2)

/* A span of text in someone's buffer (not NUL-terminated). */
struct dcmf_msrp_str {
  const char *p;
  size_t len;
};

enum dcmf_msrp_kind {
  DCMF_MSRP_REQUEST = 0,
  DCMF_MSRP_RESPONSE = 1,
};

enum dcmf_msrp_method {
  DCMF_MSRP_OTHER = 0, /* any other 1*UPALPHA: see method_name */
  DCMF_MSRP_SEND = 1,
  DCMF_MSRP_REPORT = 2,
};

/* The end-line flags (RFC 4975 §7.1). */
#define DCMF_MSRP_FLAG_END '$'
#define DCMF_MSRP_FLAG_MORE '+'
#define DCMF_MSRP_FLAG_ABORT '#'

/* Byte-Range: 1-based positions; end and total DCMF_MSRP_UNKNOWN for
 * '*'. The empty message is 1-0/0 (§7.1.1). */
struct dcmf_msrp_range {
  uint64_t start;
  uint64_t end;
  uint64_t total;
};

struct dcmf_msrp_header {
  struct dcmf_msrp_str name;
  struct dcmf_msrp_str value; /* without the SP after the colon */
};

/*
 * One chunk (a request or a response). The parser fills it with
 * pointers into the bytes it parsed; dcmf_msrp_write reads it. For
 * writing only kind, tid, method_name (requests), status and comment
 * (responses), headers/n_headers, has_body/body/body_len and flag are
 * used: the other fields are what the parser found in the headers.
 */
struct dcmf_msrp_chunk {
  enum dcmf_msrp_kind kind;
  struct dcmf_msrp_str tid;
  enum dcmf_msrp_method method;     /* requests */
  struct dcmf_msrp_str method_name; /* requests: "SEND", "REPORT", ... */
  int status;                       /* responses: 100-999 */
  struct dcmf_msrp_str comment;     /* responses; may be empty */
  /* Every header line in order, the ones below included. */
  struct dcmf_msrp_header headers[DCMF_MSRP_MAX_HEADERS];
  size_t n_headers;
  /* The values of the headers the parser knows (len 0: absent). */
  struct dcmf_msrp_str to_path;
  struct dcmf_msrp_str from_path;
  struct dcmf_msrp_str message_id;
  struct dcmf_msrp_str content_type;
  struct dcmf_msrp_str success_report;
  struct dcmf_msrp_str failure_report;
  int has_range;
  struct dcmf_msrp_range range;
  int has_status;      /* a Status header */
  int status_ns;       /* its namespace (000 for RFC 4975 codes) */
  int status_code;     /* its code */
  int has_body;        /* a body, maybe empty; 0: a bodiless chunk */
  const uint8_t *body; /* the content-stuff's data */
  size_t body_len;
  char flag; /* '$', '+' or '#' */
  /* Set by the parser: the whole chunk, end-line included. */
  const uint8_t *raw;
  size_t raw_len;
};

/* Limits of the parser and framer. */
struct dcmf_msrp_limits {
  size_t max_header; /* start line and headers, blank line included */
  size_t max_body;   /* body bytes of one chunk */
};

/* Where transaction ids get their randomness: |fill| writes |len|
 * random bytes to |buf|. */
struct dcmf_msrp_rng {
  void (*fill)(void *user, uint8_t *buf, size_t len);
  void *user;
};

/*
 * Parses exactly one whole chunk at |buf| (|len| bytes, borrowed): the
 * case of MSRP over a data channel, where each SCTP message is one
 * chunk (RFC 8873 §5.4). |c| points into |buf| afterwards. Returns 0,
 * DCMF_ERR_MALFORMED (see the header comment; also a chunk cut short or
 * followed by more bytes), or DCMF_ERR_TOO_LARGE (the head or the body
 * is beyond |lim|, or more than DCMF_MSRP_MAX_HEADERS header lines).
 */
int dcmf_msrp_parse(const uint8_t *buf, size_t len,
                    const struct dcmf_msrp_limits *lim,
                    struct dcmf_msrp_chunk *c);

/*
 * The streaming framer for a TCP byte stream: bytes go in as they come
 * (split anywhere), whole chunks come out. It keeps a scan position, so
 * bytes fed one at a time cost no more than bytes fed at once. It owns
 * one buffer, grown up to the limits and no further.
 */
/* Where the scan of one chunk stands (private to msrp.c; offsets from
 * the chunk's first byte). */
struct dcmf_msrp_scan {
  int phase;         /* 0: start line and headers, 1: body */
  int response;      /* the start line is a response's */
  size_t line;       /* the head line being read starts here */
  size_t scan;       /* the search resumes here */
  size_t head_end;   /* the blank line or the bodiless end-line */
  size_t body_start; /* after the blank line */
  size_t body_end;   /* the CRLF before the end-line */
  size_t total;      /* the chunk's length, end-line included */
  int has_body;
  char flag;
  size_t tid_len;
  char tid[DCMF_MSRP_TID_MAX];
};

struct dcmf_msrp_framer {
  struct dcmf_msrp_limits lim;
  struct dcmf_streambuf win; /* the chunk in progress and what follows */
  int err;                   /* sticky: the framer stopped */
  struct dcmf_msrp_scan s;
};

/* Sets |f| up with a copy of |lim| (both limits at least 1, else
 * DCMF_ERR_INVALID). Allocates nothing yet; returns 0. */
int dcmf_msrp_framer_init(struct dcmf_msrp_framer *f,
                          const struct dcmf_msrp_limits *lim);

/* Frees the buffer; |f| may be initialised again. */
void dcmf_msrp_framer_free(struct dcmf_msrp_framer *f);

/*
 * Copies bytes from |data| (|len|, borrowed for the call) into the
 * framer. It takes at most what one chunk at the limits can hold beside
 * the unread bytes: the return value is the count taken (call
 * dcmf_msrp_framer_next until it returns 0, then feed the rest), or
 * DCMF_ERR_NOMEM (nothing taken), or the framer's sticky error. Chunks
 * returned by earlier dcmf_msrp_framer_next calls become invalid: the
 * buffer may move.
 */
int dcmf_msrp_framer_feed(struct dcmf_msrp_framer *f, const uint8_t *data,
                          size_t len);

/*
 * The next whole chunk into |c| (pointing into the framer's buffer,
 * valid until the next dcmf_msrp_framer_feed or _free). Returns 1 with
 * a chunk, 0 when more bytes are needed, or an error as dcmf_msrp_parse
 * returns them; an error is sticky (the framer stops; the caller closes
 * the connection, since the stream can no longer be cut into chunks).
 */
int dcmf_msrp_framer_next(struct dcmf_msrp_framer *f,
                          struct dcmf_msrp_chunk *c);

/*
 * The chunk in progress when its head is read and its body still
 * arriving (dcmf_msrp_framer_next returned 0): its head parsed into |c|,
 * with has_body 1, body and body_len the body bytes that cannot hold the
 * end-line (all but a possible end-line start at the tail), flag 0, and
 * raw/raw_len the head and those bytes. |c| is valid until the next
 * feed or drop. Lets a relay pass a chunk on in pieces while it streams
 * in, instead of holding it whole. Returns 1 with a chunk, 0 if the
 * chunk in progress is not past its head, or an error as
 * dcmf_msrp_parse returns them (the head is bad: the same error
 * dcmf_msrp_framer_next will give once the chunk ends).
 */
int dcmf_msrp_framer_partial(const struct dcmf_msrp_framer *f,
                             struct dcmf_msrp_chunk *c);

/*
 * Drops the first |n| body bytes of the chunk in progress (at most the
 * body_len dcmf_msrp_framer_partial gave; more is ignored): they were
 * passed on. The head stays, so the chunk dcmf_msrp_framer_next returns
 * at its end has the rest of the body only, and the body limit counts
 * what is left.
 */
void dcmf_msrp_framer_drop_body(struct dcmf_msrp_framer *f, size_t n);

/* Bytes fed but not yet returned as chunks. */
size_t dcmf_msrp_framer_pending(const struct dcmf_msrp_framer *f);

/*
 * Writes the chunk |c| into |out| (|cap| bytes): the start line from
 * kind, tid, method_name or status and comment; the headers in order;
 * the body if has_body; the end-line with flag. The result is checked
 * by dcmf_msrp_parse before it is returned. Returns the length,
 * DCMF_ERR_TOO_LARGE (|cap| too small), or DCMF_ERR_INVALID (the chunk
 * would not parse: a bad tid, a value with CR or LF, no To-Path, a body
 * that holds the transaction id (RFC 4975 §7.1), ...).
 */
int dcmf_msrp_write(const struct dcmf_msrp_chunk *c, uint8_t *out,
                    size_t cap);

/*
 * Picks a fresh transaction id of DCMF_MSRP_TID_LEN characters that does
 * not occur in |body| (|len| bytes; NULL with 0 for none), into |tid|
 * (not NUL-terminated). Returns 0, or DCMF_ERR_EXHAUSTED when eight
 * draws all occurred in the body (a broken |rng|).
 */
int dcmf_msrp_pick_tid(const struct dcmf_msrp_rng *rng, const uint8_t *body,
                       size_t len, char tid[DCMF_MSRP_TID_LEN]);

/* What a SEND carries, for dcmf_msrp_build_send; NULL strings are left
 * out (to_path and from_path are needed). */
struct dcmf_msrp_send {
  const char *to_path;   /* URIs separated by SP */
  const char *from_path; /* likewise */
  const char *message_id;
  int has_range;
  struct dcmf_msrp_range range;
  const char *success_report;
  const char *failure_report;
  const char *content_type; /* with a body only */
  int has_body;
  const uint8_t *body;
  size_t body_len;
  char flag;
};

/*
 * Writes a SEND request with a fresh transaction id (dcmf_msrp_pick_tid)
 * into |out|. Returns the length or an error as dcmf_msrp_write and
 * dcmf_msrp_pick_tid return them.
 */
int dcmf_msrp_build_send(const struct dcmf_msrp_send *s,
                         const struct dcmf_msrp_rng *rng, uint8_t *out,
                         size_t cap);

/*
 * Writes a REPORT (RFC 4975 §7.1.2-7.1.4): To-Path |to_path| (the
 * original request's From-Path), From-Path |from_path|, Message-ID,
 * Byte-Range (if |range| is not NULL) and "Status: 000 <code> <text>",
 * no body, flag '$', a fresh transaction id. Returns the length or an
 * error as dcmf_msrp_write returns them.
 */
int dcmf_msrp_build_report(const char *to_path, const char *from_path,
                           const char *message_id,
                           const struct dcmf_msrp_range *range, int code,
                           const char *text, const struct dcmf_msrp_rng *rng,
                           uint8_t *out, size_t cap);

/*
 * Whether RFC 4975 lets a node answer the request |req| with |code|:
 * never a response or a REPORT (§7.1.2); Failure-Report "no" never,
 * "partial" only a code other than 200, "yes" or absent always (§7.1.4,
 * §7.2). Returns 1 or 0.
 */
int dcmf_msrp_response_wanted(const struct dcmf_msrp_chunk *req, int code);

/*
 * Writes the response |code| |comment| (comment may be NULL) to the
 * request |req| (RFC 4975 §7.2): the same transaction id; To-Path the
 * first URI of the request's From-Path for a SEND, all of it for other
 * methods; From-Path |own_uri| (NULL: the first URI of the request's
 * To-Path); no body; flag '$'. Returns the length, DCMF_ERR_INVALID
 * (|req| is a response or a REPORT, or |code| is not 100-999), or an
 * error as dcmf_msrp_write returns them.
 */
int dcmf_msrp_build_response(const struct dcmf_msrp_chunk *req, int code,
                             const char *comment, const char *own_uri,
                             uint8_t *out, size_t cap);

/*
 * Writes |c| again with To-Path |to_path| and/or From-Path |from_path|
 * (NULL: kept; as on the wire: URIs separated by SP, each checked with
 * dcmf_msrp_uri_parse), every other header, the transaction id, the body
 * and the flag unchanged (the aware mode of TS 23.334 §5.19.5). Returns
 * the length, DCMF_ERR_INVALID (a bad path), or as dcmf_msrp_write.
 */
int dcmf_msrp_rewrite_paths(const struct dcmf_msrp_chunk *c,
                            const char *to_path, const char *from_path,
                            uint8_t *out, size_t cap);

/*
 * Splits a SEND chunk whose body is larger than a limit (a data
 * channel's max-message-size; RFC 4975 §7.1.1 lets an intermediary
 * "break SEND requests into smaller chunks"). Each piece keeps every
 * header of the original (Message-ID, Success-Report and Failure-Report
 * included, which §7.1.1 wants the same on all chunks), gets its own
 * Byte-Range and a fresh transaction id not in its body, and the flag
 * '+' except the last, which keeps the original's flag. Byte-Range:
 * start = the original's start + the piece's offset; end = the piece's
 * last byte, or '*' when the piece is over 2048 bytes (§7.1.1: such a
 * chunk must be interruptible, so its end is '*'; receivers go by the
 * body, §7.3.1); total = the original's total, or the body length when
 * the original had no Byte-Range and the flag '$' (the whole message).
 * A Byte-Range header missing from the original is put before its
 * first Content-* header.
 *
 * Responses: the next hop answers every piece on its own transaction
 * id (unless Failure-Report is "no"; "partial" only on failure). The
 * relay must keep which pieces belong to which original transaction,
 * answer the original itself (200 once all pieces got 200, or the first
 * error), and never forward a piece's response as it is. Success
 * REPORTs (end to end, by Message-ID and Byte-Range) need nothing:
 * §7.1.3 already warns they need not match the sender's chunks.
 */
struct dcmf_msrp_rechunker {
  const struct dcmf_msrp_chunk *c; /* borrowed for the whole split */
  size_t max_body;
  size_t off; /* body bytes already written */
  int done;
  uint64_t start, total;
};

/*
 * Starts splitting |c| (borrowed until the last piece) into bodies of at
 * most |max_body| (>= 1) bytes. Returns 0, or DCMF_ERR_INVALID: |c| is
 * not a SEND, or it has no Byte-Range and is not a whole message (flag
 * other than '$'), so the pieces' positions are unknown.
 */
int dcmf_msrp_rechunk_init(struct dcmf_msrp_rechunker *r,
                           const struct dcmf_msrp_chunk *c, size_t max_body);

/*
 * Writes the next piece into |out|. A chunk whose body already fits
 * (bodiless chunks included) comes out as one piece, written again with
 * its own transaction id. Returns the length, 0 after the last piece,
 * DCMF_ERR_TOO_LARGE (|cap| too small: nothing written, call again with
 * more room), or an error as dcmf_msrp_pick_tid returns them.
 */
int dcmf_msrp_rechunk_next(struct dcmf_msrp_rechunker *r,
                           const struct dcmf_msrp_rng *rng, uint8_t *out,
                           size_t cap);

/*
 * Writes one piece of the SEND |c| (a request with a body): every header
 * of |c| kept, but Byte-Range (put before the first Content-* header if
 * |c| has none) start |start|, end the piece's last byte or '*' when
 * |len| is over 2048 (§7.1.1), total |total| (DCMF_MSRP_UNKNOWN: '*');
 * the body |body| (|len| bytes); the flag |flag|; a fresh transaction id
 * not in the body (dcmf_msrp_pick_tid), at out + 5. The re-chunker's
 * pieces, and a relay's pieces of a chunk still streaming in. Returns
 * the length, DCMF_ERR_INVALID (|c| has no body or is a response, or
 * |start| is 0), or as dcmf_msrp_write and dcmf_msrp_pick_tid.
 */
int dcmf_msrp_write_piece(const struct dcmf_msrp_chunk *c,
                          const uint8_t *body, size_t len, uint64_t start,
                          uint64_t total, char flag,
                          const struct dcmf_msrp_rng *rng, uint8_t *out,
                          size_t cap);

/*
 * An MSRP URI (RFC 4975 §6, §9): scheme "://" authority ["/" session-id]
 * ";" transport *(";" param). The transport is "tcp" over TCP and "dc"
 * over a data channel (RFC 8873 §4.1, where the scheme is always msrps,
 * §4.2); it is a transport, not a parameter. Spans point into the text.
 */
struct dcmf_msrp_uri {
  int secure; /* msrps */
  struct dcmf_msrp_str userinfo;
  struct dcmf_msrp_str host; /* an IPv6 address without its brackets */
  int has_port;
  uint16_t port;
  struct dcmf_msrp_str session_id;
  struct dcmf_msrp_str transport;
  struct dcmf_msrp_str params; /* after the transport's ';', may be empty */
};

/*
 * Parses the URI in |s| (|len| bytes). The host is a bracketed IPv6
 * address, or a name or IPv4 address; an unbracketed IPv6 address with
 * a port after its last colon is taken too, as RFC 8873 §4.8's own
 * example writes one. Returns 0 or DCMF_ERR_MALFORMED.
 */
int dcmf_msrp_uri_parse(const char *s, size_t len, struct dcmf_msrp_uri *u);

/*
 * RFC 4975 §6.1 comparison: scheme and host without case, userinfo
 * ignored, port exact (present in both or neither), session-id with
 * case, transport without case. Percent-encoded host characters are
 * compared as written (not decoded). Returns 1 if equal, else 0.
 */
int dcmf_msrp_uri_equal(const struct dcmf_msrp_uri *a,
                        const struct dcmf_msrp_uri *b);

/* The first URI of a path value |path| into |first| (up to the first
 * SP). Returns 0, or DCMF_ERR_MALFORMED for an empty path. */
int dcmf_msrp_path_first(struct dcmf_msrp_str path,
                         struct dcmf_msrp_str *first);

#endif
