/*
 * Fuzz target for the AGW shim's packet path: the relay engine
 * (dcmf/proto/relay.h) fed with a script of datagrams from arbitrary
 * sources on either side, configuration changes and send failures.
 *
 * Input: byte 0 is the first configuration (see config_from), then ops:
 *   op & 3 == 0 or 1: a datagram on side (op >> 2) & 1 from source
 *                     (op >> 3) & 7 (7: the next 7 input bytes make an
 *                     arbitrary IPv4 or IPv6 address), length = next byte,
 *                     payload = that many following bytes (or fewer);
 *   op & 3 == 2:      a new configuration from the next byte;
 *   op & 3 == 3:      the last forward could not be sent.
 * Invariants (abort on violation): a forward hands back the caller's
 * bytes and goes only to the core remote (from the access side) or the
 * latched phone (from the core side); access traffic is forwarded only
 * from the latched phone, which is the signalled one in signalled-only
 * mode; every datagram is counted exactly once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sockaddr_storage addr4(uint32_t ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(ip);
  in->sin_port = htons(port);
  return ss;
}

static struct sockaddr_storage addr6(const uint8_t *a, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  in6->sin6_family = AF_INET6;
  memcpy(&in6->sin6_addr, a, 16);
  in6->sin6_port = htons(port);
  return ss;
}

static struct sockaddr_storage sources[8];

static void make_sources(void) {
  static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                 0,    0,    0,    0,    0, 0, 0, 7};
  static const uint8_t mapped[16] = {0, 0, 0, 0,    0,    0, 0, 0,
                                     0, 0, 0xff, 0xff, 127, 0, 0, 1};
  sources[0] = addr4(0xC0000201, 5004);  /* the signalled phone */
  sources[1] = addr4(0x7F000001, 50000); /* the core remote */
  sources[2] = addr4(0xC0000201, 5005);  /* the phone's IP, other port */
  sources[3] = addr4(0xC6336407, 5004);  /* someone else */
  sources[4] = addr6(v6, 5004);
  sources[5] = addr6(mapped, 50000); /* the core remote, IPv4-mapped */
  sources[6] = addr4(0x7F000001, 50001);
}

/* bit 0 signalled-only, bit 1 access remote = source (b >> 3) & 3,
 * bit 2 core remote = source 1 or (bit 5) source 4. */
static struct dcmf_relay_config config_from(uint8_t b) {
  struct dcmf_relay_config c;
  memset(&c, 0, sizeof(c));
  c.latching = (b & 1) ? DCMF_RELAY_LATCH_SIGNALLED_ONLY
                       : DCMF_RELAY_LATCH_FIRST_PACKET;
  if (b & 2) {
    c.has_access_remote = 1;
    c.access_remote = sources[(b >> 3) & 3];
  }
  if (b & 4) {
    c.has_core_remote = 1;
    c.core_remote = sources[(b & 0x20) ? 4 : 1];
  }
  return c;
}

static uint64_t total(const struct dcmf_relay_counters *c) {
  uint64_t n = 0;
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    n += c->packets[s];
    for (int k = 0; k < DCMF_RELAY_DROP_REASONS; k++) {
      n += c->dropped[s][k];
    }
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  make_sources();
  struct dcmf_relay r;
  struct dcmf_relay_config cfg = config_from(data[0]);
  if (dcmf_relay_init(&r, &cfg) != 0) {
    cfg = config_from(0);
    if (dcmf_relay_init(&r, &cfg) != 0) {
      abort();
    }
  }
  uint64_t calls = 0;
  int last_side = -1;
  size_t last_len = 0;
  size_t i = 1;
  while (i < size) {
    uint8_t op = data[i++];
    if ((op & 3) == 2) {
      struct dcmf_relay_config next = config_from(i < size ? data[i++] : 0);
      if (dcmf_relay_set_config(&r, &next) == 0) {
        cfg = next;
      }
      continue;
    }
    if ((op & 3) == 3) {
      if (last_side >= 0) {
        dcmf_relay_send_failed(&r, (enum dcmf_relay_side)last_side, last_len);
        last_side = -1;
      }
      continue;
    }
    enum dcmf_relay_side side = (enum dcmf_relay_side)((op >> 2) & 1);
    struct sockaddr_storage from = sources[(op >> 3) & 7];
    if (((op >> 3) & 7) == 7) {
      uint8_t raw[16] = {0};
      size_t take = size - i < 7 ? size - i : 7;
      memcpy(raw, data + i, take);
      i += take;
      uint16_t port = (uint16_t)(raw[5] << 8 | raw[6]);
      from = (raw[0] & 1) ? addr6(raw, port)
                          : addr4((uint32_t)raw[1] << 24 | (uint32_t)raw[2] << 16 |
                                      (uint32_t)raw[3] << 8 | raw[4],
                                  port);
    }
    size_t len = i < size ? data[i++] : 0;
    if (len > size - i) {
      len = size - i;
    }
    const uint8_t *pkt = data + i;
    i += len;
    struct dcmf_relay_verdict v;
    int rv = dcmf_relay_recv(&r, side, (const struct sockaddr *)&from, pkt,
                             len, &v);
    if (rv < 0) {
      abort(); /* every source here is AF_INET or AF_INET6 */
    }
    calls++;
    last_side = -1;
    if (rv == 0) {
      if (v.forward) {
        abort();
      }
      continue;
    }
    if (!v.forward || v.data != pkt || v.len != len || v.out == side) {
      abort();
    }
    const struct sockaddr *peer = dcmf_relay_peer(&r);
    if (peer == NULL) {
      abort(); /* nothing is forwarded before the latch */
    }
    if (side == DCMF_RELAY_ACCESS) {
      if (!cfg.has_core_remote ||
          !dcmf_relay_addr_equal(v.to,
                                 (const struct sockaddr *)&cfg.core_remote) ||
          !dcmf_relay_addr_equal((const struct sockaddr *)&from, peer)) {
        abort();
      }
    } else if (!dcmf_relay_addr_equal(v.to, peer) ||
               !dcmf_relay_addr_equal(
                   (const struct sockaddr *)&from,
                   (const struct sockaddr *)&cfg.core_remote)) {
      abort();
    }
    if (cfg.latching == DCMF_RELAY_LATCH_SIGNALLED_ONLY &&
        !dcmf_relay_addr_equal(peer,
                               (const struct sockaddr *)&cfg.access_remote)) {
      abort();
    }
    last_side = (int)side;
    last_len = len;
  }
  if (total(&r.counters) != calls) {
    abort();
  }
  return 0;
}
