// DC relay with real phone stacks: two peers (werift, or werift and
// node-datachannel), each with its own DC media in one context, joined
// stream by stream by dcMedia.dcRelay. Anchored P2P (phone - dcmfd -
// phone) and P2A2P (phone - dcmfd - DC AS that is itself a data-channel
// peer, dcmfd the DTLS client toward it).
//
//   node dc_relay.js DCMFD [filter]
//
// Prints "ok - name" / "not ok - name: why" and "N passed, M failed".
"use strict";
const path = require("path");
const fs = require("fs");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const ndc = require("node-datachannel");
// Not among werift's exports: loaded by path for the workaround below.
const weriftSctp = path.join(path.dirname(require.resolve("werift")), "..", "..", "sctp", "src");
const { InboundStream, SCTP } = require(path.join(weriftSctp, "sctp.js"));
const { SackChunk } = require(path.join(weriftSctp, "chunk.js"));
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");
const { wait, timeout, check, runTests } = require("./harness");

const DCMFD = process.argv[2];
const FILTER = process.argv[3]; // runs only the tests whose name holds it
const CONTEXTS = "/nmf-mrm/v1/contexts";

// werift's SCTP receiver (InboundStream.popMessages, werift 0.24) hands
// over only the first message that becomes deliverable when a lost chunk
// finally arrives, if the stream's TSNs are not consecutive (another
// stream's chunks in between, i.e. two busy streams): the rest wait for
// the next chunk of that stream, and if none comes they wait forever, with
// every TSN already acknowledged. This was the stall of the relay issue,
// reproduced by the mixed-stack test below in 4 runs out of 4: dcmfd had
// handed every message to SCTP and the phone had acknowledged them all
// (relay queue empty, no unacknowledged or pending data in usrsctp),
// while werift held the last ~50 complete messages of each stream in its
// reassembly list, the next expected one first. The loss that sets it off
// was werift's UDP receive buffer overflowing (/proc/net/snmp
// RcvbufErrors +221 in one run) while dcmfd sent what had waited for its
// channel to open. dcmfd cannot repair a receiver, so for this file's
// tests werift's own popMessages is called again until it has nothing
// left (werift still does all of ICE, DTLS and SCTP itself), and the
// tests check dcmfd rather than this bug. weriftHoldsBack() feeds a fresh
// InboundStream that case, so the workaround goes once werift is fixed.
function weriftHoldsBack() {
  const s = new InboundStream();
  const chunk = (ssn) => ({ tsn: 1000 + 2 * ssn, streamSeqNum: ssn, flags: 3, streamId: 1, protocol: 53, userData: Buffer.from([ssn]) });
  let n = 0;
  for (const ssn of [1, 2, 3, 0]) { // 0 is the retransmission
    s.addChunk(chunk(ssn));
    for (const _ of s.popMessages()) n++; // eslint-disable-line no-unused-vars
  }
  return n !== 4;
}
if (weriftHoldsBack()) {
  console.log("# werift holds back messages after a retransmission: working around it");
  const pop = InboundStream.prototype.popMessages;
  InboundStream.prototype.popMessages = function* popAll() {
    for (let more = true; more;) {
      more = false;
      for (const m of pop.call(this)) { more = true; yield m; }
    }
  };
}

