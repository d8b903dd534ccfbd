#!/usr/bin/python3
"""dcmfd's e2ae (DTLS-SRTP <-> RTP) beside rtpengine 10.5 (issue 11).

    tests/bench/e2ae_compare.py BUILD_DIR          (as root)

BUILD_DIR holds dcmf/dcmfd and tests/rtp_load (a release build, e.g.
build-release). The script puts itself in a network namespace of its own
(unshare -n, only loopback up) and runs, in the same run, dcmfd and
rtpengine (Debian's rtpengine-daemon, userspace forwarding only, driven by
its ng protocol) against the same load: tests/bench/rtp_load.c, which plays
the WebRTC IMS clients (ICE toward dcmfd, DTLS-SRTP with OpenSSL, SRTP with
libsrtp2) on the access side and the IMS core peers (plain RTP) on the core
side. Each server is started here, with a configuration written here, and
stopped by pid; so is every rtp_load.

Phases, each against both servers in every round, the servers alternating
(rtpengine first in odd rounds, dcmfd first in even ones); a fresh server
per round and server, new calls for every step of a search and every
other phase:
  a2c   STREAMS streams SRTP->RTP: the highest total packet rate the server
        forwards with at most LOSS_MAX loss (a bounded search: the rate
        doubles from SEARCH_START until a step fails, then SEARCH_STEPS
        bisections), and the server's CPU per packet at that rate
  c2a   the same RTP->SRTP
  flat  one stream, each direction: the same search as a2c and c2a with
        one stream, its highest sustained rate and CPU per packet
  flatloop (not by default) one stream closed loop, each direction
        (rtp_load refills as the server forwards, 32 packets unanswered at
        most): forwarded packets/s, loss, CPU per packet; rtpengine 10.5
        stops reading a socket that had more than 50 packets queued in one
        read loop, which this load always causes
  mix   CALLS two-way calls x CALL_PPS packets/s in each direction, a
        MIX_WINDOW_S window: loss and CPU per packet
CPU per packet = the server's utime + stime (/proc/PID/stat, all threads;
for dcmfd summed over its worker processes too) over the measured window,
divided by the packets it forwarded in that window (those rtp_load
received). rtp_load reads /proc itself at the edges of the window.

The Markdown table goes to stdout (medians over the rounds, min-max in
brackets, and dcmfd/rtpengine per row); progress to stderr with '#'.
Exit status 1 if a set-up failed, an SRTP sample failed authentication,
or the call mix lost more than LOSS_MAX or could not be offered at its
rate.

Environment (defaults in brackets):
  ROUNDS [3]  STREAMS [50]  CALLS [240]  CALL_PPS [50]
  WINDOW_S [5]: measured window of each search step and flat-out run
  MIX_WINDOW_S [20]  WARMUP_S [2]: unmeasured sending before each window
  SEARCH_START [5000]  SEARCH_STEPS [4]  SEARCH_MAX [400000] (packets/s)
  LOSS_MAX [0.005]  PROFILE [SRTP_AES128_CM_SHA1_80]
  PHASES [a2c,c2a,flat,mix]  SERVERS [rtpengine,dcmfd]
  SERVER_CPUS [not pinned]: taskset CPU list for either server
  LOAD_CPUS [not pinned]: taskset CPU list for rtp_load
  DCMFD_ARGS [--workers 1 --hello-rate 0 --stun-rate 0]
  RTPENGINE_THREADS [1]: rtpengine's num-threads (its default: the CPU
  count, at least 4)
  DCMFD_LOG, RTPENGINE_LOG: append the server's output to this file
  RTPENGINE_LOG_LEVEL [4]: its log-level (syslog numbers, 7: debug)
  PERF_OUT [off]: perf record -g of each server over the call mix (warm-up
  and window) into PERF_OUT.dcmfd and PERF_OUT.rtpengine; PERF_FREQ [999]
  DEBUG [0]: 1 logs the SDP rtpengine answers toward the WIC, a dcmfd
  context's counters before its DELETE, the call mix's packets per 100 ms
  SMOKE [0]: 1 sets ROUNDS=1 STREAMS=10 CALLS=40 WINDOW_S=2 MIX_WINDOW_S=4
  WARMUP_S=1 SEARCH_STEPS=1 (each still overridable)
"""
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

NETNS_MARK = "DCMF_E2AE_COMPARE_NETNS"

