// msrp_wic_werift.js's protocol (JSON lines on stdin/stdout) with
// Chromium as the WebRTC IMS client: a page holds the RTCPeerConnection
// and its negotiated "msrp" channel; every channel message crosses as it
// is, hex-encoded (tests/integration/e2ae_msrp_dc.py runs it with
// WIC=chromium).
"use strict";
const readline = require("readline");
const { makeBrowser } = require("./chromium");

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const HTML = `<!doctype html><meta charset="utf-8"><script>
const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (h) => { const u = new Uint8Array(h.length / 2);
  for (let i = 0; i < u.length; i++) u[i] = parseInt(h.substr(i * 2, 2), 16); return u; };
window.wic = {
  async offer(id, label, protocol) {
    const pc = new RTCPeerConnection();
    const dc = pc.createDataChannel(label, { negotiated: true, id, protocol: protocol || "msrp", ordered: true });
    dc.binaryType = "arraybuffer";
    dc.onopen = () => emit({ ev: "open" });
    dc.onclose = () => emit({ ev: "closed" });
    dc.onmessage = (e) => emit({ ev: "msg", hex: typeof e.data === "string"
      ? hex(new TextEncoder().encode(e.data)) : hex(new Uint8Array(e.data)) });
    this.pc = pc; this.dc = dc;
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== "complete") {
      await new Promise((r) => pc.addEventListener("icegatheringstatechange",
        () => pc.iceGatheringState === "complete" && r()));
    }
    return pc.localDescription.sdp;
  },
  answer(sdp) { return this.pc.setRemoteDescription({ type: "answer", sdp }); },
  send(h) { this.dc.send(unhex(h)); },
  text(t) { this.dc.send(t); },
  close() { this.dc.close(); },
};
</script>`;

function only127(sdp) {
  return sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") || l.includes(" 127.0.0.1 ")).join("\r\n");
}

async function main() {
  const browser = makeBrowser({ html: HTML, profilePrefix: "dcmf-msrp-" });
  await browser.start();
  const page = await browser.ctx.newPage();
  await page.exposeFunction("emit", (o) => out(o));
  await page.goto(browser.url, { timeout: 10000 });
  const handle = async (m) => {
    if (m.cmd === "offer") {
      const sdp = await page.evaluate(([id, label, protocol]) => window.wic.offer(id, label, protocol),
        [m.id, m.label, m.protocol || "msrp"]);
      out({ ev: "offer", sdp: only127(sdp) });
    } else if (m.cmd === "answer") {
      await page.evaluate((sdp) => window.wic.answer(sdp), m.sdp);
    } else if (m.cmd === "send") {
      await page.evaluate((h) => window.wic.send(h), m.hex);
    } else if (m.cmd === "text") {
      await page.evaluate((t) => window.wic.text(t), m.text);
    } else if (m.cmd === "close") {
      await page.evaluate(() => window.wic.close());
    } else if (m.cmd === "quit") {
      await browser.stop();
      process.exit(0);
    }
  };
  let chain = Promise.resolve();
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const m = JSON.parse(line);
    chain = chain.then(() => handle(m)).catch((e) => out({ ev: "error", error: String(e && e.stack || e) }));
  });
  process.stdin.on("end", () => browser.stop().then(() => process.exit(0)));
}

main().catch((e) => { out({ ev: "error", error: String(e && e.stack || e) }); process.exit(1); });
