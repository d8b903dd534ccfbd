// A werift phone in HTTP-proxy mode (run by test_proxy.py under in-netns,
// so dcmfd and nginx are started here, in the same network namespace).
// One phone, one bootstrap channel, replacement URL toward a port where
// nothing listens yet:
//   GET /                 -> 502 (upstream down)
//   nginx starts on that port
//   GET / on the SAME channel          -> 200, the file byte for byte
//   GET /apps/x/app.js on the channel  -> 200, the file byte for byte
//
//   node proxy_werift.js DCMFD NGINX_PREFIX NGINX_CONF UPSTREAM_PORT URL ROOT
//
// Prints "ok - name" / "not ok - name: why" lines and exits 1 on failure.
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const net = require("net");
const { spawn } = require("child_process");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");
const { mediaPortBase } = require("./harness");

const [DCMFD, NGINX_PREFIX, NGINX_CONF, UP_PORT, URL, ROOT] = process.argv.slice(2);
const CONTEXTS = "/nmf-mrm/v1/contexts";
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

async function waitPort(port, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const up = await new Promise((r) => {
      const c = net.connect(port, "127.0.0.1", () => { c.destroy(); r(true); });
      c.on("error", () => r(false));
    });
    if (up) return;
    await wait(20);
  }
  throw new Error(`nothing listens on ${port}`);
}

// Collects HTTP/1.1 responses arriving as data-channel messages (as in
// dc_clients.js).
class HttpReader {
  constructor() { this.buf = Buffer.alloc(0); this.waiters = []; }
  push(data) { this.buf = Buffer.concat([this.buf, Buffer.from(data)]); this.parse(); }
  parse() {
    while (this.waiters.length) {
      const end = this.buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.buf.slice(0, end).toString();
      const status = Number(head.split(" ")[1]);
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const len = m && status !== 304 ? Number(m[1]) : 0;
      if (this.buf.length < end + 4 + len) return;
      const body = this.buf.slice(end + 4, end + 4 + len);
      this.buf = this.buf.slice(end + 4 + len);
      this.waiters.shift().resolve({ status, head, body });
    }
  }
  next() { return new Promise((resolve) => { this.waiters.push({ resolve }); this.parse(); }); }
}

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

async function weriftPhone(apiPort, replaceUrl) {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false, iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const ch = pc.createDataChannel("bootstrap", { negotiated: true, id: 0, protocol: "http" });
  const reader = new HttpReader();
  ch.onMessage.subscribe((m) => reader.push(m));
  const opened = new Promise((r) => ch.stateChanged.subscribe((s) => s === "open" && r()));
  await pc.setLocalDescription(await pc.createOffer());
  const offer = parseOffer(only127(pc.localDescription.sdp));
  const req = createRequest(offer);
  req.terminations[0].medias[0].dcMedia.replaceHttpUrl = { 0: { streamId: 0, replaceHttpUrl: replaceUrl } };
  const created = await api(apiPort, "POST", CONTEXTS, req);
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  await pc.setRemoteDescription({ type: "answer", sdp: answerSdp(created.body, offer) });
  return { pc, reader, opened, send: (t) => ch.send(t), close: () => pc.close() };
}

async function fetchPath(phone, p) {
  const next = phone.reader.next();
  phone.send(`GET ${p} HTTP/1.1\r\nHost: \r\n\r\n`);
  return timeout(next, 10000, `response to ${p}`);
}

function stopProc(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p && p.exitCode);
  const exited = new Promise((r) => p.on("exit", (code) => r(code)));
  process.kill(p.pid, "SIGTERM");
  return Promise.race([exited, wait(5000).then(() => { process.kill(p.pid, "SIGKILL"); return "killed"; })]);
}

(async () => {
  let dcmfd, nginx, phone, failed = 0;
  const logPath = path.join(os.tmpdir(), `dcmfd-proxy-werift-${process.pid}.log`);
  const name = "werift: 502 while the upstream is down, then / and a nested path on the same channel";
  try {
    const port = await freePort();
    const base = mediaPortBase(20);
    const logFd = fs.openSync(logPath, "w");
    dcmfd = spawn(DCMFD, ["--control", `127.0.0.1:${port}`, "--ports", `${base}-${base + 19}`,
      "--log-level", "debug"], { stdio: ["ignore", logFd, logFd] });
    for (let i = 0; ; i++) {
      try { if ((await api(port, "GET", "/healthz")).status === 200) break; } catch (e) { /* not yet */ }
      if (i > 100) throw new Error("dcmfd did not come up");
      await wait(50);
    }
    phone = await weriftPhone(port, URL);
    await timeout(phone.opened, 10000, "channel open");
    const down = await fetchPath(phone, "/");
    check(down.status === 502, `upstream down: status ${down.status}, want 502`);
    nginx = spawn("nginx", ["-p", NGINX_PREFIX, "-e", path.join(NGINX_PREFIX, "error.log"), "-c", NGINX_CONF],
      { stdio: "ignore" });
    await waitPort(Number(UP_PORT), 5000);
    const r = await fetchPath(phone, "/");
    check(r.status === 200, `after nginx came up: status ${r.status}: ${r.body.slice(0, 100)}`);
    check(r.body.equals(fs.readFileSync(path.join(ROOT, "site", "index.html"))), "/ differs from site/index.html");
    check(/\r\nvia: /i.test(r.head), "no Via toward the phone");
    const js = await fetchPath(phone, "/apps/x/app.js");
    check(js.status === 200, `/apps/x/app.js: status ${js.status}`);
    check(js.body.equals(fs.readFileSync(path.join(ROOT, "site", "apps", "x", "app.js"))), "app.js differs");
    // The pool's connections in /metrics (published by the worker within
    // a tick): the second request went on the kept-alive connection.
    let m = "";
    for (let i = 0; i < 60; i++) {
      m = String((await api(port, "GET", "/metrics")).body);
      if (/dcmf_proxy_upstream_connections_total\{event="reused"\} [1-9]/.test(m)) break;
      await wait(50);
    }
    check(/dcmf_proxy_upstream_connections_total\{event="opened"\} [1-9]/.test(m), "no opened connection in /metrics");
    check(/dcmf_proxy_upstream_connections_total\{event="reused"\} [1-9]/.test(m), "no reused connection in /metrics");
    check(/dcmf_proxy_upstream_retries_total 0/.test(m), "a retry in /metrics");
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${e.message}`);
    try { console.log("# " + fs.readFileSync(logPath, "utf8").split("\n").slice(-12).join("\n# ")); } catch (x) { /* none */ }
  } finally {
    if (phone) phone.close();
    await stopProc(nginx);
    const code = await stopProc(dcmfd);
    if (code !== 0 && !failed) { failed++; console.log(`not ok - dcmfd exited with ${code}`); }
    fs.rmSync(logPath, { force: true });
  }
  process.exit(failed ? 1 : 0);
})();
