#!/usr/bin/env python3
"""Wire checks with tshark (Wireshark 4.0, Debian 12): capture on lo with a
port filter, then decode the given TCP ports as MSRP or BFCP and fail if
any frame is malformed or carries an expert error; return the decoded
MSRP transactions and BFCP primitives so that a test can compare them
with what it sent.

    cap = Capture([port_a, port_b], "/tmp/x.pcap"); cap.start()
    ... traffic ...
    cap.stop()
    res = analyze("/tmp/x.pcap", msrp_ports=[port_a], keylog=None)
    res.assert_clean()          # raises AssertionError with the frames
    res.msrp  -> [{'frame','stream','tid','method'|'code',...}, ...]
    res.bfcp  -> [{'frame','stream','primitive','transaction_id',...}, ...]

What tshark 4.0 needs (found by experiment; docs/e2ae.md "Test peers"):
- the stock MSRP and BFCP dissectors decode one PDU per call and do not
  loop over a TCP segment: tshark_framing.lua (loaded with -X) finds the
  PDU boundaries, has TCP reassemble PDUs that span segments, and hands
  every PDU to the stock dissector; tcp.desegment_tcp_streams stays TRUE;
- dumpcap must be synchronised: the capture counts as started once a
  probe datagram is in the file, and is stopped once a marker datagram
  is (SIGINT right after a burst loses its tail); dropped packets fail;
- TLS: `-d tcp.port==N,tls`, the inner protocol on tls.port (the Lua
  script does it) and `-o tls.keylog_file:F` with the file Python's
  SSLContext.keylog_filename wrote (TLS 1.3 works).
"""
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time

TSHARK = "tshark"
DUMPCAP = "dumpcap"
# Wireshark expert severity values (epan/proto.h): error = 0x00800000.
EXPERT_ERROR = 0x00800000
FRAMING_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tshark_framing.lua")


class Capture:
    """dumpcap capturing TCP on lo for some ports into a pcap file, started
    and stopped by pid with bounded waits.

    dumpcap prints "Capturing on" a little before its filter is in place,
    and a SIGINT right after a burst loses the packets still in the
    kernel buffer. So start() sends probe datagrams through the filter
    until one shows up in the file, and stop() sends a marker datagram
    and waits until it shows up (dumpcap flushes the file every 100 ms)
    before interrupting dumpcap. The probes and the marker are UDP to a
    port nobody decodes. stop() raises if dumpcap reports dropped packets."""

    def __init__(self, ports, pcap, iface="lo", udp_ports=()):
        self.ports = list(ports)
        self.udp_ports = list(udp_ports)  # UDP ports captured too (T.38)
        self.pcap = pcap
        self.iface = iface
        self.proc = None
        self.errfile = pcap + ".stderr"
        self.marker_sock = None
        # ASCII first: random bytes can pass tshark's RTP/RTCP heuristics
        # (version 2 in the first byte) and show as a malformed RTCP.
        self.probe = b"dcmf-probe-" + secrets.token_hex(8).encode()
        self.marker = b"dcmf-marker-" + secrets.token_hex(8).encode()
        self._scan_offset = 0

    def _file_has(self, token):
        """Whether token is in the part of the file not scanned yet."""
        try:
            with open(self.pcap, "rb") as f:
                f.seek(max(0, self._scan_offset - len(token)))
                data = f.read()
        except FileNotFoundError:
            return False
        found = token in data
        self._scan_offset = max(self._scan_offset, self._scan_offset - len(token) + len(data))
        return found

    def _wait_for_token(self, token, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dumpcap exited: " + open(self.errfile).read())
            self.marker_sock.sendto(token, self.marker_sock.getsockname())
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                if self._file_has(token):
                    return True
                time.sleep(0.02)
        return False

    def start(self, timeout=15):
        self.marker_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.marker_sock.bind(("127.0.0.1", 0))
        mport = self.marker_sock.getsockname()[1]
        flt = " or ".join(["tcp port %d" % p for p in self.ports] +
                          ["udp port %d" % p for p in self.udp_ports] +
                          ["udp port %d" % mport])
        if os.path.exists(self.pcap):
            os.unlink(self.pcap)
        self._err = open(self.errfile, "w")
        # -B: a 64 MiB kernel buffer, so that a burst on a busy machine is kept.
        self.proc = subprocess.Popen(
            [DUMPCAP, "-i", self.iface, "-f", flt, "-w", self.pcap, "-P", "-B", "64", "-q"],
            stdout=subprocess.DEVNULL, stderr=self._err)
        if not self._wait_for_token(self.probe, timeout):
            self.stop(check=False)
            raise RuntimeError("dumpcap did not start capturing within %ss: %s"
                               % (timeout, open(self.errfile).read()))
        return self

    def stop(self, timeout=10, check=True):
        if self.proc is None:
            return
        seen = self.proc.poll() is None and self._wait_for_token(self.marker, timeout)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        self._err.close()
        self.marker_sock.close()
        if not check:
            return
        err = open(self.errfile).read()
        if not seen:
            raise RuntimeError("capture may be incomplete: the end marker never came: " + err)
        m = re.search(r"received/dropped on interface '[^']*': (\d+)/(\d+)", err)
        if m and int(m.group(2)):
            raise RuntimeError("dumpcap dropped %s packets: %s" % (m.group(2), err))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)


