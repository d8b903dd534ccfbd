#!/usr/bin/python3
"""MSRP over TLS/TCP (IMS UE) <-> TCP (IMS core) through dcmfd's AGW,
beside a minimal TLS-terminating TCP relay, in the same run (issue 12
item 6; docs/benchmarks.md "MSRP and BFCP over TLS").

    tests/bench/msrp_compare.py BUILD_DIR          (as root)

BUILD_DIR holds dcmf/dcmfd, tests/msrp_load and tests/tls_relay (a
release build, e.g. build-release). The script puts itself in a network
namespace of its own (unshare -n, only loopback up) and runs, against
the same load, two servers:
  dcmfd   one /agw/v1 context per pair as docs/e2ae.md's UE-originated
          MSRP call flow makes it: access TCP/TLS/MSRP (the UE's
          certificate pinned by fingerprint, setup active: the AGW
          listens and is the TLS server), core TCP/MSRP toward the core
          peer (state-aware: the AGW connects at once), MSRP agnostic
  relay   tests/bench/tls_relay.c: TLS server with the same OpenSSL and
          context settings, the UE pinned the same way, plain TCP to the
          core peer opened when the UE connects, 64 KiB reads, 256 KiB
          queued at most per direction; nothing else (the anchor)
The load is tests/bench/msrp_load.c (C: a Python peer would cost more CPU
per message than the servers): per pair a UE (TLS client) and a core
peer (TCP), MSRP SEND chunks one message each, the receiver answering
200 per chunk (no Failure-Report header: default "yes"), the sender
keeping at most WINDOW_BYTES unanswered, flat out in one direction at a
time; every chunk and every 200 is checked (order, transaction id,
Byte-Range, end-line, body). A sample of its bytes is checked first with
tests/integration/msrp_peer.py, an MSRP parser written apart from it.

Phases per server, one fresh server and load per round and server, the
servers alternating (relay first in odd rounds): for each SIZE, "up"
(UE -> core) and "down" (core -> UE), WARMUP_S unmeasured then WINDOW_S
measured. Figures: messages/s delivered to the receiver, MB/s of message
bodies (10^6 bytes), the server's CPU per message (utime + stime from
/proc/PID/stat of every process of the server, over the window, divided
by the messages delivered in it), the server's and the load's CPU share,
and the server's read and write system calls per message (/proc/PID/io
syscr and syscw over the whole run, divided by the messages sent).

The Markdown table goes to stdout (medians over the rounds, min-max in
brackets, dcmfd / relay per row); progress to stderr with '#'. Exit
status 1 if a set-up failed or a message or 200 was wrong or missing.

Environment (defaults in brackets):
  ROUNDS [3]  WINDOW_S [5]  WARMUP_S [1]  PAIRS [1]: pairs (contexts) at
  once  SIZES [1024,65536]  DIRS [up,down]  SERVERS [relay,dcmfd]
  WINDOW_BYTES [1048576]: unanswered bytes per pair at most
  RATES [flat out]: SIZE=MSGS_PER_S,... paces the sender of that size at
  that total rate (e.g. 1024=60000,65536=8000)
  SERVER_CPUS, LOAD_CPUS [not pinned]: taskset CPU lists
  DCMFD_ARGS [--workers 1]  DCMFD_LOG: append dcmfd's output there
  SMOKE [0]: 1 sets ROUNDS=1 WINDOW_S=1 WARMUP_S=0.3 (each overridable),
  and checks the core leg of a short dcmfd run each way with tshark's
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
from bench_common import (MsrpLoad, MsrpRun, SetupError, check_msrp_load_wire,  # noqa: E402
                          dcmfd_api, fmt, log, ratio, run_in_own_netns, start_dcmfd,
                          start_tls_relay, stop_proc, tree_pids, tshark_core_leg)

run_in_own_netns("DCMF_MSRP_COMPARE_NETNS", __file__)

R = MsrpRun("relay,dcmfd")  # the settings both MSRP comparisons take
env, env_list = R.settings.get, R.settings.list

LOAD = os.path.join(R.build, "tests", "msrp_load")
RELAY = os.path.join(R.build, "tests", "tls_relay")
PAIRS = int(env("PAIRS", "1"))
RATES = {int(k): float(v) for k, v in
         (x.split("=") for x in env_list("RATES", ""))}
DCMFD_PORT = 18991


def make_cert(tmp, name):
    key, pem = f"{tmp}/{name}.key", f"{tmp}/{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem,
                    "-days", "2", "-subj", f"/CN={name}"], check=True, capture_output=True)
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"],
                         check=True, capture_output=True, text=True).stdout
    return pem, key, out.strip().split("=", 1)[1]


# ---- the servers ---------------------------------------------------------------

class Dcmfd:
    name = "dcmfd"

    def start(self, load, tmp):
        self.proc = start_dcmfd(R.dcmfd, DCMFD_PORT, R.dcmfd_args, R.server_cpus)
        self.contexts = []
        for i, core_port in enumerate(load.core_ports):
            body = {"terminations": [
                {"terminationId": "access", "transport": "TCP/TLS/MSRP",
                 "remote": {"ipv4Addr": "127.0.0.1", "port": 9},
                 "tls": {"remoteFingerprints": [f"sha-256 {load.fingerprint}"],
                         "setup": "active"},
                 "msrp": {"mode": "agnostic"}},
                {"terminationId": "core", "transport": "TCP/MSRP",
                 "remote": {"ipv4Addr": "127.0.0.1", "port": core_port}}]}
            _, ctx = self.api("POST", "/agw/v1/contexts", body)
            self.contexts.append(ctx["contextId"])
            acc = ctx["terminations"][0]
            if acc["tls"]["localSetup"] != "passive":
                raise SetupError(f"dcmfd's access setup is {acc['tls']['localSetup']}")
            fp = acc["tls"]["localFingerprint"].split()[-1]
            load.send(f"peer {i} {acc['local']['port']} {fp}")

    def api(self, method, path, body=None, check=True):
        return dcmfd_api(DCMFD_PORT, method, path, body, check)

    def to_core_bytes(self):
        """dcmfd's own count of the bytes it relayed to the core (pushed at
        most once a second, so it may lag the load's count a little)."""
        got = 0
        for c in self.contexts:
            doc = self.api("GET", f"/agw/v1/contexts/{c}")[1]
            got += (doc.get("tcpCounters") or {}).get("toCore", {}).get("bytes", 0)
        return got

    def pids(self):
        return tree_pids(self.proc.pid)

    def stop(self):
        for c in getattr(self, "contexts", []):
            self.api("DELETE", f"/agw/v1/contexts/{c}", check=False)
        stop_proc(getattr(self, "proc", None), "dcmfd")


