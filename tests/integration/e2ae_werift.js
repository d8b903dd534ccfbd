// e2ae end to end (issue 11): werift as the WebRTC IMS client (DTLS-SRTP,
// ICE, rtcp-mux, one audio m-line, no BUNDLE) on the access side of a
// dcmfd AGW context, a plain RTP peer (Node dgram sockets) on the core
// side; the IMS-ALG is dcmf-alg (alg.js): werift's offer becomes the
// /agw/v1 POST and the offer toward the core, the core's answer a PATCH
// and the answer werift applies (ICE-lite, the AGW's credentials,
// fingerprint, access port, a=setup), checked line by line.
//
//   node e2ae_werift.js DCMFD
//
// Each case runs against a fresh dcmfd on loopback (harness.js) and
// prints "ok - name" / "not ok - name: why"; exits 1 on failure.
// E2AE_ONLY=text runs only the cases whose name contains text.
"use strict";
const path = require("path");
const dgram = require("dgram");
const http = require("http");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const { api } = require("./ims_as");
const { wait, check, runTests } = require("./harness");
const alg = require("./alg");

const DCMFD = process.argv[2];
const AGW = "/agw/v1/contexts";
const PT = 96; // werift's Opus (its offer says so; checked)

// ---- polling ----------------------------------------------------------------

// Polls |cond| every 20 ms until it is true or |ms| passed; throws
// "timed out: |what|" then. The only way this test waits.
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await wait(20);
  }
}

// ---- RTP ------------------------------------------------------------------------

// The fixed header, CSRCs and extension skipped: {ssrc, seq, pt, payload}.
function parseRtp(b) {
  if (b.length < 12 || b[0] >> 6 !== 2) return null;
  let off = 12 + (b[0] & 0x0f) * 4;
  if (b[0] & 0x10) {
    if (b.length < off + 4) return null;
    off += 4 + b.readUInt16BE(off + 2) * 4;
  }
  let end = b.length;
  if (b[0] & 0x20) end -= b[b.length - 1];
  if (off > end) return null;
  return { ssrc: b.readUInt32BE(8), seq: b.readUInt16BE(2), pt: b[1] & 0x7f, payload: b.subarray(off, end) };
}
const isRtcp = (b) => b.length >= 8 && b[1] >= 192 && b[1] <= 223;

function rtpPacket(ssrc, seq, payload) {
  const h = Buffer.alloc(12);
  h[0] = 0x80; h[1] = PT; h.writeUInt16BE(seq, 2); h.writeUInt32BE(seq * 960, 4); h.writeUInt32BE(ssrc, 8);
  return Buffer.concat([h, payload]);
}
// A distinct payload per packet, so a reordered, repeated or changed
// packet shows.
const payloadOf = (tag, i) => Buffer.from(`${tag}-${String(i).padStart(4, "0")}-`.repeat(4));

// ---- the core peer -----------------------------------------------------------

function bindUdp() {
  return new Promise((resolve) => {
    const s = dgram.createSocket("udp4");
    const got = [];
    s.on("message", (m, r) => got.push({ m, r }));
    s.bind(0, "127.0.0.1", () => resolve({ s, got, port: s.address().port }));
  });
}
function sendUdp(sock, data, port) {
  return new Promise((resolve) => sock.send(data, port, "127.0.0.1", () => resolve()));
}

// ---- the notify receiver -----------------------------------------------------

function notifyReceiver() {
  return new Promise((resolve) => {
    const got = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        got.push({ path: req.url, type: req.headers["content-type"], body: JSON.parse(body) });
        res.writeHead(204);
        res.end();
      });
    });
    server.listen(0, "127.0.0.1", () =>
      resolve({ uri: `http://127.0.0.1:${server.address().port}/agw-events`, got, server }));
  });
}

// ---- the WebRTC IMS client -----------------------------------------------------

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

// werift 0.24.4 has no configuration for the SRTP protection profiles it
// offers (a module constant, GCM then CM_80, handed to each
// RTCDtlsTransport); the transport keeps them in its public, writable
// "srtpProfiles" and reads them only when DTLS starts, so a client
// restricted to |profiles| replaces that list before the answer is set.
const WERIFT_CM_80 = werift.ProtectionProfileAes128CmHmacSha1_80;
const WERIFT_GCM = werift.ProtectionProfileAeadAes128Gcm;