// werift's SCTP sender (werift 0.24.4) counts a chunk twice in its
// flight size when the retransmission timer (T3) fires while later chunks
// were already acknowledged by gap blocks: T3 marks every chunk of
// sentQueue for retransmission, the acknowledged ones included; resending
// one adds it to flightSize, and when the cumulative ack passes it,
// receiveSackChunk subtracts only chunks not marked acked. The excess
// stays with nothing outstanding; once it reaches cwnd (which T3 just set
// to one chunk) werift sends no new DATA at all: nothing is in flight, so
// no T3 runs and no SACK comes that could grow cwnd. The messages then
// wait in werift's outboundQueue for good while dcmfd's relay queue is
// empty and it logs no stall. A model receiver dropping 5 % of packets
// stops werift's sender this way in 1 of 8 runs of 1,000 messages (and
// leaves flightSize above 0 after the last ack in 2 more); with the
// change below, 8 of 8 end with flightSize 0. That is the picture of the
// 10,000-message test's failures under load (B got 1984 of 10000: the
// loop's 20,000 spins ran out in under 54 s, so nothing arrived any
// more; a progressing run takes 20-50 ms a spin here), though a failure
// in which one phone also went silent on the wire (dcmfd logged its
// CONSENT_LOST) points at werift's ICE as well: the failure message now
// says which. The loss comes from a loaded machine dropping UDP. Not
// retransmitting what the peer already holds
// (RFC 9260 6.3.3 retransmits only unacknowledged DATA) keeps flightSize
// exact; werift still does all of SCTP itself. weriftLeaksFlight() plays
// the sequence on a fresh SCTP object, so the workaround goes once werift
// is fixed.
async function weriftLeaksFlight() {
  const s = new SCTP({ send: async () => {} }, 5000);
  s.remotePort = 5000;
  s.associationState = 4; // ESTABLISHED
  s.peerAdvertisedRwnd = 1 << 20;
  s.cwnd = 12000;
  const settle = () => new Promise((r) => setImmediate(r));
  const sack = async (cum, gaps) => {
    const c = new SackChunk(0, undefined);
    Object.assign(c, { cumulativeTsn: cum, advertisedRwnd: 1 << 20, gaps, duplicates: [] });
    await s.receiveSackChunk(c);
    await settle();
  };
  const t0 = s.localTsn;
  for (let i = 0; i < 8; i++) s.send(1, 53, Buffer.alloc(1000));
  await settle();
  await sack(t0 - 1, [[2, 3], [5, 8]]); // t0 and t0+3 lost, the rest arrived
  s.timer3Cancel(); // the RTO passes before anything is retransmitted:
  s.timer3Expired(); // what the timer would call, with no timer left behind
  await settle();
  await sack(t0 + 2, [[2, 5]]);
  await sack(t0 + 7, []); // everything acknowledged
  const leaked = s.sentQueue.length === 0 && s.flightSize > 0;
  s.timer3Cancel();
  return leaked;
}
// werift's ICE gives a consent check (RFC 7675, one every 4-6 s) at
// least 500 ms for its answer, counted on its own event loop. Both phones
// of a test share this Node process, and at full rate it reads a backlog
// of DTLS/SCTP datagrams 32 per loop turn, each handled in JavaScript, so
// dcmfd's answer can sit behind them for longer than that: in a failed
// run of the 10,000-message test dcmfd had answered every one of phone
// A's consent checks (dcmf_stun_requests_total counted them) while werift
// took none in time, expired consent after 30 s and failed ICE. A second
// to three seconds of wait (still below the 4 s before the next check,
// which would abort this one) is a client patience setting, not a looser
// check of dcmfd: a consent check that dcmfd does not answer still fails
// the test 30 s later. The loop's worst lag is in the stall report.
const weriftIceBase = require(path.join(path.dirname(require.resolve("werift")), "..", "..", "ice", "src", "iceBase.js"));
function workAroundWeriftConsent() {
  if (weriftIceBase.CONSENT_RESPONSE_TIMEOUT_MIN !== undefined && weriftIceBase.CONSENT_RESPONSE_TIMEOUT_MIN < 3000) {
    console.log("# werift waits 500 ms for a consent answer on a loaded event loop: giving it 3 s");
    weriftIceBase.CONSENT_RESPONSE_TIMEOUT_MIN = 3000;
    weriftIceBase.CONSENT_RESPONSE_TIMEOUT = 3000;
  }
}
const loopLag = require("perf_hooks").monitorEventLoopDelay({ resolution: 20 });
loopLag.enable();

