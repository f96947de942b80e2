"""Host mode of previews: every port of every workspace on a host name of its own.

`PreviewProxy.host_pattern` (e.g. `{port}-{workspace}.preview.example.com`) names the hosts. Such
a host is its own origin, so pages need no sandbox and keep their cookies; the proxy's own
HttpOnly cookie on that host says whose preview it is, set through a hand-off from the Jupyter
origin, where the user's login is:

1. a request without a valid cookie is redirected to `{jupyter_url}code/preview-login/{id}/{port}`;
2. there (the Jupyter login, the owner or an admin) a ticket signed with the cookie secret, valid
   for 60 s and once, is minted, and the browser is sent to `/_popebot_preview/auth?ticket=...`
   on the preview host;
3. which sets the cookie and redirects to where the user was going.

Another user's browser has no cookie, and fails the ownership check at step 2.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import quote, urlencode

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.httputil import HTTPMessageDelegate, HTTPServerRequest
from tornado.routing import HostMatches, Rule, RuleRouter

from ..auth.owner import AUTH_RESOURCE, is_admin
from ..errors import NoIdentity
from ..web.base import CodeWorkspacesMixin

COOKIE_NAME = "popebot-preview"
TICKET_NAME = "popebot-preview-ticket"
TICKET_SECONDS = 60.0
# The cookie is re-issued through the hand-off after this long (seamless while signed in).
COOKIE_DAYS = 1.0
AUTH_PATH = "/_popebot_preview/auth"
LOGIN_PATH = "code/preview-login"
_WORKSPACE_ID = r"[a-z2-7]{16}"


@dataclass(frozen=True)
class HostPattern:
    """`{port}-{workspace}.preview.example.com[:8888]`: builds and reads preview host names."""

    pattern: str

    def __post_init__(self) -> None:
        name = self.pattern.rsplit(":", 1)[0] if ":" in self.pattern else self.pattern
        if "{port}" not in name or "{workspace}" not in name:
            raise ValueError(
                f"PreviewProxy.host_pattern {self.pattern!r} must hold {{port}} and {{workspace}} "
                "in its host name"
            )

    def host(self, port: int | str, workspace_id: str) -> str:
        """The Host (with the pattern's port, if any) of one workspace's port."""
        return self.pattern.replace("{port}", str(port)).replace("{workspace}", workspace_id)

    @property
    def name_regex(self) -> str:
        """A regex of the host names (no port), as tornado's HostMatches compares them."""
        name = self.pattern.split(":", 1)[0]
        escaped = re.escape(name.lower())
        escaped = escaped.replace(r"\{port\}", r"(?P<port>[0-9]{1,5})")
        escaped = escaped.replace(r"\{workspace\}", rf"(?P<workspace>{_WORKSPACE_ID})")
        return f"^{escaped}$"

    def parse(self, host_name: str) -> tuple[int, str] | None:
        """(port, workspace id) of a preview host name, or None."""
        match = re.match(self.name_regex, host_name.lower())
        if match is None:
            return None
        port = int(match.group("port"))
        return (port, match.group("workspace")) if 0 < port < 65536 else None


def mint_ticket(secret: bytes | str, owner: str, workspace_id: str, port: int) -> str:
    """A signed, timestamped, single-use hand-off ticket."""
    value = json.dumps({"o": owner, "w": workspace_id, "p": port, "n": secrets.token_hex(8)})
    return web.create_signed_value(secret, TICKET_NAME, value).decode("ascii")


def read_ticket(secret: bytes | str, ticket: str) -> dict[str, Any] | None:
    """The ticket's content if its signature holds and it is at most TICKET_SECONDS old."""
    value = web.decode_signed_value(
        secret, TICKET_NAME, ticket, max_age_days=TICKET_SECONDS / 86400
    )
    if value is None:
        return None
    try:
        content = json.loads(value)
    except ValueError:
        return None
    return content if isinstance(content, dict) else None


def safe_next(next_url: str | None) -> str:
    """A local path to go back to (never another site: `//host` and `/\\host` are refused)."""
    if not next_url or not next_url.startswith("/") or next_url[1:2] in ("/", "\\"):
        return "/"
    return next_url


class TicketBook:
    """Nonces of tickets already used, forgotten once their tickets expire."""

    def __init__(self) -> None:
        self._used: dict[str, float] = {}

    def use(self, nonce: str) -> bool:
        """True the first time a nonce is seen (within a ticket's lifetime)."""
        now = time.monotonic()
        for old, seen in list(self._used.items()):
            if now - seen > TICKET_SECONDS * 2:
                del self._used[old]
        if nonce in self._used:
            return False
        self._used[nonce] = now
        return True


class HostModeProxy(Protocol):
    """What host mode needs of the app's PreviewProxy (typed here: proxy.py imports this module)."""

    host_pattern_parsed: HostPattern | None
    tickets: TicketBook


class PreviewLoginHandler(CodeWorkspacesMixin, JupyterHandler):
    """Step 2 on the Jupyter origin: the signed-in owner (or an admin) gets a ticket."""

    @web.authenticated
    async def get(self, workspace_id: str, port: str) -> None:
        proxy = cast(HostModeProxy, self.code_app.preview_proxy)
        pattern = proxy.host_pattern_parsed
        if pattern is None:
            raise web.HTTPError(404)
        user = self.current_user
        authorized = await ensure_async(
            self.authorizer.is_authorized(self, user, "execute", AUTH_RESOURCE)
        )
        if not authorized:
            raise web.HTTPError(403, f"Not authorized to execute on {AUTH_RESOURCE}")
        workspace = await self.service.get(None, workspace_id)
        if workspace is None or not 0 < int(port) < 65536:
            raise web.HTTPError(403, "No such preview for this user.")
        if not is_admin(self, self.code_app):
            try:
                caller = self.owner
            except NoIdentity as exc:
                raise web.HTTPError(403, str(exc)) from exc
            if caller != workspace.user_id:
                raise web.HTTPError(403, "No such preview for this user.")
        ticket = mint_ticket(
            self.settings["cookie_secret"], workspace.user_id, workspace.id, int(port)
        )
        query = urlencode(
            {"ticket": ticket, "next": safe_next(self.get_query_argument("next", "/"))}
        )
        host = pattern.host(port, workspace.id)
        self.redirect(f"{self.request.protocol}://{host}{AUTH_PATH}?{query}")


class PreviewAuthHandler(ExtensionHandlerMixin, web.RequestHandler):
    """Step 3 on the preview host: a valid ticket for this host becomes the proxy's cookie."""

    def get(self) -> None:
        proxy: HostModeProxy = self.extensionapp.preview_proxy  # type: ignore[attr-defined]
        pattern = proxy.host_pattern_parsed
        parsed = pattern.parse(self.request.host_name) if pattern else None
        secret = self.settings["cookie_secret"]
        content = read_ticket(secret, self.get_query_argument("ticket", ""))
        if (
            parsed is None
            or content is None
            or (content.get("p"), content.get("w")) != parsed
            or not proxy.tickets.use(str(content.get("n")))
        ):
            raise web.HTTPError(403, "This preview link has expired; open the preview again.")
        port, workspace_id = parsed
        cookie = json.dumps({"o": content["o"], "w": workspace_id, "p": port})
        self.set_signed_cookie(
            COOKIE_NAME,
            cookie,
            expires_days=None,
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
            path="/",
        )
        self.redirect(safe_next(self.get_query_argument("next", "/")))


def login_url(jupyter_url: str, workspace_id: str, port: int, next_path: str) -> str:
    """Where a preview host sends a browser without the proxy's cookie (step 1)."""
    base = jupyter_url if jupyter_url.endswith("/") else jupyter_url + "/"
    return f"{base}{LOGIN_PATH}/{workspace_id}/{port}?next={quote(next_path, safe='')}"


class HandlerRouter(RuleRouter):
    """Rules whose targets are handler classes of one application (public APIs only).

    What tornado's private `_ApplicationRouter` does for an application's own rules: a
    RequestHandler target is dispatched through `Application.get_handler_delegate`.
    """

    def __init__(
        self,
        application: web.Application,
        handlers: Sequence[tuple[str, type, dict[str, Any]]],
    ) -> None:
        self.application = application
        super().__init__(list(handlers))

    def get_target_delegate(
        self, target: Any, request: HTTPServerRequest, **target_params: Any
    ) -> HTTPMessageDelegate | None:
        if isinstance(target, type) and issubclass(target, web.RequestHandler):
            return self.application.get_handler_delegate(request, target, **target_params)
        return super().get_target_delegate(target, request, **target_params)


def install_host_routes(
    web_app: web.Application,
    pattern: HostPattern,
    handlers: Sequence[tuple[str, type, dict[str, Any]]],
) -> None:
    """Route the preview hosts before every other rule.

    Not `add_handlers`: it inserts before tornado's catch-all but after the `.*$` rules that
    jupyter-server and extensions added, whose paths (`/api/...`, `/lab`) would then shadow the
    app's own on a preview host. Tornado has no public "insert first"; `default_router` (set by
    `Application.__init__`) is a public RuleRouter whose `rules` list is documented, and
    tests/unit/test_framework_hooks.py fails with a clear message if that ever changes.
    """
    router = web_app.default_router
    if not isinstance(router, RuleRouter) or not isinstance(router.rules, list):
        raise RuntimeError(
            "tornado's Application.default_router is no longer a RuleRouter with a rules list: "
            "preview host mode cannot put its routes first."
        )
    router.rules.insert(0, Rule(HostMatches(pattern.name_regex), HandlerRouter(web_app, handlers)))


def login_handlers() -> list[tuple[str, type[PreviewLoginHandler]]]:
    return [
        (
            rf"/{LOGIN_PATH}/(?P<workspace_id>{_WORKSPACE_ID})/(?P<port>[0-9]{{1,5}})",
            PreviewLoginHandler,
        )
    ]
