// A phone that opens in-band (DCEP) channels with protocol "http" by the
// hundred: dcmfd serves HTTP on 64 of them per session and refuses the
// rest (each would cost an HTTP engine), the channels it kept still
// answer, the bootstrap channel negotiated in SDP is not counted, and a
// second phone gets its own 64.
//
//   node dc_inband_limit.js DCMFD
//
// Run under in-netns. Prints "ok - name" / "not ok - name: why" and
// "N passed, M failed".
"use strict";
const path = require("path");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");
const { wait, timeout, check, runTests } = require("./harness");

const LIMIT = 64;
const OPENED = 100;

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

// A werift phone with the bootstrap channel (stream 0, negotiated).
async function phone(port, term) {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const boot = pc.createDataChannel("bootstrap", { negotiated: true, id: 0, protocol: "http" });
  const opened = new Promise((r) => boot.stateChanged.subscribe((s) => s === "open" && r()));
  await pc.setLocalDescription(await pc.createOffer());
  const offer = parseOffer(only127(pc.localDescription.sdp));
  const created = await api(port, "POST", "/nmf-mrm/v1/contexts", createRequest(offer, { terminationId: term }));
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  await pc.setRemoteDescription({ type: "answer", sdp: answerSdp(created.body, offer) });
  await timeout(opened, 15000, `${term}: bootstrap channel open`);
  return { pc, boot };
}

// Sends a GET on |ch| and resolves with the status of the answer.
function get(ch, what) {
  const answer = new Promise((resolve) => {
    const sub = ch.onMessage.subscribe((m) => {
      sub.unSubscribe();
      resolve(Number(Buffer.from(m).toString().split(" ")[1]));
    });
  });
  ch.send("GET /nothing-here HTTP/1.1\r\nHost: \r\n\r\n");
  return timeout(answer, 5000, what);
}

// Opens OPENED in-band "http" channels; resolves once each is open or
// closed, with the open ones.
async function openMany(pc) {
  const chans = [];
  let settled = 0;
  for (let i = 0; i < OPENED; i++) {
    const c = pc.createDataChannel(`app-${i}`, { protocol: "http" });
    let done = false;
    c.stateChanged.subscribe((s) => {
      if (!done && (s === "open" || s === "closed")) { done = true; settled++; }
    });
    chans.push(c);
  }
  for (let i = 0; i < 150 && settled < OPENED; i++) await wait(100);
  // A refused channel opens first (werift does not wait for the ACK) and
  // closes when dcmfd resets its stream: let the resets arrive.
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const open = chans.filter((c) => c.readyState === "open").length;
    if (open === last) break;
    last = open;
    await wait(200);
  }
  return chans.filter((c) => c.readyState === "open");
}

async function limit(d) {
  const a = await phone(d.port, "ue-a");
  const b = await phone(d.port, "ue-b");
  try {
    const openA = await openMany(a.pc);
    check(openA.length === LIMIT, `${openA.length} of ${OPENED} in-band channels stayed open, want ${LIMIT}`);
    check(await get(openA[0], "first kept channel") === 404, "first kept channel answers");
    check(await get(openA[LIMIT - 1], "last kept channel") === 404, "last kept channel answers");
    check(await get(a.boot, "bootstrap channel") === 404, "bootstrap channel answers");
    const openB = await openMany(b.pc);
    check(openB.length === LIMIT, `second phone: ${openB.length} open, want ${LIMIT}`);
    check(await get(openB[0], "second phone's channel") === 404, "second phone's channel answers");
  } finally {
    a.pc.close();
    b.pc.close();
  }
}

runTests(process.argv[2], "inband", [
  { name: `in-band HTTP channels: ${LIMIT} per session are served, the rest refused`, fn: limit },
], 120000);
