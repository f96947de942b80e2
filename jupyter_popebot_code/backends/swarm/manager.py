"""The Swarm backend: workspaces as Docker Swarm services (`backends.base.WorkspaceBackend`).

A workspace is one replicated service of one replica named like its container
(`code-workspace-{id}`), with the project's labels, image, environment and limits. Its volume is
node-local, so the service is pinned (`node.id==X`) to the node where the volume was made; the pin
is also kept in a swarm config object (`code-workspace-{id}.node`), which outlives the service, so
a recreated service goes back to its files and never starts elsewhere on an empty volume.

Mapping of the single-engine states (docs/deployment/swarm.md):

- replicas 0                               -> "exited" (stopped; start scales to 1)
- replicas 1 and a task running            -> "running" (address: the task's on the overlay)
- replicas 1, no task running, node usable -> "created" (start waits for the task to run)
- replicas 1, node down, drained or gone   -> NodeUnavailable (503, naming the node)
- no service                               -> None (ensure recreates it on the pinned node)

There is no pause on Swarm. Every Docker call goes through `DockerEngine._call` (a thread pool).
Beside it: the service's task (`tasks`), reading and scaling services (`services`), the node
pin (`nodes`), the overlay networks (`overlays`) and one-off jobs (`jobs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import docker
import docker.errors
from traitlets import Bool, Float, Int, Unicode

from ...core.capacity import HostResources
from ...core.profiles import ContainerResources, Profile
from ...core.store import Workspace
from ..base import (
    ContainerError,
    ContainerMissing,
    ContainerState,
    PortListing,
    WorkspaceBackend,
)
from ..docker import execs
from ..docker.engine import DockerEngine
from ..docker.labels import workspace_labels
from ..docker.options import ContainerOptions
from . import jobs, nodes, services, tasks
from . import secrets as payloads
from .nodes import NODE_LABEL, PIN_SUFFIX
from .overlays import NETWORK_SUFFIX, OverlayNetworks, network_labels
from .polls import poll_delays
from .spares import SpareOverlays, submitter

__all__ = ["NETWORK_SUFFIX", "NODE_LABEL", "PIN_SUFFIX", "SwarmContainerManager"]

_POLL_SECONDS = 0.5


class SwarmContainerManager(ContainerOptions, DockerEngine, WorkspaceBackend):
    """Runs each workspace as a one-replica Swarm service pinned to the node of its volume.

    Talks to a manager node's engine (docker_host). `image` must name the image as every node
    can pull it (the project's registry, see README); `network` is an attachable overlay network,
    created when missing; the server must be on it (connect_via 'name' or 'auto'). It reads the
    `ContainerManager` options too (section_names).
    """

    network_policy_class: ClassVar[str] = (
        "jupyter_popebot_code.network.swarm_policy.SwarmNetworkPolicy"
    )
    # Each node would need its own disk images: disk_limit stays unset on a multi-user swarm.
    multi_user_disk_limit: ClassVar[str] = ""

    workspace_node_label = Unicode(
        "org.jupyter.popebot-code.workspaces",
        help=(
            "Node label that marks the swarm nodes which may run workspaces (value 'true', set "
            "with `docker node update --label-add LABEL=true NODE`). New workspaces go to the "
            "ready, active node of those with the fewest workspaces. '': every ready, active node."
        ),
    ).tag(config=True)

    start_timeout = Float(
        300.0,
        help=(
            "Seconds a start (or create) waits for the workspace's task to run, image pull on "
            "the node included."
        ),
    ).tag(config=True)

    max_failed_tasks = Int(
        2,
        help=(
            "Failed or rejected tasks during one start after which the start gives up with "
            "Docker's error (the service is scaled back to 0, its files stay)."
        ),
    ).tag(config=True)

    volume_removal_image = Unicode(
        "",
        help=(
            "Image of the one-off job that removes a deleted workspace's volume on its node (it "
            "calls the node's Docker socket with curl). '': the workspace image."
        ),
    ).tag(config=True)

    server_container = Unicode(
        "",
        help=(
            "Name or id of the container this server runs in (on a manager node, on the engine "
            "of docker_host). With one overlay network per workspace it joins the network of "
            "each workspace (until it is deleted) to reach its ttyd. '': the container named "
            "by this host's name, which is Docker's default hostname of a container."
        ),
    ).tag(config=True)

    internal_networks = Bool(
        False,
        help=(
            "Make each workspace's own overlay network internal: the workspace then reaches "
            "nothing but the server (no git host, no package registry). Only with one network "
            "per workspace (NetworkPolicy.isolate_workspaces)."
        ),
    ).tag(config=True)

    spare_networks = Int(
        2,
        help=(
            "With one overlay network per workspace: how many spare overlays the server makes "
            "and joins ahead of time, so a new workspace takes one instead of waiting about a "
            "second for its own. Each is handed to one workspace for good (never shared, removed "
            "with it) and refilled in the background; unused ones stay for the next run. 0: "
            "make each workspace's network when it is created."
        ),
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Set by SwarmNetworkPolicy: an overlay per workspace, and a check that a node enforces
        # the firewall before a workspace runs there.
        self.network_per_workspace = False
        self.node_guard: Callable[[docker.DockerClient, str], None] | None = None
        # Set by NetworkPolicy.__init__, which SwarmNetworkPolicy extends; unused on a swarm.
        self.network_options: dict[str, str] = {}
        self.network_hook: Any = None
        self._overlays = OverlayNetworks(self, self, self.log)
        self._spares = SpareOverlays(
            self._overlays,
            submitter(self._executor, self._guarded),
            lambda: max(self.spare_networks, 0),
            self.log,
        )
        self._overlays.claim_spare = self._spares.claim
        self._reach = execs.ConnectVia(self, self)
        self._queries = execs.ContainerQueries(self, self)
        self._told_route = False

    @classmethod
    def section_names(cls) -> list[str]:
        """The `ContainerManager` options apply here too, under this class's own."""
        names = super().section_names()
        return [*names[:-1], "ContainerManager", names[-1]]

    def network_of(self, container_name: str) -> str:
        """The overlay network the workspace's task sits on."""
        return self._overlays.network_of(container_name)

    def enable_secret_files(self) -> bool:
        self.secrets_tmpfs = True
        return True

    async def install_secret_files(self, container_name: str, payload: bytes) -> None:
        """Through a one-off job on the task's node (backends/swarm/secrets.py)."""
        await payloads.install(self, container_name, payload)

    # -- no event stream: container events are per engine, a swarm's tasks run elsewhere ------

    def watch(self, store_id: str) -> None:
        self.log.info("Swarm backend: workspace states are asked from the manager on each use")
        self._spares.start(store_id)

    def known_running(self, container_name: str) -> ContainerState | None:
        return None  # no event stream: every caller asks `state`

    async def state(self, container_name: str) -> ContainerState | None:
        return await self._call(
            services.service_state, container_name, self.network_of(container_name), True
        )

    async def statuses(self, store_id: str, names: Iterable[str]) -> dict[str, str]:
        wanted = set(names)
        found = await self._call(services.store_statuses, store_id)
        return {name: status for name, status in found.items() if name in wanted}

    async def running_names(self, store_id: str) -> list[str]:
        found = await self._call(services.store_statuses, store_id)
        return [name for name, status in found.items() if status == "running"]

    async def holding_names(self, store_id: str) -> list[str]:
        return await self.running_names(store_id)  # no pause on Swarm

    async def host_resources(self) -> HostResources:
        """The summed CPUs and memory of the nodes that may run workspaces now."""
        return await self._call(nodes.resources, self.workspace_node_label)

    async def workspace_ids(self, store_id: str) -> dict[str, str]:
        return await self._call(services.store_workspace_ids, store_id)

    async def terminal_activity(self, container_name: str) -> float | None:
        # `docker exec` reaches only the manager's own engine: idle stop counts relay traffic.
        return None

    async def listening_ports(self, container_name: str) -> PortListing:
        """As on one engine: `docker exec` through the manager (tasks it runs itself)."""
        return await self._queries.listening_ports(container_name)

    async def connect_host(self, container_name: str, state: ContainerState) -> str:
        """The task's address on the workspace's overlay, which the server has joined.

        Its address, not its service name: a name the manager's DNS does not know yet (a task
        that has just started) is passed on to the upstream resolver, and where that does not
        answer (an air-gapped swarm) one lookup takes its whole timeout (20 s) before the relay
        can try again. The name stays the fallback for a task whose address is not listed.
        """
        if not self.network_per_workspace:
            return await self._reach.host(container_name, state)
        # Joined again when the server's container was replaced while the workspace ran.
        await self._call(self._overlays.join_workspace, container_name)
        if not self._told_route:
            self._told_route = True
            self.log.info(
                "Relay reaches workspace containers by address, over each workspace's own overlay"
            )
        return state.ip_address or container_name

    # -- the nodes and networks a workspace needs (kept as methods: tests stub them) -----------

    def usable_nodes(self, client: docker.DockerClient) -> list[dict[str, Any]]:
        """The workspace nodes (workspace_node_label) that are ready and active now."""
        return nodes.usable_nodes(client, self.workspace_node_label)

    def _pinned_node(self, client: docker.DockerClient, volume: str) -> str | None:
        return nodes.pinned_node(client, volume)

    def _pin(self, client: docker.DockerClient, volume: str, node_id: str, store_id: str) -> None:
        nodes.pin(client, volume, node_id, store_id)

    def _ensure_workspace_network(
        self, client: docker.DockerClient, name: str, labels: dict[str, str]
    ) -> None:
        self._overlays.ensure(client, name, labels)

    def _ensure_network(self, client: docker.DockerClient) -> None:
        self._overlays.ensure_shared(client)

    # -- changes -----------------------------------------------------------------------------

    async def create(
        self,
        workspace: Workspace,
        store_id: str,
        env: dict[str, str],
        profile: Profile | None = None,
    ) -> None:
        environment = await self.environment(workspace, env, workspace.ttyd_credential)
        resources = ContainerResources.of(profile, self)
        await self._call(self._create_sync, workspace, store_id, environment, resources)
        await self._wait_running(workspace.container_name or "", set())

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
        if self.disk_size(ws.user_id, resources.disk):
            raise ContainerError(
                "ContainerManager.disk_limit is not supported on Swarm: each node needs its own "
                "disk images. Set it to '' (and owner_disk_limit empty) for a Swarm."
            )
        node_id = self._pinned_node(client, ws.volume_name) or nodes.choose_node(
            client, store_id, self.workspace_node_label
        )
        if self.node_guard is not None:
            self.node_guard(client, node_id)
        self._ensure_workspace_network(client, ws.container_name, workspace_labels(ws, store_id))
        self._pin(client, ws.volume_name, node_id, store_id)
        labels = {
            **workspace_labels(ws, store_id),
            NODE_LABEL: node_id,
            **self._overlays.service_labels(ws.container_name),
        }
        template = tasks.task_template(
            self,
            resources,
            ws,
            store_id,
            env,
            labels=labels,
            node_id=node_id,
            network=self.network_of(ws.container_name),
        )
        client.api.create_service(
            template,
            name=ws.container_name,
            labels=labels,
            mode={"Replicated": {"Replicas": 1}},
            # The name resolves to the task's own address (no virtual IP in between).
            endpoint_spec={"Mode": "dnsrr"},
        )

    async def prepare_start(self, workspace: Workspace) -> None:
        """No disk images on a Swarm (the volume lives on its node)."""

    async def unmount_volume(self, volume_name: str) -> None:
        """No disk images on a Swarm (the volume lives on its node)."""

    async def release_volume(self, volume_name: str) -> None:
        """After a delete: keep the volume on its node (keep_volume_on_delete) or remove it."""
        if not self.keep_volume_on_delete:
            await self.remove_volume(volume_name)

    async def start(self, container_name: str) -> None:
        """Scale to one replica and wait until its task runs (or give Docker's error)."""

        def scale_up(client: docker.DockerClient) -> set[str]:
            try:
                service = client.api.inspect_service(container_name)
            except docker.errors.NotFound as err:
                raise ContainerMissing(f"Service {container_name} is gone.") from err
            labels = service["Spec"].get("Labels", {})
            node_id = labels.get(NODE_LABEL, "")
            nodes.check_node(client, node_id, container_name)
            if self.node_guard is not None:
                self.node_guard(client, node_id)
            self._ensure_workspace_network(client, container_name, network_labels(labels))
            before = services.task_ids(client, container_name)
            services.scale(client, container_name, 1)
            return before

        before = await self._call(scale_up)
        await self._wait_running(container_name, before)

    async def _wait_running(self, name: str, before: set[str]) -> None:
        """Poll until a task runs; tasks in `before` were there already and do not count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        network = self.network_of(name)
        delays = poll_delays()
        while True:
            running, failed = await self._call(services.start_progress, name, network, before)
            if running:
                return
            if len(failed) >= max(self.max_failed_tasks, 1) or loop.time() > deadline:
                latest = max(failed, key=lambda t: t.get("UpdatedAt", ""), default=None)
                reason = (
                    tasks.task_error(latest)
                    if latest
                    else f"not running after {self.start_timeout:g} s"
                )
                # A task that keeps failing must not churn on its node: back to stopped.
                await self._call(services.scale, name, 0)
                raise ContainerError(f"Workspace {name} does not start on its node: {reason}")
            await asyncio.sleep(next(delays))

    async def unpause(self, container_name: str) -> None:
        raise ContainerError("Swarm services are never paused.")

    async def wait_while_restarting(self, container_name: str) -> ContainerState | None:
        return await self.state(container_name)  # a service never reports "restarting"

    async def stop(self, container_name: str) -> None:
        """Scale to 0 and wait (bounded) until no task of it runs; files stay on the node."""
        await self._call(services.scale, container_name, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout + 30.0
        while loop.time() < deadline:
            if not await self._call(services.any_task_running, container_name):
                return
            await asyncio.sleep(_POLL_SECONDS)
        self.log.warning("%s still has a running task after the stop", container_name)

    async def remove(self, container_name: str, recreating: bool = False) -> None:
        def remove(client: docker.DockerClient) -> None:
            self._overlays.resolve(client, container_name)  # known after the service is gone
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_service(container_name)

        await self._call(remove)
        await self._call(payloads.remove_payload_secrets, container_name)
        if self.network_per_workspace and not recreating:
            await self._overlays.remove_workspace_network(container_name)

    async def remove_volume(self, volume_name: str) -> None:
        """Remove the volume on its node with a one-off job there, then forget the pin."""
        node_id = await self._call(self._pinned_node, volume_name)
        if node_id is None:
            return
        await self._call(nodes.check_node, node_id, volume_name)
        failure = await self.run_job(
            f"{volume_name}-rm-{int(time.time())}",
            jobs.volume_removal(self.volume_removal_image or self.image, volume_name, node_id),
            {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
            completions=1,
            timeout=120,
        )
        if failure is not None:
            raise ContainerError(f"Could not remove volume {volume_name} on its node: {failure}")
        await self._call(nodes.forget_pin, volume_name)

    async def run_job(
        self,
        name: str,
        task_template: dict[str, Any],
        mode: dict[str, Any],
        *,
        completions: int,
        timeout: float,
    ) -> str | None:
        """Run a one-off job service to completion (jobs.run_job); None on success."""
        return await jobs.run_job(
            self, name, task_template, mode, completions=completions, timeout=timeout
        )
