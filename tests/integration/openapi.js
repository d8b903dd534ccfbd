// Checks control API responses the Node tests receive against
// docs/openapi.yaml: status listed for the operation, content-type, and
// the JSON body against its schema. The work is done by openapi_check.py
// (one /usr/bin/python3 process per test run, JSON lines both ways), the
// same checker test_api.py and test_agw.py use.
"use strict";
const path = require("path");
const readline = require("readline");
const { spawn } = require("child_process");

let child = null;
const pending = []; // FIFO of {resolve, reject}, one per line written
let checked = 0;

function start() {
  child = spawn("/usr/bin/python3", [path.join(__dirname, "openapi_check.py")],
    { stdio: ["pipe", "pipe", "inherit"] });
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const p = pending.shift();
    if (pending.length === 0) child.stdout.unref();
    if (p) p.settle(JSON.parse(line));
  });
  child.on("exit", (code) => {
    const err = new Error(`openapi_check.py exited with ${code} (needs python3-jsonschema and python3-yaml)`);
    for (const p of pending.splice(0)) p.reject(err);
    child = null;
  });
  // The checker must not keep a finished test run alive: its handles are
  // referenced only while an answer is awaited.
  child.unref();
  child.stdin.unref();
  child.stdout.unref();
}

// Resolves when the response matches the document; rejects saying why not.
function checkResponse(method, p, status, contentType, body) {
  if (child === null) start();
  return new Promise((resolve, reject) => {
    pending.push({
      reject,
      settle: (r) => {
        if (r.ok) { checked++; resolve(); } else reject(new Error(`${method} ${p}: not as docs/openapi.yaml says: ${r.error}`));
      },
    });
    child.stdout.ref();
    child.stdin.write(JSON.stringify({ method, path: p, status, contentType: contentType || null,
      body: Buffer.from(body || "").toString("utf8") }) + "\n");
  });
}

module.exports = { checkResponse, checkedCount: () => checked };
