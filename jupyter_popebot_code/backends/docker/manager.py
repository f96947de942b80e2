"""The Docker backend: workspace containers and their volumes on one Docker engine.

Implements `backends.base.WorkspaceBackend`. Every Docker call goes through the seam of
`engine.DockerEngine` (a thread pool): Tornado's event loop never waits on Docker. Container
states come from `states` (the event stream); a container's options from `options`, its volume
and disk image from `volumes`, the questions asked inside it from `execs`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import docker
import docker.errors
from docker.models.containers import Container

from ...core.capacity import HostResources
from ...core.profiles import ContainerResources, Profile
from ...core.store import Workspace
from ..base import (
    HOLDING_STATES,
    TTYD_PORT,
    ContainerError,
    ContainerMissing,
    ContainerNotRunning,
    ContainerState,
    DockerUnavailable,
    PortListing,
    WorkspaceBackend,
    settled_state,
)
from . import execs
from .engine import DockerEngine
from .labels import (
    DISK_DIR_LABEL,
    DISK_SIZE_LABEL,
    HOLDS_HOME_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    OWNER_LABEL,
    STORE_LABEL,
    WORKSPACE_LABEL,
    workspace_labels,
)
from .networks import WorkspaceNetworks, ensure_shared_network
from .options import (
    SECRETS_MOUNT,
    SECRETS_TMPFS,
    WORKSPACE_CAPABILITIES,
    WORKSPACE_HOME,
    ContainerOptions,
)
from .secret_files import install_secret_files
from .states import ContainerStates, state_from_inspect
from .volumes import WorkspaceVolumes

# Imported from here by code written before the backend interface and its modules.
__all__ = [
    "DISK_DIR_LABEL",
    "DISK_SIZE_LABEL",
    "HOLDING_STATES",
    "HOLDS_HOME_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "OWNER_LABEL",
    "SECRETS_MOUNT",
    "SECRETS_TMPFS",
    "STORE_LABEL",
    "TTYD_PORT",
    "WORKSPACE_CAPABILITIES",
    "WORKSPACE_HOME",
    "WORKSPACE_LABEL",
    "ContainerError",
    "ContainerManager",
    "ContainerMissing",
    "ContainerNotRunning",
    "ContainerState",
    "DockerUnavailable",
    "workspace_labels",
]


# Called on a Docker thread with the network's attributes and whether it was just created.
NetworkHook = Callable[[docker.DockerClient, dict[str, Any], bool], None]


def _store_containers(client: docker.DockerClient, store_id: str) -> dict[str, dict[str, Any]]:
    """Name -> summary of every container (running or not) labelled with one store's id."""
    found = client.api.containers(all=True, filters={"label": [f"{STORE_LABEL}={store_id}"]})
    return {c["Names"][0].lstrip("/"): c for c in found}


def _store_states(client: docker.DockerClient, store_id: str) -> dict[str, str]:
    """Name -> Docker status of every container of one store, in one listing."""
    return {name: c["State"] for name, c in _store_containers(client, store_id).items()}


