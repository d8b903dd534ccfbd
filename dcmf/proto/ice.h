/*
 * ice.h - ICE-lite responder (RFC 8445 2.5, 6.1.1, 7.3) with consent
 * freshness (RFC 7675) for one media (one UDP port, rtcp-mux).
 *
 * An engine without I/O: the glue hands it every datagram whose first
 * byte is 0..3 (RFC 7983) together with its source address and the
 * current time, and sends whatever response it writes back to that
 * source. It never sends checks of its own (a lite agent only answers)
 * and is always in the controlled role.
 *
 * Security rule: nothing is ever sent to an unauthenticated source.
 * A request whose MESSAGE-INTEGRITY and USERNAME do not prove knowledge
 * of our credentials is dropped without an answer (RFC 8489 would have
 * us send 400 or 401 there; a lite agent's answers then become a
 * reflector anyone can aim with a spoofed source, and an honest peer
 * that knows our pwd never needs them). Every response written carries
 * MESSAGE-INTEGRITY. Media (DTLS) may be sent to dcmf_ice_peer() only,
 * and accepted only from sources for which
 * dcmf_ice_is_authorized_source() says yes, or, for a short while around
 * a change of pair, dcmf_ice_is_alternate_source().
 *
 * Changes of pair (an ICE restart to a new address, or any other change
 * of the controlling side's selected pair): the controlling side may
 * send media on a new pair as soon as its own check there succeeded,
 * before it nominates it (RFC 8445 12.1 lets a full agent send on a
 * valid pair; Chromium does), and media it sent on the pair it leaves
 * may still arrive after its nomination moved our peer. So that none of
 * that media is lost, a few addresses besides the peer may be taken media
 * from ("alternate" sources), never sent anything, never counted as
 * consent:
 *
 * - the checked addresses: addresses other than the peer whose
 *   authenticated check without USE-CANDIDATE we answered, each for
 *   DCMF_ICE_ALTERNATE_GRACE_MS after that answer (each further check
 *   from it starts that again; its nomination makes it the peer). Up to
 *   DCMF_ICE_CHECKED_MAX are kept (a peer restarting ICE may check two
 *   candidates or more before it nominates one); a check from one more
 *   address replaces the one whose time ends first. New local
 *   credentials (dcmf_ice_set_local) forget them all: they proved the
 *   old pwd only;
 * - the previous peer: the address a nomination moved the peer away from,
 *   until whichever comes first: the glue notes media from the new peer
 *   (dcmf_ice_note_traffic()), DCMF_ICE_ALTERNATE_GRACE_MS pass, consent
 *   on the new peer is lost, or a later move replaces it.
 *
 * Both proved knowledge of our current pwd, which is what nomination asks
 * too; an address that never did is never taken media from. Once its
 * time ended an address is not taken again unless it checks anew. A
 * check is no proof of who sends it, though: anyone who saw one may
 * replay it from its own address. So the glue takes from an alternate
 * source only what a stranger cannot forge (media the keys authenticate)
 * and what starts a new association; the rest waits for a nomination
 * (session.c, on_dtls).
 */
#ifndef DCMF_ICE_H
#define DCMF_ICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* RFC 8839 limits of ice-ufrag and ice-pwd. */
#define DCMF_ICE_UFRAG_MAX 256
#define DCMF_ICE_PWD_MAX 256
/* RFC 7675: consent expires 30 s after the last proof of it. */
#define DCMF_ICE_CONSENT_TIMEOUT_MS 30000
/*
 * How long media from an alternate source is still taken (see "Changes
 * of pair" above). The controlling side nominates, and stops using the
 * pair it leaves, once a check is answered, a round trip or a few later;
 * 2 s covers that with retransmissions of a lost check (RFC 8445 14.3:
 * RTO of 500 ms and up) and keeps the window short.
 */
#define DCMF_ICE_ALTERNATE_GRACE_MS 2000
/* How many checked addresses are remembered at once (see "Changes of
 * pair"): a few candidates of one restart, bounded. */
#define DCMF_ICE_CHECKED_MAX 4

struct dcmf_ice_settings {
  /* Our ice-ufrag / ice-pwd (RFC 8839 syntax), copied. Required. */
  const char *local_ufrag;
  const char *local_pwd;
  /*
   * The peer's ice-ufrag, copied, or NULL while unknown (the SDP answer
   * may arrive after the first checks): then USERNAME must be
   * "<local ufrag>:<anything non-empty>".
   */
  const char *remote_ufrag;
  /* The signalled remote transport address, copied, or NULL. */
  const struct sockaddr *remote_addr;
  /*
   * Non-zero if the peer does ICE-lite too or no ICE at all, so no
   * checks will come: media from |remote_addr| (then required) is
   * authorized from the start.
   */
  int remote_ice_lite_or_none;
  /* Consent lifetime in ms; 0 means DCMF_ICE_CONSENT_TIMEOUT_MS. */
  uint64_t consent_timeout_ms;
  /*
   * Optional: asked before the MESSAGE-INTEGRITY check (an HMAC) of a
   * request whose USERNAME names this session, when |from| is not the
   * latched or signalled peer; returning 0 drops the request
   * (DCMF_ICE_DROP_LIMITED). The glue puts a per-source rate limit here:
   * a sender that does not know our ufrags then costs nothing and drains
   * no one's allowance. NULL: always go on.
   */
  int (*may_authenticate)(void *user, const struct sockaddr *from);
  void *may_authenticate_user;
};

