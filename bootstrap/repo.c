#include "repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "errors.h"

#define DEFAULT_MAX_FILES 1024
#define DEFAULT_MAX_TOTAL (16u * 1024u * 1024u)
#define INDEX_NAME "index.html"

struct repo_file {
  char *path; /* canonical stored path, owned */
  uint8_t *data; /* owned; NULL when empty */
  struct dcmf_repo_entry entry;
  char etag[DCMF_REPO_ETAG_LEN + 1];
};

struct dcmf_repo {
  struct dcmf_repo_settings settings;
  struct repo_file **files; /* sorted by strcmp of path */
  size_t count;
  size_t cap;
  size_t total; /* content bytes */
};

static const char hexdigits[] = "0123456789abcdef";

/* ---- content types ---------------------------------------------------- */

static const struct {
  const char *ext;
  const char *type;
} content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"ico", "image/x-icon"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"webmanifest", "application/manifest+json"},
};

static int ascii_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int ext_equal(const char *a, const char *b) {
  for (; *a != '\0' && *b != '\0'; a++, b++) {
    if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b)) {
      return 0;
    }
  }
  return *a == '\0' && *b == '\0';
}

const char *dcmf_repo_content_type(const char *name) {
  const char *slash = strrchr(name, '/');
  const char *base = slash != NULL ? slash + 1 : name;
  const char *dot = strrchr(base, '.');
  if (dot != NULL && dot != base) {
    for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]);
         i++) {
      if (ext_equal(dot + 1, content_types[i].ext)) {
        return content_types[i].type;
      }
    }
  }
  return "application/octet-stream";
}

/* ---- paths ------------------------------------------------------------ */

static int is_ctl(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

/* A file or directory name we are willing to store and serve. */
static int name_ok(const char *name, size_t len) {
  if (len == 0 || name[0] == '.') {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (is_ctl(c) || c == '\\' || c == '/') {
      return 0;
    }
  }
  return 1;
}

/* Checks that |path| (|len| bytes) is a canonical stored path. */
static int path_canonical(const char *path, size_t len) {
  if (len == 0 || len > DCMF_REPO_MAX_PATH) {
    return 0;
  }
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || path[i] == '/') {
      if (!name_ok(path + start, i - start)) {
        return 0;
      }
      start = i + 1;
    }
  }
  return 1;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = (unsigned char)ascii_lower(c);
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

/* The work of dcmf_repo_normalize; *|dir| is set when the result names a
 * directory's index.html that normalisation appended. */
static int normalize(const char *path, size_t len, char *out, size_t cap,
                     size_t *outlen, int *dir) {
  if (len == 0 || path[0] != '/') {
    return DCMF_ERR_MALFORMED;
  }
  size_t o = 0;
  size_t i = 1;
  int last_was_dir = 1; /* "/" alone names the root directory */
  while (i < len) {
    if (path[i] == '/') {
      i++;
      continue; /* empty segment: runs of '/' count as one */
    }
    size_t seg_start = o;
    if (o > 0) {
      if (o + 1 >= cap) {
        return DCMF_ERR_TOO_LARGE;
      }
      out[o++] = '/';
      seg_start = o;
    }
    while (i < len && path[i] != '/') {
      unsigned char c = (unsigned char)path[i];
      if (c == '%') {
        if (len - i < 3) {
          return DCMF_ERR_MALFORMED;
        }
        int hi = hexval((unsigned char)path[i + 1]);
        int lo = hexval((unsigned char)path[i + 2]);
        if (hi < 0 || lo < 0) {
          return DCMF_ERR_MALFORMED;
        }
        c = (unsigned char)(hi * 16 + lo);
        if (c == '/') {
          return DCMF_ERR_MALFORMED;
        }
        i += 3;
      } else {
        if (c == '?' || c == '#') {
          return DCMF_ERR_MALFORMED;
        }
        i++;
      }
      if (is_ctl(c) || c == '\\') {
        return DCMF_ERR_MALFORMED;
      }
      if (o + 1 >= cap) {
        return DCMF_ERR_TOO_LARGE;
      }
      out[o++] = (char)c;
    }
    size_t seg_len = o - seg_start;
    if (seg_len == 2 && out[seg_start] == '.' && out[seg_start + 1] == '.') {
      return DCMF_ERR_MALFORMED;
    }
    if (seg_len == 1 && out[seg_start] == '.') {
      /* Drop "." together with the '/' written before it. */
      o = seg_start > 0 ? seg_start - 1 : 0;
      last_was_dir = 1;
    } else {
      last_was_dir = 0;
    }
  }
  if (len > 1 && path[len - 1] == '/') {
    last_was_dir = 1;
  }
  if (o == 0) {
    last_was_dir = 1;
  }
  if (last_was_dir) {
    size_t need = (o > 0 ? 1 : 0) + sizeof(INDEX_NAME) - 1;
    if (o + need + 1 > cap) {
      return DCMF_ERR_TOO_LARGE;
    }
    if (o > 0) {
      out[o++] = '/';
    }
    memcpy(out + o, INDEX_NAME, sizeof(INDEX_NAME) - 1);
    o += sizeof(INDEX_NAME) - 1;
  }
  if (o >= cap) {
    return DCMF_ERR_TOO_LARGE;
  }
  out[o] = '\0';
  *outlen = o;
  *dir = last_was_dir;
  return 0;
}

