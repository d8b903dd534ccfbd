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
const dgram = require("dgram");
const crypto = require("crypto");
const { spawn } = require("child_process");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const { makeBrowser } = require("./chromium");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");
const { mediaPortBase } = require("./harness");

const DCMFD = process.argv[2];
const FILTER = process.argv[3];
const WWW = path.join(__dirname, "..", "..", "bootstrap", "www");
const PAGE = path.join(__dirname, "chromium_page.html");
const CONTEXTS = "/nmf-mrm/v1/contexts";
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
    const base = mediaPortBase(21);
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

const browser = makeBrowser({ html: fs.readFileSync(PAGE), profilePrefix: "dcmf-chr-profile-" });

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

// A phone in a fresh tab: offer from Chromium, Nmf_MRM create at dcmfd,
// the SDP answer back into Chromium. |opts| go to createRequest();
// opts.editRequest(body), if given, may change the body before the POST.
async function chromiumPhone(d, opts = {}) {
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
    const req = createRequest(phone.offer, opts);
    if (opts.editRequest) opts.editRequest(req);
    const created = await timeout(api(d.port, "POST", CONTEXTS, req), 5000, "create");
    if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
    phone.ctx = created.body;
    phone.answerSdp = answerSdp(created.body, phone.offer);
    await phone.call("setRemoteDescription", (s) => window.phone.answer(s), phone.answerSdp);
    phone.answeredAt = Date.now();
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

// The page's view of its bootstrap channel and transport, at once.
const pageState = (phone) => phone.call("page state", () => window.phone.state(), undefined, 5000);

// The IMS AS's event notification endpoint: records every JSON body
// POSTed to it (one event, or an array of them).
async function eventSink() {
  const events = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      try { events.push(...[].concat(JSON.parse(body))); } catch (e) { events.push({ unparsable: body }); }
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    events,
    uri: `http://127.0.0.1:${server.address().port}/events`,
    close: () => { server.closeAllConnections(); server.close(); },
  };
}

// An nginx (Debian nginx-light) on 127.0.0.1 serving a temp docroot,
// with an access log of "$request_uri|$status|$http_via" lines. Workers
// drop to an unprivileged user, so the tree is world-readable.
async function startNginx(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcmf-chr-nginx-"));
  const root = path.join(dir, "root");
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), data);
  }
  const chmodR = (p) => {
    const st = fs.statSync(p);
    fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) chmodR(path.join(p, e));
  };
  chmodR(dir);
  const port = await freePort();
  const access = path.join(dir, "access.log");
  const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((k) => `  ${k}_temp_path ${dir}/${k};`).join("\n");
  const conf = path.join(dir, "nginx.conf");
  fs.writeFileSync(conf, `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  types { text/html html; application/javascript js; }
  default_type application/octet-stream;
${temps}
  log_format dcmf '$request_uri|$status|$http_via';
  access_log ${access} dcmf;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`);
  const out = fs.openSync(path.join(dir, "stderr"), "w");
  const proc = spawn("nginx", ["-p", dir, "-e", `${dir}/error.log`, "-c", conf],
    { stdio: ["ignore", out, out] });
  fs.closeSync(out);
  const ng = {
    dir, port, proc,
    log: () => { try { return fs.readFileSync(access, "utf8").split("\n").filter((l) => l); } catch (e) { return []; } },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        try { process.kill(proc.pid, "SIGTERM"); } catch (e) { /* gone */ }
        if (await Promise.race([exited.then(() => true), wait(5000).then(() => false)]) === false) {
          try { process.kill(proc.pid, "SIGKILL"); } catch (e) { /* gone */ }
          await exited;
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null || proc.signalCode !== null) break;
    const up = await new Promise((r) => {
      const c = net.connect(port, "127.0.0.1", () => { c.destroy(); r(true); });
      c.on("error", () => r(false));
    });
    if (up) return ng;
    await wait(50);
  }
  const why = ["stderr", "error.log"].map((f) => {
    try { return fs.readFileSync(path.join(dir, f), "utf8"); } catch (e) { return ""; }
  }).join(" ").trim();
  await ng.stop();
  throw new Error(`nginx did not come up on ${port}: ${why}`);
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
    // The event crosses from the media worker process to the control
    // process apart from the response the phone got: wait for it.
    let ctx = await getContext(d, phone);
    for (let i = 0; i < 40 && !(ctx.events || []).some((e) => e.event === "DC_OPEN"); i++) {
      await wait(50);
      ctx = await getContext(d, phone);
    }
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

