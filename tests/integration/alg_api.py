#!/usr/bin/env python3
"""dcmf-alg against dcmfd: the requests dcmf-alg builds from SDP are
accepted by /agw/v1 (every response checked against docs/openapi.yaml),
and the SDP it writes from the replies carries what the replies say
(docs/e2ae.md "dcmf-alg").

    alg_api.py DCMFD [SUBSTRING...]

For each path dcmfd serves, both directions of the call: the offer
becomes a POST (201), the offer is rewritten for the other side, that
side's answer (written here from the rewritten offer, as a peer would
answer it) becomes a PATCH (200), and the answer is rewritten back.
dcmf-alg is taken from beside DCMFD. One dcmfd on 127.0.0.1. Prints
"ok - NAME" or "not ok - NAME: REASON"; exits 1 on failure.
"""
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2ae_tcp_lib import AGW, Cases, DcmfAlg, Dcmfd  # noqa: E402

DCMFD = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="alg_api.")
FP = "sha-256 " + ":".join(f"{b:02X}" for b in range(32))


# dcmf-alg |args| < sdp: its stdout, or its stderr when |expect| is not 0.
alg = DcmfAlg(DCMFD, TMP).run


def lines(sdp):
    return sdp.split("\r\n")


def send(req):
    """Makes one request dcmf-alg printed; returns the context."""
    assert "skip" not in req, req
    ctype = "application/json-patch+json" if req["method"] == "PATCH" else "application/json"
    st, doc = D.call(req["method"], req["uri"], req["body"], ctype)
    want = 201 if req["method"] == "POST" else 200
    assert st == want, f"{req['method']} {req['uri']} {st}: {doc}\n{json.dumps(req['body'])}"
    return doc


def post_all(sdp, side, kind="offer"):
    reqs = json.loads(alg(["request", "--side", side, "--kind", kind,
                           "--notify", "http://127.0.0.1:9/ev"], sdp))["requests"]
    return [send(r) for r in reqs]


def patch_all(sdp, side, ctxs, kind="answer"):
    reqs = json.loads(alg(["request", "--side", side, "--kind", kind], sdp,
                          reply=ctxs))["requests"]
    for r, c in zip(reqs, ctxs):
        assert r["uri"] == f"{AGW}/{c['contextId']}", r
    return [send(r) for r in reqs]


def answer_of(offer, addr, port, drop=(), add=(), proto=None):
    """A peer's answer to |offer| (one media line): its own address and
    port, some lines dropped, some added."""
    out = []
    for line in lines(offer):
        if not line or any(line.startswith(d) for d in drop):
            continue
        if line.startswith("c="):
            line = f"c=IN IP4 {addr}"
        if line.startswith("m="):
            f = line.split(" ")
            f[1] = str(port)
            if proto:
                f[2] = proto
            line = " ".join(f)
            out.append(line)
            out.extend(add)
            continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def local(ctx, tid):
    t = next(t for t in ctx["terminations"] if t["terminationId"] == tid)
    return t, t["local"]


def case(fn):
    """A case of |CASES| given a list to put its contexts in: they are
    deleted after it, passed or failed."""
    def run():
        ctxs = []
        try:
            fn(ctxs)
        finally:
            for c in ctxs:
                D.call("DELETE", f"{AGW}/{c['contextId']}")
    run.__name__ = fn.__name__
    CASES(run)
    return fn


WIC_OFFER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "m=audio 50000 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 127.0.0.1", "b=AS:64",
    "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
    "a=ice-ufrag:wicU", "a=ice-pwd:wicpassword0123456789abc",
    f"a=fingerprint:{FP}", "a=setup:actpass",
    "a=tls-id:abcdefghijklmnopqrstuvwxyz", "a=mid:0", "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2", "a=ptime:20", ""])


