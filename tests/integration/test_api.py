#!/usr/bin/env python3
"""Integration tests for dcmfd: the Nmf_MRM control API (TS 29.176) over HTTP/2.

Usage: test_api.py PATH/TO/dcmfd [SUBSTRING...]

Every test starts its own dcmfd on 127.0.0.1 (a free control port, a small
private media port range, --log-level debug, stderr to a temporary file),
talks to it with real clients (curl --http2-prior-knowledge, nghttp, and a
raw HTTP/2 socket where no client can express the case), then stops it with
SIGTERM and checks the exit status is 0 and the media ports are free again.

Optional SUBSTRING arguments run only the tests whose names contain one.
Prints "ok - NAME" or "not ok - NAME: REASON" per test and ends with
"N passed, M failed"; exits 1 if any test failed.

Every response received, from every client, is checked against
docs/openapi.yaml (status listed for the operation, content-type, and the
JSON body against its schema) by openapi_check.py beside this file.

Run with /usr/bin/python3: needs python3-jsonschema and python3-yaml from
Debian, curl (7.88+), nghttp and openssl.
"""

import copy
import errno
import json
import os
import random
import re
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
    sys.exit(f"test_api.py: {e}; install python3-jsonschema and python3-yaml "
             "and run with /usr/bin/python3")

SUBPROCESS_TIMEOUT = 10  # seconds, for every child we wait on
READY_TIMEOUT = 20.0
CONTEXTS = "/nmf-mrm/v1/contexts"
PROBLEM_JSON = "application/problem+json"
FINGERPRINT_RE = re.compile(r"^SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$")
UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ICE_CHARS_RE = re.compile(r"^[A-Za-z0-9+/]+$")

DCMFD = None  # set from argv[1]
OPENAPI = openapi_check.Checker()


class TestFailure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise TestFailure(f"{what}: expected {expected!r}, got {actual!r}")


# ---- ports ---------------------------------------------------------------


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_bind_errno(port):
    """Binds 127.0.0.1:port/udp for a moment: None if that worked, else the
    errno (EADDRINUSE while dcmfd holds the port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return None
    except OSError as e:
        return e.errno
    finally:
        s.close()


def ephemeral_port_low():
    """The first port the kernel hands out for bind(0) and connect()."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_udp_range(n):
    # Below the ephemeral range: a client's socket (curl, nghttp, a phone,
    # any other program on the host) is never given a port of the range,
    # so a port found taken after shutdown is dcmfd's.
    rng = random.Random()
    top = max(10000 + n, ephemeral_port_low() - n)
    for _ in range(200):
        base = rng.randint(10000, top)
        if all(udp_bind_errno(p) is None for p in range(base, base + n)):
            return base, base + n - 1
    raise TestFailure(f"found no {n} free consecutive UDP ports")


def check_port_bound(port, what="media port"):
    e = udp_bind_errno(port)
    check(e == errno.EADDRINUSE,
          f"{what} {port} should be bound by dcmfd (binding it gave "
          f"{errno.errorcode.get(e, e) if e else 'success'})")


def check_port_free(port, what="media port"):
    # The media worker closes its own descriptor of the port right after
    # the control plane released it (a message between threads), so allow
    # it a moment.
    e = udp_bind_errno(port)
    for _ in range(100):
        if e is None:
            break
        time.sleep(0.01)
        e = udp_bind_errno(port)
    check(e is None, f"{what} {port} should be free, binding it failed with "
          f"{errno.errorcode.get(e, e)}")


# ---- the daemon ----------------------------------------------------------


