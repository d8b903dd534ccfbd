#!/usr/bin/env python3
"""Self-tests of the MSRP and BFCP test peers (msrp_peer.py, bfcp_peer.py)
and of the tshark wire check (tshark_check.py), without dcmfd: two peers
talk through a TCP pass-through written here (which re-splits the stream
into small random writes, so chunks cross segment boundaries), plain and
once over TLS with pinned self-signed certificates; tshark decodes every
byte and must flag nothing, and what it decodes must be what was sent.

    test_peers.py msrp|bfcp
"""
import os
import random
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bfcp_peer as bfcp  # noqa: E402
import msrp_peer as msrp  # noqa: E402
import tshark_check  # noqa: E402

HOST = "127.0.0.1"


class PassThrough:
    """A TCP relay for one connection: accept on its own port, connect to
    the target, copy both ways; resplit=True writes what it reads in
    random 1..1500-byte pieces (TCP_NODELAY) so that PDUs are cut anywhere."""

    def __init__(self, target_port, resplit=True):
        self.lst = socket.create_server((HOST, 0))
        self.port = self.lst.getsockname()[1]
        self.target_port = target_port
        self.resplit = resplit
        self.rng = random.Random(1234)
        self.threads = []
        self.socks = []
        t = threading.Thread(target=self._run, daemon=True)
        t.start()
        self.threads.append(t)

    def _run(self):
        self.lst.settimeout(15)
        try:
            a, _ = self.lst.accept()
        except OSError:
            return
        b = socket.create_connection((HOST, self.target_port), timeout=10)
        for s in (a, b):
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socks = [a, b]
        for src, dst in ((a, b), (b, a)):
            t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
            t.start()
            self.threads.append(t)

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self.resplit:
                    dst.sendall(data)
                    continue
                i = 0
                while i < len(data):
                    n = self.rng.randint(1, 1500)
                    dst.sendall(data[i:i + n])
                    i += n
        except OSError:
            pass
        for s in (dst, src):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.lst.close()
        for s in self.socks:
            s.close()
        for t in self.threads:
            t.join(5)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what, flush=True)


def make_cert(dirname, name):
    """A self-signed ECDSA P-256 certificate with `openssl req`."""
    cert = os.path.join(dirname, name + ".pem")
    key = os.path.join(dirname, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + name], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    return cert, key


def tshark_msrp_matches(res, sent_frames, legs):
    """Every request and response sent appears `legs` times in tshark's
    decode with the same method / code, Message-ID, Byte-Range and flag."""
    by_tid = {}
    for t in res.msrp:
        by_tid.setdefault((t.get("tid"), "code" in t), []).append(t)
    for f in sent_frames:
        seen = by_tid.get((f.tid, f.is_response), [])
        if len(seen) != legs:
            raise AssertionError("tshark saw %s %d times, not %d: %r"
                                 % (f.tid, len(seen), legs, f.summary()))
        for t in seen:
            if f.is_response:
                assert t.get("code") == f.code, (t, f.summary())
            else:
                assert t.get("method") == f.method, (t, f.summary())
                for h in ("Message-ID", "Byte-Range", "Status"):
                    assert t.get(h) == f.header(h), (h, t, f.summary())
            assert t.get("flag") == f.flag, (t, f.summary())
    total = sum(len(v) for v in by_tid.values())
    if total != legs * len(sent_frames):
        raise AssertionError("tshark decoded %d MSRP PDUs, %d expected" % (total, legs * len(sent_frames)))


