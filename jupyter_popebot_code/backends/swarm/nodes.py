"""Which swarm node a workspace lives on: the pin that outlives its service, and node checks.

A workspace's volume is node-local, so its service is pinned to the node where the volume was
made; the pin is also kept in a swarm config object (`code-workspace-{id}.node`), which outlives
the service, so a recreated service goes back to its files. Everything here runs on the Docker
thread pool.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

from ...core.capacity import HostResources
from ..base import DockerUnavailable, NodeUnavailable
from ..docker.labels import MANAGED_BY, MANAGED_BY_LABEL, STORE_LABEL

NODE_LABEL = "org.jupyter.popebot-code.node"
PIN_SUFFIX = ".node"


def pinned_node(client: docker.DockerClient, volume: str) -> str | None:
    """The node that holds this volume, or None before its first task."""
    try:
        config = client.api.inspect_config(volume + PIN_SUFFIX)
    except docker.errors.NotFound:
        return None
    return str(config["Spec"]["Labels"][NODE_LABEL])


def pin(client: docker.DockerClient, volume: str, node_id: str, store_id: str) -> None:
    """Remember the volume's node (once)."""
    if pinned_node(client, volume) == node_id:
        return
    client.api.create_config(
        volume + PIN_SUFFIX,
        node_id.encode(),
        labels={MANAGED_BY_LABEL: MANAGED_BY, STORE_LABEL: store_id, NODE_LABEL: node_id},
    )


def forget_pin(client: docker.DockerClient, volume: str) -> None:
    client.api.remove_config(volume + PIN_SUFFIX)


def usable_nodes(client: docker.DockerClient, node_label: str) -> list[dict[str, Any]]:
    """The workspace nodes (labelled `node_label`=true, or all) that are ready and active now."""
    filters = {"node.label": [f"{node_label}=true"]} if node_label else None
    return [
        node
        for node in client.api.nodes(filters=filters)
        if node["Status"]["State"] == "ready" and node["Spec"]["Availability"] == "active"
    ]


def resources(client: docker.DockerClient, node_label: str) -> HostResources:
    """The summed CPUs and memory of the usable workspace nodes (for the server-wide cap)."""
    usable = usable_nodes(client, node_label)
    found = [node["Description"]["Resources"] for node in usable]
    return HostResources(
        sum(r.get("NanoCPUs", 0) for r in found) / 1e9,
        sum(r.get("MemoryBytes", 0) for r in found),
        f"{len(usable)} usable swarm node(s)",
    )


def choose_node(client: docker.DockerClient, store_id: str, node_label: str) -> str:
    """The usable workspace node with the fewest of this store's workspaces."""
    nodes = usable_nodes(client, node_label)
    if not nodes:
        raise DockerUnavailable(
            "No swarm node can take a new workspace: none is ready and active"
            + (f" with label {node_label}=true." if node_label else ".")
        )
    services = client.api.services(filters={"label": f"{STORE_LABEL}={store_id}"})
    load: dict[str, int] = {}
    for service in services:
        node_id = service["Spec"].get("Labels", {}).get(NODE_LABEL, "")
        load[node_id] = load.get(node_id, 0) + 1
    chosen = min(nodes, key=lambda n: (load.get(n["ID"], 0), n["Description"]["Hostname"]))
    return str(chosen["ID"])


def check_node(client: docker.DockerClient, node_id: str, name: str) -> None:
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
            else {"drain": "drained", "pause": "paused"}.get(str(availability), str(availability))
        )
        raise NodeUnavailable(
            f"Workspace {name} lives on swarm node {host} ({node_id[:12]}), which is {why}. "
            "Its files are kept there; it works again once the node is back."
        )
