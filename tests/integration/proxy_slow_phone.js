// HTTP-proxy mode with a phone that stops reading mid-body. A werift
// phone in a child process asks for a 96 MiB body and is then frozen
// (SIGSTOP): its SCTP stops acknowledging, like a phone that went out of
// coverage. The slow phone must cost its own session only:
//   - back-pressure reaches the upstream: it gets to hand over only a
//     small part of the body, and dcmfd's resident memory (VmRSS) grows
//     by far less than the body;
//   - another phone fetching from the same upstream (the same pooled
//     HTTP/2 connection, or another HTTP/1.1 one) is answered at once;
//   - DELETE of the frozen phone's context ends its upstream request,
//     and the other phone still fetches afterwards.
// Once with an HTTP/2 (h2c) upstream, once with an HTTP/1.1 one.
//
//   node proxy_slow_phone.js DCMFD
//   node proxy_slow_phone.js --phone PORT BASE TERM PATH   (the child)
//
// Run under in-netns. Prints "ok - name" / "not ok - name: why" and
// "N passed, M failed".
"use strict";
const path = require("path");
const fs = require("fs");
const http = require("http");
const http2 = require("http2");
const net = require("net");
const { spawn } = require("child_process");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");
const { wait, timeout, check, runTests } = require("./harness");

const CONTEXTS = "/nmf-mrm/v1/contexts";
const MIB = 1024 * 1024;
const BIG = 96 * MIB;
const PIECE = Buffer.alloc(16384, 0x5a);
const SMALL = Buffer.alloc(1000, 0x61);

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

// A werift phone with one HTTP channel (stream 0) proxied to |base|.
// |onData| gets every message.
async function phone(port, base, term, onData) {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const ch = pc.createDataChannel("bootstrap", { negotiated: true, id: 0, protocol: "http" });
  ch.onMessage.subscribe((m) => onData(Buffer.from(m)));
  const opened = new Promise((r) => ch.stateChanged.subscribe((s) => s === "open" && r()));
  const closed = new Promise((r) => ch.stateChanged.subscribe((s) => s === "closed" && r()));
  await pc.setLocalDescription(await pc.createOffer());
  const offer = parseOffer(only127(pc.localDescription.sdp));
  const req = createRequest(offer, { terminationId: term });
  req.terminations[0].medias[0].dcMedia.replaceHttpUrl = { 0: { streamId: 0, replaceHttpUrl: base } };
  const created = await api(port, "POST", CONTEXTS, req);
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  await pc.setRemoteDescription({ type: "answer", sdp: answerSdp(created.body, offer) });
  await timeout(opened, 15000, `${term}: channel open`);
  return { pc, closed, context: created.body.contextId, send: (t) => ch.send(t) };
}

// The child: opens a phone, asks for |path| and says so on stdout once
// the first bytes of the answer arrived; the parent then freezes it.
async function child([port, base, term, p]) {
  let started = false;
  const ph = await phone(Number(port), base, term, () => {
    if (!started) {
      started = true;
      process.stdout.write(JSON.stringify({ started: true }) + "\n");
    }
  });
  process.stdout.write(JSON.stringify({ context: ph.context }) + "\n");
  ph.send(`GET ${p} HTTP/1.1\r\nHost: \r\n\r\n`);
}

// The upstream: /big is BIG bytes written piece by piece as the transport
// takes them (|handed| counts what it took), /small is a short answer,
// /stall announces BIG bytes, sends one piece and then nothing.
// |ended| resolves when the /big or /stall request is over (finished or
// reset).
function upstream(kind) {
  const u = { handed: 0 };
  u.ended = new Promise((r) => { u.endBig = r; });
  const serve = (req, res) => {
    if (req.url.endsWith("/small")) {
      res.writeHead(200, { "content-length": SMALL.length });
      res.end(SMALL);
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BIG });
    res.on("close", () => u.endBig());
    if (req.url.endsWith("/stall")) {
      res.write(PIECE);
      return;
    }
    const pump = () => {
      while (u.handed < BIG && !res.destroyed) {
        u.handed += PIECE.length;
        if (!res.write(PIECE)) { res.once("drain", pump); return; }
      }
      if (u.handed >= BIG) res.end();
    };
    pump();
  };
  u.srv = kind === "h2" ? http2.createServer(serve) : http.createServer(serve);
  return new Promise((resolve) => u.srv.listen(0, "127.0.0.1", () => resolve(u)));
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m[1]);
}

