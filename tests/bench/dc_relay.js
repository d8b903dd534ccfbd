// DC relay benchmark on loopback: werift phone A sends messages on
// stream 1000; dcmfd relays them to phone B (anchored P2P, dcRelay), which
// echoes each back through dcmfd. Keeps WINDOW messages in flight.
//
//   taskset -c 1 node tests/bench/dc_relay.js [BUILD_DIR]
//
// dcmfd is pinned to core 0; both werift phones share core 1, so
// round trips/s is a floor for dcmfd. The dcmfd figure is its CPU time
// per relayed message (user + system from /proc; four DTLS/SCTP legs per
// round trip: in from A, out to B, in from B, out to A, counted as two
// relayed messages). Prints Markdown rows.
"use strict";
const path = require("path");
const { spawn } = require("child_process");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
module.paths.unshift(path.join(__dirname, "..", "integration"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("ims_as");
const { plainUdp } = require("./plain_udp");
const { cpuTicks } = require("./proctree"); // dcmfd and its worker processes

const build = process.argv[2] || "build";
const PORT = Number(process.env.PORT || 18971);
const COUNT = Number(process.env.COUNT || 5000);
const WINDOW = Number(process.env.WINDOW || 8);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

async function peer() {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const ch = pc.createDataChannel("bench", { negotiated: true, id: 1000, protocol: "bench" });
  const opened = new Promise((r) => ch.stateChanged.subscribe((s) => s === "open" && r()));
  await pc.setLocalDescription(await pc.createOffer());
  const sdp = pc.localDescription.sdp.split("\r\n")
    .filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
  return { pc, ch, opened, offer: parseOffer(sdp) };
}

async function run(size, pid) {
  const a = await peer(), b = await peer();
  const streams = { 1000: { streamId: 1000, subprotocol: "bench", order: true } };
  const req = createRequest(a.offer, { streams, terminationId: "ue-a" });
  req.terminations.push(createRequest(b.offer, { streams, terminationId: "ue-b" }).terminations[0]);
  for (const t of req.terminations) delete t.medias[0].dcMedia.mediaProxyConfig;
  req.terminations[0].medias[0].dcMedia.dcRelay = { terminationId: "ue-b", mediaId: "1" };
  const created = await api(PORT, "POST", "/nmf-mrm/v1/contexts", req);
  if (created.status !== 201) throw new Error(`create ${created.status}`);
  const one = (i) => ({ ...created.body, terminations: [created.body.terminations[i]] });
  await a.pc.setRemoteDescription({ type: "answer", sdp: answerSdp(one(0), a.offer) });
  await b.pc.setRemoteDescription({ type: "answer", sdp: answerSdp(one(1), b.offer) });
  await Promise.all([a.opened, b.opened]);
  b.ch.onMessage.subscribe((m) => b.ch.send(m)); // B echoes
  let got = 0;
  a.ch.onMessage.subscribe(() => { got++; });
  const msg = Buffer.alloc(size, 0x61);
  const t0 = process.hrtime.bigint();
  const c0 = cpuTicks(pid);
  let sent = 0;
  // Bounded by time, not spins: an SCTP retransmission after a loss on
  // loopback (a JavaScript peer can fall behind its socket) pauses for
  // a retransmission timeout, which is not a stall.
  const deadline = Date.now() + 60000;
  while (got < COUNT && Date.now() < deadline) {
    while (sent < COUNT && sent - got < WINDOW) { a.ch.send(msg); sent++; }
    await new Promise((r) => setImmediate(r));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const ticks = cpuTicks(pid) - c0;
  if (got < COUNT) {
    const m = String((await api(PORT, "GET", "/metrics")).body).split("\n")
      .filter((l) => /^dcmf_dc_(relay|messages)/.test(l)).join("; ");
    console.log(`# stalled at ${got} of ${COUNT} (sent ${sent}): ${m}`);
  }
  a.pc.close(); b.pc.close();
  await api(PORT, "DELETE", `/nmf-mrm/v1/contexts/${created.body.contextId}`);
  const rate = got / secs;
  const usPerMsg = (ticks * 1e6 / 100) / (2 * got);
  console.log(`| ${size} B | ${got}/${COUNT} | ${rate.toFixed(0)} | ${(rate * size * 2 / 1e6).toFixed(1)} | ${usPerMsg.toFixed(1)} |`);
}

(async () => {
  const proc = spawn("taskset", ["-c", "0", path.join(build, "dcmf", "dcmfd"),
    "--control", `127.0.0.1:${PORT}`, "--ports", "47200-47300", "--log-level", "warn"],
    { stdio: "ignore" });
  try {
    for (let i = 0; i < 100; i++) {
      try { if ((await api(PORT, "GET", "/healthz")).status === 200) break; } catch (e) { /* not yet */ }
      await wait(50);
    }
    console.log("| message | echoed | round trips/s | MB/s (both directions) | dcmfd CPU µs per relayed message |");
    console.log("|---|---|---|---|---|");
    const sizes = process.env.SIZES ? process.env.SIZES.split(",").map(Number) : [100, 1024, 16384];
    for (const size of sizes) await run(size, proc.pid);
    await plainUdp(1024, COUNT, WINDOW);
  } finally {
    proc.kill("SIGTERM");
  }
  process.exit(0);
})();