int dcmf_repo_normalize(const char *path, size_t len, char *out, size_t cap,
                        size_t *outlen) {
  int dir;
  return normalize(path, len, out, cap, outlen, &dir);
}

/* ---- the sorted table ------------------------------------------------- */

/* Binary search for |path|: returns 1 and its index, or 0 and the index
 * where it would be inserted. */
static int repo_search(const struct dcmf_repo *repo, const char *path,
                       size_t *at) {
  size_t lo = 0, hi = repo->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(repo->files[mid]->path, path);
    if (c == 0) {
      *at = mid;
      return 1;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  *at = lo;
  return 0;
}

static int etag_compute(char *etag, const uint8_t *data, size_t len) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  static const uint8_t empty[1] = {0};
  if (EVP_Digest(data != NULL ? data : empty, len, md, &mdlen, EVP_sha256(),
                 NULL) != 1 ||
      mdlen < 8) {
    return DCMF_ERR_NOMEM;
  }
  etag[0] = '"';
  for (size_t i = 0; i < 8; i++) {
    etag[1 + 2 * i] = hexdigits[md[i] >> 4];
    etag[2 + 2 * i] = hexdigits[md[i] & 15];
  }
  etag[DCMF_REPO_ETAG_LEN - 1] = '"';
  etag[DCMF_REPO_ETAG_LEN] = '\0';
  return 0;
}

static void file_free(struct repo_file *f) {
  if (f != NULL) {
    free(f->path);
    free(f->data);
    free(f);
  }
}

/* Stores |data| (malloc'ed or NULL, |len| bytes; ownership passes to the
 * repository on success only) under the canonical |path|. */
static int repo_insert(struct dcmf_repo *repo, const char *path,
                       uint8_t *data, size_t len) {
  size_t at;
  int exists = repo_search(repo, path, &at);
  size_t old_len = exists ? repo->files[at]->entry.len : 0;
  if (!exists && repo->count >= repo->settings.max_files) {
    return DCMF_ERR_TOO_LARGE;
  }
  if (len > repo->settings.max_total_bytes ||
      repo->total - old_len > repo->settings.max_total_bytes - len) {
    return DCMF_ERR_TOO_LARGE;
  }
  if (!exists && repo->count == repo->cap) {
    size_t cap = repo->cap ? repo->cap * 2 : 16;
    struct repo_file **files = realloc(repo->files, cap * sizeof(*files));
    if (files == NULL) {
      return DCMF_ERR_NOMEM;
    }
    repo->files = files;
    repo->cap = cap;
  }
  struct repo_file *f = calloc(1, sizeof(*f));
  if (f == NULL) {
    return DCMF_ERR_NOMEM;
  }
  f->path = strdup(path);
  if (f->path == NULL || etag_compute(f->etag, data, len) != 0) {
    free(f->path);
    free(f);
    return DCMF_ERR_NOMEM;
  }
  f->data = data;
  f->entry.bytes = data;
  f->entry.len = len;
  f->entry.content_type = dcmf_repo_content_type(path);
  f->entry.etag = f->etag;
  if (exists) {
    file_free(repo->files[at]);
    repo->files[at] = f;
  } else {
    memmove(repo->files + at + 1, repo->files + at,
            (repo->count - at) * sizeof(*repo->files));
    repo->files[at] = f;
    repo->count++;
  }
  repo->total = repo->total - old_len + len;
  return 0;
}

/* ---- public API ------------------------------------------------------- */

int dcmf_repo_new(struct dcmf_repo **out,
                  const struct dcmf_repo_settings *settings) {
  struct dcmf_repo *repo = calloc(1, sizeof(*repo));
  if (repo == NULL) {
    return DCMF_ERR_NOMEM;
  }
  if (settings != NULL) {
    repo->settings = *settings;
  }
  if (repo->settings.max_files == 0) {
    repo->settings.max_files = DEFAULT_MAX_FILES;
  }
  if (repo->settings.max_total_bytes == 0) {
    repo->settings.max_total_bytes = DEFAULT_MAX_TOTAL;
  }
  *out = repo;
  return 0;
}

