// Node's own http2 client against dcmfd's control API: a standard HTTP/2
// client sends no content-length (RFC 9113 8.1.1: the body ends with
// END_STREAM), so every route must read such bodies; an oversized body
// without content-length gets 413 as soon as the DATA passes the limit;
// a content-length that disagrees with the DATA is a malformed request
// (stream reset with PROTOCOL_ERROR). Every response is checked against
// docs/openapi.yaml (openapi.js).
//
//   node h2_clients.js PATH/TO/dcmfd
//
// Prints "ok - name" / "not ok - name: why" and "N passed, M failed".
"use strict";
const http2 = require("http2");
const { check, timeout, runTests } = require("./harness");
const { api } = require("./ims_as");
const { checkResponse, checkedCount } = require("./openapi");

const DCMFD = process.argv[2];
const MRM = "/nmf-mrm/v1/contexts";
const AGW = "/agw/v1/contexts";

function mrmContext() {
  return {
    terminations: [{
      terminationId: "ue-a",
      medias: [{
        mediaId: "m1", mediaResourceType: "DC",
        remoteMbEndpoint: { ip: { ipv4Addr: "127.0.0.1" }, transport: "UDP", portNumber: 30000 },
        dcMedia: {
          mediaProxyConfig: "HTTP",
          streams: { 0: { streamId: 0, subprotocol: "http", order: true, maxRetry: 0, maxTime: 0, priority: 256 } },
          remoteDcEndpoint: { tlsId: "abcdefghij0123456789" },
          securitySetup: "ACTPASS",
        },
      }],
    }],
  };
}

// One request on |session| whose body goes out in |chunks| (Buffers) with
// no content-length unless |headers| says so. Resolves {status, headers,
// body (Buffer), rstCode, error}: whatever the stream ended with.
function send(session, headers, chunks) {
  return new Promise((resolve) => {
    const req = session.request(headers);
    const out = { status: undefined, headers: undefined, body: Buffer.alloc(0), rstCode: undefined, error: undefined };
    const got = [];
    req.on("response", (h) => { out.status = h[":status"]; out.headers = h; });
    req.on("data", (c) => got.push(c));
    req.on("error", (e) => { out.error = e; });
    req.on("close", () => {
      out.body = Buffer.concat(got);
      out.rstCode = req.rstCode;
      resolve(out);
    });
    // Writes stop mattering once the server reset the stream.
    (async () => {
      for (const c of chunks) {
        if (req.destroyed || req.closed) return;
        if (!req.write(c)) {
          await new Promise((r) => {
            const done = () => { req.off("drain", done); req.off("close", done); r(); };
            req.on("drain", done);
            req.on("close", done);
          });
        }
      }
      if (!req.destroyed && !req.closed) req.end();
    })();
  });
}

function split(buf, n) {
  const parts = [];
  for (let i = 0; i < buf.length; i += n) parts.push(buf.subarray(i, i + n));
  return parts;
}

