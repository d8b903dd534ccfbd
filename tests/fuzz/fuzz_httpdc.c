/*
 * Fuzz target for the HTTP-over-data-channel engine with the repository
 * backend. Input format: the first byte chooses settings (bits 0-3: max
 * message size 1024 + 256 * n; bits 4-6: max_pending 1..8; bit 7: write
 * out after every message instead of only when the engine pushes back),
 * the rest is split at every 0xFF byte into data-channel messages.
 *
 * Checked on the output: every message is 1..max_message_size bytes; a
 * message that starts a response begins with "HTTP/1.1 ", holds the whole
 * head, and the body bytes that follow (in it and in later messages) add
 * up to Content-Length exactly (a head-only first message with a nonzero
 * Content-Length is a HEAD response); a started response is always
 * finished; nothing is written once the engine is CLOSED.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "httpdc.h"
#include "repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      abort();                                                                 \
    }                                                                          \
  } while (0)

struct checker {
  size_t max;
  size_t remaining; /* body bytes of the current response still due */
  uint8_t *buf;
};

static size_t parse_length(const uint8_t *p, const uint8_t *end) {
  size_t v = 0;
  CHECK(p < end && *p >= '0' && *p <= '9');
  while (p < end && *p >= '0' && *p <= '9') {
    v = v * 10 + (size_t)(*p - '0');
    p++;
  }
  CHECK(p + 1 < end && p[0] == '\r' && p[1] == '\n');
  return v;
}

static void check_msg(struct checker *c, const uint8_t *m, size_t len) {
  CHECK(m != NULL && len > 0 && len <= c->max);
  if (c->remaining > 0) {
    CHECK(len <= c->remaining);
    c->remaining -= len;
    return;
  }
  CHECK(len >= 13 && memcmp(m, "HTTP/1.1 ", 9) == 0);
  CHECK(m[9] >= '1' && m[9] <= '5' && m[12] == ' ');
  const uint8_t *end = memmem(m, len, "\r\n\r\n", 4);
  CHECK(end != NULL);
  size_t head = (size_t)(end - m) + 4;
  static const char cl_name[] = "\r\nContent-Length: ";
  const uint8_t *cl = memmem(m, head, cl_name, sizeof(cl_name) - 1);
  size_t here = len - head;
  if (cl == NULL) {
    CHECK(here == 0);
    return;
  }
  size_t want = parse_length(cl + sizeof(cl_name) - 1, m + head);
  if (here == 0) {
    return; /* HEAD, or an empty body */
  }
  CHECK(here <= want);
  c->remaining = want - here;
}

/* Writes out everything the engine has now. */
static void drain(struct dcmf_httpdc *h, struct checker *c) {
  for (;;) {
    size_t len = 0;
    int rc = dcmf_httpdc_write(h, c->buf, c->max, &len);
    if (rc == DCMF_ERR_NOMEM) {
      return;
    }
    CHECK(rc == 0);
    if (len == 0) {
      break;
    }
    check_msg(c, c->buf, len);
  }
  /* Nothing writable means no response is half-written. */
  CHECK(c->remaining == 0);
}

static void feed(struct dcmf_httpdc *h, struct checker *c, const uint8_t *m,
                 size_t len, int eager) {
  for (int tries = 0;; tries++) {
    int rc = dcmf_httpdc_recv(h, m, len);
    if (rc != DCMF_ERR_EXHAUSTED) {
      CHECK(rc == 0 || rc == DCMF_ERR_NOMEM);
      break;
    }
    CHECK(tries < 64 && !dcmf_httpdc_want_read(h));
    drain(h, c);
  }
  if (eager) {
    drain(h, c);
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
  };
  int eager = (data[0] & 0x80) != 0;
  struct dcmf_httpdc_backend backend;
  dcmf_httpdc_repo_backend(&backend, repo);
  struct dcmf_httpdc *h;
  if (dcmf_httpdc_new(&h, &s, &backend) != 0) {
    dcmf_repo_del(repo);
    return 0;
  }
  struct checker c = {.max = dcmf_httpdc_max_message_size(h)};
  CHECK(c.max == s.max_message_size);
  c.buf = malloc(c.max);
  if (c.buf != NULL) {
    size_t start = 1;
    for (size_t i = 1; i <= size; i++) {
      if (i == size || data[i] == 0xFF) {
        feed(h, &c, data + start, i - start, eager);
        start = i + 1;
      }
    }
    drain(h, &c);
    if (dcmf_httpdc_get_state(h) == DCMF_HTTPDC_CLOSED) {
      size_t len = 1;
      dcmf_httpdc_write(h, c.buf, c.max, &len);
      CHECK(len == 0);
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
