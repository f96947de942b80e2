"""Workspaces on a real Docker Swarm, deployed as the docs tell an operator to.

scripts/swarm-cluster.sh makes the swarm (a Docker-in-Docker manager and two workers of this run's
own, reused between runs) and the project's registry, which serves the workspace, node firewall and
server images to the nodes and takes pushes only with its credentials. scripts/swarm-server.sh
runs the server image on the manager, with the manager's socket, its port published and its store
on a volume (tests/swarm_cluster.py). The server joins the overlay network of each running
workspace and reaches its ttyd by service name there; ttyd is published on no host interface.
Network probes run inside the workspace tasks on their worker engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from jupyter_popebot_code.backends.docker.manager import MANAGED_BY_LABEL, STORE_LABEL
from jupyter_popebot_code.backends.swarm.manager import (
    NETWORK_SUFFIX,
    NODE_LABEL,
    PIN_SUFFIX,
    SwarmContainerManager,
)
from jupyter_popebot_code.backends.swarm.spares import SPARE_LABEL
from jupyter_popebot_code.core.store import Workspace
from jupyter_popebot_code.errors import ContainerError
from jupyter_popebot_code.network.swarm_policy import FIREWALL_SERVICE, NODE_VIEW

from .conftest import TEST_NETWORK
from .network_probes import BLOCKED, LISTENER, PORT, PROBE, probe_answer
from .swarm_cluster import (
    CLUSTER_SCRIPT,
    PREFIX,
    SERVER_NAME,
    STORE_VOLUME,
    WORKER_PREFIX,
    DeployedServer,
    on_worker,
    remove_everything,
    run_script,
    server_container,
    server_image,
    worker_volumes,
    workers,
)

pytestmark = [pytest.mark.swarm, pytest.mark.timeout(1200)]

OVERLAY = f"{TEST_NETWORK}-swarm"


@pytest.fixture(scope="module")
def swarm(docker_client: docker.DockerClient, workspace_image: str) -> Iterator[dict[str, str]]:
    """The swarm and its registry (made or reused); the engines go at the end of the module.

    At the end no workspace volume may be left on any worker (the clean-ups of the tests and of
    the server's store ran before).
    """
    env = {
        "SWARM_PREFIX": PREFIX,
        "WORKSPACE_IMAGE": workspace_image,
        "SERVER_IMAGE": server_image(docker_client),
    }
    try:
        run_script(CLUSTER_SCRIPT, "up", env=env)
        settings = dict(
            line.split("=", 1) for line in run_script(CLUSTER_SCRIPT, "env", env=env).split()
        )
        manager = docker.DockerClient(base_url=settings["SWARM_MANAGER_HOST"], timeout=120)
        # Whatever an earlier, interrupted run left: its server, store and workspaces.
        DeployedServer(settings, []).down()
        with contextlib.suppress(docker.errors.NotFound):
            manager.volumes.get(STORE_VOLUME).remove(force=True)
        remove_everything(manager, docker_client, MANAGED_BY_LABEL)
        _ensure_overlay(manager)
        yield settings
        remove_everything(manager, docker_client, MANAGED_BY_LABEL)
        for network in manager.networks.list(names=[OVERLAY]):
            if network.name == OVERLAY:
                network.remove()
        manager.close()
        left = worker_volumes(docker_client)
        assert not left, f"workspace volumes left on the workers: {left}"
    finally:
        # SWARM_KEEP=1 keeps the engines for the next run (iterating on one test).
        if os.environ.get("SWARM_KEEP") != "1":
            run_script(CLUSTER_SCRIPT, "down", env=env, timeout=300)


@pytest.fixture(scope="module")
def manager(swarm: dict[str, str]) -> Iterator[docker.DockerClient]:
    """The swarm manager's engine (its socket, as swarm-cluster.sh hands it out)."""
    client = docker.DockerClient(base_url=swarm["SWARM_MANAGER_HOST"], timeout=120)
    yield client
    client.close()


def _ensure_overlay(client: docker.DockerClient) -> None:
    """An internal attachable overlay, for the test that drives SwarmContainerManager alone."""
    found = [n for n in client.networks.list(names=[OVERLAY]) if n.name == OVERLAY]
    if found and found[0].attrs.get("Internal") and found[0].attrs["Driver"] == "overlay":
        return
    for network in found:
        network.remove()
    client.networks.create(
        OVERLAY,
        driver="overlay",
        internal=True,
        attachable=True,
        labels={MANAGED_BY_LABEL: "tests"},
    )


@pytest.fixture(scope="module")
def server(swarm: dict[str, str], manager: docker.DockerClient) -> Iterator[DeployedServer]:
    """The server as scripts/swarm-server.sh deploys it; at the end it and its store go."""
    server = DeployedServer(
        swarm,
        [
            "--SwarmContainerManager.stop_timeout=2",
            "--CodeWorkspacesApp.max_running_workspaces_per_user=0",
            # The module's workspaces add up across its tests; the cap is tested on one engine.
            "--CodeWorkspacesApp.max_running_workspaces=0",
        ],
    )
    server.up()
    yield server
    # Its workspaces (services, pins, networks, worker volumes) go with the swarm fixture's sweep.
    server.down()
    manager.volumes.get(STORE_VOLUME).remove(force=True)


def node_of(client: docker.DockerClient, workspace_id: str) -> tuple[str, str]:
    """(node id, hostname) the workspace's service is pinned to."""
    service = client.api.inspect_service(f"code-workspace-{workspace_id}")
    node_id = service["Spec"]["Labels"][NODE_LABEL]
    assert service["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == [f"node.id=={node_id}"]
    return node_id, client.api.inspect_node(node_id)["Description"]["Hostname"]


def set_availability(manager: docker.DockerClient, node_id: str, availability: str) -> None:
    node = manager.api.inspect_node(node_id)
    spec = {**node["Spec"], "Availability": availability}
    manager.api.update_node(node_id, node["Version"]["Index"], spec)


def create(server: DeployedServer, name: str) -> str:
    created = server.request("POST", "api/code/workspaces", json={"name": name})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def ensure(server: DeployedServer, workspace_id: str) -> Any:
    return server.request("POST", f"api/code/workspaces/{workspace_id}/ensure")


def in_terminal(server: DeployedServer, workspace_id: str, line: str, expect: str) -> str:
    """Type one line in the workspace's terminal (through the relay) and read until `expect`."""
    url = f"ws://{server.host}:{server.port}/api/ws/code/{workspace_id}?token={server.token}"
    with connect(url, subprotocols=["tty"], open_timeout=60, close_timeout=10) as terminal:
        terminal.send(json.dumps({"AuthToken": "", "columns": 200, "rows": 24}).encode())
        terminal.send(b"0" + line.encode() + b"\r")
        seen = ""
        deadline = time.monotonic() + 60
        while expect not in seen:
            frame = terminal.recv(timeout=max(0.1, deadline - time.monotonic()))
            assert isinstance(frame, bytes)
            if frame[:1] == b"0":
                seen += frame[1:].decode(errors="replace")
        return seen


def read_until_closed(terminal: Any) -> None:
    for _ in range(1000):
        terminal.recv(timeout=60)


def handshake_and_read_until_closed(terminal: Any) -> None:
    # The relay may close before the handshake is sent (it knows at once that the node is down):
    # the send fails with that same close then.
    terminal.send(json.dumps({"AuthToken": "", "columns": 80, "rows": 24}).encode())
    read_until_closed(terminal)


def terminal_close_reason(server: DeployedServer, workspace_id: str) -> str:
    """The reason the relay gives when it closes a terminal it cannot serve."""
    url = f"ws://{server.host}:{server.port}/api/ws/code/{workspace_id}?token={server.token}"
    with (
        connect(url, subprotocols=["tty"], open_timeout=60, close_timeout=10) as terminal,
        pytest.raises(ConnectionClosed) as closed,
    ):
        handshake_and_read_until_closed(terminal)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.reason


def until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.5)


def server_networks(client: docker.DockerClient) -> list[str]:
    """The networks the server's container is attached to now."""
    return list(server_container(client).attrs["NetworkSettings"]["Networks"])


def workspace_network(client: docker.DockerClient, workspace_id: str) -> str:
    """The name of the one network the workspace's service is on."""
    service = client.api.inspect_service(f"code-workspace-{workspace_id}")
    [attachment] = service["Spec"]["TaskTemplate"]["Networks"]
    return str(client.api.inspect_network(attachment["Target"])["Name"])


def task_address(client: docker.DockerClient, workspace_id: str) -> str:
    """The running task's address on its overlay."""
    name = f"code-workspace-{workspace_id}"
    network = workspace_network(client, workspace_id)
    for task in client.api.tasks(filters={"service": name, "desired-state": "running"}):
        for attachment in task.get("NetworksAttachments") or []:
            if attachment["Network"]["Spec"]["Name"] == network:
                return str(attachment["Addresses"][0]).split("/")[0]
    raise AssertionError(f"{name} has no running task with an address")


def task_container(host: str, workspace_id: str) -> str:
    """The id of the workspace task's container on its worker engine."""
    found = on_worker(
        host, "ps", "-q", "--filter",
        f"label=com.docker.swarm.service.name=code-workspace-{workspace_id}",
    ).stdout.split()  # fmt: skip
    assert len(found) == 1, found
    return found[0]


def probe_from(host: str, container: str, address: str, port: int = PORT) -> str:
    """Connect from inside a task (as its user): 'open <greeting>', 'error N' or 'timeout'."""

    def run(command: list[str]) -> str:
        done = on_worker(host, "exec", "-u", "coder", container, *command)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    return probe_answer(run, address, port, "tcp")


def start_listener(host: str, container: str) -> None:
    done = on_worker(host, "exec", "-d", "-u", "coder", container, "python3", "-c", LISTENER)
    assert done.returncode == 0, done.stderr


GATEWAY = """
import socket, struct
for line in open("/proc/net/route").read().splitlines()[1:]:
    fields = line.split()
    if fields[1] == "00000000":
        print(socket.inet_ntoa(struct.pack("<L", int(fields[2], 16))))
"""


def gateway_of(host: str, container: str) -> str:
    """The task's default gateway: its node's docker_gwbridge address, i.e. the node itself."""
    done = on_worker(host, "exec", container, "python3", "-c", GATEWAY)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


def test_workspaces_spread_over_workers_and_their_terminals_work(
    server: DeployedServer, manager: docker.DockerClient
) -> None:
    ids = [create(server, f"spread {n}") for n in range(3)]
    hosts = {node_of(manager, workspace_id)[1] for workspace_id in ids}
    assert len(hosts) >= 2, hosts
    assert all(host.startswith(WORKER_PREFIX) for host in hosts), hosts

    # A terminal on a worker: echoes, and a reconnection finds the same terminal session.
    workspace_id = ids[0]
    in_terminal(server, workspace_id, "export POPEBOT_MARK=kept-$((6*7)); echo set$((1+2))", "set3")
    assert "kept-42" in in_terminal(server, workspace_id, "echo mark=$POPEBOT_MARK", "mark=kept-42")
    log = server.log()
    assert "Relay reaches workspace containers by address, over each workspace's own overlay" in log
    task = manager.api.tasks(
        filters={"service": f"code-workspace-{workspace_id}", "desired-state": "running"}
    )[0]
    address = next(
        str(attachment["Addresses"][0]).split("/")[0]
        for attachment in task["NetworksAttachments"]
        if attachment["Network"]["Spec"]["Name"] != "ingress"
    )
    assert f"connected to ttyd at {address}:7681" in log

    # ttyd is published on no host: the service has no ports, its only address is the overlay's.
    service = manager.api.inspect_service(f"code-workspace-{workspace_id}")
    assert not service["Endpoint"].get("Ports")
    assert service["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
    # Each on an overlay of its own, which the server has joined.
    networks = {workspace_network(manager, one) for one in ids}
    assert len(networks) == 3, networks
    assert networks <= set(server_networks(manager))

    listed = server.request("GET", "api/code/workspaces").json()["workspaces"]
    assert {ws["id"]: ws["container"]["status"] for ws in listed} == dict.fromkeys(ids, "running")


def test_stop_and_start_keep_files(server: DeployedServer, manager: docker.DockerClient) -> None:
    workspace_id = create(server, "stop start")
    in_terminal(server, workspace_id, "echo kept > ~/workspace/f && echo w$((1+1))", "w2")
    network = workspace_network(manager, workspace_id)
    stopped = server.request("POST", f"api/code/workspaces/{workspace_id}/stop")
    assert stopped.status_code == 200, stopped.text
    described = server.request("GET", f"api/code/workspaces/{workspace_id}").json()
    assert described["container"]["status"] == "exited"
    # The network and the server on it stay: a start never waits for the network's gossip.
    assert network in server_networks(manager)
    assert manager.api.inspect_network(network)["Driver"] == "overlay"
    started = ensure(server, workspace_id)
    assert started.json()["status"] == "started", started.text
    assert network in server_networks(manager)
    assert "file=kept" in in_terminal(
        server, workspace_id, "echo file=$(cat ~/workspace/f)", "file=kept"
    )


def test_a_removed_service_comes_back_on_its_node_with_its_files(
    server: DeployedServer, manager: docker.DockerClient
) -> None:
    workspace_id = create(server, "recreated")
    node_id, _ = node_of(manager, workspace_id)
    in_terminal(server, workspace_id, "echo pinned > ~/workspace/p && echo p$((5+5))", "p10")
    manager.api.remove_service(f"code-workspace-{workspace_id}")  # behind the server's back
    recreated = ensure(server, workspace_id)
    assert recreated.json()["status"] == "created", recreated.text
    # The pin (a swarm config object) outlived the service: same node, same volume.
    assert node_of(manager, workspace_id)[0] == node_id
    assert "p=pinned" in in_terminal(
        server, workspace_id, "echo p=$(cat ~/workspace/p)", "p=pinned"
    )


def test_a_drained_node_answers_503_naming_it_and_its_workspaces_come_back(
    server: DeployedServer, manager: docker.DockerClient
) -> None:
    ids = [create(server, f"drain {n}") for n in range(2)]
    nodes = {workspace_id: node_of(manager, workspace_id) for workspace_id in ids}
    assert len(set(nodes.values())) == 2, nodes  # the least-loaded worker gets each new one
    drained_id, other_id = ids
    node_id, host = nodes[drained_id]
    in_terminal(server, drained_id, "echo safe > ~/workspace/g && echo g$((2+2))", "g4")

    set_availability(manager, node_id, "drain")
    try:
        # A list: a requests.Response with an error status is falsy.
        [answer] = until(
            lambda: (r := ensure(server, drained_id)).status_code == 503 and [r], 60, "503"
        )
        assert host in answer.json()["message"], answer.text
        assert "drained" in answer.json()["message"]
        # The terminal closes naming the node too (the close reason is cut at 123 bytes).
        assert host in terminal_close_reason(server, drained_id)
        # Its record stays; the other node's workspace keeps working.
        assert server.request("GET", "api/code/workspaces").status_code == 200
        assert ensure(server, other_id).json()["status"] == "running"
        assert "o=7" in in_terminal(server, other_id, "echo o=$((3+4))", "o=7")
    finally:
        set_availability(manager, node_id, "active")

    back = until(lambda: ensure(server, drained_id).status_code == 200, 120, "back")
    assert back
    assert node_of(manager, drained_id)[0] == node_id
    assert "g=safe" in in_terminal(server, drained_id, "echo g=$(cat ~/workspace/g)", "g=safe")


def test_a_stopped_worker_answers_503_and_its_workspace_comes_back_with_its_files(
    server: DeployedServer, manager: docker.DockerClient, docker_client: docker.DockerClient
) -> None:
    ids = [create(server, f"down {n}") for n in range(2)]
    nodes = {workspace_id: node_of(manager, workspace_id) for workspace_id in ids}
    assert len(set(nodes.values())) == 2, nodes
    lost_id, other_id = ids
    node_id, host = nodes[lost_id]
    in_terminal(server, lost_id, "echo lasting > ~/workspace/h && echo h$((4+4))", "h8")

    worker = docker_client.containers.get(host)
    worker.stop(timeout=10)  # the whole engine goes: the manager marks the node down
    try:
        [answer] = until(
            lambda: (r := ensure(server, lost_id)).status_code == 503 and [r], 90, "503"
        )
        assert host in answer.json()["message"], answer.text
        assert "down" in answer.json()["message"]
        assert ensure(server, other_id).json()["status"] == "running"
        assert "p=9" in in_terminal(server, other_id, "echo p=$((4+5))", "p=9")
    finally:
        worker.start()

    until(lambda: ensure(server, lost_id).status_code == 200, 180, "back")
    assert node_of(manager, lost_id)[0] == node_id
    assert "h=lasting" in in_terminal(server, lost_id, "echo h=$(cat ~/workspace/h)", "h=lasting")


def test_delete_removes_the_service_and_the_volume_on_its_node(
    server: DeployedServer, manager: docker.DockerClient
) -> None:
    workspace_id = create(server, "delete")
    name = f"code-workspace-{workspace_id}"
    _, host = node_of(manager, workspace_id)
    assert on_worker(host, "volume", "inspect", name).returncode == 0
    network = workspace_network(manager, workspace_id)
    deleted = server.request("DELETE", f"api/code/workspaces/{workspace_id}")
    assert deleted.status_code == 204, deleted.text
    with pytest.raises(docker.errors.NotFound):
        manager.api.inspect_service(name)
    with pytest.raises(docker.errors.NotFound):
        manager.api.inspect_config(name + PIN_SUFFIX)
    assert on_worker(host, "volume", "inspect", name).returncode != 0
    assert server.request("GET", f"api/code/workspaces/{workspace_id}").status_code == 404
    # Its network goes too, and the server left it first.
    assert network not in server_networks(manager)
    with pytest.raises(docker.errors.NotFound):
        manager.api.inspect_network(network)


def free_spares(client: docker.DockerClient) -> set[str]:
    """The spare overlays no workspace's service is on."""
    spares = {n["Name"] for n in client.api.networks(filters={"label": f"{SPARE_LABEL}=true"})}
    used = {
        client.api.inspect_network(attachment["Target"])["Name"]
        for service in client.api.services(filters={"label": MANAGED_BY_LABEL})
        for attachment in service["Spec"]["TaskTemplate"].get("Networks") or []
    }
    return spares - used


def test_new_workspaces_take_prepared_overlays_each_its_own_and_delete_removes_it(
    server: DeployedServer, manager: docker.DockerClient
) -> None:
    ready = until(lambda: free_spares(manager) if len(free_spares(manager)) >= 2 else None,
                  120, "two spare overlays")  # fmt: skip
    # Made and joined by the server before any workspace needs one.
    assert ready <= set(server_networks(manager))
    first, second = create(server, "spare 1"), create(server, "spare 2")
    networks = {one: workspace_network(manager, one) for one in (first, second)}
    # Each took a spare of its own, which is no longer free for another workspace.
    assert len(set(networks.values())) == 2, networks
    assert set(networks.values()) <= ready
    assert not set(networks.values()) & free_spares(manager)
    for one, network in networks.items():
        attachments = manager.api.inspect_service(f"code-workspace-{one}")["Spec"]["TaskTemplate"]
        assert [a["Target"] for a in attachments["Networks"]] == [
            manager.api.inspect_network(network)["Id"]
        ]
        # The relay reaches it over that network, and a restart goes back to it.
        in_terminal(server, one, "echo s$((2+3))", "s5")
    stopped = server.request("POST", f"api/code/workspaces/{first}/stop")
    assert stopped.status_code == 200, stopped.text
    assert ensure(server, first).json()["status"] == "started"
    assert workspace_network(manager, first) == networks[first]
    in_terminal(server, first, "echo again$((2+3))", "again5")
    # The pool is refilled with new networks, never with the two in use.
    refilled = until(lambda: free_spares(manager) if len(free_spares(manager)) >= 2 else None,
                     120, "the pool refilled")  # fmt: skip
    assert not refilled & set(networks.values())
    # Delete: the workspace's spare goes with it, the server left it first.
    deleted = server.request("DELETE", f"api/code/workspaces/{first}")
    assert deleted.status_code == 204, deleted.text
    assert networks[first] not in server_networks(manager)
    with pytest.raises(docker.errors.NotFound):
        manager.api.inspect_network(networks[first])
    assert networks[first] not in free_spares(manager)


def test_a_task_that_keeps_failing_is_reported_with_dockers_error(
    swarm: dict[str, str], manager: docker.DockerClient, docker_client: docker.DockerClient
) -> None:
    registry = swarm["SWARM_REGISTRY_IMAGE"].split("/", 1)[0]
    backend = SwarmContainerManager(
        docker_host=swarm["SWARM_MANAGER_HOST"],
        image=f"{registry}/no-such-image:latest",
        network=OVERLAY,
        start_timeout=120,
    )
    store_id = f"swarm-fail-{uuid.uuid4().hex[:8]}"
    workspace = Workspace.new("alice", "fails", "", "")
    try:
        with pytest.raises(ContainerError) as failed:
            asyncio.run(backend.create(workspace, store_id, {}))
        assert "does not start on its node" in str(failed.value)
        assert "no-such-image" in str(failed.value) or "No such image" in str(failed.value)
        service = manager.api.inspect_service(workspace.container_name)
        assert service["Spec"]["Mode"]["Replicated"]["Replicas"] == 0  # no churn left behind
    finally:
        backend.close()
        remove_everything(manager, docker_client, f"{STORE_LABEL}={store_id}")


def test_internal_networks_have_no_way_out_and_an_orphaned_network_is_swept(
    swarm: dict[str, str],
    server: DeployedServer,
    manager: docker.DockerClient,
    docker_client: docker.DockerClient,
) -> None:
    """The backend on its own: a workspace on an internal overlay, then its network orphaned."""
    backend = SwarmContainerManager(
        docker_host=swarm["SWARM_MANAGER_HOST"],
        image=swarm["SWARM_REGISTRY_IMAGE"],
        server_container=SERVER_NAME,
        internal_networks=True,
        start_timeout=120,
    )
    backend.network_per_workspace = True
    store_id = f"swarm-internal-{uuid.uuid4().hex[:8]}"
    workspace = Workspace.new("alice", "internal", "", "")
    name = workspace.container_name or ""
    try:
        asyncio.run(backend.create(workspace, store_id, {}))
        assert manager.api.inspect_network(name + NETWORK_SUFFIX)["Internal"] is True
        host = node_of(manager, workspace.id)[1]
        done = on_worker(host, "exec", task_container(host, workspace.id), "python3", "-c", GATEWAY)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == ""  # no default route: nothing beyond the overlay
        assert name + NETWORK_SUFFIX in server_networks(manager)

        # A crash between the network and the service (here: the service removed) leaves the
        # network alone; the start-up sweep finds it by its labels and removes it.
        manager.api.remove_service(name)
        assert asyncio.run(backend.workspace_ids(store_id)) == {name: workspace.id}
        asyncio.run(backend.remove(name))
        with pytest.raises(docker.errors.NotFound):
            manager.api.inspect_network(name + NETWORK_SUFFIX)
        assert name + NETWORK_SUFFIX not in server_networks(manager)
    finally:
        backend.close()
        remove_everything(manager, docker_client, f"{STORE_LABEL}={store_id}")


def test_the_cluster_script_is_reentrant(
    swarm: dict[str, str], docker_client: docker.DockerClient, workspace_image: str
) -> None:
    env = {
        "SWARM_PREFIX": PREFIX,
        "WORKSPACE_IMAGE": workspace_image,
        "SERVER_IMAGE": server_image(docker_client),
    }
    started = time.monotonic()
    run_script(CLUSTER_SCRIPT, "up", env=env)
    assert time.monotonic() - started < 60  # everything reused: no build, no push, no join


def test_workspaces_reach_neither_each_other_nor_the_nodes_nor_the_registry(
    server: DeployedServer, manager: docker.DockerClient, swarm: dict[str, str]
) -> None:
    """Apart (an overlay each), away from every node and the registry (the node firewall)."""
    ids = [create(server, f"fenced {n}") for n in range(3)]
    hosts = {workspace_id: node_of(manager, workspace_id)[1] for workspace_id in ids}
    # Three over two workers: one pair shares a node, and some pair does not.
    by_node: dict[str, list[str]] = {}
    for workspace_id, host in hosts.items():
        by_node.setdefault(host, []).append(workspace_id)
    [(host, [prober, neighbour])] = [(h, w) for h, w in by_node.items() if len(w) == 2]
    [stranger] = [w for w in ids if hosts[w] != host]
    container = task_container(host, prober)
    addresses = {workspace_id: task_address(manager, workspace_id) for workspace_id in ids}
    for workspace_id in ids:
        start_listener(hosts[workspace_id], task_container(hosts[workspace_id], workspace_id))

    # Every listener is up: the server (on each overlay) and the workspace itself reach it.
    for workspace_id in ids:
        checked = server_container(manager).exec_run(
            ["python3", "-c", PROBE, addresses[workspace_id], str(PORT), "tcp"]
        )
        assert checked.output.decode().split() == ["open", "hello"], (workspace_id, checked.output)
    until(
        lambda: probe_from(host, container, addresses[prober]) == "open hello", 30, "own listener"
    )

    # Apart: neither a neighbour on the same node nor one on another node, by address or name.
    # What the docs say a workspace sees: a neighbour's address times out (the packet leaves the
    # node by its default route, nothing answers), its name does not resolve (EAI_NONAME or
    # EAI_NODATA, as the node's resolver answers).
    for other in (neighbour, stranger):
        assert probe_from(host, container, addresses[other]) == "timeout", other
        unresolved = probe_from(host, container, f"code-workspace-{other}")
        assert unresolved in (f"error {socket.EAI_NONAME}", f"error {socket.EAI_NODATA}"), other

    # Away from the hosts: its own node (the gateway), the manager, the other worker, link-local.
    nodes = manager.api.nodes()
    manager_address = next(
        n["ManagerStatus"]["Addr"].rpartition(":")[0] for n in nodes if n.get("ManagerStatus")
    )
    other_worker = next(
        n["Status"]["Addr"] for n in nodes
        if n["Description"]["Hostname"].startswith(WORKER_PREFIX)
        and n["Description"]["Hostname"] != host
    )  # fmt: skip
    gossip = 7946  # every swarm node listens there
    assert probe_from(host, container, gateway_of(host, container), gossip) == BLOCKED
    assert probe_from(host, container, manager_address, 2377) == BLOCKED
    assert probe_from(host, container, other_worker, gossip) == BLOCKED
    # No packet leaves the worker either way: its network has no route out.
    assert probe_from(host, container, "169.254.77.1") == BLOCKED
    # Nor the registry the nodes pull from (a host of its own here, not a node): no workspace
    # reads an image there or pushes one.
    registry = swarm["SWARM_REGISTRY_ADDRESS"]
    for registry_port in (5000, 5002):  # pulls, pushes
        assert probe_from(host, container, registry, registry_port) == BLOCKED
    # The worker itself reaches it (its pulls): the rule is the workspaces' only.
    assert registry_answer(host, "GET", f"{registry}:5000", "/v2/") == "200"

    # Nor the server itself: Jupyter listens only on the server's front network.
    networks = server_container(manager).attrs["NetworkSettings"]["Networks"]
    server_there = networks[workspace_network(manager, prober)]["IPAddress"]
    answer = probe_from(host, container, server_there, server.port)
    assert answer == f"error {errno.ECONNREFUSED}", answer

    # The rules on the node are the server's: link-local and every node's address rejected.
    forward = node_rules(host, NODE_VIEW.forward_chain)
    assert "-d 169.254.0.0/16" in forward
    assert f"-d {manager_address}/32" in forward
    assert f"-d {registry}/32 -i docker_gwbridge -j REJECT" in forward
    assert f"-d {other_worker}/32" in forward
    assert "-j REJECT" in node_rules(host, NODE_VIEW.input_chain)


def node_rules(host: str, chain: str) -> str:
    """A chain of the worker engine's own firewall (its container is its host)."""
    done = subprocess.run(
        ["docker", "exec", host, "iptables", "-w", "-S", chain],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_upgrade_keeps_the_store_and_reaches_the_workspaces_that_kept_running(
    server: DeployedServer, manager: docker.DockerClient
) -> None:
    """swarm-server.sh up again (the upgrade path) replaces the container while a workspace runs."""
    workspace_id = create(server, "outlives its server")
    in_terminal(server, workspace_id, "export KEPT=k$((2*3)); echo set$((1+1))", "set2")
    network = workspace_network(manager, workspace_id)
    old_container, token = server_container(manager).id, server.token

    def joined_pool() -> set[str] | None:
        # The pool as it stands: two spares, both joined. The network of a workspace deleted just
        # before also carries the spare label until it is removed (the server has left it by
        # then); counted as a spare, the new server could rightly take it in a pool spare's place.
        free = free_spares(manager)
        return free if len(free) == 2 and free <= set(server_networks(manager)) else None

    spares = until(joined_pool, 120, "two spare overlays, joined")
    server.up()
    # A new container, with the old one's place on every workspace's overlay gone with it ...
    assert server_container(manager).id != old_container
    assert network not in server_networks(manager)
    # ... and the same store (records and token) from the volume.
    assert server.token == token
    listed = server.request("GET", "api/code/workspaces")
    assert workspace_id in {ws["id"] for ws in listed.json()["workspaces"]}, listed.text
    # The new container joins the overlay on the first terminal and finds the same session:
    # the workspace ran on, untouched.
    assert "kept=k6" in in_terminal(server, workspace_id, "echo kept=$KEPT", "kept=k6")
    assert network in server_networks(manager)
    # The spares of the old container are taken over (joined again), not left behind.
    until(lambda: spares <= set(server_networks(manager)), 60, "the spares joined again")
    assert free_spares(manager) == spares


def registry_answer(worker: str, method: str, where: str, path: str) -> str:
    """The HTTP status the registry gives a request from a worker (no credentials)."""
    done = subprocess.run(
        ["docker", "exec", worker, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
         "-X", method, f"http://{where}{path}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.stdout


def test_the_registry_serves_pulls_and_refuses_pushes_and_deletes_without_credentials(
    swarm: dict[str, str], server: DeployedServer, docker_client: docker.DockerClient
) -> None:
    """A node pulls from the registry without credentials, and can change nothing there."""
    worker = workers(docker_client)[0]
    workspace_ref = swarm["SWARM_REGISTRY_IMAGE"]
    assert on_worker(worker, "pull", "-q", workspace_ref).returncode == 0
    # Overwriting the workspace image every future workspace starts from: refused (the port the
    # nodes use is read-only).
    pushed = on_worker(worker, "push", workspace_ref)
    assert pushed.returncode != 0, pushed
    assert "403" in pushed.stderr, pushed
    # A new name too, and a delete of the image's manifest, on both ports: refused on the pull
    # port, asked for credentials on the push port (nginx answers before the registry).
    registry = swarm["SWARM_REGISTRY_ADDRESS"]
    repository = workspace_ref.split("/", 1)[1].split(":")[0]
    for method, path in (
        ("POST", "/v2/popebot-pushed/blobs/uploads/"),
        ("PUT", f"/v2/{repository}/manifests/latest"),
        ("DELETE", f"/v2/{repository}/manifests/latest"),
    ):
        assert registry_answer(worker, method, f"{registry}:5000", path) == "403", method
        assert registry_answer(worker, method, f"{registry}:5002", path) == "401", method
    # The image is still the one the project pushed: a workspace still starts from it.
    workspace_id = create(server, "after the refused push")
    assert "u=2" in in_terminal(server, workspace_id, "echo u=$((1+1))", "u=2")


def test_the_node_firewall_is_removed_by_the_command(
    server: DeployedServer,
    swarm: dict[str, str],
    manager: docker.DockerClient,
    docker_client: docker.DockerClient,
) -> None:
    """Last in the module: the rules leave every workspace node, and the service goes."""
    image = swarm["SWARM_FIREWALL_IMAGE"]
    done = subprocess.run(
        [
            sys.executable, "-m", "jupyter_popebot_code.network.command", "remove",
            "--swarm", f"--SwarmNetworkPolicy.node_firewall_image={image}",
        ],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "DOCKER_HOST": swarm["SWARM_MANAGER_HOST"]},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with pytest.raises(docker.errors.NotFound):
        manager.api.inspect_service(FIREWALL_SERVICE)
    for worker in docker_client.containers.list(filters={"name": WORKER_PREFIX}):
        listed = subprocess.run(
            ["docker", "exec", worker.name, "iptables", "-w", "-S"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert "gwbridge" not in listed.replace("docker_gwbridge", ""), worker.name
        assert NODE_VIEW.forward_chain not in listed
    # A start needs the node firewall again: the server puts the service back and waits for it.
    workspace_id = create(server, "after removal")
    assert "r=1" in in_terminal(server, workspace_id, "echo r=$((0+1))", "r=1")
    manager.api.inspect_service(FIREWALL_SERVICE)


def put_secret(server: DeployedServer, name: str, value: str, git_host: str | None = None) -> None:
    answer = server.request(
        "PUT", f"api/code/secrets/{name}", json={"value": value, "git_host": git_host}
    )
    assert answer.status_code in (200, 201), answer.text
    assert value not in answer.text


def running_task_id(client: docker.DockerClient, workspace_id: str) -> str:
    found = [
        task["ID"]
        for task in client.api.tasks(filters={"service": f"code-workspace-{workspace_id}"})
        if task["Status"]["State"] == "running"
    ]
    assert len(found) == 1, found
    return str(found[0])


def new_shells_see(server: DeployedServer, workspace_id: str, value: str) -> None:
    """Wait (bounded, in the workspace's shell) until a new login shell sees `value`."""
    # A marker of this call's own: the terminal replays the output of the earlier ones.
    marker = uuid.uuid4().int % 10**9
    line = (
        f"for i in $(seq 120); do bash -lc 'test \"$SWARM_SECRET\" = {value}' && break; "
        f"sleep 0.5; done; bash -lc 'echo seen-$SWARM_SECRET-$(({marker}+1))'"
    )
    seen = in_terminal(server, workspace_id, line, f"-{marker + 1}")
    said = [entry for entry in server.log().splitlines() if "secret" in entry.lower()]
    assert f"seen-{value}-{marker + 1}" in seen, said[-10:]


def test_personal_secrets_reach_a_swarm_workspace_and_its_changes_need_no_restart(
    server: DeployedServer, manager: docker.DockerClient
) -> None:
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    put_secret(server, "SWARM_SECRET", first, "git.example.test")
    workspace_id = create(server, "secrets")
    name = f"code-workspace-{workspace_id}"
    try:
        assert ensure(server, workspace_id).status_code == 200
        new_shells_see(server, workspace_id, first)
        # git's credential helper hands it out for its host (no token in a URL or config).
        asked = "printf 'protocol=https\\nhost=git.example.test\\n\\n' | git credential fill"
        assert f"password={first}" in in_terminal(server, workspace_id, asked, f"password={first}")
        _, host = node_of(manager, workspace_id)
        shown = on_worker(
            host, "exec", task_container(host, workspace_id),
            "stat", "-c", "%U:%G %a", "/run/workspace-secrets", "/run/workspace-secrets/env",
        ).stdout.split()  # fmt: skip
        assert shown == ["root:coder", "750", "root:coder", "440"], shown

        task = running_task_id(manager, workspace_id)
        put_secret(server, "SWARM_SECRET", second)
        new_shells_see(server, workspace_id, second)
        assert running_task_id(manager, workspace_id) == task  # not restarted

        # Never in a service's spec (env, labels, command), a config or a leftover secret object.
        for service in manager.api.services():
            assert first not in json.dumps(service)
            assert second not in json.dumps(service)
        for config in manager.api.configs():
            assert first not in json.dumps(config)
            assert second not in json.dumps(config)
        assert not [s for s in manager.api.secrets() if s["Spec"]["Name"].startswith(name)]
        log = server.log()
        assert first not in log
        assert second not in log

        # A new task (stop, start) gets them again: its tmpfs starts empty.
        stopped = server.request("POST", f"api/code/workspaces/{workspace_id}/stop")
        assert stopped.status_code == 200, stopped.text
        assert ensure(server, workspace_id).json()["status"] == "started"
        assert running_task_id(manager, workspace_id) != task
        new_shells_see(server, workspace_id, second)
    finally:
        deleted = server.request("DELETE", f"api/code/workspaces/{workspace_id}")
        server.request("DELETE", "api/code/secrets/SWARM_SECRET")
    assert deleted.status_code == 204, deleted.text
    assert not [s for s in manager.api.secrets() if s["Spec"]["Name"].startswith(name)]
