// werift phones through the AGW shim of a running dcmfd (test_agw.py
// starts dcmfd and runs this under in-netns).
//
//   node agw_clients.js API_PORT e2dce|e2e
//
// e2dce: phone -> shim (access) -> shim (core) -> dcmfd's media port; the
//   IMS AS side is played as the IMS-ALG would: reserve the shim context,
//   create the Nmf_MRM context with the shim's core address as the remote,
//   set the shim's core remote to dcmfd's media port, and answer the phone
//   with the shim's access address. The phone fetches / over the bootstrap
//   channel, and the shim's counters must equal the datagrams the phone
//   sent to it and received from it.
// e2e: two phones, each with its own shim context, the two contexts' core
//   sides pointing at each other; DTLS and SCTP run end to end between the
//   phones (dcmfd terminates nothing) and both exchange messages.
//
// Prints "ok - name" / "not ok - name: why", "# ..." figures, and exits 1
// on failure.
"use strict";
const path = require("path");
const fs = require("fs");
const dgram = require("dgram");
const crypto = require("crypto");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const werift = require("werift");
const { parseOffer, createRequest, answerSdp, api } = require("./ims_as");

const PORT = Number(process.argv[2]);
const SCENARIO = process.argv[3];
const WWW = path.join(__dirname, "..", "..", "bootstrap", "www");
const AGW = "/agw/v1/contexts";
const MRM = "/nmf-mrm/v1/contexts";
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const timeout = (p, ms, what) =>
  Promise.race([p, wait(ms).then(() => { throw new Error(`timed out: ${what}`); })]);
function check(cond, msg) { if (!cond) throw new Error(msg); }

// ---- datagram accounting ---------------------------------------------------
// Every datagram werift sends to, or receives from, a watched shim port
// is counted here, below werift, on Node's dgram sockets.
const watched = new Map(); // shim access port -> {sent, sentBytes, recv, recvBytes}
function watch(port) {
  const c = { sent: 0, sentBytes: 0, recv: 0, recvBytes: 0 };
  watched.set(port, c);
  return c;
}
const origSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (msg, ...args) {
  const c = typeof args[0] === "number" ? watched.get(args[0]) : undefined;
  if (c && Buffer.isBuffer(msg)) { c.sent++; c.sentBytes += msg.length; }
  return origSend.call(this, msg, ...args);
};
const origEmit = dgram.Socket.prototype.emit;
dgram.Socket.prototype.emit = function (ev, ...args) {
  if (ev === "message") {
    const c = watched.get(args[1] && args[1].port);
    if (c) { c.recv++; c.recvBytes += args[0].length; }
  }
  return origEmit.call(this, ev, ...args);
};

// ---- helpers -----------------------------------------------------------------
function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

// What the IMS-ALG does to SDP crossing the AGW: the m= port, c= and the
// one UDP host candidate become the AGW's address toward the receiver.
function viaShim(sdp, ip, port) {
  let cand = false;
  return sdp.split("\r\n").map((l) => {
    if (l.startsWith("m=application ")) return l.replace(/^m=application \d+/, `m=application ${port}`);
    if (l.startsWith("c=IN IP4 ")) return `c=IN IP4 ${ip}`;
    if (l.startsWith("a=candidate:")) {
      const f = l.split(" ");
      if (cand || f[2].toLowerCase() !== "udp") return null;
      cand = true;
      f[4] = ip; f[5] = String(port);
      return f.join(" ");
    }
    return l;
  }).filter((l) => l !== null).join("\r\n");
}

function newPhone() {
  const pc = new werift.RTCPeerConnection({ iceServers: [], iceUseIpv6: false,
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceFilterCandidatePair: (p) => p.localCandidate.host === "127.0.0.1" });
  const ch = pc.createDataChannel("bootstrap", { negotiated: true, id: 0, protocol: "http" });
  const messages = [];
  let waiter = null;
  ch.onMessage.subscribe((m) => { messages.push(Buffer.from(m)); if (waiter) waiter(); });
  const opened = new Promise((r) => ch.stateChanged.subscribe((s) => s === "open" && r()));
  // Resolves with all bytes once |pred| holds for what arrived so far.
  const until = (pred) => new Promise((resolve) => {
    const test = () => { const all = Buffer.concat(messages); if (pred(all)) { waiter = null; resolve(all); } };
    waiter = test;
    test();
  });
  return { pc, ch, messages, opened, until };
}

