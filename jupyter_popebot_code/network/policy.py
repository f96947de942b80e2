"""Network isolation and egress policy of workspace containers, enforced with iptables.

Docker keeps containers of one bridge from talking to each other when the network is created
with `enable_icc=false`. On top of that the server keeps two chains of its own per workspace
network, and jumps to them for traffic that enters from the network's bridge:

- `POPEBOT-FWD-<id>`, from DOCKER-USER (forwarded traffic, evaluated before Docker's own rules):
  lets allowed destinations through, lets listed ttyd clients (the server's container) reach any
  TCP port of a workspace (ttyd, previews) and (as an option)
  one owner's workspaces reach each other, rejects every other container-to-container packet and
  every blocked network (link-local 169.254.0.0/16 by default);
- `POPEBOT-IN-<id>`, from INPUT (traffic to the host's own addresses, the gateway included):
  answers to connections the host opened (the relay's to ttyd) and allowed destinations pass,
  everything else is rejected.

The rule text and the call that applies it are in `firewall.py`; this module holds the options
and decides when to apply them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import threading
from typing import Any

import docker
from traitlets import Bool, Enum, Unicode, validate
from traitlets.config import LoggingConfigurable

from ..backends.docker.manager import MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL, ContainerManager
from ..backends.docker.networks import NETWORK_SUFFIX, address_on
from ..backends.swarm.manager import SwarmContainerManager
from ..config_traits import List
from ..errors import ContainerError, FirewallError
from .firewall import (
    ICC_OPTION,
    LINK_LOCAL,
    IptablesFirewall,
    Members,
    NetworkView,
    PolicySettings,
    firewall_script,
    firewall_unavailable_reason,
    network_view,
    parse_destination,
    parse_network,
)


class NetworkPolicy(LoggingConfigurable):
    """Keeps workspaces of different owners apart and away from the host, with iptables."""

    isolate_workspaces = Bool(
        True,
        help=(
            "Keep workspace containers from opening any connection to each other (the network is "
            "created with inter-container traffic off, and the firewall rejects it). Only the "
            "server reaches each container's ttyd."
        ),
    ).tag(config=True)

    same_owner_reachable = Bool(
        False,
        help=(
            "Let the workspaces of one owner reach each other (any port) while isolate_workspaces "
            "keeps owners apart. Needs the firewall: the rules name the containers' addresses and "
            "are rewritten whenever the server starts a container."
        ),
    ).tag(config=True)

    block_host = Bool(
        True,
        help=(
            "Reject connections from workspaces to the Docker host itself: the network's gateway "
            "and every other address of the host, any port (Jupyter, databases, the engine). "
            "allowed_destinations still pass."
        ),
    ).tag(config=True)

    blocked_networks = List(
        Unicode(),
        default_value=[LINK_LOCAL],
        help=(
            "IPv4 networks (CIDR) workspaces may not reach. The default, link-local "
            "169.254.0.0/16, holds cloud metadata services (169.254.169.254); add private ranges "
            "(10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) to keep workspaces off your LAN."
        ),
    ).tag(config=True)

    allowed_destinations = List(
        Unicode(),
        help=(
            "Destinations workspaces may reach even when blocked_networks or block_host cover "
            "them: 'ADDRESS', 'CIDR', 'ADDRESS:PORT' or 'CIDR:PORT' (a port opens TCP and UDP), "
            "e.g. a git server on the host '172.18.0.1:9418'."
        ),
    ).tag(config=True)

    blocked_destinations = List(
        Unicode(),
        help=(
            "Destinations workspaces may never reach, whatever allowed_destinations says: "
            "'ADDRESS', 'CIDR', 'ADDRESS:PORT' or 'CIDR:PORT' (a port blocks TCP and UDP). List "
            "the image registry your nodes pull from (e.g. '10.0.0.5:5000') so no workspace can "
            "read or change the images; scripts/swarm-server.sh sets it from REGISTRY_ADDRESS."
        ),
    ).tag(config=True)

    ttyd_clients = List(
        Unicode(),
        help=(
            "Containers on the workspace network, besides workspaces, that may open TCP "
            "connections to every workspace: ttyd (7681) and the ports previews reach. The "
            "Jupyter server's own container when it runs on the network (connect_via=name). A "
            "server on the host needs no entry."
        ),
    ).tag(config=True)

    firewall = Enum(
        ["auto", "iptables", "off"],
        default_value="auto",
        help=(
            "Who enforces the rules. 'iptables': this server, which must run as root in the "
            "Docker host's network namespace; it refuses to start workspaces when it cannot. "
            "'auto': 'iptables' when that is possible, else 'off'. 'off': nobody here (you "
            "manage the host firewall yourself, or run `python -m "
            "jupyter_popebot_code.network.command install` as root on the host); "
            "logged as a warning."
        ),
    ).tag(config=True)

    iptables_command = Unicode(
        "iptables",
        help="The iptables program (its '-restore' companion must sit beside it).",
    ).tag(config=True)

    @validate("blocked_networks")
    def _check_blocked(self, proposal: Any) -> list[str]:
        for text in proposal["value"]:
            parse_network(text)
        return list(proposal["value"])

    @validate("allowed_destinations", "blocked_destinations")
    def _check_allowed(self, proposal: Any) -> list[str]:
        for text in proposal["value"]:
            parse_destination(text)
        return list(proposal["value"])

    def __init__(self, containers: ContainerManager | SwarmContainerManager, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.containers = containers
        self.firewall_impl = IptablesFirewall(self.iptables_command)
        # iptables calls never overlap, and the chains follow one network id at a time.
        self._lock = threading.Lock()
        self._enforcing: bool | None = None  # decided on the first look at the network
        self._installed_id: str | None = None
        self._warned_icc = False
        if self.isolate_workspaces:
            containers.network_options = {ICC_OPTION: "false"}
            # A network per workspace: Docker's DNS in one names no other (issue 17).
            containers.network_per_workspace = True
        containers.network_hook = self._network_seen

    @property
    def settings(self) -> PolicySettings:
        return PolicySettings(
            isolate=self.isolate_workspaces,
            same_owner=self.same_owner_reachable,
            block_host=self.block_host,
            blocked=tuple(parse_network(text) for text in self.blocked_networks),
            allowed=tuple(parse_destination(text) for text in self.allowed_destinations),
            denied=tuple(parse_destination(text) for text in self.blocked_destinations),
        )

    @property
    def enforcing(self) -> bool:
        """Whether this server writes the rules (known once it has looked at the network)."""
        return bool(self._enforcing)

    # -- the server's entry points (async: nothing blocks the loop) ------------------------

    async def install(self) -> None:
        """Make the network when missing, check it, and write its rules; run at start-up."""
        await self.containers.run_with_client(self._install_sync)

    async def refresh(self) -> None:
        """Rewrite the rules from the containers now on the network (after a container starts).

        Only rules that name addresses change, so without same_owner_reachable or
        ttyd_clients there is nothing to do.
        """
        if self._enforcing and self._names_addresses:
            await self.containers.run_with_client(self._apply_sync)

    @property
    def _names_addresses(self) -> bool:
        return self.isolate_workspaces and bool(self.same_owner_reachable or self.ttyd_clients)

    async def uninstall(self) -> None:
        """Remove the network's chains and the jumps to them (the network itself stays)."""

        def remove(client: docker.DockerClient) -> None:
            network_id = client.api.inspect_network(self.containers.network)["Id"]
            with self._lock:
                self.firewall_impl.remove(network_id)
                self._installed_id = None
            self.log.info("Removed the firewall rules of network %s", self.containers.network)

        await self.containers.run_with_client(remove)

    # -- on a Docker thread -----------------------------------------------------------------

    def _install_sync(self, client: docker.DockerClient) -> None:
        self.containers._ensure_network(client)  # calls _network_seen, which applies the rules
        if self._enforcing:
            listed = client.api.networks()
            existing = {net["Id"] for net in listed}
            with self._lock:
                stale = self.firewall_impl.remove_stale(existing)
            if stale:
                self.log.info("Removed firewall chains of removed networks: %s", ", ".join(stale))
            pool = self._workspace_pool()
            if pool is not None:
                self._check_pool(listed, pool)

    def _workspace_pool(self) -> ipaddress.IPv4Network | None:
        """The pool of the workspaces' own networks; None while they share one network."""
        containers = self.containers
        if isinstance(containers, ContainerManager) and containers.network_per_workspace:
            return containers.workspace_networks.network
        return None

    def _check_pool(self, listed: list[dict[str, Any]], pool: ipaddress.IPv4Network) -> None:
        """Workspace networks made from another pool are outside the rules: say so loudly."""
        outside = []
        for net in listed:
            if (net.get("Labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY:
                continue
            if not net["Name"].endswith(NETWORK_SUFFIX):
                continue
            for config in (net.get("IPAM") or {}).get("Config") or []:
                subnet = ipaddress.ip_network(config.get("Subnet", "::/0"), strict=False)
                if isinstance(subnet, ipaddress.IPv4Network) and not subnet.subnet_of(pool):
                    outside.append(net["Name"])
        if outside:
            self.log.error(
                "Workspace networks outside WorkspaceNetworks.pool %s are not covered by the "
                "firewall: %s. Delete those workspaces, or set the pool back.",
                pool,
                ", ".join(sorted(outside)),
            )

    def _network_seen(
        self, client: docker.DockerClient, attrs: dict[str, Any], created: bool
    ) -> None:
        """Before each container is created: check the network, follow a new bridge."""
        view = self._view(attrs)
        enforcing = self._decide(view)
        icc_on = (attrs.get("Options") or {}).get(ICC_OPTION, "true") != "false"
        if self.isolate_workspaces and icc_on:
            if not enforcing:
                raise ContainerError(
                    f"Network {self.containers.network!r} lets containers talk to each other "
                    f"(it was made without {ICC_OPTION}=false) and no firewall here makes up "
                    "for it. Remove it once no workspace uses it (`docker network rm "
                    f"{self.containers.network}`; the server makes it again), or set "
                    "NetworkPolicy.isolate_workspaces = False."
                )
            if not self._warned_icc:
                self._warned_icc = True
                self.log.warning(
                    "Network %s was made with inter-container traffic on: only the firewall "
                    "rules keep workspaces apart. Remove it once no workspace uses it, so "
                    "Docker does too.",
                    self.containers.network,
                )
        if enforcing and (
            created or view.network_id != self._installed_id or self._names_addresses
        ):
            # Addresses of stopped containers leave the rules before a new container may get one.
            self._apply(view, client)

    def _apply_sync(self, client: docker.DockerClient) -> None:
        view = self._view(client.api.inspect_network(self.containers.network))
        if self._decide(view):
            self._apply(view, client)

    def _apply(self, view: NetworkView, client: docker.DockerClient) -> None:
        script = firewall_script(view, self._members(client), self.settings)
        with self._lock:
            if self._installed_id and self._installed_id != view.network_id:
                # The network was removed and made again: the old bridge's chains go too.
                self.firewall_impl.remove(self._installed_id)
            self.firewall_impl.apply(view, script)
            if self._installed_id != view.network_id:
                self.log.info(
                    "Workspace firewall installed for network %s (bridge %s): chains %s, %s",
                    self.containers.network,
                    view.bridge,
                    view.forward_chain,
                    view.input_chain,
                )
            self._installed_id = view.network_id

    def _view(self, attrs: dict[str, Any]) -> NetworkView:
        """The shared network's view, with the pool of the workspaces' own networks."""
        view = network_view(attrs)
        pool = self._workspace_pool()
        return view if pool is None else dataclasses.replace(view, pool=pool)

    def _decide(self, view: NetworkView) -> bool:
        """Whether this server enforces the rules; refuses when 'iptables' cannot be honoured."""
        if self._enforcing is not None:
            return self._enforcing
        if self.firewall == "off":
            self._enforcing = False
            self.log.warning(
                "Workspace firewall is OFF (NetworkPolicy.firewall = 'off'): workspaces reach "
                "the Docker host and %s unless you enforce that yourself.",
                ", ".join(self.blocked_networks) or "any network",
            )
            return False
        reason = firewall_unavailable_reason(self.iptables_command, view.bridge)
        if reason is None:
            self._enforcing = True
            return True
        if self.firewall == "iptables":
            raise FirewallError(
                f"Cannot enforce the workspace firewall: {reason}. Run the server as root on the "
                "Docker host, or set NetworkPolicy.firewall = 'off' and enforce it from the host "
                "(python -m jupyter_popebot_code.network.command install)."
            )
        self._enforcing = False
        self.log.warning(
            "Workspace firewall is OFF (NetworkPolicy.firewall = 'auto'): %s. Workspaces reach "
            "the Docker host and %s; run `python -m jupyter_popebot_code.network.command "
            "install` as root on the host to enforce the policy.",
            reason,
            ", ".join(self.blocked_networks) or "any network",
        )
        return False

    def _members(self, client: docker.DockerClient) -> Members:
        network = self.containers.network
        owners: dict[str, list[str]] = {}
        # Workspaces on their own networks and, made before those, on the shared one.
        found = client.api.containers(filters={"label": f"{MANAGED_BY_LABEL}={MANAGED_BY}"})
        for summary in found:
            networks = (summary.get("NetworkSettings") or {}).get("Networks") or {}
            address = _ipv4(address_on(networks, summary["Names"][0].lstrip("/"), network))
            owner = (summary.get("Labels") or {}).get(OWNER_LABEL)
            if address and owner is not None:
                owners.setdefault(owner, []).append(address)
        clients = []
        for name in self.ttyd_clients:
            try:
                attrs = client.api.inspect_container(name)
            except docker.errors.NotFound:
                self.log.warning("NetworkPolicy.ttyd_clients: no container %r", name)
                continue
            address = _address_on(attrs, network)
            if address:
                clients.append(address)
        return Members(tuple(clients), {k: tuple(sorted(v)) for k, v in owners.items()})


def _address_on(summary: dict[str, Any], network: str) -> str | None:
    networks = (summary.get("NetworkSettings") or {}).get("Networks") or {}
    return _ipv4((networks.get(network) or {}).get("IPAddress"))


def _ipv4(address: str | None) -> str | None:
    """Checked before it reaches iptables' arguments."""
    return str(ipaddress.IPv4Address(address)) if address else None
