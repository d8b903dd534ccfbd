/*
 * mediactx.h - validation of Nmf_MRM MediaContext documents (TS 29.176
 * with the TS 29.571 data types) plus dcmf's documented extensions.
 *
 * The check is structural and type-based, like an OpenAPI validator,
 * with the schema's known defects relaxed: DcStream.subprotocol is any
 * string, tlsId follows RFC 8842 rather than the hex-only pattern, and
 * fingerprints are read as RFC 8122 allows. A DcStream's maxRetry or
 * maxTime of 0 (the schema's default) means that limit is absent, so
 * only two non-zero limits conflict. Optional members dcmfd does not act
 * on (arMedia, mediaProcessingUri, priority, appBindingInfo) are type
 * checked and kept; unknown members are accepted and kept (TS 29.500
 * extensibility). Pure: no I/O.
 */
#ifndef DCMF_MEDIACTX_H
#define DCMF_MEDIACTX_H

#include <jansson.h>

#include "problem.h"

/*
 * Checks |doc| against the MediaContext schema. Every violation found is
 * recorded in |p| as an invalid param whose `param` is a JSON Pointer into
 * |doc|. Members the MF itself sets (contextId, localMbEndpoint,
 * localIceInfo, localDcEndpoint, localMdc1Endpoint, localMdc2Endpoint)
 * are not checked: the MF overwrites them.
 *
 * Returns 0 when |doc| is valid, or DCMF_ERR_INVALID when at least one
 * violation was recorded.
 */
int dcmf_mediactx_validate(json_t *doc, struct dcmf_problem *p);

/*
 * Rewrites, in place, the values a client may spell in several ways into
 * one canonical form before validation: remoteDcEndpoint.fingerprint
 * becomes "SHA-256 AB:..." (RFC 8122 hash names are case-insensitive)
 * and white space around remoteDcEndpoint.tlsId is trimmed (TS 26.114's
 * example writes "a=tls-id: x"). Values that do not parse are left alone
 * for dcmf_mediactx_validate to report. Returns 0 or DCMF_ERR_NOMEM.
 */
int dcmf_mediactx_normalise(json_t *doc);

#endif
