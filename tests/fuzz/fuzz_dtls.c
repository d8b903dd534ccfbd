/*
 * Fuzz target for the DTLS entry point of a media session: the first
 * flight and every record a phone can send to dcmfd's server-role
 * engine (dcmf_dtls_recv), driven by a script of operations so that the
 * fuzzer can both inject raw datagrams and corrupt a real handshake made
 * by a client engine in memory.
 *
 * Input: byte 0 holds flags, then operations of one opcode byte each,
 * some followed by a 2-byte big-endian length and that many bytes:
 *
 *   0  carry the client's queued datagrams to the server unchanged
 *   1  LEN BYTES: one raw datagram to the server
 *   2  OFFSET(2) VALUE(1): xor VALUE into the client's next datagram at
 *      OFFSET (modulo its length), then carry it to the server
 *   3  carry the server's queued datagrams to the client
 *   4  set the server's remote fingerprint (flag bit 0: a wrong one)
 *   5  let both engines handle their retransmission timers
 *   6  LEN BYTES: application data from the client (once connected)
 *
 * Properties checked on every input (abort() on violation):
 * - the server sends nothing before its remote fingerprint is set
 *   (TS 23.334: the held flight is answered only then);
 * - with a wrong fingerprint the server never connects and never hands
 *   up application data;
 * - application data reaches the server only once it is connected.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "dtls.h"
#include "errors.h"
#include "fingerprint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QMAX 32

struct side {
  struct dcmf_dtls *dtls;
  uint8_t *out[QMAX];
  size_t out_len[QMAX];
  size_t n_out;
  size_t sent;
  size_t app_bytes;
  enum dcmf_dtls_state state;
};

/* Certificates cost a key generation each; the fuzzer makes them once
 * for the whole run (test code only: the daemon has no such state). */
struct identities {
  int ready;
  struct dcmf_cert client_cert, server_cert;
  struct dcmf_dtls_ctx client_ctx, server_ctx;
  struct dcmf_fingerprint_set client_fp, wrong_fp;
};

static struct identities *identities(void) {
  static struct identities ids;
  if (!ids.ready) {
    char err[256];
    if (dcmf_cert_generate(&ids.client_cert, err, sizeof(err)) != 0 ||
        dcmf_cert_generate(&ids.server_cert, err, sizeof(err)) != 0 ||
        dcmf_dtls_ctx_init(&ids.client_ctx, ids.client_cert.x509,
                           ids.client_cert.pkey, 1200) != 0 ||
        dcmf_dtls_ctx_init(&ids.server_ctx, ids.server_cert.x509,
                           ids.server_cert.pkey, 1200) != 0 ||
        dcmf_fingerprint_parse(ids.client_cert.fingerprint,
                               &ids.client_fp) != 0 ||
        dcmf_fingerprint_parse(ids.server_cert.fingerprint,
                               &ids.wrong_fp) != 0) {
      abort();
    }
    ids.ready = 1;
  }
  return &ids;
}

static void on_send(void *user, const uint8_t *data, size_t len) {
  struct side *s = user;
  s->sent++;
  if (s->n_out == QMAX) {
    return; /* lost, as on a congested path */
  }
  s->out[s->n_out] = malloc(len);
  if (s->out[s->n_out] == NULL) {
    return;
  }
  memcpy(s->out[s->n_out], data, len);
  s->out_len[s->n_out++] = len;
}

static void on_recv(void *user, const uint8_t *data, size_t len) {
  (void)data;
  struct side *s = user;
  if (s->state != DCMF_DTLS_CONNECTED) {
    abort(); /* application data before the handshake completed */
  }
  s->app_bytes += len;
}

static void on_state(void *user, enum dcmf_dtls_state state,
                     const char *reason) {
  struct side *s = user;
  if (reason == NULL) {
    abort();
  }
  s->state = state;
}

static const struct dcmf_dtls_callbacks cbs = {on_send, on_recv, on_state, NULL};

