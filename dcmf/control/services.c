#include "services.h"

#include <stdio.h>
#include <string.h>

#include "e2ae_svc.h"
#include "errors.h"
#include "httpsvc.h"
#include "msrp_dc_svc.h"
#include "svc_relay.h"
#include "t140_svc.h"
#include "udpproxy_svc.h"

int dcmf_services_open(struct dcmf_services *s, const struct dcmf_config *c,
                       size_t n_workers, char *err, size_t errlen) {
  memset(s, 0, sizeof(*s));
  char why[512];
  struct dcmf_repo_settings repo_settings = {0};
  if (dcmf_repo_open(&s->repo, c->bootstrap_dir, &repo_settings, why,
                     sizeof(why)) != 0) {
    snprintf(err, errlen, "bootstrap-dir %s: %s", c->bootstrap_dir, why);
    return DCMF_ERR_INVALID;
  }
  s->proxy = (struct dcmf_httpproxy_svc_config){
      .upstream = {.ca_file = c->upstream_ca[0] ? c->upstream_ca : NULL,
                   .client_cert = c->upstream_cert[0] ? c->upstream_cert : NULL,
                   .client_key = c->upstream_key[0] ? c->upstream_key : NULL,
                   .connect_timeout_ms = c->upstream_connect_timeout_ms,
                   .response_timeout_ms = c->upstream_response_timeout_ms,
                   .idle_timeout_ms = c->upstream_idle_timeout_ms,
                   .max_connections = c->upstream_max_connections},
      .cache_size = c->cache_size / (n_workers > 0 ? n_workers : 1),
      .fallback = c->proxy_fallback ? s->repo : NULL,
  };
  /* HTTP first (bootstrap streams and "http" channels), then UDP-proxy
   * legs, then the DC relay for the negotiated channels left. */
  s->regs[0] = (struct dcmf_svc_reg){&dcmf_bootstrap_service, s->repo};
  s->regs[1] = (struct dcmf_svc_reg){&dcmf_httpproxy_service, &s->proxy};
  s->regs[2] = (struct dcmf_svc_reg){&dcmf_udpproxy_service, NULL};
  s->regs[3] = (struct dcmf_svc_reg){&dcmf_relay_service, NULL};
  /* SSRC flows of e2ae media (DCMF_ASSOC_SRTP) only. */
  s->e2ae = (struct dcmf_e2ae_config){.push_ms = c->e2ae_push_ms};
  s->regs[4] = (struct dcmf_svc_reg){&dcmf_e2ae_service, &s->e2ae};
  /* The negotiated msrp channel of an MSRP-over-DC e2ae media only. */
  s->regs[5] = (struct dcmf_svc_reg){&dcmf_msrp_dc_service, NULL};
  /* The negotiated t140 channel of a T.140 e2ae media only. */
  s->regs[6] = (struct dcmf_svc_reg){&dcmf_t140_service, NULL};
  s->n = DCMF_SERVICES_N;
  return 0;
}

void dcmf_services_close(struct dcmf_services *s) {
  dcmf_repo_del(s->repo);
  s->repo = NULL;
}
