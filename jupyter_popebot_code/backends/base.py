"""What a workspace backend must do: the one interface the service, idle stop and hub sync see.

A backend runs each workspace as one container-like unit (`Workspace.container_name`) on a volume
of its own (`Workspace.volume_name`) that outlives it, with ttyd on `TTYD_PORT`. It answers in
the types below and fails with the exceptions below; nothing above it imports a concrete backend.
Three implement it: the Docker backend (`backends.docker.ContainerManager`), the Swarm backend
(`backends.swarm.SwarmContainerManager`) and the fast test tier's in-memory one
(`tests/memory_containers.py`). docs/architecture.md ("Backends") maps each method to its role,
docs/kubernetes-plan.md to the Kubernetes calls of a fourth.
"""

from __future__ import annotations

import abc
import asyncio
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from traitlets.config import LoggingConfigurable
from traitlets.traitlets import MetaHasTraits
from traitlets.utils.importstring import import_item

from ..core.capacity import HostResources
from ..core.profiles import Profile
from ..core.store import Workspace
from ..errors import (
    ContainerError,
    ContainerMissing,
    ContainerNotRunning,
    DiskFull,
    DockerUnavailable,
    NodeUnavailable,
)

__all__ = [
    "HOLDING_STATES",
    "TTYD_PORT",
    "ContainerError",
    "ContainerMissing",
    "ContainerNotRunning",
    "ContainerState",
    "DiskFull",
    "DockerUnavailable",
    "ListeningPort",
    "NoNetworkPolicy",
    "NodeUnavailable",
    "PortListing",
    "TerminalEndpoint",
    "WorkspaceBackend",
    "WorkspaceNetworkPolicy",
]

# Where ttyd listens inside every workspace (the image's entrypoint starts it there).
TTYD_PORT = 7681
# States that hold memory and processes: they count against the running-workspace limits.
HOLDING_STATES = frozenset({"running", "paused", "restarting"})


# What goes wrong: the package's errors (errors.py, with how each is answered), re-exported
# here because every backend raises them. The names say Docker, the first backend; they mean
# any backend: DockerUnavailable (503, try later), NodeUnavailable (its machine is down),
# ContainerError (refused), ContainerMissing, ContainerNotRunning, DiskFull (507, whose disk).


# -- what a backend answers ----------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerState:
    status: str  # Docker's State.Status: created, running, paused, restarting, exited, dead, ...
    ip_address: str | None
    started_at: float | None = None  # epoch seconds of the last start, when the backend says


@dataclass(frozen=True)
class ListeningPort:
    """A port something listens on, and the address it is bound to inside the container."""

    port: int
    address: str

    @property
    def reachable(self) -> bool:
        """Whether the server can reach it: not bound to the container's loopback only."""
        return not ipaddress.ip_address(self.address).is_loopback


@dataclass(frozen=True)
class PortListing:
    """The listening ports, lowest first; `truncated` when some were left out by a cap."""

    ports: tuple[ListeningPort, ...]
    truncated: bool = False


@dataclass(frozen=True)
class TerminalEndpoint:
    """Where a workspace's ttyd listens, and the credential it wants (server-side only)."""

    host: str
    port: int
    credential: str


class WorkspaceNetworkPolicy(Protocol):
    """What the server asks of the network policy a backend names (network_policy_class)."""

    async def install(self) -> None:
        """At start-up, before any workspace is asked for: the rules are in force."""

    async def refresh(self) -> None:
        """After a workspace container (re)started: rules that name addresses follow it."""

    async def uninstall(self) -> None:
        """Remove the rules (the command line's `remove`)."""


class NoNetworkPolicy:
    """The policy of a backend that needs none (its workspaces are apart by construction)."""

    def __init__(self, backend: WorkspaceBackend, **kwargs: Any) -> None:
        self.backend = backend

    async def install(self) -> None:
        """Nothing to install."""

    async def refresh(self) -> None:
        """Nothing names addresses."""

    async def uninstall(self) -> None:
        """Nothing to remove."""


