/*
 * Fuzz target for the HTTP-over-data-channel engine with the repository
 * backend and a streaming backend. Input format: the first byte chooses
 * settings (bits 0-3: max message size 1024 + 256 * n, and a stream
 * buffer of 512 + 700 * n bytes; bits 4-6: max_pending 1..8; bit 7: write
 * out after every message instead of only when the engine pushes back),
 * the rest is split at every 0xFF byte into data-channel messages.
 *
 * Requests for "/~ABCD..." go to the streaming backend (each letter one
 * byte, '0' when absent):
 *   A % 8   what the stream does: 0 known length, 1 unknown length,
 *           2 known and aborted half-way, 3 unknown and aborted half-way,
 *           4 known and ended early, 5 known and offered one byte too
 *           many, 6 status 204, 7 unknown and aborted right away;
 *   A & 8   start (and feed) inside the request callback, else later;
 *   A & 16  feed more from inside |resume|, else poll;
 *   A & 96  32 (digits, punctuation): fed also while writing; 64
 *           (capitals): lazy, fed only between input messages; 96
 *           (small letters): like 32, and the run stops - the engine is
 *           deleted - once half the body is given;
 *   B, C    body length ((B & 63) * 64 + (C & 63)) * 13;
 *   D       pieces of 1..1 + (D & 63) * 41 bytes (beyond the message
 *           size they are refused with TOO_LARGE and cut).
 * Body byte i of stream |id| is (i * 131 + id) & 255. Other paths go to
 * the repository.
 *
 * Checked on the output: every message is 1..max_message_size bytes and
 * carries bytes of one response; a message that starts a response begins
 * with "HTTP/1.1 " and holds the whole head; bodies add up to
 * Content-Length exactly, chunked framing is exact, streamed bytes are
 * the ones given, in order; a response is left unfinished only when its
 * stream was aborted (or ended early) or its body is close-delimited,
 * and then the engine is CLOSED; nothing is written once the engine is
 * CLOSED; the buffered bytes stay within stream_buffer + max_message_size
 * per live stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fuzz_oracle.h"
#include "httpdc.h"
#include "repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#define MAX_STREAMS 32
#define F_SYNC 8
#define F_RESUME 16
#define F_MASK 96
#define F_LAZY 64
#define F_QUIT 96

/* ---- the streaming backend ---------------------------------------------- */

struct fstream {
  uint64_t id;
  int mode;  /* A % 8 */
  int flags; /* A & ~7 */
  int head;  /* HEAD request */
  int started;
  int done;    /* ended, aborted or cancelled: no more calls */
  int cut;     /* aborted or ended early: the body may be truncated */
  int waiting; /* refused; wait for |resume| */
  uint64_t total;
  uint64_t off; /* bytes taken */
  size_t piece;
  size_t k;
};

struct fz {
  struct dcmf_httpdc *h;
  struct dcmf_httpdc_backend repo;
  struct fstream st[MAX_STREAMS];
  size_t n;
  size_t max;
  size_t sb;
  int progress; /* bumped by every call that changed something */
  int quit;     /* stop the run and delete the engine */
};

FUZZ_ORACLE static uint8_t fz_byte(uint64_t id, uint64_t i) {
  return (uint8_t)(i * 131 + id);
}

FUZZ_ORACLE static struct fstream *fz_find(struct fz *z, uint64_t id) {
  for (size_t i = 0; i < z->n; i++) {
    if (z->st[i].id == id) {
      return &z->st[i];
    }
  }
  return NULL;
}

