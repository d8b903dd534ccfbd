// What the reliability suite (tests/stress/*.js) shares: one temporary
// directory per run (removed at exit), dcmfd with its log there and
// /proc sampling, a plain Node HTTP upstream whose bodies are known byte
// for byte, werift and node-datachannel phones in HTTP-proxy mode that
// hash what they receive as it arrives, dcmf-ue runs, and knobs read
// from the environment (the short values are the `make test` ones; `make
// stress` passes the long ones).
//
// Waits are bounded; processes are stopped by pid. Builds on the
// integration helpers (harness.js, ims_as.js).
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const net = require("net");
const http = require("http");
const crypto = require("crypto");
const { spawn } = require("child_process");
const INTEG = path.join(__dirname, "..", "integration");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const { wait, timeout, check, mediaPortBase } = require(path.join(INTEG, "harness"));
const { parseOffer, createRequest, answerSdp, api } = require(path.join(INTEG, "ims_as"));
const { treePids } = require(path.join(__dirname, "..", "bench", "proctree"));

const CONTEXTS = "/nmf-mrm/v1/contexts";
const SANITIZED = (process.env.DCMF_SANITIZE || "none") !== "none";

// ---- knobs and output -------------------------------------------------------

function knob(name, def) {
  const v = process.env[name];
  if (v === undefined || v === "") return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: want a number`);
  return n;
}

const T0 = Date.now();
const note = (msg) => console.log(`# ${msg}`);
const secs = () => ((Date.now() - T0) / 1000).toFixed(1);

// ---- the temporary directory and the processes this run started ------------

// Made on first use: a phone process (phone.js) needs none, and is killed
// without a chance to remove one.
let tmpDir = null;
function tmp() {
  if (!tmpDir) tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "dcmf-stress-"));
  return tmpDir;
}
const STARTED = new Set();
process.on("exit", () => {
  for (const p of STARTED) {
    if (p.exitCode === null && p.signalCode === null) {
      try { process.kill(p.pid, "SIGKILL"); } catch (e) { /* gone */ }
    }
  }
  if (tmpDir && !process.env.DCMF_KEEP_TMP) fs.rmSync(tmpDir, { recursive: true, force: true });
});

// Stopped from outside (meson's timeout, ^C): the exit handler above
// still stops what this run started and removes the directory.
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) {
  process.on(sig, () => process.exit(128 + os.constants.signals[sig]));
}

function track(p) {
  STARTED.add(p);
  p.on("exit", () => STARTED.delete(p));
  return p;
}

// Resolves {code, signal} once |p| has exited (at once if it has).
function exited(p) {
  if (p.exitCode !== null || p.signalCode !== null) {
    return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  }
  return new Promise((r) => p.once("exit", (code, signal) => r({ code, signal })));
}

// Sends |sig| to |p| by pid; SIGKILL after |ms|. Resolves {code, signal, ms, killed}.
async function stopProc(p, sig = "SIGTERM", ms = 5000) {
  if (!p) return { code: null };
  const t = Date.now();
  const done = exited(p);
  if (p.exitCode === null && p.signalCode === null) {
    try { process.kill(p.pid, sig); } catch (e) { /* already gone */ }
  }
  const r = await Promise.race([done, wait(ms).then(() => null)]);
  if (r) return { ...r, ms: Date.now() - t, killed: false };
  try { process.kill(p.pid, "SIGKILL"); } catch (e) { /* gone */ }
  const k = await done;
  return { ...k, ms: Date.now() - t, killed: true };
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// Polls |fn| (sync or async, truthy = done) every |step| ms for at most |ms|.
async function until(fn, ms, step = 20) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= end) return v;
    await wait(step);
  }
}

// ---- dcmfd ------------------------------------------------------------------

let dcmfdCount = 0;

