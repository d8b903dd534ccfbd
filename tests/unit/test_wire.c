/*
 * test_wire.c - the frames between the control process and a media worker
 * process (dcmf/media/wire.h) and the link that carries them
 * (dcmf/media/wlink.h): round trips of every frame kind, a reader fed in
 * pieces, refusal of truncated, lying and unterminated frames, and over a
 * real socket pair: descriptors beyond one sendmsg's limit, partial
 * writes into a small socket buffer, the limit on refusable frames, and
 * the far end's close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "errors.h"
#include "wire.h"
#include "wlink.h"

static int udp_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  return fd;
}

static ino_t inode_of(int fd) {
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  return st.st_ino;
}

/* A description with every kind of member set, and |n_mdc2| MDC2 ports
 * of which every other one has a descriptor. */
static void desc_fill(struct dcmf_media_desc *d, size_t n_mdc2) {
  memset(d, 0, sizeof(*d));
  strcpy(d->key.context_id, "0b8d6a4e-6f1e-4d55-9d6a-2f3c1e5b7a90");
  strcpy(d->key.termination_id, "ue-a");
  strcpy(d->key.media_id, "1");
  d->fd = udp_socket();
  d->port = 40002;
  strcpy(d->local_ufrag, "abcd1234");
  strcpy(d->remote_tls_id, "tls-id-of-the-phone-0123456789");
  d->dtls_server = 1;
  d->assoc = DCMF_ASSOC_SCTP;
  d->max_message_size = 65536;
  d->n_streams = 3;
  d->streams = calloc(3, sizeof(*d->streams));
  for (uint16_t i = 0; i < 3; i++) {
    d->streams[i].sid = (uint16_t)(1000 + i);
    snprintf(d->streams[i].protocol, sizeof(d->streams[i].protocol), "p%u",
             (unsigned)i);
  }
  d->http_proxy = 1;
  d->n_routes = 2;
  d->routes = calloc(2, sizeof(*d->routes));
  d->routes[0].sid = 0;
  strcpy(d->routes[0].url, "http://127.0.0.1:8080/a");
  d->routes[1].sid = 1000;
  memset(d->routes[1].url, 'u', sizeof(d->routes[1].url) - 1); /* longest */
  d->n_mdc2 = n_mdc2;
  d->mdc2 = n_mdc2 > 0 ? calloc(n_mdc2, sizeof(*d->mdc2)) : NULL;
  for (size_t i = 0; i < n_mdc2; i++) {
    d->mdc2[i].sid = (uint16_t)(1000 + i);
    d->mdc2[i].port = (uint16_t)(41000 + i);
    d->mdc2[i].fd = i % 2 == 0 ? udp_socket() : -1;
    d->mdc2[i].text = (int)(i % 3 == 0);
  }
  d->has_relay = 1;
  strcpy(d->relay.media_id, "2");
}

static void desc_close_all(struct dcmf_media_desc *d) {
  if (d->fd >= 0) {
    close(d->fd);
  }
  dcmf_media_desc_free(d); /* closes the MDC2 descriptors */
}

/* The same description, descriptors compared by the socket they name. */
static void assert_desc_equal(const struct dcmf_media_desc *a,
                              const struct dcmf_media_desc *b) {
  assert_true(dcmf_media_key_equal(&a->key, &b->key));
  assert_int_equal(inode_of(a->fd), inode_of(b->fd));
  assert_int_equal(a->port, b->port);
  assert_string_equal(a->local_ufrag, b->local_ufrag);
  assert_string_equal(a->remote_tls_id, b->remote_tls_id);
  assert_int_equal(a->dtls_server, b->dtls_server);
  assert_int_equal(a->max_message_size, b->max_message_size);
  assert_int_equal(a->n_streams, b->n_streams);
  for (size_t i = 0; i < a->n_streams; i++) {
    assert_int_equal(a->streams[i].sid, b->streams[i].sid);
    assert_string_equal(a->streams[i].protocol, b->streams[i].protocol);
  }
  assert_int_equal(a->n_routes, b->n_routes);
  for (size_t i = 0; i < a->n_routes; i++) {
    assert_int_equal(a->routes[i].sid, b->routes[i].sid);
    assert_string_equal(a->routes[i].url, b->routes[i].url);
  }
  assert_int_equal(a->n_mdc2, b->n_mdc2);
  for (size_t i = 0; i < a->n_mdc2; i++) {
    assert_int_equal(a->mdc2[i].sid, b->mdc2[i].sid);
    assert_int_equal(a->mdc2[i].port, b->mdc2[i].port);
    assert_int_equal(a->mdc2[i].text, b->mdc2[i].text);
    assert_int_equal(a->mdc2[i].fd < 0, b->mdc2[i].fd < 0);
    if (a->mdc2[i].fd >= 0) {
      assert_int_equal(inode_of(a->mdc2[i].fd), inode_of(b->mdc2[i].fd));
    }
  }
  assert_int_equal(a->has_relay, b->has_relay);
  assert_true(dcmf_media_key_equal(&a->relay, &b->relay));
}

