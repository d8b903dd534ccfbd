#!/usr/bin/env python3
"""An MSRP test peer written from RFC 4975 (with RFC 6714 and RFC 8873 in
mind), independent of dcmfd's engine, so that tests can talk to any MSRP
endpoint and check what it sends.

Pieces (each usable on its own):
- encoder: encode_send / chunk_message / encode_response / response_for /
  encode_report (RFC 4975 §7.1, §7.1.1, §7.1.2, §7.2, §9 syntax);
- MsrpDecoder: an incremental parser for a TCP byte stream (chunks split
  anywhere) or for one-chunk-per-message transports (RFC 8873 §5.4: one
  chunk per SCTP user message), checking the start line, the To-Path /
  From-Path order, Content-Type last and the end-line (§7.1, §9);
- Reassembler: rebuilds messages from chunks by Message-ID and Byte-Range
  (§7.3.1), noting aborted (#) ones;
- MsrpPeer: one end of a TCP (or TLS) connection that sends messages and
  answers per §7.2 (200 unless told otherwise, no response for
  Failure-Report: no, no 200 for partial) and §7.1.3 (success REPORT when
  Success-Report: yes).

Bad bytes raise MsrpParseError with the reason; nothing waits without a
bound: every wait takes a timeout.
"""
import argparse
import hashlib
import json
import os
import re
import secrets
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# TCP/TLS set-up shared with bfcp_peer.py; re-exported for the callers.
from peer_net import (StreamPeer, accept, cert_fingerprint, connect,  # noqa: E402,F401
                      pem_fingerprint, pin_peer, tls_context)

CRLF = b"\r\n"
END_DASHES = b"-------"  # seven dashes (RFC 4975 §7.1)
# ident = ALPHANUM 3*31ident-char; ident-char = ALPHANUM / "." / "-" / "+"
# / "%" / "=" (RFC 4975 §9): used for transaction ids and Message-IDs.
IDENT_RE = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}$")
METHOD_RE = re.compile(rb"^[A-Z]+$")
HEADER_RE = re.compile(rb"^([A-Za-z0-9\-]+): (.*)$")
BYTE_RANGE_RE = re.compile(r"^(\d+)-(\d+|\*)/(\d+|\*)$")

# Non-SEND bodies are at most 10240 octets (RFC 4975 §7.1); a SEND chunk
# has no limit in the RFC: the peer bounds it so that a missing end-line
# is an error, not an unbounded buffer.
MAX_HEADER_BYTES = 16384
DEFAULT_MAX_CHUNK_BYTES = 16 * 1024 * 1024
MIN_CHUNK_BYTES = 2048  # §7.1.1: senders SHOULD NOT chunk below 2048


class MsrpParseError(Exception):
    """The bytes are not RFC 4975 MSRP; the message says where and why."""


def new_ident(nbytes=8):
    """A random ident (>= 64 bits of randomness, §7.1: transaction ids)."""
    return secrets.token_hex(nbytes)


def format_byte_range(start, end, total):
    """Byte-Range value 'start-end/total'; end or total None => '*'."""
    return "%d-%s/%s" % (start, "*" if end is None else end, "*" if total is None else total)


def parse_byte_range(value):
    """(start, end|None, total|None) from a Byte-Range value (§7.1.1)."""
    m = BYTE_RANGE_RE.match(value)
    if not m:
        raise MsrpParseError("bad Byte-Range %r" % value)
    start = int(m.group(1))
    end = None if m.group(2) == "*" else int(m.group(2))
    total = None if m.group(3) == "*" else int(m.group(3))
    if start < 1:
        raise MsrpParseError("Byte-Range start must be >= 1: %r" % value)
    return start, end, total


URI_RE = re.compile(r"^(msrps?)://(?:[^@/]*@)?(\[[^\]]+\]|[^:/;]+)(?::(\d+))?/([^;]+);([A-Za-z0-9]+)(;.*)?$",
                    re.IGNORECASE)


