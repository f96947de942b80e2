"""Previews: HTTP and WebSocket traffic to any port of a workspace, through the Jupyter server.

`/code/preview/{id}/{key}/{port}/{path}` sends `/{path}` to the app (X-Forwarded-Prefix says
where it is mounted); `/code/preview-absolute/...` sends the whole path, for apps started with
that base path. Authorized like the terminal relay (identity, ownership, Origin) plus the
preview key, which alone authorizes a sandboxed page's own requests: see `rules` for the rules
and why. Both directions stream with backpressure: a slow reader pauses the other side once
`PreviewProxy.buffer_limit` bytes wait for it; nothing is buffered whole.

`PreviewHandler` is made of parts that each do one thing: `base` (state, the way to the app),
`authorization`, `http_relay`, `ws_relay`; the options are `config.PreviewProxy`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.auth.decorator import allow_unauthenticated
from tornado import httputil, web

from ..core.store import Workspace
from ..web.websocket import sendable_close
from .authorization import PreviewAuthorization
from .config import PreviewProxy
from .host import COOKIE_DAYS, COOKIE_NAME, login_url
from .http_relay import HttpRelay
from .rules import (
    PREVIEW_ABSOLUTE_PATH,
    PREVIEW_PATH,
    browser_response_headers,
    origin_kind,
    without_cookie,
)
from .ws_relay import WebSocketRelay

__all__ = ["HostPreviewHandler", "PreviewHandler", "PreviewProxy", "preview_handlers"]


@web.stream_request_body
class PreviewHandler(PreviewAuthorization, HttpRelay, WebSocketRelay):
    """One request (or WebSocket) to an app in a workspace; authorized before anything runs."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

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

    def on_close(self) -> None:
        """The browser left (a WebSocket, or in the middle of an HTTP response)."""
        self._closed = True
        if self.ws_connection is None:
            self._release()  # an HTTP request: its place is free now, finish() may never come
        self.proxy.discard_websocket(self)
        if self._upstream_ws is not None:
            self._upstream_ws.close(*sendable_close(self.close_code, self.close_reason))
        if self._upstream_stream is not None:
            self._upstream_stream.close()


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
