#include "media.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hashmap.h"

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
  if (d->rtpleg != NULL) {
    if (d->rtpleg->rtp_fd >= 0) {
      close(d->rtpleg->rtp_fd);
    }
    if (d->rtpleg->rtcp_fd >= 0) {
      close(d->rtpleg->rtcp_fd);
    }
    free(d->rtpleg);
    d->rtpleg = NULL;
  }
  if (d->tcpleg != NULL) {
    for (int i = 0; i < 2; i++) {
      if (d->tcpleg->fd[i] >= 0) {
        close(d->tcpleg->fd[i]);
      }
    }
    free(d->tcpleg);
    d->tcpleg = NULL;
  }
}

int dcmf_media_key_equal(const struct dcmf_media_key *a,
                         const struct dcmf_media_key *b) {
  return strcmp(a->context_id, b->context_id) == 0 &&
         strcmp(a->termination_id, b->termination_id) == 0 &&
         strcmp(a->media_id, b->media_id) == 0;
}

uint64_t dcmf_media_key_hash(const struct dcmf_media_key *k) {
  /* The NUL of each id goes in too, so ("ab","c") and ("a","bc") differ. */
  uint64_t h = dcmf_hash_bytes(0, k->context_id, strlen(k->context_id) + 1);
  h = dcmf_hash_bytes(h, k->termination_id, strlen(k->termination_id) + 1);
  return dcmf_hash_bytes(h, k->media_id, strlen(k->media_id) + 1);
}