static int fz_start(struct fz *z, struct fstream *s) {
  char v[24];
  size_t n = 0;
  v[n++] = s->head ? 'h' : 'b';
  uint64_t x = s->id;
  char rev[21];
  size_t r = 0;
  do {
    rev[r++] = (char)('0' + x % 10);
    x /= 10;
  } while (x > 0);
  while (r > 0) {
    v[n++] = rev[--r];
  }
  struct dcmf_httpdc_header hd = {"X-Fz", 4, v, n};
  struct dcmf_httpdc_response resp = {.status = s->mode == 6 ? 204 : 200,
                                      .content_type =
                                          "application/octet-stream",
                                      .headers = &hd,
                                      .n_headers = 1};
  int known = s->mode != 1 && s->mode != 3 && s->mode != 7;
  int64_t len = known ? (int64_t)s->total : -1;
  int rc = dcmf_httpdc_respond_start(z->h, s->id, &resp, len);
  if (rc == DCMF_ERR_NOMEM) {
    return rc;
  }
  CHECK(rc == 0);
  CHECK(dcmf_httpdc_respond(z->h, s->id, &resp) == DCMF_ERR_NOT_FOUND);
  CHECK(dcmf_httpdc_respond_start(z->h, s->id, &resp, len) ==
        DCMF_ERR_NOT_FOUND);
  s->started = 1;
  z->progress++;
  if (s->mode == 7) {
    rc = dcmf_httpdc_respond_abort(z->h, s->id);
    CHECK(rc == 0 || rc == DCMF_ERR_NOMEM);
    s->done = s->cut = 1;
  }
  return 0;
}

/* The body bytes [off, off + n) of stream |id|. */
FUZZ_ORACLE static void fz_fill(uint8_t *buf, uint64_t id, uint64_t off,
                                size_t n) {
  for (size_t j = 0; j < n; j++) {
    buf[j] = fz_byte(id, off + j);
  }
}

/* Ends |s| the way its mode says, once everything was given. */
static void fz_finish(struct fz *z, struct fstream *s) {
  int rc;
  if (s->mode == 5 && !s->head) {
    uint8_t extra = 0;
    rc = dcmf_httpdc_respond_data(z->h, s->id, &extra, 1);
    CHECK(rc == DCMF_ERR_INVALID || rc == DCMF_ERR_NOMEM);
  }
  if (s->mode == 2 || s->mode == 3) {
    rc = dcmf_httpdc_respond_abort(z->h, s->id);
    CHECK(rc == 0 || rc == DCMF_ERR_NOMEM);
    s->cut = 1;
  } else {
    rc = dcmf_httpdc_respond_end(z->h, s->id);
    if (s->mode == 4 && s->total > 0 && !s->head) {
      CHECK(rc == DCMF_ERR_INVALID || rc == DCMF_ERR_NOMEM);
      s->cut = 1;
    } else {
      CHECK(rc == 0 || rc == DCMF_ERR_NOMEM);
    }
  }
  s->done = 1;
  z->progress++;
  CHECK(dcmf_httpdc_respond_end(z->h, s->id) == DCMF_ERR_NOT_FOUND);
}

/* Gives |s| up to |budget| pieces (0: until refused or all given). */
static void fz_feed(struct fz *z, struct fstream *s, size_t budget) {
  static uint8_t buf[1 + 63 * 41];
  /* Aborting half-way, ending early: give only part of the body. */
  uint64_t give = s->total;
  if (s->mode == 2 || s->mode == 3) {
    give = s->total / 2;
  } else if (s->mode == 4 && s->total > 0) {
    give = s->total - 1 - s->total / 3;
  }
  for (size_t i = 0; !s->done && (budget == 0 || i < budget); i++) {
    if ((s->flags & F_MASK) == F_QUIT && s->off >= give / 2) {
      z->quit = 1;
    }
    if (s->off >= give) {
      fz_finish(z, s);
      return;
    }
    size_t n = 1 + (s->k * 7919 + s->k / 5) % s->piece;
    if (n > give - s->off) {
      n = (size_t)(give - s->off);
    }
    fz_fill(buf, s->id, s->off, n);
    int rc = dcmf_httpdc_respond_data(z->h, s->id, buf, n);
    if (rc == DCMF_ERR_TOO_LARGE) {
      CHECK(n > z->max);
      s->piece = z->max;
      continue;
    }
    if (rc == DCMF_ERR_EXHAUSTED) {
      CHECK(!s->head && s->mode != 6);
      s->waiting = 1;
      return;
    }
    if (rc == DCMF_ERR_NOMEM) {
      return;
    }
    CHECK(rc == 0);
    s->off += n;
    s->k++;
    z->progress++;
  }
}

