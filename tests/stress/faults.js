// Faults: each one is injected into one session while another session
// (the bystander) pulls a body through the proxy at the same time.
//
//   node faults.js DCMFD DCMF_UE
//
// For every fault: dcmfd does not crash (it answers /healthz and a NEW
// phone fetches through the proxy afterwards), the bystander's body
// arrives byte-exact (sha256), and the fault shows as a log line or an
// event on GET. The faults share one dcmfd, which must then exit 0 on
// SIGTERM (under ASan with detect_leaks=1: no leak). SIGTERM under load
// runs on a dcmfd of its own.
//
//   vanish  a phone process is killed (-9) mid-transfer: no ABORT, no
//           close_notify; its media must report CONSENT_LOST (30 s later)
//   reset   the upstream destroys its socket after half the body
//   stall   the upstream stops after half the body and keeps the socket:
//           dcmfd must give up after --upstream-response-timeout
//   delete  the context is DELETEd while its body is being pulled
//   SIGTERM phones and dcmf-ue sessions in the middle of transfers
//   ue-vanish  dcmfd ends (SIGTERM or SIGKILL) 0-2000 ms after a dcmf-ue
//           bench's first context: the bench exits with an error within
//           5 s each time
"use strict";
const path = require("path");
const { spawn } = require("child_process");
const L = require("./lib");

const [DCMFD, UE] = process.argv.slice(2);
const BODY = L.knob("STRESS_FAULT_BODY", 2 << 20);
const SLOW = L.SANITIZED ? 3 : 1;
// --upstream-response-timeout of the shared dcmfd: also the longest
// silence dcmfd allows an upstream mid-body
const STALL_MS = 2000;

let d = null, up = null, seed = 100;
const stacks = ["werift", "node-datachannel"];
let turn = 0;

// Starts a bystander phone (the stacks take turns) pulling a slow body;
// returns {ph, done}, done resolving once the body is checked byte-exact.
// Its context is deleted by after(), or at the end if the case failed.
async function bystander(what) {
  const kind = stacks[turn++ % 2];
  const s = ++seed;
  // 32 KiB every 100 ms: 2 MiB take 6.4 s, outlasting the fault
  const ph = await L.makePhone(kind, d, up.url(`/slow/${BODY}/${s}?pace=100`), "ue-bystander");
  await L.timeout(ph.opened, 10000 * SLOW, `${what}: the bystander's channel to open`);
  const done = L.get(ph, "/", 60000 * SLOW).then((r) => {
    L.check(r.status === 200 && r.length === BODY && r.sha === up.sha(BODY, s),
      `${what}: the bystander (${kind}) got status ${r.status}, ${r.length} bytes, ` +
      `sha256 ${r.sha === up.sha(BODY, s) ? "ok" : "differs"}`);
    return r;
  }).finally(() => ph.close());
  done.catch(() => { /* awaited by the caller */ });
  return { ph, done };
}

// Everything checked after a fault: the bystander was still running when
// the fault hit, and completes; dcmfd is healthy; a new phone works.
async function after(what, by, bytesAtFault) {
  L.check(bytesAtFault < BODY, `${what}: the bystander had finished before the fault (test too slow to overlap)`);
  await by.done;
  await L.checkHealthy(d, what);
  await L.newPhoneWorks(d, up, what);
  await d.api("DELETE", `${L.CONTEXTS}/${by.ph.ctx.contextId}`);
}

// Waits until |ph| has received at least |n| body bytes.
async function midway(ph, n, what) {
  const ok = await L.until(() => ph.reader.bytes >= n, 20000 * SLOW);
  L.check(ok, `${what}: the transfer never reached ${n} bytes (${ph.reader.bytes})`);
}

async function events(ctxId) {
  const r = await d.api("GET", `${L.CONTEXTS}/${ctxId}`);
  return r.status === 200 ? (r.body.events || []) : null;
}

