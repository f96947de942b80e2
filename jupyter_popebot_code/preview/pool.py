"""Keep-alive connections to the apps in workspaces, reused by the next preview request.

A connection is kept under its (owner, workspace, address, port): one opened for a workspace's
app never carries a request to another workspace, nor another owner's. The pool is bounded: at
most `size` idle connections per key, each closed after `idle_timeout` seconds unused, and all of
a workspace's at once when it stops or is deleted (`close_workspace`).

A kept connection may have been closed by the app meanwhile; `take` looks (a non-blocking peek at
the socket) and drops it then. The app may still close it while the next request is on its way:
the HTTP leg retries such a request once on a new connection when it had no body.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from dataclasses import dataclass

from tornado.iostream import IOStream


@dataclass(frozen=True)
class PoolKey:
    owner: str
    workspace_id: str
    host: str
    port: int


def still_open(stream: IOStream) -> bool:
    """Whether an idle connection can carry a request: open, and nothing unasked-for waiting."""
    if stream.closed():
        return False
    try:
        stream.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True  # nothing to read: the app keeps it open
    except OSError:
        return False
    # b"": the app closed it; bytes: an answer nobody asked for. Either way, not reusable.
    return False


class UpstreamPool:
    """Idle connections per PoolKey, newest first; closed after `idle_timeout` seconds."""

    def __init__(self, size: int, idle_timeout: float) -> None:
        self.size = size
        self.idle_timeout = idle_timeout
        self._idle: dict[PoolKey, deque[tuple[float, IOStream]]] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def take(self, key: PoolKey) -> IOStream | None:
        """An idle connection of this key that is still open, or None."""
        kept = self._idle.get(key)
        while kept:
            _, stream = kept.pop()
            if not kept:
                del self._idle[key]
            if still_open(stream):
                return stream
            stream.close()
        return None

    def give(self, key: PoolKey, stream: IOStream) -> None:
        """Keep a connection whose last exchange ended cleanly (else it is closed)."""
        if self.size <= 0 or self.idle_timeout <= 0 or stream.closed():
            stream.close()
            return
        kept = self._idle.setdefault(key, deque())
        kept.append((time.monotonic(), stream))
        while len(kept) > self.size:
            kept.popleft()[1].close()
        if self._sweep is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self.idle_timeout, self._close_expired)

    def idle(self, workspace_id: str) -> int:
        """How many connections of the workspace are kept right now."""
        return sum(len(v) for k, v in self._idle.items() if k.workspace_id == workspace_id)

    def close_workspace(self, workspace_id: str) -> None:
        for key in [k for k in self._idle if k.workspace_id == workspace_id]:
            for _, stream in self._idle.pop(key):
                stream.close()

    def close_all(self) -> None:
        for kept in self._idle.values():
            for _, stream in kept:
                stream.close()
        self._idle.clear()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    def _close_expired(self) -> None:
        self._sweep = None
        oldest_allowed = time.monotonic() - self.idle_timeout
        for key in list(self._idle):
            kept = self._idle[key]
            while kept and kept[0][0] <= oldest_allowed:
                kept.popleft()[1].close()
            if not kept:
                del self._idle[key]
        if self._idle:
            next_due = min(kept[0][0] for kept in self._idle.values()) + self.idle_timeout
            delay = max(0.05, next_due - time.monotonic())
            self._sweep = asyncio.get_running_loop().call_later(delay, self._close_expired)
