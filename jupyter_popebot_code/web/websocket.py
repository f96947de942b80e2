"""What the terminal relay and the preview proxy share as WebSocket relays.

Close frames made valid for the other leg, refusals before the upgrade as JSON, backpressure
(bytes written that the kernel has not taken yet, and the write to wait for once they are too
many) and connections counted per workspace against a limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable
from functools import partial
from http.client import responses
from typing import Any

from tornado import web
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

# RFC 6455: a close frame's reason is at most 123 bytes (125 minus the 2-byte code).
MAX_CLOSE_REASON_BYTES = 123
# Codes that only describe what happened locally and must never appear in a close frame.
_UNSENDABLE_CLOSE_CODES = frozenset({1004, 1005, 1006, 1015})


def close_reason(text: str) -> str:
    """Cut ``text`` to what fits in a close frame without splitting a UTF-8 character."""
    return text.encode("utf-8")[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


def sendable_close(code: int | None, reason: str | None) -> tuple[int | None, str | None]:
    """A close code and reason received on one leg, made valid for the other leg."""
    if code is None or code in _UNSENDABLE_CLOSE_CODES or not 1000 <= code <= 4999:
        return None, None
    return code, close_reason(reason) if reason else None


class JSONRefusalsMixin(web.RequestHandler):
    """Refusals before the upgrade are JSON with a `message`, like the REST API's."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        reply = {"message": responses.get(status_code, "Unknown HTTP Error"), "reason": None}
        if isinstance(exc, web.HTTPError):
            reply = {"message": exc.log_message or reply["message"], "reason": exc.reason}
        self.finish(json.dumps(reply))


class WriteBacklog:
    """Bytes written to one socket that have not yet reached the kernel's socket buffer.

    A relay stops reading the other leg while a backlog is over its limit (backpressure).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes = 0
        self.peak = 0

    def add(self, size: int) -> None:
        self.bytes += size
        if self.bytes > self.peak:
            self.peak = self.bytes

    def flushed(self, size: int) -> None:
        self.bytes -= size

    def room_for(self, size: int) -> bool:
        """Whether `size` more bytes keep the backlog within its limit (always, when empty)."""
        return self.bytes == 0 or self.bytes + size <= self.limit

    def track(self, written: asyncio.Future[None], size: int) -> Awaitable[None] | None:
        """Count a write of `size` bytes until it is flushed; once over the limit, what to await.

        The awaitable never raises: a closed socket is noticed where it is read.
        """
        if written.done():
            written.exception()
            return None
        self.add(size)
        written.add_done_callback(partial(self._written, size))
        if self.bytes > self.limit:
            return quietly(written)
        return None

    def _written(self, size: int, written: asyncio.Future[None]) -> None:
        self.flushed(size)
        if not written.cancelled():
            written.exception()  # a closed socket is handled where it is read


async def quietly(written: Awaitable[None]) -> None:
    """Await a write; a socket closed meanwhile is noticed where it is read, not here."""
    with contextlib.suppress(StreamClosedError, WebSocketClosedError):
        await written


class ConnectionCounter:
    """Connections open per key (a workspace id, an owner), held against a limit."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    def count(self, key: str) -> int:
        return self._open[key]

    def total(self) -> int:
        """Connections open, all keys together."""
        return sum(self._open.values())

    def full(self, key: str, limit: int) -> bool:
        """Whether one more would be over `limit` (0: no limit)."""
        return bool(limit) and self._open[key] >= limit

    def add(self, key: str) -> None:
        self._open[key] += 1

    def remove(self, key: str) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]
