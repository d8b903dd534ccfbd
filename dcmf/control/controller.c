#include "controller.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "hashmap.h"

struct dcmf_controller {
  struct dcmf_controller_settings settings;
  struct dcmf_registry *registry;
};

static void copy_str(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- MediaInfo (JSON) to worker message ----------------------------------
 */

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

/* UDP-proxy mode: one MDC2 port per application stream, with the
 * stream's payload type. */
static int build_mdc2(struct dcmf_media_desc *d, const struct dcmf_media *m,
                      json_t *dc) {
  if (m->n_mdc2 == 0) {
    return 0;
  }
  d->mdc2 = calloc(m->n_mdc2, sizeof(*d->mdc2));
  if (d->mdc2 == NULL) {
    return DCMF_ERR_NOMEM;
  }
  json_t *streams = json_object_get(dc, "streams");
  for (size_t i = 0; i < m->n_mdc2; i++) {
    char key[8];
    snprintf(key, sizeof(key), "%u", m->mdc2[i].sid);
    const char *type = json_string_value(
        json_object_get(json_object_get(streams, key), "udpPayloadType"));
    d->mdc2[i] = (struct dcmf_media_mdc2){.sid = m->mdc2[i].sid,
                                          .port = m->mdc2[i].port,
                                          .fd = -1,
                                          .text = type != NULL &&
                                                  strcmp(type, "text") == 0};
  }
  d->n_mdc2 = m->n_mdc2;
  return 0;
}

/* The DC application server's address (remoteMdc2Endpoint), also as the
 * base URL of HTTP-proxy mode's application streams. */
static void read_mdc2_endpoint(struct dcmf_media_desc *d, json_t *dc) {
  struct sockaddr_storage mdc2;
  if (!endpoint_addr(json_object_get(dc, "remoteMdc2Endpoint"), &mdc2)) {
    return;
  }
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

/* The DC media this one is relayed to: the one its dcRelay names, or
 * the one whose dcRelay names it (validation made that unique). */
static void find_relay(struct dcmf_media_desc *d,
                       const struct dcmf_context *ctx, json_t *media) {
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
      if (tid == NULL &&
          (rt == NULL || rm == NULL || strcmp(rt, d->key.termination_id) != 0 ||
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

/* The MF's own values, as the registry assigned them. */
static void desc_locals(struct dcmf_media_desc *d,
                        const struct dcmf_context *ctx,
                        const struct dcmf_media *m) {
  copy_str(d->key.context_id, sizeof(d->key.context_id), ctx->id);
  copy_str(d->key.termination_id, sizeof(d->key.termination_id),
           m->termination_id);
  copy_str(d->key.media_id, sizeof(d->key.media_id), m->media_id);
  d->port = m->port;
  copy_str(d->local_ufrag, sizeof(d->local_ufrag), m->ufrag);
  copy_str(d->local_pwd, sizeof(d->local_pwd), m->pwd);
  copy_str(d->local_tls_id, sizeof(d->local_tls_id), m->tls_id);
  d->dtls_server = strcmp(m->local_setup, "PASSIVE") == 0;
}

/* What the peer signalled: ICE, address, DTLS and SCTP parameters. */
static void desc_remote(struct dcmf_media_desc *d, json_t *media) {
  json_t *ice = json_object_get(media, "remoteIceInfo");
  copy_str(d->remote_ufrag, sizeof(d->remote_ufrag),
           json_string_value(json_object_get(ice, "ufrag")));
  d->remote_no_ice = ice == NULL;
  d->has_remote_addr = endpoint_addr(json_object_get(media, "remoteMbEndpoint"),
                                     &d->remote_addr);
  json_t *dc = json_object_get(media, "dcMedia");
  json_t *rdc = json_object_get(dc, "remoteDcEndpoint");
  const char *fp = json_string_value(json_object_get(rdc, "fingerprint"));
  if (fp != NULL && dcmf_fingerprint_parse(fp, &d->remote_fp) != 0) {
    memset(&d->remote_fp, 0, sizeof(d->remote_fp)); /* validated earlier */
  }
  copy_str(d->remote_tls_id, sizeof(d->remote_tls_id),
           json_string_value(json_object_get(rdc, "tlsId")));
  json_t *rport = json_object_get(rdc, "sctpPort");
  d->remote_sctp_port = rport ? (uint16_t)json_integer_value(rport) : 5000;
  json_t *mms = json_object_get(dc, "maxMessageSize");
  d->max_message_size = (size_t)(mms ? json_integer_value(mms) : 64) * 1024;
  const char *proxy =
      json_string_value(json_object_get(dc, "mediaProxyConfig"));
  d->http_proxy = proxy != NULL && strcmp(proxy, "HTTP") == 0;
}

int dcmf_controller_desc_build(struct dcmf_media_desc *d,
                               const struct dcmf_context *ctx,
                               const struct dcmf_media *m, json_t *media,
                               uint16_t local_sctp_port) {
  memset(d, 0, sizeof(*d));
  d->fd = -1;
  desc_locals(d, ctx, m);
  desc_remote(d, media);
  d->local_sctp_port = local_sctp_port;
  find_relay(d, ctx, media);
  json_t *dc = json_object_get(media, "dcMedia");
  read_mdc2_endpoint(d, dc);
  if (build_routes(d, json_object_get(dc, "replaceHttpUrl")) != 0 ||
      build_mdc2(d, m, dc) != 0 ||
      build_streams(d, json_object_get(dc, "streams")) != 0) {
    dcmf_media_desc_free(d);
    return DCMF_ERR_NOMEM;
  }
  return 0;
}

/* ---- registry to workers ---------------------------------------------------
 */

size_t dcmf_controller_worker_for(const char *context_id, size_t n_workers) {
  if (n_workers <= 1) {
    return 0;
  }
  return (size_t)(dcmf_hash_bytes(0, context_id, strlen(context_id)) %
                  n_workers);
}

static void post(struct dcmf_controller *ctl, const char *context_id,
                 enum dcmf_media_op op, struct dcmf_media_desc *desc) {
  const struct dcmf_controller_settings *s = &ctl->settings;
  s->post(s->user, dcmf_controller_worker_for(context_id, s->n_workers), op,
          desc);
}

/* Gives the worker its own descriptor of every socket the media uses:
 * the media port (on ADD) and the MDC2 ports (the worker closes those of
 * ports it already holds). The registry keeps the ports reserved until
 * it releases them. Returns 0 or DCMF_ERR_SYSTEM (the media port). */
static int attach_fds(struct dcmf_controller *ctl, struct dcmf_media_desc *d,
                      int add) {
  const struct dcmf_controller_settings *s = &ctl->settings;
  for (size_t i = 0; i < d->n_mdc2; i++) {
    d->mdc2[i].fd = s->port_dup(s->user, d->mdc2[i].port);
  }
  if (!add) {
    return 0;
  }
  d->fd = s->port_dup(s->user, d->port);
  if (d->fd < 0) {
    DCMF_LOGE(s->log, "controller", "dup of media port %u failed: %s", d->port,
              strerror(errno));
    return DCMF_ERR_SYSTEM;
  }
  return 0;
}

/* The registry's media_changed: tells the media's worker. */
static void media_changed(void *user, const struct dcmf_context *ctx,
                          const struct dcmf_media *m, json_t *media,
                          enum dcmf_media_change change) {
  struct dcmf_controller *ctl = user;
  struct dcmf_media_desc desc;
  if (change == DCMF_MEDIA_REMOVED) {
    memset(&desc, 0, sizeof(desc));
    desc.fd = -1;
    copy_str(desc.key.context_id, sizeof(desc.key.context_id), ctx->id);
    copy_str(desc.key.termination_id, sizeof(desc.key.termination_id),
             m->termination_id);
    copy_str(desc.key.media_id, sizeof(desc.key.media_id), m->media_id);
    post(ctl, ctx->id, DCMF_MEDIA_OP_REMOVE, &desc);
    return;
  }
  if (dcmf_controller_desc_build(&desc, ctx, m, media,
                                 ctl->settings.registry.sctp_port) != 0) {
    DCMF_LOGE(ctl->settings.log, "controller",
              "out of memory describing media %s", m->media_id);
    return;
  }
  int add = change == DCMF_MEDIA_ADDED;
  if (attach_fds(ctl, &desc, add) != 0) {
    dcmf_media_desc_free(&desc);
    return;
  }
  post(ctl, ctx->id, add ? DCMF_MEDIA_OP_ADD : DCMF_MEDIA_OP_UPDATE, &desc);
}

/* The registry's other needs go to the owner's resources as they are. */
static int res_port_alloc(void *user, uint16_t *port) {
  const struct dcmf_resources *r =
      &((struct dcmf_controller *)user)->settings.res;
  return r->port_alloc(r->user, port);
}

static void res_port_release(void *user, uint16_t port) {
  const struct dcmf_resources *r =
      &((struct dcmf_controller *)user)->settings.res;
  r->port_release(r->user, port);
}

static void res_random(void *user, uint8_t *buf, size_t len) {
  const struct dcmf_resources *r =
      &((struct dcmf_controller *)user)->settings.res;
  r->random(r->user, buf, len);
}

int dcmf_controller_new(struct dcmf_controller **out,
                        const struct dcmf_controller_settings *settings) {
  if (settings->n_workers == 0) {
    return DCMF_ERR_INVALID;
  }
  struct dcmf_controller *ctl = calloc(1, sizeof(*ctl));
  if (ctl == NULL) {
    return DCMF_ERR_NOMEM;
  }
  ctl->settings = *settings;
  /* Copied by the registry; not kept here beyond this call. */
  ctl->settings.registry.advertise_addr = NULL;
  ctl->settings.registry.local_fingerprint = NULL;
  struct dcmf_resources res = {.port_alloc = res_port_alloc,
                               .port_release = res_port_release,
                               .random = res_random,
                               .media_changed = media_changed,
                               .user = ctl};
  int rv = dcmf_registry_new(&ctl->registry, &settings->registry, &res);
  if (rv != 0) {
    free(ctl);
    return rv;
  }
  *out = ctl;
  return 0;
}

void dcmf_controller_del(struct dcmf_controller *ctl) {
  if (ctl == NULL) {
    return;
  }
  dcmf_registry_del(ctl->registry);
  free(ctl);
}

struct dcmf_registry *dcmf_controller_registry(struct dcmf_controller *ctl) {
  return ctl->registry;
}

/* ---- workers to the control plane ------------------------------------------
 */


void dcmf_controller_on_event(void *user, const struct dcmf_media_event *ev) {
  struct dcmf_controller *ctl = user;
  const struct dcmf_controller_settings *s = &ctl->settings;
  struct dcmf_context *ctx =
      dcmf_registry_find(ctl->registry, ev->key.context_id);
  if (ctx == NULL) {
    return; /* released meanwhile */
  }
  char when[40];
  dcmf_format_time_ms(ev->time_ms, when, sizeof(when));
  json_t *detail = json_loads(ev->detail, 0, NULL);
  json_t *event =
      json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "contextId",
                ev->key.context_id, "terminationId", ev->key.termination_id,
                "mediaId", ev->key.media_id, "event", ev->event, "detail",
                detail ? detail : json_object(), "time", when);
  if (event == NULL) {
    return;
  }
  DCMF_LOGI(s->log, "event", "%s %s/%s/%s %s", ev->event, ev->key.context_id,
            ev->key.termination_id, ev->key.media_id, ev->detail);
  const char *uri =
      json_string_value(json_object_get(ctx->doc, "eventNotifyUri"));
  if (uri != NULL && s->notify != NULL) {
    char *text = json_dumps(event, JSON_COMPACT);
    if (text != NULL) {
      s->notify(s->user, uri, text);
    }
    free(text);
  }
  dcmf_registry_add_event(ctl->registry, ctx, event, s->events_kept);
}

size_t dcmf_controller_worker_failed(struct dcmf_controller *ctl,
                                     size_t worker, const char *reason) {
  const struct dcmf_controller_settings *s = &ctl->settings;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct dcmf_media_event ev = {
      .time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000};
  snprintf(ev.event, sizeof(ev.event), "MEDIA_FAILURE");
  json_t *detail = json_pack("{s:s}", "reason", reason);
  char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT) : NULL;
  snprintf(ev.detail, sizeof(ev.detail), "%s",
           text != NULL && strlen(text) < sizeof(ev.detail) ? text : "{}");
  free(text);
  json_decref(detail);
  size_t released = 0;
  struct dcmf_context *next;
  for (struct dcmf_context *ctx = dcmf_registry_first(ctl->registry);
       ctx != NULL; ctx = next) {
    next = ctx->next;
    if (dcmf_controller_worker_for(ctx->id, s->n_workers) != worker) {
      continue;
    }
    copy_str(ev.key.context_id, sizeof(ev.key.context_id), ctx->id);
    for (size_t i = 0; i < ctx->n_medias; i++) {
      copy_str(ev.key.termination_id, sizeof(ev.key.termination_id),
               ctx->medias[i].termination_id);
      copy_str(ev.key.media_id, sizeof(ev.key.media_id),
               ctx->medias[i].media_id);
      dcmf_controller_on_event(ctl, &ev);
    }
    DCMF_LOGW(s->log, "controller",
              "context %s released: its media worker %zu ended (%s)", ctx->id,
              worker, reason);
    dcmf_registry_delete(ctl->registry, ctx);
    released++;
  }
  return released;
}
