// Janus and dcmfd side by side (issue 10): the same node-datachannel
// phone, with the same parameters, against Janus 1.1.2 (Debian package,
// echotest plugin) and against dcmfd in UDP-proxy mode toward a C UDP
// echo server (tests/bench/udp_echo.c), alternating the two servers.
//
//   node tests/bench/janus_compare.js BUILD_DIR     (as root)
//
// BUILD_DIR holds dcmf/dcmfd and tests/udp_echo (a release build, e.g.
// build-release). The script puts itself in a network namespace of its
// own (unshare -n) with a veth pair carrying three addresses: the server's
// media (SERVER_IP), the phone's (PHONE_IP) and the echo server's
// (ECHO_IP). Janus gathers no loopback candidates, hence the veth. Every
// server and the echo server are started here and stopped by pid.
//
// Phases, each run against a fresh server, the two servers alternating
// (Janus first in odd rounds, dcmfd first in even ones):
//   setup       SEQ_COUNT set-ups one after another: set-ups/s (set-up
//               and tear-down), p50 of offer-to-channel-open, server CPU
//   concurrent  CONC_COUNT set-ups started at once: server CPU per set-up
//               (set-up and tear-down)
//   echo        per SIZES x WINDOWS, one session, ECHO_COUNT messages,
//               WINDOW in flight: messages/s, server and client CPU per
//               message, UDP datagrams per echoed message
//   idle        per IDLE_COUNTS, that many sessions open and idle: RSS
//               per session, RSS after they all end against before
//
// The tables go to stdout (Markdown), progress and per-run lines to
// stderr. Server CPU is utime + stime from /proc summed over the process
// tree (proctree.js: dcmfd's worker processes, Janus's threads). The echo
// server is not part of dcmfd's figure; its own CPU is printed apart.
//
// UDP datagrams per echoed message: the namespace's Udp OutDatagrams
// (/proc/net/snmp, which counts per network namespace) over the run,
// minus the datagrams the echo server received and sent (it reports its
// own counts), divided by the messages echoed. What is left is the
// phone <-> server path, both directions, consent checks included: the
// same path for Janus, which echoes itself.
//
// Environment (defaults in brackets; a smoke run: ROUNDS=1 SEQ_COUNT=10
// CONC_COUNT=20 ECHO_COUNT=2000 IDLE_COUNTS=20,50):
//   ROUNDS [5]  SEQ_COUNT [100]  CONC_COUNT [100]  ECHO_COUNT [50000]
//   SIZES [100,1024]  WINDOWS [128,512]  IDLE_COUNTS [100,500]
//   IDLE_MS [2000]: how long the idle sessions stay idle before RSS is read
//   AFTER_MS [3000]: RSS "after" is read this long after the last release
//   PHASES [setup,concurrent,echo,idle]  SERVERS [janus,dcmfd]
//   SERVER_CPUS: taskset CPU list for both servers [not pinned]
//   DCMFD_ARGS [--hello-rate 0 --stun-rate 0]: more dcmfd options
//   JANUS_ICE_LITE [1]: Janus in ICE-lite mode like dcmfd (0: full ICE)
//   JANUS_EVENT_LOOPS [0]: Janus's event_loops (0: a thread per handle)
//   JANUS_LOG, DCMFD_LOG: append the server's output to this file
//   WARMUP [20]: set-ups and tear-downs before the measured ones of the
//   setup and concurrent phases (a fresh server's one-time costs)
//   PROFILE: perf records the measured sequential set-ups into this file
//   (needs perf; see profileStart); PROFILE_FREQ [1000]
//   TIMEOUT_MS [30000]: bound on any one set-up, echo run or wait
//   DEBUG [0]: 1 prints each offer and answer, the phone's state changes
//   and each echo run's datagram counts (to stderr)
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const http = require("http");
const http2 = require("http2");
const readline = require("readline");
const { spawn, spawnSync, execFileSync } = require("child_process");

const env = (k, d) => (process.env[k] === undefined || process.env[k] === "" ? d : process.env[k]);
const list = (k, d) => env(k, d).split(",").map((s) => s.trim()).filter((s) => s);
const SERVER_IP = "10.77.0.1";
const PHONE_IP = "10.77.0.2";
const ECHO_IP = "10.77.0.3";
const NETNS_MARK = "DCMF_JANUS_COMPARE_NETNS";

// ---- into a network namespace of our own ----------------------------------

