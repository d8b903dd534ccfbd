#include "agwdoc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "errors.h"

/* A JSON Pointer into the document being checked, grown and shrunk as
 * the walk descends, and the problem collecting what is wrong. */
struct walk {
  char path[160];
  size_t len;
  struct dcmf_problem *p;
  int errors;
};

static size_t push(struct walk *w, const char *name) {
  size_t old = w->len;
  char seg[96];
  size_t n = 0;
  seg[n++] = '/';
  for (const char *c = name; *c && n + 3 < sizeof(seg); c++) {
    if (*c == '~' || *c == '/') { /* RFC 6901 escapes */
      seg[n++] = '~';
      seg[n++] = *c == '~' ? '0' : '1';
    } else {
      seg[n++] = *c;
    }
  }
  if (w->len + n < sizeof(w->path)) {
    memcpy(w->path + w->len, seg, n);
    w->len += n;
  }
  w->path[w->len] = '\0';
  return old;
}

static size_t push_index(struct walk *w, size_t i) {
  char num[24];
  snprintf(num, sizeof(num), "%zu", i);
  return push(w, num);
}

static void pop(struct walk *w, size_t old) {
  w->len = old;
  w->path[old] = '\0';
}

static void fail(struct walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct walk *w, const char *fmt, ...) {
  char reason[192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof(reason), fmt, ap);
  va_end(ap);
  dcmf_problem_param(w->p, w->path, "%s", reason);
  w->errors++;
}

/* Refuses members of |obj| not named in |allowed| (NULL-terminated). */
static void only_members(struct walk *w, json_t *obj,
                         const char *const *allowed) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    size_t i = 0;
    while (allowed[i] != NULL && strcmp(allowed[i], key) != 0) {
      i++;
    }
    if (allowed[i] == NULL) {
      size_t old = push(w, key);
      fail(w, "is not a member of this object");
      pop(w, old);
    }
  }
}

static int addr_allowed(struct walk *w, int family, const uint8_t *a,
                        const struct dcmf_agwdoc_limits *lim) {
  static const uint8_t zero[16];
  if (family == AF_INET) {
    if (!lim->allow_v4) {
      fail(w, "must be an IPv6 address: the relay ports are IPv6");
      return 0;
    }
    if (memcmp(a, zero, 4) == 0 || a[0] >= 224) {
      fail(w, "must be a unicast IPv4 address");
      return 0;
    }
    return 1;
  }
  if (!lim->allow_v6) {
    fail(w, "must be an IPv4 address: the relay ports are IPv4");
    return 0;
  }
  if (memcmp(a, zero, 16) == 0 || a[0] == 0xff) {
    fail(w, "must be a unicast IPv6 address");
    return 0;
  }
  if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)a)) {
    fail(w, "must not be IPv4-mapped; use ipv4Addr");
    return 0;
  }
  return 1;
}

/* {"ipv4Addr"|"ipv6Addr": text, "port": 1..65535}; 1 if valid. */
static int parse_remote(struct walk *w, json_t *ep,
                        const struct dcmf_agwdoc_limits *lim,
                        struct sockaddr_storage *out) {
  if (!json_is_object(ep)) {
    fail(w, "must be an object with ipv4Addr or ipv6Addr and port");
    return 0;
  }
  static const char *const allowed[] = {"ipv4Addr", "ipv6Addr", "port", NULL};
  int before = w->errors;
  only_members(w, ep, allowed);
  json_t *v4 = json_object_get(ep, "ipv4Addr");
  json_t *v6 = json_object_get(ep, "ipv6Addr");
  json_t *port = json_object_get(ep, "port");
  uint8_t bin[16];
  int family = 0;
  if ((v4 != NULL) == (v6 != NULL)) {
    fail(w, "must hold exactly one of ipv4Addr and ipv6Addr");
  } else {
    const char *name = v4 ? "ipv4Addr" : "ipv6Addr";
    json_t *v = v4 ? v4 : v6;
    size_t old = push(w, name);
    family = v4 ? AF_INET : AF_INET6;
    if (!json_is_string(v) ||
        inet_pton(family, json_string_value(v), bin) != 1) {
      fail(w, "must be a numeric %s address", v4 ? "IPv4" : "IPv6");
      family = 0;
    } else if (!addr_allowed(w, family, bin, lim)) {
      family = 0;
    }
    pop(w, old);
  }
  size_t old = push(w, "port");
  json_int_t pn = json_integer_value(port);
  if (!json_is_integer(port) || pn < 1 || pn > 65535) {
    fail(w, port ? "must be an integer from 1 to 65535" : "is required");
  }
  pop(w, old);
  if (w->errors != before || family == 0) {
    return 0;
  }
  memset(out, 0, sizeof(*out));
  if (family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    in->sin_family = AF_INET;
    memcpy(&in->sin_addr, bin, 4);
    in->sin_port = htons((uint16_t)pn);
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    in6->sin6_family = AF_INET6;
    memcpy(&in6->sin6_addr, bin, 16);
    in6->sin6_port = htons((uint16_t)pn);
  }
  return 1;
}