// Starts |bin| on a free control port with |ports| media ports; resolves
// once /healthz answers.
async function startDcmfd(bin, tag, { ports = 64, flags = [] } = {}) {
  const port = await freePort();
  const base = mediaPortBase(ports);
  const logf = path.join(tmp(), `dcmfd-${tag}-${++dcmfdCount}.log`);
  const log = fs.openSync(logf, "w");
  // Under the sanitizers a clean exit must also mean "no leak".
  const env = { ...process.env };
  if (SANITIZED && !/detect_leaks=1/.test(env.ASAN_OPTIONS || "")) {
    env.ASAN_OPTIONS = [env.ASAN_OPTIONS, "detect_leaks=1"].filter(Boolean).join(":");
  }
  const proc = track(spawn(bin, ["--control", `127.0.0.1:${port}`, "--ports",
    `${base}-${base + ports - 1}`, "--log-level", "debug", ...flags],
  { stdio: ["ignore", log, log], env }));
  fs.closeSync(log);
  const d = {
    port, proc, logf, portLo: base, portHi: base + ports - 1,
    api: (method, p, body, type) => api(port, method, p, body, type),
    apiUrl: `http://127.0.0.1:${port}`,
    log: () => fs.readFileSync(logf, "utf8"),
    tail: (n = 15) => fs.readFileSync(logf, "utf8").split("\n").slice(-n).join("\n# "),
    alive: () => proc.exitCode === null && proc.signalCode === null,
    async healthz() {
      try {
        const r = await timeout(api(port, "GET", "/healthz"), 3000, "/healthz");
        return r.status === 200 ? r.body : null;
      } catch (e) { return null; }
    },
    // dcmfd and its media worker processes (--workers), summed.
    pids: () => treePids(proc.pid),
    rssKiB() {
      let kib = 0;
      for (const p of treePids(proc.pid)) {
        try {
          const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, "utf8"));
          kib += m ? Number(m[1]) : 0;
        } catch (e) { /* ended meanwhile */ }
      }
      return kib;
    },
    fds() {
      let n = 0;
      for (const p of treePids(proc.pid)) {
        try { n += fs.readdirSync(`/proc/${p}/fd`).length; } catch (e) { /* ended */ }
      }
      return n;
    },
    async metrics() { return String((await api(port, "GET", "/metrics")).body); },
    stop: (ms = 5000) => stopProc(proc, "SIGTERM", ms),
  };
  const up = await until(() => !d.alive() || d.healthz(), 10000, 50);
  if (!up || !d.alive()) throw new Error(`dcmfd did not come up: ${d.tail()}`);
  return d;
}

// Starts dcmfd, runs |fn(d)|, stops dcmfd with SIGTERM and requires exit
// status 0 within |stopMs| (under ASan with detect_leaks=1 that is also
// "no leak"). A failure of |fn| is reported first, the exit after it.
async function withDcmfd(bin, tag, opts, fn, stopMs = 5000) {
  const d = await startDcmfd(bin, tag, opts);
  let err = null;
  try { await fn(d); } catch (e) { err = e; }
  const s = await d.stop(stopMs);
  let why = null;
  if (s.killed) why = `dcmfd did not exit within ${stopMs} ms of SIGTERM (SIGKILLed)`;
  else if (s.code !== 0) why = `dcmfd exited with ${s.code ?? s.signal}`;
  if (why) {
    why += `; log:\n# ${d.tail()}`;
    err = err ? new Error(`${err.message}\n# and then: ${why}`) : new Error(why);
  }
  if (err) throw err;
  return d;
}

// Asserts dcmfd is alive and answers /healthz.
async function checkHealthy(d, what) {
  check(d.alive(), `${what}: dcmfd died (${d.proc.exitCode ?? d.proc.signalCode}); log:\n# ${d.tail()}`);
  const h = await d.healthz();
  if (!(h && h.status === "ok")) {
    // Say why: a 503 names the stalled worker, a time-out says the
    // control loop did not answer; the log's tail shows what led there.
    let why;
    try {
      const r = await timeout(d.api("GET", "/healthz"), 3000, "/healthz");
      why = `${r.status} ${JSON.stringify(r.body)}`;
    } catch (e) { why = e.message; }
    check(false, `${what}: /healthz did not answer ok (${why}); log:\n# ${d.tail()}`);
  }
}

