"""Workspaces on a real Docker Swarm: this machine's engine as manager, Docker-in-Docker workers.

scripts/swarm-cluster.sh makes the swarm (reused between runs) and the project's registry that
serves the workspace image and the node firewall's to the workers. The server is a real `jupyter
server` process with `SwarmContainerManager` and `SwarmNetworkPolicy`, run inside a sidecar
container's network namespace (as in test_server_on_the_network.py): it joins the overlay network of
each running workspace and reaches its ttyd by service name there; ttyd is published on no host
interface. Network probes run inside the workspace tasks on their worker engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from jupyter_popebot_code.backends.docker.manager import MANAGED_BY_LABEL, STORE_LABEL
from jupyter_popebot_code.backends.swarm.manager import (
    NETWORK_SUFFIX,
    NODE_LABEL,
    PIN_SUFFIX,
    SwarmContainerManager,
)
from jupyter_popebot_code.core.store import Workspace, WorkspaceStore
from jupyter_popebot_code.errors import ContainerError
from jupyter_popebot_code.network.swarm_policy import FIREWALL_SERVICE, NODE_VIEW

from .conftest import ROOT, SIDECAR_PREFIX, TEST_NETWORK
from .network_probes import BLOCKED, LISTENER, PORT, PROBE, probe_answer
from .server_process import ServerProcess

pytestmark = [pytest.mark.swarm, pytest.mark.timeout(1200)]

CLUSTER_SCRIPT = ROOT / "scripts" / "swarm-cluster.sh"
OVERLAY = f"{TEST_NETWORK}-swarm"
FRONT = f"{TEST_NETWORK}-swarm-front"
WORKER_PREFIX = "popebot-swarm-node-"
SWARM_MANAGER = "jupyter_popebot_code.backends.swarm.SwarmContainerManager"


def run_script(*args: str, timeout: float = 1800) -> str:
    done = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"swarm-cluster.sh {args}: {done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def swarm(docker_client: docker.DockerClient, workspace_image: str) -> Iterator[dict[str, str]]:
    """The swarm and its registry (made or reused); the workers leave at the end of the module."""
    for tool in ("nsenter", "unshare"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} (util-linux) is needed to run the server on the network")
    try:
        run_script("up")
        settings = dict(line.split("=", 1) for line in run_script("env").split())
        _ensure_networks(docker_client)
        yield settings
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_service(FIREWALL_SERVICE)
        for name in (OVERLAY, FRONT):
            for network in docker_client.networks.list(names=[name]):
                if network.name == name:
                    network.remove()
    finally:
        # This engine leaves the swarm again if the script made it a manager (also after a
        # failed set-up): the rest of the suite runs on a plain engine, as it always has.
        run_script("down", timeout=300)


def _ensure_networks(client: docker.DockerClient) -> None:
    """An internal attachable overlay for the workspaces, an internal bridge to reach the server."""
    wanted = {OVERLAY: "overlay", FRONT: "bridge"}
    for name, driver in wanted.items():
        found = [n for n in client.networks.list(names=[name]) if n.name == name]
        if found and found[0].attrs.get("Internal") and found[0].attrs["Driver"] == driver:
            continue
        for network in found:
            network.remove()
        client.networks.create(
            name,
            driver=driver,
            internal=True,
            attachable=driver == "overlay" or None,
            labels={MANAGED_BY_LABEL: "tests"},
        )


def start_sidecar(client: docker.DockerClient) -> Container:
    """A container for the server to run in (its network and hostname), on the front network."""
    container = client.containers.run(
        "jupyter-popebot-code-workspace:latest",
        entrypoint=["sleep", "infinity"],
        name=f"{SIDECAR_PREFIX}swarm-{uuid.uuid4().hex[:8]}",
        network=FRONT,
        detach=True,
    )
    container.reload()
    return container


def place_server(server: ServerProcess, sidecar: Container) -> None:
    """Run the server (at its next start) in the sidecar's network and hostname."""
    pid = sidecar.attrs["State"]["Pid"]
    server.launcher = [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        'pid=$1; shift; mount --bind "$0" /etc/resolv.conf && '
        'exec nsenter --net=/proc/$pid/ns/net --uts=/proc/$pid/ns/uts "$@"',
        sidecar.attrs["ResolvConfPath"], str(pid),
    ]  # fmt: skip
    server.host = sidecar.attrs["NetworkSettings"]["Networks"][FRONT]["IPAddress"]
    # Only on the front network: the workspaces' overlays, which it joins, see no Jupyter.
    others = [arg for arg in server.extra_args if not arg.startswith("--ServerApp.ip=")]
    server.extra_args = [f"--ServerApp.ip={server.host}", *others]


