/*
 * agw.h - the IMS-AGW shim: transparent UDP relays between an access-side
 * port (toward the phone) and a core-side port (toward the DCMF, e2DCe,
 * or toward the other phone's shim leg, e2e), controlled by the JSON API
 * under /agw/v1/contexts. Everything above UDP passes byte-exact; the
 * shim holds no keys. And e2ae contexts (docs/e2ae.md): DTLS-SRTP
 * terminated toward a WebRTC IMS client, plain RTP/RTCP toward the core,
 * run as a media session of the SRTP association kind with its core leg
 * (media.h) on the context's worker; this side keeps its events and its
 * latest counter snapshot, and gives its ports back once the worker
 * reported the session RELEASED.
 *
 * The relays run on the media workers (relayhost.h), driven only by
 * messages (media.h): this side posts add, update and remove, and keeps
 * a copy of what the workers report back. That copy is as fresh as the
 * reports: counters at most DCMF_RELAY_PUSH_MS (100 ms) behind while a
 * relay carries traffic, the latched address at once, and the final
 * counters when a relay is released. Control thread only.
 */
#ifndef DCMF_AGW_H
#define DCMF_AGW_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "api.h"
#include "buf.h"
#include "cert.h"
#include "log.h"
#include "media.h"


struct dcmf_agw_settings {
  const char *bind_addr;      /* numeric address relay ports bind to */
  const char *advertise_addr; /* address reported for them */
  const struct dcmf_log *log;
  /* The media workers run the relays: a context's relay goes to worker
   * dcmf_controller_worker_for(context id, n_workers) through
   * |post_relay|, which takes the descriptors of |desc| (media.h). Their
   * relay reports must be handed to dcmf_agw_on_relay_event. */
  size_t n_workers; /* at least 1 */
  void (*post_relay)(void *user, size_t worker, enum dcmf_relay_op op,
                     struct dcmf_relay_desc *desc);
  void *post_user;
  /* Port pool of dcmfd (called on the control thread only): reserve a
   * port and get a descriptor the shim owns, or release it. */
  int (*port_alloc)(void *user, uint16_t *port, int *fd);
  void (*port_release)(void *user, uint16_t port);
  /* Another descriptor of a port the shim holds (for a worker), or -1. */
  int (*port_dup)(void *user, uint16_t port);
  void *port_user;
  /* e2ae media (docs/e2ae.md): the DTLS identity the workers present
   * (its fingerprint is answered in the hash asked for), and the media
   * sessions, sent like DC media: |post_media| takes |desc| and its
   * descriptors (dcmf_wpool_post) and returns 0, or an error when the
   * worker will never see the message (its link is down): an ADD then
   * fails the POST, a REMOVE gives the ports back at once. The workers'
   * events about them must be handed to dcmf_agw_on_media_event. */
  const struct dcmf_cert *cert;
  /* The RSA identity T.38 terminations present (RFC 7345); NULL: none,
   * and a termination that asks for it (dtls.certificate "rsa", T.38's
   * default) is refused (500). With |rsa_pending| set it is still being
   * generated: such a termination is refused with 503 and Retry-After
   * until dcmf_agw_set_rsa_cert gives it. */
  const struct dcmf_cert *rsa_cert;
  int rsa_pending;
  int (*post_media)(void *user, size_t worker, enum dcmf_media_op op,
                    struct dcmf_media_desc *desc);
  /* POSTs |json| to |uri| (the control layer's notification client),
   * called with |post_user|; NULL: events are only kept for GET. */
  void (*notify)(void *user, const char *uri, const char *json);
};

struct dcmf_agw;

/* Creates the shim. Returns 0, DCMF_ERR_INVALID (bind_addr not numeric,
 * no worker) or DCMF_ERR_NOMEM. */
int dcmf_agw_new(struct dcmf_agw **agw,
                 const struct dcmf_agw_settings *settings);

/*
 * Releases every port still held and frees the shim. Call it once the
 * workers have stopped (dcmf_worker_stop closed every relay socket);
 * reports that arrive later must not be handed over any more.
 */
void dcmf_agw_del(struct dcmf_agw *agw);

/*
 * A worker's report of a relay (media.h), on the control thread: keeps
 * the copy of the relay's counters and latched address that GET and
 * /metrics show, and gives the ports of a released relay back to the
 * pool. Reports of relays the shim does not know are ignored.
 */
void dcmf_agw_on_relay_event(struct dcmf_agw *agw,
                             const struct dcmf_relay_event *ev);

/*
 * A worker's event about a media, on the control thread. Returns 1 when
 * it is about an e2ae context of the shim (then it is consumed: a
 * DTLS_FAILURE is kept for GET and POSTed to the context's notifyUri,
 * an RTP_COUNTERS snapshot replaces the previous one, RELEASED gives the
 * ports back), 0 when it is not (it belongs to the controller).
 */
int dcmf_agw_on_media_event(struct dcmf_agw *agw,
                            const struct dcmf_media_event *ev);

/*
 * Worker |worker| ended without being asked: the relays it ran are gone
 * with it. Each AGW context it served is released, its ports back in
 * the pool, and a warning names it; the IMS-AGW controller finds 404 on
 * its next request and creates it again. A deleted context still waiting
 * for the worker's RELEASED gets its ports back too. Returns the number
 * released.
 */
size_t dcmf_agw_worker_failed(struct dcmf_agw *agw, size_t worker);

/*
 * The RSA identity that was pending (|rsa_pending|) is there: |cert|
 * (borrowed for the shim's life), or NULL when its generation failed.
 * The caller has already handed it to the media workers, so an ADD that
 * presents it reaches a worker after the identity.
 */
void dcmf_agw_set_rsa_cert(struct dcmf_agw *agw, const struct dcmf_cert *cert);

/* Answers a control request whose path starts with /agw/v1/. */
void dcmf_agw_handle(struct dcmf_agw *agw, const struct dcmf_api_request *req,
                     struct dcmf_api_response *resp);

/* Appends the shim's metrics (Prometheus text) to |out|. */
void dcmf_agw_metrics(struct dcmf_agw *agw, struct dcmf_buf *out);

#endif
