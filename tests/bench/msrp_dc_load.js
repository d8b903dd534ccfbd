// msrp_dc_load - the MSRP peers of tests/bench/msrp_dc_compare.py: a
// WebRTC IMS client (WIC) with one negotiated data channel of subprotocol
// "msrp" (RFC 8873; node-datachannel, i.e. libdatachannel: usrsctp over
// its own DTLS, independent of dcmfd's stack) and an IMS core peer (plain
// TCP, listening: the server connects to it), driven through a server
// (dcmfd's AGW or the anchor relay, msrp_dc_relay.js) flat out, one
// direction at a time.
//
// MSRP (RFC 4975), the same bytes as msrp_load.c sends over TLS: each
// message is one SEND chunk (Byte-Range 1-N/N, '$'), To-Path/From-Path
// one URI each, Message-ID, Content-Type: text/plain last; no
// Failure-Report header, so the receiver answers 200 OK for every chunk
// (§7.2: To-Path = the first URI of the SEND's From-Path, From-Path =
// its own URI). On the channel every SCTP message must be exactly one
// chunk (RFC 8873 §5.4); on TCP the receiver cuts the stream. The
// receiver checks each chunk (start line, transaction id and order, its
// own URI in To-Path, header order, the Byte-Range, the end-line where
// the Byte-Range puts it, the body byte for byte); the sender checks each
// response (200, its transaction id, the order). A mismatch ends the
// process with "error ...". The sender keeps at most WINDOW_BYTES of
// messages unanswered (always one).
//
// Line protocol, stdin -> stdout:
//   start:   "uris WIC_URI CORE_URI", "core PORT", "offer SDP_JSON"
//   paths WIC_TO CORE_TO  the To-Path of the WIC's and of the core's SENDs
//                         -> "ok"
//   answer SDP_JSON       the server's answer; waits for the open channel
//                         and the core's TCP connection -> "connected {}"
//   run DIR SIZE WARMUP_MS WINDOW_MS PIDS WINDOW_BYTES
//                         DIR up (WIC -> core) or down (core -> WIC);
//                         PIDS comma list or '-': their utime + stime
//                         (/proc/PID/stat) at the window's edges
//                         -> "result {json}"
//   sample DIR SIZE       one SEND and the 200 it gets, hex -> "sample S R"
//   quit
// Usage: node msrp_dc_load.js
"use strict";
const fs = require("fs");
const net = require("net");
const path = require("path");
const readline = require("readline");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const ndc = require("node-datachannel");

const WIC_URI = "msrps://127.0.0.1:2856/ue;dc";
const CORE_URI = "msrp://127.0.0.1:2855/core;tcp";
const STREAM_ID = 3;
const TID_LEN = 12;
const HEAD_MAX = 4096;
const MAX_MESSAGE_SIZE = 262144;
const TCP_READ_STOP = 4 * 1024 * 1024; // unparsed TCP bytes: a bug, not load

const out = (s) => process.stdout.write(s + "\n");
function fail(why) {
  out(`error ${why}`);
  process.exit(1);
}

// ---- MSRP bytes --------------------------------------------------------------

function tidOf(up, seq) {
  return (up ? "u" : "d") + "00" + seq.toString(16).padStart(9, "0").slice(-9);
}

// The SEND of one direction, built once per run and stamped per message
// (the transaction id has a fixed width, so stamping changes no length).
class Msg {
  constructor(up, size, to) {
    this.up = up;
    const from = up ? WIC_URI : CORE_URI;
    const tid = tidOf(up, 0);
    const head = `MSRP ${tid} SEND\r\nTo-Path: ${to}\r\nFrom-Path: ${from}\r\n` +
      `Message-ID: m${tid}\r\nByte-Range: 1-${size}/${size}\r\nContent-Type: text/plain\r\n\r\n`;
    this.bodyAt = Buffer.byteLength(head);
    this.size = size;
    this.data = Buffer.alloc(this.bodyAt + size + 9 + TID_LEN + 3);
    this.data.write(head, 0, "latin1");
    // Lower-case letters only: the end-line cannot occur in the body (§7.1).
    for (let i = 0; i < size; i++) this.data[this.bodyAt + i] = 97 + (i * 7 + Math.floor(i / 26)) % 26;
    const e = this.bodyAt + size;
    this.data.write("\r\n-------", e, "latin1");
    this.data.write("$\r\n", e + 9 + TID_LEN, "latin1");
    this.tidAt = [5, head.indexOf("Message-ID: m") + 13, this.bodyAt, e + 9];
    this.stamp(0);
  }