class Dcmfd:
    """One dcmfd process. Use as a context manager: leaving the block kills
    the process if the test did not stop it."""

    def __init__(self, *args, nports=4, tls=None, control=True, ports=True):
        self.args = list(args)
        self.tls = tls  # (cert, key) or None
        self.port = free_tcp_port()
        self.lo, self.hi = free_udp_range(nports)
        self.tmp = tempfile.mkdtemp(prefix="dcmf-it-")
        self.stderr_path = os.path.join(self.tmp, "dcmfd.stderr")
        self.with_control = control
        self.with_ports = ports
        self.proc = None
        self.stopped = False

    def command(self):
        cmd = [DCMFD]
        if self.with_control:
            cmd += ["--control", f"127.0.0.1:{self.port}"]
        if self.with_ports:
            cmd += ["--ports", f"{self.lo}-{self.hi}"]
        cmd += ["--log-level", "debug"]
        if self.tls:
            cmd += ["--control-cert", self.tls[0], "--control-key", self.tls[1]]
        return cmd + self.args

    @property
    def media_ports(self):
        return range(self.lo, self.hi + 1)

    def url(self, path):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def curl_mode(self):
        return ["-k", "--http2"] if self.tls else ["--http2-prior-knowledge"]

    def start(self):
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure(f"dcmfd exited with {self.proc.returncode} "
                                  f"while starting: {self.log_tail()}")
            r = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                 "--max-time", "1", *self.curl_mode(), self.url("/healthz")],
                capture_output=True, timeout=SUBPROCESS_TIMEOUT)
            if r.stdout == b"200":
                return self
            time.sleep(0.05)
        raise TestFailure(f"dcmfd did not answer /healthz within "
                          f"{READY_TIMEOUT} s: {self.log_tail()}")

    def stop(self):
        """SIGTERM, then asserts a graceful exit (0) and free media ports."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise TestFailure("dcmfd did not exit within 10 s of SIGTERM")
        self.stopped = True
        check(rc == 0, f"dcmfd exited with {rc} after SIGTERM, not 0: "
              f"{self.log_tail()}")
        for p in self.media_ports:
            check_port_free(p, "after shutdown, media port")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=SUBPROCESS_TIMEOUT)

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=600):
        text = self.log().strip()
        return ("stderr: ..." + text[-n:]) if text else "stderr empty"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.kill()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False


# ---- clients: curl and nghttp -------------------------------------------


def check_openapi(method, path, status, content_type, body, client):
    """Fails the test when a response does not match docs/openapi.yaml."""
    err = OPENAPI.check(method, path if isinstance(path, str)
                        else path.decode("latin-1"), status, content_type, body)
    if err is not None:
        raise TestFailure(f"{client}: the response does not match "
                          f"docs/openapi.yaml: {err}")


class Response:
    def __init__(self, status, headers, body, client, method, path):
        self.status = status
        self.headers = headers  # lower-case name -> [values]
        self.body = body
        self.client = client
        check_openapi(method, path, status, self.header("content-type"), body,
                      client)

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise TestFailure(f"{self.client}: the {self.status} body is not "
                              f"JSON ({e}): {self.body[:200]!r}")

    def __repr__(self):
        return f"<{self.client} {self.status} {self.body[:160]!r}>"


def encode_body(body):
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def curl(d, method, path, body=None, ctype=None, headers=(), no_length=False):
    """One request with curl. |body| (dict, list, str or bytes) goes on stdin:
    with --data-binary @- (curl reads it all and sends content-length) or,
    with no_length, as an upload (-T -) that has no content-length."""
    cmd = ["curl", "-sS", "-i", "--max-time", "8", *d.curl_mode()]
    if method == "HEAD":
        cmd.append("-I")
    else:
        cmd += ["-X", method]
    if ctype is not None:
        cmd += ["-H", f"content-type: {ctype}"]
    for h in headers:
        cmd += ["-H", h]
    data = encode_body(body)
    if data is not None:
        cmd += ["-T", "-"] if no_length else ["--data-binary", "@-"]
    cmd.append(d.url(path))
    r = subprocess.run(cmd, input=data, capture_output=True,
                       timeout=SUBPROCESS_TIMEOUT)
    if r.returncode != 0:
        raise TestFailure(f"curl {method} {path} exited with {r.returncode}: "
                          f"{r.stderr.decode(errors='replace').strip()}")
    head, sep, rest = r.stdout.partition(b"\r\n\r\n")
    check(sep, f"curl {method} {path}: no header block in {r.stdout[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split()
    check(len(status_line) >= 2 and status_line[0] == "HTTP/2",
          f"curl {method} {path}: not an HTTP/2 response: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Response(int(status_line[1]), headers, rest, "curl", method, path)


NGHTTP_HEADER_RE = re.compile(
    rb"^\[\s*[0-9.]+\] recv \(stream_id=(\d+)\) (:?[a-z0-9-]+): (.*)$", re.M)
NGHTTP_DATA_RE = re.compile(
    rb"\[\s*[0-9.]+\] recv DATA frame <length=(\d+), flags=0x[0-9a-f]+, "
    rb"stream_id=(\d+)>")


def nghttp(d, method, path, body=None, ctype=None, headers=()):
    """One request with nghttp -v. The verbose log names every received
    header; each DATA frame's payload is printed just before its
    "recv DATA frame <length=N" line, so the body is cut out from there."""
    cmd = ["nghttp", "-v", "-t", "8", "-H", f":method: {method}"]
    if ctype is not None:
        cmd += ["-H", f"content-type: {ctype}"]
    for h in headers:
        cmd += ["-H", h]
    data = encode_body(body)
    tmp = None
    try:
        if data is not None:
            fd, tmp = tempfile.mkstemp(prefix="dcmf-it-body-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            cmd += ["-d", tmp]
        cmd.append(d.url(path))
        r = subprocess.run(cmd, capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    finally:
        if tmp:
            os.unlink(tmp)
    out = r.stdout
    headers_seen = {}
    stream = None
    for m in NGHTTP_HEADER_RE.finditer(out):
        stream = stream or m.group(1)
        if m.group(1) == stream:
            headers_seen.setdefault(m.group(2).decode(), []).append(
                m.group(3).decode("latin-1"))
    body_out = b""
    for m in NGHTTP_DATA_RE.finditer(out):
        if m.group(2) == stream:
            n = int(m.group(1))
            body_out += out[m.start() - n:m.start()]
    status = headers_seen.pop(":status", [None])[0]
    check(status is not None, f"nghttp {method} {path} got no response "
          f"(exit {r.returncode}): {r.stderr.decode(errors='replace')[-300:]}")
    return Response(int(status), headers_seen, body_out, "nghttp", method,
                    path)


# ---- a raw HTTP/2 client -------------------------------------------------

# RFC 7541 Appendix A.
HPACK_STATIC = [
    None, (":authority", ""), (":method", "GET"), (":method", "POST"),
    (":path", "/"), (":path", "/index.html"), (":scheme", "http"),
    (":scheme", "https"), (":status", "200"), (":status", "204"),
    (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""),
    ("accept-ranges", ""), ("accept", ""), ("access-control-allow-origin", ""),
    ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
    ("content-disposition", ""), ("content-encoding", ""),
    ("content-language", ""), ("content-length", ""), ("content-location", ""),
    ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
    ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""),
    ("if-range", ""), ("if-unmodified-since", ""), ("last-modified", ""),
    ("link", ""), ("location", ""), ("max-forwards", ""),
    ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""),
    ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""),
    ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""),
    ("www-authenticate", ""),
]

# RFC 7541 Appendix B: code length per symbol (256 = EOS). The code is
# canonical (codes rise with length, then symbol), so lengths define it.
_HUFFMAN_LENGTHS = {
    5: "0 1 2 a c e i o s t",
    6: "sp % - . / 3 4 5 6 7 8 9 = A _ b d f g h l m n p r u",
    7: ": B C D E F G H I J K L M N O P Q R S T U V W Y j k q v w x y z",
    8: "& * , ; X Z",
    10: '! " ( ) ?',
    11: "' + |",
    12: "# >",
    13: "#0 $ @ [ ] ~",
    14: "^ }",
    15: "< ` {",
    19: "\\ #195 #208",
    20: "#128 #130 #131 #162 #184 #194 #224 #226",
    21: "#153 #161 #167 #172 #176 #177 #179 #209 #216 #217 #227 #229 #230",
    22: "#129 #132 #133 #134 #136 #146 #154 #156 #160 #163 #164 #169 #170 "
        "#173 #178 #181 #185 #186 #187 #189 #190 #196 #198 #228 #232 #233",
    23: "#1 #135 #137 #138 #139 #140 #141 #143 #147 #149 #150 #151 #152 "
        "#155 #157 #158 #165 #166 #168 #174 #175 #180 #182 #183 #188 #191 "
        "#197 #231 #239",
    24: "#9 #142 #144 #145 #148 #159 #171 #206 #215 #225 #236 #237",
    25: "#199 #207 #234 #235",
    26: "#192 #193 #200 #201 #202 #205 #210 #213 #218 #219 #238 #240 #242 "
        "#243 #255",
    27: "#203 #204 #211 #212 #214 #221 #222 #223 #241 #244 #245 #246 #247 "
        "#248 #250 #251 #252 #253 #254",
    30: "#10 #13 #22 #256",
}  # every other symbol is 28 bits long


def _build_huffman():
    lengths = [28] * 257
    for n, symbols in _HUFFMAN_LENGTHS.items():
        for s in symbols.split():
            sym = (32 if s == "sp" else int(s[1:]) if len(s) > 1 and s[0] == "#"
                   else ord(s))
            lengths[sym] = n
    # A complete prefix code satisfies Kraft's equality exactly.
    assert sum(2 ** (30 - n) for n in lengths) == 2 ** 30, "Huffman table"
    table, code, prev = {}, 0, None
    for n, sym in sorted((n, sym) for sym, n in enumerate(lengths)):
        if prev is not None:
            code = (code + 1) << (n - prev)
        table[(n, code)] = sym
        prev = n
    return table


HUFFMAN = _build_huffman()


def huffman_decode(data):
    out, code, n = bytearray(), 0, 0
    for byte in data:
        for i in range(7, -1, -1):
            code, n = (code << 1) | ((byte >> i) & 1), n + 1
            sym = HUFFMAN.get((n, code))
            if sym is not None:
                if sym == 256:
                    raise ValueError("EOS in a Huffman string")
                out.append(sym)
                code, n = 0, 0
    if n > 7 or code != (1 << n) - 1:
        raise ValueError("bad Huffman padding")
    return bytes(out)


def hpack_int_decode(data, pos, prefix_bits):
    mask = (1 << prefix_bits) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        b = data[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def hpack_int_encode(value, prefix_bits, first_byte_flags=0):
    mask = (1 << prefix_bits) - 1
    if value < mask:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | mask])
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_encode(fields):
    """Literal header fields without indexing, new name, no Huffman."""
    out = bytearray()
    for name, value in fields:
        name = name.encode() if isinstance(name, str) else name
        value = value.encode() if isinstance(value, str) else value
        out += b"\x00" + hpack_int_encode(len(name), 7) + name
        out += hpack_int_encode(len(value), 7) + value
    return bytes(out)


class HpackDecoder:
    def __init__(self):
        self.dynamic = []  # newest first
        self.max_size = 4096

    def _lookup(self, index):
        if 0 < index < len(HPACK_STATIC):
            return HPACK_STATIC[index]
        i = index - len(HPACK_STATIC)
        if 0 <= i < len(self.dynamic):
            return self.dynamic[i]
        raise ValueError(f"HPACK index {index} out of range")

    def _string(self, data, pos):
        huffman = data[pos] & 0x80
        length, pos = hpack_int_decode(data, pos, 7)
        raw = data[pos:pos + length]
        pos += length
        if huffman:
            raw = huffman_decode(raw)
        return raw.decode("latin-1"), pos

    def _insert(self, name, value):
        self.dynamic.insert(0, (name, value))
        while sum(len(n) + len(v) + 32 for n, v in self.dynamic) > self.max_size:
            self.dynamic.pop()

    def decode(self, block):
        fields, pos = [], 0
        while pos < len(block):
            b = block[pos]
            if b & 0x80:  # indexed field
                index, pos = hpack_int_decode(block, pos, 7)
                fields.append(self._lookup(index))
                continue
            if (b & 0xE0) == 0x20:  # dynamic table size update
                self.max_size, pos = hpack_int_decode(block, pos, 5)
                while self.dynamic and sum(
                        len(n) + len(v) + 32 for n, v in self.dynamic) > self.max_size:
                    self.dynamic.pop()
                continue
            indexing = bool(b & 0x40)
            index, pos = hpack_int_decode(block, pos, 6 if indexing else 4)
            if index:
                name = self._lookup(index)[0]
            else:
                name, pos = self._string(block, pos)
            value, pos = self._string(block, pos)
            fields.append((name, value))
            if indexing:
                self._insert(name, value)
        return fields


DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0, 1, 3, 4, 6, 7, 8, 9)
END_STREAM, END_HEADERS, ACK, PADDED, PRIORITY_FLAG = 0x1, 0x4, 0x1, 0x8, 0x20
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class RawStream:
    def __init__(self):
        self.headers = []
        self.body = b""
        self.ended = False
        self.rst = None  # RST_STREAM error code
        self.method = self.path = None  # of the request, once sent
        self.checked = False  # the response was checked against the API

    @property
    def status(self):
        for name, value in self.headers:
            if name == ":status":
                return int(value)
        return None

    def header(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None


class H2Raw:
    """A minimal HTTP/2 client on a plain socket, for requests no client
    program can make: stalled bodies, idle connections, raw bytes."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.rbuf = b""
        self.eof = False
        self.hpack = HpackDecoder()
        self.streams = {}
        self.goaway = None  # (last_stream_id, error_code)
        self.header_block = None  # (stream, bytes, end_stream) until END_HEADERS

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    @staticmethod
    def frame(ftype, flags, stream, payload=b""):
        return (struct.pack(">I", len(payload))[1:] +
                struct.pack(">BBI", ftype, flags, stream & 0x7FFFFFFF) + payload)

    def start(self, settings=()):
        payload = b"".join(struct.pack(">HI", k, v) for k, v in settings)
        self.send(PREFACE + self.frame(SETTINGS, 0, 0, payload))

    def send_headers(self, stream, fields, end_stream=False):
        st = self.streams.setdefault(stream, RawStream())
        for name, value in fields:
            if name in (":method", ":path") and isinstance(value, bytes):
                value = value.decode("latin-1")
            if name == ":method":
                st.method = value
            elif name == ":path":
                st.path = value
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(self.frame(HEADERS, flags, stream, hpack_encode(fields)))

    def send_data(self, stream, data, end_stream=False):
        self.send(self.frame(DATA, END_STREAM if end_stream else 0, stream, data))

    def request(self, stream, method, path, port, fields=(), body=None):
        pseudo = [(":method", method), (":scheme", "http"),
                  (":authority", f"127.0.0.1:{port}"), (":path", path)]
        self.send_headers(stream, pseudo + list(fields), end_stream=body is None)
        if body is not None:
            self.send_data(stream, body, end_stream=True)

    def _read_frame(self, deadline):
        while len(self.rbuf) < 9 or len(self.rbuf) < 9 + int.from_bytes(
                self.rbuf[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return "timeout"
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            self.rbuf += chunk
        length = int.from_bytes(self.rbuf[:3], "big")
        ftype, flags, stream = struct.unpack(">BBI", self.rbuf[3:9])
        payload = self.rbuf[9:9 + length]
        self.rbuf = self.rbuf[9 + length:]
        return ftype, flags, stream & 0x7FFFFFFF, payload

    def _reply(self, data):
        """Sends an automatic reply; the server may have closed already."""
        try:
            self.send(data)
        except OSError:
            self.eof = True

    def _handle(self, ftype, flags, stream, payload, ack_settings):
        if ftype == SETTINGS and not flags & ACK and ack_settings:
            self._reply(self.frame(SETTINGS, ACK, 0))
        elif ftype == HEADERS:
            if flags & PADDED:
                pad = payload[0]
                payload = payload[1:len(payload) - pad]
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            self.header_block = (stream, payload, bool(flags & END_STREAM))
            if flags & END_HEADERS:
                self._end_headers()
        elif ftype == CONTINUATION and self.header_block:
            s, block, es = self.header_block
            self.header_block = (s, block + payload, es)
            if flags & END_HEADERS:
                self._end_headers()
        elif ftype == DATA:
            st = self.streams.setdefault(stream, RawStream())
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            st.body += payload
            st.ended = st.ended or bool(flags & END_STREAM)
        elif ftype == RST_STREAM:
            self.streams.setdefault(stream, RawStream()).rst = \
                struct.unpack(">I", payload)[0]
        elif ftype == GOAWAY:
            self.goaway = struct.unpack(">II", payload[:8])
            self.goaway = (self.goaway[0] & 0x7FFFFFFF, self.goaway[1])
        elif ftype == PING and not flags & ACK:
            self._reply(self.frame(PING, ACK, 0, payload))

    def _end_headers(self):
        stream, block, end_stream = self.header_block
        self.header_block = None
        st = self.streams.setdefault(stream, RawStream())
        st.headers += self.hpack.decode(block)
        st.ended = st.ended or end_stream

    def pump(self, until, timeout, ack_settings=True):
        """Reads frames until until() is true (returns True), the server
        closes, or |timeout| seconds pass (returns False)."""
        deadline = time.monotonic() + timeout
        while not until():
            f = self._read_frame(deadline)
            if f is None or f == "timeout":
                return until()
            self._handle(*f, ack_settings=ack_settings)
        return True

    def response(self, stream, timeout=3.0):
        st = self.streams.setdefault(stream, RawStream())
        self.pump(lambda: st.ended or st.rst is not None, timeout)
        if st.ended and st.status is not None and not st.checked:
            st.checked = True
            check_openapi(st.method, st.path, st.status,
                          st.header("content-type"), st.body, "raw-h2")
        return st

    def wait_closed(self, timeout):
        """True if the server closes the connection within |timeout|."""
        return self.pump(lambda: self.eof, timeout)


def raw_bytes_exchange(port, data, timeout=3.0):
    """Sends |data| on a fresh TCP connection; returns (everything read,
    closed by the server within |timeout|)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return got, False
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk
        return got, False


# ---- documents and assertions --------------------------------------------

FP_BYTES = bytes(range(0xA0, 0xC0))  # 32 bytes: a SHA-256 digest's length
REMOTE_FP_LOWER = "sha-256 " + ":".join(f"{b:02x}" for b in FP_BYTES)
REMOTE_FP_CANON = "SHA-256 " + ":".join(f"{b:02X}" for b in FP_BYTES)
REMOTE_TLS_ID = "abcdefghij0123456789"  # 20 characters, the RFC 8842 minimum
MP = "/terminations/0/medias/0"  # JSON pointer of the first media
DCP = MP + "/dcMedia"


def dc_media(media_id="m1", setup="ACTPASS", fingerprint=REMOTE_FP_LOWER,
             tls_id=REMOTE_TLS_ID):
    dc = {
        "streams": {"0": {"streamId": 0, "subprotocol": "http", "order": True,
                          "priority": 1},
                    "1": {"subprotocol": "bootstrap", "maxRetry": 3}},
        "maxMessageSize": 64,
        "mdc2Protocol": "UDP/DTLS/SCTP",
        "mediaProxyConfig": "HTTP",
        "remoteDcEndpoint": {},
    }
    if setup is not None:
        dc["securitySetup"] = setup
    if fingerprint is not None:
        dc["remoteDcEndpoint"]["fingerprint"] = fingerprint
    if tls_id is not None:
        dc["remoteDcEndpoint"]["tlsId"] = tls_id
    return {
        "mediaId": media_id,
        "mediaResourceType": "DC",
        "remoteMbEndpoint": {"ip": {"ipv4Addr": "127.0.0.1"},
                             "transport": "UDP", "portNumber": 30000},
        "remoteIceInfo": {"ufrag": "abcd", "pwd": "abcdefghijklmnopqrstuv"},
        "dcMedia": dc,
    }


def context_doc(*medias, term_id="t1"):
    return {"eventNotifyUri": "http://127.0.0.1:9/notify",
            "terminations": [{"terminationId": term_id,
                              "medias": list(medias) or [dc_media()]}]}


def pointer_tokens(pointer):
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def pointer_set(doc, pointer, value):
    *parents, last = pointer_tokens(pointer)
    target = doc
    for t in parents:
        target = target[int(t)] if isinstance(target, list) else target[t]
    if isinstance(target, list) and int(last) == len(target):
        target.append(value)
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


def pointer_del(doc, pointer):
    *parents, last = pointer_tokens(pointer)
    target = doc
    for t in parents:
        target = target[int(t)] if isinstance(target, list) else target[t]
    del target[int(last) if isinstance(target, list) else last]


def check_problem(r, status, param=None, cause=None, body_status=True):
    """Asserts a problem+json response with status, title and detail and,
    when given, the cause and an invalidParams entry for |param|."""
    check_eq(r.status, status, f"{r.client} status (body {r.body[:300]!r})")
    ctype = r.header("content-type") or ""
    check(ctype.split(";")[0].strip() == PROBLEM_JSON,
          f"content-type should be {PROBLEM_JSON}, got {ctype!r}")
    check(r.body, f"the {status} problem response has an empty body")
    p = r.json()
    check(isinstance(p, dict), f"problem body is not an object: {p!r}")
    if body_status:
        check_eq(p.get("status"), status, "problem status member")
    check(isinstance(p.get("title"), str) and p["title"],
          f"problem has no title: {p!r}")
    check(isinstance(p.get("detail"), str) and p["detail"],
          f"problem has no detail: {p!r}")
    if cause is not None:
        check_eq(p.get("cause"), cause, "problem cause")
    if param is not None:
        params = p.get("invalidParams")
        check(isinstance(params, list) and params,
              f"problem has no invalidParams, expected param {param!r}: {p!r}")
        names = [ip.get("param") for ip in params]
        check(param in names, f"invalidParams should name {param!r}, "
              f"it names {names!r}")
        for ip in params:
            check(isinstance(ip.get("reason"), str) and ip["reason"],
                  f"invalidParams entry without a reason: {ip!r}")
    return p


def check_healthy(d):
    r = curl(d, "GET", "/healthz")
    check_eq(r.status, 200, "/healthz status")
    check_eq(r.json().get("status"), "ok", "/healthz body status")


def create(d, doc=None, client=curl):
    r = client(d, "POST", CONTEXTS, doc or context_doc(), ctype="application/json")
    check_eq(r.status, 201, f"create status (body {r.body[:300]!r})")
    return r.json()


def patch(d, ctx_id, ops):
    return curl(d, "PATCH", f"{CONTEXTS}/{ctx_id}", ops,
                ctype="application/json-patch+json")


def local_port(media):
    return media["localMbEndpoint"]["portNumber"]


def metric(d, name):
    """The value of one sample (name including labels) from /metrics."""
    r = curl(d, "GET", "/metrics")
    check_eq(r.status, 200, "/metrics status")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def check_local_media(d, media, requested_setup):
    """Checks the MF-assigned members of one DC MediaInfo."""
    mb = media.get("localMbEndpoint")
    check(isinstance(mb, dict), f"localMbEndpoint missing: {media!r}")
    check_eq(mb.get("ip"), {"ipv4Addr": "127.0.0.1"}, "localMbEndpoint.ip")
    check_eq(mb.get("transport"), "UDP", "localMbEndpoint.transport")
    port = mb.get("portNumber")
    check(isinstance(port, int) and d.lo <= port <= d.hi,
          f"localMbEndpoint.portNumber {port!r} not in {d.lo}-{d.hi}")
    ice = media.get("localIceInfo") or {}
    check(isinstance(ice.get("ufrag"), str) and ICE_CHARS_RE.match(ice["ufrag"])
          and 4 <= len(ice["ufrag"]) <= 256, f"localIceInfo.ufrag: {ice!r}")
    check(isinstance(ice.get("pwd"), str) and ICE_CHARS_RE.match(ice["pwd"])
          and 22 <= len(ice["pwd"]) <= 256, f"localIceInfo.pwd: {ice!r}")
    check_eq(ice.get("iceLite"), True, "localIceInfo.iceLite")
    dc = media["dcMedia"]
    local = dc.get("localDcEndpoint") or {}
    check_eq(local.get("sctpPort"), 5000, "localDcEndpoint.sctpPort")
    check(FINGERPRINT_RE.match(local.get("fingerprint") or ""),
          f"localDcEndpoint.fingerprint {local.get('fingerprint')!r}")
    tls_id = local.get("tlsId")
    check(isinstance(tls_id, str) and re.match(r"^[A-Za-z0-9+/_-]{20,255}$", tls_id),
          f"localDcEndpoint.tlsId {tls_id!r}")
    want = "ACTIVE" if requested_setup == "PASSIVE" else "PASSIVE"
    check_eq(dc.get("securitySetup"), want,
             f"securitySetup answered to {requested_setup!r}")


# ---- test registry -------------------------------------------------------

TESTS = []  # (name, function, known server bug or None)


def test(name, bug=None):
    def register(fn):
        TESTS.append((name, fn, bug))
        return fn
    return register


def daemon_test(name, *args, nports=4, bug=None):
    """A test that gets a started dcmfd and must leave it stoppable: the
    daemon is stopped afterwards with SIGTERM (exit 0, ports free)."""
    def register(fn):
        def run():
            with Dcmfd(*args, nports=nports) as d:
                fn(d)
                d.stop()
        TESTS.append((name, run, bug))
        return fn
    return register


# ---- happy path ----------------------------------------------------------


@daemon_test("create, get, list, head and delete a context (curl)")
def _(d):
    r = curl(d, "POST", CONTEXTS, context_doc(), ctype="application/json")
    check_eq(r.status, 201, f"create status ({r.body[:300]!r})")
    check(r.header("content-type").startswith("application/json"),
          f"create content-type {r.header('content-type')!r}")
    doc = r.json()
    ctx_id = doc.get("contextId")
    check(isinstance(ctx_id, str) and UUID_RE.match(ctx_id),
          f"contextId {ctx_id!r} is not a v4 UUID")
    check_eq(r.header("location"), f"http://127.0.0.1:{d.port}{CONTEXTS}/{ctx_id}",
             "location header")
    media = doc["terminations"][0]["medias"][0]
    check_local_media(d, media, "ACTPASS")
    check_eq(media["dcMedia"]["remoteDcEndpoint"]["fingerprint"], REMOTE_FP_CANON,
             "remote fingerprint normalised")
    check_eq(media["remoteMbEndpoint"], context_doc()["terminations"][0]["medias"][0]
             ["remoteMbEndpoint"], "remoteMbEndpoint kept as sent")
    check_eq(media["dcMedia"]["streams"], dc_media()["dcMedia"]["streams"],
             "streams kept as sent")
    port = local_port(media)
    check_port_bound(port)

    got = curl(d, "GET", f"{CONTEXTS}/{ctx_id}")
    check_eq(got.status, 200, "GET status")
    check_eq(got.json(), doc, "GET document")
    r = curl(d, "HEAD", f"{CONTEXTS}/{ctx_id}")
    check_eq(r.status, 200, "HEAD status")
    check_eq(r.body, b"", "HEAD body")
    check_eq(r.header("content-length"), str(len(got.body)), "HEAD content-length")
    r = curl(d, "GET", CONTEXTS)
    check_eq(r.status, 200, "list status")
    check_eq(r.json(), [doc], "list")
    check_eq(curl(d, "GET", "/healthz").json(), {"status": "ok", "contexts": 1},
             "/healthz")
    check_eq(metric(d, "dcmf_contexts"), 1, "dcmf_contexts")
    check_eq(metric(d, "dcmf_media_ports_in_use"), 1, "dcmf_media_ports_in_use")

    r = curl(d, "DELETE", f"{CONTEXTS}/{ctx_id}")
    check_eq(r.status, 204, "DELETE status")
    check_eq(r.body, b"", "DELETE body")
    check_port_free(port, "after DELETE, media port")
    check_problem(curl(d, "GET", f"{CONTEXTS}/{ctx_id}"), 404,
                  cause="CONTEXT_NOT_FOUND")
    check_problem(curl(d, "DELETE", f"{CONTEXTS}/{ctx_id}"), 404,
                  cause="CONTEXT_NOT_FOUND")
    check_eq(curl(d, "GET", CONTEXTS).json(), [], "list after DELETE")
    check_eq(metric(d, "dcmf_media_ports_in_use"), 0, "ports in use after DELETE")


@daemon_test("create and get with nghttp, cross-checked with curl")
def _(d):
    r = nghttp(d, "POST", CONTEXTS, context_doc(), ctype="application/json")
    check_eq(r.status, 201, f"nghttp create status ({r.body[:300]!r})")
    doc = r.json()
    ctx_id = doc["contextId"]
    check_eq(r.header("location"), f"http://127.0.0.1:{d.port}{CONTEXTS}/{ctx_id}",
             "location header")
    check_local_media(d, doc["terminations"][0]["medias"][0], "ACTPASS")
    check_port_bound(local_port(doc["terminations"][0]["medias"][0]))
    r = nghttp(d, "GET", f"{CONTEXTS}/{ctx_id}")
    check_eq(r.status, 200, "nghttp GET status")
    check_eq(r.json(), doc, "nghttp GET document")
    check_eq(curl(d, "GET", f"{CONTEXTS}/{ctx_id}").json(), doc, "curl GET document")
    r = nghttp(d, "GET", f"{CONTEXTS}/00000000-0000-4000-8000-000000000000")
    check_problem(r, 404, cause="CONTEXT_NOT_FOUND")
    r = nghttp(d, "DELETE", f"{CONTEXTS}/{ctx_id}")
    check_eq(r.status, 204, "nghttp DELETE status")


@daemon_test("securitySetup: ACTPASS/ACTIVE/absent -> PASSIVE, PASSIVE -> ACTIVE")
def _(d):
    ports = set()
    for setup in ("ACTPASS", "ACTIVE", "PASSIVE", None):
        doc = create(d, context_doc(dc_media(setup=setup)))
        media = doc["terminations"][0]["medias"][0]
        check_local_media(d, media, setup)
        ports.add(local_port(media))
    check_eq(len(ports), 4, "distinct media ports for 4 contexts")
    for p in ports:
        check_port_bound(p)
    check_eq(len(curl(d, "GET", CONTEXTS).json()), 4, "contexts listed")
    # The daemon is stopped with all four contexts alive: the shutdown must
    # still be graceful and release every port.


@daemon_test("content-type with parameters and letter case is accepted")
def _(d):
    r = curl(d, "POST", CONTEXTS, context_doc(), ctype="Application/JSON; charset=utf-8")
    check_eq(r.status, 201, f"create status ({r.body[:200]!r})")
    ctx_id = r.json()["contextId"]
    r = curl(d, "PATCH", f"{CONTEXTS}/{ctx_id}",
             [{"op": "test", "path": MP + "/mediaId", "value": "m1"}],
             ctype="application/json-patch+json; charset=utf-8")
    check_eq(r.status, 200, f"PATCH status ({r.body[:200]!r})")


@daemon_test("PATCH: fingerprint, add and remove DC media, new tlsId, test op")
def _(d):
    doc = create(d, context_doc(dc_media(fingerprint=None)))
    ctx_id = doc["contextId"]
    m1 = doc["terminations"][0]["medias"][0]
    p1 = local_port(m1)
    path = f"{CONTEXTS}/{ctx_id}"

    # add remoteDcEndpoint.fingerprint in lower case: stored in upper case
    r = patch(d, ctx_id, [
        {"op": "test", "path": MP + "/mediaId", "value": "m1"},
        {"op": "add", "path": DCP + "/remoteDcEndpoint/fingerprint",
         "value": REMOTE_FP_LOWER}])
    check_eq(r.status, 200, f"PATCH fingerprint status ({r.body[:300]!r})")
    doc = r.json()
    m1b = doc["terminations"][0]["medias"][0]
    check_eq(m1b["dcMedia"]["remoteDcEndpoint"]["fingerprint"], REMOTE_FP_CANON,
             "patched fingerprint normalised")
    for key in ("localMbEndpoint", "localIceInfo"):
        check_eq(m1b[key], m1[key], f"{key} unchanged by PATCH")
    check_eq(m1b["dcMedia"]["localDcEndpoint"], m1["dcMedia"]["localDcEndpoint"],
             "localDcEndpoint unchanged by PATCH")
    check_eq(curl(d, "GET", path).json(), doc, "GET after PATCH")

    # add a second DC media: it gets its own bound port
    m2_req = dc_media("m2", setup="PASSIVE", tls_id="zyxwvutsrqponmlkjihg")
    r = patch(d, ctx_id, [{"op": "add", "path": "/terminations/0/medias/-",
                           "value": m2_req}])
    check_eq(r.status, 200, f"PATCH add media status ({r.body[:300]!r})")
    doc = r.json()
    medias = doc["terminations"][0]["medias"]
    check_eq([m["mediaId"] for m in medias], ["m1", "m2"], "media ids")
    check_local_media(d, medias[1], "PASSIVE")
    p2 = local_port(medias[1])
    check(p2 != p1, f"second media got the first media's port {p1}")
    check_port_bound(p1)
    check_port_bound(p2)
    check_eq(metric(d, "dcmf_media_ports_in_use"), 2, "ports in use")
    m2_tls = medias[1]["dcMedia"]["localDcEndpoint"]["tlsId"]

    # replace the remote tlsId of m1: a new association, a new local tlsId
    old_tls = medias[0]["dcMedia"]["localDcEndpoint"]["tlsId"]
    r = patch(d, ctx_id, [{"op": "replace",
                           "path": DCP + "/remoteDcEndpoint/tlsId",
                           "value": "NEWREMOTEtlsid-0123456789"}])
    check_eq(r.status, 200, f"PATCH tlsId status ({r.body[:300]!r})")
    medias = r.json()["terminations"][0]["medias"]
    new_tls = medias[0]["dcMedia"]["localDcEndpoint"]["tlsId"]
    check(new_tls != old_tls, "local tlsId did not change with the remote tlsId")
    check_eq(local_port(medias[0]), p1, "m1 port after tlsId change")
    check_eq(medias[1]["dcMedia"]["localDcEndpoint"]["tlsId"], m2_tls,
             "m2 local tlsId (its remote tlsId did not change)")

    # remove m2: its port is released, m1 keeps its own
    r = patch(d, ctx_id, [
        {"op": "test", "path": "/terminations/0/medias/1/mediaId", "value": "m2"},
        {"op": "remove", "path": "/terminations/0/medias/1"}])
    check_eq(r.status, 200, f"PATCH remove media status ({r.body[:300]!r})")
    doc = r.json()
    check_eq([m["mediaId"] for m in doc["terminations"][0]["medias"]], ["m1"],
             "media ids after remove")
    check_port_free(p2, "after removing m2, its port")
    check_port_bound(p1)

    # MF-set members may be omitted: they are put back unchanged
    r = patch(d, ctx_id, [{"op": "remove", "path": MP + "/localIceInfo"}])
    check_eq(r.status, 200, f"PATCH omitting localIceInfo ({r.body[:300]!r})")
    check_eq(r.json(), doc, "document after omitting an MF-set member")

    # the peer turns PASSIVE -> ACTPASS: the MF answers PASSIVE again
    doc2 = create(d, context_doc(dc_media(setup="PASSIVE")))
    check_eq(doc2["terminations"][0]["medias"][0]["dcMedia"]["securitySetup"],
             "ACTIVE", "setup for a passive peer")
    r = patch(d, doc2["contextId"], [{"op": "replace", "path": DCP + "/securitySetup",
                                      "value": "ACTPASS"}])
    check_eq(r.status, 200, f"PATCH securitySetup ({r.body[:300]!r})")
    check_eq(r.json()["terminations"][0]["medias"][0]["dcMedia"]["securitySetup"],
             "PASSIVE", "setup after the peer turned ACTPASS")
    check_eq(curl(d, "GET", path).json(), doc, "final GET")


@daemon_test("create: MF members and contextId are overwritten, unknown ones kept")
def _(d):
    req = context_doc()
    req["contextId"] = "chosen-by-client"
    req["vendorExtension"] = {"kept": [1, 2]}
    media = req["terminations"][0]["medias"][0]
    media["localMbEndpoint"] = {"ip": {"ipv4Addr": "10.0.0.1"}, "transport": "UDP",
                                "portNumber": 1}
    media["dcMedia"]["localDcEndpoint"] = {"sctpPort": 1, "tlsId": "x" * 20}
    del media["dcMedia"]["maxMessageSize"]
    media["dcMedia"]["remoteDcEndpoint"]["tlsId"] = "  " + REMOTE_TLS_ID + "\t"
    doc = create(d, req)
    check(UUID_RE.match(doc["contextId"]), f"contextId {doc['contextId']!r}")
    check_eq(doc["vendorExtension"], {"kept": [1, 2]}, "unknown member")
    m = doc["terminations"][0]["medias"][0]
    check_local_media(d, m, "ACTPASS")
    check_port_bound(local_port(m))
    check_eq(m["dcMedia"]["maxMessageSize"], 64, "maxMessageSize filled in")
    check_eq(m["dcMedia"]["remoteDcEndpoint"]["tlsId"], REMOTE_TLS_ID,
             "remote tlsId with white space trimmed")


@daemon_test("ETag on every context document; If-Match guards PATCH and DELETE")
def _(d):
    r = curl(d, "POST", CONTEXTS, context_doc(), ctype="application/json")
    check_eq(r.status, 201, "create status")
    tag1 = r.header("etag")
    check(tag1 and re.match(r'^"[0-9]+"$', tag1), f"strong ETag on 201: {tag1!r}")
    path = f"{CONTEXTS}/{r.json()['contextId']}"
    check_eq(curl(d, "GET", path).header("etag"), tag1, "ETag on GET")
    check_eq(nghttp(d, "HEAD", path).header("etag"), tag1, "ETag on HEAD")
    check_eq(curl(d, "GET", CONTEXTS).header("etag"), None, "no ETag on the list")
    ops = [{"op": "replace", "path": DCP + "/maxMessageSize", "value": 32}]
    r = curl(d, "PATCH", path, ops, ctype="application/json-patch+json",
             headers=[f"if-match: {tag1}"])
    check_eq(r.status, 200, f"PATCH with the current tag ({r.body[:200]!r})")
    tag2 = r.header("etag")
    check(tag2 and tag2 != tag1, f"ETag after a change: {tag2!r} (was {tag1!r})")
    before = curl(d, "GET", path).json()
    for stale in (tag1, f"W/{tag2}", '"nope", ' + tag1):
        r = curl(d, "PATCH", path, [{"op": "remove", "path": DCP + "/maxMessageSize"}],
                 ctype="application/json-patch+json", headers=[f"if-match: {stale}"])
        check_problem(r, 412, param="header if-match")
        check_eq(r.header("etag"), None, f"no ETag on the 412 for {stale}")
        check_problem(curl(d, "DELETE", path, headers=[f"if-match: {stale}"]), 412,
                      param="header if-match")
    check_eq(curl(d, "GET", path).json(), before, "context after the 412s")
    r = curl(d, "PATCH", path, ops, ctype="application/json-patch+json",
             headers=[f'if-match: "x", {tag2}'])
    check_eq(r.status, 200, "PATCH with the tag in a list")
    tag3 = r.header("etag")
    check(tag3 not in (tag1, tag2), f"a third change, a third tag: {tag3!r}")
    check_eq(curl(d, "DELETE", path, headers=[f"if-match: {tag3}"]).status, 204,
             "DELETE with the current tag")
    check_problem(curl(d, "DELETE", path, headers=["if-match: *"]), 404,
                  cause="CONTEXT_NOT_FOUND")


@daemon_test("a request as a client generated from the official OpenAPI sends it")
def _(d):
    # Every default of TS 29.571 filled in (maxRetry 0 with maxTime 0,
    # priority 256, streamId), the optional members dcmfd does not act on
    # (arMedia, mediaProcessingUri, appBindingInfo), and a localMdc1Endpoint
    # the MF must replace with its own.
    req = context_doc()
    media = req["terminations"][0]["medias"][0]
    media["arMedia"] = {"mediaProcessingSpec": "spec-1"}
    media["mediaProcessingUri"] = "http://127.0.0.1:9/mp"
    dc = media["dcMedia"]
    dc["streams"] = {
        sid: {"streamId": int(sid), "subprotocol": "http", "order": True,
              "maxRetry": 0, "maxTime": 0, "priority": 256,
              "appBindingInfo": "app-" + sid}
        for sid in ("0", "10", "1000")}
    dc["streams"]["1000"]["maxRetry"] = 2
    dc["remoteMdc1Endpoint"] = {"ip": {"ipv4Addr": "127.0.0.1"}, "transport": "TCP",
                                "portNumber": 9}
    dc["localMdc1Endpoint"] = {"ip": {"ipv4Addr": "192.0.2.99"}, "transport": "TCP",
                               "portNumber": 4321}
    for client in (curl, nghttp):
        doc = create(d, req, client=client)
        m = doc["terminations"][0]["medias"][0]
        check_eq(m["arMedia"], media["arMedia"], "arMedia kept")
        check_eq(m["mediaProcessingUri"], media["mediaProcessingUri"],
                 "mediaProcessingUri kept")
        check_eq(m["dcMedia"]["streams"], dc["streams"], "streams kept as sent")
        check_eq(m["dcMedia"]["localMdc1Endpoint"],
                 {"ip": {"ipv4Addr": "127.0.0.1"}, "transport": "TCP", "portNumber": 0},
                 "localMdc1Endpoint filled in by the MF")
        check_local_media(d, m, "ACTPASS")
    # Two non-zero limits on one stream still conflict (RFC 8832).
    dc["streams"]["1000"]["maxTime"] = 100
    r = curl(d, "POST", CONTEXTS, req, ctype="application/json")
    check_problem(r, 400, param=DCP + "/streams/1000", cause="MANDATORY_IE_INCORRECT")


@daemon_test("PATCH copy of a media: the copy gets its own port and values")
def _(d):
    doc = create(d)
    m1 = doc["terminations"][0]["medias"][0]
    r = patch(d, doc["contextId"], [
        {"op": "copy", "from": MP, "path": "/terminations/0/medias/-"},
        {"op": "replace", "path": "/terminations/0/medias/1/mediaId", "value": "m3"},
        {"op": "move", "from": "/terminations/0/medias/1/dcMedia/streams/1",
         "path": "/terminations/0/medias/1/dcMedia/streams/7"}])
    check_eq(r.status, 200, f"PATCH status ({r.body[:300]!r})")
    m1b, m3 = r.json()["terminations"][0]["medias"]
    check_eq(m1b, m1, "the original media")
    check_local_media(d, m3, "PASSIVE")  # the copied MF role reads as the peer's
    check(local_port(m3) != local_port(m1), "the copy kept the original's port")
    check_port_bound(local_port(m3))
    check(m3["localIceInfo"] != m1["localIceInfo"], "the copy kept the ICE values")
    check_eq(sorted(m3["dcMedia"]["streams"]), ["0", "7"], "streams after move")


@daemon_test("port exhaustion: 503 INSUFFICIENT_RESOURCES, no leak, recovery",
             nports=2)
def _(d):
    a = create(d)
    b = create(d)
    pa = local_port(a["terminations"][0]["medias"][0])
    pb = local_port(b["terminations"][0]["medias"][0])
    check_eq({pa, pb}, set(d.media_ports), "the two ports of the range")
    r = curl(d, "POST", CONTEXTS, context_doc(), ctype="application/json")
    check_problem(r, 503, cause="INSUFFICIENT_RESOURCES")
    check_eq(len(curl(d, "GET", CONTEXTS).json()), 2, "contexts after the 503")
    check_eq(curl(d, "DELETE", f"{CONTEXTS}/{a['contextId']}").status, 204, "DELETE")
    check_port_free(pa, "after DELETE, media port")
    # two DC media but one free port: the half-made context is undone
    r = curl(d, "POST", CONTEXTS, context_doc(dc_media("m1"), dc_media("m2")),
             ctype="application/json")
    check_problem(r, 503, cause="INSUFFICIENT_RESOURCES")
    check_port_free(pa, "after a failed two-media create, media port")
    check_eq(metric(d, "dcmf_media_ports_in_use"), 1, "ports in use")
    # a PATCH adding a media when no port is left fails atomically too
    c = create(d)
    r = patch(d, c["contextId"], [{"op": "add", "path": "/terminations/0/medias/-",
                                   "value": dc_media("m9")}])
    check_problem(r, 503, cause="INSUFFICIENT_RESOURCES")
    check_eq(len(curl(d, "GET", f"{CONTEXTS}/{c['contextId']}").json()
                 ["terminations"][0]["medias"]), 1, "media after the failed PATCH")
    check_eq(curl(d, "DELETE", f"{CONTEXTS}/{b['contextId']}").status, 204, "DELETE")
    create(d)  # and a create works again


@daemon_test("--max-contexts limit answers 503", "--max-contexts", "1")
def _(d):
    create(d)
    r = curl(d, "POST", CONTEXTS, context_doc(), ctype="application/json")
    check_problem(r, 503, cause="INSUFFICIENT_RESOURCES")
    check_eq(metric(d, "dcmf_media_ports_in_use"), 1, "ports in use")


@daemon_test("/metrics counts requests by method and status")
def _(d):
    curl(d, "GET", "/nope")
    curl(d, "GET", "/nope")
    r = curl(d, "GET", "/metrics")
    check_eq(r.status, 200, "/metrics status")
    check(r.header("content-type").startswith("text/plain"),
          f"/metrics content-type {r.header('content-type')!r}")
    check_eq(metric(d, 'dcmf_api_requests_total{method="GET",status="404"}'), 2,
             "GET 404 counter")
    check_eq(metric(d, "dcmf_media_ports"), 4, "dcmf_media_ports")
    r = curl(d, "HEAD", "/healthz")
    check_eq((r.status, r.body), (200, b""), "HEAD /healthz")


# ---- malformed and hostile requests --------------------------------------
# Each case runs against its own dcmfd and must get the exact status with a
# problem+json body; afterwards the daemon must still serve /healthz.

MALFORMED = []  # (name, run(d) -> Response, status, param, cause, args, bug)


def malformed(name, status, param=None, cause=None, args=(), bug=None):
    def register(fn):
        MALFORMED.append((name, fn, status, param, cause, args, bug))
        return fn
    return register


def post_raw(body, ctype="application/json"):
    return lambda d: curl(d, "POST", CONTEXTS, body, ctype=ctype)


def schema_case(name, change, param, doc=None):
    """A create whose document breaks the schema at |param|. |change| is
    ("set", pointer, value) or ("del", pointer)."""
    def run(d):
        body = copy.deepcopy(doc) if doc is not None else context_doc()
        if change[0] == "set":
            pointer_set(body, change[1], change[2])
        else:
            pointer_del(body, change[1])
        return curl(d, "POST", CONTEXTS, body, ctype="application/json")
    MALFORMED.append((name, run, 400, param, "MANDATORY_IE_INCORRECT", (), None))


MALFORMED += [
    ("bad JSON", post_raw(b'{"terminations": ['), 400, None, "INVALID_MSG_FORMAT", (), None),
    ("trailing garbage after the JSON",
     post_raw(json.dumps(context_doc()) + " x"), 400, None, "INVALID_MSG_FORMAT", (), None),
    ("duplicate keys",
     post_raw(b'{"terminations":[],"terminations":[]}'), 400, None,
     "INVALID_MSG_FORMAT", (), None),
    ("empty body", post_raw(b""), 400, None, "INVALID_MSG_FORMAT", (), None),
    ("invalid UTF-8 in a string", post_raw(b'{"eventNotifyUri":"http://a/\xff"}'),
     400, None, "INVALID_MSG_FORMAT", (), None),
    ("JSON array instead of an object", post_raw(b"[]"), 400, "/",
     "MANDATORY_IE_INCORRECT", (), None),
]
schema_case("terminations missing", ("del", "/terminations"), "/terminations")
schema_case("terminations not an array", ("set", "/terminations", {}), "/terminations")
schema_case("terminations empty", ("set", "/terminations", []), "/terminations")
schema_case("medias empty", ("set", "/terminations/0/medias", []),
            "/terminations/0/medias")
schema_case("mediaId is a number", ("set", MP + "/mediaId", 7), MP + "/mediaId")
schema_case("portNumber is a string",
            ("set", MP + "/remoteMbEndpoint/portNumber", "30000"),
            MP + "/remoteMbEndpoint/portNumber")
schema_case("portNumber out of range",
            ("set", MP + "/remoteMbEndpoint/portNumber", 65536),
            MP + "/remoteMbEndpoint/portNumber")
schema_case("portNumber negative", ("set", MP + "/remoteMbEndpoint/portNumber", -1),
            MP + "/remoteMbEndpoint/portNumber")
schema_case("ipv4Addr invalid", ("set", MP + "/remoteMbEndpoint/ip/ipv4Addr", "256.1.1.1"),
            MP + "/remoteMbEndpoint/ip/ipv4Addr")
schema_case("two IP address variants",
            ("set", MP + "/remoteMbEndpoint/ip", {"ipv4Addr": "127.0.0.1",
                                                  "ipv6Addr": "::1"}),
            MP + "/remoteMbEndpoint/ip")
schema_case("securitySetup not an enum value", ("set", DCP + "/securitySetup", "HOLDCONN"),
            DCP + "/securitySetup")
schema_case("mediaProxyConfig not an enum value",
            ("set", DCP + "/mediaProxyConfig", "SOCKS"), DCP + "/mediaProxyConfig")
schema_case("mdc2Protocol not an enum value", ("set", DCP + "/mdc2Protocol", "QUIC"),
            DCP + "/mdc2Protocol")
schema_case("streams empty", ("set", DCP + "/streams", {}), DCP + "/streams")
schema_case("stream key abc", ("set", DCP + "/streams/abc", {}), DCP + "/streams/abc")
schema_case("stream key 070000", ("set", DCP + "/streams/070000", {}),
            DCP + "/streams/070000")
schema_case("stream key with a slash is escaped in the pointer",
            ("set", DCP + "/streams/a~1b", {}), DCP + "/streams/a~1b")
schema_case("streamId differs from its key", ("set", DCP + "/streams/1/streamId", 2),
            DCP + "/streams/1/streamId")
schema_case("maxRetry and maxTime both set", ("set", DCP + "/streams/1/maxTime", 100),
            DCP + "/streams/1")
schema_case("order is not a boolean", ("set", DCP + "/streams/0/order", "yes"),
            DCP + "/streams/0/order")
schema_case("maxMessageSize 65", ("set", DCP + "/maxMessageSize", 65),
            DCP + "/maxMessageSize")
schema_case("fingerprint with an unknown hash",
            ("set", DCP + "/remoteDcEndpoint/fingerprint",
             REMOTE_FP_CANON.replace("SHA-256", "SHA-257")),
            DCP + "/remoteDcEndpoint/fingerprint")
schema_case("fingerprint of the wrong length",
            ("set", DCP + "/remoteDcEndpoint/fingerprint", REMOTE_FP_CANON[:-3]),
            DCP + "/remoteDcEndpoint/fingerprint")
schema_case("tlsId too short", ("set", DCP + "/remoteDcEndpoint/tlsId", "short"),
            DCP + "/remoteDcEndpoint/tlsId")
schema_case("remoteIceInfo pwd too short", ("set", MP + "/remoteIceInfo/pwd", "abc"),
            MP + "/remoteIceInfo/pwd")
schema_case("eventNotifyUri not http", ("set", "/eventNotifyUri", "ftp://127.0.0.1/x"),
            "/eventNotifyUri")
schema_case("mediaResourceType not DC", ("set", MP + "/mediaResourceType", "AUDIO"),
            MP + "/mediaResourceType")
schema_case("DC media without dcMedia", ("del", DCP), DCP)
schema_case("duplicate terminationId",
            ("set", "/terminations/1", context_doc()["terminations"][0]),
            "/terminations/1/terminationId", doc={"terminations": [
                context_doc()["terminations"][0]]})
schema_case("duplicate mediaId", ("set", "/terminations/0/medias/1", dc_media("m1")),
            "/terminations/0/medias/1/mediaId")


@malformed("several errors are all listed", 400, cause="MANDATORY_IE_INCORRECT")
def _(d):
    body = context_doc()
    pointer_set(body, MP + "/mediaId", 7)
    pointer_set(body, DCP + "/maxMessageSize", 0)
    r = curl(d, "POST", CONTEXTS, body, ctype="application/json")
    names = {ip["param"] for ip in r.json().get("invalidParams", [])}
    check({MP + "/mediaId", DCP + "/maxMessageSize"} <= names,
          f"invalidParams {names!r} should name both errors")
    return r


@malformed("body over --max-body with content-length (nghttp)", 413,
           cause="PAYLOAD_TOO_LARGE", args=("--max-body", "4096"))
def _(d):
    # curl 7.88 drops a response that arrives before its upload finished
    # when RST_STREAM(NO_ERROR) follows, so nghttp is used here.
    return nghttp(d, "POST", CONTEXTS, b" " * 5000, ctype="application/json")


@malformed("body over --max-body without content-length (raw h2)", 413,
           cause="PAYLOAD_TOO_LARGE", args=("--max-body", "4096"))
def _(d):
    with H2Raw(d.port) as h:
        h.start()
        h.send_headers(1, [(":method", "POST"), (":scheme", "http"),
                           (":authority", f"127.0.0.1:{d.port}"), (":path", CONTEXTS),
                           ("content-type", "application/json")])
        for _ in range(3):
            h.send_data(1, b" " * 2000)
        return raw_response(h.response(1))


def raw_response(st):
    headers = {}
    for n, v in st.headers:
        if not n.startswith(":"):
            headers.setdefault(n, []).append(v)
    check(st.status is not None, "no response headers on the raw stream")
    return Response(st.status, headers, st.body, "raw-h2", st.method, st.path)


@daemon_test("bodies without content-length are read to END_STREAM (curl -T -)")
def _(d):
    # RFC 9113 8.1.1: content-length is optional in HTTP/2.
    r = curl(d, "POST", CONTEXTS, context_doc(), ctype="application/json",
             no_length=True)
    check_eq(r.status, 201, f"POST without content-length ({r.body[:200]!r})")
    ctx_id = r.json()["contextId"]
    r = curl(d, "PATCH", f"{CONTEXTS}/{ctx_id}",
             [{"op": "replace", "path": DCP + "/maxMessageSize", "value": 16}],
             ctype="application/json-patch+json", no_length=True)
    check_eq(r.status, 200, f"PATCH without content-length ({r.body[:200]!r})")
    check_eq(r.json()["terminations"][0]["medias"][0]["dcMedia"]["maxMessageSize"],
             16, "the patch was applied")


@daemon_test("raw h2: a body in several DATA frames without content-length")
def _(d):
    body = json.dumps(context_doc()).encode()
    with H2Raw(d.port) as h:
        h.start()
        h.send_headers(1, [(":method", "POST"), (":scheme", "http"),
                           (":authority", f"127.0.0.1:{d.port}"), (":path", CONTEXTS),
                           ("content-type", "application/json")])
        for i in range(0, len(body), 100):
            h.send_data(1, body[i:i + 100])
        h.send_data(1, b"", end_stream=True)  # the body ends with the stream
        st = h.response(1)
        check_eq(st.status, 201, f"status ({st.body[:200]!r})")
        check_eq(json.loads(st.body)["terminations"][0]["medias"][0]["mediaId"],
                 "m1", "the created context")


@daemon_test("content-length that disagrees with the DATA: RST_STREAM(PROTOCOL_ERROR)")
def _(d):
    # RFC 9113 8.1.1: a malformed request is a stream error of type
    # PROTOCOL_ERROR; the connection and other streams go on.
    body = json.dumps(context_doc()).encode()
    with H2Raw(d.port) as h:
        h.start()
        for stream, length in ((1, len(body) + 10), (3, len(body) - 10)):
            h.request(stream, "POST", CONTEXTS, d.port,
                      [("content-type", "application/json"),
                       ("content-length", str(length))], body=body)
            st = h.response(stream)
            check_eq(st.rst, 1, f"content-length {length} for {len(body)} bytes: "
                     f"RST_STREAM code (status {st.status})")
            check_eq(st.status, None, "no response to a malformed request")
        h.request(5, "GET", CONTEXTS, d.port)
        st = h.response(5)
        check_eq((st.status, json.loads(st.body)), (200, []),
                 "the connection still serves, and nothing was created")
    check_healthy(d)


@malformed("POST with content-encoding gzip: 415 with accept-encoding", 415,
           "header content-encoding", "UNSUPPORTED_MEDIA_TYPE")
def _(d):
    import gzip
    r = curl(d, "POST", CONTEXTS, gzip.compress(json.dumps(context_doc()).encode()),
             ctype="application/json", headers=["content-encoding: gzip"])
    check_eq(r.header("accept-encoding"), "identity", "accept-encoding")
    check_eq(curl(d, "GET", CONTEXTS).json(), [], "contexts after the 415")
    return r


@malformed("PATCH with content-encoding deflate: 415", 415,
           "header content-encoding", "UNSUPPORTED_MEDIA_TYPE")
def _(d):
    ctx_id = create(d)["contextId"]
    r = curl(d, "PATCH", f"{CONTEXTS}/{ctx_id}",
             [{"op": "test", "path": "/contextId", "value": ctx_id}],
             ctype="application/json-patch+json",
             headers=["content-encoding: deflate"])
    check_eq(r.header("accept-encoding"), "identity", "accept-encoding")
    return r


@malformed("POST with content-type text/plain", 415, "header content-type",
           "UNSUPPORTED_MEDIA_TYPE")
def _(d):
    return curl(d, "POST", CONTEXTS, context_doc(), ctype="text/plain")


@malformed("POST with application/jsonx (prefix is not a match)", 415,
           "header content-type", "UNSUPPORTED_MEDIA_TYPE")
def _(d):
    return curl(d, "POST", CONTEXTS, context_doc(), ctype="application/jsonx")


@malformed("POST without content-type", 415, "header content-type",
           "UNSUPPORTED_MEDIA_TYPE")
def _(d):
    return curl(d, "POST", CONTEXTS, context_doc(), headers=["content-type:"])


@malformed("PATCH with application/json: 415 with accept-patch", 415,
           "header content-type", "UNSUPPORTED_MEDIA_TYPE")
def _(d):
    ctx_id = create(d)["contextId"]
    r = curl(d, "PATCH", f"{CONTEXTS}/{ctx_id}",
             [{"op": "test", "path": "/contextId", "value": ctx_id}],
             ctype="application/json")
    check_eq(r.header("accept-patch"), "application/json-patch+json", "accept-patch")
    return r


@malformed("POST content-type with a non-UTF-8 byte", 415, "header content-type",
           "UNSUPPORTED_MEDIA_TYPE")
def _(d):
    with H2Raw(d.port) as h:
        h.start()
        h.request(1, "POST", CONTEXTS, d.port, [("content-type", b"text/\xffplain"),
                                                  ("content-length", "2")], body=b"{}")
        return raw_response(h.response(1))


@malformed("unknown path", 404, cause="RESOURCE_URI_STRUCTURE_NOT_FOUND")
def _(d):
    return curl(d, "GET", "/nmf-mrm/v2/contexts")


@malformed("path below a context", 404, cause="RESOURCE_URI_STRUCTURE_NOT_FOUND")
def _(d):
    ctx_id = create(d)["contextId"]
    return curl(d, "GET", f"{CONTEXTS}/{ctx_id}/medias")


@malformed("GET an unknown context", 404, cause="CONTEXT_NOT_FOUND")
def _(d):
    return curl(d, "GET", f"{CONTEXTS}/00000000-0000-4000-8000-000000000000")


@malformed("PATCH an unknown context", 404, cause="CONTEXT_NOT_FOUND")
def _(d):
    return curl(d, "PATCH", f"{CONTEXTS}/no-such-context",
                [{"op": "test", "path": "/contextId", "value": "x"}],
                ctype="application/json-patch+json")


@malformed("unknown context id with raw UTF-8 cut at 64 bytes", 404,
           cause="CONTEXT_NOT_FOUND")
def _(d):
    with H2Raw(d.port) as h:
        h.start()
        path = (CONTEXTS + "/" + "a" * 63 + "\u00e9").encode()
        h.request(1, "GET", path, d.port)
        return raw_response(h.response(1))


@malformed("PUT on the collection: 405 with allow", 405)
def _(d):
    r = curl(d, "PUT", CONTEXTS, context_doc(), ctype="application/json")
    check_eq(r.header("allow"), "GET, HEAD, POST", "allow header")
    return r


@malformed("POST on a context: 405 with allow", 405)
def _(d):
    ctx_id = create(d)["contextId"]
    r = curl(d, "POST", f"{CONTEXTS}/{ctx_id}", context_doc(), ctype="application/json")
    check_eq(r.header("allow"), "GET, HEAD, PATCH, DELETE", "allow header")
    return r


@malformed("DELETE /healthz: 405 with allow", 405)
def _(d):
    r = curl(d, "DELETE", "/healthz")
    check_eq(r.header("allow"), "GET, HEAD", "allow header")
    return r


def patch_case(name, ops, status, param=None, cause=None, check_unchanged=True):
    """A PATCH of a fresh context that must fail and change nothing."""
    def run(d):
        doc = create(d)
        body = ops(doc) if callable(ops) else ops
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = curl(d, "PATCH", f"{CONTEXTS}/{doc['contextId']}", data,
                 ctype="application/json-patch+json")
        if check_unchanged:
            check_eq(curl(d, "GET", f"{CONTEXTS}/{doc['contextId']}").json(), doc,
                     "context after the failed PATCH")
        return r
    MALFORMED.append((name, run, status, param, cause, (), None))


patch_case("PATCH body is not JSON", b"[{", 400, cause="INVALID_MSG_FORMAT")
patch_case("PATCH is an object, not an array",
           {"op": "test", "path": "/contextId", "value": "x"}, 400,
           cause="INVALID_MSG_FORMAT")
patch_case("PATCH is an empty array", [], 400, cause="INVALID_MSG_FORMAT")
patch_case("PATCH with an unknown op", [{"op": "merge", "path": "/x", "value": 1}],
           400, "/0/op", "INVALID_MSG_FORMAT")
patch_case("PATCH with bad pointer syntax",
           [{"op": "add", "path": "terminations/0", "value": 1}], 400, "/0/path",
           "INVALID_MSG_FORMAT")
patch_case("PATCH with a bad ~ escape", [{"op": "remove", "path": "/a~2b"}],
           400, "/0/path", "INVALID_MSG_FORMAT")
patch_case("PATCH add without value", [{"op": "add", "path": "/x"}], 400, "/0/value",
           "INVALID_MSG_FORMAT")
patch_case("PATCH path not found", [{"op": "remove", "path": "/terminations/0/nope"}],
           409, "/0/path")
patch_case("PATCH test failed",
           [{"op": "test", "path": MP + "/mediaId", "value": "other"}], 409, "/0/value")
patch_case("PATCH second op fails, first is undone",
           [{"op": "replace", "path": DCP + "/maxMessageSize", "value": 32},
            {"op": "remove", "path": "/nope"}], 409, "/1/path")
patch_case("PATCH modifies localMbEndpoint",
           [{"op": "replace", "path": MP + "/localMbEndpoint/portNumber", "value": 1234}],
           403, MP + "/localMbEndpoint", "MODIFICATION_NOT_ALLOWED")
patch_case("PATCH modifies localDcEndpoint",
           [{"op": "replace", "path": DCP + "/localDcEndpoint/sctpPort", "value": 5001}],
           403, DCP + "/localDcEndpoint", "MODIFICATION_NOT_ALLOWED")
patch_case("PATCH modifies localMdc1Endpoint",
           [{"op": "replace", "path": DCP + "/localMdc1Endpoint/portNumber",
             "value": 8080}],
           403, DCP + "/localMdc1Endpoint", "MODIFICATION_NOT_ALLOWED")
patch_case("PATCH modifies contextId",
           [{"op": "replace", "path": "/contextId", "value": "mine"}], 403, "/contextId",
           "MODIFICATION_NOT_ALLOWED")
patch_case("PATCH result breaks the schema",
           [{"op": "replace", "path": DCP + "/maxMessageSize", "value": 100}], 400,
           DCP + "/maxMessageSize", "MANDATORY_IE_INCORRECT")


@malformed("huge path (over 512 bytes)", 414)
def _(d):
    return curl(d, "GET", f"{CONTEXTS}/" + "a" * 600)


@malformed("huge headers", 431)
def _(d):
    return curl(d, "GET", "/healthz", headers=[f"x-big: {'a' * 20000}"])


@malformed("huge headers on a POST with a body (nghttp)", 431)
def _(d):
    return nghttp(d, "POST", CONTEXTS, context_doc(), ctype="application/json",
                  headers=[f"x-big-{i}: {'b' * 3000}" for i in range(8)])


def check_server_closes(d, data, name):
    got, closed = raw_bytes_exchange(d.port, data)
    check(closed, f"{name}: the connection stayed open")
    return got


@test("HTTP/1.1 request: 505 problem+json and the connection is closed")
def _():
    with Dcmfd() as d:
        got = check_server_closes(
            d, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "HTTP/1.1")
        head, _, body = got.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 505 "), f"status line: {head[:60]!r}")
        check(b"\r\ncontent-type: application/problem+json\r\n" in head.lower() + b"\r\n",
              f"headers: {head!r}")
        m = re.search(rb"\r\ncontent-length: (\d+)", head.lower())
        check(m and int(m.group(1)) == len(body),
              f"content-length {m and m.group(1)!r} for {len(body)} body bytes")
        check_openapi("GET", "/healthz", 505, "application/problem+json", body,
                      "HTTP/1.1")
        p = json.loads(body)
        check_eq(p.get("status"), 505, "problem status")
        check("HTTP/2" in p.get("detail", ""),
              f"detail should explain HTTP/2 is needed: {p!r}")
        check_healthy(d)
        d.stop()


@test("garbage bytes instead of the preface: connection closed, server fine")
def _():
    with Dcmfd() as d:
        rnd = random.Random(7)
        for n in (1, 24, 5000):
            check_server_closes(d, bytes(rnd.randrange(256) for _ in range(n)) + b"\0",
                                f"{n} garbage bytes")
        check_healthy(d)
        d.stop()


@test("garbage frames after a valid preface: GOAWAY and close, server fine")
def _():
    with Dcmfd() as d:
        cases = {
            "DATA on stream 0": H2Raw.frame(DATA, 0, 0, b"x"),
            # only the header of a 20000-byte frame (the limit is 16384):
            # the server reads all we send, so its GOAWAY is not lost to a
            # reset caused by unread data
            "oversized frame": H2Raw.frame(HEADERS, END_HEADERS, 1, b"\x00" * 20000)[:9],
            "bad HPACK": H2Raw.frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff" * 8),
            "random bytes": bytes(random.Random(3).randrange(256) for _ in range(300)),
        }
        for name, data in cases.items():
            with H2Raw(d.port) as h:
                h.start()
                h.send(data)
                check(h.wait_closed(3), f"{name}: connection not closed")
                check(h.goaway is not None, f"{name}: no GOAWAY before the close")
                check(h.goaway[1] != 0, f"{name}: GOAWAY error code should not be "
                      f"NO_ERROR: {h.goaway}")
        check_healthy(d)
        d.stop()


# ---- timeouts ------------------------------------------------------------


@test("slowloris: a stalled body gets 408 while others are served")
def _():
    with Dcmfd("--request-timeout", "500") as d:
        with H2Raw(d.port) as h:
            h.start()
            t0 = time.monotonic()
            h.send_headers(1, [(":method", "POST"), (":scheme", "http"),
                               (":authority", f"127.0.0.1:{d.port}"),
                               (":path", CONTEXTS),
                               ("content-type", "application/json"),
                               ("content-length", "100")])
            h.send_data(1, b'{"termina"')  # 10 of the 100 bytes, then stall
            # other clients are served normally during the stall
            check_healthy(d)
            doc = create(d)
            check_eq(nghttp(d, "GET", f"{CONTEXTS}/{doc['contextId']}").status, 200,
                     "nghttp GET during the stall")
            st = h.response(1, timeout=3.0)
            elapsed = time.monotonic() - t0
            check_eq(st.status, 408, f"status on the stalled stream (headers "
                     f"{st.headers!r}, rst {st.rst!r})")
            check(0.45 <= elapsed <= 3.0, f"408 came after {elapsed:.2f} s, "
                  "expected about 0.5 s")
            check_eq(st.header("content-type"), PROBLEM_JSON, "408 content-type")
            check_eq(json.loads(st.body).get("status"), 408, "408 body status")
            # the server asks the client to stop sending (RFC 9113 8.1)
            h.pump(lambda: st.rst is not None, 1.0)
            check_eq(st.rst, 0, "RST_STREAM(NO_ERROR) after the 408")
            # the connection itself still works
            h.request(3, "GET", "/healthz", d.port)
            check_eq(h.response(3).status, 200, "/healthz on the same connection")
        log = d.log()
        created = log.find(f"context {doc['contextId']} created")
        timed_out = log.find("request on stream 1 timed out")
        check(0 <= created < timed_out,
              "the create was not served before the stalled request timed out: "
              + d.log_tail())
        check_eq(metric(d, 'dcmf_api_requests_total{method="POST",status="408"}'), 1,
                 "POST 408 counter")
        check_eq(metric(d, "dcmf_control_timeouts_total"), 1, "timeouts counter")
        d.stop()


@test("slowloris in the header phase: HEADERS without END_HEADERS gets 408")
def _():
    with Dcmfd("--request-timeout", "300", "--idle-timeout", "1000") as d:
        with H2Raw(d.port) as h:
            h.start()
            h.pump(lambda: False, 0.2)  # SETTINGS exchanged: nothing may
            # come between HEADERS and its CONTINUATION
            block = hpack_encode([(":method", "GET"), (":scheme", "http"),
                                  (":authority", f"127.0.0.1:{d.port}"),
                                  (":path", "/healthz")])
            st = h.streams.setdefault(1, RawStream())
            st.method, st.path = "GET", "/healthz"  # for the API check
            t0 = time.monotonic()
            h.send(H2Raw.frame(HEADERS, END_STREAM, 1, block))  # no END_HEADERS
            st = h.response(1, timeout=3.0)
            elapsed = time.monotonic() - t0
            check_eq(st.status, 408, f"status (rst {st.rst!r}, goaway {h.goaway!r})")
            check(0.25 <= elapsed <= 3.0, f"408 after {elapsed:.2f} s, expected 0.3")
            check(h.wait_closed(3.0), "connection not closed after --idle-timeout")
            check_eq(h.goaway and h.goaway[1], 0, "GOAWAY error code")
        check_healthy(d)
        d.stop()


@test("idle connection gets GOAWAY and is closed; an active one is kept")
def _():
    with Dcmfd("--idle-timeout", "500") as d:
        with H2Raw(d.port) as idle, H2Raw(d.port) as busy:
            t0 = time.monotonic()
            idle.start()
            busy.start()
            # the busy connection pings every 200 ms for 1 s
            for _ in range(5):
                busy.send(H2Raw.frame(PING, 0, 0, b"12345678"))
                busy.pump(lambda: False, 0.2)
            check(not busy.eof and busy.goaway is None,
                  "a connection with traffic every 200 ms was closed")
            check(idle.wait_closed(3.0), "the idle connection was not closed")
            elapsed = time.monotonic() - t0
            check(idle.goaway is not None, "no GOAWAY before the idle close")
            check_eq(idle.goaway[1], 0, "GOAWAY error code")
            check(elapsed >= 0.45, f"closed after only {elapsed:.2f} s")
            check(busy.wait_closed(3.0), "the busy connection was not closed once idle")
        check_healthy(d)
        d.stop()


@test("a client that never reads its response: no busy loop, GOAWAY and close")
def _():
    with Dcmfd("--idle-timeout", "300") as d:
        with H2Raw(d.port) as h:
            # INITIAL_WINDOW_SIZE 0: the response headers can be sent, its
            # body cannot until the client opens the window (slow-read)
            h.start(settings=[(0x4, 0)])
            h.request(1, "GET", CONTEXTS, d.port)
            st = h.streams[1]
            h.pump(lambda: st.status is not None, 2.0)
            check_eq(st.status, 200, "status of the blocked response")
            h.pump(lambda: False, 0.5)  # let --idle-timeout pass
            cpu0 = process_cpu_seconds(d.proc.pid)
            h.pump(lambda: False, 0.5)
            cpu = process_cpu_seconds(d.proc.pid) - cpu0
            check(cpu < 0.15, f"dcmfd used {cpu:.2f} s of CPU in 0.5 s while a "
                  "client held a flow-control-blocked response")
            # the idle connection got GOAWAY and is closed within the grace
            check(h.wait_closed(2.0), "slow-read connection not closed")
            check(h.goaway is not None and h.goaway[1] == 0,
                  f"GOAWAY(NO_ERROR) expected, got {h.goaway}")
        check_healthy(d)
        d.stop()


def process_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@test("SIGTERM with open and half-sent connections exits 0 promptly")
def _():
    with Dcmfd() as d:
        create(d)
        with H2Raw(d.port) as idle, H2Raw(d.port) as half:
            idle.start()
            half.start()
            half.send_headers(1, [(":method", "POST"), (":scheme", "http"),
                                  (":authority", f"127.0.0.1:{d.port}"),
                                  (":path", CONTEXTS), ("content-length", "50"),
                                  ("content-type", "application/json")])
            half.send_data(1, b"{")
            idle.pump(lambda: False, 0.1)
            t0 = time.monotonic()
            d.stop()
            check(time.monotonic() - t0 < 2.0, "shutdown took over 2 s")
            for name, h in (("idle", idle), ("half-sent", half)):
                check(h.wait_closed(1.0), f"{name} connection not closed")
                check(h.goaway is not None and h.goaway[1] == 0,
                      f"{name} connection: GOAWAY(NO_ERROR) expected, got {h.goaway}")


# ---- TLS -----------------------------------------------------------------


@test("h2 over TLS: curl --http2 -k /healthz answers 200 over HTTP/2")
def _():
    tmp = tempfile.mkdtemp(prefix="dcmf-it-tls-")
    try:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
                            "-days", "2", "-keyout", key, "-out", cert],
                           capture_output=True, timeout=SUBPROCESS_TIMEOUT)
        check_eq(r.returncode, 0, f"openssl req ({r.stderr[-200:]!r})")
        d = Dcmfd(tls=(cert, key))
        try:
            # start() polls /healthz over TLS itself, so a broken TLS path
            # fails here already; say what curl saw.
            try:
                d.start()
            except TestFailure as e:
                r = subprocess.run(["curl", "-sS", "-k", "--http2", "--max-time", "3",
                                    d.url("/healthz")], capture_output=True,
                                   timeout=SUBPROCESS_TIMEOUT)
                raise TestFailure(f"{e}; curl says: "
                                  f"{r.stderr.decode(errors='replace').strip()}")
            r = subprocess.run(["curl", "-sS", "-k", "--http2", "--max-time", "5",
                                "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                                d.url("/healthz")], capture_output=True,
                               timeout=SUBPROCESS_TIMEOUT)
            check_eq(r.stdout.decode(), "200 2", "curl status and HTTP version")
            doc = create(d)
            check_eq(curl(d, "GET", CONTEXTS).json(), [doc], "list over TLS")
            r = curl(d, "POST", CONTEXTS, context_doc(), ctype="application/json")
            check(r.header("location").startswith(f"https://127.0.0.1:{d.port}/"),
                  f"location over TLS: {r.header('location')!r}")
            d.stop()
        finally:
            d.__exit__()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- configuration -------------------------------------------------------


def run_dcmfd(args, timeout=SUBPROCESS_TIMEOUT):
    return subprocess.run([DCMFD, *args], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def check_config_error(args, *needles):
    r = run_dcmfd(args)
    err = r.stderr.decode(errors="replace")
    check_eq(r.returncode, 2, f"exit status for {args!r} (stderr {err.strip()!r})")
    for n in needles:
        check(n in err, f"stderr for {args!r} should mention {n!r}: {err.strip()!r}")


@test("--help and --version exit 0")
def _():
    r = run_dcmfd(["--help"])
    check_eq(r.returncode, 0, "--help exit status")
    for opt in ("--control", "--ports", "--request-timeout", "--idle-timeout",
                "--max-body", "--config"):
        check(opt.encode() in r.stdout, f"--help does not mention {opt}")
    r = run_dcmfd(["--version"])
    check_eq(r.returncode, 0, "--version exit status")
    check(re.match(rb"^dcmfd \d+\.\d+\.\d+\n$", r.stdout), f"--version: {r.stdout!r}")


@test("config: bad flags exit 2 and say why")
def _():
    check_config_error(["--bogus"], "unknown option --bogus")
    check_config_error(["--ports"], "--ports needs a value")
    check_config_error(["stray"], 'unexpected argument "stray"')
    check_config_error(["--log-level", "loud"], "log-level", "loud")
    check_config_error(["--max-body", "12"], "max-body", "12")
    check_config_error(["--control", "localhost:80"], "control", "numeric IP")
    check_config_error(["--control-cert", "/nonexistent.pem"],
                       "control-cert and control-key go together")


@test("config: bad port ranges exit 2 and say why")
def _():
    for value in ("5000-4000", "80-90", "40000", "40000-70000", "a-b", "-5"):
        check_config_error(["--ports", value], "ports must be LO-HI", value)


@test("config file: unknown key, bad value, bad JSON, unreadable")
def _():
    tmp = tempfile.mkdtemp(prefix="dcmf-it-cfg-")
    try:
        def cfg(name, text):
            p = os.path.join(tmp, name)
            with open(p, "w") as f:
                f.write(text)
            return p
        p = cfg("unknown.json", '{"colour": "blue"}')
        check_config_error(["--config", p], p, 'unknown key "colour"')
        p = cfg("type.json", '{"sctp-port": true}')
        check_config_error(["--config", p], '"sctp-port" must be a number')
        p = cfg("range.json", '{"ports": "9-8"}')
        check_config_error(["--config", p], p, "ports must be LO-HI")
        p = cfg("bad.json", '{"ports": ')
        check_config_error(["--config", p], p, "line 1")
        p = cfg("array.json", '["ports"]')
        check_config_error(["--config", p], "must hold one JSON object")
        p = cfg("nested.json", '{"config": "other.json"}')
        check_config_error(["--config", p], "cannot be nested")
        missing = os.path.join(tmp, "missing.json")
        check_config_error(["--config", missing], missing, "No such file")
        check_config_error(["--config", tmp], tmp, "cannot be read")
        if os.geteuid() != 0:  # root reads mode-000 files anyway
            p = cfg("secret.json", "{}")
            os.chmod(p, 0)
            check_config_error(["--config", p], p, "Permission denied")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("config file: settings take effect and flags override them")
def _():
    tmp = tempfile.mkdtemp(prefix="dcmf-it-cfg-")
    d = Dcmfd("--sctp-port", "6000", control=False, ports=False, nports=2)
    try:
        path = os.path.join(tmp, "dcmfd.json")
        with open(path, "w") as f:
            json.dump({"control": f"127.0.0.1:{d.port}", "ports": f"{d.lo}-{d.hi}",
                       "max-body": 1024, "sctp-port": 5001, "log-level": "warn"}, f)
        d.args = ["--config=" + path] + d.args  # --log-level debug comes later
        with d:
            doc = create(d)  # served on the control port from the file
            media = doc["terminations"][0]["medias"][0]
            check(d.lo <= local_port(media) <= d.hi, "media port from the file's range")
            check_eq(media["dcMedia"]["localDcEndpoint"]["sctpPort"], 6000,
                     "sctpPort (the flag overrides the file)")
            r = nghttp(d, "POST", CONTEXTS, b" " * 1500, ctype="application/json")
            check_problem(r, 413, cause="PAYLOAD_TOO_LARGE")
            curl(d, "GET", "/nope")  # a 4xx is logged at debug level
            check(re.search(r" debug +api: GET /nope -> 404", d.log()),
                  "--log-level debug (a flag) did not override the file's warn: "
                  + d.log_tail())
            d.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("config: an unusable control address or TLS key fails cleanly")
def _():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = run_dcmfd(["--control", f"127.0.0.1:{busy}", "--ports", "45000-45001"])
        check_eq(r.returncode, 1, f"exit status on a busy control port ({r.stderr!r})")
        check(b"cannot listen" in r.stderr, f"stderr: {r.stderr!r}")
    check_config_error(["--control-cert", "/nonexistent/c.pem", "--control-key",
                        "/nonexistent/k.pem", "--control", "127.0.0.1:1"],
                       "control-cert /nonexistent/c.pem")


# ---- runner --------------------------------------------------------------


def make_malformed_test(name, fn, status, param, cause, args):
    def run():
        with Dcmfd(*args) as d:
            r = fn(d)
            check_problem(r, status, param=param, cause=cause)
            check_healthy(d)
            d.stop()
    return run


@daemon_test("a PATCH that would double the context with every copy is refused at the bound, quickly, and changes nothing")
def _(d):
    r = curl(d, "POST", CONTEXTS, context_doc(), ctype="application/json")
    check_eq(r.status, 201, "create status")
    path = f"{CONTEXTS}/{r.json()['contextId']}"
    before = curl(d, "GET", path).json()
    ops = [{"op": "copy", "from": "", "path": f"/x{k}"} for k in range(40)]
    started = time.monotonic()
    r = curl(d, "PATCH", path, ops, ctype="application/json-patch+json")
    took = time.monotonic() - started
    check_problem(r, 409)
    check(b"too many values" in r.body, f"reason names the bound: {r.body[:300]!r}")
    check(took < 5, f"answered in {took:.1f} s")
    check_eq(curl(d, "GET", path).json(), before, "context after the refused PATCH")
    check_eq(curl(d, "GET", "/healthz").status, 200, "control loop still answers")


def run_case(name, call, skip=()):
    """Runs one test case and prints its TAP-like line; returns "ok",
    "fail" or "skip" (an exception of a type in |skip| skips the case).
    Shared by the integration scripts that import this module."""
    try:
        call()
    except skip as e:
        print(f"ok - {name} # SKIP {e}", flush=True)
        return "skip"
    except TestFailure as e:
        print(f"not ok - {name}: {e}", flush=True)
        return "fail"
    except Exception as e:  # a crash in the test itself
        print(f"not ok - {name}: {type(e).__name__}: {e}", flush=True)
        return "fail"
    print(f"ok - {name}", flush=True)
    return "ok"


def main(argv):
    global DCMFD
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    DCMFD = os.path.abspath(argv[1])
    filters = argv[2:]
    for name, fn, status, param, cause, args, bug in MALFORMED:
        TESTS.append((f"malformed: {name}",
                      make_malformed_test(name, fn, status, param, cause, args), bug))
    passed = failed = 0
    started = time.monotonic()
    for name, fn, bug in TESTS:
        if filters and not any(f in name for f in filters):
            continue
        try:
            fn()
        except TestFailure as e:
            failed += 1
            note = f" [KNOWN SERVER BUG: {bug}]" if bug else ""
            print(f"not ok - {name}: {e}{note}", flush=True)
            continue
        except Exception as e:  # a crash in the test itself
            failed += 1
            print(f"not ok - {name}: {type(e).__name__}: {e}", flush=True)
            continue
        passed += 1
        print(f"ok - {name}" + (" [bug marker is stale: it passes now]" if bug else ""),
              flush=True)
    print(f"# {time.monotonic() - started:.1f} s; {OPENAPI.checked} response "
          "bodies validated against docs/openapi.yaml", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
