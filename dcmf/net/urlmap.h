/*
 * urlmap.h - HTTP-proxy mode's URL and header mapping (TS 23.228 AC.7.1,
 * TS 29.176 DcMedia.replaceHttpUrl). A phone's HTTP/1.x request on a
 * bootstrap data channel is forwarded to the per-stream replacement URL
 * (the "base"): this module computes the upstream URL and the upstream
 * header list, and filters the upstream's response headers on the way
 * back. Pure functions: no I/O, no allocation, no globals. The operator's
 * description of the same rules is docs/http-proxy.md.
 */
#ifndef DCMF_URLMAP_H
#define DCMF_URLMAP_H

#include <stddef.h>
#include <stdint.h>

/* Buffer sizes of struct dcmf_url, each including the terminating NUL. */
#define DCMF_URL_MAX_HOST 256
#define DCMF_URL_MAX_PATH 2048
#define DCMF_URL_MAX_AUTHORITY 300

/* An absolute http or https URL, split for an HTTP client. Every string
 * is NUL-terminated. */
struct dcmf_url {
  int https; /* 1 for https, 0 for http */
  /* DNS name or IP address in lower case; an IPv6 address is without its
   * brackets ("2001:db8::1"). */
  char host[DCMF_URL_MAX_HOST];
  uint16_t port; /* the explicit port, else 80 for http and 443 for https */
  /* The path with its leading '/' ("/" when the URL has none), followed
   * by '?' and the query when the URL has a '?'. Percent-encoding is kept
   * exactly as written. This is the request-target in origin-form and
   * HTTP/2's :path. */
  char path[DCMF_URL_MAX_PATH];
  /* host[:port] for Host or :authority: IPv6 in brackets, the port left
   * out when it is the scheme's default ("dcsf", "[2001:db8::1]:8443"). */
  char authority[DCMF_URL_MAX_AUTHORITY];
};

/*
 * Parses |text|, a NUL-terminated absolute URL "http://..." or
 * "https://...", into |url| (caller-owned; every field is written).
 *
 * The scheme is matched in any letter case. The authority is a host and
 * an optional ":port" (1 to 5 digits, value 1..65535; an empty port is
 * refused). The host is either a DNS name or IPv4 address made of
 * letters, digits, '-', '.', '_' and '~', or an IPv6 address in brackets
 * (zone identifiers and IPvFuture literals are refused); scheme and host
 * are stored in lower case. Userinfo ('@' in the authority) is refused. A
 * fragment ('#' and what follows) is dropped. Every other character must
 * be visible ASCII other than '\', and every '%' must start a "%XX" hex
 * triplet; path and query are otherwise stored exactly as written.
 *
 * Returns 0, DCMF_ERR_MALFORMED (any rule above broken, including an
 * empty host or a NULL |text|) or DCMF_ERR_TOO_LARGE (host of 256 or more
 * bytes, or path plus query of 2048 or more bytes). On error |url| holds
 * unspecified contents.
 */
int dcmf_url_parse(const char *text, struct dcmf_url *url);

/*
 * Writes |url| as "scheme://authority" followed by its path and query
 * into |out| (capacity |cap| bytes, NUL-terminated). Since |url|'s
 * scheme and host are lower case and the default port is left out, this
 * is the canonical form of the URL dcmf_url_parse() read.
 *
 * Returns 0 or DCMF_ERR_TOO_LARGE (|cap| too small; |out| then holds an
 * empty string if |cap| > 0).
 */
int dcmf_url_format(const struct dcmf_url *url, char *out, size_t cap);