/* One termination at the current path; |side| known to be valid. */
static void parse_termination(struct walk *w, json_t *t,
                              enum dcmf_relay_side side,
                              enum dcmf_agwdoc_mode mode,
                              const struct dcmf_agwdoc_limits *lim,
                              struct dcmf_relay_config *cfg) {
  /* The e2ae Iq members (dtls, ice, notifyUri, rtcpMux, remoteRtcpPort)
   * and transports are agwiq.c's: the API runs dcmf_agwiq_parse() before
   * this, so here they are only let through. "latching" on the core is
   * refused below with a clearer reason. */
  static const char *const create_members[] = {
      "terminationId", "transport", "remote",  "latching",       "dtls",
      "ice",           "notifyUri", "rtcpMux", "remoteRtcpPort", "tls",
      "tcp",           "msrp",      "dataChannel", "t140", NULL};
  static const char *const patched_members[] = {
      "terminationId", "transport", "remote",  "latching",       "dtls",
      "ice",           "notifyUri", "rtcpMux", "remoteRtcpPort", "local",
      "tls",           "tcp",       "msrp",    "dataChannel", "t140", NULL};
  int access = side == DCMF_RELAY_ACCESS;
  int create = mode == DCMF_AGWDOC_CREATE;
  only_members(w, t, create ? create_members : patched_members);
  if (create && json_object_get(t, "local") != NULL) {
    /* Named apart from the generic message: a common mistake. */
    size_t old = push(w, "local");
    fail(w, "is assigned by the AGW; leave it out");
    pop(w, old);
  }
  json_t *tr = json_object_get(t, "transport");
  const char *trs = json_string_value(tr);
  static const char *const transports[] = {
      "UDP",          "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF",
      "RTP/AVP",      "RTP/AVPF",         "TCP/TLS/MSRP",
      "TCP/TLS/BFCP", "TCP/MSRP",         "TCP/BFCP",
      "TCP",          "UDP/DTLS/SCTP",    "UDP/DTLS", NULL};
  size_t ti = 0;
  while (trs != NULL && transports[ti] != NULL &&
         strcmp(transports[ti], trs) != 0) {
    ti++;
  }
  if (tr != NULL && (trs == NULL || transports[ti] == NULL)) {
    /* agwiq.c names each side's values first; kept for a direct caller. */
    size_t old = push(w, "transport");
    fail(w, "must be \"UDP\" or an e2ae transport (see agwiq.h)");
    pop(w, old);
  }
  json_t *remote = json_object_get(t, "remote");
  if (remote != NULL) {
    size_t old = push(w, "remote");
    int ok = parse_remote(w, remote, lim,
                          access ? &cfg->access_remote : &cfg->core_remote);
    if (access) {
      cfg->has_access_remote = ok;
    } else {
      cfg->has_core_remote = ok;
    }
    pop(w, old);
  }
  json_t *latching = json_object_get(t, "latching");
  if (!access && latching != NULL) {
    size_t old = push(w, "latching");
    fail(w, "only the access termination latches; leave it out");
    pop(w, old);
  } else if (latching != NULL) {
    const char *s = json_string_value(latching);
    size_t old = push(w, "latching");
    if (s != NULL && strcmp(s, "first-packet") == 0) {
      cfg->latching = DCMF_RELAY_LATCH_FIRST_PACKET;
    } else if (s != NULL && strcmp(s, "signalled-only") == 0) {
      cfg->latching = DCMF_RELAY_LATCH_SIGNALLED_ONLY;
      if (remote == NULL) {
        fail(w, "signalled-only needs the signalled phone address in "
                "remote");
      }
    } else {
      fail(w, "must be \"first-packet\" or \"signalled-only\"");
    }
    pop(w, old);
  }
}

