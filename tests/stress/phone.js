// A phone in a process of its own, for tests that make a phone vanish
// (kill -9: no SCTP ABORT, no DTLS close_notify, its UDP socket just goes).
//
//   node phone.js API_PORT REPLACE_URL [werift|node-datachannel]
//
// Creates its context, opens the bootstrap channel, sends GET / and prints
// "context ID", then "bytes N" as the body arrives (at most every 50 ms),
// then "done N SHA256" if it completes. It never deletes its context.
"use strict";
const L = require("./lib");
const { api } = require("../integration/ims_as");

const [PORT, URL, KIND = "node-datachannel"] = process.argv.slice(2);
const d = { api: (method, p, body, type) => api(Number(PORT), method, p, body, type) };

(async () => {
  const ph = await L.makePhone(KIND, d, URL, "ue-vanishing");
  console.log(`context ${ph.ctx.contextId}`);
  await L.timeout(ph.opened, 10000, "channel open");
  const progress = setInterval(() => console.log(`bytes ${ph.reader.bytes}`), 50);
  const r = await L.get(ph, "/", 120000, 60000);
  clearInterval(progress);
  console.log(`done ${r.length} ${r.sha}`);
  ph.close();
  L.ndcCleanup();
  process.exit(0);
})().catch((e) => {
  console.log(`error ${e.message}`);
  process.exit(1);
});
