"""The MSRP application-aware cases of e2ae_tcp.py (TS 23.334 5.19.5 on
the TLS/TCP <-> TCP path; docs/e2ae.md "MSRP over TLS, aware"), kept
apart so that e2ae_tcp.py stays readable. Their contexts are dcmf-alg's
(the IMS-ALG) from a UE offer without a=msrp-cema and the core's answer
and re-offer, the SDP each way checked for the MF's own a=path. Each function takes the
running harness (H: the Dcmfd, the UE certificate, the temp dir, the
notify receiver) and raises on failure.

The peers are msrp_peer.py's (written from RFC 4975, not from dcmfd):
the UE over TLS with the AGW's certificate pinned, the core over TCP.
Each strictly parses every byte it receives (start line, header order,
end-line), and answers as RFC 4975 §7.2 says; the core leg's wire is
decoded again by tshark (tshark_check.py), the TLS leg's with the UE's
TLS keys (keylog). Every wait is bounded."""
import hashlib
import ssl
import os
import select
import socket
import threading
import time

import msrp_peer
import tshark_check
from e2ae_tcp_lib import CoreListener, poll, wait_stalled

UE_URI = "msrps://127.0.0.1:9/ue1;tcp"


def _remote(port):
    return {"ipv4Addr": "127.0.0.1", "port": port}


def _core_uri(port):
    return f"msrp://127.0.0.1:{port}/core1;tcp"


def _sdp(origin, port, proto, attrs):
    return "\r\n".join(["v=0", f"o={origin} 1 1 IN IP4 127.0.0.1", "s=-",
                         "c=IN IP4 127.0.0.1", "t=0 0",
                         f"m=message {port} {proto} *", *attrs, ""])


def _ue_offer(H):
    """The UE's offer: no a=msrp-cema, so the IMS-ALG asks for the aware
    relay (TS 23.334 5.19.5)."""
    return _sdp("ue", 9, "TCP/TLS/MSRP", [
        "a=accept-types:text/plain", f"a=path:{UE_URI}", "a=setup:active",
        f"a=fingerprint:{H.UE_FP}", "a=3ge2ae:requested"])


def _core_sdp(core, uri=None):
    return _sdp("core", core.port, "TCP/MSRP", [
        "a=accept-types:text/plain", f"a=path:{uri or _core_uri(core.port)}",
        "a=setup:passive"])


def _path_lines(sdp):
    return [ln for ln in sdp.split("\r\n") if ln.startswith("a=path:")]


def aware_context(H, core, core_path=True):
    """An aware context toward |core|, dcmf-alg's (the IMS-ALG) from the
    UE's offer without a=msrp-cema: the POST carries the UE's path, and
    unless |core_path| is False the core's answer (its address and path)
    is PATCHed in here (else core_answers() does it later). The SDP
    toward each side is checked to carry the MF's URI of that leg as its
    only a=path, and no a=msrp-cema."""
    offer = _ue_offer(H)
    reqs = H.ALG.requests(offer, "access", "offer", notify=H.NOTIFY.uri)
    body = reqs[0]["body"]
    assert reqs[0]["method"] == "POST", reqs
    assert body["terminations"][0]["msrp"] == {"mode": "aware",
                                               "path": UE_URI}, body
    assert body["terminations"][1]["msrp"] == {"mode": "aware"}, body
    st, doc = H.D.call("POST", reqs[0]["uri"], body)
    assert st == 201, f"POST {st}: {doc}"
    to_core = H.ALG.rewrite(offer, "access", "offer", [doc])
    want = doc["terminations"][1]["msrp"]["localPath"]
    assert _path_lines(to_core) == [f"a=path:{want}"], to_core
    assert "a=msrp-cema" not in to_core, to_core
    doc["_ue_offer"] = offer
    return core_answers(H, doc, core) if core_path else doc


def core_answers(H, doc, core):
    """The core's answer through dcmf-alg: its PATCH (the core's address
    and a=path) and the answer toward the UE with the MF's access URI."""
    offer = doc.pop("_ue_offer")
    answer = _core_sdp(core)
    reqs = H.ALG.requests(answer, "core", "answer", reply=[doc])
    assert {"op": "add", "path": "/terminations/1/msrp/path",
            "value": _core_uri(core.port)} in reqs[0]["body"], reqs
    st, doc = H.D.call(reqs[0]["method"], reqs[0]["uri"], reqs[0]["body"],
                       "application/json-patch+json")
    assert st == 200, f"PATCH {st}: {doc}"
    to_ue = H.ALG.rewrite(answer, "core", "answer", [doc], offer=offer)
    want = doc["terminations"][0]["msrp"]["localPath"]
    assert _path_lines(to_ue) == [f"a=path:{want}"], to_ue
    assert "a=msrp-cema" not in to_ue, to_ue
    return doc


