/*
 * media.h - the messages between the control side and a media worker
 * (layer "media"): what the controller tells a worker about one DC
 * media, and the events a worker raises; and what the AGW shim tells a
 * worker about one UDP relay, and what the worker reports back of it.
 * Self-contained copies: no JSON library types, no control-plane types,
 * no pointers into the registry, so they can cross from the control
 * thread to a worker thread, and later to a worker process (the fds then
 * travel beside the message). The controller (controller.h) builds the
 * media ones from the MediaContext, the AGW shim (agw.c) the relay ones.
 */
#ifndef DCMF_MEDIA_H
#define DCMF_MEDIA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "assoc.h"
#include "fingerprint.h"
#include "relay.h"
#include "sctp.h"

#define DCMF_ID_MAX 96

struct dcmf_media_key {
  char context_id[37];
  char termination_id[DCMF_ID_MAX];
  char media_id[DCMF_ID_MAX];
};

struct dcmf_media_stream {
  uint16_t sid;
  char protocol[64];
  struct dcmf_sctp_reliability rel;
  uint16_t priority;
};

/* A local MDC2 port of UDP-proxy mode, for one application stream. */
struct dcmf_media_mdc2 {
  uint16_t sid;
  uint16_t port;
  int fd;   /* a dup of the bound socket, or -1 */
  int text; /* deliver datagrams as string messages (PPID 51) */
};

/* Where HTTP on one stream is forwarded (HTTP-proxy mode). */
struct dcmf_media_route {
  uint16_t sid;
  char url[2048];
};

/* e2ae (TS 23.334 5.11.2.4, 6.2.10.5): the core leg of an access media
 * whose association kind is DCMF_ASSOC_SRTP. The access side (ICE-lite,
 * DTLS-SRTP, SRTP with rtcp-mux) is the session itself; this leg carries
 * the same RTP and RTCP in plain form to and from the IMS core, and a
 * service joins each SSRC flow of the access association to it. */
struct dcmf_media_rtpleg {
  int rtp_fd;        /* a dup of the bound core RTP socket; -1 in updates */
  int rtcp_fd;       /* the core RTCP socket; -1 with rtcp-mux and in updates */
  uint16_t rtp_port; /* local */
  uint16_t rtcp_port; /* local; 0 with rtcp-mux */
  /* The signalled core addresses (ss_family 0 while unknown; with
   * rtcp-mux |remote_rtcp| equals |remote_rtp|). */
  struct sockaddr_storage remote_rtp, remote_rtcp;
  int rtcp_mux;
  int latching;    /* the core peer's address is taken from its packets */
  int core_avpf;   /* core RTP/AVPF: RTCP feedback passes; RTP/AVP: not */
  int access_avpf; /* access UDP/TLS/RTP/SAVPF */
  /* e2ae T.140 (RFC 8865 <-> RFC 4103): with |on|, the access media's
   * association is SCTP and its negotiated "t140" channel |sid| is
   * joined to this leg's RTP text stream (agw-shim/e2ae/t140_svc.h);
   * the SRTP service stays out of it. */
  struct dcmf_media_t140 {
    int on;
    uint16_t sid;          /* the access data channel's SCTP stream */
    uint8_t pt_t140;       /* text/t140 payload type toward the core */
    uint8_t pt_red;        /* red payload type, if use_red */
    int use_red;
    uint8_t generations;   /* 0..5 */
    uint32_t cps_to_dc;    /* the WIC's dcsa cps (1..65535) */
    uint32_t cps_to_rtp;   /* the core's fmtp cps; 0: no limit */
    int direction;         /* enum dcmf_t140_direction: the WIC's dcsa */
  } t140;
};

/* e2ae TCP (TS 23.334 5.16, 6.2.10.3, 6.2.18; docs/e2ae.md "MSRP and
 * BFCP over TLS"): a media that is a TCP relay, not a session. Leg 0 is
 * the access leg (TLS when |tls|), leg 1 the core leg (plain TCP). The
 * worker's TCP relay host (tcprelay.h) serves it. */
enum dcmf_tcp_setup {
  DCMF_TCP_ACTIVE,  /* the AGW connects to the signalled remote address */
  DCMF_TCP_PASSIVE, /* the AGW listens and accepts the remote's connection */
  DCMF_TCP_MERGE,   /* both at once; the first connection up is kept */
};

enum dcmf_tcp_handling {
  /* Establishment is forwarded: an active leg connects only once the
   * other leg's connection is up. */
  DCMF_TCP_STATELESS,
  /* Each leg is established on its own, at once; setups mirror. */
  DCMF_TCP_STATE_AWARE,
  /* As state-aware, and each leg's setup is chosen on its own. */
  DCMF_TCP_STATE_AWARE_CHANGE,
};