# ---- into a network namespace of our own ------------------------------------

if not os.environ.get(NETNS_MARK):
    if os.getuid() != 0:
        sys.exit("e2ae_compare.py: needs root (unshare -n)")
    setup = ("set -e; ip link set lo up; ulimit -n 65536 2>/dev/null || true; "
             'exec "$0" "$@"')
    env = dict(os.environ, **{NETNS_MARK: "1"})
    r = subprocess.run(["unshare", "-n", "sh", "-c", setup, sys.executable,
                        os.path.abspath(__file__), *sys.argv[1:]], env=env)
    sys.exit(r.returncode)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (LineTool, SetupError, dcmfd_api, fmt, log,  # noqa: E402
                          open_log, pinned, ratio, start_dcmfd, stop_proc,
                          tree_pids)

# ---- settings -----------------------------------------------------------------

SMOKE = os.environ.get("SMOKE", "0") not in ("", "0")
SMOKE_DEFAULTS = {"ROUNDS": "1", "STREAMS": "10", "CALLS": "40", "WINDOW_S": "2",
                  "MIX_WINDOW_S": "4", "WARMUP_S": "1", "SEARCH_STEPS": "1"}


def env(key, default):
    v = os.environ.get(key, "")
    if v != "":
        return v
    if SMOKE and key in SMOKE_DEFAULTS:
        return SMOKE_DEFAULTS[key]
    return default


def env_list(key, default):
    return [x.strip() for x in env(key, default).split(",") if x.strip()]


BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-release")
DCMFD = os.path.join(BUILD, "dcmf", "dcmfd")
RTP_LOAD = os.path.join(BUILD, "tests", "rtp_load")
RTPENGINE = "/usr/bin/rtpengine"
ROUNDS = int(env("ROUNDS", "3"))
STREAMS = int(env("STREAMS", "50"))
CALLS = int(env("CALLS", "240"))
CALL_PPS = float(env("CALL_PPS", "50"))
WINDOW_S = float(env("WINDOW_S", "5"))
MIX_WINDOW_S = float(env("MIX_WINDOW_S", "20"))
WARMUP_S = float(env("WARMUP_S", "2"))
SEARCH_START = float(env("SEARCH_START", "5000"))
SEARCH_STEPS = int(env("SEARCH_STEPS", "4"))
SEARCH_MAX = float(env("SEARCH_MAX", "400000"))
LOSS_MAX = float(env("LOSS_MAX", "0.005"))
PROFILE = env("PROFILE", "SRTP_AES128_CM_SHA1_80")
PHASES = env_list("PHASES", "a2c,c2a,flat,mix")
SERVERS = env_list("SERVERS", "rtpengine,dcmfd")
SERVER_CPUS = env("SERVER_CPUS", "")
LOAD_CPUS = env("LOAD_CPUS", "")
DCMFD_ARGS = shlex.split(env("DCMFD_ARGS", "--workers 1 --hello-rate 0 --stun-rate 0"))
RTPENGINE_THREADS = int(env("RTPENGINE_THREADS", "1"))
DEBUG = env("DEBUG", "0") != "0"
PROFILE_OUT = env("PERF_OUT", "")
PROFILE_FREQ = int(env("PERF_FREQ", "999"))
RTPENGINE_LOG_LEVEL = int(env("RTPENGINE_LOG_LEVEL", "4"))
DCMFD_PORT = 18981
NG_PORT = 18982
# A step is sustained when the load really offered the rate (rtp_load on
# its CPU may not) and the server lost at most LOSS_MAX of it.
OFFERED_MIN = 0.98


# ---- the load tool ---------------------------------------------------------------

