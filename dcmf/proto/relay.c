#include "relay.h"

#include <string.h>

#include <netinet/in.h>

#include "errors.h"

/* A transport address reduced to what comparisons need: IPv4-mapped
 * IPv6 becomes IPv4. */
struct key {
  int family; /* AF_INET or AF_INET6; 0 when unusable */
  uint8_t addr[16];
  uint16_t port; /* network order */
};

static struct key key_of(const struct sockaddr *sa) {
  struct key k;
  memset(&k, 0, sizeof(k));
  if (sa == NULL) {
    return k;
  }
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    k.family = AF_INET;
    memcpy(k.addr, &in->sin_addr, 4);
    k.port = in->sin_port;
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    k.port = in6->sin6_port;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      k.family = AF_INET;
      memcpy(k.addr, in6->sin6_addr.s6_addr + 12, 4);
    } else {
      k.family = AF_INET6;
      memcpy(k.addr, &in6->sin6_addr, 16);
    }
  }
  return k;
}

int dcmf_relay_addr_equal(const struct sockaddr *a, const struct sockaddr *b) {
  struct key ka = key_of(a), kb = key_of(b);
  return ka.family != 0 && ka.family == kb.family && ka.port == kb.port &&
         memcmp(ka.addr, kb.addr, ka.family == AF_INET ? 4 : 16) == 0;
}

int dcmf_relay_host_equal(const struct sockaddr *a, const struct sockaddr *b) {
  struct key ka = key_of(a), kb = key_of(b);
  return ka.family != 0 && ka.family == kb.family &&
         memcmp(ka.addr, kb.addr, ka.family == AF_INET ? 4 : 16) == 0;
}

/* AF_INET/AF_INET6 with a port; the length matches the family. */
static int addr_usable(const struct sockaddr_storage *ss) {
  struct key k = key_of((const struct sockaddr *)ss);
  return k.family != 0 && k.port != 0;
}

int dcmf_relay_config_check(const struct dcmf_relay_config *c) {
  if (c->latching != DCMF_RELAY_LATCH_FIRST_PACKET &&
      c->latching != DCMF_RELAY_LATCH_SIGNALLED_ONLY) {
    return DCMF_ERR_INVALID;
  }
  if (c->has_access_remote && !addr_usable(&c->access_remote)) {
    return DCMF_ERR_INVALID;
  }
  if (c->has_core_remote && !addr_usable(&c->core_remote)) {
    return DCMF_ERR_INVALID;
  }
  if (c->latching == DCMF_RELAY_LATCH_SIGNALLED_ONLY &&
      !c->has_access_remote) {
    return DCMF_ERR_INVALID;
  }
  return 0;
}

int dcmf_relay_init(struct dcmf_relay *r,
                    const struct dcmf_relay_config *config) {
  if (dcmf_relay_config_check(config) != 0) {
    return DCMF_ERR_INVALID;
  }
  memset(r, 0, sizeof(*r));
  r->config = *config;
  return 0;
}

static int access_changed(const struct dcmf_relay_config *a,
                          const struct dcmf_relay_config *b) {
  if (a->latching != b->latching ||
      a->has_access_remote != b->has_access_remote) {
    return 1;
  }
  return a->has_access_remote &&
         !dcmf_relay_addr_equal((const struct sockaddr *)&a->access_remote,
                                (const struct sockaddr *)&b->access_remote);
}

int dcmf_relay_set_config(struct dcmf_relay *r,
                          const struct dcmf_relay_config *config) {
  if (dcmf_relay_config_check(config) != 0) {
    return DCMF_ERR_INVALID;
  }
  if (access_changed(&r->config, config)) {
    r->latched = 0;
    memset(&r->peer, 0, sizeof(r->peer));
  }
  r->config = *config;
  return 0;
}

static int drop(struct dcmf_relay *r, enum dcmf_relay_side side,
                enum dcmf_relay_drop reason, struct dcmf_relay_verdict *v) {
  r->counters.dropped[side][reason]++;
  v->forward = 0;
  v->reason = reason;
  return 0;
}

static int forward(struct dcmf_relay *r, enum dcmf_relay_side side,
                   const struct sockaddr_storage *to,
                   struct dcmf_relay_verdict *v) {
  r->counters.packets[side]++;
  r->counters.bytes[side] += v->len;
  v->forward = 1;
  v->out = side == DCMF_RELAY_ACCESS ? DCMF_RELAY_CORE : DCMF_RELAY_ACCESS;
  v->to = (const struct sockaddr *)to;
  return 1;
}

