/*
 * msrp_relay.c - the MSRP relay between a data channel and a TCP/TLS
 * stream (msrp_relay.h): queues, back-pressure, the two directions, the
 * aware-mode path checks and rewrites, and the splits with their
 * folded responses.
 */
#include "msrp_relay.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "msrp_int.h"

/* Legs by index: 0 the data channel (messages), 1 the stream. */
#define LEG_DC DCMF_MSRP_RELAY_FROM_MESSAGES
#define LEG_TCP DCMF_MSRP_RELAY_FROM_STREAM

/* Room a piece's head may need beyond the original's: a Byte-Range
 * line added or grown ("Byte-Range: " + 3 numbers of 19 digits) and a
 * transaction id of a different length. */
#define PIECE_HEAD_SLACK 128

/* Stream bytes handed to the framer at once (see recv_stream). */
#define FEED_STEP 16384

/* One queued output: a whole message, or stream bytes (|off| written). */
struct msrp_relay_node {
  struct msrp_relay_node *next;
  size_t len, off;
  uint8_t data[];
};

/* A split SEND waiting for its pieces' responses. */
struct msrp_relay_split {
  int used;
  int partial;  /* Failure-Report "partial": only failures are answered */
  int answered; /* the original got its response */
  int open;     /* still streaming in: more pieces to come */
  char tid[DCMF_MSRP_TID_MAX];
  size_t tid_len;
  char *resp_to;   /* To-Path of the original's response */
  char *resp_from; /* its From-Path */
  char (*piece_tid)[DCMF_MSRP_TID_LEN];
  size_t n_pieces, n_answered, cap_pieces;
  uint64_t deadline;
  size_t mem;
};

/* ---- accounting and queues ---- */

size_t dcmf_msrp_relay_mem(const struct dcmf_msrp_relay *r) {
  return r->framer.win.cap + r->to_msgs.alloc + r->to_stream.alloc +
         r->split_mem + r->scratch_cap + r->big.head_cap +
         r->set.max_splits * sizeof(struct msrp_relay_split);
}

static void note_mem(struct dcmf_msrp_relay *r) {
  size_t m = dcmf_msrp_relay_mem(r);
  if (m > r->stats.peak_mem) {
    r->stats.peak_mem = m;
  }
}

static struct msrp_relay_node *node_new(size_t cap) {
  struct msrp_relay_node *n = malloc(sizeof(*n) + cap);
  if (n != NULL) {
    n->next = NULL;
    n->len = 0;
    n->off = 0;
  }
  return n;
}

/* Shrinks |n| to its length and appends it to |q|. */
static void queue_push(struct msrp_relay_queue *q, struct msrp_relay_node *n) {
  struct msrp_relay_node *s = realloc(n, sizeof(*n) + n->len);
  if (s != NULL) {
    n = s;
  }
  n->next = NULL;
  if (q->tail != NULL) {
    q->tail->next = n;
  } else {
    q->head = n;
  }
  q->tail = n;
  q->bytes += n->len;
  q->alloc += sizeof(*n) + n->len;
}

static void queue_pop(struct msrp_relay_queue *q) {
  struct msrp_relay_node *n = q->head;
  if (n == NULL) {
    return;
  }
  q->head = n->next;
  if (q->head == NULL) {
    q->tail = NULL;
  }
  q->bytes -= n->len;
  q->alloc -= sizeof(*n) + n->len;
  free(n);
}

static void queue_free(struct msrp_relay_queue *q) {
  while (q->head != NULL) {
    queue_pop(q);
  }
}

/* Copies |len| bytes as one output toward |leg|. */
static int queue_copy(struct dcmf_msrp_relay *r, int leg, const uint8_t *d,
                      size_t len) {
  struct msrp_relay_node *n = node_new(len);
  if (n == NULL) {
    return DCMF_ERR_NOMEM;
  }
  memcpy(n->data, d, len);
  n->len = len;
  queue_push(leg == LEG_DC ? &r->to_msgs : &r->to_stream, n);
  return 0;
}

/* ---- set-up ---- */

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d != NULL) {
    memcpy(d, s, n);
  }
  return d;
}

static int valid_uri(const char *s) {
  struct dcmf_msrp_uri u;
  return s != NULL && dcmf_msrp_uri_parse(s, strlen(s), &u) == 0;
}

