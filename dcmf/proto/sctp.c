#include "sctp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <usrsctp.h>

#include "errors.h"
#include "sctp_int.h"

/* Asks the owner for a dcmf_sctp_handle_tick, once per need. */
static void want_tick(struct dcmf_sctp *s) {
  if (!s->tick_wanted && s->cbs.need_tick != NULL) {
    s->tick_wanted = 1;
    s->cbs.need_tick(s->user);
  }
}

/* A sender waits for room: usrsctp's send callback may never come, so
 * the tick must look (dcmf_sctp_handle_tick). */
void sctp_set_want_writable(struct dcmf_sctp *s) {
  s->want_writable = 1;
  want_tick(s);
}

static int conn_output(void *addr, void *buffer, size_t length, uint8_t tos,
                       uint8_t set_df) {
  (void)tos;
  (void)set_df;
  struct dcmf_sctp *s = addr;
  s->cbs.send_packet(s->user, buffer, length);
  return 0;
}

int dcmf_sctp_stack_init(void) {
  usrsctp_init_nothreads(0, conn_output, NULL);
  /* WebRTC peers do not use ECN over DTLS, and there is no real path for
   * usrsctp to probe: MTU is fixed per association below. */
  usrsctp_sysctl_set_sctp_ecn_enable(0);
  return 0;
}

void dcmf_sctp_stack_tick(uint32_t elapsed_ms) {
  usrsctp_handle_timers(elapsed_ms);
}

int dcmf_sctp_stack_finish(void) {
  return usrsctp_finish() == 0 ? 0 : DCMF_ERR_INVALID;
}

/* Nothing could be queued: the association is given up at the next
 * drain, which a tick must bring when usrsctp's timers got here. */
static void mark_broken(struct dcmf_sctp *s) {
  s->broken = 1;
  if (!s->draining_call) {
    want_tick(s);
  }
}

static void push(struct dcmf_sctp *s, struct pending *p) {
  p->next = NULL;
  if (s->tail) {
    s->tail->next = p;
  } else {
    s->head = p;
  }
  s->tail = p;
  if (!s->draining_call) {
    want_tick(s); /* queued from usrsctp's timers or inside a send */
  }
}

/* A zeroed entry: the spare if there is one. NULL when out of memory. */
static struct pending *pending_new(struct dcmf_sctp *s) {
  struct pending *p = s->spare;
  if (p == NULL) {
    return calloc(1, sizeof(*p));
  }
  s->spare = NULL;
  memset(p, 0, sizeof(*p));
  return p;
}

/* Frees a delivered entry's data; the entry becomes the spare. */
static void pending_free(struct dcmf_sctp *s, struct pending *p) {
  free(p->data);
  if (s->spare == NULL) {
    s->spare = p;
  } else {
    free(p);
  }
}

void sctp_push_event(struct dcmf_sctp *s, int kind, uint16_t sid,
                     enum dcmf_sctp_state state) {
  struct pending *p = pending_new(s);
  if (p == NULL) {
    mark_broken(s);
    return;
  }
  p->kind = kind;
  p->sid = sid;
  p->state = state;
  push(s, p);
}

