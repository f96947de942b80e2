"""Workspace isolation and egress policy, through real containers on the real engine.

Every probe runs inside a workspace container (as its user) and every destination is on this
machine: another workspace, the test network's gateway, or a link-local address in a network
namespace the test makes and removes. A blocked connection fails with "No route to host"
(EHOSTUNREACH, the firewall's ICMP answer), which a closed port ("Connection refused") or a
missing listener cannot produce; each blocked probe has a reachable twin that proves the
listener is up.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from jupyter_popebot_code.network.firewall import (
    ICC_OPTION,
    LINK_LOCAL,
    IptablesFirewall,
    Members,
    NetworkView,
    PolicySettings,
    firewall_script,
    parse_destination,
    parse_network,
)

from .conftest import TEST_NETWORK, Api, GitServer, HeaderIdentityProvider, ensure_internal_network
from .network_probes import BLOCKED, LISTENER, PORT, probe_answer
from .terminal_client import WsFetch, terminal


def probe(container: Any, host: str, proto: str = "tcp", port: int = PORT) -> str:
    """Connect from inside `container` (as its user): 'open <greeting>', 'error N', 'timeout'."""

    def run(command: list[str]) -> str:
        result = container.exec_run(command, user="coder")
        assert result.exit_code == 0, result.output
        return str(result.output.decode().strip())

    return probe_answer(run, host, port, proto)


def address_of(container: Any) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][TEST_NETWORK]["IPAddress"])


def start_listener(container: Any) -> None:
    container.exec_run(["python3", "-c", LISTENER], user="coder", detach=True)
    wait_listening(address_of(container))


def wait_listening(host: str, port: int = PORT, timeout: float = 15.0) -> None:
    """The host itself may reach every workspace (the relay does): proves the listener is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1) as conn:
                assert conn.recv(16) == b"hello"
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def workspace_container(api: Api, docker_client: docker.DockerClient, name: str) -> Any:
    workspace = await api.create(name=name)
    return docker_client.containers.get(workspace["container_name"])


two_owners = {"ServerApp": {"identity_provider_class": HeaderIdentityProvider}}


# -- the fast tier: rule text and option parsing, no root needed ------------------------------


def test_destinations_are_validated_before_they_reach_iptables() -> None:
    assert parse_destination("10.1.2.3:9418").port == 9418
    assert str(parse_destination("10.0.0.0/8").network) == "10.0.0.0/8"
    for bad in ("10.0.0.1/8", "example.com", "10.0.0.1:0", "10.0.0.1:x", "::1", "1.2.3.4 -j"):
        with pytest.raises(ValueError):
            parse_destination(bad)
    with pytest.raises(ValueError):
        parse_network("169.254.0.0/16 -j ACCEPT")


def test_the_rules_reject_after_their_exceptions() -> None:
    view = NetworkView("0123456789abcdef", "br-0123456789ab", parse_network("10.9.0.0/24"))
    members = Members(("10.9.0.9",), {"alice": ("10.9.0.2", "10.9.0.3"), "bob": ("10.9.0.4",)})
    settings = PolicySettings(same_owner=True, allowed=(parse_destination("10.9.0.1:9418"),))
    lines = firewall_script(view, members, settings).splitlines()
    fwd = "-A POPEBOT-FWD-0123456789ab"
    reject = "-j REJECT --reject-with icmp-admin-prohibited"
    assert f"{fwd} -o br-0123456789ab -s 10.9.0.2 -d 10.9.0.3 -j ACCEPT" in lines
    assert not [line for line in lines if "10.9.0.4 -j ACCEPT" in line]  # bob has one workspace
    # The server's container reaches every TCP port of a workspace (ttyd and previews).
    ttyd = f"{fwd} -o br-0123456789ab -s 10.9.0.9 -p tcp -j ACCEPT"
    isolate = f"{fwd} -o br-0123456789ab {reject}"
    assert lines.index(ttyd) < lines.index(isolate) < lines.index(f"{fwd} -d {LINK_LOCAL} {reject}")
    assert lines[-2:] == [f"-A POPEBOT-IN-0123456789ab {reject}", "COMMIT"]
    allowed = "-A POPEBOT-IN-0123456789ab -d 10.9.0.1/32 -p udp --dport 9418 -j RETURN"
    assert lines.index(allowed) < len(lines) - 2


# -- isolation between workspaces ---------------------------------------------------------------