int dcmf_msrp_relay_init(struct dcmf_msrp_relay *r,
                         const struct dcmf_msrp_relay_settings *s) {
  memset(r, 0, sizeof(*r));
  r->set = *s;
  struct dcmf_msrp_relay_settings *t = &r->set;
  t->max_header = t->max_header ? t->max_header : 16384;
  t->max_chunk_body = t->max_chunk_body ? t->max_chunk_body : 1u << 20;
  t->queue_limit = t->queue_limit ? t->queue_limit : 256u << 10;
  t->max_splits = t->max_splits ? t->max_splits : 64;
  t->max_streamed_body =
      t->max_streamed_body ? t->max_streamed_body : (uint64_t)64 << 20;
  t->tx_timeout_ms = t->tx_timeout_ms ? t->tx_timeout_ms : 30000;
  t->dc_own_uri = t->tcp_own_uri = t->dc_peer_path = t->tcp_peer_path = NULL;
  if (s->rng.fill == NULL || t->max_header < 256 ||
      t->max_message_size < t->max_header + 1024 ||
      (s->mode != DCMF_MSRP_RELAY_AGNOSTIC && s->mode != DCMF_MSRP_RELAY_AWARE)) {
    return DCMF_ERR_INVALID;
  }
  if (s->mode == DCMF_MSRP_RELAY_AWARE) {
    if (!valid_uri(s->dc_own_uri) || !valid_uri(s->tcp_own_uri) ||
        s->dc_peer_path == NULL || s->tcp_peer_path == NULL ||
        !msrp_valid_path(cstr(s->dc_peer_path)) ||
        !msrp_valid_path(cstr(s->tcp_peer_path))) {
      return DCMF_ERR_INVALID;
    }
    r->own_uri[LEG_DC] = dup_str(s->dc_own_uri);
    r->own_uri[LEG_TCP] = dup_str(s->tcp_own_uri);
    r->peer_path[LEG_DC] = dup_str(s->dc_peer_path);
    r->peer_path[LEG_TCP] = dup_str(s->tcp_peer_path);
    for (int leg = 0; leg < 2; leg++) {
      if (r->own_uri[leg] == NULL || r->peer_path[leg] == NULL) {
        goto fail_nomem;
      }
      (void)dcmf_msrp_path_first(cstr(r->peer_path[leg]), &r->peer_first[leg]);
    }
  }
  r->lim.max_header = t->max_header;
  r->lim.max_body = t->max_chunk_body;
  r->splits = calloc(t->max_splits, sizeof(*r->splits));
  if (r->splits == NULL) {
    goto fail_nomem;
  }
  (void)dcmf_msrp_framer_init(&r->framer, &r->lim);
  note_mem(r);
  return 0;
fail_nomem:
  dcmf_msrp_relay_free(r);
  return DCMF_ERR_NOMEM;
}

static void split_release(struct dcmf_msrp_relay *r,
                          struct msrp_relay_split *sp) {
  if (!sp->used) {
    return;
  }
  r->split_mem -= sp->mem;
  free(sp->resp_to);
  free(sp->resp_from);
  free(sp->piece_tid);
  memset(sp, 0, sizeof(*sp));
  r->n_splits--;
}

void dcmf_msrp_relay_free(struct dcmf_msrp_relay *r) {
  for (size_t i = 0; r->splits != NULL && i < r->set.max_splits; i++) {
    split_release(r, &r->splits[i]);
  }
  free(r->splits);
  dcmf_msrp_framer_free(&r->framer);
  queue_free(&r->to_msgs);
  queue_free(&r->to_stream);
  free(r->scratch);
  free(r->big.head);
  for (int leg = 0; leg < 2; leg++) {
    free(r->own_uri[leg]);
    free(r->peer_path[leg]);
  }
  memset(r, 0, sizeof(*r));
}

/* ---- answers the relay makes ---- */

/* Answers the request |req| that came from |leg| with |code|, back
 * toward |leg|, when RFC 4975 §7.2 lets a node answer it. */
static int answer(struct dcmf_msrp_relay *r, int leg,
                  const struct dcmf_msrp_chunk *req, int code,
                  const char *comment) {
  if (!dcmf_msrp_response_wanted(req, code)) {
    return 0;
  }
  uint8_t buf[2 * 4096];
  const char *own =
      r->set.mode == DCMF_MSRP_RELAY_AWARE ? r->own_uri[leg] : NULL;
  int n = dcmf_msrp_build_response(req, code, comment, own, buf, sizeof(buf));
  if (n < 0) {
    /* Paths too long for an answer, or not answerable: the sender's own
     * timer (§7.1.4) stands in for it. */
    return 0;
  }
  r->stats.answers++;
  return queue_copy(r, leg, buf, (size_t)n);
}

/* Whether the first URI of |to_path| is this leg's own URI (§6.1). */
static int names_us(const struct dcmf_msrp_relay *r, int leg,
                    struct dcmf_msrp_str to_path) {
  struct dcmf_msrp_str first;
  struct dcmf_msrp_uri a, b;
  const char *own = r->own_uri[leg];
  return dcmf_msrp_path_first(to_path, &first) == 0 &&
         dcmf_msrp_uri_parse(first.p, first.len, &a) == 0 &&
         dcmf_msrp_uri_parse(own, strlen(own), &b) == 0 &&
         dcmf_msrp_uri_equal(&a, &b);
}

