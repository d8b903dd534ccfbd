/*
 * udp_echo - the DC application server of tests/bench/janus_compare.js:
 * sends every UDP datagram back to where it came from, byte for byte.
 *
 *   udp_echo ADDR [PORT]
 *
 * Binds ADDR:PORT (PORT 0 or absent: any free port) and prints the port
 * on the first line of stdout. Every line read on stdin is answered with
 * one line "RX TX": the datagrams received and sent so far. The benchmark
 * counts the UDP datagrams of its network namespace and subtracts these,
 * so that the hop between dcmfd and this server is kept apart from the
 * phone's. Exits 0 when stdin ends, 1 on a bad argument or a socket error.
 *
 * It is written in C, batching with recvmmsg/sendmmsg, so that the echo
 * costs little next to the media function under test (a Node echo server
 * would compete for the same cores). Not part of dcmfd.
 */
/* recvmmsg/sendmmsg need _GNU_SOURCE, which meson.build defines. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAX_DATAGRAM 65536

static unsigned char bufs[BATCH][MAX_DATAGRAM];

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: udp_echo ADDR [PORT]\n");
    return 1;
  }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  char *end = NULL;
  unsigned long port = argc == 3 ? strtoul(argv[2], &end, 10) : 0;
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 || port > 65535 ||
      (end != NULL && *end != '\0')) {
    fprintf(stderr, "udp_echo: bad address or port\n");
    return 1;
  }
  addr.sin_port = htons((unsigned short)port);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    perror("udp_echo: socket/bind");
    return 1;
  }
  /* A burst of 512 messages in flight must not overflow a default-sized
   * receive buffer; the kernel caps this at net.core.rmem_max. */
  int rcvbuf = 4 << 20;
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  socklen_t alen = sizeof(addr);
  if (getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
    perror("udp_echo: getsockname");
    return 1;
  }
  printf("%u\n", (unsigned)ntohs(addr.sin_port));
  fflush(stdout);

  static struct mmsghdr msgs[BATCH];
  static struct iovec iovs[BATCH];
  static struct sockaddr_in peers[BATCH];
  unsigned long long rx = 0, tx = 0;
  struct pollfd fds[2] = {{.fd = fd, .events = POLLIN},
                          {.fd = STDIN_FILENO, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      perror("udp_echo: poll");
      return 1;
    }
    if (fds[1].revents != 0) {
      char line[64];
      ssize_t n = read(STDIN_FILENO, line, sizeof(line));
      if (n <= 0)
        return 0; /* the benchmark ended or closed our stdin */
      printf("%llu %llu\n", rx, tx);
      fflush(stdout);
    }
    if ((fds[0].revents & POLLIN) == 0)
      continue;
    /* Drain the socket: each batch goes back out before the next read. */
    for (;;) {
      for (int i = 0; i < BATCH; i++) {
        iovs[i].iov_base = bufs[i];
        iovs[i].iov_len = MAX_DATAGRAM;
        memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &peers[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(peers[i]);
      }
      int got = recvmmsg(fd, msgs, BATCH, 0, NULL);
      if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
          break;
        perror("udp_echo: recvmmsg");
        return 1;
      }
      rx += (unsigned)got;
      for (int i = 0; i < got; i++)
        iovs[i].iov_len = msgs[i].msg_len;
      /* Send what was read; a full send buffer is waited out (the echo
       * must not drop what it can deliver). */
      int done = 0;
      while (done < got) {
        int sent = sendmmsg(fd, msgs + done, (unsigned)(got - done), 0);
        if (sent < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            struct pollfd w = {.fd = fd, .events = POLLOUT};
            (void)poll(&w, 1, 100);
            continue;
          }
          /* e.g. ECONNREFUSED left by an earlier send to a closed port:
           * skip that datagram rather than stop echoing. */
          done++;
          continue;
        }
        done += sent;
        tx += (unsigned)sent;
      }
    }
  }
}
