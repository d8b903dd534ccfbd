/*
 * rtp_load - the load of tests/bench/e2ae_compare.py: N WebRTC IMS clients
 * (WICs) on the access side of an e2ae media function (DTLS-SRTP) and the
 * IMS core peers on its core side (plain RTP), for dcmfd or rtpengine.
 *
 *   rtp_load [--streams N] [--bind ADDR] [--profile NAME]
 *
 * It is an independent peer: its own STUN encoder (RFC 8489, RFC 8445
 * checks), OpenSSL DTLS 1.2 with use_srtp (RFC 5764), libsrtp2 for
 * protection (the reference library, not dcmfd's engine).
 *
 * Per stream it binds two UDP sockets on ADDR (default 127.0.0.1): the
 * WIC's (toward the server's access port) and the core peer's (toward the
 * server's core port). Dialogue on stdin/stdout, one line each:
 *
 *   out  fingerprint sha-256 AB:CD:..   our certificate (self-signed P-256)
 *   out  ice UFRAG PWD                  our ICE credentials
 *   out  stream I ACCESS_PORT CORE_PORT per stream, I from 0
 *   out  ready
 *   in   peer I AHOST APORT CHOST CPORT ROLE FP SUFRAG SPWD
 *        the server's access and core address of stream I, our DTLS ROLE
 *        (client|server), the server's SHA-256 fingerprint (hex with
 *        colons), its ICE ufrag and pwd ("-" "-": no ICE toward it)
 *   in   connect                        ICE checks then DTLS, all streams
 *   out  connected {json} | error TEXT
 *   in   run DIR RATE WARMUP_MS WINDOW_MS PIDS
 *        DIR a2c (SRTP in, RTP out of the server), c2a (RTP in, SRTP out)
 *        or both; RATE packets/s in each direction over all streams, spread
 *        evenly (stream s's j-th packet at (j*N + s)/RATE), 0 for a closed
 *        loop (each stream keeps at most FLAT_INFLIGHT packets unanswered,
 *        and sends again after FLAT_STALL_NS without progress);
 *        PIDS: comma-separated pids whose utime+stime (/proc/PID/stat)
 *        are read at the start and end of the measured window ("-": none)
 *   out  result {json}: per direction sent, received, lost, duplicates,
 *        the worst stream's loss, SRTP samples opened and failed, rates;
 *        the window, the pids' CPU seconds, consent checks sent and
 *        answered, unexpected packets, send errors, and the packets
 *        received in each 100 ms of the window
 *   in   quit                           (or end of stdin)
 *
 * Traffic: 12-byte RTP header + 160 bytes of payload, one SSRC per stream
 * and direction, consecutive sequence numbers, timestamps +160. Received
 * packets are counted by SSRC and sequence number from the clear header
 * (the sender in this process knows what it sent, which gives 64-bit
 * indexes); every SAMPLE-th SRTP packet the tool receives is also
 * unprotected with libsrtp2 and authentication failures are counted, so
 * wrong keys show. ICE consent (RFC 7675) is refreshed every 5 s per
 * stream while the tool runs. A result counts what was sent in the
 * measured window and what of that arrived (sent, received, lost,
 * duplicates), after a drain of DRAIN_MS with nothing sent.
 *
 * Exits 0 after quit, 1 on a bad argument, a socket or set-up error.
 * Not part of dcmfd; built as BUILD/tests/rtp_load.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <srtp2/srtp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 4096
#define PAYLOAD 160
#define RTP_HDR 12
#define PKT_CAP (RTP_HDR + PAYLOAD + SRTP_MAX_TRAILER_LEN + 16)
#define BATCH 32
#define SAMPLE 64
#define CONSENT_MS 5000
#define DRAIN_MS 300
/* Flat out, a stream keeps at most this many packets unanswered: enough to
 * keep a server busy on loopback, and below the 50 packets queued on a
 * socket after which rtpengine 10.5 stops reading that socket. */
#define FLAT_INFLIGHT 32
#define FLAT_STALL_NS 100000000LL /* 100 ms without progress: send anyway */
#define STUN_MAGIC 0x2112A442u
#define PT 0 /* PCMU */

/* ---- small helpers ------------------------------------------------------ */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("rtp_load: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static uint16_t get16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}
static uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

/* CRC-32 (ISO 3309, as RFC 8489 14.7 asks), table made at start. */
static uint32_t crc_table[256];
static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}
static uint32_t crc32_of(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++)
    c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/* ---- state --------------------------------------------------------------- */

/* One direction of one stream: the sender's side and the receiver's. */
struct dir {
  uint32_t ssrc;
  uint64_t next; /* index of the next packet sent (seq = low 16 bits) */
  uint64_t win_first, win_end; /* measured indexes [first, end) */
  bool in_window, win_closed;
  /* receiver */
  uint64_t highest; /* highest index received + 1 (0: none) */
  int64_t last_progress_ns;
  uint8_t *seen; /* bitmap over [win_first, win_first + seen_cap * 8) */
  size_t seen_cap;
  uint64_t rx_window, dup_window, rx_total, sampled, auth_failed,
      other_failed;
};

struct stream {
  int afd, cfd;
  uint16_t aport, cport;
  struct sockaddr_in apeer, cpeer;
  bool has_peer, ice, client;
  char sufrag[257], spwd[257];
  uint8_t sfp[32];
  SSL *ssl;
  bool dtls_done, dtls_failed;
  /* DTLS datagrams that came before the handshake started (the server's
   * ClientHello when we are the DTLS server). */
  uint8_t early[4][1500];
  size_t early_len[4];
  int n_early;
  srtp_t tx, rx; /* protect what we send, unprotect samples of what we get */
  struct dir a2c, c2a;
  /* ICE */
  uint8_t txid[12];
  bool check_pending, checked;
  int check_tries;
  int64_t check_next_ns, consent_next_ns;
  uint64_t consent_sent, consent_answered;
};

