"""The rules a swarm's node firewall gets, and the options it refuses; no Docker needed.

What the rules do to traffic is tested on a real swarm in tests/test_swarm.py.
"""

from __future__ import annotations

import ipaddress

import pytest
from traitlets.config import Config

from jupyter_popebot_code.backends.swarm.manager import SwarmContainerManager
from jupyter_popebot_code.errors import FirewallError
from jupyter_popebot_code.network.firewall import PolicySettings, parse_destination
from jupyter_popebot_code.network.swarm_policy import (
    NODE_VIEW,
    SwarmNetworkPolicy,
    node_addresses,
    node_firewall_env,
)

NODES = [
    {"Status": {"Addr": "10.1.0.5"}, "ManagerStatus": {"Addr": "10.1.0.5:2377"}},
    {"Status": {"Addr": "10.1.0.6"}},
    {"Status": {"Addr": "0.0.0.0"}, "ManagerStatus": {"Addr": "10.1.0.7:2377"}},
    {"Status": {"Addr": "fe80::1"}},
    {"Status": {}},
]


def test_node_addresses_are_every_nodes_ipv4_address_once() -> None:
    assert [str(n) for n in node_addresses(NODES)] == ["10.1.0.5/32", "10.1.0.6/32", "10.1.0.7/32"]


def test_the_node_rules_reject_link_local_the_nodes_and_the_node_itself() -> None:
    env = node_firewall_env(PolicySettings(), node_addresses(NODES))
    rules = env["POPEBOT_FIREWALL_RULES"].splitlines()
    fwd, inp = NODE_VIEW.forward_chain, NODE_VIEW.input_chain
    assert fwd == "POPEBOT-FWD-gwbridge"
    for blocked in ("169.254.0.0/16", "10.1.0.5/32", "10.1.0.6/32", "10.1.0.7/32"):
        assert any(r.startswith(f"-A {fwd} -d {blocked} -j REJECT") for r in rules), blocked
    assert f"-A {inp} -j REJECT --reject-with icmp-admin-prohibited" in rules
    # Never a blanket reject of traffic into docker_gwbridge: the routing mesh uses it too.
    assert f"-A {fwd} -o docker_gwbridge -j REJECT --reject-with icmp-admin-prohibited" not in rules
    assert env["POPEBOT_FIREWALL_JUMPS"].splitlines() == [
        f"DOCKER-USER -i docker_gwbridge -j {fwd}",
        f"DOCKER-USER -o docker_gwbridge -j {fwd}",
        f"INPUT -i docker_gwbridge -j {inp}",
    ]
    assert env["POPEBOT_FIREWALL_CHAINS"] == f"{fwd} {inp}"


def test_allowed_destinations_pass_before_the_nodes_are_rejected() -> None:
    settings = PolicySettings(allowed=(parse_destination("10.1.0.6:9418"),))
    rules = node_firewall_env(settings, node_addresses(NODES))["POPEBOT_FIREWALL_RULES"]
    accept = rules.index("-d 10.1.0.6/32 -p tcp --dport 9418 -j ACCEPT")
    assert accept < rules.index("-d 10.1.0.6/32 -j REJECT")


def test_the_registry_is_rejected_before_anything_is_allowed() -> None:
    settings = PolicySettings(
        allowed=(parse_destination("10.2.0.0/16"),),
        denied=(parse_destination("10.2.0.9:5000"),),
    )
    rules = node_firewall_env(settings, [])["POPEBOT_FIREWALL_RULES"]
    fwd, inp = NODE_VIEW.forward_chain, NODE_VIEW.input_chain
    reject = "-j REJECT --reject-with icmp-admin-prohibited"
    for proto in ("tcp", "udp"):
        denied = f"-A {fwd} -i docker_gwbridge -d 10.2.0.9/32 -p {proto} --dport 5000 {reject}"
        assert rules.index(denied) < rules.index("-d 10.2.0.0/16 -j ACCEPT")
        # Also on the node itself (a registry published there), before allowed ones return.
        assert f"-A {inp} -d 10.2.0.9/32 -p {proto} --dport 5000 {reject}" in rules
    # A single engine's policy takes the option: the same rule text for its bridge.
    _, swarm_policy = policy(blocked_destinations=["10.2.0.9:5000"])
    assert swarm_policy.settings.denied == (parse_destination("10.2.0.9:5000"),)


def test_without_block_host_the_nodes_are_not_rejected() -> None:
    settings = PolicySettings(block_host=False)
    rules = node_firewall_env(settings, [ipaddress.IPv4Network("10.1.0.5/32")])
    assert "10.1.0.5" not in rules["POPEBOT_FIREWALL_RULES"]
    assert "169.254.0.0/16" in rules["POPEBOT_FIREWALL_RULES"]


def policy(**options: object) -> tuple[SwarmContainerManager, SwarmNetworkPolicy]:
    config = Config({"NetworkPolicy": options})
    manager = SwarmContainerManager(config=config)
    return manager, SwarmNetworkPolicy(manager, config=config)


def test_isolation_gives_each_workspace_a_network_and_a_guarded_node() -> None:
    manager, _ = policy(node_firewall_image="registry:5000/fw:latest")
    assert manager.network_per_workspace
    assert manager.network_of("code-workspace-abc") == "code-workspace-abc-net"
    assert manager.node_guard is not None


def test_without_isolation_workspaces_share_the_network_and_no_image_means_no_guard() -> None:
    manager, _ = policy(isolate_workspaces=False)
    assert manager.network_of("code-workspace-abc") == manager.network
    assert manager.node_guard is None


def test_a_required_firewall_without_its_image_is_refused() -> None:
    with pytest.raises(FirewallError, match="node_firewall_image"):
        policy(firewall="iptables")


def test_same_owner_reachable_is_refused_on_swarm() -> None:
    with pytest.raises(ValueError, match="same_owner_reachable"):
        policy(same_owner_reachable=True)