static void on_notification(struct dcmf_sctp *s,
                            const union sctp_notification *n, size_t len) {
  if (len < sizeof(n->sn_header)) {
    return;
  }
  switch (n->sn_header.sn_type) {
  case SCTP_ASSOC_CHANGE:
    if (n->sn_assoc_change.sac_state == SCTP_COMM_UP) {
      s->up = 1;
      s->out_streams = n->sn_assoc_change.sac_outbound_streams;
      sctp_push_event(s, P_STATE, 0, DCMF_SCTP_UP);
    } else if ((n->sn_assoc_change.sac_state == SCTP_COMM_LOST ||
                n->sn_assoc_change.sac_state == SCTP_SHUTDOWN_COMP ||
                n->sn_assoc_change.sac_state == SCTP_CANT_STR_ASSOC) &&
               s->up) {
      /* Once: fail_association may have reported it already. */
      s->up = 0;
      sctp_push_event(s, P_STATE, 0, DCMF_SCTP_DOWN);
    }
    break;
  case SCTP_STREAM_RESET_EVENT: {
    const struct sctp_stream_reset_event *e = &n->sn_strreset_event;
    if ((e->strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN) &&
        !(e->strreset_flags &
          (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED))) {
      size_t count = (e->strreset_length - sizeof(*e)) / sizeof(uint16_t);
      for (size_t i = 0; i < count; i++) {
        sctp_push_event(s, P_RESET, e->strreset_stream_list[i], DCMF_SCTP_UP);
      }
    }
    break;
  }
  default:
    break;
  }
}

/* The common case: a whole message in one piece, nothing partial before
 * it. The message keeps usrsctp's buffer (no copy). Returns 1 when it
 * took |data|, 0 when the caller still owns it (it is freed there). */
static int take_whole(struct dcmf_sctp *s, uint8_t *data, size_t len,
                      uint16_t sid, uint32_t ppid) {
  struct pending *p = pending_new(s);
  if (p == NULL) {
    mark_broken(s);
    return 0;
  }
  p->kind = P_MESSAGE;
  p->sid = sid;
  p->ppid = ppid;
  p->data = data;
  p->len = len;
  push(s, p);
  s->counters.messages_in++;
  s->counters.bytes_in += len;
  return 1;
}

/* Returns 1 when it took |data| (take_whole), else 0. */
static int on_data(struct dcmf_sctp *s, uint8_t *data, size_t len, uint16_t sid,
                   uint32_t ppid, int eor) {
  if (s->broken) {
    return 0; /* nothing after the hole */
  }
  if (eor && s->partial_len == 0 && !s->partial_dropping &&
      len <= s->settings.max_message_size) {
    return take_whole(s, data, len, sid, ppid);
  }
  if (s->partial_len > 0 && s->partial_sid != sid) {
    /* Pieces of two messages never interleave without I-DATA; if they
     * seem to, the old one cannot be completed. */
    free(s->partial);
    s->partial = NULL;
    s->partial_len = 0;
  }
  if (s->partial_len + len > s->settings.max_message_size) {
    s->partial_dropping = 1;
  }
  if (!s->partial_dropping) {
    uint8_t *grown = realloc(s->partial, s->partial_len + len + 1);
    if (grown == NULL) {
      free(s->partial);
      s->partial = NULL;
      s->partial_len = 0;
      mark_broken(s);
      return 0;
    }
    s->partial = grown;
    memcpy(s->partial + s->partial_len, data, len);
    s->partial_len += len;
    s->partial_sid = sid;
    s->partial_ppid = ppid;
  }
  if (!eor) {
    return 0;
  }
  if (s->partial_dropping) {
    s->counters.oversize_dropped++;
    free(s->partial);
  } else {
    struct pending *p = pending_new(s);
    if (p == NULL) {
      free(s->partial);
      mark_broken(s);
    } else {
      p->kind = P_MESSAGE;
      p->sid = sid;
      p->ppid = ppid;
      p->data = s->partial;
      p->len = s->partial_len;
      push(s, p);
      s->counters.messages_in++;
      s->counters.bytes_in += p->len;
    }
  }
  s->partial = NULL;
  s->partial_len = 0;
  s->partial_dropping = 0;
  return 0;
}

static int receive_cb(struct socket *sock, union sctp_sockstore addr,
                      void *data, size_t len, struct sctp_rcvinfo rcv,
                      int flags, void *ulp_info) {
  (void)sock;
  (void)addr;
  struct dcmf_sctp *s = ulp_info;
  if (data == NULL) {
    return 1;
  }
  if (flags & MSG_NOTIFICATION) {
    on_notification(s, data, len);
  } else if (on_data(s, data, len, rcv.rcv_sid, ntohl(rcv.rcv_ppid),
                     (flags & MSG_EOR) != 0)) {
    return 1; /* the message kept the buffer */
  }
  free(data); /* usrsctp hands over a malloc'ed buffer */
  return 1;
}