async function agw(method, p, body) {
  const type = method === "PATCH" ? "application/json-patch+json" : undefined;
  const r = await api(PORT, method, p, body, type);
  return r;
}

function local(ctx, i) { return ctx.terminations[i].local; }

async function stats(id) {
  const r = await agw("GET", `${AGW}/${id}`);
  check(r.status === 200, `GET shim context ${r.status}`);
  return r.body;
}

async function metric(name) {
  const r = await api(PORT, "GET", "/metrics");
  const line = r.body.split("\n").find((l) => l.startsWith(name + " "));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

// Waits until the phones' counts are quiet, then compares them with the
// shim legs' counters: everything a phone sent was relayed, everything
// relayed toward it arrived, nothing else was dropped (but, with
// |allowNotLatched|, datagrams the peer's leg sent before this leg had
// latched its phone). Counts may move between the reads (a consent
// check), so a stable snapshot is retried a few times. |extra| may add a
// check over all the legs' statistics. Returns them.
async function matchCounters(legs, allowNotLatched, extra) {
  let last = [];
  for (let i = 0; i < 10; i++) {
    await wait(300);
    const before = JSON.stringify(legs.map((l) => l.c));
    const sts = [];
    for (const l of legs) sts.push((await stats(l.id)).statistics);
    if (JSON.stringify(legs.map((l) => l.c)) !== before) continue;
    let good = true;
    last = legs.map(({ c, label }, k) => {
      const st = sts[k], d = st.dropped;
      const drops = d.access.unknownSource + d.access.noRemote + d.access.sendFailed +
        d.core.unknownSource + d.core.sendFailed + (allowNotLatched ? 0 : d.core.notLatched);
      good = good && st.accessToCore.packets === c.sent && st.accessToCore.bytes === c.sentBytes &&
        st.coreToAccess.packets === c.recv && st.coreToAccess.bytes === c.recvBytes && drops === 0;
      return `${label}: phone sent ${c.sent} (${c.sentBytes} B), received ${c.recv} (${c.recvBytes} B); ` +
        `shim access->core ${st.accessToCore.packets} (${st.accessToCore.bytes} B), ` +
        `core->access ${st.coreToAccess.packets} (${st.coreToAccess.bytes} B), ` +
        `dropped ${drops}, not latched ${d.core.notLatched}`;
    });
    if (good && (!extra || extra(sts))) {
      for (const l of last) console.log("# " + l);
      return sts;
    }
  }
  throw new Error("counters differ: " + last.join("; "));
}

// ---- e2DCe -----------------------------------------------------------------
async function e2dce() {
  const phone = newPhone();
  try {
    await phone.pc.setLocalDescription(await phone.pc.createOffer());
    const offer = parseOffer(only127(phone.pc.localDescription.sdp));
    check(offer.candidate, "the phone offered no 127.0.0.1 candidate");
    // 1. The ALG reserves the shim terminations (core remote not known yet).
    const shim = await agw("POST", AGW, { terminations: [
      { terminationId: "access", latching: "signalled-only",
        remote: { ipv4Addr: offer.candidate.ip, port: offer.candidate.port } },
      { terminationId: "core" }] });
    check(shim.status === 201, `shim POST ${shim.status} ${JSON.stringify(shim.body)}`);
    const access = local(shim.body, 0), core = local(shim.body, 1);
    const counts = watch(access.port);
    // 2. The IMS AS creates the MF context: its remote is the shim's core side.
    const mrm = await api(PORT, "POST", MRM,
      createRequest({ ...offer, candidate: { ip: core.ipv4Addr, port: core.port } }));
    check(mrm.status === 201, `Nmf_MRM POST ${mrm.status} ${JSON.stringify(mrm.body)}`);
    const mb = mrm.body.terminations[0].medias[0].localMbEndpoint;
    // 3. The ALG points the shim's core side at the MF's media port.
    const patched = await agw("PATCH", `${AGW}/${shim.body.contextId}`, [
      { op: "add", path: "/terminations/1/remote", value: { ipv4Addr: mb.ip.ipv4Addr, port: mb.portNumber } }]);
    check(patched.status === 200, `shim PATCH ${patched.status}`);
    // 4. The phone's answer carries the shim's access address.
    await phone.pc.setRemoteDescription({ type: "answer",
      sdp: viaShim(answerSdp(mrm.body, offer), access.ipv4Addr, access.port) });
    await timeout(phone.opened, 10000, "bootstrap channel open through the shim");
    phone.ch.send("GET / HTTP/1.1\r\nHost: \r\n\r\n");
    const index = fs.readFileSync(path.join(WWW, "index.html"));
    const all = await timeout(phone.until((b) => {
      const end = b.indexOf("\r\n\r\n");
      const m = end >= 0 && /content-length:\s*(\d+)/i.exec(b.slice(0, end).toString());
      return m && b.length >= end + 4 + Number(m[1]);
    }), 10000, "response to GET /");
    const end = all.indexOf("\r\n\r\n");
    check(all.slice(0, 12).toString() === "HTTP/1.1 200", `status line ${all.slice(0, 20)}`);
    check(all.slice(end + 4).equals(index), "body differs from bootstrap/www/index.html");
    console.log("ok - e2DCe: werift phone -> shim -> dcmfd: GET / returns index.html");
    const [st] = await matchCounters([{ id: shim.body.contextId, c: counts, label: "e2DCe" }], false);
    const got = (await stats(shim.body.contextId)).terminations[0].latched;
    check(got && got.port === offer.candidate.port, `latched ${JSON.stringify(got)}`);
    console.log("ok - e2DCe: shim counters equal the datagrams the phone sent and received");
    check(await metric('dcmf_dtls_handshakes_total{result="ok"}') === 1, "dcmfd did not count one DTLS handshake");
    console.log(`# e2DCe figures: ${st.accessToCore.packets} datagrams up, ${st.coreToAccess.packets} down`);
    phone.pc.close();
    await api(PORT, "DELETE", `${MRM}/${mrm.body.contextId}`);
    check((await agw("DELETE", `${AGW}/${shim.body.contextId}`)).status === 204, "shim DELETE");
  } finally { phone.pc.close(); }
}

// ---- e2e -----------------------------------------------------------------
async function e2e() {
  const a = newPhone(), b = newPhone();
  try {
    await a.pc.setLocalDescription(await a.pc.createOffer());
    const offerSdp = only127(a.pc.localDescription.sdp);
    const ca = parseOffer(offerSdp).candidate;
    // Phone A's leg: latching only from A's signalled address.
    const sa = await agw("POST", AGW, { terminations: [
      { terminationId: "access", latching: "signalled-only", remote: { ipv4Addr: ca.ip, port: ca.port } },
      { terminationId: "core" }] });
    check(sa.status === 201, `SA POST ${sa.status}`);
    // Phone B's leg: its core side faces A's leg.
    const sb = await agw("POST", AGW, { terminations: [
      { terminationId: "access" },
      { terminationId: "core", remote: local(sa.body, 1) }] });
    check(sb.status === 201, `SB POST ${sb.status} ${JSON.stringify(sb.body)}`);
    const pa = await agw("PATCH", `${AGW}/${sa.body.contextId}`, [
      { op: "add", path: "/terminations/1/remote", value: local(sb.body, 1) }]);
    check(pa.status === 200, `SA PATCH ${pa.status}`);
    const aAccess = local(sa.body, 0), bAccess = local(sb.body, 0);
    const ka = watch(aAccess.port), kb = watch(bAccess.port);
    // B gets A's offer with B's own shim leg as the address.
    await b.pc.setRemoteDescription({ type: "offer", sdp: viaShim(offerSdp, bAccess.ipv4Addr, bAccess.port) });
    await b.pc.setLocalDescription(await b.pc.createAnswer());
    const answerSdp = only127(b.pc.localDescription.sdp);
    const cb = parseOffer(answerSdp).candidate;
    // Now B's address is known: B's leg latches only on it.
    const pb = await agw("PATCH", `${AGW}/${sb.body.contextId}`, [
      { op: "add", path: "/terminations/0/remote", value: { ipv4Addr: cb.ip, port: cb.port } },
      { op: "replace", path: "/terminations/0/latching", value: "signalled-only" }]);
    check(pb.status === 200, `SB PATCH ${pb.status} ${JSON.stringify(pb.body)}`);
    await a.pc.setRemoteDescription({ type: "answer", sdp: viaShim(answerSdp, aAccess.ipv4Addr, aAccess.port) });
    await timeout(Promise.all([a.opened, b.opened]), 15000, "channels open end to end");
    for (let i = 0; i < 150 && (a.pc.connectionState !== "connected" || b.pc.connectionState !== "connected"); i++) await wait(20);
    check(a.pc.connectionState === "connected" && b.pc.connectionState === "connected",
      `connection ${a.pc.connectionState}/${b.pc.connectionState}`);
    console.log("ok - e2e: DTLS and SCTP up end to end through two shim legs");
    // Messages both ways: 50 small ones each way, then 64 KiB from A to B.
    b.ch.onMessage.subscribe((m) => { const s = Buffer.from(m).toString(); if (s.startsWith("ping ")) b.ch.send("pong " + s.slice(5)); });
    for (let i = 0; i < 50; i++) a.ch.send(`ping ${i};`);
    const pongs = await timeout(a.until((buf) => buf.toString().split("pong ").length - 1 >= 50), 10000, "50 pongs");
    check(pongs.toString() === Array.from({ length: 50 }, (_, i) => `pong ${i};`).join(""), "pongs out of order or altered");
    const big = crypto.randomBytes(65536);
    const already = Buffer.concat(b.messages).length;
    a.ch.send(big);
    const gotB = await timeout(b.until((buf) => buf.length >= already + big.length), 10000, "64 KiB message");
    check(gotB.slice(already).equals(big), "64 KiB message altered");
    console.log("ok - e2e: 50 messages each way and 64 KiB arrive intact");
    // dcmfd holds no DTLS state for this: the phones hold the keys.
    const ok = await metric('dcmf_dtls_handshakes_total{result="ok"}');
    const failed = await metric('dcmf_dtls_handshakes_total{result="failed"}');
    check(ok === 0 && failed === 0, `dcmfd counted DTLS handshakes ok=${ok} failed=${failed}`);
    check(await metric("dcmf_media_sessions") === 0, "dcmfd has media sessions");
    console.log("ok - e2e: dcmfd ran no DTLS handshake (dcmf_dtls_handshakes_total 0)");
    // What one leg sent core-ward the other received or dropped before
    // its latch (none is lost on loopback).
    const agree = ([x, y]) =>
      x.accessToCore.packets === y.coreToAccess.packets + y.dropped.core.notLatched &&
      y.accessToCore.packets === x.coreToAccess.packets + x.dropped.core.notLatched;
    const [sta, stb] = await matchCounters([
      { id: sa.body.contextId, c: ka, label: "e2e leg A" },
      { id: sb.body.contextId, c: kb, label: "e2e leg B" }], true, agree);
    console.log(`# e2e figures: leg A ${sta.accessToCore.packets} up/${sta.coreToAccess.packets} down, ` +
      `leg B ${stb.accessToCore.packets} up/${stb.coreToAccess.packets} down, ` +
      `dropped before latching ${sta.dropped.core.notLatched}+${stb.dropped.core.notLatched}`);
    console.log("ok - e2e: each leg's counters equal its phone's datagrams, and the legs agree");
    for (const id of [sa.body.contextId, sb.body.contextId]) {
      check((await agw("DELETE", `${AGW}/${id}`)).status === 204, "shim DELETE");
    }
  } finally { a.pc.close(); b.pc.close(); }
}

(async () => {
  const run = { e2dce, e2e }[SCENARIO];
  if (!run) { console.log(`not ok - unknown scenario ${SCENARIO}`); process.exit(1); }
  try {
    await timeout(run(), 45000, SCENARIO);
    process.exit(0);
  } catch (e) {
    console.log(`not ok - ${SCENARIO}: ${e.message}`);
    process.exit(1);
  }
})();