// Sums the samples of metric |name| in Prometheus text |text| whose labels match |labelRe|.
function metricSum(text, name, labelRe = /.*/) {
  let sum = 0, seen = false;
  for (const l of text.split("\n")) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(l);
    if (m && m[1] === name && labelRe.test(m[2] || "")) { sum += Number(m[3]); seen = true; }
  }
  return seen ? sum : null;
}

// ---- the upstream -----------------------------------------------------------

// A plain Node http server. The body of /<kind>/<size>/<seed> is |size|
// bytes of one random buffer rotated by an offset from |seed|, so every
// request has its own content and its sha256 is known beforehand.
//   kind cl       Content-Length, written at once
//   kind chunked  no Content-Length (chunked), written in 16 KiB pieces
//   kind slow     Content-Length, 32 KiB every 20 ms (a transfer that lasts;
//                 ?pace=MS for another interval)
//   kind reset    Content-Length, half the body slowly, then the socket is destroyed
//   kind stall    Content-Length, half the body slowly, then nothing; the socket stays open
// Anything else: a small text page. Cache-Control: no-store throughout.
async function startUpstream(maxSize = 2 << 20) {
  const base = crypto.randomBytes(maxSize + 1);
  const sockets = new Set();
  const events = []; // {kind, seed, what: "half"|"destroyed"|"closed"}
  const body = (size, seed) => {
    const off = (seed * 7919) % base.length;
    const rot = Buffer.concat([base.subarray(off), base.subarray(0, off)]);
    return rot.subarray(0, size);
  };
  const server = http.createServer((req, res) => {
    const [pathPart, query = ""] = req.url.split("?");
    const [, kind, sz, sd] = pathPart.split("/");
    const pace = Number((/(?:^|&)pace=(\d+)/.exec(query) || [])[1]) || 20;
    const size = Math.min(Number(sz) || 0, maxSize), seed = Number(sd) || 0;
    const data = body(size, seed);
    const head = { "content-type": "application/octet-stream", "cache-control": "no-store" };
    const timers = [];
    const slowly = (until, done) => {
      let off = 0;
      const step = () => {
        if (res.destroyed) return;
        const n = Math.min(32768, until - off);
        if (n > 0) { res.write(data.subarray(off, off + n)); off += n; }
        if (off >= until) { done(); return; }
        timers.push(setTimeout(step, pace));
      };
      step();
    };
    res.on("close", () => { timers.forEach(clearTimeout); events.push({ kind, seed, what: "closed" }); });
    if (kind === "cl") {
      res.writeHead(200, { ...head, "content-length": size });
      res.end(data);
    } else if (kind === "chunked") {
      res.writeHead(200, head);
      for (let off = 0; off < size; off += 16384) res.write(data.subarray(off, off + 16384));
      res.end();
    } else if (kind === "slow") {
      res.writeHead(200, { ...head, "content-length": size });
      slowly(size, () => res.end());
    } else if (kind === "reset" || kind === "stall") {
      res.writeHead(200, { ...head, "content-length": size });
      slowly(size >> 1, () => {
        events.push({ kind, seed, what: "half" });
        if (kind === "reset") { req.socket.destroy(); events.push({ kind, seed, what: "destroyed" }); }
      });
    } else {
      const t = Buffer.from(`page ${req.url}\n`);
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "no-store",
        "content-length": t.length });
      res.end(t);
    }
  });
  server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  return {
    port, events,
    url: (p) => `http://127.0.0.1:${port}${p}`,
    body,
    sha: (size, seed) => crypto.createHash("sha256").update(body(size, seed)).digest("hex"),
    openSockets: () => sockets.size,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

// ---- phones -----------------------------------------------------------------

// Reads HTTP/1.1 responses arriving as data-channel messages, with
// Content-Length or chunked framing, hashing bodies as they arrive
// (nothing is kept but the unparsed rest). |bytes| counts body bytes of
// the response in progress, for tests that act mid-transfer.
class StreamReader {
  constructor() {
    this.rest = Buffer.alloc(0);
    this.waiters = [];
    this.cur = null; // {status, head, hash, got, left, chunked, chunkLeft, state}
    this.bytes = 0;
    this.messages = 0;
    this.lastData = Date.now();
  }
  push(data) {
    this.messages++;
    this.lastData = Date.now();
    const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.rest = this.rest.length ? Buffer.concat([this.rest, b]) : b;
    try { this.parse(); } catch (e) { this.fail(e); }
  }
  fail(e) {
    while (this.waiters.length) this.waiters.shift().reject(e);
    this.failed = e;
  }
  body(n) {
    const part = this.rest.subarray(0, n);
    this.rest = this.rest.subarray(n);
    this.cur.hash.update(part);
    this.cur.got += part.length;
    this.bytes += part.length;
  }
  done() {
    const c = this.cur;
    this.cur = null;
    const w = this.waiters.shift();
    if (w) w.resolve({ status: c.status, head: c.head, length: c.got, sha: c.hash.digest("hex") });
  }
  parse() {
    for (;;) {
      if (!this.cur) {
        if (!this.waiters.length) return;
        const end = this.rest.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = this.rest.subarray(0, end).toString("latin1");
        this.rest = this.rest.subarray(end + 4);
        const status = Number(head.split(" ")[1]);
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
        this.bytes = 0;
        this.cur = { status, head, hash: crypto.createHash("sha256"), got: 0, chunked,
          left: cl ? Number(cl[1]) : 0, state: "size" };
        if (!chunked && this.cur.left === 0) { this.done(); continue; }
      }
      const c = this.cur;
      if (!c.chunked) {
        const n = Math.min(c.left, this.rest.length);
        if (n) { this.body(n); c.left -= n; }
        if (c.left > 0) return;
        this.done();
        continue;
      }
      if (c.state === "size") {
        const eol = this.rest.indexOf("\r\n");
        if (eol < 0) return;
        const n = parseInt(this.rest.subarray(0, eol).toString("latin1").split(";")[0], 16);
        if (!Number.isFinite(n)) throw new Error("bad chunk size line");
        this.rest = this.rest.subarray(eol + 2);
        c.left = n;
        c.state = n === 0 ? "trailer" : "data";
      } else if (c.state === "data") {
        const n = Math.min(c.left, this.rest.length);
        if (n) { this.body(n); c.left -= n; }
        if (c.left > 0) return;
        c.state = "crlf";
      } else if (c.state === "crlf") {
        if (this.rest.length < 2) return;
        this.rest = this.rest.subarray(2);
        c.state = "size";
      } else { // trailer: lines until an empty one
        const eol = this.rest.indexOf("\r\n");
        if (eol < 0) return;
        this.rest = this.rest.subarray(eol + 2);
        if (eol === 0) this.done();
      }
    }
  }
  next() {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => { this.waiters.push({ resolve, reject }); this.parse(); });
  }
}

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