class Relay:
    name = "relay"

    def start(self, load, tmp):
        cert, key, fp = make_cert(tmp, "relay")
        self.proc = start_tls_relay(RELAY, [cert, key, load.fingerprint], R.server_cpus, load, fp)

    def pids(self):
        return tree_pids(self.proc.pid)

    def stop(self):
        stop_proc(getattr(self, "proc", None), "tls_relay")


# ---- runs and the table --------------------------------------------------------------

def syscalls(pids):
    """(read, write) system calls of the server's processes so far
    (/proc/PID/io syscr and syscw: read/recv and write/send calls of all
    threads)."""
    r = w = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/io") as f:
                kv = dict(line.split(": ") for line in f.read().splitlines())
            r += int(kv["syscr"])
            w += int(kv["syscw"])
        except (OSError, KeyError, ValueError):
            pass
    return r, w


def one_server(kind, tmp, rnd, results):
    ue_cert, ue_key, _ = make_cert(tmp, f"ue{rnd}")
    load = MsrpLoad(LOAD, PAIRS, R.load_cpus, ue_cert, ue_key)
    server = kind()
    try:
        check_msrp_load_wire(load, R.sizes)
        server.start(load, tmp)
        tls = json.loads(load.ask("connect", "connected"))["tls"]
        pids = ",".join(map(str, server.pids()))
        log(f"round {rnd} {server.name}: {PAIRS} pair(s) up, {tls}, server pids {pids}")
        if R.smoke and isinstance(server, Dcmfd) and shutil.which("tshark"):
            tshark_core_leg(load, load.core_ports, tmp, (("up", 1024), ("down", 65536)))
        for size in R.sizes:
            for d in R.dirs:
                io0 = syscalls(server.pids())
                res = json.loads(load.ask(
                    f"run {d} {size} {int(R.warmup_s * 1000)} {int(R.window_s * 1000)} {pids} "
                    f"{R.window_bytes} {RATES.get(size, 0)}", "result"))
                io1 = syscalls(server.pids())
                res["tls"] = tls
                # Over the whole run (warm-up, window, drain): every message sent.
                res["reads_per_msg"] = (io1[0] - io0[0]) / res["total_sent"]
                res["writes_per_msg"] = (io1[1] - io0[1]) / res["total_sent"]
                results.setdefault((server.name, size, d), []).append(res)
                log(f"round {rnd} {server.name} {d} {size}: {res['msgs_per_s']:.0f} msg/s, "
                    f"{res['mb_per_s']:.1f} MB/s, {res['server_us_per_msg']:.2f} us/msg, "
                    f"server {res['server_cpu_pct']:.0f} %, load {res['load_cpu_pct']:.0f} %, "
                    f"server reads/writes per msg {res['reads_per_msg']:.2f}/"
                    f"{res['writes_per_msg']:.2f}")
        if isinstance(server, Dcmfd):
            # dcmfd's own count must cover what the load sent toward the core
            # (the up runs' chunks; the down runs' 200s add to it). Pushed at
            # most once a second: a bounded wait.
            want = sum(r["total_sent"] * r["wire_bytes_per_msg"]
                       for (name, _, d), rs in results.items() if name == "dcmfd" and d == "up"
                       for r in rs[-1:])
            end = time.monotonic() + 3
            while server.to_core_bytes() < want and time.monotonic() < end:
                time.sleep(0.1)
            got = server.to_core_bytes()
            if got < want:
                raise SetupError(f"dcmfd counted {got} bytes toward the core, the load sent {want}")
            log(f"round {rnd} dcmfd: tcpCounters toCore {got} bytes, up runs sent {want}")
    finally:
        load.close_checked()
        server.stop()


