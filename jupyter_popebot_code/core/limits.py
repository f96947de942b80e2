"""How many workspaces an owner may have and run, and how many the server runs at once.

The counts are read and the new workspace reserved under one lock, so two creates or starts that
race can never both take the last place; a start in flight counts before the backend says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from .. import metrics
from ..backends.base import HOLDING_STATES, WorkspaceBackend
from ..errors import QuotaExceeded, ServerAtCapacity
from .locks import KeyedLocks
from .store import Workspace, WorkspaceStore

# The lock of the server-wide count of running workspaces; workspace ids never contain ':'.
_CAPACITY_KEY = "server:running"


@dataclass(frozen=True)
class Quota:
    """How much one owner may have; 0 means no limit."""

    max_workspaces: int = 0
    max_running: int = 0


def _owner_key(owner: str) -> str:
    """An owner's lock key; workspace ids never contain ':'."""
    return f"owner:{owner}"


class WorkspaceLimits:
    """The owner's quota and the server-wide cap, checked where a workspace is added or run."""

    def __init__(
        self,
        store: WorkspaceStore,
        containers: WorkspaceBackend,
        locks: KeyedLocks,
        db: Callable[..., Awaitable[object]],
        quota: Quota,
        running_cap: Callable[[], Awaitable[int]] | None,
    ) -> None:
        self.store = store
        self.containers = containers
        self.locks = locks
        self._db = db
        self.quota = quota
        # The most workspaces that may hold memory at once, all owners together; 0: no limit.
        self.running_cap = running_cap
        # Containers being created or started under the cap: they count before Docker says so.
        self._starting: set[str] = set()

    def quota_lock(self, owner: str, creating: bool) -> AbstractAsyncContextManager[object]:
        """The owner's lock while a quota applies, so "count, then add" is one step.

        Without quotas an owner's workspaces start in parallel; with them, one at a time.
        """
        quota = self.quota
        if quota.max_running or (creating and quota.max_workspaces):
            return self.locks.lock(_owner_key(owner))
        return contextlib.nullcontext()

    async def check_quota(self, owner: str, workspace: Workspace, creating: bool) -> None:
        """Refuse to add a workspace, or to run one more, beyond the owner's quota."""
        quota = self.quota
        if creating and quota.max_workspaces:
            count = await self._db(self.store.count_for_user, owner)
            assert isinstance(count, int)
            if count >= quota.max_workspaces:
                metrics.quota_refused("workspaces_per_user")
                raise QuotaExceeded(
                    f"You already have {count} workspaces, the most this server allows "
                    f"({quota.max_workspaces}). Delete one to create another."
                )
        if quota.max_running:
            running = await self._running_names(owner)
            running.discard(workspace.container_name or "")
            if len(running) >= quota.max_running:
                metrics.quota_refused("running_per_user")
                raise QuotaExceeded(
                    f"You already have {len(running)} running workspaces, the most this server "
                    f"allows ({quota.max_running}). Stop or delete one first."
                )

    @contextlib.asynccontextmanager
    async def running_slot(self, workspace: Workspace) -> AsyncIterator[None]:
        """A place for the workspace's container among the server's running ones, while it starts.

        Counting and reserving are one step under one lock held only for the count: starts of
        different workspaces still overlap, and a start in flight counts as running already.
        """
        cap = await self.running_cap() if self.running_cap is not None else 0
        name = workspace.container_name or ""
        if not cap:
            yield
            return
        async with self.locks.lock(_CAPACITY_KEY):
            holding = set(await self.containers.holding_names(self.store.store_id))
            holding |= self._starting
            holding.discard(name)  # its own (paused, restarting) container is already counted
            if len(holding) >= cap:
                metrics.quota_refused("running_per_server")
                raise ServerAtCapacity(
                    f"This server already runs {len(holding)} workspaces, the most it allows "
                    f"at once for all users together (max_running_workspaces = {cap}). Try "
                    "again when one stops, or stop one of yours."
                )
            self._starting.add(name)
        try:
            yield
        finally:
            self._starting.discard(name)

    async def _running_names(self, owner: str) -> set[str]:
        """Containers of the owner's workspaces that hold memory (running, paused, restarting)."""
        workspaces = await self._db(self.store.list_for_user, owner)
        assert isinstance(workspaces, list)
        names = [ws.container_name for ws in workspaces if ws.container_name]
        statuses = await self.containers.statuses(self.store.store_id, names)
        return {name for name, status in statuses.items() if status in HOLDING_STATES}
