#!/usr/bin/env python3
"""The peer of e2ae_renew.py: an independent DTLS-SRTP endpoint (the
WIC) written for the test on Debian's pyOpenSSL (python3-openssl: DTLS
over memory BIOs, use_srtp, the RFC 5705 exporter) and pylibsrtp
(python3-pylibsrtp, on libsrtp2). It does ICE as a controlling full
agent (its STUN checks are encoded here from RFC 5389 and RFC 8445, not
from dcmfd's code), DTLS as client or server with a self-signed
certificate on one UDP socket (the same 5-tuple for every association),
SRTP keeping each SSRC's rollover counter (ROC) across re-keying (RFC
3711 section 3.3.1), and writes its SDP offer (RFC 8839, RFC 8842).
"""
import binascii
import ctypes
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

try:
    from cryptography.hazmat.primitives.asymmetric import ec
    from OpenSSL import SSL, crypto
    from dtls_identity import self_signed
    import pylibsrtp
    from pylibsrtp import Policy, Session
except ImportError as e:
    sys.exit(f"e2ae_renew.py: {e}; install python3-openssl and "
             "python3-pylibsrtp and run with /usr/bin/python3")

PT = 111
PEER_SSRC, CORE_SSRC = 0x11aa22bb, 0x5eed0001

# pylibsrtp 0.8 has no call to read or set a stream's ROC; libsrtp2 has
# (srtp_get_stream_roc, srtp_set_stream_roc), reached on the same
# library the binding loaded.
_srtp = ctypes.CDLL("libsrtp2.so.1")
_srtp.srtp_set_stream_roc.argtypes = [ctypes.c_void_p, ctypes.c_uint32,
                                      ctypes.c_uint32]
_srtp.srtp_get_stream_roc.argtypes = [ctypes.c_void_p, ctypes.c_uint32,
                                      ctypes.POINTER(ctypes.c_uint32)]


def _srtp_t(session):
    return int(pylibsrtp.ffi.cast("uintptr_t", session._srtp[0]))


def stream_roc(session, ssrc):
    roc = ctypes.c_uint32()
    rc = _srtp.srtp_get_stream_roc(_srtp_t(session), ssrc, ctypes.byref(roc))
    assert rc == 0, f"no SRTP stream for {ssrc:#x}"
    return roc.value


def poll(cond, what, seconds=5.0, tick=None):
    """Calls tick() and tests cond() every 10 ms until it holds, at most
    |seconds|; raises AssertionError("timed out: what") then."""
    end = time.time() + seconds
    while True:
        if tick:
            tick()
        if cond():
            return
        if time.time() > end:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.01)


# ---- STUN (RFC 5389, RFC 8445 7.1.2) ------------------------------------------

MAGIC = 0x2112A442


def _attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)


def stun_check(txid, username, pwd, nominate, tie_breaker):
    """A Binding request as a controlling agent sends it: USERNAME,
    PRIORITY, ICE-CONTROLLING, USE-CANDIDATE if |nominate|, then
    MESSAGE-INTEGRITY (HMAC-SHA1 keyed with the peer's pwd over the
    message, its length counting the attribute) and FINGERPRINT (CRC-32
    xor 0x5354554e, likewise)."""
    attrs = _attr(0x0006, username.encode())
    attrs += _attr(0x0024, struct.pack("!I", (126 << 24) | (65535 << 8) | 255))
    attrs += _attr(0x802A, struct.pack("!Q", tie_breaker))
    if nominate:
        attrs += _attr(0x0025, b"")

    def head(extra):
        return struct.pack("!HHI", 0x0001, len(attrs) + extra, MAGIC) + txid

    mi = hmac.new(pwd.encode(), head(24) + attrs, hashlib.sha1).digest()
    attrs += _attr(0x0008, mi)
    crc = binascii.crc32(head(8) + attrs) ^ 0x5354554E
    return head(8) + attrs + _attr(0x8028, struct.pack("!I", crc))


