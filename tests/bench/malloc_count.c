/*
 * Counts the malloc, calloc and realloc calls of a process, for the
 * "allocations per message" figure of docs/benchmarks.md. Preloaded into
 * dcmfd (its worker processes inherit it); each process writes
 * "<mallocs> <callocs> <reallocs>" to /tmp/dcmf-malloc-count.<pid> when
 * it exits normally. Run a benchmark twice with different message
 * counts and divide the difference by the difference of messages, so
 * that start-up and set-up cancel out.
 *
 *   gcc -O2 -shared -fPIC -o /tmp/malloc_count.so tests/bench/malloc_count.c
 *   LD_PRELOAD=/tmp/malloc_count.so build-release/dcmf/dcmfd ...
 *
 * glibc's own entry points do the work; nothing else is changed.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

static atomic_ulong mallocs, callocs, reallocs;

void *malloc(size_t size) {
  atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
  return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
  atomic_fetch_add_explicit(&callocs, 1, memory_order_relaxed);
  return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
  atomic_fetch_add_explicit(&reallocs, 1, memory_order_relaxed);
  return __libc_realloc(p, size);
}

__attribute__((destructor)) static void report(void) {
  char path[64];
  snprintf(path, sizeof(path), "/tmp/dcmf-malloc-count.%d", (int)getpid());
  FILE *f = fopen(path, "w");
  if (f != NULL) {
    fprintf(f, "%lu %lu %lu\n", atomic_load(&mallocs), atomic_load(&callocs),
            atomic_load(&reallocs));
    fclose(f);
  }
}