/* usrsctp calls this while it processes a SACK, when at least
 * sb_threshold bytes of the send buffer are free (dcmf_sctp_new). A flag,
 * not a queued event: it cannot be lost to a failed allocation. */
static int send_cb(struct socket *sock, uint32_t sb_free, void *ulp_info) {
  (void)sock;
  (void)sb_free;
  struct dcmf_sctp *s = ulp_info;
  if (s->want_writable) {
    s->want_writable = 0;
    s->writable_ready = 1;
  }
  return 1;
}

/* Room again (or time to look): the rest of a partly sent message goes
 * first, then a held one, then the caller hears it may send. */
static void notify_writable(struct dcmf_sctp *s) {
  s->writable_ready = 0;
  s->waited_ticks = 0;
  if (!s->up || (s->rest_len > 0 && sctp_flush_rest(s) != 0) ||
      sctp_release_held(s, 1) != 0) {
    return; /* down, or still no room: want_writable is set again */
  }
  s->cbs.writable(s->user);
}

void dcmf_sctp_drain(struct dcmf_sctp *s) {
  int outer = s->draining_call;
  s->draining_call = 1;
  /* First, so that a failure it meets (an association given up) is
   * reported by the loop below. */
  if (s->writable_ready) {
    notify_writable(s);
  }
  while (s->head != NULL) {
    struct pending *p = s->head;
    s->head = p->next;
    if (s->head == NULL) {
      s->tail = NULL;
    }
    switch (p->kind) {
    case P_MESSAGE:
      s->cbs.message(s->user, p->sid, p->ppid, p->data, p->len);
      break;
    case P_RESET:
      s->cbs.stream_reset(s->user, p->sid);
      break;
    case P_STATE:
      s->down_reported = p->state == DCMF_SCTP_DOWN;
      s->cbs.state_changed(s->user, p->state);
      break;
    }
    pending_free(s, p);
  }
  if (s->broken && !s->down_reported) {
    (void)sctp_abort_association(s);
    s->down_reported = 1;
    s->cbs.state_changed(s->user, DCMF_SCTP_DOWN);
  }
  s->draining_call = outer;
}

void dcmf_sctp_handle_tick(struct dcmf_sctp *s) {
  s->tick_wanted = 0;
  dcmf_sctp_drain(s);
  if (!s->want_writable) {
    s->waited_ticks = 0;
  } else if (++s->waited_ticks >= RETRY_TICKS) {
    /* A spurious retry costs one refused send; a lost one would stall
     * the channel for good. */
    s->want_writable = 0;
    notify_writable(s);
  }
  if (s->head != NULL || s->want_writable || s->writable_ready) {
    want_tick(s); /* still waiting: count the next tick too */
  }
}

int sctp_set_opt(struct dcmf_sctp *s, int level, int name, const void *v,
                 socklen_t len) {
  return usrsctp_setsockopt(s->sock, level, name, v, len) == 0
             ? 0
             : DCMF_ERR_SYSTEM;
}

/* The streams the INIT asks for, both ways: usrsctp allocates the
 * outbound table for them at usrsctp_connect and the inbound one for
 * min(ours, the peer's outbound) when the peer's INIT or INIT-ACK comes,
 * so a media that needs few streams costs less memory and set-up
 * (docs/benchmarks.md, "Set-up profile"). */
static int set_init_streams(struct dcmf_sctp *s, uint16_t streams) {
  struct sctp_initmsg init = {.sinit_num_ostreams = streams,
                              .sinit_max_instreams = streams};
  return sctp_set_opt(s, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof(init));
}

