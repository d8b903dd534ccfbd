#!/usr/bin/env python3
"""T.38 fax: UDPTL over DTLS (RFC 7345, the UE) <-> UDPTL over UDP (the
IMS core) through dcmfd's /agw/v1 contexts (issue 13 item 1;
docs/e2ae.md "T.38 fax").

    e2ae_t38.py DCMFD [SUBSTRING...]

The UE is `openssl s_client -dtls1_2` (the UE active: the AGW is the
DTLS server) or `openssl s_server -dtls1_2` (the UE passive: the AGW
establishes), with a self-signed certificate pinned by its fingerprint;
each UDPTL packet is written to its stdin alone, after the previous one
arrived, so each is one SSL_write and one DTLS record. The core is a
plain UDP socket here. The UDPTL packets are built by the encoder below,
written from ITU-T T.38 (clause 9.1 and Annex A ASN.1, aligned PER:
UDPTLPacket with seq-number, primary-ifp-packet as an open type, and
error-recovery by secondary IFP packets or by FEC), and the core leg's
capture is decoded with tshark's T.38 dissector (`-d udp.port==N,t38`):
no malformed frame, no expert error, the sequence numbers sent. The
access leg's capture shows each UDPTL packet as one DTLS
application_data record of its own datagram, and the suite the RFC
mandates. One dcmfd on 127.0.0.1 (meson runs this under in-netns) serves
every case and is stopped with SIGTERM. Prints "ok - NAME" or
"not ok - NAME: REASON"; exits 1 on failure. Every wait is a bounded
poll.
"""
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2ae_tcp_lib import (Cases, DcmfAlg, Dcmfd, Proc,  # noqa: E402
                          assert_sdp_has, assert_sdp_lacks, fingerprint,
                          poll)
from tshark_check import Capture  # noqa: E402

DCMFD = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="e2ae_t38.")
ALG = DcmfAlg(DCMFD, TMP)  # the IMS-ALG: SDP -> /agw/v1 requests and back
TSHARK = shutil.which("tshark") is not None

# ---- UDPTL (ITU-T T.38 clause 9.1 / Annex A, aligned PER) ------------------------


def per_len(n):
    """An unconstrained length determinant (X.691 10.9): one octet below
    128, else two with the top bit set (up to 16383)."""
    assert n < 16384
    return bytes([n]) if n < 128 else struct.pack("!H", 0x8000 | n)


def ifp_indicator(ind):
    """IFPPacket: no data-field (bit 8 = 0), type-of-msg t30-indicator
    (choice bit 0), the extension bit 0 and the 4-bit root value."""
    assert 0 <= ind <= 15
    return bytes([ind << 1])


def ifp_data(dtype, fields):
    """IFPPacket with a data-field: type-of-msg t30-data (choice bit 1)
    |dtype| (v21 = 0), then the SEQUENCE OF Data-Field: its count, and per
    item a field-data presence bit and the 3-bit field-type (the
    pre-corrigendum T.38 Data-Field, which tshark decodes by default),
    then field-data as OCTET STRING (SIZE(1..65535)): two octets of
    length - 1 and the octets."""
    out = bytes([0x80 | 0x40 | (dtype << 1)]) + per_len(len(fields))
    for ftype, data in fields:
        out += bytes([(0x80 if data else 0) | (ftype << 4)])
        if data:
            out += struct.pack("!H", len(data) - 1) + data
    return out


def udptl(seq, primary, secondary=(), fec=None):
    """UDPTLPacket: seq-number INTEGER (0..65535) in two octets, the
    primary IFP as an open type (length + octets), then error-recovery:
    0x00 secondary-ifp-packets (count, each as an open type), or 0x80
    fec-info (fec-npackets as a one-octet INTEGER with its length, then
    the count of fec-data octet strings, each with its length)."""
    out = struct.pack("!H", seq) + per_len(len(primary)) + primary
    if fec is None:
        out += b"\x00" + per_len(len(secondary))
        for s in secondary:
            out += per_len(len(s)) + s
    else:
        n, blocks = fec
        out += b"\x80\x01" + bytes([n]) + per_len(len(blocks))
        for b in blocks:
            out += per_len(len(b)) + b
    return out


