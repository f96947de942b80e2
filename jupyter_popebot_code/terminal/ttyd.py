"""The relay's leg to a workspace's ttyd: connect while it starts, authenticate, probe, pump.

The browser's handshake carries ``AuthToken``; the server fills that in, so the browser never
holds the container's credential.

The leg speaks WebSocket itself on an asyncio protocol (`ttyd_protocol`) instead of tornado's
client: ttyd's frames are server frames, exactly what the browser must receive, so the relay
forwards the raw bytes of every complete data frame it has buffered in one write. Tornado's
client would create a Future per frame read, a Task per frame written, and copy every payload
twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable

# Where a workspace's ttyd listens: the backend interface answers it (imported from here too).
from ..backends.base import TerminalEndpoint as TerminalEndpoint
from ..errors import TerminalUnavailable
from .frames import OP_BINARY, OP_PING, OP_TEXT
from .handshake import RESIZE, TerminalSizeLimit, json_object, read_handshake
from .ttyd_protocol import FrameSink, NotReady, TtydProtocol

# How long to pause between attempts while ttyd starts listening in a fresh container.
_RETRY_DELAY_FIRST = 0.05
_RETRY_DELAY_MAX = 0.5
# After ttyd drops a terminal, wait this long before asking whether it still listens: a killed
# container's shell can die a moment before its ttyd does. Then allow the probe this long.
_PROBE_DELAY = 0.25
_PROBE_TIMEOUT = 2.0


def ttyd_token(credential: str) -> str:
    """ttyd's token for a ``user:password`` credential (what its ``GET /token`` would return)."""
    return base64.b64encode(credential.encode("utf-8")).decode("ascii")


class TtydConnection:
    """One open WebSocket to a workspace's ttyd."""

    def __init__(
        self,
        protocol: TtydProtocol,
        endpoint: TerminalEndpoint,
        buffer_limit: int,
        size_limit: TerminalSizeLimit,
        ping_interval: float | None,
    ) -> None:
        self._protocol = protocol
        self.endpoint = endpoint
        self._size_limit = size_limit
        self._auth_token = ttyd_token(endpoint.credential)
        self._handshake_sent = False
        self._ping_interval = ping_interval
        self._ping_timer: asyncio.TimerHandle | None = None
        transport = protocol.transport
        assert transport is not None
        transport.set_write_buffer_limits(high=buffer_limit)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

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
        refresh: Callable[[], Awaitable[TerminalEndpoint]] | None = None,
    ) -> TtydConnection | None:
        """Connect, retrying while ttyd is still starting, for `ready_timeout` seconds.

        Before each retry `refresh()`, when given, says where ttyd is now (or raises
        TerminalUnavailable). None when `abandoned()` turns true meanwhile (the browser left).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_timeout
        delay = _RETRY_DELAY_FIRST
        while True:
            headers = {"Authorization": f"Basic {ttyd_token(endpoint.credential)}"}
            remaining = max(deadline - loop.time(), 0.1)
            protocol = TtydProtocol(endpoint.host, endpoint.port, headers, max_message_size)
            try:
                await asyncio.wait_for(_upgrade(loop, protocol, endpoint), remaining)
                connection = cls(protocol, endpoint, buffer_limit, size_limit, ping_interval)
                connection._schedule_ping()
                return connection
            except TerminalUnavailable:
                raise
            except (OSError, NotReady, asyncio.TimeoutError) as exc:
                if protocol.transport is not None:
                    protocol.transport.abort()
                error: Exception = exc
            if abandoned():
                return None
            if loop.time() + delay >= deadline:
                log.warning("ttyd not reachable at %s:%s: %s", endpoint.host, endpoint.port, error)
                raise TerminalUnavailable(
                    f"workspace terminal did not start within {ready_timeout:g} s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_DELAY_MAX)
            if refresh is not None:
                endpoint = await refresh()

    # -- keepalive: our pings keep NATs and ttyd's idle checks content; no pong timeout, since
    # while the browser is slow we stop reading ttyd on purpose (its pongs wait in the socket).

    def _schedule_ping(self) -> None:
        if self._ping_interval:
            loop = asyncio.get_running_loop()
            self._ping_timer = loop.call_later(self._ping_interval, self._ping)

    def _ping(self) -> None:
        if self._protocol.lost or self._protocol.close_sent:
            return
        self._protocol.write(OP_PING, b"")
        self._schedule_ping()

    # -- the relay's side ----------------------------------------------------------------------

    def attach(self, sink: FrameSink) -> None:
        """Start forwarding ttyd's frames to `sink` (reading was paused since the upgrade)."""
        self._protocol.attach(sink)

    def resume(self) -> None:
        """Read ttyd again after `sink.forward` asked to stop."""
        self._protocol.resume()

    @property
    def close_code(self) -> int | None:
        return self._protocol.close_code

    @property
    def close_reason(self) -> str | None:
        return self._protocol.close_reason

    def send(self, message: str | bytes) -> Awaitable[None] | None:
        """Forward one browser message; an awaitable means "read no more until it resolves".

        Raises InvalidHandshake for a first message that is not the handshake, or a resize
        that is not a JSON object.
        """
        if not self._handshake_sent:
            message = self._authenticated_handshake(message)
            self._handshake_sent = True
        elif message[:1] in (RESIZE, RESIZE.encode()):
            message = self._clamped_resize(message)
        if isinstance(message, str):
            self._protocol.write(OP_TEXT, message.encode("utf-8"))
        else:
            self._protocol.write(OP_BINARY, message)
        return self._protocol.drained()

    def _authenticated_handshake(self, message: str | bytes) -> str | bytes:
        """The browser's handshake with ttyd's token put in and its size clamped."""
        handshake = read_handshake(message)
        self._size_limit.clamp(handshake)
        handshake["AuthToken"] = self._auth_token
        return _same_type(json.dumps(handshake, separators=(",", ":")), message)

    def _clamped_resize(self, message: str | bytes) -> str | bytes:
        resize = json_object(message[1:], "terminal resize")
        self._size_limit.clamp(resize)
        return _same_type(RESIZE + json.dumps(resize, separators=(",", ":")), message)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        self._protocol.close(code, reason)

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


async def _upgrade(
    loop: asyncio.AbstractEventLoop, protocol: TtydProtocol, endpoint: TerminalEndpoint
) -> None:
    await loop.create_connection(lambda: protocol, endpoint.host, endpoint.port)
    await protocol.upgraded


def _same_type(text: str, like: str | bytes) -> str | bytes:
    return text.encode("utf-8") if isinstance(like, bytes) else text