void dcmf_repo_del(struct dcmf_repo *repo) {
  if (repo == NULL) {
    return;
  }
  for (size_t i = 0; i < repo->count; i++) {
    file_free(repo->files[i]);
  }
  free(repo->files);
  free(repo);
}

int dcmf_repo_add(struct dcmf_repo *repo, const char *path, const void *bytes,
                  size_t len) {
  if (path[0] == '/') {
    path++;
  }
  if (!path_canonical(path, strlen(path))) {
    return DCMF_ERR_INVALID;
  }
  uint8_t *data = NULL;
  if (len > 0) {
    data = malloc(len);
    if (data == NULL) {
      return DCMF_ERR_NOMEM;
    }
    memcpy(data, bytes, len);
  }
  int rc = repo_insert(repo, path, data, len);
  if (rc != 0) {
    free(data);
  }
  return rc;
}

int dcmf_repo_find(const struct dcmf_repo *repo, const char *path, size_t len,
                   const struct dcmf_repo_entry **entry) {
  char norm[DCMF_REPO_MAX_PATH + 1];
  size_t n, at;
  int dir;
  int rc = normalize(path, len, norm, sizeof(norm), &n, &dir);
  if (rc == DCMF_ERR_MALFORMED) {
    return rc;
  }
  if (rc != 0 || !repo_search(repo, norm, &at)) {
    return DCMF_ERR_NOT_FOUND; /* too long to be stored, or absent */
  }
  *entry = &repo->files[at]->entry;
  return 0;
}

const struct dcmf_repo_entry *dcmf_repo_lookup(const struct dcmf_repo *repo,
                                               const char *path) {
  const struct dcmf_repo_entry *e = NULL;
  return dcmf_repo_find(repo, path, strlen(path), &e) == 0 ? e : NULL;
}

int dcmf_repo_is_dir(const struct dcmf_repo *repo, const char *path,
                     size_t len) {
  char norm[DCMF_REPO_MAX_PATH + sizeof("/" INDEX_NAME)];
  size_t n, at;
  int dir;
  if (normalize(path, len, norm, DCMF_REPO_MAX_PATH + 1, &n, &dir) != 0 ||
      dir) {
    return 0;
  }
  memcpy(norm + n, "/" INDEX_NAME, sizeof("/" INDEX_NAME));
  return repo_search(repo, norm, &at);
}

size_t dcmf_repo_count(const struct dcmf_repo *repo) {
  return repo->count;
}

/* ---- loading a directory (the only I/O) ------------------------------- */

struct walk_level {
  DIR *dir;
  size_t prefix_len; /* bytes of walk.rel that name this directory + '/' */
};

struct walk {
  struct dcmf_repo *repo;
  const char *root;
  char *err;
  size_t errlen;
  char rel[DCMF_REPO_MAX_PATH + 2];
  struct walk_level stack[DCMF_REPO_MAX_DEPTH + 1];
  size_t depth;
};

__attribute__((format(printf, 2, 3))) static void
walk_error(struct walk *w, const char *fmt, ...) {
  if (w->err == NULL || w->errlen == 0) {
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->err, w->errlen, fmt, ap);
  va_end(ap);
}

/* Reads the regular file |name| in directory |dfd| into a new buffer.
 * Returns 0, 1 when it turned out not to be a regular file (skip it), or
 * a negative error. */
static int read_file_at(struct walk *w, int dfd, const char *name,
                        uint8_t **data, size_t *len) {
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
                                 O_NOCTTY);
  if (fd < 0) {
    walk_error(w, "%s/%s: cannot open: %s", w->root, w->rel, strerror(errno));
    return DCMF_ERR_SYSTEM;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) {
    close(fd);
    return 1;
  }
  size_t budget = w->repo->settings.max_total_bytes - w->repo->total;
  if ((unsigned long long)st.st_size > budget) {
    close(fd);
    walk_error(w, "%s/%s: repository exceeds %zu bytes", w->root, w->rel,
               w->repo->settings.max_total_bytes);
    return DCMF_ERR_TOO_LARGE;
  }
  size_t size = (size_t)st.st_size, got = 0;
  uint8_t *buf = size > 0 ? malloc(size) : NULL;
  if (size > 0 && buf == NULL) {
    close(fd);
    return DCMF_ERR_NOMEM;
  }
  while (got < size) {
    ssize_t n = read(fd, buf + got, size - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      walk_error(w, "%s/%s: read failed: %s", w->root, w->rel,
                 strerror(errno));
      free(buf);
      close(fd);
      return DCMF_ERR_SYSTEM;
    }
    if (n == 0) {
      break; /* the file shrank while we read it: keep what we got */
    }
    got += (size_t)n;
  }
  close(fd);
  if (got == 0) {
    free(buf);
    buf = NULL;
  }
  *data = buf;
  *len = got;
  return 0;
}

