"""The relay's leg to a workspace's ttyd: connect while it starts, authenticate, probe, pump.

ttyd's protocol (subprotocol ``tty``): the client's first message is a JSON handshake carrying
``AuthToken``; the server fills that in, so the browser never holds the container's credential.

The leg speaks WebSocket itself on an asyncio protocol instead of tornado's client: ttyd's frames
are server frames, exactly what the browser must receive, so the relay forwards the raw bytes of
every complete data frame it has buffered in one write (boundaries intact, nothing decoded or
copied per frame). Tornado's client would create a Future per frame read, a Task per frame
written, and copy every payload twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

# Where a workspace's ttyd listens: the backend interface answers it (imported from here too).
from ..backends.base import TerminalEndpoint as TerminalEndpoint

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
# Bytes read from ttyd per wake-up: ttyd's frames are at most one pty read (64 KiB) plus a type
# byte, and one recv this size keeps the browser's backlog close to its limit.
_READ_SIZE = 64 * 1024
_MAX_RESPONSE_HEAD = 64 * 1024
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_OP_CONTINUATION, _OP_TEXT, _OP_BINARY = 0x0, 0x1, 0x2
_OP_CLOSE, _OP_PING, _OP_PONG = 0x8, 0x9, 0xA
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_PROTOCOL_ERROR = 1002
# The handshake and resize messages are a few dozen bytes of flat JSON: anything much larger or
# deeper is refused before parsing (a deep one would exhaust the parser's recursion).
MAX_CONTROL_MESSAGE_BYTES = 4096
MAX_CONTROL_MESSAGE_DEPTH = 2


class TerminalUnavailable(Exception):
    """The workspace terminal cannot be reached; the message is shown to the user."""


class InvalidHandshake(ValueError):
    """A handshake or resize message from the browser that ttyd must not be given."""


class _NotReady(Exception):
    """ttyd did not complete the WebSocket upgrade (yet): retried while it starts."""


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
    """`data` as a JSON object, its size and nesting bounded before the parser sees it."""
    if len(data) > MAX_CONTROL_MESSAGE_BYTES:
        raise InvalidHandshake(f"{what} is longer than {MAX_CONTROL_MESSAGE_BYTES} bytes")
    if _nesting_depth(data) > MAX_CONTROL_MESSAGE_DEPTH:
        raise InvalidHandshake(f"{what} is nested too deeply")
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise InvalidHandshake(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidHandshake(f"{what} is not a JSON object")
    return value


def _nesting_depth(data: str | bytes) -> int:
    """How deep JSON arrays and objects nest in `data` (brackets inside strings not counted)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_handshake(message: str | bytes) -> dict[str, Any]:
    """The browser's first message as ttyd's handshake object, or InvalidHandshake saying why.

    Its shape: {"AuthToken": string, "columns": integer, "rows": integer}; other keys are
    dropped so ttyd only ever sees those.
    """
    if message[:1] not in ("{", b"{"):
        raise InvalidHandshake("the first message must be the terminal handshake (a JSON object)")
    received = _json_object(message, "terminal handshake")
    token = received.get("AuthToken", "")
    if not isinstance(token, str):
        raise InvalidHandshake("terminal handshake AuthToken is not a string")
    handshake: dict[str, Any] = {"AuthToken": token}
    for key in ("columns", "rows"):
        value = received.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidHandshake(f"terminal handshake {key} is not an integer")
        handshake[key] = value
    return handshake


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

    def add(self, size: int) -> None:
        self.bytes += size
        if self.bytes > self.peak:
            self.peak = self.bytes

    def flushed(self, size: int) -> None:
        self.bytes -= size

    def room_for(self, size: int) -> bool:
        """Whether `size` more bytes keep the backlog within its limit (always, when empty)."""
        return self.bytes == 0 or self.bytes + size <= self.limit


class FrameSink(Protocol):
    """Where ttyd's data frames go: the browser leg of the relay."""

    def forward(self, frames: memoryview) -> bool:
        """Write complete WebSocket frames as they are; False: stop reading until resume()."""
        ...

    def backend_closed(self) -> None:
        """ttyd's connection is gone (close frame or not); called once."""
        ...


