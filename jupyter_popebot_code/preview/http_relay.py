"""HTTP through a preview: the request to the app, its response to the browser, both streamed.

The request head goes out in `prepare` (after authorization), the body as tornado reads it
(`data_received`), the app's answer in the verb (`_relay_response`). Connections to the app are
HTTP/1.1 keep-alive and go back to the proxy's pool after a clean exchange (see `pool`); a
request with a body always takes a new one, since it could not be sent again if a kept connection
turned out to be closed by the app. A large body with a Content-Length to a plain-TCP browser
connection is spliced in the kernel (`splice`); that connection closes after it.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import cast

from tornado import httputil, web
from tornado.http1connection import HTTP1Connection
from tornado.iostream import IOStream, StreamClosedError, UnsatisfiableReadError

from .. import metrics
from ..web.websocket import quietly
from . import splice
from .base import PreviewBase
from .pool import PoolKey
from .rules import (
    LOCAL_HOSTS,
    SANDBOX_CSP,
    browser_response_headers,
    cors_for_sandbox,
    response_framing,
    rewrite_location,
)
from .upstream import AppStream, HeadTimeout, open_app_stream

# Bodies at least this long are spliced (smaller ones keep both connections alive).
_SPLICE_FROM = 1024 * 1024


class _UpstreamResponse(httputil.HTTPMessageDelegate):
    """The app's response, written to the browser as it arrives."""

    def __init__(self, handler: HttpRelay, connection: HTTP1Connection) -> None:
        self.handler = handler
        self.connection = connection
        self.started = False
        self.keep_alive = False  # whether the app lets the connection carry another request
        self.problem: str | None = None  # why the head was refused (a 502)
        # A body to splice: the app's stream, taken from tornado, and the body's length.
        self.detached: IOStream | None = None
        self.length = 0

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        if start_line.code < 200:
            return None  # 100 Continue: tornado already told the browser to go on
        self.problem = response_framing(start_line.code, headers.get_all())
        if self.problem is not None:
            # tornado stops reading and logs one line (no traceback); the handler answers 502.
            raise httputil.HTTPInputError(self.problem)
        self.started = True
        self.keep_alive = (
            start_line.version == "HTTP/1.1"
            and "close" not in headers.get("Connection", "").lower()
        )
        length = self.handler.splice_length(start_line, headers)
        if length:
            self.length = length
            self.detached = self.connection.detach()  # only allowed here, in headers_received
        return self.handler.start_response(start_line, headers, closing=bool(length))

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.handler.write_chunk(chunk)

    def finish(self) -> None:
        pass

    def on_connection_close(self) -> None:
        pass


