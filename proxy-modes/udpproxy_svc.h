/*
 * udpproxy_svc.h - UDP-proxy mode as a session service (service.h;
 * layer: services). A media whose description lists MDC2 legs gets a
 * dcmf_udpproxy (udpproxy.h) with them: the legs follow every change of
 * the description, the channels of proxied streams are served by it
 * (one message, one datagram), and the legs' counters are added to the
 * worker's stats at the tick after they change (the legs report it;
 * host->want_tick) and when the media ends. No per-worker
 * state and no config (register it with config NULL).
 */
#ifndef DCMF_UDPPROXY_SVC_H
#define DCMF_UDPPROXY_SVC_H

#include "service.h"

extern const struct dcmf_service dcmf_udpproxy_service;

#endif
