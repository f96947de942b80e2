"""The browser's control messages to ttyd: the handshake and resizes, checked and clamped.

ttyd's protocol (subprotocol ``tty``): the client's first message is a JSON handshake carrying
``AuthToken``, ``columns`` and ``rows``; a resize is ``1`` then ``{"columns": N, "rows": M}``.
Both are bounded in size and nesting before a parser sees them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidHandshake

TTY_SUBPROTOCOL = "tty"
# Client message type of a resize: "1" then {"columns": N, "rows": M}.
RESIZE = "1"
# The handshake and resize messages are a few dozen bytes of flat JSON: anything much larger or
# deeper is refused before parsing (a deep one would exhaust the parser's recursion).
MAX_CONTROL_MESSAGE_BYTES = 4096
MAX_CONTROL_MESSAGE_DEPTH = 2


@dataclass(frozen=True)
class TerminalSizeLimit:
    """The largest terminal a browser may ask for: a terminal emulator allocates memory per cell."""

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


def json_object(data: str | bytes, what: str) -> dict[str, Any]:
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
    received = json_object(message, "terminal handshake")
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