CNG, CED, V21_PREAMBLE = ifp_indicator(1), ifp_indicator(2), ifp_indicator(3)
# T.30 DIS in a V.21 HDLC frame (address 0xFF, control 0xC8 final, FCF
# 0x80), then its FCS checked.
DIS = ifp_data(0, [(0, b"\xff\xc8\x80\x00\x46\xf0"), (2, None)])


def fax_burst(first_seq):
    """A calling and called terminal's first packets: CNG, CED, the V.21
    preamble with redundancy, DIS with two redundant IFPs and one with
    FEC."""
    s = first_seq
    return [udptl(s, CNG), udptl(s + 1, CED, [CNG]),
            udptl(s + 2, V21_PREAMBLE, [CED, CNG]),
            udptl(s + 3, DIS, [V21_PREAMBLE, CED]),
            udptl(s + 4, DIS, fec=(2, [b"\x81\x02\x03", b"\x44"]))]


# ---- helpers -------------------------------------------------------------------------


def make_rsa_cert(name):
    key, pem = f"{TMP}/{name}.key", f"{TMP}/{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", pem, "-days", "2",
                    "-subj", f"/CN={name}"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key, pem, fingerprint(der)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Core:
    """The core's UDPTL endpoint: a UDP socket."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.setblocking(False)

    def recv(self, seconds=5.0):
        got = []

        def have():
            try:
                got.append(self.sock.recvfrom(65536))
            except BlockingIOError:
                pass
            return bool(got)
        poll(have, "a datagram at the core", seconds)
        return got[0]

    def pending(self):
        try:
            return self.sock.recvfrom(65536)
        except BlockingIOError:
            return None

    def close(self):
        self.sock.close()


# ---- the IMS-ALG (dcmf-alg) on a UE-terminating T.38 call ---------------------------


def core_offer(core_port):
    """The core's offer: m=image udptl t38 with the T.38 attributes
    (ITU-T T.38 Annex D, RFC 4612)."""
    return "\r\n".join([
        "v=0", "o=core 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1",
        "t=0 0", f"m=image {core_port} udptl t38", "a=T38FaxVersion:0",
        "a=T38MaxBitRate:14400", "a=T38FaxRateManagement:transferredTCF",
        "a=T38FaxMaxDatagram:316", "a=T38FaxUdpEC:t38UDPRedundancy", ""])


def ue_answer(offer, ue_port, setup, fp, tls_id):
    """The UE's answer to the offer it got (RFC 7345 4.1-4.3): its own
    port, UDP/TLS/UDPTL, its a=setup, a=fingerprint and a=tls-id, the T.38
    attributes as offered; no ICE (an IMS UE's fax)."""
    t38 = [ln for ln in offer.split("\r\n") if ln.startswith("a=T38")]
    return "\r\n".join([
        "v=0", "o=ue 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1",
        "t=0 0", f"m=image {ue_port} UDP/TLS/UDPTL t38", f"a=setup:{setup}",
        f"a=fingerprint:{fp}", f"a=tls-id:{tls_id}", *t38, ""])


def alg_call(core_port, ue_port, setup, fp, tls_id="t38ue0123456789abcdefghij"):
    """TS 23.334 6.2.10.4 (e2ae-paths.md section 7, "T.38, core offer")
    with dcmf-alg as the IMS-ALG: the core's offer becomes the POST; the
    offer toward the UE carries UDP/TLS/UDPTL on the AGW's access port,
    its fingerprint, a new tls-id, a=setup:actpass and a=3ge2ae:applied;
    the UE's answer (|setup|, |fp|, |tls_id|) becomes the PATCH; the
    answer toward the core is plain udptl from the AGW's core port, no
    DTLS attribute left. Returns the context as the PATCH left it."""
    offer = core_offer(core_port)
    reqs = ALG.requests(offer, "core", "offer")
    assert len(reqs) == 1 and reqs[0]["path"] == "t38" and "note" not in reqs[0], reqs
    st, ctx = D.call(reqs[0]["method"], reqs[0]["uri"], reqs[0]["body"])
    assert st == 201, f"POST {st}: {ctx}"
    acc = ctx["terminations"][0]
    to_ue = ALG.rewrite(offer, "core", "offer", [ctx])
    hash_, value = acc["dtls"]["localFingerprint"].split(" ")
    assert_sdp_has(to_ue, f"m=image {acc['local']['port']} UDP/TLS/UDPTL t38",
                   f"a=fingerprint:{hash_.lower()} {value}", "a=setup:actpass",
                   f"a=tls-id:{acc['dtls']['localTlsId']}", "a=3ge2ae:applied",
                   "a=T38FaxUdpEC:t38UDPRedundancy")
    answer = ue_answer(to_ue, ue_port, setup, fp, tls_id)
    reqs = ALG.requests(answer, "access", "answer", reply=[ctx])
    assert len(reqs) == 1 and reqs[0]["uri"] == f"/agw/v1/contexts/{ctx['contextId']}", reqs
    st, ctx = D.call(reqs[0]["method"], reqs[0]["uri"], reqs[0]["body"],
                     "application/json-patch+json")
    assert st == 200, f"PATCH {st}: {ctx}"
    assert ctx["terminations"][0]["remote"]["port"] == ue_port, ctx
    to_core = ALG.rewrite(answer, "access", "answer", [ctx], offer=offer)
    assert_sdp_has(to_core, f"m=image {ctx['terminations'][1]['local']['port']} udptl t38",
                   "c=IN IP4 127.0.0.1", "a=T38FaxUdpEC:t38UDPRedundancy")
    assert_sdp_lacks(to_core, "a=fingerprint", "a=setup", "a=tls-id", "a=3ge2ae",
                     "a=ice-", "a=candidate")
    return ctx


def counters(cid):
    return D.get(cid).get("rtpCounters") or {}


def events(cid):
    return [e["event"] for e in D.get(cid).get("events", [])]


def ue_client(agw_port, bind_port, extra=()):
    return Proc(["openssl", "s_client", "-dtls1_2", "-connect",
                 f"127.0.0.1:{agw_port}", "-bind", f"127.0.0.1:{bind_port}",
                 "-cert", UE_PEM, "-key", UE_KEY, "-cipher",
                 "ECDHE-RSA-AES128-GCM-SHA256", "-showcerts", "-nocommands",
                 "-ign_eof", *extra])


def ue_server(port):
    return Proc(["openssl", "s_server", "-dtls1_2", "-accept",
                 f"127.0.0.1:{port}", "-cert", UE_PEM, "-key", UE_KEY,
                 "-Verify", "1", "-naccept", "1"])


def agw_cert_matches(ue, doc):
    """The certificate the UE saw (-showcerts / the server's verify
    output) is the RSA one the AGW answered the fingerprint of."""
    poll(lambda: b"-----END CERTIFICATE-----" in ue.text(), "AGW certificate")
    pem = ue.text().split(b"-----BEGIN CERTIFICATE-----")[1].split(
        b"-----END CERTIFICATE-----")[0]
    der = ssl.PEM_cert_to_DER_cert("-----BEGIN CERTIFICATE-----" +
                                   pem.decode() + "-----END CERTIFICATE-----")
    fp = doc["terminations"][0]["dtls"]["localFingerprint"]
    assert fingerprint(der) == fp.replace("SHA-256", "sha-256"), \
        "the AGW's certificate is not the one signalled"
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                          "-text"], input=der, capture_output=True).stdout
    assert b"rsaEncryption" in out, "the AGW presented no RSA certificate"


