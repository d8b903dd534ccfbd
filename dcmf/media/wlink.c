#include "wlink.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"

/* Linux refuses more descriptors than this in one sendmsg (SCM_MAX_FD). */
#define FDS_PER_SEND 253
/* Reads per readiness callback, so that a flooding far end cannot keep
 * the owner's loop from its other handles. */
#define READS_PER_TURN 64

struct out_frame {
  struct out_frame *next;
  uint8_t *data;
  size_t len, sent;
  int *fds;
  size_t n_fds, fds_sent;
  int must;
};

struct dcmf_wlink {
  struct dcmf_wlink_settings settings;
  uv_poll_t poll;
  int fd;          /* -1 once closed */
  int ended;       /* on_close ran, or the owner closed it */
  int pending_err; /* a send failed; on_close runs from the poll callback */
  int watching;    /* the poll events now asked for */
  struct out_frame *head, *tail;
  size_t queued, refusable;
  struct dcmf_wire_reader reader;
  uint8_t rx[65536];
};

static void frame_free(struct out_frame *f) {
  for (size_t i = f->fds_sent; i < f->n_fds; i++) {
    close(f->fds[i]);
  }
  free(f->fds);
  free(f->data);
  free(f);
}

static void drop_queue(struct dcmf_wlink *l) {
  while (l->head != NULL) {
    struct out_frame *f = l->head;
    l->head = f->next;
    frame_free(f);
  }
  l->tail = NULL;
  l->queued = 0;
  l->refusable = 0;
}

static void on_poll(uv_poll_t *p, int status, int events);

/* Asks for writability only while something waits to be sent. */
static void watch(struct dcmf_wlink *l) {
  if (l->ended) {
    return;
  }
  int want = UV_READABLE;
  if (l->head != NULL || l->pending_err != 0) {
    want |= UV_WRITABLE;
  }
  if (want != l->watching) {
    uv_poll_start(&l->poll, want, on_poll);
    l->watching = want;
  }
}

static void end(struct dcmf_wlink *l, int err) {
  if (l->ended) {
    return;
  }
  l->ended = 1;
  uv_poll_stop(&l->poll);
  drop_queue(l);
  l->settings.on_close(l->settings.user, err);
}

/* Sends what the socket takes now. Returns 0 (sent, or it would block)
 * or DCMF_ERR_SYSTEM (the socket failed). */
static int flush(struct dcmf_wlink *l) {
  while (l->head != NULL) {
    struct out_frame *f = l->head;
    size_t fds_left = f->n_fds - f->fds_sent;
    size_t group = fds_left < FDS_PER_SEND ? fds_left : FDS_PER_SEND;
    /* While more groups follow this one, each carries a single byte, so
     * every descriptor arrives before its frame is complete. */
    size_t bytes = fds_left > group ? 1 : f->len - f->sent;
    struct iovec iov = {f->data + f->sent, bytes};
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(FDS_PER_SEND * sizeof(int))];
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (group > 0) {
      memset(&control, 0, sizeof(control));
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE(group * sizeof(int));
      struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(group * sizeof(int));
      memcpy(CMSG_DATA(cm), f->fds + f->fds_sent, group * sizeof(int));
    }
    ssize_t n = sendmsg(l->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return 0;
      }
      return DCMF_ERR_SYSTEM;
    }
    /* The far end holds its own copies now. */
    for (size_t i = 0; i < group; i++) {
      close(f->fds[f->fds_sent + i]);
    }
    f->fds_sent += group;
    f->sent += (size_t)n;
    if (f->sent == f->len && f->fds_sent == f->n_fds) {
      l->head = f->next;
      if (l->head == NULL) {
        l->tail = NULL;
      }
      l->queued--;
      if (!f->must) {
        l->refusable--;
      }
      frame_free(f);
    }
  }
  return 0;
}

/* Reads what is there, up to READS_PER_TURN times. Returns 0 or the
 * reason the link ended (1 for end-of-file). */
static int read_some(struct dcmf_wlink *l) {
  for (int i = 0; i < READS_PER_TURN && !l->ended; i++) {
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(FDS_PER_SEND * sizeof(int))];
    } control;
    struct iovec iov = {l->rx, sizeof(l->rx)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf)};
    ssize_t n = recvmsg(l->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                 ? 0
                 : DCMF_ERR_SYSTEM;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL;
         cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
        continue;
      }
      size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t k = 0; k < count; k++) {
        int fd;
        memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(fd));
        if (dcmf_wire_reader_add_fd(&l->reader, fd) != 0) {
          return DCMF_ERR_NOMEM;
        }
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      return DCMF_ERR_MALFORMED; /* descriptors were lost */
    }
    if (n == 0) {
      return 1;
    }
    if (dcmf_wire_reader_feed(&l->reader, l->rx, (size_t)n) != 0) {
      return DCMF_ERR_NOMEM;
    }
    struct dcmf_wire_frame f;
    int rv = 0;
    while (!l->ended && (rv = dcmf_wire_reader_next(&l->reader, &f)) == 1) {
      l->settings.on_frame(l->settings.user, &f);
      dcmf_wire_reader_consume(&l->reader, &f);
    }
    if (!l->ended && rv < 0) {
      return rv;
    }
  }
  return 0;
}