// Resolves once |f()| has not changed for |quietMs| (polled every 100 ms),
// at most |ms| after the call.
async function settled(f, quietMs, ms, what) {
  const t0 = Date.now();
  let last = f(), since = Date.now();
  while (Date.now() - since < quietMs) {
    check(Date.now() - t0 < ms, `timed out: ${what} (still moving at ${last})`);
    await wait(100);
    const v = f();
    if (v !== last) { last = v; since = Date.now(); }
  }
  return last;
}

// One whole Content-Length response read off a phone's messages.
function smallFetcher() {
  let buf = Buffer.alloc(0), waiter = null;
  const parse = () => {
    const end = buf.indexOf("\r\n\r\n");
    if (!waiter || end < 0) return;
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString());
    const len = m ? Number(m[1]) : 0;
    if (buf.length < end + 4 + len) return;
    const r = { status: Number(buf.subarray(0, end).toString().split(" ")[1]),
      body: buf.subarray(end + 4, end + 4 + len) };
    buf = buf.subarray(end + 4 + len);
    const w = waiter;
    waiter = null;
    w(r);
  };
  return {
    push(d) { buf = Buffer.concat([buf, d]); parse(); },
    next() { return new Promise((r) => { waiter = r; parse(); }); },
  };
}

async function slowPhone(kind, d) {
  const u = await upstream(kind);
  const base = `http://127.0.0.1:${u.srv.address().port}/app/`;
  const reader = smallFetcher();
  const fast = await phone(d.port, base, "ue-fast", (m) => reader.push(m));
  const fetchSmall = async (what) => {
    const next = reader.next();
    fast.send("GET /small HTTP/1.1\r\nHost: \r\n\r\n");
    const r = await timeout(next, 5000, what);
    check(r.status === 200 && r.body.equals(SMALL), `${what}: status ${r.status}, ${r.body.length} bytes`);
  };
  await fetchSmall("the other phone's first fetch");
  const rss0 = rssKiB(d.proc.pid);
  const kid = spawn(process.execPath, [__filename, "--phone", String(d.port), base, "ue-slow", "/big"],
    { stdio: ["ignore", "pipe", "inherit"] });
  try {
    let context = null;
    const started = new Promise((resolve, reject) => {
      let line = "";
      kid.stdout.on("data", (b) => {
        line += b;
        for (let i; (i = line.indexOf("\n")) >= 0; line = line.slice(i + 1)) {
          const msg = JSON.parse(line.slice(0, i));
          if (msg.context) context = msg.context;
          if (msg.started) resolve();
        }
      });
      kid.on("exit", (c) => reject(new Error(`phone process exited with ${c}`)));
    });
    await timeout(started, 30000, "the slow phone's first body bytes");
    process.kill(kid.pid, "SIGSTOP");
    const handed = await settled(() => u.handed, 1500, 30000, "upstream stalls");
    const grown = rssKiB(d.proc.pid) - rss0;
    console.log(`# ${kind}: upstream handed over ${(handed / MIB).toFixed(1)} MiB of ${BIG / MIB} MiB; ` +
      `dcmfd VmRSS grew ${(grown / 1024).toFixed(1)} MiB`);
    check(handed < 32 * MIB, `the upstream handed over ${handed} bytes: no back-pressure`);
    check(grown < 24 * 1024, `dcmfd VmRSS grew by ${grown} KiB while the phone was stalled`);
    await fetchSmall("the other phone's fetch while the slow phone is stalled");
    check(context !== null, "the slow phone's context id");
    const del = await api(d.port, "DELETE", `${CONTEXTS}/${context}`);
    check(del.status === 204, `DELETE status ${del.status}`);
    await timeout(u.ended, 5000, "the upstream request ends after DELETE");
    await fetchSmall("the other phone's fetch after DELETE");
  } finally {
    kid.kill("SIGKILL");
    fast.pc.close();
    u.srv.close();
  }
}