/* Encodes |d|, feeds the frame to a reader |step| bytes at a time with a
 * dup of each descriptor (as a receiving socket would give them), and
 * decodes it into |out|. */
static void roundtrip(const struct dcmf_media_desc *d, size_t step,
                      struct dcmf_media_desc *out) {
  struct dcmf_buf frame = {0};
  int fds[64];
  size_t n_fds = 0;
  assert_int_equal(dcmf_wire_encode_media(&frame, DCMF_MEDIA_OP_ADD, d, fds,
                                          &n_fds),
                   0);
  struct dcmf_wire_reader r = {0};
  for (size_t i = 0; i < n_fds; i++) {
    assert_int_equal(dcmf_wire_reader_add_fd(&r, dup(fds[i])), 0);
  }
  struct dcmf_wire_frame f;
  size_t off = 0;
  while (off < frame.len) {
    assert_int_equal(dcmf_wire_reader_next(&r, &f), 0); /* not yet */
    size_t n = frame.len - off < step ? frame.len - off : step;
    assert_int_equal(
        dcmf_wire_reader_feed(&r, (const uint8_t *)frame.data + off, n), 0);
    off += n;
  }
  assert_int_equal(dcmf_wire_reader_next(&r, &f), 1);
  assert_int_equal(f.type, DCMF_WIRE_MEDIA);
  assert_int_equal(f.n_fds, n_fds);
  enum dcmf_media_op op;
  assert_int_equal(
      dcmf_wire_decode_media(f.body, f.len, f.fds, f.n_fds, &op, out), 0);
  assert_int_equal(op, DCMF_MEDIA_OP_ADD);
  dcmf_wire_reader_consume(&r, &f);
  assert_int_equal(dcmf_wire_reader_next(&r, &f), 0);
  dcmf_wire_reader_free(&r);
  dcmf_buf_free(&frame);
}

static void test_media_roundtrip(void **state) {
  (void)state;
  struct dcmf_media_desc d, back;
  desc_fill(&d, 5);
  roundtrip(&d, 1, &back); /* one byte at a time */
  assert_desc_equal(&d, &back);
  desc_close_all(&back);
  roundtrip(&d, 7000, &back);
  assert_desc_equal(&d, &back);
  desc_close_all(&back);
  desc_close_all(&d);
  /* A REMOVE: only the key, no descriptors, no arrays. */
  struct dcmf_media_desc rm = {.fd = -1};
  strcpy(rm.key.context_id, "c");
  struct dcmf_buf frame = {0};
  int fds[1];
  size_t n_fds = 9;
  assert_int_equal(dcmf_wire_encode_media(&frame, DCMF_MEDIA_OP_REMOVE, &rm,
                                          fds, &n_fds),
                   0);
  assert_int_equal(n_fds, 0);
  enum dcmf_media_op op;
  assert_int_equal(dcmf_wire_decode_media((const uint8_t *)frame.data +
                                              DCMF_WIRE_HEADER,
                                          frame.len - DCMF_WIRE_HEADER, NULL,
                                          0, &op, &back),
                   0);
  assert_int_equal(op, DCMF_MEDIA_OP_REMOVE);
  assert_string_equal(back.key.context_id, "c");
  assert_int_equal(back.fd, -1);
  dcmf_media_desc_free(&back);
  dcmf_buf_free(&frame);
}

/* Every prefix of a valid body, a wrong descriptor count, an unterminated
 * string and a lying count are refused, the descriptors left alone. */
