/*
 * srtp.h - the SRTP engine of a DTLS-SRTP association (RFC 5764, RFC
 * 3711, RFC 7714), on one of two backends chosen per engine: OpenSSL's
 * EVP ciphers and MACs (srtp_evp.c) or libsrtp2 (srtp_libsrtp.c). Both
 * behave alike to the byte and to the error: the same packets out, the
 * same refusals, the same ROC, replay and SRTCP index rules (the unit
 * tests and the differential fuzz target hold them to it). Layer proto:
 * no I/O, no clock, no lock.
 *
 * One engine serves one DTLS association seen from our side: it is made
 * from the protection profile DTLS negotiated (use_srtp), the keying
 * material exported from DTLS with the label "EXTRACTOR-dtls_srtp" and
 * our DTLS role, and it then protects what we send (RTP and RTCP) with
 * our role's master key and salt and unprotects what we receive with the
 * peer's (RFC 5764 §4.2).
 *
 * Per-SSRC state. RFC 3711 §3.2.3 keeps a rollover counter (ROC), a
 * replay list and an SRTCP index per SSRC even when the keys are shared,
 * so the engine holds one state per SSRC in each direction. It is made
 * on the first packet of an SSRC it does not know, with the keys of its
 * direction (libsrtp2's ssrc_any_outbound and ssrc_any_inbound
 * templates), and starts at ROC 0 (§3.3.1). Inbound, the state of a new SSRC is
 * made only once a packet of it has passed authentication, so a stranger cannot
 * fill the engine with SSRCs; only the key holder can. States are kept until
 * the engine is freed.
 *
 * Replay protection is on in both directions (a window of
 * DCMF_SRTP_REPLAY_WINDOW packets for SRTP; libsrtp2's fixed 128 for
 * SRTCP; a window slides forward only, so a packet older than the newest
 * by the window or more is refused). Outbound, protecting the same
 * sequence number of an SSRC twice is refused too (the same keystream
 * would cover two payloads). The
 * SRTCP index is ours, per SSRC, one more per packet (RFC 3711 §3.4),
 * never copied from anywhere. libsrtp2 counts before it sends, so an
 * SSRC's first SRTCP packet carries index 1, where §3.4 reads as 0, and
 * the EVP backend does the same; receivers take the index from the
 * packet, so both interoperate.
 *
 * Re-key (a new DTLS association: new material, maybe another profile or
 * role) keeps each known SSRC's ROC and SRTCP index in both directions
 * (RFC 3711 §3.3.1 and §3.4: neither is reset by a re-key); an SSRC first
 * seen afterwards starts at 0. The SRTP replay list of a known SSRC
 * starts empty under the new keys (libsrtp2's srtp_update keeps only the
 * highest index); the SRTCP one is kept whole.
 *
 * Packets are changed in place in the caller's buffer, which must be
 * aligned on 4 bytes (libsrtp2 reads 32-bit words; the EVP backend asks
 * the same, so that a caller works with either). Protection appends a
 * trailer (the tag; for SRTCP also the E flag and index), so a protected
 * packet needs DCMF_SRTP_TRAILER_ROOM free bytes after it: libsrtp2
 * reserves that much whatever the profile uses.
 *
 * Global state. libsrtp2 has one crypto kernel per process: call
 * dcmf_srtp_lib_init() once per process, from main() (or a test's
 * set-up), before any thread makes an engine of either backend (the EVP
 * one needs nothing, but a process should not care which its engines
 * use); nothing else here touches process state, and engines are
 * independent of each other. Each engine
 * belongs to one owner thread (a session); it takes no locks.
 *
 * Errors are 0 or a negative DCMF_ERR_* (errors.h). What a packet was
 * refused for is counted per direction (struct dcmf_srtp_stats).
 */
#ifndef DCMF_SRTP_H
#define DCMF_SRTP_H

#include <stddef.h>
#include <stdint.h>

/* The DTLS-SRTP protection profiles we know. The values are the profile
 * identifiers on the wire (RFC 5764 §4.1.2, RFC 7714 §14.2), which are
 * also the |id| of OpenSSL's SRTP_PROTECTION_PROFILE. */
enum dcmf_srtp_profile {
  DCMF_SRTP_AES128_CM_SHA1_80 = 0x0001,
  DCMF_SRTP_AES128_CM_SHA1_32 = 0x0002,
  DCMF_SRTP_AEAD_AES_128_GCM = 0x0007,
  DCMF_SRTP_AEAD_AES_256_GCM = 0x0008,
};