/* What dcmf_ice_recv() did with a packet, for logs and metrics. */
struct dcmf_ice_counters {
  uint64_t requests_ok;     /* success responses written */
  uint64_t bad_requests;    /* 400 written (after authentication) */
  uint64_t unauthenticated; /* dropped: MI or USERNAME missing or wrong */
  uint64_t limited;         /* dropped: |may_authenticate| said no */
  uint64_t unknown_attrs;   /* 420 written */
  uint64_t role_conflicts;  /* 487 written */
  uint64_t dropped;         /* no output: not a request, bad FINGERPRINT */
  uint64_t latches;        /* times the peer address was (re)latched */
  uint64_t consent_losses; /* times dcmf_ice_handle_expiry() returned 1 */
};

/*
 * One responder. Caller-owned, usually embedded; holds no resources, so
 * there is no _free. All fields but |counters| are private to ice.c;
 * |counters| may be read at any time.
 */
struct dcmf_ice {
  char local_ufrag[DCMF_ICE_UFRAG_MAX + 1];
  char local_pwd[DCMF_ICE_PWD_MAX + 1];
  char remote_ufrag[DCMF_ICE_UFRAG_MAX + 1]; /* "" while unknown */
  size_t local_ufrag_len, local_pwd_len, remote_ufrag_len;
  struct sockaddr_storage signalled;
  int has_signalled;
  int remote_ice_lite_or_none;
  uint64_t consent_timeout_ms;
  int (*may_authenticate)(void *user, const struct sockaddr *from);
  void *may_authenticate_user;
  struct sockaddr_storage peer; /* valid if |latched| */
  int latched;
  uint64_t last_valid_ms;
  /* The alternate sources (see "Changes of pair"): the address the peer
   * moved away from, valid if |has_previous| and before
   * |previous_until_ms|; the checked non-peer addresses, each valid if
   * |used| and before its |until_ms|. */
  struct sockaddr_storage previous;
  int has_previous;
  uint64_t previous_until_ms;
  struct {
    struct sockaddr_storage addr;
    int used;
    uint64_t until_ms;
  } checked[DCMF_ICE_CHECKED_MAX];
  struct dcmf_ice_counters counters;
};

/* Results of dcmf_ice_recv() (non-negative). */
enum dcmf_ice_result {
  /* Nothing to send; *out_len is 0. */
  DCMF_ICE_DROP = 0,
  /* Send |out| (a success) to |from|; the peer address did not change. */
  DCMF_ICE_RESPOND = 1,
  /* Send |out| (a success) to |from|, which is now the peer address:
   * start or move media (DTLS) there. */
  DCMF_ICE_RESPOND_LATCHED = 2,
  /* Send |out| (an error response) to |from|; nothing else changed. */
  DCMF_ICE_RESPOND_ERROR = 3,
  /* Nothing to send (*out_len is 0): the request did not authenticate. */
  DCMF_ICE_DROP_UNAUTHENTICATED = 4,
  /* Nothing to send (*out_len is 0): |may_authenticate| said no. */
  DCMF_ICE_DROP_LIMITED = 5,
};

/*
 * Initialises |ice| from |settings| (strings and address are copied; the
 * settings need not outlive the call). Returns 0, or DCMF_ERR_INVALID if
 * a ufrag or pwd is missing or not RFC 8839 syntax, |remote_addr| is not
 * IPv4/IPv6, or |remote_ice_lite_or_none| is set without |remote_addr|.
 */
int dcmf_ice_init(struct dcmf_ice *ice,
                  const struct dcmf_ice_settings *settings);

/*
 * Sets the peer's ice-ufrag once the SDP answer brings it (NULL: back to
 * unknown). Returns 0 or DCMF_ERR_INVALID (bad syntax; unchanged).
 */
int dcmf_ice_set_remote_ufrag(struct dcmf_ice *ice, const char *ufrag);

/*
 * The peer does no ICE and its address came after the start (an answer
 * without ICE, as an IMS UE's T.38 one, RFC 7345 4.2-4.4): from now on
 * |addr| is authorized and is the peer, as if given at init with
 * remote_ice_lite_or_none. Copied. Returns 0 or DCMF_ERR_INVALID (not
 * IPv4/IPv6; unchanged).
 */
int dcmf_ice_set_remote_no_ice(struct dcmf_ice *ice,
                               const struct sockaddr *addr);

/*
 * An ICE restart (RFC 8839 section 4.4.1.1.1): our new credentials. The
 * selected peer stays (ICE-lite: consent goes on with checks that use
 * the new credentials, and a check from elsewhere moves the peer as
 * before); the checked addresses are forgotten (they proved the old pwd
 * only). Returns 0 or DCMF_ERR_INVALID (bad syntax; unchanged).
 */
