/*
 * agwapi.h - the AGW shim's control API on /agw/v1/contexts and the
 * table of its contexts (one relay, or one e2ae media, each).
 *
 * Transport-neutral like dcmf/control/api.h: the HTTP/2 server hands over a
 * complete request (already routed here by its /agw/v1/ prefix) and
 * sends back the response this module builds. The relays themselves are
 * reached through a table of operations, so the whole API runs in memory
 * in tests, and in dcmfd drives the relays on the media workers (agw.c).
 *
 *   POST   /agw/v1/contexts        reserve both terminations -> 201
 *                                   (a relay, or e2ae media: agwiq.h)
 *   GET    /agw/v1/contexts        list, with statistics
 *   GET    /agw/v1/contexts/{id}   one context, statistics, latched address
 *   PATCH  /agw/v1/contexts/{id}   JSON Patch (RFC 6902): remotes, latching
 *   DELETE /agw/v1/contexts/{id}   release both terminations -> 204
 *
 * Errors are application/problem+json (RFC 9457, TS 29.500 style).
 * Everything runs on the control thread.
 */
#ifndef DCMF_AGWAPI_H
#define DCMF_AGWAPI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "agwiq.h"
#include "api.h"
#include "log.h"
#include "relay.h"

/* What the glue reserved and drew for the e2ae media of one context: the
 * reply's local members (docs/agw-shim.md). */
struct dcmf_agwapi_e2ae_local {
  uint16_t access_port; /* ICE-lite, DTLS-SRTP and SRTP with rtcp-mux */
  uint16_t rtp_port;    /* core RTP */
  uint16_t rtcp_port;   /* core RTCP; 0 with core rtcp-mux */
  char ufrag[16];       /* ICE-lite credentials (RFC 8839 ice-chars) */
  char pwd[32];
  char fingerprint[8 + 3 * DCMF_FINGERPRINT_MAX_BYTES]; /* "SHA-256 AB:.." */
  /* Our RFC 8842 tls-id (dtls.localTlsId, for a=tls-id toward the WIC):
   * drawn at the POST and again for each new association. */
  char tls_id[40];
  /* MSRP over a data channel, or aware over TLS/TCP: the MF's own MSRP
   * URIs toward the access side (msrps) and the core (docs/e2ae.md). */
  char msrp_dc_uri[128];
  char msrp_tcp_uri[128];
};

/* What the API needs from whoever runs the relays. */
struct dcmf_agwapi_ops {
  /*
   * Creates the relay of context |context_id| with |cfg| (valid,
   * copied), reserving one port per side; fills |ports| (indexed by
   * side) and *|relay| (an opaque handle kept until relay_del). Returns
   * 0, DCMF_ERR_EXHAUSTED (no ports), DCMF_ERR_SYSTEM or DCMF_ERR_NOMEM;
   * on failure nothing is held.
   */
  int (*relay_new)(void *user, const char *context_id,
                   const struct dcmf_relay_config *cfg,
                   uint16_t ports[DCMF_RELAY_SIDES], void **relay);
  /* Gives a relay a new configuration (valid, copied). Returns 0 or
   * DCMF_ERR_NOMEM (the relay keeps its old one). */
  int (*relay_update)(void *user, void *relay,
                      const struct dcmf_relay_config *cfg);
  /* Ends a relay; its ports are released (perhaps a little later). */
  void (*relay_del)(void *user, void *relay);
  /* Reads a recent copy of a relay's counters and its latched address
   * (*|latched| 1 and |peer| filled, or 0). */
  void (*relay_read)(void *user, void *relay, struct dcmf_relay_counters *c,
                     struct sockaddr_storage *peer, int *latched);
  /*
   * e2ae (TS 23.334 6.2.10.5): starts the DTLS-SRTP <-> RTP media of
   * context |context_id| from the validated Iq elements |iq| and the
   * remotes in |cfg|: reserves the access port and the core RTP (and
   * RTCP) ports, draws the ICE credentials and fills |local| (the
   * fingerprint in iq->local_fp_hash) and *|media| (kept until e2ae_del).
   * Returns 0, DCMF_ERR_EXHAUSTED, DCMF_ERR_SYSTEM or DCMF_ERR_NOMEM; on
   * failure nothing is held.
   */
  int (*e2ae_new)(void *user, const char *context_id,
                  const struct dcmf_agwiq *iq,
                  const struct dcmf_relay_config *cfg,
                  struct dcmf_agwapi_e2ae_local *local, void **media);
  /* Applies a valid PATCH (|ch| says what changed, agwiq.h); an ICE
   * restart draws new credentials into |local|, a new association a new
   * tls-id. Returns 0 or
   * DCMF_ERR_NOMEM (nothing changed). */
  int (*e2ae_update)(void *user, void *media, const struct dcmf_agwiq *iq,
                     const struct dcmf_relay_config *cfg,
                     const struct dcmf_agwiq_change *ch,
                     struct dcmf_agwapi_e2ae_local *local);
  /* Ends the media; its ports are released once the worker let go. */
  void (*e2ae_del)(void *user, void *media);
  /* Adds what the media reported to |view| (a GET document: "events",
   * and "rtpStatistics" on the terminations). Returns 0 or
   * DCMF_ERR_NOMEM. */
  int (*e2ae_view)(void *user, void *media, json_t *view);
  /* Fills |buf| with random bytes (context ids). */
  void (*random)(void *user, uint8_t *buf, size_t len);
  void *user;
};

struct dcmf_agwapi_settings {
  const char *advertise_addr; /* numeric; reported as the local address */
  int allow_v4, allow_v6;     /* remote families the relay sockets reach */
  size_t max_contexts;        /* 0: no limit but the port pool */
  const struct dcmf_log *log; /* may be NULL */
};

struct dcmf_agwapi;

/*
 * Creates the API. |settings| and |ops| are copied; advertise_addr must
 * stay valid for the API's life. Returns 0, DCMF_ERR_INVALID (advertise
 * address not numeric, or no family allowed) or DCMF_ERR_NOMEM.
 */
int dcmf_agwapi_new(struct dcmf_agwapi **api,
                    const struct dcmf_agwapi_settings *settings,
                    const struct dcmf_agwapi_ops *ops);

/* Deletes context |id| as a DELETE would (its relay_del runs). Returns
 * 0 or DCMF_ERR_NOT_FOUND. */
int dcmf_agwapi_delete(struct dcmf_agwapi *api, const char *id);

/* Deletes every context (relay_del for each) and frees the API. */
void dcmf_agwapi_del(struct dcmf_agwapi *api);

/*
 * Handles one complete request whose path starts with /agw/v1/ and
 * fills |resp| (zeroed by the caller; freed with dcmf_api_response_free).
 * HEAD is answered as GET. Never fails: internal errors become 500
 * problems.
 */
void dcmf_agwapi_handle(struct dcmf_agwapi *api,
                        const struct dcmf_api_request *req,
                        struct dcmf_api_response *resp);

/* Returns the number of contexts (relays) held. */
size_t dcmf_agwapi_count(const struct dcmf_agwapi *api);

#endif
