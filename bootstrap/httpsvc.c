/* HTTP over data channels as a session service: the glue between a
 * channel and its httpdc engine, shared by the bootstrap repository and
 * HTTP-proxy mode (httpsvc.h). */
#include "httpsvc.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "repo.h"

/* Messages one flush sends before it yields to the loop. SCTP's send
 * buffer (1 MiB) normally says "no room" long before. */
#define FLUSH_ROUNDS 256

struct stalled {
  uint8_t *data;
  size_t len;
};

/* HTTP on one data channel. */
struct chan {
  struct dcmf_httpsvc *m;
  struct chan *prev, *next; /* the media's channels */
  uint16_t sid;
  int inband;
  int dead; /* closed during a walk: freed when the walk ends */
  struct dcmf_httpdc *engine;
  void *backend; /* the make function's state, for drop */
  uint8_t *held; /* a message SCTP had no room for; owned */
  size_t held_len;
  struct stalled in[DCMF_HTTPSVC_STALL_MAX];
  size_t n_in;
};

struct dcmf_httpsvc {
  struct dcmf_svc_host *host;
  struct dcmf_httpsvc_backend_ops ops;
  struct chan *chans;
  size_t n_inband;
  int walking; /* a writable walk runs over |chans| */
};

static void flush(struct chan *c);

int dcmf_httpsvc_attach(struct dcmf_httpsvc **out, struct dcmf_svc_host *host,
                        const struct dcmf_httpsvc_backend_ops *ops) {
  struct dcmf_httpsvc *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return DCMF_ERR_NOMEM;
  }
  m->host = host;
  m->ops = *ops;
  *out = m;
  return 0;
}

void dcmf_httpsvc_detach(void *media) {
  struct dcmf_httpsvc *m = media;
  /* The session closed every channel before: only dead nodes remain if a
   * walk was cut short, which cannot happen on one thread; free anyway. */
  while (m->chans != NULL) {
    struct chan *c = m->chans;
    m->chans = c->next;
    free(c);
  }
  free(m);
}

struct dcmf_svc_host *dcmf_httpsvc_host(const struct dcmf_httpsvc *m) {
  return m->host;
}

static int is_bootstrap_sid(uint16_t sid) {
  return sid == 0 || sid == 10 || sid == 100 || sid == 110;
}

int dcmf_httpsvc_wants(const struct dcmf_svc_flow *flow, int app_streams) {
  return flow->kind == DCMF_ASSOC_SCTP && flow->id <= UINT16_MAX &&
         strcmp(flow->protocol, "http") == 0 &&
         (is_bootstrap_sid((uint16_t)flow->id) || !flow->negotiated ||
          (app_streams && flow->id >= 1000));
}

/* The backend handed the engine data (possibly from inside the engine,
 * on a resume): send it from the loop, not from here. */
static void wake(void *user) {
  struct chan *c = user;
  c->m->host->wake(c->m->host);
}

static void chan_release(struct chan *c) {
  dcmf_httpdc_del(c->engine); /* cancels what an upstream still runs */
  c->engine = NULL;
  if (c->m->ops.drop != NULL) {
    c->m->ops.drop(c->backend);
  }
  c->backend = NULL;
  for (size_t i = 0; i < c->n_in; i++) {
    free(c->in[i].data);
  }
  c->n_in = 0;
  free(c->held);
  c->held = NULL;
}

static void chan_unlink(struct chan *c) {
  struct dcmf_httpsvc *m = c->m;
  if (c->prev != NULL) {
    c->prev->next = c->next;
  } else {
    m->chans = c->next;
  }
  if (c->next != NULL) {
    c->next->prev = c->prev;
  }
}