class Pair:
    """A UE (TLS, pinned) and a core peer joined through one context."""

    def __init__(self, H, doc, core, keylog=None):
        self.doc = doc
        terms = doc["terminations"]
        self.agw_access = terms[0]["msrp"]["localPath"]
        self.agw_core = terms[1]["msrp"]["localPath"]
        fp = terms[0]["tls"]["localFingerprint"].split(" ")[1]
        ctx = msrp_peer.tls_context(False, H.UE_PEM, H.UE_KEY, keylog=keylog)
        self.access_port = terms[0]["local"]["port"]
        sock = msrp_peer.connect("127.0.0.1", self.access_port, ctx,
                                 expect_fingerprint=fp)
        # Each peer sends toward the MF's URI on its leg (the a=path the
        # IMS-ALG gave it) and expects its own URI alone in To-Path.
        self.ue = msrp_peer.MsrpPeer(sock, UE_URI, self.agw_access)
        self.core_sock = core.accept()
        self.core_uri = _core_uri(core.port)
        self.core = None

    def start_core(self):
        """The core peer starts reading (and answering)."""
        self.core = msrp_peer.MsrpPeer(self.core_sock, self.core_uri,
                                       self.agw_core)
        return self.core

    def close(self):
        for p in (self.ue, self.core):
            if p is not None:
                p.close()
        if self.core is None:
            self.core_sock.close()


def _check_paths(frames, to_uri, from_uri, what):
    for f in frames:
        assert [str(u) for u in f.to_path] == [to_uri], \
            f"{what}: To-Path {f.to_path} (want {to_uri})"
        assert [str(u) for u in f.from_path] == [from_uri], \
            f"{what}: From-Path {f.from_path} (want {from_uri})"


def _exchange(p, body, chunk, sender, receiver, sender_uri, agw_uri_sender,
              receiver_uri, agw_uri_receiver, count):
    mid, tids = sender.send_message(body, chunk_size=chunk,
                                    success_report="yes")
    msg = receiver.wait_message(count, timeout=60)[count - 1]
    assert msg.message_id == mid, f"Message-ID {msg.message_id} != {mid}"
    assert bytes(msg.data) == body, "the message arrived with other bytes"
    for tid in tids:
        r = sender.wait_response(tid, timeout=30)
        assert r.code == 200, f"{tid}: {r.code}"
    rep = sender.wait_report(mid, timeout=30)
    assert rep.header("Status", "").startswith("000 200"), rep.summary()
    assert rep.byte_range[0] == 1 and rep.byte_range[2] == len(body)
    return mid, tids


def rewrites_paths_both_ways(H):
    """SEND small, 64 KiB and 4 MiB (64 KiB chunks) each way with success
    REPORTs; To-Path/From-Path rewritten per leg; Message-ID, Byte-Range,
    REPORTs and 200s end to end; both legs' wire decoded by tshark."""
    core = CoreListener()
    doc = aware_context(H, core)
    cid = doc["contextId"]
    acc_port = doc["terminations"][0]["local"]["port"]
    keylog = f"{H.TMP}/aware.keys"
    pcap = f"{H.TMP}/aware.pcap"
    cap = tshark_check.Capture([core.port, acc_port], pcap)
    cap.start()
    p = None
    try:
        assert doc["terminations"][0]["msrp"]["localPath"].startswith(
            f"msrps://127.0.0.1:{acc_port}/"), doc["terminations"][0]["msrp"]
        assert doc["terminations"][0]["msrp"]["localPath"].endswith(";tcp")
        assert doc["terminations"][1]["msrp"]["localPath"].startswith(
            "msrp://127.0.0.1:"), doc["terminations"][1]["msrp"]
        p = Pair(H, doc, core, keylog)
        p.start_core()
        bodies = [b"hello core", os.urandom(32768).hex().encode(),
                  os.urandom(2 << 20).hex().encode()]
        for i, body in enumerate(bodies, 1):
            _exchange(p, body, 65536, p.ue, p.core, UE_URI, p.agw_access,
                      p.core.local_uri, p.agw_core, i)
        for i, body in enumerate(bodies, 1):
            _exchange(p, body, 65536, p.core, p.ue, p.core.local_uri,
                      p.agw_core, UE_URI, p.agw_access, i)
        assert not p.ue.misaddressed and not p.core.misaddressed, \
            "a request reached a peer not addressed to it"
        # What each peer received names it in To-Path and the MF in
        # From-Path: requests and responses alike.
        _check_paths(p.core.frames, p.core.local_uri, p.agw_core, "core")
        _check_paths(p.ue.frames, UE_URI, p.agw_access, "UE")
        poll(lambda: (H.D.get(cid).get("msrpCounters") or {}).get(
            "chunks", {}).get("fromAccess", 0) >= 70, "msrpCounters", 5)
    finally:
        if p is not None:
            p.close()
        cap.stop()
        core.close()
        H.D.delete(cid)
    res = tshark_check.analyze(pcap, msrp_ports=[core.port, acc_port],
                               tls_ports=[acc_port], keylog=keylog)
    res.assert_clean()
    on = {}
    for t in res.msrp:
        on.setdefault(t["stream"], []).append(t)
    assert len(on) == 2, f"tshark saw MSRP on {len(on)} streams (want 2)"
    want = {p.core.local_uri: p.agw_core, p.agw_core: p.core.local_uri,
            UE_URI: p.agw_access, p.agw_access: UE_URI}
    sends = 0
    for ts in on.values():
        for t in ts:
            to, frm = t.get("To-Path"), t.get("From-Path")
            assert want.get(to) == frm, f"tshark: To-Path {to} From-Path {frm}"
            sends += t.get("method") == "SEND"
    assert sends >= 2 * 2 * (1 + 1 + 64), f"tshark saw {sends} SENDs"
    print(f"#   tshark: {len(res.msrp)} MSRP transactions on both legs",
          flush=True)


