/*
 * msrp_load - the MSRP peers of tests/bench/msrp_compare.py: per pair an
 * IMS UE (TLS client over TCP, OpenSSL, a self-signed certificate, the
 * server's certificate pinned by its SHA-256 fingerprint) and an IMS core
 * peer (plain TCP, listening: the relay connects to it), driven through
 * a server (dcmfd's AGW or the anchor relay) flat out, one direction at a
 * time. C because the hot loop must not be the bottleneck the figures
 * show: a Python peer spends more CPU per message than either server.
 *
 * MSRP (RFC 4975), written from the RFC: each message is one SEND chunk
 * (Byte-Range 1-N/N, '$'), To-Path/From-Path one URI each, Message-ID,
 * Content-Type: text/plain last (§7.1); no Failure-Report header, so the
 * default "yes" applies and the receiver answers 200 OK for every chunk
 * (§7.2: To-Path = the first URI of the SEND's From-Path, From-Path = its
 * own URI). The receiver checks each chunk (start line, headers, the
 * Byte-Range, the end-line with its transaction id at the place the
 * Byte-Range says, the body byte for byte, the order); the sender checks
 * each response (200, its transaction id, the order). A mismatch ends the
 * run with "error". The sender keeps at most WINDOW_BYTES of messages
 * unanswered, and always one (flow control an MSRP client may do; TCP
 * bounds the rest).
 * One write (SSL_write for TLS) per message; 200s go out as the receiver
 * finds chunks, coalesced per read.
 *
 * Line protocol, stdin -> stdout (one reply line per command):
 *   start:   prints "fingerprint sha-256 XX:..", "core I PORT" per pair,
 *            "ready"
 *   peer I PORT FP        the server's TLS port and fingerprint of pair I
 *   connect               TCP+TLS to each server port, the fingerprint
 *                         checked, the core connection accepted ->
 *                         "connected {json}" (TLS version, cipher)
 *   run DIR SIZE WARMUP_MS WINDOW_MS PIDS WINDOW_BYTES [RATE]
 *                         DIR up (UE -> core) or down (core -> UE); SIZE
 *                         body bytes; PIDS comma list or '-': their
 *                         utime + stime (/proc/PID/stat) at the window's
 *                         edges; RATE messages/s over all pairs (absent
 *                         or 0: flat out) -> "result {json}"
 *   sample DIR SIZE       one SEND and the 200 it gets, hex, as sent ->
 *                         "sample SENDHEX RESPONSEHEX" (for the script's
 *                         independent check with msrp_peer.py)
 *   quit
 * Usage: msrp_load --pairs N --cert PEM --key KEY
 *        msrp_load --pairs N --plain
 * --plain: the UE side is plain TCP too (no TLS, no fingerprints; the
 * "peer" command's FP is ignored, "connected" reports tls "none"): the
 * same MSRP bytes for a plain TCP relay (tests/bench/msrp_dc_compare.py's
 * TCP anchor).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "msrp_wire.h"
#include "tls_bench.h"

#define PAIRS_MAX 64
#define IN_CAP (512 * 1024 + MSRP_BODY_MAX)
#define OUT_CAP (256 * 1024)
#define OUT_STOP (64 * 1024) /* a receiver with more 200s queued stops reading */

struct side {
  int fd;
  SSL *ssl; /* NULL: plain TCP */
  unsigned char *in, *out;
  size_t in_off, in_len, out_off, out_len;
  int out_blocked;
  short rev;
};

struct pair {
  int idx, listen_fd, server_port;
  char server_fp[96];
  struct side ue, core;
  struct msrp_msg msg; /* the sender's message, patched per seq */
  size_t msg_off;
  int msg_busy;
  uint64_t sent, answered, received, recv_bytes;
  size_t unanswered_bytes;
};

static struct pair pairs[PAIRS_MAX];
static int npairs;
/* Pacing of a run: messages per second per pair (0: flat out) from
 * run_t0; a paced sender sends what it is behind by, each turn. */
static double pace_rate, run_t0;
static SSL_CTX *client_ctx;
static char my_fp[96];

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fail(const char *fmt, const char *detail) {
  printf("error ");
  printf(fmt, detail);
  printf("\n");
  fflush(stdout);
  exit(1);
}

/* utime + stime in seconds of the comma-separated pids (all threads:
 * /proc/PID/stat counts the whole process). */