class HttpRelay(PreviewBase):
    """The HTTP leg: one request to the app and its answer, over a kept or a new connection."""

    _has_body = False
    _reused = False

    # -- the request --------------------------------------------------------------------------

    async def _send_request_head(self, reuse: bool = True) -> None:
        """Connect to the app and send the request line and headers; the body streams after."""
        headers = self._upstream_headers(websocket=False)
        method = self.request.method or "GET"
        has_body = "Content-Length" in headers or self.request.headers.get("Transfer-Encoding")
        if has_body and "Content-Length" not in headers and method not in ("POST", "PUT", "PATCH"):
            raise web.HTTPError(411, "A request body needs a Content-Length with this method.")
        self._has_body = bool(has_body)
        stream = await self._app_stream(reuse=reuse and not has_body)
        self._upstream_stream = stream
        if self._closed:
            stream.close()
            return
        connection = HTTP1Connection(stream, True, self.proxy.connection_params)
        self._upstream_connection = connection
        start = httputil.RequestStartLine(method, self._upstream_target(), "HTTP/1.1")
        connection.write_headers(start, headers)

    async def _app_stream(self, reuse: bool) -> AppStream:
        """A kept connection to the app if there is one (and `reuse`), else a new one."""
        found = await self._app_host()
        self._app_address, started = found
        if reuse and not started:
            kept = self.proxy.pool.take(self._pool_key())
            if isinstance(kept, AppStream):
                kept.set_nodelay(True)
                kept.answered = False
                self._reused = True
                return kept
        self._reused = False
        return await self._connect(self._open_app_stream, found)

    async def _open_app_stream(self, host: str) -> AppStream:
        proxy = self.proxy
        return await open_app_stream(
            host,
            self.port,
            connect_timeout=proxy.connect_timeout,
            header_timeout=proxy.header_timeout,
        )

    def _pool_key(self) -> PoolKey:
        workspace = self.workspace
        assert workspace is not None
        return PoolKey(workspace.user_id, workspace.id, self._app_address, self.port)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """A piece of the request body: on to the app, reading paused while it lags behind."""
        connection = self._upstream_connection
        if connection is None:
            return None
        self._record_activity()
        try:
            written = connection.write(chunk)
        except StreamClosedError:
            return None  # the app hung up: its answer (or 502) follows in the handler
        return self._tracked(written, len(chunk), self._upstream_backlog)

    # -- the app's response -------------------------------------------------------------------

    async def _relay_response(self) -> None:
        connection = self._upstream_connection
        if connection is None:
            return
        response = _UpstreamResponse(self, connection)
        try:
            whole = await self._read_response(connection, response)
        except HeadTimeout as exc:
            raise web.HTTPError(
                502,
                f"The app on port {self.port} did not finish its response head within "
                f"{self.proxy.header_timeout:g} s (is it an HTTP server?).",
            ) from exc
        except (StreamClosedError, httputil.HTTPInputError, OSError) as exc:
            if self._may_send_again(response):
                # A kept connection the app closed while it was idle: once more, on a new one.
                await self._send_request_head(reuse=False)
                await self._relay_response()
                return
            if not response.started:
                raise web.HTTPError(502, self._broken_off(exc)) from exc
            # Cut off mid-body: the browser must not take what it got for the whole answer
            # (a chunked response would otherwise end with a proper last chunk).
            self.log.info("Preview of workspace %s: the app broke off: %s", self._workspace_id, exc)
            self._abort_browser()
            return
        if response.detached is not None:
            await self._splice_body(response.detached, response.length)
            return
        if self._closed:
            return
        if not response.started:
            problem = response.problem or "a malformed answer (not an HTTP/1.x response head)"
            raise web.HTTPError(502, f"The app on port {self.port} sent {problem}.")
        if not whole:
            # The head went out, the body was malformed (bad chunked encoding): the status
            # cannot change any more, so the browser sees a broken connection, not a whole body.
            self.log.info(
                "Preview of workspace %s: malformed body from the app", self._workspace_id
            )
            self._abort_browser()
            return
        try:
            self.finish()
        except (StreamClosedError, httputil.HTTPOutputError):
            # The app ended short of its Content-Length (tornado closed the browser's socket).
            self._closed = True

    async def _read_response(
        self, connection: HTTP1Connection, response: _UpstreamResponse
    ) -> bool:
        """Read the whole answer; its connection goes back to the pool if it may carry more."""
        stream = self._upstream_stream
        try:
            connection.finish()
            whole = await connection.read_response(response)
        except BaseException:
            connection.close()
            raise
        if whole and response.keep_alive and not self._closed and isinstance(stream, AppStream):
            self._upstream_stream = None  # no longer this request's to close
            self.proxy.pool.give(self._pool_key(), stream)
        else:
            connection.close()
        return whole

    def splice_length(
        self, start_line: httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> int:
        """The body's length if it should be spliced, else 0."""
        length = headers.get("Content-Length", "").split(",")[0].strip()
        browser = self.request.connection
        if (
            not splice.AVAILABLE
            or self._closed
            or not length.isdigit()
            or int(length) < _SPLICE_FROM
            or "Transfer-Encoding" in headers
            or self.request.method == "HEAD"
            or self.request.version != "HTTP/1.1"
            or start_line.code in (204, 304)
            or not isinstance(browser, HTTP1Connection)
            or type(browser.stream) is not IOStream  # TLS (SSLIOStream): no kernel copy
        ):
            return 0
        return int(length)

    async def _splice_body(self, app: IOStream, length: int) -> None:
        """The body: what tornado read already the ordinary way, the rest in the kernel."""
        browser: IOStream | None = None
        browser_fd = app_fd = -1
        try:
            first = await app.read_bytes(length, partial=True)
            browser_connection = self.request.connection
            assert browser_connection is not None
            await browser_connection.write(first)  # done: nothing of tornado's left to send
            self._spliced(len(first))
            browser = self.detach()
            app_fd, browser_fd = os.dup(app.socket.fileno()), os.dup(browser.socket.fileno())
            app.close()  # tornado lets go of it: no handler reads it under the splice
            await splice.splice_body(app_fd, browser_fd, length - len(first), self._spliced)
        except (StreamClosedError, splice.BodyCutShort, OSError) as exc:
            # Either side gave up mid-body: the browser must not take it for a whole one.
            self.log.info("Preview of workspace %s: body broke off: %s", self._workspace_id, exc)
            self._closed = True
            if browser is None:
                self._abort_browser()
        finally:
            app.close()
            if browser is not None:
                browser.close()  # the head said Connection: close; the dup holds it until sent
            for fd in (app_fd, browser_fd):
                if fd >= 0:
                    os.close(fd)
            self._release()

    def _spliced(self, size: int) -> None:
        metrics.preview_relayed(size, to_browser=True)
        self._record_activity()

    def _may_send_again(self, response: _UpstreamResponse) -> bool:
        stream = self._upstream_stream
        return (
            self._reused
            and not self._has_body
            and not self._closed
            and not response.started
            and isinstance(stream, AppStream)
            and not stream.answered
        )

    def _broken_off(self, exc: BaseException) -> str:
        """The 502 message of an app that failed before its head was complete."""
        real = exc.real_error if isinstance(exc, StreamClosedError) else exc
        if isinstance(real, UnsatisfiableReadError):
            return (
                f"The app on port {self.port} sent response headers over "
                f"{self.proxy.max_header_size // 1024} KiB."
            )
        detail = f" ({real})" if real else ""
        return (
            f"The app on port {self.port} closed the connection before its response head was "
            f"complete{detail}."
        )

    def _abort_browser(self) -> None:
        """Close the browser's connection now, without ending the response properly."""
        self._closed = True
        browser = cast(HTTP1Connection, self.request.connection)
        browser.close()

    def start_response(
        self,
        start_line: httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        closing: bool = False,
    ) -> Awaitable[None] | None:
        """The app's status and headers, made safe for the Jupyter origin; sent at once.

        `closing`: the browser's connection ends with this response (a spliced body).
        """
        if self._closed:
            return None
        self.clear()
        for name in ("Content-Type", "Content-Security-Policy", "X-Content-Type-Options"):
            self.clear_header(name)
        self.set_status(start_line.code, start_line.reason or "Unknown")
        forwarded = self._app_response_headers(headers)
        app_hosts = LOCAL_HOSTS | {self._app_address}
        for name, value in forwarded:
            if name.lower() == "location":
                value = rewrite_location(
                    value,
                    port=self.port,
                    prefix=self.prefix,
                    strip_prefix=not self.absolute,
                    app_hosts=app_hosts,
                )
            self.add_header(name, value)
        if self.sandboxed:
            for name, value in cors_for_sandbox(self.get_origin(), forwarded):
                self.add_header(name, value)
            self.add_header("Content-Security-Policy", SANDBOX_CSP)
        if closing:
            self.set_header("Connection", "close")
        # Headers now, so event streams and long polls start before the first byte of body.
        return quietly(self.flush())

    def _app_response_headers(self, headers: httputil.HTTPHeaders) -> list[tuple[str, str]]:
        return browser_response_headers(headers.get_all(), extra=self.proxy.extra_response_headers)

    def write_chunk(self, chunk: bytes) -> Awaitable[None] | None:
        if self._closed:
            upstream = self._upstream_stream
            if upstream is not None:
                upstream.close()  # the browser left: stop reading the app
            return None
        self._record_activity()
        # Straight to the browser's connection: the head went out in start_response, and
        # RequestHandler.write/flush would only copy the chunk into a buffer and out again.
        browser = self.request.connection
        assert browser is not None
        try:
            written = browser.write(chunk)
        except StreamClosedError:
            return None
        return self._tracked(written, len(chunk), self._backlog)