  stamp(seq) {
    const tid = tidOf(this.up, seq);
    for (const at of this.tidAt) this.data.write(tid, at, "latin1");
    return this.data;
  }
}

function header(lines, name) {
  const p = name + ": ";
  const i = lines.findIndex((l) => l.startsWith(p));
  return i < 0 ? [null, -1] : [lines[i].slice(p.length), i];
}

// The receiver: one SEND chunk at buf[off..end). Returns null when more
// bytes are needed, else {used, body, resp}; a chunk that is not message
// |seq| of |msg| ends the process.
function takeSend(buf, off, end, msg, seq, ownUri) {
  const n = end - off;
  if (n < 5) return null;
  if (buf.latin1Slice(off, off + 5) !== "MSRP ") fail("a chunk does not start with \"MSRP \"");
  const hend = buf.indexOf("\r\n\r\n", off, "latin1");
  if (hend < 0 || hend >= end) {
    if (n >= HEAD_MAX) fail("no end of headers in 4096 bytes");
    return null;
  }
  const tid = tidOf(msg.up, seq);
  const lines = buf.latin1Slice(off, hend).split("\r\n");
  if (lines[0] !== `MSRP ${tid} SEND`) fail(`not the SEND expected next (${tid}): ${lines[0]}`);
  const [to, iTo] = header(lines, "To-Path");
  const [from, iFrom] = header(lines, "From-Path");
  const [br] = header(lines, "Byte-Range");
  const [, iCt] = header(lines, "Content-Type");
  if (iTo < 0 || iFrom < iTo || !br || iCt !== lines.length - 1) fail("headers missing or out of order");
  if (to !== ownUri) fail(`To-Path ${to} is not the receiver's URI ${ownUri}`);
  if (br !== `1-${msg.size}/${msg.size}`) fail(`Byte-Range ${br} is not 1-N/N of the size sent`);
  const bodyAt = hend + 4;
  const need = bodyAt - off + msg.size + 9 + TID_LEN + 3;
  if (n < need) return null;
  const e = bodyAt + msg.size;
  if (buf.latin1Slice(e, e + 9 + TID_LEN + 3) !== `\r\n-------${tid}$\r\n`) {
    fail("no end-line where the Byte-Range puts it");
  }
  if (buf.latin1Slice(bodyAt, bodyAt + TID_LEN) !== tid ||
      buf.compare(msg.data, msg.bodyAt + TID_LEN, msg.bodyAt + msg.size, bodyAt + TID_LEN, e) !== 0) {
    fail("the body is not what was sent");
  }
  const first = from.split(" ")[0];
  const resp = Buffer.from(`MSRP ${tid} 200 OK\r\nTo-Path: ${first}\r\nFrom-Path: ${to}\r\n-------${tid}$\r\n`, "latin1");
  return { used: need, body: msg.size, resp };
}

// The sender: the response at buf[off..end). null: more bytes needed;
// else its length. Not a 200 for message |seq|: the process ends.
function take200(buf, off, end, up, seq) {
  const d = buf.indexOf("\r\n-------", off, "latin1");
  if (d < 0 || d >= end) {
    if (end - off >= HEAD_MAX) fail("no end-line in 4096 bytes");
    return null;
  }
  const stop = d + 9 + TID_LEN + 3;
  if (stop > end) return null;
  const tid = tidOf(up, seq);
  if (buf.latin1Slice(off, off + 5 + TID_LEN + 4) !== `MSRP ${tid} 200`) fail(`not a 200 for the oldest unanswered SEND ${tid}`);
  if (buf.latin1Slice(d + 9, stop) !== `${tid}$\r\n`) fail("the response's end-line does not match");
  return stop - off;
}

// ---- the two ends -----------------------------------------------------------

let pc, dc, core, coreServer;
let wicTo = CORE_URI, coreTo = WIC_URI;
const tcpIn = { buf: Buffer.alloc(0) }; // unparsed core stream bytes
let run = null; // the run in progress