/* Starts and feeds the streams; |all| includes lazy ones. */
static void fz_pump(struct fz *z, int all, size_t budget) {
  for (size_t i = 0; i < z->n; i++) {
    struct fstream *s = &z->st[i];
    if (s->done || (!all && (s->flags & F_MASK) == F_LAZY)) {
      continue;
    }
    if (!s->started && fz_start(z, s) != 0) {
      continue;
    }
    /* Without a resume yet, offering again is polling: allowed too. */
    if (!s->waiting || (s->flags & F_RESUME) == 0) {
      fz_feed(z, s, budget);
    }
  }
}

static uint64_t fz_param(const char *p, size_t n, size_t i) {
  return i < n ? (uint8_t)p[i] : '0';
}

static int fz_request(void *user, struct dcmf_httpdc *h,
                      const struct dcmf_httpdc_request *req) {
  struct fz *z = user;
  z->h = h;
  if (req->path_len < 2 || memcmp(req->path, "/~", 2) != 0) {
    return z->repo.request(z->repo.user, h, req);
  }
  if (z->n == MAX_STREAMS) {
    struct dcmf_httpdc_response r = {.status = 503};
    return dcmf_httpdc_respond(h, req->id, &r);
  }
  const char *p = req->path + 2;
  size_t n = req->path_len - 2;
  struct fstream *s = &z->st[z->n++];
  memset(s, 0, sizeof(*s));
  s->id = req->id;
  uint64_t a = fz_param(p, n, 0);
  s->mode = (int)(a % 8);
  s->flags = (int)(a & ~(uint64_t)7);
  s->head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
  s->total = ((fz_param(p, n, 1) & 63) * 64 + (fz_param(p, n, 2) & 63)) * 13;
  s->piece = 1 + (size_t)(fz_param(p, n, 3) & 63) * 41;
  if (s->flags & F_SYNC) {
    if (fz_start(z, s) == 0) {
      fz_feed(z, s, 3);
    }
  }
  return 0;
}

static void fz_cancel(void *user, uint64_t id) {
  struct fz *z = user;
  struct fstream *s = fz_find(z, id);
  if (s != NULL) {
    s->done = 1;
    s->cut = 1;
  }
}

static void fz_resume(void *user, struct dcmf_httpdc *h, uint64_t id) {
  struct fz *z = user;
  CHECK(h == z->h);
  struct fstream *s = fz_find(z, id);
  CHECK(s != NULL && s->started && s->waiting && !s->done);
  s->waiting = 0;
  z->progress++;
  if (s->flags & F_RESUME) {
    fz_feed(z, s, 0);
  }
}

/* What the engine buffers stays within its bound: per stream no more
 * than was given, and less than stream_buffer + max_message_size. */
FUZZ_ORACLE static void fz_check_buffered(const struct fz *z) {
  uint64_t bound = 0;
  for (size_t i = 0; i < z->n; i++) {
    uint64_t per = z->sb + z->max - 1;
    bound += z->st[i].off < per ? z->st[i].off : per;
  }
  CHECK(dcmf_httpdc_buffered(z->h) <= bound);
}

/* ---- the output checker ------------------------------------------------- */

enum body_mode { B_NONE, B_LENGTH, B_CHUNKED, B_CLOSE };
enum chunk_state {
  C_SIZE,
  C_SIZE_LF,
  C_DATA,
  C_DATA_CR,
  C_DATA_LF,
  C_END_CR,
  C_END_LF
};

struct checker {
  size_t max;
  uint8_t *buf;
  struct fz *z;
  int mode;           /* enum body_mode of the response being written */
  int streamed;       /* it carries X-Fz */
  uint64_t id;        /* ... for this stream */
  uint64_t remaining; /* B_LENGTH: body bytes still due */
  uint64_t body;      /* streamed body bytes seen */
  int cs;             /* B_CHUNKED: enum chunk_state */
  uint64_t chunk;     /* size being read, then data bytes left */
  int digits;
  int ended_close;  /* a close-delimited body was started */
  uint64_t written; /* bytes of all messages */
};

