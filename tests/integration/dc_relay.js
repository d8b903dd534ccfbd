// DC relay with real phone stacks: two werift peers, each with its own
// DC media in one context, joined stream by stream by dcMedia.dcRelay.
// Anchored P2P (phone - dcmfd - phone) and P2A2P (phone - dcmfd - DC AS
// that is itself a data-channel peer, dcmfd the DTLS client toward it).
//
//   node dc_relay.js DCMFD
//
// Prints "ok - name" / "not ok - name: why" and "N passed, M failed".
"use strict";
const path = require("path");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");
const { wait, timeout, check, runTests } = require("./harness");

const DCMFD = process.argv[2];
const CONTEXTS = "/nmf-mrm/v1/contexts";

// A werift peer with negotiated channels |ids| and its offer.
async function peer(ids) {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const chans = {};
  for (const id of ids) {
    const ch = pc.createDataChannel(`app${id}`, { negotiated: true, id, protocol: "app" });
    ch.got = [];
    ch.onMessage.subscribe((m) => ch.got.push(Buffer.isBuffer(m) ? m : Buffer.from(m)));
    ch.opened = new Promise((r) => ch.stateChanged.subscribe((st) => st === "open" && r()));
    ch.closed = new Promise((r) => ch.stateChanged.subscribe((st) => st === "closed" && r()));
    chans[id] = ch;
  }
  await pc.setLocalDescription(await pc.createOffer());
  const sdp = pc.localDescription.sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
  return { pc, chans, offer: parseOffer(sdp) };
}

// One context holding both peers' DC medias, the first relayed to the
// second; |asSide| makes the second a DC AS whose DTLS role is passive.
async function relayContext(d, a, b, ids, { asSide = false } = {}) {
  const streams = {};
  for (const id of ids) streams[id] = { streamId: id, subprotocol: "app", order: true };
  const req = createRequest(a.offer, { streams, terminationId: "ue-a" });
  const other = createRequest(b.offer, { streams, terminationId: asSide ? "dc-as" : "ue-b" }).terminations[0];
  if (asSide) other.medias[0].dcMedia.securitySetup = "PASSIVE"; // the AS waits: dcmfd is the DTLS client
  req.terminations.push(other);
  for (const t of req.terminations) delete t.medias[0].dcMedia.mediaProxyConfig;
  req.terminations[0].medias[0].dcMedia.dcRelay = { terminationId: other.terminationId, mediaId: "1" };
  const created = await api(d.port, "POST", CONTEXTS, req);
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  const ctx = created.body;
  const one = (i) => ({ ...ctx, terminations: [ctx.terminations[i]] });
  await a.pc.setRemoteDescription({ type: "answer", sdp: answerSdp(one(0), a.offer) });
  await b.pc.setRemoteDescription({ type: "answer", sdp: answerSdp(one(1), b.offer) });
  return ctx;
}

// Sends |n| messages each way on channel |id| (sizes 1 B to 1,200 B,
// each starting with its sequence number), at most |window| unanswered,
// and checks both sides got exactly what the other sent, in order.
async function exchange(a, b, id, n, window = 64) {
  const make = (side, i) => {
    const len = 4 + (i * 7919) % 1197;
    const m = Buffer.alloc(len, side.charCodeAt(0) ^ (i & 0x7f));
    m.writeUInt32BE(i, 0);
    return m;
  };
  const ca = a.chans[id], cb = b.chans[id];
  ca.got = []; cb.got = [];
  let sa = 0, sb = 0;
  for (let spins = 0; spins < 20000 && (cb.got.length < n || ca.got.length < n); spins++) {
    while (sa < n && sa - cb.got.length < window) ca.send(make("A", sa++));
    while (sb < n && sb - ca.got.length < window) cb.send(make("B", sb++));
    await wait(1);
  }
  check(cb.got.length === n, `B got ${cb.got.length} of ${n}`);
  check(ca.got.length === n, `A got ${ca.got.length} of ${n}`);
  for (let i = 0; i < n; i++) {
    check(cb.got[i].equals(make("A", i)), `B's message ${i} is not A's message ${i} (seq ${cb.got[i].readUInt32BE(0)})`);
    check(ca.got[i].equals(make("B", i)), `A's message ${i} is not B's message ${i} (seq ${ca.got[i].readUInt32BE(0)})`);
  }
}

