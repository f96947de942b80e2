"""Reading workspaces: their records, their containers' states, where to dial them.

The half of `WorkspaceService` that changes nothing and takes no lock: lists, a workspace's
status, its terminal endpoint and its ports. Store calls run on the service's SQLite thread.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from ..backends.base import (
    ContainerError,
    ContainerNotRunning,
    ContainerState,
    DiskFull,
    DockerUnavailable,
    PortListing,
    TerminalEndpoint,
    WorkspaceBackend,
)
from ..errors import WorkspaceNotFound
from .store import Workspace, WorkspaceStore

T = TypeVar("T")

# The container is queried in one call for a listing; these mean "no answer" and "no container".
STATUS_UNKNOWN = "unknown"
STATUS_MISSING = "missing"


class WorkspaceReader:
    """The workspaces an owner (or an admin, owner None) may see, and how to reach them."""

    store: WorkspaceStore
    containers: WorkspaceBackend
    log: logging.Logger
    last_activity: dict[str, float]
    _db_thread: ThreadPoolExecutor

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        """Run one store call off the event loop; a full disk is named as such."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)
        except sqlite3.OperationalError as err:
            if "disk is full" not in str(err).lower():
                raise
            raise DiskFull(
                "server",
                "The Jupyter server's disk is full: the workspace records cannot be written "
                "until an operator frees room there. No workspace was changed.",
            ) from err

    async def _owned(self, owner: str | None, workspace_id: str) -> Workspace:
        """The workspace if `owner` owns it; owner None is an admin, who may act on any."""
        workspace = await self._db(self.store.get, workspace_id)
        if workspace is None or (owner is not None and workspace.user_id != owner):
            raise WorkspaceNotFound(workspace_id)
        return workspace

    def _with_activity(self, workspace: Workspace) -> Workspace:
        """The workspace with last_used_at as known now (the record lags by activity_interval)."""
        seen = self.last_activity.get(workspace.id)
        if seen is None or seen <= (workspace.last_used_at or 0.0):
            return workspace
        return replace(workspace, last_used_at=seen)

    async def owners(self) -> list[str]:
        """Everyone who owns a workspace."""
        return await self._db(self.store.owners)

    async def all_workspaces(self) -> list[Workspace]:
        """Every owner's workspaces, as recorded."""
        return await self._db(self.store.list_all)

    async def running_workspaces(self) -> list[Workspace]:
        """The workspaces whose containers run now: costs the running ones, not all records."""
        names = await self.containers.running_names(self.store.store_id)
        if not names:
            return []
        return await self._db(self.store.by_container_names, names)

    # -- reading ---------------------------------------------------------------------------

    async def get(self, owner: str | None, workspace_id: str) -> Workspace | None:
        """The owner's workspace (anyone's for None), or None."""
        try:
            return await self._owned(owner, workspace_id)
        except WorkspaceNotFound:
            return None

    async def list_with_status(self, owner: str | None) -> list[tuple[Workspace, str]]:
        """The owner's workspaces (everyone's for None) with their container status."""
        if owner is None:
            workspaces = await self._db(self.store.list_all)
        else:
            workspaces = await self._db(self.store.list_for_user, owner)
        names = [ws.container_name for ws in workspaces if ws.container_name]
        try:
            statuses = await self.containers.statuses(self.store.store_id, names)
        except (DockerUnavailable, ContainerError) as err:
            self.log.warning("Listing without container status: %s", err)
            return [(self._with_activity(ws), STATUS_UNKNOWN) for ws in workspaces]
        return [
            (self._with_activity(ws), statuses.get(ws.container_name or "", STATUS_MISSING))
            for ws in workspaces
        ]

    async def describe(self, owner: str | None, workspace_id: str) -> tuple[Workspace, str]:
        """The workspace and its container's status ('missing' when there is none).

        Owner None is an admin, who may see any workspace.
        """
        workspace = self._with_activity(await self._owned(owner, workspace_id))
        if not workspace.container_name:
            return workspace, STATUS_MISSING
        state = await self.containers.state(workspace.container_name)
        return workspace, state.status if state else STATUS_MISSING

    # -- terminals -------------------------------------------------------------------------

    async def terminal_endpoint(
        self, workspace: Workspace, *, fresh: bool = False
    ) -> TerminalEndpoint:
        """Where the relay dials the workspace's ttyd (see container_host for `fresh`)."""
        return await self.containers.terminal_endpoint(
            workspace, await self._running_state(workspace, fresh)
        )

    async def container_host(self, workspace: Workspace, *, fresh: bool = False) -> str:
        """Where this server dials the running container (ttyd, previews).

        `fresh` asks the backend even when its events say the container runs: after a failed
        dial, since the events learn of a change made behind the server's back a moment late.
        """
        state = await self._running_state(workspace, fresh)
        assert workspace.container_name
        return await self.containers.connect_host(workspace.container_name, state)

    async def _running_state(self, workspace: Workspace, fresh: bool) -> ContainerState:
        name = workspace.container_name
        if not name:
            raise ContainerError("This workspace has no container.")
        known = None if fresh else self.containers.known_running(name)
        state = known or await self.containers.state(name)
        if state is None or state.status != "running":
            raise ContainerNotRunning(state.status if state else STATUS_MISSING)
        return state

    async def listening_ports(
        self, owner: str | None, workspace_id: str
    ) -> tuple[Workspace, str, PortListing]:
        """The workspace, its container's status and, while it runs, the ports it listens on.

        Starts nothing. Owner None is an admin. The ports may be up to
        ContainerManager.ports_cache_seconds old.
        """
        workspace, status = await self.describe(owner, workspace_id)
        if status != "running" or not workspace.container_name:
            return workspace, status, PortListing(())
        try:
            ports = await self.containers.listening_ports(workspace.container_name)
        except DockerUnavailable:
            raise
        except ContainerError:
            # Stopped between the two calls (exec refused): what it says now is the answer.
            workspace, status = await self.describe(owner, workspace_id)
            if status == "running":
                raise  # still running: an error, never a silently empty listing
            return workspace, status, PortListing(())
        return workspace, status, ports
