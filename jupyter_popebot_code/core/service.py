"""What users can do with workspaces: the rules that join the store and the backend.

Every operation that touches a workspace's container holds that workspace's lock, so concurrent
create / ensure / delete calls cannot race each other into two containers or a half-deleted one.
SQLite calls run on one thread of their own: a busy database never stalls the event loop. The
backend is seen only through its interface (`backends.base.WorkspaceBackend`); the quotas live in
`limits`, the container steps in `steps`, activity in `activity`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .. import metrics
from ..backends.base import (
    ContainerError,
    DockerUnavailable,
    TerminalEndpoint,
    WorkspaceBackend,
    WorkspaceNetworkPolicy,
)
from ..errors import WorkspaceNotFound
from .activity import ActivityLog
from .limits import Quota, WorkspaceLimits
from .locks import KeyedLocks
from .profiles import Profile, ProfileCatalog
from .reader import WorkspaceReader
from .steps import ContainerSteps, EnsureResult
from .store import Workspace, WorkspaceStore, volume_name
from .validation import WorkspaceSpec, WorkspaceValidator

T = TypeVar("T")

__all__ = [
    "EnsureResult",
    "Quota",
    "TerminalEndpoint",
    "WorkspaceService",
]


class WorkspaceService(WorkspaceReader):
    """Workspace operations on behalf of an owner: reading (WorkspaceReader) and changing."""

    def __init__(
        self,
        store: WorkspaceStore,
        containers: WorkspaceBackend,
        validator: WorkspaceValidator,
        log: logging.Logger,
        quota: Quota | None = None,
        activity_interval: float = 30.0,
        network_policy: WorkspaceNetworkPolicy | None = None,
        running_cap: Callable[[], Awaitable[int]] | None = None,
        profiles: ProfileCatalog | None = None,
    ) -> None:
        self.store = store
        self.containers = containers
        self.validator = validator
        self.log = log
        self._locks = KeyedLocks()
        # The operator's workspace profiles: a workspace's container is (re)made from its own.
        self.profiles = profiles or ProfileCatalog()
        # Awaited with a workspace whose container runs after a create or an ensure, under its
        # lock (personal secrets are written in then); they handle their own failures.
        self.container_up_hooks: list[Callable[[Workspace], Awaitable[None]]] = []
        # One thread: the store serialises its calls anyway, and order is kept.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="popebot-store")
        self.limits = WorkspaceLimits(
            store, containers, self._locks, self._db, quota or Quota(), running_cap
        )
        self.steps = ContainerSteps(
            containers, store.store_id, self._container_env, self._profile_of, log
        )
        self.steps.network_policy = network_policy
        self.activity = ActivityLog(store, self._db_thread, activity_interval, log)
        # Read by the idle stopper and hub sync (the same dicts as the activity log's).
        self.last_activity = self.activity.last_activity
        self.owner_activity = self.activity.owner_activity

    @property
    def quota(self) -> Quota:
        return self.limits.quota

    @property
    def running_cap(self) -> Callable[[], Awaitable[int]] | None:
        return self.limits.running_cap

    @running_cap.setter
    def running_cap(self, cap: Callable[[], Awaitable[int]] | None) -> None:
        self.limits.running_cap = cap

    @property
    def network_policy(self) -> WorkspaceNetworkPolicy | None:
        return self.steps.network_policy

    def _lock_for(self, workspace_id: str) -> asyncio.Lock:
        return self._locks.lock(workspace_id)

    # -- changing --------------------------------------------------------------------------

    def _profile_of(self, workspace: Workspace) -> Profile | None:
        """The workspace's profile as configured now; a removed one falls back to the defaults."""
        profile = self.profiles.get(workspace.profile)
        if profile is None and workspace.profile:
            self.log.warning(
                "Workspace %s was made with profile %r, which is no longer configured: its "
                "container gets ContainerManager's image and limits",
                workspace.id,
                workspace.profile,
            )
        return profile

    def _container_env(self, workspace: Workspace) -> dict[str, str]:
        return {
            "REPO_URL": self.validator.clone_url(workspace.repo),
            "BRANCH": workspace.branch,
            "GIT_ALLOW_PROTOCOL": self.validator.git_allow_protocol(),
        }

    @metrics.create_operation
    async def create(
        self, owner: str, spec: WorkspaceSpec, profile: Profile | None = None
    ) -> Workspace:
        """Create the record and a started container, or neither.

        `profile`: the one chosen for the caller (ProfileCatalog.choose); None without profiles.
        """
        slug = profile.slug if profile is not None else ""
        workspace = Workspace.new(owner, spec.name, spec.repo, spec.branch, profile=slug)
        limits = self.limits
        async with limits.quota_lock(owner, creating=True), self._lock_for(workspace.id):
            await limits.check_quota(owner, workspace, creating=True)
            async with limits.running_slot(workspace):
                try:
                    await self.steps.create(workspace, profile)
                    await self._db(self.store.insert, workspace)
                    await self.steps.started()
                except BaseException:
                    await self.steps.discard(workspace)
                    raise
            await self._container_up(workspace)
        self.log.info("Created code workspace %s for %s", workspace.id, owner)
        return workspace

    async def rename(self, owner: str, workspace_id: str, name: str) -> Workspace:
        await self._owned(owner, workspace_id)
        renamed = await self._db(self.store.rename, workspace_id, name)
        if renamed is None:
            raise WorkspaceNotFound(workspace_id)
        return renamed

    async def toggle_star(self, owner: str, workspace_id: str) -> Workspace:
        await self._owned(owner, workspace_id)
        toggled = await self._db(self.store.toggle_star, workspace_id)
        if toggled is None:
            raise WorkspaceNotFound(workspace_id)
        return toggled

    @metrics.delete_operation
    async def delete(self, owner: str | None, workspace_id: str) -> None:
        """Remove the container (and volume unless kept), then the record: a failure keeps all."""
        async with self._lock_for(workspace_id):
            workspace = await self._owned(owner, workspace_id)
            if workspace.container_name:
                await self.containers.remove(workspace.container_name)
            await self.containers.release_volume(workspace.volume_name)
            await self._db(self.store.delete, workspace_id)
            self.activity.forget(workspace_id)
        self.log.info("Deleted code workspace %s of %s", workspace_id, workspace.user_id)

    async def remove_owner(self, owner: str, keep_data: bool) -> None:
        """Remove every container of an owner who is gone; volumes and records too unless kept."""
        for workspace in await self._db(self.store.list_for_user, owner):
            async with self._lock_for(workspace.id):
                if workspace.container_name:
                    await self.containers.remove(workspace.container_name)
                if keep_data:
                    await self.containers.unmount_volume(workspace.volume_name)
                    continue
                await self.containers.remove_volume(workspace.volume_name)
                await self._db(self.store.delete, workspace.id)
                self.last_activity.pop(workspace.id, None)
        self.owner_activity.pop(owner, None)
        self.log.info(
            "Removed the containers%s of deleted user %s",
            "" if keep_data else ", volumes and records",
            owner,
        )

    @metrics.ensure_operation
    async def ensure(self, owner: str, workspace_id: str) -> EnsureResult:
        """Bring the workspace's container up, keeping the user's processes where possible."""
        async with self._lock_for(workspace_id):
            workspace = await self._owned(owner, workspace_id)
            if not workspace.container_name:
                return EnsureResult("no_container", "This workspace has no container.")
            # Asking for a workspace is using it: the idle stopper must not stop it right away.
            self.mark_active(workspace_id)
            result = await self._ensure_locked(workspace)
            await self._container_up(workspace)
            return result

    async def _container_up(self, workspace: Workspace) -> None:
        for hook in self.container_up_hooks:
            await hook(workspace)

    async def _ensure_locked(self, workspace: Workspace) -> EnsureResult:
        name = workspace.container_name
        assert name
        if self.containers.known_running(name) is not None:
            return EnsureResult("running")  # the event stream says so: no backend call
        state = await self.containers.state(name)
        if state is not None and state.status == "running":
            return EnsureResult("running")
        limits = self.limits
        async with limits.quota_lock(workspace.user_id, creating=False):
            await limits.check_quota(workspace.user_id, workspace, creating=False)
            async with limits.running_slot(workspace):
                return await self.steps.bring_up(workspace, name, state)

    @metrics.stop_operation
    async def stop(
        self,
        owner: str | None,
        workspace_id: str,
        before_stop: Callable[[], None] | None = None,
    ) -> EnsureResult:
        """Stop the container; files and container stay.

        `before_stop` runs once the caller is known to be allowed (e.g. to close terminals, so
        none of them starts the workspace again by reconnecting).
        """
        async with self._lock_for(workspace_id):
            workspace = await self._owned(owner, workspace_id)
            if before_stop is not None:
                before_stop()
            result = await self.steps.stop(workspace)
        self.log.info("Stopped code workspace %s of %s", workspace_id, workspace.user_id)
        return result

    async def stop_if_idle(
        self, workspace_id: str, idle_since: float, before_stop: Callable[[], None]
    ) -> bool:
        """Stop a running workspace unless it was used after `idle_since`; True if stopped.

        Under the workspace's lock, so an ensure or a terminal that arrives meanwhile wins.
        `before_stop` runs just before the container is told to stop (closing its terminals).
        """
        async with self._lock_for(workspace_id):
            if self.last_activity.get(workspace_id, 0.0) > idle_since:
                return False
            workspace = await self._db(self.store.get, workspace_id)
            if workspace is None or not workspace.container_name:
                return False
            state = await self.containers.state(workspace.container_name)
            if state is None or state.status != "running":
                return False
            before_stop()
            await self.containers.stop(workspace.container_name)
        return True

    def mark_active(self, workspace_id: str, when: float | None = None) -> None:
        """Remember activity in memory only (for the idle stopper); never goes backwards."""
        self.activity.mark_active(workspace_id, when)

    def record_activity(self, workspace_id: str, when: float | None = None) -> None:
        """Note terminal use; written at most once per activity_interval per workspace."""
        self.activity.record(workspace_id, when)

    def note_user_activity(self, owner: str) -> None:
        """The owner used a terminal just now (in memory; hub_sync reports it)."""
        self.activity.note_owner(owner)

    # -- upkeep ----------------------------------------------------------------------------

    async def remove_orphans(self) -> None:
        """Remove this store's containers and volumes that have no record (a crash mid-create).

        Runs once at start-up; a failure is logged, never raised into the server's loop.
        """
        try:
            containers = await self.containers.workspace_ids(self.store.store_id)
            for container_name, workspace_id in containers.items():
                async with self._lock_for(workspace_id):
                    if await self._db(self.store.get, workspace_id) is None:
                        self.log.warning("Removing orphaned container %s", container_name)
                        await self.containers.remove(container_name)
                        # Created before the container, so it holds nothing of the user's yet.
                        await self.containers.remove_volume(volume_name(workspace_id))
        except (DockerUnavailable, ContainerError) as err:
            self.log.info("Skipping the orphan check: %s", err)
        except Exception:
            self.log.exception("The orphan check failed")

    async def close(self) -> None:
        """Release the backend and SQLite without ever waiting on a call still in flight."""
        self.containers.close()
        self._db_thread.shutdown(wait=False, cancel_futures=True)
        # Closing takes the store's lock, which a stuck statement may hold: not on the loop.
        closer = threading.Thread(target=self.store.close, name="popebot-store-close", daemon=True)
        closer.start()
