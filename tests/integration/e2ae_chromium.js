// e2ae end to end with independent peers (issue 11 item 4): headless
// Debian Chromium (playwright-core) is the WebRTC IMS client, with its
// fake microphone (a beep) and camera, `bundlePolicy: 'max-compat'` and
// an answer without BUNDLE (IMS has none, TS 23.228 U.1.1); GStreamer
// (e2ae_gst_core.py: rtpbin, Opus or VP8) is the IMS core peer; dcmfd's
// AGW sits between them. The IMS-ALG is dcmf-alg (alg.js): each of
// Chromium's m-lines becomes one /agw/v1 e2ae context, the offer toward
// the core loses BUNDLE, DTLS and ICE, the core's answer becomes PATCHes
// and the answer Chromium applies (ICE-lite, the AGW's credentials,
// fingerprint, a=setup, the access port and its candidate, rtcp-mux, the
// mids), each checked line by line.
// Cases: audio both ways with RTCP on a separate core port and with core
// rtcp-mux (round-trip time at Chromium from the core's reports); audio
// and video toward an RTP/AVPF core (NACK and PLI pass) and an RTP/AVP
// core (stripped); an ICE restart mid-call.
//
//   node e2ae_chromium.js DCMFD [filter]
//
// Run it inside tests/integration/in-netns (Chromium then sees only
// 127.0.0.1). Each case runs against a fresh dcmfd and prints "ok - name"
// / "not ok - name: why"; exits 1 on failure.
"use strict";
const path = require("path");
const fs = require("fs");
const readline = require("readline");
const { spawn } = require("child_process");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const { api } = require("./ims_as");
const { makeBrowser } = require("./chromium");
const { wait, timeout, check, startDcmfd } = require("./harness");
const alg = require("./alg");

const DCMFD = process.argv[2];
const FILTER = process.argv[3];
const AGW = "/agw/v1/contexts";
// GStreamer's Python bindings are Debian packages: the system interpreter.
const PYTHON = process.env.GST_PYTHON || "/usr/bin/python3";
const CORE = path.join(__dirname, "e2ae_gst_core.py");
const CORE_SSRC = 0x5eed0001;
const note = (msg) => console.log(`# ${msg}`);

// Polls |cond| every 50 ms until it is true or |ms| passed; throws
// "timed out: |what|" (with |why()| if given) then. The only way this
// test waits for something to happen.
async function until(cond, ms, what, why) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out: ${what}${why ? ` (${await why()})` : ""}`);
    await wait(50);
  }
}

// ---- the WebRTC IMS client: a Chromium page ------------------------------------

// Served from http://127.0.0.1 (a secure context, so getUserMedia works).
const PAGE = `<!doctype html><meta charset="utf-8"><title>e2ae WIC</title>
<script>
"use strict";
const within = (p, ms, what) => Promise.race([p, new Promise((_, reject) =>
  setTimeout(() => reject(new Error("timed out after " + ms + " ms: " + what)), ms))]);
