"""The terminal relay's options, and the relays open right now (counted, closed at shutdown).

The handler that relays one browser terminal is in `handler`; its leg to ttyd in `ttyd`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from ..errors import CLOSE_GOING_AWAY, CLOSE_IDLE_STOPPED, SHUTDOWN_REASON
from ..web.websocket import ConnectionCounter, close_reason
from .handshake import TerminalSizeLimit
from .ttyd import TerminalEndpoint, TtydConnection


class OpenTerminal(Protocol):
    """What the relay's registry needs of one open terminal (a TerminalRelayHandler)."""

    workspace_id: str
    workspace_owner: str
    relay_task: asyncio.Task[None] | None

    @property
    def browser_connected(self) -> bool: ...

    def shut_down(self, code: int = CLOSE_GOING_AWAY, reason: str = SHUTDOWN_REASON) -> None: ...


class TerminalRelay(LoggingConfigurable):
    """Options of the terminal relay, and the relays open right now (closed at shutdown)."""

    ready_timeout = Float(
        30.0,
        help="Seconds the relay waits for ttyd to accept connections after ensuring a container.",
    ).tag(config=True)

    ping_interval = Float(
        20.0,
        help="Seconds between WebSocket keepalive pings on both legs of the relay (0 disables).",
    ).tag(config=True)

    max_message_size = Int(
        8 * 1024 * 1024,
        help="Largest WebSocket message, in bytes, the relay accepts on either leg.",
    ).tag(config=True)

    buffer_limit = Int(
        4 * 1024 * 1024,
        help=(
            "Bytes the relay may hold for a slow reader on either leg (terminal output for the "
            "browser, input for ttyd) before it stops reading the other leg until the reader "
            "catches up (backpressure)."
        ),
    ).tag(config=True)

    max_columns = Int(
        1000,
        help=(
            "Widest terminal a browser may ask for, in the handshake or a resize; larger "
            "requests are cut to it (terminal emulators allocate memory for every cell)."
        ),
    ).tag(config=True)

    max_rows = Int(500, help="Tallest terminal a browser may ask for (see max_columns).").tag(
        config=True
    )

    max_connections_per_workspace = Int(
        8,
        help=(
            "Terminal connections one workspace may have open at once; more are closed at once "
            "with a reason (1008). 0: no limit here (the workspace image's session keeper "
            "takes 64 at most; a terminal beyond that ends at once)."
        ),
    ).tag(config=True)

    max_connections_per_user = Int(
        32,
        help=(
            "Terminal connections one user may have open at once, over all their workspaces; "
            "more are closed at once with a reason (1008). 0: no limit."
        ),
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._open: set[OpenTerminal] = set()
        # Places held: a relay whose browser has left is on its way out and holds none.
        self._per_workspace = ConnectionCounter()
        self._per_user = ConnectionCounter()
        self._placed: set[OpenTerminal] = set()

    @property
    def size_limit(self) -> TerminalSizeLimit:
        return TerminalSizeLimit(columns=self.max_columns, rows=self.max_rows)

    async def dial(
        self,
        endpoint: TerminalEndpoint,
        refresh: Callable[[], Awaitable[TerminalEndpoint]],
        *,
        abandoned: Callable[[], bool],
        log: logging.Logger,
    ) -> TtydConnection | None:
        """Connect to ttyd with these options (see `TtydConnection.connect`)."""
        return await TtydConnection.connect(
            endpoint,
            refresh=refresh,
            ready_timeout=self.ready_timeout,
            ping_interval=self.ping_interval or None,
            max_message_size=self.max_message_size,
            buffer_limit=self.buffer_limit,
            size_limit=self.size_limit,
            abandoned=abandoned,
            log=log,
        )

    def over_limit(self, owner: str, workspace_id: str) -> str | None:
        """Why one more terminal of this owner and workspace is refused, or None."""
        limit = self.max_connections_per_workspace
        if self._per_workspace.full(workspace_id, limit):
            return (
                f"this workspace already has {self._per_workspace.count(workspace_id)} terminals "
                f"open (limit {limit}); close one first"
            )
        limit = self.max_connections_per_user
        if self._per_user.full(owner, limit):
            return (
                f"you already have {self._per_user.count(owner)} terminals open "
                f"(limit {limit}); close one first"
            )
        return None

    def opened(self, relay: OpenTerminal) -> None:
        """`relay` was upgraded: it is open and holds a place until its browser leaves."""
        self._open.add(relay)
        self._placed.add(relay)
        self._per_workspace.add(relay.workspace_id)
        self._per_user.add(relay.workspace_owner)

    def browser_left(self, relay: OpenTerminal) -> None:
        """`relay`'s browser is gone (or going): its place is free, its legs still closing."""
        if relay in self._placed:
            self._placed.discard(relay)
            self._per_workspace.remove(relay.workspace_id)
            self._per_user.remove(relay.workspace_owner)

    def closed(self, relay: OpenTerminal) -> None:
        self.browser_left(relay)
        self._open.discard(relay)

    def open_relays(self) -> list[OpenTerminal]:
        """The relays still running (upgraded, and not yet closed on both legs)."""
        return list(self._open)

    def close_workspace(
        self, workspace_id: str, reason: str, code: int = CLOSE_IDLE_STOPPED
    ) -> None:
        """Close the terminals of one workspace on both legs (it is being stopped)."""
        for relay in list(self._open):
            if relay.workspace_id == workspace_id:
                relay.shut_down(code, close_reason(reason))

    async def close_all(self, timeout: float = 5.0) -> None:
        """Close every relay on both legs; terminal sessions and containers keep running."""
        relays = list(self._open)
        for relay in relays:
            relay.shut_down()
        tasks = [relay.relay_task for relay in relays if relay.relay_task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
