#include "assoc.h"

#include "assoc_dtlsdata.h"
#include "assoc_sctp.h"
#include "assoc_srtp.h"

/* A new kind is one more case here (and its table in a file of its
 * own); the session and the services need no edit. */
const struct dcmf_assoc_ops *dcmf_assoc_kind_ops(enum dcmf_assoc_kind kind) {
  switch (kind) {
  case DCMF_ASSOC_SCTP:
    return &dcmf_assoc_sctp;
  case DCMF_ASSOC_SRTP:
    return &dcmf_assoc_srtp;
  case DCMF_ASSOC_DTLS_DATA: /* e2ae, T.38 over DTLS */
    return &dcmf_assoc_dtlsdata;
  }
  return NULL;
}
