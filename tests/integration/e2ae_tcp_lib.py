#!/usr/bin/env python3
"""What e2ae_tcp.py drives and plays with (issue 12): dcmfd and its
/agw/v1 API through curl (every response checked against
docs/openapi.yaml when python3-yaml and python3-jsonschema are there),
self-signed certificates, an HTTP/1.1 notify receiver, the core's TCP
listener, peer processes (openssl, gnutls-cli) stopped by pid, and
MSRP and BFCP bytes written here from RFC 4975 and RFC 8855. Every wait
is bounded."""
import hashlib
import http.server
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

try:
    import openapi_check  # python3-yaml, python3-jsonschema
    OPENAPI = openapi_check.Checker()
except ImportError:
    OPENAPI = None

AGW = "/agw/v1/contexts"

def poll(cond, what, seconds=5.0):
    end = time.time() + seconds
    while not cond():
        if time.time() > end:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.01)


# ---- the case runner -----------------------------------------------------------


class Cases:
    """The cases of one test script, run as they are declared (the
    script's decorator). A script runs `SCRIPT DCMFD [SUBSTRING...]`:
    with substrings, only the cases whose name holds one of them run.
    Each prints "ok - NAME" or "not ok - NAME: REASON" and then the tail
    of |dcmfd|'s log; finish() prints the count and exits."""

    def __init__(self, dcmfd, filters):
        self.dcmfd = dcmfd
        self.filters = list(filters)
        self.results = []

    def selected(self, name):
        return not self.filters or any(f in name for f in self.filters)

    def __call__(self, fn):
        name = fn.__name__
        if not self.selected(name):
            return fn
        try:
            fn()
            print(f"ok - {name}", flush=True)
            self.results.append(True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            print(f"not ok - {name}: {type(e).__name__}: {e}", flush=True)
            for line in self.dcmfd.log_tail():
                print(f"#   {line}")
            sys.stdout.flush()
            self.results.append(False)
        return fn

    def finish(self, rc, check_rc=True):
        """Prints the count and exits: 0 when a case ran and every one
        passed and (with |check_rc|) dcmfd's exit |rc| was 0 (a crash or
        a sanitizer's report at exit fails the run)."""
        passed = sum(self.results)
        print(f"{passed} passed, {len(self.results) - passed} failed "
              f"(dcmfd exit {rc})")
        if check_rc and rc != 0:
            print("\n".join("#   " + line for line in self.dcmfd.log_tail(40)))
        ok = self.results and all(self.results) and (rc == 0 or not check_rc)
        sys.exit(0 if ok else 1)


# ---- certificates -------------------------------------------------------------


def make_cert(tmp, name):
    key, pem = f"{tmp}/{name}.key", f"{tmp}/{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", pem, "-days", "2", "-subj", f"/CN={name}"],
                   check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key, pem, fingerprint(der)


def fingerprint(der):
    h = hashlib.sha256(der).hexdigest().upper()
    return "sha-256 " + ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def remote(port, addr="127.0.0.1"):
    """A termination's remote (docs/api.md)."""
    return {"ipv4Addr": addr, "port": port}


def local_port(doc, side):
    """The AGW's port of termination |side| (0 access, 1 core)."""
    return doc["terminations"][side]["local"]["port"]


# ---- dcmfd and its API -----------------------------------------------------------


