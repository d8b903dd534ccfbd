// What the Node integration suites that run one dcmfd per test share:
// waiting, bounded promises, checks, a dcmfd started on loopback with a
// log file, and the runner that prints "ok - name" / "not ok - name: why"
// and "N passed, M failed".
"use strict";
const path = require("path");
const net = require("net");
const fs = require("fs");
const os = require("os");
const { spawn } = require("child_process");
const { api } = require("./ims_as");

const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const timeout = (p, ms, what) =>
  Promise.race([p, wait(ms).then(() => { throw new Error(`timed out: ${what}`); })]);
function check(cond, msg) { if (!cond) throw new Error(msg); }

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// The first port of a media range of |count| ports for a dcmfd under
// test, drawn below the kernel's ephemeral range. Clients of the same
// test bind port 0 and get ephemeral ports: a media range inside that
// range lets a phone's own socket sit on a port that dcmfd frees between
// contexts, and then traffic meant for dcmfd (a flood aimed at the
// media range, a late retransmission) reaches the phone instead.
function mediaPortBase(count) {
  let ephemeralLo = 32768;
  try {
    ephemeralLo = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim().split(/\s+/)[0]) || ephemeralLo;
  } catch (e) { /* not Linux: the usual default */ }
  const lowest = 10000;
  const span = Math.max(1, ephemeralLo - lowest - count);
  return lowest + Math.floor(Math.random() * span);
}

// Starts |dcmfd| on a free control port with 31 media ports and the
// options |extra|; resolves once /healthz answers. |tag| names the log
// file.
async function startDcmfd(dcmfd, tag, extra = []) {
  const port = await freePort();
  const base = mediaPortBase(31);
  const logf = path.join(os.tmpdir(), `dcmfd-${tag}-${port}.log`);
  const log = fs.openSync(logf, "w");
  const proc = spawn(dcmfd, ["--control", `127.0.0.1:${port}`, "--ports", `${base}-${base + 30}`,
    "--log-level", "debug", ...extra], { stdio: ["ignore", log, log] });
  // dcmfd answers once its workers said hello; under a sanitizer on a
  // busy machine that takes seconds. A bounded wait that fails loudly.
  const readyBy = Date.now() + 20000;
  for (;;) {
    try { if ((await api(port, "GET", "/healthz")).status === 200) break; } catch (e) { /* not yet */ }
    if (Date.now() > readyBy || proc.exitCode !== null) {
      proc.kill("SIGKILL");
      throw new Error(`dcmfd (${tag}) did not answer /healthz within 20 s; log ${logf}`);
    }
    await wait(50);
  }
  return {
    port, proc, logf,
    async stop() {
      const exited = new Promise((r) => proc.on("exit", (c) => r(c)));
      proc.kill("SIGTERM");
      return Promise.race([exited, wait(5000).then(() => { proc.kill("SIGKILL"); return "timeout"; })]);
    },
  };
}

// Runs |tests| ({name, fn(d)}, and optionally |extra|: options for that
// test alone) one after the other, each against a fresh dcmfd (started
// with the options |extra|) that must exit 0 on SIGTERM afterwards; exits
// the process.
async function runTests(dcmfd, tag, tests, perTestMs, extra = []) {
  let passed = 0, failed = 0;
  for (const t of tests) {
    const d = await startDcmfd(dcmfd, tag, [...extra, ...(t.extra || [])]);
    try {
      await timeout(t.fn(d), perTestMs, "test");
      await wait(150); // workers publish metrics every 100 ms; let sessions settle
      const code = await d.stop();
      check(code === 0, `dcmfd exited with ${code}`);
      console.log(`ok - ${t.name}`);
      passed++;
    } catch (e) {
      await d.stop();
      console.log(`not ok - ${t.name}: ${e.message}`);
      console.log("# " + fs.readFileSync(d.logf, "utf8").split("\n").slice(-12).join("\n# "));
      failed++;
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

module.exports = { wait, timeout, check, mediaPortBase, startDcmfd, runTests };
