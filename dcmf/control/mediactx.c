#include "mediactx.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fingerprint.h"

/* The walker carries the JSON Pointer of the value being checked. */
struct walk {
  struct dcmf_problem *p;
  char path[192];
  size_t len;
  int errors;
};

/* Appends one pointer segment (RFC 6901 escaping); returns the old length
 * so the caller can pop back to it. Overlong paths are cut, which only
 * shortens error messages. */
static size_t walk_push(struct walk *w, const char *segment) {
  size_t old = w->len;
  if (w->len + 1 < sizeof(w->path)) {
    w->path[w->len++] = '/';
  }
  for (const char *s = segment; *s && w->len + 2 < sizeof(w->path); s++) {
    if (*s == '~' || *s == '/') {
      w->path[w->len++] = '~';
      w->path[w->len++] = *s == '~' ? '0' : '1';
    } else {
      w->path[w->len++] = *s;
    }
  }
  w->path[w->len] = '\0';
  return old;
}

static size_t walk_push_index(struct walk *w, size_t index) {
  char seg[24];
  snprintf(seg, sizeof(seg), "%zu", index);
  return walk_push(w, seg);
}

static void walk_pop(struct walk *w, size_t old) {
  w->len = old;
  w->path[old] = '\0';
}

static void walk_error(struct walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void walk_error(struct walk *w, const char *fmt, ...) {
  char reason[192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof(reason), fmt, ap);
  va_end(ap);
  dcmf_problem_param(w->p, w->len ? w->path : "/", "%s", reason);
  w->errors++;
}

/* Looks up member |name| of |obj| and pushes it on the path; returns NULL
 * (and pushes nothing) when it is absent, recording an error if it was
 * required. */
static json_t *member(struct walk *w, json_t *obj, const char *name,
                      int required, size_t *old) {
  json_t *v = json_object_get(obj, name);
  if (v == NULL) {
    if (required) {
      size_t o = walk_push(w, name);
      walk_error(w, "is required");
      walk_pop(w, o);
    }
    return NULL;
  }
  *old = walk_push(w, name);
  return v;
}

static int expect(struct walk *w, json_t *v, json_type type,
                  const char *what) {
  if (json_typeof(v) != type &&
      !(type == JSON_TRUE && json_is_boolean(v))) {
    walk_error(w, "must be %s", what);
    return 0;
  }
  return 1;
}

static void check_int(struct walk *w, json_t *obj, const char *name,
                      json_int_t min, json_int_t max, int required) {
  size_t old;
  json_t *v = member(w, obj, name, required, &old);
  if (v == NULL) {
    return;
  }
  if (!json_is_integer(v)) {
    walk_error(w, "must be an integer");
  } else if (json_integer_value(v) < min || json_integer_value(v) > max) {
    walk_error(w, "must be from %lld to %lld", (long long)min, (long long)max);
  }
  walk_pop(w, old);
}

static const char *check_string(struct walk *w, json_t *obj, const char *name,
                                int required) {
  size_t old;
  json_t *v = member(w, obj, name, required, &old);
  if (v == NULL) {
    return NULL;
  }
  const char *s = NULL;
  if (expect(w, v, JSON_STRING, "a string")) {
    s = json_string_value(v);
    if (required && s[0] == '\0') {
      walk_error(w, "must not be empty");
      s = NULL;
    }
  }
  walk_pop(w, old);
  return s;
}

static void check_enum(struct walk *w, json_t *obj, const char *name,
                       const char *const *values, int required) {
  size_t old;
  json_t *v = member(w, obj, name, required, &old);
  if (v == NULL) {
    return;
  }
  if (expect(w, v, JSON_STRING, "a string")) {
    const char *s = json_string_value(v);
    char allowed[160] = "";
    for (size_t i = 0; values[i]; i++) {
      if (strcmp(s, values[i]) == 0) {
        walk_pop(w, old);
        return;
      }
      size_t n = strlen(allowed);
      snprintf(allowed + n, sizeof(allowed) - n, "%s%s", i ? ", " : "",
               values[i]);
    }
    walk_error(w, "must be one of %s", allowed);
  }
  walk_pop(w, old);
}

static int is_http_uri(const char *s) {
  return (strncmp(s, "http://", 7) == 0 && s[7] != '\0') ||
         (strncmp(s, "https://", 8) == 0 && s[8] != '\0');
}

static void check_uri(struct walk *w, json_t *obj, const char *name) {
  size_t old;
  json_t *v = member(w, obj, name, 0, &old);
  if (v == NULL) {
    return;
  }
  if (expect(w, v, JSON_STRING, "a string") &&
      !is_http_uri(json_string_value(v))) {
    walk_error(w, "must be an absolute http:// or https:// URI");
  }
  walk_pop(w, old);
}

/* TS 29.571 IpAddr: exactly one of ipv4Addr, ipv6Addr, ipv6Prefix. */
static void check_ipaddr(struct walk *w, json_t *ip) {
  if (!expect(w, ip, JSON_OBJECT, "an object")) {
    return;
  }
  static const char *const names[] = {"ipv4Addr", "ipv6Addr", "ipv6Prefix"};
  int present = 0;
  for (size_t i = 0; i < 3; i++) {
    size_t old;
    json_t *v = member(w, ip, names[i], 0, &old);
    if (v == NULL) {
      continue;
    }
    present++;
    if (!expect(w, v, JSON_STRING, "a string")) {
      walk_pop(w, old);
      continue;
    }
    const char *s = json_string_value(v);
    unsigned char bin[16];
    if (i == 0 && inet_pton(AF_INET, s, bin) != 1) {
      walk_error(w, "must be a dotted-quad IPv4 address");
    } else if (i == 1 && inet_pton(AF_INET6, s, bin) != 1) {
      walk_error(w, "must be an IPv6 address");
    } else if (i == 2) {
      const char *slash = strchr(s, '/');
      char addr[64];
      size_t alen = slash ? (size_t)(slash - s) : 0;
      char *end = NULL;
      long plen = slash ? strtol(slash + 1, &end, 10) : -1;
      if (slash == NULL || alen >= sizeof(addr) || *end != '\0' ||
          plen < 0 || plen > 128) {
        walk_error(w, "must be an IPv6 prefix ADDR/LEN");
      } else {
        memcpy(addr, s, alen);
        addr[alen] = '\0';
        if (inet_pton(AF_INET6, addr, bin) != 1) {
          walk_error(w, "must be an IPv6 prefix ADDR/LEN");
        }
      }
    }
    walk_pop(w, old);
  }
  if (present != 1) {
    walk_error(w, "must hold exactly one of ipv4Addr, ipv6Addr, ipv6Prefix");
  }
}

/* TS 29.571 Endpoint {ip, transport, portNumber}. */
static void check_endpoint(struct walk *w, json_t *obj, const char *name) {
  size_t old;
  json_t *ep = member(w, obj, name, 0, &old);
  if (ep == NULL) {
    return;
  }
  if (expect(w, ep, JSON_OBJECT, "an object")) {
    size_t o2;
    json_t *ip = member(w, ep, "ip", 1, &o2);
    if (ip != NULL) {
      check_ipaddr(w, ip);
      walk_pop(w, o2);
    }
    /* TransportProtocol is an extensible enumeration: any string. */
    check_string(w, ep, "transport", 1);
    check_int(w, ep, "portNumber", 0, 65535, 1);
  }
  walk_pop(w, old);
}

static void check_fingerprint(struct walk *w, json_t *obj) {
  size_t old;
  json_t *v = member(w, obj, "fingerprint", 0, &old);
  if (v == NULL) {
    return;
  }
  if (expect(w, v, JSON_STRING, "a string")) {
    struct dcmf_fingerprint_set set;
    memset(&set, 0, sizeof(set));
    int rv = dcmf_fingerprint_parse(json_string_value(v), &set);
    if (rv == DCMF_ERR_TOO_LARGE) {
      walk_error(w, "lists more than %d fingerprints", DCMF_FINGERPRINTS_MAX);
    } else if (rv != 0) {
      walk_error(w, "must be \"<hash> XX:XX:...\" with an RFC 8122 hash "
                    "name and the digest's length in hex octets");
    }
  }
  walk_pop(w, old);
}

static void check_dc_endpoint(struct walk *w, json_t *obj, const char *name) {
  size_t old;
  json_t *ep = member(w, obj, name, 0, &old);
  if (ep == NULL) {
    return;
  }
  if (expect(w, ep, JSON_OBJECT, "an object")) {
    check_int(w, ep, "sctpPort", 0, 65535, 0);
    check_fingerprint(w, ep);
    const char *tls_id = check_string(w, ep, "tlsId", 0);
    if (tls_id != NULL && dcmf_tls_id_check(tls_id) != 0) {
      size_t o2 = walk_push(w, "tlsId");
      walk_error(w, "must be 20 to 255 characters of A-Z a-z 0-9 + / - _ "
                    "(RFC 8842)");
      walk_pop(w, o2);
    }
  }
  walk_pop(w, old);
}

/* Checks that every key of a streamId-keyed map is a stream id and that
 * an explicit streamId member agrees with its key. */
static int stream_key(struct walk *w, const char *key, json_t *entry) {
  char *end;
  long id = strtol(key, &end, 10);
  if (key[0] < '0' || key[0] > '9' || *end != '\0' || id > 65535 ||
      (key[0] == '0' && key[1] != '\0')) {
    walk_error(w, "key must be a stream id from 0 to 65535");
    return 0;
  }
  json_t *sid = json_object_get(entry, "streamId");
  if (json_is_integer(sid) && json_integer_value(sid) != id) {
    size_t old = walk_push(w, "streamId");
    walk_error(w, "must equal its map key %ld", id);
    walk_pop(w, old);
  }
  return 1;
}

/* A partial-reliability limit of a DcStream is set when it is non-zero. */
static int limit_set(json_t *stream, const char *name) {
  json_t *v = json_object_get(stream, name);
  return json_is_integer(v) && json_integer_value(v) != 0;
}

static void check_streams(struct walk *w, json_t *dc) {
  size_t old;
  json_t *streams = member(w, dc, "streams", 1, &old);
  if (streams == NULL) {
    return;
  }
  if (!expect(w, streams, JSON_OBJECT, "an object keyed by stream id")) {
    walk_pop(w, old);
    return;
  }
  if (json_object_size(streams) == 0) {
    walk_error(w, "must hold at least one stream");
  }
  const char *key;
  json_t *s;
  json_object_foreach(streams, key, s) {
    size_t o2 = walk_push(w, key);
    if (expect(w, s, JSON_OBJECT, "a DcStream object") &&
        stream_key(w, key, s)) {
      check_int(w, s, "streamId", 0, 65535, 0);
      /* The TS 29.571 pattern for subprotocol is a known defect (it
       * would reject "http"), so any string is accepted. */
      check_string(w, s, "subprotocol", 0);
      size_t o3;
      json_t *order = member(w, s, "order", 0, &o3);
      if (order != NULL) {
        expect(w, order, JSON_TRUE, "a boolean");
        walk_pop(w, o3);
      }
      check_int(w, s, "maxRetry", 0, 65535, 0);
      check_int(w, s, "maxTime", 0, 4294967295LL, 0);
      check_int(w, s, "priority", 0, 65535, 0);
      check_string(w, s, "appBindingInfo", 0);
      static const char *const payload_types[] = {"binary", "text", NULL};
      check_enum(w, s, "udpPayloadType", payload_types, 0);
      /* TS 29.571 gives both a default of 0, and generated clients send
       * the defaults, so 0 stands for "no such limit" (docs/api.md). */
      if (limit_set(s, "maxRetry") && limit_set(s, "maxTime")) {
        walk_error(w, "maxRetry and maxTime exclude each other (RFC 8832); "
                      "one of them must be 0 or absent");
      }
    }
    walk_pop(w, o2);
  }
  walk_pop(w, old);
}

static void check_replace_urls(struct walk *w, json_t *dc) {
  size_t old;
  json_t *map = member(w, dc, "replaceHttpUrl", 0, &old);
  if (map == NULL) {
    return;
  }
  if (expect(w, map, JSON_OBJECT, "an object keyed by stream id")) {
    if (json_object_size(map) == 0) {
      walk_error(w, "must hold at least one entry");
    }
    const char *key;
    json_t *e;
    json_object_foreach(map, key, e) {
      size_t o2 = walk_push(w, key);
      if (expect(w, e, JSON_OBJECT, "a ReplaceHttpUrl object") &&
          stream_key(w, key, e)) {
        check_int(w, e, "streamId", 0, 65535, 0);
        if (json_object_get(e, "replaceHttpUrl") == NULL) {
          check_string(w, e, "replaceHttpUrl", 1);
        }
        check_uri(w, e, "replaceHttpUrl");
      }
      walk_pop(w, o2);
    }
  }
  walk_pop(w, old);
}

static void check_dc_media(struct walk *w, json_t *dc) {
  static const char *const proxies[] = {"HTTP", "UDP", NULL};
  static const char *const mdc2[] = {"UDP/DTLS/SCTP", "TCP", "UDP", "SCTP",
                                     "TCP/TLS", "SCTP/DTLS", NULL};
  static const char *const setups[] = {"ACTIVE", "PASSIVE", "ACTPASS", NULL};
  check_enum(w, dc, "mediaProxyConfig", proxies, 0);
  check_replace_urls(w, dc);
  check_endpoint(w, dc, "remoteMdc1Endpoint");
  check_endpoint(w, dc, "remoteMdc2Endpoint");
  check_enum(w, dc, "mdc2Protocol", mdc2, 0);
  const char *proto = json_string_value(json_object_get(dc, "mdc2Protocol"));
  const char *mode = json_string_value(json_object_get(dc, "mediaProxyConfig"));
  if (proto != NULL && mode != NULL && strcmp(mode, "UDP") == 0 &&
      strcmp(proto, "UDP") != 0) {
    /* UDP-proxy mode sends each message as one datagram; anything else
     * on MDC2 would be a different relay, which dcmf does not do yet. */
    size_t o2 = walk_push(w, "mdc2Protocol");
    walk_error(w, "with mediaProxyConfig UDP only \"UDP\" is supported");
    walk_pop(w, o2);
  }
  check_streams(w, dc);
  /* The schema bounds maxMessageSize to 64 without a unit; dcmf reads it
   * as KiB (docs/api.md). */
  check_int(w, dc, "maxMessageSize", 1, 64, 0);
  check_dc_endpoint(w, dc, "remoteDcEndpoint");
  check_enum(w, dc, "securitySetup", setups, 0);
}

static void check_ice_info(struct walk *w, json_t *media) {
  size_t old;
  json_t *ice = member(w, media, "remoteIceInfo", 0, &old);
  if (ice == NULL) {
    return;
  }
  if (expect(w, ice, JSON_OBJECT, "an object")) {
    const char *ufrag = check_string(w, ice, "ufrag", 1);
    const char *pwd = check_string(w, ice, "pwd", 1);
    if (ufrag != NULL && dcmf_ice_ufrag_check(ufrag) != 0) {
      size_t o2 = walk_push(w, "ufrag");
      walk_error(w, "must be 4 to 256 ice-chars (RFC 8839)");
      walk_pop(w, o2);
    }
    if (pwd != NULL && dcmf_ice_pwd_check(pwd) != 0) {
      size_t o2 = walk_push(w, "pwd");
      walk_error(w, "must be 22 to 256 ice-chars (RFC 8839)");
      walk_pop(w, o2);
    }
  }
  walk_pop(w, old);
}

static void check_media(struct walk *w, json_t *media) {
  if (!expect(w, media, JSON_OBJECT, "a MediaInfo object")) {
    return;
  }
  check_string(w, media, "mediaId", 1);
  const char *type = check_string(w, media, "mediaResourceType", 1);
  check_endpoint(w, media, "remoteMbEndpoint");
  check_ice_info(w, media);
  check_uri(w, media, "mediaProcessingUri");
  size_t old;
  /* TS 29.176 V18.1 ArMedia: kept as sent, dcmfd does no AR processing. */
  json_t *ar = member(w, media, "arMedia", 0, &old);
  if (ar != NULL) {
    if (expect(w, ar, JSON_OBJECT, "an ArMedia object")) {
      check_string(w, ar, "mediaProcessingSpec", 0);
    }
    walk_pop(w, old);
  }
  json_t *dc = member(w, media, "dcMedia", 0, &old);
  if (dc != NULL) {
    if (expect(w, dc, JSON_OBJECT, "a DcMedia object")) {
      check_dc_media(w, dc);
    }
    walk_pop(w, old);
  }
  if (type != NULL && strcmp(type, "DC") == 0 && dc == NULL) {
    size_t o2 = walk_push(w, "dcMedia");
    walk_error(w, "is required when mediaResourceType is DC");
    walk_pop(w, o2);
  } else if (type != NULL && strcmp(type, "DC") != 0) {
    size_t o2 = walk_push(w, "mediaResourceType");
    walk_error(w, "\"%s\" is not served by this MF; only DC is", type);
    walk_pop(w, o2);
  }
}

/* Records an error if the string member |name| of some element of |arr|
 * repeats; ids must be unique because PATCH matches media by them. */
static void check_unique(struct walk *w, json_t *arr, const char *name) {
  for (size_t i = 0; i < json_array_size(arr); i++) {
    const char *a = json_string_value(json_object_get(json_array_get(arr, i),
                                                      name));
    for (size_t j = 0; a != NULL && j < i; j++) {
      const char *b = json_string_value(
          json_object_get(json_array_get(arr, j), name));
      if (b != NULL && strcmp(a, b) == 0) {
        size_t o1 = walk_push_index(w, i);
        size_t o2 = walk_push(w, name);
        walk_error(w, "\"%s\" is used twice", a);
        walk_pop(w, o2);
        walk_pop(w, o1);
        break;
      }
    }
  }
}

static void check_termination(struct walk *w, json_t *term) {
  if (!expect(w, term, JSON_OBJECT, "a TerminationInfo object")) {
    return;
  }
  check_string(w, term, "terminationId", 1);
  size_t old;
  json_t *medias = member(w, term, "medias", 1, &old);
  if (medias == NULL) {
    return;
  }
  if (expect(w, medias, JSON_ARRAY, "an array")) {
    if (json_array_size(medias) == 0) {
      walk_error(w, "must hold at least one media");
    }
    size_t i;
    json_t *m;
    json_array_foreach(medias, i, m) {
      size_t o2 = walk_push_index(w, i);
      check_media(w, m);
      walk_pop(w, o2);
    }
    check_unique(w, medias, "mediaId");
  }
  walk_pop(w, old);
}

/* Finds the DC media |term|/|media| of |doc|; NULL if there is none. */
static json_t *find_dc_media(json_t *doc, const char *term,
                             const char *media) {
  size_t i, j;
  json_t *t, *m;
  if (term == NULL || media == NULL) {
    return NULL;
  }
  json_array_foreach(json_object_get(doc, "terminations"), i, t) {
    const char *tid = json_string_value(json_object_get(t, "terminationId"));
    if (tid == NULL || strcmp(tid, term) != 0) {
      continue;
    }
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      const char *mid = json_string_value(json_object_get(m, "mediaId"));
      if (mid != NULL && strcmp(mid, media) == 0 &&
          json_object_get(m, "dcMedia") != NULL) {
        return m;
      }
    }
  }
  return NULL;
}