@pytest.fixture(scope="module")
def sidecar(swarm: dict[str, str], docker_client: docker.DockerClient) -> Iterator[Container]:
    yield start_sidecar(docker_client)
    # A test may have replaced it, as a new server container replaces an old one.
    for container in docker_client.containers.list(all=True, filters={"name": SIDECAR_PREFIX}):
        if container.name.startswith(f"{SIDECAR_PREFIX}swarm-"):
            container.remove(force=True)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    swarm: dict[str, str],
    sidecar: Container,
    docker_client: docker.DockerClient,
) -> Iterator[ServerProcess]:
    tmp_path = tmp_path_factory.mktemp("swarm-server")
    server = ServerProcess(tmp_path, swarm["SWARM_REGISTRY_IMAGE"])
    server.extra_args = [
        f"--CodeWorkspacesApp.container_manager_class={SWARM_MANAGER}",
        "--SwarmContainerManager.stop_timeout=2",
        "--CodeWorkspacesApp.max_running_workspaces_per_user=0",
        # The module's workspaces add up across its tests; the cap is tested on one engine.
        "--CodeWorkspacesApp.max_running_workspaces=0",
        # Enforced on every workspace node, or no workspace starts.
        "--NetworkPolicy.firewall=iptables",
        f"--SwarmNetworkPolicy.node_firewall_image={swarm['SWARM_FIREWALL_IMAGE']}",
    ]
    place_server(server, sidecar)
    server.start()
    yield server
    server.stop()
    store = WorkspaceStore(str(server.db_path))
    store_id = store.store_id
    store.close()
    remove_store(docker_client, store_id)