const logHas = (re) => re.test(d.log());
const tests = [];
let failedCases = 0;
const test = (name, fn) => tests.push({ name, fn: () => fn().catch((e) => { failedCases++; throw e; }) });

test("set-up: dcmfd and a Node upstream", async () => {
  up = await L.startUpstream(BODY);
  d = await L.startDcmfd(DCMFD, "faults", { ports: 32,
    flags: ["--upstream-response-timeout", String(STALL_MS)] });
});

let vanished = null; // {ctx, at}
test("a phone process killed mid-transfer (no ABORT): the bystander completes, a new phone works", async () => {
  const what = "vanish";
  const by = await bystander(what);
  const s = ++seed;
  const child = L.track(spawn(process.execPath, [path.join(__dirname, "phone.js"), String(d.port),
    up.url(`/slow/${BODY}/${s}`), "node-datachannel"], { stdio: ["ignore", "pipe", "inherit"] }));
  let out = "";
  child.stdout.on("data", (c) => (out += c));
  const mid = await L.until(() => {
    const m = out.match(/bytes (\d+)\n/g);
    return m && Number(m[m.length - 1].split(" ")[1]) >= BODY / 4;
  }, 20000 * SLOW);
  const ctx = (/context (\S+)/.exec(out) || [])[1];
  L.check(ctx, `the phone process made no context: ${out.slice(-300)}`);
  L.check(mid, `the phone process never got a quarter of the body: ${out.slice(-300)}`);
  const at = by.ph.reader.bytes;
  const k = await L.stopProc(child, "SIGKILL");
  L.check(k.signal === "SIGKILL", `the phone process ended with ${k.code ?? k.signal}`);
  vanished = { ctx, at: Date.now() };
  await after(what, by, at);
});

test("upstream resets mid-body: the phone's channel is closed, logged; the bystander completes", async () => {
  const what = "reset";
  const by = await bystander(what);
  const s = ++seed;
  const ph = await L.makePhone("node-datachannel", d, up.url(`/reset/${BODY}/${s}`), "ue-victim");
  try {
    await L.timeout(ph.opened, 10000 * SLOW, "victim channel open");
    const r = L.get(ph, "/", 30000 * SLOW, 10000 * SLOW);
    r.catch(() => { /* it must not complete */ });
    await L.until(() => up.events.some((e) => e.seed === s && e.what === "destroyed"), 20000 * SLOW);
    L.check(up.events.some((e) => e.seed === s && e.what === "destroyed"), "the upstream never reset");
    const at = by.ph.reader.bytes;
    const ctxId = ph.ctx.contextId;
    const closed = await L.until(async () => (await events(ctxId) || [])
      .some((e) => e.event === "DC_CLOSE" && e.detail.streamId === 0), 10000 * SLOW, 50);
    L.check(closed, "no DC_CLOSE event for stream 0 after the upstream reset mid-body");
    L.check(ph.reader.bytes < BODY, "the victim got the whole body from a reset upstream");
    L.check(logHas(new RegExp(`${ctxId} stream 0 request \\d+: closed by the upstream`)),
      "no log line naming the context and 'closed by the upstream'");
    await after(what, by, at);
    await d.api("DELETE", `${L.CONTEXTS}/${ctxId}`);
  } finally { ph.close(); }
});

