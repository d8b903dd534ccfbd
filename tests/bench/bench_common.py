"""What the Python benchmark drivers in tests/bench share (e2ae_compare.py,
msrp_compare.py, msrp_dc_compare.py): the re-run in a network namespace
of their own, settings from the environment with a smoke mode, progress
lines, pinning to CPUs, a server's processes and their shutdown by pid,
the load tools' line dialogue, dcmfd's API through curl, the tshark
check of an MSRP core leg, the Markdown cells (median with min-max,
ratios of medians), and msrp_load and tls_relay (the TLS benchmark's
load and anchor; with --plain, the DC benchmark's plain TCP anchor)."""
import json
import os
import shlex
import statistics
import subprocess
import sys
import time


def run_in_own_netns(mark, script):
    """Unless environment variable |mark| is set (this is the re-run):
    runs |script| again with the same arguments under `unshare -n` (root)
    with only loopback up, and exits with its status."""
    if os.environ.get(mark):
        return
    if os.getuid() != 0:
        sys.exit(f"{os.path.basename(script)}: needs root (unshare -n)")
    env = dict(os.environ, **{mark: "1"})
    r = subprocess.run(["unshare", "-n", "sh", "-c", 'set -e; ip link set lo up; exec "$0" "$@"',
                        sys.executable, os.path.abspath(script), *sys.argv[1:]], env=env)
    sys.exit(r.returncode)


class Settings:
    """A script's settings from the environment: an empty variable is
    unset; with SMOKE=1 (self.smoke) the |smoke_defaults| replace the
    script's defaults for their keys."""

    def __init__(self, smoke_defaults):
        self.smoke = os.environ.get("SMOKE", "0") not in ("", "0")
        self.smoke_defaults = smoke_defaults

    def get(self, key, default):
        v = os.environ.get(key, "")
        if v != "":
            return v
        return self.smoke_defaults.get(key, default) if self.smoke else default

    def list(self, key, default):
        return [x.strip() for x in self.get(key, default).split(",") if x.strip()]


class MsrpRun:
    """The settings the MSRP comparisons share (msrp_compare.py and
    msrp_dc_compare.py; their docstrings list them with their defaults):
    the build directory (argv[1]) and dcmfd in it, the rounds, the
    measured and warm-up windows, the sizes, directions and servers, the
    unanswered bytes at most, the CPU pinning and dcmfd's arguments.
    SMOKE=1 shortens the rounds and windows. |servers| is the script's
    default server list."""

    def __init__(self, servers):
        self.settings = Settings({"ROUNDS": "1", "WINDOW_S": "1", "WARMUP_S": "0.3"})
        self.smoke = self.settings.smoke
        env, env_list = self.settings.get, self.settings.list
        self.build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-release")
        self.dcmfd = os.path.join(self.build, "dcmf", "dcmfd")
        self.rounds = int(env("ROUNDS", "3"))
        self.window_s = float(env("WINDOW_S", "5"))
        self.warmup_s = float(env("WARMUP_S", "1"))
        self.sizes = [int(x) for x in env_list("SIZES", "1024,65536")]
        self.dirs = env_list("DIRS", "up,down")
        self.servers = env_list("SERVERS", servers)
        self.window_bytes = int(env("WINDOW_BYTES", "1048576"))
        self.server_cpus = env("SERVER_CPUS", "")
        self.load_cpus = env("LOAD_CPUS", "")
        self.dcmfd_args = shlex.split(env("DCMFD_ARGS", "--workers 1"))


def log(*a):
    print("#", *a, file=sys.stderr, flush=True)


class SetupError(Exception):
    pass


def pinned(cmd, cpus):
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def open_log(name):
    """The file named by environment variable |name| (appended to), or
    nowhere."""
    f = os.environ.get(name, "")
    return open(f, "ab") if f else subprocess.DEVNULL


def tree_pids(pid):
    """The pid and its live descendants (/proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(x) for x in f.read().split()]
            except OSError:
                pass
    return out


def stop_proc(proc, what):
    """SIGTERM, then SIGKILL after 10 s; by pid, never by name."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        log(f"{what} (pid {proc.pid}) ignored SIGTERM for 10 s: SIGKILL")
        proc.kill()
        proc.wait()


