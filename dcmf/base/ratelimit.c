/*
 * ratelimit.c - per-address token buckets in a fixed, set-associative
 * table. Tokens are counted in thousandths so that a rate in tokens per
 * second refills exactly |rate| thousandths per millisecond.
 */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "errors.h"

/* Slots per set: a lookup scans one set, so keep it small. */
#define WAYS 8
#define MILLI 1000u

struct slot {
  uint8_t key[17]; /* family tag + 16 address bytes */
  uint8_t used;
  uint64_t last_ms;
  uint64_t tokens; /* thousandths */
};

struct dcmf_ratelimit {
  struct dcmf_ratelimit_settings settings;
  uint64_t capacity; /* burst in thousandths */
  size_t n_sets;
  struct dcmf_ratelimit_counters counters;
  struct slot slots[]; /* n_sets * WAYS */
};

int dcmf_ratelimit_new(struct dcmf_ratelimit **out,
                       const struct dcmf_ratelimit_settings *settings) {
  size_t slots =
      settings->slots ? settings->slots : DCMF_RATELIMIT_DEFAULT_SLOTS;
  size_t n_sets = (slots + WAYS - 1) / WAYS;
  struct dcmf_ratelimit *rl =
      calloc(1, sizeof(*rl) + n_sets * WAYS * sizeof(struct slot));
  if (rl == NULL) {
    return DCMF_ERR_NOMEM;
  }
  rl->settings = *settings;
  uint32_t burst = settings->burst ? settings->burst : settings->rate;
  rl->capacity = (uint64_t)(burst ? burst : 1) * MILLI;
  rl->n_sets = n_sets;
  *out = rl;
  return 0;
}

void dcmf_ratelimit_del(struct dcmf_ratelimit *rl) {
  free(rl);
}

/* Fills |key| for |from|; returns 0, or DCMF_ERR_INVALID. */
static int rl_key(uint8_t key[17], const struct sockaddr *from) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  memset(key, 0, 17);
  if (from == NULL) {
    return DCMF_ERR_INVALID;
  }
  if (from->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)from;
    key[0] = 4;
    memcpy(key + 1, &in->sin_addr, 4);
    return 0;
  }
  if (from->sa_family == AF_INET6) {
    const uint8_t *a = ((const struct sockaddr_in6 *)from)->sin6_addr.s6_addr;
    if (memcmp(a, mapped, sizeof(mapped)) == 0) {
      key[0] = 4; /* the same host as its plain IPv4 address */
      memcpy(key + 1, a + 12, 4);
    } else {
      key[0] = 6;
      memcpy(key + 1, a, 8); /* the /64 */
    }
    return 0;
  }
  return DCMF_ERR_INVALID;
}

/* FNV-1a over the key, seeded, with a final mix so the low bits (which
 * pick the set) depend on every input byte. */
static uint64_t rl_hash(const uint8_t key[17], uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (size_t i = 0; i < 17; i++) {
    h = (h ^ key[i]) * 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

/* Finds |key|'s slot in its set, or claims one (free, else the least
 * recently seen), which then starts with a full bucket. */
static struct slot *rl_slot(struct dcmf_ratelimit *rl, const uint8_t key[17],
                            uint64_t now_ms) {
  size_t set = (size_t)(rl_hash(key, rl->settings.seed) % rl->n_sets);
  struct slot *ways = &rl->slots[set * WAYS];
  struct slot *victim = NULL;
  for (size_t i = 0; i < WAYS; i++) {
    struct slot *s = &ways[i];
    if (s->used && memcmp(s->key, key, 17) == 0) {
      return s;
    }
    if (victim == NULL ||
        (victim->used && (!s->used || s->last_ms < victim->last_ms))) {
      victim = s;
    }
  }
  if (victim->used) {
    rl->counters.evicted++;
  }
  memcpy(victim->key, key, 17);
  victim->used = 1;
  victim->last_ms = now_ms;
  victim->tokens = rl->capacity;
  return victim;
}

int dcmf_ratelimit_allow(struct dcmf_ratelimit *rl, const struct sockaddr *from,
                         uint64_t now_ms) {
  uint8_t key[17];
  if (rl_key(key, from) != 0) {
    return DCMF_ERR_INVALID;
  }
  if (rl->settings.rate == 0) {
    rl->counters.allowed++;
    return 1;
  }
  struct slot *s = rl_slot(rl, key, now_ms);
  if (now_ms > s->last_ms) {
    uint64_t elapsed = now_ms - s->last_ms;
    uint64_t rate = rl->settings.rate;
    uint64_t room = rl->capacity - s->tokens;
    /* Compare before multiplying: elapsed * rate overflows after a long
     * silence, and then the bucket is full anyway. */
    if (elapsed >= (room + rate - 1) / rate) {
      s->tokens = rl->capacity;
    } else {
      s->tokens += elapsed * rate;
    }
    s->last_ms = now_ms;
  }
  if (s->tokens < MILLI) {
    rl->counters.limited++;
    return 0;
  }
  s->tokens -= MILLI;
  rl->counters.allowed++;
  return 1;
}

const struct dcmf_ratelimit_counters *
dcmf_ratelimit_counters(const struct dcmf_ratelimit *rl) {
  return &rl->counters;
}
