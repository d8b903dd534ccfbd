// Churn soak: sessions are created, used and deleted at a steady rate
// for STRESS_SOAK_SECONDS (120 in make test, 3600 in make stress), and
// dcmfd's memory (VmRSS) and open file descriptors must stay flat.
//
//   node soak.js DCMFD DCMF_UE
//
// Every tick (STRESS_SOAK_TICK_MS, 1000):
//   - dcmf-ue bench runs STRESS_SOAK_BATCH (4) phones at once: each creates
//     its context through the API, fetches a bootstrap page and deletes
//     the context; every other tick they use HTTP-proxy mode toward a Node
//     upstream, otherwise the built-in repository;
//   - a node-datachannel phone gets a context created here through the
//     API, pulls 64 KiB through the proxy (sha256 checked), closes, and
//     the context is deleted here.
// At the start of each tick, when the previous tick's sessions are gone
// (/healthz says 0 contexts), dcmfd's VmRSS and fd count (the fewest of
// ten readings over half a second, pooled upstream connections apart:
// those are held to the pool's bound of 8 instead) are sampled.
// After the warm-up (STRESS_SOAK_WARMUP seconds, default a quarter of the
// run, at most 300) every sample must lie within 5 % of the mean of the
// first five samples after it; no session may fail. Under the sanitizers
// the RSS bound is not checked (ASan's quarantine keeps freed memory).
"use strict";
const fs = require("fs");
const L = require("./lib");

const [DCMFD, UE] = process.argv.slice(2);
const SECONDS = L.knob("STRESS_SOAK_SECONDS", 120);
const TICK_MS = L.knob("STRESS_SOAK_TICK_MS", 1000);
const BATCH = L.knob("STRESS_SOAK_BATCH", 4);
const WARMUP = L.knob("STRESS_SOAK_WARMUP", Math.min(300, SECONDS / 4));
const SMALL = 65536;

// Checks that every sample after the first five lies within 5 % of their
// mean; returns a one-line summary or throws.
function flat(what, samples) {
  L.check(samples.length >= 10, `${what}: only ${samples.length} samples after the warm-up`);
  const base = samples.slice(0, 5).reduce((a, b) => a + b, 0) / 5;
  const lo = Math.min(...samples), hi = Math.max(...samples);
  const dev = Math.max(hi - base, base - lo) / base;
  const line = `${what}: baseline ${base.toFixed(0)}, min ${lo}, max ${hi} ` +
    `(${(dev * 100).toFixed(1)} % off), last ${samples[samples.length - 1]}`;
  L.check(dev <= 0.05, `${line}: not flat within 5 %`);
  return line;
}

