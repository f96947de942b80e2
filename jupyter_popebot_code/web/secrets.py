"""REST API of personal secrets: list (names only), add or replace, delete the caller's own.

Every request acts for its authenticated owner and no one else: another user's secrets do not
exist for it, and no answer ever holds a value.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ..core.secrets import NAME_MAX_LENGTH, PersonalSecrets, validate_secret_name
from .handlers import WorkspaceAPIHandler, translate_errors

# A 16 KiB value may grow up to six times as JSON ("\u0001"), plus the git host.
SECRET_BODY_BYTES = 6 * 16 * 1024 + 4096


class SecretAPIHandler(WorkspaceAPIHandler):
    max_body_bytes = SECRET_BODY_BYTES

    @property
    def secrets(self) -> PersonalSecrets:
        return self.code_app.personal_secrets


class SecretCollectionHandler(SecretAPIHandler):
    @web.authenticated
    @authorized
    @translate_errors()
    async def get(self) -> None:
        listed = await self.secrets.listing(self.owner)
        self.write_json({"secrets": [info.to_json() for info in listed]})


class SecretHandler(SecretAPIHandler):
    @web.authenticated
    @authorized
    @translate_errors()
    async def put(self, name: str) -> None:
        owner = self.owner
        validate_secret_name(name)
        body = self.read_json_object({"value", "git_host"})
        info, created = await self.secrets.put(owner, name, body.get("value"), body.get("git_host"))
        if created:
            self.set_header("Location", url_path_join(self.base_url, "api/code/secrets", name))
        self.write_json(info.to_json(), status=201 if created else 200)

    @web.authenticated
    @authorized
    @translate_errors()
    async def delete(self, name: str) -> None:
        owner = self.owner
        await self.secrets.delete(owner, validate_secret_name(name))
        self.set_status(204)
        self.finish()


def secret_handlers() -> list[tuple[str, type[SecretAPIHandler]]]:
    # Longer names are refused by the pattern (404) rather than read in full.
    name = rf"(?P<name>[^/]{{1,{NAME_MAX_LENGTH * 4}}})"
    return [
        (r"/api/code/secrets/?", SecretCollectionHandler),
        (rf"/api/code/secrets/{name}/?", SecretHandler),
    ]