def run_cases():
    @case
    def srtp_wic_offers(ctxs):
        ctxs += post_all(WIC_OFFER, "access")
        core_offer = alg(["rewrite", "--side", "access", "--kind", "offer"],
                         WIC_OFFER, reply=ctxs)
        core, cl = local(ctxs[0], "core")
        want = [f"m=audio {cl['port']} RTP/AVPF 111", f"c=IN IP4 {cl['ipv4Addr']}",
                f"a=rtcp:{core['localRtcpPort']}", "b=AS:57",
                # offered, the RTCP port its fallback (RFC 8035)
                "a=rtcp-mux"]
        for w in want:
            assert w in lines(core_offer), (w, core_offer)
        for gone in ("a=fingerprint", "a=setup", "a=ice-", "a=group", "a=mid"):
            assert gone not in core_offer, (gone, core_offer)
        # The core answers with rtcp-mux.
        ans = answer_of(core_offer, "127.0.0.1", 30000, drop=("a=rtcp:",),
                        add=("a=rtcp-mux",))
        ctxs[:] = patch_all(ans, "core", ctxs)
        core, _ = local(ctxs[0], "core")
        assert core["rtcpMux"] is True and core["remote"]["port"] == 30000, core
        wic_ans = alg(["rewrite", "--side", "core", "--kind", "answer"], ans,
                      reply=ctxs, offer=WIC_OFFER)
        acc, al = local(ctxs[0], "access")
        h, hexv = acc["dtls"]["localFingerprint"].split(" ")
        for w in (f"m=audio {al['port']} UDP/TLS/RTP/SAVPF 111",
                  f"a=fingerprint:{h.lower()} {hexv}", "a=setup:passive",
                  f"a=tls-id:{acc['dtls']['localTlsId']}",
                  f"a=ice-ufrag:{acc['ice']['localUfrag']}", "a=ice-lite",
                  "a=mid:0", "a=rtcp-mux", "b=AS:64"):
            assert w in lines(wic_ans), (w, wic_ans)

    def core_offers_rtp(ctxs, ue_setup):
        offer = "\r\n".join([
            "v=0", "o=core 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
            "m=audio 31000 RTP/AVP 0", "c=IN IP4 127.0.0.1", "a=rtcp:31001",
            "a=rtpmap:0 PCMU/8000", ""])
        ctxs += post_all(offer, "core")
        core, _ = local(ctxs[0], "core")
        assert core["remote"]["port"] == 31000 and core["remoteRtcpPort"] == 31001, core
        ue_offer = alg(["rewrite", "--side", "core", "--kind", "offer"], offer,
                       reply=ctxs)
        _, al = local(ctxs[0], "access")
        for w in (f"m=audio {al['port']} UDP/TLS/RTP/SAVP 0", "a=setup:actpass",
                  "a=rtcp-mux"):
            assert w in lines(ue_offer), (w, ue_offer)
        ans = answer_of(ue_offer, "127.0.0.1", 52000,
                        drop=("a=setup", "a=fingerprint", "a=tls-id", "a=ice-",
                              "a=candidate", "a=end-of", "a=ice-lite"),
                        add=(f"a=setup:{ue_setup}", f"a=fingerprint:{FP}",
                             "a=tls-id:ue0123456789abcdefghijk",
                             "a=ice-ufrag:ueUF", "a=ice-pwd:uepassword0123456789abcd"))
        ctxs[:] = patch_all(ans, "access", ctxs)
        acc, _ = local(ctxs[0], "access")
        assert acc["dtls"]["setup"] == ue_setup, acc
        assert acc["dtls"]["remoteFingerprints"] == [FP], acc
        assert acc["dtls"]["localSetup"] == ("active" if ue_setup == "passive"
                                             else "passive"), acc
        core_ans = alg(["rewrite", "--side", "access", "--kind", "answer"], ans,
                       reply=ctxs, offer=offer)
        core, cl = local(ctxs[0], "core")
        assert f"m=audio {cl['port']} RTP/AVP 0" in lines(core_ans), core_ans
        assert f"a=rtcp:{core['localRtcpPort']}" in lines(core_ans), core_ans

    @case
    def srtp_core_offers_ue_active(ctxs):
        core_offers_rtp(ctxs, "active")

    @case
    def srtp_core_offers_ue_passive(ctxs):
        core_offers_rtp(ctxs, "passive")

    @case
    def msrp_tls_ue_offers(ctxs):
        offer = "\r\n".join([
            "v=0", "o=ue 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
            "m=message 9 TCP/TLS/MSRP *", "c=IN IP4 127.0.0.1", "a=setup:active",
            f"a=fingerprint:{FP}", "a=3ge2ae:requested",
            "a=path:msrps://127.0.0.1:9/s1;tcp", "a=msrp-cema",
            "a=accept-types:text/plain", ""])
        ctxs += post_all(offer, "access")
        core_offer = alg(["rewrite", "--side", "access", "--kind", "offer"], offer,
                         reply=ctxs)
        _, cl = local(ctxs[0], "core")
        for w in (f"m=message {cl['port']} TCP/MSRP *", "a=setup:active",
                  "a=msrp-cema", "a=path:msrps://127.0.0.1:9/s1;tcp"):
            assert w in lines(core_offer), (w, core_offer)
        assert "3ge2ae" not in core_offer and "fingerprint" not in core_offer
        ans = answer_of(core_offer, "127.0.0.1", 7000, drop=("a=setup", "a=path"),
                        add=("a=setup:passive", "a=path:msrp://127.0.0.1:7000/c;tcp"))
        ctxs[:] = patch_all(ans, "core", ctxs)
        ue_ans = alg(["rewrite", "--side", "core", "--kind", "answer"], ans,
                     reply=ctxs, offer=offer)
        acc, al = local(ctxs[0], "access")
        for w in (f"m=message {al['port']} TCP/TLS/MSRP *",
                  f"a=setup:{acc['tls']['localSetup']}", "a=3ge2ae:applied"):
            assert w in lines(ue_ans), (w, ue_ans)

    def bfcp_core_offers(ctxs, core_setup):
        offer = "\r\n".join([
            "v=0", "o=core 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
            "m=application 7100 TCP/BFCP *", "c=IN IP4 127.0.0.1",
            f"a=setup:{core_setup}", "a=floorctrl:c-s", "a=confid:4321",
            "a=userid:1", "a=floorid:1 mstrm:10", ""])
        ctxs += post_all(offer, "core")
        acc, al = local(ctxs[0], "access")
        ue_offer = alg(["rewrite", "--side", "core", "--kind", "offer"], offer,
                       reply=ctxs)
        want_setup = "active" if core_setup == "active" else "passive"
        assert acc["tls"]["localSetup"] == want_setup, acc
        for w in (f"m=application {al['port']} TCP/TLS/BFCP *",
                  f"a=setup:{want_setup}", "a=3ge2ae:applied", "a=floorctrl:c-s"):
            assert w in lines(ue_offer), (w, ue_offer)
        ue_setup = "passive" if want_setup == "active" else "active"
        ans = answer_of(ue_offer, "127.0.0.1", 9 if ue_setup == "active" else 9000,
                        drop=("a=setup", "a=fingerprint", "a=3ge2ae"),
                        add=(f"a=setup:{ue_setup}", f"a=fingerprint:{FP}"))
        ctxs[:] = patch_all(ans, "access", ctxs)
        acc, _ = local(ctxs[0], "access")
        assert acc["tls"]["remoteFingerprints"] == [FP], acc

    @case
    def bfcp_tls_core_offers_passive(ctxs):
        bfcp_core_offers(ctxs, "passive")

    @case
    def bfcp_tls_core_offers_active(ctxs):
        bfcp_core_offers(ctxs, "active")

    @case
    def bad_sdp_exit_2_names_the_line(ctxs):
        bad = "v=0\r\ns=-\r\nm=audio 1000 RTP/AVP 0\r\na=x\r\n"
        err = alg(["request", "--side", "core", "--kind", "offer"], bad, expect=2)
        assert "line 3:" in err and "c=" in err, err
        err = alg(["request", "--side", "core", "--kind", "offer"],
                  "v=0\r\na=" + "x" * 5000 + "\r\n", expect=2)
        assert "line 2:" in err, err
        err = alg(["rewrite", "--side", "core", "--kind", "offer"], "v=0\r\n",
                  expect=1)
        assert "usage" in err, err


D = Dcmfd(DCMFD)
D.start()
CASES = Cases(D, sys.argv[2:])
try:
    run_cases()
finally:
    rc = D.stop()
CASES.finish(rc, check_rc=False)
