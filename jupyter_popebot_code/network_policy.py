"""Network isolation and egress policy of workspace containers, enforced with iptables.

Docker keeps containers of one bridge from talking to each other when the network is created
with `enable_icc=false`. On top of that the server keeps two chains of its own per workspace
network, and jumps to them for traffic that enters from the network's bridge:

- `POPEBOT-FWD-<id>`, from DOCKER-USER (forwarded traffic, evaluated before Docker's own rules):
  lets allowed destinations through, lets listed ttyd clients reach port 7681 and (as an option)
  one owner's workspaces reach each other, rejects every other container-to-container packet and
  every blocked network (link-local 169.254.0.0/16 by default);
- `POPEBOT-IN-<id>`, from INPUT (traffic to the host's own addresses, the gateway included):
  answers to connections the host opened (the relay's to ttyd) and allowed destinations pass,
  everything else is rejected.

The rule text is made by pure functions (`firewall_script`), so it is checked without root;
`IptablesFirewall` applies it with one atomic `iptables-restore --noflush`.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import docker
from traitlets import Bool, Enum, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from .containers import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    OWNER_LABEL,
    TTYD_PORT,
    ContainerError,
    ContainerManager,
)

FORWARD_CHAIN_PREFIX = "POPEBOT-FWD-"
INPUT_CHAIN_PREFIX = "POPEBOT-IN-"
# ICMP "administratively prohibited": a blocked connect fails at once with "No route to host",
# which tells a blocked destination apart from a closed port ("Connection refused").
REJECT = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]
IPTABLES_TIMEOUT = 30.0
LINK_LOCAL = "169.254.0.0/16"
ICC_OPTION = "com.docker.network.bridge.enable_icc"


class FirewallError(ContainerError):
    """The firewall rules could not be read or written."""


@dataclass(frozen=True)
class Destination:
    """An allowed destination: a network, optionally one port (TCP and UDP)."""

    network: ipaddress.IPv4Network
    port: int | None = None

    def match(self) -> list[list[str]]:
        """iptables match arguments; a port needs one rule per protocol."""
        if self.port is None:
            return [["-d", str(self.network)]]
        return [
            ["-d", str(self.network), "-p", proto, "--dport", str(self.port)]
            for proto in ("tcp", "udp")
        ]


def parse_network(text: str) -> ipaddress.IPv4Network:
    """An IPv4 address or CIDR block, strictly (host bits set is a mistake, not a wish)."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as err:
        raise ValueError(f"{text!r} is not an IPv4 address or network: {err}") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"{text!r}: only IPv4 is enforced (workspace networks have no IPv6)")
    return network


def parse_destination(text: str) -> Destination:
    """'ADDRESS', 'ADDRESS/PREFIX', 'ADDRESS:PORT' or 'ADDRESS/PREFIX:PORT'."""
    where, colon, port_text = text.strip().partition(":")
    port: int | None = None
    if colon:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    return Destination(parse_network(where), port)


@dataclass(frozen=True)
class NetworkView:
    """What the rules need to know about the workspace network."""

    network_id: str
    bridge: str
    subnet: ipaddress.IPv4Network

    @property
    def forward_chain(self) -> str:
        return FORWARD_CHAIN_PREFIX + self.network_id[:12]

    @property
    def input_chain(self) -> str:
        return INPUT_CHAIN_PREFIX + self.network_id[:12]

    def jumps(self) -> list[list[str]]:
        """The rules that send the bridge's traffic into our chains (first in their chain)."""
        return [
            ["DOCKER-USER", "-i", self.bridge, "-j", self.forward_chain],
            # Answers coming back into the bridge (see firewall_script) and nothing new.
            ["DOCKER-USER", "-o", self.bridge, "-j", self.forward_chain],
            ["INPUT", "-i", self.bridge, "-j", self.input_chain],
        ]


def network_view(attrs: dict[str, Any]) -> NetworkView:
    """Read a Docker network's inspect answer; refuse anything the rules cannot cover."""
    if attrs.get("Driver") != "bridge":
        raise FirewallError(f"Network {attrs.get('Name')!r} is not a bridge network.")
    if attrs.get("EnableIPv6"):
        # The rules are IPv4 only: an IPv6 path would bypass all of them.
        raise FirewallError(
            f"Network {attrs.get('Name')!r} has IPv6 enabled, which the workspace firewall does "
            "not cover: use a network without IPv6."
        )
    options = attrs.get("Options") or {}
    bridge = options.get("com.docker.network.bridge.name") or "br-" + attrs["Id"][:12]
    subnets = [
        parse_network(c["Subnet"])
        for c in (attrs.get("IPAM") or {}).get("Config") or []
        if ":" not in c.get("Subnet", ":")
    ]
    if not subnets:
        raise FirewallError(f"Network {attrs.get('Name')!r} has no IPv4 subnet.")
    return NetworkView(attrs["Id"], bridge, subnets[0])