test(`upstream stalls mid-body: dcmfd gives up after ${STALL_MS} ms of silence, closes the channel, logs; ` +
  "the bystander completes", async () => {
  const what = "stall";
  const by = await bystander(what);
  const s = ++seed;
  const ph = await L.makePhone("werift", d, up.url(`/stall/${BODY}/${s}`), "ue-victim");
  try {
    await L.timeout(ph.opened, 10000 * SLOW, "victim channel open");
    const r = L.get(ph, "/", 60000 * SLOW, 60000 * SLOW);
    r.catch(() => { /* it must not complete */ });
    const half = await L.until(() => up.events.some((e) => e.seed === s && e.what === "half"), 20000 * SLOW);
    L.check(half, "the upstream never reached half the body");
    const stalledAt = Date.now();
    const at = by.ph.reader.bytes;
    // the half that was sent reaches the phone, then nothing more
    const got = await L.until(() => ph.reader.bytes >= BODY >> 1, 10000 * SLOW);
    L.check(got, `the phone got ${ph.reader.bytes} of the ${BODY >> 1} bytes sent before the stall`);
    const ctxId = ph.ctx.contextId;
    const closed = await L.until(async () => (await events(ctxId) || [])
      .some((e) => e.event === "DC_CLOSE" && e.detail.streamId === 0), STALL_MS + 5000 * SLOW, 50);
    const took = (Date.now() - stalledAt) / 1000;
    L.check(closed, `no DC_CLOSE for stream 0 ${took.toFixed(1)} s after the upstream fell silent mid-body ` +
      `(--upstream-response-timeout ${STALL_MS})`);
    L.check(took >= STALL_MS / 1000 - 0.2, `the channel closed ${took.toFixed(2)} s after the stall, ` +
      `before the ${STALL_MS} ms limit`);
    L.note(`stall: channel closed ${took.toFixed(2)} s after the upstream fell silent (limit ${STALL_MS} ms)`);
    L.check(ph.reader.bytes === BODY >> 1, `bytes kept coming from a stalled upstream (${ph.reader.bytes})`);
    const freed = await L.until(() => up.events.some((e) => e.seed === s && e.what === "closed"), 5000 * SLOW);
    L.check(freed, "dcmfd kept the stalled upstream connection open");
    L.check(logHas(new RegExp(`${ctxId} stream 0 request \\d+: upstream silent mid-body`)),
      "no log line naming the context and 'upstream silent mid-body'");
    await after(what, by, at);
    await d.api("DELETE", `${L.CONTEXTS}/${ctxId}`);
  } finally { ph.close(); }
});

test("DELETE of the context during a transfer: the upstream request is dropped, logged; the bystander completes",
  async () => {
    const what = "delete";
    const by = await bystander(what);
    const s = ++seed;
    const ph = await L.makePhone("node-datachannel", d, up.url(`/slow/${BODY}/${s}`), "ue-victim");
    try {
      await L.timeout(ph.opened, 10000 * SLOW, "victim channel open");
      const r = L.get(ph, "/", 60000 * SLOW, 60000 * SLOW);
      r.catch(() => { /* it must not complete */ });
      await midway(ph, BODY / 4, what);
      const at = by.ph.reader.bytes;
      const ctxId = ph.ctx.contextId;
      const del = await d.api("DELETE", `${L.CONTEXTS}/${ctxId}`);
      L.check(del.status === 204, `DELETE answered ${del.status}`);
      const freed = await L.until(() => up.events.some((e) => e.seed === s && e.what === "closed"), 5000 * SLOW);
      L.check(freed, "the upstream transfer went on after the context was deleted");
      L.check(ph.reader.bytes < BODY, "the deleted context's transfer completed anyway");
      L.check(logHas(new RegExp(`context ${ctxId} deleted`)), "no log line for the deletion");
      L.check((await d.api("GET", `${L.CONTEXTS}/${ctxId}`)).status === 404, "the deleted context is still there");
      await after(what, by, at);
    } finally { ph.close(); }
  });

test("the killed phone's media reports CONSENT_LOST (event on GET and log) within 40 s", async () => {
  L.check(vanished, "the vanish case did not run");
  const ok = await L.until(async () => (await events(vanished.ctx) || [])
    .some((e) => e.event === "CONSENT_LOST"), Math.max(0, vanished.at + 40000 - Date.now()), 250);
  L.check(ok, `no CONSENT_LOST for ${vanished.ctx} ${((Date.now() - vanished.at) / 1000).toFixed(0)} s after the kill`);
  L.check(logHas(new RegExp(`${vanished.ctx}/\\S+: consent lost`)), "no 'consent lost' log line");
  L.note(`CONSENT_LOST ${((Date.now() - vanished.at) / 1000).toFixed(1)} s after the kill`);
  await L.checkHealthy(d, "after consent loss");
  await d.api("DELETE", `${L.CONTEXTS}/${vanished.ctx}`);
});