def msrp_session(tmp, tls=None):
    """B listens, A connects through a pass-through; both send. Returns the
    capture result and the frames each side received."""
    lst = socket.create_server((HOST, 0))
    bport = lst.getsockname()[1]
    relay = PassThrough(bport)
    a_uri = "msrp%s://127.0.0.1:%d/a1b2c3;tcp" % ("s" if tls else "", relay.port)
    b_uri = "msrp%s://127.0.0.1:%d/d4e5f6;tcp" % ("s" if tls else "", bport)
    pcap = os.path.join(tmp, "msrp%s.pcap" % ("-tls" if tls else ""))
    keylog = os.path.join(tmp, "keys.log") if tls else None
    cap = tshark_check.Capture([bport, relay.port], pcap).start()
    try:
        box = {}

        def server():
            ctx = None
            if tls:
                ctx = msrp.tls_context(True, tls["b"][0], tls["b"][1], peer_cert_pem=tls["a"][0])
            box["b"] = msrp.accept(lst, ctx, 10, tls and msrp.pem_fingerprint(tls["a"][0]))

        th = threading.Thread(target=server)
        th.start()
        actx = None
        if tls:
            actx = msrp.tls_context(False, tls["a"][0], tls["a"][1], keylog=keylog)
        asock = msrp.connect(HOST, relay.port, actx, 10,
                             tls and msrp.pem_fingerprint(tls["b"][0]))
        th.join(15)
        A = msrp.MsrpPeer(asock, a_uri, b_uri)
        B = msrp.MsrpPeer(box["b"], b_uri, a_uri)
        # 1. a bodiless SEND opens the session (RFC 4975 §5.4, RFC 8873 §5.2)
        tid = A.send_bodiless()
        r = A.wait_response(tid)
        check(r.code == 200 and r.to_path == [a_uri] and r.from_path == [b_uri],
              "bodiless SEND answered 200, To-Path = the SEND's From-Path")
        # 2. messages of 0 bytes, 2 KiB (with a success REPORT) and 1 MiB
        #    in 4 KiB chunks, and one the other way
        bodies = [b"", os.urandom(2048), os.urandom(1 << 20 if not tls else 200000)]
        mids = []
        for i, body in enumerate(bodies):
            mid, tids = A.send_message(body, chunk_size=4096, content_type="application/octet-stream",
                                       success_report="yes" if i == 1 else None)
            mids.append(mid)
            for t in tids:
                check_code = A.wait_response(t, 20).code
                assert check_code == 200, check_code
        got = B.wait_message(3, 20)
        for m, body, mid in zip(got, bodies, mids):
            check(m.complete and not m.aborted and m.message_id == mid and bytes(m.data) == body,
                  "message of %d bytes arrives whole (%d chunk(s))" % (len(body), m.chunks))
        rep = A.wait_report(mids[1])
        check(rep.header("Status") == "000 200 OK" and rep.header("Byte-Range") == "1-2048/2048"
              and rep.to_path == [a_uri], "Success-Report: yes gives one REPORT 000 200 for 1-2048/2048")
        check(all(r.message_id != mids[0] and r.message_id != mids[2] for r in A.reports),
              "no REPORT without Success-Report")
        mid_b, tids_b = B.send_message("hello from B".encode(), content_type="text/plain")
        check(A.wait_message(1)[0].data == b"hello from B" and B.wait_response(tids_b[0]).code == 200,
              "the other direction works")
        # 3. an aborted message: two chunks, the second with '#'
        mid_x, tids_x = A.send_message(os.urandom(10000), chunk_size=4096, abort_after=2)
        ab = B.wait_message(4)[3]
        check(ab.aborted and not ab.complete and ab.message_id == mid_x,
              "a chunk ending in '#' aborts the message")
        for t in tids_x:
            A.wait_response(t)
        # 4. Failure-Report: no gets no response (§7.1.4): responses come
        #    back in order, so the next SEND's response proves none came.
        mid_n, tids_n = A.send_message(b"quiet", failure_report="no")
        mid_y, tids_y = A.send_message(b"loud")
        A.wait_response(tids_y[0])
        check(tids_n[0] not in A.responses, "Failure-Report: no is not answered")
        # 5. a SEND to another session gets 481 (§7.3), URIs compared by §6.1
        other = b_uri.replace("d4e5f6", "D4E5F6")
        tid = msrp.new_ident()
        A.send_raw(msrp.encode_send(tid, other, a_uri, msrp.new_ident(), b"x"))
        check(A.wait_response(tid).code == 481 and len(B.misaddressed) == 1,
              "a SEND whose To-Path is not the peer's (session-id differs in case) gets 481")
        upper = b_uri.replace("msrp", "MSRP", 1).replace("127.0.0.1", "127.0.0.1").replace(";tcp", ";TCP")
        tid = msrp.new_ident()
        A.send_raw(msrp.encode_send(tid, upper, a_uri, msrp.new_ident(), b"y"))
        check(A.wait_response(tid).code == 200 and B.wait_message(7)[6].data == b"y",
              "scheme and transport compare without case (6.1)")
        # 6. a non-200 answer
        B.response_code = 415
        mid_r, tids_r = A.send_message(b"<x/>", content_type="application/x-unknown")
        check(A.wait_response(tids_r[0]).code == 415, "a peer told to refuse answers 415")
        B.response_code = 200
        A.close()
        B.close()
        lst.close()
        relay.close()
    finally:
        cap.stop()
    res = tshark_check.analyze(pcap, msrp_ports=[bport, relay.port],
                               tls_ports=[bport, relay.port] if tls else [], keylog=keylog)
    return res, A, B


