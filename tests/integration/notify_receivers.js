// Event notifications through the HTTP client to real Node receivers on
// loopback: an HTTPS receiver (HTTP/1.1 over TLS, certificate from a test
// CA made here by the openssl CLI and given to dcmfd as --upstream-ca), an
// h2 receiver over TLS, an h2c receiver (HTTP/2 with prior knowledge), and
// an HTTPS receiver whose certificate comes from another CA: that event is
// refused, logged and counted, and the phone's session is unharmed.
//
// A werift phone opens the bootstrap channel; its DC_OPEN event is the
// one delivered.
//
//   node notify_receivers.js DCMFD
//
// Prints "ok - name" / "not ok - name: why" and "N passed, M failed".
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const http2 = require("http2");
const https = require("https");
const { execFileSync } = require("child_process");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");
const { wait, timeout, check, runTests } = require("./harness");

const DCMFD = process.argv[2];
const CONTEXTS = "/nmf-mrm/v1/contexts";

// ---- test certificates (openssl CLI) ----------------------------------------

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcmf-notify-"));
const f = (name) => path.join(dir, name);
function openssl(...args) { execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] }); }
function makeCa(name) {
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-subj", `/CN=${name}`, "-days", "1", "-keyout", f(`${name}.key`), "-out", f(`${name}.pem`));
}
// A server certificate for IP 127.0.0.1 signed by |ca|.
function makeServer(name, ca) {
  fs.writeFileSync(f("san.ext"), "subjectAltName=IP:127.0.0.1\n");
  openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-subj", "/CN=127.0.0.1", "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`));
  openssl("x509", "-req", "-in", f(`${name}.csr`), "-CA", f(`${ca}.pem`), "-CAkey", f(`${ca}.key`),
    "-set_serial", String(Date.now()), "-days", "1", "-extfile", f("san.ext"), "-out", f(`${name}.pem`));
  return { key: fs.readFileSync(f(`${name}.key`)), cert: fs.readFileSync(f(`${name}.pem`)) };
}
makeCa("test-ca");
makeCa("other-ca");
const good = makeServer("good", "test-ca");
const wrong = makeServer("wrong", "other-ca");

// ---- receivers ----------------------------------------------------------------

// Starts |server| on loopback; every POST it gets lands in |got| as
// {version, path, type, body}. Resolves {uri, got, server, tlsErrors}.
function receiver(server, scheme) {
  const got = [];
  const tlsErrors = [];
  server.on("request", (req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ version: req.httpVersion, method: req.method, path: req.url,
        type: req.headers["content-type"], body });
      res.statusCode = 204;
      res.end();
    });
  });
  server.on("tlsClientError", (e) => tlsErrors.push(e.message));
  return new Promise((r) => server.listen(0, "127.0.0.1", () =>
    r({ uri: `${scheme}://127.0.0.1:${server.address().port}/events?k=1`, got, server, tlsErrors })));
}

// Closes |server| and every connection dcmfd still holds to it.
function closeReceiver(rc) {
  if (rc.server.closeAllConnections) rc.server.closeAllConnections();
  for (const s of rc.sessions || []) s.destroy();
  rc.server.close();
}

async function h2cReceiver() {
  const server = http2.createServer();
  const rc = await receiver(server, "http");
  rc.sessions = [];
  server.on("session", (s) => rc.sessions.push(s));
  return rc;
}
async function h2TlsReceiver() {
  const server = http2.createSecureServer({ ...good });
  const rc = await receiver(server, "https");
  rc.sessions = [];
  server.on("session", (s) => rc.sessions.push(s));
  return rc;
}

// ---- the phone ------------------------------------------------------------------

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

// A werift phone whose context names |uri| as eventNotifyUri; resolves
// once the bootstrap channel is open, with get(path) over it.
async function phone(d, uri) {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false, iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const ch = pc.createDataChannel("bootstrap", { negotiated: true, id: 0, protocol: "http" });
  let buf = "";
  const waiters = [];
  ch.onMessage.subscribe((m) => {
    buf += Buffer.from(m).toString("latin1");
    const end = buf.indexOf("\r\n\r\n");
    const len = /\r\ncontent-length:\s*(\d+)/i.exec(buf);
    if (end >= 0 && len && buf.length >= end + 4 + Number(len[1]) && waiters.length) {
      const status = Number(buf.split(" ")[1]);
      buf = buf.slice(end + 4 + Number(len[1]));
      waiters.shift()(status);
    }
  });
  const opened = new Promise((r) => ch.stateChanged.subscribe((s) => s === "open" && r()));
  await pc.setLocalDescription(await pc.createOffer());
  const offer = parseOffer(only127(pc.localDescription.sdp));
  const created = await api(d.port, "POST", CONTEXTS, createRequest(offer, { eventNotifyUri: uri }));
  check(created.status === 201, `create: ${created.status} ${JSON.stringify(created.body)}`);
  await pc.setRemoteDescription({ type: "answer", sdp: answerSdp(created.body, offer) });
  await timeout(opened, 10000, "bootstrap channel open");
  const get = (p) => {
    const r = new Promise((res) => waiters.push(res));
    ch.send(`GET ${p} HTTP/1.1\r\nHost: \r\n\r\n`);
    return timeout(r, 10000, `response to ${p}`);
  };
  return { ctx: created.body, get, close: () => pc.close() };
}