/*
 * The checks both directions share, on a chunk |c| from |leg|. Returns
 * the verdict to take (FORWARDED: go on), with an answer queued where
 * one is due, or an error.
 */
static int check_chunk(struct dcmf_msrp_relay *r, int leg,
                       const struct dcmf_msrp_chunk *c, int *err) {
  *err = 0;
  if (c->kind == DCMF_MSRP_REQUEST && c->method != DCMF_MSRP_SEND &&
      c->has_body && c->body_len > DCMF_MSRP_NON_SEND_BODY_MAX) {
    *err = answer(r, leg, c, 413, "Body too large");
    return DCMF_MSRP_RELAY_TOO_LARGE;
  }
  if (r->set.mode == DCMF_MSRP_RELAY_AWARE && c->kind == DCMF_MSRP_REQUEST &&
      !names_us(r, leg, c->to_path)) {
    *err = answer(r, leg, c, 481, "Session does not exist");
    return DCMF_MSRP_RELAY_WRONG_PATH;
  }
  return DCMF_MSRP_RELAY_FORWARDED;
}

/* Aware mode: |c| from |leg| rewritten for the other leg into |out|.
 * Returns the length or an error as dcmf_msrp_rewrite_paths. */
static int rewrite_for(const struct dcmf_msrp_relay *r, int leg,
                       const struct dcmf_msrp_chunk *c, uint8_t *out,
                       size_t cap) {
  int other = 1 - leg;
  char first[4096];
  const char *to = r->peer_path[other];
  if (c->kind == DCMF_MSRP_RESPONSE) {
    struct dcmf_msrp_str f = r->peer_first[other];
    if (f.len >= sizeof(first)) {
      return DCMF_ERR_INVALID;
    }
    memcpy(first, f.p, f.len);
    first[f.len] = 0;
    to = first;
  }
  return dcmf_msrp_rewrite_paths(c, to, r->own_uri[other], out, cap);
}

/* Room the rewritten |c| may need. */
static size_t rewrite_cap(const struct dcmf_msrp_relay *r,
                          const struct dcmf_msrp_chunk *c) {
  return c->raw_len + strlen(r->peer_path[0]) + strlen(r->peer_path[1]) +
         strlen(r->own_uri[0]) + strlen(r->own_uri[1]) + 64;
}

/* ---- message leg -> stream leg ---- */

static struct msrp_relay_split *find_piece(struct dcmf_msrp_relay *r,
                                           struct dcmf_msrp_str tid) {
  if (tid.len != DCMF_MSRP_TID_LEN || r->n_splits == 0) {
    return NULL;
  }
  for (size_t i = 0; i < r->set.max_splits; i++) {
    struct msrp_relay_split *sp = &r->splits[i];
    for (size_t k = 0; sp->used && k < sp->n_pieces; k++) {
      if (memcmp(sp->piece_tid[k], tid.p, DCMF_MSRP_TID_LEN) == 0) {
        return sp;
      }
    }
  }
  return NULL;
}

/* Sends the original of |sp| its response |code| toward the stream. */
static int answer_split(struct dcmf_msrp_relay *r,
                        struct msrp_relay_split *sp, int code,
                        const char *comment) {
  struct dcmf_msrp_chunk req;
  memset(&req, 0, sizeof(req));
  req.kind = DCMF_MSRP_REQUEST;
  req.method = DCMF_MSRP_SEND;
  req.tid = mkstr(sp->tid, sp->tid_len);
  req.from_path = cstr(sp->resp_to);
  req.to_path = cstr(sp->resp_from);
  req.failure_report = sp->partial ? cstr("partial") : mkstr(NULL, 0);
  sp->answered = 1;
  if (!dcmf_msrp_response_wanted(&req, code)) {
    return 0;
  }
  uint8_t buf[2 * 4096];
  int n = dcmf_msrp_build_response(&req, code, comment, sp->resp_from, buf,
                                   sizeof(buf));
  if (n < 0) {
    return 0;
  }
  r->stats.answers++;
  return queue_copy(r, LEG_TCP, buf, (size_t)n);
}

/* Once every piece of a split that is no longer streaming in has its
 * answer: 200 for the original if none failed, and the slot freed. */
static int split_settle(struct dcmf_msrp_relay *r,
                        struct msrp_relay_split *sp) {
  int rv = 0;
  if (sp->open || sp->n_answered < sp->n_pieces) {
    return 0;
  }
  if (!sp->answered) {
    rv = answer_split(r, sp, 200, "OK");
  }
  split_release(r, sp);
  return rv;
}

