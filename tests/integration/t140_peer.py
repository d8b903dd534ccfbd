#!/usr/bin/env python3
"""An RTP real-time text peer (T.140 over RTP), written from RFC 4103,
RFC 2198 and RFC 3550 for the e2ae T.140 tests; not from dcmfd's code.

Sender (RFC 4103 §4-5): text is buffered per interval (300 ms by
default), one T140block per packet; with red every packet carries the
primary and the last `generations` primaries, oldest first (RFC 2198 §3:
F=1 headers with block PT, 14-bit timestamp offset and 10-bit length,
then one octet with F=0 and the primary's PT); empty primaries follow
text until it has gone out `generations` times as redundancy; the M bit
marks the first text after idle; the clock is 1000 Hz and no two packets
share a timestamp. The clock is virtual (passed in), so a test can drive
minutes of typing in a moment.

Receiver (RFC 4103 §4, §5): takes packets in arrival order; a packet
at or before the last one taken is a duplicate; a gap is filled from the
later packet's redundancy by counting back from its sequence number; what
redundancy cannot fill becomes one U+FFFD. No reorder wait.

    t140_peer.py self-test           # the self-test (meson: t140-peer-self)
    t140_peer.py engine-test PIPE    # dcmfd's engine via t140_pipe (t140-engine-peer)
    t140_peer.py send HOST PORT TEXT [--no-red] [--pt 98] [--red-pt 100]
    t140_peer.py recv PORT SECONDS   [--pt 98] [--red-pt 100]

The self-test runs sender and receiver against each other through
loopback UDP, with losses, duplicates and reordering injected, and has
tshark decode every packet (`-d udp.port==N,rtp`, `-d
rtp.pt==RED,rtp_rfc2198`): RTP header fields and the RFC 2198 block
headers tshark reads must be what the sender meant, and nothing may be
malformed. Wireshark 4.0 has no T.140 dissector; the T140block bytes are
compared with what was typed.
"""
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

HOST = "127.0.0.1"
MISSING = "\ufffd"
MAX_OFFSET = (1 << 14) - 1  # RFC 2198 §3: 14-bit timestamp offset
MAX_BLOCK = (1 << 10) - 1   # RFC 2198 §3: 10-bit block length