// dcmfd's TCP connections to the upstream (port |upPort|), from the fds
// of dcmfd and its worker processes and the namespace's /proc/net/tcp:
// the count per process (each media worker has its own pool, bounded
// on its own), in d.pids() order.
function upstreamConnsPerPid(d, upPort) {
  const hex = upPort.toString(16).toUpperCase().padStart(4, "0");
  const tcp = fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 9 && f[2].endsWith(`:${hex}`));
  const counts = [];
  for (const pid of d.pids()) { // the upstream pools live in the workers
    const inodes = new Set();
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch (e) { counts.push(0); continue; } // ended
    for (const f of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${f}`));
        if (m) inodes.add(m[1]);
      } catch (e) { /* closed meanwhile */ }
    }
    counts.push(tcp.filter((f) => inodes.has(f[9])).length);
  }
  return counts;
}

const upstreamConns = (d, upPort) => upstreamConnsPerPid(d, upPort).reduce((a, b) => a + b, 0);

// Open fds but for the pooled upstream connections: the pool keeps up to
// --upstream-max-connections (8) of them, more or fewer from one moment
// to the next; they are bounded on their own.
const ownFds = (d, upPort) => d.fds() - upstreamConns(d, upPort);

async function ndcSession(d, up, seed) {
  const ph = await L.ndcPhone(d, up.url(`/cl/${SMALL}/${seed}`), "ue-soak");
  try {
    await L.timeout(ph.opened, 10000, "node-datachannel channel open");
    const r = await L.get(ph, "/", 20000, 5000);
    L.check(r.status === 200 && r.sha === up.sha(SMALL, seed),
      `node-datachannel phone ${seed}: status ${r.status}, ${r.length} bytes, sha256 ${
        r.sha === up.sha(SMALL, seed) ? "ok" : "differs"}`);
  } finally {
    ph.close();
    const del = await L.timeout(d.api("DELETE", `${L.CONTEXTS}/${ph.ctx.contextId}`), 5000, "DELETE");
    L.check(del.status === 204, `DELETE answered ${del.status}`);
  }
}

async function benchBatch(d, up, proxied) {
  const args = ["bench", "--api", d.apiUrl, "--count", String(BATCH), "--concurrency", String(BATCH)];
  if (proxied) args.push("--replace-url", up.url("/page/soak"));
  const r = await L.runUe(UE, args, 30000);
  L.check(r.code === 0 && r.out.includes(`ok ${BATCH} failed 0`),
    `dcmf-ue bench (${proxied ? "proxy" : "repository"}) exit ${r.code ?? r.signal}: ` +
    `${r.out.trim()} ${r.err.trim().slice(-200)}`);
}

const tests = [{
  name: `churn soak ${SECONDS} s: ${BATCH} dcmf-ue + 1 node-datachannel session per ` +
    `${TICK_MS} ms; RSS and fds flat after ${WARMUP} s`,
  fn: () => L.withDcmfd(DCMFD, "soak", { ports: 64 }, async (d) => {
    const up = await L.startUpstream(SMALL);
    const rss = [], fds = [], failures = [];
    let sessions = 0, late = 0, tick = 0, maxPooled = 0;
    const t0 = Date.now();
    try {
      for (; Date.now() - t0 < SECONDS * 1000; tick++) {
        // Pacing, not synchronisation: the next tick starts on schedule.
        const due = t0 + tick * TICK_MS;
        if (Date.now() < due) await L.wait(due - Date.now());
        else if (tick) late++;
        const idle = await L.until(async () => (await d.healthz() || {}).contexts === 0, 5000);
        await L.checkHealthy(d, `tick ${tick}`);
        if (!idle) failures.push(`tick ${tick}: contexts left over from the previous tick`);
        if ((Date.now() - t0) / 1000 >= WARMUP) {
          // the fewest of ten readings 50 ms apart: a control connection
          // (ours, dcmf-ue's) or a socket the worker is still closing is
          // not state, while a leak raises the floor too
          let few = ownFds(d, up.port);
          for (let i = 0; i < 9; i++) { await L.wait(50); few = Math.min(few, ownFds(d, up.port)); }
          rss.push(d.rssKiB());
          fds.push(few);
          // each worker's pool is bounded by --upstream-max-connections (8)
          const pooled = Math.max(...upstreamConnsPerPid(d, up.port));
          maxPooled = Math.max(maxPooled, pooled);
          if (pooled > 8) failures.push(`tick ${tick}: ${pooled} upstream connections in one process (the pool's bound is 8)`);
        }
        const res = await Promise.allSettled([benchBatch(d, up, tick % 2 === 1),
          ndcSession(d, up, tick + 1)]);
        sessions += BATCH + 1;
        for (const r of res) {
          if (r.status !== "rejected") continue;
          // what dcmfd said about trouble lately, to tell whose fault it was
          const said = d.log().split("\n").slice(-400)
            .filter((l) => /\b(warn|error)\b|: (closed by|connection|no response|cancelled)|-> 5\d\d/.test(l) &&
              !/: complete$/.test(l)).slice(-4);
          failures.push(`tick ${tick}: ${r.reason.message}` + (said.length ? `\n# dcmfd: ${said.join("\n# dcmfd: ")}` : ""));
        }
        if (failures.length > 5) break;
      }
      const m = await d.metrics();
      L.note(`${tick} ticks, ${sessions} sessions in ${((Date.now() - t0) / 1000).toFixed(0)} s, ` +
        `${late} ticks late; ${failures.length} failures; ` +
        `dtls ok ${L.metricSum(m, "dcmf_dtls_handshakes_total", /result="ok"/)}`);
      L.note(`upstream connections kept in one worker's pool at sampling time: at most ${maxPooled}`);
      // every verdict is printed, then the first failed one is raised
      const problems = failures.length ? [failures.slice(0, 5).join("; ")] : [];
      const verdict = (fn) => { try { L.note(fn()); } catch (e) { L.note(e.message); problems.push(e.message); } };
      verdict(() => flat("open fds (without pooled upstream connections)", fds));
      if (L.SANITIZED) {
        L.note(`RSS (KiB) not bounded under the sanitizers: ${rss[0]} -> ${rss[rss.length - 1]}`);
      } else {
        verdict(() => flat("VmRSS KiB", rss));
      }
      L.check(!problems.length, problems.join("; "));
    } finally {
      await up.close();
    }
  }),
}];

L.run(tests, (SECONDS + 120) * 1000 * (L.SANITIZED ? 2 : 1));
