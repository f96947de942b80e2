"""What users can do with workspaces: the rules that join the store and the containers.

Every operation that touches a workspace's container holds that workspace's lock, so concurrent
create / ensure / delete calls cannot race each other into two containers or a half-deleted one.
SQLite calls run on one thread of their own: a busy database never stalls the event loop.

Longer than most modules on purpose: every rule that takes a workspace's or an owner's lock
(create, ensure, stop, delete, quotas, the server-wide cap, idle stop) is here, so the locking can
be read in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import TypeVar

from .. import metrics
from ..backends.docker.manager import HOLDING_STATES, TTYD_PORT, ContainerManager
from ..backends.docker.ports import PortListing
from ..backends.docker.states import ContainerState
from ..errors import (
    ContainerError,
    ContainerMissing,
    ContainerNotRunning,
    DockerUnavailable,
    QuotaExceeded,
    ServerAtCapacity,
    WorkspaceNotFound,
)
from ..network.policy import NetworkPolicy
from ..terminal.ttyd import TerminalEndpoint
from .profiles import Profile, ProfileCatalog
from .store import Workspace, WorkspaceStore, volume_name
from .validation import WorkspaceSpec, WorkspaceValidator

T = TypeVar("T")

__all__ = [
    "EnsureResult",
    "Quota",
    "TerminalEndpoint",
    "WorkspaceService",
]

# The container is queried in one call for a listing; these mean "no answer" and "no container".
STATUS_UNKNOWN = "unknown"
STATUS_MISSING = "missing"
# The lock of the server-wide count of running workspaces; workspace ids never contain ':'.
_CAPACITY_KEY = "server:running"
# Confirming an unpause: attempts, and the pause before reading the state back.
UNPAUSE_ATTEMPTS = 5
UNPAUSE_SETTLE_SECONDS = 0.05


@dataclass(frozen=True)
class Quota:
    """How much one owner may have; 0 means no limit."""

    max_workspaces: int = 0
    max_running: int = 0


@dataclass(frozen=True)
class EnsureResult:
    status: str  # running | started | created | no_container
    message: str | None = None

    def to_json(self) -> dict[str, str]:
        reply = {"status": self.status}
        if self.message:
            reply["message"] = self.message
        return reply


def _owner_key(owner: str) -> str:
    """An owner's lock key; workspace ids never contain ':'."""
    return f"owner:{owner}"


