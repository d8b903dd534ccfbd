/*
 * agwdoc.h - the AGW context document: validation of the JSON the
 * controller sends to /agw/v1/contexts and the JSON the shim answers
 * with. Pure functions on jansson documents: no I/O, no globals.
 *
 * A context is a TS 23.334 Iq-style pair of terminations mapped to JSON
 * (see docs/agw-shim.md):
 *
 *   {"contextId": "<uuid>",                       (assigned by the AGW)
 *    "terminations": [
 *      {"terminationId": "access", "transport": "UDP",
 *       "latching": "first-packet" | "signalled-only",
 *       "remote": {"ipv4Addr" | "ipv6Addr": "...", "port": N}, (optional)
 *       "local":  {"ipv4Addr" | "ipv6Addr": "...", "port": N}}, (AGW's)
 *      {"terminationId": "core", "transport": "UDP",
 *       "remote": {...}, "local": {...}}]}
 *
 * Unknown members are refused rather than ignored: a controller that
 * sends information elements the shim does not know must not silently
 * get a transparent relay. The e2ae Iq members and transports are
 * validated by agwiq.h, which the caller runs first; here they are only
 * let through (the API refuses a valid e2ae context until its media is
 * wired).
 */
#ifndef DCMF_AGWDOC_H
#define DCMF_AGWDOC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "problem.h"
#include "relay.h"

/* Which document dcmf_agwdoc_parse() reads. */
enum dcmf_agwdoc_mode {
  /* A POST body: contextId and local endpoints must be absent. */
  DCMF_AGWDOC_CREATE,
  /* A stored document after a JSON Patch: contextId and local may be
   * present (the caller checks they did not change). */
  DCMF_AGWDOC_PATCHED,
};

/* Address families a remote may use, from the relay bind address. */
struct dcmf_agwdoc_limits {
  int allow_v4;
  int allow_v6;
};

/*
 * Validates |doc| and fills |cfg| (zeroed first). On failure records
 * every problem found as an invalid parameter (a JSON Pointer into the
 * document) in |p|, sets |p| to 400 MANDATORY_IE_INCORRECT and returns
 * DCMF_ERR_INVALID; returns 0 on success with |p| untouched.
 * |terms|, when not NULL, receives for each side the index of its
 * termination in the "terminations" array (valid on success).
 */
int dcmf_agwdoc_parse(json_t *doc, enum dcmf_agwdoc_mode mode,
                      const struct dcmf_agwdoc_limits *limits,
                      struct dcmf_relay_config *cfg, size_t terms[2],
                      struct dcmf_problem *p);

/*
 * Builds the stored document of a context: |id|, then the access and the
 * core termination in that order with transport, latching (access),
 * remote (when configured) and local (|advertise_addr| with |ports|,
 * indexed by side). Returns a new reference, or NULL when out of memory
 * or |advertise_addr| is not a numeric IPv4/IPv6 address.
 */
json_t *dcmf_agwdoc_build(const char *id, const struct dcmf_relay_config *cfg,
                          const char *advertise_addr,
                          const uint16_t ports[DCMF_RELAY_SIDES]);

/*
 * Returns a new document for GET: a deep copy of |stored| (built by
 * dcmf_agwdoc_build) plus, on the access termination, "latched" (when
 * |latched| is not NULL) and a top-level "statistics" object from |c|.
 * NULL when out of memory.
 */
json_t *dcmf_agwdoc_view(json_t *stored, const struct dcmf_relay_counters *c,
                         const struct sockaddr *latched);

/*
 * Returns {"ipv4Addr": "a.b.c.d", "port": N} or {"ipv6Addr": ..., ...}
 * for |sa| (IPv4-mapped IPv6 is shown as IPv4), or NULL when |sa| is not
 * AF_INET/AF_INET6 or out of memory.
 */
json_t *dcmf_agwdoc_addr(const struct sockaddr *sa);

#endif
