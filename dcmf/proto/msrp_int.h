/*
 * msrp_int.h - what the MSRP engine's files share: msrp.c (the scan,
 * the parser and the framer), msrp_uri.c (URIs and paths) and
 * msrp_write.c (the serializer, builders, path rewriter, re-chunker).
 * Internal: nothing outside those files includes it.
 */
#ifndef DCMF_MSRP_INT_H
#define DCMF_MSRP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "msrp.h"

/* Character classes of RFC 4975 §9 and RFC 3986 §2. */
static inline int is_alpha(int ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static inline int is_digit(int ch) {
  return ch >= '0' && ch <= '9';
}

static inline int is_alnum(int ch) {
  return is_alpha(ch) || is_digit(ch);
}

static inline int is_ident_char(int ch) {
  return is_alnum(ch) || ch == '.' || ch == '-' || ch == '+' || ch == '%' ||
         ch == '=';
}

/* token = 1*(%x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A /
 * %x5E-7E) */
static inline int is_token_char(int ch) {
  return ch == 0x21 || (ch >= 0x23 && ch <= 0x27) || ch == 0x2A ||
         ch == 0x2B || ch == 0x2D || ch == 0x2E || is_digit(ch) ||
         (ch >= 0x41 && ch <= 0x5A) || (ch >= 0x5E && ch <= 0x7E);
}

static inline int is_unreserved(int ch) {
  return is_alnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* utf8text: HTAB, printable ASCII, and bytes of multi-byte UTF-8
 * characters (taken as they are, not decoded). */
static inline int is_text_byte(int ch) {
  return ch == '\t' || (ch >= 0x20 && ch <= 0x7E) || ch >= 0x80;
}

static inline int tolower_ascii(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* |s| equals the NUL-terminated |lit| without case. */
static inline struct dcmf_msrp_str mkstr(const char *p, size_t len) {
  struct dcmf_msrp_str s = {p, len};
  return s;
}

static inline struct dcmf_msrp_str cstr(const char *p) {
  return mkstr(p, p != NULL ? strlen(p) : 0);
}

/* |s| equals the NUL-terminated |lit| without case. */
int msrp_str_ieq(struct dcmf_msrp_str s, const char *lit);

/* RFC 4975 ident: an ALPHANUM and 3 to 31 of ALPHANUM . - + % = */
int msrp_valid_ident(const char *p, size_t len);

/* 1 to 19 digits (which always fit 64 bits) into |*v|; 1 if so. */
int msrp_parse_u64(const char *p, size_t len, uint64_t *v);

/* A path value: MSRP-URI *(SP MSRP-URI); 1 if so. */
int msrp_valid_path(struct dcmf_msrp_str v);

#endif
