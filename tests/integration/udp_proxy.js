// UDP-proxy mode with a real phone stack: werift opens application data
// channels (negotiated, stream >= 1000) to dcmfd, which relays each
// message as one UDP datagram to a DC application server started here,
// and each datagram back as one message.
//
//   node udp_proxy.js DCMFD
//
// Prints "ok - name" / "not ok - name: why" and "N passed, M failed".
"use strict";
const path = require("path");
const dgram = require("dgram");
const fs = require("fs");
const crypto = require("crypto");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");
const { wait, timeout, check, runTests } = require("./harness");

const DCMFD = process.argv[2];
const CONTEXTS = "/nmf-mrm/v1/contexts";

// A UDP application server: echoes, or speaks first (A2P).
function udpServer(onMessage) {
  return new Promise((resolve) => {
    const s = dgram.createSocket("udp4");
    s.on("message", (msg, rinfo) => onMessage(s, msg, rinfo));
    s.bind(0, "127.0.0.1", () => resolve(s));
  });
}

// A werift phone with negotiated application channels |ids|.
async function phone(d, server, ids, extra = {}) {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const chans = {};
  for (const id of ids) {
    const ch = pc.createDataChannel(`app${id}`, { negotiated: true, id, protocol: "app" });
    ch.got = [];
    ch.onMessage.subscribe((m) => ch.got.push(Buffer.isBuffer(m) ? m : Buffer.from(m)));
    ch.opened = new Promise((r) => ch.stateChanged.subscribe((st) => st === "open" && r()));
    chans[id] = ch;
  }
  await pc.setLocalDescription(await pc.createOffer());
  const sdp = pc.localDescription.sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
  const offer = parseOffer(sdp);
  const streams = {};
  for (const id of ids) streams[id] = { streamId: id, subprotocol: "app", order: true, ...(extra[id] || {}) };
  const req = createRequest(offer, { streams });
  const dc = req.terminations[0].medias[0].dcMedia;
  dc.mediaProxyConfig = "UDP";
  dc.mdc2Protocol = "UDP";
  dc.remoteMdc2Endpoint = { ip: { ipv4Addr: "127.0.0.1" }, transport: "UDP", portNumber: server.address().port };
  const created = await api(d.port, "POST", CONTEXTS, req);
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  return { pc, chans, ctx: created.body, offer, start: () => pc.setRemoteDescription({ type: "answer", sdp: answerSdp(created.body, offer) }) };
}

const tests = [];
const test = (name, fn, extra) => tests.push({ name, fn, extra });

// In a namespace with loopback alone (in-netns), /proc/net/snmp counts
// only this test's datagrams.
function ownNetns() {
  try {
    return fs.readFileSync("/proc/net/dev", "utf8").split("\n").slice(2)
      .map((l) => l.split(":")[0].trim()).filter((n) => n).join() === "lo";
  } catch (e) { return false; }
}
function udpOut() {
  const lines = fs.readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp:"));
  return Number(lines[1].split(/\s+/)[lines[0].split(/\s+/).indexOf("OutDatagrams")]);
}
// This process's datagrams (werift's and the server's).
let ownSends = 0;
const origSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (...args) { ownSends++; return origSend.apply(this, args); };