/* Copies |from| into the latch, keeping only the bytes of its family. */
static void latch(struct dcmf_relay *r, const struct sockaddr *from) {
  memset(&r->peer, 0, sizeof(r->peer));
  memcpy(&r->peer, from,
         from->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                    : sizeof(struct sockaddr_in6));
  r->latched = 1;
  r->counters.latches++;
}

static int recv_access(struct dcmf_relay *r, const struct sockaddr *from,
                       struct dcmf_relay_verdict *v) {
  if (r->latched) {
    if (!dcmf_relay_addr_equal(from, (const struct sockaddr *)&r->peer)) {
      return drop(r, DCMF_RELAY_ACCESS, DCMF_RELAY_DROP_UNKNOWN_SOURCE, v);
    }
  } else {
    if (r->config.latching == DCMF_RELAY_LATCH_SIGNALLED_ONLY &&
        !dcmf_relay_addr_equal(
            from, (const struct sockaddr *)&r->config.access_remote)) {
      return drop(r, DCMF_RELAY_ACCESS, DCMF_RELAY_DROP_UNKNOWN_SOURCE, v);
    }
    latch(r, from);
    v->latched_now = 1;
  }
  if (!r->config.has_core_remote) {
    return drop(r, DCMF_RELAY_ACCESS, DCMF_RELAY_DROP_NO_REMOTE, v);
  }
  return forward(r, DCMF_RELAY_ACCESS, &r->config.core_remote, v);
}

static int recv_core(struct dcmf_relay *r, const struct sockaddr *from,
                     struct dcmf_relay_verdict *v) {
  if (!r->config.has_core_remote ||
      !dcmf_relay_addr_equal(from,
                             (const struct sockaddr *)&r->config.core_remote)) {
    return drop(r, DCMF_RELAY_CORE, DCMF_RELAY_DROP_UNKNOWN_SOURCE, v);
  }
  if (!r->latched) {
    return drop(r, DCMF_RELAY_CORE, DCMF_RELAY_DROP_NOT_LATCHED, v);
  }
  return forward(r, DCMF_RELAY_CORE, &r->peer, v);
}

int dcmf_relay_recv(struct dcmf_relay *r, enum dcmf_relay_side side,
                    const struct sockaddr *from, const uint8_t *pkt,
                    size_t len, struct dcmf_relay_verdict *v) {
  memset(v, 0, sizeof(*v));
  v->data = pkt;
  v->len = len;
  if ((side != DCMF_RELAY_ACCESS && side != DCMF_RELAY_CORE) ||
      key_of(from).family == 0) {
    return DCMF_ERR_INVALID;
  }
  return side == DCMF_RELAY_ACCESS ? recv_access(r, from, v)
                                   : recv_core(r, from, v);
}

void dcmf_relay_send_failed(struct dcmf_relay *r, enum dcmf_relay_side side,
                            size_t len) {
  if (side != DCMF_RELAY_ACCESS && side != DCMF_RELAY_CORE) {
    return;
  }
  struct dcmf_relay_counters *c = &r->counters;
  if (c->packets[side] > 0) {
    c->packets[side]--;
  }
  c->bytes[side] = c->bytes[side] >= len ? c->bytes[side] - len : 0;
  c->dropped[side][DCMF_RELAY_DROP_SEND_FAILED]++;
}

const struct sockaddr *dcmf_relay_peer(const struct dcmf_relay *r) {
  return r->latched ? (const struct sockaddr *)&r->peer : NULL;
}

const char *dcmf_relay_side_name(enum dcmf_relay_side side) {
  return side == DCMF_RELAY_CORE ? "core" : "access";
}

const char *dcmf_relay_latching_name(enum dcmf_relay_latching latching) {
  return latching == DCMF_RELAY_LATCH_SIGNALLED_ONLY ? "signalled-only"
                                                     : "first-packet";
}

const char *dcmf_relay_drop_name(enum dcmf_relay_drop reason) {
  switch (reason) {
  case DCMF_RELAY_DROP_NOT_LATCHED: return "not_latched";
  case DCMF_RELAY_DROP_NO_REMOTE: return "no_remote";
  case DCMF_RELAY_DROP_SEND_FAILED: return "send_failed";
  case DCMF_RELAY_DROP_UNKNOWN_SOURCE: break;
  }
  return "unknown_source";
}
