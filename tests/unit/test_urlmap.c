/*
 * test_urlmap.c - unit tests for URL parsing, the root-URL replacement
 * rule and proxy header filtering (dcmf/net/urlmap.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "errors.h"
#include "urlmap.h"

/* ---- helpers ---------------------------------------------------------- */

/* Resolves the C string |target| against |base| and checks the result. */
static void check_map(const char *base, const char *target,
                      const char *expected) {
  char out[4096];
  memset(out, 'x', sizeof(out));
  int rc = dcmf_urlmap_resolve(base, target, strlen(target), out, sizeof(out));
  if (rc != 0) {
    print_error("resolve(%s, %s) = %d\n", base, target, rc);
  }
  assert_int_equal(rc, 0);
  assert_string_equal(out, expected);
}

/* Checks that resolving |target| (|len| bytes) fails with |err|. */
static void check_err_n(const char *base, const char *target, size_t len,
                        int err) {
  char out[4096];
  memset(out, 'x', sizeof(out));
  int rc = dcmf_urlmap_resolve(base, target, len, out, sizeof(out));
  if (rc != err) {
    print_error("resolve(%s, %.*s) = %d, out %s\n", base, (int)len, target, rc,
                rc == 0 ? out : "");
  }
  assert_int_equal(rc, err);
  assert_string_equal(out, "");
}

static void check_err(const char *base, const char *target, int err) {
  check_err_n(base, target, strlen(target), err);
}

#define B_FILE "https://dcsf/apps/list?sess=abc"
#define B_DIR "https://dcsf/apps/"

/* ---- the replacement rule --------------------------------------------- */

static void test_base_as_file(void **state) {
  (void)state;
  /* "/" is the base itself, query included. */
  check_map(B_FILE, "/", B_FILE);
  /* Anything else resolves in the base's directory (RFC 3986 5.2.3) and
   * carries the base's query first. */
  check_map(B_FILE, "/x.js", "https://dcsf/apps/x.js?sess=abc");
  check_map(B_FILE, "/sub/y.css", "https://dcsf/apps/sub/y.css?sess=abc");
  check_map(B_FILE, "/list", "https://dcsf/apps/list?sess=abc");
  check_map(B_FILE, "/list/", "https://dcsf/apps/list/?sess=abc");
  check_map("https://dcsf/apps/list", "/x.js", "https://dcsf/apps/x.js");
  check_map("https://dcsf/apps/list", "/", "https://dcsf/apps/list");
  check_map("https://dcsf/index.html", "/img/a.png", "https://dcsf/img/a.png");
}

static void test_base_as_dir(void **state) {
  (void)state;
  check_map(B_DIR, "/", B_DIR);
  check_map(B_DIR, "/index.html", "https://dcsf/apps/index.html");
  check_map(B_DIR, "/a/b/c.js", "https://dcsf/apps/a/b/c.js");
  check_map("http://dcsf", "/", "http://dcsf/");
  check_map("http://dcsf", "/x", "http://dcsf/x");
  check_map("http://dcsf/", "/x/", "http://dcsf/x/");
}

static void test_queries(void **state) {
  (void)state;
  check_map(B_FILE, "/x.js?v=2", "https://dcsf/apps/x.js?sess=abc&v=2");
  check_map(B_FILE, "/?lang=en", "https://dcsf/apps/list?sess=abc&lang=en");
  check_map(B_FILE, "/x?", "https://dcsf/apps/x?sess=abc");
  check_map(B_FILE, "/x?session=1", "https://dcsf/apps/x?sess=abc&session=1");
  check_map(B_DIR, "/x?a=1&b=%2F", "https://dcsf/apps/x?a=1&b=%2F");
  check_map(B_DIR, "/x?", "https://dcsf/apps/x?");
  check_map(B_DIR, "/?q", "https://dcsf/apps/?q");
  /* An empty base query is kept as written at "/". */
  check_map("https://dcsf/apps/?", "/", "https://dcsf/apps/?");
  check_map("https://dcsf/apps/?", "/x", "https://dcsf/apps/x?");
  check_map("https://dcsf/apps/?", "/x?y=1", "https://dcsf/apps/x?y=1");
  /* Encodings in the query stay as they are, %2F and '/' included. */
  check_map(B_DIR, "/go?to=https%3A%2F%2Fx/y%20z",
            "https://dcsf/apps/go?to=https%3A%2F%2Fx/y%20z");
  /* The phone cannot override or repeat a base parameter. */
  check_err(B_FILE, "/?sess=evil", DCMF_ERR_INVALID);
  check_err(B_FILE, "/x?sess=evil", DCMF_ERR_INVALID);
  check_err(B_FILE, "/x?a=1&SESS=evil", DCMF_ERR_INVALID);
  check_err(B_FILE, "/x?s%65ss=evil", DCMF_ERR_INVALID);
  check_err(B_FILE, "/x?S%45SS=evil", DCMF_ERR_INVALID);
  check_err(B_FILE, "/x?a=1;sess=2", DCMF_ERR_INVALID);
  check_err(B_FILE, "/x?sess", DCMF_ERR_INVALID);
  check_err("https://dcsf/?a=1&b+c=2", "/x?b%20c=3", DCMF_ERR_INVALID);
  check_map("https://dcsf/?a=1&b=2", "/x?c=3&=4&&",
            "https://dcsf/x?a=1&b=2&c=3&=4&&");
  check_map("https://dcsf/?a=1", "/x?aa=1&b=a", "https://dcsf/x?a=1&aa=1&b=a");
}

