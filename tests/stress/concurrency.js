// Concurrency: many phones and many bootstrap sessions at once against
// one dcmfd.
//
//   node concurrency.js DCMFD DCMF_UE
//
// 1. STRESS_PHONES phones (half werift, half node-datachannel; the last
//    one a headless Chromium tab when Chromium is installed) each pull a
//    STRESS_BODY-byte body at the same time through the HTTP proxy from a
//    plain Node http upstream, half with Content-Length, half chunked;
//    every body is checked by sha256.
// 2. STRESS_SESSIONS dcmf-ue bootstrap sessions run at once (dcmf-ue bench,
//    concurrency = count), then as many are held open together (dcmf-ue
//    idle) while dcmfd reports that many contexts, and released.
// 3. STRESS_MEM_SESSIONS dcmf-ue sessions are held at once by a fresh
//    dcmfd with two workers and released; its RSS (summed over the
//    process tree) must fall back to within 25 % of what it was before
//    the first session, within a bounded poll (--mem-trim-delay). Skipped
//    under the sanitizers: ASan's quarantine keeps freed memory.
// Short defaults (make test): 8 phones, 50 sessions, 200 held for the
// memory check; make stress: 20, 200, 500.
"use strict";
const { spawn } = require("child_process");
const L = require("./lib");

const [DCMFD, UE] = process.argv.slice(2);
const PHONES = L.knob("STRESS_PHONES", 8);
const SESSIONS = L.knob("STRESS_SESSIONS", 50);
const BODY = L.knob("STRESS_BODY", 2 << 20);
const MEM_SESSIONS = L.knob("STRESS_MEM_SESSIONS", 200);
const SLOW = L.SANITIZED ? 3 : 1;

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test(`${PHONES} phones (werift, node-datachannel, Chromium) pull ${BODY} B bodies at once, ` +
  "Content-Length and chunked, byte-exact", async () => {
  const up = await L.startUpstream(BODY);
  const phones = [];
  let browser = null;
  try {
    browser = await L.startChromium();
    if (!browser) L.note("no Chromium: werift and node-datachannel phones only");
    await L.withDcmfd(DCMFD, "conc", { ports: PHONES + 8 }, (d) => pullAll(d, up, phones, browser));
  } finally {
    await Promise.all(phones.map((p) => p.close()));
    if (browser) await browser.stop();
    await up.close();
  }
});

// Opens PHONES phones, each on its own context and upstream path, and
// has them all pull at once. |phones| collects them for the caller to close.
async function pullAll(d, up, phones, browser) {
  // phone i: the stack alternates; the framing alternates every two
  // phones, so each stack gets both framings. With Chromium, the last
  // phone is a Chromium tab (its test page reads Content-Length bodies).
  for (let i = 0; i < PHONES; i++) {
    const kind = browser && i === PHONES - 1 ? "chromium" : i % 2 ? "node-datachannel" : "werift";
    const framing = kind === "chromium" || (i >> 1) % 2 === 0 ? "cl" : "chunked";
    const url = up.url(`/${framing}/${BODY}/${i + 1}`);
    const ph = kind === "chromium" ? await L.chromiumPhone(browser, d, url, `ue-${i}`)
      : await L.makePhone(kind, d, url, `ue-${i}`);
    ph.framing = framing;
    ph.seed = i + 1;
    phones.push(ph);
  }
  await L.timeout(Promise.all(phones.map((p) => p.opened)), 20000 * SLOW, "all channels open");
  const t = Date.now();
  const results = await Promise.allSettled(phones.map((ph) => (ph.kind === "chromium"
    ? ph.fetch("/", 60000 * SLOW) : L.get(ph, "/", 60000 * SLOW))));
  const dt = (Date.now() - t) / 1000;
  const bad = [];
  results.forEach((r, i) => {
    const ph = phones[i];
    const what = `phone ${i} (${ph.kind}, ${ph.framing})`;
    if (r.status === "rejected") { bad.push(`${what}: ${r.reason.message}`); return; }
    const v = r.value;
    if (v.status !== 200) bad.push(`${what}: status ${v.status}`);
    else if (v.length !== BODY) bad.push(`${what}: ${v.length} bytes, want ${BODY}`);
    else if (v.sha !== up.sha(BODY, ph.seed)) bad.push(`${what}: sha256 differs`);
    else if (ph.framing === "chunked" && !/\r\ntransfer-encoding: chunked/i.test(v.head)) {
      bad.push(`${what}: the chunked upstream body did not arrive chunked`);
    }
  });
  const ok = results.length - bad.length;
  L.note(`${ok}/${PHONES} bodies of ${BODY} B byte-exact in ${dt.toFixed(2)} s ` +
    `(${((ok * BODY) / (1 << 20) / dt).toFixed(1)} MiB/s in total)`);
  L.check(!bad.length, bad.join("; "));
  await L.checkHealthy(d, "after the transfers");
}