#define DCMF_TCPLEG_URI_MAX 256
#define DCMF_TCPLEG_PATH_MAX 1024
struct dcmf_media_tcpleg {
  /* The bound TCP sockets, owned (a passive or merge leg's listens
   * already); -1 in updates and removes. */
  int fd[2];
  uint16_t port[2]; /* local */
  enum dcmf_tcp_setup setup[2];
  struct sockaddr_storage remote[2]; /* ss_family 0: not signalled */
  enum dcmf_tcp_handling handling;
  int tls;        /* the access leg carries TLS */
  int tls_client; /* our TLS role on it (RFC 8122: the TCP client) */
  struct dcmf_fingerprint_set remote_fp; /* count 0: the handshake waits */
  uint32_t timeout_ms; /* bound on each establishment step */
  /* MSRP application-aware relaying (TS 23.334 5.19.5; tcprelay_msrp.h);
   * 0: the bytes pass unparsed. NUL-terminated; a peer path "" is not
   * known yet (an update may bring it; nothing is relayed until both
   * are known). */
  int msrp_aware;
  char msrp_own_uri[2][DCMF_TCPLEG_URI_MAX];    /* [leg]: the MF's */
  char msrp_peer_path[2][DCMF_TCPLEG_PATH_MAX]; /* [leg]: the far end's */
};

/* e2ae MSRP over a data channel (RFC 8873) <-> MSRP over TCP (TS 23.334
 * 5.19.6; docs/e2ae.md "MSRP over a data channel"): the core leg of an
 * access media whose association kind is DCMF_ASSOC_SCTP. The session is
 * the access leg (ICE-lite, DTLS, SCTP, the negotiated msrp channel
 * |sid|); the service msrp_dc_svc.h joins that channel to this TCP
 * connection through the MSRP relay engine (msrp_relay.h). */
#define DCMF_MSRPLEG_URI_MAX 256
#define DCMF_MSRPLEG_PATH_MAX 1024
struct dcmf_media_msrpleg {
  /* The bound core TCP socket (listening already when |setup| is not
   * active), owned; -1 in updates and removes. */
  int fd;
  uint16_t port; /* local */
  uint16_t sid;  /* the access data channel's SCTP stream */
  enum dcmf_tcp_setup setup;        /* ACTIVE, PASSIVE or MERGE */
  enum dcmf_tcp_handling handling;  /* STATELESS: connect once the DC is up */
  struct sockaddr_storage remote;   /* ss_family 0: not signalled */
  uint32_t timeout_ms;              /* bound on the connection's setup */
  int aware;                        /* 0: agnostic (CEMA both ends) */
  uint32_t peer_max_message_size;   /* the WIC's a=max-message-size */
  /* Aware only (NUL-terminated): the MF's URIs and the far ends' paths. */
  char dc_own_uri[DCMF_MSRPLEG_URI_MAX];
  char tcp_own_uri[DCMF_MSRPLEG_URI_MAX];
  char dc_peer_path[DCMF_MSRPLEG_PATH_MAX];
  char tcp_peer_path[DCMF_MSRPLEG_PATH_MAX];
};

struct dcmf_media_desc {
  struct dcmf_media_key key;
  int fd; /* a dup of the bound UDP socket; -1 in updates */
  uint16_t port;
  char local_ufrag[16];
  char local_pwd[32];
  char local_tls_id[40];
  char remote_ufrag[257]; /* "" when unknown */
  struct sockaddr_storage remote_addr;
  int has_remote_addr;
  /* No remoteIceInfo was signalled: the peer may do no ICE at all, so
   * DTLS from the signalled address is accepted without a check. */
  int remote_no_ice;
  int dtls_server;            /* our role: a=setup:passive */
  enum dcmf_assoc_kind assoc; /* what DTLS carries; SCTP for DC media */
  /* Present the RSA certificate (--dtls-rsa-cert, or the one generated
   * at start) instead of the ECDSA one: T.38 over DTLS, whose RFC 7345
   * suites are ECDHE_RSA and DHE_RSA. */
  int dtls_rsa;
  struct dcmf_fingerprint_set remote_fp; /* count 0 while unknown */
  char remote_tls_id[256];
  uint16_t local_sctp_port, remote_sctp_port;
  size_t max_message_size;           /* ours: maxMessageSize KiB * 1024 */
  struct dcmf_media_stream *streams; /* owned */
  size_t n_streams;
  /* HTTP-proxy mode: mediaProxyConfig "HTTP" with replaceHttpUrl entries
   * (and, for application streams, remoteMdc2Endpoint as the base). */
  int http_proxy;
  struct dcmf_media_route *routes; /* owned */
  size_t n_routes;
  char mdc2_base[128]; /* "http://ADDR:PORT/" or "" */
  /* UDP-proxy mode: one local port per application stream, datagrams to
   * and from the DC application server at |mdc2_addr|. */
  struct sockaddr_storage mdc2_addr;
  struct dcmf_media_mdc2 *mdc2; /* owned, with the fds */
  size_t n_mdc2;
  /* DC relay (dcMedia.dcRelay, either side): application streams are
   * joined stream by stream to the DC media |relay| of the same
   * context. */
  int has_relay;
  struct dcmf_media_key relay;
  /* e2ae: the core RTP/RTCP leg; NULL for data-channel media. */
  struct dcmf_media_rtpleg *rtpleg; /* owned, with its fds */
  /* e2ae TCP relay: the whole media (fd is -1); NULL otherwise. */
  struct dcmf_media_tcpleg *tcpleg; /* owned, with its fds */
  /* e2ae MSRP over a data channel: the core TCP leg; NULL otherwise. */
  struct dcmf_media_msrpleg *msrpleg; /* owned, with its fd */
};

