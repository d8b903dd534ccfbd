#include "cmdline.h"

#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "dcmf_build_config.h"
#include "wchild.h"

void dcmf_cmdline_read(struct dcmf_cmdline *out, struct dcmf_config *cfg,
                       int argc, char **argv) {
  memset(out, 0, sizeof(*out));
  out->role = DCMF_CMDLINE_EXIT;
  /* Started again by the control process as a media worker (wchild.h):
   * the same arguments follow the marker. */
  int worker_process = argc >= 2 && strcmp(argv[1], DCMF_WCHILD_ARG) == 0;
  if (worker_process) {
    argc--;
    argv++;
  }
  char err[1200];
  enum dcmf_config_action action;
  if (dcmf_config_from_args(cfg, argc, argv, &action, err, sizeof(err)) != 0) {
    fprintf(stderr, "dcmfd: %s\n", err);
    out->exit_status = 2;
    return;
  }
  if (action != DCMF_CONFIG_RUN) {
    if (action == DCMF_CONFIG_HELP) {
      dcmf_config_usage(stdout, "dcmfd");
    } else {
      printf("dcmfd %s\n", DCMF_VERSION);
    }
    return;
  }
  if (worker_process) {
    out->role = DCMF_CMDLINE_WORKER;
    return;
  }
  out->role = DCMF_CMDLINE_CONTROL;
  out->args = argv + 1;
  out->n_args = (size_t)(argc - 1);
  out->n_workers = cfg->workers;
  if (out->n_workers == 0) { /* one per core */
    unsigned cores = uv_available_parallelism();
    out->n_workers =
        cores < DCMF_CONFIG_MAX_WORKERS ? cores : DCMF_CONFIG_MAX_WORKERS;
  }
}
