#!/usr/bin/env python3
"""dcmf-ue against a real dcmfd on loopback: the C phone on dcmfd's own
engines fetches over the bootstrap data channel, with ICE and without it
(both sides ICE-lite), and cleans up after itself.

    test_ue.py DCMFD DCMF_UE
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

DCMFD, UE = sys.argv[1], sys.argv[2]
WWW = os.path.join(os.path.dirname(__file__), "..", "..", "bootstrap", "www")
results = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curl_json(url):
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", url],
                         capture_output=True, timeout=10).stdout
    return out.decode()


class Dcmfd:
    def __enter__(self):
        self.port = free_port()
        # below the ephemeral range (32768-): no client socket takes a port
        base = 26000 + (os.getpid() % 50) * 100
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [DCMFD, "--control", f"127.0.0.1:{self.port}", "--ports",
             f"{base}-{base + 99}", "--log-level", "debug"],
            stdout=self.log, stderr=self.log)
        self.api = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            if '"ok"' in curl_json(self.api + "/healthz"):
                return self
            time.sleep(0.05)
        raise AssertionError("dcmfd did not start")

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(5)


def ue(d, *args):
    return subprocess.run([UE, args[0], "--api", d.api, *args[1:]],
                          capture_output=True, timeout=60)


def test(name):
    def wrap(fn):
        try:
            with Dcmfd() as d:
                fn(d)
                code = d.stop()
                assert code == 0, f"dcmfd exited with {code}"
            results.append(True)
            print(f"ok - {name}")
        except AssertionError as e:
            results.append(False)
            print(f"not ok - {name}: {e}")
        return fn
    return wrap


def index_bytes():
    with open(os.path.join(WWW, "index.html"), "rb") as f:
        return f.read()


def no_contexts_left(d):
    left = json.loads(curl_json(d.api + "/nmf-mrm/v1/contexts"))
    assert left == [], f"dcmf-ue left {len(left)} contexts behind"


@test("fetch / with ICE returns index.html byte for byte")
def _(d):
    r = ue(d, "fetch", "/")
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr.decode()}"
    assert r.stdout == index_bytes(), "body differs from bootstrap/www/index.html"
    no_contexts_left(d)
    # Workers publish their counters every 100 ms: a bounded wait.
    for _ in range(40):
        metrics = curl_json(d.api + "/metrics")
        if 'dcmf_dtls_handshakes_total{result="ok"} 1' in metrics:
            break
        time.sleep(0.05)
    assert 'dcmf_dtls_handshakes_total{result="ok"} 1' in metrics, metrics
    assert 'dcmf_stun_requests_total{result="success"}' in metrics


@test("fetch --no-ice (both ICE-lite) returns index.html")
def _(d):
    r = ue(d, "fetch", "--no-ice", "/")
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr.decode()}"
    assert r.stdout == index_bytes(), "body differs"
    metrics = curl_json(d.api + "/metrics")
    assert 'dcmf_stun_requests_total{result="success"} 0' in metrics, \
        "STUN was used although the phone does no ICE"


@test("fetch --include shows the head; a missing path exits 1 with 404")
def _(d):
    r = ue(d, "fetch", "--include", "/apps.json")
    assert r.returncode == 0
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    assert b"Content-Type: application/json" in head, head
    json.loads(body)
    r = ue(d, "fetch", "/no/such/thing")
    assert r.returncode == 1, f"exit {r.returncode}"
    no_contexts_left(d)


@test("bench: 100 fetches, 10 at a time, none failed")
def _(d):
    r = ue(d, "bench", "--count", "100", "--concurrency", "10")
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "fetches 100 ok 100 failed 0" in out, out
    assert "median" in out and "p99" in out
    no_contexts_left(d)


@test("idle: 20 phones held, then released")
def _(d):
    p = subprocess.Popen([UE, "idle", "--api", d.api, "--count", "20",
                          "--seconds", "1"], stdout=subprocess.PIPE)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, p.returncode
    assert out.decode().strip() == "ready 20", out
    no_contexts_left(d)


def metric(d, name):
    """The value of an unlabelled counter, or 0 while it is not there."""
    for line in curl_json(d.api + "/metrics").splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0


def _dcmfd_dies_under_bench():
    """dcmfd is killed (no SCTP ABORT, no DTLS close_notify) while a bench
    runs: dcmf-ue must end with an error within its bounded waits, not hang
    on phones whose MF is gone."""
    with Dcmfd() as d:
        p = subprocess.Popen([UE, "bench", "--api", d.api, "--count",
                              "1000000", "--concurrency", "10", "--timeout",
                              "3"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while metric(d, "dcmf_dtls_handshakes_total") < 20:
                assert p.poll() is None, "dcmf-ue ended early"
                assert time.monotonic() < deadline, "no phone connected"
                time.sleep(0.05)
            d.proc.kill()
            d.proc.wait(5)
            killed = time.monotonic()
            out, err = p.communicate(timeout=30)
            took = time.monotonic() - killed
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode not in (0, None), f"exit {p.returncode}"
        assert b"control API connection failed" in err, err[-2000:]
        # The API connection's end stops the run at once (and no phone
        # waits more than 3 s); 15 s leaves room for a loaded machine.
        assert took < 15, f"dcmf-ue took {took:.1f} s to give up"
        assert b"failed" in out, out


try:
    _dcmfd_dies_under_bench()
    results.append(True)
    print("ok - bench ends with an error when dcmfd dies under it")
except (AssertionError, subprocess.TimeoutExpired) as e:
    results.append(False)
    print(f"not ok - bench ends with an error when dcmfd dies under it: {e}")


def _unreachable():
    r = subprocess.run([UE, "fetch", "--api", f"http://127.0.0.1:{free_port()}",
                        "/"], capture_output=True, timeout=30)
    assert r.returncode == 3, f"exit {r.returncode}"


try:
    _unreachable()
    results.append(True)
    print("ok - an unreachable control API makes fetch exit 3")
except AssertionError as e:
    results.append(False)
    print(f"not ok - an unreachable control API makes fetch exit 3: {e}")

r = subprocess.run([UE, "fetch", "--bogus"], capture_output=True, timeout=10)
ok = r.returncode == 2 and b"unexpected argument" in r.stderr
results.append(ok)
print(("ok" if ok else "not ok") + " - a bad flag exits 2")

print(f"{results.count(True)} passed, {results.count(False)} failed")
sys.exit(0 if all(results) else 1)
