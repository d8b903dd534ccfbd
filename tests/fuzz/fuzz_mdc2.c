/*
 * Fuzz target for the MDC2 receive path of UDP-proxy mode: the input is a
 * script of datagrams (from the DC AS or a stranger, on known or unknown
 * streams), channels opening and closing, phone messages of any size and
 * leg changes. After every step:
 *   - what the phone got equals the datagrams_in counter;
 *   - each stream's datagrams reach the phone in the order they came;
 *   - nothing from a stranger ever reaches the phone;
 * and at the end every socket and queued datagram is released (ASan).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "errors.h"
#include "udpproxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STREAMS 4

/* Leg changes honoured per input. Each one makes and closes up to four
 * sockets, about 30 us each on the machines we fuzz on: an input of
 * 16 KB held hundreds of them and ran at 30 executions/s. Past this many
 * a change is skipped; orderings of changes, datagrams and messages are
 * still explored, with the fuzzer's time spent on the proxy's code. */
#define MAX_LEG_CHANGES 32

struct phone {
  int open[STREAMS];
  int full[STREAMS]; /* SCTP has no room: deliver fails */
  uint32_t last_seq[STREAMS];
  uint64_t delivered;
};

static int stream_index(uint16_t sid) { return (int)(sid - 1000) % STREAMS; }

static int deliver(void *user, uint16_t sid, int text, const uint8_t *d,
                   size_t len) {
  (void)text;
  struct phone *p = user;
  int i = stream_index(sid);
  if (!p->open[i]) {
    return DCMF_ERR_NOT_FOUND;
  }
  if (p->full[i]) {
    return DCMF_ERR_EXHAUSTED;
  }
  if (len < 5 || d[0] != 'S') {
    abort(); /* only the server's datagrams (tagged 'S') may arrive */
  }
  uint32_t seq;
  memcpy(&seq, d + 1, 4);
  if (seq <= p->last_seq[i]) {
    abort(); /* out of order or duplicated */
  }
  p->last_seq[i] = seq;
  p->delivered++;
  return 0;
}

static const struct dcmf_udpproxy_callbacks cbs = {deliver, NULL};

static void add_legs(struct dcmf_udpproxy *up, unsigned mask,
                     const struct sockaddr_storage *server) {
  struct dcmf_media_mdc2 list[STREAMS];
  size_t n = 0;
  for (int i = 0; i < STREAMS; i++) {
    if (mask & (1u << i)) {
      list[n] = (struct dcmf_media_mdc2){(uint16_t)(1000 + i),
                                         (uint16_t)(50000 + i),
                                         socket(AF_INET, SOCK_DGRAM, 0), i & 1};
      n++;
    }
  }
  dcmf_udpproxy_sync(up, list, n, server);
  for (size_t i = 0; i < n; i++) {
    if (list[i].fd >= 0) {
      close(list[i].fd); /* the proxy did not take it */
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t big[DCMF_UDPPROXY_MAX_DATAGRAM + 64];
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct sockaddr_storage server = {0}, stranger = {0};
  struct sockaddr_in *sv = (struct sockaddr_in *)&server;
  sv->sin_family = AF_INET;
  sv->sin_port = htons(9); /* discard: what the phone sends goes nowhere */
  sv->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  stranger = server;
  ((struct sockaddr_in *)&stranger)->sin_port = htons(10);

  struct phone phone = {0};
  struct dcmf_udpproxy *up = NULL;
  /* Two slots: the legs read in batches (recvmmsg), as in dcmfd. */
  static uint8_t rx[2 * DCMF_UDPPROXY_SLOT];
  if (dcmf_udpproxy_new(&up, &loop, &server, rx, sizeof(rx), &cbs, &phone) !=
      0) {
    abort();
  }
  add_legs(up, 0xf, &server);
  uint32_t seq = 0;
  size_t at = 0;
  int leg_changes = 0;
  while (at + 3 <= size) {
    uint8_t op = data[at], arg = data[at + 1], len = data[at + 2];
    at += 3;
    uint16_t sid = (uint16_t)(1000 + (arg & 7)); /* 1004-1007 have no leg */
    int i = arg & 3;
    switch (op % 6) {
    case 0: { /* a datagram arrives */
      uint8_t d[5 + 255];
      int from_server = !(arg & 0x80);
      d[0] = from_server ? 'S' : 'X';
      seq++;
      memcpy(d + 1, &seq, 4);
      size_t body = len <= size - at ? len : size - at;
      memcpy(d + 5, data + at, body);
      at += body;
      int rv = dcmf_udpproxy_receive(
          up, sid,
          (const struct sockaddr *)(from_server ? &server : &stranger), d,
          5 + body);
      if ((rv == 0) != dcmf_udpproxy_has(up, sid)) {
        abort();
      }
      break;
    }
    case 1:
      phone.open[i] = 1;
      dcmf_udpproxy_channel_open(up, (uint16_t)(1000 + i));
      break;
    case 2:
      phone.open[i] = 0;
      break;
    case 3:
      phone.full[i] = !phone.full[i];
      break;
    case 4: { /* the phone sends; sizes up to and past one datagram */
      size_t n = (size_t)len * 260;
      dcmf_udpproxy_message(up, sid, big, n);
      break;
    }
    default:
      if (leg_changes < MAX_LEG_CHANGES) {
        leg_changes++;
        add_legs(up, arg & 0xf, &server);
      }
      break;
    }
    if (dcmf_udpproxy_counters(up)->datagrams_in != phone.delivered) {
      abort();
    }
  }
  dcmf_udpproxy_close(up);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) {
    abort(); /* a leg was left open */
  }
  return 0;
}
