/* msrp_wire.c - see msrp_wire.h. */
#include "msrp_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UE_URI "msrps://127.0.0.1:2856/ue;tcp"
#define CORE_URI "msrp://127.0.0.1:2855/core;tcp"
#define HEAD_MAX 4096

static void tid_of(char out[MSRP_TID_LEN + 1], int up, int pair, uint64_t seq) {
  snprintf(out, MSRP_TID_LEN + 1, "%c%02x%09" PRIx64, up ? 'u' : 'd', pair & 0xff,
           (uint64_t)(seq & 0xfffffffffULL));
}

void msrp_msg_build(struct msrp_msg *m, int up, int pair, size_t size) {
  if (m->data == NULL) {
    m->data = malloc(MSRP_BODY_MAX + 1024);
    if (m->data == NULL) {
      abort();
    }
  }
  m->up = up;
  m->pair = pair;
  char tid[MSRP_TID_LEN + 1];
  tid_of(tid, up, pair, 0);
  char *d = (char *)m->data;
  int h = snprintf(d, 1024,
                   "MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\nMessage-ID: m%s\r\n"
                   "Byte-Range: 1-%zu/%zu\r\nContent-Type: text/plain\r\n\r\n",
                   tid, up ? CORE_URI : UE_URI, up ? UE_URI : CORE_URI, tid, size, size);
  m->tid_at[0] = 5;
  m->tid_at[1] = (size_t)(strstr(d, "Message-ID: m") - d) + 13;
  m->body_at = (size_t)h;
  m->body_len = size;
  m->tid_at[2] = m->body_at;
  /* Lower-case letters only: the end-line ("-------" + tid) cannot occur
   * in the body (§7.1). */
  for (size_t i = 0; i < size; i++) {
    m->data[m->body_at + i] = (unsigned char)('a' + (i * 7 + i / 26) % 26);
  }
  size_t e = m->body_at + size;
  memcpy(m->data + e, "\r\n-------", 9);
  m->tid_at[3] = e + 9;
  memcpy(m->data + e + 9 + MSRP_TID_LEN, "$\r\n", 3);
  m->len = e + 9 + MSRP_TID_LEN + 3;
  msrp_msg_stamp(m, 0);
}

void msrp_msg_free(struct msrp_msg *m) {
  free(m->data);
  m->data = NULL;
}

void msrp_msg_stamp(struct msrp_msg *m, uint64_t seq) {
  char tid[MSRP_TID_LEN + 1];
  tid_of(tid, m->up, m->pair, seq);
  for (int i = 0; i < 4; i++) {
    memcpy(m->data + m->tid_at[i], tid, MSRP_TID_LEN);
  }
}

static int bad(char *why, size_t len, const char *what) {
  snprintf(why, len, "%s", what);
  return -1;
}

/* The value of header |name| in the header block [h, end), or NULL;
 * |vlen| its length. Header lines are "Name: value" CRLF (§9). */
static const char *header(const char *h, const char *end, const char *name, size_t *vlen) {
  size_t nl = strlen(name);
  while (h < end) {
    const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
    if (eol == NULL) {
      eol = end;
    }
    if ((size_t)(eol - h) > nl + 2 && memcmp(h, name, nl) == 0 && h[nl] == ':' &&
        h[nl + 1] == ' ') {
      *vlen = (size_t)(eol - h) - nl - 2;
      return h + nl + 2;
    }
    h = eol + 2;
  }
  return NULL;
}

