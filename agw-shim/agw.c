/* placeholder: being written */
#include <stdlib.h>

#include "agw.h"
#include "errors.h"

int dcmf_agw_new(struct dcmf_agw **agw,
                 const struct dcmf_agw_settings *settings) {
  (void)settings;
  *agw = NULL;
  return 0;
}

void dcmf_agw_del(struct dcmf_agw *agw) {
  (void)agw;
}

void dcmf_agw_handle(struct dcmf_agw *agw, const struct dcmf_api_request *req,
                     struct dcmf_api_response *resp) {
  (void)agw;
  (void)req;
  resp->status = 404;
}

void dcmf_agw_metrics(struct dcmf_agw *agw, struct dcmf_buf *out) {
  (void)agw;
  (void)out;
}
