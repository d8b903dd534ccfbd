/*
 * srtp_speed - the cost of one SRTP or SRTCP packet on each backend of
 * the SRTP engine (srtp.h), for docs/benchmarks.md ("SRTP backends").
 *
 *   srtp_speed [PACKETS [RUNS]]
 *
 * For each backend and profile it makes a client and a server engine
 * from the same material, then per run times PACKETS protects on the
 * client (of a fresh SSRC, so every run starts a stream) and PACKETS
 * unprotects of what they produced on the server, for RTP packets with
 * 160 and 1200 payload bytes and for a 28-byte RTCP sender report.
 * Prints ns per packet, the median of RUNS runs (defaults 4000 and 9);
 * the copy of the plain packet into the buffer is inside the protect
 * time on both backends alike. Exits 1 when an engine refuses a packet.
 * Not a test: nothing checks the figures. Not part of dcmfd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srtp.h"

#define SLOT 1536
#define MAX_RUNS 31

struct slot {
  _Alignas(4) unsigned char b[SLOT];
  size_t len;
};

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void make(unsigned char *p, size_t *len, int rtcp, size_t payload,
                 unsigned ssrc, unsigned seq) {
  memset(p, 0, 12);
  p[0] = 0x80;
  if (rtcp) {
    p[1] = 200;
    p[3] = 6;
    p[4] = (unsigned char)(ssrc >> 24);
    p[7] = (unsigned char)ssrc;
    memset(p + 8, 0x5a, 20);
    *len = 28;
    return;
  }
  p[1] = 111;
  p[2] = (unsigned char)(seq >> 8);
  p[3] = (unsigned char)seq;
  p[8] = (unsigned char)(ssrc >> 24);
  p[11] = (unsigned char)ssrc;
  memset(p + 12, 0xa5, payload);
  *len = 12 + payload;
}

/* Median ns per packet of protect (|out[0]|) and unprotect (|out[1]|). */
static int measure(enum dcmf_srtp_backend be, enum dcmf_srtp_profile prof,
                   int rtcp, size_t payload, size_t packets, int runs,
                   struct slot *slots, double out[2]) {
  const struct dcmf_srtp_profile_info *info =
      dcmf_srtp_profile_find((unsigned short)prof);
  unsigned char m[DCMF_SRTP_EXPORT_MAX];
  for (size_t i = 0; i < sizeof(m); i++) {
    m[i] = (unsigned char)(i * 7 + 3);
  }
  struct dcmf_srtp *c, *s;
  if (dcmf_srtp_new_with(&c, be, prof, m, info->export_len, DCMF_SRTP_CLIENT) !=
          0 ||
      dcmf_srtp_new_with(&s, be, prof, m, info->export_len, DCMF_SRTP_SERVER) !=
          0) {
    return 1;
  }
  double t[2][MAX_RUNS];
  _Alignas(4) unsigned char plain[SLOT];
  size_t plain_len;
  for (int r = 0; r < runs; r++) {
    unsigned ssrc = 0x1000u + (unsigned)r;
    make(plain, &plain_len, rtcp, payload, ssrc, 0);
    double t0 = now_ns();
    for (size_t i = 0; i < packets; i++) {
      memcpy(slots[i].b, plain, plain_len);
      if (!rtcp) { /* a new sequence number each */
        slots[i].b[2] = (unsigned char)(i >> 8);
        slots[i].b[3] = (unsigned char)i;
      }
      int rc = rtcp ? dcmf_srtp_protect_rtcp(c, slots[i].b, plain_len, SLOT,
                                             &slots[i].len)
                    : dcmf_srtp_protect_rtp(c, slots[i].b, plain_len, SLOT,
                                            &slots[i].len);
      if (rc != 0) {
        return 1;
      }
    }
    double t1 = now_ns();
    for (size_t i = 0; i < packets; i++) {
      size_t n;
      int rc = rtcp ? dcmf_srtp_unprotect_rtcp(s, slots[i].b, slots[i].len, &n)
                    : dcmf_srtp_unprotect_rtp(s, slots[i].b, slots[i].len, &n);
      if (rc != 0) {
        return 1;
      }
    }
    double t2 = now_ns();
    t[0][r] = (t1 - t0) / (double)packets;
    t[1][r] = (t2 - t1) / (double)packets;
  }
  for (int k = 0; k < 2; k++) {
    qsort(t[k], (size_t)runs, sizeof(double), cmp_double);
    out[k] = t[k][runs / 2];
  }
  dcmf_srtp_del(c);
  dcmf_srtp_del(s);
  return 0;
}

int main(int argc, char **argv) {
  size_t packets = argc > 1 ? strtoul(argv[1], NULL, 10) : 4000;
  int runs = argc > 2 ? atoi(argv[2]) : 9;
  /* RTP sequence numbers of one run must not wrap (no replay refusal). */
  if (packets == 0 || packets > 60000 || runs < 1 || runs > MAX_RUNS) {
    fprintf(stderr, "usage: srtp_speed [PACKETS<=60000 [RUNS<=%d]]\n",
            MAX_RUNS);
    return 1;
  }
  if (dcmf_srtp_lib_init() != 0) {
    return 1;
  }
  struct slot *slots = malloc(packets * sizeof(*slots));
  if (slots == NULL) {
    return 1;
  }
  static const enum dcmf_srtp_profile profs[] = {
      DCMF_SRTP_AES128_CM_SHA1_80, DCMF_SRTP_AES128_CM_SHA1_32,
      DCMF_SRTP_AEAD_AES_128_GCM, DCMF_SRTP_AEAD_AES_256_GCM};
  static const struct {
    const char *name;
    int rtcp;
    size_t payload;
  } kinds[] = {{"RTP 160", 0, 160}, {"RTP 1200", 0, 1200}, {"RTCP SR", 1, 0}};
  static const enum dcmf_srtp_backend bes[] = {DCMF_SRTP_BACKEND_OPENSSL,
                                               DCMF_SRTP_BACKEND_LIBSRTP2};
  printf("# ns/packet, median of %d runs of %zu packets\n", runs, packets);
  printf("%-24s %-9s %10s %10s %10s %10s\n", "profile", "packet", "openssl p",
         "openssl u", "libsrtp2 p", "libsrtp2 u");
  for (size_t p = 0; p < sizeof(profs) / sizeof(profs[0]); p++) {
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
      double r[2][2];
      for (size_t b = 0; b < 2; b++) {
        if (measure(bes[b], profs[p], kinds[k].rtcp, kinds[k].payload, packets,
                    runs, slots, r[b]) != 0) {
          fprintf(stderr, "%s refused a packet\n",
                  dcmf_srtp_backend_name(bes[b]));
          return 1;
        }
      }
      printf("%-24s %-9s %10.0f %10.0f %10.0f %10.0f\n",
             dcmf_srtp_profile_find((unsigned short)profs[p])->name,
             kinds[k].name, r[0][0], r[0][1], r[1][0], r[1][1]);
    }
  }
  free(slots);
  return 0;
}