class Result:
    def __init__(self):
        self.msrp = []       # decoded MSRP transactions, in wire order
        self.bfcp = []       # decoded BFCP primitives, in wire order
        self.problems = []   # (frame, text) for malformed / expert errors
        self.frames = 0

    def assert_clean(self):
        if self.problems:
            raise AssertionError("tshark flags %d problem(s): %s"
                                 % (len(self.problems), self.problems[:10]))

    def msrp_requests(self, method=None):
        return [t for t in self.msrp if "method" in t and (method is None or t["method"] == method)]

    def msrp_responses(self):
        return [t for t in self.msrp if "code" in t]


def _decode_args(msrp_ports, bfcp_ports, tls_ports, keylog):
    """tshark options: the framing script (tshark_framing.lua) registers the
    MSRP / BFCP ports itself; TLS ports are decoded as tls first."""
    # Out-of-order reassembly: on lo with two CPUs the capture can hold a
    # stream's segments in another order than they were sent (each CPU
    # fills its own capture blocks), which is not a fault of the peers.
    args = ["-o", "tcp.desegment_tcp_streams:TRUE",
            "-o", "tcp.reassemble_out_of_order:TRUE",
            "-o", "tcp.check_checksum:FALSE",
            "-o", "msrp.display_raw_text:FALSE",
            "-X", "lua_script:" + FRAMING_LUA]
    for kind, ports in (("msrp", msrp_ports), ("bfcp", bfcp_ports), ("tls", tls_ports)):
        if ports:
            args += ["-X", "lua_script1:%s=%s" % (kind, ",".join(str(p) for p in ports))]
    for p in tls_ports:
        args += ["-d", "tcp.port==%d,tls" % p]
    if keylog:
        args += ["-o", "tls.keylog_file:%s" % keylog,
                 "-o", "tls.desegment_ssl_records:TRUE",
                 "-o", "tls.desegment_ssl_application_data:TRUE"]
    return args


