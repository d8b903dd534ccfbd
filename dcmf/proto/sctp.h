/*
 * sctp.h - the one module that owns usrsctp (RFC 8261 SCTP over DTLS).
 *
 * usrsctp is a single stack per process. It is started with
 * usrsctp_init_nothreads so that none of its threads ever calls us: the
 * owner loop ticks its timers (dcmf_sctp_stack_tick) and feeds packets.
 * Each association is an AF_CONN socket whose "address" is the
 * association object itself, so output finds its way back without any
 * table of ours.
 *
 * Messages received inside usrsctp are queued and handed to the caller
 * only after usrsctp has returned (dcmf_sctp_input, dcmf_sctp_drain,
 * dcmf_sctp_handle_tick), so callbacks may call dcmf_sctp_send and friends
 * freely. Callbacks must not delete the association. When there is no
 * memory to queue something received (a message, a stream reset, a state
 * change), the association is aborted and reported DOWN at the next
 * delivery rather than handing the channels a stream with a hole in it.
 *
 * After a stack tick, only the associations that asked for it through
 * |need_tick| need dcmf_sctp_handle_tick: an idle association costs the
 * owner nothing per tick.
 *
 * With |bundle|, the small messages sent during one loop turn share
 * packets: the newest is held here until the next message (which sends
 * it to usrsctp's queue, Nagle on) or until dcmf_sctp_flush at the end
 * of the turn (Nagle off: everything queued leaves, bundled). Nothing
 * waits past the turn, and order is kept (docs/media-plane.md).
 */
#ifndef DCMF_SCTP_H
#define DCMF_SCTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct socket; /* usrsctp's */

/* Starts the process-wide stack. Call once per process, from the thread
 * that will own every association. Returns 0. */
int dcmf_sctp_stack_init(void);

/* Advances usrsctp's timers by |elapsed_ms|. Call about every 10 ms. */
void dcmf_sctp_stack_tick(uint32_t elapsed_ms);

/* Stops the stack once every association is deleted. Returns 0 or
 * DCMF_ERR_INVALID while associations remain. */
int dcmf_sctp_stack_finish(void);

enum dcmf_sctp_state {
  DCMF_SCTP_UP,
  DCMF_SCTP_DOWN, /* lost, shut down, could not start, or given up */
};

struct dcmf_sctp_callbacks {
  /* One SCTP packet for the DTLS layer; |data| is valid for the call. */
  void (*send_packet)(void *user, const uint8_t *data, size_t len);
  /* One complete message (reassembled up to max_message_size). */
  void (*message)(void *user, uint16_t sid, uint32_t ppid,
                  const uint8_t *data, size_t len);
  /* The peer reset its outgoing stream |sid| (it closes the channel). */
  void (*stream_reset)(void *user, uint16_t sid);
  void (*state_changed)(void *user, enum dcmf_sctp_state state);
  /* Room in the send buffer again after dcmf_sctp_send said EXHAUSTED
   * (or kept a rest). May also come when there is still no room: the
   * caller then gets EXHAUSTED again and waits for the next one. */
  void (*writable)(void *user);
  /* The association needs dcmf_sctp_handle_tick after the next stack tick:
   * usrsctp queued something outside dcmf_sctp_input (from its timers, or
   * an association given up inside dcmf_sctp_send), or a sender waits for
   * room. Called once per need: dcmf_sctp_handle_tick calls it again when
   * work remains after it ran. Delivers nothing itself. NULL: the owner
   * calls dcmf_sctp_handle_tick after every stack tick instead. */
  void (*need_tick)(void *user);
  /* With |bundle|: a message is held for the end of the loop turn; call
   * dcmf_sctp_flush then. Called once per flush owed. Required with
   * |bundle| (without it the setting is ignored). */
  void (*output_pending)(void *user);
};

struct dcmf_sctp_settings {
  uint16_t local_port;  /* our a=sctp-port */
  uint16_t remote_port; /* theirs */
  /* Inbound and outbound streams the INIT asks for (1-65535). usrsctp
   * sizes the association's stream tables from it before the peer
   * answers (tens of bytes per stream each way), and the association
   * carries min(ours, the peer's) streams each way from then on: RFC
   * 6525's Add Streams needs the peer's consent, which WebRTC stacks
   * refuse, so dcmf does not ask. */
  uint16_t max_streams;
  size_t max_message_size; /* larger inbound messages are dropped */
  uint32_t send_buffer;    /* bytes usrsctp may queue for sending */
  /* Bundle the messages of a loop turn: several DATA chunks per SCTP
   * packet (dcmf_sctp_flush). 0: each send leaves at once (no Nagle),
   * one packet per small message. */
  int bundle;
  /* How messages reach usrsctp, with usrsctp_sendv's contract (bytes
   * taken, or -1 and errno). NULL means usrsctp_sendv itself; tests pass
   * a wrapper that takes less, to play a full send buffer. */
  ssize_t (*sendv)(struct socket *so, const void *data, size_t len,
                   struct sockaddr *to, int addrcnt, void *info,
                   socklen_t infolen, unsigned int infotype, int flags);
};

