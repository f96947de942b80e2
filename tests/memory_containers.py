"""An in-memory workspace backend for the fast test tier: no Docker engine is ever contacted.

It keeps containers and volumes in dicts and behaves like the engine where the service relies on
it (a name conflict on create, a missing container on start, a volume that outlives its
container). Tests set states (paused, restarting, dead, ...) and inject failures through it.
Only the fast tier uses it; every behaviour it stands in for is also tested against the real
engine in the `docker` tier.

It is the third implementation of `backends.base.WorkspaceBackend` (beside Docker and Swarm), and
answers like a server whose Docker event stream is live: `statuses()` and `known_running()`
read the dicts. The event stream itself (ContainerStates) has unit tests of its own and is tested
against the real engine.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from traitlets import Bool, Enum, Float, Int, Unicode

from jupyter_popebot_code.backends.base import (
    HOLDING_STATES,
    ContainerError,
    ContainerMissing,
    ContainerState,
    DockerUnavailable,
    ListeningPort,
    PortListing,
    WorkspaceBackend,
    settled_state,
)
from jupyter_popebot_code.backends.docker.labels import (
    STORE_LABEL,
    WORKSPACE_LABEL,
    workspace_labels,
)
from jupyter_popebot_code.core.capacity import GIB, HostResources
from jupyter_popebot_code.core.profiles import ContainerResources, Profile
from jupyter_popebot_code.core.store import Workspace


def parse_secret_payload(payload: bytes) -> dict[str, str]:
    """File name -> content, as the image's workspace-secrets-install reads its stdin."""
    fields = payload.decode("utf-8").split("\0")
    assert fields[-1] == "", "the payload ends with a NUL"
    return dict(zip(fields[:-1:2], fields[1:-1:2], strict=True))


@dataclass
class MemoryContainer:
    name: str
    labels: dict[str, str]
    env: dict[str, str]
    volume: str
    status: str = "running"
    ip_address: str | None = "10.99.0.2"
    # Statuses state() reports next, one per call, before `status` again (e.g. restarting).
    upcoming: list[str] = field(default_factory=list)
    # Unpauses after which it is paused again, as a late "paused" event leaves it in dockerd.
    repause: int = 0
    # Epoch seconds of the latest terminal output (None: no terminal yet), for the idle check.
    terminal_output_at: float | None = None
    # What listening_ports answers while it runs (tests set it).
    listening: list[ListeningPort] = field(default_factory=list)
    # Counts its starts: reported as its start time, as Docker's StartedAt changes per start.
    starts: int = 1
    # The image and limits it was made with (its workspace profile's over the manager's).
    resources: ContainerResources | None = None