class _BackendMeta(abc.ABCMeta, MetaHasTraits):
    """Traitlets' metaclass with abstract methods: a backend missing one cannot be made."""


class WorkspaceBackend(LoggingConfigurable, metaclass=_BackendMeta):
    """Runs workspace containers. Coroutines may do I/O (off the event loop); plain methods
    answer from memory.

    Container names are the workspaces' `container_name`; `store_id` tells one server's
    containers from another's on a shared engine. Errors: DockerUnavailable (503, try later),
    NodeUnavailable (its machine is down), ContainerError (refused; DiskFull: a disk limit).
    """

    #: Dotted path of the class that keeps this backend's workspaces apart on the network,
    #: made once per server with the backend as its first argument (WorkspaceNetworkPolicy).
    #: A path, not the class: the policy module imports its backend, never the reverse.
    network_policy_class: ClassVar[str] = "jupyter_popebot_code.backends.base.NoNetworkPolicy"

    def network_policy(self, **kwargs: Any) -> WorkspaceNetworkPolicy:
        """The backend's network policy (network_policy_class), with traitlets kwargs."""
        policy_class = import_item(self.network_policy_class)
        policy: WorkspaceNetworkPolicy = policy_class(self, **kwargs)
        return policy

    def apply_server_defaults(self, *, single_user: bool, multi_user: bool) -> None:
        """Choose the defaults that depend on who uses the server (before any workspace)."""

    def describe(self) -> str:
        """A few words for the start-up log (where workspaces run, which image)."""
        return type(self).__name__

    # -- events: the state cache ---------------------------------------------------------------

    @abc.abstractmethod
    def watch(self, store_id: str) -> None:
        """Start keeping the states of this store's containers, if the backend can follow them."""

    @abc.abstractmethod
    def known_running(self, container_name: str) -> ContainerState | None:
        """The state when the followed events say the container runs, else None; no I/O.

        For the hot paths (ensure, the relay): None makes the caller ask `state`.
        """

    def status_counts(self) -> dict[str, int] | None:
        """Status -> how many of the store's containers have it, from the followed events;
        None when the backend follows none or they are not live (metrics)."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Stop following events and taking calls; never waits on a call in flight."""

    # -- queries ---------------------------------------------------------------------------------

    @abc.abstractmethod
    async def state(self, container_name: str) -> ContainerState | None:
        """The container's state now, or None when there is no such container."""

    @abc.abstractmethod
    async def statuses(self, store_id: str, names: Iterable[str]) -> dict[str, str]:
        """Name -> status of those of `names` that exist (one call for them all)."""

    @abc.abstractmethod
    async def running_names(self, store_id: str) -> list[str]:
        """Names of the store's containers that run now."""

    @abc.abstractmethod
    async def holding_names(self, store_id: str) -> list[str]:
        """Names of the store's containers that hold memory now (HOLDING_STATES)."""

    @abc.abstractmethod
    async def workspace_ids(self, store_id: str) -> dict[str, str]:
        """Container name -> workspace id of everything of this store (for the orphan sweep)."""

    @abc.abstractmethod
    async def host_resources(self) -> HostResources:
        """The CPUs and memory workspaces can run on, for sizing the server-wide cap."""

    @abc.abstractmethod
    def limits(self) -> tuple[float, int]:
        """(CPUs, memory in bytes) each workspace may use; 0 where there is no limit."""

    # -- changes: create, the ensure steps, stop, remove -----------------------------------------

    @abc.abstractmethod
    async def create(
        self,
        workspace: Workspace,
        store_id: str,
        env: dict[str, str],
        profile: Profile | None = None,
    ) -> None:
        """Create and start the workspace's container on its (possibly existing) volume.

        `profile`: its image and limits over the backend's own (None: the backend's).
        """

    @abc.abstractmethod
    async def prepare_start(self, workspace: Workspace) -> None:
        """What must hold before a stopped container starts (e.g. its disk mounted)."""

    @abc.abstractmethod
    async def start(self, container_name: str) -> None:
        """Start a created or stopped container (ContainerMissing when it is gone)."""

    @abc.abstractmethod
    async def unpause(self, container_name: str) -> None:
        """Resume a paused container; one no longer paused counts as resumed."""

    @abc.abstractmethod
    async def wait_while_restarting(self, container_name: str) -> ContainerState | None:
        """The state once a restarting container settled; ContainerError if it never does."""

    async def recreate(
        self,
        workspace: Workspace,
        store_id: str,
        env: dict[str, str],
        profile: Profile | None = None,
    ) -> None:
        """A fresh container on the same volume (ensure, when the old one cannot start)."""
        assert workspace.container_name
        await self.remove(workspace.container_name, recreating=True)
        await self.create(workspace, store_id, env, profile)

    @abc.abstractmethod
    async def stop(self, container_name: str) -> None:
        """Stop the container: its processes end, its volume and settings stay."""

    @abc.abstractmethod
    async def remove(self, container_name: str, recreating: bool = False) -> None:
        """Remove the container (gone already counts as removed); the volume stays.

        `recreating`: a container of the same name follows at once, so what they share stays.
        """

    @abc.abstractmethod
    async def remove_volume(self, volume_name: str) -> None:
        """Remove the volume and every file on it (gone already counts as removed)."""

    @abc.abstractmethod
    async def unmount_volume(self, volume_name: str) -> None:
        """Let go of a volume that is kept without its workspace (it stays for later)."""

    @abc.abstractmethod
    async def release_volume(self, volume_name: str) -> None:
        """The workspace was deleted: remove its volume, or keep it if the backend keeps them."""

    # -- personal secrets ------------------------------------------------------------------------

    def enable_secret_files(self) -> bool:
        """Prepare new containers to receive the owners' personal secrets; False when this
        backend cannot deliver them (they are then kept, not written into workspaces)."""
        return False

    async def install_secret_files(self, container_name: str, payload: bytes) -> None:
        """Write the owner's personal secrets (NUL-separated name, content pairs) into the
        running container, replacing those it holds."""
        raise ContainerError(f"{type(self).__name__} cannot deliver personal secrets.")

    # -- the terminal, ports and activity --------------------------------------------------------

    @abc.abstractmethod
    async def connect_host(self, container_name: str, state: ContainerState) -> str:
        """Where this server dials the running container (ttyd, previews): a name or address."""

    async def terminal_endpoint(
        self, workspace: Workspace, state: ContainerState
    ) -> TerminalEndpoint:
        """Where the relay dials the workspace's ttyd, and the credential ttyd wants."""
        assert workspace.container_name
        host = await self.connect_host(workspace.container_name, state)
        return TerminalEndpoint(host=host, port=TTYD_PORT, credential=workspace.ttyd_credential)

    @abc.abstractmethod
    async def listening_ports(self, container_name: str) -> PortListing:
        """The TCP ports the running container listens on (ttyd's left out), capped."""

    @abc.abstractmethod
    async def terminal_activity(self, container_name: str) -> float | None:
        """Epoch seconds of the latest terminal output in the workspace; None when unknown."""


async def settled_state(
    backend: WorkspaceBackend, container_name: str, timeout: float, hint: str = ""
) -> ContainerState | None:
    """Poll a 'restarting' container's state until it settles; ContainerError after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state = await backend.state(container_name)
    while state is not None and state.status == "restarting" and loop.time() < deadline:
        await asyncio.sleep(0.5)
        state = await backend.state(container_name)
    if state is not None and state.status == "restarting":
        raise ContainerError(
            f"Container {container_name} is still restarting after {timeout:g} s{hint}."
        )
    return state
