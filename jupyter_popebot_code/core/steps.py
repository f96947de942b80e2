"""The steps that bring a workspace's container up or down, whatever state it is found in.

Called by the service under the workspace's lock; every container call goes through the backend
interface. Bringing up keeps the user's processes where it can (a paused container is resumed,
a stopped one started) and recreates the container on the same volume where it cannot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..backends.base import (
    ContainerError,
    ContainerMissing,
    ContainerState,
    DockerUnavailable,
    WorkspaceBackend,
    WorkspaceNetworkPolicy,
)
from .profiles import Profile
from .store import Workspace

# Confirming an unpause: attempts, and the pause before reading the state back.
UNPAUSE_ATTEMPTS = 5
UNPAUSE_SETTLE_SECONDS = 0.05


@dataclass(frozen=True)
class EnsureResult:
    status: str  # running | started | created | stopped | no_container
    message: str | None = None

    def to_json(self) -> dict[str, str]:
        reply = {"status": self.status}
        if self.message:
            reply["message"] = self.message
        return reply


class ContainerSteps:
    """Bring up, stop, recreate and clean up one workspace's container through the backend."""

    def __init__(
        self,
        containers: WorkspaceBackend,
        store_id: str,
        environment: Callable[[Workspace], dict[str, str]],
        profile_of: Callable[[Workspace], Profile | None],
        log: logging.Logger,
    ) -> None:
        self.containers = containers
        self.store_id = store_id
        self.environment = environment
        self.profile_of = profile_of
        self.log = log
        self.network_policy: WorkspaceNetworkPolicy | None = None

    async def create(self, workspace: Workspace, profile: Profile | None) -> None:
        await self.containers.create(workspace, self.store_id, self.environment(workspace), profile)

    async def bring_up(
        self, workspace: Workspace, name: str, state: ContainerState | None
    ) -> EnsureResult:
        if state is not None and state.status == "restarting":
            state = await self.containers.wait_while_restarting(name)
        if state is None:
            await self.recreate(workspace)
            return EnsureResult("created", "The container was missing and has been recreated.")
        if state.status == "running":
            return EnsureResult("running")
        if state.status == "paused":
            await self.unpause_confirmed(name)
            await self.started()
            return EnsureResult("started", "The container was paused and has been resumed.")
        if state.status in ("created", "exited"):
            try:
                # A disk image is unmounted after a reboot: mounted again before every start.
                await self.containers.prepare_start(workspace)
                await self.containers.start(name)
            except ContainerMissing:
                await self.recreate(workspace)
                return EnsureResult("created", "The container vanished and has been recreated.")
            except ContainerError as err:
                self.log.warning("Starting %s failed (%s); recreating it", name, err)
                await self.recreate(workspace)
                return EnsureResult("created", f"Starting failed ({err}); recreated the container.")
            await self.started()
            return EnsureResult("started", "The container was stopped and has been started.")
        # dead, removing, or a state Docker may add later: a fresh container on the same volume.
        await self.recreate(workspace)
        return EnsureResult("created", f"The container was {state.status} and has been recreated.")

    async def stop(self, workspace: Workspace) -> EnsureResult:
        if not workspace.container_name:
            return EnsureResult("no_container", "This workspace has no container.")
        state = await self.containers.state(workspace.container_name)
        if state is None or state.status in ("created", "exited", "dead"):
            return EnsureResult("stopped")
        if state.status == "paused":
            await self.unpause_confirmed(workspace.container_name)
        await self.containers.stop(workspace.container_name)
        return EnsureResult("stopped")

    async def unpause_confirmed(self, name: str) -> None:
        """Unpause, then read the state back until the backend agrees the container runs.

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

    async def recreate(self, workspace: Workspace) -> None:
        await self.containers.recreate(
            workspace, self.store_id, self.environment(workspace), self.profile_of(workspace)
        )
        await self.started()
        self.log.info("Recreated container %s", workspace.container_name)

    async def started(self) -> None:
        """A container may have a new address: rules that name addresses follow it."""
        if self.network_policy is None:
            return
        try:
            await self.network_policy.refresh()
        except (DockerUnavailable, ContainerError) as err:
            self.log.error("Could not update the workspace firewall: %s", err)

    async def discard(self, workspace: Workspace) -> None:
        """Undo a failed create; the volume is new and holds nothing of the user's yet."""
        assert workspace.container_name
        try:
            await self.containers.remove(workspace.container_name)
            await self.containers.remove_volume(workspace.volume_name)
        except (DockerUnavailable, ContainerError) as err:
            self.log.error("Could not clean up after a failed create of %s: %s", workspace.id, err)