static void test_media_refusals(void **state) {
  (void)state;
  struct dcmf_media_desc d, back;
  desc_fill(&d, 3);
  struct dcmf_buf frame = {0};
  int fds[8];
  size_t n_fds = 0;
  assert_int_equal(dcmf_wire_encode_media(&frame, DCMF_MEDIA_OP_UPDATE, &d,
                                          fds, &n_fds),
                   0);
  assert_int_equal(n_fds, 3); /* the media's own and two MDC2 ports */
  uint8_t *body = (uint8_t *)frame.data + DCMF_WIRE_HEADER;
  size_t len = frame.len - DCMF_WIRE_HEADER;
  enum dcmf_media_op op;
  for (size_t cut = 0; cut < len; cut++) {
    assert_int_equal(dcmf_wire_decode_media(body, cut, fds, n_fds, &op, &back),
                     DCMF_ERR_MALFORMED);
  }
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds - 1, &op,
                                          &back),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(fds[0], d.fd); /* untouched on failure */
  /* The description's bytes follow the op: break a string, then a count. */
  struct dcmf_media_desc *raw = (void *)(body + sizeof(uint32_t));
  struct dcmf_media_desc saved;
  memcpy(&saved, raw, sizeof(saved));
  memset(raw->local_ufrag, 'x', sizeof(raw->local_ufrag));
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
                   DCMF_ERR_MALFORMED);
  memcpy(raw, &saved, sizeof(saved));
  raw->n_streams = 1000000;
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
                   DCMF_ERR_MALFORMED);
  memcpy(raw, &saved, sizeof(saved));
  raw->remote_fp.count = DCMF_FINGERPRINTS_MAX + 1;
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
                   DCMF_ERR_MALFORMED);
  memcpy(raw, &saved, sizeof(saved));
  assert_int_equal(dcmf_wire_decode_media(body, len + 0, fds, n_fds, &op,
                                          &back),
                   0);
  dcmf_media_desc_free(&back); /* took the dups... of the originals */
  d.fd = -1; /* |back| owned them: nothing left to close in |d| */
  for (size_t i = 0; i < d.n_mdc2; i++) {
    d.mdc2[i].fd = -1;
  }
  dcmf_media_desc_free(&d);
  dcmf_buf_free(&frame);
}

/* An e2ae description: the RTP leg and its sockets travel with it. */
static struct dcmf_media_rtpleg *leg_fill(struct dcmf_media_desc *d, int mux) {
  desc_fill(d, 0);
  d->assoc = DCMF_ASSOC_SRTP;
  struct dcmf_media_rtpleg *l = calloc(1, sizeof(*l));
  assert_non_null(l);
  l->rtp_fd = udp_socket();
  l->rtcp_fd = mux ? -1 : udp_socket();
  l->rtp_port = 42000;
  l->rtcp_port = mux ? 0 : 42001;
  struct sockaddr_in *a = (struct sockaddr_in *)&l->remote_rtp;
  a->sin_family = AF_INET;
  a->sin_port = htons(6000);
  a->sin_addr.s_addr = htonl(0x7f000001);
  memcpy(&l->remote_rtcp, &l->remote_rtp, sizeof(l->remote_rtp));
  if (!mux) {
    ((struct sockaddr_in *)&l->remote_rtcp)->sin_port = htons(6001);
  }
  l->rtcp_mux = mux;
  l->latching = 1;
  l->core_avpf = !mux;
  l->access_avpf = 1;
  d->rtpleg = l;
  return l;
}

static void leg_close_all(struct dcmf_media_desc *d) {
  desc_close_all(d); /* closes the leg's descriptors */
}

static void test_media_rtpleg(void **state) {
  (void)state;
  for (int mux = 0; mux <= 1; mux++) {
    struct dcmf_media_desc d, back;
    struct dcmf_media_rtpleg *l = leg_fill(&d, mux);
    roundtrip(&d, 3, &back);
    assert_desc_equal(&d, &back);
    assert_int_equal(back.assoc, DCMF_ASSOC_SRTP);
    assert_non_null(back.rtpleg);
    assert_ptr_not_equal(back.rtpleg, l);
    struct dcmf_media_rtpleg *b = back.rtpleg;
    assert_int_equal(inode_of(b->rtp_fd), inode_of(l->rtp_fd));
    if (mux) {
      assert_int_equal(b->rtcp_fd, -1);
    } else {
      assert_int_equal(inode_of(b->rtcp_fd), inode_of(l->rtcp_fd));
    }
    assert_int_equal(b->rtp_port, l->rtp_port);
    assert_int_equal(b->rtcp_port, l->rtcp_port);
    assert_memory_equal(&b->remote_rtp, &l->remote_rtp, sizeof(l->remote_rtp));
    assert_memory_equal(&b->remote_rtcp, &l->remote_rtcp,
                        sizeof(l->remote_rtcp));
    assert_int_equal(b->rtcp_mux, mux);
    assert_int_equal(b->latching, 1);
    assert_int_equal(b->core_avpf, !mux);
    assert_int_equal(b->access_avpf, 1);
    leg_close_all(&back);
    leg_close_all(&d);
  }
  /* An UPDATE: the leg without descriptors. */
  struct dcmf_media_desc d, back;
  struct dcmf_media_rtpleg *l = leg_fill(&d, 0);
  close(d.fd);
  d.fd = -1;
  close(l->rtp_fd);
  close(l->rtcp_fd);
  l->rtp_fd = l->rtcp_fd = -1;
  struct dcmf_buf frame = {0};
  int fds[4];
  size_t n_fds = 9;
  assert_int_equal(
      dcmf_wire_encode_media(&frame, DCMF_MEDIA_OP_UPDATE, &d, fds, &n_fds), 0);
  assert_int_equal(n_fds, 0);
  enum dcmf_media_op op;
  assert_int_equal(
      dcmf_wire_decode_media((const uint8_t *)frame.data + DCMF_WIRE_HEADER,
                             frame.len - DCMF_WIRE_HEADER, NULL, 0, &op, &back),
      0);
  assert_int_equal(op, DCMF_MEDIA_OP_UPDATE);
  assert_non_null(back.rtpleg);
  assert_int_equal(back.rtpleg->rtp_fd, -1);
  assert_int_equal(back.rtpleg->rtcp_port, 42001);
  dcmf_media_desc_free(&back);
  assert_null(back.rtpleg);
  dcmf_media_desc_free(&d);
  dcmf_buf_free(&frame);
}