/* What a profile is made of. */
struct dcmf_srtp_profile_info {
  enum dcmf_srtp_profile profile;
  const char *name;    /* OpenSSL's and RFC 5764's: "SRTP_AES128_CM_SHA1_80" */
  size_t key_len;      /* master key bytes */
  size_t salt_len;     /* master salt bytes */
  size_t rtp_tag_len;  /* SRTP authentication tag bytes */
  size_t rtcp_tag_len; /* SRTCP authentication tag bytes */
  size_t export_len;   /* keying material to export: 2 * (key + salt) */
};

/* Free bytes a buffer needs after the packet for protect: libsrtp2's
 * SRTP_MAX_TRAILER_LEN plus the 4-byte SRTCP E flag and index. */
#define DCMF_SRTP_TRAILER_ROOM 148
/* The label of the RFC 5705 exporter for DTLS-SRTP (RFC 5764 §4.2). */
#define DCMF_SRTP_EXPORTER_LABEL "EXTRACTOR-dtls_srtp"
/* The largest export_len of a known profile (AEAD_AES_256_GCM). */
#define DCMF_SRTP_EXPORT_MAX 88
/* Packets of SRTP replay window per SSRC (libwebrtc uses the same). */
#define DCMF_SRTP_REPLAY_WINDOW 1024
/* How long, in ms, the owner of an engine keeps the previous keys after
 * a re-key before dcmf_srtp_drop_previous (the fallback). The peer goes
 * on with its old keys until our last handshake flight reaches it: one
 * round trip, or, when that flight is lost, until its retransmission
 * timer (1 s at first, RFC 6347 §4.2.4.1) makes it ask again and ours
 * answers. 2 s covers that one loss and round trips up to 500 ms, and
 * keeps short the time a replay of a packet from before the switch can
 * pass (dcmf_srtp_drop_previous). */
#define DCMF_SRTP_FALLBACK_MS 2000

/* The crypto an engine runs on. Both give the same bytes and verdicts;
 * they differ in speed (docs/benchmarks.md, "SRTP backends"). */
enum dcmf_srtp_backend {
  DCMF_SRTP_BACKEND_OPENSSL,  /* OpenSSL EVP: AES-CTR/GCM, HMAC-SHA1 */
  DCMF_SRTP_BACKEND_LIBSRTP2, /* libsrtp2 (Debian's runs on NSS) */
};
/* The backend dcmf_srtp_new uses and dcmfd's --srtp-backend defaults to:
 * the faster one on our benchmark (docs/benchmarks.md). */
#define DCMF_SRTP_BACKEND_DEFAULT DCMF_SRTP_BACKEND_OPENSSL

/* Our DTLS role in the association the material comes from. */
enum dcmf_srtp_role {
  DCMF_SRTP_CLIENT, /* we sent the ClientHello */
  DCMF_SRTP_SERVER,
};

/* Which way a packet goes, for counters and the ROC. */
enum dcmf_srtp_dir {
  DCMF_SRTP_OUT, /* protect: what we send */
  DCMF_SRTP_IN,  /* unprotect: what we receive */
};

/* Counters of one direction. A packet is counted once, in |rtp| or
 * |rtcp| when it passed and in one refusal counter when it did not. */
struct dcmf_srtp_stats {
  uint64_t rtp;       /* SRTP packets protected or unprotected */
  uint64_t rtcp;      /* SRTCP packets protected or unprotected */
  uint64_t auth;      /* refused: authentication failed (inbound only) */
  uint64_t replay;    /* refused: replayed or older than the window */
  uint64_t malformed; /* refused: too short, too long, not version 2, a
                         header longer than the packet */
  uint64_t failed;    /* refused for anything else (no memory, a library
                         failure, a stream past its key limit) */
  uint64_t previous;  /* inbound SRTP packets that passed under the
                         previous keys after a re-key (the fallback of
                         dcmf_srtp_rekey); also counted in |rtp| */
};

struct dcmf_srtp;

/* Starts libsrtp2's process-wide crypto kernel. Call before the first
 * dcmf_srtp_new, from one thread while no other changes libsrtp2's
 * state (dcmfd's worker start, dcmf-ue's main(), a test's set-up). A
 * later call finds the kernel up, re-runs its self-test and returns 0.
 * The first call also makes one idle libsrtp2 session that lives as long
 * as the process, so that the crypto backend stays loaded between
 * engines (srtp.c says why). Returns 0 or DCMF_ERR_SYSTEM (the library's
 * self-test failed, or that session could not be made). */
int dcmf_srtp_lib_init(void);

/* The backend named |name| ("openssl" or "libsrtp2") into |*out|.
 * Returns 0 or DCMF_ERR_INVALID (|*out| untouched). */
int dcmf_srtp_backend_by_name(const char *name, enum dcmf_srtp_backend *out);

/* The name of |b| ("openssl", "libsrtp2"; "?" for another value). */
const char *dcmf_srtp_backend_name(enum dcmf_srtp_backend b);