/*
 * The root-URL replacement rule. |target| (|target_len| bytes, borrowed
 * for the call, need not be NUL-terminated) is the request-target the
 * phone sent; |base| is the stream's replacement URL. The result is the
 * URL the proxy requests upstream.
 *
 *  1. The target must be origin-form ("/a/b?q") or absolute-form
 *     ("http://any/a/b?q", scheme http or https in any case). For
 *     absolute-form the scheme and authority are dropped (TS 26.114
 *     6.2.10.1: they have no meaning on a bootstrap channel); an empty
 *     path there is "/". Every byte must be visible ASCII (no NUL,
 *     control character, space, DEL or byte >= 0x80), and not '\' or '#';
 *     every '%' must start a "%XX" hex triplet.
 *  2. The target is split at its first '?' into path P and query Q.
 *     In P, the encodings %2F (slash), %5C (backslash) and %00-%1F, %7F
 *     (control characters) are refused, in either hex case. A segment
 *     that is "." or ".." only after percent-decoding ("%2e", ".%2E",
 *     "%2e%2e", ...) is refused. All other percent-encodings in P and Q
 *     are kept exactly as received; nothing is decoded and re-encoded.
 *  3. P is normalised by RFC 3986 5.2.4 (remove_dot_segments), except
 *     that a ".." with no segment left to remove - one that would climb
 *     above the root of the phone's URL space, and so above the base's
 *     directory - is refused instead of being ignored. Empty segments
 *     ("//") are kept.
 *  4. If the normalised P is "/", the result path is the base's path,
 *     unchanged. Otherwise the result path is the base's directory (its
 *     path up to and including the last '/') followed by P without its
 *     leading '/'. This is RFC 3986 5.2.3 merging of the relative
 *     reference "." + P against the base: the base's last segment is a
 *     file, exactly as a browser that loaded the base URL itself would
 *     resolve the app's relative links. With base
 *     "https://dcsf/apps/list?sess=abc", "/x.js" becomes
 *     "https://dcsf/apps/x.js?sess=abc".
 *  5. The result query is the base's query, then '&', then Q; the '&'
 *     only when both are non-empty, and a '?' when either the base or the
 *     target had one. The base's query is thus sent unchanged and first
 *     on every request of the stream, and the phone can only add to it:
 *     a target whose Q names a parameter the base's query also names is
 *     refused. Parameters are separated by '&' or ';', a name ends at
 *     '=', and names are compared after percent-decoding ('+' read as a
 *     space) and ignoring ASCII letter case.
 *
 * The base must itself be an absolute http/https URL (dcmf_url_parse)
 * without "." or ".." segments, literal or percent-encoded.
 *
 * Errors tell the caller whom to blame:
 *   DCMF_ERR_INVALID    the target broke a rule in 1-3 or 5: the phone's
 *                       fault, answer 400 Bad Request
 *   DCMF_ERR_TOO_LARGE  the result does not fit (path plus query of 2048
 *                       or more bytes, or more than |cap| - 1 bytes of
 *                       URL): answer 414 URI Too Long
 *   DCMF_ERR_MALFORMED  the base is unusable (not parseable, or with dot
 *                       segments): a configuration error, answer 502 and
 *                       log it
 * On error |out| holds an empty string if |cap| > 0.
 *
 * dcmf_urlmap_resolve writes the result URL in canonical form (see
 * dcmf_url_format) into |out| (capacity |cap|, NUL-terminated); |base|
 * is NUL-terminated text. So "/" gives exactly the base when the base is
 * canonical (lower-case scheme and host, no default port, no fragment).
 */
int dcmf_urlmap_resolve(const char *base, const char *target, size_t target_len,
                        char *out, size_t cap);

/*
 * The same rule for a base already parsed by dcmf_url_parse(). Writes
 * the result into |out|: https, host, port and authority copied from
 * |base| and the new path and query in |out|->path, ready for an HTTP
 * client. |out| may be |base|. Returns 0 or the errors above (with
 * DCMF_ERR_TOO_LARGE only for the 2048-byte path limit); on error |out|
 * is unchanged.
 */
int dcmf_urlmap_resolve_url(const struct dcmf_url *base, const char *target,
                            size_t target_len, struct dcmf_url *out);

/* A header field. Name and value are not NUL-terminated and are borrowed:
 * the same members as struct dcmf_httpdc_header. */
struct dcmf_urlmap_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};

/* The HTTP version of a message the proxy received, for its Via entry. */
enum dcmf_urlmap_proto {
  DCMF_URLMAP_HTTP_1_0, /* "Via: 1.0 dcmf" */
  DCMF_URLMAP_HTTP_1_1, /* "Via: 1.1 dcmf" */
  DCMF_URLMAP_HTTP_2,   /* "Via: 2 dcmf" */
};

/* What the proxy adds to a forwarded request. Every string is
 * NUL-terminated, non-empty, borrowed, and must hold only visible ASCII,
 * SP and HTAB, neither first nor last a space or tab. */
