/*
 * t140_pipe: the T.140 engine (dcmf/proto/t140.h) behind a line protocol
 * on stdin/stdout, so that tests/integration/t140_peer.py can run the
 * engine against its RFC-written peer on a virtual clock. Not a service.
 *
 *   t140_pipe [use_red generations cps_to_dc reorder_ms]
 *
 * Input lines (hex without spaces; now in ms, non-decreasing):
 *   dc NOW HEX     a DC message from the UE
 *   rtp NOW HEX    an RTP datagram from the core
 *   run NOW        drain both writers at NOW
 * Output for each run: "rtp HEX" per packet, "dc HEX" per DC message,
 * then "next MS" (or "next never") and a line "end".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t140.h"

#define LINE_MAX_BYTES (2 * 65536 + 64)

static struct dcmf_t140 engine;

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *len) {
  size_t n = strlen(s);
  if (n % 2 != 0 || n / 2 > cap) {
    return -1;
  }
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) {
      return -1;
    }
    out[i] = (uint8_t)v;
  }
  *len = n / 2;
  return 0;
}

static void put_hex(const char *tag, const uint8_t *p, size_t n) {
  printf("%s ", tag);
  for (size_t i = 0; i < n; i++) {
    printf("%02x", p[i]);
  }
  printf("\n");
}

int main(int argc, char **argv) {
  struct dcmf_t140_settings s;
  dcmf_t140_settings_default(&s);
  if (argc == 5) {
    s.use_red = atoi(argv[1]);
    s.generations = (unsigned)atoi(argv[2]);
    s.cps_to_dc = (unsigned)atoi(argv[3]);
    s.reorder_ms = (unsigned)atoi(argv[4]);
  }
  s.ssrc = 0x7140a1b2;
  s.first_seq = 65534;
  s.first_ts = 123456;
  char err[128];
  if (dcmf_t140_init(&engine, &s, 0, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  static char line[LINE_MAX_BYTES];
  static uint8_t buf[65536];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    char cmd[8], hex[LINE_MAX_BYTES];
    unsigned long long now;
    hex[0] = 0;
    int got = sscanf(line, "%7s %llu %s", cmd, &now, hex);
    size_t len = 0;
    if (got < 2 || (got == 3 && unhex(hex, buf, sizeof(buf), &len) != 0)) {
      fprintf(stderr, "bad line: %s", line);
      return 2;
    }
    if (strcmp(cmd, "dc") == 0) {
      dcmf_t140_dc_recv(&engine, buf, len, now);
    } else if (strcmp(cmd, "rtp") == 0) {
      dcmf_t140_rtp_recv(&engine, buf, len, now);
    } else if (strcmp(cmd, "run") == 0) {
      int n;
      while ((n = dcmf_t140_rtp_write(&engine, buf, sizeof(buf), now)) > 0) {
        put_hex("rtp", buf, (size_t)n);
      }
      size_t m;
      while ((m = dcmf_t140_dc_write(&engine, buf, sizeof(buf), now)) > 0) {
        put_hex("dc", buf, m);
      }
      uint64_t next = dcmf_t140_next_expiry(&engine);
      if (next == DCMF_T140_NEVER) {
        printf("next never\nend\n");
      } else {
        printf("next %llu\nend\n", (unsigned long long)next);
      }
      fflush(stdout);
    } else {
      fprintf(stderr, "bad command: %s\n", cmd);
      return 2;
    }
  }
  return 0;
}
