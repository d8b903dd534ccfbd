#!/usr/bin/env python3
"""MSRP and BFCP over TLS/TCP (IMS UE with e2ae) <-> plain TCP (IMS core)
through dcmfd's /agw/v1 contexts (issue 12 item 3; docs/e2ae.md "MSRP
and BFCP over TLS").

    e2ae_tcp.py DCMFD [SUBSTRING...]

The UE is `openssl s_client` / `openssl s_server` (and `gnutls-cli` for
a renegotiation) with a self-signed certificate pinned by its
fingerprint; the core is a plain TCP socket here. Two cases use the RFC
4975 / RFC 8855 peers (msrp_peer.py, bfcp_peer.py) on both sides and
check the core leg's wire with tshark (tshark_check.py). Events
reach a notify receiver (an HTTP/1.1 server here). One dcmfd on
127.0.0.1 (meson runs this under in-netns) serves every case and is
stopped with SIGTERM. Prints "ok - NAME" or "not ok - NAME: REASON";
exits 1 on failure. Every wait is a bounded poll.
"""
import hashlib
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2ae_tcp_lib import (AGW, Cases, CoreListener, DcmfAlg,  # noqa: E402
                          Dcmfd, Notify, assert_sdp_has, assert_sdp_lacks, Proc, bfcp_hello, fingerprint, local_port,
                          make_cert, msrp_send, poll, python_ue,
                          recv_exactly, recv_until_closed, remote, s_client,
                          wait_stalled)

DCMFD = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="e2ae_tcp.")


def ctx_id(doc):
    return doc["contextId"]


def events(cid):
    return [e["event"] for e in D.get(cid).get("events", [])]


def counters(cid):
    return D.get(cid).get("tcpCounters") or {}


def _quick_exchange(i):
    core = CoreListener()
    doc = D.create(tls_access(), {"transport": "TCP/MSRP",
                                  "remote": remote(core.port)})
    ue = s_client(local_port(doc, 0), UE_PEM, UE_KEY, ["-quiet"])
    try:
        conn = core.accept(3)
        up = msrp_send(f"q{i}xx", "beside a stalled relay")
        ue.send(up)
        assert recv_exactly(conn, len(up), 3) == up, "another context stalled"
    finally:
        ue.stop()
        core.close()
        D.delete(ctx_id(doc))


def _feed(proc, data):
    try:
        proc.send(data)
    except (BrokenPipeError, ValueError):
        pass


# ---- cases --------------------------------------------------------------------------

UE_KEY, UE_PEM, UE_FP = make_cert(TMP, "ue")
OTHER_KEY, OTHER_PEM, OTHER_FP = make_cert(TMP, "other")
NOTIFY = Notify()
D = Dcmfd(DCMFD)
D.start()
case = Cases(D, sys.argv[2:])
ALG = DcmfAlg(DCMFD, TMP)


# ---- the IMS-ALG (dcmf-alg) on the TLS paths -----------------------------------------

# The media lines per path (RFC 4975 section 8, RFC 8856 section 4):
# what follows m=, the TLS proto, and the media attributes of the UE and
# of the core beside a=setup, a=fingerprint and a=3ge2ae. The MSRP peers
# are CEMA endpoints (RFC 6714: a=msrp-cema), so dcmf-alg asks for the
# agnostic relay (TS 23.334 5.19) and the paths are not the peers' own;
# without it the context is aware (e2ae_tcp_msrp.py).
BFCP_ATTRS = ["a=confid:7", "a=userid:42", "a=floorid:3 mstrm:1", "a=connection:new"]
UE_MEDIA = {
    "msrp": ("message", "TCP/TLS/MSRP",
             ["a=accept-types:text/plain", "a=path:msrps://127.0.0.1:9/ue1;tcp",
              "a=msrp-cema"],
             ["a=accept-types:text/plain", "a=path:msrp://127.0.0.1:2855/core1;tcp",
              "a=msrp-cema"]),
    "bfcp": ("application", "TCP/TLS/BFCP", ["a=floorctrl:c-only"] + BFCP_ATTRS,
             ["a=floorctrl:s-only"] + BFCP_ATTRS),
}