async function workAroundWerift() {
  workAroundWeriftConsent();
  if (await weriftLeaksFlight()) {
    console.log("# werift counts retransmitted acknowledged chunks in flight for good: working around it");
    const transmitOnce = SCTP.prototype.transmitOnce;
    SCTP.prototype.transmitOnce = function transmitUnacked() {
      for (const c of this.sentQueue) if (c.acked) c.retransmit = false;
      return transmitOnce.call(this);
    };
  }
}

// Where the messages of channel |id| wait when an exchange stops short:
// each werift phone's SCTP sender (outboundQueue: not yet sent; sentQueue:
// unacknowledged; flightSize against cwnd and the peer's window; whether
// T3 runs) and receiver (cumulative TSN, TSNs held beyond a gap, messages
// held for reassembly or order), dcmfd's relay gauges and counters, and
// the namespace's UDP counters (RcvbufErrors: datagrams dropped). The ICE
// state tells a phone whose consent expired (werift then sends nothing at
// all, and dcmfd logs CONSENT_LOST 30 s later) from an SCTP stall.
async function whereTheyWait(d, phones, id) {
  const out = [];
  for (const [name, p] of Object.entries(phones)) {
    const s = p.pc.sctpTransport && p.pc.sctpTransport.sctp;
    if (!s) { out.push(`${name}: no SCTP`); continue; }
    const ins = s.inboundStreams[id];
    const ice = p.pc.iceTransports[0] && p.pc.iceTransports[0].connection;
    const pair = ice && ice.nominated;
    const consent = pair ? `consent checks ${pair.consentRequestsSent} answered ${pair.responsesReceived}` : "no nominated pair";
    out.push(`${name}: ICE ${p.pc.iceConnectionState} (${consent}), connection ${p.pc.connectionState}; sender outboundQueue ${s.outboundQueue.length} sentQueue ${s.sentQueue.length} ` +
      `(${s.sentQueue.filter((c) => c.acked).length} gap-acked) flightSize ${s.flightSize} cwnd ${s.cwnd} ` +
      `peer a_rwnd ${s.peerAdvertisedRwnd} T3 ${s.timer3Handle ? "running" : "off"} rto ${s.rto}s; ` +
      `receiver cumTSN ${s.lastReceivedTsn} beyond-gap ${s.sackMisOrdered.size} ` +
      `reassembly ${ins ? `${ins.reassembly.length} chunks, next SSN ${ins.streamSequenceNumber}` : "none"}`);
  }
  try {
    const m = String((await api(d.port, "GET", "/metrics")).body).split("\n")
      .filter((l) => /^dcmf_(dc_relay_|dc_messages_total|sctp_|stun_requests|consent_lost)/.test(l));
    out.push(`dcmfd: ${m.join("; ")}`);
  } catch (e) { out.push(`dcmfd /metrics: ${e.message}`); }
  out.push(`this process's event loop: worst lag ${(loopLag.max / 1e6).toFixed(0)} ms, p99 ${(loopLag.percentile(99) / 1e6).toFixed(0)} ms`);
  const udp = fs.readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp:"));
  if (udp.length === 2) {
    const [k, v] = udp.map((l) => l.split(/\s+/).slice(1));
    out.push(`UDP: ${k.map((x, i) => `${x} ${v[i]}`).filter((x) => /Errors|Datagrams/.test(x)).join(", ")}`);
  }
  return out.join(" | ");
}

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
  return { pc, chans, offer: parseOffer(sdp),
    answer: (text) => pc.setRemoteDescription({ type: "answer", sdp: text }), close: () => pc.close() };
}