class Dcmfd:
    def __init__(self, path, extra=(), port_offset=0):
        self.path = path
        self.extra = list(extra)  # more dcmfd options (a second instance)
        self.port_offset = port_offset

    def start(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = 27000 + (os.getpid() % 40) * 50 + self.port_offset
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [self.path, "--control", f"127.0.0.1:{self.port}", "--ports",
             f"{self.base}-{self.base + 39}", "--log-level", "debug",
             *self.extra],
            stdout=self.log, stderr=self.log)
        self.api = f"http://127.0.0.1:{self.port}"
        poll(self._healthy, "dcmfd started", 20)

    def _healthy(self):
        try:
            return self.call("GET", "/healthz")[0] == 200
        except AssertionError:
            return False

    def stop(self):
        if os.environ.get("E2AE_TCP_LOG"):
            self.log.seek(0)
            with open(os.environ["E2AE_TCP_LOG"], "wb") as f:
                f.write(self.log.read())
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log_tail(self, n=int(os.environ.get("LOGN", "12"))):
        self.log.seek(0)
        return self.log.read().decode(errors="replace").splitlines()[-n:]

    def call(self, method, path, body=None, ctype="application/json"):
        cmd = ["curl", "-s", "-w", "\n%{content_type}\n%{http_code}",
               "--http2-prior-knowledge", "-X", method, self.api + path]
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            cmd += ["-H", f"content-type: {ctype}", "--data-binary", "@-"]
        r = subprocess.run(cmd, input=data, capture_output=True, timeout=10)
        if r.returncode != 0:
            raise AssertionError(f"curl {method} {path}: exit {r.returncode}")
        text, _, code = r.stdout.decode().rpartition("\n")
        text, _, ctype_got = text.rpartition("\n")
        if OPENAPI is not None and path.startswith(AGW):
            err = OPENAPI.check(method, path, int(code), ctype_got, text)
            assert err is None, f"not as docs/openapi.yaml says: {err}"
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = text
        return int(code), parsed

    def create(self, access, core, expect=201):
        body = {"terminations": [dict(terminationId="access", **access),
                                 dict(terminationId="core", **core)]}
        status, doc = self.call("POST", AGW, body)
        assert status == expect, f"POST {status}: {doc}"
        return doc

    def get(self, cid):
        status, doc = self.call("GET", f"{AGW}/{cid}")
        assert status == 200, f"GET {status}: {doc}"
        return doc

    def delete(self, cid):
        status, _ = self.call("DELETE", f"{AGW}/{cid}")
        assert status == 204, f"DELETE {status}"

    def metric(self, series):
        """The value of one /metrics series, e.g.
        'dcmf_x_total{direction="to_core"}' (0 when absent)."""
        status, text = self.call("GET", "/metrics")
        assert status == 200, f"GET /metrics {status}"
        for line in str(text).splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


# ---- the IMS-ALG: dcmf-alg ----------------------------------------------------------


class DcmfAlg:
    """The dcmf-alg command built beside |dcmfd| (docs/e2ae.md
    "dcmf-alg"): the tests' IMS-ALG, which turns SDP into the /agw/v1
    requests and rewrites SDP from the AGW's replies; |tmp| holds the
    --reply and --offer files of one call while it runs."""

    def __init__(self, dcmfd, tmp):
        self.path = os.path.join(os.path.dirname(os.path.abspath(dcmfd)), "dcmf-alg")
        self.tmp = tmp

    def run(self, args, stdin, reply=None, offer=None, expect=0):
        """dcmf-alg |args| < |stdin|; its stdout, or with |expect| (an
        exit status other than 0) its stderr."""
        cmd = [self.path] + list(args)
        files = []
        for opt, data in (("--reply", reply), ("--offer", offer)):
            if data is not None:
                fd, name = tempfile.mkstemp(dir=self.tmp)
                with os.fdopen(fd, "w") as f:
                    f.write(data if isinstance(data, str) else json.dumps(data))
                cmd += [opt, name]
                files.append(name)
        try:
            p = subprocess.run(cmd, input=stdin.encode(), capture_output=True,
                               timeout=10)
        finally:
            for name in files:
                os.unlink(name)
        assert p.returncode == expect, \
            f"dcmf-alg {args}: exit {p.returncode}: {p.stderr.decode()}"
        return (p.stdout if expect == 0 else p.stderr).decode()

    def requests(self, sdp, side, kind, reply=None, notify=None):
        """`dcmf-alg request`: the requests for |sdp| from |side|
        (access or core), an offer or an answer (|kind|)."""
        args = ["request", "--side", side, "--kind", kind]
        if notify:
            args += ["--notify", notify]
        return json.loads(self.run(args, sdp, reply=reply))["requests"]

    def rewrite(self, sdp, side, kind, reply, offer=None):
        """`dcmf-alg rewrite`: |sdp| from |side| written for the other
        side from the contexts |reply|."""
        return self.run(["rewrite", "--side", side, "--kind", kind], sdp,
                        reply=reply, offer=offer)


