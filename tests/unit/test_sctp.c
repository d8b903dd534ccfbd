/*
 * SCTP adapter and data-channel tests: two associations of the one
 * usrsctp stack paired in memory, packets carried by hand, timers ticked
 * by hand. Covers negotiated channels, DCEP open/ACK with either stream
 * parity, PPIDs including empty messages, large messages, and closing by
 * stream reset. A wrapper around usrsctp_sendv (the settings' sendv seam)
 * plays a send buffer that takes nothing, a few bytes, or fails, to pin
 * down how the adapter behaves under backpressure. As in the media
 * worker, an association gets dcmf_sctp_handle_tick only after it asked
 * through |need_tick|, so every retry here also shows that it asks.
 * Delayed SACKs are timed on the ticked clock, and the allocations of
 * the message path are counted (malloc, calloc and realloc are wrapped).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sctp_group.h"
#include <usrsctp.h>

#include "assoc_sctp.h"
#include "datachannel.h"
#include "dcep.h"
#include "errors.h"
#include "sctp.h"

#define QMAX 4096

/* Allocations made by dcmf's code (this executable is linked with
 * -Wl,--wrap for malloc, calloc and realloc; usrsctp's own, inside its
 * shared library, are not seen). Counted while |counting| is set; the
 * harness's callbacks below pause it, so only the adapter and the
 * channel layer are measured. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
static volatile int counting; /* GCC assumes malloc reads no globals */
static size_t allocations;
void *__wrap_malloc(size_t size) {
  allocations += counting != 0;
  return __real_malloc(size);
}
void *__wrap_calloc(size_t n, size_t size) {
  allocations += counting != 0;
  return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t size) {
  allocations += counting != 0;
  return __real_realloc(p, size);
}

struct peer {
  struct dcmf_sctp *sctp;
  struct dcmf_dc *dc;
  struct peer *other;
  uint8_t *q[QMAX];
  size_t qlen[QMAX];
  size_t nq;
  int up;
  int opened[8];
  uint16_t opened_sid[8];
  int n_opened;
  int closed;
  uint16_t closed_sid;
  int refuse;
  /* last message */
  uint16_t msg_sid;
  int msg_binary;
  uint8_t *msg;
  size_t msg_len;
  int n_msgs;
  int n_writable;
  int tick_wanted; /* need_tick came; handle_tick has not run since */
  int tick_asks;   /* need_tick calls in all */
  int flush_owed;  /* output_pending came; dcmf_sctp_flush has not run */
  int flush_asks;  /* output_pending calls in all */
  uint8_t *all; /* every message's bytes, in arrival order */
  size_t all_len;
};

static void send_packet(void *user, const uint8_t *data, size_t len) {
  struct peer *p = user;
  int was_counting = counting;
  counting = 0;
  assert_true(p->nq < QMAX);
  p->q[p->nq] = malloc(len);
  memcpy(p->q[p->nq], data, len);
  p->qlen[p->nq++] = len;
  counting = was_counting;
}

static void sctp_message(void *user, uint16_t sid, uint32_t ppid,
                         const uint8_t *data, size_t len) {
  struct peer *p = user;
  dcmf_dc_on_sctp_message(p->dc, sid, ppid, data, len);
}

static void sctp_reset(void *user, uint16_t sid) {
  struct peer *p = user;
  dcmf_dc_on_sctp_reset(p->dc, sid);
}

static void sctp_state(void *user, enum dcmf_sctp_state state) {
  struct peer *p = user;
  p->up = state == DCMF_SCTP_UP;
  dcmf_dc_on_sctp_state(p->dc, state);
}

static void sctp_writable(void *user) {
  struct peer *p = user;
  p->n_writable++;
  dcmf_dc_on_sctp_writable(p->dc);
}

static void sctp_need_tick(void *user) {
  struct peer *p = user;
  assert_false(p->tick_wanted); /* once per need */
  p->tick_wanted = 1;
  p->tick_asks++;
}

/* What the worker's tick queue does for one association. */
static void tick_if_asked(struct peer *p) {
  if (p->tick_wanted) {
    p->tick_wanted = 0;
    dcmf_sctp_handle_tick(p->sctp);
  }
}

/* What the wrapped usrsctp_sendv lets through (the test's own state; the
 * tests run one at a time). */
static struct {
  enum { TAKE_ALL, TAKE_NOTHING, TAKE_FEW, NO_ROOM, FAIL } mode;
  size_t few; /* TAKE_FEW: at most this many bytes per call */
  int calls;
  /* DCEP messages usrsctp took (PPID 50): stream and first byte. */
  uint16_t dcep_sid[16];
  uint8_t dcep_type[16];
  int n_dcep;
} wrap;

/* A call limit that a spinning caller would reach: the wrapper then
 * fails, so a regression ends the test instead of hanging it. */
#define WRAP_SPIN_LIMIT 10000

static ssize_t wrapped_sendv(struct socket *so, const void *data, size_t len,
                             struct sockaddr *to, int addrcnt, void *info,
                             socklen_t infolen, unsigned int infotype,
                             int flags) {
  if (++wrap.calls > WRAP_SPIN_LIMIT) {
    errno = EIO;
    return -1;
  }
  switch (wrap.mode) {
  case TAKE_NOTHING:
    /* What usrsctp 0.9.5 does, without an error, for the rest of an
     * explicit-EOR message when its send buffer is all but full. */
    return 0;
  case NO_ROOM:
    errno = EWOULDBLOCK;
    return -1;
  case FAIL:
    errno = EIO;
    return -1;
  case TAKE_FEW:
    if (len > wrap.few) {
      /* Hand over only the start, as the start of a message (no EOR). */
      struct sctp_sendv_spa spa;
      memcpy(&spa, info, sizeof(spa));
      spa.sendv_sndinfo.snd_flags &= (uint16_t)~SCTP_EOR;
      return usrsctp_sendv(so, data, wrap.few, to, addrcnt, &spa, sizeof(spa),
                           infotype, flags);
    }
    break;
  case TAKE_ALL:
    break;
  }
  ssize_t n =
      usrsctp_sendv(so, data, len, to, addrcnt, info, infolen, infotype, flags);
  const struct sctp_sendv_spa *spa = info;
  if (n > 0 && ntohl(spa->sendv_sndinfo.snd_ppid) == DCMF_PPID_DCEP &&
      wrap.n_dcep < 16) {
    wrap.dcep_sid[wrap.n_dcep] = spa->sendv_sndinfo.snd_sid;
    wrap.dcep_type[wrap.n_dcep++] = *(const uint8_t *)data;
  }
  return n;
}

