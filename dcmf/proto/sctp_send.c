/*
 * sctp_send.c - the send path of the SCTP adapter (sctp.h): whole
 * messages handed to usrsctp, the rest of one it took only in part,
 * small messages held for bundling, and stream resets that wait for a
 * stream's last message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "sctp_int.h"

static void set_nodelay(struct dcmf_sctp *s, int on);
static void reset_if_due(struct dcmf_sctp *s);

/* usrsctp's answer to one send: bytes taken (0 included), or no room
 * (-1 with EWOULDBLOCK or EAGAIN), or another failure. */
static int no_room(ssize_t n) {
  return n < 0 && (errno == EWOULDBLOCK || errno == EAGAIN);
}

static void drop_rest(struct dcmf_sctp *s) {
  free(s->rest);
  s->rest = NULL;
  s->rest_off = 0;
  s->rest_len = 0;
}

/* Aborts the association if it is up; returns whether it was. */
int sctp_abort_association(struct dcmf_sctp *s) {
  drop_rest(s);
  if (s->holding) {
    s->holding = 0; /* never to be sent */
    s->counters.held_dropped++;
  }
  s->reset_waits = 0;
  s->want_writable = 0;
  s->writable_ready = 0;
  if (!s->up) {
    return 0;
  }
  s->up = 0; /* before the ABORT, whose notification then adds nothing */
  struct sctp_sendv_spa spa;
  memset(&spa, 0, sizeof(spa));
  spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
  spa.sendv_sndinfo.snd_flags = SCTP_ABORT;
  /* Best effort: if even the ABORT fails, the peer times out. */
  (void)usrsctp_sendv(s->sock, NULL, 0, NULL, 0, &spa, sizeof(spa),
                      SCTP_SENDV_SPA, 0);
  return 1;
}

/* usrsctp holds the start of a message whose rest cannot follow: that
 * message can never end, and with explicit EOR it blocks every stream
 * behind it. The association is given up (ABORT to the peer) and
 * reported down at the next drain; other associations are untouched. */
static void fail_association(struct dcmf_sctp *s) {
  if (sctp_abort_association(s)) {
    sctp_push_event(s, P_STATE, 0, DCMF_SCTP_DOWN);
  }
}

/* Hands usrsctp what is left of a partly sent message. Every round either
 * takes bytes off the rest or leaves the loop, so it cannot spin: usrsctp
 * 0.9.5 returns 0 with no error for the rest of an explicit-EOR message
 * when its send buffer is all but full (seen in gdb on a wedged worker),
 * and that is "no room", like EWOULDBLOCK. Returns 0 when it is all out,
 * DCMF_ERR_EXHAUSTED when some still waits (want_writable is set), or
 * DCMF_ERR_SYSTEM when usrsctp failed it (the association is then failed). */
int sctp_flush_rest(struct dcmf_sctp *s) {
  /* Nagle off: the rest leaves now, not when the peer's SACK comes. */
  set_nodelay(s, 1);
  while (s->rest_len > 0) {
    ssize_t n =
        s->settings.sendv(s->sock, s->rest + s->rest_off, s->rest_len, NULL, 0,
                          &s->rest_spa, sizeof(s->rest_spa), SCTP_SENDV_SPA, 0);
    if (n == 0 || no_room(n)) {
      sctp_set_want_writable(s);
      return DCMF_ERR_EXHAUSTED;
    }
    if (n < 0 || (size_t)n > s->rest_len) {
      fail_association(s);
      return DCMF_ERR_SYSTEM;
    }
    s->rest_off += (size_t)n;
    s->rest_len -= (size_t)n;
  }
  drop_rest(s);
  reset_if_due(s);
  return 0;
}

static void fill_spa(struct sctp_sendv_spa *spa, uint16_t sid, uint32_t ppid,
                     const struct dcmf_sctp_reliability *rel) {
  memset(spa, 0, sizeof(*spa));
  spa->sendv_flags = SCTP_SEND_SNDINFO_VALID;
  spa->sendv_sndinfo.snd_sid = sid;
  spa->sendv_sndinfo.snd_ppid = htonl(ppid);
  spa->sendv_sndinfo.snd_flags = SCTP_EOR;
  if (rel != NULL) {
    if (rel->unordered) {
      spa->sendv_sndinfo.snd_flags |= SCTP_UNORDERED;
    }
    if (rel->policy != 0) {
      spa->sendv_flags |= SCTP_SEND_PRINFO_VALID;
      spa->sendv_prinfo.pr_policy =
          rel->policy == 1 ? SCTP_PR_SCTP_RTX : SCTP_PR_SCTP_TTL;
      spa->sendv_prinfo.pr_value = rel->value;
    }
  }
}

