/*
 * wchild.h - the media worker process: what `dcmfd` runs when the
 * control process starts it again as a worker (layer "control", beside
 * the daemon's main; see wpool.h for the control side).
 *
 * A worker process owns one media worker (worker.h) with its own usrsctp
 * stack and the services built from the same configuration. Its main
 * thread runs a small loop that bridges the link to the control process
 * (wlink.h) and the worker: the hello gives it its index and the DTLS
 * identity, MEDIA frames become dcmf_worker_post calls with the
 * descriptors that came beside them, and the worker's events go back as
 * EVENT frames. A STATUS frame with the worker's counters and heartbeat
 * goes every DCMF_WCHILD_STATUS_MS.
 *
 * It ends when the control process closes the link (a shutdown, or the
 * control process died: PR_SET_PDEATHSIG ends it then even if the link
 * is somehow kept open). It ignores SIGINT and SIGTERM, which a terminal
 * or `pkill dcmfd` also sends to it: the control process decides when
 * sessions end.
 */
#ifndef DCMF_WCHILD_H
#define DCMF_WCHILD_H

#include "config.h"

/* The first argument that makes dcmfd a worker process; the link is
 * descriptor 3. */
#define DCMF_WCHILD_ARG "--internal-media-worker"
#define DCMF_WCHILD_FD 3
/* How often the worker publishes its status. */
#define DCMF_WCHILD_STATUS_MS 100

/* Runs the worker process to its end. Returns the exit status: 0 after
 * an orderly end, 2 for a configuration the worker refused (its reason
 * went to the control process in the READY frame), 1 otherwise. */
int dcmf_wchild_main(const struct dcmf_config *cfg, int fd);

#endif
