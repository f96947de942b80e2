"""A server in a container on the server's Docker network reaches each workspace on its own.

Each workspace has a network of its own (WorkspaceNetworks); the host routes the server's
container to it, and the firewall the operator installs once lets only that container through.

The server is a real `jupyter server` process run inside a sidecar container's network and UTS
namespaces (nsenter), with the container's resolv.conf, so it sees what a server deployed as a
container on that network sees: Docker's embedded DNS, and its own container when it asks the
engine about its host name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container
from websockets.sync.client import connect

from .conftest import SIDECAR_PREFIX, TEST_NETWORK, TEST_NETWORK_ARGS
from .preview_client import start_app
from .server_process import ServerProcess, run_and_clean_up
from .test_network_policy import BLOCKED, probe


@pytest.fixture
def sidecar(workspace_image: str, docker_client: docker.DockerClient) -> Iterator[Container]:
    """An idle container on the test network whose namespaces the server will join."""
    for tool in ("nsenter", "unshare"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} (util-linux) is needed to run the server on the network")
    container = docker_client.containers.run(
        workspace_image,
        entrypoint=["sleep", "infinity"],
        name=f"{SIDECAR_PREFIX}{uuid.uuid4().hex[:8]}",
        network=TEST_NETWORK,
        detach=True,
    )
    container.reload()
    yield container
    container.remove(force=True)


@pytest.fixture
def server_in_network(
    tmp_path: Path, workspace_image: str, docker_client: docker.DockerClient, sidecar: Container
) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, workspace_image)
    pid = sidecar.attrs["State"]["Pid"]
    resolv_conf = sidecar.attrs["ResolvConfPath"]
    # A private mount namespace gives the server the container's DNS without touching the host.
    server.launcher = [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        'pid=$1; shift; mount --bind "$0" /etc/resolv.conf && '
        'exec nsenter --net=/proc/$pid/ns/net --uts=/proc/$pid/ns/uts "$@"',
        resolv_conf, str(pid),
    ]  # fmt: skip
    # A server in a container cannot write the host's firewall: the operator does, on the host,
    # naming the server's container as the one that may reach ttyd.
    policy = [
        f"--ContainerManager.network={TEST_NETWORK}",
        f"--NetworkPolicy.ttyd_clients={json.dumps([sidecar.name])}",
        *TEST_NETWORK_ARGS,  # the rules cover the pool of networks the server makes later
    ]
    command = [sys.executable, "-m", "jupyter_popebot_code.network.command", "install"]
    done = subprocess.run([*command, *policy], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    server.extra_args = ["--ServerApp.ip=0.0.0.0", "--NetworkPolicy.firewall=off"]
    server.host = sidecar.attrs["NetworkSettings"]["Networks"][TEST_NETWORK]["IPAddress"]
    yield from run_and_clean_up(server, docker_client)


def test_the_relay_dials_workspaces_on_their_networks_from_the_servers_container(
    server_in_network: ServerProcess, docker_client: docker.DockerClient
) -> None:
    server = server_in_network
    server.start()
    created = server.request("POST", "api/code/workspaces", json={"name": "by name"})
    assert created.status_code == 201, created.text
    workspace_id = created.json()["id"]

    url = f"ws://{server.host}:{server.port}/api/ws/code/{workspace_id}?token={server.token}"
    with connect(url, subprotocols=["tty"], open_timeout=60, close_timeout=10) as terminal:
        hello = {"AuthToken": "", "columns": 80, "rows": 24}
        terminal.send(json.dumps(hello).encode())
        terminal.send(b"0echo by-name-$((6*7))\r")
        seen = ""
        while "by-name-42" not in seen:
            frame = terminal.recv(timeout=60)
            assert isinstance(frame, bytes)
            if frame[:1] == b"0":
                seen += frame[1:].decode(errors="replace")

    target = docker_client.containers.get(f"code-workspace-{workspace_id}")
    own = f"code-workspace-{workspace_id}-net"
    assert list(target.attrs["NetworkSettings"]["Networks"]) == [own]
    address = target.attrs["NetworkSettings"]["Networks"][own]["IPAddress"]
    log = server.log_path.read_text()
    assert "Relay reaches workspace containers by address, on their networks" in log
    assert f"connected to ttyd at {address}:7681" in log
    assert "Workspace firewall is OFF (NetworkPolicy.firewall = 'off')" in log

    # Only the server's container reaches ttyd: another workspace does not, nor the server.
    other = server.request("POST", "api/code/workspaces", json={"name": "other"})
    assert other.status_code == 201, other.text
    other_container = docker_client.containers.get(other.json()["container_name"])
    assert probe(other_container, address, "tcp", 7681) == BLOCKED
    assert probe(other_container, server.host, "tcp", server.port) == BLOCKED

    # Previews too: the server's container reaches any port of a workspace, workspaces do not.
    start_app(docker_client, target.name, 8080)
    listed = server.request("GET", f"api/code/workspaces/{workspace_id}/ports").json()
    url = next(p["url"] for p in listed["ports"] if p["port"] == 8080)
    page = server.request("GET", url[1:])
    assert page.status_code == 200, page.text
    assert b"preview works" in page.content
    assert probe(other_container, address, "tcp", 8080) == BLOCKED