def table(results):
    names = {"up": "UE→core (TLS in, TCP out)", "down": "core→UE (TCP in, TLS out)"}
    rows = [("messages/s", "msgs_per_s", 0), ("MB/s (bodies)", "mb_per_s", 1),
            ("server CPU µs per message", "server_us_per_msg", 2),
            ("server CPU % of one core", "server_cpu_pct", 0),
            ("server read calls per message", "reads_per_msg", 2),
            ("server write calls per message", "writes_per_msg", 2),
            ("load CPU % of one core", "load_cpu_pct", 0)]
    print("| size | direction | figure | relay | dcmfd | dcmfd / relay |")
    print("|---|---|---|---|---|---|")
    for size in R.sizes:
        for d in R.dirs:
            for label, key, digits in rows:
                r = [x[key] for x in results.get(("relay", size, d), [])]
                m = [x[key] for x in results.get(("dcmfd", size, d), [])]
                sz = f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"
                print(f"| {sz} | {names.get(d, d)} | {label} | {fmt(r, digits)} | "
                      f"{fmt(m, digits)} | {ratio(m, r)} |")


def main():
    for exe in (R.dcmfd, LOAD, RELAY):
        if not os.access(exe, os.X_OK):
            sys.exit(f"msrp_compare.py: {exe} is missing (meson compile -C {R.build})")
    kinds = {"dcmfd": Dcmfd, "relay": Relay}
    tmp = tempfile.mkdtemp(prefix="dcmf-msrp-compare-")
    results = {}
    ok = True
    for rnd in range(1, R.rounds + 1):
        order = R.servers if rnd % 2 == 1 else list(reversed(R.servers))
        for name in order:
            try:
                one_server(kinds[name], tmp, rnd, results)
            except (SetupError, subprocess.SubprocessError, OSError, ValueError) as e:
                log(f"round {rnd} {name}: FAILED: {e}")
                ok = False
    table(results)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
