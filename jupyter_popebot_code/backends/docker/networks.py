"""A network of its own for each workspace container, with a subnet taken from one pool.

Docker's embedded DNS (127.0.0.11) answers every container's name, and reverse (PTR) lookups
of its address, to any container on the same network: on one shared network a workspace could
list every other workspace's id with `getent hosts <address>` over the subnet. On a network of
its own it knows only itself (and its gateway, the host).

Networks are bridges named `<container>-net`, labelled like the workspace's container and
volume, with a subnet of `subnet_prefix` bits taken from `pool`: Docker's default address pools
give only about 31 networks, a /16 pool of /28 subnets gives 4,096. The firewall
(`network/policy.py`) covers the whole pool with one pair of chains, so a new network needs no
new rule and the host's firewall can be installed once, before any workspace exists.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Collection
from typing import Any

import docker
import docker.errors
from traitlets import Bool, Int, Unicode, validate
from traitlets.config import LoggingConfigurable

from ...errors import ContainerError, NetworkPoolExhausted

NETWORK_SUFFIX = "-net"
# Networks made by another server between our look and our create take a subnet we chose too:
# Docker refuses the overlap, and we look again, a bounded number of times.
_ALLOCATION_TRIES = 5


def own_network(container_name: str) -> str:
    """The name of a workspace container's own network."""
    return container_name + NETWORK_SUFFIX


def address_on(networks: dict[str, Any], container_name: str, shared: str) -> str | None:
    """A workspace's address: on its own network, else (made before) on the shared one."""
    for name in (own_network(container_name), shared):
        address = (networks.get(name) or {}).get("IPAddress")
        if address:
            return str(address)
    return None


def network_exists(client: docker.DockerClient, name: str) -> bool:
    """Whether a network of exactly this name exists (Docker's name filter matches substrings)."""
    return find_network(client, name) is not None


