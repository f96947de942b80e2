// A dev server stand-in for the preview tests: HTTP, redirects, big downloads and a WebSocket
// echo with a hand-written handshake (no npm). Usage: node app.js PORT [HOST]
"use strict";
const http = require("http");
const crypto = require("crypto");

const port = Number(process.argv[2]);
const host = process.argv[3] || "0.0.0.0";
let sent = 0; // bytes of /big accepted by the socket so far

// The page's module script, as a dev server's hot-reload client: it opens a WebSocket next to the
// page, takes the server's first push, answers it and shows what came back in #hmr.
const MAIN_JS = `
const status = document.createElement("p");
status.id = "hmr";
status.textContent = "connecting";
document.body.append(status);
const ws = new WebSocket(new URL("hmr", location.href.replace(/^http/, "ws")), "echo-v1");
ws.onmessage = (event) => {
  if (status.textContent === "connecting") {
    status.textContent = "pushed";
    ws.send("update-applied");
  } else if (event.data === "update-applied") {
    status.textContent = "echoed over " + ws.protocol;
  }
};
ws.onerror = () => { status.textContent = "websocket error"; };
`;

function big(req, res, url) {
  const total = Number(url.searchParams.get("mb") || "1") * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 120);
  res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": total });
  let mine = 0; // this download's own count: concurrent downloads (the flood bench) each end whole
  sent = 0;
  const cut = url.searchParams.get("cut") ? total / 2 : Infinity; // die halfway if asked
  const pump = () => {
    while (mine < total) {
      if (mine >= cut) return req.socket.destroy();
      const piece = chunk.subarray(0, Math.min(chunk.length, total - mine));
      mine += piece.length;
      sent = mine;
      if (!res.write(piece)) return res.once("drain", pump);
    }
    res.end();
  };
  pump();
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://app");
  // Like an app started with the preview-absolute path as its base path (vite --base ...).
  const route = url.pathname.replace(/^.*\/code\/preview-absolute\/[^/]+\/[^/]+\/\d+/, "");
  if (route === "/") {
    res.writeHead(200, { "Content-Type": "text/html", "Set-Cookie": "app=1; Path=/" });
    res.end("<!doctype html><h1>preview works</h1><script type=module src=main.js></script>");
  } else if (route === "/main.js") {
    res.writeHead(200, { "Content-Type": "text/javascript" });
    res.end(MAIN_JS);
  } else if (route === "/headers") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers }));
  } else if (route === "/redirect-absolute") {
    res.writeHead(302, { Location: `http://localhost:${port}/target?x=1` });
    res.end();
  } else if (route === "/redirect-path") {
    res.writeHead(302, { Location: "/target" });
    res.end();
  } else if (route === "/redirect-relative") {
    res.writeHead(302, { Location: "target" });
    res.end();
  } else if (route === "/redirect-away") {
    res.writeHead(302, { Location: "https://example.com/" });
    res.end();
  } else if (route === "/big") {
    big(req, res, url);
  } else if (route === "/progress") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ sent }));
  } else if (route === "/echo") {
    const hash = crypto.createHash("sha256");
    let size = 0;
    req.on("data", (d) => { hash.update(d); size += d.length; });
    req.on("end", () => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ size, sha256: hash.digest("hex"), method: req.method }));
    });
  } else if (route === "/truncated" || route === "/truncated-chunked") {
    // Dies halfway through its body, with a length or chunked.
    const headers = { "Content-Type": "text/plain" };
    if (route === "/truncated") headers["Content-Length"] = 1000;
    res.writeHead(200, headers);
    res.write("x".repeat(10));
    setTimeout(() => req.socket.destroy(), 100);
  } else if (route === "/peer") {
    // Which connection of the proxy carried this request, and how many it carried so far.
    req.socket.requests = (req.socket.requests || 0) + 1;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ port: req.socket.remotePort, requests: req.socket.requests }));
    if (url.searchParams.get("close")) setTimeout(() => req.socket.destroy(), 50);
  } else if (route === "/cookies") {
    res.writeHead(200, {
      "Content-Type": "text/plain",
      "Set-Cookie": [
        "shared=1; Domain=preview.localhost; Path=/",
        "parent=1; Path=/; domain=.localhost; HttpOnly",
        "own=1; Path=/app; SameSite=Lax",
      ],
    });
    res.end("cookies");
  } else if (route === "/empty") {
    res.writeHead(204);
    res.end();
  } else {
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found: " + req.url);
  }
});

function frame(opcode, payload) {
  const n = payload.length;
  let head;
  if (n < 126) head = Buffer.from([0x80 | opcode, n]);
  else if (n < 65536) { head = Buffer.alloc(4); head[0] = 0x80 | opcode; head[1] = 126; head.writeUInt16BE(n, 2); }
  else { head = Buffer.alloc(10); head[0] = 0x80 | opcode; head[1] = 127; head.writeBigUInt64BE(BigInt(n), 2); }
  return Buffer.concat([head, payload]);
}

server.on("upgrade", (req, socket) => {
  const key = req.headers["sec-websocket-key"];
  const accept = crypto.createHash("sha1")
    .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  const offered = (req.headers["sec-websocket-protocol"] || "").split(",").map((s) => s.trim());
  const lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${accept}`];
  if (offered.includes("echo-v1")) lines.push("Sec-WebSocket-Protocol: echo-v1");
  socket.write(lines.join("\r\n") + "\r\n\r\n");
  socket.write(frame(1, Buffer.from(JSON.stringify({ url: req.url, headers: req.headers }))));
  let buf = Buffer.alloc(0);
  socket.on("data", (data) => {
    buf = Buffer.concat([buf, data]);
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
      buf = buf.subarray(off + 4 + len);
      if (opcode === 8) { socket.end(frame(8, payload.subarray(0, 2))); return; }
      if (opcode === 9) { socket.write(frame(10, payload)); continue; }
      if (opcode === 1 && payload.toString() === "close-me") {
        const body = Buffer.alloc(2); body.writeUInt16BE(4000, 0);
        socket.end(frame(8, Buffer.concat([body, Buffer.from("bye")])));
        return;
      }
      socket.write(frame(opcode, payload));
    }
  });
  socket.on("error", () => {});
});

server.listen(port, host, () => console.log(`listening on ${host}:${port}`));
