#include "wire.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "relay.h"

/* ---- writing ------------------------------------------------------------- */

int dcmf_wire_header(struct dcmf_buf *out, uint32_t type, size_t len,
                     size_t n_fds) {
  if (len > DCMF_WIRE_MAX_BODY || n_fds > DCMF_WIRE_MAX_FDS) {
    return DCMF_ERR_TOO_LARGE;
  }
  uint32_t head[3] = {type, (uint32_t)len, (uint32_t)n_fds};
  return dcmf_buf_append(out, head, sizeof(head));
}

static int put(struct dcmf_buf *out, const void *data, size_t len) {
  return dcmf_buf_append(out, data, len);
}

static int put_u32(struct dcmf_buf *out, uint32_t v) {
  return put(out, &v, sizeof(v));
}

/* A frame whose body is one or two pieces. */
static int frame2(struct dcmf_buf *out, uint32_t type, const void *a,
                  size_t alen, const void *b, size_t blen) {
  size_t was = out->len;
  int rv = dcmf_wire_header(out, type, alen + blen, 0);
  if (rv == 0 && alen > 0) {
    rv = put(out, a, alen);
  }
  if (rv == 0 && blen > 0) {
    rv = put(out, b, blen);
  }
  if (rv != 0) {
    out->len = was;
  }
  return rv;
}

/*
 * MEDIA body: the op, the description's bytes (its pointers are
 * meaningless on the other side and are rebuilt), the streams' bytes,
 * each route as (sid, url length, url), the MDC2 entries' bytes, then the
 * e2ae RTP leg's bytes when the description has one (the rtpleg pointer
 * travelling as non-NULL says so), then the e2ae TCP relay's likewise. Which descriptors travel is read from
 * the fd members (>= 0): the media's, the MDC2 ports', then the leg's RTP
 * and RTCP sockets, then the TCP relay's access and core sockets.
 */
int dcmf_wire_encode_media(struct dcmf_buf *out, enum dcmf_media_op op,
                           const struct dcmf_media_desc *desc, int *fds,
                           size_t *n_fds) {
  size_t was = out->len;
  size_t n = 0;
  if (desc->fd >= 0) {
    fds[n++] = desc->fd;
  }
  for (size_t i = 0; i < desc->n_mdc2; i++) {
    if (desc->mdc2[i].fd >= 0) {
      fds[n++] = desc->mdc2[i].fd;
    }
  }
  const struct dcmf_media_rtpleg *leg = desc->rtpleg;
  if (leg != NULL && leg->rtp_fd >= 0) {
    fds[n++] = leg->rtp_fd;
  }
  if (leg != NULL && leg->rtcp_fd >= 0) {
    fds[n++] = leg->rtcp_fd;
  }
  const struct dcmf_media_tcpleg *tcp = desc->tcpleg;
  for (int i = 0; tcp != NULL && i < 2; i++) {
    if (tcp->fd[i] >= 0) {
      fds[n++] = tcp->fd[i];
    }
  }
  const struct dcmf_media_msrpleg *msrp = desc->msrpleg;
  if (msrp != NULL && msrp->fd >= 0) {
    fds[n++] = msrp->fd;
  }
  size_t body = sizeof(uint32_t) + sizeof(*desc) +
                desc->n_streams * sizeof(*desc->streams) +
                desc->n_mdc2 * sizeof(*desc->mdc2) +
                (leg != NULL ? sizeof(*leg) : 0) +
                (tcp != NULL ? sizeof(*tcp) : 0) +
                (msrp != NULL ? sizeof(*msrp) : 0);
  for (size_t i = 0; i < desc->n_routes; i++) {
    body += 2 * sizeof(uint32_t) + strlen(desc->routes[i].url);
  }
  int rv = dcmf_wire_header(out, DCMF_WIRE_MEDIA, body, n);
  if (rv == 0) {
    rv = put_u32(out, (uint32_t)op);
  }
  if (rv == 0) {
    rv = put(out, desc, sizeof(*desc));
  }
  if (rv == 0 && desc->n_streams > 0) {
    rv = put(out, desc->streams, desc->n_streams * sizeof(*desc->streams));
  }
  for (size_t i = 0; rv == 0 && i < desc->n_routes; i++) {
    size_t len = strlen(desc->routes[i].url);
    rv = put_u32(out, desc->routes[i].sid);
    if (rv == 0) {
      rv = put_u32(out, (uint32_t)len);
    }
    if (rv == 0) {
      rv = put(out, desc->routes[i].url, len);
    }
  }
  if (rv == 0 && desc->n_mdc2 > 0) {
    rv = put(out, desc->mdc2, desc->n_mdc2 * sizeof(*desc->mdc2));
  }
  if (rv == 0 && leg != NULL) {
    rv = put(out, leg, sizeof(*leg));
  }
  if (rv == 0 && tcp != NULL) {
    rv = put(out, tcp, sizeof(*tcp));
  }
  if (rv == 0 && msrp != NULL) {
    rv = put(out, msrp, sizeof(*msrp));
  }
  if (rv != 0) {
    out->len = was;
    return rv;
  }
  *n_fds = n;
  return 0;
}