def both_ways(ue, core, agw_core_port, seq0, n_up=5):
    """UDPTL up (UE stdin -> one record -> one core datagram, unchanged)
    and down (core -> one record -> the UE's output, in order)."""
    sent_up = fax_burst(seq0)[:n_up]
    for pkt in sent_up:
        ue.send(pkt)
        data, _ = core.recv()
        assert data == pkt, f"core got {data.hex()}, sent {pkt.hex()}"
    sent_down = fax_burst(seq0 + 100)
    seen = len(ue.text())
    for pkt in sent_down:
        core.sock.sendto(pkt, ("127.0.0.1", agw_core_port))
        poll(lambda: pkt in ue.text()[seen:], f"UDPTL {pkt[:2].hex()} at the UE")
        seen = ue.text().index(pkt, seen) + len(pkt)
    return sent_up, sent_down


def check_capture(pcap, access_port, core_port, up, down):
    """tshark: the core leg decodes as T.38 without malformed frames or
    expert errors, with the sequence numbers sent; on the access leg each
    UDPTL packet is one application_data record alone in its datagram,
    its length that of the packet plus the AES-GCM overhead (8 octets of
    explicit nonce, 16 of tag: RFC 5288), under
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (0xc02f)."""
    def fields(filt, decode, *names):
        cmd = ["tshark", "-r", pcap, "-Y", filt, "-T", "fields"]
        for d in decode:
            cmd += ["-d", d]
        for n in names:
            cmd += ["-e", n]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        return [ln.split("\t") for ln in r.stdout.decode().splitlines()]
    t38 = f"udp.port=={core_port},t38"
    bad = fields(f"udp.port=={core_port} && (_ws.malformed || "
                 "_ws.expert.severity >= 8388608)", [t38], "frame.number")
    assert not bad, f"core frames tshark finds malformed: {bad}"
    seqs = fields(f"udp.port=={core_port} && t38", [t38],
                  "udp.srcport", "t38.seq_number")
    got_up = [int(s) for p, s in seqs if int(p) != core_port]
    got_down = [int(s) for p, s in seqs if int(p) == core_port]
    assert got_up == [struct.unpack("!H", p[:2])[0] for p in up], got_up
    assert got_down == [struct.unpack("!H", p[:2])[0] for p in down], got_down
    dt = f"udp.port=={access_port},dtls"
    recs = fields(f"udp.srcport=={access_port} && dtls.record.content_type"
                  "==23", [dt], "dtls.record.content_type", "dtls.record.length")
    assert [r[0] for r in recs] == ["23"] * len(recs), \
        f"more than one record in a datagram: {recs}"
    lens = [int(r[1]) for r in recs]
    assert lens == [len(p) + 24 for p in down], (lens, [len(p) for p in down])
    recs = fields(f"udp.dstport=={access_port} && dtls.record.content_type"
                  "==23", [dt], "dtls.record.length")
    assert [int(r[0]) for r in recs] == [len(p) + 24 for p in up], recs
    suite = fields("dtls.handshake.type==2", [dt], "dtls.handshake.ciphersuite")
    assert suite and suite[0][0] == "0xc02f", f"server hello suite {suite}"
    print(f"# tshark: {len(got_up)}+{len(got_down)} T.38 frames on the core "
          f"leg, {len(lens)}+{len(recs)} one-record DTLS datagrams, suite "
          f"{suite[0][0]}", flush=True)


