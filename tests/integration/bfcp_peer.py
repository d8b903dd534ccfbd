#!/usr/bin/env python3
"""A BFCP test peer written from RFC 8855 (with RFC 8856 for the SDP side),
independent of dcmfd's engine.

- encode_message / decode_message: the 12-octet common header (§5.1) and
  attribute TLVs with 4-octet padding (§5.2), grouped attributes (§5.2.14,
  §5.2.15, §5.2.16, §5.2.17, §5.2.18);
- builders for Hello / HelloAck (§5.3.10-11), FloorRequest (§5.3.1),
  FloorRelease (§5.3.2), FloorRequestStatus (§5.3.4), Error (§5.3.13),
  Goodbye / GoodbyeAck (§5.3.16-17);
- StreamDecoder: TCP framing by the header's Payload Length (§6.2: over
  TCP, messages follow each other; no fragmentation, version 1);
- BfcpPeer: a client (sends a sequence, checks the answers) or a small
  floor control server (answers Hello, FloorRequest, FloorRelease,
  Goodbye) on a connected plain or TLS socket.

Bad bytes raise BfcpParseError; every wait takes a timeout.
"""
import argparse
import json
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_net import StreamPeer  # noqa: E402

# Primitives (§5.1, Table 1).
FLOOR_REQUEST = 1
FLOOR_RELEASE = 2
FLOOR_REQUEST_QUERY = 3
FLOOR_REQUEST_STATUS = 4
USER_QUERY = 5
USER_STATUS = 6
FLOOR_QUERY = 7
FLOOR_STATUS = 8
CHAIR_ACTION = 9
CHAIR_ACTION_ACK = 10
HELLO = 11
HELLO_ACK = 12
ERROR = 13
FLOOR_REQUEST_STATUS_ACK = 14
FLOOR_STATUS_ACK = 15
GOODBYE = 16
GOODBYE_ACK = 17
PRIMITIVE_NAMES = {v: k for k, v in list(globals().items())
                   if isinstance(v, int) and k.isupper() and not k.startswith("_")}

# Attributes (§5.2, Table 3).
BENEFICIARY_ID = 1
FLOOR_ID = 2
FLOOR_REQUEST_ID = 3
PRIORITY = 4
REQUEST_STATUS = 5
ERROR_CODE = 6
ERROR_INFO = 7
PARTICIPANT_PROVIDED_INFO = 8
STATUS_INFO = 9
SUPPORTED_ATTRIBUTES = 10
SUPPORTED_PRIMITIVES = 11
USER_DISPLAY_NAME = 12
USER_URI = 13
BENEFICIARY_INFORMATION = 14
FLOOR_REQUEST_INFORMATION = 15
REQUESTED_BY_INFORMATION = 16
FLOOR_REQUEST_STATUS_ATTR = 17
OVERALL_REQUEST_STATUS = 18
GROUPED = {BENEFICIARY_INFORMATION, FLOOR_REQUEST_INFORMATION, REQUESTED_BY_INFORMATION,
           FLOOR_REQUEST_STATUS_ATTR, OVERALL_REQUEST_STATUS}
U16_ATTRS = {BENEFICIARY_ID, FLOOR_ID, FLOOR_REQUEST_ID}
TEXT_ATTRS = {ERROR_INFO, PARTICIPANT_PROVIDED_INFO, STATUS_INFO, USER_DISPLAY_NAME, USER_URI}

# Request Status values (§5.2.5).
PENDING, ACCEPTED, GRANTED, DENIED, CANCELLED, RELEASED, REVOKED = range(1, 8)
# Error codes (§5.2.6) used here.
ERR_UNKNOWN_PRIMITIVE = 3
ERR_UNABLE_TO_PARSE = 10
ERR_UNSUPPORTED_VERSION = 12

HEADER_LEN = 12
MAX_MESSAGE = HEADER_LEN + 0xFFFF * 4


class BfcpParseError(Exception):
    """The bytes are not a valid RFC 8855 BFCP message; says why."""


def _pad4(n):
    return (4 - n % 4) % 4