// Creates the context for |offer| (HTTP-proxy mode toward |replaceUrl|
// when given) and returns it.
async function createContext(d, offer, replaceUrl, terminationId) {
  const req = createRequest(offer, { terminationId });
  if (replaceUrl) {
    req.terminations[0].medias[0].dcMedia.replaceHttpUrl = { 0: { streamId: 0, replaceHttpUrl: replaceUrl } };
  }
  const created = await timeout(d.api("POST", CONTEXTS, req), 5000, "create");
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body;
}

// A werift phone with the bootstrap channel (negotiated id 0, "http").
async function weriftPhone(d, replaceUrl, terminationId = "ue") {
  const werift = require("werift");
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const ch = pc.createDataChannel("bootstrap", { negotiated: true, id: 0, protocol: "http" });
  const reader = new StreamReader();
  ch.onMessage.subscribe((m) => reader.push(m));
  const opened = new Promise((r) => ch.stateChanged.subscribe((s) => s === "open" && r()));
  const closed = new Promise((r) => ch.stateChanged.subscribe((s) => s === "closed" && r()));
  await pc.setLocalDescription(await pc.createOffer());
  const offer = parseOffer(only127(pc.localDescription.sdp));
  const ctx = await createContext(d, offer, replaceUrl, terminationId);
  await pc.setRemoteDescription({ type: "answer", sdp: answerSdp(ctx, offer) });
  return { kind: "werift", pc, reader, opened, closed, ctx, send: (t) => ch.send(t),
    close: () => { try { pc.close(); } catch (e) { /* closed */ } } };
}

