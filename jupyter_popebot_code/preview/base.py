"""What every preview handler shares: its state, the framework defaults a proxy must undo, the
way to the app (the container's address, connecting with retries), backpressure and bookkeeping.

The parts that do one thing each build on `PreviewBase`: `authorization` (key, login, owner),
`http_relay` (requests and responses), `ws_relay` (WebSockets); `proxy.PreviewHandler` is them
together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast
from urllib.parse import quote

from jupyter_server._tz import utcnow
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import httputil, web
from tornado.http1connection import HTTP1Connection
from tornado.httpclient import HTTPClientError
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import WebSocketClientConnection, WebSocketHandler

from .. import metrics
from ..core.store import Workspace
from ..errors import ANSWERED, PREVIEW_NOT_FOUND_MESSAGE, answer
from ..web.base import CodeWorkspacesMixin
from ..web.websocket import JSONRefusalsMixin, WriteBacklog
from .config import PreviewProxy
from .rules import origin_kind, upstream_request_headers

# Keepalive pings on both legs of a WebSocket (an idle hot-reload socket must stay up).
WS_PING_INTERVAL = 30.0
# Connecting again while a freshly started workspace's app comes up.
_RETRY_DELAY = 0.2
NOT_FOUND_MESSAGE = PREVIEW_NOT_FOUND_MESSAGE

T = TypeVar("T")


class PreviewBase(
    JSONRefusalsMixin, CodeWorkspacesMixin, WebSocketMixin, WebSocketHandler, JupyterHandler
):
    """One request (or WebSocket) to an app in a workspace: the state the parts share."""

    # Sandbox mode: pages run in an opaque origin on the Jupyter server's (see preview_rules).
    sandboxed = True

    def initialize(self, name: str, absolute: bool = False) -> None:
        super().initialize(name)
        self.absolute = absolute
        self.workspace: Workspace | None = None
        self.port = 0
        self.prefix = ""
        self._counted = False
        self._closed = False
        self._upstream_stream: IOStream | None = None
        self._upstream_connection: HTTP1Connection | None = None
        self._upstream_ws: WebSocketClientConnection | None = None
        self._refused_ws: str | None = None
        self._app_address = ""
        self._backlog = WriteBacklog(self.proxy.buffer_limit)
        self._upstream_backlog = WriteBacklog(self.proxy.buffer_limit)
        self._upgrade = (
            self.request.method == "GET"
            and self.request.headers.get("Upgrade", "").lower() == "websocket"
        )

    @property
    def proxy(self) -> PreviewProxy:
        return cast(PreviewProxy, self.code_app.preview_proxy)  # web.context types it narrowly

    # -- what Jupyter's handlers do that a proxy must not ------------------------------------

    def set_cors_headers(self) -> None:
        """Jupyter's CORS answer for token logins would let any origin read the app."""

    def check_xsrf_cookie(self) -> None:
        """The app's forms carry no Jupyter XSRF token: the Origin check and key replace it."""

    def skip_check_origin(self) -> bool:
        return False  # never waived, also not for token logins (as in the terminal relay)

    def compute_etag(self) -> str | None:
        return None  # the app's validators pass through; tornado's would hash nothing

    def get_compression_options(self) -> dict[str, Any] | None:
        return None

    @property
    def ping_interval(self) -> float | None:
        return WS_PING_INTERVAL

    @property
    def ping_timeout(self) -> float | None:
        return WS_PING_INTERVAL

    @property
    def max_message_size(self) -> int:
        return self.proxy.max_message_size

    def check_origin(self, origin: str | None = None) -> bool:
        """No Origin (scripts), `null` (the sandboxed page; the key was checked) or this server."""
        origin = self.get_origin()
        if origin_kind(origin) != "other":
            return True
        return bool(WebSocketMixin.check_origin(self, origin))

    # -- reaching the app -------------------------------------------------------------------

    async def _app_host(self, fresh: bool = False) -> tuple[str, bool]:
        """The container's address (ensured first unless it runs); True if it was started.

        Failures are HTTP errors whose message is shown to the user (a WebSocket: close 1011).

        `fresh` asks Docker whether it runs rather than the event stream's states, which learn
        of a stop made behind the server's back a moment late (asking also updates them).
        """
        workspace = self.workspace
        assert workspace is not None
        assert workspace.container_name
        started = False
        try:
            if fresh:
                await self.service.containers.state(workspace.container_name)
            if self.service.containers.known_running(workspace.container_name) is None:
                result = await self.service.ensure(workspace.user_id, workspace.id)
                if result.status not in ("running", "started", "created"):
                    raise web.HTTPError(503, result.message or f"workspace is {result.status}")
                started = result.status != "running"
            return await self.service.container_host(workspace), started
        except ANSWERED as exc:
            refusal = answer(exc, "preview")  # errors.ANSWERS: the status and message
            if refusal is None:
                raise
            raise web.HTTPError(refusal.code, refusal.message) from exc

    async def _connect(
        self, connect: Callable[[str], Awaitable[T]], found: tuple[str, bool] | None = None
    ) -> T:
        """Run `connect(host)` until the app accepts; retried while a started workspace boots.

        `found`: what `_app_host` answered already, if the caller asked it.
        """
        host, started = found or await self._app_host()
        self._app_address = host
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.proxy.ready_timeout if started else 0.0)
        checked = started
        while True:
            try:
                return await connect(host)
            except HTTPClientError as exc:  # the app answered the upgrade with an HTTP error
                raise web.HTTPError(
                    502, f"The app on port {self.port} refused the WebSocket ({exc.code})."
                ) from exc
            except (OSError, StreamClosedError, TimeoutError, asyncio.TimeoutError) as exc:
                if not checked:
                    # Believed running: the container may have stopped a moment ago. Once,
                    # ask Docker, and start it (waiting for the app) if it is down after all.
                    checked = True
                    host, started = await self._app_host(fresh=True)
                    self._app_address = host
                    if started:
                        deadline = loop.time() + self.proxy.ready_timeout
                        continue
                if loop.time() >= deadline:
                    raise web.HTTPError(
                        502,
                        f"Nothing in the workspace answers on port {self.port} (start the app "
                        "listening on 0.0.0.0, not 127.0.0.1).",
                    ) from exc
                await asyncio.sleep(_RETRY_DELAY)

    def _upstream_headers(self, websocket: bool) -> httputil.HTTPHeaders:
        request = self.request
        pairs = upstream_request_headers(
            self._browser_request_headers(),
            port=self.port,
            forwarded_host=request.host,
            forwarded_proto=request.protocol,
            forwarded_for=request.remote_ip or "",
            prefix=None if self.absolute else self.prefix,
            websocket=websocket,
            keep_credentials=not self.sandboxed,
        )
        headers = httputil.HTTPHeaders()
        for name, value in pairs:
            headers.add(name, value)
        return headers

    def _browser_request_headers(self) -> list[tuple[str, str]]:
        return list(self.request.headers.get_all())

    def _upstream_target(self) -> str:
        """The path and query the app is asked for, still percent-encoded as the browser sent it."""
        uri = self.request.uri or "/"
        if self.absolute:
            return self._without_login_token(uri)
        raw_path, _, query = uri.partition("?")
        if raw_path.startswith(self.prefix + "/"):
            path = raw_path[len(self.prefix) :]
        else:  # the browser encoded the id or key itself: rebuild from the decoded path
            path = quote(self.path_kwargs.get("path") or "/", safe="/:@!$&'()*+,;=~-._")
        return self._without_login_token(path + ("?" + query if query else ""))

    def _without_login_token(self, target: str) -> str:
        """Drop `?token=` when it logged this request in: it is the server's, not the app's."""
        path, _, query = target.partition("?")
        if not query or "token" not in self.request.query_arguments or not self.token_authenticated:
            return target
        kept = [p for p in query.split("&") if p.split("=", 1)[0] != "token"]
        return path + ("?" + "&".join(kept) if kept else "")

    # -- backpressure -------------------------------------------------------------------------

    def _tracked(
        self, written: asyncio.Future[None], size: int, backlog: WriteBacklog
    ) -> Awaitable[None] | None:
        """Count bytes relayed (metrics) and in flight; the write to wait for, or None."""
        metrics.preview_relayed(size, to_browser=backlog is self._backlog)
        return backlog.track(written, size)

    # -- bookkeeping --------------------------------------------------------------------------

    def _release(self) -> None:
        if self._counted and self.workspace is not None:
            self._counted = False
            self.proxy.release(self.workspace.id)

    @property
    def _workspace_id(self) -> str:
        return self.workspace.id if self.workspace else ""

    def _record_activity(self) -> None:
        """Preview traffic is use of the workspace: the idle stopper must see it."""
        workspace = self.workspace
        if workspace is None:
            return
        if not self.proxy.due_for_activity(workspace.id, asyncio.get_running_loop().time()):
            return
        self.service.record_activity(workspace.id)
        self.service.note_user_activity(workspace.user_id)
        self.settings["api_last_activity"] = utcnow()
