/*
 * context.h - the registry of Nmf_MRM media contexts.
 *
 * The registry owns each context's MediaContext document and the
 * MF-assigned values of its media (UDP port, ICE credentials, tls-id,
 * DTLS role). It asks the caller for ports and random bytes through a
 * callback table, so it does no I/O itself and runs in unit tests with a
 * fake port pool. One owner thread (the control loop) uses it.
 */
#ifndef DCMF_CONTEXT_H
#define DCMF_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hashmap.h"
#include "problem.h"

struct dcmf_context;
struct dcmf_media;

/* What happened to a DC media, for the media plane. */
enum dcmf_media_change {
  DCMF_MEDIA_ADDED,
  DCMF_MEDIA_UPDATED, /* remote values may have changed */
  DCMF_MEDIA_REMOVED,
};

/* What the registry needs from its owner. */
struct dcmf_resources {
  /* Reserves one media UDP port; 0, DCMF_ERR_EXHAUSTED or
   * DCMF_ERR_SYSTEM. */
  int (*port_alloc)(void *user, uint16_t *port);
  /* Releases a port |port_alloc| returned. */
  void (*port_release)(void *user, uint16_t port);
  /* Fills |buf| with |len| cryptographically random bytes. */
  void (*random)(void *user, uint8_t *buf, size_t len);
  /* Called after a create, patch or delete took effect, once per DC
   * media, with the MediaInfo as now stored (NULL for REMOVED). May be
   * NULL. */
  void (*media_changed)(void *user, const struct dcmf_context *ctx,
                        const struct dcmf_media *m, json_t *media,
                        enum dcmf_media_change change);
  void *user;
};

struct dcmf_registry_settings {
  const char *advertise_addr; /* IPv4 or IPv6 text for localMbEndpoint */
  const char *local_fingerprint; /* canonical "SHA-256 XX:..." */
  uint16_t sctp_port;
  uint32_t max_contexts;
};

/* A local MDC2 UDP port of UDP-proxy mode: one per application stream. */
struct dcmf_mdc2_port {
  uint16_t sid;
  uint16_t port;
  unsigned char fresh; /* allocated by the change being applied */
};

/* MF-side state of one DC media, matched across PATCHes by the pair
 * (terminationId, mediaId). */
struct dcmf_media {
  char *termination_id; /* owned */
  char *media_id;       /* owned */
  uint16_t port;
  char ufrag[9];
  char pwd[25];
  char tls_id[33];
  char remote_tls_id[256]; /* last seen remoteDcEndpoint.tlsId, or "" */
  const char *local_setup; /* "ACTIVE" or "PASSIVE" (static) */
  struct dcmf_mdc2_port *mdc2; /* owned; UDP-proxy mode only */
  size_t n_mdc2;
};

struct dcmf_context {
  char id[37]; /* UUID text */
  json_t *doc; /* the MediaContext as served by GET; owned */
  /* Changes with every change of |doc| (create, patch, event) and is
   * never reused by the registry: the strong entity-tag of |doc|. */
  uint64_t version;
  struct dcmf_media *medias;
  size_t n_medias;
  struct dcmf_hashmap_entry hash_entry; /* registry internals */
  struct dcmf_context *prev, *next;
};

struct dcmf_registry;

/*
 * Creates an empty registry. |settings| strings are copied; |res| is
 * copied. Returns 0 or DCMF_ERR_NOMEM.
 */
int dcmf_registry_new(struct dcmf_registry **reg,
                      const struct dcmf_registry_settings *settings,
                      const struct dcmf_resources *res);

/* Releases every context (and so every port) and frees the registry. */
void dcmf_registry_del(struct dcmf_registry *reg);

/*
 * Creates a context from the request document |request| (borrowed; not
 * modified). The document is validated (dcmf_mediactx_validate), a port
 * and MF values are assigned to every DC media, and the stored document
 * carries contextId and the MF's local values. On success *|out| points
 * to the context, owned by the registry until deleted.
 *
 * Returns 0 or an HTTP status with |p| filled: 400 (validation), 503
 * (ports or the context limit exhausted), 500 (system or memory failure).
 */
int dcmf_registry_create(struct dcmf_registry *reg, json_t *request,
                         struct dcmf_context **out, struct dcmf_problem *p);

/*
 * Applies the RFC 6902 |patch| to |ctx| atomically: the patched document
 * is validated; MF-set members may be omitted but not changed; media
 * that appear get ports and MF values, media that disappear release
 * theirs; a changed remote tlsId gets a fresh local tlsId (new
 * association, RFC 8842); a changed securitySetup is read as the peer's
 * new role. On failure nothing changes.
 *
 * Returns 0, or an HTTP status with |p| filled: 400 (malformed patch or
 * invalid result), 403 (cause MODIFICATION_NOT_ALLOWED: the patch
 * changes a member the MF owns, each one named in |p|), 409 (a path
 * names nothing, or a test failed), 503, 500.
 */
int dcmf_registry_patch(struct dcmf_registry *reg, struct dcmf_context *ctx,
                        json_t *patch, struct dcmf_problem *p);

/* Removes |ctx|, releasing its ports; |ctx| is invalid afterwards. */
void dcmf_registry_delete(struct dcmf_registry *reg, struct dcmf_context *ctx);

/* Returns the context with id |id|, or NULL. */
struct dcmf_context *dcmf_registry_find(struct dcmf_registry *reg,
                                        const char *id);

/* Returns the oldest context (then follow ->next), or NULL. */
struct dcmf_context *dcmf_registry_first(struct dcmf_registry *reg);

/*
 * Records |event| (a JSON object; reference taken) in the context's
 * "events" member, keeping the latest |keep| of them; the context's
 * version changes. Returns 0 or DCMF_ERR_NOMEM.
 */
int dcmf_registry_add_event(struct dcmf_registry *reg,
                            struct dcmf_context *ctx, json_t *event,
                            size_t keep);

/* Returns the number of contexts held. */
size_t dcmf_registry_count(const struct dcmf_registry *reg);

#endif