def alg_ue_reoffer(ctx, core_port, ue_port, fp, tls_id):
    """The UE's re-offer (RFC 7345 4.5), as the UE that is the DTLS
    client (a=setup:active) writes it, with |fp| and |tls_id| (new ones:
    a new association; the same: none): dcmf-alg's PATCH of the context,
    and its offer toward the core (plain udptl from the AGW's core port).
    Returns the context as the PATCH left it."""
    offer = ue_answer(core_offer(core_port), ue_port, "active", fp, tls_id)
    reqs = ALG.requests(offer, "access", "offer", reply=[ctx])
    assert len(reqs) == 1 and reqs[0]["method"] == "PATCH", reqs
    st, ctx = D.call("PATCH", reqs[0]["uri"], reqs[0]["body"],
                     "application/json-patch+json")
    assert st == 200, f"PATCH {st}: {ctx}"
    to_core = ALG.rewrite(offer, "access", "offer", [ctx])
    assert_sdp_has(to_core, f"m=image {ctx['terminations'][1]['local']['port']} udptl t38")
    assert_sdp_lacks(to_core, "a=fingerprint", "a=setup", "a=tls-id", "a=3ge2ae")
    return ctx


# ---- cases ---------------------------------------------------------------------------

UE_KEY, UE_PEM, UE_FP = make_rsa_cert("ue")
D = Dcmfd(DCMFD)
D.start()
case = Cases(D, sys.argv[2:])


def rsa_identity_ready():
    """dcmfd serves before its RSA identity is generated; until then a
    T.38 POST gets 503 with Retry-After (docs/api.md)."""
    status, doc = D.call("POST", "/agw/v1/contexts", {"terminations": [
        {"terminationId": "access", "transport": "UDP/DTLS",
         "dtls": {"setup": "actpass"}},  # a probe, not a call: by hand
        {"terminationId": "core", "transport": "UDP"}]})
    if status == 201:
        D.delete(doc["contextId"])
    return status != 503


