#!/usr/bin/env python3
"""Integration tests for dcmfd's liveness: worker heartbeats, /healthz, the
bounded shutdown, and what a stranger's STUN checks and ClientHellos get.

Usage: test_liveness.py PATH/TO/dcmfd [SUBSTRING...]

How a worker is made stuck. No flag or build option of dcmfd can stall a
worker on purpose, and we add none: the product has no test hook. Instead
the test does from outside what a real fault looks like from inside: it
stops one thread of dcmfd with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT on
that thread's id, found by the thread name dcmfd gives the loop of media
worker process N: "dcmf-media-N", which also runs the AGW shim's relays).
Only that thread stops; the control thread goes on, exactly as when a
worker loop spins or blocks. The test is the parent of dcmfd and so an
ancestor of its worker processes, so ptrace is allowed even under Yama
scope 1; where ptrace is not
allowed at all, the tests that need it are reported as skipped (exit 77
when nothing else ran).

Reuses the dcmfd harness and clients of test_api.py. Python 3 standard
library only; needs curl.
"""

import ctypes
import glob
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_api  # noqa: E402
from test_api import (CONTEXTS, Dcmfd, TestFailure, check, check_eq,  # noqa: E402
                      context_doc, curl, dc_media)

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000  # __WALL: wait for threads too


class Skip(Exception):
    pass


# ---- stopping one thread -------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                         ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


def process_tree(pid):
    """|pid| and its descendants: dcmfd's media workers are processes
    of their own, started by it."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in glob.glob(f"/proc/{pids[i]}/task/*/children"):
            try:
                with open(task) as f:
                    pids += [int(c) for c in f.read().split()]
            except OSError:
                continue
        i += 1
    return pids


def thread_id(pid, name):
    """The thread named |name| in dcmfd (|pid|) or one of its worker
    processes."""
    for p in process_tree(pid):
        for task in glob.glob(f"/proc/{p}/task/*"):
            try:
                with open(os.path.join(task, "comm")) as f:
                    if f.read().strip() == name:
                        return int(os.path.basename(task))
            except OSError:
                continue
    raise TestFailure(f"dcmfd has no thread named {name}")


class StoppedThread:
    """Stops thread |name| of process |pid| until detach() (or until the
    process ends). The rest of the process keeps running."""

    def __init__(self, pid, name):
        self.tid = thread_id(pid, name)
        self.attached = False
        if _libc.ptrace(PTRACE_SEIZE, self.tid, None, None) != 0:
            raise Skip(f"ptrace is not allowed here: "
                       f"{os.strerror(ctypes.get_errno())}")
        self.attached = True
        check(_libc.ptrace(PTRACE_INTERRUPT, self.tid, None, None) == 0,
              f"PTRACE_INTERRUPT failed: {os.strerror(ctypes.get_errno())}")
        # Blocks until the thread is really stopped (a ptrace-stop).
        tid, status = os.waitpid(self.tid, WALL)
        check(tid == self.tid and os.WIFSTOPPED(status),
              f"thread {name} did not stop (status {status:#x})")

    def detach(self):
        if self.attached:
            check(_libc.ptrace(PTRACE_DETACH, self.tid, None, None) == 0,
                  f"PTRACE_DETACH failed: {os.strerror(ctypes.get_errno())}")
            self.attached = False

    def reap(self):
        """Collects the thread's end once the process died (we trace it, so
        its exit is reported to us); returns True when collected."""
        try:
            tid, _ = os.waitpid(self.tid, WALL | os.WNOHANG)
            return tid == self.tid
        except ChildProcessError:
            return True


def wait_for(what, cond, timeout, d):
    """Polls |cond| every 50 ms until true, up to |timeout| seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise TestFailure(f"{what} not seen within {timeout} s: {d.log_tail()}")


def metric(d, series):
    text = curl(d, "GET", "/metrics").body.decode()
    m = re.search("^" + re.escape(series) + r" ([0-9.]+)$", text, re.M)
    check(m is not None, f"/metrics has no {series}")
    return float(m.group(1))


