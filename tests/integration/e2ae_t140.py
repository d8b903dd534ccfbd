#!/usr/bin/env python3
"""T.140 real-time text over a data channel (a WebRTC IMS client, RFC
8865) <-> T.140 over RTP (the IMS core, RFC 4103 with RFC 2198
redundancy) through dcmfd's /agw/v1 contexts (issue 13 item 2;
docs/e2ae.md "T.140 over a data channel <-> RTP").

    e2ae_t140.py DCMFD [SUBSTRING...]

The WIC is werift (msrp_wic_werift.js with protocol "t140": a negotiated
channel, text sent as string messages), or Chromium with WIC=chromium
(msrp_wic_chromium.js). The core is t140_peer.py's LivePeer (written
from RFC 4103, RFC 2198 and RFC 3550, not from dcmfd): a sender that
buffers 300 ms and sends red, and a receiver that recovers by
redundancy and marks what it cannot with U+FFFD. The IMS-ALG is the
dcmf-alg command (built beside dcmfd): the WIC's offer gives the POST,
the offer toward the core (m=text RTP/AVP), the core's answer the PATCH
and the answer toward the WIC. What the AGW sends the core is decoded by
tshark's RTP and RFC 2198 dissectors (Wireshark 4.0 has no T.140 one:
the T140blocks are compared here). One dcmfd on 127.0.0.1 (meson runs
this under in-netns) serves every case. Prints "ok - NAME" or "not ok -
NAME: REASON"; exits 1 on failure. Every wait is a bounded poll.
"""
import json
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rtcp_peer  # noqa: E402
import t140_peer  # noqa: E402
import tshark_check  # noqa: E402
from e2ae_tcp_lib import AGW, Dcmfd  # noqa: E402

DCMFD = sys.argv[1]
ALG = os.path.join(os.path.dirname(os.path.abspath(DCMFD)), "dcmf-alg")
FILTERS = sys.argv[2:]
TMP = tempfile.mkdtemp(prefix="e2ae_t140.")
WIC_KIND = os.environ.get("WIC", "werift")
STREAM_ID = 5
MISSING = "\ufffd"
results = []


def poll(cond, what, seconds=10.0):
    end = time.time() + seconds
    while True:
        v = cond()
        if v:
            return v
        if time.time() > end:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.01)


def case(fn):
    """A small runner of its own (the e2ae tests' runners are to be
    unified later)."""
    name = fn.__name__
    if FILTERS and not any(f in name for f in FILTERS):
        return fn
    try:
        fn()
        print(f"ok - {name}", flush=True)
        results.append(True)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        print(f"not ok - {name}: {type(e).__name__}: {e}", flush=True)
        for line in D.log_tail():
            print(f"#   {line}")
        results.append(False)
    return fn


def events(cid):
    return [e["event"] for e in D.get(cid).get("events", [])]


def counters(cid):
    return D.get(cid).get("t140Counters") or {}


def counter(cid, obj, key):
    return counters(cid).get(obj, {}).get(key, 0)


# ---- the WIC ---------------------------------------------------------------