def sdp_lines(sdp):
    return sdp.rstrip("\r\n").split("\r\n")


def assert_sdp_has(sdp, *want):
    """Each of |want| is a line of |sdp|."""
    lines = sdp_lines(sdp)
    for line in want:
        assert line in lines, f"{line!r} not in\n{sdp}"


def assert_sdp_lacks(sdp, *prefixes):
    """No line of |sdp| starts with one of |prefixes|."""
    for line in sdp_lines(sdp):
        assert not line.startswith(prefixes), f"{line!r} in\n{sdp}"


# ---- peers ------------------------------------------------------------------------


class Notify:
    """An HTTP/1.1 receiver for notifyUri POSTs."""

    def __init__(self):
        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                got.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.uri = f"http://127.0.0.1:{self.srv.server_address[1]}/events"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def events(self, cid):
        return [e for e in self.got if e.get("contextId") == cid]


class CoreListener:
    """The IMS core's side when the AGW connects to it."""

    def __init__(self, backlog=True):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.port = self.ls.getsockname()[1]
        if backlog:
            self.ls.listen(4)
        self.conn = None

    def listen(self):
        self.ls.listen(4)

    def accept(self, seconds=5):
        self.ls.settimeout(seconds)
        self.conn, _ = self.ls.accept()
        self.conn.settimeout(10)
        return self.conn

    def close(self):
        for s in (self.conn, self.ls):
            if s is not None:
                s.close()


def wait_stalled(count, seconds=20, quiet=2.5):
    """Polls count() (a relay's bytes so far) until it is above 0 and
    has not grown for |quiet| seconds, or |seconds| pass; returns the
    last value."""
    last, stable_since = -1, time.time()
    end = time.time() + seconds
    while time.time() < end:
        now = count()
        if now != last:
            last, stable_since = now, time.time()
        elif time.time() - stable_since > quiet and now > 0:
            break
        time.sleep(0.2)
    return last


def recv_exactly(sock, n, seconds=10):
    buf = b""
    end = time.time() + seconds
    while len(buf) < n:
        sock.settimeout(max(0.01, end - time.time()))
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def recv_until_closed(sock, seconds=10):
    buf = b""
    end = time.time() + seconds
    while time.time() < end:
        sock.settimeout(max(0.01, end - time.time()))
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return buf, True
        if not chunk:
            return buf, True
        buf += chunk
    return buf, False


class Proc:
    """A peer process whose stdout is collected; stopped by pid."""

    def __init__(self, args):
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.out = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        while True:
            b = self.p.stdout.read1(65536)
            if not b:
                return
            with self.lock:
                self.out += b

    def text(self):
        with self.lock:
            return self.out

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def s_client(port, cert, key, extra=()):
    return Proc(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                 "-cert", cert, "-key", key, "-nocommands", *extra])


def msrp_send(tid, body):
    """An MSRP SEND (RFC 4975 section 7.1), written here from the RFC."""
    return (f"MSRP {tid} SEND\r\n"
            f"To-Path: msrp://127.0.0.1:2855/core;tcp\r\n"
            f"From-Path: msrps://127.0.0.1:2856/ue;tcp\r\n"
            f"Message-ID: m{tid}\r\n"
            f"Byte-Range: 1-{len(body)}/{len(body)}\r\n"
            f"Content-Type: text/plain\r\n\r\n"
            f"{body}\r\n-------{tid}$\r\n").encode()


def bfcp_hello(conf, tid, user):
    """A BFCP Hello (RFC 8855 section 5.3.13): the 12-byte common header,
    version 2, primitive 11, no attributes."""
    return struct.pack("!BBHIHH", 2 << 5, 11, 0, conf, tid, user)


def python_ue(port, pem, key):
    """A UE as a Python TLS client with certificate |pem|/|key|, connected
    to the AGW's access port (the AGW's certificate is not checked here)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(pem, key)
    raw = socket.create_connection(("127.0.0.1", port), 5)
    return ctx.wrap_socket(raw)