def exit_after_sigterm(d, stopped, limit):
    """Sends SIGTERM and waits (at most |limit| s) for dcmfd to exit,
    reaping a traced thread on the way. Returns (status, seconds)."""
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    reaped = stopped is None
    while time.monotonic() - t0 < limit:
        if not reaped:
            reaped = stopped.reap()
        if d.proc.poll() is not None:
            d.stopped = True
            return d.proc.returncode, time.monotonic() - t0
        time.sleep(0.02)
    raise TestFailure(f"dcmfd still running {limit} s after SIGTERM: "
                      f"{d.log_tail()}")


# ---- the tests -----------------------------------------------------------

TESTS = []


def test(name):
    def register(fn):
        TESTS.append((name, fn))
        return fn
    return register


@test("normal SIGTERM with a context held: exit 0 within 1 s, ports free")
def t_normal_stop():
    with Dcmfd() as d:
        r = curl(d, "POST", CONTEXTS, context_doc(dc_media()),
                 ctype="application/json")
        check_eq(r.status, 201, "create")
        status, took = exit_after_sigterm(d, None, 10)
        check_eq(status, 0, "exit status")
        check(took < 1.0, f"took {took:.2f} s")
        check("shutting down (at most 5000 ms)" in d.log(),
              f"no shutdown line with the default bound: {d.log_tail()}")
        for p in d.media_ports:
            test_api.check_port_free(p, "after shutdown, media port")


def stalled_worker_case(worker, thread):
    with Dcmfd() as d:
        check_eq(curl(d, "GET", "/healthz").status, 200, "healthz before")
        check_eq(metric(d, f'dcmf_worker_up{{worker="{worker}"}}'), 1,
                 "worker_up before")
        stopped = StoppedThread(d.proc.pid, thread)
        try:
            r = wait_for("/healthz 503",
                         lambda: (lambda x: x if x.status == 503 else None)(
                             curl(d, "GET", "/healthz")), 3.0, d)
            check_eq(r.header("content-type"), "application/problem+json",
                     "503 type")
            detail = r.json().get("detail", "")
            check(re.match(rf"worker {worker}: loop has not turned for "
                           r"[0-9]+\.[0-9] s$", detail),
                  f"503 detail does not name the worker: {detail!r}")
            check_eq(metric(d, f'dcmf_worker_up{{worker="{worker}"}}'), 0,
                     "worker_up while stalled")
            check(metric(d, f'dcmf_worker_heartbeat_age_seconds'
                         f'{{worker="{worker}"}}') > 1.0, "heartbeat age")
            check_eq(metric(d, f'dcmf_worker_stalled_total'
                           f'{{worker="{worker}"}}'), 1, "stalled_total")
            check(f"worker {worker}: loop has not turned for" in d.log(),
                  f"no stall log line: {d.log_tail()}")
        finally:
            stopped.detach()
        wait_for("/healthz 200 again",
                 lambda: curl(d, "GET", "/healthz").status == 200, 3.0, d)
        wait_for("the recovery log line",
                 lambda: f"worker {worker}: loop turns again" in d.log(), 3.0,
                 d)
        check_eq(metric(d, f'dcmf_worker_up{{worker="{worker}"}}'), 1,
                 "worker_up after")
        check_eq(len(re.findall(f"worker {worker}: loop has not turned",
                                d.log())), 1, "stall lines per episode")
        d.stop()


@test("a stuck media worker: /healthz 503 naming it, metrics, one log line; "
      "recovers")
def t_stalled_media():
    stalled_worker_case("media-0", "dcmf-media-0")


@test("SIGTERM with a stuck media worker: exit 3 after the default 5 s, "
      "naming the media worker")
