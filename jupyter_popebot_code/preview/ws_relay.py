"""WebSockets through a preview (a dev server's hot reload): frame by frame, both ways.

The app is connected first, so its chosen subprotocol is the browser's answer; then the browser's
upgrade is accepted. Close codes and reasons pass both ways, a slow reader pauses the other side
(the same `buffer_limit` as HTTP), and both legs ping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, WebSocketHandler

from ..errors import CLOSE_POLICY_VIOLATION
from ..web.websocket import close_reason, sendable_close
from .base import WS_PING_INTERVAL, PreviewBase


class AppWebSocket(WebSocketClientConnection):
    """The app's socket: each message goes to the browser as tornado reads it.

    tornado's own client queues a message for `read_message`, and a task reading them in a
    loop wakes one loop iteration later: per message, a future, a queue and a task switch
    that an echo's round trip waits for twice. Here the relay's `from_app` runs in the read
    itself, and what it returns (the browser's backlog) pauses reading the app. Messages that
    come before the browser's socket is open (a hello) wait for it the same way.
    """

    def __init__(self, request: HTTPRequest, **kwargs: Any) -> None:
        super().__init__(request, **kwargs)
        self._relay: WebSocketRelay | None = None
        self._attached: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._gone = False

    def attach(self, relay: WebSocketRelay) -> None:
        """The browser's socket is open: messages go to `relay` from now on."""
        self._relay = relay
        if not self._attached.done():
            self._attached.set_result(None)
        if self._gone:
            relay.app_closed()

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        relay = self._relay
        if relay is None:
            return self._after_attach(message)
        return relay.from_app(message)

    async def _after_attach(self, message: str | bytes) -> None:
        await self._attached
        if self._relay is None:
            return  # closed before the browser's socket opened (the upgrade failed)
        waiting = self.on_message(message)
        if waiting is not None:
            await waiting

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self._gone:
            return
        self._gone = True
        if not self._attached.done():
            self._attached.set_result(None)  # a message waiting for the browser is dropped
        if self._relay is not None:
            self._relay.app_closed()


class WebSocketRelay(PreviewBase):
    """The WebSocket leg: the browser's socket and the app's, relayed with backpressure."""

    async def _accept_websocket(self, *args: Any, **kwargs: Any) -> None:
        """Connect to the app first (its subprotocol is the browser's answer), then upgrade."""
        workspace = self.workspace
        assert workspace is not None
        self._refused_ws = self.proxy.acquire(workspace.id)
        if self._refused_ws is None:
            self._counted = True
            self._record_activity()
            try:
                self._upstream_ws = await self._connect(self._open_websocket)
            except BaseException:
                self._release()
                raise
        await WebSocketHandler.get(self, *args, **kwargs)
        if self.ws_connection is None:
            self._release()  # the upgrade failed (bad headers): nothing will close it
            if self._upstream_ws is not None:
                self._upstream_ws.close()

    async def _open_websocket(self, host: str) -> WebSocketClientConnection:
        target = self._upstream_target()
        request = HTTPRequest(
            f"ws://{host}:{self.port}{target}",
            headers=self._upstream_headers(websocket=True),
            connect_timeout=self.proxy.connect_timeout,
            request_timeout=self.proxy.connect_timeout,
        )
        offered = [
            p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",")
        ]
        connection = AppWebSocket(
            request,
            subprotocols=[p for p in offered if p] or None,
            ping_interval=WS_PING_INTERVAL,
            ping_timeout=WS_PING_INTERVAL,
            max_message_size=self.proxy.max_message_size,
        )
        upstream = await connection.connect_future
        assert isinstance(upstream, AppWebSocket)
        if upstream.protocol is not None:
            upstream.protocol.set_nodelay(True)  # small messages go out at once, as the browser's
        return upstream

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        upstream = self._upstream_ws
        chosen = upstream.selected_subprotocol if upstream is not None else None
        return chosen if chosen in subprotocols else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        if self._refused_ws is not None:
            self.close(CLOSE_POLICY_VIOLATION, close_reason(self._refused_ws))
            return
        self.set_nodelay(True)
        self.proxy.add_websocket(self)
        upstream = self._upstream_ws
        assert isinstance(upstream, AppWebSocket)
        upstream.attach(self)

    def from_app(self, message: str | bytes) -> Awaitable[None] | None:
        """A message of the app: on to the browser; reading the app pauses while it lags."""
        if self._closed:
            return None
        try:
            self._record_activity()
            written = self.write_message(message, binary=isinstance(message, bytes))
            return self._tracked(written, len(message), self._backlog)
        except WebSocketClosedError:
            return None
        except Exception:
            self.log.exception("Preview WebSocket of workspace %s failed", self._workspace_id)
            self.close(1011, "the preview relay failed (see the server log)")
            return None

    def app_closed(self) -> None:
        """The app's socket closed (either side began it): the browser's follows, same code."""
        upstream = self._upstream_ws
        if not self._closed and upstream is not None:
            self.close(*sendable_close(upstream.close_code, upstream.close_reason))
        self._release()

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        upstream = self._upstream_ws
        if upstream is None:
            return None
        self._record_activity()
        try:
            written = upstream.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            return None
        return self._tracked(written, len(message), self._upstream_backlog)

    def shut_down(self) -> None:
        self.close(1001, "Jupyter server is shutting down")
        if self._upstream_ws is not None:
            self._upstream_ws.close(1001)