FUZZ_ORACLE static size_t parse_length(const uint8_t *p, const uint8_t *end) {
  size_t v = 0;
  CHECK(p < end && *p >= '0' && *p <= '9');
  while (p < end && *p >= '0' && *p <= '9') {
    v = v * 10 + (size_t)(*p - '0');
    p++;
  }
  CHECK(p + 1 < end && p[0] == '\r' && p[1] == '\n');
  return v;
}

FUZZ_ORACLE static const uint8_t *find(const uint8_t *m, size_t len,
                                       const char *s) {
  return memmem(m, len, s, strlen(s));
}

/* A streamed response has completed: its body is what was given. */
FUZZ_ORACLE static void body_complete(struct checker *c) {
  if (c->streamed) {
    struct fstream *s = fz_find(c->z, c->id);
    CHECK(s != NULL && c->body == s->off);
  }
  c->mode = B_NONE;
}

FUZZ_ORACLE static void body_byte_check(struct checker *c, uint8_t b) {
  if (c->streamed) {
    CHECK(b == fz_byte(c->id, c->body));
  }
  c->body++;
}

FUZZ_ORACLE static int hex_value(uint8_t b) {
  if (b >= '0' && b <= '9') {
    return b - '0';
  }
  if (b >= 'a' && b <= 'f') {
    return b - 'a' + 10;
  }
  if (b >= 'A' && b <= 'F') {
    return b - 'A' + 10;
  }
  return -1;
}

/* Takes |len| body bytes; a response may not end before they do. */
FUZZ_ORACLE static void check_body(struct checker *c, const uint8_t *p,
                                   size_t len) {
  for (size_t i = 0; i < len; i++) {
    CHECK(c->mode != B_NONE); /* one response per message */
    uint8_t b = p[i];
    if (c->mode == B_LENGTH) {
      body_byte_check(c, b);
      if (--c->remaining == 0) {
        body_complete(c);
      }
      continue;
    }
    if (c->mode == B_CLOSE) {
      body_byte_check(c, b);
      continue;
    }
    switch (c->cs) {
    case C_SIZE:
      if (b == '\r') {
        CHECK(c->digits > 0);
        c->cs = C_SIZE_LF;
      } else {
        int v = hex_value(b);
        CHECK(v >= 0 && c->digits < 8 && (c->digits == 0 || c->chunk > 0));
        c->chunk = c->chunk * 16 + (uint64_t)v;
        c->digits++;
      }
      break;
    case C_SIZE_LF:
      CHECK(b == '\n');
      c->cs = c->chunk == 0 ? C_END_CR : C_DATA;
      break;
    case C_DATA:
      body_byte_check(c, b);
      if (--c->chunk == 0) {
        c->cs = C_DATA_CR;
      }
      break;
    case C_DATA_CR:
      CHECK(b == '\r');
      c->cs = C_DATA_LF;
      break;
    case C_DATA_LF:
      CHECK(b == '\n');
      c->cs = C_SIZE;
      c->digits = 0;
      break;
    case C_END_CR:
      CHECK(b == '\r'); /* no trailers */
      c->cs = C_END_LF;
      break;
    default:
      CHECK(b == '\n');
      body_complete(c);
      break;
    }
  }
}