def test_msrp():
    with tempfile.TemporaryDirectory() as tmp:
        res, A, B = msrp_session(tmp)
        res.assert_clean()
        check(not res.problems, "tshark: no malformed frame, no expert error (%d frames)" % res.frames)
        # Every PDU crosses two TCP connections (A-relay, relay-B).
        tshark_msrp_matches(res, A.frames + B.frames, 2)
        check(True, "tshark decodes every MSRP PDU on both legs as sent (%d)" % len(res.msrp))

        certs = {"a": make_cert(tmp, "a"), "b": make_cert(tmp, "b")}
        res, A, B = msrp_session(tmp, tls=certs)
        res.assert_clean()
        tshark_msrp_matches(res, A.frames + B.frames, 2)
        check(True, "over TLS (pinned self-signed certs, keylog) tshark decodes every PDU (%d)" % len(res.msrp))

        # A wrong pinned fingerprint is refused.
        lst = socket.create_server((HOST, 0))
        port = lst.getsockname()[1]
        srv_err = {}

        def server():
            try:
                s = msrp.accept(lst, msrp.tls_context(True, *certs["b"]), 10)
                s.recv(1)
                s.close()
            except (OSError, ssl.SSLError) as e:
                srv_err["e"] = e

        th = threading.Thread(target=server)
        th.start()
        try:
            msrp.connect(HOST, port, msrp.tls_context(False, *certs["a"]), 10,
                         msrp.pem_fingerprint(certs["a"][0]))
            raise AssertionError("a wrong fingerprint was accepted")
        except ssl.SSLError as e:
            check("fingerprint" in str(e), "a certificate that does not match the pin is refused")
        th.join(15)
        lst.close()

        # Hostile bytes: a clear error, the connection closed, no hang.
        hostile = [b"GET / HTTP/1.1\r\n\r\n",
                   b"MSRP a SEND\r\nTo-Path: x\r\n",                        # tid too short
                   b"MSRP abcd1234 SEND\r\nFrom-Path: x\r\nTo-Path: y\r\n-------abcd1234$\r\n",
                   b"MSRP abcd1234 SEND\r\n" + b"X" * 20000,                 # no line end
                   b"MSRP abcd1234 SEND\r\nTo-Path: x\r\nFrom-Path: y\r\nMessage-ID: m123\r\n"
                   b"Content-Type: text/plain\r\n\r\n" + b"z" * 300000,       # no end-line
                   b"MSRP abcd1234 200 OK\r\nTo-Path: x\r\nFrom-Path: y\r\n-------abcd1234+\r\n"]
        pcap = os.path.join(tmp, "hostile.pcap")
        lst = socket.create_server((HOST, 0))
        port = lst.getsockname()[1]
        with tshark_check.Capture([port], pcap):
            for bad in hostile:
                c = socket.create_connection((HOST, port), timeout=10)
                s, _ = lst.accept()
                p = msrp.MsrpPeer(s, "msrp://127.0.0.1:1/x;tcp", "msrp://127.0.0.1:2/y;tcp",
                                  max_chunk_bytes=200000)
                t0 = time.monotonic()
                c.sendall(bad)
                p.wait_closed(10)
                c.settimeout(10)
                check(p.error and "MsrpParseError" in p.error and c.recv(100) == b"",
                      "hostile %r: %s after %.2fs, connection closed"
                      % (bad[:24], p.error, time.monotonic() - t0))
                c.close()
                p.close()
        lst.close()
        res = tshark_check.analyze(pcap, msrp_ports=[port])
        check(len(res.problems) >= 1, "tshark_check flags the hostile bytes (%d problem frames)"
              % len(res.problems))

        # One chunk per data channel message (RFC 8873 §5.4).
        mid, chunks = msrp.chunk_message(["msrps://a:1/x;dc"], ["msrps://b:2/y;dc"],
                                         os.urandom(9000), 4096)
        dec, rea = msrp.MsrpDecoder(), msrp.Reassembler()
        msgs = [rea.add(dec.feed_message(c)) for _, c in chunks]
        check(msgs[-1] is not None and msgs[-1].complete and len(msgs[-1].data) == 9000,
              "per-message decoding reassembles %d chunks" % len(chunks))
        try:
            msrp.MsrpDecoder().feed_message(chunks[0][1] + chunks[1][1])
            raise AssertionError("two chunks in one message accepted")
        except msrp.MsrpParseError as e:
            check("one chunk per message" in str(e), "two chunks in one DC message are refused")
        # Seven dashes and the tid in a body, but not followed by a flag
        # and CRLF, are body, not an end-line (§7.1).
        tid = "abcd1234"
        tricky = b"x\r\n-------" + tid.encode() + b"!\r\n-------" + tid.encode() + b"$y"
        # (typed by hand: encode_send refuses any tid look-alike in a body)
        data = (b"MSRP abcd1234 SEND\r\nTo-Path: msrp://a:1/x;tcp\r\nFrom-Path: msrp://b:2/y;tcp\r\n"
                b"Message-ID: mid9\r\nByte-Range: 1-%d/%d\r\nContent-Type: text/plain\r\n\r\n"
                % (len(tricky), len(tricky)) + tricky + b"\r\n-------abcd1234$\r\n")
        dec = msrp.MsrpDecoder()
        frames = [f for i in range(len(data)) for f in dec.feed(data[i:i + 1])]
        check(len(frames) == 1 and frames[0].body == tricky,
              "end-line look-alikes in a body stay body, fed one byte at a time")
        try:
            msrp.MsrpDecoder().feed_message(chunks[0][1][:-5])
            raise AssertionError("half a chunk accepted")
        except msrp.MsrpParseError:
            check(True, "half a chunk in one DC message is refused")


