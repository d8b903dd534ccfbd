/*
 * problem.h - RFC 9457 problem details as TS 29.500 uses them
 * (ProblemDetails with invalidParams), built up by validation code and
 * rendered as application/problem+json by the API layer.
 */
#ifndef DCMF_PROBLEM_H
#define DCMF_PROBLEM_H

#include <stddef.h>

#include "buf.h"

#define DCMF_PROBLEM_MAX_PARAMS 16

struct dcmf_invalid_param {
  char param[192];  /* JSON Pointer into the request body, or "header X" */
  char reason[192]; /* one English sentence */
};

struct dcmf_problem {
  int status;        /* HTTP status; 0 while no problem was recorded */
  const char *title; /* static string: short summary of the status */
  const char *cause; /* static TS 29.500 application error, or NULL */
  char detail[320];
  size_t n_invalid;
  struct dcmf_invalid_param invalid[DCMF_PROBLEM_MAX_PARAMS];
  size_t n_dropped; /* invalid params beyond the array, counted only */
};

/*
 * Sets status, title (derived from the status), cause and detail, keeping
 * any invalid params recorded so far. Returns |status| so callers can
 * write `return dcmf_problem_set(...)` where they return statuses.
 */
int dcmf_problem_set(struct dcmf_problem *p, int status, const char *cause,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records one invalid parameter; extras beyond the array are counted. */
void dcmf_problem_param(struct dcmf_problem *p, const char *param,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns the reason phrase for an HTTP status ("Not Found"). */
const char *dcmf_http_reason(int status);

/* Renders |p| as problem+json into |out|. Returns 0 or DCMF_ERR_NOMEM. */
int dcmf_problem_render(const struct dcmf_problem *p, struct dcmf_buf *out);

#endif
