"""The relay's leg to a workspace's ttyd: connect while it starts, authenticate, probe, backlog.

ttyd's protocol (subprotocol ``tty``): the client's first message is a JSON handshake carrying
``AuthToken``; the server fills that in, so the browser never holds the container's credential.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

TTY_SUBPROTOCOL = "tty"
TTYD_WS_PATH = "/ws"
# Client message type of a resize: "1" then {"columns": N, "rows": M}.
RESIZE = "1"

# How long to pause between attempts while ttyd starts listening in a fresh container.
_RETRY_DELAY_FIRST = 0.05
_RETRY_DELAY_MAX = 0.5
# After ttyd drops a terminal, wait this long before asking whether it still listens: a killed
# container's shell can die a moment before its ttyd does. Then allow the probe this long.
_PROBE_DELAY = 0.25
_PROBE_TIMEOUT = 2.0


class TerminalUnavailable(Exception):
    """The workspace terminal cannot be reached; the message is shown to the user."""


class InvalidHandshake(ValueError):
    """A handshake or resize message from the browser that ttyd must not be given."""


@dataclass(frozen=True)
class TerminalSizeLimit:
    """The largest terminal a browser may ask for: tmux allocates memory per cell."""

    columns: int
    rows: int

    def clamp(self, size: dict[str, Any]) -> None:
        """Cut `columns` and `rows` of a handshake or resize object to the limit, in place."""
        for key, limit in (("columns", self.columns), ("rows", self.rows)):
            if key not in size:
                continue
            value = size[key]
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidHandshake(f"terminal {key} is not an integer")
            size[key] = min(max(value, 1), limit)


def _json_object(data: str | bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise InvalidHandshake(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidHandshake(f"{what} is not a JSON object")
    return value


@dataclass(frozen=True)
class TerminalEndpoint:
    """Where a workspace's ttyd listens, and the credential it wants (server-side only)."""

    host: str
    port: int
    credential: str


def ttyd_token(credential: str) -> str:
    """ttyd's token for a ``user:password`` credential (what its ``GET /token`` would return)."""
    return base64.b64encode(credential.encode("utf-8")).decode("ascii")


class WriteBacklog:
    """Bytes written to one WebSocket that have not yet reached the kernel's socket buffer.

    The relay stops reading the other leg while a backlog is over its limit (backpressure).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes = 0
        self.peak = 0

    def add(self, size: int, flushed: asyncio.Future[None]) -> bool:
        """Count a write until it is flushed; True when the backlog is now over the limit."""
        self.bytes += size
        self.peak = max(self.peak, self.bytes)
        flushed.add_done_callback(partial(self._flushed, size))
        return self.bytes > self.limit

    def _flushed(self, size: int, flushed: asyncio.Future[None]) -> None:
        self.bytes -= size
        if not flushed.cancelled():
            flushed.exception()  # a closed socket is reported by the reading side, not here


def _same_type(text: str, like: str | bytes) -> str | bytes:
    return text.encode("utf-8") if isinstance(like, bytes) else text


async def _drained(flushed: Awaitable[None]) -> None:
    with contextlib.suppress(WebSocketClosedError):
        await flushed


class TtydConnection:
    """One open WebSocket to a workspace's ttyd."""

    def __init__(
        self,
        socket: WebSocketClientConnection,
        endpoint: TerminalEndpoint,
        buffer_limit: int,
        size_limit: TerminalSizeLimit,
    ) -> None:
        self._socket = socket
        self.endpoint = endpoint
        self._size_limit = size_limit
        self._auth_token = ttyd_token(endpoint.credential)
        self._handshake_sent = False
        self.backlog = WriteBacklog(buffer_limit)
        if socket.protocol is not None:
            socket.protocol.set_nodelay(True)

    @classmethod
    async def connect(
        cls,
        endpoint: TerminalEndpoint,
        *,
        ready_timeout: float,
        ping_interval: float | None,
        max_message_size: int,
        buffer_limit: int,
        size_limit: TerminalSizeLimit,
        abandoned: Callable[[], bool],
        log: logging.Logger,
    ) -> TtydConnection | None:
        """Connect, retrying while ttyd is still starting, for `ready_timeout` seconds.

        None when `abandoned()` turns true meanwhile (the browser left).
        """
        url = f"ws://{endpoint.host}:{endpoint.port}{TTYD_WS_PATH}"
        auth = f"Basic {ttyd_token(endpoint.credential)}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_timeout
        delay = _RETRY_DELAY_FIRST
        while True:
            remaining = max(deadline - loop.time(), 0.1)
            request = HTTPRequest(
                url,
                headers={"Authorization": auth},
                connect_timeout=remaining,
                request_timeout=remaining,
            )
            try:
                socket = await websocket_connect(
                    request,
                    subprotocols=[TTY_SUBPROTOCOL],
                    max_message_size=max_message_size,
                    ping_interval=ping_interval,
                    # No pong timeout: while the browser is slow we stop reading ttyd on purpose,
                    # so its pongs wait in the socket; a dead container closes TCP anyway.
                    ping_timeout=0,
                )
                return cls(socket, endpoint, buffer_limit, size_limit)
            except HTTPClientError as exc:
                if exc.code != 599:
                    raise TerminalUnavailable(
                        f"workspace terminal refused the connection (HTTP {exc.code})"
                    ) from exc
                error: Exception = exc
            except (OSError, StreamClosedError) as exc:
                error = exc
            if abandoned():
                return None
            if loop.time() + delay >= deadline:
                log.warning("ttyd not reachable at %s:%s: %s", endpoint.host, endpoint.port, error)
                raise TerminalUnavailable(
                    f"workspace terminal did not start within {ready_timeout:g} s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_DELAY_MAX)

    @property
    def close_code(self) -> int | None:
        return self._socket.close_code

    @property
    def close_reason(self) -> str | None:
        return self._socket.close_reason

    async def read(self) -> str | bytes | None:
        """ttyd's next message, or None once it has closed."""
        return await self._socket.read_message()

    def send(self, message: str | bytes) -> Awaitable[None] | None:
        """Forward one browser message; an awaitable means "read no more until it resolves".

        Raises InvalidHandshake for a handshake or resize that is not a JSON object.
        """
        kind = message[:1]
        if not self._handshake_sent and kind in ("{", b"{"):
            message = self._authenticated_handshake(message)
            self._handshake_sent = True
        elif kind in (RESIZE, RESIZE.encode()):
            message = self._clamped_resize(message)
        try:
            flushed = self._socket.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            return None  # ttyd's close reaches the browser through the reading side
        if self.backlog.add(len(message), flushed):
            return _drained(flushed)
        return None

    def _authenticated_handshake(self, message: str | bytes) -> str | bytes:
        """The browser's handshake with ttyd's token put in and its size clamped."""
        handshake = _json_object(message, "terminal handshake")
        self._size_limit.clamp(handshake)
        handshake["AuthToken"] = self._auth_token
        return _same_type(json.dumps(handshake, separators=(",", ":")), message)

    def _clamped_resize(self, message: str | bytes) -> str | bytes:
        resize = _json_object(message[1:], "terminal resize")
        self._size_limit.clamp(resize)
        return _same_type(RESIZE + json.dumps(resize, separators=(",", ":")), message)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self._socket.close(code, reason)

    async def still_listening(self) -> bool:
        """Whether ttyd still accepts connections (a plain TCP connect, closed at once)."""
        await asyncio.sleep(_PROBE_DELAY)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self.endpoint.host, self.endpoint.port), _PROBE_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
