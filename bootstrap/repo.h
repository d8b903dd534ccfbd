/*
 * repo.h - the built-in bootstrap repository: a directory tree of static
 * files (the data-channel application served on "/" of a bootstrap data
 * channel) held entirely in memory.
 *
 * dcmf_repo_open() is the only function that does I/O: it reads the tree
 * once at start-up. After that every function is pure, so lookups cannot
 * reach the file system and cannot resolve outside the repository, and
 * one repository may be shared read-only by any number of threads.
 *
 * Paths. Stored paths are relative, '/'-separated and canonical
 * ("index.html", "apps/notes/app.js"): no empty, "." or ".." segments, no
 * segment starting with '.', no backslash, no control character. Lookups
 * take the path of a request-target (percent-encoded, starting with '/')
 * and normalise it (dcmf_repo_normalize).
 */
#ifndef DCMF_REPO_H
#define DCMF_REPO_H

#include <stddef.h>
#include <stdint.h>

/* Longest stored path in bytes, without the terminating NUL. */
#define DCMF_REPO_MAX_PATH 1024
/* Deepest directory nesting dcmf_repo_open descends into. */
#define DCMF_REPO_MAX_DEPTH 16
/* Length of an ETag: '"' + 16 lower-case hex digits + '"'. */
#define DCMF_REPO_ETAG_LEN 18

struct dcmf_repo_settings {
  /* Most files the repository may hold; 0 means 1024. */
  size_t max_files;
  /* Most content bytes (sum over all files); 0 means 16 MiB. */
  size_t max_total_bytes;
};

/* One file. Owned by the repository; see the lookup functions for how
 * long it stays valid. */
struct dcmf_repo_entry {
  const uint8_t *bytes; /* the content; NULL when len is 0 */
  size_t len;
  /* Media type chosen from the file name's extension, e.g.
   * "text/html; charset=utf-8"; a static string. */
  const char *content_type;
  /* Strong entity tag, quoted: '"' + the first 16 hex digits of the
   * SHA-256 of the content + '"'. NUL-terminated. */
  const char *etag;
};

struct dcmf_repo;

/*
 * Creates an empty repository that files are added to with
 * dcmf_repo_add(). |settings| is copied and may be NULL for the defaults.
 * Returns 0 or DCMF_ERR_NOMEM.
 */
int dcmf_repo_new(struct dcmf_repo **repo,
                  const struct dcmf_repo_settings *settings);

/*
 * Creates a repository holding every regular file below the directory
 * |dir| (read now, in full). Symbolic links are never followed, neither
 * for files nor for directories, and are skipped like sockets, FIFOs and
 * devices; names starting with '.' are skipped (no hidden files are
 * served), and so are names holding a backslash or a control character.
 * Every directory and file is opened relative to its parent's descriptor
 * with O_NOFOLLOW, so nothing outside |dir| is read. |dir| itself may be
 * a symbolic link. |settings| is copied and may be NULL.
 *
 * On failure nothing is left open or allocated and, when |err| is not
 * NULL, |err| (capacity |errlen|) receives one English sentence naming
 * the offending path.
 *
 * Returns:
 *   0                   success; *|repo| must be freed with dcmf_repo_del
 *   DCMF_ERR_SYSTEM     |dir| or something below it could not be opened,
 *                       listed or read
 *   DCMF_ERR_TOO_LARGE  more files or bytes than |settings| allow, a path
 *                       longer than DCMF_REPO_MAX_PATH or nesting deeper
 *                       than DCMF_REPO_MAX_DEPTH
 *   DCMF_ERR_NOMEM      allocation failed
 */
int dcmf_repo_open(struct dcmf_repo **repo, const char *dir,
                   const struct dcmf_repo_settings *settings, char *err,
                   size_t errlen);

/* Frees |repo| and every entry; NULL is allowed. */
void dcmf_repo_del(struct dcmf_repo *repo);

/*
 * Adds a copy of |len| bytes at |bytes| under |path|, a canonical stored
 * path with or without one leading '/' ("/apps/a.js" or "apps/a.js").
 * Adding an existing path replaces its content; entries returned earlier
 * for that path become invalid. Meant for tests and generated content.
 *
 * Returns 0, DCMF_ERR_INVALID (|path| is not canonical or is longer than
 * DCMF_REPO_MAX_PATH), DCMF_ERR_TOO_LARGE (the file or byte limit would
 * be exceeded; nothing changes) or DCMF_ERR_NOMEM (nothing changes).
 */
int dcmf_repo_add(struct dcmf_repo *repo, const char *path, const void *bytes,
                  size_t len);

/*
 * Normalises the request path |path| (|len| bytes, not NUL-terminated;
 * the part of a request-target before any '?') to a stored path in |out|
 * (capacity |cap|, NUL-terminated); *|outlen| receives its length.
 *
 * Rules: |path| must start with '/'; "%XX" escapes are decoded (hex in
 * either case); runs of '/' count as one; "." segments are dropped; a
 * path that is empty after the first '/' or ends with '/' names a
 * directory and gets "index.html" appended. Refused as malformed: no
 * leading '/', a bad escape, a ".." segment (also when written "%2e%2e"
 * or ".%2E"), an encoded '/' ("%2F"), a NUL, a backslash (raw or
 * encoded), any other control character, and a raw '?' or '#'.
 *
 * Returns 0, DCMF_ERR_MALFORMED or DCMF_ERR_TOO_LARGE (|out| too small).
 */
int dcmf_repo_normalize(const char *path, size_t len, char *out, size_t cap,
                        size_t *outlen);

/*
 * Looks up the request path |path| (|len| bytes; see dcmf_repo_normalize).
 * On success *|entry| points to the entry, valid until |repo| is deleted
 * or that path is replaced by dcmf_repo_add.
 *
 * Returns 0, DCMF_ERR_MALFORMED (normalisation refused |path|: answer
 * 400) or DCMF_ERR_NOT_FOUND (answer 404).
 */
int dcmf_repo_find(const struct dcmf_repo *repo, const char *path, size_t len,
                   const struct dcmf_repo_entry **entry);

/*
 * Convenience form of dcmf_repo_find for a NUL-terminated |path|: returns
 * the entry, or NULL when |path| is malformed or names nothing. "/" and
 * any path ending in '/' name that directory's index.html.
 */
const struct dcmf_repo_entry *dcmf_repo_lookup(const struct dcmf_repo *repo,
                                               const char *path);

/*
 * Returns 1 if the request path |path| (|len| bytes), which does not end
 * in '/', names a directory holding an index.html (so a server should
 * redirect to |path| + "/" to keep relative links working), else 0.
 */
int dcmf_repo_is_dir(const struct dcmf_repo *repo, const char *path,
                     size_t len);

/* Returns the number of files in |repo|. */
size_t dcmf_repo_count(const struct dcmf_repo *repo);

/*
 * Returns the media type for the file name |name| from its extension,
 * compared case-insensitively: html/htm, js/mjs, css, json, svg, png,
 * jpg/jpeg, ico, txt, wasm, webmanifest; anything else is
 * "application/octet-stream". Text types carry "; charset=utf-8". The
 * result is a static string.
 */
const char *dcmf_repo_content_type(const char *name);

#endif
