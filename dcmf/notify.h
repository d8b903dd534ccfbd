/*
 * notify.h - delivers event notifications to the controller's
 * eventNotifyUri: one HTTP/1.1 POST of a JSON body per event, on the
 * control loop. Delivery is best effort and never blocks media: failures
 * are logged and counted, a bounded number are in flight at once, and
 * each has a deadline.
 */
#ifndef DCMF_NOTIFY_H
#define DCMF_NOTIFY_H

#include <stdint.h>

#include <uv.h>

#include "log.h"

struct dcmf_notify_counters {
  uint64_t sent, failed, dropped;
};

struct dcmf_notify;

/* Creates a notifier on |loop|. Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_notify_new(struct dcmf_notify **n, uv_loop_t *loop,
                    const struct dcmf_log *log);

/*
 * POSTs |json| (copied) to |uri|, an absolute http:// URI (https is not
 * supported yet and counts as failed). Returns at once.
 */
void dcmf_notify_post(struct dcmf_notify *n, const char *uri,
                      const char *json);

/* Aborts deliveries in flight; frees the notifier once their handles are
 * closed (the loop must run). */
void dcmf_notify_del(struct dcmf_notify *n);

const struct dcmf_notify_counters *
dcmf_notify_counters(const struct dcmf_notify *n);

/*
 * Splits an http:// URI into host (brackets removed), port (default 80)
 * and path with query (default "/"). Pure; exposed for tests. Returns 0
 * or DCMF_ERR_INVALID.
 */
int dcmf_notify_parse_uri(const char *uri, char *host, size_t host_cap,
                          uint16_t *port, char *path, size_t path_cap);

#endif