window.wic = {
  pc: null, stream: null, players: [],
  // Fake microphone (and camera), one m-line each, no BUNDLE on the wire
  // once answered without it; returns the non-trickle offer.
  async offer(kinds) {
    const pc = this.pc = new RTCPeerConnection({ bundlePolicy: "max-compat", rtcpMuxPolicy: "require" });
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: kinds.includes("audio"),
      video: kinds.includes("video") ? { width: 640, height: 480, frameRate: 30 } : false });
    for (const t of this.stream.getTracks()) pc.addTransceiver(t, { direction: "sendrecv", streams: [this.stream] });
    // Play what arrives, so that Chromium decodes it (audioLevel).
    pc.ontrack = (e) => {
      const el = document.createElement(e.track.kind);
      el.autoplay = true; el.muted = false;
      el.srcObject = new MediaStream([e.track]);
      document.body.appendChild(el);
      this.players.push(el);
      el.play().catch(() => {});
    };
    await pc.setLocalDescription(await pc.createOffer());
    await within(new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") resolve();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
    }), 10000, "ICE gathering to complete");
    return pc.localDescription.sdp;
  },
  async answer(sdp) { await this.pc.setRemoteDescription({ type: "answer", sdp }); },
  // An ICE restart (RFC 8839 section 4.4.1.1.1): a new offer with new
  // credentials, non-trickle again.
  async restart() {
    const pc = this.pc;
    pc.restartIce();
    await pc.setLocalDescription(await pc.createOffer());
    // The state may still read "complete" from the first gathering: wait
    // for the new candidates themselves.
    const done = () => pc.iceGatheringState === "complete" && pc.localDescription.sdp.includes("a=candidate:");
    await within(new Promise((resolve) => {
      if (done()) resolve();
      pc.onicegatheringstatechange = () => done() && resolve();
    }), 10000, "ICE gathering to complete after the restart");
    return pc.localDescription.sdp;
  },
  // The getStats members the test judges, by kind.
  async stats() {
    const out = { conn: this.pc.connectionState, transports: [] };
    const all = []; (await this.pc.getStats()).forEach((s) => all.push(s));
    for (const s of all) {
      if (s.type === "transport") out.transports.push({ dtls: s.dtlsState, srtp: s.srtpCipher, tls: s.tlsVersion,
        role: s.dtlsRole, ice: s.iceState, ufrag: s.iceLocalUsernameFragment, pairChanges: s.selectedCandidatePairChanges });
      if (s.type === "outbound-rtp") out["out_" + s.kind] = { ssrc: s.ssrc, packetsSent: s.packetsSent,
        framesEncoded: s.framesEncoded, pliCount: s.pliCount, nackCount: s.nackCount, firCount: s.firCount };
      // One inbound stream per kind is expected; should there be more,
      // the one that received most is the core's.
      if (s.type === "inbound-rtp" && !(out["in_" + s.kind] && out["in_" + s.kind].packetsReceived > s.packetsReceived)) out["in_" + s.kind] = { ssrc: s.ssrc, packetsReceived: s.packetsReceived,
        packetsLost: s.packetsLost, audioLevel: s.audioLevel, totalAudioEnergy: s.totalAudioEnergy,
        framesDecoded: s.framesDecoded, pliCount: s.pliCount, nackCount: s.nackCount };
      if (s.type === "remote-inbound-rtp") out["rin_" + s.kind] = { ssrc: s.ssrc, roundTripTime: s.roundTripTime,
        roundTripTimeMeasurements: s.roundTripTimeMeasurements, packetsLost: s.packetsLost };
    }
    return out;
  },
  close() {
    if (this.pc) this.pc.close();
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    for (const el of this.players) el.srcObject = null;
  },
};
</script>`;

const browser = makeBrowser({
  html: PAGE, profilePrefix: "dcmf-e2ae-chr-",
  extraArgs: ["--autoplay-policy=no-user-gesture-required"], // the remote audio plays out
});

async function newWic() {
  const page = await browser.ctx.newPage();
  await page.goto(browser.url, { timeout: 10000 });
  return {
    page,
    call: (what, fn, arg, ms = 20000) => timeout(page.evaluate(fn, arg), ms, what),
    stats() { return this.call("getStats", () => window.wic.stats(), undefined, 5000); },
    async close() {
      await timeout(page.evaluate(() => window.wic.close()), 5000, "pc.close").catch(() => {});
      await timeout(page.close(), 5000, "closing the tab").catch(() => {});
    },
  };
}

// ---- the IMS core peer: GStreamer ------------------------------------------------

// Starts e2ae_gst_core.py; resolves once it bound its sockets. |ev| holds
// every JSON line it printed.
async function startCore(opts) {
  const args = [CORE, "--media", opts.media, "--profile", opts.profile || "avp", "--pt", String(opts.pt),
    "--ssrc", String(CORE_SSRC)];
  if (opts.mux) args.push("--mux");
  if (opts.dropFirst) args.push("--drop-first", String(opts.dropFirst));
  if (opts.dropEvery) args.push("--drop-every", String(opts.dropEvery));
  const proc = spawn(PYTHON, args, { stdio: ["pipe", "pipe", "pipe"] });
  const core = { proc, ev: [], stderr: "" };
  readline.createInterface({ input: proc.stdout }).on("line", (l) => {
    try { core.ev.push({ ...JSON.parse(l), t: Date.now() }); } catch (e) { core.ev.push({ ev: "junk", l }); }
  });
  proc.stderr.on("data", (c) => { if (core.stderr.length < 4000) core.stderr += c; });
  proc.stdin.on("error", () => {}); // a core that died is reported by the checks
  const exited = new Promise((r) => proc.on("exit", (c, s) => r(s || c)));
  core.send = (obj) => proc.stdin.write(JSON.stringify(obj) + "\n");
  core.of = (name, pred = () => true) => core.ev.filter((e) => e.ev === name && pred(e));
  core.stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    if (await Promise.race([exited.then(() => true), wait(5000).then(() => false)]) === false) {
      proc.kill("SIGKILL");
      await exited;
    }
  };
  await until(() => core.ev.length > 0 || proc.exitCode !== null, 15000, "the GStreamer core peer's ports",
    () => core.stderr);
  const p = core.ev[0];
  check(p.ev === "ports", `GStreamer core peer: ${JSON.stringify(p)} ${core.stderr}`);
  core.rtpPort = p.rtp;
  core.rtcpPort = p.rtcp;
  return core;
}

// ---- the IMS-ALG -------------------------------------------------------------

// The offer's media sections, each with what the IMS-ALG reads from it.
function parseOffer(sdp) {
  const lines = sdp.split("\r\n").filter((l) => l);
  const starts = lines.map((l, i) => (l.startsWith("m=") ? i : -1)).filter((i) => i >= 0);
  const session = lines.slice(0, starts[0]);
  return {
    bundle: session.some((l) => l.startsWith("a=group:BUNDLE")),
    sections: starts.map((s, k) => {
      const sec = lines.slice(s, starts[k + 1]);
      const val = (p) => { const l = sec.find((x) => x.startsWith(p)) || session.find((x) => x.startsWith(p)); return l && l.slice(p.length); };
      const m = sec[0].split(" ");
      const cand = sec.filter((l) => l.startsWith("a=candidate:")).map((l) => l.split(" "))
        .find((f) => f[2].toLowerCase() === "udp" && f[4] === "127.0.0.1");
      const codec = (name) => {
        const l = sec.find((x) => new RegExp(`^a=rtpmap:\\d+ ${name}/`, "i").test(x));
        return l && Number(l.split(":")[1].split(" ")[0]);
      };
      return {
        kind: m[0].slice(2), proto: m[2], mid: val("a=mid:"), ufrag: val("a=ice-ufrag:"), pwd: val("a=ice-pwd:"),
        fingerprint: val("a=fingerprint:"), setup: val("a=setup:"), tlsId: val("a=tls-id:"),
        rtcpMux: sec.includes("a=rtcp-mux"), opus: codec("opus"), vp8: codec("VP8"),
        addr: cand && cand[4], port: cand && Number(cand[5]),
      };
    }),
  };
}

// The core's answer to the offer dcmf-alg wrote toward it, one section
// per m-line |secs|, each from its GStreamer peer in |cores|: its
// address and RTP port, RTCP on its separate port (a=rtcp) or, with
// |mux|, rtcp-mux (offered to it, RFC 8035), the one codec it runs and
// its SSRC. Video lists NACK and PLI (the GStreamer peer sends feedback
// whatever its profile; toward an RTP/AVP core the AGW strips it).
function coreAnswer(coreOffer, secs, cores, mux) {
  const protos = alg.lines(coreOffer).filter((l) => l.startsWith("m=")).map((l) => l.split(" ")[2]);
  check(protos.length === secs.length, `${protos.length} m-lines toward the core`);
  if (mux) check(alg.lines(coreOffer).filter((l) => l === "a=rtcp-mux").length === secs.length,
    "rtcp-mux offered toward the core on each m-line");
  const out = ["v=0", "o=core 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0"];
  secs.forEach((sec, k) => {
    const pt = sec.kind === "audio" ? sec.opus : sec.vp8;
    out.push(`m=${sec.kind} ${cores[k].rtpPort} ${protos[k]} ${pt}`, "c=IN IP4 127.0.0.1", "a=sendrecv",
      ...(sec.kind === "audio"
        ? [`a=rtpmap:${pt} opus/48000/2`, `a=fmtp:${pt} minptime=10;useinbandfec=1`]
        : [`a=rtpmap:${pt} VP8/90000`, `a=rtcp-fb:${pt} nack`, `a=rtcp-fb:${pt} nack pli`]),
      mux ? "a=rtcp-mux" : `a=rtcp:${cores[k].rtcpPort}`, `a=ssrc:${CORE_SSRC} cname:core-peer`);
  });
  return out.join("\r\n") + "\r\n";
}

// Sends the one request dcmf-alg printed (POST or PATCH); returns the
// context the AGW answered.
async function send(d, req) {
  const patch = req.method === "PATCH";
  const r = await timeout(api(d.port, req.method, patch ? req.uri : AGW, req.body,
    patch ? "application/json-patch+json" : undefined), 5000, req.method);
  check(r.status === (patch ? 200 : 201), `${req.method} ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