static int ch_open(void *user, struct dcmf_dc_channel *ch) {
  struct peer *p = user;
  if (p->n_opened < 8) {
    p->opened_sid[p->n_opened++] = ch->sid;
  }
  return p->refuse ? -1 : 0;
}

static void ch_message(void *user, struct dcmf_dc_channel *ch, int binary,
                       const uint8_t *data, size_t len) {
  struct peer *p = user;
  int was_counting = counting;
  counting = 0;
  free(p->msg);
  p->msg = malloc(len + 1);
  memcpy(p->msg, data, len);
  p->msg_len = len;
  p->msg_sid = ch->sid;
  p->msg_binary = binary;
  p->n_msgs++;
  p->all = realloc(p->all, p->all_len + len + 1);
  memcpy(p->all + p->all_len, data, len);
  p->all_len += len;
  counting = was_counting;
}

static void ch_closed(void *user, struct dcmf_dc_channel *ch) {
  struct peer *p = user;
  p->closed++;
  p->closed_sid = ch->sid;
}

static void sctp_output_pending(void *user) {
  struct peer *p = user;
  assert_false(p->flush_owed); /* once per flush owed */
  p->flush_owed = 1;
  p->flush_asks++;
}

/* What the worker does at the end of a loop turn. */
static void flush_if_owed(struct peer *p) {
  if (p->flush_owed) {
    p->flush_owed = 0;
    dcmf_sctp_flush(p->sctp);
  }
}

static const struct dcmf_sctp_callbacks scbs = {
    .send_packet = send_packet,
    .message = sctp_message,
    .stream_reset = sctp_reset,
    .state_changed = sctp_state,
    .writable = sctp_writable,
    .need_tick = sctp_need_tick,
    .output_pending = sctp_output_pending};
static const struct dcmf_dc_callbacks dcbs = {ch_open, ch_message, ch_closed};

static size_t pump_one(struct peer *from) {
  size_t n = from->nq;
  uint8_t *q[QMAX];
  size_t ql[QMAX];
  memcpy(q, from->q, n * sizeof(q[0]));
  memcpy(ql, from->qlen, n * sizeof(ql[0]));
  from->nq = 0;
  for (size_t i = 0; i < n; i++) {
    dcmf_sctp_input(from->other->sctp, q[i], ql[i]);
    free(q[i]);
  }
  return n;
}

static void pump(struct peer *a, struct peer *b) {
  for (int i = 0; i < 2000; i++) {
    flush_if_owed(a);
    flush_if_owed(b);
    size_t moved = pump_one(a) + pump_one(b);
    if (moved == 0) {
      /* Quiet: let up to a second of timers run (delayed SACKs hold back
       * stream resets until outstanding data is acknowledged). */
      for (int t = 0; t < 20 && a->nq == 0 && b->nq == 0; t++) {
        dcmf_sctp_stack_tick(50);
        tick_if_asked(a);
        tick_if_asked(b);
        flush_if_owed(a);
        flush_if_owed(b);
      }
      if (a->nq == 0 && b->nq == 0) {
        return;
      }
    }
  }
}

struct pair {
  struct peer a, b;
};

/* A pair whose INITs ask for |a_streams| and |b_streams| streams; |a|'s
 * count is raised to |a_grow| before it connects when that is not 0.
 * Peer a bundles a loop turn's messages when |bundle_a| is set; b never
 * does. */
static struct pair *pair_new(uint16_t a_streams, uint16_t b_streams,
                             uint16_t a_grow, int bundle_a) {
  struct pair *p = calloc(1, sizeof(*p));
  p->a.other = &p->b;
  p->b.other = &p->a;
  struct dcmf_sctp_settings s = {.local_port = 5000,
                                 .remote_port = 5000,
                                 .max_streams = 2048,
                                 .max_message_size = 256 * 1024,
                                 .send_buffer = 128 * 1024,
                                 .sendv = wrapped_sendv};
  memset(&wrap, 0, sizeof(wrap));
  struct peer *peers[2] = {&p->a, &p->b};
  for (int i = 0; i < 2; i++) {
    s.max_streams = i == 0 ? a_streams : b_streams;
    s.bundle = i == 0 && bundle_a;
    assert_int_equal(dcmf_sctp_new(&peers[i]->sctp, &s, &scbs, peers[i]), 0);
    assert_int_equal(dcmf_dc_new(&peers[i]->dc, peers[i]->sctp, &dcbs,
                                 peers[i]),
                     0);
    assert_int_equal(dcmf_dc_add_negotiated(peers[i]->dc, 0, "http", NULL,
                                            256),
                     0);
  }
  if (a_grow != 0) {
    assert_int_equal(dcmf_sctp_set_init_streams(p->a.sctp, a_grow), 0);
  }
  assert_int_equal(dcmf_sctp_connect(p->a.sctp), 0);
  assert_int_equal(dcmf_sctp_connect(p->b.sctp), 0);
  pump(&p->a, &p->b);
  return p;
}

static int setup(void **state) {
  *state = pair_new(2048, 2048, 0, 0);
  return 0;
}

static int setup_bundled(void **state) {
  *state = pair_new(2048, 2048, 0, 1);
  return 0;
}

static void peer_free(struct peer *p) {
  dcmf_dc_del(p->dc);
  dcmf_sctp_del(p->sctp);
  for (size_t i = 0; i < p->nq; i++) {
    free(p->q[i]);
  }
  free(p->msg);
  free(p->all);
}

static int teardown(void **state) {
  struct pair *p = *state;
  peer_free(&p->a);
  peer_free(&p->b);
  free(p);
  return 0;
}