@pytest.mark.parametrize("server_settings", [two_owners])
async def test_owners_cannot_reach_each_others_workspaces(
    api: Api, docker_client: docker.DockerClient, jp_serverapp: Any, jp_ws_fetch: WsFetch
) -> None:
    alice, bob = api.as_user("alice"), api.as_user("bob")
    target = await workspace_container(alice, docker_client, "alice 1")
    neighbour = await workspace_container(alice, docker_client, "alice 2")
    stranger = await workspace_container(bob, docker_client, "bob")
    start_listener(target)
    host = address_of(target)
    for proto in ("tcp", "udp"):
        assert await asyncio.to_thread(probe, stranger, host, proto) == BLOCKED
        # Same owner, but same_owner_reachable is off by default.
        assert await asyncio.to_thread(probe, neighbour, host, proto) == BLOCKED
    # Any port, and ttyd too: another owner's shell is not even a login prompt away.
    assert await asyncio.to_thread(probe, stranger, host, "tcp", 7681) == BLOCKED
    network = docker_client.networks.get(TEST_NETWORK)
    assert network.attrs["Options"][ICC_OPTION] == "false"
    assert jp_serverapp.web_app.settings["jupyter_popebot_code"].network_policy.enforcing
    # The server on the host (connect_via=ip) still reaches ttyd through the relay.
    workspace_id = target.labels["org.jupyter.popebot-code.workspace-id"]
    async with terminal(jp_ws_fetch, workspace_id, user="alice") as term:
        term.type("echo fenced-$((6*7))\r")
        await term.read_until("fenced-42")


@pytest.mark.parametrize(
    "server_settings",
    [{**two_owners, "NetworkPolicy": {"same_owner_reachable": True}}],
)
async def test_one_owners_workspaces_reach_each_other_when_allowed(
    api: Api, docker_client: docker.DockerClient
) -> None:
    alice, bob = api.as_user("alice"), api.as_user("bob")
    target = await workspace_container(alice, docker_client, "alice 1")
    neighbour = await workspace_container(alice, docker_client, "alice 2")
    stranger = await workspace_container(bob, docker_client, "bob")
    start_listener(target)
    host = address_of(target)
    assert await asyncio.to_thread(probe, neighbour, host, "tcp") == "open hello"
    assert await asyncio.to_thread(probe, neighbour, host, "udp") == "open pong"
    assert await asyncio.to_thread(probe, target, address_of(neighbour), "tcp", 7681) != BLOCKED
    for proto in ("tcp", "udp"):
        assert await asyncio.to_thread(probe, stranger, host, proto) == BLOCKED

    # A restarted container may get another address: the rules follow it through ensure.
    await asyncio.to_thread(neighbour.stop, timeout=1)
    workspace_id = neighbour.labels["org.jupyter.popebot-code.workspace-id"]
    assert (await alice.call("POST", f"{workspace_id}/ensure"))[1]["status"] == "started"
    assert await asyncio.to_thread(probe, neighbour, host, "tcp") == "open hello"


# -- egress: the host and link-local --------------------------------------------------------


@pytest.fixture
def gateway(docker_client: docker.DockerClient) -> str:
    """The test network's gateway; the network is made as the server makes it when missing."""
    found = [n for n in docker_client.networks.list(names=[TEST_NETWORK]) if n.name == TEST_NETWORK]
    network = (
        found[0]
        if found
        else docker_client.networks.create(
            TEST_NETWORK, driver="bridge", options={ICC_OPTION: "false"}
        )
    )
    network.reload()
    return str(network.attrs["IPAM"]["Config"][0]["Gateway"])


@pytest.fixture
def gateway_listener(gateway: str) -> Iterator[str]:
    """A TCP listener of the test's own on the network's gateway (the Docker host)."""
    server = socket.socket()
    server.bind((gateway, 0))
    server.listen()
    server.settimeout(0.2)
    yield f"{gateway}:{server.getsockname()[1]}"
    server.close()


async def test_a_workspace_cannot_reach_the_docker_host(
    api: Api, docker_client: docker.DockerClient, gateway_listener: str
) -> None:
    container = await workspace_container(api, docker_client, "egress")
    host, port = gateway_listener.split(":")
    assert await asyncio.to_thread(probe, container, host, "tcp", int(port)) == BLOCKED
    assert await asyncio.to_thread(probe, container, host, "udp", int(port)) == BLOCKED
    # The listener is there: the host reaches it.
    socket.create_connection((host, int(port)), timeout=2).close()
    # Name resolution (Docker's DNS inside the container) still works.
    result = container.exec_run(["getent", "hosts", container.name])
    assert result.exit_code == 0, result.output


