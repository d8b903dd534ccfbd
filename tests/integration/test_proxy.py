#!/usr/bin/env python3
"""HTTP-proxy mode end to end: dcmf-ue (and a werift phone) fetch over the
bootstrap data channel while dcmfd forwards each request to a real
upstream: nginx over HTTP/1.1, nginx over h2 with TLS (certificate from a
test CA made here with the openssl CLI) and nghttpd over h2c.

    test_proxy.py DCMFD DCMF_UE

Every server runs on 127.0.0.1 on free ports with files in a temporary
directory and is stopped by its pid at the end. Prints "ok - name" or
"not ok - name: why" per case and a final "N passed, M failed".
"""
import hashlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

DCMFD, UE = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
HERE = os.path.dirname(os.path.abspath(__file__))
WWW = os.path.join(HERE, "..", "..", "bootstrap", "www")
TMP = tempfile.mkdtemp(prefix="dcmf-proxy-")
os.chmod(TMP, 0o755)  # nginx workers may run as another user
STARTED = []          # every process we started, stopped in the end
results = []
T0 = time.monotonic()


def log(msg):
    print(f"# {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def start(args, **kw):
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, **kw)
    STARTED.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    """Stops one process we started, by its pid; returns its exit code."""
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)
    return p.returncode


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    with open(path, "rb") as f:
        return f.read()


def run(name, fn):
    t = time.monotonic()
    try:
        fn()
        results.append(True)
        print(f"ok - {name} ({time.monotonic() - t:.2f} s)", flush=True)
    except Exception as e:  # AssertionError, timeouts, a server that died
        results.append(False)
        why = str(e) if isinstance(e, AssertionError) else f"{type(e).__name__}: {e}"
        print(f"not ok - {name}: {why}", flush=True)


# ---- a test CA and a server certificate for 127.0.0.1 ----------------------

def make_pki(d):
    os.makedirs(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def ossl(*args):
        r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, timeout=30)
        assert r.returncode == 0, f"openssl {args[0]}: {r.stderr.decode()}"
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=dcmf proxy test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    write(os.path.join(d, "ext.cnf"),
          "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature,keyEncipherment\n"
          "extendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return dict(ca=os.path.join(d, "ca.pem"), server=os.path.join(d, "server.pem"),
                key=os.path.join(d, "server.key"))


# ---- document roots --------------------------------------------------------

def make_root(name):
    """A docroot whose app lives under /site/; the content names the root."""
    root = os.path.join(TMP, "root-" + name)
    tag = f"{name}-{os.urandom(8).hex()}"
    write(f"{root}/site/index.html",
          f"<!doctype html><title>{tag}</title><script src=apps/x/app.js></script>\n")
    write(f"{root}/site/apps/x/app.js",
          f"// {tag}\n" + "console.log('app');\n" * 200)
    write(f"{root}/site/q.txt", f"query target {tag}\n")
    return root


# ---- nginx -----------------------------------------------------------------

LOG_FORMAT = ("'$server_port|$server_protocol|$request_method|$request_uri|$status|"
              "$http_host|$http_via|$http_x_dcmf_context_id|$http_x_dcmf_termination_id|"
              "$http_x_dcmf_media_id|$http_x_dcmf_stream_id|$http_if_none_match|"
              "$http_if_modified_since'")
LOG_FIELDS = ["port", "proto", "method", "uri", "status", "host", "via", "ctx",
              "term", "media", "stream", "inm", "ims"]


