"""A self-signed certificate for a test's own DTLS peer (pyOpenSSL), as a
WebRTC stack or an IMS UE makes one per call (RFC 8122 5: the fingerprint
in the SDP is what authenticates it, so no CA is involved)."""

import os

from OpenSSL import crypto


def self_signed(key, name):
    """|key|: a crypto.PKey. Returns (cert, fingerprint as SDP writes it)."""
    cert = crypto.X509()
    cert.get_subject().CN = name
    cert.set_serial_number(int.from_bytes(os.urandom(8), "big"))
    cert.gmtime_adj_notBefore(-3600)
    cert.gmtime_adj_notAfter(86400)
    cert.set_issuer(cert.get_subject())
    cert.set_pubkey(key)
    cert.sign(key, "sha256")
    return cert, "sha-256 " + cert.digest("sha256").decode()
