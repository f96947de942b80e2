"""The workspace server as a JupyterHub service keeps in step with the hub's users.

- A user deleted from the hub loses their containers (and, unless kept, volumes and records).
  The hub does not tell services about deletions, so the owners on record are checked
  periodically with the service's own token.
- Terminal traffic of a user is reported as that user's activity (and their running servers'),
  so the hub's idle culler sees someone typing in a workspace terminal as active.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from traitlets import Bool, Float, Unicode, default
from traitlets.config import LoggingConfigurable

from ..core.service import WorkspaceService
from ..errors import ContainerError, DockerUnavailable, HubError

# Scopes the service's token needs before it may conclude that a 404 means "deleted": without
# them the hub answers 404 for users that exist.
REQUIRED_READ_SCOPES = ("list:users", "read:users:name")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class HubSync(LoggingConfigurable):
    """Deleted-user clean-up and activity reports, when this server runs as a hub service."""

    api_url = Unicode(
        help="The hub's API URL. Default: $JUPYTERHUB_API_URL, which the hub gives its services."
    ).tag(config=True)

    @default("api_url")
    def _default_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "")

    api_token = Unicode(
        help=(
            "The service's token for the hub's API. Default: $JUPYTERHUB_API_TOKEN. It needs "
            "the scopes list:users, read:users:name, read:servers and users:activity "
            "(configure_jupyterhub grants them)."
        ),
    ).tag(config=True)

    @default("api_token")
    def _default_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    enabled = Bool(
        help=(
            "Keep in step with the hub's users. Default: True when running as a JupyterHub "
            "service ($JUPYTERHUB_SERVICE_NAME set) with an API URL and token."
        ),
    ).tag(config=True)

    @default("enabled")
    def _default_enabled(self) -> bool:
        return bool(os.environ.get("JUPYTERHUB_SERVICE_NAME") and self.api_url and self.api_token)

    deleted_user_check_interval = Float(
        300.0,
        help=(
            "Seconds between checks for owners the hub no longer knows (deleted users). The hub "
            "does not announce deletions; its 404 counts only when the token holds list:users "
            "and read:users:name (otherwise nothing is removed and the log says why)."
        ),
    ).tag(config=True)

    keep_deleted_users_data = Bool(
        False,
        help=(
            "When a hub user is deleted, keep their workspaces' volumes (files) and records; "
            "their containers are removed either way. A user created again with the same name "
            "then finds those workspaces again. False: remove volumes and records too."
        ),
    ).tag(config=True)

    activity_interval = Float(
        60.0,
        help=(
            "Seconds between reports of users' terminal activity to the hub "
            "(POST /hub/api/users/<name>/activity); 0 disables the reports."
        ),
    ).tag(config=True)

    def __init__(self, service: WorkspaceService, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self._reported: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifetime ----------------------------------------------------------------------------

    def start(self) -> None:
        if not self.enabled or self._tasks:
            return
        loop = asyncio.get_running_loop()
        self.log.info("Following the hub's users at %s", self.api_url)
        self._tasks.append(
            loop.create_task(self._every(self.deleted_user_check_interval, self.remove_deleted))
        )
        if self.activity_interval > 0:
            self._tasks.append(
                loop.create_task(self._every(self.activity_interval, self.report_activity))
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _every(self, interval: float, job: Any) -> None:
        while True:
            await asyncio.sleep(max(interval, 0.5))
            try:
                await job()
            except (HubError, DockerUnavailable, ContainerError) as err:
                self.log.warning("%s skipped: %s", job.__name__, err)
            except Exception:
                self.log.exception("%s failed", job.__name__)

    # -- the hub's API -------------------------------------------------------------------------

    async def _api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = HTTPRequest(
            self.api_url.rstrip("/") + path,
            method=method,
            headers={"Authorization": f"token {self.api_token}"},
            body=None if body is None else json.dumps(body),
            request_timeout=30,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as err:
            raise HubError(f"the hub's API is not reachable: {err}") from err
        if response.code == 599:
            raise HubError(f"the hub's API is not reachable: {response.error}")
        payload = json.loads(response.body) if response.body else None
        return response.code, payload

    async def _user(self, name: str) -> dict[str, Any] | None:
        """The hub's model of a user, or None when the hub has no such user."""
        code, model = await self._api("GET", f"/users/{quote(name, safe='')}")
        if code == 404:
            return None
        if code != 200 or not isinstance(model, dict):
            raise HubError(f"GET /users/{name} answered {code}")
        return model

    # -- deleted users -----------------------------------------------------------------------

    async def remove_deleted(self) -> list[str]:
        """Remove what belongs to owners the hub no longer has; answers their names."""
        code, me = await self._api("GET", "/user")
        scopes = set(me.get("scopes", [])) if code == 200 and isinstance(me, dict) else set()
        missing = [scope for scope in REQUIRED_READ_SCOPES if scope not in scopes]
        if missing:
            # The hub hides users a token may not read behind 404: that is no proof of deletion.
            raise HubError(f"the service's token lacks {', '.join(missing)}; not cleaning up")
        removed = []
        for owner in await self.service.owners():
            if await self._user(owner) is None:
                await self.service.remove_owner(owner, keep_data=self.keep_deleted_users_data)
                removed.append(owner)
        return removed

    # -- activity ------------------------------------------------------------------------------

    async def report_activity(self) -> list[str]:
        """Tell the hub about users' terminal activity since the last report; answers who."""
        reported = []
        for owner, when in list(self.service.owner_activity.items()):
            if when <= self._reported.get(owner, 0.0):
                continue
            model = await self._user(owner)
            if model is None:
                continue
            stamp = _iso(when)
            servers = {
                name: {"last_activity": stamp}
                for name, server in (model.get("servers") or {}).items()
                if isinstance(server, dict) and server.get("ready")
            }
            code, answer = await self._api(
                "POST",
                f"/users/{quote(owner, safe='')}/activity",
                {"last_activity": stamp, "servers": servers},
            )
            if code >= 300:
                raise HubError(f"activity of {owner} refused ({code}): {answer}")
            self._reported[owner] = when
            reported.append(owner)
        return reported