class Attr:
    """One attribute: type, M bit, value (int for 16-bit ids, bytes for
    text/octet lists, (status, queue_pos) for REQUEST-STATUS, (code,
    details) for ERROR-CODE, (id16, [Attr...]) for grouped)."""

    def __init__(self, atype, value, mandatory=False):
        self.type = atype
        self.value = value
        self.mandatory = mandatory

    def encode(self):
        t = self.type
        if t in U16_ATTRS:
            content = struct.pack("!H", self.value)
        elif t == PRIORITY:
            content = struct.pack("!H", (self.value & 0x7) << 13)
        elif t == REQUEST_STATUS:
            content = struct.pack("!BB", *self.value)
        elif t == ERROR_CODE:
            content = struct.pack("!B", self.value[0]) + bytes(self.value[1])
        elif t in GROUPED:
            ident, subs = self.value
            content = struct.pack("!H", ident) + b"".join(a.encode() for a in subs)
        elif isinstance(self.value, str):
            content = self.value.encode()
        else:
            content = bytes(self.value)
        length = 2 + len(content)
        if length > 255:
            raise ValueError("attribute %d too long (%d octets)" % (t, length))
        return bytes([(t << 1) | (1 if self.mandatory else 0), length]) + content + b"\0" * _pad4(length)

    def find(self, atype):
        """Nested attributes of a grouped attribute with that type."""
        return [a for a in self.value[1] if a.type == atype] if self.type in GROUPED else []

    def as_dict(self):
        v = self.value
        if self.type in GROUPED:
            v = {"id": v[0], "attrs": [a.as_dict() for a in v[1]]}
        elif isinstance(v, bytes):
            v = v.decode("utf-8", "replace") if self.type in TEXT_ATTRS else list(v)
        elif isinstance(v, tuple):
            v = [x if isinstance(x, int) else list(x) for x in v]
        return {"type": self.type, "M": self.mandatory, "value": v}

    def __repr__(self):
        return "Attr(%r)" % self.as_dict()


def decode_attrs(data):
    """Attributes from a payload (or a grouped attribute's tail)."""
    attrs = []
    off = 0
    while off < len(data):
        if len(data) - off < 2:
            raise BfcpParseError("truncated attribute header at %d" % off)
        t, m, length = data[off] >> 1, data[off] & 1, data[off + 1]
        if length < 2 or off + length > len(data):
            raise BfcpParseError("attribute %d length %d out of bounds at %d" % (t, length, off))
        content = bytes(data[off + 2:off + length])
        pad = _pad4(length)
        if off + length + pad > len(data):
            raise BfcpParseError("attribute %d padding missing at %d" % (t, off))
        if any(data[off + length:off + length + pad]):
            raise BfcpParseError("attribute %d padding not zero" % t)
        if t in U16_ATTRS or t == PRIORITY:
            if length != 4:
                raise BfcpParseError("attribute %d must be 4 octets, is %d" % (t, length))
            (v,) = struct.unpack("!H", content)
            value = (v >> 13) if t == PRIORITY else v
        elif t == REQUEST_STATUS:
            if length != 4:
                raise BfcpParseError("REQUEST-STATUS must be 4 octets, is %d" % length)
            value = (content[0], content[1])
        elif t == ERROR_CODE:
            if length < 3:
                raise BfcpParseError("ERROR-CODE too short")
            value = (content[0], content[1:])
        elif t in GROUPED:
            if length < 4:
                raise BfcpParseError("grouped attribute %d too short" % t)
            value = (struct.unpack("!H", content[:2])[0], decode_attrs(content[2:]))
        else:
            value = content
        attrs.append(Attr(t, value, bool(m)))
        off += length + pad
    return attrs