int dcmf_sctp_set_init_streams(struct dcmf_sctp *s, uint16_t streams) {
  int rv = set_init_streams(s, streams);
  if (rv == 0) {
    s->settings.max_streams = streams;
  }
  return rv;
}

int dcmf_sctp_streams(struct dcmf_sctp *s, uint16_t *in, uint16_t *out) {
  if (!s->up) {
    return DCMF_ERR_INVALID;
  }
  struct sctp_status st;
  memset(&st, 0, sizeof(st));
  socklen_t len = (socklen_t)sizeof(st);
  if (usrsctp_getsockopt(s->sock, IPPROTO_SCTP, SCTP_STATUS, &st, &len) != 0) {
    return DCMF_ERR_INVALID;
  }
  *in = st.sstat_instrms;
  *out = st.sstat_outstrms;
  return 0;
}

static int configure(struct dcmf_sctp *s) {
  int rv = 0;
  const int on = 1;
  struct linger lin = {.l_onoff = 1, .l_linger = 0};
  rv |= sctp_set_opt(s, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
  rv |= usrsctp_set_non_blocking(s->sock, 1) == 0 ? 0 : DCMF_ERR_SYSTEM;
  /* No Nagle: a small message leaves at once even with data in flight.
   * With Nagle usrsctp would hold it until a SACK came, and a peer that
   * delays its SACK (up to 200 ms) would stall the last message of a
   * burst. Measured with Nagle: a two-packet HTTP response took 51 ms
   * instead of 0.1 against a phone delaying its SACKs 50 ms
   * (docs/benchmarks.md). Bundling turns Nagle on only while a message
   * is held for the end of the loop turn (dcmf_sctp_flush). */
  rv |= sctp_set_opt(s, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof(on));
  s->nodelay = 1;
  rv |= sctp_set_opt(s, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof(on));
  rv |= sctp_set_opt(s, IPPROTO_SCTP, SCTP_EXPLICIT_EOR, &on, sizeof(on));
  struct sctp_assoc_value av = {.assoc_id = SCTP_ALL_ASSOC,
                                .assoc_value = SCTP_ENABLE_RESET_STREAM_REQ};
  rv |=
      sctp_set_opt(s, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &av, sizeof(av));
  rv |= set_init_streams(s, s->settings.max_streams);
  /* usrsctp's RFC 4960 defaults (1 s minimum RTO, 60 s maximum) are made
   * for the open Internet; a lost SACK on an access link should not stall
   * a channel for a second. These follow what browser stacks use. */
  struct sctp_rtoinfo rto = {.srto_assoc_id = SCTP_FUTURE_ASSOC,
                             .srto_initial = 1000,
                             .srto_max = 10000,
                             .srto_min = 200};
  rv |= sctp_set_opt(s, IPPROTO_SCTP, SCTP_RTOINFO, &rto, sizeof(rto));
  /* Delayed SACKs (RFC 4960 6.2): every second packet is acknowledged
   * at once (the RFC's SHOULD; fewer would slow the sender's window), a
   * lone packet after SACK_DELAY_MS. usrsctp's 200 ms default equals the
   * smallest RTO of peers (ours above, libdatachannel's), so a lone
   * message's SACK would race the sender's retransmission timer; at 50
   * ms it does not, and a reply that comes within it (a UDP-proxy
   * server, an HTTP response) still carries the SACK in its packet
   * (docs/benchmarks.md, "Fewer packets per message"). */
  struct sctp_sack_info sack = {.sack_assoc_id = SCTP_FUTURE_ASSOC,
                                .sack_delay = SACK_DELAY_MS,
                                .sack_freq = 2};
  rv |= sctp_set_opt(s, IPPROTO_SCTP, SCTP_DELAYED_SACK, &sack, sizeof(sack));
  int sndbuf = (int)s->settings.send_buffer;
  rv |= sctp_set_opt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  static const uint16_t events[] = {SCTP_ASSOC_CHANGE, SCTP_STREAM_RESET_EVENT};
  for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
    struct sctp_event ev = {
        .se_assoc_id = SCTP_ALL_ASSOC, .se_type = events[i], .se_on = 1};
    rv |= sctp_set_opt(s, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof(ev));
  }
  return rv == 0 ? 0 : DCMF_ERR_SYSTEM;
}