/* A leg cut short, missing descriptors, a bad address family, flags out
 * of range and an RTCP socket beside rtcp-mux are refused, nothing
 * taken. */
static void test_media_rtpleg_refusals(void **state) {
  (void)state;
  struct dcmf_media_desc d, back;
  struct dcmf_media_rtpleg *l = leg_fill(&d, 0);
  struct dcmf_buf frame = {0};
  int fds[4];
  size_t n_fds = 0;
  assert_int_equal(
      dcmf_wire_encode_media(&frame, DCMF_MEDIA_OP_ADD, &d, fds, &n_fds), 0);
  assert_int_equal(n_fds, 3); /* the media's, RTP, RTCP in that order */
  assert_int_equal(fds[0], d.fd);
  assert_int_equal(fds[1], l->rtp_fd);
  assert_int_equal(fds[2], l->rtcp_fd);
  uint8_t *body = (uint8_t *)frame.data + DCMF_WIRE_HEADER;
  size_t len = frame.len - DCMF_WIRE_HEADER;
  enum dcmf_media_op op;
  /* Cut inside the leg, and a frame claiming a leg it does not carry. */
  for (size_t cut = len - sizeof(*l); cut < len; cut++) {
    assert_int_equal(dcmf_wire_decode_media(body, cut, fds, n_fds, &op, &back),
                     DCMF_ERR_MALFORMED);
  }
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, 2, &op, &back),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(fds[1], l->rtp_fd); /* untouched */
  /* The leg's bytes end the body, at no particular alignment: changed
   * through a copy. */
  uint8_t *raw = body + len - sizeof(*l);
  struct dcmf_media_rtpleg saved, bad;
  memcpy(&saved, raw, sizeof(saved));
  bad = saved;
  bad.remote_rtcp.ss_family = AF_UNIX;
  memcpy(raw, &bad, sizeof(bad));
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
                   DCMF_ERR_MALFORMED);
  bad = saved;
  bad.latching = 2;
  memcpy(raw, &bad, sizeof(bad));
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
                   DCMF_ERR_MALFORMED);
  bad = saved;
  bad.rtcp_mux = 1; /* with an RTCP socket */
  memcpy(raw, &bad, sizeof(bad));
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
                   DCMF_ERR_MALFORMED);
  /* A T.140 leg with values out of range (media.h struct
   * dcmf_media_t140): six generations, one PT for t140 and red, a PT of
   * 8 bits, a direction not of the four. */
  struct dcmf_media_t140 t140 = {.on = 1, .sid = 5, .pt_t140 = 98,
                                 .pt_red = 100, .use_red = 1,
                                 .generations = 2, .cps_to_dc = 30};
  bad = saved;
  bad.t140 = t140;
  memcpy(raw, &bad, sizeof(bad));
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
                   0); /* a valid one is taken */
  for (int fd_i = 0; fd_i < 3; fd_i++) {
    fds[fd_i] = fd_i == 0 ? d.fd : fd_i == 1 ? l->rtp_fd : l->rtcp_fd;
  }
  back.fd = -1;
  back.rtpleg->rtp_fd = back.rtpleg->rtcp_fd = -1;
  dcmf_media_desc_free(&back);
  for (int k = 0; k < 4; k++) {
    bad = saved;
    bad.t140 = t140;
    if (k == 0) {
      bad.t140.generations = 6;
    } else if (k == 1) {
      bad.t140.pt_red = 98;
    } else if (k == 2) {
      bad.t140.pt_t140 = 128;
    } else {
      bad.t140.direction = 4;
    }
    memcpy(raw, &bad, sizeof(bad));
    assert_int_equal(
        dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
        DCMF_ERR_MALFORMED);
  }
  bad = saved;
  bad.rtp_fd = -1; /* RTCP without RTP */
  memcpy(raw, &bad, sizeof(bad));
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, 2, &op, &back),
                   DCMF_ERR_MALFORMED);
  memcpy(raw, &saved, sizeof(saved));
  /* Leg sockets with an UPDATE or a REMOVE (only an ADD brings them). */
  uint32_t add_op;
  memcpy(&add_op, body, sizeof(add_op));
  for (uint32_t o = DCMF_MEDIA_OP_UPDATE; o <= DCMF_MEDIA_OP_REMOVE; o++) {
    if (o == add_op) {
      continue;
    }
    memcpy(body, &o, sizeof(o));
    assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
                     DCMF_ERR_MALFORMED);
    assert_int_equal(fds[1], l->rtp_fd); /* untouched */
  }
  memcpy(body, &add_op, sizeof(add_op));
  /* A description without the leg but the leg's bytes after it. */
  struct dcmf_media_desc *rawd = (void *)(body + sizeof(uint32_t));
  struct dcmf_media_rtpleg *was = rawd->rtpleg;
  rawd->rtpleg = NULL;
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, 1, &op, &back),
                   DCMF_ERR_MALFORMED);
  rawd->rtpleg = was;
  assert_int_equal(fds[0], d.fd);
  assert_int_equal(dcmf_wire_decode_media(body, len, fds, n_fds, &op, &back),
                   0);
  assert_int_equal(fds[1], -1);
  assert_int_equal(back.rtpleg->rtp_fd, l->rtp_fd); /* taken, not dup'd */
  /* |back| owns the descriptors now. */
  d.fd = -1;
  l->rtp_fd = l->rtcp_fd = -1;
  dcmf_media_desc_free(&d);
  desc_close_all(&back);
  dcmf_buf_free(&frame);
}

