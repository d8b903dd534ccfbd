#include "media.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"

static void copy_str(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src ? src : "");
}

/* Reads a TS 29.571 Endpoint into a socket address. */
static int endpoint_addr(json_t *ep, struct sockaddr_storage *out) {
  json_t *ip = json_object_get(ep, "ip");
  json_int_t port = json_integer_value(json_object_get(ep, "portNumber"));
  const char *v4 = json_string_value(json_object_get(ip, "ipv4Addr"));
  const char *v6 = json_string_value(json_object_get(ip, "ipv6Addr"));
  memset(out, 0, sizeof(*out));
  if (v4 != NULL) {
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, v4, &a->sin_addr) == 1 && port > 0;
  }
  if (v6 != NULL) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    return inet_pton(AF_INET6, v6, &a->sin6_addr) == 1 && port > 0;
  }
  return 0;
}

static int build_routes(struct dcmf_media_desc *d, json_t *map) {
  size_t n = json_object_size(map);
  if (n == 0) {
    return 0;
  }
  d->routes = calloc(n, sizeof(*d->routes));
  if (d->routes == NULL) {
    return DCMF_ERR_NOMEM;
  }
  const char *key;
  json_t *e;
  json_object_foreach(map, key, e) {
    struct dcmf_media_route *r = &d->routes[d->n_routes++];
    r->sid = (uint16_t)strtoul(key, NULL, 10);
    copy_str(r->url, sizeof(r->url),
             json_string_value(json_object_get(e, "replaceHttpUrl")));
  }
  return 0;
}

static int build_streams(struct dcmf_media_desc *d, json_t *streams) {
  size_t n = json_object_size(streams);
  d->streams = calloc(n ? n : 1, sizeof(*d->streams));
  if (d->streams == NULL) {
    return DCMF_ERR_NOMEM;
  }
  const char *key;
  json_t *s;
  json_object_foreach(streams, key, s) {
    struct dcmf_media_stream *st = &d->streams[d->n_streams++];
    st->sid = (uint16_t)strtoul(key, NULL, 10);
    copy_str(st->protocol, sizeof(st->protocol),
             json_string_value(json_object_get(s, "subprotocol")));
    json_t *order = json_object_get(s, "order");
    /* dcmap's default is ordered (RFC 8864). */
    st->rel.unordered = json_is_false(order);
    /* A limit of 0 is no limit: TS 29.571 defaults both to 0, and
     * validation let at most one of them be non-zero. */
    json_int_t retry = json_integer_value(json_object_get(s, "maxRetry"));
    json_int_t time = json_integer_value(json_object_get(s, "maxTime"));
    if (retry > 0) {
      st->rel.policy = 1;
      st->rel.value = (uint32_t)retry;
    } else if (time > 0) {
      st->rel.policy = 2;
      st->rel.value = (uint32_t)time;
    }
    json_t *prio = json_object_get(s, "priority");
    st->priority = prio ? (uint16_t)json_integer_value(prio) : 256;
  }
  return 0;
}

/* The DC media this one is relayed to: the one its dcRelay names, or
 * the one whose dcRelay names it (validation made that unique). */
static void find_relay(struct dcmf_media_desc *d, const struct dcmf_context *ctx,
                       json_t *media) {
  json_t *own = json_object_get(json_object_get(media, "dcMedia"), "dcRelay");
  const char *tid = json_string_value(json_object_get(own, "terminationId"));
  const char *mid = json_string_value(json_object_get(own, "mediaId"));
  size_t i, j;
  json_t *t, *m;
  json_array_foreach(json_object_get(ctx->doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      json_t *r = json_object_get(json_object_get(m, "dcMedia"), "dcRelay");
      const char *rt = json_string_value(json_object_get(r, "terminationId"));
      const char *rm = json_string_value(json_object_get(r, "mediaId"));
      if (tid == NULL && (rt == NULL || rm == NULL ||
                          strcmp(rt, d->key.termination_id) != 0 ||
                          strcmp(rm, d->key.media_id) != 0)) {
        continue; /* we name nobody and |m| does not name us */
      }
      const char *mt = json_string_value(json_object_get(t, "terminationId"));
      const char *mm = json_string_value(json_object_get(m, "mediaId"));
      if (mt == NULL || mm == NULL ||
          (tid != NULL && (strcmp(mt, tid) != 0 || strcmp(mm, mid) != 0))) {
        continue;
      }
      d->has_relay = 1;
      copy_str(d->relay.context_id, sizeof(d->relay.context_id), ctx->id);
      copy_str(d->relay.termination_id, sizeof(d->relay.termination_id), mt);
      copy_str(d->relay.media_id, sizeof(d->relay.media_id), mm);
      return;
    }
  }
}