test(`${SESSIONS} dcmf-ue bootstrap sessions at once (bench), then ${SESSIONS} held open together (idle)`,
  async () => {
    await L.withDcmfd(DCMFD, "sessions", { ports: SESSIONS + 16 }, async (d) => {
      const r = await L.runUe(UE, ["bench", "--api", d.apiUrl, "--count", String(SESSIONS),
        "--concurrency", String(SESSIONS)], 120000 * SLOW);
      L.note(`bench: ${r.out.trim().replace(/\n/g, "; ")}`);
      L.check(r.code === 0, `bench exit ${r.code ?? r.signal}: ${r.err.slice(-300)}`);
      L.check(r.out.includes(`fetches ${SESSIONS} ok ${SESSIONS} failed 0`),
        `bench did not report ${SESSIONS} ok: ${r.out}`);
      L.check((await d.healthz()).contexts === 0, "bench left contexts behind");

      await holdSessions(d, SESSIONS, async () => {
        // DC_OPEN events cross from the worker processes apart from
        // what the phones see: wait (bounded) for all of them.
        const opened = (cs) => cs.filter((c) => (c.events || []).some((e) => e.event === "DC_OPEN"));
        let ctxs = [];
        await L.until(async () => {
          ctxs = (await d.api("GET", L.CONTEXTS)).body;
          return opened(ctxs).length >= SESSIONS;
        }, 5000 * SLOW, 50);
        const open = opened(ctxs);
        L.note(`idle: ${SESSIONS} contexts held, ${open.length} with an open channel; ` +
          `dcmfd RSS ${d.rssKiB()} KiB, ${d.fds()} fds`);
        L.check(open.length === SESSIONS, `${open.length} of ${SESSIONS} channels opened`);
      });
      await L.checkHealthy(d, "after the sessions");
    });
  });

// Holds |n| dcmf-ue idle sessions on |d|, resolves once all are ready
// and dcmfd counts them, runs |whileHeld()|, then releases them.
async function holdSessions(d, n, whileHeld) {
  let idle = null;
  try {
    idle = L.track(spawn(UE, ["idle", "--api", d.apiUrl, "--count", String(n),
      "--seconds", "120"], { stdio: ["ignore", "pipe", "pipe"] }));
    let out = "", err = "";
    idle.stdout.on("data", (c) => (out += c));
    idle.stderr.on("data", (c) => (err += c));
    const ready = await L.until(() => /ready \d+/.test(out) || idle.exitCode !== null,
      60000 * SLOW, 50);
    L.check(ready && out.includes(`ready ${n}`), `idle: "${out.trim()}" ${err.slice(-300)}`);
    L.check((await d.healthz()).contexts === n, `dcmfd does not hold ${n} contexts`);
    await whileHeld();
    const s = await L.stopProc(idle, "SIGINT", 30000);
    L.check(s.code === 0, `idle exit ${s.code ?? s.signal}: ${err.slice(-300)}`);
    const left = await L.until(async () => (await d.healthz()).contexts === 0, 5000);
    L.check(left, "idle did not release its contexts");
  } finally {
    if (idle) await L.stopProc(idle, "SIGKILL");
  }
}

test(`memory back after ${MEM_SESSIONS} sessions end: dcmfd's RSS within 25 % of its idle RSS`,
  async () => {
    if (L.SANITIZED) {
      L.note("skipped under the sanitizers: ASan's quarantine keeps freed memory on purpose");
      return;
    }
    await L.withDcmfd(DCMFD, "memory", { ports: MEM_SESSIONS + 16, flags: ["--workers", "2"] },
      async (d) => {
        // The idle RSS: both workers started (the pid count) and done
        // with their start-up (two readings 300 ms apart agree).
        L.check(await L.until(() => d.pids().length === 3, 5000, 20), "two workers did not start");
        let idle = 0;
        L.check(await L.until(() => {
          const prev = idle;
          idle = d.rssKiB();
          return prev > 0 && Math.abs(idle - prev) <= prev * 0.01;
        }, 5000, 300), "dcmfd's RSS did not settle after start-up");
        let held = 0;
        await holdSessions(d, MEM_SESSIONS, async () => { held = d.rssKiB(); });
        // The trim runs once no release came for --mem-trim-delay (1 s)
        // in each process; poll, bounded, for RSS to fall back.
        const bound = Math.floor(idle * 1.25);
        let after = d.rssKiB();
        const back = await L.until(() => (after = d.rssKiB()) <= bound, 10000, 100);
        L.note(`RSS: idle ${idle} KiB, ${MEM_SESSIONS} sessions ${held} KiB ` +
          `(${Math.round((held - idle) / MEM_SESSIONS)} KiB each), after their end ${after} KiB ` +
          `(bound ${bound})`);
        // The check means something only if the sessions cost memory the
        // bound would not absorb.
        L.check(held - idle > idle * 0.25 * 2, `the sessions cost too little memory to ` +
          `tell (${held - idle} KiB over ${idle} KiB idle)`);
        L.check(back, `RSS ${after} KiB after the sessions ended, over 1.25 × the idle ` +
          `${idle} KiB`);
        await L.checkHealthy(d, "after the sessions");
      });
  });

L.run(tests, 300000 * SLOW);
