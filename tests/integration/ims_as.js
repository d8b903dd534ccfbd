// A small stand-in for the IMS AS: it turns a phone's SDP offer into an
// Nmf_MRM create request and the MF's answer into the SDP answer toward
// the phone (TS 24.186 9.3.3.2.1: c=, m= port, fingerprint, setup,
// tls-id, sctp-port come from the MF), and talks to dcmfd over h2c.
"use strict";
const http2 = require("http2");
const { checkResponse } = require("./openapi");

function attr(sdp, name) {
  const line = sdp.split(/\r?\n/).find((l) => l.startsWith(`a=${name}:`));
  return line ? line.slice(name.length + 3).trim() : undefined;
}

// Reads what the MF needs from the offer's first application m-section.
function parseOffer(sdp) {
  const lines = sdp.split(/\r?\n/);
  const m = lines.find((l) => l.startsWith("m=application"));
  if (!m) throw new Error("offer has no m=application line");
  const cand = lines
    .filter((l) => l.startsWith("a=candidate:"))
    .map((l) => l.split(" "))
    .find((f) => f[2].toLowerCase() === "udp" && f[4] === "127.0.0.1");
  return {
    mid: attr(sdp, "mid") || "0",
    ufrag: attr(sdp, "ice-ufrag"),
    pwd: attr(sdp, "ice-pwd"),
    fingerprint: attr(sdp, "fingerprint"),
    setup: (attr(sdp, "setup") || "actpass").toUpperCase(),
    sctpPort: Number(attr(sdp, "sctp-port") || 5000),
    tlsId: attr(sdp, "tls-id"),
    candidate: cand ? { ip: cand[4], port: Number(cand[5]) } : undefined,
  };
}

// The Nmf_MRM create request for one bootstrap DC media.
function createRequest(offer, opts = {}) {
  const dcMedia = {
    mediaProxyConfig: "HTTP",
    streams: opts.streams || { 0: { streamId: 0, subprotocol: "http", order: true } },
    remoteDcEndpoint: { sctpPort: offer.sctpPort },
    securitySetup: offer.setup,
  };
  if (opts.fingerprint !== null) {
    dcMedia.remoteDcEndpoint.fingerprint = opts.fingerprint || offer.fingerprint;
  }
  if (offer.tlsId) dcMedia.remoteDcEndpoint.tlsId = offer.tlsId;
  const media = {
    mediaId: "1",
    mediaResourceType: "DC",
    remoteIceInfo: { ufrag: offer.ufrag, pwd: offer.pwd },
    dcMedia,
  };
  if (offer.candidate) {
    media.remoteMbEndpoint = {
      ip: { ipv4Addr: offer.candidate.ip }, transport: "UDP", portNumber: offer.candidate.port,
    };
  }
  const ctx = { terminations: [{ terminationId: opts.terminationId || "ue-a", medias: [media] }] };
  if (opts.eventNotifyUri) ctx.eventNotifyUri = opts.eventNotifyUri;
  return ctx;
}

// The SDP answer toward the phone from the MF's MediaContext.
function answerSdp(ctx, offer) {
  const media = ctx.terminations[0].medias[0];
  const ep = media.localMbEndpoint;
  const dc = media.dcMedia;
  const fp = dc.localDcEndpoint.fingerprint.replace(/^SHA-256 /, "sha-256 ");
  const addr = ep.ip.ipv4Addr;
  return [
    "v=0",
    "o=dcmf 1 1 IN IP4 " + addr,
    "s=-",
    "t=0 0",
    "a=ice-lite",
    "a=group:BUNDLE " + offer.mid,
    `m=application ${ep.portNumber} UDP/DTLS/SCTP webrtc-datachannel`,
    "c=IN IP4 " + addr,
    "a=mid:" + offer.mid,
    "a=ice-ufrag:" + media.localIceInfo.ufrag,
    "a=ice-pwd:" + media.localIceInfo.pwd,
    "a=fingerprint:" + fp,
    "a=setup:" + dc.securitySetup.toLowerCase(),
    "a=tls-id:" + dc.localDcEndpoint.tlsId,
    "a=sctp-port:" + dc.localDcEndpoint.sctpPort,
    "a=max-message-size:" + dc.maxMessageSize * 1024,
    `a=candidate:1 1 udp 2130706431 ${addr} ${ep.portNumber} typ host`,
    "a=end-of-candidates",
    "",
  ].join("\r\n");
}

// One h2c request to dcmfd; resolves {status, headers, body (parsed JSON
// or text)} once the response was checked against docs/openapi.yaml. Like
// any Node http2 client it sends no content-length: the body ends with the
// stream (RFC 9113 8.1.1). |extra| adds request header fields.
function api(port, method, path, body, type, extra) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const headers = { ":method": method, ":path": path, ...(extra || {}) };
    let data;
    if (body !== undefined) {
      data = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
      headers["content-type"] = type || "application/json";
    }
    const req = session.request(headers);
    let status, hdrs;
    const chunks = [];
    req.on("response", (h) => { status = h[":status"]; hdrs = h; });
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      session.close();
      const raw = Buffer.concat(chunks);
      const text = raw.toString();
      let parsed = text;
      try { parsed = JSON.parse(text); } catch (e) { /* not JSON */ }
      checkResponse(method, path, status, hdrs["content-type"], raw)
        .then(() => resolve({ status, headers: hdrs, body: parsed }), reject);
    });
    req.on("error", reject);
    if (data) req.end(data); else req.end();
  });
}

module.exports = { parseOffer, createRequest, answerSdp, api };