static void on_poll(uv_poll_t *p, int status, int events) {
  struct dcmf_wlink *l = p->data;
  if (l->ended) {
    return;
  }
  if (l->pending_err != 0) {
    end(l, l->pending_err);
    return;
  }
  if (status < 0) {
    end(l, DCMF_ERR_SYSTEM);
    return;
  }
  if (events & UV_WRITABLE) {
    if (flush(l) != 0) {
      end(l, DCMF_ERR_SYSTEM);
      return;
    }
  }
  if (events & UV_READABLE) {
    int rv = read_some(l);
    if (rv != 0) {
      end(l, rv == 1 ? 0 : rv);
      return;
    }
  }
  watch(l);
}

int dcmf_wlink_new(struct dcmf_wlink **out,
                   const struct dcmf_wlink_settings *settings) {
  struct dcmf_wlink *l = calloc(1, sizeof(*l));
  if (l == NULL) {
    close(settings->fd);
    return DCMF_ERR_NOMEM;
  }
  l->settings = *settings;
  l->fd = settings->fd;
  if (uv_poll_init(settings->loop, &l->poll, l->fd) != 0) {
    close(l->fd);
    free(l);
    return DCMF_ERR_SYSTEM;
  }
  l->poll.data = l;
  if (settings->unref) {
    uv_unref((uv_handle_t *)&l->poll);
  }
  watch(l);
  *out = l;
  return 0;
}

int dcmf_wlink_send(struct dcmf_wlink *l, const struct dcmf_buf *frame,
                    const int *fds, size_t n_fds, int must) {
  int rv = 0;
  struct out_frame *f = NULL;
  if (l->ended || l->pending_err != 0) {
    rv = DCMF_ERR_SYSTEM;
  } else if (!must && l->settings.limit > 0 &&
             l->refusable >= l->settings.limit) {
    rv = DCMF_ERR_EXHAUSTED;
  } else if ((f = calloc(1, sizeof(*f))) == NULL ||
             (f->data = malloc(frame->len)) == NULL ||
             (n_fds > 0 && (f->fds = malloc(n_fds * sizeof(int))) == NULL)) {
    rv = DCMF_ERR_NOMEM;
  }
  if (rv != 0) {
    if (f != NULL) {
      free(f->data);
      free(f);
    }
    for (size_t i = 0; i < n_fds; i++) {
      close(fds[i]);
    }
    return rv;
  }
  memcpy(f->data, frame->data, frame->len);
  f->len = frame->len;
  if (n_fds > 0) {
    memcpy(f->fds, fds, n_fds * sizeof(int));
  }
  f->n_fds = n_fds;
  f->must = must;
  if (l->tail != NULL) {
    l->tail->next = f;
  } else {
    l->head = f;
  }
  l->tail = f;
  l->queued++;
  if (!must) {
    l->refusable++;
  }
  /* Sent at once when the socket has room; a failure is reported from
   * the poll callback, never from inside the caller's send. */
  if (flush(l) != 0) {
    l->pending_err = DCMF_ERR_SYSTEM;
  }
  watch(l);
  return 0;
}

size_t dcmf_wlink_queued(const struct dcmf_wlink *l) {
  return l->queued;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dcmf_wlink_flush_blocking(struct dcmf_wlink *l, int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    if (l->ended || l->pending_err != 0 || flush(l) != 0) {
      return DCMF_ERR_SYSTEM;
    }
    if (l->head == NULL) {
      return 0;
    }
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      return DCMF_ERR_EXHAUSTED;
    }
    struct pollfd pfd = {.fd = l->fd, .events = POLLOUT};
    if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
      return DCMF_ERR_SYSTEM;
    }
  }
}

static void on_closed(uv_handle_t *h) {
  struct dcmf_wlink *l = h->data;
  dcmf_wire_reader_free(&l->reader);
  free(l);
}

void dcmf_wlink_close(struct dcmf_wlink *l) {
  if (l == NULL) {
    return;
  }
  l->ended = 1;
  drop_queue(l);
  uv_poll_stop(&l->poll);
  close(l->fd);
  l->fd = -1;
  uv_close((uv_handle_t *)&l->poll, on_closed);
}