/* A response |c| to one of |sp|'s pieces. */
static int fold_response(struct dcmf_msrp_relay *r,
                         struct msrp_relay_split *sp,
                         const struct dcmf_msrp_chunk *c) {
  int rv = 0;
  sp->n_answered++;
  if (!sp->answered && c->status != 200) {
    /* The first failure is the original's answer (§7.2). */
    char comment[128];
    size_t n = c->comment.len < sizeof(comment) - 1 ? c->comment.len
                                                    : sizeof(comment) - 1;
    memcpy(comment, c->comment.p != NULL ? c->comment.p : "", n);
    comment[n] = 0;
    rv = answer_split(r, sp, c->status, n > 0 ? comment : NULL);
  }
  return rv != 0 ? rv : split_settle(r, sp);
}

int dcmf_msrp_relay_recv_message(struct dcmf_msrp_relay *r,
                                 const uint8_t *msg, size_t len,
                                 uint64_t now) {
  (void)now;
  if (!dcmf_msrp_relay_message_wanted(r)) {
    return DCMF_ERR_EXHAUSTED;
  }
  struct dcmf_msrp_chunk c;
  int verdict, err = 0;
  if (dcmf_msrp_parse(msg, len, &r->lim, &c) != 0) {
    verdict = DCMF_MSRP_RELAY_NOT_A_CHUNK;
    goto done;
  }
  if (c.kind == DCMF_MSRP_RESPONSE) {
    struct msrp_relay_split *sp = find_piece(r, c.tid);
    if (sp != NULL) {
      err = fold_response(r, sp, &c);
      verdict = DCMF_MSRP_RELAY_ABSORBED;
      goto done;
    }
  }
  verdict = check_chunk(r, LEG_DC, &c, &err);
  if (verdict != DCMF_MSRP_RELAY_FORWARDED || err != 0) {
    goto done;
  }
  if (r->set.mode == DCMF_MSRP_RELAY_AGNOSTIC) {
    err = queue_copy(r, LEG_TCP, msg, len);
    goto done;
  }
  size_t cap = rewrite_cap(r, &c);
  struct msrp_relay_node *n = node_new(cap);
  if (n == NULL) {
    err = DCMF_ERR_NOMEM;
    goto done;
  }
  int w = rewrite_for(r, LEG_DC, &c, n->data, cap);
  if (w < 0) {
    /* Only a path the peer sent that cannot be written back: drop. */
    free(n);
    verdict = DCMF_MSRP_RELAY_NOT_A_CHUNK;
    goto done;
  }
  n->len = (size_t)w;
  queue_push(&r->to_stream, n);
done:
  note_mem(r);
  if (err != 0) {
    return err;
  }
  r->stats.verdicts[LEG_DC][verdict]++;
  return verdict;
}

/* ---- stream leg -> message leg ---- */

static int scratch_reserve(struct dcmf_msrp_relay *r, size_t cap) {
  if (r->scratch_cap >= cap) {
    return 0;
  }
  uint8_t *s = realloc(r->scratch, cap);
  if (s == NULL) {
    return DCMF_ERR_NOMEM;
  }
  r->scratch = s;
  r->scratch_cap = cap;
  return 0;
}

static struct msrp_relay_split *split_slot(struct dcmf_msrp_relay *r) {
  for (size_t i = 0; i < r->set.max_splits; i++) {
    if (!r->splits[i].used) {
      return &r->splits[i];
    }
  }
  return NULL;
}

/* Starts tracking the split of |orig| (as it came from the stream) into
 * |n_pieces| at most. */
static int split_track(struct dcmf_msrp_relay *r,
                       const struct dcmf_msrp_chunk *orig, size_t n_pieces,
                       uint64_t now, struct msrp_relay_split **out) {
  *out = NULL;
  if (orig->failure_report.p != NULL &&
      msrp_str_ieq(orig->failure_report, "no")) {
    return 0; /* no response comes, none goes (§7.2) */
  }
  struct msrp_relay_split *sp = split_slot(r);
  struct dcmf_msrp_str to, from;
  n_pieces = n_pieces > 0 ? n_pieces : 1;
  if (sp == NULL || dcmf_msrp_path_first(orig->from_path, &to) != 0 ||
      dcmf_msrp_path_first(orig->to_path, &from) != 0) {
    return 0; /* cannot happen: checked before; untracked at worst */
  }
  if (r->set.mode == DCMF_MSRP_RELAY_AWARE) {
    from = cstr(r->own_uri[LEG_TCP]);
  }
  sp->resp_to = malloc(to.len + 1);
  sp->resp_from = malloc(from.len + 1);
  sp->piece_tid = malloc(n_pieces * DCMF_MSRP_TID_LEN);
  if (sp->resp_to == NULL || sp->resp_from == NULL || sp->piece_tid == NULL) {
    free(sp->resp_to);
    free(sp->resp_from);
    free(sp->piece_tid);
    memset(sp, 0, sizeof(*sp));
    return DCMF_ERR_NOMEM;
  }
  memcpy(sp->resp_to, to.p, to.len);
  sp->resp_to[to.len] = 0;
  memcpy(sp->resp_from, from.p, from.len);
  sp->resp_from[from.len] = 0;
  memcpy(sp->tid, orig->tid.p, orig->tid.len);
  sp->tid_len = orig->tid.len;
  sp->partial = orig->failure_report.p != NULL &&
                msrp_str_ieq(orig->failure_report, "partial");
  sp->cap_pieces = n_pieces;
  sp->deadline = now + r->set.tx_timeout_ms;
  sp->mem = to.len + from.len + 2 + n_pieces * DCMF_MSRP_TID_LEN;
  sp->used = 1;
  r->split_mem += sp->mem;
  r->n_splits++;
  *out = sp;
  return 0;
}