static void test_dot_segments(void **state) {
  (void)state;
  check_map(B_DIR, "/a/b/../c.js", "https://dcsf/apps/a/c.js");
  check_map(B_DIR, "/a/./b", "https://dcsf/apps/a/b");
  check_map(B_DIR, "/./x", "https://dcsf/apps/x");
  check_map(B_DIR, "/a/b/..", "https://dcsf/apps/a/");
  check_map(B_DIR, "/a/b/.", "https://dcsf/apps/a/b/");
  /* Normalising to "/" gives the base itself. */
  check_map(B_FILE, "/a/..", B_FILE);
  check_map(B_FILE, "/.", B_FILE);
  check_map(B_FILE, "/a/../?x=1", "https://dcsf/apps/list?sess=abc&x=1");
  /* Empty segments are kept. */
  check_map(B_DIR, "/a//b", "https://dcsf/apps/a//b");
  check_map(B_DIR, "/a//../b", "https://dcsf/apps/a/b");
  /* Names with dots are not dot segments. */
  check_map(B_DIR, "/...", "https://dcsf/apps/...");
  check_map(B_DIR, "/..x/.y", "https://dcsf/apps/..x/.y");
  /* Never above the base's directory. */
  check_err(B_DIR, "/..", DCMF_ERR_INVALID);
  check_err(B_DIR, "/../x", DCMF_ERR_INVALID);
  check_err(B_FILE, "/../list", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a/../../x", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a/b/../../../apps/x", DCMF_ERR_INVALID);
  check_err(B_DIR, "http://any/../x", DCMF_ERR_INVALID);
}