static double cpu_of(const char *pids) {
  double ticks = 0;
  char list[1024];
  snprintf(list, sizeof(list), "%s", pids);
  for (char *save = NULL, *p = strtok_r(list, ",", &save); p != NULL;
       p = strtok_r(NULL, ",", &save)) {
    if (strcmp(p, "-") == 0) {
      continue;
    }
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%s/stat", p);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
      continue;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (s != NULL && sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                            &ut, &st) == 2) {
      ticks += (double)(ut + st);
    }
  }
  return ticks / (double)sysconf(_SC_CLK_TCK);
}

static double own_cpu(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
         (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

/* ---- sides: plain or TLS, non-blocking ------------------------------------ */

/* Reads into |s->in|; returns bytes read, 0 when nothing is there now,
 * -1 on end or error. */
static ssize_t side_read(struct side *s) {
  if (s->in_off > 0 && (s->in_off == s->in_len || s->in_off > IN_CAP / 2)) {
    memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
    s->in_len -= s->in_off;
    s->in_off = 0;
  }
  size_t room = IN_CAP - s->in_len;
  if (room == 0) {
    return 0;
  }
  if (room > 64 * 1024) {
    room = 64 * 1024;
  }
  if (s->ssl == NULL) {
    ssize_t n = read(s->fd, s->in + s->in_len, room);
    if (n > 0) {
      s->in_len += (size_t)n;
      return n;
    }
    return n < 0 && errno == EAGAIN ? 0 : -1;
  }
  int n = SSL_read(s->ssl, s->in + s->in_len, (int)room);
  if (n > 0) {
    s->in_len += (size_t)n;
    return n;
  }
  int e = SSL_get_error(s->ssl, n);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Writes what it can of |data|; returns bytes written (0: blocked) or -1. */
static ssize_t side_write(struct side *s, const unsigned char *data, size_t len) {
  if (s->ssl == NULL) {
    ssize_t n = write(s->fd, data, len);
    if (n >= 0) {
      return n;
    }
    return errno == EAGAIN ? 0 : -1;
  }
  int n = SSL_write(s->ssl, data, (int)len);
  if (n > 0) {
    return n;
  }
  int e = SSL_get_error(s->ssl, n);
  return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
}

static int side_readable(const struct side *s) {
  return (s->rev & (POLLIN | POLLHUP | POLLERR)) != 0 ||
         (s->ssl != NULL && SSL_has_pending(s->ssl));
}

static void flush_out(struct side *s) {
  while (s->out_off < s->out_len && (!s->out_blocked || (s->rev & POLLOUT))) {
    ssize_t n = side_write(s, s->out + s->out_off, s->out_len - s->out_off);
    if (n < 0) {
      fail("%s", "write failed (the server closed?)");
    }
    if (n == 0) {
      s->out_blocked = 1;
      return;
    }
    s->out_blocked = 0;
    s->out_off += (size_t)n;
  }
  if (s->out_off == s->out_len) {
    s->out_off = s->out_len = 0;
  }
}

/* ---- one turn of a pair in a run ------------------------------------------- */

/* The sender: messages while the window allows and the socket takes
 * them. */
static void send_some(struct pair *p, struct side *tx, int sending, size_t window) {
  while (1) {
    if (!p->msg_busy) {
      if (!sending || (p->unanswered_bytes > 0 && p->unanswered_bytes + p->msg.len > window)) {
        break;
      }
      if (pace_rate > 0 && (double)p->sent >= (now() - run_t0) * pace_rate) {
        break;
      }
      msrp_msg_stamp(&p->msg, p->sent);
      p->msg_busy = 1;
      p->msg_off = 0;
      p->unanswered_bytes += p->msg.len;
      p->sent++;
    }
    if (tx->out_blocked && !(tx->rev & POLLOUT)) {
      break;
    }
    ssize_t n = side_write(tx, p->msg.data + p->msg_off, p->msg.len - p->msg_off);
    if (n < 0) {
      fail("%s", "send failed (the server closed?)");
    }
    if (n == 0) {
      tx->out_blocked = 1;
      tx->rev &= (short)~POLLOUT;
      break;
    }
    tx->out_blocked = 0;
    p->msg_off += (size_t)n;
    if (p->msg_off == p->msg.len) {
      p->msg_busy = 0;
    }
  }
}

static void turn(struct pair *p, int up, size_t size, int sending, size_t window) {
  struct side *tx = up ? &p->ue : &p->core;
  struct side *rx = up ? &p->core : &p->ue;
  char why[160];
  send_some(p, tx, sending, window);
  /* The receiver: chunks in, 200s out. */
  while (rx->out_len < OUT_STOP && side_readable(rx)) {
    ssize_t n = side_read(rx);
    if (n < 0) {
      fail("%s", "the receiver's connection ended");
    }
    if (n == 0) {
      rx->rev &= (short)~POLLIN;
      break;
    }
    size_t used, body;
    while (rx->out_len + 512 < OUT_CAP) {
      int r = msrp_take_send(rx->in + rx->in_off, rx->in_len - rx->in_off, &p->msg, up,
                             p->received, rx->out + rx->out_len, &used, &body, why,
                             sizeof(why));
      if (r < 0) {
        fail("receiver: %s", why);
      }
      if (r == 0) {
        break;
      }
      rx->in_off += used;
      rx->out_len += (size_t)r;
      p->received++;
      p->recv_bytes += body;
    }
  }
  flush_out(rx);
  /* The sender's responses. */
  while (side_readable(tx)) {
    ssize_t n = side_read(tx);
    if (n < 0) {
      fail("%s", "the sender's connection ended");
    }
    if (n == 0) {
      tx->rev &= (short)~POLLIN;
      break;
    }
    size_t used;
    int r;
    while ((r = msrp_take_200(tx->in + tx->in_off, tx->in_len - tx->in_off, up, p->idx,
                              p->answered, &used, why, sizeof(why))) > 0) {
      tx->in_off += used;
      p->answered++;
      p->unanswered_bytes -= p->msg.len;
    }
    if (r < 0) {
      fail("sender: %s", why);
    }
  }
  /* Answers free the window: send at once, not after the next poll. */
  send_some(p, tx, sending, window);
  (void)size;
}

struct snap {
  double t, server, load;
  uint64_t received, bytes, answered;
};

static void take(struct snap *s, const char *pids) {
  s->t = now();
  s->server = cpu_of(pids);
  s->load = own_cpu();
  s->received = s->bytes = s->answered = 0;
  for (int i = 0; i < npairs; i++) {
    s->received += pairs[i].received;
    s->bytes += pairs[i].recv_bytes;
    s->answered += pairs[i].answered;
  }
}

/* Polls every pair's sockets for what its turn left undone: POLLIN
 * where a read may go on (not on a receiver whose 200s are backed up),
 * POLLOUT where a write blocked. */
static void wait_io(double until, int up) {
  struct pollfd pf[PAIRS_MAX * 2];
  for (int i = 0; i < npairs; i++) {
    struct side *s[2] = {&pairs[i].ue, &pairs[i].core};
    for (int k = 0; k < 2; k++) {
      int receiver = (k == 1) == (up != 0);
      short ev = 0;
      if (!receiver || s[k]->out_len < OUT_STOP) {
        ev |= POLLIN;
      }
      if (s[k]->out_blocked) {
        ev |= POLLOUT;
      }
      pf[2 * i + k] = (struct pollfd){.fd = s[k]->fd, .events = ev};
    }
  }
  int ms = (int)((until - now()) * 1000);
  int most = pace_rate > 0 ? 1 : 20; /* a paced sender wakes every ms */
  ms = ms < 0 ? 0 : ms > most ? most : ms;
  if (poll(pf, (nfds_t)npairs * 2, ms) < 0 && errno != EINTR) {
    fail("%s", "poll failed");
  }
  for (int i = 0; i < npairs; i++) {
    pairs[i].ue.rev |= pf[2 * i].revents;
    pairs[i].core.rev |= pf[2 * i + 1].revents;
  }
}

static void run(const char *dir, size_t size, int warm_ms, int win_ms, const char *pids,
                size_t window, double rate) {
  int up = strcmp(dir, "up") == 0;
  if (size < 16 || size > MSRP_BODY_MAX) {
    fail("%s", "size out of range");
  }
  for (int i = 0; i < npairs; i++) {
    struct pair *p = &pairs[i];
    msrp_msg_build(&p->msg, up, i, size);
    p->sent = p->answered = p->received = p->recv_bytes = 0;
    p->unanswered_bytes = 0;
    p->msg_busy = 0;
    struct side *sides[2] = {&p->ue, &p->core};
    for (int k = 0; k < 2; k++) {
      if (sides[k]->in_len != sides[k]->in_off || sides[k]->out_len != 0) {
        fail("%s", "bytes left over from the run before");
      }
      sides[k]->in_off = sides[k]->in_len = 0;
      sides[k]->out_blocked = 0;
      sides[k]->rev = POLLIN | POLLOUT;
    }
  }
  struct snap a, b, end;
  pace_rate = rate / npairs;
  run_t0 = now();
  double t0 = run_t0, w0 = t0 + warm_ms / 1000.0, w1 = w0 + win_ms / 1000.0;
  int phase = 0; /* 0 warm-up, 1 window, 2 drain */
  double drain_until = 0;
  while (1) {
    double t = now();
    if (phase == 0 && t >= w0) {
      take(&a, pids);
      phase = 1;
    } else if (phase == 1 && t >= w1) {
      take(&b, pids);
      phase = 2;
      drain_until = t + 15;
    }
    int idle = 1;
    for (int i = 0; i < npairs; i++) {
      turn(&pairs[i], up, size, phase < 2, window);
      if (pairs[i].answered < pairs[i].sent || pairs[i].msg_busy) {
        idle = 0;
      }
    }
    if (phase == 2 && idle) {
      break;
    }
    if (phase == 2 && t > drain_until) {
      fail("%s", "messages unanswered 15 s after the window");
    }
    wait_io(phase == 0 ? w0 : phase == 1 ? w1 : drain_until, up);
  }
  take(&end, pids);
  for (int i = 0; i < npairs; i++) {
    if (pairs[i].received != pairs[i].sent) {
      fail("%s", "sent and received differ after the drain");
    }
  }
  double secs = b.t - a.t, n = (double)(b.received - a.received);
  double server = b.server - a.server;
  size_t wire = pairs[0].msg.len;
  printf("result {\"dir\":\"%s\",\"size\":%zu,\"pairs\":%d,\"seconds\":%.3f,"
         "\"messages\":%.0f,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"wire_mb_per_s\":%.3f,"
         "\"server_cpu_s\":%.3f,\"server_us_per_msg\":%.3f,\"server_cpu_pct\":%.1f,"
         "\"load_cpu_pct\":%.1f,\"total_sent\":%" PRIu64 ",\"wire_bytes_per_msg\":%zu,"
         "\"rate\":%.0f}\n",
         dir, size, npairs, secs, n, n / secs, (double)(b.bytes - a.bytes) / secs / 1e6,
         n * (double)wire / secs / 1e6, server, n > 0 ? server * 1e6 / n : 0.0,
         100.0 * server / secs, 100.0 * (b.load - a.load) / secs, end.received, wire, rate);
  fflush(stdout);
}

/* ---- set-up ------------------------------------------------------------------ */

static void tune(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int listen_any(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof(a);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
    fail("%s", "core listen failed");
  }
  *port = ntohs(a.sin_port);
  return fd;
}

static void side_alloc(struct side *s) {
  s->in = malloc(IN_CAP);
  s->out = malloc(OUT_CAP);
  if (s->in == NULL || s->out == NULL) {
    fail("%s", "out of memory");
  }
}

/* TCP (and TLS, unless --plain) to the server, blocking with 10 s timeouts, then the core
 * connection the server opened is accepted (bounded); both end up
 * non-blocking. */
static void connect_pair(struct pair *p, char *proto, size_t proto_len) {
  struct timeval tv = {.tv_sec = 10};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->server_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    fail("%s", "connect to the server's TLS port failed");
  }
  tune(fd);
  p->ue.fd = fd;
  if (client_ctx == NULL) { /* --plain */
    snprintf(proto, proto_len, "none");
  } else {
    p->ue.ssl = SSL_new(client_ctx);
    SSL_set_fd(p->ue.ssl, fd);
    if (SSL_connect(p->ue.ssl) != 1) {
      fail("%s", "TLS handshake failed");
    }
    if (!tls_bench_peer_matches(p->ue.ssl, p->server_fp)) {
      fail("%s", "the server's certificate does not match its fingerprint");
    }
    snprintf(proto, proto_len, "%s %s", SSL_get_version(p->ue.ssl),
             SSL_get_cipher_name(p->ue.ssl));
  }
  struct pollfd pf = {.fd = p->listen_fd, .events = POLLIN};
  if (poll(&pf, 1, 10000) != 1) {
    fail("%s", "the server did not connect to the core within 10 s");
  }
  p->core.fd = accept(p->listen_fd, NULL, NULL);
  if (p->core.fd < 0) {
    fail("%s", "accept failed");
  }
  tune(p->core.fd);
  tls_bench_nonblock(p->ue.fd);
  tls_bench_nonblock(p->core.fd);
}

static void hex(const unsigned char *d, size_t n) {
  for (size_t i = 0; i < n; i++) {
    printf("%02x", d[i]);
  }
}

static void sample(const char *dir, size_t size) {
  int up = strcmp(dir, "up") == 0;
  struct msrp_msg m = {0};
  unsigned char resp[512];
  char why[160];
  size_t used, body;
  msrp_msg_build(&m, up, 0, size);
  msrp_msg_stamp(&m, 0);
  int r = msrp_take_send(m.data, m.len, &m, up, 0, resp, &used, &body, why, sizeof(why));
  if (r <= 0) {
    fail("sample: %s", why);
  }
  printf("sample ");
  hex(m.data, m.len);
  printf(" ");
  hex(resp, (size_t)r);
  printf("\n");
  fflush(stdout);
  msrp_msg_free(&m);
}

int main(int argc, char **argv) {
  const char *cert = NULL, *key = NULL;
  int plain = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--plain") == 0) {
      plain = 1;
      continue;
    }
    if (i + 1 >= argc) {
      break;
    }
    if (strcmp(argv[i], "--pairs") == 0) {
      npairs = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--cert") == 0) {
      cert = argv[i + 1];
    } else if (strcmp(argv[i], "--key") == 0) {
      key = argv[i + 1];
    }
    i++;
  }
  if (npairs < 1 || npairs > PAIRS_MAX || (!plain && (cert == NULL || key == NULL))) {
    fprintf(stderr, "usage: msrp_load --pairs N (1..%d) (--cert PEM --key KEY | --plain)\n",
            PAIRS_MAX);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (!plain) {
    client_ctx = tls_bench_ctx(0, cert, key);
    if (client_ctx == NULL) {
      return 1;
    }
    FILE *f = fopen(cert, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
      fclose(f);
    }
    tls_bench_fingerprint(x, my_fp);
    X509_free(x);
    printf("fingerprint sha-256 %s\n", my_fp);
  }
  for (int i = 0; i < npairs; i++) {
    int port;
    pairs[i].idx = i;
    pairs[i].listen_fd = listen_any(&port);
    side_alloc(&pairs[i].ue);
    side_alloc(&pairs[i].core);
    printf("core %d %d\n", i, port);
  }
  printf("ready\n");
  fflush(stdout);
  char line[1024];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    char cmd[32] = "", a1[128] = "", a2[128] = "", a3[128] = "", a4[128] = "",
         a5[1024 - 512] = "", a6[64] = "", a7[64] = "";
    sscanf(line, "%31s %127s %127s %127s %127s %511s %63s %63s", cmd, a1, a2, a3, a4, a5, a6,
           a7);
    if (strcmp(cmd, "peer") == 0) {
      int i = atoi(a1);
      if (i < 0 || i >= npairs) {
        fail("%s", "no such pair");
      }
      pairs[i].server_port = atoi(a2);
      snprintf(pairs[i].server_fp, sizeof(pairs[i].server_fp), "%.95s", a3);
    } else if (strcmp(cmd, "connect") == 0) {
      char proto[128] = "";
      for (int i = 0; i < npairs; i++) {
        connect_pair(&pairs[i], proto, sizeof(proto));
      }
      printf("connected {\"tls\":\"%s\"}\n", proto);
      fflush(stdout);
    } else if (strcmp(cmd, "run") == 0) {
      run(a1, (size_t)atol(a2), atoi(a3), atoi(a4), a5, (size_t)atol(a6), atof(a7));
    } else if (strcmp(cmd, "sample") == 0) {
      sample(a1, (size_t)atol(a2));
    } else if (strcmp(cmd, "quit") == 0) {
      break;
    }
  }
  for (int i = 0; i < npairs; i++) {
    if (pairs[i].ue.ssl != NULL) {
      SSL_shutdown(pairs[i].ue.ssl);
      SSL_free(pairs[i].ue.ssl);
    }
    close(pairs[i].ue.fd);
    close(pairs[i].core.fd);
    close(pairs[i].listen_fd);
    free(pairs[i].ue.in);
    free(pairs[i].ue.out);
    free(pairs[i].core.in);
    free(pairs[i].core.out);
    msrp_msg_free(&pairs[i].msg);
  }
  SSL_CTX_free(client_ctx);
  return 0;
}