async function newClient(profiles) {
  const pc = new werift.RTCPeerConnection({
    bundlePolicy: "disable", // IMS has no BUNDLE (TS 23.228 U.1.1)
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1",
  });
  const tr = pc.addTransceiver("audio", { direction: "sendrecv" });
  const received = [];
  tr.onTrack.subscribe((track) => track.onReceiveRtp.subscribe((rtp) => received.push(rtp)));
  await pc.setLocalDescription(await pc.createOffer());
  if (profiles) {
    check(pc.dtlsTransports.length === 1 && Array.isArray(pc.dtlsTransports[0].srtpProfiles),
      "werift's DTLS transport holds its SRTP profiles");
    pc.dtlsTransports[0].srtpProfiles = profiles;
  }
  return { pc, tr, received, offer: only127(pc.localDescription.sdp) };
}

// ---- the IMS-ALG: dcmf-alg -------------------------------------------------------

// The core peer's answer to the offer dcmf-alg wrote toward it: its own
// address and RTP port, RTCP on its separate port (a=rtcp) or, with
// |mux|, rtcp-mux (which it may answer only because the offer had it,
// RFC 8035), the offered Opus, and the SSRCs it announces.
function coreAnswer(coreOffer, core, mux) {
  const m = alg.lines(coreOffer).find((l) => l.startsWith("m=audio ")).split(" ");
  if (mux) check(alg.lines(coreOffer).includes("a=rtcp-mux"), "rtcp-mux offered toward the core");
  return [
    "v=0", "o=core 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
    `m=audio ${core.rtp.port} ${m[2]} ${PT}`, "c=IN IP4 127.0.0.1", "b=AS:64",
    `a=rtpmap:${PT} opus/48000/2`, "a=ptime:20", "a=sendrecv",
    mux ? "a=rtcp-mux" : `a=rtcp:${core.rtcp.port}`,
    ...[CORE_SSRC, STRANGER_SSRC].map((x) => `a=ssrc:${x} cname:core-peer`), "",
  ].join("\r\n");
}

