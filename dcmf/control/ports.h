/*
 * ports.h - the media UDP port pool.
 *
 * A port is reserved by binding a real UDP socket on the media address,
 * so the number reported to the IMS AS is provably ours and another
 * process cannot take it. The pool keeps the bound descriptor until the
 * port is released; the media plane takes it over later (uv_udp_open).
 * This is glue: it makes system calls.
 */
#ifndef DCMF_PORTS_H
#define DCMF_PORTS_H

#include <stddef.h>
#include <stdint.h>

struct dcmf_ports;

/*
 * Creates a pool for the inclusive range [min, max] on the numeric IPv4
 * or IPv6 address |bind_addr|. Returns 0, DCMF_ERR_INVALID (bad address
 * or range) or DCMF_ERR_NOMEM.
 */
int dcmf_ports_new(struct dcmf_ports **pool, const char *bind_addr,
                   uint16_t min, uint16_t max);

/* Closes every socket still held and frees the pool. */
void dcmf_ports_del(struct dcmf_ports *pool);

/*
 * Binds the next free port of the range (round robin, so a released port
 * is not handed out again at once). Ports bound by other processes are
 * skipped. Returns 0 with *|port| set, DCMF_ERR_EXHAUSTED when every port
 * of the range is taken, or DCMF_ERR_SYSTEM when binding fails for a
 * reason other than the port being in use (errno is left set).
 */
int dcmf_ports_alloc(struct dcmf_ports *pool, uint16_t *port);

/* Closes the socket of |port|. Unknown ports are ignored. */
void dcmf_ports_release(struct dcmf_ports *pool, uint16_t port);

/* Returns the bound descriptor of |port|, or -1. */
int dcmf_ports_fd(const struct dcmf_ports *pool, uint16_t port);

size_t dcmf_ports_in_use(const struct dcmf_ports *pool);
size_t dcmf_ports_total(const struct dcmf_ports *pool);

#endif