static void test_small_frames(void **state) {
  (void)state;
  struct dcmf_buf buf = {0};
  /* event */
  struct dcmf_media_event ev = {.time_ms = 1234};
  strcpy(ev.key.context_id, "ctx");
  strcpy(ev.event, "DC_OPEN");
  strcpy(ev.detail, "{\"sid\":0}");
  assert_int_equal(dcmf_wire_encode_event(&buf, &ev), 0);
  struct dcmf_media_event ev2;
  const uint8_t *body = (const uint8_t *)buf.data + DCMF_WIRE_HEADER;
  size_t len = buf.len - DCMF_WIRE_HEADER;
  assert_int_equal(dcmf_wire_decode_event(body, len, &ev2), 0);
  assert_string_equal(ev2.event, "DC_OPEN");
  assert_string_equal(ev2.detail, "{\"sid\":0}");
  assert_int_equal(ev2.time_ms, 1234);
  assert_int_equal(dcmf_wire_decode_event(body, len - 1, &ev2),
                   DCMF_ERR_MALFORMED);
  memset((char *)buf.data + DCMF_WIRE_HEADER +
             offsetof(struct dcmf_media_event, event),
         'E', sizeof(ev.event));
  assert_int_equal(dcmf_wire_decode_event(body, len, &ev2),
                   DCMF_ERR_MALFORMED);
  buf.len = 0;
  /* status */
  struct dcmf_wire_status st = {.heartbeat_ms = 77, .events_refused = 3};
  st.figures.sessions = 5;
  st.figures.dtls_ok = 9;
  assert_int_equal(dcmf_wire_encode_status(&buf, &st), 0);
  struct dcmf_wire_status st2;
  assert_int_equal(dcmf_wire_decode_status((const uint8_t *)buf.data +
                                               DCMF_WIRE_HEADER,
                                           buf.len - DCMF_WIRE_HEADER, &st2),
                   0);
  assert_int_equal(st2.figures.sessions, 5);
  assert_int_equal(st2.heartbeat_ms, 77);
  buf.len = 0;
  /* ready */
  assert_int_equal(dcmf_wire_encode_ready(&buf, 2, "bootstrap-dir x: gone"), 0);
  uint32_t status;
  char text[8];
  assert_int_equal(dcmf_wire_decode_ready((const uint8_t *)buf.data +
                                              DCMF_WIRE_HEADER,
                                          buf.len - DCMF_WIRE_HEADER, &status,
                                          text, sizeof(text)),
                   0);
  assert_int_equal(status, 2);
  assert_string_equal(text, "bootstr"); /* cut to the room given */
  buf.len = 0;
  /* hello */
  uint8_t cert[3] = {1, 2, 3}, key[2] = {9, 8};
  struct dcmf_wire_hello h = {.index = 1,
                              .n_workers = 2,
                              .cert_der = cert,
                              .cert_len = 3,
                              .key_der = key,
                              .key_len = 2};
  assert_int_equal(dcmf_wire_encode_hello(&buf, &h), 0);
  struct dcmf_wire_hello h2;
  body = (const uint8_t *)buf.data + DCMF_WIRE_HEADER;
  len = buf.len - DCMF_WIRE_HEADER;
  assert_int_equal(dcmf_wire_decode_hello(body, len, &h2), 0);
  assert_int_equal(h2.index, 1);
  assert_int_equal(h2.n_workers, 2);
  assert_memory_equal(h2.cert_der, cert, 3);
  assert_memory_equal(h2.key_der, key, 2);
  assert_int_equal(h2.rsa_cert_len, 0);
  assert_null(h2.rsa_cert_der);
  assert_int_equal(dcmf_wire_decode_hello(body, len - 1, &h2),
                   DCMF_ERR_MALFORMED);
  /* with the RSA identity (T.38) after the first */
  uint8_t rcert[4] = {4, 5, 6, 7}, rkey[1] = {42};
  h.rsa_cert_der = rcert;
  h.rsa_cert_len = 4;
  h.rsa_key_der = rkey;
  h.rsa_key_len = 1;
  buf.len = 0;
  assert_int_equal(dcmf_wire_encode_hello(&buf, &h), 0);
  body = (const uint8_t *)buf.data + DCMF_WIRE_HEADER;
  len = buf.len - DCMF_WIRE_HEADER;
  assert_int_equal(dcmf_wire_decode_hello(body, len, &h2), 0);
  assert_memory_equal(h2.cert_der, cert, 3);
  assert_memory_equal(h2.key_der, key, 2);
  assert_int_equal(h2.rsa_cert_len, 4);
  assert_memory_equal(h2.rsa_cert_der, rcert, 4);
  assert_int_equal(h2.rsa_key_len, 1);
  assert_memory_equal(h2.rsa_key_der, rkey, 1);
  /* a certificate without its key is no identity */
  h.rsa_key_len = 0;
  assert_int_equal(dcmf_wire_encode_hello(&buf, &h), DCMF_ERR_TOO_LARGE);
  h.rsa_cert_der = h.rsa_key_der = NULL;
  h.rsa_cert_len = 0;
  h.index = 2; /* not below n_workers */
  buf.len = 0;
  assert_int_equal(dcmf_wire_encode_hello(&buf, &h), 0);
  assert_int_equal(dcmf_wire_decode_hello((const uint8_t *)buf.data +
                                              DCMF_WIRE_HEADER,
                                          buf.len - DCMF_WIRE_HEADER, &h2),
                   DCMF_ERR_MALFORMED);
  /* the RSA identity that comes after the hello */
  buf.len = 0;
  assert_int_equal(dcmf_wire_encode_rsa_identity(&buf, rcert, 4, rkey, 1), 0);
  uint32_t type;
  memcpy(&type, buf.data, sizeof(type));
  assert_int_equal(type, DCMF_WIRE_RSA_IDENTITY);
  const uint8_t *icert, *ikey;
  size_t icert_len, ikey_len;
  body = (const uint8_t *)buf.data + DCMF_WIRE_HEADER;
  len = buf.len - DCMF_WIRE_HEADER;
  assert_int_equal(dcmf_wire_decode_rsa_identity(body, len, &icert, &icert_len,
                                                 &ikey, &ikey_len),
                   0);
  assert_int_equal(icert_len, 4);
  assert_memory_equal(icert, rcert, 4);
  assert_int_equal(ikey_len, 1);
  assert_memory_equal(ikey, rkey, 1);
  assert_int_equal(dcmf_wire_decode_rsa_identity(body, len - 1, &icert,
                                                 &icert_len, &ikey, &ikey_len),
                   DCMF_ERR_MALFORMED);
  assert_int_equal(dcmf_wire_encode_rsa_identity(&buf, rcert, 4, rkey, 0),
                   DCMF_ERR_TOO_LARGE); /* a certificate without its key */
  dcmf_buf_free(&buf);
}