class Nginx:
    def __init__(self, name, servers, run=True):
        self.dir = os.path.join(TMP, "nginx-" + name)
        os.makedirs(self.dir)
        d = self.dir
        self.access = os.path.join(d, "access.log")
        user = "user root root;" if os.geteuid() == 0 else ""
        temps = "\n".join(f"  {k}_temp_path {d}/{k};" for k in
                          ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        write(f"{d}/nginx.conf", f"""
daemon off;
master_process on;
worker_processes 1;
{user}
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  types {{ text/html html; application/javascript js; text/plain txt;
          application/octet-stream bin; }}
  default_type application/octet-stream;
{temps}
  log_format dcmf {LOG_FORMAT};
  access_log {self.access} dcmf;
  sendfile on;
  keepalive_timeout 30s;
{servers}
}}
""")
        self.conf = f"{d}/nginx.conf"
        if run:
            self.proc = start(["nginx", "-p", d, "-e", f"{d}/error.log", "-c", self.conf],
                              stdout=subprocess.DEVNULL, stderr=open(f"{d}/stderr", "wb"))

    def lines(self):
        """The access log as a list of dicts (one per request)."""
        try:
            text = read(self.access).decode()
        except FileNotFoundError:
            return []
        # nginx writes '"' and other unsafe bytes as \xHH in its log
        text = re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)
        return [dict(zip(LOG_FIELDS, ln.split("|"))) for ln in text.splitlines() if ln]

    def wait_lines(self, pred, count=1, timeout=2.0):
        """Waits (bounded) until `count` log lines match; returns them."""
        end = time.monotonic() + timeout
        while True:
            got = [ln for ln in self.lines() if pred(ln)]
            if len(got) >= count or time.monotonic() > end:
                return got
            time.sleep(0.02)


# ---- dcmfd and dcmf-ue -----------------------------------------------------

_port_block = [0]