def stun_success(pkt, txid, pwd):
    """The XOR-MAPPED-ADDRESS (ip, port) of a Binding success for |txid|
    whose MESSAGE-INTEGRITY verifies with |pwd|, else None."""
    if len(pkt) < 20:
        return None
    t, length, magic = struct.unpack("!HHI", pkt[:8])
    if t != 0x0101 or magic != MAGIC or pkt[8:20] != txid:
        return None
    at, mapped, mi_ok = 20, None, False
    while at + 4 <= 20 + length:
        at_t, at_l = struct.unpack("!HH", pkt[at:at + 4])
        v = pkt[at + 4:at + 4 + at_l]
        if at_t == 0x0020 and at_l == 8:
            port = struct.unpack("!H", v[2:4])[0] ^ (MAGIC >> 16)
            ip = struct.unpack("!I", v[4:8])[0] ^ MAGIC
            mapped = (socket.inet_ntoa(struct.pack("!I", ip)), port)
        elif at_t == 0x0008:
            head = struct.pack("!HHI", t, at - 20 + 24, MAGIC) + txid
            want = hmac.new(pwd.encode(), head + pkt[20:at], hashlib.sha1)
            mi_ok = hmac.compare_digest(want.digest(), v)
        at += 4 + at_l + (-at_l % 4)
    return mapped if mi_ok else None


# ---- RTP ----------------------------------------------------------------------


def rtp(ssrc, seq, tag):
    payload = f"{tag}-{seq:05d}-".encode() * 4
    return struct.pack("!BBHII", 0x80, PT, seq, (seq * 960) & 0xFFFFFFFF,
                       ssrc) + payload


def parse_rtp(b):
    if len(b) < 12 or b[0] >> 6 != 2:
        return None
    return {"ssrc": struct.unpack("!I", b[8:12])[0],
            "seq": struct.unpack("!H", b[2:4])[0], "payload": b[12:]}


# ---- the peer ------------------------------------------------------------------

