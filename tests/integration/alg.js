// The IMS-ALG half of the Node e2ae tests: the dcmf-alg command built
// beside dcmfd (docs/e2ae.md "dcmf-alg"), run as a subprocess. The tests
// hand it the clients' real SDP and the AGW's replies and check what it
// prints against dcmfd and the clients.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const { check } = require("./harness");

// Runs `dcmf-alg ARGS` beside |dcmfd| with |sdp| on stdin; |reply| (the
// contexts, an array by m= line) and |offer| (SDP) go in files. Returns
// stdout; throws with dcmf-alg's message on a non-zero exit.
function run(dcmfd, args, sdp, { reply, offer } = {}) {
  const alg = path.join(path.dirname(path.resolve(dcmfd)), "dcmf-alg");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcmf-alg-"));
  const argv = [...args];
  try {
    if (reply !== undefined) {
      fs.writeFileSync(path.join(dir, "reply.json"), JSON.stringify(reply));
      argv.push("--reply", path.join(dir, "reply.json"));
    }
    if (offer !== undefined) {
      fs.writeFileSync(path.join(dir, "offer.sdp"), offer);
      argv.push("--offer", path.join(dir, "offer.sdp"));
    }
    try {
      return execFileSync(alg, argv, { input: sdp, timeout: 10000, encoding: "utf8" });
    } catch (e) {
      throw new Error(`dcmf-alg ${args.join(" ")}: exit ${e.status}: ${e.stderr}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// `dcmf-alg request`: the requests for |sdp|, one per m= line, each
// checked to be a request (not skipped) of the e2ae path |want|.
function requests(dcmfd, args, sdp, want, opts) {
  const reqs = JSON.parse(run(dcmfd, ["request", ...args], sdp, opts)).requests;
  for (const r of reqs) check(!r.skip && r.path === want, `dcmf-alg request: ${JSON.stringify(r)}`);
  return reqs;
}

// The lines of |sdp| (CRLF), without the empty last one.
const lines = (sdp) => sdp.split("\r\n").filter((l) => l !== "");

// Checks that every line of |want| is a line of |sdp| and that no line of
// |sdp| starts with one of |gone|; |what| names the SDP.
function checkSdp(sdp, what, want, gone = []) {
  const ls = lines(sdp);
  for (const w of want) check(ls.includes(w), `${what}: no "${w}" in\n${sdp}`);
  for (const g of gone) check(!ls.some((l) => l.startsWith(g)), `${what}: "${g}" still in\n${sdp}`);
}

// The AGW's a=fingerprint value for a termination's localFingerprint
// (the hash name in lower case, as dcmf-alg writes it).
function fingerprintAttr(fp) {
  const [hash, hex] = fp.split(" ");
  return `a=fingerprint:${hash.toLowerCase()} ${hex}`;
}

module.exports = { run, requests, lines, checkSdp, fingerprintAttr };
