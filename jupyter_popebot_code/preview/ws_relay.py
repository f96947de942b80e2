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
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketHandler,
    websocket_connect,
)

from ..errors import CLOSE_POLICY_VIOLATION
from ..web.websocket import close_reason, sendable_close
from .base import WS_PING_INTERVAL, PreviewBase


class WebSocketRelay(PreviewBase):
    """The WebSocket leg: the browser's socket and the app's, relayed with backpressure."""

    _pump: asyncio.Task[None] | None = None

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
        return await websocket_connect(
            request,
            subprotocols=[p for p in offered if p] or None,
            ping_interval=WS_PING_INTERVAL,
            ping_timeout=WS_PING_INTERVAL,
            max_message_size=self.proxy.max_message_size,
        )

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
        self._pump = asyncio.create_task(self._pump_from_app())

    async def _pump_from_app(self) -> None:
        """The app's messages to the browser; reading the app pauses while the browser lags."""
        upstream = self._upstream_ws
        assert upstream is not None
        try:
            while True:
                message = await upstream.read_message()
                if message is None:
                    break
                self._record_activity()
                try:
                    written = self.write_message(message, binary=isinstance(message, bytes))
                except WebSocketClosedError:
                    break
                waiting = self._tracked(written, len(message), self._backlog)
                if waiting is not None:
                    await waiting
            if not self._closed:
                code, reason = sendable_close(upstream.close_code, upstream.close_reason)
                self.close(code, reason)
        except Exception:
            self.log.exception("Preview WebSocket of workspace %s failed", self._workspace_id)
            self.close(1011, "the preview relay failed (see the server log)")
        finally:
            upstream.close()
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