PROFILES = {  # OpenSSL name: (pylibsrtp profile, key, salt)
    "SRTP_AES128_CM_SHA1_80": (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
    "SRTP_AEAD_AES_128_GCM": (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
}


def new_cert():
    # ECDSA P-256, as WebRTC stacks make: dcmfd as DTLS client offers
    # ECDSA suites only.
    key = crypto.PKey.from_cryptography_key(
        ec.generate_private_key(ec.SECP256R1()))
    return self_signed(key, "e2ae-renew-peer")[0], key


def fingerprint(cert):
    return "sha-256 " + cert.digest("sha256").decode()


def guess_roc(roc, last, seq):
    """The ROC of a packet numbered |seq| after |last| at |roc| (RFC 3711
    Appendix A): the one closer of roc - 1, roc, roc + 1."""
    if last < 32768:
        return roc - 1 if seq - last > 32768 and roc > 0 else roc
    return roc + 1 if last - 32768 > seq else roc


def read_answer(sdp):
    """What we take from the AGW's SDP answer: its host candidate's
    address, its ICE credentials, fingerprint and setup."""
    lines = sdp.split("\r\n")

    def val(name):
        found = [ln[len(name) + 3:] for ln in lines
                 if ln.startswith(f"a={name}:")]
        assert len(found) == 1, f"a={name} in the answer:\n{sdp}"
        return found[0]
    cand = val("candidate").split()
    return {"addr": cand[4], "port": int(cand[5]), "ufrag": val("ice-ufrag"),
            "pwd": val("ice-pwd"), "fingerprint": val("fingerprint"),
            "setup": val("setup"), "lines": lines}


class Peer:
    """The WIC: one UDP socket (the same 5-tuple for every association),
    ICE checks, DTLS over memory BIOs, SRTP with pylibsrtp."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self.ufrag = "pEeR" + os.urandom(2).hex()
        self.pwd = os.urandom(12).hex()
        self.cert, self.key = new_cert()
        self.agw = None
        self.out = self.inb = None   # SRTP sessions of the association
        self.prev_in = None          # the previous inbound, while renewing
        self.received = []           # plain RTP from the AGW
        self.stun, self.dtls_q = [], []
        self.handshaking = False
        self.held = []               # SRTP no key opened during a handshake
        self.refused = 0             # SRTP we could not open
        # (ROC, last sequence number) of each direction's SSRC until the
        # first packet under new keys: libsrtp2 takes a ROC for a new
        # stream (srtp_set_stream_roc), and the packet's own ROC may be
        # one more (RFC 3711 Appendix A).
        self.fresh_out = self.fresh_in = None
        self.last_out_seq = self.last_in_seq = 0
        # A delay line (seconds each way) on what the peer sends and
        # reads: a path with a round trip of 2 x |delay| (loopback has
        # none, and the namespace has no netem).
        self.delay, self.outq, self.inq = 0.0, [], []

    def close(self):
        self.sock.close()

    def offer(self, tls_id, setup="actpass", fp=None):
        """Our SDP offer (or re-offer): one audio line without BUNDLE,
        our one host candidate and ICE credentials (RFC 8839), |fp| or
        our certificate's fingerprint (RFC 8122), |setup| (RFC 4145),
        |tls_id| (RFC 8842), rtcp-mux, Opus, our SSRC."""
        return "\r\n".join([
            "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
            f"m=audio {self.addr[1]} UDP/TLS/RTP/SAVPF {PT}",
            "c=IN IP4 127.0.0.1",
            f"a=candidate:1 1 udp 2130706431 127.0.0.1 {self.addr[1]} typ host",
            f"a=ice-ufrag:{self.ufrag}", f"a=ice-pwd:{self.pwd}",
            f"a=fingerprint:{fp or fingerprint(self.cert)}", f"a=setup:{setup}",
            f"a=tls-id:{tls_id}", "a=mid:0", "a=sendrecv", "a=rtcp-mux",
            f"a=rtpmap:{PT} opus/48000/2", f"a=ssrc:{PEER_SSRC} cname:renew-peer",
            ""])

    def send(self, data):
        if self.delay:
            self.outq.append((time.time() + self.delay, data))
            return
        self.sock.sendto(data, self.agw)

    def pump(self):
        """Reads what arrived from the AGW (RFC 7983 by first byte); with
        |delay|, first lets out and in what the delay line let through."""
        now = time.time()
        while self.outq and self.outq[0][0] <= now:
            self.sock.sendto(self.outq.pop(0)[1], self.agw)
        while True:
            try:
                d, src = self.sock.recvfrom(65536)
            except BlockingIOError:
                break
            if src == self.agw:
                self.inq.append((now + self.delay, d))
        while self.inq and self.inq[0][0] <= now:
            d = self.inq.pop(0)[1]
            if d[0] <= 3:
                self.stun.append(d)
            elif 20 <= d[0] <= 63:
                self.dtls_q.append(d)
            elif 128 <= d[0] <= 191:
                self.take(d)

    def take(self, d):
        if self.fresh_in is not None and len(d) >= 12:
            # the first packet under new keys: its ROC from the last one
            # we opened (RFC 3711 3.3.1)
            roc = guess_roc(*self.fresh_in, struct.unpack("!H", d[2:4])[0])
            _srtp.srtp_set_stream_roc(_srtp_t(self.inb), CORE_SSRC, roc)
        for sess in (self.inb, self.prev_in):
            if sess is None:
                continue
            try:
                pkt = parse_rtp(sess.unprotect(d))
            except pylibsrtp.Error:
                continue
            if sess is self.inb:
                self.fresh_in = None
            self.last_in_seq = pkt["seq"]
            self.received.append(pkt)
            return
        if self.handshaking:
            self.held.append(d)  # maybe under keys not made yet
        else:
            self.refused += 1

    def ice(self, agw, ufrag, pwd):
        """Checks the AGW once, nominating (aggressive nomination)."""
        self.agw = agw
        txid = os.urandom(12)
        self.check = stun_check(txid, f"{ufrag}:{self.ufrag}", pwd, False,
                                int.from_bytes(os.urandom(8), "big"))
        self.send(stun_check(txid, f"{ufrag}:{self.ufrag}", pwd, True,
                             int.from_bytes(os.urandom(8), "big")))
        poll(lambda: any(stun_success(x, txid, pwd) for x in self.stun),
             "the AGW answered our check", 5, self.pump)
        got = [stun_success(x, txid, pwd) for x in self.stun]
        assert self.addr in got, f"XOR-MAPPED-ADDRESS {got}"

    def handshake(self, server, agw_fp, profile, cert=None, key=None,
                  during=None, each=None):
        """A DTLS association on the same socket, offering exactly
        |profile|; |during| (optional) is called once, after the first
        flight arrived (server) or left (client). The old SRTP sessions
        serve until the handshake ends; then new ones keep each SSRC's
        ROC. Returns True, or False if the handshake failed (an alert,
        a certificate refused)."""
        if cert is not None:
            self.cert, self.key = cert, key
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.use_certificate(self.cert)
        ctx.use_privatekey(self.key)
        ctx.set_tlsext_use_srtp(profile.encode())
        # WebRTC's rule (RFC 8122): any certificate, checked against the
        # signalled fingerprint afterwards.
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
                       lambda *a: True)
        conn = SSL.Connection(ctx, None)
        if server:
            conn.set_accept_state()
        else:
            conn.set_connect_state()
        state = {"done": False, "failed": False}

        def step():
            try:
                conn.do_handshake()
                state["done"] = True
            except SSL.WantReadError:
                pass
            except SSL.Error:
                state["failed"] = True
            while True:
                try:
                    data = conn.bio_read(65536)
                except SSL.WantReadError:
                    break
                if data:
                    self.send(data)

        self.handshaking = True
        try:
            if not server:
                step()  # the ClientHello
            last, end = time.time(), time.time() + 8
            while not state["done"] and not state["failed"]:
                self.pump()
                if each is not None:
                    each()
                q, self.dtls_q = self.dtls_q, []
                for d in q:
                    conn.bio_write(d)
                    step()
                if during is not None and (q or not server):
                    fn, during = during, None
                    fn()
                if time.time() > end:
                    raise AssertionError("timed out: DTLS handshake")
                if time.time() - last > 1:  # a retransmission falls due
                    last = time.time()
                    step()
                time.sleep(0.002)
        finally:
            self.handshaking = False
        if state["failed"]:
            self.drain_held()
            return False
        got = conn.get_peer_certificate()
        assert got is not None and fingerprint(got).upper() == agw_fp.upper(), \
            "the AGW's certificate is the one its reply named"
        prof, klen, slen = PROFILES[profile]
        m = conn.export_keying_material(b"EXTRACTOR-dtls_srtp",
                                        2 * (klen + slen))
        ck, sk = m[:klen], m[klen:2 * klen]
        cs, ss = m[2 * klen:2 * klen + slen], m[2 * klen + slen:]
        mine, theirs = (sk + ss, ck + cs) if server else (ck + cs, sk + ss)
        self.rekey(prof, mine, theirs)
        self.dtls = conn
        self.drain_held()
        # From here on only the new keys open the AGW's packets.
        self.prev_in = None
        return True

    def rekey(self, prof, out_key, in_key):
        """New SRTP sessions, each known SSRC at the ROC it had (RFC 3711
        3.3.1): a stream per SSRC, its ROC set before its first packet."""
        old_out, old_in = self.out, self.inb
        new_out, new_in = Session(), Session()
        for sess, key, ssrc, old in ((new_out, out_key, PEER_SSRC, old_out),
                                     (new_in, in_key, CORE_SSRC, old_in)):
            p = Policy(key=key, ssrc_type=Policy.SSRC_SPECIFIC,
                       srtp_profile=prof)
            p.ssrc_value = ssrc
            p.window_size = 1024
            sess.add_stream(p)
        if old_out is not None:
            self.fresh_out = (stream_roc(old_out, PEER_SSRC), self.last_out_seq)
            self.fresh_in = (stream_roc(old_in, CORE_SSRC), self.last_in_seq)
        self.out, self.inb, self.prev_in = new_out, new_in, old_in

    def drain_held(self):
        held, self.held = self.held, []
        for d in held:
            self.take(d)

    def protect(self, seq, tag):
        if self.fresh_out is not None:
            roc = guess_roc(*self.fresh_out, seq)
            assert _srtp.srtp_set_stream_roc(_srtp_t(self.out), PEER_SSRC,
                                             roc) == 0
            self.fresh_out = None
        self.last_out = self.out.protect(rtp(PEER_SSRC, seq, tag))
        self.last_out_seq = seq
        return self.last_out
