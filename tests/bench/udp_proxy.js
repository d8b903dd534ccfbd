// UDP-proxy benchmark on loopback: a werift phone sends messages on one
// application channel (stream 1000), dcmfd relays each as a datagram to a
// UDP echo server, and the echo comes back as a message. Keeps WINDOW
// messages in flight.
//
//   taskset -c 1 node tests/bench/udp_proxy.js [BUILD_DIR]
//
// dcmfd is pinned to core 0 and this script (phone and echo server) runs
// on core 1. Prints Markdown rows.
//
// werift (JavaScript) is the slower end, so messages/s is a floor for
// dcmfd. The dcmfd figure that does not depend on the phone is its CPU
// time per message relayed (user + system, from /proc, both directions;
// dcmfd's worker processes included).
//
// Environment: COUNT messages per phone, WINDOW in flight per phone,
// SIZES (comma-separated bytes), PHONES (each its own context, so that
// several media workers get work; one echo server for all), DCMFD_CPUS
// (taskset list for dcmfd, default 0; "0,1" leaves it unpinned on this
// machine), DCMFD_ARGS (more dcmfd options, e.g. "--workers 1"),
// DCMFD_LOG (append dcmfd's output to this file; default: dropped),
// ECHO_DELAY_MS (the echo server answers this late, like a remote DC
// application server; default 0).
//
// UDP packets per message: run under tests/integration/in-netns (a
// namespace of its own, so that /proc/net/snmp counts only this run's
// datagrams) and two more columns appear: datagrams the phone sent to
// dcmfd and datagrams dcmfd sent to the phone, per echoed message. The
// phone's are counted in this process (every dgram send but the echo
// server's); dcmfd's toward the phone are the namespace's OutDatagrams
// less this process's sends and dcmfd's datagrams to the echo server
// (which the echo server counts as it receives them).
"use strict";
const path = require("path");
const fs = require("fs");
const dgram = require("dgram");
const { spawn } = require("child_process");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
module.paths.unshift(path.join(__dirname, "..", "integration"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("ims_as");
const { plainUdp } = require("./plain_udp");
const { cpuTicks } = require("./proctree"); // dcmfd and its worker processes

const build = process.argv[2] || "build";
const PORT = Number(process.env.PORT || 18970);
const COUNT = Number(process.env.COUNT || 5000);
const WINDOW = Number(process.env.WINDOW || 8);
const PHONES = Number(process.env.PHONES || 1);
const SIZES = (process.env.SIZES || "100,1024,16384").split(",").map(Number);
const DCMFD_CPUS = process.env.DCMFD_CPUS || "0";
const DCMFD_ARGS = (process.env.DCMFD_ARGS || "").split(/\s+/).filter((a) => a);
const ECHO_DELAY_MS = Number(process.env.ECHO_DELAY_MS || 0);
const DCMFD_LOG = process.env.DCMFD_LOG ? fs.openSync(process.env.DCMFD_LOG, "a") : "ignore";
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

// In a network namespace of our own (tests/integration/in-netns makes one
// with loopback alone)? Then nothing else sends UDP in it.
function ownNetns() {
  try {
    const ifs = fs.readFileSync("/proc/net/dev", "utf8").split("\n").slice(2)
      .map((l) => l.split(":")[0].trim()).filter((n) => n);
    return ifs.join() === "lo";
  } catch (e) { return false; }
}
const COUNT_PACKETS = ownNetns();
function udpOut() {
  const lines = fs.readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp:"));
  const names = lines[0].split(/\s+/), values = lines[1].split(/\s+/);
  return Number(values[names.indexOf("OutDatagrams")]);
}
// Every datagram this process sends, the echo server's apart.
const sends = { all: 0, echo: 0 };
const origSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (...args) {
  sends.all++;
  if (this.isEcho) sends.echo++;
  return origSend.apply(this, args);
};

// One phone: its own context in UDP-proxy mode toward the echo server.
async function phone(echoPort) {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const ch = pc.createDataChannel("bench", { negotiated: true, id: 1000, protocol: "bench" });
  const ph = { pc, ch, got: 0, sent: 0, contextId: null };
  ch.onMessage.subscribe(() => { ph.got++; });
  const opened = new Promise((r) => ch.stateChanged.subscribe((s) => s === "open" && r()));
  await pc.setLocalDescription(await pc.createOffer());
  const sdp = pc.localDescription.sdp.split("\r\n")
    .filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
  const offer = parseOffer(sdp);
  const req = createRequest(offer, { streams: { 1000: { streamId: 1000, subprotocol: "bench", order: true } } });
  const dc = req.terminations[0].medias[0].dcMedia;
  dc.mediaProxyConfig = "UDP";
  dc.remoteMdc2Endpoint = { ip: { ipv4Addr: "127.0.0.1" }, transport: "UDP", portNumber: echoPort };
  const created = await api(PORT, "POST", "/nmf-mrm/v1/contexts", req);
  if (created.status !== 201) throw new Error(`create ${created.status}`);
  ph.contextId = created.body.contextId;
  await pc.setRemoteDescription({ type: "answer", sdp: answerSdp(created.body, offer) });
  await opened;
  return ph;
}

async function run(size) {
  const echo = dgram.createSocket("udp4");
  echo.isEcho = true;
  let echoIn = 0; // dcmfd's datagrams toward the echo server
  echo.on("message", (m, r) => {
    echoIn++;
    if (ECHO_DELAY_MS > 0) setTimeout(() => echo.send(m, r.port, r.address), ECHO_DELAY_MS);
    else echo.send(m, r.port, r.address);
  });
  await new Promise((r) => echo.bind(0, "127.0.0.1", r));
  const phones = [];
  for (let i = 0; i < PHONES; i++) phones.push(await phone(echo.address().port));
  const msg = Buffer.alloc(size, 0x61);
  const t0 = process.hrtime.bigint();
  const c0 = cpuTicks(global.dcmfdPid);
  const out0 = COUNT_PACKETS ? udpOut() : 0;
  const sends0 = { ...sends }, echoIn0 = echoIn;
  const got = () => phones.reduce((n, p) => n + p.got, 0);
  // Bounded by time, not spins: an SCTP retransmission after a loss on
  // loopback (a JavaScript peer can fall behind its socket) pauses for
  // a retransmission timeout, which is not a stall.
  const deadline = Date.now() + 60000;
  while (got() < COUNT * PHONES && Date.now() < deadline) {
    for (const p of phones) {
      while (p.sent < COUNT && p.sent - p.got < WINDOW) { p.ch.send(msg); p.sent++; }
    }
    await new Promise((r) => setImmediate(r));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const ticks = cpuTicks(global.dcmfdPid) - c0;
  const echoed = got();
  let pkts = "";
  if (COUNT_PACKETS) {
    const out = udpOut() - out0, mine = sends.all - sends0.all;
    const phoneOut = mine - (sends.echo - sends0.echo);
    const mfOut = out - mine - (echoIn - echoIn0);
    pkts = ` ${(phoneOut / echoed).toFixed(2)} | ${(mfOut / echoed).toFixed(2)} |`;
  }
  for (const p of phones) {
    p.pc.close();
    await api(PORT, "DELETE", `/nmf-mrm/v1/contexts/${p.contextId}`);
  }
  echo.close();
  const rate = echoed / secs;
  const usPerMsg = (ticks * 1e6 / 100) / (2 * echoed); // 100 ticks/s; two relays per echo
  const what = PHONES > 1 ? `${size} B, ${PHONES} phones` : `${size} B`;
  console.log(`| ${what} | ${echoed}/${COUNT * PHONES} | ${rate.toFixed(0)} | ${(rate * size * 2 / 1e6).toFixed(1)} | ${usPerMsg.toFixed(1)} |${pkts}`);
}

(async () => {
  // taskset: dcmfd on one core, the phone and echo server on the other
  const proc = spawn("taskset", ["-c", DCMFD_CPUS, path.join(build, "dcmf", "dcmfd"),
    "--control", `127.0.0.1:${PORT}`, "--ports", "47000-47100", "--log-level", "warn",
    ...DCMFD_ARGS], { stdio: ["ignore", DCMFD_LOG, DCMFD_LOG] });
  global.dcmfdPid = proc.pid;
  try {
    for (let i = 0; i < 100; i++) {
      try { if ((await api(PORT, "GET", "/healthz")).status === 200) break; } catch (e) { /* not yet */ }
      await wait(50);
    }
    const pktCols = COUNT_PACKETS ? " datagrams phone → dcmfd per message | dcmfd → phone |" : "";
    console.log(`| message | echoed | messages/s (round trips) | MB/s (both directions) | dcmfd CPU µs per relayed message |${pktCols}`);
    console.log(`|---|---|---|---|---|${COUNT_PACKETS ? "---|---|" : ""}`);
    for (const size of SIZES) await run(size);
    await plainUdp(1024, COUNT, WINDOW);
  } finally {
    proc.kill("SIGTERM");
  }
  process.exit(0);
})();