/* Reads the terminationId of terminations[i]; -1 if missing or bad. */
static int side_of(struct walk *w, json_t *t) {
  json_t *id = json_object_get(t, "terminationId");
  const char *s = json_string_value(id);
  if (s != NULL && strcmp(s, "access") == 0) {
    return DCMF_RELAY_ACCESS;
  }
  if (s != NULL && strcmp(s, "core") == 0) {
    return DCMF_RELAY_CORE;
  }
  size_t old = push(w, "terminationId");
  fail(w, id ? "must be \"access\" or \"core\"" : "is required");
  pop(w, old);
  return -1;
}

int dcmf_agwdoc_parse(json_t *doc, enum dcmf_agwdoc_mode mode,
                      const struct dcmf_agwdoc_limits *limits,
                      struct dcmf_relay_config *cfg, size_t terms[2],
                      struct dcmf_problem *p) {
  struct walk w = {.p = p};
  memset(cfg, 0, sizeof(*cfg));
  if (!json_is_object(doc)) {
    fail(&w, "must be a JSON object with a terminations array");
    goto invalid;
  }
  static const char *const top_create[] = {"terminations", NULL};
  static const char *const top_patched[] = {"terminations", "contextId",
                                            NULL};
  only_members(&w, doc,
               mode == DCMF_AGWDOC_CREATE ? top_create : top_patched);
  json_t *arr = json_object_get(doc, "terminations");
  size_t old = push(&w, "terminations");
  if (!json_is_array(arr) || json_array_size(arr) != 2) {
    fail(&w, arr ? "must be an array of two terminations, access and core"
                 : "is required");
    pop(&w, old);
    goto invalid;
  }
  size_t seen[2] = {SIZE_MAX, SIZE_MAX};
  for (size_t i = 0; i < 2; i++) {
    json_t *t = json_array_get(arr, i);
    size_t o2 = push_index(&w, i);
    if (!json_is_object(t)) {
      fail(&w, "must be a termination object");
    } else {
      int side = side_of(&w, t);
      if (side >= 0 && seen[side] != SIZE_MAX) {
        size_t o3 = push(&w, "terminationId");
        fail(&w, "names the same termination as /terminations/%zu",
             seen[side]);
        pop(&w, o3);
      } else if (side >= 0) {
        seen[side] = i;
        parse_termination(&w, t, (enum dcmf_relay_side)side, mode, limits,
                          cfg);
      }
    }
    pop(&w, o2);
  }
  pop(&w, old);
  if (w.errors == 0 && dcmf_relay_config_check(cfg) == 0) {
    if (terms != NULL) {
      terms[0] = seen[0];
      terms[1] = seen[1];
    }
    return 0;
  }
invalid:
  if (w.errors == 0) { /* belt and braces: the engine refused it */
    fail(&w, "is not a usable relay configuration");
  }
  dcmf_problem_set(p, 400, "MANDATORY_IE_INCORRECT",
                   "the AGW context is not valid (%d problem%s; see "
                   "invalidParams)",
                   w.errors, w.errors == 1 ? "" : "s");
  return DCMF_ERR_INVALID;
}

json_t *dcmf_agwdoc_addr(const struct sockaddr *sa) {
  char text[INET6_ADDRSTRLEN];
  uint16_t port;
  const char *name = "ipv4Addr";
  if (sa == NULL) {
    return NULL;
  }
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, text, sizeof(text));
    } else {
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
      name = "ipv6Addr";
    }
    port = ntohs(in6->sin6_port);
  } else {
    return NULL;
  }
  return json_pack("{s:s, s:i}", name, text, "port", (int)port);
}

static json_t *local_addr(const char *advertise, uint16_t port) {
  uint8_t bin[16];
  if (inet_pton(AF_INET, advertise, bin) == 1) {
    return json_pack("{s:s, s:i}", "ipv4Addr", advertise, "port", (int)port);
  }
  if (inet_pton(AF_INET6, advertise, bin) == 1) {
    return json_pack("{s:s, s:i}", "ipv6Addr", advertise, "port", (int)port);
  }
  return NULL;
}