static struct sockaddr_conn conn_addr(struct dcmf_sctp *s, uint16_t port) {
  struct sockaddr_conn a;
  memset(&a, 0, sizeof(a));
  a.sconn_family = AF_CONN;
  a.sconn_port = htons(port);
  a.sconn_addr = s;
  return a;
}

int dcmf_sctp_new(struct dcmf_sctp **out,
                  const struct dcmf_sctp_settings *settings,
                  const struct dcmf_sctp_callbacks *cbs, void *user) {
  struct dcmf_sctp *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    return DCMF_ERR_NOMEM;
  }
  s->settings = *settings;
  if (s->settings.sendv == NULL) {
    s->settings.sendv = usrsctp_sendv;
  }
  s->cbs = *cbs;
  s->user = user;
  s->bundle = settings->bundle && cbs->output_pending != NULL;
  usrsctp_register_address(s);
  /* The send callback fires when at least a quarter of the buffer is
   * free again. */
  s->sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, receive_cb,
                           send_cb, settings->send_buffer / 4, s);
  if (s->sock == NULL || configure(s) != 0) {
    dcmf_sctp_del(s);
    return DCMF_ERR_SYSTEM;
  }
  struct sockaddr_conn local = conn_addr(s, settings->local_port);
  if (usrsctp_bind(s->sock, (struct sockaddr *)&local, sizeof(local)) != 0) {
    dcmf_sctp_del(s);
    return DCMF_ERR_SYSTEM;
  }
  *out = s;
  return 0;
}

int dcmf_sctp_connect(struct dcmf_sctp *s) {
  struct sockaddr_conn remote = conn_addr(s, s->settings.remote_port);
  int outer = s->draining_call;
  s->draining_call = 1; /* what it queues is drained below */
  int rv = usrsctp_connect(s->sock, (struct sockaddr *)&remote, sizeof(remote));
  int err = errno;
  s->draining_call = outer;
  if (rv != 0 && err != EINPROGRESS) {
    dcmf_sctp_drain(s);
    return DCMF_ERR_SYSTEM;
  }
  /* Fix the path MTU: there is no real path to probe under DTLS, and 1200
   * plus DTLS overhead stays below any tunnel's MTU. */
  struct sctp_paddrparams pp;
  memset(&pp, 0, sizeof(pp));
  memcpy(&pp.spp_address, &remote, sizeof(remote));
  pp.spp_flags = SPP_PMTUD_DISABLE;
  pp.spp_pathmtu = 1200;
  sctp_set_opt(s, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp));
  dcmf_sctp_drain(s);
  return 0;
}

void dcmf_sctp_input(struct dcmf_sctp *s, const uint8_t *data, size_t len) {
  int outer = s->draining_call;
  s->draining_call = 1; /* what it queues is drained below */
  usrsctp_conninput(s, data, len, 0);
  s->draining_call = outer;
  dcmf_sctp_drain(s);
}

const struct dcmf_sctp_counters *dcmf_sctp_counters(const struct dcmf_sctp *s) {
  return &s->counters;
}

void dcmf_sctp_del(struct dcmf_sctp *s) {
  if (s == NULL) {
    return;
  }
  s->cbs.need_tick = NULL; /* the owner is letting go of us */
  if (s->sock != NULL) {
    usrsctp_close(s->sock);
  }
  usrsctp_deregister_address(s);
  while (s->head != NULL) {
    struct pending *p = s->head;
    s->head = p->next;
    free(p->data);
    free(p);
  }
  free(s->spare);
  free(s->partial);
  free(s->rest);
  free(s->held);
  free(s);
}