test("P2A: 1000 messages of 1 B to 16 KiB through a UDP echo server come back intact and in order", async (d) => {
  const srv = await udpServer((s, msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
  const ph = await phone(d, srv, [1000]);
  try {
    const eps = ph.ctx.terminations[0].medias[0].dcMedia.localMdc2Endpoints;
    check(eps && eps["1000"] && eps["1000"].portNumber > 0, `localMdc2Endpoints ${JSON.stringify(eps)}`);
    await ph.start();
    const ch = ph.chans[1000];
    await timeout(ch.opened, 10000, "channel open");
    const sent = [];
    for (let i = 0; i < 1000; i++) {
      const len = 1 + Math.floor((i * 16383) / 999);
      const m = crypto.randomBytes(len);
      if (len >= 2) m.writeUInt16BE(i & 0xffff, 0); // a sequence number
      sent.push(m);
    }
    // UDP may drop under a burst (that is UDP's contract, and dcmfd counts
    // it); keep at most 4 messages (64 KiB) in flight, within a default socket
    // buffer, as an app would pace.
    let next = 0;
    for (let spins = 0; spins < 4000 && ch.got.length < sent.length; spins++) {
      while (next < sent.length && next - ch.got.length < 4) ch.send(sent[next++]);
      await wait(2);
    }
    if (ch.got.length !== sent.length) {
      const m = (await fetchMetrics(d)).text.split("\n").filter((l) => l.startsWith("dcmf_udp") || l.startsWith("dcmf_dc_")).join("; ");
      const missing = sent.findIndex((x, k) => !ch.got[k] || !ch.got[k].equals(x));
      throw new Error(`got ${ch.got.length} of ${sent.length}; first mismatch at ${missing}; ${m}`);
    }
    for (let i = 0; i < sent.length; i++) {
      check(ch.got[i].equals(sent[i]), `message ${i} differs (len ${ch.got[i].length} vs ${sent[i].length})`);
    }
    check(await metricSoon(d, /dcmf_udp_proxy_datagrams_total\{direction="to_server"\} 1000\n/),
      "to_server count is not 1000");
  } finally { ph.pc.close(); srv.close(); }
});

test("--dtls-coalesce 1: 2000 messages of 100 B, 32 in flight, come back intact and in order; dcmfd sends the phone fewer datagrams than messages", async (d) => {
  let toServer = 0;
  const srv = await udpServer((s, msg, rinfo) => { toServer++; s.send(msg, rinfo.port, rinfo.address); });
  const ph = await phone(d, srv, [1000]);
  try {
    await ph.start();
    const ch = ph.chans[1000];
    await timeout(ch.opened, 10000, "channel open");
    const N = 2000;
    const out0 = udpOut(), own0 = ownSends, srv0 = toServer;
    let next = 0;
    for (let spins = 0; spins < 20000 && ch.got.length < N; spins++) {
      while (next < N && next - ch.got.length < 32) {
        const m = Buffer.alloc(100, next & 0xff);
        m.writeUInt16BE(next, 0);
        ch.send(m);
        next++;
      }
      await wait(1);
    }
    check(ch.got.length === N, `got ${ch.got.length} of ${N}`);
    for (let i = 0; i < N; i++) {
      check(ch.got[i].length === 100 && ch.got[i].readUInt16BE(0) === i && ch.got[i][99] === (i & 0xff),
        `message ${i} differs`);
    }
    if (ownNetns()) {
      // dcmfd's datagrams toward the phone: all of the namespace's but
      // this process's and dcmfd's toward the server. One record per
      // datagram would be at least one per message (each echo is a DATA
      // chunk); coalesced, the SACKs and echoes of a turn share them.
      // How many share depends on how the turns fall (0.81-0.94 of N
      // in nine runs on one machine), so the bound is the one-per-message
      // floor that no coalescing would stay under.
      const toPhone = udpOut() - out0 - (ownSends - own0) - (toServer - srv0);
      console.log(`# ${toPhone} datagrams toward the phone for ${N} messages`);
      check(toPhone < N, `${toPhone} datagrams toward the phone for ${N} messages`);
    }
  } finally { ph.pc.close(); srv.close(); }
}, ["--dtls-coalesce", "1"]);

test("A2P: the server speaks first; its datagrams are queued and delivered when the channel opens", async (d) => {
  let target = null;
  const srv = await udpServer(() => {});
  const ph = await phone(d, srv, [1001], { 1001: { udpPayloadType: "text" } });
  try {
    const ep = ph.ctx.terminations[0].medias[0].dcMedia.localMdc2Endpoints["1001"];
    target = ep.portNumber;
    for (let i = 0; i < 5; i++) srv.send(Buffer.from(`hello ${i}`), target, "127.0.0.1");
    await wait(200); // the datagrams arrive before the phone even connects
    await ph.start();
    const ch = ph.chans[1001];
    await timeout(ch.opened, 10000, "channel open");
    for (let i = 0; i < 100 && ch.got.length < 5; i++) await wait(20);
    check(ch.got.length === 5, `got ${ch.got.length} of 5 queued datagrams`);
    for (let i = 0; i < 5; i++) check(ch.got[i].toString() === `hello ${i}`, `message ${i}: ${ch.got[i]}`);
  } finally { ph.pc.close(); srv.close(); }
});

test("a message over 65,507 bytes cannot be a datagram: dropped and counted", async (d) => {
  const got = [];
  const srv = await udpServer((s, msg) => got.push(msg.length));
  const ph = await phone(d, srv, [1000]);
  try {
    await ph.start();
    const ch = ph.chans[1000];
    await timeout(ch.opened, 10000, "channel open");
    ch.send(crypto.randomBytes(65520));
    ch.send(Buffer.from("small"));
    for (let i = 0; i < 100 && got.length < 1; i++) await wait(20);
    await wait(100);
    check(got.length === 1 && got[0] === 5, `server got ${JSON.stringify(got)}`);
    check(await metricSoon(d, /dcmf_udp_proxy_dropped_total\{reason="oversize"\} 1\n/),
      "oversize count is not 1");
    check(/cannot be one UDP datagram/.test(fs.readFileSync(d.logf, "utf8")), "the oversize drop was not logged");
  } finally { ph.pc.close(); srv.close(); }
});

test("datagrams from any other source are dropped and counted", async (d) => {
  const srv = await udpServer(() => {});
  const ph = await phone(d, srv, [1000]);
  const intruder = dgram.createSocket("udp4");
  try {
    await ph.start();
    const ch = ph.chans[1000];
    await timeout(ch.opened, 10000, "channel open");
    const port = ph.ctx.terminations[0].medias[0].dcMedia.localMdc2Endpoints["1000"].portNumber;
    await new Promise((r) => intruder.bind(0, "127.0.0.1", r));
    for (let i = 0; i < 3; i++) intruder.send(Buffer.from("spoof"), port, "127.0.0.1");
    srv.send(Buffer.from("real"), port, "127.0.0.1");
    for (let i = 0; i < 100 && ch.got.length < 1; i++) await wait(20);
    await wait(100);
    check(ch.got.length === 1 && ch.got[0].toString() === "real", `got ${ch.got.map(String)}`);
    check(await metricSoon(d, /dcmf_udp_proxy_dropped_total\{reason="unknown_source"\} 3\n/),
      "unknown_source count is not 3");
  } finally { ph.pc.close(); srv.close(); intruder.close(); }
});

// Worker processes publish their counters every 100 ms: poll briefly.
async function metricSoon(d, re) {
  for (let i = 0; i < 50; i++) {
    if (re.test((await fetchMetrics(d)).text)) return true;
    await wait(20);
  }
  return false;
}

async function fetchMetrics(d) {
  const r = await api(d.port, "GET", "/metrics");
  return { text: String(r.body) };
}

runTests(DCMFD, "udp", tests, 60000);