// Sends the one request dcmf-alg printed (POST or PATCH); returns the
// context the AGW answered.
async function send(d, req) {
  const patch = req.method === "PATCH";
  const r = await api(d.port, req.method, patch ? req.uri : AGW, req.body,
    patch ? "application/json-patch+json" : undefined);
  check(r.status === (patch ? 200 : 201), `${req.method} ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

// The SSRCs the core peer announces (its SDP's a=ssrc, passed on by the
// IMS-ALG): werift routes received RTP by them. The stranger's is among
// them, so that only the AGW can keep its packets from werift.
const CORE_SSRC = 0x5eed0001, STRANGER_SSRC = 0x0bad0bad;

// A call, UE-originated (docs/e2ae.md "Call flows"): the core peer's
// sockets and the client; the IMS-ALG (dcmf-alg) POSTs the context from
// werift's offer, writes the offer toward the core, PATCHes the core's
// answer in and writes the answer werift applies. |opts|: profiles
// (werift's SRTP profiles), mux (the core answers rtcp-mux), notifyUri,
// establish (the offer the ALG reads says a=setup:passive: werift
// offers actpass, which allows the AGW to be the client too, so the
// test writes passive there to have the AGW establish), fingerprint (an
// a=fingerprint that is not werift's in the SDP the ALG reads; null:
// none, the IMS-ALG gives werift's later, as a re-offer's PATCH).
async function call(d, opts = {}) {
  const core = { rtp: await bindUdp(), rtcp: await bindUdp() };
  const client = await newClient(opts.profiles);
  check(!/a=group:BUNDLE/.test(client.offer), "the offer has no BUNDLE group");
  check(alg.lines(client.offer).includes(`a=rtpmap:${PT} OPUS/48000/2`), `werift offers Opus as ${PT}`);
  let offer = client.offer;
  if (opts.fingerprint === null) offer = offer.replace(/^a=fingerprint:.*\r\n/m, "");
  else if (opts.fingerprint) offer = offer.replace(/^a=fingerprint:.*$/m, `a=fingerprint:${opts.fingerprint}`);
  if (opts.establish) offer = offer.replace("a=setup:actpass", "a=setup:passive");
  const notify = opts.notifyUri ? ["--notify", opts.notifyUri] : [];
  const [post] = alg.requests(DCMFD, ["--side", "access", "--kind", "offer", ...notify], offer, "srtp-avpf");
  check(post.method === "POST", `dcmf-alg: ${post.method}`);
  let ctx = await send(d, post);
  const id = ctx.contextId;
  // Toward the core: RTP/AVPF on the AGW's core port, rtcp-mux offered
  // with the separate RTCP port as the fallback, nothing of DTLS or ICE.
  const coreOffer = alg.run(DCMFD, ["rewrite", "--side", "access", "--kind", "offer"], offer, { reply: [ctx] });
  const coreTerm = ctx.terminations.find((t) => t.terminationId === "core");
  check(coreTerm.localRtcpPort > 0, "a core RTCP port until the core answers");
  alg.checkSdp(coreOffer, "offer toward the core",
    [`m=audio ${coreTerm.local.port} RTP/AVPF ${PT} 0`, `c=IN IP4 ${coreTerm.local.ipv4Addr}`,
      "a=rtcp-mux", `a=rtcp:${coreTerm.localRtcpPort}`, alg.lines(offer).find((l) => l.startsWith("a=ssrc:"))],
    ["a=fingerprint", "a=setup", "a=tls-id", "a=ice-", "a=candidate", "a=end-of-candidates", "a=mid",
      "a=group"]);
  const answerOfCore = coreAnswer(coreOffer, core, opts.mux);
  const [patch] = alg.requests(DCMFD, ["--side", "core", "--kind", "answer"], answerOfCore, "srtp-avpf",
    { reply: [ctx] });
  check(patch.method === "PATCH" && patch.uri === `${AGW}/${id}`, `dcmf-alg: ${patch.method} ${patch.uri}`);
  ctx = await send(d, patch);
  const acc = ctx.terminations.find((t) => t.terminationId === "access");
  // Toward werift: its protocol back, the AGW's fingerprint, setup,
  // tls-id and ICE-lite credentials, rtcp-mux, its own mid, b=AS with
  // the SRTP overhead added (64 + 7: 50 packets/s of 16 octets).
  const answer = alg.run(DCMFD, ["rewrite", "--side", "core", "--kind", "answer"], answerOfCore,
    { reply: [ctx], offer });
  alg.checkSdp(answer, "answer toward werift",
    [`m=audio ${acc.local.port} UDP/TLS/RTP/SAVPF ${PT}`, `c=IN IP4 ${acc.local.ipv4Addr}`, "a=ice-lite",
      alg.fingerprintAttr(acc.dtls.localFingerprint), `a=setup:${acc.dtls.localSetup}`,
      `a=tls-id:${acc.dtls.localTlsId}`, `a=ice-ufrag:${acc.ice.localUfrag}`, "a=rtcp-mux", "a=mid:0",
      "b=AS:71", `a=ssrc:${CORE_SSRC} cname:core-peer`],
    ["a=rtcp:", "a=group"]);
  await client.pc.setRemoteDescription({ type: "answer", sdp: answer });
  const after = ctx.terminations.find((t) => t.terminationId === "core");
  return { core, client, offer, ctx, id, corePort: after.local.port,
    coreRtcpPort: after.rtcpMux ? undefined : after.localRtcpPort, coreMux: after.rtcpMux,
    close() { client.pc.close(); core.rtp.s.close(); core.rtcp.s.close(); } };
}

const connected = (c) => c.client.pc.connectionState === "connected";

async function sendFromClient(c, n, tag) {
  const sent = [];
  for (let i = 0; i < n; i++) {
    const payload = payloadOf(tag, i);
    const hdr = new werift.RtpHeader({ payloadType: PT, sequenceNumber: 1000 + i, timestamp: i * 960 });
    await c.client.tr.sender.sendRtp(new werift.RtpPacket(hdr, payload));
    sent.push(payload);
  }
  return sent;
}

async function get(d, id) {
  const r = await api(d.port, "GET", `${AGW}/${id}`);
  check(r.status === 200, `GET ${r.status}`);
  return r.body;
}

// ---- cases -----------------------------------------------------------------------

const tests = [];

// Access -> core: same SSRC, consecutive sequence numbers, the payload
// werift sent; core -> access: werift receives the core's RTP intact;
// werift's RTCP reaches the core RTCP port (a separate one).
tests.push({ name: "audio both ways, RTCP to a separate core port", async fn(d) {
  const c = await call(d);
  try {
    await until(() => connected(c), 10000, "DTLS-SRTP connected");
    const sent = await sendFromClient(c, 50, "up");
    await until(() => c.core.rtp.got.filter((g) => !isRtcp(g.m)).length >= 50, 5000, "50 RTP at the core");
    const pkts = c.core.rtp.got.filter((g) => !isRtcp(g.m)).map((g) => parseRtp(g.m));
    check(pkts.every((p) => p !== null), "every core packet is RTP");
    const ssrc = c.client.tr.sender.ssrc;
    for (let i = 0; i < 50; i++) {
      check(pkts[i].ssrc === ssrc, `SSRC ${pkts[i].ssrc} is werift's ${ssrc}`);
      check(pkts[i].pt === PT, `payload type ${pkts[i].pt}`);
      if (i > 0) check(pkts[i].seq === ((pkts[i - 1].seq + 1) & 0xffff), `consecutive at ${i}`);
      check(pkts[i].payload.equals(sent[i]), `payload ${i} intact`);
    }
    // Every core packet came from the AGW's core RTP port.
    check(c.core.rtp.got.every((g) => g.r.port === c.corePort), "sent from the core RTP port");
    // Core -> access.
    const coreSsrc = CORE_SSRC;
    for (let i = 0; i < 30; i++) {
      await sendUdp(c.core.rtp.s, rtpPacket(coreSsrc, 7000 + i, payloadOf("down", i)), c.corePort);
    }
    await until(() => c.client.received.length >= 30, 5000, "30 RTP at werift");
    const down = c.client.received.filter((p) => p.header.ssrc === coreSsrc);
    check(down.length === 30, `werift got ${down.length} of the core's packets`);
    for (let i = 0; i < 30; i++) {
      check(down[i].header.sequenceNumber === 7000 + i, `sequence ${down[i].header.sequenceNumber}`);
      check(down[i].payload.equals(payloadOf("down", i)), `core payload ${i} intact`);
    }
    // werift's sender reports (every few seconds) reach the core RTCP port.
    const rtcpSeen = () => c.core.rtcp.got.some((g) => isRtcp(g.m) && g.r.port === c.coreRtcpPort);
    for (let k = 0; k < 200 && !rtcpSeen(); k++) {
      await sendFromClient(c, 1, `keep${k}`); // werift sends reports while it sends
      await wait(50);
    }
    check(rtcpSeen(), "RTCP at the core RTCP port");
    check(!c.core.rtp.got.some((g) => isRtcp(g.m)), "no RTCP on the core RTP port");
    // The counters: GET per termination, and /metrics.
    await until(async () => {
      const g = await get(d, c.id);
      const a = g.terminations[0].rtpStatistics, k = g.terminations[1].rtpStatistics;
      return a && k && k.packetsSent >= 50 && a.packetsSent >= 30 && a.srtpProfile !== "";
    }, 3000, "rtpStatistics on GET");
    const m = await api(d.port, "GET", "/metrics");
    check(/dcmf_agw_e2ae_packets_total\{termination="core"\} [1-9]/.test(m.body), "core packets in /metrics");
    check(/dcmf_agw_e2ae_contexts 1/.test(m.body), "one e2ae context in /metrics");
    const inUse = async () => Number(/dcmf_media_ports_in_use (\d+)/.exec((await api(d.port, "GET", "/metrics")).body)[1]);
    check(await inUse() === 3, "three ports for the context");
    const del = await api(d.port, "DELETE", `${AGW}/${c.id}`);
    check(del.status === 204, `DELETE ${del.status}`);
    check((await api(d.port, "GET", `${AGW}/${c.id}`)).status === 404, "gone");
    // The ports go back once the worker released the session.
    await until(async () => (await inUse()) === 0, 3000, "the ports back in the pool");
  } finally { c.close(); }
} });

