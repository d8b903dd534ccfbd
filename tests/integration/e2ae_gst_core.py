#!/usr/bin/python3
"""The IMS core peer of e2ae_chromium.js: a GStreamer RTP endpoint.

One rtpbin session (RTCP sender and receiver reports, RFC 3550) on two
UDP sockets of its own (RTP and RTCP) or one with rtcp-mux. It receives
what the AGW forwards (Opus or VP8), decodes it, and sends its own
stream (audiotestsrc or videotestsrc) back from the same sockets, so
that the AGW sees it come from the signalled core address.

    /usr/bin/python3 e2ae_gst_core.py --media audio|video [--mux]
                                      [--profile avp|avpf] [--pt N] [--ssrc N]
                                      [--drop-first N] [--drop-every N]

--drop-first N and --drop-every N leave out RTP packets we send: the
first N and then every Nth, each with the rest of its frame (loss, for
NACK and PLI from the other side).

Protocol (JSON lines):
  stdout first: {"ev": "ports", "rtp": P, "rtcp": Q}   (Q = P with --mux)
  stdin:        {"rtp": AGW core RTP port, "rtcp": AGW core RTCP port}
                (e2ae_chromium.js reads them from dcmf-alg's offer
                toward the core: its m= port and a=rtcp, or the m= port
                once this peer answers rtcp-mux)
                starts the pipeline toward 127.0.0.1 at those ports;
                later {"cmd": "pli"} asks the sender for a key frame
                (rtpbin sends PLI when the profile is AVPF).
  stdout then:  {"ev": "rtp", "sock", "from", "ssrc", "seq", "pt", "len"}
                per RTP packet received (sock: "rtp" or "rtcp", the
                socket; from: the source port), {"ev": "rtcp", "sock",
                "from", "types", "ssrc"} per RTCP compound received, {"ev": "rtcp-out",
                "types", "ssrc"} per compound rtpbin sends, {"ev": "level",
                "rms", "peak"} (dB, audio, every 100 ms of decoded
                audio), {"ev": "frame", "n"} per decoded video frame,
                {"ev": "error", "msg"} on a pipeline error.
Ends on EOF of stdin or SIGTERM.
"""
import argparse
import json
import os
import re
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstNet", "1.0")
from gi.repository import Gio, GLib, Gst, GstNet  # noqa: E402


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def bind_udp():
    sock = Gio.Socket.new(Gio.SocketFamily.IPV4, Gio.SocketType.DATAGRAM, Gio.SocketProtocol.UDP)
    sock.bind(Gio.InetSocketAddress.new_from_string("127.0.0.1", 0), False)
    return sock, sock.get_local_address().get_port()


