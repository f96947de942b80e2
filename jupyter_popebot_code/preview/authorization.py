"""Who may use a preview: the key in the path, the Jupyter login, the owner; before anything runs.

The rules are `rules.page_load`, `rules.key_matches` and the Origin check (see docs/previews.md).
What a request costs here is kept small: a workspace's record and its expected key are kept a
few seconds (`records.WorkspaceRecords`), so a page load of dozens of requests reads the store
once and hashes once; a deleted workspace is dropped at once (`PreviewProxy.close_workspace`).
"""

from __future__ import annotations

import hmac

from jupyter_core.utils import ensure_async
from jupyter_server.utils import url_path_join
from tornado import web

from ..auth.owner import AUTH_RESOURCE, is_admin
from ..core.store import Workspace
from ..errors import NoIdentity
from .base import NOT_FOUND_MESSAGE, PreviewBase
from .rules import (
    PREVIEW_ABSOLUTE_PATH,
    PREVIEW_PATH,
    key_matches,
    page_load,
    preflight_answer,
    preview_key,
)


class PreviewAuthorization(PreviewBase):
    """Sandbox (path) mode: the workspace named in the path, if key and caller may use it."""

    async def _authorize_request(self) -> Workspace | None:
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

    async def _keyed_workspace(self, workspace_id: str, key: str) -> Workspace:
        """The workspace if `key` is its owner's preview key; else 403 (unknown looks alike)."""
        records = self.proxy.records
        kept = records.get(workspace_id)
        if kept is not None:
            workspace, expected = kept
            if hmac.compare_digest(expected, key.encode("utf-8", "replace")):
                return workspace
            raise web.HTTPError(403, NOT_FOUND_MESSAGE)
        found = await self.service.get(None, workspace_id)
        secret = self.settings["cookie_secret"]
        owner = found.user_id if found else ""
        # Computed for unknown ids too: unknown and someone else's take alike and look alike.
        valid = key_matches(secret, owner, workspace_id, key)
        if found is None or not valid:
            raise web.HTTPError(403, NOT_FOUND_MESSAGE)
        records.put(found, preview_key(secret, owner, workspace_id))
        return found

    async def _authorize(self, workspace_id: str, key: str) -> Workspace:
        """The workspace if the key is its owner's and the caller may use it; else 401/403."""
        workspace = await self._keyed_workspace(workspace_id, key)
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
