/*
 * dcmf_alg.c - dcmf-alg, the IMS-ALG SDP helper (alg.h; docs/e2ae.md
 * "dcmf-alg"):
 *
 *   dcmf-alg request --side access|core --kind offer|answer [--wic]
 *            [--notify URI] [--reply FILE] < sdp      -> JSON requests
 *   dcmf-alg rewrite --side access|core --kind offer|answer [--wic]
 *            --reply FILE [--offer FILE] < sdp        -> SDP to forward
 *
 * --reply: the AGW's contexts, a JSON array by m= line (null where no
 * context), or one context object for a single m= line.
 * Exit codes: 0 done, 1 usage or I/O, 2 bad SDP (the message names the
 * line), 3 a reply that does not fit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alg.h"
#include "errors.h"

static void usage(void) {
  fputs("usage: dcmf-alg request|rewrite --side access|core "
        "--kind offer|answer\n"
        "                [--wic] [--notify URI] [--reply FILE] "
        "[--offer FILE] < sdp\n",
        stderr);
}

/* Reads a stream up to the SDP bound plus one octet (so that a larger
 * input is seen and refused by the parser). */
static char *read_all(FILE *f, size_t *len) {
  size_t cap = DCMF_SDP_MAX_BYTES + 1;
  char *buf = malloc(cap);
  if (!buf)
    return NULL;
  *len = fread(buf, 1, cap, f);
  if (ferror(f)) {
    free(buf);
    return NULL;
  }
  return buf;
}

static int parse_file(const char *name, FILE *f, struct dcmf_sdp *sdp) {
  size_t len;
  char *text = read_all(f, &len);
  if (!text) {
    fprintf(stderr, "dcmf-alg: %s: cannot read: %s\n", name, strerror(errno));
    return 1;
  }
  struct dcmf_sdp_error e;
  int rc = dcmf_sdp_parse(sdp, text, len, &e);
  free(text);
  if (rc) {
    fprintf(stderr, "dcmf-alg: %s: bad SDP: %s\n", name, e.msg);
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage();
    return 1;
  }
  const char *cmd = argv[1];
  struct dcmf_alg_opts o = {0};
  const char *side = NULL, *kind = NULL, *reply_file = NULL,
             *offer_file = NULL;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--wic") == 0) {
      o.wic = true;
      continue;
    }
    if (!v) {
      usage();
      return 1;
    }
    if (strcmp(a, "--side") == 0)
      side = v;
    else if (strcmp(a, "--kind") == 0)
      kind = v;
    else if (strcmp(a, "--notify") == 0)
      o.notify_uri = v;
    else if (strcmp(a, "--reply") == 0)
      reply_file = v;
    else if (strcmp(a, "--offer") == 0)
      offer_file = v;
    else {
      usage();
      return 1;
    }
    i++;
  }
  bool request = strcmp(cmd, "request") == 0;
  if ((!request && strcmp(cmd, "rewrite") != 0) || !side || !kind ||
      (strcmp(side, "access") && strcmp(side, "core")) ||
      (strcmp(kind, "offer") && strcmp(kind, "answer")) ||
      (!request && !reply_file)) {
    usage();
    return 1;
  }
  o.side = strcmp(side, "access") == 0 ? DCMF_ALG_ACCESS : DCMF_ALG_CORE;
  o.kind = strcmp(kind, "offer") == 0 ? DCMF_ALG_OFFER : DCMF_ALG_ANSWER;

  json_t *replies = NULL;
  if (reply_file) {
    json_error_t je;
    replies = json_load_file(reply_file, 0, &je);
    if (!replies) {
      fprintf(stderr, "dcmf-alg: %s:%d: %s\n", reply_file, je.line, je.text);
      return 3;
    }
    if (json_is_object(replies)) {
      json_t *a = json_array();
      json_array_append_new(a, replies);
      replies = a;
    }
    o.replies = replies;
  }
  struct dcmf_sdp offer, sdp;
  int rc;
  memset(&offer, 0, sizeof offer);
  if (offer_file) {
    FILE *f = fopen(offer_file, "rb");
    if (!f) {
      fprintf(stderr, "dcmf-alg: %s: %s\n", offer_file, strerror(errno));
      json_decref(replies);
      return 1;
    }
    rc = parse_file(offer_file, f, &offer);
    fclose(f);
    if (rc) {
      json_decref(replies);
      return rc;
    }
    o.offer = &offer;
  }
  rc = parse_file("stdin", stdin, &sdp);
  if (rc) {
    dcmf_sdp_free(&offer);
    json_decref(replies);
    return rc;
  }
  char err[256] = "";
  int exit_code = 0;
  if (request) {
    json_t *out = NULL;
    if (dcmf_alg_request(&sdp, &o, &out, err, sizeof err)) {
      fprintf(stderr, "dcmf-alg: %s\n", err);
      exit_code = 3;
    } else {
      json_dumpf(out, stdout, JSON_INDENT(2));
      fputc('\n', stdout);
      json_decref(out);
    }
  } else if (dcmf_alg_rewrite(&sdp, &o, err, sizeof err)) {
    fprintf(stderr, "dcmf-alg: %s\n", err);
    exit_code = 3;
  } else {
    char *text;
    size_t len;
    if (dcmf_sdp_write(&sdp, &text, &len)) {
      fputs("dcmf-alg: out of memory\n", stderr);
      exit_code = 1;
    } else {
      fwrite(text, 1, len, stdout);
      free(text);
    }
  }
  dcmf_sdp_free(&sdp);
  dcmf_sdp_free(&offer);
  json_decref(replies);
  return exit_code;
}