def fmt(vals, digits):
    """The median, with min-max in brackets when there are several."""
    vals = [v for v in vals if v == v]  # no NaN
    if not vals:
        return "–"
    med = statistics.median(vals)
    if len(vals) == 1:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({min(vals):,.{digits}f}–{max(vals):,.{digits}f})"


def ratio(a, b):
    """median(a) / median(b), two decimals."""
    a = [v for v in a if v == v]
    b = [v for v in b if v == v]
    if not a or not b or statistics.median(b) == 0:
        return "–"
    return f"{statistics.median(a) / statistics.median(b):.2f}"


class LineTool:
    """A load tool (rtp_load, msrp_load) speaking a line dialogue on its
    stdin and stdout, killed with its parent (setpriv --pdeathsig) and
    stopped by pid. A line starting with "error" raises SetupError."""

    def __init__(self, name, cmd):
        self.name = name
        self.proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", *cmd],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def line(self):
        line = self.proc.stdout.readline()
        if not line:
            raise SetupError(f"{self.name} ended (status {self.proc.wait()})")
        line = line.strip()
        if line.startswith("error"):
            raise SetupError(f"{self.name}: {line}")
        return line

    def send(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def ask(self, text, prefix):
        """Sends |text|; the reply must be |prefix| or start with |prefix|
        and a space. Returns what follows the prefix."""
        self.send(text)
        line = self.line()
        if line != prefix and not line.startswith(prefix + " "):
            raise SetupError(f"{self.name}: {line}")
        return line[len(prefix):].strip()

    def close_checked(self):
        """close(); an exit status other than 0 raises SetupError."""
        status = self.close()
        if status not in (0, None):
            raise SetupError(f"{self.name} exited with status {status}")

    def close(self):
        """"quit"; returns the exit status (None when it had to be killed)."""
        try:
            self.send("quit")
            return self.proc.wait(10)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
            return None


def tshark_core_leg(load, ports, tmp, runs):
    """The core leg's bytes of short runs (|runs|: (direction, size)
    pairs, each 30 ms flat out with four messages' worth of window) as
    tshark's MSRP dissector reads them (tests/integration/tshark_check.py):
    nothing malformed, a SEND and a 200 for every message the load sent.
    |load| is an msrp_load-style LineTool ("run ..." -> "result {json}")."""
    import tshark_check
    pcap = os.path.join(tmp, "core.pcap")
    cap = tshark_check.Capture(ports, pcap).start()
    try:
        sent = 0
        for d, size in runs:
            res = json.loads(load.ask(f"run {d} {size} 0 30 - {4 * (size + 256)}", "result"))
            sent += res["total_sent"]
    finally:
        cap.stop()
    res = tshark_check.analyze(pcap, msrp_ports=ports)
    res.assert_clean()
    sends, oks = len(res.msrp_requests("SEND")), len(res.msrp_responses())
    if sends != sent or oks != sent:
        raise SetupError(f"tshark: {sends} SENDs and {oks} responses on the core leg, "
                         f"the load sent {sent}")
    log(f"tshark: the core leg's {sends} SENDs and {oks} 200s decode cleanly")


def dcmfd_api(port, method, path, body=None, check=True):
    """One request to dcmfd's control API on 127.0.0.1:|port| (HTTP/2
    prior knowledge, curl): (status, parsed JSON object or text).
    check: a status other than 200, 201 or 204 raises SetupError."""
    cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--http2-prior-knowledge",
           "-X", method, f"http://127.0.0.1:{port}{path}"]
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        cmd += ["-H", "content-type: application/json", "--data-binary", "@-"]
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=10)
    text, _, code = r.stdout.decode().rpartition("\n")
    status = int(code) if code.isdigit() else 0
    if check and status not in (200, 201, 204):
        raise SetupError(f"dcmfd {method} {path}: {status} {text[:300]}")
    return status, (json.loads(text) if text.strip().startswith("{") else text)