test("chromium: wrong fingerprint: DTLS_FAILURE event, never opens; a correct phone still fetches", async (d) => {
  const sink = await eventSink();
  const phones = [];
  try {
    const wrong = "sha-256 " + Array(32).fill("AB").join(":");
    const bad = await chromiumPhone(d, { fingerprint: wrong, eventNotifyUri: sink.uri });
    phones.push(bad);
    const good = await chromiumPhone(d, { terminationId: "ue-b" });
    phones.push(good);
    check(good.ctx.contextId !== bad.ctx.contextId, "both phones got the same context");
    await opened(good);
    const r = await exchange(good, "GET / HTTP/1.1\r\nHost: \r\n\r\n");
    check(r.status === 200, `good phone: ${r.status}`);
    for (let i = 0; i < 100 && !sink.events.some((e) => e.event === "DTLS_FAILURE"); i++) await wait(50);
    const ev = sink.events.find((e) => e.event === "DTLS_FAILURE");
    check(ev, `no DTLS_FAILURE delivered (got ${JSON.stringify(sink.events)})`);
    note(`DTLS_FAILURE posted ${Date.now() - bad.answeredAt} ms after the answer: ${JSON.stringify(ev)}`);
    check(ev.contextId === bad.ctx.contextId && ev.terminationId === "ue-a" && ev.mediaId === "1",
      `event names the wrong media: ${JSON.stringify(ev)}`);
    check(typeof ev.time === "string" && ev.detail && ev.detail.reason, `event lacks time or reason: ${JSON.stringify(ev)}`);
    const shown = ((await getContext(d, bad)).events || []).filter((e) => e.event === "DTLS_FAILURE");
    check(shown.length > 0, "DTLS_FAILURE not shown on GET");
    check(shown.some((e) => e.time === ev.time && e.detail && e.detail.reason === ev.detail.reason),
      `GET shows another DTLS_FAILURE than was posted: ${JSON.stringify(shown)}`);
    // never opens: give it 5 s from the answer in all
    const left = bad.answeredAt + 5000 - Date.now();
    if (left > 0) await wait(left);
    const st = await pageState(bad);
    note(`wrong-fingerprint phone after 5 s: ${JSON.stringify(st)}`);
    check(!st.opened && st.dc0 !== "open", `the channel with the wrong fingerprint opened: ${JSON.stringify(st)}`);
    check(!sink.events.some((e) => e.event === "DC_OPEN"), `DC_OPEN posted: ${JSON.stringify(sink.events)}`);
    // the correct phone is unharmed
    const again = await exchange(good, "GET / HTTP/1.1\r\nHost: \r\n\r\n");
    check(again.status === 200, `good phone afterwards: ${again.status}`);
  } finally {
    for (const p of phones) await p.close();
    sink.close();
  }
});

test("chromium: hold until fingerprint: ClientHello held before the PATCH, fetch after it", async (d) => {
  const phone = await chromiumPhone(d, { fingerprint: null });
  try {
    check(!phone.ctx.terminations[0].medias[0].dcMedia.remoteDcEndpoint ||
      !phone.ctx.terminations[0].medias[0].dcMedia.remoteDcEndpoint.fingerprint, "the context has a remote fingerprint");
    await wait(1500); // ICE and the ClientHello (with retransmissions) happen; dcmfd holds them
    const before = await pageState(phone);
    note(`before the PATCH: ${JSON.stringify(before)}`);
    check(!before.opened && before.dc0 === "connecting", `the channel opened before the fingerprint was known: ${JSON.stringify(before)}`);
    // Not vacuous: ICE is up and Chromium's DTLS client is mid-handshake,
    // so its ClientHello has gone out and reached dcmfd.
    check(before.ice === "connected" || before.ice === "completed", `ICE not up before the PATCH: ${before.ice}`);
    check(before.dtls === "connecting", `Chromium DTLS ${before.dtls} before the PATCH (want connecting)`);
    // The transport counts DTLS datagrams only (not STUN): the two-datagram
    // ClientHello went out, and dcmfd answered none of it.
    check(before.packetsSent >= 2, `Chromium sent ${before.packetsSent} DTLS datagrams before the PATCH`);
    check(before.packetsReceived === 0, `Chromium got ${before.packetsReceived} DTLS datagrams before the PATCH`);
    const ctx = await getContext(d, phone);
    check(!(ctx.events || []).some((e) => e.event === "DC_OPEN" || e.event === "DTLS_FAILURE"),
      `events before the PATCH: ${JSON.stringify(ctx.events)}`);
    const fpPath = "/terminations/0/medias/0/dcMedia/remoteDcEndpoint/fingerprint";
    const t0 = Date.now();
    const patched = await timeout(api(d.port, "PATCH", `${CONTEXTS}/${phone.ctx.contextId}`,
      [{ op: "add", path: fpPath, value: phone.offer.fingerprint }], "application/json-patch+json"), 5000, "PATCH");
    check(patched.status === 200, `PATCH ${patched.status}: ${JSON.stringify(patched.body)}`);
    await opened(phone);
    // Either the held flight (replayed at once) or a later ClientHello
    // retransmission completes the handshake; both are fine.
    note(`channel open ${Date.now() - t0} ms after the PATCH`);
    const r = await exchange(phone, "GET / HTTP/1.1\r\nHost: \r\n\r\n");
    check(r.status === 200, `status ${r.status}: ${JSON.stringify(r.head)}`);
    const want = fs.readFileSync(path.join(WWW, "index.html"));
    check(r.body.equals(want), `body (${r.body.length} bytes) differs from index.html (${want.length} bytes)`);
  } finally { await phone.close(); }
});