int dcmf_wire_encode_relay(struct dcmf_buf *out, enum dcmf_relay_op op,
                           const struct dcmf_relay_desc *desc, int *fds,
                           size_t *n_fds) {
  size_t n = 0;
  for (int side = 0; side < DCMF_RELAY_SIDES; side++) {
    if (desc->fds[side] >= 0) {
      fds[n++] = desc->fds[side];
    }
  }
  uint32_t op32 = (uint32_t)op;
  size_t was = out->len;
  int rv =
      dcmf_wire_header(out, DCMF_WIRE_RELAY, sizeof(op32) + sizeof(*desc), n);
  if (rv == 0) {
    rv = put(out, &op32, sizeof(op32));
  }
  if (rv == 0) {
    rv = put(out, desc, sizeof(*desc));
  }
  if (rv != 0) {
    out->len = was;
    return rv;
  }
  *n_fds = n;
  return 0;
}

int dcmf_wire_encode_relay_event(struct dcmf_buf *out,
                                 const struct dcmf_relay_event *ev) {
  return frame2(out, DCMF_WIRE_RELAY_EVENT, ev, sizeof(*ev), NULL, 0);
}

int dcmf_wire_encode_hello(struct dcmf_buf *out,
                           const struct dcmf_wire_hello *hello) {
  if (hello->cert_len > DCMF_WIRE_MAX_BODY / 8 ||
      hello->key_len > DCMF_WIRE_MAX_BODY / 8 ||
      hello->rsa_cert_len > DCMF_WIRE_MAX_BODY / 8 ||
      hello->rsa_key_len > DCMF_WIRE_MAX_BODY / 8 ||
      (hello->rsa_cert_len == 0) != (hello->rsa_key_len == 0)) {
    return DCMF_ERR_TOO_LARGE;
  }
  uint32_t head[6] = {hello->index,
                      hello->n_workers,
                      (uint32_t)hello->cert_len,
                      (uint32_t)hello->key_len,
                      (uint32_t)hello->rsa_cert_len,
                      (uint32_t)hello->rsa_key_len};
  size_t was = out->len;
  int rv = dcmf_wire_header(out, DCMF_WIRE_HELLO,
                            sizeof(head) + hello->cert_len + hello->key_len +
                                hello->rsa_cert_len + hello->rsa_key_len,
                            0);
  if (rv == 0) {
    rv = put(out, head, sizeof(head));
  }
  if (rv == 0) {
    rv = put(out, hello->cert_der, hello->cert_len);
  }
  if (rv == 0) {
    rv = put(out, hello->key_der, hello->key_len);
  }
  if (rv == 0 && hello->rsa_cert_len > 0) {
    rv = put(out, hello->rsa_cert_der, hello->rsa_cert_len);
  }
  if (rv == 0 && hello->rsa_key_len > 0) {
    rv = put(out, hello->rsa_key_der, hello->rsa_key_len);
  }
  if (rv != 0) {
    out->len = was;
  }
  return rv;
}

int dcmf_wire_encode_rsa_identity(struct dcmf_buf *out,
                                  const uint8_t *cert_der, size_t cert_len,
                                  const uint8_t *key_der, size_t key_len) {
  if (cert_len == 0 || key_len == 0 || cert_len > DCMF_WIRE_MAX_BODY / 8 ||
      key_len > DCMF_WIRE_MAX_BODY / 8) {
    return DCMF_ERR_TOO_LARGE;
  }
  uint32_t head[2] = {(uint32_t)cert_len, (uint32_t)key_len};
  size_t was = out->len;
  int rv = dcmf_wire_header(out, DCMF_WIRE_RSA_IDENTITY,
                            sizeof(head) + cert_len + key_len, 0);
  if (rv == 0) {
    rv = put(out, head, sizeof(head));
  }
  if (rv == 0) {
    rv = put(out, cert_der, cert_len);
  }
  if (rv == 0) {
    rv = put(out, key_der, key_len);
  }
  if (rv != 0) {
    out->len = was;
  }
  return rv;
}