def uri_equal(a, b):
    """RFC 4975 §6.1 comparison: scheme, host and transport without case,
    userinfo ignored, port and session-id exactly; an unparsable URI
    equals nothing."""
    ma, mb = URI_RE.match(a), URI_RE.match(b)
    if not ma or not mb:
        return False
    return (ma.group(1).lower() == mb.group(1).lower()
            and ma.group(2).lower() == mb.group(2).lower()
            and ma.group(3) == mb.group(3)
            and ma.group(4) == mb.group(4)
            and ma.group(5).lower() == mb.group(5).lower())


# ---------------------------------------------------------------- encoder

def _encode(start_line, headers, body, tid, flag):
    """One MSRP request or response: headers is a list of (name, value) in
    wire order; body None = no body (no blank line, end-line right after
    the headers); else a blank line, the body, CRLF, end-line (§7.1)."""
    if flag not in ("$", "+", "#"):
        raise ValueError("continuation flag must be $, + or #")
    out = [start_line.encode() + CRLF]
    for name, value in headers:
        out.append(("%s: %s" % (name, value)).encode() + CRLF)
    if body is not None:
        body = bytes(body)
        if END_DASHES + tid.encode() in body:
            raise ValueError("the end-line would occur in the body; pick another tid")
        out.append(CRLF)
        out.append(body)
        out.append(CRLF)
    out.append(END_DASHES + tid.encode() + flag.encode() + CRLF)
    return b"".join(out)


def encode_send(tid, to_path, from_path, message_id, body=None,
                byte_range=None, flag="$", content_type="text/plain",
                success_report=None, failure_report=None, extra_headers=()):
    """A SEND request (§7.1.1). to_path/from_path: lists of URIs (or one
    string). body None => bodiless SEND (no Content-Type, Byte-Range
    1-0/0). byte_range: (start, end|None, total|None); default covers the
    whole body. Content-Type is always the last header (§7.1)."""
    to_path = [to_path] if isinstance(to_path, str) else list(to_path)
    from_path = [from_path] if isinstance(from_path, str) else list(from_path)
    if byte_range is None:
        n = 0 if body is None else len(body)
        byte_range = (1, n, n)
    headers = [("To-Path", " ".join(to_path)), ("From-Path", " ".join(from_path)),
               ("Message-ID", message_id)]
    if success_report is not None:
        headers.append(("Success-Report", success_report))
    if failure_report is not None:
        headers.append(("Failure-Report", failure_report))
    headers.append(("Byte-Range", format_byte_range(*byte_range)))
    headers.extend(extra_headers)
    if body is not None:
        headers.append(("Content-Type", content_type))
    return _encode("MSRP %s SEND" % tid, headers, body, tid, flag)