static void test_association_and_negotiated_channel(void **state) {
  struct pair *p = *state;
  assert_true(p->a.up);
  assert_true(p->b.up);
  assert_int_equal(p->a.n_opened, 1);
  assert_int_equal(p->a.opened_sid[0], 0);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 0, (const uint8_t *)"GET /", 5),
                   0);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.msg_len, 5);
  assert_memory_equal(p->b.msg, "GET /", 5);
  assert_false(p->b.msg_binary);
  /* Empty binary message: PPID 57 with one ignored byte. */
  assert_int_equal(dcmf_dc_send(p->b.dc, 0, 1, NULL, 0), 0);
  pump(&p->a, &p->b);
  assert_int_equal(p->a.msg_len, 0);
  assert_true(p->a.msg_binary);
  /* Unknown stream: not delivered. */
  assert_int_equal(dcmf_dc_send(p->a.dc, 7, 0, (const uint8_t *)"x", 1),
                   DCMF_ERR_NOT_FOUND);
}

/* Delayed SACKs: a lone packet is acknowledged after 50 ms (not
 * usrsctp's 200, which equals the smallest RTO of the peers), every
 * second packet at once. */
static void test_delayed_sack(void **state) {
  struct pair *p = *state;
  /* usrsctp acknowledges the first DATA of an association at once. */
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, (const uint8_t *)"zero", 4), 0);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.nq, 0);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, (const uint8_t *)"one", 3), 0);
  assert_int_equal(pump_one(&p->a), 1);
  assert_int_equal(p->b.n_msgs, 2);
  assert_int_equal(p->b.nq, 0); /* the SACK waits */
  int waited = 0;
  while (p->b.nq == 0 && waited < 400) {
    dcmf_sctp_stack_tick(10);
    tick_if_asked(&p->b);
    waited += 10;
  }
  assert_int_equal(p->b.nq, 1);
  assert_int_equal(p->b.q[0][12], 3); /* one SACK chunk */
  assert_true(waited >= 40 && waited <= 70);
  pump(&p->a, &p->b);
  /* Two packets: the second is acknowledged as it arrives. */
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, (const uint8_t *)"two", 3), 0);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, (const uint8_t *)"three", 5),
                   0);
  assert_int_equal(pump_one(&p->a), 2);
  assert_int_equal(p->b.nq, 1);
  assert_int_equal(p->b.q[0][12], 3);
}

/* The message path allocates nothing of dcmf's own once it runs: a whole
 * message keeps usrsctp's buffer, and its queue entry is the one the
 * previous message left (the spare). */
static void test_steady_messages_allocate_nothing(void **state) {
  struct pair *p = *state;
  uint8_t msg[100];
  memset(msg, 'm', sizeof(msg));
  for (int warm = 0; warm < 2; warm++) {
    assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, msg, sizeof(msg)), 0);
    assert_int_equal(dcmf_dc_send(p->b.dc, 0, 1, msg, sizeof(msg)), 0);
    pump(&p->a, &p->b);
  }
  int got = p->b.n_msgs;
  allocations = 0;
  counting = 1;
  for (int i = 0; i < 100; i++) {
    assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, msg, sizeof(msg)), 0);
    pump_one(&p->a);
    pump_one(&p->b);
  }
  counting = 0;
  pump(&p->a, &p->b);
  assert_int_equal(p->b.n_msgs, got + 100);
  assert_int_equal(allocations, 0);
  /* A message in pieces (larger than usrsctp's partial delivery point)
   * still goes through the reassembly buffer, which allocates. */
  size_t big = 200 * 1024;
  uint8_t *large = calloc(1, big);
  counting = 1;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, large, big), 0);
  pump(&p->a, &p->b);
  counting = 0;
  assert_int_equal(p->b.msg_len, big);
  assert_true(allocations > 0);
  free(large);
}

static void test_large_message(void **state) {
  struct pair *p = *state;
  size_t len = 200 * 1024;
  uint8_t *big = malloc(len);
  for (size_t i = 0; i < len; i++) {
    big[i] = (uint8_t)(i * 7);
  }
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, big, len), 0);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.msg_len, len);
  assert_memory_equal(p->b.msg, big, len);
  free(big);
}

/* A full send buffer may take only the start of a message; the rest must
 * follow before anything else, so every message arrives whole. */
static void test_messages_survive_a_full_send_buffer(void **state) {
  struct pair *p = *state;
  enum { N = 40, LEN = 60000 };
  uint8_t *msg = malloc(LEN);
  size_t sent = 0;
  int exhausted = 0;
  for (int i = 0; i < N; i++) {
    memset(msg, 'a' + i % 26, LEN);
    int rv;
    while ((rv = dcmf_dc_send(p->a.dc, 0, 1, msg, LEN)) ==
           DCMF_ERR_EXHAUSTED) {
      exhausted = 1;
      pump(&p->a, &p->b);
    }
    assert_int_equal(rv, 0);
    sent++;
    /* Deliver sometimes, so the buffer is often part full. */
    if (i % 7 == 0) {
      pump_one(&p->a);
      pump_one(&p->b);
    }
    assert_int_equal(p->b.msg_len == 0 || p->b.msg_len == LEN, 1);
  }
  pump(&p->a, &p->b);
  assert_true(exhausted); /* the test did reach a full buffer */
  assert_int_equal(p->b.n_msgs, (int)sent);
  assert_int_equal(p->b.msg_len, LEN);
  assert_int_equal(p->b.msg[0], 'a' + (N - 1) % 26);
  free(msg);
}

static void open_dcep(struct peer *opener, uint16_t sid, const char *label) {
  assert_int_equal(dcmf_dc_open(opener->dc, sid, label, "chat", NULL, 256), 0);
}

static void test_dcep_open_either_parity_and_close(void **state) {
  struct pair *p = *state;
  open_dcep(&p->a, 1, "odd");
  open_dcep(&p->a, 2, "even");
  pump(&p->a, &p->b);
  assert_int_equal(p->b.n_opened, 3);
  struct dcmf_dc_channel *ch = dcmf_dc_find(p->b.dc, 1);
  assert_non_null(ch);
  assert_string_equal(ch->label, "odd");
  assert_string_equal(ch->protocol, "chat");
  assert_int_equal(dcmf_dc_counters(p->b.dc)->dcep_opened, 2);
  /* b closes channel 2: a sees the reset, answers, both close. */
  dcmf_dc_close(p->b.dc, 2);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.closed, 1);
  assert_int_equal(p->b.closed_sid, 2);
  assert_null(dcmf_dc_find(p->b.dc, 2));
  /* Channel 1 still works. */
  assert_int_equal(dcmf_dc_send(p->b.dc, 1, 0, (const uint8_t *)"hi", 2), 0);
}