const tests = [
  {
    name: "Nmf_MRM: create, patch (If-Match), delete from Node http2 without content-length",
    async fn(d) {
      const session = http2.connect(`http://127.0.0.1:${d.port}`);
      try {
        const body = Buffer.from(JSON.stringify(mrmContext()));
        const r = await send(session, { ":method": "POST", ":path": MRM, "content-type": "application/json" },
          split(body, 64));
        await checkResponse("POST", MRM, r.status, r.headers && r.headers["content-type"], r.body);
        check(r.status === 201, `create status ${r.status}: ${r.body}`);
        const ctx = JSON.parse(r.body);
        const etag = r.headers.etag;
        check(/^"[0-9]+"$/.test(etag || ""), `ETag ${etag}`);
        const dc = ctx.terminations[0].medias[0].dcMedia;
        check(dc.streams["0"].maxRetry === 0 && dc.streams["0"].maxTime === 0, "the official defaults are kept");
        check(dc.localMdc1Endpoint && dc.localMdc1Endpoint.ip.ipv4Addr === "127.0.0.1" &&
          dc.localMdc1Endpoint.portNumber === 0, `localMdc1Endpoint ${JSON.stringify(dc.localMdc1Endpoint)}`);
        const p = `${MRM}/${ctx.contextId}`;
        const ops = [{ op: "replace", path: "/terminations/0/medias/0/dcMedia/maxMessageSize", value: 16 }];
        const patched = await api(d.port, "PATCH", p, ops, "application/json-patch+json", { "if-match": etag });
        check(patched.status === 200, `PATCH status ${patched.status}: ${JSON.stringify(patched.body)}`);
        check(patched.body.terminations[0].medias[0].dcMedia.maxMessageSize === 16, "the patch was applied");
        check(patched.headers.etag && patched.headers.etag !== etag, `new ETag ${patched.headers.etag}`);
        const stale = await api(d.port, "PATCH", p, ops, "application/json-patch+json", { "if-match": etag });
        check(stale.status === 412, `stale If-Match: ${stale.status}`);
        const gz = await api(d.port, "PATCH", p, ops, "application/json-patch+json", { "content-encoding": "gzip" });
        check(gz.status === 415 && gz.headers["accept-encoding"] === "identity",
          `gzip: ${gz.status} accept-encoding ${gz.headers["accept-encoding"]}`);
        const del = await api(d.port, "DELETE", p, undefined, undefined, { "if-match": patched.headers.etag });
        check(del.status === 204, `DELETE status ${del.status}`);
      } finally {
        session.close();
      }
    },
  },
  {
    name: "/agw/v1: create, patch, delete from Node http2 without content-length",
    async fn(d) {
      const body = { terminations: [{ terminationId: "access" }, { terminationId: "core", remote: { ipv4Addr: "127.0.0.1", port: 9 } }] };
      const r = await api(d.port, "POST", AGW, body);
      check(r.status === 201, `create status ${r.status}: ${JSON.stringify(r.body)}`);
      const p = `${AGW}/${r.body.contextId}`;
      const patched = await api(d.port, "PATCH", p,
        [{ op: "replace", path: "/terminations/1/remote/port", value: 10 }], "application/json-patch+json");
      check(patched.status === 200 && patched.body.terminations[1].remote.port === 10,
        `PATCH ${patched.status}: ${JSON.stringify(patched.body)}`);
      const owned = await api(d.port, "PATCH", p,
        [{ op: "replace", path: "/terminations/0/local/port", value: 1 }], "application/json-patch+json");
      check(owned.status === 403 && owned.body.cause === "MODIFICATION_NOT_ALLOWED",
        `PATCH of local: ${owned.status} ${JSON.stringify(owned.body)}`);
      check((await api(d.port, "DELETE", p)).status === 204, "DELETE");
    },
  },
  {
    name: "a body over --max-body without content-length: 413 while it streams, connection kept",
    async fn(d) {
      const session = http2.connect(`http://127.0.0.1:${d.port}`);
      try {
        // 4 MiB in 16 KiB pieces against the default limit of 1 MiB: the
        // answer must come once the limit is passed, not after the end.
        const piece = Buffer.alloc(16384, 0x20);
        const chunks = Array.from({ length: 256 }, () => piece);
        const r = await timeout(send(session, { ":method": "POST", ":path": MRM, "content-type": "application/json" }, chunks),
          10000, "413");
        await checkResponse("POST", MRM, r.status, r.headers && r.headers["content-type"], r.body);
        check(r.status === 413, `status ${r.status} (rst ${r.rstCode}, ${r.error && r.error.message})`);
        check(JSON.parse(r.body).cause === "PAYLOAD_TOO_LARGE", `problem ${r.body}`);
        check(r.rstCode === http2.constants.NGHTTP2_NO_ERROR,
          `the rest of the body is refused with RST_STREAM(NO_ERROR), got ${r.rstCode}`);
        const h = await send(session, { ":method": "GET", ":path": "/healthz" }, []);
        check(h.status === 200, `the same connection still serves: ${h.status}`);
      } finally {
        session.close();
      }
    },
  },
  {
    name: "content-length that disagrees with the DATA: RST_STREAM(PROTOCOL_ERROR)",
    async fn(d) {
      const session = http2.connect(`http://127.0.0.1:${d.port}`);
      try {
        const body = Buffer.from(JSON.stringify(mrmContext()));
        for (const length of [body.length + 1, body.length - 1]) {
          const r = await send(session, { ":method": "POST", ":path": MRM, "content-type": "application/json",
            "content-length": String(length) }, [body]);
          check(r.status === undefined, `content-length ${length} for ${body.length} bytes answered ${r.status}`);
          check(r.rstCode === http2.constants.NGHTTP2_PROTOCOL_ERROR,
            `content-length ${length} for ${body.length} bytes: RST_STREAM code ${r.rstCode}`);
        }
        const list = await api(d.port, "GET", MRM);
        check(list.status === 200 && list.body.length === 0, `nothing was created: ${JSON.stringify(list.body)}`);
        const h = await send(session, { ":method": "GET", ":path": "/healthz" }, []);
        check(h.status === 200, `the connection still serves: ${h.status}`);
      } finally {
        session.close();
      }
    },
  },
];

tests.push({
  name: "every response above matched docs/openapi.yaml",
  async fn() {
    check(checkedCount() >= 12, `only ${checkedCount()} responses were checked`);
    console.log(`# ${checkedCount()} responses checked against docs/openapi.yaml`);
  },
});
runTests(DCMFD, "h2", tests, 20000);
