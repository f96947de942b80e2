"""What the Swarm backend reads from and writes into services and tasks: pure functions.

A workspace is a one-replica service whose task template is built here from the shared container
options (`backends.docker.options`): the same image, environment, limits and confinement as a
plain container, in the Swarm API's words.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import docker

from ...core.profiles import ContainerResources
from ...core.store import Workspace
from ..docker.labels import workspace_labels
from ..docker.options import (
    SECRETS_MOUNT,
    WORKSPACE_CAPABILITIES,
    WORKSPACE_HOME,
    ContainerOptions,
)

# Task states that end a task for good; "failed" and "rejected" carry Docker's error.
FAILED_TASK_STATES = frozenset({"failed", "rejected"})


def replicas(service: dict[str, Any]) -> int:
    return int(service["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 0))


def running_task(found: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The task among `found` that runs and is meant to (a one-replica service has one)."""
    for task in found:
        if task.get("DesiredState") == "running" and task["Status"]["State"] == "running":
            return task
    return None


def task_address(task: dict[str, Any], network: str) -> str | None:
    for attachment in task.get("NetworksAttachments") or []:
        if attachment.get("Network", {}).get("Spec", {}).get("Name") == network:
            addresses = attachment.get("Addresses") or []
            if addresses:
                return str(addresses[0]).split("/")[0]
    return None


def task_error(task: dict[str, Any]) -> str:
    status = task.get("Status") or {}
    return str(status.get("Err") or status.get("Message") or status.get("State") or "?")


def task_template(
    options: ContainerOptions,
    resources: ContainerResources,
    ws: Workspace,
    store_id: str,
    env: dict[str, str],
    *,
    labels: dict[str, str],
    node_id: str,
    network: str,
) -> dict[str, Any]:
    """The task of a workspace's service: its container, limits, log, placement and network."""
    assert ws.container_name
    limits: dict[str, int] = {}
    if resources.memory not in ("", "0"):
        limits["MemoryBytes"] = docker.utils.parse_bytes(resources.memory)
    if resources.cpus:
        limits["NanoCPUs"] = int(resources.cpus * 1e9)
    if resources.pids:
        limits["Pids"] = resources.pids
    log_options = options.log_options()
    log_driver = {"LogDriver": {"Name": "json-file", "Options": log_options}} if log_options else {}
    return {
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
                    "Target": options.workspace_dir,
                    # The volume is made on the node by its first task, with these labels.
                    "VolumeOptions": {"Labels": workspace_labels(ws, store_id)},
                },
                *tmpfs_mounts(options),
            ],
            # As ContainerOptions.confinement_options: read-only root, few capabilities.
            "ReadOnly": True,
            "CapabilityDrop": ["ALL"],
            "CapabilityAdd": WORKSPACE_CAPABILITIES,
            "StopGracePeriod": int(options.stop_timeout * 1e9),
        },
        "Resources": {"Limits": limits},
        **log_driver,
        "RestartPolicy": {"Condition": "any", "Delay": 1_000_000_000},
        "Placement": {"Constraints": [f"node.id=={node_id}"]},
        "Networks": [{"Target": network, "Aliases": [ws.container_name]}],
    }


def tmpfs_mounts(options: ContainerOptions) -> list[dict[str, Any]]:
    """Size-limited tmpfs on /tmp and the home folder (tmp_size, home_size), and one of
    root's for personal secrets (written by backends/swarm/secrets.py), as on one engine."""
    tmp, home = options.tmpfs_bytes()
    secrets = [
        {
            "Type": "tmpfs",
            "Target": SECRETS_MOUNT,
            "TmpfsOptions": {"SizeBytes": 16 * 1024 * 1024, "Mode": 0o700},
        }
    ]
    return [
        *(secrets if options.secrets_tmpfs else []),
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
