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
#include "msrp_relay_int.h"

/* Stream bytes handed to the framer at once (see recv_stream). */
#define FEED_STEP 16384

/* ---- accounting and queues ---- */

size_t dcmf_msrp_relay_mem(const struct dcmf_msrp_relay *r) {
  return r->framer.win.cap + r->to_msgs.alloc + r->to_stream.alloc +
         r->split_mem + r->scratch_cap + r->big.head_cap +
         r->set.max_splits * sizeof(struct msrp_relay_split);
}

void mrelay_note_mem(struct dcmf_msrp_relay *r) {
  size_t m = dcmf_msrp_relay_mem(r);
  if (m > r->stats.peak_mem) {
    r->stats.peak_mem = m;
  }
}

struct msrp_relay_node *mrelay_node_new(size_t cap) {
  struct msrp_relay_node *n = malloc(sizeof(*n) + cap);
  if (n != NULL) {
    n->next = NULL;
    n->len = 0;
    n->off = 0;
  }
  return n;
}

/* Shrinks |n| to its length and appends it to |q|. */
void mrelay_queue_push(struct msrp_relay_queue *q, struct msrp_relay_node *n) {
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
int mrelay_queue_copy(struct dcmf_msrp_relay *r, int leg, const uint8_t *d,
                      size_t len) {
  struct msrp_relay_node *n = mrelay_node_new(len);
  if (n == NULL) {
    return DCMF_ERR_NOMEM;
  }
  memcpy(n->data, d, len);
  n->len = len;
  mrelay_queue_push(leg == LEG_DC ? &r->to_msgs : &r->to_stream, n);
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
      (s->mode != DCMF_MSRP_RELAY_AGNOSTIC &&
       s->mode != DCMF_MSRP_RELAY_AWARE)) {
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
  mrelay_note_mem(r);
  return 0;
fail_nomem:
  dcmf_msrp_relay_free(r);
  return DCMF_ERR_NOMEM;
}

void dcmf_msrp_relay_free(struct dcmf_msrp_relay *r) {
  for (size_t i = 0; r->splits != NULL && i < r->set.max_splits; i++) {
    mrelay_split_release(r, &r->splits[i]);
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
  free(r->next_dc_path);
  memset(r, 0, sizeof(*r));
}

/* |path| (owned) becomes |leg|'s peer path. */
static void take_peer_path(struct dcmf_msrp_relay *r, int leg, char *path) {
  free(r->peer_path[leg]);
  r->peer_path[leg] = path;
  (void)dcmf_msrp_path_first(cstr(path), &r->peer_first[leg]);
}

int dcmf_msrp_relay_set_peer_path(struct dcmf_msrp_relay *r, int leg,
                                  const char *path) {
  if (r->set.mode != DCMF_MSRP_RELAY_AWARE || (leg != LEG_DC && leg != LEG_TCP) ||
      path == NULL || !msrp_valid_path(cstr(path))) {
    return DCMF_ERR_INVALID;
  }
  char *copy = dup_str(path);
  if (copy == NULL) {
    return DCMF_ERR_NOMEM;
  }
  if (leg == LEG_DC && r->big.active) {
    /* The streamed head's To-Path points into the current one. */
    free(r->next_dc_path);
    r->next_dc_path = copy;
    return 0;
  }
  take_peer_path(r, leg, copy);
  return 0;
}

/* ---- answers the relay makes ---- */

/* Answers the request |req| that came from |leg| with |code|, back
 * toward |leg|, when RFC 4975 §7.2 lets a node answer it. */
int mrelay_answer(struct dcmf_msrp_relay *r, int leg,
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
  return mrelay_queue_copy(r, leg, buf, (size_t)n);
}

/* Whether the first URI of |to_path| is this leg's own URI (§6.1). */
int mrelay_names_us(const struct dcmf_msrp_relay *r, int leg,
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
    *err = mrelay_answer(r, leg, c, 413, "Body too large");
    return DCMF_MSRP_RELAY_TOO_LARGE;
  }
  if (r->set.mode == DCMF_MSRP_RELAY_AWARE && c->kind == DCMF_MSRP_REQUEST &&
      !mrelay_names_us(r, leg, c->to_path)) {
    *err = mrelay_answer(r, leg, c, 481, "Session does not exist");
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

int dcmf_msrp_relay_recv_message(struct dcmf_msrp_relay *r, const uint8_t *msg,
                                 size_t len, uint64_t now) {
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
    struct msrp_relay_split *sp = mrelay_find_piece(r, c.tid);
    if (sp != NULL) {
      err = mrelay_fold_response(r, sp, &c);
      verdict = DCMF_MSRP_RELAY_ABSORBED;
      goto done;
    }
  }
  verdict = check_chunk(r, LEG_DC, &c, &err);
  if (verdict != DCMF_MSRP_RELAY_FORWARDED || err != 0) {
    goto done;
  }
  if (r->set.mode == DCMF_MSRP_RELAY_AGNOSTIC) {
    err = mrelay_queue_copy(r, LEG_TCP, msg, len);
    goto done;
  }
  size_t cap = rewrite_cap(r, &c);
  struct msrp_relay_node *n = mrelay_node_new(cap);
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
  mrelay_queue_push(&r->to_stream, n);
done:
  mrelay_note_mem(r);
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
    err = mrelay_queue_copy(r, LEG_DC, w.raw, w.raw_len);
  } else if (w.kind == DCMF_MSRP_REQUEST && w.method == DCMF_MSRP_SEND) {
    err = mrelay_split_send(r, c, &w, now, &verdict);
  } else {
    verdict = DCMF_MSRP_RELAY_TOO_LARGE;
    if (c->kind == DCMF_MSRP_REQUEST) {
      err = mrelay_answer(r, LEG_TCP, c, 413, "Too large");
    }
  }
done:
  mrelay_note_mem(r);
  if (err == 0) {
    r->stats.verdicts[LEG_TCP][verdict]++;
  }
  return err;
}

/* Answers the relay makes go back toward the leg a chunk came from, so
 * that queue may pass its limit; twice the limit stops that leg too
 * (its peer does not read what it is sent). */

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
    if (r->next_dc_path != NULL && !r->big.active) {
      take_peer_path(r, LEG_DC, r->next_dc_path);
      r->next_dc_path = NULL;
    }
    int rv = dcmf_msrp_framer_next(&r->framer, &c);
    if (rv == 1) {
      rv = r->big.active ? mrelay_streaming_end(r, &c, now)
                         : from_stream(r, &c, now);
      if (rv != 0) {
        return rv;
      }
      continue;
    }
    if (rv == 0) {
      rv = mrelay_streaming_step(r, now);
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

int dcmf_msrp_relay_recv_stream(struct dcmf_msrp_relay *r, const uint8_t *data,
                                size_t len, uint64_t now) {
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
    mrelay_note_mem(r);
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
    if (r->splits[i].used && !r->splits[i].open && r->splits[i].deadline < t) {
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
        rv = mrelay_answer_split(r, sp, 408, "Request Timeout");
      }
      r->stats.expired++;
      mrelay_split_release(r, sp);
    }
  }
  mrelay_note_mem(r);
  if (rv == 0 && !r->fatal) {
    rv = pump(r, now); /* a freed slot may resume the stream */
  }
  return rv;
}

const struct dcmf_msrp_relay_stats *
dcmf_msrp_relay_stats(const struct dcmf_msrp_relay *r) {
  return &r->stats;
}