/* Records a piece's transaction id (the writer puts it at out + 5),
 * growing the table for a SEND split while it streams in. */
static int split_add_piece(struct dcmf_msrp_relay *r,
                           struct msrp_relay_split *sp, const uint8_t *tid) {
  if (sp->n_pieces == sp->cap_pieces) {
    size_t cap = sp->cap_pieces * 2;
    char(*t)[DCMF_MSRP_TID_LEN] = realloc(sp->piece_tid, cap * sizeof(*t));
    if (t == NULL) {
      return DCMF_ERR_NOMEM;
    }
    sp->piece_tid = t;
    sp->mem += (cap - sp->cap_pieces) * sizeof(*t);
    r->split_mem += (cap - sp->cap_pieces) * sizeof(*t);
    sp->cap_pieces = cap;
  }
  memcpy(sp->piece_tid[sp->n_pieces++], tid, DCMF_MSRP_TID_LEN);
  return 0;
}

/* Splits the SEND |c| (|orig|: as it came from the stream, for the
 * response) into messages of at most max_message_size. */
static int split_send(struct dcmf_msrp_relay *r,
                      const struct dcmf_msrp_chunk *orig,
                      const struct dcmf_msrp_chunk *c, uint64_t now,
                      int *verdict) {
  size_t mms = r->set.max_message_size;
  size_t head = (size_t)(c->body - c->raw);
  size_t overhead = head + PIECE_HEAD_SLACK + DCMF_MSRP_END_MAX;
  struct dcmf_msrp_rechunker rc;
  struct dcmf_msrp_chunk whole = *c;
  if (!whole.has_range) {
    /* §7.3.1: without Byte-Range the chunk starts the message; its
     * total is known only with '$' (as when it streams in) */
    whole.has_range = 1;
    whole.range.start = 1;
    whole.range.end = DCMF_MSRP_UNKNOWN;
    whole.range.total = c->flag == '$' ? c->body_len : DCMF_MSRP_UNKNOWN;
  }
  c = &whole;
  if (overhead >= mms || dcmf_msrp_rechunk_init(&rc, c, mms - overhead) != 0) {
    *verdict = DCMF_MSRP_RELAY_TOO_LARGE;
    return answer(r, LEG_TCP, orig, 413, "Cannot split");
  }
  size_t piece = mms - overhead;
  size_t n_pieces = (c->body_len + piece - 1) / piece;
  struct msrp_relay_split *sp;
  int rv = split_track(r, orig, n_pieces, now, &sp);
  if (rv != 0) {
    return rv;
  }
  r->stats.splits++;
  for (;;) {
    struct msrp_relay_node *n = node_new(mms);
    if (n == NULL) {
      return DCMF_ERR_NOMEM; /* the split is answered by its timer */
    }
    int len = dcmf_msrp_rechunk_next(&rc, &r->set.rng, n->data, mms);
    if (len <= 0) {
      free(n);
      if (len < 0 && sp != NULL && !sp->answered) {
        /* a broken rng or a piece that did not fit: fail the original */
        (void)answer_split(r, sp, 413, "Cannot split");
        split_release(r, sp);
      }
      return len < 0 && len != DCMF_ERR_NOMEM ? 0 : len;
    }
    n->len = (size_t)len;
    if (sp != NULL && split_add_piece(r, sp, n->data + 5) != 0) {
      free(n);
      return DCMF_ERR_NOMEM;
    }
    queue_push(&r->to_msgs, n);
    r->stats.pieces++;
  }
}

