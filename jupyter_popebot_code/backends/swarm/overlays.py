"""The Swarm backend's overlay networks: one shared, or one per workspace that the server joins.

With `network_per_workspace` (set by `SwarmNetworkPolicy` when workspaces are kept apart) each
workspace has an attachable overlay of its own (`code-workspace-{id}-net`), which the server's
container joins before the first task starts and leaves when the workspace is deleted; otherwise
all share `network`. A new workspace may instead take a spare overlay the server joined earlier
(`spares`); the network a workspace's service uses is then named in its labels (`NETWORK_LABEL`).
The sync methods run on the Docker thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import docker
import docker.errors

from ..base import ContainerError, ContainerMissing
from ..docker.engine import DockerEngine
from ..docker.labels import MANAGED_BY, MANAGED_BY_LABEL, STORE_LABEL
from .nodes import NODE_LABEL

NETWORK_SUFFIX = "-net"
# On a workspace's service: the name of its own overlay (a spare's is not `{service}-net`).
NETWORK_LABEL = "org.jupyter.popebot-code.network"
_NETWORK_REMOVAL_SECONDS = 60.0
_JOIN_TRIES = 10
_POLL_SECONDS = 0.5


def network_labels(service_labels: dict[str, str]) -> dict[str, str]:
    """A workspace network's labels, from its service's (the node is the service's own)."""
    return {k: v for k, v in service_labels.items() if k not in (NODE_LABEL, NETWORK_LABEL)}


def find(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    for net in client.api.networks(names=[name]):
        if net["Name"] == name:
            return dict(net)
    return None


class OverlaySettings(Protocol):
    """The backend's options these networks follow (SwarmContainerManager's)."""

    network: str
    network_per_workspace: bool
    internal_networks: bool
    server_container: str


class OverlayNetworks:
    """Creates, joins, leaves and removes the overlays of one Swarm backend."""

    def __init__(
        self, engine: DockerEngine, settings: OverlaySettings, log: logging.Logger
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.log = log
        # Docker accepts two networks of one name: never create one from two threads at once.
        self.lock = threading.Lock()
        self._joined: set[str] = set()
        self._join_lock = threading.Lock()
        self._server_id: str | None = None
        # Workspace -> its network, once known (a spare's comes from its service's labels).
        self._names: dict[str, str] = {}
        # Set by the backend: hands out a joined spare overlay (spares.SpareOverlays.claim).
        self.claim_spare: Callable[[docker.DockerClient, str], str | None] | None = None

    def network_of(self, container_name: str) -> str:
        """The overlay network the workspace's task sits on."""
        if self.settings.network_per_workspace:
            return self._names.get(container_name, container_name + NETWORK_SUFFIX)
        return self.settings.network

    def service_labels(self, container_name: str) -> dict[str, str]:
        """The label that names the workspace's own network on its service."""
        if not self.settings.network_per_workspace:
            return {}
        return {NETWORK_LABEL: self.network_of(container_name)}

    def resolve(self, client: docker.DockerClient, container_name: str) -> str:
        """The workspace's network, read from its service's labels once (then remembered)."""
        if self.settings.network_per_workspace and container_name not in self._names:
            with contextlib.suppress(docker.errors.NotFound):
                labels = client.api.inspect_service(container_name)["Spec"].get("Labels") or {}
                self._names[container_name] = (
                    labels.get(NETWORK_LABEL) or container_name + NETWORK_SUFFIX
                )
        return self.network_of(container_name)

    def join_workspace(self, client: docker.DockerClient, container_name: str) -> None:
        self.join(client, self.resolve(client, container_name))

    def ensure_shared(self, client: docker.DockerClient) -> None:
        # The shared attachable overlay (without network_per_workspace), which the server's
        # container joins; workspaces on it can reach each other (docs, "Docker Swarm").
        with self.lock:
            attrs = find(client, self.settings.network)
            if attrs is None:
                client.networks.create(
                    self.settings.network,
                    driver="overlay",
                    attachable=True,
                    labels={MANAGED_BY_LABEL: MANAGED_BY},
                    check_duplicate=True,
                )
                attrs = find(client, self.settings.network)
            if attrs is None or attrs.get("Driver") != "overlay":
                raise ContainerError(
                    f"Network {self.settings.network!r} must be an attachable overlay network "
                    "on Swarm."
                )

    def ensure(self, client: docker.DockerClient, name: str, labels: dict[str, str]) -> None:
        """The network the workspace's task joins exists, and the server is on it.

        The server joins before the task starts: a manager that joins an overlay while a task on
        it starts elsewhere may miss the task's name and address until the next gossip sync
        (about 30 s), and the relay would find nothing. It then stays until the workspace is
        deleted, so starts never race that way.
        """
        if not self.settings.network_per_workspace:
            self.ensure_shared(client)
            return
        if labels.get(NETWORK_LABEL):  # a started service names its own
            self._names[name] = labels[NETWORK_LABEL]
        labels = network_labels(labels)
        network = self.network_of(name)
        with self.lock:
            missing = find(client, network) is None
        if missing and name not in self._names and self.claim_spare is not None:
            spare = self.claim_spare(client, labels.get(STORE_LABEL, ""))
            if spare is not None:  # made and joined earlier: nothing left to wait for
                self._names[name] = spare
                return
        with self.lock:
            if find(client, network) is None:
                client.api.create_network(
                    network,
                    driver="overlay",
                    attachable=True,
                    internal=self.settings.internal_networks,
                    labels=labels,
                    check_duplicate=True,
                )
        self.join(client, network)

    def _server_container_id(self, client: docker.DockerClient) -> str:
        if self._server_id is None:
            reference = self.settings.server_container or socket.gethostname()
            try:
                self._server_id = str(client.api.inspect_container(reference)["Id"])
            except docker.errors.NotFound:
                raise ContainerError(
                    "With one overlay network per workspace this server must run in a container "
                    f"on the manager at docker_host; there is no container {reference!r} "
                    "(set SwarmContainerManager.server_container)."
                ) from None
        return self._server_id

    def join(self, client: docker.DockerClient, network: str) -> None:
        """Attach the server's container to a workspace's network (idempotent)."""
        with self._join_lock:
            if network in self._joined:
                return
            me = client.api.inspect_container(self._server_container_id(client))
            if network not in (me.get("NetworkSettings", {}).get("Networks") or {}):
                for attempt in range(_JOIN_TRIES):
                    try:
                        client.api.connect_container_to_network(me["Id"], network)
                        break
                    except docker.errors.NotFound as err:
                        # A network made a moment ago may not be known to attachments yet.
                        if attempt == _JOIN_TRIES - 1:
                            raise ContainerMissing(f"Network {network} is gone.") from err
                        time.sleep(_POLL_SECONDS)
            self._joined.add(network)

    def leave(self, client: docker.DockerClient, network: str) -> None:
        """Detach the server's container from a workspace's network (absent is fine)."""
        with self._join_lock:
            self._joined.discard(network)
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.api.disconnect_container_from_network(
                    self._server_container_id(client), network, force=True
                )

    async def remove_workspace_network(self, name: str) -> None:
        """Leave and remove a workspace's network once its last task has let go of it."""
        network = self.network_of(name)
        await self.engine.run_with_client(self.leave, network)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _NETWORK_REMOVAL_SECONDS

        def remove(client: docker.DockerClient) -> str | None:
            """None once the network is gone, else why not yet."""
            try:
                client.api.remove_network(network)
            except docker.errors.NotFound:
                return None
            except docker.errors.APIError as err:
                return str(err.explanation or err)  # tasks still shutting down
            # A swarm network goes a moment after the call: asked again until it is not found.
            return "removal under way"

        while (failure := await self.engine.run_with_client(remove)) is not None:
            if loop.time() > deadline:
                # The orphan sweep at the next start-up tries again.
                self.log.warning("Network %s not removed: %s", network, failure)
                return
            await asyncio.sleep(_POLL_SECONDS)
        self._names.pop(name, None)
