/*
 * wlink.h - one end of the link between dcmfd's control process and a
 * media worker process (layer "media"): a connected AF_UNIX stream
 * socket carrying the frames of wire.h, with descriptors passed as
 * SCM_RIGHTS beside them. Glue: it owns the socket and a uv_poll on the
 * owner's loop; one thread uses it.
 *
 * Sending never blocks: frames wait in a queue until the socket takes
 * them. Frames that must not be lost (the controller's messages: a lost
 * one would leave a port bound) are always queued; others (events,
 * status) may be refused past |limit| queued frames, which the caller
 * counts. A frame's descriptors go with its first bytes, at most
 * SCM_MAX_FD (253) per sendmsg, so a frame with more is sent in pieces
 * of one byte each until the last group (wire.h's reader relies on
 * this order). The link closes its copies once they are sent.
 *
 * The far end closing, a socket error or a frame the reader refuses ends
 * the link: |on_close| runs once and nothing is read or sent after it.
 */
#ifndef DCMF_WLINK_H
#define DCMF_WLINK_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "wire.h"

struct dcmf_wlink_settings {
  uv_loop_t *loop;
  int fd;       /* the socket; the link owns it from dcmf_wlink_new on */
  size_t limit; /* refusable frames queued at most; 0: no limit */
  int unref;    /* the link does not keep |loop| running */
  /* A complete frame. The callee may take descriptors out of f->fds
   * (setting entries to -1); those left are closed after the call. It
   * may call dcmf_wlink_close but must not free the link. */
  void (*on_frame)(void *user, const struct dcmf_wire_frame *f);
  /* The link ended: |err| is 0 for an orderly close by the far end, or
   * a negative DCMF_ERR_* (SYSTEM: a socket error; MALFORMED: a frame
   * that cannot be trusted). Not called after dcmf_wlink_close. */
  void (*on_close)(void *user, int err);
  void *user;
};

struct dcmf_wlink;

/* Starts reading. Returns 0, DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM (the fd
 * is closed on failure). */
int dcmf_wlink_new(struct dcmf_wlink **link,
                   const struct dcmf_wlink_settings *settings);

/*
 * Queues the frame in |frame| (header included, as the encoders of
 * wire.h append it) with its |n_fds| descriptors, which the link owns
 * from now on whatever the result. |must|: never refused. Returns 0,
 * DCMF_ERR_EXHAUSTED (refused: over the limit), DCMF_ERR_SYSTEM (the
 * link has ended) or DCMF_ERR_NOMEM.
 */
int dcmf_wlink_send(struct dcmf_wlink *link, const struct dcmf_buf *frame,
                    const int *fds, size_t n_fds, int must);

/* Frames queued and not yet fully sent. */
size_t dcmf_wlink_queued(const struct dcmf_wlink *link);

/*
 * Tries to send everything queued within |timeout_ms|, blocking (for
 * shutdown, where the loop no longer runs). Returns 0 once the queue is
 * empty, DCMF_ERR_EXHAUSTED (time is up) or DCMF_ERR_SYSTEM (the link
 * has ended).
 */
int dcmf_wlink_flush_blocking(struct dcmf_wlink *link, int timeout_ms);

/* Ends the link: closes the socket (the far end reads end-of-file) and
 * every queued descriptor. Frees it once its handle has closed on the
 * loop. NULL is allowed. */
void dcmf_wlink_close(struct dcmf_wlink *link);

#endif
