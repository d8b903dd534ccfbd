// A real browser as the DCMTSI phone: headless Debian Chromium (driven by
// playwright-core) opens the bootstrap data channel (negotiated id 0,
// "http") toward a real dcmfd and fetches the data-channel application
// with HTTP over the channel. Chromium's DTLS ClientHello (~1.4 KB, with
// an X25519MLKEM768 key share) comes in two datagrams, so this also
// exercises fragment reassembly on dcmfd's side.
//
//   node dc_chromium.js DCMFD [filter]
//
// Run it inside tests/integration/in-netns: Chromium then sees only
// 127.0.0.1. Prints "ok - name" / "not ok - name: why" and a final
// "N passed, M failed"; exits 1 if anything failed.
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const net = require("net");
const http = require("http");
const crypto = require("crypto");
const { spawn } = require("child_process");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const { chromium } = require("playwright-core");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");

const DCMFD = process.argv[2];
const FILTER = process.argv[3];
const WWW = path.join(__dirname, "..", "..", "bootstrap", "www");
const PAGE = path.join(__dirname, "chromium_page.html");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CONTEXTS = "/nmf-mrm/v1/contexts";
const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection", // 127.0.0.1 host candidates
  "--disable-features=WebRtcHideLocalIpsWithMdns",
];
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const timeout = (p, ms, what) =>
  Promise.race([p, wait(ms).then(() => { throw new Error(`timed out: ${what}`); })]);

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// A bootstrap repository: the shipped www plus a 1 MiB random file.
function makeRepo() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcmf-chr-"));
  fs.cpSync(WWW, dir, { recursive: true });
  const big = crypto.randomBytes(1 << 20);
  fs.writeFileSync(path.join(dir, "big.bin"), big);
  return { dir, bigHash: crypto.createHash("sha256").update(big).digest("hex") };
}

class Dcmfd {
  async start(repoDir) {
    this.port = await freePort();
    const base = 42000 + Math.floor(Math.random() * 15000);
    this.logPath = path.join(os.tmpdir(), `dcmfd-chr-${this.port}.log`);
    this.log = fs.openSync(this.logPath, "w+");
    this.proc = spawn(DCMFD, ["--control", `127.0.0.1:${this.port}`, "--ports", `${base}-${base + 20}`,
      "--bootstrap-dir", repoDir, "--log-level", "debug"], { stdio: ["ignore", this.log, this.log] });
    for (let i = 0; i < 100; i++) {
      try { if ((await api(this.port, "GET", "/healthz")).status === 200) return this; } catch (e) { /* not yet */ }
      await wait(50);
    }
    throw new Error("dcmfd did not come up");
  }
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return this.proc && this.proc.exitCode;
    const exited = new Promise((r) => this.proc.on("exit", (code) => r(code)));
    this.proc.kill("SIGTERM");
    const code = await Promise.race([exited, wait(5000).then(() => "timeout")]);
    if (code === "timeout") this.proc.kill("SIGKILL");
    return code;
  }
  logText() { return this.logPath ? fs.readFileSync(this.logPath, "utf8") : ""; }
  removeLog() {
    if (this.log !== undefined) fs.closeSync(this.log);
    if (this.logPath) fs.rmSync(this.logPath, { force: true });
  }
}

// ---- the browser -----------------------------------------------------------

