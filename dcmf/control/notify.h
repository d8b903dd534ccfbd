/*
 * notify.h - delivers event notifications to the controller's
 * eventNotifyUri: one POST of a JSON body per event, on the control loop,
 * through the same HTTP client as HTTP-proxy mode's upstreams
 * (dcmf/net/upstream.h). So the URI may be http:// (h2c prior
 * knowledge, falling back to HTTP/1.1 for good when the receiver answers
 * in HTTP/1) or https:// (h2 or HTTP/1.1 by ALPN, the certificate
 * verified against the upstream CA bundle). Delivery is best effort and
 * never blocks media: failures are logged and counted, a bounded number
 * are in flight at once, each has a deadline, and none is sent twice.
 */
#ifndef DCMF_NOTIFY_H
#define DCMF_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "log.h"
#include "upstream.h"

/* At most this many deliveries are in flight; more are dropped. */
#define DCMF_NOTIFY_MAX_IN_FLIGHT 64
/* A delivery not answered with a response head in this time fails. */
#define DCMF_NOTIFY_TIMEOUT_MS 5000

struct dcmf_notify_counters {
  uint64_t sent;    /* answered with a 2xx status */
  uint64_t failed;  /* refused URI, connect/TLS failure, non-2xx, timeout */
  uint64_t dropped; /* over the in-flight bound, shutting down, or memory */
};

struct dcmf_notify;

/*
 * Creates a notifier on |loop| with its own connection pool. |tls| gives
 * the CA bundle and client certificate for https:// receivers (its
 * timeouts and connection limit are not used: the notifier has its own).
 * |log| is borrowed for the notifier's life. Returns 0, DCMF_ERR_NOMEM,
 * or DCMF_ERR_INVALID with |err| naming a certificate file that cannot
 * be used.
 */
int dcmf_notify_new(struct dcmf_notify **n, uv_loop_t *loop,
                    const struct dcmf_upstream_settings *tls,
                    const struct dcmf_log *log, char *err, size_t errlen);

/*
 * POSTs |json| (copied) to |uri|, an absolute http:// or https:// URI.
 * Returns at once; the outcome lands in the counters (and a warning in
 * the log when it is not a 2xx).
 */
void dcmf_notify_post(struct dcmf_notify *n, const char *uri, const char *json);

/*
 * The control loop is stopping: deliveries in flight go on to their end,
 * but connections are closed as soon as they are idle, so that they do
 * not keep the loop running.
 */
void dcmf_notify_stop(struct dcmf_notify *n);

/* Aborts deliveries in flight (counted as failed) and frees the notifier
 * once its handles are closed (the loop must run). */
void dcmf_notify_del(struct dcmf_notify *n);

const struct dcmf_notify_counters *
dcmf_notify_counters(const struct dcmf_notify *n);

#endif