class T140Sender:
    def __init__(self, pt=98, red_pt=100, generations=2, buffer_ms=300,
                 use_red=True, rng=None):
        rng = rng or random.Random()
        self.pt, self.red_pt = pt, red_pt
        self.use_red = use_red
        self.gens = generations if use_red else 0
        self.buffer_ms = buffer_ms
        # RFC 3550 §5.1: random initial sequence number and timestamp.
        self.ssrc = rng.getrandbits(32)
        self.seq = rng.getrandbits(16)
        self.ts0 = rng.getrandbits(32)
        self.last_ts = None
        self.history = []      # (ts, bytes) of earlier primaries, newest last
        self.pending = b""
        self.owed = 0          # empty packets still owed to redundancy
        self.idle = True
        self.last_send = None
        self.log = []          # what was sent, for the wire check

    def type(self, text):
        self.pending += text.encode("utf-8")

    def due(self, now):
        """Whether a packet is due at virtual time now (ms)."""
        if self.pending and self.idle:
            return True  # RFC 4103 §5.2: after idle, send at once
        if self.last_send is None:
            return False
        if self.pending or self.owed:
            return now >= self.last_send + self.buffer_ms
        return False

    def _take_primary(self):
        # Whole characters only (RFC 4103 §3): cut before a
        # continuation byte.
        limit = min(len(self.pending), MAX_BLOCK // (self.gens + 1))
        while limit < len(self.pending) and (self.pending[limit] & 0xC0) == 0x80:
            limit -= 1
        block, self.pending = self.pending[:limit], self.pending[limit:]
        return block

    def packet(self, now):
        """The packet for virtual time now (call when due(now))."""
        primary = self._take_primary()
        ts = (self.ts0 + now) & 0xFFFFFFFF
        if self.last_ts is not None and ((ts - self.last_ts) & 0xFFFFFFFF) == 0:
            ts = (self.last_ts + 1) & 0xFFFFFFFF  # RFC 4103 §3
        marker = 1 if primary and self.idle else 0
        pt = self.red_pt if self.use_red else self.pt
        hdr = struct.pack("!BBHII", 0x80, marker << 7 | pt, self.seq, ts, self.ssrc)
        blocks = []
        if self.use_red:
            older = ([(ts, b"")] * self.gens + self.history)[-self.gens:] if self.gens else []
            red_hdrs = b""
            for bts, data in older:
                off = (ts - bts) & 0xFFFFFFFF
                if off > MAX_OFFSET:
                    off, data = 0, b""  # too old to describe: send it empty
                # F=1 | block PT, then offset (14 bits) and length (10 bits).
                red_hdrs += bytes([0x80 | self.pt]) + struct.pack("!I", off << 10 | len(data))[1:]
                blocks.append((off, data))
            payload = red_hdrs + bytes([self.pt]) + b"".join(d for _, d in blocks) + primary
        else:
            payload = primary
        self.history = (self.history + [(ts, primary)])[-max(self.gens, 1):]
        self.log.append({"seq": self.seq, "ts": ts, "m": marker, "pt": pt,
                         "blocks": [len(d) for _, d in blocks] + [len(primary)],
                         "offsets": [o for o, _ in blocks], "primary": primary})
        self.seq = (self.seq + 1) & 0xFFFF
        self.last_ts = ts
        self.last_send = now
        if primary:
            self.owed = max(self.gens, 1)
            self.idle = False
        elif self.owed:
            self.owed -= 1
            if self.owed == 0:
                self.idle = True  # the empty T140block that starts idle went out
        return hdr + payload


class RtpParseError(Exception):
    pass


def parse_rtp(data, pt, red_pt):
    """(seq, ssrc, marker, [(pt, bytes) redundant oldest first], primary)."""
    if len(data) < 12:
        raise RtpParseError("shorter than the fixed header")
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    if b0 >> 6 != 2:
        raise RtpParseError("version %d" % (b0 >> 6))
    at = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if at + 4 > len(data):
            raise RtpParseError("extension header past the end")
        at += 4 + 4 * struct.unpack("!H", data[at + 2:at + 4])[0]
    end = len(data)
    if b0 & 0x20:
        if end == 0 or data[-1] == 0 or data[-1] > end - at:
            raise RtpParseError("bad padding")
        end -= data[-1]
    if at > end:
        raise RtpParseError("header past the end")
    ppt = b1 & 0x7F
    if ppt == pt:
        return seq, ssrc, b1 >> 7, [], data[at:end]
    if ppt != red_pt:
        raise RtpParseError("payload type %d" % ppt)
    heads = []
    while True:
        if at >= end:
            raise RtpParseError("red headers run past the end")
        if not data[at] & 0x80:
            break
        if at + 4 > end:
            raise RtpParseError("red header cut")
        word = struct.unpack("!I", data[at:at + 4])[0]
        heads.append((data[at] & 0x7F, word & 0x3FF))
        at += 4
    primary_pt = data[at] & 0x7F
    at += 1
    red = []
    for bpt, length in heads:
        if at + length > end:
            raise RtpParseError("red block past the end")
        red.append((bpt, data[at:at + length]))
        at += length
    if primary_pt != pt:
        raise RtpParseError("primary payload type %d" % primary_pt)
    return seq, ssrc, b1 >> 7, red, data[at:end]


class T140Receiver:
    def __init__(self, pt=98, red_pt=100):
        self.pt, self.red_pt = pt, red_pt
        self.expected = None
        self.ssrc = None
        self.text = ""
        self.recovered = self.lost = self.duplicates = self.bad = 0

    def _add(self, block, pt=None):
        if pt is not None and pt != self.pt:
            self._mark()
            return
        try:
            self.text += block.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            self.bad += 1
            self._mark()

    def _mark(self):
        if not self.text.endswith(MISSING):
            self.text += MISSING

    def feed(self, data):
        try:
            seq, ssrc, _m, red, primary = parse_rtp(data, self.pt, self.red_pt)
        except RtpParseError:
            self.bad += 1
            return
        if ssrc != self.ssrc:
            self.ssrc, self.expected = ssrc, seq
        gap = (seq - self.expected) & 0xFFFF
        if gap >= 0x8000:
            self.duplicates += 1
            return
        if gap > len(red):
            self.lost += gap - len(red)
            self._mark()
        # Generation k (1 = newest) of packet seq is packet seq - k.
        for k in range(min(gap, len(red)), 0, -1):
            bpt, block = red[len(red) - k]
            self._add(block, bpt)
            self.recovered += 1
        self._add(primary)
        self.expected = (seq + 1) & 0xFFFF


def type_text(sender, chunks, gap_ms=100, start=0):
    """Types chunks gap_ms apart on the virtual clock; returns the packets
    (in order) and the end time, after redundancy has run out."""
    out, now = [], start
    for chunk in chunks:
        sender.type(chunk)
        end = now + gap_ms
        while now < end:
            if sender.due(now):
                out.append(sender.packet(now))
            now += 1
    while sender.due(now) or sender.pending or sender.owed:
        if sender.due(now):
            out.append(sender.packet(now))
        now += 1
    return out, now


class LivePeer:
    """The sender and receiver above on one loopback UDP socket in real
    time, for the end-to-end tests (e2ae_t140.py): the sender's virtual
    clock is the wall clock in milliseconds, every datagram received is
    kept (bytes and source) and fed to the receiver. Induced loss:
    drop_run(text, count) leaves out the packet whose primary T140block
    holds |text| and the count - 1 after it. A thread runs it until
    close().

    RTCP (rtcp_peer.py): with rtcp=True a second socket (rtcp_port)
    takes RTCP apart; on the RTP socket a datagram RFC 5761 §4 calls RTCP
    is not RTP. Both are kept in rtcp_received (bytes, source, muxed) and
    never fed to the text receiver."""

    def __init__(self, pt=98, red_pt=100, generations=2, use_red=True, rtcp=False):
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.port = self.sock.getsockname()[1]
        self.rtcp_sock, self.rtcp_port = None, None
        if rtcp:
            self.rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.rtcp_sock.bind((HOST, 0))
            self.rtcp_port = self.rtcp_sock.getsockname()[1]
        self.rtcp_received = []  # (bytes, source, muxed)
        self.rtcp_times = []     # their arrival (time.monotonic())
        self.rx = T140Receiver(pt, red_pt)
        self.tx = T140Sender(pt, red_pt, generations, use_red=use_red)
        self.received = []  # (bytes, source)
        self.sent = []      # the sender's packets, dropped ones too
        self.drop_on, self.drop_left = None, 0
        self.dropped = []
        self.dest = None
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _now(self):
        return int((time.monotonic() - self.t0) * 1000)

    def _run(self):
        import select
        from rtcp_peer import is_rtcp
        socks = [self.sock] + ([self.rtcp_sock] if self.rtcp_sock else [])
        while self.running:
            try:
                ready, _, _ = select.select(socks, [], [], 0.002)
            except (OSError, ValueError):
                return
            with self.lock:
                for s in ready:
                    try:
                        data, src = s.recvfrom(4096)
                    except OSError:
                        return
                    if s is self.rtcp_sock or is_rtcp(data):
                        self.rtcp_received.append((data, src, s is self.sock))
                        self.rtcp_times.append(time.monotonic())
                        continue
                    self.received.append((data, src))
                    self.rx.feed(data)
                now = self._now()
                if self.dest is not None and self.tx.due(now):
                    p = self.tx.packet(now)
                    primary = self.tx.log[-1]["primary"]
                    if self.drop_on is not None and self.drop_on in primary:
                        self.drop_on = None  # the run starts here
                    if self.drop_on is None and self.drop_left > 0:
                        self.drop_left -= 1
                        self.dropped.append(p)
                    else:
                        self.sock.sendto(p, self.dest)
                    self.sent.append(p)

    def type(self, text):
        with self.lock:
            self.tx.type(text)

    def drop_run(self, text, count):
        with self.lock:
            self.drop_on, self.drop_left = text.encode("utf-8"), count

    def idle(self):
        """Whether everything typed went out, redundancy included."""
        with self.lock:
            return not self.tx.pending and not self.tx.owed

    def text(self):
        with self.lock:
            return self.rx.text

    def send_raw(self, data, dest=None):
        self.sock.sendto(data, dest or self.dest)

    def send_rtcp(self, data, dest):
        """From the RTCP socket (the RTP one without it: muxed)."""
        (self.rtcp_sock or self.sock).sendto(data, dest)

    def rtcp(self):
        with self.lock:
            return list(self.rtcp_received)

    def ssrcs(self):
        """The SSRCs of the RTP received (RFC 3550 §5.1, octets 8-11)."""
        with self.lock:
            return {struct.unpack("!I", d[8:12])[0] for d, _ in self.received
                    if len(d) >= 12}

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()
        if self.rtcp_sock:
            self.rtcp_sock.close()


# ---- tshark wire check ----

def _udp_capture(port, pcap):
    """A tshark_check.Capture of the UDP port |port| into |pcap|."""
    import tshark_check
    return tshark_check.Capture([], pcap, udp_ports=[port])


def tshark_rtp(pcap, port, red_pt):
    """Every RTP packet to port as tshark decodes it, and the problems."""
    fields = ["frame.number", "rtp.version", "rtp.marker", "rtp.p_type", "rtp.seq",
              "rtp.timestamp", "rtp.ssrc", "rtp.follow", "rtp.timestamp-offset",
              "rtp.block-length", "_ws.malformed", "_ws.expert.severity", "udp.length"]
    args = ["tshark", "-r", pcap, "-n", "-d", "udp.port==%d,rtp" % port,
            "-d", "rtp.pt==%d,rtp_rfc2198" % red_pt,
            "-Y", "udp.dstport==%d" % port, "-T", "fields", "-E", "separator=|",
            "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = []
    for line in out.splitlines():
        v = dict(zip(fields, line.split("|")))
        rows.append(v)
    return rows


def _ints(s):
    return [int(x, 0) for x in s.split(",") if x != ""]


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what, flush=True)


def check_wire(rows, wire, generations, pt=98, red_pt=100):
    """tshark's reading of each datagram (rows, from tshark_rtp) against
    the bytes sent (wire): header fields, and for red the block PTs, F
    bits, lengths and offsets read here from RFC 2198 §3."""
    check(len(rows) == len(wire), "tshark sees all %d datagrams" % len(wire))
    for row, p in zip(rows, wire):
        seq, ts = struct.unpack("!HI", p[2:8])
        assert int(row["rtp.version"]) == 2, row
        assert int(row["rtp.seq"]) == seq and int(row["rtp.timestamp"]) == ts, row
        assert _ints(row["rtp.p_type"])[0] == p[1] & 0x7F, row
        assert (row["rtp.marker"] in ("1", "True")) == bool(p[1] & 0x80), row
    check(True, "tshark's version, PT, M, seq and timestamp match every datagram")
    red_rows = [(row, p) for row, p in zip(rows, wire) if p[1] & 0x7F == red_pt]
    for row, p in red_rows:
        lengths = _ints(row["rtp.block-length"])
        offsets = _ints(row["rtp.timestamp-offset"])
        _, _, _, red, primary = parse_rtp(p, pt, red_pt)
        assert lengths == [len(b) for _, b in red], (row, red)
        assert len(offsets) == len(red) == generations, row
        words = [struct.unpack("!I", p[12 + 4 * i:16 + 4 * i])[0] for i in range(len(red))]
        assert offsets == [(w >> 10) & 0x3FFF for w in words], row
        # The header's PT, then each block's: F=1 blocks and the primary.
        assert _ints(row["rtp.p_type"])[1:] == [pt] * (generations + 1), row
        assert [x in ("1", "True") for x in row["rtp.follow"].split(",")] == \
            [True] * generations + [False], row
        assert 12 + 4 * len(red) + 1 + sum(lengths) + len(primary) == len(p), row
    check(len(red_rows) > 0, "tshark's RFC 2198 block PTs, F bits, lengths and offsets match "
          "in %d red packets" % len(red_rows))


def tshark_problems(rows):
    return [r for r in rows if r["_ws.malformed"] or
            any(int(x, 0) >= 0x00800000 for x in _ints(r["_ws.expert.severity"]))]


def _send_all(sock, port, packets, drop=(), extra=()):
    """Sends packets in order except the indices in drop; extra is a list
    of (after_index, packet) to inject (duplicates, late ones)."""
    sent = []
    for i, p in enumerate(packets):
        if i not in drop:
            sock.sendto(p, (HOST, port))
            sent.append(p)
        for after, q in extra:
            if after == i:
                sock.sendto(q, (HOST, port))
                sent.append(q)
    return sent


def _receive(sock, count, timeout=10):
    got, deadline = [], time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recvfrom(2048)[0])
        except socket.timeout:
            break
    return got