def _walk(node, key):
    """Every value stored under `key` anywhere in a tshark JSON layer tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                if isinstance(v, list):
                    yield from v
                else:
                    yield v
            else:
                yield from _walk(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _msrp_entries(layer):
    """One dict per MSRP PDU in a frame's 'msrp' layer (a dict or a list of
    dicts when a segment holds several PDUs)."""
    out = []
    for pdu in _as_list(layer):
        d = {}
        req = list(_walk(pdu, "msrp.method"))
        code = list(_walk(pdu, "msrp.status.code"))
        tid = list(_walk(pdu, "msrp.transaction.id"))
        if tid:
            d["tid"] = tid[0]
        if req:
            d["method"] = req[0]
        if code:
            d["code"] = int(code[0])
        for field, name in (("msrp.messageid", "Message-ID"), ("msrp.byte.range", "Byte-Range"),
                            ("msrp.status", "Status"), ("msrp.content.type", "Content-Type"),
                            ("msrp.to.path", "To-Path"), ("msrp.from.path", "From-Path"),
                            ("msrp.success.report", "Success-Report"),
                            ("msrp.failure.report", "Failure-Report"),
                            ("msrp.cnt.flg", "flag")):
            v = list(_walk(pdu, field))
            if v:
                d[name] = v[0].strip()
        out.append(d)
    return out


def _bfcp_entries(layer):
    out = []
    for pdu in _as_list(layer):
        d = {}
        for field, name in (("bfcp.ver", "version"), ("bfcp.primitive", "primitive"),
                            ("bfcp.payload_length", "payload_length"),
                            ("bfcp.conference_id", "conference_id"),
                            ("bfcp.transaction_id", "transaction_id"),
                            ("bfcp.user_id", "user_id")):
            v = list(_walk(pdu, field))
            if v:
                d[name] = int(v[0], 0)
        d["attributes"] = [int(x, 0) for x in _walk(pdu, "bfcp.attribute_type")]
        d["floor_ids"] = [int(x, 0) for x in _walk(pdu, "bfcp.floor_id")]
        d["request_status"] = [int(x, 0) for x in _walk(pdu, "bfcp.request_status")]
        out.append(d)
    return out


def analyze(pcap, msrp_ports=(), bfcp_ports=(), tls_ports=(), keylog=None, timeout=120):
    """Decode a pcap; returns a Result (problems filled, not raised)."""
    res = Result()
    base = [TSHARK, "-r", pcap, "-n"] + _decode_args(list(msrp_ports), list(bfcp_ports),
                                                     list(tls_ports), keylog)
    # Pass 1: every frame, with its expert messages and malformed marks;
    # a frame is a problem if it is malformed or has an error-level item.
    p = subprocess.run(base + ["-T", "fields", "-e", "frame.number", "-e", "_ws.malformed",
                               "-e", "_ws.expert.severity", "-e", "_ws.expert.message",
                               "-e", "_ws.col.Info", "-E", "occurrence=a", "-E", "aggregator=;"],
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("tshark failed: " + p.stderr)
    for line in p.stdout.splitlines():
        parts = line.split("\t")
        if not parts[0].strip():
            continue
        res.frames += 1
        severities = [int(x, 0) for x in parts[2].split(";") if x.strip()] if len(parts) > 2 else []
        if parts[1].strip() or any(sev >= EXPERT_ERROR for sev in severities):
            res.problems.append((int(parts[0]), " | ".join(parts[3:])))
    # Pass 2: the decoded PDUs.
    p = subprocess.run(base + ["-Y", "msrp || bfcp", "-T", "json", "--no-duplicate-keys", "-J", "frame tcp msrp bfcp"],
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("tshark failed: " + p.stderr)
    for pkt in json.loads(p.stdout or "[]"):
        layers = pkt["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        stream = int(layers["tcp"]["tcp.stream"]) if "tcp" in layers else None
        for e in _msrp_entries(layers.get("msrp", [])):
            e.update(frame=frame, stream=stream)
            res.msrp.append(e)
        for e in _bfcp_entries(layers.get("bfcp", [])):
            e.update(frame=frame, stream=stream)
            res.bfcp.append(e)
    return res


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="decode a pcap as MSRP/BFCP and flag problems")
    ap.add_argument("pcap")
    ap.add_argument("--msrp", type=int, action="append", default=[])
    ap.add_argument("--bfcp", type=int, action="append", default=[])
    ap.add_argument("--tls", type=int, action="append", default=[])
    ap.add_argument("--keylog")
    a = ap.parse_args()
    r = analyze(a.pcap, a.msrp, a.bfcp, a.tls, a.keylog)
    print(json.dumps({"frames": r.frames, "problems": r.problems, "msrp": r.msrp, "bfcp": r.bfcp},
                     indent=1))
    raise SystemExit(1 if r.problems else 0)