poll(rsa_identity_ready, "the RSA identity", 20)


@case
def ue_active_agw_dtls_server():
    """The UE answers active (TS 23.334 6.2.10.4: the AGW is the DTLS
    server): s_client with the RFC 7345 ECDHE_RSA suite; UDPTL both
    ways, each packet one record, the core leg clean under tshark; GET
    counts per direction."""
    core = Core()
    ue_port = free_udp_port()
    doc = alg_call(core.port, ue_port, "active", UE_FP)
    cid = doc["contextId"]
    dtls = doc["terminations"][0]["dtls"]
    assert dtls["localSetup"] == "passive", dtls
    access_port = doc["terminations"][0]["local"]["port"]
    core_port = doc["terminations"][1]["local"]["port"]
    cap = None
    if TSHARK:
        cap = Capture([], f"{TMP}/active.pcap",
                      udp_ports=[access_port, core.port]).start()
    ue = ue_client(access_port, ue_port)
    try:
        agw_cert_matches(ue, doc)
        up, down = both_ways(ue, core, core_port, 0)
        c = counters(cid)
        poll(lambda: counters(cid).get("toAccess", {}).get("packets") == 5,
             "counters pushed", 5)
        c = counters(cid)
        assert c["toCore"]["packets"] == 5, c
        assert c["toCore"]["bytes"] == sum(map(len, up)), c
        assert c["toAccess"]["bytes"] == sum(map(len, down)), c
        if cap:
            cap.stop()
            check_capture(cap.pcap, access_port, core.port, up, down)
            cap = None
        # A stranger on the core port is dropped and counted.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.sendto(udptl(9, CNG), ("127.0.0.1", core_port))
        poll(lambda: counters(cid).get("drops", {}).get("unknownSource", 0)
             == 1, "unknownSource counted")
        # A re-offer with unchanged fingerprints and tls-id keeps the
        # association: the same UE goes on.
        doc = alg_ue_reoffer(doc, core.port, ue_port, UE_FP,
                             dtls["tlsId"])
        assert doc["terminations"][0]["dtls"]["localTlsId"] == dtls["localTlsId"]
        both_ways(ue, core, core_port, 200, 2)
        assert "DTLS_FAILURE" not in events(cid)
    finally:
        ue.stop()
        if cap:
            cap.stop(check=False)
        core.close()
        D.call("DELETE", f"/agw/v1/contexts/{cid}")


@case
def ue_passive_agw_dtls_client():
    """The UE answers passive: the AGW establishes (DTLS client) toward
    s_server, which asks for the AGW's certificate; UDPTL both ways."""
    core = Core()
    ue_port = free_udp_port()
    ue = ue_server(ue_port)
    try:
        poll(lambda: b"ACCEPT" in ue.text(), "s_server listening")
        doc = alg_call(core.port, ue_port, "passive", UE_FP)
        cid = doc["contextId"]
        assert doc["terminations"][0]["dtls"]["establish"] is True, doc
        assert doc["terminations"][0]["dtls"]["localSetup"] == "active"
        core_port = doc["terminations"][1]["local"]["port"]
        agw_cert_matches(ue, doc)
        poll(lambda: b"CIPHER is ECDHE-RSA-AES128-GCM-SHA256" in ue.text()
             or b"Cipher is ECDHE-RSA-AES128-GCM-SHA256" in ue.text(),
             "the RFC 7345 suite")
        both_ways(ue, core, core_port, 1000)
        D.call("DELETE", f"/agw/v1/contexts/{cid}")
    finally:
        ue.stop()
        core.close()


