#!/usr/bin/env python3
"""Integration tests for who may drive dcmfd: mutual TLS and OAuth2 bearer
tokens on the control API (Nmf_MRM and /agw/v1), docs/security.md.

Usage: test_auth.py PATH/TO/dcmfd [SUBSTRING...]

Everything is made here with the openssl command line, independent of
dcmfd's own code: two CAs, a server certificate, client certificates (two
allowed, one from the right CA with a subject not on the list, one from
another CA), an RSA NRF certificate and an EC P-256 NRF key, and JWTs
signed with `openssl dgst -sign`. The clients are curl over h2 with TLS,
each request a fresh process and connection. dcmfd runs on 127.0.0.1 and
is stopped with SIGTERM (exit 0 asserted).

Run under in-netns (see tests/meson.build): one case binds the control API
to 0.0.0.0 to check the start-up warning and runs only when the network
namespace holds nothing but loopback.

Prints "ok - NAME" or "not ok - NAME: REASON" per test and ends with
"N passed, M failed"; exits 1 if any test failed.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_api as api  # noqa: E402  (Dcmfd, check_problem, documents)
from test_api import TestFailure, check, check_eq, check_problem  # noqa: E402

CONTEXTS = api.CONTEXTS
AGW = "/agw/v1/contexts"
AUD = "3f9c2d1e-5b7a-4c8d-9e0f-a1b2c3d4e5f6"  # the MF's NF instance id
ISS = "nrf-7"
TIMEOUT = 10


# ---- material made with openssl -----------------------------------------


def openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True,
                       timeout=TIMEOUT)
    if r.returncode != 0:
        raise TestFailure(f"openssl {' '.join(args[:3])} failed: "
                          f"{r.stderr.decode(errors='replace')[:300]}")
    return r.stdout


class Pki:
    """Keys and certificates in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dcmf-auth-")

    def path(self, name):
        return os.path.join(self.dir, name)

    def ca(self, name, subject):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", subject, "-keyout", self.path(name + ".key"),
                "-out", self.path(name + ".pem"),
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign")

    def leaf(self, name, subject, ca, server=False):
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            if server:
                f.write("subjectAltName=IP:127.0.0.1\n"
                        "extendedKeyUsage=serverAuth\n")
            else:
                f.write("extendedKeyUsage=clientAuth\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-subj", subject, "-keyout", self.path(name + ".key"),
                "-out", self.path(name + ".csr"))
        openssl("x509", "-req", "-in", self.path(name + ".csr"), "-days", "2",
                "-CA", self.path(ca + ".pem"), "-CAkey", self.path(ca + ".key"),
                "-CAcreateserial", "-extfile", ext,
                "-out", self.path(name + ".pem"))

    def nrf_keys(self):
        # RSA: the NRF's certificate is what dcmfd is given.
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=nrf.example.org", "-keyout", self.path("nrf.key"),
                "-out", self.path("nrf.pem"))
        # EC P-256: a bare public key.
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-out", self.path("nrf-ec.key"))
        openssl("pkey", "-in", self.path("nrf-ec.key"), "-pubout",
                "-out", self.path("nrf-ec.pub"))
        # A key dcmfd does not know.
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                "rsa_keygen_bits:2048", "-out", self.path("rogue.key"))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_ecdsa_to_raw(der, size=32):
    """openssl dgst writes ECDSA signatures as DER; JWS wants r || s."""
    check(der[0] == 0x30, "ECDSA signature is not a DER sequence")
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        check(der[pos] == 0x02, "ECDSA signature integer expected")
        n = der[pos + 1]
        out += der[pos + 2:pos + 2 + n].lstrip(b"\0").rjust(size, b"\0")
        pos += 2 + n
    return out


