"""REST API: list, create, read, rename, star, delete and ensure the caller's workspaces."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..auth.owner import identity_groups, is_admin
from ..core.profiles import Caller
from ..core.validation import validate_name
from ..errors import (
    ANSWERED,
    CLOSE_WORKSPACE_STOPPED,
    STOPPED_REASON,
    InvalidInput,
    answer,
)
from ..preview.rules import preview_key
from .base import CodeWorkspacesMixin

MAX_BODY_BYTES = 16 * 1024


class WorkspaceAPIError(web.HTTPError):
    """An HTTP error whose JSON body carries extra fields (the bad `field`, an ensure status)."""

    def __init__(self, status_code: int, message: str, **extra: Any) -> None:
        super().__init__(status_code, "%s", message)
        self.message = message
        self.extra = extra


def translate_errors(
    **server_error_fields: Any,
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Turn the service's exceptions into HTTP answers that tell the user what to do.

    The status and message come from `errors.ANSWERS`; `server_error_fields` are added to the
    JSON of 5xx answers (ensure adds `status: error`).
    """

    def decorate(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(method)
        async def wrapper(self: WorkspaceAPIHandler, *args: Any, **kwargs: Any) -> None:
            try:
                await method(self, *args, **kwargs)
            except ANSWERED as err:
                reply = answer(err, "rest")
                if reply is None:
                    raise
                extra = server_error_fields if reply.code >= 500 else {}
                raise WorkspaceAPIError(reply.code, reply.message, **reply.fields, **extra) from err

        return wrapper

    return decorate


class WorkspaceAPIHandler(CodeWorkspacesMixin, APIHandler):
    """JSON in and out; errors carry a `message` (and the `field` at fault)."""

    max_body_bytes = MAX_BODY_BYTES

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if not isinstance(error, WorkspaceAPIError):
            super().write_error(status_code, **kwargs)
            return
        self.set_header("Content-Type", "application/json")
        reply = {"message": error.message, "reason": error.reason, **error.extra}
        self.log.warning("wrote error: %r", error.message)
        self.finish(json.dumps(reply))

    def read_json_object(self, allowed: set[str]) -> dict[str, Any]:
        """The body as a JSON object with only `allowed` keys, or a 400 that says what is wrong."""
        body = self.request.body or b""
        limit = self.max_body_bytes
        if len(body) > limit:
            raise WorkspaceAPIError(400, f"The request body is larger than {limit} bytes.")
        try:
            data = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise WorkspaceAPIError(400, f"The request body is not valid JSON: {err}.") from err
        except RecursionError as err:
            # json's parser recurses per level: a few KiB of `[` exhaust the interpreter's stack.
            raise WorkspaceAPIError(400, "The request body is nested too deeply.") from err
        if not isinstance(data, dict):
            raise WorkspaceAPIError(400, "The request body must be a JSON object.")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise WorkspaceAPIError(
                400,
                f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
                field=unknown[0],
            )
        return data

    def owner_or_admin(self) -> str | None:
        """The caller's name as owner, or None for an admin, who may act on anyone's workspace."""
        if is_admin(self, self.code_app):
            return None
        return self.owner

    def caller(self) -> Caller:
        """Who the request is, as workspace profiles name people: owner, name, email, groups."""
        user = self.current_user
        names = [self.owner, getattr(user, "username", None), getattr(user, "email", None)]
        return Caller.of([n for n in names if isinstance(n, str)], identity_groups(user))

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))


class WorkspaceCollectionHandler(WorkspaceAPIHandler):
    @web.authenticated
    @authorized
    @translate_errors()
    async def get(self) -> None:
        every_owner = self.get_query_argument("all", "false").lower()
        if every_owner not in ("true", "false"):
            raise InvalidInput("all must be true or false.", "all")
        if every_owner == "false":
            listed = await self.service.list_with_status(self.owner)
            self.write_json(
                {"workspaces": [{**ws.to_json(), "container": {"status": s}} for ws, s in listed]}
            )
            return
        if not is_admin(self, self.code_app):
            raise WorkspaceAPIError(403, "Only administrators may list every owner's workspaces.")
        listed = await self.service.list_with_status(None)
        self.write_json(
            {
                "workspaces": [
                    {**ws.to_json(), "owner": ws.user_id, "container": {"status": s}}
                    for ws, s in listed
                ]
            }
        )

    @web.authenticated
    @authorized
    @translate_errors()
    async def post(self) -> None:
        body = self.read_json_object({"name", "repo", "branch", "profile"})
        spec = self.validator.create_spec(body)
        profile = self.code_app.profile_catalog.choose(body.get("profile"), self.caller())
        workspace = await self.service.create(self.owner, spec, profile)
        self.set_header(
            "Location",
            url_path_join(self.base_url, "api/code/workspaces", workspace.id),
        )
        self.write_json(workspace.to_json(), status=201)