int dcmf_wire_encode_ready(struct dcmf_buf *out, uint32_t status,
                           const char *text) {
  return frame2(out, DCMF_WIRE_READY, &status, sizeof(status), text,
                strlen(text));
}

int dcmf_wire_encode_event(struct dcmf_buf *out,
                           const struct dcmf_media_event *ev) {
  return frame2(out, DCMF_WIRE_EVENT, ev, sizeof(*ev), NULL, 0);
}

int dcmf_wire_encode_status(struct dcmf_buf *out,
                            const struct dcmf_wire_status *st) {
  return frame2(out, DCMF_WIRE_STATUS, st, sizeof(*st), NULL, 0);
}

/* ---- reading ------------------------------------------------------------- */

struct cursor {
  const uint8_t *p;
  size_t left;
};

static int take(struct cursor *c, void *out, size_t len) {
  if (len > c->left) {
    return DCMF_ERR_MALFORMED;
  }
  memcpy(out, c->p, len);
  c->p += len;
  c->left -= len;
  return 0;
}

/* 1 if |s| (capacity |cap|) holds a NUL. */
static int terminated(const char *s, size_t cap) {
  return memchr(s, '\0', cap) != NULL;
}

#define TERMINATED(arr) terminated((arr), sizeof(arr))

static int key_ok(const struct dcmf_media_key *k) {
  return TERMINATED(k->context_id) && TERMINATED(k->termination_id) &&
         TERMINATED(k->media_id);
}

/* The fixed part of a description as it arrived: strings terminated,
 * counts and enums in range. */
static int desc_ok(const struct dcmf_media_desc *d) {
  return key_ok(&d->key) && TERMINATED(d->local_ufrag) &&
         TERMINATED(d->local_pwd) && TERMINATED(d->local_tls_id) &&
         TERMINATED(d->remote_ufrag) && TERMINATED(d->remote_tls_id) &&
         TERMINATED(d->mdc2_base) && key_ok(&d->relay) &&
         d->remote_fp.count <= DCMF_FINGERPRINTS_MAX &&
         (d->dtls_rsa & ~1) == 0 &&
         (d->assoc == DCMF_ASSOC_SCTP || d->assoc == DCMF_ASSOC_SRTP ||
          d->assoc == DCMF_ASSOC_DTLS_DATA) &&
         d->n_streams <= DCMF_WIRE_MAX_FDS &&
         d->n_routes <= DCMF_WIRE_MAX_FDS && d->n_mdc2 <= DCMF_WIRE_MAX_FDS;
}

static int leg_addr_ok(const struct sockaddr_storage *a) {
  return a->ss_family == 0 || a->ss_family == AF_INET ||
         a->ss_family == AF_INET6;
}

/* An RTP leg as it arrived: known address families, flags 0 or 1, an
 * RTCP socket only without rtcp-mux and never one without the RTP one,
 * and sockets only with an ADD (an UPDATE keeps the running leg's, and
 * would overwrite them unclosed; a REMOVE's leg is only a marker). */
/* The T.140 part of an RTP leg: payload types of 7 bits and apart,
 * at most 5 generations, a direction of the four. */
static int t140_ok(const struct dcmf_media_t140 *t) {
  return ((t->on | t->use_red) & ~1) == 0 &&
         (!t->on || (t->pt_t140 <= 127 && t->pt_red <= 127 &&
                     (!t->use_red || t->pt_red != t->pt_t140) &&
                     t->generations <= 5 && t->cps_to_dc >= 1 &&
                     t->cps_to_dc <= 65535 && t->cps_to_rtp <= 65535 &&
                     t->direction >= 0 && t->direction <= 3));
}