struct dcmf_urlmap_request_info {
  /* The Host value: the upstream's authority (dcmf_url.authority). */
  const char *authority;
  /* Values of X-DCMF-Context-Id, X-DCMF-Termination-Id, X-DCMF-Media-Id
   * and X-DCMF-Stream-Id (the bootstrap stream id in decimal, "10"). */
  const char *context_id;
  const char *termination_id;
  const char *media_id;
  const char *stream_id;
  /* The version of the phone's request (HTTP/1.0 or HTTP/1.1). */
  enum dcmf_urlmap_proto received;
};

/* Entries dcmf_urlmap_request_headers() adds to the kept ones: Host, Via
 * and the four X-DCMF-* fields. */
#define DCMF_URLMAP_REQUEST_EXTRA 6
/* Entries dcmf_urlmap_response_headers() adds: Via. */
#define DCMF_URLMAP_RESPONSE_EXTRA 1

/*
 * Builds the upstream request's header list from the phone's |n_in|
 * header fields |in| (in arrival order) into |out| (capacity |cap|
 * entries; |n_in| + DCMF_URLMAP_REQUEST_EXTRA always suffices) and sets
 * *|n_out|. Output order: Host, the kept fields of |in| in their order,
 * Via, X-DCMF-Context-Id, X-DCMF-Termination-Id, X-DCMF-Media-Id,
 * X-DCMF-Stream-Id.
 *
 * Dropped from |in| (names compared ignoring ASCII case):
 *   - Connection, and every field named in a Connection value (a
 *     comma-separated list, over all Connection fields);
 *   - Keep-Alive, Proxy-Connection, Proxy-Authorization, TE, Trailer,
 *     Transfer-Encoding, Upgrade (hop-by-hop, RFC 9110 7.6.1);
 *   - Host (TS 26.114: meaningless on a bootstrap channel; replaced);
 *   - Content-Length and Expect (message framing is the upstream client's
 *     business: it sets Content-Length from the body it actually sends);
 *   - every field whose name starts with "X-DCMF-" (the phone must not
 *     forge the identifiers the proxy adds).
 * A Via sent by the phone is kept and ours comes after it, as RFC 9110
 * 7.6.3 asks.
 *
 * Output entries borrow from |in|, from |info|'s strings and from static
 * strings; they are valid while those are. Names keep their letter case:
 * an HTTP/2 client lower-cases them (RFC 9113 8.2.1) and sends Host as
 * :authority.
 *
 * Returns:
 *   0                   |out| and *|n_out| are set
 *   DCMF_ERR_INVALID    a field of |in| (dropped or not) has a name that
 *                       is not an RFC 9110 token, or a value holding a
 *                       control character other than HTAB (CR, LF, NUL
 *                       among them); or |info| is NULL, one of its
 *                       strings breaks its rules or |received| is not
 *                       one of enum dcmf_urlmap_proto
 *   DCMF_ERR_TOO_LARGE  the list does not fit into |cap| entries
 * On error *|n_out| is 0 and |out| holds unspecified entries.
 */
int dcmf_urlmap_request_headers(const struct dcmf_urlmap_header *in,
                                size_t n_in,
                                const struct dcmf_urlmap_request_info *info,
                                struct dcmf_urlmap_header *out, size_t cap,
                                size_t *n_out);

/*
 * Builds the header list of the response sent back to the phone from
 * the upstream response's |n_in| fields |in| (no HTTP/2 pseudo-header
 * fields) into |out| (capacity |cap|; |n_in| + DCMF_URLMAP_RESPONSE_EXTRA
 * always suffices) and sets *|n_out|. Output order: the kept fields in
 * their order, then "Via: <version> dcmf" with the version the upstream
 * answered in (|received|).
 *
 * Dropped: Connection and every field it names, Keep-Alive,
 * Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE,
 * Trailer, Transfer-Encoding, Upgrade, and Content-Length (the httpdc
 * engine frames the response to the phone itself). Everything else is
 * kept, the upstream's own Via included.
 *
 * Entries borrow from |in| and static strings. Returns 0,
 * DCMF_ERR_INVALID (a bad name or value in |in|, as for requests, or an
 * unknown |received|) or DCMF_ERR_TOO_LARGE (|cap| too small); on error
 * *|n_out| is 0.
 */
int dcmf_urlmap_response_headers(const struct dcmf_urlmap_header *in,
                                 size_t n_in, enum dcmf_urlmap_proto received,
                                 struct dcmf_urlmap_header *out, size_t cap,
                                 size_t *n_out);

#endif