/* Removes and returns the oldest queued datagram of |s| (caller frees). */
static uint8_t *pop(struct side *s, size_t *len) {
  if (s->n_out == 0) {
    return NULL;
  }
  uint8_t *d = s->out[0];
  *len = s->out_len[0];
  memmove(s->out, s->out + 1, (s->n_out - 1) * sizeof(s->out[0]));
  memmove(s->out_len, s->out_len + 1, (s->n_out - 1) * sizeof(s->out_len[0]));
  s->n_out--;
  return d;
}

static void carry(struct side *from, struct side *to) {
  size_t len;
  uint8_t *d;
  /* Only what is queued now: answers produced meanwhile wait. */
  for (size_t n = from->n_out; n > 0 && (d = pop(from, &len)) != NULL; n--) {
    dcmf_dtls_recv(to->dtls, d, len);
    free(d);
  }
}

static void drop_all(struct side *s) {
  for (size_t i = 0; i < s->n_out; i++) {
    free(s->out[i]);
  }
  s->n_out = 0;
}

/* Reads a 2-byte length and that many bytes; returns 0 if they are there. */
static int take(const uint8_t **p, const uint8_t *end, const uint8_t **bytes,
                size_t *len) {
  if (end - *p < 2) {
    return -1;
  }
  size_t n = (size_t)((*p)[0] << 8 | (*p)[1]);
  *p += 2;
  if ((size_t)(end - *p) < n) {
    n = (size_t)(end - *p);
  }
  *bytes = *p;
  *len = n;
  *p += n;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  struct identities *ids = identities();
  int wrong_fp = data[0] & 1;
  struct side client = {0}, server = {0};
  if (dcmf_dtls_new(&server.dtls, &ids->server_ctx, 1, &cbs, &server) != 0 ||
      dcmf_dtls_new(&client.dtls, &ids->client_ctx, 0, &cbs, &client) != 0) {
    abort();
  }
  /* The client knows the server's fingerprint (the SDP answer). */
  struct dcmf_fingerprint_set server_fp;
  memset(&server_fp, 0, sizeof(server_fp));
  if (dcmf_fingerprint_parse(ids->server_cert.fingerprint, &server_fp) != 0 ||
      dcmf_dtls_set_remote_fingerprints(client.dtls, &server_fp) != 0) {
    abort();
  }
  dcmf_dtls_start(client.dtls);
  int fp_set = 0;
  const uint8_t *p = data + 1, *end = data + size;
  /* A bounded script: each operation consumes at least one byte. */
  while (p < end) {
    uint8_t op = *p++;
    const uint8_t *bytes;
    size_t len;
    switch (op % 7) {
    case 0:
      carry(&client, &server);
      break;
    case 1:
      if (take(&p, end, &bytes, &len) == 0) {
        dcmf_dtls_recv(server.dtls, bytes, len);
      }
      break;
    case 2: {
      if (end - p < 3) {
        p = end;
        break;
      }
      size_t offset = (size_t)(p[0] << 8 | p[1]);
      uint8_t value = p[2];
      p += 3;
      uint8_t *d = pop(&client, &len);
      if (d != NULL) {
        d[offset % len] ^= value;
        dcmf_dtls_recv(server.dtls, d, len);
        free(d);
      }
      break;
    }
    case 3:
      carry(&server, &client);
      break;
    case 4:
      if (!fp_set) {
        fp_set = 1;
        dcmf_dtls_set_remote_fingerprints(
            server.dtls, wrong_fp ? &ids->wrong_fp : &ids->client_fp);
      }
      break;
    case 5:
      dcmf_dtls_handle_timeout(server.dtls);
      dcmf_dtls_handle_timeout(client.dtls);
      break;
    case 6:
      if (take(&p, end, &bytes, &len) == 0 &&
          dcmf_dtls_state(client.dtls) == DCMF_DTLS_CONNECTED && len > 0) {
        dcmf_dtls_send(client.dtls, bytes, len);
      }
      break;
    }
    if (!fp_set && server.sent != 0) {
      abort(); /* answered a flight before the fingerprint was known */
    }
    if (wrong_fp && (server.state == DCMF_DTLS_CONNECTED ||
                     server.app_bytes != 0)) {
      abort(); /* a peer with the wrong certificate got through */
    }
  }
  drop_all(&client);
  drop_all(&server);
  dcmf_dtls_del(client.dtls);
  dcmf_dtls_del(server.dtls);
  return 0;
}
