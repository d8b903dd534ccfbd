#include "sctp_group.h"

#include "sctp.h"

int dcmf_test_sctp_group_setup(void **state) {
  (void)state;
  return dcmf_sctp_stack_init();
}

void dcmf_test_sctp_finish(void) {
  for (int i = 0; i < 50 && dcmf_sctp_stack_finish() != 0; i++) {
    dcmf_sctp_stack_tick(100);
  }
}

int dcmf_test_sctp_group_teardown(void **state) {
  (void)state;
  dcmf_test_sctp_finish();
  return 0;
}