// The upstream answers the head and a piece, then falls silent: after
// --upstream-response-timeout (10 s) of silence dcmfd gives the request
// up, the phone's channel closes (its body cannot be completed), and
// another phone is served all along.
async function silentUpstream(kind, d) {
  const u = await upstream(kind);
  const base = `http://127.0.0.1:${u.srv.address().port}/app/`;
  const reader = smallFetcher();
  const other = await phone(d.port, base, "ue-other", (m) => reader.push(m));
  let got = 0;
  const victim = await phone(d.port, base, "ue-victim", (m) => { got += m.length; });
  try {
    const t0 = Date.now();
    victim.send("GET /stall HTTP/1.1\r\nHost: \r\n\r\n");
    const next = reader.next();
    other.send("GET /small HTTP/1.1\r\nHost: \r\n\r\n");
    const r = await timeout(next, 5000, "the other phone's fetch during the stall");
    check(r.status === 200 && r.body.equals(SMALL), `other phone: status ${r.status}`);
    await timeout(u.ended, 20000, "the upstream request ends after 10 s of silence");
    await timeout(victim.closed, 5000, "the stalled phone's channel closes");
    console.log(`# ${kind}: silent upstream request ended after ${Date.now() - t0} ms; ` +
      `the phone got ${got} bytes`);
    check(got >= PIECE.length && got < 2 * PIECE.length, `the phone got ${got} bytes`);
  } finally {
    other.pc.close();
    victim.pc.close();
    u.srv.close();
  }
}

// An h2c "upstream" that never reads its socket and sends PING after PING
// (64 MiB of them), each of which HTTP/2 says to acknowledge: what dcmfd
// queues toward it must stay bounded, and dcmfd must drop the connection
// and answer the phone 502.
async function floodingUpstream(d) {
  const FLOOD = 64 * MIB;
  const ping = Buffer.from([0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  const pings = Buffer.concat(Array(Math.floor(MIB / ping.length)).fill(ping));
  let pushed = 0;
  let closed;
  const gone = new Promise((r) => { closed = r; });
  const srv = net.createServer((sock) => {
    sock.pause(); // never read: dcmfd's frames stay with dcmfd
    sock.on("error", () => {});
    sock.on("close", () => closed());
    sock.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])); // SETTINGS
    const pump = () => {
      while (pushed < FLOOD && !sock.destroyed) {
        pushed += pings.length;
        if (!sock.write(pings)) { sock.once("drain", pump); return; }
      }
    };
    pump();
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${srv.address().port}/app/`;
  const reader = smallFetcher();
  const ph = await phone(d.port, base, "ue-flooded", (m) => reader.push(m));
  try {
    const rss0 = rssKiB(d.proc.pid);
    let peak = 0;
    const sample = setInterval(() => { peak = Math.max(peak, rssKiB(d.proc.pid) - rss0); }, 50);
    const next = reader.next();
    ph.send("GET /x HTTP/1.1\r\nHost: \r\n\r\n");
    try {
      await timeout(gone, 8000, "dcmfd drops the flooding connection").catch((e) => {
        throw new Error(`${e.message} (${(pushed / MIB).toFixed(1)} MiB pushed, VmRSS +${peak} KiB)`);
      });
      const r = await timeout(next, 5000, "the phone's answer");
      check(r.status === 502, `the phone got ${r.status}, want 502`);
    } finally {
      clearInterval(sample);
    }
    console.log(`# flood: ${(pushed / MIB).toFixed(1)} MiB of PINGs pushed; dcmfd VmRSS peak growth ` +
      `${(peak / 1024).toFixed(1)} MiB`);
    check(peak < 16 * 1024, `dcmfd VmRSS grew by ${peak} KiB`);
  } finally {
    ph.pc.close();
    srv.close();
  }
}

if (process.argv[2] === "--phone") {
  child(process.argv.slice(3)).catch((e) => { console.error(e); process.exit(1); });
} else {
  // Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
  // default) and would count as resident: keep it small so that VmRSS
  // still measures what dcmfd holds.
  process.env.ASAN_OPTIONS = [process.env.ASAN_OPTIONS, "quarantine_size_mb=1"].filter(Boolean).join(":");
  const only = process.env.ONLY;
  runTests(process.argv[2], "slow", [
    { name: "HTTP/2 upstream: a stalled phone back-pressures its upstream stream only", fn: (d) => slowPhone("h2", d) },
    { name: "HTTP/1.1 upstream: a stalled phone back-pressures its upstream connection only", fn: (d) => slowPhone("h1", d) },
    { name: "HTTP/2 upstream silent mid-body: the request ends, the phone's channel closes", fn: (d) => silentUpstream("h2", d) },
    { name: "HTTP/1.1 upstream silent mid-body: the request ends, the phone's channel closes", fn: (d) => silentUpstream("h1", d) },
    { name: "HTTP/2 upstream that never reads and floods PINGs: bounded queue, connection dropped, 502", fn: floodingUpstream },
  ].filter((t) => !only || t.name.includes(only)), 120000);
}