// A node-datachannel (libdatachannel) phone, same shape.
async function ndcPhone(d, replaceUrl, terminationId = "ue") {
  const ndc = require("node-datachannel");
  const pc = new ndc.PeerConnection("phone", { iceServers: [], bindAddress: "127.0.0.1",
    disableAutoNegotiation: true });
  const ch = pc.createDataChannel("bootstrap", { negotiated: true, id: 0, protocol: "http" });
  const reader = new StreamReader();
  ch.onMessage((m) => reader.push(m));
  const opened = new Promise((r) => ch.onOpen(() => r()));
  const closed = new Promise((r) => ch.onClosed(() => r()));
  const gathered = new Promise((r) => pc.onGatheringStateChange((s) => s === "complete" && r()));
  pc.setLocalDescription("offer");
  await timeout(gathered, 5000, "ICE gathering");
  const offer = parseOffer(pc.localDescription().sdp);
  const ctx = await createContext(d, offer, replaceUrl, terminationId);
  pc.setRemoteDescription(answerSdp(ctx, offer), "answer");
  return { kind: "node-datachannel", pc, reader, opened, closed, ctx,
    send: (t) => ch.sendMessage(t),
    close: () => { try { ch.close(); pc.close(); } catch (e) { /* closed */ } } };
}

const makePhone = (kind, d, url, term) => (kind === "werift" ? weriftPhone : ndcPhone)(d, url, term);

// GET |p| on the phone's bootstrap channel; resolves {status, head, length,
// sha}. Fails after |ms| in all, or when nothing arrives for |idleMs|.
async function get(phone, p, ms = 30000, idleMs = 10000) {
  const r = phone.reader;
  const next = r.next();
  let settled = false;
  next.then(() => (settled = true), () => (settled = true));
  phone.send(`GET ${p} HTTP/1.1\r\nHost: \r\n\r\n`);
  const sent = Date.now();
  const stalled = (async () => {
    while (!settled) {
      const now = Date.now();
      const quiet = now - Math.max(r.lastData, sent);
      if (quiet >= idleMs || now - sent >= ms) {
        throw new Error(`${phone.kind}: no complete response to ${p} after ${((now - sent) / 1000).toFixed(1)} s ` +
          `(${r.messages} messages, head ${r.cur ? "received" : "not received"}, ` +
          `${r.bytes} body bytes, nothing for ${(quiet / 1000).toFixed(1)} s)`);
      }
      await wait(100);
    }
  })();
  return Promise.race([next, stalled]);
}

function ndcCleanup() {
  try { require("node-datachannel").cleanup(); } catch (e) { /* not loaded */ }
}

// A new werift phone on a new context fetches a small page through the
// proxy: what every fault case checks afterwards.
async function newPhoneWorks(d, up, what) {
  const ph = await weriftPhone(d, up.url("/page/new"), "ue-new");
  try {
    await timeout(ph.opened, 10000, `${what}: a new phone's channel to open`);
    const r = await get(ph, "/", 10000);
    check(r.status === 200 && r.length === "page /page/new\n".length,
      `${what}: a new phone got ${r.status} (${r.length} bytes)`);
  } finally {
    ph.close();
    await d.api("DELETE", `${CONTEXTS}/${ph.ctx.contextId}`);
  }
}

// ---- Chromium ---------------------------------------------------------------