static void test_refused_dcep_channel_is_closed(void **state) {
  struct pair *p = *state;
  p->b.refuse = 1;
  open_dcep(&p->a, 4, "nobody-serves-this");
  pump(&p->a, &p->b);
  assert_null(dcmf_dc_find(p->b.dc, 4));
  assert_int_equal(dcmf_dc_counters(p->b.dc)->dcep_refused, 1);
}

static void test_dcep_wire_format(void **state) {
  (void)state;
  struct dcmf_dcep_open o = {.channel_type = 0x81,
                             .priority = 512,
                             .reliability = 3,
                             .label = (const uint8_t *)"ab",
                             .label_len = 2,
                             .protocol = (const uint8_t *)"x",
                             .protocol_len = 1};
  uint8_t buf[32];
  assert_int_equal(dcmf_dcep_build_open(&o, buf, sizeof(buf)), 15);
  static const uint8_t want[] = {0x03, 0x81, 0x02, 0x00, 0, 0, 0, 3,
                                 0,    2,    0,    1,    'a', 'b', 'x'};
  assert_memory_equal(buf, want, sizeof(want));
  struct dcmf_dcep_open back;
  assert_int_equal(dcmf_dcep_parse(buf, 15, &back), DCMF_DCEP_OPEN);
  assert_int_equal(back.priority, 512);
  assert_int_equal(back.reliability, 3);
  assert_memory_equal(back.protocol, "x", 1);
  assert_int_equal(dcmf_dcep_parse(buf, 14, &back), DCMF_ERR_MALFORMED);
  buf[1] = 0x05; /* unknown channel type */
  assert_int_equal(dcmf_dcep_parse(buf, 15, &back), DCMF_ERR_MALFORMED);
  static const uint8_t ack[] = {0x02};
  assert_int_equal(dcmf_dcep_parse(ack, 1, &back), DCMF_DCEP_ACK);
  assert_int_equal(dcmf_dcep_build_open(&o, buf, 10), DCMF_ERR_TOO_LARGE);
}

static uint8_t *pattern(size_t len, unsigned seed) {
  uint8_t *b = malloc(len);
  uint32_t x = 2463534242u + seed;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b[i] = (uint8_t)x;
  }
  return b;
}

/* b received exactly |m1| then |m2| (each |len| bytes) on stream 0. */
static void assert_got_both(const struct peer *b, const uint8_t *m1,
                            const uint8_t *m2, size_t len) {
  assert_int_equal(b->n_msgs, 2);
  assert_int_equal(b->all_len, 2 * len);
  assert_memory_equal(b->all, m1, len);
  assert_memory_equal(b->all + len, m2, len);
}

/* usrsctp 0.9.5 returns 0 (no error, nothing taken) for the rest of an
 * explicit-EOR message when its send buffer is all but full.
 * The adapter used to retry that in a loop forever, wedging the worker. */
static void test_send_that_takes_nothing_does_not_spin(void **state) {
  struct pair *p = *state;
  enum { LEN = 60000 };
  uint8_t *m1 = pattern(LEN, 1);
  uint8_t *m2 = pattern(LEN, 2);
  /* usrsctp takes only the start of m1; the rest waits in the adapter. */
  wrap.mode = TAKE_FEW;
  wrap.few = 1000;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m1, LEN), 0);
  /* Now it takes nothing: each send gives up at once. */
  wrap.mode = TAKE_NOTHING;
  for (int i = 0; i < 3; i++) {
    wrap.calls = 0;
    assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m2, LEN), DCMF_ERR_EXHAUSTED);
    assert_in_range(wrap.calls, 1, 2);
  }
  assert_true(p->a.up);
  /* Room comes back: the sender is told, m2 goes, both arrive whole. */
  wrap.mode = TAKE_ALL;
  int before = p->a.n_writable;
  pump(&p->a, &p->b);
  assert_true(p->a.n_writable > before);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m2, LEN), 0);
  pump(&p->a, &p->b);
  assert_got_both(&p->b, m1, m2, LEN);
  free(m1);
  free(m2);
}

/* usrsctp calls back only when a SACK frees room. With nothing in flight
 * no SACK comes, so a refused sender must still be retried (from the
 * tick), or its message waits forever. */
static void test_refused_send_is_retried_without_a_callback(void **state) {
  struct pair *p = *state;
  enum { LEN = 20000 };
  uint8_t *m1 = pattern(LEN, 3);
  uint8_t *m2 = pattern(LEN, 4);
  wrap.mode = TAKE_NOTHING;
  int asks = p->a.tick_asks;
  /* m1 is taken whole into the adapter; m2 is refused. */
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m1, LEN), 0);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m2, LEN), DCMF_ERR_EXHAUSTED);
  assert_int_equal(p->a.tick_asks, asks + 1); /* the tick must come */
  wrap.mode = TAKE_ALL;
  wrap.calls = 0;
  int before = p->a.n_writable;
  pump(&p->a, &p->b); /* at most a second of ticks */
  assert_true(p->a.n_writable > before);
  assert_int_equal(p->b.n_msgs, 1);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m2, LEN), 0);
  pump(&p->a, &p->b);
  assert_got_both(&p->b, m1, m2, LEN);
  free(m1);
  free(m2);
}

/* A message usrsctp takes a few bytes at a time still arrives whole. */
static void test_message_taken_a_few_bytes_at_a_time(void **state) {
  struct pair *p = *state;
  enum { LEN = 30000 };
  uint8_t *m1 = pattern(LEN, 5);
  uint8_t *m2 = pattern(LEN, 6);
  wrap.mode = TAKE_FEW;
  wrap.few = 700;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m1, LEN), 0);
  int rv;
  int tries = 0;
  while ((rv = dcmf_dc_send(p->a.dc, 0, 1, m2, LEN)) == DCMF_ERR_EXHAUSTED &&
         tries++ < 100) {
    pump(&p->a, &p->b);
  }
  assert_int_equal(rv, 0);
  wrap.mode = TAKE_ALL;
  pump(&p->a, &p->b);
  assert_got_both(&p->b, m1, m2, LEN);
  free(m1);
  free(m2);
}

/* A message usrsctp refuses outright fails alone: the association and
 * the other channels go on. */