FUZZ_ORACLE static void check_msg(struct checker *c, const uint8_t *m,
                                  size_t len) {
  CHECK(m != NULL && len > 0 && len <= c->max);
  c->written += len;
  CHECK(!c->ended_close || c->mode == B_CLOSE);
  if (c->mode != B_NONE) {
    check_body(c, m, len);
    return;
  }
  CHECK(len >= 13 && memcmp(m, "HTTP/1.1 ", 9) == 0);
  CHECK(m[9] >= '1' && m[9] <= '5' && m[12] == ' ');
  int status = (m[9] - '0') * 100 + (m[10] - '0') * 10 + (m[11] - '0');
  const uint8_t *end = memmem(m, len, "\r\n\r\n", 4);
  CHECK(end != NULL);
  size_t head = (size_t)(end - m) + 4;
  const uint8_t *cl = find(m, head, "\r\nContent-Length: ");
  const uint8_t *te = find(m, head, "\r\nTransfer-Encoding: chunked\r\n");
  const uint8_t *fzh = find(m, head, "\r\nX-Fz: ");
  int close = find(m, head, "\r\nConnection: close\r\n") != NULL;
  size_t here = len - head;
  size_t want = cl != NULL ? parse_length(cl + 18, m + head) : 0;
  CHECK(cl == NULL || te == NULL);
  c->streamed = fzh != NULL;
  c->body = 0;
  if (c->streamed) {
    const uint8_t *v = fzh + 8;
    CHECK(*v == 'h' || *v == 'b');
    int head_only = *v == 'h' || status == 204 || status == 304;
    c->id = parse_length(v + 1, m + head);
    struct fstream *s = fz_find(c->z, c->id);
    CHECK(s != NULL && s->started);
    if (head_only) {
      CHECK(here == 0 && te == NULL);
      CHECK(status != 204 || cl == NULL);
      return;
    }
    if (cl != NULL) {
      CHECK(want == s->total);
      c->remaining = want;
      c->mode = want > 0 ? B_LENGTH : B_NONE;
    } else if (te != NULL) {
      c->mode = B_CHUNKED;
      c->cs = C_SIZE;
      c->chunk = 0;
      c->digits = 0;
    } else {
      CHECK(close); /* HTTP/1.0, unknown length */
      c->mode = B_CLOSE;
      c->ended_close = 1;
    }
    check_body(c, m + head, here);
    return;
  }
  CHECK(te == NULL);
  if (cl == NULL) {
    CHECK(here == 0);
    return;
  }
  if (here == 0) {
    return; /* HEAD, or an empty body */
  }
  CHECK(here <= want);
  c->mode = B_LENGTH;
  c->remaining = want;
  check_body(c, m + head, here);
}

/* ---- the driver --------------------------------------------------------- */

/* Writes out everything the engine has now, feeding non-lazy streams. */
static void drain(struct dcmf_httpdc *h, struct checker *c) {
  while (!c->z->quit) {
    size_t len = 0;
    int rc = dcmf_httpdc_write(h, c->buf, c->max, &len);
    if (rc == DCMF_ERR_NOMEM) {
      return;
    }
    CHECK(rc == 0);
    fz_check_buffered(c->z);
    if (len > 0) {
      check_msg(c, c->buf, len);
      if (dcmf_httpdc_get_state(h) != DCMF_HTTPDC_CLOSED) {
        fz_pump(c->z, 0, 0);
      }
      continue;
    }
    CHECK(!dcmf_httpdc_want_write(h));
    int before = c->z->progress;
    fz_pump(c->z, 0, 0);
    if (c->z->progress == before) {
      break;
    }
  }
  /* Nothing writable: only a streamed response can be half-written. */
  CHECK(c->mode == B_NONE || c->streamed || c->z->quit);
}

static void feed(struct dcmf_httpdc *h, struct checker *c, const uint8_t *m,
                 size_t len, int eager) {
  while (!c->z->quit) {
    int rc = dcmf_httpdc_recv(h, m, len);
    if (rc != DCMF_ERR_EXHAUSTED) {
      CHECK(rc == 0 || rc == DCMF_ERR_NOMEM);
      break;
    }
    CHECK(!dcmf_httpdc_want_read(h));
    /* Every round must get somewhere: the queue frees up eventually. */
    int before = c->z->progress;
    uint64_t written = c->written;
    fz_pump(c->z, 1, 0);
    drain(h, c);
    CHECK(c->z->progress != before || c->written != written);
  }
  fz_pump(c->z, 1, 4);
  fz_check_buffered(c->z);
  if (eager) {
    drain(h, c);
  }
}