class ContainerManager(ContainerOptions, DockerEngine, WorkspaceBackend):
    """Creates, inspects, starts and removes workspace containers and their volumes."""

    network_policy_class: ClassVar[str] = "jupyter_popebot_code.network.policy.NetworkPolicy"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reach = execs.ConnectVia(self, self)
        self._queries = execs.ContainerQueries(self, self)
        self._states: ContainerStates | None = None
        self.volumes = WorkspaceVolumes(self)
        # Set by NetworkPolicy: driver options of a new network, and a hook that checks an
        # existing network and installs the firewall rules for a new one.
        self.network_options: dict[str, str] = {}
        self.network_hook: NetworkHook | None = None
        # Set when personal secrets are written into containers: they get a tmpfs for them
        # (and their first-start clone waits for them).
        self.secrets_tmpfs = False
        # Docker accepts two networks of one name: never create it from two threads at once.
        self._network_lock = threading.Lock()
        # Set by NetworkPolicy while it keeps workspaces apart: a network per workspace, so
        # Docker's DNS in one names no other (networks.py).
        self.network_per_workspace = False
        self.workspace_networks = WorkspaceNetworks(parent=self, log=self.log)

    def enable_secret_files(self) -> bool:
        self.secrets_tmpfs = True
        return True

    async def install_secret_files(self, container_name: str, payload: bytes) -> None:
        await self._call(install_secret_files, container_name, payload)

    def watch(self, store_id: str) -> None:
        """Keep the states of this store's containers from Docker's event stream (see state)."""
        self._states = ContainerStates(
            self._new_client, f"{STORE_LABEL}={store_id}", self.network, self.log
        )
        self._states.start()

    @property
    def states(self) -> ContainerStates | None:
        return self._states

    def status_counts(self) -> dict[str, int] | None:
        states = self._states
        return states.status_counts() if states is not None and states.live else None

    def close(self) -> None:
        """Stop following events and taking calls; never waits on a call in flight."""
        if self._states is not None:
            self._states.close()
        super().close()

    # -- queries -----------------------------------------------------------------------------

    async def state(self, container_name: str) -> ContainerState | None:
        """The container's state as Docker says it now, or None when there is no such container."""
        return await self._call(self._observed_state, container_name)

    def known_running(self, container_name: str) -> ContainerState | None:
        """The container's state when the event stream is live and says it runs; else None.

        Answers without asking Docker: for the hot paths (ensure, the relay) on a running container.
        """
        states = self._states
        if states is None or not states.live:
            return None
        state = states.get(container_name)
        return state if state is not None and state.status == "running" else None

    def _observed_state(self, client: docker.DockerClient, name: str) -> ContainerState | None:
        observed_at = time.monotonic()
        try:
            state: ContainerState | None = state_from_inspect(
                client.api.inspect_container(name), self.network
            )
        except docker.errors.NotFound:
            state = None
        if self._states is not None:
            self._states.observe(name, state, observed_at)
        return state

    # The three listings answer from memory while the event stream is live (cost: the names
    # asked for, or the running ones, never every workspace ever made), else from one Docker
    # listing of the store.

    async def statuses(self, store_id: str, names: Iterable[str]) -> dict[str, str]:
        """Name -> Docker status of those of `names` that exist, all of one store."""
        states = self._states
        if states is not None and states.live:
            return states.statuses(names)
        wanted = set(names)
        found = await self._call(_store_states, store_id)
        return {name: status for name, status in found.items() if name in wanted}

    async def running_names(self, store_id: str) -> list[str]:
        """Names of the store's containers that run now."""
        states = self._states
        if states is not None and states.live:
            return states.running_names()
        found = await self._call(_store_states, store_id)
        return [name for name, status in found.items() if status == "running"]

    async def holding_names(self, store_id: str) -> list[str]:
        """Names of the store's containers that hold memory now (running, paused, restarting)."""
        states = self._states
        if states is not None and states.live:
            return states.names_in(HOLDING_STATES)
        found = await self._call(_store_states, store_id)
        return [name for name, status in found.items() if status in HOLDING_STATES]

    async def host_resources(self) -> HostResources:
        """The CPUs and memory of the engine's host (`docker info`), for sizing the defaults."""

        def ask(client: docker.DockerClient) -> HostResources:
            info = client.info()
            return HostResources(float(info["NCPU"]), int(info["MemTotal"]), "the Docker host")

        return await self._call(ask)

    async def workspace_ids(self, store_id: str) -> dict[str, str]:
        """Container name -> workspace id for every container of one store."""

        def list_all(client: docker.DockerClient) -> dict[str, str]:
            # A workspace's own network is made before its container: a crash in between leaves
            # the network alone, which the orphan sweep removes through `remove`.
            networks = self.workspace_networks.orphans(client, f"{STORE_LABEL}={store_id}")
            found = {name: labels.get(WORKSPACE_LABEL, "") for name, labels in networks.items()}
            for name, c in _store_containers(client, store_id).items():
                found[name] = c["Labels"].get(WORKSPACE_LABEL, "")
            return found

        return await self._call(list_all)

    async def terminal_activity(self, container_name: str) -> float | None:
        """Epoch seconds of the latest terminal output in the container, in one exec.

        Read from the session keeper's activity file (and any tmux server's windows); None when
        no session runs there (no terminal was ever opened since the start).
        """
        return await self._queries.terminal_activity(container_name)

    async def listening_ports(self, container_name: str) -> PortListing:
        """The TCP ports the running container listens on (ttyd's left out), capped and shared."""
        return await self._queries.listening_ports(container_name)

    async def connect_host(self, container_name: str, state: ContainerState) -> str:
        """Where the relay dials this container's ttyd (connect_via)."""
        return await self._reach.host(container_name, state)

    # -- changes -----------------------------------------------------------------------------

    async def create(
        self,
        workspace: Workspace,
        store_id: str,
        env: dict[str, str],
        profile: Profile | None = None,
    ) -> None:
        """Create and start the workspace's container on its (possibly existing) volume.

        `profile`: its image and limits over this manager's (None: this manager's).
        """
        resources = ContainerResources.of(profile, self)
        environment = await self.environment(workspace, env, workspace.ttyd_credential)
        await self._change(
            workspace.container_name or "",
            lambda client: self._create_sync(client, workspace, store_id, environment, resources),
        )

    async def _change(
        self, container_name: str, action: Callable[[docker.DockerClient], object]
    ) -> None:
        """Run one change, then record the container's state as Docker reports it after."""

        def run(client: docker.DockerClient) -> None:
            try:
                action(client)
            finally:
                # Recorded at once: the event stream confirms a moment later.
                with contextlib.suppress(Exception):
                    self._observed_state(client, container_name)

        await self._call(run)

    def _create_sync(
        self,
        client: docker.DockerClient,
        ws: Workspace,
        store_id: str,
        env: dict[str, str],
        resources: ContainerResources | None = None,
    ) -> None:
        assert ws.container_name
        resources = resources or ContainerResources.of(None, self)
        labels = workspace_labels(ws, store_id)
        self._ensure_network(client)
        network = self.network
        if self.network_per_workspace:
            network = self.workspace_networks.ensure(
                client, ws.container_name, labels, self.network_options
            )
        limited, holds_home = self.volumes.ensure(client, ws, labels, resources.disk)
        options = self.create_options(resources, home_tmpfs=not holds_home)
        container: Container = client.containers.create(
            resources.image,
            name=ws.container_name,
            hostname=f"workspace-{ws.id}"[:63],
            labels=labels,
            environment=env,
            volumes={
                ws.volume_name: {
                    "bind": WORKSPACE_HOME if holds_home else self.workspace_dir,
                    "mode": "rw",
                }
            },
            network=network,
            init=True,
            # After a reboot dockerd would start it before its disk is mounted (ensure mounts).
            restart_policy={"Name": "no" if limited else "unless-stopped"},
            security_opt=["no-new-privileges:true"],
            detach=True,
            **options,
        )
        try:
            container.start()
        except BaseException:
            container.remove(force=True)
            raise

    async def prepare_start(self, workspace: Workspace) -> None:
        """What must hold before the workspace's container starts: its disk mounted."""

        def prepare(client: docker.DockerClient) -> None:
            if self.network_per_workspace and workspace.container_name:
                # One made on the shared network moves to its own here (docs/security.md).
                self.workspace_networks.attach(
                    client,
                    workspace.container_name,
                    self.network,
                    self.network_options,
                    (MANAGED_BY_LABEL, WORKSPACE_LABEL, OWNER_LABEL, STORE_LABEL),
                )
            self.volumes.prepare_start(client, workspace.volume_name)

        await self._call(prepare)

    def _ensure_network(self, client: docker.DockerClient) -> None:
        # Checked on every create (one cheap call): a network removed meanwhile comes back.
        with self._network_lock:
            attrs, created = ensure_shared_network(
                client, self.network, self.network_options, {MANAGED_BY_LABEL: MANAGED_BY}
            )
        if self.network_hook is not None:
            self.network_hook(client, attrs, created)

    async def start(self, container_name: str) -> None:
        await self._change(container_name, lambda client: client.api.start(container_name))

    async def unpause(self, container_name: str) -> None:
        """Unpause; a container that is no longer paused counts as unpaused."""

        def unpause(client: docker.DockerClient) -> None:
            try:
                client.api.unpause(container_name)
            except docker.errors.APIError as err:
                # 409 "not paused": another ensure won, or a late "paused" event is not applied yet.
                if err.status_code != 409:
                    raise

        await self._change(container_name, unpause)

    async def wait_while_restarting(self, container_name: str) -> ContainerState | None:
        """Poll a 'restarting' container until it settles or restart_wait_timeout passes."""
        hint = f"; see `docker logs {container_name}`"
        return await settled_state(self, container_name, self.restart_wait_timeout, hint)

    async def stop(self, container_name: str) -> None:
        """Stop the container (its processes end; volume and container stay for a restart)."""
        await self._change(
            container_name,
            lambda client: client.api.stop(container_name, timeout=int(self.stop_timeout)),
        )

    async def remove(self, container_name: str, recreating: bool = False) -> None:
        """Remove the container; one that is already gone counts as removed.

        `recreating`: a container of the same name follows at once (ensure's recreate), so what
        the two share stays (a Swarm workspace's own network).
        """

        def remove(client: docker.DockerClient) -> None:
            try:
                client.api.remove_container(container_name, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as err:
                # 409: a removal is already in progress.
                if err.status_code != 409:
                    raise
            if not recreating:
                self.workspace_networks.remove(client, container_name)

        await self._change(container_name, remove)

    async def remove_volume(self, volume_name: str) -> None:
        """Remove the volume, and its disk image (unmounted first) when it has one."""
        await self._call(self.volumes.remove, volume_name)

    async def unmount_volume(self, volume_name: str) -> None:
        """Unmount a kept volume's disk image (it stays, and is mounted again by a start)."""
        await self._call(self.volumes.unmount, volume_name)

    async def release_volume(self, volume_name: str) -> None:
        """After a delete: keep the volume (keep_volume_on_delete) or remove it."""
        if self.keep_volume_on_delete:
            await self.unmount_volume(volume_name)
        else:
            await self.remove_volume(volume_name)
