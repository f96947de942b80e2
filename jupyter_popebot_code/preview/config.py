"""Options of previews, and what one server keeps for them: connection counts and the app pool.

The handlers (`proxy.PreviewHandler` and the modules it is made of) read these options on every
request; `PreviewProxy` is the one configurable class (`c.PreviewProxy...`).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from tornado.http1connection import HTTP1ConnectionParameters
from traitlets import Enum, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from ..web.websocket import ConnectionCounter
from .host import HostPattern, TicketBook
from .pool import UpstreamPool
from .records import WorkspaceRecords
from .rules import preview_url

# Most bytes of a response body handed on per wake-up (what the socket has, up to this).
_CHUNK_SIZE = 512 * 1024
# Activity is recorded at most this often per workspace: a page load is dozens of requests.
_ACTIVITY_INTERVAL = 1.0


class ClosableWebSocket(Protocol):
    def shut_down(self) -> None: ...


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

    max_header_size = Int(
        64 * 1024,
        help=(
            "Largest response head (status line and headers), in bytes, the proxy reads from an "
            "app; a longer one is answered 502."
        ),
    ).tag(config=True)

    header_timeout = Float(
        10.0,
        help=(
            "Seconds an app has to finish its response head once it has sent the first byte of "
            "it; then the browser gets a 502 (an app that speaks something else than HTTP, e.g. "
            "an SSH banner, never ends its head). Waiting for that first byte is not bounded: "
            "long polls answer late on purpose. 0: no limit."
        ),
    ).tag(config=True)

    pool_size = Int(
        8,
        help=(
            "Idle keep-alive connections kept per workspace and port, for the next requests to "
            "the same app (never shared between workspaces or owners; closed when the workspace "
            "stops or is deleted). 0: a new connection per request."
        ),
    ).tag(config=True)

    pool_idle_timeout = Float(
        1.5,
        help=(
            "Seconds an idle kept connection to an app stays open. Below the keep-alive time-outs "
            "of common dev servers (node and uvicorn 5 s, gunicorn 2 s), so the proxy closes first."
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
        self._websockets: set[ClosableWebSocket] = set()
        self._activity_at: dict[str, float] = {}
        self.pool = UpstreamPool(self.pool_size, self.pool_idle_timeout)
        self.records = WorkspaceRecords()
        # One request and its response per HTTP1Connection; the stream may carry the next.
        self.connection_params = HTTP1ConnectionParameters(
            chunk_size=_CHUNK_SIZE,
            max_header_size=self.max_header_size,
            max_body_size=sys.maxsize,
            decompress=False,
        )

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

    def add_websocket(self, handler: ClosableWebSocket) -> None:
        self._websockets.add(handler)

    def discard_websocket(self, handler: ClosableWebSocket) -> None:
        self._websockets.discard(handler)

    def close_workspace(self, workspace_id: str, *_: object) -> None:
        """The workspace stops or is gone: close its kept connections to apps at once."""
        self.pool.close_workspace(workspace_id)
        self.records.forget(workspace_id)

    def close_all(self) -> None:
        """Close every preview WebSocket and kept connection (server shutdown)."""
        for handler in list(self._websockets):
            handler.shut_down()
        self.pool.close_all()
