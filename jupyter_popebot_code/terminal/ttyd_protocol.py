"""The socket to a workspace's ttyd: the WebSocket upgrade, then frames parsed only to headers.

ttyd's frames are server frames, exactly what the browser must receive, so complete data frames
are handed on as raw bytes, many in one piece (boundaries intact, nothing decoded or copied per
frame); control frames are answered here or become the close the relay passes on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Awaitable
from typing import Protocol

from ..errors import CLOSE_MESSAGE_TOO_BIG, CLOSE_PROTOCOL_ERROR, TerminalUnavailable
from .frames import OP_CLOSE, OP_PING, OP_PONG, client_frame, close_payload
from .handshake import TTY_SUBPROTOCOL

TTYD_WS_PATH = "/ws"
# Bytes read from ttyd per wake-up: ttyd's frames are at most one pty read (64 KiB) plus a type
# byte, and one recv this size keeps the browser's backlog close to its limit.
_READ_SIZE = 64 * 1024
_MAX_RESPONSE_HEAD = 64 * 1024
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class NotReady(Exception):
    """ttyd did not complete the WebSocket upgrade (yet): retried while it starts."""


class FrameSink(Protocol):
    """Where ttyd's data frames go: the browser leg of the relay."""

    def forward(self, frames: memoryview) -> bool:
        """Write complete WebSocket frames as they are; False: stop reading until resume()."""
        ...

    def backend_closed(self) -> None:
        """ttyd's connection is gone (close frame or not); called once."""
        ...


class TtydProtocol(asyncio.Protocol):
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
            self.upgraded.set_exception(NotReady(f"connection closed during the upgrade: {exc}"))
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
        if opcode == OP_PING:
            self.write(OP_PONG, payload)
        elif opcode == OP_CLOSE:
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
        self.transport.write(client_frame(opcode, payload))

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
            self.write(OP_CLOSE, close_payload(code, reason))
            self.close_sent = True
        # Flushes what is buffered, then closes TCP; ttyd ends the session either way.
        self.transport.close()