def t_stuck_shutdown_default():
    with Dcmfd() as d:
        stopped = StoppedThread(d.proc.pid, "dcmf-media-0")
        status, took = exit_after_sigterm(d, stopped, 10)
        check_eq(status, 3, f"exit status ({d.log_tail()})")
        # Graceful first: it waited for the worker, then gave up in time.
        check(4.8 <= took <= 6.5, f"exit after {took:.2f} s, not ~5 s")
        check("shutdown cut short after 5000 ms: media worker did not stop"
              in d.log(), f"no line naming the media worker: {d.log_tail()}")


@test("--shutdown-timeout 1000 bounds it; a second SIGTERM exits at once")
def t_stuck_shutdown_flag_and_second_signal():
    with Dcmfd("--shutdown-timeout", "1000") as d:
        stopped = StoppedThread(d.proc.pid, "dcmf-media-0")
        status, took = exit_after_sigterm(d, stopped, 10)
        check_eq(status, 3, "exit status")
        check(0.9 <= took <= 2.5, f"exit after {took:.2f} s, not ~1 s")
        check("shutdown cut short after 1000 ms: media worker did not stop"
              in d.log(), f"no line naming the media worker: {d.log_tail()}")
    with Dcmfd("--shutdown-timeout", "60000") as d:
        stopped = StoppedThread(d.proc.pid, "dcmf-media-0")
        d.proc.send_signal(signal.SIGTERM)
        wait_for("the shutdown line",
                 lambda: "shutting down (at most 60000 ms)" in d.log(), 3.0,
                 d)
        # The control loop's own part ends at once ("stopped; ..."); only
        # then is the stuck worker the one part left to name. A second
        # signal sent earlier would find the control loop still winding
        # down and name it first, which is right but not this case.
        wait_for("the control loop to stop",
                 lambda: "stopped; " in d.log(), 3.0, d)
        status, took = exit_after_sigterm(d, stopped, 10)
        check_eq(status, 3, "exit status after the second signal")
        check(took < 1.5, f"second signal: exit after {took:.2f} s")
        check("shutdown cut short by a second signal: media worker did not "
              "stop" in d.log(), f"no second-signal line: {d.log_tail()}")


# ---- a media worker process that dies ---------------------------------------

class EventReceiver:
    """An eventNotifyUri receiver: Python's own HTTP/1.1 server on
    loopback, keeping every JSON body POSTed to it."""

    def __init__(self):
        import http.server
        import threading
        events = self.events = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                events.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/events"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def udp_inodes_by_port():
    """{local UDP port: socket inode} of this host's IPv4 sockets."""
    out = {}
    with open("/proc/net/udp") as f:
        for ln in f.readlines()[1:]:
            cols = ln.split()
            out[int(cols[1].split(":")[1], 16)] = cols[9]
    return out


def worker_of_port(d, port):
    """The pid of the media worker process holding a descriptor of UDP
    |port| (seen from outside, in /proc), or None."""
    inode = udp_inodes_by_port().get(port)
    for pid in process_tree(d.proc.pid)[1:]:
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def stun_answered(port, media):
    """Sends the phone's STUN check with the right credentials to media
    |port|; True when a Binding success comes back."""
    username = f"{media['localIceInfo']['ufrag']}:" \
        f"{media['remoteIceInfo']['ufrag']}"
    txid = os.urandom(12)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        for _ in range(4):
            sock.sendto(stun_check(username,
                                   media["localIceInfo"]["pwd"].encode(),
                                   txid), ("127.0.0.1", port))
            try:
                data = sock.recv(2048)
                return data[:2] == b"\x01\x01" and data[8:20] == txid
            except socket.timeout:
                continue
        return False
    finally:
        sock.close()


@test("a media worker killed with SIGKILL: exactly its contexts get "
      "MEDIA_FAILURE and are released with their ports (its AGW contexts "
      "too), the others go on; counted, logged; the worker is started "
      "again and serves new contexts")