function cpuOf(pids) {
  let ticks = 0;
  for (const p of pids) {
    let f;
    try { f = fs.readFileSync(`/proc/${p}/stat`, "latin1"); } catch (e) { continue; }
    const parts = f.slice(f.lastIndexOf(")") + 2).split(" ");
    ticks += Number(parts[11]) + Number(parts[12]);
  }
  return ticks / 100; // CLK_TCK is 100 on Linux
}
// The namespace's UDP counters (/proc/net/snmp is per network namespace):
// datagrams sent (both ends of the association and nothing else use UDP
// here) and those the kernel dropped for a full socket buffer.
function udpCounters() {
  const lines = fs.readFileSync("/proc/net/snmp", "latin1").split("\n").filter((l) => l.startsWith("Udp: "));
  const names = lines[0].split(" "), vals = lines[1].split(" ").map(Number);
  const get = (n) => vals[names.indexOf(n)] || 0;
  return { out: get("OutDatagrams"), drops: get("RcvbufErrors") + get("SndbufErrors") };
}
function ownCpu() {
  const u = process.cpuUsage(); // getrusage(RUSAGE_SELF): every thread
  return (u.user + u.system) / 1e6;
}

// The channel's messages: SENDs (down) or 200s (up), one chunk each.
function onChannelMessage(m) {
  if (!run) return;
  const b = Buffer.isBuffer(m) ? m : Buffer.from(m);
  if (run.up) {
    const used = take200(b, 0, b.length, true, run.answered);
    if (used !== b.length) fail(`a channel message of ${b.length} bytes is not exactly one 200`);
    answered(b.length);
  } else {
    const r = takeSend(b, 0, b.length, run.msg, run.received, WIC_URI);
    if (!r || r.used !== b.length) fail(`a channel message of ${b.length} bytes is not exactly one chunk`);
    received(r.body);
    dc.sendMessageBinary(r.resp);
  }
}

// The core's stream: SENDs (up) or 200s (down).
function onCoreData(d) {
  if (!run) return;
  tcpIn.buf = tcpIn.buf.length ? Buffer.concat([tcpIn.buf, d]) : d;
  const b = tcpIn.buf;
  let off = 0;
  const resps = [];
  while (run) {
    if (run.up) {
      const r = takeSend(b, off, b.length, run.msg, run.received, CORE_URI);
      if (!r) break;
      off += r.used;
      received(r.body);
      resps.push(r.resp);
    } else {
      const used = take200(b, off, b.length, false, run.answered);
      if (used === null) break;
      off += used;
      answered(used);
    }
  }
  tcpIn.buf = b.subarray(off);
  if (tcpIn.buf.length > TCP_READ_STOP) fail("the core's stream holds no chunk end");
  if (resps.length) core.write(resps.length === 1 ? resps[0] : Buffer.concat(resps)); // the 200s of one read together
}

function received(body) {
  run.received++;
  run.recvBytes += body;
}

function answered() {
  run.answered++;
  run.unanswered -= run.msg.data.length;
  if (run.answered === run.sent && run.onDrained) setImmediate(run.onDrained);
  schedulePump();
}

let pumpQueued = false;
function schedulePump() {
  if (!pumpQueued) {
    pumpQueued = true;
    setImmediate(pump);
  }
}

// Sends while the window allows (at most 256 messages per turn, so the
// event loop also reads); the TCP side waits for 'drain' when Node holds
// its writes.
function pump() {
  pumpQueued = false;
  if (!run || run.stopped) return;
  const len = run.msg.data.length;
  for (let k = 0; k < 256; k++) {
    if (run.sent > run.answered && run.unanswered + len > run.windowBytes) return;
    const data = run.msg.stamp(run.sent);
    run.sent++;
    run.unanswered += len;
    if (run.up) {
      // false: libdatachannel buffered it (sent later, in order); the
      // window bounds what it holds. An error throws.
      dc.sendMessageBinary(data);
    } else if (!core.write(Buffer.from(data))) { // Node keeps the buffer: a copy
      core.once("drain", schedulePump);
      return;
    }
  }
  schedulePump();
}

