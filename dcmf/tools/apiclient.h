/*
 * apiclient.h - what tools that drive the control API need of an HTTP
 * client: many concurrent requests, whole bodies in and out. It is a thin
 * layer over the upstream client pool (dcmf/net/upstream.h), so it
 * speaks h2c with prior knowledge to the daemon (one connection, many
 * streams), falling back to HTTP/1.1 if the daemon answered in HTTP/1.
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
 * Makes a client of |host| (a name or an address, IPv6 without brackets)
 * and |port| on |loop|; it connects with the first request. Requests may
 * be issued at once; they wait for the connection. Returns 0 or
 * DCMF_ERR_NOMEM / DCMF_ERR_INVALID (|host| is not a valid host).
 */
int dcmf_apiclient_new(struct dcmf_apiclient **client, uv_loop_t *loop,
                       const char *host, uint16_t port);

/*
 * Sends |method| |path| (starting with '/') with |body| (copied; NULL for
 * none) of type |content_type| (NULL for none). |cb| runs with |user| on
 * the loop, never inside this call, when the response is complete or the
 * request failed (status DCMF_ERR_SYSTEM: no connection, no answer in
 * 60 s, or a broken answer). Returns 0, DCMF_ERR_NOMEM, DCMF_ERR_INVALID
 * (a bad path) or DCMF_ERR_SYSTEM (the client is closing); then |cb|
 * never runs.
 */
int dcmf_apiclient_request(struct dcmf_apiclient *client, const char *method,
                           const char *path, const char *content_type,
                           const char *body, dcmf_apiclient_cb cb, void *user);

/* Fails what is outstanding (their callbacks run inside this call),
 * frees the client and closes its connections once the loop runs. Not
 * to be called from inside a request's callback (the pool is still
 * working on that request's connection). */
void dcmf_apiclient_close(struct dcmf_apiclient *client);

/*
 * Splits "http://HOST[:PORT]" (brackets for IPv6, optional trailing '/')
 * into |host| (brackets removed) and |port| (80 when left out), read by
 * the URL reader of the HTTP client (dcmf_url_parse). Returns 0 or
 * DCMF_ERR_INVALID (another scheme, a path, or |host| over |cap|).
 */
int dcmf_apiclient_parse_base(const char *url, char *host, size_t cap,
                              uint16_t *port);

#endif