class Dcmfd:
    def __init__(self, *flags):
        self.port = free_port()
        _port_block[0] += 1
        # below the ephemeral range (32768-): no client socket takes a port
        base = 20000 + ((os.getpid() * 7 + _port_block[0] * 40) % 9000)
        self.logpath = os.path.join(TMP, f"dcmfd-{self.port}.log")
        self.proc = start([DCMFD, "--control", f"127.0.0.1:{self.port}", "--ports",
                           f"{base}-{base + 39}", "--log-level", "debug", *flags],
                          stdout=open(self.logpath, "wb"), stderr=subprocess.STDOUT)
        self.api = f"http://127.0.0.1:{self.port}"
        wait_port(self.port, self.proc)

    def alive(self):
        assert self.proc.poll() is None, (
            f"dcmfd died with {self.proc.returncode}; log tail:\n# " + self.tail())

    def tail(self, n=12):
        try:
            return "\n# ".join(read(self.logpath).decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def rss_kib(self):
        """Resident memory of dcmfd and its media worker processes."""
        total, pids, i = 0, [self.proc.pid], 0
        while i < len(pids):
            for kids in glob.glob(f"/proc/{pids[i]}/task/*/children"):
                with open(kids) as f:
                    pids += [int(c) for c in f.read().split()]
            with open(f"/proc/{pids[i]}/status") as f:
                total += next(int(ln.split()[1]) for ln in f
                              if ln.startswith("VmRSS:"))
            i += 1
        return total

    def ue(self, path, url=None, include=True, timeout=30):
        args = [UE, "fetch", "--api", self.api]
        if url is not None:
            args += ["--replace-url", url]
        if include:
            args.append("--include")
        return subprocess.run([*args, path], capture_output=True, timeout=timeout)


def parse(r):
    """(status, {lower-name: [values]}, raw head, body) of a --include fetch."""
    out = r.stdout
    if not out.startswith(b"HTTP/"):
        raise AssertionError(f"no response (exit {r.returncode}): "
                             f"{r.stderr.decode(errors='replace').strip()[:300]}")
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep, f"no end of head in {out[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})( |$)", lines[0])
    assert m, f"bad status line {lines[0]!r}"
    fields = {}
    for ln in lines[1:]:
        name, _, value = ln.partition(":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return int(m.group(1)), fields, head.decode("latin-1"), body


def fetch_ok(d, path, url, want, what=""):
    r = d.ue(path, url)
    status, fields, head, body = parse(r)
    assert status == 200, f"{what}{path}: status {status}, head {head!r}, body {body[:200]!r}"
    assert r.returncode == 0, f"{what}{path}: exit {r.returncode}"
    if body != want:
        raise AssertionError(f"{what}{path}: body differs ({len(body)} bytes, want "
                             f"{len(want)}): {body[:80]!r}")
    return fields


# ---- the cases -------------------------------------------------------------

def case_basic(d, ng, kind, url, root, port, proto):
    """/ and a nested path byte-exact; a query reaches the upstream."""
    def fn():
        fields = fetch_ok(d, "/", url, read(f"{root}/site/index.html"))
        assert len(fields.get("server", [])) == 1 and "via" in fields, (
            f"phone got Server {fields.get('server')} and Via {fields.get('via')}: "
            f"want one Server and a Via")
        fetch_ok(d, "/apps/x/app.js", url, read(f"{root}/site/apps/x/app.js"))
        fetch_ok(d, "/q.txt?v=2&lang=en%20GB", url, read(f"{root}/site/q.txt"))
        d.alive()
        if ng is None:
            return  # nghttpd keeps no log; it only speaks h2, so h2c was used
        want = {"/site/index.html?sess=abc", "/site/apps/x/app.js?sess=abc",
                "/site/q.txt?sess=abc&v=2&lang=en%20GB"}
        got = ng.wait_lines(lambda ln: ln["port"] == str(port) and ln["uri"] in want, 3)
        uris = sorted(ln["uri"] for ln in got)
        assert uris == sorted(want), (f"upstream saw {uris}, want each of {sorted(want)} "
                                      f"once; log: {[ln['uri'] for ln in ng.lines()]}")
        protos = {ln["proto"] for ln in got}
        assert protos == {proto}, f"upstream protocol {protos}, want {proto}"
        if proto == "HTTP/1.1":
            # an http:// upstream is probed for h2c; nginx answers the
            # preface with a 400 that it logs without a protocol. dcmfd
            # should remember the answer, not probe on every request:
            # once per media worker, each of which has its own pool.
            probes = [ln for ln in ng.lines() if ln["port"] == str(port) and ln["proto"] == "-"]
            assert len(probes) <= MAIN_WORKERS, (
                f"{len(probes)} h2c probes for 3 requests on {MAIN_WORKERS} workers")
    run(f"{kind}: / and /apps/x/app.js byte-exact, query reaches upstream", fn)


def rss_sampler(d, stop_evt, out):
    while not stop_evt.is_set():
        try:
            out.append(d.rss_kib())
        except (OSError, AssertionError):
            return
        stop_evt.wait(0.02)


def case_big(ng_url, big_hash, flags, label):
    """The body is served with Cache-Control: no-store, so that even with
    the cache on nothing may keep it in memory."""
    def fn():
        d = Dcmfd(*flags)
        try:
            fetch_ok(d, "/q.txt", ng_url, read(f"{ROOT_A}/site/q.txt"))  # warm up
            base = d.rss_kib()
            samples, evt = [], threading.Event()
            th = threading.Thread(target=rss_sampler, args=(d, evt, samples))
            th.start()
            t = time.monotonic()
            try:
                r = d.ue("/big/blob.bin", ng_url, include=True, timeout=60)
            finally:
                evt.set()
                th.join(5)
            dt = time.monotonic() - t
            status, _, head, body = parse(r)
            assert status == 200, f"status {status} {head!r}"
            assert len(body) == 10 << 20, f"{len(body)} bytes, want {10 << 20}"
            assert hashlib.sha256(body).hexdigest() == big_hash, "sha256 differs"
            peak = max(samples) if samples else base
            log(f"{label}: 10 MiB in {dt:.2f} s ({10 / dt:.1f} MiB/s); dcmfd RSS {base} KiB "
                f"before, {peak} KiB peak ({len(samples)} samples)")
            assert len(samples) >= 3, f"only {len(samples)} RSS samples"
            if os.environ.get("DCMF_SANITIZE", "none") != "none":
                log(f"{label}: RSS bound not checked under the sanitizers")
                d.alive()
                return
            assert peak - base < 5 * 1024, (
                f"dcmfd RSS grew by {(peak - base) / 1024:.1f} MiB during the transfer "
                f"({base} -> {peak} KiB): the body is buffered, not streamed")
            d.alive()
        finally:
            assert stop(d.proc) == 0, f"dcmfd exit {d.proc.returncode}"
    run(f"10 MiB streams byte-exact (sha256), dcmfd RSS grows < 5 MiB ({label})", fn)


def case_down(d):
    def fn():
        port = free_port()
        url = f"http://127.0.0.1:{port}/site/index.html"
        t = time.monotonic()
        r = d.ue("/", url)
        dt = time.monotonic() - t
        status, fields, head, body = parse(r)
        assert status == 502, f"upstream down: status {status}, want 502; {head!r}"
        assert r.returncode == 1, f"exit {r.returncode} on 502, want 1"
        assert b"bad gateway" in body.lower(), f"502 body {body!r}"
        assert dt < 5, f"502 took {dt:.1f} s"
        d.alive()
        # now an upstream comes up on that very port
        ng = Nginx("recover", f"server {{ listen 127.0.0.1:{port}; root {ROOT_A}; }}")
        wait_port(port, ng.proc)
        fetch_ok(d, "/", url, read(f"{ROOT_A}/site/index.html"), "after recovery: ")
        fetch_ok(d, "/apps/x/app.js", url, read(f"{ROOT_A}/site/apps/x/app.js"),
                 "after recovery: ")
        stop(ng.proc)
        log(f"502 after {dt:.2f} s")
    run("upstream down -> 502; a server started on that port is used next", fn)


def stalled_server():
    """Accepts connections and never answers; returns (port, closer)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    held, done = [], threading.Event()

    def loop():
        while not done.is_set():
            try:
                c, _ = srv.accept()
                held.append(c)  # read nothing, answer nothing
            except (socket.timeout, OSError):
                pass

    th = threading.Thread(target=loop, daemon=True)
    th.start()

    def close():
        done.set()
        th.join(2)
        for c in held:
            c.close()
        srv.close()
    return srv.getsockname()[1], close, held


def case_stalled():
    def fn():
        port, close, held = stalled_server()
        d = Dcmfd("--upstream-response-timeout", "1000")
        try:
            url = f"http://127.0.0.1:{port}/site/index.html"
            t = time.monotonic()
            r = d.ue("/", url)
            dt = time.monotonic() - t
            status, _, head, body = parse(r)
            log(f"stalled upstream: status {status} after {dt:.2f} s, "
                f"{len(held)} connection(s) to it")
            assert held, "dcmfd never connected to the stalled upstream"
            assert status == 504, f"status {status} after {dt:.2f} s, want 504; {head!r} {body!r}"
            assert 0.9 <= dt <= 3.0, f"504 after {dt:.2f} s, want 1-3 s"
            assert b"timeout" in body.lower(), f"504 body {body!r}"
            d.alive()
        finally:
            close()
            assert stop(d.proc) == 0, f"dcmfd exit {d.proc.returncode}"
    run("upstream stalled, --upstream-response-timeout 1000 -> 504 in 1-3 s", fn)


def case_three(d, ups):
    def fn():
        procs = []
        for url, root in ups:
            args = [UE, "fetch", "--api", d.api, "--replace-url", url, "/"]
            procs.append((subprocess.Popen(args, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE), root, url))
        bad = []
        for p, root, url in procs:
            try:
                out, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            want = read(f"{root}/site/index.html")
            if p.returncode != 0 or out != want:
                bad.append(f"{url}: exit {p.returncode}, got {out[:90]!r} want {want[:90]!r} "
                           f"{err.decode(errors='replace').strip()[:120]}")
        assert not bad, "; ".join(bad)
        d.alive()
    run("three phones at once on three contexts/upstreams get their own content", fn)


# The cache cases assert RFC 9111 behaviour of dcmfd's shared cache
# (--cache-size, on by default): a fresh response is not fetched again,
# and a no-cache one is revalidated with the ETag it came with.

def case_cache_fresh(d, ng, url, port):
    def fn():
        # max-age=60: the second fetch is served from dcmfd's cache
        c = f"{ROOT_A}/site/cached/c.txt"
        fetch_ok(d, "/cached/c.txt", url, read(c), "1st: ")
        fields = fetch_ok(d, "/cached/c.txt", url, read(c), "2nd: ")
        time.sleep(0.2)
        got = ng.wait_lines(lambda ln: ln["port"] == str(port)
                            and ln["uri"].startswith("/site/cached/c.txt"), 1)
        assert len(got) == 1, (f"max-age=60 fetched twice: upstream saw {len(got)} "
                               f"requests, want 1 (the response was not cached)")
        assert len(fields.get("server", [])) == 1, \
            f"cached answer has Server lines {fields.get('server')}"
        d.alive()
    run("cache: max-age=60 fetched twice, the upstream sees one request", fn)


def case_cache_revalidate(d, ng, url, port):
    def fn():
        n = f"{ROOT_A}/site/nocache/n.txt"
        old = read(n)
        f1 = fetch_ok(d, "/nocache/n.txt", url, old, "1st no-cache: ")
        etag1 = (f1.get("etag") or ["(no ETag toward the phone)"])[0]
        fetch_ok(d, "/nocache/n.txt", url, old, "2nd no-cache (unchanged): ")
        new = b"changed content, longer than before " + os.urandom(6).hex().encode() + b"\n"
        write(n, new)
        st = os.stat(n)
        os.utime(n, (st.st_atime + 5, st.st_mtime + 5))  # a different ETag for sure
        fetch_ok(d, "/nocache/n.txt", url, new, "after change: ")
        got = ng.wait_lines(lambda ln: ln["port"] == str(port)
                            and ln["uri"].startswith("/site/nocache/n.txt"), 3)
        seen = [(ln["status"], "If-None-Match: " + ln["inm"]) for ln in got]
        assert len(got) == 3, f"no-cache: upstream saw {seen}, want 3 requests"
        assert got[0]["inm"] == "-", f"first request was conditional: {seen}"
        assert got[1]["inm"] == etag1 and got[1]["status"] == "304", (
            f"unchanged no-cache file: want a conditional request "
            f"(If-None-Match {etag1}) answered 304, upstream saw {seen}")
        assert got[2]["inm"] == etag1 and got[2]["status"] == "200", (
            f"changed file: want If-None-Match {etag1} answered 200, upstream saw {seen}")
        d.alive()
    run("cache: no-cache + ETag revalidated (304 unchanged, 200 and new content after change)", fn)


def case_headers(d, ng, kind, url, root, port):
    def fn():
        fields = fetch_ok(d, "/q.txt?hdr=1", url, read(f"{root}/site/q.txt"))
        got = ng.wait_lines(lambda ln: ln["port"] == str(port)
                            and ln["uri"].endswith("&hdr=1"), 1)
        assert len(got) == 1, f"upstream saw {len(got)} requests for /q.txt?hdr=1"
        ln = got[0]
        assert ln["host"] == f"127.0.0.1:{port}", f"Host {ln['host']!r}, want 127.0.0.1:{port}"
        assert re.fullmatch(r"[A-Za-z0-9._~-]{4,}", ln["ctx"]), \
            f"X-DCMF-Context-Id {ln['ctx']!r}"
        assert ln["ctx"] in read(d.logpath).decode(errors="replace"), \
            f"X-DCMF-Context-Id {ln['ctx']} is no context dcmfd logged"
        assert ln["term"] == "ue", f"X-DCMF-Termination-Id {ln['term']!r}, want 'ue'"
        assert ln["media"] == "1", f"X-DCMF-Media-Id {ln['media']!r}, want '1'"
        assert ln["stream"] == "0", f"X-DCMF-Stream-Id {ln['stream']!r}, want '0'"
        assert re.fullmatch(r"1\.1 \S*dcmf\S*", ln["via"]), \
            f"upstream got Via {ln['via']!r}, want '1.1 dcmf'"
        assert "via" in fields, f"no Via toward the phone: {sorted(fields)}"
        assert any("dcmf" in v for v in fields["via"]), f"Via {fields['via']}"
        assert len(fields.get("server", [])) == 1, \
            f"phone got Server lines {fields.get('server')}, want exactly one"
        d.alive()
    run(f"{kind}: Host, X-DCMF-*, Via reach the upstream; phone sees Via and one Server", fn)


def case_fallback():
    def fn():
        d1 = Dcmfd()
        try:
            r = d1.ue("/", None, include=False)
            assert r.returncode == 0, f"--proxy-fallback 1: exit {r.returncode}"
            assert r.stdout == read(os.path.join(WWW, "index.html")), \
                "--proxy-fallback 1: body is not bootstrap/www/index.html"
            d1.alive()
        finally:
            assert stop(d1.proc) == 0, f"dcmfd exit {d1.proc.returncode}"
        d0 = Dcmfd("--proxy-fallback", "0")
        try:
            r = d0.ue("/", None)
            status, _, head, _ = parse(r)
            assert status == 404, f"--proxy-fallback 0: status {status}, want 404"
            assert r.returncode == 1, f"--proxy-fallback 0: exit {r.returncode}"
            # and an h2 TLS upstream signed by a CA dcmfd was not given: 502
            r = d0.ue("/", URL_B)
            status, _, head, body = parse(r)
            assert status == 502, (f"TLS upstream with an untrusted certificate: "
                                   f"status {status}, want 502 ({body[:80]!r})")
            d0.alive()
        finally:
            assert stop(d0.proc) == 0, f"dcmfd exit {d0.proc.returncode}"
    run("no replaceHttpUrl: fallback 1 serves bootstrap/www, 0 gives 404; "
        "untrusted upstream certificate gives 502", fn)


def case_mdc2(d, ng, root, port):
    """An application stream (>= 1000) in HTTP mode without a replacement
    URL goes to the DC application server at remoteMdc2Endpoint."""
    def fn():
        r = subprocess.run([UE, "fetch", "--api", d.api, "--stream", "1000",
                            "--mdc2", f"127.0.0.1:{port}", "/site/apps/x/app.js"],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, f"exit {r.returncode}: {r.stderr!r}"
        assert r.stdout == read(f"{root}/site/apps/x/app.js"), r.stdout[:200]
        got = ng.wait_lines(lambda ln: ln["port"] == str(port) and
                            ln["uri"] == "/site/apps/x/app.js" and
                            ln["stream"] == "1000", 1)
        assert got, "the DC application server did not see the request"
    run("application stream 1000 in HTTP mode goes to remoteMdc2Endpoint", fn)


def echo_server():
    """An HTTP/1.1 upstream (Python's http.server) that answers POST and
    PUT with what it received: method, path and body."""
    import http.server
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            out = (f"{self.command} {self.path} {n}\n").encode() + body
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_POST = do_PUT = answer

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


def case_post(d):
    def fn():
        srv = echo_server()
        try:
            port = srv.server_address[1]
            url = f"http://127.0.0.1:{port}/app/"
            r = subprocess.run([UE, "fetch", "--api", d.api, "--replace-url", url,
                                "--data", "hello from the phone", "/submit?x=1"],
                               capture_output=True, timeout=30)
            assert r.returncode == 0, f"exit {r.returncode}: {r.stderr!r}"
            assert r.stdout == b"POST /app/submit?x=1 20\nhello from the phone", r.stdout
        finally:
            srv.shutdown()
            srv.server_close()
    run("POST with a body passes through to the upstream", fn)


def keepalive_race_server():
    """An HTTP/1.1 upstream written by hand that makes the keep-alive race
    exact: on every connection it answers the first request (keep-alive,
    Content-Length) and, when a second request arrives on that same
    connection, reads it and closes the socket unanswered, as a server
    whose idle timer fires just then does. dcmfd's h2c probe gets a 400.
    Returns (port, close, seen): seen lists (connection no, method, path,
    "answered" or "dropped")."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    seen, conns, done = [], [], threading.Event()

    def read_request(c, buf):
        while b"\r\n\r\n" not in buf:
            got = c.recv(65536)
            if not got:
                return None, buf
            buf += got
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        n = 0
        for ln in lines[1:]:
            name, _, value = ln.partition(":")
            if name.strip().lower() == "content-length":
                n = int(value)
        while len(rest) < n:
            got = c.recv(65536)
            if not got:
                return None, rest
            rest += got
        return lines[0].split(" "), rest[n:]

    def serve(c, no):
        try:
            c.settimeout(10)
            buf, count = b"", 0
            while True:
                req, buf = read_request(c, buf)
                if req is None:
                    return
                method, path = req[0], req[1]
                if method == "PRI":  # h2c prior knowledge: say HTTP/1.1 only
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
                    return
                count += 1
                if count == 2:
                    seen.append((no, method, path, "dropped"))
                    return  # closed without a byte of an answer
                body = f"{method} {path} on connection {no}\n".encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                          b"Cache-Control: no-store\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
                seen.append((no, method, path, "answered"))
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        while not done.is_set():
            try:
                c, _ = srv.accept()
            except (socket.timeout, OSError):
                continue
            th = threading.Thread(target=serve, args=(c, len(conns)), daemon=True)
            conns.append(th)
            th.start()

    acc = threading.Thread(target=loop, daemon=True)
    acc.start()

    def close():
        done.set()
        acc.join(2)
        srv.close()
        for th in conns:
            th.join(2)
    return srv.getsockname()[1], close, seen


# The main instance's media worker processes (the upstream pools).
MAIN_WORKERS = 2


def check_clean_stop(d):
    code = stop(d.proc)
    assert code == 0, f"dcmfd exited with {code}; log tail:\n# " + d.tail()


def case_keepalive_race(d):
    """A pooled keep-alive connection the upstream closes as the next
    request arrives: GET is sent again on a new connection (RFC 9112
    9.3.1), POST is not (502)."""
    def fn():
        port, close, seen = keepalive_race_server()
        try:
            url = f"http://127.0.0.1:{port}/r/"
            r = d.ue("/a", url)
            status, _, head, body = parse(r)
            assert status == 200, f"1st GET: status {status}, {head!r} {body!r}"
            first = body.decode().split()[-1]
            r = d.ue("/b", url)
            status, _, head, body = parse(r)
            assert status == 200, (f"GET on the connection the upstream dropped: status "
                                   f"{status}, want 200; upstream saw {seen}")
            assert body.startswith(b"GET /r/b on connection "), body
            again = body.decode().split()[-1]
            assert again != first, f"2nd GET answered on connection {again} again"
            gets = [s for s in seen if s[2] == "/r/b"]
            assert [s[3] for s in gets] == ["dropped", "answered"], (
                f"upstream saw /r/b as {gets}, want dropped on a reused connection, "
                f"then answered on a new one")
            assert gets[0][0] == int(first), f"/r/b first went to {gets[0]}, not {first}"
            # the connection that answered /r/b is now the pool's idle one:
            # a POST on it is dropped too and must not be sent twice
            r = subprocess.run([UE, "fetch", "--api", d.api, "--replace-url", url,
                                "--include", "--data", "once only", "/p"],
                               capture_output=True, timeout=30)
            status, _, head, body = parse(r)
            assert status == 502, f"POST dropped by the upstream: status {status}, want 502"
            posts = [s for s in seen if s[1] == "POST"]
            assert posts == [(int(again), "POST", "/r/p", "dropped")], (
                f"upstream saw POSTs {posts}, want one, dropped, on connection {again}")
            d.alive()
        finally:
            close()
    run("keep-alive connection closed by the upstream as a request arrives: "
        "GET sent again on a new connection, POST gets 502", fn)


def case_werift():
    """The Node werift phone, in a network namespace of its own (loopback
    only) with its own dcmfd and nginx, which proxy_werift.js starts."""
    def fn():
        node = shutil.which("node")
        mods = os.path.join(HERE, "..", "clients", "node_modules", "werift")
        if node is None or not os.path.isdir(mods):
            log("SKIP werift: no node or no tests/clients/node_modules/werift")
            return
        port = free_port()
        ng = Nginx("werift", f"server {{ listen 127.0.0.1:{port}; root {ROOT_A}; }}", run=False)
        r = subprocess.run([os.path.join(HERE, "in-netns"), node,
                            os.path.join(HERE, "proxy_werift.js"), DCMFD, ng.dir, ng.conf,
                            str(port), f"http://127.0.0.1:{port}/site/index.html", ROOT_A],
                           capture_output=True, timeout=60)
        out = r.stdout.decode(errors="replace")
        for ln in out.splitlines():
            print("#   " + ln)
        assert r.returncode == 0, f"exit {r.returncode}: " + (
            r.stderr.decode(errors="replace")[-400:] or out[-400:])
        assert "not ok" not in out and "ok - " in out, "proxy_werift.js did not pass"
    run("werift phone: 502 while upstream down, then / and nested path on the same channel", fn)


# ---- main ------------------------------------------------------------------

ROOT_A, ROOT_B, ROOT_C = make_root("a"), make_root("b"), make_root("c")
URL_B = None
exit_ok = True
main_d = None
try:
    # the extra files on the HTTP/1.1 nginx
    write(f"{ROOT_A}/site/cached/c.txt", "cacheable for a minute\n")
    write(f"{ROOT_A}/site/nocache/n.txt", "revalidate me\n")
    big = os.urandom(10 << 20)
    write(f"{ROOT_A}/site/big/blob.bin", big)
    big_hash = hashlib.sha256(big).hexdigest()
    del big
    pki = make_pki(os.path.join(TMP, "pki"))
    pA, pB, pC = free_port(), free_port(), free_port()
    ng = Nginx("main", f"""
  server {{
    listen 127.0.0.1:{pA};
    root {ROOT_A};
    location /site/cached/ {{ add_header Cache-Control "max-age=60"; }}
    location /site/nocache/ {{ add_header Cache-Control "no-cache"; }}
    location /site/big/ {{ add_header Cache-Control "no-store"; }}
  }}
  server {{
    listen 127.0.0.1:{pB} ssl http2;
    root {ROOT_B};
    ssl_certificate {pki['server']};
    ssl_certificate_key {pki['key']};
  }}""")
    ngh = start(["nghttpd", "--no-tls", "-a", "127.0.0.1", "-d", ROOT_C, str(pC)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(pA, ng.proc)
    wait_port(pB, ng.proc)
    wait_port(pC, ngh)
    URL_A = f"http://127.0.0.1:{pA}/site/index.html?sess=abc"
    URL_B = f"https://127.0.0.1:{pB}/site/index.html?sess=abc"
    URL_C = f"http://127.0.0.1:{pC}/site/index.html?sess=abc"
    log(f"servers up after {time.monotonic() - T0:.2f} s: nginx h1 :{pA}, "
        f"nginx h2+TLS :{pB}, nghttpd h2c :{pC}")

    main_d = Dcmfd("--upstream-ca", pki["ca"], "--workers", str(MAIN_WORKERS))
    case_basic(main_d, ng, "nginx HTTP/1.1", URL_A, ROOT_A, pA, "HTTP/1.1")
    case_basic(main_d, ng, "nginx h2 over TLS", URL_B, ROOT_B, pB, "HTTP/2.0")
    case_basic(main_d, None, "nghttpd h2c", URL_C, ROOT_C, pC, None)
    case_headers(main_d, ng, "nginx HTTP/1.1", URL_A, ROOT_A, pA)
    case_headers(main_d, ng, "nginx h2 over TLS", URL_B, ROOT_B, pB)
    case_three(main_d, [(URL_A, ROOT_A), (URL_B, ROOT_B), (URL_C, ROOT_C)])
    case_post(main_d)
    case_mdc2(main_d, ng, ROOT_A, pA)
    case_down(main_d)
    # The upstream connection pool and the cache belong to a media worker
    # process; each phone here is a new context, placed on any worker.
    # With one worker, every phone's requests share them.
    one_d = Dcmfd("--workers", "1")
    case_keepalive_race(one_d)
    case_cache_fresh(one_d, ng, URL_A, pA)
    case_cache_revalidate(one_d, ng, URL_A, pA)
    run("dcmfd (one worker) exits cleanly on SIGTERM",
        lambda: check_clean_stop(one_d))
    case_big(URL_A, big_hash, ["--cache-size", "0"], "cache off")
    case_big(URL_A, big_hash, [], "cache on, no-store body")
    case_stalled()
    case_fallback()
    case_werift()

    run("dcmfd (main instance) exits cleanly on SIGTERM",
        lambda: check_clean_stop(main_d))
except Exception as e:  # a server that would not start
    results.append(False)
    print(f"not ok - test set-up: {type(e).__name__}: {e}", flush=True)
finally:
    if main_d is not None and not all(results):
        log("main dcmfd log tail:\n# " + main_d.tail(20))
    for p in reversed(STARTED):
        stop(p)
    if os.environ.get("DCMF_KEEP_TMP"):
        log(f"kept {TMP}")
    else:
        shutil.rmtree(TMP, ignore_errors=True)

log(f"total {time.monotonic() - T0:.1f} s")
print(f"{results.count(True)} passed, {results.count(False)} failed")
sys.exit(0 if all(results) else 1)