if (!process.env[NETNS_MARK]) {
  if (process.getuid() !== 0) {
    console.error("janus_compare.js: needs root (unshare -n and a veth pair)");
    process.exit(2);
  }
  // The veth pair is only there to carry the addresses on an interface
  // that is up and not loopback; traffic between local addresses still
  // goes through the namespace's loopback device.
  const setup = [
    "set -e",
    "ip link set lo up",
    "ip link add dcmfb0 type veth peer name dcmfb1",
    "ip link set dcmfb0 up",
    "ip link set dcmfb1 up",
    `ip addr add ${SERVER_IP}/24 dev dcmfb0`,
    `ip addr add ${PHONE_IP}/24 dev dcmfb0`,
    `ip addr add ${ECHO_IP}/24 dev dcmfb0`,
    // 500 sessions take more descriptors than a default 1024 (phone and
    // server both); children inherit this.
    "ulimit -n 65536 2>/dev/null || true",
    'exec "$0" "$@"',
  ].join("\n");
  const r = spawnSync("unshare", ["-n", "sh", "-c", setup, process.execPath, __filename,
    ...process.argv.slice(2)], { stdio: "inherit", env: { ...process.env, [NETNS_MARK]: "1" } });
  if (r.error) console.error(`janus_compare.js: unshare: ${r.error.message}`);
  process.exit(r.status === null ? 1 : r.status);
}

// ---- settings ---------------------------------------------------------------

module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
module.paths.unshift(path.join(__dirname, "..", "integration"));
const ndc = require("node-datachannel");
const { parseOffer, createRequest, answerSdp } = require("ims_as");
const { cpuTicks, rssKiB, treePids } = require("./proctree");

const BUILD = path.resolve(process.argv[2] || "build-release");
const DCMFD = path.join(BUILD, "dcmf", "dcmfd");
const UDP_ECHO = path.join(BUILD, "tests", "udp_echo");
const ROUNDS = Number(env("ROUNDS", "5"));
const SEQ_COUNT = Number(env("SEQ_COUNT", "100"));
const CONC_COUNT = Number(env("CONC_COUNT", "100"));
const WARMUP = Number(env("WARMUP", "20"));
const PROFILE = env("PROFILE", "");
const PROFILE_FREQ = Number(env("PROFILE_FREQ", "1000"));
const ECHO_COUNT = Number(env("ECHO_COUNT", "50000"));
const SIZES = list("SIZES", "100,1024").map(Number);
const WINDOWS = list("WINDOWS", "128,512").map(Number);
const IDLE_COUNTS = list("IDLE_COUNTS", "100,500").map(Number);
const IDLE_MS = Number(env("IDLE_MS", "2000"));
const AFTER_MS = Number(env("AFTER_MS", "3000"));
const PHASES = list("PHASES", "setup,concurrent,echo,idle");
const SERVERS = list("SERVERS", "janus,dcmfd");
const SERVER_CPUS = env("SERVER_CPUS", "");
const DCMFD_ARGS = env("DCMFD_ARGS", "--hello-rate 0 --stun-rate 0").split(/\s+/).filter((a) => a);
const JANUS_ICE_LITE = env("JANUS_ICE_LITE", "1") !== "0";
const JANUS_EVENT_LOOPS = Number(env("JANUS_EVENT_LOOPS", "0"));
const TIMEOUT_MS = Number(env("TIMEOUT_MS", "30000"));
const DEBUG = env("DEBUG", "0") !== "0";
const DCMFD_PORT = 18971; // control API, on 127.0.0.1 in the namespace
const JANUS_PORT = 18972; // Janus's HTTP transport, on 127.0.0.1
const TICK_HZ = 100; // /proc/PID/stat clock ticks per second (USER_HZ)
const BATCH = 50; // sessions set up at once when filling the idle phase

const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error("#", ...a);

function timeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => {
    t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  })]).finally(() => clearTimeout(t));
}

// Polls |cond| every |every| ms until it is truthy or |ms| pass.
async function until(cond, ms, every = 50) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v || Date.now() >= end) return v;
    await wait(every);
  }
}

