#!/usr/bin/env python3
"""The AGW shim of a real dcmfd: its JSON API on /agw/v1/contexts, the
relay with plain UDP sockets, and werift phones through it (e2DCe toward
dcmfd, e2e between two phones).

    test_agw.py DCMFD DCMF_UE [SUBSTRING...]

Every test starts its own dcmfd on 127.0.0.1 and stops it with SIGTERM
(exit status 0, every port free again). The werift tests run
agw_clients.js with node when node and tests/clients/node_modules/werift
are there (meson runs this whole script under in-netns, so dcmfd and the
phones share a loopback-only namespace). Prints "ok - NAME" or
"not ok - NAME: REASON" and "N passed, M failed"; exits 1 on failure.
Every API response is checked against docs/openapi.yaml
(openapi_check.py). Run with /usr/bin/python3 (python3-jsonschema,
python3-yaml); otherwise the standard library and curl.
"""
import errno
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

try:
    import openapi_check
except ImportError as e:  # without the checker the tests would prove less
    sys.exit(f"test_agw.py: {e}; install python3-jsonschema and python3-yaml "
             "and run with /usr/bin/python3")

OPENAPI = openapi_check.Checker()
DCMFD, UE = sys.argv[1], sys.argv[2]
FILTERS = sys.argv[3:]
HERE = os.path.dirname(os.path.abspath(__file__))
AGW = "/agw/v1/contexts"
PROBLEM = "application/problem+json"
results = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    """True if UDP port |port| on 127.0.0.1 can be bound (nobody holds it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return False
        raise
    finally:
        s.close()


def eventually(cond, what, seconds=2.0):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out: {what}")


class Dcmfd:
    def __enter__(self):
        self.port = free_port()
        # below the ephemeral range (32768-): no client socket takes a port
        self.base = 24000 + (os.getpid() % 40) * 50
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [DCMFD, "--control", f"127.0.0.1:{self.port}", "--ports",
             f"{self.base}-{self.base + 39}", "--log-level", "debug"],
            stdout=self.log, stderr=self.log)
        self.api = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                if self.call("GET", "/healthz")[0] == 200:
                    return self
            except AssertionError:
                pass
            time.sleep(0.05)
        raise AssertionError("dcmfd did not start")

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(5)

    def log_tail(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace").splitlines()[-12:]

    def call(self, method, path, body=None, ctype="application/json"):
        """One request with curl; returns (status, headers, parsed body)."""
        cmd = ["curl", "-s", "-D", "-", "--http2-prior-knowledge", "-X",
               method, self.api + path]
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            data = data.encode() if isinstance(data, str) else data
            cmd += ["-H", f"content-type: {ctype}", "--data-binary", "@-"]
        if method == "HEAD":  # -I prints the head (and -D would again)
            cmd = ["curl", "-s", "-I", "--http2-prior-knowledge",
                   self.api + path]
        r = subprocess.run(cmd, input=data, capture_output=True, timeout=10)
        if r.returncode != 0:
            raise AssertionError(f"curl {method} {path}: exit {r.returncode}")
        head, _, rest = r.stdout.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        err = OPENAPI.check(method, path, status, headers.get("content-type"),
                            rest)
        assert err is None, f"not as docs/openapi.yaml says: {err}"
        parsed = rest
        if "json" in headers.get("content-type", "") and rest:
            parsed = json.loads(rest)
        return status, headers, parsed

    def metrics(self):
        return self.call("GET", "/metrics")[2].decode()


def test(name):
    def wrap(fn):
        if FILTERS and not any(f in name for f in FILTERS):
            return fn
        d = None
        try:
            with Dcmfd() as d:
                fn(d)
                left = d.call("GET", AGW)[2]
                code = d.stop()
                assert code == 0, f"dcmfd exited with {code}"
                for c in left:  # contexts left at shutdown are released
                    for t in c["terminations"]:
                        assert port_free(t["local"]["port"]), \
                            f"port {t['local']['port']} still bound after exit"
            results.append(True)
            print(f"ok - {name}")
        except Exception as e:  # noqa: BLE001 - report, go on with the rest
            results.append(False)
            print(f"not ok - {name}: {e}")
            if d is not None:
                for ln in d.log_tail():
                    print("#   " + ln)
        return fn
    return wrap


def body(access=None, core=None):
    a = {"terminationId": "access", **(access or {})}
    c = {"terminationId": "core", **(core or {})}
    return {"terminations": [a, c]}


def addr(port, ip="127.0.0.1"):
    return {"ipv4Addr": ip, "port": port}


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2)
    return s


def create(d, b):
    status, headers, ctx = d.call("POST", AGW, b)
    assert status == 201, f"POST {status}: {ctx}"
    return ctx, headers


def ports_of(ctx):
    return ctx["terminations"][0]["local"]["port"], \
        ctx["terminations"][1]["local"]["port"]


def stats(d, ctx):
    status, _, doc = d.call("GET", f"{AGW}/{ctx['contextId']}")
    assert status == 200, status
    return doc["statistics"], doc


def check_problem(got, status, param=None):
    st, headers, doc = got
    assert st == status, f"status {st}, want {status}: {doc}"
    assert headers.get("content-type") == PROBLEM, headers.get("content-type")
    assert doc["status"] == status and doc["detail"], doc
    if param is not None:
        params = [p["param"] for p in doc.get("invalidParams", [])]
        assert param in params, f"{param} not in {params}"


# ---- (a) the API ---------------------------------------------------------

@test("API: create, get, list, patch, delete; ports bound, then released")
def _(d):
    ctx, headers = create(d, body({"latching": "first-packet"},
                                  {"remote": addr(9)}))
    cid = ctx["contextId"]
    assert headers["location"] == f"{d.api}{AGW}/{cid}", headers
    pa, pc = ports_of(ctx)
    for p in (pa, pc):
        assert d.base <= p < d.base + 40, f"port {p} outside the pool"
        assert not port_free(p), f"port {p} is not bound"
    assert ctx["terminations"][0]["local"]["ipv4Addr"] == "127.0.0.1"
    assert ctx["terminations"][1]["remote"] == addr(9)
    assert ctx["statistics"]["accessToCore"] == {"packets": 0, "bytes": 0}
    status, _, got = d.call("GET", f"{AGW}/{cid}")
    assert status == 200 and got == ctx, got
    status, headers, _ = d.call("HEAD", f"{AGW}/{cid}")
    assert status == 200, status
    status, _, lst = d.call("GET", AGW)
    assert status == 200 and [c["contextId"] for c in lst] == [cid], lst
    # A relay's ports come from the same pool as Nmf_MRM media ports.
    status, _, mrm = d.call("POST", "/nmf-mrm/v1/contexts", {
        "terminations": [{"terminationId": "t", "medias": [{
            "mediaId": "1", "mediaResourceType": "DC",
            "dcMedia": {"streams": {"0": {"subprotocol": "http"}}}}]}]})
    assert status == 201, mrm
    mport = mrm["terminations"][0]["medias"][0]["localMbEndpoint"]["portNumber"]
    assert mport not in (pa, pc)
    status, _, patched = d.call(
        "PATCH", f"{AGW}/{cid}",
        [{"op": "replace", "path": "/terminations/1/remote/port", "value": 10},
         {"op": "add", "path": "/terminations/0/remote", "value": addr(11)},
         {"op": "replace", "path": "/terminations/0/latching",
          "value": "signalled-only"}],
        "application/json-patch+json")
    assert status == 200, patched
    assert patched["terminations"][1]["remote"]["port"] == 10
    assert patched["terminations"][0]["latching"] == "signalled-only"
    assert ports_of(patched) == (pa, pc)
    status, _, _ = d.call("DELETE", f"{AGW}/{cid}")
    assert status == 204, status
    eventually(lambda: port_free(pa) and port_free(pc), "ports released")
    check_problem(d.call("GET", f"{AGW}/{cid}"), 404)
    check_problem(d.call("DELETE", f"{AGW}/{cid}"), 404)
    assert "dcmf_agw_relays 0\n" in d.metrics()


@test("API: bad requests get problem+json 4xx with invalidParams")
def _(d):
    check_problem(d.call("POST", AGW, b"{not json"), 400)
    check_problem(d.call("POST", AGW, body(), "text/plain"), 415,
                  "header content-type")
    check_problem(d.call("POST", AGW, {"terminations": []}), 400,
                  "/terminations")
    check_problem(d.call("POST", AGW, body({"latching": "sometimes"})), 400,
                  "/terminations/0/latching")
    check_problem(d.call("POST", AGW, body({"latching": "signalled-only"})),
                  400, "/terminations/0/latching")
    check_problem(d.call("POST", AGW, body(None, {"remote": addr(0)})), 400,
                  "/terminations/1/remote/port")
    check_problem(d.call("POST", AGW, body(None, {
        "remote": {"ipv6Addr": "::1", "port": 5}})), 400,
        "/terminations/1/remote/ipv6Addr")
    check_problem(d.call("POST", AGW, body({"remoteFingerprint": "x"})), 400,
                  "/terminations/0/remoteFingerprint")
    check_problem(d.call("POST", AGW, body({"transport": "UDP/TLS/RTP/SAVP"})),
                  400, "/terminations/0/transport")
    check_problem(d.call("PUT", AGW, body()), 405)
    check_problem(d.call("GET", "/agw/v1/nothing"), 404)
    ctx, _ = create(d, body())
    path = f"{AGW}/{ctx['contextId']}"
    got = d.call("PATCH", path, {"terminations": []})  # a merge patch
    check_problem(got, 415)
    assert got[1].get("accept-patch") == "application/json-patch+json", got[1]
    check_problem(d.call("PATCH", path, [{"op": "replace", "path":
                  "/terminations/0/local/port", "value": 1}],
                  "application/json-patch+json"), 403,
                  "/terminations/0/local")
    check_problem(d.call("PATCH", path, [{"op": "remove", "path": "/x"}],
                  "application/json-patch+json"), 409)
    check_problem(d.call("POST", path, body()), 405)
    assert d.call("GET", path)[2]["terminations"] == ctx["terminations"]
    assert 'dcmf_api_requests_total{method="POST",status="400"}' in d.metrics()


# ---- (b) the relay with plain sockets ------------------------------------

def stun_request():
    """A STUN Binding request as a phone would send (RFC 8489 header,
    USERNAME, PRIORITY, ICE-CONTROLLING, FINGERPRINT-shaped tail)."""
    attrs = struct.pack("!HH", 0x0006, 9) + b"abcd:efgh" + b"\0" * 3
    attrs += struct.pack("!HHI", 0x0024, 4, 0x6e7f00ff)
    attrs += struct.pack("!HHQ", 0x802A, 8, random.getrandbits(64))
    attrs += struct.pack("!HHI", 0x8028, 4, 0xdeadbeef)
    return struct.pack("!HHI", 0x0001, len(attrs), 0x2112A442) + \
        os.urandom(12) + attrs


@test("relay: byte-exact both ways (STUN, empty, 1000 random datagrams each)")
def _(d):
    phone, core = udp(), udp()
    ctx, _ = create(d, body(None, {"remote": addr(core.getsockname()[1])}))
    pa, pc = ports_of(ctx)
    sent = [0, 0, 0, 0]  # packets/bytes access->core, core->access

    def up(data):
        phone.sendto(data, ("127.0.0.1", pa))
        got, src = core.recvfrom(70000)
        assert got == data, f"access->core altered ({len(data)} bytes)"
        assert src == ("127.0.0.1", pc), src
        sent[0] += 1
        sent[1] += len(data)

    def down(data):
        core.sendto(data, ("127.0.0.1", pc))
        got, src = phone.recvfrom(70000)
        assert got == data, f"core->access altered ({len(data)} bytes)"
        assert src == ("127.0.0.1", pa), src
        sent[2] += 1
        sent[3] += len(data)

    up(stun_request())
    down(b"\x01\x01" + stun_request()[2:])  # a success-shaped answer
    up(b"")
    down(b"")
    up(os.urandom(65507))  # the largest IPv4 UDP payload
    rnd = random.Random(7)
    for burst in range(20):  # 50 at a time: no socket buffer overflows
        for direction, src, dst, port in ((0, phone, core, pa),
                                          (2, core, phone, pc)):
            datagrams = [rnd.randbytes(rnd.randrange(0, 1400))
                         for _ in range(50)]
            for g in datagrams:
                src.sendto(g, ("127.0.0.1", port))
            got = [dst.recvfrom(2000)[0] for _ in datagrams]
            assert got == datagrams, f"burst {burst} altered or reordered"
            sent[direction] += len(datagrams)
            sent[direction + 1] += sum(map(len, datagrams))
    want = {"accessToCore": {"packets": sent[0], "bytes": sent[1]},
            "coreToAccess": {"packets": sent[2], "bytes": sent[3]}}
    # The worker pushes counters at most 100 ms after it counted them.
    eventually(lambda: {k: stats(d, ctx)[0][k] for k in want} == want,
               f"counters {want}")
    st, doc = stats(d, ctx)
    assert doc["terminations"][0]["latched"] == addr(phone.getsockname()[1])
    m = d.metrics()
    assert f'dcmf_agw_packets_total{{direction="access_to_core"}} {sent[0]}' in m
    assert f'dcmf_agw_bytes_total{{direction="core_to_access"}} {sent[3]}' in m
    print(f"#   relayed {sent[0]} datagrams ({sent[1]} B) up, "
          f"{sent[2]} ({sent[3]} B) down, byte for byte")


@test("relay: unknown sources are dropped and counted on both sides")
def _(d):
    phone, core, stranger = udp(), udp(), udp()
    ctx, _ = create(d, body(None, {"remote": addr(core.getsockname()[1])}))
    pa, pc = ports_of(ctx)
    # Before the latch nothing goes toward the phone. (Wait for the drop:
    # the two ports are read in no particular order.)
    core.sendto(b"early", ("127.0.0.1", pc))
    eventually(lambda: stats(d, ctx)[0]["dropped"]["core"]["notLatched"] == 1,
               "not_latched counted")
    phone.sendto(b"first", ("127.0.0.1", pa))  # latches the phone
    assert core.recvfrom(100)[0] == b"first"
    stranger.sendto(b"hijack", ("127.0.0.1", pa))  # after the latch: dropped
    stranger.sendto(b"inject", ("127.0.0.1", pc))  # not the core remote
    phone.sendto(b"second", ("127.0.0.1", pa))
    got = core.recvfrom(100)[0]
    assert got == b"second", f"the core got {got!r}, not the phone's second"
    core.sendto(b"reply", ("127.0.0.1", pc))
    got = phone.recvfrom(100)[0]
    assert got == b"reply", f"the phone got {got!r}, not the reply"
    for s in (phone, core, stranger):
        s.settimeout(0.2)
    for s in (phone, core, stranger):
        try:
            got = s.recvfrom(100)
            raise AssertionError(f"unexpected datagram {got}")
        except socket.timeout:
            pass
    want = {"access": {"unknownSource": 1, "noRemote": 0, "sendFailed": 0},
            "core": {"unknownSource": 1, "notLatched": 1, "sendFailed": 0}}
    eventually(lambda: stats(d, ctx)[0]["dropped"] == want, f"drops {want}")
    m = d.metrics()
    for side, reason in (("access", "unknown_source"),
                         ("core", "unknown_source"), ("core", "not_latched")):
        line = f'dcmf_agw_dropped_total{{side="{side}",reason="{reason}"}} 1'
        assert line in m, line
    # signalled-only: a stranger cannot latch, the signalled phone can.
    ctx2, _ = create(d, body({"latching": "signalled-only",
                              "remote": addr(phone.getsockname()[1])},
                             {"remote": addr(core.getsockname()[1])}))
    pa2, _ = ports_of(ctx2)
    stranger.sendto(b"me first", ("127.0.0.1", pa2))
    phone.settimeout(2)
    core.settimeout(2)
    phone.sendto(b"phone", ("127.0.0.1", pa2))
    assert core.recvfrom(100)[0] == b"phone"
    eventually(lambda: stats(d, ctx2)[1]["terminations"][0].get("latched")
               == addr(phone.getsockname()[1]), "the phone latched")
    eventually(lambda: stats(d, ctx2)[0]["dropped"]["access"]
               ["unknownSource"] == 1, "the stranger counted")
    # No core remote yet: the phone's datagrams are dropped as no_remote.
    ctx3, _ = create(d, body())
    phone.sendto(b"nowhere", ("127.0.0.1", ports_of(ctx3)[0]))
    eventually(lambda: stats(d, ctx3)[0]["dropped"]["access"]["noRemote"] == 1,
               "no_remote counted")


@test("dcmf-ue fetches directly while shim relays hold ports of the pool")
def _(d):
    ctxs = [create(d, body())[0] for _ in range(3)]
    r = subprocess.run([UE, "fetch", "--api", d.api, "/"], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()[-300:]
    assert b"<html" in r.stdout.lower()
    for c in ctxs:  # the phone's media never crossed a relay
        st, _ = stats(d, c)
        assert st["accessToCore"]["packets"] == 0 and \
            st["dropped"]["core"]["unknownSource"] == 0, st


# ---- (c), (d) werift phones through the shim -------------------------------

def werift(d, scenario):
    node = shutil.which("node")
    if node is None or not os.path.isdir(
            os.path.join(HERE, "..", "clients", "node_modules", "werift")):
        print(f"#   SKIP {scenario}: no node or no werift")
        return
    r = subprocess.run([node, os.path.join(HERE, "agw_clients.js"),
                        str(d.port), scenario], capture_output=True,
                       timeout=90)
    out = r.stdout.decode(errors="replace")
    for ln in out.splitlines():
        print("#   " + ln)
    assert r.returncode == 0 and "not ok" not in out, \
        f"agw_clients.js {scenario}: exit {r.returncode} " + \
        r.stderr.decode(errors="replace")[-300:]


@test("e2DCe: werift phone -> shim -> dcmfd fetches / over the bootstrap DC")
def _(d):
    werift(d, "e2dce")


@test("e2e: two werift phones, DTLS end to end across two shim legs")
def _(d):
    werift(d, "e2e")
    m = d.metrics()
    assert 'dcmf_dtls_handshakes_total{result="ok"} 0' in m
    assert 'dcmf_dtls_handshakes_total{result="failed"} 0' in m


passed = sum(results)
print(f"# {OPENAPI.checked} response bodies validated against docs/openapi.yaml")
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if results and all(results) else 1)
