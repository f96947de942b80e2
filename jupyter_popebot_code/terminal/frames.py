"""WebSocket frames as a client writes them (RFC 6455 §5): masked, with no tornado helper."""

from __future__ import annotations

import os
import struct

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


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


def client_frame(opcode: int, payload: bytes) -> bytes:
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


def close_payload(code: int | None, reason: str | None) -> bytes:
    """A close frame's payload: the code, then the reason cut to what fits (RFC 6455 §5.5)."""
    if code is None:
        return b""
    return struct.pack("!H", code) + (reason or "").encode("utf-8")[:123]
