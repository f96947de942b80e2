"""Terminal clients for the three paths, built alike: websockets (asyncio), no compression,
TCP_NODELAY, one tight read loop each. Only the framing differs (ttyd's bytes vs terminado's JSON).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from abc import ABC, abstractmethod
from typing import Any

import requests
from websockets.asyncio.client import ClientConnection, connect

COLUMNS = 120
ROWS = 40
OPEN_TIMEOUT_S = 60.0

_TTYD_OUTPUT = ord("0")


async def _connect(url: str, headers: dict[str, str], subprotocols: list[str]) -> ClientConnection:
    ws = await connect(
        url,
        additional_headers=headers,
        subprotocols=subprotocols or None,  # type: ignore[arg-type]
        # A browser would offer permessage-deflate; none of the servers here takes it except
        # ttyd, so it is off everywhere to keep the three paths doing the same work.
        compression=None,
        max_size=None,
        ping_interval=None,
        open_timeout=OPEN_TIMEOUT_S,
        close_timeout=5,
    )
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ws


class TerminalSession(ABC):
    """One open terminal. `read_until` counts the output bytes and frames up to `needle`."""

    kind = ""

    def __init__(self) -> None:
        self.ws: ClientConnection | None = None

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def send_input(self, text: str) -> None: ...

    @abstractmethod
    async def _read_until(self, needle: str) -> tuple[int, int]: ...

    async def read_until(self, needle: str, timeout_s: float) -> tuple[int, int]:
        return await asyncio.wait_for(self._read_until(needle), timeout_s)

    async def drain(self, quiet_s: float = 0.3, limit_s: float = 10.0) -> None:
        """Read and drop output until none comes for `quiet_s` (at most `limit_s`)."""
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while loop.time() < deadline:
            try:
                await asyncio.wait_for(self.ws.recv(), quiet_s)
            except TimeoutError:
                return

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None


class TtydProtocolSession(TerminalSession):
    """ttyd's own client protocol: used straight to ttyd and through the relay."""

    def __init__(self, kind: str, url: str, headers: dict[str, str], auth_token: str) -> None:
        super().__init__()
        self.kind = kind
        self.url = url
        self.headers = headers
        self.auth_token = auth_token

    async def open(self) -> None:
        self.ws = await _connect(self.url, self.headers, ["tty"])
        handshake = {"AuthToken": self.auth_token, "columns": COLUMNS, "rows": ROWS}
        await self.ws.send(json.dumps(handshake))

    async def send_input(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send(b"0" + text.encode())

    async def _read_until(self, needle: str) -> tuple[int, int]:
        assert self.ws is not None
        recv = self.ws.recv
        target = needle.encode()
        keep = max(len(target) - 1, 0)
        tail = b""
        total = frames = 0
        while True:
            frame = await recv()
            if not isinstance(frame, bytes) or not frame or frame[0] != _TTYD_OUTPUT:
                continue
            total += len(frame) - 1
            frames += 1
            if frame.find(target, 1) >= 0 or (keep and target in tail + frame[1 : 1 + keep]):
                return total, frames
            if keep:
                tail = frame[-keep:] if len(frame) > keep else (tail + frame[1:])[-keep:]


class TerminadoSession(TerminalSession):
    """JupyterLab's own terminal: jupyter_server_terminals' terminado WebSocket, JSON frames."""

    kind = "terminado"

    def __init__(self, base_url: str, ws_base_url: str, token: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.ws_base_url = ws_base_url
        self.headers = {"Authorization": f"token {token}"}
        self.name = ""

    async def open(self) -> None:
        response = await asyncio.to_thread(
            requests.post, f"{self.base_url}api/terminals", headers=self.headers, timeout=60
        )
        response.raise_for_status()
        self.name = response.json()["name"]
        url = f"{self.ws_base_url}terminals/websocket/{self.name}"
        self.ws = await _connect(url, self.headers, [])
        await self.ws.send(json.dumps(["set_size", ROWS, COLUMNS]))

    async def send_input(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(["stdin", text]))

    async def _read_until(self, needle: str) -> tuple[int, int]:
        assert self.ws is not None
        recv = self.ws.recv
        keep = max(len(needle) - 1, 0)
        tail = ""
        total = frames = 0
        loads = json.loads
        while True:
            message: Any = loads(await recv())
            if message[0] != "stdout":
                continue
            text: str = message[1]
            total += len(text)  # seq and echo output is ASCII: characters are bytes
            frames += 1
            if needle in text or (keep and needle in tail + text[:keep]):
                return total, frames
            if keep:
                tail = text[-keep:] if len(text) >= keep else (tail + text)[-keep:]

    async def close(self) -> None:
        await super().close()
        if self.name:
            await asyncio.to_thread(
                requests.delete,
                f"{self.base_url}api/terminals/{self.name}",
                headers=self.headers,
                timeout=60,
            )
            self.name = ""


def ttyd_session(host: str, credential: str) -> TtydProtocolSession:
    """Straight to the container's ttyd, with its Basic auth and handshake token."""
    token = base64.b64encode(credential.encode()).decode()
    return TtydProtocolSession(
        "ttyd", f"ws://{host}:7681/ws", {"Authorization": f"Basic {token}"}, token
    )


def relay_session(ws_base_url: str, token: str, workspace_id: str) -> TtydProtocolSession:
    """Through the extension's relay; the handshake token is empty (the relay puts it in)."""
    return TtydProtocolSession(
        "relay",
        f"{ws_base_url}api/ws/code/{workspace_id}",
        {"Authorization": f"token {token}"},
        "",
    )