// The answer toward Chromium (dcmf-alg rewrite of the core's answer with
// the contexts |ctxs| and Chromium's |offer|), checked per m-line: the
// access port and protocol, the AGW's fingerprint, setup, tls-id and
// ICE-lite credentials with one host candidate, the offer's mid; no
// BUNDLE (TS 23.228 U.1.1), rtcp-mux and no a=rtcp.
function answerToWic(coreSdp, ctxs, offer) {
  const answer = alg.run(DCMFD, ["rewrite", "--side", "core", "--kind", "answer"], coreSdp, { reply: ctxs, offer });
  const o = parseOffer(offer);
  ctxs.forEach((ctx, k) => {
    const acc = ctx.terminations.find((t) => t.terminationId === "access");
    const sec = o.sections[k];
    alg.checkSdp(answer, `answer toward Chromium, m=${sec.kind}`, [
      `m=${sec.kind} ${acc.local.port} UDP/TLS/RTP/SAVPF ${sec.kind === "audio" ? sec.opus : sec.vp8}`,
      alg.fingerprintAttr(acc.dtls.localFingerprint), `a=setup:${acc.dtls.localSetup}`,
      `a=tls-id:${acc.dtls.localTlsId}`, `a=ice-ufrag:${acc.ice.localUfrag}`, `a=mid:${sec.mid}`,
      `a=candidate:1 1 udp 2130706431 ${acc.local.ipv4Addr} ${acc.local.port} typ host`]);
  });
  alg.checkSdp(answer, "answer toward Chromium", ["a=ice-lite", "a=rtcp-mux"], ["a=group", "a=rtcp:"]);
  return answer;
}

