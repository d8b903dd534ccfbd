// msrp_dc_relay - the anchor of tests/bench/msrp_dc_compare.py: a plain
// data channel <-> TCP relay with the same WebRTC library as the load
// (node-datachannel), doing what such a relay cannot do without and
// nothing more. It answers the WIC's offer (one negotiated channel,
// subprotocol "msrp"), connects to the core peer at once, and then:
//   channel -> TCP: each message written as it is;
//   TCP -> channel: the stream cut at MSRP chunk ends (RFC 4975 §7.1: the
//     end-line "-------" + the start line's transaction id + flag), one
//     chunk per channel message (RFC 8873 §5.4); no other parsing, no
//     path rewriting, no splitting (the load's chunks fit the 256 KiB
//     max-message-size both sides announce).
// Back-pressure: TCP reads pause while the channel holds over 1 MiB; the
// load's window bounds the other way.
//
// stdin: "offer SDP_JSON" -> stdout "answer SDP_JSON", then "connected"
// once the channel is open and TCP is up; "quit".
// Usage: node msrp_dc_relay.js CORE_PORT
"use strict";
const net = require("net");
const path = require("path");
const readline = require("readline");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const ndc = require("node-datachannel");

const CORE_PORT = Number(process.argv[2]);
const STREAM_ID = 3;
const CHANNEL_HIGH = 1024 * 1024;
const STREAM_MAX = 4 * 1024 * 1024;

const out = (s) => process.stdout.write(s + "\n");
function fail(why) {
  out(`error ${why}`);
  process.exit(1);
}

let pc, dc, sock;
let opened = false, tcpUp = false;
let pending = Buffer.alloc(0); // stream bytes not yet a whole chunk
let scanFrom = 0; // where the end-line search of the head chunk resumes

function connected() {
  if (opened && tcpUp) out("connected");
}

// The whole chunks at the head of the stream, each one channel message.
function cut() {
  let off = 0;
  for (;;) {
    const sp = pending.indexOf(0x20, off + 5);
    if (pending.length - off < 6 || sp < 0) break;
    const endLine = "\r\n-------" + pending.latin1Slice(off + 5, sp);
    const at = pending.indexOf(endLine, Math.max(sp, scanFrom), "latin1");
    if (at < 0 || at + endLine.length + 3 > pending.length) {
      scanFrom = Math.max(sp, pending.length - endLine.length - 3);
      break;
    }
    const stop = at + endLine.length + 3; // flag, CRLF
    dc.sendMessageBinary(pending.subarray(off, stop));
    off = stop;
    scanFrom = 0;
  }
  if (off > 0) {
    pending = pending.subarray(off);
    scanFrom = Math.max(0, scanFrom - off);
  }
  if (pending.length > STREAM_MAX) fail("no chunk end in 4 MiB of the core's stream");
  if (dc.bufferedAmount() > CHANNEL_HIGH) sock.pause();
}

function onOffer(sdp) {
  pc = new ndc.PeerConnection("relay", { iceServers: [], bindAddress: "127.0.0.1",
    maxMessageSize: 262144, disableAutoNegotiation: true });
  pc.onGatheringStateChange((s) => {
    if (s === "complete") out("answer " + JSON.stringify(pc.localDescription().sdp));
  });
  pc.setRemoteDescription(sdp, "offer");
  dc = pc.createDataChannel("chat", { negotiated: true, id: STREAM_ID, protocol: "msrp", ordered: true });
  dc.setBufferedAmountLowThreshold(CHANNEL_HIGH / 4);
  dc.onBufferedAmountLow(() => sock.resume());
  dc.onOpen(() => { opened = true; connected(); });
  dc.onMessage((m) => sock.write(Buffer.isBuffer(m) ? m : Buffer.from(m)));
  dc.onClosed(() => sock.end());
  pc.setLocalDescription("answer");
  sock = net.connect({ host: "127.0.0.1", port: CORE_PORT, noDelay: true }, () => {
    tcpUp = true;
    connected();
  });
  sock.on("data", (d) => {
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    cut();
  });
  sock.on("error", (e) => fail(`core socket: ${e.message}`));
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.startsWith("offer ")) {
    onOffer(JSON.parse(line.slice(6)));
  } else if (line.trim() === "quit") {
    try { pc.close(); } catch (e) { /* already */ }
    if (sock) sock.destroy();
    ndc.cleanup();
    process.exit(0);
  }
});
process.stdin.on("end", () => process.exit(0));