static void test_failed_message_leaves_other_channels(void **state) {
  struct pair *p = *state;
  open_dcep(&p->a, 2, "other");
  pump(&p->a, &p->b);
  wrap.mode = FAIL;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, (const uint8_t *)"x", 1),
                   DCMF_ERR_SYSTEM);
  wrap.mode = TAKE_ALL;
  pump(&p->a, &p->b);
  assert_true(p->a.up);
  assert_int_equal(dcmf_dc_send(p->a.dc, 2, 0, (const uint8_t *)"on", 2), 0);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.msg_sid, 2);
  assert_memory_equal(p->b.msg, "on", 2);
}

/* When the rest of a half-sent message fails, usrsctp holds a message
 * that can never end (and blocks every stream behind it): the adapter
 * gives up the association, reporting it down, rather than going on with
 * a torn message. */
static void test_failed_rest_ends_the_association(void **state) {
  struct pair *p = *state;
  enum { LEN = 60000 };
  uint8_t *m1 = pattern(LEN, 7);
  wrap.mode = TAKE_FEW;
  wrap.few = 1000;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m1, LEN), 0);
  wrap.mode = FAIL;
  wrap.calls = 0;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m1, LEN), DCMF_ERR_SYSTEM);
  assert_in_range(wrap.calls, 1, 2);
  dcmf_sctp_drain(p->a.sctp);
  assert_false(p->a.up);
  assert_int_equal(p->a.closed, 1); /* the channel was reported closed */
  wrap.mode = TAKE_ALL;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m1, LEN), DCMF_ERR_NOT_FOUND);
  free(m1);
}

/* A DATA_CHANNEL_OPEN that meets a full send buffer: the ACK is owed,
 * not lost, and goes out before the channel's first message. */
static void test_dcep_ack_waits_for_room(void **state) {
  struct pair *p = *state;
  open_dcep(&p->b, 3, "late");
  assert_int_equal(wrap.n_dcep, 1);
  wrap.mode = NO_ROOM;
  pump_one(&p->b); /* a gets the OPEN and cannot answer yet */
  assert_non_null(dcmf_dc_find(p->a.dc, 3));
  assert_int_equal(wrap.n_dcep, 1);
  assert_int_equal(dcmf_dc_send(p->a.dc, 3, 0, (const uint8_t *)"hi", 2),
                   DCMF_ERR_EXHAUSTED);
  wrap.mode = TAKE_ALL;
  pump(&p->a, &p->b);               /* writable (from the tick): the ACK goes */
  assert_int_equal(wrap.n_dcep, 2); /* b's OPEN, then a's ACK */
  assert_int_equal(wrap.dcep_sid[1], 3);
  assert_int_equal(wrap.dcep_type[1], DCMF_DCEP_ACK);
  assert_int_equal(dcmf_dc_send(p->a.dc, 3, 0, (const uint8_t *)"hi", 2), 0);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.msg_sid, 3);
  assert_memory_equal(p->b.msg, "hi", 2);
}

static void test_malformed_dcep_is_counted(void **state) {
  struct pair *p = *state;
  static const uint8_t bad[] = {0x03, 0x00, 0x01};
  assert_int_equal(dcmf_sctp_send(p->a.sctp, 6, DCMF_PPID_DCEP, bad,
                                  sizeof(bad), NULL),
                   0);
  pump(&p->a, &p->b);
  assert_null(dcmf_dc_find(p->b.dc, 6));
  assert_int_equal(dcmf_dc_counters(p->b.dc)->malformed, 1);
}

/* Declares negotiated channel |sid| on both sides. */
static void declare_both(struct pair *p, uint16_t sid) {
  assert_int_equal(dcmf_dc_add_negotiated(p->a.dc, sid, "x", NULL, 256), 0);
  assert_int_equal(dcmf_dc_add_negotiated(p->b.dc, sid, "x", NULL, 256), 0);
}

/* dcmfd's INIT asks for few streams, the phone's for every stream
 * (libdatachannel asks for 65535): the association carries the smaller
 * count both ways. A stream below it works both ways; one at or above it
 * is refused on its own, and the association goes on. */
static void test_smaller_init_limits_both_ways(void **state) {
  (void)state;
  struct pair *p = pair_new(16, 65535, 0, 0);
  assert_true(p->a.up);
  assert_true(p->b.up);
  uint16_t in = 0, out = 0;
  assert_int_equal(dcmf_sctp_streams(p->a.sctp, &in, &out), 0);
  assert_int_equal(in, 16);
  assert_int_equal(out, 16);
  assert_int_equal(dcmf_sctp_streams(p->b.sctp, &in, &out), 0);
  assert_int_equal(in, 16);
  assert_int_equal(out, 16);
  declare_both(p, 15);
  declare_both(p, 16);
  assert_int_equal(dcmf_dc_send(p->b.dc, 15, 1, (const uint8_t *)"ab", 2), 0);
  pump(&p->a, &p->b);
  assert_int_equal(p->a.msg_sid, 15);
  assert_int_equal(p->a.msg_len, 2);
  assert_int_equal(dcmf_dc_send(p->a.dc, 15, 1, (const uint8_t *)"cde", 3), 0);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.msg_sid, 15);
  assert_int_equal(p->b.msg_len, 3);
  /* Beyond the count: refused by usrsctp, each side, nothing sent. */
  assert_int_equal(dcmf_dc_send(p->a.dc, 16, 1, (const uint8_t *)"f", 1),
                   DCMF_ERR_SYSTEM);
  assert_int_equal(dcmf_dc_send(p->b.dc, 16, 1, (const uint8_t *)"g", 1),
                   DCMF_ERR_SYSTEM);
  int before = p->a.n_msgs;
  assert_int_equal(dcmf_dc_send(p->b.dc, 0, 1, (const uint8_t *)"hi", 2), 0);
  pump(&p->a, &p->b);
  assert_true(p->a.up && p->b.up);
  assert_int_equal(p->a.n_msgs, before + 1);
  assert_int_equal(p->a.msg_sid, 0);
  struct pair *pp = p;
  teardown((void **)&pp);
}