static void test_encodings(void **state) {
  (void)state;
  /* Encoded dot segments are refused. */
  check_err(B_DIR, "/%2e%2e/x", DCMF_ERR_INVALID);
  check_err(B_DIR, "/%2E%2E/x", DCMF_ERR_INVALID);
  check_err(B_DIR, "/.%2e/x", DCMF_ERR_INVALID);
  check_err(B_DIR, "/%2e./x", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a/%2e/b", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a/%2E", DCMF_ERR_INVALID);
  /* Encoded slash, backslash and control characters in the path. */
  check_err(B_DIR, "/a%2Fb", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a%2fb", DCMF_ERR_INVALID);
  check_err(B_DIR, "/..%2F..%2Fetc", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a%5cb", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a%5Cb", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a%00b", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a%0d%0ab", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a%7F", DCMF_ERR_INVALID);
  /* Bad triplets. */
  check_err(B_DIR, "/a%zz", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a%2", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a%", DCMF_ERR_INVALID);
  check_err(B_DIR, "/x?a=%g1", DCMF_ERR_INVALID);
  /* Everything else is kept exactly, never decoded or re-encoded. */
  check_map(B_DIR, "/a%2ejs", "https://dcsf/apps/a%2ejs");
  check_map(B_DIR, "/%2e%2ex", "https://dcsf/apps/%2e%2ex");
  check_map(B_DIR, "/a%20b%41%c3%a9", "https://dcsf/apps/a%20b%41%c3%a9");
  check_map(B_DIR, "/a%2B+b", "https://dcsf/apps/a%2B+b");
}

static void test_bad_characters(void **state) {
  (void)state;
  check_err(B_DIR, "/a\\b", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a b", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a\tb", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a\r\nb", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a\x7f", DCMF_ERR_INVALID);
  check_err(B_DIR, "/\xc3\xa9", DCMF_ERR_INVALID);
  check_err(B_DIR, "/a#frag", DCMF_ERR_INVALID);
  check_err(B_DIR, "/x?a=b c", DCMF_ERR_INVALID);
  check_err(B_DIR, "/x?a\\b", DCMF_ERR_INVALID);
  check_err_n(B_DIR, "/a\0b", 4, DCMF_ERR_INVALID);
  check_err_n(B_DIR, "/", 2, DCMF_ERR_INVALID); /* trailing NUL */
  check_err_n(B_DIR, "", 0, DCMF_ERR_INVALID);
  check_err_n(B_DIR, NULL, 0, DCMF_ERR_INVALID);
  check_err(B_DIR, "*", DCMF_ERR_INVALID);
  check_err(B_DIR, "a/b", DCMF_ERR_INVALID);
  check_err(B_DIR, "dcsf:443", DCMF_ERR_INVALID);
  check_err(B_DIR, "ftp://x/y", DCMF_ERR_INVALID);
  check_err(B_DIR, "http:/x", DCMF_ERR_INVALID);
  /* Raw characters browsers leave unencoded in queries are forwarded. */
  check_map(B_DIR, "/x?a={1}|^`\"", "https://dcsf/apps/x?a={1}|^`\"");
}

static void test_absolute_form(void **state) {
  (void)state;
  check_map(B_FILE, "http://anything/x.js?q=1",
            "https://dcsf/apps/x.js?sess=abc&q=1");
  check_map(B_DIR, "HTTPS://Evil.example:99/x", "https://dcsf/apps/x");
  check_map(B_DIR, "http://u@evil/x", "https://dcsf/apps/x");
  check_map(B_FILE, "http://any", B_FILE);
  check_map(B_FILE, "http://any/", B_FILE);
  check_map(B_DIR, "http://any?z=1", "https://dcsf/apps/?z=1");
  check_map(B_DIR, "http:///x", "https://dcsf/apps/x");
  check_map(B_DIR, "http://[::1]:8/a", "https://dcsf/apps/a");
}

static void test_hosts_and_ports(void **state) {
  (void)state;
  check_map("https://DCSF.Example:443/Apps/", "/X.js",
            "https://dcsf.example/Apps/X.js");
  check_map("HTTP://dcsf:80/a", "/", "http://dcsf/a");
  check_map("http://dcsf:8080/a", "/b", "http://dcsf:8080/b");
  check_map("http://dcsf:443/", "/", "http://dcsf:443/");
  check_map("https://dcsf:80/", "/", "https://dcsf:80/");
  check_map("https://[2001:DB8::1]:8443/apps/list", "/x",
            "https://[2001:db8::1]:8443/apps/x");
  check_map("http://[::1]:80/", "/", "http://[::1]/");
  check_map("https://[::ffff:192.0.2.1]/", "/a",
            "https://[::ffff:192.0.2.1]/a");
  check_map("http://192.0.2.7:9000/r/", "/s", "http://192.0.2.7:9000/r/s");
  check_map("https://dcsf/apps/list#top", "/", "https://dcsf/apps/list");
  check_map("https://dcsf?x=1", "/", "https://dcsf/?x=1");
}

static void test_bad_base(void **state) {
  (void)state;
  check_err("ftp://dcsf/", "/", DCMF_ERR_MALFORMED);
  check_err("", "/", DCMF_ERR_MALFORMED);
  check_err("https://u@dcsf/", "/", DCMF_ERR_MALFORMED);
  check_err("https://dcsf/a/../b", "/", DCMF_ERR_MALFORMED);
  check_err("https://dcsf/a/./", "/x", DCMF_ERR_MALFORMED);
  check_err("https://dcsf/a/%2E/", "/x", DCMF_ERR_MALFORMED);
  check_err("https://dcsf/..?x", "/", DCMF_ERR_MALFORMED);
  check_err("https://dcsf/a b", "/", DCMF_ERR_MALFORMED);
  char out[64];
  assert_int_equal(dcmf_urlmap_resolve(NULL, "/", 1, out, sizeof(out)),
                   DCMF_ERR_MALFORMED);
  /* A base host of 256 bytes is also a base problem, not a 414. */
  char base[300] = "http://";
  memset(base + 7, 'h', 256);
  base[263] = '\0';
  check_err(base, "/", DCMF_ERR_MALFORMED);
}

static void test_too_large(void **state) {
  (void)state;
  const char *want = "https://dcsf/apps/x.js?sess=abc";
  size_t n = strlen(want);
  char out[64];
  assert_int_equal(dcmf_urlmap_resolve(B_FILE, "/x.js", 5, out, n + 1), 0);
  assert_string_equal(out, want);
  memset(out, 'x', sizeof(out));
  assert_int_equal(dcmf_urlmap_resolve(B_FILE, "/x.js", 5, out, n),
                   DCMF_ERR_TOO_LARGE);
  assert_string_equal(out, "");
  assert_int_equal(dcmf_urlmap_resolve(B_FILE, "/x.js", 5, out, 1),
                   DCMF_ERR_TOO_LARGE);
  assert_int_equal(dcmf_urlmap_resolve(B_FILE, "/x.js", 5, NULL, 0),
                   DCMF_ERR_TOO_LARGE);

  /* The path-plus-query limit (2047 bytes) applies whatever |cap| is. */
  static char target[4000];
  static char big[8192];
  target[0] = '/';
  memset(target + 1, 'a', sizeof(target) - 1);
  check_err_n(B_DIR, target, sizeof(target), DCMF_ERR_TOO_LARGE);
  /* "/apps/" + 2041 bytes = 2047: fits exactly; one more does not. */
  assert_int_equal(dcmf_urlmap_resolve(B_DIR, target, 2042, big, sizeof(big)),
                   0);
  assert_int_equal(strlen(big), strlen("https://dcsf") + 2047);
  assert_int_equal(dcmf_urlmap_resolve(B_DIR, target, 2043, big, sizeof(big)),
                   DCMF_ERR_TOO_LARGE);
  /* A long query overflows too. */
  memcpy(target, "/x?", 3);
  check_err_n(B_FILE, target, 2100, DCMF_ERR_TOO_LARGE);
}

static void test_resolve_url(void **state) {
  (void)state;
  struct dcmf_url base, out;
  assert_int_equal(dcmf_url_parse("https://[2001:db8::5]:8443/a/b?k=v", &base),
                   0);
  memset(&out, 0x55, sizeof(out));
  const char t[] = "/c/d.js?x=1";
  assert_int_equal(dcmf_urlmap_resolve_url(&base, t, sizeof(t) - 1, &out), 0);
  assert_int_equal(out.https, 1);
  assert_int_equal(out.port, 8443);
  assert_string_equal(out.host, "2001:db8::5");
  assert_string_equal(out.authority, "[2001:db8::5]:8443");
  assert_string_equal(out.path, "/a/c/d.js?k=v&x=1");
  /* Failure leaves |out| alone; |out| may be |base|. */
  assert_int_equal(dcmf_urlmap_resolve_url(&base, "/..", 3, &out),
                   DCMF_ERR_INVALID);
  assert_string_equal(out.path, "/a/c/d.js?k=v&x=1");
  assert_int_equal(dcmf_urlmap_resolve_url(&base, "/", 1, &base), 0);
  assert_string_equal(base.path, "/a/b?k=v");
  assert_int_equal(dcmf_urlmap_resolve_url(&base, "/z", 2, &base), 0);
  assert_string_equal(base.path, "/a/z?k=v");
  assert_string_equal(base.authority, "[2001:db8::5]:8443");
}

/* ---- dcmf_url_parse --------------------------------------------------- */

static void check_parse(const char *text, int https, const char *host,
                        unsigned port, const char *path,
                        const char *authority) {
  struct dcmf_url u;
  memset(&u, 0x55, sizeof(u));
  int rc = dcmf_url_parse(text, &u);
  if (rc != 0) {
    print_error("parse(%s) = %d\n", text, rc);
  }
  assert_int_equal(rc, 0);
  assert_int_equal(u.https, https);
  assert_string_equal(u.host, host);
  assert_int_equal(u.port, port);
  assert_string_equal(u.path, path);
  assert_string_equal(u.authority, authority);
}

static void test_parse_good(void **state) {
  (void)state;
  check_parse("http://a", 0, "a", 80, "/", "a");
  check_parse("HTTPS://A.Example:8443/P?Q#F", 1, "a.example", 8443, "/P?Q",
              "a.example:8443");
  check_parse("https://h:443", 1, "h", 443, "/", "h");
  check_parse("http://h:443", 0, "h", 443, "/", "h:443");
  check_parse("http://h:080/", 0, "h", 80, "/", "h");
  check_parse("http://h?x", 0, "h", 80, "/?x", "h");
  check_parse("http://h#x", 0, "h", 80, "/", "h");
  check_parse("http://h/#", 0, "h", 80, "/", "h");
  check_parse("http://1.2.3.4:65535/%41%2f", 0, "1.2.3.4", 65535, "/%41%2f",
              "1.2.3.4:65535");
  check_parse("http://[::FFFF:1.2.3.4]/", 0, "::ffff:1.2.3.4", 80, "/",
              "[::ffff:1.2.3.4]");
  check_parse("https://[::1]:443/x", 1, "::1", 443, "/x", "[::1]");
  check_parse("http://[::]:1", 0, "::", 1, "/", "[::]:1");
  check_parse("http://[1:2:3:4:5:6:7:8]/", 0, "1:2:3:4:5:6:7:8", 80, "/",
              "[1:2:3:4:5:6:7:8]");
  check_parse("http://[1:2:3:4:5:6:7::]/", 0, "1:2:3:4:5:6:7::", 80, "/",
              "[1:2:3:4:5:6:7::]");
  check_parse("http://[1:2:3:4:5:6:1.2.3.4]/", 0, "1:2:3:4:5:6:1.2.3.4", 80,
              "/", "[1:2:3:4:5:6:1.2.3.4]");
  check_parse("http://a-b_c~d.e/~u/a:b@c!$&'()*+,;=", 0, "a-b_c~d.e", 80,
              "/~u/a:b@c!$&'()*+,;=", "a-b_c~d.e");

  /* Longest host and path. */
  char text[2400] = "http://";
  memset(text + 7, 'h', 255);
  text[262] = '\0';
  struct dcmf_url u;
  assert_int_equal(dcmf_url_parse(text, &u), 0);
  assert_int_equal(strlen(u.host), 255);
  assert_int_equal(strlen(u.authority), 255);
  text[262] = '/';
  memset(text + 263, 'p', 2046);
  text[263 + 2046] = '\0';
  assert_int_equal(dcmf_url_parse(text, &u), 0);
  assert_int_equal(strlen(u.path), 2047);
}

static void test_parse_bad(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "http",
      "http:/a",
      "http:a",
      "http://",
      "http:///x",
      "http://:80/",
      "http://u:p@h/",
      "http://@h/",
      "http://h:/",
      "http://h:0",
      "http://h:65536",
      "http://h:123456",
      "http://h:8a",
      "http://h:-1",
      "http://h:1:2",
      "http://[::1",
      "http://[::1]x/",
      "http://[::1]:/",
      "http://[1:2]/",
      "http://[1::2::3]/",
      "http://[12345::]/",
      "http://[:1::]/",
      "http://[1:]/",
      "http://[:::]/",
      "http://[1:2:3:4:5:6:7:8:9]/",
      "http://[1:2:3:4:5:6:7::8]/",
      "http://[::1:2:3:4:5:6:7:8]/",
      "http://[1:2:3:4:5:6::1.2.3.4]/",
      "http://[1:2:3:4:5:6:7:1.2.3.4]/",
      "http://[::1.2.3.256]/",
      "http://[::1.2.03.4]/",
      "http://[::1.2.3]/",
      "http://[fe80::1%25eth0]/",
      "http://[v1.x]/",
      "http://[]/",
      "http://h h/",
      "http://h\t/",
      "http://h/a b",
      "http://h/a\\b",
      "http://h/%zz",
      "http://h/%4",
      "http://h/\x01",
      "http://h/\xc3\xa9",
      "http://ho%41st/",
      "http://h!/",
      "mailto:x@y",
      "//h/x",
      "ws://h/",
  };
  struct dcmf_url u;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = dcmf_url_parse(bad[i], &u);
    if (rc != DCMF_ERR_MALFORMED) {
      print_error("parse(%s) = %d\n", bad[i], rc);
    }
    assert_int_equal(rc, DCMF_ERR_MALFORMED);
  }
  assert_int_equal(dcmf_url_parse(NULL, &u), DCMF_ERR_MALFORMED);

  char text[2400] = "http://";
  memset(text + 7, 'h', 256);
  text[263] = '\0';
  assert_int_equal(dcmf_url_parse(text, &u), DCMF_ERR_TOO_LARGE);
  text[8] = '\0';
  text[7] = '/';
  memcpy(text, "http://h/", 9);
  memset(text + 9, 'p', 2047);
  text[9 + 2047] = '\0';
  assert_int_equal(dcmf_url_parse(text, &u), DCMF_ERR_TOO_LARGE);
  /* A '?' right after the authority gets a '/' that counts too. */
  memcpy(text, "http://h?", 9);
  memset(text + 9, 'q', 2046);
  text[9 + 2046] = '\0';
  assert_int_equal(dcmf_url_parse(text, &u), DCMF_ERR_TOO_LARGE);
  text[9 + 2045] = '\0';
  assert_int_equal(dcmf_url_parse(text, &u), 0);
  assert_int_equal(strlen(u.path), 2047);
}

