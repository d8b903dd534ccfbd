/*
 * agwiq_int.h - what agwiq.c (the RTP path's Iq elements) shares with
 * agwiq_tcp.c (the TCP path's): the problem being built and the member
 * checks. Pure functions, as agwiq.h.
 */
#ifndef DCMF_AGWIQ_INT_H
#define DCMF_AGWIQ_INT_H

#include <jansson.h>

#include "agwiq.h"

/* The problem being built and the number of fields refused so far. */
struct check {
  struct dcmf_problem *p;
  int errors;
};

/* Records |reason| for the JSON Pointer built from |fmt|. */
void dcmf_agwiq_fail(struct check *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 0 when nothing was refused, else sets the 400 and DCMF_ERR_INVALID. */
int dcmf_agwiq_finish(struct check *c);
/* Refuses members of |obj| not in |allowed| (NULL-terminated). */
void dcmf_agwiq_only_members(struct check *c, json_t *obj,
                             const char *const *allowed, const char *prefix);
/* Refuses each member of |t| named in |names| with |reason|. */
void dcmf_agwiq_refuse_listed(struct check *c, json_t *t,
                              const char *const *names, const char *prefix,
                              const char *reason);
/* Copies a string member into |out| (capacity |cap|) after |check|; 1 if
 * a valid value was stored, 0 if absent, -1 if refused. */
int dcmf_agwiq_string_member(struct check *c, json_t *obj, const char *name,
                             const char *prefix, int (*check)(const char *),
                             const char *reason, char *out, size_t cap);
/* 0 for an absolute http(s) URI. */
int dcmf_agwiq_uri_check(const char *s);
/* The certificate elements ("dtls", or "tls" when out->tcp). */
void dcmf_agwiq_parse_dtls(struct check *c, json_t *d, const char *prefix,
                           struct dcmf_agwiq *out);

/* The access termination |t|'s "dtls" (required: |missing| is the
 * reason when absent), "ice" (optional) and "notifyUri" (optional), as
 * every DTLS path has them. */
void dcmf_agwiq_parse_dtls_access(struct check *c, json_t *t,
                                  const char *prefix, const char *missing,
                                  struct dcmf_agwiq *out);

/* The "ice" member (remote credentials). */
void dcmf_agwiq_parse_ice(struct check *c, json_t *ice, const char *prefix,
                          struct dcmf_agwiq *out);

/* ---- agwiq_dc.c ---- */

/* The a=dcmap members of a "dataChannel" |d| (streamId and label into
 * |out|): subprotocol must be |subprotocol|, ordered true if given,
 * maxRetr and maxTime refused (a reliable channel), each reason naming
 * |clause|. */
void dcmf_agwiq_parse_dcmap(struct check *c, json_t *d, const char *prefix,
                            const char *subprotocol, const char *clause,
                            struct dcmf_agwiq *out);

/* 0 for an MSRP path (RFC 4975 §9: URIs separated by single spaces),
 * each URI as the relay engine parses it (msrp.h). */
int dcmf_agwiq_msrp_path_check(const char *s);

/* ---- agwiq_tcp.c ---- */

/* What one termination's "tcp" member said (-1: not given). */
struct tcp_member {
  int setup, handling;
  long timeout;
};
/* Reads the "tcp" member of termination |t| (|access|: merge refused). */
void dcmf_agwiq_parse_tcp(struct check *c, json_t *t, const char *prefix,
                          int access, struct tcp_member *out);

/* The TCP transport named |s| on that side, or -1. */
int dcmf_agwiq_tcp_transport(const char *s, int access);
/* 1 for the TCP transports. */
int dcmf_agwiq_tcp_transport_kind(int transport);
/* Reads the TCP path's members of both terminations (transports read). */
void dcmf_agwiq_tcp_parse(struct check *c, json_t *terms[2], char prefix[2][48],
                          struct dcmf_agwiq *out);
/* The PATCH rules of a TCP context (agwiq.h). */
void dcmf_agwiq_tcp_patch_check(struct check *c, const struct dcmf_agwiq *prev,
                                struct dcmf_agwiq *next,
                                struct dcmf_agwiq_change *ch);

/* ---- agwiq_t38.c ---- */

/* DCMF_AGWIQ_UDP_DTLS for "UDP/DTLS" on the access side, else -1. */
int dcmf_agwiq_t38_transport(const char *s, int access);
/* A reason naming the Iq transport when |s| is an SDP proto of T.38
 * ("UDP/TLS/UDPTL", "UDPTL"), else NULL. */
const char *dcmf_agwiq_t38_hint(const char *s);
/* Reads the T.38 members of both terminations (transports read: access
 * UDP/DTLS). */
void dcmf_agwiq_t38_parse(struct check *c, json_t *terms[2],
                          char prefix[2][48], struct dcmf_agwiq *out);

/* ---- agwiq_dc.c ---- */

/* Reads the MSRP-over-DC members of both terminations (transports read:
 * access UDP/DTLS/SCTP). */
void dcmf_agwiq_dc_parse(struct check *c, json_t *terms[2],
                         char prefix[2][48], struct dcmf_agwiq *out);
/* The PATCH rules of such a context (agwiq.h). */
void dcmf_agwiq_dc_patch_check(struct check *c, const struct dcmf_agwiq *prev,
                               struct dcmf_agwiq *next,
                               struct dcmf_agwiq_change *ch);

/* ---- agwiq_t140.c ---- */

/* 1 when the access termination |access| (transport UDP/DTLS/SCTP) is a
 * T.140 channel: its dataChannel's subprotocol is "t140" and the core
 * (|core_transport|, an enum dcmf_agwiq_transport) is not TCP/MSRP, or
 * it names neither "t140" nor "msrp" and the core is RTP. */
int dcmf_agwiq_t140_wanted(json_t *access, int core_transport);
/* Reads the T.140 members of both terminations (transports read: access
 * UDP/DTLS/SCTP); the core's RTCP members are agwiq.c's. */
void dcmf_agwiq_t140_parse(struct check *c, json_t *terms[2],
                           char prefix[2][48], struct dcmf_agwiq *out);
/* The PATCH rules of such a context beside the DTLS and ICE ones. */
void dcmf_agwiq_t140_patch_check(struct check *c,
                                 const struct dcmf_agwiq *prev,
                                 struct dcmf_agwiq *next);

#endif