/* A count raised before connecting is what the INIT asks for. */
static void test_init_streams_raised_before_connect(void **state) {
  (void)state;
  struct pair *p = pair_new(16, 65535, 40, 0);
  uint16_t in = 0, out = 0;
  assert_int_equal(dcmf_sctp_streams(p->a.sctp, &in, &out), 0);
  assert_int_equal(in, 40);
  assert_int_equal(out, 40);
  declare_both(p, 39);
  assert_int_equal(dcmf_dc_send(p->b.dc, 39, 1, (const uint8_t *)"ab", 2), 0);
  pump(&p->a, &p->b);
  assert_int_equal(p->a.msg_sid, 39);
  struct pair *pp = p;
  teardown((void **)&pp);
}

/* Not up: no count to tell. */
static void test_streams_unknown_before_up(void **state) {
  (void)state;
  struct dcmf_sctp_settings s = {.local_port = 5000,
                                 .remote_port = 5000,
                                 .max_streams = 16,
                                 .max_message_size = 1024,
                                 .send_buffer = 64 * 1024};
  struct peer lone;
  memset(&lone, 0, sizeof(lone));
  assert_int_equal(dcmf_sctp_new(&lone.sctp, &s, &scbs, &lone), 0);
  uint16_t in = 7, out = 7;
  assert_int_equal(dcmf_sctp_streams(lone.sctp, &in, &out), DCMF_ERR_INVALID);
  assert_int_equal(in, 7);
  assert_int_equal(out, 7);
  dcmf_sctp_del(lone.sctp);
}

/* ---- the association kind sizes its INIT from the declared streams ---- */

static struct dcmf_assoc_settings sized(uint16_t min, uint16_t max,
                                        const struct dcmf_assoc_stream *st,
                                        size_t n) {
  struct dcmf_assoc_settings as;
  memset(&as, 0, sizeof(as));
  as.sctp = (struct dcmf_sctp_settings){.local_port = 5000,
                                        .remote_port = 5000,
                                        .max_streams = max,
                                        .max_message_size = 1024,
                                        .send_buffer = 64 * 1024};
  as.sctp_min_streams = min;
  as.streams = st;
  as.n_streams = n;
  return as;
}

static void test_init_streams_from_declared_streams(void **state) {
  (void)state;
  const struct dcmf_assoc_stream boot[] = {
      {.id = 0}, {.id = 10}, {.id = 110}, {.id = 100}};
  const struct dcmf_assoc_stream app[] = {{.id = 0}, {.id = 1000}};
  const struct dcmf_assoc_stream far[] = {{.id = 5000}};
  const struct dcmf_assoc_stream none65535[] = {{.id = 65535}};
  struct dcmf_assoc_settings as = sized(16, 2048, boot, 4);
  assert_int_equal(dcmf_assoc_sctp_init_streams(&as), 111);
  as = sized(1024, 2048, boot, 4); /* the floor wins */
  assert_int_equal(dcmf_assoc_sctp_init_streams(&as), 1024);
  as = sized(16, 2048, app, 2);
  assert_int_equal(dcmf_assoc_sctp_init_streams(&as), 1001);
  as = sized(16, 2048, far, 1); /* the ceiling wins */
  assert_int_equal(dcmf_assoc_sctp_init_streams(&as), 2048);
  as = sized(32, 2048, NULL, 0);
  assert_int_equal(dcmf_assoc_sctp_init_streams(&as), 32);
  as = sized(32, 2048, none65535, 1); /* 65535 is no stream */
  assert_int_equal(dcmf_assoc_sctp_init_streams(&as), 32);
  as = sized(4096, 2048, NULL, 0); /* a floor above the ceiling */
  assert_int_equal(dcmf_assoc_sctp_init_streams(&as), 2048);
  as = sized(0, 2048, boot, 4); /* no floor: the ceiling, as before */
  assert_int_equal(dcmf_assoc_sctp_init_streams(&as), 2048);
}

/* What the kind hands DTLS: the INIT, whose stream counts are read off
 * the wire (RFC 4960 3.3.2: outbound streams at byte 12 of the chunk,
 * inbound at 14, after the 12-byte common header). */
static struct {
  uint16_t init_os, init_mis;
  int inits;
} kind_out;

static void kind_dtls_out(void *lower, const uint8_t *data, size_t len) {
  (void)lower;
  if (len >= 12 + 20 && data[12] == 1 /* INIT */) {
    kind_out.init_os = (uint16_t)(data[12 + 12] << 8 | data[12 + 13]);
    kind_out.init_mis = (uint16_t)(data[12 + 14] << 8 | data[12 + 15]);
    kind_out.inits++;
  }
}
static void kind_state(void *lower, enum dcmf_assoc_state st, const char *r) {
  (void)lower;
  (void)st;
  (void)r;
}
static int kind_flow_open(void *upper, const struct dcmf_svc_flow *f,
                          void **slot) {
  (void)upper;
  (void)f;
  (void)slot;
  return 0;
}
static void kind_flow_message(void *upper, const struct dcmf_svc_flow *f,
                              void *slot, int binary, const uint8_t *data,
                              size_t len) {
  (void)upper;
  (void)f;
  (void)slot;
  (void)binary;
  (void)data;
  (void)len;
}
static void kind_flow_closed(void *upper, const struct dcmf_svc_flow *f,
                             void **slot) {
  (void)upper;
  (void)f;
  (void)slot;
}

/* An update that declares more streams before the association connects
 * raises its INIT; once it has connected, one beyond the INIT's count is
 * reported (DCMF_ERR_TOO_LARGE) and one within it is not. */