def rtcp_types(b):
    """Packet types of an RTCP compound, walked by its length fields."""
    types, off = [], 0
    while off + 4 <= len(b) and len(types) < 16:
        types.append(b[off + 1])
        off += 4 + 4 * ((b[off + 2] << 8) | b[off + 3])
    return types


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", choices=["audio", "video"], default="audio")
    ap.add_argument("--mux", action="store_true")
    ap.add_argument("--profile", choices=["avp", "avpf"], default="avp")
    ap.add_argument("--pt", type=int, default=111)
    ap.add_argument("--ssrc", type=int, default=0x5EED0001)
    # Loss toward the AGW, so that the client has something to ask for:
    # the first N RTP packets we send (part of the first key frame: a
    # receiver asks for a key frame, PLI) and then every Nth (NACK).
    ap.add_argument("--drop-first", type=int, default=0)
    ap.add_argument("--drop-every", type=int, default=0)
    args = ap.parse_args()

    Gst.init(None)
    rtp_sock, rtp_port = bind_udp()
    rtcp_sock, rtcp_port = (rtp_sock, rtp_port) if args.mux else bind_udp()
    say({"ev": "ports", "rtp": rtp_port, "rtcp": rtcp_port})

    if args.media == "audio":
        caps = ("application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,"
                f"payload={args.pt}")
        send = ("audiotestsrc is-live=true wave=sine freq=440 volume=0.5 ! audioconvert ! "
                f"audioresample ! opusenc ! rtpopuspay pt={args.pt} ssrc={args.ssrc}")
        decode = ("rtpopusdepay ! opusdec ! audioconvert ! "
                  "level interval=100000000 post-messages=true ! fakesink sync=false")
    else:
        caps = ("application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,"
                f"payload={args.pt},rtcp-fb-nack-pli=(boolean)true,rtcp-fb-nack=(boolean)true")
        # One key frame at the start and then only on request (PLI), so
        # that a receiver that lost the first decodes only after asking.
        send = ("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! "
                "vp8enc deadline=1 keyframe-max-dist=100000 ! "
                f"rtpvp8pay pt={args.pt} ssrc={args.ssrc} mtu=1200")
        decode = "rtpvp8depay ! vp8dec name=dec ! fakesink sync=false"

    if args.mux:
        # One socket: what it reads goes to the RTP input; the probe below
        # moves RTCP (RFC 5761 section 4) over to an appsrc feeding the
        # session's RTCP input.
        recv = (f"udpsrc name=src0 caps=\"{caps}\" ! rb.recv_rtp_sink_0 "
                "appsrc name=rtcpin is-live=true format=time do-timestamp=true "
                "caps=application/x-rtcp ! rb.recv_rtcp_sink_0 ")
    else:
        recv = (f"udpsrc name=src0 caps=\"{caps}\" ! rb.recv_rtp_sink_0 "
                "udpsrc name=src1 caps=application/x-rtcp ! rb.recv_rtcp_sink_0 ")
    desc = (f"rtpbin name=rb rtp-profile={args.profile} latency=100 {recv}"
            f"{send} ! rb.send_rtp_sink_0 "
            "rb.send_rtp_src_0 ! udpsink name=out0 sync=false async=false "
            "rb.send_rtcp_src_0 ! udpsink name=out1 sync=false async=false")
    pipe = Gst.parse_launch(desc)
    loop = GLib.MainLoop()
    keep = []  # Python wrappers GStreamer callbacks refer to

    src0 = pipe.get_by_name("src0")
    src0.set_property("socket", rtp_sock)
    src0.set_property("close-socket", False)
    if not args.mux:
        src1 = pipe.get_by_name("src1")
        src1.set_property("socket", rtcp_sock)
        src1.set_property("close-socket", False)

    def is_rtcp(b):
        return len(b) >= 8 and 192 <= b[1] <= 223

    def on_in(sockname):
        def probe(pad, info):
            buf = info.get_buffer()
            b = buf.extract_dup(0, buf.get_size())
            meta = GstNet.buffer_get_net_address_meta(buf)
            src = meta.addr.get_port() if meta is not None else 0
            if is_rtcp(b):
                say({"ev": "rtcp", "sock": sockname, "from": src, "types": rtcp_types(b),
                     "ssrc": int.from_bytes(b[4:8], "big")})
            elif len(b) >= 12 and b[0] >> 6 == 2:
                say({"ev": "rtp", "sock": sockname, "from": src, "ssrc": int.from_bytes(b[8:12], "big"),
                     "seq": (b[2] << 8) | b[3], "pt": b[1] & 0x7F, "len": len(b)})
            return Gst.PadProbeReturn.OK
        return probe

    src0.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_in("rtp"))
    if not args.mux:
        src1.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_in("rtcp"))
    else:
        rtcpin = pipe.get_by_name("rtcpin")

        def split(pad, info):
            buf = info.get_buffer()
            b = buf.extract_dup(0, min(buf.get_size(), 2))
            if len(b) == 2 and 192 <= b[1] <= 223:
                rtcpin.emit("push-buffer", buf.copy())
                return Gst.PadProbeReturn.DROP
            return Gst.PadProbeReturn.OK
        src0.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, split)

    sent = {"n": 0}

    def out_rtp(pad, info):
        # The payloader pushes a frame's packets as one buffer list: the
        # list that holds a packet to leave out goes as a whole (a lost
        # frame rather than a lost packet; the receiver asks the same).
        if info.type & Gst.PadProbeType.BUFFER_LIST:
            count = info.get_buffer_list().length()
        else:
            count = 1
        first, sent["n"] = sent["n"] + 1, sent["n"] + count
        drop = first <= args.drop_first or (
            args.drop_every and sent["n"] > 50 and sent["n"] // args.drop_every != (first - 1) // args.drop_every)
        return Gst.PadProbeReturn.DROP if drop else Gst.PadProbeReturn.OK
    if args.drop_first or args.drop_every:
        pipe.get_by_name("out0").get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, out_rtp)

    def out_rtcp(pad, info):
        buf = info.get_buffer()
        b = buf.extract_dup(0, buf.get_size())
        say({"ev": "rtcp-out", "types": rtcp_types(b), "ssrc": int.from_bytes(b[4:8], "big")})
        return Gst.PadProbeReturn.OK
    pipe.get_by_name("out1").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, out_rtcp)

    state = {"frames": 0, "depay_sink": None}

    def on_pad(rb, pad):
        name = pad.get_name()
        if not name.startswith("recv_rtp_src_0_"):
            return
        bin_ = Gst.parse_bin_from_description(decode, True)
        pipe.add(bin_)
        bin_.sync_state_with_parent()
        pad.link(bin_.get_static_pad("sink"))
        state["depay_sink"] = bin_.get_static_pad("sink")
        dec = bin_.get_by_name("dec")
        if dec is not None:
            def frame(p, info):
                state["frames"] += 1
                say({"ev": "frame", "n": state["frames"]})
                return Gst.PadProbeReturn.OK
            dec.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, frame)
        keep.append(bin_)

    rb = pipe.get_by_name("rb")
    rb.connect("pad-added", on_pad)
    # RTCP every 0.5 s rather than RFC 3550's 5 s minimum, so that a
    # test sees reports (and a round-trip time) in a few seconds.
    sess = rb.emit("get-internal-session", 0)
    sess.set_property("rtcp-min-interval", 500000000)
    # The session's own SSRC is ours too: otherwise the payloader may
    # take the session's random one from the caps it negotiates.
    sess.set_property("internal-ssrc", args.ssrc)

    def on_msg(bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            say({"ev": "error", "msg": f"{err.message} ({dbg})"})
            loop.quit()
        elif msg.type == Gst.MessageType.ELEMENT and msg.get_structure().get_name() == "level":
            # rms and peak are GValueArrays, which PyGObject does not
            # convert: read them from the structure's text.
            text = msg.get_structure().to_string()
            vals = {}
            for field in ("rms", "peak"):
                m = re.search(field + r"=\(GValueArray\)< ([^>]*) >", text)
                vals[field] = [float(x.strip().strip('"').replace("(double)", "")) for x in m.group(1).split(",")] if m else []
            say({"ev": "level", **vals})
        return True

    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_msg)

    started = {"v": False}
    pending = {"buf": b""}

    def on_stdin(ch, cond):
        # Raw reads, split here: a buffered readline could keep a second
        # line that arrived together with the first until more input.
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            loop.quit()
            return False
        pending["buf"] += data
        while b"\n" in pending["buf"]:
            line, pending["buf"] = pending["buf"].split(b"\n", 1)
            if line.strip():
                on_command(json.loads(line))
        return True

    def on_command(cmd):
        if not started["v"]:
            started["v"] = True
            for sink, port in (("out0", cmd["rtp"]), ("out1", cmd["rtcp"])):
                el = pipe.get_by_name(sink)
                el.set_property("socket", rtcp_sock if sink == "out1" else rtp_sock)
                el.set_property("close-socket", False)
                el.set_property("host", "127.0.0.1")
                el.set_property("port", port)
            pipe.set_state(Gst.State.PLAYING)
        elif cmd.get("cmd") == "pli" and state["depay_sink"] is not None:
            # A key unit request upstream of the depayloader: rtpbin's
            # session turns it into a PLI toward the sender (AVPF).
            ev = Gst.Event.new_custom(Gst.EventType.CUSTOM_UPSTREAM, Gst.Structure.new_from_string(
                "GstForceKeyUnit,all-headers=(boolean)true"))
            state["depay_sink"].push_event(ev)

    GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP, on_stdin)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: (loop.quit(), False)[1])
    try:
        loop.run()
    finally:
        pipe.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main()
