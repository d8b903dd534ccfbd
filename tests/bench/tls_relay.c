/*
 * tls_relay - the anchor of tests/bench/msrp_compare.py: the least a
 * relay must do on dcmfd's TLS/TCP <-> TCP path (docs/e2ae.md "MSRP and
 * BFCP over TLS"), written for the benchmark: terminate TLS (server,
 * the same OpenSSL and the same context settings as dcmfd,
 * tls_bench.h, the UE's certificate pinned by fingerprint) and forward
 * the bytes to and from a plain TCP connection to the core, which it
 * opens once the UE's connection is accepted.
 *
 *   tls_relay CERT KEY UE_FINGERPRINT CORE_PORT...
 *   tls_relay --plain CORE_PORT...
 *
 * --plain: no TLS, the UE's bytes read and written as they are: a plain
 * TCP relay of the same bytes with the same loop, read size and queues
 * (tests/bench/msrp_dc_compare.py's TCP anchor).
 * One listening socket on 127.0.0.1 per CORE_PORT (one relay per pair,
 * as dcmfd has one access port per context); prints "listen I PORT" for
 * each, then "ready", and serves until SIGTERM. One thread, poll(2),
 * 64 KiB reads (dcmfd's DCMF_TCPRELAY_READ), at most 256 KiB queued per
 * direction (dcmfd's read stop), after which the reading side waits:
 * back-pressure as in dcmfd, nothing unbounded. What it does not do
 * that dcmfd does: an API, counters, events, timers, a second process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_bench.h"

#define READ_MAX (64 * 1024)
#define QUEUE_MAX (256 * 1024)
#define PAIRS_MAX 64

struct queue {
  unsigned char data[QUEUE_MAX];
  size_t off, len;
};

struct pair {
  int listen_fd, ue_fd, core_fd;
  int core_port;
  int core_connecting;
  SSL *ssl; /* NULL with --plain */
  int accepted;
  int open; /* handshake done and the fingerprint checked */
  int ended;
  short ue_rev, core_rev; /* what the last poll reported */
  struct queue to_core, to_ue;
};

static volatile sig_atomic_t stopping;

static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