# What the tests type: ASCII, 2- and 4-byte UTF-8, one chunk at a time.
TYPED = ["H", "el", "lo", ", ", "w", "ö", "rld ", "😀", "!"]


def _udp_pair():
    """A receiving and a sending UDP socket on loopback, and the port of
    the receiving one."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((HOST, 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind((HOST, 0))
    return rx, tx, rx.getsockname()[1]


def self_test():
    rng = random.Random(4103)
    typed = TYPED
    with tempfile.TemporaryDirectory() as tmp:
        rx, tx, port = _udp_pair()
        pcap = os.path.join(tmp, "t140.pcap")
        logs = []
        scenarios = []
        with _udp_capture(port, pcap):
            # 1: red, no loss.  2: red, 2 lost in a row (recovered).
            # 3: red, 3 lost in a row (one marker).  4: plain t140 with a
            # duplicate and a late packet.  5: red, a late packet after its
            # successor (rebuilt from redundancy, then a duplicate).
            for name, use_red, drop, extra_fn in (
                    ("no loss", True, (), None),
                    ("two lost", True, (2, 3), None),
                    ("three lost", True, (2, 3, 4), None),
                    ("plain with duplicates", False, (), lambda p: [(3, p[3]), (5, p[2])]),
                    ("reordered", True, (4,), lambda p: [(5, p[4])])):
                s = T140Sender(use_red=use_red, rng=rng)
                packets, _ = type_text(s, typed, gap_ms=350)
                extra = extra_fn(packets) if extra_fn else []
                sent = _send_all(tx, port, packets, drop, extra)
                got = _receive(rx, len(sent))
                check(len(got) == len(sent) and got == sent,
                      "%s: %d datagrams through loopback" % (name, len(sent)))
                r = T140Receiver()
                for p in got:
                    r.feed(p)
                scenarios.append((name, s, r, drop, sent))
                logs.append((s, drop, extra))
            # A negative control for the wire check: a red block length
            # past the end of the datagram, which tshark must flag.
            bad = struct.pack("!BBHII", 0x80, 100, 1, 2, 3) + b"\xe2\x00\x03\xff\x62ab"
            tx.sendto(bad, (HOST, port))
            check(_receive(rx, 1) == [bad], "the malformed control datagram went through")
        full = "".join(typed)
        by = {n: (s, r) for n, s, r, _, _ in scenarios}
        check(by["no loss"][1].text == full and by["no loss"][1].lost == 0,
              "no loss: received %r" % by["no loss"][1].text)
        r = by["two lost"][1]
        check(r.text == full and r.recovered >= 2 and r.lost == 0,
              "two lost in a row: rebuilt from two generations (%d blocks)" % r.recovered)
        s, r = by["three lost"]
        lost_text = s.log[2]["primary"].decode()
        check(r.lost == 1 and r.text == full.replace(lost_text, MISSING, 1),
              "three lost in a row: the oldest is marked: %r" % r.text)
        r = by["plain with duplicates"][1]
        check(r.text == full and r.duplicates == 2, "plain t140: duplicates dropped (%d)" % r.duplicates)
        r = by["reordered"][1]
        check(r.text == full and r.duplicates == 1 and r.recovered >= 1,
              "reordered: rebuilt from redundancy, the late packet dropped")
        # Sender rules read from its own log (RFC 4103 §3, §5).
        for name, s, _, _, _ in scenarios:
            tss = [e["ts"] for e in s.log]
            check(all(0 < ((b - a) & 0xFFFFFFFF) < 0x80000000 for a, b in zip(tss, tss[1:])),
                  "%s: timestamps strictly increase" % name)
            ms = [e["m"] for e in s.log]
            check(ms[0] == 1 and sum(ms) >= 1, "%s: M on the first text after idle" % name)

        # The wire, as tshark reads it.
        rows = tshark_rtp(pcap, port, 100)
        problems = tshark_problems(rows)
        check(len(problems) == 1 and rows[-1] in problems,
              "tshark flags only the malformed control datagram (%d frames)" % len(rows))
        rows = rows[:-1]
        wire = [p for *_, sent in scenarios for p in sent]
        check_wire(rows, wire, generations=2)
        sent_logs = {}
        for s, _, _ in logs:
            for e in s.log:
                sent_logs[(s.ssrc, e["seq"])] = e
        for row, p in zip(rows, wire):
            if p[1] & 0x7F == 100:
                e = sent_logs[(struct.unpack("!I", p[8:12])[0], struct.unpack("!H", p[2:4])[0])]
                assert _ints(row["rtp.timestamp-offset"]) == e["offsets"], (row, e)
        check(True, "the offsets tshark reads are the gaps to the earlier packets' timestamps")

        # Hostile bytes: clear refusals, no exception escapes feed().
        r = T140Receiver()
        for bad in (b"", b"\x80", b"\x40" + b"\0" * 11, b"\x8f" + b"\x62" + b"\0" * 10,
                    b"\x80\x64" + b"\0" * 10 + b"\xe2\x00\x00\xff", b"\x80\x64" + b"\0" * 10 + b"\xe2"):
            r.feed(bad)
        check(r.bad == 6 and r.text == "", "hostile packets refused (%d)" % r.bad)
        tx.close()
        rx.close()


class EnginePipe:
    """dcmfd's T.140 engine behind tests/support/t140_pipe.c (stdin and
    stdout lines; see that file), on the caller's virtual clock."""

    def __init__(self, path, use_red=1, generations=2, cps_to_dc=30, reorder_ms=1000):
        self.proc = subprocess.Popen(
            [path, str(use_red), str(generations), str(cps_to_dc), str(reorder_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _put(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def dc(self, now, data):
        self._put("dc %d %s" % (now, data.hex()))

    def rtp(self, now, data):
        self._put("rtp %d %s" % (now, data.hex()))

    def run(self, now):
        """(rtp packets, dc messages, next deadline or None) at now."""
        self._put("run %d" % now)
        rtp, dc, nxt = [], [], None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("t140_pipe ended")
            tag, _, val = line.strip().partition(" ")
            if tag == "end":
                return rtp, dc, nxt
            if tag == "rtp":
                rtp.append(bytes.fromhex(val))
            elif tag == "dc":
                dc.append(bytes.fromhex(val))
            elif tag == "next":
                nxt = None if val == "never" else int(val)

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.returncode != 0:
            raise AssertionError("t140_pipe exited with %s" % self.proc.returncode)


def engine_test(pipe_path):
    """dcmfd's engine against the RFC-written peer, both ways; the engine's
    packets cross loopback UDP and are decoded by tshark."""
    typed = TYPED
    full = "".join(typed)
    with tempfile.TemporaryDirectory() as tmp:
        rx, tx, port = _udp_pair()
        pcap = os.path.join(tmp, "engine.pcap")
        # DC -> RTP: the UE types a chunk every 130 ms; the engine's
        # packets go through loopback to the peer's receiver.
        eng = EnginePipe(pipe_path)
        packets, times, now, i = [], [], 0, 0
        while i < len(typed) or now < 3000:
            if i < len(typed) and now >= 130 * i:
                eng.dc(now, typed[i].encode())
                i += 1
            out, _, nxt = eng.run(now)
            packets += out
            times += [now] * len(out)
            wake = [t for t in (nxt, 130 * i if i < len(typed) else None) if t is not None]
            now = max(now + 1, min(wake)) if wake else now + 1000
        eng.close()
        with _udp_capture(port, pcap):
            sent = _send_all(tx, port, packets)
            got = _receive(rx, len(sent))
        check(got == sent, "engine -> peer: %d datagrams through loopback" % len(sent))
        r = T140Receiver()
        for p in got:
            r.feed(p)
        check(r.text == full and r.lost == 0 and r.bad == 0,
              "the peer reads what the UE typed: %r" % r.text)
        rows = tshark_rtp(pcap, port, 100)
        check(not tshark_problems(rows), "tshark flags nothing in the engine's %d packets" % len(rows))
        check_wire(rows, sent, generations=2)
        marks = [p[1] >> 7 for p in packets]
        check(marks[0] == 1 and sum(marks) == 1, "M on the first packet only (one idle period)")
        gaps = [b - a for a, b in zip(times, times[1:])]
        check(all(g >= 300 for g in gaps), "one packet per 300 ms at most (gaps %s)" % gaps)
        # Every text went out as primary and then in both generations.
        prim = [parse_rtp(p, 98, 100)[4] for p in packets]
        for k, p in enumerate(packets):
            red = parse_rtp(p, 98, 100)[3]
            for g in (1, 2):
                want = prim[k - g] if k - g >= 0 else b""
                assert red[2 - g][1] == want, (k, g, red)
        check(prim[-2:] == [b"", b""] and prim[-3] != b"",
              "the last text is followed by two empty primaries carrying it")

        # RTP -> DC: the peer's packets (with losses, duplicates, late
        # ones) into the engine; the engine's DC text must equal the
        # peer's own receiver's reading of the same datagrams.
        rng = random.Random(2198)
        for name, drop, extra_fn in (("no loss", (), None),
                                     ("two lost", (2, 3), None),
                                     ("three lost", (2, 3, 4), None),
                                     ("duplicate and late", (4,), lambda p: [(5, p[4]), (6, p[6])])):
            s = T140Sender(rng=rng)
            pk, _ = type_text(s, typed, gap_ms=350)
            extra = extra_fn(pk) if extra_fn else []
            order = [p for i, p in enumerate(pk) if i not in drop]
            for after, q in extra:
                order.insert(order.index(pk[after]) + 1, q)
            eng = EnginePipe(pipe_path)
            text = b""
            for t, p in enumerate(order):
                eng.rtp(t * 10, p)
                text += b"".join(eng.run(t * 10)[1])
            now = len(order) * 10
            for _ in range(100):
                _, dc, nxt = eng.run(now)
                text += b"".join(dc)
                if nxt is None or nxt > now + 60000:
                    break
                now = max(now + 1, nxt)
            eng.close()
            ref = T140Receiver()
            for p in order:
                ref.feed(p)
            check(text.decode("utf-8") == ref.text and (MISSING in ref.text) == (name == "three lost"),
                  "peer -> engine, %s: the UE gets %r" % (name, text.decode("utf-8")))
        tx.close()
        rx.close()


def _cli():
    args = sys.argv[1:]
    opt = {"--pt": 98, "--red-pt": 100}
    use_red = "--no-red" not in args
    args = [a for a in args if a != "--no-red"]
    for k in list(opt):
        if k in args:
            i = args.index(k)
            opt[k] = int(args[i + 1])
            del args[i:i + 2]
    if args[:1] == ["self-test"]:
        self_test()
        print("all passed", flush=True)
    elif args[:1] == ["engine-test"] and len(args) == 2:
        engine_test(args[1])
        print("all passed", flush=True)
    elif args[:1] == ["send"] and len(args) == 4:
        s = T140Sender(pt=opt["--pt"], red_pt=opt["--red-pt"], use_red=use_red)
        packets, _ = type_text(s, list(args[3]))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for p in packets:
            sock.sendto(p, (args[1], int(args[2])))
    elif args[:1] == ["recv"] and len(args) == 3:
        r = T140Receiver(pt=opt["--pt"], red_pt=opt["--red-pt"])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, int(args[1])))
        for p in _receive(sock, 1 << 30, float(args[2])):
            r.feed(p)
        print(r.text, flush=True)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    _cli()
