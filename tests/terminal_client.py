"""A client that speaks ttyd's browser protocol through the relay, for the tests."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection

from .conftest import USER_HEADER

WsFetch = Callable[..., Any]


class Terminal:
    """A client speaking ttyd's browser protocol; output is decoded as one UTF-8 stream."""

    def __init__(self, ws: WebSocketClientConnection) -> None:
        self.ws = ws
        self._unread = ""  # decoded output not yet consumed by read_until
        self.frames_seen: list[bytes] = []  # every frame, while keep_frames is set
        self.keep_frames = False
        self.closed = False
        self._decoder = codecs.getincrementaldecoder("utf-8")()  # strict: a broken char raises

    def handshake(self, columns: int = 80, rows: int = 24, token: str = "") -> None:
        hello = {"AuthToken": token, "columns": columns, "rows": rows}
        self.ws.write_message(json.dumps(hello).encode(), binary=True)

    def type(self, text: str) -> None:
        self.ws.write_message(b"0" + text.encode(), binary=True)

    def resize(self, columns: int, rows: int) -> None:
        self.ws.write_message(b"1" + json.dumps({"columns": columns, "rows": rows}).encode(), True)

    async def output(self) -> bytes | None:
        """The next output frame's bytes, or None once the socket is closed."""
        while True:
            frame = await self.ws.read_message()
            if frame is None:
                self.closed = True
                return None
            assert isinstance(frame, bytes), "ttyd frames are binary and must stay binary"
            if self.keep_frames:
                self.frames_seen.append(frame)
            if frame[:1] == b"0":
                return frame[1:]

    async def read_until(self, needle: str, timeout: float = 60.0) -> str:
        """Read output until `needle` appears; answer the unread text up to and including it."""

        async def read() -> str:
            seen, start = self._unread, 0
            while (found := seen.find(needle, start)) < 0:
                start = max(0, len(seen) - len(needle) + 1)
                data = await self.output()
                assert data is not None, f"closed before {needle!r}: {self.ws.close_reason}"
                seen += self._decoder.decode(data)
            end = found + len(needle)
            self._unread = seen[end:]
            return seen[:end]

        return await asyncio.wait_for(read(), timeout)

    async def wait_closed(self, timeout: float = 60.0) -> tuple[int | None, str | None]:
        async def drain() -> None:
            while not self.closed:
                await self.output()

        await asyncio.wait_for(drain(), timeout)
        return self.ws.close_code, self.ws.close_reason

    async def close(self) -> None:
        """Close and wait for the server's side, so no relay outlives the test."""
        self.ws.close()
        await self.wait_closed()


@contextlib.asynccontextmanager
async def terminal(
    jp_ws_fetch: WsFetch,
    workspace_id: str,
    user: str | None = None,
    handshake: bool = True,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[Terminal]:
    headers = {**({USER_HEADER: user} if user else {}), **(headers or {})}
    ws = await jp_ws_fetch("api", "ws", "code", workspace_id, headers=headers, subprotocols=["tty"])
    term = Terminal(ws)
    if handshake:
        # Sent at once, while the relay is still reaching ttyd: it must be queued, not dropped.
        term.handshake()
    try:
        yield term
    finally:
        # The relay's ttyd leg closes right after; the server's shutdown waits for any left.
        await term.close()


async def refusal(connecting: Awaitable[WebSocketClientConnection]) -> tuple[int, str]:
    """The HTTP status and JSON message of an upgrade the server refuses."""
    try:
        ws = await connecting
    except HTTPClientError as refused:
        body = refused.response.body if refused.response else b"{}"
        return refused.code, json.loads(body).get("message")
    ws.close()
    raise AssertionError("the WebSocket upgrade was accepted")


def relay_fetch(jp_ws_fetch: WsFetch, workspace_id: str, **headers: str) -> Any:
    return jp_ws_fetch("api", "ws", "code", workspace_id, headers=headers, subprotocols=["tty"])