static int rtpleg_ok(const struct dcmf_media_rtpleg *l, uint32_t op) {
  if (!t140_ok(&l->t140)) {
    return 0;
  }
  int flags = l->rtcp_mux | l->latching | l->core_avpf | l->access_avpf;
  return leg_addr_ok(&l->remote_rtp) && leg_addr_ok(&l->remote_rtcp) &&
         (flags & ~1) == 0 && (l->rtcp_fd < 0 || l->rtp_fd >= 0) &&
         (!l->rtcp_mux || l->rtcp_fd < 0) &&
         (op == DCMF_MEDIA_OP_ADD || l->rtp_fd < 0);
}

/* A TCP relay leg as it arrived: enums in range, flags 0 or 1, known
 * address families, at most DCMF_FINGERPRINTS_MAX fingerprints,
 * NUL-terminated MSRP URIs and paths, and sockets only with an ADD. */
static int tcpleg_ok(const struct dcmf_media_tcpleg *l, uint32_t op) {
  for (int i = 0; i < 2; i++) {
    if ((unsigned)l->setup[i] > DCMF_TCP_MERGE || !leg_addr_ok(&l->remote[i]) ||
        (op != DCMF_MEDIA_OP_ADD && l->fd[i] >= 0)) {
      return 0;
    }
  }
  for (int i = 0; i < 2; i++) {
    if (!TERMINATED(l->msrp_own_uri[i]) || !TERMINATED(l->msrp_peer_path[i])) {
      return 0;
    }
  }
  return (unsigned)l->handling <= DCMF_TCP_STATE_AWARE_CHANGE &&
         ((l->tls | l->tls_client | l->msrp_aware) & ~1) == 0 &&
         /* the MSRP-aware relay reads the UE's chunks out of TLS */
         (!l->msrp_aware || l->tls) &&
         l->remote_fp.count <= DCMF_FINGERPRINTS_MAX;
}

/* An MSRP leg as it arrived: enums in range, a known address family,
 * NUL-terminated strings, and a socket only with an ADD. */
static int msrpleg_ok(const struct dcmf_media_msrpleg *l, uint32_t op) {
  return (unsigned)l->setup <= DCMF_TCP_MERGE &&
         (unsigned)l->handling <= DCMF_TCP_STATE_AWARE_CHANGE &&
         (l->aware & ~1) == 0 && leg_addr_ok(&l->remote) &&
         TERMINATED(l->dc_own_uri) && TERMINATED(l->tcp_own_uri) &&
         TERMINATED(l->dc_peer_path) && TERMINATED(l->tcp_peer_path) &&
         (op == DCMF_MEDIA_OP_ADD || l->fd < 0);
}