def malformed_ends_only_that_relay(H):
    """Bytes that are not MSRP from one UE end its relay (reset toward the
    core, TCP_CLOSED naming it); a second aware relay keeps working."""
    cores = [CoreListener(), CoreListener()]
    docs = [aware_context(H, c) for c in cores]
    pairs = []
    try:
        for d, c in zip(docs, cores):
            pairs.append(Pair(H, d, c))
            pairs[-1].start_core()
        bad, good = pairs
        bad.ue.send_raw(b"HELLO this is not MSRP\r\n\r\n")
        bad.core.wait_closed(10)
        cid = docs[0]["contextId"]
        poll(lambda: any("malformed MSRP from the access peer" in
                         e.get("detail", {}).get("reason", "")
                         for e in H.D.get(cid).get("events", [])
                         if e["event"] == "TCP_CLOSED"),
             "TCP_CLOSED naming malformed MSRP", 5)
        bad.ue.wait_closed(10)
        mid, _ = good.ue.send_message(b"still here", success_report="yes")
        assert bytes(good.core.wait_message(1)[0].data) == b"still here"
        good.ue.wait_report(mid)
        good.core.send_message(b"and back")
        assert bytes(good.ue.wait_message(1)[0].data) == b"and back"
        snap = H.D.get(cid).get("msrpCounters") or {}
        assert snap.get("malformed") == 1, snap
    finally:
        for p in pairs:
            p.close()
        for c, d in zip(cores, docs):
            c.close()
            H.D.delete(d["contextId"])


def slow_core_reader_bounded(H):
    """A 4 MiB message (64 KiB chunks) toward a core that reads nothing:
    the relay stops reading the UE (dcmfd's memory stays bounded), then
    delivers it whole once the core reads, and the 200s come back."""
    core = CoreListener(backlog=False)
    core.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    core.listen()
    doc = aware_context(H, core, core_path=False)
    cid = doc["contextId"]
    p = None
    try:
        # The core's path comes later (its answer): nothing relays before.
        doc = core_answers(H, doc, core)
        p = Pair(H, doc, core)
        p.core_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        body = os.urandom(2 << 20).hex().encode()
        rss0 = H.D.rss_kib()
        result = {}

        def send():
            try:
                result["sent"] = p.ue.send_message(body, chunk_size=65536)
            except OSError as e:
                result["error"] = e
        writer = threading.Thread(target=send, daemon=True)
        writer.start()
        last = wait_stalled(lambda: (H.D.get(cid).get("tcpCounters") or {})
                            .get("toCore", {}).get("bytes", 0))
        assert last < len(body), "nothing held back: no back-pressure"
        grown = H.D.rss_kib() - rss0
        print(f"#   stalled at {last} bytes toward the core; dcmfd RSS "
              f"+{grown} KiB", flush=True)
        assert grown < 4096, f"dcmfd grew {grown} KiB while stalled"
        p.start_core()
        got = p.core.wait_message(1, timeout=60)[0]
        assert hashlib.sha256(bytes(got.data)).digest() == \
            hashlib.sha256(body).digest(), "bytes differ"
        writer.join(30)
        assert "sent" in result, result
        for tid in result["sent"][1]:
            p.ue.wait_response(tid, timeout=30)
    finally:
        if p is not None:
            p.close()
        core.close()
        H.D.delete(cid)