test("after all faults: no context left, dcmfd exits 0 on SIGTERM", async () => {
  let left = (await d.api("GET", L.CONTEXTS)).body;
  if (failedCases) {
    // a case that failed half-way left its own contexts: not dcmfd's doing
    for (const c of left) await d.api("DELETE", `${L.CONTEXTS}/${c.contextId}`);
    L.note(`${left.length} contexts of failed cases deleted`);
    left = [];
  }
  const dd = d;
  d = null;
  const s = await dd.stop(5000);
  L.check(!s.killed && s.code === 0, `dcmfd ${s.killed ? "did not exit in 5 s" : `exited with ${s.code ?? s.signal}`}` +
    `; log:\n# ${dd.tail()}`);
  L.check(Array.isArray(left) && left.length === 0, `${left.length} contexts left: ${left.map((c) => c.contextId)}`);
  await up.close();
  up = null;
});

test("SIGTERM under load (phones and dcmf-ue sessions mid-transfer): exit 0 within 5 s, logged", async () => {
  up = up || await L.startUpstream(BODY);
  const dd = await L.startDcmfd(DCMFD, "sigterm", { ports: 32 });
  const phones = [];
  let bench = null;
  try {
    for (let i = 0; i < 4; i++) {
      const ph = await L.makePhone(stacks[i % 2], dd, up.url(`/slow/${BODY}/${++seed}`), `ue-${i}`);
      phones.push(ph);
    }
    await L.timeout(Promise.all(phones.map((p) => p.opened)), 10000 * SLOW, "channels open");
    phones.forEach((p) => L.get(p, "/", 60000, 60000).catch(() => { /* cut by the shutdown */ }));
    bench = L.runUe(UE, ["bench", "--api", dd.apiUrl, "--count", "400", "--concurrency", "10",
      "--repeat", "50"], 30000 * SLOW);
    for (const p of phones) await midway(p, BODY / 4, "SIGTERM");
    // The bench has contexts of its own (under ASan its start-up alone
    // can outlast the phones' quarter body).
    const benchBusy = await L.until(async () => ((await dd.healthz()) || {}).contexts > phones.length,
      20000 * SLOW, 20);
    L.check(benchBusy, "dcmf-ue bench never had a context before the SIGTERM");
    const inFlight = (await dd.healthz()).contexts;
    const s = await dd.stop(5000);
    L.note(`SIGTERM with ${inFlight} contexts: dcmfd exited with ${s.code ?? s.signal} after ${s.ms} ms`);
    L.check(!s.killed, `dcmfd did not exit within 5 s of SIGTERM; log:\n# ${dd.tail()}`);
    L.check(s.code === 0, `dcmfd exited with ${s.code ?? s.signal}; log:\n# ${dd.tail()}`);
    const log = dd.log();
    L.check(/signal 15: shutting down/.test(log), "no shutdown log line");
    const m = /stopped; (\d+) contexts released/.exec(log);
    L.check(m && Number(m[1]) >= 4, `no 'stopped; N contexts released' line with N >= 4`);
    // dcmf-ue must give up on its own, with an error: its control API
    // connection closed and its phones' MF is gone (its waits are bounded).
    const gone = await L.until(() => bench.proc.exitCode !== null || bench.proc.signalCode !== null,
      10000 * SLOW, 50);
    L.check(gone, `dcmf-ue bench was still running ${10 * SLOW} s after dcmfd exited`);
    if (!gone) await L.stopProc(bench.proc, "SIGKILL");
    const b = await bench;
    L.note(`dcmf-ue bench during the shutdown: exit ${b.code ?? b.signal}: ${b.out.trim().replace(/\n/g, "; ")}` +
      `; stderr: ${b.err.trim().split("\n").slice(-3).join("; ")}`);
    L.check(!gone || (b.code !== 0 && b.code !== null),
      `dcmf-ue bench exited ${b.code ?? b.signal}, not an error, when dcmfd went away under it`);
  } finally {
    phones.forEach((p) => p.close());
    await dd.stop(1000);
    if (bench) { await L.stopProc(bench.proc, "SIGKILL"); await bench; }
    await up.close();
  }
});