// "Establish (D)TLS session": the AGW is the DTLS client (a=setup:active
// in the answer) and werift the server.
tests.push({ name: "establish: the AGW is the DTLS client", async fn(d) {
  const c = await call(d, { establish: true });
  try {
    const acc = c.ctx.terminations.find((t) => t.terminationId === "access");
    check(acc.dtls.localSetup === "active", `localSetup ${acc.dtls.localSetup}`);
    await until(() => connected(c), 10000, "DTLS-SRTP connected");
    const role = c.client.pc.dtlsTransports[0] && c.client.pc.dtlsTransports[0].role;
    check(role === "server", `werift's DTLS role ${role}`);
    await sendFromClient(c, 10, "est");
    await until(() => c.core.rtp.got.filter((g) => !isRtcp(g.m)).length >= 10, 5000, "RTP at the core");
  } finally { c.close(); }
} });

// A WIC that offers one SRTP profile only, with the AGW as the DTLS
// server and as the client: the handshake settles on that profile (the
// AGW offers GCM-256, GCM-128, CM_80 and CM_32), media passes both ways
// intact, and GET names the profile (OpenSSL's name for it).
for (const [werift_profile, name] of [[WERIFT_CM_80, "SRTP_AES128_CM_SHA1_80"],
  [WERIFT_GCM, "SRTP_AEAD_AES_128_GCM"]]) {
  for (const establish of [false, true]) {
    tests.push({ name: `werift offers only ${name}, AGW DTLS ${establish ? "client" : "server"}`, async fn(d) {
      const c = await call(d, { profiles: [werift_profile], establish });
      try {
        await until(() => connected(c), 10000, "DTLS-SRTP connected");
        const dt = c.client.pc.dtlsTransports[0];
        check(dt.role === (establish ? "server" : "client"), `werift's DTLS role ${dt.role}`);
        check(dt.srtp.config.profile === werift_profile, `werift keyed profile ${dt.srtp.config.profile}`);
        const sent = await sendFromClient(c, 20, "prof");
        await until(() => c.core.rtp.got.filter((g) => !isRtcp(g.m)).length >= 20, 5000, "20 RTP at the core");
        const up = c.core.rtp.got.filter((g) => !isRtcp(g.m)).map((g) => parseRtp(g.m));
        for (let i = 0; i < 20; i++) check(up[i] && up[i].payload.equals(sent[i]), `payload ${i} intact at the core`);
        for (let i = 0; i < 20; i++) {
          await sendUdp(c.core.rtp.s, rtpPacket(CORE_SSRC, 4000 + i, payloadOf("pdown", i)), c.corePort);
        }
        await until(() => c.client.received.filter((p) => p.header.ssrc === CORE_SSRC).length >= 20, 5000,
          "20 RTP at werift");
        const down = c.client.received.filter((p) => p.header.ssrc === CORE_SSRC);
        for (let i = 0; i < 20; i++) {
          check(down[i].header.sequenceNumber === 4000 + i, `sequence ${down[i].header.sequenceNumber}`);
          check(down[i].payload.equals(payloadOf("pdown", i)), `core payload ${i} intact at werift`);
        }
        let g;
        await until(async () => {
          g = await get(d, c.id);
          const a = g.terminations[0].rtpStatistics;
          return a && a.srtpProfile !== undefined && a.srtpProfile !== "";
        }, 3000, "srtpProfile on GET");
        check(g.terminations[0].rtpStatistics.srtpProfile === name,
          `rtpStatistics.srtpProfile ${g.terminations[0].rtpStatistics.srtpProfile}`);
        check(g.rtpCounters && g.rtpCounters.profile === name, `rtpCounters.profile ${g.rtpCounters && g.rtpCounters.profile}`);
      } finally { c.close(); }
    } });
  }
}

