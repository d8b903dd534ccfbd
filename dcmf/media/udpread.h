/*
 * udpread.h - reads a UDP socket with one recvmmsg per readiness event.
 *
 * libuv's UDP reader reads until the socket says EAGAIN, so every
 * readiness event costs one more, empty, recvmsg; at the call mix (one
 * datagram per socket per wake-up) that is half the reads. This reader
 * watches the socket with a uv_poll_t (level-triggered) and reads at
 * most DCMF_UDPREAD_BATCH datagrams per event with one
 * recvmmsg(MSG_DONTWAIT): when it filled them all, the loop reports the
 * socket again on its next turn, so no socket starves the others.
 *
 * The socket stays owned by the caller's uv_udp_t, which sends with
 * uv_udp_try_send only: libuv (1.44) starts that handle's own watcher
 * only for uv_udp_recv_start and queued uv_udp_send, neither of which a
 * socket read here may use, since libuv allows one watcher per fd.
 *
 * One owner thread (the loop's). The reader borrows |scratch| for its
 * life, cut into DCMF_UDPREAD_BATCH equal slots; a datagram longer than
 * a slot arrives with |truncated| set and its first slot-length bytes.
 */
#ifndef DCMF_UDPREAD_H
#define DCMF_UDPREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

/* Datagrams read per readiness event at most. */
#define DCMF_UDPREAD_BATCH 8

/* One datagram of |len| bytes from |from|; |data| is valid during the
 * call only. The callback may stop (close) the reader: the datagrams
 * left in the batch are then dropped. */
typedef void (*dcmf_udpread_cb)(void *user, uint8_t *data, size_t len,
                                const struct sockaddr *from, int truncated);

/* What the readers of one loop read, for the loop's pacing (pace.h):
 * datagrams, and reads that filled a whole batch (more is waiting). */
struct dcmf_udpread_tally {
  uint64_t datagrams;
  uint64_t full;
};

struct dcmf_udpread {
  uv_poll_t poll; /* poll.data is the reader */
  int fd;
  uint8_t *scratch;
  size_t slot_len;
  dcmf_udpread_cb cb;
  void *user;
  /* Receive calls that returned datagrams, and the datagrams they
   * returned (datagrams / reads: the batching achieved). */
  uint64_t reads, datagrams;
  /* The owner's count of datagrams read, shared by the readers of a
   * loop (the worker's loop pacing reads it), or NULL. */
  struct dcmf_udpread_tally *tally;
};

/*
 * Starts reading |fd| (non-blocking, still owned by the caller) on
 * |loop|, |scratch_len| bytes of |scratch| cut into slots. Returns 0,
 * or DCMF_ERR_SYSTEM when libuv refuses the fd (already watched, or
 * no socket); on error the poll handle was not initialised and needs no
 * close.
 */
int dcmf_udpread_start(struct dcmf_udpread *r, uv_loop_t *loop, int fd,
                       uint8_t *scratch, size_t scratch_len, dcmf_udpread_cb cb,
                       void *user);

/*
 * Reads at most DCMF_UDPREAD_BATCH waiting datagrams now, as a readiness
 * event does. Returns how many were delivered (0: none waited), or
 * DCMF_ERR_SYSTEM on a socket error (counted by nobody; the next event
 * tries again).
 */
int dcmf_udpread_once(struct dcmf_udpread *r);

/* Stops reading and closes the poll handle (not the socket); |close_cb|
 * runs with the poll handle once closed (its data is still the reader). */
void dcmf_udpread_close(struct dcmf_udpread *r, uv_close_cb close_cb);

#endif