class Message:
    """One BFCP message: common header fields + attributes."""

    fragment_bit = False   # F as received (decode_message)
    reserved_bits = 0      # Res as received

    def __init__(self, primitive, conference_id, transaction_id, user_id, attrs=(),
                 version=1, responder=False):
        self.primitive = primitive
        self.conference_id = conference_id
        self.transaction_id = transaction_id
        self.user_id = user_id
        self.attrs = list(attrs)
        self.version = version
        self.responder = responder

    def find(self, atype):
        return [a for a in self.attrs if a.type == atype]

    @property
    def name(self):
        return PRIMITIVE_NAMES.get(self.primitive, str(self.primitive))

    def as_dict(self):
        return {"primitive": self.primitive, "name": self.name, "version": self.version,
                "R": self.responder, "conference_id": self.conference_id,
                "transaction_id": self.transaction_id, "user_id": self.user_id,
                "attrs": [a.as_dict() for a in self.attrs]}

    def __repr__(self):
        return "Message(%r)" % self.as_dict()


def encode_message(msg):
    """Common header (§5.1) + padded attributes; Payload Length in 4-octet
    units, excluding the header. F (fragmentation) is never set: it only
    exists over unreliable transport."""
    payload = b"".join(a.encode() for a in msg.attrs)
    assert len(payload) % 4 == 0
    first = (msg.version << 5) | (0x10 if msg.responder else 0)
    return struct.pack("!BBHIHH", first, msg.primitive, len(payload) // 4,
                       msg.conference_id, msg.transaction_id, msg.user_id) + payload


def decode_message(data):
    """One whole message (header + payload exactly) -> Message."""
    if len(data) < HEADER_LEN:
        raise BfcpParseError("message shorter than the 12-octet common header")
    first, prim, plen, conf, tid, uid = struct.unpack("!BBHIHH", data[:HEADER_LEN])
    version = first >> 5
    if version not in (1, 2):
        raise BfcpParseError("unsupported version %d" % version)
    if len(data) != HEADER_LEN + plen * 4:
        raise BfcpParseError("payload length %d units but %d octets follow"
                             % (plen, len(data) - HEADER_LEN))
    msg = Message(prim, conf, tid, uid, decode_attrs(data[HEADER_LEN:]), version,
                  bool(first & 0x10))
    # R and F only mean something over an unreliable transport, and the
    # reserved bits are ignored (§5.1): kept here so that a test can check
    # what a sender set, never refused.
    msg.fragment_bit = bool(first & 0x08)
    msg.reserved_bits = first & 0x07
    return msg