// A node-datachannel (libdatachannel) peer shaped like peer(): channels
// with send/got/opened/closed/readyState. Each callback is attached once,
// right after the channel is created (see dc_clients.js: a second onOpen
// can lose the event).
async function ndcPeer(ids) {
  const pc = new ndc.PeerConnection("relay-phone", { iceServers: [], bindAddress: "127.0.0.1", disableAutoNegotiation: true });
  const chans = {};
  for (const id of ids) {
    const c = pc.createDataChannel(`app${id}`, { negotiated: true, id, protocol: "app" });
    const ch = { got: [], state: "connecting" };
    ch.opened = new Promise((r) => c.onOpen(() => { ch.state = "open"; r(); }));
    ch.closed = new Promise((r) => c.onClosed(() => { ch.state = "closed"; r(); }));
    c.onMessage((m) => ch.got.push(Buffer.isBuffer(m) ? m : Buffer.from(m)));
    ch.send = (m) => c.sendMessageBinary(m);
    ch.close = () => c.close();
    Object.defineProperty(ch, "readyState", { get: () => ch.state });
    chans[id] = ch;
  }
  const gathered = new Promise((r) => pc.onGatheringStateChange((st) => st === "complete" && r()));
  pc.setLocalDescription("offer");
  await timeout(gathered, 5000, "node-datachannel to gather candidates");
  return { pc, chans, offer: parseOffer(pc.localDescription().sdp),
    answer: (text) => pc.setRemoteDescription(text, "answer"), close: () => pc.close() };
}

// One context holding both peers' DC medias, the first relayed to the
// second; |asSide| makes the second a DC AS whose DTLS role is passive.
// |holdB| leaves the answer to the caller (b.answer(answerSdp(...))).
async function relayContext(d, a, b, ids, { asSide = false, holdB = false } = {}) {
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
  await a.answer(answerSdp(one(0), a.offer));
  if (!holdB) await b.answer(answerSdp(one(1), b.offer));
  return ctx;
}

// Sends |n| messages each way on channel |id| (sizes 1 B to 1,200 B,
// each starting with its sequence number), at most |window| unanswered,
// and checks both sides got exactly what the other sent, in order. It
// gives up when nothing arrives for STALL_MS or after |ms| in all (a
// loaded machine may take 40 s for 10,000 each way, at 20-50 ms a round),
// and then says where the missing messages wait.
const STALL_MS = 15000;
async function exchange(d, a, b, id, n, window = 64, ms = 100000) {
  const make = (side, i) => {
    const len = 4 + (i * 7919) % 1197;
    const m = Buffer.alloc(len, side.charCodeAt(0) ^ (i & 0x7f));
    m.writeUInt32BE(i, 0);
    return m;
  };
  const ca = a.chans[id], cb = b.chans[id];
  ca.got = []; cb.got = [];
  let sa = 0, sb = 0;
  const until = Date.now() + ms;
  let seen = 0, moved = Date.now(), why = "";
  for (let spins = 0; cb.got.length < n || ca.got.length < n; spins++) {
    if (cb.got.length + ca.got.length > seen) { seen = cb.got.length + ca.got.length; moved = Date.now(); }
    if (Date.now() - moved > STALL_MS) { why = `nothing arrived for ${STALL_MS} ms`; break; }
    if (Date.now() > until || spins >= 1000000) { why = `still arriving after ${ms} ms`; break; }
    while (sa < n && sa - cb.got.length < window) ca.send(make("A", sa++));
    while (sb < n && sb - ca.got.length < window) cb.send(make("B", sb++));
    await wait(1);
  }
  if (cb.got.length !== n || ca.got.length !== n) {
    throw new Error(`B got ${cb.got.length} of ${n} (A sent ${sa}), A got ${ca.got.length} of ${n} (B sent ${sb}); ` +
      `${why}: ${await whereTheyWait(d, { A: a, B: b }, id)}`);
  }
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
    await exchange(d, a, b, 1000, 10000);
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
    // Events cross from the worker process apart from the data: wait
    // (bounded) for both.
    const close1002 = (evs) => evs.filter((e) => e.event === "DC_CLOSE" && e.detail && e.detail.streamId === 1002);
    let got = (await api(d.port, "GET", `${CONTEXTS}/${ctx.contextId}`)).body;
    for (let i = 0; i < 40 && close1002(got.events || []).length < 2; i++) {
      await wait(50);
      got = (await api(d.port, "GET", `${CONTEXTS}/${ctx.contextId}`)).body;
    }
    const closes = close1002(got.events || []);
    check(closes.length === 2, `expected DC_CLOSE for 1002 on both sides: ${JSON.stringify(got.events)}`);
  } finally { a.pc.close(); b.pc.close(); }
});