def sdp(origin, media, port, proto, attrs):
    return "\r\n".join(["v=0", f"o={origin} 1 1 IN IP4 127.0.0.1", "s=-",
                         "c=IN IP4 127.0.0.1", "t=0 0", f"m={media} {port} {proto} *",
                         *attrs, ""])


def check_toward_ue(to_ue, ctx, media, proto):
    """The SDP toward the UE (e2ae-paths.md section 7, "MSRP e2ae"): the
    TLS proto on the AGW's access port, its fingerprint (hash in lower
    case), its TLS role and a=3ge2ae:applied."""
    acc = ctx["terminations"][0]
    hash_, value = acc["tls"]["localFingerprint"].split(" ")
    assert_sdp_has(to_ue, f"m={media} {acc['local']['port']} {proto} *",
                   f"a=fingerprint:{hash_.lower()} {value}",
                   f"a=setup:{acc['tls']['localSetup']}", "a=3ge2ae:applied")


def check_toward_core(to_core, ctx, media, proto):
    """The SDP toward the core: the plain proto on the AGW's core port,
    its TCP role (merge announced passive), no crypto, no 3ge2ae."""
    core = ctx["terminations"][1]
    role = core.get("tcp", {}).get("localSetup")
    assert_sdp_has(to_core, f"m={media} {core['local']['port']} {proto.replace('TLS/', '')} *",
                   f"a=setup:{'passive' if role == 'merge' else role}")
    assert_sdp_lacks(to_core, "a=fingerprint", "a=3ge2ae", "a=tls-id")


def ue_sdp(kind, port, setup):
    """The UE's SDP (offer or answer): the TLS proto, its certificate's
    fingerprint, a=3ge2ae:requested (TS 24.229 7.5.2)."""
    media, proto, attrs, _ = UE_MEDIA[kind]
    return sdp("ue", media, port, proto, attrs + [
        f"a=setup:{setup}", f"a=fingerprint:{UE_FP}", "a=3ge2ae:requested"])


def core_sdp(kind, port, setup):
    media, proto, _, attrs = UE_MEDIA[kind]
    return sdp("core", media, port, proto.replace("TLS/", ""), attrs + [f"a=setup:{setup}"])


def alg_call(kind, offer_side, offer, answer):
    """dcmf-alg as the IMS-ALG of one call: the offer from |offer_side|
    (access or core) becomes the POST and is rewritten for the other
    side, the other side's |answer| becomes the PATCH and is rewritten
    back; each rewritten SDP is checked. Returns the context as the
    PATCH left it."""
    media, proto, _, _ = UE_MEDIA[kind]
    answer_side = "core" if offer_side == "access" else "access"
    check = {"access": check_toward_core, "core": check_toward_ue}
    reqs = ALG.requests(offer, offer_side, "offer", notify=NOTIFY.uri)
    assert len(reqs) == 1 and reqs[0]["path"] == f"{kind}-tls", reqs
    st, ctx = D.call(reqs[0]["method"], reqs[0]["uri"], reqs[0]["body"])
    assert st == 201, f"POST {st}: {ctx}"
    check[offer_side](ALG.rewrite(offer, offer_side, "offer", [ctx]), ctx, media, proto)
    reqs = ALG.requests(answer, answer_side, "answer", reply=[ctx])
    st, ctx = D.call(reqs[0]["method"], reqs[0]["uri"], reqs[0]["body"],
                     "application/json-patch+json")
    assert st == 200, f"PATCH {st}: {ctx}"
    check[answer_side](ALG.rewrite(answer, answer_side, "answer", [ctx], offer=offer),
                       ctx, media, proto)
    return ctx


def alg_ue_offers(kind, core_port):
    """UE-originated (TS 23.334 6.2.10.3.1): the UE offers active (it
    connects); the core answers passive, listening on |core_port|."""
    return alg_call(kind, "access", ue_sdp(kind, 9, "active"),
                    core_sdp(kind, core_port, "passive"))


def alg_core_offers(kind, ue_port, ue_setup):
    """UE-terminated: the core offers active (it connects to the AGW);
    the UE answers |ue_setup| (passive: listening on |ue_port|)."""
    return alg_call(kind, "core", core_sdp(kind, 9, "active"),
                    ue_sdp(kind, ue_port, ue_setup))