def remove_store(client: docker.DockerClient, store_id: str) -> None:
    """Every service, pin, network and worker volume of one store."""
    label = f"{STORE_LABEL}={store_id}"
    for service in client.services.list(filters={"label": label}):
        service.remove()
    for config in client.configs.list(filters={"label": label}):
        config.remove()
    for network in client.networks.list(filters={"label": label}):
        for attached in client.api.inspect_network(network.id).get("Containers") or {}:
            # The server's sidecar, still on the networks of the workspaces that ran.
            with contextlib.suppress(docker.errors.APIError):
                client.api.disconnect_container_from_network(attached, network.id, force=True)
        for _ in range(120):  # the removed services' tasks let go of it within seconds
            try:
                network.remove()
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:
                time.sleep(0.5)
    for worker in client.containers.list(filters={"name": WORKER_PREFIX}):
        subprocess.run(
            ["docker", "exec", worker.name, "sh", "-c",
             f"docker volume ls -q --filter label={label} | xargs -r docker volume rm -f"],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip


def node_of(client: docker.DockerClient, workspace_id: str) -> tuple[str, str]:
    """(node id, hostname) the workspace's service is pinned to."""
    service = client.api.inspect_service(f"code-workspace-{workspace_id}")
    node_id = service["Spec"]["Labels"][NODE_LABEL]
    assert service["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == [f"node.id=={node_id}"]
    return node_id, client.api.inspect_node(node_id)["Description"]["Hostname"]


def on_worker(hostname: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "exec", hostname, "docker", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def set_availability(node_id: str, availability: str) -> None:
    subprocess.run(
        ["docker", "node", "update", "--availability", availability, node_id],
        check=True,
        capture_output=True,
        timeout=60,
    )


def create(server: ServerProcess, name: str) -> str:
    created = server.request("POST", "api/code/workspaces", json={"name": name})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def ensure(server: ServerProcess, workspace_id: str) -> Any:
    return server.request("POST", f"api/code/workspaces/{workspace_id}/ensure")


def in_terminal(server: ServerProcess, workspace_id: str, line: str, expect: str) -> str:
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


def terminal_close_reason(server: ServerProcess, workspace_id: str) -> str:
    """The reason the relay gives when it closes a terminal it cannot serve."""
    url = f"ws://{server.host}:{server.port}/api/ws/code/{workspace_id}?token={server.token}"
    with connect(url, subprotocols=["tty"], open_timeout=60, close_timeout=10) as terminal:
        terminal.send(json.dumps({"AuthToken": "", "columns": 80, "rows": 24}).encode())
        with pytest.raises(ConnectionClosed) as closed:
            read_until_closed(terminal)
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
    """The networks the server's container (the sidecar) is attached to now."""
    [sidecar] = client.containers.list(filters={"name": f"{SIDECAR_PREFIX}swarm-"})
    return list(sidecar.attrs["NetworkSettings"]["Networks"])


def workspace_network(client: docker.DockerClient, workspace_id: str) -> str:
    """The name of the one network the workspace's service is on."""
    service = client.api.inspect_service(f"code-workspace-{workspace_id}")
    [attachment] = service["Spec"]["TaskTemplate"]["Networks"]
    return str(client.api.inspect_network(attachment["Target"])["Name"])


def task_address(client: docker.DockerClient, workspace_id: str) -> str:
    """The running task's address on its overlay."""
    name = f"code-workspace-{workspace_id}"
    for task in client.api.tasks(filters={"service": name, "desired-state": "running"}):
        for attachment in task.get("NetworksAttachments") or []:
            if attachment["Network"]["Spec"]["Name"] == name + NETWORK_SUFFIX:
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
    server: ServerProcess, docker_client: docker.DockerClient
) -> None:
    ids = [create(server, f"spread {n}") for n in range(3)]
    hosts = {node_of(docker_client, workspace_id)[1] for workspace_id in ids}
    assert len(hosts) >= 2, hosts
    assert all(host.startswith(WORKER_PREFIX) for host in hosts), hosts

    # A terminal on a worker: echoes, and a reconnection finds the same tmux session.
    workspace_id = ids[0]
    in_terminal(server, workspace_id, "export POPEBOT_MARK=kept-$((6*7)); echo set$((1+2))", "set3")
    assert "kept-42" in in_terminal(server, workspace_id, "echo mark=$POPEBOT_MARK", "mark=kept-42")
    log = server.log_path.read_text()
    assert "Relay reaches workspace containers by name, over each workspace's own overlay" in log
    assert f"connected to ttyd at code-workspace-{workspace_id}:7681" in log

    # ttyd is published on no host: the service has no ports, its only address is the overlay's.
    service = docker_client.api.inspect_service(f"code-workspace-{workspace_id}")
    assert not service["Endpoint"].get("Ports")
    assert service["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
    # Each on an overlay of its own, which the server has joined.
    networks = {workspace_network(docker_client, one) for one in ids}
    assert len(networks) == 3, networks
    assert networks <= set(server_networks(docker_client))

    listed = server.request("GET", "api/code/workspaces").json()["workspaces"]
    assert {ws["id"]: ws["container"]["status"] for ws in listed} == dict.fromkeys(ids, "running")


def test_stop_and_start_keep_files(
    server: ServerProcess, docker_client: docker.DockerClient
) -> None:
    workspace_id = create(server, "stop start")
    in_terminal(server, workspace_id, "echo kept > ~/workspace/f && echo w$((1+1))", "w2")
    network = f"code-workspace-{workspace_id}{NETWORK_SUFFIX}"
    stopped = server.request("POST", f"api/code/workspaces/{workspace_id}/stop")
    assert stopped.status_code == 200, stopped.text
    described = server.request("GET", f"api/code/workspaces/{workspace_id}").json()
    assert described["container"]["status"] == "exited"
    # The network and the server on it stay: a start never waits for the network's gossip.
    assert network in server_networks(docker_client)
    assert docker_client.api.inspect_network(network)["Driver"] == "overlay"
    started = ensure(server, workspace_id)
    assert started.json()["status"] == "started", started.text
    assert network in server_networks(docker_client)
    assert "file=kept" in in_terminal(
        server, workspace_id, "echo file=$(cat ~/workspace/f)", "file=kept"
    )


def test_a_removed_service_comes_back_on_its_node_with_its_files(
    server: ServerProcess, docker_client: docker.DockerClient
) -> None:
    workspace_id = create(server, "recreated")
    node_id, _ = node_of(docker_client, workspace_id)
    in_terminal(server, workspace_id, "echo pinned > ~/workspace/p && echo p$((5+5))", "p10")
    docker_client.api.remove_service(f"code-workspace-{workspace_id}")  # behind the server's back
    recreated = ensure(server, workspace_id)
    assert recreated.json()["status"] == "created", recreated.text
    # The pin (a swarm config object) outlived the service: same node, same volume.
    assert node_of(docker_client, workspace_id)[0] == node_id
    assert "p=pinned" in in_terminal(
        server, workspace_id, "echo p=$(cat ~/workspace/p)", "p=pinned"
    )


def test_a_drained_node_answers_503_naming_it_and_its_workspaces_come_back(
    server: ServerProcess, docker_client: docker.DockerClient
) -> None:
    ids = [create(server, f"drain {n}") for n in range(2)]
    nodes = {workspace_id: node_of(docker_client, workspace_id) for workspace_id in ids}
    assert len(set(nodes.values())) == 2, nodes  # the least-loaded worker gets each new one
    drained_id, other_id = ids
    node_id, host = nodes[drained_id]
    in_terminal(server, drained_id, "echo safe > ~/workspace/g && echo g$((2+2))", "g4")

    set_availability(node_id, "drain")
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
        set_availability(node_id, "active")

    back = until(lambda: ensure(server, drained_id).status_code == 200, 120, "back")
    assert back
    assert node_of(docker_client, drained_id)[0] == node_id
    assert "g=safe" in in_terminal(server, drained_id, "echo g=$(cat ~/workspace/g)", "g=safe")


def test_a_stopped_worker_answers_503_and_its_workspace_comes_back_with_its_files(
    server: ServerProcess, docker_client: docker.DockerClient
) -> None:
    ids = [create(server, f"down {n}") for n in range(2)]
    nodes = {workspace_id: node_of(docker_client, workspace_id) for workspace_id in ids}
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
    assert node_of(docker_client, lost_id)[0] == node_id
    assert "h=lasting" in in_terminal(server, lost_id, "echo h=$(cat ~/workspace/h)", "h=lasting")


def test_delete_removes_the_service_and_the_volume_on_its_node(
    server: ServerProcess, docker_client: docker.DockerClient
) -> None:
    workspace_id = create(server, "delete")
    name = f"code-workspace-{workspace_id}"
    _, host = node_of(docker_client, workspace_id)
    assert on_worker(host, "volume", "inspect", name).returncode == 0
    deleted = server.request("DELETE", f"api/code/workspaces/{workspace_id}")
    assert deleted.status_code == 204, deleted.text
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_service(name)
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_config(name + PIN_SUFFIX)
    assert on_worker(host, "volume", "inspect", name).returncode != 0
    assert server.request("GET", f"api/code/workspaces/{workspace_id}").status_code == 404
    # Its network goes too, and the server left it first.
    assert name + NETWORK_SUFFIX not in server_networks(docker_client)
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_network(name + NETWORK_SUFFIX)


def test_a_task_that_keeps_failing_is_reported_with_dockers_error(
    swarm: dict[str, str], docker_client: docker.DockerClient
) -> None:
    registry = swarm["SWARM_REGISTRY_IMAGE"].split("/", 1)[0]
    manager = SwarmContainerManager(
        image=f"{registry}/no-such-image:latest", network=OVERLAY, start_timeout=120
    )
    store_id = f"swarm-fail-{uuid.uuid4().hex[:8]}"
    workspace = Workspace.new("alice", "fails", "", "")
    try:
        with pytest.raises(ContainerError) as failed:
            asyncio.run(manager.create(workspace, store_id, {}))
        assert "does not start on its node" in str(failed.value)
        assert "no-such-image" in str(failed.value) or "No such image" in str(failed.value)
        service = docker_client.api.inspect_service(workspace.container_name)
        assert service["Spec"]["Mode"]["Replicated"]["Replicas"] == 0  # no churn left behind
    finally:
        manager.close()
        remove_store(docker_client, store_id)


def test_internal_networks_have_no_way_out_and_an_orphaned_network_is_swept(
    swarm: dict[str, str], sidecar: Container, docker_client: docker.DockerClient
) -> None:
    """The manager on its own: a workspace on an internal overlay, then its network orphaned."""
    manager = SwarmContainerManager(
        image=swarm["SWARM_REGISTRY_IMAGE"],
        server_container=sidecar.name,
        internal_networks=True,
        start_timeout=120,
    )
    manager.network_per_workspace = True
    store_id = f"swarm-internal-{uuid.uuid4().hex[:8]}"
    workspace = Workspace.new("alice", "internal", "", "")
    name = workspace.container_name or ""
    try:
        asyncio.run(manager.create(workspace, store_id, {}))
        assert docker_client.api.inspect_network(name + NETWORK_SUFFIX)["Internal"] is True
        host = node_of(docker_client, workspace.id)[1]
        done = on_worker(host, "exec", task_container(host, workspace.id), "python3", "-c", GATEWAY)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == ""  # no default route: nothing beyond the overlay
        assert name + NETWORK_SUFFIX in server_networks(docker_client)

        # A crash between the network and the service (here: the service removed) leaves the
        # network alone; the start-up sweep finds it by its labels and removes it.
        docker_client.api.remove_service(name)
        assert asyncio.run(manager.workspace_ids(store_id)) == {name: workspace.id}
        asyncio.run(manager.remove(name))
        with pytest.raises(docker.errors.NotFound):
            docker_client.api.inspect_network(name + NETWORK_SUFFIX)
        assert name + NETWORK_SUFFIX not in server_networks(docker_client)
    finally:
        manager.close()
        remove_store(docker_client, store_id)


def test_the_cluster_script_is_reentrant(swarm: dict[str, str]) -> None:
    started = time.monotonic()
    run_script("up")
    assert time.monotonic() - started < 60  # everything reused: no build, no push, no join


def test_workspaces_reach_neither_each_other_nor_the_nodes(
    server: ServerProcess, docker_client: docker.DockerClient, sidecar: Container
) -> None:
    """Apart (an overlay each) and away from every node (the node firewall on docker_gwbridge)."""
    ids = [create(server, f"fenced {n}") for n in range(3)]
    hosts = {workspace_id: node_of(docker_client, workspace_id)[1] for workspace_id in ids}
    # Three over two workers: one pair shares a node, and some pair does not.
    by_node: dict[str, list[str]] = {}
    for workspace_id, host in hosts.items():
        by_node.setdefault(host, []).append(workspace_id)
    [(host, [prober, neighbour])] = [(h, w) for h, w in by_node.items() if len(w) == 2]
    [stranger] = [w for w in ids if hosts[w] != host]
    container = task_container(host, prober)
    addresses = {workspace_id: task_address(docker_client, workspace_id) for workspace_id in ids}
    for workspace_id in ids:
        start_listener(hosts[workspace_id], task_container(hosts[workspace_id], workspace_id))

    # Every listener is up: the server (on each overlay) and the workspace itself reach it.
    for workspace_id in ids:
        checked = sidecar.exec_run(
            ["python3", "-c", PROBE, addresses[workspace_id], str(PORT), "tcp"]
        )
        assert checked.output.decode().split() == ["open", "hello"], (workspace_id, checked.output)
    until(
        lambda: probe_from(host, container, addresses[prober]) == "open hello", 30, "own listener"
    )

    # Apart: neither a neighbour on the same node nor one on another node, by address or name.
    for other in (neighbour, stranger):
        assert not probe_from(host, container, addresses[other]).startswith("open"), other
        assert probe_from(host, container, f"code-workspace-{other}").startswith("error"), other

    # Away from the hosts: its own node (the gateway), the manager, the other worker, link-local.
    nodes = docker_client.api.nodes()
    manager = next(
        n["ManagerStatus"]["Addr"].rpartition(":")[0] for n in nodes if n.get("ManagerStatus")
    )
    other_worker = next(
        n["Status"]["Addr"] for n in nodes
        if n["Description"]["Hostname"].startswith(WORKER_PREFIX)
        and n["Description"]["Hostname"] != host
    )  # fmt: skip
    gossip = 7946  # every swarm node listens there
    assert probe_from(host, container, gateway_of(host, container), gossip) == BLOCKED
    assert probe_from(host, container, manager, 2377) == BLOCKED
    assert probe_from(host, container, other_worker, gossip) == BLOCKED
    # No packet leaves the worker either way: its network has no route out.
    assert probe_from(host, container, "169.254.77.1") == BLOCKED

    # Nor the server itself: Jupyter listens only on the server's front network.
    sidecar.reload()
    networks = sidecar.attrs["NetworkSettings"]["Networks"]
    server_there = networks[f"code-workspace-{prober}{NETWORK_SUFFIX}"]["IPAddress"]
    answer = probe_from(host, container, server_there, server.port)
    assert not answer.startswith("open"), answer

    # The rules on the node are the server's: link-local and every node's address rejected.
    forward = node_rules(host, NODE_VIEW.forward_chain)
    assert "-d 169.254.0.0/16" in forward
    assert f"-d {manager}/32" in forward
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


def test_a_replaced_server_container_reaches_the_workspaces_that_kept_running(
    server: ServerProcess, sidecar: Container, docker_client: docker.DockerClient
) -> None:
    """The server's container is replaced (an upgrade, a crash) while a workspace runs on."""
    workspace_id = create(server, "outlives its server")
    in_terminal(server, workspace_id, "export KEPT=k$((2*3)); echo set$((1+1))", "set2")
    network = workspace_network(docker_client, workspace_id)
    server.stop()
    sidecar.remove(force=True)  # and its place on every workspace's overlay with it
    place_server(server, start_sidecar(docker_client))
    server.start()
    assert network not in server_networks(docker_client)
    # The new container joins the overlay on the first terminal and finds the same session:
    # the workspace ran on, untouched.
    assert "kept=k6" in in_terminal(server, workspace_id, "echo kept=$KEPT", "kept=k6")
    assert network in server_networks(docker_client)


def test_the_node_firewall_is_removed_by_the_command(
    server: ServerProcess, swarm: dict[str, str], docker_client: docker.DockerClient
) -> None:
    """Last in the module: the rules leave every workspace node, and the service goes."""
    image = swarm["SWARM_FIREWALL_IMAGE"]
    done = subprocess.run(
        [
            sys.executable, "-m", "jupyter_popebot_code.network.command", "remove",
            "--swarm", f"--SwarmNetworkPolicy.node_firewall_image={image}",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_service(FIREWALL_SERVICE)
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
    docker_client.api.inspect_service(FIREWALL_SERVICE)