int dcmf_ice_set_local(struct dcmf_ice *ice, const char *ufrag,
                       const char *pwd);

/*
 * Handles the datagram |pkt| (|len| bytes, borrowed for the call) from
 * |from| at time |now_ms|, and writes the response to send back to
 * |from| into |out| (|out_cap| bytes), setting *|out_len| (0 when nothing
 * is to be sent). Checks, in order (RFC 8489 6.3, 9.1.3; RFC 8445 7.3):
 *
 * - not a well-formed STUN message, no FINGERPRINT or a wrong one, not a
 *   request, or a request of a method other than Binding: dropped
 *   (DCMF_ICE_DROP);
 * - no MESSAGE-INTEGRITY, one of the wrong size, no USERNAME, USERNAME
 *   not "<local ufrag>:<remote ufrag>", or MESSAGE-INTEGRITY not
 *   matching our pwd: dropped without an answer
 *   (DCMF_ICE_DROP_UNAUTHENTICATED; see the security rule above); a
 *   request with the right USERNAME from a source other than the peer is
 *   first offered to |may_authenticate|, and dropped without an answer
 *   (DCMF_ICE_DROP_LIMITED) if it says no;
 * - unknown comprehension-required attributes: 420 listing them;
 * - a malformed known attribute, no PRIORITY, or both ICE-CONTROLLING and
 *   ICE-CONTROLLED: 400;
 * - ICE-CONTROLLED (the peer is controlled too; being lite we cannot
 *   switch to controlling): 487;
 * - otherwise a success with XOR-MAPPED-ADDRESS = |from|.
 * Every response carries MESSAGE-INTEGRITY keyed with our pwd and
 * FINGERPRINT.
 *
 * Latching on an authenticated success: a request with USE-CANDIDATE
 * latches |from| as the peer, and a later one from another address
 * re-latches to that address (the controlling side changed its
 * nomination). A request without USE-CANDIDATE latches |from| only if
 * nothing is latched (first check, or consent was lost); it never moves
 * an existing latch. A success to the peer address (re)starts the
 * consent timer at |now_ms|. A success to another address that does not
 * move the peer makes it a checked address, and a move makes the
 * address left the previous peer, each until |now_ms| +
 * DCMF_ICE_ALTERNATE_GRACE_MS (see "Changes of pair").
 *
 * Returns an enum dcmf_ice_result, DCMF_ERR_TOO_LARGE if |out_cap| is too
 * small for the response (nothing sent, state unchanged but counted as
 * dropped), DCMF_ERR_INVALID if |from| is not IPv4/IPv6, or
 * DCMF_ERR_NOMEM if OpenSSL failed (treat as a drop).
 */
int dcmf_ice_recv(struct dcmf_ice *ice, const struct sockaddr *from,
                  const uint8_t *pkt, size_t len, uint64_t now_ms, uint8_t *out,
                  size_t out_cap, size_t *out_len);

/*
 * Returns where media goes: the latched address, or else, when created
 * with remote_ice_lite_or_none, the signalled address; else NULL. The
 * pointer stays valid as long as |ice|, but what it points to changes
 * with later calls.
 */
const struct sockaddr *dcmf_ice_peer(const struct dcmf_ice *ice);

/*
 * Returns 1 if media (DTLS) from |from| may be accepted: |from| is the
 * latched address, or, with remote_ice_lite_or_none, the signalled
 * address. Otherwise 0.
 */
int dcmf_ice_is_authorized_source(const struct dcmf_ice *ice,
                                  const struct sockaddr *from);

/*
 * Returns 1 if |from| is an alternate source at |now_ms| (a checked
 * address or the previous peer, within its time; see "Changes of pair"):
 * media from it may be accepted, but is not noted
 * (dcmf_ice_note_traffic()), moves nothing, and nothing goes back to it.
 * Otherwise 0 (also for the peer itself: ask
 * dcmf_ice_is_authorized_source() first).
 */
int dcmf_ice_is_alternate_source(const struct dcmf_ice *ice,
                                 const struct sockaddr *from, uint64_t now_ms);

/*
 * Notes valid media (DTLS) from the peer at |now_ms|, refreshing consent
 * and ending the time of the previous peer (the new path carries media
 * now). Ignored when nothing is latched or consent has already run out.
 * Call it for media from the peer only, never from an alternate source.
 */
void dcmf_ice_note_traffic(struct dcmf_ice *ice, uint64_t now_ms);

/*
 * Returns the time consent on the latched peer runs out (last proof +
 * consent timeout), or UINT64_MAX when nothing is latched.
 */
uint64_t dcmf_ice_next_expiry(const struct dcmf_ice *ice);

/*
 * Returns 1 if consent ran out at |now_ms|: the latch is then cleared
 * (dcmf_ice_peer() no longer returns it, so nothing more is sent there;
 * a new authenticated request latches again), and so are both alternate
 * sources. Returns 0 otherwise, so it returns 1 exactly once per loss.
 */
int dcmf_ice_handle_expiry(struct dcmf_ice *ice, uint64_t now_ms);

#endif