async def test_an_allowed_git_server_on_the_host_still_serves_clones(
    api: Api, docker_client: docker.DockerClient, git_server: GitServer
) -> None:
    # conftest allows exactly the git daemon's gateway:port (NetworkPolicy.allowed_destinations).
    workspace = await api.create(name="cloned", repo=git_server.url, branch=git_server.branch)
    container = docker_client.containers.get(workspace["container_name"])
    deadline = time.monotonic() + 60
    while True:
        result = container.exec_run(["cat", "/home/coder/workspace/FEATURE.txt"], user="coder")
        if result.exit_code == 0:
            break
        assert time.monotonic() < deadline, "the clone did not arrive"
        await asyncio.sleep(0.5)
    assert result.output.decode().strip() == git_server.feature_text
    # Another port on the same address stays closed to the workspace.
    host = git_server.base_url.removeprefix("git://").split(":")[0]
    assert await asyncio.to_thread(probe, container, host, "tcp", 1) == BLOCKED


LINK_LOCAL_ADDRESS = "169.254.77.1"


@pytest.fixture
def link_local_listener() -> Iterator[str]:
    """A listener on a link-local address the host routes to (like a metadata service).

    It lives in a network namespace of its own joined to the host by a veth pair, so traffic
    from a workspace is forwarded to it, exactly as to 169.254.169.254 on a cloud machine.
    """
    tag = uuid.uuid4().hex[:6]
    netns, host_end, far_end = f"popebot-ll-{tag}", f"pbll{tag}", f"pbllx{tag}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, timeout=10)

    ip("netns", "add", netns)
    try:
        ip("link", "add", host_end, "type", "veth", "peer", "name", far_end)
        ip("link", "set", far_end, "netns", netns)
        ip("addr", "add", "169.254.77.2/24", "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("-n", netns, "addr", "add", f"{LINK_LOCAL_ADDRESS}/24", "dev", far_end)
        ip("-n", netns, "link", "set", far_end, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "route", "add", "default", "via", "169.254.77.2")
        listener = subprocess.Popen(
            ["ip", "netns", "exec", netns, "python3", "-c", LISTENER],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(LINK_LOCAL_ADDRESS)
            yield LINK_LOCAL_ADDRESS
        finally:
            listener.terminate()
            listener.wait(timeout=10)
    finally:
        subprocess.run(["ip", "link", "del", host_end], check=False, timeout=10)
        ip("netns", "del", netns)


async def test_a_workspace_cannot_reach_link_local_addresses(
    api: Api, docker_client: docker.DockerClient, link_local_listener: str
) -> None:
    container = await workspace_container(api, docker_client, "metadata")
    assert await asyncio.to_thread(probe, container, link_local_listener, "tcp") == BLOCKED
    assert await asyncio.to_thread(probe, container, link_local_listener, "udp") == BLOCKED


# -- rules: installed once, kept, removed ---------------------------------------------------------


def iptables_rules() -> list[str]:
    done = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


async def test_rules_are_installed_at_start_up_once_and_removed_on_request(
    jp_serverapp: Any, service: Any, docker_client: docker.DockerClient
) -> None:
    policy = jp_serverapp.web_app.settings["jupyter_popebot_code"].network_policy
    await policy.install()
    await policy.install()  # idempotent: no second jump
    network = docker_client.networks.get(TEST_NETWORK)
    short = network.id[:12]
    rules = iptables_rules()
    assert rules.count(f"-A DOCKER-USER -i br-{short} -j POPEBOT-FWD-{short}") == 1
    assert rules.count(f"-A INPUT -i br-{short} -j POPEBOT-IN-{short}") == 1
    assert f"-N POPEBOT-FWD-{short}" in rules

    await policy.uninstall()
    assert not [line for line in iptables_rules() if short in line and "POPEBOT" in line]
    await policy.install()  # as the server left it: rules stay while workspaces run
    assert IptablesFirewall().installed_networks() >= {short}


def test_the_command_line_installs_and_removes_the_rules(
    docker_client: docker.DockerClient, gateway: str
) -> None:
    network = docker_client.networks.get(TEST_NETWORK)
    short = network.id[:12]
    command = [sys.executable, "-m", "jupyter_popebot_code.network.command"]
    options = [
        f"--ContainerManager.network={TEST_NETWORK}",
        f"--NetworkPolicy.allowed_destinations={json.dumps([gateway + ':9'])}",
    ]
    done = subprocess.run([*command, "install", *options], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (
        f"-A POPEBOT-IN-{short} -d {gateway}/32 -p tcp -m tcp --dport 9 -j RETURN"
        in iptables_rules()
    )
    done = subprocess.run([*command, "remove", *options], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not [line for line in iptables_rules() if f"POPEBOT-IN-{short}" in line]
    bad = [*options, "--NetworkPolicy.blocked_networks=['10.0.0.1/8']"]
    done = subprocess.run([*command, "install", *bad], capture_output=True, text=True)
    assert done.returncode != 0
    assert "10.0.0.1/8" in done.stderr


# -- a network made before isolation, and a firewall that cannot be written ----------------------


@pytest.fixture
def network_with_icc_on(docker_client: docker.DockerClient) -> Iterator[Any]:
    """The test network as an older version made it: inter-container traffic on."""
    for network in docker_client.networks.list(names=[TEST_NETWORK]):
        if network.name == TEST_NETWORK:
            network.remove()  # empty: every test removes its containers
    # Internal, as every network of the suite (no route out); only icc differs.
    network = docker_client.networks.create(TEST_NETWORK, driver="bridge", internal=True)
    yield network
    network.reload()
    if not network.containers:
        network.remove()
    ensure_internal_network(docker_client)  # what later tests expect


@pytest.mark.parametrize("server_settings", [{"NetworkPolicy": {"firewall": "off"}}])
async def test_an_open_network_without_a_firewall_is_refused(
    network_with_icc_on: Any, api: Api, docker_client: docker.DockerClient, service: Any
) -> None:
    code, reply = await api.call("POST", body={"name": "open", "repo": "", "branch": ""})
    assert code == 500
    assert f"Network '{TEST_NETWORK}' lets containers talk to each other" in reply["message"]
    assert "docker network rm" in reply["message"]
    label = f"org.jupyter.popebot-code.store={service.store.store_id}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert (await api.call("GET"))[1] == {"workspaces": []}


@pytest.mark.parametrize("server_settings", [two_owners])
async def test_an_open_network_is_still_isolated_by_the_firewall(
    network_with_icc_on: Any,
    api: Api,
    docker_client: docker.DockerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = await workspace_container(api.as_user("alice"), docker_client, "alice")
    stranger = await workspace_container(api.as_user("bob"), docker_client, "bob")
    start_listener(target)
    assert await asyncio.to_thread(probe, stranger, address_of(target), "tcp") == BLOCKED
    assert await asyncio.to_thread(probe, stranger, address_of(target), "udp") == BLOCKED
    assert "was made with inter-container traffic on" in caplog.text


@pytest.mark.parametrize(
    "server_settings",
    [{"NetworkPolicy": {"firewall": "iptables", "iptables_command": "/nonexistent/iptables"}}],
)
async def test_a_firewall_that_cannot_be_written_refuses_workspaces(
    api: Api, docker_client: docker.DockerClient, service: Any
) -> None:
    code, reply = await api.call("POST", body={"name": "unfenced", "repo": "", "branch": ""})
    assert code == 500
    assert reply["message"].startswith("Cannot enforce the workspace firewall: ")
    assert (
        "/nonexistent/iptables and /nonexistent/iptables-restore are not on PATH"
        in (reply["message"])
    )
    label = f"org.jupyter.popebot-code.store={service.store.store_id}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []


# -- a registry named in blocked_destinations -----------------------------------------------------


@pytest.fixture
def server_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """This module's servers; with `registry_listener` the gateway is allowed but that port not."""
    if "registry_listener" not in request.fixturenames:
        return {}
    gateway: str = request.getfixturevalue("gateway")
    registry: str = request.getfixturevalue("registry_listener")
    return {
        "NetworkPolicy": {"allowed_destinations": [gateway], "blocked_destinations": [registry]}
    }


@pytest.fixture
def registry_listener(gateway: str) -> Iterator[str]:
    """A listener on the gateway standing for an image registry the engine pulls from."""
    server = socket.socket()
    server.bind((gateway, 0))
    server.listen()
    yield f"{gateway}:{server.getsockname()[1]}"
    server.close()


async def test_a_blocked_destination_is_rejected_even_where_everything_is_allowed(
    api: Api,
    docker_client: docker.DockerClient,
    registry_listener: str,
    gateway_listener: str,
) -> None:
    container = await workspace_container(api, docker_client, "registry")
    host, port = registry_listener.split(":")
    assert await asyncio.to_thread(probe, container, host, "tcp", int(port)) == BLOCKED
    assert await asyncio.to_thread(probe, container, host, "udp", int(port)) == BLOCKED
    # The rest of the host is allowed here: another port on it takes the connection.
    other_host, other_port = gateway_listener.split(":")
    answer = await asyncio.to_thread(probe, container, other_host, "tcp", int(other_port))
    assert not answer.startswith("error"), answer  # blocked would be "error 113"
