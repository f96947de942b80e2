"""Reading and scaling a store's workspace services on the manager: the Docker-thread half.

The Swarm backend's async methods call these through `DockerEngine._call`. Mapping of the
single-engine states: replicas 0 -> "exited"; a task running -> "running"; replicas 1, none
running, node usable -> "created"; node down, drained or gone -> NodeUnavailable.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

from ..base import ContainerMissing, ContainerState
from ..docker.labels import STORE_LABEL, WORKSPACE_LABEL
from ..docker.states import parse_docker_time
from . import nodes
from .nodes import NODE_LABEL
from .overlays import NETWORK_LABEL, NETWORK_SUFFIX
from .tasks import FAILED_TASK_STATES, replicas, running_task, task_address


def service_state(
    client: docker.DockerClient, name: str, network: str, strict: bool
) -> ContainerState | None:
    """The service's state as a container's; `strict` raises NodeUnavailable for its node."""
    try:
        service = client.api.inspect_service(name)
    except docker.errors.NotFound:
        return None
    # A workspace on a spare overlay names it in its labels.
    network = service["Spec"].get("Labels", {}).get(NETWORK_LABEL) or network
    task = running_task(client.api.tasks(filters={"service": name}))
    if task is not None:
        return ContainerState(
            "running",
            task_address(task, network),
            parse_docker_time(task["Status"].get("Timestamp")),
        )
    if replicas(service) == 0:
        return ContainerState("exited", None)
    node_id = service["Spec"].get("Labels", {}).get(NODE_LABEL, "")
    if strict:
        nodes.check_node(client, node_id, name)
    return ContainerState("created", None)


def store_statuses(client: docker.DockerClient, store_id: str) -> dict[str, str]:
    """Service name -> status of every workspace of one store, in two calls."""
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
            found[name] = "exited" if replicas(service) == 0 else "created"
    return found


def store_workspace_ids(client: docker.DockerClient, store_id: str) -> dict[str, str]:
    """Service (or lone network) name -> workspace id of everything of one store."""
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


def scale(client: docker.DockerClient, name: str, count: int) -> None:
    service = client.api.inspect_service(name)
    if replicas(service) == count:
        return
    client.api.update_service(
        service["ID"],
        service["Version"]["Index"],
        mode={"Replicated": {"Replicas": count}},
        fetch_current_spec=True,
    )


def task_ids(client: docker.DockerClient, name: str) -> set[str]:
    return {task["ID"] for task in client.api.tasks(filters={"service": name})}


def start_progress(
    client: docker.DockerClient, name: str, network: str, before: set[str]
) -> tuple[bool, list[dict[str, Any]]]:
    """Whether a task runs, and the tasks that failed since the start (not those in `before`)."""
    state = service_state(client, name, network, True)
    if state is None:
        raise ContainerMissing(f"Service {name} is gone.")
    found = client.api.tasks(filters={"service": name})
    failed = [
        t for t in found if t["ID"] not in before and t["Status"]["State"] in FAILED_TASK_STATES
    ]
    return state.status == "running", failed


def any_task_running(client: docker.DockerClient, name: str) -> bool:
    found = client.api.tasks(filters={"service": name})
    return any(t["Status"]["State"] in ("running", "starting", "preparing") for t in found)
