/*
 * sdp.h - an SDP (RFC 8866) parser, editor and serializer for the
 * IMS-ALG helper (dcmf/tools/alg.h). Layer proto: no I/O, no clock, no
 * globals.
 *
 * The model is deliberately thin: a description is a session section
 * and up to DCMF_SDP_MAX_MEDIA media sections, each an ordered list of
 * "<type>=<value>" lines kept as text. The editing helpers find, remove,
 * add and replace lines; the m= line is parsed on demand
 * (dcmf_sdp_mline_get). Values are not interpreted beyond what the
 * parser checks, so that attributes the ALG does not know pass through
 * unchanged.
 *
 * What the parser refuses (DCMF_ERR_MALFORMED or DCMF_ERR_TOO_LARGE,
 * with the 1-based line number and a sentence in |err|):
 *   - input over DCMF_SDP_MAX_BYTES, a line over DCMF_SDP_MAX_LINE
 *     octets, more than DCMF_SDP_MAX_LINES lines or more than
 *     DCMF_SDP_MAX_MEDIA m= lines (the bounds on hostile input);
 *   - a first line other than "v=0", a line that is not "<a-z>=", a
 *     control character (NUL, a lone CR, ...) other than TAB, an empty
 *     line before the end;
 *   - an m= line that is not "<media> <port>[/<n>] <proto> <fmt>...";
 *   - a media section with a non-zero port and no c= line of its own
 *     or at session level (RFC 8866 §5.7); the error names its m= line.
 * Lines may end with CRLF or LF; the serializer writes CRLF.
 *
 * Memory: every line value is a heap copy owned by the description;
 * dcmf_sdp_free releases it all (also after a failed parse). Pointers
 * returned by the getters are valid until the description is edited.
 * Errors are 0 or a negative DCMF_ERR_* (errors.h).
 */
#ifndef DCMF_SDP_H
#define DCMF_SDP_H

#include <stdarg.h>
#include <stddef.h>

#define DCMF_SDP_MAX_BYTES 65536
#define DCMF_SDP_MAX_LINE 4096
#define DCMF_SDP_MAX_LINES 1024
#define DCMF_SDP_MAX_MEDIA 32

struct dcmf_sdp_line {
  char type;   /* 'v', 'o', ..., 'm', 'a' */
  char *value; /* after "x=", NUL-terminated, owned */
};

struct dcmf_sdp_section {
  struct dcmf_sdp_line *lines; /* a media section starts with its m= */
  size_t n, cap;
};

struct dcmf_sdp {
  struct dcmf_sdp_section session;
  struct dcmf_sdp_section media[DCMF_SDP_MAX_MEDIA];
  size_t nmedia;
};

struct dcmf_sdp_error {
  unsigned line; /* 1-based; 0 = the whole input */
  char msg[160];
};

/* The fields of an m= line ("m=<media> <port>[/<nports>] <proto> <fmt>"). */
struct dcmf_sdp_mline {
  char media[32];
  unsigned port;
  unsigned nports; /* 0 when absent */
  char proto[64];
  char fmt[1024]; /* the format list as written, space-separated */
};

/* Parses |len| bytes of |text| into |sdp| (zeroed by the call). On error
 * |err| names the line; |sdp| is left empty (nothing to free, freeing is
 * harmless). */
int dcmf_sdp_parse(struct dcmf_sdp *sdp, const char *text, size_t len,
                   struct dcmf_sdp_error *err);

/* Releases every line; |sdp| is empty afterwards. */
void dcmf_sdp_free(struct dcmf_sdp *sdp);

/* Writes |sdp| with CRLF line ends into a heap buffer (NUL-terminated,
 * caller frees) at |*out|, its length in |*outlen|. DCMF_ERR_NOMEM. */
int dcmf_sdp_write(const struct dcmf_sdp *sdp, char **out, size_t *outlen);

/* The |nth| (0-based) "a=<name>" or "a=<name>:<value>" of |s|: returns
 * the value ("" for a flag attribute) or NULL. Names compare exactly. */
const char *dcmf_sdp_attr(const struct dcmf_sdp_section *s, const char *name,
                          size_t nth);

/* The first line of |type| in |s|, or NULL. */
const char *dcmf_sdp_get(const struct dcmf_sdp_section *s, char type);

/* Removes every "a=<name>[:...]" line of |s|; returns how many. */
size_t dcmf_sdp_remove_attr(struct dcmf_sdp_section *s, const char *name);

/* Removes every "a=<name>:<value>" whose value starts with |prefix|. */
size_t dcmf_sdp_remove_attr_prefix(struct dcmf_sdp_section *s,
                                   const char *name, const char *prefix);

/* Removes every line of |type| (not 'a', not 'm'). */
size_t dcmf_sdp_remove_type(struct dcmf_sdp_section *s, char type);

/* Adds a line of |type| with the printf-formatted value: an 'a' line
 * goes last; another type goes after the last line of the same or an
 * earlier type in RFC 8866 order (v o s i u e p c b t r z k a; m first
 * in a media section). DCMF_ERR_NOMEM, DCMF_ERR_TOO_LARGE (line bound or
 * line count). */
int dcmf_sdp_add(struct dcmf_sdp_section *s, char type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int dcmf_sdp_vadd(struct dcmf_sdp_section *s, char type, const char *fmt,
                  va_list ap) __attribute__((format(printf, 3, 0)));

/* Replaces the first line of |type| (adding it if absent). */
int dcmf_sdp_set(struct dcmf_sdp_section *s, char type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses the m= line of media section |m| into |out|;
 * DCMF_ERR_MALFORMED when it is not one (cannot happen after a parse). */
int dcmf_sdp_mline_get(const struct dcmf_sdp_section *m,
                       struct dcmf_sdp_mline *out);

/* Rewrites the m= line of |m| from |in|. */
int dcmf_sdp_mline_set(struct dcmf_sdp_section *m,
                       const struct dcmf_sdp_mline *in);

/* The connection address of media |i| (its c=, else the session's):
 * writes the address (without "IN IP4 ") into |addr| and the family
 * (4 or 6) into |*family|. DCMF_ERR_NOT_FOUND, DCMF_ERR_MALFORMED. */
int dcmf_sdp_conn(const struct dcmf_sdp *sdp, size_t i, char *addr,
                  size_t addrlen, int *family);

#endif