def jwt(pki, claims, key="nrf.key", alg="RS256", header=None, sig=None,
        hmac_key=None):
    """A compact JWS signed by the openssl CLI (or carrying |sig| as is)."""
    head = header or {"alg": alg, "typ": "JWT"}
    signing_input = (b64url(json.dumps(head).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    if sig is None:
        if hmac_key is not None:
            raw = openssl("dgst", "-sha256", "-mac", "HMAC", "-macopt",
                          "hexkey:" + hmac_key.hex(), "-binary",
                          data=signing_input)
        else:
            raw = openssl("dgst", "-sha256", "-binary", "-sign",
                          pki.path(key), data=signing_input)
            if alg.startswith("ES"):
                raw = der_ecdsa_to_raw(raw)
        sig = b64url(raw)
    return signing_input.decode() + "." + sig


def claims(scope="nmf-mrm", aud=AUD, exp_in=600, **extra):
    now = int(time.time())
    c = {"iss": ISS, "sub": "ims-as-instance", "aud": aud, "scope": scope,
         "exp": now + exp_in, "iat": now - 5}
    c.update(extra)
    return c


# ---- dcmfd and curl -------------------------------------------------------


class AuthDcmfd(api.Dcmfd):
    """dcmfd with h2 over TLS; |ready| are the curl options of a client
    that may read /healthz, used to wait for start-up."""

    def __init__(self, pki, *args, ready=()):
        super().__init__(*args, tls=(pki.path("server.pem"),
                                     pki.path("server.key")))
        self.pki = pki
        self.ready = list(ready)

    def curl_mode(self):
        return ["--http2", "--cacert", self.pki.path("ca.pem"), *self.ready]


def client_opts(pki, name):
    if name is None:
        return []
    return ["--cert", pki.path(name + ".pem"), "--key", pki.path(name + ".key")]


def request(d, method, path, client=None, token=None, auth=None, body=None,
            tls12=False):
    """One request from a fresh curl: |client| names a client certificate,
    |token| becomes "Authorization: Bearer", |auth| is a whole header
    value; |tls12| caps TLS at 1.2. Returns an api.Response, or (exit code,
    stderr) when curl got no HTTP response at all (a refused handshake)."""
    cmd = ["curl", "-sS", "-i", "--max-time", "8", "--http2",
           "--cacert", d.pki.path("ca.pem"), *client_opts(d.pki, client),
           "-X", method]
    if tls12:
        cmd += ["--tls-max", "1.2"]
    if token is not None:
        cmd += ["-H", "authorization: Bearer " + token]
    if auth is not None:
        cmd += ["-H", "authorization: " + auth]
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        cmd += ["-H", "content-type: application/json", "--data-binary", "@-"]
    cmd.append(d.url(path))
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=TIMEOUT)
    if r.returncode != 0 and not r.stdout:
        return r.returncode, r.stderr.decode(errors="replace")
    head, sep, rest = r.stdout.partition(b"\r\n\r\n")
    check(sep, f"curl {method} {path}: no header block in {r.stdout[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    check(lines[0].startswith("HTTP/2 "), f"not HTTP/2: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return api.Response(int(lines[0].split()[1]), headers, rest, "curl",
                        method, path)


def check_refused_handshake(d, client, what, log_needle, tls12=False):
    d.log_mark = len(d.log())
    r = request(d, "GET", CONTEXTS, client=client, tls12=tls12)
    check(isinstance(r, tuple),
          f"{what}: the handshake should fail, got HTTP {getattr(r, 'status', r)}")
    # The server logs why, once it has read the client's certificate.
    deadline = time.monotonic() + 3
    while (log_needle not in d.log()[d.log_mark:] and
           time.monotonic() < deadline):
        time.sleep(0.02)
    check(log_needle in d.log()[d.log_mark:],
          f"{what}: dcmfd log lacks {log_needle!r}: {d.log_tail()}")


def check_401(r, error=None):
    p = check_problem(r, 401)
    www = r.header("www-authenticate") or ""
    check(www.startswith('Bearer realm="dcmf"'),
          f"401 needs a Bearer challenge, got {www!r}")
    if error is None:
        check("error=" not in www, f"no error code without a token: {www!r}")
    else:
        check(f'error="{error}"' in www, f"challenge {www!r} lacks {error}")
    return p


def check_403_scope(r, scope):
    check_problem(r, 403)
    www = r.header("www-authenticate") or ""
    check('error="insufficient_scope"' in www and f'scope="{scope}"' in www,
          f"403 challenge {www!r} should name insufficient_scope {scope}")


def check_no_contexts(d, client, token):
    r = request(d, "GET", CONTEXTS, client=client, token=token)
    check_eq(r.status, 200, "list status")
    check_eq(r.json(), [], "contexts after refused requests")


def metric(d, client, name):
    r = request(d, "GET", "/metrics", client=client)
    check_eq(r.status, 200, "/metrics status")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise TestFailure(f"/metrics has no {name}")


# ---- tests ---------------------------------------------------------------

TESTS = []


def test(name):
    def register(fn):
        TESTS.append((name, fn))
        return fn
    return register


def mtls_oauth2_args(pki):
    return ["--control-client-ca", pki.path("ca.pem"),
            "--control-client-subject", "ims-as.operator.example",
            "--control-client-subject", "CN=ims-alg,O=Operator\\, Inc.,C=FR",
            "--oauth2-key", pki.path("nrf.pem"),
            "--oauth2-key", pki.path("nrf-ec.pub"),
            "--oauth2-audience", AUD, "--oauth2-issuer", ISS,
            "--oauth2-leeway", "5"]


@test("mTLS and OAuth2: allowed clients with good tokens drive both APIs")
def _(pki):
    with AuthDcmfd(pki, *mtls_oauth2_args(pki),
                   ready=client_opts(pki, "ims-as")) as d:
        mrm = jwt(pki, claims())
        es = jwt(pki, claims("nmf-mrm dcmf-agw"), key="nrf-ec.key",
                 alg="ES256")
        r = request(d, "POST", CONTEXTS, client="ims-as", token=mrm,
                    body=api.context_doc())
        check_eq(r.status, 201, f"create ({r.body[:300]!r})")
        ctx = r.json()["contextId"]
        # The IMS-ALG, matched by its whole subject, with an ES256 token.
        r = request(d, "GET", f"{CONTEXTS}/{ctx}", client="ims-alg", token=es)
        check_eq(r.status, 200, f"get ({r.body[:200]!r})")
        r = request(d, "GET", AGW, client="ims-alg", token=es)
        check_eq(r.status, 200, f"AGW list ({r.body[:200]!r})")
        r = request(d, "DELETE", f"{CONTEXTS}/{ctx}", client="ims-as",
                    token=mrm)
        check_eq(r.status, 204, "delete")
        # /healthz and /metrics ask for no token by default.
        r = request(d, "GET", "/healthz", client="ims-as")
        check_eq(r.status, 200, "/healthz without a token")
        check_eq(metric(d, "ims-as",
                        'dcmf_control_auth_refused_total{reason="no_token"}'),
                 0, "refusals so far")
        d.stop()


@test("mTLS: no certificate, another CA's, or a subject not on the list")
def _(pki):
    with AuthDcmfd(pki, *mtls_oauth2_args(pki),
                   ready=client_opts(pki, "ims-as")) as d:
        good = jwt(pki, claims())
        check_refused_handshake(d, None, "no client certificate",
                                "no client certificate")
        check_refused_handshake(d, "stranger", "another CA's certificate",
                                "client certificate:")
        for client, needle in ((None, "no client certificate"),
                               ("stranger", "client certificate:")):
            check_refused_handshake(d, client, f"TLS 1.2, {client}", needle,
                                    tls12=True)
        r = request(d, "GET", CONTEXTS, client="ims-as", token=good,
                    tls12=True)
        check_eq(r.status, 200, "an allowed client over TLS 1.2")
        # The CA vouches for it, but its subject is not allowed: the
        # request is answered, with 403 and no Bearer challenge.
        r = request(d, "POST", CONTEXTS, client="intruder", token=good,
                    body=api.context_doc())
        check_problem(r, 403)
        check(r.header("www-authenticate") is None,
              f"a subject refusal has no Bearer challenge: {r.headers}")
        r = request(d, "GET", AGW, client="intruder", token=good)
        check_problem(r, 403)
        # Same CN as an allowed DN entry, different O: the DN must match.
        r = request(d, "GET", CONTEXTS, client="fake-alg", token=good)
        check_problem(r, 403)
        check_no_contexts(d, "ims-as", good)
        check_eq(metric(d, "ims-as", 'dcmf_control_auth_refused_total'
                        '{reason="subject_not_allowed"}'), 3,
                 "subject refusals counted")
        check_eq(metric(d, "ims-as", 'dcmf_control_auth_refused_total'
                        '{reason="no_client_certificate"}'), 2,
                 "handshakes without a certificate counted")
        check_eq(metric(d, "ims-as", 'dcmf_control_auth_refused_total'
                        '{reason="untrusted_client_certificate"}'), 2,
                 "handshakes with another CA's certificate counted")
        d.stop()


@test("OAuth2: every bad token is refused with 401/403 problem+json")
def _(pki):
    with AuthDcmfd(pki, *mtls_oauth2_args(pki),
                   ready=client_opts(pki, "ims-as")) as d:
        c = "ims-as"
        doc = api.context_doc()
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc))
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                          auth="Basic aW1zLWFzOnNlY3JldA=="))
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                          token="not-a-jwt"), "invalid_token")
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                          token=jwt(pki, claims(), key="rogue.key")),
                  "invalid_token")
        # Claims changed after signing.
        good = jwt(pki, claims())
        forged = jwt(pki, claims(exp_in=86400), sig=good.rsplit(".", 1)[1])
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                          token=forged), "invalid_token")
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                          token=jwt(pki, claims(), header={"alg": "none"},
                                    sig="")), "invalid_token")
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                          token=jwt(pki, claims(), header={"alg": "none"},
                                    sig="c2ln")), "invalid_token")
        # HS256 keyed with the NRF's public certificate (key confusion).
        with open(pki.path("nrf.pem"), "rb") as f:
            cert_bytes = f.read()
        p = check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                              token=jwt(pki, claims(), alg="HS256",
                                        hmac_key=cert_bytes)),
                      "invalid_token")
        check("HS256" in p["detail"], f"detail {p['detail']!r}")
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                          token=jwt(pki, claims(aud="another-mf"))),
                  "invalid_token")
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                          token=jwt(pki, claims(iss="nrf-evil"))),
                  "invalid_token")
        p = check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                              token=jwt(pki, claims(exp_in=-60))),
                      "invalid_token")
        check("expired" in p["detail"], f"detail {p['detail']!r}")
        check_401(request(d, "POST", CONTEXTS, client=c, body=doc,
                          token=jwt(pki, claims(nbf=int(time.time()) + 600))),
                  "invalid_token")
        # Scope: none, the AGW's on Nmf_MRM, Nmf_MRM's on the AGW.
        check_403_scope(request(d, "POST", CONTEXTS, client=c, body=doc,
                                token=jwt(pki, claims(scope="nnrf-disc"))),
                        "nmf-mrm")
        check_403_scope(request(d, "POST", CONTEXTS, client=c, body=doc,
                                token=jwt(pki, claims(scope="dcmf-agw"))),
                        "nmf-mrm")
        check_403_scope(request(d, "POST", AGW, client=c, body={},
                                token=good), "dcmf-agw")
        check_401(request(d, "GET", AGW, client=c))
        # Nothing refused reached the router: no context was made, and the
        # token never shows in the log.
        check_no_contexts(d, c, good)
        for tok in (good, forged):
            check(tok.rsplit(".", 1)[1] not in d.log(),
                  "a token signature appears in the log")
        check_eq(metric(d, c, 'dcmf_control_auth_refused_total'
                        '{reason="insufficient_scope"}'), 3, "scope refusals")
        check_eq(metric(d, c, 'dcmf_control_auth_refused_total'
                        '{reason="expired_token"}'), 2, "expiry refusals")
        # Authorised, the AGW API is reached and judges the body itself.
        agw = jwt(pki, claims(scope="dcmf-agw"))
        check_problem(request(d, "POST", AGW, client=c, body={"x": 1},
                              token=agw), 400)
        d.stop()