def mask_payload(mask: bytes, payload: bytes) -> bytes:
    """XOR `payload` with the repeated 4-byte `mask` (RFC 6455 §5.3).

    One XOR of two big integers, done in C: fast enough for pastes, with no private tornado
    helper (`tornado.util._websocket_mask`) to break on an upgrade.
    """
    size = len(payload)
    if size == 0:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 §5.3: everything a client sends is masked)."""
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length <= 0xFFFF:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    mask = os.urandom(4)
    return head + mask + mask_payload(mask, payload)


def _close_payload(code: int | None, reason: str | None) -> bytes:
    if code is None:
        return b""
    return struct.pack("!H", code) + (reason or "").encode("utf-8")[:123]


class _TtydProtocol(asyncio.Protocol):
    """The socket to ttyd: the upgrade, then frames parsed only as far as their headers."""

    def __init__(self, host: str, port: int, headers: dict[str, str], max_message_size: int):
        self._host = host
        self._port = port
        self._headers = headers
        self._max_message_size = max_message_size
        self._key = base64.b64encode(os.urandom(16))
        self._head = bytearray()
        self._partial = b""
        self.transport: asyncio.Transport | None = None
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sink: FrameSink | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.close_sent = False
        self.lost = False
        self._drained: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._paused = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # Smaller reads than asyncio's 256 KiB keep each forward within the browser's limit.
        transport.max_size = _READ_SIZE  # type: ignore[attr-defined]
        lines = [
            f"GET {TTYD_WS_PATH} HTTP/1.1",
            f"Host: {self._host}:{self._port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
            f"Sec-WebSocket-Protocol: {TTY_SUBPROTOCOL}",
            *(f"{name}: {value}" for name, value in self._headers.items()),
        ]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def data_received(self, data: bytes) -> None:
        if not self.upgraded.done():
            self._upgrade_data(data)
            return
        self._frames(data)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.upgraded.done():
            self.upgraded.set_exception(_NotReady(f"connection closed during the upgrade: {exc}"))
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self.sink is not None:
            if self._partial:
                self._frames(b"", final=True)  # what waited for the browser still goes
            sink, self.sink = self.sink, None
            if sink is not None:
                sink.backend_closed()

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- the upgrade -------------------------------------------------------------------------

    def _upgrade_data(self, data: bytes) -> None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > _MAX_RESPONSE_HEAD:
                self._fail_upgrade(TerminalUnavailable("workspace terminal sent no valid answer"))
            return
        head, rest = bytes(self._head[:end]).decode("latin-1"), bytes(self._head[end + 4 :])
        self._head = bytearray()
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status != 101:
            self._fail_upgrade(
                TerminalUnavailable(f"workspace terminal refused the connection (HTTP {status})")
            )
            return
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        digest = hashlib.sha1(self._key + _WS_GUID, usedforsecurity=False).digest()
        accept = base64.b64encode(digest).decode()
        if headers.get("sec-websocket-accept") != accept:
            self._fail_upgrade(TerminalUnavailable("workspace terminal answered a bad upgrade"))
            return
        assert self.transport is not None
        # Nothing is read until the relay attaches its sink; what came early waits here.
        self.transport.pause_reading()
        self._partial = rest
        self.upgraded.set_result(None)

    def _fail_upgrade(self, error: Exception) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(error)
        assert self.transport is not None
        self.transport.abort()

    # -- frames -----------------------------------------------------------------------------

    def attach(self, sink: FrameSink) -> None:
        self.sink = sink
        if self.lost:
            self.sink = None
            sink.backend_closed()
            return
        early, self._partial = self._partial, b""
        if early:
            self._frames(early)
        if self.transport is not None and self.sink is not None and not self._paused:
            self.transport.resume_reading()

    def resume(self) -> None:
        """The browser caught up: forward what waited, then read ttyd again."""
        self._paused = False
        pending, self._partial = self._partial, b""
        if pending:
            self._frames(pending)
        if not self._paused and self.transport is not None and not self.lost:
            self.transport.resume_reading()

    def _frames(self, data: bytes, final: bool = False) -> None:
        """Forward every complete data frame in one write; handle control frames; keep the rest.

        When the sink asks to stop, the unparsed rest waits in `_partial` for resume(); `final`
        (ttyd is gone) forwards everything regardless.
        """
        if self._partial:
            data = self._partial + data
            self._partial = b""
        view = memoryview(data)
        size = len(data)
        start = pos = 0  # start: first byte of the data frames not yet forwarded
        while size - pos >= 2:
            first, second = data[pos], data[pos + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", data, pos + 2)
                head = 10
            if second & 0x80 or first & 0x70:
                self._protocol_error(CLOSE_PROTOCOL_ERROR, "masked or extended frame from ttyd")
                return
            if length > self._max_message_size:
                self._protocol_error(CLOSE_MESSAGE_TOO_BIG, "message too big")
                return
            end = pos + head + length
            if end > size:
                break
            if first & 0x08:  # a control frame: what came before goes first
                if start < pos and not self._forward(view[start:pos]) and not final:
                    self._stop(data[pos:])
                    return
                self._control(first & 0x0F, data[pos + head : end])
                start = end
                if self.sink is None:
                    return
            pos = end
        rest = data[pos:] if pos < size else b""
        if start < pos and not self._forward(view[start:pos]) and not final:
            self._stop(rest)
            return
        self._partial = rest

    def _forward(self, frames: memoryview) -> bool:
        sink = self.sink
        return sink is None or sink.forward(frames)

    def _stop(self, rest: bytes) -> None:
        self._partial = rest
        self._paused = True
        if self.transport is not None and not self.lost:
            self.transport.pause_reading()

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == _OP_PING:
            self.write(_OP_PONG, payload)
        elif opcode == _OP_CLOSE:
            if len(payload) >= 2:
                (self.close_code,) = struct.unpack_from("!H", payload)
                self.close_reason = payload[2:].decode("utf-8", "replace")
            # Answer with the same code, then let TCP close: the session is over.
            self.close(self.close_code)

    def _protocol_error(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self.close(code, reason)

    # -- writing ------------------------------------------------------------------------------

    def write(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.close_sent or self.transport.is_closing():
            return
        self.transport.write(_frame(opcode, payload))

    def drained(self) -> Awaitable[None] | None:
        """An awaitable while the socket's buffer is over its high-water mark, else None."""
        if not self._paused_writing or self.lost:
            return None
        if self._drained is None or self._drained.done():
            self._drained = asyncio.get_running_loop().create_future()
        return self._drained

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if not self.close_sent:
            self.write(_OP_CLOSE, _close_payload(code, reason))
            self.close_sent = True
        # Flushes what is buffered, then closes TCP; ttyd ends the session either way.
        self.transport.close()