static struct stream *streams;
static int n_streams = 1;
static const char *bind_addr = "127.0.0.1";
static const char *profile_name = "SRTP_AES128_CM_SHA1_80";
static char our_ufrag[17], our_pwd[33];
static uint8_t tiebreaker[8];
static int epfd;
static SSL_CTX *ssl_ctx;
static EVP_PKEY *our_key;
static X509 *our_cert;
static char our_fp[200];
/* Packets received in each 100 ms of the measured window (both
 * directions), so that a stall of the server shows as a gap. */
#define TIMELINE_MAX 1200
static uint32_t timeline[TIMELINE_MAX];
static int64_t timeline_start; /* 0: not counting */
/* Counters outside the streams: packets the tool did not expect. */
static uint64_t stray_stun, stray_dtls, stray_other, send_errors;

/* ---- sockets ------------------------------------------------------------- */

static int udp_socket(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket: %s", strerror(errno));
  int big = 4 << 20;
  /* FORCE works as root (past rmem_max); else the plain one, capped. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  if (inet_pton(AF_INET, bind_addr, &a.sin_addr) != 1)
    die("bad --bind address %s", bind_addr);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
    die("bind: %s", strerror(errno));
  socklen_t len = sizeof(a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  return fd;
}

static void set_peer(struct sockaddr_in *sa, const char *host,
                     const char *port) {
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  long p = strtol(port, NULL, 10);
  if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 || p <= 0 || p > 65535)
    die("bad address %s:%s", host, port);
  sa->sin_port = htons((uint16_t)p);
}

/* ---- certificate --------------------------------------------------------- */

static void fingerprint_hex(X509 *x, char *out, size_t cap) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  X509_digest(x, EVP_sha256(), md, &n);
  size_t o = 0;
  for (unsigned i = 0; i < n && o + 4 < cap; i++)
    o += (size_t)snprintf(out + o, cap - o, i ? ":%02X" : "%02X", md[i]);
}

