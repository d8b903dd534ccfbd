#!/usr/bin/env python3
"""The T.38 RSA identity arrives after dcmfd serves (docs/e2ae.md "T.38
fax", docs/api.md): while dcmfd still generates it, ECDSA terminations
are served at once and a termination that asks for the RSA certificate
gets 503 with Retry-After; once it is there, the same POST succeeds and
the UE sees the RSA certificate whose fingerprint the answer gave.

    t38_rsa_later.py DCMFD

The generation is held back with dcmfd's --test-delay-rsa-ms (600 s for
the first dcmfd, so it cannot have finished whatever the machine's
load; 200 ms for the second). The UE is `openssl s_client -dtls1_2`
(the UE active: the AGW is the DTLS server). One dcmfd at a time on
127.0.0.1 (meson runs this under in-netns), stopped with SIGTERM. Prints
"ok - NAME" or "not ok - NAME: REASON"; exits 1 on failure. Every wait
is a bounded poll.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2ae_tcp_lib import AGW, Dcmfd, Proc, make_cert, poll  # noqa: E402

DCMFD = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="t38_rsa_later.")
results = []


def case(d):
    def wrap(fn):
        try:
            fn(d)
            print(f"ok - {fn.__name__}", flush=True)
            results.append(True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            print(f"not ok - {fn.__name__}: {type(e).__name__}: {e}",
                  flush=True)
            for line in d.log_tail():
                print(f"#   {line}")
            results.append(False)
        return fn
    return wrap


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body(transport, ue_port, certificate=None, core="UDP"):
    dtls = {"setup": "active", "remoteFingerprints": [UE_FP]}
    if certificate:
        dtls["certificate"] = certificate
    core_term = {"terminationId": "core", "transport": core,
                 "remote": {"ipv4Addr": "127.0.0.1", "port": 9}}
    if core == "RTP/AVP":
        core_term["rtcpMux"] = True
    access = {"terminationId": "access", "transport": transport,
              "dtls": dtls,
              "remote": {"ipv4Addr": "127.0.0.1", "port": ue_port}}
    if transport != "UDP/DTLS":
        access["rtcpMux"] = True
    return {"terminations": [access, core_term]}


def post_with_headers(d, doc):
    """POST with curl -i: (status, headers as a dict of lower-case names,
    body text)."""
    r = subprocess.run(
        ["curl", "-s", "-i", "--http2-prior-knowledge", "-X", "POST",
         "-H", "content-type: application/json", "--data-binary", "@-",
         d.api + AGW], input=json.dumps(doc).encode(),
        capture_output=True, timeout=10)
    head, _, text = r.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, text


def handshake(access_port, ue_port, extra):
    """s_client as the UE; returns it once the handshake is done (its
    output carries the AGW's certificate)."""
    ue = Proc(["openssl", "s_client", "-dtls1_2", "-connect",
               f"127.0.0.1:{access_port}", "-bind", f"127.0.0.1:{ue_port}",
               "-cert", UE_PEM, "-key", UE_KEY, "-showcerts", "-nocommands",
               "-ign_eof", *extra])
    poll(lambda: b"Verify return code" in ue.text() or ue.p.poll() is not None,
         "the DTLS handshake", 15)
    return ue


def agw_cert(ue, doc):
    """The AGW's certificate as the UE saw it (the first in s_client's
    -showcerts output, which `openssl x509` finds by itself): checked
    against the fingerprint the answer gave; returns its text form."""
    out = subprocess.run(["openssl", "x509", "-noout", "-text",
                          "-fingerprint", "-sha256"], input=ue.text(),
                         capture_output=True).stdout
    seen = re.search(rb"sha256 Fingerprint=([0-9A-F:]+)", out, re.I)
    assert seen, out[-400:]
    fp = doc["terminations"][0]["dtls"]["localFingerprint"]
    assert seen.group(1).decode().upper() == fp.split(" ")[1].upper(), \
        "the AGW's certificate is not the one signalled"
    return out


UE_KEY, UE_PEM, UE_FP = make_cert(TMP, "ue")

# ---- a dcmfd whose RSA identity does not come during the test -----------------
D = Dcmfd(DCMFD, ["--test-delay-rsa-ms", "600000"])
D.start()


@case(D)
def ecdsa_dtls_srtp_served_while_rsa_pending(d):
    """An e2ae DTLS-SRTP context is created and its DTLS handshake (with
    use_srtp) completes while the RSA identity is being generated; then a
    T.38 POST still gets 503 with Retry-After, which shows the identity
    was not there during the handshake."""
    ue_port = free_udp_port()
    status, doc = d.call("POST", AGW, body("UDP/TLS/RTP/SAVP", ue_port,
                                           core="RTP/AVP"))
    assert status == 201, (status, doc)
    cid = doc["contextId"]
    ue = handshake(doc["terminations"][0]["local"]["port"], ue_port,
                   ["-use_srtp", "SRTP_AES128_CM_SHA1_80"])
    try:
        assert b"SRTP Extension negotiated, profile=SRTP_AES128_CM_SHA1_80" \
            in ue.text(), ue.text()[-600:]
        assert b"id-ecPublicKey" in agw_cert(ue, doc), "not ECDSA"
        assert b"Verify return code: 18" in ue.text() or \
            b"Verify return code: 0" in ue.text(), ue.text()[-300:]
    finally:
        ue.stop()
        d.delete(cid)
    status, headers, text = post_with_headers(
        d, body("UDP/DTLS", free_udp_port()))
    assert status == 503, (status, text)
    assert headers.get("retry-after") == "1", headers
    assert headers.get("content-type") == "application/problem+json", headers
    assert "RSA identity" in text and "INSUFFICIENT_RESOURCES" in text, text


@case(D)
def t38_with_ecdsa_is_served_while_rsa_pending(d):
    """A T.38 termination that asks for the ECDSA certificate depends on
    nothing that is pending: 201 with the ECDSA fingerprint."""
    status, doc = d.call("POST", AGW, body("UDP/DTLS", free_udp_port(),
                                           certificate="ecdsa"))
    assert status == 201, (status, doc)
    try:
        fp = doc["terminations"][0]["dtls"]["localFingerprint"]
        assert fp.startswith("SHA-256 "), fp
    finally:
        d.delete(doc["contextId"])


rc1 = D.stop()

# ---- a dcmfd whose RSA identity comes 200 ms after its start ------------------
D2 = Dcmfd(DCMFD, ["--test-delay-rsa-ms", "200"])
D2.start()


@case(D2)
def t38_served_once_rsa_is_there(d):
    """The same T.38 POST succeeds once the identity is there (polled:
    503 meanwhile), and the UE sees the RSA certificate the answer gave
    the fingerprint of, with the RFC 7345 suite."""
    ue_port = free_udp_port()
    got = {}

    def created():
        status, doc = d.call("POST", AGW, body("UDP/DTLS", ue_port))
        assert status in (201, 503), (status, doc)
        got["doc"] = doc
        return status == 201
    poll(created, "the T.38 POST accepted", 20)
    doc = got["doc"]
    ue = handshake(doc["terminations"][0]["local"]["port"], ue_port,
                   ["-cipher", "ECDHE-RSA-AES128-GCM-SHA256"])
    try:
        assert b"rsaEncryption" in agw_cert(ue, doc), "not RSA"
        assert b"ECDHE-RSA-AES128-GCM-SHA256" in ue.text(), ue.text()[-400:]
    finally:
        ue.stop()
        d.delete(doc["contextId"])


rc2 = D2.stop()
shutil.rmtree(TMP, ignore_errors=True)
passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed "
      f"(dcmfd exits {rc1}, {rc2})")
sys.exit(0 if results and all(results) and rc1 == 0 and rc2 == 0 else 1)