static void test_format(void **state) {
  (void)state;
  struct dcmf_url u;
  char out[64];
  assert_int_equal(dcmf_url_parse("HTTPS://[::1]:443/a?b#c", &u), 0);
  assert_int_equal(dcmf_url_format(&u, out, sizeof(out)), 0);
  assert_string_equal(out, "https://[::1]/a?b");
  assert_int_equal(dcmf_url_format(&u, out, strlen("https://[::1]/a?b") + 1),
                   0);
  assert_int_equal(dcmf_url_format(&u, out, strlen("https://[::1]/a?b")),
                   DCMF_ERR_TOO_LARGE);
  assert_string_equal(out, "");
  assert_int_equal(dcmf_url_format(&u, out, 0), DCMF_ERR_TOO_LARGE);
}

/* ---- headers ---------------------------------------------------------- */

#define H(n, v)                                                                \
  { n, sizeof(n) - 1, v, sizeof(v) - 1 }

static const struct dcmf_urlmap_request_info info = {
    .authority = "dcsf.example:8443",
    .context_id = "ctx-1",
    .termination_id = "term-2",
    .media_id = "media-3",
    .stream_id = "10",
    .received = DCMF_URLMAP_HTTP_1_1,
};

/* Counts the fields of |h| named |name| (any case). */
static size_t count_named(const struct dcmf_urlmap_header *h, size_t n,
                          const char *name) {
  size_t c = 0;
  size_t len = strlen(name);
  for (size_t i = 0; i < n; i++) {
    if (h[i].name_len == len && strncasecmp(h[i].name, name, len) == 0) {
      c++;
    }
  }
  return c;
}