# The cases that set members no SDP carries (the TCP handling and its
# bound, merge, a fingerprint held back, a second dcmfd) or send
# malformed requests build their requests by hand from this.
def tls_access(setup="active", establish=None, fps=(UE_FP,), extra=None):
    tls = {"setup": setup}
    if fps:
        tls["remoteFingerprints"] = list(fps)
    if establish is not None:
        tls["establish"] = establish
    a = {"transport": "TCP/TLS/MSRP", "tls": tls, "notifyUri": NOTIFY.uri,
         "remote": remote(9)}
    a.update(extra or {})
    return a


@case
def msrp_ue_tls_client_to_core():
    """UE active (s_client, TLS client) -> AGW passive/TLS server; AGW
    connects to the core (stateless: once the UE is up); MSRP both ways;
    the AGW's certificate matches its localFingerprint. The context and
    the SDP both ways are dcmf-alg's."""
    core = CoreListener()
    doc = alg_ue_offers("msrp", core.port)
    cid = ctx_id(doc)
    # The UE offered a=msrp-cema: agnostic on both terminations.
    assert [t.get("msrp", {}).get("mode") for t in doc["terminations"]] == \
        ["agnostic", "agnostic"], doc["terminations"]
    tls = doc["terminations"][0]["tls"]
    assert tls["localSetup"] == "passive", tls
    ue = s_client(local_port(doc, 0), UE_PEM, UE_KEY, ["-showcerts"])
    try:
        conn = core.accept()
        poll(lambda: b"-----END CERTIFICATE-----" in ue.text(), "handshake")
        pem = ue.text().split(b"-----BEGIN CERTIFICATE-----")[1].split(
            b"-----END CERTIFICATE-----")[0]
        der = ssl.PEM_cert_to_DER_cert(
            "-----BEGIN CERTIFICATE-----" + pem.decode() +
            "-----END CERTIFICATE-----")
        assert fingerprint(der) == tls["localFingerprint"].replace(
            "SHA-256", "sha-256"), "the AGW's certificate is not the one signalled"
        up = msrp_send("a1", "hello core")
        ue.send(up)
        got = recv_exactly(conn, len(up))
        assert got == up, f"core got {got!r}"
        down = msrp_send("b2", "hello ue")
        conn.sendall(down)
        poll(lambda: down in ue.text(), "MSRP at the UE")
        poll(lambda: counters(cid).get("toCore", {}).get("bytes") == len(up),
             "TCP_COUNTERS toCore", 3)
        assert counters(cid)["toAccess"]["bytes"] == len(down)
        poll(lambda: D.metric('dcmf_agw_e2ae_tcp_bytes_total'
                            '{direction="to_core"}') >= len(up),
             "/metrics to_core bytes", 3)
        # The UE ends: its close_notify and FIN close the core leg.
        ue.p.stdin.close()
        data, closed = recv_until_closed(conn, 5)
        assert closed and data == b"", f"core leg not closed ({data!r})"
        poll(lambda: "TCP_CLOSED" in events(cid), "TCP_CLOSED")
    finally:
        ue.stop()
        core.close()
        D.delete(cid)