/* What the controller asks of a worker about one DC media. */
enum dcmf_media_op {
  DCMF_MEDIA_OP_ADD,    /* start a session: desc complete, fd attached */
  DCMF_MEDIA_OP_UPDATE, /* changed remote values: desc complete, fd -1 */
  DCMF_MEDIA_OP_REMOVE, /* end the session: only desc.key is set, and
                           rtpleg (no fds) to ask for a RELEASED event */
};

/* Something that happened to a media, for the controller. */
struct dcmf_media_event {
  struct dcmf_media_key key;
  char event[24]; /* DTLS_FAILURE, DC_OPEN, DC_CLOSE, CONSENT_LOST,
                     RELEASED (after a REMOVE with rtpleg), ... */
  /* JSON object text with event specifics; room for the e2ae service's
   * RTP_COUNTERS (485 bytes at most, e2ae_svc.h) and the T.140
   * service's T140_COUNTERS with its RTCP part (about 1150 bytes with
   * every counter at 2^64-1, t140_svc.c). */
  char detail[1280];
  int64_t time_ms;  /* wall clock, ms since the epoch */
};

/* What the AGW shim asks of a worker about one relay (relay.h). */
enum dcmf_relay_op {
  DCMF_RELAY_OP_ADD,    /* start: id, config, ports and both fds */
  DCMF_RELAY_OP_UPDATE, /* new config: id and config; fds -1 */
  DCMF_RELAY_OP_REMOVE, /* close the sockets: only id is read */
};

struct dcmf_relay_desc {
  /* The shim's name of the relay, unique for the process's life; every
   * event about the relay carries it. */
  uint64_t id;
  struct dcmf_relay_config config;  /* checked by the sender */
  uint16_t ports[DCMF_RELAY_SIDES]; /* ADD; reported back when released */
  /* ADD: the bound UDP socket of each side, owned by the message (the
   * worker closes them once the relay ends); -1 otherwise. */
  int fds[DCMF_RELAY_SIDES];
};

enum dcmf_relay_event_kind {
  /* The relay's counters or latched address changed (pushed at most
   * every DCMF_RELAY_PUSH_MS while it relays, and at once on a latch
   * change). */
  DCMF_RELAY_EV_STATE,
  /* The relay's sockets are closed: its ports may be reused. Carries
   * the final counters. The last event of a relay. */
  DCMF_RELAY_EV_RELEASED,
};

/* The most often a busy relay's counters are pushed, in ms. */
#define DCMF_RELAY_PUSH_MS 100

/* What a worker reports of one relay: a snapshot, not a delta, so a
 * lost or late STATE event costs only freshness. */
struct dcmf_relay_event {
  uint64_t id;
  enum dcmf_relay_event_kind kind;
  struct dcmf_relay_counters counters;
  int latched; /* 1: |peer| is the phone's address */
  struct sockaddr_storage peer;
  uint16_t ports[DCMF_RELAY_SIDES]; /* as in the ADD */
};

/* Returns the base URL HTTP on stream |sid| goes to, or NULL when the
 * stream has no upstream (served from the built-in repository, if that
 * is allowed). */
const char *dcmf_media_route_for(const struct dcmf_media_desc *desc,
                                 uint16_t sid);

/* Frees what |desc| owns, closing the MDC2 descriptors (not desc->fd). */
void dcmf_media_desc_free(struct dcmf_media_desc *desc);

/* Returns 1 if both keys name the same media. */
int dcmf_media_key_equal(const struct dcmf_media_key *a,
                         const struct dcmf_media_key *b);

/* Returns a hash of all three ids of |key|, for hash tables
 * (hashmap.h); equal keys hash equal. */
uint64_t dcmf_media_key_hash(const struct dcmf_media_key *key);

#endif
