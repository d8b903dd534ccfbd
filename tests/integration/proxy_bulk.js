// HTTP-proxy mode under load from slow readers: four werift phones pull
// 2 MiB bodies at once through dcmfd from a plain Node http upstream, one
// body sent with chunked transfer coding and one with Content-Length.
// werift reads slower than dcmfd can send, so SCTP's send buffer fills
// and drains over and over; this once wedged dcmfd's media worker in the
// SCTP send path (see docs/media-plane.md, "Sending under backpressure").
// Then a new phone must still open a channel and fetch, and SIGTERM must
// stop dcmfd (exit 0) within 5 s.
//
//   node proxy_bulk.js DCMFD
//
// Run under in-netns. Prints "ok - name" / "not ok - name: why" and
// "N passed, M failed".
"use strict";
const path = require("path");
const fs = require("fs");
const http = require("http");
const crypto = require("crypto");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");
const { timeout, check, startDcmfd } = require("./harness");

const DCMFD = process.argv[2];
const CONTEXTS = "/nmf-mrm/v1/contexts";
const BODY = crypto.randomBytes(2 * 1024 * 1024);
const SMALL = crypto.randomBytes(1000);
const sha = (b) => crypto.createHash("sha256").update(b).digest("hex");

// The upstream: /chunked writes BODY in 16 KiB pieces without a length
// (Node then uses chunked coding), /fixed sends it with Content-Length,
// /small is a short answer for the phone that comes last.
function upstream() {
  const srv = http.createServer((req, res) => {
    if (req.url.endsWith("/chunked")) {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      let off = 0;
      const pump = () => {
        while (off < BODY.length) {
          const piece = BODY.subarray(off, off + 16384);
          off += piece.length;
          if (!res.write(piece)) { res.once("drain", pump); return; }
        }
        res.end();
      };
      pump();
    } else if (req.url.endsWith("/fixed")) {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BODY.length });
      res.end(BODY);
    } else if (req.url.endsWith("/small")) {
      res.writeHead(200, { "content-length": SMALL.length });
      res.end(SMALL);
    } else {
      res.writeHead(404, { "content-length": 0 });
      res.end();
    }
  });
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve(srv)));
}

// Collects HTTP/1.1 responses (Content-Length or chunked) arriving as
// data-channel messages.
class HttpReader {
  constructor() { this.buf = Buffer.alloc(0); this.waiters = []; this.bytes = 0; }
  push(data) {
    const b = Buffer.from(data);
    this.bytes += b.length;
    this.buf = Buffer.concat([this.buf, b]);
    this.parse();
  }
  parse() {
    while (this.waiters.length) {
      const r = this.one();
      if (r === null) return;
      this.waiters.shift()(r);
    }
  }
  // One whole response off the front of buf, or null if it is not all here.
  one() {
    const end = this.buf.indexOf("\r\n\r\n");
    if (end < 0) return null;
    const head = this.buf.subarray(0, end).toString();
    const status = Number(head.split(" ")[1]);
    let at = end + 4;
    let body;
    if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const parts = [];
      for (;;) {
        const eol = this.buf.indexOf("\r\n", at);
        if (eol < 0) return null;
        const size = parseInt(this.buf.subarray(at, eol).toString(), 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk size at ${at}`);
        if (this.buf.length < eol + 2 + size + 2) return null;
        if (size === 0) {
          // No trailers are expected: the last chunk ends with an empty line.
          at = eol + 4;
          break;
        }
        parts.push(this.buf.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const len = m ? Number(m[1]) : 0;
      if (this.buf.length < at + len) return null;
      body = Buffer.from(this.buf.subarray(at, at + len));
      at += len;
    }
    this.buf = this.buf.subarray(at);
    return { status, head, body };
  }
  next() { return new Promise((resolve) => { this.waiters.push(resolve); this.parse(); }); }
}

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

async function phone(d, base, term) {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const ch = pc.createDataChannel("bootstrap", { negotiated: true, id: 0, protocol: "http" });
  const reader = new HttpReader();
  ch.onMessage.subscribe((m) => reader.push(m));
  const opened = new Promise((r) => ch.stateChanged.subscribe((s) => s === "open" && r()));
  await pc.setLocalDescription(await pc.createOffer());
  const offer = parseOffer(only127(pc.localDescription.sdp));
  const req = createRequest(offer, { terminationId: term });
  req.terminations[0].medias[0].dcMedia.replaceHttpUrl = { 0: { streamId: 0, replaceHttpUrl: base } };
  const created = await api(d.port, "POST", CONTEXTS, req);
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  await pc.setRemoteDescription({ type: "answer", sdp: answerSdp(created.body, offer) });
  return { pc, reader, opened, send: (t) => ch.send(t) };
}

async function fetchPath(ph, p, ms, what) {
  const next = ph.reader.next();
  ph.send(`GET ${p} HTTP/1.1\r\nHost: \r\n\r\n`);
  return timeout(next, ms, `${what}: response to ${p} (${ph.reader.bytes} bytes arrived)`);
}

function checkBody(r, want, what) {
  check(r.status === 200, `${what}: status ${r.status}`);
  check(r.body.length === want.length && sha(r.body) === sha(want),
    `${what}: ${r.body.length} bytes, sha256 ${sha(r.body).slice(0, 16)}, want ${want.length} bytes`);
}

(async () => {
  let passed = 0, failed = 0;
  const srv = await upstream();
  const base = `http://127.0.0.1:${srv.address().port}/body/`;
  const d = await startDcmfd(DCMFD, "bulk");
  const phones = [];
  const steps = [
    ["four werift phones each pull a 2 MiB chunked body and a 2 MiB Content-Length body at once, byte-exact",
      async () => {
        for (let i = 0; i < 4; i++) phones.push(await phone(d, base, `ue-${i}`));
        await timeout(Promise.all(phones.map((p) => p.opened)), 15000, "four channels open");
        await Promise.all(phones.map(async (p, i) => {
          checkBody(await fetchPath(p, "/chunked", 30000, `phone ${i}`), BODY, `phone ${i} chunked`);
          checkBody(await fetchPath(p, "/fixed", 30000, `phone ${i}`), BODY, `phone ${i} fixed`);
        }));
      }],
    ["a new phone still opens a data channel and fetches afterwards",
      async () => {
        const p = await phone(d, base, "ue-late");
        phones.push(p);
        await timeout(p.opened, 10000, "late channel open");
        checkBody(await fetchPath(p, "/small", 10000, "late phone"), SMALL, "late phone");
      }],
  ];
  for (const [name, fn] of steps) {
    try {
      await fn();
      console.log(`ok - ${name}`);
      passed++;
    } catch (e) {
      console.log(`not ok - ${name}: ${e.message}`);
      failed++;
    }
  }
  for (const p of phones) p.pc.close();
  const name = "SIGTERM stops dcmfd (exit 0) within 5 s";
  const t0 = Date.now();
  const code = await d.stop();
  if (code === 0) {
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
    passed++;
  } else {
    console.log(`not ok - ${name}: exit ${code}`);
    failed++;
  }
  if (failed) {
    console.log("# " + fs.readFileSync(d.logf, "utf8").split("\n").slice(-15).join("\n# "));
  }
  fs.rmSync(d.logf, { force: true });
  srv.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