/* Runs the streams to their end (as far as the engine lets them). */
static void finish(struct dcmf_httpdc *h, struct checker *c) {
  for (int rounds = 0; rounds < 100000 && !c->z->quit; rounds++) {
    int before = c->z->progress;
    fz_pump(c->z, 1, 0);
    drain(h, c);
    if (c->z->progress == before) {
      break;
    }
  }
  drain(h, c);
  if (c->mode == B_NONE || c->z->quit) {
    return;
  }
  /* Left unfinished: a close-delimited body, or a cut stream. */
  CHECK(c->streamed);
  CHECK(dcmf_httpdc_get_state(h) == DCMF_HTTPDC_CLOSED);
  struct fstream *s = fz_find(c->z, c->id);
  CHECK(s != NULL);
  if (c->mode == B_CLOSE) {
    CHECK(s->cut || c->body == s->off);
  } else {
    CHECK(s->cut);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  struct dcmf_repo *repo;
  if (dcmf_repo_new(&repo, NULL) != 0) {
    return 0;
  }
  static const char index_html[] = "<!doctype html><title>x</title>\n";
  static const char app_js[] = "console.log(1);\n";
  uint8_t big[5000];
  for (size_t i = 0; i < sizeof(big); i++) {
    big[i] = (uint8_t)('a' + i % 26);
  }
  if (dcmf_repo_add(repo, "index.html", index_html, strlen(index_html)) ||
      dcmf_repo_add(repo, "app.js", app_js, strlen(app_js)) ||
      dcmf_repo_add(repo, "apps/notes/index.html", index_html,
                    strlen(index_html)) ||
      dcmf_repo_add(repo, "big.bin", big, sizeof(big)) ||
      dcmf_repo_add(repo, "empty.txt", NULL, 0)) {
    dcmf_repo_del(repo);
    return 0;
  }
  struct dcmf_httpdc_settings s = {
      .max_message_size = 1024 + 256 * (size_t)(data[0] & 15),
      .max_request_line = 512,
      .max_header_bytes = 1024,
      .max_headers = 16,
      .max_pending = 1 + (size_t)((data[0] >> 4) & 7),
      .stream_buffer = 512 + 700 * (size_t)(data[0] & 15),
  };
  int eager = (data[0] & 0x80) != 0;
  static struct fz z;
  memset(&z, 0, sizeof(z));
  dcmf_httpdc_repo_backend(&z.repo, repo);
  struct dcmf_httpdc_backend backend = {.request = fz_request,
                                        .cancel = fz_cancel,
                                        .user = &z,
                                        .resume = fz_resume};
  struct dcmf_httpdc *h;
  if (dcmf_httpdc_new(&h, &s, &backend) != 0) {
    dcmf_repo_del(repo);
    return 0;
  }
  z.h = h;
  z.max = dcmf_httpdc_max_message_size(h);
  z.sb = s.stream_buffer;
  struct checker c = {.max = z.max, .z = &z};
  CHECK(c.max == s.max_message_size);
  c.buf = malloc(c.max);
  if (c.buf != NULL) {
    size_t start = 1;
    for (size_t i = 1; i <= size && !z.quit; i++) {
      if (i == size || data[i] == 0xFF) {
        feed(h, &c, data + start, i - start, eager);
        start = i + 1;
      }
    }
    finish(h, &c);
    if (!z.quit && dcmf_httpdc_get_state(h) == DCMF_HTTPDC_CLOSED) {
      size_t len = 1;
      dcmf_httpdc_write(h, c.buf, c.max, &len);
      CHECK(len == 0);
      CHECK(dcmf_httpdc_buffered(h) == 0);
      CHECK(dcmf_httpdc_recv(h, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n",
                             18) == 0);
      CHECK(!dcmf_httpdc_want_write(h));
    }
  }
  free(c.buf);
  dcmf_httpdc_del(h);
  dcmf_repo_del(repo);
  return 0;
}