/* A header claiming too much, or a frame whose descriptors did not come. */
static void test_reader_refusals(void **state) {
  (void)state;
  struct dcmf_wire_reader r = {0};
  struct dcmf_wire_frame f;
  uint32_t head[3] = {DCMF_WIRE_EVENT, DCMF_WIRE_MAX_BODY + 1, 0};
  assert_int_equal(dcmf_wire_reader_feed(&r, (uint8_t *)head, sizeof(head)),
                   0);
  assert_int_equal(dcmf_wire_reader_next(&r, &f), DCMF_ERR_MALFORMED);
  dcmf_wire_reader_free(&r);
  /* Nothing fed into a reader that has no buffer yet (fuzz_wire under
   * UBSan: a copy of zero bytes to a null pointer) is a no-op. */
  assert_int_equal(dcmf_wire_reader_feed(&r, (const uint8_t *)"", 0), 0);
  assert_int_equal(dcmf_wire_reader_next(&r, &f), 0);
  uint32_t head2[4] = {DCMF_WIRE_MEDIA, 4, 1, 0};
  assert_int_equal(dcmf_wire_reader_feed(&r, (uint8_t *)head2, sizeof(head2)),
                   0);
  assert_int_equal(dcmf_wire_reader_next(&r, &f), DCMF_ERR_MALFORMED);
  dcmf_wire_reader_free(&r);
}