// Tampered SRTP from the ICE peer itself: werift protects a real packet
// with its own keys and sends it through its own ICE socket (the only
// source the AGW takes SRTP from) with one bit of the ciphertext flipped.
// The AGW refuses it (srtpAuth), forwards nothing for it, and the
// untampered packet with the same sequence number still passes (a
// packet failing authentication does not enter the replay window).
for (const [werift_profile, name] of [[WERIFT_CM_80, "CM_80"], [WERIFT_GCM, "GCM"]]) {
  tests.push({ name: `tampered SRTP (${name}) from werift's socket: srtpAuth, nothing forwarded`, async fn(d) {
    const c = await call(d, { profiles: [werift_profile] });
    try {
      await until(() => connected(c), 10000, "DTLS-SRTP connected");
      await sendFromClient(c, 5, "pre");
      await until(() => c.core.rtp.got.filter((g) => !isRtcp(g.m)).length >= 5, 5000, "5 RTP at the core");
      const before = c.core.rtp.got.length;
      const dt = c.client.pc.dtlsTransports[0];
      const payload = payloadOf("tamper", 0);
      // The next sequence number of werift's sender (it adds a random
      // offset to what it is given), so that both ends agree on the index.
      const snd = c.client.tr.sender;
      const seq = (snd.sequenceNumber + 1) & 0xffff;
      const hdr = new werift.RtpHeader({ payloadType: PT, sequenceNumber: seq,
        timestamp: (snd.timestamp + 960) >>> 0, ssrc: snd.ssrc });
      const enc = Buffer.from(dt.srtp.encrypt(payload, hdr));
      const bad = Buffer.from(enc);
      bad[14] ^= 0x01; // in the ciphertext, past the 12-byte header
      const bad2 = Buffer.from(enc);
      bad2[bad2.length - 1] ^= 0x80; // in the tag
      await dt.iceTransport.connection.send(bad);
      await dt.iceTransport.connection.send(bad2);
      await until(async () => {
        const a = (await get(d, c.id)).terminations[0].rtpStatistics;
        return a && a.dropped.srtpAuth >= 2;
      }, 5000, "the tampered packets counted as srtpAuth");
      check(c.core.rtp.got.length === before, "nothing reached the core for the tampered packets");
      // The genuine packet after them is not taken for a replay.
      await dt.iceTransport.connection.send(enc);
      await until(() => c.core.rtp.got.length > before, 5000, "the genuine packet at the core");
      const p = parseRtp(c.core.rtp.got[before].m);
      check(p && p.seq === seq && p.payload.equals(payload), "the genuine packet intact");
      const a = (await get(d, c.id)).terminations[0].rtpStatistics;
      check(a.dropped.srtpAuth === 2, `srtpAuth ${a.dropped.srtpAuth}`);
      check(a.dropped.srtpReplay === 0, `srtpReplay ${a.dropped.srtpReplay}`);
      const m = await api(d.port, "GET", "/metrics");
      check(/dcmf_agw_e2ae_dropped_total\{termination="access",reason="srtp_auth"\} 2\b/.test(m.body),
        "srtp_auth in /metrics");
      check(c.core.rtp.got.length === before + 1, `one packet more at the core, got ${c.core.rtp.got.length - before}`);
    } finally { c.close(); }
  } });
}

