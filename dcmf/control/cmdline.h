/*
 * cmdline.h - what dcmfd's command line asks for: the control process
 * (the daemon), a media worker process (wchild.h: started again by the
 * control process with DCMF_WCHILD_ARG first), or only --help or
 * --version. The options themselves are config.h's.
 */
#ifndef DCMF_CMDLINE_H
#define DCMF_CMDLINE_H

#include <stddef.h>

#include "config.h"

enum dcmf_cmdline_role {
  DCMF_CMDLINE_EXIT,    /* done (help, version, or an error printed) */
  DCMF_CMDLINE_CONTROL, /* run the daemon */
  DCMF_CMDLINE_WORKER,  /* run a media worker process */
};

struct dcmf_cmdline {
  enum dcmf_cmdline_role role;
  int exit_status; /* for DCMF_CMDLINE_EXIT: 0, or 2 for a bad option */
  /* The daemon's own arguments (argv[1..], without a worker marker),
   * which the worker processes get again; borrowed from argv. */
  char **args;
  size_t n_args;
  size_t n_workers; /* --workers, or one per core (at most the maximum) */
};

/*
 * Reads |argv| into |cfg| (defaults, --config, flags) and |out|. Prints
 * the help or version text to stdout, or the problem to stderr, when
 * that is all there is to do (role DCMF_CMDLINE_EXIT).
 */
void dcmf_cmdline_read(struct dcmf_cmdline *out, struct dcmf_config *cfg,
                       int argc, char **argv);

#endif