@dataclass(frozen=True)
class Members:
    """Addresses on the network the rules name: ttyd clients, and workspaces by owner."""

    ttyd_clients: tuple[str, ...] = ()
    owners: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicySettings:
    """The options that shape the rules, validated."""

    isolate: bool = True
    same_owner: bool = False
    block_host: bool = True
    blocked: tuple[ipaddress.IPv4Network, ...] = (ipaddress.IPv4Network(LINK_LOCAL),)
    allowed: tuple[Destination, ...] = ()


def firewall_script(view: NetworkView, members: Members, settings: PolicySettings) -> str:
    """iptables-restore input that (re)writes both chains of one network, and nothing else."""
    fwd, inp = view.forward_chain, view.input_chain
    bridge = view.bridge
    rules: list[list[str]] = []
    # Answers coming into the bridge to connections these rules let through: accepted here,
    # since an `internal` network has no such rule of Docker's before its own DROPs.
    established = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"]
    rules.append([fwd, "-o", bridge, *established, "-j", "ACCEPT"])
    # Forwarded traffic from the bridge; Docker's own rules still see whatever we RETURN.
    rules.append([fwd, "-i", bridge, *established, "-j", "RETURN"])
    for destination in settings.allowed:
        rules += [[fwd, "-i", bridge, *match, "-j", "ACCEPT"] for match in destination.match()]
    if settings.isolate:
        # Docker's icc=false DROP comes after DOCKER-USER: the exceptions must ACCEPT here.
        to_bridge = [fwd, "-o", bridge]
        for client in members.ttyd_clients:
            ttyd = ["-p", "tcp", "--dport", str(TTYD_PORT)]
            rules.append([*to_bridge, "-s", client, *ttyd, "-j", "ACCEPT"])
        if settings.same_owner:
            for addresses in members.owners.values():
                pairs = [(a, b) for a in addresses for b in addresses if a != b]
                rules += [[*to_bridge, "-s", a, "-d", b, "-j", "ACCEPT"] for a, b in pairs]
        # Explicit, so isolation holds even on a network made with inter-container traffic on.
        rules.append([fwd, "-o", bridge, *REJECT])
    rules += [[fwd, "-d", str(network), *REJECT] for network in settings.blocked]
    # Traffic to the host's own addresses (the gateway, eth0, other bridges' gateways).
    rules.append([inp, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"])
    for destination in settings.allowed:
        rules += [[inp, *match, "-j", "RETURN"] for match in destination.match()]
    if settings.block_host:
        rules.append([inp, *REJECT])
    lines = ["*filter", f":{fwd} - [0:0]", f":{inp} - [0:0]"]
    lines += ["-A " + " ".join(rule) for rule in rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class IptablesFirewall:
    """Runs iptables on this machine (it must be root in the Docker host's network namespace)."""

    def __init__(self, iptables: str = "iptables") -> None:
        self.iptables = iptables
        self.iptables_restore = iptables + "-restore"

    def _run(
        self, *command: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=IPTABLES_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise FirewallError(f"Cannot run {command[0]}: {err}") from err
        if check and done.returncode != 0:
            raise FirewallError(f"{' '.join(command)} failed: {done.stderr.strip()}")
        return done

    def apply(self, view: NetworkView, script: str) -> None:
        """Write both chains in one transaction, then make sure the jumps to them are first."""
        self._run(self.iptables_restore, "-w", "--noflush", stdin=script)
        for jump in view.jumps():
            chain, rule = jump[0], jump[1:]
            if self._run(self.iptables, "-w", "-C", chain, *rule, check=False).returncode != 0:
                self._run(self.iptables, "-w", "-I", chain, "1", *rule)

    def remove(self, network_id: str) -> None:
        """Delete the jumps to one network's chains and the chains; missing ones are fine."""
        fwd = FORWARD_CHAIN_PREFIX + network_id[:12]
        inp = INPUT_CHAIN_PREFIX + network_id[:12]
        listing = self._read_rules()
        for line in listing:
            parts = line.split()
            if parts[:1] == ["-A"] and parts[-2:] in (["-j", fwd], ["-j", inp]):
                self._run(self.iptables, "-w", "-D", *parts[1:], check=False)
        for chain in (fwd, inp):
            if f"-N {chain}" in listing:
                self._run(self.iptables, "-w", "-F", chain)
                self._run(self.iptables, "-w", "-X", chain)

    def remove_stale(self, existing_ids: set[str]) -> list[str]:
        """Remove the chains of networks that no longer exist; answer their short ids."""
        stale = sorted(self.installed_networks() - {i[:12] for i in existing_ids})
        for short_id in stale:
            self.remove(short_id)
        return stale

    def installed_networks(self) -> set[str]:
        """Short ids of the networks that have chains of ours."""
        found = set()
        for line in self._read_rules():
            for prefix in (FORWARD_CHAIN_PREFIX, INPUT_CHAIN_PREFIX):
                if line.startswith(f"-N {prefix}"):
                    found.add(line[len(f"-N {prefix}") :])
        return found

    def _read_rules(self) -> list[str]:
        return self._run(self.iptables, "-w", "-S").stdout.splitlines()


def firewall_unavailable_reason(iptables: str, bridge: str) -> str | None:
    """Why this process cannot manage the bridge's firewall, or None when it can."""
    if sys.platform != "linux":
        return "the server does not run on Linux"
    if os.geteuid() != 0:
        return "the server does not run as root"
    if shutil.which(iptables) is None or shutil.which(iptables + "-restore") is None:
        return f"{iptables} and {iptables}-restore are not on PATH"
    try:
        socket.if_nametoindex(bridge)
    except OSError:
        # Inside a container, or talking to a remote engine: the bridge is not here.
        return f"the bridge {bridge} is not in this network namespace"
    return None


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

    ttyd_clients = List(
        Unicode(),
        help=(
            "Containers on the workspace network, besides workspaces, that may reach every "
            "workspace's ttyd port (7681): the Jupyter server's own container when it runs on "
            "the network (connect_via=name). A server on the host needs no entry."
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
            "jupyter_popebot_code.network_policy_command install` as root on the host); "
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

    @validate("allowed_destinations")
    def _check_allowed(self, proposal: Any) -> list[str]:
        for text in proposal["value"]:
            parse_destination(text)
        return list(proposal["value"])

    def __init__(self, containers: ContainerManager, **kwargs: Any) -> None:
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
        containers.network_hook = self._network_seen

    @property
    def settings(self) -> PolicySettings:
        return PolicySettings(
            isolate=self.isolate_workspaces,
            same_owner=self.same_owner_reachable,
            block_host=self.block_host,
            blocked=tuple(parse_network(text) for text in self.blocked_networks),
            allowed=tuple(parse_destination(text) for text in self.allowed_destinations),
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
            existing = {net["Id"] for net in client.api.networks()}
            with self._lock:
                stale = self.firewall_impl.remove_stale(existing)
            if stale:
                self.log.info("Removed firewall chains of removed networks: %s", ", ".join(stale))

    def _network_seen(
        self, client: docker.DockerClient, attrs: dict[str, Any], created: bool
    ) -> None:
        """Before each container is created: check the network, follow a new bridge."""
        view = network_view(attrs)
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
        view = network_view(client.api.inspect_network(self.containers.network))
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
                "(python -m jupyter_popebot_code.network_policy_command install)."
            )
        self._enforcing = False
        self.log.warning(
            "Workspace firewall is OFF (NetworkPolicy.firewall = 'auto'): %s. Workspaces reach "
            "the Docker host and %s; run `python -m jupyter_popebot_code.network_policy_command "
            "install` as root on the host to enforce the policy.",
            reason,
            ", ".join(self.blocked_networks) or "any network",
        )
        return False

    def _members(self, client: docker.DockerClient) -> Members:
        network = self.containers.network
        owners: dict[str, list[str]] = {}
        found = client.api.containers(
            filters={"network": network, "label": f"{MANAGED_BY_LABEL}={MANAGED_BY}"}
        )
        for summary in found:
            address = _address_on(summary, network)
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
    address = (networks.get(network) or {}).get("IPAddress") or None
    return str(ipaddress.IPv4Address(address)) if address else None