HMAC_SECRET = b"0123456789abcdef0123456789abcdef!"


@test("OAuth2 alone, auth-metrics 1: /healthz and /metrics need a token")
def _(pki):
    token = jwt(pki, claims("nmf-mrm"), key="nrf-ec.key", alg="ES256")
    with open(pki.path("hs.secret"), "wb") as f:
        f.write(HMAC_SECRET + b"\n")  # the trailing newline is not used
    with AuthDcmfd(pki, "--oauth2-key", pki.path("nrf-ec.pub"),
                   "--oauth2-hmac-secret", pki.path("hs.secret"),
                   "--oauth2-audience", AUD, "--auth-metrics", "1",
                   ready=["-H", "authorization: Bearer " + token]) as d:
        # No client certificate needed without control-client-ca.
        check_401(request(d, "GET", "/healthz"))
        check_401(request(d, "GET", "/metrics"))
        check_eq(request(d, "GET", "/healthz", token=token).status, 200,
                 "/healthz with a token")
        r = request(d, "GET", "/metrics", token=token)
        check_eq(r.status, 200, "/metrics with a token")
        check('dcmf_control_auth_refused_total{reason="no_token"} 2'
              in r.body.decode(), "no_token refusals counted")
        # Other paths want a valid token too before they say 404.
        check_401(request(d, "GET", "/nope"))
        check_eq(request(d, "GET", "/nope", token=token).status, 404,
                 "unknown path with a token")
        # Any issuer is accepted when none is configured.
        t2 = jwt(pki, claims(iss="someone"), key="nrf-ec.key", alg="ES256")
        check_eq(request(d, "GET", CONTEXTS, token=t2).status, 200,
                 "token from any issuer")
        # HS256 with the configured shared secret, and only with it.
        hs = jwt(pki, claims(), alg="HS256", hmac_key=HMAC_SECRET)
        check_eq(request(d, "GET", CONTEXTS, token=hs).status, 200,
                 "HS256 with the shared secret")
        check_401(request(d, "GET", CONTEXTS,
                          token=jwt(pki, claims(), alg="HS256",
                                    hmac_key=HMAC_SECRET + b"\n")),
                  "invalid_token")
        d.stop()


