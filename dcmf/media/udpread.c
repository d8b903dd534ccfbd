#include "udpread.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "errors.h"

int dcmf_udpread_once(struct dcmf_udpread *r) {
  struct mmsghdr msgs[DCMF_UDPREAD_BATCH];
  struct iovec iov[DCMF_UDPREAD_BATCH];
  struct sockaddr_storage from[DCMF_UDPREAD_BATCH];
  memset(msgs, 0, sizeof(msgs));
  for (size_t i = 0; i < DCMF_UDPREAD_BATCH; i++) {
    iov[i].iov_base = r->scratch + i * r->slot_len;
    iov[i].iov_len = r->slot_len;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
  }
  int n;
  do {
    n = recvmmsg(r->fd, msgs, DCMF_UDPREAD_BATCH, MSG_DONTWAIT, NULL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    /* EAGAIN: another reader of the socket (none) or a spurious event. */
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : DCMF_ERR_SYSTEM;
  }
  if (n > 0) {
    r->reads++;
    r->datagrams += (uint64_t)n;
    if (r->tally != NULL) {
      r->tally->datagrams += (uint64_t)n;
      r->tally->full += n == DCMF_UDPREAD_BATCH;
    }
  }
  for (int i = 0; i < n; i++) {
    if (uv_is_closing((uv_handle_t *)&r->poll)) {
      break; /* the callback closed us: the rest is dropped */
    }
    struct msghdr *h = &msgs[i].msg_hdr;
    int truncated = (h->msg_flags & MSG_TRUNC) != 0;
    size_t len = msgs[i].msg_len;
    if (len > r->slot_len) {
      len = r->slot_len;
    }
    r->cb(r->user, r->scratch + (size_t)i * r->slot_len, len,
          (const struct sockaddr *)&from[i], truncated);
  }
  return n;
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  struct dcmf_udpread *r = p->data;
  if (status < 0) {
    /* The socket has an error pending (POLLERR): libuv stopped this
     * handle before calling. A read takes the error off the socket
     * (and any datagram behind it); then watch again, or the socket
     * would never be read again. */
    if (!uv_is_closing((uv_handle_t *)p)) {
      (void)dcmf_udpread_once(r);
      if (!uv_is_closing((uv_handle_t *)p)) {
        (void)uv_poll_start(p, UV_READABLE, on_poll);
      }
    }
    return;
  }
  (void)dcmf_udpread_once(r);
}

int dcmf_udpread_start(struct dcmf_udpread *r, uv_loop_t *loop, int fd,
                       uint8_t *scratch, size_t scratch_len, dcmf_udpread_cb cb,
                       void *user) {
  *r = (struct dcmf_udpread){0};
  r->fd = fd;
  r->scratch = scratch;
  r->slot_len = scratch_len / DCMF_UDPREAD_BATCH;
  r->cb = cb;
  r->user = user;
  if (r->slot_len == 0 || uv_poll_init(loop, &r->poll, fd) != 0) {
    return DCMF_ERR_SYSTEM;
  }
  r->poll.data = r;
  /* Fails only for events other than readable and writable. */
  (void)uv_poll_start(&r->poll, UV_READABLE, on_poll);
  return 0;
}

void dcmf_udpread_close(struct dcmf_udpread *r, uv_close_cb close_cb) {
  uv_close((uv_handle_t *)&r->poll, close_cb);
}