// The page comes from a Node http server on 127.0.0.1: about:blank is not a
// secure context, and WebRTC with the fake-ui flag wants a real origin.
const browser = {
  async start() {
    const html = fs.readFileSync(PAGE);
    this.web = http.createServer((req, res) => {
      res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
      res.end(req.url === "/" ? html : "");
    });
    await new Promise((r) => this.web.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${this.web.address().port}/`;
    this.profile = fs.mkdtempSync(path.join(os.tmpdir(), "dcmf-chr-profile-"));
    this.ctx = await chromium.launchPersistentContext(this.profile, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60000,
    });
    this.version = this.ctx.browser() ? this.ctx.browser().version() : "?";
  },
  async stop() {
    if (this.ctx) await timeout(this.ctx.close(), 15000, "closing Chromium").catch((e) => console.log(`# ${e.message}`));
    if (this.web) this.web.close();
    if (this.profile) fs.rmSync(this.profile, { recursive: true, force: true });
  },
};

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

// A phone in a fresh tab: offer from Chromium, Nmf_MRM create at dcmfd,
// the SDP answer back into Chromium.
async function chromiumPhone(d) {
  const page = await browser.ctx.newPage();
  page.setDefaultTimeout(20000);
  const phone = {
    page,
    call: (what, fn, arg, ms = 20000) => timeout(page.evaluate(fn, arg), ms, what),
    close: async () => {
      await timeout(page.evaluate(() => window.phone && window.phone.close()), 5000, "pc.close").catch(() => {});
      await timeout(page.close(), 5000, "closing the tab").catch(() => {});
    },
  };
  try {
    await page.goto(browser.url, { timeout: 10000 });
    const sdp = await phone.call("offer", () => window.phone.offer());
    const cands = sdp.split("\r\n").filter((l) => l.startsWith("a=candidate:"));
    check(cands.some((l) => / udp \d+ 127\.0\.0\.1 \d+ typ host/i.test(l)),
      `Chromium offered no UDP 127.0.0.1 host candidate: ${JSON.stringify(cands)}`);
    phone.offerSdp = only127(sdp);
    phone.offer = parseOffer(phone.offerSdp);
    const created = await timeout(api(d.port, "POST", CONTEXTS, createRequest(phone.offer)), 5000, "create");
    if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
    phone.ctx = created.body;
    phone.answerSdp = answerSdp(created.body, phone.offer);
    await phone.call("setRemoteDescription", (s) => window.phone.answer(s), phone.answerSdp);
    return phone;
  } catch (e) {
    await phone.close();
    throw e;
  }
}

async function opened(phone) {
  await phone.call("channel open", (ms) => window.phone.opened(ms), 10000, 12000);
}

// Sends one request on id 0; resolves {status, head, body (Buffer), messages, ...}.
async function exchange(phone, request, ms = 10000) {
  const r = await phone.call(`response to ${request.split("\r\n")[0]}`,
    ([q, t]) => window.phone.exchange(q, t), [request, ms], ms + 2000);
  return { ...r, status: Number(r.head.split(" ")[1]), body: Buffer.from(r.body, "base64") };
}

async function getContext(d, phone) {
  const r = await timeout(api(d.port, "GET", `${CONTEXTS}/${phone.ctx.contextId}`), 5000, "GET context");
  check(r.status === 200, `GET context: ${r.status}`);
  return r.body;
}

// ---- tests -------------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
function check(cond, msg) { if (!cond) throw new Error(msg); }
const note = (msg) => console.log(`# ${msg}`);

test("chromium: GET / over negotiated id 0 returns bootstrap/www/index.html", async (d) => {
  const phone = await chromiumPhone(d);
  try {
    await opened(phone);
    const r = await exchange(phone, "GET / HTTP/1.1\r\nHost: \r\n\r\n");
    check(r.status === 200, `status ${r.status}: ${JSON.stringify(r.head)}`);
    check(r.allBinary, "a response message arrived as text, not binary");
    check(r.headInFirst, "the first message did not carry the whole header block");
    check(r.extra === 0, `${r.extra} bytes beyond Content-Length`);
    const want = fs.readFileSync(path.join(WWW, "index.html"));
    check(r.body.equals(want), `body (${r.body.length} bytes) differs from index.html (${want.length} bytes)`);
    check(/\r\ncontent-type: text\/html/i.test(r.head), `no text/html content type: ${JSON.stringify(r.head)}`);
    const st = await phone.call("getStats", () => window.phone.stats());
    note(`chromium ${browser.version}: ${JSON.stringify(st)}`);
    check(st.iceRole === "controlling" && st.dtlsRole === "client" && st.dtlsState === "connected",
      `transport ${JSON.stringify(st)}`);
    check(st.pair === `127.0.0.1:${phone.offer.candidate.port} -> 127.0.0.1:${phone.ctx.terminations[0].medias[0].localMbEndpoint.portNumber}`,
      `selected pair ${st.pair}`);
    const ctx = await getContext(d, phone);
    check((ctx.events || []).some((e) => e.event === "DC_OPEN" && e.detail && e.detail.streamId === 0),
      `no DC_OPEN event for stream 0: ${JSON.stringify(ctx.events)}`);
  } finally { await phone.close(); }
});

test("chromium: a 1 MiB file arrives intact over many messages", async (d) => {
  const phone = await chromiumPhone(d);
  try {
    await opened(phone);
    const r = await exchange(phone, "GET /big.bin HTTP/1.1\r\nHost: \r\n\r\n", 20000);
    check(r.status === 200, `status ${r.status}: ${JSON.stringify(r.head)}`);
    check(r.allBinary, "a response message arrived as text, not binary");
    check(r.headInFirst, "the first message did not carry the whole header block");
    check(r.extra === 0, `${r.extra} bytes beyond Content-Length`);
    check(r.body.length === 1 << 20, `body is ${r.body.length} bytes`);
    const hash = crypto.createHash("sha256").update(r.body).digest("hex");
    check(hash === d.repo.bigHash, "1 MiB body hash differs");
    // maxMessageSize defaults to 64 KiB: at least 16 messages for the body.
    const mms = phone.ctx.terminations[0].medias[0].dcMedia.maxMessageSize * 1024;
    check(r.messages >= Math.ceil((1 << 20) / mms), `only ${r.messages} messages (max message size ${mms})`);
    note(`1 MiB in ${r.messages} messages (max message size ${mms})`);
    const missing = await exchange(phone, "GET /no/such/file HTTP/1.1\r\nHost: \r\n\r\n");
    check(missing.status === 404, `missing file: ${missing.status}`);
  } finally { await phone.close(); }
});

test("chromium: a DCEP channel nobody serves is opened and then closed by dcmfd", async (d) => {
  const phone = await chromiumPhone(d);
  try {
    await opened(phone);
    const r = await phone.call("DCEP channel", (ms) => window.phone.dcep("chat", "chat", ms), 10000, 15000);
    note(`DCEP channel: ${JSON.stringify(r)}`);
    check(!r.timedOut, `the DCEP channel did not close within 10 s: ${JSON.stringify(r)}`);
    check(typeof r.id === "number" && r.id > 0, `stream id ${r.id}`);
    // dcmfd ACKs the OPEN and resets the stream at once. Whether the page
    // sees "open" before "close" is a race inside Chromium (about half
    // the runs go straight from "connecting" to "closed"); either way
    // nothing may follow "close", and no "error".
    const evs = r.events.map((e) => e.ev).join(",");
    check(evs === "close" || evs === "open,close", `page events ${evs} (want [open,]close)`);
    check(r.readyState === "closed", `readyState ${r.readyState}`);
    let events = [];
    for (let i = 0; i < 40; i++) { // DC_CLOSE may be recorded just after Chromium's close
      const ctx = await getContext(d, phone);
      events = (ctx.events || []).map((e) => `${e.event}:${e.detail && e.detail.streamId}`);
      if (events.includes(`DC_CLOSE:${r.id}`)) break;
      await wait(50);
    }
    check(events.includes(`DC_OPEN:${r.id}`) && events.includes(`DC_CLOSE:${r.id}`),
      `events ${events.join(",")} lack DC_OPEN:${r.id} and DC_CLOSE:${r.id}`);
    check(events.indexOf(`DC_OPEN:${r.id}`) < events.indexOf(`DC_CLOSE:${r.id}`), `events out of order: ${events.join(",")}`);
    check(!events.includes("DC_CLOSE:0"), `the bootstrap channel closed too: ${events.join(",")}`);
    // the bootstrap channel still works
    const again = await exchange(phone, "GET / HTTP/1.1\r\nHost: \r\n\r\n");
    check(again.status === 200, `bootstrap after the DCEP close: ${again.status}`);
  } finally { await phone.close(); }
});

(async () => {
  let passed = 0, failed = 0;
  const repo = makeRepo();
  const t0 = Date.now();
  try {
    await browser.start();
    note(`Chromium ${browser.version} up in ${Date.now() - t0} ms`);
    for (const t of tests) {
      if (FILTER && !t.name.includes(FILTER)) continue;
      const d = new Dcmfd();
      d.repo = repo;
      const t1 = Date.now();
      try {
        await d.start(repo.dir);
        await timeout(t.fn(d), 60000, "test");
        const code = await d.stop();
        check(code === 0, `dcmfd exited with ${code}`);
        console.log(`ok - ${t.name} (${Date.now() - t1} ms)`);
        d.removeLog();
        passed++;
      } catch (e) {
        await d.stop();
        console.log(`not ok - ${t.name}: ${e.message}`);
        const log = d.logText().split("\n").slice(-25).join("\n# ");
        if (log) console.log(`# ${d.logPath}:\n# ${log}`);
        failed++;
      }
    }
  } catch (e) {
    console.log(`not ok - Chromium: ${e.message}`);
    failed++;
  } finally {
    await browser.stop();
    fs.rmSync(repo.dir, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