/* Sets SCTP_NODELAY when it differs from what the socket has. Nagle on
 * (0) only while a message is held: what usrsctp queues then leaves with
 * the held one, so nothing waits on Nagle past the loop turn. */
static void set_nodelay(struct dcmf_sctp *s, int on) {
  if (s->nodelay != on &&
      sctp_set_opt(s, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof(on)) == 0) {
    s->nodelay = on;
  }
}

/* Hands one whole message to usrsctp in one call. Returns 0 (taken; a
 * part usrsctp did not take is kept as the rest), DCMF_ERR_EXHAUSTED (no
 * room, nothing taken; want_writable is set), DCMF_ERR_SYSTEM (usrsctp
 * refused it; nothing of it was queued, the association goes on) or
 * DCMF_ERR_NOMEM (the rest could not be kept: the association is
 * failed). */
static int hand_over(struct dcmf_sctp *s, const uint8_t *data, size_t len,
                     const struct sctp_sendv_spa *spa) {
  struct sctp_sendv_spa info = *spa;
  ssize_t n = s->settings.sendv(s->sock, data, len, NULL, 0, &info,
                                sizeof(info), SCTP_SENDV_SPA, 0);
  if (no_room(n)) {
    sctp_set_want_writable(s);
    return DCMF_ERR_EXHAUSTED;
  }
  if (n < 0 || (size_t)n > len) {
    /* usrsctp refused it (a bad stream, a reset under way, ...). */
    return DCMF_ERR_SYSTEM;
  }
  if ((size_t)n < len) {
    /* usrsctp took the start (possibly none of it, and then it may or may
     * not have opened the message): the rest follows before any other
     * message, so keeping it is right in either case. */
    s->rest = malloc(len - (size_t)n);
    if (s->rest == NULL) {
      fail_association(s);
      return DCMF_ERR_NOMEM;
    }
    memcpy(s->rest, data + n, len - (size_t)n);
    s->rest_off = 0;
    s->rest_len = len - (size_t)n;
    s->rest_spa = *spa;
    sctp_set_want_writable(s);
  }
  return 0;
}

/* Hands the held message to usrsctp: with |push| Nagle goes off first,
 * so usrsctp sends it and everything it queued; without, Nagle stays on
 * and usrsctp may queue it. Returns 0 when nothing is held any more (a
 * message usrsctp refused is dropped and counted: its sender was told 0
 * when it was held), DCMF_ERR_EXHAUSTED when it stays held for want of
 * room, or DCMF_ERR_NOMEM (the association failed). */
int sctp_release_held(struct dcmf_sctp *s, int push) {
  if (!s->holding) {
    return 0;
  }
  set_nodelay(s, push);
  int rv = hand_over(s, s->held, s->held_len, &s->held_spa);
  if (rv == DCMF_ERR_EXHAUSTED) {
    return rv;
  }
  s->holding = 0;
  reset_if_due(s);
  if (rv == DCMF_ERR_SYSTEM) {
    s->counters.held_refused++;
    return 0;
  }
  return rv;
}

/* Keeps a small message for the end of the loop turn (bundling).
 * Returns 0, or DCMF_ERR_NOMEM when the hold buffer cannot be had (the
 * caller sends it at once instead). */
static int hold(struct dcmf_sctp *s, const uint8_t *data, size_t len,
                const struct sctp_sendv_spa *spa) {
  if (s->held == NULL && (s->held = malloc(HOLD_MAX)) == NULL) {
    return DCMF_ERR_NOMEM;
  }
  if (len > 0) {
    memcpy(s->held, data, len);
  }
  s->held_len = len;
  s->held_spa = *spa;
  s->holding = 1;
  s->counters.messages_held++;
  if (!s->flush_owed) {
    s->flush_owed = 1;
    s->cbs.output_pending(s->user);
  }
  return 0;
}

/* Each call makes at most two usrsctp calls for messages (the held one
 * and this one), plus the bounded flush_rest above. Nothing is delivered
 * to the callbacks from here (no drain): the caller may be in the middle
 * of its own state. */