class WorkspaceService:
    """Workspace operations on behalf of an owner."""

    def __init__(
        self,
        store: WorkspaceStore,
        containers: ContainerManager,
        validator: WorkspaceValidator,
        log: logging.Logger,
        quota: Quota | None = None,
        activity_interval: float = 30.0,
        network_policy: NetworkPolicy | None = None,
        running_cap: Callable[[], Awaitable[int]] | None = None,
        profiles: ProfileCatalog | None = None,
    ) -> None:
        self.store = store
        self.containers = containers
        self.validator = validator
        self.log = log
        self.quota = quota or Quota()
        self.activity_interval = activity_interval
        self.network_policy = network_policy
        # The most workspaces that may hold memory at once, all owners together; 0: no limit.
        self.running_cap = running_cap
        # The operator's workspace profiles: a workspace's container is (re)made from its own.
        self.profiles = profiles or ProfileCatalog()
        # Containers being created or started under the cap: they count before Docker says so.
        self._starting: set[str] = set()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._activity_recorded: dict[str, float] = {}
        # Workspace id -> epoch seconds of its latest known activity (terminal traffic, ensure,
        # tmux output); read by the idle stopper, lost on restart (last_used_at is not).
        self.last_activity: dict[str, float] = {}
        # Owner -> epoch seconds of their latest terminal traffic (reported to JupyterHub).
        self.owner_activity: dict[str, float] = {}
        # Awaited with a workspace whose container runs after a create or an ensure, under its
        # lock (personal secrets are written in then); they handle their own failures.
        self.container_up_hooks: list[Callable[[Workspace], Awaitable[None]]] = []
        # One thread: the store serialises its calls anyway, and order is kept.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="popebot-store")

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        """Run one store call off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)

    def _lock_for(self, workspace_id: str) -> asyncio.Lock:
        lock = self._locks.get(workspace_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[workspace_id] = lock
        return lock

    async def _owned(self, owner: str | None, workspace_id: str) -> Workspace:
        """The workspace if `owner` owns it; owner None is an admin, who may act on any."""
        workspace = await self._db(self.store.get, workspace_id)
        if workspace is None or (owner is not None and workspace.user_id != owner):
            raise WorkspaceNotFound(workspace_id)
        return workspace

    def _container_env(self, workspace: Workspace) -> dict[str, str]:
        return {
            "REPO_URL": self.validator.clone_url(workspace.repo),
            "BRANCH": workspace.branch,
            "GIT_ALLOW_PROTOCOL": self.validator.git_allow_protocol(),
        }

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
        """The workspace and its container's Docker status ('missing' when there is none).

        Owner None is an admin, who may see any workspace.
        """
        workspace = self._with_activity(await self._owned(owner, workspace_id))
        if not workspace.container_name:
            return workspace, STATUS_MISSING
        state = await self.containers.state(workspace.container_name)
        return workspace, state.status if state else STATUS_MISSING

    # -- changing --------------------------------------------------------------------------

    @metrics.create_operation
    async def create(
        self, owner: str, spec: WorkspaceSpec, profile: Profile | None = None
    ) -> Workspace:
        """Create the record and a started container, or neither.

        `profile`: the one chosen for the caller (ProfileCatalog.choose); None without profiles.
        """
        slug = profile.slug if profile is not None else ""
        workspace = Workspace.new(owner, spec.name, spec.repo, spec.branch, profile=slug)
        async with self._quota_lock(owner, creating=True), self._lock_for(workspace.id):
            await self._check_quota(owner, workspace, creating=True)
            async with self._running_slot(workspace):
                try:
                    await self.containers.create(
                        workspace, self.store.store_id, self._container_env(workspace), profile
                    )
                    await self._db(self.store.insert, workspace)
                    await self._container_started()
                except BaseException:
                    await self._discard(workspace)
                    raise
            await self._container_up(workspace)
        self.log.info("Created code workspace %s for %s", workspace.id, owner)
        return workspace

    def _quota_lock(self, owner: str, creating: bool) -> AbstractAsyncContextManager[object]:
        """The owner's lock while a quota applies, so "count, then add" is one step.

        Without quotas an owner's workspaces start in parallel; with them, one at a time.
        """
        quota = self.quota
        if quota.max_running or (creating and quota.max_workspaces):
            return self._lock_for(_owner_key(owner))
        return contextlib.nullcontext()

    async def _check_quota(self, owner: str, workspace: Workspace, creating: bool) -> None:
        """Refuse to add a workspace, or to run one more, beyond the owner's quota."""
        quota = self.quota
        if creating and quota.max_workspaces:
            count = await self._db(self.store.count_for_user, owner)
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
    async def _running_slot(self, workspace: Workspace) -> AsyncIterator[None]:
        """A place for the workspace's container among the server's running ones, while it starts.

        Counting and reserving are one step under one lock held only for the count: starts of
        different workspaces still overlap, and a start in flight counts as running already.
        """
        cap = await self.running_cap() if self.running_cap is not None else 0
        name = workspace.container_name or ""
        if not cap:
            yield
            return
        async with self._lock_for(_CAPACITY_KEY):
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
        names = [ws.container_name for ws in workspaces if ws.container_name]
        statuses = await self.containers.statuses(self.store.store_id, names)
        return {name for name, status in statuses.items() if status in HOLDING_STATES}

    async def _discard(self, workspace: Workspace) -> None:
        """Undo a failed create; the volume is new and holds nothing of the user's yet."""
        assert workspace.container_name
        try:
            await self.containers.remove(workspace.container_name)
            await self.containers.remove_volume(workspace.volume_name)
        except (DockerUnavailable, ContainerError) as err:
            self.log.error("Could not clean up after a failed create of %s: %s", workspace.id, err)

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
            if self.containers.keep_volume_on_delete:
                await self.containers.unmount_volume(workspace.volume_name)
            else:
                await self.containers.remove_volume(workspace.volume_name)
            await self._db(self.store.delete, workspace_id)
            self._activity_recorded.pop(workspace_id, None)
            self.last_activity.pop(workspace_id, None)
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
            return EnsureResult("running")  # the event stream says so: no Docker call
        state = await self.containers.state(name)
        if state is not None and state.status == "running":
            return EnsureResult("running")
        async with self._quota_lock(workspace.user_id, creating=False):
            await self._check_quota(workspace.user_id, workspace, creating=False)
            async with self._running_slot(workspace):
                return await self._bring_up(workspace, name, state)

    async def _bring_up(
        self, workspace: Workspace, name: str, state: ContainerState | None
    ) -> EnsureResult:
        if state is not None and state.status == "restarting":
            state = await self.containers.wait_while_restarting(name)
            if state is not None and state.status == "restarting":
                raise ContainerError(
                    f"Container {name} is still restarting after "
                    f"{self.containers.restart_wait_timeout:g} s; see `docker logs {name}`."
                )
        if state is None:
            await self._recreate(workspace)
            return EnsureResult("created", "The container was missing and has been recreated.")
        if state.status == "running":
            return EnsureResult("running")
        if state.status == "paused":
            await self._unpause_confirmed(name)
            await self._container_started()
            return EnsureResult("started", "The container was paused and has been resumed.")
        if state.status in ("created", "exited"):
            try:
                # A disk image is unmounted after a reboot: mounted again before every start.
                await self.containers.prepare_start(workspace)
                await self.containers.start(name)
            except ContainerMissing:
                await self._recreate(workspace)
                return EnsureResult("created", "The container vanished and has been recreated.")
            except ContainerError as err:
                self.log.warning("Starting %s failed (%s); recreating it", name, err)
                await self._recreate(workspace)
                return EnsureResult("created", f"Starting failed ({err}); recreated the container.")
            await self._container_started()
            return EnsureResult("started", "The container was stopped and has been started.")
        # dead, removing, or a state Docker may add later: a fresh container on the same volume.
        await self._recreate(workspace)
        return EnsureResult("created", f"The container was {state.status} and has been recreated.")

    @metrics.stop_operation
    async def stop(
        self,
        owner: str | None,
        workspace_id: str,
        before_stop: Callable[[], None] | None = None,
    ) -> EnsureResult:
        """Stop the container; files, container and tmux history on the volume stay.

        `before_stop` runs once the caller is known to be allowed (e.g. to close terminals, so
        none of them starts the workspace again by reconnecting).
        """
        async with self._lock_for(workspace_id):
            workspace = await self._owned(owner, workspace_id)
            if before_stop is not None:
                before_stop()
            result = await self._stop_locked(workspace)
        self.log.info("Stopped code workspace %s of %s", workspace_id, workspace.user_id)
        return result

    async def _stop_locked(self, workspace: Workspace) -> EnsureResult:
        if not workspace.container_name:
            return EnsureResult("no_container", "This workspace has no container.")
        state = await self.containers.state(workspace.container_name)
        if state is None or state.status in ("created", "exited", "dead"):
            return EnsureResult("stopped")
        if state.status == "paused":
            await self._unpause_confirmed(workspace.container_name)
        await self.containers.stop(workspace.container_name)
        return EnsureResult("stopped")

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

    async def _unpause_confirmed(self, name: str) -> None:
        """Unpause, then read the state back until Docker agrees the container runs.

        dockerd can apply the late "paused" event of a quick pause/unpause after the unpause, and
        then reports (and treats) the container as paused again: unpause again, a bounded number
        of times.
        """
        for _ in range(UNPAUSE_ATTEMPTS):
            await self.containers.unpause(name)
            await asyncio.sleep(UNPAUSE_SETTLE_SECONDS)
            state = await self.containers.state(name)
            if state is None:
                raise ContainerMissing(f"Container {name} vanished while resuming.")
            if state.status != "paused":
                return
        raise ContainerError(f"Container {name} stays paused after {UNPAUSE_ATTEMPTS} unpauses.")

    async def _recreate(self, workspace: Workspace) -> None:
        assert workspace.container_name
        await self.containers.remove(workspace.container_name, recreating=True)
        await self.containers.create(
            workspace,
            self.store.store_id,
            self._container_env(workspace),
            self._profile_of(workspace),
        )
        await self._container_started()
        self.log.info("Recreated container %s", workspace.container_name)

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

    async def _container_started(self) -> None:
        """A container may have a new address: rules that name addresses follow it."""
        if self.network_policy is None:
            return
        try:
            await self.network_policy.refresh()
        except (DockerUnavailable, ContainerError) as err:
            self.log.error("Could not update the workspace firewall: %s", err)

    # -- terminals -------------------------------------------------------------------------

    async def terminal_endpoint(
        self, workspace: Workspace, *, fresh: bool = False
    ) -> TerminalEndpoint:
        return TerminalEndpoint(
            host=await self.container_host(workspace, fresh=fresh),
            port=TTYD_PORT,
            credential=workspace.ttyd_credential,
        )

    async def container_host(self, workspace: Workspace, *, fresh: bool = False) -> str:
        """Where this server dials the running container (ttyd, previews).

        `fresh` asks Docker even when the event stream says the container runs: after a failed
        dial, since the stream learns of a change made behind the server's back a moment late.
        """
        name = workspace.container_name
        if not name:
            raise ContainerError("This workspace has no container.")
        known = None if fresh else self.containers.known_running(name)
        state = known or await self.containers.state(name)
        if state is None or state.status != "running":
            raise ContainerNotRunning(state.status if state else STATUS_MISSING)
        return await self.containers.connect_host(name, state)

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

    def mark_active(self, workspace_id: str, when: float | None = None) -> None:
        """Remember activity in memory only (for the idle stopper); never goes backwards."""
        when = time.time() if when is None else when
        if when > self.last_activity.get(workspace_id, 0.0):
            self.last_activity[workspace_id] = when

    def record_activity(self, workspace_id: str, when: float | None = None) -> None:
        """Note terminal use; written at most once per activity_interval per workspace.

        The write is not awaited: a terminal frame never waits for SQLite.
        """
        now = time.time() if when is None else when
        self.mark_active(workspace_id, now)
        if now - self._activity_recorded.get(workspace_id, 0.0) < self.activity_interval:
            return
        self._activity_recorded[workspace_id] = now
        written = self._db_thread.submit(self.store.record_use, workspace_id, now)
        written.add_done_callback(self._log_activity_failure)

    def note_user_activity(self, owner: str) -> None:
        """The owner used a terminal just now (in memory; hub_sync reports it)."""
        self.owner_activity[owner] = time.time()

    def _log_activity_failure(self, written: Future[None]) -> None:
        if not written.cancelled() and written.exception() is not None:
            self.log.warning("Could not record terminal activity: %s", written.exception())

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
        """Release Docker and SQLite without ever waiting on a call still in flight."""
        self.containers.close()
        self._db_thread.shutdown(wait=False, cancel_futures=True)
        # Closing takes the store's lock, which a stuck statement may hold: not on the loop.
        closer = threading.Thread(target=self.store.close, name="popebot-store-close", daemon=True)
        closer.start()