/* The profile with wire identifier |id|, or NULL for one we do not know
 * (OpenSSL's SSL_get_selected_srtp_profile()->id fits here). The result
 * is static. */
const struct dcmf_srtp_profile_info *dcmf_srtp_profile_find(uint16_t id);

/* The profile named |name| (RFC 5764 / OpenSSL spelling, exact case), or
 * NULL. The result is static. */
const struct dcmf_srtp_profile_info *
dcmf_srtp_profile_by_name(const char *name);

/* The use_srtp profile list for SSL_CTX_set_tlsext_use_srtp /
 * SSL_set_tlsext_use_srtp, in our order of preference: AEAD_AES_256_GCM,
 * AEAD_AES_128_GCM, AES128_CM_SHA1_80, AES128_CM_SHA1_32 (the strongest
 * first; an OpenSSL DTLS server picks by its own order). Static string. */
const char *dcmf_srtp_profile_list(void);
/* The same list as a string constant, for static tables (assoc_srtp.c). */
#define DCMF_SRTP_PROFILE_LIST                                                 \
  "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:"                               \
  "SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32"

/*
 * Makes an engine in |*out| for |profile| from |material| (|len| bytes
 * exported with DCMF_SRTP_EXPORTER_LABEL: client key, server key, client
 * salt, server salt) with our DTLS |role|, on DCMF_SRTP_BACKEND_DEFAULT.
 * The material is turned into the backend's keys and not kept; the
 * caller should wipe its copy.
 *
 * Returns 0; DCMF_ERR_INVALID for an unknown profile or role, or |len|
 * other than the profile's export_len (|*out| untouched); DCMF_ERR_NOMEM;
 * DCMF_ERR_SYSTEM when the backend refuses the keys (libsrtp2 not
 * initialised, an OpenSSL cipher missing).
 */
int dcmf_srtp_new(struct dcmf_srtp **out, enum dcmf_srtp_profile profile,
                  const uint8_t *material, size_t len,
                  enum dcmf_srtp_role role);

/* As dcmf_srtp_new on |backend|; DCMF_ERR_INVALID also for a backend we
 * do not know. */
int dcmf_srtp_new_with(struct dcmf_srtp **out, enum dcmf_srtp_backend backend,
                       enum dcmf_srtp_profile profile, const uint8_t *material,
                       size_t len, enum dcmf_srtp_role role);

/* The backend |s| runs on. */
enum dcmf_srtp_backend dcmf_srtp_backend(const struct dcmf_srtp *s);

/* Frees |s| and every SSRC state (NULL: nothing). */
void dcmf_srtp_del(struct dcmf_srtp *s);

/*
 * Re-keys |s| from a new DTLS association: arguments as for
 * dcmf_srtp_new. Every SSRC known in either direction keeps its ROC,
 * highest sequence number and SRTCP index; new SSRCs start at 0. When
 * the profile stays the same, the peer's keys being replaced are kept as
 * a fallback for inbound SRTP (dcmf_srtp_drop_previous says what and for
 * how long).
 *
 * Returns 0; DCMF_ERR_INVALID for bad arguments (|s| unchanged and still
 * usable) or when |s| is broken; DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM when
 * the backend failed half-way: |s| is then broken, refuses every packet
 * with DCMF_ERR_INVALID, and can only be freed.
 */
int dcmf_srtp_rekey(struct dcmf_srtp *s, enum dcmf_srtp_profile profile,
                    const uint8_t *material, size_t len,
                    enum dcmf_srtp_role role);

/*
 * The fallback of a re-key. The peer switches to the new keys when its
 * own side of the new DTLS handshake completes, which is not when ours
 * does: as DTLS server we switch on the client's Finished, and the
 * client goes on protecting with the old keys until our Finished reaches
 * it, about one round trip. So a successful dcmf_srtp_rekey that keeps
 * the profile keeps the peer's previous keys as a fallback: an inbound
 * SRTP packet that fails authentication under the current keys is tried
 * once more under the previous ones, with the same per-SSRC state (ROC
 * estimate, highest index, replay list) and so the same replay verdict;
 * it passes only if it authenticates, and is then counted in |rtp| and
 * |previous| and marked in that state. Nothing else is tried: outbound
 * always uses the current keys; SRTCP is not tried under the previous
 * keys (a report lost at the switch is replaced by the next one, and
 * libsrtp2 cannot select an SRTCP key under AES128_CM_SHA1_32); a re-key
 * to another profile keeps no fallback. A later re-key replaces the
 * fallback with the keys it replaces.
 *
 * The engine has no clock, so the owner ends the fallback: call
 * dcmf_srtp_drop_previous once the peer's old-key packets can no longer
 * be in flight (assoc_srtp.c: DCMF_SRTP_FALLBACK_MS after the switch).
 * It is not ended by a count of new-key packets: a new-key packet of one
 * SSRC says nothing about an old-key packet of another still on the way.
 *
 * Replay: the SRTP replay list of each SSRC starts empty at a re-key
 * (srtp.h, libsrtp2's srtp_update), so while the fallback lasts a packet
 * from the last DCMF_SRTP_REPLAY_WINDOW before the switch that was
 * accepted then and is replayed now authenticates under the previous
 * keys and is accepted once more (then it is marked). The fallback's
 * bound in time keeps this window short; docs/e2ae.md says more.
 *
 * Returns 0, or DCMF_ERR_NOT_FOUND when |s| holds no previous keys.
 */