/* Checks that field |i| of |h| is exactly |name|: |value|. */
static void check_field(const struct dcmf_urlmap_header *h, size_t i,
                        const char *name, const char *value) {
  assert_int_equal(h[i].name_len, strlen(name));
  assert_memory_equal(h[i].name, name, strlen(name));
  assert_int_equal(h[i].value_len, strlen(value));
  assert_memory_equal(h[i].value, value, strlen(value));
}

static void test_request_headers(void **state) {
  (void)state;
  const struct dcmf_urlmap_header in[] = {
      H("Host", ""),
      H("Accept", "*/*"),
      H("Connection", "keep-alive, Foo"),
      H("foo", "bar"),
      H("Keep-Alive", "timeout=5"),
      H("TE", "trailers"),
      H("Trailer", "X"),
      H("Transfer-Encoding", "chunked"),
      H("Upgrade", "h2c"),
      H("Proxy-Connection", "keep-alive"),
      H("Proxy-Authorization", "Basic eA=="),
      H("x-dcmf-context-id", "forged"),
      H("X-DCMF-Stream-Id", "0"),
      H("X-Dcmf-Other", "x"),
      H("Content-Length", "0"),
      H("Expect", "100-continue"),
      H("User-Agent", "phone"),
      H("Via", "1.1 phoneproxy"),
      H("Cookie", "a=b"),
      H("X-DCMFish", "kept"),
  };
  size_t n_in = sizeof(in) / sizeof(in[0]);
  struct dcmf_urlmap_header out[32];
  size_t n = 99;
  assert_int_equal(dcmf_urlmap_request_headers(in, n_in, &info, out, 32, &n),
                   0);
  assert_int_equal(n, 11);
  check_field(out, 0, "Host", "dcsf.example:8443");
  check_field(out, 1, "Accept", "*/*");
  check_field(out, 2, "User-Agent", "phone");
  check_field(out, 3, "Via", "1.1 phoneproxy");
  check_field(out, 4, "Cookie", "a=b");
  check_field(out, 5, "X-DCMFish", "kept");
  check_field(out, 6, "Via", "1.1 dcmf");
  check_field(out, 7, "X-DCMF-Context-Id", "ctx-1");
  check_field(out, 8, "X-DCMF-Termination-Id", "term-2");
  check_field(out, 9, "X-DCMF-Media-Id", "media-3");
  check_field(out, 10, "X-DCMF-Stream-Id", "10");
  assert_int_equal(count_named(out, n, "Host"), 1);
  assert_int_equal(count_named(out, n, "X-DCMF-Context-Id"), 1);
  assert_int_equal(count_named(out, n, "X-DCMF-Stream-Id"), 1);
  assert_int_equal(count_named(out, n, "X-DCMF-Other"), 0);
  assert_int_equal(count_named(out, n, "foo"), 0);
  assert_int_equal(count_named(out, n, "Content-Length"), 0);
}