int dcmf_wire_decode_media(const uint8_t *body, size_t len, int *fds,
                           size_t n_fds, enum dcmf_media_op *op,
                           struct dcmf_media_desc *desc) {
  struct cursor c = {body, len};
  uint32_t op32;
  struct dcmf_media_desc d;
  if (take(&c, &op32, sizeof(op32)) != 0 || op32 > DCMF_MEDIA_OP_REMOVE ||
      take(&c, &d, sizeof(d)) != 0 || !desc_ok(&d)) {
    return DCMF_ERR_MALFORMED;
  }
  /* Every count is checked against the bytes left before anything is
   * allocated, so a lying count cannot make a huge allocation. */
  if (d.n_streams > c.left / sizeof(*d.streams) ||
      d.n_mdc2 > c.left / sizeof(*d.mdc2) ||
      d.n_routes > c.left / (2 * sizeof(uint32_t))) {
    return DCMF_ERR_MALFORMED;
  }
  d.streams = NULL;
  d.routes = NULL;
  d.mdc2 = NULL;
  int has_leg = d.rtpleg != NULL;
  struct dcmf_media_rtpleg leg;
  d.rtpleg = NULL;
  int has_tcp = d.tcpleg != NULL;
  struct dcmf_media_tcpleg tcp;
  d.tcpleg = NULL;
  int has_msrp = d.msrpleg != NULL;
  struct dcmf_media_msrpleg msrp;
  d.msrpleg = NULL;
  if (d.n_streams > 0) {
    d.streams = calloc(d.n_streams, sizeof(*d.streams));
  }
  if (d.n_routes > 0) {
    d.routes = calloc(d.n_routes, sizeof(*d.routes));
  }
  if (d.n_mdc2 > 0) {
    d.mdc2 = calloc(d.n_mdc2, sizeof(*d.mdc2));
  }
  int rv = 0;
  if ((d.n_streams > 0 && d.streams == NULL) ||
      (d.n_routes > 0 && d.routes == NULL) ||
      (d.n_mdc2 > 0 && d.mdc2 == NULL)) {
    rv = DCMF_ERR_NOMEM;
  }
  if (rv == 0 && d.n_streams > 0) {
    rv = take(&c, d.streams, d.n_streams * sizeof(*d.streams));
  }
  for (size_t i = 0; rv == 0 && i < d.n_streams; i++) {
    rv = TERMINATED(d.streams[i].protocol) ? 0 : DCMF_ERR_MALFORMED;
  }
  for (size_t i = 0; rv == 0 && i < d.n_routes; i++) {
    uint32_t sid, ulen;
    rv = take(&c, &sid, sizeof(sid));
    if (rv == 0) {
      rv = take(&c, &ulen, sizeof(ulen));
    }
    if (rv == 0 && (sid > UINT16_MAX || ulen >= sizeof(d.routes[i].url))) {
      rv = DCMF_ERR_MALFORMED;
    }
    if (rv == 0) {
      d.routes[i].sid = (uint16_t)sid;
      rv = take(&c, d.routes[i].url, ulen); /* calloc'd: NUL follows */
    }
  }
  if (rv == 0 && d.n_mdc2 > 0) {
    rv = take(&c, d.mdc2, d.n_mdc2 * sizeof(*d.mdc2));
  }
  if (rv == 0 && has_leg) {
    rv = take(&c, &leg, sizeof(leg));
    if (rv == 0 && !rtpleg_ok(&leg, op32)) {
      rv = DCMF_ERR_MALFORMED;
    }
  }
  if (rv == 0 && has_tcp) {
    rv = take(&c, &tcp, sizeof(tcp));
    if (rv == 0 && !tcpleg_ok(&tcp, op32)) {
      rv = DCMF_ERR_MALFORMED;
    }
  }
  if (rv == 0 && has_msrp) {
    rv = take(&c, &msrp, sizeof(msrp));
    if (rv == 0 && !msrpleg_ok(&msrp, op32)) {
      rv = DCMF_ERR_MALFORMED;
    }
  }
  /* The descriptors: the media's own (when it had one), each MDC2 port
   * that had one, then the leg's, exactly as many as the frame carried. */
  size_t want = d.fd >= 0 ? 1 : 0;
  for (size_t i = 0; rv == 0 && i < d.n_mdc2; i++) {
    want += d.mdc2[i].fd >= 0 ? 1 : 0;
  }
  if (rv == 0 && has_leg) {
    want += (size_t)(leg.rtp_fd >= 0) + (size_t)(leg.rtcp_fd >= 0);
  }
  if (rv == 0 && has_tcp) {
    want += (size_t)(tcp.fd[0] >= 0) + (size_t)(tcp.fd[1] >= 0);
    d.tcpleg = malloc(sizeof(*d.tcpleg));
    if (d.tcpleg == NULL) {
      rv = DCMF_ERR_NOMEM;
    }
  }
  if (rv == 0 && has_msrp) {
    want += (size_t)(msrp.fd >= 0);
    d.msrpleg = malloc(sizeof(*d.msrpleg));
    if (d.msrpleg == NULL) {
      rv = DCMF_ERR_NOMEM;
    }
  }
  if (rv == 0 && has_leg) {
    d.rtpleg = malloc(sizeof(*d.rtpleg));
    if (d.rtpleg == NULL) {
      rv = DCMF_ERR_NOMEM;
    }
  }
  if (rv == 0 && (c.left != 0 || want != n_fds)) {
    rv = DCMF_ERR_MALFORMED;
  }
  if (rv != 0) {
    free(d.streams);
    free(d.routes);
    free(d.mdc2);
    free(d.rtpleg);
    free(d.tcpleg);
    free(d.msrpleg);
    return rv;
  }
  size_t next = 0;
  if (d.fd >= 0) {
    d.fd = fds[next];
    fds[next++] = -1;
  }
  for (size_t i = 0; i < d.n_mdc2; i++) {
    if (d.mdc2[i].fd >= 0) {
      d.mdc2[i].fd = fds[next];
      fds[next++] = -1;
    }
  }
  if (d.rtpleg != NULL) {
    if (leg.rtp_fd >= 0) {
      leg.rtp_fd = fds[next];
      fds[next++] = -1;
    }
    if (leg.rtcp_fd >= 0) {
      leg.rtcp_fd = fds[next];
      fds[next++] = -1;
    }
    *d.rtpleg = leg;
  }
  if (d.tcpleg != NULL) {
    for (int i = 0; i < 2; i++) {
      if (tcp.fd[i] >= 0) {
        tcp.fd[i] = fds[next];
        fds[next++] = -1;
      }
    }
    *d.tcpleg = tcp;
  }
  if (d.msrpleg != NULL) {
    if (msrp.fd >= 0) {
      msrp.fd = fds[next];
      fds[next++] = -1;
    }
    *d.msrpleg = msrp;
  }
  *op = (enum dcmf_media_op)op32;
  *desc = d;
  return 0;
}

