#!/usr/bin/python3
"""MSRP over a data channel (a WebRTC IMS client, RFC 8873) <-> MSRP over
TCP (the IMS core) through dcmfd's AGW, beside a plain data channel <->
TCP relay of the same WebRTC library and a plain TCP relay of the same
MSRP bytes, in the same run (issue 12 item 6; docs/benchmarks.md "MSRP
over a data channel").

    tests/bench/msrp_dc_compare.py BUILD_DIR          (as root)

BUILD_DIR holds dcmf/dcmfd, tests/msrp_load and tests/tls_relay (a
release build, e.g. build-release). The
script puts itself in a network namespace of its own (unshare -n, only
loopback up) and runs, against the same load, these servers:
  relay     tests/bench/msrp_dc_relay.js: node-datachannel answering the
            WIC, the channel's messages written to TCP as they are, the
            core's stream cut at chunk ends into channel messages; nothing
            else (the anchor)
  agnostic  dcmfd, one /agw/v1 context as docs/e2ae.md's call flow makes
            it: access UDP/DTLS/SCTP with the negotiated "msrp" channel
            (dcsa msrp-cema), core TCP/MSRP toward the core peer (the AGW
            connects at once), msrp.mode agnostic
  aware     the same with msrp.mode aware (paths rewritten per leg; the
            WIC sends to the MF's ;dc URI, the core to its ;tcp URI)
  tcp       tests/bench/tls_relay.c --plain: a plain TCP <-> TCP relay (one
            thread, poll, 64 KiB reads, 256 KiB queued per direction), the
            WIC's side plain TCP too: what relaying the same MSRP bytes
            costs without the data channel (the second anchor). Its load is
            tests/bench/msrp_load.c --plain (the same MSRP bytes, the same
            checks, windows and directions; C, so its load figures are not
            those of the Node load), checked first with msrp_peer.py too
The load is tests/bench/msrp_dc_load.js: the WIC (node-datachannel, the
offerer) and the core peer (TCP) in one Node process, MSRP SEND chunks
one message each, one chunk per SCTP message, the receiver answering 200
per chunk, the sender keeping at most WINDOW_BYTES unanswered, flat out
in one direction at a time; every chunk and every 200 is checked (order,
transaction id, To-Path, Byte-Range, end-line, body). A sample of its
bytes is checked first with tests/integration/msrp_peer.py, an MSRP
parser written apart from it.

Figures per run: messages/s delivered to the receiver, MB/s of message
bodies (10^6 bytes), the server's CPU per message (utime + stime from
/proc/PID/stat of every process of the server over the window, divided
by the messages delivered in it), the server's and the load's CPU share
and the load's CPU per message. Servers rotate per round; each run has a
fresh server and load.

The Markdown table goes to stdout (medians over the rounds, min-max in
brackets, dcmfd / each anchor per row); progress to stderr with "#". Exit
status 1 if a set-up failed or a message or 200 was wrong or missing.

Environment (defaults in brackets):
  ROUNDS [3]  WINDOW_S [5]  WARMUP_S [1]  SIZES [1024,65536]
  DIRS [up,down]  SERVERS [relay,agnostic,aware,tcp]
  WINDOW_BYTES [1048576]: unanswered bytes at most
  SERVER_CPUS, LOAD_CPUS [not pinned]: taskset CPU lists
  DCMFD_ARGS [--workers 1]  DCMFD_LOG: append dcmfd's output there
  SMOKE [0]: 1 sets ROUNDS=1 WINDOW_S=1 WARMUP_S=0.3 (each overridable),
  and checks the core leg of a short agnostic run each way with tshark's
  MSRP dissector (when tshark is installed)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from bench_common import (LineTool, MsrpLoad, MsrpRun, SetupError,  # noqa: E402
                          check_msrp_load_wire, dcmfd_api, fmt, log, pinned, ratio,
                          run_in_own_netns, start_dcmfd, start_tls_relay, stop_proc,
                          tree_pids, tshark_core_leg)

run_in_own_netns("DCMF_MSRP_DC_COMPARE_NETNS", __file__)

import msrp_peer  # noqa: E402  (the RFC 4975 parser written for the tests)

R = MsrpRun("relay,agnostic,aware,tcp")  # the settings both MSRP comparisons take
env, env_list = R.settings.get, R.settings.list

LOAD_JS = os.path.join(HERE, "msrp_dc_load.js")
RELAY_JS = os.path.join(HERE, "msrp_dc_relay.js")
MSRP_LOAD = os.path.join(R.build, "tests", "msrp_load")
TLS_RELAY = os.path.join(R.build, "tests", "tls_relay")
DCMFD_PORT = 18992
STREAM_ID = 3
NAN = float("nan")


def sdp_attr(sdp, name):
    for line in sdp.split("\r\n"):
        if line.startswith(f"a={name}:"):
            return line[len(name) + 3:].strip()
    return None


# ---- the load --------------------------------------------------------------------

class Load(LineTool):
    """One msrp_dc_load.js process and its line dialogue."""

    def __init__(self):
        super().__init__("msrp_dc_load", pinned(["node", LOAD_JS], R.load_cpus))
        while True:
            f = self.line().split(" ", 1)
            if f[0] == "uris":
                self.wic_uri, self.core_uri = f[1].split()
            elif f[0] == "core":
                self.core_port = int(f[1])
            elif f[0] == "offer":
                self.offer = json.loads(f[1])
                break


def check_wire(load):
    """The load's bytes as msrp_peer.py (written from RFC 4975 apart from
    it) reads them: a SEND chunk per direction and size, and its 200."""
    for d in ("up", "down"):
        for size in R.sizes:
            send_hex, resp_hex = load.ask(f"sample {d} {size}", "sample").split()
            req = msrp_peer.MsrpDecoder().feed_message(bytes.fromhex(send_hex))
            if (req.method != "SEND" or req.flag != "$" or len(req.body) != size
                    or req.header("Byte-Range") != f"1-{size}/{size}"
                    or req.header("Failure-Report") is not None):
                raise SetupError(f"sample {d} {size}: not the SEND described")
            resp = msrp_peer.MsrpDecoder().feed_message(bytes.fromhex(resp_hex))
            if (resp.code != 200 or resp.tid != req.tid
                    or resp.header("To-Path") != req.header("From-Path").split()[0]):
                raise SetupError(f"sample {d} {size}: the 200 is not per RFC 4975 7.2")


# ---- the servers ---------------------------------------------------------------

class OverDataChannel:
    """A server the WIC reaches over the data channel: the Node load."""

    def new_load(self):
        return Load()

    def check_load(self, load):
        check_wire(load)


class Dcmfd(OverDataChannel):
    """dcmfd with one context: what an IMS-ALG makes of the WIC's offer
    (docs/e2ae.md, "MSRP over a data channel", call flow)."""

    def __init__(self, mode):
        self.mode = mode
        self.name = mode

    def start(self, load, tmp):
        self.proc = start_dcmfd(R.dcmfd, DCMFD_PORT, R.dcmfd_args, R.server_cpus)
        offer, cema = load.offer, self.mode == "agnostic"
        cand = next(line for line in offer.split("\r\n")
                    if line.startswith("a=candidate:") and " udp " in line.lower())
        f = cand.split(" ")
        core = {"terminationId": "core", "transport": "TCP/MSRP",
                "remote": {"ipv4Addr": "127.0.0.1", "port": load.core_port},
                "tcp": {"setup": "active"}, "msrp": {"mode": self.mode}}
        if not cema:
            core["msrp"]["path"] = load.core_uri
        body = {"terminations": [
            {"terminationId": "access", "transport": "UDP/DTLS/SCTP",
             "remote": {"ipv4Addr": f[4], "port": int(f[5])},
             "dtls": {"setup": sdp_attr(offer, "setup"),
                      "remoteFingerprints": [sdp_attr(offer, "fingerprint")]},
             "ice": {"remoteUfrag": sdp_attr(offer, "ice-ufrag"),
                     "remotePwd": sdp_attr(offer, "ice-pwd")},
             "dataChannel": {"streamId": STREAM_ID, "label": "chat", "subprotocol": "msrp",
                             "sctpPort": int(sdp_attr(offer, "sctp-port") or 5000),
                             "maxMessageSize": int(sdp_attr(offer, "max-message-size") or 65536),
                             "dcsa": {"path": load.wic_uri, "setup": "active",
                                      "msrpCema": cema}}},
            core]}
        _, ctx = dcmfd_api(DCMFD_PORT, "POST", "/agw/v1/contexts", body)
        self.context = ctx["contextId"]
        acc, cor = ctx["terminations"]
        if cema:  # each end sends to the other's own path
            load.ask(f"paths {load.core_uri} {load.wic_uri}", "ok")
        else:  # each end sends to the MF's URI on its side
            load.ask(f"paths {acc['dataChannel']['localPath']} {cor['msrp']['localPath']}", "ok")
        hash_, hex_ = acc["dtls"]["localFingerprint"].split(" ")
        port = acc["local"]["port"]
        answer = "\r\n".join([
            "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=ice-lite",
            f"m=application {port} UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 127.0.0.1",
            f"a=mid:{sdp_attr(offer, 'mid')}",
            f"a=ice-ufrag:{acc['ice']['localUfrag']}", f"a=ice-pwd:{acc['ice']['localPwd']}",
            f"a=fingerprint:{hash_.lower()} {hex_}", f"a=setup:{acc['dtls']['localSetup']}",
            "a=sctp-port:5000", "a=max-message-size:262144",
            f'a=dcmap:{STREAM_ID} label="chat";subprotocol="msrp"',
            f"a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host",
            "a=end-of-candidates", ""])
        load.ask("answer " + json.dumps(answer), "connected")

    def to_core_bytes(self):
        """dcmfd's own count of the bytes it relayed to the core (pushed at
        most once a second)."""
        doc = dcmfd_api(DCMFD_PORT, "GET", f"/agw/v1/contexts/{self.context}")[1]
        return ((doc.get("msrpCounters") or {}).get("toCore") or {}).get("bytes", 0)

    def pids(self):
        return tree_pids(self.proc.pid)

    def stop(self):
        if hasattr(self, "context"):
            dcmfd_api(DCMFD_PORT, "DELETE", f"/agw/v1/contexts/{self.context}", check=False)
        stop_proc(getattr(self, "proc", None), "dcmfd")


class Relay(OverDataChannel):
    name = "relay"

    def start(self, load, tmp):
        self.tool = LineTool("msrp_dc_relay", pinned(["node", RELAY_JS, str(load.core_port)],
                                                      R.server_cpus))
        self.tool.send("offer " + json.dumps(load.offer))
        line = self.tool.line()
        if not line.startswith("answer "):
            raise SetupError(f"msrp_dc_relay: {line}")
        load.ask(f"paths {load.core_uri} {load.wic_uri}", "ok")
        load.ask(line, "connected")
        if self.tool.line() != "connected":
            raise SetupError("msrp_dc_relay did not connect")

    def pids(self):
        return tree_pids(self.tool.proc.pid)

    def stop(self):
        if hasattr(self, "tool"):
            self.tool.close()


class TcpRelay:
    """The plain TCP anchor: tls_relay --plain between msrp_load --plain's
    WIC side (TCP instead of the data channel) and its core peer."""
    name = "tcp"

    def new_load(self):
        return MsrpLoad(MSRP_LOAD, 1, R.load_cpus)

    def check_load(self, load):
        check_msrp_load_wire(load, R.sizes)

    def start(self, load, tmp):
        self.proc = start_tls_relay(TLS_RELAY, ["--plain"], R.server_cpus, load)
        load.ask("connect", "connected")

    def pids(self):
        return tree_pids(self.proc.pid)

    def stop(self):
        stop_proc(getattr(self, "proc", None), "tls_relay --plain")


SERVER_KINDS = {"relay": Relay, "tcp": TcpRelay}


# ---- runs and the table --------------------------------------------------------------

def one_server(name, tmp, rnd, results):
    server = SERVER_KINDS[name]() if name in SERVER_KINDS else Dcmfd(name)
    load = server.new_load()
    try:
        server.check_load(load)
        server.start(load, tmp)
        pids = ",".join(map(str, server.pids()))
        log(f"round {rnd} {server.name}: WIC side and core connected, server pids {pids}")
        if R.smoke and name == "agnostic" and shutil.which("tshark"):
            tshark_core_leg(load, [load.core_port], tmp, (("up", 1024), ("down", 65536)))
        up_bytes = 0
        for size in R.sizes:
            for d in R.dirs:
                res = json.loads(load.ask(
                    f"run {d} {size} {int(R.warmup_s * 1000)} {int(R.window_s * 1000)} {pids} "
                    f"{R.window_bytes}", "result"))
                if "load_us_per_msg" not in res:  # msrp_load: from its CPU share
                    res["load_us_per_msg"] = (res["load_cpu_pct"] * 1e4 / res["msgs_per_s"]
                                              if res["msgs_per_s"] else NAN)
                if d == "up":
                    up_bytes += res["total_sent"] * res["wire_bytes_per_msg"]
                results.setdefault((server.name, size, d), []).append(res)
                log(f"round {rnd} {server.name} {d} {size}: {res['msgs_per_s']:.0f} msg/s, "
                    f"{res['mb_per_s']:.1f} MB/s, server {res['server_us_per_msg']:.2f} us/msg "
                    f"{res['server_cpu_pct']:.0f} %, load {res['load_us_per_msg']:.2f} us/msg "
                    f"{res['load_cpu_pct']:.0f} %, "
                    f"{res.get('datagrams_per_msg', NAN):.1f} datagrams/msg, "
                    f"{res.get('udp_drops', '-')} dropped")
        if isinstance(server, Dcmfd) and up_bytes:
            # dcmfd's own count must cover what the load sent toward the
            # core in the measured up runs (pushed at most once a second:
            # a bounded wait).
            end = time.monotonic() + 3
            while server.to_core_bytes() < up_bytes and time.monotonic() < end:
                time.sleep(0.1)
            got = server.to_core_bytes()
            if got < up_bytes:
                raise SetupError(f"dcmfd counted {got} bytes toward the core, "
                                 f"the up runs sent {up_bytes}")
            log(f"round {rnd} {server.name}: msrpCounters toCore {got} bytes, "
                f"up runs sent {up_bytes}")
    except BaseException:
        load.close()  # the first failure is the one to report
        server.stop()
        raise
    try:
        load.close_checked()
    finally:
        server.stop()


def table(results):
    names = {"up": "WIC→core (DC in, TCP out)", "down": "core→WIC (TCP in, DC out)"}
    rows = [("messages/s", "msgs_per_s", 0), ("MB/s (bodies)", "mb_per_s", 1),
            ("server CPU µs per message", "server_us_per_msg", 1),
            ("server CPU % of one core", "server_cpu_pct", 0),
            ("load CPU µs per message", "load_us_per_msg", 1),
            ("load CPU % of one core", "load_cpu_pct", 0),
            ("UDP datagrams per message (both ways)", "datagrams_per_msg", 1),
            ("UDP datagrams dropped by the kernel in the window", "udp_drops", 0)]
    servers = [s for s in ("relay", "agnostic", "aware", "tcp") if s in R.servers]
    labels = {"relay": "DC relay", "agnostic": "dcmfd agnostic", "aware": "dcmfd aware",
              "tcp": "plain TCP relay"}
    anchors = {"relay": "DC relay", "tcp": "plain TCP"}
    # dcmfd / each anchor run: the DC relay's ratios, then the plain TCP's
    ratios = [(s, a) for a in anchors if a in servers
              for s in servers if s not in anchors]
    print("| size | direction | figure | " + " | ".join(labels[s] for s in servers)
          + "".join(f" | {s} / {anchors[a]}" for s, a in ratios) + " |")
    print("|---|---|---|" + "---|" * (len(servers) + len(ratios)))
    for size in R.sizes:
        for d in R.dirs:
            for label, key, digits in rows:
                # the TCP anchor has no UDP figures: NaN, shown as "–"
                vals = {s: [x.get(key, NAN) for x in results.get((s, size, d), [])]
                        for s in servers}
                sz = f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"
                cells = [fmt(vals[s], digits) for s in servers]
                cells += [ratio(vals[s], vals[a]) for s, a in ratios]
                print(f"| {sz} | {names.get(d, d)} | {label} | " + " | ".join(cells) + " |")


def main():
    for exe in [R.dcmfd] + ([MSRP_LOAD, TLS_RELAY] if "tcp" in R.servers else []):
        if not os.access(exe, os.X_OK):
            sys.exit(f"msrp_dc_compare.py: {exe} is missing (meson compile -C {R.build})")
    tmp = tempfile.mkdtemp(prefix="dcmf-msrp-dc-compare-")
    results = {}
    ok = True
    t0 = time.time()
    for rnd in range(1, R.rounds + 1):
        k = (rnd - 1) % len(R.servers)
        order = R.servers[k:] + R.servers[:k]  # each server first in turn
        for name in order:
            try:
                one_server(name, tmp, rnd, results)
            except (SetupError, subprocess.SubprocessError, OSError, ValueError,
                    AssertionError) as e:
                log(f"round {rnd} {name}: FAILED: {e}")
                ok = False
    log(f"{R.rounds} round(s) in {time.time() - t0:.0f} s, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    table(results)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