@case
def bfcp_agw_tls_client_core_connects():
    """UE passive (s_server): the AGW is TLS client and connects; the
    core is active, so the AGW listens on its core port (mirrored). The
    context and the SDP both ways are dcmf-alg's (the core offers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ue_port = s.getsockname()[1]
    ue = Proc(["openssl", "s_server", "-accept", str(ue_port), "-cert", UE_PEM,
               "-key", UE_KEY, "-verify", "1", "-naccept", "1"])
    cid = None
    try:
        poll(lambda: b"ACCEPT" in ue.text(), "s_server up")
        doc = alg_core_offers("bfcp", ue_port, "passive")
        cid = ctx_id(doc)
        assert doc["terminations"][0]["tls"]["localSetup"] == "active"
        assert doc["terminations"][1]["tcp"]["localSetup"] == "passive"
        core = socket.create_connection(("127.0.0.1", local_port(doc, 1)), 5)
        hello = bfcp_hello(7, 1, 42)
        core.sendall(hello)
        poll(lambda: hello in ue.text(), "BFCP Hello at the UE")
        ue.send(b"floor-text-from-ue\n")
        got = recv_exactly(core, len(b"floor-text-from-ue\n"))
        assert got == b"floor-text-from-ue\n", got
        core.close()
        poll(lambda: ue.p.poll() is not None or b"DONE" in ue.text(),
             "the TLS session ends with the core leg", 5)
    finally:
        ue.stop()
        if cid:
            D.delete(cid)


@case
def wrong_certificate_fails_and_notifies():
    core = CoreListener()
    doc = D.create(tls_access(fps=(OTHER_FP,)),
                   {"transport": "TCP/MSRP", "remote": remote(core.port)})
    cid = ctx_id(doc)
    ue = s_client(local_port(doc, 0), UE_PEM, UE_KEY)
    try:
        conn = core.accept()
        ue.send(msrp_send("x", "must not pass"))
        poll(lambda: any(e["event"] == "TLS_FAILURE"
                         for e in NOTIFY.events(cid)), "TLS_FAILURE notified")
        ev = [e for e in NOTIFY.events(cid) if e["event"] == "TLS_FAILURE"][0]
        assert "fingerprint" in ev["detail"]["reason"], ev
        data, closed = recv_until_closed(conn, 5)
        assert closed and data == b"", f"core got {data!r}"
        poll(lambda: ue.p.poll() is not None, "s_client ended", 5)
        ue.t.join(5)  # its reader has all it printed (else a race)
        assert b"alert" in ue.text().lower(), ue.text()[-400:]
        poll(lambda: counters(cid).get("final"), "final counters", 3)
        assert counters(cid)["toCore"]["bytes"] == 0
        assert counters(cid)["failures"]["tls"] == 1
    finally:
        ue.stop()
        core.close()
        D.delete(cid)


@case
def fingerprint_later_holds_the_handshake():
    core = CoreListener()
    doc = D.create(tls_access(fps=()),
                   {"transport": "TCP/MSRP", "remote": remote(core.port)})
    cid = ctx_id(doc)
    ue = s_client(local_port(doc, 0), UE_PEM, UE_KEY)
    try:
        conn = core.accept()
        time.sleep(0.3)  # a negative check: the handshake must not move
        assert b"Verify return code" not in ue.text()
        st, d = D.call("PATCH", f"{AGW}/{cid}", [
            {"op": "add", "path": "/terminations/0/tls/remoteFingerprints",
             "value": [UE_FP]}], "application/json-patch+json")
        assert st == 200, (st, d)
        up = msrp_send("h1", "after the patch")
        ue.send(up)
        assert recv_exactly(conn, len(up)) == up
    finally:
        ue.stop()
        core.close()
        D.delete(cid)


# ---- TCP connection control (cases in e2ae_tcp_legs.py) ---------------------------

class _Harness:
    """What the cases kept in e2ae_tcp_legs.py and e2ae_tcp_msrp.py use
    of this harness."""
    D, DCMFD, NOTIFY, ALG = D, DCMFD, NOTIFY, ALG
    UE_PEM, UE_KEY, UE_FP, TMP = UE_PEM, UE_KEY, UE_FP, TMP
    tls_access = staticmethod(tls_access)
    counters = staticmethod(counters)


def _with_harness(fn, prefix=""):
    def run():
        fn(_Harness)
    run.__name__ = prefix + fn.__name__
    return run


import e2ae_tcp_legs  # noqa: E402
for _fn in e2ae_tcp_legs.CASES:
    case(_with_harness(_fn))


@case
def core_reset_closes_access():
    core = CoreListener()
    doc = D.create(tls_access(), {"transport": "TCP/MSRP",
                                  "remote": remote(core.port)})
    cid = ctx_id(doc)
    ue = s_client(local_port(doc, 0), UE_PEM, UE_KEY)
    try:
        conn = core.accept()
        ue.send(b"x")
        assert recv_exactly(conn, 1) == b"x"
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
        conn.close()  # RST
        core.conn = None
        poll(lambda: ue.p.poll() is not None, "the UE's connection closed", 5)
        poll(lambda: counters(cid).get("failures", {}).get("reset") == 1,
             "reset counted", 3)
    finally:
        ue.stop()
        core.close()
        D.delete(cid)


@case
def access_reset_closes_core():
    core = CoreListener()
    doc = D.create(tls_access(), {"transport": "TCP/MSRP",
                                  "remote": remote(core.port)})
    cid = ctx_id(doc)
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(UE_PEM, UE_KEY)
        raw = socket.create_connection(("127.0.0.1", local_port(doc, 0)), 5)
        ue = ctx.wrap_socket(raw)
        conn = core.accept()
        ue.sendall(b"y")
        assert recv_exactly(conn, 1) == b"y"
        ue.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                      struct.pack("ii", 1, 0))
        ue.close()  # no close_notify, a reset
        data, closed = recv_until_closed(conn, 5)
        assert closed, "core leg not closed after the UE's reset"
    finally:
        core.close()
        D.delete(cid)


@case
def close_notify_with_tcp_open_ends_relay():
    """The UE sends close_notify and keeps its TCP connection open, as a
    bidirectional TLS shutdown does: the relay ends at once (the core
    gets a FIN after the bytes before it; TCP_CLOSED names the reason)."""
    core = CoreListener()
    doc = D.create(tls_access(), {"transport": "TCP/MSRP",
                                  "remote": remote(core.port)})
    cid = ctx_id(doc)
    try:
        ue = python_ue(local_port(doc, 0), UE_PEM, UE_KEY)
        conn = core.accept()
        ue.sendall(b"z")
        assert recv_exactly(conn, 1) == b"z"
        ue.settimeout(5)
        done = []

        def shutdown():
            try:
                ue.unwrap()  # close_notify, then waits for the peer's end
            except (OSError, ssl.SSLError):
                pass
            done.append(True)

        t = threading.Thread(target=shutdown, daemon=True)
        t.start()
        data, closed = recv_until_closed(conn, 5)
        assert closed and data == b"", f"core leg not closed ({data!r})"
        t.join(6)
        assert done, "the UE's shutdown still waits"
        poll(lambda: "TCP_CLOSED" in events(cid), "TCP_CLOSED raised", 3)
    finally:
        core.close()
        D.delete(cid)


@case
def slow_core_reader_4mib():
    """4 MiB from the UE toward a core that stops reading: the relay stops
    reading the UE (bounded memory), then delivers all once it reads."""
    core = CoreListener(backlog=False)
    core.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    core.listen()
    doc = D.create(tls_access(), {"transport": "TCP/MSRP",
                                  "remote": remote(core.port)})
    cid = ctx_id(doc)
    payload = os.urandom(4 << 20)
    ue = s_client(local_port(doc, 0), UE_PEM, UE_KEY, ["-quiet"])
    try:
        conn = core.accept()
        rss0 = D.rss_kib()
        writer = threading.Thread(target=lambda: _feed(ue, payload),
                                  daemon=True)
        writer.start()
        # Wait until the relay stalls: its toCore count stops growing.
        last = wait_stalled(
            lambda: counters(cid).get("toCore", {}).get("bytes", 0))
        assert last < len(payload), "nothing held back: no back-pressure"
        grown = D.rss_kib() - rss0
        print(f"#   stalled at {last} bytes relayed; dcmfd RSS +{grown} KiB",
              flush=True)
        assert grown < 4096, f"dcmfd grew {grown} KiB while stalled"
        # Meanwhile other contexts relay at once.
        for i in range(2):
            _quick_exchange(i)
        h = hashlib.sha256()
        n = 0
        conn.settimeout(20)
        while n < len(payload):
            chunk = conn.recv(65536)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
            time.sleep(0.0005)  # still a slow reader
        assert n == len(payload), f"{n} of {len(payload)}"
        assert h.digest() == hashlib.sha256(payload).digest(), "bytes differ"
    finally:
        ue.stop()
        core.close()
        D.delete(cid)


@case
def renegotiation_refused_s_client():
    """A TLS 1.2 renegotiation from the UE (s_client's R command) is
    answered with a no_renegotiation alert and never completes; s_client
    gives up with a fatal alert and the relay ends cleanly
    (docs/e2ae.md)."""
    core = CoreListener()
    doc = D.create(tls_access(), {"transport": "TCP/MSRP",
                                  "remote": remote(core.port)})
    cid = ctx_id(doc)
    import tshark_check
    port = local_port(doc, 0)
    pcap = f"{TMP}/reneg.pcap"
    cap = tshark_check.Capture([port], pcap)
    cap.start()
    ue = Proc(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
               "-cert", UE_PEM, "-key", UE_KEY, "-tls1_2", "-msg"])
    try:
        conn = core.accept()
        poll(lambda: b"Verify return code" in ue.text(), "handshake")
        ue.send(b"before\n")
        assert recv_exactly(conn, 7, 5) == b"before\n"
        ue.send(b"R\n")
        poll(lambda: b"RENEGOTIATING" in ue.text(), "renegotiation tried", 5)
        poll(lambda: b"no_renegotiation" in ue.text(),
             "the AGW's no_renegotiation alert at the UE (s_client -msg)", 5)
        # No second handshake completes (s_client would print a second
        # session block); s_client then waits in its renegotiation
        # (docs/e2ae.md: what a refused client does is its own).
        handshakes = ue.text().count(b"Verify return code")
        time.sleep(1.0)  # a negative check: nothing may complete
        assert ue.text().count(b"Verify return code") == handshakes
        assert D.proc.poll() is None, "dcmfd died"
        # s_client answers the refusal with a fatal alert: the AGW ends
        # the relay cleanly, the core leg closed, the UE's reason kept.
        data, closed = recv_until_closed(conn, 5)
        assert closed and data == b"", f"core leg: {data!r}, {closed}"
        poll(lambda: "TCP_CLOSED" in events(cid), "TCP_CLOSED", 3)
        fails = [e["detail"]["reason"] for e in D.get(cid)["events"]
                 if e["event"] == "TLS_FAILURE"]
        print(f"#   after the refusal: TLS_FAILURE {fails}", flush=True)
    finally:
        ue.stop()
        cap.stop()
        core.close()
        D.delete(cid)
    # TLS 1.2 records show their content type: after the handshake the
    # AGW sends application data only, or an alert (21).
    r = subprocess.run(["tshark", "-r", pcap, "-d", f"tcp.port=={port},tls",
                        "-Y", f"tcp.srcport=={port} && tls.record",
                        "-T", "fields", "-e", "tls.record.content_type"],
                       capture_output=True, timeout=60)
    types = r.stdout.decode().split()
    print(f"#   AGW->UE TLS record types: {types}", flush=True)


@case
def renegotiation_refused_gnutls():
    """gnutls-cli --rehandshake (TLS 1.2): the renegotiation never
    completes; the AGW keeps its session (or the client gives up and the
    relay ends cleanly, the core leg closed)."""
    if not shutil.which("gnutls-cli"):
        raise AssertionError("gnutls-cli missing (Debian gnutls-bin)")
    core = CoreListener()
    doc = D.create(tls_access(), {"transport": "TCP/MSRP",
                                  "remote": remote(core.port)})
    cid = ctx_id(doc)
    # stdbuf: gnutls-cli's stdout is a pipe here; its lines must not wait
    # in a buffer.
    ue = Proc(["stdbuf", "-o0", "gnutls-cli", "--insecure", "--rehandshake",
               "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2",
               "--x509certfile", UE_PEM, "--x509keyfile", UE_KEY,
               "-p", str(local_port(doc, 0)), "127.0.0.1"])
    try:
        conn = core.accept()
        poll(lambda: b"Handshake was completed" in ue.text(), "handshake", 5)
        conn.sendall(b"to-gnutls\n")
        poll(lambda: b"to-gnutls" in ue.text() or ue.p.poll() is not None,
             "bytes at the UE, or its end", 5)
        assert b"ReHandshake was completed" not in ue.text()
        if ue.p.poll() is not None:
            print("#   gnutls-cli ended after its refused rehandshake",
                  flush=True)
            data, closed = recv_until_closed(conn, 5)
            assert closed, "the UE ended but the core leg stayed"
        else:
            print("#   gnutls-cli goes on: "
                  f"{b'to-gnutls' in ue.text()}", flush=True)
            assert "TCP_CLOSED" not in events(cid), events(cid)
        assert D.proc.poll() is None, "dcmfd died"
    finally:
        ue.stop()
        core.close()
        D.delete(cid)


@case
def msrp_peers_through_tls_to_tcp():
    """RFC 4975 peers (msrp_peer.py): the UE over TLS (pinned both ways),
    the core over TCP; a 5000-byte message chunked at 2048 bytes with a
    success REPORT, and one back; the core side's wire checked by tshark
    (no malformed frame, the SENDs and 200s seen)."""
    import msrp_peer
    import tshark_check
    core = CoreListener()
    doc = alg_ue_offers("msrp", core.port)
    cid = ctx_id(doc)
    agw_fp = doc["terminations"][0]["tls"]["localFingerprint"].split(" ")[1]
    ue_uri = "msrps://127.0.0.1:9/ue1;tcp"
    core_uri = f"msrp://127.0.0.1:{core.port}/core1;tcp"
    pcap = f"{TMP}/msrp.pcap"
    cap = tshark_check.Capture([core.port], pcap)
    cap.start()
    ue = core_peer = None
    try:
        ctx = msrp_peer.tls_context(False, UE_PEM, UE_KEY)
        ue_sock = msrp_peer.connect("127.0.0.1", local_port(doc, 0), ctx,
                                    expect_fingerprint=agw_fp)
        ue = msrp_peer.MsrpPeer(ue_sock, ue_uri, core_uri)
        core_peer = msrp_peer.MsrpPeer(core.accept(), core_uri, ue_uri)
        body = os.urandom(2500).hex().encode()  # 5000 bytes
        mid, tids = ue.send_message(body, chunk_size=2048,
                                    success_report="yes")
        got = core_peer.wait_message(1)[0]
        assert bytes(got.data) == body, "the core got other bytes"
        for tid in tids:
            ue.wait_response(tid)
        ue.wait_report(mid)
        core_peer.send_message(b"answer from the core")
        assert bytes(ue.wait_message(1)[0].data) == b"answer from the core"
    finally:
        for p in (ue, core_peer):
            if p is not None:
                p.close()
        cap.stop()
        core.close()
        D.delete(cid)
    res = tshark_check.analyze(pcap, msrp_ports=[core.port])
    res.assert_clean()
    sends = res.msrp_requests("SEND")
    assert len(sends) >= 4, f"tshark saw {len(sends)} SENDs"
    assert any(t.get("code") == "200" or t.get("code") == 200
               for t in res.msrp_responses()), res.msrp[:6]
    print(f"#   tshark: {len(res.msrp)} MSRP transactions on the core leg",
          flush=True)


@case
def bfcp_peers_through_tls_to_tcp():
    """RFC 8855 peers (bfcp_peer.py): the UE as floor control client over
    TLS, the core as server over TCP: Hello, FloorRequest, FloorRelease,
    Goodbye, each answered; the core side's wire checked by tshark."""
    import bfcp_peer
    import tshark_check
    core = CoreListener()
    doc = alg_ue_offers("bfcp", core.port)
    cid = ctx_id(doc)
    agw_fp = doc["terminations"][0]["tls"]["localFingerprint"].split(" ")[1]
    pcap = f"{TMP}/bfcp.pcap"
    cap = tshark_check.Capture([core.port], pcap)
    cap.start()
    ue = server = None
    try:
        import peer_net
        ctx = peer_net.tls_context(False, UE_PEM, UE_KEY)
        ue_sock = peer_net.connect("127.0.0.1", local_port(doc, 0), ctx,
                              expect_fingerprint=agw_fp)
        ue = bfcp_peer.BfcpPeer(ue_sock)
        server = bfcp_peer.BfcpPeer(core.accept(), server=True)
        answers = ue.run_client_sequence(conf=7, user=42, floor_id=3)
        assert len(answers) >= 4, answers
    finally:
        for p in (ue, server):
            if p is not None:
                p.close()
        cap.stop()
        core.close()
        D.delete(cid)
    res = tshark_check.analyze(pcap, bfcp_ports=[core.port])
    res.assert_clean()
    assert len(res.bfcp) >= 8, f"tshark saw {len(res.bfcp)} BFCP messages"
    print(f"#   tshark: {len(res.bfcp)} BFCP messages on the core leg",
          flush=True)


@case
def bad_input_names_the_field():
    st, doc = D.call("POST", AGW, {"terminations": [
        {"terminationId": "access", "transport": "TCP/TLS/MSRP",
         "tls": {"setup": "active", "tlsId": "x" * 24},
         "msrp": {"mode": "aware"}},
        {"terminationId": "core", "transport": "TCP/BFCP",
         "tcp": {"setup": "sideways"}}]})
    assert st == 400, (st, doc)
    names = {p["param"] for p in doc["invalidParams"]}
    assert "/terminations/0/transport" in names, names
    st, doc = D.call("POST", AGW, {"terminations": [
        {"terminationId": "access", "transport": "TCP/TLS/MSRP",
         "tls": {"setup": "active", "tlsId": "x" * 24},
         "msrp": {"mode": "aware", "path": "not an MSRP URI"}},
        {"terminationId": "core", "transport": "TCP/MSRP",
         "tcp": {"setup": "sideways", "timeoutMs": 5}}]})
    names = {p["param"] for p in doc["invalidParams"]}
    for want in ("/terminations/0/tls/tlsId", "/terminations/0/msrp/path",
                 "/terminations/1/tcp/setup", "/terminations/1/tcp/timeoutMs"):
        assert want in names, (want, names)


@case
def hundreds_of_contexts_leave_no_fds():
    core = CoreListener()
    before = D.fds()
    for i in range(200):
        doc = D.create(tls_access(), {"transport": "TCP/MSRP",
                                      "remote": remote(core.port)})
        if i % 20 == 0:  # some with a live core connection
            core.accept().close()
        D.delete(ctx_id(doc))
    core.close()
    poll(lambda: D.fds() <= before, f"fds back to {before} (now {D.fds()})",
         10)


# ---- MSRP application-aware (cases in e2ae_tcp_msrp.py) ----------------------------

import e2ae_tcp_msrp  # noqa: E402
for _fn in (e2ae_tcp_msrp.rewrites_paths_both_ways,
            e2ae_tcp_msrp.malformed_ends_only_that_relay,
            e2ae_tcp_msrp.slow_core_reader_bounded,
            e2ae_tcp_msrp.close_notify_behind_back_pressure_ends_relay,
            e2ae_tcp_msrp.reoffer_changes_core_path):
    case(_with_harness(_fn, "msrp_aware_"))


@case
def fin_without_close_notify_is_truncation():
    """The UE's FIN with no TLS close_notify before it: the relay ends as
    a truncation (its own reason and counter), and the core leg still
    gets what was relayed, then a FIN."""
    core = CoreListener()
    doc = D.create(tls_access(), {"transport": "TCP/MSRP",
                                  "remote": remote(core.port)})
    cid = ctx_id(doc)
    ue = python_ue(local_port(doc, 0), UE_PEM, UE_KEY)
    try:
        conn = core.accept()
        up = msrp_send("t1", "before the cut")
        ue.sendall(up)
        assert recv_exactly(conn, len(up)) == up
        # SSLSocket.shutdown() shuts the TCP socket without close_notify.
        ue.shutdown(socket.SHUT_WR)
        data, closed = recv_until_closed(conn, 5)
        assert closed and data == b"", f"core leg not closed ({data!r})"
        poll(lambda: any("TLS truncated" in e.get("detail", {}).get("reason", "")
                         for e in D.get(cid).get("events", [])
                         if e["event"] == "TCP_CLOSED"),
             "TCP_CLOSED naming the truncation", 5)
        poll(lambda: counters(cid).get("failures", {}).get("tlsTruncated") == 1,
             "failures.tlsTruncated", 3)
    finally:
        ue.close()
        core.close()
        D.delete(cid)


rc = D.stop()
shutil.rmtree(TMP, ignore_errors=True)
NOTIFY.srv.shutdown()
case.finish(rc)
