"""What the Python benchmark drivers in tests/bench share (e2ae_compare.py,
msrp_compare.py): progress lines, pinning to CPUs, a server's processes
and their shutdown by pid, the load tools' line dialogue, dcmfd's API
through curl, and the Markdown cells (median with min-max, ratios of
medians)."""
import json
import os
import statistics
import subprocess
import sys
import time


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

    def close(self):
        """"quit"; returns the exit status (None when it had to be killed)."""
        try:
            self.send("quit")
            return self.proc.wait(10)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
            return None


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