def chunk_message(to_path, from_path, body, chunk_size=MIN_CHUNK_BYTES,
                  message_id=None, content_type="text/plain",
                  success_report=None, failure_report=None, abort_after=None):
    """Split one message into SEND chunks (§5.1, §7.1.1): every chunk but the
    last carries chunk_size bytes (>= 2048 as §7.1.1 recommends) and '+',
    the last '$'. abort_after=N: stop after N chunks, the last of them with
    '#' and an unknown end ('*': an interrupted chunk must be interruptible).
    Returns (message_id, [(tid, bytes), ...])."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    message_id = message_id or new_ident(10)
    total = len(body)
    chunks = []
    if total == 0:
        tid = new_ident()
        chunks.append((tid, encode_send(tid, to_path, from_path, message_id, b"",
                                        (1, 0, 0), "$", content_type,
                                        success_report, failure_report)))
        return message_id, chunks
    offset = 0
    while offset < total:
        piece = body[offset:offset + chunk_size]
        last = offset + len(piece) >= total
        aborting = abort_after is not None and len(chunks) + 1 >= abort_after
        while True:
            tid = new_ident()
            if END_DASHES + tid.encode() not in piece:
                break
        if aborting:
            rng, flag = (offset + 1, None, total), "#"
        else:
            rng, flag = (offset + 1, offset + len(piece), total), "$" if last else "+"
        chunks.append((tid, encode_send(tid, to_path, from_path, message_id, piece, rng,
                                        flag, content_type, success_report,
                                        failure_report)))
        offset += len(piece)
        if aborting:
            break
    return message_id, chunks


def encode_response(tid, code, comment, to_path, from_path):
    """A transaction response (§7.2): never has a body, always '$'."""
    to_path = [to_path] if isinstance(to_path, str) else list(to_path)
    from_path = [from_path] if isinstance(from_path, str) else list(from_path)
    start = "MSRP %s %03d" % (tid, code) + (" " + comment if comment else "")
    return _encode(start, [("To-Path", " ".join(to_path)),
                           ("From-Path", " ".join(from_path))], None, tid, "$")


def response_for(request, code, local_uri, comment=None):
    """The response to a parsed request (§7.2): To-Path = the first URI of
    the request's From-Path for SEND (previous hop only), the whole
    From-Path for other methods; From-Path = local_uri."""
    comment = comment if comment is not None else REASONS.get(code, "")
    from_path = request.from_path
    to_path = from_path[:1] if request.method == "SEND" else from_path
    return encode_response(request.tid, code, comment, to_path, local_uri)


def encode_report(tid, to_path, from_path, message_id, byte_range,
                  status_code=200, comment="OK"):
    """A REPORT request (§7.1.2, §7.1.3): To-Path = the From-Path of the SEND,
    Status '000 <code> <comment>', Message-ID and Byte-Range of what is
    reported; no body, no Success/Failure-Report, never answered."""
    to_path = [to_path] if isinstance(to_path, str) else list(to_path)
    from_path = [from_path] if isinstance(from_path, str) else list(from_path)
    headers = [("To-Path", " ".join(to_path)), ("From-Path", " ".join(from_path)),
               ("Message-ID", message_id),
               ("Byte-Range", format_byte_range(*byte_range)),
               ("Status", "000 %03d %s" % (status_code, comment))]
    return _encode("MSRP %s REPORT" % tid, headers, None, tid, "$")


REASONS = {200: "OK", 400: "Unintelligible", 403: "Action-not-allowed",
           408: "Timeout", 413: "Stop-sending-message",
           415: "MIME-not-understood", 423: "Parameter-out-of-bounds",
           481: "Session-does-not-exist", 501: "Request-method-not-understood",
           506: "Session-already-in-use"}


# ---------------------------------------------------------------- decoder

class Frame:
    """One parsed MSRP request or response (a chunk, for SEND)."""

    def __init__(self, tid, method, code, comment, headers, body, flag, raw_len):
        self.tid = tid              # transaction id (str)
        self.method = method        # 'SEND', 'REPORT', ... or None for a response
        self.code = code            # int status code for a response, else None
        self.comment = comment      # response comment or None
        self.headers = headers      # list of (name, value) in wire order
        self.body = body            # bytes or None (no body)
        self.flag = flag            # '$', '+' or '#'
        self.raw_len = raw_len      # bytes on the wire

    @property
    def is_response(self):
        return self.method is None

    def header(self, name, default=None):
        """The first value of a header, case-insensitive name."""
        low = name.lower()
        for n, v in self.headers:
            if n.lower() == low:
                return v
        return default

    @property
    def to_path(self):
        return self.header("To-Path", "").split()

    @property
    def from_path(self):
        return self.header("From-Path", "").split()

    @property
    def message_id(self):
        return self.header("Message-ID")

    @property
    def byte_range(self):
        v = self.header("Byte-Range")
        return parse_byte_range(v) if v is not None else None

    def summary(self):
        """A JSON-able dict describing the frame (for logs and comparisons)."""
        d = {"tid": self.tid, "flag": self.flag,
             "to_path": self.to_path, "from_path": self.from_path}
        if self.is_response:
            d.update(kind="response", code=self.code, comment=self.comment)
        else:
            d.update(kind="request", method=self.method)
            for name in ("Message-ID", "Byte-Range", "Status", "Content-Type",
                         "Success-Report", "Failure-Report"):
                v = self.header(name)
                if v is not None:
                    d[name] = v
            d["body_len"] = None if self.body is None else len(self.body)
        return d

    def __repr__(self):
        return "Frame(%r)" % self.summary()


def _parse_head(head):
    """Start line + header lines (no trailing CRLF) -> (tid, method, code,
    comment, headers). Checks RFC 4975 §9 syntax that matters on the wire."""
    lines = head.split(CRLF)
    start = lines[0]
    parts = start.split(b" ", 3)
    if len(parts) < 3 or parts[0] != b"MSRP":
        raise MsrpParseError("bad start line %r" % start[:80])
    tid = parts[1]
    if not IDENT_RE.match(tid):
        raise MsrpParseError("bad transaction id %r" % tid[:40])
    method = code = comment = None
    if re.match(rb"^\d{3}$", parts[2]):
        code = int(parts[2])
        comment = b" ".join(parts[3:]).decode("utf-8", "replace") if len(parts) > 3 else None
    else:
        if len(parts) != 3 or not METHOD_RE.match(parts[2]):
            raise MsrpParseError("bad method in start line %r" % start[:80])
        method = parts[2].decode()
    headers = []
    for line in lines[1:]:
        m = HEADER_RE.match(line)
        if not m:
            raise MsrpParseError("bad header line %r" % line[:80])
        headers.append((m.group(1).decode(), m.group(2).decode("utf-8", "replace")))
    names = [n.lower() for n, _ in headers]
    if names[:2] != ["to-path", "from-path"]:
        raise MsrpParseError("To-Path and From-Path must be the first headers, got %r" % names[:2])
    return tid.decode(), method, code, comment, headers


class MsrpDecoder:
    """Incremental MSRP parser. feed(data) takes any split of a TCP stream
    and returns the complete frames; feed_message(data) takes exactly one
    whole chunk (one data channel message, RFC 8873 §5.4) and returns it.
    Raises MsrpParseError on bad bytes (the stream is then unusable)."""

    def __init__(self, max_chunk_bytes=DEFAULT_MAX_CHUNK_BYTES):
        self.buf = bytearray()
        self.max_chunk_bytes = max_chunk_bytes
        self._head = None      # parsed head while waiting for the body
        self._body_start = 0
        self._search_from = 0
        self._needle = None
        self.failed = None

    def feed(self, data):
        if self.failed:
            raise MsrpParseError("decoder already failed: %s" % self.failed)
        self.buf += data
        frames = []
        try:
            while True:
                f = self._next()
                if f is None:
                    break
                frames.append(f)
        except MsrpParseError as e:
            self.failed = str(e)
            raise
        return frames

    def feed_message(self, data):
        """One data channel message = one whole chunk, nothing more."""
        if self.buf:
            raise MsrpParseError("decoder has a partial stream buffered")
        frames = self.feed(bytes(data))
        if len(frames) != 1 or self.buf:
            self.failed = "message holds %d frames and %d spare bytes (one chunk per message, RFC 8873 5.4)" % (len(frames), len(self.buf))
            self.buf.clear()
            raise MsrpParseError(self.failed)
        return frames[0]

    def pending_bytes(self):
        return len(self.buf)

    def _next(self):
        buf = self.buf
        if self._head is None:
            # The head ends either at a blank line (a body follows) or at
            # the end-line of a bodiless request or a response.
            if len(buf) >= 4 and not buf.startswith(b"MSRP"[:len(buf)]):
                raise MsrpParseError("stream does not start with 'MSRP ': %r" % bytes(buf[:20]))
            limit = min(len(buf), MAX_HEADER_BYTES + 80)
            blank = buf.find(CRLF + CRLF, 0, limit)
            first_eol = buf.find(CRLF, 0, limit)
            if first_eol < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise MsrpParseError("start line longer than %d bytes" % MAX_HEADER_BYTES)
                return None
            tid = bytes(buf[:first_eol]).split(b" ")[1:2]
            if not tid or not IDENT_RE.match(tid[0]):
                raise MsrpParseError("bad start line %r" % bytes(buf[:min(first_eol, 80)]))
            end_line_at = buf.find(CRLF + END_DASHES + tid[0], 0, limit)
            if end_line_at >= 0 and (blank < 0 or end_line_at < blank):
                # No body: headers, then the end-line.
                tail = end_line_at + 2 + len(END_DASHES) + len(tid[0])
                if len(buf) < tail + 3:
                    return None
                flag = chr(buf[tail])
                if flag not in "$+#" or buf[tail + 1:tail + 3] != CRLF:
                    raise MsrpParseError("bad end-line %r" % bytes(buf[end_line_at + 2:tail + 3]))
                head = _parse_head(bytes(buf[:end_line_at]))
                total = tail + 3
                del buf[:total]
                tid_s, method, code, comment, headers = head
                if code is not None and flag != "$":
                    raise MsrpParseError("a response must end with '$', got %r" % flag)
                if any(n.lower() == "content-type" for n, _ in headers):
                    raise MsrpParseError("Content-Type without a body")
                return Frame(tid_s, method, code, comment, headers, None, flag, total)
            if blank < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise MsrpParseError("no end of headers within %d bytes" % MAX_HEADER_BYTES)
                return None
            head = _parse_head(bytes(buf[:blank]))
            tid_s, method, code, comment, headers = head
            if code is not None:
                raise MsrpParseError("a response carries no body (RFC 4975 7.2)")
            if headers[-1][0].lower() != "content-type":
                raise MsrpParseError("Content-Type must be the last header before a body, got %r" % headers[-1][0])
            self._head = head
            self._body_start = blank + 4
            self._search_from = self._body_start
            self._needle = CRLF + END_DASHES + tid_s.encode()
        # Body: up to CRLF + end-line (§7.1: the sender keeps the end-line
        # out of the body, so the first occurrence ends the chunk). Seven
        # dashes and the tid followed by anything but a flag and CRLF are
        # no end-line: they stay body.
        while True:
            at = buf.find(self._needle, self._search_from)
            if at < 0:
                if len(buf) - self._body_start > self.max_chunk_bytes:
                    raise MsrpParseError("chunk body exceeds %d bytes without an end-line"
                                         % self.max_chunk_bytes)
                self._search_from = max(self._body_start, len(buf) - len(self._needle) + 1)
                return None
            tail = at + len(self._needle)
            if len(buf) < tail + 3:
                self._search_from = at
                return None
            flag = chr(buf[tail])
            if flag in "$+#" and buf[tail + 1:tail + 3] == CRLF:
                break
            self._search_from = at + 1
        if len(buf) - self._body_start > self.max_chunk_bytes + len(self._needle) + 3:
            raise MsrpParseError("chunk body exceeds %d bytes" % self.max_chunk_bytes)
        body = bytes(buf[self._body_start:at])
        total = tail + 3
        del buf[:total]
        tid_s, method, code, comment, headers = self._head
        self._head = None
        if method != "SEND" and len(body) > 10240:
            raise MsrpParseError("non-SEND body over 10240 octets (RFC 4975 7.1)")
        return Frame(tid_s, method, code, comment, headers, body, flag, total)


# ---------------------------------------------------------------- reassembly

class Message:
    """A message rebuilt from SEND chunks (RFC 4975 §7.3.1)."""

    def __init__(self, message_id):
        self.message_id = message_id
        self.data = bytearray()
        self.received = []       # (start, end) 1-based inclusive ranges
        self.total = None
        self.content_type = None
        self.complete = False
        self.aborted = False
        self.chunks = 0
        self.last_frame = None

    def add(self, frame):
        start, _end, total = frame.byte_range or (1, None, None)
        body = frame.body or b""
        self.chunks += 1
        self.last_frame = frame
        if frame.header("Content-Type"):
            self.content_type = frame.header("Content-Type")
        need = start - 1 + len(body)
        if len(self.data) < need:
            self.data.extend(b"\0" * (need - len(self.data)))
        # A later chunk overwrites an overlap (§7.3.1 "SHOULD take precedence").
        self.data[start - 1:start - 1 + len(body)] = body
        if body:
            self.received.append((start, start + len(body) - 1))
        if total is not None:
            self.total = total
        if frame.flag == "#":
            self.aborted = True
        elif frame.flag == "$":
            # The '$' chunk defines the total length (§7.3.1).
            self.total = start - 1 + len(body)
        if self.total is not None and not self.aborted and self._covered():
            del self.data[self.total:]
            self.complete = True

    def _covered(self):
        if self.total == 0:
            return True
        pos = 1
        for s, e in sorted(self.received):
            if s > pos:
                return False
            pos = max(pos, e + 1)
        return pos > self.total


class Reassembler:
    """Feeds SEND frames; returns a Message when it completes or aborts."""

    def __init__(self, max_messages=1000):
        self.open = {}
        self.max_messages = max_messages

    def add(self, frame):
        mid = frame.message_id
        if mid is None:
            raise MsrpParseError("SEND without Message-ID (tid %s)" % frame.tid)
        if frame.byte_range is None and frame.body:
            # Without Byte-Range the chunk is the whole message (§7.3.1).
            pass
        msg = self.open.get(mid)
        if msg is None:
            if len(self.open) >= self.max_messages:
                raise MsrpParseError("more than %d messages open" % self.max_messages)
            msg = self.open[mid] = Message(mid)
        msg.add(frame)
        if msg.complete or msg.aborted:
            del self.open[mid]
            return msg
        return None


# ---------------------------------------------------------------- peer

class MsrpPeer(StreamPeer):
    """One MSRP endpoint on a connected socket (plain or TLS). A reader
    thread parses what arrives, answers SENDs (response_code, default 200,
    per Failure-Report), sends success REPORTs when asked, and records
    frames, messages, responses and reports; the wait_* methods poll them
    with a deadline. Call close() (or use as a context manager)."""

    parse_errors = (MsrpParseError,)

    def __init__(self, sock, local_uri, remote_uri, response_code=200,
                 auto_report=True, max_chunk_bytes=DEFAULT_MAX_CHUNK_BYTES,
                 log=None, check_to_path=True):
        super().__init__(sock)
        self.check_to_path = check_to_path
        self.misaddressed = []    # requests whose To-Path was not local_uri
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.response_code = response_code
        self.auto_report = auto_report
        self.decoder = MsrpDecoder(max_chunk_bytes)
        self.reassembler = Reassembler()
        self.frames = []          # every frame received, in order
        self.messages = []        # complete or aborted Message objects
        self.responses = {}       # tid -> Frame
        self.reports = []         # REPORT frames
        self.log = log
        self.start()

    # -- sending
    def send_message(self, body, content_type="text/plain", chunk_size=65536,
                     success_report=None, failure_report=None, message_id=None,
                     abort_after=None):
        """Send body as chunks; returns (message_id, [tid, ...])."""
        mid, chunks = chunk_message([self.remote_uri], [self.local_uri], body, chunk_size,
                                    message_id, content_type, success_report,
                                    failure_report, abort_after)
        for _tid, data in chunks:
            self.send_raw(data)
        return mid, [t for t, _ in chunks]

    def send_bodiless(self):
        """A bodiless SEND (opens the session, §5.4 / RFC 8873 §5.2); returns tid."""
        tid = new_ident()
        self.send_raw(encode_send(tid, [self.remote_uri], [self.local_uri], new_ident(10)))
        return tid

    # -- waiting
    def wait_response(self, tid, timeout=10):
        """The response Frame for a transaction id."""
        return self.wait_until(lambda: self.responses.get(tid), timeout, "response to " + tid)

    def wait_message(self, count=1, timeout=10):
        """The first `count` complete/aborted messages (list)."""
        return self.wait_until(lambda: self.messages[:count] if len(self.messages) >= count else None,
                               timeout, "%d message(s)" % count)

    def wait_report(self, message_id, timeout=10):
        """The first REPORT Frame for a Message-ID."""
        def find():
            for r in self.reports:
                if r.message_id == message_id:
                    return r
            return None
        return self.wait_until(find, timeout, "REPORT for " + message_id)

    # -- receiving
    def on_bytes(self, data):
        for frame in self.decoder.feed(data):
            self._handle(frame)

    def _handle(self, frame):
        if self.log:
            self.log(frame.summary())
        with self.cond:
            self.frames.append(frame)
        if frame.is_response:
            with self.cond:
                self.responses[frame.tid] = frame
                self.cond.notify_all()
            return
        if frame.method == "REPORT":
            # Never answered (§7.1.2).
            with self.cond:
                self.reports.append(frame)
                self.cond.notify_all()
            return
        failure_report = (frame.header("Failure-Report") or "yes").lower()
        if self.check_to_path and (len(frame.to_path) != 1
                                   or not uri_equal(frame.to_path[0], self.local_uri)):
            # §7.3: exactly one URI, ours, or 481 and the request is ignored.
            with self.cond:
                self.misaddressed.append(frame)
            if failure_report != "no":
                self.send_raw(response_for(frame, 481, self.local_uri))
            return
        if frame.method != "SEND":
            if failure_report != "no":
                self.send_raw(response_for(frame, 501, self.local_uri))
            return
        code = self.response_code
        if failure_report == "yes" or (failure_report == "partial" and code != 200):
            self.send_raw(response_for(frame, code, self.local_uri))
        if code != 200 or frame.body is None:
            # A bodiless SEND only opens or keeps the session (§7.1.1);
            # it stays in frames, not in messages.
            return
        msg = self.reassembler.add(frame)
        if msg is None:
            return
        if (msg.complete and self.auto_report
                and (frame.header("Success-Report") or "no").lower() == "yes"):
            # §7.1.3: To-Path = the SEND's From-Path, range of the message.
            self.send_raw(encode_report(new_ident(), frame.from_path, [self.local_uri],
                                        msg.message_id, (1, msg.total, msg.total)))
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()


# ---------------------------------------------------------------- CLI

def _cli():
    ap = argparse.ArgumentParser(description="MSRP test peer (RFC 4975)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("client", "server"):
        p = sub.add_parser(name, help="connect/listen, send messages, print events as JSON lines")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--local-uri", required=True)
        p.add_argument("--remote-uri", required=True)
        p.add_argument("--send", action="append", default=[], help="message text to send (repeat)")
        p.add_argument("--send-size", type=int, action="append", default=[], help="send N random bytes")
        p.add_argument("--chunk-size", type=int, default=65536)
        p.add_argument("--success-report", default=None)
        p.add_argument("--expect-messages", type=int, default=0)
        p.add_argument("--timeout", type=float, default=10)
        p.add_argument("--cert"), p.add_argument("--key")
        p.add_argument("--peer-cert", help="server: accept only this client cert (PEM)")
        p.add_argument("--fingerprint", help="pin the peer's sha-256 fingerprint")
        p.add_argument("--keylog")
    p = sub.add_parser("decode", help="parse a stream file (or JSON lines of hex DC messages)")
    p.add_argument("file")
    p.add_argument("--per-message", action="store_true",
                   help="file holds one hex-encoded data channel message per line")
    a = ap.parse_args()

    def out(obj):
        print(json.dumps(obj), flush=True)

    if a.cmd == "decode":
        dec, rea = MsrpDecoder(), Reassembler()
        try:
            with open(a.file, "rb") as f:
                if a.per_message:
                    frames = [dec.feed_message(bytes.fromhex(line.strip().decode()))
                              for line in f if line.strip()]
                else:
                    frames = dec.feed(f.read())
            for fr in frames:
                out(fr.summary())
                if fr.method == "SEND":
                    m = rea.add(fr)
                    if m:
                        out({"kind": "message", "message_id": m.message_id,
                             "length": len(m.data), "aborted": m.aborted,
                             "sha256": hashlib.sha256(m.data).hexdigest()})
            if dec.pending_bytes():
                out({"kind": "error", "error": "%d trailing bytes" % dec.pending_bytes()})
                return 1
        except MsrpParseError as e:
            out({"kind": "error", "error": str(e)})
            return 1
        return 0

    ctx = None
    if a.cert:
        ctx = tls_context(a.cmd == "server", a.cert, a.key, a.peer_cert, a.keylog)
    if a.cmd == "client":
        sock = connect(a.host, a.port, ctx, a.timeout, a.fingerprint)
    else:
        lst = socket.create_server((a.host, a.port))
        out({"kind": "listening", "port": lst.getsockname()[1]})
        sock = accept(lst, ctx, a.timeout, a.fingerprint)
        lst.close()
    with MsrpPeer(sock, a.local_uri, a.remote_uri, log=out) as peer:
        bodies = [t.encode() for t in a.send] + [secrets.token_bytes(n) for n in a.send_size]
        for body in bodies:
            mid, tids = peer.send_message(body, chunk_size=a.chunk_size,
                                          success_report=a.success_report)
            for tid in tids:
                r = peer.wait_response(tid, a.timeout)
                out({"kind": "sent", "message_id": mid, "tid": tid, "code": r.code})
        for m in peer.wait_message(a.expect_messages, a.timeout) if a.expect_messages else []:
            out({"kind": "message", "message_id": m.message_id, "length": len(m.data),
                 "aborted": m.aborted, "sha256": hashlib.sha256(m.data).hexdigest()})
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