/* Handles one directory entry |name| of the directory on top of the
 * stack: descends into directories, loads regular files. */
static int walk_entry(struct walk *w, const char *name) {
  struct walk_level *top = &w->stack[w->depth - 1];
  size_t nlen = strlen(name);
  if (!name_ok(name, nlen)) {
    return 0;
  }
  if (top->prefix_len + nlen > DCMF_REPO_MAX_PATH) {
    walk_error(w, "%s/%.*s%s: path longer than %d bytes", w->root,
               (int)top->prefix_len, w->rel, name, DCMF_REPO_MAX_PATH);
    return DCMF_ERR_TOO_LARGE;
  }
  memcpy(w->rel + top->prefix_len, name, nlen + 1);
  int dfd = dirfd(top->dir);
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    walk_error(w, "%s/%s: cannot stat: %s", w->root, w->rel, strerror(errno));
    return DCMF_ERR_SYSTEM;
  }
  if (S_ISDIR(st.st_mode)) {
    if (w->depth > DCMF_REPO_MAX_DEPTH) {
      walk_error(w, "%s/%s: nested deeper than %d directories", w->root,
                 w->rel, DCMF_REPO_MAX_DEPTH);
      return DCMF_ERR_TOO_LARGE;
    }
    int fd = openat(dfd, name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
      walk_error(w, "%s/%s: cannot open directory: %s", w->root, w->rel,
                 strerror(errno));
      if (fd >= 0) {
        close(fd);
      }
      return DCMF_ERR_SYSTEM;
    }
    w->rel[top->prefix_len + nlen] = '/';
    w->stack[w->depth].dir = d;
    w->stack[w->depth].prefix_len = top->prefix_len + nlen + 1;
    w->depth++;
    return 0;
  }
  if (!S_ISREG(st.st_mode)) {
    return 0; /* symbolic link, socket, FIFO, device: never served */
  }
  if (w->repo->count >= w->repo->settings.max_files) {
    walk_error(w, "%s/%s: more than %zu files", w->root, w->rel,
               w->repo->settings.max_files);
    return DCMF_ERR_TOO_LARGE;
  }
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = read_file_at(w, dfd, name, &data, &len);
  if (rc != 0) {
    return rc > 0 ? 0 : rc;
  }
  rc = repo_insert(w->repo, w->rel, data, len);
  if (rc != 0) {
    free(data);
    walk_error(w, "%s/%s: cannot add: %s", w->root, w->rel,
               dcmf_strerror(rc));
  }
  return rc;
}

int dcmf_repo_open(struct dcmf_repo **out, const char *dir,
                   const struct dcmf_repo_settings *settings, char *err,
                   size_t errlen) {
  struct walk *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    return DCMF_ERR_NOMEM;
  }
  w->root = dir;
  w->err = err;
  w->errlen = errlen;
  int rc = dcmf_repo_new(&w->repo, settings);
  if (rc != 0) {
    goto fail_repo;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    walk_error(w, "%s: cannot open directory: %s", dir, strerror(errno));
    if (fd >= 0) {
      close(fd);
    }
    rc = DCMF_ERR_SYSTEM;
    goto fail_open;
  }
  w->stack[0].dir = d;
  w->stack[0].prefix_len = 0;
  w->depth = 1;
  while (w->depth > 0 && rc == 0) {
    struct walk_level *top = &w->stack[w->depth - 1];
    errno = 0;
    struct dirent *e = readdir(top->dir);
    if (e == NULL) {
      if (errno != 0) {
        w->rel[top->prefix_len] = '\0';
        walk_error(w, "%s/%s: cannot list: %s", dir, w->rel, strerror(errno));
        rc = DCMF_ERR_SYSTEM;
        break;
      }
      closedir(top->dir);
      w->depth--;
      continue;
    }
    rc = walk_entry(w, e->d_name);
  }
  if (rc != 0) {
    goto fail_walk;
  }
  *out = w->repo;
  free(w);
  return 0;

fail_walk:
  while (w->depth > 0) {
    closedir(w->stack[--w->depth].dir);
  }
fail_open:
  dcmf_repo_del(w->repo);
fail_repo:
  free(w);
  return rc;
}