def test_bfcp():
    with tempfile.TemporaryDirectory() as tmp:
        certs = {"a": make_cert(tmp, "a"), "b": make_cert(tmp, "b")}
        for tls in (False, True):
            lst = socket.create_server((HOST, 0))
            bport = lst.getsockname()[1]
            relay = PassThrough(bport)
            pcap = os.path.join(tmp, "bfcp%d.pcap" % tls)
            keylog = os.path.join(tmp, "bkeys.log") if tls else None
            box = {}
            with tshark_check.Capture([bport, relay.port], pcap):
                def server():
                    ctx = msrp.tls_context(True, *certs["b"], peer_cert_pem=certs["a"][0]) if tls else None
                    box["s"] = msrp.accept(lst, ctx, 10, tls and msrp.pem_fingerprint(certs["a"][0]))

                th = threading.Thread(target=server)
                th.start()
                ctx = msrp.tls_context(False, *certs["a"], keylog=keylog) if tls else None
                c = msrp.connect(HOST, relay.port, ctx, 10, tls and msrp.pem_fingerprint(certs["b"][0]))
                th.join(15)
                S = bfcp.BfcpPeer(box["s"], server=True)
                C = bfcp.BfcpPeer(c)
                answers = C.run_client_sequence(conf=77, user=5, floor_id=3)
                names = [m.name for m in answers]
                check(names == ["HELLO_ACK", "FLOOR_REQUEST_STATUS", "FLOOR_REQUEST_STATUS",
                                "GOODBYE_ACK"], "%sclient sequence answered: %s" % ("TLS " if tls else "", names))
                check(bfcp.request_status_of(answers[1]) == (1, bfcp.GRANTED)
                      and bfcp.request_status_of(answers[2]) == (1, bfcp.RELEASED),
                      "floor request 1 granted, then released")
                check(all(m.conference_id == 77 and m.user_id == 5 and m.version == 1 for m in answers),
                      "answers keep conference id, user id, version 1 (TCP)")
                # Two messages in one write, and an unknown primitive.
                two = bfcp.encode_message(bfcp.hello(77, 40, 5)) + bfcp.encode_message(
                    bfcp.Message(99, 77, 41, 5))
                C.send_raw(two)
                C.wait_for(lambda m: m.transaction_id == 40 and m.primitive == bfcp.HELLO_ACK)
                err = C.wait_for(lambda m: m.transaction_id == 41)
                check(err.primitive == bfcp.ERROR and err.find(bfcp.ERROR_CODE)[0].value[0] == 3,
                      "an unknown primitive gets Error 3 (Unknown primitive)")
                sent_c = [m for m in S.received]
                sent_s = [m for m in C.received]
                C.close()
                S.close()
                lst.close()
                relay.close()
            res = tshark_check.analyze(pcap, bfcp_ports=[bport, relay.port],
                                       tls_ports=[bport, relay.port] if tls else [], keylog=keylog)
            # Wireshark does not take primitive 99 for BFCP: the framing
            # script flags exactly those two frames (one per leg).
            refused = [p for p in res.problems if "did not accept" in p[1]]
            check(len(refused) == 2 and len(res.problems) == 2,
                  "tshark flags only the unknown primitive, once per leg: %r" % res.problems)
            want = sorted((m.primitive, m.transaction_id) for m in sent_c + sent_s
                          if m.primitive != 99) * 2
            got = sorted((b["primitive"], b["transaction_id"]) for b in res.bfcp)
            check(sorted(want) == got, "tshark decodes the %d BFCP messages on both legs as sent%s"
                  % (len(got), " (TLS)" if tls else ""))
            check(all(b["version"] == 1 for b in res.bfcp), "tshark: version 1 everywhere")

        # Hostile bytes: a clear error, not a hang.
        for bad, why in ((b"\x00" * 12, "version"), (b"\x20\x01\x00\x01" + b"\0" * 8 + b"\x05\x09\0\0", "length"),
                         (b"\x40\x01\x00\x00" + b"\0" * 8, "version 2 over TCP")):
            try:
                bfcp.StreamDecoder().feed(bad)
                raise AssertionError("accepted %r" % bad)
            except bfcp.BfcpParseError as e:
                check(why in str(e), "hostile BFCP %r refused: %s" % (bad[:6], e))
        m = bfcp.StreamDecoder().feed(b"\x3f\x0b\x00\x00" + b"\0" * 8)[0]
        check(m.primitive == bfcp.HELLO and m.fragment_bit and m.responder and m.reserved_bits == 7,
              "R, F and reserved bits over TCP are ignored, not refused (RFC 8855 5.1)")
        # A round trip of every builder through the codec.
        for m in (bfcp.hello_ack(1, 2, 3), bfcp.floor_request_status(1, 2, 3, 4, 5, bfcp.PENDING, 2),
                  bfcp.error(1, 2, 3, 10, "bad"), bfcp.floor_release(1, 2, 3, 4)):
            data = bfcp.encode_message(m)
            back = bfcp.decode_message(data)
            check(bfcp.encode_message(back) == data and len(data) % 4 == 0,
                  "%s encodes, decodes and encodes to the same %d octets" % (m.name, len(data)))


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "msrp"
    {"msrp": test_msrp, "bfcp": test_bfcp}[which]()
    print("all passed", flush=True)