static int addr_ok(const struct sockaddr_storage *a) {
  return a->ss_family == AF_INET || a->ss_family == AF_INET6;
}

int dcmf_wire_decode_relay(const uint8_t *body, size_t len, int *fds,
                           size_t n_fds, enum dcmf_relay_op *op,
                           struct dcmf_relay_desc *desc) {
  struct cursor c = {body, len};
  uint32_t op32;
  struct dcmf_relay_desc d;
  if (take(&c, &op32, sizeof(op32)) != 0 || op32 > DCMF_RELAY_OP_REMOVE ||
      take(&c, &d, sizeof(d)) != 0 || c.left != 0) {
    return DCMF_ERR_MALFORMED;
  }
  size_t want = (size_t)(d.fds[0] >= 0) + (size_t)(d.fds[1] >= 0);
  if (want != n_fds || (op32 != DCMF_RELAY_OP_REMOVE &&
                        dcmf_relay_config_check(&d.config) != 0)) {
    return DCMF_ERR_MALFORMED;
  }
  size_t next = 0;
  for (int side = 0; side < DCMF_RELAY_SIDES; side++) {
    if (d.fds[side] >= 0) {
      d.fds[side] = fds[next];
      fds[next++] = -1;
    }
  }
  *op = (enum dcmf_relay_op)op32;
  *desc = d;
  return 0;
}

int dcmf_wire_decode_relay_event(const uint8_t *body, size_t len,
                                 struct dcmf_relay_event *ev) {
  if (len != sizeof(*ev)) {
    return DCMF_ERR_MALFORMED;
  }
  memcpy(ev, body, sizeof(*ev));
  if ((ev->kind != DCMF_RELAY_EV_STATE && ev->kind != DCMF_RELAY_EV_RELEASED) ||
      (ev->latched && !addr_ok(&ev->peer))) {
    return DCMF_ERR_MALFORMED;
  }
  return 0;
}

int dcmf_wire_decode_hello(const uint8_t *body, size_t len,
                           struct dcmf_wire_hello *hello) {
  uint32_t head[6];
  struct cursor c = {body, len};
  if (take(&c, head, sizeof(head)) != 0 || head[1] == 0 || head[0] >= head[1] ||
      head[2] == 0 || head[3] == 0 || (head[4] == 0) != (head[5] == 0) ||
      (size_t)head[2] + head[3] + head[4] + head[5] != c.left) {
    return DCMF_ERR_MALFORMED;
  }
  hello->index = head[0];
  hello->n_workers = head[1];
  hello->cert_der = c.p;
  hello->cert_len = head[2];
  hello->key_der = c.p + head[2];
  hello->key_len = head[3];
  hello->rsa_cert_der = head[4] > 0 ? c.p + head[2] + head[3] : NULL;
  hello->rsa_cert_len = head[4];
  hello->rsa_key_der = head[5] > 0 ? c.p + head[2] + head[3] + head[4] : NULL;
  hello->rsa_key_len = head[5];
  return 0;
}

int dcmf_wire_decode_rsa_identity(const uint8_t *body, size_t len,
                                  const uint8_t **cert_der, size_t *cert_len,
                                  const uint8_t **key_der, size_t *key_len) {
  uint32_t head[2];
  struct cursor c = {body, len};
  if (take(&c, head, sizeof(head)) != 0 || head[0] == 0 || head[1] == 0 ||
      (size_t)head[0] + head[1] != c.left) {
    return DCMF_ERR_MALFORMED;
  }
  *cert_der = c.p;
  *cert_len = head[0];
  *key_der = c.p + head[0];
  *key_len = head[1];
  return 0;
}