// Message |i| of |side| on stream |id|: 4 B to 1,200 B, starting with its
// sequence number, the rest a byte that depends on side, stream and i.
function mixedMessage(side, id, i) {
  const len = 4 + (i * 7919 + id) % 1197;
  const m = Buffer.alloc(len, side.charCodeAt(0) ^ (id & 0xff) ^ (i & 0x7f));
  m.writeUInt32BE(i, 0);
  return m;
}

// Waits until every channel of |want| ([channel, n]) holds n messages or
// |ms| pass; polls every 10 ms.
async function allArrive(want, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until && want.some(([ch, n]) => ch.got.length < n)) await wait(10);
}

const MIXED_ROUNDS = 6, MIXED_N = 250;
test(`mixed stacks: werift and node-datachannel, ${MIXED_ROUNDS} rounds of two streams with ${MIXED_N} messages each way, each side sending from the moment its channel opens; all arrive in order, byte-exact, within 15 s`, async (d) => {
  const ids = [1000, 1002];
  for (let round = 0; round < MIXED_ROUNDS; round++) {
    const a = await peer(ids);
    const b = await ndcPeer(ids);
    try {
      await relayContext(d, a, b, ids);
      // No waiting for the other phone: what one side sends before its
      // twin's channel is open waits in dcmfd's queue (the issue's case).
      for (const id of ids) {
        a.chans[id].opened.then(() => { for (let i = 0; i < MIXED_N; i++) a.chans[id].send(mixedMessage("A", id, i)); });
        b.chans[id].opened.then(() => { for (let i = 0; i < MIXED_N; i++) b.chans[id].send(mixedMessage("B", id, i)); });
      }
      const started = Date.now();
      await allArrive(ids.flatMap((id) => [[a.chans[id], MIXED_N], [b.chans[id], MIXED_N]]), 15000);
      const counts = ids.map((id) => `${id}: werift got ${a.chans[id].got.length}, node-datachannel got ${b.chans[id].got.length}`).join("; ");
      const figures = String((await api(d.port, "GET", "/metrics")).body).split("\n").filter((l) => /^dcmf_dc_relay_/.test(l)).join("; ");
      check(ids.every((id) => a.chans[id].got.length === MIXED_N && b.chans[id].got.length === MIXED_N),
        `round ${round}: not all of ${MIXED_N} arrived within 15 s (${counts}; ${figures})`);
      for (const id of ids) {
        for (let i = 0; i < MIXED_N; i++) {
          check(b.chans[id].got[i].equals(mixedMessage("A", id, i)), `round ${round}, stream ${id}: node-datachannel's message ${i} is not werift's message ${i} (seq ${b.chans[id].got[i].readUInt32BE(0)})`);
          check(a.chans[id].got[i].equals(mixedMessage("B", id, i)), `round ${round}, stream ${id}: werift's message ${i} is not node-datachannel's message ${i} (seq ${a.chans[id].got[i].readUInt32BE(0)})`);
        }
      }
      // Nothing is left waiting in dcmfd once everything arrived.
      let queued = NaN;
      for (let i = 0; i < 100 && queued !== 0; i++) { queued = await metric(d, "dcmf_dc_relay_queued_messages"); if (queued !== 0) await wait(10); }
      check(queued === 0, `round ${round}: dcmf_dc_relay_queued_messages is ${queued} after all arrived`);
      console.log(`# round ${round}: ${4 * MIXED_N} messages in ${Date.now() - started} ms`);
    } finally { a.close(); b.close(); }
  }
});