int msrp_take_send(const unsigned char *buf, size_t n, const struct msrp_msg *expect,
                   int up, uint64_t seq, unsigned char *resp, size_t *used, size_t *body,
                   char *why, size_t why_len) {
  const char *b = (const char *)buf;
  if (n < 5) {
    return 0;
  }
  if (memcmp(b, "MSRP ", 5) != 0) {
    return bad(why, why_len, "a chunk does not start with \"MSRP \"");
  }
  const char *hend = memmem(b, n < HEAD_MAX ? n : HEAD_MAX, "\r\n\r\n", 4);
  if (hend == NULL) {
    return n >= HEAD_MAX ? bad(why, why_len, "no end of headers in 4096 bytes") : 0;
  }
  char tid[MSRP_TID_LEN + 1];
  tid_of(tid, up, expect->pair, seq);
  const char *sp = memchr(b + 5, ' ', (size_t)(hend - b) - 5);
  if (sp == NULL || (size_t)(sp - b - 5) != MSRP_TID_LEN ||
      memcmp(b + 5, tid, MSRP_TID_LEN) != 0 || memcmp(sp, " SEND\r\n", 7) != 0) {
    return bad(why, why_len, "not the SEND expected next (transaction id or order)");
  }
  const char *h = sp + 7, *he = hend + 2;
  size_t to_len, from_len, br_len, ct_len;
  const char *to = header(h, he, "To-Path", &to_len);
  const char *from = header(h, he, "From-Path", &from_len);
  const char *br = header(h, he, "Byte-Range", &br_len);
  const char *ct = header(h, he, "Content-Type", &ct_len);
  if (to == NULL || from == NULL || br == NULL || ct == NULL || ct + ct_len + 2 != he ||
      to > from) {
    return bad(why, why_len, "headers missing or out of order");
  }
  size_t start, end, total;
  char brs[64];
  snprintf(brs, sizeof(brs), "%.*s", (int)(br_len < 63 ? br_len : 63), br);
  if (sscanf(brs, "%zu-%zu/%zu", &start, &end, &total) != 3 || start != 1 ||
      end != total || end != expect->body_len) {
    return bad(why, why_len, "Byte-Range is not 1-N/N of the size sent");
  }
  size_t body_at = (size_t)(hend - b) + 4;
  size_t need = body_at + end + 9 + MSRP_TID_LEN + 3;
  if (n < need) {
    return 0;
  }
  const unsigned char *e = buf + body_at + end;
  if (memcmp(e, "\r\n-------", 9) != 0 || memcmp(e + 9, tid, MSRP_TID_LEN) != 0 ||
      memcmp(e + 9 + MSRP_TID_LEN, "$\r\n", 3) != 0) {
    return bad(why, why_len, "no end-line where the Byte-Range puts it");
  }
  if (memcmp(buf + body_at, tid, MSRP_TID_LEN) != 0 ||
      memcmp(buf + body_at + MSRP_TID_LEN, expect->data + expect->body_at + MSRP_TID_LEN,
             end - MSRP_TID_LEN) != 0) {
    return bad(why, why_len, "the body is not what was sent");
  }
  /* §7.2: To-Path is the first URI of the From-Path, From-Path ours. */
  const char *fsp = memchr(from, ' ', from_len);
  size_t first = fsp != NULL ? (size_t)(fsp - from) : from_len;
  int r = snprintf((char *)resp, 512, "MSRP %s 200 OK\r\nTo-Path: %.*s\r\nFrom-Path: %.*s\r\n"
                   "-------%s$\r\n", tid, (int)first, from, (int)to_len, to, tid);
  if (r <= 0 || r >= 512) {
    return bad(why, why_len, "paths too long for a response");
  }
  *used = need;
  *body = end;
  return r;
}

int msrp_take_200(const unsigned char *buf, size_t n, int up, int pair, uint64_t seq,
                  size_t *used, char *why, size_t why_len) {
  const char *b = (const char *)buf;
  const char *d = memmem(b, n, "\r\n-------", 9);
  if (d == NULL) {
    return n >= HEAD_MAX ? bad(why, why_len, "no end-line in 4096 bytes") : 0;
  }
  size_t end = (size_t)(d - b) + 9 + MSRP_TID_LEN + 3;
  if (n < end) {
    return 0;
  }
  char tid[MSRP_TID_LEN + 1];
  tid_of(tid, up, pair, seq);
  if (n < 5 + MSRP_TID_LEN + 4 || memcmp(b, "MSRP ", 5) != 0 ||
      memcmp(b + 5, tid, MSRP_TID_LEN) != 0 || memcmp(b + 5 + MSRP_TID_LEN, " 200", 4) != 0) {
    return bad(why, why_len, "not a 200 for the oldest unanswered SEND");
  }
  if (memcmp(d + 9, tid, MSRP_TID_LEN) != 0 || memcmp(d + 9 + MSRP_TID_LEN, "$\r\n", 3) != 0) {
    return bad(why, why_len, "the response's end-line does not match");
  }
  *used = end;
  return 1;
}
