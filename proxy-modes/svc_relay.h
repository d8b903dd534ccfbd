/*
 * svc_relay.h - the DC relay (dcMedia.dcRelay) as a session service
 * (service.h; layer: services, in proxy-modes/ with the other modes).
 *
 * The negotiated channels of a relayed media are joined stream by
 * stream to the channels of its twin, the media named by
 * dcmf_media_desc.relay, on the same worker. A message from our phone
 * goes straight to the twin's channel with the same stream id, or waits
 * in the twin's bounded queue (relayq.h) while that channel is not open
 * or its association has no room; a channel closing closes its twin's.
 *
 * Twins are linked, not looked up per message. The service keeps, per
 * worker, the medias that carry a relay; when one is attached or its
 * description changes, its own link is resolved and every media that
 * names it is linked to it; when one is detached (or stops naming), every
 * link to it is cleared at once. Both medias live on the worker's one
 * thread, so a link is never used after its target is gone. A message
 * with no linked twin is dropped and counted (relay_dropped_no_twin).
 *
 * No config and no worker-level input (register with config NULL).
 */
#ifndef DCMF_SVC_RELAY_H
#define DCMF_SVC_RELAY_H

#include "service.h"

extern const struct dcmf_service dcmf_relay_service;

/* Messages held for one side of a relay, at most (then dropped, counted). */
#define DCMF_RELAY_QUEUE_BYTES (4u * 1024 * 1024)

/* A stream whose held messages have not moved for this long is stalled:
 * counted and logged once per episode (RTO-scale waits stay quiet). */
#define DCMF_RELAY_STALL_MS 1000

/* For tests: the media state's current twin (another media state of the
 * same service), or NULL. */
void *dcmf_relay_twin(void *media);

#endif