int dcmf_httpsvc_open(void *media, const struct dcmf_svc_flow *flow,
                      void **out) {
  struct dcmf_httpsvc *m = media;
  if (!flow->negotiated && m->n_inband >= DCMF_HTTPSVC_INBAND_MAX) {
    DCMF_LOGD(m->host->log, "media",
              "%s: stream %u: refused, %d in-band HTTP channels are open",
              m->host->name, flow->id, DCMF_HTTPSVC_INBAND_MAX);
    return DCMF_ERR_EXHAUSTED;
  }
  struct chan *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return DCMF_ERR_NOMEM;
  }
  c->m = m;
  c->sid = (uint16_t)flow->id; /* an SCTP stream (dcmf_httpsvc_wants) */
  struct dcmf_httpdc_settings hs = {.max_message_size =
                                        m->host->desc->max_message_size};
  struct dcmf_httpdc_backend be;
  int rv = m->ops.make(m->ops.user, m->host, flow, &hs, &be, wake, c,
                       &c->backend);
  if (rv != 0) {
    free(c);
    return rv;
  }
  rv = dcmf_httpdc_new(&c->engine, &hs, &be);
  if (rv == 0 &&
      dcmf_httpdc_max_message_size(c->engine) > m->ops.tx_scratch_len) {
    rv = DCMF_ERR_TOO_LARGE;
  }
  if (rv != 0) {
    chan_release(c);
    free(c);
    return rv;
  }
  c->inband = !flow->negotiated;
  m->n_inband += (size_t)c->inband;
  c->next = m->chans;
  if (c->next != NULL) {
    c->next->prev = c;
  }
  m->chans = c;
  *out = c;
  return 0;
}

void dcmf_httpsvc_closed(void *media, void *chan,
                         const struct dcmf_svc_flow *flow) {
  (void)flow;
  struct dcmf_httpsvc *m = media;
  struct chan *c = chan;
  chan_release(c);
  m->n_inband -= (size_t)c->inband;
  c->inband = 0;
  if (m->walking) {
    c->dead = 1; /* the walk holds a pointer to it or its neighbours */
    return;
  }
  chan_unlink(c);
  free(c);
}

/* Offers stalled input to the engine again, in order. */
static void feed_stalled(struct chan *c) {
  while (c->n_in > 0 && dcmf_httpdc_want_read(c->engine)) {
    int rv = dcmf_httpdc_recv(c->engine, c->in[0].data, c->in[0].len);
    if (rv == DCMF_ERR_EXHAUSTED) {
      return;
    }
    free(c->in[0].data);
    memmove(c->in, c->in + 1, --c->n_in * sizeof(c->in[0]));
  }
}

/* Sends one message. Returns 0; DCMF_ERR_EXHAUSTED when the association
 * has no room (the message is then kept in |c->held|, and writable sends
 * it again); or the error that makes this channel unusable (a response
 * would go on with bytes missing). */
static int send_msg(struct chan *c, const uint8_t *msg, size_t len) {
  struct dcmf_svc_host *h = c->m->host;
  /* Binary (PPID 53): a body may be any bytes, and a string message
   * would be decoded as UTF-8 by the receiving stack. */
  int rv = h->send(h, c->sid, 1, msg, len);
  if (rv == DCMF_ERR_EXHAUSTED && c->held == NULL) {
    c->held = malloc(len);
    if (c->held == NULL) {
      return DCMF_ERR_NOMEM;
    }
    memcpy(c->held, msg, len);
    c->held_len = len;
  }
  return rv;
}

/* A message of this channel could not be made or sent and never will
 * be: the phone's response cannot be completed, so the channel is closed
 * (as an HTTP/1.1 server closes the connection). |c| is released. */
static void fail(struct chan *c, int err) {
  struct dcmf_svc_host *h = c->m->host;
  DCMF_LOGW(h->log, "media", "%s: stream %u: sending failed (%s); channel "
            "closed", h->name, c->sid, dcmf_strerror(err));
  h->close(h, c->sid);
}

/* Hands the engine's output to the association until it has no room
 * (then writable calls again), the engine has nothing more (the backend
 * wakes us when it has), or a round limit is reached (then it yields to
 * the loop and comes back). It never waits and never spins. */
