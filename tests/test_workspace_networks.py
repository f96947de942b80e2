"""Each workspace on a network of its own: Docker's DNS inside one names no other (issue 17).

On one shared network, Docker's embedded DNS (127.0.0.11) answers reverse lookups of every
container on it, so `getent hosts <address>` in one workspace gave `code-workspace-<id>.<network>`
of another, and a scan of the subnet listed them all. These tests look from inside a workspace,
as its user, at the addresses of others and at every address of its own subnet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
from typing import Any

import docker
import pytest

from jupyter_popebot_code.network.firewall import ICC_OPTION

from .conftest import TEST_NETWORK, TEST_POOL, Api, HeaderIdentityProvider
from .terminal_client import WsFetch, terminal

# Reverse lookups of many addresses at once, bounded in time: one line "address name" each
# ("-" when nothing answers a name).
REVERSE_LOOKUPS = """
import concurrent.futures, socket, sys
socket.setdefaulttimeout(5)
def name(address):
    try:
        return socket.gethostbyaddr(address)[0]
    except OSError:
        return "-"
with concurrent.futures.ThreadPoolExecutor(32) as pool:
    for address, found in zip(sys.argv[1:], pool.map(name, sys.argv[1:])):
        print(address, found)
"""

SCAN_LIMIT = 32
two_owners = {"ServerApp": {"identity_provider_class": HeaderIdentityProvider}}


def reverse_names(container: Any, addresses: list[str]) -> dict[str, str]:
    """What the workspace's resolver answers for each address, asked as the workspace's user."""
    result = container.exec_run(["python3", "-c", REVERSE_LOOKUPS, *addresses], user="coder")
    assert result.exit_code == 0, result.output
    lines = [line.split(" ", 1) for line in result.output.decode().splitlines()]
    return {address: name for address, name in lines}


def own_network(container: Any) -> tuple[str, dict[str, Any]]:
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    assert len(networks) == 1, networks
    return next(iter(networks.items()))


@pytest.mark.parametrize("server_settings", [two_owners])
async def test_reverse_dns_in_a_workspace_names_no_other_workspace(
    api: Api, docker_client: docker.DockerClient
) -> None:
    alice = await api.as_user("alice").create(name="alice")
    bob = await api.as_user("bob").create(name="bob")
    mine = await api.as_user("bob").create(name="bob 2")
    spy = docker_client.containers.get(bob["container_name"])
    others = [docker_client.containers.get(w["container_name"]) for w in (alice, mine)]
    other_addresses = [own_network(c)[1]["IPAddress"] for c in others]
    network, settings = own_network(spy)
    subnet = ipaddress.ip_network(
        f"{settings['IPAddress']}/{settings['IPPrefixLen']}", strict=False
    )
    # Its subnet (a /28 now; on a shared /16 the workspaces hold the lowest addresses).
    scan = [str(address) for address in itertools.islice(subnet.hosts(), SCAN_LIMIT)]
    names = await asyncio.to_thread(reverse_names, spy, [*other_addresses, *scan])
    # The lookups work: the workspace's own address has its own name (/etc/hosts), and Docker's
    # DNS answers its container name.
    assert bob["id"] in names[settings["IPAddress"]], names
    assert spy.exec_run(["getent", "hosts", spy.name], user="coder").exit_code == 0
    named = {name for name in names.values() if name != "-"}
    assert not [name for name in named if alice["id"] in name or mine["id"] in name], names
    assert not [name for name in named if "code-workspace-" in name and bob["id"] not in name]
    # Its DNS knows itself and nothing else on its network: nobody else is on it.
    assert network == f"{spy.name}-net"
    assert list(docker_client.networks.get(network).attrs["Containers"]) == [spy.id]


async def test_each_workspace_gets_a_network_of_its_own_that_goes_with_it(
    api: Api, docker_client: docker.DockerClient, jp_ws_fetch: WsFetch
) -> None:
    workspace = await api.create(name="own network")
    container = docker_client.containers.get(workspace["container_name"])
    name = own_network(container)[0]
    network = docker_client.networks.get(name)
    subnet = ipaddress.IPv4Network(network.attrs["IPAM"]["Config"][0]["Subnet"])
    assert subnet.subnet_of(ipaddress.IPv4Network(TEST_POOL))
    assert subnet.prefixlen == 28
    assert network.attrs["Options"][ICC_OPTION] == "false"
    assert network.attrs["Internal"] is True  # as configured for the suite
    assert network.attrs["Labels"]["org.jupyter.popebot-code.workspace-id"] == workspace["id"]
    assert TEST_NETWORK not in container.attrs["NetworkSettings"]["Networks"]
    # The server on the host reaches it there.
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("echo own-$((6*7))\r")
        await term.read_until("own-42")
    # Stop, ensure, recreate: the same network; delete: it goes.
    assert (await api.call("POST", f"{workspace['id']}/stop"))[0] == 200
    assert (await api.call("POST", f"{workspace['id']}/ensure"))[1]["status"] == "started"
    container.remove(force=True)
    assert (await api.call("POST", f"{workspace['id']}/ensure"))[1]["status"] == "created"
    assert own_network(docker_client.containers.get(container.name))[0] == name
    assert docker_client.networks.get(name).id == network.id
    assert (await api.call("DELETE", workspace["id"]))[0] == 204
    assert not [n for n in docker_client.networks.list(names=[name]) if n.name == name]


def small_pool() -> str:
    """The last two /28 subnets of the suite's pool (the other tests take the lowest first)."""
    pool = ipaddress.IPv4Network(TEST_POOL)
    return str(list(pool.subnets(new_prefix=27))[-1])


@pytest.mark.parametrize("server_settings", [{"WorkspaceNetworks": {"pool": small_pool()}}])
async def test_an_exhausted_pool_refuses_clearly_and_leaves_nothing_behind(
    api: Api, docker_client: docker.DockerClient, service: Any
) -> None:
    first = await api.create(name="first")
    await api.create(name="second")
    code, reply = await api.call("POST", body={"name": "third", "repo": "", "branch": ""})
    assert code == 429, reply
    assert reply["message"].startswith("No free workspace network: all 2 subnets of /28")
    assert small_pool() in reply["message"]
    label = f"org.jupyter.popebot-code.store={service.store.store_id}"
    assert len(docker_client.containers.list(all=True, filters={"label": label})) == 2
    assert len(docker_client.volumes.list(filters={"label": label})) == 2
    assert len(docker_client.networks.list(filters={"label": label})) == 2
    listed = (await api.call("GET"))[1]["workspaces"]
    assert sorted(w["name"] for w in listed) == ["first", "second"]
    # A deleted workspace gives its subnet back.
    assert (await api.call("DELETE", first["id"]))[0] == 204
    await api.create(name="third")


async def test_a_workspace_network_outside_the_pool_is_reported_at_install(
    jp_serverapp: Any,
    service: Any,
    docker_client: docker.DockerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One made before the pool changed: the rules, by pool, do not cover it."""
    outside = docker_client.networks.create(
        f"{TEST_NETWORK}-outside-net",
        internal=True,  # Docker's default pools: not in TEST_POOL
        labels={"org.jupyter.popebot-code.managed-by": "jupyter-popebot-code"},
    )
    try:
        policy = jp_serverapp.web_app.settings["jupyter_popebot_code"].network_policy
        await policy.install()
    finally:
        outside.remove()
    assert "Workspace networks outside WorkspaceNetworks.pool" in caplog.text
    assert f"{TEST_NETWORK}-outside-net" in caplog.text