/* One chunk |c| cut from the stream. */
static int from_stream(struct dcmf_msrp_relay *r,
                       const struct dcmf_msrp_chunk *c, uint64_t now) {
  int err = 0;
  int verdict = check_chunk(r, LEG_TCP, c, &err);
  if (verdict != DCMF_MSRP_RELAY_FORWARDED || err != 0) {
    goto done;
  }
  struct dcmf_msrp_chunk w = *c;
  if (r->set.mode == DCMF_MSRP_RELAY_AWARE) {
    size_t cap = rewrite_cap(r, c);
    err = scratch_reserve(r, cap);
    if (err != 0) {
      goto done;
    }
    struct dcmf_msrp_limits big = {r->lim.max_header + cap, r->lim.max_body};
    int n = rewrite_for(r, LEG_TCP, c, r->scratch, cap);
    if (n < 0 || dcmf_msrp_parse(r->scratch, (size_t)n, &big, &w) != 0) {
      verdict = DCMF_MSRP_RELAY_NOT_A_CHUNK;
      goto done;
    }
  }
  if (w.raw_len <= r->set.max_message_size) {
    err = queue_copy(r, LEG_DC, w.raw, w.raw_len);
  } else if (w.kind == DCMF_MSRP_REQUEST && w.method == DCMF_MSRP_SEND) {
    err = split_send(r, c, &w, now, &verdict);
  } else {
    verdict = DCMF_MSRP_RELAY_TOO_LARGE;
    if (c->kind == DCMF_MSRP_REQUEST) {
      err = answer(r, LEG_TCP, c, 413, "Too large");
    }
  }
done:
  note_mem(r);
  if (err == 0) {
    r->stats.verdicts[LEG_TCP][verdict]++;
  }
  return err;
}

/* Answers the relay makes go back toward the leg a chunk came from, so
 * that queue may pass its limit; twice the limit stops that leg too
 * (its peer does not read what it is sent). */
/* ---- a SEND passed on in pieces while it streams in ---- */

static void streaming_reset(struct dcmf_msrp_relay *r) {
  free(r->big.head);
  memset(&r->big, 0, sizeof(r->big));
}

/* Writes one piece of the streaming SEND toward the data channel. A
 * piece that cannot be written (a Byte-Range the body outgrew, a broken
 * rng) fails the original with 413 and drops the rest of its body. */
static int streaming_piece(struct dcmf_msrp_relay *r, const uint8_t *body,
                           size_t len, char flag, uint64_t total) {
  struct msrp_relay_streaming *b = &r->big;
  size_t mms = r->set.max_message_size;
  if (b->sent + len > r->set.max_streamed_body) {
    return DCMF_ERR_TOO_LARGE;
  }
  struct msrp_relay_node *n = node_new(mms);
  if (n == NULL) {
    return DCMF_ERR_NOMEM;
  }
  int w = dcmf_msrp_write_piece(&b->hc, body, len, b->start + b->sent, total,
                                flag, &r->set.rng, n->data, mms);
  if (w < 0) {
    free(n);
    if (w == DCMF_ERR_NOMEM) {
      return w;
    }
    if (b->sp != NULL && !b->sp->answered) {
      int rv = answer_split(r, b->sp, 413, "Cannot split");
      if (rv != 0) {
        return rv;
      }
    }
    b->discard = 1;
    b->answered = 1;
    b->verdict = DCMF_MSRP_RELAY_TOO_LARGE;
    return 0;
  }
  n->len = (size_t)w;
  if (b->sp != NULL && split_add_piece(r, b->sp, n->data + 5) != 0) {
    free(n);
    return DCMF_ERR_NOMEM;
  }
  queue_push(&r->to_msgs, n);
  r->stats.pieces++;
  b->sent += len;
  return 0;
}

/* Takes on the SEND |c| (a partial chunk, head read) to pass it on in
 * pieces. */
static int streaming_start(struct dcmf_msrp_relay *r,
                           const struct dcmf_msrp_chunk *c, uint64_t now) {
  struct msrp_relay_streaming *b = &r->big;
  memset(b, 0, sizeof(*b));
  b->active = 1;
  if (r->set.mode == DCMF_MSRP_RELAY_AWARE && !names_us(r, LEG_TCP, c->to_path)) {
    b->discard = 1;
    b->verdict = DCMF_MSRP_RELAY_WRONG_PATH;
    return 0;
  }
  /* The head, kept with an end-line made up for it, so that it parses
   * alone (an empty body) and the pieces can be written from it. */
  size_t head = (size_t)(c->body - c->raw);
  b->head_cap = head + 2 + 7 + c->tid.len + 3;
  b->head = malloc(b->head_cap);
  if (b->head == NULL) {
    b->head_cap = 0;
    return DCMF_ERR_NOMEM;
  }
  memcpy(b->head, c->raw, head);
  size_t at = head;
  memcpy(b->head + at, "\r\n-------", 9);
  at += 9;
  memcpy(b->head + at, c->tid.p, c->tid.len);
  at += c->tid.len;
  memcpy(b->head + at, "$\r\n", 3);
  at += 3;
  struct dcmf_msrp_limits lim = {b->head_cap, 1};
  if (dcmf_msrp_parse(b->head, at, &lim, &b->hc) != 0) {
    return DCMF_ERR_MALFORMED; /* cannot be: the framer parsed it */
  }
  size_t grown = 0;
  if (r->set.mode == DCMF_MSRP_RELAY_AWARE) {
    for (size_t i = 0; i < b->hc.n_headers; i++) {
      struct dcmf_msrp_header *h = &b->hc.headers[i];
      if (msrp_str_ieq(h->name, "To-Path")) {
        h->value = cstr(r->peer_path[LEG_DC]);
      } else if (msrp_str_ieq(h->name, "From-Path")) {
        h->value = cstr(r->own_uri[LEG_DC]);
      }
    }
    grown = strlen(r->peer_path[LEG_DC]) + strlen(r->own_uri[LEG_DC]);
  }
  size_t overhead = head + grown + PIECE_HEAD_SLACK + DCMF_MSRP_END_MAX;
  if (overhead >= r->set.max_message_size) {
    b->discard = 1;
    b->verdict = DCMF_MSRP_RELAY_TOO_LARGE;
    return 0;
  }
  b->piece = r->set.max_message_size - overhead;
  b->start = c->has_range ? c->range.start : 1;
  b->total = c->has_range ? c->range.total : DCMF_MSRP_UNKNOWN;
  r->stats.splits++;
  int rv = split_track(r, c, 16, now, &b->sp);
  if (b->sp != NULL) {
    b->sp->open = 1; /* neither settled nor expired while it streams */
  }
  return rv;
}