def find_network(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    """The listing entry (Id, Options, IPAM, ...) of the network of exactly this name."""
    for net in client.networks.list(names=[name]):
        if net.name == name:
            return net.attrs  # type: ignore[no-any-return]
    return None


def ensure_shared_network(
    client: docker.DockerClient, name: str, options: dict[str, str], labels: dict[str, str]
) -> tuple[dict[str, Any], bool]:
    """The shared network's attributes, made as a bridge when missing; and whether it was made."""
    attrs = find_network(client, name)
    if attrs is not None:
        return attrs, False
    try:
        client.networks.create(
            name, driver="bridge", options=options or None, labels=labels, check_duplicate=True
        )
    except docker.errors.APIError as err:
        # Another server may have created it in the meantime.
        if not network_exists(client, name):
            raise ContainerError(f"Cannot create network {name!r}: {err}") from err
    attrs = find_network(client, name)
    if attrs is None:
        raise ContainerError(f"Network {name!r} vanished after its creation.")
    return attrs, True


def parse_pool(text: str) -> ipaddress.IPv4Network:
    try:
        pool = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as err:
        raise ValueError(f"{text!r} is not an IPv4 network in CIDR form: {err}") from None
    if not isinstance(pool, ipaddress.IPv4Network):
        raise ValueError(f"{text!r}: the pool must be IPv4 (the firewall rules are IPv4 only)")
    return pool


class WorkspaceNetworks(LoggingConfigurable):
    """Creates, finds and removes each workspace's own bridge network, subnets from a pool."""

    pool = Unicode(
        "10.213.0.0/16",
        help=(
            "IPv4 range (CIDR) from which each workspace's own network takes its subnet of "
            "subnet_prefix bits, while NetworkPolicy.isolate_workspaces gives each workspace a "
            "network of its own: the default /16 holds 4,096 workspaces of /28. Choose a range "
            "that neither your LAN, nor the host's routes, nor Docker's default-address-pools "
            "use (subnets that other networks already take are skipped). The firewall covers "
            "the whole range, so change it only with the firewall reinstalled. When every "
            "subnet is taken, creating a workspace answers 429 until one is deleted."
        ),
    ).tag(config=True)

    subnet_prefix = Int(
        28,
        min=16,
        max=29,
        help=(
            "Prefix length of each workspace network's subnet, taken from pool: 28 gives 16 "
            "addresses (the gateway, the workspace and room to spare), 29 gives 8 and twice as "
            "many networks."
        ),
    ).tag(config=True)

    internal = Bool(
        False,
        help=(
            "Make each workspace's own network internal: its workspace reaches no address "
            "beyond the Docker host (no package registry, no git host except one the host "
            "serves and NetworkPolicy.allowed_destinations lets through)."
        ),
    ).tag(config=True)

    @validate("pool")
    def _check_pool(self, proposal: Any) -> str:
        return str(parse_pool(proposal["value"]))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # One allocation at a time in this process; other processes are caught by Docker.
        self._lock = threading.Lock()

    @property
    def network(self) -> ipaddress.IPv4Network:
        return parse_pool(self.pool)

    def capacity(self) -> int:
        """How many workspace networks the pool holds."""
        return 1 << max(0, self.subnet_prefix - self.network.prefixlen)

    # -- on a Docker thread ----------------------------------------------------------------

    def ensure(
        self,
        client: docker.DockerClient,
        container_name: str,
        labels: dict[str, str],
        options: dict[str, str],
    ) -> str:
        """The workspace's own network, created with a free subnet of the pool when missing."""
        name = own_network(container_name)
        with self._lock:
            if _find(client, name) is not None:
                return name
            failure: Exception | None = None
            for _ in range(_ALLOCATION_TRIES):
                subnet = self._free_subnet(client)
                gateway = str(next(subnet.hosts()))
                ipam = docker.types.IPAMConfig(
                    pool_configs=[docker.types.IPAMPool(subnet=str(subnet), gateway=gateway)]
                )
                try:
                    client.api.create_network(
                        name,
                        driver="bridge",
                        options=options or None,
                        ipam=ipam,
                        internal=self.internal,
                        labels=labels,
                        check_duplicate=True,
                    )
                    return name
                except docker.errors.APIError as err:
                    if _find(client, name) is not None:
                        return name  # another server made it meanwhile
                    failure = err  # most likely the subnet was taken meanwhile: look again
            raise ContainerError(f"Cannot create network {name}: {failure}")

    def _free_subnet(self, client: docker.DockerClient) -> ipaddress.IPv4Network:
        """The lowest subnet of the pool that no Docker network (of any kind) overlaps."""
        pool = self.network
        size = 1 << (32 - self.subnet_prefix)
        base = int(pool.network_address)
        count = self.capacity()
        taken: set[int] = set()
        for net in client.api.networks():
            for config in (net.get("IPAM") or {}).get("Config") or []:
                try:
                    used = ipaddress.ip_network(config.get("Subnet", ""), strict=False)
                except ValueError:
                    continue
                if not isinstance(used, ipaddress.IPv4Network) or not used.overlaps(pool):
                    continue
                first = max(int(used.network_address), base) - base
                last = min(int(used.broadcast_address), int(pool.broadcast_address)) - base
                taken.update(range(first // size, last // size + 1))
        for index in range(count):
            if index not in taken:
                return ipaddress.IPv4Network((base + index * size, self.subnet_prefix))
        raise NetworkPoolExhausted(
            f"No free workspace network: all {count} subnets of /{self.subnet_prefix} in "
            f"WorkspaceNetworks.pool {pool} are in use. Delete workspaces that are no longer "
            "needed, or ask the administrator for a larger pool."
        )

    def attach(
        self,
        client: docker.DockerClient,
        container_name: str,
        shared: str,
        options: dict[str, str],
        label_keys: Collection[str],
    ) -> None:
        """Move a stopped container made on the shared network onto its own (before its start).

        The network gets those of the container's labels that a new one gets (`label_keys`).
        """
        try:
            attrs = client.api.inspect_container(container_name)
        except docker.errors.NotFound:
            return  # the start finds it missing and recreates it
        networks = attrs["NetworkSettings"].get("Networks") or {}
        name = own_network(container_name)
        if name not in networks:
            labels = {
                key: value
                for key, value in (attrs["Config"].get("Labels") or {}).items()
                if key in label_keys
            }
            self.ensure(client, container_name, labels, options)
            client.api.connect_container_to_network(container_name, name)
            self.log.info("Workspace %s moved to a network of its own (%s)", container_name, name)
        if shared in networks:
            client.api.disconnect_container_from_network(container_name, shared, force=True)

    def remove(self, client: docker.DockerClient, container_name: str) -> None:
        """Remove the workspace's own network once its container is gone (absent is fine)."""
        name = own_network(container_name)
        attrs = _find(client, name)
        if attrs is None:
            return
        try:
            client.api.remove_network(attrs["Id"])
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            # Something else joined it: the orphan sweep at the next start-up tries again.
            self.log.warning("Network %s not removed: %s", name, err.explanation or err)

    def orphans(self, client: docker.DockerClient, label: str) -> dict[str, dict[str, str]]:
        """Container name -> labels of every workspace network carrying `label` (key=value)."""
        found = {}
        for net in client.api.networks(filters={"label": label}):
            if net["Name"].endswith(NETWORK_SUFFIX):
                found[net["Name"].removesuffix(NETWORK_SUFFIX)] = dict(net.get("Labels") or {})
        return found


def _find(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    """The listing entry of the network of exactly this name (the filter matches substrings)."""
    for net in client.api.networks(names=[name]):
        if net["Name"] == name:
            return dict(net)
    return None
