"""WebSocket relay between the browser and a workspace container's ttyd (subprotocol ``tty``).

The handler authenticates, authorizes and checks the Origin before the upgrade, then pumps frames
both ways; the ttyd leg itself lives in `ttyd.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from functools import partial
from http.client import responses
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server._tz import utcnow
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import WebSocketHandler
from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from .. import metrics
from ..auth.owner import NoIdentity
from ..backends.docker.engine import ContainerNotRunning, NodeUnavailable
from ..core.service import ContainerError, DockerUnavailable, QuotaExceeded, WorkspaceNotFound
from ..core.store import Workspace
from ..web.base import CodeWorkspacesMixin
from .ttyd import (
    TTY_SUBPROTOCOL,
    InvalidHandshake,
    TerminalEndpoint,
    TerminalSizeLimit,
    TerminalUnavailable,
    TtydConnection,
    WriteBacklog,
    read_handshake,
)

# RFC 6455: a close frame's reason is at most 123 bytes (125 minus the 2-byte code).
MAX_CLOSE_REASON_BYTES = 123
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
# The workspace was stopped for lack of activity: final, the browser should not reconnect by
# itself (that would start it again); 4400-4499 are final for the JupyterLab front end.
CLOSE_IDLE_STOPPED = 4408
# Codes that only describe what happened locally and must never appear in a close frame.
_UNSENDABLE_CLOSE_CODES = frozenset({1004, 1005, 1006, 1015})

BACKEND_LOST_REASON = "workspace terminal closed unexpectedly (container stopped?)"
SESSION_ENDED_REASON = "workspace terminal session ended"
ENGINE_DOWN_REASON = "the Docker engine is not reachable; try again later"
SHUTDOWN_REASON = "Jupyter server is shutting down"

# Container states from which a container comes up by itself: the relay keeps dialling.
_COMING_UP = frozenset({"created", "restarting"})
# Activity is written at most this often per connection: terminals send many small frames.
_ACTIVITY_INTERVAL = 1.0


def close_reason(text: str) -> str:
    """Cut ``text`` to what fits in a close frame without splitting a UTF-8 character."""
    return text.encode("utf-8")[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


@contextmanager
def container_failures_as_reasons() -> Iterator[None]:
    """Failures to bring up or find the container, as the reason the terminal closes with."""
    try:
        yield
    except NodeUnavailable as exc:
        raise TerminalUnavailable(str(exc)) from exc  # names the node, never the engine URL
    except DockerUnavailable as exc:
        raise TerminalUnavailable(ENGINE_DOWN_REASON) from exc
    except QuotaExceeded as exc:
        raise TerminalUnavailable(str(exc)) from exc
    except ContainerError as exc:
        raise TerminalUnavailable(f"workspace container: {exc}") from exc


def sendable_close(code: int | None, reason: str | None) -> tuple[int | None, str | None]:
    """A close code and reason received on one leg, made valid for the other leg."""
    if code is None or code in _UNSENDABLE_CLOSE_CODES or not 1000 <= code <= 4999:
        return None, None
    return code, close_reason(reason) if reason else None


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
            "requests are cut to it (tmux allocates memory for every cell)."
        ),
    ).tag(config=True)

    max_rows = Int(500, help="Tallest terminal a browser may ask for (see max_columns).").tag(
        config=True
    )

    max_connections_per_workspace = Int(
        8,
        help=(
            "Terminal connections one workspace may have open at once; more are closed at once "
            "with a reason (1008). 0: no limit."
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
        self._open: set[TerminalRelayHandler] = set()

    @property
    def size_limit(self) -> TerminalSizeLimit:
        return TerminalSizeLimit(columns=self.max_columns, rows=self.max_rows)

    def over_limit(self, owner: str, workspace_id: str) -> str | None:
        """Why one more terminal of this owner and workspace is refused, or None."""
        # A relay whose browser has left is on its way out and holds no place.
        live = [r for r in self._open if r.browser_connected]
        per_workspace = sum(1 for r in live if r.workspace_id == workspace_id)
        if self.max_connections_per_workspace and (
            per_workspace >= self.max_connections_per_workspace
        ):
            return (
                f"this workspace already has {per_workspace} terminals open "
                f"(limit {self.max_connections_per_workspace}); close one first"
            )
        per_user = sum(1 for r in live if r.workspace_owner == owner)
        if self.max_connections_per_user and per_user >= self.max_connections_per_user:
            return (
                f"you already have {per_user} terminals open "
                f"(limit {self.max_connections_per_user}); close one first"
            )
        return None

    def opened(self, relay: TerminalRelayHandler) -> None:
        self._open.add(relay)

    def closed(self, relay: TerminalRelayHandler) -> None:
        self._open.discard(relay)

    def open_relays(self) -> list[TerminalRelayHandler]:
        """The relays still running (upgraded, and not yet closed on both legs)."""
        return list(self._open)

    def close_workspace(
        self, workspace_id: str, reason: str, code: int = CLOSE_IDLE_STOPPED
    ) -> None:
        """Close the terminals of one workspace on both legs (it is being stopped)."""
        for relay in self.open_relays():
            if relay.workspace_id == workspace_id:
                relay.shut_down(code, close_reason(reason))

    async def close_all(self, timeout: float = 5.0) -> None:
        """Close every relay on both legs; tmux sessions and containers keep running."""
        relays = self.open_relays()
        for relay in relays:
            relay.shut_down()
        tasks = [relay.relay_task for relay in relays if relay.relay_task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


class TerminalRelayHandler(CodeWorkspacesMixin, WebSocketMixin, WebSocketHandler, JupyterHandler):
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
        self.client_backlog = WriteBacklog(self.relay.buffer_limit)
        # ttyd's frames that wait for the browser to catch up (reading ttyd is paused meanwhile).
        self._held: list[memoryview] = []
        self._backend_gone: asyncio.Future[None] | None = None

    @property
    def relay(self) -> TerminalRelay:
        return self.code_app.terminal_relay

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

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Refusals before the upgrade are JSON, like the REST API's."""
        self.set_header("Content-Type", "application/json")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        reply = {"message": responses.get(status_code, "Unknown HTTP Error"), "reason": None}
        if isinstance(exc, web.HTTPError):
            reply = {"message": exc.log_message or reply["message"], "reason": exc.reason}
        self.finish(json.dumps(reply))

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
            raise web.HTTPError(403, str(exc)) from exc
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
        loop = asyncio.get_running_loop()
        self._backend_ready = loop.create_future()
        self._backend_gone = loop.create_future()
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
                self._refuse(str(exc))
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
        """The browser left: close only our socket to ttyd (tmux and the container stay)."""
        self._client_closed = True
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
                assert self._backend_gone is not None
                backend.attach(self)
                await self._backend_gone
                await self._backend_closed(backend)
        except TerminalUnavailable as exc:
            self._fail(str(exc))
        except Exception:
            self.log.exception("Terminal relay for workspace %s failed", self.workspace_id)
            self._fail("the terminal relay failed (see the server log)")
        finally:
            if backend is not None:
                backend.close()
            self.relay.closed(self)

    async def _connect_backend(self) -> TtydConnection | None:
        """Ensure the container, wait for ttyd, connect and flush the queued frames."""
        workspace = self._workspace
        assert workspace is not None
        with container_failures_as_reasons():
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
            with container_failures_as_reasons():
                try:
                    return await self.service.terminal_endpoint(workspace, fresh=True)
                except ContainerNotRunning as exc:
                    if exc.status not in _COMING_UP:
                        raise
            return endpoint

        relay = self.relay
        backend = await TtydConnection.connect(
            endpoint,
            refresh=current_endpoint,
            ready_timeout=relay.ready_timeout,
            ping_interval=relay.ping_interval or None,
            max_message_size=relay.max_message_size,
            buffer_limit=relay.buffer_limit,
            size_limit=relay.size_limit,
            abandoned=lambda: self._client_closed,
            log=self.log,
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

    # ttyd's frames arrive here as raw bytes of whole WebSocket frames (see ttyd.py): written to
    # the browser's stream as they are, one write per batch, no Future or Task per frame.

    def forward(self, frames: memoryview) -> bool:
        """Write ttyd's frames to the browser; False: stop reading ttyd until it catches up."""
        metrics.TERMINAL_TO_BROWSER.inc(len(frames))
        self._record_activity()
        if self._held or not self.client_backlog.room_for(len(frames)):
            # Not reading ttyd fills its socket, and ttyd stops reading the pty.
            self._held.append(frames)
            return False
        self._write_client(frames)
        return True

    def backend_closed(self) -> None:
        held, self._held = self._held, []
        for frames in held:  # ttyd's last words reach the browser before the close frame
            self._write_client(frames)
        if self._backend_gone is not None and not self._backend_gone.done():
            self._backend_gone.set_result(None)

    def _client_stream(self) -> IOStream | None:
        connection = self.ws_connection
        if connection is None or connection.is_closing() or self._client_closed:
            return None
        return connection.stream

    def _write_client(self, frames: memoryview) -> None:
        stream = self._client_stream()
        if stream is None:
            return  # the browser left: on_close closes the ttyd leg
        try:
            flushed = stream.write(frames)
        except StreamClosedError:
            return
        if flushed.done():  # went straight into the kernel's buffer
            flushed.exception()
            return
        size = len(frames)
        self.client_backlog.add(size)
        flushed.add_done_callback(partial(self._client_flushed, size))

    def _client_flushed(self, size: int, flushed: asyncio.Future[None]) -> None:
        self.client_backlog.flushed(size)
        if not flushed.cancelled():
            flushed.exception()  # a closed socket is handled by on_close, not here
        held = self._held
        backlog = self.client_backlog
        while held and backlog.room_for(len(held[0])):
            self._write_client(held.pop(0))
        if not held and self._backend is not None:
            self._backend.resume()

    def _send_to_backend(
        self, backend: TtydConnection, message: str | bytes
    ) -> Awaitable[None] | None:
        try:
            return backend.send(message)
        except InvalidHandshake as exc:
            self._refuse(str(exc))
            return None

    def _refuse(self, reason: str) -> None:
        """Close with 1007: the browser sent a message ttyd must not be given."""
        self.log.warning("Terminal relay for workspace %s: %s", self.workspace_id, reason)
        self.close(CLOSE_INVALID_PAYLOAD, close_reason(reason))

    async def _backend_closed(self, backend: TtydConnection) -> None:
        """ttyd closed: pass its code and reason on, or explain an abrupt end."""
        if self._client_closed:
            return
        code, reason = sendable_close(backend.close_code, backend.close_reason)
        if code is None:
            # ttyd 1.7.7 drops the TCP connection without a close frame even when the shell
            # exits normally; ttyd still listening in a running container tells that apart from
            # a container being stopped or killed (ttyd may still accept during a stop).
            if await backend.still_listening() and await self._container_running():
                code, reason = CLOSE_NORMAL, SESSION_ENDED_REASON
            else:
                code, reason = CLOSE_INTERNAL_ERROR, BACKEND_LOST_REASON
        elif code == CLOSE_INTERNAL_ERROR and not reason:
            reason = SESSION_ENDED_REASON
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

    def _fail(self, reason: str) -> None:
        self.log.warning("Terminal relay for workspace %s: %s", self.workspace_id, reason)
        if not self._client_closed:
            self.close(CLOSE_INTERNAL_ERROR, close_reason(reason))

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
