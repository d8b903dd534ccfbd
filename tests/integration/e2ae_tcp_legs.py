"""The TCP connection control cases of e2ae_tcp.py (TS 23.334 5.16 and
6.2.18 on the TLS/TCP <-> TCP path; docs/e2ae.md "TCP handling"): which
leg connects or listens (mirrored, merge, passive), the refused and the
never-coming connections and their TCP_FAILURE within the bound, the
signalled source, stateless establishment and IPv4-mapped peers. Kept
apart from e2ae_tcp.py by responsibility, as e2ae_tcp_msrp.py is. Each
function takes the running harness (H: the Dcmfd, the UE certificate,
the notify receiver, tls_access) and raises on failure. Every wait is
bounded."""
import contextlib
import socket
import time

from e2ae_tcp_lib import (AGW, CoreListener, Dcmfd, local_port,
                          msrp_send, poll, recv_exactly, recv_until_closed,
                          remote, s_client)


@contextlib.contextmanager
def _core_tcp_context(H, setup, core_port=9, d=None):
    """A context whose core leg is |setup| (merge or passive: the AGW
    listens on its core port; state-aware, changing the setup, TS 23.334
    5.16.2.3), the core's remote at |core_port| (None: its answer has not
    come yet), on dcmfd |d| (H.D by default); the UE connected to the
    access port by s_client. Gives the context, its id and the UE; stops
    the UE and deletes the context after."""
    d = d or H.D
    core = {"transport": "TCP/MSRP",
            "tcp": {"setup": setup, "handling": "stateAwareChangingSetup"}}
    if core_port is not None:
        core["remote"] = remote(core_port)
    doc = d.create(H.tls_access(), core)
    ue = s_client(local_port(doc, 0), H.UE_PEM, H.UE_KEY)
    try:
        yield doc, doc["contextId"], ue
    finally:
        ue.stop()
        d.delete(doc["contextId"])


def _ue_to_core(ue, conn, tid, text):
    """An MSRP SEND from the UE must reach the core connection intact."""
    up = msrp_send(tid, text)
    ue.send(up)
    assert recv_exactly(conn, len(up)) == up, f"{tid}: not relayed"


def core_active_refused(H):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # bound, never listening: refused
        doc = H.D.create(H.tls_access(),
                         {"transport": "TCP", "remote": remote(dead)})
        cid = doc["contextId"]
        t0 = time.time()
        poll(lambda: any(e["event"] == "TCP_FAILURE" and
                         e["detail"]["leg"] == "core"
                         for e in H.NOTIFY.events(cid)), "TCP_FAILURE core", 3)
        assert time.time() - t0 < 2
    H.D.delete(cid)


def core_passive_never_comes(H):
    doc = H.D.create(H.tls_access(extra={}),
                     {"transport": "TCP/MSRP",
                      "tcp": {"setup": "passive",
                              "handling": "stateAwareChangingSetup",
                              "timeoutMs": 500}})
    cid = doc["contextId"]
    t0 = time.time()
    poll(lambda: any(e["event"] == "TCP_FAILURE" for e in H.NOTIFY.events(cid)),
         "TCP_FAILURE within the bound", 3)
    took = time.time() - t0
    ev = [e for e in H.NOTIFY.events(cid) if e["event"] == "TCP_FAILURE"][0]
    assert ev["detail"]["leg"] in ("access", "core"), ev
    assert 0.4 < took < 1.5, took
    H.D.delete(cid)


def access_active_refused(H):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        core = CoreListener()
        doc = H.D.create({"transport": "TCP/TLS/MSRP", "remote": remote(dead),
                          "notifyUri": H.NOTIFY.uri,
                          "tls": {"setup": "passive", "establish": True,
                                  "remoteFingerprints": [H.UE_FP]}},
                         {"transport": "TCP/MSRP"})
        cid = doc["contextId"]
        poll(lambda: any(e["event"] == "TCP_FAILURE" and
                         e["detail"]["leg"] == "access"
                         for e in H.NOTIFY.events(cid)), "TCP_FAILURE access", 3)
        core.close()
    H.D.delete(cid)