def start_dcmfd(dcmfd, port, args, cpus):
    """dcmfd with its control API on 127.0.0.1:|port|, media on 127.0.0.1
    ports 40000-49999, log level warn (DCMFD_LOG: its output), |args|,
    pinned to |cpus|; returns the process once /healthz answers (10 s at
    most). setpriv and taskset exec: the pid is dcmfd's."""
    cmd = pinned([dcmfd, "--control", f"127.0.0.1:{port}", "--media-bind", "127.0.0.1",
                  "--ports", "40000-49999", "--log-level", "warn", *args], cpus)
    out = open_log("DCMFD_LOG")
    proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", *cmd], stdout=out, stderr=out)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SetupError(f"dcmfd exited ({proc.returncode}); DCMFD_LOG=file shows why")
        if dcmfd_api(port, "GET", "/healthz", check=False)[0] == 200:
            return proc
        time.sleep(0.05)
    stop_proc(proc, "dcmfd")
    raise SetupError("dcmfd did not answer /healthz within 10 s")


# ---- msrp_load and tls_relay (msrp_compare.py; msrp_dc_compare.py's plain TCP anchor) ----

class MsrpLoad(LineTool):
    """One msrp_load process (tests/bench/msrp_load.c) and its line
    dialogue, up to "ready": the core peers' ports (core_ports) and, over
    TLS (|cert| and |key| given), its certificate's fingerprint; without
    them it runs --plain (the UE side plain TCP, the same MSRP bytes)."""

    def __init__(self, exe, pairs, cpus, cert=None, key=None):
        tls = ["--cert", cert, "--key", key] if cert else ["--plain"]
        super().__init__("msrp_load", pinned([exe, "--pairs", str(pairs), *tls], cpus))
        self.core_ports = []
        self.fingerprint = None
        while True:
            f = self.line().split()
            if f[0] == "fingerprint":
                self.fingerprint = f[2]
            elif f[0] == "core":
                self.core_ports.append(int(f[2]))
            elif f[0] == "ready":
                break


def check_msrp_load_wire(load, sizes):
    """msrp_load's bytes as tests/integration/msrp_peer.py (written from
    RFC 4975 apart from it) reads them: a SEND chunk per direction and
    size, and its 200."""
    import msrp_peer
    for d in ("up", "down"):
        for size in sizes:
            send_hex, resp_hex = load.ask(f"sample {d} {size}", "sample").split()
            dec = msrp_peer.MsrpDecoder()
            frames = dec.feed(bytes.fromhex(send_hex))
            if len(frames) != 1 or dec.buf:
                raise SetupError(f"sample {d} {size}: not exactly one chunk")
            req = frames[0]
            if (req.method != "SEND" or req.flag != "$" or len(req.body) != size
                    or req.header("Byte-Range") != f"1-{size}/{size}"
                    or req.header("Failure-Report") is not None):
                raise SetupError(f"sample {d} {size}: not the SEND described")
            (resp,) = msrp_peer.MsrpDecoder().feed(bytes.fromhex(resp_hex))
            if (resp.code != 200 or resp.tid != req.tid
                    or resp.header("To-Path") != req.header("From-Path").split()[0]):
                raise SetupError(f"sample {d} {size}: the 200 is not per RFC 4975 7.2")


def start_tls_relay(exe, args, cpus, load, fingerprint="-"):
    """tests/bench/tls_relay.c with |args| (CERT KEY UE_FP, or --plain,
    then the load's core ports), pinned to |cpus|; each listening port it
    prints is handed to |load| ("peer I PORT FP", |fingerprint| the
    relay's own, ignored by a --plain load). Returns the process once it
    is ready."""
    proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL",
                             *pinned([exe, *args, *map(str, load.core_ports)], cpus)],
                            stdout=subprocess.PIPE, text=True)
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SetupError(f"tls_relay ended ({proc.wait()})")
        f = line.split()
        if f[0] == "listen":
            load.send(f"peer {f[1]} {f[2]} {fingerprint}")
        elif f[0] == "ready":
            return proc
