/*
 * httpsvc.h - HTTP over data channels as a session service (service.h;
 * layer: services): one httpdc engine per channel, fed with the
 * channel's messages and drained into it under the host's back-pressure
 * contract. The engine's backend is what differs between paths:
 *
 *   - dcmf_bootstrap_service answers from the built-in repository, on
 *     the bootstrap streams (TS 26.114 6.2.10.1: 0, 10, 100, 110) and on
 *     in-band channels whose subprotocol is "http", for medias not in
 *     HTTP-proxy mode. Its registration config is the repository
 *     (const struct dcmf_repo *).
 *   - HTTP-proxy mode (proxy-modes/httpproxy_svc.h) builds on the same
 *     glue with an upstream backend.
 *
 * A media serves at most DCMF_HTTPSVC_INBAND_MAX in-band HTTP channels;
 * further ones are refused (channels negotiated in SDP are not counted:
 * the IMS AS bounds those). Input the engine cannot take yet is kept, in
 * order, up to DCMF_HTTPSVC_STALL_MAX messages; a peer that pipelines
 * more loses the channel. A message that can never be sent (any send
 * error but DCMF_ERR_EXHAUSTED) closes the channel, as an HTTP/1.1
 * server closes the connection. All on the session's thread.
 */
#ifndef DCMF_HTTPSVC_H
#define DCMF_HTTPSVC_H

#include <stddef.h>
#include <stdint.h>

#include "httpdc.h"
#include "service.h"

#define DCMF_HTTPSVC_INBAND_MAX 64
#define DCMF_HTTPSVC_STALL_MAX 8

extern const struct dcmf_service dcmf_bootstrap_service;

/* Makes the backend of the engine of a new channel |flow|: fills |be|
 * and may raise limits in |hs|; |*state| is handed to the drop function
 * after the engine is deleted. |wake| with |wake_user| asks for the
 * channel to be drained later (an asynchronous backend got data).
 * Returns 0 or a negative error (the channel is then not served). */
typedef int (*dcmf_httpsvc_make_fn)(void *user, struct dcmf_svc_host *host,
                                    const struct dcmf_svc_flow *flow,
                                    struct dcmf_httpdc_settings *hs,
                                    struct dcmf_httpdc_backend *be,
                                    void (*wake)(void *wake_user),
                                    void *wake_user, void **state);
typedef void (*dcmf_httpsvc_drop_fn)(void *state);

/* What a service built on this glue tells it at attach. */
struct dcmf_httpsvc_backend_ops {
  dcmf_httpsvc_make_fn make;
  dcmf_httpsvc_drop_fn drop; /* may be NULL */
  void *user;
  uint8_t *tx_scratch; /* the worker's, for one outgoing message */
  size_t tx_scratch_len;
};

struct dcmf_httpsvc;

/* Per-media state for a service built on this glue (its attach hook).
 * Returns 0 or DCMF_ERR_NOMEM. |ops| is copied. */
int dcmf_httpsvc_attach(struct dcmf_httpsvc **m, struct dcmf_svc_host *host,
                        const struct dcmf_httpsvc_backend_ops *ops);

/* The host given at attach. */
struct dcmf_svc_host *dcmf_httpsvc_host(const struct dcmf_httpsvc *m);

/* Returns 1 if |flow| is one HTTP is served on: a data channel
 * (DCMF_ASSOC_SCTP) with subprotocol "http" on a
 * bootstrap stream or an in-band channel, or (|app_streams|) on an
 * application stream (>= 1000). */
int dcmf_httpsvc_wants(const struct dcmf_svc_flow *flow, int app_streams);

/* The hooks, with the signatures of struct dcmf_service. open returns
 * DCMF_ERR_EXHAUSTED past DCMF_HTTPSVC_INBAND_MAX in-band channels,
 * DCMF_ERR_NOMEM, DCMF_ERR_TOO_LARGE (the channel's message size exceeds
 * the scratch buffer) or the make function's error. */
void dcmf_httpsvc_detach(void *media);
int dcmf_httpsvc_open(void *media, const struct dcmf_svc_flow *flow,
                      void **chan);
void dcmf_httpsvc_message(void *media, void *chan,
                          const struct dcmf_svc_flow *flow, int binary,
                          const uint8_t *data, size_t len);
void dcmf_httpsvc_writable(void *media);
void dcmf_httpsvc_closed(void *media, void *chan,
                         const struct dcmf_svc_flow *flow);

#endif