static void test_kind_grows_init_until_connected(void **state) {
  (void)state;
  memset(&kind_out, 0, sizeof(kind_out));
  const struct dcmf_assoc_events ev = {.dtls_out = kind_dtls_out,
                                       .state_changed = kind_state,
                                       .flow_open = kind_flow_open,
                                       .flow_message = kind_flow_message,
                                       .flow_closed = kind_flow_closed};
  const struct dcmf_assoc_stream first[] = {{.id = 0, .protocol = "http"}};
  const struct dcmf_assoc_stream more[] = {{.id = 0, .protocol = "http"},
                                           {.id = 50, .protocol = "x"}};
  const struct dcmf_assoc_stream beyond[] = {{.id = 0, .protocol = "http"},
                                             {.id = 50, .protocol = "x"},
                                             {.id = 60, .protocol = "y"}};
  struct dcmf_assoc_settings as = sized(32, 2048, first, 1);
  void *assoc = NULL;
  assert_int_equal(dcmf_assoc_sctp.create(&assoc, &as, &ev), 0);
  as = sized(32, 2048, more, 2);
  assert_int_equal(dcmf_assoc_sctp.update(assoc, &as), 0);
  assert_int_equal(dcmf_assoc_sctp.flow_state(assoc, 50),
                   DCMF_SVC_FLOW_PENDING);
  const struct dcmf_assoc_dtls no_keys = {0}; /* SCTP needs none */
  assert_int_equal(dcmf_assoc_sctp.connected(assoc, &no_keys), 0);
  assert_int_equal(kind_out.inits, 1);
  assert_int_equal(kind_out.init_os, 51);
  assert_int_equal(kind_out.init_mis, 51);
  assert_int_equal(dcmf_assoc_sctp.update(assoc, &as), 0);
  as = sized(32, 2048, beyond, 3);
  assert_int_equal(dcmf_assoc_sctp.update(assoc, &as), DCMF_ERR_TOO_LARGE);
  /* declared all the same: it stays pending */
  assert_int_equal(dcmf_assoc_sctp.flow_state(assoc, 60),
                   DCMF_SVC_FLOW_PENDING);
  dcmf_assoc_sctp.destroy(assoc);
}

/* ---- bundling (peer a bundles, b does not) --------------------------- */

/* Ten small messages of one loop turn share a packet or two; the peer
 * that does not bundle sends a packet per message. Both arrive whole
 * and in order. */
static void test_turn_messages_share_packets(void **state) {
  struct pair *p = *state;
  enum { N = 10, LEN = 100 };
  uint8_t *m = pattern(N * LEN, 11);
  int asks = p->a.flush_asks;
  for (int i = 0; i < N; i++) {
    assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m + i * LEN, LEN), 0);
    assert_int_equal(dcmf_dc_send(p->b.dc, 0, 1, m + i * LEN, LEN), 0);
  }
  assert_int_equal(p->a.flush_asks, asks + 1); /* once per turn */
  /* Nothing was in flight: usrsctp let the first go at once; the rest
   * waits for the turn's end. */
  assert_in_range(p->a.nq, 0, 1);
  flush_if_owed(&p->a);
  size_t bundled = p->a.nq;
  assert_in_range(bundled, 1, 2);
  assert_int_equal(p->b.nq, N); /* a packet per message */
  assert_int_equal(dcmf_sctp_counters(p->a.sctp)->messages_held, N);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.n_msgs, N);
  assert_int_equal(p->b.all_len, N * LEN);
  assert_memory_equal(p->b.all, m, N * LEN);
  assert_int_equal(p->a.n_msgs, N);
  assert_memory_equal(p->a.all, m, N * LEN);
  free(m);
}

/* A message too large to share a packet leaves at once and takes the
 * held one with it, in order; the turn's flush then has nothing left. */
static void test_large_message_takes_the_held_one_along(void **state) {
  struct pair *p = *state;
  uint8_t *small = pattern(50, 12);
  uint8_t *large = pattern(2000, 13);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, small, 50), 0);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, large, 2000), 0);
  assert_true(p->a.nq >= 2); /* out before the flush */
  size_t before_flush = p->a.nq;
  flush_if_owed(&p->a);
  assert_int_equal(p->a.nq, before_flush);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.n_msgs, 2);
  assert_memory_equal(p->b.all, small, 50);
  assert_memory_equal(p->b.all + 50, large, 2000);
  free(small);
  free(large);
}

/* No room when the turn ends: the held message stays (nothing is lost,
 * nothing spins), a newer one is refused until room comes, and the held
 * one goes first when it does. */
static void test_held_message_waits_for_room(void **state) {
  struct pair *p = *state;
  uint8_t *m1 = pattern(80, 14);
  uint8_t *m2 = pattern(80, 15);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m1, 80), 0);
  wrap.mode = NO_ROOM;
  wrap.calls = 0;
  flush_if_owed(&p->a);
  assert_int_equal(wrap.calls, 1);
  assert_int_equal(p->a.nq, 0);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m2, 80), DCMF_ERR_EXHAUSTED);
  assert_in_range(wrap.calls, 2, 3);
  wrap.mode = TAKE_ALL;
  int before = p->a.n_writable;
  pump(&p->a, &p->b); /* the tick retries: m1 goes, then |writable| */
  assert_true(p->a.n_writable > before);
  assert_int_equal(p->b.n_msgs, 1);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m2, 80), 0);
  pump(&p->a, &p->b);
  assert_got_both(&p->b, m1, m2, 80);
  assert_int_equal(dcmf_sctp_counters(p->a.sctp)->held_refused, 0);
  free(m1);
  free(m2);
}

/* usrsctp takes only the start of the held message when the next one
 * comes: the next one waits (EXHAUSTED) rather than cut into it, and
 * both arrive whole and in order once room comes back. */
static void test_held_message_taken_in_part(void **state) {
  struct pair *p = *state;
  uint8_t *m1 = pattern(400, 16);
  uint8_t *m2 = pattern(3000, 17);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m1, 400), 0);
  wrap.mode = TAKE_FEW;
  wrap.few = 100;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m2, 3000), DCMF_ERR_EXHAUSTED);
  wrap.mode = TAKE_ALL;
  int before = p->a.n_writable;
  pump(&p->a, &p->b);
  assert_true(p->a.n_writable > before);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m2, 3000), 0);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.n_msgs, 2);
  assert_int_equal(p->b.all_len, 3400);
  assert_memory_equal(p->b.all, m1, 400);
  assert_memory_equal(p->b.all + 400, m2, 3000);
  free(m1);
  free(m2);
}

/* Closing a channel right after its last message: the message is handed
 * over before the stream reset, so the peer gets it, then the close. */
static void test_held_message_goes_before_the_reset(void **state) {
  struct pair *p = *state;
  open_dcep(&p->a, 2, "bye");
  pump(&p->a, &p->b);
  assert_int_equal(dcmf_dc_send(p->a.dc, 2, 0, (const uint8_t *)"last", 4), 0);
  dcmf_dc_close(p->a.dc, 2);
  pump(&p->a, &p->b);
  assert_int_equal(p->b.n_msgs, 1);
  assert_int_equal(p->b.msg_sid, 2);
  assert_memory_equal(p->b.msg, "last", 4);
  assert_int_equal(p->b.closed, 1);
  assert_int_equal(p->b.closed_sid, 2);
}