def t_worker_killed():
    recv = EventReceiver()
    try:
        with Dcmfd("--workers", "2", nports=64) as d:
            contexts = []  # (id, media port, media document)
            for _ in range(6):
                doc = context_doc(dc_media())
                doc["eventNotifyUri"] = recv.uri
                r = curl(d, "POST", CONTEXTS, doc, ctype="application/json")
                check_eq(r.status, 201, "create")
                media = r.json()["terminations"][0]["medias"][0]
                contexts.append((r.json()["contextId"],
                                 media["localMbEndpoint"]["portNumber"],
                                 media))
            agw = []  # (id, [access port, core port])
            for _ in range(4):
                r = curl(d, "POST", "/agw/v1/contexts",
                         {"terminations": [{"terminationId": "access"},
                                           {"terminationId": "core"}]},
                         ctype="application/json")
                check_eq(r.status, 201, "AGW create")
                agw.append((r.json()["contextId"],
                            [t["local"]["port"]
                             for t in r.json()["terminations"]]))
            owner = {}
            for cid, port, _ in contexts:
                owner[cid] = wait_for(f"a worker holding port {port}",
                                      lambda: worker_of_port(d, port), 3.0, d)
            agw_owner = {}
            for aid, ports in agw:
                agw_owner[aid] = wait_for(
                    f"a worker holding AGW port {ports[0]}",
                    lambda: worker_of_port(d, ports[0]), 3.0, d)
            # The victim runs an AGW relay and at least one DC media.
            victim = agw_owner[agw[0][0]]
            for _ in range(20):
                if victim in owner.values():
                    break
                doc = context_doc(dc_media())
                doc["eventNotifyUri"] = recv.uri
                r = curl(d, "POST", CONTEXTS, doc, ctype="application/json")
                check_eq(r.status, 201, "create")
                media = r.json()["terminations"][0]["medias"][0]
                port = media["localMbEndpoint"]["portNumber"]
                contexts.append((r.json()["contextId"], port, media))
                owner[contexts[-1][0]] = wait_for(
                    f"a worker holding port {port}",
                    lambda: worker_of_port(d, port), 3.0, d)
            check(victim in owner.values(), "no DC media on the AGW's worker")
            gone = {cid for cid, pid in owner.items() if pid == victim}
            os.kill(victim, signal.SIGKILL)
            wait_for("MEDIA_FAILURE events", lambda: len(
                [e for e in recv.events if e["event"] == "MEDIA_FAILURE"])
                >= len(gone), 5.0, d)
            failed = {e["contextId"] for e in recv.events
                      if e["event"] == "MEDIA_FAILURE"}
            check_eq(failed, gone, "contexts with MEDIA_FAILURE")
            reason = [e for e in recv.events
                      if e["event"] == "MEDIA_FAILURE"][0]["detail"]["reason"]
            check(re.match(r"media worker [01] killed by signal 9", reason),
                  f"reason {reason!r}")
            for cid, port, media in contexts:
                status = curl(d, "GET", f"{CONTEXTS}/{cid}").status
                if cid in gone:
                    check_eq(status, 404, "GET of a released context")
                    test_api.check_port_free(port, "released context's port")
                else:
                    check_eq(status, 200, "GET of a context on the other "
                             "worker")
                    check(stun_answered(port, media),
                          "the other worker stopped answering its phones")
            # The AGW shim's relays of that worker went with it: their
            # contexts are released too, the others still relay.
            for aid, ports in agw:
                status = curl(d, "GET", f"/agw/v1/contexts/{aid}").status
                if agw_owner[aid] == victim:
                    check_eq(status, 404, "GET of a released AGW context")
                    for p in ports:
                        test_api.check_port_free(p, "released AGW port")
                else:
                    check_eq(status, 200, "GET of an AGW context on the "
                             "other worker")
            check_eq(metric(d, "dcmf_media_worker_failures_total"), 1,
                     "failures counted")
            check(re.search(r"media worker [01] killed by signal 9",
                            d.log()), f"no log line: {d.log_tail()}")
            # Started again: a new process, healthy, serving new contexts.
            wait_for("/healthz 200", lambda: curl(
                d, "GET", "/healthz").status == 200, 5.0, d)
            wait_for("a new worker process", lambda: len(
                [p for p in process_tree(d.proc.pid)[1:] if p != victim])
                == 2, 5.0, d)
            served = False
            for _ in range(12):
                doc = context_doc(dc_media())
                r = curl(d, "POST", CONTEXTS, doc, ctype="application/json")
                check_eq(r.status, 201, "create after the restart")
                media = r.json()["terminations"][0]["medias"][0]
                port = media["localMbEndpoint"]["portNumber"]
                pid = wait_for("a worker holding the new port",
                               lambda: worker_of_port(d, port), 3.0, d)
                if pid not in owner.values():
                    check(stun_answered(port, media),
                          "the restarted worker does not answer")
                    served = True
                    break
                curl(d, "DELETE", f"{CONTEXTS}/{r.json()['contextId']}")
            check(served, "no new context reached the restarted worker")
            d.stop()
    finally:
        recv.close()