def close_notify_behind_back_pressure_ends_relay(H):
    """The UE sends a message toward a core that reads nothing, then its
    close_notify: the close_notify waits behind the held-back records.
    Once the core reads, the whole message arrives, then a FIN, and the
    relay ends with the close_notify reason (nothing left hanging)."""
    core = CoreListener(backlog=False)
    core.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    core.listen()
    doc = aware_context(H, core)
    cid = doc["contextId"]
    p = None
    try:
        p = Pair(H, doc, core)
        p.core_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        body = os.urandom(384 << 10).hex().encode()
        # 768 KiB in 64 KiB chunks: more than the relay holds while the
        # core does not read, less than the kernel buffers take, so the
        # UE's writes all complete and its close_notify follows them.
        mid, tids = p.ue.send_message(body, chunk_size=65536)
        wait_stalled(lambda: (H.D.get(cid).get("tcpCounters") or {})
                     .get("toCore", {}).get("bytes", 0))
        # The UE's reader stops quietly (no shutdown of its own), then
        # its close_notify goes out behind the held-back records: the
        # socket is non-blocking, so SSL_shutdown is repeated until the
        # alert has left (SSLWantReadError: only the peer's is missing).
        with p.ue._io_lock:
            p.ue._closing = True
        sent = {}

        def close_notify():
            end = time.time() + 30
            while time.time() < end:
                try:
                    with p.ue._io_lock:
                        p.ue.sock.unwrap()
                    sent["ok"] = True
                    return
                except ssl.SSLWantReadError:
                    sent["ok"] = True
                    return
                except ssl.SSLWantWriteError:
                    select.select([], [p.ue.sock], [], 0.2)
                except ssl.SSLError as e:
                    # OpenSSL reads (and refuses) application data in
                    # SSL_shutdown only once its close_notify is written
                    # whole: the core's 200s relayed meanwhile make a
                    # retried unwrap fail this way, after the alert left.
                    if e.reason == "APPLICATION_DATA_AFTER_CLOSE_NOTIFY":
                        sent["ok"] = True
                    else:
                        sent["error"] = e
                    return
                except OSError as e:
                    sent["error"] = e
                    return
        closer = threading.Thread(target=close_notify, daemon=True)
        closer.start()
        core_peer = p.start_core()
        got = core_peer.wait_message(1, timeout=60)[0]
        assert hashlib.sha256(bytes(got.data)).digest() == \
            hashlib.sha256(body).digest(), "bytes differ"
        closer.join(30)
        assert sent.get("ok"), f"the UE's close_notify did not leave: {sent}"
        core_peer.wait_closed(timeout=15)  # the FIN after the message
        poll(lambda: any("close_notify" in e.get("detail", {}).get("reason", "")
                         for e in H.D.get(cid).get("events", [])
                         if e["event"] == "TCP_CLOSED"),
             "TCP_CLOSED for the UE's close_notify", 10)
    finally:
        if p is not None:
            p.close()
        core.close()
        H.D.delete(cid)


def reoffer_changes_core_path(H):
    """A re-offer gives the core a new a=path (PATCH replace): the relay
    addresses the core's new URI from the next chunk on, both ways."""
    core = CoreListener()
    doc = aware_context(H, core)
    cid = doc["contextId"]
    p = None
    try:
        p = Pair(H, doc, core)
        p.start_core()
        p.ue.send_message(b"before")
        assert bytes(p.core.wait_message(1)[0].data) == b"before"
        # The core's re-offer, through dcmf-alg: its PATCH names the new
        # path (and the same address), and the re-offer toward the UE
        # keeps the MF's access URI.
        new_uri = f"msrp://127.0.0.1:{core.port}/core2;tcp"
        reoffer = _core_sdp(core, new_uri)
        reqs = H.ALG.requests(reoffer, "core", "offer", reply=[doc])
        assert reqs[0]["method"] == "PATCH", reqs
        assert {"op": "add", "path": "/terminations/1/msrp/path",
                "value": new_uri} in reqs[0]["body"], reqs
        status, d = H.D.call("PATCH", reqs[0]["uri"], reqs[0]["body"],
                             "application/json-patch+json")
        assert status == 200, f"PATCH {status}: {d}"
        to_ue = H.ALG.rewrite(reoffer, "core", "offer", [d])
        assert _path_lines(to_ue) == [f"a=path:{p.agw_access}"], to_ue
        p.core.local_uri = new_uri  # the core's own URI is the new one
        mid, tids = p.ue.send_message(b"after", success_report="yes")
        assert bytes(p.core.wait_message(2)[1].data) == b"after"
        p.ue.wait_report(mid)
        assert not p.core.misaddressed, "a request named the old URI"
        last = [f for f in p.core.frames if f.method == "SEND"][-1]
        assert last.to_path == [new_uri], last.to_path
    finally:
        if p is not None:
            p.close()
        core.close()
        H.D.delete(cid)