// Headless Chromium (playwright-core) with the integration suite's phone
// page (tests/integration/chromium_page.html), served from 127.0.0.1 (a
// WebRTC page needs a real origin). Resolves null when there is no
// Chromium (CHROMIUM, default /usr/bin/chromium) or STRESS_CHROMIUM=0.
async function startChromium() {
  const exe = process.env.CHROMIUM || "/usr/bin/chromium";
  if (process.env.STRESS_CHROMIUM === "0" || !fs.existsSync(exe)) return null;
  const { chromium } = require("playwright-core");
  const html = fs.readFileSync(path.join(INTEG, "chromium_page.html"));
  const web = http.createServer((req, res) => {
    res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
    res.end(req.url === "/" ? html : "");
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
  const profile = fs.mkdtempSync(path.join(tmp(), "chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: exe, headless: true, timeout: 60000,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
  return {
    ctx, url: `http://127.0.0.1:${web.address().port}/`,
    async stop() {
      await timeout(ctx.close(), 15000, "closing Chromium").catch((e) => note(e.message));
      web.close();
    },
  };
}

// A Chromium tab as a phone; fetch() sends GET and waits for the whole
// Content-Length response in the page: {status, head, length, sha}.
async function chromiumPhone(browser, d, replaceUrl, terminationId = "ue") {
  const page = await browser.ctx.newPage();
  const call = (what, fn, arg, ms = 20000) => timeout(page.evaluate(fn, arg), ms, `Chromium: ${what}`);
  await page.goto(browser.url, { timeout: 10000 });
  const offer = parseOffer(only127(await call("offer", () => window.phone.offer())));
  const ctx = await createContext(d, offer, replaceUrl, terminationId);
  await call("answer", (sdp) => window.phone.answer(sdp), answerSdp(ctx, offer));
  return {
    kind: "chromium", ctx,
    opened: call("channel open", (ms) => window.phone.opened(ms), 20000, 22000),
    async fetch(p, ms) {
      const r = await call(`response to ${p}`, ([q, t]) => window.phone.exchange(q, t),
        [`GET ${p} HTTP/1.1\r\nHost: \r\n\r\n`, ms], ms + 2000);
      const body = Buffer.from(r.body, "base64");
      return { status: Number(r.head.split(" ")[1]), head: r.head, length: body.length,
        sha: crypto.createHash("sha256").update(body).digest("hex") };
    },
    close: () => timeout(page.close(), 5000, "closing the tab").catch(() => {}),
  };
}

// ---- dcmf-ue ----------------------------------------------------------------

// Runs dcmf-ue with |args|; resolves {code, signal, out, err}; killed after
// |ms|. The promise carries the process as .proc.
function runUe(ue, args, ms = 120000) {
  const p = track(spawn(ue, args, { stdio: ["ignore", "pipe", "pipe"] }));
  const done = new Promise((resolve) => {
    let out = "", err = "";
    p.stdout.on("data", (c) => (out += c));
    p.stderr.on("data", (c) => (err += c));
    const t = setTimeout(() => { try { process.kill(p.pid, "SIGKILL"); } catch (e) { /* gone */ } }, ms);
    p.on("close", (code, signal) => { clearTimeout(t); resolve({ code, signal, out, err }); });
  });
  done.proc = p;
  return done;
}

// ---- the runner -------------------------------------------------------------

// Runs |tests| ({name, fn}) in order; prints "ok - name (s)" or "not ok -
// name: why", then "N passed, M failed"; exits.
async function run(tests, perTestMs) {
  let passed = 0, failed = 0;
  const only = process.env.STRESS_ONLY;
  for (const t of tests) {
    if (only && !t.name.includes(only)) continue;
    const t0 = Date.now();
    try {
      await timeout(t.fn(), perTestMs, `test (${perTestMs / 1000} s)`);
      console.log(`ok - ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      passed++;
    } catch (e) {
      console.log(`not ok - ${t.name}: ${e.message}`);
      failed++;
    }
  }
  ndcCleanup();
  console.log(`${passed} passed, ${failed} failed (${secs()} s)`);
  process.exit(failed ? 1 : 0);
}

module.exports = {
  CONTEXTS, SANITIZED, tmp, knob, note, wait, timeout, check, until, freePort, track, exited,
  stopProc, startDcmfd, withDcmfd, checkHealthy, metricSum, startUpstream, StreamReader, weriftPhone,
  ndcPhone, makePhone, get, startChromium, chromiumPhone, newPhoneWorks, runUe, run, ndcCleanup, createContext, parseOffer,
  answerSdp,
};
