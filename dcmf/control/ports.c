#include "ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"

struct dcmf_ports {
  struct sockaddr_storage addr;
  socklen_t addr_len;
  uint16_t min, max;
  size_t cursor; /* index of the next port to try */
  size_t in_use;
  int fds[]; /* one per port of the range; -1 when free */
};

int dcmf_ports_new(struct dcmf_ports **out, const char *bind_addr,
                   uint16_t min, uint16_t max) {
  if (min == 0 || min > max) {
    return DCMF_ERR_INVALID;
  }
  size_t n = (size_t)(max - min) + 1;
  struct dcmf_ports *pool = calloc(1, sizeof(*pool) + n * sizeof(int));
  if (pool == NULL) {
    return DCMF_ERR_NOMEM;
  }
  struct sockaddr_in *v4 = (struct sockaddr_in *)&pool->addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&pool->addr;
  if (inet_pton(AF_INET, bind_addr, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    pool->addr_len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, bind_addr, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    pool->addr_len = sizeof(*v6);
  } else {
    free(pool);
    return DCMF_ERR_INVALID;
  }
  pool->min = min;
  pool->max = max;
  for (size_t i = 0; i < n; i++) {
    pool->fds[i] = -1;
  }
  *out = pool;
  return 0;
}

void dcmf_ports_del(struct dcmf_ports *pool) {
  if (pool == NULL) {
    return;
  }
  for (size_t i = 0; i < dcmf_ports_total(pool); i++) {
    if (pool->fds[i] >= 0) {
      close(pool->fds[i]);
    }
  }
  free(pool);
}

static int ports_bind(struct dcmf_ports *pool, uint16_t port) {
  struct sockaddr_storage sa = pool->addr;
  if (sa.ss_family == AF_INET) {
    ((struct sockaddr_in *)&sa)->sin_port = htons(port);
  } else {
    ((struct sockaddr_in6 *)&sa)->sin6_port = htons(port);
  }
  int fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  /* A DTLS/SCTP burst toward us (or acknowledgements while we send one)
   * can overflow the default buffer; ask for more (the kernel caps it at
   * net.core.rmem_max / wmem_max). Best effort. */
  int size = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  if (bind(fd, (struct sockaddr *)&sa, pool->addr_len) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

int dcmf_ports_alloc(struct dcmf_ports *pool, uint16_t *port) {
  size_t n = dcmf_ports_total(pool);
  for (size_t tries = 0; tries < n; tries++) {
    size_t i = pool->cursor;
    pool->cursor = (pool->cursor + 1) % n;
    if (pool->fds[i] >= 0) {
      continue;
    }
    uint16_t candidate = (uint16_t)(pool->min + i);
    int fd = ports_bind(pool, candidate);
    if (fd < 0) {
      if (errno == EADDRINUSE) {
        continue; /* another process holds it; try the next one */
      }
      return DCMF_ERR_SYSTEM;
    }
    pool->fds[i] = fd;
    pool->in_use++;
    *port = candidate;
    return 0;
  }
  return DCMF_ERR_EXHAUSTED;
}

void dcmf_ports_release(struct dcmf_ports *pool, uint16_t port) {
  if (port < pool->min || port > pool->max) {
    return;
  }
  size_t i = (size_t)(port - pool->min);
  if (pool->fds[i] >= 0) {
    close(pool->fds[i]);
    pool->fds[i] = -1;
    pool->in_use--;
  }
}

int dcmf_ports_fd(const struct dcmf_ports *pool, uint16_t port) {
  if (port < pool->min || port > pool->max) {
    return -1;
  }
  return pool->fds[port - pool->min];
}

size_t dcmf_ports_in_use(const struct dcmf_ports *pool) {
  return pool->in_use;
}

size_t dcmf_ports_total(const struct dcmf_ports *pool) {
  return (size_t)(pool->max - pool->min) + 1;
}
