"""WebSocket relay between the browser and a workspace container's ttyd (subprotocol ``tty``).

The handler authenticates, authorizes and checks the Origin before the upgrade, then pumps frames
both ways: ttyd's output through `browser.BrowserLeg`, the browser's input through
`ttyd.TtydConnection`. Failures become close codes and reasons from `errors.ANSWERS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server._tz import utcnow
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.iostream import IOStream
from tornado.websocket import WebSocketHandler

from .. import metrics
from ..core.store import Workspace
from ..errors import (
    BACKEND_LOST_REASON,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    RELAY_FAILED_REASON,
    SESSION_ENDED_REASON,
    SHUTDOWN_REASON,
    ContainerError,
    ContainerNotRunning,
    DockerUnavailable,
    InvalidHandshake,
    NoIdentity,
    TerminalUnavailable,
    WorkspaceNotFound,
    answer,
)
from ..web.base import CodeWorkspacesMixin
from ..web.websocket import JSONRefusalsMixin, WriteBacklog, close_reason, sendable_close
from .browser import BrowserLeg
from .handshake import TTY_SUBPROTOCOL, read_handshake
from .relay import TerminalRelay
from .ttyd import TerminalEndpoint, TtydConnection

# Container states from which a container comes up by itself: the relay keeps dialling.
_COMING_UP = frozenset({"created", "restarting"})
# Activity is written at most this often per connection: terminals send many small frames.
_ACTIVITY_INTERVAL = 1.0


async def close_after_ttyd(
    backend: TtydConnection, container_running: Callable[[], Awaitable[bool]]
) -> tuple[int, str | None]:
    """The close the browser gets when ttyd's leg ended: ttyd's own, or why it ended abruptly."""
    code, reason = sendable_close(backend.close_code, backend.close_reason)
    if code is None:
        # ttyd 1.7.7 drops the TCP connection without a close frame even when the shell exits
        # normally; ttyd still listening in a running container tells that apart from a
        # container being stopped or killed (ttyd may still accept during a stop).
        if await backend.still_listening() and await container_running():
            return CLOSE_NORMAL, SESSION_ENDED_REASON
        return CLOSE_INTERNAL_ERROR, BACKEND_LOST_REASON
    if code == CLOSE_INTERNAL_ERROR and not reason:
        reason = SESSION_ENDED_REASON
    return code, reason


class TerminalRelayHandler(
    JSONRefusalsMixin, CodeWorkspacesMixin, WebSocketMixin, WebSocketHandler, JupyterHandler
):
    """Relays one browser terminal to its workspace's ttyd, authorized before the upgrade."""

    def initialize(self, name: str) -> None:
        super().initialize(name)
        self.workspace_id = ""
        self._workspace: Workspace | None = None
        self.workspace_owner = ""
        self._backend: TtydConnection | None = None
        self._pending: list[str | bytes] = []
        self._pending_bytes = 0
        self._handshake_read = False
        self._backend_ready: asyncio.Future[None] | None = None
        self.relay_task: asyncio.Task[None] | None = None
        self._client_closed = False
        self._activity_at = 0.0
        self._browser = BrowserLeg(
            self._client_stream,
            self.relay.buffer_limit,
            on_output=self._record_activity,
            resume_backend=self._resume_backend,
        )

    @property
    def relay(self) -> TerminalRelay:
        relay: TerminalRelay = self.code_app.terminal_relay
        return relay

    @property
    def client_backlog(self) -> WriteBacklog:
        """Bytes written to the browser that its socket has not taken yet."""
        return self._browser.backlog

    # -- options of the browser leg -------------------------------------------------------

    def set_default_headers(self) -> None:
        """JupyterHandler's page headers (CSP and friends) mean nothing on a WebSocket."""

    def get_compression_options(self) -> dict[str, Any] | None:
        """No permessage-deflate: it costs latency and CPU on every keystroke and screenful."""
        return None

    @property
    def ping_interval(self) -> float | None:
        """Seconds between tornado's own keepalive pings (WebSocketMixin's ms timer is unused)."""
        return self.relay.ping_interval or None

    @property
    def ping_timeout(self) -> float | None:
        """A browser that has not answered a ping after one interval is gone."""
        return self.relay.ping_interval or None

    @property
    def max_message_size(self) -> int:
        return self.relay.max_message_size

    def skip_check_origin(self) -> bool:
        """Never skipped: jupyter_server waives it for token logins, but this is a shell.

        Scripts send no Origin and still pass; browsers must be same-site or allow_origin'ed.
        """
        return False

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return TTY_SUBPROTOCOL if TTY_SUBPROTOCOL in subprotocols else None

    # -- before the upgrade: plain HTTP answers ---------------------------------------------

    # jupyter_server would answer a missing identity with 403; this endpoint's contract is 401,
    # so authentication is checked here, first thing, instead of in prepare().
    @allow_unauthenticated
    async def get(self, workspace_id: str) -> None:
        """Authenticate, authorize and check the Origin, then upgrade; nothing is started before."""
        user = self.current_user
        if user is None:
            raise web.HTTPError(401, "Authentication required")
        if not self.check_origin(self.request.headers.get("Origin")):
            raise web.HTTPError(403, "Cross-origin WebSocket refused")
        authorized = await ensure_async(
            self.authorizer.is_authorized(self, user, "execute", self.auth_resource)
        )
        if not authorized:
            raise web.HTTPError(403, f"Not authorized to execute on {self.auth_resource}")
        try:
            owner = self.owner
        except NoIdentity as exc:
            refusal = answer(exc, "rest")
            assert refusal is not None
            raise web.HTTPError(refusal.code, refusal.message) from exc
        workspace = await self.service.get(owner, workspace_id)
        if workspace is None:
            # Unknown and someone else's look the same, so ids cannot be probed.
            raise web.HTTPError(403, "No such workspace for this user")
        self.workspace_id = workspace_id
        self.workspace_owner = owner
        self._workspace = workspace
        await super().get(workspace_id=workspace_id)

    # -- after the upgrade --------------------------------------------------------------------

    @property
    def browser_connected(self) -> bool:
        return not self._client_closed

    def open(self, workspace_id: str) -> None:
        """Start reaching ttyd in the background so pongs and early frames are read meanwhile."""
        self.set_nodelay(True)
        refused = self.relay.over_limit(self.workspace_owner, workspace_id)
        if refused:
            self.log.warning("Terminal for workspace %s refused: %s", workspace_id, refused)
            self._client_closed = True
            self.close(CLOSE_POLICY_VIOLATION, close_reason(refused))
            return
        self.log.info(
            "Terminal relay for workspace %s (owner %s) opened", workspace_id, self.workspace_owner
        )
        self.relay.opened(self)
        self._record_activity()
        self._backend_ready = asyncio.get_running_loop().create_future()
        self.relay_task = asyncio.create_task(self._relay())

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """Forward a browser frame to ttyd, or queue it in order until ttyd is connected."""
        metrics.TERMINAL_FROM_BROWSER.inc(len(message))
        self._record_activity()
        if not self._handshake_read:
            # Checked on arrival, not when ttyd is reached: a bad one closes at once.
            self._handshake_read = True
            try:
                read_handshake(message)
            except InvalidHandshake as exc:
                self._refuse(exc)
                return None
        backend = self._backend
        if backend is None:
            if self.ws_connection is None:
                return None  # we are closing this socket: nothing more will reach ttyd
            self._pending.append(message)
            self._pending_bytes += len(message)
            if self._pending_bytes > self.relay.buffer_limit:
                # Stop reading the browser until ttyd is there: nothing dropped, memory bounded.
                return self._backend_ready
            return None
        return self._send_to_backend(backend, message)

    def on_close(self) -> None:
        """The browser left: close only our socket to ttyd (the session and container stay)."""
        self._client_closed = True
        self.relay.browser_left(self)
        self.log.info(
            "Terminal relay for workspace %s closed (browser close code %s)",
            self.workspace_id,
            self.close_code,
        )
        if self._backend is not None:
            self._backend.close(*sendable_close(self.close_code, self.close_reason))
        self._resolve_backend_ready()

    def shut_down(self, code: int = CLOSE_GOING_AWAY, reason: str = SHUTDOWN_REASON) -> None:
        """Close both legs now, telling the browser why."""
        self._client_closed = True
        self.relay.browser_left(self)
        if self._backend is not None:
            self._backend.close(CLOSE_GOING_AWAY)
        self.close(code, reason)
        self._resolve_backend_ready()

    # -- relaying ---------------------------------------------------------------------------

    async def _relay(self) -> None:
        """Reach ttyd, then pump its output to the browser until either side closes."""
        backend = None
        try:
            try:
                backend = await self._connect_backend()
            finally:
                self._resolve_backend_ready()
            if backend is not None:
                backend.attach(self._browser)
                await self._browser.backend_gone
                await self._backend_closed(backend)
        except Exception as exc:
            closing = answer(exc, "terminal")
            if closing is None:
                self.log.exception("Terminal relay for workspace %s failed", self.workspace_id)
                self._fail(RELAY_FAILED_REASON)
            else:
                self._fail(closing.message, closing.code)
        finally:
            if backend is not None:
                backend.close()
            self.relay.closed(self)

    async def _connect_backend(self) -> TtydConnection | None:
        """Ensure the container, wait for ttyd, connect and flush the queued frames."""
        workspace = self._workspace
        assert workspace is not None
        result = await self.service.ensure(self.workspace_owner, workspace.id)
        if result.status not in ("running", "started", "created"):
            raise TerminalUnavailable(result.message or f"workspace is {result.status}")
        if self._client_closed:
            return None
        endpoint = await self.service.terminal_endpoint(workspace)

        async def current_endpoint() -> TerminalEndpoint:
            # Asked of Docker after a failed dial: a container stopped or recreated behind the
            # server's back a moment ago fails at once, or is dialled at its new address; one
            # coming back up (restarting, a Swarm task being replaced) is waited for.
            try:
                return await self.service.terminal_endpoint(workspace, fresh=True)
            except ContainerNotRunning as exc:
                if exc.status not in _COMING_UP:
                    raise
            return endpoint

        backend = await self.relay.dial(
            endpoint, current_endpoint, abandoned=lambda: self._client_closed, log=self.log
        )
        if backend is None:
            return None
        if self._client_closed:
            backend.close(CLOSE_GOING_AWAY)
            return None
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        for message in pending:
            self._send_to_backend(backend, message)
        # Set only after the queue is flushed, with no await in between, so order is kept.
        self._backend = backend
        self.log.info(
            "Terminal relay for workspace %s connected to ttyd at %s:%s",
            workspace.id,
            endpoint.host,
            endpoint.port,
        )
        return backend

    def _client_stream(self) -> IOStream | None:
        connection = self.ws_connection
        if connection is None or connection.is_closing() or self._client_closed:
            return None
        return connection.stream

    def _resume_backend(self) -> None:
        if self._backend is not None:
            self._backend.resume()

    def _send_to_backend(
        self, backend: TtydConnection, message: str | bytes
    ) -> Awaitable[None] | None:
        try:
            return backend.send(message)
        except InvalidHandshake as exc:
            self._refuse(exc)
            return None

    def _refuse(self, exc: InvalidHandshake) -> None:
        """Close (1007): the browser sent a message ttyd must not be given."""
        refusal = answer(exc, "terminal")
        assert refusal is not None
        self.log.warning("Terminal relay for workspace %s: %s", self.workspace_id, exc)
        self.close(refusal.code, close_reason(refusal.message))

    async def _backend_closed(self, backend: TtydConnection) -> None:
        """ttyd closed: pass its code and reason on, or explain an abrupt end."""
        if self._client_closed:
            return
        code, reason = await close_after_ttyd(backend, self._container_running)
        if self._client_closed:
            return
        self.log.info(
            "Terminal relay for workspace %s: ttyd closed (code %s, sent %s to the browser)",
            self.workspace_id,
            backend.close_code,
            code,
        )
        self.close(code, reason)

    async def _container_running(self) -> bool:
        try:
            _, status = await self.service.describe(self.workspace_owner, self.workspace_id)
        except (WorkspaceNotFound, DockerUnavailable, ContainerError):
            return False
        return status == "running"

    def _fail(self, reason: str, code: int = CLOSE_INTERNAL_ERROR) -> None:
        self.log.warning("Terminal relay for workspace %s: %s", self.workspace_id, reason)
        if not self._client_closed:
            self.close(code, close_reason(reason))

    # -- bookkeeping ------------------------------------------------------------------------

    def _resolve_backend_ready(self) -> None:
        if self._backend_ready is not None and not self._backend_ready.done():
            self._backend_ready.set_result(None)

    def _record_activity(self) -> None:
        """Mark the workspace and the server as used, so idle culling sees terminal traffic."""
        now = asyncio.get_running_loop().time()
        if now - self._activity_at < _ACTIVITY_INTERVAL:
            return
        self._activity_at = now
        self.service.record_activity(self.workspace_id)
        self.service.note_user_activity(self.workspace_owner)
        self.settings["api_last_activity"] = utcnow()


def relay_handlers() -> list[tuple[str, type[TerminalRelayHandler]]]:
    """Routes of the terminal relay (the ExtensionApp prefixes base_url)."""
    return [(r"/api/ws/code/(?P<workspace_id>[^/]+)", TerminalRelayHandler)]