class Wic:
    """The WebRTC stack in a Node process (JSON lines, see the script);
    the text the channel delivered is kept in order."""

    def __init__(self):
        script = "msrp_wic_chromium.js" if WIC_KIND == "chromium" else "msrp_wic_werift.js"
        self.proc = subprocess.Popen(["node", os.path.join(HERE, script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(TMP, "wic.stderr"), "ab"))
        self.events = queue.Queue()
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.got = b""
        self.messages = 0
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
                with self.lock:
                    self.got += bytes.fromhex(ev["hex"])
                    self.messages += 1
            elif ev["ev"] == "open":
                self.opened.set()
            elif ev["ev"] == "closed":
                self.closed.set()
            else:
                self.events.put(ev)

    def text(self):
        with self.lock:
            return self.got.decode("utf-8")  # whole characters per message

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

    def type(self, text):
        self.command({"cmd": "text", "text": text})

    def stop(self):
        try:
            self.command({"cmd": "quit"})
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# ---- the IMS-ALG: dcmf-alg --------------------------------------------------


def dcmf_alg(args, stdin, reply=None, offer=None):
    cmd = [ALG] + args
    files = []
    for opt, data in (("--reply", reply), ("--offer", offer)):
        if data is not None:
            fd, name = tempfile.mkstemp(dir=TMP)
            with os.fdopen(fd, "w") as f:
                f.write(data if isinstance(data, str) else json.dumps(data))
            cmd += [opt, name]
            files.append(name)
    try:
        p = subprocess.run(cmd, input=stdin.encode(), capture_output=True, timeout=10)
    finally:
        for name in files:
            os.unlink(name)
    assert p.returncode == 0, f"dcmf-alg {args}: {p.returncode} {p.stderr.decode()}"
    return p.stdout.decode()


def wic_offer_with_dcmap(sdp, cps=None, direction=None, dcmap_extra=""):
    """The WIC's application adds its a=dcmap and a=dcsa lines (RFC 8865
    §4.1-4.2) to the m=application section of the stack's offer."""
    extra = [f'a=dcmap:{STREAM_ID} label="rtt";subprotocol="t140"{dcmap_extra}',
             f"a=dcsa:{STREAM_ID} hlang-send:en", f"a=dcsa:{STREAM_ID} hlang-recv:en"]
    if cps:
        extra.append(f"a=dcsa:{STREAM_ID} fmtp:t140 cps={cps}")
    if direction:
        extra.append(f"a=dcsa:{STREAM_ID} {direction}")
    lines = sdp.rstrip("\r\n").split("\r\n")
    return "\r\n".join(lines + extra) + "\r\n"


def core_answer(port, direction="sendrecv", extra=(), red=True):
    """The core's answer (its peer's m=text line, RFC 4103 §6); |extra|:
    more attribute lines (a=rtcp, a=rtcp-mux); without red, t140 alone
    on PT 100."""
    mirror = {"sendonly": "recvonly", "recvonly": "sendonly"}.get(direction, direction)
    text = ([f"m=text {port} RTP/AVP 98 100", "c=IN IP4 127.0.0.1",
             "a=rtpmap:98 t140/1000", "a=rtpmap:100 red/1000", "a=fmtp:100 98/98/98"]
            if red else
            [f"m=text {port} RTP/AVP 100", "c=IN IP4 127.0.0.1", "a=rtpmap:100 t140/1000"])
    return "\r\n".join([
        "v=0", "o=core 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0"] + text + [
        f"a={mirror}", *extra, ""])


def post(offer):
    reqs = json.loads(dcmf_alg(["request", "--side", "access", "--kind", "offer"],
                               offer))["requests"]
    assert len(reqs) == 1 and reqs[0]["path"] == "t140-dc", reqs
    assert "note" not in reqs[0], reqs[0]
    return D.call("POST", AGW, reqs[0]["body"])


# ---- a call -----------------------------------------------------------------


class Call:
    """A WIC, an RTP text peer and the context between them, up and open."""

    def __init__(self, cps=None, direction=None, capture=True, rtcp=None,
                 core_red=True):
        # rtcp: None (RTCP to the RTP port + 1, nobody there), "port" (the
        # peer's RTCP socket, a=rtcp) or "mux" (a=rtcp-mux, RFC 5761).
        self.peer = (t140_peer.LivePeer(rtcp=rtcp == "port") if core_red else
                     t140_peer.LivePeer(pt=100, red_pt=100, use_red=False,
                                        rtcp=rtcp == "port"))
        self.wic = Wic()
        self.cap = None
        self.wic.command({"cmd": "offer", "id": STREAM_ID, "label": "rtt",
                          "protocol": "t140"})
        self.offer = wic_offer_with_dcmap(self.wic.next_event("offer")["sdp"], cps,
                                          direction)
        st, ctx = post(self.offer)
        assert st == 201, f"POST {st}: {ctx}"
        self.cid = ctx["contextId"]
        acc, core = ctx["terminations"]
        assert acc["dataChannel"]["subprotocol"] == "t140", acc
        self.agw_core_port = core["local"]["port"]
        self.agw_rtcp_port = core.get("localRtcpPort")
        # Toward the core: m=text RTP/AVP t140 + red (RFC 8865 §6).
        to_core = dcmf_alg(["rewrite", "--side", "access", "--kind", "offer"],
                           self.offer, reply=[ctx])
        for line in (f"m=text {self.agw_core_port} RTP/AVP 98 100",
                     "a=rtpmap:98 t140/1000", "a=rtpmap:100 red/1000",
                     "a=fmtp:100 98/98/98", "a=hlang-send:en"):
            assert line in to_core.split("\r\n"), f"{line!r} not in\n{to_core}"
        if direction:
            assert f"a={direction}" in to_core.split("\r\n"), to_core
        # The core's answer: its address and m=text line, by PATCH.
        extra = {"port": [f"a=rtcp:{self.peer.rtcp_port}"], "mux": ["a=rtcp-mux"]}
        answer = core_answer(self.peer.port, direction or "sendrecv",
                             extra.get(rtcp, []), core_red)
        reqs = json.loads(dcmf_alg(["request", "--side", "core", "--kind", "answer"],
                                   answer, reply=[ctx]))["requests"]
        assert reqs[0]["method"] == "PATCH", reqs
        st, ctx = D.call("PATCH", f"{AGW}/{self.cid}", reqs[0]["body"],
                         "application/json-patch+json")
        assert st == 200, f"PATCH {st}: {ctx}"
        if core_red:
            assert ctx["terminations"][1]["t140"]["redPayloadType"] == 100, ctx
        else:
            assert ctx["terminations"][1]["t140"]["payloadType"] == 100, ctx
            assert "redPayloadType" not in ctx["terminations"][1]["t140"], ctx
        self.ctx = ctx
        to_wic = dcmf_alg(["rewrite", "--side", "core", "--kind", "answer"], answer,
                          reply=[ctx], offer=self.offer)
        for line in (f"m=application {acc['local']['port']} UDP/DTLS/SCTP webrtc-datachannel",
                     f'a=dcmap:{STREAM_ID} label="rtt";subprotocol="t140"', "a=ice-lite"):
            assert line in to_wic.split("\r\n"), f"{line!r} not in\n{to_wic}"
        if capture:
            self.pcap = os.path.join(TMP, f"{self.cid}.pcap")
            ports = [self.peer.port, self.agw_core_port, self.peer.rtcp_port,
                     self.agw_rtcp_port]
            self.cap = tshark_check.Capture([], self.pcap,
                                            udp_ports=[p for p in ports if p])
            self.cap.start()
        self.peer.dest = ("127.0.0.1", self.agw_core_port)
        self.wic.command({"cmd": "answer", "sdp": to_wic})
        if not self.wic.opened.wait(60):
            raise AssertionError("the data channel did not open")

    def to_core_packets(self):
        """What the AGW sent the core peer."""
        with self.peer.lock:
            return [d for d, src in self.peer.received if src[1] == self.agw_core_port]

    def check_wire(self, pkts):
        """tshark's RTP and RFC 2198 reading of the AGW's packets."""
        self.cap.stop()
        rows = t140_peer.tshark_rtp(self.pcap, self.peer.port, 100)
        assert not t140_peer.tshark_problems(rows), t140_peer.tshark_problems(rows)
        # What the peer received, in order, is what was on the wire.
        assert len(rows) >= len(pkts), (len(rows), len(pkts))
        t140_peer.check_wire(rows[:len(pkts)], pkts, 2)
        return rows

    def close(self):
        if self.cap is not None and self.cap.proc is not None and self.cap.proc.poll() is None:
            self.cap.stop(check=False)
        self.wic.stop()
        self.peer.close()
        D.call("DELETE", f"{AGW}/{self.cid}")


def type_slowly(typer, chunks, gap=0.35):
    """Types each chunk gap seconds apart (a person typing, so each RTP
    packet carries text)."""
    for c in chunks:
        typer(c)
        time.sleep(gap)  # the typist's pace, not a wait for a result


def rtp_fields(p):
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", p[:12])
    return b0 >> 6, b1 >> 7, b1 & 0x7F, seq, ts, ssrc


def rtcp_from_agw(c):
    """The compounds the core peer got from the AGW, parsed by RFC 3550
    (rtcp_peer.py): (packets, arrival order, source port, muxed)."""
    return [(rtcp_peer.parse_compound(d), i, src[1], muxed)
            for i, (d, src, muxed) in enumerate(c.peer.rtcp())]


def check_compound(pkts, ssrc):
    """SR or RR from |ssrc| first, then SDES with a CNAME for it."""
    assert pkts[0]["pt"] in (rtcp_peer.SR, rtcp_peer.RR), pkts
    assert pkts[0]["ssrc"] == ssrc, (hex(pkts[0]["ssrc"]), hex(ssrc))
    sdes = [p for p in pkts if p["pt"] == rtcp_peer.SDES]
    assert sdes and sdes[0]["chunks"][0]["ssrc"] == ssrc and \
        sdes[0]["chunks"][0].get(1), pkts


def check_tshark_rtcp(c, port, muxed, ssrc):
    """tshark's RTCP dissector reads every compound to |port| whole, from
    |ssrc|, the last with a BYE."""
    c.cap.stop()
    rows = rtcp_peer.tshark_rtcp(c.pcap, port, muxed)
    assert rows, "tshark sees no RTCP"
    bad = [r for r in rows if r["_ws.malformed"] or any(
        int(x, 0) >= 0x00600000 for x in r["_ws.expert.severity"].split(",") if x)]
    assert not bad, bad
    for r in rows:
        assert {int(x, 0) for x in r["rtcp.senderssrc"].split(",") if x} == {ssrc}, r
        assert set(r["rtcp.version"].split(",")) == {"2"}, r
    assert "203" in rows[-1]["rtcp.pt"].split(","), rows[-1]
    return rows


RTCP_METRIC = 'dcmf_agw_e2ae_t140_rtcp_total{direction="%s"}'
TYPED = ["H", "el", "lo", ", ", "w", "ö", "rld ", "😀", "!"]
WHOLE = "".join(TYPED)
T140_METRIC = 'dcmf_agw_e2ae_t140_chars_total{direction="%s"}'


D = Dcmfd(DCMFD)
D.start()
try:
    @case
    def wic_types_text_reaches_rtp():
        before = D.metric(T140_METRIC % "to_core")
        c = Call()
        try:
            type_slowly(c.wic.type, TYPED, 0.1)
            poll(lambda: c.peer.text() == WHOLE, f"the core got {WHOLE!r} "
                 f"(has {c.peer.text()!r})", 15)
            # Redundancy runs out (empty primaries until the last text
            # went out twice more), then nothing until the keep-alive.
            seen = {"n": -1, "at": time.time()}

            def quiet():
                n = len(c.to_core_packets())
                if n != seen["n"]:
                    seen["n"], seen["at"] = n, time.time()
                return n >= 3 and time.time() - seen["at"] > 1.0

            poll(quiet, "the AGW's packets stop after the redundancy", 10)
            pkts = c.to_core_packets()
            last = t140_peer.parse_rtp(pkts[-1], 98, 100)
            # The last: an empty primary, generation 1 empty, generation
            # 2 the last text (sent as primary + 2 generations).
            assert last[4] == b"" and last[3][-1][1] == b"" and last[3][0][1], last
            fields = [rtp_fields(p) for p in pkts]
            assert all(f[0] == 2 and f[2] == 100 for f in fields), fields
            assert fields[0][1] == 1, "no M bit on the first packet after idle"
            assert len({f[5] for f in fields}) == 1, "SSRC changed"
            tss = [f[4] for f in fields]
            assert all(((b - a) & 0xFFFFFFFF) > 0 for a, b in zip(tss, tss[1:])), \
                f"timestamps not increasing and unique: {tss}"
            seqs = [f[3] for f in fields]
            assert all(((b - a) & 0xFFFF) == 1 for a, b in zip(seqs, seqs[1:])), seqs
            # ~300 ms buffering: text typed over ~0.9 s went out in a few
            # packets, none closer than 250 ms after the first (RFC 4103 §5).
            gaps = [(b - a) & 0xFFFFFFFF for a, b in zip(tss, tss[1:])]
            assert min(gaps) >= 250 and max(gaps) <= 600, gaps
            assert c.peer.rx.lost == 0 and c.peer.rx.bad == 0, vars(c.peer.rx)
            c.check_wire(pkts)
            poll(lambda: D.metric(T140_METRIC % "to_core") - before >= len(WHOLE),
                 "/metrics: the WIC's characters toward the core")
        finally:
            c.close()

    @case
    def rtp_peer_types_text_reaches_wic():
        c = Call()
        try:
            type_slowly(c.peer.type, TYPED, 0.1)
            poll(lambda: c.wic.text() == WHOLE, f"the WIC got {WHOLE!r} "
                 f"(has {c.wic.text()!r})", 15)
            poll(lambda: counter(c.cid, "toAccess", "chars") == len(WHOLE),
                 "t140Counters toAccess chars")
            assert counter(c.cid, "fromCore", "lost") == 0
        finally:
            c.close()

    @case
    def loss_recovered_by_redundancy_then_marked():
        c = Call(capture=False)
        try:
            # One lost packet: the next one's first generation has it.
            c.peer.drop_run("cd", 1)
            type_slowly(c.peer.type, ["ab", "cd", "ef", "gh"])
            poll(lambda: c.peer.idle(), "the peer's sender idle", 10)
            poll(lambda: c.wic.text() == "abcdefgh", f"the WIC got abcdefgh "
                 f"(has {c.wic.text()!r})", 10)
            poll(lambda: counter(c.cid, "fromCore", "recovered") >= 1, "recovered counted")
            assert len(c.peer.dropped) == 1, len(c.peer.dropped)
            # Three in a row, past the two generations: the two later
            # ones come back from the next packet's redundancy, the first
            # cannot; U+FFFD (RFC 4103 §5) marks where "kl" went missing.
            c.peer.drop_run("kl", 3)
            type_slowly(c.peer.type, ["ij", "kl", "mn", "op", "qr", "st"])
            poll(lambda: c.peer.idle(), "the peer's sender idle", 10)
            poll(lambda: c.wic.text().endswith("st"), f"the WIC's text ends "
                 f"(has {c.wic.text()!r})", 10)
            assert len(c.peer.dropped) == 4, len(c.peer.dropped)
            got = c.wic.text()
            assert got == "abcdefghij" + MISSING + "mnopqrst", got
            poll(lambda: counter(c.cid, "fromCore", "lost") >= 1, "lost counted")
            poll(lambda: counter(c.cid, "markers", "toAccess") >= 1, "marker counted")
        finally:
            c.close()

    @case
    def max_retr_offer_refused():
        # RFC 8865 §4.1: an offer with max-retr MUST be rejected; dcmf-alg
        # passes it on, the AGW names it.
        wic = Wic()
        try:
            wic.command({"cmd": "offer", "id": STREAM_ID, "label": "rtt",
                         "protocol": "t140"})
            stack_offer = wic.next_event("offer")["sdp"]
            offer = wic_offer_with_dcmap(stack_offer, dcmap_extra=";max-retr=3")
            st, doc = post(offer)
            assert st == 400, (st, doc)
            names = {p["param"]: p["reason"] for p in doc["invalidParams"]}
            assert "/terminations/0/dataChannel/maxRetr" in names, names
            assert "RFC 8865" in names["/terminations/0/dataChannel/maxRetr"], names
            st, doc = post(wic_offer_with_dcmap(stack_offer, dcmap_extra=";max-time=500"))
            assert st == 400 and "/terminations/0/dataChannel/maxTime" in \
                json.dumps(doc), (st, doc)
        finally:
            wic.stop()

    @case
    def hostile_rtp_harms_only_its_packets():
        c = Call(capture=False)
        other = None
        try:
            dest = ("127.0.0.1", c.agw_core_port)
            good = t140_peer.T140Sender()
            good.type("x")
            pkt = good.packet(0)  # a valid red packet to spoil
            hostile = [
                b"\x40" + pkt[1:],                  # version 1
                pkt[:7],                            # shorter than the header
                pkt[:12] + b"\xe2\xff\xff\xff",     # red header past the end
                bytes([0x80, 0x80 | 100]) + pkt[2:12] + b"\x80" * 3,  # red cut
                bytes([0x80, 99]) + pkt[2:],        # an unknown payload type
                b"\x80\xe4" + b"\x00" * 1998,       # too large, no text
            ]
            for h in hostile:
                c.peer.send_raw(h, dest)
            # A flood from the signalled source: the rate bound drops it.
            for _ in range(3000):
                c.peer.send_raw(b"\x00" * 20, dest)
            # From an address that is not the core's.
            import socket as so
            s = so.socket(so.AF_INET, so.SOCK_DGRAM)
            s.sendto(pkt, dest)
            s.close()
            poll(lambda: all(counter(c.cid, "drops", k) >= 1 for k in
                             ("version", "truncated", "red", "payloadType", "rate",
                              "unknownSource")),
                 f"every drop counted: {counters(c.cid).get('drops')}", 10)
            # The media still carries text both ways, and another one too.
            type_slowly(c.peer.type, ["still ", "here"], 1.1)
            poll(lambda: c.wic.text().endswith("here"), f"the WIC got the text "
                 f"(has {c.wic.text()!r})", 10)
            c.wic.type("and back")
            poll(lambda: c.peer.text().endswith("and back"), "the core got the text", 10)
            other = Call(capture=False)
            other.wic.type("other")
            poll(lambda: other.peer.text() == "other", "the other call's text", 10)
            assert D.proc.poll() is None, "dcmfd died"
        finally:
            c.close()
            if other is not None:
                other.close()

    @case
    def wic_closes_channel_marks_loss_toward_rtp():
        # RFC 8865 §6: after a channel failure the gateway marks the loss
        # toward RTP.
        c = Call(capture=False)
        try:
            c.wic.type("bye")
            poll(lambda: c.peer.text() == "bye", "the core got bye", 10)
            c.wic.command({"cmd": "close"})
            poll(lambda: c.peer.text() == "bye" + MISSING,
                 f"the marker toward the core (has {c.peer.text()!r})", 10)
            poll(lambda: counter(c.cid, "markers", "toCore") >= 1, "marker counted")
        finally:
            c.close()

    @case
    def rtp_peer_vanishes():
        # The core peer goes without a word: the AGW keeps serving the WIC
        # (its text goes out to nobody, counted), and a DELETE releases
        # the context.
        c = Call(capture=False)
        try:
            c.wic.type("one")
            poll(lambda: c.peer.text() == "one", "the core got one", 10)
            c.peer.close()
            sent = counter(c.cid, "toCore", "packets")
            c.wic.type("two")
            poll(lambda: counter(c.cid, "toCore", "chars") >= 6 and
                 counter(c.cid, "toCore", "packets") > sent,
                 "the AGW still sends toward the core", 10)
            assert D.proc.poll() is None, "dcmfd died"
            st, _ = D.call("DELETE", f"{AGW}/{c.cid}")
            assert st == 204, st
            st, _ = D.call("GET", f"{AGW}/{c.cid}")
            assert st == 404, st
        finally:
            c.wic.stop()

    @case
    def wic_cps_paces_text_to_wic():
        # RFC 8865 §4.2.1: the WIC takes 10 characters per second; 40
        # typed at once by the core reach it in about three seconds (a
        # second's worth at once, then 9 a second), whole and in order.
        c = Call(cps=10, capture=False)
        try:
            text = "abcdefghij" * 4
            t0 = time.monotonic()
            c.peer.type(text)
            poll(lambda: c.wic.text() == text, f"the WIC got the 40 characters "
                 f"(has {c.wic.text()!r})", 15)
            took = time.monotonic() - t0
            assert took >= 2.5, f"40 characters at cps 10 took {took:.2f} s"
            print(f"#   40 characters at cps 10: {took:.2f} s, "
                  f"{c.wic.messages} messages", flush=True)
        finally:
            c.close()

    @case
    def reoffer_changes_direction():
        # A re-offer's dcsa recvonly (PATCH): the WIC's text stops at the
        # AGW, the core's still reaches the WIC.
        c = Call(capture=False)
        try:
            st, doc = D.call("PATCH", f"{AGW}/{c.cid}", [
                {"op": "add", "path": "/terminations/0/dataChannel/dcsa/direction",
                 "value": "recvonly"}], "application/json-patch+json")
            assert st == 200, (st, doc)
            c.wic.type("blocked")
            poll(lambda: counter(c.cid, "drops", "direction") >= 1,
                 "direction drops counted", 10)
            c.peer.type("through")
            poll(lambda: c.wic.text() == "through", "the WIC got the core's text", 10)
            assert c.peer.text() == "", c.peer.text()
            # The dcmap stays: a new stream id is refused, naming it.
            st, doc = D.call("PATCH", f"{AGW}/{c.cid}", [
                {"op": "replace", "path": "/terminations/0/dataChannel/streamId",
                 "value": STREAM_ID + 2}], "application/json-patch+json")
            assert st == 400 and "/terminations/0/dataChannel" in json.dumps(doc), \
                (st, doc)
        finally:
            c.close()

    @case
    def core_offers_text_to_wic():
        # UE-terminated: the core offers m=text; dcmf-alg makes the POST
        # (the channel it offers the WIC: stream 1000) and the offer
        # toward the WIC; the WIC answers with that negotiated channel;
        # dcmf-alg makes the PATCH (the WIC's fingerprint, setup, ICE,
        # dcsa) and the answer toward the core. Text both ways.
        if WIC_KIND != "werift":
            return  # the Chromium script offers only
        peer = t140_peer.LivePeer()
        wic = Wic()
        cid = None
        try:
            offer = core_answer(peer.port).replace("o=core 1 1", "o=core 2 2")
            reqs = json.loads(dcmf_alg(["request", "--side", "core", "--kind", "offer",
                                        "--wic"], offer))["requests"]
            assert reqs[0]["path"] == "t140-dc" and reqs[0]["method"] == "POST", reqs
            st, ctx = D.call("POST", AGW, reqs[0]["body"])
            assert st == 201, (st, ctx)
            cid = ctx["contextId"]
            to_wic = dcmf_alg(["rewrite", "--side", "core", "--kind", "offer", "--wic"],
                              offer, reply=[ctx])
            assert 'a=dcmap:1000 label="t140";subprotocol="t140"' in to_wic.split("\r\n"), \
                to_wic
            wic.command({"cmd": "answerTo", "sdp": to_wic, "id": 1000, "label": "t140",
                         "protocol": "t140"})
            answer = wic.next_event("answer")["sdp"]
            lines = answer.rstrip("\r\n").split("\r\n")
            answer = "\r\n".join(lines + ['a=dcmap:1000 label="t140";subprotocol="t140"',
                                           "a=dcsa:1000 fmtp:t140 cps=40"]) + "\r\n"
            reqs = json.loads(dcmf_alg(["request", "--side", "access", "--kind", "answer"],
                                       answer, reply=[ctx]))["requests"]
            st, ctx = D.call("PATCH", f"{AGW}/{cid}", reqs[0]["body"],
                             "application/json-patch+json")
            assert st == 200, (st, ctx)
            assert ctx["terminations"][0]["dataChannel"]["dcsa"]["cps"] == 40, ctx
            to_core = dcmf_alg(["rewrite", "--side", "access", "--kind", "answer"], answer,
                               reply=[ctx], offer=offer)
            port = ctx["terminations"][1]["local"]["port"]
            assert f"m=text {port} RTP/AVP 98 100" in to_core.split("\r\n"), to_core
            peer.dest = ("127.0.0.1", port)
            if not wic.opened.wait(60):
                raise AssertionError("the data channel did not open")
            wic.type("from the WIC")
            poll(lambda: peer.text() == "from the WIC", "the core got the text", 10)
            peer.type("from the core")
            poll(lambda: wic.text() == "from the core", "the WIC got the text", 10)
        finally:
            wic.stop()
            peer.close()
            if cid:
                D.call("DELETE", f"{AGW}/{cid}")

    @case
    def core_without_red_on_pt_100():
        # The core answers t140 alone on PT 100 (red's usual number):
        # plain t140 on 100 both ways, no red.
        c = Call(capture=False, core_red=False)
        try:
            c.wic.type("hello core")
            poll(lambda: c.peer.text() == "hello core", "the core got the text", 10)
            for p in c.to_core_packets():
                assert p[1] & 0x7F == 100, p[:12].hex()
            assert c.peer.rx.bad == 0, c.peer.rx.bad
            c.peer.type("hello wic")
            poll(lambda: c.wic.text() == "hello wic", "the WIC got the text", 10)
            assert counter(c.cid, "drops", "payloadType") == 0
        finally:
            c.close()

    @case
    def direction_sendonly_blocks_rtp_to_wic():
        # RFC 8865 §4.2.3 and §6: the WIC's sendonly holds on both sides.
        c = Call(direction="sendonly", capture=False)
        try:
            c.wic.type("up")
            poll(lambda: c.peer.text() == "up", "the core got up", 10)
            c.peer.type("down")
            poll(lambda: counter(c.cid, "drops", "direction") >= 1,
                 "direction drops counted", 10)
            assert c.wic.text() == "", c.wic.text()
        finally:
            c.close()
    @case
    def core_gets_rtcp_reports_and_bye():
        # RFC 3550 §6: the AGW is an RTP endpoint toward the core: SR while
        # it sent text in the interval, else RR, each with SDES CNAME, on
        # the RTCP port, at the §6.2 interval (5 s * [0.5, 1.5]); a BYE
        # on DELETE. The core's RR about the AGW's stream is counted.
        metric0 = D.metric(RTCP_METRIC % "to_core")
        c = Call(rtcp="port")
        try:
            assert c.agw_rtcp_port, c.ctx["terminations"][1]
            c.wic.type("hello")
            poll(lambda: c.peer.text() == "hello", "the core got hello", 10)
            ssrcs = c.peer.ssrcs()
            assert len(ssrcs) == 1, ssrcs
            ssrc = ssrcs.pop()

            def sr_then_rr():
                got = rtcp_from_agw(c)
                srs = [i for p, i, _, _ in got if p[0]["pt"] == rtcp_peer.SR]
                return srs and any(p[0]["pt"] == rtcp_peer.RR and i > srs[0]
                                   for p, i, _, _ in got)
            # An SR after the text, then an RR once an interval passed
            # without any (worst case 7.5 s each; the keep-alive comes
            # only after 15 s idle).
            poll(sr_then_rr, "an SR, then an RR", 30)
            c.peer.send_rtcp(rtcp_peer.receiver_report(c.peer.tx.ssrc, about=ssrc, lost=3),
                             ("127.0.0.1", c.agw_rtcp_port))
            poll(lambda: counter(c.cid, "rtcp", "reportBlocks") >= 1,
                 f"the core's report block counted: {counters(c.cid).get('rtcp')}", 10)
            assert counter(c.cid, "rtcp", "peerLost") == 3, counters(c.cid)
            got = rtcp_from_agw(c)
            for pkts, _, port, muxed in got:
                assert port == c.agw_rtcp_port and not muxed, (port, muxed)
                check_compound(pkts, ssrc)
            sr = next(p[0] for p, _, _, _ in got if p[0]["pt"] == rtcp_peer.SR)
            assert sr["packets"] >= 1 and sr["octets"] >= len("hello"), sr
            # Arrival gaps: RFC 3550 §6.3.1, 5 s * [0.5, 1.5] (a margin
            # for the loop and the poll).
            with c.peer.lock:
                times = list(c.peer.rtcp_times)
            gaps = [b - a for a, b in zip(times, times[1:])]
            assert gaps and all(2.3 <= g <= 7.9 for g in gaps), gaps
            st, _ = D.call("DELETE", f"{AGW}/{c.cid}")
            assert st == 204, st
            poll(lambda: any(p[-1]["pt"] == rtcp_peer.BYE and p[-1]["ssrcs"] == [ssrc]
                             for p, _, _, _ in rtcp_from_agw(c)), "the BYE", 10)
            rows = check_tshark_rtcp(c, c.peer.rtcp_port, False, ssrc)
            print(f"#   {len(rows)} RTCP compounds, gaps {['%.2f' % g for g in gaps]} s",
                  flush=True)
            poll(lambda: D.metric(RTCP_METRIC % "to_core") - metric0 >= len(rows),
                 "/metrics: the RTCP sent")
        finally:
            c.close()

    @case
    def core_gets_rtcp_muxed():
        # RFC 5761: the core answers a=rtcp-mux; dcmf-alg patches rtcpMux
        # and RTCP goes by the RTP port both ways, told apart by type.
        c = Call(rtcp="mux")
        try:
            assert c.ctx["terminations"][1]["rtcpMux"] is True, c.ctx["terminations"][1]
            c.wic.type("mux")
            poll(lambda: c.peer.text() == "mux", "the core got mux", 10)
            ssrc = c.peer.ssrcs().pop()
            poll(lambda: rtcp_from_agw(c), "a compound on the RTP port", 12)
            c.peer.send_rtcp(rtcp_peer.receiver_report(c.peer.tx.ssrc, about=ssrc),
                             ("127.0.0.1", c.agw_core_port))
            poll(lambda: counter(c.cid, "rtcp", "received") >= 1, "the core's RR taken", 10)
            c.peer.type("back")
            poll(lambda: c.wic.text() == "back", "the WIC got back", 10)
            # Neither side took the other's RTCP for text.
            assert counter(c.cid, "drops", "payloadType") == 0, counters(c.cid)
            assert c.peer.rx.bad == 0, vars(c.peer.rx)
            st, _ = D.call("DELETE", f"{AGW}/{c.cid}")
            assert st == 204, st
            poll(lambda: any(p[-1]["pt"] == rtcp_peer.BYE
                             for p, _, _, _ in rtcp_from_agw(c)), "the BYE", 10)
            for pkts, _, port, muxed in rtcp_from_agw(c):
                assert port == c.agw_core_port and muxed, (port, muxed)
                check_compound(pkts, ssrc)
            check_tshark_rtcp(c, c.peer.port, True, ssrc)
        finally:
            c.close()

    @case
    def hostile_rtcp_counted_harms_nothing():
        # Compounds RFC 3550 A.2 refuses, from the signalled RTCP source,
        # and a valid one from a stranger: counted, nothing else moves.
        c = Call(rtcp="port", capture=False)
        try:
            dest = ("127.0.0.1", c.agw_rtcp_port)
            rr = rtcp_peer.receiver_report(c.peer.tx.ssrc)
            hostile = [
                b"\x40" + rr[1:],                      # version 1
                rr[:10],                               # cut inside a packet
                rr[8:],                                # SDES first
                rr[:3] + b"\x40" + rr[4:],             # length past the end
                bytes([0x80, 98]) + rr[2:],            # RTP on the RTCP port
                b"\x81\xc9\x00\x01" + rr[4:8],        # RR whose block is missing
                b"\x80\xc9" + b"\x00" * 3000,           # bigger than any read
            ]
            for h in hostile:
                c.peer.send_rtcp(h, dest)
            import socket as so
            s = so.socket(so.AF_INET, so.SOCK_DGRAM)
            s.sendto(rr, dest)
            s.close()
            poll(lambda: counter(c.cid, "rtcp", "malformed") >= len(hostile) and
                 counter(c.cid, "drops", "unknownSource") >= 1,
                 f"every hostile compound counted: {counters(c.cid)}", 10)
            assert counter(c.cid, "rtcp", "received") == 0, counters(c.cid)
            c.peer.send_rtcp(rr, dest)
            poll(lambda: counter(c.cid, "rtcp", "received") == 1, "a valid RR still taken")
            c.wic.type("fine")
            poll(lambda: c.peer.text() == "fine", "the core got the text", 10)
            c.peer.type("too")
            poll(lambda: c.wic.text() == "too", "the WIC got the text", 10)
            poll(lambda: rtcp_from_agw(c), "the AGW still reports", 12)
            assert D.proc.poll() is None, "dcmfd died"
        finally:
            c.close()
finally:
    rc = D.stop()
    if os.environ.get("KEEP_TMP"):
        print(f"# kept {TMP}")
    else:
        shutil.rmtree(TMP, ignore_errors=True)
passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed (dcmfd exit {rc})")
if rc != 0:  # a crash, or a sanitizer's report at exit
    print("\n".join("#   " + line for line in D.log_tail(40)))
sys.exit(0 if results and all(results) and rc == 0 else 1)