int dcmf_wire_decode_ready(const uint8_t *body, size_t len, uint32_t *status,
                           char *text, size_t cap) {
  struct cursor c = {body, len};
  if (cap == 0 || take(&c, status, sizeof(*status)) != 0) {
    return DCMF_ERR_MALFORMED;
  }
  size_t n = c.left < cap - 1 ? c.left : cap - 1;
  memcpy(text, c.p, n);
  text[n] = '\0';
  return 0;
}

int dcmf_wire_decode_event(const uint8_t *body, size_t len,
                           struct dcmf_media_event *ev) {
  if (len != sizeof(*ev)) {
    return DCMF_ERR_MALFORMED;
  }
  memcpy(ev, body, sizeof(*ev));
  return key_ok(&ev->key) && TERMINATED(ev->event) && TERMINATED(ev->detail)
             ? 0
             : DCMF_ERR_MALFORMED;
}

int dcmf_wire_decode_status(const uint8_t *body, size_t len,
                            struct dcmf_wire_status *st) {
  if (len != sizeof(*st)) {
    return DCMF_ERR_MALFORMED;
  }
  memcpy(st, body, sizeof(*st));
  return 0;
}

/* ---- reassembly ---------------------------------------------------------- */

int dcmf_wire_reader_feed(struct dcmf_wire_reader *r, const uint8_t *data,
                          size_t len) {
  if (len == 0) {
    return 0; /* an empty reader has no buffer to copy nothing into */
  }
  if (r->consumed > 0) { /* slide what is left to the front */
    memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
    r->len -= r->consumed;
    r->consumed = 0;
  }
  if (len > r->cap - r->len) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap - r->len < len) {
      cap *= 2;
    }
    uint8_t *buf = realloc(r->buf, cap);
    if (buf == NULL) {
      return DCMF_ERR_NOMEM;
    }
    r->buf = buf;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, data, len);
  r->len += len;
  return 0;
}

int dcmf_wire_reader_add_fd(struct dcmf_wire_reader *r, int fd) {
  if (r->n_fds == r->cap_fds) {
    size_t cap = r->cap_fds ? r->cap_fds * 2 : 16;
    int *fds = realloc(r->fds, cap * sizeof(*fds));
    if (fds == NULL) {
      close(fd);
      return DCMF_ERR_NOMEM;
    }
    r->fds = fds;
    r->cap_fds = cap;
  }
  r->fds[r->n_fds++] = fd;
  return 0;
}

int dcmf_wire_reader_next(struct dcmf_wire_reader *r,
                          struct dcmf_wire_frame *f) {
  size_t avail = r->len - r->consumed;
  if (avail < DCMF_WIRE_HEADER) {
    return 0;
  }
  uint32_t head[3];
  memcpy(head, r->buf + r->consumed, sizeof(head));
  if (head[1] > DCMF_WIRE_MAX_BODY || head[2] > DCMF_WIRE_MAX_FDS) {
    return DCMF_ERR_MALFORMED;
  }
  if (avail - DCMF_WIRE_HEADER < head[1]) {
    return 0;
  }
  if (r->n_fds < head[2]) {
    return DCMF_ERR_MALFORMED; /* they come with the frame's first bytes */
  }
  f->type = head[0];
  f->body = r->buf + r->consumed + DCMF_WIRE_HEADER;
  f->len = head[1];
  f->fds = r->fds;
  f->n_fds = head[2];
  return 1;
}

void dcmf_wire_reader_consume(struct dcmf_wire_reader *r,
                              const struct dcmf_wire_frame *f) {
  for (size_t i = 0; i < f->n_fds; i++) {
    if (r->fds[i] >= 0) {
      close(r->fds[i]);
    }
  }
  if (f->n_fds > 0) {
    memmove(r->fds, r->fds + f->n_fds, (r->n_fds - f->n_fds) * sizeof(int));
    r->n_fds -= f->n_fds;
  }
  r->consumed += DCMF_WIRE_HEADER + f->len;
  if (r->consumed == r->len) {
    r->consumed = 0;
    r->len = 0;
  }
}

void dcmf_wire_reader_free(struct dcmf_wire_reader *r) {
  for (size_t i = 0; i < r->n_fds; i++) {
    if (r->fds[i] >= 0) {
      close(r->fds[i]);
    }
  }
  free(r->fds);
  free(r->buf);
  memset(r, 0, sizeof(*r));
}