// The core multiplexes RTCP on its RTP port.
tests.push({ name: "core rtcp-mux: RTP and RTCP on one core port", async fn(d) {
  const c = await call(d, { mux: true });
  try {
    check(c.coreMux === true, "the core's rtcp-mux answer PATCHed in");
    await until(() => connected(c), 10000, "DTLS-SRTP connected");
    const rtcpSeen = () => c.core.rtp.got.some((g) => isRtcp(g.m));
    for (let k = 0; k < 200 && !rtcpSeen(); k++) {
      await sendFromClient(c, 1, `mux${k}`);
      await wait(50);
    }
    check(c.core.rtp.got.some((g) => !isRtcp(g.m)), "RTP at the core port");
    check(rtcpSeen(), "RTCP at the same core port");
    check(c.core.rtcp.got.length === 0, "nothing to the other socket");
  } finally { c.close(); }
} });

// A wrong remote fingerprint: the handshake fails, the failure is POSTed
// to notifyUri and kept for GET, and nothing reaches the core.
tests.push({ name: "wrong fingerprint: failure event, nothing forwarded", async fn(d) {
  const rx = await notifyReceiver();
  const other = "sha-256 " + Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) & 0xff).toString(16).padStart(2, "0")).join(":");
  const c = await call(d, { fingerprint: other, notifyUri: rx.uri });
  try {
    await until(() => rx.got.length >= 1, 10000, "the failure notification");
    const ev = rx.got[0];
    check(ev.path === "/agw-events", `path ${ev.path}`);
    check(/application\/json/.test(ev.type), `type ${ev.type}`);
    check(ev.body.event === "DTLS_FAILURE", `event ${ev.body.event}`);
    check(ev.body.contextId === c.id, "the context's id");
    check(typeof ev.body.detail.reason === "string", "a reason");
    const g = await get(d, c.id);
    check(g.events.some((e) => e.event === "DTLS_FAILURE"), "kept for GET");
    // The core sends, werift tries: the AGW holds both back. Waiting for
    // the core's packets to be counted as dropped before DTLS bounds the
    // wait, so the checks below come after they had their chance.
    for (let i = 0; i < 5; i++) {
      await sendUdp(c.core.rtp.s, rtpPacket(CORE_SSRC, 500 + i, payloadOf("held", i)), c.corePort);
    }
    await sendFromClient(c, 5, "never").catch(() => {});
    await until(async () => {
      const k = (await get(d, c.id)).terminations[1].rtpStatistics;
      return k && k.dropped.beforeDtls >= 5;
    }, 5000, "the core's packets counted as beforeDtls");
    check(!connected(c), "werift never connected");
    check(c.core.rtp.got.length === 0 && c.core.rtcp.got.length === 0, "zero packets at the core");
    check(c.client.received.length === 0, "nothing from the core reached werift");
    const m = await api(d.port, "GET", "/metrics");
    check(/dcmf_agw_e2ae_dtls_failures_total 1/.test(m.body), "counted in /metrics");
  } finally { c.close(); rx.server.close(); }
} });

