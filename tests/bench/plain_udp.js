// The baseline the data-channel benchmarks print beside their own rows:
// a UDP echo with no data channel and no dcmfd, a Node client straight to
// a Node echo server on loopback, same count and window.
"use strict";
const dgram = require("dgram");

async function plainUdp(size, count, window) {
  const echo = dgram.createSocket("udp4");
  echo.on("message", (m, r) => echo.send(m, r.port, r.address));
  await new Promise((r) => echo.bind(0, "127.0.0.1", r));
  const client = dgram.createSocket("udp4");
  let got = 0;
  client.on("message", () => { got++; });
  await new Promise((r) => client.bind(0, "127.0.0.1", r));
  const msg = Buffer.alloc(size, 0x61);
  const t0 = process.hrtime.bigint();
  let sent = 0;
  const deadline = Date.now() + 60000;
  while (got < count && Date.now() < deadline) {
    while (sent < count && sent - got < window) { client.send(msg, echo.address().port, "127.0.0.1"); sent++; }
    await new Promise((r) => setImmediate(r));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  client.close();
  echo.close();
  const rate = got / secs;
  console.log(`| ${size} B, plain loopback UDP (no dcmfd) | ${got}/${count} | ${rate.toFixed(0)} | ${(rate * size * 2 / 1e6).toFixed(1)} | — |`);
}

module.exports = { plainUdp };
