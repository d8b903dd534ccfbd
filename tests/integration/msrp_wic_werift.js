// A WebRTC IMS client for tests/integration/e2ae_msrp_dc.py: werift with
// one negotiated data channel of subprotocol "msrp" (RFC 8873), driven
// over stdin/stdout in JSON lines. It is only the transport: the MSRP
// the test sends and checks is the test's own (msrp_peer.py), so every
// data channel message crosses as it is, one line each (hex).
//
//   stdin:  {"cmd":"offer","id":N,"label":L[,"protocol":P]} -> {"ev":"offer","sdp":S}
//           {"cmd":"answer","sdp":S}          -> {"ev":"open"} once open
//           {"cmd":"answerTo","sdp":S,"id":N,"label":L,"protocol":P}
//                                             -> {"ev":"answer","sdp":S}
//           {"cmd":"send","hex":H}            (one SCTP user message)
//           {"cmd":"text","text":T}           (one string message, PPID 51)
//           {"cmd":"close"}                   (closes the channel)
//           {"cmd":"quit"}
//   stdout: {"ev":"msg","hex":H}, {"ev":"closed"}, {"ev":"error","error":E}
"use strict";
const path = require("path");
const readline = require("readline");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
let pc, dc;

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

function newPc() {
  return new werift.RTCPeerConnection({
    bundlePolicy: "disable",
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1",
  });
}

function openChannel(m) {
  // protocol: "msrp" unless the command names another ("t140" for
  // e2ae_t140.py); maxRetransmits only to test a refused offer.
  const opts = { negotiated: true, id: m.id, protocol: m.protocol || "msrp", ordered: true };
  if (m.maxRetransmits !== undefined) opts.maxRetransmits = m.maxRetransmits;
  dc = pc.createDataChannel(m.label, opts);
  dc.onopen = () => out({ ev: "open" });
  dc.onclose = () => out({ ev: "closed" });
  dc.onmessage = (e) => {
    const d = typeof e.data === "string" ? Buffer.from(e.data) : Buffer.from(e.data);
    out({ ev: "msg", hex: d.toString("hex") });
  };
}

async function handle(m) {
  if (m.cmd === "answerTo") {
    // The other way round: the network offers (a core offer rewritten
    // by the IMS-ALG), the WIC answers with the channel it names.
    // The channel after the offer: werift names its SCTP transport by
    // the offer's mid only when the offer creates it.
    pc = newPc();
    await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
    openChannel(m);
    await pc.setLocalDescription(await pc.createAnswer());
    out({ ev: "answer", sdp: only127(pc.localDescription.sdp) });
  } else if (m.cmd === "offer") {
    pc = newPc();
    openChannel(m);
    await pc.setLocalDescription(await pc.createOffer());
    // Host candidates are gathered by then (werift gathers before it
    // resolves setLocalDescription).
    out({ ev: "offer", sdp: only127(pc.localDescription.sdp) });
  } else if (m.cmd === "answer") {
    await pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
  } else if (m.cmd === "send") {
    dc.send(Buffer.from(m.hex, "hex"));
  } else if (m.cmd === "text") {
    dc.send(m.text); // a string message (PPID 51), as a browser sends text
  } else if (m.cmd === "close") {
    dc.close();
  } else if (m.cmd === "quit") {
    if (pc) await pc.close();
    process.exit(0);
  }
}

// Commands run one after another, in order.
let chain = Promise.resolve();
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line);
  chain = chain.then(() => handle(m)).catch((e) => out({ ev: "error", error: String(e && e.stack || e) }));
});
process.stdin.on("end", () => process.exit(0));