static void test_request_connection_names(void **state) {
  (void)state;
  /* Connection names are matched in any case, over every Connection
   * field, with optional white space and empty list elements. */
  const struct dcmf_urlmap_header in[] = {
      H("CONNECTION", "FOO"),
      H("Foo", "1"),
      H("fOO", "2"),
      H("connection", " , bar ,\tBaz,, "),
      H("BAR", "3"),
      H("baz", "4"),
      H("bazz", "kept"),
      H("Cookie", "c"),
      H("Connection", "cookie"),
      H("hOsT", "ignored"),
      H("Accept", "a"),
  };
  size_t n_in = sizeof(in) / sizeof(in[0]);
  struct dcmf_urlmap_header out[32];
  size_t n;
  assert_int_equal(dcmf_urlmap_request_headers(in, n_in, &info, out, 32, &n),
                   0);
  assert_int_equal(n, 8);
  check_field(out, 0, "Host", "dcsf.example:8443");
  check_field(out, 1, "bazz", "kept");
  check_field(out, 2, "Accept", "a");
  check_field(out, 3, "Via", "1.1 dcmf");
  assert_int_equal(count_named(out, n, "foo"), 0);
  assert_int_equal(count_named(out, n, "cookie"), 0);

  /* Connection naming one of our own fields does not remove ours. */
  const struct dcmf_urlmap_header in2[] = {
      H("Connection", "Via, X-DCMF-Media-Id, Host"),
      H("Via", "1.0 spoof"),
  };
  assert_int_equal(dcmf_urlmap_request_headers(in2, 2, &info, out, 32, &n), 0);
  assert_int_equal(n, 6);
  check_field(out, 0, "Host", "dcsf.example:8443");
  check_field(out, 1, "Via", "1.1 dcmf");
  check_field(out, 4, "X-DCMF-Media-Id", "media-3");

  /* No input at all; HTTP/1.0 phone. */
  struct dcmf_urlmap_request_info i10 = info;
  i10.received = DCMF_URLMAP_HTTP_1_0;
  assert_int_equal(dcmf_urlmap_request_headers(NULL, 0, &i10, out, 6, &n), 0);
  assert_int_equal(n, DCMF_URLMAP_REQUEST_EXTRA);
  check_field(out, 1, "Via", "1.0 dcmf");
  check_field(out, 5, "X-DCMF-Stream-Id", "10");
}

