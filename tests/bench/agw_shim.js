// AGW shim benchmark on loopback: a UDP client (the "phone") sends to the
// shim's access port, the shim relays to a UDP echo server (the "core"),
// and the echo comes back through the shim. WINDOW datagrams in flight.
//
//   taskset -c 1 node tests/bench/agw_shim.js [BUILD_DIR]
//
// dcmfd is pinned to core 0; the client and echo server run here on core
// 1. Each round trip is two datagrams through the shim. The plain row is
// the same echo without the shim. Prints Markdown rows.
"use strict";
const path = require("path");
const dgram = require("dgram");
const { spawn } = require("child_process");
module.paths.unshift(path.join(__dirname, "..", "integration"));
const { api } = require("ims_as");
const { plainUdp } = require("./plain_udp");
const { cpuTicks } = require("./proctree"); // dcmfd and its worker processes

const build = process.argv[2] || "build";
const PORT = Number(process.env.PORT || 18972);
const COUNT = Number(process.env.COUNT || 50000);
const WINDOW = Number(process.env.WINDOW || 8);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

async function run(size, pid) {
  const echo = dgram.createSocket("udp4");
  echo.on("message", (m, r) => echo.send(m, r.port, r.address));
  await new Promise((r) => echo.bind(0, "127.0.0.1", r));
  const created = await api(PORT, "POST", "/agw/v1/contexts", { terminations: [
    { terminationId: "access", latching: "first-packet" },
    { terminationId: "core", remote: { ipv4Addr: "127.0.0.1", port: echo.address().port } }] });
  if (created.status !== 201) throw new Error(`create ${created.status} ${JSON.stringify(created.body)}`);
  const access = created.body.terminations.find((t) => t.terminationId === "access").local.port;
  const client = dgram.createSocket("udp4");
  let got = 0;
  client.on("message", () => { got++; });
  await new Promise((r) => client.bind(0, "127.0.0.1", r));
  const msg = Buffer.alloc(size, 0x61);
  const t0 = process.hrtime.bigint();
  const c0 = cpuTicks(pid);
  let sent = 0;
  const deadline = Date.now() + 60000;
  while (got < COUNT && Date.now() < deadline) {
    while (sent < COUNT && sent - got < WINDOW) { client.send(msg, access, "127.0.0.1"); sent++; }
    await new Promise((r) => setImmediate(r));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const ticks = cpuTicks(pid) - c0;
  client.close(); echo.close();
  await api(PORT, "DELETE", `/agw/v1/contexts/${created.body.contextId}`);
  const rate = got / secs;
  const usPerPkt = (ticks * 1e6 / 100) / (2 * got);
  console.log(`| ${size} B through the shim | ${got}/${COUNT} | ${rate.toFixed(0)} | ${(rate * size * 2 / 1e6).toFixed(1)} | ${usPerPkt.toFixed(1)} |`);
}

(async () => {
  const proc = spawn("taskset", ["-c", "0", path.join(build, "dcmf", "dcmfd"),
    "--control", `127.0.0.1:${PORT}`, "--ports", "47400-47500", "--log-level", "warn"],
    { stdio: "ignore" });
  try {
    for (let i = 0; i < 100; i++) {
      try { if ((await api(PORT, "GET", "/healthz")).status === 200) break; } catch (e) { /* not yet */ }
      await wait(50);
    }
    console.log("| datagram | echoed | round trips/s | MB/s (both directions) | dcmfd CPU µs per relayed datagram |");
    console.log("|---|---|---|---|---|");
    for (const size of [200, 1024]) await run(size, proc.pid);
    await plainUdp(1024, COUNT, WINDOW);
  } finally {
    proc.kill("SIGTERM");
  }
  process.exit(0);
})();