/* Per-message reliability (RFC 8831 6.1). */
struct dcmf_sctp_reliability {
  int unordered;
  int policy;     /* 0 reliable, 1 max retransmissions, 2 max lifetime */
  uint32_t value; /* retransmissions or milliseconds */
};

struct dcmf_sctp_counters {
  uint64_t messages_in, messages_out, bytes_in, bytes_out;
  uint64_t oversize_dropped;
  /* Bundling: messages held for the end of a loop turn; held ones
   * usrsctp then refused, and held ones dropped because the association
   * ended first (the caller had been told 0 for both). */
  uint64_t messages_held, held_refused, held_dropped;
};

struct dcmf_sctp;

/*
 * Creates an association (nothing is sent yet). Returns 0,
 * DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM (usrsctp refused an option).
 */
int dcmf_sctp_new(struct dcmf_sctp **sctp,
                  const struct dcmf_sctp_settings *settings,
                  const struct dcmf_sctp_callbacks *cbs, void *user);

/* Aborts the association (ABORT chunk, no lingering) and frees it. */
void dcmf_sctp_del(struct dcmf_sctp *sctp);

/* Changes the streams the INIT will ask for (settings.max_streams), for
 * a description that declared more streams before the association
 * started. Call before dcmf_sctp_connect: after it the count is fixed.
 * Returns 0 or DCMF_ERR_SYSTEM (usrsctp refused; the old count stays). */
int dcmf_sctp_set_init_streams(struct dcmf_sctp *sctp, uint16_t streams);

/* The streams the association carries each way, once it is up: |*in|
 * the peer may send on, |*out| we may send on (ids below the count).
 * Returns 0, or DCMF_ERR_INVALID when it is not up or usrsctp cannot
 * tell (nothing is set then). */
int dcmf_sctp_streams(struct dcmf_sctp *sctp, uint16_t *in, uint16_t *out);

/* Starts the association (both WebRTC peers connect; INITs may cross).
 * Call once DTLS is connected. Returns 0 or DCMF_ERR_SYSTEM. */
int dcmf_sctp_connect(struct dcmf_sctp *sctp);

/* Feeds one decrypted SCTP packet, then delivers what it produced. */
void dcmf_sctp_input(struct dcmf_sctp *sctp, const uint8_t *data, size_t len);

/* Delivers messages and events queued during timer processing. */
void dcmf_sctp_drain(struct dcmf_sctp *sctp);

/* Call after a dcmf_sctp_stack_tick for every association that asked
 * through |need_tick| since its last call (or for every association, when
 * |need_tick| is NULL): delivers what the timers produced (as
 * dcmf_sctp_drain), and when a sender has waited for room for 10 calls
 * without usrsctp's send callback (which only SACKs trigger), retries the
 * kept rest and calls |writable| itself. Calls |need_tick| again if work
 * remains. */
void dcmf_sctp_handle_tick(struct dcmf_sctp *sctp);

/*
 * Sends one whole message on stream |sid| with |ppid| (|data| is borrowed
 * for the call). usrsctp may take only the start of it; the rest is kept
 * here and goes out, before any other message, as room comes back.
 * The call never waits and never loops without progress: it makes at most
 * one usrsctp call for the message and one for a held one, after handing
 * over what it can of a kept rest. It delivers no callbacks. Returns:
 *   0                    the message is queued (maybe partly kept here,
 *                        or, with |bundle|, held for dcmf_sctp_flush)
 *   DCMF_ERR_EXHAUSTED   no room, nothing was taken: offer the message again
 *                        after the |writable| callback (which comes from
 *                        usrsctp's send callback or, failing that, from
 *                        dcmf_sctp_handle_tick within about 10 ticks)
 *   DCMF_ERR_INVALID     the association is not up
 *   DCMF_ERR_SYSTEM      usrsctp refused this message (nothing of it was
 *                        queued; the association goes on), or the kept rest
 *                        of an earlier message failed: then the association
 *                        is aborted and reported DOWN at the next drain
 *   DCMF_ERR_NOMEM       no memory to keep a rest: the association is
 *                        aborted as above
 */
int dcmf_sctp_send(struct dcmf_sctp *sctp, uint16_t sid, uint32_t ppid,
                   const uint8_t *data, size_t len,
                   const struct dcmf_sctp_reliability *rel);

/*
 * With |bundle|: hands usrsctp the message held back and lets it send
 * everything queued, bundled into as few packets as fit (call at the end
 * of the loop turn, when |output_pending| asked). Delivers no callbacks.
 * A message usrsctp has no room for stays held and goes out, before any
 * newer one, when room comes back (|writable| follows it). Nothing to do
 * without |bundle|.
 */
void dcmf_sctp_flush(struct dcmf_sctp *sctp);

/* Resets our outgoing stream |sid| (RFC 6525), closing a data channel.
 * The reset always follows the stream's last message: when that message
 * is held (|bundle|) and usrsctp has no room for it, the reset is asked
 * for once the message is handed over. Returns 0 or DCMF_ERR_SYSTEM. */
int dcmf_sctp_reset_stream(struct dcmf_sctp *sctp, uint16_t sid);

const struct dcmf_sctp_counters *dcmf_sctp_counters(const struct dcmf_sctp *s);

#endif
