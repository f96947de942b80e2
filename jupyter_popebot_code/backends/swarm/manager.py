"""Workspaces as Docker Swarm services: the same interface as `ContainerManager`, on a swarm.

A workspace is one replicated service of one replica named like its container
(`code-workspace-{id}`), with the project's labels, image, environment and limits. Its volume is
node-local, so the service is pinned (`node.id==X`) to the node where the volume was made; the pin
is also kept in a swarm config object (`code-workspace-{id}.node`), which outlives the service, so
a recreated service goes back to its files and never starts elsewhere on an empty volume.

Mapping of the single-engine states (docs in README, "Docker Swarm"):

- replicas 0                               -> "exited" (stopped; start scales to 1)
- replicas 1 and a task running            -> "running" (address: the task's on the overlay)
- replicas 1, no task running, node usable -> "created" (start waits for the task to run)
- replicas 1, node down, drained or gone   -> NodeUnavailable (503, naming the node)
- no service                               -> None (ensure recreates it on the pinned node)

There is no pause on Swarm. Every Docker call goes through `DockerEngine._call` (a thread pool).

Networks: with `network_per_workspace` (set by `SwarmNetworkPolicy` when workspaces are kept
apart) each workspace has an attachable overlay of its own (`code-workspace-{id}-net`), which the
server's container joins before the first task starts and leaves when the workspace is deleted;
otherwise all share `network`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
from traitlets import Bool, Float, Int, Unicode

from ...core.capacity import HostResources
from ...core.profiles import ContainerResources, Profile
from ...core.store import Workspace
from ...errors import ContainerError, ContainerMissing, DockerUnavailable, NodeUnavailable
from ..docker.manager import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    STORE_LABEL,
    WORKSPACE_CAPABILITIES,
    WORKSPACE_HOME,
    WORKSPACE_LABEL,
    ContainerManager,
    workspace_labels,
)
from ..docker.states import ContainerState, parse_docker_time

NODE_LABEL = "org.jupyter.popebot-code.node"
PIN_SUFFIX = ".node"
NETWORK_SUFFIX = "-net"
_NETWORK_REMOVAL_SECONDS = 60.0
_JOIN_TRIES = 10
# Task states that end a task for good; "failed" and "rejected" carry Docker's error.
_FAILED_TASK_STATES = frozenset({"failed", "rejected"})
_POLL_SECONDS = 0.5


def _replicas(service: dict[str, Any]) -> int:
    return int(service["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 0))


def _task_address(task: dict[str, Any], network: str) -> str | None:
    for attachment in task.get("NetworksAttachments") or []:
        if attachment.get("Network", {}).get("Spec", {}).get("Name") == network:
            addresses = attachment.get("Addresses") or []
            if addresses:
                return str(addresses[0]).split("/")[0]
    return None


def _task_error(task: dict[str, Any]) -> str:
    status = task.get("Status") or {}
    return str(status.get("Err") or status.get("Message") or status.get("State") or "?")


class SwarmContainerManager(ContainerManager):
    """Runs each workspace as a one-replica Swarm service pinned to the node of its volume.

    Talks to a manager node's engine (docker_host). `image` must name the image as every node
    can pull it (the project's registry, see README); `network` is an attachable overlay network,
    created when missing; the server must be on it (connect_via 'name' or 'auto').
    """

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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Set by SwarmNetworkPolicy: an overlay per workspace, and a check that a node enforces
        # the firewall before a workspace runs there.
        self.network_per_workspace = False
        self.node_guard: Callable[[docker.DockerClient, str], None] | None = None
        self._joined: set[str] = set()
        self._join_lock = threading.Lock()
        self._server_id: str | None = None
        self._told_route = False

    def network_of(self, container_name: str) -> str:
        """The overlay network the workspace's task sits on."""
        if self.network_per_workspace:
            return container_name + NETWORK_SUFFIX
        return self.network

    # -- no event stream: container events are per engine, a swarm's tasks run elsewhere ------

    def watch(self, store_id: str) -> None:
        self.log.info("Swarm backend: workspace states are asked from the manager on each use")

    async def state(self, container_name: str) -> ContainerState | None:
        return await self._call(self._service_state, container_name, True)

    def _service_state(
        self, client: docker.DockerClient, name: str, strict: bool
    ) -> ContainerState | None:
        try:
            service = client.api.inspect_service(name)
        except docker.errors.NotFound:
            return None
        tasks = client.api.tasks(filters={"service": name})
        for task in tasks:
            if task.get("DesiredState") == "running" and task["Status"]["State"] == "running":
                return ContainerState(
                    "running",
                    _task_address(task, self.network_of(name)),
                    parse_docker_time(task["Status"].get("Timestamp")),
                )
        if _replicas(service) == 0:
            return ContainerState("exited", None)
        node_id = service["Spec"].get("Labels", {}).get(NODE_LABEL, "")
        if strict:
            self._check_node(client, node_id, name)
        return ContainerState("created", None)

    def _check_node(self, client: docker.DockerClient, node_id: str, name: str) -> None:
        """Raise NodeUnavailable when the workspace's node cannot run it now."""
        try:
            node = client.api.inspect_node(node_id)
        except docker.errors.NotFound:
            raise NodeUnavailable(
                f"Workspace {name} lives on swarm node {node_id}, which has left the swarm; its "
                "files are on that node. Rejoin it (same engine, same volumes) to use them."
            ) from None
        host = node.get("Description", {}).get("Hostname", node_id)
        ready = node.get("Status", {}).get("State")
        availability = node.get("Spec", {}).get("Availability")
        if ready != "ready" or availability != "active":
            why = (
                ready
                if ready != "ready"
                else {"drain": "drained", "pause": "paused"}.get(
                    str(availability), str(availability)
                )
            )
            raise NodeUnavailable(
                f"Workspace {name} lives on swarm node {host} ({node_id[:12]}), which is {why}. "
                "Its files are kept there; it works again once the node is back."
            )

    async def statuses(self, store_id: str, names: Any) -> dict[str, str]:
        wanted = set(names)

        def listed(client: docker.DockerClient) -> dict[str, str]:
            return {
                name: status
                for name, status in self._store_statuses(client, store_id).items()
                if name in wanted
            }

        return await self._call(listed)

    def _store_statuses(self, client: docker.DockerClient, store_id: str) -> dict[str, str]:
        services = client.api.services(filters={"label": f"{STORE_LABEL}={store_id}"})
        running = {
            task["ServiceID"]
            for task in client.api.tasks(filters={"desired-state": "running"})
            if task["Status"]["State"] == "running"
        }
        found = {}
        for service in services:
            name = service["Spec"]["Name"]
            if service["ID"] in running:
                found[name] = "running"
            else:
                found[name] = "exited" if _replicas(service) == 0 else "created"
        return found

    async def running_names(self, store_id: str) -> list[str]:
        found = await self._call(self._store_statuses, store_id)
        return [name for name, status in found.items() if status == "running"]

    async def holding_names(self, store_id: str) -> list[str]:
        return await self.running_names(store_id)  # no pause on Swarm

    async def host_resources(self) -> HostResources:
        """The summed CPUs and memory of the nodes that may run workspaces now."""

        def ask(client: docker.DockerClient) -> HostResources:
            nodes = self.usable_nodes(client)
            resources = [node["Description"]["Resources"] for node in nodes]
            return HostResources(
                sum(r.get("NanoCPUs", 0) for r in resources) / 1e9,
                sum(r.get("MemoryBytes", 0) for r in resources),
                f"{len(nodes)} usable swarm node(s)",
            )

        return await self._call(ask)

    async def workspace_ids(self, store_id: str) -> dict[str, str]:
        def listed(client: docker.DockerClient) -> dict[str, str]:
            label = f"{STORE_LABEL}={store_id}"
            found = {}
            # A workspace's own network is made before its service: a crash in between leaves
            # the network alone, which the orphan sweep then removes through `remove`.
            for net in client.api.networks(filters={"label": label}):
                if net["Name"].endswith(NETWORK_SUFFIX):
                    workspace_id = (net.get("Labels") or {}).get(WORKSPACE_LABEL, "")
                    found[net["Name"].removesuffix(NETWORK_SUFFIX)] = workspace_id
            for service in client.api.services(filters={"label": label}):
                labels = service["Spec"].get("Labels", {})
                found[service["Spec"]["Name"]] = labels.get(WORKSPACE_LABEL, "")
            return found

        return await self._call(listed)

    async def tmux_activity(self, container_name: str) -> float | None:
        # `docker exec` reaches only the manager's own engine: idle stop counts relay traffic.
        return None

    async def connect_host(self, container_name: str, state: ContainerState) -> str:
        """The service name, resolved on the workspace's overlay, which the server has joined."""
        if not self.network_per_workspace:
            return await super().connect_host(container_name, state)
        # Joined again when the server's container was replaced while the workspace ran.
        await self._call(self._join, self.network_of(container_name))
        if not self._told_route:
            self._told_route = True
            self.log.info(
                "Relay reaches workspace containers by name, over each workspace's own overlay"
            )
        return container_name

    # -- the workspaces' own overlay networks ----------------------------------------------------

    def _ensure_workspace_network(
        self, client: docker.DockerClient, name: str, labels: dict[str, str]
    ) -> None:
        """The network the workspace's task joins exists, and the server is on it.

        The server joins before the task starts: a manager that joins an overlay while a task on
        it starts elsewhere may miss the task's name and address until the next gossip sync
        (about 30 s), and the relay would find nothing. It then stays until the workspace is
        deleted, so starts never race that way.
        """
        if not self.network_per_workspace:
            self._ensure_network(client)
            return
        network = self.network_of(name)
        with self._network_lock:
            if self._find(client, network) is None:
                client.api.create_network(
                    network,
                    driver="overlay",
                    attachable=True,
                    internal=self.internal_networks,
                    labels=labels,
                    check_duplicate=True,
                )
        self._join(client, network)

    def _server_container_id(self, client: docker.DockerClient) -> str:
        if self._server_id is None:
            reference = self.server_container or socket.gethostname()
            try:
                self._server_id = str(client.api.inspect_container(reference)["Id"])
            except docker.errors.NotFound:
                raise ContainerError(
                    "With one overlay network per workspace this server must run in a container "
                    f"on the manager at docker_host; there is no container {reference!r} "
                    "(set SwarmContainerManager.server_container)."
                ) from None
        return self._server_id

    def _join(self, client: docker.DockerClient, network: str) -> None:
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

    def _leave(self, client: docker.DockerClient, network: str) -> None:
        """Detach the server's container from a workspace's network (absent is fine)."""
        with self._join_lock:
            self._joined.discard(network)
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.api.disconnect_container_from_network(
                    self._server_container_id(client), network, force=True
                )

    async def _remove_workspace_network(self, name: str) -> None:
        """Leave and remove a workspace's network once its last task has let go of it."""
        network = self.network_of(name)
        await self._call(self._leave, network)
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

        while (failure := await self._call(remove)) is not None:
            if loop.time() > deadline:
                # The orphan sweep at the next start-up tries again.
                self.log.warning("Network %s not removed: %s", network, failure)
                return
            await asyncio.sleep(_POLL_SECONDS)

    # -- changes -----------------------------------------------------------------------------

    async def _change(self, container_name: str, action: Any) -> None:
        await self._call(action)

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
        node_id = self._pinned_node(client, ws.volume_name) or self._choose_node(client, store_id)
        if self.node_guard is not None:
            self.node_guard(client, node_id)
        self._ensure_workspace_network(client, ws.container_name, workspace_labels(ws, store_id))
        self._pin(client, ws.volume_name, node_id, store_id)
        labels = {**workspace_labels(ws, store_id), NODE_LABEL: node_id}
        limits: dict[str, int] = {}
        if resources.memory not in ("", "0"):
            limits["MemoryBytes"] = docker.utils.parse_bytes(resources.memory)
        if resources.cpus:
            limits["NanoCPUs"] = int(resources.cpus * 1e9)
        if resources.pids:
            limits["Pids"] = resources.pids
        task_template = {
            "ContainerSpec": {
                "Image": resources.image,
                "Labels": labels,
                "Hostname": f"workspace-{ws.id}"[:63],
                "Env": [f"{key}={value}" for key, value in env.items()],
                "Init": True,
                "Mounts": [
                    {
                        "Type": "volume",
                        "Source": ws.volume_name,
                        "Target": self.workspace_dir,
                        # The volume is made on the node by its first task, with these labels.
                        "VolumeOptions": {"Labels": workspace_labels(ws, store_id)},
                    },
                    *self._tmpfs_mounts(),
                ],
                # As ContainerManager.confinement_options: read-only root, few capabilities.
                "ReadOnly": True,
                "CapabilityDrop": ["ALL"],
                "CapabilityAdd": WORKSPACE_CAPABILITIES,
                "StopGracePeriod": int(self.stop_timeout * 1e9),
            },
            "Resources": {"Limits": limits},
            **self._log_driver(),
            "RestartPolicy": {"Condition": "any", "Delay": 1_000_000_000},
            "Placement": {"Constraints": [f"node.id=={node_id}"]},
            "Networks": [
                {"Target": self.network_of(ws.container_name), "Aliases": [ws.container_name]}
            ],
        }
        client.api.create_service(
            task_template,
            name=ws.container_name,
            labels=labels,
            mode={"Replicated": {"Replicas": 1}},
            # The name resolves to the task's own address (no virtual IP in between).
            endpoint_spec={"Mode": "dnsrr"},
        )

    def _tmpfs_mounts(self) -> list[dict[str, Any]]:
        """Size-limited tmpfs on /tmp and the home folder (tmp_size, home_size)."""
        tmp, home = self.tmpfs_bytes()
        return [
            {
                "Type": "tmpfs",
                "Target": "/tmp",  # noqa: S108 (inside the container)
                "TmpfsOptions": {"SizeBytes": tmp, "Mode": 0o1777},
            },
            {
                "Type": "tmpfs",
                "Target": WORKSPACE_HOME,
                "TmpfsOptions": {"SizeBytes": home, "Mode": 0o755},
            },
        ]

    def _log_driver(self) -> dict[str, Any]:
        """The task's log rotation (log_max_size x log_max_files), as for a plain container."""
        if self.log_max_size in ("", "0"):
            return {}
        options = {"max-size": self.log_max_size, "max-file": str(self.log_max_files)}
        return {"LogDriver": {"Name": "json-file", "Options": options}}

    async def prepare_start(self, workspace: Workspace) -> None:
        """No disk images on a Swarm (the volume lives on its node)."""

    async def unmount_volume(self, volume_name: str) -> None:
        """No disk images on a Swarm (the volume lives on its node)."""

    async def create(
        self,
        workspace: Workspace,
        store_id: str,
        env: dict[str, str],
        profile: Profile | None = None,
    ) -> None:
        await super().create(workspace, store_id, env, profile)
        await self._wait_running(workspace.container_name or "", set())

    def _pinned_node(self, client: docker.DockerClient, volume: str) -> str | None:
        try:
            config = client.api.inspect_config(volume + PIN_SUFFIX)
        except docker.errors.NotFound:
            return None
        return str(config["Spec"]["Labels"][NODE_LABEL])

    def _pin(self, client: docker.DockerClient, volume: str, node_id: str, store_id: str) -> None:
        if self._pinned_node(client, volume) == node_id:
            return
        client.api.create_config(
            volume + PIN_SUFFIX,
            node_id.encode(),
            labels={MANAGED_BY_LABEL: MANAGED_BY, STORE_LABEL: store_id, NODE_LABEL: node_id},
        )

    def usable_nodes(self, client: docker.DockerClient) -> list[dict[str, Any]]:
        """The workspace nodes (workspace_node_label) that are ready and active now."""
        filters = (
            {"node.label": [f"{self.workspace_node_label}=true"]}
            if self.workspace_node_label
            else None
        )
        return [
            node
            for node in client.api.nodes(filters=filters)
            if node["Status"]["State"] == "ready" and node["Spec"]["Availability"] == "active"
        ]

    def _choose_node(self, client: docker.DockerClient, store_id: str) -> str:
        """The usable workspace node with the fewest of this store's workspaces."""
        nodes = self.usable_nodes(client)
        if not nodes:
            raise DockerUnavailable(
                "No swarm node can take a new workspace: none is ready and active"
                + (
                    f" with label {self.workspace_node_label}=true."
                    if self.workspace_node_label
                    else "."
                )
            )
        services = client.api.services(filters={"label": f"{STORE_LABEL}={store_id}"})
        load: dict[str, int] = {}
        for service in services:
            node_id = service["Spec"].get("Labels", {}).get(NODE_LABEL, "")
            load[node_id] = load.get(node_id, 0) + 1
        chosen = min(nodes, key=lambda n: (load.get(n["ID"], 0), n["Description"]["Hostname"]))
        return str(chosen["ID"])

    def _scale(self, client: docker.DockerClient, name: str, replicas: int) -> None:
        service = client.api.inspect_service(name)
        if _replicas(service) == replicas:
            return
        client.api.update_service(
            service["ID"],
            service["Version"]["Index"],
            mode={"Replicated": {"Replicas": replicas}},
            fetch_current_spec=True,
        )

    def _task_ids(self, client: docker.DockerClient, name: str) -> set[str]:
        return {task["ID"] for task in client.api.tasks(filters={"service": name})}

    async def start(self, container_name: str) -> None:
        """Scale to one replica and wait until its task runs (or give Docker's error)."""

        def scale_up(client: docker.DockerClient) -> set[str]:
            try:
                service = client.api.inspect_service(container_name)
            except docker.errors.NotFound as err:
                raise ContainerMissing(f"Service {container_name} is gone.") from err
            labels = service["Spec"].get("Labels", {})
            node_id = labels.get(NODE_LABEL, "")
            self._check_node(client, node_id, container_name)
            if self.node_guard is not None:
                self.node_guard(client, node_id)
            self._ensure_workspace_network(client, container_name, _network_labels(labels))
            before = self._task_ids(client, container_name)
            self._scale(client, container_name, 1)
            return before

        before = await self._call(scale_up)
        await self._wait_running(container_name, before)

    async def _wait_running(self, name: str, before: set[str]) -> None:
        """Poll until a task runs; tasks in `before` were there already and do not count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout

        def look(client: docker.DockerClient) -> tuple[bool, list[dict[str, Any]]]:
            state = self._service_state(client, name, True)
            if state is None:
                raise ContainerMissing(f"Service {name} is gone.")
            tasks = client.api.tasks(filters={"service": name})
            failed = [
                t
                for t in tasks
                if t["ID"] not in before and t["Status"]["State"] in _FAILED_TASK_STATES
            ]
            return state.status == "running", failed

        while True:
            running, failed = await self._call(look)
            if running:
                return
            if len(failed) >= max(self.max_failed_tasks, 1) or loop.time() > deadline:
                latest = max(failed, key=lambda t: t.get("UpdatedAt", ""), default=None)
                reason = (
                    _task_error(latest) if latest else f"not running after {self.start_timeout:g} s"
                )
                # A task that keeps failing must not churn on its node: back to stopped.
                await self._call(self._scale, name, 0)
                raise ContainerError(f"Workspace {name} does not start on its node: {reason}")
            await asyncio.sleep(_POLL_SECONDS)

    async def unpause(self, container_name: str) -> None:
        raise ContainerError("Swarm services are never paused.")

    async def stop(self, container_name: str) -> None:
        """Scale to 0 and wait (bounded) until no task of it runs; files stay on the node."""
        await self._call(self._scale, container_name, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout + 30.0

        def still_running(client: docker.DockerClient) -> bool:
            tasks = client.api.tasks(filters={"service": container_name})
            return any(t["Status"]["State"] in ("running", "starting", "preparing") for t in tasks)

        while loop.time() < deadline:
            if not await self._call(still_running):
                return
            await asyncio.sleep(_POLL_SECONDS)
        self.log.warning("%s still has a running task after the stop", container_name)

    async def remove(self, container_name: str, recreating: bool = False) -> None:
        def remove(client: docker.DockerClient) -> None:
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_service(container_name)

        await self._call(remove)
        if self.network_per_workspace and not recreating:
            await self._remove_workspace_network(container_name)

    async def remove_volume(self, volume_name: str) -> None:
        """Remove the volume on its node with a one-off job there, then forget the pin."""
        node_id = await self._call(self._pinned_node, volume_name)
        if node_id is None:
            return
        await self._call(self._check_node, node_id, volume_name)
        job = f"{volume_name}-rm-{int(time.time())}"
        script = (
            "for i in $(seq 60); do "
            "code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket /var/run/docker.sock "
            f"-X DELETE http://localhost/volumes/{volume_name}?force=1); "
            'case "$code" in 204|404) exit 0;; esac; sleep 1; done; '
            'echo "volume removal answered $code" >&2; exit 1'
        )

        task_template = {
            "ContainerSpec": {
                "Image": self.volume_removal_image or self.image,
                "User": "root",
                "Command": ["sh", "-c", script],
                "Mounts": [
                    {
                        "Type": "bind",
                        "Source": "/var/run/docker.sock",
                        "Target": "/var/run/docker.sock",
                    }
                ],
            },
            "RestartPolicy": {"Condition": "none"},
            "Placement": {"Constraints": [f"node.id=={node_id}"]},
        }
        failure = await self.run_job(
            job,
            task_template,
            {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
            completions=1,
            timeout=120,
        )
        if failure is not None:
            raise ContainerError(f"Could not remove volume {volume_name} on its node: {failure}")
        await self._call(lambda client: client.api.remove_config(volume_name + PIN_SUFFIX))

    async def run_job(
        self,
        name: str,
        task_template: dict[str, Any],
        mode: dict[str, Any],
        *,
        completions: int,
        timeout: float,
    ) -> str | None:
        """Run a one-off job service until `completions` tasks completed, then remove it.

        None on success, else Docker's error of a failed task (or the timeout). A global job's
        tasks appear node by node: the count to wait for is the caller's (its nodes).
        """

        def outcome(client: docker.DockerClient) -> str | None:
            tasks = client.api.tasks(filters={"service": name})
            failed = [t for t in tasks if t["Status"]["State"] in _FAILED_TASK_STATES]
            if failed:
                return _task_error(failed[0])
            done = sum(t["Status"]["State"] == "complete" for t in tasks)
            return "complete" if done >= completions else None

        await self._call(
            lambda client: client.api.create_service(
                task_template, name=name, labels={MANAGED_BY_LABEL: MANAGED_BY}, mode=mode
            )
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            result = await self._call(outcome)
            while result is None and loop.time() < deadline:
                await asyncio.sleep(_POLL_SECONDS)
                result = await self._call(outcome)
        finally:
            await self._call(lambda client: client.api.remove_service(name))
        if result is None:
            return f"not finished within {timeout:g} s"
        return None if result == "complete" else result

    # -- the overlay network -------------------------------------------------------------------

    def _ensure_network(self, client: docker.DockerClient) -> None:
        # The shared attachable overlay (without network_per_workspace), which the server's
        # container joins; workspaces on it can reach each other (README, "Docker Swarm").
        with self._network_lock:
            attrs = self._find(client, self.network)
            if attrs is None:
                client.networks.create(
                    self.network,
                    driver="overlay",
                    attachable=True,
                    labels={MANAGED_BY_LABEL: MANAGED_BY},
                    check_duplicate=True,
                )
                attrs = self._find(client, self.network)
            if attrs is None or attrs.get("Driver") != "overlay":
                raise ContainerError(
                    f"Network {self.network!r} must be an attachable overlay network on Swarm."
                )

    def _find(self, client: docker.DockerClient, name: str) -> dict[str, Any] | None:
        for net in client.api.networks(names=[name]):
            if net["Name"] == name:
                return dict(net)
        return None


def _network_labels(service_labels: dict[str, str]) -> dict[str, str]:
    """A workspace network's labels, from its service's (the node is the service's own)."""
    return {k: v for k, v in service_labels.items() if k != NODE_LABEL}
