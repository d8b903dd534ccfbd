#!/usr/bin/env python3
"""Sorts `perf script` samples of dcmfd's process tree into the parts of
a bootstrap set-up and prints Markdown rows: share of the samples and
µs of CPU per set-up.

    perf script -i perf.data | setup_profile.py SETUPS FREQ

Each sample goes to the part named by the innermost frame of its call
chain that marks one (below), so the peer-certificate decode inside the
handshake counts as its own part, and the SCTP association that the
handshake's last flight starts counts as SCTP. Samples without a marked
frame are "other", by thread name. At FREQ samples per second of CPU,
one sample is 1/FREQ s.
"""
import collections
import re
import sys

# (part, frames that mark it); the innermost marked frame wins.
PARTS = [
    ("DTLS: decoding the peer's certificate (OpenSSL 3.0 decoders)",
     ["ASN1_item_d2i_ex", "d2i_X509"]),
    ("DTLS: certificate check (fingerprint)",
     ["X509_verify_cert", "verify_cb", "cert_verify", "X509_digest"]),
    ("SCTP: association set-up, input, timers (usrsctp)",
     ["dcmf_sctp_connect", "dcmf_sctp_input", "dcmf_sctp_new", "dcmf_sctp_drain",
      "on_sctp_tick", "dcmf_sctp_del", "usrsctp_conninput", "usrsctp_handle_timers"]),
    ("DTLS: the rest of the handshake (ECDHE, ECDSA, hashes, records in)",
     ["dcmf_dtls_recv", "SSL_do_handshake"]),
    ("DTLS records out and UDP sends", ["dcmf_dtls_send", "stack_send_datagram"]),
    ("session start (SSL_new, socket, ICE state)", ["dcmf_session_new", "handle_add"]),
    ("session end (SSL_free, socket close)", ["dcmf_session_close", "handle_remove"]),
    ("control: context create and delete (JSON, ports, random)",
     ["dcmf_registry_create", "dcmf_registry_delete", "dcmf_registry_patch"]),
    ("control: media to the worker (frame, SCM_RIGHTS)",
     ["dcmf_wpool_post", "dcmf_wlink_send"]),
    ("control: API requests and responses (HTTP/2, JSON)",
     ["dcmf_api_handle", "nghttp2_session_mem_recv", "nghttp2_session_send"]),
    ("control: worker events into contexts", ["dcmf_controller_on_event", "wp_event"]),
    ("worker process: link to and from the worker thread",
     ["on_frame", "on_event", "dcmf_wire_decode_media"]),
    ("worker: events out (emit: queue and wake-up)", ["emit", "on_outbox"]),
    ("worker: control messages in", ["on_inbox"]),
    ("UDP receive, STUN/ICE", ["on_udp", "dcmf_ice_input"]),
    ("event loops waiting and waking (epoll)", ["epoll_wait", "uv__io_poll"]),
]
MARK = {f: part for part, frames in PARTS for f in frames}


def frame_name(line):
    parts = line.strip().split(None, 1)
    if len(parts) < 2:
        return ""
    return re.sub(r"\+0x[0-9a-f]+$", "", parts[1].split(" (")[0])


def main():
    setups = float(sys.argv[1])
    freq = float(sys.argv[2])
    counts = collections.Counter()
    total = 0
    for block in sys.stdin.read().split("\n\n"):
        lines = [ln for ln in block.strip().split("\n") if ln.strip()]
        if len(lines) < 2:
            continue
        total += 1
        part = None
        for ln in lines[1:]:  # innermost first
            part = MARK.get(frame_name(ln))
            if part:
                break
        counts[part or "other (thread %s)" % lines[0].split()[0]] += 1
    if total == 0:
        sys.exit("no samples: did perf record the dcmfd processes?")
    print("| part of a set-up | share of dcmfd's CPU | µs per set-up |")
    print("|---|---|---|")
    for part, n in counts.most_common():
        print("| %s | %.1f %% | %.0f |" % (part, 100.0 * n / total, n / freq / setups * 1e6))
    print("| all (%d samples) | 100 %% | %.0f |" % (total, total / freq / setups * 1e6))


main()