def core_merge_listens_late(H):
    """TCP merge on the core leg: the AGW listens and connects; the core
    starts listening only after the AGW's first connects were refused."""
    core = CoreListener(backlog=False)
    try:
        with _core_tcp_context(H, "merge", core.port) as (doc, cid, ue):
            time.sleep(0.5)  # let some connects be refused first
            core.listen()
            _ue_to_core(ue, core.accept(3), "m1", "merged")
    finally:
        core.close()


def core_merge_core_connects(H):
    with _core_tcp_context(H, "merge") as (doc, cid, ue):
        conn = socket.create_connection(("127.0.0.1", local_port(doc, 1)), 3)
        _ue_to_core(ue, conn, "m2", "merged in")
        conn.close()


def core_passive_refuses_unsignalled_source(H):
    """A passive core leg takes its connection only from the signalled
    address: a connection from 127.0.0.2 is reset and counted
    (refusedSource), the one from 127.0.0.1 relays."""
    with _core_tcp_context(H, "passive") as (doc, cid, ue):
        bad = socket.socket()
        bad.bind(("127.0.0.2", 0))
        bad.connect(("127.0.0.1", local_port(doc, 1)))
        data, closed = recv_until_closed(bad, 5)
        bad.close()
        assert closed and data == b"", "a stranger's connection stayed"
        poll(lambda: H.counters(cid).get("failures", {})
             .get("refusedSource") == 1, "refusedSource counted", 3)
        conn = socket.create_connection(("127.0.0.1", local_port(doc, 1)), 3)
        _ue_to_core(ue, conn, "p1", "from the signalled core")
        conn.close()


def core_passive_waits_for_its_remote(H):
    """No core remote yet (the core's answer is still on its way): the
    core's early connection is not taken until the PATCH that brings its
    address; then it relays (docs/e2ae.md "No remote, no accept")."""
    with _core_tcp_context(H, "passive", core_port=None) as (doc, cid, ue):
        conn = socket.create_connection(("127.0.0.1", local_port(doc, 1)), 3)
        up = msrp_send("w1", "held until the answer")
        ue.send(up)
        conn.settimeout(0.4)
        try:  # a negative check: nothing may be relayed yet
            got = conn.recv(100)
            raise AssertionError(f"relayed before the remote: {got!r}")
        except socket.timeout:
            pass
        st, d = H.D.call("PATCH", f"{AGW}/{cid}", [
            {"op": "add", "path": "/terminations/1/remote",
             "value": remote(9)}], "application/json-patch+json")
        assert st == 200, (st, d)
        assert recv_exactly(conn, len(up)) == up
        assert H.counters(cid).get("failures", {}).get("refusedSource", 0) == 0
        conn.close()


def core_merge_connects_from_its_port(H):
    """TCP merge connects from the signalled local port (RFC 4145, TS
    23.334 6.2.18.4): the core sees the AGW's core port as the source."""
    core = CoreListener()
    try:
        with _core_tcp_context(H, "merge", core.port) as (doc, cid, ue):
            conn = core.accept(3)
            src = conn.getpeername()
            assert src == ("127.0.0.1", local_port(doc, 1)), \
                f"merge connected from {src}, not the core port {local_port(doc, 1)}"
            _ue_to_core(ue, conn, "m3", "from the signalled port")
    finally:
        core.close()