// UE-terminated call: the fingerprint arrives later; the handshake is
// held until the PATCH, then media flows.
tests.push({ name: "fingerprint held until PATCH, then media flows", async fn(d) {
  const c = await call(d, { fingerprint: null });
  try {
    // ICE completes (consent, checks answered) but DTLS is held.
    await until(() => c.client.pc.iceConnectionState === "connected", 10000, "ICE connected");
    const held = Date.now() + 1000;
    while (Date.now() < held) {
      check(!connected(c), "DTLS completed without a fingerprint");
      await wait(50);
    }
    // The IMS-ALG learns werift's fingerprint (its re-offer): dcmf-alg
    // makes the re-offer a PATCH of the context, the fingerprint in it.
    const [patch] = alg.requests(DCMFD, ["--side", "access", "--kind", "offer"], c.client.offer, "srtp-avpf",
      { reply: [c.ctx] });
    check(patch.method === "PATCH" && patch.body.some((op) =>
      op.path === "/terminations/0/dtls/remoteFingerprints"), `dcmf-alg: ${JSON.stringify(patch)}`);
    await send(d, patch);
    await until(() => connected(c), 15000, "DTLS-SRTP connected after the PATCH");
    await sendFromClient(c, 10, "late");
    await until(() => c.core.rtp.got.filter((g) => !isRtcp(g.m)).length >= 10, 5000, "RTP at the core");
  } finally { c.close(); }
} });

// A packet to the core port from a source neither signalled nor latched
// is not forwarded, and is counted.
tests.push({ name: "core packet from an unknown source: dropped and counted", async fn(d) {
  const c = await call(d);
  const stranger = await bindUdp();
  try {
    await until(() => connected(c), 10000, "DTLS-SRTP connected");
    const ssrc = STRANGER_SSRC;
    for (let i = 0; i < 5; i++) {
      await sendUdp(stranger.s, rtpPacket(ssrc, i, payloadOf("x", i)), c.corePort);
    }
    // The signalled peer's packet after them arrives; theirs do not.
    await sendUdp(c.core.rtp.s, rtpPacket(CORE_SSRC, 1, payloadOf("ok", 1)), c.corePort);
    await until(() => c.client.received.some((p) => p.header.ssrc === CORE_SSRC), 5000, "the signalled core peer's packet");
    check(!c.client.received.some((p) => p.header.ssrc === ssrc), "the stranger's packets were forwarded");
    await until(async () => {
      const g = await get(d, c.id);
      const k = g.terminations[1].rtpStatistics;
      return k && k.dropped.unknownSource >= 5;
    }, 3000, "unknownSource counted on the core termination");
    const m = await api(d.port, "GET", "/metrics");
    check(/dcmf_agw_e2ae_dropped_total\{termination="core",reason="unknown_source"\} [5-9]/.test(m.body),
      "unknown_source in /metrics");
  } finally { c.close(); stranger.s.close(); }
} });

// UE-terminated call (docs/e2ae.md "Call flows"): the core offers RTP;
// the IMS-ALG (dcmf-alg) POSTs the context from the core's offer and
// offers actpass to werift with nothing of werift known (no fingerprint,
// tls-id or ICE); werift's answer becomes dcmf-alg's PATCH (its
// fingerprint, setup, tls-id if any, ICE) and the answer toward the
// core. An "active" answer keeps the AGW the DTLS server; a "passive"
// one (werift's answer munged before it applies it) makes the AGW the
// DTLS client. The core's offer carries a=mid, as werift needs one.
function coreOffer(core) {
  return [
    "v=0", "o=core 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
    `m=audio ${core.rtp.port} RTP/AVPF ${PT}`, "c=IN IP4 127.0.0.1", "a=mid:0", "a=sendrecv",
    `a=rtcp:${core.rtcp.port}`, `a=rtpmap:${PT} opus/48000/2`, `a=ssrc:${CORE_SSRC} cname:core-peer`, "",
  ].join("\r\n");
}