static void test_request_capacity(void **state) {
  (void)state;
  const struct dcmf_urlmap_header in[] = {
      H("Accept", "a"),
      H("Connection", "close"),
      H("User-Agent", "u"),
  };
  struct dcmf_urlmap_header out[8];
  size_t n = 99;
  /* 2 kept + 6 added = 8. */
  assert_int_equal(dcmf_urlmap_request_headers(in, 3, &info, out, 8, &n), 0);
  assert_int_equal(n, 8);
  for (size_t cap = 0; cap < 8; cap++) {
    n = 99;
    assert_int_equal(dcmf_urlmap_request_headers(in, 3, &info, out, cap, &n),
                     DCMF_ERR_TOO_LARGE);
    assert_int_equal(n, 0);
  }
  /* |n_in| + DCMF_URLMAP_REQUEST_EXTRA always suffices. */
  assert_int_equal(dcmf_urlmap_request_headers(
                       in, 3, &info, out, 3 + DCMF_URLMAP_REQUEST_EXTRA, &n),
                   0);
}

static void test_request_invalid(void **state) {
  (void)state;
  struct dcmf_urlmap_header out[16];
  size_t n = 99;
  static const struct dcmf_urlmap_header bad[][1] = {
      {H("Accept", "a\r\nX-Evil: 1")},
      {H("Accept", "a\nb")},
      {H("Accept", "a\rb")},
      {H("Accept", "a\0b")},
      {H("Accept", "a\x01")},
      {H("Accept", "a\x7f")},
      {H("Acc ept", "a")},
      {H("Accept:", "a")},
      {H("", "a")},
      {H(":path", "/")},
      {H("Acc\xc3\xa9pt", "a")},
      /* Dropped fields are checked as well. */
      {H("Connection", "close\r\n")},
      {H("X-DCMF-Media-Id", "m\n")},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    n = 99;
    assert_int_equal(dcmf_urlmap_request_headers(bad[i], 1, &info, out, 16, &n),
                     DCMF_ERR_INVALID);
    assert_int_equal(n, 0);
  }
  /* obs-text and HTAB in values are fine. */
  const struct dcmf_urlmap_header ok[] = {H("X-Name", "a\tb \xc3\xa9")};
  assert_int_equal(dcmf_urlmap_request_headers(ok, 1, &info, out, 16, &n), 0);
  check_field(out, 1, "X-Name", "a\tb \xc3\xa9");

  /* The values we add. */
  struct dcmf_urlmap_request_info bad_info = info;
  bad_info.context_id = "ctx\r\nX: y";
  assert_int_equal(dcmf_urlmap_request_headers(NULL, 0, &bad_info, out, 16, &n),
                   DCMF_ERR_INVALID);
  bad_info = info;
  bad_info.authority = "";
  assert_int_equal(dcmf_urlmap_request_headers(NULL, 0, &bad_info, out, 16, &n),
                   DCMF_ERR_INVALID);
  bad_info = info;
  bad_info.stream_id = NULL;
  assert_int_equal(dcmf_urlmap_request_headers(NULL, 0, &bad_info, out, 16, &n),
                   DCMF_ERR_INVALID);
  bad_info = info;
  bad_info.media_id = " m";
  assert_int_equal(dcmf_urlmap_request_headers(NULL, 0, &bad_info, out, 16, &n),
                   DCMF_ERR_INVALID);
  bad_info = info;
  bad_info.termination_id = "t\xc3\xa9";
  assert_int_equal(dcmf_urlmap_request_headers(NULL, 0, &bad_info, out, 16, &n),
                   DCMF_ERR_INVALID);
  bad_info = info;
  bad_info.received = (enum dcmf_urlmap_proto)42;
  assert_int_equal(dcmf_urlmap_request_headers(NULL, 0, &bad_info, out, 16, &n),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_urlmap_request_headers(NULL, 0, NULL, out, 16, &n),
                   DCMF_ERR_INVALID);
  assert_int_equal(dcmf_urlmap_request_headers(NULL, 1, &info, out, 16, &n),
                   DCMF_ERR_INVALID);
}