/* ---- the link over a socket pair ----------------------------------------- */

struct end {
  struct dcmf_wlink *link;
  int frames;
  size_t fds_got;
  ino_t fd_inode; /* of every descriptor received */
  int fds_same;
  size_t bytes;
  int closed;
  int close_err;
};

static void on_frame(void *user, const struct dcmf_wire_frame *f) {
  struct end *e = user;
  e->frames++;
  e->bytes += f->len;
  for (size_t i = 0; i < f->n_fds; i++) {
    e->fds_same += inode_of(f->fds[i]) == e->fd_inode;
  }
  e->fds_got += f->n_fds;
}

static void on_close(void *user, int err) {
  struct end *e = user;
  e->closed++;
  e->close_err = err;
}

static void link_pair(uv_loop_t *loop, struct end *a, struct end *b,
                      size_t limit_a) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  int small = 4096; /* partial writes for anything sizeable */
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  struct dcmf_wlink_settings sa = {.loop = loop,
                                   .fd = sv[0],
                                   .limit = limit_a,
                                   .on_frame = on_frame,
                                   .on_close = on_close,
                                   .user = a};
  struct dcmf_wlink_settings sb = sa;
  sb.fd = sv[1];
  sb.limit = 0;
  sb.user = b;
  assert_int_equal(dcmf_wlink_new(&a->link, &sa), 0);
  assert_int_equal(dcmf_wlink_new(&b->link, &sb), 0);
}

/* Turns the loop until |cond| or 10 000 turns (each waits at most for
 * the next readiness; a stuck link fails instead of hanging). */
#define RUN_UNTIL(loop, cond)                                                  \
  do {                                                                         \
    for (int turn_ = 0; turn_ < 10000 && !(cond); turn_++) {                   \
      uv_run((loop), UV_RUN_ONCE);                                             \
    }                                                                          \
    assert_true(cond);                                                         \
  } while (0)

static void test_link_many_fds_and_partial_writes(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct end a = {0}, b = {0};
  link_pair(&loop, &a, &b, 0);
  int sock = udp_socket();
  b.fd_inode = inode_of(sock);
  /* 300 descriptors: two sendmsg groups (253 + 47) for one frame. */
  enum { N = 300 };
  int fds[N];
  for (int i = 0; i < N; i++) {
    fds[i] = dup(sock);
    assert_true(fds[i] >= 0);
  }
  struct dcmf_buf frame = {0};
  uint8_t body[2 * N];
  memset(body, 0x5a, sizeof(body));
  assert_int_equal(dcmf_wire_header(&frame, 99, sizeof(body), N), 0);
  assert_int_equal(dcmf_buf_append(&frame, body, sizeof(body)), 0);
  assert_int_equal(dcmf_wlink_send(a.link, &frame, fds, N, 1), 0);
  /* And a 1 MiB frame behind it, far over the 4 KiB send buffer. */
  struct dcmf_buf big = {0};
  size_t big_len = 1 << 20;
  uint8_t *bytes = calloc(1, big_len);
  assert_int_equal(dcmf_wire_header(&big, 98, big_len, 0), 0);
  assert_int_equal(dcmf_buf_append(&big, bytes, big_len), 0);
  free(bytes);
  assert_int_equal(dcmf_wlink_send(a.link, &big, NULL, 0, 1), 0);
  assert_true(dcmf_wlink_queued(a.link) >= 1); /* could not all go at once */
  RUN_UNTIL(&loop, b.frames == 2);
  assert_int_equal(b.fds_got, N);
  assert_int_equal(b.fds_same, N); /* every one names the same socket */
  assert_int_equal(b.bytes, sizeof(body) + big_len);
  assert_int_equal(dcmf_wlink_queued(a.link), 0);
  /* The sender closed its copies once sent: only |sock| is left here. */
  for (int i = 0; i < N; i++) {
    assert_int_equal(fcntl(fds[i], F_GETFD), -1);
  }
  /* One end closes: the other hears an orderly end, once. */
  dcmf_wlink_close(a.link);
  RUN_UNTIL(&loop, b.closed == 1);
  assert_int_equal(b.close_err, 0);
  assert_int_equal(dcmf_wlink_send(b.link, &frame, NULL, 0, 1),
                   DCMF_ERR_SYSTEM);
  dcmf_wlink_close(b.link);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(a.closed, 0); /* not called after its own close */
  close(sock);
  dcmf_buf_free(&frame);
  dcmf_buf_free(&big);
}