int dcmf_sctp_send(struct dcmf_sctp *s, uint16_t sid, uint32_t ppid,
                   const uint8_t *data, size_t len,
                   const struct dcmf_sctp_reliability *rel) {
  if (!s->up) {
    return DCMF_ERR_INVALID;
  }
  if (s->rest_len > 0) {
    /* The rest of the previous message goes first, whole messages only. */
    int rv = sctp_flush_rest(s);
    if (rv != 0) {
      return rv;
    }
  }
  /* The held message goes before this one; with Nagle on, usrsctp keeps
   * it for the packet the turn's last message fills. */
  int rv = sctp_release_held(s, 0);
  if (rv != 0) {
    return rv;
  }
  if (s->rest_len > 0) {
    /* usrsctp took only the start of the held one: its rest goes first
     * (want_writable is set). */
    return DCMF_ERR_EXHAUSTED;
  }
  if (s->out_streams > 0 && sid >= s->out_streams) {
    /* usrsctp would refuse it; found now, before it could be held. */
    return DCMF_ERR_SYSTEM;
  }
  struct sctp_sendv_spa spa;
  fill_spa(&spa, sid, ppid, rel);
  if (!s->bundle || len > HOLD_MAX || hold(s, data, len, &spa) != 0) {
    set_nodelay(s, 1); /* out now, with whatever usrsctp queued */
    rv = hand_over(s, data, len, &spa);
    if (rv != 0) {
      return rv;
    }
  }
  s->counters.messages_out++;
  s->counters.bytes_out += len;
  return 0;
}

void dcmf_sctp_flush(struct dcmf_sctp *s) {
  s->flush_owed = 0;
  /* Nagle off whatever happens below: nothing queued in this turn may
   * wait for the peer's SACK (a held message refused now triggers no
   * output; what usrsctp queued then leaves with the next SACK, which
   * comes, since Nagle only holds while data is in flight). */
  set_nodelay(s, 1);
  if (!s->up || (s->rest_len > 0 && sctp_flush_rest(s) != 0)) {
    return; /* down, or the rest waits for room (and the held one too) */
  }
  (void)sctp_release_held(s, 1); /* no room: it waits for |writable| */
}

/* Asks usrsctp to reset our outgoing stream |sid| (usrsctp sends the
 * request once what it queued on the stream is out). What it queues is
 * delivered by the caller's drain, or else by the next tick. */
static int request_reset(struct dcmf_sctp *s, uint16_t sid) {
  /* One stream fits on the stack, so closing a channel never fails for
   * want of memory of ours (the peer would keep it open for good). */
  union {
    struct sctp_reset_streams srs;
    uint8_t room[sizeof(struct sctp_reset_streams) + sizeof(uint16_t)];
  } u;
  memset(&u, 0, sizeof(u));
  u.srs.srs_flags = SCTP_STREAM_RESET_OUTGOING;
  u.srs.srs_number_streams = 1;
  u.srs.srs_stream_list[0] = sid;
  return sctp_set_opt(s, IPPROTO_SCTP, SCTP_RESET_STREAMS, &u.srs,
                      (socklen_t)sizeof(u.room));
}

/* The reset that waited for its stream's last message, once that message
 * (and any rest of it) is usrsctp's. */
static void reset_if_due(struct dcmf_sctp *s) {
  if (s->reset_waits && !s->holding && s->rest_len == 0) {
    s->reset_waits = 0;
    (void)request_reset(s, s->reset_sid);
  }
}

int dcmf_sctp_reset_stream(struct dcmf_sctp *s, uint16_t sid) {
  if (s->holding && s->held_spa.sendv_sndinfo.snd_sid == sid &&
      sctp_release_held(s, 1) == DCMF_ERR_EXHAUSTED) {
    /* The stream's last message waits for room: a reset now would reach
     * the peer first, and the message would then go out on a stream the
     * peer may have opened again for another channel. The reset follows
     * the message (reset_if_due). */
    s->reset_waits = 1;
    s->reset_sid = sid;
    return 0;
  }
  int outer = s->draining_call;
  s->draining_call = 1; /* what it queues is drained below */
  int rv = request_reset(s, sid);
  s->draining_call = outer;
  dcmf_sctp_drain(s);
  return rv;
}