function doRun(dir, size, warmupMs, windowMs, pidsArg, windowBytes) {
  const up = dir === "up";
  const pids = pidsArg === "-" ? [] : pidsArg.split(",").map(Number);
  run = { up, msg: new Msg(up, size, up ? wicTo : coreTo), sent: 0, answered: 0, received: 0,
          recvBytes: 0, unanswered: 0, windowBytes, stopped: false, onDrained: null };
  tcpIn.buf = Buffer.alloc(0);
  const t0 = Date.now();
  schedulePump();
  let w0;
  setTimeout(() => {
    w0 = { t: process.hrtime.bigint(), rx: run.received, bytes: run.recvBytes, srv: cpuOf(pids), own: ownCpu(), udp: udpCounters() };
  }, warmupMs);
  setTimeout(() => {
    const w1 = { t: process.hrtime.bigint(), rx: run.received, bytes: run.recvBytes, srv: cpuOf(pids), own: ownCpu(), udp: udpCounters() };
    run.stopped = true;
    const finish = () => {
      clearTimeout(guard);
      if (run.received !== run.sent) fail(`${run.sent} sent, ${run.received} received`);
      const secs = Number(w1.t - w0.t) / 1e9;
      const msgs = w1.rx - w0.rx;
      const res = {
        dir, size, window_s: secs, msgs, msgs_per_s: msgs / secs,
        mb_per_s: (w1.bytes - w0.bytes) / secs / 1e6,
        server_us_per_msg: msgs ? (w1.srv - w0.srv) * 1e6 / msgs : NaN,
        server_cpu_pct: (w1.srv - w0.srv) / secs * 100,
        load_cpu_pct: (w1.own - w0.own) / secs * 100,
        load_us_per_msg: msgs ? (w1.own - w0.own) * 1e6 / msgs : NaN,
        datagrams_per_msg: msgs ? (w1.udp.out - w0.udp.out) / msgs : NaN,
        udp_drops: w1.udp.drops - w0.udp.drops,
        total_sent: run.sent, wire_bytes_per_msg: run.msg.data.length,
        run_s: (Date.now() - t0) / 1000,
      };
      run = null;
      out("result " + JSON.stringify(res));
    };
    const guard = setTimeout(() => fail(`not drained in 10 s: ${run.sent} sent, ${run.answered} answered, ${run.received} received`), 10000);
    if (run.answered === run.sent) finish();
    else run.onDrained = () => { if (run) finish(); };
  }, warmupMs + windowMs);
}

function sample(dir, size) {
  const up = dir === "up";
  const msg = new Msg(up, size, up ? wicTo : coreTo);
  const send = Buffer.from(msg.stamp(0));
  const r = takeSend(send, 0, send.length, msg, 0, up ? wicTo : coreTo);
  if (!r || r.used !== send.length) fail("sample: the receiver does not take its own SEND");
  out(`sample ${send.toString("hex")} ${r.resp.toString("hex")}`);
}

// ---- set-up ---------------------------------------------------------------

function start() {
  coreServer = net.createServer({ noDelay: true }, (s) => {
    if (core) { s.destroy(); return; } // one connection per context
    core = s;
    core.setNoDelay(true);
    core.on("data", onCoreData);
    core.on("error", (e) => fail(`core socket: ${e.message}`));
    core.on("close", () => { if (run) fail("the server closed the core connection"); });
    if (connectedCheck) connectedCheck();
  });
  coreServer.listen(0, "127.0.0.1", () => {
    out(`uris ${WIC_URI} ${CORE_URI}`);
    out(`core ${coreServer.address().port}`);
    pc = new ndc.PeerConnection("wic", { iceServers: [], bindAddress: "127.0.0.1",
      maxMessageSize: MAX_MESSAGE_SIZE, disableAutoNegotiation: true });
    dc = pc.createDataChannel("chat", { negotiated: true, id: STREAM_ID, protocol: "msrp", ordered: true });
    dc.onOpen(() => { opened = true; if (connectedCheck) connectedCheck(); });
    dc.onMessage(onChannelMessage);
    dc.onClosed(() => { if (run) fail("the channel closed"); });
    pc.onGatheringStateChange((s) => {
      if (s === "complete") out("offer " + JSON.stringify(pc.localDescription().sdp));
    });
    pc.setLocalDescription("offer");
  });
}

let opened = false, connectedCheck = null;
function answer(sdp) {
  pc.setRemoteDescription(sdp, "answer");
  const guard = setTimeout(() => fail(`not connected in 30 s (channel ${opened ? "open" : "closed"}, core ${core ? "up" : "down"})`), 30000);
  connectedCheck = () => {
    if (opened && core) {
      connectedCheck = null;
      clearTimeout(guard);
      out("connected {}");
    }
  };
  connectedCheck();
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const f = line.trim().split(" ");
  if (f[0] === "paths") {
    [wicTo, coreTo] = [f[1], f[2]];
    out("ok");
  } else if (f[0] === "answer") {
    answer(JSON.parse(line.slice(7)));
  } else if (f[0] === "run") {
    doRun(f[1], Number(f[2]), Number(f[3]), Number(f[4]), f[5], Number(f[6]));
  } else if (f[0] === "sample") {
    sample(f[1], Number(f[2]));
  } else if (f[0] === "quit") {
    try { pc.close(); } catch (e) { /* already */ }
    if (core) core.destroy();
    coreServer.close();
    ndc.cleanup();
    process.exit(0);
  } else {
    fail(`unknown command ${f[0]}`);
  }
});
process.stdin.on("end", () => process.exit(0));
start();
