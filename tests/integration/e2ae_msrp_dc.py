#!/usr/bin/env python3
"""MSRP over a data channel (a WebRTC IMS client, RFC 8873) <-> MSRP over
TCP (the IMS core) through dcmfd's /agw/v1 contexts (issue 12 item 2;
docs/e2ae.md "MSRP over a data channel").

    e2ae_msrp_dc.py DCMFD [SUBSTRING...]

The WIC is werift (msrp_wic_werift.js: a negotiated "msrp" channel,
messages passed through as they are), or Chromium with WIC=chromium
(msrp_wic_chromium.js); the MSRP both ends speak is msrp_peer.py's
(written from RFC 4975, not from dcmfd): on the WIC side one chunk per
data channel message (MsrpDecoder.feed_message refuses anything else),
on the core side over TCP. The IMS-ALG is the dcmf-alg command (built
beside dcmfd): it turns the WIC's SDP offer into the POST (the core's
address, TCP role and path, which this test knows up front, are added)
and rewrites the SDPs toward the core and toward the WIC from the reply. Every byte on the core leg is decoded by tshark's MSRP dissector
(tshark_check.py): a malformed frame fails the case. One dcmfd on
127.0.0.1 (meson runs this under in-netns) serves every case. Prints
"ok - NAME" or "not ok - NAME: REASON"; exits 1 on failure. Every wait
is a bounded poll.
"""
import hashlib
import json
import os
import queue
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from msrp_peer import MsrpPeer, MsrpParseError  # noqa: E402
import tshark_check  # noqa: E402
from e2ae_tcp_lib import AGW, Cases, DcmfAlg, Dcmfd  # noqa: E402

DCMFD = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="e2ae_msrp_dc.")
ALG = DcmfAlg(DCMFD, TMP)  # the IMS-ALG half of this test
WIC_KIND = os.environ.get("WIC", "werift")
STREAM_ID = 3


def poll(cond, what, seconds=10.0):
    end = time.time() + seconds
    while True:
        v = cond()
        if v:
            return v
        if time.time() > end:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.01)


# ---- dcmfd and its API: e2ae_tcp_lib.Dcmfd (curl, every /agw/v1 answer
# checked against docs/openapi.yaml when the checker's modules are there)


def events(cid):
    return [e["event"] for e in D.get(cid).get("events", [])]


# ---- the WIC: a WebRTC stack as the data channel, msrp_peer.py as MSRP ------


class FakeSock:
    """What MsrpPeer writes to: each sendall is one chunk (chunk_message
    and response_for produce one chunk per call), so one DC message."""

    def __init__(self, wic):
        self.wic = wic

    def sendall(self, data):
        self.wic.command({"cmd": "send", "hex": bytes(data).hex()})

    def shutdown(self, how):
        pass

    def close(self):
        pass