// A call: Chromium offers |kinds|; per m-line a GStreamer core peer and
// an AGW context; the IMS-ALG (dcmf-alg) POSTs the contexts from
// Chromium's offer, writes the offer toward the core (BUNDLE gone, each
// m-line on its AGW core port), PATCHes the core's answer in and writes
// the answer Chromium applies. |opts|: mux (the core answers rtcp-mux),
// coreAvp (the core does no AVPF: the core terminations are RTP/AVP),
// coreSendsFeedback (the video core peer runs AVPF whatever the AGW was
// told), videoLoss (the video core peer leaves out packets: the first 5,
// then every 40th).
async function call(d, kinds, opts = {}) {
  const c = { cores: [], ctxs: [], secs: [], wic: null };
  c.close = async () => {
    if (c.wic) await c.wic.close();
    for (const core of c.cores) await core.stop();
  };
  try {
    c.wic = await newWic();
    const offer = await c.wic.call("offer", (k) => window.wic.offer(k), kinds);
    const o = parseOffer(offer);
    check(o.sections.length === kinds.length, `${o.sections.length} m-lines for ${kinds}`);
    for (const sec of o.sections) {
      check(sec.proto === "UDP/TLS/RTP/SAVPF", `m=${sec.kind} proto ${sec.proto}`);
      check(sec.rtcpMux, `m=${sec.kind} offers rtcp-mux`);
      check(sec.port > 0, `m=${sec.kind} has a UDP 127.0.0.1 candidate`);
      check(sec.kind === "audio" ? sec.opus > 0 : sec.vp8 > 0, `m=${sec.kind} offers its codec`);
    }
    // max-compat: each m-line on its own port.
    check(new Set(o.sections.map((s) => s.port)).size === o.sections.length, "one port per m-line");
    c.secs = o.sections;
    const posts = alg.requests(DCMFD, ["--side", "access", "--kind", "offer"], offer, "srtp-avpf");
    check(posts.length === kinds.length, `${posts.length} requests for ${kinds.length} m-lines`);
    for (const [k, post] of posts.entries()) {
      check(post.method === "POST" && post.body.terminations[1].transport === "RTP/AVPF",
        `dcmf-alg m-line ${k}: ${JSON.stringify(post)}`);
      // An ALG that knows its core does no AVPF offers it RTP/AVP (such
      // a core cannot answer AVPF, RFC 4585): dcmf-alg offers the AVPF
      // the WIC asked for, so the test sets the core transport here and
      // in the offer toward the core below.
      if (opts.coreAvp) post.body.terminations[1].transport = "RTP/AVP";
      c.ctxs.push(await send(d, post));
    }
    let coreOffer = alg.run(DCMFD, ["rewrite", "--side", "access", "--kind", "offer"], offer, { reply: c.ctxs });
    if (opts.coreAvp) coreOffer = coreOffer.replace(/^(m=\S+ \d+) RTP\/AVPF /gm, "$1 RTP/AVP ");
    alg.checkSdp(coreOffer, "offer toward the core", [],
      ["a=group", "a=fingerprint", "a=setup", "a=ice-", "a=candidate", "a=mid", "a=rtcp-rsize"]);
    // Each core peer is told the AGW's core ports from the offer toward
    // the core: its m= port and a=rtcp (with rtcp-mux, the RTP port).
    const offerSecs = coreOffer.split(/\r\n(?=m=)/).slice(1);
    check(offerSecs.length === o.sections.length, "one m-line toward the core per m-line");
    for (const [k, sec] of o.sections.entries()) {
      const video = sec.kind === "video";
      const core = await startCore({ media: sec.kind, pt: video ? sec.vp8 : sec.opus, mux: opts.mux,
        profile: !opts.coreAvp || (video && opts.coreSendsFeedback) ? "avpf" : "avp",
        dropFirst: video && opts.videoLoss ? 5 : 0, dropEvery: video && opts.videoLoss ? 40 : 0 });
      c.cores.push(core);
      const coreTerm = c.ctxs[k].terminations.find((t) => t.terminationId === "core");
      const ls = alg.lines(offerSecs[k]);
      const port = Number(ls[0].split(" ")[1]);
      const rtcp = ls.find((l) => l.startsWith("a=rtcp:"));
      check(port === coreTerm.local.port && rtcp === `a=rtcp:${coreTerm.localRtcpPort}`,
        `m=${sec.kind} toward the core: ${ls[0]} ${rtcp} (the AGW's core ports)`);
      core.agwRtp = port;
      core.agwRtcp = opts.mux ? port : Number(rtcp.slice("a=rtcp:".length));
      core.send({ rtp: core.agwRtp, rtcp: core.agwRtcp });
    }
    c.coreSdp = coreAnswer(coreOffer, o.sections, c.cores, opts.mux);
    const patches = alg.requests(DCMFD, ["--side", "core", "--kind", "answer"], c.coreSdp,
      opts.coreAvp ? "srtp-avp" : "srtp-avpf", { reply: c.ctxs });
    for (const [k, patch] of patches.entries()) {
      check(patch.method === "PATCH" && patch.uri === `${AGW}/${c.ctxs[k].contextId}`, `dcmf-alg: ${patch.uri}`);
      c.ctxs[k] = await send(d, patch);
      const coreTerm = c.ctxs[k].terminations.find((t) => t.terminationId === "core");
      check(coreTerm.rtcpMux === !!opts.mux && coreTerm.remote.port === c.cores[k].rtpPort,
        `core termination after the PATCH: ${JSON.stringify(coreTerm)}`);
    }
    c.answer = answerToWic(c.coreSdp, c.ctxs, offer);
    await c.wic.call("setRemoteDescription", (s) => window.wic.answer(s), c.answer);
    return c;
  } catch (e) {
    await c.close();
    throw e;
  }
}

async function get(d, id) {
  const r = await timeout(api(d.port, "GET", `${AGW}/${id}`), 5000, "GET");
  check(r.status === 200, `GET ${r.status}`);
  return r.body;
}