static void die(const char *what) {
  fprintf(stderr, "tls_relay: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void end_pair(struct pair *p, const char *why) {
  if (p->ended) {
    return;
  }
  fprintf(stderr, "tls_relay: pair on core port %d ended: %s\n", p->core_port, why);
  p->ended = 1;
  if (p->ssl != NULL) {
    SSL_free(p->ssl);
    p->ssl = NULL;
  }
  if (p->ue_fd >= 0) {
    close(p->ue_fd);
  }
  if (p->core_fd >= 0) {
    close(p->core_fd);
  }
  p->ue_fd = p->core_fd = -1;
}

static void queue_compact(struct queue *q) {
  if (q->off == q->len) {
    q->off = q->len = 0;
  } else if (q->off > QUEUE_MAX / 2) {
    memmove(q->data, q->data + q->off, q->len - q->off);
    q->len -= q->off;
    q->off = 0;
  }
}

static size_t queue_room(const struct queue *q) {
  size_t room = QUEUE_MAX - q->len;
  return room > READ_MAX ? READ_MAX : room;
}

/* As dcmfd's relay sockets (tcpleg.c, tcprelay_setup.c): no Nagle, a
 * 128 KiB send buffer asked for. */
static void tune(int fd) {
  int one = 1, sndbuf = 128 * 1024;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  tls_bench_nonblock(fd);
}

static void accept_ue(struct pair *p, SSL_CTX *ctx) {
  int fd = accept(p->listen_fd, NULL, NULL);
  if (fd < 0) {
    return;
  }
  tune(fd);
  p->ue_fd = fd;
  p->accepted = 1;
  if (ctx == NULL) {
    p->open = 1; /* --plain: nothing to shake hands on */
  } else {
    p->ssl = SSL_new(ctx);
    SSL_set_fd(p->ssl, fd);
    SSL_set_accept_state(p->ssl);
  }
  p->core_fd = socket(AF_INET, SOCK_STREAM, 0);
  tune(p->core_fd);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->core_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(p->core_fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
    end_pair(p, "core connect failed");
    return;
  }
  p->core_connecting = 1;
}

/* Reads from the UE (TLS, or plain with --plain) into |buf|: > 0 bytes
 * read, 0 nothing now (|*ue_ev| gains POLLOUT if TLS needs to write
 * first), -1 the pair ended. */
static int ue_read(struct pair *p, unsigned char *buf, size_t len, short *ue_ev) {
  if (p->ssl == NULL) {
    ssize_t n = read(p->ue_fd, buf, len);
    if (n <= 0) {
      if (n == 0 || errno != EAGAIN) {
        end_pair(p, n == 0 ? "UE FIN" : "UE read failed");
        return -1;
      }
      return 0;
    }
    return (int)n;
  }
  int n = SSL_read(p->ssl, buf, (int)len);
  if (n <= 0) {
    int e = SSL_get_error(p->ssl, n);
    if (e == SSL_ERROR_WANT_WRITE) {
      *ue_ev |= POLLOUT;
    } else if (e != SSL_ERROR_WANT_READ) {
      end_pair(p, e == SSL_ERROR_ZERO_RETURN ? "close_notify" : "TLS read failed");
      return -1;
    }
    return 0;
  }
  return n;
}

/* Writes to the UE: > 0 bytes written, 0 blocked (|*ue_ev| gains
 * POLLOUT), -1 the pair ended. */
static int ue_write(struct pair *p, const unsigned char *buf, size_t len, short *ue_ev) {
  if (p->ssl == NULL) {
    ssize_t n = write(p->ue_fd, buf, len);
    if (n < 0) {
      if (errno != EAGAIN) {
        end_pair(p, "UE write failed");
        return -1;
      }
      *ue_ev |= POLLOUT;
      return 0;
    }
    return (int)n;
  }
  int n = SSL_write(p->ssl, buf, (int)len);
  if (n <= 0) {
    int e = SSL_get_error(p->ssl, n);
    if (e == SSL_ERROR_WANT_WRITE) {
      *ue_ev |= POLLOUT;
    } else if (e != SSL_ERROR_WANT_READ) {
      end_pair(p, "TLS write failed");
      return -1;
    }
    return 0;
  }
  return n;
}

/* One turn of a pair: handshake, then each direction as far as its
 * sockets and queues allow. Returns the poll events each socket waits
 * for. */
static void turn(struct pair *p, const char *ue_fp, short *ue_ev, short *core_ev) {
  *ue_ev = POLLIN;
  *core_ev = POLLIN;
  if (p->core_connecting) {
    int err = 0;
    socklen_t l = sizeof(err);
    struct pollfd c = {.fd = p->core_fd, .events = POLLOUT};
    if (poll(&c, 1, 0) == 1) {
      getsockopt(p->core_fd, SOL_SOCKET, SO_ERROR, &err, &l);
      if (err != 0) {
        end_pair(p, "core connect refused");
        return;
      }
      p->core_connecting = 0;
    } else {
      *core_ev = POLLOUT;
    }
  }
  if (!p->open) {
    int r = SSL_do_handshake(p->ssl);
    if (r == 1) {
      if (!tls_bench_peer_matches(p->ssl, ue_fp)) {
        end_pair(p, "the UE's certificate does not match its fingerprint");
        return;
      }
      p->open = 1;
    } else {
      int e = SSL_get_error(p->ssl, r);
      if (e == SSL_ERROR_WANT_WRITE) {
        *ue_ev = POLLOUT;
      } else if (e != SSL_ERROR_WANT_READ) {
        end_pair(p, "TLS handshake failed");
      }
      return;
    }
  }
  /* UE -> core: TLS read, TCP write. Reading waits while the core leg
   * is still connecting or its queue is full. */
  /* Read only what poll said is readable (or what OpenSSL already
   * holds): no read that is sure to fail with EAGAIN. */
  const short readable = POLLIN | POLLHUP | POLLERR;
  int ue_readable = (p->ue_rev & readable) || (p->ssl != NULL && SSL_has_pending(p->ssl));
  int core_readable = (p->core_rev & readable) != 0;
  struct queue *q = &p->to_core;
  while (ue_readable && !p->core_connecting && queue_room(q) > 0) {
    int n = ue_read(p, q->data + q->len, queue_room(q), ue_ev);
    if (n < 0) {
      return;
    }
    if (n == 0) {
      break;
    }
    q->len += (size_t)n;
  }
  while (!p->core_connecting && q->off < q->len) {
    ssize_t n = write(p->core_fd, q->data + q->off, q->len - q->off);
    if (n < 0) {
      if (errno != EAGAIN) {
        end_pair(p, "core write failed");
        return;
      }
      *core_ev |= POLLOUT;
      break;
    }
    q->off += (size_t)n;
  }
  queue_compact(q);
  /* core -> UE: TCP read, TLS write. */
  q = &p->to_ue;
  while (core_readable && !p->core_connecting && queue_room(q) > 0) {
    size_t want = queue_room(q);
    ssize_t n = read(p->core_fd, q->data + q->len, want);
    if (n <= 0) {
      if (n == 0 || errno != EAGAIN) {
        end_pair(p, n == 0 ? "core FIN" : "core read failed");
        return;
      }
      break;
    }
    q->len += (size_t)n;
    if ((size_t)n < want) {
      break; /* the socket is empty (as libuv: no read sure to fail) */
    }
  }
  while (q->off < q->len) {
    int n = ue_write(p, q->data + q->off, q->len - q->off, ue_ev);
    if (n < 0) {
      return;
    }
    if (n == 0) {
      break;
    }
    q->off += (size_t)n;
  }
  queue_compact(q);
  /* A full queue stops reading its source: poll only for the writer. */
  if (queue_room(&p->to_core) == 0) {
    *ue_ev &= (short)~POLLIN;
  }
  if (queue_room(&p->to_ue) == 0) {
    *core_ev &= (short)~POLLIN;
  }
}

int main(int argc, char **argv) {
  int plain = argc > 1 && strcmp(argv[1], "--plain") == 0;
  int first_port = plain ? 2 : 4; /* argv index of the first CORE_PORT */
  if (argc <= first_port || argc - first_port > PAIRS_MAX) {
    fprintf(stderr,
            "usage: tls_relay CERT KEY UE_FINGERPRINT CORE_PORT...\n"
            "       tls_relay --plain CORE_PORT...   (at most %d ports)\n",
            PAIRS_MAX);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  SSL_CTX *ctx = NULL;
  if (!plain) {
    ctx = tls_bench_ctx(1, argv[1], argv[2]);
    if (ctx == NULL) {
      return 1;
    }
  }
  const char *ue_fp = plain ? "" : argv[3];
  int npairs = argc - first_port;
  struct pair *pairs = calloc((size_t)npairs, sizeof(*pairs));
  if (pairs == NULL) {
    die("calloc");
  }
  for (int i = 0; i < npairs; i++) {
    struct pair *p = &pairs[i];
    p->ue_fd = p->core_fd = -1;
    p->core_port = atoi(argv[first_port + i]);
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(p->listen_fd, 1) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &l) != 0) {
      die("listen");
    }
    printf("listen %d %d\n", i, ntohs(a.sin_port));
  }
  printf("ready\n");
  fflush(stdout);
  struct pollfd *pf = calloc((size_t)npairs * 2, sizeof(*pf));
  if (pf == NULL) {
    die("calloc");
  }
  while (!stopping) {
    for (int i = 0; i < npairs; i++) {
      struct pair *p = &pairs[i];
      pf[2 * i].fd = pf[2 * i + 1].fd = -1;
      pf[2 * i].events = pf[2 * i + 1].events = 0;
      if (p->ended) {
        continue;
      }
      if (!p->accepted) {
        pf[2 * i] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
        continue;
      }
      short ue_ev, core_ev;
      turn(p, ue_fp, &ue_ev, &core_ev);
      if (!p->ended) {
        pf[2 * i] = (struct pollfd){.fd = p->ue_fd, .events = ue_ev};
        pf[2 * i + 1] = (struct pollfd){.fd = p->core_fd, .events = core_ev};
      }
    }
    if (poll(pf, (nfds_t)npairs * 2, 1000) < 0 && errno != EINTR) {
      die("poll");
    }
    for (int i = 0; i < npairs; i++) {
      struct pair *p = &pairs[i];
      if (!p->ended && !p->accepted) {
        if (pf[2 * i].revents & POLLIN) {
          accept_ue(p, ctx);
          p->ue_rev = POLLIN; /* a first handshake turn at once */
        }
      } else {
        p->ue_rev = pf[2 * i].revents;
        p->core_rev = pf[2 * i + 1].revents;
      }
    }
  }
  for (int i = 0; i < npairs; i++) {
    end_pair(&pairs[i], "stopped");
    close(pairs[i].listen_fd);
  }
  free(pf);
  free(pairs);
  SSL_CTX_free(ctx);
  return 0;
}
