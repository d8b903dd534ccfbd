// The Debian Chromium that the browser tests (dc_chromium.js for data
// channels, e2ae_chromium.js for DTLS-SRTP media) drive through
// playwright-core: one headless browser per test run, pages served from a
// Node http server on 127.0.0.1 (about:blank is not a secure context, and
// WebRTC with the fake-ui flag wants a real origin).
"use strict";

const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");
module.paths.unshift(path.join(__dirname, "..", "clients", "node_modules"));
const { chromium } = require("playwright-core");
const { timeout } = require("./harness");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection", // 127.0.0.1 host candidates
  "--disable-features=WebRtcHideLocalIpsWithMdns",
];

// A browser that serves |html| at its url. |extraArgs| are added to the
// command line; |profilePrefix| names its temporary profile folder.
// start() launches it (and may throw); stop() closes what was started.
function makeBrowser({ html, extraArgs = [], profilePrefix = "dcmf-chr-" }) {
  return {
    async start() {
      this.web = http.createServer((req, res) => {
        res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
        res.end(req.url === "/" ? html : "");
      });
      await new Promise((r) => this.web.listen(0, "127.0.0.1", r));
      this.url = `http://127.0.0.1:${this.web.address().port}/`;
      this.profile = fs.mkdtempSync(path.join(os.tmpdir(), profilePrefix));
      this.ctx = await chromium.launchPersistentContext(this.profile, {
        executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: 60000,
      });
      this.version = this.ctx.browser() ? this.ctx.browser().version() : "?";
    },
    async stop() {
      if (this.ctx) await timeout(this.ctx.close(), 15000, "closing Chromium").catch((e) => console.log(`# ${e.message}`));
      if (this.web) this.web.close();
      if (this.profile) fs.rmSync(this.profile, { recursive: true, force: true });
    },
  };
}

module.exports = { makeBrowser };