/* The framer holds a chunk whose end has not come: passes on whole
 * pieces of a SEND too large for one message. Returns 1 after progress,
 * 0 when more bytes are needed, or an error. */
static int streaming_step(struct dcmf_msrp_relay *r, uint64_t now) {
  struct dcmf_msrp_chunk c;
  if (dcmf_msrp_framer_partial(&r->framer, &c) != 1) {
    return 0; /* a bad head is the framer's to report at the end */
  }
  if (!r->big.active) {
    if (c.kind != DCMF_MSRP_REQUEST || c.method != DCMF_MSRP_SEND ||
        c.raw_len + DCMF_MSRP_END_MAX <= r->set.max_message_size) {
      return 0; /* may still come whole */
    }
    int rv = streaming_start(r, &c, now);
    if (rv != 0) {
      return rv;
    }
  }
  struct msrp_relay_streaming *b = &r->big;
  if (b->discard) {
    if (c.body_len == 0) {
      return 0;
    }
    dcmf_msrp_framer_drop_body(&r->framer, c.body_len);
    return 1;
  }
  if (c.body_len < b->piece) {
    return 0;
  }
  int rv = streaming_piece(r, c.body, b->piece, '+', b->total);
  if (rv == 0 && !b->discard) {
    dcmf_msrp_framer_drop_body(&r->framer, b->piece);
  }
  return rv == 0 ? 1 : rv;
}

/* The end of a streaming SEND: |c| is its head and the rest of its
 * body. */
static int streaming_end(struct dcmf_msrp_relay *r,
                         const struct dcmf_msrp_chunk *c, uint64_t now) {
  struct msrp_relay_streaming *b = &r->big;
  int rv = 0;
  if (!b->discard) {
    uint64_t total = b->total;
    if (total == DCMF_MSRP_UNKNOWN && c->flag == '$') {
      total = b->sent + c->body_len; /* §7.3.1: now the length is known */
    }
    size_t off = 0;
    do {
      size_t n = c->body_len - off < b->piece ? c->body_len - off : b->piece;
      int last = off + n == c->body_len;
      rv = streaming_piece(r, c->body + off, n, last ? c->flag : '+',
                           last ? total : b->total);
      off += n;
    } while (rv == 0 && !b->discard && off < c->body_len);
  }
  if (rv == 0) {
    int verdict = b->discard ? b->verdict : DCMF_MSRP_RELAY_FORWARDED;
    if (b->discard && !b->answered) {
      rv = answer(r, LEG_TCP, c,
                  verdict == DCMF_MSRP_RELAY_WRONG_PATH ? 481 : 413,
                  verdict == DCMF_MSRP_RELAY_WRONG_PATH
                      ? "Session does not exist"
                      : "Too large");
    }
    r->stats.verdicts[LEG_TCP][verdict]++;
  }
  struct msrp_relay_split *sp = b->sp;
  streaming_reset(r);
  if (sp != NULL) {
    /* the response timer starts with the last piece */
    sp->open = 0;
    sp->deadline = now + r->set.tx_timeout_ms;
    int settled = split_settle(r, sp);
    rv = rv != 0 ? rv : settled;
  }
  note_mem(r);
  return rv;
}

int dcmf_msrp_relay_stream_wanted(const struct dcmf_msrp_relay *r) {
  return !r->fatal && r->to_msgs.bytes < r->set.queue_limit &&
         r->to_stream.bytes < 2 * r->set.queue_limit &&
         r->n_splits < r->set.max_splits;
}

int dcmf_msrp_relay_message_wanted(const struct dcmf_msrp_relay *r) {
  return r->to_stream.bytes < r->set.queue_limit &&
         r->to_msgs.bytes < 2 * r->set.queue_limit;
}