// Checks the RTP the core peer got from Chromium on its RTP socket: one
// SSRC (Chromium's), payload type |pt|, consecutive sequence numbers.
function checkRtpIntact(core, ssrc, pt, what) {
  const rtp = core.of("rtp");
  check(rtp.every((p) => p.sock === "rtp"), `${what}: RTP on the core RTCP socket`);
  const from = [...new Set(rtp.map((p) => p.from))];
  check(from.length === 1 && from[0] === core.agwRtp, `${what}: sent from ports ${from} (the AGW's core port ${core.agwRtp})`);
  const ssrcs = [...new Set(rtp.map((p) => p.ssrc))];
  check(ssrcs.length === 1 && ssrcs[0] === ssrc, `${what}: SSRCs ${ssrcs} (Chromium's ${ssrc})`);
  const pts = [...new Set(rtp.map((p) => p.pt))];
  check(pts.length === 1 && pts[0] === pt, `${what}: payload types ${pts} (negotiated ${pt})`);
  for (let i = 1; i < rtp.length; i++) {
    check(rtp[i].seq === ((rtp[i - 1].seq + 1) & 0xffff),
      `${what}: sequence ${rtp[i - 1].seq} then ${rtp[i].seq} (packet ${i} of ${rtp.length})`);
  }
  return rtp.length;
}

// ---- cases -------------------------------------------------------------------------

const tests = [];

// Audio both ways through one e2ae context, RTCP on a separate core port
// (or multiplexed with |mux|), RTT from the core's reports.
function audioCase(mux) {
  return async (d) => {
    const c = await call(d, ["audio"], { mux });
    try {
      const [core] = c.cores, [sec] = c.secs, [ctx] = c.ctxs;
      const why = async () => JSON.stringify(await c.wic.stats());
      await until(async () => (await c.wic.stats()).conn === "connected", 15000, "Chromium connected", why);
      // Access -> core: 5 s of Chromium's Opus (20 ms packets), decoded.
      await until(() => core.of("rtp").length >= 250, 15000, "250 RTP packets at the core",
        () => `${core.of("rtp").length} so far`);
      const st = await c.wic.stats();
      note(`transport ${JSON.stringify(st.transports)}`);
      const n = checkRtpIntact(core, st.out_audio.ssrc, sec.opus, "access -> core");
      const levels = core.of("level");
      check(levels.length >= 20, `${levels.length} level reports of decoded audio`);
      const peak = Math.max(...levels.map((l) => Math.max(...l.peak)));
      const loud = levels.filter((l) => Math.max(...l.rms) > -50).length;
      note(`${n} RTP at the core; decoded peak ${peak.toFixed(1)} dBFS, ${loud} of ${levels.length} 100 ms windows above -50 dBFS RMS`);
      check(peak > -30, `Chromium's tone decodes to a peak of ${peak} dBFS (silence)`);
      check(loud >= 2, `only ${loud} decoded windows above -50 dBFS RMS`);
      // Core -> access: GStreamer's Opus plays in Chromium, still growing.
      await until(async () => {
        const s = await c.wic.stats();
        return s.in_audio && s.in_audio.packetsReceived >= 100 && s.in_audio.totalAudioEnergy > 0.01;
      }, 15000, "GStreamer's audio in Chromium", why);
      const a1 = (await c.wic.stats()).in_audio;
      await until(async () => (await c.wic.stats()).in_audio.packetsReceived >= a1.packetsReceived + 25, 5000,
        "inbound packets growing", why);
      const a2 = (await c.wic.stats()).in_audio;
      note(`Chromium inbound ${JSON.stringify(a2)}`);
      check(a2.ssrc === CORE_SSRC, `inbound SSRC ${a2.ssrc}`);
      check(a2.audioLevel > 0.01, `audioLevel ${a2.audioLevel}`);
      check(a2.totalAudioEnergy > a1.totalAudioEnergy, "audio energy growing");
      // RTCP: Chromium's SRs at the core's RTCP port (or the one port
      // with mux); the core's reports give Chromium a round-trip time.
      await until(() => core.of("rtcp", (e) => e.types[0] === 200 && e.ssrc === st.out_audio.ssrc).length >= 1,
        15000, "Chromium's sender report at the core", () => JSON.stringify(core.of("rtcp").slice(0, 5)));
      const rtcp = core.of("rtcp");
      check(rtcp.every((e) => e.sock === (mux ? "rtp" : "rtcp")),
        `RTCP arrived on ${[...new Set(rtcp.map((e) => e.sock))]} (want the ${mux ? "RTP port, muxed" : "RTCP port"})`);
      check(rtcp.every((e) => e.from === core.agwRtcp),
        `RTCP sent from ${[...new Set(rtcp.map((e) => e.from))]} (the AGW's core ${mux ? "RTP" : "RTCP"} port ${core.agwRtcp})`);
      check(core.of("rtcp-out").length >= 1, "the core sent reports");
      await until(async () => {
        const s = await c.wic.stats();
        return s.rin_audio && s.rin_audio.roundTripTimeMeasurements >= 1;
      }, 15000, "a round-trip time in Chromium (remote-inbound-rtp)", why);
      const rin = (await c.wic.stats()).rin_audio;
      note(`remote-inbound-rtp ${JSON.stringify(rin)}`);
      check(rin.ssrc === st.out_audio.ssrc, `remote-inbound-rtp about SSRC ${rin.ssrc}`);
      check(rin.roundTripTime >= 0 && rin.roundTripTime < 1, `roundTripTime ${rin.roundTripTime} s`);
      // The AGW's view: both directions counted, no refusals.
      await until(async () => {
        const g = await get(d, ctx.contextId);
        const acc = g.terminations[0].rtpStatistics, k = g.terminations[1].rtpStatistics;
        return acc && k && k.packetsSent >= n && acc.packetsSent >= a2.packetsReceived;
      }, 3000, "rtpStatistics on GET", async () => JSON.stringify(await get(d, ctx.contextId)));
      const g = await get(d, ctx.contextId);
      const acc = g.terminations[0].rtpStatistics;
      note(`AGW access ${JSON.stringify(acc)}`);
      check(/^SRTP_/.test(acc.srtpProfile), `srtpProfile ${acc.srtpProfile}`);
      // Both ends name the same SRTP profile (DTLS-SRTP use_srtp).
      check(st.transports.length === 1 && st.transports[0].srtp === acc.srtpProfile,
        `Chromium's srtpCipher ${st.transports.map((t) => t.srtp)}, the AGW's ${acc.srtpProfile}`);
      check(acc.dropped.srtpAuth === 0 && acc.dropped.srtpReplay === 0, `SRTP refusals ${JSON.stringify(acc.dropped)}`);
      check(core.of("error").length === 0, `GStreamer: ${JSON.stringify(core.of("error"))}`);
    } finally { await c.close(); }
  };
}