class Load(LineTool):
    """One rtp_load process: N streams, its line dialogue (rtp_load.c)."""

    def __init__(self, n):
        super().__init__("rtp_load", pinned([RTP_LOAD, "--streams", str(n), "--profile",
                                             PROFILE], LOAD_CPUS))
        self.streams = []
        while True:
            line = self.line()
            f = line.split()
            if f[0] == "fingerprint":
                self.fingerprint = f"{f[1]} {f[2]}"
            elif f[0] == "ice":
                self.ufrag, self.pwd = f[1], f[2]
            elif f[0] == "stream":
                self.streams.append({"access": int(f[2]), "core": int(f[3])})
            elif f[0] == "ready":
                break

    def peer(self, i, access, core, role, fingerprint, ufrag="-", pwd="-"):
        hexfp = fingerprint.split()[-1]
        self.send(f"peer {i} {access[0]} {access[1]} {core[0]} {core[1]} {role} "
                  f"{hexfp} {ufrag} {pwd}")

    def connect(self):
        self.send("connect")
        line = self.line()
        return json.loads(line.split(" ", 1)[1])

    def run(self, direction, rate, window_s, pids, warmup_s=None):
        w = WARMUP_S if warmup_s is None else warmup_s
        self.send(f"run {direction} {rate:.1f} {int(w * 1000)} {int(window_s * 1000)} "
                  f"{','.join(str(p) for p in pids) or '-'}")
        line = self.line()
        if not line.startswith("result "):
            raise SetupError(f"rtp_load: {line}")
        return json.loads(line.split(" ", 1)[1])


# ---- dcmfd ------------------------------------------------------------------------

class Dcmfd:
    name = "dcmfd"

    def start(self):
        if not os.access(DCMFD, os.X_OK):
            raise SetupError(f"{DCMFD} is missing (meson compile -C {BUILD})")
        self.proc = start_dcmfd(DCMFD, DCMFD_PORT, DCMFD_ARGS, SERVER_CPUS)
        # setpriv and taskset exec: the pid is dcmfd's.
        self.pid = self.proc.pid
        self.contexts = []

    def pids(self):
        return tree_pids(self.pid)

    def api(self, method, path, body=None, check=True):
        return dcmfd_api(DCMFD_PORT, method, path, body, check)

    def calls(self, load):
        """One e2ae context per stream, as an IMS-ALG makes it for a WIC's
        offer (docs/e2ae.md, UE-originated): access UDP/TLS/RTP/SAVPF with
        the WIC's fingerprint, setup actpass and ICE credentials; core
        RTP/AVP with rtcp-mux toward the core peer's socket."""
        for i, s in enumerate(load.streams):
            body = {"terminations": [
                {"terminationId": "access", "transport": "UDP/TLS/RTP/SAVPF", "rtcpMux": True,
                 "dtls": {"remoteFingerprints": [load.fingerprint], "setup": "actpass"},
                 "ice": {"remoteUfrag": load.ufrag, "remotePwd": load.pwd},
                 "remote": {"ipv4Addr": "127.0.0.1", "port": s["access"]}},
                {"terminationId": "core", "transport": "RTP/AVP", "rtcpMux": True,
                 "remote": {"ipv4Addr": "127.0.0.1", "port": s["core"]}}]}
            _, ctx = self.api("POST", "/agw/v1/contexts", body)
            self.contexts.append(ctx["contextId"])
            acc = next(t for t in ctx["terminations"] if t["terminationId"] == "access")
            core = next(t for t in ctx["terminations"] if t["terminationId"] == "core")
            # The AGW answers actpass with passive: the WIC is the DTLS client.
            role = "client" if acc["dtls"]["localSetup"] == "passive" else "server"
            load.peer(i, ("127.0.0.1", acc["local"]["port"]), ("127.0.0.1", core["local"]["port"]),
                      role, acc["dtls"]["localFingerprint"], acc["ice"]["localUfrag"],
                      acc["ice"]["localPwd"])

    def hangup(self):
        if DEBUG and self.contexts:
            log(f"dcmfd's first context before DELETE: {self.api('GET', f'/agw/v1/contexts/{self.contexts[0]}')[1]}")
        for c in self.contexts:
            self.api("DELETE", f"/agw/v1/contexts/{c}")
        self.contexts = []

    def stop(self):
        if getattr(self, "proc", None):
            stop_proc(self.proc, "dcmfd")


# ---- rtpengine and its ng protocol -----------------------------------------------

def bencode(v):
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(f"cannot bencode {type(v)}")


def bdecode(b, i=0):
    """Returns (value, next index); strings come back as str."""
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l":
        out, i = [], i + 1
        while b[i:i + 1] != b"e":
            v, i = bdecode(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while b[i:i + 1] != b"e":
            k, i = bdecode(b, i)
            out[k], i = bdecode(b, i)
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n].decode(errors="replace"), j + 1 + n


def sdp_media(sdp):
    """(address, port, fingerprint, setup) of the first m= section."""
    addr = port = fp = setup = None
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("c=IN IP4 "):
            addr = line.split()[2]
        elif line.startswith("m=audio ") and port is None:
            port = int(line.split()[1])
        elif line.startswith("a=fingerprint:"):
            fp = line[len("a=fingerprint:"):].strip()
        elif line.startswith("a=setup:"):
            setup = line[len("a=setup:"):].strip()
    return addr, port, fp, setup