class TtydConnection:
    """One open WebSocket to a workspace's ttyd."""

    def __init__(
        self,
        protocol: _TtydProtocol,
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
            protocol = _TtydProtocol(endpoint.host, endpoint.port, headers, max_message_size)
            try:
                await asyncio.wait_for(_upgrade(loop, protocol, endpoint), remaining)
                connection = cls(protocol, endpoint, buffer_limit, size_limit, ping_interval)
                connection._schedule_ping()
                return connection
            except TerminalUnavailable:
                raise
            except (OSError, _NotReady, asyncio.TimeoutError) as exc:
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
        self._protocol.write(_OP_PING, b"")
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
            self._protocol.write(_OP_TEXT, message.encode("utf-8"))
        else:
            self._protocol.write(_OP_BINARY, message)
        return self._protocol.drained()

    def _authenticated_handshake(self, message: str | bytes) -> str | bytes:
        """The browser's handshake with ttyd's token put in and its size clamped."""
        handshake = read_handshake(message)
        self._size_limit.clamp(handshake)
        handshake["AuthToken"] = self._auth_token
        return _same_type(json.dumps(handshake, separators=(",", ":")), message)

    def _clamped_resize(self, message: str | bytes) -> str | bytes:
        resize = _json_object(message[1:], "terminal resize")
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
    loop: asyncio.AbstractEventLoop, protocol: _TtydProtocol, endpoint: TerminalEndpoint
) -> None:
    await loop.create_connection(lambda: protocol, endpoint.host, endpoint.port)
    await protocol.upgraded


def _same_type(text: str, like: str | bytes) -> str | bytes:
    return text.encode("utf-8") if isinstance(like, bytes) else text