/* Runs with the walk at /terminations.
 * dcMedia.dcRelay (a dcmf extension) joins this DC media to another DC
 * media of the same context, stream by stream: it must name one that
 * exists, is not itself, is joined to no third media, and every media
 * is in at most one join. */
static void check_relays(struct walk *w, json_t *doc) {
  size_t i, j;
  json_t *t, *m;
  json_array_foreach(json_object_get(doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      json_t *relay = json_object_get(json_object_get(m, "dcMedia"), "dcRelay");
      if (relay == NULL) {
        continue;
      }
      size_t o1 = walk_push_index(w, i);
      walk_push(w, "medias");
      walk_push_index(w, j);
      walk_push(w, "dcMedia");
      walk_push(w, "dcRelay");
      const char *rt =
          json_string_value(json_object_get(relay, "terminationId"));
      const char *rm = json_string_value(json_object_get(relay, "mediaId"));
      const char *own_t =
          json_string_value(json_object_get(t, "terminationId"));
      const char *own_m = json_string_value(json_object_get(m, "mediaId"));
      json_t *twin = NULL;
      if (!json_is_object(relay) || rt == NULL || rm == NULL) {
        walk_error(w, "must be {\"terminationId\": string, \"mediaId\": "
                      "string}");
      } else if (own_t != NULL && own_m != NULL && strcmp(rt, own_t) == 0 &&
                 strcmp(rm, own_m) == 0) {
        walk_error(w, "a DC media cannot be relayed to itself");
      } else if ((twin = find_dc_media(doc, rt, rm)) == NULL) {
        walk_error(w, "names no DC media of this context");
      } else {
        json_t *back =
            json_object_get(json_object_get(twin, "dcMedia"), "dcRelay");
        const char *bt =
            json_string_value(json_object_get(back, "terminationId"));
        const char *bm = json_string_value(json_object_get(back, "mediaId"));
        if (back != NULL && (bt == NULL || bm == NULL || own_t == NULL ||
                             own_m == NULL || strcmp(bt, own_t) != 0 ||
                             strcmp(bm, own_m) != 0)) {
          walk_error(w, "the named DC media is relayed elsewhere");
        }
      }
      walk_pop(w, o1);
    }
  }
  /* Every DC media has at most one partner: the one its dcRelay names
   * and those whose dcRelay names it must all be the same media. */
  json_array_foreach(json_object_get(doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      const char *own_t =
          json_string_value(json_object_get(t, "terminationId"));
      const char *own_m = json_string_value(json_object_get(m, "mediaId"));
      json_t *r = json_object_get(json_object_get(m, "dcMedia"), "dcRelay");
      json_t *partner =
          r == NULL ? NULL
                    : find_dc_media(doc,
                                    json_string_value(json_object_get(
                                        r, "terminationId")),
                                    json_string_value(
                                        json_object_get(r, "mediaId")));
      int partners = partner != NULL;
      size_t k, l;
      json_t *t2, *m2;
      json_array_foreach(json_object_get(doc, "terminations"), k, t2) {
        json_array_foreach(json_object_get(t2, "medias"), l, m2) {
          json_t *r2 =
              json_object_get(json_object_get(m2, "dcMedia"), "dcRelay");
          const char *rt =
              json_string_value(json_object_get(r2, "terminationId"));
          const char *rm = json_string_value(json_object_get(r2, "mediaId"));
          if (m2 != partner && own_t != NULL && own_m != NULL && rt != NULL &&
              rm != NULL && strcmp(rt, own_t) == 0 &&
              strcmp(rm, own_m) == 0) {
            partners++;
          }
        }
      }
      if (partners > 1) {
        size_t o1 = walk_push_index(w, i);
        walk_push(w, "medias");
        walk_push_index(w, j);
        walk_error(w, "would be relayed to more than one DC media "
                      "(dcRelay)");
        walk_pop(w, o1);
      }
    }
  }
}