for (const answer of ["active", "passive"]) {
  tests.push({ name: `UE-terminated: actpass offer, werift answers ${answer}`, async fn(d) {
    const core = { rtp: await bindUdp(), rtcp: await bindUdp() };
    const pc = new werift.RTCPeerConnection({
      bundlePolicy: "disable", iceUseIpv6: false, iceAdditionalHostAddresses: ["127.0.0.1"],
      iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1",
    });
    const received = [];
    try {
      const offerOfCore = coreOffer(core);
      const [post] = alg.requests(DCMFD, ["--side", "core", "--kind", "offer"], offerOfCore, "srtp-avpf");
      check(post.method === "POST", `dcmf-alg: ${post.method}`);
      const ctx = await send(d, post);
      const id = ctx.contextId;
      const coreTerm = ctx.terminations[1];
      check(coreTerm.remote.port === core.rtp.port && coreTerm.remoteRtcpPort === core.rtcp.port,
        `the core's ports from its offer: ${JSON.stringify(coreTerm)}`);
      const corePort = coreTerm.local.port;
      const acc0 = ctx.terminations[0];
      const offer = alg.run(DCMFD, ["rewrite", "--side", "core", "--kind", "offer"], offerOfCore, { reply: [ctx] });
      alg.checkSdp(offer, "offer toward werift",
        [`m=audio ${acc0.local.port} UDP/TLS/RTP/SAVPF ${PT}`, "a=ice-lite", "a=setup:actpass",
          alg.fingerprintAttr(acc0.dtls.localFingerprint), `a=tls-id:${acc0.dtls.localTlsId}`,
          `a=ice-ufrag:${acc0.ice.localUfrag}`, "a=rtcp-mux", `a=ssrc:${CORE_SSRC} cname:core-peer`],
        ["a=rtcp:", "a=3ge2ae"]);
      pc.onTransceiverAdded.subscribe((tr) =>
        tr.onTrack.subscribe((track) => track.onReceiveRtp.subscribe((rtp) => received.push(rtp))));
      await pc.setRemoteDescription({ type: "offer", sdp: offer });
      const tr = pc.getTransceivers()[0];
      tr.setDirection("sendrecv");
      let sdp = only127((await pc.createAnswer()).sdp);
      check(/a=setup:active/.test(sdp), "werift answers active by default");
      if (answer === "passive") sdp = sdp.replace("a=setup:active", "a=setup:passive");
      const [patch] = alg.requests(DCMFD, ["--side", "access", "--kind", "answer"], sdp, "srtp-avpf",
        { reply: [ctx] });
      check(patch.method === "PATCH" && patch.uri === `${AGW}/${id}`, `dcmf-alg: ${patch.method} ${patch.uri}`);
      const after = await send(d, patch);
      const acc = after.terminations[0];
      check(acc.dtls.localSetup === (answer === "passive" ? "active" : "passive"),
        `localSetup ${acc.dtls.localSetup}`);
      check(acc.dtls.localFingerprint === acc0.dtls.localFingerprint, "the offered local fingerprint is kept");
      // Toward the core: its protocol, the AGW's core port, RTCP on the
      // separate port (the core offered no rtcp-mux), nothing of DTLS.
      const toCore = alg.run(DCMFD, ["rewrite", "--side", "access", "--kind", "answer"], sdp,
        { reply: [after], offer: offerOfCore });
      alg.checkSdp(toCore, "answer toward the core",
        [`m=audio ${corePort} RTP/AVPF ${PT}`, `a=rtcp:${after.terminations[1].localRtcpPort}`],
        ["a=rtcp-mux", "a=fingerprint", "a=setup", "a=ice-", "a=candidate"]);
      await pc.setLocalDescription({ type: "answer", sdp });
      await until(() => pc.connectionState === "connected", 15000, "DTLS-SRTP connected");
      const role = pc.dtlsTransports[0] && pc.dtlsTransports[0].role;
      check(role === (answer === "passive" ? "server" : "client"), `werift's DTLS role ${role}`);
      for (let i = 0; i < 10; i++) {
        const hdr = new werift.RtpHeader({ payloadType: PT, sequenceNumber: 100 + i, timestamp: i * 960 });
        await tr.sender.sendRtp(new werift.RtpPacket(hdr, payloadOf("ue", i)));
      }
      await until(() => core.rtp.got.filter((g) => !isRtcp(g.m)).length >= 10, 5000, "RTP at the core");
      for (let i = 0; i < 5; i++) {
        await sendUdp(core.rtp.s, rtpPacket(CORE_SSRC, 300 + i, payloadOf("ued", i)), corePort);
      }
      await until(() => received.some((x) => x.header.ssrc === CORE_SSRC), 5000, "core RTP at werift");
    } finally { pc.close(); core.rtp.s.close(); core.rtcp.s.close(); }
  } });
}

// DCMFD_ARGS: more dcmfd options for every case (tests/meson.build runs
// the suite again with --srtp-backend libsrtp2).
const DCMFD_ARGS = (process.env.DCMFD_ARGS || "").split(/\s+/).filter(Boolean);
runTests(DCMFD, "e2ae", process.env.E2AE_ONLY ? tests.filter((t) => t.name.includes(process.env.E2AE_ONLY)) : tests, 60000, DCMFD_ARGS);