/* Closing a channel while its last message waits for room: the reset
 * waits for the message, so the peer gets the message on the old channel
 * and then the close, even when it opens the stream again at once. */
static void test_reset_waits_for_the_held_message(void **state) {
  struct pair *p = *state;
  open_dcep(&p->a, 2, "bye");
  pump(&p->a, &p->b);
  int n0 = p->b.n_msgs;
  assert_int_equal(dcmf_dc_send(p->a.dc, 2, 0, (const uint8_t *)"last", 4), 0);
  wrap.mode = NO_ROOM;
  dcmf_dc_close(p->a.dc, 2);
  flush_if_owed(&p->a);
  wrap.mode = TAKE_ALL;
  for (int i = 0; i < 20; i++) { /* packets only, no tick: no retry yet */
    pump_one(&p->a);
    pump_one(&p->b);
  }
  assert_int_equal(p->b.closed, 0); /* the reset did not go ahead */
  pump(&p->a, &p->b); /* the tick retries: the message, then the reset */
  assert_int_equal(p->b.n_msgs, n0 + 1);
  assert_int_equal(p->b.msg_sid, 2);
  assert_memory_equal(p->b.msg, "last", 4);
  assert_int_equal(p->b.closed, 1);
  assert_int_equal(p->b.closed_sid, 2);
  /* The stream can carry a new channel, which gets nothing old. */
  open_dcep(&p->b, 2, "new");
  pump(&p->a, &p->b);
  assert_int_equal(p->a.n_msgs, 0);
  assert_int_equal(dcmf_sctp_counters(p->a.sctp)->held_refused, 0);
}

/* With bundling a message for a stream beyond the association's count is
 * refused at once, as usrsctp refuses it, not held and dropped later. */
static void test_bundled_send_beyond_the_streams_is_refused(void **state) {
  (void)state;
  struct pair *p = pair_new(16, 65535, 0, 1);
  assert_int_equal(dcmf_sctp_send(p->a.sctp, 16, 53, (const uint8_t *)"f", 1,
                                   NULL),
                   DCMF_ERR_SYSTEM);
  assert_int_equal(dcmf_sctp_send(p->a.sctp, 15, 53, (const uint8_t *)"f", 1,
                                   NULL),
                   0);
  assert_int_equal(dcmf_sctp_counters(p->a.sctp)->messages_held, 1);
  void *pp = p;
  teardown(&pp);
}

/* usrsctp took only the start of the held message (Nagle was on for
 * it): the rest leaves at the end of the turn, without waiting for the
 * peer's SACK. */
static void test_rest_of_a_held_message_leaves_with_the_turn(void **state) {
  struct pair *p = *state;
  uint8_t *m1 = pattern(400, 18);
  uint8_t *m2 = pattern(50, 19);
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m1, 400), 0);
  wrap.mode = TAKE_FEW;
  wrap.few = 100;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, m2, 50), DCMF_ERR_EXHAUSTED);
  wrap.mode = TAKE_ALL;
  size_t before = p->a.nq;
  flush_if_owed(&p->a); /* the end of the turn */
  /* The whole message is out now: b gets it with no tick or SACK. */
  assert_true(p->a.nq > before); /* the rest left at the flush */
  for (int i = 0; i < 4 && p->b.n_msgs == 0; i++) {
    pump_one(&p->a);
  }
  assert_int_equal(p->b.n_msgs, 1);
  assert_memory_equal(p->b.all, m1, 400);
  free(m1);
  free(m2);
}

/* The association ends with a message held: it is dropped with the
 * association, nothing is sent after the ABORT, and nothing leaks. */
static void test_held_message_dropped_with_the_association(void **state) {
  struct pair *p = *state;
  assert_int_equal(dcmf_dc_send(p->a.dc, 0, 1, (const uint8_t *)"x", 1), 0);
  dcmf_dc_del(p->a.dc);
  p->a.dc = NULL;
  dcmf_sctp_del(p->a.sctp); /* an ABORT, with the flush still owed */
  p->a.sctp = NULL;
  assert_int_equal(p->a.nq, 1);
  assert_int_equal(p->a.q[0][12], 6); /* the ABORT chunk alone */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_association_and_negotiated_channel,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_delayed_sack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_steady_messages_allocate_nothing,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_messages_survive_a_full_send_buffer,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_dcep_open_either_parity_and_close,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_dcep_channel_is_closed,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_dcep_is_counted, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_send_that_takes_nothing_does_not_spin, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_refused_send_is_retried_without_a_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_message_taken_a_few_bytes_at_a_time,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_message_leaves_other_channels,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_rest_ends_the_association,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_dcep_ack_waits_for_room, setup,
                                      teardown),
      cmocka_unit_test(test_dcep_wire_format),
      cmocka_unit_test(test_smaller_init_limits_both_ways),
      cmocka_unit_test(test_init_streams_raised_before_connect),
      cmocka_unit_test(test_streams_unknown_before_up),
      cmocka_unit_test(test_init_streams_from_declared_streams),
      cmocka_unit_test(test_kind_grows_init_until_connected),
      cmocka_unit_test_setup_teardown(test_turn_messages_share_packets,
                                      setup_bundled, teardown),
      cmocka_unit_test_setup_teardown(
          test_large_message_takes_the_held_one_along, setup_bundled,
          teardown),
      cmocka_unit_test_setup_teardown(test_held_message_waits_for_room,
                                      setup_bundled, teardown),
      cmocka_unit_test_setup_teardown(test_held_message_taken_in_part,
                                      setup_bundled, teardown),
      cmocka_unit_test_setup_teardown(test_held_message_goes_before_the_reset,
                                      setup_bundled, teardown),
      cmocka_unit_test_setup_teardown(
          test_held_message_dropped_with_the_association, setup_bundled,
          teardown),
      cmocka_unit_test_setup_teardown(test_reset_waits_for_the_held_message,
                                      setup_bundled, teardown),
      cmocka_unit_test(test_bundled_send_beyond_the_streams_is_refused),
      cmocka_unit_test_setup_teardown(
          test_rest_of_a_held_message_leaves_with_the_turn, setup_bundled,
          teardown),
  };
  return cmocka_run_group_tests(tests, dcmf_test_sctp_group_setup,
                                dcmf_test_sctp_group_teardown);
}
