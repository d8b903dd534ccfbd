/*
 * Fuzz target for the frames between the control process and a media
 * worker process (dcmf/media/wire.h). The first byte picks the parser:
 * the stream reassembler, or the body decoder of one frame type. A MEDIA
 * body that decodes must survive an encode/decode round trip with the
 * same key, counts, descriptors and RTP leg; whatever fails must leave
 * the descriptors it was offered untouched.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { OFFERED_FDS = 4 };

static void reader_case(const uint8_t *data, size_t size) {
  struct dcmf_wire_reader r = {0};
  size_t half = size / 2;
  struct dcmf_wire_frame f;
  for (int pass = 0; pass < 2; pass++) {
    const uint8_t *p = pass == 0 ? data : data + half;
    size_t n = pass == 0 ? half : size - half;
    if (dcmf_wire_reader_feed(&r, p, n) != 0) {
      break;
    }
    int rv;
    while ((rv = dcmf_wire_reader_next(&r, &f)) == 1) {
      if (f.len > size || f.n_fds != 0) {
        abort(); /* a frame longer than the input, or fds from nowhere */
      }
      dcmf_wire_reader_consume(&r, &f);
    }
    if (rv < 0) {
      break;
    }
  }
  dcmf_wire_reader_free(&r);
}

/* The same RTP leg, or both absent. */
static int same_leg(const struct dcmf_media_rtpleg *a,
                    const struct dcmf_media_rtpleg *b) {
  if (a == NULL || b == NULL) {
    return a == b;
  }
  return a->rtp_fd == b->rtp_fd && a->rtcp_fd == b->rtcp_fd &&
         a->rtp_port == b->rtp_port && a->rtcp_port == b->rtcp_port &&
         a->rtcp_mux == b->rtcp_mux && a->latching == b->latching &&
         a->core_avpf == b->core_avpf && a->access_avpf == b->access_avpf &&
         memcmp(&a->remote_rtp, &b->remote_rtp, sizeof(a->remote_rtp)) == 0 &&
         memcmp(&a->remote_rtcp, &b->remote_rtcp, sizeof(a->remote_rtcp)) == 0;
}

static void media_case(const uint8_t *data, size_t size) {
  int fds[OFFERED_FDS];
  size_t n_fds = size > 0 ? data[0] % (OFFERED_FDS + 1) : 0;
  for (size_t i = 0; i < n_fds; i++) {
    fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  enum dcmf_media_op op;
  struct dcmf_media_desc d;
  int rv = dcmf_wire_decode_media(data + (size > 0), size - (size > 0), fds,
                                  n_fds, &op, &d);
  if (rv != 0) {
    for (size_t i = 0; i < n_fds; i++) {
      if (fds[i] < 0) {
        abort(); /* taken although the decode failed */
      }
      close(fds[i]);
    }
    return;
  }
  for (size_t i = 0; i < n_fds; i++) {
    if (fds[i] != -1) {
      abort(); /* a success takes every descriptor */
    }
  }
  struct dcmf_buf frame = {0};
  int out[3 + OFFERED_FDS]; /* the encoder's bound: media, MDC2, leg's */
  size_t n_out = 0;
  if (d.n_mdc2 < OFFERED_FDS &&
      dcmf_wire_encode_media(&frame, op, &d, out, &n_out) == 0) {
    struct dcmf_media_desc back;
    enum dcmf_media_op op2;
    int copy[3 + OFFERED_FDS];
    memcpy(copy, out, sizeof(out));
    if (n_out != n_fds ||
        dcmf_wire_decode_media((const uint8_t *)frame.data + DCMF_WIRE_HEADER,
                               frame.len - DCMF_WIRE_HEADER, copy, n_out, &op2,
                               &back) != 0 ||
        op2 != op || !dcmf_media_key_equal(&d.key, &back.key) ||
        back.n_streams != d.n_streams || back.n_routes != d.n_routes ||
        back.n_mdc2 != d.n_mdc2 || back.fd != d.fd ||
        !same_leg(d.rtpleg, back.rtpleg)) {
      abort();
    }
    /* |back| holds the same descriptors as |d|: free its arrays only
     * (the leg's are closed with |d|). */
    back.n_mdc2 = 0;
    if (back.rtpleg != NULL) {
      back.rtpleg->rtp_fd = back.rtpleg->rtcp_fd = -1;
    }
    dcmf_media_desc_free(&back);
  }
  dcmf_buf_free(&frame);
  if (d.fd >= 0) {
    close(d.fd);
  }
  dcmf_media_desc_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  uint8_t kind = data[0];
  data++;
  size--;
  union {
    struct dcmf_media_event ev;
    struct dcmf_wire_status st;
    struct dcmf_wire_hello hello;
  } u;
  uint32_t status;
  char text[64];
  switch (kind % 7) {
  case 0:
    reader_case(data, size);
    break;
  case 1:
    media_case(data, size);
    break;
  case 2:
    if (dcmf_wire_decode_event(data, size, &u.ev) == 0 &&
        (strlen(u.ev.event) >= sizeof(u.ev.event) ||
         strlen(u.ev.detail) >= sizeof(u.ev.detail))) {
      abort();
    }
    break;
  case 3:
    (void)dcmf_wire_decode_status(data, size, &u.st);
    break;
  case 4:
    if (dcmf_wire_decode_hello(data, size, &u.hello) == 0 &&
        ((u.hello.rsa_key_len > 0
              ? u.hello.rsa_key_der + u.hello.rsa_key_len
              : u.hello.key_der + u.hello.key_len) != data + size ||
         u.hello.index >= u.hello.n_workers)) {
      abort(); /* the identities must lie inside the body */
    }
    break;
  case 5: {
    const uint8_t *cert, *key;
    size_t cert_len, key_len;
    if (dcmf_wire_decode_rsa_identity(data, size, &cert, &cert_len, &key,
                                      &key_len) == 0 &&
        (cert_len == 0 || key_len == 0 || key + key_len != data + size)) {
      abort();
    }
    break;
  }
  default:
    if (dcmf_wire_decode_ready(data, size, &status, text, sizeof(text)) == 0 &&
        strlen(text) >= sizeof(text)) {
      abort();
    }
    break;
  }
  return 0;
}