static void test_response_headers(void **state) {
  (void)state;
  const struct dcmf_urlmap_header in[] = {
      H("Content-Type", "text/html"),
      H("Content-Length", "42"),
      H("transfer-encoding", "chunked"),
      H("Connection", "keep-alive, X-Hop"),
      H("x-hop", "1"),
      H("Keep-Alive", "timeout=5"),
      H("ETag", "\"abc\""),
      H("Proxy-Authenticate", "Basic"),
      H("Upgrade", "h2"),
      H("Trailer", "X"),
      H("Set-Cookie", "a=b; Path=/"),
      H("Via", "1.1 cdn"),
      H("X-DCMF-Context-Id", "upstream-kept"),
      H("Cache-Control", "no-cache"),
  };
  size_t n_in = sizeof(in) / sizeof(in[0]);
  struct dcmf_urlmap_header out[32];
  size_t n = 99;
  assert_int_equal(
      dcmf_urlmap_response_headers(in, n_in, DCMF_URLMAP_HTTP_2, out, 32, &n),
      0);
  assert_int_equal(n, 7);
  check_field(out, 0, "Content-Type", "text/html");
  check_field(out, 1, "ETag", "\"abc\"");
  check_field(out, 2, "Set-Cookie", "a=b; Path=/");
  check_field(out, 3, "Via", "1.1 cdn");
  check_field(out, 4, "X-DCMF-Context-Id", "upstream-kept");
  check_field(out, 5, "Cache-Control", "no-cache");
  check_field(out, 6, "Via", "2 dcmf");

  assert_int_equal(
      dcmf_urlmap_response_headers(in, n_in, DCMF_URLMAP_HTTP_1_1, out, 7, &n),
      0);
  check_field(out, 6, "Via", "1.1 dcmf");
  n = 99;
  assert_int_equal(
      dcmf_urlmap_response_headers(in, n_in, DCMF_URLMAP_HTTP_1_1, out, 6, &n),
      DCMF_ERR_TOO_LARGE);
  assert_int_equal(n, 0);
  assert_int_equal(
      dcmf_urlmap_response_headers(NULL, 0, DCMF_URLMAP_HTTP_1_0, out, 0, &n),
      DCMF_ERR_TOO_LARGE);
  assert_int_equal(
      dcmf_urlmap_response_headers(NULL, 0, DCMF_URLMAP_HTTP_1_0, out, 1, &n),
      0);
  assert_int_equal(n, DCMF_URLMAP_RESPONSE_EXTRA);
  check_field(out, 0, "Via", "1.0 dcmf");

  const struct dcmf_urlmap_header bad[] = {
      H("Location", "/a\r\nSet-Cookie: x")};
  assert_int_equal(
      dcmf_urlmap_response_headers(bad, 1, DCMF_URLMAP_HTTP_2, out, 8, &n),
      DCMF_ERR_INVALID);
  const struct dcmf_urlmap_header pseudo[] = {H(":status", "200")};
  assert_int_equal(
      dcmf_urlmap_response_headers(pseudo, 1, DCMF_URLMAP_HTTP_2, out, 8, &n),
      DCMF_ERR_INVALID);
  assert_int_equal(dcmf_urlmap_response_headers(
                       in, n_in, (enum dcmf_urlmap_proto) - 1, out, 32, &n),
                   DCMF_ERR_INVALID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_base_as_file),
      cmocka_unit_test(test_base_as_dir),
      cmocka_unit_test(test_queries),
      cmocka_unit_test(test_dot_segments),
      cmocka_unit_test(test_encodings),
      cmocka_unit_test(test_bad_characters),
      cmocka_unit_test(test_absolute_form),
      cmocka_unit_test(test_hosts_and_ports),
      cmocka_unit_test(test_bad_base),
      cmocka_unit_test(test_too_large),
      cmocka_unit_test(test_resolve_url),
      cmocka_unit_test(test_parse_good),
      cmocka_unit_test(test_parse_bad),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_request_headers),
      cmocka_unit_test(test_request_connection_names),
      cmocka_unit_test(test_request_capacity),
      cmocka_unit_test(test_request_invalid),
      cmocka_unit_test(test_response_headers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