static void flush(struct chan *c) {
  struct dcmf_httpsvc *m = c->m;
  if (c->held != NULL) {
    int rv = send_msg(c, c->held, c->held_len);
    if (rv == DCMF_ERR_EXHAUSTED) {
      return; /* resumed by writable */
    }
    free(c->held);
    c->held = NULL;
    if (rv != 0) {
      fail(c, rv);
      return;
    }
  }
  for (int rounds = 0;; rounds++) {
    if (rounds == FLUSH_ROUNDS) {
      m->host->wake(m->host); /* more to send: the other sessions go first */
      return;
    }
    size_t len = 0;
    int rv = dcmf_httpdc_write(c->engine, m->ops.tx_scratch,
                               m->ops.tx_scratch_len, &len);
    if (rv != 0) {
      fail(c, rv); /* the engine can only be deleted */
      return;
    }
    if (len == 0) {
      feed_stalled(c);
      if (!dcmf_httpdc_want_write(c->engine)) {
        break;
      }
      continue; /* the empty write retired an ended response */
    }
    rv = send_msg(c, m->ops.tx_scratch, len);
    if (rv == DCMF_ERR_EXHAUSTED) {
      return;
    }
    if (rv != 0) {
      fail(c, rv);
      return;
    }
  }
  if (dcmf_httpdc_get_state(c->engine) == DCMF_HTTPDC_CLOSED) {
    m->host->close(m->host, c->sid);
  }
}

void dcmf_httpsvc_message(void *media, void *chan,
                          const struct dcmf_svc_flow *flow, int binary,
                          const uint8_t *data, size_t len) {
  (void)media;
  (void)flow;
  (void)binary;
  struct chan *c = chan;
  if (c->n_in > 0 ||
      dcmf_httpdc_recv(c->engine, data, len) == DCMF_ERR_EXHAUSTED) {
    if (c->n_in == DCMF_HTTPSVC_STALL_MAX) {
      /* The peer pipelines far more than it reads: stop serving it. */
      c->m->host->close(c->m->host, c->sid);
      return;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
      return;
    }
    memcpy(copy, data, len);
    c->in[c->n_in++] = (struct stalled){copy, len};
  }
  flush(c);
}

void dcmf_httpsvc_writable(void *media) {
  struct dcmf_httpsvc *m = media;
  m->walking++;
  for (struct chan *c = m->chans; c != NULL; c = c->next) {
    if (!c->dead) {
      flush(c);
    }
  }
  if (--m->walking == 0) {
    struct chan *c = m->chans;
    while (c != NULL) {
      struct chan *next = c->next;
      if (c->dead) {
        chan_unlink(c);
        free(c);
      }
      c = next;
    }
  }
}

/* ---- the bootstrap repository --------------------------------------------- */

struct boot_worker {
  const struct dcmf_repo *repo;
  uint8_t *tx_scratch;
  size_t tx_scratch_len;
};

static int boot_init(void **worker, const struct dcmf_svc_worker_env *env,
                     const void *config, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  struct boot_worker *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    return DCMF_ERR_NOMEM;
  }
  w->repo = config;
  w->tx_scratch = env->tx_scratch;
  w->tx_scratch_len = env->tx_scratch_len;
  *worker = w;
  return 0;
}

static void boot_free(void *worker) { free(worker); }

static int boot_make(void *user, struct dcmf_svc_host *host,
                     const struct dcmf_svc_flow *flow,
                     struct dcmf_httpdc_settings *hs,
                     struct dcmf_httpdc_backend *be,
                     void (*wake_fn)(void *), void *wake_user, void **state) {
  (void)host;
  (void)flow;
  (void)hs;
  (void)wake_fn;
  (void)wake_user;
  const struct boot_worker *w = user;
  dcmf_httpdc_repo_backend(be, w->repo);
  *state = NULL;
  return 0;
}

static int boot_attach(void **media, void *worker, struct dcmf_svc_host *host) {
  struct boot_worker *w = worker;
  struct dcmf_httpsvc_backend_ops ops = {.make = boot_make,
                                         .user = w,
                                         .tx_scratch = w->tx_scratch,
                                         .tx_scratch_len = w->tx_scratch_len};
  return dcmf_httpsvc_attach((struct dcmf_httpsvc **)media, host, &ops);
}

/* Medias in HTTP-proxy mode are the proxy service's. */
static int boot_match(void *media, const struct dcmf_svc_flow *flow) {
  struct dcmf_httpsvc *m = media;
  return !m->host->desc->http_proxy && dcmf_httpsvc_wants(flow, 0);
}

const struct dcmf_service dcmf_bootstrap_service = {
    .name = "bootstrap",
    .init = boot_init,
    .free = boot_free,
    .attach = boot_attach,
    .detach = dcmf_httpsvc_detach,
    .match = boot_match,
    .open = dcmf_httpsvc_open,
    .message = dcmf_httpsvc_message,
    .writable = dcmf_httpsvc_writable,
    .closed = dcmf_httpsvc_closed,
};