json_t *dcmf_agwdoc_build(const char *id, const struct dcmf_relay_config *cfg,
                          const char *advertise_addr,
                          const uint16_t ports[DCMF_RELAY_SIDES]) {
  json_t *terms = json_array();
  json_t *doc = json_pack("{s:s, s:o}", "contextId", id, "terminations",
                          terms);
  if (doc == NULL) {
    return NULL;
  }
  for (int s = 0; s < DCMF_RELAY_SIDES; s++) {
    const struct sockaddr_storage *remote =
        s == DCMF_RELAY_ACCESS ? &cfg->access_remote : &cfg->core_remote;
    int has = s == DCMF_RELAY_ACCESS ? cfg->has_access_remote
                                     : cfg->has_core_remote;
    /* "o" takes |local|, and a NULL one (no memory, or an advertised
     * address that is not an IP address) fails the pack: with "o*" the
     * term was built without it and then leaked. */
    json_t *local = local_addr(advertise_addr, ports[s]);
    json_t *t = json_pack("{s:s, s:s, s:o}", "terminationId",
                          dcmf_relay_side_name((enum dcmf_relay_side)s),
                          "transport", "UDP", "local", local);
    if (t == NULL || json_array_append_new(terms, t) != 0) {
      json_decref(doc);
      return NULL;
    }
    if (s == DCMF_RELAY_ACCESS &&
        json_object_set_new(t, "latching",
                            json_string(dcmf_relay_latching_name(
                                cfg->latching))) != 0) {
      json_decref(doc);
      return NULL;
    }
    if (has && json_object_set_new(
                   t, "remote",
                   dcmf_agwdoc_addr((const struct sockaddr *)remote)) != 0) {
      json_decref(doc);
      return NULL;
    }
  }
  return doc;
}

/* The reasons that can happen on each side (the others are always 0). */
static const enum dcmf_relay_drop side_reasons[2][3] = {
    {DCMF_RELAY_DROP_UNKNOWN_SOURCE, DCMF_RELAY_DROP_NO_REMOTE,
     DCMF_RELAY_DROP_SEND_FAILED},
    {DCMF_RELAY_DROP_UNKNOWN_SOURCE, DCMF_RELAY_DROP_NOT_LATCHED,
     DCMF_RELAY_DROP_SEND_FAILED},
};

static const char *reason_json(enum dcmf_relay_drop r) {
  switch (r) {
  case DCMF_RELAY_DROP_NOT_LATCHED: return "notLatched";
  case DCMF_RELAY_DROP_NO_REMOTE: return "noRemote";
  case DCMF_RELAY_DROP_SEND_FAILED: return "sendFailed";
  case DCMF_RELAY_DROP_UNKNOWN_SOURCE: break;
  }
  return "unknownSource";
}

/* Returns NULL when memory runs out: never a view with counters missing. */
static json_t *statistics(const struct dcmf_relay_counters *c) {
  json_t *dropped = json_object();
  int rv = dropped == NULL;
  for (int s = 0; s < DCMF_RELAY_SIDES && rv == 0; s++) {
    json_t *side = json_object();
    /* Takes |side| (NULL fails). */
    rv |= json_object_set_new(
        dropped, dcmf_relay_side_name((enum dcmf_relay_side)s), side);
    for (size_t i = 0; i < 3 && rv == 0; i++) {
      enum dcmf_relay_drop r = side_reasons[s][i];
      rv |= json_object_set_new(side, reason_json(r),
                                json_integer((json_int_t)c->dropped[s][r]));
    }
  }
  if (rv != 0) {
    json_decref(dropped);
    return NULL;
  }
  /* "o" takes |dropped|, also when packing fails. */
  return json_pack("{s:{s:I, s:I}, s:{s:I, s:I}, s:o, s:I}", "accessToCore",
                   "packets", (json_int_t)c->packets[DCMF_RELAY_ACCESS],
                   "bytes", (json_int_t)c->bytes[DCMF_RELAY_ACCESS],
                   "coreToAccess", "packets",
                   (json_int_t)c->packets[DCMF_RELAY_CORE], "bytes",
                   (json_int_t)c->bytes[DCMF_RELAY_CORE], "dropped", dropped,
                   "latches", (json_int_t)c->latches);
}

json_t *dcmf_agwdoc_view(json_t *stored, const struct dcmf_relay_counters *c,
                         const struct sockaddr *latched) {
  json_t *doc = json_deep_copy(stored);
  if (doc == NULL) {
    return NULL;
  }
  if (json_object_set_new(doc, "statistics", statistics(c)) != 0) {
    json_decref(doc);
    return NULL;
  }
  if (latched != NULL) {
    json_t *access = json_array_get(json_object_get(doc, "terminations"),
                                    DCMF_RELAY_ACCESS);
    if (json_object_set_new(access, "latched",
                            dcmf_agwdoc_addr(latched)) != 0) {
      json_decref(doc);
      return NULL;
    }
  }
  return doc;
}