async function metric(d, name) {
  const text = String((await api(d.port, "GET", "/metrics")).body);
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(" ")[1]) : NaN;
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("anchored P2P: two phones exchange 10,000 messages each way through one context, in order and intact", async (d) => {
  const a = await peer([1000]);
  const b = await peer([1000]);
  try {
    await relayContext(d, a, b, [1000]);
    await timeout(Promise.all([a.chans[1000].opened, b.chans[1000].opened]), 10000, "both channels open");
    await exchange(a, b, 1000, 10000);
    for (let i = 0; i < 50; i++) { if (await metric(d, "dcmf_dc_relay_messages_total") === 20000) break; await wait(20); }
    const relayed = await metric(d, "dcmf_dc_relay_messages_total");
    check(relayed === 20000, `dcmf_dc_relay_messages_total is ${relayed}, not 20000`);
  } finally { a.pc.close(); b.pc.close(); }
});

test("anchored P2P: two streams stay apart; closing a channel on one phone closes its twin", async (d) => {
  const a = await peer([1000, 1002]);
  const b = await peer([1000, 1002]);
  try {
    const ctx = await relayContext(d, a, b, [1000, 1002]);
    await timeout(Promise.all([a.chans[1000].opened, b.chans[1000].opened, a.chans[1002].opened, b.chans[1002].opened]), 10000, "channels open");
    a.chans[1000].send(Buffer.from("on 1000"));
    a.chans[1002].send(Buffer.from("on 1002"));
    for (let i = 0; i < 100 && (b.chans[1000].got.length < 1 || b.chans[1002].got.length < 1); i++) await wait(20);
    check(String(b.chans[1000].got[0]) === "on 1000" && String(b.chans[1002].got[0]) === "on 1002",
      `B got ${b.chans[1000].got.map(String)} / ${b.chans[1002].got.map(String)}`);
    a.chans[1002].close();
    await timeout(b.chans[1002].closed, 5000, "B's twin of 1002 to close");
    check(b.chans[1000].readyState === "open", `B's 1000 is ${b.chans[1000].readyState}`);
    a.chans[1000].send(Buffer.from("A still here"));
    for (let i = 0; i < 100 && b.chans[1000].got.length < 2; i++) await wait(20);
    check(String(b.chans[1000].got[1]) === "A still here", `A to B on 1000 after close: ${b.chans[1000].got.map(String)}`);
    b.chans[1000].send(Buffer.from("still here"));
    for (let i = 0; i < 100 && a.chans[1000].got.length < 1; i++) await wait(20);
    if (String(a.chans[1000].got[0]) !== "still here") {
      const m = String((await api(d.port, "GET", "/metrics")).body).split("\n").filter((l) => /^dcmf_dc_(relay|messages)/.test(l)).join("; ");
      throw new Error(`stream 1000 stopped working after 1002 closed: A got ${a.chans[1000].got.map(String)}; ${m}`);
    }
    const got = (await api(d.port, "GET", `${CONTEXTS}/${ctx.contextId}`)).body;
    const closes = (got.events || []).filter((e) => e.event === "DC_CLOSE" && e.detail && e.detail.streamId === 1002);
    check(closes.length === 2, `expected DC_CLOSE for 1002 on both sides: ${JSON.stringify(got.events)}`);
  } finally { a.pc.close(); b.pc.close(); }
});

test("P2A2P: a phone and a DC AS that is a data-channel peer; dcmfd is the DTLS client toward the AS", async (d) => {
  const a = await peer([1000]);
  const as = await peer([1000]);
  try {
    const ctx = await relayContext(d, a, as, [1000], { asSide: true });
    const asMedia = ctx.terminations[1].medias[0].dcMedia;
    check(asMedia.securitySetup === "ACTIVE", `dcmfd's role toward the AS is ${asMedia.securitySetup}`);
    await timeout(Promise.all([a.chans[1000].opened, as.chans[1000].opened]), 10000, "both channels open");
    await exchange(a, as, 1000, 1000);
    const dtls = as.pc.sctpTransport && as.pc.sctpTransport.dtlsTransport;
    if (dtls && dtls.role) check(dtls.role === "server", `the AS's DTLS role is ${dtls.role}`);
  } finally { a.pc.close(); as.pc.close(); }
});

test("dcRelay naming a media that does not exist is refused with 400", async (d) => {
  const a = await peer([1000]);
  try {
    const req = createRequest(a.offer, { streams: { 1000: { streamId: 1000, subprotocol: "app", order: true } } });
    req.terminations[0].medias[0].dcMedia.dcRelay = { terminationId: "ue-z", mediaId: "1" };
    const r = await api(d.port, "POST", CONTEXTS, req);
    check(r.status === 400, `status ${r.status}`);
    const bad = (r.body.invalidParams || []).map((p) => p.param);
    check(bad.includes("/terminations/0/medias/0/dcMedia/dcRelay"), `invalidParams ${JSON.stringify(r.body.invalidParams)}`);
  } finally { a.pc.close(); }
});

runTests(DCMFD, "relay", tests, 120000);