static void test_link_limit(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct end a = {0}, b = {0};
  link_pair(&loop, &a, &b, 4);
  struct dcmf_buf frame = {0};
  uint8_t body[16384] = {0};
  assert_int_equal(dcmf_wire_header(&frame, 97, sizeof(body), 0), 0);
  assert_int_equal(dcmf_buf_append(&frame, body, sizeof(body)), 0);
  /* Nobody reads yet, so the socket fills and frames queue. */
  int refused = 0, sent = 0;
  for (int i = 0; i < 64; i++) {
    int rv = dcmf_wlink_send(a.link, &frame, NULL, 0, 0);
    refused += rv == DCMF_ERR_EXHAUSTED;
    sent += rv == 0;
  }
  assert_true(refused > 0);
  assert_true(dcmf_wlink_queued(a.link) <= 4);
  /* A frame that must not be lost is queued past the limit. */
  assert_int_equal(dcmf_wlink_send(a.link, &frame, NULL, 0, 1), 0);
  RUN_UNTIL(&loop, b.frames == sent + 1);
  dcmf_wlink_close(a.link);
  dcmf_wlink_close(b.link);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  dcmf_buf_free(&frame);
}

/* Garbage from the far end ends the link with MALFORMED. */
static void test_link_garbage(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  struct end a = {0};
  struct dcmf_wlink_settings sa = {.loop = &loop,
                                   .fd = sv[0],
                                   .on_frame = on_frame,
                                   .on_close = on_close,
                                   .user = &a};
  assert_int_equal(dcmf_wlink_new(&a.link, &sa), 0);
  uint32_t head[3] = {1, 0xffffffffu, 0};
  assert_int_equal(write(sv[1], head, sizeof(head)), (ssize_t)sizeof(head));
  RUN_UNTIL(&loop, a.closed == 1);
  assert_int_equal(a.close_err, DCMF_ERR_MALFORMED);
  assert_int_equal(a.frames, 0);
  dcmf_wlink_close(a.link);
  close(sv[1]);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* MSRP over a data channel: the core TCP leg, its socket and its URIs
 * travel with the SCTP description; one out of range is refused. */
static void test_media_msrpleg(void **state) {
  (void)state;
  struct dcmf_media_desc d, back;
  desc_fill(&d, 0);
  struct dcmf_media_msrpleg *l = calloc(1, sizeof(*l));
  assert_non_null(l);
  l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  l->port = 42002;
  l->sid = 3;
  l->setup = DCMF_TCP_PASSIVE;
  l->timeout_ms = 500;
  l->aware = 1;
  l->peer_max_message_size = 262144;
  strcpy(l->dc_own_uri, "msrps://127.0.0.1:4/c;dc");
  strcpy(l->tcp_peer_path, "msrp://127.0.0.2:5/k;tcp");
  d.msrpleg = l;
  roundtrip(&d, 100, &back);
  assert_non_null(back.msrpleg);
  assert_int_equal(inode_of(back.msrpleg->fd), inode_of(l->fd));
  assert_int_equal(back.msrpleg->sid, 3);
  assert_int_equal(back.msrpleg->setup, DCMF_TCP_PASSIVE);
  assert_int_equal(back.msrpleg->peer_max_message_size, 262144);
  assert_string_equal(back.msrpleg->dc_own_uri, l->dc_own_uri);
  assert_string_equal(back.msrpleg->tcp_peer_path, l->tcp_peer_path);
  desc_close_all(&back);
  /* A setup out of range: refused, the descriptors untouched. */
  l->setup = (enum dcmf_tcp_setup)7;
  struct dcmf_buf frame = {0};
  int fds[4];
  size_t n_fds = 0;
  assert_int_equal(
      dcmf_wire_encode_media(&frame, DCMF_MEDIA_OP_ADD, &d, fds, &n_fds), 0);
  assert_int_equal(n_fds, 2);
  int offered[2] = {dup(fds[0]), dup(fds[1])};
  enum dcmf_media_op op;
  assert_int_equal(
      dcmf_wire_decode_media((const uint8_t *)frame.data + DCMF_WIRE_HEADER,
                             frame.len - DCMF_WIRE_HEADER, offered, 2, &op,
                             &back),
      DCMF_ERR_MALFORMED);
  assert_true(offered[0] >= 0 && offered[1] >= 0);
  close(offered[0]);
  close(offered[1]);
  dcmf_buf_free(&frame);
  desc_close_all(&d); /* closes the leg's socket */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_media_roundtrip),
      cmocka_unit_test(test_media_refusals),
      cmocka_unit_test(test_media_rtpleg),
      cmocka_unit_test(test_media_rtpleg_refusals),
      cmocka_unit_test(test_media_msrpleg),
      cmocka_unit_test(test_small_frames),
      cmocka_unit_test(test_reader_refusals),
      cmocka_unit_test(test_link_many_fds_and_partial_writes),
      cmocka_unit_test(test_link_limit),
      cmocka_unit_test(test_link_garbage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