static void make_cert(void) {
  our_key = EVP_EC_gen("P-256");
  if (!our_key)
    die("EC key generation failed");
  our_cert = X509_new();
  X509_set_version(our_cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(our_cert), (long)(now_ns() & 0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(our_cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(our_cert), 86400L * 30);
  X509_NAME *name = X509_get_subject_name(our_cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)"rtp_load", -1, -1, 0);
  X509_set_issuer_name(our_cert, name);
  X509_set_pubkey(our_cert, our_key);
  if (!X509_sign(our_cert, our_key, EVP_sha256()))
    die("certificate signing failed");
  fingerprint_hex(our_cert, our_fp, sizeof(our_fp));
}

/* The fingerprint is checked after the handshake, against the one given. */
static int accept_any(int ok, X509_STORE_CTX *ctx) {
  (void)ok;
  (void)ctx;
  return 1;
}

static void make_ssl_ctx(void) {
  ssl_ctx = SSL_CTX_new(DTLS_method());
  if (!ssl_ctx)
    die("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ssl_ctx, DTLS1_2_VERSION);
  SSL_CTX_use_certificate(ssl_ctx, our_cert);
  SSL_CTX_use_PrivateKey(ssl_ctx, our_key);
  SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     accept_any);
  /* use_srtp returns 0 on success (OpenSSL's odd convention). */
  if (SSL_CTX_set_tlsext_use_srtp(ssl_ctx, profile_name) != 0)
    die("OpenSSL does not know the SRTP profile %s", profile_name);
  SSL_CTX_set_read_ahead(ssl_ctx, 1);
}

/* ---- STUN (our own encoder: RFC 8489, RFC 8445 7.1.1) -------------------- */

static size_t stun_attr(uint8_t *m, size_t off, uint16_t type, const void *v,
                        size_t len) {
  put16(m + off, type);
  put16(m + off + 2, (uint16_t)len);
  if (len)
    memcpy(m + off + 4, v, len);
  size_t padded = (len + 3) & ~(size_t)3;
  memset(m + off + 4 + len, 0, padded - len);
  return off + 4 + padded;
}

/* A Binding request from the controlling agent to the server's ICE-lite
 * side; |nominate| adds USE-CANDIDATE (the first check), consent
 * refreshes go without. Returns the length. */
static size_t stun_request(struct stream *s, bool nominate, uint8_t *m) {
  RAND_bytes(s->txid, sizeof(s->txid));
  put16(m, 0x0001);
  put32(m + 4, STUN_MAGIC);
  memcpy(m + 8, s->txid, 12);
  char user[600];
  int ul = snprintf(user, sizeof(user), "%s:%s", s->sufrag, our_ufrag);
  size_t off = 20;
  off = stun_attr(m, off, 0x0006, user, (size_t)ul);
  uint8_t prio[4];
  put32(prio, (110u << 24) | (65535u << 8) | 255u); /* peer-reflexive, comp 1 */
  off = stun_attr(m, off, 0x0024, prio, 4);
  off = stun_attr(m, off, 0x802A, tiebreaker, 8);
  if (nominate)
    off = stun_attr(m, off, 0x0025, NULL, 0);
  /* MESSAGE-INTEGRITY: the length covers the attribute itself. */
  put16(m + 2, (uint16_t)(off + 24 - 20));
  unsigned hl = 0;
  uint8_t mac[20];
  HMAC(EVP_sha1(), s->spwd, (int)strlen(s->spwd), m, off, mac, &hl);
  off = stun_attr(m, off, 0x0008, mac, 20);
  put16(m + 2, (uint16_t)(off + 8 - 20));
  uint8_t fp[4];
  put32(fp, crc32_of(m, off) ^ 0x5354554Eu);
  off = stun_attr(m, off, 0x8028, fp, 4);
  return off;
}

/* A success response to our outstanding request, with a MESSAGE-INTEGRITY
 * keyed with the server's pwd? */
static bool stun_response_ok(struct stream *s, uint8_t *m, size_t n) {
  if (n < 20 || get16(m) != 0x0101 || get32(m + 4) != STUN_MAGIC ||
      memcmp(m + 8, s->txid, 12) != 0)
    return false;
  size_t len = get16(m + 2);
  if (len + 20 > n)
    return false;
  size_t off = 20;
  while (off + 4 <= 20 + len) {
    uint16_t t = get16(m + off), l = get16(m + off + 2);
    if (off + 4 + l > 20 + len)
      return false;
    if (t == 0x0008 && l == 20) {
      uint8_t save[2];
      memcpy(save, m + 2, 2);
      put16(m + 2, (uint16_t)(off + 24 - 20));
      uint8_t mac[20];
      unsigned hl = 0;
      HMAC(EVP_sha1(), s->spwd, (int)strlen(s->spwd), m, off, mac, &hl);
      memcpy(m + 2, save, 2);
      return CRYPTO_memcmp(mac, m + off + 4, 20) == 0;
    }
    off += 4 + (((size_t)l + 3) & ~(size_t)3);
  }
  return false;
}

static void stun_send(struct stream *s, bool nominate) {
  uint8_t m[800];
  size_t n = stun_request(s, nominate, m);
  if (send(s->afd, m, n, 0) < 0)
    send_errors++;
  s->check_pending = true;
}

/* ---- SRTP ---------------------------------------------------------------- */

struct prof {
  const char *name;
  size_t key, salt;
  void (*rtp)(srtp_crypto_policy_t *);
  void (*rtcp)(srtp_crypto_policy_t *);
};
static const struct prof profs[] = {
    /* AES_CM_128_HMAC_SHA1_80 is libsrtp2's default (a macro there). */
    {"SRTP_AES128_CM_SHA1_80", 16, 14, srtp_crypto_policy_set_rtp_default,
     srtp_crypto_policy_set_rtcp_default},
    {"SRTP_AES128_CM_SHA1_32", 16, 14,
     srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32,
     srtp_crypto_policy_set_rtcp_default},
    {"SRTP_AEAD_AES_128_GCM", 16, 12, srtp_crypto_policy_set_aes_gcm_128_16_auth,
     srtp_crypto_policy_set_aes_gcm_128_16_auth},
    {"SRTP_AEAD_AES_256_GCM", 32, 12, srtp_crypto_policy_set_aes_gcm_256_16_auth,
     srtp_crypto_policy_set_aes_gcm_256_16_auth},
};

static const struct prof *find_prof(const char *name) {
  for (size_t i = 0; i < sizeof(profs) / sizeof(profs[0]); i++)
    if (strcmp(profs[i].name, name) == 0)
      return &profs[i];
  return NULL;
}

static srtp_t make_srtp(const struct prof *p, const uint8_t *key,
                        const uint8_t *salt, bool outbound) {
  uint8_t master[64];
  memcpy(master, key, p->key);
  memcpy(master + p->key, salt, p->salt);
  srtp_policy_t pol;
  memset(&pol, 0, sizeof(pol));
  p->rtp(&pol.rtp);
  p->rtcp(&pol.rtcp);
  pol.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
  pol.key = master;
  pol.window_size = 1024;
  srtp_t s = NULL;
  if (srtp_create(&s, &pol) != srtp_err_status_ok)
    die("srtp_create failed");
  return s;
}

/* RFC 5764 4.2: client key, server key, client salt, server salt. */
static bool key_stream(struct stream *s) {
  SRTP_PROTECTION_PROFILE *sel = SSL_get_selected_srtp_profile(s->ssl);
  if (!sel)
    return false;
  const struct prof *p = find_prof(sel->name);
  if (!p)
    return false;
  uint8_t m[128];
  size_t total = 2 * (p->key + p->salt);
  if (SSL_export_keying_material(s->ssl, m, total, "EXTRACTOR-dtls_srtp", 19,
                                 NULL, 0, 0) != 1)
    return false;
  const uint8_t *ck = m, *sk = m + p->key, *cs = m + 2 * p->key,
                *ss = m + 2 * p->key + p->salt;
  s->tx = make_srtp(p, s->client ? ck : sk, s->client ? cs : ss, true);
  s->rx = make_srtp(p, s->client ? sk : ck, s->client ? ss : cs, false);
  return true;
}

/* ---- DTLS ---------------------------------------------------------------- */

/* The handshake reads from a memory BIO that the receive path fills with
 * each DTLS datagram (so one reader owns the socket, and a ClientHello
 * that comes before the handshake starts is kept), and writes through a
 * datagram BIO on the connected socket, one datagram per write. */
static void dtls_begin(struct stream *s) {
  s->ssl = SSL_new(ssl_ctx);
  BIO *rbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio, -1);
  BIO *wbio = BIO_new_dgram(s->afd, BIO_NOCLOSE);
  BIO_ctrl(wbio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &s->apeer);
  SSL_set_bio(s->ssl, rbio, wbio);
  SSL_set_options(s->ssl, SSL_OP_NO_QUERY_MTU);
  DTLS_set_link_mtu(s->ssl, 1200);
  if (s->client)
    SSL_set_connect_state(s->ssl);
  else
    SSL_set_accept_state(s->ssl);
  /* Only a DTLS server takes what came early (the peer's ClientHello): a
   * client has nothing to expect before its own ClientHello, and what a
   * server sent while it still thought itself the client (rtpengine starts
   * as DTLS client on an actpass offer, before its answer says passive)
   * would fail our handshake. */
  for (int i = 0; !s->client && i < s->n_early; i++)
    BIO_write(rbio, s->early[i], (int)s->early_len[i]);
  stray_dtls += s->client ? (uint64_t)s->n_early : 0;
  s->n_early = 0;
}

