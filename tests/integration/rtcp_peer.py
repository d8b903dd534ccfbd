"""RTCP for the test peers, written from RFC 3550 §6 and Appendix A.2
(and RFC 5761 §4 for the muxed port); not from dcmfd's code.

    parse_compound(data) -> [packet dicts]   (raises RtcpError)
    receiver_report(ssrc, about=None, ...)   -> bytes (RR + SDES CNAME)
    is_rtcp(data)                            -> the RFC 5761 §4 demux
    tshark_rtcp(pcap, port, muxed)           -> rows of tshark's reading
"""
import struct
import subprocess

SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204


class RtcpError(Exception):
    pass


def is_rtcp(data):
    """RFC 5761 §4: on a port shared with RTP, a second octet of 192-223
    (RTP payload types 64-95 with the marker) is RTCP."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse_compound(data):
    """The packets of an RFC 3550 compound, checked as Appendix A.2 says:
    version 2 in every packet, the first an SR or RR without padding,
    padding only on the last, the lengths adding up to the datagram; an
    SR/RR holds its report blocks, an SDES its chunks, a BYE its SSRCs."""
    out, at = [], 0
    if len(data) < 8 or len(data) % 4:
        raise RtcpError("not a whole number of 32-bit words (%d bytes)" % len(data))
    while at < len(data):
        if at + 4 > len(data):
            raise RtcpError("header cut at %d" % at)
        b0, pt, words = struct.unpack("!BBH", data[at:at + 4])
        plen = 4 * (words + 1)
        if b0 >> 6 != 2:
            raise RtcpError("version %d" % (b0 >> 6))
        if at + plen > len(data):
            raise RtcpError("length past the end")
        body = data[at + 4:at + plen]
        if b0 & 0x20:
            if at + plen != len(data):
                raise RtcpError("padding before the last packet")
            if not body or body[-1] == 0 or body[-1] > len(body):
                raise RtcpError("bad padding count")
            body = body[:-body[-1]]
        count = b0 & 0x1F
        p = {"pt": pt, "count": count, "len": plen}
        if pt in (SR, RR):
            fixed = 24 if pt == SR else 4
            if len(body) < fixed + 24 * count:
                raise RtcpError("report blocks past the packet")
            p["ssrc"] = struct.unpack("!I", body[:4])[0]
            if pt == SR:
                p["ntp"], p["rtp_ts"], p["packets"], p["octets"] = \
                    struct.unpack("!QIII", body[4:24])
            p["blocks"] = []
            for k in range(count):
                b = body[fixed + 24 * k:fixed + 24 * (k + 1)]
                ssrc, lost_word, ext, jitter, lsr, dlsr = struct.unpack("!IIIIII", b)
                p["blocks"].append({"ssrc": ssrc, "fraction": lost_word >> 24,
                                    "lost": lost_word & 0xFFFFFF, "ext_seq": ext,
                                    "jitter": jitter, "lsr": lsr, "dlsr": dlsr})
        elif pt == SDES:
            p["chunks"], i = [], 0
            for _ in range(count):
                if i + 4 > len(body):
                    raise RtcpError("SDES chunk cut")
                chunk = {"ssrc": struct.unpack("!I", body[i:i + 4])[0]}
                i += 4
                while True:
                    if i >= len(body):
                        raise RtcpError("SDES items without END")
                    kind = body[i]
                    if kind == 0:  # END, then pad to the next word
                        i = (i + 4) // 4 * 4
                        break
                    if i + 2 > len(body) or i + 2 + body[i + 1] > len(body):
                        raise RtcpError("SDES item past the chunk")
                    chunk[kind] = body[i + 2:i + 2 + body[i + 1]].decode("utf-8")
                    i += 2 + body[i + 1]
                p["chunks"].append(chunk)
        elif pt == BYE:
            if len(body) < 4 * count:
                raise RtcpError("BYE sources past the packet")
            p["ssrcs"] = list(struct.unpack("!%dI" % count, body[:4 * count]))
        out.append(p)
        at += plen
    if out[0]["pt"] not in (SR, RR):
        raise RtcpError("the first packet is %d, not SR or RR" % out[0]["pt"])
    if data[0] & 0x20:
        raise RtcpError("padding on the first packet")
    return out


def receiver_report(ssrc, about=None, cname="core@127.0.0.1", lost=0, jitter=0):
    """An RR from |ssrc| with one report block about |about| (none when
    None), and SDES CNAME."""
    blocks = b""
    if about is not None:
        blocks = struct.pack("!IIIIII", about, (16 << 24) | lost, 1000, jitter, 0, 0)
    rr = struct.pack("!BBHI", 0x80 | (1 if blocks else 0), RR,
                     (8 + len(blocks)) // 4 - 1, ssrc) + blocks
    item = bytes([1, len(cname)]) + cname.encode() + b"\0"
    item += b"\0" * (-len(item) % 4)
    sdes = struct.pack("!BBHI", 0x81, SDES, (8 + len(item)) // 4 - 1, ssrc) + item
    return rr + sdes


def tshark_rtcp(pcap, port, muxed):
    """tshark's reading of every datagram to |port| holding RTCP: rows of
    packet types, sender SSRCs, CNAMEs, BYE sources and the problems. A
    muxed port is decoded as RTP (the RTP dissector hands RFC 5761
    packets to RTCP), else as RTCP."""
    fields = ["frame.number", "rtcp.version", "rtcp.pt", "rtcp.senderssrc",
              "rtcp.sdes.text", "rtcp.ssrc.identifier", "rtcp.length_check",
              "_ws.malformed", "_ws.expert.severity"]
    args = ["tshark", "-r", pcap, "-n", "-d",
            "udp.port==%d,%s" % (port, "rtp" if muxed else "rtcp"),
            "-Y", "udp.dstport==%d && rtcp" % port, "-T", "fields",
            "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines()]