// The RTCP packet types the core peer got, as a set.
const coreRtcpTypes = (core) => new Set(core.of("rtcp").flatMap((e) => e.types));

// Audio and video, one context each; VP8 from Chromium's fake camera
// reaches the video core intact at video rates. The video core leaves
// out packets so that Chromium sends NACK and PLI; with |avpf| they
// reach the core (which answers the PLI with a key frame Chromium then
// decodes) and the core's PLI reaches Chromium; toward an RTP/AVP core
// they are stripped both ways and counted.
function videoCase(avpf) {
  return async (d) => {
    const c = await call(d, ["audio", "video"], { coreAvp: !avpf, coreSendsFeedback: true, videoLoss: true });
    try {
      const [acore, vcore] = c.cores, [asec, vsec] = c.secs, [, vctx] = c.ctxs;
      check(asec.kind === "audio" && vsec.kind === "video", `m-lines ${asec.kind}, ${vsec.kind}`);
      check(c.ctxs[0].contextId !== vctx.contextId, "one context per m-line");
      const why = async () => JSON.stringify(await c.wic.stats());
      await until(async () => (await c.wic.stats()).conn === "connected", 15000, "Chromium connected", why);
      // 3 s of video after the first packet.
      await until(() => vcore.of("rtp").length > 0, 15000, "VP8 at the video core");
      const t0 = vcore.of("rtp")[0].t;
      await until(() => Date.now() - t0 >= 3000, 4000, "3 s of video");
      const st = await c.wic.stats();
      const n = checkRtpIntact(vcore, st.out_video.ssrc, vsec.vp8, "video access -> core");
      const inWindow = vcore.of("rtp", (e) => e.t - t0 <= 3000).length;
      const frames = vcore.of("frame", (e) => e.t - t0 <= 3000).length;
      note(`video: ${inWindow} RTP packets and ${frames} decoded frames at the core in 3 s; Chromium ${JSON.stringify(st.out_video)}`);
      check(inWindow >= 60, `${inWindow} VP8 packets in 3 s (want >= 20/s)`);
      check(frames >= 45, `${frames} frames decoded at the core in 3 s (want >= 15/s)`);
      // The audio m-line's context carries only audio.
      checkRtpIntact(acore, st.out_audio.ssrc, asec.opus, "audio access -> core");
      check(acore.of("rtp").length > 0, "audio at the audio core");
      // Chromium asks for what the core left out: NACK (RTPFB 205) and
      // PLI (PSFB 206).
      vcore.send({ cmd: "pli" });
      if (avpf) {
        await until(() => coreRtcpTypes(vcore).has(205) && coreRtcpTypes(vcore).has(206), 15000,
          "Chromium's NACK and PLI at the AVPF core", () => JSON.stringify([...coreRtcpTypes(vcore)]));
        // The core answered the PLI with a key frame: Chromium decodes.
        await until(async () => ((await c.wic.stats()).in_video || {}).framesDecoded > 0, 10000,
          "Chromium decoding the core's video after its PLI", why);
        // The core's PLI reached Chromium's sender.
        await until(async () => (await c.wic.stats()).out_video.pliCount >= 1, 10000,
          "the core's PLI counted by Chromium (outbound-rtp pliCount)",
          async () => `${await why()} core sent ${JSON.stringify(vcore.of("rtcp-out").map((e) => e.types))}`);
        const s = await c.wic.stats();
        note(`AVPF: Chromium in ${JSON.stringify(s.in_video)} out ${JSON.stringify(s.out_video)}`);
        check(s.in_video.nackCount >= 1 && s.in_video.pliCount >= 1, `Chromium sent NACK/PLI: ${JSON.stringify(s.in_video)}`);
      } else {
        // Chromium sends them, the core sends a PLI, the AGW strips both.
        await until(async () => {
          const s = await c.wic.stats();
          return s.in_video && s.in_video.nackCount >= 1 && s.in_video.pliCount >= 1;
        }, 15000, "Chromium sending NACK and PLI", why);
        await until(() => vcore.of("rtcp-out", (e) => e.types.includes(206)).length >= 1, 10000,
          "the core peer sending a PLI", () => JSON.stringify(vcore.of("rtcp-out").map((e) => e.types)));
        const pliAt = vcore.of("rtcp-out", (e) => e.types.includes(206))[0].t;
        const strippedNow = async () => {
          const g = await get(d, vctx.contextId);
          return (g.rtpCounters && g.rtpCounters.drops && g.rtpCounters.drops.feedbackStripped) || 0;
        };
        await until(async () => (await strippedNow()) >= 3, 5000, "feedbackStripped counted",
          async () => JSON.stringify((await get(d, vctx.contextId)).rtpCounters));
        // Later core reports reached Chromium (so the one with the PLI
        // had its chance), yet Chromium counted no PLI.
        const rtt0 = (await c.wic.stats()).rin_video;
        const m0 = rtt0 ? rtt0.roundTripTimeMeasurements : 0;
        await until(async () => {
          const r = (await c.wic.stats()).rin_video;
          return r && r.roundTripTimeMeasurements >= m0 + 2 && Date.now() - pliAt > 1000;
        }, 10000, "later core reports at Chromium", why);
        const s = await c.wic.stats();
        note(`AVP: Chromium in ${JSON.stringify(s.in_video)} out ${JSON.stringify(s.out_video)}; feedbackStripped ${await strippedNow()}`);
        check(!coreRtcpTypes(vcore).has(205) && !coreRtcpTypes(vcore).has(206),
          `feedback reached the RTP/AVP core: ${JSON.stringify([...coreRtcpTypes(vcore)])}`);
        check(coreRtcpTypes(vcore).has(201) || coreRtcpTypes(vcore).has(200), "Chromium's reports still reach the core");
        check(s.out_video.pliCount === 0, `Chromium counted ${s.out_video.pliCount} PLIs from an RTP/AVP core`);
        // Nor did Chromium's PLI reach the core's encoder: no key frame
        // came after the lost first one, so Chromium decoded nothing.
        check(s.in_video && s.in_video.framesDecoded === 0,
          `Chromium decoded ${s.in_video && s.in_video.framesDecoded} frames: a key frame came without a PLI`);
      }
      // The core's video reached Chromium as the core sent it.
      const s = await c.wic.stats();
      check(s.in_video && s.in_video.ssrc === CORE_SSRC && s.in_video.packetsReceived > 0,
        `Chromium's inbound video ${JSON.stringify(s.in_video)} (the core's SSRC ${CORE_SSRC})`);
      check(vcore.of("error").length === 0 && acore.of("error").length === 0,
        `GStreamer: ${JSON.stringify([...vcore.of("error"), ...acore.of("error")])}`);
    } finally { await c.close(); }
  };
}