class Rtpengine:
    name = "rtpengine"

    def start(self):
        if not os.access(RTPENGINE, os.X_OK):
            raise SetupError(f"{RTPENGINE} is missing: make bench-deps (docs/benchmarks.md)")
        self.dir = tempfile.mkdtemp(prefix="dcmf-rtpengine-")
        conf = os.path.join(self.dir, "rtpengine.conf")
        # Userspace forwarding only (table = -1, no kernel module), one
        # interface on the namespace's loopback, the ng protocol on UDP,
        # no recording, no HTTP or CLI listener, calls deleted at once.
        with open(conf, "w") as f:
            f.write(f"""[bench]
table = -1
no-fallback = false
interface = 127.0.0.1
listen-ng = 127.0.0.1:{NG_PORT}
port-min = 30000
port-max = 39999
foreground = true
log-stderr = true
log-level = {RTPENGINE_LOG_LEVEL}
num-threads = {RTPENGINE_THREADS}
media-num-threads = 0
delete-delay = 0
timeout = 600
""")
        cmd = pinned([RTPENGINE, f"--config-file={conf}", "--config-section=bench"], SERVER_CPUS)
        out = open_log("RTPENGINE_LOG")
        self.proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", *cmd],
                                     stdout=out, stderr=out)
        self.pid = self.proc.pid
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.2)
        self.seq = 0
        end = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise SetupError(f"rtpengine exited ({self.proc.returncode}); "
                                 "RTPENGINE_LOG=file shows why")
            try:
                if self.ng({"command": "ping"}, tries=1).get("result") == "pong":
                    break
            except SetupError:
                pass
            if time.monotonic() > end:
                raise SetupError("rtpengine did not answer ng ping within 10 s")
        self.calls_made = []

    def pids(self):
        return tree_pids(self.pid)

    def ng(self, msg, tries=20):
        """One ng command: "COOKIE bencoded-dict" over UDP, retried."""
        self.seq += 1
        cookie = f"b{self.seq}"
        data = cookie.encode() + b" " + bencode(msg)
        for _ in range(tries):
            self.sock.sendto(data, ("127.0.0.1", NG_PORT))
            try:
                while True:
                    reply = self.sock.recv(65536)
                    c, _, body = reply.partition(b" ")
                    if c.decode() == cookie:
                        return bdecode(body)[0]
            except socket.timeout:
                continue
        raise SetupError(f"rtpengine: no answer to {msg.get('command')}")

    def calls(self, load):
        """Per stream: the WIC's offer (UDP/TLS/RTP/SAVPF, a=fingerprint,
        a=setup:actpass, rtcp-mux, no ICE) rewritten toward the core as
        RTP/AVP; the core's answer; rtpengine's answer to the WIC gives its
        access port, fingerprint and setup."""
        for i, s in enumerate(load.streams):
            call_id, wic_tag, core_tag = f"bench-{i}", f"wic-{i}", f"core-{i}"
            offer = "\r\n".join([
                "v=0", f"o=- {1000 + i} 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
                f"m=audio {s['access']} UDP/TLS/RTP/SAVPF 0", "a=rtpmap:0 PCMU/8000",
                "a=sendrecv", "a=rtcp-mux", "a=setup:actpass",
                f"a=fingerprint:{load.fingerprint}", ""])
            r = self.ng({"command": "offer", "call-id": call_id, "from-tag": wic_tag,
                         "sdp": offer, "transport-protocol": "RTP/AVP", "ICE": "remove",
                         "replace": ["origin", "session-connection"]})
            if r.get("result") != "ok":
                raise SetupError(f"rtpengine offer: {r}")
            core_addr, core_port, _, _ = sdp_media(r["sdp"])
            answer = "\r\n".join([
                "v=0", f"o=- {2000 + i} 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
                f"m=audio {s['core']} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv",
                "a=rtcp-mux", ""])
            r = self.ng({"command": "answer", "call-id": call_id, "from-tag": wic_tag,
                         "to-tag": core_tag, "sdp": answer, "DTLS": "passive",
                         "replace": ["origin", "session-connection"]})
            if r.get("result") != "ok":
                raise SetupError(f"rtpengine answer: {r}")
            self.calls_made.append((call_id, wic_tag))
            acc_addr, acc_port, fp, setup = sdp_media(r["sdp"])
            if DEBUG:
                log(f"rtpengine's answer to the WIC: {r['sdp']!r}")
            if not fp or not core_port or not acc_port:
                raise SetupError(f"rtpengine's SDP lacks a port or a fingerprint: {r['sdp']!r}")
            role = "client" if setup == "passive" else "server"
            load.peer(i, (acc_addr, acc_port), (core_addr, core_port), role, fp)

    def hangup(self):
        for call_id, tag in self.calls_made:
            r = self.ng({"command": "delete", "call-id": call_id, "from-tag": tag})
            if r.get("result") != "ok":
                raise SetupError(f"rtpengine delete: {r}")
        self.calls_made = []

    def stop(self):
        if getattr(self, "proc", None):
            stop_proc(self.proc, "rtpengine")
        if getattr(self, "sock", None):
            self.sock.close()
        if getattr(self, "dir", None):
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- phases -------------------------------------------------------------------------

