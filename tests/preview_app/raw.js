// An app that answers with malformed HTTP on purpose, written byte by byte on a raw socket.
// Usage: node raw.js PORT. The request's path picks the answer; some keep the socket open to
// show the proxy answers at once, not when the app gives up.
"use strict";
const net = require("net");

const port = Number(process.argv[2]);
const head = (...lines) => ["HTTP/1.1 200 OK", "Content-Type: text/plain", ...lines].join("\r\n") + "\r\n\r\n";
const BAD_HEADERS = [
  "Set-Cookie: _xsrf=tossed; Path=/",
  "Set-Cookie2: tossed=1",
  "Clear-Site-Data: \"cookies\", \"storage\"",
  "Strict-Transport-Security: max-age=31536000; includeSubDomains",
  "Alt-Svc: h3=\":8443\"; ma=86400",
  "Accept-CH: Sec-CH-UA-Model",
  "Critical-CH: Sec-CH-UA-Model",
  "Set-Login: logged-in",
  "Reporting-Endpoints: default=\"https://collector.invalid/\"",
  "Report-To: {\"group\":\"default\",\"max_age\":1,\"endpoints\":[{\"url\":\"https://collector.invalid/\"}]}",
  "NEL: {\"report_to\":\"default\",\"max_age\":1}",
  "Origin-Agent-Cluster: ?1",
  "Supports-Loading-Mode: credentialed-prerender",
  "Speculation-Rules: \"/rules.json\"",
  "Service-Worker-Allowed: /",
  "WWW-Authenticate: Basic realm=\"jupyter\"",
  "Server: raw-app",
  "Keep-Alive: timeout=5",
  "Unknown-Header: 1",
];
const GOOD_HEADERS = [
  "Cache-Control: no-cache",
  "ETag: \"v1\"",
  "Last-Modified: Tue, 01 Dec 2026 00:00:00 GMT",
  "Content-Disposition: inline; filename=\"a.txt\"",
  "Accept-Ranges: bytes",
  "Vary: Accept-Encoding",
  "Content-Language: en",
  "Link: </main.js>; rel=preload; as=script",
  "Referrer-Policy: no-referrer",
  "Permissions-Policy: camera=()",
  "X-Total-Count: 42",
  "X-Accel-Buffering: no",
  "HX-Trigger: refreshed",
];

const ANSWERS = {
  // Allowed headers reach the browser, origin-wide ones never.
  "/headers": head(...GOOD_HEADERS, ...BAD_HEADERS, "Content-Length: 2") + "ok",
  // Framing the proxy cannot relay: 502 before anything reaches the browser.
  "/two-lengths": head("Content-Length: 5", "Content-Length: 6") + "hello!",
  "/length-list": head("Content-Length: 5, 6") + "hello!",
  "/bad-length": head("Content-Length: five") + "hello",
  "/negative-length": head("Content-Length: -5") + "hello",
  "/huge-length": head("Content-Length: 99999999999999999999") + "hello",
  "/length-and-chunked": head("Content-Length: 5", "Transfer-Encoding: chunked") + "5\r\nhello\r\n0\r\n\r\n",
  "/gzip-encoded": head("Transfer-Encoding: gzip") + "hello",
  "/no-content-body": "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
  "/huge-headers": head("X-Big: " + "b".repeat(70 * 1024)) + "hello",
  "/not-http": "SSH-2.0-OpenSSH_9.6\r\nnot a response\r\n\r\n",
  "/bad-status": "HTTP/1.1 2xx Fine\r\nContent-Length: 0\r\n\r\n",
  "/http2": "HTTP/2 200\r\ncontent-length: 0\r\n\r\n",
  "/bad-header-line": "HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n",
  "/mid-headers": "HTTP/1.1 200 OK\r\nContent-Type: te",
  // Not HTTP, and never a blank line: an SSH server's banner (the proxy bounds the wait).
  "/ssh-banner": "SSH-2.0-OpenSSH_9.6\r\n",
  // Agreeing duplicates are one length.
  "/equal-lengths": head("Content-Length: 5", "Content-Length: 5") + "hello",
  // The head went out already: the browser's connection is cut, never a whole-looking body.
  "/bad-chunk": head("Transfer-Encoding: chunked") + "5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n",
  "/bad-chunk-end": head("Transfer-Encoding: chunked") + "5\r\nhelloXX0\r\n\r\n",
};
const KEEP_OPEN = new Set(["/ssh-banner", "/not-http", "/bad-status", "/bad-header-line", "/two-lengths", "/bad-chunk"]);

const server = net.createServer((socket) => {
  let buf = "";
  socket.on("error", () => {});
  socket.on("data", (data) => {
    if (buf === null) return;
    buf += data.toString("latin1");
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const path = buf.split(" ")[1] || "/";
    buf = null;
    const answer = ANSWERS[path];
    if (path === "/slow-head") {
      // A head that never ends: a header line every 100 ms (well under any size limit).
      socket.write("HTTP/1.1 200 OK\r\n");
      let n = 0;
      const timer = setInterval(() => socket.write(`X-Line-${n++}: more\r\n`), 100);
      socket.on("close", () => clearInterval(timer));
      setTimeout(() => socket.destroy(), 120000);
    } else if (answer === undefined) {
      socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
    } else if (KEEP_OPEN.has(path)) {
      socket.write(answer, "latin1");
      setTimeout(() => socket.destroy(), 120000);
    } else {
      socket.end(answer, "latin1");
    }
  });
});

server.listen(port, "0.0.0.0", () => console.log(`raw app listening on ${port}`));