// dcmfd's count of media datagrams refused for their source (not the
// ICE peer): dcmf_dropped_packets_total{reason="unauthenticated_source"}.
async function refusedSources(d) {
  const m = /dcmf_dropped_packets_total\{reason="unauthenticated_source"\} (\d+)/.exec(
    (await timeout(api(d.port, "GET", "/metrics"), 5000, "/metrics")).body);
  return m ? Number(m[1]) : NaN;
}

// An ICE restart from Chromium mid-call (RFC 8839 4.4.1.1.1; Chromium
// gathers a new host candidate, on a new port): the IMS-ALG PATCHes the
// new remote credentials and address, answers with the AGW's new local
// credentials, and media goes on both ways on the same DTLS association
// and SSRCs. Chromium sends from its new address once its plain check
// there is answered, before it nominates it, and packets on the old path
// may still arrive after the nomination; the AGW takes media from both
// for a short while (docs/e2ae.md, "ICE restart: no gap"), so the case
// requires that nothing is lost: no gap in what reaches the core, in
// order.
const iceRestartCase = { name: "audio: ICE restart mid-call, media goes on", async fn(d) {
  const c = await call(d, ["audio"]);
  try {
    const [core] = c.cores, [ctx] = c.ctxs;
    const why = async () => JSON.stringify(await c.wic.stats());
    await until(async () => (await c.wic.stats()).conn === "connected", 15000, "Chromium connected", why);
    await until(() => core.of("rtp").length >= 50, 10000, "50 RTP packets at the core");
    const before = await c.wic.stats();
    const refused0 = await refusedSources(d);
    const oldAcc = ctx.terminations[0];
    const restart = await c.wic.call("ICE restart offer", () => window.wic.restart());
    const sec = parseOffer(restart).sections[0];
    check(sec.ufrag !== c.secs[0].ufrag && sec.pwd !== c.secs[0].pwd, "Chromium's restart offer has new credentials");
    check(sec.fingerprint === c.secs[0].fingerprint, "same fingerprint (same DTLS association)");
    check(sec.port > 0, "a UDP 127.0.0.1 candidate in the restart offer");
    // The IMS-ALG: the re-offer of a line with a context is dcmf-alg's
    // PATCH (the new ICE credentials and candidate); the core's answer
    // (its next version) becomes the answer to Chromium.
    const [patch] = alg.requests(DCMFD, ["--side", "access", "--kind", "offer"], restart, "srtp-avpf",
      { reply: [ctx] });
    check(patch.method === "PATCH" && patch.uri === `${AGW}/${ctx.contextId}`, `dcmf-alg: ${JSON.stringify(patch)}`);
    const after0 = await send(d, patch);
    const acc = after0.terminations[0];
    check(acc.ice.localUfrag !== oldAcc.ice.localUfrag && acc.ice.localPwd !== oldAcc.ice.localPwd,
      "the AGW drew new local credentials");
    check(acc.dtls.localFingerprint === oldAcc.dtls.localFingerprint, "the same AGW fingerprint");
    check(acc.remote.port === sec.port, `the new candidate's port ${sec.port} in the PATCH: ${JSON.stringify(acc.remote)}`);
    const answer = answerToWic(c.coreSdp.replace("o=core 1 1 ", "o=core 1 2 "), [after0], restart);
    const tRestart = Date.now();
    await c.wic.call("setRemoteDescription", (x) => window.wic.answer(x), answer);
    // Chromium's transport now runs on the new credentials, connected.
    await until(async () => {
      const s = await c.wic.stats();
      return s.conn === "connected" && s.transports.length === 1 && s.transports[0].ufrag === sec.ufrag &&
        s.transports[0].ice === "connected";
    }, 15000, "Chromium connected on the new credentials", why);
    // 100 packets after the switch, both ways.
    const n0 = core.of("rtp").length;
    await until(() => core.of("rtp").length >= n0 + 100, 10000, "100 RTP packets at the core after the restart");
    await until(async () => (await c.wic.stats()).in_audio.packetsReceived >= before.in_audio.packetsReceived + 100, 10000,
      "the core's audio at Chromium after the restart", why);
    const after = await c.wic.stats();
    check(after.transports[0].dtls === "connected", `DTLS ${after.transports[0].dtls}`);
    check(after.out_audio.ssrc === before.out_audio.ssrc, "Chromium kept its SSRC");
    // Access -> core: one SSRC, from the AGW's port, in order, and no
    // gap: the packets in flight on the old path at the switch arrive.
    const rtp = core.of("rtp");
    check(new Set(rtp.map((p) => p.ssrc)).size === 1 && rtp.every((p) => p.from === core.agwRtp),
      "one SSRC, from the AGW's core port");
    const gaps = [];
    for (let i = 1; i < rtp.length; i++) {
      const step = (rtp[i].seq - rtp[i - 1].seq) & 0xffff;
      check(step >= 1 && step < 1000, `sequence ${rtp[i - 1].seq} then ${rtp[i].seq}: reordered or repeated`);
      if (step > 1) gaps.push({ at: rtp[i].t - tRestart, lost: step - 1 });
    }
    const refused = (await refusedSources(d)) - refused0;
    note(`ICE restart: ${JSON.stringify(before.transports[0].ufrag)} -> ${JSON.stringify(after.transports[0].ufrag)}, ` +
      `candidate ${c.secs[0].port} -> ${sec.port}; gaps at the core ${JSON.stringify(gaps)} (ms after the answer); ` +
      `${refused} datagrams refused by source meanwhile`);
    check(gaps.length === 0,
      `${gaps.length} gaps in what reached the core: ${JSON.stringify(gaps)}, ${refused} refused by source`);
  } finally { await c.close(); }
} };