@test("start-up: bad key files and combinations exit 2")
def _(pki):
    def run(*args):
        return subprocess.run([api.DCMFD, "--control", "127.0.0.1:1", *args],
                              capture_output=True, timeout=TIMEOUT)
    with open(pki.path("short.secret"), "wb") as f:
        f.write(b"too short\n")
    cases = [
        (["--oauth2-hmac-secret", pki.path("short.secret"),
          "--oauth2-audience", "x"], "at least 32 bytes"),
        (["--oauth2-key", pki.path("ca.key"), "--oauth2-audience", "x"],
         "not a PEM public key"),
        (["--oauth2-key", pki.path("missing.pem"), "--oauth2-audience", "x"],
         "missing.pem"),
        (["--oauth2-key", pki.path("nrf.pem")], "oauth2-audience"),
        (["--control-cert", pki.path("server.pem"), "--control-key",
          pki.path("server.key"), "--control-client-ca",
          pki.path("server.ext")], "control-client-ca"),
    ]
    for args, needle in cases:
        r = run(*args)
        check_eq(r.returncode, 2, f"exit status for {args} ({r.stderr!r})")
        check(needle.encode() in r.stderr, f"stderr {r.stderr!r} lacks {needle}")


def only_loopback():
    try:
        return os.listdir("/sys/class/net") == ["lo"]
    except OSError:
        return False