int dcmf_srtp_drop_previous(struct dcmf_srtp *s);

/* Whether |s| holds previous keys as a fallback now (1 or 0). */
int dcmf_srtp_has_previous(const struct dcmf_srtp *s);

/* The profile in use now. */
enum dcmf_srtp_profile dcmf_srtp_profile(const struct dcmf_srtp *s);

/*
 * Protects the RTP packet of |len| bytes at |buf| in place. |cap| is the
 * buffer's size: it must be at least |len| + DCMF_SRTP_TRAILER_ROOM. On
 * success |*out_len| is the SRTP packet's length (|len| + tag); on
 * failure |buf| is unchanged unless said otherwise.
 *
 * Returns 0; DCMF_ERR_INVALID for a buffer not aligned on 4 bytes or a
 * broken engine (not counted); DCMF_ERR_TOO_LARGE when |cap| is short or
 * |len| is over 65535 (counted malformed); DCMF_ERR_MALFORMED for a
 * packet shorter than its RTP header or not RTP version 2;
 * DCMF_ERR_REPLAY for a sequence number this SSRC already sent or that is
 * older than the window; DCMF_ERR_NOMEM (a new SSRC's state) or
 * DCMF_ERR_SYSTEM (the backend failed; |buf| may have been changed).
 */
int dcmf_srtp_protect_rtp(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                          size_t cap, size_t *out_len);

/* As dcmf_srtp_protect_rtp for one RTCP compound packet (8 bytes at
 * least): appends the E flag, our SRTCP index for the sender SSRC and the
 * tag. There is no replay refusal outbound: the index is ours. */
int dcmf_srtp_protect_rtcp(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                           size_t cap, size_t *out_len);

/*
 * Unprotects the SRTP packet of |len| bytes at |buf| in place; on
 * success |*out_len| is the RTP packet's length. On failure the bytes of
 * |buf| are undefined (GCM may have decrypted in place) and must not be
 * forwarded.
 *
 * Returns 0; DCMF_ERR_INVALID (not aligned, broken engine; not counted);
 * DCMF_ERR_MALFORMED (shorter than header and tag, not version 2, CSRC
 * list or header extension past the end; SRTCP with the E flag clear
 * under an AES-CM profile, which we never send; under GCM such a packet
 * is checked as RFC 7714 §9.3's authenticated-only SRTCP, as libsrtp2
 * does) or DCMF_ERR_TOO_LARGE (over
 * 65535): counted malformed; DCMF_ERR_AUTH (the tag does not verify:
 * wrong keys or altered bytes); DCMF_ERR_REPLAY (seen before, or older
 * than the window); DCMF_ERR_NOMEM or DCMF_ERR_SYSTEM (counted failed).
 */
int dcmf_srtp_unprotect_rtp(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                            size_t *out_len);

/* As dcmf_srtp_unprotect_rtp for one SRTCP packet (header, index word and
 * tag at least). The replay check is on the SRTCP index. */
int dcmf_srtp_unprotect_rtcp(struct dcmf_srtp *s, uint8_t *buf, size_t len,
                             size_t *out_len);

/* Drops the state of |ssrc| (host order) in direction |dir|: its ROC,
 * replay list and SRTCP index. For an SSRC the owner will not carry (a
 * keyed peer cycling SSRCs would otherwise grow the engine without
 * bound); a later packet of it starts again at ROC 0. Returns 0, or
 * DCMF_ERR_NOT_FOUND when the engine holds no state for it. */
int dcmf_srtp_forget(struct dcmf_srtp *s, enum dcmf_srtp_dir dir,
                     uint32_t ssrc);

/* The ROC of |ssrc| (host order) in direction |dir| into |*roc|. Returns
 * 0, or DCMF_ERR_NOT_FOUND when no packet of |ssrc| went that way yet. */
int dcmf_srtp_roc(const struct dcmf_srtp *s, enum dcmf_srtp_dir dir,
                  uint32_t ssrc, uint32_t *roc);

/* The counters of direction |dir|; valid while |s| lives. */
const struct dcmf_srtp_stats *dcmf_srtp_stats(const struct dcmf_srtp *s,
                                              enum dcmf_srtp_dir dir);

#endif