class DcPeer(MsrpPeer):
    """MsrpPeer over a data channel: fed one message at a time, each of
    which must be exactly one chunk (RFC 8873 §5.4) no larger than the
    WIC's max-message-size."""

    def __init__(self, wic, local_uri, remote_uri, max_message_size):
        self.max_message_size = max_message_size
        self.message_sizes = []
        super().__init__(FakeSock(wic), local_uri, remote_uri)

    def start(self):
        pass  # fed by the WIC's reader thread

    def on_message(self, data):
        with self.cond:
            self.message_sizes.append(len(data))
        try:
            if len(data) > self.max_message_size:
                raise MsrpParseError(f"a {len(data)}-byte message is over the "
                                     f"WIC's max-message-size {self.max_message_size}")
            self._handle(self.decoder.feed_message(data))
        except MsrpParseError as e:
            with self.cond:
                self.error = f"MsrpParseError: {e}"
                self.cond.notify_all()

    def channel_closed(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def close(self):
        pass


class Wic:
    """The WebRTC stack in a Node process (JSON lines; see the script)."""

    def __init__(self):
        script = "msrp_wic_chromium.js" if WIC_KIND == "chromium" else "msrp_wic_werift.js"
        self.proc = subprocess.Popen(["node", os.path.join(HERE, script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(TMP, "wic.stderr"), "ab"))
        self.events = queue.Queue()
        self.peer = None
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def command(self, obj):
        with self.lock:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            if ev["ev"] == "msg":
                if self.peer is not None:
                    self.peer.on_message(bytes.fromhex(ev["hex"]))
            elif ev["ev"] == "open":
                self.opened.set()
            elif ev["ev"] == "closed":
                self.closed.set()
                if self.peer is not None:
                    self.peer.channel_closed()
            else:
                self.events.put(ev)

    def next_event(self, kind, seconds=90):
        end = time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                raise AssertionError(f"timed out: the WIC's {kind}")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev["ev"] == "error":
                raise AssertionError(f"WIC: {ev['error']}")
            if ev["ev"] == kind:
                return ev

    def stop(self):
        try:
            self.command({"cmd": "quit"})
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# ---- the IMS-ALG: SDP <-> API calls ----------------------------------------


def sdp_attr(lines, name):
    for line in lines:
        if line.startswith(f"a={name}:"):
            return line[len(name) + 3:].strip()
    return None


def wic_offer_with_dcmap(sdp, wic_path, cema):
    """The WIC's application adds its a=dcmap and a=dcsa lines (RFC 8873
    §4.3-4.5) to the m=application section of the stack's offer."""
    extra = [f'a=dcmap:{STREAM_ID} label="chat";subprotocol="msrp"',
             f"a=dcsa:{STREAM_ID} path:{wic_path}",
             f"a=dcsa:{STREAM_ID} setup:active"]
    if cema:
        extra.append(f"a=dcsa:{STREAM_ID} msrp-cema")
    lines = sdp.rstrip("\r\n").split("\r\n")
    return "\r\n".join(lines + extra) + "\r\n"


def alg_context(offer, core_port, core_path, mode, setup):
    """The POST the IMS-ALG makes from the WIC's offer (dcmf-alg request)
    and the core's SDP, which this test knows up front (its address,
    a=setup, a=path; a=msrp-cema decides the mode)."""
    reqs = ALG.requests(offer, "access", "offer")
    assert len(reqs) == 1 and reqs[0]["path"] == "msrp-dc", reqs
    body = reqs[0]["body"]
    access, core = body["terminations"]
    assert access["dataChannel"]["streamId"] == STREAM_ID, access
    # dcmf-alg picks the mode from the WIC's msrp-cema; a case may ask
    # for another one (the API must then refuse it).
    assert core["msrp"]["mode"] == ("agnostic" if access["dataChannel"]["dcsa"]["msrpCema"]
                                    else "aware"), core
    core["msrp"] = {"mode": mode}
    core["remote"] = {"ipv4Addr": "127.0.0.1", "port": core_port}
    core["tcp"] = {"setup": setup}
    if mode == "aware":
        core["msrp"]["path"] = core_path
    return body


def core_sdp(core_port, core_path, cema, setup):
    """The core's own SDP (its answer): m=message TCP/MSRP, its a=path,
    a=setup the mirror of the AGW's TCP role, a=msrp-cema when CEMA."""
    return "\r\n".join([
        "v=0", "o=core 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
        f"m=message {core_port} TCP/MSRP *", "c=IN IP4 127.0.0.1",
        "a=accept-types:*", f"a=path:{core_path}",
        f"a=setup:{'passive' if setup == 'active' else 'active'}"]
        + (["a=msrp-cema"] if cema else []) + [""])


def alg_answer_to_wic(offer, ctx, core_port, core_path, cema, setup):
    """The answer toward the WIC (dcmf-alg rewrite of the core's SDP): the
    AGW's port, ICE-lite credentials, fingerprint and setup, and the
    dcmap/dcsa of the MSRP session with the path the WIC must send to (the
    MF's ;dc URI when aware, the core's path with CEMA)."""
    sdp = ALG.rewrite(core_sdp(core_port, core_path, cema, setup), "core", "answer",
                      [ctx], offer=offer)
    acc = ctx["terminations"][0]
    path = acc["dataChannel"]["localPath"] if not cema else core_path
    for line in (f"m=application {acc['local']['port']} UDP/DTLS/SCTP webrtc-datachannel",
                 f"a=dcsa:{STREAM_ID} path:{path}", f"a=dcsa:{STREAM_ID} setup:passive",
                 f"a=setup:{acc['dtls']['localSetup']}", "a=ice-lite"):
        assert line in sdp.split("\r\n"), f"{line!r} not in\n{sdp}"
    return sdp


def alg_offer_to_core(offer, ctx):
    """m=message TCP/MSRP toward the core (dcmf-alg rewrite of the WIC's
    offer): the AGW's core port, a=path (the MF's ;tcp URI when aware,
    the WIC's path with CEMA), a=setup as the AGW's TCP role gives it,
    a=msrp-cema when agnostic."""
    return ALG.rewrite(offer, "access", "offer", [ctx])


# ---- a call -----------------------------------------------------------------


class Call:
    """A WIC, a core peer and the context between them, up and open."""

    def __init__(self, mode, setup, capture=True, core_reads=True, core_rcvbuf=None,
                 path_later=False):
        self.mode, self.setup = mode, setup
        cema = mode == "agnostic"
        self.wic_path = f"msrps://127.0.0.1:9/{secrets.token_hex(6)};dc"
        core_sid = secrets.token_hex(6)
        self.core_listener = None
        if setup in ("active", "merge"):  # the AGW connects: the core listens
            self.core_listener = socket.create_server(("127.0.0.1", 0))
            if core_rcvbuf:  # inherited by the accepted socket
                self.core_listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                              core_rcvbuf)
            core_port = self.core_listener.getsockname()[1]
        else:
            core_port = 9  # the AGW listens; the core connects from anywhere
        self.core_path = f"msrp://127.0.0.1:{core_port}/{core_sid};tcp"
        self.wic = Wic()
        self.wic.command({"cmd": "offer", "id": STREAM_ID, "label": "chat"})
        stack_offer = self.wic.next_event("offer")["sdp"]
        self.offer = wic_offer_with_dcmap(stack_offer, self.wic_path, cema)
        body = alg_context(self.offer, core_port, self.core_path, mode, setup)
        if path_later:  # UE-originated: the core has not answered yet
            del body["terminations"][1]["msrp"]["path"]
        st, ctx = D.call("POST", AGW, body)
        assert st == 201, f"POST {st}: {ctx}"
        self.ctx, self.cid = ctx, ctx["contextId"]
        if path_later:  # the core's answer brings its a=path
            st, ctx = D.call("PATCH", f"{AGW}/{self.cid}", [
                {"op": "add", "path": "/terminations/1/msrp/path",
                 "value": self.core_path}], "application/json-patch+json")
            assert st == 200, f"PATCH {st}: {ctx}"
        self.agw_core_port = ctx["terminations"][1]["local"]["port"]
        self.core_sdp = alg_offer_to_core(self.offer, ctx)
        assert f"m=message {self.agw_core_port} TCP/MSRP *" in self.core_sdp
        # TCP merge is announced to the core as passive (TS 23.334 6.2.18.4)
        assert f"a=setup:{'passive' if setup == 'merge' else setup}" in self.core_sdp
        assert f"a=path:{self.wic_path if cema else ctx['terminations'][1]['msrp']['localPath']}" \
            in self.core_sdp
        mms = sdp_attr(self.offer.split("\r\n"), "max-message-size")
        self.wic_mms = int(mms) if mms else 65536
        self.cap = None
        if capture:
            self.pcap = os.path.join(TMP, f"{self.cid}.pcap")
            self.cap = tshark_check.Capture([self.agw_core_port], self.pcap)
            self.cap.start()
        # The MSRP ends: with CEMA each sends to the other's own path;
        # aware, each sends to the MF's URI on its side.
        wic_to = self.core_path if cema else ctx["terminations"][0]["dataChannel"]["localPath"]
        core_to = self.wic_path if cema else ctx["terminations"][1]["msrp"]["localPath"]
        self.dc = DcPeer(self.wic, self.wic_path, wic_to, self.wic_mms)
        self.wic.peer = self.dc
        self.wic.command({"cmd": "answer",
                          "sdp": alg_answer_to_wic(self.offer, ctx, core_port,
                                                   self.core_path, cema, setup)})
        if setup in ("active", "merge"):
            self.core_listener.settimeout(10)
            sock, self.agw_source = self.core_listener.accept()
        else:
            sock = socket.create_connection(("127.0.0.1", self.agw_core_port), 10)
        self.core_sock = sock
        self.core = MsrpPeer(sock, self.core_path, core_to) if core_reads else None
        if not self.wic.opened.wait(60):
            raise AssertionError("the data channel did not open")

    def check_wire(self):
        self.cap.stop()
        res = tshark_check.analyze(self.pcap, msrp_ports=[self.agw_core_port])
        res.assert_clean()
        return res

    def close(self):
        if self.cap is not None and self.cap.proc is not None and self.cap.proc.poll() is None:
            self.cap.stop(check=False)
        self.wic.stop()
        if self.core is not None:
            self.core.close()
        else:
            self.core_sock.close()
        if self.core_listener is not None:
            self.core_listener.close()
        D.call("DELETE", f"{AGW}/{self.cid}")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def exchange(c):
    """Small, 2 KiB and 1 MiB both ways with Success-Report: 200s and
    REPORTs end to end, bodies intact, the WIC's chunks within its limit."""
    sizes = [5, 2048, 1 << 20]
    # WIC -> core: chunks that fit the WIC's own sending limit (RFC 8841:
    # the AGW's max-message-size of 256 KiB), 64 KiB each.
    sent = []
    took = {}
    for n in sizes:
        body = secrets.token_bytes(n)
        t0 = time.monotonic()
        mid, tids = c.dc.send_message(body, chunk_size=min(65536, max(n, 1)),
                                      success_report="yes")
        sent.append((mid, body))
        for tid in tids:
            r = c.dc.wait_response(tid, 30)
            assert r.code == 200, f"WIC SEND {tid}: {r.code}"
        rep = c.dc.wait_report(mid, 30)
        assert rep.header("Status").startswith("000 200"), rep.header("Status")
        took["to core"] = time.monotonic() - t0
    got = c.core.wait_message(len(sizes), 30)
    for (mid, body), m in zip(sent, got):
        assert m.message_id == mid and m.complete and sha(m.data) == sha(body), m.message_id
    # core -> WIC: each message one chunk on TCP (1 MiB > the WIC's
    # max-message-size: the AGW re-chunks it).
    back = []
    for n in sizes:
        body = secrets.token_bytes(n)
        t0 = time.monotonic()
        mid, tids = c.core.send_message(body, chunk_size=max(n, 1), success_report="yes")
        back.append((mid, body))
        assert len(tids) == 1
        r = c.core.wait_response(tids[0], 30)
        assert r.code == 200, f"core SEND: {r.code}"
        rep = c.core.wait_report(mid, 30)
        assert rep.header("Status").startswith("000 200"), rep.header("Status")
        took["to WIC"] = time.monotonic() - t0
    # The WIC's messages cross stdin/stdout as hex lines: these include
    # that, so they bound the relay's time, they do not measure it.
    print("#   1 MiB SEND to its REPORT: %s (%s WIC)" % (
        ", ".join("%s %.0f ms" % (k, v * 1000) for k, v in took.items()), WIC_KIND),
        flush=True)
    got = c.dc.wait_message(len(sizes), 30)
    for (mid, body), m in zip(back, got):
        assert m.message_id == mid and m.complete and sha(m.data) == sha(body), m.message_id
    assert c.dc.error is None and c.core.error is None, (c.dc.error, c.core.error)
    assert max(c.dc.message_sizes) <= c.wic_mms, (max(c.dc.message_sizes), c.wic_mms)
    # the 1 MiB SEND arrived in pieces, each one chunk of one message
    assert len(c.dc.message_sizes) > len(sizes) + 3, len(c.dc.message_sizes)


def round_trip(c, up, down, success_report=None):
    """The first SEND each way: the WIC's |up| is answered 200 and reaches
    the core, then the core's |down| is answered 200 and reaches the WIC."""
    mid, tids = c.dc.send_message(up, success_report=success_report)
    assert c.dc.wait_response(tids[0], 30).code == 200
    assert c.core.wait_message(1, 30)[0].data == up
    mid, tids = c.core.send_message(down)
    assert c.core.wait_response(tids[0], 30).code == 200
    assert c.dc.wait_message(1, 30)[0].data == down


MSRP_DC_METRIC = 'dcmf_agw_e2ae_msrp_dc_%s_total{%s}'


def exchange_case(mode, setup):
    up_before = D.metric(MSRP_DC_METRIC % ("bytes", 'direction="to_core"'))
    msgs_before = D.metric(MSRP_DC_METRIC % ("messages", 'direction="to_access"'))
    c = Call(mode, setup)
    try:
        exchange(c)
        # /metrics sums every context's MSRP_COUNTERS (pushed each second)
        poll(lambda: D.metric(MSRP_DC_METRIC % ("bytes", 'direction="to_core"'))
             - up_before >= (1 << 20) + 2048 + 5,
             "/metrics: the WIC's bytes toward the core")
        poll(lambda: D.metric(MSRP_DC_METRIC % ("messages", 'direction="to_access"'))
             - msgs_before >= len(c.dc.message_sizes),
             "/metrics: every message the WIC got")
        res = c.check_wire()
        sends = res.msrp_requests("SEND")
        assert len(sends) >= 6, f"tshark saw {len(sends)} SENDs on the core leg"
        if mode == "aware":
            doc = D.get(c.cid)
            assert doc["terminations"][0]["dataChannel"]["localPath"].endswith(";dc")
    finally:
        c.close()


D = Dcmfd(DCMFD)
D.start()
case = Cases(D, sys.argv[2:])
try:
    @case
    def agnostic_agw_active():
        exchange_case("agnostic", "active")

    @case
    def agnostic_agw_passive():
        exchange_case("agnostic", "passive")

    @case
    def aware_agw_active():
        exchange_case("aware", "active")

    @case
    def aware_agw_passive():
        exchange_case("aware", "passive")

    @case
    def merge_agw_connects_from_its_core_port():
        # TCP merge: the AGW listens on its core port and connects from
        # it; a core that listens gets the AGW's connection from the
        # port the SDP names, and the relay runs over it.
        c = Call("agnostic", "merge")
        try:
            assert c.agw_source[1] == c.agw_core_port, (c.agw_source, c.agw_core_port)
            round_trip(c, b"over the merged connection", b"and back")
            c.check_wire()
        finally:
            c.close()

    @case
    def aware_core_path_by_patch():
        # The ALG learns the core's a=path from its answer, after the POST.
        c = Call("aware", "active", path_later=True)
        try:
            round_trip(c, b"after the answer", b"and back", success_report="yes")
            c.check_wire()
        finally:
            c.close()

    @case
    def aware_reoffer_changes_both_paths():
        # RFC 8873 §4.4: a re-offer may change the dcsa path (the dcmap
        # stays), and the core's answer may bring a new a=path. The
        # relay names the new paths from the next chunk on; each peer
        # answers 481 to a request not addressed to its own URI.
        c = Call("aware", "active")
        try:
            mid, tids = c.dc.send_message(b"before")
            assert c.dc.wait_response(tids[0], 30).code == 200
            assert c.core.wait_message(1, 30)[0].data == b"before"
            new_wic = f"msrps://127.0.0.1:9/{secrets.token_hex(6)};dc"
            new_core = f"msrp://127.0.0.1:9/{secrets.token_hex(6)};tcp"
            st, doc = D.call("PATCH", f"{AGW}/{c.cid}", [
                {"op": "replace", "path": "/terminations/0/dataChannel/dcsa/path",
                 "value": new_wic},
                {"op": "replace", "path": "/terminations/1/msrp/path",
                 "value": new_core}], "application/json-patch+json")
            assert st == 200, f"PATCH {st}: {doc}"
            with c.dc.cond:
                c.dc.local_uri = new_wic
            with c.core.cond:
                c.core.local_uri = new_core
            mid, tids = c.core.send_message(b"to the new WIC path")
            assert c.core.wait_response(tids[0], 30).code == 200
            got = c.dc.wait_message(1, 30)[0]
            assert got.data == b"to the new WIC path", got.data
            mid, tids = c.dc.send_message(b"to the new core path")
            assert c.dc.wait_response(tids[0], 30).code == 200
            got = c.core.wait_message(2, 30)[1]
            assert got.data == b"to the new core path", got.data
            assert not c.dc.misaddressed and not c.core.misaddressed, \
                (c.dc.misaddressed, c.core.misaddressed)
            # A path may change, not go: the field is named.
            st, doc = D.call("PATCH", f"{AGW}/{c.cid}", [
                {"op": "remove", "path": "/terminations/1/msrp/path"}],
                "application/json-patch+json")
            assert st == 400 and "/terminations/1/msrp/path" in json.dumps(doc), (st, doc)
            c.check_wire()
        finally:
            c.close()

    @case
    def core_refused_raises_tcp_failure():
        # Nobody listens where the AGW connects: TCP_FAILURE, and the
        # channel is closed once it opened.
        lst = socket.create_server(("127.0.0.1", 0))
        port = lst.getsockname()[1]
        lst.close()
        wic = Wic()
        try:
            wic.command({"cmd": "offer", "id": STREAM_ID, "label": "chat"})
            offer = wic_offer_with_dcmap(wic.next_event("offer")["sdp"],
                                         "msrps://127.0.0.1:9/x;dc", True)
            st, ctx = D.call("POST", AGW, alg_context(offer, port, None, "agnostic",
                                                      "active"))
            assert st == 201, (st, ctx)
            wic.command({"cmd": "answer", "sdp": alg_answer_to_wic(
                offer, ctx, port, "msrp://127.0.0.1:9/y;tcp", True, "active")})
            cid = ctx["contextId"]
            poll(lambda: "TCP_FAILURE" in events(cid), "TCP_FAILURE event", 20)
            ev = [e for e in D.get(cid)["events"] if e["event"] == "TCP_FAILURE"][0]
            assert ev["detail"] == {"leg": "core", "reason": "refused"}, ev
            if not wic.closed.wait(30):
                raise AssertionError("the channel stayed open without a core leg")
            D.call("DELETE", f"{AGW}/{cid}")
        finally:
            wic.stop()

    @case
    def core_reset_closes_the_channel():
        c = Call("agnostic", "active", capture=False)
        try:
            c.core_sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.core.close()
            c.core = None
            if not c.wic.closed.wait(15):
                raise AssertionError("the channel stayed open after the core's RST")
            poll(lambda: "TCP_CLOSED" in events(c.cid), "TCP_CLOSED event")
        finally:
            c.close()

    @case
    def wic_close_sends_fin_to_the_core():
        c = Call("agnostic", "active", capture=False)
        try:
            c.wic.command({"cmd": "close"})
            c.core.wait_closed(15)
            assert c.core.error is None, c.core.error  # FIN, not a reset
            poll(lambda: "TCP_CLOSED" in events(c.cid), "TCP_CLOSED event")
        finally:
            c.close()

    @case
    def wic_close_delivers_to_a_core_that_answers_late():
        # The WIC closes its channel while the core, which had stopped
        # reading, still has to take a good part of a 1 MiB message; it
        # then reads, answering each SEND with a 200 (RFC 4975 7.2) the
        # AGW no longer reads. The AGW's graceful close reads and drops
        # those until the core's FIN: every byte the AGW wrote reaches
        # the core, then a FIN. Closing with them unread would answer
        # with a reset and drop what the AGW's kernel had not sent yet.
        from msrp_peer import MsrpDecoder, response_for
        c = Call("agnostic", "active", capture=False, core_reads=False,
                 core_rcvbuf=16384)
        try:
            c.dc.send_message(secrets.token_bytes(1 << 20), chunk_size=65536)

            def to_core():
                got = D.get(c.cid).get("msrpCounters") or {}
                return got.get("toCore", {}).get("bytes")

            last = [None, time.time()]

            def stalled():  # nothing more reaches the core for 1.5 s
                sent = to_core()
                if sent != last[0]:
                    last[0], last[1] = sent, time.time()
                    return False
                return bool(sent) and time.time() - last[1] > 1.5

            poll(stalled, "the relay toward the core stalls", 60)
            c.wic.command({"cmd": "close"})
            poll(lambda: "TCP_CLOSED" in events(c.cid), "TCP_CLOSED event")
            ev = [e for e in D.get(c.cid)["events"] if e["event"] == "TCP_CLOSED"]
            assert ev[0]["detail"] == {"reason": "channelClosed"}, ev
            dec, got, answered, end = MsrpDecoder(), 0, 0, None
            c.core_sock.settimeout(10)
            while end is None:
                try:
                    data = c.core_sock.recv(65536)
                except ConnectionResetError:
                    end = "reset"
                    break
                if not data:
                    end = "fin"
                    break
                got += len(data)
                for f in dec.feed(data):
                    if not f.is_response:
                        c.core_sock.sendall(response_for(f, 200, c.core_path))
                        answered += 1
            assert end == "fin", f"{end} after {got} bytes, the AGW wrote {to_core()}"
            # The AGW wrote nothing after the close began: its counter
            # (pushed with TCP_CLOSED) settles at exactly what came.
            poll(lambda: to_core() == got, f"the AGW's bytes to the core "
                 f"({to_core()}) equal the {got} the core got", 5)
            assert answered >= 1, "the core answered nothing while the AGW closed"
            print(f"#   {got} bytes to the core after the channel closed its "
                  f"side, {answered} late 200s dropped by the AGW", flush=True)
        finally:
            c.close()

    @case
    def wic_gone_then_delete_closes_tcp():
        # The WIC vanishes without a word (werift's close sends no SCTP
        # ABORT): consent is lost after 30 s (RFC 7675), the ALG deletes
        # the context, and the core gets a FIN, not a reset.
        c = Call("agnostic", "active", capture=False)
        try:
            c.wic.stop()
            poll(lambda: "CONSENT_LOST" in events(c.cid), "CONSENT_LOST event", 45)
            assert not c.core.closed, "the core leg closed before the DELETE"
            st, _ = D.call("DELETE", f"{AGW}/{c.cid}")
            assert st == 204, st
            c.core.wait_closed(15)
            assert c.core.error is None, c.core.error
        finally:
            c.close()

    @case
    def slow_core_reader_bounds_memory():
        slow = Call("agnostic", "active", capture=False, core_reads=False,
                    core_rcvbuf=16384)
        other = None
        try:
            before = D.rss_kib()
            body = secrets.token_bytes(4 << 20)
            slow.dc.send_message(body, chunk_size=65536)

            def counters():
                return D.get(slow.cid).get("msrpCounters") or {}

            # Wait until the relay stalls (nothing more reaches the core
            # for a second) or the media ends past its backlog bound.
            last = [None, time.time()]

            def stalled():
                if "TCP_CLOSED" in events(slow.cid):
                    return "ended"
                sent = counters().get("toCore", {}).get("bytes")
                if sent != last[0]:
                    last[0], last[1] = sent, time.time()
                    return None
                return "stalled" if sent and time.time() - last[1] > 1.5 else None

            how = poll(stalled, "the stalled relay settles", 60)
            if how == "ended":
                ev = [e for e in D.get(slow.cid)["events"] if e["event"] == "TCP_CLOSED"]
                how += " (%s)" % ev[0]["detail"].get("reason")
                assert ev[0]["detail"].get("reason") == "overflow", ev
            grown = D.rss_kib() - before
            c = counters()
            print(f"#   4 MiB toward a core that reads nothing: {how} after "
                  f"{c.get('toCore', {}).get('bytes')} bytes to the core, relay "
                  f"peak {c.get('peakMem')} bytes, dcmfd RSS +{grown} KiB", flush=True)
            assert (c.get("peakMem") or 0) < 2 << 20, c
            assert grown < 16384, f"dcmfd grew {grown} KiB"
            other = Call("agnostic", "active", capture=False)
            mid, tids = other.dc.send_message(b"still here", success_report="yes")
            assert other.dc.wait_response(tids[0], 30).code == 200
            assert other.core.wait_message(1, 30)[0].data == b"still here"
            assert D.proc.poll() is None, "dcmfd died"
        finally:
            slow.close()
            if other is not None:
                other.close()

    @case
    def bad_data_channel_names_the_field():
        wic = Wic()
        try:
            wic.command({"cmd": "offer", "id": STREAM_ID, "label": "chat"})
            offer = wic_offer_with_dcmap(wic.next_event("offer")["sdp"],
                                         "msrps://127.0.0.1:9/x;dc", False)
            body = alg_context(offer, 9, "msrp://127.0.0.1:9/y;tcp", "agnostic", "active")
            body["terminations"][0]["dataChannel"]["maxRetr"] = 2
            body["terminations"][0]["dataChannel"]["ordered"] = False
            st, doc = D.call("POST", AGW, body)
            assert st == 400, (st, doc)
            names = {p["param"] for p in doc["invalidParams"]}
            for want in ("/terminations/0/dataChannel/maxRetr",
                         "/terminations/0/dataChannel/ordered",
                         "/terminations/0/dataChannel/dcsa/msrpCema"):
                assert want in names, (want, names)
        finally:
            wic.stop()
finally:
    rc = D.stop()
    if os.environ.get("KEEP_TMP"):
        print(f"# kept {TMP}")
    else:
        shutil.rmtree(TMP, ignore_errors=True)
case.finish(rc)