// dcmfd ends (SIGTERM, or SIGKILL: no goodbye at all) at many moments of a
// dcmf-ue bench's set-up and transfers: the bench's phones are then in
// ICE, DTLS, SCTP, the channel open or a request, and its control API
// connection idle or busy. Whatever it was waiting for, it must give up
// within a few seconds with an error status: its API connection closed
// and its MF's ports answer ICMP port unreachable.
const VANISH_BOUND_MS = L.knob("STRESS_UE_VANISH_BOUND_MS", 5000);
const VANISH_STEP_MS = L.knob("STRESS_UE_VANISH_STEP_MS", 100);
const VANISH_LAST_MS = L.knob("STRESS_UE_VANISH_LAST_MS", 2000);
test(`dcmfd ends at ${VANISH_STEP_MS}-ms steps 0-${VANISH_LAST_MS} ms into a dcmf-ue bench: ` +
  `the bench exits with an error within ${VANISH_BOUND_MS / 1000} s each time`, async () => {
  const slow = [];
  let runs = 0, worst = 0;
  for (let at = 0; at <= VANISH_LAST_MS; at += VANISH_STEP_MS) {
    const sig = (at / VANISH_STEP_MS) % 2 ? "SIGKILL" : "SIGTERM";
    const dd = await L.startDcmfd(DCMFD, "ue-vanish", { ports: 32 });
    const bench = L.runUe(UE, ["bench", "--api", dd.apiUrl, "--count", "400", "--concurrency", "10",
      "--repeat", "50"], 60000 * SLOW);
    try {
      // |at| counts from the bench's first context (its process start-up,
      // long under ASan, is not what is tested)
      const started = await L.until(async () => bench.proc.exitCode !== null ||
        ((await dd.healthz()) || {}).contexts > 0, 20000 * SLOW, 5);
      L.check(started && bench.proc.exitCode === null,
        `${sig} at ${at} ms: the bench never made a context (${bench.proc.exitCode})`);
      await L.until(() => bench.proc.exitCode !== null, at, 10);
      const s = await L.stopProc(dd.proc, sig, 5000);
      const t0 = Date.now();
      const gone = await L.until(() => bench.proc.exitCode !== null || bench.proc.signalCode !== null,
        VANISH_BOUND_MS, 20);
      const took = Date.now() - t0;
      worst = Math.max(worst, took);
      runs++;
      if (!gone) await L.stopProc(bench.proc, "SIGKILL");
      const b = await bench;
      const err = b.err.trim().split("\n").slice(-2).join(" | ");
      if (!gone) {
        slow.push(`${sig} at ${at} ms: still running ${VANISH_BOUND_MS} ms later (${err})`);
      } else if (b.code === 0 || b.code === null) {
        slow.push(`${sig} at ${at} ms: exited ${b.code ?? b.signal} after ${took} ms (${err})`);
      }
      L.check(s.code !== null || s.signal, `dcmfd did not stop`);
    } finally {
      await L.stopProc(dd.proc, "SIGKILL", 1000);
      await L.stopProc(bench.proc, "SIGKILL", 1000);
      await bench;
    }
  }
  L.note(`dcmf-ue bench under a vanishing dcmfd: ${runs} runs, slowest exit ${worst} ms after dcmfd ended`);
  L.check(slow.length === 0, `${slow.length} of ${runs} runs:\n# ${slow.join("\n# ")}`);
});

// A failed set-up or fault leaves d running: stop it (the runner then exits).
process.on("exit", () => { if (d && d.alive()) process.kill(d.proc.pid, "SIGKILL"); });
L.run(tests, 120000 * SLOW);