int dcmf_media_desc_build(struct dcmf_media_desc *d,
                          const struct dcmf_context *ctx,
                          const struct dcmf_media *m, json_t *media,
                          uint16_t local_sctp_port) {
  memset(d, 0, sizeof(*d));
  d->fd = -1;
  copy_str(d->key.context_id, sizeof(d->key.context_id), ctx->id);
  copy_str(d->key.termination_id, sizeof(d->key.termination_id),
           m->termination_id);
  copy_str(d->key.media_id, sizeof(d->key.media_id), m->media_id);
  d->port = m->port;
  copy_str(d->local_ufrag, sizeof(d->local_ufrag), m->ufrag);
  copy_str(d->local_pwd, sizeof(d->local_pwd), m->pwd);
  copy_str(d->local_tls_id, sizeof(d->local_tls_id), m->tls_id);
  d->dtls_server = strcmp(m->local_setup, "PASSIVE") == 0;
  json_t *ice = json_object_get(media, "remoteIceInfo");
  copy_str(d->remote_ufrag, sizeof(d->remote_ufrag),
           json_string_value(json_object_get(ice, "ufrag")));
  d->remote_no_ice = ice == NULL;
  d->has_remote_addr =
      endpoint_addr(json_object_get(media, "remoteMbEndpoint"),
                    &d->remote_addr);
  json_t *dc = json_object_get(media, "dcMedia");
  json_t *rdc = json_object_get(dc, "remoteDcEndpoint");
  const char *fp = json_string_value(json_object_get(rdc, "fingerprint"));
  if (fp != NULL && dcmf_fingerprint_parse(fp, &d->remote_fp) != 0) {
    memset(&d->remote_fp, 0, sizeof(d->remote_fp)); /* validated earlier */
  }
  copy_str(d->remote_tls_id, sizeof(d->remote_tls_id),
           json_string_value(json_object_get(rdc, "tlsId")));
  d->local_sctp_port = local_sctp_port;
  json_t *rport = json_object_get(rdc, "sctpPort");
  d->remote_sctp_port = rport ? (uint16_t)json_integer_value(rport) : 5000;
  json_t *mms = json_object_get(dc, "maxMessageSize");
  d->max_message_size = (size_t)(mms ? json_integer_value(mms) : 64) * 1024;
  const char *proxy = json_string_value(json_object_get(dc,
                                                        "mediaProxyConfig"));
  d->http_proxy = proxy != NULL && strcmp(proxy, "HTTP") == 0;
  find_relay(d, ctx, media);
  if (build_routes(d, json_object_get(dc, "replaceHttpUrl")) != 0) {
    return DCMF_ERR_NOMEM;
  }
  if (m->n_mdc2 > 0) {
    d->mdc2 = calloc(m->n_mdc2, sizeof(*d->mdc2));
    if (d->mdc2 == NULL) {
      return DCMF_ERR_NOMEM;
    }
    json_t *streams = json_object_get(dc, "streams");
    for (size_t i = 0; i < m->n_mdc2; i++) {
      char key[8];
      snprintf(key, sizeof(key), "%u", m->mdc2[i].sid);
      const char *type = json_string_value(json_object_get(
          json_object_get(streams, key), "udpPayloadType"));
      d->mdc2[i] = (struct dcmf_media_mdc2){
          .sid = m->mdc2[i].sid,
          .port = m->mdc2[i].port,
          .fd = -1,
          .text = type != NULL && strcmp(type, "text") == 0};
    }
    d->n_mdc2 = m->n_mdc2;
  }
  struct sockaddr_storage mdc2;
  if (endpoint_addr(json_object_get(dc, "remoteMdc2Endpoint"), &mdc2)) {
    d->mdc2_addr = mdc2;
    char ip[64];
    int v6 = mdc2.ss_family == AF_INET6;
    uint16_t port = v6 ? ntohs(((struct sockaddr_in6 *)&mdc2)->sin6_port)
                       : ntohs(((struct sockaddr_in *)&mdc2)->sin_port);
    inet_ntop(mdc2.ss_family,
              v6 ? (void *)&((struct sockaddr_in6 *)&mdc2)->sin6_addr
                 : (void *)&((struct sockaddr_in *)&mdc2)->sin_addr,
              ip, sizeof(ip));
    snprintf(d->mdc2_base, sizeof(d->mdc2_base), "http://%s%s%s:%u/",
             v6 ? "[" : "", ip, v6 ? "]" : "", port);
  }
  return build_streams(d, json_object_get(dc, "streams"));
}

const char *dcmf_media_route_for(const struct dcmf_media_desc *d,
                                 uint16_t sid) {
  if (!d->http_proxy) {
    return NULL;
  }
  for (size_t i = 0; i < d->n_routes; i++) {
    if (d->routes[i].sid == sid) {
      return d->routes[i].url;
    }
  }
  /* Application streams (>= 1000) go to the DC application server over
   * MDC2 when no replacement URL names them. */
  return sid >= 1000 && d->mdc2_base[0] != '\0' ? d->mdc2_base : NULL;
}

void dcmf_media_desc_free(struct dcmf_media_desc *d) {
  free(d->streams);
  d->streams = NULL;
  d->n_streams = 0;
  free(d->routes);
  d->routes = NULL;
  d->n_routes = 0;
  for (size_t i = 0; i < d->n_mdc2; i++) {
    if (d->mdc2[i].fd >= 0) {
      close(d->mdc2[i].fd);
    }
  }
  free(d->mdc2);
  d->mdc2 = NULL;
  d->n_mdc2 = 0;
}

int dcmf_media_key_equal(const struct dcmf_media_key *a,
                         const struct dcmf_media_key *b) {
  return strcmp(a->context_id, b->context_id) == 0 &&
         strcmp(a->termination_id, b->termination_id) == 0 &&
         strcmp(a->media_id, b->media_id) == 0;
}