/* Relays the whole chunks the framer holds, and the pieces of a SEND
 * streaming in, while back-pressure allows. */
static int pump(struct dcmf_msrp_relay *r, uint64_t now) {
  while (dcmf_msrp_relay_stream_wanted(r)) {
    struct dcmf_msrp_chunk c;
    int rv = dcmf_msrp_framer_next(&r->framer, &c);
    if (rv == 1) {
      rv = r->big.active ? streaming_end(r, &c, now) : from_stream(r, &c, now);
      if (rv != 0) {
        return rv;
      }
      continue;
    }
    if (rv == 0) {
      rv = streaming_step(r, now);
      if (rv == 1) {
        continue;
      }
      if (rv == 0) {
        return 0;
      }
    }
    if (rv != DCMF_ERR_NOMEM) {
      r->fatal = rv;
    }
    return rv;
  }
  return 0;
}

int dcmf_msrp_relay_recv_stream(struct dcmf_msrp_relay *r,
                                const uint8_t *data, size_t len,
                                uint64_t now) {
  size_t total = 0;
  if (r->fatal) {
    return r->fatal;
  }
  if (len > (size_t)INT32_MAX) {
    len = (size_t)INT32_MAX;
  }
  for (;;) {
    int rv = pump(r, now);
    if (rv < 0) {
      return rv;
    }
    if (len == 0 || !dcmf_msrp_relay_stream_wanted(r)) {
      break;
    }
    /* In steps, so that back-pressure stops the intake within a step of
     * the chunk that filled the queue, not at the framer's limit. */
    rv = dcmf_msrp_framer_feed(&r->framer, data,
                               len < FEED_STEP ? len : FEED_STEP);
    note_mem(r);
    if (rv < 0) {
      return rv;
    }
    if (rv == 0) {
      break; /* the window is full and pump found no chunk: cannot be */
    }
    data += rv;
    len -= (size_t)rv;
    total += (size_t)rv;
  }
  return (int)total;
}

/* ---- output ---- */

const uint8_t *dcmf_msrp_relay_peek_message(const struct dcmf_msrp_relay *r,
                                            size_t *len) {
  const struct msrp_relay_node *n = r->to_msgs.head;
  *len = n != NULL ? n->len : 0;
  return n != NULL ? n->data : NULL;
}

int dcmf_msrp_relay_pop_message(struct dcmf_msrp_relay *r, uint64_t now) {
  queue_pop(&r->to_msgs);
  if (r->fatal) {
    return r->fatal;
  }
  return pump(r, now);
}

const uint8_t *dcmf_msrp_relay_peek_stream(const struct dcmf_msrp_relay *r,
                                           size_t *len) {
  const struct msrp_relay_node *n = r->to_stream.head;
  *len = n != NULL ? n->len - n->off : 0;
  return n != NULL ? n->data + n->off : NULL;
}

int dcmf_msrp_relay_consume_stream(struct dcmf_msrp_relay *r, size_t n,
                                   uint64_t now) {
  struct msrp_relay_node *h = r->to_stream.head;
  if (h != NULL) {
    h->off += n < h->len - h->off ? n : h->len - h->off;
    if (h->off == h->len) {
      queue_pop(&r->to_stream);
    }
  }
  if (r->fatal) {
    return r->fatal;
  }
  return pump(r, now); /* stream chunks held back by our own answers */
}

/* ---- time ---- */

uint64_t dcmf_msrp_relay_next_expiry(const struct dcmf_msrp_relay *r) {
  uint64_t t = UINT64_MAX;
  for (size_t i = 0; r->n_splits > 0 && i < r->set.max_splits; i++) {
    if (r->splits[i].used && !r->splits[i].open &&
        r->splits[i].deadline < t) {
      t = r->splits[i].deadline;
    }
  }
  return t;
}

int dcmf_msrp_relay_handle_expiry(struct dcmf_msrp_relay *r, uint64_t now) {
  int rv = 0;
  for (size_t i = 0; r->n_splits > 0 && i < r->set.max_splits; i++) {
    struct msrp_relay_split *sp = &r->splits[i];
    if (sp->used && !sp->open && sp->deadline <= now) {
      if (!sp->answered && !sp->partial && rv == 0) {
        /* "partial" is forgotten: no failure came, and success is not
         * answered (§7.2) */
        rv = answer_split(r, sp, 408, "Request Timeout");
      }
      r->stats.expired++;
      split_release(r, sp);
    }
  }
  note_mem(r);
  if (rv == 0 && !r->fatal) {
    rv = pump(r, now); /* a freed slot may resume the stream */
  }
  return rv;
}

const struct dcmf_msrp_relay_stats *
dcmf_msrp_relay_stats(const struct dcmf_msrp_relay *r) {
  return &r->stats;
}