class InMemoryContainerManager(WorkspaceBackend):
    """The backend interface over dicts; see the module docstring."""

    # The few options of the real backends the service's behaviour depends on.
    connect_via = Enum(["auto", "ip", "name"], "auto", help="As ContainerManager's.").tag(
        config=True
    )
    keep_volume_on_delete = Bool(False, help="As ContainerManager's.").tag(config=True)
    restart_wait_timeout = Float(30.0, help="As ContainerManager's.").tag(config=True)
    image = Unicode("jupyter-popebot-code-workspace:latest", help="As ContainerManager's.").tag(
        config=True
    )
    mem_limit = Unicode("2g", help="As ContainerManager's.").tag(config=True)
    cpu_limit = Float(1.0, help="As ContainerManager's.").tag(config=True)
    pids_limit = Int(512, help="As ContainerManager's.").tag(config=True)

    @classmethod
    def section_names(cls) -> list[str]:
        """The fast tier's ContainerManager options apply here too, as on the real backends."""
        names = super().section_names()
        return [*names[:-1], "ContainerManager", names[-1]]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("docker_host", None)  # the fast tier names an engine that must never be used
        super().__init__(**kwargs)
        self.containers: dict[str, MemoryContainer] = {}
        self.volumes: dict[str, dict[str, str]] = {}
        self.calls: Counter[str] = Counter()
        self.engine_down = False
        # Method name -> exceptions raised by its next calls, in order.
        self.failures: dict[str, list[BaseException]] = {}
        # Method name -> event the method waits for (after its effect) before returning.
        self.gates: dict[str, asyncio.Event] = {}
        # Method name -> event set when the method is entered (tests wait on it).
        self.entered: dict[str, asyncio.Event] = {}
        self.busy: set[str] = set()
        self.overlaps: list[str] = []
        # Container name -> the files of personal secrets last written into it.
        self.secret_files: dict[str, dict[str, str]] = {}
        self.secrets_enabled = False
        # What host_resources answers: large enough that a derived cap never gets in the way.
        self.host = HostResources(64.0, 256 * GIB, "the in-memory host")

    # -- test hooks --------------------------------------------------------------------------

    def set_status(self, name: str, status: str, *upcoming: str) -> None:
        """Set a container's status; `upcoming` ones are reported first, one per state() call."""
        self.containers[name].status = status
        self.containers[name].upcoming = list(upcoming)

    def fail_next(self, method: str, error: BaseException) -> None:
        self.failures.setdefault(method, []).append(error)

    def add_foreign(self, workspace: Workspace, store_id: str, status: str = "running") -> None:
        """A container made behind this server's back (by a crashed server, `docker run`, ...)."""
        assert workspace.container_name
        self.volumes[workspace.volume_name] = workspace_labels(workspace, store_id)
        self.containers[workspace.container_name] = MemoryContainer(
            workspace.container_name,
            workspace_labels(workspace, store_id),
            {},
            workspace.volume_name,
            status,
        )

    async def _enter(self, method: str, name: str | None = None) -> None:
        """Count the call, fail when asked to, and yield to the loop like a real engine call."""
        self.calls[method] += 1
        if method in self.entered:
            self.entered[method].set()
        await asyncio.sleep(0)
        if self.engine_down:
            raise DockerUnavailable("The Docker engine (in memory) is down.")
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)
        if name is not None:
            # Two operations on one container at once would be a race the service must prevent.
            if name in self.busy:
                self.overlaps.append(f"{method} {name}")
            self.busy.add(name)

    async def _leave(self, method: str, name: str | None = None) -> None:
        try:
            gate = self.gates.get(method)
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(0)
        finally:
            if name is not None:
                self.busy.discard(name)

    # -- personal secrets ----------------------------------------------------------------------

    def enable_secret_files(self) -> bool:
        self.secrets_enabled = True
        return True

    async def install_secret_files(self, container_name: str, payload: bytes) -> None:
        """Personal secrets written into a container are recorded."""
        await self._enter("install_secrets", container_name)
        try:
            container = self.containers.get(container_name)
            if container is None or container.status != "running":
                raise ContainerError(f"Container {container_name} is not running.")
            self.secret_files[container_name] = parse_secret_payload(payload)
        finally:
            await self._leave("install_secrets", container_name)

    def watch(self, store_id: str) -> None:
        """Nothing to follow: the dicts are always current, like a live event stream."""

    # -- queries -----------------------------------------------------------------------------

    async def state(self, container_name: str) -> ContainerState | None:
        await self._enter("state")
        container = self.containers.get(container_name)
        if container is None:
            return None
        status = container.upcoming.pop(0) if container.upcoming else container.status
        return ContainerState(status, container.ip_address, float(container.starts))

    async def statuses(self, store_id: str, names: Any) -> dict[str, str]:
        await self._enter("statuses")
        wanted = set(names)
        return {
            c.name: c.status
            for c in list(self.containers.values())
            if c.labels.get(STORE_LABEL) == store_id and c.name in wanted
        }

    async def terminal_activity(self, container_name: str) -> float | None:
        await self._enter("terminal_activity")
        container = self.containers.get(container_name)
        return container.terminal_output_at if container else None

    async def running_names(self, store_id: str) -> list[str]:
        await self._enter("running_names")
        return [
            c.name
            for c in list(self.containers.values())
            if c.labels.get(STORE_LABEL) == store_id and c.status == "running"
        ]

    async def holding_names(self, store_id: str) -> list[str]:
        await self._enter("holding_names")
        return [
            c.name
            for c in list(self.containers.values())
            if c.labels.get(STORE_LABEL) == store_id and c.status in HOLDING_STATES
        ]

    async def host_resources(self) -> HostResources:
        await self._enter("host_resources")
        return self.host

    def known_running(self, container_name: str) -> ContainerState | None:
        self.calls["known_running"] += 1
        container = self.containers.get(container_name)
        if self.engine_down or container is None or container.upcoming:
            return None
        if container.status != "running":
            return None
        return ContainerState("running", container.ip_address, float(container.starts))

    async def workspace_ids(self, store_id: str) -> dict[str, str]:
        await self._enter("workspace_ids")
        return {
            c.name: c.labels.get(WORKSPACE_LABEL, "")
            for c in list(self.containers.values())
            if c.labels.get(STORE_LABEL) == store_id
        }

    async def listening_ports(self, container_name: str) -> PortListing:
        await self._enter("listening_ports")
        container = self.containers.get(container_name)
        if container is None:
            raise ContainerMissing(f"No such container: {container_name}")
        if container.status != "running":
            raise ContainerError(f"Container {container_name} is not running.")
        return PortListing(tuple(sorted(container.listening, key=lambda p: p.port)))

    async def connect_host(self, container_name: str, state: ContainerState) -> str:
        await self._enter("connect_host")
        if self.connect_via == "name":
            return container_name
        if not state.ip_address:
            raise ContainerError(f"Container {container_name} has no address.")
        return state.ip_address

    # -- changes -----------------------------------------------------------------------------

    async def create(
        self,
        workspace: Workspace,
        store_id: str,
        env: dict[str, str],
        profile: Profile | None = None,
    ) -> None:
        name = workspace.container_name
        assert name
        await self._enter("create", name)
        try:
            if name in self.containers:
                raise ContainerError(f"Conflict: the container name {name!r} is in use.")
            labels = workspace_labels(workspace, store_id)
            # Like Docker: the volume is made (or reused) before the container.
            self.volumes.setdefault(workspace.volume_name, labels)
            queued = self.failures.get("create_container")
            if queued:
                raise queued.pop(0)
            self.containers[name] = MemoryContainer(
                name,
                labels,
                dict(env),
                workspace.volume_name,
                resources=ContainerResources.of(profile, self),
            )
        finally:
            await self._leave("create", name)

    async def start(self, container_name: str) -> None:
        await self._enter("start", container_name)
        try:
            container = self.containers.get(container_name)
            if container is None:
                raise ContainerMissing(f"No such container: {container_name}")
            if container.status != "running":
                container.starts += 1
            container.status = "running"
        finally:
            await self._leave("start", container_name)

    async def unpause(self, container_name: str) -> None:
        await self._enter("unpause", container_name)
        try:
            container = self.containers.get(container_name)
            if container is None:
                raise ContainerMissing(f"No such container: {container_name}")
            # Like the real one, a container that is not paused counts as unpaused.
            if container.repause:
                container.repause -= 1
            elif container.status == "paused":
                container.status = "running"
        finally:
            await self._leave("unpause", container_name)

    async def stop(self, container_name: str) -> None:
        await self._enter("stop", container_name)
        try:
            container = self.containers.get(container_name)
            if container is None:
                raise ContainerMissing(f"No such container: {container_name}")
            container.status = "exited"
        finally:
            await self._leave("stop", container_name)

    async def remove(self, container_name: str, recreating: bool = False) -> None:
        await self._enter("remove", container_name)
        try:
            self.containers.pop(container_name, None)
        finally:
            await self._leave("remove", container_name)

    async def remove_volume(self, volume_name: str) -> None:
        await self._enter("remove_volume")
        if any(c.volume == volume_name for c in self.containers.values()):
            raise ContainerError(f"Volume {volume_name} is in use.")
        self.volumes.pop(volume_name, None)

    async def release_volume(self, volume_name: str) -> None:
        if self.keep_volume_on_delete:
            await self.unmount_volume(volume_name)
        else:
            await self.remove_volume(volume_name)

    async def prepare_start(self, workspace: Workspace) -> None:
        """No disk images here: volumes are dicts."""

    async def unmount_volume(self, volume_name: str) -> None:
        """No disk images here: volumes are dicts."""

    async def wait_while_restarting(self, container_name: str) -> ContainerState | None:
        """Poll like the Docker backend until the state settles or restart_wait_timeout passes."""
        return await settled_state(self, container_name, self.restart_wait_timeout)

    def limits(self) -> tuple[float, int]:
        return 1.0, 2 * GIB  # the Docker backend's defaults

    def close(self) -> None:
        self.calls["close"] += 1