test("a twin that is not there yet: its messages wait in the queue gauges, one stall is counted and logged, then they arrive and the gauges empty", async (d) => {
  const a = await peer([1000]);
  const b = await peer([1000]);
  try {
    const ctx = await relayContext(d, a, b, [1000], { holdB: true });
    await timeout(a.chans[1000].opened, 10000, "A's channel to open");
    const N = 20;
    let bytes = 0;
    for (let i = 0; i < N; i++) { const m = mixedMessage("A", 1000, i); bytes += m.length; a.chans[1000].send(m); }
    let q = NaN, qb = NaN;
    for (let i = 0; i < 500 && q !== N; i++) { q = await metric(d, "dcmf_dc_relay_queued_messages"); if (q !== N) await wait(10); }
    qb = await metric(d, "dcmf_dc_relay_queued_bytes");
    check(q === N && qb === bytes, `queued ${q} messages, ${qb} bytes; expected ${N}, ${bytes}`);
    let stalls = 0;
    for (let i = 0; i < 300 && stalls < 1; i++) { stalls = await metric(d, "dcmf_dc_relay_stalls_total"); if (stalls < 1) await wait(10); }
    check(stalls === 1, `dcmf_dc_relay_stalls_total is ${stalls} 3 s after the messages were queued`);
    const line = fs.readFileSync(d.logf, "utf8").split("\n").find((l) => l.includes("dcmf_dc_relay_stalls_total"));
    check(line && line.includes(`${ctx.contextId}/ue-b/1: stream 1000: ${N} relayed messages (${bytes} bytes)`) && line.includes("not open"),
      `stall log line: ${line}`);
    // Once per episode: another 1.5 s of waiting is the same stall.
    for (const until = Date.now() + 1500; Date.now() < until;) {
      check(await metric(d, "dcmf_dc_relay_stalls_total") === 1, "a stall was counted twice");
      await wait(100);
    }
    await b.answer(answerSdp({ ...ctx, terminations: [ctx.terminations[1]] }, b.offer));
    await timeout(b.chans[1000].opened, 10000, "B's channel to open");
    await allArrive([[b.chans[1000], N]], 10000);
    check(b.chans[1000].got.length === N, `B got ${b.chans[1000].got.length} of ${N}`);
    for (let i = 0; i < N; i++) check(b.chans[1000].got[i].equals(mixedMessage("A", 1000, i)), `B's message ${i} differs`);
    for (let i = 0; i < 100 && q !== 0; i++) { q = await metric(d, "dcmf_dc_relay_queued_messages"); if (q !== 0) await wait(10); }
    qb = await metric(d, "dcmf_dc_relay_queued_bytes");
    check(q === 0 && qb === 0, `after delivery: queued ${q} messages, ${qb} bytes`);
    check(await metric(d, "dcmf_dc_relay_stalls_total") === 1, "stalls changed after delivery");
  } finally { a.close(); b.close(); }
});

test("P2A2P: a phone and a DC AS that is a data-channel peer; dcmfd is the DTLS client toward the AS", async (d) => {
  const a = await peer([1000]);
  const as = await peer([1000]);
  try {
    const ctx = await relayContext(d, a, as, [1000], { asSide: true });
    const asMedia = ctx.terminations[1].medias[0].dcMedia;
    check(asMedia.securitySetup === "ACTIVE", `dcmfd's role toward the AS is ${asMedia.securitySetup}`);
    await timeout(Promise.all([a.chans[1000].opened, as.chans[1000].opened]), 10000, "both channels open");
    await exchange(d, a, as, 1000, 1000);
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

process.on("exit", () => ndc.cleanup()); // libdatachannel's threads
workAroundWerift().then(() => runTests(DCMFD, "relay", tests.filter((t) => !FILTER || t.name.includes(FILTER)), 120000));
