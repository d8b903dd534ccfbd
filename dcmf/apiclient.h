/*
 * apiclient.h - a small HTTP/2 (h2c, prior knowledge) client on libuv and
 * nghttp2, enough for tools that drive the control API: one connection,
 * many concurrent requests, whole bodies in and out.
 */
#ifndef DCMF_APICLIENT_H
#define DCMF_APICLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Called once per request. |status| is the HTTP status, or a negative
 * libuv/DCMF error when the request failed; |body| is valid for the call
 * and NUL-terminated; |location| is the location header or NULL. */
typedef void (*dcmf_apiclient_cb)(void *user, int status, const char *body,
                                  size_t len, const char *location);

struct dcmf_apiclient;

/*
 * Connects to the numeric address |host|:|port| on |loop|. Requests may
 * be issued at once; they wait for the connection. Returns 0 or
 * DCMF_ERR_NOMEM / DCMF_ERR_INVALID (bad address).
 */
int dcmf_apiclient_new(struct dcmf_apiclient **client, uv_loop_t *loop,
                       const char *host, uint16_t port);

/*
 * Sends |method| |path| with |body| (copied; NULL for none) of type
 * |content_type|. |cb| runs with |user| when the response is complete or
 * the request failed. Returns 0 or a negative error (then |cb| never
 * runs).
 */
int dcmf_apiclient_request(struct dcmf_apiclient *client, const char *method,
                           const char *path, const char *content_type,
                           const char *body, dcmf_apiclient_cb cb, void *user);

/* Fails what is outstanding, closes the connection and frees the client
 * once libuv lets go (the loop must run). */
void dcmf_apiclient_close(struct dcmf_apiclient *client);

/*
 * Splits "http://HOST:PORT" (numeric host, brackets for IPv6, optional
 * trailing '/') into |host| and |port|. Returns 0 or DCMF_ERR_INVALID.
 */
int dcmf_apiclient_parse_base(const char *url, char *host, size_t cap,
                              uint16_t *port);

#endif