@test("start-up: warning for an open control API beyond loopback")
def _(pki):
    with api.Dcmfd() as d:  # 127.0.0.1, no authentication: no warning
        check("no client authentication" not in d.log(), d.log_tail())
        d.stop()
    if not only_loopback():
        print("# skipped the 0.0.0.0 case: not in a loopback-only namespace",
              flush=True)
        return
    d = api.Dcmfd()
    d.args = ["--control", f"0.0.0.0:{d.port}"]
    with d:
        check("no client authentication" in d.log(),
              f"no warning: {d.log_tail()}")
        d.stop()
    # With tokens but without TLS, the warning is about the clear text.
    d = api.Dcmfd("--oauth2-key", pki.path("nrf-ec.pub"),
                  "--oauth2-audience", AUD, "--control", "0.0.0.0:0")
    d.args[-1] = f"0.0.0.0:{d.port}"
    with d:
        check("no client authentication" not in d.log(), d.log_tail())
        check("in the clear" in d.log(), f"no TLS warning: {d.log_tail()}")
        d.stop()


# ---- runner --------------------------------------------------------------


def make_pki():
    pki = Pki()
    pki.ca("ca", "/CN=Test Control CA/O=Operator")
    pki.ca("ca2", "/CN=Other CA/O=Elsewhere")
    pki.leaf("server", "/CN=mf.operator.example", "ca", server=True)
    pki.leaf("ims-as", "/CN=ims-as.operator.example/O=Operator", "ca")
    pki.leaf("ims-alg", "/C=FR/O=Operator, Inc./CN=ims-alg", "ca")
    pki.leaf("fake-alg", "/C=FR/O=Elsewhere/CN=ims-alg", "ca")
    pki.leaf("intruder", "/CN=intruder.example/O=Operator", "ca")
    pki.leaf("stranger", "/CN=ims-as.operator.example/O=Operator", "ca2")
    pki.nrf_keys()
    return pki


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    api.DCMFD = os.path.abspath(argv[1])
    filters = argv[2:]
    passed = failed = 0
    started = time.monotonic()
    pki = make_pki()
    try:
        for name, fn in TESTS:
            if filters and not any(f in name for f in filters):
                continue
            if api.run_case(name, lambda: fn(pki)) == "ok":
                passed += 1
            else:
                failed += 1
    finally:
        pki.cleanup()
    print(f"# {time.monotonic() - started:.1f} s", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