def loss_of(res, direction):
    d = res[direction]
    return d["lost"] / d["sent"] if d["sent"] else 1.0


def check_samples(res, what):
    for d in ("a2c", "c2a"):
        if res[d]["auth_failed"] or res[d]["other_failed"]:
            raise SetupError(f"{what}: {res[d]['auth_failed']} SRTP samples failed "
                             f"authentication, {res[d]['other_failed']} failed otherwise")


def us_per_packet(res, directions):
    fwd = sum(res[d]["received"] for d in directions)
    return res["cpu_s"] * 1e6 / fwd if fwd else float("nan")


def with_calls(server, n, fn):
    load = Load(n)
    try:
        server.calls(load)
        info = load.connect()
        log(f"  {server.name}: {n} calls up ({info['profile']}, ICE {info['ice_ms']} ms, "
            f"DTLS {info['dtls_ms']} ms)")
        return fn(load)
    finally:
        load.close()
        server.hangup()


def phase_search(server, direction, streams):
    """Highest total rate over |streams| streams with loss <= LOSS_MAX. Each
    step has calls of its own: rtpengine 10.5 stops reading a socket for
    good once it found more than 50 packets queued on it (its log says
    "Too many packets in UDP receive queue"), so after an overloaded step
    its calls forward nothing."""
    def step(rate):
        res = with_calls(server, streams,
                         lambda load: load.run(direction, rate, WINDOW_S, server.pids()))
        check_samples(res, f"{server.name} {direction} {rate:.0f}/s")
        d = res[direction]
        offered = d["sent_pps"] >= OFFERED_MIN * rate
        ok = offered and loss_of(res, direction) <= LOSS_MAX
        log(f"  {server.name} {direction} x{streams} {rate:9.0f}/s: sent {d['sent_pps']:9.0f}/s "
            f"forwarded {d['received_pps']:9.0f}/s loss {100 * loss_of(res, direction):7.3f} % "
            f"cpu {res['cpu_s']:.2f} s {us_per_packet(res, [direction]):6.2f} us/pkt"
            f"{'' if offered else ' (rtp_load could not offer the rate)'}"
            f" -> {'ok' if ok else 'too much'}")
        return ok, offered, res

    best, lo, hi, rate = None, 0.0, None, SEARCH_START
    while rate <= SEARCH_MAX:
        ok, offered, res = step(rate)
        if ok:
            best, lo = (rate, res), rate
            rate *= 2
        else:
            hi = rate
            if not offered:
                log(f"  {server.name} {direction}: the load tool is the limit at {rate:.0f}/s")
            break
    if hi is not None:
        for _ in range(SEARCH_STEPS):
            mid = (lo + hi) / 2
            ok, offered, res = step(mid)
            if ok:
                best, lo = (mid, res), mid
            else:
                hi = mid
    if best is None:
        return {"rate": 0.0, "us": float("nan"), "loss": float("nan")}
    rate, res = best
    return {"rate": res[direction]["received_pps"], "us": us_per_packet(res, [direction]),
            "loss": loss_of(res, direction), "capped": hi is None}


