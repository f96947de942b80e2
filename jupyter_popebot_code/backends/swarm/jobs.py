"""One-off Swarm jobs: a service that runs to completion on chosen nodes, then goes.

The Swarm backend removes a deleted workspace's volume with one on the volume's node (the
manager's engine cannot reach another node's volumes); the Swarm network policy removes its
node firewall with one on every workspace node.
"""

from __future__ import annotations

import asyncio
from typing import Any

import docker

from ..docker.engine import DockerEngine
from ..docker.labels import MANAGED_BY, MANAGED_BY_LABEL
from .tasks import FAILED_TASK_STATES, task_error

_POLL_SECONDS = 0.5


async def run_job(
    engine: DockerEngine,
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
        failed = [t for t in tasks if t["Status"]["State"] in FAILED_TASK_STATES]
        if failed:
            return task_error(failed[0])
        done = sum(t["Status"]["State"] == "complete" for t in tasks)
        return "complete" if done >= completions else None

    await engine.run_with_client(
        lambda client: client.api.create_service(
            task_template, name=name, labels={MANAGED_BY_LABEL: MANAGED_BY}, mode=mode
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        result = await engine.run_with_client(outcome)
        while result is None and loop.time() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
            result = await engine.run_with_client(outcome)
    finally:
        await engine.run_with_client(lambda client: client.api.remove_service(name))
    if result is None:
        return f"not finished within {timeout:g} s"
    return None if result == "complete" else result


def volume_removal(image: str, volume_name: str, node_id: str) -> dict[str, Any]:
    """The task of a job that removes a volume on its node through the node's Docker socket."""
    script = (
        "for i in $(seq 60); do "
        "code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket /var/run/docker.sock "
        f"-X DELETE http://localhost/volumes/{volume_name}?force=1); "
        'case "$code" in 204|404) exit 0;; esac; sleep 1; done; '
        'echo "volume removal answered $code" >&2; exit 1'
    )
    return {
        "ContainerSpec": {
            "Image": image,
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
