/*
 * msrp_relay_split.c - the MSRP relay's splits (msrp_relay.h): a SEND
 * from the stream too large for one data channel message goes on in
 * pieces, cut whole by the re-chunker or while it streams in, and the
 * responses to the pieces fold into one response to the original.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "msrp_int.h"
#include "msrp_relay_int.h"

void mrelay_split_release(struct dcmf_msrp_relay *r,
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

struct msrp_relay_split *mrelay_find_piece(struct dcmf_msrp_relay *r,
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
int mrelay_answer_split(struct dcmf_msrp_relay *r, struct msrp_relay_split *sp,
                        int code, const char *comment) {
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
  return mrelay_queue_copy(r, LEG_TCP, buf, (size_t)n);
}

/* Once every piece of a split that is no longer streaming in has its
 * answer: 200 for the original if none failed, and the slot freed. */
static int mrelay_split_settle(struct dcmf_msrp_relay *r,
                               struct msrp_relay_split *sp) {
  int rv = 0;
  if (sp->open || sp->n_answered < sp->n_pieces) {
    return 0;
  }
  if (!sp->answered) {
    rv = mrelay_answer_split(r, sp, 200, "OK");
  }
  mrelay_split_release(r, sp);
  return rv;
}

/* A response |c| to one of |sp|'s pieces. */
int mrelay_fold_response(struct dcmf_msrp_relay *r, struct msrp_relay_split *sp,
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
    rv = mrelay_answer_split(r, sp, c->status, n > 0 ? comment : NULL);
  }
  return rv != 0 ? rv : mrelay_split_settle(r, sp);
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
int mrelay_split_send(struct dcmf_msrp_relay *r,
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
    return mrelay_answer(r, LEG_TCP, orig, 413, "Cannot split");
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
    struct msrp_relay_node *n = mrelay_node_new(mms);
    if (n == NULL) {
      return DCMF_ERR_NOMEM; /* the split is answered by its timer */
    }
    int len = dcmf_msrp_rechunk_next(&rc, &r->set.rng, n->data, mms);
    if (len <= 0) {
      free(n);
      if (len < 0 && sp != NULL && !sp->answered) {
        /* a broken rng or a piece that did not fit: fail the original */
        (void)mrelay_answer_split(r, sp, 413, "Cannot split");
        mrelay_split_release(r, sp);
      }
      return len < 0 && len != DCMF_ERR_NOMEM ? 0 : len;
    }
    n->len = (size_t)len;
    if (sp != NULL && split_add_piece(r, sp, n->data + 5) != 0) {
      free(n);
      return DCMF_ERR_NOMEM;
    }
    mrelay_queue_push(&r->to_msgs, n);
    r->stats.pieces++;
  }
}

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
  struct msrp_relay_node *n = mrelay_node_new(mms);
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
      int rv = mrelay_answer_split(r, b->sp, 413, "Cannot split");
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
  mrelay_queue_push(&r->to_msgs, n);
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
  b->head_len = (size_t)(c->body - c->raw);
  if (r->set.mode == DCMF_MSRP_RELAY_AWARE &&
      !mrelay_names_us(r, LEG_TCP, c->to_path)) {
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
int mrelay_streaming_step(struct dcmf_msrp_relay *r, uint64_t now) {
  /* Cheap bounds first, so that bytes fed a few at a time do not cost a
   * head parse each: what the framer holds bounds the chunk so far. */
  size_t pending = dcmf_msrp_framer_pending(&r->framer);
  struct msrp_relay_streaming *b = &r->big;
  if (!b->active ? pending + DCMF_MSRP_END_MAX <= r->set.max_message_size
                 : pending < b->head_len + (b->discard ? 1 : b->piece)) {
    return 0;
  }
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
int mrelay_streaming_end(struct dcmf_msrp_relay *r,
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
      rv = mrelay_answer(
          r, LEG_TCP, c, verdict == DCMF_MSRP_RELAY_WRONG_PATH ? 481 : 413,
          verdict == DCMF_MSRP_RELAY_WRONG_PATH ? "Session does not exist"
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
    int settled = mrelay_split_settle(r, sp);
    rv = rv != 0 ? rv : settled;
  }
  mrelay_note_mem(r);
  return rv;
}