def phase_flatloop(server):
    """One stream flat out, each direction on a call of its own, rtp_load
    keeping 32 packets unanswered. Not among the default phases: rtpengine
    10.5 stops reading a socket for good once one read loop found more than
    50 packets, which a sender that refills as fast as it forwards always
    causes; dcmfd's figure here is its closed-loop throughput."""
    out = {}
    for direction in ("a2c", "c2a"):
        res = with_calls(server, 1, lambda load: load.run(direction, 0, WINDOW_S, server.pids()))
        check_samples(res, f"{server.name} flat {direction}")
        d = res[direction]
        out[direction] = {"pps": d["received_pps"], "loss": loss_of(res, direction),
                          "us": us_per_packet(res, [direction])}
        log(f"  {server.name} flat {direction}: sent {d['sent_pps']:.0f}/s forwarded "
            f"{d['received_pps']:.0f}/s loss {100 * loss_of(res, direction):.3f} % "
            f"{out[direction]['us']:.2f} us/pkt; stray STUN/DTLS/other {res['stray_stun']}/"
            f"{res['stray_dtls']}/{res['stray_other']}, send errors {res['send_errors']}")
    return out


def phase_mix(server):
    def fn(load):
        rate = CALLS * CALL_PPS
        perf = None
        if PROFILE_OUT:
            # Over the measured window (it starts after WARMUP_S; perf is
            # up well within that).
            out = f"{PROFILE_OUT}.{server.name}"
            perf = subprocess.Popen(
                ["perf", "record", "-q", "-g", "-F", str(PROFILE_FREQ), "-o", out,
                 "-p", ",".join(str(p) for p in server.pids()), "--", "sleep",
                 str(WARMUP_S + MIX_WINDOW_S)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        res = load.run("both", rate, MIX_WINDOW_S, server.pids())
        if DEBUG:
            log(f"  {server.name} mix: packets received per 100 ms of the window: "
                f"{res['timeline_100ms']}")
        if perf:
            perf.wait(30)
            log(f"  {server.name} mix: perf data in {out}")
        check_samples(res, f"{server.name} mix")
        sent = res["a2c"]["sent"] + res["c2a"]["sent"]
        lost = res["a2c"]["lost"] + res["c2a"]["lost"]
        out = {"loss": lost / sent if sent else 1.0, "us": us_per_packet(res, ["a2c", "c2a"]),
               "cpu_pct": 100 * res["cpu_s"] / res["window_s"],
               "pps_in": sent / res["window_s"],
               "offered": min(res["a2c"]["sent_pps"], res["c2a"]["sent_pps"]) >= OFFERED_MIN * rate,
               "consent": (res["consent_sent"], res["consent_answered"])}
        log(f"  {server.name} mix: {CALLS} calls, {out['pps_in']:.0f} packets/s in, loss "
            f"{100 * out['loss']:.3f} % (SRTP->RTP {100 * loss_of(res, 'a2c'):.3f} %, RTP->SRTP "
            f"{100 * loss_of(res, 'c2a'):.3f} %, worst call {res['a2c']['worst_stream_lost']}/"
            f"{res['c2a']['worst_stream_lost']} packets), cpu {out['cpu_pct']:.1f} %, {out['us']:.2f} us/pkt, "
            f"consent {out['consent'][1]}/{out['consent'][0]} answered, SRTP samples opened "
            f"{res['c2a']['sampled']}; stray STUN/DTLS/other {res['stray_stun']}/"
            f"{res['stray_dtls']}/{res['stray_other']}, send errors {res['send_errors']}")
        return out
    return with_calls(server, CALLS, fn)


# ---- main ---------------------------------------------------------------------------

def main():
    if not os.access(RTP_LOAD, os.X_OK):
        sys.exit(f"e2ae_compare.py: {RTP_LOAD} is missing (meson compile -C {BUILD})")
    kinds = {"dcmfd": Dcmfd, "rtpengine": Rtpengine}
    results = {s: {} for s in SERVERS}  # server -> key -> [values]
    failed = False

    def add(server, key, v):
        results[server].setdefault(key, []).append(v)

    load0 = f"{os.getloadavg()[0]:.2f}"
    log(f"profile {PROFILE}, {ROUNDS} round(s), servers {SERVERS}, phases {PHASES}, "
        f"SERVER_CPUS={SERVER_CPUS or '-'} LOAD_CPUS={LOAD_CPUS or '-'}")
    for rnd in range(ROUNDS):
        order = SERVERS if rnd % 2 == 0 else list(reversed(SERVERS))
        for name in order:
            server = kinds[name]()
            log(f"round {rnd + 1}: {name}")
            try:
                server.start()
                for ph in PHASES:
                    if ph in ("a2c", "c2a"):
                        r = phase_search(server, ph, STREAMS)
                        add(name, f"{ph}_rate", r["rate"])
                        add(name, f"{ph}_us", r["us"])
                        if r.get("capped"):
                            log(f"  {name} {ph}: passed SEARCH_MAX, the rate is a lower bound")
                    elif ph == "flat":
                        for d in ("a2c", "c2a"):
                            r = phase_search(server, d, 1)
                            add(name, f"flat_{d}_pps", r["rate"])
                            add(name, f"flat_{d}_us", r["us"])
                    elif ph == "flatloop":
                        r = phase_flatloop(server)
                        for d in ("a2c", "c2a"):
                            add(name, f"loop_{d}_pps", r[d]["pps"])
                            add(name, f"loop_{d}_loss", 100 * r[d]["loss"])
                            add(name, f"loop_{d}_us", r[d]["us"])
                    elif ph == "mix":
                        r = phase_mix(server)
                        add(name, "mix_loss", 100 * r["loss"])
                        add(name, "mix_us", r["us"])
                        add(name, "mix_cpu", r["cpu_pct"])
                        if r["loss"] > LOSS_MAX or not r["offered"]:
                            log(f"  {name} mix: loss above {100 * LOSS_MAX} % or rate not offered")
                            failed = True
                    else:
                        raise SetupError(f"unknown phase {ph}")
            finally:
                server.stop()

    rows = [
        ("a2c_rate", f"a. SRTP→RTP, {STREAMS} streams: highest packets/s with ≤ {100 * LOSS_MAX:g} % loss", 0),
        ("a2c_us", "a. — server CPU µs per packet at that rate", 2),
        ("c2a_rate", f"b. RTP→SRTP, {STREAMS} streams: highest packets/s with ≤ {100 * LOSS_MAX:g} % loss", 0),
        ("c2a_us", "b. — server CPU µs per packet at that rate", 2),
        ("flat_a2c_pps", f"c. SRTP→RTP, 1 stream flat out: highest packets/s with ≤ {100 * LOSS_MAX:g} % loss", 0),
        ("flat_a2c_us", "c. — server CPU µs per packet at that rate", 2),
        ("flat_c2a_pps", f"c. RTP→SRTP, 1 stream flat out: highest packets/s with ≤ {100 * LOSS_MAX:g} % loss", 0),
        ("flat_c2a_us", "c. — server CPU µs per packet at that rate", 2),
        ("loop_a2c_pps", "c'. SRTP→RTP, 1 stream closed loop (`flatloop`): forwarded packets/s", 0),
        ("loop_a2c_us", "c'. — server CPU µs per packet", 2),
        ("loop_a2c_loss", "c'. — loss %", 3),
        ("loop_c2a_pps", "c'. RTP→SRTP, 1 stream closed loop (`flatloop`): forwarded packets/s", 0),
        ("loop_c2a_us", "c'. — server CPU µs per packet", 2),
        ("loop_c2a_loss", "c'. — loss %", 3),
        ("mix_us", f"d. call mix {CALLS} × 2 × {CALL_PPS:g} packets/s: server CPU µs per packet", 2),
        ("mix_cpu", "d. — server CPU % of one core", 1),
        ("mix_loss", "d. — loss %", 3),
    ]
    print(f"Profile {PROFILE}; {ROUNDS} round(s); medians (min–max); load average "
          f"{load0} at the start, {os.getloadavg()[0]:.2f} at the end.\n")
    print("| figure | " + " | ".join(SERVERS) + (" | dcmfd / rtpengine |" if len(SERVERS) == 2 else " |"))
    print("|---|" + "---|" * len(SERVERS) + ("---|" if len(SERVERS) == 2 else ""))
    for key, label, digits in rows:
        if not any(key in results[s] for s in SERVERS):
            continue
        cells = [fmt(results[s].get(key, []), digits) for s in SERVERS]
        line = f"| {label} | " + " | ".join(cells) + " |"
        if len(SERVERS) == 2 and "dcmfd" in results and "rtpengine" in results:
            line += f" {ratio(results['dcmfd'].get(key, []), results['rtpengine'].get(key, []))} |"
        print(line)
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as e:
        log(f"set-up failed: {e}")
        sys.exit(1)