test("chromium: UDP-proxy mode: 200 messages of 1 B to 16 KiB on stream 1000 echo back from a UDP server", async (d) => {
  const echo = dgram.createSocket("udp4");
  let datagrams = 0;
  echo.on("message", (m, r) => { datagrams++; echo.send(m, r.port, r.address); });
  await new Promise((r) => echo.bind(0, "127.0.0.1", r));
  let phone;
  try {
    phone = await chromiumPhone(d, {
      editRequest: (req) => {
        const dc = req.terminations[0].medias[0].dcMedia;
        dc.mediaProxyConfig = "UDP";
        dc.mdc2Protocol = "UDP";
        dc.remoteMdc2Endpoint = { ip: { ipv4Addr: "127.0.0.1" }, transport: "UDP", portNumber: echo.address().port };
        dc.streams["1000"] = { streamId: 1000, subprotocol: "app", order: true };
      },
    });
    const eps = phone.ctx.terminations[0].medias[0].dcMedia.localMdc2Endpoints;
    check(eps && eps["1000"] && eps["1000"].portNumber > 0, `localMdc2Endpoints ${JSON.stringify(eps)}`);
    await opened(phone);
    const sizes = Array.from({ length: 200 }, (_, i) => 1 + Math.floor((i * 16383) / 199));
    const r = await phone.call("app echo", ([s, ms]) => window.phone.appEcho(1000, s, ms), [sizes, 20000], 25000);
    check(r.sent === 200 && r.got === 200, `sent ${r.sent}, got back ${r.got}`);
    check(r.firstBad < 0, `message ${r.firstBad} came back different, or as text`);
    check(datagrams === 200, `the UDP server saw ${datagrams} datagrams, not 200`);
    // The bootstrap channel still serves HTTP beside the proxied stream.
    const g = await exchange(phone, "GET / HTTP/1.1\r\nHost: \r\n\r\n");
    check(g.status === 200, `GET / beside UDP-proxy: status ${g.status}`);
  } finally {
    if (phone) await phone.close();
    echo.close();
  }
});

test("chromium: HTTP proxy mode: / and /app.js come from nginx at the replaceHttpUrl", async (d) => {
  const tag = crypto.randomBytes(8).toString("hex");
  const index = Buffer.from(`<!doctype html>\n<meta charset="utf-8">\n<title>via nginx ${tag}</title>\n` +
    `<p>Served by nginx through dcmf's HTTP proxy \u2014 ${tag} \u2713</p>\n<script src="app.js"></script>\n`);
  const app = Buffer.from(`// app.js ${tag}\nconsole.log("proxied \u00e9 ${tag}");\n`);
  const ng = await startNginx({ "site/index.html": index, "site/app.js": app });
  let phone;
  try {
    const base = `http://127.0.0.1:${ng.port}/site/index.html`;
    phone = await chromiumPhone(d, {
      editRequest: (req) => {
        const dc = req.terminations[0].medias[0].dcMedia;
        dc.mediaProxyConfig = "HTTP";
        dc.replaceHttpUrl = { 0: { streamId: 0, replaceHttpUrl: base } };
      },
    });
    await opened(phone);
    for (const [target, want, upstream, type] of [["/", index, "/site/index.html", "text/html"],
      ["/app.js", app, "/site/app.js", "application/javascript"]]) {
      const r = await exchange(phone, `GET ${target} HTTP/1.1\r\nHost: \r\n\r\n`);
      check(r.status === 200, `GET ${target}: status ${r.status}: ${JSON.stringify(r.head)}`);
      check(r.extra === 0, `GET ${target}: ${r.extra} bytes beyond Content-Length`);
      check(r.body.equals(want), `GET ${target}: body (${r.body.length} bytes) differs from nginx's ${upstream} ` +
        `(${want.length} bytes): ${JSON.stringify(r.body.toString().slice(0, 200))}`);
      check(/\r\nvia:[^\r\n]*\bdcmf\b/i.test(r.head), `GET ${target}: no Via: ... dcmf header: ${JSON.stringify(r.head)}`);
      check(new RegExp(`\r\ncontent-type: ${type.replace("/", "\\/")}`, "i").test(r.head),
        `GET ${target}: not ${type}: ${JSON.stringify(r.head)}`);
    }
    let lines = [];
    for (let i = 0; i < 40; i++) { // nginx writes the log line after the response
      lines = ng.log();
      if (["/site/index.html", "/site/app.js"].every((u) => lines.some((l) => l.startsWith(`${u}|`)))) break;
      await wait(50);
    }
    note(`nginx access log: ${JSON.stringify(lines)}`);
    for (const u of ["/site/index.html", "/site/app.js"]) {
      const hit = lines.filter((l) => l.startsWith(`${u}|`));
      check(hit.length === 1, `nginx logged ${hit.length} requests for ${u}: ${JSON.stringify(lines)}`);
      const [, status, via] = hit[0].split("|");
      check(status === "200" && /\bdcmf\b/.test(via), `nginx log for ${u}: status ${status}, Via ${JSON.stringify(via)}`);
    }
  } finally {
    if (phone) await phone.close();
    await ng.stop();
  }
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
