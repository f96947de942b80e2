"""How a workspace network's subnet is taken from the pool; no Docker needed.

The networks themselves (DNS, routing, removal) are tested on the engine in
tests/test_workspace_networks.py.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from jupyter_popebot_code.backends.docker.networks import WorkspaceNetworks
from jupyter_popebot_code.errors import NetworkPoolExhausted


class Listing:
    """Stands in for the SDK client: `client.api.networks()` answers these subnets."""

    def __init__(self, *subnets: str) -> None:
        self.api = self
        self.subnets = subnets

    def networks(self, **_: Any) -> list[dict[str, Any]]:
        return [{"IPAM": {"Config": [{"Subnet": subnet}]}} for subnet in self.subnets]


def free(pool: str, *taken: str, prefix: int = 28) -> str:
    networks = WorkspaceNetworks(pool=pool, subnet_prefix=prefix)
    return str(networks._free_subnet(Listing(*taken)))  # type: ignore[arg-type]


def test_the_lowest_subnet_no_network_overlaps_is_taken() -> None:
    assert free("10.213.0.0/16") == "10.213.0.0/28"
    assert free("10.213.0.0/16", "10.213.0.0/28", "10.213.0.32/28") == "10.213.0.16/28"
    # A bigger network inside the pool, one that covers its start, IPv6, and others are skipped.
    taken = ("10.213.0.0/26", "10.212.0.0/15", "fd00::/64", "172.17.0.0/16")
    assert free("10.213.0.0/16", *taken[:1], *taken[2:]) == "10.213.0.64/28"
    with pytest.raises(NetworkPoolExhausted):
        free("10.213.0.0/16", "10.212.0.0/15")
    assert free("10.213.0.0/24", "10.213.0.0/29", prefix=29) == "10.213.0.8/29"


def test_a_full_pool_says_how_big_it_is_and_what_to_do() -> None:
    with pytest.raises(NetworkPoolExhausted) as caught:
        free("10.213.0.0/27", "10.213.0.0/28", "10.213.0.16/28")
    assert str(caught.value) == (
        "No free workspace network: all 2 subnets of /28 in WorkspaceNetworks.pool "
        "10.213.0.0/27 are in use. Delete workspaces that are no longer needed, or ask the "
        "administrator for a larger pool."
    )


def test_the_pool_is_checked_when_configured() -> None:
    assert WorkspaceNetworks().capacity() == 4096
    assert ipaddress.IPv4Network("10.213.0.0/16") == WorkspaceNetworks().network
    for bad in ("10.213.0.1/16", "fd00::/64", "example"):
        with pytest.raises(ValueError, match=r"pool must be IPv4|not an IPv4 network"):
            WorkspaceNetworks(pool=bad)