class StreamDecoder:
    """TCP framing: feed any split of the stream, get whole Messages."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= HEADER_LEN:
            # Version 1 over a reliable transport, 2 over an unreliable one
            # (§5.1); this is TCP framing, and there is no fragment field.
            if self.buf[0] >> 5 != 1:
                raise BfcpParseError("version %d over TCP (must be 1)" % (self.buf[0] >> 5))
            n = HEADER_LEN + 4 * struct.unpack("!H", self.buf[2:4])[0]
            if len(self.buf) < n:
                break
            out.append(decode_message(bytes(self.buf[:n])))
            del self.buf[:n]
        return out


# ---------------------------------------------------------------- builders

def hello(conf, tid, user):
    return Message(HELLO, conf, tid, user)


def hello_ack(conf, tid, user, primitives=None, attributes=None):
    """HelloAck (§5.3.11): SUPPORTED-PRIMITIVES then SUPPORTED-ATTRIBUTES
    (each attribute type in the 7 high bits of an octet, §5.2.10)."""
    primitives = primitives or [FLOOR_REQUEST, FLOOR_RELEASE, FLOOR_REQUEST_STATUS, HELLO,
                                HELLO_ACK, ERROR, GOODBYE, GOODBYE_ACK]
    attributes = attributes or [FLOOR_ID, FLOOR_REQUEST_ID, REQUEST_STATUS, ERROR_CODE,
                                FLOOR_REQUEST_INFORMATION, FLOOR_REQUEST_STATUS_ATTR,
                                OVERALL_REQUEST_STATUS]
    return Message(HELLO_ACK, conf, tid, user,
                   [Attr(SUPPORTED_PRIMITIVES, bytes(primitives), True),
                    Attr(SUPPORTED_ATTRIBUTES, bytes(a << 1 for a in attributes), True)])


def floor_request(conf, tid, user, floor_ids):
    return Message(FLOOR_REQUEST, conf, tid, user,
                   [Attr(FLOOR_ID, f, True) for f in floor_ids])


def floor_release(conf, tid, user, floor_request_id):
    return Message(FLOOR_RELEASE, conf, tid, user, [Attr(FLOOR_REQUEST_ID, floor_request_id, True)])


def floor_request_status(conf, tid, user, floor_request_id, floor_id, status, queue_pos=0):
    """FloorRequestStatus (§5.3.4) with FLOOR-REQUEST-INFORMATION holding an
    OVERALL-REQUEST-STATUS and one FLOOR-REQUEST-STATUS."""
    info = Attr(FLOOR_REQUEST_INFORMATION, (floor_request_id, [
        Attr(OVERALL_REQUEST_STATUS, (floor_request_id, [Attr(REQUEST_STATUS, (status, queue_pos), True)]), True),
        Attr(FLOOR_REQUEST_STATUS_ATTR, (floor_id, [Attr(REQUEST_STATUS, (status, queue_pos), True)]), True),
    ]), True)
    return Message(FLOOR_REQUEST_STATUS, conf, tid, user, [info])


def error(conf, tid, user, code, info=None):
    attrs = [Attr(ERROR_CODE, (code, b""), True)]
    if info:
        attrs.append(Attr(ERROR_INFO, info.encode()))
    return Message(ERROR, conf, tid, user, attrs)


def goodbye(conf, tid, user):
    return Message(GOODBYE, conf, tid, user)


def goodbye_ack(conf, tid, user):
    return Message(GOODBYE_ACK, conf, tid, user)


def request_status_of(msg):
    """(floor_request_id, status) from a FloorRequestStatus message."""
    info = msg.find(FLOOR_REQUEST_INFORMATION)
    if not info:
        raise AssertionError("FloorRequestStatus without FLOOR-REQUEST-INFORMATION: %r" % msg)
    for grp in info[0].find(OVERALL_REQUEST_STATUS) + info[0].find(FLOOR_REQUEST_STATUS_ATTR):
        for rs in grp.find(REQUEST_STATUS):
            return info[0].value[0], rs.value[0]
    raise AssertionError("no REQUEST-STATUS in %r" % msg)


# ---------------------------------------------------------------- peer

class BfcpPeer(StreamPeer):
    """A BFCP endpoint on a connected socket. As server=True it answers
    Hello (HelloAck), FloorRequest (FloorRequestStatus Granted, new floor
    request id), FloorRelease (Released), Goodbye (GoodbyeAck), anything
    else with Error 'Unknown primitive'. received holds every Message;
    request() sends one and waits for the answer with the same transaction
    id."""

    parse_errors = (BfcpParseError,)

    def __init__(self, sock, server=False, log=None):
        super().__init__(sock)
        self.server = server
        self.log = log
        self.decoder = StreamDecoder()
        self.received = []
        self.next_tid = 1
        self.next_floor_request_id = 1
        self.start()

    def send(self, msg):
        self.send_raw(encode_message(msg))
        return msg

    def new_tid(self):
        tid = self.next_tid
        self.next_tid = self.next_tid % 0xFFFF + 1  # 0 is for server-initiated (RFC 8855 §8)
        return tid

    def wait_for(self, pred, timeout=10, what="message"):
        """The first received Message for which pred(m) is true."""
        return self.wait_until(lambda: next((m for m in self.received if pred(m)), None),
                               timeout, what)

    def request(self, msg, expect, timeout=10):
        """Send msg, wait for the message with primitive `expect` and the
        same transaction id; returns it."""
        self.send(msg)
        return self.wait_for(lambda m: m.transaction_id == msg.transaction_id
                             and m.primitive == expect, timeout,
                             "%s answer to tid %d" % (PRIMITIVE_NAMES.get(expect), msg.transaction_id))

    def on_bytes(self, data):
        for m in self.decoder.feed(data):
            if self.log:
                self.log(m.as_dict())
            # Answer first: whoever waits for a request then knows that its
            # answer is on the wire.
            if self.server:
                self._answer(m)
            with self.cond:
                self.received.append(m)
                self.cond.notify_all()

    def _answer(self, m):
        c, t, u = m.conference_id, m.transaction_id, m.user_id
        if m.primitive == HELLO:
            self.send(hello_ack(c, t, u))
        elif m.primitive == FLOOR_REQUEST:
            frid = self.next_floor_request_id
            self.next_floor_request_id += 1
            floor = m.find(FLOOR_ID)[0].value if m.find(FLOOR_ID) else 0
            self.send(floor_request_status(c, t, u, frid, floor, GRANTED))
        elif m.primitive == FLOOR_RELEASE:
            frid = m.find(FLOOR_REQUEST_ID)[0].value if m.find(FLOOR_REQUEST_ID) else 0
            self.send(floor_request_status(c, t, u, frid, 0, RELEASED))
        elif m.primitive == GOODBYE:
            self.send(goodbye_ack(c, t, u))
        elif m.primitive in (HELLO_ACK, ERROR, GOODBYE_ACK, FLOOR_REQUEST_STATUS_ACK,
                             FLOOR_STATUS_ACK):
            pass
        else:
            self.send(error(c, t, u, ERR_UNKNOWN_PRIMITIVE, "unknown primitive %d" % m.primitive))

    def run_client_sequence(self, conf, user, floor_id, timeout=10):
        """Hello -> HelloAck, FloorRequest -> FloorRequestStatus (Granted,
        or Pending then Granted), FloorRelease -> FloorRequestStatus
        (Released), Goodbye -> GoodbyeAck. Returns the answers in order."""
        answers = [self.request(hello(conf, self.new_tid(), user), HELLO_ACK, timeout)]
        req = floor_request(conf, self.new_tid(), user, [floor_id])
        frs = self.request(req, FLOOR_REQUEST_STATUS, timeout)
        answers.append(frs)
        frid, status = request_status_of(frs)
        if status in (PENDING, ACCEPTED):
            # Later status updates are server-initiated (transaction id 0).
            frs = self.wait_for(lambda m: m.primitive == FLOOR_REQUEST_STATUS
                                and request_status_of(m) == (frid, GRANTED), timeout, "Granted")
            answers.append(frs)
        elif status != GRANTED:
            raise AssertionError("floor request answered with status %d" % status)
        answers.append(self.request(floor_release(conf, self.new_tid(), user, frid),
                                    FLOOR_REQUEST_STATUS, timeout))
        answers.append(self.request(goodbye(conf, self.new_tid(), user), GOODBYE_ACK, timeout))
        return answers


def _cli():
    import peer_net
    ap = argparse.ArgumentParser(description="BFCP test peer (RFC 8855)")
    ap.add_argument("role", choices=["client", "server"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conference-id", type=int, default=1)
    ap.add_argument("--user-id", type=int, default=2)
    ap.add_argument("--floor-id", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--cert"), ap.add_argument("--key")
    ap.add_argument("--peer-cert"), ap.add_argument("--fingerprint"), ap.add_argument("--keylog")
    a = ap.parse_args()

    def out(obj):
        print(json.dumps(obj), flush=True)

    ctx = None
    if a.cert:
        ctx = peer_net.tls_context(a.role == "server", a.cert, a.key, a.peer_cert, a.keylog)
    if a.role == "client":
        sock = peer_net.connect(a.host, a.port, ctx, a.timeout, a.fingerprint)
        with BfcpPeer(sock, log=out) as peer:
            peer.run_client_sequence(a.conference_id, a.user_id, a.floor_id, a.timeout)
        return 0
    lst = socket.create_server((a.host, a.port))
    out({"kind": "listening", "port": lst.getsockname()[1]})
    sock = peer_net.accept(lst, ctx, a.timeout, a.fingerprint)
    lst.close()
    with BfcpPeer(sock, server=True, log=out) as peer:
        peer.wait_for(lambda m: m.primitive == GOODBYE, a.timeout, "Goodbye")
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