@test("a worker that cannot start again (its bootstrap-dir gone) is retried "
      "with a growing delay, not in a loop; /healthz 503 names it; it comes "
      "back once the directory does")
def t_worker_restart_backoff():
    import shutil
    import tempfile
    www = tempfile.mkdtemp(prefix="dcmf-www-")
    try:
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<html></html>")
        with Dcmfd("--workers", "2", "--bootstrap-dir", www) as d:
            workers = process_tree(d.proc.pid)[1:]
            check_eq(len(workers), 2, "worker processes")
            gone = www + ".gone"
            os.rename(www, gone)
            os.kill(workers[0], signal.SIGKILL)
            r = wait_for("/healthz 503", lambda: (lambda x: x if x.status == 503
                                                   else None)(
                curl(d, "GET", "/healthz")), 5.0, d)
            check(re.search(r"worker media-[01]", r.json().get("detail", "")),
                  f"503 detail {r.json().get('detail')!r}")
            wait_for("a refusal logged", lambda: "refused to start: "
                     "bootstrap-dir" in d.log(), 5.0, d)
            # 100 ms, then twice as long each time, never a spin: with
            # at least two attempts behind it, two more take at least
            # 200 + 400 ms, where a loop would take a few milliseconds.
            t0 = time.monotonic()
            first = metric(d, "dcmf_media_worker_failures_total")
            check(first >= 2, f"{first} attempts so far")
            wait_for("two more attempts", lambda: metric(
                d, "dcmf_media_worker_failures_total") >= first + 2, 20.0, d)
            took = time.monotonic() - t0
            check(took >= 0.6, f"two restarts in {took:.2f} s")
            os.rename(gone, www)
            wait_for("/healthz 200 again", lambda: curl(
                d, "GET", "/healthz").status == 200, 15.0, d)
            for w in (0, 1):
                thread_id(d.proc.pid, f"dcmf-media-{w}")  # both run again
            d.stop()
    finally:
        shutil.rmtree(www, ignore_errors=True)
        shutil.rmtree(www + ".gone", ignore_errors=True)


# ---- strangers get nothing back --------------------------------------------

def stun_check(ufrag_pair, key, txid):
    """A Binding request with USERNAME, MESSAGE-INTEGRITY under |key| and
    FINGERPRINT (RFC 8489), as an ICE agent sends it."""
    user = ufrag_pair.encode()
    attrs = struct.pack("!HH", 0x0006, len(user)) + user
    attrs += b"\0" * (-len(user) % 4)
    attrs += struct.pack("!HHI", 0x0024, 4, 0x6E0001FF)  # PRIORITY
    head = struct.pack("!HHI", 0x0001, len(attrs) + 24, 0x2112A442) + txid
    mi = hmac.new(key, head + attrs, hashlib.sha1).digest()
    attrs += struct.pack("!HH", 0x0008, 20) + mi
    head = struct.pack("!HHI", 0x0001, len(attrs) + 8, 0x2112A442) + txid
    crc = zlib.crc32(head + attrs) ^ 0x5354554E
    return head + attrs + struct.pack("!HHI", 0x8028, 4, crc)


