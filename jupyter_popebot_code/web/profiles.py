"""REST API: the workspace profiles the caller may use (CodeWorkspacesApp.profiles)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .handlers import WorkspaceAPIHandler, translate_errors


class ProfilesHandler(WorkspaceAPIHandler):
    @web.authenticated
    @authorized
    @translate_errors()
    async def get(self) -> None:
        usable = self.code_app.profile_catalog.for_caller(self.caller())
        self.write_json({"profiles": [profile.to_json() for profile in usable]})


def profile_handlers() -> list[tuple[str, type[WorkspaceAPIHandler]]]:
    return [(r"/api/code/profiles/?", ProfilesHandler)]
