/*
 * urlmap_int.h - the character helpers that urlmap.c (URLs and the
 * replacement rule) and urlmap_headers.c (the header mapping) share.
 * Not a public header: only those files include it.
 */
#ifndef DCMF_URLMAP_INT_H
#define DCMF_URLMAP_INT_H

#include <stddef.h>

/* ASCII lower case of |c|; other bytes unchanged. */
unsigned char urlmap_lower(unsigned char c);

/* RFC 9110 tchar. */
int urlmap_is_tchar(unsigned char c);

/* Case-insensitive comparison of |a| (|alen| bytes) with the C string
 * |b|: 1 if equal. */
int urlmap_ieq(const char *a, size_t alen, const char *b);

/* Case-insensitive: does |a| (|alen| bytes) start with the C string
 * |prefix|? */
int urlmap_istarts(const char *a, size_t alen, const char *prefix);

#endif
