"""Previews: HTTP and WebSocket traffic to any port of a workspace, through the Jupyter server.

`/code/preview/{id}/{key}/{port}/{path}` sends `/{path}` to the app (X-Forwarded-Prefix says
where it is mounted); `/code/preview-absolute/...` sends the whole path, for apps started with
that base path. Authorized like the terminal relay (identity, ownership, Origin) plus the
preview key, which alone authorizes a sandboxed page's own requests: see `preview_rules` for the
rules and why. Both directions stream with backpressure: a slow reader pauses the other side
once `PreviewProxy.buffer_limit` bytes wait for it; nothing is buffered whole.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable
from typing import Any, cast
from urllib.parse import quote, urlsplit

from jupyter_core.utils import ensure_async
from jupyter_server._tz import utcnow
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_path_join
from tornado import httputil, web
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import IOStream, StreamClosedError, UnsatisfiableReadError
from tornado.tcpclient import TCPClient
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketHandler,
    websocket_connect,
)
from traitlets import Enum, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from .. import metrics
from ..auth.owner import AUTH_RESOURCE, is_admin
from ..core.store import Workspace
from ..errors import (
    ANSWERED,
    CLOSE_POLICY_VIOLATION,
    PREVIEW_NOT_FOUND_MESSAGE,
    NoIdentity,
    answer,
)
from ..web.base import CodeWorkspacesMixin
from ..web.websocket import (
    ConnectionCounter,
    JSONRefusalsMixin,
    WriteBacklog,
    close_reason,
    quietly,
    sendable_close,
)
from .host import (
    COOKIE_DAYS,
    COOKIE_NAME,
    HostPattern,
    TicketBook,
    login_url,
)
from .rules import (
    LOCAL_HOSTS,
    PREVIEW_ABSOLUTE_PATH,
    PREVIEW_PATH,
    SANDBOX_CSP,
    browser_response_headers,
    cors_for_sandbox,
    key_matches,
    origin_kind,
    page_load,
    preflight_answer,
    preview_url,
    response_framing,
    rewrite_location,
    upstream_request_headers,
    without_cookie,
)

# Activity is recorded at most this often per workspace: a page load is dozens of requests.
_ACTIVITY_INTERVAL = 1.0
# Bytes read from the app per wake-up.
_CHUNK_SIZE = 64 * 1024
_MAX_HEADER_SIZE = 64 * 1024
# Keepalive pings on both legs of a WebSocket (an idle hot-reload socket must stay up).
_WS_PING_INTERVAL = 30.0
# Connecting again while a freshly started workspace's app comes up.
_RETRY_DELAY = 0.2
NOT_FOUND_MESSAGE = PREVIEW_NOT_FOUND_MESSAGE


class PreviewProxy(LoggingConfigurable):
    """Options of the preview proxy, and the connections open right now per workspace."""

    mode = Enum(
        ["sandbox", "host"],
        default_value="sandbox",
        help=(
            "'sandbox': previews on the Jupyter server's own host under code/preview/..., each "
            "page in an opaque origin (CSP sandbox): no app cookies or localStorage, but nothing "
            "to set up. 'host': every port of every workspace on a host name of its own "
            "(host_pattern; needs wildcard DNS, and TLS for https), its own origin with working "
            "cookies; a signed cookie on that host, handed over from the Jupyter origin, says "
            "whose it is."
        ),
    ).tag(config=True)

    host_pattern = Unicode(
        "",
        help=(
            "Host mode: the preview host of a port, with {port} and {workspace} (the id), e.g. "
            "'{port}-{workspace}.preview.example.com' or "
            "'{port}-{workspace}.preview.localhost:8888' (browsers resolve *.localhost to the "
            "machine). DNS for all of them must reach this server."
        ),
    ).tag(config=True)

    jupyter_url = Unicode(
        "",
        help=(
            "Host mode: this server's URL as browsers reach it (scheme, host, base_url), where a "
            "preview host sends a browser that has no preview cookie yet, e.g. "
            "'https://jupyter.example.com/'."
        ),
    ).tag(config=True)

    connect_timeout = Float(
        10.0,
        help="Seconds to wait for a TCP connection (or WebSocket handshake) to the app.",
    ).tag(config=True)

    ready_timeout = Float(
        10.0,
        help=(
            "Seconds a preview waits for the app to accept connections after it had to start "
            "the workspace (a stopped workspace runs no dev server until one is started, e.g. "
            "from its shell profile); a running workspace gets one attempt."
        ),
    ).tag(config=True)

    buffer_limit = Int(
        1024 * 1024,
        help=(
            "Bytes the proxy may hold for a slow reader (the browser for responses and "
            "WebSocket messages from the app, the app for request bodies and messages from the "
            "browser) before it stops reading the other side until the reader catches up."
        ),
    ).tag(config=True)

    max_message_size = Int(
        16 * 1024 * 1024,
        help="Largest WebSocket message, in bytes, the proxy accepts from the browser or the app.",
    ).tag(config=True)

    max_connections_per_workspace = Int(
        100,
        help=(
            "Requests and WebSockets one workspace's previews may have open at once; more are "
            "answered 503 (a WebSocket is closed with 1008) with a message. 0: no limit."
        ),
    ).tag(config=True)

    allow_response_headers = List(
        Unicode(),
        default_value=[],
        help=(
            "Sandbox mode: response headers of apps that reach the browser besides the built-in "
            "allow-list (content, caching, CORS, per-page policies, any X- header), e.g. "
            "['HX-Trigger', 'HX-Redirect'] or ['hx-*'] (a trailing * is a prefix); case does not "
            "matter. Headers that act on the whole Jupyter origin (Set-Cookie, "
            "Clear-Site-Data, Strict-Transport-Security, Alt-Svc, Accept-CH, Report-To, ...) "
            "never pass. Host mode passes all but hop-by-hop headers."
        ),
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_response_headers = frozenset(
            h.strip().lower() for h in self.allow_response_headers
        )
        self.host_pattern_parsed: HostPattern | None = None
        if self.mode == "host":
            if not self.jupyter_url:
                raise ValueError("PreviewProxy.mode = 'host' needs PreviewProxy.jupyter_url.")
            self.host_pattern_parsed = HostPattern(self.host_pattern)
        self.tickets = TicketBook()
        self._open = ConnectionCounter()
        self._websockets: set[PreviewHandler] = set()
        self._activity_at: dict[str, float] = {}

    def url_template(self, base_url: str, key: str, workspace_id: str, scheme: str) -> str:
        """The preview URL of any port of a workspace, with a literal {port}."""
        pattern = self.host_pattern_parsed
        if pattern is None:
            return preview_url(base_url, key, workspace_id, "{port}")
        return f"{scheme}://{pattern.host('{port}', workspace_id)}/"

    def acquire(self, workspace_id: str) -> str | None:
        """Take a connection place for the workspace; the reason it is refused, or None."""
        limit = self.max_connections_per_workspace
        if self._open.full(workspace_id, limit):
            return (
                f"this workspace's previews already have {self._open.count(workspace_id)} "
                f"connections open (limit {limit}); close some first"
            )
        self._open.add(workspace_id)
        return None

    def release(self, workspace_id: str) -> None:
        self._open.remove(workspace_id)

    def open_connections(self, workspace_id: str) -> int:
        return self._open.count(workspace_id)

    def connection_count(self) -> int:
        """Connections open now, all workspaces together (metrics)."""
        return self._open.total()

    def due_for_activity(self, workspace_id: str, now: float) -> bool:
        """Whether activity should be recorded now (at most once a second per workspace)."""
        if now - self._activity_at.get(workspace_id, 0.0) < _ACTIVITY_INTERVAL:
            return False
        self._activity_at[workspace_id] = now
        return True

    def close_all(self) -> None:
        """Close every preview WebSocket (server shutdown)."""
        for handler in list(self._websockets):
            handler.shut_down()


class _UpstreamResponse(httputil.HTTPMessageDelegate):
    """The app's response, written to the browser as it arrives."""

    def __init__(self, handler: PreviewHandler) -> None:
        self.handler = handler
        self.started = False
        self.problem: str | None = None  # why the head was refused (a 502)

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        if start_line.code < 200:
            return None  # 100 Continue: tornado already told the browser to go on
        self.problem = response_framing(start_line.code, headers.get_all())
        if self.problem is not None:
            # tornado stops reading and logs one line (no traceback); the handler answers 502.
            raise httputil.HTTPInputError(self.problem)
        self.started = True
        return self.handler.start_response(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.handler.write_chunk(chunk)

    def finish(self) -> None:
        pass

    def on_connection_close(self) -> None:
        pass


@web.stream_request_body
class PreviewHandler(
    JSONRefusalsMixin, CodeWorkspacesMixin, WebSocketMixin, WebSocketHandler, JupyterHandler
):
    """One request (or WebSocket) to an app in a workspace; authorized before anything runs."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

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
        self._pump: asyncio.Task[None] | None = None
        self._upgrade = (
            self.request.method == "GET"
            and self.request.headers.get("Upgrade", "").lower() == "websocket"
        )

    @property
    def proxy(self) -> PreviewProxy:
        return cast(PreviewProxy, self.code_app.preview_proxy)  # web.context types it narrowly

    # Sandbox mode: pages run in an opaque origin on the Jupyter server's (see preview_rules).
    sandboxed = True

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
        return _WS_PING_INTERVAL

    @property
    def ping_timeout(self) -> float | None:
        return _WS_PING_INTERVAL

    @property
    def max_message_size(self) -> int:
        return self.proxy.max_message_size

    def check_origin(self, origin: str | None = None) -> bool:
        """No Origin (scripts), `null` (the sandboxed page; the key was checked) or this server."""
        origin = self.get_origin()
        if origin_kind(origin) != "other":
            return True
        return bool(WebSocketMixin.check_origin(self, origin))

    # -- authorization, before anything is started or sent ----------------------------------

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self._finished:
            return
        workspace = await self._authorize_request()
        if workspace is None:
            return  # answered already (a redirect)
        self.workspace = workspace
        if self._upgrade:
            return  # get() connects, then upgrades
        if self.request.method == "OPTIONS" and origin_kind(self.get_origin()) == "null":
            wanted = self.request.headers.get("Access-Control-Request-Method")
            if wanted and self.sandboxed:
                self._answer_preflight(wanted)
                return
        refused = self.proxy.acquire(workspace.id)
        if refused:
            raise web.HTTPError(503, refused)
        self._counted = True
        self._record_activity()
        await self._send_request_head()

    async def _authorize_request(self) -> Workspace | None:
        """Sandbox mode: the workspace named in the path, if key and caller may use it."""
        kwargs = self.path_kwargs
        if kwargs.get("path") is None:
            # /code/preview/{id}/{key}/{port}: relative links of the page need the slash.
            path, _, query = self.request.uri.partition("?") if self.request.uri else ("", "", "")
            self.redirect(path + "/" + ("?" + query if query else ""))
            return None
        self.port = int(kwargs["port"])
        if not 0 < self.port < 65536:
            raise web.HTTPError(404, "Ports go from 1 to 65535.")
        origin = self.get_origin()
        if not self.check_origin(origin):
            raise web.HTTPError(403, "Cross-origin request to a preview refused.")
        workspace = await self._authorize(kwargs["workspace_id"], kwargs["key"])
        route = PREVIEW_ABSOLUTE_PATH if self.absolute else PREVIEW_PATH
        self.prefix = url_path_join(
            self.base_url, route, workspace.id, kwargs["key"], str(self.port)
        )
        return workspace

    async def _authorize(self, workspace_id: str, key: str) -> Workspace:
        """The workspace if the key is its owner's and the caller may use it; else 401/403."""
        workspace = await self.service.get(None, workspace_id)
        secret = self.settings["cookie_secret"]
        owner = workspace.user_id if workspace else ""
        # Computed for unknown ids too: unknown and someone else's take alike and look alike.
        valid = key_matches(secret, owner, workspace_id, key)
        if workspace is None or not valid:
            raise web.HTTPError(403, NOT_FOUND_MESSAGE)
        user = self.current_user
        if user is None:
            headers = self.request.headers
            mode, dest = headers.get("Sec-Fetch-Mode"), headers.get("Sec-Fetch-Dest")
            if page_load(
                self.request.method or "",
                mode,
                dest,
                websocket=self._upgrade,
                origin=headers.get("Origin"),
            ):
                raise web.HTTPError(
                    401,
                    "Sign in to open this preview: a page load needs your Jupyter login (open "
                    "it from JupyterLab, or send a token).",
                )
            return workspace  # the sandboxed page's own request: the key authorizes it
        authorized = await ensure_async(
            self.authorizer.is_authorized(self, user, "execute", AUTH_RESOURCE)
        )
        if not authorized:
            raise web.HTTPError(403, f"Not authorized to execute on {AUTH_RESOURCE}")
        if is_admin(self, self.code_app):
            return workspace
        try:
            caller = self.owner
        except NoIdentity as exc:
            raise web.HTTPError(403, str(exc)) from exc
        if caller != workspace.user_id:
            raise web.HTTPError(403, NOT_FOUND_MESSAGE)
        return workspace

    def _answer_preflight(self, method: str) -> None:
        self.set_status(204)
        self.clear_header("Content-Type")
        for name, value in preflight_answer(
            method, self.request.headers.get("Access-Control-Request-Headers")
        ):
            self.set_header(name, value)
        self.finish()

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

    async def _connect(self, connect: Any) -> Any:
        """Run `connect(host)` until the app accepts; retried while a started workspace boots."""
        host, started = await self._app_host()
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

    async def _open_tcp(self, host: str) -> IOStream:
        stream = await TCPClient().connect(host, self.port, timeout=self.proxy.connect_timeout)
        stream.set_nodelay(True)
        return stream

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

    async def _send_request_head(self) -> None:
        """Connect to the app and send the request line and headers; the body streams after."""
        stream = cast(IOStream, await self._connect(self._open_tcp))
        self._upstream_stream = stream
        if self._closed:
            stream.close()
            return
        params = HTTP1ConnectionParameters(
            no_keep_alive=True,
            chunk_size=_CHUNK_SIZE,
            max_header_size=_MAX_HEADER_SIZE,
            max_body_size=sys.maxsize,
            decompress=False,
        )
        connection = HTTP1Connection(stream, True, params)
        self._upstream_connection = connection
        headers = self._upstream_headers(websocket=False)
        method = self.request.method or "GET"
        has_body = "Content-Length" in headers or self.request.headers.get("Transfer-Encoding")
        if has_body and "Content-Length" not in headers and method not in ("POST", "PUT", "PATCH"):
            raise web.HTTPError(411, "A request body needs a Content-Length with this method.")
        headers["Connection"] = "close"
        start = httputil.RequestStartLine(method, self._upstream_target(), "HTTP/1.1")
        connection.write_headers(start, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """A piece of the request body: on to the app, reading paused while it lags behind."""
        connection = self._upstream_connection
        if connection is None:
            return None
        self._record_activity()
        try:
            written = connection.write(chunk)
        except StreamClosedError:
            return None  # the app hung up: its answer (or 502) follows in the handler
        return self._tracked(written, len(chunk), self._upstream_backlog)

    def _tracked(
        self, written: asyncio.Future[None], size: int, backlog: WriteBacklog
    ) -> Awaitable[None] | None:
        """Count bytes relayed (metrics) and in flight; the write to wait for, or None."""
        metrics.preview_relayed(size, to_browser=backlog is self._backlog)
        return backlog.track(written, size)

    # -- the app's response -------------------------------------------------------------------

    async def _relay_response(self) -> None:
        connection = self._upstream_connection
        if connection is None:
            return
        response = _UpstreamResponse(self)
        try:
            connection.finish()
            # False: tornado found the answer malformed (and logged one line) and stopped.
            whole = await connection.read_response(response)
        except (StreamClosedError, httputil.HTTPInputError, OSError) as exc:
            if not response.started:
                raise web.HTTPError(502, self._broken_off(exc)) from exc
            # Cut off mid-body: the browser must not take what it got for the whole answer
            # (a chunked response would otherwise end with a proper last chunk).
            self.log.info("Preview of workspace %s: the app broke off: %s", self._workspace_id, exc)
            self._abort_browser()
            return
        finally:
            connection.close()
        if self._closed:
            return
        if not response.started:
            problem = response.problem or "a malformed answer (not an HTTP/1.x response head)"
            raise web.HTTPError(502, f"The app on port {self.port} sent {problem}.")
        if not whole:
            # The head went out, the body was malformed (bad chunked encoding): the status
            # cannot change any more, so the browser sees a broken connection, not a whole body.
            self.log.info(
                "Preview of workspace %s: malformed body from the app", self._workspace_id
            )
            self._abort_browser()
            return
        try:
            self.finish()
        except (StreamClosedError, httputil.HTTPOutputError):
            # The app ended short of its Content-Length (tornado closed the browser's socket).
            self._closed = True

    def _broken_off(self, exc: BaseException) -> str:
        """The 502 message of an app that failed before its head was complete."""
        real = exc.real_error if isinstance(exc, StreamClosedError) else exc
        if isinstance(real, UnsatisfiableReadError):
            return (
                f"The app on port {self.port} sent response headers over "
                f"{_MAX_HEADER_SIZE // 1024} KiB."
            )
        detail = f" ({real})" if real else ""
        return (
            f"The app on port {self.port} closed the connection before its response head was "
            f"complete{detail}."
        )

    def _abort_browser(self) -> None:
        """Close the browser's connection now, without ending the response properly."""
        self._closed = True
        browser = cast(HTTP1Connection, self.request.connection)
        browser.close()

    def start_response(
        self, start_line: httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> Awaitable[None] | None:
        """The app's status and headers, made safe for the Jupyter origin; sent at once."""
        if self._closed:
            return None
        self.clear()
        for name in ("Content-Type", "Content-Security-Policy", "X-Content-Type-Options"):
            self.clear_header(name)
        self.set_status(start_line.code, start_line.reason or "Unknown")
        forwarded = self._app_response_headers(headers)
        app_hosts = LOCAL_HOSTS | {self._app_address}
        for name, value in forwarded:
            if name.lower() == "location":
                value = rewrite_location(
                    value,
                    port=self.port,
                    prefix=self.prefix,
                    strip_prefix=not self.absolute,
                    app_hosts=app_hosts,
                )
            self.add_header(name, value)
        if self.sandboxed:
            for name, value in cors_for_sandbox(self.get_origin(), forwarded):
                self.add_header(name, value)
            self.add_header("Content-Security-Policy", SANDBOX_CSP)
        # Headers now, so event streams and long polls start before the first byte of body.
        return quietly(self.flush())

    def _app_response_headers(self, headers: httputil.HTTPHeaders) -> list[tuple[str, str]]:
        return browser_response_headers(headers.get_all(), extra=self.proxy.extra_response_headers)

    def write_chunk(self, chunk: bytes) -> Awaitable[None] | None:
        if self._closed:
            upstream = self._upstream_stream
            if upstream is not None:
                upstream.close()  # the browser left: stop reading the app
            return None
        self._record_activity()
        try:
            self.write(chunk)
            written = self.flush()
        except StreamClosedError:
            return None
        return self._tracked(written, len(chunk), self._backlog)

    # -- verbs --------------------------------------------------------------------------------

    @allow_unauthenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not self._upgrade:
            await self._relay_response()
            return
        await self._accept_websocket(*args, **kwargs)

    @allow_unauthenticated
    async def head(self, *args: Any, **kwargs: Any) -> None:
        await self._relay_response()

    @allow_unauthenticated
    async def post(self, *args: Any, **kwargs: Any) -> None:
        await self._relay_response()

    @allow_unauthenticated
    async def put(self, *args: Any, **kwargs: Any) -> None:
        await self._relay_response()

    @allow_unauthenticated
    async def patch(self, *args: Any, **kwargs: Any) -> None:
        await self._relay_response()

    @allow_unauthenticated
    async def delete(self, *args: Any, **kwargs: Any) -> None:
        await self._relay_response()

    @allow_unauthenticated
    async def options(self, *args: Any, **kwargs: Any) -> None:
        await self._relay_response()

    def on_finish(self) -> None:
        if self.ws_connection is None:
            self._release()

    # -- WebSockets ---------------------------------------------------------------------------

    async def _accept_websocket(self, *args: Any, **kwargs: Any) -> None:
        """Connect to the app first (its subprotocol is the browser's answer), then upgrade."""
        workspace = self.workspace
        assert workspace is not None
        self._refused_ws = self.proxy.acquire(workspace.id)
        if self._refused_ws is None:
            self._counted = True
            self._record_activity()
            try:
                self._upstream_ws = await self._connect(self._open_websocket)
            except BaseException:
                self._release()
                raise
        await WebSocketHandler.get(self, *args, **kwargs)
        if self.ws_connection is None:
            self._release()  # the upgrade failed (bad headers): nothing will close it
            if self._upstream_ws is not None:
                self._upstream_ws.close()

    async def _open_websocket(self, host: str) -> WebSocketClientConnection:
        target = self._upstream_target()
        request = HTTPRequest(
            f"ws://{host}:{self.port}{target}",
            headers=self._upstream_headers(websocket=True),
            connect_timeout=self.proxy.connect_timeout,
            request_timeout=self.proxy.connect_timeout,
        )
        offered = [
            p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",")
        ]
        return await websocket_connect(
            request,
            subprotocols=[p for p in offered if p] or None,
            ping_interval=_WS_PING_INTERVAL,
            ping_timeout=_WS_PING_INTERVAL,
            max_message_size=self.proxy.max_message_size,
        )

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        upstream = self._upstream_ws
        chosen = upstream.selected_subprotocol if upstream is not None else None
        return chosen if chosen in subprotocols else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        if self._refused_ws is not None:
            self.close(CLOSE_POLICY_VIOLATION, close_reason(self._refused_ws))
            return
        self.set_nodelay(True)
        self.proxy._websockets.add(self)
        self._pump = asyncio.create_task(self._pump_from_app())

    async def _pump_from_app(self) -> None:
        """The app's messages to the browser; reading the app pauses while the browser lags."""
        upstream = self._upstream_ws
        assert upstream is not None
        try:
            while True:
                message = await upstream.read_message()
                if message is None:
                    break
                self._record_activity()
                try:
                    written = self.write_message(message, binary=isinstance(message, bytes))
                except WebSocketClosedError:
                    break
                waiting = self._tracked(written, len(message), self._backlog)
                if waiting is not None:
                    await waiting
            if not self._closed:
                code, reason = sendable_close(upstream.close_code, upstream.close_reason)
                self.close(code, reason)
        except Exception:
            self.log.exception("Preview WebSocket of workspace %s failed", self._workspace_id)
            self.close(1011, "the preview relay failed (see the server log)")
        finally:
            upstream.close()
            self._release()

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        upstream = self._upstream_ws
        if upstream is None:
            return None
        self._record_activity()
        try:
            written = upstream.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            return None
        return self._tracked(written, len(message), self._upstream_backlog)

    def on_close(self) -> None:
        """The browser left (a WebSocket, or in the middle of an HTTP response)."""
        self._closed = True
        if self.ws_connection is None:
            self._release()  # an HTTP request: its place is free now, finish() may never come
        self.proxy._websockets.discard(self)
        if self._upstream_ws is not None:
            self._upstream_ws.close(*sendable_close(self.close_code, self.close_reason))
        if self._upstream_stream is not None:
            self._upstream_stream.close()

    def shut_down(self) -> None:
        self.close(1001, "Jupyter server is shutting down")
        if self._upstream_ws is not None:
            self._upstream_ws.close(1001)

    def _release(self) -> None:
        if self._counted and self.workspace is not None:
            self._counted = False
            self.proxy.release(self.workspace.id)

    # -- bookkeeping --------------------------------------------------------------------------

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


class HostPreviewHandler(PreviewHandler):
    """Host mode: the whole request of a preview host, authorized by the proxy's cookie there."""

    sandboxed = False

    def initialize(self, name: str, absolute: bool = True) -> None:
        super().initialize(name, absolute=True)  # the app's paths are the public ones

    def check_host(self) -> bool:
        return True  # routed here because the host matched host_pattern

    def check_origin(self, origin: str | None = None) -> bool:
        """Only the preview host itself (or no Origin): its own origin, nobody else's."""
        origin = self.get_origin()
        if origin is None:
            return True
        return urlsplit(origin).netloc.lower() == self.request.host.lower()

    async def _authorize_request(self) -> Workspace | None:
        pattern = self.proxy.host_pattern_parsed
        parsed = pattern.parse(self.request.host_name) if pattern else None
        if parsed is None:
            raise web.HTTPError(404, "Not a preview host.")
        self.port, workspace_id = parsed
        if not self.check_origin():
            raise web.HTTPError(403, "Cross-origin request to a preview refused.")
        workspace = await self.service.get(None, workspace_id)
        cookie = self.get_signed_cookie(COOKIE_NAME, max_age_days=COOKIE_DAYS)
        try:
            content = json.loads(cookie) if cookie else {}
        except ValueError:
            content = {}
        if (
            workspace is not None
            and isinstance(content, dict)
            and (content.get("o"), content.get("w"), content.get("p"))
            == (workspace.user_id, workspace.id, self.port)
        ):
            return workspace
        if self.request.method in ("GET", "HEAD") and not self._upgrade:
            # Through the Jupyter origin, where the login is, and back with a cookie.
            target = login_url(
                self.proxy.jupyter_url, workspace_id, self.port, self.request.uri or "/"
            )
            self.redirect(target)
            return None
        raise web.HTTPError(401, "Open the preview again: it needs your Jupyter login.")

    def _browser_request_headers(self) -> list[tuple[str, str]]:
        return without_cookie(self.request.headers.get_all(), COOKIE_NAME)

    def _app_response_headers(self, headers: httputil.HTTPHeaders) -> list[tuple[str, str]]:
        return browser_response_headers(headers.get_all(), own_cookie=COOKIE_NAME)


_ROUTE = r"/(?P<workspace_id>[^/]+)/(?P<key>[^/]+)/(?P<port>[0-9]{1,5})(?P<path>/.*)?"


def preview_handlers() -> list[tuple[str, type[PreviewHandler], dict[str, Any]]]:
    """Routes of the preview proxy (the ExtensionApp prefixes base_url)."""
    return [
        ("/" + PREVIEW_PATH + _ROUTE, PreviewHandler, {"absolute": False}),
        ("/" + PREVIEW_ABSOLUTE_PATH + _ROUTE, PreviewHandler, {"absolute": True}),
    ]