tests.push({ name: "audio: Opus both ways, RTCP on a separate core port, RTT", fn: audioCase(false) });
tests.push({ name: "audio: core rtcp-mux, RTCP on the one core port, RTT", fn: audioCase(true) });
tests.push({ name: "video: VP8 intact at video rates, NACK and PLI pass to an RTP/AVPF core", fn: videoCase(true) });
tests.push({ name: "video: NACK and PLI stripped toward an RTP/AVP core", fn: videoCase(false) });
tests.push(iceRestartCase);

(async () => {
  let passed = 0, failed = 0;
  const t0 = Date.now();
  try {
    await browser.start();
    note(`Chromium ${browser.version} up in ${Date.now() - t0} ms`);
    for (const t of tests) {
      if (FILTER && !t.name.includes(FILTER)) continue;
      const t1 = Date.now();
      const d = await startDcmfd(DCMFD, "e2ae-chr");
      try {
        await timeout(t.fn(d), 90000, "test");
        const code = await d.stop();
        check(code === 0, `dcmfd exited with ${code}`);
        console.log(`ok - ${t.name} (${Date.now() - t1} ms)`);
        fs.rmSync(d.logf, { force: true });
        passed++;
      } catch (e) {
        await d.stop();
        console.log(`not ok - ${t.name}: ${e.message}`);
        console.log("# " + fs.readFileSync(d.logf, "utf8").split("\n").slice(-15).join("\n# "));
        failed++;
      }
    }
  } catch (e) {
    console.log(`not ok - Chromium: ${e.message}`);
    failed++;
  } finally {
    await browser.stop();
  }
  console.log(`${passed} passed, ${failed} failed (${Date.now() - t0} ms)`);
  process.exit(failed ? 1 : 0);
})();