// Waits (bounded) until |rc| got a DC_OPEN and returns it.
async function dcOpen(rc) {
  for (let i = 0; i < 200 && !rc.got.some((e) => JSON.parse(e.body).event === "DC_OPEN"); i++) await wait(25);
  const e = rc.got.find((x) => JSON.parse(x.body).event === "DC_OPEN");
  check(e, `no DC_OPEN delivered (got ${JSON.stringify(rc.got)})`);
  return e;
}

function checkEvent(e, p, version) {
  check(e.method === "POST" && e.path === "/events?k=1", `request ${e.method} ${e.path}`);
  check(e.version === version, `HTTP version ${e.version}, expected ${version}`);
  check(e.type === "application/json", `content-type ${e.type}`);
  const ev = JSON.parse(e.body);
  check(ev.contextId === p.ctx.contextId && ev.terminationId === "ue-a" && ev.mediaId === "1",
    `event names the wrong media: ${e.body}`);
  check(ev.detail.streamId === 0 && typeof ev.time === "string", `event detail: ${e.body}`);
}

async function metric(d, result) {
  const text = String((await api(d.port, "GET", "/metrics")).body);
  const m = new RegExp(`^dcmf_events_total\\{result="${result}"\\} (\\d+)$`, "m").exec(text);
  check(m, `no dcmf_events_total{result="${result}"}`);
  return Number(m[1]);
}

// ---- tests ------------------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("https receiver (HTTP/1.1 over TLS, test CA): DC_OPEN delivered", async (d) => {
  const rc = await receiver(https.createServer({ ...good }), "https");
  const p = await phone(d, rc.uri);
  try {
    checkEvent(await dcOpen(rc), p, "1.1");
    check(await metric(d, "sent") >= 1, "dcmf_events_total{sent} not counted");
    check(await metric(d, "failed") === 0, "a delivery failed");
  } finally { p.close(); closeReceiver(rc); }
});

test("h2 receiver over TLS (ALPN h2): DC_OPEN delivered", async (d) => {
  const rc = await h2TlsReceiver();
  const p = await phone(d, rc.uri);
  try {
    checkEvent(await dcOpen(rc), p, "2.0");
    check(await metric(d, "failed") === 0, "a delivery failed");
  } finally { p.close(); closeReceiver(rc); }
});

test("h2c receiver (HTTP/2, prior knowledge): DC_OPEN delivered", async (d) => {
  const rc = await h2cReceiver();
  const p = await phone(d, rc.uri);
  try {
    checkEvent(await dcOpen(rc), p, "2.0");
    check(await metric(d, "sent") >= 1, "dcmf_events_total{sent} not counted");
  } finally { p.close(); closeReceiver(rc); }
});

test("https receiver with a certificate of another CA: refused, logged, counted; the session goes on", async (d) => {
  const rc = await receiver(https.createServer({ ...wrong }), "https");
  const p = await phone(d, rc.uri);
  try {
    let failed = 0;
    for (let i = 0; i < 200 && (failed = await metric(d, "failed")) === 0; i++) await wait(25);
    check(failed >= 1, "the refused delivery was not counted as failed");
    check(rc.got.length === 0, `the receiver got ${rc.got.length} events`);
    check(await metric(d, "sent") === 0, "an event counted as sent");
    const log = fs.readFileSync(d.logf, "utf8");
    check(/event to https:\/\/127\.0\.0\.1:\d+\/events\?k=1 not delivered: TLS handshake failed: .*(certificate|issuer)/.test(log),
      "no log line names the TLS verification failure");
    check(await p.get("/") === 200, "the phone's bootstrap fetch failed after the refused event");
    const ctx = (await api(d.port, "GET", `${CONTEXTS}/${p.ctx.contextId}`)).body;
    check((ctx.events || []).some((e) => e.event === "DC_OPEN"), "DC_OPEN not kept on the context");
  } finally { p.close(); closeReceiver(rc); }
});

process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
runTests(DCMFD, "notify", tests, 60000, ["--upstream-ca", f("test-ca.pem")]);