@case
def wrong_fingerprint_fails_and_forwards_nothing():
    """The UE's certificate is not the signalled one: the handshake
    fails, DTLS_FAILURE is reported, nothing reaches the core, and core
    packets are dropped as beforeDtls."""
    core = Core()
    ue_port = free_udp_port()
    other_fp = make_rsa_cert("other")[2]
    doc = alg_call(core.port, ue_port, "active", other_fp)
    cid = doc["contextId"]
    access_port = doc["terminations"][0]["local"]["port"]
    core_port = doc["terminations"][1]["local"]["port"]
    ue = ue_client(access_port, ue_port)
    try:
        ue.send(udptl(0, CNG))
        poll(lambda: "DTLS_FAILURE" in events(cid), "DTLS_FAILURE event", 10)
        core.sock.sendto(udptl(1, CED), ("127.0.0.1", core_port))
        poll(lambda: counters(cid).get("drops", {}).get("beforeDtls", 0) >= 1,
             "beforeDtls counted")
        assert core.pending() is None, "something reached the core"
        assert counters(cid).get("toCore", {}).get("packets", 0) == 0
        assert counters(cid).get("toAccess", {}).get("packets", 0) == 0
    finally:
        ue.stop()
        core.close()
        D.call("DELETE", f"/agw/v1/contexts/{cid}")


class RenewingUe:
    """A UE that renews DTLS on the same 5-tuple, as openssl s_client
    cannot: pyOpenSSL (python3-openssl) DTLS clients over memory BIOs on
    one UDP socket. During a renewal the old association carries the
    UDPTL both ways (application_data records, type 23, go to it) while
    handshake records go to the new one, as RFC 7345 §4.5 has both ends
    do until the new association is up."""

    def __init__(self, port):
        from OpenSSL import SSL, crypto  # python3-openssl
        self.SSL, self.crypto = SSL, crypto
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.old = self.new = None
        self.received = []
        # While set, the new association's handshake records wait here:
        # the test holds the handshake to see the old one carry media.
        self.hold, self.held = False, []

    def new_identity(self):
        from dtls_identity import self_signed
        key = self.crypto.PKey()
        key.generate_key(self.crypto.TYPE_RSA, 2048)
        cert, fp = self_signed(key, "t38-ue")
        return cert, key, fp

    def start(self, agw, cert, key):
        """Sends a ClientHello of a new association (the old one, if any,
        goes on until this one is up)."""
        SSL = self.SSL
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.use_certificate(cert)
        ctx.use_privatekey(key)
        ctx.set_cipher_list(b"ECDHE-RSA-AES128-GCM-SHA256")
        # The AGW's certificate is checked against its localFingerprint
        # once the handshake is done (RFC 8122).
        ctx.set_verify(SSL.VERIFY_PEER, lambda *a: True)
        conn = SSL.Connection(ctx, None)
        conn.set_connect_state()
        self.agw = agw
        self.new = {"conn": conn, "done": False}
        self._step(self.new)

    def _flush(self, conn):
        while True:
            try:
                data = conn.bio_read(65536)
            except self.SSL.WantReadError:
                return
            self.sock.sendto(data, self.agw)

    def _step(self, a):
        if not a["done"]:
            try:
                a["conn"].do_handshake()
                a["done"] = True
            except self.SSL.WantReadError:
                pass
        self._flush(a["conn"])

    def pump(self):
        while True:
            try:
                d, _ = self.sock.recvfrom(65536)
            except BlockingIOError:
                break
            to = (self.old if d[0] == 23 and self.old is not None
                  and not self.new["done"] else self.new)
            if to is self.new and self.old is not None and self.hold:
                self.held.append(d)
                continue
            to["conn"].bio_write(d)
            self._step(to)
            try:
                self.received.append(to["conn"].recv(65536))
            except (self.SSL.WantReadError, self.SSL.ZeroReturnError):
                pass
        if self.new is not None and self.new["done"] and self.old is not None:
            self.old = None  # the new association is up

    def finish(self, agw_fp):
        """Completes the new association; it replaces the old one."""
        self.hold = False
        for d in self.held:
            self.new["conn"].bio_write(d)
            self._step(self.new)
        self.held = []
        poll(lambda: (self.pump(), self.new["done"])[1], "DTLS handshake", 8)
        got = self.new["conn"].get_peer_certificate()
        assert "sha-256 " + got.digest("sha256").decode().upper() == \
            agw_fp.replace("SHA-256", "sha-256"), "the AGW's certificate"
        self.old, self.new = None, self.new

    def send(self, data, on_old=False):
        a = self.old if on_old else self.new
        a["conn"].send(data)
        self._flush(a["conn"])

    def renew(self):
        """The association in use becomes the old one."""
        self.old, self.new = self.new, None

    def close(self):
        self.sock.close()


