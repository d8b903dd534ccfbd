/*
 * context_int.h - the context registry's state and the helpers its two
 * files share: context.c (the registry, create, delete, events) and
 * context_patch.c (PATCH: a plan made on a copy, then committed or
 * undone). Other modules see the registry only through context.h.
 */
#ifndef DCMF_CONTEXT_INT_H
#define DCMF_CONTEXT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "context.h"
#include "hashmap.h"
#include "problem.h"

struct dcmf_registry {
  struct dcmf_registry_settings settings;
  char *advertise_addr;
  char *local_fingerprint;
  struct dcmf_resources res;
  struct dcmf_hashmap by_id; /* contexts by id (grows with them) */
  struct dcmf_context *first, *last;
  size_t count;
  uint64_t generation; /* the last version handed to a context */
};

/* Tells the owner (dcmf_resources.media_changed) about |m|. */
void registry_notify(struct dcmf_registry *reg, const struct dcmf_context *ctx,
                     const struct dcmf_media *m, json_t *media,
                     enum dcmf_media_change change);

/* Tells the owner about every DC media of |ctx|: those whose fresh[k] is
 * set (or all, when |patching| is 0) as added, the others as updated. */
void registry_notify_all(struct dcmf_registry *reg, struct dcmf_context *ctx,
                         const unsigned char *fresh, int patching);

/* Frees the identifying strings of |m|. */
void registry_media_free_strings(struct dcmf_media *m);

/* Gives back every MDC2 port of |m| and frees its list. */
void registry_mdc2_release_all(struct dcmf_registry *reg, struct dcmf_media *m);

/* Works out the MDC2 ports |media| needs: a stream keeps its port from
 * |old|, a new stream gets a fresh one (marked fresh). On failure every
 * fresh port is returned and nothing changes. Returns 0 or the error of
 * the port pool, or DCMF_ERR_NOMEM. */
int registry_mdc2_plan(struct dcmf_registry *reg, json_t *media,
                       const struct dcmf_mdc2_port *old, size_t n_old,
                       struct dcmf_mdc2_port **out, size_t *n_out);

/* Gives a media that is new to the context its port and MF values.
 * Returns 0, DCMF_ERR_NOMEM or the port pool's error (nothing held). */
int registry_media_assign(struct dcmf_registry *reg, struct dcmf_media *m,
                          const char *term_id, json_t *media);

/* Writes the MF-assigned members of |m| into the MediaInfo |media|.
 * Returns 0 or non-zero when memory ran out. */
int registry_media_fill_locals(struct dcmf_registry *reg, json_t *media,
                               const struct dcmf_media *m);

/* Draws a fresh local tls-id for |m| (RFC 8842: a new association). */
void registry_new_tls_id(struct dcmf_registry *reg, struct dcmf_media *m);

/* The MF's DTLS role toward a peer whose securitySetup is |peer|
 * (static string). */
const char *registry_mf_setup_for_peer(const char *peer);

/* remoteDcEndpoint.tlsId of the MediaInfo |media|, or NULL. */
const char *registry_remote_tls_id(json_t *media);

/* 1 when the MediaInfo |media| is a DC media. */
int registry_is_dc(json_t *media);

/* Counts the DC media of a validated document. */
size_t registry_count_dc(json_t *doc);

/* Fills |p| for a failure |err| of the port pool or of memory and
 * returns its HTTP status (503 or 500). */
int registry_status_for(int err, struct dcmf_problem *p);

#endif
