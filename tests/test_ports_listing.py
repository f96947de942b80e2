"""The ports listing of a workspace with thousands of listening sockets: capped, and shared."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import docker

from .conftest import Api

FIRST_PORT = 20000
SOCKETS = 3000
# node opens SOCKETS listening sockets in one process, then drops a file to say they all listen.
LISTENERS = f"""
const net = require("net");
let up = 0;
for (let port = {FIRST_PORT}; port < {FIRST_PORT + SOCKETS}; port++) {{
  net.createServer().listen(port, "0.0.0.0", () => {{
    if (++up === {SOCKETS}) require("fs").writeFileSync("/tmp/all-listening", "");
  }});
}}
"""


def start_listeners(docker_client: docker.DockerClient, container_name: str) -> None:
    container = docker_client.containers.get(container_name)
    container.exec_run(["node", "-e", LISTENERS], detach=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if container.exec_run(["test", "-e", "/tmp/all-listening"]).exit_code == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"{SOCKETS} sockets did not all listen within 60 s")


async def many_sockets(api: Api, docker_client: docker.DockerClient) -> dict[str, Any]:
    workspace = await api.as_user("alice").create("many-sockets")
    await asyncio.to_thread(start_listeners, docker_client, workspace["container_name"])
    return workspace


async def ports_of(api: Api, workspace_id: str) -> dict[str, Any]:
    code, body = await api.as_user("alice").call("GET", f"{workspace_id}/ports")
    assert code == 200, body
    return body  # type: ignore[no-any-return]


async def test_thousands_of_listening_sockets_get_a_capped_listing_that_says_so(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    containers = service.containers
    containers.ports_cache_seconds = 0.0  # every read below sees the caps set just before it
    workspace = await many_sockets(api, docker_client)
    ours = range(FIRST_PORT, FIRST_PORT + SOCKETS)

    # The default caps: the lowest max_listed_ports of what was read, flagged.
    listed = await ports_of(api, workspace["id"])
    ports = [p["port"] for p in listed["ports"]]
    assert listed["truncated"] is True
    assert len(ports) == containers.max_listed_ports
    assert ports == sorted(ports)
    assert set(ports) <= set(ours)

    # Caps raised above what listens: every socket, and not truncated.
    containers.max_listed_ports = SOCKETS + 10
    containers.ports_read_bytes = 4 * 1024 * 1024
    listed = await ports_of(api, workspace["id"])
    assert [p["port"] for p in listed["ports"]] == list(ours)
    assert listed["truncated"] is False

    # The bytes read from /proc/net/tcp capped: fewer ports, flagged.
    containers.ports_read_bytes = 64 * 1024
    listed = await ports_of(api, workspace["id"])
    assert 0 < len(listed["ports"]) < SOCKETS // 2
    assert listed["truncated"] is True


def listing_execs(docker_client: docker.DockerClient, name: str, since: float) -> int:
    """How many ports listings Docker ran in the container since `since` (its event log)."""
    events = docker_client.events(
        since=since, until=time.time() + 1, filters={"container": name}, decode=True
    )
    return sum(
        1
        for event in events
        if event.get("Action", "").startswith("exec_create") and "/proc/net/tcp" in event["Action"]
    )


async def test_concurrent_listings_of_one_workspace_share_one_exec(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    # Long enough that no answer expires while the requests run, however loaded the machine.
    service.containers.ports_cache_seconds = 600.0
    workspace = await many_sockets(api, docker_client)
    since = time.time() - 1
    answers = await asyncio.gather(*(ports_of(api, workspace["id"]) for _ in range(12)))
    assert all(answer == answers[0] for answer in answers)
    name = workspace["container_name"]
    assert await asyncio.to_thread(listing_execs, docker_client, name, since) == 1
    assert answers[0]["truncated"] is True