int dcmf_mediactx_validate(json_t *doc, struct dcmf_problem *p) {
  struct walk w = {.p = p, .path = "", .len = 0, .errors = 0};
  if (!expect(&w, doc, JSON_OBJECT, "a MediaContext object")) {
    return DCMF_ERR_INVALID;
  }
  check_uri(&w, doc, "eventNotifyUri");
  size_t old;
  json_t *terms = member(&w, doc, "terminations", 1, &old);
  if (terms != NULL) {
    if (expect(&w, terms, JSON_ARRAY, "an array")) {
      if (json_array_size(terms) == 0) {
        walk_error(&w, "must hold at least one termination");
      }
      size_t i;
      json_t *t;
      json_array_foreach(terms, i, t) {
        size_t o2 = walk_push_index(&w, i);
        check_termination(&w, t);
        walk_pop(&w, o2);
      }
      check_unique(&w, terms, "terminationId");
      if (w.errors == 0) {
        check_relays(&w, doc);
      }
    }
    walk_pop(&w, old);
  }
  return w.errors ? DCMF_ERR_INVALID : 0;
}

static int normalise_dc_endpoint(json_t *ep) {
  const char *fp = json_string_value(json_object_get(ep, "fingerprint"));
  if (fp != NULL) {
    struct dcmf_fingerprint_set set;
    memset(&set, 0, sizeof(set));
    char canon[DCMF_FINGERPRINTS_MAX * 200];
    if (dcmf_fingerprint_parse(fp, &set) == 0 &&
        dcmf_fingerprint_format(&set, canon, sizeof(canon)) >= 0 &&
        json_object_set_new(ep, "fingerprint", json_string(canon)) != 0) {
      return DCMF_ERR_NOMEM;
    }
  }
  const char *tls_id = json_string_value(json_object_get(ep, "tlsId"));
  if (tls_id != NULL) {
    size_t start = strspn(tls_id, " \t");
    size_t len = strlen(tls_id + start);
    while (len > 0 && (tls_id[start + len - 1] == ' ' ||
                       tls_id[start + len - 1] == '\t')) {
      len--;
    }
    if ((start > 0 || tls_id[start + len] != '\0') &&
        json_object_set_new(ep, "tlsId",
                            json_stringn(tls_id + start, len)) != 0) {
      return DCMF_ERR_NOMEM;
    }
  }
  return 0;
}

int dcmf_mediactx_normalise(json_t *doc) {
  size_t i, j;
  json_t *t, *m;
  json_array_foreach(json_object_get(doc, "terminations"), i, t) {
    json_array_foreach(json_object_get(t, "medias"), j, m) {
      json_t *ep = json_object_get(json_object_get(m, "dcMedia"),
                                   "remoteDcEndpoint");
      if (json_is_object(ep) && normalise_dc_endpoint(ep) != 0) {
        return DCMF_ERR_NOMEM;
      }
    }
  }
  return 0;
}