def client_hello():
    """A DTLS 1.2 record of epoch 0 holding the start of a ClientHello."""
    body = b"\x01" + b"\0\0\x20" + b"\0\0" + b"\0\0\0" + b"\0\0\x20" + \
        b"\xfe\xfd" + os.urandom(30)
    return b"\x16\xfe\xff" + b"\0\0" + b"\0" * 6 + \
        struct.pack("!H", len(body)) + body


@test("wrong-credential STUN checks and ClientHellos from a stranger: "
      "nothing sent back, limited and counted; checks that do not name the "
      "session's ufrags cost no token")
def t_strangers_get_nothing():
    with Dcmfd("--stun-rate", "20") as d:
        r = curl(d, "POST", CONTEXTS, context_doc(dc_media()),
                 ctype="application/json")
        check_eq(r.status, 201, "create")
        doc = r.json()
        media = doc["terminations"][0]["medias"][0]
        port = media["localMbEndpoint"]["portNumber"]
        ufrag = media["localIceInfo"]["ufrag"]
        # The right USERNAME (ours:theirs) with a wrong password: the
        # limit applies before the HMAC that would reject it.
        username = f"{ufrag}:{media['remoteIceInfo']['ufrag']}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", 0))
            n, batch, rate = 200, 25, 20
            unauth_key = \
                'dcmf_dropped_packets_total{reason="unauthenticated_source"}'
            t0 = time.monotonic()
            for first in range(0, n, batch):
                for i in range(first, first + batch):
                    pkt = stun_check(username, b"not-the-password",
                                     struct.pack("!III", 7, 7, i))
                    sock.sendto(pkt, ("127.0.0.1", port))
                    sock.sendto(client_hello(), ("127.0.0.1", port))
                # In batches, so that no datagram is lost in our own
                # socket buffers and every one must be counted.
                sent = 2 * (first + batch)
                wait_for(f"{sent} packets counted", lambda: metric(
                    d, "dcmf_stun_rate_limited_total") + metric(
                    d, unauth_key) >= sent, 3.0, d)
            took = time.monotonic() - t0
            limited = metric(d, "dcmf_stun_rate_limited_total")
            unauth = metric(d, unauth_key)
            # One second's worth (the burst) plus what refilled meanwhile
            # passes the limit and then fails authentication; the rest is
            # limited. Every ClientHello comes from an unauthorised source.
            passed = rate + int(rate * took) + 1
            check(limited >= n - passed,
                  f"only {limited} of {n} limited in {took:.2f} s")
            check_eq(limited + unauth, 2 * n, "limited + unauthenticated")
            # Checks that do not know the session's ufrags are dropped
            # before the limiter: however many, they take no token, so
            # they cannot starve phones that share the sender's address.
            for i in range(n):
                pkt = stun_check(f"{ufrag}:stranger", b"not-the-password",
                                 struct.pack("!III", 8, 8, i))
                sock.sendto(pkt, ("127.0.0.1", port))
                if i % batch == batch - 1:
                    wait_for(f"{i + 1} more counted", lambda: metric(
                        d, unauth_key) >= unauth + i + 1, 3.0, d)
            check_eq(metric(d, "dcmf_stun_rate_limited_total"), limited,
                     "limited after checks with the wrong names")
            sock.settimeout(0.5)
            try:
                data = sock.recv(2048)
                raise TestFailure(f"dcmfd answered a stranger: {data[:40]!r}")
            except socket.timeout:
                pass
        finally:
            sock.close()
        d.stop()


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    test_api.DCMFD = os.path.abspath(argv[1])
    filters = argv[2:]
    passed = failed = skipped = 0
    for name, fn in TESTS:
        if filters and not any(f in name for f in filters):
            continue
        outcome = test_api.run_case(name, fn, skip=Skip)
        if outcome == "ok":
            passed += 1
        elif outcome == "skip":
            skipped += 1
        else:
            failed += 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    if failed:
        return 1
    return 77 if skipped and not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