/* One step of the handshake; returns 1 when done, 0 while going on, -1 on
 * failure (printed). */
static int dtls_step(struct stream *s, int idx) {
  int r = SSL_do_handshake(s->ssl);
  if (r == 1) {
    X509 *peer = SSL_get0_peer_certificate(s->ssl);
    if (!peer) {
      printf("error stream %d: no peer certificate\n", idx);
      return -1;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    X509_digest(peer, EVP_sha256(), md, &n);
    if (n != 32 || memcmp(md, s->sfp, 32) != 0) {
      printf("error stream %d: the server's certificate does not match its "
             "fingerprint\n",
             idx);
      return -1;
    }
    if (!key_stream(s)) {
      printf("error stream %d: no SRTP profile negotiated or keys not "
             "exported\n",
             idx);
      return -1;
    }
    s->dtls_done = true;
    return 1;
  }
  int e = SSL_get_error(s->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  unsigned long code = ERR_get_error();
  printf("error stream %d: DTLS handshake failed: %s\n", idx,
         code ? ERR_error_string(code, NULL) : "(no OpenSSL error)");
  return -1;
}

static bool parse_fp(const char *hex, uint8_t out[32]) {
  size_t n = 0;
  for (const char *p = hex; *p && n < 32;) {
    unsigned v;
    if (sscanf(p, "%2x", &v) != 1)
      return false;
    out[n++] = (uint8_t)v;
    p += 2;
    if (*p == ':')
      p++;
  }
  return n == 32;
}

/* ---- /proc CPU ------------------------------------------------------------- */

/* utime + stime (clock ticks) summed over the pids in |list|. */
static long long cpu_ticks(const char *list) {
  if (!list || strcmp(list, "-") == 0)
    return 0;
  long long sum = 0;
  char buf[2048];
  const char *p = list;
  while (*p) {
    long pid = strtol(p, (char **)&p, 10);
    if (*p == ',')
      p++;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the command name (which may hold spaces): state is
     * field 3, utime 14, stime 15. */
    char *q = strrchr(buf, ')');
    if (!q)
      continue;
    unsigned long long ut = 0, st = 0;
    if (sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) == 2)
      sum += (long long)(ut + st);
  }
  return sum;
}

/* ---- receive ------------------------------------------------------------- */

/* The 64-bit index of a received 16-bit sequence number: the nearest one
 * at or below what the sender (in this process) sent last. */
static uint64_t index_of(const struct dir *d, uint16_t seq) {
  if (d->next == 0)
    return UINT64_MAX;
  uint64_t last = d->next - 1;
  uint16_t back = (uint16_t)((uint16_t)last - seq);
  if (back > last)
    return UINT64_MAX;
  return last - back;
}

static void count_rtp(struct dir *d, const uint8_t *p, size_t n) {
  if (n < RTP_HDR || (p[0] >> 6) != 2 || get32(p + 8) != d->ssrc) {
    stray_other++;
    return;
  }
  uint64_t i = index_of(d, get16(p + 2));
  if (i == UINT64_MAX) {
    stray_other++;
    return;
  }
  d->rx_total++;
  if (i + 1 > d->highest) {
    d->highest = i + 1;
    d->last_progress_ns = now_ns();
  }
  if (!d->in_window && !d->win_closed)
    return;
  if (i < d->win_first || (d->win_closed && i >= d->win_end))
    return;
  uint64_t bit = i - d->win_first;
  if (bit / 8 >= d->seen_cap) {
    size_t cap = d->seen_cap ? d->seen_cap : 1024;
    while (bit / 8 >= cap)
      cap *= 2;
    d->seen = realloc(d->seen, cap);
    if (!d->seen)
      die("out of memory");
    memset(d->seen + d->seen_cap, 0, cap - d->seen_cap);
    d->seen_cap = cap;
  }
  uint8_t mask = (uint8_t)(1u << (bit % 8));
  if (d->seen[bit / 8] & mask) {
    d->dup_window++;
  } else {
    d->seen[bit / 8] |= mask;
    d->rx_window++;
    if (timeline_start) {
      int64_t b = (now_ns() - timeline_start) / 100000000LL;
      if (b >= 0 && b < TIMELINE_MAX)
        timeline[b]++;
    }
  }
}

static void on_access_packet(struct stream *s, uint8_t *p, size_t n) {
  if (n == 0)
    return;
  if (p[0] < 4) {
    if (s->check_pending && stun_response_ok(s, p, n)) {
      s->check_pending = false;
      if (s->checked)
        s->consent_answered++;
      s->checked = true;
    } else {
      stray_stun++;
    }
    return;
  }
  if (p[0] >= 20 && p[0] < 64) {
    if (!s->ssl) {
      if (s->n_early < 4 && n <= sizeof(s->early[0])) {
        memcpy(s->early[s->n_early], p, n);
        s->early_len[s->n_early++] = n;
      } else {
        stray_dtls++;
      }
      return;
    }
    BIO_write(SSL_get_rbio(s->ssl), p, (int)n);
    if (!s->dtls_done) {
      if (dtls_step(s, (int)(s - streams)) < 0)
        s->dtls_failed = true;
    } else {
      /* A retransmitted last flight of the peer: OpenSSL answers it. */
      uint8_t junk[2048];
      (void)SSL_read(s->ssl, junk, sizeof(junk));
      stray_dtls++;
    }
    return;
  }
  if (p[0] >= 128 && p[0] < 192 && n >= RTP_HDR) {
    if (p[1] >= 192 && p[1] <= 223) { /* RTCP (RFC 5761 4): not ours */
      stray_other++;
      return;
    }
    struct dir *d = &s->c2a;
    count_rtp(d, p, n);
    /* Every SAMPLE-th packet: open it with the reference library. */
    if (s->rx && get32(p + 8) == d->ssrc && get16(p + 2) % SAMPLE == 0) {
      uint8_t copy[2048] __attribute__((aligned(16)));
      if (n <= sizeof(copy)) {
        memcpy(copy, p, n);
        int len = (int)n;
        srtp_err_status_t st = srtp_unprotect(s->rx, copy, &len);
        d->sampled++;
        if (st == srtp_err_status_auth_fail)
          d->auth_failed++;
        else if (st != srtp_err_status_ok)
          d->other_failed++;
        else if (len != RTP_HDR + PAYLOAD)
          d->other_failed++;
      }
    }
    return;
  }
  stray_other++;
}

static void on_core_packet(struct stream *s, uint8_t *p, size_t n) {
  if (n >= RTP_HDR && p[0] >= 128 && p[0] < 192 &&
      !(p[1] >= 192 && p[1] <= 223)) {
    count_rtp(&s->a2c, p, n);
    return;
  }
  stray_other++;
}

static uint8_t rbuf[BATCH][2048] __attribute__((aligned(16)));

/* Reads everything waiting on |fd|. */
static void drain_fd(int tag) {
  bool core = tag & 1;
  struct stream *s = &streams[tag >> 1];
  int fd = core ? s->cfd : s->afd;
  for (int round = 0; round < 64; round++) {
    struct mmsghdr mh[BATCH];
    struct iovec iov[BATCH];
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = rbuf[i];
      iov[i].iov_len = sizeof(rbuf[i]);
      memset(&mh[i], 0, sizeof(mh[i]));
      mh[i].msg_hdr.msg_iov = &iov[i];
      mh[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, mh, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
      return;
    for (int i = 0; i < n; i++) {
      if (core)
        on_core_packet(s, rbuf[i], mh[i].msg_len);
      else
        on_access_packet(s, rbuf[i], mh[i].msg_len);
    }
    if (n < BATCH)
      return;
  }
}

/* One epoll wait of at most |timeout_ms|; returns true if stdin is
 * readable. */
static bool poll_once(int timeout_ms) {
  struct epoll_event ev[64];
  int n = epoll_wait(epfd, ev, 64, timeout_ms);
  bool in = false;
  for (int i = 0; i < n; i++) {
    if (ev[i].data.u64 == UINT64_MAX)
      in = true;
    else
      drain_fd((int)ev[i].data.u64);
  }
  return in;
}

static void consent_tick(int64_t t) {
  for (int i = 0; i < n_streams; i++) {
    struct stream *s = &streams[i];
    if (!s->ice || !s->checked || t < s->consent_next_ns)
      continue;
    stun_send(s, false);
    s->consent_sent++;
    s->consent_next_ns = t + CONSENT_MS * 1000000LL;
  }
}

/* ---- connect ------------------------------------------------------------- */

static void do_connect(void) {
  int64_t start = now_ns(), deadline = start + 30000000000LL;
  /* ICE first: a check with USE-CANDIDATE from each WIC, every 100 ms
   * until answered (RFC 8445's pacing is for many pairs; one pair here). */
  for (;;) {
    int64_t t = now_ns();
    int waiting = 0;
    for (int i = 0; i < n_streams; i++) {
      struct stream *s = &streams[i];
      if (!s->ice || s->checked)
        continue;
      waiting++;
      if (t >= s->check_next_ns) {
        if (++s->check_tries > 100) {
          printf("error stream %d: no answer to 100 ICE checks\n", i);
          fflush(stdout);
          exit(1);
        }
        stun_send(s, true);
        s->check_next_ns = t + 100000000LL;
      }
    }
    if (!waiting)
      break;
    if (t > deadline) {
      printf("error ICE checks timed out\n");
      fflush(stdout);
      exit(1);
    }
    poll_once(5);
  }
  int64_t ice_done = now_ns();
  for (int i = 0; i < n_streams; i++) {
    streams[i].consent_next_ns = ice_done + CONSENT_MS * 1000000LL;
    dtls_begin(&streams[i]);
  }
  /* DTLS on every stream at once, in steps driven by the receive path,
   * with OpenSSL's retransmission timers. */
  for (int i = 0; i < n_streams; i++)
    if (dtls_step(&streams[i], i) < 0)
      streams[i].dtls_failed = true;
  for (;;) {
    int done = 0;
    for (int i = 0; i < n_streams; i++) {
      struct stream *s = &streams[i];
      if (s->dtls_failed) {
        fflush(stdout);
        exit(1);
      }
      if (s->dtls_done) {
        done++;
        continue;
      }
      struct timeval tv;
      if (DTLSv1_get_timeout(s->ssl, &tv) && tv.tv_sec == 0 && tv.tv_usec == 0)
        DTLSv1_handle_timeout(s->ssl);
    }
    if (done == n_streams)
      break;
    if (now_ns() > deadline) {
      printf("error DTLS timed out: %d of %d streams connected\n", done,
             n_streams);
      fflush(stdout);
      exit(1);
    }
    poll_once(5);
  }
  int64_t end = now_ns();
  SRTP_PROTECTION_PROFILE *sel = SSL_get_selected_srtp_profile(streams[0].ssl);
  printf("connected {\"streams\":%d,\"ice_ms\":%.1f,\"dtls_ms\":%.1f,"
         "\"profile\":\"%s\"}\n",
         n_streams, (double)(ice_done - start) / 1e6,
         (double)(end - ice_done) / 1e6, sel ? sel->name : "?");
  fflush(stdout);
}

/* ---- send ---------------------------------------------------------------- */

static uint8_t sbuf[BATCH][PKT_CAP] __attribute__((aligned(16)));

/* Sends |count| (at most BATCH) packets of direction |a2c| on stream |s|;
 * returns how many left. */
static int send_batch(struct stream *s, bool a2c, int count) {
  struct dir *d = a2c ? &s->a2c : &s->c2a;
  struct mmsghdr mh[BATCH];
  struct iovec iov[BATCH];
  for (int i = 0; i < count; i++) {
    uint8_t *p = sbuf[i];
    uint64_t idx = d->next + (uint64_t)i;
    p[0] = 0x80;
    p[1] = PT;
    put16(p + 2, (uint16_t)idx);
    put32(p + 4, (uint32_t)(idx * 160));
    put32(p + 8, d->ssrc);
    memset(p + RTP_HDR, (int)(idx & 0xff), PAYLOAD);
    int len = RTP_HDR + PAYLOAD;
    if (a2c && srtp_protect(s->tx, p, &len) != srtp_err_status_ok)
      die("srtp_protect failed");
    iov[i].iov_base = p;
    iov[i].iov_len = (size_t)len;
    memset(&mh[i], 0, sizeof(mh[i]));
    mh[i].msg_hdr.msg_iov = &iov[i];
    mh[i].msg_hdr.msg_iovlen = 1;
  }
  int n = sendmmsg(a2c ? s->afd : s->cfd, mh, (unsigned)count, MSG_DONTWAIT);
  if (n < 0) {
    send_errors++;
    n = 0;
  }
  if (n < count && a2c) {
    /* libsrtp2 refuses to protect a sequence number twice: the unsent
     * ones are skipped, which the receiver sees as never sent. */
    d->next += (uint64_t)count;
    send_errors += (uint64_t)(count - n);
    return n;
  }
  d->next += (uint64_t)n;
  return n;
}

/* ---- run ----------------------------------------------------------------- */

static void dir_reset(struct dir *d) {
  d->in_window = d->win_closed = false;
  d->win_first = d->win_end = 0;
  d->rx_window = d->dup_window = 0;
  if (d->seen)
    memset(d->seen, 0, d->seen_cap);
}

struct totals {
  uint64_t sent, rx, dup, lost, sampled, auth_failed, other_failed;
  uint64_t worst_lost;
};

static void sum_dir(struct totals *t, const struct dir *d) {
  uint64_t sent = d->win_end - d->win_first;
  uint64_t lost = sent > d->rx_window ? sent - d->rx_window : 0;
  t->sent += sent;
  t->rx += d->rx_window;
  t->dup += d->dup_window;
  t->lost += lost;
  t->sampled += d->sampled;
  t->auth_failed += d->auth_failed;
  t->other_failed += d->other_failed;
  if (lost > t->worst_lost)
    t->worst_lost = lost;
}

static void print_dir(const char *name, const struct totals *t, double secs) {
  printf("\"%s\":{\"sent\":%" PRIu64 ",\"received\":%" PRIu64
         ",\"lost\":%" PRIu64 ",\"duplicates\":%" PRIu64
         ",\"worst_stream_lost\":%" PRIu64 ",\"sampled\":%" PRIu64
         ",\"auth_failed\":%" PRIu64 ",\"other_failed\":%" PRIu64
         ",\"sent_pps\":%.1f,\"received_pps\":%.1f}",
         name, t->sent, t->rx, t->lost, t->dup, t->worst_lost, t->sampled,
         t->auth_failed, t->other_failed, (double)t->sent / secs,
         (double)t->rx / secs);
}

static void do_run(const char *dirname, double rate, long warm_ms,
                   long window_ms, const char *pids) {
  bool a2c = strcmp(dirname, "a2c") == 0 || strcmp(dirname, "both") == 0;
  bool c2a = strcmp(dirname, "c2a") == 0 || strcmp(dirname, "both") == 0;
  if (!a2c && !c2a) {
    printf("error bad direction %s\n", dirname);
    fflush(stdout);
    return;
  }
  int64_t t_start = now_ns();
  for (int i = 0; i < n_streams; i++) {
    dir_reset(&streams[i].a2c);
    dir_reset(&streams[i].c2a);
    streams[i].a2c.last_progress_ns = streams[i].c2a.last_progress_ns = t_start;
    streams[i].a2c.sampled = streams[i].a2c.auth_failed = 0;
    streams[i].c2a.sampled = streams[i].c2a.auth_failed = 0;
    streams[i].a2c.other_failed = streams[i].c2a.other_failed = 0;
  }
  uint64_t stray0[4] = {stray_stun, stray_dtls, stray_other, send_errors};
  int64_t t0 = now_ns();
  int64_t win_start = t0 + warm_ms * 1000000LL;
  int64_t win_stop = win_start + window_ms * 1000000LL;
  /* Each stream's packets sent so far in this run, per direction. */
  uint64_t *count = calloc((size_t)n_streams * 2, sizeof(uint64_t));
  bool opened = false;
  long long cpu0 = 0, cpu1 = 0;
  int64_t real_start = 0, real_stop = 0;
  double per = rate > 0 ? (double)n_streams / rate * 1e9 : 0; /* ns */
  for (;;) {
    int64_t t = now_ns();
    if (!opened && t >= win_start) {
      cpu0 = cpu_ticks(pids);
      real_start = now_ns();
      memset(timeline, 0, sizeof(timeline));
      timeline_start = real_start;
      for (int i = 0; i < n_streams; i++) {
        struct dir *ds[2] = {&streams[i].a2c, &streams[i].c2a};
        for (int k = 0; k < 2; k++) {
          ds[k]->win_first = ds[k]->next;
          ds[k]->in_window = true;
        }
      }
      opened = true;
    }
    if (t >= win_stop)
      break;
    int64_t next_due = t + 1000000LL;
    for (int i = 0; i < n_streams; i++) {
      struct stream *s = &streams[i];
      for (int k = 0; k < 2; k++) {
        bool isa = k == 0;
        if ((isa && !a2c) || (!isa && !c2a))
          continue;
        struct dir *d = isa ? &s->a2c : &s->c2a;
        uint64_t *c = &count[i * 2 + k];
        int want;
        if (rate > 0) {
          /* Packet j of stream i is due at t0 + (j + i/N) * per. */
          double offset = (double)i / n_streams * per;
          double el = (double)(t - t0) - offset;
          uint64_t due = el < 0 ? 0 : (uint64_t)(el / per) + 1;
          want = due > *c ? (int)(due - *c > BATCH ? BATCH : due - *c) : 0;
          int64_t nd = t0 + (int64_t)(offset + (double)(*c + (uint64_t)want) * per);
          if (nd < next_due)
            next_due = nd;
        } else {
          uint64_t inflight = d->next - d->highest;
          if (inflight < FLAT_INFLIGHT)
            want = (int)(FLAT_INFLIGHT - inflight > BATCH
                             ? BATCH
                             : FLAT_INFLIGHT - inflight);
          else if (t - d->last_progress_ns > FLAT_STALL_NS) {
            /* Lost packets would stall the window for good. */
            want = (int)(FLAT_INFLIGHT < BATCH ? FLAT_INFLIGHT : BATCH);
            d->last_progress_ns = t;
          } else
            want = 0;
          next_due = t;
        }
        if (want > 0)
          *c += (uint64_t)send_batch(s, isa, want);
      }
    }
    consent_tick(t);
    int64_t wait_ns = next_due - now_ns();
    if (wait_ns < 0)
      wait_ns = 0;
    if (win_stop - t < wait_ns)
      wait_ns = win_stop - t;
    poll_once((int)(wait_ns / 1000000LL));
  }
  cpu1 = cpu_ticks(pids);
  real_stop = now_ns();
  for (int i = 0; i < n_streams; i++) {
    struct dir *ds[2] = {&streams[i].a2c, &streams[i].c2a};
    for (int k = 0; k < 2; k++) {
      ds[k]->win_end = ds[k]->next;
      ds[k]->in_window = false;
      ds[k]->win_closed = true;
    }
  }
  /* Drain: what is still on its way is counted. */
  int64_t drain_end = now_ns() + DRAIN_MS * 1000000LL;
  while (now_ns() < drain_end)
    poll_once(5);
  timeline_start = 0;
  free(count);
  struct totals ta, tc;
  memset(&ta, 0, sizeof(ta));
  memset(&tc, 0, sizeof(tc));
  for (int i = 0; i < n_streams; i++) {
    sum_dir(&ta, &streams[i].a2c);
    sum_dir(&tc, &streams[i].c2a);
  }
  uint64_t consent_sent = 0, consent_answered = 0;
  for (int i = 0; i < n_streams; i++) {
    consent_sent += streams[i].consent_sent;
    consent_answered += streams[i].consent_answered;
  }
  double secs = (double)(real_stop - real_start) / 1e9;
  long hz = sysconf(_SC_CLK_TCK);
  printf("result {\"dir\":\"%s\",\"rate\":%.1f,\"streams\":%d,"
         "\"window_s\":%.3f,\"cpu_s\":%.3f,",
         dirname, rate, n_streams, secs,
         (double)(cpu1 - cpu0) / (double)(hz > 0 ? hz : 100));
  print_dir("a2c", &ta, secs);
  putchar(',');
  print_dir("c2a", &tc, secs);
  printf(",\"consent_sent\":%" PRIu64 ",\"consent_answered\":%" PRIu64
         ",\"stray_stun\":%" PRIu64 ",\"stray_dtls\":%" PRIu64
         ",\"stray_other\":%" PRIu64 ",\"send_errors\":%" PRIu64
         ",\"timeline_100ms\":[",
         consent_sent, consent_answered, stray_stun - stray0[0],
         stray_dtls - stray0[1], stray_other - stray0[2],
         send_errors - stray0[3]);
  int nb = (int)((real_stop - real_start + DRAIN_MS * 1000000LL) / 100000000LL) + 1;
  for (int b = 0; b < nb && b < TIMELINE_MAX; b++)
    printf(b ? ",%u" : "%u", timeline[b]);
  printf("]}\n");
  fflush(stdout);
}

/* ---- main ---------------------------------------------------------------- */

static void rand_text(char *out, size_t n) {
  static const char al[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
  uint8_t r[64];
  RAND_bytes(r, (int)n);
  for (size_t i = 0; i < n; i++)
    out[i] = al[r[i] % 64];
  out[n] = 0;
}

/* Reads one line from stdin while keeping consent going. */
static char *read_line(char *buf, size_t cap) {
  for (;;) {
    consent_tick(now_ns());
    if (poll_once(100)) {
      if (!fgets(buf, (int)cap, stdin))
        return NULL;
      return buf;
    }
  }
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--streams") == 0 && i + 1 < argc)
      n_streams = atoi(argv[++i]);
    else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
      bind_addr = argv[++i];
    else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc)
      profile_name = argv[++i];
    else
      die("usage: rtp_load [--streams N] [--bind ADDR] [--profile NAME]");
  }
  if (n_streams < 1 || n_streams > MAX_STREAMS)
    die("--streams must be 1..%d", MAX_STREAMS);
  if (!find_prof(profile_name))
    die("unknown profile %s", profile_name);
  /* stdin is read line by line through stdio, polled through epoll: a
   * line already buffered by stdio would not wake epoll, so no buffer. */
  setvbuf(stdin, NULL, _IONBF, 0);
  crc_init();
  if (srtp_init() != srtp_err_status_ok)
    die("srtp_init failed");
  make_cert();
  make_ssl_ctx();
  rand_text(our_ufrag, 16);
  rand_text(our_pwd, 32);
  RAND_bytes(tiebreaker, 8);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
  streams = calloc((size_t)n_streams, sizeof(*streams));
  printf("fingerprint sha-256 %s\n", our_fp);
  printf("ice %s %s\n", our_ufrag, our_pwd);
  for (int i = 0; i < n_streams; i++) {
    struct stream *s = &streams[i];
    s->afd = udp_socket(&s->aport);
    s->cfd = udp_socket(&s->cport);
    s->a2c.ssrc = 0x10000000u + (uint32_t)i * 2;
    s->c2a.ssrc = 0x20000000u + (uint32_t)i * 2 + 1;
    /* Start each stream at a different point of the 16-bit space, and
     * near a wrap for some, as real streams do. */
    s->a2c.next = 1000u + (uint64_t)i * 977u % 60000u;
    s->c2a.next = 2000u + (uint64_t)i * 1231u % 60000u;
    s->a2c.highest = s->a2c.next;
    s->c2a.highest = s->c2a.next;
    printf("stream %d %u %u\n", i, s->aport, s->cport);
  }
  printf("ready\n");
  fflush(stdout);
  char line[2048];
  while (read_line(line, sizeof(line))) {
    char cmd[32] = "";
    sscanf(line, "%31s", cmd);
    if (strcmp(cmd, "peer") == 0) {
      int i;
      char ah[64], ap[16], ch[64], cp[16], role[16], fp[200], uf[257],
          pw[257];
      if (sscanf(line, "peer %d %63s %15s %63s %15s %15s %199s %256s %256s",
                 &i, ah, ap, ch, cp, role, fp, uf, pw) != 9 ||
          i < 0 || i >= n_streams)
        die("bad peer line: %s", line);
      struct stream *s = &streams[i];
      set_peer(&s->apeer, ah, ap);
      set_peer(&s->cpeer, ch, cp);
      if (connect(s->afd, (struct sockaddr *)&s->apeer, sizeof(s->apeer)) ||
          connect(s->cfd, (struct sockaddr *)&s->cpeer, sizeof(s->cpeer)))
        die("connect: %s", strerror(errno));
      s->client = strcmp(role, "client") == 0;
      if (!parse_fp(fp, s->sfp))
        die("bad fingerprint %s", fp);
      s->ice = strcmp(uf, "-") != 0;
      snprintf(s->sufrag, sizeof(s->sufrag), "%s", uf);
      snprintf(s->spwd, sizeof(s->spwd), "%s", pw);
      s->has_peer = true;
      struct epoll_event e1 = {.events = EPOLLIN, .data.u64 = (uint64_t)i << 1};
      struct epoll_event e2 = {.events = EPOLLIN,
                               .data.u64 = ((uint64_t)i << 1) | 1};
      epoll_ctl(epfd, EPOLL_CTL_ADD, s->afd, &e1);
      epoll_ctl(epfd, EPOLL_CTL_ADD, s->cfd, &e2);
    } else if (strcmp(cmd, "connect") == 0) {
      for (int i = 0; i < n_streams; i++)
        if (!streams[i].has_peer)
          die("stream %d has no peer line", i);
      do_connect();
    } else if (strcmp(cmd, "run") == 0) {
      char dir[16], pids[1024];
      double rate;
      long warm, win;
      if (sscanf(line, "run %15s %lf %ld %ld %1023s", dir, &rate, &warm, &win,
                 pids) != 5)
        die("bad run line: %s", line);
      do_run(dir, rate, warm, win, pids);
    } else if (strcmp(cmd, "quit") == 0) {
      break;
    } else if (cmd[0]) {
      die("unknown command %s", cmd);
    }
  }
  for (int i = 0; i < n_streams; i++) {
    struct stream *s = &streams[i];
    if (s->ssl) {
      SSL_shutdown(s->ssl);
      SSL_free(s->ssl);
    }
    if (s->tx)
      srtp_dealloc(s->tx);
    if (s->rx)
      srtp_dealloc(s->rx);
    free(s->a2c.seen);
    free(s->c2a.seen);
    close(s->afd);
    close(s->cfd);
  }
  free(streams);
  SSL_CTX_free(ssl_ctx);
  X509_free(our_cert);
  EVP_PKEY_free(our_key);
  srtp_shutdown();
  return 0;
}