def fingerprint_patch_keeps_the_access_bound(H):
    """Fingerprints PATCHed before the UE connects do not restart the
    access leg's bound: timeoutMs 2000, the PATCH done 1 s after the
    POST was sent: the access TCP_FAILURE comes about 2 s after the POST
    (a restarted bound would give 3 s or more)."""
    core = CoreListener()
    t0 = time.time()
    doc = H.D.create(H.tls_access(fps=(), extra={"tcp": {"timeoutMs": 2000}}),
                     {"transport": "TCP/MSRP", "remote": remote(core.port)})
    cid = doc["contextId"]

    def failed():
        return any(e["event"] == "TCP_FAILURE" for e in H.NOTIFY.events(cid))
    try:
        core.accept(3)
        while time.time() < t0 + 1.0:
            time.sleep(0.01)
        st, d = H.D.call("PATCH", f"{AGW}/{cid}", [
            {"op": "add", "path": "/terminations/0/tls/remoteFingerprints",
             "value": [H.UE_FP]}], "application/json-patch+json")
        assert st == 200, (st, d)
        assert not failed(), "the bound ended before the PATCH: no check"
        poll(failed, "TCP_FAILURE", 4)
        took = time.time() - t0
        ev = [e for e in H.NOTIFY.events(cid) if e["event"] == "TCP_FAILURE"][0]
        assert ev["detail"]["leg"] == "access", ev
        assert 1.9 < took < 2.7, f"the bound ran {took:.2f} s"
    finally:
        core.close()
        H.D.delete(cid)


def dual_stack_ipv4_mapped_peers_accepted(H):
    """dcmfd on a dual-stack media address (--media-bind ::): IPv4 peers
    arrive IPv4-mapped (::ffff:127.0.0.1) and are taken as the signalled
    IPv4 remote on both legs; the core leg connects to an IPv4 core."""
    d2 = Dcmfd(H.DCMFD, ["--media-bind", "::", "--media-advertise",
                       "127.0.0.1"], port_offset=40)
    d2.start()
    core = CoreListener()
    ue = None
    try:
        doc = d2.create(H.tls_access(extra={"remote": remote(9)}),
                        {"transport": "TCP/MSRP", "remote": remote(core.port)})
        ue = s_client(local_port(doc, 0), H.UE_PEM, H.UE_KEY)
        conn = core.accept(3)
        _ue_to_core(ue, conn, "v1", "mapped ue")
        ue.stop()
        ue = None
        d2.delete(doc["contextId"])
        with _core_tcp_context(H, "passive", d=d2) as (doc, _, ue2):
            conn2 = socket.create_connection(("127.0.0.1", local_port(doc, 1)), 3)
            _ue_to_core(ue2, conn2, "v2", "mapped core")
            conn2.close()
    finally:
        if ue:
            ue.stop()
        core.close()
        assert d2.stop() == 0, "the dual-stack dcmfd did not stop cleanly"


def stateless_forwards_establishment(H):
    core = CoreListener()
    doc = H.D.create(H.tls_access(extra={"tcp": {"handling": "stateless"}}),
                     {"transport": "TCP/MSRP", "remote": remote(core.port)})
    cid = doc["contextId"]
    ue = None
    try:
        core.ls.settimeout(0.4)
        try:
            core.ls.accept()
            raise AssertionError("the core leg connected before the UE did")
        except socket.timeout:
            pass
        ue = s_client(local_port(doc, 0), H.UE_PEM, H.UE_KEY)
        conn = core.accept(3)
        up = msrp_send("s1", "stateless")
        ue.send(up)
        assert recv_exactly(conn, len(up)) == up
    finally:
        if ue:
            ue.stop()
        core.close()
        H.D.delete(cid)


# In the order e2ae_tcp.py runs them.
CASES = (
    core_active_refused,
    core_passive_never_comes,
    access_active_refused,
    core_merge_listens_late,
    core_merge_core_connects,
    core_passive_refuses_unsignalled_source,
    core_passive_waits_for_its_remote,
    core_merge_connects_from_its_port,
    fingerprint_patch_keeps_the_access_bound,
    dual_stack_ipv4_mapped_peers_accepted,
    stateless_forwards_establishment,
)