@case
def reoffer_new_association_overlaps():
    """A re-offer with a new tls-id and fingerprint (RFC 7345 §4.5, RFC
    8842): the AGW starts a new association on the same 5-tuple; until it
    is up UDPTL passes both ways on the old one, then on the new one;
    the old one's records are refused after."""
    core = Core()
    ue_port = free_udp_port()
    ue = RenewingUe(ue_port)
    cert1, key1, fp1 = ue.new_identity()
    tls1, tls2 = "t38renewaaaaaaaaaaaaaaaaaaaaaaaaa", "t38renewbbbbbbbbbbbbbbbbbbbbbbbbb"
    doc = alg_call(core.port, ue_port, "active", fp1, tls1)
    cid = doc["contextId"]
    agw = ("127.0.0.1", doc["terminations"][0]["local"]["port"])
    core_port = doc["terminations"][1]["local"]["port"]
    agw_fp = doc["terminations"][0]["dtls"]["localFingerprint"]
    local_tls1 = doc["terminations"][0]["dtls"]["localTlsId"]
    try:
        ue.start(agw, cert1, key1)
        ue.finish(agw_fp)

        def up(pkt, on_old=False):
            ue.send(pkt, on_old)
            data, _ = core.recv()
            assert data == pkt, f"core got {data.hex()}, sent {pkt.hex()}"

        def down(pkt):
            core.sock.sendto(pkt, ("127.0.0.1", core_port))
            poll(lambda: (ue.pump(), pkt in ue.received)[1], "UDPTL at the UE")

        up(udptl(0, CNG))
        down(udptl(100, CED))
        cert2, key2, fp2 = ue.new_identity()
        doc = alg_ue_reoffer(doc, core.port, ue_port, fp2, tls2)
        assert doc["terminations"][0]["dtls"]["localTlsId"] != local_tls1
        ue.renew()
        ue.hold = True
        ue.start(agw, cert2, key2)  # the new ClientHello leaves
        # The AGW answers it; while that flight is held here the new
        # association is not up, and the media runs on the old one, both
        # ways.
        poll(lambda: (ue.pump(), ue.held)[1], "the AGW's ServerHello")
        up(udptl(1, V21_PREAMBLE, [CNG]), on_old=True)
        down(udptl(101, V21_PREAMBLE, [CED]))
        assert ue.old is not None and not ue.new["done"], "not on the old one"
        stale = ue.old
        ue.finish(agw_fp)
        # Now the old association's records go nowhere: the next datagram
        # at the core is the one sent on the new association.
        stale["conn"].send(udptl(50, CNG))
        ue._flush(stale["conn"])
        up(udptl(2, DIS, [V21_PREAMBLE]))
        down(udptl(102, DIS, fec=(1, [b"\x01"])))
        ev = events(cid)
        assert "DTLS_FAILURE" not in ev, ev
    finally:
        ue.close()
        core.close()
        D.call("DELETE", f"/agw/v1/contexts/{cid}")


@case
def bad_input_names_the_field():
    """problem+json naming the member: the SDP proto given as the Iq
    transport, RTCP on a UDPTL core, a certificate of no known kind.
    Hand-built requests: they are malformed on purpose, which dcmf-alg
    never writes."""
    ue = {"transport": "UDP/DTLS", "dtls": {"setup": "active",
                                            "remoteFingerprints": [UE_FP]}}
    for access, core, param in [
            ({"transport": "UDP/TLS/UDPTL", "dtls": {"setup": "active"}},
             {"transport": "UDP"}, "/terminations/0/transport"),
            (ue,
             {"transport": "UDP", "remoteRtcpPort": 4001},
             "/terminations/1/remoteRtcpPort"),
            ({"transport": "UDP/DTLS",
              "dtls": {"setup": "active", "certificate": "dsa"}},
             {"transport": "UDP"}, "/terminations/0/dtls/certificate")]:
        body = {"terminations": [dict(terminationId="access", **access),
                                 dict(terminationId="core", **core)]}
        status, doc = D.call("POST", "/agw/v1/contexts", body)
        assert status == 400, (status, doc)
        names = [p["param"] for p in doc.get("invalidParams", [])]
        assert param in names, (param, names)


rc = D.stop()
shutil.rmtree(TMP, ignore_errors=True)
case.finish(rc)