class WorkspaceHandler(WorkspaceAPIHandler):
    @web.authenticated
    @authorized
    @translate_errors()
    async def get(self, workspace_id: str) -> None:
        workspace, status = await self.service.describe(self.owner, workspace_id)
        self.write_json({**workspace.to_json(), "container": {"status": status}})

    @web.authenticated
    @authorized
    @translate_errors()
    async def patch(self, workspace_id: str) -> None:
        body = self.read_json_object({"name"})
        if "name" not in body:
            raise InvalidInput("name is required.", "name")
        renamed = await self.service.rename(self.owner, workspace_id, validate_name(body["name"]))
        self.write_json(renamed.to_json())

    @web.authenticated
    @authorized
    @translate_errors()
    async def delete(self, workspace_id: str) -> None:
        await self.service.delete(self.owner_or_admin(), workspace_id)
        self.code_app.preview_proxy.close_workspace(workspace_id)
        self.set_status(204)
        self.finish()


class WorkspaceStarHandler(WorkspaceAPIHandler):
    @web.authenticated
    @authorized
    @translate_errors()
    async def post(self, workspace_id: str) -> None:
        self.read_json_object(set())
        toggled = await self.service.toggle_star(self.owner, workspace_id)
        self.write_json(toggled.to_json())


class WorkspaceEnsureHandler(WorkspaceAPIHandler):
    @web.authenticated
    @authorized
    @translate_errors(status="error")
    async def post(self, workspace_id: str) -> None:
        self.read_json_object(set())
        result = await self.service.ensure(self.owner, workspace_id)
        self.write_json(result.to_json())


class WorkspaceStopHandler(WorkspaceAPIHandler):
    @web.authenticated
    @authorized
    @translate_errors(status="error")
    async def post(self, workspace_id: str) -> None:
        self.read_json_object(set())
        relay = self.code_app.terminal_relay
        previews = self.code_app.preview_proxy

        def before_stop() -> None:
            relay.close_workspace(workspace_id, STOPPED_REASON, CLOSE_WORKSPACE_STOPPED)
            previews.close_workspace(workspace_id)

        result = await self.service.stop(self.owner_or_admin(), workspace_id, before_stop)
        self.write_json(result.to_json())


class WorkspacePortsHandler(WorkspaceAPIHandler):
    @web.authenticated
    @authorized
    @translate_errors()
    async def get(self, workspace_id: str) -> None:
        workspace, status, listing = await self.service.listening_ports(
            self.owner_or_admin(), workspace_id
        )
        key = preview_key(self.settings["cookie_secret"], workspace.user_id, workspace.id)
        proxy = self.code_app.preview_proxy
        template = proxy.url_template(self.base_url, key, workspace.id, self.request.protocol)
        self.write_json(
            {
                "status": status,
                "ports": [
                    {
                        "port": p.port,
                        "address": p.address,
                        "reachable": p.reachable,
                        "url": template.replace("{port}", str(p.port)),
                    }
                    for p in listing.ports
                ],
                "truncated": listing.truncated,
                "url_template": template,
            }
        )


_ID = r"(?P<workspace_id>[^/]+)"


def workspace_handlers() -> list[tuple[str, type[WorkspaceAPIHandler]]]:
    return [
        (r"/api/code/workspaces/?", WorkspaceCollectionHandler),
        (rf"/api/code/workspaces/{_ID}/star", WorkspaceStarHandler),
        (rf"/api/code/workspaces/{_ID}/ensure", WorkspaceEnsureHandler),
        (rf"/api/code/workspaces/{_ID}/stop", WorkspaceStopHandler),
        (rf"/api/code/workspaces/{_ID}/ports", WorkspacePortsHandler),
        (rf"/api/code/workspaces/{_ID}/?", WorkspaceHandler),
    ]