// A server keeps working after the last API answer (Janus hangs up a
// PeerConnection on its own threads, dcmfd's workers free what DELETE
// released): wait, bounded, until its CPU time stops moving for two
// readings 100 ms apart, so that this work falls inside the measurement.
async function settle(pid) {
  let last = cpuTicks(pid), still = 0;
  const end = Date.now() + 3000;
  while (still < 2 && Date.now() < end) {
    await wait(100);
    const now = cpuTicks(pid);
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

// The namespace's UDP counters (RFC 4113 names, as /proc/net/snmp has them).
function udpCounters() {
  const lines = fs.readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp: "));
  const names = lines[0].split(/\s+/).slice(1);
  const vals = lines[1].split(/\s+/).slice(1).map(Number);
  const o = {};
  names.forEach((n, i) => { o[n] = vals[i]; });
  return o;
}

// ---- processes we start -----------------------------------------------------

function openLog(file) { return file ? fs.openSync(file, "a") : "ignore"; }

// Every process started here, so that an exit on an error still stops
// them (by pid).
const live = new Set();
process.on("exit", () => { for (const p of live) try { p.kill("SIGKILL"); } catch (e) { /* gone */ } });

function track(proc) {
  live.add(proc);
  proc.exited = new Promise((r) => proc.on("exit", () => { live.delete(proc); r(); }));
  return proc;
}

// setpriv's parent-death signal covers what the exit handler cannot: an
// abort inside the client's native code (node-datachannel throws from C++
// when a channel closes under a send) ends this process without "exit".
function startProc(cmd, args, logFile) {
  const pinned = SERVER_CPUS ? ["taskset", "-c", SERVER_CPUS, cmd, ...args] : [cmd, ...args];
  const out = openLog(logFile);
  return track(spawn("setpriv", ["--pdeathsig", "KILL", ...pinned], { stdio: ["ignore", out, out] }));
}

// SIGTERM by pid; SIGKILL if it has not exited within |ms|.
async function stopProc(proc, ms = 10000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  try {
    await timeout(proc.exited, ms, "exit after SIGTERM");
  } catch (e) {
    log(`pid ${proc.pid} ignored SIGTERM for ${ms} ms: SIGKILL`);
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

// The C echo server; counts() asks it for the datagrams it received and sent.
async function startEcho() {
  const proc = track(spawn(UDP_ECHO, [ECHO_IP, "0"], { stdio: ["pipe", "pipe", "inherit"] }));
  const lines = [];
  const waiters = [];
  readline.createInterface({ input: proc.stdout }).on("line", (l) => {
    if (waiters.length) waiters.shift()(l); else lines.push(l);
  });
  const next = () => timeout(new Promise((r) => (lines.length ? r(lines.shift()) : waiters.push(r))),
    5000, "a line from udp_echo");
  const port = Number(await next());
  return {
    proc, port,
    async counts() {
      proc.stdin.write("\n");
      const [rx, tx] = (await next()).split(" ").map(Number);
      return { rx, tx };
    },
    async stop() { proc.stdin.end(); await timeout(proc.exited, 5000, "udp_echo to exit"); },
  };
}

// ---- the two servers --------------------------------------------------------

// dcmfd: one context per phone in UDP-proxy mode, the phone's DCEP channel
// on stream 1000 relayed to the echo server. Control over one h2c session.
class Dcmfd {
  constructor() {
    this.name = "dcmfd";
    this.channel = { negotiated: true, id: 1000, protocol: "bench" };
  }

  async start() {
    this.echo = await startEcho();
    this.proc = startProc(DCMFD, ["--control", `127.0.0.1:${DCMFD_PORT}`, "--media-bind", SERVER_IP,
      "--ports", "40000-41999", "--log-level", "warn", ...DCMFD_ARGS], process.env.DCMFD_LOG);
    this.pid = this.proc.pid;
    const up = await until(async () => {
      if (this.proc.exitCode !== null) return true;
      try {
        if (!this.h2 || this.h2.destroyed) this.h2 = await this.connect();
        return (await this.req("GET", "/healthz")).status === 200;
      } catch (e) { this.h2 = null; return false; }
    }, 10000, 50);
    if (!up || this.proc.exitCode !== null) throw new Error("dcmfd did not come up (DCMFD_LOG=file shows why)");
  }

  connect() {
    return new Promise((resolve, reject) => {
      const s = http2.connect(`http://127.0.0.1:${DCMFD_PORT}`);
      s.once("connect", () => resolve(s));
      s.once("error", reject);
    });
  }

  req(method, p, body) {
    return new Promise((resolve, reject) => {
      const headers = { ":method": method, ":path": p };
      if (body) headers["content-type"] = "application/json";
      const r = this.h2.request(headers);
      let status;
      const chunks = [];
      r.on("response", (h) => { status = h[":status"]; });
      r.on("data", (c) => chunks.push(c));
      r.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let parsed = text;
        try { parsed = JSON.parse(text); } catch (e) { /* not JSON */ }
        resolve({ status, body: parsed });
      });
      r.on("error", reject);
      r.end(body ? JSON.stringify(body) : undefined);
    });
  }

  // The phone's offer in, the SDP answer out; close() releases the context.
  async offer(sdp) {
    const offer = parseOffer(sdp);
    const cand = sdp.split(/\r?\n/).filter((l) => l.startsWith("a=candidate:")).map((l) => l.split(" "))
      .find((f) => f[2].toLowerCase() === "udp" && f[4] === PHONE_IP);
    if (!cand) throw new Error("the phone's offer has no candidate on PHONE_IP");
    offer.candidate = { ip: cand[4], port: Number(cand[5]) };
    const req = createRequest(offer, { streams: { 1000: { streamId: 1000, subprotocol: "bench", order: true } } });
    const dc = req.terminations[0].medias[0].dcMedia;
    dc.mediaProxyConfig = "UDP";
    dc.remoteMdc2Endpoint = { ip: { ipv4Addr: ECHO_IP }, transport: "UDP", portNumber: this.echo.port };
    const created = await this.req("POST", "/nmf-mrm/v1/contexts", req);
    if (created.status !== 201) throw new Error(`dcmfd create: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.contextId;
    return {
      answer: answerSdp(created.body, offer),
      close: async () => {
        const r = await this.req("DELETE", `/nmf-mrm/v1/contexts/${id}`);
        if (r.status !== 204) throw new Error(`dcmfd delete: ${r.status}`);
      },
    };
  }

  // The echo server's datagrams: not the phone <-> server path.
  async sideDatagrams() { const c = await this.echo.counts(); return c.rx + c.tx; }
  echoTicks() { return cpuTicks(this.echo.proc.pid); }

  async stop() {
    if (this.h2) this.h2.close();
    await stopProc(this.proc);
    await this.echo.stop();
  }
}

// Janus 1.1.2: a generated configuration folder with the HTTP transport
// and the echotest plugin only; ICE restricted to SERVER_IP.
class Janus {
  constructor() {
    this.name = "janus";
    this.channel = { protocol: "bench" };
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    this.tx = 0;
  }

  writeConfig() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcmf-janus-"));
    const lib = "/usr/lib/x86_64-linux-gnu/janus";
    const found = [`${lib}/plugins/libjanus_echotest.so`, `${lib}/transports/libjanus_http.so`];
    for (const f of found) {
      if (!fs.existsSync(f)) throw new Error(`${f} is missing: apt-get install janus (docs/benchmarks.md)`);
    }
    // Folders holding only what is wanted: Janus loads every plugin and
    // transport it finds in its folders.
    for (const sub of ["plugins", "transports", "events", "loggers"]) fs.mkdirSync(path.join(dir, sub));
    fs.symlinkSync(found[0], path.join(dir, "plugins", "libjanus_echotest.so"));
    fs.symlinkSync(found[1], path.join(dir, "transports", "libjanus_http.so"));
    fs.writeFileSync(path.join(dir, "janus.jcfg"), `general: {
  configs_folder = "${dir}"
  plugins_folder = "${dir}/plugins"
  transports_folder = "${dir}/transports"
  events_folder = "${dir}/events"
  loggers_folder = "${dir}/loggers"
  interface = "${SERVER_IP}"
  debug_level = 3
  session_timeout = 0
${JANUS_EVENT_LOOPS > 0 ? `  event_loops = ${JANUS_EVENT_LOOPS}\n` : ""}}
certificates: {
}
media: {
  ipv6 = false
  rtp_port_range = "20000-29999"
}
nat: {
  ice_lite = ${JANUS_ICE_LITE}
  ice_tcp = false
  full_trickle = false
  ice_enforce_list = "${SERVER_IP}"
  ignore_mdns = true
}
plugins: {
}
transports: {
}
events: {
  broadcast = false
}
`);
    fs.writeFileSync(path.join(dir, "janus.transport.http.jcfg"), `general: {
  json = "compact"
  base_path = "/janus"
  http = true
  port = ${JANUS_PORT}
  ip = "127.0.0.1"
  https = false
}
admin: {
  admin_http = false
}
`);
    fs.writeFileSync(path.join(dir, "janus.plugin.echotest.jcfg"), "general: {\n  events = false\n}\n");
    return dir;
  }

  async start() {
    this.dir = this.writeConfig();
    this.proc = startProc("janus", ["-C", path.join(this.dir, "janus.jcfg"), "-F", this.dir, "-o"],
      process.env.JANUS_LOG);
    this.pid = this.proc.pid;
    const up = await until(async () => {
      if (this.proc.exitCode !== null) return true;
      try { return (await this.get("/janus/info")).janus === "server_info"; } catch (e) { return false; }
    }, 10000, 50);
    if (!up || this.proc.exitCode !== null) throw new Error("janus did not come up (JANUS_LOG=file shows why)");
  }

  http(method, p, body) {
    return new Promise((resolve, reject) => {
      const data = body ? Buffer.from(JSON.stringify({ ...body, transaction: `t${++this.tx}` })) : null;
      const r = http.request({ host: "127.0.0.1", port: JANUS_PORT, method, path: p, agent: this.agent,
        headers: data ? { "content-type": "application/json", "content-length": data.length } : {} }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          try { resolve(JSON.parse(Buffer.concat(chunks).toString())); } catch (e) { reject(e); }
        });
      });
      r.on("error", reject);
      r.end(data || undefined);
    });
  }

  get(p) { return this.http("GET", p); }
  post(p, body) { return this.http("POST", p, body); }

  // A Janus session with an echotest handle; the answer comes as an event
  // on the session's long poll. close() destroys the session (and with it
  // the handle and its PeerConnection).
  async offer(sdp) {
    const s = await this.post("/janus", { janus: "create" });
    if (s.janus !== "success") throw new Error(`janus create: ${JSON.stringify(s)}`);
    const sid = s.data.id;
    const h = await this.post(`/janus/${sid}`, { janus: "attach", plugin: "janus.plugin.echotest" });
    if (h.janus !== "success") throw new Error(`janus attach: ${JSON.stringify(h)}`);
    const m = await this.post(`/janus/${sid}/${h.data.id}`, { janus: "message",
      body: { audio: false, video: false }, jsep: { type: "offer", sdp, trickle: false } });
    if (m.janus !== "ack") throw new Error(`janus message: ${JSON.stringify(m)}`);
    let answer = null;
    const end = Date.now() + TIMEOUT_MS;
    while (!answer && Date.now() < end) {
      const ev = await this.get(`/janus/${sid}?maxev=1`);
      for (const e of Array.isArray(ev) ? ev : [ev]) {
        if (e.jsep && e.jsep.type === "answer") answer = e.jsep.sdp;
        const pd = e.plugindata && e.plugindata.data;
        if (pd && pd.error) throw new Error(`janus echotest: ${pd.error}`);
      }
    }
    if (!answer) throw new Error("janus sent no answer");
    return {
      answer,
      close: async () => {
        const r = await this.post(`/janus/${sid}`, { janus: "destroy" });
        if (r.janus !== "success") throw new Error(`janus destroy: ${JSON.stringify(r)}`);
      },
    };
  }

  async sideDatagrams() { return 0; } // Janus echoes itself: no second hop
  echoTicks() { return 0; }

  async stop() {
    await stopProc(this.proc);
    this.agent.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- the phone (node-datachannel), the same for both -------------------------

// One PeerConnection with one data channel ("bench"), the offer with its
// candidate on PHONE_IP, the server's answer; resolves once the channel
// is open. |ms| is the time from creating the PeerConnection to the open
// channel.
async function phone(server) {
  const t0 = process.hrtime.bigint();
  const pc = new ndc.PeerConnection("bench", { iceServers: [], bindAddress: PHONE_IP,
    portRangeBegin: 50000, portRangeEnd: 59999, disableAutoNegotiation: true });
  let sig = null;
  try {
    // The channel as each server expects it (the per-message path is
    // the same): dcmfd relays the streams of its context's stream map
    // (from 1000 up in UDP-proxy mode) as negotiated channels, the way a
    // DCMTSI phone gets application channels through SDP; Janus serves
    // channels opened with DCEP, with the id the library picks.
    const ch = pc.createDataChannel("bench", server.channel);
    if (DEBUG) {
      pc.onStateChange((st) => log(`phone state ${st}`));
      pc.onIceStateChange((st) => log(`phone ICE ${st}`));
    }
    const opened = new Promise((r) => ch.onOpen(() => r()));
    const gathered = new Promise((r) => pc.onGatheringStateChange((s) => s === "complete" && r()));
    pc.setLocalDescription("offer");
    await timeout(gathered, TIMEOUT_MS, "the phone to gather");
    sig = await server.offer(pc.localDescription().sdp);
    if (DEBUG) log(`offer:\n${pc.localDescription().sdp}\nanswer:\n${sig.answer}`);
    pc.setRemoteDescription(sig.answer, "answer");
    await timeout(opened, TIMEOUT_MS, "the channel to open");
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return {
      pc, ch, ms,
      async close() { pc.close(); await sig.close(); },
    };
  } catch (e) {
    pc.close();
    if (sig) await sig.close().catch(() => {});
    throw e;
  }
}

// ---- phases -------------------------------------------------------------------

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };

// A fresh server pays once for what its first sessions load and fill
// (OpenSSL's providers and decoders, heaps, code pages): WARMUP set-ups
// and tear-downs before the measured ones, and a still server, so that
// this falls before c0 rather than on the first set-ups measured. The
// same for both servers.
async function warmUp(server) {
  for (let i = 0; i < WARMUP; i++) {
    try {
      const ph = await phone(server);
      await ph.close();
    } catch (e) { log(`${server.name} warm-up set-up ${i}: ${e.message}`); }
  }
  await settle(server.pid);
}

// PROFILE=FILE: perf records the server's process tree (call graphs,
// PROFILE_FREQ samples/s) over the measured sequential set-ups, after the
// warm-up; `perf script -i FILE | tests/bench/setup_profile.py SEQ_COUNT
// PROFILE_FREQ` then sorts the samples into the parts of a set-up. Each
// round and server overwrites FILE: run one (SERVERS=dcmfd ROUNDS=1).
async function profileStart(server) {
  if (!PROFILE) return null;
  try { fs.unlinkSync(PROFILE); } catch (e) { /* none yet */ }
  const perf = track(spawn("perf", ["record", "-F", String(PROFILE_FREQ), "--call-graph", "dwarf,16384",
    "-o", PROFILE, "-p", treePids(server.pid).join(",")], { stdio: "ignore" }));
  // perf attaches in the background; its file appears once it has.
  await until(() => fs.existsSync(PROFILE) && fs.statSync(PROFILE).size > 0, 5000, 50);
  return perf;
}

async function profileStop(perf) {
  if (!perf || perf.exitCode !== null) return;
  perf.kill("SIGINT");
  await timeout(perf.exited, 30000, "perf to write its file");
  log(`profile in ${PROFILE}: perf script -i ${PROFILE} | tests/bench/setup_profile.py ${SEQ_COUNT} ${PROFILE_FREQ}`);
}

async function phaseSetup(server) {
  await warmUp(server);
  const perf = await profileStart(server);
  const c0 = cpuTicks(server.pid);
  const t0 = process.hrtime.bigint();
  const times = [];
  let failed = 0;
  for (let i = 0; i < SEQ_COUNT; i++) {
    try {
      const ph = await phone(server);
      times.push(ph.ms);
      await ph.close();
    } catch (e) { failed++; log(`${server.name} set-up ${i}: ${e.message}`); }
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await settle(server.pid);
  const ms = ((cpuTicks(server.pid) - c0) * 1000 / TICK_HZ) / Math.max(1, times.length);
  await profileStop(perf);
  return { "seq.rate": times.length / secs, "seq.p50": median(times), "seq.cpu": ms, failed };
}

async function phaseConcurrent(server) {
  await warmUp(server);
  const c0 = cpuTicks(server.pid);
  const t0 = process.hrtime.bigint();
  const results = await Promise.allSettled(Array.from({ length: CONC_COUNT }, () => phone(server)));
  const up = results.filter((r) => r.status === "fulfilled").map((r) => r.value);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const r of results) if (r.status === "rejected") log(`${server.name} concurrent set-up: ${r.reason.message}`);
  await Promise.allSettled(up.map((p) => p.close()));
  await settle(server.pid);
  const ms = ((cpuTicks(server.pid) - c0) * 1000 / TICK_HZ) / Math.max(1, up.length);
  return { "conc.cpu": ms, "conc.rate": up.length / secs, "conc.p50": median(up.map((p) => p.ms)),
    failed: CONC_COUNT - up.length };
}

// |count| messages of |size| bytes, |window| in flight: each echo that
// comes back sends the next message (no polling loop, so the phone's CPU
// is the stack's work, not ours).
function pump(ph, size, window, count) {
  const msg = Buffer.alloc(size, 0x61);
  let sent = 0, got = 0, wrong = 0;
  const done = new Promise((resolve) => {
    ph.ch.onMessage((m) => {
      got++;
      if (m.length !== size) wrong++;
      if (sent < count) { ph.ch.sendMessageBinary(msg); sent++; }
      if (got === count) resolve();
    });
  });
  while (sent < Math.min(window, count)) { ph.ch.sendMessageBinary(msg); sent++; }
  return timeout(done, TIMEOUT_MS, `${count} echoes`).then(() => ({ got, wrong }),
    (e) => { log(e.message); return { got, wrong }; });
}

async function phaseEcho(server) {
  const out = { failed: 0 };
  for (const size of SIZES) {
    for (const window of WINDOWS) {
      const ph = await phone(server);
      // Warm-up, not measured: SCTP's congestion window opens, buffers grow.
      await pump(ph, size, window, Math.min(2000, ECHO_COUNT));
      await settle(server.pid);
      const side0 = await server.sideDatagrams();
      const u0 = udpCounters();
      const c0 = cpuTicks(server.pid), e0 = server.echoTicks(), cl0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const r = await pump(ph, size, window, ECHO_COUNT);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const cl = process.cpuUsage(cl0);
      const ticks = cpuTicks(server.pid) - c0, eticks = server.echoTicks() - e0;
      const u1 = udpCounters();
      const side = (await server.sideDatagrams()) - side0;
      await ph.close();
      const k = `${size}.${window}`;
      const serverUs = ticks * 1e6 / TICK_HZ / r.got;
      out[`echo.rate.${k}`] = r.got / secs;
      out[`echo.cpu.${k}`] = serverUs;
      out[`echo.persec.${k}`] = 1e6 / serverUs;
      out[`echo.client.${k}`] = (cl.user + cl.system) / r.got;
      out[`echo.pkts.${k}`] = (u1.OutDatagrams - u0.OutDatagrams - side) / r.got;
      if (server.name === "dcmfd") out[`echo.as.${k}`] = eticks * 1e6 / TICK_HZ / r.got;
      if (DEBUG) log(`${server.name} ${k}: ${r.got} echoed, namespace OutDatagrams +${u1.OutDatagrams - u0.OutDatagrams}, echo server's +${side}`);
      const lost = ECHO_COUNT - r.got;
      const drops = (u1.RcvbufErrors - u0.RcvbufErrors) + (u1.SndbufErrors - u0.SndbufErrors);
      out[`echo.drops.${k}`] = drops;
      if (lost || r.wrong) { out.failed += lost + r.wrong; log(`${server.name} ${k}: ${lost} not echoed, ${r.wrong} of the wrong size`); }
      if (drops) log(`${server.name} ${k}: the kernel dropped ${drops} datagrams (Udp RcvbufErrors + SndbufErrors); they count in the datagrams per message`);
    }
  }
  return out;
}

async function phaseIdle(server, n) {
  await settle(server.pid);
  const before = rssKiB(server.pid);
  const phones = [];
  let failed = 0;
  for (let i = 0; i < n; i += BATCH) {
    const rs = await Promise.allSettled(Array.from({ length: Math.min(BATCH, n - i) }, () => phone(server)));
    for (const r of rs) {
      if (r.status === "fulfilled") phones.push(r.value);
      else { failed++; log(`${server.name} idle set-up: ${r.reason.message}`); }
    }
  }
  await wait(IDLE_MS); // the measured state: sessions open and idle
  const loaded = rssKiB(server.pid);
  await Promise.allSettled(phones.map((p) => p.close()));
  const released = Date.now();
  await settle(server.pid);
  // Both servers get the same time to give memory back (dcmfd trims its
  // heaps once releases have paused for --mem-trim-delay, 1 s).
  await wait(Math.max(0, released + AFTER_MS - Date.now()));
  const after = rssKiB(server.pid);
  return { [`idle.kib.${n}`]: (loaded - before) / Math.max(1, phones.length),
    [`idle.before.${n}`]: before / 1024, [`idle.loaded.${n}`]: loaded / 1024,
    [`idle.after.${n}`]: after / 1024, [`idle.ratio.${n}`]: after / before, failed };
}

// ---- the run ------------------------------------------------------------------

const results = { janus: {}, dcmfd: {} }; // name -> key -> [values per round]
let failures = { janus: 0, dcmfd: 0 };

function record(name, obj) {
  for (const [k, v] of Object.entries(obj)) {
    if (k === "failed") { failures[name] += v; continue; }
    (results[name][k] = results[name][k] || []).push(v);
  }
}

async function withServer(make, fn) {
  const server = make();
  await server.start();
  try { return await fn(server); } finally { await server.stop(); }
}

function fmt(v) {
  if (!Number.isFinite(v)) return "—";
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  const d = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}
function range(a) {
  if (!a || !a.length) return "—";
  const lo = Math.min(...a), hi = Math.max(...a);
  return fmt(lo) === fmt(hi) ? fmt(lo) : `${fmt(lo)}–${fmt(hi)}`;
}

// |counts|: whole numbers, and no ratio (drops are not a rate to compare).
function row(label, key, counts = false) {
  const j = results.janus[key], d = results.dcmfd[key];
  const ratio = j && d && !counts ? median(d) / median(j) : NaN;
  console.log(`| ${label} | ${range(j)} | ${range(d)} | ${Number.isFinite(ratio) ? ratio.toFixed(2) : "—"} |`);
}

function printTable() {
  console.log("| figure | Janus | dcmfd | dcmfd/Janus |");
  console.log("|---|---|---|---|");
  if (PHASES.includes("setup")) {
    row(`sequential set-ups/s (${SEQ_COUNT}, set-up and tear-down)`, "seq.rate");
    row("sequential set-up, p50 ms (offer to open channel)", "seq.p50");
    row("server CPU ms per sequential set-up", "seq.cpu");
  }
  if (PHASES.includes("concurrent")) {
    row(`server CPU ms per set-up, ${CONC_COUNT} concurrent`, "conc.cpu");
    row(`set-ups/s, ${CONC_COUNT} concurrent`, "conc.rate");
    row(`set-up p50 ms, ${CONC_COUNT} concurrent`, "conc.p50");
  }
  if (PHASES.includes("echo")) {
    for (const size of SIZES) {
      for (const window of WINDOWS) {
        const k = `${size}.${window}`, w = `${size} B, ${window} in flight`;
        row(`echoed msg/s, ${w}`, `echo.rate.${k}`);
        row(`server CPU µs per message, ${w}`, `echo.cpu.${k}`);
        row(`messages per server CPU-second, ${w}`, `echo.persec.${k}`);
        row(`client CPU µs per message, ${w}`, `echo.client.${k}`);
        row(`UDP datagrams per echoed message (phone↔server), ${w}`, `echo.pkts.${k}`);
        row(`datagrams the kernel dropped in the namespace (Udp RcvbufErrors + SndbufErrors), ${w}`, `echo.drops.${k}`, true);
        row(`echo server (DC AS) CPU µs per message, ${w}`, `echo.as.${k}`);
      }
    }
  }
  if (PHASES.includes("idle")) {
    for (const n of IDLE_COUNTS) {
      row(`KiB per idle session, ${n} sessions`, `idle.kib.${n}`);
      row(`RSS MiB before ${n} sessions`, `idle.before.${n}`);
      row(`RSS MiB with ${n} idle sessions`, `idle.loaded.${n}`);
      row(`RSS MiB after all ${n} ended`, `idle.after.${n}`);
      row(`RSS after all ${n} ended / RSS before`, `idle.ratio.${n}`);
    }
  }
}

function cpuStat() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), steal: f[7] || 0 };
}

(async () => {
  for (const f of [DCMFD, UDP_ECHO]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: meson compile -C ${BUILD}`);
  }
  const janusVersion = SERVERS.includes("janus")
    ? (spawnSync("janus", ["--version"], { encoding: "utf8" }).stdout || "janus ?").split("\n")[0] : "not run";
  let rev = "?";
  try { rev = execFileSync("git", ["-C", __dirname, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim(); } catch (e) { /* no git */ }
  const ndcVersion = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "clients", "node_modules",
    "node-datachannel", "package.json"), "utf8")).version;
  const stat0 = cpuStat();
  const started = Date.now();
  const makers = { janus: () => new Janus(), dcmfd: () => new Dcmfd() };
  for (let round = 1; round <= ROUNDS; round++) {
    // Janus first in odd rounds, dcmfd first in even ones: a drift of the
    // machine's load over a round does not favour one server.
    const order = round % 2 ? ["janus", "dcmfd"] : ["dcmfd", "janus"];
    const names = order.filter((n) => SERVERS.includes(n));
    const phases = [];
    if (PHASES.includes("setup")) phases.push(["setup", phaseSetup]);
    if (PHASES.includes("concurrent")) phases.push(["concurrent", phaseConcurrent]);
    if (PHASES.includes("echo")) phases.push(["echo", phaseEcho]);
    if (PHASES.includes("idle")) for (const n of IDLE_COUNTS) phases.push([`idle ${n}`, (s) => phaseIdle(s, n)]);
    for (const [label, fn] of phases) {
      for (const name of names) {
        const r = await withServer(makers[name], fn);
        record(name, r);
        log(`round ${round} ${label} ${name}: ${Object.entries(r).map(([k, v]) => `${k}=${fmt(v)}`).join(" ")}`);
      }
    }
  }
  const stat1 = cpuStat();
  const stealPct = 100 * (stat1.steal - stat0.steal) / Math.max(1, stat1.total - stat0.total);
  console.log(`Janus and dcmfd side by side (tests/bench/janus_compare.js), ${new Date().toISOString().slice(0, 10)}: ` +
    `${janusVersion}; dcmfd ${rev} (${path.basename(BUILD)}, ${DCMFD_ARGS.join(" ") || "no extra options"}); ` +
    `node-datachannel ${ndcVersion}; ${os.cpus().length} CPUs, servers ${SERVER_CPUS ? `on CPUs ${SERVER_CPUS}` : "not pinned"}; ` +
    `Janus ICE-lite ${JANUS_ICE_LITE ? "on" : "off"}, event_loops ${JANUS_EVENT_LOOPS}; ` +
    `${ROUNDS} round${ROUNDS === 1 ? "" : "s"} (min–max; ratio of medians), ${((Date.now() - started) / 1000).toFixed(0)} s, ` +
    `steal ${stealPct.toFixed(1)} %, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}.`);
  console.log("");
  printTable();
  const failed = failures.janus + failures.dcmfd;
  if (failed) console.log(`\nFailures (set-ups that did not open, messages not echoed): Janus ${failures.janus}, dcmfd ${failures.dcmfd}.`);
  ndc.cleanup();
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.error(`janus_compare.js: ${e.stack || e.message}`);
  try { ndc.cleanup(); } catch (x) { /* already */ }
  process.exit(1);
});
