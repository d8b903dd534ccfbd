#!/usr/bin/env python3
"""TCP and TLS set-up for the MSRP and BFCP test peers (msrp_peer.py,
bfcp_peer.py): fingerprint-based TLS authentication as RFC 4975 §14.4 and
RFC 6714 §2 describe it (self-signed certificates, the peer's certificate
hash compared with the SDP a=fingerprint; no CA, no host name), and a
keylog file for tshark."""
import hashlib
import select
import socket
import ssl
import threading
import time


def cert_fingerprint(der, algo="sha256"):
    """'AB:CD:...' fingerprint of a DER certificate (RFC 8122 format)."""
    return ":".join("%02X" % b for b in hashlib.new(algo, der).digest())


def pem_fingerprint(pem_path, algo="sha256"):
    """The fingerprint of the certificate in a PEM file."""
    with open(pem_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return cert_fingerprint(der, algo)


def tls_context(server, certfile, keyfile, peer_cert_pem=None, keylog=None):
    """An ssl.SSLContext for fingerprint-based TLS (RFC 6714 §2 /
    RFC 4975 §14.4): our self-signed cert, no CA checks, no hostname.
    As a server, peer_cert_pem (the client's self-signed cert) makes the
    server ask for and accept exactly that client certificate; the
    fingerprint is checked again after the handshake (pin_peer)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(certfile, keyfile)
    if not server:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif peer_cert_pem:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(peer_cert_pem)
    if keylog:
        ctx.keylog_filename = keylog
    return ctx


def pin_peer(tls_sock, expected_fingerprint, algo="sha256"):
    """Raise ssl.SSLError unless the peer's certificate hash matches the
    expected 'AB:CD:..' fingerprint (as an SDP a=fingerprint carries)."""
    der = tls_sock.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("peer sent no certificate")
    got = cert_fingerprint(der, algo)
    if got.upper() != expected_fingerprint.upper():
        raise ssl.SSLError("peer fingerprint %s != expected %s" % (got, expected_fingerprint))
    return got


def connect(host, port, tls_ctx=None, timeout=10, expect_fingerprint=None):
    """A connected (TLS-wrapped if tls_ctx) client socket, fingerprint pinned."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_side=False)
        if expect_fingerprint:
            pin_peer(s, expect_fingerprint)
    s.settimeout(None)
    return s


def accept(listener, tls_ctx=None, timeout=10, expect_fingerprint=None):
    """Accept one connection on a listening socket (TLS server if tls_ctx)."""
    listener.settimeout(timeout)
    s, _ = listener.accept()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls_ctx is not None:
        s.settimeout(timeout)
        s = tls_ctx.wrap_socket(s, server_side=True)
        if expect_fingerprint:
            pin_peer(s, expect_fingerprint)
    s.settimeout(None)
    return s


class StreamPeer:
    """What both peers share: a connected socket, a reader thread that
    hands received bytes to on_bytes() (subclasses parse and answer), a
    send lock, and waits with a deadline. A parse error (parse_errors)
    or a socket error ends the reader, is kept in .error, and shuts the
    socket so the other side sees it at once: a stream with bad bytes
    cannot be resynchronised."""

    parse_errors = ()

    def __init__(self, sock):
        self.sock = sock
        self.cond = threading.Condition()
        self.error = None
        self.closed = False
        self.sent_bytes = 0
        self._send_lock = threading.Lock()
        # An OpenSSL SSL object must not be used by two threads at once,
        # and Python's ssl module lets go of the GIL inside SSL_read and
        # SSL_write: a reader thread in recv() and a writer in sendall()
        # on one SSLSocket crashed the interpreter (SIGSEGV in CI). So a
        # TLS socket is non-blocking and every call on it is made under
        # _io_lock, with the waiting done in select() outside the lock.
        # A plain socket may be read and written from two threads.
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._io_lock = threading.Lock()
        self._closing = False
        if self._tls:
            sock.setblocking(False)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)

    def start(self):
        self._reader.start()

    def on_bytes(self, data):
        raise NotImplementedError

    def send_raw(self, data):
        """Bytes as they are (several PDUs in one write, broken ones)."""
        with self._send_lock:
            if self._tls:
                self._tls_sendall(data)
            else:
                self.sock.sendall(data)
            self.sent_bytes += len(data)

    def _tls_sendall(self, data):
        # SSL_write without partial writes: after "want write" it must be
        # called again with the same bytes, and it then reports them all.
        view = memoryview(data)
        while view:
            with self._io_lock:
                if self._closing:
                    raise OSError("connection closed while sending")
                try:
                    view = view[self.sock.send(view):]
                    continue
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    pass
            self._wait_io(want_write=True)

    def _wait_io(self, want_write):
        """Wait (at most 0.2 s, so that a close is seen) until the TLS
        socket may be read or written; a socket closed meanwhile ends it."""
        try:
            if want_write:
                select.select([], [self.sock], [], 0.2)
            else:
                select.select([self.sock], [], [], 0.2)
        except (ValueError, OSError):
            if not self._closing:
                raise

    def wait_until(self, pred, timeout, what):
        """pred()'s first true value, checked under the lock; raises
        TimeoutError at the deadline, AssertionError once the connection
        failed or closed without it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                r = pred()
                if r:
                    return r
                if self.error:
                    raise AssertionError("%s: connection failed: %s" % (what, self.error))
                if self.closed:
                    raise AssertionError("%s: connection closed" % what)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%s: not within %.1fs" % (what, timeout))
                self.cond.wait(min(left, 0.2))

    def wait_closed(self, timeout=10):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("connection close: not within %.1fs" % timeout)
                self.cond.wait(min(left, 0.2))
        return True

    def _recv(self):
        """The next bytes received (b"" at the end of the stream)."""
        if not self._tls:
            return self.sock.recv(262144)
        while True:
            with self._io_lock:
                if self._closing:
                    return b""
                try:
                    return self.sock.recv(262144)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
            self._wait_io(want_write=False)

    def _shutdown(self):
        with self._io_lock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _read_loop(self):
        try:
            while True:
                data = self._recv()
                if not data:
                    break
                self.on_bytes(data)
        except (OSError, ValueError) + tuple(self.parse_errors) as e:
            with self.cond:
                self.error = "%s: %s" % (type(e).__name__, e)
            self._shutdown()
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def close(self):
        with self._io_lock:
            self._closing = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        self._reader.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
